//! The binary contract between JIT code and the runtime.
//!
//! JIT code reaches everything it needs through one pointer, the vmctx, at
//! fixed offsets that this module defines. guest-runtime declares the
//! matching `#[repr(C)]` structs and checks them against these constants
//! with `offset_of!` tests, so the two sides cannot drift apart silently.
//!
//! Layout of a vmctx (all offsets in bytes, every field 8-byte aligned):
//!
//! ```text
//! header        fixed fields (`vmctx::*`)
//! funcrefs      one VMFuncRef per function, imported functions first
//! memory imports  one pointer to the exporter's VMMemoryDefinition each
//! memory defs   one VMMemoryDefinition per defined memory
//! table imports one pointer to the exporter's VMTableDefinition each
//! table defs    one VMTableDefinition per defined table
//! global imports  one pointer to the exporter's global slot each
//! global defs   one 8-byte slot per defined global
//! type ids      the engine's id of each of the module's types, 4 bytes
//!               each: what `call_indirect` compares a funcref's against
//! ```
//!
//! The type ids are read from the vmctx, not built into the code, so a
//! compiled module does not depend on the order in which one VM happened
//! to meet its types: it can be saved and loaded into another VM (AOT
//! and the compile cache).
//!
//! Every absolute pointer the VM stores lives in one of these places (or in
//! the VMStoreContext), which is what makes relocation's pointer patching
//! precise: guest data only ever holds offsets into its linear memory.

/// Size of a pointer on every supported target.
pub const POINTER_SIZE: u32 = 8;

/// Size of a type id in the vmctx and in a funcref record.
pub const TYPE_ID_SIZE: u32 = 4;

/// Size of one value slot in the host <-> wasm value arrays.
pub const VALUE_SLOT_SIZE: u32 = 8;

/// Size of a wasm page.
pub const WASM_PAGE_SIZE: u64 = 65536;

/// Addresses below this are never mapped, so an access there faults: a
/// guard that fails masks its access's address to null, and the access,
/// at most this far past null, faults instead of touching memory (the
/// signal handler turns that fault into `out of bounds memory access`).
/// Linux maps nothing below `vm.mmap_min_addr`, 65,536 by default; the
/// runtime checks at start-up that it is at least this.
pub const NULL_TRAP_BYTES: u64 = 4096;

/// Bytes of the speculation sink (see [`store_context::SPECULATION_SINK`]):
/// room for any 32-bit index plus an immediate offset below 2^31 plus an
/// access's size, so a sunk access stays inside it whatever its index.
pub const SPECULATION_SINK_BYTES: u64 = 1 << 33;

/// The largest number of pages a 32-bit linear memory can have.
pub const WASM32_MAX_PAGES: u64 = 65536;

/// Fixed header fields of every vmctx.
pub mod vmctx {
    /// `*mut VMStoreContext`: the per-process limits (stack limit, interrupt
    /// word, fuel) shared by every instance of a store.
    pub const STORE_CONTEXT: i32 = 0;
    /// `*const LibcallTable`: the runtime functions JIT code may call.
    pub const LIBCALLS: i32 = 8;
    /// `*mut c_void`: the host-side store (process) the instance belongs
    /// to; opaque to JIT code. Stores live on the host heap and never move.
    pub const STORE: i32 = 16;
    /// `u64`: a magic number that identifies a wasm vmctx (against a host
    /// function context) when the runtime walks frames.
    pub const MAGIC: i32 = 24;
    /// `u32`: the instance's index among its store's instances; with
    /// `STORE`, what libcalls and host calls resolve a vmctx to.
    pub const INSTANCE_ID: i32 = 32;
    /// Size of the fixed header.
    pub const HEADER_SIZE: u32 = 40;
    /// The value stored at `MAGIC`.
    pub const MAGIC_VALUE: u64 = u64::from_le_bytes(*b"caratvmx");
}

