;; A hostile guest: reads, writes and bulk-copies at any address it is
;; given, calls any table slot with any signature, and grows its memory
;; without bound. Every attempt outside its own region must trap (or fail).
(module
  (type $void (func))
  (type $takes_i32 (func (param i32)))
  (memory 1)
  (table 4 funcref)
  (elem (i32.const 0) $nop)
  (func $nop)
  (func (export "read") (param $addr i32) (result i64) (i64.load (local.get $addr)))
  (func (export "read_byte") (param $addr i32) (result i32) (i32.load8_u (local.get $addr)))
  (func (export "write") (param $addr i32) (i64.store (local.get $addr) (i64.const -1)))
  (func (export "fill") (param $addr i32) (param $len i32)
    (memory.fill (local.get $addr) (i32.const 0xEE) (local.get $len)))
  (func (export "copy_out") (param $addr i32)
    (memory.copy (local.get $addr) (i32.const 0) (i32.const 64)))
  (func (export "call_slot") (param $slot i32) (call_indirect (type $void) (local.get $slot)))
  (func (export "call_forged") (param $slot i32)
    (call_indirect (type $takes_i32) (i32.const 7) (local.get $slot)))
  (func (export "grow_forever") (result i32)
    (local $grown i32)
    (block $full
      (loop $more
        (br_if $full (i32.eq (memory.grow (i32.const 16)) (i32.const -1)))
        (local.set $grown (i32.add (local.get $grown) (i32.const 16)))
        (br $more)))
    (local.get $grown))
)
