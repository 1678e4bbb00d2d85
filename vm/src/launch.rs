//! `carat-vm launch`: many guest processes in one VM, from a manifest.
//!
//! Every process is spawned from its module (compiled once, code shared by
//! all copies), gated by its capabilities, then all run together on the
//! supervisor's worker threads, time-sliced at polls (see
//! `carat_host_os::scheduler`). A process that traps, runs out of fuel or
//! exits is reported on its own; the others go on. So is one whose spawn
//! fails (an uncreatable stdout file, a refused import, a limit that runs
//! out): it is reported failed with the reason, and the launch goes on.
//!
//! This file reads the manifest and spawns; the policy it applies
//! (capabilities, entry points, the carat ABI, when regions move) is the
//! supervisor's, in `carat_host_os`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, TryLockError};
use std::time::{Duration, Instant};

use carat_host_os::carat_abi::{Supervisor, spawn_errno};
use carat_host_os::process::{self as policy, Provider, ProviderSpec};
use carat_host_os::scheduler::{self, SchedulerConfig, Step, Task};
use serde::Deserialize;

use crate::launch_map::ArenaMapping;
use crate::lifecycle::{ProcessInfo, ProcessState, ProcessTable};
use crate::{
    CallProgress, ExecError, GuestCall, Input, InterruptHandle, Mode, Module, Output, Preopen,
    Process, Vm, VmConfig, VmError, WasiConfig, WasmBacktrace, args::parse_duration,
    args::parse_size,
};

/// A launch manifest (TOML): the VM's settings and the processes to run.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The `[vm]` table.
    #[serde(default)]
    pub vm: VmSection,
    /// The `[[process]]` tables, in order.
    #[serde(default)]
    pub process: Vec<ProcessSpec>,
}

/// A manifest's `[vm]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSection {
    /// `carat` or `paging` (`carat` when absent).
    pub mode: Option<Mode>,
    /// The arena's size ("64GiB"; the VM's default when absent).
    pub arena: Option<String>,
    /// Worker threads that run processes (the host's cores when absent).
    pub workers: Option<usize>,
    /// The most processes the launch runs, spawned ones included.
    pub max_processes: Option<u64>,
    /// Every byte of guest state all processes hold at once ("256MiB");
    /// a spawn or growth past it fails that one process or growth.
    pub memory_budget: Option<String>,
}

/// A manifest's `[[process]]` table: one process (or `count` copies).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    /// Its name, unique in the manifest; copies get `name.i`.
    pub name: String,
    /// The module to run (`.wat`, `.wasm` or `.cwasm`), relative to the manifest.
    pub module: PathBuf,
    /// WASI arguments after the program name.
    #[serde(default)]
    pub args: Vec<String>,
    /// WASI environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Copies started with the launch; 0 declares a process only guests
    /// start, with `carat.spawn`.
    #[serde(default = "one")]
    pub count: u32,
    /// The most bytes of guest state it may hold ("16MiB").
    pub max_memory: Option<String>,
    /// Stack bytes its wasm frames may use ("64KiB"); past it a call traps
    /// with `call stack exhausted`. The VM's default (1 MiB) when absent.
    pub max_stack: Option<String>,
    /// 0 means unlimited.
    #[serde(default)]
    pub fuel: u64,
    /// Host modules it may import: `wasi`, `carat` (whose `spawn` it may
    /// call).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Exports other processes may call (`carat.call`).
    #[serde(default)]
    pub entry_points: Vec<String>,
    /// The longest one call into an entry point of this process may run
    /// (its own running time); past it the call is killed and the client's
    /// import fails. Unlimited when absent.
    pub call_timeout: Option<String>,
    /// Where its output goes: `inherit`, `null` or a file (relative to
    /// the manifest; copies write `FILE.0`, `FILE.1`, ...).
    #[serde(default = "inherit")]
    pub stdout: String,
    /// As `stdout`, for its standard error.
    #[serde(default = "inherit")]
    pub stderr: String,
    /// Where its standard input comes from: `inherit`, `null` (empty) or
    /// a file (relative to the manifest), which every copy reads from
    /// its start.
    #[serde(default = "inherit")]
    pub stdin: String,
    /// Host directories the process may use (WASI), each `HOST::GUEST`
    /// or `HOST` (seen as itself), the host path relative to the
    /// manifest.
    #[serde(default)]
    pub dirs: Vec<String>,
}

fn one() -> u32 {
    1
}

fn inherit() -> String {
    "inherit".into()
}

