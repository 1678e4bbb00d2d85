//! The arena: one flat mapping that stands for physical memory, and the
//! allocation map that carves it into regions.
//!
//! In CARAT mode every byte of guest state lives here. The mapping is
//! reserved once (anonymous, no swap reservation), so untouched bytes cost
//! no memory and allocating a region is pure bookkeeping: no system call.
//!
//! Placement keeps growth cheap without reserving address space per
//! memory the way paging does (the bookkeeping is `allocation_map`'s):
//! - a linear memory that may grow gets room to double after it,
//!   reserved with it: neither live nor free, nothing else goes there.
//!   It takes a *vacancy*, the range of one of the last memories freed
//!   that holds its length and room (the smallest; the rest is freed), if
//!   there is one (its pages are still resident: see below), else the
//!   smallest free gap that holds it and its room, at the gap's end. So
//!   memories pack side by side, sixteen one-page memories to a page
//!   table's 2 MiB, and a memory that outgrows its room moves (with room
//!   again). When nothing fits, vacancies and then rooms go back to the
//!   free map before a placement fails;
//! - a small control block is a slot of a slab chunk (see `slab`), and
//!   chunks are placed like the small regions below;
//! - anything else (control blocks, tables, fixed-size memories) goes to
//!   the highest free range that holds it, at its end, so small regions
//!   pack at the top of the arena, out of the room memories grow into;
//! - a stack goes to the smallest free range that holds it (found through
//!   the size index), at its end, and moves the same way, so freed
//!   stacks' holes go to stacks first;
//! - any other region that moves goes to the start of the lowest gap that also
//!   holds as much room again as it may need, so repeated growth moves
//!   it rarely, and moves keep reusing the same low ranges (whose pages
//!   stay resident, see below) instead of touching new ones.
//!
//! Invariant: every free byte of the arena is zero, except in the
//! *stale* ranges the map lists. A small freed region (a control block, a
//! small table) is zeroed with stores before it rejoins the free map. Of
//! a large one (a memory, a large table) the pages the kernel holds data
//! for, asked of its page map, are listed stale as they are: handing
//! them back (`madvise` and its TLB flush) cost an exit more than the
//! rest of it. A stack is listed stale whole. The range a move leaves
//! behind is listed stale too: zeroing it would add a memset to the
//! move's pause, and handing it back would make the next move into it
//! pay the kernel's first-touch cost, which on this kind of host is
//! larger than the copy. Every path that takes free bytes for a region
//! (`AllocationMap::carve`: allocation, growth, a move's destination)
//! takes the stale pieces with them, as a [`StaleBytes`] that zeroes
//! them when dropped unless the move overwrites them first: with stores,
//! so the new region keeps those pages without a fault (a new process
//! writes its data segments where an old one's were, with no system
//! call), but a sparse copy's destination hands whole pages back. So a
//! new region, and the bytes a region grows into, still read as zero,
//! and no region ever sees another's bytes (a stack needs no zeroing: see
//! `Arena::free`). Stale bytes are kept up to twice the arena's live
//! bytes (at least `STALE_FLOOR`): enough for a memory that keeps moving
//! with room to grow, which takes three ranges in turn, to land on
//! resident pages every time. Past that the highest stale ranges, the
//! least likely move destinations (moves take the lowest gap that fits),
//! go back to the kernel in a batch, down to half the limit.
//!
//! With a janitor thread (`janitor`), an exit leaves its memory's
//! page-map read to it, holding the range meanwhile, and trims wait for
//! it up to twice the limit; it also keeps warm places for new memories.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use carat_guest_runtime::regions::NO_OWNER;
use carat_guest_runtime::{AllocError, Region, RegionKind};

use crate::allocation_map::{AllocationMap, LARGE_ALIGN, Unscanned, granularity, slot_len};
use crate::janitor::{self, UNSCANNED_MAX};
use crate::residency::{self, Pagemap, Residency};
use crate::slab;

/// Spans at least this large are zeroed by the kernel rather than memset.
const MADVISE_THRESHOLD: usize = 16 * 1024;
pub(crate) const PAGE: usize = 4096;

/// A live region as the allocation map records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    pub kind: RegionKind,
    /// Bytes in use, rounded up to the region's granularity.
    pub len: usize,
    /// Bytes after them reserved for the region's growth: a growable
    /// memory's room to double (see `AllocationMap::place`). Neither live
    /// nor free; nothing else is placed there.
    pub room: usize,
    /// Who holds it (a process id, or `NO_OWNER`), for the arena map.
    pub owner: u32,
}

