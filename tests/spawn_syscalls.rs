//! Spawning a process in CARAT mode makes no system call once the arena
//! exists and the module is compiled: it is allocation-map bookkeeping,
//! vmctx writes and segment copies into memory the arena already maps.
//!
//! The test spawns processes on a thread under a seccomp filter that turns
//! every system call (but futex, for contended locks, and what the thread
//! needs to report and park) into a SIGSYS, counted per call number. The
//! host heap is the allocator's business, not the supervisor's, so this
//! binary's allocator hands out a reservation mapped once up front: a
//! system call it made would say nothing about spawning.
#![cfg(all(target_os = "linux", target_arch = "x86_64"))]

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use carat_vm::{Mode, Process, RegionKind, Vm, VmConfig};

const MODULE: &str = r#"
(module
  (memory (export "memory") 2 16)
  (table 8 funcref)
  (global $counter (mut i32) (i32.const 7))
  (global (export "limit") i64 (i64.const 1000))
  (func $f (result i32) (global.get $counter))
  (func $g (result i32) (i32.const 2))
  (elem (i32.const 0) $f $g $f)
  (data (i32.const 100) "initial bytes of a new process")
  (func (export "run") (result i32)
    (i32.add (call_indirect (result i32) (i32.const 0)) (i32.load (i32.const 100)))))
"#;

const SPAWNS: usize = 2000;

/// A bump allocator over one reservation, mapped on first use; memory is
/// never reused, which a short test binary can afford.
struct Reservation;

const RESERVATION: usize = 64 << 30;
static BASE: AtomicUsize = AtomicUsize::new(0);
static USED: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every block handed out is a distinct, suitably aligned range of
// the reservation, which is never unmapped.
unsafe impl GlobalAlloc for Reservation {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut base = BASE.load(Ordering::Acquire);
        if base == 0 {
            // SAFETY: a fresh anonymous mapping, touched lazily.
            let mapped = unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    RESERVATION,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if mapped == libc::MAP_FAILED {
                return std::ptr::null_mut();
            }
            base = match BASE.compare_exchange(
                0,
                mapped as usize,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => mapped as usize,
                Err(winner) => {
                    // SAFETY: our mapping lost the race and is unused.
                    unsafe { libc::munmap(mapped, RESERVATION) };
                    winner
                }
            };
        }
        let mut used = USED.load(Ordering::Relaxed);
        loop {
            let start = (base + used).next_multiple_of(layout.align()) - base;
            let end = start + layout.size();
            if end > RESERVATION {
                return std::ptr::null_mut();
            }
            match USED.compare_exchange_weak(used, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return (base + start) as *mut u8,
                Err(now) => used = now,
            }
        }
    }

    unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
}

#[global_allocator]
static ALLOCATOR: Reservation = Reservation;

static COUNTING: AtomicBool = AtomicBool::new(false);

/// Held by each test while it counts: the counters are shared.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
static CALLS: [AtomicU32; 512] = [const { AtomicU32::new(0) }; 512];

extern "C" fn on_sigsys(_: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    // SAFETY: the kernel passes a SIGSYS siginfo, whose `_sigsys` member
    // holds the call address at byte 16 and the system call number at 24,
    // and a ucontext_t.
    unsafe {
        let number = *info.cast::<u8>().add(24).cast::<libc::c_int>();
        if COUNTING.load(Ordering::Relaxed) {
            CALLS[(number as usize).min(511)].fetch_add(1, Ordering::Relaxed);
        }
        let context = &mut *context.cast::<libc::ucontext_t>();
        context.uc_mcontext.gregs[libc::REG_RAX as usize] = -(libc::ENOSYS as i64);
    }
}

/// Traps every system call of the calling thread except those listed.
fn trap_syscalls_except(allowed: &[libc::c_long]) {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let statement = |code: u16, k: u32| libc::sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    };
    let jump_if_equal = |k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16,
        jt,
        jf,
        k,
    };
    let load = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
    let ret = (libc::BPF_RET | libc::BPF_K) as u16;
    let n = allowed.len() as u8;
    let mut program = vec![
        statement(load, 4), // seccomp_data.arch
        jump_if_equal(AUDIT_ARCH_X86_64, 1, 0),
        statement(ret, libc::SECCOMP_RET_KILL_PROCESS),
        statement(load, 0), // seccomp_data.nr
    ];
    for (i, nr) in allowed.iter().enumerate() {
        // To the ALLOW return after the remaining comparisons and the TRAP.
        program.push(jump_if_equal(*nr as u32, n - i as u8, 0));
    }
    program.push(statement(ret, libc::SECCOMP_RET_TRAP));
    program.push(statement(ret, libc::SECCOMP_RET_ALLOW));
    let fprog = libc::sock_fprog {
        len: program.len() as u16,
        filter: program.as_mut_ptr(),
    };
    thread_local!(static FILTERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    // SAFETY: a SIGSYS handler that only counts and sets the result, and
    // a filter program that lives through the seccomp call. A thread
    // already filtered has both the handler and no-new-privileges, and
    // may only add a filter (its own allows `seccomp`).
    unsafe {
        if !FILTERED.replace(true) {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigsys as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO;
            assert_eq!(
                libc::sigaction(libc::SIGSYS, &action, std::ptr::null_mut()),
                0
            );
            assert_eq!(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0);
        }
        let installed = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &fprog as *const libc::sock_fprog,
        );
        assert_eq!(installed, 0, "seccomp: {}", std::io::Error::last_os_error());
    }
}

