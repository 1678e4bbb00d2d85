//! Relocation: moving a live region of a store and patching every pointer
//! into it, while its guest is stopped at a safepoint.
//!
//! Guest-visible addresses are offsets into linear memories, so the only
//! absolute pointers into a region are the VM's own, and the VM knows
//! where each kind lives. That is the escape map, kept as structure rather
//! than as a list: for every region of a store, the locations that may
//! hold a pointer into it are
//!
//! - in every instance's vmctx: the header's store-context pointer, each
//!   funcref record's vmctx, each import record (memory, table and global
//!   definitions of other instances), each defined memory's and table's
//!   base, and each funcref global;
//! - every element of every funcref table (a pointer to a funcref record
//!   in some vmctx of the store);
//! - the store's [`ContextHome`](crate::fiber::ContextHome), the
//!   supervisor's record of where the store context is;
//! - the stack-map slots of every parked wasm frame of the store: the
//!   vmctx each frame uses and the funcref values it holds.
//!
//! Table elements change with every `table.set`, which JIT code does
//! inline; rather than log each write, relocation reads the current value
//! of every such location and moves it if it points into the old range.
//! The locations are known exactly, so no value is ever mistaken for a
//! pointer (externref tables and numeric globals are never looked at),
//! and a move looks only at the locations that can point into a region
//! of its kind (a memory's move reads memory bases, not table elements).
//! The map is current by construction: it is computed from the store's
//! layouts at the moment of the move.
//!
//! A move happens only where every frame of the store is described: on the
//! store's own thread, either inside a libcall of the running guest (whose
//! exit record the caller passes) or between calls, with every suspended
//! call parked at a poll or host call, whose exit records the store keeps.
//! Host code holds no arena pointer across those points (see `fiber`,
//! `host`); JIT code reloads memory bases after every call and keeps the
//! vmctx and funcrefs in stack-map slots, so what is patched here is what
//! the guest uses when it resumes.
//!
//! *When* regions move is the supervisor's decision, not the runtime's: a
//! store consults its backend's [`RelocationPolicy`] at the three points
//! where a move can happen (a growth that finds no room, a poll, a park)
//! and carries out what it says here.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use carat_jit::ValType;
use carat_jit::abi::{self, WASM_PAGE_SIZE};

use crate::handles::Entity;
use crate::instance::Instance;
use crate::regions::Region;
use crate::store::{StoreInner, lock_parked};

/// When a store's regions move. The supervisor implements it; the store
/// asks it at growth, at polls and at parks.
pub trait RelocationPolicy: Send + Sync + std::fmt::Debug {
    /// Growth: the room to leave after a memory of `len` bytes, which may
    /// grow to `max` bytes, when it moves (because growth found the bytes
    /// after it taken, or by compaction or stress). The default leaves
    /// as much again, so repeated growth moves it a logarithmic number of
    /// times.
    fn growth_headroom(&self, len: usize, max: usize) -> usize {
        len.min(max.saturating_sub(len))
    }

    /// Polls: move every region of a store at every this many of its
    /// polls (0: never). The stress schedule tests use.
    fn stress_every(&self) -> u64 {
        0
    }

    /// Parks: whether a store whose call just parked should compact its
    /// memories now (move them to the lowest free ranges that hold them).
    fn compact_at_park(&self) -> bool {
        false
    }
}

/// What a backend whose regions can move gives its stores.
#[derive(Clone, Debug)]
pub struct Relocation {
    pub counters: Arc<RelocationCounters>,
    pub policy: Arc<dyn RelocationPolicy>,
}

/// Relocation figures, as `--stats` reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RelocationStats {
    pub relocations: u64,
    pub bytes_moved: u64,
    /// Pointers patched outside stack frames.
    pub escapes_patched: u64,
    /// Parked wasm frames with at least one patched slot.
    pub frames_patched: u64,
    /// Stacks grown, by moving, at a function entry that found them short.
    pub stacks_grown: u64,
}

/// Counters a memory backend shares with the stores that move its regions.
#[derive(Debug, Default)]
pub struct RelocationCounters {
    relocations: AtomicU64,
    bytes_moved: AtomicU64,
    escapes_patched: AtomicU64,
    frames_patched: AtomicU64,
    stacks_grown: AtomicU64,
}

