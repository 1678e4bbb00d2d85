;; Inside one block, an access off the same index with an end no larger
;; than a guarded one keeps its mask but loses its trap branch.
(module
  (memory 1)
  (func (export "fields") (param i32) (result i32)
    (i32.add
      (i32.load offset=8 (local.get 0))
      (i32.add (i32.load offset=4 (local.get 0)) (i32.load8_u offset=2 (local.get 0)))))
  ;; An access at p + 4 (an i32.add, as unrolled loops compute it) after
  ;; an 8-byte guard on p shares it: one guard for both.
  (func (export "plus_constant") (param i32) (result i32)
    (i32.add
      (i32.wrap_i64 (i64.load (local.get 0)))
      (i32.load (i32.add (local.get 0) (i32.const 4)))))
)
