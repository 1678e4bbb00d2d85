//! A store's fiber stacks: where they come from, and how they move.
//!
//! In CARAT mode a fiber's stack is a region of the arena
//! ([`RegionKind::Stack`]): taken with no system call when the fiber first
//! runs, given back when it ends, and moved by relocation like every other
//! region of its store. Without an arena (paging mode) a stack is a
//! mapping of its own with a guard page below it, from a per-thread pool.
//!
//! ## Why an arena stack needs no guard page
//!
//! Only three things ever run on a guest stack (see `stack_switch`): JIT
//! functions, whose prologue checks their whole frame against the store's
//! stack limit; trampolines and the host bridge's frame record, whose
//! frames are bounded (`CodeImage::max_frame_size`) and sit within the
//! [`HOST_STACK_RESERVE`](crate::fiber::HOST_STACK_RESERVE) kept below the
//! limit; and the float helpers JIT code calls directly, leaf functions of
//! a few words. Host code runs on a host stack, and the signal handler on
//! the thread's alternate signal stack (`fiber::ensure_signal_stack`). So
//! nothing can run past the bottom of a guest stack, and a guard page
//! would only ever catch a bug in that argument.
//!
//! An arena stack is not zeroed when it is reused: nothing reads a stack
//! word it did not write first (JIT code initialises every slot it reads,
//! and wasm cannot address its stack), so the bytes another process left
//! there are never seen, and freeing a stack costs no system call.
//!
//! ## Moving a stack
//!
//! A stack moves only while nothing runs on it: parked (switched out at a
//! poll or after a host call), not yet started, or out in host code (the
//! bridge's frame record is its lowest frame). Its contents are then
//! described exactly: return addresses (code, never patched), the
//! stack-map slots of wasm frames (arena pointers, patched by the regions'
//! moves, not stack addresses), callee-saved registers saved by a switch
//! (by construction no JIT code keeps a stack address in one across a call:
//! results are never returned through a stack pointer, see
//! `abi::results`, and a trampoline's value array is read by stack slot
//! after its call), and the frame-pointer chain. A move copies the stack,
//! then patches every stack address there is:
//!
//! - the frame-pointer chain, from the switch's saved frame pointer (or the
//!   bridge's frame record) up to the zero record at the top;
//! - the fiber's saved stack pointer (`fiber_sp`, or `guest_sp` while it
//!   is out in host code);
//! - the store context's last exit record and stack limit, and the exit
//!   records of the store's parked calls.
//!
//! Those are patched with [`Move::patch`], which changes a word only if it
//! points into the old range; a walk that met a word it could not explain
//! would be a bug this argument rules out, so the move poisons the old
//! range in tests (`poison_moves`) to make any missed pointer crash.

use std::cell::RefCell;
use std::sync::{Arc, Mutex};

use crate::fiber::Switches;
use crate::mappings::MapGrant;
use crate::regions::{Region, RegionKind, RegionProvider, SharedBudget};
use crate::relocate::Move;
use crate::stack_switch;
use crate::vmctx::VMStoreContext;

/// Most mapped stacks kept per thread for reuse.
const POOL_LIMIT: usize = 16;

/// Mappings one mapped stack takes: its usable part and its guard page.
const MAPPINGS_PER_STACK: usize = 2;

/// One mapping for a stack: its lowest page is a guard (no access), the
/// rest the stack.
pub(crate) struct MappedStack {
    mapping: *mut libc::c_void,
    len: usize,
}

// SAFETY: a mapping owned by value; nothing else refers to it.
unsafe impl Send for MappedStack {}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

impl MappedStack {
    /// A stack of at least `usable` bytes above a guard page.
    fn new(usable: usize) -> std::io::Result<MappedStack> {
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
        let stack = MappedStack { mapping, len };
        // SAFETY: the first page of the mapping just made.
        if unsafe { libc::mprotect(mapping, page, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// Lowest usable address.
    pub(crate) fn low(&self) -> usize {
        self.mapping as usize + page_size()
    }

    /// One past the highest usable address; 16-aligned.
    pub(crate) fn high(&self) -> usize {
        self.mapping as usize + self.len
    }
}

impl Drop for MappedStack {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping this owns, on which nothing
        // runs any more.
        unsafe { libc::munmap(self.mapping, self.len) };
    }
}

/// A mapped stack with the mappings it holds.
pub(crate) type GrantedStack = (MappedStack, MapGrant);

thread_local! {
    static POOL: RefCell<Vec<(usize, GrantedStack)>> = const { RefCell::new(Vec::new()) };
}

/// A mapped stack of `size` usable bytes, from this thread's pool if it
/// has one.
pub(crate) fn take_mapped(size: usize) -> std::io::Result<GrantedStack> {
    let pooled = POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        let i = pool.iter().position(|(s, _)| *s == size)?;
        Some(pool.swap_remove(i).1)
    });
    let stack = match pooled {
        Some(stack) => stack,
        None => {
            let grant =
                crate::mappings::acquire(MAPPINGS_PER_STACK).map_err(std::io::Error::other)?;
            (MappedStack::new(size)?, grant)
        }
    };
    forget_abandoned_frames(stack.0.low(), stack.0.high());
    Ok(stack)
}