impl RelocationCounters {
    pub(crate) fn add(&self, done: RelocationStats) {
        self.relocations
            .fetch_add(done.relocations, Ordering::Relaxed);
        self.bytes_moved
            .fetch_add(done.bytes_moved, Ordering::Relaxed);
        self.escapes_patched
            .fetch_add(done.escapes_patched, Ordering::Relaxed);
        self.frames_patched
            .fetch_add(done.frames_patched, Ordering::Relaxed);
        self.stacks_grown
            .fetch_add(done.stacks_grown, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> RelocationStats {
        RelocationStats {
            relocations: self.relocations.load(Ordering::Relaxed),
            bytes_moved: self.bytes_moved.load(Ordering::Relaxed),
            escapes_patched: self.escapes_patched.load(Ordering::Relaxed),
            frames_patched: self.frames_patched.load(Ordering::Relaxed),
            stacks_grown: self.stacks_grown.load(Ordering::Relaxed),
        }
    }
}

/// A region that has moved: pointers into `old..old + len` move by
/// `new - old`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Move {
    pub old: usize,
    pub len: usize,
    pub new: usize,
}

impl Move {
    /// Moves the pointer stored at `location` if it points into the old
    /// range; returns whether it did.
    ///
    /// # Safety
    /// `location` must be a live, aligned word that the VM owns and that
    /// holds a pointer or null: one of the escape locations listed above.
    pub unsafe fn patch(&self, location: *mut u64) -> bool {
        // SAFETY: per the contract.
        let value = unsafe { *location } as usize;
        if value.wrapping_sub(self.old) >= self.len {
            return false;
        }
        // SAFETY: as above.
        unsafe { *location = (value - self.old + self.new) as u64 };
        true
    }

    /// Patches the stack-map slots of every wasm frame parked below each
    /// exit record; returns how many frames had a slot patched.
    ///
    /// # Safety
    /// Each exit must be the exit record of a guest of the moving store
    /// that is stopped in that exit now (see `frames::walk`).
    pub unsafe fn patch_frames(&self, exits: impl IntoIterator<Item = usize>) -> u64 {
        let mut frames = 0;
        for exit in exits {
            // SAFETY: per the contract.
            unsafe {
                crate::frames::for_each_frame_slots(exit, |slots| {
                    let mut patched = false;
                    for slot in slots {
                        // SAFETY: stack-map slots of a parked frame hold
                        // arena pointers (vmctx, funcrefs) or null.
                        patched |= self.patch(slot);
                    }
                    frames += u64::from(patched);
                })
            };
        }
        frames
    }
}

/// A region of a store, by what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegionRef {
    /// The store context: interrupt word, stack limit, fuel, exit record.
    Context,
    /// An instance's vmctx (its globals and funcref records included).
    Vmctx(crate::InstanceId),
    /// A defined linear memory.
    Memory(crate::Entity),
    /// A defined table's elements.
    Table(crate::Entity),
}

/// Where a moving region goes.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Anywhere it fits with `headroom` after it, at `new_len` bytes.
    Anywhere { new_len: usize, headroom: usize },
    /// Only lower in the arena than it is now, at its length.
    Lower { headroom: usize },
}

/// Which kind of region moved: what can hold a pointer into it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moved {
    /// The store context: each vmctx header's store-context pointer.
    Context,
    /// A vmctx: funcref records' vmctx fields, import records (other
    /// instances' definitions and global slots live in vmctxs), funcref
    /// globals, funcref table elements, and parked frames' slots.
    Vmctx,
    /// A memory's bytes: memory definitions' bases.
    Memory,
    /// A table's elements: table definitions' bases.
    Table,
}

impl Moved {
    fn of(region: RegionRef) -> Self {
        match region {
            RegionRef::Context => Moved::Context,
            RegionRef::Vmctx(_) => Moved::Vmctx,
            RegionRef::Memory(_) => Moved::Memory,
            RegionRef::Table(_) => Moved::Table,
        }
    }
}

