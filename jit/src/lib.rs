//! carat-jit: WebAssembly to machine code with inline region guards.
//!
//! The pipeline is `bytes -> validated ModuleInfo -> Cranelift IR -> machine
//! code + metadata`. The JIT knows nothing of processes or of where memory
//! lives: it is told a [`MemoryStrategy`] and emits code against the vmctx
//! layout of [`abi`]. Its output, a [`CompiledModule`], is position
//! independent except for a short list of absolute relocations that the
//! runtime patches once it has placed the code: calls between the module's
//! own functions are resolved here, at link time.
//!
//! Every function is compiled independently (in parallel across threads for
//! large modules); translation is one forward pass over each body, so the
//! whole compile is linear in module size.

pub mod abi;
pub mod artifact;
mod listing;
pub mod module_info;
mod trampolines;
pub mod translate;
pub mod trap;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cranelift_codegen::binemit::Reloc;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::{ExternalName, Function, LibCall, UserFuncName};
use cranelift_codegen::isa::{OwnedTargetIsa, TargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_codegen::{Context, FinalizedRelocTarget};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};
use wasmparser::{BinaryReader, BinaryReaderError, FunctionBody};

pub use listing::FunctionListing;
pub use module_info::{
    ConstExpr, DataSegment, ElementSegment, EntityKind, Export, FuncType, GlobalType, Import,
    ImportKind, InvalidModule, MemoryType, ModuleInfo, Names, SegmentMode, TableType, ValType,
};
pub use translate::CodeStats;
pub use trap::Trap;

/// How JIT code protects linear memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemoryStrategy {
    /// CARAT: an inline guard before every access checks it against the
    /// region's bound.
    Guarded,
    /// Paging: each memory sits at the start of a reservation of 4 GiB plus
    /// `guard_bytes` of inaccessible pages, so accesses whose static offset
    /// stays within the guard need no inline check.
    Reserved { guard_bytes: u64 },
}

/// Cranelift's optimisation level.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptLevel {
    None,
    Speed,
}

#[derive(Clone, Debug)]
pub struct CompileConfig {
    pub strategy: MemoryStrategy,
    pub opt_level: OptLevel,
    /// Run Cranelift's IR verifier on every function (slow; for debugging).
    pub verify: bool,
    /// Threads to compile large modules with.
    pub threads: usize,
    /// Count executed operators against the store's fuel (`--fuel`).
    pub fuel: bool,
}

impl Default for CompileConfig {
    fn default() -> Self {
        CompileConfig {
            strategy: MemoryStrategy::Guarded,
            opt_level: OptLevel::Speed,
            verify: cfg!(debug_assertions),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fuel: false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Invalid(#[from] InvalidModule),
    #[error("unsupported: {0}")]
    Unsupported(String),
    #[error("code generation failed: {0}")]
    Codegen(String),
    #[error("this host is not supported: {0}")]
    Host(String),
}

impl From<BinaryReaderError> for CompileError {
    fn from(e: BinaryReaderError) -> Self {
        CompileError::Invalid(e.into())
    }
}

/// Engine-wide ids for function signatures, so that `call_indirect` can
/// compare a callee's signature with one integer compare even across
/// modules. Ids start at 1; 0 never matches.
#[derive(Debug, Default)]
pub struct SignatureRegistry {
    ids: Mutex<HashMap<FuncType, u32>>,
}

impl SignatureRegistry {
    pub fn intern(&self, ty: &FuncType) -> u32 {
        let mut ids = self.ids.lock().unwrap_or_else(|e| e.into_inner());
        let next = ids.len() as u32 + 1;
        *ids.entry(ty.clone()).or_insert(next)
    }
}

/// A Cranelift runtime helper that code may call through an absolute
/// address (only used when the CPU lacks the instruction).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FloatLibcall {
    CeilF32,
    CeilF64,
    FloorF32,
    FloorF64,
    TruncF32,
    TruncF64,
    NearestF32,
    NearestF64,
}

/// A place in the code image that must hold the absolute address of a
/// runtime helper (plus `addend`) once the code is placed.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
pub struct AbsoluteReloc {
    pub offset: u32,
    pub target: FloatLibcall,
    pub addend: i64,
}

/// A trapping instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TrapSite {
    pub offset: u32,
    pub trap: Trap,
}

/// The stack map of one safepoint: where in the frame the live arena
/// pointers are kept while the call at `return_address` is in progress.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StackMap {
    /// Offset in the image of the instruction after the call.
    pub return_address: u32,
    /// Size of the frame below its frame-pointer setup area: the frame's SP
    /// at the call is its FP minus this.
    pub frame_size: u32,
    /// Offsets from that SP of the slots holding arena pointers.
    pub slots: Vec<u32>,
}