/// Fields of the per-store `VMStoreContext`.
pub mod store_context {
    /// `u64`: non-zero asks every process of the store to stop at its next
    /// poll. The value says why (see `InterruptReason` in guest-runtime).
    pub const INTERRUPT: i32 = 0;
    /// `usize`: the lowest stack pointer JIT frames may use. The prologue of
    /// every wasm function checks its frame against it.
    pub const STACK_LIMIT: i32 = 8;
    /// `i64`: fuel left; JIT code subtracts per basic block.
    pub const FUEL: i32 = 16;
    /// `usize`: the frame pointer of the trampoline through which wasm code
    /// last left for the host (a libcall or a host function). While the
    /// guest is out, walking frames from here finds every wasm frame.
    pub const LAST_EXIT_FP: i32 = 24;
    /// `usize`: the start of the speculation sink, an inaccessible
    /// reservation of [`SPECULATION_SINK_BYTES`](super::SPECULATION_SINK_BYTES)
    /// that a versioned loop's accesses are sent into on a mispredicted
    /// path (see `translate::versioning`). Never changes.
    pub const SPECULATION_SINK: i32 = 32;
    /// `*mut u64`: where wasm functions pass the results that do not fit in
    /// return registers (see [`results`](super::results)); null until the
    /// store instantiates a module with such a function type. It is host
    /// heap, never arena, so it does not move, and it never changes once
    /// set: code may read it before a call that parks and use it after.
    pub const RESULT_SPILL: i32 = 40;
    /// `*mut` the running fiber's switch record ([`fiber_record`](super::fiber_record)):
    /// how trampolines reach the host stack and park the guest. Set by
    /// each resume of one of the store's fibers (and restored after), so
    /// a trampoline reads it before the call that may park and uses it
    /// after: the record lives on the heap and does not move.
    pub const FIBER: i32 = 48;
    /// `usize`: the lowest stack pointer at which a function that calls
    /// others may start without the stack growing first: the stack limit
    /// plus the largest frame of the store's code, so that every frame
    /// until the next such function's entry fits above the limit. Every
    /// calling function compares its stack pointer with it at entry, with
    /// its poll; below it, the poll's slow path grows the stack (see
    /// `stacks` in guest-runtime) or reports it exhausted. Set at each
    /// resume and each growth. Equal to the limit on a stack that cannot
    /// grow.
    pub const STACK_SOFT_LIMIT: i32 = 56;
    /// `usize`: the store's largest frame (runtime only: what
    /// `STACK_SOFT_LIMIT` adds to the limit).
    pub const STACK_MARGIN: i32 = 64;
    /// Size of the struct.
    pub const SIZE: u32 = 72;
}

/// Fields of a fiber's switch record (`stack_switch::SwitchRecord`).
pub mod fiber_record {
    /// `usize`: where the fiber resumes while it is switched out.
    pub const FIBER_SP: i32 = 0;
    /// `usize`: its resumer's stack pointer while it runs.
    pub const RESUMER_SP: i32 = 8;
    /// `usize`: the guest stack's pointer while host code runs for it.
    pub const GUEST_SP: i32 = 16;
    /// `usize`: the top of the stack host code runs on (0: below the
    /// resumer's stack pointer).
    pub const HOST_TOP: i32 = 24;
    /// `usize`: 1 while host code runs for the fiber.
    pub const ON_HOST: i32 = 32;
}

/// What a stack switch passes: to a fiber when it is resumed, and to its
/// resumer when the fiber switches back.
pub mod switch_status {
    pub const RESUMED: u64 = 0;
    /// The fiber's body returned.
    pub const FINISHED: u64 = 1;
    /// The fiber parked; it may be resumed.
    pub const SUSPENDED: u64 = 2;
    /// A trap ended the fiber.
    pub const TRAPPED: u64 = 3;
}

