//! Safepoints: a parked guest's frames can be walked through their stack
//! maps, and a rewritten slot is what the frame uses when it resumes.
//!
//! `tests/programs/frames.wat` recurses and parks in a host call. The host
//! walks the frames, checks that every one keeps its vmctx in the slots its
//! stack map names, and rewrites those slots to the vmctx of a second
//! instance of the same module. When the frames resume they read the
//! second instance's global: the same mechanism relocation uses to move a
//! control block under a running process.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use carat_vm::{FuncType, Val, Vm, VmConfig};

fn run(depth: i32, rewrite: bool) -> (i32, usize) {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm
        .compile_file("tests/programs/frames.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    let target = Arc::new(AtomicUsize::new(0));
    let frames_seen = Arc::new(AtomicUsize::new(0));
    let (target2, seen2) = (target.clone(), frames_seen.clone());
    process.define_func(
        "test",
        "park",
        FuncType::new([], []),
        move |mut caller, _, _| {
            let (own, frames) =
                caller.with_runtime(|caller| (caller.vmctx(), caller.wasm_frames()));
            let own = own.expect("called from wasm") as u64;
            seen2.store(frames.len(), Ordering::SeqCst);
            for frame in &frames {
                assert!(
                    frame.slots().count() >= 1,
                    "no vmctx slot at {:#x}",
                    frame.return_address
                );
                for slot in frame.slots() {
                    // SAFETY: the frames are parked in this very call.
                    unsafe {
                        assert_eq!(*slot, own, "slot does not hold the frame's vmctx");
                        if rewrite {
                            *slot = target2.load(Ordering::SeqCst) as u64;
                        }
                    }
                }
            }
            Ok(())
        },
    );
    let a = process.instantiate(&module).unwrap();
    let b = process.instantiate(&module).unwrap();
    process.invoke(a, "set_id", &[Val::I32(1)]).unwrap();
    process.invoke(b, "set_id", &[Val::I32(1000)]).unwrap();
    target.store(
        process.store().instance(b).vmctx() as usize,
        Ordering::SeqCst,
    );
    let result = process.invoke(a, "rec", &[Val::I32(depth)]).unwrap();
    let Val::I32(sum) = result[0] else {
        panic!("i32 result")
    };
    (sum, frames_seen.load(Ordering::SeqCst))
}

#[test]
fn every_parked_frame_is_found_through_its_stack_map() {
    for depth in [0, 1, 7, 200] {
        let (sum, frames) = run(depth, false);
        assert_eq!(frames, depth as usize + 1);
        assert_eq!(sum, depth + 1);
    }
}

#[test]
fn a_rewritten_slot_is_used_after_resume() {
    for depth in [0, 5, 100] {
        let (sum, frames) = run(depth, true);
        assert_eq!(frames, depth as usize + 1);
        assert_eq!(
            sum,
            1000 * (depth + 1),
            "every frame resumed with the new vmctx"
        );
    }
}
