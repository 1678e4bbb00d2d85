//! Executable code and the process-wide registry of it.
//!
//! A [`CodeMemory`] places a module's code image in its own mapping,
//! patches the image's absolute relocations, and makes it read+execute.
//! While it lives, its trap table and stack maps are in a global registry
//! keyed by address, so that the signal handler can tell a trap in JIT code
//! from a crash elsewhere, and the frame walker can find a frame's stack
//! map by return address. The registry is read under a lock that is only
//! written when code is loaded or dropped, never while guest code that
//! could fault holds it. A [`LoadedModule`] is a compiled module with its
//! code placed this way, shared by every instance of it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use carat_jit::{CodeImage, CompiledModule, FloatLibcall, StackMap, Trap, TrapSite};

/// A compiled module with its code placed in executable memory.
#[derive(Debug)]
pub struct LoadedModule {
    pub compiled: CompiledModule,
    code: CodeMemory,
}

impl LoadedModule {
    pub fn new(compiled: CompiledModule) -> Result<Arc<Self>, CodeError> {
        crate::signals::install();
        crate::signals::check_null_page()?;
        let code = CodeMemory::new(&compiled.image)?;
        Ok(Arc::new(LoadedModule { compiled, code }))
    }

    pub(crate) fn function_address(&self, defined_index: usize) -> *const u8 {
        self.code
            .address(self.compiled.image.functions[defined_index].start)
    }

    pub(crate) fn entry_trampoline(&self, type_index: u32) -> *const u8 {
        self.code
            .address(self.compiled.image.entry_trampolines[type_index as usize])
    }

