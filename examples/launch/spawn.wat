;; A parent process that starts 100 children with carat.spawn and checks
;; what spawn refuses. Children get fresh pids, increasing in spawn order.
(module
  (import "carat" "spawn" (func $spawn (param i32 i32) (result i32)))
  (import "carat" "getpid" (func $getpid (result i32)))
  (memory 1)
  (data (i32.const 0) "child")
  (data (i32.const 16) "nobody")
  (data (i32.const 32) "kv")
  (func $expect (param $got i32) (param $want i32)
    (if (i32.ne (local.get $got) (local.get $want)) (then unreachable)))
  (func (export "_start") (local $i i32) (local $pid i32) (local $last i32)
    (local.set $last (call $getpid))
    (loop $again
      (local.set $pid (call $spawn (i32.const 0) (i32.const 5)))
      (if (i32.le_s (local.get $pid) (local.get $last)) (then unreachable))
      (local.set $last (local.get $pid))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $again (i32.lt_u (local.get $i) (i32.const 100))))
    ;; no such process
    (call $expect (call $spawn (i32.const 16) (i32.const 6)) (i32.const -44))
    ;; kv declares entry points: there is only one
    (call $expect (call $spawn (i32.const 32) (i32.const 2)) (i32.const -63))
    ;; a name outside the parent's memory
    (call $expect (call $spawn (i32.const 65530) (i32.const 100)) (i32.const -21))))
