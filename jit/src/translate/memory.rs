//! Linear-memory access: the CARAT guard, loads, stores and bulk memory.
//!
//! This is half of the sandbox, so it is kept small. Under
//! [`MemoryStrategy::Guarded`] (CARAT mode) every access traps unless its
//! end, `index + offset + size`, computed in 64 bits where it cannot
//! overflow, is within the region's bound (checked as `index + offset <=
//! bound - size`, whose right side is loop-invariant), and then forms the
//! address from an index that `select_spectre_guard` (a cmov) has replaced
//! by 0 when out of bounds. A mispredicted guard therefore cannot read
//! outside the region even speculatively. The access itself then cannot
//! fault, so it is marked `notrap`. Under [`MemoryStrategy::Reserved`]
//! (paging mode) the reservation behind the memory covers every address a
//! 32-bit index plus a small offset can form, so no inline check is
//! emitted and the MMU faults on a stray access; only offsets past the
//! guard region are checked.
//!
//! Bulk operations check their whole range up front in both modes, because
//! the spec requires them to trap before writing anything.
//!
//! Static proof (both modes): an access whose constant address, constant
//! index plus offset plus size, lies within its memory's declared minimum
//! has no guard and no mask. The minimum is a bound from instantiation on
//! (an imported memory is at least its import's minimum, and a bound never
//! shrinks), so the address is in bounds on every path, speculative ones
//! included: there is no condition to mispredict.
//!
//! Guard elision (CARAT mode): within a basic block, an access whose
//! index is the same SSA value as an access already guarded, with an end
//! (`offset + size`) no larger, cannot be out of bounds: the earlier guard
//! trapped otherwise, and a bound never shrinks (memories only grow, and
//! a move keeps their length), not even across calls. Its trap branch is
//! dropped. It still masks its own address with a cmov on its own compare
//! against the bound, so the Spectre argument above holds for it
//! unchanged, and no value lives longer than the access that uses it
//! (masking on the earlier guard's condition instead kept one condition
//! live per guard across the whole block: thousands of overlapping live
//! ranges, and register allocation quadratic in the block's accesses).
//! Field accesses through one pointer hit this (a narrower field after a
//! wider one, a load and then a store to the same address).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{F32, F64, I32, I64};
use cranelift_codegen::ir::{
    Block, Endianness, InstBuilder, InstructionData, MemFlagsData, Opcode, Type, Value,
};
use wasmparser::{MemArg, MemArgTarget, Operator};

use super::FuncTranslator;
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

/// The guards passed so far in one basic block: for each (memory, 32-bit
/// index value), the largest `offset + size` checked. Constant time per
/// access, so compilation stays linear in a block's accesses. It also
/// counts the block's accesses.
#[derive(Default)]
pub(super) struct CheckedGuards {
    block: Option<Block>,
    passed: std::collections::HashMap<(u32, Value), u64>,
    accesses: u32,
    /// Where `split_long_block` stores, once it has.
    force_slot: Option<cranelift_codegen::ir::StackSlot>,
}

impl CheckedGuards {
    /// Forgets the guards of any block but `block`.
    fn enter(&mut self, block: Option<Block>) {
        if self.block != block {
            self.block = block;
            self.passed.clear();
            self.accesses = 0;
        }
    }

    /// Whether a passed guard covers `end` bytes from `index` in `memory`.
    fn covers(&self, memory: u32, index: Value, end: u64) -> bool {
        self.passed
            .get(&(memory, index))
            .is_some_and(|checked| *checked >= end)
    }

    fn record(&mut self, memory: u32, index: Value, end: u64) {
        let checked = self.passed.entry((memory, index)).or_insert(end);
        *checked = (*checked).max(end);
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
    /// overflows.
    fn guarded_address(&mut self, memory: u32, start: Value, len: Value) -> Value {
        let (base, bound) = self.memory_base_and_bound(memory);
        let end = self.b.ins().iadd(start, len);
        let out_of_bounds = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, bound);
        self.trap_out_of_bounds(out_of_bounds);
        self.masked_address(base, start, out_of_bounds)
    }

    /// The guard's branch: traps where `out_of_bounds` holds.
    fn trap_out_of_bounds(&mut self, out_of_bounds: Value) {
        self.b
            .ins()
            .trapnz(out_of_bounds, Trap::MemoryOutOfBounds.to_cranelift());
        self.stats.guards_emitted += 1;
    }

    /// `base + start`, or `base` where `out_of_bounds` holds.
    fn masked_address(&mut self, base: Value, start: Value, out_of_bounds: Value) -> Value {
        let zero = self.b.ins().iconst(I64, 0);
        let masked = self
            .b
            .ins()
            .select_spectre_guard(out_of_bounds, zero, start);
        self.b.ins().iadd(base, masked)
    }

    /// `index + offset` when `index` is a constant.
    fn constant_address(&self, index: Value, offset: u64) -> Option<u64> {
        let dfg = &self.b.func.dfg;
        let inst = dfg.value_def(dfg.resolve_aliases(index)).inst()?;
        match dfg.insts[inst] {
            InstructionData::UnaryImm {
                opcode: Opcode::Iconst,
                imm,
            } => Some(u64::from(imm.bits() as u32) + offset),
            _ => None,
        }
    }

    /// The bytes memory `memory` holds from instantiation on: its declared
    /// minimum (an imported memory is at least the minimum its import
    /// declares). A bound never shrinks, so this is a lower bound on every
    /// bound the memory has.
    fn minimum_bytes(&self, memory: u32) -> u64 {
        let pages = self.env.info.memories[memory as usize].minimum;
        pages.saturating_mul(abi::WASM_PAGE_SIZE)
    }

