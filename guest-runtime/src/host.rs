//! Host functions: Rust closures that wasm code can import.
//!
//! Wasm calls a host function through its module's host trampoline, which
//! spills the arguments into an array and calls [`host_call_shim`]. The
//! shim decodes the values, runs the closure with a [`Caller`] that gives
//! checked access to the calling instance's memory, and encodes the
//! results. A closure that fails (or asks the guest to exit) makes the shim
//! return non-zero; the error waits in a thread-local slot while the
//! trampoline raises the `HostCall` trap, and the runtime picks it up when
//! the fiber ends. Panics are caught here: they must never unwind into JIT
//! frames.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind};

use carat_jit::{FuncType, Trap, abi};

use crate::instance::{Instance, StoreInner};
use crate::memory_view::MemoryView;
use crate::values::Val;
use crate::vmctx::VMHostFuncContext;

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

/// The instance that called a host function.
pub struct Caller<'a> {
    instance: Option<&'a mut Instance>,
}

impl<'a> Caller<'a> {
    /// # Safety
    /// `vmctx` must be null or the vmctx of a live instance that nothing
    /// else accesses for `'a`.
    pub(crate) unsafe fn from_vmctx(vmctx: *mut u8) -> Self {
        if vmctx.is_null() {
            return Caller { instance: None };
        }
        // SAFETY: per the contract vmctx is a live wasm vmctx; its header
        // holds the magic and a pointer to its Instance.
        unsafe {
            let magic = *(vmctx.add(abi::vmctx::MAGIC as usize) as *const u64);
            if magic != abi::vmctx::MAGIC_VALUE {
                return Caller { instance: None };
            }
            let instance = *(vmctx.add(abi::vmctx::INSTANCE as usize) as *const *mut Instance);
            Caller {
                instance: Some(&mut *instance),
            }
        }
    }

    /// The store of the instance whose vmctx is `vmctx`, if it is one.
    ///
    /// # Safety
    /// As for [`Caller::from_vmctx`]; the store must not be reached
    /// otherwise while the reference lives.
    pub(crate) unsafe fn store_of<'s>(vmctx: *mut u8) -> Option<&'s StoreInner> {
        // SAFETY: per the contract.
        let caller = unsafe { Caller::from_vmctx(vmctx) };
        let store = caller.instance?.store_ptr();
        // SAFETY: an instance's store outlives it.
        Some(unsafe { &*store })
    }

    /// A caller-less context, for calls the host makes itself.
    pub fn none() -> Caller<'static> {
        Caller { instance: None }
    }

    /// The caller's memory 0, if it has one.
    pub fn memory(&mut self) -> Option<MemoryView<'_>> {
        self.instance.as_mut()?.memory_view(0)
    }

    pub fn instance(&mut self) -> Option<&mut Instance> {
        self.instance.as_deref_mut()
    }

    /// The caller's parked wasm frames, innermost first.
    pub fn wasm_frames(&mut self) -> Vec<crate::frames::WasmFrame> {
        let Some(instance) = self.instance.as_deref() else {
            return Vec::new();
        };
        // SAFETY: the caller is parked in this host call, which it entered
        // through a host trampoline that recorded its exit.
        unsafe { crate::frames::walk(instance.last_exit_fp()) }
    }
}

thread_local! {
    static PENDING: RefCell<Option<HostError>> = const { RefCell::new(None) };
}

/// Takes the error a host function left when it stopped the guest.
pub(crate) fn take_pending_error() -> Option<HostError> {
    PENDING.with(|p| p.borrow_mut().take())
}

/// The host entry that host trampolines call.
///
/// # Safety
/// `ctx` must be a live VMHostFuncContext, `caller_vmctx` null or a live
/// vmctx, and `values` an array of at least max(params, results) slots.
pub(crate) unsafe extern "C" fn host_call_shim(
    ctx: *mut VMHostFuncContext,
    caller_vmctx: *mut u8,
    values: *mut u64,
) -> u32 {
    // SAFETY: per the contract above.
    let (func, slots) = unsafe {
        let func = &(*ctx).func;
        let len = func.ty.params.len().max(func.ty.results.len());
        (func, std::slice::from_raw_parts_mut(values, len))
    };
    // SAFETY: per the contract, caller_vmctx is null or live; the store is
    // only read, to name funcrefs, before the caller is handed out and
    // after it is gone.
    let store = || unsafe { Caller::store_of(caller_vmctx) };
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let args: Vec<Val> = {
            let store = store();
            func.ty
                .params
                .iter()
                .zip(slots.iter())
                .map(|(ty, slot)| match store {
                    Some(store) => store.val_of(*ty, *slot),
                    None => Val::from_slot(*ty, *slot),
                })
                .collect()
        };
        let mut results: Vec<Val> = func
            .ty
            .results
            .iter()
            .map(|t| Val::default_for(*t))
            .collect();
        {
            // SAFETY: per the contract, caller_vmctx is null or live.
            let mut caller = unsafe { Caller::from_vmctx(caller_vmctx) };
            (func.func)(&mut caller, &args, &mut results)?;
        }
        let store = store();
        let mut encoded = Vec::with_capacity(results.len());
        for (result, ty) in results.iter().zip(&func.ty.results) {
            if result.ty() != *ty {
                return Err(HostError::Failed(format!(
                    "host function returned {} where its signature says {ty}",
                    result.ty()
                )));
            }
            encoded.push(match store {
                Some(store) => store
                    .slot_of(result)
                    .map_err(|e| HostError::Failed(e.to_string()))?,
                None => result.to_slot(),
            });
        }
        Ok(encoded)
    }));
    let error = match outcome {
        Ok(Ok(results)) => {
            for (slot, result) in slots.iter_mut().zip(results) {
                *slot = result;
            }
            return 0;
        }
        Ok(Err(error)) => error,
        Err(_) => HostError::Failed("host function panicked".into()),
    };
    PENDING.with(|p| *p.borrow_mut() = Some(error));
    1
}
