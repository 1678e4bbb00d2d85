//! A trap carries the wasm frames it happened in: each function's index
//! and name-section name, and the module offset of the operator each
//! frame was at (the trapping one, then each call). The offsets are
//! checked against the module's own bytes, in both modes, while regions
//! and stacks move, for traps raised by the guest, by a host function
//! and by a start function, and for recursions deeper than a trace holds.

use carat_vm::{FuncType, HostError, Mode, Process, Trap, Val, Vm, VmConfig, VmError};
use wasmparser::{Operator, Parser, Payload};

const PROGRAM: &str = "tests/programs/backtrace.wat";

/// Module offsets of the operators `want` picks in each defined function,
/// by function index.
fn offsets_of(wasm: &[u8], want: impl Fn(&Operator) -> bool) -> Vec<Vec<u32>> {
    let mut found = Vec::new();
    for payload in Parser::new(0).parse_all(wasm) {
        if let Payload::CodeSectionEntry(body) = payload.unwrap() {
            let mut ops = body.get_operators_reader().unwrap();
            let mut here = Vec::new();
            while !ops.eof() {
                let (op, offset) = ops.read_with_offset().unwrap();
                if want(&op) {
                    here.push(offset as u32);
                }
            }
            found.push(here);
        }
    }
    found
}

fn frames(error: &VmError) -> Vec<(u32, Option<String>, u32)> {
    error
        .backtrace()
        .expect("a trap")
        .frames
        .iter()
        .map(|f| (f.func_index, f.func_name.clone(), f.module_offset))
        .collect()
}

fn run(config: VmConfig, export: &str, args: &[Val]) -> VmError {
    let vm = Vm::new(config).unwrap();
    let module = vm.compile_file(PROGRAM.as_ref()).unwrap();
    let mut process = vm.new_process().unwrap();
    let instance = process.instantiate(&module).unwrap();
    process.invoke(instance, export, args).unwrap_err()
}

fn configs() -> Vec<(&'static str, VmConfig)> {
    let mode = |mode| VmConfig {
        mode,
        ..VmConfig::default()
    };
    vec![
        ("carat", mode(Mode::Carat)),
        ("paging", mode(Mode::Paging)),
        (
            "carat, moving every region at every poll",
            VmConfig {
                relocate_every: Some(1),
                poison_moves: true,
                ..mode(Mode::Carat)
            },
        ),
    ]
}

#[test]
fn a_trap_names_its_frames_and_their_operators() {
    let wasm = wat::parse_file(PROGRAM).unwrap();
    let unreachable = offsets_of(&wasm, |op| matches!(op, Operator::Unreachable));
    let calls = offsets_of(&wasm, |op| matches!(op, Operator::Call { .. }));
    let name = |n: &str| Some(n.to_string());
    let expected = vec![
        (0, name("abort"), unreachable[0][0]),
        (1, name("helper"), calls[1][0]),
        (2, name("main"), calls[2][0]),
    ];
    for (what, config) in configs() {
        let error = run(config, "main", &[]);
        assert_eq!(error.trap(), Some(Trap::Unreachable), "{what}");
        assert_eq!(frames(&error), expected, "{what}");
        let backtrace = error.backtrace().unwrap();
        assert_eq!(backtrace.frames[0].module_name.as_deref(), Some("demo"));
        assert_eq!(backtrace.frames_omitted, 0);
    }
}

