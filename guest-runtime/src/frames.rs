//! Walking a parked guest's wasm frames: CARAT's register dump.
//!
//! When wasm code leaves for the host it goes through a trampoline that
//! stores its own frame pointer in the store context (`last_exit_fp`).
//! From there the walk follows the frame-pointer chain: at each frame
//! record, `[fp]` is the caller's frame pointer and `[fp + 8]` the return
//! address into the caller. While that address lies in a wasm function,
//! the caller is a wasm frame; the stack map recorded for that return
//! address says which slots of the caller's frame hold arena pointers
//! (the vmctx), at offsets from the caller's stack pointer at the call,
//! which is `fp + 16`. The walk ends at the first return address outside
//! wasm code: the entry trampoline that the host called into.
//!
//! JIT code reloads every such slot after the call returns, so a slot
//! rewritten here is what the frame uses when it resumes.

use crate::code;

/// One wasm frame of a parked guest, stopped at a call.
#[derive(Debug, Clone)]
pub struct WasmFrame {
    /// Where the frame resumes.
    pub return_address: usize,
    /// The frame's stack pointer at the call.
    pub sp: usize,
    /// Offsets from `sp` of the slots holding arena pointers, from the
    /// stack map of the call.
    pub slot_offsets: Vec<u32>,
}

impl WasmFrame {
    /// Addresses of the frame's slots that hold arena pointers.
    pub fn slots(&self) -> impl Iterator<Item = *mut u64> + '_ {
        self.slot_offsets
            .iter()
            .map(|offset| (self.sp + *offset as usize) as *mut u64)
    }
}

/// The wasm frames below the exit at `exit_fp`, innermost first.
///
/// # Safety
/// `exit_fp` must be the `last_exit_fp` of a guest that is parked in that
/// exit now (inside a host function or libcall it entered through it), and
/// its stack must stay untouched while the frames are used.
pub unsafe fn walk(exit_fp: usize) -> Vec<WasmFrame> {
    let mut frames = Vec::new();
    // SAFETY: per the contract.
    unsafe {
        code::walk_wasm_frames(exit_fp, |return_address, sp, slots| {
            frames.push(WasmFrame {
                return_address,
                sp,
                slot_offsets: slots.to_vec(),
            })
        })
    };
    frames
}

/// Calls `visit` with the stack-map slots of each wasm frame below the
/// exit at `exit_fp`, frame by frame, without allocating: what relocation
/// patches. `visit` gets one frame's slot addresses at a time.
///
/// # Safety
/// As for [`walk`].
pub unsafe fn for_each_frame_slots(
    exit_fp: usize,
    mut visit: impl FnMut(&mut dyn Iterator<Item = *mut u64>),
) {
    // SAFETY: per the contract.
    unsafe {
        code::walk_wasm_frames(exit_fp, |_, sp, slots| {
            visit(
                &mut slots
                    .iter()
                    .map(|offset| (sp + *offset as usize) as *mut u64),
            )
        })
    };
}
