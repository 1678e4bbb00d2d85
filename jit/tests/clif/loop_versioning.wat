;; Loop versioning: an innermost loop whose accesses are affine in its
;; induction variables is translated twice. The check block before the
;; copies computes the last iteration from the latch (`lt_u` on the
;; incremented counter: `smax`, `udiv`) and each access group's lowest
;; and highest byte over the trip range, and enters the fast copy only if
;; all are in bounds. The fast copy's accesses are `fast base + index`,
;; no compare, no cmov; the fast base is `select_spectre_guard(ok, base,
;; sink)` on entry and `select_spectre_guard(continue, fast base, sink)`
;; on the back edge, and follows the base after the header poll's slow
;; path. The slow copy is the guarded loop as before.
(module
  (memory 1)
  ;; Pointer IVs p and q stepping 16 and a counter c stepping -2 (clang's
  ;; unrolled daxpy): four f64 accesses, two groups, no guard in the fast
  ;; copy.
  (func (export "axpy") (param $p i32) (param $q i32) (param $c i32) (param $a f64)
    (loop $L
      (f64.store (local.get $p)
        (f64.add (f64.load (local.get $p)) (f64.mul (local.get $a) (f64.load (local.get $q)))))
      (f64.store offset=8 (local.get $p)
        (f64.add (f64.load offset=8 (local.get $p)) (f64.mul (local.get $a) (f64.load offset=8 (local.get $q)))))
      (local.set $p (i32.add (local.get $p) (i32.const 16)))
      (local.set $q (i32.add (local.get $q) (i32.const 16)))
      (br_if $L (local.tee $c (i32.add (local.get $c) (i32.const -2))))))
  ;; A loop-invariant index with no recognisable latch bound (the counter
  ;; is compared with a loaded value): the guard is hoisted into the check
  ;; all the same, since the index is the same on every iteration.
  (func (export "invariant") (param $x i32) (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $L
      (local.set $s (i32.add (local.get $s) (i32.load offset=4 (local.get $x))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $L (i32.lt_u (local.get $i) (i32.load (i32.const 0)))))
    (local.get $s))
  ;; A row of a matrix, `a[(i*n + k) * 8]`: `i*n` is computed in the loop
  ;; from invariants; the check block computes it again.
  (func (export "row_sum") (param $i i32) (param $n i32) (result f64)
    (local $k i32) (local $s f64)
    (loop $L
      (local.set $s (f64.add (local.get $s)
        (f64.load (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $k))
                           (i32.const 3)))))
      (br_if $L (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n))))
    (local.get $s))
  ;; A call in the loop: versioned all the same (a bound never shrinks),
  ;; and after the call the fast base follows the reloaded base unless it
  ;; was the sink.
  (func $f (param i32) (result i32) (local.get 0))
  (func (export "calls") (param $p i32) (param $n i32)
    (local $i i32)
    (loop $L
      (i32.store (i32.add (local.get $p) (local.get $i)) (call $f (local.get $i)))
      (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 4))) (local.get $n)))))
)
