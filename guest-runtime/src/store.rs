//! The store: one guest process's instances, host functions and limits.
//!
//! A [`Store`] is a set of instances that may link to each other directly:
//! share memories, tables, globals and functions. One guest process is one
//! store. Everything a store creates lives until the store drops: an
//! instance whose start function trapped stays too, because functions and
//! tables it already shared may still be reachable from its neighbours.
//!
//! All guest-visible state (vmctx, linear memories, tables, the store
//! context) lives in regions from the store's [`RegionProvider`]; the host
//! keeps only handles and bookkeeping, in [`StoreInner`].
//!
//! # Ownership
//!
//! JIT code reaches the store from inside a call: each vmctx header names
//! its store and its instance's index, and libcalls and host calls resolve
//! that pair to `(&mut StoreInner, InstanceId)` and work through the store
//! alone (see `libcalls`, `host`). So the store must be reachable by a raw
//! pointer while the embedder's `&mut Store` is held across the call. To
//! keep that sound, `Store` owns its `StoreInner` as a raw allocation, and
//! every path (the `Store` methods, libcalls, host calls) derives a short
//! `&mut StoreInner` from that one pointer and drops it before guest code
//! can run again: no `&mut StoreInner` is ever held across the entry into
//! wasm (see `call`), across a park, or beside a `&mut Instance`.

use std::ptr::NonNull;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use carat_jit::abi::{self, WASM_PAGE_SIZE};
use carat_jit::{FuncType, GlobalType, ValType};

use crate::fiber::ContextHome;
use crate::handles::{Entity, Extern, Func, InstanceId, StoreLimits};
use crate::host::{HostFnBox, HostFunc, HostFuncContext, SharedHostFunc};
use crate::instance::Instance;
use crate::memory_view::MemoryView;
use crate::regions::{AllocError, Region, RegionKind, RegionProvider, SharedBudget};
use crate::relocate::{RegionRef, Relocation};
use crate::values::{FuncRef, Val};
use crate::vmctx::VMStoreContext;

/// The exit records of a store's suspended calls, by call id: where their
/// parked frames are.
pub(crate) type ParkedCalls = Arc<Mutex<Vec<(u64, usize)>>>;

pub(crate) fn lock_parked(
    parked: &Mutex<Vec<(u64, usize)>>,
) -> std::sync::MutexGuard<'_, Vec<(u64, usize)>> {
    parked.lock().unwrap_or_else(|e| e.into_inner())
}

pub(crate) struct StoreInner {
    /// Unique among the stores of this host process: names the store in
    /// the [`FuncRef`]s and calls it hands out.
    pub(crate) id: u64,
    /// Whose regions these are, told the provider at each allocation
    /// (see `RegionProvider::allocate`).
    pub(crate) owner: u32,
    pub(crate) provider: Arc<dyn RegionProvider>,
    pub(crate) limits: StoreLimits,
    /// Bytes of every region the store holds now, against
    /// `limits.max_store_bytes`.
    pub(crate) bytes_in_use: u64,
    pub(crate) context: Box<dyn Region>,
    pub(crate) instances: Vec<Instance>,
    /// Behind `Arc`s: JIT code holds their addresses, which must not
    /// change when the vector grows; shared ones are linked into many
    /// stores.
    pub(crate) host_funcs: Vec<Arc<HostFuncContext>>,
    /// State the embedder keeps per process for its host functions, one
    /// value per type (see [`Store::set_host_state`]).
    pub(crate) host_state: Vec<Box<dyn std::any::Any + Send>>,
    /// The budget this store shares with others, charged alongside
    /// `bytes_in_use` and given back when the store drops.
    pub(crate) shared_budget: Option<Arc<SharedBudget>>,
    /// Where the store context (whose first word is the interrupt word)
    /// is, for fibers and [`InterruptHandle`]s; cleared when the store
    /// drops, updated when it moves.
    pub(crate) home: ContextHome,
    /// Where interrupts of this store are passed on to as well, while one
    /// of its host calls runs a call of another store on its behalf (see
    /// `Caller::forward_interrupts`).
    pub(crate) forward: Forward,
    /// How regions move; `None` when the backend cannot move them.
    pub(crate) relocation: Option<Relocation>,
    pub(crate) parked: ParkedCalls,
    pub(crate) next_call: u64,
    /// Polls left until the stress schedule moves every region.
    pub(crate) polls_until_relocation: u64,
    /// Where wasm functions of this store pass the results that do not fit
    /// in registers (`abi::results`): made when the first module with such
    /// a function type is instantiated, at its full size, and never
    /// replaced, because JIT code may hold its address across a park.
    pub(crate) result_spill: Option<Box<[u64]>>,
    /// Where its calls' fibers get their stacks, and which of them move.
    pub(crate) stacks: Arc<crate::stacks::Stacks>,
}

