//! What the fuzz targets share: the three configurations every input runs
//! in, built once per fuzzing process.

use std::sync::OnceLock;

use carat_vm::{Extern, InstanceId, Mode, Process, Val, Vm, VmConfig, VmError};

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

/// Calls every exported function of `instance`, each with its parameter
/// types' zero values; each call's outcome.
#[allow(dead_code)] // the wasi target has no exports to call
pub fn call_exports(
    process: &mut Process,
    instance: InstanceId,
    exports: &[carat_jit::Export],
) -> Vec<Result<Vec<Val>, VmError>> {
    let mut outcomes = Vec::new();
    for export in exports {
        if let Some(Extern::Func(f)) = process.export(instance, &export.name) {
            let args: Vec<Val> = process
                .func_type(f)
                .params
                .iter()
                .map(|t| Val::default_for(*t))
                .collect();
            outcomes.push(process.call(f, &args));
        }
    }
    outcomes
}
