;;! mode = paging
;; Paging mode: the guard region covers small offsets, so no check; an
;; offset past it is checked; a constant address within the minimum is
;; neither checked nor able to fault.
(module
  (memory 1)
  (func (export "small") (param i32) (result i32)
    (i32.load offset=16 (local.get 0)))
  (func (export "huge_offset") (param i32) (result i32)
    (i32.load offset=4294967295 (local.get 0)))
  (func (export "constant") (result i32)
    (i32.load (i32.const 8)))
)
