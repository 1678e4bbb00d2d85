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
