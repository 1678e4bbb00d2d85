//! Linear-memory access: the CARAT guard, loads, stores and bulk memory.
//!
//! This is half of the sandbox, so it is kept small.
//!
//! **The guard (CARAT mode, [`MemoryStrategy::Guarded`]).** An access of
//! `size` bytes at `index + offset` gets the address `base + index (+
//! offset)` when `index + offset + size <= bound`, and null (0) otherwise:
//! `select_spectre_guard` (a cmov) on one compare picks the index or
//! `-base`, and `base` plus the pick is the address; the access
//! then adds the rest of its offset as an immediate (only when the whole
//! end, `offset + size`, is below [`abi::NULL_TRAP_BYTES`]). There is no
//! branch. A failed guard makes the access touch an address below
//! `NULL_TRAP_BYTES`, which is never mapped (the runtime checks at start-up
//! that nothing can be), so it faults, and the signal handler turns that
//! fault at a heap-access site into `out of bounds memory access`: the
//! same trap, at the same access, as a branch to a trap would give, with
//! every earlier store done. The compare is computed in 64 bits, where
//! `index + offset < 2^33` and the bound `<= 2^32` cannot overflow, as
//! `index + offset > bound - size` (the right side is loop-invariant).
//!
//! *Spectre.* A cmov is not predicted: the address is computed from the
//! compare's result, so no speculative path sees an out-of-bounds address
//! inside the arena. The worst a mispredicted branch elsewhere can do is
//! run the access on the null address, which faults (and a faulting load
//! returns no data to later speculative instructions).
//!
//! **Sharing a guard (dominance).** An access off the same index value and
//! the same base value as an earlier guarded access that dominates it (in
//! its construct, or in one the access is nested in; see
//! `CheckedGuards`), with an end no larger, reuses that guard's masked address
//! with its own immediate offset: no compare, no cmov. It is in bounds
//! exactly when the earlier access was, and when that one was masked it is
//! masked too (its address is null plus its offset, below
//! `NULL_TRAP_BYTES`), so both the trap and the Spectre argument carry
//! over by data dependence, not by a prediction. The base value is part of
//! the key because a call may move the memory (the base is reloaded after
//! every call), so a masked address never outlives a point where its base
//! may change. Field accesses through one pointer hit this, and so does
//! an access at `x + c` (an `i32.add` of a small constant) after a guard
//! on `x` that checked an end of at least `c` plus its own: that guard
//! proved `x + c` does not wrap.
//!
//! **Merging.** Loads off one local with different offsets, in a window
//! where trapping earlier cannot be observed (no store, call, branch or
//! other trap between them; see `merge`), are checked once: the first
//! checks the window's largest end, and the rest share its masked address
//! as above. If a later load would trap, the first traps instead, with the
//! same message, and nothing has happened in between that could tell.
//!
//! **Static proof (both modes).** An access whose constant address,
//! constant index plus offset plus size, lies within its memory's declared
//! minimum has no guard and no mask; so has one whose index is bounded by
//! its computation (a zero-extended byte, a masked or shifted value, a
//! table's address plus such a value; see `ranges`) so that its largest
//! value plus offset plus size lies within the minimum. The minimum is a bound from
//! instantiation on (an imported memory is at least its import's minimum,
//! and a bound never shrinks), so the address is in bounds on every path,
//! speculative ones included.
//!
//! **Loop versioning.** An innermost loop whose accesses are affine in
//! its induction variables, or use loop-invariant indices, runs a fast
//! copy with no guards behind one range check at its entry, and the loop
//! as above otherwise; a mispredicted check or back edge sends the fast
//! copy's accesses into an inaccessible reservation instead of the
//! arena. The argument is in `versioning`.
//!
//! **Paging mode ([`MemoryStrategy::Reserved`]).** The reservation behind
//! the memory covers every address a 32-bit index plus a small offset can
//! form, so no inline check is emitted and the MMU faults on a stray
//! access; an offset past the guard region gets the CARAT guard.
//!
//! **Bulk operations** check their whole range up front in both modes with
//! a branch, because the spec requires them to trap before writing
//! anything, and hand the runtime a masked address.

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{Block, Endianness, InstBuilder, MemFlagsData, Opcode, Type, Value};
use wasmparser::{MemArg, MemArgTarget, Operator};

