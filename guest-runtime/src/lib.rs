//! carat-guest-runtime: what runs in a guest's context.
//!
//! It owns the vmctx structures JIT code reads, executable code memory,
//! instantiation and linking, the libcalls, host functions, fibers and the
//! signal handler that turns faults into traps. It does not decide where
//! guest memory lives: a [`regions::RegionProvider`] (the supervisor's
//! arena, or the paging backend) hands it regions.

pub mod code;
pub mod fiber;
pub mod frames;
pub mod host;
pub mod instance;
pub mod libcalls;
pub mod memory_view;
pub mod regions;
pub mod relocate;
pub mod signals;
pub mod values;
pub mod vmctx;

pub use frames::WasmFrame;
pub use host::{Caller, HostError, HostFnBox};
pub use instance::{
    CallProgress, Entity, ExecError, Extern, Func, GuestCall, Instance, InstanceId,
    InstantiationError, InterruptHandle, LoadedModule, Store, StoreLimits,
};
pub use memory_view::{GuestAddr, MemoryView, OutOfBounds};
pub use regions::{AllocError, HeapRegion, Region, RegionKind, RegionProvider};
pub use relocate::{RegionRef, RelocationStats};
pub use values::{FuncRef, Val};
