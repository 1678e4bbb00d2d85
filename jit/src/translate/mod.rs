//! Translation of one wasm function body into Cranelift IR.
//!
//! The translator is a single forward pass over the operators (linear in the
//! body's size) that keeps the wasm operand stack as a stack of SSA values
//! and the wasm control stack as [`Frame`]s. Locals become frontend
//! `Variable`s, so the frontend builds SSA form for them. Code after an
//! unconditional branch is skipped until the `else` or `end` that makes it
//! reachable again; only the nesting depth of the skipped blocks is kept.
//!
//! The vmctx pointer is stored once, at entry, in a stack slot of its own
//! (`vmctx_slot`), and every call (a safepoint) carries a user stack map
//! entry naming that slot, so the runtime can find and rewrite it: that is
//! what lets relocation move the control block under a parked frame. After
//! each call the translator reloads the vmctx from the slot (`after_call`);
//! between calls it is an ordinary SSA value. (Declaring the variable for
//! the frontend's stack maps did the same, but its spiller turned *every*
//! use into a load from the slot and ran a liveness analysis over every
//! function: 15-20% of compile time, and a load before most vmctx field
//! loads at run time.) Nothing else derived from an arena pointer is kept
//! across a call: the store context, memory bases, bounds and table bases
//! are loaded again from the vmctx after it, so a rewritten vmctx is all a
//! resumed frame needs.
//!
//! Operator families live in sibling files: `control` (blocks, branches,
//! calls), `numeric` (arithmetic and conversions), `memory` (guarded
//! linear-memory access and bulk memory), `tables` (tables and references).

pub(crate) mod access_check;
mod control;
mod memory;
mod merge;
mod numeric;
mod ranges;
mod tables;
mod versioning;

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{
    self, AbiParam, AliasRegion, AliasRegionData, ArgumentPurpose, Block, FuncRef, GlobalValueData,
    InstBuilder, MemFlagsData, SigRef, Signature, Type, Value,
};
use cranelift_codegen::isa::CallConv;
use cranelift_frontend::{FunctionBuilder, Variable};
use wasmparser::{FunctionBody, Operator};

use crate::abi::{self, Libcall, Location, SharedKind, VmctxLayout};
use crate::module_info::{FuncType, ModuleInfo, ValType};
use crate::trap::Trap;
use crate::{CompileError, MemoryStrategy};

/// Namespace of `UserExternalName`s that name wasm functions.
pub const FUNCTION_NAMESPACE: u32 = 0;
/// Namespace of `UserExternalName`s that name libcall trampolines.
pub const LIBCALL_NAMESPACE: u32 = 1;

/// The Cranelift type that carries a wasm value. References are pointers.
pub fn clif_type(ty: ValType) -> Type {
    match ty {
        ValType::I32 => I32,
        ValType::I64 => I64,
        ValType::F32 => F32,
        ValType::F64 => F64,
        ValType::FuncRef | ValType::ExternRef => I64,
    }
}

/// The signature of a wasm function in JIT code: the callee's vmctx, the
/// caller's vmctx, then the wasm parameters; the wasm results that go in
/// registers (the rest are spilled, see [`abi::results`]).
pub fn wasm_signature(ty: &FuncType, call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params
        .push(AbiParam::special(I64, ArgumentPurpose::VMContext));
    sig.params.push(AbiParam::new(I64));
    sig.params
        .extend(ty.params.iter().map(|t| AbiParam::new(clif_type(*t))));
    let locations = abi::results::locations(&ty.results);
    sig.returns.extend(
        ty.results
            .iter()
            .zip(&locations)
            .filter(|(_, location)| location.is_none())
            .map(|(t, _)| AbiParam::new(clif_type(*t))),
    );
    sig
}

/// Loads the store's result spill area from the store context `store_ctx`.
pub(crate) fn result_spill_area(b: &mut FunctionBuilder<'_>, store_ctx: Value) -> Value {
    b.ins().load(
        I64,
        MemFlagsData::trusted(),
        store_ctx,
        abi::store_context::RESULT_SPILL,
    )
}

