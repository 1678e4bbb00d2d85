//! The paging baseline: protection by the MMU, the way conventional
//! runtimes do it.
//!
//! Each linear memory gets its own virtual reservation of 4 GiB plus a
//! guard (region crate); only the accessible prefix is read-write, and
//! `memory.grow` changes page protection without ever moving the memory.
//! JIT code emits no inline bounds check for accesses whose static offset
//! fits in the guard ([`MemoryStrategy::Reserved`]); a stray access
//! faults, and the signal handler turns the fault into the trap
//! `out of bounds memory access`. Control blocks and tables live on the
//! host heap. This is the design carat-vm is measured against: one
//! reservation (two mappings) per memory is what caps paging's density.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use carat_guest_runtime::{AllocError, HeapRegion, Region, RegionKind, RegionProvider};
use carat_jit::MemoryStrategy;

/// The largest 32-bit linear memory.
const WASM32_SPAN: u64 = 1 << 32;

/// Guard bytes after each reservation: accesses with a static offset up to
/// this far need no inline check.
pub const GUARD_BYTES: u64 = 2 << 30;

const PAGE: usize = 4096;

#[derive(Debug, Default)]
struct Counters {
    accessible_bytes: AtomicU64,
    peak_bytes: AtomicU64,
    reservations: AtomicU64,
}

impl Counters {
    fn add(&self, bytes: u64) {
        let now = self.accessible_bytes.fetch_add(bytes, Ordering::Relaxed) + bytes;
        self.peak_bytes.fetch_max(now, Ordering::Relaxed);
    }
}

/// Paging mode's backend.
#[derive(Debug, Clone, Default)]
pub struct PagingBackend {
    counters: Arc<Counters>,
}

impl PagingBackend {
    pub fn new() -> Self {
        Self::default()
    }

    /// Peak bytes of linear memory made accessible at once.
    pub fn peak_bytes(&self) -> u64 {
        self.counters.peak_bytes.load(Ordering::Relaxed)
    }

    /// Reservations made so far.
    pub fn reservations(&self) -> u64 {
        self.counters.reservations.load(Ordering::Relaxed)
    }
}

impl RegionProvider for PagingBackend {
    fn strategy(&self) -> MemoryStrategy {
        MemoryStrategy::Reserved {
            guard_bytes: GUARD_BYTES,
        }
    }

    fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        _max_len: usize,
        _owner: u32,
    ) -> Result<Box<dyn Region>, AllocError> {
        if kind != RegionKind::LinearMemory {
            return Ok(Box::new(HeapRegion::new(kind, len)?));
        }
        if len as u64 > WASM32_SPAN {
            return Err(AllocError::LimitExceeded {
                kind,
                requested: len as u64,
                limit: WASM32_SPAN,
            });
        }
        let system = |e: region::Error| AllocError::System {
            kind,
            reason: e.to_string(),
        };
        // The reservation and its accessible prefix: two mappings.
        let grant = carat_guest_runtime::mappings::acquire(2).map_err(|e| AllocError::System {
            kind,
            reason: e.to_string(),
        })?;
        let reservation = region::alloc(
            (WASM32_SPAN + GUARD_BYTES) as usize,
            region::Protection::NONE,
        )
        .map_err(system)?;
        let mut memory = ReservedMemory {
            reservation,
            len: 0,
            counters: self.counters.clone(),
            _grant: grant,
        };
        self.counters.reservations.fetch_add(1, Ordering::Relaxed);
        if !memory.grow_in_place(len) {
            return Err(AllocError::System {
                kind,
                reason: format!("cannot make {len} bytes of the reservation accessible"),
            });
        }
        Ok(Box::new(memory))
    }
}

/// A linear memory at the start of its own reservation.
struct ReservedMemory {
    reservation: region::Allocation,
    len: usize,
    counters: Arc<Counters>,
    /// The mappings it holds, from the host's budget.
    _grant: carat_guest_runtime::mappings::MapGrant,
}

impl Region for ReservedMemory {
    fn base(&self) -> *mut u8 {
        self.reservation.as_ptr::<u8>() as *mut u8
    }

    fn len(&self) -> usize {
        self.len
    }

    fn reservation(&self) -> std::ops::Range<usize> {
        let base = self.base() as usize;
        base..base + (WASM32_SPAN + GUARD_BYTES) as usize
    }

    fn grow_in_place(&mut self, new_len: usize) -> bool {
        if new_len <= self.len {
            return true;
        }
        if new_len as u64 > WASM32_SPAN {
            return false;
        }
        let start = self.len.next_multiple_of(PAGE);
        let end = new_len.next_multiple_of(PAGE);
        if end > start {
            // SAFETY: start..end lies inside our reservation and holds no
            // Rust references; making it read-write exposes fresh zero pages.
            let protected = unsafe {
                region::protect(
                    self.base().add(start),
                    end - start,
                    region::Protection::READ_WRITE,
                )
            };
            if protected.is_err() {
                return false;
            }
        }
        self.counters.add((new_len - self.len) as u64);
        self.len = new_len;
        true
    }
}

impl Drop for ReservedMemory {
    fn drop(&mut self) {
        self.counters
            .accessible_bytes
            .fetch_sub(self.len as u64, Ordering::Relaxed);
    }
}

// SAFETY: the reservation is owned by this handle alone; the raw pointer
// inside `region::Allocation` is what keeps it from being Send.
unsafe impl Send for ReservedMemory {}
