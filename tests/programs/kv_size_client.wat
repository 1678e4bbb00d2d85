;; Imports an export of kv that kv may not declare an entry point.
(module
  (import "process:kv" "size" (func $size (result i32)))
  (func (export "_start") (drop (call $size))))