/// Before a return of `results` (of types `types`): stores the spilled ones
/// into `spill_area` and gives the ones that go in registers.
pub(crate) fn spill_results(
    b: &mut FunctionBuilder<'_>,
    spill_area: Option<Value>,
    types: &[ValType],
    results: &[Value],
) -> Vec<Value> {
    let mut registers = Vec::with_capacity(results.len());
    for (value, location) in results.iter().zip(abi::results::locations(types)) {
        match (location, spill_area) {
            (None, _) => registers.push(*value),
            (Some(slot), Some(area)) => {
                let offset = abi::results::spill_offset(slot);
                b.ins().store(MemFlagsData::trusted(), *value, area, offset);
            }
            (Some(_), None) => unreachable!("a spilling type loads its spill area"),
        }
    }
    registers
}

/// After a call returning `types`: the whole result list, from the call's
/// register results and the spilled ones in `spill_area`.
pub(crate) fn unspill_results(
    b: &mut FunctionBuilder<'_>,
    spill_area: Option<Value>,
    types: &[ValType],
    registers: &[Value],
) -> Vec<Value> {
    let mut registers = registers.iter();
    abi::results::locations(types)
        .into_iter()
        .zip(types)
        .map(|(location, ty)| match (location, spill_area) {
            (None, _) => *registers.next().expect("one register result each"),
            (Some(slot), Some(area)) => {
                let offset = abi::results::spill_offset(slot);
                b.ins()
                    .load(clif_type(*ty), MemFlagsData::trusted(), area, offset)
            }
            (Some(_), None) => unreachable!("a spilling type loads its spill area"),
        })
        .collect()
}

/// The signature of a libcall, as `abi::foreach_libcall!` defines it.
pub fn libcall_signature(call: Libcall, call_conv: CallConv) -> Signature {
    let clif = |t: abi::LibcallType| match t {
        abi::LibcallType::U32 => I32,
        abi::LibcallType::U64 | abi::LibcallType::Ptr => I64,
    };
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(I64));
    sig.params
        .extend(call.params().iter().map(|t| AbiParam::new(clif(*t))));
    sig.returns
        .extend(call.result().map(|t| AbiParam::new(clif(t))));
    sig
}

/// The signature wasm code calls libcall `call`'s trampoline with: the
/// runtime's own ([`libcall_signature`]), except that a libcall that
/// [preserves registers](Libcall::preserves_registers) is called with the
/// preserve-all convention and returns nothing.
pub fn libcall_call_signature(call: Libcall, call_conv: CallConv) -> Signature {
    if !call.preserves_registers() {
        return libcall_signature(call, call_conv);
    }
    let mut sig = libcall_signature(call, CallConv::PreserveAll);
    sig.returns.clear();
    sig
}

/// The bits of `value` when an `iconst` defines it (sign-extended from the
/// constant's type, as Cranelift stores them).
pub(crate) fn iconst_bits(dfg: &ir::DataFlowGraph, value: Value) -> Option<i64> {
    let inst = dfg.value_def(dfg.resolve_aliases(value)).inst()?;
    match dfg.insts[inst] {
        ir::InstructionData::UnaryImm {
            opcode: ir::Opcode::Iconst,
            imm,
        } => Some(imm.bits()),
        _ => None,
    }
}

/// This host's frontend configuration, for unit tests that build CLIF by
/// hand.
#[cfg(test)]
pub(crate) fn host_frontend_config() -> cranelift_codegen::isa::TargetFrontendConfig {
    cranelift_native::builder()
        .expect("a supported host")
        .finish(cranelift_codegen::settings::Flags::new(
            cranelift_codegen::settings::builder(),
        ))
        .expect("default flags")
        .frontend_config()
}

/// What every function of a module shares during translation.
pub struct ModuleEnv<'a> {
    pub info: &'a ModuleInfo,
    pub layout: &'a VmctxLayout,
    pub strategy: MemoryStrategy,
    /// Count executed operators against the store's fuel.
    pub fuel: bool,
    pub call_conv: CallConv,
    pub frontend: cranelift_codegen::isa::TargetFrontendConfig,
}

