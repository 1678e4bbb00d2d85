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

pub mod args;
pub mod spectest;
pub mod wast;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use carat_guest_runtime::regions::RegionProvider;
use carat_guest_runtime::{HostFnBox, LoadedModule, Store, StoreLimits};
use carat_host_os::{Arena, CaratBackend};
use carat_jit::{CompileConfig, CompileError, CompileStats, Compiler, SignatureRegistry};

pub use carat_guest_runtime::{
    Caller, Entity, ExecError, Extern, Func, GuestAddr, HostError, InstanceId, InstantiationError,
    MemoryView, Val,
};
pub use carat_jit::{FuncType, Trap, ValType};

/// How guest memory is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every guest lives in one arena; JIT code guards each access.
    #[default]
    Carat,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::Carat => "carat",
        })
    }
}

#[derive(Clone, Debug)]
pub struct VmConfig {
    pub mode: Mode,
    /// Size of the CARAT arena (virtual; untouched bytes cost nothing).
    pub arena_size: usize,
    /// Advise transparent huge pages for the arena. Off by default: a huge
    /// page per touched region would defeat density.
    pub huge_pages: bool,
    /// Largest size of one linear memory, in bytes.
    pub max_memory: Option<u64>,
    /// Stack bytes wasm frames may use per call into a process.
    pub max_wasm_stack: usize,
    /// Threads used to compile large modules.
    pub compile_threads: usize,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            mode: Mode::Carat,
            arena_size: 64 << 30,
            huge_pages: false,
            max_memory: None,
            max_wasm_stack: 1 << 20,
            compile_threads: CompileConfig::default().threads,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VmError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error("cannot parse text module: {0}")]
    Text(String),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot reserve the arena: {0}")]
    Arena(std::io::Error),
    #[error(transparent)]
    Code(#[from] carat_guest_runtime::code::CodeError),
    #[error(transparent)]
    Alloc(#[from] carat_guest_runtime::AllocError),
    #[error("unknown import `{module}::{name}`")]
    UnknownImport { module: String, name: String },
    #[error(transparent)]
    Instantiate(#[from] InstantiationError),
    #[error(transparent)]
    Exec(#[from] ExecError),
    #[error("unknown export `{0}`")]
    UnknownExport(String),
    #[error("export `{0}` is not a function")]
    NotAFunction(String),
}

impl VmError {
    /// The trap that stopped a guest, if this error is one.
    pub fn trap(&self) -> Option<Trap> {
        match self {
            VmError::Exec(ExecError::Trap(t))
            | VmError::Instantiate(InstantiationError::Start(ExecError::Trap(t))) => Some(*t),
            _ => None,
        }
    }
}

struct VmInner {
    config: VmConfig,
    compiler: Compiler,
    signatures: SignatureRegistry,
    provider: Arc<dyn RegionProvider>,
    arena: Arena,
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
    pub fn stats(&self) -> &CompileStats {
        &self.loaded.compiled.stats
    }

    pub fn info(&self) -> &carat_jit::ModuleInfo {
        &self.loaded.compiled.info
    }
}

impl Vm {
    pub fn new(config: VmConfig) -> Result<Vm, VmError> {
        let arena = Arena::new(config.arena_size, config.huge_pages).map_err(VmError::Arena)?;
        let provider: Arc<dyn RegionProvider> = Arc::new(CaratBackend::new(arena.clone()));
        let compiler = Compiler::new(CompileConfig {
            strategy: provider.strategy(),
            threads: config.compile_threads,
            ..CompileConfig::default()
        })?;
        Ok(Vm {
            inner: Arc::new(VmInner {
                config,
                compiler,
                signatures: SignatureRegistry::default(),
                provider,
                arena,
            }),
        })
    }

    pub fn config(&self) -> &VmConfig {
        &self.inner.config
    }

    pub fn arena(&self) -> &Arena {
        &self.inner.arena
    }

    /// Compiles a binary module.
    pub fn compile(&self, wasm: &[u8]) -> Result<Module, VmError> {
        let compiled = self.inner.compiler.compile(wasm, &self.inner.signatures)?;
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

    pub fn compile_file(&self, path: &Path) -> Result<Module, VmError> {
        let bytes = std::fs::read(path).map_err(|source| VmError::Read {
            path: path.display().to_string(),
            source,
        })?;
        if !looks_like_text(&bytes) {
            return self.compile(&bytes);
        }
        let wat = wat::Parser::new();
        let wasm = wat
            .parse_bytes(Some(path), &bytes)
            .map_err(|e| VmError::Text(e.to_string()))?;
        self.compile(&wasm)
    }

    pub fn new_process(&self) -> Result<Process, VmError> {
        let config = &self.inner.config;
        let defaults = StoreLimits::default();
        let limits = StoreLimits {
            max_memory_bytes: config
                .max_memory
                .unwrap_or(defaults.max_memory_bytes)
                .min(defaults.max_memory_bytes),
            max_wasm_stack: config.max_wasm_stack,
            ..defaults
        };
        Ok(Process {
            vm: self.clone(),
            store: Store::new(self.inner.provider.clone(), limits)?,
            names: HashMap::new(),
        })
    }

    /// The engine-wide id of a signature.
    pub fn signature_id(&self, ty: &FuncType) -> u32 {
        self.inner.signatures.intern(ty)
    }
}

fn looks_like_text(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    text.starts_with('(') || text.starts_with(";;") || text.starts_with("(;")
}

/// A guest process: linked instances and the names they import by.
pub struct Process {
    vm: Vm,
    store: Store,
    names: HashMap<(String, String), Extern>,
}

impl Process {
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Makes `func` importable as `module::name`.
    pub fn define_func(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(&mut Caller<'_>, &[Val], &mut [Val]) -> Result<(), HostError>
        + Send
        + Sync
        + 'static,
    ) {
        let type_id = self.vm.signature_id(&ty);
        let boxed: HostFnBox = Box::new(func);
        let func = self.store.host_func(ty, type_id, boxed);
        self.define(module, name, Extern::Func(func));
    }

    pub fn define(&mut self, module: &str, name: &str, item: Extern) {
        self.names
            .insert((module.to_string(), name.to_string()), item);
    }

    /// Makes every export of `instance` importable from module `name`.
    pub fn register(&mut self, name: &str, instance: InstanceId) {
        let exports: Vec<String> = self
            .store
            .instance(instance)
            .module_info()
            .exports
            .iter()
            .map(|e| e.name.clone())
            .collect();
        for export in exports {
            if let Some(item) = self.store.export(instance, &export) {
                self.define(name, &export, item);
            }
        }
    }

    /// Instantiates `module`, resolving its imports by name.
    pub fn instantiate(&mut self, module: &Module) -> Result<InstanceId, VmError> {
        let mut imports = Vec::new();
        for import in &module.info().imports {
            let key = (import.module.clone(), import.name.clone());
            let item = self.names.get(&key).ok_or_else(|| VmError::UnknownImport {
                module: import.module.clone(),
                name: import.name.clone(),
            })?;
            imports.push(*item);
        }
        Ok(self.store.instantiate(&module.loaded, &imports)?)
    }

    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        self.store.export(instance, name)
    }

    pub fn func(&self, instance: InstanceId, name: &str) -> Result<Func, VmError> {
        match self.store.export(instance, name) {
            Some(Extern::Func(f)) => Ok(f),
            Some(_) => Err(VmError::NotAFunction(name.to_string())),
            None => Err(VmError::UnknownExport(name.to_string())),
        }
    }

    pub fn func_type(&self, func: Func) -> &FuncType {
        self.store.func_type(func)
    }

    pub fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, VmError> {
        Ok(self.store.call(func, args)?)
    }

    /// Calls the exported function `name`.
    pub fn invoke(
        &mut self,
        instance: InstanceId,
        name: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, VmError> {
        let func = self.func(instance, name)?;
        self.call(func, args)
    }
}