static NEXT_STORE_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Drop for StoreInner {
    fn drop(&mut self) {
        *self.home.lock().unwrap_or_else(|e| e.into_inner()) = None;
        if let Some(shared) = &self.shared_budget {
            shared.give_back(self.bytes_in_use);
        }
    }
}

/// A set of linked instances: one guest process.
pub struct Store {
    /// Owned: made by `Box::into_raw` in `new`, freed in `drop`. See the
    /// module doc for why it is not a `Box`.
    inner: NonNull<StoreInner>,
}

// SAFETY: a store owns everything its pointer reaches (its instances,
// their regions, its host-function contexts, which are Send + Sync), and
// nothing in it is tied to the thread that made it: thread-local state
// (trap handler, yielder, pending host error) is set per call. So it may
// move to another thread; `&mut self` on every call keeps it single-user.
unsafe impl Send for Store {}

impl Drop for Store {
    fn drop(&mut self) {
        // SAFETY: `inner` came from `Box::into_raw` and is freed only here;
        // no call of this store runs (that would need `&mut self`).
        drop(unsafe { Box::from_raw(self.inner.as_ptr()) });
    }
}

/// Where a store's interrupts are passed on to; see `StoreInner::forward`.
pub(crate) type Forward = Arc<Mutex<Option<InterruptHandle>>>;

/// Asks a store's running guest to stop or yield at its next poll. Safe to
/// use from any thread, and after the store has gone (it then does nothing).
/// While the store's guest waits in a call into another store (an entry
/// point of another process), the request reaches that call too, so a
/// scheduler's time slice and a kill hold across processes.
#[derive(Clone, Debug)]
pub struct InterruptHandle {
    word: ContextHome,
    forward: Forward,
}

impl InterruptHandle {
    /// A handle that reaches no store.
    pub fn none() -> Self {
        InterruptHandle {
            word: Arc::new(Mutex::new(None)),
            forward: Arc::default(),
        }
    }

    fn set(&self, reason: u64) -> bool {
        let set = {
            let word = self.word.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(address) = *word {
                // SAFETY: the address is the store context's interrupt
                // word; the store clears it (under this lock) before the
                // context goes away, and moves the context only under it.
                unsafe {
                    (*(address as *const std::sync::atomic::AtomicU64))
                        .fetch_or(reason, Ordering::AcqRel)
                };
            }
            word.is_some()
        };
        // Forwarding chains follow calls into providers listed earlier, so
        // they never cycle.
        let next = self
            .forward
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(next) = next {
            next.set(reason);
        }
        set
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
        Store::new_sharing(provider, limits, None, crate::regions::NO_OWNER)
    }

