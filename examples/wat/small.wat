;; A small process: one page of memory, a counter global and a little work.
;; The density benchmark spawns many of these.
(module
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  (data (i32.const 0) "carat")
  (func (export "step") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (i32.store (i32.const 8) (global.get $calls))
    (i32.add (i32.load8_u (i32.const 0)) (i32.load (i32.const 8))))
)
