//! The `carat-vm` command line.
//!
//! Exit status: the guest's exit code; 0 after `--invoke` returns; 134
//! after a trap (`error: trap: <message>` on stderr); 1 for a bad module or
//! bad arguments. Errors are reported, never panicked.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use carat_vm::{ExecError, Mode, Vm, VmConfig, VmError, VmStats, args};
use clap::{Parser, Subcommand, ValueEnum};

/// Exit status after a trap, as a process killed by SIGABRT reports.
const TRAP_EXIT: u8 = 134;

#[derive(Parser)]
#[command(
    name = "carat-vm",
    version,
    about = "A sandboxed WebAssembly VM without paging"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a module: its `_start`, or the export named by --invoke.
    Run(RunArgs),
    /// Run the guest processes a SYSTEM.toml manifest lists, all in one VM.
    Launch(LaunchArgs),
    /// Validate and compile a module, and write what the compiler made of
    /// each function.
    Compile(CompileArgs),
    /// Run WebAssembly spec scripts; the last line is "N passed, M failed".
    Wast {
        /// How guest memory is protected.
        #[arg(long, default_value = "carat")]
        mode: Mode,
        /// Relocation stress (CARAT mode): move every region of a process,
        /// patching every pointer into it, at every Nth poll.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        relocate_every: Option<u64>,
        /// Fill every range a move leaves with poison (for tests).
        #[arg(long, hide = true)]
        poison_moves: bool,
        /// Scripts to run.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct LaunchArgs {
    /// Overrides the manifest's [vm] mode.
    #[arg(long)]
    mode: Option<Mode>,
    /// Relocation stress (CARAT mode): move every region of a process,
    /// patching every pointer into it, at every Nth poll.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    relocate_every: Option<u64>,
    /// Fill every range a move leaves with poison at once, so a pointer
    /// relocation failed to patch shows (for tests).
    #[arg(long, hide = true)]
    poison_moves: bool,
    /// Print counters on stderr at exit, as text or one JSON object.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    stats: Option<StatsFormat>,
    /// The system manifest.
    manifest: PathBuf,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// Which code to generate: with inline guards (carat) or for a
    /// guarded reservation (paging).
    #[arg(long, default_value = "carat")]
    mode: Mode,
    /// Write each function's CLIF into DIR: as translated, with carat's
    /// guards (NAME.clif), and after Cranelift's optimiser (NAME.opt.clif).
    #[arg(long, value_name = "DIR")]
    emit_clif: Option<PathBuf>,
    /// Write each function's machine code into DIR (NAME.s), headed by its
    /// guard counts.
    #[arg(long, value_name = "DIR")]
    emit_asm: Option<PathBuf>,
    /// Print counters on stderr at exit, as text or one JSON object.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    stats: Option<StatsFormat>,
    /// The module, binary (.wasm) or text (.wat).
    module: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatsFormat {
    Text,
    Json,
}

#[derive(clap::Args)]
struct RunArgs {
    /// How guest memory is protected: inline guards over one arena
    /// (carat) or a guarded reservation per memory (paging).
    #[arg(long, default_value = "carat")]
    mode: Mode,
    /// Trap with `all fuel consumed` after this many instructions.
    #[arg(long, value_name = "N")]
    fuel: Option<u64>,
    /// Relocation stress (CARAT mode): move every region of a process,
    /// patching every pointer into it, at every Nth poll.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    relocate_every: Option<u64>,
    /// Fill every range a move leaves with poison at once, so a pointer
    /// relocation failed to patch shows (for tests).
    #[arg(long, hide = true)]
    poison_moves: bool,
    /// Print counters on stderr at exit, as text or one JSON object.
    #[arg(long, value_name = "FORMAT", num_args = 0..=1, require_equals = true, default_missing_value = "text")]
    stats: Option<StatsFormat>,
    /// Call this export with ARGS (typed by its parameters) and print each
    /// result on its own line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Give the guest a host directory, under GUEST if given (WASI).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set an environment variable for the guest (WASI).
    #[arg(long = "env", value_name = "K=V")]
    envs: Vec<String>,
    /// Largest size of a linear memory (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", value_parser = args::parse_size)]
    max_memory: Option<u64>,
    /// The module, binary (.wasm) or text (.wat).
    module: PathBuf,
    /// Arguments: the function's with --invoke, else the guest's argv.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(run_args) => run(run_args),
        Command::Wast {
            mode,
            relocate_every,
            poison_moves,
            files,
        } => wast(mode, relocate_every, poison_moves, &files),
        Command::Launch(launch_args) => launch(launch_args),
        Command::Compile(compile_args) => compile(compile_args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            let trapped = error
                .downcast_ref::<VmError>()
                .and_then(VmError::trap)
                .is_some();
            eprintln!("error: {error:#}");
            let backtrace = error
                .downcast_ref::<VmError>()
                .and_then(VmError::backtrace)
                .filter(|b| !b.frames.is_empty());
            if let Some(backtrace) = backtrace {
                eprint!("wasm backtrace:\n{backtrace}");
            }
            ExitCode::from(if trapped { TRAP_EXIT } else { 1 })
        }
    }
}