/// Why a launch could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The manifest could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The manifest.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The manifest is not valid.
    #[error("invalid manifest {path}: {message}")]
    Manifest {
        /// The manifest.
        path: String,
        /// What is wrong, naming the field.
        message: String,
    },
    /// A process could not be set up (its module, its WASI).
    #[error("process `{process}`: {source}")]
    Process {
        /// The process's name in the manifest.
        process: String,
        /// Why.
        #[source]
        source: VmError,
    },
    /// The VM could not be made.
    #[error(transparent)]
    Vm(#[from] VmError),
    /// The launch's thread could not be started.
    #[error("cannot start the launch's thread")]
    Thread(#[source] std::io::Error),
}

/// How one process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// It exited (returned from `_start`: 0, or `proc_exit`).
    Exited(i32),
    /// It trapped: the trap, and the wasm frames it trapped in.
    Trapped(String, Box<WasmBacktrace>),
    /// It failed otherwise (a host function's error, a kill, a limit).
    Failed(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exit {code}"),
            Ending::Trapped(message, _) => write!(f, "trap: {message}"),
            Ending::Failed(message) => write!(f, "error: {message}"),
        }
    }
}

/// What a launch did.
#[derive(Debug)]
pub struct LaunchReport {
    /// Each process's name and ending, in manifest order; processes
    /// spawned by guests follow the other copies of their spec.
    pub endings: Vec<(String, Ending)>,
    /// The VM's figures at the end.
    pub vm: crate::VmStats,
    /// Times a worker switched from one process to another.
    pub context_switches: u64,
    /// The median time to spawn one process, in nanoseconds.
    pub spawn_ns_median: u64,
    /// Phases of the launch: spawning the manifest's processes (before
    /// any runs), from the first process's end to the last's (for
    /// sleepers with one wake time, the time to wake them all), and the
    /// whole launch, manifest read to last end.
    pub spawn_all_ns: u64,
    /// The most processes parked in a blocking host call (asleep in
    /// WASI, say) at the same moment.
    pub peak_parked: u64,
    /// From the first process's end to the last's, in nanoseconds.
    pub ends_spread_ns: u64,
    /// The whole launch, manifest read to last end, in nanoseconds.
    pub end_to_end_ns: u64,
    /// Every process the launch ran, by pid (failed spawns have none).
    pub processes: Vec<ProcessInfo>,
    /// Why the arena map could not be written, if it was asked for and
    /// could not be.
    pub arena_map_error: Option<String>,
}

impl LaunchReport {
    /// Whether every process exited with status 0.
    pub fn all_exited_zero(&self) -> bool {
        self.endings.iter().all(|(_, e)| *e == Ending::Exited(0))
    }

    /// How many processes did not exit with status 0.
    pub fn failed(&self) -> usize {
        self.endings
            .iter()
            .filter(|(_, e)| *e != Ending::Exited(0))
            .count()
    }
}

/// One spawned process running its `_start`.
struct ProcessTask {
    name: String,
    /// Its spec's index in the manifest and its copy number: the order it
    /// is reported in.
    order: (usize, u32),
    /// Shared with the processes that call its entry points; `None` when
    /// its spawn failed before there was a process.
    process: Option<Arc<Mutex<Process>>>,
    interrupt: InterruptHandle,
    call: Option<GuestCall>,
    ending: Option<Ending>,
    /// Its pid and the launch's process table, which it keeps up to date;
    /// `None` when its spawn failed before there was a process.
    listed: Option<(u32, Arc<ProcessTable>)>,
}

impl ProcessTask {
    fn new(
        (name, order): (String, (usize, u32)),
        process: Process,
        call: Option<GuestCall>,
        ending: Option<Ending>,
        table: &Arc<ProcessTable>,
    ) -> Self {
        let pid = process.pid();
        let interrupt = process.interrupt_handle();
        table.add(pid, &name, interrupt.clone(), process.bytes_in_use());
        if let Some(ending) = &ending {
            table.ended_at_spawn(pid, ending);
        }
        ProcessTask {
            name,
            order,
            interrupt,
            process: Some(Arc::new(Mutex::new(process))),
            call,
            ending,
            listed: Some((pid, table.clone())),
        }
    }

    /// A process whose spawn failed: reported with `reason`, never run.
    fn failed((name, order): (String, (usize, u32)), reason: String) -> Self {
        ProcessTask {
            name,
            order,
            process: None,
            interrupt: InterruptHandle::none(),
            call: None,
            ending: Some(Ending::Failed(reason)),
            listed: None,
        }
    }
}

