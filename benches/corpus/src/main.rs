//! The C corpus, four ways, side by side in one run: carat-vm in CARAT
//! mode, carat-vm in paging mode, wasmtime, and the same C compiled
//! natively with `cc -O2`. Each program runs with the arguments of its
//! first entry in `examples/c/programs.toml` (its `bench_args` if given;
//! entries with `bench = false`, which only measure start-up, are left out);
//! the engines alternate round by round and the median time of each is
//! kept. The table goes to stderr, guests' output to stdout (send it to
//! /dev/null).
//!
//! Every wasm run compiles its module afresh (no cache, each engine's
//! default parallelism) and then instantiates and runs it, so the times
//! and the first geomean include start-up, as a `run` command's would; a
//! second geomean is over execution alone. Native times include starting
//! the process (about a millisecond). Ratios: CARAT/paging, paging/
//! wasmtime, CARAT/wasmtime and CARAT/native.
//!
//!   cargo run --release --manifest-path benches/corpus/Cargo.toml [ROUNDS] [PROGRAM...]
//!
//! With `compile` first, it measures compilation alone (see `compile`).
//! wasmtime is built with its `parallel-compilation` feature, so every
//! engine compiles on every core.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

mod compile;

struct Program {
    name: String,
    args: Vec<String>,
    stdin: Option<PathBuf>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/c")
}

/// The first run of each program in programs.toml, skipping the ones that
/// need a directory (their I/O would measure the file system).
fn programs() -> Result<Vec<Program>> {
    let text = std::fs::read_to_string(corpus_dir().join("programs.toml"))?;
    let mut seen = BTreeMap::new();
    let mut visited = std::collections::BTreeSet::new();
    let mut current: Option<(String, Vec<String>, Option<String>, bool)> = None;
    let mut finish = |entry: Option<(String, Vec<String>, Option<String>, bool)>| {
        if let Some((name, args, stdin, skip)) = entry
            && visited.insert(name.clone())
            && !skip
        {
            seen.insert(name, (args, stdin));
        }
    };
    for line in text.lines() {
        let line = line.trim();
        if line == "[[program]]" {
            finish(current.take());
            current = Some((String::new(), Vec::new(), None, false));
        } else if let Some((key, value)) = line.split_once('=')
            && let Some(entry) = current.as_mut()
        {
            let value = value.trim();
            match key.trim() {
                "name" => entry.0 = value.trim_matches('"').to_string(),
                "args" | "bench_args" => {
                    entry.1 = value
                        .trim_matches(|c| c == '[' || c == ']')
                        .split(',')
                        .map(|a| a.trim().trim_matches('"').to_string())
                        .filter(|a| !a.is_empty())
                        .collect();
                    entry.3 |= entry.1.iter().any(|a| a.contains("{dir}"));
                }
                "stdin" => entry.2 = Some(value.trim_matches('"').to_string()),
                "native" | "bench" if value == "false" => entry.3 = true,
                _ => {}
            }
        }
    }
    finish(current.take());
    Ok(seen
        .into_iter()
        .map(|(name, (args, stdin))| Program {
            name,
            args,
            stdin: stdin.map(|s| corpus_dir().join(s)),
        })
        .collect())
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// One engine's time for one run: compiling the module (start-up) and
/// running it (instantiation included).
#[derive(Clone, Copy, Default)]
struct Sample {
    compile: Duration,
    run: Duration,
}

impl Sample {
    fn total(self) -> Duration {
        self.compile + self.run
    }
}

struct Carat {
    vm: carat_vm::Vm,
}

impl Carat {
    fn new(mode: carat_vm::Mode) -> Result<Self> {
        let vm = carat_vm::Vm::new(carat_vm::VmConfig {
            mode,
            ..Default::default()
        })?;
        Ok(Carat { vm })
    }

    fn run(&self, p: &Program, wasm: &Path) -> Result<Sample> {
        let start = Instant::now();
        let module = self.vm.compile_file(wasm)?;
        let compiled = Instant::now();
        let mut process = self.vm.new_process()?;
        let mut args = vec![p.name.clone()];
        args.extend(p.args.iter().cloned());
        process.add_wasi(carat_vm::WasiConfig {
            args,
            ..Default::default()
        })?;
        let instance = process.instantiate(&module)?;
        match process.invoke(instance, "_start", &[]) {
            Ok(_) | Err(carat_vm::VmError::Exec(carat_vm::ExecError::Exit(_))) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(Sample {
            compile: compiled - start,
            run: compiled.elapsed(),
        })
    }
}

/// wasmtime 48 has an error type of its own.
fn wt<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e:?}"))
}

struct Wasmtime {
    engine: wasmtime::Engine,
}

impl Wasmtime {
    fn new() -> Self {
        // The default configuration: parallel compilation, no cache.
        Wasmtime {
            engine: wasmtime::Engine::default(),
        }
    }

