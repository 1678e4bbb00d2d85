//! The structures JIT code reads at fixed offsets.
//!
//! Each is `#[repr(C)]` and mirrors a module of `carat_jit::abi`; the tests
//! at the bottom hold every field's `offset_of!` to the JIT's constant, so
//! a change on one side that is not made on the other fails the build's
//! tests instead of corrupting memory.
//!
//! This module depends on nothing else in the runtime: the header names
//! the libcall table and the owning store by opaque pointers, and a host
//! function's context starts with a [`VMHostFuncHeader`] that `host`
//! extends. The modules that own those types cast them back.

use std::sync::atomic::AtomicU64;

/// Per-store limits, shared by every instance of a store (a process).
#[repr(C)]
#[derive(Debug)]
pub struct VMStoreContext {
    /// Non-zero: stop at the next poll. Written by other threads.
    pub interrupt: AtomicU64,
    /// The lowest stack address JIT frames may use.
    pub stack_limit: usize,
    /// Fuel left.
    pub fuel: i64,
    /// Frame pointer of the trampoline through which the guest last left
    /// wasm; see `frames`.
    pub last_exit_fp: usize,
    /// The speculation sink's address (see `signals::speculation_sink`).
    pub speculation_sink: usize,
    /// The store's result spill area (`StoreInner::result_spill`), or 0.
    pub result_spill: usize,
    /// The switch record of the store's running fiber (`fiber::run`).
    pub fiber: usize,
    /// See `abi::store_context::STACK_SOFT_LIMIT`.
    pub stack_soft_limit: usize,
    /// The store's largest frame (`abi::store_context::STACK_MARGIN`).
    pub stack_margin: usize,
}

/// The definition of a linear memory.
#[repr(C)]
#[derive(Debug)]
pub struct VMMemoryDefinition {
    pub base: *mut u8,
    /// Accessible length in bytes.
    pub bound: u64,
}

/// The definition of a table.
#[repr(C)]
#[derive(Debug)]
pub struct VMTableDefinition {
    pub base: *mut u64,
    /// Current number of elements.
    pub len: u64,
}

/// What a non-null funcref points at.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct VMFuncRef {
    pub func_ptr: *const u8,
    pub vmctx: *mut u8,
    pub type_id: u32,
    pub _pad: u32,
}

/// The fixed header of every vmctx.
#[repr(C)]
#[derive(Debug)]
pub struct VMContextHeader {
    pub store_context: *mut VMStoreContext,
    /// The `libcalls::LibcallTable`.
    pub libcalls: *const (),
    /// The `store::StoreInner` the instance belongs to.
    pub store: *mut (),
    pub magic: u64,
    /// The instance's index in its store.
    pub instance_id: u32,
    pub _pad: u32,
}

/// The signature of a host function's entry, as host trampolines call it.
pub type HostCall = unsafe extern "C" fn(*mut VMHostFuncHeader, *mut u8, *mut u64) -> u32;

/// The start of every host function's "vmctx": what JIT code reads. The
/// function itself follows it (see `host::HostFuncContext`).
#[repr(C)]
#[derive(Debug)]
pub struct VMHostFuncHeader {
    pub host_call: HostCall,
    pub magic: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use carat_jit::abi;
    use std::mem::{offset_of, size_of};

    #[test]
    fn store_context_matches_jit_abi() {
        use abi::store_context as sc;
        // A field's name and offset.
        macro_rules! at {
            ($field:ident) => {
                (stringify!($field), offset_of!(VMStoreContext, $field))
            };
        }
        let fields = [
            (at!(interrupt), sc::INTERRUPT),
            (at!(stack_limit), sc::STACK_LIMIT),
            (at!(fuel), sc::FUEL),
            (at!(last_exit_fp), sc::LAST_EXIT_FP),
            (at!(speculation_sink), sc::SPECULATION_SINK),
            (at!(result_spill), sc::RESULT_SPILL),
            (at!(fiber), sc::FIBER),
            (at!(stack_soft_limit), sc::STACK_SOFT_LIMIT),
            (at!(stack_margin), sc::STACK_MARGIN),
        ];
        for ((field, rust), jit) in fields {
            assert_eq!(rust, jit as usize, "{field}");
        }
        assert_eq!(size_of::<VMStoreContext>(), sc::SIZE as usize);
    }

    #[test]
    fn vmctx_header_matches_jit_abi() {
        use abi::vmctx as v;
        assert_eq!(
            offset_of!(VMContextHeader, store_context),
            v::STORE_CONTEXT as usize
        );
        assert_eq!(offset_of!(VMContextHeader, libcalls), v::LIBCALLS as usize);
        assert_eq!(offset_of!(VMContextHeader, store), v::STORE as usize);
        assert_eq!(offset_of!(VMContextHeader, magic), v::MAGIC as usize);
        assert_eq!(
            offset_of!(VMContextHeader, instance_id),
            v::INSTANCE_ID as usize
        );
        assert_eq!(size_of::<VMContextHeader>(), v::HEADER_SIZE as usize);
    }

    #[test]
    fn definitions_match_jit_abi() {
        assert_eq!(
            offset_of!(VMMemoryDefinition, base),
            abi::memory::BASE as usize
        );
        assert_eq!(
            offset_of!(VMMemoryDefinition, bound),
            abi::memory::BOUND as usize
        );
        assert_eq!(size_of::<VMMemoryDefinition>(), abi::memory::SIZE as usize);
        assert_eq!(
            offset_of!(VMTableDefinition, base),
            abi::table::BASE as usize
        );
        assert_eq!(offset_of!(VMTableDefinition, len), abi::table::LEN as usize);
        assert_eq!(size_of::<VMTableDefinition>(), abi::table::SIZE as usize);
        assert_eq!(size_of::<u64>(), abi::table::ELEMENT_SIZE as usize);
    }

    #[test]
    fn funcref_matches_jit_abi() {
        use abi::funcref as f;
        assert_eq!(offset_of!(VMFuncRef, func_ptr), f::FUNC_PTR as usize);
        assert_eq!(offset_of!(VMFuncRef, vmctx), f::VMCTX as usize);
        assert_eq!(offset_of!(VMFuncRef, type_id), f::TYPE_ID as usize);
        assert_eq!(size_of::<VMFuncRef>(), f::SIZE as usize);
    }

    #[test]
    fn host_func_context_matches_jit_abi() {
        use abi::host_func as h;
        assert_eq!(
            offset_of!(VMHostFuncHeader, host_call),
            h::HOST_CALL as usize
        );
        assert_eq!(offset_of!(VMHostFuncHeader, magic), h::MAGIC as usize);
    }
}
