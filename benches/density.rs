//! Density and spawn cost, CARAT mode against paging mode on the same small
//! module (`examples/wat/small.wat`): how many processes one VM holds at
//! once before spawning fails, and the median time to spawn a process
//! (create it and instantiate the module) and to end it.
//!
//! `cargo bench --bench density [LIMIT]` (default limit 200,000 processes
//! per mode). Paging mode is expected to stop early, at the address-space
//! or `vm.max_map_count` wall: every memory needs its own 6 GiB
//! reservation.

use std::time::{Duration, Instant};

use carat_vm::{Mode, Val, Vm, VmConfig};

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let limit: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(200_000);
    let path = format!("{}/examples/wat/small.wat", env!("CARGO_MANIFEST_DIR"));
    println!(
        "{:<7} {:>11} {:>16} {:>15} {:>16}  stopped by",
        "mode", "processes", "spawn median us", "exit median us", "peak guest MiB"
    );
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            arena_size: 1 << 40,
            ..VmConfig::default()
        })
        .expect("vm");
        let module = vm.compile_file(path.as_ref()).expect("module");
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
        // Every process is alive and works.
        for (p, instance) in processes.iter_mut().step_by(997) {
            assert_eq!(
                p.invoke(*instance, "step", &[]).unwrap(),
                vec![Val::I32(100)]
            );
        }
        let held = processes.len();
        let mut exit_times = Vec::with_capacity(held);
        for process in processes.drain(..) {
            let start = Instant::now();
            drop(process);
            exit_times.push(start.elapsed());
        }
        println!(
            "{:<7} {:>11} {:>16.2} {:>15.2} {:>16.1}  {}",
            mode.to_string(),
            held,
            median(spawn_times).as_secs_f64() * 1e6,
            median(exit_times).as_secs_f64() * 1e6,
            vm.stats().arena_peak_bytes as f64 / (1 << 20) as f64,
            stop
        );
    }
}
