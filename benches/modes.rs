//! CARAT mode against paging mode on compute kernels, measured side by
//! side in one run: each kernel is compiled for both modes and the two are
//! run alternately, so machine noise hits both alike. Prints the median
//! time of each and the ratio CARAT/paging, with the geometric mean.
//!
//! `cargo bench --bench modes` (add a number to change the rounds).

use std::time::{Duration, Instant};

use carat_vm::{Mode, Val, Vm, VmConfig};

/// Kernel file (under benches/kernels) and the argument of its `run`.
const KERNELS: &[(&str, i32)] = &[
    ("matmul", 160),
    ("sieve", 2_000_000),
    ("crc32", 1_500_000),
    ("sort", 200_000),
    ("nbody", 200_000),
    ("fib", 30),
];

struct Runner {
    process: carat_vm::Process,
    instance: carat_vm::InstanceId,
}

impl Runner {
    fn new(mode: Mode, name: &str) -> Runner {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .expect("vm");
        let path = format!("{}/benches/kernels/{name}.wat", env!("CARGO_MANIFEST_DIR"));
        let module = vm.compile_file(path.as_ref()).expect("kernel compiles");
        let mut process = vm.new_process().expect("process");
        let instance = process.instantiate(&module).expect("kernel instantiates");
        Runner { process, instance }
    }

    fn run(&mut self, arg: i32) -> (Duration, Vec<Val>) {
        let start = Instant::now();
        let result = self
            .process
            .invoke(self.instance, "run", &[Val::I32(arg)])
            .expect("kernel runs");
        (start.elapsed(), result)
    }
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(9);
    println!(
        "{:<10} {:>12} {:>12} {:>13}",
        "kernel", "carat ms", "paging ms", "carat/paging"
    );
    let mut log_sum = 0.0;
    for (name, arg) in KERNELS {
        let mut carat = Runner::new(Mode::Carat, name);
        let mut paging = Runner::new(Mode::Paging, name);
        let (_, expected) = carat.run(*arg);
        let (_, got) = paging.run(*arg);
        assert_eq!(expected, got, "{name}: the modes disagree");
        let (mut carat_times, mut paging_times) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            // Alternate which mode goes first.
            if round % 2 == 0 {
                carat_times.push(carat.run(*arg).0);
                paging_times.push(paging.run(*arg).0);
            } else {
                paging_times.push(paging.run(*arg).0);
                carat_times.push(carat.run(*arg).0);
            }
        }
        let (c, p) = (median(carat_times), median(paging_times));
        let ratio = c.as_secs_f64() / p.as_secs_f64();
        log_sum += ratio.ln();
        println!(
            "{name:<10} {:>12.2} {:>12.2} {:>13.3}",
            c.as_secs_f64() * 1e3,
            p.as_secs_f64() * 1e3,
            ratio
        );
    }
    println!(
        "{:<10} {:>12} {:>12} {:>13.3}",
        "geomean",
        "",
        "",
        (log_sum / KERNELS.len() as f64).exp()
    );
}
