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
//!   with its stale pieces (a memory's as a vacancy). A placement or
//!   compaction that finds no room first settles what is held itself
//!   (`Arena::settle_unscanned`), so held ranges never make a spawn fail,
//!   and past `UNSCANNED_MAX` an exit scans its own.
//! - **Trimming stale bytes.** Past the limit, an exit or a move leaves
//!   the batch `madvise` to the janitor, unless stale bytes reach twice
//!   the limit, when it trims itself: memory stays bounded if the
//!   janitor falls behind.
//! - **Warm places for new memories.** A spawn on fresh arena bytes
//!   waits for the kernel's first-touch fault of every page its data
//!   segments write, as long as the rest of the spawn on this kind of
//!   host. The janitor learns which pages those are from the newest
//!   memory placed (its resident pages, capped at `FOOTPRINT_PAGES`),
//!   takes ranges from the free map where such memories go, writes a
//!   zero to those pages (the fault happens here) and makes the ranges
//!   vacancies, which the next spawns take as they take a freed memory's. Up to `WARM_STOCK` are kept, out of at most a
//!   `WARM_FREE_SHARE`th of the free bytes; what they hold resident is
//!   their footprint, at most `WARM_STOCK * FOOTPRINT_PAGES` pages.
//!
//! None of this is the sandbox's safety. The janitor writes only to
//! ranges it holds alone (taken from the free map, or held unscanned and
//! taken from that list), and only zeroes: a warm place reads zero when
//! it becomes a vacancy (its stale pieces zeroed first), and an unscanned
//! range is only ever settled once its written pages are listed stale, to
//! be zeroed before the next region sees them. Ranges it holds never make
//! a placement fail: one that finds no room settles what is unscanned and
//! waits for warm places being readied (`Arena::placing`). The
//! janitor's CPU time is counted in `ArenaStats::janitor_cpu_nanos`, so a
//! benchmark can report what the spawns no longer wait for.
//!
//! The thread holds the arena weakly and ends within a nap of the
//! arena's last handle going. It polls instead of being woken (a wake-up
//! is a system call, and spawns and exits make none): a round that found
//! work is followed by the next at once, and idle naps double from
//! `MIN_NAP` to `MAX_NAP`.

use std::sync::Weak;
use std::time::Duration;

