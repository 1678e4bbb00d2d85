//! Golden CLIF tests: each `tests/clif/NAME.wat` is compiled, and the CLIF
//! carat-jit hands Cranelift for each of its functions (headed by the
//! function's guard counts) must equal `tests/clif/NAME.clif`. This is
//! where the guards the compiler emits, moves and removes are pinned down:
//! an optimisation shows here as a guard gone or moved, and a regression
//! as a diff. `CARAT_BLESS=1 cargo test -p carat-jit --test clif` rewrites
//! the expected files; review the diff before committing it.
//!
//! A `.wat` file's leading `;;! mode = carat` or `;;! mode = paging` line
//! picks the memory strategy (CARAT's inline guards by default).

use std::path::{Path, PathBuf};

use carat_jit::{CompileConfig, Compiler, MemoryStrategy, SignatureRegistry};

/// Paging mode's guard region in these tests, as large as the paging
/// backend's.
const PAGING_GUARD_BYTES: u64 = 2 << 30;

fn strategy(wat: &str, path: &Path) -> MemoryStrategy {
    // Only the first line may be a directive.
    if let Some(line) = wat.lines().next().filter(|l| l.starts_with(";;!")) {
        match line.trim_start_matches(";;!").trim() {
            "mode = carat" => return MemoryStrategy::Guarded,
            "mode = paging" => {
                return MemoryStrategy::Reserved {
                    guard_bytes: PAGING_GUARD_BYTES,
                };
            }
            other => panic!("{}: unknown directive `{other}`", path.display()),
        }
    }
    MemoryStrategy::Guarded
}

/// Each function's summary line and translated CLIF, as one text.
fn listing(path: &Path) -> String {
    let wat = std::fs::read_to_string(path).unwrap();
    let compiler = Compiler::new(CompileConfig {
        strategy: strategy(&wat, path),
        verify: true,
        threads: 1,
        ..CompileConfig::default()
    })
    .unwrap();
    let wasm = wat::parse_str(&wat).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let functions = compiler
        .listing(&wasm, &SignatureRegistry::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    for function in functions {
        text.push_str(&function.summary());
        text.push('\n');
        text.push_str(&function.clif);
        text.push('\n');
    }
    text
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clif");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "wat"))
        .collect();
    cases.sort();
    cases
}

#[test]
fn translated_clif_matches_the_golden_files() {
    let bless = std::env::var_os("CARAT_BLESS").is_some();
    let mut failures = Vec::new();
    let cases = cases();
    assert!(!cases.is_empty(), "no golden CLIF cases found");
    for wat in cases {
        let actual = listing(&wat);
        let expected_path = wat.with_extension("clif");
        if bless {
            std::fs::write(&expected_path, &actual).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != actual {
            failures.push(format!(
                "{} differs from {} (CARAT_BLESS=1 rewrites it):\n{}",
                wat.display(),
                expected_path.display(),
                first_difference(&expected, &actual)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The first differing line of two texts, with a few lines of context.
fn first_difference(expected: &str, actual: &str) -> String {
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let at = (0..e.len().max(a.len()))
        .find(|&i| e.get(i) != a.get(i))
        .unwrap_or(0);
    let from = at.saturating_sub(3);
    let show = |lines: &[&str]| lines[from.min(lines.len())..(at + 4).min(lines.len())].join("\n");
    format!(
        "at line {}:\n--- expected\n{}\n+++ actual\n{}",
        at + 1,
        show(&e),
        show(&a)
    )
}

/// Versioning must keep happening, not only stay correct: the loops of
/// `loop_versioning.wat` that the check can prove keep their guards out
/// (a change that quietly stops versioning still passes every
/// correctness test, so it is caught here as well as in the golden file).
#[test]
fn provable_loops_are_versioned() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clif/loop_versioning.wat");
    let wat = std::fs::read_to_string(&path).unwrap();
    let compiler = Compiler::new(CompileConfig {
        verify: true,
        threads: 1,
        ..CompileConfig::default()
    })
    .unwrap();
    let functions = compiler
        .listing(
            &wat::parse_str(&wat).unwrap(),
            &SignatureRegistry::default(),
        )
        .unwrap();
    let versioned: Vec<(u64, u64)> = functions
        .iter()
        .map(|f| (f.stats.loops_versioned, f.stats.guards_removed_versioned))
        .collect();
    // axpy (six accesses), invariant, row_sum, the callee (no loop), calls.
    assert_eq!(versioned, [(1, 6), (1, 1), (1, 1), (0, 0), (1, 1)]);
}

/// The image records its largest frame, exactly enough for a stack check
/// at entry to rely on: a call with many stack arguments and a function
/// with many live values both make frames larger than their outgoing
/// arguments alone; a module of leaves has small frames, the largest being
/// the poll's trampoline, which saves every register.
#[test]
fn the_largest_frame_is_recorded() {
    let compile = |wat: &str| {
        Compiler::new(CompileConfig {
            verify: true,
            threads: 1,
            ..CompileConfig::default()
        })
        .unwrap()
        .compile(&wat::parse_str(wat).unwrap(), &SignatureRegistry::default())
        .unwrap()
        .image
        .max_frame_size
    };
    let leaf = compile("(module (func (result i32) (i32.const 1)))");
    assert!(
        (256..=512).contains(&leaf),
        "a leaf module's frames: {leaf}"
    );
    let params = "i64 ".repeat(64);
    let args = "(local.get 0) ".repeat(64);
    let many_args = compile(&format!(
        "(module (func $callee (param {params}) (result i64) (local.get 63))
                 (func (param i64) (result i64) (call $callee {args})))"
    ));
    // 66 arguments (two vmctx), at most 6 in registers: 60 stack slots.
    assert!(many_args >= 60 * 8 + 16, "outgoing arguments: {many_args}");
    assert!(many_args < 4096, "{many_args}");
}
