//! Instances and the store that owns them.
//!
//! A [`Store`] is a set of instances that may link to each other directly:
//! share memories, tables, globals and functions. One guest process is one
//! store. Everything a store creates lives until the store drops: an
//! instance whose start function trapped stays too, because functions and
//! tables it already shared may still be reachable from its neighbours.
//!
//! All guest-visible state (vmctx, linear memories, tables, the store
//! context) lives in regions from the store's [`RegionProvider`]; the host
//! keeps only handles and bookkeeping. Instances are boxed so their
//! addresses are stable: each vmctx points back at its `Instance`, and
//! libcalls reach the store through it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use carat_jit::abi::{self, Location, SharedKind, WASM_PAGE_SIZE, WASM32_MAX_PAGES};
use carat_jit::{
    CompiledModule, ConstExpr, EntityKind, FuncType, GlobalType, ImportKind, SegmentMode, Trap,
    ValType,
};

use crate::code::{CodeError, CodeMemory};
use crate::fiber::{ContextHome, Fiber, FiberState, TrapInfo, run_on_fiber};
use crate::host::{Caller, HostError, HostFnBox, HostFunc, host_call_shim, take_pending_error};
use crate::libcalls::LIBCALLS;
use crate::memory_view::MemoryView;
use crate::regions::{AllocError, Region, RegionKind, RegionProvider};
use crate::relocate::{Move, RegionRef, RelocationCounters, RelocationStats};
use crate::values::{FuncRef, Val};
use crate::vmctx::{
    VMContextHeader, VMFuncRef, VMHostFuncContext, VMMemoryDefinition, VMStoreContext,
    VMTableDefinition,
};

/// A compiled module with its code placed in executable memory.
#[derive(Debug)]
pub struct LoadedModule {
    pub compiled: CompiledModule,
    code: CodeMemory,
}

impl LoadedModule {
    pub fn new(compiled: CompiledModule) -> Result<Arc<Self>, CodeError> {
        crate::signals::install();
        let code = CodeMemory::new(&compiled.image)?;
        Ok(Arc::new(LoadedModule { compiled, code }))
    }

    fn function_address(&self, defined_index: usize) -> *const u8 {
        self.code
            .address(self.compiled.image.functions[defined_index].start)
    }

    fn entry_trampoline(&self, type_index: u32) -> *const u8 {
        self.code
            .address(self.compiled.image.entry_trampolines[type_index as usize])
    }

    fn host_trampoline(&self, type_index: u32) -> *const u8 {
        self.code
            .address(self.compiled.image.host_trampolines[type_index as usize])
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct InstanceId(pub u32);

/// A function of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// A function defined (not imported) by an instance.
    Wasm { instance: InstanceId, index: u32 },
    /// A host function registered with [`Store::host_func`].
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

/// Limits a store enforces on its guests.
#[derive(Clone, Copy, Debug)]
pub struct StoreLimits {
    /// Largest size of one linear memory, in bytes.
    pub max_memory_bytes: u64,
    /// Largest number of elements of one table.
    pub max_table_elements: u32,
    /// Stack bytes wasm frames may use.
    pub max_wasm_stack: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        StoreLimits {
            max_memory_bytes: WASM32_MAX_PAGES * WASM_PAGE_SIZE,
            max_table_elements: 10_000_000,
            max_wasm_stack: 1024 * 1024,
        }
    }
}

/// Why a call into a store did not return normally.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    #[error("trap: {0}")]
    Trap(Trap),
    #[error("exit with status {0}")]
    Exit(i32),
    #[error("host function failed: {0}")]
    Host(String),
    #[error("{0}")]
    Signature(String),
    #[error("cannot create a fiber stack: {0}")]
    Stack(String),
}

