;; Guests of the host-stack tests (tests/host_stacks.rs): each export calls
;; one host function and returns what it returned.
(module
  (import "host" "deep" (func $deep (param i32) (result i32)))
  (import "host" "park_inside" (func $park_inside (result i32)))
  (import "host" "park_after" (func $park_after (result i32)))
  (func (export "deep") (param i32) (result i32) (call $deep (local.get 0)))
  (func (export "park_inside") (result i32) (call $park_inside))
  (func (export "park_after") (result i32) (call $park_after))
  ;; Recursion deep enough to need every byte of a small stack.
  (func $recurse (export "recurse") (param i32) (result i32)
    (if (result i32) (i32.eqz (local.get 0))
      (then (i32.const 0))
      (else (i32.add (i32.const 1)
                     (call $recurse (i32.sub (local.get 0) (i32.const 1))))))))
