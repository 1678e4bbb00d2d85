;; Dominance across constructs (jit/src/translate/memory.rs,
;; CheckedGuards): a guard passed before an `if` or `block` covers
;; accesses off the same index nested in it; a guard inside one arm of an
;; `if`, or inside a block a branch may leave early, covers nothing after.
;; These pin the traps: an access that an earlier, skipped guard would have
;; covered must still trap on its own.
(module
  (memory (export "mem") 1 2)
  (data (i32.const 100) "\01\02\03\04\05\06\07\08")
  ;; Outer guard on p, end 8; the arms read inside it.
  (func (export "nested") (param $p i32) (param $c i32) (result i32)
    (local $r i32)
    (local.set $r (i32.load offset=4 (local.get $p)))
    (if (local.get $c)
      (then (local.set $r (i32.add (local.get $r) (i32.load (local.get $p)))))
      (else
        (block
          (local.set $r (i32.add (local.get $r) (i32.load16_u offset=2 (local.get $p)))))))
    (local.get $r))
  ;; The then arm checks p + 8; the else arm must check again.
  (func (export "arms") (param $p i32) (param $c i32) (result i32)
    (if (result i32) (local.get $c)
      (then (i32.load offset=4 (local.get $p)))
      (else (i32.load offset=4 (local.get $p)))))
  ;; A guard after a br_if inside a block covers nothing after the block:
  ;; when c is set, the block is left before its load, and the load after
  ;; the block must trap by itself.
  (func (export "skipped") (param $p i32) (param $c i32) (result i32)
    (local $r i32)
    (block
      (br_if 0 (local.get $c))
      (local.set $r (i32.load offset=4 (local.get $p))))
    (i32.add (local.get $r) (i32.load offset=4 (local.get $p))))
  ;; A store in an outer construct then stores nested in a loop.
  (func (export "fill") (param $p i32) (param $n i32)
    (i32.store8 offset=3 (local.get $p) (i32.const 0))
    (block
      (loop
        (br_if 1 (i32.eqz (local.get $n)))
        (i32.store8 (local.get $p) (local.get $n))
        (i32.store8 offset=1 (local.get $p) (local.get $n))
        (local.set $n (i32.sub (local.get $n) (i32.const 1)))
        (br 0)))))

(assert_return (invoke "nested" (i32.const 100) (i32.const 1)) (i32.const 0x0c0a0806))
(assert_return (invoke "nested" (i32.const 100) (i32.const 0)) (i32.const 0x08070a08))
(assert_trap (invoke "nested" (i32.const 65530) (i32.const 1)) "out of bounds memory access")
(assert_trap (invoke "nested" (i32.const 65530) (i32.const 0)) "out of bounds memory access")
(assert_return (invoke "arms" (i32.const 100) (i32.const 0)) (i32.const 0x08070605))
(assert_trap (invoke "arms" (i32.const 65530) (i32.const 0)) "out of bounds memory access")
(assert_trap (invoke "arms" (i32.const 65530) (i32.const 1)) "out of bounds memory access")
(assert_return (invoke "skipped" (i32.const 100) (i32.const 0)) (i32.const 0x100e0c0a))
(assert_trap (invoke "skipped" (i32.const 65530) (i32.const 1)) "out of bounds memory access")
(assert_trap (invoke "skipped" (i32.const 65530) (i32.const 0)) "out of bounds memory access")
(invoke "fill" (i32.const 200) (i32.const 3))
(assert_trap (invoke "fill" (i32.const 65533) (i32.const 3)) "out of bounds memory access")