impl Instance {
    /// Patches every pointer this instance holds into a region of kind
    /// `kind` that moved: of its vmctx's store-context pointer, funcref
    /// records, import records, memory and table bases and funcref
    /// globals, and its funcref tables' elements, those that can point
    /// into such a region. Returns how many it patched.
    ///
    /// # Safety
    /// The store's guests must be stopped (no JIT code of the store
    /// runs), so these words change under nobody's feet.
    unsafe fn patch_escapes(&self, moved: &Move, kind: Moved) -> u64 {
        let info = self.module_info();
        let layout = self.layout();
        let vmctx = self.vmctx();
        let at = |offset: u32| vmctx.wrapping_add(offset as usize).cast::<u64>();
        let mut locations = Vec::new();
        match kind {
            Moved::Context => locations.push(at(abi::vmctx::STORE_CONTEXT as u32)),
            Moved::Vmctx => {
                for index in 0..info.functions.len() as u32 {
                    locations.push(at(layout.funcref(index) + abi::funcref::VMCTX as u32));
                }
                for i in 0..info.num_imported_memories {
                    locations.push(at(layout.memory_import(i)));
                }
                for i in 0..info.num_imported_tables {
                    locations.push(at(layout.table_import(i)));
                }
                for i in 0..info.num_imported_globals {
                    locations.push(at(layout.global_import(i)));
                }
                let defined_globals = info.num_imported_globals as usize..info.globals.len();
                for (defined, global) in info.globals[defined_globals].iter().enumerate() {
                    if global.content == ValType::FuncRef {
                        locations.push(self.global_def(defined as u32));
                    }
                }
            }
            Moved::Memory => {
                for defined in 0..self.memories.len() as u32 {
                    locations.push(at(layout.memory_def(defined) + abi::memory::BASE as u32));
                }
            }
            Moved::Table => {
                for defined in 0..self.tables.len() as u32 {
                    locations.push(at(layout.table_def(defined) + abi::table::BASE as u32));
                }
            }
        }
        let mut patched = 0;
        for location in locations {
            // SAFETY: each is a pointer field of this live vmctx.
            patched += u64::from(unsafe { moved.patch(location) });
        }
        if kind != Moved::Vmctx {
            return patched;
        }
        for (defined, table) in self.tables.iter().enumerate() {
            if table.element != ValType::FuncRef {
                continue;
            }
            // SAFETY: the definition is live; its base holds `len` elements,
            // each null or a pointer to a funcref record.
            unsafe {
                let def = self.table_def(defined as u32);
                let (base, len) = ((*def).base, (*def).len as usize);
                for i in 0..len {
                    patched += u64::from(moved.patch(base.add(i)));
                }
            }
        }
        patched
    }
}

impl StoreInner {
    pub(crate) fn region_refs(&self) -> Vec<RegionRef> {
        let mut regions = vec![RegionRef::Context];
        for instance in &self.instances {
            regions.push(RegionRef::Vmctx(instance.id));
            let entity = |defined: usize| Entity {
                instance: instance.id,
                defined: defined as u32,
            };
            regions.extend((0..instance.memories.len()).map(|d| RegionRef::Memory(entity(d))));
            regions.extend((0..instance.tables.len()).map(|d| RegionRef::Table(entity(d))));
        }
        regions
    }

    /// Whether `region` names a region of this store.
    pub(crate) fn has_region(&self, region: RegionRef) -> bool {
        let instance = |id: crate::InstanceId| self.instances.get(id.0 as usize);
        match region {
            RegionRef::Context => true,
            RegionRef::Vmctx(id) => instance(id).is_some(),
            RegionRef::Memory(m) => {
                instance(m.instance).is_some_and(|i| (m.defined as usize) < i.memories.len())
            }
            RegionRef::Table(t) => {
                instance(t.instance).is_some_and(|i| (t.defined as usize) < i.tables.len())
            }
        }
    }

    pub(crate) fn region(&mut self, region: RegionRef) -> &mut Box<dyn Region> {
        match region {
            RegionRef::Context => &mut self.context,
            RegionRef::Vmctx(id) => &mut self.instances[id.0 as usize].vmctx,
            RegionRef::Memory(m) => {
                &mut self.instances[m.instance.0 as usize].memories[m.defined as usize].region
            }
            RegionRef::Table(t) => {
                &mut self.instances[t.instance.0 as usize].tables[t.defined as usize].region
            }
        }
    }

