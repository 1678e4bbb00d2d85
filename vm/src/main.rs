//! The `carat-vm` command line.
//!
//! Exit status: the guest's exit code; 0 after `--invoke` returns; 134
//! after a trap (`error: trap: <message>` and the wasm backtrace on
//! stderr); 2 for a usage error (an unknown flag, a bad flag value, wrong
//! `--invoke` arguments); 1 for anything else that stops a run before or
//! outside the guest (a missing file, a bad module, an import that does
//! not link). Errors are reported, never panicked.
//!
//! wasmtime's spellings work beside carat-vm's own (see
//! `args::normalize_command_line`): `carat-vm m.wasm` runs it, `--env
//! NAME` passes the host's value, `-W fuel=N,max-memory-size=N,timeout=D`,
//! `--argv0` and `--preload NAME=PATH`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use carat_vm::{ExecError, Mode, Vm, VmConfig, VmError, VmStats, args};
use clap::{Parser, Subcommand, ValueEnum};

/// Exit status after a trap, as a process killed by SIGABRT reports.
const TRAP_EXIT: u8 = 134;

/// Exit status after a usage error, as the argument parser gives it.
const USAGE_EXIT: u8 = 2;

/// A command line that asks for something impossible: a bad flag value
/// the parser could not see, or `--invoke` arguments that do not fit.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

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

/// What `run` and `launch` take alike.
#[derive(clap::Args)]
struct GuestArgs {
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
    /// Write the counters to PATH instead, apart from the guest's stderr
    /// (as --stats says, else text).
    #[arg(long, value_name = "PATH")]
    stats_file: Option<PathBuf>,
    /// Profile with perf: `perfmap` writes /tmp/perf-PID.map, naming the
    /// JIT's functions for `perf report`.
    #[arg(long, value_name = "KIND")]
    profile: Option<Profile>,
    /// Compile every module, neither loading from nor adding to the
    /// compile cache (CARAT_CACHE_DIR, else ~/.cache/carat-vm).
    #[arg(long)]
    no_cache: bool,
    /// Draw the arena (CARAT mode) into this SVG file: every region by
    /// kind, free and stale ranges, the largest free range and the moves
    /// so far, and the processes holding the most. `run` draws it when
    /// the call ends, `launch` at its end and whenever carat-vm gets
    /// SIGUSR1 (`kill -USR1 PID`).
    #[arg(long, value_name = "FILE.svg")]
    arena_map: Option<PathBuf>,
}

#[derive(clap::Args)]
struct LaunchArgs {
    /// Overrides the manifest's [vm] mode.
    #[arg(long)]
    mode: Option<Mode>,
    #[command(flatten)]
    common: GuestArgs,
    /// Also draw the arena map every DURATION while the launch runs
    /// (the file is replaced whole each time).
    #[arg(long, value_name = "DURATION", value_parser = args::parse_duration, requires = "arena_map")]
    arena_map_every: Option<std::time::Duration>,
    /// The system manifest.
    manifest: PathBuf,
}

#[derive(clap::Args)]
struct CompileArgs {
    /// Which code to generate: with inline guards (carat) or for a
    /// guarded reservation (paging).
    #[arg(long, default_value = "carat")]
    mode: Mode,
    /// Compile fuel counting in: the code a run with --fuel or -W fuel=
    /// needs (a `.cwasm` without it is refused there, and one with it
    /// by runs without fuel).
    #[arg(long)]
    fuel: bool,
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
    /// Write the counters to PATH instead, apart from the guest's stderr
    /// (as --stats says, else text).
    #[arg(long, value_name = "PATH")]
    stats_file: Option<PathBuf>,
    /// Write the compiled module to PATH (a `.cwasm`, which `run` and
    /// `launch` take in place of the module, for the same mode).
    #[arg(short = 'o', long = "output", value_name = "PATH")]
    output: Option<PathBuf>,
    /// The module, binary (.wasm) or text (.wat).
    module: PathBuf,
}

