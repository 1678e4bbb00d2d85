;; A service whose entry point `work(n)` answers 2n, except that for n = 0
;; it spins forever (tests/launch/spinning_provider.toml): a hostile
;; client can make it spin, and the supervisor must kill that call and
;; go on serving the others.
(module
  (memory 1)
  (global $served (mut i32) (i32.const 0))
  (func (export "work") (param $n i32) (result i32)
    (if (i32.eqz (local.get $n))
      (then (loop $forever (br $forever))))
    (global.set $served (i32.add (global.get $served) (i32.const 1)))
    (i32.shl (local.get $n) (i32.const 1))))
