//! The command line's public contract: output, errors and exit status.
//!
//! Each case is data: arguments, the expected exit status, and text that
//! stdout and stderr must contain.

use std::process::Command;

struct Case {
    args: &'static [&'static str],
    status: i32,
    stdout: &'static str,
    stderr: &'static str,
}

const CASES: &[Case] = &[
    Case {
        args: &["run", "--invoke", "fib", "examples/fib.wat", "30"],
        status: 0,
        stdout: "832040\n",
        stderr: "",
    },
    Case {
        args: &["run", "--invoke", "fib_rec", "examples/fib.wat", "0x14"],
        status: 0,
        stdout: "6765\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "add",
            "tests/programs/cli.wat",
            "-1",
            "2",
        ],
        status: 0,
        stdout: "1\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "add",
            "tests/programs/cli.wat",
            "0xffffffff",
            "1",
        ],
        status: 0,
        stdout: "0\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "pair",
            "tests/programs/cli.wat",
            "7",
            "2.5",
        ],
        status: 0,
        stdout: "2.5\n7\n",
        stderr: "",
    },
    Case {
        args: &["run", "--invoke", "fid", "tests/programs/cli.wat", "nan"],
        status: 0,
        stdout: "nan\n",
        stderr: "",
    },
    Case {
        args: &["run", "--invoke", "fid", "tests/programs/cli.wat", "-inf"],
        status: 0,
        stdout: "-inf\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "fid",
            "tests/programs/cli.wat",
            "0x1.8p1",
        ],
        status: 0,
        stdout: "3.0\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "fid",
            "tests/programs/cli.wat",
            "nan:0x200000",
        ],
        status: 0,
        stdout: "nan:0x200000\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "did",
            "tests/programs/cli.wat",
            "-0x1p-1074",
        ],
        status: 0,
        stdout: "-5e-324\n",
        stderr: "",
    },
    Case {
        args: &["run", "tests/programs/cli.wat"],
        status: 0,
        stdout: "",
        stderr: "",
    },
    Case {
        args: &["run", "--invoke", "boom", "tests/programs/cli.wat"],
        status: 134,
        stdout: "",
        stderr: "error: trap: unreachable\n",
    },
    Case {
        args: &["run", "--invoke", "oob", "tests/programs/cli.wat"],
        status: 134,
        stdout: "",
        stderr: "error: trap: out of bounds memory access\n",
    },
    Case {
        args: &["run", "--invoke", "grow", "tests/programs/cli.wat", "1"],
        status: 0,
        stdout: "1\n",
        stderr: "",
    },
    Case {
        args: &[
            "run",
            "--max-memory",
            "128KiB",
            "--invoke",
            "grow",
            "tests/programs/cli.wat",
            "2",
        ],
        status: 0,
        stdout: "-1\n",
        stderr: "",
    },
    Case {
        args: &["run", "--max-memory", "0", "tests/programs/cli.wat"],
        status: 1,
        stdout: "",
        stderr: "exceeds the limit",
    },
    Case {
        args: &["run", "--max-memory", "lots", "tests/programs/cli.wat"],
        status: 2,
        stdout: "",
        stderr: "invalid size",
    },
    Case {
        args: &["run", "--invoke", "nope", "examples/fib.wat"],
        status: 1,
        stdout: "",
        stderr: "error: unknown export `nope`",
    },
    Case {
        args: &["run", "--invoke", "fib", "examples/fib.wat"],
        status: 1,
        stdout: "",
        stderr: "takes 1 argument (i64) but 0 were given",
    },
    Case {
        args: &["run", "--invoke", "fib", "examples/fib.wat", "ten"],
        status: 1,
        stdout: "",
        stderr: "invalid i64 argument `ten`",
    },
    Case {
        args: &[
            "run",
            "--invoke",
            "add",
            "tests/programs/cli.wat",
            "4294967296",
            "1",
        ],
        status: 1,
        stdout: "",
        stderr: "invalid i32 argument",
    },
    Case {
        args: &["run", "tests/programs/missing.wasm"],
        status: 1,
        stdout: "",
        stderr: "error: cannot read tests/programs/missing.wasm",
    },
    Case {
        args: &["run", "tests/programs/garbage.wasm"],
        status: 1,
        stdout: "",
        stderr: "error: invalid module: magic header not detected",
    },
    Case {
        args: &["run", "tests/programs/truncated.wasm"],
        status: 1,
        stdout: "",
        stderr: "error: invalid module: unexpected end-of-file (at offset 10)",
    },
    Case {
        args: &["run", "tests/programs/invalid.wat"],
        status: 1,
        stdout: "",
        stderr: "error: invalid module: type mismatch",
    },
    Case {
        args: &["run", "tests/programs/imports.wat"],
        status: 1,
        stdout: "",
        stderr: "error: unknown import `env::missing`",
    },
    Case {
        args: &["wast", "tests/programs/failing.wast"],
        status: 1,
        stdout: "2 passed, 2 failed\n",
        stderr: "",
    },
    Case {
        args: &["wast", "tests/programs/cli.wast"],
        status: 0,
        stdout: "21 passed, 0 failed\n",
        stderr: "",
    },
    Case {
        args: &["bogus"],
        status: 2,
        stdout: "",
        stderr: "unrecognized subcommand",
    },
];

#[test]
fn command_line_contract() {
    let mut failures = Vec::new();
    for case in CASES {
        let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
            .args(case.args)
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let status = output.status.code().unwrap_or(-1);
        let stdout_ok = if case.stdout.is_empty() {
            stdout.is_empty()
        } else {
            stdout.ends_with(case.stdout)
        };
        if status != case.status
            || !stdout_ok
            || !stderr.contains(case.stderr)
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
