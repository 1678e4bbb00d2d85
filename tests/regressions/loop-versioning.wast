;; Loop versioning (jit/src/translate/versioning.rs): an innermost loop
;; whose accesses are affine in its induction variables runs a fast copy,
;; with no guards, only when a check before the loop proves every
;; iteration's accesses in bounds; otherwise the guarded copy runs and
;; traps at exactly the access that is out of bounds, with every earlier
;; store done. These pin the boundaries of each latch shape the check
;; understands: ending exactly at the bound, one access past it, indices
;; that wrap, early exits and conditional accesses that never reach the
;; out-of-bounds part, and memory growth between calls.
(module
  (memory (export "mem") 1 3)

  ;; for (i = 0; i < n; i++) p[i] = i + 1   (lt_u on the incremented i)
  (func (export "fill_up") (param $p i32) (param $n i32)
    (local $i i32)
    (loop $L
      (i32.store8 (i32.add (local.get $p) (local.get $i))
                  (i32.add (local.get $i) (i32.const 1)))
      (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $n)))))

  ;; The same with `ne` and a 4-byte stride: i32 stores at p + 4*i.
  (func (export "fill_ne") (param $p i32) (param $n i32)
    (local $i i32)
    (loop $L
      (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
                 (i32.const -1))
      (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                        (local.get $n)))))

  ;; Counting down, the counter itself as the condition (`br_if` on
  ;; non-zero), as clang unrolls: i = n; do { i -= 1; p[4*i] = 7 } while (i)
  (func (export "fill_down") (param $p i32) (param $n i32)
    (local $i i32)
    (local.set $i (local.get $n))
    (loop $L
      (local.set $i (i32.add (local.get $i) (i32.const -1)))
      (i32.store (i32.add (local.get $p) (i32.shl (local.get $i) (i32.const 2)))
                 (i32.const 7))
      (br_if $L (local.get $i))))

  ;; Pointer induction variables stepping 16, unrolled by two, i64
  ;; accesses at +0 and +8 of each; a separate counter `c` (step -2).
  (func (export "copy_pairs") (param $dst i32) (param $src i32) (param $c i32)
    (loop $L
      (i64.store (local.get $dst) (i64.load (local.get $src)))
      (i64.store offset=8 (local.get $dst) (i64.load offset=8 (local.get $src)))
      (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
      (local.set $src (i32.add (local.get $src) (i32.const 16)))
      (br_if $L (local.tee $c (i32.add (local.get $c) (i32.const -2))))))

  ;; Signed latch from a negative start: sum of p[4*i] for i in [lo, hi).
  (func (export "sum_signed") (param $p i32) (param $lo i32) (param $hi i32) (result i32)
    (local $i i32) (local $s i32)
    (local.set $i (local.get $lo))
    (loop $L
      (local.set $s (i32.add (local.get $s)
        (i32.load (i32.add (local.get $p) (i32.mul (local.get $i) (i32.const 4))))))
      (br_if $L (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $hi))))
    (local.get $s))

  ;; Decreasing with ge_u: for (i = hi; i >= lo; i--) s += p[i]
  ;; (i is checked before the decrement wraps: lo > 0 keeps it exact).
  (func (export "sum_down_ge") (param $p i32) (param $lo i32) (param $hi i32) (result i32)
    (local $i i32) (local $s i32)
    (local.set $i (local.get $hi))
    (loop $L
      (local.set $s (i32.add (local.get $s)
        (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
      (br_if $L (i32.ge_u (local.tee $i (i32.add (local.get $i) (i32.const -1)))
                          (local.get $lo))))
    (local.get $s))

  ;; A loop-invariant index: the guard is hoisted into the check.
  (func (export "invariant") (param $x i32) (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $L
      (local.set $s (i32.add (local.get $s) (i32.load offset=4 (local.get $x))))
      (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $n))))
    (local.get $s))

  ;; An early exit on a zero byte before the walk leaves memory: the check
  ;; over the whole trip range fails, the guarded copy runs, and nothing
  ;; traps.
  (func (export "strlen_bounded") (param $p i32) (param $n i32) (result i32)
    (local $i i32)
    (block $done
      (loop $L
        (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
        (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $n)))))
    (local.get $i))

  ;; An access in a conditional arm, taken only while i < k.
  (func (export "sum_prefix") (param $p i32) (param $n i32) (param $k i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $L
      (if (i32.lt_u (local.get $i) (local.get $k))
        (then (local.set $s (i32.add (local.get $s)
          (i32.load8_u (i32.add (local.get $p) (local.get $i)))))))
      (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $n))))
    (local.get $s))

  ;; The index wraps modulo 2^32 part-way: p + i for p near 2^32.
  (func (export "wrap_walk") (param $p i32) (param $n i32) (result i32)
    (local $i i32) (local $s i32)
    (loop $L
      (local.set $s (i32.add (local.get $s)
        (i32.load8_u (i32.add (local.get $p) (local.get $i)))))
      (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                        (local.get $n))))
    (local.get $s))

  ;; `ne` with a distance the step does not divide: the loop runs until
  ;; the counter wraps; the check gives up and the guarded copy traps.
  (func (export "odd_distance") (param $n i32)
    (local $i i32)
    (loop $L
      (i32.store8 (local.get $i) (i32.const 1))
      (br_if $L (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 2)))
                        (local.get $n)))))

  (func (export "reset")
    (memory.fill (i32.const 0) (i32.const 0)
                 (i32.mul (memory.size) (i32.const 65536))))
  (func (export "grow") (param $pages i32) (result i32)
    (memory.grow (local.get $pages)))
  (func (export "load8") (param $a i32) (result i32) (i32.load8_u (local.get $a)))
  (func (export "load32") (param $a i32) (result i32) (i32.load (local.get $a)))
)

