//! The arena map (`--arena-map FILE.svg`): an SVG a real SVG library
//! parses and renders to a picture that is not blank, whose legend counts
//! the regions the arena holds, and which stays small and legible at
//! 100,000 processes because cells aggregate regions.

use std::process::Command;

use carat_vm::{Process, Vm, VmConfig};

/// Renders `svg` with resvg (usvg parses it as SVG, not just as XML) and
/// returns how many of its pixels are strongly coloured: the regions.
fn coloured_pixels(svg: &str) -> usize {
    let tree = resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default())
        .expect("a valid SVG document");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
        .pixels()
        .iter()
        .filter(|p| {
            let (r, g, b) = (p.red(), p.green(), p.blue());
            r.max(g).max(b) - r.min(g).min(b) > 60
        })
        .count()
}

/// The number the legend gives for `kind`'s regions.
fn legend_count(svg: &str, kind: &str) -> usize {
    let at = svg.find(&format!(">{kind}: ")).expect("a legend line") + kind.len() + 3;
    svg[at..].split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_map_of_100_000_processes_renders_small_and_counts_them() {
    let vm = Vm::new(VmConfig {
        arena_size: 1 << 40,
        ..VmConfig::default()
    })
    .unwrap();
    let module = vm.compile_file("examples/wat/small.wat".as_ref()).unwrap();
    let mut processes: Vec<Process> = (0..100_000)
        .map(|_| {
            let mut p = vm.new_process().unwrap();
            p.instantiate(&module).unwrap();
            p
        })
        .collect();
    // A few moves, to be drawn as arrows.
    for p in processes.iter_mut().take(5) {
        assert!(p.store().relocate_all());
    }
    let svg = vm.arena_map_svg().expect("CARAT mode has an arena");
    assert!(svg.len() < 1 << 20, "{} bytes", svg.len());
    assert_eq!(legend_count(&svg, "linear memory"), 100_000);
    assert_eq!(legend_count(&svg, "control block"), 200_000);
    assert_eq!(
        svg.matches("moved from").count(),
        15,
        "5 processes, 3 regions each"
    );
    assert!(svg.contains("moves so far 15"));
    assert!(coloured_pixels(&svg) > 1_000, "the picture is not blank");
    drop(processes);

    // Paging mode has no arena to draw.
    let paging = Vm::new(VmConfig {
        mode: carat_vm::Mode::Paging,
        ..VmConfig::default()
    })
    .unwrap();
    assert!(paging.arena_map_svg().is_none());
}

/// `run --arena-map` draws when the call ends; `launch --arena-map
/// --arena-map-every` draws while processes run and at the end.
#[test]
fn the_command_line_draws_the_arena() {
    let dir = std::env::temp_dir().join(format!("carat-arena-map-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let run_map = dir.join("run.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["run", "--relocate-every", "1", "--arena-map"])
        .arg(&run_map)
        .args(["--invoke", "deep", "tests/programs/backtrace.wat", "50"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(134), "{output:?}");
    let svg = std::fs::read_to_string(&run_map).unwrap();
    assert_eq!(legend_count(&svg, "linear memory"), 1);
    assert!(svg.contains("moved from"), "stress moves are drawn");
    assert!(coloured_pixels(&svg) > 0);

    let launch_map = dir.join("launch.svg");
    let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["launch", "--arena-map"])
        .arg(&launch_map)
        .args(["--arena-map-every", "50ms", "tests/launch/sleepers.toml"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let svg = std::fs::read_to_string(&launch_map).unwrap();
    resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();

    let output = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["run", "--mode", "paging", "--arena-map"])
        .arg(dir.join("paging.svg"))
        .args(["--invoke", "add", "tests/programs/cli.wat", "1", "2"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("--arena-map needs --mode carat"));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Whether process `pid` catches `signal` (its `SigCgt` mask says so).
fn catches(pid: u32, signal: i32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// `launch --arena-map` draws the map when carat-vm gets SIGUSR1, while
/// its processes run, each owner's regions named in the legend; the
/// signal no longer ends carat-vm.
#[test]
fn sigusr1_draws_the_launch_arena_with_its_processes_named() {
    let dir = std::env::temp_dir().join(format!("carat-arena-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let map = dir.join("launch.svg");
    let mut child = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["launch", "--no-cache", "--arena-map"])
        .arg(&map)
        .arg("tests/launch/map_sleepers.toml")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while !catches(child.id(), libc::SIGUSR1) {
        assert!(
            child.try_wait().unwrap().is_none(),
            "ended before handling SIGUSR1"
        );
        assert!(started.elapsed().as_secs() < 20, "SIGUSR1 never handled");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Every process spawns before any runs and each sleeps 3 s: wait for
    // them to be parked, then ask.
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: kill(2) on our own child; it only sends a signal.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGUSR1) }, 0);
    while !map.exists() {
        assert!(child.try_wait().unwrap().is_none(), "no map before the end");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let svg = std::fs::read_to_string(&map).unwrap();
    resvg::usvg::Tree::from_str(&svg, &resvg::usvg::Options::default()).unwrap();
    assert_eq!(legend_count(&svg, "linear memory"), 5, "all five are alive");
    for name in ["alpha.0", "alpha.2", "beta.1"] {
        assert!(
            svg.contains(&format!(">{name} (pid ")),
            "{name} in the legend"
        );
    }
    assert!(svg.contains(r#"<g id="owners">"#) && coloured_pixels(&svg) > 0);
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{output:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}