/// What a host function's entry returns to its trampoline.
pub mod host_status {
    /// Results written; return them.
    pub const DONE: u32 = 0;
    /// Raise the `HostCall` trap (the error waits in the runtime).
    pub const TRAP: u32 = 1;
    /// Results written; park the guest, then return them. The host call
    /// has returned, so nothing of it stays on any stack while the guest
    /// waits.
    pub const PARK: u32 = 2;
}

/// What the poll's slow path returns to its trampoline.
pub mod poll_status {
    pub const CONTINUE: u32 = 0;
    /// Raise the `Interrupted` trap.
    pub const INTERRUPTED: u32 = 1;
    /// Raise the `OutOfFuel` trap.
    pub const OUT_OF_FUEL: u32 = 2;
    /// Park the guest (a scheduler asked it to yield), then go on.
    pub const YIELD: u32 = 3;
    /// Raise the `StackOverflow` trap: the stack is short and cannot grow.
    pub const STACK_EXHAUSTED: u32 = 4;
}

/// Arguments the host bridge passes through to the runtime function it
/// calls on the host stack: every libcall (its vmctx and at most five
/// more) and every host entry (three) fits.
pub const HOST_BRIDGE_ARGS: usize = 6;

/// Offset in the `LibcallTable`, after the libcalls, of the host bridge:
/// `extern "C" fn(a0, .., a5, target, record) -> u64`, which calls
/// `target(a0, .., a5)` on the fiber's host stack (see
/// `stack_switch`).
pub const HOST_BRIDGE_TABLE_OFFSET: i32 = (Libcall::ALL.len() as u32 * POINTER_SIZE) as i32;

/// Offset in the `LibcallTable` of the stack switch:
/// `extern "C" fn(save: *mut usize, to: usize, value: u64) -> u64`.
/// Trampolines park their guest with `switch(record + FIBER_SP,
/// record.RESUMER_SP, SUSPENDED)`.
pub const STACK_SWITCH_TABLE_OFFSET: i32 = HOST_BRIDGE_TABLE_OFFSET + POINTER_SIZE as i32;

const _: () = {
    let mut i = 0;
    while i < Libcall::ALL.len() {
        assert!(Libcall::ALL[i].params().len() < HOST_BRIDGE_ARGS);
        i += 1;
    }
};

/// How wasm functions return their results.
///
/// The first [`INT_REGISTERS`] integer-class results (i32, i64,
/// references) and the first [`FLOAT_REGISTERS`] float-class results go
/// in return registers; the rest are *spilled*: the callee writes them, in
/// order, into the store's result spill area (`store_context::RESULT_SPILL`),
/// one [`VALUE_SLOT_SIZE`](super::VALUE_SLOT_SIZE) slot each, just before it
/// returns, and the caller reads them just after. Nothing runs in between,
/// so one area per store serves every call.
///
/// Why not Cranelift's own way: a signature with more results than return
/// registers takes a hidden pointer to a return area in the caller's
/// frame, and the callee keeps that stack address in a register or spill
/// slot across its own calls, where nothing describes it. A stack that
/// moves (issue 13) must find every pointer into it; so no wasm signature
/// has more results than registers, and Cranelift's implicit return area
/// is switched off (a signature that still needed one fails to compile).
pub mod results {
    use crate::module_info::ValType;

    /// Integer-class results returned in registers (the fewest of every
    /// supported target's conventions: two on x86-64 System V).
    pub const INT_REGISTERS: usize = 2;
    /// Float-class results returned in registers.
    pub const FLOAT_REGISTERS: usize = 2;
    /// The most results a function type may have (wasmparser's limit).
    pub const MAX: usize = 1000;
    /// Bytes of a store's spill area: room for every result of any type.
    pub const SPILL_AREA_BYTES: usize = MAX * super::VALUE_SLOT_SIZE as usize;

