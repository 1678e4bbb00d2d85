;; Asks the supervisor to compact its memory (carat.compact returns the
;; bytes moved) and lets the host check the bytes it holds stay put.
(module
  (import "carat" "compact" (func $compact (result i64)))
  (memory 2)
  (data (i32.const 70000) "kept across moves")
  (func (export "compact") (result i64) (call $compact))
  (func (export "probe") (result i64) (i64.load (i32.const 70000))))
