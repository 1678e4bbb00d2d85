//! Host functions: Rust closures that wasm code can import.
//!
//! Wasm calls a host function through its module's host trampoline, which
//! spills the arguments into an array and calls [`host_call_shim`]. The
//! shim resolves the caller's vmctx to its store and instance *once*, on
//! entry, decodes the values, runs the closure with a [`Caller`] that
//! holds that pair, and encodes the results through the store. A closure
//! that fails (or asks the guest to exit) makes the shim return non-zero;
//! the error waits in a thread-local slot while the trampoline raises the
//! `HostCall` trap, and the runtime picks it up when the fiber ends.
//! Panics are caught here: they must never unwind into JIT frames.
//!
//! A host function may park its guest (`Caller::yield_now`,
//! `Caller::sleep_until`). While it is parked the store may relocate every
//! region, the caller's vmctx included, and the range the vmctx left may
//! be handed to another process. So nothing here reads the vmctx after
//! the entry, and a [`Caller`] holds no arena pointer at all: it reaches
//! memory through the store each time, and the views it lends borrow it,
//! so none can be alive across the `&mut self` of a park.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::ptr::NonNull;
use std::sync::Arc;

use carat_jit::{FuncType, Trap, abi};

use crate::handles::InstanceId;
use crate::memory_view::MemoryView;
use crate::store::StoreInner;
use crate::values::Val;
use crate::vmctx::{VMContextHeader, VMHostFuncHeader};

/// Why a host function stopped the guest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The guest asked to exit with this status (WASI `proc_exit`).
    #[error("exit with status {0}")]
    Exit(i32),
    /// The host function raises a wasm trap.
    #[error("trap: {0}")]
    Trap(Trap),
    #[error("{0}")]
    Failed(String),
}

pub type HostFnBox =
    Box<dyn Fn(&mut Caller<'_>, &[Val], &mut [Val]) -> Result<(), HostError> + Send + Sync>;

/// A host function with its signature.
pub struct HostFunc {
    pub ty: FuncType,
    pub type_id: u32,
    pub func: HostFnBox,
}

impl HostFunc {
    /// Its results before it runs: each type's zero.
    fn default_results(&self) -> Vec<Val> {
        self.ty
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect()
    }
}

/// What a host function's funcref record points at: the header JIT code
/// reads, then the function.
#[repr(C)]
pub(crate) struct HostFuncContext {
    header: VMHostFuncHeader,
    pub(crate) func: HostFunc,
}

impl HostFuncContext {
    pub(crate) fn new(func: HostFunc) -> Arc<Self> {
        Arc::new(HostFuncContext {
            header: VMHostFuncHeader {
                host_call: host_call_shim,
                magic: abi::host_func::MAGIC_VALUE,
            },
            func,
        })
    }
}

/// A host function made once and linked into any number of stores
/// ([`crate::Store::link_host_func`]): what a VM defines once for all its
/// processes (WASI, the carat ABI). It holds no process state; the function
/// finds its process's state through [`Caller::host_state`].
#[derive(Clone)]
pub struct SharedHostFunc(pub(crate) Arc<HostFuncContext>);

impl SharedHostFunc {
    pub fn new(func: HostFunc) -> Self {
        SharedHostFunc(HostFuncContext::new(func))
    }

    pub fn ty(&self) -> &FuncType {
        &self.0.func.ty
    }
}

/// The instance that called a host function, as its store and index.
///
/// It holds no address in the arena, so it stays valid while its guest
/// parks and its regions move. Everything it lends (a memory view) borrows
/// it mutably, and parking takes `&mut self`, so no view can be held
/// across a park.
pub struct Caller<'a> {
    /// `None` when the host itself calls the function.
    store: Option<NonNull<StoreInner>>,
    /// The store whose host state the function reaches: the caller's, or
    /// when the host calls, the store it called through (which is not
    /// inside a host call, so only its state is lent).
    states: Option<NonNull<StoreInner>>,
    instance: InstanceId,
    /// Set by [`Caller::park_on_return`]: park once the function returns,
    /// until the time given, if any.
    park: Option<Option<std::time::Instant>>,
    _call: PhantomData<&'a mut ()>,
}