fn run(run_args: RunArgs) -> anyhow::Result<ExitCode> {
    let vm = Vm::new(VmConfig {
        mode: run_args.mode,
        max_memory: run_args.max_memory,
        fuel: run_args.fuel,
        relocate_every: run_args.relocate_every,
        poison_moves: run_args.poison_moves,
        ..VmConfig::default()
    })?;
    let result = run_guest(&vm, &run_args);
    if let Some(format) = run_args.stats {
        print_stats(&vm.stats(), format);
    }
    result
}

/// `carat-vm compile`: compiles the module, writes the listings asked
/// for, and prints one line about the result.
/// The arena `compile` reserves: it runs no guest, so it needs none of
/// the default reservation (which tools such as valgrind cannot map).
const COMPILE_ONLY_ARENA_BYTES: usize = 64 << 20;

fn compile(compile_args: CompileArgs) -> anyhow::Result<ExitCode> {
    let vm = Vm::new(VmConfig {
        mode: compile_args.mode,
        // Nothing runs: no guest memory is ever placed in the arena.
        arena_size: COMPILE_ONLY_ARENA_BYTES,
        ..VmConfig::default()
    })?;
    let wasm = carat_vm::read_module(&compile_args.module)?;
    let module = vm.compile(&wasm)?;
    let listings = if compile_args.emit_clif.is_some() || compile_args.emit_asm.is_some() {
        vm.listing(&wasm)?
    } else {
        Vec::new()
    };
    let write = |dir: &PathBuf, name: String, text: &str| -> anyhow::Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    for (dir, clif) in [
        (&compile_args.emit_clif, true),
        (&compile_args.emit_asm, false),
    ] {
        let Some(dir) = dir else { continue };
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        for listing in &listings {
            let stem = listing.file_stem();
            if clif {
                let translated = format!("{}\n{}", listing.summary(), listing.clif);
                write(dir, format!("{stem}.clif"), &translated)?;
                write(dir, format!("{stem}.opt.clif"), &listing.optimized_clif)?;
            } else {
                write(dir, format!("{stem}.s"), &listing.disassembly)?;
            }
        }
    }
    let stats = module.stats();
    println!(
        "{}: {} functions, {} bytes of code, {} guards emitted, compiled in {:.1} ms ({})",
        compile_args.module.display(),
        stats.functions_compiled,
        module.code_size(),
        stats.code.guards_emitted,
        stats.compile_time.as_secs_f64() * 1e3,
        compile_args.mode,
    );
    if let Some(format) = compile_args.stats {
        print_stats(&vm.stats(), format);
    }
    Ok(ExitCode::SUCCESS)
}

fn print_stats(stats: &VmStats, format: StatsFormat) {
    print_stats_with(stats, format, &[], None);
}

/// Prints the VM's counters plus `extra` ones, and in JSON a list of
/// processes (text gives only their count).
fn print_stats_with(
    stats: &VmStats,
    format: StatsFormat,
    extra: &[(&str, u64)],
    processes: Option<&[carat_vm::lifecycle::ProcessInfo]>,
) {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(stats) else {
        eprintln!("error: cannot encode stats");
        return;
    };
    for (name, value) in extra {
        fields.insert(name.to_string(), (*value).into());
    }
    if let Some(processes) = processes {
        let value = match format {
            StatsFormat::Json => serde_json::to_value(processes).unwrap_or_default(),
            StatsFormat::Text => format!("{} (listed by --stats=json)", processes.len()).into(),
        };
        fields.insert("processes".into(), value);
    }
    match format {
        StatsFormat::Json => eprintln!("{}", serde_json::Value::Object(fields)),
        StatsFormat::Text => {
            for (name, value) in fields {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                eprintln!("{name:>20}: {value}");
            }
        }
    }
}

