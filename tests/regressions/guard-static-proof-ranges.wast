;; Static proof over an index's range (jit/src/translate/ranges.rs): an
;; access whose index is bounded by its computation (a zero-extended byte
;; or halfword, a mask, a shift, a remainder, a sum) has no guard when the
;; largest value fits within the declared minimum. These pin the boundary:
;; the largest index the computation allows reads the last bytes of the
;; minimum, and computations that can reach one byte further keep their
;; guard and trap there. The golden CLIF is
;; jit/tests/clif/static_proof_ranges.wat.
(module
  (memory 1 2)
  (data (i32.const 65280) "\00\01\02\03")
  (data (i32.const 65532) "\aa\bb\cc\dd")
  ;; byte + 65280: largest 65535, within the minimum.
  (func (export "byte_table") (param $v i32) (result i32)
    (i32.store8 (i32.const 100) (local.get $v))
    (i32.load8_u offset=65280 (i32.load8_u (i32.const 100))))
  ;; (x & 0x3fff) << 2 plus 4 bytes: largest end 65536.
  (func (export "masked_words") (param $x i32) (result i32)
    (i32.load (i32.shl (i32.and (local.get $x) (i32.const 0x3fff)) (i32.const 2))))
  ;; x % 65533 plus 4 bytes: largest end 65536.
  (func (export "remainder") (param $x i32) (result i32)
    (i32.load (i32.rem_u (local.get $x) (i32.const 65533))))
  ;; x >> 16 plus offset 65280: largest end 65280 + 65535 + 1, past the
  ;; minimum, so guarded: traps for large x until the memory grows.
  (func (export "shifted_past") (param $x i32) (result i32)
    (i32.load8_u offset=65280 (i32.shr_u (local.get $x) (i32.const 16))))
  ;; (x & 0x3fff) << 2 plus 8 bytes: one past, guarded.
  (func (export "masked_past") (param $x i32) (result i64)
    (i64.load (i32.shl (i32.and (local.get $x) (i32.const 0x3fff)) (i32.const 2))))
  ;; A store through a bounded index.
  (func (export "store_masked") (param $x i32) (param $v i32)
    (i32.store8 offset=65024 (i32.and (local.get $x) (i32.const 511)) (local.get $v)))
  (func (export "load_last") (result i32) (i32.load8_u (i32.const 65535)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))

(assert_return (invoke "byte_table" (i32.const 0)) (i32.const 0))
(assert_return (invoke "byte_table" (i32.const 3)) (i32.const 3))
(assert_return (invoke "byte_table" (i32.const 0x1ff)) (i32.const 0xdd))
(assert_return (invoke "masked_words" (i32.const 0xffffffff)) (i32.const 0xddccbbaa))
(assert_return (invoke "masked_words" (i32.const 0xffffc000)) (i32.const 0))
(assert_return (invoke "remainder" (i32.const 65532)) (i32.const 0xddccbbaa))
(assert_return (invoke "remainder" (i32.const 131065)) (i32.const 0xddccbbaa))
(assert_return (invoke "shifted_past" (i32.const 0x00ff0000)) (i32.const 0xdd))
(assert_trap (invoke "shifted_past" (i32.const 0x01000000)) "out of bounds memory access")
(assert_trap (invoke "masked_past" (i32.const 0xffffffff)) "out of bounds memory access")
(assert_return (invoke "masked_past" (i32.const 0x3ffe)) (i64.const 0xddccbbaa00000000))
(invoke "store_masked" (i32.const 0xffffffff) (i32.const 0x5a))
(assert_return (invoke "load_last") (i32.const 0x5a))
(assert_return (invoke "grow") (i32.const 1))
(assert_return (invoke "shifted_past" (i32.const 0xffffffff)) (i32.const 0))
(assert_return (invoke "masked_past" (i32.const 0xffffffff)) (i64.const 0x5accbbaa))