    /// Moves `region` to a fresh range of `new_len` bytes (with `headroom`
    /// to grow into) and patches every pointer into it: the escapes (see
    /// above) and the stack-map slots of the frames parked below
    /// `running_exit` (the exit record of this store's guest running now,
    /// inside a libcall, if any) and below every suspended call's exit.
    pub(crate) fn relocate(
        &mut self,
        region: RegionRef,
        new_len: usize,
        headroom: usize,
        running_exit: Option<usize>,
    ) -> bool {
        self.move_region(
            region,
            Placement::Anywhere { new_len, headroom },
            running_exit,
        )
    }

    /// Moves `region` as `placement` says and patches every pointer into
    /// it; false, changing nothing, when it cannot move.
    fn move_region(
        &mut self,
        region: RegionRef,
        placement: Placement,
        running_exit: Option<usize>,
    ) -> bool {
        let Some(counters) = self.relocation.as_ref().map(|r| r.counters.clone()) else {
            return false;
        };
        // Interrupt handles write the context's first word under this lock.
        let home = self.home.clone();
        let mut home =
            (region == RegionRef::Context).then(|| home.lock().unwrap_or_else(|e| e.into_inner()));
        let started = std::time::Instant::now();
        let moving = self.region(region);
        let len = moving.len();
        let moved_from = match placement {
            Placement::Anywhere { new_len, headroom } => moving.relocate(new_len, headroom),
            Placement::Lower { headroom } => moving.compact(headroom),
        };
        let Some(old) = moved_from else {
            return false;
        };
        let moved = Move {
            old,
            len: len.max(1),
            new: moving.base() as usize,
        };
        let mut escapes = 0;
        if let Some(home) = home.as_mut() {
            **home = Some(moved.new);
            escapes += 1;
        }
        for instance in &self.instances {
            // SAFETY: every instance of the store is live and stopped.
            escapes += unsafe { instance.patch_escapes(&moved, Moved::of(region)) };
        }
        // Stack-map slots hold vmctx pointers and funcrefs (pointers into
        // vmctxs) only: no other region's move can concern a frame.
        let frames = if matches!(region, RegionRef::Vmctx(_)) {
            let parked: Vec<usize> = lock_parked(&self.parked).iter().map(|p| p.1).collect();
            // SAFETY: the guest running now is stopped in the libcall whose
            // exit record the caller passed; the others are parked in theirs.
            unsafe { moved.patch_frames(running_exit.into_iter().chain(parked)) }
        } else {
            0
        };
        counters.add(RelocationStats {
            relocations: 1,
            bytes_moved: len as u64,
            escapes_patched: escapes,
            frames_patched: frames,
            stacks_grown: 0,
        });
        tracing::debug!(
            ?region,
            bytes = len,
            from = %format_args!("{:#x}", moved.old),
            to = %format_args!("{:#x}", moved.new),
            escapes,
            frames,
            compaction = matches!(placement, Placement::Lower { .. }),
            pause_ns = started.elapsed().as_nanos() as u64,
            "relocated"
        );
        true
    }

    /// Moves every region of the store, its calls' stacks last (the moves
    /// before walk frames through the exit records, which a stack's move
    /// patches). Returns whether every one moved.
    pub(crate) fn relocate_all(&mut self, running_exit: Option<usize>) -> bool {
        let regions = self.region_refs().into_iter().all(|region| {
            let (len, headroom) = self.growth_room(region);
            self.relocate(region, len, headroom, running_exit)
        });
        regions && self.relocate_stacks()
    }

    /// At a function entry's poll: grows the running fiber's stack if it is
    /// below the soft stack limit (see `stacks`). False when it is short
    /// and cannot grow.
    pub(crate) fn grow_stack_if_short(&mut self) -> bool {
        let context = self.context_ptr();
        // SAFETY: the context is live; the running fiber's record is set
        // while it runs, and it runs (out in this poll, through the
        // bridge, which saved its stack pointer).
        let (switches, short) = unsafe {
            let switches = (*context).fiber as *mut crate::fiber::Switches;
            if switches.is_null() {
                return true;
            }
            let guest_sp = (*switches).record.guest_sp;
            (switches, guest_sp < (*context).stack_soft_limit)
        };
        if !short {
            return true;
        }
        let mut parked = lock_parked(&self.parked);
        // SAFETY: the running fiber is out in this poll, every other fiber
        // of the store is parked or not started.
        let grown = unsafe { self.stacks.grow(&mut *switches, context, &mut parked[..]) };
        if grown && let Some(relocation) = &self.relocation {
            relocation.counters.add(RelocationStats {
                stacks_grown: 1,
                ..RelocationStats::default()
            });
        }
        grown
    }