/// Figures about the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    pub capacity: usize,
    pub live_bytes: usize,
    pub peak_bytes: usize,
    pub live_regions: usize,
    /// CPU time the janitor has spent (see `janitor`), in nanoseconds.
    pub janitor_cpu_nanos: u64,
    /// Bytes waiting for the janitor or in its hands: freed regions not
    /// yet scanned, and what it holds (see `AllocationMap::held`).
    pub janitor_pending_bytes: usize,
    pub regions_allocated: u64,
    /// Free bytes that may hold something other than zero: what freed
    /// regions and moves left, resident, to be zeroed when taken.
    pub stale_bytes: usize,
    /// Bytes held by live regions, by kind (see
    /// [`ArenaStats::live_bytes_of`]). A slab block counts its slot, not
    /// its chunk, so these add up to less than `live_bytes`, which counts
    /// what the map has handed out (slab chunks whole).
    pub live_by_kind: [usize; RegionKind::COUNT],
}

impl ArenaStats {
    /// Live bytes of regions of `kind`.
    pub fn live_bytes_of(&self, kind: RegionKind) -> usize {
        self.live_by_kind[kind as usize]
    }
}

pub(crate) struct ArenaInner {
    map: memmap2::MmapMut,
    state: Mutex<AllocationMap>,
    /// Which pages hold data, for sparse copies (see `residency`).
    residency: Arc<dyn Residency>,
    /// Fill every range a move leaves with [`POISON`] (tests).
    poison_moves: bool,
    /// A janitor thread does the housekeeping (see `janitor`).
    pub(crate) janitor: AtomicBool,
    /// That thread, for `Arena::stop_janitor` to wait for.
    pub(crate) janitor_thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// How an arena is set up.
#[derive(Clone, Debug)]
pub struct ArenaOptions {
    /// Advise transparent huge pages for the whole arena.
    pub huge_pages: bool,
    /// Fill every range a move leaves with [`POISON`] at once, so that a
    /// pointer relocation failed to patch reads garbage (a non-canonical
    /// address, a wrong magic) instead of the old, still-correct bytes.
    /// For tests; it costs a write of every byte moved.
    pub poison_moves: bool,
    /// Where the arena learns which pages hold data (the kernel's page
    /// map; tests substitute their own).
    pub residency: Arc<dyn Residency>,
    /// Run a janitor thread for the arena's housekeeping (see `janitor`):
    /// exits leave their page-map reads and trims to it, and it keeps
    /// warm places for new memories. Off, all of it is done inline.
    pub janitor: bool,
}

impl Default for ArenaOptions {
    fn default() -> Self {
        ArenaOptions {
            huge_pages: false,
            poison_moves: false,
            residency: Arc::new(Pagemap::open()),
            janitor: false,
        }
    }
}

/// The byte moved-from ranges are filled with when poisoning: as a
/// pointer, 0xa5a5_a5a5_a5a5_a5a5 is non-canonical and faults at once.
pub const POISON: u8 = 0xa5;

/// How much of a moved-from linear memory poisoning fills.
const POISON_MEMORY_SPAN: usize = 64 << 10;

/// Move destinations at least this large are backed with huge pages.
const HUGE_PAGE_THRESHOLD: usize = 16 << 20;

/// Relocations at least this large copy only the pages that hold data.
/// Every linear memory is past it: a one-page memory whose guest touched
/// one 4 KiB page moves as that page, so a move (compaction at park, say)
/// leaves one page resident at each end, not sixteen. Asking the page map
/// is one `pread`, cheaper than the page faults of a whole copy.
const SPARSE_COPY_THRESHOLD: usize = 32 << 10;

/// Stale pieces smaller than this taken for a region that is not a sparse
/// copy's destination are zeroed with stores, not handed back: stale bytes
/// are pages the kernel holds already (a freed region's data, a move's
/// leavings), and the new region, likely to write them, keeps them without
/// a fault. A spawn on a freed process's range so makes no system call.
const KEEP_STALE_UP_TO: usize = 1 << 20;

/// Stale pieces of a range just taken from the free map (see
/// [`AllocationMap::carve`]). Dropping it zeroes every piece still listed,
/// so a taken range cannot be handed out with another region's bytes by
/// forgetting them; a move takes out the pieces its copy overwrote first.
/// (A slab chunk's pieces are dropped unzeroed: its slots are zeroed when
/// taken, and a freed chunk lists its resident pages stale again.)
struct StaleBytes<'a> {
    arena: &'a Arena,
    pieces: Vec<(usize, usize)>,
    /// The range is a sparse copy's destination (see `resident_runs`):
    /// every whole page of a piece is handed back, however small the
    /// piece, so zeroing never makes an untouched page resident for the
    /// region's next move to copy. (Zeroing small pieces by writing did:
    /// other regions' leavings under a moving memory made it denser at
    /// every move.)
    sparse: bool,
    /// The region whose room holds some of the pieces, if any: its room
    /// may be given back only once they are zeroed (see
    /// `AllocationMap::zeroing_room`), which the drop then says.
    zeroing_room: Option<usize>,
}

