;; Grows its memory one page at a time, writing the page number into each
;; new page and checking every earlier one after each growth: memory that
;; moves must keep its bytes. `step` grows once and returns the new page
;; count (-1 if memory cannot grow); `_start` steps to 256 pages.
(module
  (memory (export "memory") 1)
  (func $step (export "step") (result i32) (local $page i32) (local $check i32)
    (local.set $page (memory.grow (i32.const 1)))
    (if (i32.lt_s (local.get $page) (i32.const 0)) (then (return (i32.const -1))))
    (i32.store (i32.shl (local.get $page) (i32.const 16)) (local.get $page))
    (local.set $check (i32.const 1))
    (loop $verify
      (if (i32.ne (i32.load (i32.shl (local.get $check) (i32.const 16))) (local.get $check))
        (then unreachable))
      (br_if $verify (i32.le_u (local.tee $check (i32.add (local.get $check) (i32.const 1)))
                               (local.get $page))))
    (i32.add (local.get $page) (i32.const 1)))
  (func (export "_start")
    (loop $grow
      (br_if $grow (i32.lt_u (call $step) (i32.const 256))))))
