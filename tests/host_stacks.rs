//! Host code runs on a host stack, never on a guest's (see
//! `guest-runtime/src/stack_switch.rs`): a guest stack holds wasm frames
//! and trampolines only, so a guest with the smallest stack can call host
//! functions that need far more stack than it has, and a guest parked
//! after a host call returned holds no host frames at all
//! (`tests/programs/host_calls.wat`).

use std::hint::black_box;

use carat_vm::{CallProgress, FuncType, Mode, Process, Val, ValType, Vm, VmConfig};

/// Uses about 4 KiB of stack per level; returns `depth`.
fn recurse_in_rust(depth: u32) -> u32 {
    let frame = black_box([0u8; 4096]);
    if depth == 0 {
        return u32::from(frame[100]);
    }
    black_box(recurse_in_rust(depth - 1) + 1) + u32::from(black_box(frame)[4000])
}

fn process(vm: &Vm) -> (Process, carat_vm::InstanceId) {
    let module = vm
        .compile_file("tests/programs/host_calls.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    // The smallest stack a manifest allows.
    process.set_max_stack(4096);
    let i32 = ValType::I32;
    process.define_func(
        "host",
        "deep",
        FuncType::new([i32], [i32]),
        |_, args, results| {
            let Val::I32(depth) = args[0] else {
                unreachable!("the signature says i32")
            };
            results[0] = Val::I32(recurse_in_rust(depth as u32) as i32);
            Ok(())
        },
    );
    process.define_func(
        "host",
        "park_inside",
        FuncType::new([], [i32]),
        |caller, _, results| {
            assert!(caller.yield_now(), "a resumable call parks");
            results[0] = Val::I32(1);
            Ok(())
        },
    );
    process.define_func(
        "host",
        "park_after",
        FuncType::new([], [i32]),
        |caller, _, results| {
            results[0] = Val::I32(2);
            assert!(caller.park_on_return(None), "a resumable call parks");
            Ok(())
        },
    );
    let instance = process.instantiate(&module).unwrap();
    (process, instance)
}

/// A host function that needs 512 KiB of stack, called by a guest whose
/// wasm frames may use 4 KiB, in a plain call and in a resumable one; the
/// guest itself still stops at its own limit.
#[test]
fn host_code_never_runs_on_a_small_guest_stack() {
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        let (mut process, instance) = process(&vm);
        let depth = Val::I32(128);
        assert_eq!(
            process.invoke(instance, "deep", &[depth]).unwrap(),
            vec![Val::I32(128)],
            "{mode}: a plain call"
        );
        let func = process.func(instance, "deep").unwrap();
        let mut call = process.start_call(func, &[depth]).unwrap();
        let CallProgress::Done(result) = process.resume(&mut call).unwrap() else {
            panic!("{mode}: it does not park");
        };
        assert_eq!(result.unwrap(), vec![Val::I32(128)], "{mode}: resumable");
        let error = process
            .invoke(instance, "recurse", &[Val::I32(100_000)])
            .unwrap_err();
        assert!(
            error.to_string().contains("call stack exhausted"),
            "{mode}: {error}"
        );
    }
}

/// A call parked inside a host function keeps that function's frames (on
/// a host stack of its own); one parked after its host function returned
/// keeps none. Both finish when resumed, many at once, each on whichever
/// thread resumes it.
#[test]
fn a_guest_parked_after_a_host_call_holds_no_host_frames() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let mut processes: Vec<_> = (0..64).map(|_| process(&vm)).collect();
    let mut calls = Vec::new();
    for (i, (process, instance)) in processes.iter_mut().enumerate() {
        let export = if i % 2 == 0 {
            "park_inside"
        } else {
            "park_after"
        };
        let func = process.func(*instance, export).unwrap();
        let mut call = process.start_call(func, &[]).unwrap();
        let progress = process.resume(&mut call).unwrap();
        assert!(matches!(progress, CallProgress::Suspended), "{progress:?}");
        assert_eq!(call.is_parked_in_host_code(), i % 2 == 0, "{export}");
        calls.push(call);
    }
    // Resumed on another thread than the one they parked on.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for (i, ((process, _), call)) in processes.iter_mut().zip(&mut calls).enumerate() {
                let CallProgress::Done(result) = process.resume(call).unwrap() else {
                    panic!("one park each");
                };
                let expected = if i % 2 == 0 { 1 } else { 2 };
                assert_eq!(result.unwrap(), vec![Val::I32(expected)]);
                assert!(!call.is_parked_in_host_code());
            }
        });
    });
}
