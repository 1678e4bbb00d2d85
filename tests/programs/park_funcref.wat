;; A host call that parks its guest and hands back a funcref afterwards
;; (tests/relocation.rs): the guest's regions move, poisoned, while it is
;; parked, and the host call must then encode its result through the
;; store, not through the vmctx it was entered with.
(module
  (import "host" "park" (func $park (param funcref) (result funcref)))
  (import "wasi_snapshot_preview1" "poll_oneoff"
    (func $poll_oneoff (param i32 i32 i32 i32) (result i32)))
  (memory 1)
  (table 1 funcref)
  (global $marker (mut i32) (i32.const 0))
  (func $seven (result i32) (i32.const 7))
  (elem declare func $seven)
  ;; Parks in the host call; calls what it returns.
  (func (export "park") (result i32)
    (table.set (i32.const 0) (call $park (ref.func $seven)))
    (call_indirect (result i32) (i32.const 0)))
  ;; Sleeps 1 ms in WASI, then reads its memory and global and calls
  ;; through its table.
  (func (export "sleep") (result i32)
    (i32.store (i32.const 100) (i32.const 0x5eed))
    (global.set $marker (i32.const 40))
    (table.set (i32.const 0) (ref.func $seven))
    ;; One relative clock subscription at 0: userdata, tag 0 (clock),
    ;; clock id 1 (monotonic), timeout 1 ms, precision, flags 0.
    (i64.store (i32.const 0) (i64.const 1))
    (i32.store8 (i32.const 8) (i32.const 0))
    (i32.store (i32.const 16) (i32.const 1))
    (i64.store (i32.const 24) (i64.const 1000000))
    (i64.store (i32.const 32) (i64.const 0))
    (i32.store16 (i32.const 40) (i32.const 0))
    (drop (call $poll_oneoff (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 80)))
    (i32.add
      (i32.add (global.get $marker) (i32.load (i32.const 80)))
      (i32.add (call_indirect (result i32) (i32.const 0))
               (i32.sub (i32.load (i32.const 100)) (i32.const 0x5eed))))))
