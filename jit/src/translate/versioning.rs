//! Loop versioning: one range check before a loop instead of a guard in
//! every iteration (CARAT mode).
//!
//! An innermost loop whose accesses index memory 0 by affine functions
//! of its induction variables and of values that do not change in the
//! loop (`p + 8*i + 16`, `row + j`, a loop-invariant `x`) is translated
//! twice. The *fast* copy forms those accesses' addresses with no guard;
//! the *slow* copy is the loop as it always was. A check block before
//! them computes, once per entry into the loop, the loop's trip range and
//! each access's lowest and highest index over it, and enters the fast
//! copy only when every one of them is in bounds.
//!
//! **What is recognised** (`scan` over the wasm, then the CLIF the fast
//! copy produces):
//! - the loop is innermost, has no parameters, and its only back edge is
//!   a final `br_if 0`;
//! - an *induction variable* is a local written once per iteration, at
//!   the loop body's top level, by `local.get L; i32.const K; i32.add;
//!   local.set|tee L` (0 < |K| <= 2^10); top level means no branch inside
//!   the loop can skip it, and the back edge is the only way round;
//! - an *invariant* is a local the loop never writes, or a value defined
//!   before the loop;
//! - an access is *covered* when its 32-bit index is an affine form, a
//!   sum of such leaves times constants plus a constant, built by
//!   `iadd`, `isub`, `imul` and `ishl` by constants;
//! - the latch compares one induction variable plus a constant against
//!   an invariant with `ne`, `eq`, `lt`/`le` (K > 0) or `gt`/`ge` (K < 0),
//!   signed or unsigned, or tests it against zero. Only then is the trip
//!   range known; without it only forms with no induction variable are
//!   covered (hoisting a loop-invariant guard).
//!
//! **Why the check is exact.** Wasm's i32 arithmetic is arithmetic modulo
//! 2^32, and `iadd`, `isub`, `imul`, `ishl` respect it, so a form
//! evaluated exactly, in 64 bits, over the leaves' unsigned values (an
//! induction variable `L` as `L0 + n*K` at iteration `n`) is congruent to
//! the index the loop computes. When the exact value lies in `[0, bound -
//! end]` it *is* the index, whatever wrapped on the way. The form is
//! linear in `n`, so its extremes over iterations `0..=n_last` are at the
//! two ends, and `n_last` follows from the latch (with the induction
//! variable not wrapping before the exit, checked too). Coefficients,
//! steps and term counts are capped so no 64-bit sum overflows. An early
//! exit only shortens the loop, and an access in a conditional arm is
//! checked as if it ran: both only make the check stricter than needed.
//! A bound never shrinks, so a check at entry holds for every iteration,
//! whatever the loop's calls do (`memory.grow` in the loop or in a callee
//! only widens it); a call may also move the memory, which the base
//! reload after it carries into the fast base (below).
//!
//! **Spectre.** The check is a branch, and branches are predicted, so the
//! fast copy's accesses do not use the memory's base directly but a
//! *fast base* that is the base only while the check and every back edge
//! taken so far were truly passed, and otherwise the *speculation sink*,
//! an 8 GiB inaccessible reservation (`abi::SPECULATION_SINK_BYTES`, made
//! once per process) that any 32-bit index plus offset stays inside:
//! - the check block sets it with a cmov on the check's result
//!   (`select_spectre_guard(ok, base, sink)`), so a mispredicted entry
//!   accesses the sink;
//! - the back edge passes `select_spectre_guard(continue, fast base,
//!   sink)`, a cmov on the latch's own compare, so an iteration past the
//!   last one, entered by a mispredicted latch, accesses the sink, and
//!   so does every later one (once the sink, always the sink);
//! - where the base is reloaded inside the loop (after a call or the
//!   header poll's slow path, either of which may move the memory; at a
//!   split of a long block), the fast base becomes the new base unless it
//!   was the sink, by a cmov. The old fast base is live across the call
//!   only to be compared with the sink, never dereferenced, so it needs
//!   no stack map.
//!
//! So every covered access reads either inside its memory at an index the
//! check proved, or inside the sink, where no page exists and a load
//! returns nothing: the argument wasmtime makes for its guard regions.
//! One cmov per iteration replaces a compare and a cmov per access.
//! Architecturally the sink is never touched; the signal handler does not
//! claim faults there, so a VM bug would crash loudly rather than pass as
//! a guest's trap. The slow copy traps exactly as unversioned code does,
//! at the access that is out of bounds, after every earlier effect.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, Block, InstBuilder, Opcode, Value, ValueDef};
use cranelift_frontend::Variable;
use wasmparser::{BlockType, OperatorsReader};

