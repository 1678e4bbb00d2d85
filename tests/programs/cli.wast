;; A script that passes: traps do not stop it.
(module
  (memory 1)
  (func (export "oob") (result i32) (i32.load (i32.const 70000)))
  (func (export "ok") (result i32) (i32.const 7)))
(assert_trap (invoke "oob") "out of bounds memory access")
(assert_return (invoke "ok") (i32.const 7))
(assert_trap (invoke "oob") "out of bounds memory access")
(assert_return (invoke "ok") (i32.const 7))
(assert_malformed (module binary "\00asm\01") "unexpected end")