impl Caller<'_> {
    /// Resolves a caller's vmctx to its store and instance.
    ///
    /// # Safety
    /// `vmctx` must be null or the current vmctx of a live instance whose
    /// guest is inside the host call this caller is for.
    unsafe fn from_vmctx(vmctx: *mut u8) -> Self {
        let none = Caller::none();
        if vmctx.is_null() {
            return none;
        }
        // SAFETY: per the contract, a live vmctx starts with its header.
        let header = unsafe { &*vmctx.cast::<VMContextHeader>() };
        if header.magic != abi::vmctx::MAGIC_VALUE {
            return none;
        }
        let store = NonNull::new(header.store.cast::<StoreInner>());
        Caller {
            store,
            states: store,
            instance: InstanceId(header.instance_id),
            park: None,
            _call: PhantomData,
        }
    }

    /// A caller-less context, for calls the host makes itself.
    pub fn none() -> Caller<'static> {
        Caller {
            store: None,
            states: None,
            instance: InstanceId(0),
            park: None,
            _call: PhantomData,
        }
    }

    /// The caller's store, for as long as `self` is borrowed.
    fn store(&mut self) -> Option<&mut StoreInner> {
        // SAFETY: the store outlives the host call, whose guest is stopped
        // in this very call, and no other reference to it is live: the
        // entry into wasm holds none (see `store`), and this borrow ends
        // before anything can park.
        self.store.map(|mut store| unsafe { store.as_mut() })
    }

    /// Shared access to the store, for encoding values.
    fn store_ref(&self) -> Option<&StoreInner> {
        // SAFETY: as in `store`.
        self.store.map(|store| unsafe { &*store.as_ptr() })
    }

    /// The calling instance; `None` when the host called.
    /// The state of type `T` the embedder keeps for this caller's process
    /// ([`crate::Store::set_host_state`]); `None` when the host itself
    /// calls or no such state was set.
    pub fn host_state<T: std::any::Any + Send>(&mut self) -> Option<&mut T> {
        // SAFETY: as in `store`; when the host calls, the store it called
        // through is borrowed mutably by that call, which lends it here.
        let states = unsafe { self.states?.as_mut() };
        states.host_state_mut()
    }

    /// [`Caller::host_state`], shared.
    pub fn host_state_ref<T: std::any::Any + Send>(&self) -> Option<&T> {
        // SAFETY: as in `host_state`.
        let states = unsafe { &*self.states?.as_ptr() };
        states.host_state_ref()
    }

    pub fn instance_id(&self) -> Option<InstanceId> {
        self.store.map(|_| self.instance)
    }

    /// The id of the caller's store (process); `None` when the host called.
    pub fn store_id(&self) -> Option<u64> {
        self.store_ref().map(|store| store.id)
    }

    /// The caller's memory 0, if it has one.
    pub fn memory(&mut self) -> Option<MemoryView<'_>> {
        let instance = self.instance;
        self.store()?.instances[instance.0 as usize].memory_view(0)
    }

    /// Where the caller's vmctx is now. It moves whenever the caller
    /// parks: an address kept across a park is stale.
    pub fn vmctx(&mut self) -> Option<*mut u8> {
        let instance = self.instance;
        Some(self.store()?.instances[instance.0 as usize].vmctx())
    }

    /// Compacts the caller's store (`carat.compact`): moves its memories
    /// to the lowest free ranges that hold them. Returns the bytes moved.
    pub fn compact_store(&mut self) -> u64 {
        let Some(store) = self.store() else {
            return 0;
        };
        // The host trampoline recorded the guest's exit just before this
        // call, so its frames are described.
        let exit = store.last_exit_fp();
        store.compact(Some(exit))
    }

    /// The caller's parked wasm frames, innermost first.
    pub fn wasm_frames(&mut self) -> Vec<crate::frames::WasmFrame> {
        let Some(store) = self.store() else {
            return Vec::new();
        };
        // SAFETY: the caller is parked in this host call, which it entered
        // through a host trampoline that recorded its exit.
        unsafe { crate::frames::walk(store.last_exit_fp()) }
    }

    /// Passes every interrupt of the caller's store (a scheduler's yield
    /// request, a kill) on to `target` as well, until the guard drops:
    /// for a host call that runs a call of another store on the caller's
    /// behalf, so that the callee shares the caller's time slice and dies
    /// with it.
    pub fn forward_interrupts(&mut self, target: crate::InterruptHandle) -> ForwardGuard {
        let Some(store) = self.store() else {
            return ForwardGuard {
                forward: None,
                previous: None,
            };
        };
        let forward = store.forward.clone();
        let previous = forward
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(target);
        ForwardGuard {
            forward: Some(forward),
            previous,
        }
    }

    /// Whether the caller's process was asked to stop (a kill): a host
    /// call that waited may end it at once instead of returning to a
    /// guest that would stop only at its next poll.
    pub fn kill_requested(&self) -> bool {
        self.store_ref().is_some_and(StoreInner::kill_requested)
    }

    /// Parks the caller once this host function returns with its results:
    /// until `deadline`, or with none, until its scheduler runs it again
    /// (a yield). Returns false, and does nothing, when the caller cannot
    /// be suspended (a plain call): the function must then wait itself.
    ///
    /// Prefer it to [`Caller::sleep_until`] and [`Caller::yield_now`],
    /// which park *inside* the function: a guest parked here holds no
    /// host frames, so it costs its own stack and nothing more, however
    /// many wait at once. The results are final before the wait; a kill
    /// during it stops the guest at its next poll.
    pub fn park_on_return(&mut self, deadline: Option<std::time::Instant>) -> bool {
        if self.store.is_none() || !crate::fiber::can_suspend() {
            return false;
        }
        self.park = Some(deadline);
        true
    }

    /// Gives up the CPU if the caller runs on a fiber that can be
    /// suspended (its scheduler runs others first); returns whether it
    /// did. Its regions may move meanwhile. The host function's frames
    /// wait with it, on a host stack the guest keeps meanwhile; see
    /// [`Caller::park_on_return`] for the cheaper way.
    pub fn yield_now(&mut self) -> bool {
        crate::fiber::suspend_current()
    }

    /// Parks the caller until `deadline` (its scheduler may run others
    /// meanwhile); false, without waiting, when it cannot be suspended.
    /// Its regions may move meanwhile.
    pub fn sleep_until(&mut self, deadline: std::time::Instant) -> bool {
        crate::fiber::sleep_until(deadline)
    }
}

