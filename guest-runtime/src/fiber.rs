//! Running guest code on its own stack, and leaving it on a trap.
//!
//! Every entry into wasm runs on a fiber: a stack of its own, taken from a
//! per-thread pool when the fiber first runs (a started call that has not
//! run holds none), entered and left through `stack_switch`. The store's
//! stack limit is set to that stack's lowest usable address plus a small
//! reserve for what runs there besides wasm frames ([`HOST_STACK_RESERVE`]),
//! so the prologue check stops wasm recursion before the guard page. Host
//! code (libcalls, host functions) runs on a host stack instead: this
//! thread's, or one the fiber keeps while it is parked inside host code
//! (see `stack_switch`).
//!
//! A fiber's saved state lives off its stack, in a [`Switches`] record on
//! the heap: the stack pointer of whichever side is switched out, and the
//! trap that ended it. Its stack holds frames only.
//!
//! A trap never unwinds: the signal handler (see `signals`) finds the
//! fiber whose stack the faulting code runs on, records the trap in its
//! `Switches`, and makes the thread continue at the switch's trap landing,
//! which returns to the fiber's resumer as if the fiber had switched back.
//! The fiber is then finished and its stack goes back to the pool. JIT
//! frames hold no destructors, and host frames never sit between a trap
//! and its fiber, because host code reports failure by return value and
//! the JIT code that called it raises the trap.

use std::cell::{Cell, RefCell};

use carat_jit::Trap;

use crate::mappings::MapGrant;
pub use crate::stack_switch::EntryCall;
use crate::stack_switch::{self, SwitchRecord, status};
use crate::vmctx::VMStoreContext;

/// Where a store's context is now, or `None` once the store is gone.
/// Relocation moves the context, so code that keeps using it across guest
/// execution (a fiber resuming, an interrupt handle) looks it up here each
/// time, under this lock, which relocation holds while it moves it.
pub type ContextHome = std::sync::Arc<std::sync::Mutex<Option<usize>>>;

fn context_now(home: &ContextHome) -> *mut VMStoreContext {
    home.lock().unwrap_or_else(|e| e.into_inner()).unwrap_or(0) as *mut VMStoreContext
}

/// Stack kept free below the wasm stack limit for what runs on a guest
/// stack besides wasm frames, none of it recursive: trampolines (the
/// largest frame is a preserve-all trampoline's, under 512 bytes) and the
/// bridge's frame record, the float helpers JIT code calls directly, a
/// fiber's first frame, and the signal handler on a thread without an
/// alternate signal stack. Host code runs on a host stack (see
/// `stack_switch`), so none of it is counted here.
pub const HOST_STACK_RESERVE: usize = 32 * 1024;

/// Size of a host stack: where the host code of resumable fibers runs
/// (see `stack_switch`). Only the pages host code touches are memory.
const HOST_STACK_SIZE: usize = 2 << 20;

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

/// A fiber's saved state, kept off its stack (see `stack_switch`): on the
/// heap, at an address that does not change while the fiber lives.
#[repr(C)]
#[derive(Default)]
struct Switches {
    /// What the assembly and the trampolines read, the call the fiber
    /// makes included; first, so that the record's address is the
    /// `Switches`'s.
    record: SwitchRecord,
    /// Written by the signal handler when a trap ends the fiber.
    trap: Option<TrapInfo>,
}

/// The fiber running on this thread, as the signal handler needs it.
#[derive(Clone, Copy)]
pub(crate) struct ActiveFiber {
    /// Its stack's usable range.
    low: usize,
    high: usize,
    switches: *mut Switches,
    pub(crate) faults: FaultCheck,
}

impl ActiveFiber {
    /// Whether a stack pointer lies on this fiber's stack.
    pub(crate) fn owns_stack_pointer(&self, sp: usize) -> bool {
        (self.low..self.high).contains(&sp)
    }

