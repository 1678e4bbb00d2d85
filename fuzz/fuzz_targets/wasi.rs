//! WASI call sequences with fuzzed arguments: a guest calls preview1
//! functions with arguments the fuzzer picks (small numbers, addresses in
//! its memory, anything), over a memory the fuzzer fills, with a scratch
//! directory preopened. Nothing may panic or crash, nothing outside the
//! scratch directory may change, and the three configurations must get
//! the same errno from every call.
#![no_main]

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use arbitrary::{Arbitrary, Unstructured};
use carat_vm::{Extern, FuncType, GuestAddr, Output, Preopen, Val, ValType, WasiConfig};
use libfuzzer_sys::fuzz_target;

/// The preview1 functions a sequence draws from, with their parameters
/// (`i` i32, `I` i64). Left out: `poll_oneoff` and `proc_exit` (a fuzzed
/// clock would sleep for years; an exit ends the sequence) and reads of
/// fd 0 (the fuzzer's stdin), which the arguments never name.
const CALLS: &[(&str, &str)] = &[
    ("args_get", "ii"),
    ("args_sizes_get", "ii"),
    ("environ_get", "ii"),
    ("environ_sizes_get", "ii"),
    ("clock_res_get", "ii"),
    ("clock_time_get", "iIi"),
    ("fd_advise", "iIIi"),
    ("fd_allocate", "iII"),
    ("fd_close", "i"),
    ("fd_datasync", "i"),
    ("fd_fdstat_get", "ii"),
    ("fd_fdstat_set_flags", "ii"),
    ("fd_filestat_get", "ii"),
    ("fd_filestat_set_size", "iI"),
    ("fd_filestat_set_times", "iIIi"),
    ("fd_pread", "iiiIi"),
    ("fd_prestat_get", "ii"),
    ("fd_prestat_dir_name", "iii"),
    ("fd_pwrite", "iiiIi"),
    ("fd_read", "iiii"),
    ("fd_readdir", "iiiIi"),
    ("fd_renumber", "ii"),
    ("fd_seek", "iIii"),
    ("fd_sync", "i"),
    ("fd_tell", "ii"),
    ("fd_write", "iiii"),
    ("path_create_directory", "iii"),
    ("path_filestat_get", "iiiii"),
    ("path_filestat_set_times", "iiiiIIi"),
    ("path_link", "iiiiiii"),
    ("path_open", "iiiiiIIii"),
    ("path_readlink", "iiiiii"),
    ("path_remove_directory", "iii"),
    ("path_rename", "iiiiii"),
    ("path_symlink", "iiiii"),
    ("path_unlink_file", "iii"),
    ("random_get", "ii"),
    ("sched_yield", ""),
];

/// The calls whose results differ from one run to the next.
const VARYING: &[&str] = &[
    "random_get",
    "clock_time_get",
    "fd_filestat_get",
    "path_filestat_get",
    "fd_readdir",
];

/// Strings placed in the guest's memory at 0x1000 + 64k, for paths.
const STRINGS: &[&str] = &[
    "file.txt",
    "dir",
    "dir/inner.txt",
    "..",
    "../outside",
    "/etc/passwd",
    "link",
    ".",
    "new",
    "dir/../file.txt",
];

#[derive(Debug)]
struct Call {
    func: usize,
    args: Vec<i64>,
}

fn arg(u: &mut Unstructured<'_>) -> arbitrary::Result<i64> {
    Ok(match u.int_in_range(0..=4)? {
        // Descriptors and small counts.
        0 => i64::from(u.int_in_range(1..=8u8)?),
        // A string: its address, then (the next argument) its length.
        1 => 0x1000 + 64 * i64::from(u.int_in_range(0..=(STRINGS.len() as u8 - 1))?),
        // An address in memory.
        2 => i64::from(u.int_in_range(0..=0x1ffffu32)?),
        3 => i64::from(u.int_in_range(0..=64u8)?),
        _ => i64::arbitrary(u)?,
    })
}