/// Ends an interrupt forwarding (see `Caller::forward_interrupts`).
pub struct ForwardGuard {
    forward: Option<crate::store::Forward>,
    previous: Option<crate::InterruptHandle>,
}

impl Drop for ForwardGuard {
    fn drop(&mut self) {
        if let Some(forward) = &self.forward {
            *forward.lock().unwrap_or_else(|e| e.into_inner()) = self.previous.take();
        }
    }
}

thread_local! {
    static PENDING: RefCell<Option<HostError>> = const { RefCell::new(None) };
}

/// Takes the error a host function left when it stopped the guest.
pub(crate) fn take_pending_error() -> Option<HostError> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// Decodes `func`'s arguments from slot encoding, for `caller`.
fn decode_args(func: &HostFunc, caller: &Caller<'_>, slots: &[u64]) -> Vec<Val> {
    func.ty
        .params
        .iter()
        .zip(slots.iter())
        .map(|(ty, slot)| match caller.store_ref() {
            Some(store) => store.val_of(*ty, *slot),
            None => Val::from_slot(*ty, *slot),
        })
        .collect()
}

/// Runs `func` for `caller` on `args`, and writes its results, in slot
/// encoding, to where `results_at` says once it has run.
fn run_host_func<'s>(
    func: &HostFunc,
    caller: &mut Caller<'_>,
    args: Vec<Val>,
    results_at: impl FnOnce() -> &'s mut [u64],
) -> Result<(), HostError> {
    let mut results = func.default_results();
    (func.func)(caller, &args, &mut results)?;
    // The guest may have parked and moved: the store, not the vmctx the
    // call came in with, encodes the results.
    let mut encoded = Vec::with_capacity(results.len());
    for (result, ty) in results.iter().zip(&func.ty.results) {
        if result.ty() != *ty {
            return Err(HostError::Failed(format!(
                "host function returned {} where its signature says {ty}",
                result.ty()
            )));
        }
        encoded.push(match caller.store_ref() {
            Some(store) => store
                .slot_of(result)
                .map_err(|e| HostError::Failed(e.to_string()))?,
            None => result.to_slot(),
        });
    }
    for (slot, value) in results_at().iter_mut().zip(encoded) {
        *slot = value;
    }
    Ok(())
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (
        payload.downcast_ref::<&str>(),
        payload.downcast_ref::<String>(),
    ) {
        (Some(message), _) => format!("host function panicked: {message}"),
        (None, Some(message)) => format!("host function panicked: {message}"),
        (None, None) => "host function panicked".into(),
    }
}