/// A recursion deeper than a trace holds keeps its innermost frames and
/// counts the rest; past the stack's limit it is `call stack exhausted`
/// with frames all the same.
#[test]
fn deep_recursions_keep_the_innermost_frames_and_count_the_rest() {
    let wasm = wat::parse_file(PROGRAM).unwrap();
    let loads = offsets_of(&wasm, |op| matches!(op, Operator::I32Load { .. }));
    let calls = offsets_of(&wasm, |op| matches!(op, Operator::Call { .. }));
    for (what, config) in configs() {
        let error = run(config.clone(), "deep", &[Val::I32(100)]);
        assert_eq!(error.trap(), Some(Trap::MemoryOutOfBounds), "{what}");
        let backtrace = error.backtrace().unwrap();
        let frames = &backtrace.frames;
        assert_eq!(frames.len() + backtrace.frames_omitted, 101, "{what}");
        assert_eq!(frames[0].module_offset, loads[3][0], "{what}");
        assert!(
            frames[1..]
                .iter()
                .all(|f| f.func_index == 3 && f.module_offset == calls[3][0]),
            "{what}: {backtrace}"
        );
        let text = backtrace.to_string();
        assert!(text.contains("demo!deep"), "{text}");
        assert!(text.lines().count() < 8, "repeats are one line: {text}");

        let error = run(config, "deep", &[Val::I32(1_000_000)]);
        assert_eq!(error.trap(), Some(Trap::StackOverflow), "{what}");
        let backtrace = error.backtrace().unwrap();
        assert!(backtrace.frames_omitted > 0, "{what}");
        assert!(backtrace.frames.iter().all(|f| f.func_index == 3), "{what}");
    }
}

/// A host function's trap shows the wasm frames that called it.
#[test]
fn a_host_functions_trap_shows_its_wasm_callers() {
    let wat = r#"(module
        (import "host" "fail" (func $fail))
        (func $outer (export "outer") (call $inner))
        (func $inner (call $fail)))"#;
    let wasm = wat::parse_str(wat).unwrap();
    let calls = offsets_of(&wasm, |op| matches!(op, Operator::Call { .. }));
    for (what, config) in configs() {
        let vm = Vm::new(config).unwrap();
        let module = vm.compile(&wasm).unwrap();
        let mut process: Process = vm.new_process().unwrap();
        process.define_func("host", "fail", FuncType::new([], []), |_, _, _| {
            Err(HostError::Trap(Trap::Unreachable))
        });
        let instance = process.instantiate(&module).unwrap();
        let error = process.invoke(instance, "outer", &[]).unwrap_err();
        assert_eq!(error.trap(), Some(Trap::Unreachable), "{what}");
        let name = |n: &str| Some(n.to_string());
        assert_eq!(
            frames(&error),
            vec![
                (2, name("inner"), calls[1][0]),
                (1, name("outer"), calls[0][0])
            ],
            "{what}"
        );
    }
}

/// A start function's trap fails the instantiation, with its frames.
#[test]
fn a_start_functions_trap_has_its_frames() {
    let wat = r#"(module
        (func $boom (i32.div_u (i32.const 1) (i32.const 0)) drop)
        (func $start (call $boom))
        (start $start))"#;
    let wasm = wat::parse_str(wat).unwrap();
    let divs = offsets_of(&wasm, |op| matches!(op, Operator::I32DivU));
    let calls = offsets_of(&wasm, |op| matches!(op, Operator::Call { .. }));
    for (what, config) in configs() {
        let vm = Vm::new(config).unwrap();
        let module = vm.compile(&wasm).unwrap();
        let mut process = vm.new_process().unwrap();
        let error = process.instantiate(&module).unwrap_err();
        assert_eq!(error.trap(), Some(Trap::IntegerDivideByZero), "{what}");
        let name = |n: &str| Some(n.to_string());
        assert_eq!(
            frames(&error),
            vec![
                (0, name("boom"), divs[0][0]),
                (1, name("start"), calls[1][0])
            ],
            "{what}"
        );
    }
}

/// Functions without names print by index; a module whose name section
/// is garbage still runs, and its traps still have frames.
#[test]
fn unnamed_functions_and_broken_name_sections_are_no_trouble() {
    let mut wasm = wat::parse_str(r#"(module (func (export "f") unreachable))"#).unwrap();
    // A "name" custom section whose contents are not a name section.
    wasm.extend_from_slice(&[0, 8, 4, b'n', b'a', b'm', b'e', 0xff, 0xff, 0xff]);
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile(&wasm).unwrap();
    let mut process = vm.new_process().unwrap();
    let instance = process.instantiate(&module).unwrap();
    let error = process.invoke(instance, "f", &[]).unwrap_err();
    assert_eq!(frames(&error).len(), 1);
    assert_eq!(frames(&error)[0].1, None);
    let text = error.backtrace().unwrap().to_string();
    assert!(text.contains("wasm-function[0]"), "{text}");
}
