//! The allocation map: the arena's bookkeeping, apart from its bytes.
//! Which ranges hold live regions, which are free (by offset and by
//! size), which free ones may hold stale bytes, the slab chunks of small
//! control blocks, and where a new or moving region goes (placement; the
//! rules are argued in `arena`'s module doc). It never touches the
//! mapping: the arena zeroes, copies and hands back bytes, outside the
//! map's lock where it can.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use carat_guest_runtime::RegionKind;

use crate::arena::{ArenaStats, RegionRecord};
use crate::slab::{self, Slabs};

/// Granularity of control blocks and tables.
pub(crate) const SMALL_ALIGN: usize = 64;
/// Granularity of linear memories: a wasm page.
pub(crate) const LARGE_ALIGN: usize = 64 * 1024;
/// Granularity of stacks: small, since most stay small (they grow by
/// moving, see `carat_guest_runtime::stacks`).
pub(crate) const STACK_ALIGN: usize = 16 * 1024;

/// How many freed memories' ranges the map holds as vacancies.
const VACANCIES_KEPT: usize = 64;

/// Stale bytes are always allowed up to this much (beyond the arena's
/// live bytes).
pub(crate) const STALE_FLOOR: usize = 64 << 20;

/// Where [`AllocationMap::place`] put a region: its offset, the room
/// after it reserved for its growth (taken from the free map with it), and
/// the stale pieces of both, for the caller to zero or overwrite.
#[must_use = "stale pieces must be zeroed before the range is used"]
pub(crate) struct Placement {
    pub(crate) offset: usize,
    pub(crate) room: usize,
    pub(crate) stale: Vec<(usize, usize)>,
}

/// A freed linear memory's range, neither live nor free: the next memory
/// it holds takes it, with its stale pieces (a process ending and one
/// starting, the turnover of a service host), and what that memory does
/// not need goes to the free map.
/// Taking or leaving it is one update of the region map: through the free
/// maps, a spawn and an exit took a dozen B-tree updates over maps as
/// large as the number of live processes, mostly cache misses, more than
/// the rest of a spawn. Vacancies go to the free map when there are more
/// than [`VACANCIES_KEPT`], when a placement finds no room without them,
/// and when stale bytes are trimmed.
#[derive(Debug)]
pub(crate) struct Vacancy {
    pub(crate) offset: usize,
    pub(crate) len: usize,
    /// Its pieces that may hold non-zero bytes, counted in
    /// `ArenaStats::stale_bytes` like the stale map's.
    pub(crate) stale: Vec<(usize, usize)>,
    /// Of a warm place the janitor made, the pages it backed (see
    /// `janitor`): they read zero, so a memory that takes them needs no
    /// zeroing (a spawn that zeroed its warm page with stores paid most of
    /// what the fault had cost, in cache misses), but if they go back to
    /// the free map they are listed stale there, for a trim to hand back.
    /// A memory takes a freed memory's range of the same length before a
    /// warm place: its resident pages would otherwise wait to be trimmed
    /// while the janitor faults new ones in.
    pub(crate) backed: Vec<(usize, usize)>,
}

impl Vacancy {
    fn stale_len(&self) -> usize {
        self.stale.iter().map(|&(_, n)| n).sum()
    }
}

/// A freed region whose pages the janitor has yet to ask the page map
/// about (see `janitor`): meanwhile neither live, nor free, nor a vacancy,
/// so nothing is placed on bytes nobody has listed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Unscanned {
    pub(crate) offset: usize,
    /// Its bytes, which may hold data.
    pub(crate) len: usize,
    /// Bytes after them that read zero (a memory's room).
    pub(crate) room: usize,
    /// A linear memory's range, to become a vacancy; anything else goes
    /// to the free map.
    pub(crate) memory: bool,
}

impl Unscanned {
    /// The bytes it holds out of the map: its own and its room.
    pub(crate) fn span(&self) -> usize {
        self.len + self.room
    }
}

