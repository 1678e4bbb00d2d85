//! Running guest code on its own stack, and leaving it on a trap.
//!
//! Every entry into wasm runs on a fiber (a corosensei coroutine) with a
//! stack of its own taken from a per-thread pool. The store's stack limit
//! is set to that stack's lowest usable address plus a reserve for host
//! code (libcalls, host functions, the signal handler), so the prologue
//! check stops wasm recursion well before the guard page.
//!
//! A trap never unwinds: the signal handler (see `signals`) finds the
//! fiber whose stack the faulting code runs on and rewrites the faulting
//! context so that execution continues at a function that returns the trap
//! as the coroutine's result. The coroutine is then finished and its stack
//! goes back to the pool. JIT frames hold no destructors, and host frames
//! never sit between a trap and its fiber, because host code reports
//! failure by return value and the JIT code that called it raises the trap.

use std::cell::{Cell, RefCell};

use corosensei::stack::{DefaultStack, Stack};
use corosensei::trap::CoroutineTrapHandler;
use corosensei::{Coroutine, CoroutineResult, Yielder};

use carat_jit::Trap;

use crate::vmctx::VMStoreContext;

/// Stack kept free below the wasm stack limit for host code.
pub const HOST_STACK_RESERVE: usize = 256 * 1024;

/// A trap as the signal handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapInfo {
    pub trap: Trap,
    pub pc: usize,
}

pub(crate) type FiberResult = Result<(), TrapInfo>;

thread_local! {
    static ACTIVE: Cell<Option<CoroutineTrapHandler<FiberResult>>> = const { Cell::new(None) };
    static STACK_POOL: RefCell<Vec<(usize, DefaultStack)>> = const { RefCell::new(Vec::new()) };
}

/// The trap handler of the innermost fiber running on this thread.
pub(crate) fn active_fiber() -> Option<CoroutineTrapHandler<FiberResult>> {
    ACTIVE.with(|a| a.get())
}

/// Most stacks kept per thread for reuse.
const POOL_LIMIT: usize = 16;

fn take_stack(size: usize) -> std::io::Result<DefaultStack> {
    let pooled = STACK_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|(s, _)| *s == size)?;
        Some(pool.swap_remove(i).1)
    });
    match pooled {
        Some(stack) => Ok(stack),
        None => DefaultStack::new(size),
    }
}

fn return_stack(size: usize, stack: DefaultStack) {
    STACK_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_LIMIT {
            pool.push((size, stack));
        }
    });
}

/// Runs `f` on a fiber whose wasm frames may use `max_wasm_stack` bytes.
/// Returns the trap that ended it, if one did.
///
/// # Safety
/// `store_ctx` must point to the live store context of the code `f` runs.
/// `f` must leave the fiber only by returning or through a trap raised by
/// JIT code; it must not hold values with destructors across JIT code.
pub unsafe fn run_on_fiber(
    store_ctx: *mut VMStoreContext,
    max_wasm_stack: usize,
    f: impl FnOnce(),
) -> Result<FiberResult, std::io::Error> {
    let size = max_wasm_stack + HOST_STACK_RESERVE;
    let stack = take_stack(size)?;
    let limit = stack.limit().get() + HOST_STACK_RESERVE;
    // SAFETY: the caller guarantees `store_ctx` is live.
    let previous_limit = unsafe { std::mem::replace(&mut (*store_ctx).stack_limit, limit) };
    // SAFETY: the coroutine is resumed to completion below, before any data
    // `f` borrows can go away; it never suspends.
    let mut coroutine = unsafe {
        Coroutine::with_stack_unchecked(stack, move |_: &Yielder<(), ()>, ()| {
            f();
            Ok(())
        })
    };
    let previous = ACTIVE.with(|a| a.replace(Some(coroutine.trap_handler())));
    let result = coroutine.resume(());
    ACTIVE.with(|a| a.set(previous));
    // SAFETY: as above.
    unsafe { (*store_ctx).stack_limit = previous_limit };
    let result = match result {
        CoroutineResult::Return(result) => result,
        CoroutineResult::Yield(()) => unreachable!("guest fibers never yield"),
    };
    return_stack(size, coroutine.into_stack());
    Ok(result)
}