/// What translation did with a function's memory accesses and polls:
/// summed per module and per VM, and printed by `--stats`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CodeStats {
    /// Inline bounds checks emitted (every guarded access in CARAT mode;
    /// in paging mode, offsets past the guard region and bulk operations).
    pub guards_emitted: u64,
    /// Checks removed because the access's constant address lies within
    /// its memory's declared minimum size.
    pub guards_removed_static: u64,
    /// Checks removed because a check on the same index, covering the
    /// access, dominates it.
    pub guards_removed_dominated: u64,
    /// Checks removed because an earlier load off the same local, in a
    /// window where trapping earlier cannot be seen, checked this
    /// access's end too (see `merge`).
    pub guards_removed_merged: u64,
    /// Accesses paging mode compiles with no check at all: its guard
    /// region covers them.
    pub accesses_unguarded: u64,
    /// Checks removed from the fast copy of a versioned loop: one range
    /// check before the loop covers them (see `versioning`).
    pub guards_removed_versioned: u64,
    /// Loops translated twice, a fast copy behind a range check and the
    /// guarded loop as it was.
    pub loops_versioned: u64,
    /// Safepoint polls (function entries and loop headers).
    pub polls_emitted: u64,
}

impl std::ops::AddAssign for CodeStats {
    fn add_assign(&mut self, other: CodeStats) {
        self.guards_emitted += other.guards_emitted;
        self.guards_removed_static += other.guards_removed_static;
        self.guards_removed_dominated += other.guards_removed_dominated;
        self.guards_removed_merged += other.guards_removed_merged;
        self.accesses_unguarded += other.accesses_unguarded;
        self.guards_removed_versioned += other.guards_removed_versioned;
        self.loops_versioned += other.loops_versioned;
        self.polls_emitted += other.polls_emitted;
    }
}

/// The alias region id of guest linear memory (what `access_check` looks
/// for).
pub(crate) const HEAP_REGION_ID: u32 = 5;

/// Alias regions: disjoint kinds of memory, so that Cranelift can drop
/// redundant loads of vmctx fields across guest stores.
#[derive(Clone, Copy)]
struct Regions {
    /// vmctx header, funcref records and import pointers.
    vmctx: AliasRegion,
    memory_defs: AliasRegion,
    table_defs: AliasRegion,
    globals: AliasRegion,
    /// Guest linear memory.
    heap: AliasRegion,
    table_elements: AliasRegion,
    /// The store context's fuel counter.
    fuel: AliasRegion,
}

impl Regions {
    fn new(func: &mut ir::Function) -> Self {
        let mut make = |user_id: u32, description: &'static str| {
            func.dfg.alias_regions.insert(AliasRegionData {
                user_id,
                description: description.into(),
            })
        };
        Regions {
            vmctx: make(1, "vmctx"),
            memory_defs: make(2, "memory definitions"),
            table_defs: make(3, "table definitions"),
            globals: make(4, "globals"),
            heap: make(HEAP_REGION_ID, "linear memory"),
            table_elements: make(6, "table elements"),
            fuel: make(7, "fuel"),
        }
    }
}

/// What kind of construct a control frame is.
enum FrameKind {
    Block,
    Loop {
        header: Block,
    },
    If {
        else_block: Block,
        /// The values the `if` received, which the else arm starts with.
        params: Vec<Value>,
        has_else: bool,
    },
}

struct Frame {
    kind: FrameKind,
    /// Where control goes after `end`; takes the results as block params.
    destination: Block,
    num_params: usize,
    num_results: usize,
    /// Operand stack height below this frame's parameters.
    stack_height: usize,
    /// Whether anything reaches `destination`.
    exit_reachable: bool,
    /// The guards passed before the construct opened (see
    /// `memory::CheckedGuards`): what its `else` and `end` return to.
    guards_mark: usize,
}

impl Frame {
    /// The block a branch to this frame goes to, and how many values it takes.
    fn branch_target(&self) -> (Block, usize) {
        match self.kind {
            FrameKind::Loop { header } => (header, self.num_params),
            _ => (self.destination, self.num_results),
        }
    }
}

