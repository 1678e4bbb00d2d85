//! WASI call sequences with fuzzed arguments: a guest calls preview1
//! functions with arguments the fuzzer picks (small numbers, addresses in
//! its memory, anything), over a memory the fuzzer fills, with a scratch
//! directory preopened. Nothing may panic or crash, nothing outside the
//! scratch directory may change, and the three configurations must get
//! the same errno from every call.
#![no_main]

mod common;

use std::path::{Path, PathBuf};

use arbitrary::{Arbitrary, Unstructured};
use carat_vm::{Extern, Output, Preopen, WasiConfig};
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
    let count = u.int_in_range(1..=24)?;
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

/// The guest: stores each call's errno at 0x10000 + 4n.
fn guest(calls: &[Call], memory: &[u8]) -> String {
    let mut wat = String::from("(module\n");
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
    let hex: String = memory.iter().map(|b| format!("\\{b:02x}")).collect();
    wat.push_str(&format!("(data (i32.const 0) \"{hex}\")\n"));
    for (i, s) in STRINGS.iter().enumerate() {
        wat.push_str(&format!("(data (i32.const {}) \"{s}\")\n", 0x1000 + 64 * i));
    }
    wat.push_str("(func (export \"run\")\n");
    for (n, call) in calls.iter().enumerate() {
        let (name, params) = CALLS[call.func];
        let args: Vec<String> = params
            .chars()
            .zip(&call.args)
            .enumerate()
            .map(|(i, (ty, value))| {
                // Never name fd 0 (reads would block on the fuzzer's
                // stdin) or fd 2 (writes would flood its stderr).
                let value = if i == 0 && (*value == 0 || *value == 2) {
                    1
                } else {
                    *value
                };
                // fd_allocate backs its range with disk blocks: keep it
                // small.
                let value = if name == "fd_allocate" && i > 0 {
                    value.rem_euclid(1 << 20)
                } else {
                    value
                };
                if ty == 'I' {
                    format!("(i64.const {value})")
                } else {
                    format!("(i32.const {})", value as i32)
                }
            })
            .collect();
        wat.push_str(&format!(
            "(i32.store (i32.const {}) (call ${name} {}))\n",
            0x10000 + 4 * n,
            args.join(" ")
        ));
    }
    wat.push_str("))\n");
    wat
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

fn run(vm: &carat_vm::Vm, wat: &str, dir: &Path) -> Option<Vec<u8>> {
    let module = vm.compile_any(wat.as_bytes()).ok()?;
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
    let instance = process.instantiate(&module).ok()?;
    let _ = process.invoke(instance, "run", &[]);
    let Some(Extern::Memory(memory)) = process.export(instance, "memory") else {
        return None;
    };
    Some(process.store().memory_view(memory).bytes()[0x10000..0x10000 + 4 * 24].to_vec())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let Ok(calls) = calls(&mut u) else {
        return;
    };
    let memory: Vec<u8> = (0..256)
        .map(|_| u8::arbitrary(&mut u).unwrap_or(0))
        .collect();
    let wat = guest(&calls, &memory);
    let mut errnos = Vec::new();
    for (i, (name, vm)) in common::vms().iter().enumerate() {
        let (dir, sentinel) = scratch(&format!("run{i}"));
        errnos.push((name, run(vm, &wat, &dir)));
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
