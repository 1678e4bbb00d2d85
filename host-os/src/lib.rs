//! carat-host-os: the supervisor side of carat-vm.
//!
//! It owns the arena (the stand-in for physical memory), the allocation
//! map, and the memory backends that hand regions to the guest runtime.
//! In CARAT mode every region comes from the one arena and JIT code guards
//! each access inline ([`MemoryStrategy::Guarded`]); the paging baseline
//! ([`PagingBackend`]) gives each memory its own guarded reservation.

pub mod arena;
pub mod paging;
pub mod policy;
pub mod residency;
pub mod scheduler;
pub mod wasi;

use carat_guest_runtime::{AllocError, Region, RegionKind, RegionProvider, Relocation};
use carat_jit::MemoryStrategy;

pub use arena::{Arena, ArenaOptions, ArenaRegion, ArenaStats, RegionRecord};
pub use paging::PagingBackend;

/// CARAT mode's backend: every region, of every kind, from the arena.
#[derive(Clone, Debug)]
pub struct CaratBackend {
    arena: Arena,
    relocation: Relocation,
}

impl CaratBackend {
    /// The backend over `arena`, moving regions as `policy` says.
    pub fn new(arena: Arena, policy: policy::CaratPolicy) -> Self {
        CaratBackend {
            arena,
            relocation: Relocation {
                counters: Default::default(),
                policy: std::sync::Arc::new(policy),
            },
        }
    }

    /// What relocation has done in this arena.
    pub fn relocations(&self) -> carat_guest_runtime::RelocationStats {
        self.relocation.counters.snapshot()
    }

    pub fn arena(&self) -> &Arena {
        &self.arena
    }
}

impl RegionProvider for CaratBackend {
    fn strategy(&self) -> MemoryStrategy {
        MemoryStrategy::Guarded
    }

    fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<Box<dyn Region>, AllocError> {
        Ok(Box::new(self.arena.allocate(kind, len, max_len)?))
    }

    fn relocation(&self) -> Option<Relocation> {
        Some(self.relocation.clone())
    }
}
