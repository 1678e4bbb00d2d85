//! The fault handler: a memory fault at a heap-access instruction becomes
//! the guest's `out of bounds memory access` only when the faulting
//! address lies inside the running store's own memory reservations. Any
//! other fault, even at the same instruction, is the VM's bug, and must
//! crash the host as it would have without carat-vm, not pass for a trap.
//!
//! The crash runs in a child process (this test binary again, told so by
//! an environment variable), whose death by SIGSEGV the parent checks.

use std::os::unix::process::ExitStatusExt;
use std::process::Command;

use carat_vm::{Mode, Trap, Val, Vm, VmConfig};

const CHILD: &str = "CARAT_SIGNALS_CHILD";

const GUEST: &[u8] =
    br#"(module (memory 1) (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))"#;

/// Runs a paging-mode load through a memory base pointed somewhere wild.
fn load_through_a_corrupt_base() {
    let vm = Vm::new(VmConfig {
        mode: Mode::Paging,
        ..VmConfig::default()
    })
    .unwrap();
    let module = vm.compile_any(GUEST).unwrap();
    let mut process = vm.new_process().unwrap();
    let instance = process.instantiate(&module).unwrap();
    // A fault inside the guest's reservation is its trap.
    let out_of_bounds = process.invoke(instance, "load", &[Val::I32(70_000)]);
    assert_eq!(
        out_of_bounds.unwrap_err().trap(),
        Some(Trap::MemoryOutOfBounds)
    );
    let store = process.store();
    let own = store.instance(instance);
    let base_field = own.module().compiled.layout.memory_def(0) as usize;
    // SAFETY: the first word of the memory definition inside the live
    // vmctx; no guest runs. This is the corruption under test.
    unsafe { *own.vmctx().add(base_field).cast::<usize>() = 0x10_000 };
    let result = process.invoke(instance, "load", &[Val::I32(4)]);
    // Reaching here means the wild fault passed for a guest trap.
    println!("the wild fault came back as {result:?}");
    std::process::exit(0);
}

#[test]
fn a_wild_fault_at_a_heap_access_crashes_instead_of_trapping() {
    if std::env::var_os(CHILD).is_some() {
        load_through_a_corrupt_base();
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_wild_fault_at_a_heap_access_crashes_instead_of_trapping",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.signal(),
        Some(libc::SIGSEGV),
        "{:?}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
}

/// A thread without an alternate signal stack (one the embedder made some
/// other way than std, simulated by taking std's down) gets one when it
/// first runs a guest, so a trap's handler never runs on a guest stack;
/// and the trap is reported as usual.
#[test]
fn a_thread_without_a_signal_stack_gets_one() {
    std::thread::spawn(|| {
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: a valid stack_t; no handler runs now.
        assert_eq!(
            unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) },
            0
        );
        let signal_stack = || {
            // SAFETY: all-zero is a valid stack_t to read into.
            let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
            // SAFETY: reads into a valid struct.
            assert_eq!(
                unsafe { libc::sigaltstack(std::ptr::null(), &mut current) },
                0
            );
            current
        };
        assert_ne!(signal_stack().ss_flags & libc::SS_DISABLE, 0);
        let vm = Vm::new(VmConfig::default()).unwrap();
        let module = vm.compile_any(GUEST).unwrap();
        let mut process = vm.new_process().unwrap();
        let instance = process.instantiate(&module).unwrap();
        let error = process
            .invoke(instance, "load", &[Val::I32(-4)])
            .unwrap_err();
        assert!(error.to_string().contains("out of bounds"), "{error}");
        let installed = signal_stack();
        assert_eq!(installed.ss_flags & libc::SS_DISABLE, 0);
        assert!(installed.ss_size >= 32 * 1024, "{}", installed.ss_size);
    })
    .join()
    .unwrap();
}
