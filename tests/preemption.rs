//! Preemption at polls: a guest asked to yield parks at its next poll (a
//! safepoint) and resumes later where it stopped; a guest asked to stop
//! ends with `interrupted`. This is the mechanism a scheduler uses to
//! time-slice processes that never give up the CPU themselves.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use carat_vm::{CallProgress, Extern, Mode, Process, Trap, Val, Vm, VmConfig};

fn counter(p: &mut Process, instance: carat_vm::InstanceId) -> i64 {
    let Some(Extern::Global(g)) = p.export(instance, "n") else {
        panic!("n is a global")
    };
    match p.store().global_get(g).1 {
        Val::I64(n) => n,
        other => panic!("n is an i64, not {other:?}"),
    }
}

/// Asks every handle to yield, every millisecond, until told to stop.
fn ticker(
    handles: Vec<carat_vm::InterruptHandle>,
) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            for h in &handles {
                h.request_yield();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    (stop, thread)
}

#[test]
fn spinning_guests_share_one_thread_and_can_be_killed() {
    for mode in Mode::ALL {
        let vm = Vm::new(VmConfig {
            mode,
            ..VmConfig::default()
        })
        .unwrap();
        let module = vm.compile_file("tests/programs/spin.wat".as_ref()).unwrap();
        let mut procs: Vec<_> = (0..2)
            .map(|_| {
                let mut p = vm.new_process().unwrap();
                let i = p.instantiate(&module).unwrap();
                let spin = p.func(i, "spin").unwrap();
                let call = p.start_call(spin, &[]).unwrap();
                (p, i, call)
            })
            .collect();
        let (stop, thread) = ticker(procs.iter().map(|(p, _, _)| p.interrupt_handle()).collect());
        let mut last = [0i64; 2];
        let mut progressed = [0; 2];
        for _round in 0..20 {
            for (k, (p, i, call)) in procs.iter_mut().enumerate() {
                assert!(
                    matches!(p.resume(call).unwrap(), CallProgress::Suspended),
                    "{mode}: spin returned"
                );
                let n = counter(p, *i);
                // A yield requested while it was parked stops it again at
                // its first poll, so one slice may make no progress.
                assert!(n >= last[k], "{mode}: process {k} went backwards");
                progressed[k] += usize::from(n > last[k]);
                last[k] = n;
            }
        }
        assert!(
            progressed.iter().all(|p| *p >= 5),
            "{mode}: progress in {progressed:?} of 20 slices"
        );
        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        for (p, _, call) in procs.iter_mut() {
            assert!(p.interrupt_handle().kill());
            match p.resume(call).unwrap() {
                CallProgress::Done(Err(e)) => {
                    assert_eq!(carat_vm::VmError::from(e).trap(), Some(Trap::Interrupted))
                }
                other => panic!("{mode}: expected the kill to end the call, got {other:?}"),
            }
        }
    }
}

#[test]
fn a_suspended_call_finishes_with_the_right_result() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_file("tests/programs/spin.wat".as_ref()).unwrap();
    let mut p = vm.new_process().unwrap();
    let i = p.instantiate(&module).unwrap();
    let count_to = p.func(i, "count_to").unwrap();
    let mut call = p.start_call(count_to, &[Val::I64(20_000_000)]).unwrap();
    let (stop, thread) = ticker(vec![p.interrupt_handle()]);
    let mut suspensions = 0;
    let result = loop {
        match p.resume(&mut call).unwrap() {
            CallProgress::Suspended | CallProgress::Sleeping(_) => suspensions += 1,
            CallProgress::Done(result) => break result,
        }
    };
    stop.store(true, Ordering::Relaxed);
    thread.join().unwrap();
    assert_eq!(result.unwrap(), vec![Val::I64(20_000_000)]);
    assert!(suspensions > 0, "the call was never preempted");
    // A plain call ignores yield requests.
    p.interrupt_handle().request_yield();
    assert_eq!(
        p.invoke(i, "count_to", &[Val::I64(20_000_100)]).unwrap(),
        vec![Val::I64(20_000_100)]
    );
}

#[test]
fn dropping_a_suspended_call_leaves_the_process_usable() {
    let vm = Vm::new(VmConfig::default()).unwrap();
    let module = vm.compile_file("tests/programs/spin.wat".as_ref()).unwrap();
    let mut p = vm.new_process().unwrap();
    let i = p.instantiate(&module).unwrap();
    let spin = p.func(i, "spin").unwrap();
    for _ in 0..3 {
        let mut call = p.start_call(spin, &[]).unwrap();
        p.interrupt_handle().request_yield();
        assert!(matches!(
            p.resume(&mut call).unwrap(),
            CallProgress::Suspended
        ));
        drop(call);
    }
    let handle = p.interrupt_handle();
    assert_eq!(p.invoke(i, "count_to", &[Val::I64(0)]).unwrap().len(), 1);
    drop(p);
    assert!(!handle.kill(), "a handle outlives its process harmlessly");
}

