//! WASI preview1 (`wasi_snapshot_preview1`): the syscalls a wasi-libc
//! program makes.
//!
//! Each syscall is a host function over the calling process's memory. Its
//! pointer arguments are [`GuestAddr`]s and every access goes through the
//! memory view's one checked path, so a bad pointer or length is `EFAULT`,
//! never host memory and never a trap. Failures are WASI errno values;
//! only `proc_exit` stops the guest. Files are reached through the
//! preopened directories alone (see `fs`).
//!
//! This file holds the process-wide calls (arguments, environment, clocks,
//! randomness, exit, polling); `fs` holds descriptors and paths.

mod fs;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use carat_guest_runtime::{Caller, GuestAddr, HostError, MemoryView, OutOfBounds, Val};

pub use crate::Syscall;
use carat_jit::{FuncType, ValType};

pub use fs::Preopen;

/// WASI errno values.
pub mod errno {
    pub const SUCCESS: u16 = 0;
    pub const TOOBIG: u16 = 1;
    pub const ACCES: u16 = 2;
    pub const AGAIN: u16 = 6;
    pub const BADF: u16 = 8;
    pub const BUSY: u16 = 10;
    pub const EXIST: u16 = 20;
    pub const FAULT: u16 = 21;
    pub const FBIG: u16 = 22;
    pub const INTR: u16 = 27;
    pub const INVAL: u16 = 28;
    pub const IO: u16 = 29;
    pub const ISDIR: u16 = 31;
    pub const LOOP: u16 = 32;
    pub const MFILE: u16 = 33;
    pub const MLINK: u16 = 34;
    pub const NAMETOOLONG: u16 = 37;
    pub const NFILE: u16 = 41;
    pub const NOENT: u16 = 44;
    pub const NOMEM: u16 = 48;
    pub const NOSPC: u16 = 51;
    pub const NOSYS: u16 = 52;
    pub const NOTDIR: u16 = 54;
    pub const NOTEMPTY: u16 = 55;
    pub const NOTSUP: u16 = 58;
    pub const NOTTY: u16 = 59;
    pub const NXIO: u16 = 60;
    pub const OVERFLOW: u16 = 61;
    pub const PERM: u16 = 63;
    pub const PIPE: u16 = 64;
    pub const ROFS: u16 = 69;
    pub const SPIPE: u16 = 70;
    pub const XDEV: u16 = 75;
    pub const NOTCAPABLE: u16 = 76;

    /// The WASI errno for a host error.
    pub fn from_io(e: &std::io::Error) -> u16 {
        let Some(code) = e.raw_os_error() else {
            return match e.kind() {
                std::io::ErrorKind::NotFound => NOENT,
                std::io::ErrorKind::PermissionDenied => ACCES,
                std::io::ErrorKind::AlreadyExists => EXIST,
                std::io::ErrorKind::InvalidInput => INVAL,
                _ => IO,
            };
        };
        match code {
            libc::EPERM => PERM,
            libc::ENOENT => NOENT,
            libc::EIO => IO,
            libc::ENXIO => NXIO,
            libc::E2BIG => TOOBIG,
            libc::EBADF => BADF,
            libc::EAGAIN => AGAIN,
            libc::ENOMEM => NOMEM,
            libc::EACCES => ACCES,
            libc::EFAULT => FAULT,
            libc::EBUSY => BUSY,
            libc::EEXIST => EXIST,
            libc::EXDEV => XDEV,
            libc::ENOTDIR => NOTDIR,
            libc::EISDIR => ISDIR,
            libc::EINVAL => INVAL,
            libc::ENFILE => NFILE,
            libc::EMFILE => MFILE,
            libc::ENOTTY => NOTTY,
            libc::EFBIG => FBIG,
            libc::ENOSPC => NOSPC,
            libc::ESPIPE => SPIPE,
            libc::EROFS => ROFS,
            libc::EMLINK => MLINK,
            libc::EPIPE => PIPE,
            libc::ENAMETOOLONG => NAMETOOLONG,
            libc::ENOSYS => NOSYS,
            libc::ENOTEMPTY => NOTEMPTY,
            libc::ELOOP => LOOP,
            libc::EOVERFLOW => OVERFLOW,
            libc::EINTR => INTR,
            libc::EOPNOTSUPP => NOTSUP,
            // RESOLVE_BENEATH refuses an escape with EXDEV: the path
            // leaves the preopen, which is a capability the guest lacks.
            _ => IO,
        }
    }
}