/// Locks launch state; a panic while it was held leaves it usable (each
/// guarded value stays consistent between statements).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Task for ProcessTask {
    fn step(&mut self) -> Step {
        if self.call.is_none() {
            // It ended at its spawn, and the table says so already.
            return Step::Finished;
        }
        let started = Instant::now();
        if let Some((pid, table)) = &self.listed {
            table.set_running(*pid);
        }
        let (step, memory) = self.run_once();
        if let Some((pid, table)) = &self.listed {
            let ran = started.elapsed();
            match (step, &self.ending) {
                (Step::Finished, Some(ending)) => table.ended(*pid, ending, ran),
                (Step::Finished, None) => {}
                (step, _) => {
                    let state = match step {
                        Step::Sleeping(_) => ProcessState::Sleeping,
                        _ => ProcessState::Runnable,
                    };
                    table.stepped(*pid, state, ran, memory);
                }
            }
        }
        step
    }

    fn interrupt_handle(&self) -> InterruptHandle {
        self.interrupt.clone()
    }

    fn wake_early(&self) -> bool {
        self.listed
            .as_ref()
            .is_some_and(|(pid, table)| table.kill_requested(*pid))
    }
}

impl ProcessTask {
    /// One step of its call: until it ends, parks or yields. Also the
    /// guest state its process holds after the step, taken while the step
    /// holds the process (`None` when it did not run).
    fn run_once(&mut self) -> (Step, Option<u64>) {
        let (Some(call), Some(process)) = (self.call.as_mut(), self.process.as_ref()) else {
            return (Step::Finished, None);
        };
        // A client running one of this process's entry points holds it:
        // try again later rather than hold the worker.
        let mut process = match process.try_lock() {
            Ok(process) => process,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return (Step::Yielded, None),
        };
        // Compaction at parks is the relocation policy's, in the store.
        let progress = process.resume(call);
        let memory = Some(process.bytes_in_use());
        drop(process);
        let progress = match progress {
            Ok(progress) => progress,
            // The call could not run at all (no stack for its first run):
            // the process fails with the reason.
            Err(e) => {
                self.call = None;
                self.ending = Some(Ending::Failed(e.to_string()));
                return (Step::Finished, memory);
            }
        };
        let step = match progress {
            CallProgress::Suspended => Step::Yielded,
            CallProgress::Sleeping(until) => Step::Sleeping(until),
            CallProgress::Done(result) => {
                self.call = None;
                // Its memory, stack and control blocks go back now, not at
                // the launch's end (unless a client still holds it to call
                // its entry points).
                self.process = None;
                self.ending = Some(match result {
                    Ok(_) => Ending::Exited(0),
                    Err(ExecError::Exit(code)) => Ending::Exited(code),
                    Err(ExecError::Trap(trap, backtrace)) => {
                        Ending::Trapped(trap.to_string(), Box::new(backtrace))
                    }
                    Err(other) => Ending::Failed(other.to_string()),
                });
                Step::Finished
            }
        };
        (step, memory)
    }
}

/// Where a `stdout` or `stderr` field sends copy `copy` of a process.
fn output(field: &str, base: &Path, copy: Option<u32>) -> Output {
    match field {
        "inherit" => Output::Inherit,
        "null" => Output::Null,
        path => {
            let path = base.join(path);
            Output::File(match copy {
                Some(i) => PathBuf::from(format!("{}.{i}", path.display())),
                None => path,
            })
        }
    }
}