/// A CARAT VM with an arena the test's thousands of processes fit in.
fn carat_vm() -> Vm {
    Vm::new(VmConfig {
        mode: Mode::Carat,
        arena_size: 8 << 30,
        ..VmConfig::default()
    })
    .unwrap()
}

fn spawn(vm: &Vm, module: &carat_vm::Module) -> Process {
    let mut process = vm.new_process().unwrap();
    process.instantiate(module).unwrap();
    process
}

/// A guest as `launch` starts one: WASI and the carat ABI.
const WASI_MODULE: &str = r#"
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "carat" "getpid" (func $getpid (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "spawned\n")
  (global $pid (export "pid") (mut i32) (i32.const -1))
  (func (export "_start")
    (global.set $pid (call $getpid))))
"#;

/// A spawn as `launch` makes it: a process with the carat ABI and WASI,
/// instantiated, and its `_start` call started (it runs later, on a
/// worker; a call holds no stack until its first resume).
fn launch_style_spawn(vm: &Vm, module: &carat_vm::Module) -> (Process, carat_vm::GuestCall) {
    let mut process = vm.new_process().unwrap();
    process.add_carat_abi();
    process
        .add_wasi(carat_vm::WasiConfig {
            args: vec!["guest".into(), "--flag".into()],
            env: vec![("KEY".into(), "value".into())],
            ..carat_vm::WasiConfig::default()
        })
        .unwrap();
    let instance = process.instantiate(module).unwrap();
    let start = process.func(instance, "_start").unwrap();
    let call = process.start_call(start, &[]).unwrap();
    (process, call)
}

/// Runs `body` on a thread of its own and returns what it returns. The
/// thread then parks until the test binary exits: once `body` has filtered
/// its system calls it may make no more that matter, not even in dropping
/// what it made (`body` forgets that).
fn on_a_thread_of_its_own<T: Send + 'static>(body: impl FnOnce() -> T + Send + 'static) -> T {
    let _alone = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let (report, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        report.send(body()).unwrap();
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    });
    result
        .recv_timeout(std::time::Duration::from_secs(120))
        .expect("the spawning thread reported")
}

/// Filters this thread's system calls, for good, and returns those `work`
/// made, as (number, count), with what it returned. Filters stack: a
/// later one still traps what an earlier one did.
fn system_calls_of<R>(work: impl FnOnce() -> R) -> (Vec<(usize, u32)>, R) {
    let allowed = [
        libc::SYS_futex,
        libc::SYS_rt_sigreturn,
        libc::SYS_nanosleep,
        libc::SYS_clock_nanosleep,
        libc::SYS_exit,
        // Adding a stricter filter; made only between counted spans.
        libc::SYS_seccomp,
    ];
    trap_syscalls_except(&allowed);
    COUNTING.store(true, Ordering::Relaxed);
    let returned = work();
    COUNTING.store(false, Ordering::Relaxed);
    let calls = CALLS
        .iter()
        .enumerate()
        .map(|(nr, c)| (nr, c.swap(0, Ordering::Relaxed)))
        .filter(|(_, c)| *c > 0)
        .collect();
    (calls, returned)
}

#[test]
fn spawning_makes_no_system_call() {
    let (calls, run) = on_a_thread_of_its_own(|| {
        let vm = carat_vm();
        let module = vm.compile_any(MODULE.as_bytes()).unwrap();
        let mut processes = Vec::with_capacity(SPAWNS);
        for _ in 0..SPAWNS {
            processes.push(spawn(&vm, &module));
        }
        // A call leaves its fiber stack in the thread's pool for the next.
        let instance = carat_vm::InstanceId(0);
        processes[0].invoke(instance, "run", &[]).unwrap();
        processes.clear();
        let (calls, ()) = system_calls_of(|| {
            for _ in 0..SPAWNS {
                processes.push(spawn(&vm, &module));
            }
        });
        // Check the processes are real and independent before reporting.
        let run = processes[0].invoke(instance, "run", &[]).unwrap();
        std::mem::forget(processes);
        (calls, run)
    });
    assert_eq!(
        calls,
        vec![],
        "system calls (number, count) made by {SPAWNS} spawns"
    );
    // 7 from the table's function, plus "init" read as a little-endian i32.
    assert_eq!(
        run,
        vec![carat_vm::Val::I32(7 + i32::from_le_bytes(*b"init"))]
    );
}

