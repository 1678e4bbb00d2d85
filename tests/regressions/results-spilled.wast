;; Results that do not fit in return registers (more than two integer-class
;; or two float-class results) travel through the store's result spill
;; area, not through a hidden pointer into the caller's stack (issue 13:
;; a stack that moves must hold no undescribed pointers into itself).
;; Every way to call and return is covered: direct, indirect, imported,
;; results passed straight on, `br` out of the function body, `return`,
;; and a spilled funcref that must survive the calls after it.

(module $lib
  (func (export "many") (param i32) (result i32 i64 f32 f64 i32 i64 f64 f32 i32)
    (local.get 0)
    (i64.extend_i32_u (i32.add (local.get 0) (i32.const 1)))
    (f32.convert_i32_u (i32.add (local.get 0) (i32.const 2)))
    (f64.convert_i32_u (i32.add (local.get 0) (i32.const 3)))
    (i32.add (local.get 0) (i32.const 4))
    (i64.extend_i32_u (i32.add (local.get 0) (i32.const 5)))
    (f64.convert_i32_u (i32.add (local.get 0) (i32.const 6)))
    (f32.convert_i32_u (i32.add (local.get 0) (i32.const 7)))
    (i32.add (local.get 0) (i32.const 8)))
)
(register "lib" $lib)

(module
  (type $many (func (param i32) (result i32 i64 f32 f64 i32 i64 f64 f32 i32)))
  (type $four (func (param i32) (result i32 i32 i32 i32)))
  (import "lib" "many" (func $imported (type $many)))
  (table 4 funcref)
  (elem (i32.const 0) $local $imported $four $three_refs)

  (func $local (type $many)
    (local.get 0)
    (i64.extend_i32_u (i32.add (local.get 0) (i32.const 1)))
    (f32.convert_i32_u (i32.add (local.get 0) (i32.const 2)))
    (f64.convert_i32_u (i32.add (local.get 0) (i32.const 3)))
    (i32.add (local.get 0) (i32.const 4))
    (i64.extend_i32_u (i32.add (local.get 0) (i32.const 5)))
    (f64.convert_i32_u (i32.add (local.get 0) (i32.const 6)))
    (f32.convert_i32_u (i32.add (local.get 0) (i32.const 7)))
    ;; `return` rather than falling off the end.
    (return (i32.add (local.get 0) (i32.const 8))))

  ;; Leaves through `br 0` at the body's level with four values.
  (func $four (type $four)
    (br 0 (local.get 0) (i32.const 11) (i32.const 12)
          (i32.add (local.get 0) (i32.const 13))))

  ;; A weighted checksum of one `many` result list, so the order and every
  ;; value count.
  (func $sum (param i32 i64 f32 f64 i32 i64 f64 f32 i32) (result i64)
    (i64.add
      (i64.add
        (i64.add (i64.extend_i32_u (local.get 0))
                 (i64.mul (local.get 1) (i64.const 10)))
        (i64.add (i64.mul (i64.trunc_f32_u (local.get 2)) (i64.const 100))
                 (i64.mul (i64.trunc_f64_u (local.get 3)) (i64.const 1000))))
      (i64.add
        (i64.add (i64.mul (i64.extend_i32_u (local.get 4)) (i64.const 10000))
                 (i64.mul (local.get 5) (i64.const 100000)))
        (i64.add
          (i64.add (i64.mul (i64.trunc_f64_u (local.get 6)) (i64.const 1000000))
                   (i64.mul (i64.trunc_f32_u (local.get 7)) (i64.const 10000000)))
          (i64.mul (i64.extend_i32_u (local.get 8)) (i64.const 100000000))))))

  (func (export "direct") (param i32) (result i64)
    (call $sum (call $local (local.get 0))))
  (func (export "imported") (param i32) (result i64)
    (call $sum (call $imported (local.get 0))))
  (func (export "indirect") (param i32 i32) (result i64)
    (call $sum (call_indirect (type $many) (local.get 0) (local.get 1))))
  (func (export "four") (param i32) (result i32 i32 i32 i32)
    (call_indirect (type $four) (local.get 0) (i32.const 2)))

  (func $local_again (type $many) (call $local (local.get 0)))
  (func (export "forwarded") (type $many) (call $local_again (local.get 0)))

  ;; Nested: the spilled results of the outer call are read after the
  ;; inner calls have used the same spill area.
  (func (export "nested") (param i32) (result i64)
    (call $sum
      (call $local
        (i32.sub (i32.wrap_i64 (call $sum (call $local (local.get 0))))
                 (i32.const 876543209)))))

  ;; Three funcref results: the third is spilled, and must still name a
  ;; callable function after the calls that follow it.
  (func $three_refs (result funcref funcref funcref)
    (ref.func $four) (ref.func $local) (ref.func $four))
  (func (export "refs") (param i32) (result i32 i32 i32 i32)
    (local $a funcref) (local $b funcref) (local $c funcref)
    (call $three_refs)
    (local.set $c) (local.set $b) (local.set $a)
    (drop (call $sum (call $local (local.get 0))))
    (table.set (i32.const 3) (local.get $c))
    (call_indirect (type $four) (local.get 0) (i32.const 3)))
)

(assert_return (invoke "direct" (i32.const 1)) (i64.const 987654321))
(assert_return (invoke "imported" (i32.const 1)) (i64.const 987654321))
(assert_return (invoke "indirect" (i32.const 1) (i32.const 0)) (i64.const 987654321))
(assert_return (invoke "indirect" (i32.const 1) (i32.const 1)) (i64.const 987654321))
(assert_trap (invoke "indirect" (i32.const 1) (i32.const 2)) "indirect call type mismatch")
(assert_return (invoke "four" (i32.const 7))
  (i32.const 7) (i32.const 11) (i32.const 12) (i32.const 20))
(assert_return (invoke "forwarded" (i32.const 0))
  (i32.const 0) (i64.const 1) (f32.const 2) (f64.const 3) (i32.const 4)
  (i64.const 5) (f64.const 6) (f32.const 7) (i32.const 8))
(assert_return (invoke "nested" (i32.const 0)) (i64.const 987654321))
(assert_return (invoke "refs" (i32.const 5))
  (i32.const 5) (i32.const 11) (i32.const 12) (i32.const 18))