impl From<HostError> for ExecError {
    fn from(e: HostError) -> Self {
        match e {
            HostError::Exit(code) => ExecError::Exit(code),
            HostError::Trap(trap) => ExecError::Trap(trap),
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

struct LinearMemory {
    region: Box<dyn Region>,
    /// The effective maximum: the declared one capped by the store's limit.
    max_pages: u64,
    declared_max: Option<u64>,
}

struct TableStorage {
    region: Box<dyn Region>,
    element: ValType,
    /// The effective maximum: the declared one capped by the store's limit.
    maximum: u32,
    declared_max: Option<u32>,
}

/// Imports as resolved at instantiation, for re-export and for reaching
/// the owners of imported memories and tables.
#[derive(Default)]
struct Imports {
    funcs: Vec<Func>,
    tables: Vec<Entity>,
    memories: Vec<Entity>,
    globals: Vec<Entity>,
}

/// One instantiated module.
pub struct Instance {
    id: InstanceId,
    store: *mut StoreInner,
    module: Arc<LoadedModule>,
    vmctx: Box<dyn Region>,
    memories: Vec<LinearMemory>,
    tables: Vec<TableStorage>,
    imports: Imports,
    dropped_data: Vec<bool>,
    dropped_elements: Vec<bool>,
}

// Instances and host contexts are boxed because JIT code and vmctx headers
// hold their addresses; growing the vectors must not move them.
#[allow(clippy::vec_box)]
pub(crate) struct StoreInner {
    /// Unique among the stores of this host process: names the store in
    /// the [`FuncRef`]s it hands out.
    id: u64,
    provider: Arc<dyn RegionProvider>,
    limits: StoreLimits,
    context: Box<dyn Region>,
    instances: Vec<Box<Instance>>,
    host_funcs: Vec<Box<VMHostFuncContext>>,
    /// Where the store context (whose first word is the interrupt word)
    /// is, for fibers and [`InterruptHandle`]s; cleared when the store
    /// drops, updated when it moves.
    home: ContextHome,
    /// Where relocations are counted; `None` when regions cannot move.
    relocations: Option<Arc<RelocationCounters>>,
    /// The exit records of this store's suspended calls, by call id: where
    /// their parked frames are.
    parked: Arc<Mutex<Vec<(u64, usize)>>>,
    next_call: u64,
    /// Relocate every region at every this many polls (0: never).
    relocate_every: u64,
    polls_until_relocation: u64,
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Drop for StoreInner {
    fn drop(&mut self) {
        *self.home.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// The room a memory of `len` bytes keeps after it to grow without
/// moving: as much again, up to its maximum of `max` bytes.
fn room_to_double(len: usize, max: usize) -> usize {
    len.min(max.saturating_sub(len))
}

/// Where a moving region goes.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Anywhere it fits with `headroom` after it, at `new_len` bytes.
    Anywhere { new_len: usize, headroom: usize },
    /// Only lower in the arena than it is now, at its length.
    Lower { headroom: usize },
}

fn lock_parked(parked: &Mutex<Vec<(u64, usize)>>) -> std::sync::MutexGuard<'_, Vec<(u64, usize)>> {
    parked.lock().unwrap_or_else(|e| e.into_inner())
}

/// A set of linked instances: one guest process.
pub struct Store {
    inner: Box<StoreInner>,
}

// SAFETY: a store owns everything its raw pointers reach (its instances,
// their vmctx regions, its host-function contexts, which are Send + Sync),
// and nothing in it is tied to the thread that made it: thread-local state
// (trap handler, yielder, pending host error) is set per call. So it may
// move to another thread; `&mut self` on every call keeps it single-user.
unsafe impl Send for Store {}

// SAFETY: a started call owns its fiber (stack and body) and its value
// array; its body captures only plain addresses. A suspended guest's
// frames hold no thread-local state across the suspension (the poll path
// reads the yielder before it suspends), so it may resume on another
// thread.
unsafe impl Send for GuestCall {}

type EntryTrampoline = unsafe extern "C" fn(*mut u8, *mut u8, *const u8, *mut u64);

/// A call running on a resumable fiber; see [`Store::start_call`]. It must
/// be resumed with the store that started it.
pub struct GuestCall {
    fiber: Fiber,
    values: Box<[u64]>,
    /// Arguments still to be written into `values`, at the first resume.
    unwritten_args: Vec<Val>,
    ty: FuncType,
    id: u64,
    /// The store's record of parked calls, which this call leaves when it
    /// resumes or drops.
    parked: Arc<Mutex<Vec<(u64, usize)>>>,
}

impl GuestCall {
    fn unpark(&self) {
        lock_parked(&self.parked).retain(|(id, _)| *id != self.id);
    }
}

impl Drop for GuestCall {
    fn drop(&mut self) {
        self.unpark();
    }
}

/// Where a resumed call stopped.
#[derive(Debug)]
pub enum CallProgress {
    Done(Result<Vec<Val>, ExecError>),
    /// Parked at a poll, at a safepoint; resume to go on.
    Suspended,
    /// Parked in a host call that waits; resume at or after this time.
    Sleeping(std::time::Instant),
}

/// Asks a store's running guest to stop or yield at its next poll. Safe to
/// use from any thread, and after the store has gone (it then does nothing).
#[derive(Clone, Debug)]
pub struct InterruptHandle {
    word: Arc<Mutex<Option<usize>>>,
}

impl InterruptHandle {
    fn set(&self, reason: u64) -> bool {
        let word = self.word.lock().unwrap_or_else(|e| e.into_inner());
        let Some(address) = *word else {
            return false;
        };
        // SAFETY: the address is the store context's interrupt word; the
        // store clears it (under this lock) before the context goes away,
        // and moves the context only under it.
        unsafe {
            (*(address as *const std::sync::atomic::AtomicU64)).fetch_or(reason, Ordering::AcqRel)
        };
        true
    }

    /// Asks the guest to suspend (resumable calls only); false if the
    /// store is gone.
    pub fn request_yield(&self) -> bool {
        self.set(crate::fiber::interrupt::YIELD)
    }

    /// Asks the guest to stop with the trap `interrupted`.
    pub fn kill(&self) -> bool {
        self.set(crate::fiber::interrupt::KILL)
    }
}

impl Store {
    pub fn new(provider: Arc<dyn RegionProvider>, limits: StoreLimits) -> Result<Self, AllocError> {
        let size = abi::store_context::SIZE as usize;
        let context = provider.allocate(RegionKind::ControlBlock, size, size)?;
        // SAFETY: a fresh zeroed region of the right size; an all-zero
        // VMStoreContext is valid (no interrupt, no limit, no fuel).
        unsafe {
            context
                .base()
                .cast::<VMStoreContext>()
                .write(VMStoreContext {
                    interrupt: Default::default(),
                    stack_limit: 0,
                    fuel: 0,
                    last_exit_fp: 0,
                });
        }
        const { assert!(abi::store_context::INTERRUPT == 0) };
        let home = Arc::new(Mutex::new(Some(context.base() as usize)));
        Ok(Store {
            inner: Box::new(StoreInner {
                id: NEXT_STORE_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                relocations: provider.relocation_counters(),
                provider,
                limits,
                context,
                instances: Vec::new(),
                host_funcs: Vec::new(),
                home,
                parked: Arc::default(),
                next_call: 0,
                relocate_every: 0,
                polls_until_relocation: 0,
            }),
        })
    }

    pub fn limits(&self) -> &StoreLimits {
        &self.inner.limits
    }

    fn context_ptr(&self) -> *mut VMStoreContext {
        self.inner.context_ptr()
    }

    /// Moves every region of this store (store context, vmctxs, memories,
    /// tables) to fresh ranges, patching every pointer into them. Only
    /// between calls: any call of this store must be parked, not running.
    /// Returns false when the backend cannot move regions or lacks room
    /// (what could move has moved; everything stays consistent).
    pub fn relocate_all(&mut self) -> bool {
        self.inner.relocate_all(None)
    }

    /// Compaction of this store: moves its memories to the lowest free
    /// ranges below them that hold them (with room to grow), as
    /// `relocate_all` does. Returns the bytes moved.
    pub fn compact(&mut self) -> u64 {
        self.inner.compact(None)
    }

    /// Moves one region of this store, as `relocate_all` does.
    pub fn relocate(&mut self, region: RegionRef) -> bool {
        let (len, headroom) = self.inner.growth_room(region);
        self.inner.relocate(region, len, headroom, None)
    }

    /// The regions of this store.
    pub fn regions(&self) -> Vec<RegionRef> {
        self.inner.region_refs()
    }

    /// Where region `region` is now: its base address and length.
    pub fn region_range(&mut self, region: RegionRef) -> (usize, usize) {
        let region = self.inner.region(region);
        (region.base() as usize, region.len())
    }

    /// The relocation stress schedule: every region moves at every
    /// `every`th poll of this store's guests (0 turns it off). Does
    /// nothing when the backend cannot move regions.
    pub fn set_relocate_every(&mut self, every: u64) {
        if self.inner.relocations.is_none() {
            return;
        }
        self.inner.relocate_every = every;
        self.inner.polls_until_relocation = every;
        if every > 0 {
            // SAFETY: the context is live; the word is atomic.
            unsafe {
                (*self.context_ptr())
                    .interrupt
                    .fetch_or(crate::fiber::interrupt::RELOCATE, Ordering::AcqRel)
            };
        }
    }

    /// Sets the fuel left for code compiled with fuel counting.
    pub fn set_fuel(&mut self, fuel: i64) {
        // SAFETY: the store context lives as long as the store, and no
        // guest runs while `&mut self` is held.
        unsafe { (*self.context_ptr()).fuel = fuel };
    }

    /// The fuel left; negative once a guest has run out.
    pub fn fuel(&self) -> i64 {
        // SAFETY: as in `set_fuel`.
        unsafe { (*self.context_ptr()).fuel }
    }

    /// Registers a host function; `type_id` is its signature's id in the
    /// engine's registry.
    pub fn host_func(&mut self, ty: FuncType, type_id: u32, func: HostFnBox) -> Func {
        let index = self.inner.host_funcs.len() as u32;
        self.inner.host_funcs.push(Box::new(VMHostFuncContext {
            host_call: host_call_shim,
            magic: abi::host_func::MAGIC_VALUE,
            func: HostFunc { ty, type_id, func },
        }));
        Func::Host(index)
    }

    pub fn instance(&self, id: InstanceId) -> &Instance {
        &self.inner.instances[id.0 as usize]
    }

    pub fn instance_mut(&mut self, id: InstanceId) -> &mut Instance {
        &mut self.inner.instances[id.0 as usize]
    }

    pub fn func_type(&self, func: Func) -> &FuncType {
        match func {
            Func::Host(i) => &self.inner.host_funcs[i as usize].func.ty,
            Func::Wasm { instance, index } => {
                self.instance(instance).module_info().func_type(index)
            }
        }
    }

    /// The export `name` of an instance.
    pub fn export(&self, id: InstanceId, name: &str) -> Option<Extern> {
        let instance = self.inner.instances.get(id.0 as usize)?;
        let export = instance.module_info().export(name)?;
        Some(instance.entity(export.kind, export.index))
    }

    /// The type of a global and its current value.
    pub fn global_get(&self, global: Entity) -> (GlobalType, Val) {
        let instance = self.instance(global.instance);
        let info = instance.module_info();
        let ty = info.globals[(info.num_imported_globals + global.defined) as usize];
        // SAFETY: the slot belongs to a live instance's vmctx.
        let slot = unsafe { *instance.global_def(global.defined) };
        (ty, self.inner.val_of(ty.content, slot))
    }

    /// The current size of a memory, in bytes, and its maximum in pages.
    pub fn memory_size(&self, memory: Entity) -> (u64, u64) {
        let instance = self.instance(memory.instance);
        // SAFETY: the definition belongs to a live instance's vmctx.
        let bound = unsafe { (*instance.memory_def(memory.defined)).bound };
        (bound, instance.memories[memory.defined as usize].max_pages)
    }

    /// The bytes of a memory.
    pub fn memory_view(&mut self, memory: Entity) -> MemoryView<'_> {
        let instance = self.instance(memory.instance);
        // SAFETY: the definition belongs to a live instance; `&mut self`
        // keeps guests from running while the view lives.
        unsafe {
            let def = &*instance.memory_def(memory.defined);
            MemoryView::new(def.base, def.bound as usize)
        }
    }

    /// The current length of a table and its maximum, in elements.
    pub fn table_size(&self, table: Entity) -> (u32, u32, ValType) {
        let instance = self.instance(table.instance);
        // SAFETY: the definition belongs to a live instance's vmctx.
        let len = unsafe { (*instance.table_def(table.defined)).len };
        let storage = &instance.tables[table.defined as usize];
        (len as u32, storage.maximum, storage.element)
    }

    /// Instantiates `module` with `imports` given in the module's import
    /// order. On a trap during initialisation the instance stays in the
    /// store (its effects on shared state persist, as the spec says) and
    /// the error is returned.
    pub fn instantiate(
        &mut self,
        module: &Arc<LoadedModule>,
        imports: &[Extern],
    ) -> Result<InstanceId, InstantiationError> {
        let info = &module.compiled.info;
        if imports.len() != info.imports.len() {
            return Err(InstantiationError::Link(format!(
                "the module has {} imports but {} were provided",
                info.imports.len(),
                imports.len()
            )));
        }
        let mut resolved = Imports::default();
        for (import, provided) in info.imports.iter().zip(imports) {
            self.check_import(info, import, provided)?;
            match *provided {
                Extern::Func(f) => resolved.funcs.push(f),
                Extern::Table(t) => resolved.tables.push(t),
                Extern::Memory(m) => resolved.memories.push(m),
                Extern::Global(g) => resolved.globals.push(g),
            }
        }

        let layout = &module.compiled.layout;
        let vmctx = self.inner.provider.allocate(
            RegionKind::ControlBlock,
            layout.size() as usize,
            layout.size() as usize,
        )?;
        let id = InstanceId(self.inner.instances.len() as u32);
        let store_ptr: *mut StoreInner = &mut *self.inner;
        let num_data = info.data.len();
        let num_elements = info.elements.len();
        self.inner.instances.push(Box::new(Instance {
            id,
            store: store_ptr,
            module: module.clone(),
            vmctx,
            memories: Vec::new(),
            tables: Vec::new(),
            imports: resolved,
            dropped_data: vec![false; num_data],
            dropped_elements: vec![false; num_elements],
        }));
        self.initialize(id).map(|()| id)
    }

    fn check_import(
        &self,
        info: &carat_jit::ModuleInfo,
        import: &carat_jit::Import,
        provided: &Extern,
    ) -> Result<(), InstantiationError> {
        let mismatch = |detail: String| {
            InstantiationError::Link(format!(
                "incompatible import type for `{}::{}`: {detail}",
                import.module, import.name
            ))
        };
        // Limits subtyping: the provided current size must be at least the
        // wanted minimum, and a wanted maximum needs a provided one below it.
        let limits_fit = |size: u64, max: Option<u64>, want_min: u64, want_max: Option<u64>| {
            size >= want_min && want_max.is_none_or(|want| max.is_some_and(|m| m <= want))
        };
        match (&import.kind, *provided) {
            (ImportKind::Func(type_index), Extern::Func(f)) => {
                let want = &info.types[*type_index as usize];
                let have = self.func_type(f);
                if have != want {
                    return Err(mismatch(format!("function {have} is not {want}")));
                }
            }
            (ImportKind::Table(want), Extern::Table(t)) => {
                let instance = self.instance(t.instance);
                let storage = &instance.tables[t.defined as usize];
                // SAFETY: the definition belongs to a live instance's vmctx.
                let len = unsafe { (*instance.table_def(t.defined)).len };
                if storage.element != want.element
                    || !limits_fit(
                        len,
                        storage.declared_max.map(u64::from),
                        u64::from(want.minimum),
                        want.maximum.map(u64::from),
                    )
                {
                    return Err(mismatch(format!(
                        "table of {} {} elements (max {:?}) does not fit {want:?}",
                        len, storage.element, storage.declared_max
                    )));
                }
            }
            (ImportKind::Memory(want), Extern::Memory(m)) => {
                let instance = self.instance(m.instance);
                let memory = &instance.memories[m.defined as usize];
                // SAFETY: the definition belongs to a live instance's vmctx.
                let pages = unsafe { (*instance.memory_def(m.defined)).bound } / WASM_PAGE_SIZE;
                if !limits_fit(pages, memory.declared_max, want.minimum, want.maximum) {
                    return Err(mismatch(format!(
                        "memory of {pages} pages (max {:?}) does not fit {want:?}",
                        memory.declared_max
                    )));
                }
            }
            (ImportKind::Global(want), Extern::Global(g)) => {
                let (have, _) = self.global_get(g);
                if have != *want {
                    return Err(mismatch(format!("global {have:?} is not {want:?}")));
                }
            }
            (kind, provided) => {
                let want = match kind {
                    ImportKind::Func(_) => EntityKind::Func,
                    ImportKind::Table(_) => EntityKind::Table,
                    ImportKind::Memory(_) => EntityKind::Memory,
                    ImportKind::Global(_) => EntityKind::Global,
                };
                return Err(mismatch(format!(
                    "expected a {want:?}, found a {:?}",
                    provided.kind()
                )));
            }
        }
        Ok(())
    }

    /// Fills in a freshly pushed instance: vmctx, memories, tables,
    /// globals, segments, then runs the start function.
    fn initialize(&mut self, id: InstanceId) -> Result<(), InstantiationError> {
        let provider = self.inner.provider.clone();
        let limits = self.inner.limits;
        let context = self.context_ptr();
        let instance: *mut Instance = &mut *self.inner.instances[id.0 as usize];
        // SAFETY: `instance` is boxed in the store and outlives this call;
        // the store's other instances are only read through `self` below,
        // never the one being initialised.
        let instance = unsafe { &mut *instance };
        let module = instance.module.clone();
        let info = &module.compiled.info;
        let layout = &module.compiled.layout;
        let vmctx = instance.vmctx.base();

        // SAFETY: vmctx is a zeroed region of `layout.size()` bytes; every
        // write below stays within the offsets the layout hands out.
        unsafe {
            vmctx.cast::<VMContextHeader>().write(VMContextHeader {
                store_context: context,
                libcalls: &LIBCALLS,
                instance,
                magic: abi::vmctx::MAGIC_VALUE,
            });
            for (i, func) in instance.imports.funcs.iter().enumerate() {
                let type_index = info.functions[i];
                let record = match *func {
                    Func::Host(h) => {
                        let ctx: *mut VMHostFuncContext = &mut *self.inner.host_funcs[h as usize];
                        VMFuncRef {
                            func_ptr: module.host_trampoline(type_index),
                            vmctx: ctx.cast(),
                            type_id: (*ctx).func.type_id,
                            _pad: 0,
                        }
                    }
                    Func::Wasm {
                        instance: owner,
                        index,
                    } => *self.instance(owner).funcref_record(index),
                };
                instance.funcref_record(i as u32).write(record);
            }
            for defined in 0..info.num_defined_functions() {
                let index = info.num_imported_functions + defined;
                instance.funcref_record(index).write(VMFuncRef {
                    func_ptr: module.function_address(defined as usize),
                    vmctx,
                    type_id: module.compiled.type_ids[info.functions[index as usize] as usize],
                    _pad: 0,
                });
            }
            for (i, m) in instance.imports.memories.iter().enumerate() {
                let def = self.instance(m.instance).memory_def(m.defined);
                vmctx
                    .add(layout.memory_import(i as u32) as usize)
                    .cast::<*mut VMMemoryDefinition>()
                    .write(def);
            }
            for (i, t) in instance.imports.tables.iter().enumerate() {
                let def = self.instance(t.instance).table_def(t.defined);
                vmctx
                    .add(layout.table_import(i as u32) as usize)
                    .cast::<*mut VMTableDefinition>()
                    .write(def);
            }
            for (i, g) in instance.imports.globals.iter().enumerate() {
                let slot = self.instance(g.instance).global_def(g.defined);
                vmctx
                    .add(layout.global_import(i as u32) as usize)
                    .cast::<*mut u64>()
                    .write(slot);
            }
        }

        for (defined, ty) in info.memories[info.num_imported_memories as usize..]
            .iter()
            .enumerate()
        {
            let limit_pages = (limits.max_memory_bytes / WASM_PAGE_SIZE).min(WASM32_MAX_PAGES);
            let max_pages = ty.maximum.unwrap_or(WASM32_MAX_PAGES).min(limit_pages);
            if ty.minimum > max_pages {
                return Err(AllocError::LimitExceeded {
                    kind: RegionKind::LinearMemory,
                    requested: ty.minimum * WASM_PAGE_SIZE,
                    limit: max_pages * WASM_PAGE_SIZE,
                }
                .into());
            }
            let len = ty.minimum * WASM_PAGE_SIZE;
            let region = provider.allocate(
                RegionKind::LinearMemory,
                len as usize,
                (max_pages * WASM_PAGE_SIZE) as usize,
            )?;
            // SAFETY: the definition lies inside this instance's vmctx.
            unsafe {
                instance
                    .memory_def(defined as u32)
                    .write(VMMemoryDefinition {
                        base: region.base(),
                        bound: len,
                    });
            }
            instance.memories.push(LinearMemory {
                region,
                max_pages,
                declared_max: ty.maximum,
            });
        }

        for defined in 0..info.globals.len() - info.num_imported_globals as usize {
            let value = instance.const_slot(info.global_inits[defined]);
            // SAFETY: the slot lies inside this instance's vmctx.
            unsafe { instance.global_def(defined as u32).write(value) };
        }

        for (defined, ty) in info.tables[info.num_imported_tables as usize..]
            .iter()
            .enumerate()
        {
            let maximum = ty
                .maximum
                .unwrap_or(u32::MAX)
                .min(limits.max_table_elements);
            if ty.minimum > maximum {
                return Err(AllocError::LimitExceeded {
                    kind: RegionKind::Table,
                    requested: u64::from(ty.minimum) * 8,
                    limit: u64::from(maximum) * 8,
                }
                .into());
            }
            let region = provider.allocate(
                RegionKind::Table,
                ty.minimum as usize * 8,
                maximum as usize * 8,
            )?;
            let init = info.table_inits[info.num_imported_tables as usize + defined]
                .map_or(0, |e| instance.const_slot(e));
            // SAFETY: the region holds `minimum` elements; the definition
            // lies inside this instance's vmctx.
            unsafe {
                let elements = region.base().cast::<u64>();
                for i in 0..ty.minimum as usize {
                    elements.add(i).write(init);
                }
                instance.table_def(defined as u32).write(VMTableDefinition {
                    base: elements,
                    len: u64::from(ty.minimum),
                });
            }
            instance.tables.push(TableStorage {
                region,
                element: ty.element,
                maximum,
                declared_max: ty.maximum,
            });
        }

        // Segments, in order; the first that does not fit traps and leaves
        // the writes before it in place.
        for (i, segment) in info.elements.iter().enumerate() {
            match segment.mode {
                SegmentMode::Active { index, offset } => {
                    let offset = instance.const_slot(offset) as u32;
                    let len = segment.items.len() as u32;
                    if !instance.table_init(index, i as u32, offset, 0, len) {
                        return Err(InstantiationError::Start(ExecError::Trap(
                            Trap::TableOutOfBounds,
                        )));
                    }
                    instance.dropped_elements[i] = true;
                }
                SegmentMode::Declared => instance.dropped_elements[i] = true,
                SegmentMode::Passive => {}
            }
        }
        for (i, segment) in info.data.iter().enumerate() {
            if let SegmentMode::Active { index, offset } = segment.mode {
                let offset = instance.const_slot(offset) as u32;
                let len = segment.bytes.len() as u32;
                if !instance.memory_init(index, i as u32, offset, 0, len) {
                    return Err(InstantiationError::Start(ExecError::Trap(
                        Trap::MemoryOutOfBounds,
                    )));
                }
                instance.dropped_data[i] = true;
            }
        }

        if let Some(start) = info.start {
            let func = instance.func(start);
            self.call(func, &[]).map_err(InstantiationError::Start)?;
        }
        Ok(())
    }

    fn check_args(&self, func: Func, args: &[Val]) -> Result<FuncType, ExecError> {
        let exists = match func {
            Func::Host(i) => (i as usize) < self.inner.host_funcs.len(),
            Func::Wasm { instance, index } => self
                .inner
                .instances
                .get(instance.0 as usize)
                .is_some_and(|i| (index as usize) < i.module_info().functions.len()),
        };
        if !exists {
            return Err(ExecError::Signature(
                "no such function in this store (process)".into(),
            ));
        }
        let ty = self.func_type(func).clone();
        let arg_types: Vec<ValType> = args.iter().map(Val::ty).collect();
        if arg_types != ty.params {
            return Err(ExecError::Signature(format!(
                "the function takes ({}) but was given ({})",
                join(&ty.params),
                join(&arg_types)
            )));
        }
        Ok(ty)
    }

    /// What running wasm function `index` of `instance` takes: its entry
    /// trampoline, its funcref record, and the value array holding `args`.
    fn prepare(
        &self,
        instance: InstanceId,
        index: u32,
        ty: &FuncType,
        args: &[Val],
    ) -> Result<(EntryTrampoline, VMFuncRef, Box<[u64]>), ExecError> {
        let instance = self.instance(instance);
        let module = &instance.module;
        let type_index = module.compiled.info.functions[index as usize];
        // SAFETY: the record lies inside a live vmctx.
        let record = unsafe { *instance.funcref_record(index) };
        // SAFETY: entry trampolines have exactly this signature.
        let trampoline: EntryTrampoline =
            unsafe { std::mem::transmute(module.entry_trampoline(type_index)) };
        let mut values =
            vec![0u64; ty.params.len().max(ty.results.len()).max(1)].into_boxed_slice();
        for (slot, arg) in values.iter_mut().zip(args) {
            *slot = self.inner.slot_of(arg)?;
        }
        Ok((trampoline, record, values))
    }

    /// Calls a function with `args`, returning its results.
    pub fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, ExecError> {
        let ty = self.check_args(func, args)?;
        match func {
            Func::Host(index) => {
                let mut results: Vec<Val> =
                    ty.results.iter().map(|t| Val::default_for(*t)).collect();
                let host = &self.inner.host_funcs[index as usize].func;
                (host.func)(&mut Caller::none(), args, &mut results)?;
                Ok(results)
            }
            Func::Wasm { instance, index } => {
                let (trampoline, record, mut values) = self.prepare(instance, index, &ty, args)?;
                let values_ptr = values.as_mut_ptr();
                // SAFETY: the store context is live; the closure holds no
                // values with destructors while JIT code runs.
                let outcome = unsafe {
                    run_on_fiber(&self.inner.home, self.inner.limits.max_wasm_stack, || {
                        trampoline(
                            record.vmctx,
                            std::ptr::null_mut(),
                            record.func_ptr,
                            values_ptr,
                        )
                    })
                }
                .map_err(|e| ExecError::Stack(e.to_string()))?;
                outcome.map_err(|info| self.trap_error(info))?;
                Ok(self.inner.results(&ty, &values))
            }
        }
    }

    /// Starts a call of a wasm function that can be suspended at its polls
    /// (by [`InterruptHandle::request_yield`]) and resumed with
    /// [`Store::resume_call`]. Nothing runs until the first resume.
    pub fn start_call(&mut self, func: Func, args: &[Val]) -> Result<GuestCall, ExecError> {
        let ty = self.check_args(func, args)?;
        let Func::Wasm { instance, index } = func else {
            return Err(ExecError::Signature(
                "a host function cannot run as a resumable call".into(),
            ));
        };
        // The arguments are checked now but written at the first resume:
        // a funcref's record may move before then.
        let (trampoline, record, mut values) = self.prepare(instance, index, &ty, args)?;
        let values_ptr = values.as_mut_ptr() as usize;
        // SAFETY: the store context lives as long as the store, which the
        // call must be resumed with; the body owns what it uses (the value
        // array is boxed in the GuestCall and only addressed here).
        let fiber = unsafe {
            Fiber::new(
                self.inner.home.clone(),
                self.inner.limits.max_wasm_stack,
                move || {
                    trampoline(
                        record.vmctx,
                        std::ptr::null_mut(),
                        record.func_ptr,
                        values_ptr as *mut u64,
                    )
                },
            )
        }
        .map_err(|e| ExecError::Stack(e.to_string()))?;
        self.inner.next_call += 1;
        Ok(GuestCall {
            fiber,
            values,
            unwritten_args: args.to_vec(),
            ty,
            id: self.inner.next_call,
            parked: self.inner.parked.clone(),
        })
    }

    /// Runs a started call until it returns, traps or yields.
    pub fn resume_call(&mut self, call: &mut GuestCall) -> CallProgress {
        for (slot, arg) in call
            .values
            .iter_mut()
            .zip(std::mem::take(&mut call.unwritten_args))
        {
            match self.inner.slot_of(&arg) {
                Ok(value) => *slot = value,
                Err(error) => return CallProgress::Done(Err(error)),
            }
        }
        call.unpark();
        let state = call.fiber.resume();
        if matches!(state, FiberState::Suspended | FiberState::Sleeping(_)) {
            // It left wasm through a trampoline just now: its exit record
            // is the store's last, until another call of the store runs.
            // SAFETY: the context is live.
            let exit = unsafe { (*self.context_ptr()).last_exit_fp };
            lock_parked(&call.parked).push((call.id, exit));
        }
        match state {
            FiberState::Suspended => CallProgress::Suspended,
            FiberState::Sleeping(until) => CallProgress::Sleeping(until),
            FiberState::Finished(Ok(())) => {
                CallProgress::Done(Ok(self.inner.results(&call.ty, &call.values)))
            }
            FiberState::Finished(Err(info)) => CallProgress::Done(Err(self.trap_error(info))),
        }
    }

    /// A handle other threads may use to interrupt this store's guests.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            word: self.inner.home.clone(),
        }
    }

    fn trap_error(&self, info: TrapInfo) -> ExecError {
        match info.trap {
            Trap::HostCall => take_pending_error()
                .map(ExecError::from)
                .unwrap_or(ExecError::Trap(Trap::HostCall)),
            trap => ExecError::Trap(trap),
        }
    }
}

impl StoreInner {
    fn context_ptr(&self) -> *mut VMStoreContext {
        self.context.base().cast()
    }