use super::FuncTranslator;
use crate::CompileError;

/// Operators a loop body may have and still be translated twice.
const MAX_BODY_OPERATORS: usize = 600;
/// Largest induction step, coefficient and term count of a form: small
/// enough that no sum in the check overflows 64 bits (terms below 2^46,
/// a step times the trip count below 2^60).
const MAX_STEP: i64 = 1 << 10;
const MAX_COEFFICIENT: i64 = 1 << 14;
const MAX_TERMS: usize = 6;
/// How deep an index's defining instructions are followed.
const MAX_DEPTH: u32 = 12;

/// What `scan` learned of a loop from its operators.
pub(super) struct LoopPlan {
    /// Induction variables and their steps.
    inductions: HashMap<u32, i64>,
    /// Locals the loop writes.
    written: HashSet<u32>,
    /// Locals the loop reads.
    read: HashSet<u32>,
    /// Whether the latch has a shape whose trip range the check can
    /// compute (an induction variable compared with an invariant or a
    /// constant, or tested against zero). Without it, only accesses at
    /// loop-invariant indices are covered, and a loop with none is not
    /// duplicated.
    latch_known: bool,
}

/// What an operator is, as far as `scan`'s idioms go.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    Get(u32),
    Tee(u32),
    Const(i64),
    Add,
    Compare,
    Eqz,
    Other,
}

impl Shape {
    /// The local a `local.get` or `local.tee` names.
    fn local(self) -> Option<u32> {
        match self {
            Shape::Get(l) | Shape::Tee(l) => Some(l),
            _ => None,
        }
    }
}

/// Reads a loop's body (from just after its `loop`) and says whether it
/// is one to version, and what its locals do.
pub(super) fn scan(
    mut ops: OperatorsReader<'_>,
    blockty: BlockType,
) -> Result<Option<LoopPlan>, CompileError> {
    use wasmparser::Operator as O;
    if !matches!(blockty, BlockType::Empty) {
        return Ok(None);
    }
    let mut depth = 0u32;
    let mut writes: HashMap<u32, u32> = HashMap::new();
    let mut steps: HashMap<u32, i64> = HashMap::new();
    let mut read = HashSet::new();
    let mut accesses = false;
    let mut latch = false;
    // The latch's candidates: (induction variable, what it is compared
    // with: a local, or `None` for a constant).
    let mut latch_candidates: Vec<(u32, Option<u32>)> = Vec::new();
    // The operators before the current one, newest last.
    let mut recent = [Shape::Other; 5];
    for count in 0.. {
        if count > MAX_BODY_OPERATORS {
            return Ok(None);
        }
        let op = ops.read()?;
        if latch && !matches!(op, O::End) {
            return Ok(None);
        }
        let mut this = Shape::Other;
        match op {
            O::Block { .. } | O::If { .. } => depth += 1,
            O::End if depth == 0 => break,
            O::End => depth -= 1,
            O::Loop { .. } => return Ok(None),
            O::Br { relative_depth } if relative_depth == depth => return Ok(None),
            O::BrIf { relative_depth } if relative_depth == depth => {
                if depth != 0 {
                    return Ok(None);
                }
                latch = true;
                latch_candidates = latch_shapes(recent);
            }
            O::BrTable { ref targets } => {
                for target in targets.targets() {
                    if target? == depth {
                        return Ok(None);
                    }
                }
                if targets.default() == depth {
                    return Ok(None);
                }
            }
            O::LocalGet { local_index } => {
                read.insert(local_index);
                this = Shape::Get(local_index);
            }
            O::I32Const { value } => this = Shape::Const(i64::from(value)),
            O::I32Add => this = Shape::Add,
            O::I32Eqz => this = Shape::Eqz,
            O::I32Eq
            | O::I32Ne
            | O::I32LtU
            | O::I32LtS
            | O::I32LeU
            | O::I32LeS
            | O::I32GtU
            | O::I32GtS
            | O::I32GeU
            | O::I32GeS => this = Shape::Compare,
            O::LocalSet { local_index } | O::LocalTee { local_index } => {
                *writes.entry(local_index).or_default() += 1;
                match recent {
                    [_, _, Shape::Get(l), Shape::Const(k), Shape::Add]
                        if l == local_index && depth == 0 && k != 0 && k.abs() <= MAX_STEP =>
                    {
                        steps.insert(local_index, k);
                    }
                    _ => {
                        steps.remove(&local_index);
                    }
                }
                if matches!(op, O::LocalTee { .. }) {
                    this = Shape::Tee(local_index);
                }
            }
            ref op if is_access(op) => accesses = true,
            _ => {}
        }
        recent = [recent[1], recent[2], recent[3], recent[4], this];
    }
    if !latch || !accesses {
        return Ok(None);
    }
    let inductions: HashMap<u32, i64> = steps
        .into_iter()
        .filter(|(local, _)| writes.get(local) == Some(&1))
        .collect();
    let latch_known = latch_candidates.iter().any(|(induction, other)| {
        inductions.contains_key(induction) && other.is_none_or(|l| !writes.contains_key(&l))
    });
    Ok(Some(LoopPlan {
        inductions,
        written: writes.into_keys().collect(),
        read,
        latch_known,
    }))
}

