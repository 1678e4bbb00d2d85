;; Static proof: an access whose constant address (constant index plus
;; offset plus size) lies within the memory's declared minimum needs no
;; guard and no mask; one a byte past it keeps both.
(module
  (memory 1)
  ;; No guards: ends 20, 65536 and 65536.
  (func (export "inside") (result i32)
    (i32.add
      (i32.add (i32.load (i32.const 16)) (i32.load offset=65532 (i32.const 0)))
      (i32.load8_u (i32.const 65535))))
  ;; One guard: the end, 65537, is past the declared minimum.
  (func (export "one_past") (result i32)
    (i32.load (i32.const 65533)))
  ;; A store, and a 64-bit access at the very end.
  (func (export "store") (param i64)
    (i64.store (i32.const 65528) (local.get 0)))
)
