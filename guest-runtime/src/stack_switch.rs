//! The only code that changes stacks: a switch between a fiber's stack and
//! the stack that resumed it, the first frame of a fresh fiber, the bridge
//! through which JIT code runs host code on a host stack, and the landing
//! a trap jumps to.
//!
//! Why our own and not corosensei's: a stack that moves (issue 13) must
//! have every address that points into it described, and corosensei keeps
//! absolute stack addresses in fields we cannot reach (its saved stack
//! pointer, its initial stack pointer, the yielder that is the address of
//! its parent link). Here the whole saved state of a stack that is
//! switched out is one word kept *off* that stack (the `save` slot of
//! [`switch`]), plus what the switch pushed onto it: the callee-saved
//! registers, and a frame record whose saved frame pointer continues the
//! stack's frame-pointer chain, as every JIT frame's does.
//!
//! ## The contract
//!
//! [`switch`]`(save, to, value)` pushes a frame record and the callee-saved
//! registers of the platform ABI onto the current stack, stores the stack
//! pointer into `*save`, loads `to` as the stack pointer, pops the same
//! registers from there and returns `value` to whoever switched away from
//! `to`. A stack is switched *to* only with a stack pointer that a switch
//! away from it saved, or one [`prepare`] made. Everything else the ABI
//! lets a callee clobber is clobbered, exactly as by a call, which is what
//! the compiler assumes of `switch`, an `extern "C"` function.
//!
//! [`prepare`] lays out, at the top of a fresh stack, what a switch would
//! have saved: a callee-saved register carrying the fiber's record, and a
//! return address into `carat_stack_start`, which calls the record's
//! [`EntryCall`] and, when it returns, switches back to the resumer for
//! good with `FINISHED`. Above that sits a zero frame record, where every
//! frame-pointer walk of the stack ends. No Rust frame ever sits on a
//! guest stack: from the top down it holds the start frame, JIT frames,
//! and at its bottom a bridge's frame record or a switch's saved
//! registers, all of which this module and Cranelift lay out, so a move
//! can find every stack address in it (see [`saved_frame_pointer`]).
//!
//! ## Host code runs on a host stack
//!
//! JIT code calls every runtime function (libcalls, host functions)
//! through `carat_host_bridge` (in the libcall table), never directly
//! (the float helpers, leaf functions of a few words, are the exception): the
//! bridge pushes a frame record on the guest stack, saves the stack
//! pointer in the fiber's [`SwitchRecord`] (`guest_sp`), switches to the
//! record's host stack (`host_top`, or, when that is 0, the free part of
//! the resumer's stack below `resumer_sp`), calls the target there with
//! the arguments it came with, and switches back through `guest_sp`,
//! *read again*, so a guest stack moved while the host code ran is found
//! at its new place. A guest stack therefore holds JIT frames, bridge
//! frame records and a fiber's first frame, nothing else: host code
//! cannot overflow it, and every word on it is described by the frame
//! pointer chain and the stack maps.
//!
//! Host code may park its guest (`fiber::suspend_current`) on the host
//! stack: the record's `fiber_sp` then points there, the resume continues
//! there, and the host stack stays with the fiber until the host call
//! returns (`on_host` says it is in use).
//!
//! A trap never returns through the frames it abandons: the signal
//! handler makes the faulting thread continue at `carat_stack_trap_landing`
//! (see [`Landing`]), which loads the stack pointer its resumer saved and
//! returns `value` from the resumer's switch as if the fiber had switched
//! back. The fiber's stack is then dead; nothing runs on it again.

use carat_jit::abi::fiber_record;

/// What `switch` returns to a fiber's resumer, and what a resume passes
/// in: `abi::switch_status`, which JIT code passes too.
pub mod status {
    use carat_jit::abi::switch_status as s;
    pub const RESUMED: usize = s::RESUMED as usize;
    pub const FINISHED: usize = s::FINISHED as usize;
    pub const SUSPENDED: usize = s::SUSPENDED as usize;
    pub const TRAPPED: usize = s::TRAPPED as usize;
}

/// The part of a fiber's saved state that the assembly reads, at fixed
/// offsets (the `RECORD_*` constants, checked below).
#[repr(C)]
#[derive(Debug, Default)]
pub struct SwitchRecord {
    /// Where the fiber resumes while it is switched out: on its guest
    /// stack, or on its host stack when it parked in host code.
    pub fiber_sp: usize,
    /// Its resumer's stack pointer while the fiber runs.
    pub resumer_sp: usize,
    /// The guest stack's pointer while host code runs for it (saved by
    /// the bridge, read again on the way back).
    pub guest_sp: usize,
    /// The top of the stack the bridge runs host code on; 0 for "below
    /// the resumer's stack pointer".
    pub host_top: usize,
    /// 1 while host code runs for the fiber (on `host_top`'s stack).
    pub on_host: usize,
    /// What the fiber's first frame calls.
    pub entry: EntryCall,
}