/// The latches the operators before a `br_if` may form: a local, or a
/// local plus a constant, tested against zero (bare, or through
/// `i32.eqz`), or compared with a local or a constant, either way round.
/// Each is an (induction variable, other local or `None`) pair; the CLIF
/// of the fast copy decides in the end (see `latch`).
fn latch_shapes(recent: [Shape; 5]) -> Vec<(u32, Option<u32>)> {
    // The local an operand ending at `end` (exclusive) reads, if it is a
    // `local.get`/`local.tee`, or one of those plus a constant; and where
    // the operand starts.
    let operand = |end: usize| -> Option<(u32, usize)> {
        let last = *recent.get(end.checked_sub(1)?)?;
        if let Some(l) = last.local() {
            return Some((l, end - 1));
        }
        match (end.checked_sub(3).map(|i| &recent[i..end]), last) {
            (Some([first, Shape::Const(_), Shape::Add]), _) => Some((first.local()?, end - 3)),
            _ => None,
        }
    };
    let other = |s: Shape| match s {
        Shape::Const(_) => Some(None),
        Shape::Get(l) => Some(Some(l)),
        _ => None,
    };
    match recent[4] {
        Shape::Eqz => operand(4).map(|(j, _)| vec![(j, None)]).unwrap_or_default(),
        Shape::Compare => {
            let mut shapes = Vec::new();
            // `induction (+ c)` then a simple operand.
            if let (Some(o), Some((j, _))) = (other(recent[3]), operand(3)) {
                shapes.push((j, o));
            }
            // Another operand then `induction (+ c)`: when that operand is
            // a single local or constant, it is named; when it is pushed
            // before the window (`n; i; 4; add; tee i; gt_u`), the CLIF
            // decides whether it is invariant.
            if let Some((j, start)) = operand(4) {
                match start.checked_sub(1).and_then(|i| other(recent[i])) {
                    Some(o) => shapes.push((j, o)),
                    None => shapes.push((j, None)),
                }
            }
            shapes
        }
        _ => operand(5).map(|(j, _)| vec![(j, None)]).unwrap_or_default(),
    }
}

/// Whether `op` loads from or stores to linear memory.
fn is_access(op: &wasmparser::Operator<'_>) -> bool {
    use wasmparser::Operator as O;
    matches!(
        op,
        O::I32Load { .. }
            | O::I64Load { .. }
            | O::F32Load { .. }
            | O::F64Load { .. }
            | O::I32Load8S { .. }
            | O::I32Load8U { .. }
            | O::I32Load16S { .. }
            | O::I32Load16U { .. }
            | O::I64Load8S { .. }
            | O::I64Load8U { .. }
            | O::I64Load16S { .. }
            | O::I64Load16U { .. }
            | O::I64Load32S { .. }
            | O::I64Load32U { .. }
            | O::I32Store { .. }
            | O::I64Store { .. }
            | O::F32Store { .. }
            | O::F64Store { .. }
            | O::I32Store8 { .. }
            | O::I32Store16 { .. }
            | O::I64Store8 { .. }
            | O::I64Store16 { .. }
            | O::I64Store32 { .. }
    )
}