use super::{FuncTranslator, ranges};
use crate::MemoryStrategy;
use crate::abi::{self, Libcall};
use crate::trap::Trap;

fn memory_index(arg: &MemArg) -> u32 {
    match arg.target {
        MemArgTarget::Memory(index) => index,
        MemArgTarget::Array(_) => unreachable!("validated: no GC arrays in wasm 2.0"),
    }
}

/// Memory accesses one CLIF block holds before straight-line code is
/// split (see `split_long_block`).
const ACCESSES_PER_BLOCK: u32 = 64;

/// What identifies a guard another access may share: the memory, the
/// 32-bit index value and the base value the address was formed from
/// (after a call the base is reloaded, so a masked address never outlives
/// a point where the memory may move).
type GuardKey = (u32, Value, Value);

/// A passed guard: the end it checked, the end of the access that checked
/// it, and the masked address it gave.
type PassedGuard = (u64, u64, Value);

/// The guards passed so far that dominate the operator being translated:
/// for each key, the largest end checked and the masked address it gave.
/// Constant time per access, so compilation stays linear in a function's
/// accesses.
///
/// *Why a guard dominates what it is kept for.* Wasm's control flow is
/// structured: an access dominates every later operator of its own
/// construct (`block`, `loop`, `if` arm, function body) and of the
/// constructs nested in it, up to the end of its construct; after that
/// end, or in the other arm of an `if`, control may arrive by a path that
/// skipped it. So a guard is recorded in the innermost open construct and
/// forgotten at that construct's `end` or `else` (`rollback` to the
/// construct's `mark`). Unreachable code is not translated, so a `br` or
/// `return` cannot make a later operator of the construct skip it.
#[derive(Default)]
pub(super) struct CheckedGuards {
    block: Option<Block>,
    passed: std::collections::HashMap<GuardKey, PassedGuard>,
    /// What `record` replaced, oldest first, so that `rollback` can put it
    /// back: the key and its entry before (`None`: it had none).
    undo: Vec<(GuardKey, Option<PassedGuard>)>,
    /// The accesses of the current CLIF block, for `split_long_block`.
    accesses: u32,
    /// Where `split_long_block` stores, once it has.
    force_slot: Option<cranelift_codegen::ir::StackSlot>,
}

impl CheckedGuards {
    /// Starts counting the accesses of `block` when it is a new one.
    fn enter(&mut self, block: Option<Block>) {
        if self.block != block {
            self.block = block;
            self.accesses = 0;
        }
    }

    /// The masked address of a passed guard on `key` that covers `end`,
    /// and the end of the access that made it.
    fn covering(&self, key: GuardKey, end: u64) -> Option<(Value, u64)> {
        self.passed
            .get(&key)
            .and_then(|&(checked, own, masked)| (checked >= end).then_some((masked, own)))
    }

    fn record(&mut self, key: GuardKey, checked: u64, own: u64, masked: Value) {
        let before = self.passed.get(&key).copied();
        if before.is_none_or(|(was, _, _)| checked >= was) {
            self.undo.push((key, before));
            self.passed.insert(key, (checked, own, masked));
        }
    }

    /// Where a construct opened now starts: what `rollback` returns to.
    pub(super) fn mark(&self) -> usize {
        self.undo.len()
    }

    /// Forgets every guard recorded since `mark`.
    pub(super) fn rollback(&mut self, mark: usize) {
        for (key, before) in self.undo.drain(mark..).rev() {
            match before {
                Some(entry) => self.passed.insert(key, entry),
                None => self.passed.remove(&key),
            };
        }
    }
}

