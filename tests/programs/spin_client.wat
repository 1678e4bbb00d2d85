;; A client of tests/programs/spin_service.wat that asks for real work 200
;; times and checks every answer (a wrong one traps).
(module
  (import "process:spin" "work" (func $work (param i32) (result i32)))
  (func (export "_start") (local $i i32)
    (local.set $i (i32.const 1))
    (loop $next
      (if (i32.ne (call $work (local.get $i)) (i32.shl (local.get $i) (i32.const 1)))
        (then unreachable))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $next (i32.le_u (local.get $i) (i32.const 200))))))