#[derive(Debug, Default)]
pub(crate) struct AllocationMap {
    /// Live regions by offset.
    pub(crate) regions: BTreeMap<usize, RegionRecord>,
    /// Free ranges by offset, never adjacent to each other.
    pub(crate) free: BTreeMap<usize, usize>,
    /// The same free ranges by (length, offset).
    pub(crate) free_by_size: BTreeSet<(usize, usize)>,
    /// Their bytes: not memories' rooms nor vacancies, which only
    /// memories take.
    pub(crate) free_bytes: usize,
    /// Bytes of live regions' rooms: what giving them back could add to
    /// the free map (see `or_without_kept`), without a scan of every
    /// region to find out.
    room_bytes: usize,
    /// Regions (by offset) whose room has stale pieces a placement is
    /// zeroing outside the lock: their rooms must not be given back until
    /// it is done, or another region would get the bytes (and then see
    /// them zeroed under it). See [`AllocationMap::zeroing_room`].
    rooms_zeroing: std::collections::HashSet<usize>,
    /// Free ranges that may hold non-zero bytes, by offset: disjoint, each
    /// inside a free range.
    pub(crate) stale: BTreeMap<usize, usize>,
    /// Small control blocks, in chunks that are regions of this map.
    pub(crate) slabs: Slabs,
    /// The ranges of the last memories freed, newest last, held out of
    /// the free map for the next memories of their lengths (see
    /// [`Vacancy`]).
    pub(crate) vacancies: VecDeque<Vacancy>,
    /// Freed regions whose pages the janitor has not yet asked the page
    /// map about (see `janitor`).
    pub(crate) unscanned: Vec<Unscanned>,
    /// Bytes a thread has taken out of every list and will give back (see
    /// `janitor`): warm places being readied, unscanned ranges being
    /// scanned, stale pieces being trimmed. A placement that finds no room
    /// waits for them (`Arena::placing`).
    pub(crate) held: usize,
    /// Placements waiting for held bytes: meanwhile the janitor takes no
    /// more (it readies no warm places and trims nothing).
    pub(crate) waiting: usize,
    /// Length and room of the latest memory placed: what the janitor
    /// keeps warm places for.
    pub(crate) memory_shape: usize,
    /// The latest memory placed on fresh bytes, with no stale pieces
    /// (offset, length), for the janitor to learn which of its pages a new
    /// process writes.
    pub(crate) newest_memory: Option<(usize, usize)>,
    /// The latest moves, oldest first, for the arena map: from, to,
    /// length, kind.
    pub(crate) moves: VecDeque<(usize, usize, usize, RegionKind)>,
    pub(crate) moves_total: u64,
    pub(crate) stats: ArenaStats,
}

impl AllocationMap {
    pub(crate) fn insert_free(&mut self, offset: usize, len: usize) {
        self.free.insert(offset, len);
        self.free_by_size.insert((len, offset));
        self.free_bytes += len;
    }

    pub(crate) fn remove_free(&mut self, offset: usize) -> usize {
        let len = self.free.remove(&offset).expect("free range exists");
        self.free_by_size.remove(&(len, offset));
        self.free_bytes -= len;
        len
    }

    /// Takes `offset..offset + len` out of the free range starting at
    /// `gap`, returning the pieces on either side to the free map. This is
    /// the one way bytes leave the free map; the stale pieces of the range
    /// come with them, for the caller to zero or overwrite.
    #[must_use = "stale pieces must be zeroed before the range is used"]
    pub(crate) fn carve(&mut self, gap: usize, offset: usize, len: usize) -> Vec<(usize, usize)> {
        let gap_len = self.remove_free(gap);
        debug_assert!(gap <= offset && offset + len <= gap + gap_len);
        if offset > gap {
            self.insert_free(gap, offset - gap);
        }
        let end = offset + len;
        if end < gap + gap_len {
            self.insert_free(end, gap + gap_len - end);
        }
        self.take_stale(offset, len)
    }

    pub(crate) fn stale_limit(&self) -> usize {
        STALE_FLOOR.max(2 * self.stats.live_bytes)
    }

    /// Lists a just-freed range as holding stale bytes.
    pub(crate) fn mark_stale(&mut self, offset: usize, len: usize) {
        if len == 0 {
            return;
        }
        debug_assert!(
            self.free
                .range(..=offset)
                .next_back()
                .is_some_and(|(&gap, &gap_len)| offset + len <= gap + gap_len),
            "stale bytes are free bytes"
        );
        self.stale.insert(offset, len);
        self.stats.stale_bytes += len;
    }