/// A leaf of an affine form: a local's value at the loop header, or a
/// value computed before the loop.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Leaf {
    Local(u32),
    Outside(Value),
}

/// `constant + Σ coefficient·leaf`, in exact integers.
#[derive(Clone, Default, PartialEq, Eq, Hash, Debug)]
struct Affine {
    constant: i64,
    /// Sorted by leaf, no zero coefficients.
    terms: Vec<(Leaf, i64)>,
}

impl Affine {
    fn add_term(&mut self, leaf: Leaf, coefficient: i64) -> Option<()> {
        match self.terms.iter_mut().find(|(l, _)| *l == leaf) {
            Some((_, c)) => *c += coefficient,
            None => self.terms.push((leaf, coefficient)),
        }
        self.terms.retain(|(_, c)| *c != 0);
        let fits = self.terms.len() <= MAX_TERMS
            && self.terms.iter().all(|(_, c)| c.abs() <= MAX_COEFFICIENT);
        fits.then_some(())
    }

    fn normalise(mut self) -> Self {
        self.terms.sort_by_key(|(leaf, _)| match leaf {
            Leaf::Local(l) => (0, *l),
            Leaf::Outside(v) => (1, v.as_u32()),
        });
        self
    }

    fn inductions(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.terms.iter().filter_map(|(leaf, c)| match leaf {
            Leaf::Local(l) => Some((*l, *c)),
            Leaf::Outside(_) => None,
        })
    }
}

/// A latch `X cc N`, normalised with the induction side on the left:
/// `X = induction + offset`, `N` an invariant form.
#[derive(Clone, Debug)]
struct Latch {
    cc: IntCC,
    induction: u32,
    offset: i64,
    limit: Affine,
}

/// The accesses of one group of forms (same terms) the check covers: the
/// lowest constant and the highest constant plus access end.
#[derive(Clone, Copy, Debug)]
struct Extent {
    lowest: i64,
    highest_end: i64,
}

/// A loop being translated in its fast copy.
pub(super) struct FastLoop {
    plan: LoopPlan,
    /// The block the entry check goes in (filled at the loop's end).
    check: Block,
    header: Block,
    /// The index of the loop's frame.
    frame: usize,
    /// Each local's value at the header, for the locals forms may use.
    leaves: HashMap<Value, u32>,
    /// The base the fast copy's covered accesses use (see the module doc).
    pub(super) fast_base: Variable,
    /// The speculation sink's address, loaded before the loop.
    sink: Value,
    covered: HashMap<Vec<(Leaf, i64)>, Extent>,
    latch: Option<Latch>,
    /// The fast copy's back edge broke a promise `scan` made; the check
    /// then never enters it.
    broken: bool,
}

impl FuncTranslator<'_, '_> {
    /// Opens a versioned loop (after `scan` accepted it): the current
    /// block jumps to a check block that is filled at the loop's end, and
    /// translation goes on in the fast copy's header. Returns the header.
    pub(super) fn open_fast_loop(&mut self, plan: LoopPlan) -> Block {
        let store_ctx = self.b.use_var(self.store_context);
        let sink = self.load_field(
            I64,
            self.regions.vmctx,
            store_ctx,
            crate::abi::store_context::SPECULATION_SINK,
        );
        let check = self.b.create_block();
        self.b.ins().jump(check, &[]);
        self.b.seal_block(check);
        let header = self.b.create_block();
        self.b.switch_to_block(header);
        let mut leaves = HashMap::new();
        let mut locals: Vec<u32> = plan
            .read
            .iter()
            .copied()
            .filter(|l| !plan.written.contains(l) || plan.inductions.contains_key(l))
            .collect();
        locals.sort_unstable();
        for local in locals {
            let value = self.b.use_var(self.locals[local as usize]);
            if self.b.func.dfg.value_type(value) == I32 {
                leaves.insert(value, local);
            }
        }
        let fast_base = self.b.declare_var(I64);
        self.fast_loop = Some(FastLoop {
            plan,
            check,
            header,
            frame: self.frames.len(),
            leaves,
            fast_base,
            sink,
            covered: HashMap::new(),
            latch: None,
            broken: false,
        });
        header
    }