    /// A store whose regions also count against `shared`, a budget it
    /// shares with other stores (a VM's), and are allocated for `owner`
    /// (see `RegionProvider::allocate`).
    pub fn new_sharing(
        provider: Arc<dyn RegionProvider>,
        limits: StoreLimits,
        shared: Option<Arc<SharedBudget>>,
        owner: u32,
    ) -> Result<Self, AllocError> {
        let size = abi::store_context::SIZE as usize;
        if (size as u64) > limits.max_store_bytes {
            return Err(AllocError::BudgetExceeded {
                kind: RegionKind::ControlBlock,
                requested: size as u64,
                in_use: 0,
                budget: limits.max_store_bytes,
            });
        }
        let speculation_sink =
            crate::signals::speculation_sink().map_err(|reason| AllocError::System {
                kind: RegionKind::ControlBlock,
                reason,
            })?;
        if let Some(shared) = &shared {
            shared.take(RegionKind::ControlBlock, size as u64)?;
        }
        let context = provider
            .allocate(RegionKind::ControlBlock, size, size, owner)
            .inspect_err(|_| {
                if let Some(shared) = &shared {
                    shared.give_back(size as u64);
                }
            })?;
        // SAFETY: a fresh zeroed region of the right size; an all-zero
        // VMStoreContext is valid (no interrupt, no limit, no fuel), and so
        // is one that names the speculation sink.
        unsafe {
            context
                .base()
                .cast::<VMStoreContext>()
                .write(VMStoreContext {
                    interrupt: Default::default(),
                    stack_limit: 0,
                    fuel: 0,
                    last_exit_fp: 0,
                    speculation_sink,
                    result_spill: 0,
                    fiber: 0,
                    stack_soft_limit: 0,
                    stack_margin: 0,
                });
        }
        const { assert!(abi::store_context::INTERRUPT == 0) };
        let home = Arc::new(Mutex::new(Some(context.base() as usize)));
        let stacks = crate::stacks::Stacks::new(&provider, shared.clone(), owner);
        let relocation = provider.relocation();
        let stress_every = relocation.as_ref().map_or(0, |r| r.policy.stress_every());
        let inner = Box::new(StoreInner {
            id: NEXT_STORE_ID.fetch_add(1, Ordering::Relaxed),
            owner,
            relocation,
            provider,
            limits,
            bytes_in_use: size as u64,
            context,
            instances: Vec::new(),
            host_funcs: Vec::new(),
            host_state: Vec::new(),
            shared_budget: shared,
            home,
            forward: Arc::default(),
            parked: Arc::default(),
            next_call: 0,
            polls_until_relocation: stress_every,
            result_spill: None,
            stacks,
        });
        if stress_every > 0 {
            // SAFETY: the context is live; the word is atomic.
            unsafe {
                (*inner.context_ptr())
                    .interrupt
                    .fetch_or(crate::fiber::interrupt::RELOCATE, Ordering::AcqRel)
            };
        }
        Ok(Store {
            inner: NonNull::from(Box::leak(inner)),
        })
    }

    pub(crate) fn inner(&self) -> &StoreInner {
        // SAFETY: owned (see the field); `&self` excludes `&mut` through
        // this handle, and no call of the store runs while it is held.
        unsafe { self.inner.as_ref() }
    }

    pub(crate) fn inner_mut(&mut self) -> &mut StoreInner {
        // SAFETY: as in `inner`, and `&mut self` makes the borrow unique.
        unsafe { self.inner.as_mut() }
    }

    /// The raw pointer vmctx headers hold: what libcalls and host calls
    /// resolve.
    pub(crate) fn inner_ptr(&self) -> *mut StoreInner {
        self.inner.as_ptr()
    }

    /// Unique among the stores of this host process.
    pub fn id(&self) -> u64 {
        self.inner().id
    }

    pub fn limits(&self) -> &StoreLimits {
        &self.inner().limits
    }

    /// Sets the stack bytes wasm frames may use in calls started from now
    /// on.
    pub fn set_max_wasm_stack(&mut self, bytes: usize) {
        self.inner_mut().limits.max_wasm_stack = bytes;
    }

    /// Bytes of guest state the store holds now, every region counted.
    pub fn bytes_in_use(&self) -> u64 {
        self.inner().bytes_in_use
    }

    /// Sets the fuel left for code compiled with fuel counting.
    pub fn set_fuel(&mut self, fuel: i64) {
        // SAFETY: the store context lives as long as the store, and no
        // guest runs while `&mut self` is held.
        unsafe { (*self.inner().context_ptr()).fuel = fuel };
    }