    /// Removes the stale pieces that overlap `offset..offset + len` from
    /// the list and returns the overlaps; what lies outside stays listed.
    pub(crate) fn take_stale(&mut self, offset: usize, len: usize) -> Vec<(usize, usize)> {
        let end = offset + len;
        let first = match self.stale.range(..offset).next_back() {
            Some((&start, &n)) if start + n > offset => start,
            _ => offset,
        };
        let overlapping: Vec<(usize, usize)> = self
            .stale
            .range(first..end)
            .map(|(&start, &n)| (start, n))
            .collect();
        let mut taken = Vec::with_capacity(overlapping.len());
        for (start, n) in overlapping {
            self.stale.remove(&start);
            self.stats.stale_bytes -= n;
            let (lo, hi) = (start.max(offset), (start + n).min(end));
            taken.push((lo, hi - lo));
            for (keep, keep_len) in [(start, lo - start), (hi, start + n - hi)] {
                if keep_len > 0 {
                    self.stale.insert(keep, keep_len);
                    self.stats.stale_bytes += keep_len;
                }
            }
        }
        taken
    }

    /// Records a placed slab chunk: its bytes are taken from the map, but
    /// it is not a region anyone holds (see [`AllocationMap::count_slot`]).
    pub(crate) fn add_chunk(&mut self, offset: usize, slot_len: usize) {
        let record = RegionRecord {
            kind: RegionKind::ControlBlock,
            len: slab::CHUNK,
            room: 0,
            owner: carat_guest_runtime::regions::NO_OWNER,
        };
        self.regions.insert(offset, record);
        self.stats.live_bytes += record.len;
        self.stats.peak_bytes = self.stats.peak_bytes.max(self.stats.live_bytes);
        self.slabs.add_chunk(offset, slot_len);
    }

    /// The live regions, by offset: slab blocks, not their chunks.
    pub(crate) fn live_regions(&self) -> Vec<(usize, RegionRecord)> {
        let mut regions: Vec<(usize, RegionRecord)> = self
            .regions
            .iter()
            .filter(|(offset, _)| !self.slabs.is_chunk(**offset))
            .map(|(o, r)| (*o, *r))
            .collect();
        let kind = RegionKind::ControlBlock;
        regions.extend(
            self.slabs
                .live_slots()
                .into_iter()
                .map(|(offset, len, owner)| {
                    let record = RegionRecord {
                        kind,
                        len,
                        room: 0,
                        owner,
                    };
                    (offset, record)
                }),
        );
        regions.sort_by_key(|(offset, _)| *offset);
        regions
    }

    /// Remembers a move for the arena map (the latest
    /// `arena_map::MAX_ARROWS`).
    pub(crate) fn record_move(&mut self, from: usize, to: usize, len: usize, kind: RegionKind) {
        if self.moves.len() == crate::arena_map::MAX_ARROWS {
            self.moves.pop_front();
        }
        self.moves.push_back((from, to, len, kind));
        self.moves_total += 1;
    }

    /// Counts a slab block of `slot_len` bytes taken (or given back) as a
    /// live region.
    pub(crate) fn count_slot(&mut self, slot_len: usize, taken: bool) {
        let kind = RegionKind::ControlBlock as usize;
        if taken {
            self.stats.live_regions += 1;
            self.stats.live_by_kind[kind] += slot_len;
        } else {
            self.stats.live_regions -= 1;
            self.stats.live_by_kind[kind] -= slot_len;
        }
    }

    /// Records a placed region as live and counts its bytes.
    pub(crate) fn add_region(&mut self, offset: usize, record: RegionRecord) {
        self.regions.insert(offset, record);
        self.room_bytes += record.room;
        self.count_live(record.kind, record.len);
        self.stats.live_regions += 1;
    }

    /// Counts `len` more live bytes of `kind` (a region placed or grown).
    pub(crate) fn count_live(&mut self, kind: RegionKind, len: usize) {
        let stats = &mut self.stats;
        stats.live_bytes += len;
        stats.live_by_kind[kind as usize] += len;
        stats.peak_bytes = stats.peak_bytes.max(stats.live_bytes);
    }