use crate::allocation_map::Placement;
use crate::arena::{Arena, ArenaInner};

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
const PAGE: usize = 4096;

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
                let busy = janitor.round(&arena);
                arena.count_janitor_cpu(thread_cpu_nanos().saturating_sub(started));
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
    /// `AllocationMap::warming`, and a placement that finds no room waits
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
        let mut warmed = false;
        loop {
            let placed: Vec<Placement> = arena.with_map(|map| {
                let wanted = WARM_STOCK.saturating_sub(map.vacancies.len());
                // Warm places hold arena bytes: only a small share of
                // what is free (a small arena should not spend itself on
                // them).
                let affordable = map.free_bytes / (WARM_FREE_SHARE * shape);
                let placed: Vec<Placement> = (0..wanted.min(affordable).min(WARM_BATCH))
                    .map_while(|_| map.place_warm(shape))
                    .collect();
                map.warming += placed.len() * shape;
                placed
            });
            if placed.is_empty() {
                return warmed;
            }
            let offsets: Vec<usize> = placed.iter().map(|p| p.offset).collect();
            for placement in placed {
                arena.zero_stale(placement.stale);
                for &page in self.footprint.iter().filter(|&&page| page < shape) {
                    // SAFETY: the range was just taken from the free map
                    // for the janitor alone, and reads zero: writing a zero
                    // only makes the kernel back the page now.
                    unsafe { arena.base().add(placement.offset + page).write_volatile(0) };
                }
            }
            arena.with_map(|map| {
                map.warming -= offsets.len() * shape;
                for offset in offsets {
                    map.vacate(offset, shape, Vec::new());
                }
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
    /// Scans every freed region held unscanned and settles it with its
    /// stale pieces, on this thread; whether there were any. The janitor
    /// does this in the background, and a placement that finds no room
    /// does it first; a host that wants freed ranges reused at once (a
    /// test that checks what reuse shows) calls it itself.
    pub fn settle_unscanned(&self) -> bool {
        let unscanned = self.with_map(|map| std::mem::take(&mut map.unscanned));
        if unscanned.is_empty() {
            return false;
        }
        let scanned: Vec<_> = unscanned
            .into_iter()
            .map(|freed| (freed, self.freed_data_runs(freed.offset, freed.len)))
            .collect();
        self.with_map(|map| {
            for (freed, stale) in scanned {
                map.settle(freed, stale);
            }
        });
        true
    }
}

#[cfg(test)]
mod tests {
    use carat_guest_runtime::{Region, RegionKind};

    use super::*;
    use crate::allocation_map::{STALE_FLOOR, Unscanned};
    use crate::residency::{PageState, Pagemap, Residency};

    fn round(arena: &Arena) -> bool {
        Janitor::default().round(arena)
    }

    fn states(address: *mut u8, pages: usize) -> Option<Vec<PageState>> {
        Pagemap::open().pages(address as usize, pages)
    }

    /// An exit only holds its memory's range; the janitor's round lists
    /// the written pages stale and makes it a vacancy, and only then does
    /// a new memory go there, reading zero.
    #[test]
    fn an_exit_leaves_its_scan_to_the_janitor_and_its_range_waits_for_it() {
        let arena = Arena::with_manual_janitor(1 << 26);
        let (len, max) = (16 * PAGE, 32 * PAGE);
        let memory = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        let offset = memory.offset();
        for page in [0, 5] {
            // SAFETY: a page of the region, which is ours.
            unsafe { std::ptr::write_bytes(memory.base().add(page * PAGE), 0xAB, PAGE) };
        }
        let held = states(memory.base(), 16);
        drop(memory);
        arena.with_map(|map| {
            let held = Unscanned {
                offset,
                len,
                room: len,
                memory: true,
            };
            assert_eq!(map.unscanned, vec![held], "held unscanned");
            assert!(map.vacancies.is_empty());
            assert_eq!(map.stats.stale_bytes, 0, "nothing listed yet");
        });
        let elsewhere = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        assert_ne!(elsewhere.offset(), offset, "an unscanned range is held");
        assert!(round(&arena));
        let Some(held) = held else { return };
        let written = held.iter().filter(|p| p.holds_data()).count() * PAGE;
        arena.with_map(|map| {
            assert!(map.unscanned.is_empty());
            assert_eq!(map.vacancies.len(), 1);
            assert_eq!(map.stats.stale_bytes, written, "its written pages listed");
        });
        let again = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        assert_eq!(again.offset(), offset, "the vacancy is taken");
        // SAFETY: the region is ours and `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(again.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "a new memory reads zero");
    }

    /// With the arena full, a range held unscanned is scanned by the
    /// placement that needs it: the janitor's lag never fails a spawn.
    #[test]
    fn a_full_arena_scans_what_is_held_rather_than_fail() {
        let len = 1 << 20;
        let arena = Arena::with_manual_janitor(4 * len);
        let mut memories: Vec<_> = (0..4)
            .map(|_| arena.allocate(RegionKind::LinearMemory, len, len).unwrap())
            .collect();
        assert!(arena.allocate(RegionKind::LinearMemory, len, len).is_err());
        let freed = memories.pop().unwrap();
        // SAFETY: the region is ours and `len` bytes long.
        unsafe { std::ptr::write_bytes(freed.base(), 0xCD, len) };
        drop(freed);
        assert_eq!(arena.with_map(|map| map.unscanned.len()), 1);
        let again = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
        assert_eq!(arena.with_map(|map| map.unscanned.len()), 0);
        // SAFETY: as above.
        let bytes = unsafe { std::slice::from_raw_parts(again.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "a new memory reads zero");
    }

    /// The janitor learns which pages a new memory's process writes, and
    /// keeps places where those pages are backed already and read zero;
    /// the next memories take them.
    #[test]
    fn warm_places_are_backed_where_processes_write_read_zero_and_are_taken() {
        let arena = Arena::with_manual_janitor(1 << 30);
        let (len, max) = (16 * PAGE, 32 * PAGE);
        let first = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        for page in [0, 3] {
            // SAFETY: a page of the region, which is ours.
            unsafe { std::ptr::write_bytes(first.base().add(page * PAGE), 0xAB, 8) };
        }
        if states(first.base(), 1).is_none() {
            return; // Without a page map there is nothing to learn from.
        }
        let mut janitor = Janitor::default();
        assert!(janitor.round(&arena));
        assert_eq!(janitor.footprint, vec![0, 3 * PAGE]);
        let warm: Vec<usize> = arena.with_map(|map| {
            assert_eq!(map.vacancies.len(), WARM_STOCK);
            assert!(
                map.vacancies
                    .iter()
                    .all(|v| v.len == 2 * len && v.stale.is_empty())
            );
            map.vacancies.iter().map(|v| v.offset).collect()
        });
        for &offset in &warm {
            // SAFETY: an offset inside the mapping.
            let base = unsafe { arena.base().add(offset) };
            let held = states(base, 4).unwrap();
            let backed = [true, false, false, true];
            assert_eq!(
                held.iter().map(|p| p.holds_data()).collect::<Vec<_>>(),
                backed
            );
        }
        assert!(!janitor.round(&arena), "the stock is full");
        let next = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        assert!(warm.contains(&next.offset()), "a warm place is taken");
        // SAFETY: the region is ours and `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(next.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "and reads zero");
        assert!(janitor.round(&arena), "and replaced");
        assert_eq!(arena.with_map(|map| map.vacancies.len()), WARM_STOCK);
    }

    /// A warm place on another region's leavings reads zero (the
    /// janitor zeroed them), and so does the memory that takes it.
    #[test]
    fn a_warm_place_on_stale_bytes_is_zeroed_and_taken_zeroed() {
        let arena = Arena::with_manual_janitor(64 << 20);
        let len = 1 << 20;
        let stacks: Vec<_> = (0..60)
            .map(|_| arena.allocate(RegionKind::Stack, len, len).unwrap())
            .collect();
        for stack in &stacks {
            // SAFETY: the region is ours and `len` bytes long.
            unsafe { std::ptr::write_bytes(stack.base(), 0xAB, len) };
        }
        drop(stacks);
        let (len, max) = (16 * PAGE, 32 * PAGE);
        let first = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        // SAFETY: the region is ours.
        unsafe { first.base().write(1) };
        if states(first.base(), 1).is_none() {
            return; // Without a page map there is nothing to learn from.
        }
        let stale_before = arena.stats().stale_bytes;
        assert!(round(&arena));
        let warm: Vec<usize> = arena.with_map(|map| {
            assert_eq!(map.warming, 0);
            map.vacancies.iter().map(|v| v.offset).collect()
        });
        assert!(!warm.is_empty());
        let warmed = warm.len() * 2 * len;
        assert_eq!(arena.stats().stale_bytes, stale_before - warmed, "zeroed");
        for &offset in &warm {
            // SAFETY: a vacancy's range, inside the mapping, which nobody
            // holds while this test reads it.
            let bytes = unsafe { std::slice::from_raw_parts(arena.base().add(offset), 2 * len) };
            assert!(bytes.iter().all(|b| *b == 0), "a warm place reads zero");
        }
        let next = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
        assert!(warm.contains(&next.offset()), "a warm place is taken");
        // SAFETY: the region is ours and `len` bytes long.
        let bytes = unsafe { std::slice::from_raw_parts(next.base(), len) };
        assert!(bytes.iter().all(|b| *b == 0), "and reads zero");
    }

    /// A placement that finds no room while the janitor readies warm
    /// places waits for them rather than fail.
    #[test]
    fn a_full_arena_waits_for_warm_places_being_readied() {
        let len = 1 << 20;
        let arena = Arena::with_manual_janitor(4 * len);
        let _memories: Vec<_> = (0..3)
            .map(|_| arena.allocate(RegionKind::LinearMemory, len, len).unwrap())
            .collect();
        // The janitor's part, by hand: the last free megabyte taken to be
        // readied, and made a vacancy a little later.
        let placed = arena.with_map(|map| {
            let placed = map.place_warm(len).expect("a free megabyte");
            map.warming += len;
            placed
        });
        std::thread::scope(|scope| {
            scope.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                arena.zero_stale(placed.stale);
                arena.with_map(|map| {
                    map.warming -= len;
                    map.vacate(placed.offset, len, Vec::new());
                });
            });
            let memory = arena.allocate(RegionKind::LinearMemory, len, len);
            assert_eq!(memory.expect("waited").offset(), placed.offset);
        });
    }

    /// Two threads spawn and end memories and large tables as fast as
    /// they can, scribbling over each, while the janitor thread runs its
    /// rounds for real: every new region reads zero, whatever the janitor
    /// was doing to the ranges around it.
    #[test]
    fn with_a_running_janitor_every_new_region_reads_zero() {
        let options = crate::arena::ArenaOptions {
            janitor: true,
            ..Default::default()
        };
        let arena = Arena::with_options(1 << 30, options).unwrap();
        let kib = 1024;
        std::thread::scope(|scope| {
            for thread in 0..2u8 {
                let arena = &arena;
                scope.spawn(move || {
                    let mut held = std::collections::VecDeque::new();
                    for i in 0..4000 {
                        let (kind, len) = match i % 5 {
                            4 => (RegionKind::Table, 64 * kib),
                            n => (RegionKind::LinearMemory, 64 * kib * (n + 1)),
                        };
                        let region = arena.allocate(kind, len, 2 * len).unwrap();
                        // SAFETY: the region is ours and `len` bytes long.
                        let bytes = unsafe { std::slice::from_raw_parts(region.base(), len) };
                        assert!(bytes.iter().all(|b| *b == 0), "{kind:?} {i} reads zero");
                        for at in [0, 3 * PAGE, len - PAGE] {
                            // SAFETY: a page of the region, which is ours.
                            unsafe {
                                std::ptr::write_bytes(region.base().add(at), 0xA0 + thread, 64)
                            };
                        }
                        held.push_back(region);
                        if held.len() > 40 {
                            held.pop_front();
                        }
                        if i % 500 == 0 {
                            std::thread::sleep(Duration::from_millis(1));
                        }
                    }
                });
            }
        });
        arena.settle_unscanned();
        let stats = arena.stats();
        assert_eq!((stats.live_bytes, stats.live_regions), (0, 0));
        assert!(stats.janitor_cpu_nanos > 0, "the janitor ran");
    }

    /// Once `stop_janitor` returns, the arena scans what it frees itself.
    #[test]
    fn a_stopped_janitor_has_ended_and_exits_scan_inline() {
        let options = crate::arena::ArenaOptions {
            janitor: true,
            ..Default::default()
        };
        let arena = Arena::with_options(1 << 26, options).unwrap();
        let memory = arena.allocate(RegionKind::LinearMemory, 16 * PAGE, 32 * PAGE);
        assert!(arena.has_janitor());
        arena.stop_janitor();
        assert!(!arena.has_janitor());
        drop(memory);
        assert!(
            arena.with_map(|map| map.unscanned.is_empty()),
            "scanned at once"
        );
    }

    /// Stale bytes past their limit wait for the janitor until they reach
    /// twice it; its round trims them to half the limit.
    #[test]
    fn trims_wait_for_the_janitor_up_to_twice_the_limit() {
        let arena = Arena::with_manual_janitor(1 << 30);
        let len = 1 << 20;
        let count = 3 * STALE_FLOOR / 2 / len;
        let stacks: Vec<_> = (0..count)
            .map(|_| arena.allocate(RegionKind::Stack, len, len).unwrap())
            .collect();
        drop(stacks);
        let (stale, limit) = arena.with_map(|map| (map.stats.stale_bytes, map.stale_limit()));
        assert_eq!(
            stale,
            count * len,
            "freed stacks are listed stale, untrimmed"
        );
        assert!(limit < stale && stale <= 2 * limit);
        assert!(round(&arena));
        let (stale, limit) = arena.with_map(|map| (map.stats.stale_bytes, map.stale_limit()));
        assert!(stale <= limit / 2, "{stale} stale bytes left");
        assert!(!round(&arena), "nothing more to do");
    }
}
