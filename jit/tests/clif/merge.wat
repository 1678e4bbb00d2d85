;; Merging: loads off one local, in a window where nothing observable
;; happens between them, share one guard that the first checks against
;; the largest end; a store ends the window (it must land before a later
;; load traps), and so does a division (its own trap must come first).
(module
  (memory 1)
  ;; One guard, checking end 24, for all three loads.
  (func (export "fields") (param $p i32) (result f64)
    (f64.add
      (f64.add (f64.load (local.get $p)) (f64.load offset=8 (local.get $p)))
      (f64.load offset=16 (local.get $p))))
  ;; Two guards: the store splits the window.
  (func (export "store_between") (param $p i32) (result i32)
    (i32.load (local.get $p))
    (i32.store offset=4 (local.get $p) (i32.const 1))
    (i32.load offset=8 (local.get $p))
    (i32.add))
  ;; Two guards: the division may trap first.
  (func (export "divide_between") (param $p i32) (param $d i32) (result i32)
    (i32.div_u (i32.load (local.get $p)) (local.get $d))
    (i32.load offset=8 (local.get $p))
    (i32.add))
)
