//! The programs the differential tester runs: wasm-smith modules
//! configured for what carat-vm implements (WebAssembly 2.0 without SIMD),
//! with NaNs canonicalised so that memory contents compare exactly. A
//! test is one module, or two linked ones: the second imports the first's
//! exports (functions, its memory, tables and globals, mutable ones
//! included) and calls into and shares state with it.

use arbitrary::Unstructured;
use carat_vm::ValType;

use crate::{MAX_MEMORY, MAX_TABLE_ELEMENTS};

/// Bytes for wasm-smith from a seed.
fn seed_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..16384)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

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
        max_imports: 0,
        max_memories: 1,
        max_tables: 2,
        max_memory32_bytes: MAX_MEMORY,
        max_table_elements: u64::from(MAX_TABLE_ELEMENTS),
        min_types: 1,
        min_funcs: 2,
        max_funcs: 16,
        max_instructions: 250,
        export_everything: true,
        canonicalize_nans: true,
        ..wasm_smith::Config::default()
    }
}

/// One module with no imports.
pub fn generate(seed: u64) -> Vec<u8> {
    wasm_smith::Module::new(config(), &mut Unstructured::new(&seed_bytes(seed)))
        .expect("wasm-smith generates a module")
        .to_bytes()
}

/// Two modules: the one `generate(seed)` makes, and one whose imports
/// are drawn from its exports, as module `a`.
pub fn generate_linked(seed: u64) -> Vec<Vec<u8>> {
    let provider = generate(seed);
    let Some(imports) = imports_of_exports(&provider) else {
        return vec![provider];
    };
    let config = wasm_smith::Config {
        available_imports: Some(imports),
        max_imports: 32,
        ..config()
    };
    let bytes = seed_bytes(seed ^ 0x5eed_0f11_4ced);
    let client = wasm_smith::Module::new(config, &mut Unstructured::new(&bytes))
        .expect("wasm-smith generates a module")
        .to_bytes();
    vec![provider, client]
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

/// `text` as a wat string literal: printable ASCII as is, every other
/// byte as a `\hh` escape.
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

/// A module that imports, as module `a`, everything `provider` exports,
/// with the types it exports them at: what wasm-smith may draw imports
/// from. `None` when the provider exports nothing.
fn imports_of_exports(provider: &[u8]) -> Option<Vec<u8>> {
    use carat_jit::EntityKind;
    let info = carat_jit::module_info::decode(provider).ok()?;
    let mut wat = String::from("(module\n");
    for export in &info.exports {
        let name = &export.name;
        let i = export.index as usize;
        let item = match export.kind {
            EntityKind::Func => {
                let ty = info.func_type(export.index);
                let params: Vec<&str> = ty.params.iter().map(|t| wat_type(*t)).collect();
                let results: Vec<&str> = ty.results.iter().map(|t| wat_type(*t)).collect();
                format!(
                    "(func (param {}) (result {}))",
                    params.join(" "),
                    results.join(" ")
                )
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
        wat.push_str(&format!("  (import \"a\" {} {item})\n", wat_string(name)));
    }
    wat.push(')');
    (!info.exports.is_empty()).then(|| wat::parse_str(&wat).expect("the import list parses"))
}
