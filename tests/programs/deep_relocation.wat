;; A recursion that keeps its vmctx, a memory it wrote and a funcref live
;; in every frame, for relocation tests: `deep(n)` returns n * (n + 1)
;; only if, after each callee returns (with every region moved meanwhile),
;; the frame still finds its memory word and can call through its funcref.
(module
  (type $t (func (param i32) (result i32)))
  (table 2 funcref)
  (elem (i32.const 0) $double)
  (memory 1)
  (func $double (type $t) (i32.mul (local.get 0) (i32.const 2)))
  (func $deep (export "deep") (param $n i32) (result i32)
    (local $f funcref) (local $sum i32)
    (if (i32.eqz (local.get $n)) (then (return (i32.const 0))))
    (i32.store (i32.shl (local.get $n) (i32.const 2)) (local.get $n))
    (local.set $f (table.get 0 (i32.const 0)))
    ;; Every 64th level also grows memory, which may move it.
    (if (i32.eqz (i32.and (local.get $n) (i32.const 63)))
      (then (drop (memory.grow (i32.const 1)))))
    (local.set $sum (call $deep (i32.sub (local.get $n) (i32.const 1))))
    (table.set 0 (i32.const 1) (local.get $f))
    (if (i32.ne (i32.load (i32.shl (local.get $n) (i32.const 2))) (local.get $n))
      (then unreachable))
    (i32.add (local.get $sum) (call_indirect (type $t) (local.get $n) (i32.const 1)))))
