;; Named functions that trap three calls deep, for backtraces: `main`
;; calls `helper`, which calls `abort`, which is `unreachable`; `deep`
;; recurses N times before it traps with an out-of-bounds load.
(module $demo
  (memory 1)
  (func $abort
    unreachable)
  (func $helper (param $x i32)
    (if (local.get $x) (then (call $abort))))
  (func $main (export "main")
    (call $helper (i32.const 1)))
  (func $deep (export "deep") (param $n i32)
    (if (i32.eqz (local.get $n))
      (then (drop (i32.load (i32.const 0x7fffffff))))
      (else (call $deep (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "_start") (call $main))
)
