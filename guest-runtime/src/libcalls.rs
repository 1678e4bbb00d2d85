//! The runtime functions JIT code calls, and the table it calls them from.
//!
//! Each libcall receives the caller's vmctx and finds its `Instance`
//! through the vmctx header. Libcalls never unwind and never trap by
//! themselves: those that can fail return a status, and the JIT code that
//! called them raises the trap (see `jit::abi::Libcall`).

use carat_jit::abi;

use crate::instance::Instance;

/// The table `vmctx::LIBCALLS` points at; fields in `abi::Libcall` order.
#[repr(C)]
pub struct LibcallTable {
    pub memory_grow: unsafe extern "C" fn(*mut u8, u32, u32) -> u32,
    pub memory_init: unsafe extern "C" fn(*mut u8, u32, u32, u32, u32, u32) -> u32,
    pub data_drop: unsafe extern "C" fn(*mut u8, u32),
    pub memory_copy: unsafe extern "C" fn(*mut u8, *mut u8, *const u8, u64),
    pub memory_fill: unsafe extern "C" fn(*mut u8, *mut u8, u32, u64),
    pub table_grow: unsafe extern "C" fn(*mut u8, u32, u64, u32) -> u32,
    pub table_fill: unsafe extern "C" fn(*mut u8, u32, u32, u64, u32) -> u32,
    pub table_copy: unsafe extern "C" fn(*mut u8, u32, u32, u32, u32, u32) -> u32,
    pub table_init: unsafe extern "C" fn(*mut u8, u32, u32, u32, u32, u32) -> u32,
    pub elem_drop: unsafe extern "C" fn(*mut u8, u32),
    pub poll_slow: unsafe extern "C" fn(*mut u8) -> u32,
}

pub static LIBCALLS: LibcallTable = LibcallTable {
    memory_grow,
    memory_init,
    data_drop,
    memory_copy,
    memory_fill,
    table_grow,
    table_fill,
    table_copy,
    table_init,
    elem_drop,
    poll_slow,
};

/// # Safety
/// `vmctx` must be the vmctx of a live instance, which is what JIT code
/// passes every libcall.
unsafe fn instance<'a>(vmctx: *mut u8) -> &'a mut Instance {
    // SAFETY: per the contract; the header's instance pointer is set at
    // instantiation and stays valid while the instance lives.
    unsafe {
        &mut **vmctx
            .add(abi::vmctx::INSTANCE as usize)
            .cast::<*mut Instance>()
    }
}

fn status(ok: bool) -> u32 {
    u32::from(!ok)
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn memory_grow(vmctx: *mut u8, memory: u32, delta: u32) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    unsafe { instance(vmctx) }.memory_grow(memory, delta) as u32
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn memory_init(
    vmctx: *mut u8,
    memory: u32,
    data: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    status(unsafe { instance(vmctx) }.memory_init(memory, data, dst, src, len))
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
    // SAFETY: called by JIT code with its own vmctx.
    unsafe { instance(vmctx) }.data_drop(data)
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn memory_copy(_vmctx: *mut u8, dst: *mut u8, src: *const u8, len: u64) {
    // SAFETY: JIT code guarded both ranges against their memories' bounds
    // before calling; the ranges may overlap, which `copy` allows.
    unsafe { std::ptr::copy(src, dst, len as usize) }
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn memory_fill(_vmctx: *mut u8, dst: *mut u8, byte: u32, len: u64) {
    // SAFETY: JIT code guarded the range against its memory's bound.
    unsafe { std::ptr::write_bytes(dst, byte as u8, len as usize) }
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn table_grow(vmctx: *mut u8, table: u32, init: u64, delta: u32) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    unsafe { instance(vmctx) }.table_grow(table, init, delta) as u32
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn table_fill(vmctx: *mut u8, table: u32, dst: u32, value: u64, len: u32) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    status(unsafe { instance(vmctx) }.table_fill(table, dst, value, len))
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn table_copy(
    vmctx: *mut u8,
    dst_table: u32,
    src_table: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    status(unsafe { instance(vmctx) }.table_copy(dst_table, src_table, dst, src, len))
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn table_init(
    vmctx: *mut u8,
    table: u32,
    element: u32,
    dst: u32,
    src: u32,
    len: u32,
) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    status(unsafe { instance(vmctx) }.table_init(table, element, dst, src, len))
}

/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn elem_drop(vmctx: *mut u8, element: u32) {
    // SAFETY: called by JIT code with its own vmctx.
    unsafe { instance(vmctx) }.elem_drop(element)
}

/// The slow path of a poll: the fuel ran out (2), the guest is asked to
/// stop (1), or to yield (suspend, then 0). A relocation may happen here,
/// moving the vmctx this was called with: nothing here uses it afterwards.
/// # Safety
/// Only JIT code calls this, passing its own vmctx (see `LibcallTable`).
unsafe extern "C" fn poll_slow(vmctx: *mut u8) -> u32 {
    // SAFETY: called by JIT code with its own vmctx.
    unsafe { instance(vmctx) }.poll()
}

#[cfg(test)]
mod tests {
    use super::*;
    use abi::Libcall;
    use std::mem::offset_of;

    #[test]
    fn table_matches_libcall_order() {
        let fields = [
            (Libcall::MemoryGrow, offset_of!(LibcallTable, memory_grow)),
            (Libcall::MemoryInit, offset_of!(LibcallTable, memory_init)),
            (Libcall::DataDrop, offset_of!(LibcallTable, data_drop)),
            (Libcall::MemoryCopy, offset_of!(LibcallTable, memory_copy)),
            (Libcall::MemoryFill, offset_of!(LibcallTable, memory_fill)),
            (Libcall::TableGrow, offset_of!(LibcallTable, table_grow)),
            (Libcall::TableFill, offset_of!(LibcallTable, table_fill)),
            (Libcall::TableCopy, offset_of!(LibcallTable, table_copy)),
            (Libcall::TableInit, offset_of!(LibcallTable, table_init)),
            (Libcall::ElemDrop, offset_of!(LibcallTable, elem_drop)),
            (Libcall::PollSlow, offset_of!(LibcallTable, poll_slow)),
        ];
        assert_eq!(fields.len(), Libcall::ALL.len());
        for (call, offset) in fields {
            assert_eq!(call.table_offset() as usize, offset, "{call:?}");
        }
        assert_eq!(std::mem::size_of::<LibcallTable>(), Libcall::ALL.len() * 8);
    }
}
