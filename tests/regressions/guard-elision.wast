;; Guard elision (jit/src/translate/memory.rs): within a block, an access
;; off the same index value as an already guarded one, with an end no
;; larger, drops its trap branch. Not a bug found once but an optimisation
;; that could make one: these pin which stores land before a trap and that
;; covered accesses touch the right bytes. The module is
;; tests/programs/guard_elision.wat.
(module
  (memory (export "mem") 1 2)
  (func (export "descending") (param $p i32)
    (i32.store8 offset=3 (local.get $p) (i32.const 4))
    (i32.store8 offset=1 (local.get $p) (i32.const 2))
    (i32.store8 offset=2 (local.get $p) (i32.const 3))
    (i32.store8 (local.get $p) (i32.const 1)))
  (func (export "ascending") (param $p i32)
    (i32.store8 (local.get $p) (i32.const 9))
    (i32.store8 offset=3 (local.get $p) (i32.const 8))
    (i32.store8 offset=1 (local.get $p) (i32.const 7)))
  (func (export "across_grow") (param $p i32) (result i32)
    (i32.store offset=4 (local.get $p) (i32.const 0x01020304))
    (drop (memory.grow (i32.const 1)))
    (i32.load8_u offset=5 (local.get $p)))
  (func (export "load32") (param $p i32) (result i32)
    (i32.load (local.get $p)))
  (func (export "load8") (param $p i32) (result i32)
    (i32.load8_u (local.get $p))))

(invoke "descending" (i32.const 100))
(assert_return (invoke "load32" (i32.const 100)) (i32.const 0x04030201))

;; p+3 is past the end: the first store traps, nothing lands.
(assert_trap (invoke "descending" (i32.const 65533)) "out of bounds memory access")
(assert_return (invoke "load8" (i32.const 65533)) (i32.const 0))
(assert_return (invoke "load8" (i32.const 65534)) (i32.const 0))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 0))
(assert_trap (invoke "descending" (i32.const -1)) "out of bounds memory access")
(assert_trap (invoke "descending" (i32.const -4)) "out of bounds memory access")

;; p fits, p+3 does not: the first store lands, then the trap.
(assert_trap (invoke "ascending" (i32.const 65533)) "out of bounds memory access")
(assert_return (invoke "load8" (i32.const 65533)) (i32.const 9))
(assert_return (invoke "load8" (i32.const 65534)) (i32.const 0))

(invoke "ascending" (i32.const 200))
(assert_return (invoke "load32" (i32.const 200)) (i32.const 0x08000709))

;; A covered access after a call that grew (and in CARAT mode may have
;; moved) the memory.
(assert_return (invoke "across_grow" (i32.const 300)) (i32.const 0x03))
(assert_return (invoke "load8" (i32.const 70000)) (i32.const 0))
(assert_trap (invoke "across_grow" (i32.const 131066)) "out of bounds memory access")
