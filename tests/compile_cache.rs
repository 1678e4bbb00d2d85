//! Saved compiled modules (`.cwasm`, `compile -o`) and the compile cache:
//! a saved module runs as its source does, in another VM too (type ids
//! come from the loading VM, so `call_indirect` still checks types); one
//! from another configuration, truncated, flipped or forged is refused
//! with an error naming why, never run and never a panic; the cache
//! loads what it keeps and replaces an entry it cannot load.

use std::process::Command;

use carat_vm::{Mode, Trap, Val, Vm, VmConfig};

/// Two tables' worth of indirect calls over three types, so the type ids
/// the loading VM gives matter.
const MODULE: &str = r#"
(module
  (type $unary (func (param i32) (result i32)))
  (type $binary (func (param i32 i32) (result i32)))
  (type $none (func (result i32)))
  (table 3 funcref)
  (elem (i32.const 0) $double $add $seven)
  (func $double (type $unary) (i32.mul (local.get 0) (i32.const 2)))
  (func $add (type $binary) (i32.add (local.get 0) (local.get 1)))
  (func $seven (type $none) (i32.const 7))
  (func (export "unary") (param i32 i32) (result i32)
    (call_indirect (type $unary) (local.get 1) (local.get 0)))
  (func (export "run") (result i32)
    (i32.add
      (call_indirect (type $unary) (i32.const 20) (i32.const 0))
      (i32.add
        (call_indirect (type $binary) (i32.const 1) (i32.const 2) (i32.const 1))
        (call_indirect (type $none) (i32.const 2))))))
"#;

fn vm(mode: Mode) -> Vm {
    Vm::new(VmConfig {
        mode,
        ..VmConfig::default()
    })
    .unwrap()
}

#[test]
fn a_saved_module_runs_in_another_vm_with_its_own_type_ids() {
    for mode in Mode::ALL {
        let first = vm(mode);
        let saved = first.save(&first.compile_any(MODULE.as_bytes()).unwrap());
        assert!(carat_vm::artifact::is_artifact(&saved));
        // Another VM that met other types first gives these other ids.
        let second = vm(mode);
        second
            .compile_any(b"(module (func (param f64 f64 f64)) (func (result i64) (i64.const 0)))")
            .unwrap();
        let module = second.compile(&saved).unwrap();
        let mut process = second.new_process().unwrap();
        let instance = process.instantiate(&module).unwrap();
        assert_eq!(
            process.invoke(instance, "run", &[]).unwrap(),
            vec![Val::I32(40 + 3 + 7)],
            "{mode}"
        );
        // A type mismatch still traps: slot 1 holds the binary function.
        let error = process
            .invoke(instance, "unary", &[Val::I32(1), Val::I32(5)])
            .unwrap_err();
        assert_eq!(error.trap(), Some(Trap::IndirectCallTypeMismatch), "{mode}");
    }
}

#[test]
fn saved_modules_from_elsewhere_or_damaged_are_refused() {
    let carat = vm(Mode::Carat);
    let saved = carat.save(&carat.compile_any(MODULE.as_bytes()).unwrap());
    let refused = |bytes: &[u8], vm: &Vm| vm.compile(bytes).err().expect("refused").to_string();
    // Another configuration: the paging baseline's code is not CARAT's.
    let text = refused(&saved, &vm(Mode::Paging));
    assert!(
        text.contains("it has `strategy Guarded`, this VM needs `strategy Reserved"),
        "{text}"
    );
    // Fuel counting is compiled in: a VM that counts fuel needs code that does.
    let fuel = Vm::new(VmConfig {
        fuel: Some(100),
        ..VmConfig::default()
    })
    .unwrap();
    assert!(refused(&saved, &fuel).contains("`fuel false`, this VM needs `fuel true`"));
    // Truncated anywhere.
    for len in [8, 12, 20, saved.len() / 2, saved.len() - 1] {
        let text = refused(&saved[..len], &carat);
        assert!(text.contains("corrupt"), "{len}: {text}");
    }
    // A flipped bit in the code.
    let mut flipped = saved.clone();
    let last = flipped.len() - 50;
    flipped[last] ^= 0x10;
    assert!(refused(&flipped, &carat).contains("checksum does not match"));
    // A forged payload with a good checksum but nonsense inside: the
    // header kept, the payload replaced, the checksum recomputed.
    let header = saved.len() - payload_len(&saved);
    let mut forged = saved[..header - 32].to_vec();
    let payload = vec![0xffu8; 64];
    forged.extend_from_slice(&sha256(&payload));
    forged.extend_from_slice(&payload);
    assert!(refused(&forged, &carat).contains("corrupt"));
    // Another format version.
    let mut future = saved.clone();
    future[8] = 9;
    assert!(refused(&future, &carat).contains("format 9"));
}

