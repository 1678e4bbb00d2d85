;; Uses the carat ABI: yields 100 times, then exits 0 if its pid is
;; stable and the VM has counted at least itself among spawned processes.
(module
  (import "carat" "yield" (func $yield))
  (import "carat" "getpid" (func $getpid (result i32)))
  (import "carat" "stats" (func $stats (param i32) (result i64)))
  (func (export "_start")
    (local $i i32) (local $pid i32)
    (local.set $pid (call $getpid))
    (loop $again
      (call $yield)
      (br_if $again (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100))))
    (if (i32.ne (local.get $pid) (call $getpid)) (then unreachable))
    (if (i64.lt_s (call $stats (i32.const 0)) (i64.extend_i32_u (i32.add (local.get $pid) (i32.const 1))))
      (then unreachable))
    (if (i64.ne (call $stats (i32.const 99)) (i64.const -1)) (then unreachable)))
)
