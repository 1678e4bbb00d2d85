;; A plugin for examples/embed: it scores a word the host lends it, logs
;; through the host, and counts its calls in the host's data.
(module
  (import "host" "log" (func $log (param i32 i32)))
  (import "host" "weight" (func $weight (param i32) (result i64)))
  (memory (export "memory") 1)
  (data (i32.const 0) "scoring")
  (global $calls (mut i32) (i32.const 0))

  ;; The sum of each letter's weight (the host's) over the word at
  ;; `at`, `len` bytes long.
  (func $score (export "score") (param $at i32) (param $len i32) (result i64)
    (local $i i32) (local $sum i64)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (call $log (i32.const 0) (i32.const 7))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (local.set $sum
          (i64.add (local.get $sum)
            (call $weight (i32.load8_u (i32.add (local.get $at) (local.get $i))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (local.get $sum))

  (func (export "calls") (result i32) (global.get $calls))

  ;; Traps, so the host can show where.
  (func $check (param i32)
    (if (i32.eqz (local.get 0)) (then unreachable)))
  (func $crash (export "crash") (call $check (i32.const 0))))