    /// Returns a live region's range (or an empty chunk's, which
    /// `Slabs::give_back` has let go) to the free map and uncounts it.
    pub(crate) fn remove_region(&mut self, offset: usize, chunk: bool) {
        let record = self.uncount(offset, chunk);
        self.release(offset, record.len + record.room);
    }

    /// Removes a live region's record (or an empty chunk's) and uncounts
    /// it, leaving its range to the caller (see [`AllocationMap::vacate`],
    /// [`AllocationMap::settle`]).
    pub(crate) fn uncount_region(&mut self, offset: usize, chunk: bool) {
        self.uncount(offset, chunk);
    }

    /// Gives a freed region the janitor has scanned its place: a memory's
    /// range becomes a vacancy, anything else's goes to the free map, with
    /// `stale`, the pieces that may hold data.
    pub(crate) fn settle(&mut self, freed: Unscanned, stale: Vec<(usize, usize)>) {
        if freed.memory {
            self.vacate(freed.offset, freed.span(), stale, Vec::new());
        } else {
            self.release(freed.offset, freed.span());
            for (at, n) in stale {
                self.mark_stale(at, n);
            }
        }
    }

    fn uncount(&mut self, offset: usize, chunk: bool) -> RegionRecord {
        let record = self.regions.remove(&offset).expect("live region");
        self.room_bytes -= record.room;
        self.stats.live_bytes -= record.len;
        if !chunk {
            self.stats.live_by_kind[record.kind as usize] -= record.len;
            self.stats.live_regions -= 1;
        }
        record
    }

    /// Returns a range to the free map, merging it with its neighbours.
    pub(crate) fn release(&mut self, mut offset: usize, mut len: usize) {
        if let Some((&prev, &prev_len)) = self.free.range(..offset).next_back()
            && prev + prev_len == offset
        {
            self.remove_free(prev);
            offset = prev;
            len += prev_len;
        }
        if let Some(&next_len) = self.free.get(&(offset + len)) {
            self.remove_free(offset + len);
            len += next_len;
        }
        self.insert_free(offset, len);
    }

    /// Where a new region of `kind` and `len` bytes goes, with `room`
    /// bytes after it reserved for growth if a gap allows (the rules are in
    /// `arena`'s module doc), taken from the map with its stale pieces. A
    /// memory takes the smallest vacancy that holds it and its room. If
    /// nothing fits, what is kept for memories is given up (see
    /// [`AllocationMap::or_without_kept`]).
    pub(crate) fn place(&mut self, kind: RegionKind, len: usize, room: usize) -> Option<Placement> {
        if kind == RegionKind::LinearMemory {
            self.memory_shape = len + room;
            if let Some(placed) = self.take_vacancy(len + room) {
                return Some(Placement { room, ..placed });
            }
        }
        let placed = self.or_without_kept(len, |map| map.place_in_free_map(kind, len, room))?;
        // Only a memory on bytes nobody used shows what its process writes:
        // stale pieces zeroed with stores are resident too.
        if kind == RegionKind::LinearMemory && placed.stale.is_empty() {
            self.newest_memory = Some((placed.offset, len));
        }
        Some(placed)
    }

    /// A range of `len` bytes taken from the free map where a memory of
    /// that length and room would go, for the janitor to warm and hold as
    /// a vacancy; nothing if that needs what is kept for memories.
    pub(crate) fn place_warm(&mut self, len: usize) -> Option<Placement> {
        self.place_in_free_map(RegionKind::LinearMemory, len, 0)
    }

    /// What `place` finds in the free map; if nothing, what it finds once
    /// the vacancies are given back to it; if still nothing, once every
    /// memory's room is too. Bytes kept for memories never make a
    /// placement fail: a guest spawning growable memories must not leave
    /// the arena half full of rooms and refuse everything else.
    ///
    /// Each is given back only if, with the free map, it holds the
    /// `needed` bytes the placement needs at least: a placement that
    /// cannot succeed (a guest's `memory.grow` past the arena, in a loop)
    /// must not strip every memory's room, nor scan them all each time.
    pub(crate) fn or_without_kept(
        &mut self,
        needed: usize,
        place: impl Fn(&mut Self) -> Option<Placement>,
    ) -> Option<Placement> {
        place(self)
            .or_else(|| {
                let vacant: usize = self.vacancies.iter().map(|v| v.len).sum();
                let could = needed <= self.free_bytes + vacant;
                (could && self.release_vacancies()).then(|| place(self))?
            })
            .or_else(|| {
                // Not while freed ranges wait for the janitor: the caller
                // settles them and tries again first (`Arena::placing`).
                let settled = self.unscanned.is_empty() && self.held == 0;
                let could = needed <= self.free_bytes + self.room_bytes;
                (settled && could && self.release_rooms()).then(|| place(self))?
            })
    }

