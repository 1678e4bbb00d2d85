//! The handles the host names a store's entities by, its limits, and the
//! errors its operations return.
//!
//! Handles are indices, never addresses: everything a guest can reach
//! lives in regions that relocation moves, so a host that kept a pointer
//! would keep a dangling one. A handle is looked up in its store each time
//! it is used, and a handle of another store is an error there, not a
//! wild index.

use carat_jit::abi::{WASM_PAGE_SIZE, WASM32_MAX_PAGES};
use carat_jit::{EntityKind, Trap};

use crate::host::HostError;
use crate::regions::AllocError;

/// An instance of a store, by its index among the store's instances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u32);

/// A function of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A function defined (not imported) by an instance.
    Wasm { instance: InstanceId, index: u32 },
    /// A host function registered with `Store::host_func`.
    Host(u32),
}

/// A linear memory, table or global defined by an instance (the index
/// counts that instance's defined entities of the kind).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entity {
    pub instance: InstanceId,
    pub defined: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extern {
    Func(Func),
    Table(Entity),
    Memory(Entity),
    Global(Entity),
}

impl Extern {
    pub fn kind(&self) -> EntityKind {
        match self {
            Extern::Func(_) => EntityKind::Func,
            Extern::Table(_) => EntityKind::Table,
            Extern::Memory(_) => EntityKind::Memory,
            Extern::Global(_) => EntityKind::Global,
        }
    }
}

/// Bytes of tables and control blocks a store may hold beyond its largest
/// linear memory, when its budget is not set otherwise: two million table
/// elements, or a few thousand instances' vmctxs.
pub const DEFAULT_STATE_ALLOWANCE: u64 = 16 << 20;

/// Limits a store enforces on its guests. Each fails the one allocation,
/// growth or instantiation that would pass it, never the VM.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Largest size of one linear memory, in bytes.
    pub max_memory_bytes: u64,
    /// Largest number of elements of one table.
    pub max_table_elements: u32,
    /// Every byte of guest state the store holds at once: its linear
    /// memories, tables and control blocks (vmctxs, store context)
    /// together. Counted at allocation and growth, so a module that
    /// declares many large tables is refused at instantiation.
    pub max_store_bytes: u64,
    /// Stack bytes wasm frames may use.
    pub max_wasm_stack: usize,
}

impl StoreLimits {
    /// Limits whose budget is one largest memory plus
    /// [`DEFAULT_STATE_ALLOWANCE`].
    pub fn with_max_memory(max_memory_bytes: u64) -> Self {
        StoreLimits {
            max_memory_bytes,
            max_store_bytes: max_memory_bytes.saturating_add(DEFAULT_STATE_ALLOWANCE),
            ..StoreLimits::default()
        }
    }
}

impl Default for StoreLimits {
    fn default() -> Self {
        let max_memory_bytes = WASM32_MAX_PAGES * WASM_PAGE_SIZE;
        StoreLimits {
            max_memory_bytes,
            max_table_elements: 10_000_000,
            max_store_bytes: max_memory_bytes + DEFAULT_STATE_ALLOWANCE,
            max_wasm_stack: 1024 * 1024,
        }
    }
}

/// Why a call into a store did not return normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// A trap, with the wasm frames it happened in (empty when it came
    /// from the host: an instantiation's segment, a kill).
    #[error("trap: {0}")]
    Trap(Trap, crate::code::WasmBacktrace),
    #[error("exit with status {0}")]
    Exit(i32),
    #[error("host function failed: {0}")]
    Host(String),
    #[error("{0}")]
    Signature(String),
    #[error("cannot create a fiber stack: {0}")]
    Stack(String),
    /// A resumable call handed to a store other than the one that
    /// started it.
    #[error("the call belongs to another store (process)")]
    ForeignCall,
}

impl ExecError {
    /// A trap with no wasm frames.
    pub fn trap(trap: Trap) -> Self {
        ExecError::Trap(trap, crate::code::WasmBacktrace::default())
    }

    /// The trap, if this is one.
    pub fn as_trap(&self) -> Option<Trap> {
        match self {
            ExecError::Trap(trap, _) => Some(*trap),
            _ => None,
        }
    }

    /// The wasm frames of a trap, if this is one.
    pub fn backtrace(&self) -> Option<&crate::code::WasmBacktrace> {
        match self {
            ExecError::Trap(_, backtrace) => Some(backtrace),
            _ => None,
        }
    }
}

impl From<HostError> for ExecError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Exit(code) => ExecError::Exit(code),
            HostError::Trap(trap) => ExecError::trap(trap),
            HostError::Failed(message) => ExecError::Host(message),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InstantiationError {
    /// The imports do not match what the module declares.
    #[error("{0}")]
    Link(String),
    #[error(transparent)]
    Alloc(#[from] AllocError),
    /// Initialisation (segments or the start function) stopped.
    #[error("{0}")]
    Start(ExecError),
}