impl FuncTranslator<'_, '_> {
    /// Ends a CLIF block that has grown long in straight-line code and
    /// goes on in a fresh one, behind a compiler barrier, with memory 0's
    /// base and bound reloaded.
    ///
    /// Why: Cranelift's optimiser places a pure value at its first use and
    /// reuses an identical value or load from anywhere it dominates. In a
    /// function of thousands of accesses that makes values live from far
    /// before their use to far after: loaded values summed into a local
    /// are all added up at the function's end, a guard's compare or an
    /// address is reused from thousands of accesses back. Thousands of such
    /// live ranges overlap, and register allocation costs quadratic time
    /// (20,000 accesses took 10 s; 100,000 took eight minutes).
    ///
    /// So, every [`ACCESSES_PER_BLOCK`] accesses: the locals set since the
    /// last split and the operand stack are combined into one stored word,
    /// which forces their computation here (the store is a side effect and
    /// must stay put); `sequence_point` (no machine code) ends redundant-
    /// load elimination at the boundary; the reloaded bound makes every
    /// later guard's values new ones; and additions of constants are
    /// rematerialised per block. Nothing lives longer than a split's span
    /// except the locals and stack values themselves.
    fn split_long_block(&mut self) {
        let mut forced: Option<Value> = None;
        let dirty: Vec<u32> = self.dirty_locals.drain(..).collect();
        let mut values: Vec<Value> = dirty
            .iter()
            .map(|&local| {
                self.local_is_dirty[local as usize] = false;
                self.b.use_var(self.locals[local as usize])
            })
            .collect();
        values.extend(self.stack.iter().copied());
        for value in values {
            let word = self.as_word(value);
            forced = Some(match forced {
                Some(so_far) => self.b.ins().bor(so_far, word),
                None => word,
            });
        }
        if let Some(forced) = forced {
            let slot = self.force_slot();
            self.b.ins().stack_store(I64, forced, slot, 0);
        }
        self.b.ins().sequence_point();
        let next = self.b.create_block();
        self.b.ins().jump(next, &[]);
        self.b.seal_block(next);
        self.b.switch_to_block(next);
        self.reload_memory_cache();
        self.checked_guards.enter(Some(next));
    }

    /// `value`'s bits as an I64.
    fn as_word(&mut self, value: Value) -> Value {
        match self.b.func.dfg.value_type(value) {
            I64 => value,
            I32 => self.b.ins().uextend(I64, value),
            F32 => {
                let bits = self.b.ins().bitcast(I32, MemFlagsData::new(), value);
                self.b.ins().uextend(I64, bits)
            }
            F64 => self.b.ins().bitcast(I64, MemFlagsData::new(), value),
            other => unreachable!("wasm 2.0 without SIMD has no {other} values"),
        }
    }

    /// The stack slot `split_long_block` stores into; never read.
    fn force_slot(&mut self) -> cranelift_codegen::ir::StackSlot {
        if let Some(slot) = self.checked_guards.force_slot {
            return slot;
        }
        let slot = self
            .b
            .create_sized_stack_slot(cranelift_codegen::ir::StackSlotData::new(
                cranelift_codegen::ir::StackSlotKind::ExplicitSlot,
                8,
                3,
            ));
        self.checked_guards.force_slot = Some(slot);
        slot
    }

    fn memory_base_and_bound(&mut self, memory: u32) -> (Value, Value) {
        if let (0, Some((base, bound))) = (memory, self.memory_cache) {
            return (self.b.use_var(base), self.b.use_var(bound));
        }
        let (def, offset) = self.memory_definition(memory);
        let region = self.regions.memory_defs;
        let base = self.load_field(I64, region, def, offset + abi::memory::BASE);
        let bound = self.load_field(I64, region, def, offset + abi::memory::BOUND);
        (base, bound)
    }

