//! The embedding API keeps working after guests trap or fail to start,
//! and processes of one VM do not disturb each other.

use carat_vm::{RegionKind, Trap, Val, Vm, VmConfig};

const GUEST: &str = r#"
(module
  (memory 1)
  (global $calls (mut i32) (i32.const 0))
  (func (export "count") (result i32)
    (global.set $calls (i32.add (global.get $calls) (i32.const 1)))
    (global.get $calls))
  (func (export "poke") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "trap") (param i32) (result i32)
    (i32.div_u (i32.const 1) (local.get 0)))
  (func $deep (export "deep") (param i32) (result i32)
    (i32.add (i32.const 1) (call $deep (local.get 0)))))
"#;

#[test]
fn a_trap_leaves_the_process_and_its_neighbours_usable() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(GUEST.as_bytes()).unwrap();
    let mut a = vm.new_process().unwrap();
    let mut b = vm.new_process().unwrap();
    let ia = a.instantiate(&module).unwrap();
    let ib = b.instantiate(&module).unwrap();
    a.invoke(ia, "poke", &[Val::I32(8), Val::I32(11)]).unwrap();
    b.invoke(ib, "poke", &[Val::I32(8), Val::I32(22)]).unwrap();
    for round in 1..=3 {
        let e = a.invoke(ia, "trap", &[Val::I32(0)]).unwrap_err();
        assert_eq!(e.trap(), Some(Trap::IntegerDivideByZero));
        let e = a.invoke(ia, "deep", &[Val::I32(0)]).unwrap_err();
        assert_eq!(e.trap(), Some(Trap::StackOverflow));
        let e = a.invoke(ia, "peek", &[Val::I32(65533)]).unwrap_err();
        assert_eq!(e.trap(), Some(Trap::MemoryOutOfBounds));
        assert_eq!(a.invoke(ia, "count", &[]).unwrap(), vec![Val::I32(round)]);
        assert_eq!(
            a.invoke(ia, "peek", &[Val::I32(8)]).unwrap(),
            vec![Val::I32(11)]
        );
        assert_eq!(
            b.invoke(ib, "peek", &[Val::I32(8)]).unwrap(),
            vec![Val::I32(22)]
        );
    }
    assert_eq!(b.invoke(ib, "count", &[]).unwrap(), vec![Val::I32(1)]);
}

#[test]
fn wrong_arguments_are_an_error_not_a_crash() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_any(GUEST.as_bytes()).unwrap();
    let mut p = vm.new_process().unwrap();
    let i = p.instantiate(&module).unwrap();
    assert!(p.invoke(i, "peek", &[]).is_err());
    assert!(p.invoke(i, "peek", &[Val::I64(1)]).is_err());
    assert!(p.invoke(i, "missing", &[]).is_err());
    assert_eq!(
        p.invoke(i, "peek", &[Val::I32(0)]).unwrap(),
        vec![Val::I32(0)]
    );
    // Handles of another process (one with more instances and functions)
    // are an error here, not a crash.
    let mut other = vm.new_process().unwrap();
    other.instantiate(&module).unwrap();
    let second = other.instantiate(&module).unwrap();
    let helper = vm
        .compile_any(
            br#"(module (func) (func) (func) (func) (func) (func) (func (export "last")))"#,
        )
        .unwrap();
    let third = other.instantiate(&helper).unwrap();
    assert!(p.invoke(second, "count", &[]).is_err());
    let last = other.func(third, "last").unwrap();
    let mut q = vm.new_process().unwrap();
    q.instantiate(&module).unwrap();
    q.instantiate(&module).unwrap();
    q.instantiate(&module).unwrap();
    assert!(q.call(last, &[]).is_err());
    assert!(q.start_call(last, &[]).is_err());
}

/// A resumable call belongs to the process that started it: resuming it
/// on another is an error that changes nothing (the other process would
/// otherwise record the call's frames as its own and rewrite a foreign
/// stack at its next move), and the call still resumes on its own.
#[test]
fn a_call_resumed_on_another_process_is_refused() {
    use carat_vm::{CallProgress, VmError};

    let vm = Vm::new(VmConfig {
        fuel: Some(u64::MAX),
        ..VmConfig::default()
    })
    .unwrap();
    let module = vm
        .compile_any(
            br#"(module
              (func (export "spin") (param i32) (result i32)
                (loop $l (local.set 0 (i32.sub (local.get 0) (i32.const 1)))
                  (br_if $l (local.get 0)))
                (i32.const 42)))"#,
        )
        .unwrap();
    let mut owner = vm.new_process().unwrap();
    let instance = owner.instantiate(&module).unwrap();
    let mut stranger = vm.new_process().unwrap();
    stranger.instantiate(&module).unwrap();
    let spin = owner.func(instance, "spin").unwrap();
    let mut call = owner.start_call(spin, &[Val::I32(50_000_000)]).unwrap();
    owner.interrupt_handle().request_yield();
    assert!(matches!(
        owner.resume(&mut call).unwrap(),
        CallProgress::Suspended
    ));
    for _ in 0..2 {
        let refused = stranger.resume(&mut call);
        assert!(
            matches!(
                refused,
                Err(VmError::Exec(carat_vm::ExecError::ForeignCall))
            ),
            "{refused:?}"
        );
    }
    let CallProgress::Done(result) = owner.resume(&mut call).unwrap() else {
        panic!("the call runs to its end on its own process");
    };
    assert_eq!(result.unwrap(), vec![Val::I32(42)]);
    assert!(
        owner.resume(&mut call).is_err(),
        "an ended call is not resumed"
    );
}