fn calls(u: &mut Unstructured<'_>) -> arbitrary::Result<Vec<Call>> {
    let count = u.int_in_range(1..=MAX_CALLS)?;
    (0..count)
        .map(|_| {
            let func = u.int_in_range(0..=CALLS.len() - 1)?;
            let args = CALLS[func]
                .1
                .chars()
                .map(|_| arg(u))
                .collect::<Result<_, _>>()?;
            Ok(Call { func, args })
        })
        .collect()
}

const MAX_CALLS: usize = 24;

/// The guest, one module for every sequence (so it is compiled once per
/// configuration, not per input). `run(n)` makes calls 0 to n-1 through
/// thunks, one per preview1 function. The calls' functions and arguments
/// and their errnos pass through host functions (`fuzz.func`, `fuzz.arg`,
/// `fuzz.errno`), never guest memory, which the calls may overwrite.
fn guest() -> String {
    let mut wat = String::from(
        "(module
(type $thunk (func (param i32) (result i32)))
(import \"fuzz\" \"func\" (func $func (param i32) (result i32)))
(import \"fuzz\" \"arg\" (func $arg (param i32 i32) (result i64)))
(import \"fuzz\" \"errno\" (func $errno (param i32 i32)))
",
    );
    for (name, params) in CALLS {
        let params: Vec<&str> = params
            .chars()
            .map(|c| if c == 'I' { "i64" } else { "i32" })
            .collect();
        wat.push_str(&format!(
            "(import \"wasi_snapshot_preview1\" \"{name}\" (func ${name} (param {}) (result i32)))\n",
            params.join(" ")
        ));
    }
    wat.push_str("(memory (export \"memory\") 2)\n");
    for (i, s) in STRINGS.iter().enumerate() {
        wat.push_str(&format!("(data (i32.const {}) \"{s}\")\n", 0x1000 + 64 * i));
    }
    let mut thunks = Vec::new();
    for (name, params) in CALLS {
        let args: Vec<String> = params
            .chars()
            .enumerate()
            .map(|(k, ty)| {
                let arg = format!("(call $arg (local.get 0) (i32.const {k}))");
                if ty == 'I' {
                    arg
                } else {
                    format!("(i32.wrap_i64 {arg})")
                }
            })
            .collect();
        wat.push_str(&format!(
            "(func $thunk_{name} (type $thunk) (call ${name} {}))\n",
            args.join(" ")
        ));
        thunks.push(format!("$thunk_{name}"));
    }
    wat.push_str(&format!(
        "(table {0} {0} funcref)\n(elem (i32.const 0) {1})\n",
        thunks.len(),
        thunks.join(" ")
    ));
    wat.push_str(
        "(func (export \"run\") (param $n i32) (local $i i32)
  (block $done (loop $next
    (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
    (call $errno (local.get $i)
      (call_indirect (type $thunk) (local.get $i) (call $func (local.get $i))))
    (local.set $i (i32.add (local.get $i) (i32.const 1)))
    (br $next))))\n)\n",
    );
    wat
}

/// Argument `i` of `call` as it is passed: the ones no sequence may use
/// replaced.
fn sanitized(call: &Call, i: usize) -> i64 {
    let value = call.args[i];
    let (name, _) = CALLS[call.func];
    // Never name fd 0 (reads would block on the fuzzer's stdin) or fd 2
    // (writes would flood its stderr).
    if i == 0 && (value == 0 || value == 2) {
        return 1;
    }
    // fd_allocate backs its range with disk blocks: keep it small.
    if name == "fd_allocate" && i > 0 {
        return value.rem_euclid(1 << 20);
    }
    value
}

/// A fresh scratch directory with a few files, and a sentinel beside it.
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let root = std::env::temp_dir().join(format!("carat-fuzz-wasi-{}", std::process::id()));
    let dir = root.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("dir")).unwrap();
    std::fs::write(dir.join("file.txt"), "contents").unwrap();
    std::fs::write(dir.join("dir/inner.txt"), "inner").unwrap();
    let _ = std::os::unix::fs::symlink("file.txt", dir.join("link"));
    let sentinel = root.join("outside");
    std::fs::write(&sentinel, "untouched").unwrap();
    (dir, sentinel)
}

