;; An imported memory is at least the minimum its import declares.
(module
  (import "env" "memory" (memory 2))
  ;; No guard: 131,068 + 4 is within two pages.
  (func (export "within") (result i32)
    (i32.load (i32.const 131068)))
  ;; Guarded: 131,072 + 1 is past them.
  (func (export "past") (result i32)
    (i32.load8_u (i32.const 131072)))
)
