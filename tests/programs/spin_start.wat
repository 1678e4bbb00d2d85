;; A _start that never returns: only fuel or a kill ends it.
(module
  (global $n (mut i64) (i64.const 0))
  (func (export "_start")
    (loop $forever
      (global.set $n (i64.add (global.get $n) (i64.const 1)))
      (br $forever))))