;; lt_u: exactly to the bound, then one byte past it.
(assert_return (invoke "fill_up" (i32.const 65526) (i32.const 10)))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 10))
(assert_trap (invoke "fill_up" (i32.const 65530) (i32.const 7)) "out of bounds memory access")
;; The guarded copy stored the six in-bounds bytes before trapping.
(assert_return (invoke "load8" (i32.const 65530)) (i32.const 1))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 6))
;; A do-while body runs once even when n is 0 (i + 1 < 0 is false).
(assert_return (invoke "fill_up" (i32.const 65535) (i32.const 0)))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 1))
(assert_trap (invoke "fill_up" (i32.const 65536) (i32.const 0)) "out of bounds memory access")

;; ne, stride 4: the last word at 65532, then one past.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_ne" (i32.const 65472) (i32.const 16)))
(assert_return (invoke "load32" (i32.const 65532)) (i32.const -1))
(assert_return (invoke "load32" (i32.const 65468)) (i32.const 0))
(assert_return (invoke "reset"))
(assert_trap (invoke "fill_ne" (i32.const 65476) (i32.const 16)) "out of bounds memory access")
(assert_return (invoke "load32" (i32.const 65532)) (i32.const -1))
(assert_trap (invoke "fill_ne" (i32.const 65533) (i32.const 1)) "out of bounds memory access")

;; Counting down: the first store is the highest, so an overrun traps
;; before anything is written.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_down" (i32.const 32768) (i32.const 8192)))
(assert_return (invoke "load32" (i32.const 65532)) (i32.const 7))
(assert_return (invoke "load32" (i32.const 100)) (i32.const 0))
(assert_return (invoke "fill_down" (i32.const 0) (i32.const 26)))
(assert_return (invoke "load32" (i32.const 100)) (i32.const 7))
(assert_return (invoke "load32" (i32.const 104)) (i32.const 0))
(assert_return (invoke "reset"))
(assert_trap (invoke "fill_down" (i32.const 32772) (i32.const 8192)) "out of bounds memory access")
(assert_return (invoke "load32" (i32.const 32772)) (i32.const 0))

;; Pointer induction variables: the last pair ends exactly at the bound,
;; then one byte further, then a source past it.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_down" (i32.const 0) (i32.const 64)))
(assert_return (invoke "copy_pairs" (i32.const 65280) (i32.const 0) (i32.const 32)))
(assert_return (invoke "load32" (i32.const 65380)) (i32.const 7))
(assert_return (invoke "load32" (i32.const 65532)) (i32.const 7))
(assert_trap (invoke "copy_pairs" (i32.const 65281) (i32.const 0) (i32.const 32)) "out of bounds memory access")
(assert_trap (invoke "copy_pairs" (i32.const 0) (i32.const 65281) (i32.const 32)) "out of bounds memory access")