/// The code from `code_offset` up to the next span's start was made for
/// the wasm operator at `module_offset` in the module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceSpan {
    pub code_offset: u32,
    pub module_offset: u32,
}

/// Machine code for a whole module, laid out in one image.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CodeImage {
    pub bytes: Vec<u8>,
    pub absolute_relocs: Vec<AbsoluteReloc>,
    /// Code range of each defined function.
    pub functions: Vec<Range<u32>>,
    /// Entry trampoline offset for each type index.
    pub entry_trampolines: Vec<u32>,
    /// Host trampoline offset for each type index.
    pub host_trampolines: Vec<u32>,
    /// Sorted by offset.
    pub traps: Vec<TrapSite>,
    /// Sorted by return address.
    pub stack_maps: Vec<StackMap>,
    /// Where the code made for each wasm operator starts, and that
    /// operator's byte offset in the module, sorted by code offset: what
    /// a backtrace maps a return address or trapping PC to.
    pub source_map: Vec<SourceSpan>,
    /// The largest frame of any function or trampoline in the image,
    /// return address and frame record included: how far below a call's
    /// stack pointer one more frame of this module can reach. What a
    /// stack check made at a function's entry must leave room for.
    pub max_frame_size: u32,
}

/// Figures about one compilation.
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct CompileStats {
    pub wasm_bytes: usize,
    pub functions_compiled: u64,
    pub code: translate::CodeStats,
    pub compile_time: Duration,
}

/// A compiled module: its description, its vmctx layout and its code.
#[derive(Debug)]
pub struct CompiledModule {
    pub info: ModuleInfo,
    pub layout: abi::VmctxLayout,
    pub image: CodeImage,
    /// Engine-wide signature id of each type index.
    pub type_ids: Vec<u32>,
    pub stats: CompileStats,
}

/// One compiled function before linking.
struct FunctionOutput {
    code: Vec<u8>,
    alignment: u32,
    relocs: Vec<(u32, Reloc, RelocTarget, i64)>,
    traps: Vec<TrapSite>,
    stack_maps: Vec<StackMap>,
    source_map: Vec<SourceSpan>,
    /// Bytes its frame takes below the caller's stack pointer, return
    /// address and frame record included.
    frame_size: u32,
    stats: translate::CodeStats,
}

enum RelocTarget {
    Function(u32),
    LibcallTrampoline(u32),
    Float(FloatLibcall),
}

/// Modules with at least this many bytes of function bodies are compiled
/// on several threads: 4 KiB of bodies take a few milliseconds, against
/// about 50 µs for a thread (a C hello-world's 12 KiB went from one
/// thread to two at this threshold).
const PARALLEL_COMPILE_BYTES: usize = 4 * 1024;

/// A unit of compilation: a defined function, or one of the module's
/// trampolines.
#[derive(Clone, Copy)]
enum Job {
    Function(usize),
    Trampoline(Trampoline),
}

/// A trampoline of a module: entry and host per type index, one per
/// libcall.
#[derive(Clone, Copy)]
enum Trampoline {
    Entry(usize),
    Host(usize),
    Libcall(abi::Libcall),
}

impl Trampoline {
    fn build(self, env: &translate::ModuleEnv<'_>, ctx: &mut FunctionBuilderContext) -> Function {
        let (call_conv, frontend) = (env.call_conv, env.frontend);
        match self {
            Trampoline::Entry(ty) => {
                trampolines::entry_trampoline(&env.info.types[ty], call_conv, frontend, ctx)
            }
            Trampoline::Host(ty) => {
                trampolines::host_trampoline(&env.info.types[ty], call_conv, frontend, ctx)
            }
            Trampoline::Libcall(call) => {
                trampolines::libcall_trampoline(call, call_conv, frontend, ctx)
            }
        }
    }
}

