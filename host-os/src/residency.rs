//! Which pages of an arena range can hold data: what a move must copy,
//! and what a freed region leaves to be zeroed.
//!
//! A large move copies only the pages that may hold something other than
//! zero, so a sparse memory moves at the cost of what it uses and stays
//! sparse; a freed memory lists only those pages as stale. In the arena's private anonymous mapping a page the kernel has
//! never backed reads as zero. But "not resident" is not "never written":
//! a page may be swapped out, and skipping it would lose the guest's data.
//! `mincore` cannot tell the two apart, and whether the machine has swap
//! can change at any time (`swapon`). So the kernel's page map
//! (`/proc/self/pagemap`, one word per page) is asked instead: bit 63 says
//! present, bit 62 says swapped, and only a page with neither has never
//! been written. When the page map cannot be read, every page is copied.

use std::os::unix::fs::FileExt;

/// What the kernel holds for one page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageState {
    /// Never written since it was last handed back: reads as zero.
    Untouched,
    Resident,
    /// Written, then swapped out: its data is on the swap device.
    Swapped,
}

impl PageState {
    /// Whether the page may hold data a move must carry.
    pub fn holds_data(self) -> bool {
        self != PageState::Untouched
    }
}

/// Where the arena learns which of its pages hold data.
pub trait Residency: Send + Sync + std::fmt::Debug {
    /// The state of each of `pages` pages from the page-aligned `address`;
    /// `None` when it cannot tell (the caller then copies everything).
    fn pages(&self, address: usize, pages: usize) -> Option<Vec<PageState>>;
}

const PAGE: usize = 4096;
const PRESENT: u64 = 1 << 63;
const SWAPPED: u64 = 1 << 62;

/// The kernel's page map of this process.
#[derive(Debug)]
pub struct Pagemap {
    file: Option<std::fs::File>,
}

impl Pagemap {
    /// Opens `/proc/self/pagemap`; without it every query answers `None`.
    pub fn open() -> Self {
        Pagemap {
            file: std::fs::File::open("/proc/self/pagemap").ok(),
        }
    }
}

impl Residency for Pagemap {
    fn pages(&self, address: usize, pages: usize) -> Option<Vec<PageState>> {
        let file = self.file.as_ref()?;
        /// Entries read per system call: 512 KiB of buffer.
        const CHUNK: usize = 64 * 1024;
        let mut states = Vec::with_capacity(pages);
        let mut buffer = vec![0u8; CHUNK.min(pages) * 8];
        let mut page = address / PAGE;
        let end = page + pages;
        while page < end {
            let n = CHUNK.min(end - page);
            let bytes = &mut buffer[..n * 8];
            file.read_exact_at(bytes, (page * 8) as u64).ok()?;
            states.extend(bytes.chunks_exact(8).map(|word| {
                let entry = u64::from_le_bytes(word.try_into().expect("8 bytes"));
                if entry & PRESENT != 0 {
                    PageState::Resident
                } else if entry & SWAPPED != 0 {
                    PageState::Swapped
                } else {
                    PageState::Untouched
                }
            }));
            page += n;
        }
        Some(states)
    }
}

/// The runs of `from..from + len` (addresses) that may hold data: the
/// unaligned edges and the runs of pages that may; `None` when
/// `residency` cannot tell (a move then copies all of it, a free hands
/// all of it back).
pub fn known_data_runs(
    residency: &dyn Residency,
    from: usize,
    len: usize,
) -> Option<Vec<(usize, usize)>> {
    let pages_from = from.next_multiple_of(PAGE);
    let pages_end = (from + len) / PAGE * PAGE;
    if pages_end <= pages_from {
        return Some(vec![(from, len)]);
    }
    let states = residency.pages(pages_from, (pages_end - pages_from) / PAGE)?;
    let mut runs = vec![(from, pages_from - from)];
    let mut page = 0;
    while page < states.len() {
        if !states[page].holds_data() {
            page += 1;
            continue;
        }
        let run = states[page..].iter().take_while(|s| s.holds_data()).count();
        runs.push((pages_from + page * PAGE, run * PAGE));
        page += run;
    }
    runs.push((pages_end, from + len - pages_end));
    runs.retain(|&(_, n)| n > 0);
    Some(runs)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn the_page_map_sees_written_pages_and_not_untouched_ones() {
        let mut buffer = memmap2::MmapMut::map_anon(16 * PAGE).unwrap();
        buffer[3 * PAGE] = 1;
        buffer[4 * PAGE + 17] = 2;
        let base = buffer.as_ptr() as usize;
        let states = Pagemap::open().pages(base, 16).expect("pagemap readable");
        for (i, state) in states.iter().enumerate() {
            let written = i == 3 || i == 4;
            assert_eq!(state.holds_data(), written, "page {i}: {state:?}");
        }
        assert_eq!(
            known_data_runs(&Pagemap::open(), base + 100, 16 * PAGE - 200).unwrap(),
            [
                (base + 100, PAGE - 100),
                (base + 3 * PAGE, 2 * PAGE),
                (base + 15 * PAGE, PAGE - 100)
            ]
        );
    }

    /// A page map that never answers.
    #[derive(Debug)]
    pub(crate) struct Unknown;

    impl Residency for Unknown {
        fn pages(&self, _: usize, _: usize) -> Option<Vec<PageState>> {
            None
        }
    }

    #[test]
    fn without_an_answer_there_are_no_runs() {
        assert_eq!(known_data_runs(&Unknown, 4096, 1 << 20), None);
        // A range within one page needs no answer.
        assert_eq!(known_data_runs(&Unknown, 4100, 10), Some(vec![(4100, 10)]));
    }
}
