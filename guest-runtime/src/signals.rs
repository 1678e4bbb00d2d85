//! The process-wide handler that turns faults in JIT code into traps.
//!
//! Explicit traps in JIT code are `ud2` (SIGILL) and integer division
//! faults are SIGFPE: the faulting PC alone says which trap it is. In
//! paging mode a stray heap access is SIGSEGV or SIGBUS, and there the PC
//! is not enough: a heap-access instruction that faults on an address
//! nowhere near the guest's memories means the VM itself is broken (a bad
//! base pointer, a runtime bug), and must crash rather than be reported as
//! the guest's `out of bounds memory access`. So a fault becomes a trap
//! only when all of these hold:
//!
//! - the PC is a trap site of loaded JIT code (the code registry);
//! - the stack pointer lies on the fiber running on this thread;
//! - for SIGSEGV and SIGBUS: the site is a heap access, and the faulting
//!   address (`si_addr`) lies inside a memory reservation of the store
//!   that fiber runs (its [`FaultCheck`](crate::fiber::FaultCheck)), as
//!   wasmtime checks it, or below [`NULL_TRAP_BYTES`]: where a CARAT guard
//!   that failed sends its access (see `jit/src/translate/memory.rs`).
//!   [`check_null_page`] makes sure nothing is ever mapped there.
//!
//! The handler then records the wasm frames the trap happened in (the
//! frame-pointer chain, read only where it lies on the fiber's stack; see
//! `code::trace`) and redirects the context so that the fiber returns the
//! trap (see `fiber`). Anything else is passed to the handler that was
//! installed before ours, so a genuine crash still crashes as it would
//! have. The handler takes the code registry's read lock, which no thread
//! holds while running guest code, and allocates nothing.

use std::sync::{Once, OnceLock};

use carat_jit::Trap;
use carat_jit::abi::{NULL_TRAP_BYTES, SPECULATION_SINK_BYTES};

use crate::code;
use crate::fiber::{TrapInfo, active_fiber};
use crate::stack_switch::Landing;

const SIGNALS: [libc::c_int; 4] = [libc::SIGSEGV, libc::SIGBUS, libc::SIGILL, libc::SIGFPE];

static INSTALL: Once = Once::new();

/// The dispositions ours replaced, in `SIGNALS` order: written once,
/// before our handler is installed, and only read after.
static PREVIOUS: OnceLock<[libc::sigaction; 4]> = OnceLock::new();

/// Installs the handler once per process.
pub fn install() {
    INSTALL.call_once(|| {
        // SAFETY: all-zero is a valid sigaction (SIG_DFL, no flags).
        let mut previous: [libc::sigaction; 4] = unsafe { std::mem::zeroed() };
        for (signal, slot) in SIGNALS.iter().zip(previous.iter_mut()) {
            // SAFETY: reads the current disposition into a valid struct.
            if unsafe { libc::sigaction(*signal, std::ptr::null(), slot) } != 0 {
                panic!(
                    "cannot read the signal disposition: {}",
                    std::io::Error::last_os_error()
                );
            }
        }
        // Recorded before ours goes in, so the handler always finds them.
        let _ = PREVIOUS.set(previous);
        for signal in SIGNALS {
            // SAFETY: a handler with the documented SA_SIGINFO signature.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = handler as *const () as usize;
                action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
                libc::sigemptyset(&mut action.sa_mask);
                if libc::sigaction(signal, &action, std::ptr::null_mut()) != 0 {
                    panic!(
                        "cannot install the trap handler: {}",
                        std::io::Error::last_os_error()
                    );
                }
            }
        }
    });
}

/// Maps `len` inaccessible anonymous bytes at null's address hint, with
/// `flags` besides private and anonymous; `MAP_FAILED` when refused.
fn map_inaccessible(len: usize, flags: libc::c_int) -> *mut libc::c_void {
    // SAFETY: a new anonymous mapping with no access replaces nothing
    // (flags never include MAP_FIXED) and nothing refers to it yet.
    unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | flags,
            -1,
            0,
        )
    }
}

