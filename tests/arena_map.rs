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
