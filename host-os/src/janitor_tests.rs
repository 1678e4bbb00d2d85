//! The janitor's tests: scans, trims and warm places, by hand and with
//! the thread running; placements that find no room while it holds bytes.

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
    assert!(again.reads_zero(), "a new memory reads zero");
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
    assert!(again.reads_zero(), "a new memory reads zero");
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
        assert!(map.vacancies.iter().all(|v| {
            let backed = [(v.offset, PAGE), (v.offset + 3 * PAGE, PAGE)];
            v.len == 2 * len && v.stale.is_empty() && v.backed == backed
        }));
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
    assert!(next.reads_zero(), "and reads zero");
    assert!(janitor.round(&arena), "and replaced");
    assert_eq!(arena.with_map(|map| map.vacancies.len()), WARM_STOCK);
    // Given back to the free map (space ran out, or a trim), their backed
    // pages are listed stale, for a trim to hand them to the kernel.
    let stale = arena.with_map(|map| {
        map.release_vacancies();
        map.stats.stale_bytes
    });
    assert_eq!(stale, WARM_STOCK * 2 * PAGE);
}

/// A warm place on another region's leavings reads zero (the
/// janitor zeroed them), and so does the memory that takes it.
#[test]
fn a_warm_place_on_stale_bytes_is_zeroed_and_taken_zeroed() {
    let arena = Arena::with_manual_janitor(64 << 20);
    // The first memory, on fresh bytes, writes one page.
    let (len, max) = (16 * PAGE, 32 * PAGE);
    let first = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
    // SAFETY: the region is ours.
    unsafe { first.base().write(1) };
    let stack_len = 1 << 20;
    let stacks: Vec<_> = (0..60)
        .map(|_| {
            arena
                .allocate(RegionKind::Stack, stack_len, stack_len)
                .unwrap()
        })
        .collect();
    for stack in &stacks {
        // SAFETY: the region is ours and `stack_len` bytes long.
        unsafe { std::ptr::write_bytes(stack.base(), 0xAB, stack_len) };
    }
    drop(stacks);
    if states(first.base(), 1).is_none() {
        return; // Without a page map there is nothing to learn from.
    }
    let stale_before = arena.stats().stale_bytes;
    assert!(round(&arena));
    assert!(arena.stats().stale_bytes < stale_before, "on stale bytes");
    let warm: Vec<usize> = arena.with_map(|map| {
        assert_eq!(map.held, 0);
        // Zeroed, its backed page noted.
        let zeroed = |v: &crate::allocation_map::Vacancy| v.stale.is_empty();
        assert!(
            map.vacancies
                .iter()
                .all(|v| zeroed(v) && v.backed == [(v.offset, PAGE)])
        );
        map.vacancies.iter().map(|v| v.offset).collect()
    });
    assert!(!warm.is_empty());
    for &offset in &warm {
        // A vacancy's range, which nobody holds while this test reads it.
        assert!(arena.reads_zero(offset, 2 * len), "a warm place reads zero");
    }
    let next = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
    assert!(warm.contains(&next.offset()), "a warm place is taken");
    assert!(next.reads_zero(), "and reads zero");
}

/// A full arena takes a freed memory the janitor has yet to scan
/// before it strips another memory of its room to grow.
#[test]
fn held_ranges_are_settled_before_rooms_are_given_up() {
    let len = 1 << 20;
    let arena = Arena::with_manual_janitor(4 * len);
    let kept = arena
        .allocate(RegionKind::LinearMemory, len, 2 * len)
        .unwrap();
    let freed = arena
        .allocate(RegionKind::LinearMemory, len, 2 * len)
        .unwrap();
    drop(freed);
    let room_of_kept = || arena.with_map(|map| map.regions[&kept.offset()].room);
    assert_eq!(room_of_kept(), len);
    let _new = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
    assert_eq!(room_of_kept(), len, "the room is still there");
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
    let mut map = arena.state();
    let placed = map.place_warm(len).expect("a free megabyte");
    let hold = arena.hold(&mut map, len);
    drop(map);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(Duration::from_millis(20));
            arena.zero_stale(placed.stale);
            arena.with_map(|map| {
                map.vacate(placed.offset, len, Vec::new(), Vec::new());
                hold.give_back(map);
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
                    assert!(region.reads_zero(), "{kind:?} {i} reads zero");
                    for at in [0, 3 * PAGE, len - PAGE] {
                        // SAFETY: a page of the region, which is ours.
                        unsafe { std::ptr::write_bytes(region.base().add(at), 0xA0 + thread, 64) };
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

/// Bytes held by a thread that panicked are no longer waited for.
#[test]
fn a_hold_dropped_by_a_panic_is_not_waited_for() {
    let len = 1 << 20;
    let arena = Arena::with_manual_janitor(2 * len);
    let _memory = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
    let mut map = arena.state();
    let placed = map.place_warm(len).expect("a free megabyte");
    let hold = arena.hold(&mut map, len);
    drop(map);
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        let _hold = hold;
        panic!("a bug in the holder");
    }));
    assert!(panicked.is_err());
    assert_eq!(arena.stats().janitor_pending_bytes, 0);
    // The megabyte is lost, and the placement fails rather than wait.
    assert!(arena.allocate(RegionKind::LinearMemory, len, len).is_err());
    drop(placed.stale);
}

/// Once `stop_janitor` returns, the thread has ended and the arena
/// scans what it frees itself.
#[test]
fn a_stopped_janitor_has_ended_and_exits_scan_inline() {
    let options = crate::arena::ArenaOptions {
        janitor: true,
        ..Default::default()
    };
    let arena = Arena::with_options(1 << 26, options).unwrap();
    let memory = arena.allocate(RegionKind::LinearMemory, 16 * PAGE, 32 * PAGE);
    assert!(arena.has_janitor());
    assert_eq!(arena.weak_holders(), 1, "the janitor thread");
    arena.stop_janitor();
    assert!(!arena.has_janitor());
    assert_eq!(arena.weak_holders(), 0, "the thread has ended");
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
