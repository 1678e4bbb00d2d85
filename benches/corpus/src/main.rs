//! The C corpus, four ways, side by side in one run: carat-vm in CARAT
//! mode, carat-vm in paging mode, wasmtime, and the same C compiled
//! natively with `cc -O2`. Each program runs with the arguments of its
//! first entry in `examples/c/programs.toml` (its `bench_args` if given;
//! entries with `bench = false`, which only measure start-up, are left out);
//! the engines alternate round by round and the median time of each is
//! kept. Guest output goes to /dev/null; the table goes to stderr.
//!
//! Wasm times are execution only (modules are compiled first, once per
//! engine); native times include starting the process (about a
//! millisecond).
//!
//!   cargo run --release --manifest-path benches/corpus/Cargo.toml [ROUNDS]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

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

struct Carat {
    process_module: (carat_vm::Vm, carat_vm::Module),
}

impl Carat {
    fn new(mode: carat_vm::Mode, wasm: &Path) -> Result<Self> {
        let vm = carat_vm::Vm::new(carat_vm::VmConfig {
            mode,
            ..Default::default()
        })?;
        let module = vm.compile_file(wasm)?;
        Ok(Carat {
            process_module: (vm, module),
        })
    }

    fn run(&self, p: &Program) -> Result<Duration> {
        let (vm, module) = &self.process_module;
        let start = Instant::now();
        let mut process = vm.new_process()?;
        let mut args = vec![p.name.clone()];
        args.extend(p.args.iter().cloned());
        process.add_wasi(carat_vm::WasiConfig {
            args,
            ..Default::default()
        })?;
        let instance = process.instantiate(module)?;
        match process.invoke(instance, "_start", &[]) {
            Ok(_) | Err(carat_vm::VmError::Exec(carat_vm::ExecError::Exit(_))) => {}
            Err(e) => return Err(e.into()),
        }
        Ok(start.elapsed())
    }
}

/// wasmtime 48 has an error type of its own.
fn wt<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(|e| anyhow::anyhow!("{e:?}"))
}

struct Wasmtime {
    engine: wasmtime::Engine,
    module: wasmtime::Module,
}

impl Wasmtime {
    fn new(wasm: &Path) -> Result<Self> {
        let engine = wasmtime::Engine::default();
        let module = wt(wasmtime::Module::from_file(&engine, wasm))?;
        Ok(Wasmtime { engine, module })
    }

    fn run(&self, p: &Program) -> Result<Duration> {
        let start = Instant::now();
        let mut args = vec![p.name.clone()];
        args.extend(p.args.iter().cloned());
        let wasi = wasmtime_wasi::WasiCtxBuilder::new()
            .args(&args)
            .inherit_stdout()
            .build_p1();
        let mut store = wasmtime::Store::new(&self.engine, wasi);
        let mut linker = wasmtime::Linker::new(&self.engine);
        wt(wasmtime_wasi::p1::add_to_linker_sync(&mut linker, |cx| cx))?;
        let instance = wt(linker.instantiate(&mut store, &self.module))?;
        let start_fn = wt(instance.get_typed_func::<(), ()>(&mut store, "_start"))?;
        if let Err(e) = start_fn.call(&mut store, ())
            && e.downcast_ref::<wasmtime_wasi::I32Exit>().is_none()
        {
            return wt(Err(e));
        }
        Ok(start.elapsed())
    }
}

fn native(p: &Program, exe: &Path) -> Result<Duration> {
    let mut command = Command::new(exe);
    command.args(&p.args).stdout(Stdio::null());
    command.stdin(match &p.stdin {
        Some(file) => Stdio::from(std::fs::File::open(file)?),
        None => Stdio::null(),
    });
    let start = Instant::now();
    command.status()?;
    Ok(start.elapsed())
}

fn main() -> Result<()> {
    let rounds: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let build = std::env::temp_dir().join(format!("carat-corpus-bench-{}", std::process::id()));
    std::fs::create_dir_all(&build)?;
    eprintln!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>13} {:>13} {:>15}",
        "program",
        "carat ms",
        "paging ms",
        "wasmtime",
        "native ms",
        "carat/paging",
        "carat/native",
        "carat/wasmtime"
    );
    let mut logs = [0.0f64; 3];
    let programs: Vec<Program> = programs()?
        .into_iter()
        .filter(|p| p.stdin.is_none())
        .collect();
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
        let carat = Carat::new(carat_vm::Mode::Carat, &wasm)?;
        let paging = Carat::new(carat_vm::Mode::Paging, &wasm)?;
        let wasmtime = Wasmtime::new(&wasm)?;
        let mut times: [Vec<Duration>; 4] = Default::default();
        for _ in 0..rounds {
            times[0].push(carat.run(p)?);
            times[1].push(paging.run(p)?);
            times[2].push(wasmtime.run(p)?);
            times[3].push(native(p, &exe)?);
        }
        let [c, pg, wt, nat] = times.map(|t| median(t).as_secs_f64());
        let ratios = [c / pg, c / nat, c / wt];
        for (log, r) in logs.iter_mut().zip(ratios) {
            *log += r.ln();
        }
        eprintln!(
            "{:<14} {:>10.2} {:>10.2} {:>10.2} {:>10.2} {:>13.3} {:>13.3} {:>15.3}",
            p.name,
            c * 1e3,
            pg * 1e3,
            wt * 1e3,
            nat * 1e3,
            ratios[0],
            ratios[1],
            ratios[2]
        );
    }
    let n = programs.len() as f64;
    eprintln!(
        "{:<14} {:>10} {:>10} {:>10} {:>10} {:>13.3} {:>13.3} {:>15.3}",
        "geomean",
        "",
        "",
        "",
        "",
        (logs[0] / n).exp(),
        (logs[1] / n).exp(),
        (logs[2] / n).exp()
    );
    let _ = std::fs::remove_dir_all(build);
    Ok(())
}