/// The order threads take functions in: largest body first, so that a
/// module's few large functions start at once and the many small ones
/// fill in around them (a static split by bytes left one thread compiling
/// a module's largest function while the others had finished).
fn largest_first(bodies: &[Range<usize>]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..bodies.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(bodies[i].len()));
    order
}

/// A validated module with its vmctx layout and signature ids.
struct Prepared {
    info: ModuleInfo,
    layout: abi::VmctxLayout,
    type_ids: Vec<u32>,
}

/// Translates defined function `defined` of the module `bytes` into
/// `ctx.func`, as CLIF ready for Cranelift.
fn translate_function(
    env: &translate::ModuleEnv<'_>,
    bytes: &[u8],
    defined: usize,
    ctx: &mut Context,
    builder_ctx: &mut FunctionBuilderContext,
) -> Result<translate::CodeStats, CompileError> {
    let func_index = env.info.num_imported_functions + defined as u32;
    let body_range = env.info.bodies[defined].clone();
    let body = FunctionBody::new(BinaryReader::new(
        &bytes[body_range.clone()],
        body_range.start as u64,
    ));
    ctx.clear();
    ctx.func = Function::with_name_signature(
        UserFuncName::user(0, func_index),
        translate::wasm_signature(env.info.func_type(func_index), env.call_conv),
    );
    let builder = FunctionBuilder::new(&mut ctx.func, builder_ctx);
    let stats = translate::FuncTranslator::translate(env, builder, func_index, &body)?;
    if cfg!(debug_assertions) {
        translate::access_check::check_heap_accesses(&ctx.func, env.info, env.strategy)
            .map_err(|e| CompileError::Codegen(format!("function {func_index}: {e}")))?;
    }
    Ok(stats)
}

pub struct Compiler {
    isa: OwnedTargetIsa,
    config: CompileConfig,
    /// What shaped its code (see `artifact::fingerprint`).
    fingerprint: String,
}

impl Compiler {
    pub fn new(config: CompileConfig) -> Result<Self, CompileError> {
        let mut flags = settings::builder();
        let set = |flags: &mut settings::Builder, name: &str, value: &str| {
            flags
                .set(name, value)
                .map_err(|e| CompileError::Host(format!("setting {name}: {e}")))
        };
        let opt = match config.opt_level {
            OptLevel::None => "none",
            OptLevel::Speed => "speed",
        };
        set(&mut flags, "opt_level", opt)?;
        set(&mut flags, "preserve_frame_pointers", "true")?;
        set(
            &mut flags,
            "enable_verifier",
            if config.verify { "true" } else { "false" },
        )?;
        set(&mut flags, "enable_probestack", "true")?;
        set(&mut flags, "probestack_strategy", "inline")?;
        set(&mut flags, "unwind_info", "false")?;
        let isa = cranelift_native::builder()
            .map_err(|e| CompileError::Host(e.to_string()))?
            .finish(settings::Flags::new(flags))
            .map_err(|e| CompileError::Host(e.to_string()))?;
        if isa.pointer_bytes() != 8 {
            return Err(CompileError::Host("only 64-bit hosts are supported".into()));
        }
        let fingerprint = artifact::fingerprint_of(&*isa, &config);
        Ok(Compiler {
            isa,
            config,
            fingerprint,
        })
    }

    pub fn config(&self) -> &CompileConfig {
        &self.config
    }

    /// Validates `bytes` and lays out what its code needs.
    fn prepare(
        &self,
        bytes: &[u8],
        signatures: &SignatureRegistry,
    ) -> Result<Prepared, CompileError> {
        let info = module_info::decode(bytes)?;
        let layout = abi::VmctxLayout::new(info.counts());
        let type_ids = info.types.iter().map(|t| signatures.intern(t)).collect();
        Ok(Prepared {
            info,
            layout,
            type_ids,
        })
    }