    /// Where each of `results` goes: `None` for a return register, or its
    /// slot in the spill area.
    pub fn locations(results: &[ValType]) -> Vec<Option<u32>> {
        let (mut ints, mut floats, mut spilled) = (0, 0, 0);
        results
            .iter()
            .map(|ty| {
                let (used, limit) = if matches!(ty, ValType::F32 | ValType::F64) {
                    (&mut floats, FLOAT_REGISTERS)
                } else {
                    (&mut ints, INT_REGISTERS)
                };
                if *used < limit {
                    *used += 1;
                    None
                } else {
                    spilled += 1;
                    Some(spilled - 1)
                }
            })
            .collect()
    }

    /// Where spill slot `slot` lies in the spill area.
    pub fn spill_offset(slot: u32) -> i32 {
        (slot * super::VALUE_SLOT_SIZE) as i32
    }

    /// Whether a function of these results spills any.
    pub fn spills(results: &[ValType]) -> bool {
        locations(results).iter().any(Option::is_some)
    }
}

/// Fields of a `VMMemoryDefinition`.
pub mod memory {
    /// `*mut u8`: the first byte of the linear memory.
    pub const BASE: i32 = 0;
    /// `u64`: the accessible length in bytes; what CARAT guards check.
    pub const BOUND: i32 = 8;
    /// Size of the struct.
    pub const SIZE: u32 = 16;
}

/// Fields of a `VMTableDefinition`.
pub mod table {
    /// `*mut u64`: the first element; each element is one 8-byte reference.
    pub const BASE: i32 = 0;
    /// `u64`: the current number of elements.
    pub const LEN: i32 = 8;
    /// Size of the struct.
    pub const SIZE: u32 = 16;
    /// Size of one element.
    pub const ELEMENT_SIZE: u32 = 8;
}

/// Fields of a `VMFuncRef`: what a `funcref` value points at.
pub mod funcref {
    /// `*const u8`: code to call with the wasm calling convention.
    pub const FUNC_PTR: i32 = 0;
    /// `*mut u8`: the callee's vmctx (or host function context).
    pub const VMCTX: i32 = 8;
    /// `u32`: the engine-wide id of the function's signature.
    pub const TYPE_ID: i32 = 16;
    /// Size of the struct.
    pub const SIZE: u32 = 24;
}

/// Fields of a `VMHostFuncContext`: the "vmctx" of a host function.
pub mod host_func {
    /// `extern "C" fn(ctx, caller_vmctx, values: *mut u64) -> u32`: the host
    /// entry. A non-zero return means the call must not return to wasm.
    pub const HOST_CALL: i32 = 0;
    /// `u64`: the magic number below, to tell it from a wasm vmctx.
    pub const MAGIC: i32 = 8;
    /// The value stored at `MAGIC`.
    pub const MAGIC_VALUE: u64 = u64::from_le_bytes(*b"carathst");
}

/// Every runtime function JIT code may call, in `LibcallTable` order:
/// its field name in the runtime's table, its [`Libcall`] variant, and its
/// parameters after the caller's vmctx (which every one takes first) and
/// result, in [`LibcallType`] words (`u32`, `u64`, `ptr`, or `()` for no
/// result).
///
/// This list is the one definition of the libcall ABI: the [`Libcall`]
/// enum, the translator's signatures and the runtime's table of function
/// pointers are all generated from it, so their order and their
/// signatures cannot drift apart. Those returning a status return 0 for
/// success and 1 for the trap the JIT code raises after the call.
#[macro_export]
macro_rules! foreach_libcall {
    ($mac:ident) => {
        $mac! {
            /// memory.grow: the old size in pages, or -1.
            memory_grow MemoryGrow (memory: u32, delta_pages: u32) -> u32;
            /// memory.init: a status.
            memory_init MemoryInit (memory: u32, data: u32, dst: u32, src: u32, len: u32) -> u32;
            /// data.drop.
            data_drop DataDrop (data: u32) -> ();
            /// memmove of two ranges the JIT code has already guarded.
            memory_copy MemoryCopy (dst: ptr, src: ptr, len: u64) -> ();
            /// memset of a range the JIT code has already guarded.
            memory_fill MemoryFill (dst: ptr, byte: u32, len: u64) -> ();
            /// table.grow: the old length, or -1.
            table_grow TableGrow (table: u32, init: u64, delta: u32) -> u32;
            /// table.fill: a status.
            table_fill TableFill (table: u32, dst: u32, value: u64, len: u32) -> u32;
            /// table.copy: a status.
            table_copy TableCopy (dst_table: u32, src_table: u32, dst: u32, src: u32, len: u32) -> u32;
            /// table.init: a status.
            table_init TableInit (table: u32, element: u32, dst: u32, src: u32, len: u32) -> u32;
            /// elem.drop.
            elem_drop ElemDrop (element: u32) -> ();
            /// The slow path of a poll: 0 to go on, 1 to stop for an
            /// interrupt, 2 to stop because the fuel is used up.
            poll_slow PollSlow () -> u32;
        }
    };
}

