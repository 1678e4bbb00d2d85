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
use std::sync::Arc;

use carat_jit::Trap;

pub use crate::stack_switch::EntryCall;
use crate::stack_switch::{self, SwitchRecord, status};
use crate::stacks::{self, StackMemory, Stacks};
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

/// Bytes a stack that can grow starts with for wasm frames, besides its
/// reserve and the store's largest frame; it doubles, by moving, each time
/// a function entry finds it short, up to its limit (see `stacks`).
pub const INITIAL_WASM_STACK: usize = 16 * 1024;

/// Size of a host stack: where the host code of resumable fibers runs
/// (see `stack_switch`). Only the pages host code touches are memory.
const HOST_STACK_SIZE: usize = 2 << 20;

/// A trap as the signal handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapInfo {
    pub trap: Trap,
    pub pc: usize,
    /// The wasm frames it happened in, as addresses (see `code`).
    pub trace: crate::code::TrapTrace,
}

/// A trap is boxed once out of the signal handler (which records it in a
/// thread-local slot, allocating nothing): its trace is large.
pub(crate) type FiberResult = Result<(), Box<TrapInfo>>;

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
pub(crate) struct Switches {
    /// What the assembly and the trampolines read, the call the fiber
    /// makes included; first, so that the record's address is the
    /// `Switches`'s.
    pub(crate) record: SwitchRecord,
    /// Its stack, from its first run until it ends.
    pub(crate) stack: Option<StackMemory>,
    /// The stack's usable range as plain words, for the signal handler;
    /// kept current when the stack moves.
    pub(crate) range: (usize, usize),
    /// The most bytes its stack may grow to.
    pub(crate) max_len: usize,
}

/// The bytes a fiber's stack starts with and the most it may grow to, for
/// wasm frames that may use `max_wasm_stack` bytes, in the store of
/// `home` (whose largest frame every stack keeps room for).
fn stack_sizes(home: &ContextHome, max_wasm_stack: usize) -> (usize, usize) {
    // SAFETY: callers hold a live store context in `home`.
    let margin = unsafe { (*context_now(home)).stack_margin };
    let max = max_wasm_stack + HOST_STACK_RESERVE + margin;
    let initial = (INITIAL_WASM_STACK + HOST_STACK_RESERVE + margin).min(max);
    (initial, max)
}

impl Switches {
    /// The stack limit and soft stack limit for this fiber's stack (see
    /// `abi::store_context::STACK_SOFT_LIMIT`): a stack that can grow keeps
    /// the store's largest frame free above the limit.
    pub(crate) fn limits(&self, context: &VMStoreContext) -> (usize, usize) {
        let limit = self.range.0 + HOST_STACK_RESERVE;
        match self.stack {
            Some(StackMemory::Arena(_)) => (limit, limit + context.stack_margin),
            _ => (limit, limit),
        }
    }

    /// Gives the fiber `stack` and lays out its first frame there.
    fn start_on(&mut self, stack: StackMemory) {
        self.range = stack.range();
        // SAFETY: the stack is the fiber's alone and unused; the record is
        // boxed in the fiber, which outlives the stack's use.
        self.record.fiber_sp = unsafe { stack_switch::prepare(self.range.1, &self.record) };
        self.stack = Some(stack);
    }
}

/// The fiber running on this thread, as the signal handler needs it.
#[derive(Clone, Copy)]
pub(crate) struct ActiveFiber {
    switches: *mut Switches,
    pub(crate) faults: FaultCheck,
}

impl ActiveFiber {
    /// Whether a stack pointer lies on this fiber's stack.
    pub(crate) fn owns_stack_pointer(&self, sp: usize) -> bool {
        self.stack().contains(&sp)
    }

    /// The address range of this fiber's stack.
    pub(crate) fn stack(&self) -> std::ops::Range<usize> {
        // SAFETY: the record lives while its fiber runs, which it does (it
        // is this thread's active fiber); its range is plain words.
        let (low, high) = unsafe { (*self.switches).range };
        low..high
    }