    /// The guard of a bulk operation: traps unless `start + len <= bound`
    /// and returns `base + start`, masked to `base` when the check fails.
    /// `start` and `len` are 64-bit values below 2^33, so nothing
    /// overflows. Bulk operations trap before they write anything, so the
    /// check is a branch; the mask keeps the libcall's speculative
    /// execution inside the region.
    fn guarded_address(&mut self, memory: u32, start: Value, len: Value) -> Value {
        let (base, bound) = self.memory_base_and_bound(memory);
        let end = self.b.ins().iadd(start, len);
        let out_of_bounds = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, bound);
        self.b
            .ins()
            .trapnz(out_of_bounds, Trap::MemoryOutOfBounds.to_cranelift());
        self.stats.guards_emitted += 1;
        let zero = self.b.ins().iconst(I64, 0);
        let masked = self
            .b
            .ins()
            .select_spectre_guard(out_of_bounds, zero, start);
        self.b.ins().iadd(base, masked)
    }

    /// The guard of one access: `base + start` when `start + end <=
    /// bound`, else null (0), chosen by a cmov. `start` < 2^33 and the
    /// bound <= 2^32, so nothing overflows.
    ///
    /// The cmov picks the index, not the address: `start`, or `-base`,
    /// which makes `base + index` null. So the addition folds into the
    /// access's addressing mode (`[base + index + offset]`), and a guard
    /// costs a compare and a cmov.
    fn masked_address(&mut self, base: Value, bound: Value, start: Value, end: u32) -> Value {
        // `start + end > bound`, as `start > bound - end`: the right side
        // depends on the bound alone, so Cranelift computes it once per
        // loop. Signed, because a bound below `end` makes it negative.
        let limit = self.b.ins().iadd_imm_s(bound, -i64::from(end));
        let out_of_bounds = self.b.ins().icmp(IntCC::SignedGreaterThan, start, limit);
        let to_null = self.b.ins().ineg(base);
        self.stats.guards_emitted += 1;
        let index = self
            .b
            .ins()
            .select_spectre_guard(out_of_bounds, to_null, start);
        self.b.ins().iadd(base, index)
    }

    /// `index + offset` when `index` is a constant.
    fn constant_address(&self, index: Value, offset: u64) -> Option<u64> {
        super::iconst_bits(&self.b.func.dfg, index).map(|bits| u64::from(bits as u32) + offset)
    }

    /// `(x, c)` when `index` is `x + c` for a constant `c` small enough
    /// that an access `c` bytes further can share `x`'s guard.
    fn index_plus_constant(&self, index: Value) -> Option<(Value, u64)> {
        let dfg = &self.b.func.dfg;
        let inst = dfg.value_def(dfg.resolve_aliases(index)).inst()?;
        if dfg.insts[inst].opcode() != Opcode::Iadd {
            return None;
        }
        let args = dfg.inst_args(inst);
        let (x, c) = match (
            self.constant_address(args[0], 0),
            self.constant_address(args[1], 0),
        ) {
            (None, Some(c)) => (args[0], c),
            (Some(c), None) => (args[1], c),
            _ => return None,
        };
        (c < abi::NULL_TRAP_BYTES).then(|| (dfg.resolve_aliases(x), c))
    }

    /// The bytes memory `memory` holds from instantiation on: its declared
    /// minimum (an imported memory is at least the minimum its import
    /// declares). A bound never shrinks, so this is a lower bound on every
    /// bound the memory has.
    fn minimum_bytes(&self, memory: u32) -> u64 {
        let pages = self.env.info.memories[memory as usize].minimum;
        pages.saturating_mul(abi::WASM_PAGE_SIZE)
    }

    /// The address of a `size`-byte access at `index + offset`, as a value
    /// and an immediate offset to add to it, and the flags the access
    /// carries.
    fn heap_address(&mut self, arg: &MemArg, size: u32) -> (Value, i32, MemFlagsData) {
        self.checked_guards.enter(self.b.current_block());
        self.checked_guards.accesses += 1;
        if self.checked_guards.accesses > ACCESSES_PER_BLOCK {
            self.split_long_block();
        }
        let memory = memory_index(arg);
        let index32 = self.pop();
        let flags = MemFlagsData::new()
            .with_endianness(Endianness::Little)
            .with_alias_region(Some(self.regions.heap));
        let end = arg.offset + u64::from(size);
        if let Some(address) = self
            .constant_address(index32, arg.offset)
            .filter(|address| address + u64::from(size) <= self.minimum_bytes(memory))
        {
            // Static proof: in bounds at every bound the memory can have,
            // so in every speculative execution too.
            self.stats.guards_removed_static += 1;
            let (base, _) = self.memory_base_and_bound(memory);
            let addr = self.b.ins().iadd_imm_u(base, address as i64);
            return (addr, 0, flags.with_notrap());
        }
        let index = self.b.ins().uextend(I64, index32);
        let within_minimum = ranges::upper_bound(&self.b.func.dfg, index32)
            .is_some_and(|largest| largest + end <= self.minimum_bytes(memory));
        if within_minimum && arg.offset <= i32::MAX as u64 {
            // Static proof over the index's range: every value it can take,
            // on every path, keeps the access within the minimum.
            self.stats.guards_removed_static += 1;
            let (base, _) = self.memory_base_and_bound(memory);
            let addr = self.b.ins().iadd(base, index);
            return (addr, arg.offset as i32, flags.with_notrap());
        }
        let traps = flags.with_trap_code(Some(Trap::MemoryOutOfBounds.to_cranelift()));
        if memory == 0
            && let Some(address) = self.fast_loop_address(index32, arg.offset, size)
        {
            // In a loop's fast copy, covered by its entry check.
            return (address, arg.offset as i32, traps);
        }
        let guard_bytes = match self.env.strategy {
            MemoryStrategy::Guarded => 0,
            MemoryStrategy::Reserved { guard_bytes } => guard_bytes,
        };
        let (base, bound) = self.memory_base_and_bound(memory);
        if end <= guard_bytes {
            // Paging: the reservation's guard region faults.
            self.stats.accesses_unguarded += 1;
            let addr = self.b.ins().iadd(base, index);
            let addr = self.b.ins().iadd_imm_u(addr, arg.offset as i64);
            return (addr, 0, traps);
        }
        if end > abi::NULL_TRAP_BYTES {
            // A large offset: the masked address must be the access's own.
            let start = self.b.ins().iadd_imm_u(index, arg.offset as i64);
            let masked = self.masked_address(base, bound, start, size);
            return (masked, 0, traps);
        }
        // `local.get` may hand out a fresh alias of the same value.
        let key = (memory, self.b.func.dfg.resolve_aliases(index32), base);
        if let Some((masked, own_end)) = self.checked_guards.covering(key, end) {
            // An earlier access in this block, off the same index and
            // base, checked an end at least this large: its masked address
            // serves this access too, and is null exactly when it was.
            if end > own_end {
                self.stats.guards_removed_merged += 1;
            } else {
                self.stats.guards_removed_dominated += 1;
            }
            return (masked, arg.offset as i32, traps);
        }
        if let Some((x, c)) = self.index_plus_constant(index32)
            && let Some((masked, _)) = self.checked_guards.covering((memory, x, base), c + end)
        {
            // The index is `x + c`, and a dominating guard showed `x + c +
            // end <= bound` (or trapped): then `x + c` did not wrap, so
            // the access is at `x`'s masked address plus `c` and its own
            // offset, still below the null-trap distance when masked.
            self.stats.guards_removed_dominated += 1;
            return (masked, (c + arg.offset) as i32, traps);
        }
        // A load that opens a merge window checks the window's largest end.
        let checked_end = self
            .merged_ends
            .get(&self.op_offset)
            .copied()
            .filter(|&merged| merged <= abi::NULL_TRAP_BYTES)
            .map_or(end, |merged| merged.max(end));
        let masked = self.masked_address(base, bound, index, checked_end as u32);
        self.checked_guards.record(key, checked_end, end, masked);
        (masked, arg.offset as i32, traps)
    }

    fn load(
        &mut self,
        arg: &MemArg,
        size: u32,
        emit: impl FnOnce(&mut Self, MemFlagsData, Value, i32) -> Value,
    ) {
        let (addr, offset, flags) = self.heap_address(arg, size);
        let v = emit(self, flags, addr, offset);
        self.push(v);
    }

    fn store(
        &mut self,
        arg: &MemArg,
        size: u32,
        emit: impl FnOnce(&mut Self, MemFlagsData, Value, Value, i32),
    ) {
        let value = self.pop();
        let (addr, offset, flags) = self.heap_address(arg, size);
        emit(self, flags, value, addr, offset);
    }

    fn plain_load(&mut self, arg: &MemArg, ty: Type) {
        self.load(arg, ty.bytes(), |t, flags, addr, offset| {
            t.b.ins().load(ty, flags, addr, offset)
        });
    }

    fn plain_store(&mut self, arg: &MemArg, size: u32) {
        self.store(arg, size, |t, flags, value, addr, offset| {
            t.b.ins().store(flags, value, addr, offset);
        });
    }

    /// A 64-bit copy of an i32 operand that counts bytes or an address.
    fn widen(&mut self, v: Value) -> Value {
        self.b.ins().uextend(I64, v)
    }

    /// Handles memory operators; returns false for any other operator.
    pub(super) fn memory_operator(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match op {
            O::I32Load { memarg } => self.plain_load(memarg, I32),
            O::I64Load { memarg } => self.plain_load(memarg, I64),
            O::F32Load { memarg } => self.plain_load(memarg, F32),
            O::F64Load { memarg } => self.plain_load(memarg, F64),
            O::I32Load8S { memarg } => {
                self.load(memarg, 1, |t, f, a, o| t.b.ins().sload8(I32, f, a, o))
            }
            O::I32Load8U { memarg } => {
                self.load(memarg, 1, |t, f, a, o| t.b.ins().uload8(I32, f, a, o))
            }
            O::I32Load16S { memarg } => {
                self.load(memarg, 2, |t, f, a, o| t.b.ins().sload16(I32, f, a, o))
            }
            O::I32Load16U { memarg } => {
                self.load(memarg, 2, |t, f, a, o| t.b.ins().uload16(I32, f, a, o))
            }
            O::I64Load8S { memarg } => {
                self.load(memarg, 1, |t, f, a, o| t.b.ins().sload8(I64, f, a, o))
            }
            O::I64Load8U { memarg } => {
                self.load(memarg, 1, |t, f, a, o| t.b.ins().uload8(I64, f, a, o))
            }
            O::I64Load16S { memarg } => {
                self.load(memarg, 2, |t, f, a, o| t.b.ins().sload16(I64, f, a, o))
            }
            O::I64Load16U { memarg } => {
                self.load(memarg, 2, |t, f, a, o| t.b.ins().uload16(I64, f, a, o))
            }
            O::I64Load32S { memarg } => {
                self.load(memarg, 4, |t, f, a, o| t.b.ins().sload32(f, a, o))
            }
            O::I64Load32U { memarg } => {
                self.load(memarg, 4, |t, f, a, o| t.b.ins().uload32(f, a, o))
            }
            O::I32Store { memarg } | O::F32Store { memarg } => self.plain_store(memarg, 4),
            O::I64Store { memarg } | O::F64Store { memarg } => self.plain_store(memarg, 8),
            O::I32Store8 { memarg } | O::I64Store8 { memarg } => {
                self.store(memarg, 1, |t, f, v, a, o| {
                    t.b.ins().istore8(f, v, a, o);
                })
            }
            O::I32Store16 { memarg } | O::I64Store16 { memarg } => {
                self.store(memarg, 2, |t, f, v, a, o| {
                    t.b.ins().istore16(f, v, a, o);
                })
            }
            O::I64Store32 { memarg } => self.store(memarg, 4, |t, f, v, a, o| {
                t.b.ins().istore32(f, v, a, o);
            }),
            O::MemorySize { mem } => {
                let (_, bound) = self.memory_base_and_bound(*mem);
                let pages = self
                    .b
                    .ins()
                    .ushr_imm_u(bound, abi::WASM_PAGE_SIZE.trailing_zeros() as i64);
                let pages = self.b.ins().ireduce(I32, pages);
                self.push(pages);
            }
            O::MemoryGrow { mem } => {
                let delta = self.pop();
                let index = self.b.ins().iconst(I32, i64::from(*mem));
                let old = self.call_libcall(Libcall::MemoryGrow, &[index, delta])[0];
                self.push(old);
            }
            O::MemoryFill { mem } => {
                let (dst, byte, len) = self.pop3();
                let (dst, len) = (self.widen(dst), self.widen(len));
                let addr = self.guarded_address(*mem, dst, len);
                self.call_libcall(Libcall::MemoryFill, &[addr, byte, len]);
            }
            O::MemoryCopy { dst_mem, src_mem } => {
                let (dst, src, len) = self.pop3();
                let (dst, src, len) = (self.widen(dst), self.widen(src), self.widen(len));
                let dst_addr = self.guarded_address(*dst_mem, dst, len);
                let src_addr = self.guarded_address(*src_mem, src, len);
                self.call_libcall(Libcall::MemoryCopy, &[dst_addr, src_addr, len]);
            }
            O::MemoryInit { data_index, mem } => {
                let (dst, src, len) = self.pop3();
                // The destination is guarded inline like any access; the
                // runtime checks the source range against the segment.
                let (dst64, len64) = (self.widen(dst), self.widen(len));
                self.guarded_address(*mem, dst64, len64);
                let memory = self.b.ins().iconst(I32, i64::from(*mem));
                let segment = self.b.ins().iconst(I32, i64::from(*data_index));
                self.call_checked_libcall(
                    Libcall::MemoryInit,
                    &[memory, segment, dst, src, len],
                    Trap::MemoryOutOfBounds,
                );
            }
            O::DataDrop { data_index } => {
                let segment = self.b.ins().iconst(I32, i64::from(*data_index));
                self.call_libcall(Libcall::DataDrop, &[segment]);
            }
            _ => return false,
        }
        true
    }
}