/// The same for spawns as `launch` makes them, WASI included.
#[test]
fn launch_style_spawns_with_wasi_make_no_system_call() {
    let (calls, finished, pid, expected_pid) = on_a_thread_of_its_own(|| {
        let vm = carat_vm();
        let module = vm.compile_any(WASI_MODULE.as_bytes()).unwrap();
        // What a VM makes once (the shared WASI and carat modules) is made
        // before counting, and a call run to its end leaves its stack in
        // this thread's pool for the one run after counting (this thread
        // can map nothing once filtered).
        let (mut warm, mut warm_call) = launch_style_spawn(&vm, &module);
        warm.resume(&mut warm_call).unwrap();
        drop((warm_call, warm));
        let (calls, mut spawned) = system_calls_of(|| {
            (0..SPAWNS)
                .map(|_| launch_style_spawn(&vm, &module))
                .collect::<Vec<_>>()
        });
        // The processes are real: the last one runs and sees its pid.
        let (process, call) = spawned.last_mut().unwrap();
        let done = process.resume(call).unwrap();
        let pid = match process.export(carat_vm::InstanceId(0), "pid") {
            Some(carat_vm::Extern::Global(g)) => process.store().global_get(g).1,
            other => panic!("{other:?}"),
        };
        let report = (
            calls,
            matches!(done, carat_vm::CallProgress::Done(Ok(_))),
            pid,
            process.pid(),
        );
        std::mem::forget(spawned);
        report
    });
    assert_eq!(
        calls,
        vec![],
        "system calls (number, count) made by {SPAWNS} launch-style spawns"
    );
    assert!(finished, "the last spawned process ran to its end");
    assert_eq!(pid, carat_vm::Val::I32(expected_pid as i32));
}

/// A process's exit hands nothing back to the kernel and asks it
/// nothing: its control blocks go back to their slabs (zeroed when next
/// taken), its stack is listed stale for the next process to reuse without
/// a fault, and its memory is held for the arena's janitor thread, which
/// reads the page map to list the written pages stale (see
/// `carat_host_os::janitor`; that `pread` was the one system call exits
/// made). Then a spawn on the freed ranges makes no system call either.
#[test]
fn exits_make_no_system_call_and_spawns_after_them_neither() {
    let (exit_calls, respawn_calls, respawned_ran, on_freed) = on_a_thread_of_its_own(|| {
        let vm = carat_vm();
        let module = vm.compile_any(MODULE.as_bytes()).unwrap();
        let instance = carat_vm::InstanceId(0);
        let mut processes: Vec<Process> = (0..SPAWNS).map(|_| spawn(&vm, &module)).collect();
        // Each exiting process has run, so its memory holds a written page
        // and its call has used a stack.
        let exiting = processes.split_off(SPAWNS * 3 / 4);
        let mut ran = Vec::with_capacity(exiting.len());
        for mut process in exiting {
            process.invoke(instance, "run", &[]).unwrap();
            ran.push(process);
        }
        let exits = ran.len();
        let arena = vm.arena().expect("CARAT mode").clone();
        let memories_of = |pids: &[u32]| -> Vec<usize> {
            let regions = arena.regions().into_iter();
            regions
                .filter(|(_, r)| r.kind == RegionKind::LinearMemory && pids.contains(&r.owner))
                .map(|(offset, _)| offset)
                .collect()
        };
        let pids: Vec<u32> = ran.iter().map(|p| p.pid()).collect();
        let freed = memories_of(&pids);
        let (exit_calls, ()) = system_calls_of(|| drop(ran));
        // The janitor scans the freed memories (the page-map reads exits
        // no longer make) and makes them vacancies.
        while arena.stats().janitor_pending_bytes > 0 {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let (respawn_calls, respawned) =
            system_calls_of(|| (0..exits).map(|_| spawn(&vm, &module)).collect::<Vec<_>>());
        let pids: Vec<u32> = respawned.iter().map(|p| p.pid()).collect();
        let on_freed = memories_of(&pids)
            .into_iter()
            .filter(|offset| freed.contains(offset))
            .count();
        let mut last = respawned.into_iter().last().unwrap();
        let respawned_ran = last.invoke(instance, "run", &[]);
        std::mem::forget((processes, last));
        (exit_calls, respawn_calls, respawned_ran, on_freed)
    });
    let exits = SPAWNS / 4;
    assert_eq!(
        exit_calls,
        vec![],
        "system calls (number, count) made by {exits} exits"
    );
    assert_eq!(
        respawn_calls,
        vec![],
        "system calls (number, count) made by {exits} spawns after exits"
    );
    // The vacancies the arena keeps (64) went to new memories.
    assert!(
        on_freed >= 64,
        "{on_freed} new memories on freed ones' ranges"
    );
    // 7 from the table's function, plus "init" read as a little-endian i32:
    // a respawned process reads its own data, not zero or an old one's.
    assert_eq!(
        respawned_ran.unwrap(),
        vec![carat_vm::Val::I32(7 + i32::from_le_bytes(*b"init"))]
    );
}