/// The words a libcall's parameters and result are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LibcallType {
    U32,
    U64,
    /// A host address (8 bytes).
    Ptr,
}

/// Maps a type word of [`foreach_libcall!`] to a [`LibcallType`].
#[macro_export]
#[doc(hidden)]
macro_rules! libcall_type {
    (u32) => {
        Some($crate::abi::LibcallType::U32)
    };
    (u64) => {
        Some($crate::abi::LibcallType::U64)
    };
    (ptr) => {
        Some($crate::abi::LibcallType::Ptr)
    };
    (()) => {
        None
    };
}

macro_rules! define_libcall_enum {
    ($($(#[$doc:meta])* $name:ident $variant:ident ($($arg:ident: $ty:tt),*) -> $ret:tt;)*) => {
        /// Runtime functions callable from JIT code, by index into the
        /// `LibcallTable` that `vmctx::LIBCALLS` points at; see
        /// [`foreach_libcall!`]. JIT code reaches each through a
        /// per-module trampoline that records `LAST_EXIT_FP` first, so
        /// every call out of wasm is a walkable safepoint.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u32)]
        pub enum Libcall {
            $($(#[$doc])* $variant,)*
        }

        impl Libcall {
            /// Every libcall, in table order.
            pub const ALL: &'static [Libcall] = &[$(Libcall::$variant,)*];

            /// The runtime's name for it (its field in the table).
            pub fn name(self) -> &'static str {
                match self {
                    $(Libcall::$variant => stringify!($name),)*
                }
            }

            /// Its parameters after the vmctx.
            pub const fn params(self) -> &'static [LibcallType] {
                match self {
                    $(Libcall::$variant => {
                        const PARAMS: &[LibcallType] = &[$(match libcall_type!($ty) {
                            Some(t) => t,
                            None => panic!(concat!("libcall parameter `", stringify!($arg), "` has no type")),
                        },)*];
                        PARAMS
                    })*
                }
            }

            /// Its result, if it has one.
            pub fn result(self) -> Option<LibcallType> {
                match self {
                    $(Libcall::$variant => libcall_type!($ret),)*
                }
            }
        }
    };
}

foreach_libcall!(define_libcall_enum);

impl Libcall {
    /// Offset of this libcall's pointer in the `LibcallTable`.
    pub fn table_offset(self) -> i32 {
        (self as u32 * POINTER_SIZE) as i32
    }

    /// Whether wasm code calls this libcall's trampoline with the
    /// preserve-all convention: the call site clobbers no register, and
    /// the trampoline turns the runtime's non-zero status into a trap
    /// itself (so it returns nothing). Only the poll's slow path: a call
    /// at every loop header would otherwise make every value live across
    /// the loop (floats above all, none of which survive a System V call)
    /// sit in a stack slot, although the call is almost never taken.
    pub fn preserves_registers(self) -> bool {
        self == Libcall::PollSlow
    }
}

/// Where each per-module array of a vmctx starts, computed from the counts
/// of the module's entities.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VmctxLayout {
    num_functions: u32,
    num_imported_memories: u32,
    num_defined_memories: u32,
    num_imported_tables: u32,
    num_defined_tables: u32,
    num_imported_globals: u32,
    num_defined_globals: u32,
    funcrefs: u32,
    memory_imports: u32,
    memory_defs: u32,
    table_imports: u32,
    table_defs: u32,
    global_imports: u32,
    global_defs: u32,
    num_types: u32,
    type_ids: u32,
    size: u32,
}

/// The kinds of entity an instance may share with another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SharedKind {
    Memory,
    Table,
    Global,
}

