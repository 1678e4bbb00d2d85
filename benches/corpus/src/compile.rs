//! Compile speed, side by side in one run: carat-vm in CARAT mode,
//! carat-vm in paging mode and wasmtime, each compiling the same module
//! bytes with its default parallelism (every core, for all three), no
//! cache. The engines alternate round by round; the median of each is
//! kept. Prints milliseconds, MiB of module per second, and the ratios
//! CARAT/wasmtime and paging/wasmtime, with their geomeans.
//!
//!   cargo run --release --manifest-path benches/corpus/Cargo.toml -- compile [ROUNDS] [MODULE.wasm...]
//!
//! With no module named, it compiles every module of the C corpus, the
//! largest (SQLite, 1.7 MB) first.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{corpus_dir, median, wt};

/// Every `.wasm` in the C corpus and its subdirectories, largest first.
fn corpus_modules() -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut dirs = vec![corpus_dir()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "wasm") {
                found.push((std::fs::metadata(&path)?.len(), path));
            }
        }
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found.into_iter().map(|(_, path)| path).collect())
}

/// How long `compile` takes, its result (the compiled module) dropped
/// outside the timing.
fn time<T>(compile: impl FnOnce() -> Result<T>) -> Result<Duration> {
    let start = Instant::now();
    let compiled = compile()?;
    let elapsed = start.elapsed();
    drop(compiled);
    Ok(elapsed)
}

pub fn main(args: &[String]) -> Result<()> {
    let rounds: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
    let mut modules: Vec<PathBuf> = args
        .iter()
        .filter(|a| a.parse::<usize>().is_err())
        .map(PathBuf::from)
        .collect();
    if modules.is_empty() {
        modules = corpus_modules()?;
    }
    let carat = carat_vm::Vm::new(carat_vm::VmConfig {
        mode: carat_vm::Mode::Carat,
        ..Default::default()
    })?;
    let paging = carat_vm::Vm::new(carat_vm::VmConfig {
        mode: carat_vm::Mode::Paging,
        ..Default::default()
    })?;
    // parallel-compilation is on (see Cargo.toml): rayon over every core.
    let wasmtime = wasmtime::Engine::default();
    eprintln!(
        "{:<24} {:>8} {:>9} {:>9} {:>9} {:>13} {:>11} {:>10} {:>10} {:>10}",
        "module",
        "KiB",
        "carat ms",
        "paging ms",
        "wt ms",
        "carat MiB/s",
        "paging MiB/s",
        "wt MiB/s",
        "carat/wt",
        "paging/wt",
    );
    // Sums of logs of carat/wt and paging/wt.
    let mut logs = [0.0f64; 2];
    for path in &modules {
        let bytes =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut samples: [Vec<Duration>; 3] = Default::default();
        for _ in 0..rounds {
            samples[0].push(time(|| Ok(carat.compile(&bytes)?))?);
            samples[1].push(time(|| Ok(paging.compile(&bytes)?))?);
            samples[2].push(time(|| wt(wasmtime::Module::new(&wasmtime, &bytes)))?);
        }
        let [c, p, w] = samples.map(|s| median(s).as_secs_f64());
        logs[0] += (c / w).ln();
        logs[1] += (p / w).ln();
        let mib = bytes.len() as f64 / (1024.0 * 1024.0);
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        eprintln!(
            "{:<24} {:>8.0} {:>9.1} {:>9.1} {:>9.1} {:>13.2} {:>11.2} {:>10.2} {:>10.3} {:>10.3}",
            name,
            bytes.len() as f64 / 1024.0,
            c * 1e3,
            p * 1e3,
            w * 1e3,
            mib / c,
            mib / p,
            mib / w,
            c / w,
            p / w,
        );
    }
    let n = modules.len() as f64;
    eprintln!(
        "{:<108} {:>10.3} {:>10.3}",
        "geomean",
        (logs[0] / n).exp(),
        (logs[1] / n).exp()
    );
    eprintln!(
        "({} modules, {rounds} rounds, medians; {} threads available)",
        modules.len(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    Ok(())
}