fn run_guest(vm: &Vm, run_args: &RunArgs) -> anyhow::Result<ExitCode> {
    let module = vm.compile_file(&run_args.module)?;
    let mut process = vm.new_process()?;
    if module
        .info()
        .imports
        .iter()
        .any(|i| i.module == carat_vm::WASI_MODULE)
    {
        process.add_wasi(wasi_config(run_args)?)?;
    }
    let instance = process.instantiate(&module);
    let instance = match instance {
        Err(VmError::Instantiate(carat_vm::InstantiationError::Start(ExecError::Exit(code)))) => {
            return Ok(exit_code(code));
        }
        other => other?,
    };
    // While the process is alive, for `--stats`; again after its call.
    vm.sample_footprint();
    let (name, texts) = match &run_args.invoke {
        Some(name) => (name.as_str(), run_args.args.as_slice()),
        None if process.func(instance, "_start").is_ok() => ("_start", &[][..]),
        None => return Ok(ExitCode::SUCCESS),
    };
    let func = process.func(instance, name)?;
    let params = process.func_type(func).params.clone();
    let call_args = match args::parse_args(&params, texts) {
        Ok(values) => values,
        Err(message) => bail!("cannot invoke `{name}`: {message}"),
    };
    let outcome = process.call(func, &call_args);
    vm.sample_footprint();
    match outcome {
        Ok(results) => {
            for result in results {
                println!("{result}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(VmError::Exec(ExecError::Exit(code))) => Ok(exit_code(code)),
        Err(e) => Err(e.into()),
    }
}

fn wasi_config(run_args: &RunArgs) -> anyhow::Result<carat_vm::WasiConfig> {
    let program = run_args.module.file_name().map_or_else(
        || run_args.module.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut args = vec![program];
    if run_args.invoke.is_none() {
        args.extend(run_args.args.iter().cloned());
    }
    let mut env = Vec::new();
    for pair in &run_args.envs {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("invalid --env `{pair}`: expected K=V");
        };
        env.push((key.to_string(), value.to_string()));
    }
    let preopens = run_args
        .dirs
        .iter()
        .map(|dir| {
            let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
            carat_vm::Preopen {
                host: host.into(),
                guest: guest.to_string(),
            }
        })
        .collect();
    Ok(carat_vm::WasiConfig {
        args,
        env,
        preopens,
        stdout: carat_vm::Output::Inherit,
    })
}

fn launch(launch_args: LaunchArgs) -> anyhow::Result<ExitCode> {
    let report = carat_vm::launch::launch(
        &launch_args.manifest,
        carat_vm::launch::LaunchOptions {
            mode: launch_args.mode,
            relocate_every: launch_args.relocate_every,
            poison_moves: launch_args.poison_moves,
        },
    )?;
    print_endings(&report.endings);
    if let Some(format) = launch_args.stats {
        print_stats_with(
            &report.vm,
            format,
            &[
                ("processes_failed", report.failed() as u64),
                ("spawn_ns_median", report.spawn_ns_median),
                ("context_switches", report.context_switches),
                ("spawn_all_ns", report.spawn_all_ns),
                ("processes_parked_peak", report.peak_parked),
                ("ends_spread_ns", report.ends_spread_ns),
                ("end_to_end_ns", report.end_to_end_ns),
            ],
            Some(&report.processes),
        );
    }
    Ok(if report.all_exited_zero() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One line per process, or one per run of copies (`name.0`, `name.1`,
/// ...) when there are more than 8 of them, named by its first and last.
fn print_endings(endings: &[(String, carat_vm::launch::Ending)]) {
    let group_of = |name: &str| name.rsplit_once('.').map(|(base, _)| base.to_string());
    let mut i = 0;
    while i < endings.len() {
        let group = group_of(&endings[i].0);
        let len = endings[i..]
            .iter()
            .take_while(|(n, _)| group.is_some() && group_of(n) == group)
            .count();
        if len > 8 {
            let mut counts: Vec<(String, usize)> = Vec::new();
            for (_, ending) in &endings[i..i + len] {
                let key = ending.to_string();
                match counts.iter_mut().find(|(k, _)| *k == key) {
                    Some((_, c)) => *c += 1,
                    None => counts.push((key, 1)),
                }
            }
            let summary: Vec<String> = counts.iter().map(|(k, c)| format!("{c} {k}")).collect();
            println!(
                "{}..{}: {}",
                endings[i].0,
                endings[i + len - 1].0,
                summary.join(", ")
            );
            i += len;
        } else {
            println!("{}: {}", endings[i].0, endings[i].1);
            i += 1;
        }
    }
}

fn exit_code(code: i32) -> ExitCode {
    ExitCode::from(code as u8)
}

fn wast(
    mode: Mode,
    relocate_every: Option<u64>,
    poison_moves: bool,
    files: &[PathBuf],
) -> anyhow::Result<ExitCode> {
    let vm = Vm::new(VmConfig {
        mode,
        relocate_every,
        poison_moves,
        ..VmConfig::default()
    })?;
    let mut total = carat_vm::wast::WastReport::default();
    for file in files {
        let source = carat_vm::read_text_file(file, carat_vm::MAX_MODULE_BYTES)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let report = carat_vm::wast::run_script(&vm, &file.display().to_string(), &source)?;
        for failure in &report.failures {
            println!("FAIL {failure}");
        }
        total.merge(report);
    }
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
