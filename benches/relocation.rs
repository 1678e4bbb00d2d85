//! Relocation costs in CARAT mode.
//!
//! 1. Pause time against region size: a process parked at a poll has its
//!    (fully written) linear memory moved, copy and patching included,
//!    for sizes from 64 KiB to 1 GiB; next to it, a plain memcpy of the
//!    same size between two warm buffers, and the ratio of the two. That
//!    is the steady state, where the arena's free ranges are resident. The
//!    first move at each size, into arena pages not resident yet, is shown
//!    beside a memcpy into a freshly mapped buffer: both pay the host's
//!    first-touch cost, which on a virtual machine can exceed the copy.
//! 2. A grow-heavy guest (`examples/c/grow.c`: a buffer grown with
//!    realloc to 64 MiB), run whole in paging mode, in CARAT mode with an
//!    open arena (its memory grows in place) and in CARAT mode in a
//!    crowded arena (another process's memory sits where it would grow,
//!    so growth must move it).
//!
//! `cargo bench --bench relocation [MAX_MIB]` (default 1024).

use std::time::{Duration, Instant};

use carat_vm::{CallProgress, Entity, Mode, Output, RegionRef, Vm, VmConfig, WasiConfig};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn pause_times(max_mib: usize) {
    println!("relocation pause (stop at a poll, copy, patch) against memcpy");
    println!(
        "{:>9} {:>10} {:>10} {:>6} {:>7} {:>9} | {:>10} {:>10} {:>6}",
        "size",
        "pause us",
        "memcpy us",
        "ratio",
        "GB/s",
        "of memcpy",
        "first us",
        "fresh us",
        "ratio"
    );
    let vm = Vm::new(VmConfig {
        mode: Mode::Carat,
        arena_size: 16 << 30,
        ..VmConfig::default()
    })
    .expect("vm");
    let mut size = 64 << 10;
    while size <= max_mib << 20 {
        let pages = size >> 16;
        let wat = format!(
            "(module (memory (export \"memory\") {pages}) \
             (func (export \"spin\") (loop $l (br $l))))"
        );
        let module = vm.compile_any(wat.as_bytes()).expect("module");
        let mut process = vm.new_process().expect("process");
        let instance = process.instantiate(&module).expect("instance");
        let memory = Entity {
            instance,
            defined: 0,
        };
        {
            let mut view = process.store().memory_view(memory);
            let bytes = view
                .slice_mut(carat_vm::GuestAddr(0), size as u64)
                .expect("whole memory");
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = (i * 31 + 7) as u8;
            }
        }
        let spin = process.func(instance, "spin").expect("spin");
        let mut call = process.start_call(spin, &[]).expect("call");
        process.interrupt_handle().request_yield();
        assert!(matches!(
            process.resume(&mut call).unwrap(),
            CallProgress::Suspended
        ));
        let reps = if size >= 256 << 20 { 5 } else { 21 };
        let first = Instant::now();
        assert!(process.store().relocate(RegionRef::Memory(memory)));
        let first = first.elapsed();
        // A memory moving with room to grow cycles through three ranges;
        // the timed moves start once all three have been used.
        for _ in 0..2 {
            assert!(process.store().relocate(RegionRef::Memory(memory)));
        }
        let mut pauses = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            assert!(process.store().relocate(RegionRef::Memory(memory)));
            pauses.push(start.elapsed());
        }
        process.interrupt_handle().kill();
        let _ = process.resume(&mut call);
        let check = process.store().memory_view(memory);
        let bytes = check.slice(carat_vm::GuestAddr(0), size as u64).unwrap();
        assert!(
            bytes
                .iter()
                .enumerate()
                .all(|(i, b)| *b == (i * 31 + 7) as u8)
        );
        drop(call);
        drop(process);

        let from = vec![1u8; size];
        let mut to = vec![2u8; size];
        let mut copies = Vec::new();
        for _ in 0..reps {
            let start = Instant::now();
            to.copy_from_slice(std::hint::black_box(&from));
            std::hint::black_box(&to);
            copies.push(start.elapsed());
        }
        let fresh = {
            // Zeroed allocations of this size are fresh mappings.
            let mut buffer = vec![0u8; size];
            let start = Instant::now();
            buffer.copy_from_slice(std::hint::black_box(&from));
            std::hint::black_box(&buffer);
            start.elapsed()
        };
        let (pause, copy) = (median(pauses), median(copies));
        println!(
            "{:>6} KiB {:>10.1} {:>10.1} {:>6.2} {:>7.2} {:>8.0}% | {:>10.1} {:>10.1} {:>6.2}",
            size >> 10,
            micros(pause),
            micros(copy),
            pause.as_secs_f64() / copy.as_secs_f64(),
            size as f64 / pause.as_secs_f64() / 1e9,
            100.0 * copy.as_secs_f64() / pause.as_secs_f64(),
            micros(first),
            micros(fresh),
            first.as_secs_f64() / fresh.as_secs_f64()
        );
        size *= 4;
    }
}

