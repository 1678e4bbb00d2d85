//! The arena: one flat mapping that stands for physical memory, and the
//! allocation map that carves it into regions.
//!
//! In CARAT mode every byte of guest state lives here. The mapping is
//! reserved once (anonymous, no swap reservation), so untouched bytes cost
//! no memory and allocating a region is pure bookkeeping: no system call.
//!
//! Placement keeps growth cheap without reserving address space per
//! memory the way paging does:
//! - a growable linear memory goes to the middle of the largest free gap,
//!   so it and the region before it each get half the gap to grow into;
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
//! *stale* ranges the map lists. Freed regions are zeroed before they
//! rejoin the free map (large page-aligned spans are handed back to the
//! kernel, which zero-fills them on next touch). The range a move leaves
//! behind is not: zeroing it would add a memset to the move's pause, and
//! handing it back would make the next move into it pay the kernel's
//! first-touch cost, which on this kind of host is larger than the copy.
//! It stays resident and is listed as stale instead. Every path that
//! takes free bytes for a region (`AllocationMap::carve`: allocation,
//! growth, a move's destination) takes the stale pieces with them, as a
//! [`StaleBytes`] that zeroes them when dropped unless the move
//! overwrites them first. So a new region, and the bytes a region grows
//! into, still read as zero, and no region ever sees another's bytes.
//! Stale bytes are kept up to twice the arena's live bytes (at least
//! `STALE_FLOOR`): enough for a memory that keeps moving with room to
//! grow, which takes three ranges in turn, to land on resident pages
//! every time. Past that the highest stale ranges, the least likely move
//! destinations (moves take the lowest gap that fits), go back to the
//! kernel.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use carat_guest_runtime::{AllocError, Region, RegionKind};

use crate::residency::{self, Pagemap, Residency};

/// Granularity of control blocks and tables.
const SMALL_ALIGN: usize = 64;
/// Granularity of linear memories: a wasm page.
const LARGE_ALIGN: usize = 64 * 1024;
/// Granularity of stacks: small, since most stay small (they grow by
/// moving, see `carat_guest_runtime::stacks`).
const STACK_ALIGN: usize = 16 * 1024;
/// Spans at least this large are zeroed by the kernel rather than memset.
const MADVISE_THRESHOLD: usize = 16 * 1024;
const PAGE: usize = 4096;

/// A live region as the allocation map records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionRecord {
    pub kind: RegionKind,
    /// Bytes in use, rounded up to the region's granularity.
    pub len: usize,
}

/// Figures about the arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ArenaStats {
    pub capacity: usize,
    pub live_bytes: usize,
    pub peak_bytes: usize,
    pub live_regions: usize,
    pub regions_allocated: u64,
    /// Free bytes left resident, not yet zeroed, by moves.
    pub stale_bytes: usize,
    /// Live bytes by region kind (see [`ArenaStats::live_bytes_of`]).
    pub live_by_kind: [usize; RegionKind::COUNT],
}

impl ArenaStats {
    /// Live bytes of regions of `kind`.
    pub fn live_bytes_of(&self, kind: RegionKind) -> usize {
        self.live_by_kind[kind as usize]
    }
}

#[derive(Debug, Default)]
struct AllocationMap {
    /// Live regions by offset.
    regions: BTreeMap<usize, RegionRecord>,
    /// Free ranges by offset, never adjacent to each other.
    free: BTreeMap<usize, usize>,
    /// The same free ranges by (length, offset).
    free_by_size: BTreeSet<(usize, usize)>,
    /// Free ranges that may hold non-zero bytes, by offset: disjoint, each
    /// inside a free range.
    stale: BTreeMap<usize, usize>,
    stats: ArenaStats,
}

impl AllocationMap {
    fn insert_free(&mut self, offset: usize, len: usize) {
        self.free.insert(offset, len);
        self.free_by_size.insert((len, offset));
    }

    fn remove_free(&mut self, offset: usize) -> usize {
        let len = self.free.remove(&offset).expect("free range exists");
        self.free_by_size.remove(&(len, offset));
        len
    }

