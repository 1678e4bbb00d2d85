//! Relocation: moving a live region of a store and patching every pointer
//! into it, while its guest is stopped at a safepoint.
//!
//! Guest-visible addresses are offsets into linear memories, so the only
//! absolute pointers into a region are the VM's own, and the VM knows
//! where each kind lives. That is the escape map, kept as structure rather
//! than as a list: for every region of a store, the locations that may
//! hold a pointer into it are
//!
//! - in every instance's vmctx: the header's store-context pointer, each
//!   funcref record's vmctx, each import record (memory, table and global
//!   definitions of other instances), each defined memory's and table's
//!   base, and each funcref global;
//! - every element of every funcref table (a pointer to a funcref record
//!   in some vmctx of the store);
//! - the store's [`ContextHome`](crate::fiber::ContextHome), the
//!   supervisor's record of where the store context is;
//! - the stack-map slots of every parked wasm frame of the store: the
//!   vmctx each frame uses and the funcref values it holds.
//!
//! Table elements change with every `table.set`, which JIT code does
//! inline; rather than log each write, relocation reads the current value
//! of every such location and moves it if it points into the old range.
//! The locations are known exactly, so no value is ever mistaken for a
//! pointer (externref tables and numeric globals are never looked at).
//! The map is current by construction: it is computed from the store's
//! layouts at the moment of the move.
//!
//! A move happens only where every frame of the store is described: on the
//! store's own thread, either inside a libcall of the running guest (whose
//! exit record the caller passes) or between calls, with every suspended
//! call parked at a poll or host call, whose exit records the store keeps.
//! Host code holds no arena pointer across those points (see `fiber`,
//! `host`); JIT code reloads memory bases after every call and keeps the
//! vmctx and funcrefs in stack-map slots, so what is patched here is what
//! the guest uses when it resumes.

use std::sync::atomic::{AtomicU64, Ordering};

/// Relocation figures, as `--stats` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelocationStats {
    pub relocations: u64,
    pub bytes_moved: u64,
    /// Pointers patched outside stack frames.
    pub escapes_patched: u64,
    /// Parked wasm frames with at least one patched slot.
    pub frames_patched: u64,
}

/// Counters a memory backend shares with the stores that move its regions.
#[derive(Debug, Default)]
pub struct RelocationCounters {
    relocations: AtomicU64,
    bytes_moved: AtomicU64,
    escapes_patched: AtomicU64,
    frames_patched: AtomicU64,
}

impl RelocationCounters {
    pub(crate) fn add(&self, done: RelocationStats) {
        self.relocations
            .fetch_add(done.relocations, Ordering::Relaxed);
        self.bytes_moved
            .fetch_add(done.bytes_moved, Ordering::Relaxed);
        self.escapes_patched
            .fetch_add(done.escapes_patched, Ordering::Relaxed);
        self.frames_patched
            .fetch_add(done.frames_patched, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RelocationStats {
        RelocationStats {
            relocations: self.relocations.load(Ordering::Relaxed),
            bytes_moved: self.bytes_moved.load(Ordering::Relaxed),
            escapes_patched: self.escapes_patched.load(Ordering::Relaxed),
            frames_patched: self.frames_patched.load(Ordering::Relaxed),
        }
    }
}

/// A region that has moved: pointers into `old..old + len` move by
/// `new - old`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Move {
    pub old: usize,
    pub len: usize,
    pub new: usize,
}

impl Move {
    /// Moves the pointer stored at `location` if it points into the old
    /// range; returns whether it did.
    ///
    /// # Safety
    /// `location` must be a live, aligned word that the VM owns and that
    /// holds a pointer or null: one of the escape locations listed above.
    pub unsafe fn patch(&self, location: *mut u64) -> bool {
        // SAFETY: per the contract.
        let value = unsafe { *location } as usize;
        if value.wrapping_sub(self.old) >= self.len {
            return false;
        }
        // SAFETY: as above.
        unsafe { *location = (value - self.old + self.new) as u64 };
        true
    }

    /// Patches the stack-map slots of every wasm frame parked below each
    /// exit record; returns how many frames had a slot patched.
    ///
    /// # Safety
    /// Each exit must be the exit record of a guest of the moving store
    /// that is stopped in that exit now (see `frames::walk`).
    pub unsafe fn patch_frames(&self, exits: impl IntoIterator<Item = usize>) -> u64 {
        let mut frames = 0;
        for exit in exits {
            // SAFETY: per the contract.
            unsafe {
                crate::frames::for_each_frame_slots(exit, |slots| {
                    let mut patched = false;
                    for slot in slots {
                        // SAFETY: stack-map slots of a parked frame hold
                        // arena pointers (vmctx, funcrefs) or null.
                        patched |= self.patch(slot);
                    }
                    frames += u64::from(patched);
                })
            };
        }
        frames
    }
}

/// A region of a store, by what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionRef {
    /// The store context: interrupt word, stack limit, fuel, exit record.
    Context,
    /// An instance's vmctx (its globals and funcref records included).
    Vmctx(crate::InstanceId),
    /// A defined linear memory.
    Memory(crate::Entity),
    /// A defined table's elements.
    Table(crate::Entity),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pointers_into_the_old_range_move() {
        let moved = Move {
            old: 0x1000,
            len: 0x100,
            new: 0x8000,
        };
        let mut words = [0u64, 0xfff, 0x1000, 0x1010, 0x10ff, 0x1100, u64::MAX];
        let patched: Vec<bool> = words
            .iter_mut()
            // SAFETY: plain words on the stack.
            .map(|w| unsafe { moved.patch(w) })
            .collect();
        assert_eq!(
            patched,
            [false, false, true, true, true, false, false],
            "{words:x?}"
        );
        assert_eq!(words, [0, 0xfff, 0x8000, 0x8010, 0x80ff, 0x1100, u64::MAX]);
    }
}