/// The call a fiber makes when it starts: an entry trampoline
/// (`extern "C" fn(callee_vmctx, caller_vmctx, func_ptr, values)`, see
/// `carat_jit::trampolines`) with its arguments; the caller's vmctx is
/// null.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct EntryCall {
    pub trampoline: usize,
    pub callee_vmctx: usize,
    pub func_ptr: usize,
    pub values: usize,
}

impl SwitchRecord {
    /// The lowest address in use on the fiber's guest stack while it is
    /// switched out or out in host code: its saved stack pointer. Nothing
    /// below it is live (JIT code keeps nothing below its stack pointer).
    pub fn lowest_live(&self) -> usize {
        if self.on_host != 0 {
            self.guest_sp
        } else {
            self.fiber_sp
        }
    }
}

const RECORD_GUEST_SP: usize = fiber_record::GUEST_SP as usize;
const RECORD_RESUMER_SP: usize = fiber_record::RESUMER_SP as usize;
const RECORD_HOST_TOP: usize = fiber_record::HOST_TOP as usize;
const RECORD_ON_HOST: usize = fiber_record::ON_HOST as usize;
const RECORD_ENTRY: usize = 40;
const ENTRY_TRAMPOLINE: usize = RECORD_ENTRY;
const ENTRY_VMCTX: usize = RECORD_ENTRY + 8;
const ENTRY_FUNC: usize = RECORD_ENTRY + 16;
const ENTRY_VALUES: usize = RECORD_ENTRY + 24;
const _: () = {
    assert!(std::mem::offset_of!(SwitchRecord, entry) == RECORD_ENTRY);
    assert!(std::mem::offset_of!(EntryCall, trampoline) == 0);
    assert!(std::mem::offset_of!(EntryCall, callee_vmctx) == 8);
    assert!(std::mem::offset_of!(EntryCall, func_ptr) == 16);
    assert!(std::mem::offset_of!(EntryCall, values) == 24);
    assert!(std::mem::offset_of!(SwitchRecord, fiber_sp) == fiber_record::FIBER_SP as usize);
    assert!(std::mem::offset_of!(SwitchRecord, resumer_sp) == RECORD_RESUMER_SP);
    assert!(std::mem::offset_of!(SwitchRecord, guest_sp) == RECORD_GUEST_SP);
    assert!(std::mem::offset_of!(SwitchRecord, host_top) == RECORD_HOST_TOP);
    assert!(std::mem::offset_of!(SwitchRecord, on_host) == RECORD_ON_HOST);
};

unsafe extern "C" {
    pub(crate) fn carat_stack_switch(save: *mut usize, to: usize, value: usize) -> usize;
    fn carat_stack_start();
    fn carat_stack_trap_landing();
    pub(crate) fn carat_host_bridge();
}

/// Switches from the current stack to the one saved at `to`; see the
/// module doc. Returns the value passed by the switch that comes back.
///
/// # Safety
/// `to` must be a stack pointer saved by a switch away from a stack that
/// has not run since, or made by [`prepare`] for a stack not yet started;
/// that stack must stay mapped and unmoved until it switches back. `save`
/// must be writable and stay valid until something switches back here.
pub unsafe fn switch(save: *mut usize, to: usize, value: usize) -> usize {
    // SAFETY: per the contract; the assembly below keeps the ABI.
    unsafe { carat_stack_switch(save, to, value) }
}