impl StaleBytes<'_> {
    /// Forgets the parts of the pieces inside `offset..offset + len`,
    /// which the caller has overwritten.
    fn overwritten(&mut self, offset: usize, len: usize) {
        let end = offset + len;
        self.pieces = self
            .pieces
            .iter()
            .flat_map(|&(start, n)| {
                let (lo, hi) = (start.max(offset), (start + n).min(end));
                if lo >= hi {
                    [(start, n), (0, 0)]
                } else {
                    [
                        (start, lo.saturating_sub(start)),
                        (hi, (start + n).saturating_sub(hi)),
                    ]
                }
            })
            .filter(|&(_, n)| n > 0)
            .collect();
    }
}

/// Two lists of ranges as one, by offset.
fn sorted(
    a: impl Iterator<Item = (usize, usize)>,
    b: impl Iterator<Item = (usize, usize)>,
) -> Vec<(usize, usize)> {
    let mut all: Vec<(usize, usize)> = a.chain(b).collect();
    all.sort_unstable();
    all
}

/// The whole pages of `offset..offset + len`: where they start and end.
fn whole_pages(offset: usize, len: usize) -> (usize, usize) {
    (offset.next_multiple_of(PAGE), (offset + len) / PAGE * PAGE)
}

impl Drop for StaleBytes<'_> {
    fn drop(&mut self) {
        for &(offset, len) in &self.pieces {
            // The pieces lie in a range just taken from the free map by
            // the caller, which nobody else can reach yet.
            let discard_from = if self.sparse { PAGE } else { KEEP_STALE_UP_TO };
            self.arena.zero_discarding_from(offset, len, discard_from);
        }
        if let Some(region) = self.zeroing_room {
            self.arena.state().room_zeroed(region);
        }
    }
}

// SAFETY: the mapping is only written through regions, each owned by one
// handle; the allocation map is behind a mutex.
unsafe impl Send for ArenaInner {}
// SAFETY: as above.
unsafe impl Sync for ArenaInner {}

/// The shared flat arena.
#[derive(Clone)]
pub struct Arena {
    pub(crate) inner: Arc<ArenaInner>,
}

impl std::fmt::Debug for Arena {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Arena")
            .field("base", &self.base())
            .field("stats", &self.stats())
            .finish()
    }
}

impl Arena {
    /// Reserves an arena of `capacity` bytes (rounded up to 64 KiB).
    pub fn new(capacity: usize, huge_pages: bool) -> std::io::Result<Arena> {
        Arena::with_options(
            capacity,
            ArenaOptions {
                huge_pages,
                ..ArenaOptions::default()
            },
        )
    }

    /// Reserves an arena of `capacity` bytes (rounded up to 64 KiB).
    pub fn with_options(capacity: usize, options: ArenaOptions) -> std::io::Result<Arena> {
        let capacity = capacity.max(LARGE_ALIGN).next_multiple_of(LARGE_ALIGN);
        let map = memmap2::MmapOptions::new()
            .len(capacity)
            .no_reserve_swap()
            .map_anon()?;
        if options.huge_pages {
            map.advise(memmap2::Advice::HugePage)?;
        }
        let mut state = AllocationMap::default();
        state.insert_free(0, capacity);
        if options.poison_moves {
            state.slabs.quarantine();
        }
        state.stats.capacity = capacity;
        let inner = Arc::new(ArenaInner {
            map,
            state: Mutex::new(state),
            residency: options.residency,
            poison_moves: options.poison_moves,
            janitor: AtomicBool::new(options.janitor),
            janitor_thread: Mutex::new(None),
        });
        if options.janitor {
            let thread = janitor::start(Arc::downgrade(&inner));
            inner.janitor.store(thread.is_some(), Ordering::Release);
            *inner
                .janitor_thread
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = thread;
        }
        Ok(Arena { inner })
    }

    pub(crate) fn from_inner(inner: Arc<ArenaInner>) -> Arena {
        Arena { inner }
    }

    pub(crate) fn has_janitor(&self) -> bool {
        self.inner.janitor.load(Ordering::Acquire)
    }

    /// Runs `f` on the allocation map, under its lock.
    pub(crate) fn with_map<R>(&self, f: impl FnOnce(&mut AllocationMap) -> R) -> R {
        f(&mut self.state())
    }

    pub fn base(&self) -> *mut u8 {
        self.inner.map.as_ptr() as *mut u8
    }

