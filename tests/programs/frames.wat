;; A recursion that parks in a host call at its deepest point. The host
;; walks the parked frames and may rewrite their vmctx slots; every frame
;; then reads its global through whatever vmctx it resumes with.
(module
  (import "test" "park" (func $park))
  (global $id (mut i32) (i32.const 0))
  (func (export "set_id") (param i32) (global.set $id (local.get 0)))
  (func $rec (export "rec") (param $n i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (call $park) (global.get $id))
      (else
        (i32.add
          (call $rec (i32.sub (local.get $n) (i32.const 1)))
          (global.get $id)))))
)