/// Where a vmctx reaches a memory definition, table definition or global
/// slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Location {
    /// Imported: the vmctx holds a pointer to the exporter's at this offset.
    Import(u32),
    /// Defined here: it lies in the vmctx at this offset.
    Local(u32),
}

/// How many entities of each kind a module has, imported and defined.
#[derive(Clone, Copy, Debug, Default)]
pub struct EntityCounts {
    pub functions: u32,
    pub imported_memories: u32,
    pub defined_memories: u32,
    pub imported_tables: u32,
    pub defined_tables: u32,
    pub imported_globals: u32,
    pub defined_globals: u32,
    pub types: u32,
}

impl VmctxLayout {
    pub fn new(counts: EntityCounts) -> Self {
        let mut at = vmctx::HEADER_SIZE;
        let mut section = |count: u32, size: u32| {
            let start = at;
            at += count * size;
            start
        };
        let funcrefs = section(counts.functions, funcref::SIZE);
        let memory_imports = section(counts.imported_memories, POINTER_SIZE);
        let memory_defs = section(counts.defined_memories, memory::SIZE);
        let table_imports = section(counts.imported_tables, POINTER_SIZE);
        let table_defs = section(counts.defined_tables, table::SIZE);
        let global_imports = section(counts.imported_globals, POINTER_SIZE);
        let global_defs = section(counts.defined_globals, VALUE_SLOT_SIZE);
        let type_ids = section(counts.types, TYPE_ID_SIZE);
        at = at.next_multiple_of(POINTER_SIZE);
        VmctxLayout {
            num_functions: counts.functions,
            num_imported_memories: counts.imported_memories,
            num_defined_memories: counts.defined_memories,
            num_imported_tables: counts.imported_tables,
            num_defined_tables: counts.defined_tables,
            num_imported_globals: counts.imported_globals,
            num_defined_globals: counts.defined_globals,
            funcrefs,
            memory_imports,
            memory_defs,
            table_imports,
            table_defs,
            global_imports,
            global_defs,
            num_types: counts.types,
            type_ids,
            size: at,
        }
    }

    /// Total size of the vmctx in bytes.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// The VMFuncRef of function `index` (imported or defined).
    pub fn funcref(&self, index: u32) -> u32 {
        assert!(index < self.num_functions);
        self.funcrefs + index * funcref::SIZE
    }

    /// The function whose VMFuncRef starts at `offset`, if one does: the
    /// inverse of [`Self::funcref`].
    pub fn funcref_at(&self, offset: u64) -> Option<u32> {
        let within = offset.checked_sub(u64::from(self.funcrefs))?;
        let size = u64::from(funcref::SIZE);
        let index = within / size;
        (within % size == 0 && index < u64::from(self.num_functions)).then_some(index as u32)
    }

    /// The pointer to the exporter's definition of imported memory `index`.
    pub fn memory_import(&self, index: u32) -> u32 {
        assert!(index < self.num_imported_memories);
        self.memory_imports + index * POINTER_SIZE
    }

    /// The VMMemoryDefinition of defined memory `index` (counted among the
    /// defined memories only).
    pub fn memory_def(&self, defined_index: u32) -> u32 {
        assert!(defined_index < self.num_defined_memories);
        self.memory_defs + defined_index * memory::SIZE
    }

    /// The pointer to the exporter's definition of imported table `index`.
    pub fn table_import(&self, index: u32) -> u32 {
        assert!(index < self.num_imported_tables);
        self.table_imports + index * POINTER_SIZE
    }

