;; Imports what `preload_lib.wat` exports, preloaded as `lib`: `run`
;; returns triple(the library memory's first byte) = 126.
(module
  (import "lib" "triple" (func $triple (param i32) (result i32)))
  (import "lib" "memory" (memory 1))
  (func (export "run") (result i32)
    (call $triple (i32.load8_u (i32.const 0)))))
