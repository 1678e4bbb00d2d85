//! Running guest code on its own stack, and leaving it on a trap.
//!
//! Every entry into wasm runs on a fiber (a corosensei coroutine) with a
//! stack of its own taken from a per-thread pool when it first runs (a
//! started call that has not run holds none). The store's stack limit
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

use crate::mappings::MapGrant;
use crate::vmctx::VMStoreContext;

/// Where a store's context is now, or `None` once the store is gone.
/// Relocation moves the context, so code that keeps using it across guest
/// execution (a fiber resuming, an interrupt handle) looks it up here each
/// time, under this lock, which relocation holds while it moves it.
pub type ContextHome = std::sync::Arc<std::sync::Mutex<Option<usize>>>;

fn context_now(home: &ContextHome) -> *mut VMStoreContext {
    home.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(0) as *mut VMStoreContext
}

/// Stack kept free below the wasm stack limit for host code.
pub const HOST_STACK_RESERVE: usize = 256 * 1024;

/// A trap as the signal handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapInfo {
    pub trap: Trap,
    pub pc: usize,
}

pub(crate) type FiberResult = Result<(), TrapInfo>;

/// What the interrupt word asks of a guest at its next poll.
pub mod interrupt {
    /// Stop: the call ends with the trap `interrupted`.
    pub const KILL: u64 = 1;
    /// Suspend a resumable call (see [`super::Fiber`]); ignored by calls
    /// that cannot be suspended.
    pub const YIELD: u64 = 2;
    /// Count a poll towards the store's relocation stress schedule.
    pub const RELOCATE: u64 = 4;
}

/// Where the running fiber's yielder is published once it starts.
type YielderCell = Cell<*const Yielder<(), ()>>;

/// How the signal handler tells a fault of the running guest's own heap
/// (which becomes a trap) from any other fault (which must crash): its
/// store answers, for an address, whether it lies in one of the store's
/// memory reservations. It reads the store without locks or allocation.
#[derive(Clone, Copy, Debug)]
pub struct FaultCheck {
    pub(crate) data: *const (),
    pub(crate) check: unsafe fn(*const (), usize) -> bool,
}

impl FaultCheck {
    /// A check that claims no address: every fault at a heap access
    /// crashes.
    pub fn none() -> Self {
        unsafe fn never(_: *const (), _: usize) -> bool {
            false
        }
        FaultCheck {
            data: std::ptr::null(),
            check: never,
        }
    }

    /// Whether `address` lies in a memory reservation of the running
    /// store.
    ///
    /// # Safety
    /// Only while the store this check was made for is live and runs a
    /// guest on this thread (so nothing changes it).
    pub(crate) unsafe fn claims(&self, address: usize) -> bool {
        // SAFETY: per the contract.
        unsafe { (self.check)(self.data, address) }
    }
}

/// The fiber running on this thread, as the signal handler needs it.
#[derive(Clone, Copy)]
pub(crate) struct ActiveFiber {
    pub(crate) handler: CoroutineTrapHandler<FiberResult>,
    pub(crate) faults: FaultCheck,
}

thread_local! {
    static ACTIVE: Cell<Option<ActiveFiber>> = const { Cell::new(None) };
    static YIELDER: Cell<*const YielderCell> = const { Cell::new(std::ptr::null()) };
    static WAKE_AT: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    static STACK_POOL: RefCell<Vec<(usize, GrantedStack)>> = const { RefCell::new(Vec::new()) };
}

/// Whether the code running now is on a fiber that can be suspended.
pub fn can_suspend() -> bool {
    let cell = YIELDER.with(|y| y.get());
    // SAFETY: as in `suspend_current`.
    !cell.is_null() && unsafe { !(*cell).get().is_null() }
}

