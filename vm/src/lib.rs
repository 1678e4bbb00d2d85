//! carat-vm's public embedding API.
//!
//! A [`Vm`] owns the memory backend (in CARAT mode, the one arena every
//! guest lives in) and the compiler. It compiles [`Module`]s, whose code
//! is shared by every process that instantiates them, and creates
//! [`Process`]es: sets of linked instances with their own name space of
//! imports. A process that traps stays usable, and so does the VM.
//!
//! ```no_run
//! use carat_vm::{Vm, VmConfig, Val};
//! let vm = Vm::new(VmConfig::default())?;
//! let module = vm.compile_file("examples/fib.wat".as_ref())?;
//! let mut process = vm.new_process()?;
//! let instance = process.instantiate(&module)?;
//! let results = process.invoke(instance, "fib", &[Val::I64(30)])?;
//! # Ok::<(), carat_vm::VmError>(())
//! ```

#![warn(missing_docs)]

pub mod args;
mod cache;
mod caller;
mod footprint;
pub mod launch;
mod launch_map;
pub mod lifecycle;
mod linker;
mod process;
mod shared_host;
pub mod spectest;
mod typed;
pub mod wast;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::sync::atomic::{AtomicU64, Ordering};

use carat_guest_runtime::regions::RegionProvider;
use carat_guest_runtime::{LoadedModule, SharedBudget, StoreLimits};
use carat_host_os::policy::CaratPolicy;
use carat_host_os::{ArenaOptions, CaratBackend, PagingBackend};
use carat_jit::{CompileConfig, Compiler, SignatureRegistry};

// Every type the public API names, from this crate or below it.
pub use caller::Caller;
pub use carat_guest_runtime::Caller as RuntimeCaller;
pub use carat_guest_runtime::code::CodeError;
pub use carat_guest_runtime::{
    AllocError, CallProgress, Entity, ExecError, Extern, Frame, Func, GuestAddr, GuestCall,
    HostError, HostFnBox, InstanceId, InstantiationError, InterruptHandle, MemoryView, RegionKind,
    RegionRef, RelocationStats, Store, Val, WasmBacktrace,
};
pub use carat_host_os::wasi::{Input, Output, Preopen, WasiConfig};
pub use carat_host_os::{Arena, ArenaStats, RegionRecord};
pub use carat_jit::{
    CodeStats, CompileError, CompileStats, FuncType, FunctionListing, ModuleInfo, Trap, ValType,
};
pub use footprint::Footprint;
pub use linker::Linker;
pub use process::Process;
pub use typed::{HostResults, IntoHostFunc, TypedFunc, WasmTy, WasmTypes};

/// How guest memory is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Every guest lives in one arena; JIT code guards each access.
    #[default]
    Carat,
    /// Each memory has its own guarded reservation; the MMU faults on a
    /// stray access.
    Paging,
}

impl Mode {
    /// Both modes, CARAT first.
    pub const ALL: [Mode; 2] = [Mode::Carat, Mode::Paging];
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Carat => "carat",
            Mode::Paging => "paging",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "carat" => Ok(Mode::Carat),
            "paging" => Ok(Mode::Paging),
            other => Err(format!("unknown mode `{other}` (expected carat or paging)")),
        }
    }
}

