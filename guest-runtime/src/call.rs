//! Calls into a store: plain calls that run to the end, and resumable
//! calls ([`GuestCall`]) that park at polls and host calls and resume later,
//! perhaps on another thread, perhaps after their regions have moved.
//!
//! A call's arguments are checked against the function's type before
//! anything runs. No reference into the store is held while guest code
//! runs: everything the entry needs (trampoline, funcref record, value
//! array) is computed first, the borrow ends, and JIT code reaches the
//! store through its vmctx (see `store`). A resumable call carries the id
//! of the store that started it, and only that store resumes it: a
//! parked call's frames are described by its store's exit records, and
//! recording them in another store would let that store's next move
//! rewrite a foreign stack.

use carat_jit::{FuncType, Trap, ValType};

use crate::fiber::{EntryCall, Fiber, FiberState, TrapInfo, run_on_fiber};
use crate::handles::{ExecError, Func, InstanceId};
use crate::host::{call_from_host, take_pending_error};
use crate::store::{ParkedCalls, Store, StoreInner, lock_parked};
use crate::values::Val;
use crate::vmctx::VMFuncRef;

type EntryTrampoline = unsafe extern "C" fn(*mut u8, *mut u8, *const u8, *mut u64);

/// A call running on a resumable fiber; see [`Store::start_call`]. Only
/// the store that started it may resume it.
pub struct GuestCall {
    fiber: Fiber,
    values: Box<[u64]>,
    /// The function to enter, looked up at the first resume (its record
    /// may move before then), and its entry trampoline.
    func: (InstanceId, u32),
    trampoline: EntryTrampoline,
    /// Arguments still to be written into `values`, at the first resume.
    unwritten_args: Vec<Val>,
    ty: FuncType,
    /// The store that started it.
    store: u64,
    id: u64,
    /// The store's record of parked calls, which this call leaves when it
    /// resumes or drops.
    parked: ParkedCalls,
}

// SAFETY: a started call owns its fiber (stack and body) and its value
// array; its body captures only plain addresses. A suspended guest's
// frames hold no thread-local state across the suspension (the poll path
// reads the yielder before it suspends), so it may resume on another
// thread.
unsafe impl Send for GuestCall {}

impl GuestCall {
    fn unpark(&self) {
        lock_parked(&self.parked).retain(|(id, _)| *id != self.id);
    }

    /// The id of the store that started this call.
    pub fn store_id(&self) -> u64 {
        self.store
    }

    /// Whether it has run to its end (returned or trapped).
    pub fn is_finished(&self) -> bool {
        self.fiber.is_finished()
    }

    /// Where its stack's lowest byte is now, if it has one: a stack moves
    /// when its store relocates (CARAT mode).
    pub fn stack_address(&self) -> Option<usize> {
        self.fiber.stack_range().map(|(low, _)| low)
    }