    pub(crate) fn host_trampoline(&self, type_index: u32) -> *const u8 {
        self.code
            .address(self.compiled.image.host_trampolines[type_index as usize])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    #[error("cannot map code: {0}")]
    Map(#[from] std::io::Error),
}

/// What the registry knows of one loaded image.
#[derive(Debug)]
pub struct CodeInfo {
    start: usize,
    end: usize,
    traps: Vec<TrapSite>,
    stack_maps: Vec<StackMap>,
    /// Ranges of the wasm functions (not trampolines), image-relative.
    functions: Vec<std::ops::Range<u32>>,
}

impl CodeInfo {
    fn trap_at(&self, pc: usize) -> Option<Trap> {
        let offset = u32::try_from(pc - self.start).ok()?;
        let i = self
            .traps
            .binary_search_by_key(&offset, |site| site.offset)
            .ok()?;
        Some(self.traps[i].trap)
    }

    fn stack_map_at(&self, return_address: usize) -> Option<&StackMap> {
        let offset = u32::try_from(return_address - self.start).ok()?;
        let i = self
            .stack_maps
            .binary_search_by_key(&offset, |m| m.return_address)
            .ok()?;
        Some(&self.stack_maps[i])
    }

    fn is_function(&self, pc: usize) -> bool {
        let Ok(offset) = u32::try_from(pc - self.start) else {
            return false;
        };
        let i = self.functions.partition_point(|r| r.end <= offset);
        self.functions.get(i).is_some_and(|r| r.contains(&offset))
    }
}

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

type Registry = BTreeMap<usize, Arc<CodeInfo>>;

/// The loaded image holding `pc`, if any.
fn code_at(registry: &Registry, pc: usize) -> Option<&CodeInfo> {
    let (_, info) = registry.range(..=pc).next_back()?;
    (pc < info.end).then_some(&**info)
}

fn with_code_at<R>(pc: usize, f: impl FnOnce(&CodeInfo) -> R) -> Option<R> {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    code_at(&registry, pc).map(f)
}

/// The trap raised by the instruction at `pc`, if `pc` is a trapping
/// instruction of loaded JIT code. Called from the signal handler.
pub fn trap_at(pc: usize) -> Option<Trap> {
    with_code_at(pc, |info| info.trap_at(pc)).flatten()
}

/// Walks a chain of wasm frames under one read of the registry: from
/// `fp`, while each frame record's return address lies in a wasm
/// function, calls `visit(return_address, caller_sp, slots)` with the
/// stack-map slots recorded for that call (empty when none is). `visit`
/// must not load or drop code.
///
/// # Safety
/// `fp` must start a chain of frame records (saved FP, return address)
/// on a live stack that stays untouched during the walk, as the exit
/// record of a parked guest does.
pub unsafe fn walk_wasm_frames(fp: usize, mut visit: impl FnMut(usize, usize, &[u32])) {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let mut fp = fp;
    // The last few return addresses looked up, with their slots: the
    // frames of a recursion (mutual ones too) share a handful, and deep
    // stacks are walked at every move.
    let mut recent: [Option<(usize, &[u32])>; 4] = [None; 4];
    let mut next = 0;
    while fp != 0 {
        // SAFETY: per the contract, `fp` is a frame record: two words.
        let (caller_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        let cached = recent
            .iter()
            .flatten()
            .find(|(address, _)| *address == return_address);
        let slots = match cached {
            Some((_, slots)) => *slots,
            None => {
                let Some(info) = code_at(&registry, return_address) else {
                    break;
                };
                if !info.is_function(return_address) {
                    break;
                }
                // Cranelift records a stack map only where some arena
                // pointer is live across the call; a call without one
                // keeps none the frame will use again.
                let slots = info
                    .stack_map_at(return_address)
                    .map_or(&[][..], |m| &m.slots[..]);
                recent[next] = Some((return_address, slots));
                next = (next + 1) % recent.len();
                slots
            }
        };
        visit(return_address, fp + 16, slots);
        fp = caller_fp;
    }
}

/// A module's code, mapped executable and registered.
#[derive(Debug)]
pub struct CodeMemory {
    map: memmap2::Mmap,
}

impl CodeMemory {
    pub fn new(image: &CodeImage) -> Result<Self, CodeError> {
        let len = image.bytes.len().max(1);
        let mut map = memmap2::MmapMut::map_anon(len)?;
        map[..image.bytes.len()].copy_from_slice(&image.bytes);
        for reloc in &image.absolute_relocs {
            let value = (float_libcall_address(reloc.target) as i64 + reloc.addend) as u64;
            let at = reloc.offset as usize;
            map[at..at + 8].copy_from_slice(&value.to_le_bytes());
        }
        let map = map.make_exec()?;
        let start = map.as_ptr() as usize;
        let info = CodeInfo {
            start,
            end: start + len,
            traps: image.traps.clone(),
            stack_maps: image.stack_maps.clone(),
            functions: image.functions.clone(),
        };
        REGISTRY
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(start, Arc::new(info));
        Ok(CodeMemory { map })
    }

    /// Address of the byte at `offset` in the image.
    pub fn address(&self, offset: u32) -> *const u8 {
        self.map[offset as usize..].as_ptr()
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        REGISTRY
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&(self.map.as_ptr() as usize));
    }
}

extern "C" fn ceil_f32(x: f32) -> f32 {
    x.ceil()
}
extern "C" fn ceil_f64(x: f64) -> f64 {
    x.ceil()
}
extern "C" fn floor_f32(x: f32) -> f32 {
    x.floor()
}
extern "C" fn floor_f64(x: f64) -> f64 {
    x.floor()
}
extern "C" fn trunc_f32(x: f32) -> f32 {
    x.trunc()
}
extern "C" fn trunc_f64(x: f64) -> f64 {
    x.trunc()
}
extern "C" fn nearest_f32(x: f32) -> f32 {
    x.round_ties_even()
}
extern "C" fn nearest_f64(x: f64) -> f64 {
    x.round_ties_even()
}

fn float_libcall_address(call: FloatLibcall) -> usize {
    match call {
        FloatLibcall::CeilF32 => ceil_f32 as extern "C" fn(f32) -> f32 as usize,
        FloatLibcall::CeilF64 => ceil_f64 as extern "C" fn(f64) -> f64 as usize,
        FloatLibcall::FloorF32 => floor_f32 as extern "C" fn(f32) -> f32 as usize,
        FloatLibcall::FloorF64 => floor_f64 as extern "C" fn(f64) -> f64 as usize,
        FloatLibcall::TruncF32 => trunc_f32 as extern "C" fn(f32) -> f32 as usize,
        FloatLibcall::TruncF64 => trunc_f64 as extern "C" fn(f64) -> f64 as usize,
        FloatLibcall::NearestF32 => nearest_f32 as extern "C" fn(f32) -> f32 as usize,
        FloatLibcall::NearestF64 => nearest_f64 as extern "C" fn(f64) -> f64 as usize,
    }
}