    /// The slot encoding of a value the host hands in: a funcref becomes
    /// the address its record has now, once it is known to name a
    /// function of this store.
    pub(crate) fn slot_of(&self, value: &Val) -> Result<u64, ExecError> {
        let Val::FuncRef(Some(func)) = value else {
            return Ok(value.to_slot());
        };
        let instance = self.instances.get(func.instance as usize).filter(|i| {
            func.store == self.id && (func.index as usize) < i.module_info().functions.len()
        });
        match instance {
            Some(instance) => Ok(instance.funcref_record(func.index) as u64),
            None => Err(ExecError::Signature(
                "a function reference from another store (process)".into(),
            )),
        }
    }

    fn results(&self, ty: &FuncType, values: &[u64]) -> Vec<Val> {
        ty.results
            .iter()
            .zip(values)
            .map(|(ty, slot)| self.val_of(*ty, *slot))
            .collect()
    }

    /// The value a slot holds, as the host sees it: a funcref's record
    /// address becomes the function it names.
    pub(crate) fn val_of(&self, ty: ValType, slot: u64) -> Val {
        if ty != ValType::FuncRef || slot == 0 {
            return Val::from_slot(ty, slot);
        }
        let named = self.instances.iter().find_map(|instance| {
            let offset = slot.checked_sub(instance.vmctx() as u64)?;
            Some(FuncRef {
                store: self.id,
                instance: instance.id.0,
                index: instance.layout().funcref_at(offset)?,
            })
        });
        // Every funcref slot of a store points at a record of one of its
        // instances (records of imported functions live in the importer);
        // anything else would be a runtime bug, and reads as null rather
        // than as a pointer.
        debug_assert!(named.is_some(), "funcref {slot:#x} outside its store");
        Val::FuncRef(named)
    }