    /// Ends the fiber with `trap`: records it and gives the registers that
    /// make the thread continue in the fiber's resumer.
    ///
    /// # Safety
    /// Only from the signal handler, for a fault on this fiber's stack,
    /// which is running (so its resumer waits in a switch).
    pub(crate) unsafe fn land_trap(&self, trap: TrapInfo) -> stack_switch::Landing {
        // SAFETY: the record lives while its fiber runs; the fiber's own
        // code, abandoned here, never reads `trap`.
        unsafe {
            (*self.switches).trap = Some(trap);
            stack_switch::trap_landing(&(*self.switches).record.resumer_sp, status::TRAPPED)
        }
    }
}

thread_local! {
    static ACTIVE: Cell<Option<ActiveFiber>> = const { Cell::new(None) };
    /// The running fiber when it can be suspended, or null.
    static SUSPENDABLE: Cell<*mut Switches> = const { Cell::new(std::ptr::null_mut()) };
    static WAKE_AT: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    static STACK_POOL: RefCell<Vec<(usize, GrantedStack)>> = const { RefCell::new(Vec::new()) };
    /// The stack this thread runs the host code of its resumable fibers
    /// on, made at its first use (see `stack_switch`).
    static HOST_STACK: RefCell<Option<GrantedStack>> = const { RefCell::new(None) };
}

/// Whether the code running now is on a fiber that can be suspended.
pub fn can_suspend() -> bool {
    !SUSPENDABLE.with(|s| s.get()).is_null()
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

/// Says when a fiber that is about to park (its trampoline does it) should
/// wake: `None` for a yield.
pub(crate) fn set_wake_at(deadline: Option<std::time::Instant>) {
    WAKE_AT.with(|w| w.set(deadline));
}

/// Suspends the running fiber if it is resumable; returns whether it did
/// (and has been resumed since, perhaps on another thread: nothing here
/// touches thread-local state after the switch). Called from the poll
/// slow path and host functions.
pub(crate) fn suspend_current() -> bool {
    let switches = SUSPENDABLE.with(|s| s.get());
    if switches.is_null() {
        return false;
    }
    // SAFETY: a non-null SUSPENDABLE is the record of the fiber running on
    // this thread (set by `run` for the duration of its switch), whose
    // resumer waits in that switch; we are on the fiber's host stack,
    // which the fiber keeps while it is parked (see `Fiber::resume`).
    unsafe {
        stack_switch::switch(
            &mut (*switches).record.fiber_sp,
            (*switches).record.resumer_sp,
            status::SUSPENDED,
        )
    };
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

/// One mapping for a fiber stack: its lowest page is a guard (no access),
/// the rest the stack.
struct FiberStack {
    mapping: *mut libc::c_void,
    len: usize,
}

// SAFETY: a mapping owned by value; nothing else refers to it.
unsafe impl Send for FiberStack {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

impl FiberStack {
    /// A stack of at least `usable` bytes above a guard page.
    fn new(usable: usize) -> std::io::Result<FiberStack> {
        let page = page_size();
        let len = usable.next_multiple_of(page) + page;
        // SAFETY: a new private anonymous mapping replaces nothing.
        let mapping = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE | libc::MAP_STACK,
                -1,
                0,
            )
        };
        if mapping == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let stack = FiberStack { mapping, len };
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// Lowest usable address.
    fn low(&self) -> usize {
        self.mapping as usize + page_size()
    }

    /// One past the highest usable address; 16-aligned.
    fn high(&self) -> usize {
        self.mapping as usize + self.len
    }
}

impl Drop for FiberStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this owns, on which nothing
        // runs any more.
        unsafe { libc::munmap(self.mapping, self.len) };
    }
}