/// A syscall's failure: the errno it returns.
pub(crate) struct Errno(pub u16);

impl From<OutOfBounds> for Errno {
    fn from(_: OutOfBounds) -> Self {
        Errno(errno::FAULT)
    }
}

impl From<std::io::Error> for Errno {
    fn from(e: std::io::Error) -> Self {
        Errno(errno::from_io(&e))
    }
}

pub(crate) type SysResult<T = ()> = Result<T, Errno>;

/// What a WASI process starts with.
#[derive(Clone, Debug, Default)]
pub struct WasiConfig {
    /// argv, including argv[0].
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    pub preopens: Vec<Preopen>,
    pub stdin: Input,
    pub stdout: Output,
    pub stderr: Output,
}

/// Where a process's standard input comes from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Input {
    /// carat-vm's own stdin.
    #[default]
    Inherit,
    /// Empty: every read is at its end, as from `/dev/null`.
    Null,
    /// A file, read from its start.
    File(std::path::PathBuf),
}

/// Where a process's standard output (or error) goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// carat-vm's own stdout (or stderr).
    #[default]
    Inherit,
    /// Discarded.
    Null,
    /// A file, created or truncated.
    File(std::path::PathBuf),
}

/// One process's WASI state.
pub struct WasiCtx {
    args: Vec<String>,
    env: Vec<String>,
    fds: fs::FdTable,
    started: Instant,
    /// A wait the current syscall asks for, done once the state is unlocked.
    wait: Option<Wait>,
    /// How the last wait ended, for the syscall it is re-run for.
    woke: Option<Woke>,
}

