//! What wasm-smith may generate for carat-vm: WebAssembly 2.0 without SIMD
//! (every later proposal off), one memory, everything exported, NaNs
//! canonicalised so engines compare bit for bit. Callers set their own
//! sizes on top. Shared by the differential tester and the `link` fuzz
//! target (each includes this file by path).

/// The proposals carat-vm implements, and nothing else.
pub fn supported() -> wasm_smith::Config {
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
        export_everything: true,
        canonicalize_nans: true,
        ..wasm_smith::Config::default()
    }
}
