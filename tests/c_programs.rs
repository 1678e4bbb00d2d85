//! The C guest corpus (`examples/c/`) behaves like the same C compiled
//! natively: identical stdout and exit status, in both modes, and in CARAT
//! mode while its regions keep moving.
//!
//! `examples/c/programs.toml` lists each run: the program, its arguments
//! (`{dir}` is a fresh directory: a host path natively, the preopened
//! `/data` under carat-vm), environment and stdin. When `cc` is on the
//! machine the native oracle is built and run here; otherwise the outputs
//! that `examples/c/build.sh` recorded under `expected/` stand in. Runs
//! marked `native = false` (the sandbox-escape attempts, which natively
//! succeed) are compared with their own expected output instead.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;

#[derive(Deserialize)]
struct Manifest {
    program: Vec<Program>,
}

#[derive(Deserialize)]
struct Program {
    id: String,
    name: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    stdin: Option<String>,
    #[serde(default = "yes")]
    native: bool,
    /// The relocation stress period for this program (default 100).
    relocate_every: Option<u64>,
}

fn yes() -> bool {
    true
}

const CORPUS: &str = "examples/c";

struct Outcome {
    stdout: Vec<u8>,
    status: i32,
}

fn fresh_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("carat-c-{}-{label}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn run(mut command: Command, stdin: Option<&str>) -> Outcome {
    command.stdin(match stdin {
        Some(file) => {
            Stdio::from(std::fs::File::open(Path::new(CORPUS).join(file)).expect("stdin file"))
        }
        None => Stdio::null(),
    });
    let output = command.stderr(Stdio::inherit()).output().expect("runs");
    Outcome {
        stdout: output.stdout,
        status: output.status.code().unwrap_or(-1),
    }
}

/// How the corpus runs under carat-vm: the two modes, and CARAT mode
/// with every region of the process moving at every Nth poll (100
/// unless the program says otherwise), every range a move leaves
/// poisoned at once so that a pointer left unpatched shows.
fn configurations(p: &Program) -> [(&'static str, Vec<String>); 3] {
    let every = p.relocate_every.unwrap_or(100).to_string();
    [
        ("carat", vec![]),
        ("paging", vec![]),
        (
            "carat",
            vec!["--relocate-every".into(), every, "--poison-moves".into()],
        ),
    ]
}

fn run_guest(p: &Program, mode: &str, extra: &[String]) -> Outcome {
    let dir = fresh_dir(&format!("{}-{mode}-{}", p.id, extra.len()));
    let mut command = Command::new(env!("CARGO_BIN_EXE_carat-vm"));
    command
        .args(["run", "--mode", mode])
        .args(extra)
        .arg("--dir")
        .arg(format!("{}::/data", dir.display()));
    for (k, v) in &p.env {
        command.arg("--env").arg(format!("{k}={v}"));
    }
    command
        .arg(Path::new(CORPUS).join(format!("{}.wasm", p.name)))
        .arg("--");
    command.args(p.args.iter().map(|a| a.replace("{dir}", "/data")));
    let outcome = run(command, p.stdin.as_deref());
    let _ = std::fs::remove_dir_all(dir);
    outcome
}

fn have_cc() -> bool {
    Command::new("cc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_native(p: &Program, build: &Path) -> Outcome {
    let exe = build.join(&p.name);
    if !exe.exists() {
        let status = Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(Path::new(CORPUS).join(format!("{}.c", p.name)))
            .arg("-lm")
            .status()
            .expect("cc runs");
        assert!(status.success(), "cc failed on {}.c", p.name);
    }
    let dir = fresh_dir(&format!("{}-native", p.id));
    let mut command = Command::new(&exe);
    command.env_clear().envs(&p.env);
    command.args(
        p.args
            .iter()
            .map(|a| a.replace("{dir}", &dir.display().to_string())),
    );
    let outcome = run(command, p.stdin.as_deref());
    let _ = std::fs::remove_dir_all(dir);
    outcome
}

fn recorded(p: &Program) -> Outcome {
    let expected = Path::new(CORPUS).join("expected");
    let stdout = std::fs::read(expected.join(format!("{}.out", p.id)))
        .unwrap_or_else(|e| panic!("no recorded output for {}: {e}", p.id));
    let status = std::fs::read_to_string(expected.join(format!("{}.status", p.id)))
        .unwrap_or_else(|e| panic!("no recorded status for {}: {e}", p.id));
    Outcome {
        stdout,
        status: status.trim().parse().expect("a number"),
    }
}

#[test]
fn c_programs_match_native_in_both_modes() {
    let manifest: Manifest =
        toml::from_str(&std::fs::read_to_string(Path::new(CORPUS).join("programs.toml")).unwrap())
            .expect("programs.toml parses");
    let native_build = have_cc().then(|| fresh_dir("build"));
    // Natively built programs first, one at a time (two runs may share a
    // source); then the guest runs, on every core.
    let oracles: Vec<Outcome> = manifest
        .program
        .iter()
        .map(|p| match (&native_build, p.native) {
            (Some(build), true) => run_native(p, build),
            _ => recorded(p),
        })
        .collect();
    let sources: std::collections::BTreeSet<&str> =
        manifest.program.iter().map(|p| p.name.as_str()).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures = std::sync::Mutex::new(Vec::new());
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let (Some(p), Some(oracle)) = (manifest.program.get(i), oracles.get(i)) else {
                        break;
                    };
                    for (mode, extra) in configurations(p) {
                        let guest = run_guest(p, mode, &extra);
                        if guest.stdout != oracle.stdout || guest.status != oracle.status {
                            failures.lock().unwrap().push(format!(
                                "{} ({mode} {extra:?}): status {} (want {}), stdout {:?} (want {:?})",
                                p.id,
                                guest.status,
                                oracle.status,
                                String::from_utf8_lossy(&guest.stdout),
                                String::from_utf8_lossy(&oracle.stdout)
                            ));
                        }
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(
        sources.len() >= 35,
        "the corpus has only {} programs",
        sources.len()
    );
}
