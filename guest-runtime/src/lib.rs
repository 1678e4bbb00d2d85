//! carat-guest-runtime: what runs in a guest's context.
//!
//! It owns the vmctx structures JIT code reads, executable code memory,
//! instantiation and linking, the libcalls, host functions, fibers and the
//! signal handler that turns faults into traps. It does not decide where
//! guest memory lives, nor when it moves: a [`regions::RegionProvider`]
//! (the supervisor's arena, or the paging backend) hands it regions, and
//! a [`relocate::RelocationPolicy`] says when they move.
//!
//! Module map: `handles` (ids and errors), `store` (a process's state and
//! its ownership rules), `instance` (one instance and its vmctx),
//! `instantiate`, `call` (plain and resumable calls), `libcalls`, `host`
//! (host functions and their caller), `relocate` (moving regions and
//! patching pointers), `fiber`, `stack_switch`, `stacks`, `frames`, `code`, `signals`, `mappings`,
//! `memory_view`, `values`, `vmctx`, `regions`.

pub mod call;
pub mod code;
pub mod fiber;
pub mod frames;
pub mod handles;
pub mod host;
pub mod instance;
pub mod instantiate;
pub mod libcalls;
pub mod mappings;
pub mod memory_view;
pub mod regions;
pub mod relocate;
pub mod signals;
pub mod stack_switch;
pub mod stacks;
pub mod store;
pub mod values;
pub mod vmctx;

pub use call::{CallProgress, GuestCall};
pub use code::{Frame, LoadedModule, WasmBacktrace};
pub use frames::WasmFrame;
pub use handles::{Entity, ExecError, Extern, Func, InstanceId, InstantiationError, StoreLimits};
pub use host::{Caller, HostError, HostFnBox, HostFunc, SharedHostFunc};
pub use instance::Instance;
pub use memory_view::{GuestAddr, MemoryView, OutOfBounds};
pub use regions::{AllocError, HeapRegion, Region, RegionKind, RegionProvider, SharedBudget};
pub use relocate::{RegionRef, Relocation, RelocationPolicy, RelocationStats};
pub use store::{InterruptHandle, Store};
pub use values::{FuncRef, Val};
