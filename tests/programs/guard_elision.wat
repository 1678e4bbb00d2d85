;; Accesses whose guards the JIT may elide in CARAT mode: within a block,
;; an access off the same index value as an earlier guarded one, with an
;; end no larger. tests/regressions/guard-elision.wast holds the semantics;
;; tests/cli_cases.toml counts the elided guards (5 of 11).
(module
  (memory (export "mem") 1 2)
  ;; p+3 first: p+1, p+2 and p+0 are covered.
  (func (export "descending") (param $p i32)
    (i32.store8 offset=3 (local.get $p) (i32.const 4))
    (i32.store8 offset=1 (local.get $p) (i32.const 2))
    (i32.store8 offset=2 (local.get $p) (i32.const 3))
    (i32.store8 (local.get $p) (i32.const 1)))
  ;; p+0, then p+3 (not covered), then p+1 (covered).
  (func (export "ascending") (param $p i32)
    (i32.store8 (local.get $p) (i32.const 9))
    (i32.store8 offset=3 (local.get $p) (i32.const 8))
    (i32.store8 offset=1 (local.get $p) (i32.const 7)))
  ;; A covered load after memory.grow, a call, in the same block.
  (func (export "across_grow") (param $p i32) (result i32)
    (i32.store offset=4 (local.get $p) (i32.const 0x01020304))
    (drop (memory.grow (i32.const 1)))
    (i32.load8_u offset=5 (local.get $p)))
  (func (export "load32") (param $p i32) (result i32)
    (i32.load (local.get $p)))
  (func (export "load8") (param $p i32) (result i32)
    (i32.load8_u (local.get $p))))