    /// The fuel left; negative once a guest has run out.
    pub fn fuel(&self) -> i64 {
        // SAFETY: as in `set_fuel`.
        unsafe { (*self.inner().context_ptr()).fuel }
    }

    /// Registers a host function; `type_id` is its signature's id in the
    /// engine's registry.
    pub fn host_func(&mut self, ty: FuncType, type_id: u32, func: HostFnBox) -> Func {
        let inner = self.inner_mut();
        let index = inner.host_funcs.len() as u32;
        inner
            .host_funcs
            .push(HostFuncContext::new(HostFunc { ty, type_id, func }));
        Func::Host(index)
    }

    /// Links a host function made once for many stores; the same
    /// function linked twice gives two handles to one context.
    pub fn link_host_func(&mut self, func: &SharedHostFunc) -> Func {
        let inner = self.inner_mut();
        let index = inner.host_funcs.len() as u32;
        inner.host_funcs.push(func.0.clone());
        Func::Host(index)
    }

    /// Keeps `value` for this store's host functions to reach through
    /// [`crate::Caller::host_state`]; replaces an earlier value of the same
    /// type.
    pub fn set_host_state<T: std::any::Any + Send>(&mut self, value: T) {
        let states = &mut self.inner_mut().host_state;
        match states.iter_mut().find(|s| s.is::<T>()) {
            Some(slot) => *slot = Box::new(value),
            None => states.push(Box::new(value)),
        }
    }

    /// The value of type `T` kept by [`Store::set_host_state`].
    pub fn host_state<T: std::any::Any + Send>(&mut self) -> Option<&mut T> {
        self.inner_mut().host_state_mut()
    }

    /// [`Store::host_state`], shared.
    pub fn host_state_ref<T: std::any::Any + Send>(&self) -> Option<&T> {
        self.inner().host_state_ref()
    }

    /// Instance `id`; panics if the store has no such instance (ids come
    /// from this store's `instantiate`).
    pub fn instance(&self, id: InstanceId) -> &Instance {
        &self.inner().instances[id.0 as usize]
    }

    pub fn instance_mut(&mut self, id: InstanceId) -> &mut Instance {
        &mut self.inner_mut().instances[id.0 as usize]
    }

    pub fn func_type(&self, func: Func) -> &FuncType {
        self.inner().func_type(func)
    }

    /// The export `name` of an instance.
    pub fn export(&self, id: InstanceId, name: &str) -> Option<Extern> {
        let instance = self.inner().instances.get(id.0 as usize)?;
        let export = instance.module_info().export(name)?;
        Some(instance.entity(export.kind, export.index))
    }

    /// The type of a global and its current value.
    pub fn global_get(&self, global: Entity) -> (GlobalType, Val) {
        self.inner().global_get(global)
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
        // keeps guests from running and regions from moving while the
        // view lives.
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

    /// A handle other threads may use to interrupt this store's guests.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        InterruptHandle {
            word: self.inner().home.clone(),
            forward: self.inner().forward.clone(),
        }
    }

    /// Moves every region of this store (store context, vmctxs, memories,
    /// tables) to fresh ranges, patching every pointer into them. Only
    /// between calls: any call of this store must be parked, not running.
    /// Returns false when the backend cannot move regions or lacks room
    /// (what could move has moved; everything stays consistent).
    pub fn relocate_all(&mut self) -> bool {
        self.inner_mut().relocate_all(None)
    }

    /// Compaction of this store: moves its memories to the lowest free
    /// ranges below them that hold them (with room to grow), as
    /// `relocate_all` does. Returns the bytes moved.
    pub fn compact(&mut self) -> u64 {
        self.inner_mut().compact(None)
    }

    /// Moves one region of this store, as `relocate_all` does.
    pub fn relocate(&mut self, region: RegionRef) -> bool {
        let inner = self.inner_mut();
        if !inner.has_region(region) {
            return false;
        }
        let (len, headroom) = inner.growth_room(region);
        inner.relocate(region, len, headroom, None)
    }

    /// The regions of this store.
    pub fn regions(&self) -> Vec<RegionRef> {
        self.inner().region_refs()
    }

    /// Where region `region` is now: its base address and length.
    pub fn region_range(&mut self, region: RegionRef) -> Option<(usize, usize)> {
        let inner = self.inner_mut();
        if !inner.has_region(region) {
            return None;
        }
        let region = inner.region(region);
        Some((region.base() as usize, region.len()))
    }
}