/// A `stdin` field, checked: a file must be one this process can read.
fn input(field: &str, base: &Path) -> Result<Input, String> {
    Ok(match field {
        "inherit" => Input::Inherit,
        "null" => Input::Null,
        path => {
            let path = base.join(path);
            std::fs::File::open(&path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            Input::File(path)
        }
    })
}

/// A `dirs` field, checked: every host path must be a directory.
fn preopens(dirs: &[String], base: &Path) -> Result<Vec<Preopen>, String> {
    dirs.iter()
        .map(|dir| {
            let (host, guest) = dir.split_once("::").unwrap_or((dir, dir));
            if guest.is_empty() {
                return Err(format!("`{dir}`: no guest path after `::`"));
            }
            let host = base.join(host);
            if !host.is_dir() {
                return Err(format!("`{dir}`: {} is not a directory", host.display()));
            }
            Ok(Preopen {
                host,
                guest: guest.to_string(),
            })
        })
        .collect()
}

/// How a process that failed to instantiate ended.
fn ending_of(e: VmError) -> Ending {
    match (e.trap(), &e) {
        (Some(trap), _) => {
            let backtrace = e.backtrace().cloned().unwrap_or_default();
            Ending::Trapped(trap.to_string(), Box::new(backtrace))
        }
        (None, VmError::Instantiate(crate::InstantiationError::Start(ExecError::Exit(c)))) => {
            Ending::Exited(*c)
        }
        _ => Ending::Failed(e.to_string()),
    }
}

/// An optional manifest field, parsed when present.
fn optional<T>(
    value: &Option<String>,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    value.as_deref().map(parse).transpose()
}

/// How often a running launch samples what its processes cost, at most.
const FOOTPRINT_PERIOD: Duration = Duration::from_millis(100);

/// A sample holds the allocator's locks while it counts the heap (and
/// that takes tens of milliseconds at a million processes), stalling
/// every worker that allocates: the sampler waits this many times as
/// long as its last sample took before the next, so it holds them less
/// than 1/20 of the time.
const FOOTPRINT_DUTY: u32 = 20;

/// The range a manifest's `max_stack` must lie in.
const MIN_STACK: u64 = 4 << 10;
const MAX_STACK: u64 = 256 << 20;

/// The most processes one launch runs, counting those spawned by guests,
/// unless the manifest's `[vm] max_processes` says otherwise.
pub const DEFAULT_MAX_PROCESSES: u64 = 100_000;

/// What spawning needs, shared by the launch and by guests' `carat.spawn`.
struct Launcher {
    vm: Vm,
    base: PathBuf,
    specs: Vec<ProcessSpec>,
    /// Per spec: its module, whether its capabilities refuse it, its
    /// memory limit, the timeout of calls into its entry points.
    modules: Vec<Module>,
    refused: Vec<Option<String>>,
    max_memory: Vec<Option<u64>>,
    max_stack: Vec<Option<u64>>,
    call_timeouts: Vec<Option<Duration>>,
    stdin: Vec<Input>,
    preopens: Vec<Vec<Preopen>>,
    providers: Mutex<HashMap<String, Provider<Process>>>,
    spawner: scheduler::Spawner<ProcessTask>,
    /// Per spec: the copy number the next spawned process gets.
    next_copy: Mutex<Vec<u32>>,
    spawned: std::sync::atomic::AtomicU64,
    max_processes: u64,
    /// Every process spawned, for hosts (see `lifecycle`).
    table: Arc<ProcessTable>,
    spawn_times: Mutex<Vec<Duration>>,
    this: std::sync::Weak<Launcher>,
}

/// The carat ABI's supervisor in a launch: the VM's counters, and
/// `carat.spawn` through the launcher.
struct LaunchSupervisor {
    launcher: std::sync::Weak<Launcher>,
}

impl Supervisor for LaunchSupervisor {
    fn stat(&self, which: i32) -> i64 {
        self.launcher.upgrade().map_or(-1, |l| l.vm.stat(which))
    }

    fn spawn(&self, name: &str) -> Option<i32> {
        let launcher = self.launcher.upgrade()?;
        Some(launcher.spawn_by_name(name))
    }

    fn can_spawn(&self) -> bool {
        true
    }
}

impl Launcher {
    /// The name copy `copy` of spec `index` is reported under.
    fn process_name(&self, index: usize, copy: u32) -> String {
        let spec = &self.specs[index];
        if spec.count != 1 || copy > 0 {
            format!("{}.{copy}", spec.name)
        } else {
            spec.name.clone()
        }
    }

    /// Spawns copy `copy` of spec `index`: a task that runs its `_start`,
    /// or one already ended when its spawn fails (a limit runs out, its
    /// capabilities refuse it, its stdout cannot be created, an import
    /// does not link) or its instantiation stops. Nothing here fails the
    /// launch.
    fn spawn(&self, index: usize, copy: u32) -> ProcessTask {
        let name = self.process_name(index, copy);
        let start = Instant::now();
        let id = (name.clone(), (index, copy));
        let spec = &self.specs[index];
        let fuel = (spec.fuel > 0).then_some(spec.fuel);
        let mut process = match self.vm.new_process_with(self.max_memory[index], fuel) {
            Ok(process) => process,
            Err(e) => return ProcessTask::failed(id, e.to_string()),
        };
        if let Some(max_stack) = self.max_stack[index] {
            process.set_max_stack(max_stack as usize);
        }
        let output_copy = (name != spec.name).then_some(copy);
        let (instance, call, ending) = match self.prepare(&mut process, index, &name, output_copy) {
            Ok((instance, Some(call))) => (Some(instance), Some(call), None),
            Ok((instance, None)) => (Some(instance), None, Some(Ending::Exited(0))),
            Err(ending) => (None, None, Some(ending)),
        };
        let mut task = ProcessTask::new(id, process, call, ending, &self.table);
        if let (Some(instance), Some(shared)) = (instance, &task.process)
            && !spec.entry_points.is_empty()
        {
            self.add_provider(index, shared, instance);
        }
        if task.ending.is_some() {
            // It ended at its spawn (a limit refused it, or it has no
            // `_start`): what it holds goes back now, not at the launch's
            // end. A provider keeps its own hold on it.
            task.process = None;
        }
        lock(&self.spawn_times).push(start.elapsed());
        // After the timing: sampling reads /proc.
        self.vm.sample_footprint_at(self.vm.processes_live());
        task
    }

    /// Gives a new process its syscalls and imports and instantiates it:
    /// its instance and its `_start` call (if it exports one), or how it
    /// ended.
    fn prepare(
        &self,
        process: &mut Process,
        index: usize,
        name: &str,
        output_copy: Option<u32>,
    ) -> Result<(crate::InstanceId, Option<GuestCall>), Ending> {
        let spec = &self.specs[index];
        let module = &self.modules[index];
        if let Some(message) = &self.refused[index] {
            return Err(Ending::Failed(message.clone()));
        }
        if spec.capabilities.iter().any(|c| c == "carat") {
            process.add_carat_abi_with(Arc::new(LaunchSupervisor {
                launcher: self.this.clone(),
            }));
        }
        if spec.capabilities.iter().any(|c| c == "wasi") {
            let mut args = vec![name.to_string()];
            args.extend(spec.args.iter().cloned());
            process
                .add_wasi(WasiConfig {
                    args,
                    env: spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    preopens: self.preopens[index].clone(),
                    stdin: self.stdin[index].clone(),
                    stdout: output(&spec.stdout, &self.base, output_copy),
                    stderr: output(&spec.stderr, &self.base, output_copy),
                })
                .map_err(|e| Ending::Failed(e.to_string()))?;
        }
        let linked = policy::link_entry_points(
            &module.info().imports,
            &lock(&self.providers),
            &process.mailbox(),
        )
        .map_err(Ending::Failed)?;
        for import in linked {
            process.define_boxed(&import.module, &import.name, import.ty, import.call);
        }
        let instance = process.instantiate(module).map_err(ending_of)?;
        let call = match process.func(instance, "_start") {
            Ok(start) => Some(
                process
                    .start_call(start, &[])
                    .map_err(|e| Ending::Failed(e.to_string()))?,
            ),
            Err(_) => None,
        };
        Ok((instance, call))
    }

    /// Makes a provider's declared entry points linkable by the processes
    /// spawned after it. What linking needs is read now, so a client can
    /// be linked while the provider runs.
    fn add_provider(
        &self,
        index: usize,
        shared: &Arc<Mutex<Process>>,
        instance: crate::InstanceId,
    ) {
        let spec = &self.specs[index];
        let process = lock(shared);
        let entry_points = spec
            .entry_points
            .iter()
            .map(|name| {
                let entry = process
                    .func(instance, name)
                    .map(|f| (f, process.func_type(f).clone()))
                    .map_err(|e| e.to_string());
                (name.clone(), entry)
            })
            .collect();
        let provider = Provider::new(ProviderSpec {
            name: spec.name.clone(),
            process: shared.clone(),
            mailbox: process.mailbox(),
            interrupt: process.interrupt_handle(),
            call_timeout: self.call_timeouts[index],
            entry_points,
        });
        drop(process);
        lock(&self.providers).insert(spec.name.clone(), provider);
    }

    /// `carat.spawn`: starts another copy of the manifest's process NAME,
    /// which runs beside its spawner with NAME's module, arguments, limits
    /// and capabilities. Returns the new process's id, or a negative
    /// errno (see `carat_abi::spawn_errno`).
    fn spawn_by_name(&self, name: &str) -> i32 {
        let Some(index) = self.specs.iter().position(|s| s.name == name) else {
            return spawn_errno::NOENT;
        };
        if !self.specs[index].entry_points.is_empty() {
            return spawn_errno::PERM;
        }
        let reserved = self.spawned.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |n| (n < self.max_processes).then_some(n + 1),
        );
        if reserved.is_err() {
            return spawn_errno::AGAIN;
        }
        let copy = {
            let mut next = lock(&self.next_copy);
            next[index] += 1;
            next[index] - 1
        };
        let task = self.spawn(index, copy);
        let code = match (&task.process, &task.ending) {
            _ if self.refused[index].is_some() => spawn_errno::ACCES,
            (None, _) => spawn_errno::NOMEM,
            (Some(_), Some(Ending::Failed(_))) if task.call.is_none() => spawn_errno::NOMEM,
            (Some(process), _) => lock(process).pid() as i32,
        };
        // Even a failed spawn is reported with its reason.
        self.spawner.spawn(task);
        code
    }
}

