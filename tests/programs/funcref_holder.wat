;; Function references that leave the guest and come back: as results,
;; as arguments, and through host functions that keep one in between
;; (tests/relocation.rs, with every region moved while the host holds
;; them).
(module
  (import "host" "keep" (func $keep (param funcref)))
  (import "host" "give" (func $give (result funcref)))
  (table 2 funcref)
  (func $seven (result i32) (i32.const 7))
  (func $eleven (result i32) (i32.const 11))
  (elem declare func $seven $eleven)
  (func (export "get") (param $which i32) (result funcref)
    (select (result funcref) (ref.func $eleven) (ref.func $seven) (local.get $which)))
  ;; Calls a funcref through the table, as call_indirect checks it.
  (func $call (export "call") (param $f funcref) (result i32)
    (table.set (i32.const 0) (local.get $f))
    (call_indirect (result i32) (i32.const 0)))
  (func (export "hand_over") (call $keep (ref.func $eleven)))
  (func (export "take_back") (result i32) (call $call (call $give))))