;; Signed latch: i from -5 with p = 20 reads from 0; p = 0 reads at
;; 0 - 20, which wraps to 0xffffffec, out of bounds at once.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_down" (i32.const 0) (i32.const 64)))
(assert_return (invoke "sum_signed" (i32.const 20) (i32.const -5) (i32.const 3)) (i32.const 56))
(assert_trap (invoke "sum_signed" (i32.const 0) (i32.const -5) (i32.const 3)) "out of bounds memory access")
(assert_return (invoke "sum_signed" (i32.const 65532) (i32.const 0) (i32.const -7)) (i32.const 0))
(assert_trap (invoke "sum_signed" (i32.const 65532) (i32.const 0) (i32.const 2)) "out of bounds memory access")

;; Decreasing ge_u from the last byte of the page; with lo = 0 the
;; counter wraps to 0xffffffff, which is still >= 0, and the next load
;; is out of bounds.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_up" (i32.const 65526) (i32.const 10)))
(assert_return (invoke "sum_down_ge" (i32.const 0) (i32.const 65530) (i32.const 65535)) (i32.const 45))
(assert_trap (invoke "sum_down_ge" (i32.const 1) (i32.const 65530) (i32.const 65535)) "out of bounds memory access")
(assert_trap (invoke "sum_down_ge" (i32.const 0) (i32.const 0) (i32.const 3)) "out of bounds memory access")

;; The invariant index: in bounds, then past the bound.
(assert_return (invoke "invariant" (i32.const 65524) (i32.const 3)) (i32.const 302976009))
(assert_trap (invoke "invariant" (i32.const 65529) (i32.const 3)) "out of bounds memory access")

;; An early exit at a zero byte before the walk would leave memory.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_up" (i32.const 65520) (i32.const 6)))
(assert_return (invoke "strlen_bounded" (i32.const 65400) (i32.const 1000)) (i32.const 0))
(assert_return (invoke "strlen_bounded" (i32.const 65520) (i32.const 100)) (i32.const 6))
(assert_return (invoke "strlen_bounded" (i32.const 65520) (i32.const 4)) (i32.const 4))

;; A conditional access that never runs past the bound, then one that does.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_up" (i32.const 65520) (i32.const 16)))
(assert_return (invoke "sum_prefix" (i32.const 65530) (i32.const 100000) (i32.const 2)) (i32.const 23))
(assert_trap (invoke "sum_prefix" (i32.const 65530) (i32.const 100000) (i32.const 7)) "out of bounds memory access")

;; Wrapping indices: p = 0xfffffff0 walks the top of the address space
;; before wrapping to 0; its first access is out of bounds.
(assert_return (invoke "reset"))
(assert_return (invoke "fill_down" (i32.const 0) (i32.const 64)))
(assert_trap (invoke "wrap_walk" (i32.const -16) (i32.const 32)) "out of bounds memory access")
(assert_return (invoke "wrap_walk" (i32.const 0) (i32.const 4)) (i32.const 7))

;; Odd distance: the store at 65536 traps after 32768 stores.
(assert_return (invoke "reset"))
(assert_trap (invoke "odd_distance" (i32.const 7)) "out of bounds memory access")
(assert_return (invoke "load8" (i32.const 65534)) (i32.const 1))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 0))

;; After memory.grow the same calls stay in bounds.
(assert_return (invoke "grow" (i32.const 1)) (i32.const 1))
(assert_return (invoke "reset"))
(assert_return (invoke "fill_up" (i32.const 65530) (i32.const 7)))
(assert_return (invoke "load8" (i32.const 65536)) (i32.const 7))
(assert_return (invoke "invariant" (i32.const 65529) (i32.const 3)) (i32.const 353505036))
(assert_return (invoke "fill_ne" (i32.const 131068) (i32.const 1)))
(assert_trap (invoke "fill_ne" (i32.const 131069) (i32.const 1)) "out of bounds memory access")

;; Calls inside a versioned loop: the callee grows memory (the check made
;; at entry stays true: a bound never shrinks) and may move it (the fast
;; base follows the base reloaded after the call).
(module
  (memory (export "mem") 1 4)
  (func $grow_when (param $i i32) (param $at i32)
    (if (i32.eq (local.get $i) (local.get $at))
      (then (drop (memory.grow (i32.const 1))))))
  (func (export "fill_calling") (param $p i32) (param $n i32) (param $at i32) (result i32)
    (local $i i32)
    (loop $L
      (call $grow_when (local.get $i) (local.get $at))
      (i32.store8 (i32.add (local.get $p) (local.get $i)) (i32.const 9))
      (br_if $L (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1)))
                          (local.get $n))))
    (memory.size))
  (func (export "load8") (param $a i32) (result i32) (i32.load8_u (local.get $a)))
)
;; In bounds at entry: fast copy, growing on the way.
(assert_return (invoke "fill_calling" (i32.const 65000) (i32.const 536) (i32.const 3)) (i32.const 2))
(assert_return (invoke "load8" (i32.const 65535)) (i32.const 9))
;; Out of bounds at entry, in bounds once the callee has grown memory:
;; the guarded copy runs and does not trap.
(assert_return (invoke "fill_calling" (i32.const 131000) (i32.const 1000) (i32.const 0)) (i32.const 3))
(assert_return (invoke "load8" (i32.const 131999)) (i32.const 9))
;; Past even the grown memory: traps at the first byte past it.
(assert_trap (invoke "fill_calling" (i32.const 262000) (i32.const 2000) (i32.const 0)) "out of bounds memory access")
(assert_return (invoke "load8" (i32.const 262143)) (i32.const 9))

