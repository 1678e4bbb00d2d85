;; Starts, sleeps for an hour in WASI poll_oneoff (parked, holding its
;; fiber stack), and exits: a process alive mid-call.
(module
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (func (export "_start")
    ;; One subscription at 0: a relative monotonic clock of 1 s
    ;; (tag 0 at 8, clock id 1 at 16, timeout at 24).
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 3600000000000))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))