/// What the command line adds to a manifest.
#[derive(Clone, Debug, Default)]
pub struct LaunchOptions {
    /// Overrides the manifest's mode.
    pub mode: Option<Mode>,
    /// Relocation stress: every region of a process moves at every Nth
    /// poll.
    pub relocate_every: Option<u64>,
    /// Poison every range a move leaves (tests).
    pub poison_moves: bool,
    /// Draw the arena into this SVG file at the end, and every
    /// `arena_map_every` while the launch runs.
    pub arena_map: Option<PathBuf>,
    /// Draw it too whenever the host process gets `SIGUSR1` (which then
    /// no longer ends it).
    pub arena_map_on_signal: bool,
    /// How often to redraw the arena map while the launch runs.
    pub arena_map_every: Option<Duration>,
    /// The compile cache's directory (see `VmConfig::cache_dir`).
    pub cache_dir: Option<PathBuf>,
}

/// The largest manifest `launch` reads.
pub const MAX_MANIFEST_BYTES: u64 = 16 << 20;

/// Longest process name.
const MAX_NAME: usize = 128;

/// Checks a process name: printable, without the characters the launch
/// gives meaning to (`.` before a copy number, `:` in `process:NAME`).
fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("a process name is empty".into());
    }
    if name.len() > MAX_NAME {
        return Err(format!(
            "process name `{}…` is longer than {MAX_NAME} bytes",
            &name[..name.floor_char_boundary(32)]
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| c.is_control() || c.is_whitespace() || *c == '.' || *c == ':')
    {
        return Err(format!(
            "process name {name:?} contains {c:?}; names may not hold `.`, `:`, blanks or control characters"
        ));
    }
    Ok(())
}

/// Checks what the manifest says before anything is spawned.
fn check_manifest(manifest: &Manifest, max_processes: u64) -> Result<(), String> {
    let mut names = std::collections::HashSet::new();
    let mut total: u64 = 0;
    for spec in &manifest.process {
        check_name(&spec.name)?;
        if !names.insert(spec.name.as_str()) {
            return Err(format!("process name `{}` is used twice", spec.name));
        }
        if !spec.entry_points.is_empty() && spec.count != 1 {
            return Err(format!(
                "process `{}` declares entry points, so its count must be 1",
                spec.name
            ));
        }
        if let Some(capability) = spec
            .capabilities
            .iter()
            .find(|c| !policy::is_known_capability(c))
        {
            return Err(format!(
                "process `{}`: unknown capability `{capability}`",
                spec.name
            ));
        }
        total += u64::from(spec.count);
    }
    if total > max_processes {
        return Err(format!(
            "the manifest starts {total} processes, more than [vm] max_processes = {max_processes}"
        ));
    }
    Ok(())
}

/// Reads a manifest, spawns its processes and runs them all to the end,
/// with the processes they spawn.
pub fn launch(path: &Path, options: LaunchOptions) -> Result<LaunchReport, LaunchError> {
    Ok(Launch::start(path, options)?.finish())
}

/// A launch under way: its processes run on worker threads while the host
/// lists, kills and waits for them.
pub struct Launch {
    table: Arc<ProcessTable>,
    /// Tells the run to wake a killed sleeper.
    spawner: scheduler::Spawner<ProcessTask>,
    run: std::thread::JoinHandle<LaunchReport>,
}

impl Launch {
    /// Reads a manifest, spawns its processes and starts running them.
    pub fn start(path: &Path, options: LaunchOptions) -> Result<Launch, LaunchError> {
        start(path, options)
    }

    /// Every process spawned so far (its own spawns included), by pid:
    /// state, memory, CPU time and, once ended, how.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        self.table.list()
    }

    /// Asks process `pid` to stop: it ends with the trap `interrupted` at
    /// its next poll, or at once if it waits in a host call. False when
    /// there is no such process or it has already ended.
    pub fn kill(&self, pid: u32) -> bool {
        let killed = self.table.kill(pid);
        if killed {
            self.spawner.check_early_wakes();
        }
        killed
    }

    /// Blocks until process `pid` ends; how it did, or `None` when the
    /// launch has no such process.
    pub fn wait(&self, pid: u32) -> Option<Ending> {
        self.table.wait(pid, None)
    }

    /// As [`Launch::wait`], for at most `timeout`: `None` also when the
    /// process has not ended by then.
    pub fn wait_timeout(&self, pid: u32, timeout: Duration) -> Option<Ending> {
        self.table.wait(pid, Some(timeout))
    }

    /// Waits for every process to end; what the launch did.
    /// How many processes have ended so far, of how many spawned.
    pub fn progress(&self) -> (u64, u64) {
        self.table.progress()
    }

    /// Whether every process has ended and the report is ready.
    pub fn is_finished(&self) -> bool {
        self.run.is_finished()
    }

    /// Waits for every process to end and returns the report.
    pub fn finish(self) -> LaunchReport {
        self.run
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
    }
}