    /// The VMTableDefinition of defined table `defined_index`.
    pub fn table_def(&self, defined_index: u32) -> u32 {
        assert!(defined_index < self.num_defined_tables);
        self.table_defs + defined_index * table::SIZE
    }

    /// The pointer to the exporter's slot of imported global `index`.
    pub fn global_import(&self, index: u32) -> u32 {
        assert!(index < self.num_imported_globals);
        self.global_imports + index * POINTER_SIZE
    }

    /// The slot of defined global `defined_index`.
    pub fn global_def(&self, defined_index: u32) -> u32 {
        assert!(defined_index < self.num_defined_globals);
        self.global_defs + defined_index * VALUE_SLOT_SIZE
    }

    /// The engine's id of the module's type `index`.
    pub fn type_id(&self, index: u32) -> u32 {
        assert!(index < self.num_types);
        self.type_ids + index * TYPE_ID_SIZE
    }

    /// Where entity `index` (counting imports first) of `kind` is reached.
    pub fn locate(&self, kind: SharedKind, index: u32) -> Location {
        type Offset = fn(&VmctxLayout, u32) -> u32;
        let (imported, import, local): (u32, Offset, Offset) = match kind {
            SharedKind::Memory => (
                self.num_imported_memories,
                Self::memory_import,
                Self::memory_def,
            ),
            SharedKind::Table => (
                self.num_imported_tables,
                Self::table_import,
                Self::table_def,
            ),
            SharedKind::Global => (
                self.num_imported_globals,
                Self::global_import,
                Self::global_def,
            ),
        };
        if index < imported {
            Location::Import(import(self, index))
        } else {
            Location::Local(local(self, index - imported))
        }
    }

    pub fn num_imported_memories(&self) -> u32 {
        self.num_imported_memories
    }

    pub fn num_imported_tables(&self) -> u32 {
        self.num_imported_tables
    }

    pub fn num_imported_globals(&self) -> u32 {
        self.num_imported_globals
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sections_follow_each_other_without_overlap() {
        let layout = VmctxLayout::new(EntityCounts {
            functions: 3,
            imported_memories: 1,
            defined_memories: 1,
            imported_tables: 2,
            defined_tables: 1,
            imported_globals: 1,
            defined_globals: 4,
            types: 3,
        });
        assert_eq!(layout.funcref(0), vmctx::HEADER_SIZE);
        assert_eq!(layout.memory_import(0), layout.funcref(2) + funcref::SIZE);
        assert_eq!(layout.memory_def(0), layout.memory_import(0) + POINTER_SIZE);
        assert_eq!(layout.table_import(0), layout.memory_def(0) + memory::SIZE);
        assert_eq!(layout.table_def(0), layout.table_import(1) + POINTER_SIZE);
        assert_eq!(layout.global_import(0), layout.table_def(0) + table::SIZE);
        assert_eq!(layout.global_def(0), layout.global_import(0) + POINTER_SIZE);
        assert_eq!(layout.type_id(0), layout.global_def(3) + VALUE_SLOT_SIZE);
        // Three 4-byte ids, padded to the next 8.
        assert_eq!(layout.size(), layout.type_id(2) + TYPE_ID_SIZE + 4);
        assert_eq!(layout.size() % 8, 0);
    }

    #[test]
    fn libcall_offsets_follow_table_order() {
        for (i, call) in Libcall::ALL.iter().enumerate() {
            assert_eq!(call.table_offset(), i as i32 * 8);
        }
        assert_eq!(Libcall::PollSlow.params(), &[]);
        assert_eq!(Libcall::PollSlow.result(), Some(LibcallType::U32));
        assert_eq!(
            Libcall::MemoryCopy.params(),
            &[LibcallType::Ptr, LibcallType::Ptr, LibcallType::U64]
        );
        assert_eq!(Libcall::DataDrop.result(), None);
    }
}
