//! What the host process holds, as the kernel and the allocator count it:
//! the figures behind `bytes_per_process`.
//!
//! Resident memory comes from `/proc/self/statm` (pages in RAM, everything
//! included: the arena's touched pages, fiber stacks, code, the heap).
//! Host heap is glibc's own count of bytes handed out (`mallinfo2`:
//! small-block bytes in use plus mmapped large blocks), so measuring it
//! costs no bookkeeping on every allocation. Both are system calls or
//! walks of the allocator's arenas: for sampling, never for a spawn path.

/// Bytes of this process resident in RAM, or 0 when the kernel does not
/// say.
pub fn resident_bytes() -> u64 {
    let Ok(statm) = std::fs::read_to_string("/proc/self/statm") else {
        return 0;
    };
    // "size resident shared text lib data dt", in pages.
    let resident_pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|field| field.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    resident_pages * u64::try_from(page).unwrap_or(4096)
}

/// Bytes of host heap in use (allocated and not freed), or 0 when the
/// allocator cannot say.
pub fn host_heap_bytes() -> u64 {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallinfo2 only reads the allocator's statistics.
        let info = unsafe { libc::mallinfo2() };
        (info.uordblks + info.hblkhd) as u64
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // How the figures follow allocations is tested in `tests/footprint.rs`,
    // where no other test allocates beside it.
    #[test]
    fn both_figures_are_known_on_linux() {
        assert!(resident_bytes() > 0);
        if cfg!(target_env = "gnu") {
            assert!(host_heap_bytes() > 0);
        }
    }
}
