//! `carat-vm launch`: many guest processes in one VM, from a manifest.
//!
//! Every process is spawned from its module (compiled once, code shared by
//! all copies), gated by its capabilities, then all run together on the
//! supervisor's worker threads, time-sliced at polls (see
//! `carat_host_os::scheduler`). A process that traps, runs out of fuel or
//! exits is reported on its own; the others go on.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use carat_host_os::scheduler::{self, SchedulerConfig, Step, Task};
use serde::Deserialize;

use crate::{
    CallProgress, ExecError, GuestCall, InterruptHandle, Mode, Module, Output, Process, Vm,
    VmConfig, VmError, WasiConfig, args::parse_size,
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    #[serde(default)]
    pub vm: VmSection,
    #[serde(default)]
    pub process: Vec<ProcessSpec>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VmSection {
    pub mode: Option<Mode>,
    pub arena: Option<String>,
    pub workers: Option<usize>,
    /// The most processes the launch runs, spawned ones included.
    pub max_processes: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProcessSpec {
    pub name: String,
    pub module: PathBuf,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Copies started with the launch; 0 declares a process only guests
    /// start, with `carat.spawn`.
    #[serde(default = "one")]
    pub count: u32,
    pub max_memory: Option<String>,
    /// 0 means unlimited.
    #[serde(default)]
    pub fuel: u64,
    #[serde(default)]
    pub capabilities: Vec<String>,
    #[serde(default)]
    pub entry_points: Vec<String>,
    #[serde(default = "inherit")]
    pub stdout: String,
}

fn one() -> u32 {
    1
}

fn inherit() -> String {
    "inherit".into()
}

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid manifest {path}: {message}")]
    Manifest { path: String, message: String },
    #[error("process `{process}`: {source}")]
    Process {
        process: String,
        #[source]
        source: VmError,
    },
    #[error(transparent)]
    Vm(#[from] VmError),
}

/// How one process ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Trapped(String),
    Failed(String),
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(code) => write!(f, "exit {code}"),
            Ending::Trapped(message) => write!(f, "trap: {message}"),
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
    pub vm: crate::VmStats,
    pub context_switches: u64,
    pub spawn_ns_median: u64,
}

impl LaunchReport {
    pub fn all_exited_zero(&self) -> bool {
        self.endings.iter().all(|(_, e)| *e == Ending::Exited(0))
    }

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
    /// Shared with the processes that call its entry points.
    process: Arc<Mutex<Process>>,
    interrupt: InterruptHandle,
    call: Option<GuestCall>,
    ending: Option<Ending>,
}

impl ProcessTask {
    fn new(
        (name, order): (String, (usize, u32)),
        process: Process,
        call: Option<GuestCall>,
        ending: Option<Ending>,
    ) -> Self {
        ProcessTask {
            name,
            order,
            interrupt: process.interrupt_handle(),
            process: Arc::new(Mutex::new(process)),
            call,
            ending,
        }
    }
}

/// Locks launch state; a panic while it was held leaves it usable (each
/// guarded value stays consistent between statements).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process whose declared entry points others may import. What
/// linking needs is read once, when the provider is spawned, so a client
/// can be linked (by `carat.spawn`) while the provider itself runs.
struct Provider {
    process: Arc<Mutex<Process>>,
    mailbox: Arc<Mutex<crate::Mailbox>>,
    /// Each declared entry point, if the provider exports it as a function.
    entry_points: HashMap<String, Result<(crate::Func, crate::FuncType), String>>,
}

impl Provider {
    fn new(
        process: &Arc<Mutex<Process>>,
        instance: crate::InstanceId,
        declared: &[String],
    ) -> Self {
        let guard = lock(process);
        let entry_points = declared
            .iter()
            .map(|name| {
                let entry = guard
                    .func(instance, name)
                    .map(|f| (f, guard.func_type(f).clone()))
                    .map_err(|e| e.to_string());
                (name.clone(), entry)
            })
            .collect();
        Provider {
            process: process.clone(),
            mailbox: guard.mailbox(),
            entry_points,
        }
    }
}

/// Resolves a client's `process:NAME` imports to calls into NAME's entry
/// points. A call runs the entry point in the callee's context, with
/// scalars passed by value and the caller's last `carat.send` buffer as
/// the callee's `carat.receive` (and back for the reply); calls into one
/// callee are serialised by its lock, which its own task holds only while
/// it runs.
fn link_entry_points(
    client: &mut Process,
    module: &Module,
    providers: &HashMap<String, Provider>,
) -> Result<(), String> {
    for import in &module.info().imports {
        let Some(callee) = import.module.strip_prefix("process:") else {
            continue;
        };
        let provider = providers.get(callee).ok_or_else(|| {
            format!(
                "import `{}::{}`: no process `{callee}` with entry points comes before it",
                import.module, import.name
            )
        })?;
        let (func, ty) = match provider.entry_points.get(&import.name) {
            None => {
                return Err(format!(
                    "import `{}::{}`: `{callee}` does not declare `{}` an entry point",
                    import.module, import.name, import.name
                ));
            }
            Some(Err(e)) => return Err(format!("entry point `{callee}::{}`: {e}", import.name)),
            Some(Ok((func, ty))) => (*func, ty.clone()),
        };
        let target = provider.process.clone();
        let callee_mailbox = provider.mailbox.clone();
        let client_mailbox = client.mailbox();
        let callee = callee.to_string();
        client.define_func(&import.module, &import.name, ty, move |_, args, results| {
            let request = std::mem::take(&mut crate::Mailbox::lock(&client_mailbox).outbox);
            // The callee's lock serialises calls into it, mailbox included.
            let (outcome, reply) = {
                let mut target = lock(&target);
                crate::Mailbox::lock(&callee_mailbox).inbox = request;
                let outcome = target.call(func, args);
                let reply = std::mem::take(&mut crate::Mailbox::lock(&callee_mailbox).outbox);
                (outcome, reply)
            };
            crate::Mailbox::lock(&client_mailbox).inbox = reply;
            match outcome {
                Ok(values) => {
                    results.copy_from_slice(&values);
                    Ok(())
                }
                Err(e) => Err(crate::HostError::Failed(format!(
                    "entry point of `{callee}`: {e}"
                ))),
            }
        });
    }
    Ok(())
}

impl Task for ProcessTask {
    fn step(&mut self) -> Step {
        let Some(call) = self.call.as_mut() else {
            return Step::Finished;
        };
        // Compaction at parks is the relocation policy's, in the store.
        let progress = lock(&self.process)
            .resume(call)
            .unwrap_or_else(|e| CallProgress::Done(Err(ExecError::Host(e.to_string()))));
        match progress {
            CallProgress::Suspended => Step::Yielded,
            CallProgress::Sleeping(until) => Step::Sleeping(until),
            CallProgress::Done(result) => {
                self.call = None;
                self.ending = Some(match result {
                    Ok(_) => Ending::Exited(0),
                    Err(ExecError::Exit(code)) => Ending::Exited(code),
                    Err(ExecError::Trap(trap)) => Ending::Trapped(trap.to_string()),
                    Err(other) => Ending::Failed(other.to_string()),
                });
                Step::Finished
            }
        }
    }

    fn interrupt_handle(&self) -> InterruptHandle {
        self.interrupt.clone()
    }
}

/// The capability an import's module needs.
fn capability_for(module: &str) -> Option<&str> {
    match module {
        crate::WASI_MODULE => Some("wasi"),
        "carat" => Some("carat"),
        m if m.starts_with("process:") => Some(m),
        _ => None,
    }
}

fn check_capabilities(spec: &ProcessSpec, module: &Module) -> Result<(), String> {
    for import in &module.info().imports {
        let granted = capability_for(&import.module)
            .is_some_and(|needed| spec.capabilities.iter().any(|c| c == needed));
        if !granted {
            return Err(format!(
                "import `{}::{}` is not granted by its capabilities {:?}",
                import.module, import.name, spec.capabilities
            ));
        }
    }
    Ok(())
}

fn output(spec: &ProcessSpec, base: &Path, copy: Option<u32>) -> Output {
    match spec.stdout.as_str() {
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

/// How a process that failed to instantiate ended.
fn ending_of(e: VmError) -> Ending {
    match (e.trap(), &e) {
        (Some(trap), _) => Ending::Trapped(trap.to_string()),
        (None, VmError::Instantiate(crate::InstantiationError::Start(ExecError::Exit(c)))) => {
            Ending::Exited(*c)
        }
        _ => Ending::Failed(e.to_string()),
    }
}

/// The most processes one launch runs, counting those spawned by guests,
/// unless the manifest's `[vm] max_processes` says otherwise.
pub const DEFAULT_MAX_PROCESSES: u64 = 100_000;

/// What spawning needs, shared by the launch and by guests' `carat.spawn`.
struct Launcher {
    vm: Vm,
    base: PathBuf,
    specs: Vec<ProcessSpec>,
    /// Per spec: its module, whether its capabilities refuse it, its
    /// memory limit.
    modules: Vec<Module>,
    refused: Vec<Option<String>>,
    max_memory: Vec<Option<u64>>,
    providers: Mutex<HashMap<String, Provider>>,
    spawner: scheduler::Spawner<ProcessTask>,
    /// Per spec: the copy number the next spawned process gets.
    next_copy: Mutex<Vec<u32>>,
    spawned: std::sync::atomic::AtomicU64,
    max_processes: u64,
    spawn_times: Mutex<Vec<Duration>>,
    this: std::sync::Weak<Launcher>,
}

/// Why `carat.spawn` did not start a process, as a negative WASI errno.
mod spawn_errno {
    pub const ACCES: i32 = -2;
    pub const AGAIN: i32 = -6;
    pub const FAULT: i32 = -21;
    pub const NOENT: i32 = -44;
    pub const NOMEM: i32 = -48;
    pub const PERM: i32 = -63;
}

impl Launcher {
    /// Spawns copy `copy` of spec `index`: a task that runs its `_start`,
    /// or one already ended when its capabilities refuse it or its
    /// instantiation stops.
    fn spawn(&self, index: usize, copy: u32) -> Result<ProcessTask, LaunchError> {
        let spec = &self.specs[index];
        let module = &self.modules[index];
        let name = if spec.count != 1 || copy > 0 {
            format!("{}.{copy}", spec.name)
        } else {
            spec.name.clone()
        };
        let start = Instant::now();
        let fail = |source| LaunchError::Process {
            process: name.clone(),
            source,
        };
        let id = (name.clone(), (index, copy));
        let mut process = self
            .vm
            .new_process_with(self.max_memory[index], (spec.fuel > 0).then_some(spec.fuel))
            .map_err(fail)?;
        if let Some(message) = &self.refused[index] {
            let ending = Some(Ending::Failed(message.clone()));
            return Ok(ProcessTask::new(id, process, None, ending));
        }
        if spec.capabilities.iter().any(|c| c == "carat") {
            process.add_carat_abi();
            self.add_spawn(&mut process);
        }
        if spec.capabilities.iter().any(|c| c == "wasi") {
            let mut args = vec![name.clone()];
            args.extend(spec.args.iter().cloned());
            process
                .add_wasi(WasiConfig {
                    args,
                    env: spec
                        .env
                        .iter()
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect(),
                    preopens: Vec::new(),
                    stdout: output(spec, &self.base, (name != spec.name).then_some(copy)),
                })
                .map_err(fail)?;
        }
        let linked = link_entry_points(&mut process, module, &lock(&self.providers));
        if let Err(message) = linked {
            let ending = Some(Ending::Failed(message));
            return Ok(ProcessTask::new(id, process, None, ending));
        }
        let (instance, call, ending) = match process.instantiate(module) {
            Ok(instance) => match process.func(instance, "_start") {
                Ok(start_fn) => {
                    let call = process.start_call(start_fn, &[]).map_err(fail)?;
                    (Some(instance), Some(call), None)
                }
                Err(_) => (Some(instance), None, Some(Ending::Exited(0))),
            },
            Err(e) => (None, None, Some(ending_of(e))),
        };
        let task = ProcessTask::new(id, process, call, ending);
        if let Some(instance) = instance
            && !spec.entry_points.is_empty()
        {
            let provider = Provider::new(&task.process, instance, &spec.entry_points);
            lock(&self.providers).insert(spec.name.clone(), provider);
        }
        lock(&self.spawn_times).push(start.elapsed());
        Ok(task)
    }

    /// `carat.spawn(name_ptr, name_len) -> i32`: starts another copy of
    /// the manifest's process NAME, which runs beside its spawner with
    /// NAME's module, arguments, limits and capabilities. Returns the new
    /// process's id, or a negative WASI errno: NOENT (no such process),
    /// PERM (NAME declares entry points, so it is a singleton), FAULT (bad
    /// name range), AGAIN (the launch's process limit is reached), ACCES
    /// (NAME's capabilities refuse its imports; it is reported as
    /// failed), NOMEM (no room for it).
    fn add_spawn(&self, process: &mut Process) {
        use crate::ValType::I32;
        let launcher = self.this.clone();
        process.define_func(
            "carat",
            "spawn",
            crate::FuncType::new([I32, I32], [I32]),
            move |caller, args, results| {
                let (crate::Val::I32(ptr), crate::Val::I32(len)) = (args[0], args[1]) else {
                    unreachable!("typed")
                };
                let name = caller.memory().and_then(|m| {
                    m.slice(crate::GuestAddr(ptr as u32), u64::from(len as u32))
                        .ok()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                });
                let code = match (name, launcher.upgrade()) {
                    (None, _) => spawn_errno::FAULT,
                    (Some(_), None) => spawn_errno::AGAIN,
                    (Some(name), Some(launcher)) => launcher.spawn_by_name(&name),
                };
                results[0] = crate::Val::I32(code);
                Ok(())
            },
        );
    }

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
        match self.spawn(index, copy) {
            Ok(task) => {
                let code = if self.refused[index].is_some() {
                    spawn_errno::ACCES
                } else {
                    lock(&task.process).pid() as i32
                };
                self.spawner.spawn(task);
                code
            }
            Err(_) => spawn_errno::NOMEM,
        }
    }
}

/// What the command line adds to a manifest.
#[derive(Clone, Copy, Debug, Default)]
pub struct LaunchOptions {
    /// Overrides the manifest's mode.
    pub mode: Option<Mode>,
    /// Relocation stress: every region of a process moves at every Nth
    /// poll.
    pub relocate_every: Option<u64>,
}

/// Reads a manifest, spawns its processes and runs them all to the end,
/// with the processes they spawn.
pub fn launch(path: &Path, options: LaunchOptions) -> Result<LaunchReport, LaunchError> {
    let text = std::fs::read_to_string(path).map_err(|source| LaunchError::Read {
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
    let mut names = std::collections::HashSet::new();
    for spec in &manifest.process {
        if !names.insert(spec.name.as_str()) {
            return Err(bad(format!("process name `{}` is used twice", spec.name)));
        }
        if !spec.entry_points.is_empty() && spec.count != 1 {
            return Err(bad(format!(
                "process `{}` declares entry points, so its count must be 1",
                spec.name
            )));
        }
        for capability in &spec.capabilities {
            if !(capability == "wasi"
                || capability == "carat"
                || capability.starts_with("process:"))
            {
                return Err(bad(format!(
                    "process `{}`: unknown capability `{capability}`",
                    spec.name
                )));
            }
        }
    }
    let mut config = VmConfig {
        mode: options.mode.or(manifest.vm.mode).unwrap_or_default(),
        relocate_every: options.relocate_every,
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
    let workers = manifest
        .vm
        .workers
        .unwrap_or_else(|| SchedulerConfig::default().workers);
    let vm = Vm::new(config)?;

    let mut compiled: HashMap<PathBuf, Module> = HashMap::new();
    let mut modules = Vec::new();
    let mut refused = Vec::new();
    let mut max_memory = Vec::new();
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
        refused.push(check_capabilities(spec, &module).err());
        modules.push(module);
        max_memory.push(
            spec.max_memory
                .as_deref()
                .map(parse_size)
                .transpose()
                .map_err(bad)?,
        );
    }
    let launcher = Arc::new_cyclic(|this| Launcher {
        vm: vm.clone(),
        base: base.to_path_buf(),
        next_copy: Mutex::new(manifest.process.iter().map(|s| s.count).collect()),
        specs: manifest.process,
        modules,
        refused,
        max_memory,
        providers: Mutex::default(),
        spawner: scheduler::Spawner::default(),
        spawned: Default::default(),
        max_processes: manifest.vm.max_processes.unwrap_or(DEFAULT_MAX_PROCESSES),
        spawn_times: Mutex::default(),
        this: this.clone(),
    });
    let mut tasks = Vec::new();
    for (index, spec) in launcher.specs.iter().enumerate() {
        for copy in 0..spec.count {
            launcher
                .spawned
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tasks.push(launcher.spawn(index, copy)?);
        }
    }

    let (tasks, stats) = scheduler::run_with_spawner(
        tasks,
        SchedulerConfig {
            workers,
            time_slice: Duration::from_millis(10),
        },
        launcher.spawner.clone(),
    );
    let mut spawn_times = std::mem::take(&mut *lock(&launcher.spawn_times));
    spawn_times.sort();
    // Spawned copies are reported with the others of their spec.
    let mut tasks = tasks;
    tasks.sort_by_key(|t| t.order);
    Ok(LaunchReport {
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
    })
}
