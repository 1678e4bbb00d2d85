;; A service whose entry point reverses a buffer: it receives the caller's
;; bytes through the supervisor (carat.receive), reverses them in its own
;; memory and sends them back (carat.send).
(module
  (import "carat" "receive" (func $receive (param i32 i32) (result i32)))
  (import "carat" "send" (func $send (param i32 i32) (result i32)))
  (memory 1)
  (func (export "reverse") (result i32)
    (local $n i32) (local $i i32) (local $j i32) (local $t i32)
    (local.set $n (call $receive (i32.const 0) (i32.const 4096)))
    (if (i32.gt_s (local.get $n) (i32.const 4096)) (then (local.set $n (i32.const 4096))))
    (if (i32.gt_s (local.get $n) (i32.const 0))
      (then
        (local.set $j (i32.sub (local.get $n) (i32.const 1)))
        (block $done
          (loop $swap
            (br_if $done (i32.ge_s (local.get $i) (local.get $j)))
            (local.set $t (i32.load8_u (local.get $i)))
            (i32.store8 (local.get $i) (i32.load8_u (local.get $j)))
            (i32.store8 (local.get $j) (local.get $t))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (local.set $j (i32.sub (local.get $j) (i32.const 1)))
            (br $swap)))))
    (drop (call $send (i32.const 0) (local.get $n)))
    (local.get $n))
)
