//! The runtime functions JIT code calls, the table it calls them from, and
//! their bodies.
//!
//! The table is generated from `carat_jit::foreach_libcall!`, the one
//! definition of the libcall ABI, so its order and every signature match
//! the JIT's by construction. Each entry receives the caller's vmctx and
//! resolves it, through the vmctx header, to `(&mut StoreInner,
//! InstanceId)`: the bodies work through the store alone and never hold a
//! reference to one instance beside a reference to its store. Libcalls
//! never unwind and never trap by themselves: those that can fail return a
//! status, and the JIT code that called them raises the trap.
//!
//! A libcall may move regions (memory.grow without room, a stress poll,
//! compaction), the caller's vmctx included; the store reference is
//! dropped before anything can park (see `poll_slow`), and nothing reads
//! the vmctx the call came in with after it resolved it.

use std::sync::atomic::Ordering;

use carat_jit::ConstExpr;
use carat_jit::abi::WASM_PAGE_SIZE;

use crate::handles::InstanceId;
use crate::regions::RegionKind;
use crate::relocate::RegionRef;
use crate::store::StoreInner;
use crate::vmctx::VMContextHeader;

macro_rules! rust_type {
    (u32) => { u32 };
    (u64) => { u64 };
    (ptr) => { *mut u8 };
    (()) => { () };
}