/// Gives a mapped stack of `size` usable bytes back to this thread's pool.
pub(crate) fn return_mapped(size: usize, stack: GrantedStack) {
    POOL.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.len() < POOL_LIMIT {
            pool.push((size, stack));
        }
    });
}

/// Under AddressSanitizer, clears the marks its instrumented frames left on
/// a stack. A fiber that trapped abandoned its frames without returning
/// through them, so the redzones they marked stay marked, and the next
/// fiber on this stack (or on a fresh one mapped where an old stack was)
/// would be reported as overflowing them. ASan builds set `--cfg
/// carat_asan` (see README.md); other builds compile this to nothing.
/// (Found by running the tests under ASan.)
fn forget_abandoned_frames(low: usize, high: usize) {
    #[cfg(carat_asan)]
    {
        unsafe extern "C" {
            fn __asan_unpoison_memory_region(address: *const libc::c_void, size: usize);
        }
        // SAFETY: ASan's own call, on a stack's usable memory, which no
        // frame uses now (no fiber runs on it).
        unsafe { __asan_unpoison_memory_region(low as *const libc::c_void, high - low) };
    }
    #[cfg(not(carat_asan))]
    let _ = (low, high);
}

/// A fiber's stack.
pub(crate) enum StackMemory {
    /// A mapping of its own (no arena), of this many usable bytes.
    Mapped(GrantedStack, usize),
    /// A region of the arena.
    Arena(Box<dyn Region>),
}

impl StackMemory {
    /// Its usable range; the top is 16-aligned.
    pub(crate) fn range(&self) -> (usize, usize) {
        match self {
            StackMemory::Mapped((stack, _), _) => (stack.low(), stack.high()),
            StackMemory::Arena(region) => {
                let low = region.base() as usize;
                (low, low + region.len())
            }
        }
    }
}

/// Where one store's fibers get their stacks, and the list of the stacks
/// that can move (arena stacks), for relocation. Stacks are bounded by
/// their fibers' limits and the arena, and counted in the arena's figures
/// by kind, but not charged to a VM's memory budget: they are taken at a
/// process's first run, and a budget full of memories would otherwise
/// leave every process spawned before it unable to run.
pub struct Stacks {
    /// The store's memory backend, when its regions move (the arena):
    /// stacks are then its regions; otherwise mappings.
    arena: Option<Arc<dyn RegionProvider>>,
    /// The store's owner tag, for the stacks it takes (see
    /// `RegionProvider::allocate`).
    owner: u32,
    /// The VM's memory budget, which every arena stack's bytes count
    /// against like every other region's: a call whose first stack it
    /// cannot hold fails to start, and a growth past it is `call stack
    /// exhausted`. A mapped stack (paging mode) takes no arena bytes: its
    /// reservation is address space, bounded by the mapping budget.
    budget: Option<Arc<SharedBudget>>,
    /// The fibers holding an arena stack.
    live: Mutex<Vec<LiveStack>>,
}

/// A fiber's saved state, by address: it lives on the heap, boxed in its
/// fiber, until the fiber unlists it.
struct LiveStack(*mut Switches);

// SAFETY: the list is only read under its lock, by the store that owns
// the fibers, while none of them runs (see `relocate_all`).
unsafe impl Send for LiveStack {}

impl std::fmt::Debug for Stacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stacks")
            .field("arena", &self.arena.is_some())
            .finish()
    }
}

impl Stacks {
    pub(crate) fn new(
        provider: &Arc<dyn RegionProvider>,
        budget: Option<Arc<SharedBudget>>,
        owner: u32,
    ) -> Arc<Stacks> {
        Stacks::with_arena(
            provider.relocation().is_some().then(|| provider.clone()),
            budget,
            owner,
        )
    }