#[derive(Clone, Copy, ValueEnum)]
enum Profile {
    Perfmap,
}

/// Starts what `--profile` asks for, before any code is loaded.
fn start_profiling(profile: Option<Profile>) -> anyhow::Result<()> {
    if let Some(Profile::Perfmap) = profile {
        carat_vm::enable_perf_map().context("cannot write the perf map")?;
    }
    Ok(())
}

/// Logs through `tracing` when `CARAT_LOG` (else `RUST_LOG`) holds a
/// filter (`debug`, `carat_guest_runtime=trace,info`, ...): spans for
/// compiles (each function at `trace`) and instantiations, events for
/// spawns, relocations and compactions (region, bytes, pause), traps and
/// scheduling (`trace`). Nothing is installed otherwise.
fn start_logging() -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let Some((variable, directive)) = ["CARAT_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|v| Some((v, std::env::var(v).ok()?)))
    else {
        return Ok(());
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&directive)
        .map_err(|e| usage(format!("{variable}=`{directive}`: {e}")))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
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
    #[command(flatten)]
    common: GuestArgs,
    /// Call this export with ARGS (typed by its parameters) and print each
    /// result on its own line.
    #[arg(long, value_name = "NAME")]
    invoke: Option<String>,
    /// Give the guest a host directory, under GUEST if given (WASI).
    #[arg(long = "dir", value_name = "HOST[::GUEST]")]
    dirs: Vec<String>,
    /// Set an environment variable for the guest (WASI); NAME alone
    /// passes the host's value of NAME.
    #[arg(long = "env", value_name = "NAME[=VALUE]")]
    envs: Vec<String>,
    /// Largest size of a linear memory (e.g. 64MiB).
    #[arg(long, value_name = "SIZE", value_parser = args::parse_size)]
    max_memory: Option<u64>,
    /// wasmtime's options: fuel=N, max-memory-size=SIZE and
    /// timeout=DURATION (the guest is interrupted with a trap when it
    /// runs longer), comma-separated; repeatable.
    #[arg(short = 'W', value_name = "KEY=VALUE[,...]", value_parser = args::WasmOptions::parse)]
    wasm_options: Vec<args::WasmOptions>,
    /// The guest's argv[0] (WASI), instead of the module's file name.
    #[arg(long, value_name = "NAME")]
    argv0: Option<String>,
    /// Instantiate the module at PATH first, in the same process, and let
    /// the main module import its exports from the module name NAME.
    #[arg(long = "preload", value_name = "NAME=PATH")]
    preloads: Vec<String>,
    /// The module, binary (.wasm) or text (.wat).
    module: PathBuf,
    /// Arguments: the function's with --invoke, else the guest's argv.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse_from(args::normalize_command_line(std::env::args_os().collect()));
    let result = start_logging().and_then(|()| match cli.command {
        Command::Run(run_args) => run(run_args),
        Command::Wast {
            mode,
            relocate_every,
            poison_moves,
            files,
        } => wast(mode, relocate_every, poison_moves, &files),
        Command::Launch(launch_args) => launch(launch_args),
        Command::Compile(compile_args) => compile(compile_args),
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            let trapped = error
                .downcast_ref::<VmError>()
                .and_then(VmError::trap)
                .is_some();
            if error.downcast_ref::<UsageError>().is_some() {
                eprintln!("error: {error:#}\n\nFor more information, try '--help'.");
                return ExitCode::from(USAGE_EXIT);
            }
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
    if run_args.common.arena_map.is_some() && run_args.mode == Mode::Paging {
        return Err(usage(
            "--arena-map needs --mode carat: paging mode has no arena to draw",
        ));
    }
    start_profiling(run_args.common.profile)?;
    let options = run_args
        .wasm_options
        .iter()
        .cloned()
        .fold(args::WasmOptions::default(), args::WasmOptions::and);
    // Checked before anything is compiled, whether or not the module
    // imports WASI: a mistyped flag is an error, not ignored.
    let wasi = wasi_config(&run_args)?;
    let vm = Vm::new(VmConfig {
        mode: run_args.mode,
        max_memory: options.max_memory_size.or(run_args.max_memory),
        fuel: options.fuel.or(run_args.fuel),
        relocate_every: run_args.common.relocate_every,
        poison_moves: run_args.common.poison_moves,
        cache_dir: cache_dir(run_args.common.no_cache),
        ..VmConfig::default()
    })?;
    let result = run_guest(&vm, &run_args, wasi, options.timeout);
    if let Some(format) = stats_format(run_args.common.stats, &run_args.common.stats_file) {
        let text = render_stats(&vm.stats(), format, &[], None);
        emit_stats(&text, run_args.common.stats_file.as_deref())?;
    }
    result
}

/// The compile cache's directory, unless `--no-cache`.
fn cache_dir(no_cache: bool) -> Option<PathBuf> {
    if no_cache {
        None
    } else {
        carat_vm::default_cache_dir()
    }
}

/// The stats format asked for: `--stats`'s, or text when only a stats
/// file is named.
fn stats_format(stats: Option<StatsFormat>, file: &Option<PathBuf>) -> Option<StatsFormat> {
    stats.or(file.as_ref().map(|_| StatsFormat::Text))
}

/// Interrupts a guest that runs past its time (`-W timeout=`): the next
/// poll it reaches traps with `interrupted`. Dropping it stands it down.
struct Watchdog {
    _stand_down: std::sync::mpsc::Sender<()>,
}

impl Watchdog {
    fn start(handle: carat_vm::InterruptHandle, timeout: std::time::Duration) -> Watchdog {
        let (stand_down, wait) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(timeout) {
                handle.kill();
            }
        });
        Watchdog {
            _stand_down: stand_down,
        }
    }
}

