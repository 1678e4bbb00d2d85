//! wasm-smith programs of several modules linked in one process: each
//! module may import what the modules before it export (functions,
//! memories, tables, globals), and every export of every instance is
//! called. The three configurations must agree on every call's outcome
//! (CARAT and paging modes differ only in stack depth), and nothing may
//! panic or crash.
#![no_main]

mod common;
#[path = "../../tests/support/imports.rs"]
mod imports;
#[path = "../../tests/support/smith.rs"]
mod smith;

use arbitrary::{Arbitrary, Unstructured};
use carat_vm::Val;
use imports::import_everything;
use libfuzzer_sys::fuzz_target;

fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        max_tables: 2,
        max_memory32_bytes: 16 << 20,
        max_table_elements: 10_000,
        max_funcs: 12,
        max_instructions: 200,
        ..smith::supported()
    }
}

/// Up to four modules, each drawing imports from the ones before it.
fn modules(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Vec<u8>>> {
    let count = u.int_in_range(1..=4)?;
    let mut modules: Vec<Vec<u8>> = Vec::new();
    for _ in 0..count {
        let mut config = config();
        let earlier: Vec<(String, &[u8])> = modules
            .iter()
            .enumerate()
            .map(|(m, bytes)| (format!("m{m}"), &bytes[..]))
            .collect();
        config.available_imports = import_everything(&earlier);
        config.max_imports = if config.available_imports.is_some() {
            24
        } else {
            0
        };
        modules.push(wasm_smith::Module::new(config, u)?.to_bytes());
    }
    Ok(modules)
}

/// A value as every configuration names it: a funcref by whether it is
/// null (its handle names a process, which differs between them).
fn describe(value: &Val) -> String {
    match value {
        Val::FuncRef(f) => format!("funcref(null={})", f.is_none()),
        other => format!("{other:?}"),
    }
}

/// What one configuration saw: each instantiation's and call's outcome.
fn run(vm: &carat_vm::Vm, modules: &[Vec<u8>]) -> Vec<String> {
    let mut seen = Vec::new();
    let Ok(mut process) = vm.new_process() else {
        return seen;
    };
    let mut instances = Vec::new();
    for (m, wasm) in modules.iter().enumerate() {
        let module = match vm.compile(wasm) {
            Ok(module) => module,
            Err(e) => {
                seen.push(format!("compile {m}: {e}"));
                return seen;
            }
        };
        match process.instantiate(&module) {
            Ok(instance) => {
                process.register(&format!("m{m}"), instance);
                instances.push((instance, module.info().exports.clone()));
                seen.push(format!("instantiate {m}: ok"));
            }
            Err(e) => {
                seen.push(format!("instantiate {m}: {:?}", e.trap()));
                return seen;
            }
        }
    }
    for (instance, exports) in &instances {
        for result in common::call_exports(&mut process, *instance, exports) {
            seen.push(match result {
                Ok(values) => values.iter().map(describe).collect::<Vec<_>>().join(" "),
                Err(e) => match e.trap() {
                    Some(trap) => format!("trap {trap}"),
                    None => format!("error {e}"),
                },
            });
        }
    }
    seen
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(modules) = modules(&mut u) else {
        return;
    };
    let _ = bool::arbitrary(&mut u);
    let runs: Vec<(&str, Vec<String>)> = common::vms()
        .iter()
        .map(|(name, vm)| (*name, run(vm, &modules)))
        .collect();
    // Stack depth differs between the modes (frames differ in size):
    // compare up to the first exhaustion.
    let cut = |seen: &[String]| {
        seen.iter()
            .position(|s| s.contains("call stack exhausted"))
            .unwrap_or(seen.len())
    };
    let (_, reference) = &runs[0];
    for (name, seen) in &runs[1..] {
        let n = cut(reference).min(cut(seen));
        assert_eq!(
            &reference[..n.min(reference.len())],
            &seen[..n.min(seen.len())],
            "carat and {name} disagree"
        );
    }
});
