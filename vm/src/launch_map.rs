//! The arena map a launch draws (`launch --arena-map FILE.svg`): at its
//! end, every `--arena-map-every` while it runs, and whenever the host
//! process gets `SIGUSR1` (`kill -USR1 PID`), so a long launch can be
//! looked at when something seems off without a period chosen up front.
//!
//! The signal handler only sets a flag, which is all a handler may safely
//! do; the drawing thread looks at it every [`SIGNAL_POLL`] and draws
//! outside the handler, with the launch's process names.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use crate::Vm;
use crate::launch::lock;

/// How often the drawing thread looks for a `SIGUSR1`.
const SIGNAL_POLL: Duration = Duration::from_millis(100);

/// Set by the `SIGUSR1` handler, cleared when the map is drawn.
static REDRAW_REQUESTED: AtomicBool = AtomicBool::new(false);

extern "C" fn request_redraw(_signal: libc::c_int) {
    REDRAW_REQUESTED.store(true, Ordering::Relaxed);
}

/// Makes `SIGUSR1` request a redraw instead of ending the host process.
fn install_redraw_signal() -> std::io::Result<()> {
    // SAFETY: an all-zero sigaction is a valid value to fill in.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = request_redraw as extern "C" fn(libc::c_int) as libc::sighandler_t;
    action.sa_flags = libc::SA_RESTART;
    // SAFETY: the mask is ours, a valid sigset_t to empty.
    unsafe { libc::sigemptyset(&mut action.sa_mask) };
    // SAFETY: the handler only stores to an atomic, which is
    // async-signal-safe; SA_RESTART keeps interrupted system calls going.
    if unsafe { libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut()) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Where, how often and on what a launch draws its arena.
pub(crate) struct ArenaMapping {
    path: Option<PathBuf>,
    every: Option<Duration>,
    /// Also on `SIGUSR1`.
    on_signal: bool,
    /// Why `SIGUSR1` could not be handled, if it could not.
    signal_error: Option<String>,
}

impl ArenaMapping {
    /// Draws into `path` (if any) at the end, every `every`, and on
    /// `SIGUSR1` if `on_signal`, whose handler goes in now, before any
    /// process spawns, so a signal sent once the launch has begun never
    /// finds the default action (the end of the host process).
    pub(crate) fn new(path: Option<PathBuf>, every: Option<Duration>, on_signal: bool) -> Self {
        let on_signal = on_signal && path.is_some();
        let signal_error = on_signal
            .then(install_redraw_signal)
            .and_then(Result::err)
            .map(|e| format!("cannot handle SIGUSR1: {e}"));
        ArenaMapping {
            path,
            every,
            on_signal,
            signal_error,
        }
    }

    /// Whether anything is drawn while the launch runs.
    pub(crate) fn draws_while_running(&self) -> bool {
        self.path.is_some() && (self.every.is_some() || self.on_signal)
    }

    /// Draws the map as asked until `stop` is signalled or dropped;
    /// a failure is kept in `error` (the latest).
    pub(crate) fn draw_until(
        &self,
        vm: &Vm,
        name_of: &dyn Fn(u32) -> Option<String>,
        stop: &Receiver<()>,
        error: &Mutex<Option<String>>,
    ) {
        let Some(path) = &self.path else {
            return;
        };
        if let Some(e) = &self.signal_error {
            *lock(error) = Some(e.clone());
        }
        let tick = match (self.every, self.on_signal) {
            (Some(every), true) => every.min(SIGNAL_POLL),
            (Some(every), false) => every,
            (None, true) => SIGNAL_POLL,
            (None, false) => return,
        };
        let mut next_periodic = self.every.map(|every| Instant::now() + every);
        while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(tick) {
            let signalled = self.on_signal && REDRAW_REQUESTED.swap(false, Ordering::Relaxed);
            let due = next_periodic.is_some_and(|at| Instant::now() >= at);
            if due {
                next_periodic = self.every.map(|every| Instant::now() + every);
            }
            if signalled || due {
                draw(vm, path, name_of, error);
            }
        }
    }

    /// Draws the map once more, at the launch's end.
    pub(crate) fn draw_final(
        &self,
        vm: &Vm,
        name_of: &dyn Fn(u32) -> Option<String>,
        error: &Mutex<Option<String>>,
    ) {
        if let Some(path) = &self.path {
            draw(vm, path, name_of, error);
        }
    }
}

/// Draws the map into `path`, keeping a failure in `error`.
fn draw(
    vm: &Vm,
    path: &std::path::Path,
    name_of: &dyn Fn(u32) -> Option<String>,
    error: &Mutex<Option<String>>,
) {
    if let Err(e) = vm.write_arena_map_named(path, name_of) {
        *lock(error) = Some(e.to_string());
    }
}
