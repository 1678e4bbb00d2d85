;;! mode = paging
;; Polls and the vmctx across calls. A function that calls nothing and has
;; no loop has no poll at all (`leaf`); one that calls polls at entry, and
;; every call carries a stack map naming the vmctx's slot, after which the
;; vmctx is loaded again from it (`caller`); a loop polls at its header,
;; and its slow path's call reloads what a move may change (`counter`).
;; Between calls the vmctx is a plain SSA value: no load from the slot
;; before each use.
(module
  (memory 1)
  (global $g (mut i32) (i32.const 0))
  (func $leaf (param i32) (result i32)
    (global.set $g (i32.add (global.get $g) (local.get 0)))
    (i32.load (local.get 0)))
  (func (export "caller") (param i32) (result i32)
    (i32.add
      (call $leaf (local.get 0))
      (i32.add (global.get $g) (i32.load offset=4 (local.get 0)))))
  (func (export "counter") (param $n i32)
    (loop $more
      (global.set $g (i32.add (global.get $g) (i32.const 1)))
      (br_if $more (i32.lt_u (global.get $g) (local.get $n)))))
)