/// The payload's length: what follows the magic, format, fingerprint and
/// checksum.
fn payload_len(saved: &[u8]) -> usize {
    let fingerprint = u32::from_le_bytes(saved[12..16].try_into().unwrap()) as usize;
    saved.len() - 16 - fingerprint - 32
}

fn sha256(bytes: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).to_vec()
}

#[test]
fn the_cache_keeps_loads_and_replaces_entries() {
    let dir = std::env::temp_dir().join(format!("carat-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let cached = || {
        Vm::new(VmConfig {
            cache_dir: Some(dir.clone()),
            ..VmConfig::default()
        })
        .unwrap()
    };
    let run = |vm: &Vm| {
        let module = vm.compile_any(MODULE.as_bytes()).unwrap();
        let mut process = vm.new_process().unwrap();
        let instance = process.instantiate(&module).unwrap();
        process.invoke(instance, "run", &[]).unwrap()
    };
    let cold = cached();
    assert_eq!(run(&cold), vec![Val::I32(50)]);
    assert_eq!(cold.stats().modules_from_cache, 0);
    let entries: Vec<_> = walk(&dir);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let warm = cached();
    assert_eq!(run(&warm), vec![Val::I32(50)]);
    assert_eq!(warm.stats().modules_from_cache, 1);
    assert_eq!(
        warm.stats().functions_compiled,
        cold.stats().functions_compiled
    );
    // A damaged entry is compiled again and replaced.
    std::fs::write(&entries[0], b"\0cwasm\x01\0 damaged").unwrap();
    let repaired = cached();
    assert_eq!(run(&repaired), vec![Val::I32(50)]);
    assert_eq!(repaired.stats().modules_from_cache, 0);
    assert_eq!(cached().stats().modules_from_cache, 0);
    let again = cached();
    run(&again);
    assert_eq!(
        again.stats().modules_from_cache,
        1,
        "the entry was replaced"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// `compile -o` writes a `.cwasm` that `run` takes in place of the
/// module; `--no-cache` neither reads nor writes the cache.
#[test]
fn the_command_line_saves_runs_and_caches() {
    let dir = std::env::temp_dir().join(format!("carat-cli-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let carat = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_carat-vm"))
            .args(args)
            .env("CARAT_CACHE_DIR", dir.join("cache"))
            .output()
            .unwrap()
    };
    let cwasm = dir.join("fib.cwasm");
    let cwasm = cwasm.to_str().unwrap();
    let output = carat(&["compile", "examples/fib.wat", "-o", cwasm]);
    assert!(output.status.success(), "{output:?}");
    let output = carat(&["run", "--invoke", "fib", cwasm, "20"]);
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "6765\n",
        "{output:?}"
    );
    let output = carat(&["run", "--mode", "paging", "--invoke", "fib", cwasm, "20"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("compile the module again"));

    let stats = |args: &[&str]| {
        let output = carat(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let at = stderr.find("{\"mode\"").expect("stats");
        serde_json::from_str::<serde_json::Value>(stderr[at..].lines().next().unwrap()).unwrap()
    };
    let run = [
        "run",
        "--stats=json",
        "--invoke",
        "fib",
        "examples/fib.wat",
        "10",
    ];
    assert_eq!(stats(&run)["modules_from_cache"], 0);
    assert_eq!(stats(&run)["modules_from_cache"], 1);
    let mut uncached = run.to_vec();
    uncached.insert(1, "--no-cache");
    assert_eq!(stats(&uncached)["modules_from_cache"], 0);
    std::fs::remove_dir_all(&dir).unwrap();
}