    /// Takes `offset..offset + len` out of the free range starting at
    /// `gap`, returning the pieces on either side to the free map. This is
    /// the one way bytes leave the free map; the stale pieces of the range
    /// come with them, for the caller to zero or overwrite.
    #[must_use = "stale pieces must be zeroed before the range is used"]
    fn carve(&mut self, gap: usize, offset: usize, len: usize) -> Vec<(usize, usize)> {
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

    fn stale_limit(&self) -> usize {
        STALE_FLOOR.max(2 * self.stats.live_bytes)
    }

    /// Lists a just-freed range as holding stale bytes.
    fn mark_stale(&mut self, offset: usize, len: usize) {
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
    fn take_stale(&mut self, offset: usize, len: usize) -> Vec<(usize, usize)> {
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

    /// Records a placed region as live and counts its bytes.
    fn add_region(&mut self, offset: usize, record: RegionRecord) {
        self.regions.insert(offset, record);
        self.count_live(record.kind, record.len);
        self.stats.live_regions += 1;
    }

    /// Counts `len` more live bytes of `kind` (a region placed or grown).
    fn count_live(&mut self, kind: RegionKind, len: usize) {
        let stats = &mut self.stats;
        stats.live_bytes += len;
        stats.live_by_kind[kind as usize] += len;
        stats.peak_bytes = stats.peak_bytes.max(stats.live_bytes);
    }

    /// Returns a live region's range to the free map and uncounts it.
    fn remove_region(&mut self, offset: usize) {
        let record = self.regions.remove(&offset).expect("live region");
        self.release(offset, record.len);
        self.stats.live_bytes -= record.len;
        self.stats.live_by_kind[record.kind as usize] -= record.len;
        self.stats.live_regions -= 1;
    }

    /// Returns a range to the free map, merging it with its neighbours.
    fn release(&mut self, mut offset: usize, mut len: usize) {
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

    fn place(
        &mut self,
        kind: RegionKind,
        len: usize,
        growable: bool,
    ) -> Option<(usize, Vec<(usize, usize)>)> {
        let align = granularity(kind);
        if growable {
            let &(gap_len, gap) = self.free_by_size.last()?;
            let first = gap.next_multiple_of(align);
            let last = (gap + gap_len).checked_sub(len)? / align * align;
            if last < first {
                return None;
            }
            let middle = (first + (last - first) / 2) / align * align;
            let offset = middle.max(first);
            Some((offset, self.carve(gap, offset, len)))
        } else if kind == RegionKind::Stack {
            // Best fit by size, at the gap's end: a stack is large next to
            // the small regions at the top, and a walk down every small gap
            // there made each of 100,000 spawns' stacks cost a scan of the
            // whole map; the size index answers in a logarithm, and a freed
            // stack's hole is the first a new stack takes.
            let (gap, offset) =
                self.free_by_size
                    .range((len, 0)..)
                    .find_map(|&(gap_len, gap)| {
                        let offset = (gap + gap_len).checked_sub(len)? / align * align;
                        (offset >= gap).then_some((gap, offset))
                    })?;
            Some((offset, self.carve(gap, offset, len)))
        } else {
            // First fit from the top of the arena: small regions pack at
            // the top, clear of the room memories keep to grow (and move)
            // into below, and freed ranges there are reused first.
            let (gap, offset) = self.free.iter().rev().find_map(|(&gap, &gap_len)| {
                let offset = (gap + gap_len).checked_sub(len)? / align * align;
                (offset >= gap).then_some((gap, offset))
            })?;
            Some((offset, self.carve(gap, offset, len)))
        }
    }
}

impl AllocationMap {
    /// First fit from the bottom for `len` bytes followed by `room` free
    /// ones: the lowest gap that holds both, from its start; else the
    /// start of the largest gap, if `len` fits there.
    ///
    /// With `below`, only a place under that offset will do (compaction),
    /// and there is no fallback.
    fn place_with_room(
        &mut self,
        kind: RegionKind,
        len: usize,
        room: usize,
        below: Option<usize>,
    ) -> Option<(usize, Vec<(usize, usize)>)> {
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
        let (gap, offset) = match chosen {
            Some(found) => found,
            None => {
                let &(gap_len, gap) = self.free_by_size.last()?;
                let offset = gap.next_multiple_of(align);
                if offset + len > gap + gap_len {
                    return None;
                }
                (gap, offset)
            }
        };
        Some((offset, self.carve(gap, offset, len)))
    }
}

fn granularity(kind: RegionKind) -> usize {
    match kind {
        RegionKind::LinearMemory => LARGE_ALIGN,
        RegionKind::Stack => STACK_ALIGN,
        RegionKind::ControlBlock | RegionKind::Table => SMALL_ALIGN,
    }
}

struct ArenaInner {
    map: memmap2::MmapMut,
    state: Mutex<AllocationMap>,
    /// Which pages hold data, for sparse copies (see `residency`).
    residency: Arc<dyn Residency>,
    /// Fill every range a move leaves with [`POISON`] (tests).
    poison_moves: bool,
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
}

impl Default for ArenaOptions {
    fn default() -> Self {
        ArenaOptions {
            huge_pages: false,
            poison_moves: false,
            residency: Arc::new(Pagemap::open()),
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

/// Stale bytes are always allowed up to this much (beyond the arena's
/// live bytes).
const STALE_FLOOR: usize = 64 << 20;

/// Stale pieces of a range just taken from the free map (see
/// [`AllocationMap::carve`]). Dropping it zeroes every piece still listed,
/// so a taken range cannot be handed out with another region's bytes by
/// forgetting them; a move takes out the pieces its copy overwrote first.
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

/// The whole pages of `offset..offset + len`: where they start and end.
fn whole_pages(offset: usize, len: usize) -> (usize, usize) {
    (offset.next_multiple_of(PAGE), (offset + len) / PAGE * PAGE)
}

impl Drop for StaleBytes<'_> {
    fn drop(&mut self) {
        for &(offset, len) in &self.pieces {
            // The pieces lie in a range just taken from the free map by
            // the caller, which nobody else can reach yet.
            let discard_from = if self.sparse { PAGE } else { MADVISE_THRESHOLD };
            self.arena.zero_discarding_from(offset, len, discard_from);
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
    inner: Arc<ArenaInner>,
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
        state.stats.capacity = capacity;
        Ok(Arena {
            inner: Arc::new(ArenaInner {
                map,
                state: Mutex::new(state),
                residency: options.residency,
                poison_moves: options.poison_moves,
            }),
        })
    }

    pub fn base(&self) -> *mut u8 {
        self.inner.map.as_ptr() as *mut u8
    }

    pub fn capacity(&self) -> usize {
        self.inner.map.len()
    }

    fn state(&self) -> MutexGuard<'_, AllocationMap> {
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn stats(&self) -> ArenaStats {
        self.state().stats
    }

    /// How fragmented the free space is: 0 when it is one range, towards
    /// 1 as it splits into many small ones (1 - largest / total free).
    pub fn fragmentation(&self) -> f64 {
        let state = self.state();
        let total = state.stats.capacity - state.stats.live_bytes;
        let largest = state.free_by_size.last().map_or(0, |(len, _)| *len);
        if total == 0 {
            0.0
        } else {
            1.0 - largest as f64 / total as f64
        }
    }

    /// The live regions, by offset.
    pub fn regions(&self) -> Vec<(usize, RegionRecord)> {
        self.state().regions.iter().map(|(o, r)| (*o, *r)).collect()
    }

    /// Allocates a zeroed region of `len` bytes that may later grow to
    /// `max_len`.
    pub fn allocate(
        &self,
        kind: RegionKind,
        len: usize,
        max_len: usize,
    ) -> Result<ArenaRegion, AllocError> {
        let rounded = len.max(1).next_multiple_of(granularity(kind));
        let growable = max_len > len && kind == RegionKind::LinearMemory;
        let mut state = self.state();
        let (offset, stale) =
            state
                .place(kind, rounded, growable)
                .ok_or(AllocError::ArenaExhausted {
                    kind,
                    requested: len as u64,
                })?;
        state.add_region(offset, RegionRecord { kind, len: rounded });
        state.stats.regions_allocated += 1;
        drop(state);
        drop(self.stale_bytes(kind, stale));
        Ok(ArenaRegion {
            arena: self.clone(),
            offset,
            len,
        })
    }

    /// Extends the region at `offset` to `new_len` bytes if the bytes after
    /// it are free.
    fn grow(&self, offset: usize, new_len: usize) -> bool {
        let stale;
        let mut state = self.state();
        let record = *state.regions.get(&offset).expect("live region");
        let wanted = new_len.next_multiple_of(granularity(record.kind));
        if wanted <= record.len {
            return true;
        }
        let end = offset + record.len;
        let extra = wanted - record.len;
        match state.free.get(&end) {
            Some(&free_len) if free_len >= extra => {
                stale = state.carve(end, end, extra);
                state.regions.insert(
                    offset,
                    RegionRecord {
                        kind: record.kind,
                        len: wanted,
                    },
                );
                state.count_live(record.kind, extra);
                drop(state);
                drop(self.stale_bytes(record.kind, stale));
                true
            }
            _ => false,
        }
    }

    /// The stale pieces of a range just taken for a region of `kind`, to
    /// be zeroed unless overwritten. A stack's are dropped unzeroed: a
    /// stack needs no zeroing (see `free`).
    fn stale_bytes(&self, kind: RegionKind, mut pieces: Vec<(usize, usize)>) -> StaleBytes<'_> {
        if kind == RegionKind::Stack {
            pieces.clear();
        }
        StaleBytes {
            arena: self,
            pieces,
            sparse: false,
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
        let (new_offset, stale, record_kind, old_len) = {
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
            let (new_offset, stale) = if record.kind == RegionKind::Stack {
                state.place(record.kind, rounded, false)?
            } else {
                state.place_with_room(record.kind, rounded, room, below)?
            };
            state.add_region(
                new_offset,
                RegionRecord {
                    kind: record.kind,
                    len: rounded,
                },
            );
            (new_offset, stale, record.kind, record.len)
        };
        let mut stale = self.stale_bytes(record_kind, stale);
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
        state.remove_region(offset);
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

    /// Keeps the stale bytes within their limit (see the module doc),
    /// handing the highest stale ranges back to the kernel. Each is taken
    /// out of the free map while it is cleaned, so nothing is placed on it
    /// meanwhile.
    fn trim_stale(&self, mut state: MutexGuard<'_, AllocationMap>) {
        let limit = state.stale_limit();
        let mut trimmed = Vec::new();
        while state.stats.stale_bytes > limit {
            let (&at, &len) = state.stale.last_key_value().expect("stale bytes listed");
            let (&gap, _) = state
                .free
                .range(..=at)
                .next_back()
                .expect("stale bytes are free");
            trimmed.extend(state.carve(gap, at, len));
        }
        drop(state);
        for &(at, len) in &trimmed {
            self.zero(at, len);
        }
        let mut state = self.state();
        for (at, len) in trimmed {
            state.release(at, len);
        }
    }

    /// The runs of `from..from + len` (offsets) that may hold non-zero
    /// bytes: all of it for small ranges, else what `residency` says.
    fn resident_runs(&self, from: usize, len: usize) -> Vec<(usize, usize)> {
        if len < SPARSE_COPY_THRESHOLD {
            return vec![(from, len)];
        }
        let base = self.base() as usize;
        residency::data_runs(&*self.inner.residency, base + from, len)
            .into_iter()
            .map(|(at, n)| (at - base, n))
            .collect()
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

    /// Frees the region at `offset`. A stack is not zeroed but listed as
    /// stale, and taken unzeroed by the next stack: nothing reads a stack
    /// word it did not write first (JIT code initialises every slot it
    /// reads, and wasm cannot address its stack; see
    /// `carat_guest_runtime::stacks`), so a process's stack bytes are never
    /// seen by another, and a process's exit costs no system call.
    fn free(&self, offset: usize) {
        let record = self.state().regions[&offset];
        if record.kind == RegionKind::Stack {
            let mut state = self.state();
            state.remove_region(offset);
            state.mark_stale(offset, record.len);
            self.trim_stale(state);
            return;
        }
        self.zero(offset, record.len);
        let mut state = self.state();
        state.remove_region(offset);
        // Fewer live bytes allow fewer stale ones.
        self.trim_stale(state);
    }

    /// Zeroes a range nobody else can reach (a region being freed, stale
    /// bytes just taken or being trimmed): large page-aligned spans by
    /// handing their pages back, the rest with stores.
    fn zero(&self, offset: usize, len: usize) {
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

/// A region of the arena; returned, zeroed, when dropped.
pub struct ArenaRegion {
    arena: Arena,
    offset: usize,
    len: usize,
}

impl ArenaRegion {
    pub fn offset(&self) -> usize {
        self.offset
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
        self.offset = self
            .arena
            .relocate(self.offset, self.len, new_len, headroom, below, span)?;
        self.len = new_len;
        Some(old_base)
    }
}

impl Drop for ArenaRegion {
    fn drop(&mut self) {
        self.arena.free(self.offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::residency::PageState;

    fn arena(size: usize) -> Arena {
        Arena::new(size, false).expect("arena")
    }

    #[test]
    fn freed_bytes_read_as_zero_when_reused() {
        let arena = arena(1 << 24);
        for len in [100, 300 * 1024] {
            let region = arena.allocate(RegionKind::Table, len, len).unwrap();
            let offset = region.offset();
            // SAFETY: the region is ours and `len` bytes long.
            unsafe { std::ptr::write_bytes(region.base(), 0xAB, len) };
            drop(region);
            let again = arena.allocate(RegionKind::Table, len, len).unwrap();
            assert_eq!(again.offset(), offset, "best fit reuses the hole");
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(again.base(), len) };
            assert!(bytes.iter().all(|b| *b == 0));
        }
    }

    /// A freed stack is listed stale, not zeroed (no system call, no
    /// memset), and the next stack takes it as it is; any other region
    /// placed there still reads zero.
    #[test]
    fn stacks_are_reused_unzeroed_and_others_still_read_zero() {
        let arena = arena(1 << 24);
        let len = 256 * 1024;
        let stack = arena.allocate(RegionKind::Stack, len, len).unwrap();
        let offset = stack.offset();
        // SAFETY: the region is ours and `len` bytes long.
        unsafe { std::ptr::write_bytes(stack.base(), 0xAB, len) };
        drop(stack);
        assert_eq!(arena.stats().stale_bytes, len, "listed, not zeroed");
        let again = arena.allocate(RegionKind::Stack, len, len).unwrap();
        assert_eq!(again.offset(), offset);
        assert_eq!(arena.stats().stale_bytes, 0, "taken as it is");
        // SAFETY: as above.
        assert_eq!(unsafe { *again.base().add(len / 2) }, 0xAB);
        drop(again);
        let table = arena.allocate(RegionKind::Table, len, len).unwrap();
        assert_eq!(table.offset(), offset);
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(table.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "a table reads zero");
    }

    #[test]
    fn a_moved_stacks_dead_part_is_not_handed_out_as_zero() {
        let arena = arena(1 << 24);
        let len = 256 * 1024;
        let mut stack = arena.allocate(RegionKind::Stack, len, len).unwrap();
        let offset = stack.offset();
        // SAFETY: the region is ours and `len` bytes long: deep calls wrote
        // all of it, and only its top quarter is live now.
        unsafe { std::ptr::write_bytes(stack.base(), 0xAB, len) };
        stack.move_stack(len, 3 * len / 4).expect("room to move");
        assert_ne!(stack.offset(), offset);
        let table = arena.allocate(RegionKind::Table, len, len).unwrap();
        assert_eq!(table.offset(), offset, "best fit takes the old range");
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(table.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "a table reads zero");
    }

    #[test]
    fn stale_bytes_under_a_sparse_copy_are_handed_back_not_written() {
        use crate::residency::{Pagemap, Residency};
        let arena = arena(1 << 24);
        let memory = arena
            .allocate(RegionKind::LinearMemory, 65536, 65536)
            .unwrap();
        let page = |n: usize| memory.base() as usize + n * PAGE;
        for (n, sparse) in [(1, true), (3, false)] {
            // SAFETY: a page of the region, which is ours.
            unsafe { std::ptr::write_bytes(page(n) as *mut u8, 0xAB, PAGE) };
            let piece = vec![(memory.offset() + n * PAGE, PAGE)];
            let mut stale = arena.stale_bytes(RegionKind::LinearMemory, piece);
            stale.sparse = sparse;
            drop(stale);
            // Asked before the read below, which maps the zero page.
            let state = Pagemap::open().pages(page(n), 1);
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(page(n) as *const u8, PAGE) };
            assert!(bytes.iter().all(|b| *b == 0));
            if let Some(state) = state {
                assert_eq!(state[0] == PageState::Untouched, sparse, "page {n}");
            }
        }
    }

    #[test]
    fn growable_memories_get_room_and_small_regions_stay_out_of_it() {
        let arena = arena(1 << 30);
        let mut memory = arena
            .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
            .unwrap();
        let control = arena.allocate(RegionKind::ControlBlock, 200, 200).unwrap();
        let room = memory.offset()..memory.offset() + (256 << 20);
        assert!(!room.contains(&control.offset()));
        assert!(memory.grow_in_place(256 << 20));
        let second = arena
            .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
            .unwrap();
        let grown = memory.offset()..memory.offset() + (256 << 20);
        assert!(!grown.contains(&second.offset()) && !grown.contains(&(second.offset() + 65535)));
        drop((control, second));
        assert_eq!(arena.stats().live_regions, 1);
    }

    #[test]
    fn growth_stops_at_the_next_region() {
        let arena = arena(1 << 20);
        let mut a = arena
            .allocate(RegionKind::LinearMemory, 65536, 65536)
            .unwrap();
        let _b = arena
            .allocate(RegionKind::LinearMemory, 65536 * 15, 65536 * 15)
            .unwrap();
        assert!(!a.grow_in_place(2 * 65536));
        assert_eq!(a.len(), 65536);
    }

    /// A moved region keeps its bytes, sparse or dense, and lands with
    /// the room it asked for.
    #[test]
    fn relocation_keeps_bytes_and_gives_room() {
        let arena = arena(1 << 30);
        for len in [200, 3 << 16, 8 << 20] {
            let kind = if len < 65536 {
                RegionKind::ControlBlock
            } else {
                RegionKind::LinearMemory
            };
            let mut region = arena.allocate(kind, len, len).unwrap();
            // Bytes on a few scattered pages (and the last byte), the rest
            // never touched.
            let marks: Vec<usize> = [0, 4095, 4096 * 7 + 3, len / 2, len - 1]
                .into_iter()
                .filter(|at| *at < len)
                .collect();
            for (i, at) in marks.iter().enumerate() {
                // SAFETY: inside the region.
                unsafe { *region.base().add(*at) = i as u8 + 1 };
            }
            let old = region.base() as usize;
            let old_offset = region.offset();
            let grown = len + 65536;
            assert_eq!(region.relocate(grown, grown), Some(old));
            assert_ne!(region.offset(), old_offset);
            assert_eq!(region.len(), grown);
            // SAFETY: the region is `grown` bytes long.
            let bytes = unsafe { std::slice::from_raw_parts(region.base(), grown) };
            for (at, byte) in bytes.iter().enumerate() {
                let want = marks
                    .iter()
                    .position(|m| *m == at)
                    .map_or(0, |i| i as u8 + 1);
                assert_eq!(*byte, want, "byte {at} of a {len}-byte region");
            }
            assert!(
                region.grow_in_place(2 * grown),
                "the room asked for is there"
            );
        }
        assert_eq!(arena.stats().live_regions, 0);
    }

    /// A model of the arena's promise: every region reads exactly what
    /// was written into it (zeros elsewhere), whatever allocations, frees,
    /// growth, moves and compactions came before, including ranges left
    /// stale by moves and reused by later regions, sparse or dense.
    #[test]
    fn regions_read_what_was_written_through_moves_and_stale_reuse() {
        let arena = arena(192 << 20);
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut random = move |bound: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % bound as u64) as usize
        };
        let mut live: Vec<(ArenaRegion, Vec<u8>)> = Vec::new();
        let (mut stale_reused, mut stale_seen, mut trimmed) = (0, 0, 0);
        let overlaps_stale = |stale: &[(usize, usize)], region: &ArenaRegion| {
            let (start, end) = (region.offset(), region.offset() + region.len());
            stale.iter().any(|&(at, n)| at < end && start < at + n)
        };
        for step in 0..600 {
            let stale: Vec<(usize, usize)> = {
                let state = arena.state();
                assert!(state.stats.stale_bytes <= state.stale_limit());
                state.stale.iter().map(|(a, n)| (*a, *n)).collect()
            };
            stale_seen += usize::from(!stale.is_empty());
            let pick = if live.is_empty() {
                0
            } else {
                random(live.len())
            };
            match random(10) {
                0 | 1 if live.len() < 12 => {
                    let len = match random(4) {
                        0 => 65536 * (1 + random(4)),
                        1 | 2 => (1 << 20) + 65536 * random(48),
                        _ => 17 << 20,
                    };
                    let Ok(region) = arena.allocate(RegionKind::LinearMemory, len, len * 4) else {
                        continue;
                    };
                    stale_reused += usize::from(overlaps_stale(&stale, &region));
                    live.push((region, vec![0; len]));
                }
                2 if !live.is_empty() => {
                    let before = arena.stats().stale_bytes;
                    drop(live.swap_remove(pick));
                    trimmed += usize::from(arena.stats().stale_bytes < before);
                }
                3 | 4 if !live.is_empty() => {
                    // A few scattered bytes, or a dense run.
                    let (region, model) = &mut live[pick];
                    let len = model.len();
                    let (at, n) = if random(2) == 0 {
                        (random(len), 1)
                    } else {
                        let at = random(len);
                        (at, random(len - at).min(3 << 20))
                    };
                    let byte = 1 + random(255) as u8;
                    model[at..at + n].fill(byte);
                    // SAFETY: inside the region.
                    unsafe { std::ptr::write_bytes(region.base().add(at), byte, n) };
                }
                5 if !live.is_empty() => {
                    let (region, model) = &mut live[pick];
                    let new_len = model.len() + 65536 * (1 + random(16));
                    if region.grow_in_place(new_len) {
                        model.resize(new_len, 0);
                    }
                }
                6..=8 if !live.is_empty() => {
                    let (region, model) = &mut live[pick];
                    let new_len = model.len() + 65536 * random(3);
                    let moved = if random(3) == 0 {
                        region.compact(65536).is_some()
                    } else {
                        region.relocate(new_len, new_len).is_some()
                    };
                    if moved {
                        model.resize(region.len(), 0);
                        stale_reused += usize::from(overlaps_stale(&stale, region));
                    }
                }
                _ => {}
            }
            if step % 25 == 0 || live.iter().any(|(r, m)| r.len() != m.len()) {
                for (region, model) in &live {
                    assert_eq!(region.len(), model.len());
                    // SAFETY: the region is `len` bytes long.
                    let bytes = unsafe { std::slice::from_raw_parts(region.base(), region.len()) };
                    assert!(
                        bytes == &model[..],
                        "step {step}: region at {:#x}",
                        region.offset()
                    );
                }
            }
        }
        for (region, model) in &live {
            // SAFETY: as above.
            let bytes = unsafe { std::slice::from_raw_parts(region.base(), region.len()) };
            assert!(bytes == &model[..]);
        }
        assert!(
            stale_seen > 50,
            "moves left stale ranges ({stale_seen} steps)"
        );
        assert!(
            stale_reused > 10,
            "stale ranges were reused ({stale_reused} times)"
        );
        assert!(trimmed > 0, "frees trimmed stale ranges");
        drop(live);
        assert_eq!(arena.stats().live_regions, 0);
    }

    /// Threads that allocate, fill, move, grow and free their own regions
    /// in one arena at once never see each other's bytes: stale ranges
    /// one thread leaves are zeroed before another's region covers them,
    /// and trimming never cleans a range someone else has just taken.
    #[test]
    fn concurrent_moves_never_show_another_regions_bytes() {
        let arena = arena(256 << 20);
        std::thread::scope(|scope| {
            for thread in 0..4u8 {
                let arena = &arena;
                scope.spawn(move || {
                    let mut seed = 0x2545_F491_4F6C_DD1D_u64 ^ u64::from(thread);
                    let mut random = move |bound: usize| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        (seed % bound as u64) as usize
                    };
                    let mark = thread + 1;
                    let mut mine: Vec<ArenaRegion> = Vec::new();
                    for step in 0..400 {
                        match random(5) {
                            0 | 1 if mine.len() < 6 => {
                                let len = 65536 * (1 + random(40));
                                let kind = RegionKind::LinearMemory;
                                let Ok(region) = arena.allocate(kind, len, len * 4) else {
                                    continue;
                                };
                                // SAFETY: the region is `len` bytes long.
                                let bytes =
                                    unsafe { std::slice::from_raw_parts_mut(region.base(), len) };
                                assert!(bytes.iter().all(|b| *b == 0), "a new region is zero");
                                bytes.fill(mark);
                                mine.push(region);
                            }
                            2 if !mine.is_empty() => {
                                let pick = random(mine.len());
                                drop(mine.swap_remove(pick));
                            }
                            3 if !mine.is_empty() => {
                                let pick = random(mine.len());
                                let region = &mut mine[pick];
                                let (old, new) = (region.len(), region.len() + 65536);
                                if region.grow_in_place(new) {
                                    // SAFETY: the region is `new` bytes long.
                                    let bytes = unsafe {
                                        std::slice::from_raw_parts_mut(region.base(), new)
                                    };
                                    assert!(bytes[old..].iter().all(|b| *b == 0));
                                    bytes[old..].fill(mark);
                                }
                            }
                            _ if !mine.is_empty() => {
                                let pick = random(mine.len());
                                let region = &mut mine[pick];
                                let len = region.len();
                                let _ = region.relocate(len, len);
                            }
                            _ => {}
                        }
                        if step % 10 == 0 {
                            for region in &mine {
                                // SAFETY: as above.
                                let bytes = unsafe {
                                    std::slice::from_raw_parts(region.base(), region.len())
                                };
                                assert!(bytes.iter().all(|b| *b == mark), "thread {thread}");
                            }
                        }
                    }
                });
            }
        });
        assert_eq!(arena.stats().live_regions, 0);
    }

    /// Moving a large, mostly untouched memory again and again, through
    /// ranges its earlier moves left stale, keeps it as sparse as it was.
    #[test]
    fn sparse_memories_stay_sparse_through_moves() {
        let arena = arena(1 << 30);
        let len = 64 << 20;
        let mut region = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
        for page in [0, 100, 10_000] {
            // SAFETY: inside the region.
            unsafe { *region.base().add(page * PAGE + 5) = 7 };
        }
        for _ in 0..8 {
            region.relocate(len, len).unwrap();
            let states = arena
                .inner
                .residency
                .pages(region.base() as usize, len / PAGE)
                .unwrap();
            let pages = states.iter().filter(|s| s.holds_data()).count();
            assert!(pages <= 3, "{pages} pages hold data after a move");
            // SAFETY: inside the region.
            assert_eq!(unsafe { *region.base().add(10_000 * PAGE + 5) }, 7);
        }
        assert!(
            arena.stats().stale_bytes > 0,
            "the moves went through stale ranges"
        );
    }

    /// The kernel's page map, except that every resident page reads as
    /// swapped out: what a move sees on a machine that swapped the whole
    /// arena out.
    #[derive(Debug)]
    struct SwappedOut(Pagemap);

    impl Residency for SwappedOut {
        fn pages(&self, address: usize, pages: usize) -> Option<Vec<PageState>> {
            let states = self.0.pages(address, pages)?;
            Some(
                states
                    .into_iter()
                    .map(|s| match s {
                        PageState::Resident => PageState::Swapped,
                        other => other,
                    })
                    .collect(),
            )
        }
    }

    /// A page the kernel swapped out is not resident, but it holds data:
    /// a move must copy it like a resident one.
    #[test]
    fn moves_carry_swapped_out_pages() {
        let arena = Arena::with_options(
            1 << 30,
            ArenaOptions {
                residency: Arc::new(SwappedOut(Pagemap::open())),
                ..ArenaOptions::default()
            },
        )
        .unwrap();
        let len = 8 << 20;
        let mut region = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
        let pages = [0, 1, 700, 2047];
        for (i, page) in pages.iter().enumerate() {
            // SAFETY: inside the region.
            unsafe { *region.base().add(page * PAGE + i) = 0x40 + i as u8 };
        }
        for _ in 0..3 {
            region.relocate(len, len).unwrap();
            for (i, page) in pages.iter().enumerate() {
                // SAFETY: inside the region.
                let byte = unsafe { *region.base().add(page * PAGE + i) };
                assert_eq!(byte, 0x40 + i as u8, "page {page} lost in the move");
            }
        }
    }

    /// With poisoning on, the range a move leaves holds the poison byte at
    /// once (so a pointer left unpatched reads garbage), and the stale
    /// poison never reaches the next region placed there.
    #[test]
    fn a_compaction_leaves_nothing_stale_or_resident_behind() {
        use crate::residency::{Pagemap, Residency};
        let arena = arena(1 << 30);
        let hole = arena
            .allocate(RegionKind::LinearMemory, 1 << 20, 1 << 20)
            .unwrap();
        let mut memory = arena
            .allocate(RegionKind::LinearMemory, 1 << 20, 1 << 20)
            .unwrap();
        // One touched page, as a small guest leaves it.
        // SAFETY: inside the region.
        unsafe { *memory.base().add(4096) = 9 };
        let old = memory.base() as usize;
        drop(hole);
        let moved_from = memory.compact(0).expect("a lower range is free");
        assert_eq!(moved_from, old);
        assert!((memory.base() as usize) < old);
        // SAFETY: inside the region.
        assert_eq!(unsafe { *memory.base().add(4096) }, 9);
        assert_eq!(arena.stats().stale_bytes, 0, "nothing listed stale");
        if let Some(pages) = Pagemap::open().pages(old, 256) {
            assert!(pages.iter().all(|p| *p == PageState::Untouched));
        }
    }

    #[test]
    fn poisoned_moves_leave_poison_and_hand_out_zeros() {
        let arena = Arena::with_options(
            1 << 28,
            ArenaOptions {
                poison_moves: true,
                ..ArenaOptions::default()
            },
        )
        .unwrap();
        let mut region = arena.allocate(RegionKind::ControlBlock, 256, 256).unwrap();
        // SAFETY: inside the region.
        unsafe { std::ptr::write_bytes(region.base(), 7, 256) };
        let old = region.base();
        region.relocate(256, 0).unwrap();
        // SAFETY: the old range lies in the arena's mapping; it is stale.
        let left = unsafe { std::slice::from_raw_parts(old, 256) };
        assert!(left.iter().all(|b| *b == POISON));
        // SAFETY: inside the region.
        let moved = unsafe { std::slice::from_raw_parts(region.base(), 256) };
        assert!(moved.iter().all(|b| *b == 7));
        let next = (0..64)
            .map(|_| arena.allocate(RegionKind::ControlBlock, 256, 256).unwrap())
            .collect::<Vec<_>>();
        for r in &next {
            // SAFETY: inside the region.
            let bytes = unsafe { std::slice::from_raw_parts(r.base(), 256) };
            assert!(bytes.iter().all(|b| *b == 0));
        }
    }

    #[test]
    fn free_ranges_coalesce_back_to_one() {
        let arena = arena(1 << 22);
        let regions: Vec<_> = (0..20)
            .map(|i| {
                let kind = if i % 3 == 0 {
                    RegionKind::LinearMemory
                } else {
                    RegionKind::ControlBlock
                };
                arena.allocate(kind, 1000 * (i + 1), 1 << 22).unwrap()
            })
            .collect();
        drop(regions);
        let state = arena.state();
        assert_eq!(state.free.len(), 1);
        assert_eq!(state.free_by_size.len(), 1);
        assert_eq!(state.stats.live_bytes, 0);
        assert!(state.stats.peak_bytes > 0);
    }

    #[test]
    fn exhaustion_is_an_error_not_a_panic() {
        let arena = arena(1 << 20);
        let _all = arena.allocate(RegionKind::Table, 1 << 20, 1 << 20).unwrap();
        assert!(matches!(
            arena.allocate(RegionKind::ControlBlock, 64, 64),
            Err(AllocError::ArenaExhausted { .. })
        ));
    }
}
