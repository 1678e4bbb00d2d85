//! When CARAT mode moves regions: the supervisor's relocation policy.
//!
//! The runtime asks this at the three points where a move can happen (see
//! `carat_guest_runtime::RelocationPolicy`):
//!
//! - growth: a memory whose next bytes are taken moves with as much room
//!   again after it (up to its maximum), so a memory that keeps growing
//!   moves a logarithmic number of times;
//! - polls: the stress schedule, `--relocate-every N`, moves every region
//!   of a process at every Nth poll (tests use it to prove that nothing
//!   observable changes);
//! - parks: while the arena is more than [`COMPACTION_PRESSURE`] full
//!   and its free space is fragmented past [`COMPACTION_THRESHOLD`], each
//!   process that parks moves its memories down into the lowest ranges
//!   that hold them, one process at a time, so the free space coalesces
//!   without stopping anyone.

use crate::Arena;
use carat_guest_runtime::RelocationPolicy;

/// The arena fragmentation (see [`Arena::fragmentation`]) above which a
/// process is compacted whenever it parks.
pub const COMPACTION_THRESHOLD: f64 = 0.5;

/// The share of the arena's bytes in use below which parks never
/// compact, however fragmented the free space. Growable memories are
/// placed in the middle of the largest gap on purpose, to keep room to
/// grow, which reads as fragmentation long before any spawn or growth
/// lacks room: compacting then moved every process once at its first
/// park, for nothing (50,000 moves in a launch of 50,000 sleepers, each
/// leaving a resident page behind). A growth that finds no room compacts
/// its own process whatever the pressure (see `memory_grow`).
pub const COMPACTION_PRESSURE: f64 = 0.5;

/// CARAT mode's policy over one arena.
#[derive(Debug)]
pub struct CaratPolicy {
    arena: Arena,
    stress_every: u64,
}

impl CaratPolicy {
    /// The policy for `arena`; `stress_every` is the stress schedule (0:
    /// off).
    pub fn new(arena: Arena, stress_every: u64) -> Self {
        CaratPolicy {
            arena,
            stress_every,
        }
    }
}

impl RelocationPolicy for CaratPolicy {
    fn stress_every(&self) -> u64 {
        self.stress_every
    }

    fn compact_at_park(&self) -> bool {
        let stats = self.arena.stats();
        stats.live_bytes as f64 > COMPACTION_PRESSURE * stats.capacity as f64
            && self.arena.fragmentation() > COMPACTION_THRESHOLD
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegionKind;

    #[test]
    fn parks_compact_a_fragmented_arena_only_when_it_runs_short() {
        let size = 64 << 20;
        let arena = Arena::new(size, false).unwrap();
        let policy = CaratPolicy::new(arena.clone(), 0);
        // Growable memories spread out through the free space: fragmented,
        // but nearly all of it free.
        let memories: Vec<_> = (0..8)
            .map(|_| {
                arena
                    .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
                    .unwrap()
            })
            .collect();
        assert!(arena.fragmentation() > COMPACTION_THRESHOLD);
        assert!(!policy.compact_at_park(), "plenty of room: no moves");
        // Fill nearly all of it, then free every fourth MiB: fragmented
        // and short of room.
        let mut tables = Vec::new();
        while let Ok(table) = arena.allocate(RegionKind::Table, 1 << 20, 1 << 20) {
            tables.push(table);
        }
        let mut index = 0;
        tables.retain(|_| {
            index += 1;
            index % 4 != 0
        });
        assert!(arena.fragmentation() > COMPACTION_THRESHOLD);
        assert!(policy.compact_at_park(), "short of room and fragmented");
        drop(memories);
    }
}
