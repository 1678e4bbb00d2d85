;; A key-value service whose own `_start` stays busy while clients call
;; its entry points: it recurses 50 frames deep, then yields until the 8
;; clients of tests/launch/relocation_race.toml have stored their 4,000
;; keys. Its parked frames hold its vmctx while calls run in its context.
(module
  (import "carat" "yield" (func $yield))
  (memory 4)
  (global $count (mut i32) (i32.const 0))
  (func $slot (param $key i32) (result i32)
    (local $i i32)
    (local.set $i (i32.and (i32.mul (local.get $key) (i32.const 0x9E3779B1)) (i32.const 16383)))
    (block $found
      (loop $probe
        (br_if $found (i32.eqz (i32.load (i32.shl (local.get $i) (i32.const 3)))))
        (br_if $found (i32.eq (i32.load (i32.shl (local.get $i) (i32.const 3)))
                              (i32.add (local.get $key) (i32.const 1))))
        (local.set $i (i32.and (i32.add (local.get $i) (i32.const 1)) (i32.const 16383)))
        (br $probe)))
    (i32.shl (local.get $i) (i32.const 3)))
  (func (export "put") (param $key i32) (param $value i32)
    (local $at i32)
    (local.set $at (call $slot (local.get $key)))
    (if (i32.eqz (i32.load (local.get $at)))
      (then (global.set $count (i32.add (global.get $count) (i32.const 1)))))
    (i32.store (local.get $at) (i32.add (local.get $key) (i32.const 1)))
    (i32.store offset=4 (local.get $at) (local.get $value)))
  (func (export "get") (param $key i32) (result i32)
    (local $at i32)
    (local.set $at (call $slot (local.get $key)))
    (if (result i32) (i32.eqz (i32.load (local.get $at)))
      (then (i32.const -1))
      (else (i32.load offset=4 (local.get $at)))))
  (func $wait (param $depth i32) (local $spins i32)
    (if (local.get $depth)
      (then (call $wait (i32.sub (local.get $depth) (i32.const 1))) (return)))
    (loop $spin
      (call $yield)
      ;; Never hang a test: give up (trapping) after a million yields.
      (local.set $spins (i32.add (local.get $spins) (i32.const 1)))
      (if (i32.gt_u (local.get $spins) (i32.const 1000000)) (then unreachable))
      (br_if $spin (i32.lt_u (global.get $count) (i32.const 4000)))))
  (func (export "_start") (call $wait (i32.const 50))))