    fn region_refs(&self) -> Vec<RegionRef> {
        let mut regions = vec![RegionRef::Context];
        for instance in &self.instances {
            regions.push(RegionRef::Vmctx(instance.id));
            let entity = |defined: usize| Entity {
                instance: instance.id,
                defined: defined as u32,
            };
            regions.extend((0..instance.memories.len()).map(|d| RegionRef::Memory(entity(d))));
            regions.extend((0..instance.tables.len()).map(|d| RegionRef::Table(entity(d))));
        }
        regions
    }

    fn region(&mut self, region: RegionRef) -> &mut Box<dyn Region> {
        match region {
            RegionRef::Context => &mut self.context,
            RegionRef::Vmctx(id) => &mut self.instances[id.0 as usize].vmctx,
            RegionRef::Memory(m) => {
                &mut self.instances[m.instance.0 as usize].memories[m.defined as usize].region
            }
            RegionRef::Table(t) => {
                &mut self.instances[t.instance.0 as usize].tables[t.defined as usize].region
            }
        }
    }

    /// Moves `region` to a fresh range of `new_len` bytes (with `headroom`
    /// to grow into) and patches every pointer into it: the escapes (see
    /// `relocate`) and the stack-map slots of the frames parked below
    /// `running_exit` (the exit record of this store's guest running now,
    /// inside a libcall, if any) and below every suspended call's exit.
    fn relocate(
        &mut self,
        region: RegionRef,
        new_len: usize,
        headroom: usize,
        running_exit: Option<usize>,
    ) -> bool {
        self.move_region(
            region,
            Placement::Anywhere { new_len, headroom },
            running_exit,
        )
    }

