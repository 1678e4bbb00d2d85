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
//!   `iadd`, `isub`, `imul` and `ishl` by constants; an induction
//!   variable times an invariant value (`k * n`, a column walk) is a leaf
//!   with a run-time coefficient, whose group the check evaluates in 128
//!   bits;
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
//! - the header poll's slow path, which may move the memory, does not
//!   come back to the fast copy: it goes on in the slow copy, from the
//!   same iteration (SSA carries the locals over);
//! - where the base is reloaded inside the body (after a call, which may
//!   move the memory; at a split of a long block), the fast base becomes
//!   the new base unless it was the sink, by a cmov. The old fast base is
//!   live across the call only to be compared with the sink, never
//!   dereferenced, so it needs no stack map.
//!
//! So every covered access reads either inside its memory at an index the
//! check proved, or inside the sink, where no page exists and a load
//! returns nothing: the argument wasmtime makes for its guard regions.
//! One cmov per iteration replaces a compare and a cmov per access.
//! Architecturally the sink is never touched; the signal handler does not
//! claim faults there, so a VM bug would crash loudly rather than pass as
//! a guest's trap. The slow copy traps exactly as unversioned code does,
//! at the access that is out of bounds, after every earlier effect.

mod check;
mod scan;

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{CondCode, IntCC};
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, Block, InstBuilder, Opcode, Value, ValueDef};
use cranelift_frontend::Variable;

use super::FuncTranslator;

pub(super) use scan::{LoopPlan, scan};

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

/// A leaf of an affine form: a local's value at the loop header, a value
/// computed before the loop, or one the loop computes from those alone
/// (`i * n` of two invariant locals), which the check block computes
/// again.
///
/// `Scaled(l, v)` is induction variable `l` times invariant `v` (a column
/// walk, `k * n`): its coefficient is known only at run time, so the
/// check evaluates its group in 128 bits, where nothing overflows.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Leaf {
    Local(u32),
    Outside(Value),
    Invariant(Value),
    Scaled(u32, Value),
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
            Leaf::Invariant(v) => (2, v.as_u32()),
            Leaf::Scaled(l, v) => (3 + u64::from(*l), v.as_u32()),
        });
        self
    }

    /// The locals the form reads (as `Local` or `Scaled` leaves).
    fn locals(&self) -> impl Iterator<Item = (u32, i64)> + '_ {
        self.terms.iter().filter_map(|(leaf, c)| match leaf {
            Leaf::Local(l) | Leaf::Scaled(l, _) => Some((*l, *c)),
            Leaf::Outside(_) | Leaf::Invariant(_) => None,
        })
    }
}

/// Whether `value` is defined before the loop (in a block created before
/// its header: every block of the loop is created after it).
fn defined_before_loop(func: &ir::Function, fast: &FastLoop, value: Value) -> bool {
    let block = match func.dfg.value_def(value) {
        ValueDef::Param(block, _) => Some(block),
        ValueDef::Result(inst, _) => func.layout.inst_block(inst),
        _ => None,
    };
    block.is_some_and(|block| block.as_u32() < fast.header.as_u32())
}