/// `carat-vm compile`: compiles the module, writes the listings asked
/// for, and prints one line about the result.
/// The arena `compile` reserves: it runs no guest, so it needs none of
/// the default reservation (which tools such as valgrind cannot map).
const COMPILE_ONLY_ARENA_BYTES: usize = 64 << 20;

fn compile(compile_args: CompileArgs) -> anyhow::Result<ExitCode> {
    let vm = Vm::new(VmConfig {
        mode: compile_args.mode,
        fuel: compile_args.fuel.then_some(u64::MAX),
        // Nothing runs: no guest memory is ever placed in the arena.
        arena_size: COMPILE_ONLY_ARENA_BYTES,
        ..VmConfig::default()
    })?;
    let wasm = carat_vm::read_module(&compile_args.module)?;
    let module = vm.compile(&wasm)?;
    if let Some(output) = &compile_args.output {
        std::fs::write(output, vm.save(&module))
            .with_context(|| format!("cannot write {}", output.display()))?;
    }
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
    if let Some(format) = stats_format(compile_args.stats, &compile_args.stats_file) {
        let text = render_stats(&vm.stats(), format, &[], None);
        emit_stats(&text, compile_args.stats_file.as_deref())?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The VM's counters plus `extra` ones, and in JSON a list of processes
/// (text gives only their count), as text ending in a newline.
fn render_stats(
    stats: &VmStats,
    format: StatsFormat,
    extra: &[(&str, u64)],
    processes: Option<&[carat_vm::lifecycle::ProcessInfo]>,
) -> String {
    let Ok(serde_json::Value::Object(mut fields)) = serde_json::to_value(stats) else {
        return "error: cannot encode stats\n".into();
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
        StatsFormat::Json => format!("{}\n", serde_json::Value::Object(fields)),
        StatsFormat::Text => fields
            .into_iter()
            .map(|(name, value)| {
                let value = value
                    .as_str()
                    .map_or_else(|| value.to_string(), str::to_string);
                format!("{name:>20}: {value}\n")
            })
            .collect(),
    }
}

/// Writes rendered stats to `file`, or to stderr.
fn emit_stats(text: &str, file: Option<&std::path::Path>) -> anyhow::Result<()> {
    match file {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("cannot write the stats to {}", path.display())),
        None => {
            eprint!("{text}");
            Ok(())
        }
    }
}

fn run_guest(
    vm: &Vm,
    run_args: &RunArgs,
    wasi: carat_vm::WasiConfig,
    timeout: Option<std::time::Duration>,
) -> anyhow::Result<ExitCode> {
    let module = vm.compile_file(&run_args.module)?;
    let mut preloads = Vec::with_capacity(run_args.preloads.len());
    for preload in &run_args.preloads {
        let Some((name, path)) = preload.split_once('=') else {
            return Err(usage(format!(
                "invalid --preload `{preload}`: expected NAME=PATH"
            )));
        };
        let preloaded = vm
            .compile_file(path.as_ref())
            .with_context(|| format!("--preload {name}"))?;
        preloads.push((name, preloaded));
    }
    let mut process = vm.new_process()?;
    let imports_wasi = |m: &carat_vm::Module| {
        m.info()
            .imports
            .iter()
            .any(|i| i.module == carat_vm::WASI_MODULE)
    };
    if imports_wasi(&module) || preloads.iter().any(|(_, m)| imports_wasi(m)) {
        process.add_wasi(wasi)?;
    }
    let _watchdog = timeout.map(|t| Watchdog::start(process.interrupt_handle(), t));
    for (name, preloaded) in &preloads {
        let instance = process.instantiate(preloaded);
        if let Some(code) = exit_at_start(&instance) {
            return Ok(code);
        }
        let instance = instance.with_context(|| format!("--preload {name}"))?;
        for export in &preloaded.info().exports {
            if let Some(item) = process.export(instance, &export.name) {
                process.define(name, &export.name, item);
            }
        }
    }
    let instance = process.instantiate(&module);
    if let Some(code) = exit_at_start(&instance) {
        return Ok(code);
    }
    let instance = instance?;
    // While the process is alive, for `--stats`; again after its call.
    vm.sample_footprint();
    let (name, texts) = match &run_args.invoke {
        Some(name) => (name.as_str(), run_args.args.as_slice()),
        None if process.func(instance, "_start").is_ok() => ("_start", &[][..]),
        None => {
            warn_nothing_ran(&run_args.module, &module);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let func = process.func(instance, name)?;
    let params = process.func_type(func).params.clone();
    let call_args = match args::parse_args(&params, texts) {
        Ok(values) => values,
        Err(message) => return Err(usage(format!("cannot invoke `{name}`: {message}"))),
    };
    let outcome = process.call(func, &call_args);
    vm.sample_footprint();
    draw_arena(vm, run_args.common.arena_map.as_deref());
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

/// The exit status a start function asked for (WASI `proc_exit`), if
/// that is how an instantiation ended: the guest's, not an error.
fn exit_at_start<T>(result: &Result<T, VmError>) -> Option<ExitCode> {
    match result {
        Err(VmError::Instantiate(carat_vm::InstantiationError::Start(ExecError::Exit(code)))) => {
            Some(exit_code(*code))
        }
        _ => None,
    }
}

/// Draws the arena into `path`, if asked; a failure is a warning, after
/// the guest's own outcome.
fn draw_arena(vm: &Vm, path: Option<&std::path::Path>) {
    if let Some(path) = path
        && let Err(e) = vm.write_arena_map(path)
    {
        eprintln!(
            "warning: cannot write the arena map to {}: {e}",
            path.display()
        );
    }
}

/// Says that a module with no `_start`, run without `--invoke`, did
/// nothing, and what it could have been asked to do.
fn warn_nothing_ran(path: &std::path::Path, module: &carat_vm::Module) {
    let functions: Vec<&str> = module
        .info()
        .exports
        .iter()
        .filter(|e| e.kind == carat_jit::EntityKind::Func)
        .map(|e| e.name.as_str())
        .collect();
    let offer = if functions.is_empty() {
        "it exports no function".to_string()
    } else {
        format!(
            "pick one of its exported functions with --invoke: {}",
            functions.join(", ")
        )
    };
    eprintln!(
        "warning: {} has no `_start` and no --invoke was given, so nothing ran; {offer}",
        path.display()
    );
}

fn wasi_config(run_args: &RunArgs) -> anyhow::Result<carat_vm::WasiConfig> {
    let program = run_args.argv0.clone().unwrap_or_else(|| {
        run_args.module.file_name().map_or_else(
            || run_args.module.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    });
    let mut args = vec![program];
    if run_args.invoke.is_none() {
        args.extend(run_args.args.iter().cloned());
    }
    let mut env = Vec::new();
    for pair in &run_args.envs {
        match pair.split_once('=') {
            Some(("", _)) => return Err(usage(format!("invalid --env `{pair}`: no name"))),
            Some((key, value)) => env.push((key.to_string(), value.to_string())),
            None => match std::env::var(pair) {
                Ok(value) => env.push((pair.clone(), value)),
                Err(_) => eprintln!(
                    "warning: --env {pair}: not set in this environment (or not UTF-8), so not passed"
                ),
            },
        }
    }
    let mut preopens = Vec::with_capacity(run_args.dirs.len());
    for dir in &run_args.dirs {
        let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
        if !std::path::Path::new(host).is_dir() {
            bail!("--dir {dir}: {host} is not a directory this process can open");
        }
        preopens.push(carat_vm::Preopen {
            host: host.into(),
            guest: guest.to_string(),
        });
    }
    Ok(carat_vm::WasiConfig {
        args,
        env,
        preopens,
        ..carat_vm::WasiConfig::default()
    })
}

/// A progress bar on stderr when it is a terminal, and nothing otherwise
/// (piped output stays clean).
fn progress_bar(template: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

fn launch(launch_args: LaunchArgs) -> anyhow::Result<ExitCode> {
    start_profiling(launch_args.common.profile)?;
    let running = carat_vm::launch::Launch::start(
        &launch_args.manifest,
        carat_vm::launch::LaunchOptions {
            mode: launch_args.mode,
            relocate_every: launch_args.common.relocate_every,
            poison_moves: launch_args.common.poison_moves,
            arena_map: launch_args.common.arena_map.clone(),
            arena_map_on_signal: launch_args.common.arena_map.is_some(),
            arena_map_every: launch_args.arena_map_every,
            cache_dir: cache_dir(launch_args.common.no_cache),
        },
    )?;
    let bar = progress_bar("{elapsed_precise} [{bar:40}] {pos}/{len} processes ended");
    while !running.is_finished() {
        let (ended, spawned) = running.progress();
        bar.set_length(spawned);
        bar.set_position(ended);
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let report = running.finish();
    print_endings(&report.endings);
    if let Some(error) = &report.arena_map_error {
        eprintln!("warning: {error}");
    }
    if let Some(format) = stats_format(launch_args.common.stats, &launch_args.common.stats_file) {
        let text = render_stats(
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
        emit_stats(&text, launch_args.common.stats_file.as_deref())?;
    }
    Ok(if report.all_exited_zero() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One line per process (a trap's wasm frames below it), or one per run
/// of copies (`name.0`, `name.1`, ...) when there are more than 8 of
/// them, named by its first and last.
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
            if let carat_vm::launch::Ending::Trapped(_, backtrace) = &endings[i].1 {
                print!("{backtrace}");
            }
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
    let bar = progress_bar("{elapsed_precise} [{bar:40}] {pos}/{len} scripts {msg}");
    bar.set_length(files.len() as u64);
    for file in files {
        bar.set_message(file.display().to_string());
        let source = carat_vm::read_text_file(file, carat_vm::MAX_MODULE_BYTES)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let report = carat_vm::wast::run_script(&vm, &file.display().to_string(), &source)?;
        for failure in &report.failures {
            bar.suspend(|| println!("FAIL {failure}"));
        }
        total.merge(report);
        bar.inc(1);
    }
    bar.finish_and_clear();
    println!("{} passed, {} failed", total.passed, total.failed);
    Ok(if total.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
