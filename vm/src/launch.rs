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
    /// Each process's name and ending, in manifest order.
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
    /// Shared with the processes that call its entry points.
    process: Arc<Mutex<Process>>,
    interrupt: InterruptHandle,
    call: Option<GuestCall>,
    ending: Option<Ending>,
}

impl ProcessTask {
    fn new(
        name: String,
        process: Process,
        call: Option<GuestCall>,
        ending: Option<Ending>,
    ) -> Self {
        ProcessTask {
            name,
            interrupt: process.interrupt_handle(),
            process: Arc::new(Mutex::new(process)),
            call,
            ending,
        }
    }
}

fn lock(process: &Mutex<Process>) -> std::sync::MutexGuard<'_, Process> {
    process.lock().unwrap_or_else(|e| e.into_inner())
}

/// A process whose declared entry points others may import.
struct Provider {
    process: Arc<Mutex<Process>>,
    instance: crate::InstanceId,
    entry_points: Vec<String>,
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
        if !provider.entry_points.contains(&import.name) {
            return Err(format!(
                "import `{}::{}`: `{callee}` does not declare `{}` an entry point",
                import.module, import.name, import.name
            ));
        }
        let (func, ty) = {
            let process = lock(&provider.process);
            let func = process
                .func(provider.instance, &import.name)
                .map_err(|e| format!("entry point `{callee}::{}`: {e}", import.name))?;
            (func, process.func_type(func).clone())
        };
        let target = provider.process.clone();
        let callee_mailbox = lock(&provider.process).mailbox();
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
        let progress = lock(&self.process).resume(call);
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

/// Reads a manifest, spawns its processes and runs them all to the end.
pub fn launch(path: &Path, mode: Option<Mode>) -> Result<LaunchReport, LaunchError> {
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
        mode: mode.or(manifest.vm.mode).unwrap_or_default(),
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

    let mut modules: HashMap<PathBuf, Module> = HashMap::new();
    let mut providers: HashMap<String, Provider> = HashMap::new();
    let mut tasks = Vec::new();
    let mut spawn_times = Vec::new();
    for spec in &manifest.process {
        let module_path = base.join(&spec.module);
        let module = match modules.get(&module_path) {
            Some(m) => m.clone(),
            None => {
                let m = vm
                    .compile_file(&module_path)
                    .map_err(|source| LaunchError::Process {
                        process: spec.name.clone(),
                        source,
                    })?;
                modules.insert(module_path.clone(), m.clone());
                m
            }
        };
        // A spawn the capabilities refuse fails that process, not the launch.
        let refused = check_capabilities(spec, &module).err();
        let max_memory = spec
            .max_memory
            .as_deref()
            .map(parse_size)
            .transpose()
            .map_err(bad)?;
        for copy in 0..spec.count {
            let name = if spec.count > 1 {
                format!("{}.{copy}", spec.name)
            } else {
                spec.name.clone()
            };
            let start = Instant::now();
            let fail = |source| LaunchError::Process {
                process: name.clone(),
                source,
            };
            let mut process = vm
                .new_process_with(max_memory, (spec.fuel > 0).then_some(spec.fuel))
                .map_err(fail)?;
            if let Some(message) = &refused {
                let ending = Some(Ending::Failed(message.clone()));
                tasks.push(ProcessTask::new(name, process, None, ending));
                continue;
            }
            if spec.capabilities.iter().any(|c| c == "carat") {
                process.add_carat_abi();
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
                        stdout: output(spec, base, (spec.count > 1).then_some(copy)),
                    })
                    .map_err(fail)?;
            }
            if let Err(message) = link_entry_points(&mut process, &module, &providers) {
                tasks.push(ProcessTask::new(
                    name,
                    process,
                    None,
                    Some(Ending::Failed(message)),
                ));
                continue;
            }
            let (instance, call, ending) = match process.instantiate(&module) {
                Ok(instance) => match process.func(instance, "_start") {
                    Ok(start_fn) => {
                        let call = process.start_call(start_fn, &[]).map_err(fail)?;
                        (Some(instance), Some(call), None)
                    }
                    Err(_) => (Some(instance), None, Some(Ending::Exited(0))),
                },
                Err(e) => (None, None, Some(ending_of(e))),
            };
            let task = ProcessTask::new(name, process, call, ending);
            if let Some(instance) = instance
                && !spec.entry_points.is_empty()
            {
                providers.insert(
                    spec.name.clone(),
                    Provider {
                        process: task.process.clone(),
                        instance,
                        entry_points: spec.entry_points.clone(),
                    },
                );
            }
            spawn_times.push(start.elapsed());
            tasks.push(task);
        }
    }

    let (tasks, stats) = scheduler::run_to_completion(
        tasks,
        SchedulerConfig {
            workers,
            time_slice: Duration::from_millis(10),
        },
    );
    spawn_times.sort();
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