/// Whether the loop computes `value` from invariants alone: constants,
/// locals it never writes, values from before the loop, combined by
/// integer arithmetic that cannot trap.
fn is_invariant(func: &ir::Function, fast: &FastLoop, value: Value, depth: u32) -> bool {
    let dfg = &func.dfg;
    let value = dfg.resolve_aliases(value);
    if depth > MAX_DEPTH || dfg.value_type(value) != I32 {
        return false;
    }
    if super::iconst_bits(dfg, value).is_some() {
        return true;
    }
    if let Some(local) = fast.leaves.get(&value) {
        return !fast.plan.written.contains(local);
    }
    if defined_before_loop(func, fast, value) {
        return true;
    }
    let Some(inst) = dfg.value_def(value).inst() else {
        return false;
    };
    matches!(
        dfg.insts[inst].opcode(),
        Opcode::Iadd
            | Opcode::Isub
            | Opcode::Imul
            | Opcode::Ishl
            | Opcode::Ushr
            | Opcode::Sshr
            | Opcode::Band
            | Opcode::Bor
            | Opcode::Bxor
    ) && dfg
        .inst_args(inst)
        .iter()
        .all(|&arg| is_invariant(func, fast, arg, depth + 1))
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
pub(super) struct Extent {
    lowest: i64,
    highest_end: i64,
}

/// A loop being translated in its fast copy.
pub(super) struct FastLoop {
    plan: LoopPlan,
    /// The block the entry check goes in (filled at the loop's end).
    check: Block,
    header: Block,
    /// The slow copy's header: where the check sends a loop it cannot
    /// prove, and where the fast copy goes on after its header poll's
    /// slow path (which may have moved the memory).
    slow_header: Block,
    /// The block after the fast header's poll (unsealed until the end).
    header_resume: Block,
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
    /// Whether a covered access has used the fast base yet; until then,
    /// whether the base was reloaded in this iteration before it (the fast
    /// base carried round the loop must then follow the new base).
    fast_base_used: bool,
    reloaded: bool,
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
        let slow_header = self.b.create_block();
        self.b.switch_to_block(header);
        let leaves = HashMap::new();
        let fast_base = self.b.declare_var(I64);
        self.fast_loop = Some(FastLoop {
            plan,
            check,
            header,
            slow_header,
            header_resume: header,
            frame: self.frames.len(),
            leaves,
            fast_base,
            sink,
            covered: HashMap::new(),
            latch: None,
            broken: false,
            fast_base_used: false,
            reloaded: false,
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
        // Leaves are invariant locals or induction variables; an induction
        // variable needs a latch whose trip range the check can compute.
        let uses_induction = form
            .locals()
            .any(|(local, _)| fast.plan.inductions.contains_key(&local));
        if uses_induction && !fast.plan.latch_known {
            return None;
        }
        let end = offset as i64 + i64::from(size);
        let fast = self.fast_loop.as_mut()?;
        let extent = fast.covered.entry(form.terms).or_insert(Extent {
            lowest: form.constant,
            highest_end: form.constant + end,
        });
        extent.lowest = extent.lowest.min(form.constant);
        extent.highest_end = extent.highest_end.max(form.constant + end);
        let first_after_reload = !fast.fast_base_used && fast.reloaded;
        fast.fast_base_used = true;
        let fast_base = fast.fast_base;
        if first_after_reload {
            let (base_var, _) = self.memory_cache.expect("memory 0 exists");
            let base = self.b.use_var(base_var);
            self.follow_base(base);
        }
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
        if defined_before_loop(self.b.func, fast, value) {
            return form.add_term(Leaf::Outside(value), scale);
        }
        let inst = dfg.value_def(value).inst()?;
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
                _ => self
                    .scaled_term(args[0], args[1], scale, form)
                    .or_else(|| self.scaled_term(args[1], args[0], scale, form))
                    .or_else(|| self.invariant_term(value, scale, form)),
            },
            Opcode::Ishl => {
                let shift = constant(args[1])? & 31;
                (shift <= 14).then_some(())?;
                self.add_affine(args[0], scale << shift, form, depth + 1)
            }
            _ => self.invariant_term(value, scale, form),
        }
    }

    /// Adds `induction * invariant` as a `Scaled` leaf, if `induction` is
    /// an induction variable's value in the body and `invariant` one.
    fn scaled_term(
        &self,
        induction: Value,
        invariant: Value,
        scale: i64,
        form: &mut Affine,
    ) -> Option<()> {
        let fast = self.fast_loop.as_ref()?;
        let dfg = &self.b.func.dfg;
        let local = *fast.leaves.get(&dfg.resolve_aliases(induction))?;
        fast.plan.inductions.contains_key(&local).then_some(())?;
        is_invariant(self.b.func, fast, invariant, 0).then_some(())?;
        form.add_term(Leaf::Scaled(local, dfg.resolve_aliases(invariant)), scale)
    }

    /// Adds `value` as an `Invariant` leaf, if the loop computes it from
    /// invariants alone.
    fn invariant_term(&self, value: Value, scale: i64, form: &mut Affine) -> Option<()> {
        let fast = self.fast_loop.as_ref()?;
        is_invariant(self.b.func, fast, value, 0)
            .then(|| form.add_term(Leaf::Invariant(value), scale))?
    }

    /// Whether a `br_if` to `depth` is the fast copy's back edge.
    pub(super) fn is_fast_latch(&self, depth: u32) -> bool {
        depth == 0
            && self
                .fast_loop
                .as_ref()
                .is_some_and(|fast| self.frames.len() == fast.frame + 1)
    }

    /// The fast copy's back edge (`br_if 0` on `condition`): checks the
    /// promises `scan` made, learns the latch, and masks the fast base
    /// with the latch's compare for the iteration the edge starts.
    pub(super) fn fast_loop_latch(&mut self, condition: Value) {
        let fast = self.fast_loop.as_ref().expect("in a fast copy");
        let header = fast.header;
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
        let fast = self.fast_loop.as_mut().expect("checked above");
        fast.broken |= broken;
        fast.latch = latch;
        if fast.fast_base_used {
            let (fast_base, sink) = (fast.fast_base, fast.sink);
            // `exits ? sink : fast base`, on the latch's own compare with
            // its condition reversed: the cmov then replaces the fast
            // base in place (one instruction), where `continues ? fast
            // base : sink` would copy the sink first.
            let exits = self.exit_condition(condition);
            let current = self.b.use_var(fast_base);
            let masked = self.b.ins().select_spectre_guard(exits, sink, current);
            self.b.def_var(fast_base, masked);
        }
        let exit = self.b.create_block();
        self.b.ins().brif(condition, header, &[], exit, &[]);
        self.b.seal_block(exit);
        self.b.switch_to_block(exit);
    }

    /// A flag that is set exactly when the latch's `condition` (an i32,
    /// non-zero to continue) says exit: the reversed compare when the
    /// condition is one, else `condition == 0`.
    fn exit_condition(&mut self, condition: Value) -> Value {
        match self.compare_of(condition) {
            Some((cc, a, b)) => self.b.ins().icmp(cc.complement(), a, b),
            None => self.b.ins().icmp_imm_u(IntCC::Equal, condition, 0),
        }
    }

    /// The compare a wasm condition (an i32) is the zero-extension of.
    fn compare_of(&self, condition: Value) -> Option<(IntCC, Value, Value)> {
        let dfg = &self.b.func.dfg;
        let extend = dfg.value_def(dfg.resolve_aliases(condition)).inst()?;
        (dfg.insts[extend].opcode() == Opcode::Uextend).then_some(())?;
        let compare = dfg
            .value_def(dfg.resolve_aliases(dfg.inst_args(extend)[0]))
            .inst()?;
        match dfg.insts[compare] {
            ir::InstructionData::IntCompare { cond, args, .. } => Some((cond, args[0], args[1])),
            _ => None,
        }
    }

    /// The fast copy's header poll. Its slow path (which may move the
    /// memory) goes on in the slow copy, from the same iteration: the
    /// fast base never has to follow a move at the header, and a loop
    /// with nothing covered carries no fast base round the loop.
    pub(super) fn emit_fast_header_poll(&mut self) {
        let mut fast = self.fast_loop.take().expect("in a fast copy");
        self.emit_poll_then(Some(fast.slow_header), false);
        fast.header_resume = self.b.current_block().expect("after the poll");
        // Each local's value in the body, the leaves of forms: taken after
        // the poll, where the body starts (the block is not sealed yet, so
        // these are its parameters, which the body then sees).
        let plan = &fast.plan;
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
                fast.leaves.insert(value, local);
            }
        }
        self.fast_loop = Some(fast);
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
        let (cc, left, right) = match self.compare_of(condition) {
            Some((cc, a, b)) => (cc, self.affine(a)?, self.affine(b)?),
            None => (IntCC::NotEqual, self.affine(condition)?, Affine::default()),
        };
        let fast = self.fast_loop.as_ref()?;
        let single_induction = |form: &Affine| match form.terms.as_slice() {
            [(Leaf::Local(l), 1)] if fast.plan.inductions.contains_key(l) => Some(*l),
            _ => None,
        };
        let invariant = |form: &Affine| form.locals().all(|(l, _)| !fast.plan.written.contains(&l));
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
    /// follows it, unless it was the sink. Before any covered access has
    /// used the fast base, this is only noted: the first one follows then
    /// (so a loop with nothing covered carries no fast base at all).
    pub(super) fn fast_loop_base_reloaded(&mut self, base: Value) {
        let Some(fast) = self.fast_loop.as_mut() else {
            return;
        };
        if !fast.fast_base_used {
            fast.reloaded = true;
            return;
        }
        self.follow_base(base);
    }

    /// `fast base = fast base is the sink ? sink : base`, by a cmov.
    fn follow_base(&mut self, base: Value) {
        let fast = self.fast_loop.as_ref().expect("in a fast copy");
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
            // seals its header), and its header poll's slow path goes on
            // in it too.
            self.b.ins().jump(fast.header, &[]);
            self.b.seal_block(fast.slow_header);
            self.b.switch_to_block(fast.slow_header);
            self.b.ins().jump(fast.header_resume, &[]);
            self.b.seal_block(fast.header_resume);
            return None;
        }
        let bound = self.b.use_var(bound_var);
        let ok = self.entry_check(&fast, bound);
        let fast_base = self.b.ins().select_spectre_guard(ok, base, fast.sink);
        self.b.def_var(fast.fast_base, fast_base);
        let slow = fast.slow_header;
        self.b.ins().brif(ok, fast.header, &[], slow, &[]);
        // The block after the header's poll first: its parameters (the
        // body's values of the locals) then resolve to the header's, and
        // those to the entry's where the loop does not change them. The
        // other order leaves a parameter cycle the frontend does not see
        // through: every local carried round the loop, vmctx spilled.
        self.b.seal_block(fast.header_resume);
        self.b.seal_block(fast.header);
        self.stats.loops_versioned += 1;
        Some(slow)
    }
}
