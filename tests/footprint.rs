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

/// A spawn storm past `[vm] memory_budget`: the spawns that do not fit
/// fail with the budget named, the rest finish.
#[test]
fn a_spawn_storm_past_the_memory_budget_fails_only_the_spawns_past_it() {
    let _alone = alone();
    let report = carat_vm::launch::launch(
        "tests/launch/budget_storm.toml".as_ref(),
        Default::default(),
    )
    .unwrap();
    let (mut finished, mut refused) = (0, 0);
    for (name, ending) in &report.endings {
        match ending.to_string().as_str() {
            "exit 0" => finished += 1,
            other if other.contains("past its memory budget of 4194304 bytes") => refused += 1,
            other => panic!("{name}: {other}"),
        }
    }
    assert_eq!(finished + refused, 200);
    // One page each, control blocks, and the first stack each call
    // reserves at its start (16 KiB for wasm frames, the 32 KiB reserve
    // and the margin): 4 MiB holds about 36. Without the stacks it held
    // more than 50, and once spawned a process could find no room to run.
    assert!((30..40).contains(&finished), "{finished} finished");
    // A spawn that failed gave back what it held at once: the processes
    // alive at the peak are the ones that ran, not all 200.
    assert!(
        report.vm.footprint.processes_live <= finished,
        "{} alive at the peak",
        report.vm.footprint.processes_live
    );
}

/// Through the API: a budget the VM's processes share. A growth past it
/// returns -1 and leaves the process running; what a dropped process held
/// is free again.
#[test]
fn processes_share_the_vm_memory_budget() {
    let _alone = alone();
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            memory_budget: Some(1 << 20),
            ..VmConfig::default()
        })
        .unwrap();
        let module = vm
            .compile_file("tests/programs/budget_tenant.wat".as_ref())
            .unwrap();
        let grow = |p: &mut carat_vm::Process, i, pages: i32| match p
            .invoke(i, "grow", &[carat_vm::Val::I32(pages)])
            .unwrap()[..]
        {
            [carat_vm::Val::I32(old)] => old,
            ref other => panic!("{other:?}"),
        };
        let mut first = vm.new_process().unwrap();
        let a = first.instantiate(&module).unwrap();
        let mut second = vm.new_process().unwrap();
        let b = second.instantiate(&module).unwrap();
        // 1 MiB is 16 pages: two are taken, 13 more fit beside the
        // control blocks.
        assert_eq!(grow(&mut first, a, 13), 1, "{mode}");
        assert_eq!(grow(&mut second, b, 1), -1, "{mode}: past the VM's budget");
        drop(first);
        // With the first's bytes free, the second takes 15 of the 16
        // pages, and the rest cannot hold a third process's page.
        assert_eq!(
            grow(&mut second, b, 14),
            1,
            "{mode}: the first's bytes are free"
        );
        let error = vm
            .new_process()
            .and_then(|mut third| third.instantiate(&module).map(drop))
            .expect_err("no room for a third");
        assert!(
            error.to_string().contains("memory budget"),
            "{mode}: {error}"
        );
    }
}

/// The host figures follow what the process holds: a 64 MiB block shows
/// in the heap, and once written in resident memory.
#[test]
fn host_heap_and_resident_memory_follow_an_allocation() {
    let _alone = alone();
    use carat_host_os::footprint::{host_heap_bytes, resident_bytes};
    let (heap, resident) = (host_heap_bytes(), resident_bytes());
    // Kept observable, so that the allocation is not optimised away.
    let block = std::hint::black_box(vec![1u8; 64 << 20]);
    let (heap_after, resident_after) = (host_heap_bytes(), resident_bytes());
    drop(std::hint::black_box(block));
    assert!(
        heap_after >= heap + (60 << 20),
        "heap {heap} -> {heap_after}"
    );
    assert!(
        resident_after >= resident + (60 << 20),
        "resident {resident} -> {resident_after}"
    );
}

/// Open descriptors of this host process.
fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// A process whose output is discarded holds no descriptor for it: a
/// million of them must not need a million descriptors.
#[test]
fn a_discarded_stdout_holds_no_descriptor() {
    let _alone = alone();
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_file("examples/c/hello.wasm".as_ref()).unwrap();
    let before = open_descriptors();
    let mut processes: Vec<_> = (0..300)
        .map(|_| {
            let mut p = vm.new_process().unwrap();
            p.add_wasi(WasiConfig {
                stdout: carat_vm::Output::Null,
                ..WasiConfig::default()
            })
            .unwrap();
            let instance = p.instantiate(&module).unwrap();
            (p, instance)
        })
        .collect();
    assert!(
        open_descriptors() < before + 10,
        "{} descriptors for 300 processes",
        open_descriptors() - before
    );
    // The output goes nowhere, and the guest sees its writes succeed.
    let (process, instance) = &mut processes[0];
    assert!(matches!(
        process.invoke(*instance, "_start", &[]),
        Ok(_) | Err(carat_vm::VmError::Exec(carat_vm::ExecError::Exit(0)))
    ));
}
