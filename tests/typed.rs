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

/// Host functions from typed closures: the wasm type comes from the
/// closure's, arguments arrive as Rust values, results and errors go
/// back as the guest expects.
#[test]
fn host_functions_from_typed_closures() {
    use carat_vm::{Caller, HostError};
    let wat = r#"(module
        (import "host" "mix" (func $mix (param i32 i64 f64) (result f64)))
        (import "host" "pair" (func $pair (result i32 i32)))
        (import "host" "fail" (func $fail (param i32) (result i32)))
        (import "host" "tick" (func $tick))
        (func (export "mix") (result f64)
          (call $tick)
          (call $mix (i32.const 2) (i64.const 3) (f64.const 0.5)))
        (func (export "pair") (result i32) (i32.sub (call $pair)))
        (func (export "fail") (param i32) (result i32) (call $fail (local.get 0))))"#;
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(wat.as_bytes()).unwrap();
    let mut p = vm.new_process().unwrap();
    let ticks = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = ticks.clone();
    p.func_wrap("host", "mix", |_: &mut Caller, a: i32, b: i64, c: f64| {
        f64::from(a) * b as f64 + c
    });
    p.func_wrap("host", "pair", |_: &mut Caller| (10, 3));
    p.func_wrap("host", "fail", |_: &mut Caller, code: i32| {
        if code == 0 {
            Err(HostError::Trap(Trap::Unreachable))
        } else {
            Ok(code * 2)
        }
    });
    p.func_wrap("host", "tick", move |_: &mut Caller| {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let i = p.instantiate(&module).unwrap();
    assert_eq!(
        p.typed_func::<(), f64>(i, "mix")
            .unwrap()
            .call(&mut p, ())
            .unwrap(),
        6.5
    );
    assert_eq!(ticks.load(std::sync::atomic::Ordering::Relaxed), 1);
    assert_eq!(
        p.typed_func::<(), i32>(i, "pair")
            .unwrap()
            .call(&mut p, ())
            .unwrap(),
        7
    );
    let fail = p.typed_func::<i32, i32>(i, "fail").unwrap();
    assert_eq!(fail.call(&mut p, 21).unwrap(), 42);
    assert_eq!(
        fail.call(&mut p, 0).unwrap_err().trap(),
        Some(Trap::Unreachable)
    );
}