/// Suspends the running fiber until `deadline`: its scheduler may run
/// others meanwhile. Returns false (without waiting) if the fiber cannot be
/// suspended. Host functions reach this through `Caller::sleep_until`,
/// whose `&mut self` proves they hold no view of guest memory across it;
/// they must hold no locks or thread-bound values either.
pub(crate) fn sleep_until(deadline: std::time::Instant) -> bool {
    if !can_suspend() {
        return false;
    }
    WAKE_AT.with(|w| w.set(Some(deadline)));
    suspend_current()
}

/// Suspends the running fiber if it is resumable; returns whether it did
/// (and has been resumed since). Called from the poll slow path.
pub(crate) fn suspend_current() -> bool {
    let cell = YIELDER.with(|y| y.get());
    if cell.is_null() {
        return false;
    }
    // SAFETY: a non-null YIELDER points at the cell of the fiber running on
    // this thread, set by `Fiber::resume` for the duration of the resume;
    // the yielder it holds belongs to that fiber's coroutine, on whose
    // stack we are now.
    unsafe {
        let yielder = (*cell).get();
        if yielder.is_null() {
            return false;
        }
        (*yielder).suspend(());
    }
    true
}

/// The innermost fiber running on this thread.
pub(crate) fn active_fiber() -> Option<ActiveFiber> {
    ACTIVE.with(|a| a.get())
}

/// Most stacks kept per thread for reuse.
const POOL_LIMIT: usize = 16;

/// Mappings one stack takes: its usable part and its guard page.
const MAPPINGS_PER_STACK: usize = 2;

/// A fiber stack with the mappings it holds.
type GrantedStack = (DefaultStack, MapGrant);

fn take_stack(size: usize) -> std::io::Result<GrantedStack> {
    let pooled = STACK_POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|(s, _)| *s == size)?;
        Some(pool.swap_remove(i).1)
    });
    let stack = match pooled {
        Some(stack) => stack,
        None => {
            let grant =
                crate::mappings::acquire(MAPPINGS_PER_STACK).map_err(std::io::Error::other)?;
            (DefaultStack::new(size)?, grant)
        }
    };
    forget_abandoned_frames(&stack.0);
    Ok(stack)
}

/// Under AddressSanitizer, clears the marks its instrumented frames left on
/// `stack`. A fiber that trapped abandoned its frames without returning
/// through them, so the redzones they marked stay marked, and the next
/// fiber on this stack (or on a fresh one mapped where an old stack was)
/// would be reported as overflowing them. ASan builds set `--cfg
/// carat_asan` (see README.md); other builds compile this to nothing.
/// (Found by running the tests under ASan.)
fn forget_abandoned_frames(stack: &DefaultStack) {
    #[cfg(carat_asan)]
    {
        unsafe extern "C" {
            fn __asan_unpoison_memory_region(address: *const libc::c_void, size: usize);
        }
        let (low, high) = (stack.limit().get(), stack.base().get());
        // SAFETY: ASan's own call, on this stack's usable memory, which no
        // frame uses now (no fiber runs on it).
        unsafe { __asan_unpoison_memory_region(low as *const libc::c_void, high - low) };
    }
    #[cfg(not(carat_asan))]
    let _ = stack;
}

