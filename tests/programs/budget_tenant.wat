;; A tenant of a VM with a memory budget: one page, touched, and a `grow`
;; export that reports what memory.grow returned.
(module
  (memory (export "memory") 1)
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 42)))
  (func (export "grow") (param i32) (result i32)
    (memory.grow (local.get 0))))