    /// Notes that the placement of the region at `offset` (`len` bytes,
    /// `room` after them) has `stale` pieces in its room, to be zeroed
    /// outside the lock; `Some(offset)` if so, for the zeroing to end
    /// with [`AllocationMap::room_zeroed`] (`StaleBytes` does).
    pub(crate) fn zeroing_room(
        &mut self,
        offset: usize,
        len: usize,
        room: usize,
        stale: &[(usize, usize)],
    ) -> Option<usize> {
        let (start, end) = (offset + len, offset + len + room);
        let pending = room > 0 && stale.iter().any(|&(at, n)| at < end && at + n > start);
        pending.then(|| {
            self.rooms_zeroing.insert(offset);
            offset
        })
    }

    /// The room of the region at `offset` reads zero again (see
    /// [`AllocationMap::zeroing_room`]).
    pub(crate) fn room_zeroed(&mut self, offset: usize) {
        self.rooms_zeroing.remove(&offset);
    }

    /// Gives every memory's room to the free map (it reads zero: taken
    /// zeroed, never reached by its guest); such a memory then grows in
    /// place only into free bytes after it, or moves. A scan of every
    /// region, made only when the arena has no room left. False if no
    /// memory had room.
    pub(crate) fn release_rooms(&mut self) -> bool {
        let zeroing = &self.rooms_zeroing;
        let rooms: Vec<(usize, usize)> = self
            .regions
            .iter_mut()
            .filter(|(offset, record)| record.room > 0 && !zeroing.contains(offset))
            .map(|(&offset, record)| (offset + record.len, std::mem::take(&mut record.room)))
            .collect();
        for &(at, room) in &rooms {
            self.room_bytes -= room;
            self.release(at, room);
        }
        !rooms.is_empty()
    }

    /// A live region's room shrank to `room` (it grew into the rest).
    pub(crate) fn set_room(&mut self, offset: usize, room: usize) {
        let record = self.regions.get_mut(&offset).expect("live region");
        self.room_bytes -= record.room - room;
        record.room = room;
    }

    /// The smallest vacancy that holds `wanted` bytes (of equals, a freed
    /// memory's before a warm place, then the newest), its head taken for
    /// them and the rest given to the free map, each part with its stale
    /// pieces.
    fn take_vacancy(&mut self, wanted: usize) -> Option<Placement> {
        let (i, _) = self
            .vacancies
            .iter()
            .enumerate()
            .rev()
            .filter(|(_, v)| v.len >= wanted)
            .min_by_key(|(_, v)| (v.len, !v.backed.is_empty()))?;
        Some(self.take_vacancy_at(i, wanted))
    }

    /// Where a memory compacting to below `limit` goes, with `wanted`
    /// bytes (its length and room): the lowest place below `limit` among
    /// the free map's first fit and the vacancies that hold it (a memory
    /// may take a vacancy, a range kept for memories). Failing both, the
    /// vacancies below `limit`, holes a compaction is for, go to the free
    /// map, where those that touch merge, and the free map is tried once
    /// more. Those above stay: a compaction that finds no place is the
    /// common case at a park, and giving every vacancy back for it emptied
    /// the cache at every park.
    pub(crate) fn place_compacting(
        &mut self,
        kind: RegionKind,
        len: usize,
        room: usize,
        limit: usize,
    ) -> Option<Placement> {
        let wanted = len.checked_add(room)?;
        let vacancy = self
            .vacancies
            .iter()
            .enumerate()
            .filter(|(_, v)| v.offset < limit && v.len >= wanted)
            .min_by_key(|(_, v)| v.offset)
            .map(|(i, v)| (i, v.offset));
        let free_limit = vacancy.map_or(limit, |(_, offset)| offset);
        if let Some(placed) = self.place_with_room(kind, len, room, Some(free_limit)) {
            return Some(placed);
        }
        if let Some((i, _)) = vacancy {
            return Some(Placement {
                room,
                ..self.take_vacancy_at(i, wanted)
            });
        }
        self.release_vacancies_where(|v| v.offset < limit)
            .then(|| self.place_with_room(kind, len, room, Some(limit)))?
    }