pub struct FuncTranslator<'a, 'f> {
    env: &'a ModuleEnv<'a>,
    b: FunctionBuilder<'f>,
    /// The function's index in the module.
    func_index: u32,
    vmctx: Variable,
    /// Where the vmctx lives across calls, for the runtime to rewrite.
    vmctx_slot: ir::StackSlot,
    locals: Vec<Variable>,
    /// Locals set since the last split of a long block (see
    /// `memory::split_long_block`), and which those are.
    dirty_locals: Vec<u32>,
    local_is_dirty: Vec<bool>,
    stack: Vec<Value>,
    frames: Vec<Frame>,
    reachable: bool,
    /// Nesting depth of blocks opened in unreachable code.
    dead_depth: u32,
    regions: Regions,
    sig_refs: HashMap<u32, SigRef>,
    func_refs: HashMap<u32, FuncRef>,
    libcall_refs: HashMap<u32, FuncRef>,
    /// Operators executed in the current basic block but not yet charged.
    unpaid_fuel: u64,
    /// Memory 0's base and bound, kept in variables (registers) and
    /// reloaded after every call: only a call (a safepoint) can grow or
    /// move a memory, so between calls the cached values are current.
    memory_cache: Option<(Variable, Variable)>,
    /// The store context's address, loaded from the vmctx at entry and
    /// after every call, like the memory cache: the store context is an
    /// arena region that moves only while the process is parked, at a
    /// call or a poll's slow path. A poll is then one load.
    store_context: Variable,
    /// Guards already passed in the current basic block (see
    /// `memory::CheckedGuards`).
    checked_guards: memory::CheckedGuards,
    /// For loads that open a merge window (by operator offset), the end
    /// their guard checks (see `merge`).
    merged_ends: HashMap<u64, u64>,
    /// The offset of the operator being translated.
    op_offset: u64,
    stats: CodeStats,
    /// A loop `versioning::scan` accepted, for the `loop` operator about
    /// to be translated.
    pending_plan: Option<versioning::LoopPlan>,
    /// The innermost loop, while its fast copy is translated.
    fast_loop: Option<versioning::FastLoop>,
    /// Set when a fast copy ends: the operators go back to the loop's
    /// start for its slow copy.
    rewind_to_loop: bool,
}

impl<'a, 'f> FuncTranslator<'a, 'f> {
    /// Translates the body of defined function `func_index` into `b.func`,
    /// which must already carry the function's signature.
    pub fn translate(
        env: &'a ModuleEnv<'a>,
        mut b: FunctionBuilder<'f>,
        func_index: u32,
        body: &FunctionBody<'_>,
    ) -> Result<CodeStats, CompileError> {
        let regions = Regions::new(b.func);

        // The prologue checks the frame against the store's stack limit.
        let vmctx_gv = b.func.create_global_value(GlobalValueData::VMContext);
        let trusted = b
            .func
            .dfg
            .mem_flags
            .insert_unchecked(MemFlagsData::trusted());
        let store_ctx_gv = b.func.create_global_value(GlobalValueData::Load {
            base: vmctx_gv,
            offset: abi::vmctx::STORE_CONTEXT.into(),
            global_type: I64,
            flags: trusted,
        });
        let limit_gv = b.func.create_global_value(GlobalValueData::Load {
            base: store_ctx_gv,
            offset: abi::store_context::STACK_LIMIT.into(),
            global_type: I64,
            flags: trusted,
        });
        b.func.stack_limit = Some(limit_gv);

        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);

        let vmctx = b.declare_var(I64);
        let store_context = b.declare_var(I64);
        let params = b.block_params(entry).to_vec();
        b.def_var(vmctx, params[0]);
        let vmctx_slot = b.create_sized_stack_slot(ir::StackSlotData::new(
            ir::StackSlotKind::ExplicitSlot,
            8,
            3,
        ));
        b.ins().stack_store(I64, params[0], vmctx_slot, 0);

        let ty = env.info.func_type(func_index);
        let mut locals = Vec::new();
        for (param, ty) in params[2..].iter().zip(&ty.params) {
            let var = b.declare_var(clif_type(*ty));
            if *ty == ValType::FuncRef {
                b.declare_var_needs_stack_map(var);
            }
            b.def_var(var, *param);
            locals.push(var);
        }
        let mut reader = body.get_locals_reader()?;
        for _ in 0..reader.get_count() {
            let (count, ty) = reader.read()?;
            let ty = crate::module_info::val_type_of(ty)?;
            for _ in 0..count {
                let var = b.declare_var(clif_type(ty));
                if ty == ValType::FuncRef {
                    b.declare_var_needs_stack_map(var);
                }
                let zero = zero_value(&mut b, ty);
                b.def_var(var, zero);
                locals.push(var);
            }
        }

