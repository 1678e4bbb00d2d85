//! What the fuzz targets share: the three configurations every input runs
//! in, built once per fuzzing process.

use std::sync::OnceLock;

use carat_vm::{Mode, Vm, VmConfig};

/// Fuel per call, so generated loops end.
pub const FUEL: u64 = 100_000;

/// CARAT mode, paging mode, and CARAT mode moving every region at every
/// 2nd poll with the ranges it leaves poisoned.
pub fn vms() -> &'static [(&'static str, Vm); 3] {
    static VMS: OnceLock<[(&'static str, Vm); 3]> = OnceLock::new();
    VMS.get_or_init(|| {
        let vm = |mode, relocate_every: Option<u64>| {
            Vm::new(VmConfig {
                mode,
                relocate_every,
                poison_moves: relocate_every.is_some(),
                fuel: Some(FUEL),
                max_memory: Some(16 << 20),
                max_table_elements: 10_000,
                arena_size: 8 << 30,
                compile_threads: 1,
                ..VmConfig::default()
            })
            .expect("vm")
        };
        [
            ("carat", vm(Mode::Carat, None)),
            ("paging", vm(Mode::Paging, None)),
            ("carat relocating", vm(Mode::Carat, Some(2))),
        ]
    })
}
