//! What a process costs the host's heap, measured by a counting
//! allocator: WASI and the carat ABI are defined once per VM, so a
//! process holds its own state (arguments, files, mailbox) and an `Arc`
//! per function it imports, not a closure, signature and two strings for
//! every function of every module it was given.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use carat_vm::{Mode, Vm, VmConfig, WasiConfig};

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call goes to the system allocator unchanged; the counter
// is only arithmetic on the sizes asked for.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract is System's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: as in `alloc`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Held by every test here: the counter is global, so a test running
/// beside another would count its allocations too.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn alone() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

const PROCESSES: usize = 500;

/// Host heap per instantiated process of a C hello-world given WASI and
/// the carat ABI, in both modes.
#[test]
fn a_wasi_process_costs_little_host_heap() {
    let _alone = alone();
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        let module = vm.compile_file("examples/c/hello.wasm".as_ref()).unwrap();
        // One process first, so that what is made once per VM (the shared
        // modules, the signature registry's entries) is not counted.
        let mut warm = vm.new_process().unwrap();
        warm.add_carat_abi();
        warm.add_wasi(WasiConfig::default()).unwrap();
        warm.instantiate(&module).unwrap();
        let before = LIVE.load(Ordering::Relaxed);
        let processes: Vec<_> = (0..PROCESSES)
            .map(|i| {
                let mut p = vm.new_process().unwrap();
                p.add_carat_abi();
                p.add_wasi(WasiConfig {
                    args: vec!["hello".into(), i.to_string()],
                    ..WasiConfig::default()
                })
                .unwrap();
                p.instantiate(&module).unwrap();
                p
            })
            .collect();
        let per_process = (LIVE.load(Ordering::Relaxed) - before) / PROCESSES as isize;
        drop(processes);
        eprintln!("{mode}: {per_process} bytes of host heap per process");
        // Defining the 46 WASI and 7 carat functions per process made it
        // 14.3 KB in CARAT mode; sharing them, 2.6 KB.
        assert!(
            per_process < 4096,
            "{mode}: {per_process} bytes of host heap per process"
        );
    }
}

/// `Vm::sample_footprint` counts what the live processes hold, by region
/// kind, and `stats` keeps the sample with the most processes alive.
#[test]
fn the_footprint_counts_live_processes_by_region_kind() {
    let _alone = alone();
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm
        .compile(&wat::parse_str("(module (memory 3) (table 5 funcref))").unwrap())
        .unwrap();
    let processes: Vec<_> = (0..200)
        .map(|_| {
            let mut p = vm.new_process().unwrap();
            p.instantiate(&module).unwrap();
            p
        })
        .collect();
    assert_eq!(vm.processes_live(), 200);
    let footprint = vm.sample_footprint();
    assert_eq!(footprint.processes_live, 200);
    assert_eq!(footprint.arena_linear_memory_bytes, 200 * 3 * 65536);
    assert!(footprint.arena_control_block_bytes >= 200 * 64);
    assert!(footprint.arena_table_bytes >= 200 * 5 * 8);
    assert_eq!(footprint.arena_stack_bytes, 0);
    assert!(footprint.host_heap_bytes > 0 && footprint.resident_bytes > 0);
    assert!(footprint.bytes_per_process >= 3 * 65536);
    drop(processes);
    assert_eq!(vm.processes_live(), 0);
    // A later sample with fewer processes alive does not replace it.
    vm.sample_footprint();
    assert_eq!(vm.stats().footprint, footprint);
}

/// `launch` samples as its processes spawn: its stats say what each cost.
#[test]
fn launch_reports_bytes_per_process() {
    let _alone = alone();
    let report =
        carat_vm::launch::launch("examples/launch/fanout.toml".as_ref(), Default::default())
            .unwrap();
    assert!(report.all_exited_zero());
    let footprint = report.vm.footprint;
    assert!(footprint.processes_live > 0, "{footprint:?}");
    assert!(footprint.arena_linear_memory_bytes > 0, "{footprint:?}");
    assert!(footprint.bytes_per_process > 0, "{footprint:?}");
}