        let destination = b.create_block();
        for result in &ty.results {
            let param = b.append_block_param(destination, clif_type(*result));
            if *result == ValType::FuncRef {
                b.declare_value_needs_stack_map(param);
            }
        }
        let mut t = FuncTranslator {
            env,
            b,
            func_index,
            vmctx,
            vmctx_slot,
            local_is_dirty: vec![false; locals.len()],
            locals,
            dirty_locals: Vec::new(),
            stack: Vec::new(),
            frames: vec![Frame {
                kind: FrameKind::Block,
                destination,
                num_params: 0,
                num_results: ty.results.len(),
                stack_height: 0,
                exit_reachable: false,
                guards_mark: 0,
            }],
            reachable: true,
            dead_depth: 0,
            regions,
            sig_refs: HashMap::new(),
            func_refs: HashMap::new(),
            libcall_refs: HashMap::new(),
            unpaid_fuel: 0,
            memory_cache: None,
            store_context,
            checked_guards: memory::CheckedGuards::default(),
            merged_ends: merge::merged_ends(body)?,
            op_offset: 0,
            stats: CodeStats::default(),
            pending_plan: None,
            fast_loop: None,
            rewind_to_loop: false,
        };
        t.reload_store_context();
        if !env.info.memories.is_empty() {
            let base = t.b.declare_var(I64);
            let bound = t.b.declare_var(I64);
            t.memory_cache = Some((base, bound));
            t.reload_memory_cache();
        }
        if calls_functions(body)? {
            t.emit_poll_then(None, true);
        }