fn start(path: &Path, options: LaunchOptions) -> Result<Launch, LaunchError> {
    let started = Instant::now();
    let text =
        crate::read_text_file(path, MAX_MANIFEST_BYTES).map_err(|source| LaunchError::Read {
            path: path.display().to_string(),
            source,
        })?;
    let manifest: Manifest = toml::from_str(&text).map_err(|e| LaunchError::Manifest {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    let base = path.parent().unwrap_or(Path::new("."));
    let bad = |message: String| LaunchError::Manifest {
        path: path.display().to_string(),
        message,
    };
    let max_processes = manifest.vm.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES);
    check_manifest(&manifest, max_processes).map_err(bad)?;
    let mut config = VmConfig {
        mode: options.mode.or(manifest.vm.mode).unwrap_or_default(),
        relocate_every: options.relocate_every,
        poison_moves: options.poison_moves,
        cache_dir: options.cache_dir.clone(),
        fuel: manifest
            .process
            .iter()
            .any(|p| p.fuel > 0)
            .then_some(u64::MAX),
        ..VmConfig::default()
    };
    if let Some(arena) = &manifest.vm.arena {
        config.arena_size = parse_size(arena).map_err(bad)? as usize;
    }
    if let Some(budget) = &manifest.vm.memory_budget {
        config.memory_budget =
            Some(parse_size(budget).map_err(|e| bad(format!("[vm] memory_budget: {e}")))?);
    }
    let workers = manifest
        .vm
        .workers
        .unwrap_or_else(|| SchedulerConfig::default().workers);
    let vm = Vm::new(config)?;

    let mut compiled: HashMap<PathBuf, Module> = HashMap::new();
    let mut modules = Vec::new();
    let mut refused = Vec::new();
    let mut max_memory = Vec::new();
    let mut max_stack = Vec::new();
    let mut call_timeouts = Vec::new();
    let mut stdin = Vec::new();
    let mut dirs = Vec::new();
    for spec in &manifest.process {
        let module_path = base.join(&spec.module);
        let module = match compiled.get(&module_path) {
            Some(m) => m.clone(),
            None => {
                let m = vm
                    .compile_file(&module_path)
                    .map_err(|source| LaunchError::Process {
                        process: spec.name.clone(),
                        source,
                    })?;
                compiled.insert(module_path.clone(), m.clone());
                m
            }
        };
        // A spawn the capabilities refuse fails that process, not the launch.
        refused.push(policy::check_capabilities(&module.info().imports, &spec.capabilities).err());
        modules.push(module);
        // A field's error names its process and the field.
        let named = |field: &'static str| {
            let process = &spec.name;
            move |e: String| bad(format!("process `{process}`: {field}: {e}"))
        };
        max_memory.push(optional(&spec.max_memory, parse_size).map_err(named("max_memory"))?);
        max_stack.push(
            optional(&spec.max_stack, |text| {
                let size = parse_size(text)?;
                if (MIN_STACK..=MAX_STACK).contains(&size) {
                    Ok(size)
                } else {
                    Err(format!("{size} bytes is outside {MIN_STACK}..={MAX_STACK}"))
                }
            })
            .map_err(named("max_stack"))?,
        );
        call_timeouts
            .push(optional(&spec.call_timeout, parse_duration).map_err(named("call_timeout"))?);
        stdin.push(input(&spec.stdin, base).map_err(named("stdin"))?);
        dirs.push(preopens(&spec.dirs, base).map_err(named("dirs"))?);
    }
    let launcher = Arc::new_cyclic(|this| Launcher {
        vm: vm.clone(),
        base: base.to_path_buf(),
        next_copy: Mutex::new(manifest.process.iter().map(|s| s.count).collect()),
        specs: manifest.process,
        modules,
        refused,
        max_memory,
        max_stack,
        call_timeouts,
        stdin,
        preopens: dirs,
        providers: Mutex::default(),
        spawner: scheduler::Spawner::default(),
        spawned: Default::default(),
        max_processes,
        spawn_times: Mutex::default(),
        table: Arc::default(),
        this: this.clone(),
    });
    let mapping = ArenaMapping::new(
        options.arena_map.clone(),
        options.arena_map_every,
        options.arena_map_on_signal,
    );
    let spawning = Instant::now();
    let mut tasks = Vec::new();
    for (index, spec) in launcher.specs.iter().enumerate() {
        for copy in 0..spec.count {
            launcher
                .spawned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tasks.push(launcher.spawn(index, copy));
        }
    }

    let spawn_all = spawning.elapsed();
    let table = launcher.table.clone();
    let spawner = launcher.spawner.clone();
    let timing = LaunchTiming { started, spawn_all };
    let run = std::thread::Builder::new()
        .name("launch".into())
        .spawn(move || run(launcher, tasks, workers, vm, timing, mapping))
        .map_err(LaunchError::Thread)?;
    Ok(Launch {
        table,
        spawner,
        run,
    })
}