    fn run(&self, p: &Program, wasm: &Path) -> Result<Sample> {
        let start = Instant::now();
        let module = wt(wasmtime::Module::from_file(&self.engine, wasm))?;
        let compiled = Instant::now();
        let mut args = vec![p.name.clone()];
        args.extend(p.args.iter().cloned());
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .args(&args)
            .inherit_stdout()
            .build_p1();
        let mut store = wasmtime::Store::new(&self.engine, wasi);
        let mut linker = wasmtime::Linker::new(&self.engine);
        wt(wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx))?;
        let instance = wt(linker.instantiate(&mut store, &module))?;
        let start_fn = wt(instance.get_typed_func::<(), ()>(&mut store, "_start"))?;
        if let Err(e) = start_fn.call(&mut store, ())
            && e.downcast_ref::<wasmtime_wasi::I32Exit>().is_none()
        {
            return wt(Err(e));
        }
        Ok(Sample {
            compile: compiled - start,
            run: compiled.elapsed(),
        })
    }
}

fn native(p: &Program, exe: &Path) -> Result<Sample> {
    let mut command = Command::new(exe);
    command.args(&p.args).stdout(Stdio::null());
    command.stdin(match &p.stdin {
        Some(file) => Stdio::from(std::fs::File::open(file)?),
        None => Stdio::null(),
    });
    let start = Instant::now();
    command.status()?;
    Ok(Sample {
        compile: Duration::ZERO,
        run: start.elapsed(),
    })
}

/// The ratios the table prints, in its column order.
const RATIOS: [&str; 4] = ["carat/paging", "paging/wt", "carat/wt", "carat/native"];

fn ratios([carat, paging, wasmtime, native]: [f64; 4]) -> [f64; 4] {
    [
        carat / paging,
        paging / wasmtime,
        carat / wasmtime,
        carat / native,
    ]
}

fn median_of(samples: &[Sample], part: impl Fn(Sample) -> Duration) -> f64 {
    median(samples.iter().map(|&s| part(s)).collect()).as_secs_f64()
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("compile") {
        return compile::main(&args[1..]);
    }
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let build = std::env::temp_dir().join(format!("carat-corpus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&build)?;
    eprintln!(
        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>13} {:>10} {:>9} {:>12}",
        "program",
        "carat ms",
        "paging ms",
        "wt ms",
        "native ms",
        "c start",
        "wt start",
        RATIOS[0],
        RATIOS[1],
        RATIOS[2],
        RATIOS[3],
    );
    // Sums of logs of the ratios: start-up included, and execution only.
    let mut total_logs = [0.0f64; 4];
    let mut run_logs = [0.0f64; 4];
    // Other arguments name the programs to run (all when none).
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<usize>().is_err())
        .collect();
    let programs: Vec<Program> = programs()?
        .into_iter()
        .filter(|p| p.stdin.is_none() && (only.is_empty() || only.contains(&p.name)))
        .collect();
    let carat = Carat::new(carat_vm::Mode::Carat)?;
    let paging = Carat::new(carat_vm::Mode::Paging)?;
    let wasmtime = Wasmtime::new();
    for p in &programs {
        let wasm = corpus_dir().join(format!("{}.wasm", p.name));
        let exe = build.join(&p.name);
        let status = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(corpus_dir().join(format!("{}.c", p.name)))
            .arg("-lm")
            .status()
            .context("cc")?;
        anyhow::ensure!(status.success(), "cc failed on {}", p.name);
        let mut samples: [Vec<Sample>; 4] = Default::default();
        for _ in 0..rounds {
            samples[0].push(carat.run(p, &wasm)?);
            samples[1].push(paging.run(p, &wasm)?);
            samples[2].push(wasmtime.run(p, &wasm)?);
            samples[3].push(native(p, &exe)?);
        }
        let totals = samples.each_ref().map(|s| median_of(s, Sample::total));
        let runs = samples.each_ref().map(|s| median_of(s, |s| s.run));
        let total_ratios = ratios(totals);
        for (log, r) in total_logs.iter_mut().zip(total_ratios) {
            *log += r.ln();
        }
        for (log, r) in run_logs.iter_mut().zip(ratios(runs)) {
            *log += r.ln();
        }
        let carat_startup = median_of(&samples[0], |s| s.compile);
        let wasmtime_startup = median_of(&samples[2], |s| s.compile);
        eprintln!(
            "{:<14} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {:>13.3} {:>10.3} {:>9.3} {:>12.3}",
            p.name,
            totals[0] * 1e3,
            totals[1] * 1e3,
            totals[2] * 1e3,
            totals[3] * 1e3,
            carat_startup * 1e3,
            wasmtime_startup * 1e3,
            total_ratios[0],
            total_ratios[1],
            total_ratios[2],
            total_ratios[3],
        );
    }
    let n = programs.len() as f64;
    for (label, logs) in [
        ("geomean", total_logs),
        ("geomean, execution only", run_logs),
    ] {
        let g = logs.map(|l| (l / n).exp());
        eprintln!(
            "{label:<70} {:>13.3} {:>10.3} {:>9.3} {:>12.3}",
            g[0], g[1], g[2], g[3]
        );
    }
    eprintln!("({} programs, {rounds} rounds, medians)", programs.len());
    let _ = std::fs::remove_dir_all(build);
    Ok(())
}