    /// Takes vacancy `i` for `wanted` bytes: its head with the stale
    /// pieces there; the rest, with its own, goes to the free map.
    fn take_vacancy_at(&mut self, i: usize, wanted: usize) -> Placement {
        let vacancy = self.vacancies.remove(i).expect("a vacancy");
        self.stats.stale_bytes -= vacancy.stale_len();
        let end = vacancy.offset + wanted;
        let mut stale = Vec::with_capacity(vacancy.stale.len());
        let mut rest = Vec::new();
        for (at, n) in vacancy.stale {
            if at + n <= end {
                stale.push((at, n));
            } else if at >= end {
                rest.push((at, n));
            } else {
                stale.push((at, end - at));
                rest.push((end, at + n - end));
            }
        }
        // Backed pages read zero: those taken need nothing, those given
        // back are listed stale with the rest.
        for (at, n) in vacancy.backed {
            if at >= end {
                rest.push((at, n));
            } else if at + n > end {
                rest.push((end, at + n - end));
            }
        }
        if vacancy.len > wanted {
            self.release(end, vacancy.len - wanted);
            for (at, n) in rest {
                self.mark_stale(at, n);
            }
        }
        Placement {
            offset: vacancy.offset,
            room: 0,
            stale,
        }
    }

    /// Holds a freed linear memory's range (its room included), its record
    /// already removed, as a vacancy with its stale pieces; the oldest goes
    /// to the free map past [`VACANCIES_KEPT`].
    pub(crate) fn vacate(
        &mut self,
        offset: usize,
        len: usize,
        stale: Vec<(usize, usize)>,
        backed: Vec<(usize, usize)>,
    ) {
        if self.vacancies.len() == VACANCIES_KEPT {
            let oldest = self.vacancies.pop_front().expect("kept vacancies");
            self.release_vacancy(oldest);
        }
        let vacancy = Vacancy {
            offset,
            len,
            stale,
            backed,
        };
        self.stats.stale_bytes += vacancy.stale_len();
        self.vacancies.push_back(vacancy);
    }

    /// Gives every vacancy to the free map, its stale pieces listed.
    /// False if there were none.
    pub(crate) fn release_vacancies(&mut self) -> bool {
        self.release_vacancies_where(|_| true)
    }

    /// Gives the vacancies `which` picks to the free map; false if it
    /// picked none.
    fn release_vacancies_where(&mut self, which: impl Fn(&Vacancy) -> bool) -> bool {
        let (released, kept): (VecDeque<Vacancy>, VecDeque<Vacancy>) =
            std::mem::take(&mut self.vacancies)
                .into_iter()
                .partition(which);
        self.vacancies = kept;
        let any = !released.is_empty();
        for vacancy in released {
            self.release_vacancy(vacancy);
        }
        any
    }

    fn release_vacancy(&mut self, vacancy: Vacancy) {
        self.stats.stale_bytes -= vacancy.stale_len();
        self.release(vacancy.offset, vacancy.len);
        for (at, n) in vacancy.stale.into_iter().chain(vacancy.backed) {
            self.mark_stale(at, n);
        }
    }

