;; Spawns itself until spawn fails, and requires that failure be AGAIN.
(module
  (import "carat" "spawn" (func $spawn (param i32 i32) (result i32)))
  (memory 1)
  (data (i32.const 0) "bomb")
  (func (export "_start") (local $result i32)
    (loop $again
      (local.set $result (call $spawn (i32.const 0) (i32.const 4)))
      (br_if $again (i32.ge_s (local.get $result) (i32.const 0))))
    (if (i32.ne (local.get $result) (i32.const -6)) (then unreachable))))
