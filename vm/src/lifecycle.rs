//! What a host that runs services needs of a running launch: every
//! process with its state, memory and CPU time; a kill; a wait.
//!
//! The table is written by the processes' own tasks as they run (a state
//! and its figures when a step starts and ends, the ending when they end),
//! so reading it never stops a guest. A kill asks the process to stop at
//! its next poll with the trap `interrupted`; one asleep in a host call is
//! woken at once to see it (see `scheduler::Task::wake_early`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use carat_guest_runtime::InterruptHandle;

use crate::launch::Ending;

/// Where a process of a launch is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessState {
    /// Waiting for a worker: not yet run, or between time slices.
    Runnable,
    /// On a worker now.
    Running,
    /// Parked in a blocking host call (a WASI sleep, a read of an empty
    /// stdin) until a time.
    Sleeping,
    /// Done: exited, trapped, failed or killed.
    Ended,
}

/// One process of a launch, as [`crate::launch::Launch::processes`] lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProcessInfo {
    /// Its id in the VM.
    pub pid: u32,
    /// Its name in the manifest (`name.i` for copies).
    pub name: String,
    /// What it is doing now.
    pub state: ProcessState,
    /// How it ended, once it has ("exit 0", "trap: interrupted", ...).
    pub ending: Option<String>,
    /// The wasm frames it trapped in, innermost first, one line each
    /// (`0: 0x1a2b - abort`); empty unless it trapped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backtrace: Vec<String>,
    /// Guest state it held when it last stopped running: memories,
    /// tables and control blocks.
    pub memory_bytes: u64,
    /// Time it has run on workers.
    pub cpu_ns: u64,
}

/// A listed process, as the table keeps it: what [`ProcessInfo`] says,
/// in the fewest bytes (a million are kept at once), the ending once
/// (its text and backtrace are made when listed).
struct Entry {
    name: Box<str>,
    state: ProcessState,
    memory_bytes: u64,
    cpu_ns: u64,
    interrupt: InterruptHandle,
    ending: Option<Ending>,
    kill_requested: bool,
}

impl Entry {
    fn info(&self, pid: u32) -> ProcessInfo {
        let backtrace = match &self.ending {
            Some(Ending::Trapped(_, backtrace)) => backtrace_lines(backtrace),
            _ => Vec::new(),
        };
        ProcessInfo {
            pid,
            name: self.name.to_string(),
            state: self.state,
            ending: self.ending.as_ref().map(Ending::to_string),
            backtrace,
            memory_bytes: self.memory_bytes,
            cpu_ns: self.cpu_ns,
        }
    }
}

/// Every process of a launch, by pid.
#[derive(Default)]
pub(crate) struct ProcessTable {
    /// By pid, which grows as processes spawn: a new entry goes at the
    /// map's right edge, whose nodes stay in cache (a hash map put each
    /// at a random place in a table of a million, a cache miss per spawn
    /// and a step).
    entries: Mutex<BTreeMap<u32, Entry>>,
    /// Notified whenever a process ends.
    ended: Condvar,
    /// When the first and the last process so far ended.
    ends: Mutex<Option<(Instant, Instant)>>,
    /// Processes parked in a blocking host call now, and the most at once
    /// so far (changed under the entries' lock).
    sleeping: AtomicU64,
    peak_sleeping: AtomicU64,
    /// Processes listed, and those of them ended: a launch's progress.
    listed: AtomicU64,
    ended_count: AtomicU64,
}

impl ProcessTable {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The name of process `pid`, if it is listed.
    pub(crate) fn name_of(&self, pid: u32) -> Option<String> {
        self.lock().get(&pid).map(|entry| entry.name.to_string())
    }

    /// Lists a spawned process, runnable.
    pub(crate) fn add(&self, pid: u32, name: &str, interrupt: InterruptHandle, memory_bytes: u64) {
        self.listed.fetch_add(1, Ordering::Relaxed);
        self.lock().insert(
            pid,
            Entry {
                name: name.into(),
                state: ProcessState::Runnable,
                memory_bytes,
                cpu_ns: 0,
                interrupt,
                ending: None,
                kill_requested: false,
            },
        );
    }

    pub(crate) fn set_running(&self, pid: u32) {
        if let Some(entry) = self.lock().get_mut(&pid) {
            self.set_state(entry, ProcessState::Running);
        }
    }

