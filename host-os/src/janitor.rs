//! The arena's janitor: a background thread that does the arena's
//! housekeeping off the spawn and exit paths, the way a kernel zeroes
//! free pages in the background.
//!
//! Three jobs, each one a host with many short-lived processes would
//! otherwise pay on the path of a spawn or an exit:
//! - **Asking the page map about freed regions.** An exit's largest part
//!   was the `pread` of `/proc/self/pagemap` that says which of a freed
//!   memory's pages hold data (its stale pieces; see `arena`'s module
//!   doc), and the same for an emptied slab chunk. With a janitor, an exit
//!   only lists such a range as *unscanned*: held out of everything (not
//!   live, not free, not a vacancy), so nothing is placed on bytes nobody
//!   has listed. The janitor reads the page map and settles the range
//!   with its stale pieces (a memory's as a vacancy). Past
//!   `UNSCANNED_MAX` an exit scans its own.
//! - **Trimming stale bytes.** Past the limit, an exit or a move leaves
//!   the batch `madvise` to the janitor, unless stale bytes reach twice
//!   the limit, when it trims itself: memory stays bounded if the
//!   janitor falls behind.
//! - **Warm places for new memories.** A spawn on fresh arena bytes
//!   waits for the kernel's first-touch fault of every page its data
//!   segments write, as long as the rest of the spawn on this kind of
//!   host. The janitor learns which pages those are from the newest
//!   memory placed on fresh bytes (its resident pages, capped at
//!   `FOOTPRINT_PAGES`), takes ranges from the free map where such
//!   memories go, writes a zero to those pages (the fault happens here)
//!   and makes the ranges vacancies, noting the backed pages (listed
//!   stale if they go back to the free map, for a trim to hand them
//!   back). Spawns take them
//!   as they take a freed memory's range, after those of the same length.
//!   Up to `WARM_STOCK` are kept, out of at most a `WARM_FREE_SHARE`th of
//!   the free bytes.
//!
//! None of this is the sandbox's safety. The janitor writes only to
//! ranges it holds alone (taken from the free map, or held unscanned and
//! taken from that list), and only zeroes: a warm place reads zero when
//! it becomes a vacancy (its stale pieces zeroed first), and an unscanned
//! range is only ever settled once its written pages are listed stale, to
//! be zeroed before the next region sees them.
//!
//! Nor do the bytes it holds ever make a placement fail. Every range taken
//! out of all lists to be given back (being scanned, readied or trimmed)
//! is counted in `AllocationMap::held` by a [`crate::arena::Hold`], which
//! gives it up if its holder panics. A placement that finds no room
//! settles what is unscanned, waits for what is held, and tries again
//! (`Arena::placing`), before it gives up memories' rooms; meanwhile the
//! janitor holds nothing more. A compaction does not wait: it is tried at
//! every park. A round that panics turns the janitor off, and the arena
//! does its housekeeping inline. Its CPU time is counted in
//! `ArenaStats::janitor_cpu_nanos`, so a benchmark can report what spawns
//! and exits no longer wait for.
//!
//! This module also holds the `Arena` methods of that housekeeping which
//! run inline too (trims, held bytes, a placement's retries), and those
//! that start and stop the thread.
//!
//! The thread holds the arena weakly and ends within a nap of the
//! arena's last handle going, or at once when `Arena::stop_janitor` (the
//! VM's drop) unparks it. It polls instead of being woken (a wake-up is
//! a system call, and spawns and exits make none): a round that found
//! work is followed by the next at once, and idle naps double from
//! `MIN_NAP` to `MAX_NAP`.

use std::sync::atomic::Ordering;
use std::sync::{MutexGuard, Weak};
use std::time::Duration;

use crate::allocation_map::{AllocationMap, Placement};
use crate::arena::{Arena, ArenaInner, PAGE};

/// Warm places kept for new memories, with the vacancies exits leave.
const WARM_STOCK: usize = 48;
/// Warm places hold at most this share of the free bytes, inverted.
const WARM_FREE_SHARE: usize = 16;
/// Warm places taken from the free map at a time (in one hold of the
/// lock, which spawns wait for).
const WARM_BATCH: usize = 8;
/// At most this many pages of each warm place are faulted in.
const FOOTPRINT_PAGES: usize = 16;
/// Freed memories held unscanned at most; an exit past it scans its own.
pub(crate) const UNSCANNED_MAX: usize = 4096;
const MIN_NAP: Duration = Duration::from_micros(100);
const MAX_NAP: Duration = Duration::from_millis(50);

