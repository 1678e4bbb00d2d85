//! Slabs: the arena's small fixed-size control blocks (a store context,
//! an instance's vmctx), handed out as slots of larger chunks.
//!
//! A spawn allocates two control blocks and an exit frees them. Through
//! the allocation map each is a placement and a handful of B-tree updates
//! over maps as large as the number of live regions (three million
//! entries at a million processes), and those updates, cache misses
//! mostly, were the larger part of a spawn's and an exit's cost. A slab
//! takes a chunk from the map once per many blocks of one size and hands
//! its slots out from a free list: a block costs a few vector operations
//! and a lookup in the chunk index, which is small (a chunk holds at
//! least [`MIN_SLOTS`] blocks).
//!
//! Only bookkeeping lives here; the arena owns the bytes and the lock.
//! The arena zeroes a slot when it is taken, not when it is given back,
//! so a slot a move left poisoned stays poisoned until reused (and, in
//! an arena whose moves poison, given-back slots wait in a quarantine).
//! A chunk whose slots are all free goes back to the map unless, when
//! its last slot comes back, it is the only chunk of its size with a free
//! slot: that one is kept, so a process that ends and one that starts do
//! not give back and take a chunk each time. (It stays even if other
//! chunks of its size gain room later: at most one chunk per size, 64
//! sizes.)

use carat_guest_runtime::regions::NO_OWNER;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

/// Bytes in a chunk.
pub(crate) const CHUNK: usize = 64 << 10;
/// Fewest slots a chunk holds: blocks larger than `CHUNK / MIN_SLOTS` are
/// not slab blocks.
pub(crate) const MIN_SLOTS: usize = 16;
/// The largest slab block.
pub(crate) const MAX_SLOT: usize = CHUNK / MIN_SLOTS;
/// How many given-back slots wait before they can be taken again, when
/// moves poison (see [`Slabs::quarantine`]).
const QUARANTINE: usize = 256;

#[derive(Debug)]
struct Chunk {
    slot_len: usize,
    capacity: u32,
    /// Slots from here on have never been handed out.
    unused_from: u32,
    /// Slots given back, to hand out again first.
    free: Vec<u32>,
    live: u32,
    /// Who holds each slot handed out (a process id), for the arena map:
    /// four bytes a slot, a few per process.
    owners: Vec<u32>,
}

/// The slab bookkeeping of one arena.
#[derive(Debug, Default)]
pub(crate) struct Slabs {
    /// Every chunk, by its offset in the arena.
    chunks: BTreeMap<usize, Chunk>,
    /// By slot size: the chunks with a free slot, by offset.
    partial: HashMap<usize, BTreeSet<usize>>,
    /// Slots given back but not yet free, oldest first, when quarantined.
    quarantined: Option<VecDeque<usize>>,
}

impl Slabs {
    /// Holds every given-back slot back until [`QUARANTINE`] more have
    /// been: for arenas whose moves poison the range they leave, so that
    /// a pointer a move failed to patch reads the poison, not the block
    /// of the next process (free lists hand the last slot back first).
    pub(crate) fn quarantine(&mut self) {
        self.quarantined = Some(VecDeque::new());
    }

    /// A free slot of `slot_len` bytes (a multiple of the arena's small
    /// granularity, at most [`MAX_SLOT`]), or `None` when no chunk of
    /// that size has one: the caller then places a chunk and calls
    /// [`Slabs::add_chunk`].
    pub(crate) fn take(&mut self, slot_len: usize, owner: u32) -> Option<usize> {
        let partial = self.partial.get_mut(&slot_len)?;
        // The highest chunk first: slabs pack at the top of the arena,
        // like the small regions they replace.
        let &at = partial.last()?;
        let chunk = self.chunks.get_mut(&at).expect("a partial chunk exists");
        let index = chunk.free.pop().unwrap_or_else(|| {
            chunk.unused_from += 1;
            chunk.unused_from - 1
        });
        chunk.live += 1;
        if chunk.owners.len() <= index as usize {
            chunk.owners.resize(index as usize + 1, NO_OWNER);
        }
        chunk.owners[index as usize] = owner;
        if chunk.live == chunk.capacity {
            partial.remove(&at);
        }
        Some(at + index as usize * slot_len)
    }

    /// Registers a chunk of [`CHUNK`] bytes at `at`, just placed, for
    /// slots of `slot_len` bytes.
    pub(crate) fn add_chunk(&mut self, at: usize, slot_len: usize) {
        debug_assert!(slot_len > 0 && slot_len <= MAX_SLOT);
        let chunk = Chunk {
            slot_len,
            capacity: (CHUNK / slot_len) as u32,
            unused_from: 0,
            free: Vec::new(),
            live: 0,
            owners: Vec::new(),
        };
        self.chunks.insert(at, chunk);
        self.partial.entry(slot_len).or_default().insert(at);
    }

