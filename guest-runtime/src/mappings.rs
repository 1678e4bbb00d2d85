//! The host's budget of memory mappings.
//!
//! Linux caps the mappings of one process (`vm.max_map_count`, 65,530 by
//! default). Fiber stacks and paging-mode reservations each take
//! mappings, and once the cap is reached every `mmap` fails, the host
//! allocator's included: the next allocation anywhere aborts the whole
//! VM. So every mapping a guest causes is taken from this budget first,
//! which keeps a quarter of the cap (at least 8,192) for the host itself.
//! Running out fails the one spawn or call that asked, with an error
//! that says so, and the host allocator never meets the kernel's cap.
//! `CARAT_MAP_BUDGET=N` sets a smaller budget (tests use it to reach the
//! limit quickly); it is never raised past the kernel's cap.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Mappings kept for the host: its heap, threads, libraries and code.
const HOST_RESERVE_MIN: usize = 8192;

fn budget() -> usize {
    static BUDGET: OnceLock<usize> = OnceLock::new();
    *BUDGET.get_or_init(|| {
        let cap = std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .unwrap_or(65_530);
        let budget = cap.saturating_sub(HOST_RESERVE_MIN.max(cap / 4));
        std::env::var("CARAT_MAP_BUDGET")
            .ok()
            .and_then(|s| s.trim().parse::<usize>().ok())
            .map_or(budget, |asked| asked.min(budget))
    })
}

static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// Mappings granted from the budget; they go back when it drops.
#[derive(Debug)]
pub struct MapGrant(usize);

impl Drop for MapGrant {
    fn drop(&mut self) {
        IN_USE.fetch_sub(self.0, Ordering::AcqRel);
    }
}

/// The budget is used up.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the host's memory-mapping budget is used up ({in_use} of {budget} mappings; \
     vm.max_map_count bounds them)"
)]
pub struct MapBudgetExhausted {
    pub in_use: usize,
    pub budget: usize,
}

/// Takes `count` mappings from the budget.
pub fn acquire(count: usize) -> Result<MapGrant, MapBudgetExhausted> {
    let budget = budget();
    IN_USE
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            n.checked_add(count).filter(|total| *total <= budget)
        })
        .map(|_| MapGrant(count))
        .map_err(|in_use| MapBudgetExhausted { in_use, budget })
}

/// Mappings granted now, and the budget.
pub fn usage() -> (usize, usize) {
    (IN_USE.load(Ordering::Acquire), budget())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_stop_at_the_budget_and_come_back() {
        let (_, budget) = usage();
        assert!(budget >= 1000, "budget {budget}");
        let held = acquire(10).unwrap();
        let too_many = acquire(budget);
        assert!(too_many.is_err(), "{too_many:?}");
        drop(held);
        drop(too_many);
        let (in_use, _) = usage();
        assert!(in_use < budget);
    }
}