/// Starts the janitor of the arena `inner` is, which runs until the
/// arena goes or `Arena::stop_janitor`; `None` if no thread could be made
/// (the arena then does its housekeeping inline).
pub(crate) fn start(inner: Weak<ArenaInner>) -> Option<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("carat-arena-janitor".into())
        .spawn(move || {
            let mut janitor = Janitor::default();
            let mut nap = MIN_NAP;
            loop {
                let Some(inner) = inner.upgrade() else { return };
                let arena = Arena::from_inner(inner);
                if !arena.has_janitor() {
                    return;
                }
                let started = thread_cpu_nanos();
                let round = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    janitor.round(&arena)
                }));
                arena.count_janitor_cpu(thread_cpu_nanos().saturating_sub(started));
                let Ok(busy) = round else {
                    // A bug, but not the arena's end: it does its
                    // housekeeping inline from now on (what the round
                    // held was given back as it unwound).
                    arena.janitor_ended();
                    return;
                };
                drop(arena);
                // Work found, more is likely: the next round at once.
                if busy {
                    nap = MIN_NAP;
                    std::thread::yield_now();
                } else {
                    // `stop_janitor` unparks it.
                    std::thread::park_timeout(nap);
                    nap = (nap * 2).min(MAX_NAP);
                }
            }
        })
        .ok()
}

/// What the janitor has learnt between rounds.
#[derive(Default)]
struct Janitor {
    /// Offsets, within a memory, of the pages a new process writes first.
    footprint: Vec<usize>,
}

impl Janitor {
    /// One round of every job; whether there was anything to do.
    fn round(&mut self, arena: &Arena) -> bool {
        let scanned = arena.settle_unscanned();
        let trimmed = arena.trim_stale_now();
        let warmed = self.warm(arena);
        scanned || trimmed || warmed
    }

    /// Tops the vacancies up to `WARM_STOCK` with warm places for the
    /// latest memory shape; whether it made any.
    ///
    /// A few places at a time are taken from the free map and held by the
    /// janitor alone while it zeroes their stale pieces and writes a zero
    /// to each footprint page (the kernel's fault happens here); then they
    /// become vacancies. Held, they are counted in
    /// `AllocationMap::held`, and a placement that finds no room waits
    /// for them (see `Arena::placing`), so they never make one fail. (The
    /// kernel's `MADV_POPULATE_WRITE`, which changes no byte, would let a
    /// place be a vacancy while it is backed; but then spawns took places
    /// before they were backed, and a system call per page cost more than
    /// a fault: spawns were no faster.)
    fn warm(&mut self, arena: &Arena) -> bool {
        let (shape, newest) = arena.with_map(|map| (map.memory_shape, map.newest_memory.take()));
        if let Some((offset, len)) = newest {
            self.learn_footprint(arena, offset, len);
        }
        if shape == 0 || self.footprint.is_empty() {
            return false;
        }
        let footprint: Vec<usize> = self
            .footprint
            .iter()
            .copied()
            .filter(|&p| p < shape)
            .collect();
        let mut warmed = false;
        loop {
            let mut map = arena.state();
            // Nothing more is held while a placement waits.
            let wanted = match map.waiting {
                0 => WARM_STOCK.saturating_sub(map.vacancies.len()),
                _ => 0,
            };
            // Warm places hold arena bytes: only a small share of what is
            // free (a small arena should not spend itself on them).
            let affordable = map.free_bytes / (WARM_FREE_SHARE * shape);
            let placed: Vec<Placement> = (0..wanted.min(affordable).min(WARM_BATCH))
                .map_while(|_| map.place_warm(shape))
                .collect();
            if placed.is_empty() {
                return warmed;
            }
            let hold = arena.hold(&mut map, placed.len() * shape);
            drop(map);
            let offsets: Vec<usize> = placed.iter().map(|p| p.offset).collect();
            for placement in placed {
                arena.zero_stale(placement.stale);
                for &page in &footprint {
                    // SAFETY: the range was just taken from the free map
                    // for the janitor alone, and reads zero: writing a zero
                    // only makes the kernel back the page now.
                    unsafe { arena.base().add(placement.offset + page).write_volatile(0) };
                }
            }
            arena.with_map(|map| {
                for offset in offsets {
                    let backed = footprint
                        .iter()
                        .map(|&page| (offset + page, PAGE))
                        .collect();
                    map.vacate(offset, shape, Vec::new(), backed);
                }
                hold.give_back(map);
            });
            warmed = true;
        }
    }