    /// What translation needs to know about `prepared`'s module.
    fn env<'a>(&self, prepared: &'a Prepared) -> translate::ModuleEnv<'a> {
        translate::ModuleEnv {
            info: &prepared.info,
            layout: &prepared.layout,
            strategy: self.config.strategy,
            fuel: self.config.fuel,
            call_conv: self.isa.default_call_conv(),
            frontend: self.isa.frontend_config(),
        }
    }

    /// Validates and compiles a binary module.
    pub fn compile(
        &self,
        bytes: &[u8],
        signatures: &SignatureRegistry,
    ) -> Result<CompiledModule, CompileError> {
        let start = Instant::now();
        let _span = tracing::debug_span!("compile", wasm_bytes = bytes.len()).entered();
        let prepared = self.prepare(bytes, signatures)?;
        let env = self.env(&prepared);
        let info = &prepared.info;

        let num_defined = info.bodies.len();
        let body_bytes: usize = info.bodies.iter().map(|b| b.len()).sum();
        // Compile time follows body bytes, not the number of functions:
        // a module of a few large functions is worth threads, thousands
        // of tiny spec-test modules are not (a thread costs ~50 µs).
        let threads = if body_bytes < PARALLEL_COMPILE_BYTES {
            1
        } else {
            self.config.threads.clamp(1, num_defined.max(1))
        };
        // The module's functions, then its trampolines, in the order
        // `link` takes them; threads take the largest functions first and
        // the small trampolines last.
        let mut jobs: Vec<Job> = (0..num_defined).map(Job::Function).collect();
        for ty in 0..info.types.len() {
            jobs.extend([Trampoline::Entry(ty), Trampoline::Host(ty)].map(Job::Trampoline));
        }
        jobs.extend(
            abi::Libcall::ALL
                .iter()
                .map(|&call| Job::Trampoline(Trampoline::Libcall(call))),
        );
        let mut order = largest_first(&info.bodies);
        order.extend(num_defined..jobs.len());
        let next = std::sync::atomic::AtomicUsize::new(0);
        let results: Vec<Result<Vec<(usize, FunctionOutput)>, CompileError>> = if threads <= 1 {
            vec![self.compile_jobs(&env, bytes, &jobs, &order, &next)]
        } else {
            std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        let (env, jobs, order, next) = (&env, &jobs, &order, &next);
                        scope.spawn(move || self.compile_jobs(env, bytes, jobs, order, next))
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(CompileError::Codegen("compiler thread panicked".into()))
                        })
                    })
                    .collect()
            })
        };
        let mut numbered = Vec::with_capacity(jobs.len());
        for result in results {
            numbered.extend(result?);
        }
        numbered.sort_by_key(|&(job, _)| job);
        let mut outputs: Vec<FunctionOutput> =
            numbered.into_iter().map(|(_, output)| output).collect();
        let trampolines = outputs.split_off(num_defined);

        let mut stats = CompileStats {
            wasm_bytes: bytes.len(),
            functions_compiled: outputs.len() as u64,
            ..CompileStats::default()
        };
        for out in &outputs {
            stats.code += out.stats;
        }
        let image = link(info, outputs, trampolines)?;
        stats.compile_time = start.elapsed();
        tracing::debug!(
            functions = stats.functions_compiled,
            code_bytes = image.bytes.len(),
            guards = stats.code.guards_emitted,
            threads,
            ms = stats.compile_time.as_secs_f64() * 1e3,
            "compiled"
        );
        let Prepared {
            info,
            layout,
            type_ids,
        } = prepared;
        Ok(CompiledModule {
            info,
            layout,
            image,
            type_ids,
            stats,
        })
    }

    /// Compiles jobs in `order` until none is left, taking the next one
    /// from `next` (shared with the other threads); returns each with its
    /// index in `jobs`.
    fn compile_jobs(
        &self,
        env: &translate::ModuleEnv<'_>,
        bytes: &[u8],
        jobs: &[Job],
        order: &[usize],
        next: &std::sync::atomic::AtomicUsize,
    ) -> Result<Vec<(usize, FunctionOutput)>, CompileError> {
        let mut ctx = Context::new();
        let mut builder_ctx = FunctionBuilderContext::new();
        let mut out = Vec::new();
        while let Some(&job) = order.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            let _span = tracing::trace_span!("compile_job", job).entered();
            let stats = match jobs[job] {
                Job::Function(defined) => {
                    tracing::trace!(defined, "function");
                    translate_function(env, bytes, defined, &mut ctx, &mut builder_ctx)?
                }
                Job::Trampoline(trampoline) => {
                    ctx.clear();
                    ctx.func = trampoline.build(env, &mut builder_ctx);
                    translate::CodeStats::default()
                }
            };
            out.push((job, self.emit(&mut ctx, stats)?));
        }
        Ok(out)
    }

    /// Runs Cranelift on `ctx.func` and collects the metadata we keep.
    fn emit(
        &self,
        ctx: &mut Context,
        stats: translate::CodeStats,
    ) -> Result<FunctionOutput, CompileError> {
        let isa: &dyn TargetIsa = &*self.isa;
        let names = ctx.func.params.user_named_funcs().clone();
        let compiled = ctx
            .compile(isa, &mut ControlPlane::default())
            .map_err(|e| CompileError::Codegen(format!("{:?}", e.inner)))?;
        let buffer = &compiled.buffer;
        let mut relocs = Vec::new();
        for reloc in buffer.relocs() {
            let target = match &reloc.target {
                FinalizedRelocTarget::ExternalName(ExternalName::User(name)) => {
                    let name = &names[*name];
                    match name.namespace {
                        translate::FUNCTION_NAMESPACE => RelocTarget::Function(name.index),
                        _ => RelocTarget::LibcallTrampoline(name.index),
                    }
                }
                FinalizedRelocTarget::ExternalName(ExternalName::LibCall(call)) => {
                    RelocTarget::Float(float_libcall(*call)?)
                }
                other => {
                    return Err(CompileError::Codegen(format!(
                        "unexpected relocation target {other:?}"
                    )));
                }
            };
            relocs.push((reloc.offset, reloc.kind, target, reloc.addend));
        }
        let mut traps = Vec::new();
        for trap in buffer.traps() {
            let kind = Trap::from_cranelift(trap.code)
                .ok_or_else(|| CompileError::Codegen(format!("unknown trap code {}", trap.code)))?;
            traps.push(TrapSite {
                offset: trap.offset,
                trap: kind,
            });
        }
        let stack_maps = buffer
            .user_stack_maps()
            .iter()
            .map(|(offset, frame_size, map)| StackMap {
                return_address: *offset,
                frame_size: *frame_size,
                slots: map.entries().map(|(_, slot)| slot).collect(),
            })
            .collect();
        // Code with no source location (a prologue, a trampoline) keeps
        // none: a lookup there finds the span before it in the function,
        // or nothing.
        let source_map = buffer
            .get_srclocs_sorted()
            .iter()
            .filter(|span| !span.loc.is_default())
            .map(|span| SourceSpan {
                code_offset: span.start,
                module_offset: span.loc.bits(),
            })
            .collect();
        let frame_record = 2 * self.isa.pointer_bytes() as u32;
        let frame_size = buffer
            .frame_layout()
            .map_or(0, |layout| layout.frame_to_fp_offset)
            + frame_record;
        Ok(FunctionOutput {
            code: compiled.code_buffer().to_vec(),
            alignment: buffer.alignment.max(16),
            relocs,
            traps,
            stack_maps,
            source_map,
            frame_size,
            stats,
        })
    }
}