        let mut ops = body.get_operators_reader()?;
        // Where the loop being versioned starts (just after its `loop`).
        let mut loop_start = None;
        while !t.frames.is_empty() {
            let (op, offset) = ops.read_with_offset()?;
            t.op_offset = offset;
            // Every instruction made for the operator maps back to its
            // byte in the module: what a backtrace names.
            t.b.set_srcloc(cranelift_codegen::ir::SourceLoc::new(offset as u32));
            if let Operator::Loop { blockty } = op
                && t.may_version_loop()
            {
                t.pending_plan = versioning::scan(ops.clone(), blockty)?;
                loop_start = t.pending_plan.is_some().then(|| ops.clone());
            }
            t.operator(op)?;
            if std::mem::take(&mut t.rewind_to_loop) {
                ops = loop_start.take().expect("a versioned loop's start");
            }
        }
        // The function frame's `end` left us in its destination block.
        if t.reachable {
            let results = t.stack.split_off(t.stack.len() - ty.results.len());
            t.return_(&results);
        }
        let stats = t.stats;
        t.b.finalize(env.frontend);
        Ok(stats)
    }

    fn operator(&mut self, op: Operator<'_>) -> Result<(), CompileError> {
        if !self.reachable {
            return self.unreachable_operator(op);
        }
        if self.env.fuel {
            self.unpaid_fuel += 1;
            if ends_basic_block(&op) {
                self.charge_fuel();
            }
        }
        if self.control_operator(&op)?
            || self.numeric_operator(&op)
            || self.memory_operator(&op)
            || self.table_operator(&op)
        {
            return Ok(());
        }
        Err(CompileError::Unsupported(format!("{op:?}")))
    }

    // ----- locals and the operand stack -----

    fn set_local(&mut self, index: u32, v: Value) {
        self.b.def_var(self.locals[index as usize], v);
        if !std::mem::replace(&mut self.local_is_dirty[index as usize], true) {
            self.dirty_locals.push(index);
        }
    }

    fn push(&mut self, v: Value) {
        self.stack.push(v);
    }

    fn pop(&mut self) -> Value {
        self.stack
            .pop()
            .expect("validated: operand stack underflow")
    }

    fn pop2(&mut self) -> (Value, Value) {
        let b = self.pop();
        let a = self.pop();
        (a, b)
    }

    fn pop3(&mut self) -> (Value, Value, Value) {
        let c = self.pop();
        let (a, b) = self.pop2();
        (a, b, c)
    }

    fn peek_n(&self, n: usize) -> &[Value] {
        &self.stack[self.stack.len() - n..]
    }

    fn pop_n(&mut self, n: usize) -> Vec<Value> {
        self.stack.split_off(self.stack.len() - n)
    }

    // ----- vmctx access -----

    fn vmctx(&mut self) -> Value {
        self.b.use_var(self.vmctx)
    }

    /// Declares `value` for stack maps if it is a funcref: a pointer to a
    /// record in some instance's vmctx, which relocation may move while the
    /// value is live across a call. (Externrefs are host tokens, not
    /// pointers.)
    fn mark_arena_pointer(&mut self, value: Value, ty: ValType) {
        if ty == ValType::FuncRef {
            self.b.declare_value_needs_stack_map(value);
        }
    }

    fn flags(&self, region: AliasRegion) -> MemFlagsData {
        MemFlagsData::trusted().with_alias_region(Some(region))
    }

    /// Loads a field of a runtime structure the VM owns (never guest data).
    fn load_field(&mut self, ty: Type, region: AliasRegion, base: Value, offset: i32) -> Value {
        let flags = self.flags(region);
        self.b.ins().load(ty, flags, base, offset)
    }

    fn load_vmctx(&mut self, ty: Type, offset: u32) -> Value {
        let vmctx = self.vmctx();
        self.load_field(ty, self.regions.vmctx, vmctx, offset as i32)
    }

    /// A pointer to, and an offset from it of, entity `index` of `kind`:
    /// inside our own vmctx when defined here, behind the import pointer
    /// when imported.
    fn locate(&mut self, kind: SharedKind, index: u32) -> (Value, i32) {
        match self.env.layout.locate(kind, index) {
            Location::Import(pointer) => (self.load_vmctx(I64, pointer), 0),
            Location::Local(offset) => (self.vmctx(), offset as i32),
        }
    }

    fn memory_definition(&mut self, index: u32) -> (Value, i32) {
        self.locate(SharedKind::Memory, index)
    }

    fn table_definition(&mut self, index: u32) -> (Value, i32) {
        self.locate(SharedKind::Table, index)
    }

    fn global_slot(&mut self, index: u32) -> (Value, i32) {
        self.locate(SharedKind::Global, index)
    }

    // ----- calls into the runtime -----

    /// Calls a libcall through the module's trampoline for it; returns its
    /// results.
    fn call_libcall(&mut self, call: Libcall, args: &[Value]) -> Vec<Value> {
        let callee = match self.libcall_refs.get(&(call as u32)) {
            Some(f) => *f,
            None => {
                let signature = self
                    .b
                    .import_signature(libcall_call_signature(call, self.env.call_conv));
                let name = self
                    .b
                    .func
                    .declare_imported_user_function(ir::UserExternalName::new(
                        LIBCALL_NAMESPACE,
                        call as u32,
                    ));
                let f = self.b.import_function(ir::ExtFuncData {
                    name: ir::ExternalName::user(name),
                    signature,
                    colocated: true,
                    patchable: false,
                });
                self.libcall_refs.insert(call as u32, f);
                f
            }
        };
        let vmctx = self.vmctx();
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(vmctx);
        all.extend_from_slice(args);
        let inst = self.b.ins().call(callee, &all);
        let results = self.b.inst_results(inst).to_vec();
        self.after_call(inst);
        if call == Libcall::PollSlow {
            // A poll may move memories (relocation, compaction while
            // parked) but never resizes one: only wasm code grows a memory,
            // through a call. Keeping the bound's value lets Cranelift
            // hoist every guard's `bound - end` out of a loop whose header
            // polls.
            self.reload_memory_base();
        } else {
            self.reload_memory_cache();
        }
        results
    }

    /// Returns `results` from the function, spilling those that do not fit
    /// in registers.
    pub(super) fn return_(&mut self, results: &[Value]) {
        let types = &self.env.info.func_type(self.func_index).results;
        let spill_area = abi::results::spills(types).then(|| {
            let store_ctx = self.b.use_var(self.store_context);
            result_spill_area(&mut self.b, store_ctx)
        });
        let registers = spill_results(&mut self.b, spill_area, types, results);
        self.b.ins().return_(&registers);
    }

    /// What every call needs after it: a stack map naming the vmctx slot
    /// (relocation may move the vmctx while the callee runs, and rewrites
    /// the slot), and the vmctx and the store context loaded again. The
    /// caller reloads the memory variables it needs.
    pub(super) fn after_call(&mut self, call: ir::Inst) {
        self.b.func.dfg.append_user_stack_map_entry(
            call,
            ir::UserStackMapEntry {
                ty: I64,
                slot: self.vmctx_slot,
                offset: 0,
            },
        );
        let vmctx = self.b.ins().stack_load(I64, I64, self.vmctx_slot, 0);
        self.b.def_var(self.vmctx, vmctx);
        self.reload_store_context();
    }

    /// Loads the store context's address into its variable: at entry and
    /// after every call.
    pub(super) fn reload_store_context(&mut self) {
        let store_ctx = self.load_vmctx(I64, abi::vmctx::STORE_CONTEXT as u32);
        self.b.def_var(self.store_context, store_ctx);
    }

    /// Loads memory 0's base into its variable: after a poll.
    fn reload_memory_base(&mut self) {
        let Some((base_var, _)) = self.memory_cache else {
            return;
        };
        let (def, offset) = self.memory_definition(0);
        let base = self.load_field(
            I64,
            self.regions.memory_defs,
            def,
            offset + abi::memory::BASE,
        );
        self.b.def_var(base_var, base);
        self.fast_loop_base_reloaded(base);
    }

    /// Loads memory 0's base and bound into their variables: at entry and
    /// after every call.
    pub(super) fn reload_memory_cache(&mut self) {
        let Some((base_var, bound_var)) = self.memory_cache else {
            return;
        };
        let (def, offset) = self.memory_definition(0);
        let region = self.regions.memory_defs;
        let base = self.load_field(I64, region, def, offset + abi::memory::BASE);
        let bound = self.load_field(I64, region, def, offset + abi::memory::BOUND);
        self.b.def_var(base_var, base);
        self.b.def_var(bound_var, bound);
        self.fast_loop_base_reloaded(base);
    }

    /// Whether a `loop` here may be versioned: reachable, in CARAT mode,
    /// with a memory, and not inside a loop's fast copy.
    fn may_version_loop(&self) -> bool {
        self.reachable
            && self.env.strategy == MemoryStrategy::Guarded
            && self.memory_cache.is_some()
            && self.fast_loop.is_none()
    }

    /// Calls a libcall that returns a status and traps with `trap` when the
    /// status is non-zero.
    fn call_checked_libcall(&mut self, call: Libcall, args: &[Value], trap: Trap) {
        let status = self.call_libcall(call, args)[0];
        self.b.ins().trapnz(status, trap.to_cranelift());
    }

    /// Subtracts the operators of the basic block that ends here from the
    /// store's fuel. Polls check the sign.
    fn charge_fuel(&mut self) {
        if self.unpaid_fuel == 0 {
            return;
        }
        let store_ctx = self.b.use_var(self.store_context);
        let offset = abi::store_context::FUEL;
        let fuel = self.load_field(I64, self.regions.fuel, store_ctx, offset);
        let left = self.b.ins().iadd_imm_s(fuel, -(self.unpaid_fuel as i64));
        let flags = self.flags(self.regions.fuel);
        self.b.ins().store(flags, left, store_ctx, offset);
        self.unpaid_fuel = 0;
    }

    /// A poll: one load of the store's interrupt word (and, with fuel, of
    /// the fuel's sign), and a cold call into the runtime when either says
    /// stop. The interrupt load is atomic so that Cranelift never merges it
    /// with an earlier poll's load. The call preserves every register (see
    /// [`Libcall::preserves_registers`]), so values live across the loop
    /// header stay in registers.
    fn emit_poll(&mut self) {
        self.emit_poll_then(None, false);
    }

    /// A poll whose slow path goes on at `after_slow` when given, instead
    /// of where the poll is (see `versioning`); the block after the poll
    /// (the current block on return) is then left unsealed. With
    /// `check_stack` (at the entry of a function that calls), the slow
    /// path also runs when the stack pointer is below the store's soft
    /// stack limit, where it grows the stack (see
    /// `abi::store_context::STACK_SOFT_LIMIT`): a compare on the same
    /// branch.
    fn emit_poll_then(&mut self, after_slow: Option<Block>, check_stack: bool) {
        self.stats.polls_emitted += 1;
        let store_ctx = self.b.use_var(self.store_context);
        let word_addr = self
            .b
            .ins()
            .iadd_imm_u(store_ctx, abi::store_context::INTERRUPT as i64);
        let mut stop = self
            .b
            .ins()
            .atomic_load(I64, MemFlagsData::trusted(), word_addr);
        if self.env.fuel {
            let fuel = self.load_field(I64, self.regions.fuel, store_ctx, abi::store_context::FUEL);
            let negative = self.b.ins().ushr_imm_u(fuel, 63);
            stop = self.b.ins().bor(stop, negative);
        }
        if check_stack {
            let sp = self.b.ins().get_stack_pointer(I64);
            let soft_limit = self.b.ins().load(
                I64,
                MemFlagsData::trusted(),
                store_ctx,
                abi::store_context::STACK_SOFT_LIMIT,
            );
            let short = self.b.ins().icmp(IntCC::UnsignedLessThan, sp, soft_limit);
            let short = self.b.ins().uextend(I64, short);
            stop = self.b.ins().bor(stop, short);
        }
        let slow = self.b.create_block();
        let resume = self.b.create_block();
        self.b.set_cold_block(slow);
        self.b.ins().brif(stop, slow, &[], resume, &[]);
        self.b.seal_block(slow);
        self.b.switch_to_block(slow);
        // The trampoline traps when the runtime says stop, and clobbers
        // no register when it returns.
        self.call_libcall(Libcall::PollSlow, &[]);
        self.b.ins().jump(after_slow.unwrap_or(resume), &[]);
        if after_slow.is_none() {
            // Otherwise the caller may add a way in, and seals it.
            self.b.seal_block(resume);
        }
        self.b.switch_to_block(resume);
    }

    fn bool_to_i32(&mut self, flag: Value) -> Value {
        self.b.ins().uextend(I32, flag)
    }

    fn i32_is_zero(&mut self, v: Value) -> Value {
        let flag = self.b.ins().icmp_imm_u(IntCC::Equal, v, 0);
        self.bool_to_i32(flag)
    }
}