/// Eight processes that each sleep 80 ms (`examples/c/clocks.c`, through
/// WASI poll_oneoff) on a single worker: a sleeping process parks off the
/// worker, so they sleep together instead of one after another (640 ms).
#[test]
fn sleeping_processes_do_not_hold_the_worker() {
    let start = std::time::Instant::now();
    let report =
        carat_vm::launch::launch("tests/launch/sleepers.toml".as_ref(), Default::default())
            .unwrap();
    let elapsed = start.elapsed();
    assert!(report.all_exited_zero(), "{:?}", report.endings);
    assert_eq!(report.endings.len(), 8);
    assert!(
        report.context_switches >= 8,
        "{} switches",
        report.context_switches
    );
    assert!(
        elapsed < Duration::from_millis(450),
        "took {elapsed:?}: the sleeps ran one after another"
    );
}

/// A process blocked reading an empty stdin (`examples/c/wc.c`) must not
/// hold the only worker: the process beside it runs to its end while the
/// reader waits, and the reader still gets all its input afterwards.
#[test]
fn a_process_reading_stdin_does_not_hold_the_worker() {
    use std::io::{BufRead, Write};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_carat-vm"))
        .args(["launch", "tests/launch/stdin_reader.toml"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let (lines_tx, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in stdout.lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    // The computer's last line arrives while stdin is still open and empty.
    let mut seen = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let done = line.starts_with("checksum:");
                seen.push(line);
                if done {
                    break;
                }
            }
            Err(_) => {
                let _ = child.kill();
                panic!("the computer never finished while the reader waited: {seen:?}");
            }
        }
    }
    stdin.write_all(b"one two\nthree\n").unwrap();
    drop(stdin);
    let status = child.wait().unwrap();
    let rest: Vec<String> = lines.iter().collect();
    assert!(status.success(), "{seen:?} {rest:?}");
    assert!(
        rest.iter()
            .any(|l| l.split_whitespace().eq(["2", "3", "14"])),
        "{rest:?}"
    );
    assert!(rest.contains(&"reader: exit 0".to_string()), "{rest:?}");
    assert!(rest.contains(&"computer: exit 0".to_string()), "{rest:?}");
}

/// A provider's entry point that spins, made to by two attackers, on one
/// worker: the spinning call shares its client's time slices (the
/// neighbour that computes and the honest clients run meanwhile) and is
/// killed at the provider's `call_timeout`; its client's import fails,
/// and the provider goes on serving the others, who all finish.
#[test]
fn a_spinning_entry_point_is_preempted_and_killed() {
    let start = std::time::Instant::now();
    let report = carat_vm::launch::launch(
        "tests/launch/spinning_provider.toml".as_ref(),
        Default::default(),
    )
    .unwrap();
    let elapsed = start.elapsed();
    let ending = |name: &str| {
        report
            .endings
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, e)| e.to_string())
            .unwrap_or_else(|| panic!("no {name}: {:?}", report.endings))
    };
    for attacker in ["attacker.0", "attacker.1"] {
        let ended = ending(attacker);
        assert!(
            ended.contains("ran past its call_timeout of 300ms and was killed"),
            "{attacker}: {ended}"
        );
    }
    for i in 0..6 {
        assert_eq!(ending(&format!("client.{i}")), "exit 0");
    }
    assert_eq!(ending("neighbour"), "exit 0");
    assert_eq!(ending("spin"), "exit 0");
    assert!(elapsed < Duration::from_secs(20), "took {elapsed:?}");
}

/// Every kind of unbounded path meets a poll, so a kill ends it: a loop
/// that only calls a leaf (leaves do not poll), and recursion with no loop
/// at all, direct and indirect (`tests/programs/unbounded.wat`). A guest
/// that never polls would never return; the test waits 20 s for each.
#[test]
fn every_unbounded_path_meets_a_poll() {
    let exports = [
        "loop_calling_leaf",
        "recursion_tree",
        "indirect_recursion_tree",
    ];
    for mode in Mode::ALL {
        for export in exports {
            let (done, ended) = std::sync::mpsc::channel();
            let vm = Vm::new(VmConfig {
                mode,
                ..VmConfig::default()
            })
            .unwrap();
            let module = vm
                .compile_file("tests/programs/unbounded.wat".as_ref())
                .unwrap();
            let mut p = vm.new_process().unwrap();
            let i = p.instantiate(&module).unwrap();
            let handle = p.interrupt_handle();
            // The guest runs on a thread of its own, so that one that
            // never polls fails the test instead of hanging it.
            std::thread::spawn(move || {
                let result = p.invoke(i, export, &[]);
                let progress = counter(&mut p, i);
                let _ = done.send((result.err().and_then(|e| e.trap()), progress));
            });
            std::thread::sleep(Duration::from_millis(50));
            assert!(handle.kill(), "{mode} {export}: already ended");
            let (trap, progress) = ended
                .recv_timeout(Duration::from_secs(20))
                .unwrap_or_else(|_| panic!("{mode} {export}: never met a poll after a kill"));
            assert_eq!(trap, Some(Trap::Interrupted), "{mode} {export}");
            assert!(progress > 0, "{mode} {export}: made no progress");
        }
    }
}
