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
    #[error("the system refused memory for a {kind}: {reason}")]
    System { kind: RegionKind, reason: String },
}

/// A contiguous piece of memory holding guest state. Its bytes start out
/// zero, and bytes added by growth read as zero.
pub trait Region: Send {
    fn base(&self) -> *mut u8;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
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
}

/// A memory backend.
pub trait RegionProvider: Send + Sync {
    /// How JIT code must guard accesses to linear memories from here.
    fn strategy(&self) -> MemoryStrategy;

    /// The counters relocation reports to, if this provider's regions
    /// can move (CARAT's arena); `None` turns relocation off.
    fn relocation_counters(&self) -> Option<std::sync::Arc<crate::relocate::RelocationCounters>> {
        None
    }

    /// Allocates a zeroed region of `len` bytes. `max_len` is how far it
    /// may ever grow: a placement hint, not a promise.
    fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<Box<dyn Region>, AllocError>;
}

/// A provider on the host heap, for control blocks and tables in paging
/// mode and for tests. Regions never grow in place.
#[derive(Debug)]
pub struct HeapRegion {
    memory: Box<[u64]>,
    len: usize,
}

impl HeapRegion {
    pub fn new(len: usize) -> Self {
        HeapRegion {
            memory: vec![0u64; len.div_ceil(8).max(1)].into_boxed_slice(),
            len,
        }
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
