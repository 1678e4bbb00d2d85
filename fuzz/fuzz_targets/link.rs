//! wasm-smith programs of several modules linked in one process: each
//! module may import what the modules before it export (functions,
//! memories, tables, globals), and every export of every instance is
//! called. The three configurations must agree on every call's outcome
//! (CARAT and paging modes differ only in stack depth), and nothing may
//! panic or crash.
#![no_main]

mod common;

use arbitrary::{Arbitrary, Unstructured};
use carat_vm::{Extern, Val, ValType};
use libfuzzer_sys::fuzz_target;

fn config() -> wasm_smith::Config {
    wasm_smith::Config {
        simd_enabled: false,
        relaxed_simd_enabled: false,
        threads_enabled: false,
        tail_call_enabled: false,
        gc_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        wide_arithmetic_enabled: false,
        extended_const_enabled: false,
        custom_page_sizes_enabled: false,
        compact_imports_enabled: false,
        max_memories: 1,
        max_tables: 2,
        max_memory32_bytes: 16 << 20,
        max_table_elements: 10_000,
        max_funcs: 12,
        max_instructions: 200,
        export_everything: true,
        canonicalize_nans: true,
        ..wasm_smith::Config::default()
    }
}

fn wat_type(ty: ValType) -> &'static str {
    match ty {
        ValType::I32 => "i32",
        ValType::I64 => "i64",
        ValType::F32 => "f32",
        ValType::F64 => "f64",
        ValType::FuncRef => "funcref",
        ValType::ExternRef => "externref",
    }
}

fn wat_string(text: &str) -> String {
    let mut out = String::from("\"");
    for byte in text.bytes() {
        match byte {
            b' '..=b'~' if byte != b'"' && byte != b'\\' => out.push(byte as char),
            _ => out.push_str(&format!("\\{byte:02x}")),
        }
    }
    out.push('"');
    out
}

/// A module importing everything the earlier modules export, module `m`
/// of `modules[m]`.
fn available_imports(modules: &[Vec<u8>]) -> Option<Vec<u8>> {
    use carat_jit::EntityKind;
    let mut wat = String::from("(module\n");
    let mut any = false;
    for (m, wasm) in modules.iter().enumerate() {
        let info = carat_jit::module_info::decode(wasm).ok()?;
        for export in &info.exports {
            let i = export.index as usize;
            let item = match export.kind {
                EntityKind::Func => {
                    let ty = info.func_type(export.index);
                    let params: Vec<&str> = ty.params.iter().map(|t| wat_type(*t)).collect();
                    let results: Vec<&str> = ty.results.iter().map(|t| wat_type(*t)).collect();
                    format!("(func (param {}) (result {}))", params.join(" "), results.join(" "))
                }
                EntityKind::Memory => {
                    let ty = &info.memories[i];
                    let max = ty.maximum.map(|m| m.to_string()).unwrap_or_default();
                    format!("(memory {} {max})", ty.minimum)
                }
                EntityKind::Table => {
                    let ty = &info.tables[i];
                    let max = ty.maximum.map(|m| m.to_string()).unwrap_or_default();
                    format!("(table {} {max} {})", ty.minimum, wat_type(ty.element))
                }
                EntityKind::Global => {
                    let ty = &info.globals[i];
                    let content = wat_type(ty.content);
                    if ty.mutable {
                        format!("(global (mut {content}))")
                    } else {
                        format!("(global {content})")
                    }
                }
            };
            wat.push_str(&format!("(import \"m{m}\" {} {item})\n", wat_string(&export.name)));
            any = true;
        }
    }
    wat.push(')');
    any.then(|| wat::parse_str(&wat).expect("the import list parses"))
}

/// Up to four modules, each drawing imports from the ones before it.
fn modules(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Vec<u8>>> {
    let count = u.int_in_range(1..=4)?;
    let mut modules: Vec<Vec<u8>> = Vec::new();
    for _ in 0..count {
        let mut config = config();
        config.available_imports = available_imports(&modules);
        config.max_imports = if config.available_imports.is_some() { 24 } else { 0 };
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
        for export in exports {
            if let Some(Extern::Func(f)) = process.export(*instance, &export.name) {
                let args: Vec<Val> = process
                    .func_type(f)
                    .params
                    .iter()
                    .map(|t| Val::default_for(*t))
                    .collect();
                let outcome = match process.call(f, &args) {
                    Ok(values) => values.iter().map(describe).collect::<Vec<_>>().join(" "),
                    Err(e) => match e.trap() {
                        Some(trap) => format!("trap {trap}"),
                        None => format!("error {e}"),
                    },
                };
                seen.push(outcome);
            }
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