/// The host entry that host trampolines call.
///
/// # Safety
/// `ctx` must be a live host function context, `caller_vmctx` null or the
/// vmctx of the live wasm caller, and `values` an array of at least
/// max(params, results) slots, in the calling trampoline's frame.
unsafe extern "C" fn host_call_shim(
    ctx: *mut VMHostFuncHeader,
    caller_vmctx: *mut u8,
    values: *mut u64,
) -> u32 {
    // SAFETY: per the contract: every host function context starts with
    // its header, and lives (boxed in its store) while the store does.
    let func = unsafe { &(*ctx.cast::<HostFuncContext>()).func };
    let len = func.ty.params.len().max(func.ty.results.len());
    // SAFETY: per the contract. This is the only read of the vmctx.
    let mut caller = unsafe { Caller::from_vmctx(caller_vmctx) };
    // The array lies in the host trampoline's frame on the guest stack,
    // which moves if the function parks inside and its store relocates
    // stacks meanwhile (see `stacks`): it is found again afterwards at the
    // same distance from the fiber's saved guest stack pointer, which a
    // move patches.
    let record = caller.store_ref().map(|store| {
        // SAFETY: the store's context is live; the running fiber's record
        // is set while it runs (by `fiber::run`) and lives on the heap.
        unsafe { (*store.context_ptr()).fiber as *const crate::stack_switch::SwitchRecord }
    });
    let guest_sp = |record: Option<*const crate::stack_switch::SwitchRecord>| {
        // SAFETY: as above; the bridge set `guest_sp` on the way in.
        record
            .filter(|r| !r.is_null())
            .map_or(0, |r| unsafe { (*r).guest_sp })
    };
    let offset = (values as usize).wrapping_sub(guest_sp(record));
    // SAFETY: per the contract, `values` holds `len` slots; they are read
    // here, before anything can park.
    let args = decode_args(func, &caller, unsafe {
        std::slice::from_raw_parts(values, len)
    });
    let results_at = || {
        let values = guest_sp(record).wrapping_add(offset) as *mut u64;
        // SAFETY: the same array, where it is now.
        unsafe { std::slice::from_raw_parts_mut(values, len) }
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        run_host_func(func, &mut caller, args, results_at)
    }));
    let error = match outcome {
        Ok(Ok(())) => {
            let Some(deadline) = caller.park else {
                return abi::host_status::DONE;
            };
            crate::fiber::set_wake_at(deadline);
            return abi::host_status::PARK;
        }
        Ok(Err(error)) => error,
        Err(payload) => HostError::Failed(panic_message(&*payload)),
    };
    PENDING.with(|p| *p.borrow_mut() = Some(error));
    abi::host_status::TRAP
}

/// Runs host function `func` for the host itself (no wasm caller),
/// lending it the host state of `store`, the store it was called through.
///
/// # Safety
/// `store` must be live and borrowed by the caller for this call.
pub(crate) unsafe fn call_from_host(
    func: &HostFunc,
    args: &[Val],
    store: NonNull<StoreInner>,
) -> Result<Vec<Val>, HostError> {
    let mut results = func.default_results();
    let mut caller = Caller {
        states: Some(store),
        ..Caller::none()
    };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        (func.func)(&mut caller, args, &mut results)
    }));
    match outcome {
        Ok(Ok(())) => Ok(results),
        Ok(Err(error)) => Err(error),
        Err(payload) => Err(HostError::Failed(panic_message(&*payload))),
    }
}