    fn place_in_free_map(
        &mut self,
        kind: RegionKind,
        len: usize,
        room: usize,
    ) -> Option<Placement> {
        let align = granularity(kind);
        let (gap, offset, room) = if room > 0 {
            // Best fit for the memory and its room, at the end of the gap:
            // memories pack side by side, sixteen one-page memories with
            // room to double to a page table's 2 MiB. (Each memory alone in
            // the middle of the largest gap cost a process a page-table
            // page, 4 KiB, and a spawn the page fault's page-table
            // allocation.) The room is the memory's, not the free map's,
            // so nothing else is placed there; a memory that outgrows it
            // moves, with room again (see
            // `RelocationPolicy::growth_headroom`). Without a gap that
            // large, the memory alone.
            match self.best_fit_at_end(len + room, align) {
                Some((gap, offset)) => (gap, offset, room),
                None => {
                    let (gap, offset) = self.best_fit_at_end(len, align)?;
                    (gap, offset, 0)
                }
            }
        } else if kind == RegionKind::Stack {
            // Best fit by size, at the gap's end: a stack is large next to
            // the small regions at the top, and a walk down every small gap
            // there made each of 100,000 spawns' stacks cost a scan of the
            // whole map; the size index answers in a logarithm, and a freed
            // stack's hole is the first a new stack takes.
            let (gap, offset) = self.best_fit_at_end(len, align)?;
            (gap, offset, 0)
        } else {
            // First fit from the top of the arena: small regions pack at
            // the top, and freed ranges there are reused first.
            let (gap, offset) = self.free.iter().rev().find_map(|(&gap, &gap_len)| {
                let offset = (gap + gap_len).checked_sub(len)? / align * align;
                (offset >= gap).then_some((gap, offset))
            })?;
            (gap, offset, 0)
        };
        Some(self.take_placed(gap, offset, len, room))
    }

    /// Takes `len` bytes and `room` after them at `offset` out of the gap
    /// at `gap`, for a placement.
    fn take_placed(&mut self, gap: usize, offset: usize, len: usize, room: usize) -> Placement {
        let stale = self.carve(gap, offset, len + room);
        Placement {
            offset,
            room,
            stale,
        }
    }
}

impl AllocationMap {
    /// The smallest gap that holds `len` bytes at an `align`ed offset, and
    /// that offset, as high in the gap as it goes, so what stays free is
    /// one range below. A logarithm in the number of gaps, plus the gaps
    /// too small once aligned.
    fn best_fit_at_end(&self, len: usize, align: usize) -> Option<(usize, usize)> {
        self.free_by_size
            .range((len, 0)..)
            .find_map(|&(gap_len, gap)| {
                let offset = (gap + gap_len).checked_sub(len)? / align * align;
                (offset >= gap).then_some((gap, offset))
            })
    }

    /// First fit from the bottom for `len` bytes followed by `room` free
    /// ones: the lowest gap that holds both, from its start; else the
    /// start of the largest gap, if `len` fits there.
    ///
    /// With `below`, only a place under that offset will do (compaction),
    /// and there is no fallback.
    ///
    /// Only the free map is looked at; see
    /// [`AllocationMap::or_without_kept`].
    pub(crate) fn place_with_room(
        &mut self,
        kind: RegionKind,
        len: usize,
        room: usize,
        below: Option<usize>,
    ) -> Option<Placement> {
        let align = granularity(kind);
        let wanted = len.checked_add(room)?;
        let limit = below.unwrap_or(usize::MAX);
        let chosen = self.free.range(..limit).find_map(|(&gap, &gap_len)| {
            let offset = gap.next_multiple_of(align);
            (offset < limit && offset + wanted <= gap + gap_len).then_some((gap, offset))
        });
        if chosen.is_none() && below.is_some() {
            return None;
        }
        // Without a gap that large, the start of the largest gap gives the
        // most room there is.
        let (gap, offset, room) = match chosen {
            Some((gap, offset)) => (gap, offset, room),
            None => {
                let &(gap_len, gap) = self.free_by_size.last()?;
                let offset = gap.next_multiple_of(align);
                if offset + len > gap + gap_len {
                    return None;
                }
                (gap, offset, 0)
            }
        };
        Some(self.take_placed(gap, offset, len, room))
    }
}

/// The slot a slab block of `len` bytes takes.
pub(crate) fn slot_len(len: usize) -> usize {
    len.max(1).next_multiple_of(SMALL_ALIGN)
}

pub(crate) fn granularity(kind: RegionKind) -> usize {
    match kind {
        RegionKind::LinearMemory => LARGE_ALIGN,
        RegionKind::Stack => STACK_ALIGN,
        RegionKind::ControlBlock | RegionKind::Table => SMALL_ALIGN,
    }
}