    /// The address of a covered access in the fast copy, when `index` is
    /// one (see the module doc): the fast base plus the index.
    pub(super) fn fast_loop_address(
        &mut self,
        index: Value,
        offset: u64,
        size: u32,
    ) -> Option<Value> {
        let fast = self.fast_loop.as_ref()?;
        if offset > (i32::MAX as u64) - 16 {
            return None;
        }
        let form = self.affine(index)?;
        for (local, _) in form.inductions() {
            let induction = fast.plan.inductions.contains_key(&local);
            if (fast.plan.written.contains(&local) && !induction)
                || (induction && !fast.plan.latch_known)
            {
                return None;
            }
        }
        let end = offset as i64 + i64::from(size);
        let fast = self.fast_loop.as_mut()?;
        let extent = fast.covered.entry(form.terms).or_insert(Extent {
            lowest: form.constant,
            highest_end: form.constant + end,
        });
        extent.lowest = extent.lowest.min(form.constant);
        extent.highest_end = extent.highest_end.max(form.constant + end);
        let fast_base = fast.fast_base;
        self.stats.guards_removed_versioned += 1;
        let base = self.b.use_var(fast_base);
        let index = self.b.ins().uextend(I64, index);
        Some(self.b.ins().iadd(base, index))
    }

    /// `value` as an affine form over the loop's leaves.
    fn affine(&self, value: Value) -> Option<Affine> {
        let mut form = Affine::default();
        self.add_affine(value, 1, &mut form, 0)?;
        Some(form.normalise())
    }

    fn add_affine(&self, value: Value, scale: i64, form: &mut Affine, depth: u32) -> Option<()> {
        let fast = self.fast_loop.as_ref()?;
        let dfg = &self.b.func.dfg;
        let value = dfg.resolve_aliases(value);
        if depth > MAX_DEPTH || scale.abs() > MAX_COEFFICIENT || dfg.value_type(value) != I32 {
            return None;
        }
        if let Some(bits) = super::iconst_bits(dfg, value) {
            form.constant += scale * i64::from(bits as i32);
            return Some(());
        }
        if let Some(&local) = fast.leaves.get(&value) {
            return form.add_term(Leaf::Local(local), scale);
        }
        let outside = |block: Block| block.as_u32() < fast.header.as_u32();
        let inst = match dfg.value_def(value) {
            ValueDef::Param(block, _) => {
                return outside(block).then(|| form.add_term(Leaf::Outside(value), scale))?;
            }
            ValueDef::Result(inst, _) => inst,
            _ => return None,
        };
        if self.b.func.layout.inst_block(inst).is_some_and(outside) {
            return form.add_term(Leaf::Outside(value), scale);
        }
        let args = dfg.inst_args(inst);
        let constant = |v: Value| super::iconst_bits(dfg, v).map(|bits| i64::from(bits as i32));
        match dfg.insts[inst].opcode() {
            Opcode::Iadd => {
                self.add_affine(args[0], scale, form, depth + 1)?;
                self.add_affine(args[1], scale, form, depth + 1)
            }
            Opcode::Isub => {
                self.add_affine(args[0], scale, form, depth + 1)?;
                self.add_affine(args[1], -scale, form, depth + 1)
            }
            Opcode::Imul => match (constant(args[0]), constant(args[1])) {
                (_, Some(k)) if k.abs() <= MAX_COEFFICIENT => {
                    self.add_affine(args[0], scale * k, form, depth + 1)
                }
                (Some(k), _) if k.abs() <= MAX_COEFFICIENT => {
                    self.add_affine(args[1], scale * k, form, depth + 1)
                }
                _ => None,
            },
            Opcode::Ishl => {
                let shift = constant(args[1])? & 31;
                (shift <= 14).then_some(())?;
                self.add_affine(args[0], scale << shift, form, depth + 1)
            }
            _ => None,
        }
    }