;; An index through a product of invariants (`(i*n + k) * 8`, a matrix
;; row): the check computes `i*n` again; in bounds up to the last row,
;; then one row past it; and a product that wraps modulo 2^32.
(module
  (memory 1)
  (func (export "row_fill") (param $i i32) (param $n i32)
    (local $k i32)
    (loop $L
      (f64.store (i32.shl (i32.add (i32.mul (local.get $i) (local.get $n)) (local.get $k))
                          (i32.const 3))
                 (f64.const 1.5))
      (br_if $L (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $n)))))
  (func (export "load64") (param $a i32) (result f64) (f64.load (local.get $a)))
)
(assert_return (invoke "row_fill" (i32.const 63) (i32.const 128)))
(assert_return (invoke "load64" (i32.const 65528)) (f64.const 1.5))
(assert_trap (invoke "row_fill" (i32.const 64) (i32.const 128)) "out of bounds memory access")
;; 0x2000_0000 * 8 rows of 8 bytes wraps to 0: row 0x2000_0000 of width 8
;; is at (0x2000_0000 * 8 + k) * 8 = k * 8 modulo 2^32.
(assert_return (invoke "row_fill" (i32.const 0x20000000) (i32.const 8)))
(assert_return (invoke "load64" (i32.const 56)) (f64.const 1.5))

;; A column walk, `(k*n + j) * 8`: the induction variable times a run-time
;; invariant. The check evaluates that group in 128 bits: to the last row,
;; one row past it, a stride so large the products wrap modulo 2^32, and
;; counting down.
(module
  (memory 1)
  (func (export "column_fill") (param $j i32) (param $n i32) (param $rows i32)
    (local $k i32)
    (loop $L
      (f64.store (i32.shl (i32.add (i32.mul (local.get $k) (local.get $n)) (local.get $j))
                          (i32.const 3))
                 (f64.const 2.5))
      (br_if $L (i32.lt_u (local.tee $k (i32.add (local.get $k) (i32.const 1))) (local.get $rows)))))
  (func (export "column_down") (param $j i32) (param $n i32) (param $rows i32)
    (local $k i32)
    (local.set $k (local.get $rows))
    (loop $L
      (local.set $k (i32.add (local.get $k) (i32.const -1)))
      (f64.store (i32.shl (i32.add (i32.mul (local.get $n) (local.get $k)) (local.get $j))
                          (i32.const 3))
                 (f64.const 3.5))
      (br_if $L (local.get $k))))
  (func (export "load64") (param $a i32) (result f64) (f64.load (local.get $a)))
)
;; 64 rows of 128 doubles: column 127 ends at the last byte.
(assert_return (invoke "column_fill" (i32.const 127) (i32.const 128) (i32.const 64)))
(assert_return (invoke "load64" (i32.const 65528)) (f64.const 2.5))
(assert_trap (invoke "column_fill" (i32.const 127) (i32.const 128) (i32.const 65)) "out of bounds memory access")
;; A stride of 2^29 rows of 8 bytes: k * n * 8 wraps to 0 for every k, so
;; every store lands on column j of row 0.
(assert_return (invoke "column_fill" (i32.const 3) (i32.const 0x20000000) (i32.const 1000)))
(assert_return (invoke "load64" (i32.const 24)) (f64.const 2.5))
(assert_return (invoke "column_down" (i32.const 0) (i32.const 128) (i32.const 64)))
(assert_return (invoke "load64" (i32.const 64512)) (f64.const 3.5))
(assert_trap (invoke "column_down" (i32.const 128) (i32.const 128) (i32.const 64)) "out of bounds memory access")
(assert_return (invoke "load64" (i32.const 65528)) (f64.const 2.5))