    /// Moves `region` as `placement` says and patches every pointer into
    /// it; false, changing nothing, when it cannot move.
    fn move_region(
        &mut self,
        region: RegionRef,
        placement: Placement,
        running_exit: Option<usize>,
    ) -> bool {
        let Some(counters) = self.relocations.clone() else {
            return false;
        };
        // Interrupt handles write the context's first word under this lock.
        let home = self.home.clone();
        let mut home =
            (region == RegionRef::Context).then(|| home.lock().unwrap_or_else(|e| e.into_inner()));
        let moving = self.region(region);
        let len = moving.len();
        let moved_from = match placement {
            Placement::Anywhere { new_len, headroom } => moving.relocate(new_len, headroom),
            Placement::Lower { headroom } => moving.compact(headroom),
        };
        let Some(old) = moved_from else {
            return false;
        };
        let moved = Move {
            old,
            len: len.max(1),
            new: moving.base() as usize,
        };
        let mut escapes = 0;
        if let Some(home) = home.as_mut() {
            **home = Some(moved.new);
            escapes += 1;
        }
        for instance in &self.instances {
            // SAFETY: every instance of the store is live and stopped.
            escapes += unsafe { instance.patch_escapes(&moved) };
        }
        // Stack-map slots hold vmctx pointers and funcrefs (pointers into
        // vmctxs) only: no other region's move can concern a frame.
        let frames = if matches!(region, RegionRef::Vmctx(_)) {
            let parked: Vec<usize> = lock_parked(&self.parked).iter().map(|p| p.1).collect();
            // SAFETY: the guest running now is stopped in the libcall whose
            // exit record the caller passed; the others are parked in theirs.
            unsafe { moved.patch_frames(running_exit.into_iter().chain(parked)) }
        } else {
            0
        };
        counters.add(RelocationStats {
            relocations: 1,
            bytes_moved: len as u64,
            escapes_patched: escapes,
            frames_patched: frames,
        });
        true
    }