/// Whether control may leave the current basic block at this operator (or
/// a new one starts), so that the fuel of the block so far is charged.
fn ends_basic_block(op: &Operator<'_>) -> bool {
    matches!(
        op,
        Operator::Loop { .. }
            | Operator::If { .. }
            | Operator::Else
            | Operator::End
            | Operator::Br { .. }
            | Operator::BrIf { .. }
            | Operator::BrTable { .. }
            | Operator::Return
            | Operator::Call { .. }
            | Operator::CallIndirect { .. }
    )
}

/// The zero value of a wasm type, as locals start out.
fn zero_value(b: &mut FunctionBuilder<'_>, ty: ValType) -> Value {
    match ty {
        ValType::I32 => b.ins().iconst(I32, 0),
        ValType::I64 | ValType::FuncRef | ValType::ExternRef => b.ins().iconst(I64, 0),
        ValType::F32 => b.ins().f32const(0.0),
        ValType::F64 => b.ins().f64const(0.0),
    }
}

/// Narrow an i32 or i64 to `ty` bits then sign-extend back.
fn sign_extend_from(b: &mut FunctionBuilder<'_>, v: Value, from: Type) -> Value {
    let ty = b.func.dfg.value_type(v);
    let narrow = b.ins().ireduce(from, v);
    b.ins().sextend(ty, narrow)
}

/// Whether a body calls functions (wasm or host), which decides whether its
/// entry polls.
///
/// *Why a function that calls nothing needs no entry poll.* Polls exist so
/// that every long-running path meets one: the runtime preempts, kills,
/// charges fuel and relocates only there. Every loop header polls, so the
/// only other unbounded paths are chains of calls (recursion, mutual or
/// through the host), and every function on such a cycle calls something,
/// so it polls at entry. A function that calls nothing and has no loop runs
/// at most once through each of its operators before it returns to a
/// caller that polls, and one that has loops polls at their headers. Most
/// leaf helpers in C code are of the first kind, and without the poll's
/// cold call they compile smaller and quicker.
fn calls_functions(body: &FunctionBody<'_>) -> Result<bool, wasmparser::BinaryReaderError> {
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        if matches!(
            ops.read()?,
            Operator::Call { .. }
                | Operator::CallIndirect { .. }
                | Operator::ReturnCall { .. }
                | Operator::ReturnCallIndirect { .. }
                | Operator::CallRef { .. }
                | Operator::ReturnCallRef { .. }
        ) {
            return Ok(true);
        }
    }
    Ok(false)
}
