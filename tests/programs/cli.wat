;; Functions the command-line tests invoke.
(module
  (memory 1)
  (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
  (func (export "pair") (param i64 f32) (result f32 i64) (local.get 1) (local.get 0))
  (func (export "fid") (param f32) (result f32) (local.get 0))
  (func (export "did") (param f64) (result f64) (local.get 0))
  (func (export "boom") unreachable)
  (func (export "oob") (result i32) (i32.load (i32.const 65535)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
)
