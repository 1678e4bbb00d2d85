//! The carat ABI (`carat`): the supervisor's own syscalls.
//!
//! - `yield()` gives up the CPU to other processes;
//! - `getpid() -> i32` is the process's id;
//! - `stats(which: i32) -> i64` reads a VM counter (0 processes spawned, 1
//!   relocations, 2 arena peak bytes, 3 traps; -1 for any other);
//! - `send(ptr, len) -> i32` copies a buffer out of the process, for the
//!   next entry-point call it makes (or as the reply of the one it
//!   serves); `receive(ptr, max) -> i32` copies in the request it serves
//!   (or the reply it got) and returns its full length. Both return
//!   -21 (EFAULT) for a range outside the caller's memory, and `send`
//!   -22 (EINVAL) for a buffer over [`MAX_MESSAGE`];
//! - `compact() -> i64` moves the process's memories to the lowest free
//!   ranges that hold them (CARAT mode) and returns the bytes moved;
//! - `spawn(name_ptr, name_len) -> i32`, where the supervisor can start
//!   processes (`launch`): the new process's id, or a negative errno
//!   from [`spawn_errno`].
//!
//! One process never touches another's memory: buffers travel through
//! the supervisor's [`Mailbox`]es, copied in and out of each memory by
//! the checked view.

use std::sync::{Arc, Mutex};

use carat_guest_runtime::{Caller, GuestAddr, HostError, Val};
use carat_jit::{FuncType, ValType};

use crate::Syscall;

/// The largest buffer `carat.send` copies.
pub const MAX_MESSAGE: u32 = 16 << 20;

/// Why `carat.spawn` did not start a process, as a negative WASI errno.
pub mod spawn_errno {
    /// The process's capabilities refuse its imports (it is reported
    /// failed).
    pub const ACCES: i32 = -2;
    /// The launch's process limit is reached.
    pub const AGAIN: i32 = -6;
    /// The name's range lies outside the caller's memory.
    pub const FAULT: i32 = -21;
    /// No process of that name.
    pub const NOENT: i32 = -44;
    /// No room for it: the arena, the host's mappings or its budget.
    pub const NOMEM: i32 = -48;
    /// It declares entry points, so it is a singleton.
    pub const PERM: i32 = -63;
}

/// The buffers a process exchanges with another through the supervisor:
/// what it last `carat.send`s, and what it may `carat.receive` (the
/// request of the entry-point call it is serving, or the reply to the one
/// it made).
#[derive(Debug, Default)]
pub struct Mailbox {
    pub inbox: Vec<u8>,
    pub outbox: Vec<u8>,
}

impl Mailbox {
    /// Locks a process's mailbox; a panic while it was held leaves plain
    /// byte buffers behind, which stay usable.
    pub fn lock(mailbox: &Mutex<Mailbox>) -> std::sync::MutexGuard<'_, Mailbox> {
        mailbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// What the carat ABI asks of the supervisor.
pub trait Supervisor: Send + Sync {
    /// VM counter `which` (see the module doc), or -1.
    fn stat(&self, which: i32) -> i64;

    /// Starts another copy of the manifest's process `name`; its id, or
    /// a negative [`spawn_errno`]. `None` when this supervisor cannot
    /// start processes (then `carat.spawn` is not offered).
    fn spawn(&self, name: &str) -> Option<i32>;