    /// At the fast copy's back edge (`br_if 0` on `condition`): checks the
    /// promises `scan` made, learns the latch, and masks the fast base
    /// with the latch's compare for the iteration the edge starts.
    pub(super) fn fast_loop_back_edge(&mut self, condition: Value) {
        let Some(fast) = self.fast_loop.as_ref() else {
            return;
        };
        if self.frames.len() != fast.frame + 1 {
            return;
        }
        let mut broken = false;
        let mut locals: Vec<(Value, u32)> = fast.leaves.iter().map(|(v, l)| (*v, *l)).collect();
        locals.sort_unstable_by_key(|(_, local)| *local);
        for (header_value, local) in locals {
            let now = self.b.use_var(self.locals[local as usize]);
            let step = self
                .fast_loop
                .as_ref()
                .and_then(|f| f.plan.inductions.get(&local).copied());
            let expected = match step {
                None => self.b.func.dfg.resolve_aliases(now) == header_value,
                Some(k) => self.is_increment(now, header_value, k),
            };
            broken |= !expected;
        }
        let latch = self.latch(condition);
        let dfg = &self.b.func.dfg;
        let inst = dfg.value_def(dfg.resolve_aliases(condition)).inst();
        // Mask on the compare itself when the condition is one, so the
        // cmov and the branch share it.
        let flag = inst
            .filter(|&i| dfg.insts[i].opcode() == Opcode::Uextend)
            .map(|i| dfg.inst_args(i)[0])
            .unwrap_or(condition);
        let fast = self.fast_loop.as_mut().expect("checked above");
        fast.broken |= broken;
        fast.latch = latch;
        if fast.covered.is_empty() {
            // Nothing uses the fast base: no mask to pay for.
            return;
        }
        let (fast_base, sink) = (fast.fast_base, fast.sink);
        let current = self.b.use_var(fast_base);
        let masked = self.b.ins().select_spectre_guard(flag, current, sink);
        self.b.def_var(fast_base, masked);
    }

    /// Whether `value` is `header_value + step` (an i32 add).
    fn is_increment(&self, value: Value, header_value: Value, step: i64) -> bool {
        let dfg = &self.b.func.dfg;
        let Some(inst) = dfg.value_def(dfg.resolve_aliases(value)).inst() else {
            return false;
        };
        if dfg.insts[inst].opcode() != Opcode::Iadd {
            return false;
        }
        let args = dfg.inst_args(inst);
        let is = |v: Value, k: Value| {
            dfg.resolve_aliases(v) == header_value
                && super::iconst_bits(dfg, k).is_some_and(|b| i64::from(b as i32) == step)
        };
        is(args[0], args[1]) || is(args[1], args[0])
    }

    /// The latch `condition` as an induction compared with an invariant.
    fn latch(&self, condition: Value) -> Option<Latch> {
        let dfg = &self.b.func.dfg;
        let condition = dfg.resolve_aliases(condition);
        let compare = dfg
            .value_def(condition)
            .inst()
            .filter(|&i| dfg.insts[i].opcode() == Opcode::Uextend)
            .and_then(|i| {
                dfg.value_def(dfg.resolve_aliases(dfg.inst_args(i)[0]))
                    .inst()
            });
        let (cc, left, right) = match compare.map(|i| &dfg.insts[i]) {
            Some(ir::InstructionData::IntCompare { cond, args, .. }) => {
                (*cond, self.affine(args[0])?, self.affine(args[1])?)
            }
            _ => (IntCC::NotEqual, self.affine(condition)?, Affine::default()),
        };
        let fast = self.fast_loop.as_ref()?;
        let single_induction = |form: &Affine| match form.terms.as_slice() {
            [(Leaf::Local(l), 1)] if fast.plan.inductions.contains_key(l) => Some(*l),
            _ => None,
        };
        let invariant = |form: &Affine| {
            form.inductions()
                .all(|(l, _)| !fast.plan.written.contains(&l))
        };
        let (cc, induction, offset, limit) =
            match (single_induction(&left), single_induction(&right)) {
                (Some(l), None) if invariant(&right) => (cc, l, left.constant, right),
                (None, Some(l)) if invariant(&left) => (cc.swap_args(), l, right.constant, left),
                _ => return None,
            };
        Some(Latch {
            cc,
            induction,
            offset,
            limit,
        })
    }

    /// After the base is reloaded inside the fast copy: the fast base
    /// follows it, unless it was the sink.
    pub(super) fn fast_loop_base_reloaded(&mut self, base: Value) {
        let Some(fast) = self.fast_loop.as_ref() else {
            return;
        };
        let (fast_base, sink) = (fast.fast_base, fast.sink);
        let current = self.b.use_var(fast_base);
        let sunk = self.b.ins().icmp(IntCC::Equal, current, sink);
        let followed = self.b.ins().select_spectre_guard(sunk, sink, base);
        self.b.def_var(fast_base, followed);
    }

    /// Whether the frame being closed is the fast copy's.
    pub(super) fn closes_fast_loop(&self) -> bool {
        self.fast_loop
            .as_ref()
            .is_some_and(|fast| fast.frame + 1 == self.frames.len())
    }