impl StoreInner {
    /// The host state of type `T`, if the embedder set one.
    pub(crate) fn host_state_mut<T: std::any::Any + Send>(&mut self) -> Option<&mut T> {
        self.host_state
            .iter_mut()
            .find_map(|state| state.downcast_mut::<T>())
    }

    /// [`StoreInner::host_state_mut`], shared.
    pub(crate) fn host_state_ref<T: std::any::Any + Send>(&self) -> Option<&T> {
        self.host_state
            .iter()
            .find_map(|state| state.downcast_ref::<T>())
    }

    pub(crate) fn context_ptr(&self) -> *mut VMStoreContext {
        self.context.base().cast()
    }

    /// Whether the store was asked to stop (a kill), consuming the request
    /// as a poll would: it stops one call, not every later one.
    pub(crate) fn take_kill(&self) -> bool {
        let kill = crate::fiber::interrupt::KILL;
        // SAFETY: as in `kill_requested`.
        let word = unsafe { &(*self.context_ptr()).interrupt };
        word.fetch_and(!kill, Ordering::AcqRel) & kill != 0
    }

    /// Whether the store was asked to stop (a kill).
    pub(crate) fn kill_requested(&self) -> bool {
        // SAFETY: the store context lives as long as its store; the word
        // is atomic.
        let word = unsafe { &(*self.context_ptr()).interrupt };
        word.load(Ordering::Acquire) & crate::fiber::interrupt::KILL != 0
    }

    /// Makes room at every function entry for frames of `bytes` (the
    /// largest frame of a module being instantiated); see
    /// `abi::store_context::STACK_SOFT_LIMIT`.
    pub(crate) fn widen_stack_margin(&mut self, bytes: usize) {
        let bytes = bytes.next_multiple_of(16);
        // SAFETY: the context is live; a running fiber of the store reads
        // the margin only at its next resume or growth.
        unsafe {
            let context = self.context_ptr();
            (*context).stack_margin = (*context).stack_margin.max(bytes);
        }
    }

    /// Gives the store its result spill area, if it has none yet.
    pub(crate) fn ensure_result_spill(&mut self) {
        if self.result_spill.is_some() {
            return;
        }
        let words = carat_jit::abi::results::SPILL_AREA_BYTES / 8;
        let mut area = vec![0u64; words].into_boxed_slice();
        // SAFETY: the context is live; JIT code of this store reads the
        // field only after an instantiation that spills, which is this one.
        unsafe { (*self.context_ptr()).result_spill = area.as_mut_ptr() as usize };
        self.result_spill = Some(area);
    }

    /// What the signal handler asks this store about a fault while one of
    /// its guests runs.
    pub(crate) fn fault_check(this: *mut StoreInner) -> crate::fiber::FaultCheck {
        /// # Safety
        /// `data` must be a live store running a guest on this thread.
        unsafe fn claims(data: *const (), address: usize) -> bool {
            // SAFETY: per the contract; the store is only read, and nothing
            // changes it while its guest runs JIT code (where faults are).
            let store = unsafe { &*data.cast::<StoreInner>() };
            store.instances.iter().any(|instance| {
                instance
                    .memories
                    .iter()
                    .any(|memory| memory.region.reservation().contains(&address))
            })
        }
        crate::fiber::FaultCheck {
            data: this.cast_const().cast(),
            check: claims,
        }
    }