    /// Learns which pages a new process writes first from the memory last
    /// placed at `offset` (`len` bytes): those the page map says hold
    /// data. It may be gone or moved by now, which only makes the guess
    /// worse: the page map is read, never the memory.
    fn learn_footprint(&mut self, arena: &Arena, offset: usize, len: usize) {
        let Some(runs) = arena.known_data_runs(offset, len) else {
            return;
        };
        let pages = runs
            .iter()
            .flat_map(|&(at, n)| (at..at + n).step_by(PAGE))
            .map(|at| (at - offset) / PAGE * PAGE);
        let footprint: Vec<usize> = pages.take(FOOTPRINT_PAGES).collect();
        if !footprint.is_empty() {
            self.footprint = footprint;
        }
    }
}

/// CPU time this thread has used, in nanoseconds.
fn thread_cpu_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut now) };
    now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64
}

impl Arena {
    /// Stops the arena's janitor thread, if one runs, and waits for it to
    /// end; from then on the arena does its housekeeping inline. A VM
    /// calls it as it goes, so its arena is unmapped by the thread that
    /// drops it, when it does, not later by the janitor at the end of a
    /// round (which held up whatever the host did next).
    pub fn stop_janitor(&self) {
        self.janitor_off();
        let thread = self
            .inner
            .janitor_thread
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(thread) = thread
            && thread.thread().id() != std::thread::current().id()
        {
            thread.thread().unpark();
            // A janitor that panicked has stopped too.
            let _ = thread.join();
        }
        self.settle_unscanned();
    }

    /// The janitor thread ends early (a panic in its round): the arena
    /// does its housekeeping inline from now on.
    pub(crate) fn janitor_ended(&self) {
        self.janitor_off();
        self.settle_unscanned();
    }

    /// Exits scan what they free from now on. Under the map's lock: an
    /// exit that saw the janitor running has held its range already, for
    /// the settling that follows to take.
    fn janitor_off(&self) {
        let _state = self.state();
        self.inner.janitor.store(false, Ordering::Release);
    }

    /// An arena with a janitor that runs only when a test runs its rounds
    /// (see `janitor::tests`).
    #[cfg(test)]
    pub(crate) fn with_manual_janitor(capacity: usize) -> Arena {
        let arena = Arena::new(capacity, false).expect("arena");
        arena.inner.janitor.store(true, Ordering::Release);
        arena
    }

    /// How many threads hold the arena weakly: its janitor's, if running.
    #[cfg(test)]
    pub(crate) fn weak_holders(&self) -> usize {
        std::sync::Arc::weak_count(&self.inner)
    }

    pub(crate) fn count_janitor_cpu(&self, nanos: u64) {
        self.state().stats.janitor_cpu_nanos += nanos;
    }