    /// Gives back the slot at `offset`. Returns the chunk's offset when
    /// the chunk is now empty and leaves the slab, for the caller to
    /// return to the map.
    pub(crate) fn give_back(&mut self, mut offset: usize) -> Option<usize> {
        if let Some(quarantined) = &mut self.quarantined {
            quarantined.push_back(offset);
            if quarantined.len() <= QUARANTINE {
                return None;
            }
            offset = quarantined.pop_front().expect("more than QUARANTINE");
        }
        let (&at, chunk) = self
            .chunks
            .range_mut(..=offset)
            .next_back()
            .expect("a slot lies in a chunk");
        let index = (offset - at) / chunk.slot_len;
        debug_assert!(offset < at + CHUNK && (offset - at).is_multiple_of(chunk.slot_len));
        debug_assert!((index as u32) < chunk.unused_from && !chunk.free.contains(&(index as u32)));
        chunk.free.push(index as u32);
        let was_full = chunk.live == chunk.capacity;
        chunk.live -= 1;
        let slot_len = chunk.slot_len;
        let empty = chunk.live == 0;
        let partial = self.partial.get_mut(&slot_len).expect("a size with chunks");
        if was_full {
            partial.insert(at);
        }
        if empty && partial.len() > 1 {
            partial.remove(&at);
            self.chunks.remove(&at);
            return Some(at);
        }
        None
    }

    /// Whether `offset` is the start of a chunk.
    pub(crate) fn is_chunk(&self, offset: usize) -> bool {
        self.chunks.contains_key(&offset)
    }

    /// Who holds the slot at `offset`.
    pub(crate) fn owner_of(&self, offset: usize) -> u32 {
        let (&at, chunk) = self
            .chunks
            .range(..=offset)
            .next_back()
            .expect("a slot lies in a chunk");
        chunk.owners[(offset - at) / chunk.slot_len]
    }

    /// The slots handed out, as (offset, slot length, owner), by offset.
    pub(crate) fn live_slots(&self) -> Vec<(usize, usize, u32)> {
        let mut slots = Vec::new();
        let quarantined = self.quarantined.iter().flatten();
        for (&at, chunk) in &self.chunks {
            let mut given_back = vec![false; chunk.unused_from as usize];
            for &index in &chunk.free {
                given_back[index as usize] = true;
            }
            for &offset in quarantined
                .clone()
                .filter(|o| (at..at + CHUNK).contains(*o))
            {
                given_back[(offset - at) / chunk.slot_len] = true;
            }
            slots.extend(
                given_back
                    .iter()
                    .enumerate()
                    .filter(|(_, free)| !**free)
                    .map(|(index, _)| {
                        let offset = at + index * chunk.slot_len;
                        (offset, chunk.slot_len, chunk.owners[index])
                    }),
            );
        }
        slots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_distinct_reused_and_chunks_come_and_go() {
        let mut slabs = Slabs::default();
        assert_eq!(slabs.take(128, 0), None, "no chunk yet");
        slabs.add_chunk(CHUNK * 10, 128);
        let per_chunk = CHUNK / 128;
        let mut slots: Vec<usize> = (0..per_chunk)
            .map(|_| slabs.take(128, 0).unwrap())
            .collect();
        assert_eq!(slabs.take(128, 0), None, "the chunk is full");
        let mut sorted = slots.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), per_chunk, "distinct slots");
        assert!(
            sorted
                .iter()
                .all(|&s| (CHUNK * 10..CHUNK * 11).contains(&s))
        );
        slabs.add_chunk(CHUNK * 20, 128);
        let in_second = slabs.take(128, 0).unwrap();
        assert!(in_second >= CHUNK * 20);
        // A slot given back in the first chunk is handed out again.
        let back = slots.pop().unwrap();
        assert_eq!(slabs.give_back(back), None);
        assert_eq!(slabs.live_slots().len(), per_chunk);
        // The highest chunk with room goes first.
        assert!(slabs.take(128, 0).unwrap() >= CHUNK * 20);
        // Emptying the first chunk while the second has room releases it.
        let mut released = Vec::new();
        for slot in slots {
            released.extend(slabs.give_back(slot));
        }
        assert_eq!(released, vec![CHUNK * 10]);
        assert!(!slabs.is_chunk(CHUNK * 10));
        // The last chunk with room is kept even when empty.
        let live: Vec<usize> = slabs.live_slots().iter().map(|&(at, ..)| at).collect();
        for slot in live {
            assert_eq!(slabs.give_back(slot), None);
        }
        assert!(slabs.is_chunk(CHUNK * 20));
        assert!(slabs.live_slots().is_empty());
    }

    #[test]
    fn sizes_keep_to_their_own_chunks() {
        let mut slabs = Slabs::default();
        slabs.add_chunk(0, 64);
        slabs.add_chunk(CHUNK, MAX_SLOT);
        assert!(slabs.take(64, 0).unwrap() < CHUNK);
        assert!(slabs.take(MAX_SLOT, 0).unwrap() >= CHUNK);
        assert_eq!(slabs.take(192, 0), None);
    }
}
