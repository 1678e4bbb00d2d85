;; A client of the kv service: stores 500 keys of its own (spread by its
;; pid), reads them back, yields between batches, and traps on any wrong
;; answer.
(module
  (import "process:kv" "put" (func $put (param i32 i32)))
  (import "process:kv" "get" (func $get (param i32) (result i32)))
  (import "carat" "getpid" (func $getpid (result i32)))
  (import "carat" "yield" (func $yield))
  (func (export "_start")
    (local $i i32) (local $base i32)
    (local.set $base (i32.mul (call $getpid) (i32.const 1000)))
    (loop $store
      (call $put (i32.add (local.get $base) (local.get $i)) (i32.mul (local.get $i) (i32.const 7)))
      (if (i32.eqz (i32.rem_u (local.get $i) (i32.const 100))) (then (call $yield)))
      (br_if $store (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 500))))
    (local.set $i (i32.const 0))
    (loop $check
      (if (i32.ne (call $get (i32.add (local.get $base) (local.get $i))) (i32.mul (local.get $i) (i32.const 7)))
        (then unreachable))
      (br_if $check (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 500))))
    ;; A key nobody stored.
    (if (i32.ne (call $get (i32.const -5)) (i32.const -1)) (then unreachable)))
)
