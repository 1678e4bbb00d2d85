;; Shell sort of n pseudo-random i32s; returns a checksum of the sorted
;; array that also checks the order.
(module
  (memory 16)
  (func (export "run") (param $n i32) (result i64)
    (local $i i32) (local $j i32) (local $gap i32) (local $v i32) (local $x i32) (local $sum i64)
    (local.set $x (i32.const 42))
    (loop $fill
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 13))))
      (local.set $x (i32.xor (local.get $x) (i32.shr_u (local.get $x) (i32.const 17))))
      (local.set $x (i32.xor (local.get $x) (i32.shl (local.get $x) (i32.const 5))))
      (i32.store (i32.shl (local.get $i) (i32.const 2)) (local.get $x))
      (br_if $fill (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.set $gap (i32.shr_u (local.get $n) (i32.const 1)))
    (block $sorted
      (loop $gaps
        (br_if $sorted (i32.eqz (local.get $gap)))
        (local.set $i (local.get $gap))
        (block $pass_done
          (loop $pass
            (br_if $pass_done (i32.ge_u (local.get $i) (local.get $n)))
            (local.set $v (i32.load (i32.shl (local.get $i) (i32.const 2))))
            (local.set $j (local.get $i))
            (block $placed
              (loop $shift
                (br_if $placed (i32.lt_u (local.get $j) (local.get $gap)))
                (br_if $placed (i32.le_s
                  (i32.load (i32.shl (i32.sub (local.get $j) (local.get $gap)) (i32.const 2)))
                  (local.get $v)))
                (i32.store (i32.shl (local.get $j) (i32.const 2))
                  (i32.load (i32.shl (i32.sub (local.get $j) (local.get $gap)) (i32.const 2))))
                (local.set $j (i32.sub (local.get $j) (local.get $gap)))
                (br $shift)))
            (i32.store (i32.shl (local.get $j) (i32.const 2)) (local.get $v))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $pass)))
        (local.set $gap (i32.shr_u (local.get $gap) (i32.const 1)))
        (br $gaps)))
    (local.set $i (i32.const 1))
    (loop $check
      (if (i32.gt_s (i32.load (i32.shl (i32.sub (local.get $i) (i32.const 1)) (i32.const 2)))
                    (i32.load (i32.shl (local.get $i) (i32.const 2))))
        (then unreachable))
      (local.set $sum (i64.add (i64.mul (local.get $sum) (i64.const 31))
        (i64.extend_i32_s (i32.load (i32.shl (local.get $i) (i32.const 2))))))
      (br_if $check (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $sum))
)
