;; A key-value service: entry points `put(key, value)` and `get(key)` over
;; an open-addressing table in its own memory. Other processes call them
;; through `process:kv` imports; they never see this memory.
(module
  (memory 4)
  (global $count (mut i32) (i32.const 0))
  ;; 16,384 slots of (key: i32, value: i32); key 0 marks an empty slot, so
  ;; keys are stored plus one.
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
  (func (export "size") (result i32) (global.get $count))
)
