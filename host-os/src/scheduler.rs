//! Running many guest processes on a pool of worker threads.
//!
//! Each process is a [`Task`]: a resumable call that runs until it
//! finishes or yields at a poll. Workers take runnable tasks from one
//! queue; a timer thread asks every running task to yield once per time
//! slice, so a guest that never gives up the CPU still shares it. A
//! yielded task goes to the back of the queue and may resume on any
//! worker; a task blocked in a host call (a WASI sleep) waits off the
//! workers until its time comes. A task that traps or exits simply
//! finishes; the others go on. A running task may start new tasks through
//! a [`Spawner`]; they join the queue when the spawning step ends and run
//! to completion with the rest.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use carat_guest_runtime::InterruptHandle;

/// Where a task stopped after one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Parked at a poll; runnable again.
    Yielded,
    /// Parked in a blocking host call; runnable again at this time.
    Sleeping(Instant),
    Finished,
}

/// A process as the scheduler sees it.
pub trait Task: Send {
    /// Runs until the task finishes or yields.
    fn step(&mut self) -> Step;
    /// How to ask the task to yield while it runs.
    fn interrupt_handle(&self) -> InterruptHandle;
    /// Whether a task asleep until a time should run now instead (it was
    /// asked to stop). Asked of every sleeper at the tick after
    /// [`Spawner::check_early_wakes`], not otherwise.
    fn wake_early(&self) -> bool {
        false
    }
}

#[derive(Clone, Copy, Debug)]
pub struct SchedulerConfig {
    pub workers: usize,
    pub time_slice: Duration,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            time_slice: Duration::from_millis(10),
        }
    }
}

/// What a run did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedulerStats {
    /// Times a task was taken off a worker before it finished.
    pub context_switches: u64,
}

/// Starts tasks while a run is under way (a guest's `carat.spawn`), and
/// tells the run when sleeping tasks may want to wake early.
pub struct Spawner<T> {
    pending: std::sync::Arc<Mutex<Vec<T>>>,
    /// Bumped by [`Spawner::check_early_wakes`].
    wake_epoch: std::sync::Arc<AtomicU64>,
}

impl<T> Clone for Spawner<T> {
    fn clone(&self) -> Self {
        Spawner {
            pending: self.pending.clone(),
            wake_epoch: self.wake_epoch.clone(),
        }
    }
}

impl<T> Default for Spawner<T> {
    fn default() -> Self {
        Spawner {
            pending: Default::default(),
            wake_epoch: Default::default(),
        }
    }
}

impl<T> Spawner<T> {
    /// Queues a task. Tasks spawned during a step are started when the
    /// step ends; ones spawned before a run start with it.
    pub fn spawn(&self, task: T) {
        lock(&self.pending).push(task);
    }

    /// Asks the run to ask every sleeping task [`Task::wake_early`] at
    /// its next tick (after a kill, say). Ticks otherwise look only at the
    /// earliest deadlines, so that a million sleepers cost nothing while
    /// they sleep.
    pub fn check_early_wakes(&self) {
        self.wake_epoch.fetch_add(1, Ordering::AcqRel);
    }
}

/// Tasks are boxed while they run: a queue, a map of sleepers and a list
/// of finished tasks each hold a word per task instead of the task, whose
/// bytes are then allocated once, exactly (a launch task is a few hundred
/// bytes; by value, a million sleepers cost that three times over).
struct Shared<T> {
    spawner: Spawner<T>,
    queue: Mutex<VecDeque<(usize, Box<T>)>>,
    /// Tasks blocked until a time, by (deadline, id), moved back to the
    /// queue by the timer.
    sleeping: Mutex<BTreeMap<(Instant, usize), Box<T>>>,
    ready: Condvar,
    remaining: AtomicUsize,
    running: Mutex<Vec<Option<InterruptHandle>>>,
    finished: Mutex<Vec<Option<Box<T>>>>,
    switches: AtomicU64,
    done: AtomicBool,
}

/// Runs every task to completion; returns them, finished, in their
/// original order.
pub fn run_to_completion<T: Task>(
    tasks: Vec<T>,
    config: SchedulerConfig,
) -> (Vec<T>, SchedulerStats) {
    run_with_spawner(tasks, config, Spawner::default())
}

