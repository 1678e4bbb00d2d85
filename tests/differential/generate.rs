//! The programs the differential tester runs: wasm-smith modules
//! configured for what carat-vm implements (WebAssembly 2.0 without SIMD),
//! with NaNs canonicalised so that memory contents compare exactly. A
//! test is one module, or two linked ones: the second imports the first's
//! exports (functions, its memory, tables and globals, mutable ones
//! included) and calls into and shares state with it.

use arbitrary::Unstructured;

use crate::imports::import_everything;
use crate::smith;
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
        max_imports: 0,
        max_tables: 2,
        max_memory32_bytes: MAX_MEMORY,
        max_table_elements: u64::from(MAX_TABLE_ELEMENTS),
        min_types: 1,
        min_funcs: 2,
        max_funcs: 16,
        max_instructions: 250,
        ..smith::supported()
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
    let Some(imports) = import_everything(&[("a".into(), &provider)]) else {
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
