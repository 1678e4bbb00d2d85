//! Regression scripts: every `.wast` under `tests/regressions/` (each a
//! shrunk reproducer of something found once, with a comment saying what)
//! must pass in both modes.

use carat_vm::wast::run_script;
use carat_vm::{Mode, Vm, VmConfig};

#[test]
fn regression_scripts_pass_in_both_modes() {
    let mut scripts: Vec<_> = std::fs::read_dir("tests/regressions")
        .expect("tests/regressions exists")
        .map(|e| e.expect("readable").path())
        .filter(|p| p.extension().is_some_and(|e| e == "wast"))
        .collect();
    scripts.sort();
    assert!(!scripts.is_empty());
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        for script in &scripts {
            let source = std::fs::read_to_string(script).unwrap();
            let report = run_script(&vm, &script.display().to_string(), &source).unwrap();
            assert!(
                report.failures.is_empty(),
                "{mode}: {}",
                report.failures.join("\n")
            );
            assert!(report.passed > 0);
        }
    }
}
