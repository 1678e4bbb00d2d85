;; Counts to 50 million and exits: a neighbour that needs the CPU.
(module
  (func (export "_start") (local $i i32)
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 50000000))))))
