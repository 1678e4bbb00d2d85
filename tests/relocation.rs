//! Relocation in CARAT mode: regions move while their guests run, every
//! pointer into them is patched, and nothing a guest can observe changes.
//! (The spec suite and the C corpus also run while relocating: see
//! `spec.rs` and `c_programs.rs`.)

use carat_vm::launch::{LaunchOptions, LaunchReport, launch};
use carat_vm::{Mode, Val, Vm, VmConfig};

/// A CARAT-mode VM whose moves poison the ranges they leave, so a
/// pointer left unpatched reads garbage rather than the old bytes.
fn carat(relocate_every: Option<u64>) -> Vm {
    Vm::new(VmConfig {
        mode: Mode::Carat,
        relocate_every,
        poison_moves: true,
        ..VmConfig::default()
    })
    .unwrap()
}

/// As `carat`, with an arena of `arena_size` bytes.
fn carat_in(arena_size: usize) -> Vm {
    Vm::new(VmConfig {
        mode: Mode::Carat,
        arena_size,
        poison_moves: true,
        ..VmConfig::default()
    })
    .unwrap()
}

/// Function references the host holds name functions, not records: they
/// still call the right function after every region has moved, whether
/// they came back as results, were kept by a host function, or wait as
/// the argument of a call not started yet; and one from another process
/// is refused, not followed.
#[test]
fn funcrefs_held_by_the_host_survive_moves() {
    use std::sync::{Arc, Mutex};

    use carat_vm::{CallProgress, FuncType, ValType};

    let vm = carat(None);
    let module = vm
        .compile_file("tests/programs/funcref_holder.wat".as_ref())
        .unwrap();
    let setup = |kept: Arc<Mutex<Option<Val>>>| {
        let mut process = vm.new_process().unwrap();
        let keeper = kept.clone();
        process.define_func(
            "host",
            "keep",
            FuncType::new([ValType::FuncRef], Vec::new()),
            move |_, args, _| {
                *keeper.lock().unwrap() = Some(args[0]);
                Ok(())
            },
        );
        process.define_func(
            "host",
            "give",
            FuncType::new(Vec::new(), [ValType::FuncRef]),
            move |_, _, results| {
                results[0] = kept.lock().unwrap().expect("kept");
                Ok(())
            },
        );
        let instance = process.instantiate(&module).unwrap();
        (process, instance)
    };
    let kept = Arc::new(Mutex::new(None));
    let (mut process, instance) = setup(kept.clone());
    let seven = process.invoke(instance, "get", &[Val::I32(0)]).unwrap()[0];
    let eleven = process.invoke(instance, "get", &[Val::I32(1)]).unwrap()[0];
    assert!(matches!(seven, Val::FuncRef(Some(_))) && seven != eleven);
    process.invoke(instance, "hand_over", &[]).unwrap();
    let call = process.func(instance, "call").unwrap();
    let mut waiting = process.start_call(call, &[eleven]).unwrap();

    let moves = vm.stats().relocations;
    assert!(process.store().relocate_all());
    assert!(vm.stats().relocations > moves);

    let call_with =
        |process: &mut carat_vm::Process, f: Val| process.invoke(instance, "call", &[f]).unwrap();
    assert_eq!(call_with(&mut process, seven), vec![Val::I32(7)]);
    assert_eq!(call_with(&mut process, eleven), vec![Val::I32(11)]);
    assert_eq!(
        process.invoke(instance, "take_back", &[]).unwrap(),
        vec![Val::I32(11)]
    );
    let CallProgress::Done(result) = process.resume(&mut waiting).unwrap() else {
        panic!("the call runs to its end");
    };
    assert_eq!(result.unwrap(), vec![Val::I32(11)]);
    assert_eq!(
        process.invoke(instance, "get", &[Val::I32(0)]).unwrap(),
        vec![seven],
        "a funcref names the same function after a move"
    );

    // Another process's funcrefs, passed in or handed back by a host
    // function, are refused.
    let (mut other, other_instance) = setup(Arc::new(Mutex::new(Some(seven))));
    assert!(other.invoke(other_instance, "call", &[seven]).is_err());
    assert!(other.invoke(other_instance, "take_back", &[]).is_err());
    let own = other.invoke(other_instance, "get", &[Val::I32(1)]).unwrap()[0];
    assert_ne!(own, eleven, "funcrefs name their store");
    assert_eq!(
        other.invoke(other_instance, "call", &[own]).unwrap(),
        vec![Val::I32(11)]
    );
}