fn return_stack(size: usize, stack: GrantedStack) {
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
/// `home` must hold the live store context of the code `f` runs, and
/// `faults` answer for its live store. `f` must leave the fiber only by returning or through a trap raised by
/// JIT code; it must not hold values with destructors across JIT code.
pub unsafe fn run_on_fiber(
    home: &ContextHome,
    faults: FaultCheck,
    max_wasm_stack: usize,
    f: impl FnOnce(),
) -> Result<FiberResult, std::io::Error> {
    let size = max_wasm_stack + HOST_STACK_RESERVE;
    let (stack, grant) = take_stack(size)?;
    let limit = stack.limit().get() + HOST_STACK_RESERVE;
    // SAFETY: the coroutine is resumed to completion below, before any data
    // `f` borrows can go away; it never suspends (no yielder is published).
    let mut coroutine = unsafe {
        Coroutine::with_stack_unchecked(stack, move |_: &Yielder<(), ()>, ()| {
            f();
            Ok(())
        })
    };
    // SAFETY: the caller guarantees the context is live.
    let result =
        unsafe { resume_as_current(&mut coroutine, home, faults, limit, std::ptr::null()) };
    let result = match result {
        CoroutineResult::Return(result) => result,
        CoroutineResult::Yield(()) => unreachable!("guest fibers never yield"),
    };
    return_stack(size, (coroutine.into_stack(), grant));
    Ok(result)
}

/// Resumes `coroutine` as this thread's running fiber: the store's stack
/// limit set for its stack, its trap handler active and `yielder` (null for
/// a call that cannot be suspended) published; all restored afterwards, so
/// fibers nest.
///
/// The context is looked up again after the coroutine returns: the guest
/// may have been relocated meanwhile.
///
/// # Safety
/// `home` must hold the live store context of the code the coroutine runs.
unsafe fn resume_as_current(
    coroutine: &mut Coroutine<(), (), FiberResult, DefaultStack>,
    home: &ContextHome,
    faults: FaultCheck,
    limit: usize,
    yielder: *const YielderCell,
) -> CoroutineResult<(), FiberResult> {
    // SAFETY: per the contract.
    let previous_limit = unsafe { std::mem::replace(&mut (*context_now(home)).stack_limit, limit) };
    let active = ActiveFiber {
        handler: coroutine.trap_handler(),
        faults,
    };
    let previous = ACTIVE.with(|a| a.replace(Some(active)));
    let previous_yielder = YIELDER.with(|y| y.replace(yielder));
    let result = coroutine.resume(());
    YIELDER.with(|y| y.set(previous_yielder));
    ACTIVE.with(|a| a.set(previous));
    // SAFETY: as above; the store outlives the calls it runs.
    unsafe { (*context_now(home)).stack_limit = previous_limit };
    result
}

/// A guest call that can be suspended at a poll and resumed later: the
/// building block of preemptive scheduling. A scheduler asks it to stop
/// by writing [`interrupt::YIELD`] to the store's interrupt word.
pub struct Fiber {
    /// What the fiber runs, until its first resume gives it a stack: a
    /// call started and not yet run holds no stack (a launch spawns its
    /// processes long before each first runs, and most finish without
    /// ever parking, so their stacks are reused at once).
    body: Option<Box<dyn FnOnce() + 'static>>,
    /// From the first resume until the fiber drops.
    coroutine: Option<Coroutine<(), (), FiberResult, DefaultStack>>,
    /// The mappings its stack holds.
    grant: Option<MapGrant>,
    yielder: Box<YielderCell>,
    home: ContextHome,
    faults: FaultCheck,
    limit: usize,
    size: usize,
}

/// Where a resumed fiber stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum FiberState {
    Finished(FiberResult),
    /// Parked at a poll; runnable at once.
    Suspended,
    /// Parked in a host call that waits until then (see `sleep_until`).
    Sleeping(std::time::Instant),
}

impl Fiber {
    /// Prepares `body` to run on a fiber of its own.
    ///
    /// # Safety
    /// The store context in `home` must stay live while the fiber does,
    /// the store `faults` answers for must be live at every resume, and
    /// `body` must own everything it uses (it may be suspended and never
    /// resumed).
    pub unsafe fn new(
        home: ContextHome,
        faults: FaultCheck,
        max_wasm_stack: usize,
        body: impl FnOnce() + 'static,
    ) -> Fiber {
        Fiber {
            body: Some(Box::new(body)),
            coroutine: None,
            grant: None,
            yielder: Box::new(Cell::new(std::ptr::null())),
            home,
            faults,
            limit: 0,
            size: max_wasm_stack + HOST_STACK_RESERVE,
        }
    }