fn float_libcall(call: LibCall) -> Result<FloatLibcall, CompileError> {
    Ok(match call {
        LibCall::CeilF32 => FloatLibcall::CeilF32,
        LibCall::CeilF64 => FloatLibcall::CeilF64,
        LibCall::FloorF32 => FloatLibcall::FloorF32,
        LibCall::FloorF64 => FloatLibcall::FloorF64,
        LibCall::TruncF32 => FloatLibcall::TruncF32,
        LibCall::TruncF64 => FloatLibcall::TruncF64,
        LibCall::NearestF32 => FloatLibcall::NearestF32,
        LibCall::NearestF64 => FloatLibcall::NearestF64,
        other => {
            return Err(CompileError::Codegen(format!(
                "unexpected runtime helper {other}"
            )));
        }
    })
}

/// Lays the functions, then the trampolines (entry and host trampolines per
/// type, then one per libcall), out in one image and resolves the calls
/// between them.
fn link(
    info: &ModuleInfo,
    functions: Vec<FunctionOutput>,
    trampolines: Vec<FunctionOutput>,
) -> Result<CodeImage, CompileError> {
    let mut image = CodeImage::default();
    let mut starts = Vec::with_capacity(functions.len() + trampolines.len());
    let mut pending = Vec::new();
    for (i, out) in functions.iter().chain(trampolines.iter()).enumerate() {
        let aligned = image.bytes.len().next_multiple_of(out.alignment as usize);
        image.bytes.resize(aligned, 0);
        let start = u32::try_from(aligned)
            .map_err(|_| CompileError::Codegen("code image larger than 4 GiB".into()))?;
        starts.push(start);
        image.bytes.extend_from_slice(&out.code);
        image.max_frame_size = image.max_frame_size.max(out.frame_size);
        if i < functions.len() {
            image.functions.push(start..start + out.code.len() as u32);
        }
        image.traps.extend(out.traps.iter().map(|t| TrapSite {
            offset: start + t.offset,
            trap: t.trap,
        }));
        image
            .stack_maps
            .extend(out.stack_maps.iter().map(|m| StackMap {
                return_address: start + m.return_address,
                ..m.clone()
            }));
        image
            .source_map
            .extend(out.source_map.iter().map(|span| SourceSpan {
                code_offset: start + span.code_offset,
                ..*span
            }));
        for (offset, kind, target, addend) in &out.relocs {
            pending.push((start + offset, *kind, target, *addend));
        }
    }
    for (i, _) in info.types.iter().enumerate() {
        image
            .entry_trampolines
            .push(starts[functions.len() + 2 * i]);
        image
            .host_trampolines
            .push(starts[functions.len() + 2 * i + 1]);
    }
    let libcall_trampolines = &starts[functions.len() + 2 * info.types.len()..];
    for (site, kind, target, addend) in pending {
        match target {
            RelocTarget::Function(index) => {
                let defined = index
                    .checked_sub(info.num_imported_functions)
                    .ok_or_else(|| CompileError::Codegen("direct call to an import".into()))?;
                let target = i64::from(image.functions[defined as usize].start);
                patch_pc_relative(&mut image.bytes, site, kind, target + addend)?;
            }
            RelocTarget::LibcallTrampoline(index) => {
                let target = i64::from(libcall_trampolines[*index as usize]);
                patch_pc_relative(&mut image.bytes, site, kind, target + addend)?;
            }
            RelocTarget::Float(call) => {
                if kind != Reloc::Abs8 {
                    return Err(CompileError::Codegen(format!(
                        "unexpected relocation {kind:?} for {call:?}"
                    )));
                }
                image.absolute_relocs.push(AbsoluteReloc {
                    offset: site,
                    target: *call,
                    addend,
                });
            }
        }
    }
    Ok(image)
}