    fn relocate_all(&mut self, running_exit: Option<usize>) -> bool {
        self.region_refs().into_iter().all(|region| {
            let (len, headroom) = self.growth_room(region);
            self.relocate(region, len, headroom, running_exit)
        })
    }

    /// Moves this store's memories to the lowest free ranges below them
    /// that hold them with their growth room: what compaction does to one
    /// process. Returns the bytes moved.
    fn compact(&mut self, running_exit: Option<usize>) -> u64 {
        let mut moved = 0;
        for region in self.region_refs() {
            if !matches!(region, RegionRef::Memory(_)) {
                continue;
            }
            let (len, headroom) = self.growth_room(region);
            if self.move_region(region, Placement::Lower { headroom }, running_exit) {
                moved += len as u64;
            }
        }
        moved
    }

    /// A region's length, and the room to leave after it when it moves: a
    /// memory keeps room to double (up to its maximum), so moving it does
    /// not make its next growth move it again.
    fn growth_room(&mut self, region: RegionRef) -> (usize, usize) {
        let len = self.region(region).len();
        let headroom = match region {
            RegionRef::Memory(m) => {
                let memory = &self.instances[m.instance.0 as usize].memories[m.defined as usize];
                room_to_double(len, (memory.max_pages * WASM_PAGE_SIZE) as usize)
            }
            _ => 0,
        };
        (len, headroom)
    }