/// How a [`Vm`] is set up. `VmConfig::default()` is CARAT mode with a 64 GiB arena.
#[derive(Clone, Debug)]
pub struct VmConfig {
    /// How guest memory is protected.
    pub mode: Mode,
    /// Size of the CARAT arena (virtual; untouched bytes cost nothing).
    pub arena_size: usize,
    /// Advise transparent huge pages for the arena. Off by default: a huge
    /// page per touched region would defeat density.
    pub huge_pages: bool,
    /// Largest size of one linear memory, in bytes.
    pub max_memory: Option<u64>,
    /// Largest number of elements of one table.
    pub max_table_elements: u32,
    /// Stack bytes wasm frames may use per call into a process.
    pub max_wasm_stack: usize,
    /// Threads used to compile large modules.
    pub compile_threads: usize,
    /// Instructions each process may execute; `None` compiles no fuel
    /// counting at all.
    pub fuel: Option<u64>,
    /// Relocation stress: move every region of a process at every Nth
    /// poll (CARAT mode only; see `Vm::new`).
    pub relocate_every: Option<u64>,
    /// Fill every range a move leaves with poison at once, so a pointer
    /// relocation failed to patch shows (CARAT mode; for tests).
    pub poison_moves: bool,
    /// Run the arena's janitor thread (CARAT mode; on by default): exits
    /// leave their page-map reads and trims to it, and it keeps warm
    /// places for new memories (see `carat_host_os::janitor`). Off, the
    /// VM makes no thread and does that housekeeping inline.
    pub arena_janitor: bool,
    /// Every byte of guest state one process may hold (memories, tables,
    /// control blocks); by default its largest memory plus
    /// `carat_guest_runtime::handles::DEFAULT_STATE_ALLOWANCE`.
    pub max_process_memory: Option<u64>,
    /// Every byte of guest state all the VM's processes hold at once
    /// (memories, tables, control blocks), or no limit. A spawn or growth
    /// past it fails that one process or `memory.grow`.
    pub memory_budget: Option<u64>,
    /// Keep compiled modules in this directory, by content, and load them
    /// from it instead of compiling again (see `cache`); `None` compiles
    /// every time. The CLI uses [`default_cache_dir`] unless told not to.
    pub cache_dir: Option<PathBuf>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            mode: Mode::Carat,
            arena_size: 64 << 30,
            huge_pages: false,
            max_memory: None,
            max_table_elements: StoreLimits::default().max_table_elements,
            max_wasm_stack: 1 << 20,
            compile_threads: CompileConfig::default().threads,
            fuel: None,
            relocate_every: None,
            poison_moves: false,
            arena_janitor: true,
            max_process_memory: None,
            memory_budget: None,
            cache_dir: None,
        }
    }
}

