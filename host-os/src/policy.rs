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
//! - parks: while the arena's free space is fragmented past
//!   [`COMPACTION_THRESHOLD`], each process that parks moves its memories
//!   down into the lowest ranges that hold them, one process at a time,
//!   so the free space coalesces without stopping anyone.

use crate::Arena;
use carat_guest_runtime::RelocationPolicy;

/// The arena fragmentation (see [`Arena::fragmentation`]) above which a
/// process is compacted whenever it parks.
pub const COMPACTION_THRESHOLD: f64 = 0.5;

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
        self.arena.fragmentation() > COMPACTION_THRESHOLD
    }
}