    /// The slow path of a poll: the fuel ran out (2), the guest is asked
    /// to stop (1), or to yield (suspend, then 0); a stress relocation
    /// may happen first.
    fn poll(&mut self) -> u32 {
        use crate::fiber::interrupt::{KILL, RELOCATE, YIELD};
        let context = self.context_ptr();
        // SAFETY: the context is live; the interrupt word is atomic.
        let (fuel, reason, exit) = unsafe {
            (
                (*context).fuel,
                (*context).interrupt.swap(0, Ordering::AcqRel),
                (*context).last_exit_fp,
            )
        };
        if fuel < 0 {
            return 2;
        }
        if reason & KILL != 0 {
            return 1;
        }
        if reason & RELOCATE != 0 && self.relocate_every > 0 {
            self.polls_until_relocation = self.polls_until_relocation.saturating_sub(1);
            if self.polls_until_relocation == 0 {
                self.polls_until_relocation = self.relocate_every;
                self.relocate_all(Some(exit));
            }
            // SAFETY: the context as it is now, after any move.
            unsafe {
                (*self.context_ptr())
                    .interrupt
                    .fetch_or(RELOCATE, Ordering::AcqRel)
            };
        }
        if reason & YIELD != 0 {
            crate::fiber::suspend_current();
        }
        0
    }
}

fn join(types: &[ValType]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Instance {
    pub fn id(&self) -> InstanceId {
        self.id
    }

    pub fn module(&self) -> &Arc<LoadedModule> {
        &self.module
    }

    pub fn module_info(&self) -> &carat_jit::ModuleInfo {
        &self.module.compiled.info
    }

    pub fn vmctx(&self) -> *mut u8 {
        self.vmctx.base()
    }

    /// The frame pointer the guest last left wasm code from.
    pub(crate) fn last_exit_fp(&self) -> usize {
        // SAFETY: the header's store context pointer is set at
        // instantiation and the store context lives as long as the store.
        unsafe { (*(*self.vmctx().cast::<VMContextHeader>()).store_context).last_exit_fp }
    }

    fn layout(&self) -> &carat_jit::abi::VmctxLayout {
        &self.module.compiled.layout
    }

    pub(crate) fn store_ptr(&self) -> *mut StoreInner {
        self.store
    }

    fn funcref_record(&self, index: u32) -> *mut VMFuncRef {
        // SAFETY: the layout's offsets lie inside the vmctx region.
        unsafe {
            self.vmctx()
                .add(self.layout().funcref(index) as usize)
                .cast()
        }
    }

    fn memory_def(&self, defined: u32) -> *mut VMMemoryDefinition {
        // SAFETY: as above.
        unsafe {
            self.vmctx()
                .add(self.layout().memory_def(defined) as usize)
                .cast()
        }
    }

    fn table_def(&self, defined: u32) -> *mut VMTableDefinition {
        // SAFETY: as above.
        unsafe {
            self.vmctx()
                .add(self.layout().table_def(defined) as usize)
                .cast()
        }
    }

    fn global_def(&self, defined: u32) -> *mut u64 {
        // SAFETY: as above.
        unsafe {
            self.vmctx()
                .add(self.layout().global_def(defined) as usize)
                .cast()
        }
    }

    /// Entity `index` (imported or defined) of `kind`, reached the way JIT
    /// code reaches it.
    fn locate<T>(&self, kind: SharedKind, index: u32) -> *mut T {
        match self.layout().locate(kind, index) {
            // SAFETY: import pointers were written at instantiation.
            Location::Import(pointer) => unsafe {
                *self.vmctx().add(pointer as usize).cast::<*mut T>()
            },
            // SAFETY: the layout's offsets lie inside the vmctx region.
            Location::Local(offset) => unsafe { self.vmctx().add(offset as usize).cast() },
        }
    }

    fn memory_definition(&self, index: u32) -> *mut VMMemoryDefinition {
        self.locate(SharedKind::Memory, index)
    }

    fn table_definition(&self, index: u32) -> *mut VMTableDefinition {
        self.locate(SharedKind::Table, index)
    }

    fn global_slot(&self, index: u32) -> *mut u64 {
        self.locate(SharedKind::Global, index)
    }

    /// A view of memory `index` (imported or defined).
    pub fn memory_view(&mut self, index: u32) -> Option<MemoryView<'_>> {
        if index as usize >= self.module_info().memories.len() {
            return None;
        }
        // SAFETY: the definition is live; `&mut self` keeps the instance
        // (and so the memory) from being used elsewhere while the view
        // lives, and the store keeps the memory mapped.
        unsafe {
            let def = &*self.memory_definition(index);
            Some(MemoryView::new(def.base, def.bound as usize))
        }
    }

    /// The handle of entity `index` of `kind`, following imports to their
    /// owner.
    fn entity(&self, kind: EntityKind, index: u32) -> Extern {
        let info = self.module_info();
        let own = |imported: u32| Entity {
            instance: self.id,
            defined: index - imported,
        };
        match kind {
            EntityKind::Func => Extern::Func(self.func(index)),
            EntityKind::Table if index < info.num_imported_tables => {
                Extern::Table(self.imports.tables[index as usize])
            }
            EntityKind::Table => Extern::Table(own(info.num_imported_tables)),
            EntityKind::Memory if index < info.num_imported_memories => {
                Extern::Memory(self.imports.memories[index as usize])
            }
            EntityKind::Memory => Extern::Memory(own(info.num_imported_memories)),
            EntityKind::Global if index < info.num_imported_globals => {
                Extern::Global(self.imports.globals[index as usize])
            }
            EntityKind::Global => Extern::Global(own(info.num_imported_globals)),
        }
    }

    fn func(&self, index: u32) -> Func {
        if index < self.module_info().num_imported_functions {
            self.imports.funcs[index as usize]
        } else {
            Func::Wasm {
                instance: self.id,
                index,
            }
        }
    }

    /// Evaluates a constant expression in this instance, to its slot.
    fn const_slot(&self, expr: ConstExpr) -> u64 {
        match expr {
            ConstExpr::I32(v) => Val::I32(v).to_slot(),
            ConstExpr::I64(v) => Val::I64(v).to_slot(),
            ConstExpr::F32(bits) => Val::F32(bits).to_slot(),
            ConstExpr::F64(bits) => Val::F64(bits).to_slot(),
            ConstExpr::RefNull(_) => 0,
            ConstExpr::RefFunc(index) => self.funcref_record(index) as u64,
            // SAFETY: the slot belongs to a live instance.
            ConstExpr::GlobalGet(index) => unsafe { *self.global_slot(index) },
        }
    }

    /// Patches every pointer this instance holds into a region that moved:
    /// its vmctx's store-context pointer, funcref records, import records,
    /// memory and table bases and funcref globals, and its funcref tables'
    /// elements. Returns how many it patched.
    ///
    /// # Safety
    /// The instance's guests must be stopped (no JIT code of the store
    /// runs), so these words change under nobody's feet.
    unsafe fn patch_escapes(&self, moved: &Move) -> u64 {
        let info = self.module_info();
        let layout = self.layout();
        let vmctx = self.vmctx();
        let at = |offset: u32| vmctx.wrapping_add(offset as usize).cast::<u64>();
        let mut locations = vec![at(abi::vmctx::STORE_CONTEXT as u32)];
        for index in 0..info.functions.len() as u32 {
            locations.push(at(layout.funcref(index) + abi::funcref::VMCTX as u32));
        }
        for i in 0..info.num_imported_memories {
            locations.push(at(layout.memory_import(i)));
        }
        for i in 0..info.num_imported_tables {
            locations.push(at(layout.table_import(i)));
        }
        for i in 0..info.num_imported_globals {
            locations.push(at(layout.global_import(i)));
        }
        for defined in 0..self.memories.len() as u32 {
            locations.push(at(layout.memory_def(defined) + abi::memory::BASE as u32));
        }
        for defined in 0..self.tables.len() as u32 {
            locations.push(at(layout.table_def(defined) + abi::table::BASE as u32));
        }
        let defined_globals = info.num_imported_globals as usize..info.globals.len();
        for (defined, global) in info.globals[defined_globals].iter().enumerate() {
            if global.content == ValType::FuncRef {
                locations.push(self.global_def(defined as u32));
            }
        }
        let mut patched = 0;
        for location in locations {
            // SAFETY: each is a pointer field of this live vmctx.
            patched += u64::from(unsafe { moved.patch(location) });
        }
        for (defined, table) in self.tables.iter().enumerate() {
            if table.element != ValType::FuncRef {
                continue;
            }
            // SAFETY: the definition is live; its base holds `len` elements,
            // each null or a pointer to a funcref record.
            unsafe {
                let def = self.table_def(defined as u32);
                let (base, len) = ((*def).base, (*def).len as usize);
                for i in 0..len {
                    patched += u64::from(moved.patch(base.add(i)));
                }
            }
        }
        patched
    }

    fn store_mut(&mut self) -> &mut StoreInner {
        // SAFETY: the store owns this instance and outlives it; callers
        // (libcalls) run while the store is borrowed by the call that
        // entered wasm, which does not touch it concurrently.
        unsafe { &mut *self.store }
    }

    // ----- operations behind the libcalls -----

    /// memory.grow: the old size in pages, or -1.
    pub(crate) fn memory_grow(&mut self, index: u32, delta_pages: u32) -> i32 {
        let imported = self.module_info().num_imported_memories;
        let (owner, defined) = if index < imported {
            let m = self.imports.memories[index as usize];
            let owner: *mut Instance = &mut *self.store_mut().instances[m.instance.0 as usize];
            (owner, m.defined)
        } else {
            (self as *mut Instance, index - imported)
        };
        // SAFETY: `owner` is a live boxed instance of the same store.
        let owner = unsafe { &mut *owner };
        let def = owner.memory_def(defined);
        let memory = &mut owner.memories[defined as usize];
        // SAFETY: the definition lies inside the owner's vmctx.
        let old_bytes = unsafe { (*def).bound };
        let old_pages = old_bytes / WASM_PAGE_SIZE;
        let new_pages = old_pages + u64::from(delta_pages);
        if new_pages > memory.max_pages {
            return -1;
        }
        let new_bytes = (new_pages * WASM_PAGE_SIZE) as usize;
        if !memory.region.grow_in_place(new_bytes) {
            // No room after it: move it, with as much room again to grow
            // into (up to its maximum), so repeated growth moves it only
            // a logarithmic number of times.
            let headroom = room_to_double(new_bytes, (memory.max_pages * WASM_PAGE_SIZE) as usize);
            let region = RegionRef::Memory(Entity {
                instance: owner.id,
                defined,
            });
            // This runs in the memory.grow libcall, whose trampoline
            // recorded the guest's exit.
            let exit = owner.last_exit_fp();
            let store = owner.store_mut();
            // No free range holds it: compact the store's memories (which
            // may join free ranges) and try once more.
            if !store.relocate(region, new_bytes, headroom, Some(exit))
                && (store.compact(Some(exit)) == 0
                    || !store.relocate(region, new_bytes, headroom, Some(exit)))
            {
                return -1;
            }
        }
        // SAFETY: the definition lies inside the owner's vmctx (which the
        // move of a memory leaves where it is).
        unsafe { (*owner.memory_def(defined)).bound = new_pages * WASM_PAGE_SIZE };
        old_pages as i32
    }

    /// Compacts this instance's store from inside a host call of its
    /// guest (`carat.compact`); returns the bytes moved.
    pub fn compact_store(&mut self) -> u64 {
        // A host call's trampoline recorded the guest's exit just before
        // this ran.
        let exit = self.last_exit_fp();
        self.store_mut().compact(Some(exit))
    }

    /// The slow path of a poll; see `StoreInner::poll`.
    pub(crate) fn poll(&mut self) -> u32 {
        self.store_mut().poll()
    }

    /// memory.init (also active data segments): false when out of bounds.
    pub(crate) fn memory_init(
        &mut self,
        memory: u32,
        data: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let module = self.module.clone();
        let bytes: &[u8] = if self.dropped_data[data as usize] {
            &[]
        } else {
            &module.compiled.info.data[data as usize].bytes
        };
        let Some(source) = bytes.get(src as usize..src as usize + len as usize) else {
            return false;
        };
        let Some(mut view) = self.memory_view(memory) else {
            return false;
        };
        view.write_bytes(crate::GuestAddr(dst), source).is_ok()
    }

    pub(crate) fn data_drop(&mut self, data: u32) {
        self.dropped_data[data as usize] = true;
    }

    fn table_elements(&mut self, table: u32) -> &mut [u64] {
        // SAFETY: the definition's base and len describe the live table.
        unsafe {
            let def = &*self.table_definition(table);
            std::slice::from_raw_parts_mut(def.base, def.len as usize)
        }
    }

    /// table.grow: the old length, or -1.
    pub(crate) fn table_grow(&mut self, index: u32, init: u64, delta: u32) -> i32 {
        let imported = self.module_info().num_imported_tables;
        let (owner, defined) = if index < imported {
            let t = self.imports.tables[index as usize];
            let owner: *mut Instance = &mut *self.store_mut().instances[t.instance.0 as usize];
            (owner, t.defined)
        } else {
            (self as *mut Instance, index - imported)
        };
        // SAFETY: `owner` is a live boxed instance of the same store.
        let owner = unsafe { &mut *owner };
        let provider = owner.store_mut().provider.clone();
        let def = owner.table_def(defined);
        let table = &mut owner.tables[defined as usize];
        // SAFETY: the definition lies inside the owner's vmctx.
        let old_len = unsafe { (*def).len };
        let new_len = old_len + u64::from(delta);
        if new_len > u64::from(table.maximum) {
            return -1;
        }
        let new_bytes = new_len as usize * 8;
        if !table.region.grow_in_place(new_bytes) {
            // Move the elements: nothing but the definition points at them.
            let Ok(region) =
                provider.allocate(RegionKind::Table, new_bytes, table.maximum as usize * 8)
            else {
                return -1;
            };
            // SAFETY: both regions hold at least `old_len` elements.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    table.region.base().cast::<u64>(),
                    region.base().cast::<u64>(),
                    old_len as usize,
                );
                (*def).base = region.base().cast();
            }
            table.region = region;
        }
        // SAFETY: the region now holds `new_len` elements.
        unsafe {
            let elements = table.region.base().cast::<u64>();
            for i in old_len..new_len {
                elements.add(i as usize).write(init);
            }
            (*def).len = new_len;
        }
        old_len as i32
    }

    pub(crate) fn table_fill(&mut self, table: u32, dst: u32, value: u64, len: u32) -> bool {
        let elements = self.table_elements(table);
        let Some(range) = elements.get_mut(dst as usize..dst as usize + len as usize) else {
            return false;
        };
        range.fill(value);
        true
    }

    pub(crate) fn table_copy(
        &mut self,
        dst_table: u32,
        src_table: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let (dst, src, len) = (dst as usize, src as usize, len as usize);
        let src_elements = self.table_elements(src_table);
        if src
            .checked_add(len)
            .is_none_or(|end| end > src_elements.len())
        {
            return false;
        }
        let src_ptr = src_elements[src..].as_ptr();
        let dst_elements = self.table_elements(dst_table);
        if dst
            .checked_add(len)
            .is_none_or(|end| end > dst_elements.len())
        {
            return false;
        }
        // SAFETY: both ranges were checked; they may overlap (same table),
        // which `copy` allows.
        unsafe { std::ptr::copy(src_ptr, dst_elements[dst..].as_mut_ptr(), len) };
        true
    }

    /// table.init (also active element segments): false when out of bounds.
    pub(crate) fn table_init(
        &mut self,
        table: u32,
        element: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let module = self.module.clone();
        let items: &[ConstExpr] = if self.dropped_elements[element as usize] {
            &[]
        } else {
            &module.compiled.info.elements[element as usize].items
        };
        let Some(items) = items.get(src as usize..src as usize + len as usize) else {
            return false;
        };
        let values: Vec<u64> = items.iter().map(|item| self.const_slot(*item)).collect();
        let elements = self.table_elements(table);
        let Some(range) = elements.get_mut(dst as usize..dst as usize + len as usize) else {
            return false;
        };
        range.copy_from_slice(&values);
        true
    }

    pub(crate) fn elem_drop(&mut self, element: u32) {
        self.dropped_elements[element as usize] = true;
    }
}