    /// Changes a listed process's state, counting the sleepers.
    fn set_state(&self, entry: &mut Entry, state: ProcessState) {
        let was_sleeping = entry.state == ProcessState::Sleeping;
        let sleeping = state == ProcessState::Sleeping;
        if sleeping && !was_sleeping {
            let now = self.sleeping.fetch_add(1, Ordering::Relaxed) + 1;
            self.peak_sleeping.fetch_max(now, Ordering::Relaxed);
        } else if was_sleeping && !sleeping {
            self.sleeping.fetch_sub(1, Ordering::Relaxed);
        }
        entry.state = state;
    }

    /// The most processes parked in a blocking host call (a WASI sleep)
    /// at the same moment so far.
    pub(crate) fn peak_sleeping(&self) -> u64 {
        self.peak_sleeping.load(Ordering::Relaxed)
    }

    /// Records a step that ran for `ran` and left the process in `state`
    /// (not ended) holding `memory_bytes` (`None`: unchanged, it did not
    /// run).
    pub(crate) fn stepped(
        &self,
        pid: u32,
        state: ProcessState,
        ran: Duration,
        memory_bytes: Option<u64>,
    ) {
        if let Some(entry) = self.lock().get_mut(&pid) {
            self.set_state(entry, state);
            entry.cpu_ns += ran.as_nanos() as u64;
            if let Some(bytes) = memory_bytes {
                entry.memory_bytes = bytes;
            }
        }
    }

    /// Records how a process ended at its spawn, before it ever ran (not
    /// counted among the ends the launch times).
    pub(crate) fn ended_at_spawn(&self, pid: u32, ending: &Ending) {
        self.record_ending(pid, ending, Duration::ZERO);
    }

    /// Records how a process ended, after a last step of `ran`.
    pub(crate) fn ended(&self, pid: u32, ending: &Ending, ran: Duration) {
        self.record_ending(pid, ending, ran);
        let now = Instant::now();
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        *ends = Some(ends.map_or((now, now), |(first, _)| (first, now)));
    }

    fn record_ending(&self, pid: u32, ending: &Ending, ran: Duration) {
        if let Some(entry) = self.lock().get_mut(&pid) {
            if entry.ending.is_none() {
                self.ended_count.fetch_add(1, Ordering::Relaxed);
            }
            self.set_state(entry, ProcessState::Ended);
            entry.cpu_ns += ran.as_nanos() as u64;
            entry.ending = Some(ending.clone());
        }
        self.ended.notify_all();
    }

    /// Processes ended so far, and processes listed (spawned).
    pub(crate) fn progress(&self) -> (u64, u64) {
        (
            self.ended_count.load(Ordering::Relaxed),
            self.listed.load(Ordering::Relaxed),
        )
    }

    /// From the first process's end to the last's, so far.
    pub(crate) fn ends_spread(&self) -> Duration {
        let ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        ends.map_or(Duration::ZERO, |(first, last)| last - first)
    }

    /// Whether a kill was asked for the process.
    pub(crate) fn kill_requested(&self, pid: u32) -> bool {
        self.lock().get(&pid).is_some_and(|e| e.kill_requested)
    }

    pub(crate) fn list(&self) -> Vec<ProcessInfo> {
        self.lock()
            .iter()
            .map(|(&pid, entry)| entry.info(pid))
            .collect()
    }

    /// Asks process `pid` to stop; false when there is no such process or
    /// it has ended.
    pub(crate) fn kill(&self, pid: u32) -> bool {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(&pid) else {
            return false;
        };
        if entry.ending.is_some() {
            return false;
        }
        entry.kill_requested = true;
        entry.interrupt.kill();
        true
    }

    /// Blocks until process `pid` has ended, or `timeout` (if any) has
    /// passed; its ending, or `None` when there is no such process or it
    /// did not end in time.
    pub(crate) fn wait(&self, pid: u32, timeout: Option<Duration>) -> Option<Ending> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut entries = self.lock();
        loop {
            match entries.get(&pid) {
                None => return None,
                Some(Entry {
                    ending: Some(ending),
                    ..
                }) => return Some(ending.clone()),
                Some(_) => {}
            }
            entries = match deadline {
                None => self.ended.wait(entries).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    self.ended
                        .wait_timeout(entries, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0
                }
            };
        }
    }
}

/// A backtrace as lines, without their indentation.
fn backtrace_lines(backtrace: &crate::WasmBacktrace) -> Vec<String> {
    backtrace
        .to_string()
        .lines()
        .map(|line| line.trim().to_string())
        .filter(|line| !line.is_empty())
        .collect()
}
