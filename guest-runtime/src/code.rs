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
//!
//! The registry also names code for backtraces: a trap's handler records
//! the return addresses of the wasm frames it happened in ([`trace`],
//! without allocating), and [`symbolize`] maps each to its function (by
//! index and name-section name) and the module offset of its operator.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use carat_jit::{
    CodeImage, CompiledModule, FloatLibcall, Names, SourceSpan, StackMap, Trap, TrapSite,
};

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
        let symbols = Symbols {
            num_imported_functions: compiled.info.num_imported_functions,
            body_starts: compiled
                .info
                .bodies
                .iter()
                .map(|b| b.start as u32)
                .collect(),
            names: compiled.info.names.clone(),
        };
        let code = CodeMemory::new(&compiled.image, symbols)?;
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
    source_map: Vec<SourceSpan>,
    symbols: Symbols,
}

/// What names a module's functions in a backtrace.
#[derive(Debug)]
struct Symbols {
    num_imported_functions: u32,
    /// Module offset of each defined function's body: where a frame
    /// points when no operator's code covers its address (a prologue).
    body_starts: Vec<u32>,
    names: Names,
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
        self.defined_function_at(pc).is_some()
    }

    /// The defined function whose code holds `pc`, by defined index.
    fn defined_function_at(&self, pc: usize) -> Option<usize> {
        let offset = u32::try_from(pc - self.start).ok()?;
        let i = self.functions.partition_point(|r| r.end <= offset);
        self.functions
            .get(i)
            .is_some_and(|r| r.contains(&offset))
            .then_some(i)
    }

    /// The frame at `pc`: a trapping instruction, or (`returning`) the
    /// return address of a call, which belongs to the call before it.
    fn frame_at(&self, pc: usize, returning: bool) -> Option<Frame> {
        let pc = if returning { pc - 1 } else { pc };
        let defined = self.defined_function_at(pc)?;
        let offset = (pc - self.start) as u32;
        let function = &self.functions[defined];
        let i = self.source_map.partition_point(|s| s.code_offset <= offset);
        let module_offset = i
            .checked_sub(1)
            .map(|i| self.source_map[i])
            .filter(|span| span.code_offset >= function.start)
            .map_or(self.symbols.body_starts[defined], |span| span.module_offset);
        let func_index = self.symbols.num_imported_functions + defined as u32;
        Some(Frame {
            func_index,
            func_name: self.symbols.names.functions.get(&func_index).cloned(),
            module_name: self.symbols.names.module.clone(),
            module_offset,
        })
    }
}

/// Most wasm frames a trap records; a deeper trace keeps the innermost and
/// counts the rest.
pub const MAX_TRACE: usize = 64;

/// The wasm frames a trap happened in, as the signal handler records them
/// without allocating: the trapping PC, then each caller's return
/// address, innermost first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrapTrace {
    addresses: [usize; MAX_TRACE],
    len: usize,
    /// Wasm frames past the first `MAX_TRACE`.
    more: usize,
}

/// One wasm frame of a backtrace.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Frame {
    /// The function's index in its module (imports counted).
    pub func_index: u32,
    /// Its name in the module's name section, if it has one.
    pub func_name: Option<String>,
    /// The module's name in its name section, if it has one.
    pub module_name: Option<String>,
    /// Byte offset in the module of the operator the frame was at: the
    /// trapping one, or a call.
    pub module_offset: u32,
}

/// The wasm frames a trap happened in, innermost first.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct WasmBacktrace {
    pub frames: Vec<Frame>,
    /// Frames deeper than the backtrace holds (a deep recursion).
    pub frames_omitted: usize,
}

impl std::fmt::Display for WasmBacktrace {
    /// One line per frame, as wasmtime prints them:
    /// `    0: 0x1a2b - abort`, unnamed functions as `wasm-function[3]`.
    /// A run of frames the same as the one before them (a recursion) is
    /// one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut i = 0;
        while i < self.frames.len() {
            let frame = &self.frames[i];
            writeln!(
                f,
                "{i:>5}: {:#x} - {}",
                frame.module_offset,
                function_label(
                    frame.module_name.as_deref(),
                    frame.func_name.as_deref(),
                    frame.func_index
                )
            )?;
            let same = self.frames[i + 1..]
                .iter()
                .take_while(|next| *next == frame)
                .count();
            if same > 1 {
                writeln!(
                    f,
                    "       ... frames {} to {} are frame {i} again",
                    i + 1,
                    i + same
                )?;
                i += same;
            }
            i += 1;
        }
        if self.frames_omitted > 0 {
            writeln!(f, "       ... {} more frames", self.frames_omitted)?;
        }
        Ok(())
    }
}

