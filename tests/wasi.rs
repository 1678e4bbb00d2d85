//! WASI calls a guest could use to make the host hold, copy or leak
//! without bound, and path_link's follow flag: each is bounded or exact.
//! The guest is `tests/programs/wasi_limits.wat`, run with a scratch
//! directory preopened as descriptor 3.

use std::os::unix::fs::MetadataExt;

use carat_vm::{Mode, Preopen, Val, Vm, VmConfig, WasiConfig};

/// Runs export `name` of the guest with `dir` preopened as `.`.
fn run(mode: Mode, dir: &std::path::Path, name: &str) -> i32 {
    let vm = Vm::new(VmConfig {
        mode,
        ..VmConfig::default()
    })
    .unwrap();
    let module = vm
        .compile_file("tests/programs/wasi_limits.wat".as_ref())
        .unwrap();
    let mut process = vm.new_process().unwrap();
    process
        .add_wasi(WasiConfig {
            preopens: vec![Preopen {
                host: dir.to_path_buf(),
                guest: ".".into(),
            }],
            ..WasiConfig::default()
        })
        .unwrap();
    let instance = process.instantiate(&module).unwrap();
    match process.invoke(instance, name, &[]).unwrap()[..] {
        [Val::I32(n)] => n,
        ref other => panic!("{name}: {other:?}"),
    }
}

/// A fresh scratch directory holding target.txt and a symlink to it.
fn scratch(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("carat-wasi-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("target.txt"), "target").unwrap();
    std::os::unix::fs::symlink("target.txt", dir.join("link")).unwrap();
    dir
}

#[test]
fn iovec_arrays_are_bounded() {
    for mode in Mode::ALL {
        let dir = scratch(&format!("iov-{mode}"));
        let started = std::time::Instant::now();
        assert_eq!(run(mode, &dir, "many_iovecs"), 28, "{mode}: EINVAL");
        assert!(
            started.elapsed().as_secs() < 5,
            "{mode}: {:?}",
            started.elapsed()
        );
    }
}

#[test]
fn a_failed_open_leaves_no_descriptor_behind() {
    for mode in Mode::ALL {
        let dir = scratch(&format!("open-{mode}"));
        // stdio and the preopen hold 0..=3: the first free one is 4.
        assert_eq!(run(mode, &dir, "open_with_bad_result"), 4, "{mode}");
    }
}

#[test]
fn descriptors_per_process_are_bounded() {
    let dir = scratch("fds");
    // 1,024 in all, of which stdio and the preopen take 4.
    assert_eq!(run(Mode::Carat, &dir, "open_until_refused"), 1020);
}

#[test]
fn path_link_follows_a_symlink_only_when_asked() {
    let dir = scratch("link");
    assert_eq!(run(Mode::Carat, &dir, "link_both_ways"), 0);
    let target = std::fs::metadata(dir.join("target.txt")).unwrap();
    let followed = std::fs::symlink_metadata(dir.join("followed")).unwrap();
    assert!(followed.file_type().is_file(), "followed: {followed:?}");
    assert_eq!(followed.ino(), target.ino(), "a hard link to the target");
    let unfollowed = std::fs::symlink_metadata(dir.join("unfollowed")).unwrap();
    assert!(
        unfollowed.file_type().is_symlink(),
        "unfollowed: {unfollowed:?}"
    );
}

#[test]
fn one_syscall_moves_a_bounded_number_of_bytes() {
    let dir = scratch("big");
    assert_eq!(run(Mode::Carat, &dir, "big_write"), 16 << 20);
    assert_eq!(
        std::fs::metadata(dir.join("big.out")).unwrap().len(),
        16 << 20
    );
}

/// A launch manifest gives processes what file-using programs need: a
/// preopened directory (`dirs`), standard input from a file (`stdin`,
/// shared by copies, each reading from its start) and standard error to a
/// file (`stderr`, one per copy). The C programs are the corpus's own
/// `file_io` and `wc`, whose expected outputs the corpus test checks.
#[test]
fn a_launch_gives_processes_directories_stdin_and_stderr() {
    let dir = std::env::temp_dir().join(format!("carat-launch-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("sandbox")).unwrap();
    let examples = std::fs::canonicalize("examples/c").unwrap();
    let manifest = format!(
        r#"
[[process]]
name = "files"
module = "{examples}/file_io.wasm"
args = ["/data"]
capabilities = ["wasi"]
dirs = ["sandbox::/data"]
stdout = "files.out"
stderr = "files.err"

[[process]]
name = "counter"
module = "{examples}/wc.wasm"
count = 2
capabilities = ["wasi"]
stdin = "{examples}/inputs/wc.txt"
stdout = "wc.out"
stderr = "null"

[[process]]
name = "complainer"
module = "{examples}/file_io.wasm"
args = ["/nowhere"]
capabilities = ["wasi"]
stdin = "null"
stdout = "null"
stderr = "complainer.err"
"#,
        examples = examples.display()
    );
    std::fs::write(dir.join("files.toml"), manifest).unwrap();
    let report = carat_vm::launch::launch(&dir.join("files.toml"), Default::default()).unwrap();
    let endings: Vec<String> = report
        .endings
        .iter()
        .map(|(name, ending)| format!("{name}: {ending}"))
        .collect();
    assert_eq!(
        endings,
        [
            "files: exit 0",
            "counter.0: exit 0",
            "counter.1: exit 0",
            "complainer: exit 1"
        ]
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap();
    assert_eq!(read("files.out"), read_expected("file_io.out"));
    assert_eq!(read("files.err"), "");
    for copy in 0..2 {
        assert_eq!(read(&format!("wc.out.{copy}")), read_expected("wc.out"));
    }
    assert!(
        read("complainer.err").starts_with("file_io: FAILED"),
        "{}",
        read("complainer.err")
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

fn read_expected(name: &str) -> String {
    std::fs::read_to_string(format!("examples/c/expected/{name}")).unwrap()
}

/// Bad `dirs` and `stdin` fields are errors naming the process and the
/// field, before anything runs.
#[test]
fn bad_dirs_and_stdin_in_a_manifest_are_named() {
    let dir = std::env::temp_dir().join(format!("carat-launch-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let hello = std::fs::canonicalize("examples/c/hello.wasm").unwrap();
    for (field, value, message) in [
        (
            "dirs",
            r#"["missing::/m"]"#,
            "process `p`: dirs: `missing::/m`:",
        ),
        (
            "dirs",
            r#"[".::"]"#,
            "process `p`: dirs: `.::`: no guest path",
        ),
        (
            "stdin",
            r#""missing.txt""#,
            "process `p`: stdin: cannot open",
        ),
    ] {
        let manifest = format!(
            "[[process]]\nname = \"p\"\nmodule = \"{}\"\ncapabilities = [\"wasi\"]\n{field} = {value}\n",
            hello.display()
        );
        std::fs::write(dir.join("bad.toml"), manifest).unwrap();
        let error = carat_vm::launch::launch(&dir.join("bad.toml"), Default::default())
            .expect_err("refused");
        let text = format!("{error:#}");
        assert!(text.contains(message), "{field}: {text}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
