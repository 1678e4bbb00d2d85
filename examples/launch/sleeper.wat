;; Sleeps for the number of seconds its first argument gives (1 without
;; one) in WASI poll_oneoff, then exits 0: a process parked mid-call, the
;; unit of examples/launch/million.toml. It touches one page of memory.
(module
  (import "wasi_snapshot_preview1" "args_sizes_get"
    (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get"
    (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory 1)

  ;; The decimal number at $at (ending at a NUL or a non-digit).
  (func $parse (param $at i32) (result i64)
    (local $n i64) (local $digit i32)
    (block $done
      (loop $next
        (local.set $digit (i32.sub (i32.load8_u (local.get $at)) (i32.const 48)))
        (br_if $done (i32.gt_u (local.get $digit) (i32.const 9)))
        (local.set $n (i64.add (i64.mul (local.get $n) (i64.const 10))
                               (i64.extend_i32_u (local.get $digit))))
        (local.set $at (i32.add (local.get $at) (i32.const 1)))
        (br $next)))
    (local.get $n))

  ;; Seconds to sleep: argv[1], or 1. The counts go at 0 and 4, argv's
  ;; pointers at 256 and its strings at 1024 (when they fit the page).
  (func $seconds (result i64)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (if (i32.or (i32.lt_u (i32.load (i32.const 0)) (i32.const 2))
                (i32.or (i32.gt_u (i32.load (i32.const 0)) (i32.const 32))
                        (i32.gt_u (i32.load (i32.const 4)) (i32.const 2048))))
      (then (return (i64.const 1))))
    (drop (call $args_get (i32.const 256) (i32.const 1024)))
    (call $parse (i32.load (i32.const 260))))

  (func (export "_start")
    ;; One subscription at 64: a relative monotonic clock (tag 0 at +8,
    ;; clock id 1 at +16, timeout in ns at +24); its event goes to 128.
    (i64.store (i32.const 88) (i64.mul (call $seconds) (i64.const 1000000000)))
    (i32.store8 (i32.const 72) (i32.const 0))
    (i32.store (i32.const 80) (i32.const 1))
    (drop (call $poll_oneoff (i32.const 64) (i32.const 128) (i32.const 1) (i32.const 160)))))