/// Runs every task, and every task spawned through `spawner` while they
/// run, to completion; returns them finished: the given ones in their
/// order, then the spawned ones in the order they were spawned.
pub fn run_with_spawner<T: Task>(
    mut tasks: Vec<T>,
    config: SchedulerConfig,
    spawner: Spawner<T>,
) -> (Vec<T>, SchedulerStats) {
    tasks.append(&mut lock(&spawner.pending));
    let count = tasks.len();
    let workers = config.workers.max(1);
    let shared = Shared {
        spawner,
        queue: Mutex::new(tasks.into_iter().map(Box::new).enumerate().collect()),
        sleeping: Mutex::new(BTreeMap::new()),
        ready: Condvar::new(),
        remaining: AtomicUsize::new(count),
        running: Mutex::new(vec![None; workers]),
        finished: Mutex::new((0..count).map(|_| None).collect()),
        switches: AtomicU64::new(0),
        done: AtomicBool::new(count == 0),
    };
    std::thread::scope(|scope| {
        let shared = &shared;
        scope.spawn(move || {
            // Ticks often enough to wake sleepers on time; asks running
            // tasks to yield once per slice.
            let tick = config.time_slice.min(Duration::from_millis(1));
            let mut slice_started = Instant::now();
            let mut wake_epoch = shared.spawner.wake_epoch.load(Ordering::Acquire);
            while !shared.done.load(Ordering::Acquire) {
                std::thread::sleep(tick);
                let epoch = shared.spawner.wake_epoch.load(Ordering::Acquire);
                wake_sleepers(shared, epoch != wake_epoch);
                wake_epoch = epoch;
                if slice_started.elapsed() >= config.time_slice {
                    slice_started = Instant::now();
                    for handle in lock(&shared.running).iter().flatten() {
                        handle.request_yield();
                    }
                }
            }
        });
        for worker in 0..workers {
            scope.spawn(move || work(shared, worker));
        }
    });
    let finished = shared
        .finished
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .map(|t| *t.expect("every task finished"))
        .collect();
    (
        finished,
        SchedulerStats {
            context_switches: shared.switches.load(Ordering::Relaxed),
        },
    )
}

fn lock<M>(m: &Mutex<M>) -> std::sync::MutexGuard<'_, M> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Moves the sleepers whose time has come to the queue: those with the
/// earliest deadlines, and with `check_all` any that wants to wake early.
fn wake_sleepers<T: Task>(shared: &Shared<T>, check_all: bool) {
    let now = Instant::now();
    let mut sleeping = lock(&shared.sleeping);
    let mut woken = Vec::new();
    while let Some(entry) = sleeping.first_entry() {
        if entry.key().0 > now {
            break;
        }
        let ((_, id), task) = entry.remove_entry();
        woken.push((id, task));
    }
    if check_all {
        let early: Vec<(Instant, usize)> = sleeping
            .iter()
            .filter(|(_, task)| task.wake_early())
            .map(|(key, _)| *key)
            .collect();
        for key in early {
            if let Some(task) = sleeping.remove(&key) {
                woken.push((key.1, task));
            }
        }
    }
    if woken.is_empty() {
        return;
    }
    let mut queue = lock(&shared.queue);
    queue.extend(woken);
    shared.ready.notify_all();
}

/// Queues what the step that just ended spawned. They count as remaining
/// before that step's own task can finish, so the run cannot end early.
fn start_spawned<T: Task>(shared: &Shared<T>) {
    let spawned = std::mem::take(&mut *lock(&shared.spawner.pending));
    if spawned.is_empty() {
        return;
    }
    let mut finished = lock(&shared.finished);
    let mut queue = lock(&shared.queue);
    for task in spawned {
        shared.remaining.fetch_add(1, Ordering::AcqRel);
        queue.push_back((finished.len(), Box::new(task)));
        finished.push(None);
    }
    shared.ready.notify_all();
}

fn work<T: Task>(shared: &Shared<T>, worker: usize) {
    loop {
        let (id, mut task) = {
            let mut queue = lock(&shared.queue);
            loop {
                if let Some(job) = queue.pop_front() {
                    break job;
                }
                if shared.remaining.load(Ordering::Acquire) == 0 {
                    return;
                }
                queue = shared.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
            }
        };
        lock(&shared.running)[worker] = Some(task.interrupt_handle());
        let step = task.step();
        lock(&shared.running)[worker] = None;
        tracing::trace!(worker, task = id, ?step, "stepped");
        start_spawned(shared);
        match step {
            Step::Yielded => {
                shared.switches.fetch_add(1, Ordering::Relaxed);
                lock(&shared.queue).push_back((id, task));
                shared.ready.notify_one();
            }
            Step::Sleeping(until) => {
                shared.switches.fetch_add(1, Ordering::Relaxed);
                lock(&shared.sleeping).insert((until, id), task);
            }
            Step::Finished => {
                lock(&shared.finished)[id] = Some(task);
                if shared.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                    shared.done.store(true, Ordering::Release);
                    // Take the queue lock so no worker misses the wake-up.
                    let _queue = lock(&shared.queue);
                    shared.ready.notify_all();
                }
            }
        }
    }
}
