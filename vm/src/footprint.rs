//! What a VM's processes cost, every byte: arena bytes by region kind,
//! host heap and resident memory, divided by the processes alive
//! (`--stats`: `bytes_per_process`, `resident_bytes_per_process`).
//!
//! A figure is taken by [`crate::Vm::sample_footprint`] and the VM keeps
//! the last one taken with the most processes alive: `launch` samples
//! when the count of live processes reaches a new high (at powers of two,
//! then every 1,024) and every 100 ms while they run (so processes parked
//! mid-call are counted with their stacks), `run` while its one process
//! is still alive.
//! Measuring reads `/proc` and the allocator's statistics, so it never
//! runs on a spawn path of the embedding API.

use carat_guest_runtime::RegionKind;
use carat_host_os::ArenaStats;

/// The cost of a VM's live processes at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Footprint {
    /// Processes alive when it was taken.
    pub processes_live: u64,
    /// Arena bytes in use by region kind (CARAT mode; in paging mode
    /// linear memories live in reservations of their own and count only
    /// in resident memory).
    pub arena_linear_memory_bytes: u64,
    /// Control blocks (store contexts, vmctxs) in the arena.
    pub arena_control_block_bytes: u64,
    /// Tables in the arena.
    pub arena_table_bytes: u64,
    /// Wasm stacks in the arena.
    pub arena_stack_bytes: u64,
    /// Host heap in use (the allocator's count).
    pub host_heap_bytes: u64,
    /// The host process's resident memory, everything included.
    pub resident_bytes: u64,
    /// Arena bytes in use plus host heap, per live process.
    pub bytes_per_process: u64,
    /// Resident memory per live process.
    pub resident_bytes_per_process: u64,
}

impl Footprint {
    /// Measures now, with `processes_live` processes alive and the arena
    /// (if any) at `arena`.
    pub(crate) fn measure(processes_live: u64, arena: Option<ArenaStats>) -> Self {
        let by_kind = |kind| arena.map_or(0, |a| a.live_bytes_of(kind) as u64);
        let host_heap_bytes = carat_host_os::footprint::host_heap_bytes();
        let resident_bytes = carat_host_os::footprint::resident_bytes();
        let arena_bytes: u64 = RegionKind::ALL.into_iter().map(by_kind).sum();
        let per = |bytes: u64| bytes / processes_live.max(1);
        Footprint {
            processes_live,
            arena_linear_memory_bytes: by_kind(RegionKind::LinearMemory),
            arena_control_block_bytes: by_kind(RegionKind::ControlBlock),
            arena_table_bytes: by_kind(RegionKind::Table),
            arena_stack_bytes: by_kind(RegionKind::Stack),
            host_heap_bytes,
            resident_bytes,
            bytes_per_process: per(arena_bytes + host_heap_bytes),
            resident_bytes_per_process: per(resident_bytes),
        }
    }
}

/// Whether `launch` samples at `live` processes, a new high: at powers
/// of two, then every 1,024 (a sample costs tens of microseconds).
pub(crate) fn worth_sampling(live: u64) -> bool {
    live.is_power_of_two() || live.is_multiple_of(1024)
}