/// Runs `examples/c/grow.wasm` once; returns its wall time and the VM's
/// relocations.
fn run_grower(mode: Mode, crowded: bool) -> (Duration, u64) {
    let vm = Vm::new(VmConfig {
        mode,
        arena_size: if crowded { 384 << 20 } else { 64 << 30 },
        ..VmConfig::default()
    })
    .expect("vm");
    let path = format!("{}/examples/c/grow.wasm", env!("CARGO_MANIFEST_DIR"));
    let module = vm.compile_file(path.as_ref()).expect("grow.wasm");
    // In the crowded arena this neighbour takes the middle, so the
    // grower's memory lands a quarter in and meets it at 96 MiB.
    let neighbour = vm.compile_any(b"(module (memory 1))").expect("neighbour");
    let mut other = vm.new_process().expect("process");
    other.instantiate(&neighbour).expect("neighbour");
    let start = Instant::now();
    let mut process = vm.new_process().expect("process");
    process
        .add_wasi(WasiConfig {
            args: vec!["grow".into()],
            stdout: Output::Null,
            ..WasiConfig::default()
        })
        .expect("wasi");
    let instance = process.instantiate(&module).expect("instance");
    let result = process.invoke(instance, "_start", &[]);
    assert!(result.is_ok(), "{result:?}");
    (start.elapsed(), vm.stats().relocations)
}

fn grow_heavy() {
    const ROUNDS: usize = 11;
    println!();
    println!(
        "grow-heavy guest (examples/c/grow.c, 64 MiB by realloc), median of {ROUNDS} rounds \
         run alternately"
    );
    // One run of each kind per round, so that machine noise hits all three
    // alike.
    let configs = [
        (Mode::Paging, false),
        (Mode::Carat, false),
        (Mode::Carat, true),
    ];
    let mut times = vec![Vec::new(); configs.len()];
    let mut moves = vec![0; configs.len()];
    for _ in 0..ROUNDS {
        for (i, &(mode, crowded)) in configs.iter().enumerate() {
            let (time, relocations) = run_grower(mode, crowded);
            times[i].push(time);
            moves[i] = relocations;
        }
    }
    let mut medians = times.into_iter().map(median);
    let (paging, open, crowded) = (
        medians.next().unwrap(),
        medians.next().unwrap(),
        medians.next().unwrap(),
    );
    let (open_moves, crowded_moves) = (moves[1], moves[2]);
    println!(
        "{:<24} {:>10} {:>12} {:>14}",
        "", "ms", "relocations", "CARAT/paging"
    );
    println!(
        "{:<24} {:>10.1} {:>12} {:>14}",
        "paging",
        paging.as_secs_f64() * 1e3,
        "-",
        "1.00"
    );
    for (name, time, moves) in [
        ("carat, open arena", open, open_moves),
        ("carat, crowded arena", crowded, crowded_moves),
    ] {
        println!(
            "{:<24} {:>10.1} {:>12} {:>14.2}",
            name,
            time.as_secs_f64() * 1e3,
            moves,
            time.as_secs_f64() / paging.as_secs_f64()
        );
    }
}

fn main() {
    let max_mib: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1024);
    pause_times(max_mib);
    grow_heavy();
}