/// Makes sure no mapping can ever exist below [`NULL_TRAP_BYTES`], where
/// failed guards send their accesses. It asks for that range itself, with
/// no access: the kernel refusing (it maps nothing below
/// `vm.mmap_min_addr`) or granting it (we then hold it forever) both
/// leave it unmapped for good; only a mapping already there is an error.
/// Checked once per process.
pub fn check_null_page() -> Result<(), crate::code::CodeError> {
    static CHECKED: OnceLock<Result<(), String>> = OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        // At a fixed address that MAP_FIXED_NOREPLACE never lets replace
        // an existing mapping.
        let at = map_inaccessible(NULL_TRAP_BYTES as usize, libc::MAP_FIXED_NOREPLACE);
        if at != libc::MAP_FAILED {
            // Granted: the first page is ours and inaccessible, for good
            // (or, on a kernel that ignores the flag, wherever it landed,
            // which is harmless to give back).
            if !at.is_null() {
                // SAFETY: unmaps exactly the mapping just made.
                unsafe { libc::munmap(at, NULL_TRAP_BYTES as usize) };
            }
            return Ok(());
        }
        match std::io::Error::last_os_error().raw_os_error() {
            Some(libc::EPERM | libc::EACCES) => Ok(()),
            _ => Err(format!(
                "addresses below {NULL_TRAP_BYTES} are mapped ({}): failed guards could not fault",
                std::io::Error::last_os_error()
            )),
        }
    });
    checked
        .clone()
        .map_err(|reason| crate::code::CodeError::Map(std::io::Error::other(reason)))
}

/// The start of the speculation sink: an inaccessible, never-populated
/// reservation of [`SPECULATION_SINK_BYTES`], made once per process, that
/// versioned loops send their accesses into on a mispredicted path (see
/// `jit/src/translate/versioning/mod.rs`). A speculative access there finds no
/// page and returns no data, as one into wasmtime's guard regions does.
/// Architecturally no access ever lands there, so a fault in it is not
/// claimed as the guest's: it would mean the VM is broken, and crashes.
/// The reservation costs address space only (no memory, no commit charge).
pub fn speculation_sink() -> Result<usize, String> {
    static SINK: OnceLock<Result<usize, String>> = OnceLock::new();
    SINK.get_or_init(|| {
        let at = map_inaccessible(SPECULATION_SINK_BYTES as usize, libc::MAP_NORESERVE);
        if at == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve {} GiB of address space for the speculation sink: {}",
                SPECULATION_SINK_BYTES >> 30,
                std::io::Error::last_os_error()
            ));
        }
        Ok(at as usize)
    })
    .clone()
}

