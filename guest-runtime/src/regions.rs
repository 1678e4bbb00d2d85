//! Where guest state lives: the runtime's view of the memory backend.
//!
//! The runtime never allocates guest-visible state itself. It asks a
//! [`RegionProvider`] (the supervisor's arena in CARAT mode, per-memory
//! reservations in paging mode) for [`Region`]s and keeps the handles; a
//! region is returned to its provider, zeroed, when its handle drops. This
//! is what lets host-os own the allocation map and, later, move regions.

use carat_jit::MemoryStrategy;

/// What a region holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RegionKind {
    LinearMemory,
    /// vmctx, store context and other VM-owned records.
    ControlBlock,
    Table,
    Stack,
}

impl RegionKind {
    /// How many kinds there are; `kind as usize` is below it.
    pub const COUNT: usize = 4;
    pub const ALL: [RegionKind; RegionKind::COUNT] = [
        RegionKind::LinearMemory,
        RegionKind::ControlBlock,
        RegionKind::Table,
        RegionKind::Stack,
    ];
}

impl std::fmt::Display for RegionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RegionKind::LinearMemory => "linear memory",
            RegionKind::ControlBlock => "control block",
            RegionKind::Table => "table",
            RegionKind::Stack => "stack",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AllocError {
    #[error("the arena has no free range of {requested} bytes for a {kind}")]
    ArenaExhausted { kind: RegionKind, requested: u64 },
    #[error("a {kind} of {requested} bytes exceeds the limit of {limit} bytes")]
    LimitExceeded {
        kind: RegionKind,
        requested: u64,
        limit: u64,
    },
    #[error(
        "a {kind} of {requested} bytes would take the process past its memory budget \
         of {budget} bytes ({in_use} in use)"
    )]
    BudgetExceeded {
        kind: RegionKind,
        requested: u64,
        in_use: u64,
        budget: u64,
    },
    #[error(
        "a {kind} of {requested} bytes would take the VM past its memory budget \
         of {budget} bytes ({in_use} in use by all its processes)"
    )]
    SharedBudgetExceeded {
        kind: RegionKind,
        requested: u64,
        in_use: u64,
        budget: u64,
    },
    #[error("the system refused memory for a {kind}: {reason}")]
    System { kind: RegionKind, reason: String },
}

/// Bytes of guest state many stores draw from together: a VM's memory
/// budget. A store takes from it whatever it charges its own budget (every
/// region, at allocation and growth) and gives it back when it refunds or
/// drops, so a spawn or growth past it fails that one allocation.
#[derive(Debug)]
pub struct SharedBudget {
    limit: u64,
    in_use: std::sync::atomic::AtomicU64,
}

impl SharedBudget {
    pub fn new(limit: u64) -> std::sync::Arc<Self> {
        std::sync::Arc::new(SharedBudget {
            limit,
            in_use: Default::default(),
        })
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes taken now.
    pub fn in_use(&self) -> u64 {
        self.in_use.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Takes `bytes` if they fit, or says what is in use.
    pub(crate) fn take(&self, kind: RegionKind, bytes: u64) -> Result<(), AllocError> {
        use std::sync::atomic::Ordering;
        self.in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                in_use
                    .checked_add(bytes)
                    .filter(|&total| total <= self.limit)
            })
            .map(drop)
            .map_err(|in_use| AllocError::SharedBudgetExceeded {
                kind,
                requested: bytes,
                in_use,
                budget: self.limit,
            })
    }

    pub(crate) fn give_back(&self, bytes: u64) {
        use std::sync::atomic::Ordering;
        let _ = self
            .in_use
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |in_use| {
                Some(in_use.saturating_sub(bytes))
            });
    }
}

/// A contiguous piece of memory holding guest state. Its bytes start out
/// zero, and bytes added by growth read as zero.
pub trait Region: Send {
    fn base(&self) -> *mut u8;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The address range the region owns, which a stray access may fault
    /// in: its bytes, or for a paging-mode memory its whole reservation,
    /// guard included. The signal handler turns a fault into a trap only
    /// inside the running store's reservations.
    fn reservation(&self) -> std::ops::Range<usize> {
        let base = self.base() as usize;
        base..base + self.len()
    }