    /// At the fast copy's end: fills the check block, seals the fast
    /// header, and says whether a slow copy must follow (and where it
    /// starts).
    pub(super) fn close_fast_loop(&mut self) -> Option<Block> {
        let fast = self.fast_loop.take().expect("closing a fast loop");
        self.b.switch_to_block(fast.check);
        let (base_var, bound_var) = self.memory_cache.expect("memory 0 exists");
        let base = self.b.use_var(base_var);
        if fast.covered.is_empty() {
            // Nothing to check: the fast copy is the loop (`end_frame`
            // seals its header).
            self.b.def_var(fast.fast_base, base);
            self.b.ins().jump(fast.header, &[]);
            return None;
        }
        let bound = self.b.use_var(bound_var);
        let ok = self.entry_check(&fast, bound);
        let fast_base = self.b.ins().select_spectre_guard(ok, base, fast.sink);
        self.b.def_var(fast.fast_base, fast_base);
        let slow = self.b.create_block();
        self.b.ins().brif(ok, fast.header, &[], slow, &[]);
        self.b.seal_block(fast.header);
        self.stats.loops_versioned += 1;
        Some(slow)
    }

    /// The check block's condition: non-zero when every covered access is
    /// in bounds on every iteration.
    fn entry_check(&mut self, fast: &FastLoop, bound: Value) -> Value {
        let uses_induction = fast.covered.keys().any(|terms| {
            terms.iter().any(
                |(leaf, _)| matches!(leaf, Leaf::Local(l) if fast.plan.inductions.contains_key(l)),
            )
        });
        let last_iteration = match (&fast.latch, fast.broken) {
            (_, true) => None,
            (Some(latch), false) => self.last_iteration(fast, latch),
            (None, false) if !uses_induction => Some((self.b.ins().iconst(I64, 0), None)),
            (None, false) => None,
        };
        let Some((n_last, exit_ok)) = last_iteration else {
            return self.b.ins().iconst(ir::types::I8, 0);
        };
        let mut ok = exit_ok;
        let mut groups: Vec<_> = fast.covered.iter().collect();
        groups.sort_by(|a, b| format!("{:?}", a.0).cmp(&format!("{:?}", b.0)));
        for (terms, extent) in groups {
            let mut sum = self.b.ins().iconst(I64, 0);
            let mut per_iteration = 0i64;
            for &(leaf, coefficient) in terms {
                let value = self.leaf_at_entry(leaf);
                let wide = self.b.ins().uextend(I64, value);
                let term = self.b.ins().imul_imm_s(wide, coefficient);
                sum = self.b.ins().iadd(sum, term);
                if let Leaf::Local(l) = leaf {
                    per_iteration +=
                        coefficient * fast.plan.inductions.get(&l).copied().unwrap_or(0);
                }
            }
            let travel = self.b.ins().imul_imm_s(n_last, per_iteration);
            let zero = self.b.ins().iconst(I64, 0);
            let (down, up) = if per_iteration < 0 {
                (travel, zero)
            } else {
                (zero, travel)
            };
            let lowest = self.b.ins().iadd_imm_s(sum, extent.lowest);
            let lowest = self.b.ins().iadd(lowest, down);
            let highest = self.b.ins().iadd_imm_s(sum, extent.highest_end);
            let highest = self.b.ins().iadd(highest, up);
            let above_zero = self
                .b
                .ins()
                .icmp_imm_s(IntCC::SignedGreaterThanOrEqual, lowest, 0);
            let below_bound = self
                .b
                .ins()
                .icmp(IntCC::SignedLessThanOrEqual, highest, bound);
            let both = self.b.ins().band(above_zero, below_bound);
            ok = Some(match ok {
                Some(so_far) => self.b.ins().band(so_far, both),
                None => both,
            });
        }
        ok.expect("at least one group")
    }

    /// A leaf's value on entry to the loop (in the check block).
    fn leaf_at_entry(&mut self, leaf: Leaf) -> Value {
        match leaf {
            Leaf::Local(local) => self.b.use_var(self.locals[local as usize]),
            Leaf::Outside(value) => value,
        }
    }

