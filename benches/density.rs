//! Density and spawn cost, CARAT mode against paging mode on the same small
//! module (`examples/wat/small.wat`): how many processes one VM holds at
//! once before spawning fails; the median time to spawn a process (create
//! it and instantiate the module), to end it, and to replace one in a full
//! VM (one ends, a new one spawns; the spawn half is reported too); and
//! the kernel's page tables per process (`VmPTE`, which RSS leaves out).
//! The first write to a fresh page, measured first in the same run, is
//! the kernel's part of any spawn that copies a data segment.
//!
//! `cargo bench --bench density -- [LIMIT] [MODE] [MODULE]` (default limit
//! 200,000 processes per mode; both modes unless one is named; any other
//! module than `small.wat` if a path ending in `.wat` or `.wasm` is
//! given). Paging mode is expected to stop early, at the address-space or
//! `vm.max_map_count` wall: every memory needs its own 6 GiB reservation.

use std::time::{Duration, Instant};

use carat_vm::{Mode, Val, Vm, VmConfig};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// The median time of a first write to one page of fresh anonymous memory,
/// the pages 64 KiB apart as small memories lie: what the kernel adds to a
/// spawn that copies a data segment, in any VM.
fn first_touch_median(pages: usize) -> Duration {
    const STRIDE: usize = 64 << 10;
    let mut map = memmap2::MmapMut::map_anon(pages * STRIDE).expect("map");
    let times = (0..pages)
        .map(|page| {
            let start = Instant::now();
            map[page * STRIDE] = 1;
            start.elapsed()
        })
        .collect();
    median(times)
}

/// A `/proc/self/status` field in KiB (`VmRSS`, `VmPTE`), 0 off Linux.
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with(field))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

fn main() {
    let limit: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let modes: Vec<Mode> = match std::env::args().skip(1).find_map(|a| a.parse().ok()) {
        Some(mode) => vec![mode],
        None => Mode::ALL.to_vec(),
    };
    let path = std::env::args()
        .skip(1)
        .find(|a| a.ends_with(".wat") || a.ends_with(".wasm"))
        .unwrap_or(format!(
            "{}/examples/wat/small.wat",
            env!("CARGO_MANIFEST_DIR")
        ));
    println!(
        "first write to a fresh page (the kernel's part of a data segment's copy), median: {:.2} us",
        first_touch_median(limit.min(100_000)).as_secs_f64() * 1e6
    );
    println!(
        "{:<7} {:>11} {:>16} {:>15} {:>18} {:>18} {:>16} {:>17} {:>13}  stopped by",
        "mode",
        "processes",
        "spawn median us",
        "exit median us",
        "replace median us",
        "(its spawn) us",
        "peak guest MiB",
        "page tables B/p",
        "janitor us/p"
    );
    for mode in modes {
        let vm = Vm::new(VmConfig {
            mode,
            arena_size: 1 << 40,
            ..VmConfig::default()
        })
        .expect("vm");
        let module = vm.compile_file(path.as_ref()).expect("module");
        let page_tables_before = status_kib("VmPTE:");
        let mut processes = Vec::new();
        let mut spawn_times = Vec::new();
        let mut stop = format!("the limit of {limit}");
        while processes.len() < limit {
            let start = Instant::now();
            let spawned = vm.new_process().and_then(|mut p| {
                let instance = p.instantiate(&module)?;
                Ok((p, instance))
            });
            match spawned {
                Ok(process) => {
                    spawn_times.push(start.elapsed());
                    processes.push(process);
                }
                Err(e) => {
                    stop = e.to_string();
                    break;
                }
            }
        }
        // Every process is alive and works, the same way (for small.wat,
        // its first step returns 100).
        let mut first_result = None;
        for (p, instance) in processes.iter_mut().step_by(997) {
            let result = p.invoke(*instance, "step", &[]).expect("step");
            assert_eq!(*first_result.get_or_insert_with(|| result.clone()), result);
        }
        if path.ends_with("small.wat") {
            assert_eq!(first_result, Some(vec![Val::I32(100)]));
        }
        let held = processes.len();
        // What the kernel's page tables cost per process: a memory alone
        // in its 2 MiB of address space costs a page-table page of its own.
        let page_table_bytes = (status_kib("VmPTE:") - page_tables_before) * 1024;
        // Turnover, as a service host sees it: the oldest process of a
        // full VM ends and a new one takes its place, a tenth of them over.
        let mut replace_times = Vec::with_capacity(held / 10);
        let mut respawn_times = Vec::with_capacity(held / 10);
        for oldest in 0..held / 10 {
            let start = Instant::now();
            drop(processes.swap_remove(oldest));
            let respawn = Instant::now();
            let mut process = vm.new_process().expect("respawn");
            let instance = process.instantiate(&module).expect("respawn");
            respawn_times.push(respawn.elapsed());
            replace_times.push(start.elapsed());
            processes.push((process, instance));
        }
        let mut exit_times = Vec::with_capacity(held);
        for process in processes.drain(..) {
            let start = Instant::now();
            drop(process);
            exit_times.push(start.elapsed());
        }
        // What the arena's janitor spent, off the spawns' and exits' path,
        // per process spawned: part of what each costs in CPU, not in
        // latency.
        let spawned = (held + held / 10).max(1) as f64;
        let janitor = vm.stats().janitor_cpu_nanos as f64 / 1e3 / spawned;
        println!(
            "{:<7} {:>11} {:>16.2} {:>15.2} {:>18.2} {:>18.2} {:>16.1} {:>17} {:>13.2}  {}",
            mode.to_string(),
            held,
            median(spawn_times).as_secs_f64() * 1e6,
            median(exit_times).as_secs_f64() * 1e6,
            median(replace_times).as_secs_f64() * 1e6,
            median(respawn_times).as_secs_f64() * 1e6,
            vm.stats().arena_peak_bytes as f64 / (1 << 20) as f64,
            page_table_bytes / held.max(1) as u64,
            janitor,
            stop
        );
    }
}
