;; Dominance across constructs: a guard passed before an `if` or a
;; `block` covers accesses off the same index inside it (no compare, no
;; cmov: the inner loads reuse the outer masked address), but not the
;; other arm of an `if`, and not code after a construct that a branch
;; could have left early.
(module
  (memory 1)
  (func (export "nested") (param $p i32) (param $c i32) (result i32)
    (local $r i32)
    ;; One guard, end 8: covers both arms below.
    (local.set $r (i32.load offset=4 (local.get $p)))
    (if (local.get $c)
      (then (local.set $r (i32.add (local.get $r) (i32.load (local.get $p)))))
      (else
        (block
          (local.set $r (i32.add (local.get $r) (i32.load16_u offset=2 (local.get $p)))))))
    (local.get $r))
  (func (export "arms") (param $p i32) (param $c i32) (result i32)
    ;; A guard in the then arm does not cover the else arm: two guards.
    (if (result i32) (local.get $c)
      (then (i32.load offset=4 (local.get $p)))
      (else (i32.load (local.get $p)))))
)