    /// Makes the region `new_len` bytes long without moving it. Returns
    /// false, changing nothing, when the bytes after it are not available.
    fn grow_in_place(&mut self, new_len: usize) -> bool;

    /// Moves the region to a fresh range `new_len` (at least its length)
    /// bytes long, placed with `headroom` free bytes after it when the
    /// provider can, copies its bytes there, and frees (zeroing) the old
    /// range. Returns the old base, or `None`, changing nothing, when the
    /// provider cannot move regions or has no room. The caller patches
    /// every pointer into the old range: see `relocate`.
    fn relocate(&mut self, new_len: usize, headroom: usize) -> Option<usize> {
        let _ = (new_len, headroom);
        None
    }

    /// Like `relocate`, keeping the length, but only to a lower place in
    /// the provider's memory (compaction); `None` when there is none.
    fn compact(&mut self, headroom: usize) -> Option<usize> {
        let _ = headroom;
        None
    }

    /// Moves a stack, as `relocate` moves any region, to a fresh range of
    /// `new_len` bytes (at least its length), copying only its bytes from
    /// offset `live_from` to its end, to the *end* of the new range: a
    /// stack grows down, and below its lowest frame it holds nothing.
    /// Returns the old base, or `None`, changing nothing.
    fn move_stack(&mut self, new_len: usize, live_from: usize) -> Option<usize> {
        let _ = (new_len, live_from);
        None
    }
}

/// A memory backend.
pub trait RegionProvider: Send + Sync {
    /// How JIT code must guard accesses to linear memories from here.
    fn strategy(&self) -> MemoryStrategy;

    /// Where relocation reports and what decides when regions move, if
    /// this provider's regions can move (CARAT's arena); `None` turns
    /// relocation off.
    fn relocation(&self) -> Option<crate::relocate::Relocation> {
        None
    }

    /// Allocates a zeroed region of `len` bytes for `owner` (the store's
    /// owner tag, a process id; [`NO_OWNER`] for none), which the provider may
    /// record to show whose regions are where. `max_len` is how far it
    /// may ever grow: a placement hint, not a promise.
    fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
        owner: u32,
    ) -> Result<Box<dyn Region>, AllocError>;
}

/// The owner tag of regions nobody in particular holds (see
/// [`RegionProvider::allocate`]).
pub const NO_OWNER: u32 = u32::MAX;

/// A provider on the host heap, for control blocks and tables in paging
/// mode and for tests. Regions never grow in place.
#[derive(Debug)]
pub struct HeapRegion {
    memory: Box<[u64]>,
    len: usize,
}

impl HeapRegion {
    /// A zeroed region of `len` bytes; an error, not an abort, when the
    /// host heap cannot hold it. Large ones come from the kernel's zero
    /// pages (calloc), so their untouched parts cost no memory.
    pub fn new(kind: RegionKind, len: usize) -> Result<Self, AllocError> {
        let words = len.div_ceil(8).max(1);
        let refused = |reason: String| AllocError::System { kind, reason };
        let layout = std::alloc::Layout::array::<u64>(words).map_err(|e| refused(e.to_string()))?;
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<u64>();
        if pointer.is_null() {
            return Err(refused(format!("the host heap has no {len} bytes")));
        }
        // SAFETY: allocated by the global allocator with the layout a
        // boxed slice of `words` u64s has, and zeroed, which is a valid
        // u64 each.
        let memory = unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(pointer, words)) };
        Ok(HeapRegion { memory, len })
    }
}

impl Region for HeapRegion {
    fn base(&self) -> *mut u8 {
        self.memory.as_ptr() as *mut u8
    }

    fn len(&self) -> usize {
        self.len
    }

    fn grow_in_place(&mut self, new_len: usize) -> bool {
        new_len <= self.len
    }
}