    /// Moves every arena stack of the store's calls; see `stacks`.
    pub(crate) fn relocate_stacks(&mut self) -> bool {
        let Some(counters) = self.relocation.as_ref().map(|r| r.counters.clone()) else {
            return false;
        };
        let context = self.context_ptr();
        let mut parked = lock_parked(&self.parked);
        // SAFETY: relocation runs where no fiber of the store runs (see
        // the module doc); the context is live; `parked` lists the parked
        // calls' exit records.
        let (all, moved, bytes, patched) =
            unsafe { self.stacks.relocate_all(context, &mut parked[..]) };
        counters.add(RelocationStats {
            relocations: moved,
            bytes_moved: bytes,
            escapes_patched: patched,
            ..RelocationStats::default()
        });
        all
    }

    /// Moves this store's memories to the lowest free ranges below them
    /// that hold them with their growth room: what compaction does to one
    /// process. Returns the bytes moved.
    pub(crate) fn compact(&mut self, running_exit: Option<usize>) -> u64 {
        let mut moved = 0;
        for region in self.region_refs() {
            if !matches!(region, RegionRef::Memory(_)) {
                continue;
            }
            let (len, headroom) = self.growth_room(region);
            if self.move_region(region, Placement::Lower { headroom }, running_exit) {
                moved += len as u64;
            }
        }
        moved
    }

    /// The room to leave after a memory of `len` bytes that may grow to
    /// `max` bytes, when it moves: the policy's answer.
    pub(crate) fn growth_headroom(&self, len: usize, max: usize) -> usize {
        self.relocation
            .as_ref()
            .map_or(0, |r| r.policy.growth_headroom(len, max))
    }

    /// A region's length, and the room to leave after it when it moves: a
    /// memory keeps the room its policy asks for, so that moving it does
    /// not make its next growth move it again.
    pub(crate) fn growth_room(&mut self, region: RegionRef) -> (usize, usize) {
        let len = self.region(region).len();
        let headroom = match region {
            RegionRef::Memory(m) => {
                let memory = &self.instances[m.instance.0 as usize].memories[m.defined as usize];
                self.growth_headroom(len, (memory.max_pages * WASM_PAGE_SIZE) as usize)
            }
            _ => 0,
        };
        (len, headroom)
    }

    /// At a poll: counts down the stress schedule, and moves every region
    /// when it runs out. `exit` is the running guest's exit record.
    pub(crate) fn stress_poll(&mut self, exit: usize) {
        let every = self
            .relocation
            .as_ref()
            .map_or(0, |r| r.policy.stress_every());
        if every == 0 {
            return;
        }
        self.polls_until_relocation = self.polls_until_relocation.saturating_sub(1);
        if self.polls_until_relocation == 0 {
            self.polls_until_relocation = every;
            self.relocate_all(Some(exit));
        }
        // SAFETY: the context as it is now, after any move.
        unsafe {
            (*self.context_ptr())
                .interrupt
                .fetch_or(crate::fiber::interrupt::RELOCATE, Ordering::AcqRel)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_pointers_into_the_old_range_move() {
        let moved = Move {
            old: 0x1000,
            len: 0x100,
            new: 0x8000,
        };
        let mut words = [0u64, 0xfff, 0x1000, 0x1010, 0x10ff, 0x1100, u64::MAX];
        let patched: Vec<bool> = words
            .iter_mut()
            // SAFETY: plain words on the stack.
            .map(|w| unsafe { moved.patch(w) })
            .collect();
        assert_eq!(
            patched,
            [false, false, true, true, true, false, false],
            "{words:x?}"
        );
        assert_eq!(words, [0, 0xfff, 0x8000, 0x8010, 0x80ff, 0x1100, u64::MAX]);
    }
}
