;; Imports from a process that does not exist.
(module
  (import "process:nothing" "get" (func $get (param i32) (result i32)))
  (func (export "_start") (drop (call $get (i32.const 1)))))
