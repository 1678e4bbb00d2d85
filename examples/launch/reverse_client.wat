;; Sends a string to the reverse service and checks the reply; traps on a
;; wrong answer. Also checks that a bad buffer is refused with EFAULT.
(module
  (import "carat" "send" (func $send (param i32 i32) (result i32)))
  (import "carat" "receive" (func $receive (param i32 i32) (result i32)))
  (import "process:reverser" "reverse" (func $reverse (result i32)))
  (memory 1)
  (data (i32.const 100) "hello, carat!")
  (data (i32.const 300) "!tarac ,olleh")
  (func (export "_start")
    (local $i i32)
    (if (i32.ne (call $send (i32.const 65530) (i32.const 100)) (i32.const -21)) (then unreachable))
    (if (i32.ne (call $send (i32.const 100) (i32.const 13)) (i32.const 0)) (then unreachable))
    (if (i32.ne (call $reverse) (i32.const 13)) (then unreachable))
    (if (i32.ne (call $receive (i32.const 200) (i32.const 64)) (i32.const 13)) (then unreachable))
    (loop $check
      (if (i32.ne (i32.load8_u offset=200 (local.get $i)) (i32.load8_u offset=300 (local.get $i)))
        (then unreachable))
      (br_if $check (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 13))))
    ;; A receive into a bad range is refused too.
    (if (i32.ne (call $receive (i32.const 65535) (i32.const 64)) (i32.const -21)) (then unreachable)))
)
