;; A host call with more results than return registers (three i32s, three
;; f64s and a funcref: the third i32, the third f64 and the funcref are
;; spilled, see `abi::results`) that parks its guest while every region
;; moves, poisoned (tests/relocation.rs). The host trampoline must write
;; the spilled results where the guest, resumed, reads them, and the
;; funcref must still be callable.
(module
  (import "host" "many" (func $many (param i32 funcref)
    (result i32 i32 i32 f64 f64 f64 funcref)))
  (table 1 funcref)
  (func $seven (result i32) (i32.const 7))
  (elem declare func $seven)
  ;; A weighted sum of every result, so each value and its order count:
  ;; for a host that returns (n, n+1, n+2, n+3, n+4, 1, the funcref) and
  ;; n = 5, 5 + 60 + 700 + 8,000 + 90,000 + 100,000 + 7 * 1,000,000.
  (func (export "run") (result i32)
    (local $a i32) (local $b i32) (local $c i32)
    (local $d f64) (local $e f64) (local $g f64) (local $f funcref)
    (call $many (i32.const 5) (ref.func $seven))
    (local.set $f) (local.set $g) (local.set $e) (local.set $d)
    (local.set $c) (local.set $b) (local.set $a)
    (table.set (i32.const 0) (local.get $f))
    (i32.add
      (i32.add
        (i32.add (local.get $a) (i32.mul (local.get $b) (i32.const 10)))
        (i32.add (i32.mul (local.get $c) (i32.const 100))
                 (i32.mul (i32.trunc_f64_u (local.get $d)) (i32.const 1000))))
      (i32.add
        (i32.add (i32.mul (i32.trunc_f64_u (local.get $e)) (i32.const 10000))
                 (i32.mul (i32.trunc_f64_u (local.get $g)) (i32.const 100000)))
        (i32.mul (call_indirect (result i32) (i32.const 0)) (i32.const 1000000)))))
)