    /// Ends the fiber with `trap`: records it and gives the registers that
    /// make the thread continue in the fiber's resumer.
    ///
    /// # Safety
    /// Only from the signal handler, for a fault on this fiber's stack,
    /// which is running (so its resumer waits in a switch).
    pub(crate) unsafe fn land_trap(&self, trap: TrapInfo) -> stack_switch::Landing {
        // A thread-local slot: its resumer, on this thread, takes it as
        // soon as the switch returns `TRAPPED` (see `take_landed_trap`).
        // Kept in the fiber, its 500-byte trace cost every parked
        // process that much heap. (A `const` thread-local of a `Copy`
        // type is a plain store, as `ACTIVE`'s read above is a load.)
        LANDED_TRAP.with(|slot| slot.set(Some(trap)));
        // SAFETY: the record lives while its fiber runs.
        unsafe { stack_switch::trap_landing(&(*self.switches).record.resumer_sp, status::TRAPPED) }
    }
}

/// The trap the signal handler landed on this thread, until the fiber's
/// resumer takes it.
fn take_landed_trap() -> Box<TrapInfo> {
    let trap = LANDED_TRAP.with(Cell::take);
    Box::new(trap.expect("a trap records itself"))
}

thread_local! {
    /// Written by the signal handler when a trap ends the running fiber.
    static LANDED_TRAP: Cell<Option<TrapInfo>> = const { Cell::new(None) };
    static ACTIVE: Cell<Option<ActiveFiber>> = const { Cell::new(None) };
    /// The running fiber when it can be suspended, or null.
    static SUSPENDABLE: Cell<*mut Switches> = const { Cell::new(std::ptr::null_mut()) };
    static WAKE_AT: Cell<Option<std::time::Instant>> = const { Cell::new(None) };
    /// The stack this thread runs the host code of its resumable fibers
    /// on, made at its first use (see `stack_switch`).
    static HOST_STACK: RefCell<Option<stacks::GrantedStack>> = const { RefCell::new(None) };
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

/// Makes `entry` on a fiber whose wasm frames may use `max_wasm_stack`
/// bytes. Returns the trap that ended it, if one did.
///
/// # Safety
/// `home` must hold the live store context of the code `entry` runs, and
/// `faults` answer for its live store; `entry` must be an entry
/// trampoline's call with arguments that fit it (see [`EntryCall`]).
pub unsafe fn run_on_fiber(
    stacks: &Stacks,
    home: &ContextHome,
    faults: FaultCheck,
    max_wasm_stack: usize,
    entry: EntryCall,
) -> Result<FiberResult, std::io::Error> {
    ensure_signal_stack()?;
    let mut switches = Box::new(Switches::default());
    switches.record.entry = entry;
    let switches_ptr: *mut Switches = &mut *switches;
    let (initial, max) = stack_sizes(home, max_wasm_stack);
    switches.max_len = max;
    switches.start_on(stacks.take(initial, max, switches_ptr, 0)?);
    // SAFETY: `switches` outlives the fiber, which is run to its end below
    // and never resumed after. Its host code runs below the resumer's stack
    // pointer (`host_top` 0): it cannot park, so nothing of it outlives
    // the call.
    let status = unsafe { run(&mut switches, home, faults, None) };
    let result = match status {
        status::FINISHED => Ok(()),
        status::TRAPPED => Err(take_landed_trap()),
        other => unreachable!("a call that cannot be suspended switched back with {other}"),
    };
    if let Some(stack) = switches.stack.take() {
        stacks.release(stack, switches_ptr);
    }
    Ok(result)
}

/// Bytes of the alternate signal stack installed on a thread that runs
/// guests without one.
const SIGNAL_STACK_SIZE: usize = 64 * 1024;

/// The alternate signal stack this module installed on its thread, taken
/// down when the thread ends.
struct SignalStack(Option<stacks::GrantedStack>);

impl Drop for SignalStack {
    fn drop(&mut self) {
        if self.0.is_none() {
            return;
        }
        let disable = libc::stack_t {
            ss_sp: std::ptr::null_mut(),
            ss_flags: libc::SS_DISABLE,
            ss_size: 0,
        };
        // SAFETY: a valid stack_t; the thread is ending, so no handler runs
        // on the stack being taken down.
        unsafe { libc::sigaltstack(&disable, std::ptr::null_mut()) };
    }
}

thread_local! {
    /// Whether this thread's alternate signal stack has been seen to.
    static SIGNAL_STACK: RefCell<Option<SignalStack>> = const { RefCell::new(None) };
}

/// Makes sure this thread has an alternate signal stack, installing one if
/// it has none, so that the trap handler never runs on a guest stack: an
/// arena stack has no guard page and no room for a signal frame below its
/// reserve (see `stacks`). Rust's std gives its threads one; a thread
/// the embedder made some other way may have none.
pub fn ensure_signal_stack() -> std::io::Result<()> {
    SIGNAL_STACK.with(|seen| {
        let mut seen = seen.borrow_mut();
        if seen.is_some() {
            return Ok(());
        }
        // SAFETY: all-zero is a valid stack_t to read into.
        let mut current: libc::stack_t = unsafe { std::mem::zeroed() };
        // SAFETY: reads this thread's alternate stack into a valid struct.
        if unsafe { libc::sigaltstack(std::ptr::null(), &mut current) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if current.ss_flags & libc::SS_DISABLE == 0 {
            *seen = Some(SignalStack(None));
            return Ok(());
        }
        let stack = stacks::take_mapped(SIGNAL_STACK_SIZE)?;
        let install = libc::stack_t {
            ss_sp: stack.0.low() as *mut libc::c_void,
            ss_flags: 0,
            ss_size: stack.0.high() - stack.0.low(),
        };
        // SAFETY: a valid stack_t naming a mapping this thread keeps until
        // it takes the stack down again (`SignalStack`'s drop).
        if unsafe { libc::sigaltstack(&install, std::ptr::null_mut()) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        *seen = Some(SignalStack(Some(stack)));
        Ok(())
    })
}

/// Switches to the fiber of `switches`, on its stack, as this thread's
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
/// `switches.fiber_sp` must be a stack pointer saved on its stack (or
/// prepared for it, or saved on its host stack) and the stack must stay
/// where it is while the fiber runs.
unsafe fn run(
    switches: &mut Switches,
    home: &ContextHome,
    faults: FaultCheck,
    host_top: Option<usize>,
) -> usize {
    switches.record.host_top = host_top.unwrap_or(0);
    let context = context_now(home);
    // SAFETY: per the contract.
    let (limit, soft_limit) = unsafe { switches.limits(&*context) };
    let switches: *mut Switches = switches;
    // SAFETY: per the contract.
    let (previous_limit, previous_soft_limit, previous_fiber) = unsafe {
        (
            std::mem::replace(&mut (*context).stack_limit, limit),
            std::mem::replace(&mut (*context).stack_soft_limit, soft_limit),
            std::mem::replace(&mut (*context).fiber, switches as usize),
        )
    };
    let suspendable = host_top.is_some();
    let active = ActiveFiber { switches, faults };
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
        (*context).stack_soft_limit = previous_soft_limit;
        (*context).fiber = previous_fiber;
    }
    status
}

/// A guest call that can be suspended at a poll and resumed later: the
/// building block of preemptive scheduling. A scheduler asks it to stop
/// by writing [`interrupt::YIELD`] to the store's interrupt word.
pub struct Fiber {
    /// Its saved state, the call it makes, and from the first resume until
    /// the fiber ends, its stack: a call started and not yet run holds no
    /// stack (a launch spawns its processes long before each first runs,
    /// and most finish without ever parking, so their stacks are reused at
    /// once).
    switches: Box<Switches>,
    /// Where its stack comes from and goes back to.
    stacks: Arc<Stacks>,
    /// A host stack of its own: while it is parked inside host code (which
    /// then stays on that stack), or while it runs on a thread whose host
    /// stack is busy below it (a fiber resumed by host code).
    host_stack: Option<stacks::GrantedStack>,
    /// Budget bytes reserved for its first stack (see
    /// [`Fiber::reserve_stack`]), until it takes one or ends.
    prepaid: usize,
    started: bool,
    finished: bool,
    home: ContextHome,
    faults: FaultCheck,
    /// Bytes its wasm frames may use.
    max_wasm_stack: usize,
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
        stacks: Arc<Stacks>,
        home: ContextHome,
        faults: FaultCheck,
        max_wasm_stack: usize,
        entry: EntryCall,
    ) -> Fiber {
        let mut switches = Box::new(Switches::default());
        switches.record.entry = entry;
        Fiber {
            switches,
            stacks,
            host_stack: None,
            prepaid: 0,
            started: false,
            finished: false,
            home,
            faults,
            max_wasm_stack,
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

    /// Reserves the VM budget's bytes for the stack the first resume will
    /// take, so that a call that started within the budget can run: a
    /// spawn storm past the budget then fails the spawns past it, not the
    /// first runs of processes already spawned.
    pub fn reserve_stack(&mut self) -> std::io::Result<()> {
        let (initial, max) = stack_sizes(&self.home, self.max_wasm_stack);
        let size = self.stacks.first_size(initial, max);
        self.stacks.charge(size)?;
        self.stacks
            .refund(std::mem::replace(&mut self.prepaid, size));
        Ok(())
    }

    /// Gives the fiber a stack, if it has none yet: done by the first
    /// resume, or before it by a caller that must know the resume will not
    /// fail for want of a stack.
    pub fn ensure_stack(&mut self) -> std::io::Result<()> {
        if self.switches.stack.is_some() || self.started {
            return Ok(());
        }
        let switches: *mut Switches = &mut *self.switches;
        let (initial, max) = stack_sizes(&self.home, self.max_wasm_stack);
        self.switches.max_len = max;
        let prepaid = std::mem::take(&mut self.prepaid);
        let stack = self.stacks.take(initial, max, switches, prepaid)?;
        self.switches.start_on(stack);
        Ok(())
    }

    /// Runs the fiber until it finishes or suspends at a poll. Fails, and
    /// runs nothing, when the first resume finds no stack for it.
    pub fn resume(&mut self) -> std::io::Result<FiberState> {
        assert!(!self.finished, "a finished fiber is never resumed");
        ensure_signal_stack()?;
        self.ensure_stack()?;
        let host_top = self.host_top()?;
        self.started = true;
        // SAFETY: `new`'s contract keeps the store context live; the saved
        // stack pointer is the one `ensure_stack` prepared or the last
        // suspension saved, on its stack or on its host stack.
        let status = unsafe { run(&mut self.switches, &self.home, self.faults, Some(host_top)) };
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
            stacks::return_mapped(HOST_STACK_SIZE, host_stack);
        }
        let state = match status {
            status::SUSPENDED => {
                return Ok(wake_at.map_or(FiberState::Suspended, FiberState::Sleeping));
            }
            status::FINISHED => FiberState::Finished(Ok(())),
            status::TRAPPED => FiberState::Finished(Err(take_landed_trap())),
            other => unreachable!("a fiber switched back with {other}"),
        };
        // Ended: the stack goes back at once.
        self.abandon();
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
                *h = Some(stacks::take_mapped(HOST_STACK_SIZE)?);
            }
            let (stack, _) = h.as_ref().expect("made above");
            let busy = (stack.low()..stack.high()).contains(&here);
            Ok((!busy).then(|| stack.high()))
        })?;
        match thread_stack {
            Some(top) => Ok(top),
            None => {
                let own = stacks::take_mapped(HOST_STACK_SIZE)?;
                let top = own.0.high();
                self.host_stack = Some(own);
                Ok(top)
            }
        }
    }

    /// Its stack's usable range, if it has a stack now.
    pub fn stack_range(&self) -> Option<(usize, usize)> {
        self.switches.stack.as_ref().map(|_| self.switches.range)
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
        self.stacks.refund(std::mem::take(&mut self.prepaid));
        let switches: *mut Switches = &mut *self.switches;
        if let Some(stack) = self.switches.stack.take() {
            self.stacks.release(stack, switches);
        }
        if let Some(host_stack) = self.host_stack.take() {
            stacks::return_mapped(HOST_STACK_SIZE, host_stack);
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
            stack_soft_limit: 0,
            stack_margin: 0,
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
        let fiber = || {
            // SAFETY: the context is leaked, so it outlives the fiber; the
            // entry needs nothing.
            unsafe {
                Fiber::new(
                    Stacks::mapped(),
                    home(),
                    FaultCheck::none(),
                    64 * 1024,
                    counting(),
                )
            }
        };
        drop(fiber());
        let mut fiber = fiber();
        assert!(!fiber.is_finished() && !fiber.is_started());
        assert_eq!(fiber.resume().unwrap(), FiberState::Finished(Ok(())));
        assert!(fiber.is_finished());
        drop(fiber);
        // SAFETY: as above.
        let outcome = unsafe {
            run_on_fiber(
                &Stacks::mapped(),
                &home(),
                FaultCheck::none(),
                64 * 1024,
                counting(),
            )
        };
        assert_eq!(outcome.unwrap(), Ok(()));
        assert_eq!(CALLS.load(std::sync::atomic::Ordering::SeqCst), before + 2);
    }
}
