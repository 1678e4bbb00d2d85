;; A library another module preloads (`--preload lib=...`): a function and
;; a memory it shares.
(module
  (memory (export "memory") 1)
  (data (i32.const 0) "\2a")
  (func (export "triple") (param i32) (result i32)
    (i32.mul (local.get 0) (i32.const 3))))