/// Writes a PC-relative reference at `site` to image offset `target`.
fn patch_pc_relative(
    bytes: &mut [u8],
    site: u32,
    kind: Reloc,
    target: i64,
) -> Result<(), CompileError> {
    let at = site as usize;
    let delta = target - i64::from(site);
    match kind {
        Reloc::X86CallPCRel4 | Reloc::X86PCRel4 => {
            let value = i32::try_from(delta)
                .map_err(|_| CompileError::Codegen("call out of range".into()))?;
            bytes[at..at + 4].copy_from_slice(&value.to_le_bytes());
        }
        Reloc::Arm64Call => {
            let word = u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
            let imm = ((delta >> 2) as u32) & 0x03ff_ffff;
            bytes[at..at + 4].copy_from_slice(&(word | imm).to_le_bytes());
        }
        other => {
            return Err(CompileError::Codegen(format!(
                "unexpected relocation kind {other:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::largest_first;

    /// Every function once, largest first.
    #[test]
    fn the_compile_order_takes_every_function_once_largest_first() {
        let sizes = [5000, 10, 10, 10, 7000, 3, 3000, 1, 1, 1, 9000];
        let mut at = 0;
        let bodies: Vec<_> = sizes
            .iter()
            .map(|n| {
                at += n;
                at - n..at
            })
            .collect();
        let order = largest_first(&bodies);
        let mut seen = order.clone();
        seen.sort();
        assert_eq!(seen, (0..sizes.len()).collect::<Vec<_>>());
        assert_eq!(&order[..3], &[10, 4, 0]);
        assert!(order.windows(2).all(|w| sizes[w[0]] >= sizes[w[1]]));
        assert!(largest_first(&[]).is_empty());
    }
}