/// Why the VM, a process or a call could not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum VmError {
    /// The module is not valid wasm, or uses what carat-vm does not
    /// support.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// The text module does not parse.
    #[error("cannot parse text module: {0}")]
    Text(String),
    /// A file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The arena's address space could not be reserved.
    #[error("cannot reserve the arena: {0}")]
    Arena(std::io::Error),
    /// Compiled code could not be made executable.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// Guest memory ran out: the arena, the process's limit or the VM's
    /// budget.
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// Nothing defines an import.
    #[error("unknown import `{module}::{name}`")]
    UnknownImport {
        /// Its module name.
        module: String,
        /// Its field name.
        name: String,
    },
    /// Instantiation failed: a mismatched import, a segment out of
    /// bounds, a trapping start function.
    #[error(transparent)]
    Instantiate(#[from] InstantiationError),
    /// A call trapped, exited or failed.
    #[error(transparent)]
    Exec(#[from] ExecError),
    /// The instance exports nothing by that name.
    #[error("unknown export `{0}`")]
    UnknownExport(String),
    /// The export by that name is not a function.
    #[error("export `{0}` is not a function")]
    NotAFunction(String),
    /// The export by that name is not a memory.
    #[error("export `{0}` is not a memory")]
    NotAMemory(String),
    /// A function is not of the type a [`TypedFunc`] asked for.
    #[error("the function's type is {found}, not {expected}")]
    FuncTypeMismatch {
        /// The type asked for.
        expected: String,
        /// The function's type.
        found: String,
    },
    /// WASI could not be set up (a preopened directory, say).
    #[error("cannot set up WASI: {0}")]
    Wasi(std::io::Error),
    /// A compiled module file (`.cwasm`) is corrupt or from another
    /// version or configuration.
    #[error(transparent)]
    Artifact(#[from] carat_jit::artifact::ArtifactError),
    /// Relocation was asked of a paging-mode VM.
    #[error("relocation needs --mode carat: paging-mode memories never move")]
    RelocationNeedsCarat,
    /// A [`Linker`] already defines that name.
    #[error("`{module}::{name}` is defined already")]
    DuplicateDefinition {
        /// Its module name.
        module: String,
        /// Its field name.
        name: String,
    },
    /// A [`Linker`] was used with a process of another VM.
    #[error("the linker and the process belong to different VMs")]
    ForeignLinker,
}

pub use cache::default_dir as default_cache_dir;
pub use carat_guest_runtime::code::enable_perf_map;
pub use carat_host_os::process::WASI_MODULE;
pub use carat_jit::artifact;

impl VmError {
    /// The trap that stopped a guest, if this error is one.
    pub fn trap(&self) -> Option<Trap> {
        self.exec().and_then(ExecError::as_trap)
    }

    /// The wasm frames a trap happened in, if this error is a trap.
    pub fn backtrace(&self) -> Option<&WasmBacktrace> {
        self.exec().and_then(ExecError::backtrace)
    }

    /// The guest's failure, if this error is one (a call's, or its start
    /// function's at instantiation).
    fn exec(&self) -> Option<&ExecError> {
        match self {
            VmError::Exec(e) | VmError::Instantiate(InstantiationError::Start(e)) => Some(e),
            _ => None,
        }
    }
}

enum Backend {
    Carat(Arena),
    Paging(PagingBackend),
}

struct VmInner {
    config: VmConfig,
    compiler: Compiler,
    signatures: SignatureRegistry,
    provider: Arc<dyn RegionProvider>,
    backend: Backend,
    counters: Counters,
    /// WASI and the carat ABI, defined once for every process.
    shared_host: shared_host::SharedHostFuncs,
    /// `config.memory_budget`, shared by every process's store.
    memory_budget: Option<Arc<SharedBudget>>,
    /// `config.cache_dir`'s cache.
    cache: Option<cache::CompileCache>,
}

impl Drop for VmInner {
    fn drop(&mut self) {
        // The arena's janitor ends with the VM: it must not be the one to
        // unmap the arena, later, at the end of a round.
        if let Backend::Carat(arena) = &self.backend {
            arena.stop_janitor();
        }
    }
}

/// Counters behind [`VmStats`].
#[derive(Default)]
struct Counters {
    functions_compiled: AtomicU64,
    code: std::sync::Mutex<CodeStats>,
    processes_spawned: AtomicU64,
    /// The next process id: taken before its store is made (the store's
    /// regions are allocated for it), so a failed spawn skips one.
    next_pid: std::sync::atomic::AtomicU32,
    /// Processes made and not yet dropped.
    processes_live: AtomicU64,
    /// The footprint sampled with the most processes alive.
    peak_footprint: std::sync::Mutex<Option<Footprint>>,
    traps: AtomicU64,
    modules_from_cache: AtomicU64,
}

/// What a VM has done, as `--stats` reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VmStats {
    /// The VM's mode.
    pub mode: Mode,
    /// Functions compiled (or loaded from the cache).
    pub functions_compiled: u64,
    /// Guards emitted and removed, by reason, and polls.
    #[serde(flatten)]
    pub code: CodeStats,
    /// Processes made.
    pub processes_spawned: u64,
    /// Regions moved.
    pub relocations: u64,
    /// Bytes copied by those moves.
    pub bytes_moved: u64,
    /// Pointers into moved regions patched in guest state (tables, globals, exit records).
    pub escapes_patched: u64,
    /// Frames of parked calls whose vmctx slots were patched.
    pub frames_patched: u64,
    /// Stacks grown by moving at a function entry that found them short.
    pub stacks_grown: u64,
    /// Peak bytes of guest state: arena bytes in use in CARAT mode,
    /// accessible linear-memory bytes in paging mode.
    pub arena_peak_bytes: u64,
    /// CPU time the arena's janitor thread has spent, in nanoseconds:
    /// the page-map reads, trims and page faults it takes off spawns and
    /// exits (CARAT mode; see `carat_host_os::janitor`).
    pub janitor_cpu_nanos: u64,
    /// Calls that trapped.
    pub traps: u64,
    /// Modules loaded from the compile cache instead of compiled. Their
    /// functions and guards still count above: those say what the code
    /// that runs holds.
    pub modules_from_cache: u64,
    /// What each process cost, at the sample with the most processes
    /// alive (see `footprint`).
    #[serde(flatten)]
    pub footprint: Footprint,
}

/// A virtual machine: one memory backend, one compiler, many processes.
#[derive(Clone)]
pub struct Vm {
    inner: Arc<VmInner>,
}

/// A compiled module, shareable by every process of its VM.
#[derive(Clone)]
pub struct Module {
    loaded: Arc<LoadedModule>,
}

impl Module {
    /// What compiling it found and did: functions, guards, time.
    pub fn stats(&self) -> &CompileStats {
        &self.loaded.compiled.stats
    }

    /// Its imports, exports, types and names.
    pub fn info(&self) -> &ModuleInfo {
        &self.loaded.compiled.info
    }

    /// Bytes of machine code, trampolines included.
    pub fn code_size(&self) -> usize {
        self.loaded.compiled.image.bytes.len()
    }
}

impl Vm {
    /// A VM as `config` says: its arena (CARAT mode) and compiler.
    pub fn new(config: VmConfig) -> Result<Vm, VmError> {
        let memory_budget = config.memory_budget.map(SharedBudget::new);
        let config_cache = config.cache_dir.clone().map(cache::CompileCache::new);
        if config.relocate_every.is_some() && config.mode != Mode::Carat {
            return Err(VmError::RelocationNeedsCarat);
        }
        let (backend, provider): (Backend, Arc<dyn RegionProvider>) = match config.mode {
            Mode::Carat => {
                let options = ArenaOptions {
                    huge_pages: config.huge_pages,
                    poison_moves: config.poison_moves,
                    janitor: config.arena_janitor,
                    ..ArenaOptions::default()
                };
                let arena =
                    Arena::with_options(config.arena_size, options).map_err(VmError::Arena)?;
                let policy = CaratPolicy::new(arena.clone(), config.relocate_every.unwrap_or(0));
                (
                    Backend::Carat(arena.clone()),
                    Arc::new(CaratBackend::new(arena, policy)),
                )
            }
            Mode::Paging => {
                let paging = PagingBackend::new();
                (Backend::Paging(paging.clone()), Arc::new(paging))
            }
        };
        let compiler = Compiler::new(CompileConfig {
            strategy: provider.strategy(),
            threads: config.compile_threads,
            fuel: config.fuel.is_some(),
            ..CompileConfig::default()
        })?;
        Ok(Vm {
            inner: Arc::new(VmInner {
                config,
                compiler,
                signatures: SignatureRegistry::default(),
                provider,
                backend,
                counters: Counters::default(),
                shared_host: Default::default(),
                memory_budget,
                cache: config_cache,
            }),
        })
    }

    /// How it was set up.
    pub fn config(&self) -> &VmConfig {
        &self.inner.config
    }

    /// Its mode.
    pub fn mode(&self) -> Mode {
        self.inner.config.mode
    }

    /// How fragmented the arena's free space is (see
    /// `Arena::fragmentation`); 0 in paging mode.
    pub fn fragmentation(&self) -> f64 {
        self.arena().map_or(0.0, Arena::fragmentation)
    }

    /// A picture of the arena as one SVG document (see
    /// `carat_host_os::arena_map`); `None` in paging mode, which has none.
    pub fn arena_map_svg(&self) -> Option<String> {
        self.arena_map_svg_named(&|_| None)
    }

    /// [`Vm::arena_map_svg`], the processes `name_of` names (by pid)
    /// shown by their names.
    pub fn arena_map_svg_named(&self, name_of: &dyn Fn(u32) -> Option<String>) -> Option<String> {
        let picture = self.arena()?.picture();
        Some(carat_host_os::arena_map::render_svg_named(
            &picture, name_of,
        ))
    }

    /// Writes [`Vm::arena_map_svg`] to `path`, through a temporary file
    /// renamed over it, so a reader never sees half a picture.
    pub fn write_arena_map(&self, path: &Path) -> std::io::Result<()> {
        self.write_arena_map_named(path, &|_| None)
    }

    /// [`Vm::write_arena_map`] with processes named (see
    /// [`Vm::arena_map_svg_named`]).
    pub fn write_arena_map_named(
        &self,
        path: &Path,
        name_of: &dyn Fn(u32) -> Option<String>,
    ) -> std::io::Result<()> {
        let svg = self.arena_map_svg_named(name_of).ok_or_else(|| {
            std::io::Error::other("paging mode has no arena to draw (use --mode carat)")
        })?;
        let mut partial = path.as_os_str().to_owned();
        partial.push(".partial");
        std::fs::write(&partial, svg)?;
        std::fs::rename(&partial, path)
    }

    /// The arena, in CARAT mode.
    pub fn arena(&self) -> Option<&Arena> {
        match &self.inner.backend {
            Backend::Carat(arena) => Some(arena),
            Backend::Paging(_) => None,
        }
    }

    /// VM counter `which`, as the carat ABI's `stats` reads it: 0
    /// processes spawned, 1 relocations, 2 arena peak bytes, 3 traps; -1
    /// for any other.
    pub fn stat(&self, which: i32) -> i64 {
        let stats = self.stats();
        match which {
            0 => stats.processes_spawned as i64,
            1 => stats.relocations as i64,
            2 => stats.arena_peak_bytes as i64,
            3 => stats.traps as i64,
            _ => -1,
        }
    }

    /// Its figures now.
    pub fn stats(&self) -> VmStats {
        let c = &self.inner.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        let relocations = self
            .inner
            .provider
            .relocation()
            .map(|r| r.counters.snapshot())
            .unwrap_or_default();
        let (arena_peak_bytes, janitor_cpu_nanos) = match &self.inner.backend {
            Backend::Carat(arena) => {
                let arena = arena.stats();
                (arena.peak_bytes as u64, arena.janitor_cpu_nanos)
            }
            Backend::Paging(paging) => (paging.peak_bytes(), 0),
        };
        VmStats {
            mode: self.mode(),
            functions_compiled: load(&c.functions_compiled),
            code: *c.code.lock().unwrap_or_else(|e| e.into_inner()),
            processes_spawned: load(&c.processes_spawned),
            traps: load(&c.traps),
            modules_from_cache: load(&c.modules_from_cache),
            arena_peak_bytes,
            janitor_cpu_nanos,
            relocations: relocations.relocations,
            bytes_moved: relocations.bytes_moved,
            escapes_patched: relocations.escapes_patched,
            frames_patched: relocations.frames_patched,
            stacks_grown: relocations.stacks_grown,
            footprint: c
                .peak_footprint
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .unwrap_or_default(),
        }
    }

    /// Processes made by this VM and not yet dropped.
    pub fn processes_live(&self) -> u64 {
        self.inner.counters.processes_live.load(Ordering::Relaxed)
    }

    /// Measures what the live processes cost now, and keeps the figure
    /// for [`VmStats`] if no earlier one had more processes alive.
    /// Reads `/proc` and the allocator's statistics: not for a hot path.
    pub fn sample_footprint(&self) -> Footprint {
        let arena = match &self.inner.backend {
            Backend::Carat(arena) => Some(arena.stats()),
            Backend::Paging(_) => None,
        };
        let now = Footprint::measure(self.processes_live(), arena);
        let mut peak = self
            .inner
            .counters
            .peak_footprint
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if peak.is_none_or(|p| p.processes_live <= now.processes_live) {
            *peak = Some(now);
        }
        now
    }

    /// Samples the footprint when `live` processes are a new high worth
    /// a sample (see `footprint`).
    pub(crate) fn sample_footprint_at(&self, live: u64) {
        if footprint::worth_sampling(live) && live > self.peak_sampled_live() {
            self.sample_footprint();
        }
    }

    /// Samples the footprint if as many processes are alive as at the
    /// highest sample so far (see `footprint`).
    pub(crate) fn sample_footprint_at_peak(&self) {
        if self.processes_live() >= self.peak_sampled_live() {
            self.sample_footprint();
        }
    }

    /// The processes alive at the highest footprint sample so far.
    fn peak_sampled_live(&self) -> u64 {
        self.inner
            .counters
            .peak_footprint
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map_or(0, |p| p.processes_live)
    }

    /// Compiles a binary module.
    /// Compiles a binary module, or loads a saved one (`.cwasm`, see
    /// [`Vm::save`]); with a cache, loads it from there when it can and
    /// keeps what it compiles.
    pub fn compile(&self, wasm: &[u8]) -> Result<Module, VmError> {
        let inner = &*self.inner;
        if artifact::is_artifact(wasm) {
            let compiled = artifact::deserialize(&inner.compiler, wasm, &inner.signatures)?;
            return self.load(compiled);
        }
        let key = inner
            .cache
            .as_ref()
            .map(|_| cache::CompileCache::key(artifact::fingerprint(&inner.compiler), wasm));
        if let (Some(cache), Some(key)) = (&inner.cache, &key)
            && let Some(saved) = cache.load(key)
        {
            match artifact::deserialize(&inner.compiler, &saved, &inner.signatures) {
                Ok(compiled) => {
                    inner
                        .counters
                        .modules_from_cache
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(key = %key, "loaded from the compile cache");
                    return self.load(compiled);
                }
                // Compiled again below, and replaced.
                Err(e) => tracing::warn!(key = %key, "compile cache entry refused: {e}"),
            }
        }
        let compiled = inner.compiler.compile(wasm, &inner.signatures)?;
        if let (Some(cache), Some(key)) = (&inner.cache, &key)
            && let Err(e) = cache.store(key, &artifact::serialize(&inner.compiler, &compiled))
        {
            tracing::warn!(key = %key, "cannot write to the compile cache: {e}");
        }
        self.load(compiled)
    }

    /// A module saved as a `.cwasm` file's bytes, which [`Vm::compile`]
    /// of a VM with the same configuration (and build) loads again
    /// without compiling.
    pub fn save(&self, module: &Module) -> Vec<u8> {
        artifact::serialize(&self.inner.compiler, &module.loaded.compiled)
    }

    /// Places compiled code and counts what it holds.
    fn load(&self, compiled: carat_jit::CompiledModule) -> Result<Module, VmError> {
        let c = &self.inner.counters;
        let stats = &compiled.stats;
        c.functions_compiled
            .fetch_add(stats.functions_compiled, Ordering::Relaxed);
        *c.code.lock().unwrap_or_else(|e| e.into_inner()) += stats.code;
        Ok(Module {
            loaded: LoadedModule::new(compiled)?,
        })
    }

    /// Compiles a module in either format. Bytes are text when they are
    /// UTF-8 and start (after blanks) like a text module does; anything
    /// else is treated as binary, so garbage is reported as an invalid
    /// module rather than as bad text.
    pub fn compile_any(&self, bytes: &[u8]) -> Result<Module, VmError> {
        if !looks_like_text(bytes) {
            return self.compile(bytes);
        }
        let wasm = wat::parse_bytes(bytes).map_err(|e| VmError::Text(e.to_string()))?;
        self.compile(&wasm)
    }

    /// Compiles a `.wat`, `.wasm` or `.cwasm` file.
    pub fn compile_file(&self, path: &Path) -> Result<Module, VmError> {
        self.compile(&read_module(path)?)
    }

    /// Each defined function of a binary module at every stage of
    /// compilation: its CLIF before and after optimisation and its
    /// machine code (what `carat-vm compile --emit-clif/--emit-asm`
    /// writes).
    pub fn listing(&self, wasm: &[u8]) -> Result<Vec<FunctionListing>, VmError> {
        Ok(self.inner.compiler.listing(wasm, &self.inner.signatures)?)
    }

    /// A new process with no data (see [`Process::new`]).
    pub fn new_process(&self) -> Result<Process, VmError> {
        Process::new(self, ())
    }

    /// A process with no data and its own memory limit and fuel (see
    /// [`Process::with_limits`]).
    pub fn new_process_with(
        &self,
        max_memory: Option<u64>,
        fuel: Option<u64>,
    ) -> Result<Process, VmError> {
        Process::with_limits(self, (), max_memory, fuel)
    }

    /// A store for a new process, and the process's id.
    fn new_store(
        &self,
        max_memory: Option<u64>,
        fuel: Option<u64>,
    ) -> Result<(Store, u32), VmError> {
        let config = &self.inner.config;
        let defaults = StoreLimits::default();
        let max_memory = max_memory
            .unwrap_or(defaults.max_memory_bytes)
            .min(defaults.max_memory_bytes);
        let limits = StoreLimits {
            max_wasm_stack: config.max_wasm_stack,
            max_table_elements: config.max_table_elements,
            ..StoreLimits::with_max_memory(max_memory)
        };
        let limits = StoreLimits {
            max_store_bytes: config.max_process_memory.unwrap_or(limits.max_store_bytes),
            ..limits
        };
        let counters = &self.inner.counters;
        let pid = counters.next_pid.fetch_add(1, Ordering::Relaxed);
        let mut store = Store::new_sharing(
            self.inner.provider.clone(),
            limits,
            self.inner.memory_budget.clone(),
            pid,
        )?;
        if config.fuel.is_some() {
            let fuel = fuel.unwrap_or(u64::MAX);
            store.set_fuel(i64::try_from(fuel).unwrap_or(i64::MAX));
        }
        counters.processes_spawned.fetch_add(1, Ordering::Relaxed);
        self.inner
            .counters
            .processes_live
            .fetch_add(1, Ordering::Relaxed);
        tracing::debug!(pid, "spawn");
        Ok((store, pid))
    }

    /// The engine-wide id of a signature.
    pub fn signature_id(&self, ty: &FuncType) -> u32 {
        self.inner.signatures.intern(ty)
    }
}

/// The largest module file `compile_file` reads.
pub const MAX_MODULE_BYTES: u64 = 512 << 20;

/// Reads a file of at most `limit` bytes; a longer one (or an endless
/// one, such as `/dev/zero`) is an error once `limit` bytes are read,
/// never a host that fills its memory.
pub fn read_file(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than the limit of {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// Reads a text file of at most `limit` bytes (see [`read_file`]).
pub fn read_text_file(path: &Path, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read_file(path, limit)?)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// A module file's bytes as a binary module: `.wasm` as it is, text
/// parsed (with the file's name in its errors).
pub fn read_module(path: &Path) -> Result<Vec<u8>, VmError> {
    let bytes = read_file(path, MAX_MODULE_BYTES).map_err(|source| VmError::Read {
        path: path.display().to_string(),
        source,
    })?;
    if !looks_like_text(&bytes) {
        return Ok(bytes);
    }
    wat::Parser::new()
        .parse_bytes(Some(path), &bytes)
        .map(|wasm| wasm.into_owned())
        .map_err(|e| VmError::Text(e.to_string()))
}

fn looks_like_text(bytes: &[u8]) -> bool {
    // By its first bytes only: a text module with a stray non-UTF-8 byte
    // further on is still text, and its error says so (not "bad magic").
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let start = bytes.trim_ascii_start();
    start.starts_with(b"(") || start.starts_with(b";;")
}

pub use carat_host_os::carat_abi::{MAX_MESSAGE, Mailbox, Supervisor};