    /// The index of the last iteration (64 bits) and, when the latch's
    /// shape needs one, a condition for the loop to end without its
    /// induction variable wrapping. `None` for a latch whose trip range
    /// cannot be bounded this way.
    fn last_iteration(&mut self, fast: &FastLoop, latch: &Latch) -> Option<(Value, Option<Value>)> {
        let step = *fast.plan.inductions.get(&latch.induction)?;
        let magnitude = step.abs();
        let entry = self.leaf_at_entry(Leaf::Local(latch.induction));
        let first = self.b.ins().iadd_imm_s(entry, latch.offset);
        let limit = self.form_value_i32(&latch.limit);
        let signed = latch.cc.unsigned() != latch.cc;
        let widen = |t: &mut Self, v: Value| {
            if signed {
                t.b.ins().sextend(I64, v)
            } else {
                t.b.ins().uextend(I64, v)
            }
        };
        use IntCC::*;
        match latch.cc {
            NotEqual => {
                let distance = if step > 0 {
                    self.b.ins().isub(limit, first)
                } else {
                    self.b.ins().isub(first, limit)
                };
                let distance = self.b.ins().uextend(I64, distance);
                let remainder = self.b.ins().urem_imm_u(distance, magnitude);
                let divides = self.b.ins().icmp_imm_u(Equal, remainder, 0);
                let n = self.b.ins().udiv_imm_u(distance, magnitude);
                Some((n, Some(divides)))
            }
            Equal => {
                let same = self.b.ins().icmp(Equal, first, limit);
                Some((self.b.ins().uextend(I64, same), None))
            }
            UnsignedLessThan | UnsignedLessThanOrEqual | SignedLessThan | SignedLessThanOrEqual
                if step > 0 =>
            {
                let (x0, n) = (widen(self, first), widen(self, limit));
                let inclusive = matches!(latch.cc, UnsignedLessThanOrEqual | SignedLessThanOrEqual);
                let exit_at = self.b.ins().iadd_imm_s(n, i64::from(inclusive));
                let distance = self.b.ins().isub(exit_at, x0);
                let n_last = self.steps_to_cover(distance, magnitude);
                let moved = self.b.ins().imul_imm_s(n_last, magnitude);
                let exit_value = self.b.ins().iadd(x0, moved);
                let top = if signed {
                    i64::from(i32::MAX)
                } else {
                    i64::from(u32::MAX)
                };
                let fits = self
                    .b
                    .ins()
                    .icmp_imm_s(SignedLessThanOrEqual, exit_value, top);
                Some((n_last, Some(fits)))
            }
            UnsignedGreaterThan
            | UnsignedGreaterThanOrEqual
            | SignedGreaterThan
            | SignedGreaterThanOrEqual
                if step < 0 =>
            {
                let (x0, n) = (widen(self, first), widen(self, limit));
                let inclusive = matches!(
                    latch.cc,
                    UnsignedGreaterThanOrEqual | SignedGreaterThanOrEqual
                );
                let exit_at = self.b.ins().iadd_imm_s(n, -i64::from(inclusive));
                let distance = self.b.ins().isub(x0, exit_at);
                let n_last = self.steps_to_cover(distance, magnitude);
                let moved = self.b.ins().imul_imm_s(n_last, magnitude);
                let exit_value = self.b.ins().isub(x0, moved);
                let bottom = if signed { i64::from(i32::MIN) } else { 0 };
                let fits = self
                    .b
                    .ins()
                    .icmp_imm_s(SignedGreaterThanOrEqual, exit_value, bottom);
                Some((n_last, Some(fits)))
            }
            _ => None,
        }
    }

    /// `ceil(max(distance, 0) / step)`: iterations until an induction
    /// moving by `step` covers `distance`.
    fn steps_to_cover(&mut self, distance: Value, step: i64) -> Value {
        let zero = self.b.ins().iconst(I64, 0);
        let positive = self.b.ins().smax(distance, zero);
        let rounded = self.b.ins().iadd_imm_s(positive, step - 1);
        self.b.ins().udiv_imm_u(rounded, step)
    }

    /// An invariant form's value as the loop computes it (modulo 2^32).
    fn form_value_i32(&mut self, form: &Affine) -> Value {
        let mut sum = self.b.ins().iconst(I32, form.constant as i32 as i64);
        for &(leaf, coefficient) in &form.terms {
            let value = self.leaf_at_entry(leaf);
            let term = self.b.ins().imul_imm_s(value, coefficient);
            sum = self.b.ins().iadd(sum, term);
        }
        sum
    }
}