    pub fn capacity(&self) -> usize {
        self.inner.map.len()
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, AllocationMap> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> ArenaStats {
        let state = self.state();
        let unscanned: usize = state.unscanned.iter().map(|u| u.span()).sum();
        ArenaStats {
            janitor_pending_bytes: unscanned + state.held,
            ..state.stats
        }
    }

    /// How fragmented the free space is: 0 when it is one range, towards
    /// 1 as it splits into many small ones (1 - largest / total free).
    /// Memories' rooms and vacancies are not free space: they are kept
    /// for memories, beside them, and counted as free they made a packed
    /// arena read as fragmented (and compacted at every park).
    pub fn fragmentation(&self) -> f64 {
        let state = self.state();
        let total = state.free_bytes;
        let largest = state.free_by_size.last().map_or(0, |(len, _)| *len);
        if total == 0 {
            0.0
        } else {
            1.0 - largest as f64 / total as f64
        }
    }

    /// What the arena holds now, for [`crate::arena_map::render_svg`].
    pub fn picture(&self) -> crate::arena_map::ArenaPicture {
        let state = self.state();
        let regions = state
            .live_regions()
            .into_iter()
            .map(|(offset, r)| (offset, r.kind, r.len, r.owner))
            .collect();
        crate::arena_map::ArenaPicture {
            capacity: state.stats.capacity,
            regions,
            free: state.free.iter().map(|(&o, &n)| (o, n)).collect(),
            kept: sorted(
                state
                    .vacancies
                    .iter()
                    .map(|v| (v.offset, v.len))
                    .chain(state.unscanned.iter().map(|u| (u.offset, u.span()))),
                state
                    .regions
                    .iter()
                    .filter(|(_, r)| r.room > 0)
                    .map(|(&o, r)| (o + r.len, r.room)),
            ),
            stale: sorted(
                state.stale.iter().map(|(&o, &n)| (o, n)),
                state.vacancies.iter().flat_map(|v| v.stale.iter().copied()),
            ),
            moves: state.moves.iter().copied().collect(),
            moves_total: state.moves_total,
        }
    }

    /// The live regions, by offset: slab blocks, not their chunks.
    pub fn regions(&self) -> Vec<(usize, RegionRecord)> {
        self.state().live_regions()
    }

    /// Allocates a zeroed region of `len` bytes that may later grow to
    /// `max_len`, held by nobody in particular.
    pub fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<ArenaRegion, AllocError> {
        self.allocate_for(NO_OWNER, kind, len, max_len)
    }

    /// [`Arena::allocate`] for `owner` (a process id), as the arena map
    /// shows it.
    pub fn allocate_for(
        &self,
        owner: u32,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<ArenaRegion, AllocError> {
        let rounded = len.max(1).next_multiple_of(granularity(kind));
        if kind == RegionKind::ControlBlock && max_len <= len && rounded <= slab::MAX_SLOT {
            return self.allocate_slot(rounded, len, owner);
        }
        // A memory that may grow gets room to double, as much as
        // `RelocationPolicy::growth_headroom` gives one that moves.
        let room = match kind {
            RegionKind::LinearMemory => {
                rounded.min(max_len.saturating_sub(rounded) / LARGE_ALIGN * LARGE_ALIGN)
            }
            _ => 0,
        };
        let (mut state, placed) = self
            .placing(self.state(), |map| map.place(kind, rounded, room))
            .ok_or(AllocError::ArenaExhausted {
                kind,
                requested: len as u64,
            })?;
        let (offset, stale) = (placed.offset, placed.stale);
        state.add_region(
            offset,
            RegionRecord {
                kind,
                len: rounded,
                room: placed.room,
                owner,
            },
        );
        let zeroing = state.zeroing_room(offset, rounded, placed.room, &stale);
        state.stats.regions_allocated += 1;
        drop(state);
        drop(self.stale_bytes(kind, stale, zeroing));
        Ok(ArenaRegion {
            arena: self.clone(),
            offset,
            len,
            slot: false,
        })
    }

    /// Allocates a fixed-size control block as a slab slot of `slot_len`
    /// bytes (see `slab`), placing a chunk first when no chunk of that
    /// size has room.
    fn allocate_slot(
        &self,
        slot_len: usize,
        len: usize,
        owner: u32,
    ) -> Result<ArenaRegion, AllocError> {
        let offset = self
            .take_slot(slot_len, owner)
            .ok_or(AllocError::ArenaExhausted {
                kind: RegionKind::ControlBlock,
                requested: len as u64,
            })?;
        self.state().stats.regions_allocated += 1;
        Ok(ArenaRegion {
            arena: self.clone(),
            offset,
            len,
            slot: true,
        })
    }

    /// Takes a slot of `slot_len` bytes and zeroes it: slots are zeroed
    /// when taken, so a chunk's stale bytes and a given-back slot's
    /// contents (or poison) need no other cleaning.
    fn take_slot(&self, slot_len: usize, owner: u32) -> Option<usize> {
        let (mut state, offset) = self.placing(self.state(), |map| {
            if let Some(offset) = map.slabs.take(slot_len, owner) {
                return Some(offset);
            }
            // The chunk's stale bytes need no zeroing here: its slots are
            // zeroed when taken.
            let chunk = map.place(RegionKind::ControlBlock, slab::CHUNK, 0)?.offset;
            map.add_chunk(chunk, slot_len);
            Some(
                map.slabs
                    .take(slot_len, owner)
                    .expect("a new chunk has room"),
            )
        })?;
        state.count_slot(slot_len, true);
        drop(state);
        // SAFETY: the slot was just taken for the caller, nobody else's.
        unsafe { std::ptr::write_bytes(self.base().add(offset), 0, slot_len) };
        Some(offset)
    }

    /// Gives back a slot of `slot_len` bytes; an emptied chunk goes back
    /// to the map.
    fn free_slot(&self, offset: usize, slot_len: usize) {
        let mut state = self.state();
        state.count_slot(slot_len, false);
        let released = state.slabs.give_back(offset);
        drop(state);
        if let Some(chunk) = released {
            self.free_range(chunk, true);
        }
    }

    /// Moves a slot to another of its size (a slot never grows, nor is
    /// compacted: a slab's holes are refilled, not squeezed out). The old
    /// slot is given back, poisoned first when moves poison.
    fn move_slot(&self, offset: usize, len: usize) -> Option<usize> {
        let slot_len = slot_len(len);
        let owner = self.state().slabs.owner_of(offset);
        let new_offset = self.take_slot(slot_len, owner)?;
        let base = self.base();
        // SAFETY: both slots are held (the old one by the caller, who has
        // the only handle), and distinct.
        unsafe { std::ptr::copy_nonoverlapping(base.add(offset), base.add(new_offset), len) };
        if self.inner.poison_moves {
            // SAFETY: as above; the old slot's bytes are copied away.
            unsafe { std::ptr::write_bytes(base.add(offset), POISON, slot_len) };
        }
        self.state()
            .record_move(offset, new_offset, len, RegionKind::ControlBlock);
        self.free_slot(offset, slot_len);
        Some(new_offset)
    }

    /// Extends the region at `offset` to `new_len` bytes if its room, and
    /// the bytes after it that are free, hold them.
    fn grow(&self, offset: usize, new_len: usize) -> bool {
        let mut state = self.state();
        let record = *state.regions.get(&offset).expect("live region");
        let wanted = new_len.next_multiple_of(granularity(record.kind));
        if wanted <= record.len {
            return true;
        }
        let extra = wanted - record.len;
        // The room was zeroed when it was taken; past it, free bytes are
        // taken from the map with their stale pieces.
        let beyond_room = extra.saturating_sub(record.room);
        let end = offset + record.len + record.room;
        let stale = match state.free.get(&end) {
            _ if beyond_room == 0 => Vec::new(),
            Some(&free_len) if free_len >= beyond_room => state.carve(end, end, beyond_room),
            _ => return false,
        };
        state.regions.get_mut(&offset).expect("live region").len = wanted;
        state.set_room(offset, record.room.saturating_sub(extra));
        state.count_live(record.kind, extra);
        drop(state);
        drop(self.stale_bytes(record.kind, stale, None));
        true
    }

    /// Zeroes the stale pieces of a range just taken from the free map
    /// for a memory (see `StaleBytes`).
    pub(crate) fn zero_stale(&self, pieces: Vec<(usize, usize)>) {
        drop(self.stale_bytes(RegionKind::LinearMemory, pieces, None));
    }

    /// The stale pieces of a range just taken for a region of `kind`, to
    /// be zeroed unless overwritten; `zeroing_room` is what
    /// `AllocationMap::zeroing_room` said of them. A stack's are dropped
    /// unzeroed: a stack needs no zeroing (see `free`).
    fn stale_bytes(
        &self,
        kind: RegionKind,
        mut pieces: Vec<(usize, usize)>,
        zeroing_room: Option<usize>,
    ) -> StaleBytes<'_> {
        if kind == RegionKind::Stack {
            pieces.clear();
        }
        StaleBytes {
            arena: self,
            pieces,
            sparse: false,
            zeroing_room,
        }
    }

    /// Moves the region at `offset` (its first `used` bytes, as `span`
    /// says) to a fresh range of `new_len` bytes with `room` free bytes
    /// after it if a gap allows, then frees the old range. Returns the new
    /// offset, or `None` when nothing fits. The copy runs outside the map's
    /// lock; the old range stays allocated until it is done, so nothing
    /// else lands there.
    fn relocate(
        &self,
        offset: usize,
        used: usize,
        new_len: usize,
        room: usize,
        below: Option<usize>,
        span: CopySpan,
    ) -> Option<usize> {
        let CopySpan { skip, shift } = span;
        let (new_offset, mut stale, record_kind, old_len) = {
            let mut state = self.state();
            let record = *state.regions.get(&offset).expect("live region");
            let rounded = new_len
                .max(record.len)
                .next_multiple_of(granularity(record.kind));
            let room = room.next_multiple_of(granularity(record.kind));
            // A stack moves where stacks are allocated, among the small
            // regions at the top, not into the low ranges memories move
            // through: its stale leavings would otherwise land inside
            // moving memories, be zeroed there and copied on every move.
            let placed = if record.kind == RegionKind::Stack {
                let (locked, placed) =
                    self.placing(state, |map| map.place(record.kind, rounded, 0))?;
                state = locked;
                placed
            } else {
                // A compaction that finds no lower place is the common
                // case, not a reason to give back what is kept for
                // memories (that would empty the vacancies at every park),
                match below {
                    // Nor to scan or wait for what the janitor holds: the
                    // next park tries again.
                    Some(limit) => state.place_compacting(record.kind, rounded, room, limit)?,
                    None => {
                        let (locked, placed) = self.placing(state, |map| {
                            map.or_without_kept(rounded, |map| {
                                map.place_with_room(record.kind, rounded, room, None)
                            })
                        })?;
                        state = locked;
                        placed
                    }
                }
            };
            let (new_offset, stale) = (placed.offset, placed.stale);
            state.add_region(
                new_offset,
                RegionRecord {
                    len: rounded,
                    room: placed.room,
                    ..record
                },
            );
            let zeroing = state.zeroing_room(new_offset, rounded, placed.room, &stale);
            let stale = self.stale_bytes(record.kind, stale, zeroing);
            (new_offset, stale, record.kind, record.len)
        };
        // Only `offset + skip..offset + used` is copied, `shift` bytes
        // further into the new range than it was in the old.
        let runs = self.resident_runs(offset + skip, used - skip);
        stale.sparse = record_kind != RegionKind::Stack && used - skip >= SPARSE_COPY_THRESHOLD;
        self.copy_runs(offset + skip, new_offset + shift + skip, used - skip, &runs);
        for &(at, n) in &runs {
            stale.overwritten(new_offset + shift + (at - offset), n);
        }
        // Stale bytes the copy did not overwrite (under pages the source
        // never backed, or past its end) are cleared here, large spans by
        // handing them back: a sparse memory stays sparse.
        drop(stale);
        if self.inner.poison_moves {
            // Control blocks, tables and store contexts whole; a linear
            // memory's first POISON_MEMORY_SPAN bytes (what a stale base
            // plus a small offset reads), so stress runs over large
            // memories do not double their copying.
            let span = match record_kind {
                RegionKind::LinearMemory => POISON_MEMORY_SPAN,
                _ => usize::MAX,
            };
            for &(at, n) in &runs {
                let n = n.min(offset.saturating_add(span).saturating_sub(at));
                // SAFETY: the old range is still allocated to the caller,
                // who holds its only handle and has copied it away.
                unsafe { std::ptr::write_bytes(self.base().add(at), POISON, n) };
            }
        }
        // A compaction's old range is zeroed at once, its whole pages
        // handed back: a region compacted moves down to stay, so nothing
        // will land on those pages soon, and listed stale they would stay
        // resident (a page per compacted process, at every first park in
        // a fragmented arena). Under poisoning they stay poisoned and
        // stale, like every move's.
        let compacted = below.is_some() && !self.inner.poison_moves;
        if compacted {
            for &(at, n) in &runs {
                self.zero_discarding_from(at, n, PAGE);
            }
        }
        // Any other move's old range keeps its pages, listed as stale:
        // only the pages the copy read can hold anything but zero. Except
        // a stack's: it copied only its live part, but its dead part below
        // holds what deeper calls (or the process before it, see `free`)
        // wrote.
        let mut state = self.state();
        state.remove_region(offset, false);
        state.record_move(offset, new_offset, used, record_kind);
        if record_kind == RegionKind::Stack {
            state.mark_stale(offset, old_len);
        } else if !compacted {
            for (at, n) in runs {
                state.mark_stale(at, n);
            }
        }
        self.trim_stale(state);
        Some(new_offset)
    }

    /// The runs of `from..from + len` (offsets) that may hold non-zero
    /// bytes: all of it for small ranges, else what `residency` says.
    fn resident_runs(&self, from: usize, len: usize) -> Vec<(usize, usize)> {
        if len < SPARSE_COPY_THRESHOLD {
            return vec![(from, len)];
        }
        self.known_data_runs(from, len)
            .unwrap_or_else(|| vec![(from, len)])
    }

    /// The runs of `from..from + len` (offsets) that may hold non-zero
    /// bytes, as the page map tells them; `None` when it cannot.
    pub(crate) fn known_data_runs(&self, from: usize, len: usize) -> Option<Vec<(usize, usize)>> {
        let base = self.base() as usize;
        let runs = residency::known_data_runs(&*self.inner.residency, base + from, len)?;
        Some(runs.into_iter().map(|(at, n)| (at - base, n)).collect())
    }

    /// Copies `runs` (see `resident_runs`) of `from..from + len` to `to`,
    /// where every byte outside them is zero already. Large copies so skip
    /// the pages the kernel has never backed: they read as zero, like the
    /// destination, so a sparse memory moves at the cost of what it uses
    /// and stays sparse.
    fn copy_runs(&self, from: usize, to: usize, len: usize, runs: &[(usize, usize)]) {
        let base = self.base();
        let copied: usize = runs.iter().map(|&(_, n)| n).sum();
        if len >= HUGE_PAGE_THRESHOLD && 2 * copied >= len {
            // Where the destination is not resident yet, the copy's own
            // stores fault it in: with huge pages, a 2 MiB fault instead
            // of 512 small ones, each page zeroed by the kernel just
            // before the copy overwrites it, still in cache. Measured at
            // about 1.1x a warm memcpy; backing the range first
            // (MADV_POPULATE_WRITE) and copying after cost about 2x.
            // A sparse memory keeps small pages: a huge one for each page
            // it touched would multiply what it holds resident.
            self.advise(to, len, libc::MADV_HUGEPAGE);
        }
        for &(at, n) in runs {
            let dest = to + (at - from);
            // SAFETY: both ranges lie in live regions of this arena (the
            // old one still allocated), distinct because both are; the
            // caller holds the only handle to the old one.
            unsafe { std::ptr::copy_nonoverlapping(base.add(at), base.add(dest), n) }
        }
    }

    /// Gives the kernel advice about the whole pages of a live range; a
    /// refusal (an older kernel) only costs speed.
    fn advise(&self, offset: usize, len: usize, advice: libc::c_int) {
        let start = offset.next_multiple_of(PAGE);
        let end = (offset + len) / PAGE * PAGE;
        if end > start {
            // SAFETY: a page-aligned range inside the mapping, owned by
            // the caller; these advices never change its contents.
            unsafe { libc::madvise(self.base().add(start).cast(), end - start, advice) };
        }
    }

    /// Frees the region at `offset`:
    /// - a small region is zeroed with stores (a control block or a small
    ///   table: a few cache lines);
    /// - of a large one (a memory, a large table), the pages the kernel
    ///   holds data for are listed stale, as they are, and the rest is
    ///   free and zero already. Asking the page map is one `pread`;
    ///   handing the pages back (`madvise` and its TLB flush) cost an
    ///   exit more than the rest of it, and the next process placed
    ///   there would fault them in again to write its data segments.
    ///   Without the page map, the region is handed back;
    /// - a stack is listed stale whole, and a stack placed there takes it
    ///   unzeroed: nothing reads a stack word it did not write first
    ///   (JIT code initialises every slot it reads, and wasm cannot
    ///   address its stack; see `carat_guest_runtime::stacks`), so a
    ///   process's stack bytes are never seen by another.
    fn free(&self, offset: usize) {
        self.free_range(offset, false);
    }

    /// [`Arena::free`] of a region or, with `chunk`, of an empty slab
    /// chunk (whose slots need no zeroing: they are zeroed when taken, and
    /// a small region placed on it is zeroed as stale bytes).
    fn free_range(&self, offset: usize, chunk: bool) {
        let record = {
            let mut state = self.state();
            let record = state.regions[&offset];
            if record.kind != RegionKind::Stack
                && record.len >= MADVISE_THRESHOLD
                && self.has_janitor()
                && state.unscanned.len() < UNSCANNED_MAX
            {
                // The janitor reads the page map and settles it.
                state.uncount_region(offset, chunk);
                state.unscanned.push(Unscanned {
                    offset,
                    len: record.len,
                    room: record.room,
                    memory: record.kind == RegionKind::LinearMemory,
                });
                return;
            }
            record
        };
        // The range is still allocated to the caller, who is giving up
        // its only handle: nobody else reaches its bytes until it is
        // removed below.
        let stale = if record.kind == RegionKind::Stack {
            vec![(offset, record.len)]
        } else if record.len < MADVISE_THRESHOLD {
            self.zero(offset, record.len);
            Vec::new()
        } else {
            self.freed_data_runs(offset, record.len)
        };
        let mut state = self.state();
        if record.kind == RegionKind::LinearMemory {
            // Its room reads zero: taken zeroed, never reached by the
            // guest (bounds are the length's).
            state.uncount_region(offset, false);
            state.vacate(offset, record.len + record.room, stale, Vec::new());
        } else {
            state.remove_region(offset, chunk);
            for (at, n) in stale {
                state.mark_stale(at, n);
            }
        }
        // Fewer live bytes allow fewer stale ones.
        self.trim_stale(state);
    }

    /// The pieces of a freed range (`offset..offset + len`, which nobody
    /// else can reach) that may hold data, to list stale; without the page
    /// map, none, the range zeroed.
    pub(crate) fn freed_data_runs(&self, offset: usize, len: usize) -> Vec<(usize, usize)> {
        self.known_data_runs(offset, len).unwrap_or_else(|| {
            self.zero(offset, len);
            Vec::new()
        })
    }

    /// Zeroes a range nobody else can reach (a region being freed, stale
    /// bytes just taken or being trimmed): large page-aligned spans by
    /// handing their pages back, the rest with stores.
    pub(crate) fn zero(&self, offset: usize, len: usize) {
        self.zero_discarding_from(offset, len, MADVISE_THRESHOLD);
    }

    /// [`Arena::zero`], handing pages back in any span of at least
    /// `threshold` bytes.
    fn zero_discarding_from(&self, offset: usize, len: usize, threshold: usize) {
        let base = self.base();
        let (page_start, page_end) = whole_pages(offset, len);
        if len >= threshold && page_end > page_start {
            // SAFETY: the range is the caller's alone (see `Arena::zero`);
            // this is its part before the first whole page.
            unsafe { std::ptr::write_bytes(base.add(offset), 0, page_start - offset) };
            // SAFETY: as above; its part after the last whole page.
            unsafe { std::ptr::write_bytes(base.add(page_end), 0, offset + len - page_end) };
            if !self.discard(page_start, page_end - page_start) {
                // SAFETY: as above.
                unsafe { std::ptr::write_bytes(base.add(page_start), 0, page_end - page_start) };
            }
        } else {
            // SAFETY: as above.
            unsafe { std::ptr::write_bytes(base.add(offset), 0, len) };
        }
    }

    /// Hands the whole pages at `offset..offset + len` (page-aligned, in
    /// a range nobody else can reach) back to the kernel: they read as
    /// zero and are not resident. False, changing nothing, when refused.
    fn discard(&self, offset: usize, len: usize) -> bool {
        // SAFETY: per the contract; MADV_DONTNEED on a private anonymous
        // mapping makes the pages read as zero and touches nothing else.
        unsafe {
            self.inner
                .map
                .unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, offset, len)
                .is_ok()
        }
    }
}