#[cfg(target_arch = "x86_64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl carat_stack_switch",
    ".type carat_stack_switch,@function",
    "carat_stack_switch:",
    // A frame record, then the other callee-saved registers: 48 bytes, so
    // the saved stack pointer is 8 mod 16, as after any call.
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "mov rax, rdx",
    ".Lcarat_stack_restore:",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".size carat_stack_switch, .-carat_stack_switch",
    "",
    ".p2align 4",
    ".globl carat_stack_trap_landing",
    ".type carat_stack_trap_landing,@function",
    // rdi: where the resumer's stack pointer is saved; rsi: the value.
    "carat_stack_trap_landing:",
    "mov rsp, [rdi]",
    "mov rax, rsi",
    "jmp .Lcarat_stack_restore",
    ".size carat_stack_trap_landing, .-carat_stack_trap_landing",
    "",
    ".p2align 4",
    ".globl carat_stack_start",
    ".type carat_stack_start,@function",
    // Reached by the `ret` of the first switch to a prepared stack, with
    // the stack pointer 16-aligned at the zero frame record and rbp
    // pointing at it; r12 holds the record (callee-saved, so it survives
    // the entry call).
    "carat_stack_start:",
    "mov rdi, [r12 + {entry_vmctx}]",
    "xor esi, esi",
    "mov rdx, [r12 + {entry_func}]",
    "mov rcx, [r12 + {entry_values}]",
    "call [r12 + {entry_trampoline}]",
    "mov rdi, r12",
    "mov rsi, [r12 + {resumer_sp}]",
    "mov edx, {finished}",
    "call carat_stack_switch",
    "ud2",
    ".size carat_stack_start, .-carat_stack_start",
    "",
    ".p2align 4",
    ".globl carat_host_bridge",
    ".type carat_host_bridge,@function",
    // rdi, rsi, rdx, rcx, r8, r9: the target's arguments, left alone;
    // [rsp+8]: the target; [rsp+16]: the fiber's SwitchRecord.
    "carat_host_bridge:",
    "push rbp",
    "mov rbp, rsp",
    "mov r10, [rbp + 24]",
    "mov r11, [rbp + 16]",
    "mov [r10 + {guest_sp}], rsp",
    "mov rax, [r10 + {host_top}]",
    "test rax, rax",
    "jnz 2f",
    "mov rax, [r10 + {resumer_sp}]",
    "2:",
    "and rax, -16",
    "mov rsp, rax",
    // The record's address stays on the host stack, which never moves;
    // two words keep the stack 16-aligned at the call.
    "push r10",
    "push r10",
    "mov qword ptr [r10 + {on_host}], 1",
    "call r11",
    "pop r10",
    "pop r10",
    "mov qword ptr [r10 + {on_host}], 0",
    "mov rsp, [r10 + {guest_sp}]",
    "pop rbp",
    "ret",
    ".size carat_host_bridge, .-carat_host_bridge",
    guest_sp = const RECORD_GUEST_SP,
    resumer_sp = const RECORD_RESUMER_SP,
    host_top = const RECORD_HOST_TOP,
    on_host = const RECORD_ON_HOST,
    entry_trampoline = const ENTRY_TRAMPOLINE,
    entry_vmctx = const ENTRY_VMCTX,
    entry_func = const ENTRY_FUNC,
    entry_values = const ENTRY_VALUES,
    finished = const status::FINISHED,
);

#[cfg(target_arch = "aarch64")]
std::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl carat_stack_switch",
    ".type carat_stack_switch,%function",
    "carat_stack_switch:",
    // x19-x28, d8-d15 and a frame record (x29, x30) at the top: 176 bytes.
    "sub sp, sp, #176",
    "stp x29, x30, [sp, #160]",
    "add x29, sp, #160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp d8, d9, [sp, #80]",
    "stp d10, d11, [sp, #96]",
    "stp d12, d13, [sp, #112]",
    "stp d14, d15, [sp, #128]",
    "mov x3, sp",
    "str x3, [x0]",
    "mov sp, x1",
    "mov x0, x2",
    ".Lcarat_stack_restore:",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp d8, d9, [sp, #80]",
    "ldp d10, d11, [sp, #96]",
    "ldp d12, d13, [sp, #112]",
    "ldp d14, d15, [sp, #128]",
    "ldp x29, x30, [sp, #160]",
    "add sp, sp, #176",
    "ret",
    ".size carat_stack_switch, .-carat_stack_switch",
    "",
    ".p2align 4",
    ".globl carat_stack_trap_landing",
    ".type carat_stack_trap_landing,%function",
    // x0: where the resumer's stack pointer is saved; x1: the value.
    "carat_stack_trap_landing:",
    "ldr x2, [x0]",
    "mov sp, x2",
    "mov x0, x1",
    "b .Lcarat_stack_restore",
    ".size carat_stack_trap_landing, .-carat_stack_trap_landing",
    "",
    ".p2align 4",
    ".globl carat_stack_start",
    ".type carat_stack_start,%function",
    // x19: the record (callee-saved, so it survives the entry call).
    "carat_stack_start:",
    "ldr x0, [x19, #{entry_vmctx}]",
    "mov x1, xzr",
    "ldr x2, [x19, #{entry_func}]",
    "ldr x3, [x19, #{entry_values}]",
    "ldr x9, [x19, #{entry_trampoline}]",
    "blr x9",
    "mov x0, x19",
    "ldr x1, [x19, #{resumer_sp}]",
    "mov x2, #{finished}",
    "bl carat_stack_switch",
    "brk #1",
    ".size carat_stack_start, .-carat_stack_start",
    "",
    ".p2align 4",
    ".globl carat_host_bridge",
    ".type carat_host_bridge,%function",
    // x0-x5: the target's arguments, left alone; x6: the target; x7: the
    // fiber's SwitchRecord.
    "carat_host_bridge:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "mov x9, sp",
    "str x9, [x7, #{guest_sp}]",
    "ldr x9, [x7, #{host_top}]",
    "cbnz x9, 2f",
    "ldr x9, [x7, #{resumer_sp}]",
    "2:",
    "and x9, x9, #-16",
    "mov sp, x9",
    "str x7, [sp, #-16]!",
    "mov x10, #1",
    "str x10, [x7, #{on_host}]",
    "blr x6",
    "ldr x7, [sp], #16",
    "str xzr, [x7, #{on_host}]",
    "ldr x9, [x7, #{guest_sp}]",
    "mov sp, x9",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".size carat_host_bridge, .-carat_host_bridge",
    guest_sp = const RECORD_GUEST_SP,
    resumer_sp = const RECORD_RESUMER_SP,
    host_top = const RECORD_HOST_TOP,
    on_host = const RECORD_ON_HOST,
    entry_trampoline = const ENTRY_TRAMPOLINE,
    entry_vmctx = const ENTRY_VMCTX,
    entry_func = const ENTRY_FUNC,
    entry_values = const ENTRY_VALUES,
    finished = const status::FINISHED,
);