macro_rules! define_libcall_table {
    ($($(#[$doc:meta])* $name:ident $variant:ident ($($arg:ident: $ty:tt),*) -> $ret:tt;)*) => {
        /// The table `vmctx::LIBCALLS` points at, in `abi::Libcall` order.
        #[repr(C)]
        pub struct LibcallTable {
            $($(#[$doc])* pub $name: unsafe extern "C" fn(*mut u8 $(, rust_type!($ty))*) -> rust_type!($ret),)*
            /// `abi::HOST_BRIDGE_TABLE_OFFSET`: what every trampoline
            /// calls the runtime through (see `stack_switch`).
            pub host_bridge: unsafe extern "C" fn(),
            /// `abi::STACK_SWITCH_TABLE_OFFSET`: how trampolines park
            /// their guest.
            pub stack_switch: unsafe extern "C" fn(*mut usize, usize, usize) -> usize,
        }

        pub static LIBCALLS: LibcallTable = LibcallTable {
            $($name: entries::$name,)*
            host_bridge: crate::stack_switch::carat_host_bridge,
            stack_switch: crate::stack_switch::carat_stack_switch,
        };
    };
}

carat_jit::foreach_libcall!(define_libcall_table);

/// The entries of the table: each resolves its vmctx and runs its body.
mod entries {
    use super::*;

    /// # Safety
    /// `vmctx` must be the vmctx of a live instance, which is what JIT code
    /// passes every libcall, and nothing else may reach its store while
    /// the result is used: its guest is stopped in this libcall, and the
    /// entry into wasm holds no reference to the store.
    unsafe fn resolve<'a>(vmctx: *mut u8) -> (&'a mut StoreInner, InstanceId) {
        // SAFETY: per the contract; the header's store pointer is set at
        // instantiation and the store outlives its instances.
        unsafe {
            let header = &*vmctx.cast::<VMContextHeader>();
            (
                &mut *header.store.cast::<StoreInner>(),
                InstanceId(header.instance_id),
            )
        }
    }

    fn status(ok: bool) -> u32 {
        u32::from(!ok)
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn memory_grow(vmctx: *mut u8, memory: u32, delta: u32) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        store.memory_grow(instance, memory, delta) as u32
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn memory_init(
        vmctx: *mut u8,
        memory: u32,
        data: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        status(store.memory_init(instance, memory, data, dst, src, len))
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn data_drop(vmctx: *mut u8, data: u32) {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        store.instances[instance.0 as usize].dropped_data[data as usize] = true;
    }

    /// # Safety
    /// Only JIT code calls this, with two ranges it has guarded against
    /// their memories' bounds.
    pub(super) unsafe extern "C" fn memory_copy(
        _vmctx: *mut u8,
        dst: *mut u8,
        src: *mut u8,
        len: u64,
    ) {
        // SAFETY: both ranges were guarded by the caller; they may overlap,
        // which `copy` allows.
        unsafe { std::ptr::copy(src, dst, len as usize) }
    }

    /// # Safety
    /// Only JIT code calls this, with a range it has guarded.
    pub(super) unsafe extern "C" fn memory_fill(
        _vmctx: *mut u8,
        dst: *mut u8,
        byte: u32,
        len: u64,
    ) {
        // SAFETY: the range was guarded by the caller.
        unsafe { std::ptr::write_bytes(dst, byte as u8, len as usize) }
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn table_grow(
        vmctx: *mut u8,
        table: u32,
        init: u64,
        delta: u32,
    ) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        store.table_grow(instance, table, init, delta) as u32
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn table_fill(
        vmctx: *mut u8,
        table: u32,
        dst: u32,
        value: u64,
        len: u32,
    ) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        status(store.table_fill(instance, table, dst, value, len))
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn table_copy(
        vmctx: *mut u8,
        dst_table: u32,
        src_table: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        status(store.table_copy(instance, dst_table, src_table, dst, src, len))
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn table_init(
        vmctx: *mut u8,
        table: u32,
        element: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> u32 {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        status(store.table_init(instance, table, element, dst, src, len))
    }

    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn elem_drop(vmctx: *mut u8, element: u32) {
        // SAFETY: called by JIT code with its own vmctx.
        let (store, instance) = unsafe { resolve(vmctx) };
        store.instances[instance.0 as usize].dropped_elements[element as usize] = true;
    }

    /// The slow path of a poll: an `abi::poll_status`. A stress relocation
    /// may move the vmctx this was called with. A yield is the
    /// trampoline's to do, after this returns: the guest parks with no
    /// host frame left on any stack (see `stack_switch`).
    ///
    /// # Safety
    /// Only JIT code calls this, passing its own vmctx.
    pub(super) unsafe extern "C" fn poll_slow(vmctx: *mut u8) -> u32 {
        use carat_jit::abi::poll_status;
        // SAFETY: called by JIT code with its own vmctx.
        let (store, _) = unsafe { resolve(vmctx) };
        match store.poll() {
            PollOutcome::Continue => poll_status::CONTINUE,
            PollOutcome::Yield if crate::fiber::can_suspend() => poll_status::YIELD,
            PollOutcome::Yield => poll_status::CONTINUE,
            PollOutcome::Interrupted => poll_status::INTERRUPTED,
            PollOutcome::OutOfFuel => poll_status::OUT_OF_FUEL,
            PollOutcome::StackExhausted => poll_status::STACK_EXHAUSTED,
        }
    }
}

/// What the slow path of a poll decided.
pub(crate) enum PollOutcome {
    Continue,
    Yield,
    Interrupted,
    OutOfFuel,
    /// The stack is short at a function entry and cannot grow.
    StackExhausted,
}

impl StoreInner {
    /// The slow path of a poll: the fuel ran out, the guest is asked to
    /// stop, or to yield; a stress relocation may happen first.
    fn poll(&mut self) -> PollOutcome {
        use crate::fiber::interrupt::{KILL, RELOCATE, YIELD};
        if !self.grow_stack_if_short() {
            return PollOutcome::StackExhausted;
        }
        let context = self.context_ptr();
        // SAFETY: the context is live; the interrupt word is atomic.
        let (fuel, reason) = unsafe {
            (
                (*context).fuel,
                (*context).interrupt.swap(0, Ordering::AcqRel),
            )
        };
        if fuel < 0 {
            return PollOutcome::OutOfFuel;
        }
        if reason & KILL != 0 {
            return PollOutcome::Interrupted;
        }
        if reason & RELOCATE != 0 {
            let exit = self.last_exit_fp();
            self.stress_poll(exit);
        }
        if reason & YIELD != 0 {
            return PollOutcome::Yield;
        }
        PollOutcome::Continue
    }

    /// memory.grow: the old size in pages, or -1. A memory whose next
    /// bytes are taken moves, with room to grow into; failing that, the
    /// store compacts and tries once more.
    pub(crate) fn memory_grow(
        &mut self,
        instance: InstanceId,
        index: u32,
        delta_pages: u32,
    ) -> i32 {
        let memory = self.instances[instance.0 as usize].memory_owner(index);
        let (old_bytes, max_bytes) = self.memory_bound(memory);
        let new_bytes = old_bytes + u64::from(delta_pages) * WASM_PAGE_SIZE;
        if new_bytes > max_bytes {
            return -1;
        }
        let grown = new_bytes - old_bytes;
        if self.charge(RegionKind::LinearMemory, grown).is_err() {
            return -1;
        }
        let region = RegionRef::Memory(memory);
        let new_len = new_bytes as usize;
        if !self.region(region).grow_in_place(new_len) {
            let headroom = self.growth_headroom(new_len, max_bytes as usize);
            // This runs in the memory.grow libcall, whose trampoline
            // recorded the guest's exit.
            let exit = self.last_exit_fp();
            if !self.relocate(region, new_len, headroom, Some(exit))
                && (self.compact(Some(exit)) == 0
                    || !self.relocate(region, new_len, headroom, Some(exit)))
            {
                self.refund(grown);
                return -1;
            }
        }
        let owner = &self.instances[memory.instance.0 as usize];
        // SAFETY: the definition lies inside the owner's live vmctx.
        unsafe { (*owner.memory_def(memory.defined)).bound = new_bytes };
        (old_bytes / WASM_PAGE_SIZE) as i32
    }

    /// memory.init (also active data segments): false when out of bounds.
    pub(crate) fn memory_init(
        &mut self,
        instance: InstanceId,
        memory: u32,
        data: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let instance = &mut self.instances[instance.0 as usize];
        let module = instance.module.clone();
        let bytes: &[u8] = if instance.dropped_data[data as usize] {
            &[]
        } else {
            &module.compiled.info.data[data as usize].bytes
        };
        let Some(source) = bytes.get(src as usize..src as usize + len as usize) else {
            return false;
        };
        let Some(mut view) = instance.memory_view(memory) else {
            return false;
        };
        view.write_bytes(crate::GuestAddr(dst), source).is_ok()
    }

    /// table.grow: the old length, or -1.
    pub(crate) fn table_grow(
        &mut self,
        instance: InstanceId,
        index: u32,
        init: u64,
        delta: u32,
    ) -> i32 {
        let table = self.instances[instance.0 as usize].table_owner(index);
        let owner = &self.instances[table.instance.0 as usize];
        let def = owner.table_def(table.defined);
        let maximum = owner.tables[table.defined as usize].maximum;
        // SAFETY: the definition lies inside the owner's live vmctx.
        let old_len = unsafe { (*def).len };
        let new_len = old_len + u64::from(delta);
        if new_len > u64::from(maximum) {
            return -1;
        }
        let element = carat_jit::abi::table::ELEMENT_SIZE as u64;
        if self
            .charge(RegionKind::Table, u64::from(delta) * element)
            .is_err()
        {
            return -1;
        }
        let new_bytes = (new_len * element) as usize;
        let provider = self.provider.clone();
        let storage = &mut self.instances[table.instance.0 as usize].tables[table.defined as usize];
        if !storage.region.grow_in_place(new_bytes) {
            // Move the elements: nothing but the definition points at them.
            let Ok(region) = provider.allocate(
                RegionKind::Table,
                new_bytes,
                maximum as usize * element as usize,
                self.owner,
            ) else {
                self.refund(u64::from(delta) * element);
                return -1;
            };
            // SAFETY: both regions hold at least `old_len` elements; the
            // definition lies inside the owner's live vmctx.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    storage.region.base().cast::<u64>(),
                    region.base().cast::<u64>(),
                    old_len as usize,
                );
                (*def).base = region.base().cast();
            }
            storage.region = region;
        }
        // SAFETY: the region now holds `new_len` elements, the new ones
        // zero (null) as regions grow; only a non-null init is written,
        // so untouched pages stay uncommitted.
        unsafe {
            if init != 0 {
                let elements = storage.region.base().cast::<u64>();
                for i in old_len..new_len {
                    elements.add(i as usize).write(init);
                }
            }
            (*def).len = new_len;
        }
        old_len as i32
    }

    pub(crate) fn table_fill(
        &mut self,
        instance: InstanceId,
        table: u32,
        dst: u32,
        value: u64,
        len: u32,
    ) -> bool {
        // SAFETY: used before anything can move or grow.
        let elements = unsafe { self.instances[instance.0 as usize].table_elements(table) };
        let Some(range) = elements.get_mut(dst as usize..dst as usize + len as usize) else {
            return false;
        };
        range.fill(value);
        true
    }

    pub(crate) fn table_copy(
        &mut self,
        instance: InstanceId,
        dst_table: u32,
        src_table: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let instance = &self.instances[instance.0 as usize];
        let (dst, src, len) = (dst as usize, src as usize, len as usize);
        // Raw parts, not slices: the two may be the same table.
        let (src_base, src_len) = instance.table_parts(src_table);
        let (dst_base, dst_len) = instance.table_parts(dst_table);
        let fits = |start: usize, table_len: usize| {
            start.checked_add(len).is_some_and(|end| end <= table_len)
        };
        if !fits(src, src_len) || !fits(dst, dst_len) {
            return false;
        }
        // SAFETY: both ranges were checked against their live tables; they
        // may overlap (same table), which `copy` allows.
        unsafe { std::ptr::copy(src_base.add(src), dst_base.add(dst), len) };
        true
    }

    /// table.init (also active element segments): false when out of bounds.
    pub(crate) fn table_init(
        &mut self,
        instance: InstanceId,
        table: u32,
        element: u32,
        dst: u32,
        src: u32,
        len: u32,
    ) -> bool {
        let instance = &self.instances[instance.0 as usize];
        let module = instance.module.clone();
        let items: &[ConstExpr] = if instance.dropped_elements[element as usize] {
            &[]
        } else {
            &module.compiled.info.elements[element as usize].items
        };
        let Some(items) = items.get(src as usize..src as usize + len as usize) else {
            return false;
        };
        // SAFETY: used before anything can move or grow.
        let elements = unsafe { instance.table_elements(table) };
        let Some(range) = elements.get_mut(dst as usize..dst as usize + len as usize) else {
            return false;
        };
        for (slot, item) in range.iter_mut().zip(items) {
            *slot = instance.const_slot(*item);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carat_jit::abi::Libcall;

    #[test]
    fn table_follows_libcall_order() {
        assert_eq!(
            std::mem::size_of::<LibcallTable>(),
            (Libcall::ALL.len() + 2) * std::mem::size_of::<usize>()
        );
        let bridge = &LIBCALLS.host_bridge as *const _ as usize;
        let switch = &LIBCALLS.stack_switch as *const _ as usize;
        let base_of = |field: usize| field - &LIBCALLS as *const LibcallTable as usize;
        assert_eq!(
            base_of(bridge),
            carat_jit::abi::HOST_BRIDGE_TABLE_OFFSET as usize
        );
        assert_eq!(
            base_of(switch),
            carat_jit::abi::STACK_SWITCH_TABLE_OFFSET as usize
        );
        let base = &LIBCALLS as *const LibcallTable as usize;
        let poll = &LIBCALLS.poll_slow as *const _ as usize;
        assert_eq!(poll - base, Libcall::PollSlow.table_offset() as usize);
        let grow = &LIBCALLS.memory_grow as *const _ as usize;
        assert_eq!(grow - base, Libcall::MemoryGrow.table_offset() as usize);
    }
}