/// Which of a moving region's bytes are copied, and where to: those from
/// offset `skip` on, `shift` bytes further into the new range than they
/// were in the old. A memory copies all (both 0); a stack only its live
/// part, to the top of a larger range.
#[derive(Clone, Copy, Debug, Default)]
struct CopySpan {
    skip: usize,
    shift: usize,
}

/// A region of the arena; returned when dropped (see `Arena::free`).
pub struct ArenaRegion {
    arena: Arena,
    offset: usize,
    len: usize,
    /// A slab slot, not a region of the map.
    slot: bool,
}

impl ArenaRegion {
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// Whether every byte of the region reads zero (tests).
    #[cfg(test)]
    pub(crate) fn reads_zero(&self) -> bool {
        self.arena.reads_zero(self.offset, self.len)
    }
}

#[cfg(test)]
impl Arena {
    /// Whether every byte of `offset..offset + len` reads zero (tests: a
    /// range the test holds, or one nobody writes meanwhile).
    pub(crate) fn reads_zero(&self, offset: usize, len: usize) -> bool {
        assert!(offset + len <= self.capacity());
        // SAFETY: the range lies inside the mapping, which lives as long
        // as `self`; the caller says nobody writes it meanwhile.
        let bytes = unsafe { std::slice::from_raw_parts(self.base().add(offset), len) };
        bytes.iter().all(|b| *b == 0)
    }
}

