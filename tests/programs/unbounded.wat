;; Guests that never finish by every kind of unbounded path, for kills at
;; polls: every such path must meet a poll (loop headers, and the entry of
;; every function that calls anything), even though functions that call
;; nothing do not poll. Each export runs forever; `n` counts progress.
(module
  (type $rec (func (param i32)))
  (table 2 funcref)
  (elem (i32.const 0) $tree $indirect_tree)
  (global $n (export "n") (mut i64) (i64.const 0))

  ;; A leaf: no loop, no call, so no poll of its own.
  (func $bump
    (global.set $n (i64.add (global.get $n) (i64.const 1))))

  ;; A loop whose body only calls the leaf.
  (func (export "loop_calling_leaf")
    (loop $forever
      (call $bump)
      (br $forever)))

  ;; A binary recursion tree 2^1000 calls wide and 1000 deep: no loop
  ;; anywhere, only calls.
  (func $tree (param $depth i32)
    (call $bump)
    (if (i32.lt_u (local.get $depth) (i32.const 1000))
      (then
        (call $tree (i32.add (local.get $depth) (i32.const 1)))
        (call $tree (i32.add (local.get $depth) (i32.const 1))))))
  (func (export "recursion_tree") (call $tree (i32.const 0)))

  ;; The same through call_indirect only.
  (func $indirect_tree (param $depth i32)
    (global.set $n (i64.add (global.get $n) (i64.const 1)))
    (if (i32.lt_u (local.get $depth) (i32.const 1000))
      (then
        (call_indirect (type $rec) (i32.add (local.get $depth) (i32.const 1)) (i32.const 1))
        (call_indirect (type $rec) (i32.add (local.get $depth) (i32.const 1)) (i32.const 1)))))
  (func (export "indirect_recursion_tree") (call $indirect_tree (i32.const 0)))
)