/// A fiber stack with the mappings it holds.
type GrantedStack = (FiberStack, MapGrant);

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
            (FiberStack::new(size)?, grant)
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
fn forget_abandoned_frames(stack: &FiberStack) {
    #[cfg(carat_asan)]
    {
        unsafe extern "C" {
            fn __asan_unpoison_memory_region(address: *const libc::c_void, size: usize);
        }
        let (low, high) = (stack.low(), stack.high());
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

/// Makes `entry` on a fiber whose wasm frames may use `max_wasm_stack`
/// bytes. Returns the trap that ended it, if one did.
///
/// # Safety
/// `home` must hold the live store context of the code `entry` runs, and
/// `faults` answer for its live store; `entry` must be an entry
/// trampoline's call with arguments that fit it (see [`EntryCall`]).
pub unsafe fn run_on_fiber(
    home: &ContextHome,
    faults: FaultCheck,
    max_wasm_stack: usize,
    entry: EntryCall,
) -> Result<FiberResult, std::io::Error> {
    let size = max_wasm_stack + HOST_STACK_RESERVE;
    let (stack, grant) = take_stack(size)?;
    let mut switches = Box::new(Switches::default());
    switches.record.entry = entry;
    // SAFETY: the stack is ours and unused; `switches` outlives the fiber,
    // which is run to its end below and never resumed after. Its host code
    // runs below the resumer's stack pointer (`host_top` 0): it cannot
    // park, so nothing of it outlives the call.
    let status = unsafe {
        switches.record.fiber_sp = stack_switch::prepare(stack.high(), &switches.record);
        run(&mut switches, &stack, home, faults, None)
    };
    let result = match status {
        status::FINISHED => Ok(()),
        status::TRAPPED => Err(switches.trap.take().expect("a trap records itself")),
        other => unreachable!("a call that cannot be suspended switched back with {other}"),
    };
    return_stack(size, (stack, grant));
    Ok(result)
}

/// Switches to the fiber of `switches`, on `stack`, as this thread's
/// running fiber: the store's stack limit set for its stack, the store
/// context and the signal handler told about it and, if it has a host
/// stack (`host_top`), suspensions allowed; all restored afterwards, so
/// fibers nest. Returns how the fiber switched back (a
/// `stack_switch::status`).
///
/// The context is looked up again after the fiber switches back: the
/// guest may have been relocated meanwhile.
///
/// # Safety
/// `home` must hold the live store context of the code the fiber runs;
/// `switches.fiber_sp` must be a stack pointer saved on `stack` (or
/// prepared for it) and `stack` must stay mapped while the fiber lives.
unsafe fn run(
    switches: &mut Switches,
    stack: &FiberStack,
    home: &ContextHome,
    faults: FaultCheck,
    host_top: Option<usize>,
) -> usize {
    let limit = stack.low() + HOST_STACK_RESERVE;
    switches.record.host_top = host_top.unwrap_or(0);
    let switches: *mut Switches = switches;
    let context = context_now(home);
    // SAFETY: per the contract.
    let (previous_limit, previous_fiber) = unsafe {
        (
            std::mem::replace(&mut (*context).stack_limit, limit),
            std::mem::replace(&mut (*context).fiber, switches as usize),
        )
    };
    let suspendable = host_top.is_some();
    let active = ActiveFiber {
        low: stack.low(),
        high: stack.high(),
        switches,
        faults,
    };
    let previous = ACTIVE.with(|a| a.replace(Some(active)));
    let previous_suspendable = SUSPENDABLE.with(|s| {
        s.replace(if suspendable {
            switches
        } else {
            std::ptr::null_mut()
        })
    });
    // SAFETY: per the contract; the record is live and our `resumer_sp`
    // slot is in it.
    let status = unsafe {
        stack_switch::switch(
            &mut (*switches).record.resumer_sp,
            (*switches).record.fiber_sp,
            status::RESUMED,
        )
    };
    SUSPENDABLE.with(|s| s.set(previous_suspendable));
    ACTIVE.with(|a| a.set(previous));
    // SAFETY: as above; the store outlives the calls it runs, and its
    // context may have moved meanwhile.
    unsafe {
        let context = context_now(home);
        (*context).stack_limit = previous_limit;
        (*context).fiber = previous_fiber;
    }
    status
}

/// A guest call that can be suspended at a poll and resumed later: the
/// building block of preemptive scheduling. A scheduler asks it to stop
/// by writing [`interrupt::YIELD`] to the store's interrupt word.
pub struct Fiber {
    /// Its saved state and the call it makes.
    switches: Box<Switches>,
    /// From the first resume until the fiber ends: a call started and not
    /// yet run holds no stack (a launch spawns its processes long before
    /// each first runs, and most finish without ever parking, so their
    /// stacks are reused at once).
    stack: Option<GrantedStack>,
    /// A host stack of its own: while it is parked inside host code (which
    /// then stays on that stack), or while it runs on a thread whose host
    /// stack is busy below it (a fiber resumed by host code).
    host_stack: Option<GrantedStack>,
    started: bool,
    finished: bool,
    home: ContextHome,
    faults: FaultCheck,
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
    /// Prepares `entry` to run on a fiber of its own.
    ///
    /// # Safety
    /// The store context in `home` must stay live while the fiber does,
    /// the store `faults` answers for must be live at every resume, and
    /// `entry` must be an entry trampoline's call with arguments that fit
    /// it and stay valid while the fiber lives (see [`Fiber::set_entry`]).
    pub unsafe fn new(
        home: ContextHome,
        faults: FaultCheck,
        max_wasm_stack: usize,
        entry: EntryCall,
    ) -> Fiber {
        let mut switches = Box::new(Switches::default());
        switches.record.entry = entry;
        Fiber {
            switches,
            stack: None,
            host_stack: None,
            started: false,
            finished: false,
            home,
            faults,
            size: max_wasm_stack + HOST_STACK_RESERVE,
        }
    }

    /// Changes the call a fiber that has not started will make (a call's
    /// arguments and callee are settled at its first resume: regions may
    /// move before then).
    ///
    /// # Safety
    /// As for `new`'s `entry`.
    pub unsafe fn set_entry(&mut self, entry: EntryCall) {
        assert!(!self.started, "a started fiber's call is made");
        self.switches.record.entry = entry;
    }

    /// Gives the fiber a stack, if it has none yet: done by the first
    /// resume, or before it by a caller that must know the resume will not
    /// fail for want of a stack.
    pub fn ensure_stack(&mut self) -> std::io::Result<()> {
        if self.stack.is_some() || self.started {
            return Ok(());
        }
        let (stack, grant) = take_stack(self.size)?;
        // SAFETY: the stack is ours and unused; the record is boxed in the
        // Fiber, which outlives the stack's use.
        self.switches.record.fiber_sp =
            unsafe { stack_switch::prepare(stack.high(), &self.switches.record) };
        self.stack = Some((stack, grant));
        Ok(())
    }

    /// Runs the fiber until it finishes or suspends at a poll. Fails, and
    /// runs nothing, when the first resume finds no stack for it.
    pub fn resume(&mut self) -> std::io::Result<FiberState> {
        assert!(!self.finished, "a finished fiber is never resumed");
        self.ensure_stack()?;
        let host_top = self.host_top()?;
        self.started = true;
        let stack = &self.stack.as_ref().expect("given above").0;
        // SAFETY: `new`'s contract keeps the store context live; the saved
        // stack pointer is the one `ensure_stack` prepared or the last
        // suspension saved, on this stack or on its host stack.
        let status = unsafe {
            run(
                &mut self.switches,
                stack,
                &self.home,
                self.faults,
                Some(host_top),
            )
        };
        let wake_at = WAKE_AT.with(|w| w.take());
        let parked_in_host_code = self.switches.record.on_host != 0;
        if status == status::SUSPENDED && parked_in_host_code {
            // Its host frames stay on the host stack it ran on: it keeps
            // that stack, and this thread makes another when it next needs
            // one.
            if self.host_stack.is_none() {
                self.host_stack = HOST_STACK.with(|h| h.borrow_mut().take());
            }
        } else if let Some(host_stack) = self.host_stack.take() {
            return_stack(HOST_STACK_SIZE, host_stack);
        }
        let state = match status {
            status::SUSPENDED => {
                return Ok(wake_at.map_or(FiberState::Suspended, FiberState::Sleeping));
            }
            status::FINISHED => FiberState::Finished(Ok(())),
            status::TRAPPED => FiberState::Finished(Err(self
                .switches
                .trap
                .take()
                .expect("a trap records itself"))),
            other => unreachable!("a fiber switched back with {other}"),
        };
        // Ended: the stack goes back to the pool at once.
        self.finished = true;
        if let Some(stack) = self.stack.take() {
            return_stack(self.size, stack);
        }
        Ok(state)
    }

    /// The top of the stack its host code runs on during the next resume:
    /// its own, if it has one; else this thread's, unless that is busy
    /// (this resume runs in host code on it), when it takes one of its own.
    fn host_top(&mut self) -> std::io::Result<usize> {
        if let Some((stack, _)) = &self.host_stack {
            return Ok(stack.high());
        }
        let here = &self as *const _ as usize;
        let thread_stack = HOST_STACK.with(|h| -> std::io::Result<Option<usize>> {
            let mut h = h.borrow_mut();
            if h.is_none() {
                *h = Some(take_stack(HOST_STACK_SIZE)?);
            }
            let (stack, _) = h.as_ref().expect("made above");
            let busy = (stack.low()..stack.high()).contains(&here);
            Ok((!busy).then(|| stack.high()))
        })?;
        match thread_stack {
            Some(top) => Ok(top),
            None => {
                let own = take_stack(HOST_STACK_SIZE)?;
                let top = own.0.high();
                self.host_stack = Some(own);
                Ok(top)
            }
        }
    }

    /// Whether it is parked inside host code (whose frames wait on its host
    /// stack), rather than between polls.
    pub fn is_parked_in_host_code(&self) -> bool {
        self.started && !self.finished && self.switches.record.on_host != 0
    }

    /// Ends a parked fiber without running it again: its frames are
    /// abandoned (JIT frames own nothing) and its stacks go back to the
    /// pool.
    pub fn abandon(&mut self) {
        self.finished = true;
        if let Some(stack) = self.stack.take() {
            return_stack(self.size, stack);
        }
        if let Some(host_stack) = self.host_stack.take() {
            return_stack(HOST_STACK_SIZE, host_stack);
        }
    }

    /// Whether it has been resumed at least once.
    pub fn is_started(&self) -> bool {
        self.started
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

impl Drop for Fiber {
    fn drop(&mut self) {
        // A suspended guest's stack holds JIT frames (nothing to drop); a
        // guest parked inside host code also has that code's frames on its
        // host stack, which are abandoned without running their
        // destructors.
        self.abandon();
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
            fiber: 0,
        }));
        std::sync::Arc::new(std::sync::Mutex::new(Some(context as *mut _ as usize)))
    }

    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

    /// An "entry trampoline" that counts its calls and checks its
    /// arguments.
    extern "C" fn count(vmctx: usize, caller: usize, func: usize, values: usize) {
        assert_eq!((vmctx, caller, func, values), (1, 0, 2, 3));
        CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn counting() -> EntryCall {
        EntryCall {
            trampoline: count as *const () as usize,
            callee_vmctx: 1,
            func_ptr: 2,
            values: 3,
        }
    }

    #[test]
    fn fibers_make_their_call_once_and_drop_cleanly() {
        let before = CALLS.load(std::sync::atomic::Ordering::SeqCst);
        // SAFETY: the context is leaked, so it outlives the fiber; the
        // entry needs nothing.
        let never_run = unsafe { Fiber::new(home(), FaultCheck::none(), 64 * 1024, counting()) };
        drop(never_run);
        // SAFETY: as above.
        let mut fiber = unsafe { Fiber::new(home(), FaultCheck::none(), 64 * 1024, counting()) };
        assert!(!fiber.is_finished() && !fiber.is_started());
        assert_eq!(fiber.resume().unwrap(), FiberState::Finished(Ok(())));
        assert!(fiber.is_finished());
        drop(fiber);
        // SAFETY: as above.
        let outcome = unsafe { run_on_fiber(&home(), FaultCheck::none(), 64 * 1024, counting()) };
        assert_eq!(outcome.unwrap(), Ok(()));
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), before + 2);
    }
}