impl Region for ArenaRegion {
    fn base(&self) -> *mut u8 {
        // SAFETY: offset lies inside the mapping.
        unsafe { self.arena.base().add(self.offset) }
    }

    fn len(&self) -> usize {
        self.len
    }

    fn grow_in_place(&mut self, new_len: usize) -> bool {
        if new_len <= self.len {
            return true;
        }
        if self.slot {
            return false;
        }
        if self.arena.grow(self.offset, new_len) {
            self.len = new_len;
            true
        } else {
            false
        }
    }

    fn relocate(&mut self, new_len: usize, headroom: usize) -> Option<usize> {
        self.move_to(new_len.max(self.len), headroom, None, CopySpan::default())
    }

    fn compact(&mut self, headroom: usize) -> Option<usize> {
        self.move_to(self.len, headroom, Some(self.offset), CopySpan::default())
    }

    fn move_stack(&mut self, new_len: usize, live_from: usize) -> Option<usize> {
        let span = CopySpan {
            skip: live_from.min(self.len),
            shift: new_len.checked_sub(self.len)?,
        };
        self.move_to(new_len, 0, None, span)
    }
}

impl ArenaRegion {
    /// Moves the region (see `Arena::relocate`), now `new_len` bytes
    /// long, copying as `span` says; returns its old base.
    fn move_to(
        &mut self,
        new_len: usize,
        headroom: usize,
        below: Option<usize>,
        span: CopySpan,
    ) -> Option<usize> {
        let old_base = self.base() as usize;
        self.offset = if self.slot {
            if new_len > self.len || below.is_some() {
                return None;
            }
            self.arena.move_slot(self.offset, self.len)?
        } else {
            self.arena
                .relocate(self.offset, self.len, new_len, headroom, below, span)?
        };
        self.len = new_len;
        Some(old_base)
    }
}

impl Drop for ArenaRegion {
    fn drop(&mut self) {
        if self.slot {
            self.arena.free_slot(self.offset, slot_len(self.len));
        } else {
            self.arena.free(self.offset);
        }
    }
}

#[cfg(test)]
#[path = "arena_tests.rs"]
mod tests;
