;; A well-behaved neighbour: fills its memory with a pattern and checks it.
(module
  (memory 1)
  (func (export "fill") (memory.fill (i32.const 0) (i32.const 0x5A) (i32.const 65536)))
  (func (export "checksum") (result i64)
    (local $i i32) (local $sum i64)
    (loop $next
      (local.set $sum (i64.add (i64.mul (local.get $sum) (i64.const 31))
        (i64.load8_u (local.get $i))))
      (br_if $next (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 65536))))
    (local.get $sum))
)