#[test]
fn memory_limit_is_enforced_at_instantiation_and_growth() {
    let vm = Vm::new(VmConfig {
        max_memory: Some(3 * 65536),
        ..VmConfig::default()
    })
    .unwrap();
    let grower = vm
        .compile_any(br#"(module (memory 2) (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"#)
        .unwrap();
    let mut p = vm.new_process().unwrap();
    let i = p.instantiate(&grower).unwrap();
    assert_eq!(
        p.invoke(i, "grow", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(2)]
    );
    assert_eq!(
        p.invoke(i, "grow", &[Val::I32(1)]).unwrap(),
        vec![Val::I32(-1)]
    );
    let big = vm.compile_any(br#"(module (memory 4))"#).unwrap();
    let error = p.instantiate(&big).unwrap_err();
    assert!(error.to_string().contains("exceeds the limit"), "{error}");
}

/// Fills its memory (grown to `pages`) with a byte, or reports whether
/// any byte of it is non-zero.
const SCRIBBLER: &str = r#"
(module
  (memory 1)
  (func (export "scribble") (param $pages i32) (param $byte i32)
    (drop (memory.grow (i32.sub (local.get $pages) (memory.size))))
    (memory.fill (i32.const 0) (local.get $byte) (i32.mul (memory.size) (i32.const 65536))))
  (func (export "dirty") (result i32)
    (local $i i32) (local $any i64)
    (block $done
      (loop $scan
        (br_if $done (i32.ge_u (local.get $i) (i32.mul (memory.size) (i32.const 65536))))
        (local.set $any (i64.or (local.get $any) (i64.load (local.get $i))))
        (local.set $i (i32.add (local.get $i) (i32.const 8)))
        (br $scan)))
    (i64.ne (local.get $any) (i64.const 0))))
"#;

#[test]
fn a_new_process_never_sees_an_old_ones_bytes() {
    let reused = new_processes_on_scribbled_bytes(false);
    // Memories were placed where old ones scribbled, so the checks mean
    // something. With the arena's janitor, fewer are: it keeps warm places
    // that new memories take first.
    assert!(reused >= 30, "{reused} of 40 memories on scribbled bytes");
    new_processes_on_scribbled_bytes(true);
}

/// Spawns 40 processes in turn in a small arena (with its janitor or
/// not), each of which checks its memory reads zero and then scribbles
/// over it; returns how many were placed where an old one scribbled.
fn new_processes_on_scribbled_bytes(janitor: bool) -> usize {
    // A small arena, so that freed regions are reused at once.
    let vm = Vm::new(VmConfig {
        arena_size: 16 << 20,
        arena_janitor: janitor,
        ..VmConfig::default()
    })
    .unwrap();
    let module = vm.compile_any(SCRIBBLER.as_bytes()).unwrap();
    let arena = vm.arena().expect("CARAT mode").clone();
    let memory_of_the_live_process = || {
        let regions = arena.regions().into_iter();
        let mut memories = regions.filter(|(_, r)| r.kind == RegionKind::LinearMemory);
        let (offset, record) = memories.next().expect("a memory");
        assert!(memories.next().is_none(), "one process alive");
        offset..offset + record.len
    };
    let mut scribbled: Vec<std::ops::Range<usize>> = Vec::new();
    let mut reused = 0;
    for round in 0..40 {
        // The last process's memory is scanned now, not when the arena's
        // janitor comes to it, so it may be reused at once.
        arena.settle();
        let mut p = vm.new_process().unwrap();
        let i = p.instantiate(&module).unwrap();
        let memory = memory_of_the_live_process();
        if scribbled
            .iter()
            .any(|old| old.start < memory.end && memory.start < old.end)
        {
            reused += 1;
        }
        assert_eq!(
            p.invoke(i, "dirty", &[]).unwrap(),
            vec![Val::I32(0)],
            "round {round}"
        );
        // Grow beyond the first page (up to 8) and scribble over all of it.
        let pages = 1 + round % 8;
        p.invoke(i, "scribble", &[Val::I32(pages), Val::I32(0xAB)])
            .unwrap();
        assert_eq!(p.invoke(i, "dirty", &[]).unwrap(), vec![Val::I32(1)]);
        scribbled.push(memory_of_the_live_process());
    }
    reused
}

/// Resident bytes of this test process.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A module that declares large tables costs their address space and its
/// budget, not resident memory: null elements are never written, in
/// either mode (before, 40 tables of 10 million elements made 3.2 GB
/// resident at instantiation).
#[test]
fn large_tables_commit_no_memory_until_written() {
    let tables = "(table 10000000 funcref)".repeat(40);
    let wat = format!("(module {tables} (func (export \"f\") (result i32) (table.size 39)))");
    for mode in carat_vm::Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        let module = vm.compile_any(wat.as_bytes()).unwrap();
        let before = resident_bytes();
        let mut p = vm.new_process().unwrap();
        let i = p.instantiate(&module).unwrap();
        assert_eq!(p.invoke(i, "f", &[]).unwrap(), vec![Val::I32(10_000_000)]);
        let grown = resident_bytes().saturating_sub(before);
        assert!(
            grown < 64 << 20,
            "{mode}: {grown} bytes resident for empty tables"
        );
    }
}