/// How backtraces and the perf map name a function: `module!name` from
/// the name section, `wasm-function[N]` without one.
fn function_label(module: Option<&str>, name: Option<&str>, index: u32) -> String {
    let name = name.map_or_else(|| format!("wasm-function[{index}]"), str::to_string);
    match module {
        Some(module) => format!("{module}!{name}"),
        None => name,
    }
}

/// Records the wasm frames of a trap at `pc`, whose frame pointer was
/// `fp`, on a stack spanning `stack`. Called from the signal handler: it
/// allocates nothing, takes only the registry's read lock, and reads
/// only frame records that lie inside `stack`, each above the last (so a
/// corrupt chain ends the walk instead of looping or faulting).
///
/// # Safety
/// `stack` must be the range of a live stack that nothing writes during
/// the call (the trapping fiber's, from its own signal handler).
pub unsafe fn trace(pc: usize, fp: usize, stack: std::ops::Range<usize>) -> TrapTrace {
    let mut trace = TrapTrace {
        addresses: [0; MAX_TRACE],
        len: 1,
        more: 0,
    };
    trace.addresses[0] = pc;
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let mut fp = fp;
    while fp.is_multiple_of(8) && stack.start <= fp && fp.saturating_add(16) <= stack.end {
        // SAFETY: two words inside the stack, per the contract.
        let (caller_fp, return_address) =
            unsafe { (*(fp as *const usize), *((fp + 8) as *const usize)) };
        let in_wasm =
            code_at(&registry, return_address).is_some_and(|c| c.is_function(return_address));
        if !in_wasm {
            break;
        }
        if trace.len < MAX_TRACE {
            trace.addresses[trace.len] = return_address;
            trace.len += 1;
        } else {
            trace.more += 1;
        }
        if caller_fp <= fp {
            break;
        }
        fp = caller_fp;
    }
    trace
}

/// Names the frames of `trace` (see [`trace`]). Code unloaded since is
/// left out, though a trace is named right after its trap, while the
/// module that trapped is still loaded.
pub fn symbolize(trace: &TrapTrace) -> WasmBacktrace {
    let registry = REGISTRY.read().unwrap_or_else(|e| e.into_inner());
    let frames = trace.addresses[..trace.len]
        .iter()
        .enumerate()
        .filter_map(|(i, &pc)| code_at(&registry, pc)?.frame_at(pc, i > 0))
        .collect();
    WasmBacktrace {
        frames,
        frames_omitted: trace.more,
    }
}

static REGISTRY: RwLock<Registry> = RwLock::new(BTreeMap::new());

/// Where loaded code is announced to `perf` (see [`enable_perf_map`]).
static PERF_MAP: std::sync::Mutex<Option<std::fs::File>> = std::sync::Mutex::new(None);

/// From now on, writes every function of every module loaded to
/// `/tmp/perf-PID.map`, as `perf report` reads JIT code's names: one
/// `START SIZE NAME` line per function (hex), named as in backtraces
/// (`module!name`, else `wasm-function[N]`), and one per module for its
/// trampolines. Returns the file's path.
pub fn enable_perf_map() -> std::io::Result<std::path::PathBuf> {
    let path = std::path::PathBuf::from(format!("/tmp/perf-{}.map", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)?;
    *PERF_MAP.lock().unwrap_or_else(|e| e.into_inner()) = Some(file);
    Ok(path)
}

/// Announces `info`'s code in the perf map, if one is enabled. A write
/// that fails only costs the profile its names.
fn announce_to_perf(info: &CodeInfo) {
    use std::io::Write;
    let mut map = PERF_MAP.lock().unwrap_or_else(|e| e.into_inner());
    let Some(file) = map.as_mut() else {
        return;
    };
    let mut text = String::new();
    let module = info.symbols.names.module.as_deref();
    for (defined, range) in info.functions.iter().enumerate() {
        let index = info.symbols.num_imported_functions + defined as u32;
        let name = info.symbols.names.functions.get(&index);
        let name = function_label(module, name.map(String::as_str), index);
        text.push_str(&format!(
            "{:x} {:x} {name}\n",
            info.start + range.start as usize,
            range.len()
        ));
    }
    let trampolines = info.functions.last().map_or(0, |r| r.end as usize);
    if info.end > info.start + trampolines {
        text.push_str(&format!(
            "{:x} {:x} wasm-trampolines\n",
            info.start + trampolines,
            info.end - info.start - trampolines
        ));
    }
    let _ = file.write_all(text.as_bytes());
}

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
    fn new(image: &CodeImage, symbols: Symbols) -> Result<Self, CodeError> {
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
            source_map: image.source_map.clone(),
            symbols,
        };
        announce_to_perf(&info);
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