/// What the handler reads of the interrupted thread.
struct Registers {
    pc: usize,
    sp: usize,
    /// The frame pointer: JIT code keeps frame records, so the chain from
    /// here names the wasm frames the trap happened in.
    fp: usize,
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// `context` must be the ucontext the kernel passed to a signal handler.
unsafe fn registers(context: *mut libc::c_void) -> Registers {
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
    unsafe {
        let uc = &*(context as *const libc::ucontext_t);
        Registers {
            pc: uc.uc_mcontext.gregs[libc::REG_RIP as usize] as usize,
            sp: uc.uc_mcontext.gregs[libc::REG_RSP as usize] as usize,
            fp: uc.uc_mcontext.gregs[libc::REG_RBP as usize] as usize,
        }
    }
}

#[cfg(target_arch = "x86_64")]
/// # Safety
/// As `registers`; `landing` must come from the fiber the signal hit.
unsafe fn redirect(context: *mut libc::c_void, landing: Landing) {
    // SAFETY: as in `registers`; the registers we write are the ones the
    // landing reads (see `stack_switch`).
    unsafe {
        let uc = &mut *(context as *mut libc::ucontext_t);
        uc.uc_mcontext.gregs[libc::REG_RIP as usize] = landing.pc as i64;
        uc.uc_mcontext.gregs[libc::REG_RSP as usize] = landing.sp as i64;
        uc.uc_mcontext.gregs[libc::REG_RDI as usize] = landing.arg0 as i64;
        uc.uc_mcontext.gregs[libc::REG_RSI as usize] = landing.arg1 as i64;
    }
}

#[cfg(target_arch = "aarch64")]
/// # Safety
/// `context` must be the ucontext the kernel passed to a signal handler.
unsafe fn registers(context: *mut libc::c_void) -> Registers {
    // SAFETY: the kernel passes a valid ucontext_t to SA_SIGINFO handlers.
    unsafe {
        let uc = &*(context as *const libc::ucontext_t);
        Registers {
            pc: uc.uc_mcontext.pc as usize,
            sp: uc.uc_mcontext.sp as usize,
            fp: uc.uc_mcontext.regs[29] as usize,
        }
    }
}

#[cfg(target_arch = "aarch64")]
/// # Safety
/// As `registers`; `landing` must come from the fiber the signal hit.
unsafe fn redirect(context: *mut libc::c_void, landing: Landing) {
    // SAFETY: as in `registers`; the registers we write are the ones the
    // landing reads (see `stack_switch`).
    unsafe {
        let uc = &mut *(context as *mut libc::ucontext_t);
        uc.uc_mcontext.pc = landing.pc as u64;
        uc.uc_mcontext.sp = landing.sp as u64;
        uc.uc_mcontext.regs[0] = landing.arg0 as u64;
        uc.uc_mcontext.regs[1] = landing.arg1 as u64;
    }
}

/// # Safety
/// Installed with `SA_SIGINFO`; only the kernel calls it.
unsafe extern "C" fn handler(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    context: *mut libc::c_void,
) {
    // SAFETY: the kernel hands us a valid context.
    let Registers { pc, sp, fp } = unsafe { registers(context) };
    if let Some(trap) = code::trap_at(pc)
        && let Some(fiber) = active_fiber()
        && fiber.owns_stack_pointer(sp)
        // SAFETY: the kernel hands SA_SIGINFO handlers a valid siginfo; the
        // fiber's store is live and runs on this thread (it faulted).
        && unsafe { fault_is_the_guests(signal, info, trap, fiber.faults) }
    {
        // SAFETY: the faulting code is JIT code on this fiber's stack; JIT
        // frames own nothing that needs dropping, so abandoning them is
        // sound, and we install exactly the landing's registers.
        unsafe {
            // The fiber's stack holds only wasm frames and trampolines
            // (host code runs on a host stack), and the walk reads only
            // frame records inside it.
            let trace = code::trace(pc, fp, fiber.stack());
            let landing = fiber.land_trap(TrapInfo { trap, pc, trace });
            redirect(context, landing);
        }
        return;
    }
    // SAFETY: forwarding to the previously installed disposition.
    unsafe { forward(signal, info, context) };
}

/// Whether a signal at a trap site of the running guest is that guest's
/// trap: an explicit trap instruction always is; a memory fault only at a
/// heap access whose address lies in the guest's own reservations.
///
/// # Safety
/// `info` must be the siginfo the kernel passed to `handler`, and `faults`
/// answer for a store that is live and running on this thread.
unsafe fn fault_is_the_guests(
    signal: libc::c_int,
    info: *mut libc::siginfo_t,
    trap: Trap,
    faults: crate::fiber::FaultCheck,
) -> bool {
    if signal != libc::SIGSEGV && signal != libc::SIGBUS {
        return true;
    }
    // SAFETY: per the contract; si_addr is set for SIGSEGV and SIGBUS.
    let address = unsafe { (*info).si_addr() } as usize;
    // SAFETY: per the contract.
    trap == Trap::MemoryOutOfBounds
        && ((address as u64) < NULL_TRAP_BYTES || unsafe { faults.claims(address) })
}

/// # Safety
/// The arguments must be the ones the kernel passed to `handler`.
unsafe fn forward(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(i) = SIGNALS.iter().position(|s| *s == signal) else {
        return;
    };
    // Set before our handler went in (an atomic read, signal-safe); the
    // default disposition if somehow not.
    let previous = PREVIOUS.get().map_or_else(
        // SAFETY: all-zero is a valid sigaction: SIG_DFL.
        || unsafe { std::mem::zeroed() },
        |all| all[i],
    );
    if previous.sa_flags & libc::SA_SIGINFO != 0 {
        let f: unsafe extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            // SAFETY: SA_SIGINFO means sa_sigaction holds this signature.
            unsafe { std::mem::transmute(previous.sa_sigaction) };
        // SAFETY: calling the previous handler as the kernel would.
        unsafe { f(signal, info, context) };
    } else if previous.sa_sigaction == libc::SIG_DFL || previous.sa_sigaction == libc::SIG_IGN {
        // Restore the default and return: the faulting instruction runs
        // again and the default action (a core dump) happens.
        // SAFETY: plain libc calls with a zeroed (default) action.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    } else {
        let f: unsafe extern "C" fn(libc::c_int) =
            // SAFETY: without SA_SIGINFO sa_sigaction holds a plain handler.
            unsafe { std::mem::transmute(previous.sa_sigaction) };
        // SAFETY: calling the previous handler as the kernel would.
        unsafe { f(signal) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink is one reservation per process, and every byte a sunk
    /// access can reach is inaccessible: listed in `/proc/self/maps` as
    /// one `---p` range covering all of it.
    #[test]
    fn the_speculation_sink_is_one_inaccessible_reservation() {
        let sink = speculation_sink().unwrap();
        assert_eq!(speculation_sink().unwrap(), sink);
        let end = sink as u64 + SPECULATION_SINK_BYTES;
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let covering = maps.lines().find(|line| {
            let range = line.split_whitespace().next().unwrap();
            let (start, stop) = range.split_once('-').unwrap();
            let start = u64::from_str_radix(start, 16).unwrap();
            let stop = u64::from_str_radix(stop, 16).unwrap();
            start <= sink as u64 && end <= stop
        });
        let line = covering.unwrap_or_else(|| panic!("no mapping covers the sink:\n{maps}"));
        assert!(line.split_whitespace().nth(1) == Some("---p"), "{line}");
    }
}