    /// Whether `spawn` can start processes at all.
    fn can_spawn(&self) -> bool;
}

/// One process's view of the carat ABI.
#[derive(Clone)]
pub struct CaratProcess {
    pub pid: u32,
    pub mailbox: Arc<Mutex<Mailbox>>,
    pub supervisor: Arc<dyn Supervisor>,
}

fn arg_u32(args: &[Val], i: usize) -> u32 {
    match args[i] {
        Val::I32(v) => v as u32,
        _ => unreachable!("the signature says i32"),
    }
}

/// This caller's process, as its store keeps it
/// (`Store::set_host_state`).
fn process(caller: &mut Caller<'_>) -> Result<CaratProcess, HostError> {
    caller
        .host_state::<CaratProcess>()
        .cloned()
        .ok_or_else(|| HostError::Failed("the carat ABI was not set up for this process".into()))
}

/// The syscalls of module `carat`. They are made once per VM: each call
/// finds its process's [`CaratProcess`] through its caller. A process is
/// linked to `spawn` only when its supervisor can start processes.
pub fn syscalls() -> Vec<Syscall> {
    use ValType::{I32, I64};
    vec![
        Syscall::new(
            "send",
            FuncType::new([I32, I32], [I32]),
            |caller, args, results| {
                let mailbox = process(caller)?.mailbox;
                let (ptr, len) = (arg_u32(args, 0), arg_u32(args, 1));
                results[0] = Val::I32(if len > MAX_MESSAGE {
                    -22
                } else {
                    let bytes = caller.memory().and_then(|m| {
                        m.slice(GuestAddr(ptr), u64::from(len))
                            .ok()
                            .map(<[u8]>::to_vec)
                    });
                    match bytes {
                        Some(bytes) => {
                            Mailbox::lock(&mailbox).outbox = bytes;
                            0
                        }
                        None => -21,
                    }
                });
                Ok(())
            },
        ),
        Syscall::new(
            "receive",
            FuncType::new([I32, I32], [I32]),
            |caller, args, results| {
                let mailbox = process(caller)?.mailbox;
                let (ptr, max) = (arg_u32(args, 0), args[1]);
                let Val::I32(max) = max else {
                    unreachable!("the signature says i32")
                };
                let inbox = std::mem::take(&mut Mailbox::lock(&mailbox).inbox);
                let n = inbox.len().min(max.max(0) as usize);
                let written = caller
                    .memory()
                    .map(|mut m| m.write_bytes(GuestAddr(ptr), &inbox[..n]));
                results[0] = Val::I32(match written {
                    Some(Ok(())) => inbox.len() as i32,
                    _ => -21,
                });
                Mailbox::lock(&mailbox).inbox = inbox;
                Ok(())
            },
        ),
        Syscall::new("compact", FuncType::new([], [I64]), |caller, _, results| {
            results[0] = Val::I64(caller.compact_store() as i64);
            Ok(())
        }),
        Syscall::new("yield", FuncType::new([], []), |caller, _, _| {
            // Off a scheduler (a plain call) there is no one to yield to.
            caller.park_on_return(None);
            Ok(())
        }),
        Syscall::new("getpid", FuncType::new([], [I32]), |caller, _, results| {
            results[0] = Val::I32(process(caller)?.pid as i32);
            Ok(())
        }),
        Syscall::new(
            "stats",
            FuncType::new([I32], [I64]),
            |caller, args, results| {
                let supervisor = process(caller)?.supervisor;
                results[0] = Val::I64(supervisor.stat(arg_u32(args, 0) as i32));
                Ok(())
            },
        ),
        Syscall::new(
            "spawn",
            FuncType::new([I32, I32], [I32]),
            |caller: &mut Caller<'_>, args, results| {
                let supervisor = process(caller)?.supervisor;
                let (ptr, len) = (arg_u32(args, 0), arg_u32(args, 1));
                let name = caller.memory().and_then(|m| {
                    m.slice(GuestAddr(ptr), u64::from(len))
                        .ok()
                        .map(|b| String::from_utf8_lossy(b).into_owned())
                });
                // The view is gone before the spawn: spawning may move
                // nothing of ours, but it holds the supervisor's locks.
                let code = match name {
                    None => spawn_errno::FAULT,
                    Some(name) => supervisor.spawn(&name).unwrap_or(spawn_errno::AGAIN),
                };
                results[0] = Val::I32(code);
                Ok(())
            },
        ),
    ]
}
