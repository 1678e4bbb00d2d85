;; A 4 GiB memory with two words written, moved at every poll under
;; --relocate-every 1 (tests/cli_cases.toml): each move copies what the
;; memory holds, not its size, so the stress run takes milliseconds.
(module
  (memory 65535)
  (func (export "run") (result i32) (local $i i32)
    (i32.store (i32.const 100) (i32.const 7))
    (i32.store (i32.const 0xfff00000) (i32.const 9))
    (loop $l
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_u (local.get $i) (i32.const 50))))
    (i32.add (i32.load (i32.const 100)) (i32.load (i32.const 0xfff00000)))))
