;; Static proof (jit/src/translate/memory.rs): an access at a constant
;; address within the memory's declared minimum has no guard. These pin the
;; boundary: the last in-bounds bytes are read and written without a trap,
;; one byte further traps (it keeps its guard), and after memory.grow the
;; guarded access reaches the new page. The golden CLIF is
;; jit/tests/clif/static_proof.wat.
(module
  (memory (export "mem") 1 2)
  (data (i32.const 65532) "\01\02\03\04")
  (func (export "last_word") (result i32) (i32.load (i32.const 65532)))
  (func (export "last_word_offset") (result i32) (i32.load offset=65532 (i32.const 0)))
  (func (export "last_byte") (result i32) (i32.load8_u (i32.const 65535)))
  (func (export "set_last") (param i64) (i64.store (i32.const 65528) (local.get 0)))
  (func (export "last_i64") (result i64) (i64.load (i32.const 65528)))
  (func (export "straddle") (result i32) (i32.load (i32.const 65533)))
  (func (export "straddle_offset") (result i32) (i32.load offset=65533 (i32.const 0)))
  (func (export "next_page") (result i32) (i32.load8_u (i32.const 65536)))
  (func (export "store_next_page") (i32.store8 (i32.const 65536) (i32.const 7)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1))))

(assert_return (invoke "last_word") (i32.const 0x04030201))
(assert_return (invoke "last_word_offset") (i32.const 0x04030201))
(assert_return (invoke "last_byte") (i32.const 4))
(assert_trap (invoke "straddle") "out of bounds memory access")
(assert_trap (invoke "straddle_offset") "out of bounds memory access")
(assert_trap (invoke "next_page") "out of bounds memory access")
(assert_trap (invoke "store_next_page") "out of bounds memory access")
(invoke "set_last" (i64.const 0x1122334455667788))
(assert_return (invoke "last_i64") (i64.const 0x1122334455667788))
(assert_return (invoke "grow") (i32.const 1))
(invoke "store_next_page")
(assert_return (invoke "next_page") (i32.const 7))
(assert_return (invoke "straddle") (i32.const 0x07112233))