    /// Stacks from mappings only, for fibers outside a store (tests).
    #[cfg(test)]
    pub(crate) fn mapped() -> Arc<Stacks> {
        Stacks::with_arena(None, None, crate::regions::NO_OWNER)
    }

    fn with_arena(
        arena: Option<Arc<dyn RegionProvider>>,
        budget: Option<Arc<SharedBudget>>,
        owner: u32,
    ) -> Arc<Stacks> {
        Arc::new(Stacks {
            arena,
            budget,
            owner,
            live: Mutex::default(),
        })
    }

    /// Counts `bytes` of arena stack against the VM's budget, if it has
    /// one: a stack taken or grown, or reserved for one to be taken later
    /// (see [`Stacks::take`]'s `prepaid`).
    pub(crate) fn charge(&self, bytes: usize) -> std::io::Result<()> {
        match &self.budget {
            Some(budget) if self.arena.is_some() => budget
                .take(RegionKind::Stack, bytes as u64)
                .map_err(std::io::Error::other),
            _ => Ok(()),
        }
    }

    /// Gives back what [`Stacks::charge`] counted.
    pub(crate) fn refund(&self, bytes: usize) {
        if let Some(budget) = &self.budget
            && self.arena.is_some()
        {
            budget.give_back(bytes as u64);
        }
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Vec<LiveStack>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The bytes a stack that starts at `initial` and may grow to `max`
    /// takes at first: `initial` in the arena, `max` as a mapping.
    pub(crate) fn first_size(&self, initial: usize, max: usize) -> usize {
        match self.arena {
            Some(_) => initial.next_multiple_of(16),
            None => max,
        }
    }

    /// Gives the fiber of `switches` a stack: an arena stack of `initial`
    /// bytes, which grows to `max` bytes when it must; or a mapped one of
    /// `max` bytes, which cannot grow. `prepaid` bytes of the budget were
    /// reserved for it already (at the call's start, so that a process
    /// spawned within the budget can run); the difference is settled now.
    pub(crate) fn take(
        &self,
        initial: usize,
        max: usize,
        switches: *mut Switches,
        prepaid: usize,
    ) -> std::io::Result<StackMemory> {
        let size = self.first_size(initial, max);
        if size > prepaid {
            if let Err(e) = self.charge(size - prepaid) {
                self.refund(prepaid);
                return Err(e);
            }
        } else {
            self.refund(prepaid - size);
        }
        let stack = match &self.arena {
            None => take_mapped(max).map(|stack| StackMemory::Mapped(stack, max)),
            Some(arena) => arena
                .allocate(RegionKind::Stack, size, max, self.owner)
                .map(StackMemory::Arena)
                .map_err(std::io::Error::other),
        };
        match &stack {
            Ok(StackMemory::Arena(_)) => self.live().push(LiveStack(switches)),
            Ok(StackMemory::Mapped(..)) => {}
            Err(_) => self.refund(size),
        }
        stack
    }

    /// Takes back the stack of the fiber of `switches`; nothing may run on
    /// it any more.
    pub(crate) fn release(&self, memory: StackMemory, switches: *mut Switches) {
        match memory {
            StackMemory::Mapped(stack, size) => {
                return_mapped(size, stack);
                self.refund(size);
            }
            StackMemory::Arena(region) => {
                self.live().retain(|live| live.0 != switches);
                self.refund(region.len());
                drop(region);
            }
        }
    }

    /// Moves every arena stack of the store and patches every address
    /// into each (see the module doc): in the stack itself, in its fiber's
    /// record, in the store `context` and in the exit records of `parked`
    /// calls. Returns the stacks moved, the bytes they hold and the words
    /// patched; false as the first when one could not move.
    ///
    /// # Safety
    /// No fiber of the store may run (each is parked, not started, or out
    /// in the host code that calls this); `context` is the store's live
    /// context and `parked` the exit records of its parked calls.
    pub(crate) unsafe fn relocate_all(
        &self,
        context: *mut VMStoreContext,
        parked: &mut [(u64, usize)],
    ) -> (bool, u64, u64, u64) {
        let (mut all, mut moved, mut bytes, mut patched) = (true, 0, 0, 0);
        for live in self.live().iter() {
            // SAFETY: a listed record is live (its fiber unlists it before
            // dropping it) and its fiber is stopped, per the contract.
            let switches = unsafe { &mut *live.0 };
            // SAFETY: per the contract.
            match unsafe { move_stack(switches, context, parked) } {
                Some((len, words)) => {
                    moved += 1;
                    bytes += len as u64;
                    patched += words;
                }
                None => all = false,
            }
        }
        (all, moved, bytes, patched)
    }
}

impl Stacks {
    /// Grows the stack of the fiber of `switches`, which is out in host
    /// code (the poll's slow path, which found it short at a function
    /// entry): to twice its size, at most its fiber's limit, by moving it
    /// to a larger range with its bytes at the top (see the module doc).
    /// Returns false, changing nothing, when it is at its limit or there is
    /// no room: the guest then traps with `call stack exhausted`.
    ///
    /// # Safety
    /// As for [`Stacks::relocate_all`]; the fiber is the store's running
    /// one, so its limits in `context` are updated.
    pub(crate) unsafe fn grow(
        &self,
        switches: &mut Switches,
        context: *mut VMStoreContext,
        parked: &mut [(u64, usize)],
    ) -> bool {
        let Some(StackMemory::Arena(region)) = &mut switches.stack else {
            return false;
        };
        let len = region.len();
        let new_len = (2 * len).min(switches.max_len).next_multiple_of(16);
        if new_len <= len || self.charge(new_len - len).is_err() {
            return false;
        }
        let live_from = switches.record.lowest_live() - region.base() as usize;
        let Some(old) = region.move_stack(new_len, live_from) else {
            self.refund(new_len - len);
            return false;
        };
        let base = region.base() as usize;
        let moved = Move {
            old,
            len,
            new: base + (new_len - len),
        };
        switches.range = (base, base + new_len);
        // SAFETY: per the contract.
        unsafe {
            patch_moved(switches, &moved, context, parked);
            let (limit, soft_limit) = switches.limits(&*context);
            (*context).stack_limit = limit;
            (*context).stack_soft_limit = soft_limit;
        }
        true
    }
}

/// Moves one fiber's arena stack and patches every address into it;
/// returns its length and the words patched, or `None` when it could not
/// move (nothing changed).
///
/// # Safety
/// As for [`Stacks::relocate_all`].
unsafe fn move_stack(
    switches: &mut Switches,
    context: *mut VMStoreContext,
    parked: &mut [(u64, usize)],
) -> Option<(usize, u64)> {
    let Some(StackMemory::Arena(region)) = &mut switches.stack else {
        return None;
    };
    let len = region.len();
    let live_from = switches.record.lowest_live() - region.base() as usize;
    let old = region.move_stack(len, live_from)?;
    let moved = Move {
        old,
        len,
        new: region.base() as usize,
    };
    switches.range = (moved.new, moved.new + len);
    // SAFETY: per the contract.
    let patched = unsafe { patch_moved(switches, &moved, context, parked) };
    Some((len, patched))
}

/// Patches every address into a stack that `moved` says moved (see the
/// module doc); returns how many words it patched.
///
/// # Safety
/// As for [`Stacks::relocate_all`]; the stack's bytes are at their new
/// place.
unsafe fn patch_moved(
    switches: &mut Switches,
    moved: &Move,
    context: *mut VMStoreContext,
    parked: &mut [(u64, usize)],
) -> u64 {
    let record = &mut switches.record;
    let mut patched = 0;
    // Where the chain of frame records starts: the bridge's frame record
    // while the fiber is out in host code, else the frame pointer its last
    // switch saved (or `prepare` laid out).
    let mut link = if record.on_host != 0 {
        // SAFETY: a word of the record.
        patched += u64::from(unsafe { moved.patch((&mut record.guest_sp as *mut usize).cast()) });
        record.guest_sp
    } else {
        // SAFETY: as above.
        patched += u64::from(unsafe { moved.patch((&mut record.fiber_sp as *mut usize).cast()) });
        stack_switch::saved_frame_pointer(record.fiber_sp)
    };
    // SAFETY: each link is a saved frame pointer on the moved stack (the
    // chain's words are the stack's, see the module doc); the zero record
    // at the top ends it.
    unsafe {
        while moved.patch(link as *mut u64) {
            patched += 1;
            link = *(link as *const usize);
        }
    }
    // SAFETY: per the contract, the store's live context.
    unsafe {
        patched += u64::from(moved.patch((&raw mut (*context).last_exit_fp).cast()));
        patched += u64::from(moved.patch((&raw mut (*context).stack_limit).cast()));
        patched += u64::from(moved.patch((&raw mut (*context).stack_soft_limit).cast()));
    }
    for (_, exit) in parked.iter_mut() {
        // SAFETY: a word of the list.
        patched += u64::from(unsafe { moved.patch((exit as *mut usize).cast()) });
    }
    patched
}
