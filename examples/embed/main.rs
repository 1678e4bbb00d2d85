//! Embedding carat-vm: a host that runs plugins, each a process with its
//! own data, through host functions defined once (`Linker`), typed calls
//! (`TypedFunc`), a trap's wasm backtrace, and the VM's figures.
//!
//! `cargo run --example embed`. `cargo test` runs it too, and fails if
//! what it prints is wrong.

use anyhow::{Context, ensure};
use carat_vm::{Caller, GuestAddr, HostError, Linker, Process, Vm, VmConfig};

/// What each plugin process holds: its name, what it logged, and the
/// letter weights its host gives it.
struct Plugin {
    name: String,
    log: Vec<String>,
    vowel_weight: i64,
}

fn main() -> anyhow::Result<()> {
    let vm = Vm::new(VmConfig::default())?;
    let wat = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/embed/plugin.wat");
    let module = vm.compile_file(wat.as_ref())?;

    // Host functions, made once for every plugin.
    let mut linker = Linker::<Plugin>::new(&vm);
    linker.func_wrap(
        "host",
        "log",
        |mut caller: Caller<'_, Plugin>, at: i32, len: i32| {
            let memory = caller
                .memory()
                .ok_or(HostError::Failed("no memory".into()))?;
            let bytes = memory
                .slice(GuestAddr(at as u32), len as u64)
                .map_err(|_| HostError::Failed("log out of bounds".into()))?;
            let line = String::from_utf8_lossy(bytes).into_owned();
            caller.data_mut().log.push(line);
            Ok(())
        },
    )?;
    linker.func_wrap(
        "host",
        "weight",
        |caller: Caller<'_, Plugin>, letter: i32| {
            let vowel = b"aeiou".contains(&(letter as u8));
            if vowel { caller.data().vowel_weight } else { 1 }
        },
    )?;

    let word = b"relocation";
    let mut results = Vec::new();
    for (name, vowel_weight) in [("plain", 1), ("vowels", 10)] {
        let plugin = Plugin {
            name: name.to_string(),
            log: Vec::new(),
            vowel_weight,
        };
        let mut process = Process::new(&vm, plugin)?;
        let instance = linker.instantiate(&mut process, &module)?;
        // Lend the word: write it into the plugin's memory.
        let at = 1024;
        process
            .memory(instance, "memory")?
            .write_bytes(GuestAddr(at), word)?;
        let score = process.typed_func::<(i32, i32), i64>(instance, "score")?;
        let calls = process.typed_func::<(), i32>(instance, "calls")?;
        let first = score.call(&mut process, (at as i32, word.len() as i32))?;
        let again = score.call(&mut process, (at as i32, word.len() as i32))?;
        ensure!(first == again, "a plugin scores the same word the same way");
        let calls = calls.call(&mut process, ())?;
        let data = process.data();
        println!(
            "{:>7}: score {first}, {calls} calls, log {:?}",
            data.name, data.log
        );
        ensure!(process.data().log == ["scoring", "scoring"]);
        results.push(first);

        // A trap names the functions it went through.
        let error = process.invoke(instance, "crash", &[]).unwrap_err();
        let backtrace = error.backtrace().context("a trap has a backtrace")?;
        print!("{name}: {error}\n{backtrace}");
        let names: Vec<_> = backtrace
            .frames
            .iter()
            .map(|f| f.func_name.as_deref())
            .collect();
        ensure!(names == [Some("check"), Some("crash")], "frames {names:?}");
    }
    // "relocation": 5 vowels and 5 consonants.
    ensure!(results == [10, 55], "scores {results:?}");

    let stats = vm.stats();
    println!(
        "{} processes spawned, {} bytes of arena at the peak",
        stats.processes_spawned, stats.arena_peak_bytes
    );
    Ok(())
}
