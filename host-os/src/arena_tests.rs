//! The arena's tests: placement, zeroing, stale reuse, moves and their
//! copies, poisoning, and exhaustion.

use super::*;
use crate::allocation_map::STALE_FLOOR;
use crate::residency::PageState;

fn arena(size: usize) -> Arena {
    Arena::new(size, false).expect("arena")
}

/// An arena whose moves leave poison behind.
fn poisoned_arena(size: usize) -> Arena {
    let options = ArenaOptions {
        poison_moves: true,
        ..ArenaOptions::default()
    };
    Arena::with_options(size, options).expect("arena")
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
        assert!(again.reads_zero());
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
    assert!(table.reads_zero(), "a table reads zero");
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
    assert!(table.reads_zero(), "a table reads zero");
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
        let mut stale = arena.stale_bytes(RegionKind::LinearMemory, piece, None);
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

/// A freed memory's written pages are listed stale as they are (an exit
/// hands nothing back), and the next growable memory goes where it was
/// (not to the middle of the largest gap), reads zero, the pages the old
/// one wrote still resident (no page fault for its data segment), the
/// pages it never wrote still untouched.
#[test]
fn a_freed_memory_is_reused_zeroed_where_it_was_written_and_untouched_elsewhere() {
    use crate::residency::{Pagemap, Residency};
    let arena = arena(1 << 24);
    let (len, max) = (16 * PAGE, 64 * PAGE);
    let memory = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
    let offset = memory.offset();
    let _neighbour = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
    for n in [0, 5] {
        // SAFETY: a page of the region, which is ours.
        unsafe { std::ptr::write_bytes(memory.base().add(n * PAGE), 0xAB, PAGE) };
    }
    // What the kernel holds (with transparent huge pages "always", more
    // than the two pages written); without a page map, nothing to check.
    let Some(held) = Pagemap::open().pages(memory.base() as usize, 16) else {
        return;
    };
    drop(memory);
    assert_eq!(
        arena.stats().stale_bytes,
        held.iter().filter(|p| p.holds_data()).count() * PAGE,
        "the pages holding data listed, not zeroed"
    );
    let again = arena.allocate(RegionKind::LinearMemory, len, max).unwrap();
    assert_eq!(again.offset(), offset, "placed on the freed range");
    assert_eq!(arena.stats().stale_bytes, 0);
    // Asked before the read below, which maps the zero page.
    let states = Pagemap::open().pages(again.base() as usize, 16);
    assert!(again.reads_zero(), "a new memory reads zero");
    if let Some(states) = states {
        assert_eq!(states, held, "the same pages held, no more, no fewer");
    }
}

/// Freed memories past the stale limit go back to the kernel in one
/// batch, down to half the limit, not one at every free.
#[test]
fn stale_memories_past_the_limit_are_handed_back_in_a_batch() {
    use crate::residency::{Pagemap, Residency};
    if Pagemap::open().pages(0, 1).is_none() {
        return; // Without a page map, freed memories are zeroed at once.
    }
    let arena = arena(1 << 30);
    let len = 1 << 20;
    let count = 2 * STALE_FLOOR / len;
    let memories: Vec<ArenaRegion> = (0..count)
        .map(|_| {
            let memory = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
            // SAFETY: the region is ours and `len` bytes long.
            unsafe { std::ptr::write_bytes(memory.base(), 1, len) };
            memory
        })
        .collect();
    let first_pages: Vec<usize> = memories.iter().map(|m| m.base() as usize).collect();
    let mut trims = 0;
    for memory in memories {
        let before = arena.stats().stale_bytes;
        drop(memory);
        let after = arena.stats().stale_bytes;
        let limit = arena.state().stale_limit();
        assert!(after <= limit);
        if after < before {
            trims += 1;
            assert!(after <= limit / 2, "trimmed to half the limit");
        }
    }
    assert!((1..=3).contains(&trims), "{trims} trims");
    let state = arena.state();
    // Stale in the map or in a vacancy (a freed memory's range held for
    // the next memory of its length).
    let still_stale = |at: usize| {
        let offset = at - arena.base() as usize;
        let listed = state
            .stale
            .range(..=offset)
            .next_back()
            .is_some_and(|(&piece, &n)| offset < piece + n);
        let vacant = state
            .vacancies
            .iter()
            .flat_map(|v| &v.stale)
            .any(|&(piece, n)| (piece..piece + n).contains(&offset));
        listed || vacant
    };
    let pagemap = Pagemap::open();
    for at in first_pages {
        if let Some(page) = pagemap.pages(at, 1) {
            assert_eq!(page[0].holds_data(), still_stale(at), "page at {at:#x}");
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
    let stack = arena
        .allocate(RegionKind::Stack, 16 << 10, 16 << 10)
        .unwrap();
    let chunk = arena.allocate(RegionKind::Table, 65536, 65536).unwrap();
    let second = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
        .unwrap();
    // Room to double: nothing else lies there, and the memory grows into
    // it in place.
    let room = memory.offset()..memory.offset() + (128 << 10);
    for other in [&control, &stack, &chunk, &second] {
        let (start, end) = (other.offset(), other.offset() + other.len() - 1);
        assert!(!room.contains(&start) && !room.contains(&end));
    }
    assert_eq!(arena.state().regions[&memory.offset()].room, 65536);
    assert!(memory.grow_in_place(128 << 10));
    assert_eq!(arena.state().regions[&memory.offset()].room, 0);
    // SAFETY: the memory's bytes are ours; the room it grew into reads
    // zero.
    let grown = unsafe { std::slice::from_raw_parts(memory.base(), 128 << 10) };
    assert!(grown.iter().all(|&b| b == 0));
    // Memories pack: the second lies near the first (past the small
    // regions placed between them), not half an arena away.
    let distance = memory.offset().abs_diff(second.offset());
    assert!(distance < 1 << 20, "{distance:#x} apart");
    // A memory that may not grow gets no room.
    let fixed = arena
        .allocate(RegionKind::LinearMemory, 65536, 65536)
        .unwrap();
    assert_eq!(arena.state().regions[&fixed.offset()].room, 0);
    drop((control, stack, chunk, second, fixed));
    assert_eq!(arena.stats().live_regions, 1);
}

/// A freed memory's range is a vacancy: the next memory of its length
/// and room takes it whole, stale pages zeroed, without touching the free
/// map; one of another length does not; and an allocation that finds no
/// room without the vacancies gets them back.
#[test]
fn vacancies_go_to_memories_of_their_length_and_back_when_space_runs_out() {
    let arena = arena(1 << 22);
    let memory = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 22)
        .unwrap();
    let at = memory.offset();
    // SAFETY: the memory's bytes are ours.
    unsafe { std::ptr::write_bytes(memory.base(), 7, 4096) };
    drop(memory);
    assert_eq!(arena.state().vacancies.len(), 1);
    let larger = arena
        .allocate(RegionKind::LinearMemory, 2 * 65536, 1 << 22)
        .unwrap();
    assert_ne!(larger.offset(), at, "another length leaves the vacancy");
    drop(larger);
    let free_before_same = arena.state().free.clone();
    let same = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 22)
        .unwrap();
    assert_eq!(same.offset(), at, "the same length takes the vacancy");
    assert_eq!(
        arena.state().free,
        free_before_same,
        "the free map is untouched"
    );
    // SAFETY: the memory's bytes are ours.
    let bytes = unsafe { std::slice::from_raw_parts(same.base(), 65536) };
    assert!(
        bytes.iter().all(|&b| b == 0),
        "the old process's bytes are gone"
    );
    drop(same);
    // A smaller memory takes the head of a larger vacancy; the rest goes
    // to the free map, its written page listed stale.
    let eight = arena
        .allocate(RegionKind::LinearMemory, 8 * 65536, 8 * 65536)
        .unwrap();
    let at = eight.offset();
    // SAFETY: the memory's bytes are ours.
    unsafe { std::ptr::write_bytes(eight.base().add(7 * 65536), 9, 4096) };
    drop(eight);
    // Three pages and room for three: of the vacancies (two pages, four,
    // eight), only the eight-page one holds them.
    let small = arena
        .allocate(RegionKind::LinearMemory, 3 * 65536, 1 << 22)
        .unwrap();
    assert_eq!(small.offset(), at, "the smallest vacancy that holds it");
    {
        let state = arena.state();
        let tail = at + 6 * 65536;
        assert_eq!(
            state.free.get(&tail),
            Some(&(2 * 65536)),
            "the rest is free"
        );
        let written = at + 7 * 65536;
        assert!(
            state
                .stale
                .range(..=written)
                .next_back()
                .is_some_and(|(&p, &n)| written < p + n)
        );
    }
    drop(small);
    // Fill the arena with one-page memories (no room: they may not
    // grow), free them all, then ask for one region as large as half the
    // arena: only the vacancies given back make room for it.
    let mut held = Vec::new();
    while let Ok(m) = arena.allocate(RegionKind::LinearMemory, 65536, 65536) {
        held.push(m);
    }
    assert!(held.len() > 32);
    drop(held);
    assert!(!arena.state().vacancies.is_empty());
    let big = arena.allocate(RegionKind::Table, 1 << 21, 1 << 21);
    assert!(big.is_ok(), "vacancies give way: {:?}", big.err());
    assert!(arena.state().vacancies.is_empty());
}

/// Memories packed with their rooms are not fragmentation: the rooms are
/// kept for their memories, not free space split up. (As
/// free space they made a packed arena read as 0.6 fragmented, and the
/// policy compacted processes at every park.)
#[test]
fn memories_rooms_are_not_fragmentation() {
    let arena = arena(64 << 20);
    let memories: Vec<ArenaRegion> = (0..400)
        .map(|_| {
            arena
                .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
                .unwrap()
        })
        .collect();
    assert!(arena.fragmentation() < 0.05, "{}", arena.fragmentation());
    drop(memories);
}

/// Rooms never make a placement fail: an arena full of growable memories
/// (half of it their rooms) still takes a region as large as a room, and
/// a memory whose room went back grows into free bytes or not at all.
#[test]
fn rooms_go_back_before_a_placement_fails() {
    // 32 one-page memories, each with a page of room, fill 4 MiB.
    let arena = arena(4 << 20);
    let mut memories: Vec<ArenaRegion> = (0..32)
        .map(|_| {
            arena
                .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
                .unwrap()
        })
        .collect();
    assert_eq!(arena.state().free_bytes, 0);
    assert!(arena.state().regions.values().all(|r| r.room == 65536));
    let table = arena.allocate(RegionKind::Table, 65536, 65536);
    assert!(table.is_ok(), "rooms give way: {:?}", table.err());
    assert!(arena.state().regions.values().all(|r| r.room == 0));
    // Every memory is still whole and zero; none may grow into what is
    // now the table's.
    let table = table.unwrap();
    for memory in &mut memories {
        let grown = memory.grow_in_place(2 * 65536);
        let end = memory.offset() + memory.len();
        assert!(!grown || end <= table.offset() || memory.offset() >= table.offset() + 65536);
    }
}

/// A compaction that finds no lower place is the common case at a park:
/// it leaves the vacancies be (giving them back emptied the cache at every
/// park, and their scattered ranges read as fragmentation). One that finds
/// a vacancy below takes it: a vacancy is kept for memories, and a
/// compacting memory is one.
#[test]
fn compaction_takes_a_vacancy_below_and_keeps_the_others() {
    let arena = arena(4 << 20);
    let upper = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
        .unwrap();
    let mut lower = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
        .unwrap();
    let third = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
        .unwrap();
    assert!(third.offset() < lower.offset() && lower.offset() < upper.offset());
    // Everything below the three is taken.
    let below = arena.state().free.values().sum::<usize>();
    let _filler = arena.allocate(RegionKind::Table, below, below).unwrap();
    assert_eq!(arena.state().free_bytes, 0);
    let upper_at = upper.offset();
    drop(upper);
    assert_eq!(arena.state().vacancies.len(), 1);
    assert_eq!(lower.compact(65536), None, "the only vacancy lies above it");
    assert_eq!(arena.state().vacancies.len(), 1, "the vacancy stays");
    let third_at = third.offset();
    // SAFETY: the memory's bytes are ours.
    unsafe { std::ptr::write_bytes(lower.base(), 3, 4096) };
    drop(third);
    assert_eq!(arena.state().vacancies.len(), 2);
    assert!(lower.compact(65536).is_some());
    assert_eq!(lower.offset(), third_at, "into the vacancy below");
    // SAFETY: as above.
    let moved = unsafe { std::slice::from_raw_parts(lower.base(), 8192) };
    assert!(moved[..4096].iter().all(|&b| b == 3) && moved[4096..].iter().all(|&b| b == 0));
    let state = arena.state();
    assert_eq!(state.vacancies.len(), 1);
    assert_eq!(state.vacancies[0].offset, upper_at, "the other stays");
}

/// A placement that cannot succeed even with every room given back (a
/// guest asking for more than the arena) leaves the rooms be: a guest
/// looping on a failing `memory.grow` must not strip every memory's room.
#[test]
fn a_hopeless_placement_keeps_the_rooms() {
    let arena = arena(4 << 20);
    let _memories: Vec<ArenaRegion> = (0..8)
        .map(|_| {
            arena
                .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
                .unwrap()
        })
        .collect();
    assert!(arena.allocate(RegionKind::Table, 8 << 20, 8 << 20).is_err());
    let state = arena.state();
    assert!(
        state
            .regions
            .values()
            .all(|r| r.kind != RegionKind::LinearMemory || r.room == 65536)
    );
}

/// A room whose stale pieces a placement is still zeroing (outside the
/// lock) is not given back: another region would get its bytes, then see
/// them zeroed under it.
#[test]
fn a_room_being_zeroed_is_not_given_back() {
    let arena = arena(4 << 20);
    let memory = arena
        .allocate(RegionKind::LinearMemory, 65536, 1 << 30)
        .unwrap();
    let at = memory.offset();
    let mut state = arena.state();
    assert_eq!(
        state.zeroing_room(at, 65536, 65536, &[(at + 65536, 4096)]),
        Some(at)
    );
    assert_eq!(
        state.zeroing_room(at, 65536, 65536, &[(at, 4096)]),
        None,
        "not in the room"
    );
    assert!(!state.release_rooms(), "the room is being zeroed");
    assert_eq!(state.regions[&at].room, 65536);
    state.room_zeroed(at);
    assert!(state.release_rooms());
    assert_eq!(state.regions[&at].room, 0);
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
            RegionKind::Table
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
                                let bytes =
                                    unsafe { std::slice::from_raw_parts_mut(region.base(), new) };
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
                            let bytes =
                                unsafe { std::slice::from_raw_parts(region.base(), region.len()) };
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

/// A compaction's old range is handed back at once: nothing more listed
/// stale, no page of it resident.
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
    let stale_before = arena.stats().stale_bytes;
    let moved_from = memory.compact(0).expect("a lower range is free");
    assert_eq!(moved_from, old);
    assert!((memory.base() as usize) < old);
    // SAFETY: inside the region.
    assert_eq!(unsafe { *memory.base().add(4096) }, 9);
    assert_eq!(
        arena.stats().stale_bytes,
        stale_before,
        "nothing more listed stale"
    );
    if let Some(pages) = Pagemap::open().pages(old, 256) {
        assert!(pages.iter().all(|p| *p == PageState::Untouched));
    }
}

/// With poisoning on, the range a move leaves holds the poison byte at
/// once (so a pointer left unpatched reads garbage), and the stale
/// poison never reaches the next region placed there. (Slab slots:
/// `a_moved_slot_stays_poisoned_and_a_freed_chunk_reads_zero`.)
#[test]
fn poisoned_moves_leave_poison_and_hand_out_zeros() {
    let arena = poisoned_arena(1 << 28);
    let mut region = arena.allocate(RegionKind::Table, 256, 256).unwrap();
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
        .map(|_| arena.allocate(RegionKind::Table, 256, 256).unwrap())
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
    let mut state = arena.state();
    // The memories' ranges are vacancies until given up.
    assert_eq!(state.vacancies.len(), 7);
    assert!(state.release_vacancies());
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

/// Small fixed-size control blocks are slab slots: distinct, zeroed when
/// taken, listed as regions, counted by their slots, reused, and gone
/// with their chunks once freed.
#[test]
fn control_blocks_are_slab_slots_that_read_zero_are_reused_and_go() {
    let arena = arena(1 << 28);
    let len = 200;
    let per_chunk = crate::slab::CHUNK / 256;
    let mut blocks: Vec<ArenaRegion> = (0..per_chunk + 5)
        .map(|i| {
            let block = arena.allocate(RegionKind::ControlBlock, len, len).unwrap();
            // SAFETY: the block is ours and `len` bytes long.
            let bytes = unsafe { std::slice::from_raw_parts_mut(block.base(), len) };
            assert!(bytes.iter().all(|b| *b == 0), "block {i} reads zero");
            bytes.fill((i as u8).wrapping_add(1));
            block
        })
        .collect();
    let stats = arena.stats();
    assert_eq!(stats.live_regions, per_chunk + 5);
    assert_eq!(stats.live_bytes, 2 * crate::slab::CHUNK, "two chunks");
    assert_eq!(
        stats.live_bytes_of(RegionKind::ControlBlock),
        (per_chunk + 5) * 256,
        "blocks count their slots"
    );
    let listed = arena.regions();
    assert_eq!(listed.len(), per_chunk + 5);
    assert!(
        listed
            .iter()
            .all(|(_, r)| r.kind == RegionKind::ControlBlock && r.len == 256)
    );
    let freed = blocks.swap_remove(3).offset();
    let again = arena.allocate(RegionKind::ControlBlock, len, len).unwrap();
    assert_eq!(again.offset(), freed, "the freed slot is reused first");
    // SAFETY: as above.
    assert!(
        unsafe { std::slice::from_raw_parts(again.base(), len) }
            .iter()
            .all(|b| *b == 0)
    );
    assert!(blocks[0].compact(0).is_none(), "slots are not compacted");
    drop(again);
    blocks.clear();
    let stats = arena.stats();
    assert_eq!(stats.live_regions, 0);
    assert_eq!(stats.live_bytes_of(RegionKind::ControlBlock), 0);
    assert_eq!(stats.live_bytes, crate::slab::CHUNK, "one empty chunk kept");
    assert!(arena.regions().is_empty());
}

/// A slot a move leaves is poisoned, and stays so: with poisoning on,
/// given-back slots wait in a quarantine before the next block takes
/// them, so a pointer a move failed to patch reads poison, not the next
/// process's block. A freed chunk's bytes read zero under a table placed
/// on them.
#[test]
fn a_moved_slot_stays_poisoned_and_a_freed_chunk_reads_zero() {
    let poisoned = poisoned_arena(1 << 28);
    let len = 200;
    let mut block = poisoned
        .allocate(RegionKind::ControlBlock, len, len)
        .unwrap();
    // SAFETY: the block is ours and `len` bytes long.
    unsafe { std::ptr::write_bytes(block.base(), 7, len) };
    let old = block.offset();
    let old_base = block.relocate(len, 0).expect("a slot to move to");
    assert_eq!(old_base, poisoned.base() as usize + old);
    assert_ne!(block.offset(), old);
    // SAFETY: as above.
    assert!(
        unsafe { std::slice::from_raw_parts(block.base(), len) }
            .iter()
            .all(|b| *b == 7)
    );
    let others: Vec<ArenaRegion> = (0..100)
        .map(|_| {
            poisoned
                .allocate(RegionKind::ControlBlock, len, len)
                .unwrap()
        })
        .collect();
    assert!(others.iter().all(|o| o.offset() != old), "quarantined");
    // SAFETY: the old slot is inside the arena and nobody's.
    assert_eq!(unsafe { *poisoned.base().add(old) }, POISON);
    drop(others);
    drop(block);

    // Fill whole chunks with non-zero blocks, free them, and place a
    // table over what they were.
    let arena = arena(1 << 28);
    let blocks: Vec<ArenaRegion> = (0..3 * crate::slab::CHUNK / 256)
        .map(|_| {
            let block = arena.allocate(RegionKind::ControlBlock, 256, 256).unwrap();
            // SAFETY: the block is ours and 256 bytes long.
            unsafe { std::ptr::write_bytes(block.base(), 0xEE, 256) };
            block
        })
        .collect();
    let lowest = blocks.iter().map(|b| b.offset()).min().unwrap();
    drop(blocks);
    let len = 3 * crate::slab::CHUNK;
    let table = arena.allocate(RegionKind::Table, len, len).unwrap();
    assert!(
        table.offset() <= lowest + crate::slab::CHUNK,
        "placed on the chunks"
    );
    assert!(table.reads_zero(), "a table reads zero");
}

/// Without a page map, a move copies a memory whole and a free hands it
/// back whole: every byte still arrives, nothing is listed stale.
#[test]
fn without_a_page_map_moves_copy_everything_and_frees_hand_back() {
    let arena = Arena::with_options(
        1 << 28,
        ArenaOptions {
            residency: Arc::new(crate::residency::tests::Unknown),
            ..ArenaOptions::default()
        },
    )
    .unwrap();
    let len = 1 << 20;
    let mut memory = arena.allocate(RegionKind::LinearMemory, len, len).unwrap();
    for (i, page) in [0usize, 100, 255].into_iter().enumerate() {
        // SAFETY: inside the region.
        unsafe { *memory.base().add(page * PAGE + 7) = i as u8 + 1 };
    }
    memory.relocate(len, 0).expect("room to move");
    for (i, page) in [0usize, 100, 255].into_iter().enumerate() {
        // SAFETY: inside the region.
        assert_eq!(unsafe { *memory.base().add(page * PAGE + 7) }, i as u8 + 1);
    }
    let stale_after_move = arena.stats().stale_bytes;
    assert_eq!(stale_after_move, len, "the whole old range is stale");
    drop(memory);
    assert_eq!(
        arena.stats().stale_bytes,
        stale_after_move,
        "a free adds none"
    );
}