/// When a launch started, and how long spawning its processes took.
struct LaunchTiming {
    started: Instant,
    spawn_all: Duration,
}

/// Runs a launch's tasks to the end on `workers` threads.
fn run(
    launcher: Arc<Launcher>,
    tasks: Vec<ProcessTask>,
    workers: usize,
    vm: Vm,
    timing: LaunchTiming,
    mapping: ArenaMapping,
) -> LaunchReport {
    // What processes cost is sampled as they spawn and, while they run
    // (parked mid-call, holding stacks), every 100 ms while as many are
    // alive as at the peak so far: a sample walks the allocator's free
    // lists under its locks, and once processes end, those are long (at
    // a million processes, sampling while they ended made their ends
    // take 11 minutes instead of seconds).
    // The sampler stops as soon as the run ends: dropping `running` ends
    // its wait at once.
    let (running, stopped) = std::sync::mpsc::channel::<()>();
    let (drawing, stop_drawing) = std::sync::mpsc::channel::<()>();
    let map_error = Mutex::new(None);
    let table = launcher.table.clone();
    let name_of = &move |pid| table.name_of(pid);
    let (tasks, stats) = std::thread::scope(|scope| {
        let vm = &vm;
        if mapping.draws_while_running() {
            let (mapping, map_error) = (&mapping, &map_error);
            scope.spawn(move || mapping.draw_until(vm, name_of, &stop_drawing, map_error));
        }
        scope.spawn(move || {
            let mut wait = FOOTPRINT_PERIOD;
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(wait) {
                let sampling = Instant::now();
                vm.sample_footprint_at_peak();
                wait = FOOTPRINT_PERIOD.max(sampling.elapsed() * FOOTPRINT_DUTY);
            }
        });
        let ran = scheduler::run_with_spawner(
            tasks,
            SchedulerConfig {
                workers,
                time_slice: Duration::from_millis(10),
            },
            launcher.spawner.clone(),
        );
        drop(running);
        drop(drawing);
        ran
    });
    mapping.draw_final(&vm, name_of, &map_error);
    let mut spawn_times = std::mem::take(&mut *lock(&launcher.spawn_times));
    spawn_times.sort();
    // Spawned copies are reported with the others of their spec.
    let mut tasks = tasks;
    tasks.sort_by_key(|t| t.order);
    LaunchReport {
        endings: tasks
            .into_iter()
            .map(|t| {
                (
                    t.name,
                    t.ending.unwrap_or(Ending::Failed("never ran".into())),
                )
            })
            .collect(),
        vm: vm.stats(),
        context_switches: stats.context_switches,
        spawn_ns_median: spawn_times
            .get(spawn_times.len() / 2)
            .map_or(0, |d| d.as_nanos() as u64),
        processes: launcher.table.list(),
        spawn_all_ns: timing.spawn_all.as_nanos() as u64,
        peak_parked: launcher.table.peak_sleeping(),
        ends_spread_ns: launcher.table.ends_spread().as_nanos() as u64,
        end_to_end_ns: timing.started.elapsed().as_nanos() as u64,
        arena_map_error: map_error
            .into_inner()
            .unwrap_or_else(|e| e.into_inner())
            .map(|e| format!("cannot write the arena map: {e}")),
    }
}