    /// `state` (the map, locked) and what `place` placed in it; if
    /// nothing while some bytes are held unscanned or by a thread that
    /// will give them back (see `janitor`), once more after settling the
    /// first and waiting for the second, a few times at most: bytes in
    /// flight never make a placement fail. Meanwhile the janitor holds no
    /// more.
    pub(crate) fn placing<'a, T>(
        &'a self,
        mut state: MutexGuard<'a, AllocationMap>,
        mut place: impl FnMut(&mut AllocationMap) -> Option<T>,
    ) -> Option<(MutexGuard<'a, AllocationMap>, T)> {
        for _ in 0..PLACING_TRIES {
            if let Some(placed) = place(&mut state) {
                return Some((state, placed));
            }
            if state.unscanned.is_empty() && state.held == 0 {
                return None;
            }
            state.waiting += 1;
            drop(state);
            self.settle();
            state = self.state();
            state.waiting -= 1;
        }
        let placed = place(&mut state)?;
        Some((state, placed))
    }

    /// Takes `bytes` out of every list of `map` for the caller, who gives
    /// them back with [`Hold::give_back`]; counted in
    /// `AllocationMap::held` until then, or until the hold is dropped (a
    /// panic: the bytes are lost, but no placement waits for them).
    pub(crate) fn hold(&self, map: &mut AllocationMap, bytes: usize) -> Hold<'_> {
        map.held += bytes;
        Hold { arena: self, bytes }
    }

    /// Keeps the stale bytes within their limit (see the module doc).
    /// Past it, the highest stale ranges go back to the kernel until half
    /// the limit is left, so trimming comes in batches, not at every free.
    /// Each is taken out of the free map while it is cleaned, outside the
    /// lock, so nothing is placed on it meanwhile and nobody waits for
    /// the `madvise`; pieces that touch go in one call.
    ///
    /// With a janitor, it is left to the janitor (`trim_stale_now`) until
    /// stale bytes reach twice the limit.
    pub(crate) fn trim_stale(&self, state: MutexGuard<'_, AllocationMap>) {
        let deferred = if self.has_janitor() { 2 } else { 1 };
        if state.stats.stale_bytes > deferred * state.stale_limit() {
            self.trim_stale_past_limit(state);
        }
    }

    /// Trims stale bytes past their limit (the janitor's part, which
    /// stands aside while a placement waits); whether there were any.
    pub(crate) fn trim_stale_now(&self) -> bool {
        let state = self.state();
        let over = state.stats.stale_bytes > state.stale_limit() && state.waiting == 0;
        if over {
            self.trim_stale_past_limit(state);
        }
        over
    }

    /// Trims stale bytes down to half their limit.
    fn trim_stale_past_limit(&self, mut state: MutexGuard<'_, AllocationMap>) {
        state.release_vacancies();
        let target = state.stale_limit() / 2;
        let mut trimmed = Vec::new();
        while state.stats.stale_bytes > target {
            let (&at, &len) = state.stale.last_key_value().expect("stale bytes listed");
            let (&gap, _) = state
                .free
                .range(..=at)
                .next_back()
                .expect("stale bytes are free");
            trimmed.extend(state.carve(gap, at, len));
        }
        let hold = self.hold(&mut state, trimmed.iter().map(|&(_, n)| n).sum());
        drop(state);
        trimmed.sort_unstable();
        let mut i = 0;
        while i < trimmed.len() {
            let (from, mut end) = (trimmed[i].0, trimmed[i].0 + trimmed[i].1);
            i += 1;
            while i < trimmed.len() && trimmed[i].0 == end {
                end += trimmed[i].1;
                i += 1;
            }
            self.zero(from, end - from);
        }
        let mut state = self.state();
        for (at, len) in trimmed {
            state.release(at, len);
        }
        hold.give_back(&mut state);
    }

    /// Does now, on this thread, what the janitor has yet to do with freed
    /// regions: scans those held unscanned, and waits for what it holds to
    /// be back in the map. For a host that wants freed ranges reusable at
    /// once (or a test that checks what reuse shows); the janitor does it
    /// in the background, and a placement that finds no room does it
    /// first.
    pub fn settle(&self) {
        self.settle_unscanned();
        // Held bytes come back within a batch of page faults or a scan.
        while self.state().held > 0 {
            std::thread::yield_now();
        }
    }

    /// Scans every freed region held unscanned and settles it with its
    /// stale pieces, on this thread; whether there were any.
    pub(crate) fn settle_unscanned(&self) -> bool {
        let mut state = self.state();
        let unscanned = std::mem::take(&mut state.unscanned);
        if unscanned.is_empty() {
            return false;
        }
        let bytes = unscanned.iter().map(|u| u.span()).sum();
        let hold = self.hold(&mut state, bytes);
        drop(state);
        let scanned: Vec<_> = unscanned
            .into_iter()
            .map(|freed| (freed, self.freed_data_runs(freed.offset, freed.len)))
            .collect();
        self.with_map(|map| {
            for (freed, stale) in scanned {
                map.settle(freed, stale);
            }
            hold.give_back(map);
        });
        true
    }
}

/// Bytes a thread holds out of every list of the map (see
/// [`Arena::hold`]).
#[must_use = "held bytes must be given back"]
pub(crate) struct Hold<'a> {
    arena: &'a Arena,
    bytes: usize,
}

impl Hold<'_> {
    /// The held bytes are back in a list of `map`.
    pub(crate) fn give_back(mut self, map: &mut AllocationMap) {
        map.held -= std::mem::take(&mut self.bytes);
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.arena.state().held -= self.bytes;
        }
    }
}

/// How many times a placement that finds no room settles and waits for
/// held bytes before it fails (see `Arena::placing`).
const PLACING_TRIES: usize = 4;

#[cfg(test)]
#[path = "janitor_tests.rs"]
mod tests;