/// Every level of a 1,000-deep recursion writes memory and holds a
/// funcref, and every region moves at every poll (each call's entry): a
/// frame resumes with its patched vmctx and funcref slots, finds its
/// memory word where the patched memory base says, and calls through the
/// patched funcref.
#[test]
fn live_frames_resume_with_patched_slots() {
    let vm = carat(Some(1));
    let module = vm
        .compile_file("tests/programs/deep_relocation.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    let instance = process.instantiate(&module).unwrap();
    let depth = 1000;
    let result = process
        .invoke(instance, "deep", &[Val::I32(depth)])
        .unwrap();
    assert_eq!(result, vec![Val::I32(depth * (depth + 1))]);
    let stats = vm.stats();
    // Each of the ~1,000 polls moved the vmctx under every frame live then.
    let depth = depth as u64;
    assert!(stats.frames_patched >= depth * (depth - 1) / 2, "{stats:?}");
    assert!(stats.relocations >= 4 * depth, "{stats:?}");
    assert!(
        stats.escapes_patched > 0 && stats.bytes_moved > 0,
        "{stats:?}"
    );
}

/// Without a stress schedule, a memory that cannot grow in place moves,
/// keeping its bytes, with room to grow on: a one-page memory has room
/// for one more page, and memories pack (the blocker's lies beside it),
/// so the grower moves when it needs a third page, to where it then
/// grows in place to 40 MiB.
#[test]
fn memory_grow_moves_a_memory_that_has_no_room() {
    let vm = carat_in(128 << 20);
    let module = vm
        .compile_file("tests/programs/grower.wat".as_ref())
        .unwrap();
    let mut grower = vm.new_process().unwrap();
    let instance = grower.instantiate(&module).unwrap();
    let mut blocker = vm.new_process().unwrap();
    blocker.instantiate(&module).unwrap();
    for step in 0..639 {
        let pages = grower.invoke(instance, "step", &[]).unwrap();
        assert_eq!(pages, vec![Val::I32(step + 2)], "step {step}");
    }
    let stats = vm.stats();
    assert!((1..=4).contains(&stats.relocations), "moves: {stats:?}");
    assert!(stats.bytes_moved >= 2 << 16, "{stats:?}");
    assert!(stats.escapes_patched > 0, "{stats:?}");
}

fn launch_with(manifest: &str, relocate_every: Option<u64>) -> LaunchReport {
    launch(
        manifest.as_ref(),
        LaunchOptions {
            mode: Some(Mode::Carat),
            relocate_every,
            poison_moves: true,
            ..LaunchOptions::default()
        },
    )
    .unwrap_or_else(|e| panic!("{manifest}: {e}"))
}

/// Multi-process systems end exactly as they do without relocation when
/// every region moves at every 7th poll: cross-process calls into a
/// service whose own frames are parked, buffers copied between processes,
/// spawns, traps, fuel exhaustion and memory growth all race with moves.
#[test]
fn launches_end_the_same_while_relocating() {
    for manifest in [
        "tests/launch/relocation_race.toml",
        "examples/launch/kv.toml",
        "examples/launch/reverse.toml",
        "examples/launch/spawn.toml",
        "tests/launch/mixed.toml",
    ] {
        let plain = launch_with(manifest, None);
        let moving = launch_with(manifest, Some(7));
        assert_eq!(plain.endings, moving.endings, "{manifest}");
        let stats = &moving.vm;
        assert!(
            stats.relocations > 0
                && stats.bytes_moved > 0
                && stats.escapes_patched > 0
                && stats.frames_patched > 0,
            "{manifest}: {stats:?}"
        );
    }
    let race = launch_with("tests/launch/relocation_race.toml", None);
    assert_eq!(race.failed(), 2, "{:?}", race.endings);
}

/// Compaction. Processes that exit leave holes; compacting a survivor
/// moves its memory down into the lowest range that holds it, with its
/// bytes, through the API call or the guest's own `carat.compact`.
#[test]
fn compaction_moves_memories_down_into_holes() {
    let vm = carat_in(1 << 30);
    let grower = vm
        .compile_file("tests/programs/grower.wat".as_ref())
        .unwrap();
    let mut processes: Vec<_> = (0..8)
        .map(|_| {
            let mut p = vm.new_process().unwrap();
            let i = p.instantiate(&grower).unwrap();
            for _ in 0..15 {
                p.invoke(i, "step", &[]).unwrap();
            }
            (p, i)
        })
        .collect();
    let memory_base = |p: &mut carat_vm::Process, instance| {
        p.store()
            .region_range(carat_vm::RegionRef::Memory(carat_vm::Entity {
                instance,
                defined: 0,
            }))
            .unwrap()
            .0
    };
    // Keep the process whose memory is highest; the others exit.
    let highest = (0..processes.len())
        .max_by_key(|&k| {
            let (p, i) = &mut processes[k];
            memory_base(p, *i)
        })
        .unwrap();
    let (mut survivor, instance) = processes.swap_remove(highest);
    drop(processes);
    // The holes are the freed memories, once scanned (by the arena's
    // janitor, or here; a compaction does not wait for them).
    vm.arena().expect("CARAT mode").settle();
    let before = memory_base(&mut survivor, instance);
    assert!(survivor.compact() > 0);
    let after = memory_base(&mut survivor, instance);
    assert!(after < before, "{after:#x} is not below {before:#x}");
    // `step` checks every page written so far.
    assert_eq!(
        survivor.invoke(instance, "step", &[]).unwrap(),
        vec![Val::I32(17)]
    );
    assert_eq!(survivor.compact(), 0, "nothing lower is free now");

    // The guest asks for it itself.
    let compacting = vm
        .compile_file("tests/programs/compact.wat".as_ref())
        .unwrap();
    let mut blocker = vm.new_process().unwrap();
    blocker.instantiate(&grower).unwrap();
    let mut guest = vm.new_process().unwrap();
    guest.add_carat_abi();
    let instance = guest.instantiate(&compacting).unwrap();
    let probe = guest.invoke(instance, "probe", &[]).unwrap();
    drop(blocker);
    drop(survivor);
    let moved = guest.invoke(instance, "compact", &[]).unwrap();
    assert_eq!(moved, vec![Val::I64(2 << 16)]);
    assert_eq!(guest.invoke(instance, "probe", &[]).unwrap(), probe);
    assert_eq!(probe, vec![Val::I64(i64::from_le_bytes(*b"kept acr"))]);
}

/// A host call with more results than return registers parks while every
/// region moves: its spilled results (`abi::results`) travel through the
/// store's spill area, which is host memory and never moves, and reach the
/// resumed guest intact, the funcref among them still callable.
#[test]
fn spilled_host_results_survive_a_park_and_a_move() {
    use carat_vm::{CallProgress, FuncType, ValType};

    let vm = carat(None);
    let module = vm
        .compile_file("tests/programs/park_many_results.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    let (i, f) = (ValType::I32, ValType::F64);
    process.define_func(
        "host",
        "many",
        FuncType::new([i, ValType::FuncRef], [i, i, i, f, f, f, ValType::FuncRef]),
        |mut caller, args, results| {
            assert!(caller.yield_now(), "a resumable call can park");
            let Val::I32(n) = args[0] else {
                unreachable!("the signature says i32")
            };
            results.copy_from_slice(&[
                Val::I32(n),
                Val::I32(n + 1),
                Val::I32(n + 2),
                Val::F64(f64::from(n + 3).to_bits()),
                Val::F64(f64::from(n + 4).to_bits()),
                Val::F64(1f64.to_bits()),
                args[1],
            ]);
            Ok(())
        },
    );
    let instance = process.instantiate(&module).unwrap();
    let func = process.func(instance, "run").unwrap();
    let mut call = process.start_call(func, &[]).unwrap();
    let progress = process.resume(&mut call).unwrap();
    assert!(matches!(progress, CallProgress::Suspended), "{progress:?}");
    for _ in 0..3 {
        assert!(process.store().relocate_all(), "every region moves");
    }
    let CallProgress::Done(result) = process.resume(&mut call).unwrap() else {
        panic!("one park only");
    };
    assert_eq!(result.unwrap(), vec![Val::I32(7_198_765)]);
}

/// A host call that parks its guest (a yield, a WASI sleep) must find the
/// guest through its store when it resumes, never through the vmctx it
/// was entered with: while the guest is parked every region moves, and
/// the ranges they leave are poisoned at once (as if another process's
/// memory had taken them). The funcref the host call returns afterwards
/// is encoded through the store, and the guest calls it.
#[test]
fn host_calls_that_park_survive_their_vmctx_moving() {
    use carat_vm::{CallProgress, FuncType, ValType, WasiConfig};

    let vm = carat(None);
    let module = vm
        .compile_file("tests/programs/park_funcref.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    process.define_func(
        "host",
        "park",
        FuncType::new([ValType::FuncRef], [ValType::FuncRef]),
        |mut caller, args, results| {
            assert!(caller.yield_now(), "a resumable call can park");
            results[0] = args[0];
            Ok(())
        },
    );
    process.add_wasi(WasiConfig::default()).unwrap();
    let instance = process.instantiate(&module).unwrap();
    for (export, parked, expected) in [("park", "Suspended", 7), ("sleep", "Sleeping", 48)] {
        let func = process.func(instance, export).unwrap();
        let mut call = process.start_call(func, &[]).unwrap();
        let progress = process.resume(&mut call).unwrap();
        assert!(
            format!("{progress:?}").starts_with(parked),
            "{export}: {progress:?}"
        );
        let moves = vm.stats().relocations;
        for _ in 0..3 {
            assert!(
                process.store().relocate_all(),
                "{export}: every region moves"
            );
        }
        assert!(vm.stats().relocations >= moves + 3);
        let result = loop {
            match process.resume(&mut call).unwrap() {
                CallProgress::Done(result) => break result,
                CallProgress::Sleeping(until) => {
                    std::thread::sleep(until.saturating_duration_since(std::time::Instant::now()))
                }
                CallProgress::Suspended => {}
            }
        };
        assert_eq!(result.unwrap(), vec![Val::I32(expected)], "{export}");
    }
}
