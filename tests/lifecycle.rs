//! Process lifecycle for hosts that run services: a launch under way lists
//! its processes with their state, memory and CPU time, and the host kills
//! and waits for them (`tests/launch/services.toml`: twenty processes
//! asleep for an hour in WASI and one that spins forever).

use std::time::{Duration, Instant};

use carat_vm::launch::{Ending, Launch};
use carat_vm::lifecycle::ProcessState;

/// Polls `launch` until `ready` holds of its process list, for at most
/// 20 s.
fn until(launch: &Launch, ready: impl Fn(&[carat_vm::lifecycle::ProcessInfo]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(&launch.processes()) {
        assert!(Instant::now() < deadline, "{:#?}", launch.processes());
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_host_lists_kills_and_waits_for_running_processes() {
    let started = Instant::now();
    let launch = Launch::start("tests/launch/services.toml".as_ref(), Default::default()).unwrap();
    let sleeping = |list: &[carat_vm::lifecycle::ProcessInfo]| {
        list.iter()
            .filter(|p| p.name.starts_with("sleeper") && p.state == ProcessState::Sleeping)
            .count()
    };
    until(&launch, |list| list.len() == 21 && sleeping(list) == 20);
    let list = launch.processes();
    let spinner = list.iter().find(|p| p.name == "spinner").unwrap().pid;
    assert!(
        list.iter()
            .all(|p| p.memory_bytes >= 65536 || p.name == "spinner"),
        "{list:#?}"
    );

    // One sleeper killed: it wakes at once and ends; the others sleep on.
    let first = list.iter().find(|p| p.name == "sleeper.0").unwrap().pid;
    assert!(launch.kill(first));
    assert!(
        matches!(
            launch.wait_timeout(first, Duration::from_secs(20)),
            Some(Ending::Trapped(t, _)) if t == "interrupted"
        ),
        "a killed sleeper ends at once"
    );
    assert_eq!(sleeping(&launch.processes()), 19);
    assert!(
        !launch.kill(first),
        "an ended process cannot be killed again"
    );

    // The spinner runs until killed, using CPU time meanwhile.
    until(&launch, |list| {
        list.iter()
            .any(|p| p.pid == spinner && p.cpu_ns > 10_000_000)
    });
    assert!(launch.kill(spinner));
    // Killed at a poll in its loop, the trap names where; killed while
    // it waited for a worker, it has no frames. The listing says the same.
    let ending = launch.wait_timeout(spinner, Duration::from_secs(20));
    let Some(Ending::Trapped(trap, backtrace)) = &ending else {
        panic!("{ending:?}");
    };
    assert_eq!(trap, "interrupted");
    let listed = launch
        .processes()
        .into_iter()
        .find(|p| p.pid == spinner)
        .unwrap();
    assert_eq!(listed.backtrace.len(), backtrace.frames.len(), "{listed:?}");
    assert!(
        listed
            .backtrace
            .iter()
            .all(|line| line.starts_with(char::is_numeric))
    );

    for process in launch.processes() {
        if process.state != ProcessState::Ended {
            assert!(launch.kill(process.pid), "{process:?}");
        }
    }
    assert_eq!(launch.wait(u32::MAX), None, "no such process");
    for process in launch.processes() {
        assert!(
            launch
                .wait_timeout(process.pid, Duration::from_secs(20))
                .is_some(),
            "{process:?}"
        );
    }
    let report = launch.finish();
    assert_eq!(report.endings.len(), 21);
    for (name, ending) in &report.endings {
        assert!(
            matches!(ending, Ending::Trapped(t, _) if t == "interrupted"),
            "{name}"
        );
    }
    assert!(
        report
            .processes
            .iter()
            .all(|p| p.state == ProcessState::Ended)
    );
    // An hour of sleep, ended by kills at once.
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?}",
        started.elapsed()
    );
}

/// The million-process launch's shape at a test's size: every process
/// parks mid-call, all of them are asleep at the same moment, then all
/// wake and end, and the report times the phases.
#[test]
fn a_crowd_is_asleep_all_at_once_then_wakes_and_ends() {
    let launch = Launch::start(
        "tests/launch/sleeping_crowd.toml".as_ref(),
        Default::default(),
    )
    .unwrap();
    until(&launch, |list| {
        list.len() == 5000 && list.iter().all(|p| p.state == ProcessState::Sleeping)
    });
    let report = launch.finish();
    assert!(report.all_exited_zero(), "{:?}", report.endings.first());
    assert_eq!(report.endings.len(), 5000);
    assert_eq!(report.peak_parked, 5000, "all asleep at once");
    let ns = |seconds: f64| (seconds * 1e9) as u64;
    assert!(report.spawn_all_ns > 0 && report.spawn_all_ns < report.end_to_end_ns);
    // All slept their 2 s after they were spawned and had run to the sleep.
    assert!(
        report.end_to_end_ns >= report.spawn_all_ns + ns(2.0),
        "{}",
        report.end_to_end_ns
    );
    assert!(report.ends_spread_ns < report.end_to_end_ns - ns(2.0));
}
