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
