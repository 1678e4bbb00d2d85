//! Typed calls: a function's wasm type is checked once, when it is made
//! a `TypedFunc`, and its calls take and return Rust values.

use carat_vm::{GuestAddr, Trap, Val, Vm, VmConfig};

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
    p.func_wrap("host", "mix", |_: Caller<'_>, a: i32, b: i64, c: f64| {
        f64::from(a) * b as f64 + c
    });
    p.func_wrap("host", "pair", |_: Caller<'_>| (10, 3));
    p.func_wrap("host", "fail", |_: Caller<'_>, code: i32| {
        if code == 0 {
            Err(HostError::Trap(Trap::Unreachable))
        } else {
            Ok(code * 2)
        }
    });
    p.func_wrap("host", "tick", move |_: Caller<'_>| {
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

/// A guest that counts through the host, greets by a string in its
/// memory, panics the host, and re-exports the host's counter.
const LINKED: &str = r#"(module
    (import "host" "count" (func $count (result i32)))
    (import "host" "greet" (func $greet (param i32 i32)))
    (import "host" "panic" (func $panic))
    (memory (export "memory") 1)
    (data (i32.const 16) "carat")
    (export "count" (func $count))
    (func (export "twice") (result i32) (drop (call $count)) (call $count))
    (func (export "greet") (call $greet (i32.const 16) (i32.const 5)))
    (func (export "panic") (call $panic)))"#;

/// What each process of the linker tests holds.
#[derive(Default)]
struct Tally {
    count: i32,
    greeted: String,
}

fn linker(vm: &Vm) -> carat_vm::Linker<Tally> {
    use carat_vm::{Caller, Linker};
    let mut linker = Linker::<Tally>::new(vm);
    linker
        .func_wrap("host", "count", |mut caller: Caller<'_, Tally>| {
            caller.data_mut().count += 1;
            caller.data().count
        })
        .unwrap()
        .func_wrap(
            "host",
            "greet",
            |mut caller: Caller<'_, Tally>, at: i32, len: i32| {
                let memory = caller.memory().expect("the guest has a memory");
                let bytes = memory.slice(GuestAddr(at as u32), len as u64);
                let greeting = String::from_utf8_lossy(bytes.expect("in bounds")).into_owned();
                caller.data_mut().greeted = greeting;
            },
        )
        .unwrap()
        .func_wrap("host", "panic", |caller: Caller<'_, Tally>| {
            if caller.data().count < 1000 {
                panic!("host gave up after {}", caller.data().count)
            }
        })
        .unwrap();
    linker
}

/// Functions defined once in a linker serve every process, each with its
/// own data: two processes count apart, a host function reads its
/// caller's memory, and the host calling a re-exported host function sees
/// the process's data too.
#[test]
fn a_linker_defines_host_functions_once_for_processes_with_their_own_data() {
    use carat_vm::Process;
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(LINKED.as_bytes()).unwrap();
    let linker = linker(&vm);
    let mut first = Process::new(&vm, Tally::default()).unwrap();
    let mut second = Process::new(
        &vm,
        Tally {
            count: 100,
            ..Tally::default()
        },
    )
    .unwrap();
    let a = linker.instantiate(&mut first, &module).unwrap();
    let b = linker.instantiate(&mut second, &module).unwrap();
    let twice_a = first.typed_func::<(), i32>(a, "twice").unwrap();
    let twice_b = second.typed_func::<(), i32>(b, "twice").unwrap();
    assert_eq!(twice_a.call(&mut first, ()).unwrap(), 2);
    assert_eq!(twice_b.call(&mut second, ()).unwrap(), 102);
    assert_eq!(twice_a.call(&mut first, ()).unwrap(), 4);
    assert_eq!((first.data().count, second.data().count), (4, 102));
    // The host calls the re-exported host function directly.
    let count = first.typed_func::<(), i32>(a, "count").unwrap();
    assert_eq!(count.call(&mut first, ()).unwrap(), 5);
    first.data_mut().count = 10;
    assert_eq!(count.call(&mut first, ()).unwrap(), 11);
    first.invoke(a, "greet", &[]).unwrap();
    assert_eq!(first.data().greeted, "carat");
    assert_eq!(second.data().greeted, "");
}

/// A panicking host function fails the call with the panic's message;
/// the process stays usable.
#[test]
fn a_host_function_panic_keeps_its_message_and_the_process_goes_on() {
    use carat_vm::Process;
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(LINKED.as_bytes()).unwrap();
    let linker = linker(&vm);
    let mut process = Process::new(&vm, Tally::default()).unwrap();
    let instance = linker.instantiate(&mut process, &module).unwrap();
    process.invoke(instance, "twice", &[]).unwrap();
    let error = process.invoke(instance, "panic", &[]).unwrap_err();
    let message = format!("{:#}", anyhow::Error::from(error));
    assert!(message.contains("host gave up after 2"), "{message}");
    assert_eq!(
        process.invoke(instance, "twice", &[]).unwrap(),
        vec![Val::I32(4)]
    );
}

/// A name defined twice, a linker of another VM, and an import the
/// linker lacks are errors that say so.
#[test]
fn linker_mistakes_are_errors() {
    use carat_vm::{Caller, Linker, Process, VmError};
    let vm = Vm::new(VmConfig::default()).unwrap();
    let mut linker = Linker::<()>::new(&vm);
    linker.func_wrap("host", "f", |_: Caller<'_>| 1).unwrap();
    let again = linker.func_wrap("host", "f", |_: Caller<'_>| 2);
    assert!(matches!(again, Err(VmError::DuplicateDefinition { .. })));
    let module = vm
        .compile_any(br#"(module (import "host" "g" (func)))"#)
        .unwrap();
    let mut process = Process::new(&vm, ()).unwrap();
    let missing = linker.instantiate(&mut process, &module).unwrap_err();
    assert_eq!(missing.to_string(), "unknown import `host::g`");
    let other = Vm::new(VmConfig::default()).unwrap();
    let mut stranger = other.new_process().unwrap();
    assert!(matches!(
        linker.instantiate(&mut stranger, &module),
        Err(VmError::ForeignLinker)
    ));
}
