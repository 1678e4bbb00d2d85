;; Guests of the host-stack tests (tests/stacks.rs): each export calls
;; one host function and returns what it returned.
(module
  (import "host" "deep" (func $deep (param i32) (result i32)))
  (import "host" "park_inside" (func $park_inside (result i32)))
  (import "host" "park_after" (func $park_after (result i32)))
  (import "host" "arm_yield" (func $arm_yield))
  (func (export "deep") (param i32) (result i32) (call $deep (local.get 0)))
  (func (export "park_inside") (result i32) (call $park_inside))
  (func (export "park_after") (result i32) (call $park_after))
  ;; Recursion deep enough to need every byte of a small stack.
  (func $recurse (export "recurse") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1)
                     (call $recurse (i32.sub (local.get 0) (i32.const 1)))))))
  ;; Zero, read through the vmctx by every frame after the park: a frame
  ;; whose vmctx slot was not patched reads the poison its old range holds.
  (global $zero (mut i32) (i32.const 0))
  ;; Recurses `n` deep, then parks in the deepest frame, as `how` says: 0
  ;; inside a host call, 1 after one returned, 2 at a loop's poll (a host
  ;; call asks for the yield first); returns n(n+1)/2 plus the park's
  ;; value (1, 2, or 3). Every frame's `n` lives across the park, in the
  ;; stack the park leaves behind.
  (func $down (export "down") (param $n i32) (param $how i32) (result i32)
    (local $i i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then
        (if (result i32) (i32.eqz (local.get $how))
          (then (call $park_inside))
          (else
            (if (result i32) (i32.eq (local.get $how) (i32.const 1))
              (then (call $park_after))
              (else
                (call $arm_yield)
                (loop $spin
                  (local.set $i (i32.add (local.get $i) (i32.const 1)))
                  (br_if $spin (i32.lt_u (local.get $i) (i32.const 3))))
                (local.get $i))))))
      (else
        (i32.add
          (call $down (i32.sub (local.get $n) (i32.const 1)) (local.get $how))
          (i32.add (local.get $n) (global.get $zero))))))
)
