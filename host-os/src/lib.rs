//! carat-host-os: the supervisor side of carat-vm.
//!
//! It owns the arena (the stand-in for physical memory), the allocation
//! map, and the memory backends that hand regions to the guest runtime.
//! In CARAT mode every region comes from the one arena and JIT code guards
//! each access inline ([`MemoryStrategy::Guarded`]); the paging baseline
//! ([`PagingBackend`]) gives each memory its own guarded reservation.
//!
//! Supervisor policy lives here too, and the runtime only carries it
//! out: when regions move (`policy`), which syscalls a process gets and
//! what they do (`wasi`, `carat_abi`), which imports its capabilities
//! grant and how a call into another process's entry point runs
//! (`process`), and how processes share the CPU (`scheduler`).

mod allocation_map;
pub mod arena;
pub mod arena_map;
pub mod carat_abi;
pub mod footprint;
mod janitor;
pub mod paging;
pub mod policy;
pub mod process;
pub mod residency;
pub mod scheduler;
mod slab;
pub mod wasi;

use carat_guest_runtime::{AllocError, Region, RegionKind, RegionProvider, Relocation};
use carat_jit::MemoryStrategy;

pub use arena::{Arena, ArenaOptions, ArenaRegion, ArenaStats, RegionRecord};

/// A syscall: its name in its import module, its signature, and the host
/// function that runs it. WASI, the carat ABI and entry points are lists
/// of these.
pub struct Syscall {
    pub name: &'static str,
    pub ty: carat_jit::FuncType,
    pub call: carat_guest_runtime::HostFnBox,
}

impl Syscall {
    pub fn new(
        name: &'static str,
        ty: carat_jit::FuncType,
        call: impl Fn(
            &mut carat_guest_runtime::Caller<'_>,
            &[carat_guest_runtime::Val],
            &mut [carat_guest_runtime::Val],
        ) -> Result<(), carat_guest_runtime::HostError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        Syscall {
            name,
            ty,
            call: Box::new(call),
        }
    }
}
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
        owner: u32,
    ) -> Result<Box<dyn Region>, AllocError> {
        Ok(Box::new(
            self.arena.allocate_for(owner, kind, len, max_len)?,
        ))
    }

    fn relocation(&self) -> Option<Relocation> {
        Some(self.relocation.clone())
    }
}