    /// The address of a `size`-byte access at `index + offset`, and the flags
    /// the access carries.
    fn heap_address(&mut self, arg: &MemArg, size: u32) -> (Value, MemFlagsData) {
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
            return (addr, flags.with_notrap());
        }
        let index = self.b.ins().uextend(I64, index32);
        let needs_guard = match self.env.strategy {
            MemoryStrategy::Guarded => true,
            MemoryStrategy::Reserved { guard_bytes } => end > guard_bytes,
        };
        if needs_guard {
            let start = self.b.ins().iadd_imm_u(index, arg.offset as i64);
            // `local.get` may hand out a fresh alias of the same value.
            let index_key = self.b.func.dfg.resolve_aliases(index32);
            let (base, bound) = self.memory_base_and_bound(memory);
            // `start + size > bound`, as `start > bound - size`: the right
            // side depends on the bound alone, so Cranelift computes it
            // once per loop rather than an end per access. Signed, because
            // a bound below `size` makes it negative; `start` < 2^33 and the
            // bound <= 2^32, so nothing overflows.
            let limit = self.b.ins().iadd_imm_s(bound, -i64::from(size));
            let out_of_bounds = self.b.ins().icmp(IntCC::SignedGreaterThan, start, limit);
            if self.checked_guards.covers(memory, index_key, end) {
                // An earlier guard in this block trapped unless this access
                // is in bounds: only the mask remains.
                self.stats.guards_removed_dominated += 1;
            } else {
                self.trap_out_of_bounds(out_of_bounds);
                self.checked_guards.record(memory, index_key, end);
            }
            (
                self.masked_address(base, start, out_of_bounds),
                flags.with_notrap(),
            )
        } else {
            self.stats.accesses_unguarded += 1;
            let (base, _) = self.memory_base_and_bound(memory);
            let addr = self.b.ins().iadd(base, index);
            let addr = self.b.ins().iadd_imm_u(addr, arg.offset as i64);
            (
                addr,
                flags.with_trap_code(Some(Trap::MemoryOutOfBounds.to_cranelift())),
            )
        }
    }

    fn load(
        &mut self,
        arg: &MemArg,
        size: u32,
        emit: impl FnOnce(&mut Self, MemFlagsData, Value) -> Value,
    ) {
        let (addr, flags) = self.heap_address(arg, size);
        let v = emit(self, flags, addr);
        self.push(v);
    }

    fn store(
        &mut self,
        arg: &MemArg,
        size: u32,
        emit: impl FnOnce(&mut Self, MemFlagsData, Value, Value),
    ) {
        let value = self.pop();
        let (addr, flags) = self.heap_address(arg, size);
        emit(self, flags, value, addr);
    }

    fn plain_load(&mut self, arg: &MemArg, ty: Type) {
        self.load(arg, ty.bytes(), |t, flags, addr| {
            t.b.ins().load(ty, flags, addr, 0)
        });
    }

    fn plain_store(&mut self, arg: &MemArg, size: u32) {
        self.store(arg, size, |t, flags, value, addr| {
            t.b.ins().store(flags, value, addr, 0);
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
                self.load(memarg, 1, |t, f, a| t.b.ins().sload8(I32, f, a, 0))
            }
            O::I32Load8U { memarg } => {
                self.load(memarg, 1, |t, f, a| t.b.ins().uload8(I32, f, a, 0))
            }
            O::I32Load16S { memarg } => {
                self.load(memarg, 2, |t, f, a| t.b.ins().sload16(I32, f, a, 0))
            }
            O::I32Load16U { memarg } => {
                self.load(memarg, 2, |t, f, a| t.b.ins().uload16(I32, f, a, 0))
            }
            O::I64Load8S { memarg } => {
                self.load(memarg, 1, |t, f, a| t.b.ins().sload8(I64, f, a, 0))
            }
            O::I64Load8U { memarg } => {
                self.load(memarg, 1, |t, f, a| t.b.ins().uload8(I64, f, a, 0))
            }
            O::I64Load16S { memarg } => {
                self.load(memarg, 2, |t, f, a| t.b.ins().sload16(I64, f, a, 0))
            }
            O::I64Load16U { memarg } => {
                self.load(memarg, 2, |t, f, a| t.b.ins().uload16(I64, f, a, 0))
            }
            O::I64Load32S { memarg } => self.load(memarg, 4, |t, f, a| t.b.ins().sload32(f, a, 0)),
            O::I64Load32U { memarg } => self.load(memarg, 4, |t, f, a| t.b.ins().uload32(f, a, 0)),
            O::I32Store { memarg } | O::F32Store { memarg } => self.plain_store(memarg, 4),
            O::I64Store { memarg } | O::F64Store { memarg } => self.plain_store(memarg, 8),
            O::I32Store8 { memarg } | O::I64Store8 { memarg } => {
                self.store(memarg, 1, |t, f, v, a| {
                    t.b.ins().istore8(f, v, a, 0);
                })
            }
            O::I32Store16 { memarg } | O::I64Store16 { memarg } => {
                self.store(memarg, 2, |t, f, v, a| {
                    t.b.ins().istore16(f, v, a, 0);
                })
            }
            O::I64Store32 { memarg } => self.store(memarg, 4, |t, f, v, a| {
                t.b.ins().istore32(f, v, a, 0);
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
