;; A client of tests/programs/spin_service.wat that makes it spin.
(module
  (import "process:spin" "work" (func $work (param i32) (result i32)))
  (func (export "_start") (drop (call $work (i32.const 0)))))
