//! Guest stacks: host code runs on a host stack, never on a guest's (see
//! `guest-runtime/src/stack_switch.rs`), so a guest stack holds wasm frames
//! and trampolines only. A guest with the smallest stack can call host
//! functions that need far more stack than it has, a guest parked after a
//! host call returned holds no host frames at all, and a guest's stack is
//! an arena region that moves like any other, every address into it
//! patched (`guest-runtime/src/stacks.rs`; `tests/programs/host_calls.wat`).

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
        |mut caller, _, results| {
            assert!(caller.yield_now(), "a resumable call parks");
            results[0] = Val::I32(1);
            Ok(())
        },
    );
    process.define_func(
        "host",
        "park_after",
        FuncType::new([], [i32]),
        |mut caller, _, results| {
            results[0] = Val::I32(2);
            assert!(caller.park_on_return(None), "a resumable call parks");
            Ok(())
        },
    );
    let interrupt = process.interrupt_handle();
    process.define_func(
        "host",
        "arm_yield",
        FuncType::new([], []),
        move |_, _, _| {
            interrupt.request_yield();
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

/// A call parked 300 frames deep, in each of the three ways a guest parks,
/// has its stack moved four times while parked, the ranges it leaves
/// poisoned (a frame pointer, saved stack pointer or exit record left
/// unpatched would crash or return garbage), and finishes with the right
/// sum; and the same in paging mode, where stacks do not move.
#[test]
fn a_parked_stack_moves_and_resumes() {
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            poison_moves: true,
            ..VmConfig::default()
        })
        .unwrap();
        for (how, park_value) in [(0, 1), (1, 2), (2, 3)] {
            let (mut process, instance) = process(&vm);
            process.set_max_stack(1 << 20);
            let func = process.func(instance, "down").unwrap();
            let mut call = process
                .start_call(func, &[Val::I32(300), Val::I32(how)])
                .unwrap();
            let progress = process.resume(&mut call).unwrap();
            assert!(matches!(progress, CallProgress::Suspended), "{progress:?}");
            let mut addresses = vec![call.stack_address()];
            let moves = vm.stats().relocations;
            for _ in 0..4 {
                let moved = process.store().relocate_all();
                assert_eq!(moved, mode == Mode::Carat, "{mode}");
                addresses.push(call.stack_address());
            }
            if mode == Mode::Carat {
                assert!(vm.stats().relocations >= moves + 4);
                for pair in addresses.windows(2) {
                    assert_ne!(pair[0], pair[1], "the stack moved at every move");
                }
            }
            let CallProgress::Done(result) = process.resume(&mut call).unwrap() else {
                panic!("{mode}, park {how}: one park only");
            };
            assert_eq!(
                result.unwrap(),
                vec![Val::I32(300 * 301 / 2 + park_value)],
                "{mode}, park {how}"
            );
        }
    }
}

/// A recursion 10,000 deep starts on a small arena stack and finishes on a
/// stack grown several times by moving (each move patching the frames
/// above it, the old range poisoned), with the same result as in paging
/// mode, where the stack is its full size from the start; and the same
/// again while every region moves at every poll. Past the limit it is
/// `call stack exhausted`, as before.
#[test]
fn a_deep_recursion_grows_its_stack_by_moving_it() {
    let run = |mode, relocate_every| {
        let vm = Vm::new(VmConfig {
            mode,
            relocate_every,
            poison_moves: true,
            ..VmConfig::default()
        })
        .unwrap();
        let (mut process, instance) = process(&vm);
        process.set_max_stack(1 << 20);
        let result = process
            .invoke(instance, "recurse", &[Val::I32(10_000)])
            .unwrap();
        let func = process.func(instance, "down").unwrap();
        let mut call = process
            .start_call(func, &[Val::I32(5_000), Val::I32(2)])
            .unwrap();
        assert!(matches!(
            process.resume(&mut call).unwrap(),
            CallProgress::Suspended
        ));
        let CallProgress::Done(resumed) = process.resume(&mut call).unwrap() else {
            panic!("one park only");
        };
        let exhausted = process
            .invoke(instance, "recurse", &[Val::I32(1_000_000)])
            .unwrap_err();
        assert!(exhausted.to_string().contains("call stack exhausted"));
        (result, resumed.unwrap(), vm.stats().stacks_grown)
    };
    let (paging, paging_resumed, grown) = run(Mode::Paging, None);
    assert_eq!(paging, vec![Val::I32(10_000)]);
    assert_eq!(paging_resumed, vec![Val::I32(5_000 * 5_001 / 2 + 3)]);
    assert_eq!(grown, 0, "mapped stacks are full-sized");
    for relocate_every in [None, Some(1)] {
        let (carat, carat_resumed, grown) = run(Mode::Carat, relocate_every);
        assert_eq!((&carat, &carat_resumed), (&paging, &paging_resumed));
        assert!(grown >= 3, "{relocate_every:?}: grown {grown} times");
    }
}

/// Stacks count against the VM's memory budget like every other arena
/// region: a recursion whose stack would grow past the budget ends with
/// `call stack exhausted` (the growth is refused), and the same recursion
/// runs under a budget that holds its stack. What a call's stack held is
/// the budget's again once the call ends.
#[test]
fn a_stack_grows_only_within_the_vm_memory_budget() {
    let recurse = |budget: u64| {
        let vm = Vm::new(VmConfig {
            memory_budget: Some(budget),
            ..VmConfig::default()
        })
        .unwrap();
        let (mut process, instance) = process(&vm);
        process.set_max_stack(32 << 20);
        let result = process.invoke(instance, "recurse", &[Val::I32(100_000)]);
        let again = process.invoke(instance, "recurse", &[Val::I32(10)]);
        (result.map_err(|e| e.to_string()), again.is_ok())
    };
    let (tight, small_runs) = recurse(512 << 10);
    assert!(
        tight
            .as_ref()
            .is_err_and(|e| e.contains("call stack exhausted")),
        "{tight:?}"
    );
    assert!(small_runs, "the refused growth's bytes are free again");
    let (roomy, _) = recurse(64 << 20);
    assert_eq!(roomy.unwrap(), vec![Val::I32(100_000)]);
}