/// Bytes [`prepare`] uses at the top of a stack.
#[cfg(target_arch = "x86_64")]
pub const START_FRAME_BYTES: usize = 7 * 8 + 16;
#[cfg(target_arch = "aarch64")]
pub const START_FRAME_BYTES: usize = 176 + 16;

/// Lays out a fresh stack whose highest address is `top` (16-aligned) so
/// that the first [`switch`] to the returned stack pointer runs the entry
/// call of `record` on it; see the module doc.
///
/// # Safety
/// `[top - START_FRAME_BYTES, top)` must be writable memory that nothing
/// else uses; `record` must stay live while the stack is used.
pub unsafe fn prepare(top: usize, record: *const SwitchRecord) -> usize {
    assert_eq!(top % 16, 0, "a stack's top is 16-aligned");
    let zero_record = top - 16;
    let record = record as usize;
    #[cfg(target_arch = "x86_64")]
    const WORDS: usize = 7;
    #[cfg(target_arch = "aarch64")]
    const WORDS: usize = 22;
    let mut words = [0usize; WORDS];
    #[cfg(target_arch = "x86_64")]
    {
        words[3] = record; // r12
        words[5] = zero_record; // rbp
        words[6] = carat_stack_start as *const () as usize; // return address
    }
    #[cfg(target_arch = "aarch64")]
    {
        words[0] = record; // x19
        words[20] = zero_record; // x29
        words[21] = carat_stack_start as *const () as usize; // x30
    }
    const { assert!(START_FRAME_BYTES == (2 + WORDS) * 8) };
    let sp = zero_record - size_of_val(&words);
    // SAFETY: per the contract: the zero record is the top 16 bytes.
    unsafe { (zero_record as *mut [usize; 2]).write([0, 0]) };
    // SAFETY: per the contract: the saved registers lie right below it.
    unsafe { (sp as *mut [usize; WORDS]).write(words) };
    sp
}

/// Where a switched-out stack keeps the frame pointer its switch saved,
/// from the saved stack pointer: the first link of the stack's
/// frame-pointer chain.
pub fn saved_frame_pointer(saved_sp: usize) -> usize {
    #[cfg(target_arch = "x86_64")]
    return saved_sp + 5 * 8;
    #[cfg(target_arch = "aarch64")]
    return saved_sp + 160;
}

/// Where a trapping thread continues: the registers the signal handler
/// sets (program counter, stack pointer and the first two argument
/// registers; the landing needs nothing else).
#[derive(Clone, Copy, Debug)]
pub struct Landing {
    pub pc: usize,
    pub sp: usize,
    pub arg0: usize,
    pub arg1: usize,
}

/// The registers that end a fiber with `value` from inside a signal
/// handler: its resumer's switch returns `value`.
///
/// # Safety
/// `resumer_sp` must hold the stack pointer that the resumer's switch to
/// the trapping fiber saved.
pub unsafe fn trap_landing(resumer_sp: *const usize, value: usize) -> Landing {
    Landing {
        pc: carat_stack_trap_landing as *const () as usize,
        // SAFETY: per the contract. Any valid stack will do until the
        // landing's first instruction replaces it; this one is.
        sp: unsafe { *resumer_sp },
        arg0: resumer_sp as usize,
        arg1: value,
    }
}
