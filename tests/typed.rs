//! Typed calls: a function's wasm type is checked once, when it is made
//! a `TypedFunc`, and its calls take and return Rust values.

use carat_vm::{Trap, Vm, VmConfig};

const MODULE: &str = r#"
(module
  (func (export "add") (param i32 i64) (result i64)
    (i64.add (i64.extend_i32_s (local.get 0)) (local.get 1)))
  (func (export "scale") (param f64 f32) (result f64)
    (f64.mul (local.get 0) (f64.promote_f32 (local.get 1))))
  (func (export "pair") (result i32 f64) (i32.const 7) (f64.const 0.5))
  (func (export "nothing"))
  (func (export "divide") (param i32 i32) (result i32)
    (i32.div_u (local.get 0) (local.get 1))))
"#;

#[test]
fn typed_functions_take_and_return_rust_values() {
    for mode in carat_vm::Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        let module = vm.compile_any(MODULE.as_bytes()).unwrap();
        let mut p = vm.new_process().unwrap();
        let i = p.instantiate(&module).unwrap();
        let add = p.typed_func::<(i32, i64), i64>(i, "add").unwrap();
        assert_eq!(add.call(&mut p, (-2, 1 << 40)).unwrap(), (1 << 40) - 2);
        let scale = p.typed_func::<(f64, f32), f64>(i, "scale").unwrap();
        assert_eq!(scale.call(&mut p, (3.0, 0.5)).unwrap(), 1.5);
        let pair = p.typed_func::<(), (i32, f64)>(i, "pair").unwrap();
        assert_eq!(pair.call(&mut p, ()).unwrap(), (7, 0.5));
        let nothing = p.typed_func::<(), ()>(i, "nothing").unwrap();
        nothing.call(&mut p, ()).unwrap();
        let divide = p.typed_func::<(i32, i32), i32>(i, "divide").unwrap();
        assert_eq!(divide.call(&mut p, (7, 2)).unwrap(), 3);
        let error = divide.call(&mut p, (7, 0)).unwrap_err();
        assert_eq!(error.trap(), Some(Trap::IntegerDivideByZero), "{mode}");
        assert!(error.backtrace().is_some());
    }
}

#[test]
fn a_wrong_type_is_refused_naming_both() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(MODULE.as_bytes()).unwrap();
    let mut p = vm.new_process().unwrap();
    let i = p.instantiate(&module).unwrap();
    let error = p.typed_func::<(i32, i32), i64>(i, "add").err().unwrap();
    assert_eq!(
        error.to_string(),
        "the function's type is (func (param i32 i64) (result i64)), not (func (param i32 i32) (result i64))"
    );
    assert!(p.typed_func::<(), i32>(i, "pair").is_err());
    assert!(p.typed_func::<(), ()>(i, "missing").is_err());
}