    /// Gives the body a stack and a coroutine, if it has none yet: done by
    /// the first resume, or before it by a caller that must know the
    /// resume will not fail for want of a stack.
    pub fn ensure_stack(&mut self) -> std::io::Result<()> {
        if self.coroutine.is_some() {
            return Ok(());
        }
        let (stack, grant) = take_stack(self.size)?;
        let body = self.body.take().expect("started once");
        self.limit = stack.limit().get() + HOST_STACK_RESERVE;
        let publish: *const YielderCell = &*self.yielder;
        self.coroutine = Some(Coroutine::with_stack(
            stack,
            move |y: &Yielder<(), ()>, ()| {
                // SAFETY: the cell is boxed in the Fiber, which outlives its
                // coroutine.
                unsafe { (*publish).set(y) };
                body();
                Ok(())
            },
        ));
        self.grant = Some(grant);
        Ok(())
    }

    /// Runs the fiber until it finishes or suspends at a poll. Fails, and
    /// runs nothing, when the first resume finds no stack for it.
    pub fn resume(&mut self) -> std::io::Result<FiberState> {
        self.ensure_stack()?;
        let coroutine = self.coroutine.as_mut().expect("started above");
        // SAFETY: `new`'s contract keeps the store context live.
        let result = unsafe {
            resume_as_current(
                coroutine,
                &self.home,
                self.faults,
                self.limit,
                &*self.yielder,
            )
        };
        let wake_at = WAKE_AT.with(|w| w.take());
        Ok(match (result, wake_at) {
            (CoroutineResult::Return(result), _) => FiberState::Finished(result),
            (CoroutineResult::Yield(()), Some(deadline)) => FiberState::Sleeping(deadline),
            (CoroutineResult::Yield(()), None) => FiberState::Suspended,
        })
    }

    /// Whether it has been resumed at least once.
    pub fn is_started(&self) -> bool {
        self.coroutine.as_ref().is_some_and(|c| c.started())
    }

    pub fn is_finished(&self) -> bool {
        self.body.is_none() && self.coroutine.as_ref().is_none_or(|c| c.done())
    }
}

impl Drop for Fiber {
    fn drop(&mut self) {
        // A body that never ran owns plain addresses only: dropping it is
        // all there is to do.
        let (Some(mut coroutine), Some(grant)) = (self.coroutine.take(), self.grant.take()) else {
            return;
        };
        if !coroutine.started() {
            // Given a stack but never run (its first resume cannot fail
            // after `start`, but the coroutine is dropped cleanly anyway).
            coroutine.force_unwind();
        } else if !coroutine.done() {
            // SAFETY: a suspended guest's stack holds JIT frames (nothing to
            // drop) and the host frames of a poll or host call, which own
            // nothing that must be dropped; the body's captures leak rather
            // than run destructors on a stack that is being discarded.
            unsafe { coroutine.force_reset() };
        }
        return_stack(self.size, (coroutine.into_stack(), grant));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> ContextHome {
        let context = Box::leak(Box::new(VMStoreContext {
            interrupt: Default::default(),
            stack_limit: 0,
            fuel: 0,
            last_exit_fp: 0,
            speculation_sink: 0,
            result_spill: 0,
        }));
        std::sync::Arc::new(std::sync::Mutex::new(Some(context as *mut _ as usize)))
    }

    #[test]
    fn a_fiber_that_never_ran_drops_cleanly() {
        let ran = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        // SAFETY: the context is leaked, so it outlives the fiber; the body
        // owns what it uses.
        let fiber = unsafe {
            Fiber::new(home(), FaultCheck::none(), 64 * 1024, move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst)
            })
        };
        drop(fiber);
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[test]
    fn a_finished_fiber_drops_cleanly() {
        // SAFETY: as above.
        let mut fiber = unsafe { Fiber::new(home(), FaultCheck::none(), 64 * 1024, || {}) };
        assert!(!fiber.is_finished() && !fiber.is_started());
        assert_eq!(fiber.resume().unwrap(), FiberState::Finished(Ok(())));
        assert!(fiber.is_finished());
        drop(fiber);
    }
}
