//! The `spectest` host module that the spec's `.wast` scripts import.
//!
//! Its functions are host functions that print their arguments; its
//! globals, table and memory are defined by a small wasm module that
//! imports those functions and re-exports everything, so that they live in
//! the arena like any guest's.

use crate::{FuncType, InstanceId, Process, Val, ValType, VmError};

const SPECTEST_WAT: &str = r#"
(module
  (import "spectest-host" "print" (func $print))
  (import "spectest-host" "print_i32" (func $print_i32 (param i32)))
  (import "spectest-host" "print_i64" (func $print_i64 (param i64)))
  (import "spectest-host" "print_f32" (func $print_f32 (param f32)))
  (import "spectest-host" "print_f64" (func $print_f64 (param f64)))
  (import "spectest-host" "print_i32_f32" (func $print_i32_f32 (param i32 f32)))
  (import "spectest-host" "print_f64_f64" (func $print_f64_f64 (param f64 f64)))
  (export "print" (func $print))
  (export "print_i32" (func $print_i32))
  (export "print_i64" (func $print_i64))
  (export "print_f32" (func $print_f32))
  (export "print_f64" (func $print_f64))
  (export "print_i32_f32" (func $print_i32_f32))
  (export "print_f64_f64" (func $print_f64_f64))
  (global (export "global_i32") i32 (i32.const 666))
  (global (export "global_i64") i64 (i64.const 666))
  (global (export "global_f32") f32 (f32.const 666.6))
  (global (export "global_f64") f64 (f64.const 666.6))
  (table (export "table") 10 20 funcref)
  (memory (export "memory") 1 2)
)
"#;

/// Instantiates `spectest` in `process` and registers it under that name.
pub fn register(process: &mut Process) -> Result<InstanceId, VmError> {
    use ValType::*;
    let prints: [(&str, &[ValType]); 7] = [
        ("print", &[]),
        ("print_i32", &[I32]),
        ("print_i64", &[I64]),
        ("print_f32", &[F32]),
        ("print_f64", &[F64]),
        ("print_i32_f32", &[I32, F32]),
        ("print_f64_f64", &[F64, F64]),
    ];
    for (name, params) in prints {
        process.define_func(
            "spectest-host",
            name,
            FuncType::new(params, []),
            |_, args, _| {
                let text: Vec<String> = args
                    .iter()
                    .map(|a: &Val| format!("{a}: {}", a.ty()))
                    .collect();
                println!("{}", text.join(" "));
                Ok(())
            },
        );
    }
    let module = process.vm().compile_any(SPECTEST_WAT.as_bytes())?;
    let instance = process.instantiate(&module)?;
    process.register("spectest", instance);
    Ok(instance)
}