    /// The frame pointer a guest of this store last left wasm code from:
    /// inside a libcall or host call, the record of that very exit.
    pub(crate) fn last_exit_fp(&self) -> usize {
        // SAFETY: the store context lives as long as the store.
        unsafe { (*self.context_ptr()).last_exit_fp }
    }

    /// Whether `func` names a function of this store.
    pub(crate) fn has_func(&self, func: Func) -> bool {
        match func {
            Func::Host(i) => (i as usize) < self.host_funcs.len(),
            Func::Wasm { instance, index } => self
                .instances
                .get(instance.0 as usize)
                .is_some_and(|i| (index as usize) < i.module_info().functions.len()),
        }
    }

    pub(crate) fn func_type(&self, func: Func) -> &FuncType {
        match func {
            Func::Host(i) => &self.host_funcs[i as usize].func.ty,
            Func::Wasm { instance, index } => self.instances[instance.0 as usize]
                .module_info()
                .func_type(index),
        }
    }

    pub(crate) fn global_get(&self, global: Entity) -> (GlobalType, Val) {
        let instance = &self.instances[global.instance.0 as usize];
        let info = instance.module_info();
        let ty = info.globals[(info.num_imported_globals + global.defined) as usize];
        // SAFETY: the slot belongs to a live instance's vmctx.
        let slot = unsafe { *instance.global_def(global.defined) };
        (ty, self.val_of(ty.content, slot))
    }

    /// Takes `bytes` more of the store's budget for a region of `kind`.
    pub(crate) fn charge(&mut self, kind: RegionKind, bytes: u64) -> Result<(), AllocError> {
        let budget = self.limits.max_store_bytes;
        match self.bytes_in_use.checked_add(bytes) {
            Some(total) if total <= budget => {
                if let Some(shared) = &self.shared_budget {
                    shared.take(kind, bytes)?;
                }
                self.bytes_in_use = total;
                Ok(())
            }
            _ => Err(AllocError::BudgetExceeded {
                kind,
                requested: bytes,
                in_use: self.bytes_in_use,
                budget,
            }),
        }
    }

    /// Gives back budget a region no longer holds.
    pub(crate) fn refund(&mut self, bytes: u64) {
        let refunded = bytes.min(self.bytes_in_use);
        self.bytes_in_use -= refunded;
        if let Some(shared) = &self.shared_budget {
            shared.give_back(refunded);
        }
    }

    /// Allocates a region from the provider, within the store's budget.
    pub(crate) fn allocate(
        &mut self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<Box<dyn Region>, AllocError> {
        self.charge(kind, len as u64)?;
        self.provider
            .allocate(kind, len, max_len, self.owner)
            .inspect_err(|_| {
                self.refund(len as u64);
            })
    }

    /// The slot encoding of a value the host hands in: a funcref becomes
    /// the address its record has now, once it is known to name a
    /// function of this store.
    pub(crate) fn slot_of(&self, value: &Val) -> Result<u64, crate::ExecError> {
        let Val::FuncRef(Some(func)) = value else {
            return Ok(value.to_slot());
        };
        let instance = self.instances.get(func.instance as usize).filter(|i| {
            func.store == self.id && (func.index as usize) < i.module_info().functions.len()
        });
        match instance {
            Some(instance) => Ok(instance.funcref_record(func.index) as u64),
            None => Err(crate::ExecError::Signature(
                "a function reference from another store (process)".into(),
            )),
        }
    }

    pub(crate) fn results(&self, ty: &FuncType, values: &[u64]) -> Vec<Val> {
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

    /// Memory `memory`'s current bound in bytes and its effective maximum.
    pub(crate) fn memory_bound(&self, memory: Entity) -> (u64, u64) {
        let owner = &self.instances[memory.instance.0 as usize];
        // SAFETY: the definition lies inside the owner's live vmctx.
        let bound = unsafe { (*owner.memory_def(memory.defined)).bound };
        let max = owner.memories[memory.defined as usize].max_pages * WASM_PAGE_SIZE;
        (bound, max)
    }
}
