//! The command line's public contract: output, errors and exit status.
//!
//! The cases are data, in `tests/cli_cases.toml`: the arguments of one run,
//! its expected exit status, the text its stdout must end with, and text
//! its stderr must contain, and the environment it runs with.

use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    args: Vec<String>,
    status: i32,
    stdout: String,
    stderr: String,
    #[serde(default)]
    env: std::collections::BTreeMap<String, String>,
}

#[test]
fn command_line_contract() {
    let text = std::fs::read_to_string("tests/cli_cases.toml").expect("the cases");
    let cases: Cases = toml::from_str(&text).expect("the cases parse");
    assert!(cases.case.len() >= 50, "only {} cases", cases.case.len());
    let mut failures = Vec::new();
    for case in &cases.case {
        let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
            .args(&case.args)
            .envs(&case.env)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let status = output.status.code().unwrap_or(-1);
        let stdout_ok = if case.stdout.is_empty() {
            stdout.is_empty()
        } else {
            stdout.ends_with(&case.stdout)
        };
        if status != case.status
            || !stdout_ok
            || !stderr.contains(&case.stderr)
            || stderr.contains("panicked")
        {
            failures.push(format!(
                "carat-vm {}\n  status {status} (want {}), stdout {stdout:?} (want {:?}), stderr {stderr:?} (want {:?})",
                case.args.join(" "),
                case.status,
                case.stdout,
                case.stderr
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `compile --emit-clif/--emit-asm` writes, for every function, its CLIF
/// before and after optimisation and its machine code, each headed or
/// named so a reader finds the function and its guard counts.
#[test]
fn compile_writes_each_functions_listings() {
    let dir = std::env::temp_dir().join(format!("carat-cli-listings-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["compile", "--emit-clif"])
        .arg(dir.join("clif"))
        .arg("--emit-asm")
        .arg(dir.join("asm"))
        .arg("tests/programs/guard_elision.wat")
        .output()
        .expect("carat-vm runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("5 functions") && stdout.contains("7 guards emitted"),
        "{stdout}"
    );
    let read = |path: std::path::PathBuf| {
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    };
    // guard_elision.wat's function 4 is exported as `load8`.
    let clif = read(dir.join("clif/0004-load8.clif"));
    assert!(
        clif.starts_with("; function 4: ") && clif.contains("select_spectre_guard"),
        "{clif}"
    );
    let optimized = read(dir.join("clif/0004-load8.opt.clif"));
    assert!(optimized.contains("function u0:4"), "{optimized}");
    let asm = read(dir.join("asm/0004-load8.s"));
    assert!(
        asm.starts_with("; function 4: ") && asm.lines().count() > 5,
        "{asm}"
    );
    let files = std::fs::read_dir(dir.join("asm")).unwrap().count();
    assert_eq!(files, 5, "one listing per function");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--stats-file` writes the counters to a file, apart from the guest's
/// stderr, as `--stats` says (JSON here), for `run` and for `launch`.
#[test]
fn stats_file_keeps_the_counters_apart_from_the_guests_stderr() {
    let dir = std::env::temp_dir().join(format!("carat-cli-stats-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let runs: [(&str, Vec<&str>); 2] = [
        (
            "run",
            vec!["run", "--invoke", "add", "tests/programs/cli.wat", "1", "2"],
        ),
        ("launch", vec!["launch", "tests/launch/sleepers.toml"]),
    ];
    for (what, args) in runs {
        let file = dir.join(format!("{what}.json"));
        let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
            .args(&args[..1])
            .arg("--stats=json")
            .arg("--stats-file")
            .arg(&file)
            .args(&args[1..])
            .output()
            .expect("carat-vm runs");
        assert!(output.status.success(), "{what}: {output:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("\"mode\""),
            "{what}: stats on stderr: {stderr}"
        );
        let stats: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(stats["mode"], "carat", "{what}");
        assert!(stats["processes_spawned"].as_u64().unwrap() >= 1, "{what}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--profile=perfmap` writes `/tmp/perf-PID.map`: a line per function,
/// `START SIZE NAME` in hex, named as backtraces name them, inside one
/// image, as `perf report` reads JIT code's names.
#[test]
fn profile_perfmap_names_every_function_for_perf() {
    let child = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["run", "--profile=perfmap", "--invoke", "main"])
        .arg("tests/programs/backtrace.wat")
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("carat-vm runs");
    let map = std::path::PathBuf::from(format!("/tmp/perf-{}.map", child.id()));
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(134), "it traps");
    let text = std::fs::read_to_string(&map).expect("the perf map");
    std::fs::remove_file(&map).unwrap();
    let entries: Vec<(u64, u64, &str)> = text
        .lines()
        .map(|line| {
            let mut parts = line.splitn(3, ' ');
            let mut hex = || u64::from_str_radix(parts.next().unwrap(), 16).unwrap();
            (hex(), hex(), parts.next().unwrap())
        })
        .collect();
    let names: Vec<&str> = entries.iter().map(|e| e.2).collect();
    assert_eq!(
        names,
        [
            "demo!abort",
            "demo!helper",
            "demo!main",
            "demo!deep",
            "demo!wasm-function[4]",
            "wasm-trampolines"
        ]
    );
    for pair in entries.windows(2) {
        assert!(
            pair[0].1 > 0 && pair[0].0 + pair[0].1 <= pair[1].0,
            "{text}"
        );
    }
}

/// Progress bars are for terminals: piped, `launch` and `wast` print
/// only their results.
#[test]
fn no_progress_bar_when_piped() {
    for args in [
        &["launch", "tests/launch/sleepers.toml"][..],
        &["wast", "tests/programs/cli.wast"][..],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
            .args(args)
            .output()
            .expect("carat-vm runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !stderr.contains("processes ended") && !stderr.contains("scripts"),
            "{args:?}: {stderr}"
        );
    }
}