/// What a syscall waits for with its process parked.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// A clock: the syscall has finished and returns once the time comes.
    Until(Instant),
    /// The host's stdin to have input (or end), or the deadline to pass;
    /// the syscall is then run again, and sees why in `WasiCtx::woke`.
    StdinReadable(Option<Instant>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Woke {
    StdinReadable,
    DeadlinePassed,
}

/// The errno a handler returns to be run again after its `Wait`; never
/// seen by guests.
const RETRY_AFTER_WAIT: u16 = u16::MAX;

/// Whether reading fd 0 of the host would not block now.
fn stdin_ready() -> bool {
    stdin_readable_within(0)
}

/// Whether the host's stdin becomes readable within `timeout_ms` (-1:
/// waiting as long as it takes), blocking the thread meanwhile.
fn stdin_readable_within(timeout_ms: i32) -> bool {
    let mut pollfd = libc::pollfd {
        fd: 0,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid pollfd.
    unsafe { libc::poll(&mut pollfd, 1, timeout_ms) > 0 }
}

/// For a syscall about to read the host's stdin: when the process runs on
/// a scheduled fiber and stdin has nothing yet, asks to park it until
/// stdin is readable (or `deadline`) and to run the syscall again, so the
/// worker thread serves other processes meanwhile. Elsewhere (a plain
/// call, which cannot park) the read simply blocks.
fn park_until_stdin_readable(ctx: &mut WasiCtx, deadline: Option<Instant>) -> SysResult {
    if ctx.woke.take() == Some(Woke::DeadlinePassed)
        || !carat_guest_runtime::fiber::can_suspend()
        || stdin_ready()
    {
        return Ok(());
    }
    ctx.wait = Some(Wait::StdinReadable(deadline));
    Err(Errno(RETRY_AFTER_WAIT))
}

/// Parks the running fiber (or, off a fiber, blocks the thread) through
/// `wait`; says how a stdin wait ended. Stdin has no wake-up source in the
/// scheduler, so it is polled with a backoff from 1 to 10 ms: each check
/// costs one `poll` and the worker is free in between.
fn wait_parked(caller: &mut Caller<'_>, wait: Wait) -> Woke {
    let mut sleep_until = |deadline| caller.sleep_until(deadline);
    match wait {
        Wait::Until(deadline) => {
            if !sleep_until(deadline) {
                std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
            }
            Woke::DeadlinePassed
        }
        Wait::StdinReadable(deadline) => {
            let mut backoff = Duration::from_millis(1);
            loop {
                if stdin_ready() {
                    return Woke::StdinReadable;
                }
                let now = Instant::now();
                if deadline.is_some_and(|d| d <= now) {
                    return Woke::DeadlinePassed;
                }
                let next = deadline.map_or(now + backoff, |d| d.min(now + backoff));
                if !sleep_until(next) {
                    std::thread::sleep(next - now);
                }
                backoff = (backoff * 2).min(Duration::from_millis(10));
            }
        }
    }
}

impl WasiCtx {
    pub fn new(config: WasiConfig) -> std::io::Result<Self> {
        let fds = fs::FdTable::new(&config)?;
        Ok(WasiCtx {
            args: config.args,
            env: config
                .env
                .into_iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect(),
            fds,
            started: Instant::now(),
            wait: None,
            woke: None,
        })
    }
}

type Handler = fn(&mut WasiCtx, &mut MemoryView<'_>, &[Val]) -> SysResult;

fn arg_u32(args: &[Val], i: usize) -> u32 {
    match args[i] {
        Val::I32(v) => v as u32,
        _ => unreachable!("the signature says i32"),
    }
}

fn arg_u64(args: &[Val], i: usize) -> u64 {
    match args[i] {
        Val::I64(v) => v as u64,
        _ => unreachable!("the signature says i64"),
    }
}

fn addr(args: &[Val], i: usize) -> GuestAddr {
    GuestAddr(arg_u32(args, i))
}

/// Builds the syscall from a handler over the guest's memory.
fn syscall(name: &'static str, params: &[ValType], handler: Handler) -> Syscall {
    Syscall {
        name,
        ty: FuncType::new(params, [ValType::I32]),
        call: Box::new(move |caller, args, results| {
            let Some(WasiState(ctx)) = caller.host_state::<WasiState>().cloned() else {
                return Err(HostError::Failed(
                    "WASI was not set up for this process".into(),
                ));
            };
            loop {
                let (code, wait) = {
                    let mut ctx = ctx.lock().unwrap_or_else(|e| e.into_inner());
                    let code = match caller.memory() {
                        Some(mut memory) => match handler(&mut ctx, &mut memory, args) {
                            Ok(()) => errno::SUCCESS,
                            Err(Errno(code)) => code,
                        },
                        None => errno::FAULT,
                    };
                    ctx.woke = None;
                    (code, ctx.wait.take())
                };
                // A syscall that has finished and only waits for a time
                // (a clock in `poll_oneoff`) parks after it returns: its
                // guest then holds no host frames while it sleeps, which is
                // what lets a million sleep at once. A kill wakes it early
                // and stops it at its next poll.
                if code != RETRY_AFTER_WAIT {
                    results[0] = Val::I32(i32::from(code));
                    if let Some(Wait::Until(deadline)) = wait
                        && !caller.park_on_return(Some(deadline))
                    {
                        std::thread::sleep(deadline.saturating_duration_since(Instant::now()));
                    }
                    return Ok(());
                }
                // A wait to run the syscall again happens in it, with the
                // lock released and no view of guest memory held (the memory
                // may move while the process is parked): on a scheduled fiber
                // it parks this process and frees the worker for others.
                let woke = wait.map(|wait| wait_parked(caller, wait));
                // A kill wakes a waiting process early (see the launcher's
                // process table): it ends here, not in the guest.
                if woke.is_some() && caller.kill_requested() {
                    return Err(HostError::Trap(carat_jit::Trap::Interrupted));
                }
                ctx.lock().unwrap_or_else(|e| e.into_inner()).woke = woke;
            }
        }),
    }
}

/// One process's WASI state, kept in its store
/// (`Store::set_host_state`), where the syscalls find it.
#[derive(Clone)]
pub struct WasiState(Arc<Mutex<WasiCtx>>);

impl WasiState {
    pub fn new(ctx: WasiCtx) -> Self {
        WasiState(Arc::new(Mutex::new(ctx)))
    }
}

/// Every syscall of `wasi_snapshot_preview1`. They are made once per VM:
/// each call finds its process's [`WasiState`] through its caller.
pub fn syscalls() -> Vec<Syscall> {
    use ValType::{I32, I64};
    let mut calls = vec![
        syscall("args_get", &[I32, I32], |c, m, a| {
            write_strings(m, &c.args, addr(a, 0), addr(a, 1))
        }),
        syscall("args_sizes_get", &[I32, I32], |c, m, a| {
            write_sizes(m, &c.args, addr(a, 0), addr(a, 1))
        }),
        syscall("environ_get", &[I32, I32], |c, m, a| {
            write_strings(m, &c.env, addr(a, 0), addr(a, 1))
        }),
        syscall("environ_sizes_get", &[I32, I32], |c, m, a| {
            write_sizes(m, &c.env, addr(a, 0), addr(a, 1))
        }),
        syscall("clock_res_get", &[I32, I32], |_, m, a| {
            let resolution = clock_resolution(arg_u32(a, 0))?;
            Ok(m.write_u64(addr(a, 1), resolution)?)
        }),
        syscall("clock_time_get", &[I32, I64, I32], |c, m, a| {
            let now = clock_now(c, arg_u32(a, 0))?;
            Ok(m.write_u64(addr(a, 2), now)?)
        }),
        syscall("random_get", &[I32, I32], |_, m, a| {
            let buf = m.slice_mut(addr(a, 0), u64::from(arg_u32(a, 1)))?;
            fill_random(buf)
        }),
        syscall("sched_yield", &[], |_, _, _| {
            std::thread::yield_now();
            Ok(())
        }),
        syscall("poll_oneoff", &[I32, I32, I32, I32], poll_oneoff),
        syscall("proc_raise", &[I32], |_, _, _| Err(Errno(errno::NOSYS))),
    ];
    for name in ["sock_accept", "sock_recv", "sock_send", "sock_shutdown"] {
        let params: &[ValType] = match name {
            "sock_accept" => &[I32, I32, I32],
            "sock_recv" => &[I32, I32, I32, I32, I32, I32],
            "sock_send" => &[I32, I32, I32, I32, I32],
            _ => &[I32, I32],
        };
        calls.push(syscall(name, params, |_, _, _| Err(Errno(errno::NOSYS))));
    }
    calls.extend(fs::syscalls());
    calls.push(Syscall {
        name: "proc_exit",
        ty: FuncType::new([I32], []),
        call: Box::new(|_, args, _| Err(HostError::Exit(arg_u32(args, 0) as i32))),
    });
    calls
}

/// Writes each string NUL-terminated into `buf` and its address into the
/// pointer array at `ptrs` (args_get, environ_get).
fn write_strings(
    m: &mut MemoryView<'_>,
    strings: &[String],
    ptrs: GuestAddr,
    buf: GuestAddr,
) -> SysResult {
    let mut at = buf;
    for (i, s) in strings.iter().enumerate() {
        let slot = ptrs.checked_add(4 * i as u32).ok_or(Errno(errno::FAULT))?;
        m.write_u32(slot, at.0)?;
        m.write_bytes(at, s.as_bytes())?;
        let end = at.checked_add(s.len() as u32).ok_or(Errno(errno::FAULT))?;
        m.write_bytes(end, &[0])?;
        at = end.checked_add(1).ok_or(Errno(errno::FAULT))?;
    }
    Ok(())
}

fn write_sizes(
    m: &mut MemoryView<'_>,
    strings: &[String],
    count: GuestAddr,
    size: GuestAddr,
) -> SysResult {
    m.write_u32(count, strings.len() as u32)?;
    let bytes: usize = strings.iter().map(|s| s.len() + 1).sum();
    m.write_u32(
        size,
        u32::try_from(bytes).map_err(|_| Errno(errno::OVERFLOW))?,
    )?;
    Ok(())
}

const CLOCK_REALTIME: u32 = 0;
const CLOCK_MONOTONIC: u32 = 1;
const CLOCK_PROCESS_CPUTIME: u32 = 2;
const CLOCK_THREAD_CPUTIME: u32 = 3;

fn host_clock(id: u32) -> SysResult<libc::clockid_t> {
    Ok(match id {
        CLOCK_REALTIME => libc::CLOCK_REALTIME,
        CLOCK_MONOTONIC => libc::CLOCK_MONOTONIC,
        CLOCK_PROCESS_CPUTIME => libc::CLOCK_PROCESS_CPUTIME_ID,
        CLOCK_THREAD_CPUTIME => libc::CLOCK_THREAD_CPUTIME_ID,
        _ => return Err(Errno(errno::INVAL)),
    })
}

fn timespec_ns(ts: &libc::timespec) -> u64 {
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

fn clock_resolution(id: u32) -> SysResult<u64> {
    let clock = host_clock(id)?;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_getres writes one timespec to a valid pointer.
    if unsafe { libc::clock_getres(clock, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    Ok(timespec_ns(&ts).max(1))
}

fn clock_now(ctx: &WasiCtx, id: u32) -> SysResult<u64> {
    match id {
        CLOCK_REALTIME => Ok(SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)),
        // Monotonic time counts from the process's start: a guest cannot
        // learn the host's uptime.
        CLOCK_MONOTONIC => Ok(ctx.started.elapsed().as_nanos() as u64),
        other => {
            let clock = host_clock(other)?;
            let mut ts = libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            // SAFETY: clock_gettime writes one timespec to a valid pointer.
            if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
                return Err(std::io::Error::last_os_error().into());
            }
            Ok(timespec_ns(&ts))
        }
    }
}

fn fill_random(buf: &mut [u8]) -> SysResult {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: getrandom writes at most `rest.len()` bytes into `rest`.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e.into());
        }
        filled += n as usize;
    }
    Ok(())
}

const SUBSCRIPTION_SIZE: u32 = 48;
const EVENT_SIZE: u32 = 32;
const EVENTTYPE_CLOCK: u8 = 0;
const EVENTTYPE_FD_READ: u8 = 1;
const EVENTTYPE_FD_WRITE: u8 = 2;
const SUBCLOCKFLAG_ABSTIME: u16 = 1;

/// poll_oneoff: files are always ready; stdin is ready when the host's
/// stdin is (waited for with `poll`, up to the earliest clock deadline);
/// clock subscriptions fire when nothing else is ready by their deadline.
fn poll_oneoff(ctx: &mut WasiCtx, m: &mut MemoryView<'_>, a: &[Val]) -> SysResult {
    let (input, output, count, nevents) = (addr(a, 0), addr(a, 1), arg_u32(a, 2), addr(a, 3));
    if count == 0 {
        return Err(Errno(errno::INVAL));
    }
    let at = |base: GuestAddr, i: u32, size: u32, field: u32| -> SysResult<GuestAddr> {
        i.checked_mul(size)
            .and_then(|o| o.checked_add(field))
            .and_then(|o| base.checked_add(o))
            .ok_or(Errno(errno::FAULT))
    };
    let mut ready = Vec::new();
    let mut stdin_waiters = Vec::new();
    let mut earliest: Option<(u64, u64)> = None;
    for i in 0..count {
        let userdata = m.read_u64(at(input, i, SUBSCRIPTION_SIZE, 0)?)?;
        let tag = m.read_bytes::<1>(at(input, i, SUBSCRIPTION_SIZE, 8)?)?[0];
        match tag {
            EVENTTYPE_CLOCK => {
                let id = m.read_u32(at(input, i, SUBSCRIPTION_SIZE, 16)?)?;
                let timeout = m.read_u64(at(input, i, SUBSCRIPTION_SIZE, 24)?)?;
                let flags =
                    u16::from_le_bytes(m.read_bytes(at(input, i, SUBSCRIPTION_SIZE, 40)?)?);
                let now = clock_now(ctx, id)?;
                let wait = if flags & SUBCLOCKFLAG_ABSTIME != 0 {
                    timeout.saturating_sub(now)
                } else {
                    timeout
                };
                if earliest.is_none_or(|(w, _)| wait < w) {
                    earliest = Some((wait, userdata));
                }
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let fd = m.read_u32(at(input, i, SUBSCRIPTION_SIZE, 16)?)?;
                if fd == 0 && tag == EVENTTYPE_FD_READ && ctx.fds.is_open(0) {
                    stdin_waiters.push(userdata);
                } else {
                    let error = if ctx.fds.is_open(fd) {
                        errno::SUCCESS
                    } else {
                        errno::BADF
                    };
                    ready.push((userdata, error, tag));
                }
            }
            _ => return Err(Errno(errno::INVAL)),
        }
    }
    if !stdin_waiters.is_empty() && ready.is_empty() {
        // Nothing else is ready: park until stdin is readable or the
        // earliest deadline passes, then look again.
        let deadline = earliest.map(|(wait, _)| Instant::now() + Duration::from_nanos(wait));
        let deadline_passed = ctx.woke == Some(Woke::DeadlinePassed);
        park_until_stdin_readable(ctx, deadline)?;
        if deadline_passed {
            earliest = earliest.map(|(_, userdata)| (0, userdata));
        }
    }
    if !stdin_waiters.is_empty() {
        // Off a fiber, wait here only if nothing else is ready: until stdin
        // is readable or the earliest deadline passes.
        let timeout_ms = match (ready.is_empty(), earliest) {
            (false, _) => 0,
            (true, Some((wait, _))) => i32::try_from(wait.div_ceil(1_000_000)).unwrap_or(i32::MAX),
            (true, None) => -1,
        };
        if stdin_readable_within(timeout_ms) {
            ready.extend(
                stdin_waiters
                    .iter()
                    .map(|u| (*u, errno::SUCCESS, EVENTTYPE_FD_READ)),
            );
        }
    }
    if ready.is_empty()
        && let Some((wait, userdata)) = earliest
    {
        if wait > 0 {
            ctx.wait = Some(Wait::Until(Instant::now() + Duration::from_nanos(wait)));
        }
        ready.push((userdata, errno::SUCCESS, EVENTTYPE_CLOCK));
    }
    for (i, (userdata, error, tag)) in ready.iter().enumerate() {
        let i = i as u32;
        m.write_u64(at(output, i, EVENT_SIZE, 0)?, *userdata)?;
        m.write_bytes(at(output, i, EVENT_SIZE, 8)?, &error.to_le_bytes())?;
        m.write_bytes(at(output, i, EVENT_SIZE, 10)?, &[*tag])?;
        m.write_u64(at(output, i, EVENT_SIZE, 16)?, 0)?;
        m.write_bytes(at(output, i, EVENT_SIZE, 24)?, &0u16.to_le_bytes())?;
    }
    m.write_u32(nevents, ready.len() as u32)?;
    Ok(())
}
