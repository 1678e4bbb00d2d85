;; Guests that never stop on their own, or take a long time: for
;; preemption at polls.
(module
  (global $n (export "n") (mut i64) (i64.const 0))
  (func (export "spin")
    (loop $forever
      (global.set $n (i64.add (global.get $n) (i64.const 1)))
      (br $forever)))
  (func (export "count_to") (param $limit i64) (result i64)
    (loop $more
      (global.set $n (i64.add (global.get $n) (i64.const 1)))
      (br_if $more (i64.lt_u (global.get $n) (local.get $limit))))
    (global.get $n))
)