    /// Whether it is parked inside a host function that waits in its body
    /// (`Caller::yield_now`, `Caller::sleep_until`), whose frames then wait
    /// too, on a host stack the call keeps; false for a call parked at a
    /// poll or after a host function returned (`Caller::park_on_return`),
    /// which holds nothing but its own stack.
    pub fn is_parked_in_host_code(&self) -> bool {
        self.fiber.is_parked_in_host_code()
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

fn join(types: &[ValType]) -> String {
    types
        .iter()
        .map(|t| t.to_string())
        .collect::<Vec<_>>()
        .join(" ")
}

/// What entering wasm function `index` of an instance takes.
struct Entry {
    trampoline: EntryTrampoline,
    record: VMFuncRef,
}

impl StoreInner {
    fn check_args(&self, func: Func, args: &[Val]) -> Result<FuncType, ExecError> {
        if !self.has_func(func) {
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

    /// The entry trampoline and funcref record of wasm function `index`
    /// of `instance`, and a value array holding `args`.
    fn prepare(
        &self,
        instance: InstanceId,
        index: u32,
        ty: &FuncType,
        args: &[Val],
    ) -> Result<(Entry, Box<[u64]>), ExecError> {
        let instance = &self.instances[instance.0 as usize];
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
            *slot = self.slot_of(arg)?;
        }
        Ok((Entry { trampoline, record }, values))
    }

    fn trap_error(info: Box<TrapInfo>) -> ExecError {
        let backtrace = crate::code::symbolize(&info.trace);
        tracing::debug!(trap = %info.trap, frames = backtrace.frames.len(), "trap");
        match info.trap {
            Trap::HostCall => match take_pending_error().map(ExecError::from) {
                Some(ExecError::Trap(trap, _)) => ExecError::Trap(trap, backtrace),
                Some(other) => other,
                None => ExecError::Trap(Trap::HostCall, backtrace),
            },
            trap => ExecError::Trap(trap, backtrace),
        }
    }
}

impl Store {
    /// Calls a function with `args`, returning its results.
    pub fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, ExecError> {
        let inner = self.inner_mut();
        let ty = inner.check_args(func, args)?;
        let (instance, index) = match func {
            Func::Host(index) => {
                let host = inner.host_funcs[index as usize].clone();
                let store = std::ptr::NonNull::new(self.inner_ptr()).expect("a live store");
                // SAFETY: the store is live and borrowed by this call.
                return Ok(unsafe { call_from_host(&host.func, args, store) }?);
            }
            Func::Wasm { instance, index } => (instance, index),
        };
        let (entry, mut values) = inner.prepare(instance, index, &ty, args)?;
        let (home, max_wasm_stack) = (inner.home.clone(), inner.limits.max_wasm_stack);
        let stacks = inner.stacks.clone();
        let faults = StoreInner::fault_check(self.inner_ptr());
        let call = EntryCall {
            trampoline: entry.trampoline as usize,
            callee_vmctx: entry.record.vmctx as usize,
            func_ptr: entry.record.func_ptr as usize,
            values: values.as_mut_ptr() as usize,
        };
        // No reference into the store lives past this point until the
        // guest is done: JIT code reaches it through its vmctx.
        // SAFETY: the store context is live; an entry trampoline of the
        // function's type, with the record read just now (nothing moved
        // since) and a value array that fits it.
        let outcome = unsafe { run_on_fiber(&stacks, &home, faults, max_wasm_stack, call) }
            .map_err(|e| ExecError::Stack(e.to_string()))?;
        outcome.map_err(StoreInner::trap_error)?;
        Ok(self.inner().results(&ty, &values))
    }

    /// Starts a call of a wasm function that can be suspended at its polls
    /// (by [`crate::InterruptHandle::request_yield`]) and resumed with
    /// [`Store::resume_call`]. Nothing runs, and no stack is taken, until
    /// the first resume.
    pub fn start_call(&mut self, func: Func, args: &[Val]) -> Result<GuestCall, ExecError> {
        let faults = StoreInner::fault_check(self.inner_ptr());
        let inner = self.inner_mut();
        let ty = inner.check_args(func, args)?;
        let Func::Wasm { instance, index } = func else {
            return Err(ExecError::Signature(
                "a host function cannot run as a resumable call".into(),
            ));
        };
        // The arguments are checked now, but they and the function's
        // record are written at the first resume: any region (the callee's
        // vmctx, a funcref argument's) may move before then.
        let (entry, values) = inner.prepare(instance, index, &ty, args)?;
        let trampoline = entry.trampoline;
        // The callee is written in at the first resume.
        // SAFETY: the store context lives as long as the store, which alone
        // may resume the call (the store id is checked); the fiber starts
        // only once `resume_call` has set its call.
        let mut fiber = unsafe {
            Fiber::new(
                inner.stacks.clone(),
                inner.home.clone(),
                faults,
                inner.limits.max_wasm_stack,
                EntryCall::default(),
            )
        };
        fiber
            .reserve_stack()
            .map_err(|e| ExecError::Stack(e.to_string()))?;
        inner.next_call += 1;
        Ok(GuestCall {
            fiber,
            values,
            func: (instance, index),
            trampoline,
            unwritten_args: args.to_vec(),
            ty,
            store: inner.id,
            id: inner.next_call,
            parked: inner.parked.clone(),
        })
    }

    /// Runs a started call until it returns, traps or parks. A call of
    /// another store is refused, changing nothing; so is a call that has
    /// already ended.
    pub fn resume_call(&mut self, call: &mut GuestCall) -> Result<CallProgress, ExecError> {
        if call.store != self.inner().id {
            return Err(ExecError::ForeignCall);
        }
        if call.fiber.is_finished() {
            return Err(ExecError::Signature("the call has already ended".into()));
        }
        if !call.fiber.is_started() {
            // The stack first: a call that finds none fails with nothing
            // consumed, and may be resumed again.
            call.fiber
                .ensure_stack()
                .map_err(|e| ExecError::Stack(e.to_string()))?;
            let inner = self.inner();
            let (instance, index) = call.func;
            // SAFETY: the record lies inside a live vmctx.
            let record = unsafe { *inner.instances[instance.0 as usize].funcref_record(index) };
            let entry = EntryCall {
                trampoline: call.trampoline as usize,
                callee_vmctx: record.vmctx as usize,
                func_ptr: record.func_ptr as usize,
                values: call.values.as_mut_ptr() as usize,
            };
            // SAFETY: an entry trampoline of the function's type, with its
            // record as it is now and a value array that fits it, boxed in
            // the call, which outlives its fiber.
            unsafe { call.fiber.set_entry(entry) };
            for (slot, arg) in call
                .values
                .iter_mut()
                .zip(std::mem::take(&mut call.unwritten_args))
            {
                match inner.slot_of(&arg) {
                    Ok(value) => *slot = value,
                    Err(error) => return Ok(CallProgress::Done(Err(error))),
                }
            }
        }
        call.unpark();
        // A killed process runs no more guest code: a call parked between
        // polls (a yield, or after a host call that returned) ends here as
        // if at its next poll. One parked inside host code is resumed, so
        // that the host code ends it itself, dropping what it holds.
        if call.fiber.is_started()
            && !call.fiber.is_parked_in_host_code()
            && self.inner().take_kill()
        {
            call.fiber.abandon();
            return Ok(CallProgress::Done(Err(ExecError::trap(Trap::Interrupted))));
        }
        // No reference into the store lives across the resume.
        let state = call
            .fiber
            .resume()
            .map_err(|e| ExecError::Stack(e.to_string()))?;
        let inner = self.inner_mut();
        let parked = matches!(state, FiberState::Suspended | FiberState::Sleeping(_));
        if parked {
            // It left wasm through a trampoline just now: its exit record
            // is the store's last, until another call of the store runs.
            lock_parked(&call.parked).push((call.id, inner.last_exit_fp()));
            if inner
                .relocation
                .as_ref()
                .is_some_and(|r| r.policy.compact_at_park())
            {
                inner.compact(None);
            }
        }
        Ok(match state {
            FiberState::Suspended => CallProgress::Suspended,
            FiberState::Sleeping(until) => CallProgress::Sleeping(until),
            FiberState::Finished(Ok(())) => {
                CallProgress::Done(Ok(inner.results(&call.ty, &call.values)))
            }
            FiberState::Finished(Err(info)) => {
                CallProgress::Done(Err(StoreInner::trap_error(info)))
            }
        })
    }
}