/// The guest compiled for each configuration, once.
fn modules() -> &'static [carat_vm::Module; 3] {
    static MODULES: OnceLock<[carat_vm::Module; 3]> = OnceLock::new();
    MODULES.get_or_init(|| {
        let wat = guest();
        common::vms()
            .each_ref()
            .map(|(_, vm)| vm.compile_any(wat.as_bytes()).expect("the guest compiles"))
    })
}

/// An i32 argument of the guest's own host calls, as an index.
trait Index {
    fn index(&self) -> usize;
}

impl Index for Val {
    fn index(&self) -> usize {
        match self {
            Val::I32(value) => *value as u32 as usize,
            other => panic!("the guest passes i32s, not {other:?}"),
        }
    }
}

/// Each call's errno in one configuration, or `None` if the process
/// could not be set up.
fn run(
    vm: &carat_vm::Vm,
    module: &carat_vm::Module,
    memory: &[u8],
    calls: &Arc<Vec<Call>>,
    dir: &Path,
) -> Option<Vec<i32>> {
    let mut process = vm.new_process().ok()?;
    process
        .add_wasi(WasiConfig {
            args: vec!["fuzz".into()],
            env: vec![("KEY".into(), "value".into())],
            preopens: vec![Preopen {
                host: dir.to_path_buf(),
                guest: ".".into(),
            }],
            stdout: Output::Null,
        })
        .ok()?;
    let funcs = Arc::clone(calls);
    process.define_func(
        "fuzz",
        "func",
        FuncType::new([ValType::I32], [ValType::I32]),
        move |_, args, results| {
            results[0] = Val::I32(funcs[args[0].index()].func as i32);
            Ok(())
        },
    );
    let args = Arc::clone(calls);
    process.define_func(
        "fuzz",
        "arg",
        FuncType::new([ValType::I32, ValType::I32], [ValType::I64]),
        move |_, a, results| {
            let call = &args[a[0].index()];
            results[0] = Val::I64(sanitized(call, a[1].index()));
            Ok(())
        },
    );
    let errnos = Arc::new(Mutex::new(vec![-1; calls.len()]));
    let seen = Arc::clone(&errnos);
    process.define_func(
        "fuzz",
        "errno",
        FuncType::new([ValType::I32, ValType::I32], []),
        move |_, a, _| {
            seen.lock().unwrap()[a[0].index()] = a[1].index() as i32;
            Ok(())
        },
    );
    let instance = process.instantiate(module).ok()?;
    let Some(Extern::Memory(memory_entity)) = process.export(instance, "memory") else {
        return None;
    };
    process
        .store()
        .memory_view(memory_entity)
        .write_bytes(GuestAddr(0), memory)
        .ok()?;
    let _ = process.invoke(instance, "run", &[Val::I32(calls.len() as i32)]);
    let errnos = errnos.lock().unwrap().clone();
    Some(errnos)
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(calls) = calls(&mut u) else {
        return;
    };
    let memory: Vec<u8> = (0..256)
        .map(|_| u8::arbitrary(&mut u).unwrap_or(0))
        .collect();
    let calls = Arc::new(calls);
    // Some calls write what differs between runs into memory (random
    // bytes, the time, inode numbers and timestamps of the fresh scratch
    // files), and later calls may read it as a path or a count: errnos are
    // compared up to the first of them.
    let compared = calls
        .iter()
        .position(|c| VARYING.contains(&CALLS[c.func].0))
        .map_or(calls.len(), |i| i + 1);
    let mut errnos = Vec::new();
    for (i, ((name, vm), module)) in common::vms().iter().zip(modules()).enumerate() {
        let (dir, sentinel) = scratch(&format!("run{i}"));
        let seen = run(vm, module, &memory, &calls, &dir);
        errnos.push((name, seen.map(|e| e[..compared].to_vec())));
        assert_eq!(
            std::fs::read_to_string(&sentinel).ok().as_deref(),
            Some("untouched"),
            "{name}: a file outside the preopen changed"
        );
    }
    let (_, reference) = &errnos[0];
    for (name, seen) in &errnos[1..] {
        assert_eq!(
            reference, seen,
            "carat and {name} disagree on errnos: {calls:?}"
        );
    }
});
