//! Upper bounds of 32-bit index values, proven from how they are computed.
//!
//! The static proof (see `memory`) removes the guard of an access whose
//! every possible address lies within its memory's declared minimum. A
//! constant index is the simplest case; this module finds the rest that
//! compilers make: a byte or halfword loaded with zero extension (`table[
//! p[i]]`), an index masked with a constant (`table[h & 0xff]`), shifted
//! right, reduced with `urem` by a constant, scaled by a constant shift or
//! multiply, or a sum of such values with a table's constant address.
//!
//! *Why this is sound, speculatively included.* Each bound follows from
//! the instruction's arithmetic alone (a `uload8` yields at most 255
//! whatever byte it reads, stale or not; `x & 0xff` is at most 255 for
//! every `x`), never from a branch that was taken, so it holds on every
//! path a processor may speculate down. Sums and products are bounded only
//! when the bound itself fits in 32 bits, so no wrapping is assumed away.
//! Block parameters (values that merge control flow) are unbounded.

use cranelift_codegen::ir::types::{I8, I16, I32};
use cranelift_codegen::ir::{DataFlowGraph, Opcode, Value};

/// How many instructions one query may look through: enough for the
/// address computations compilers emit, and a bound on compile time.
const DEPTH: u32 = 8;

/// The largest value the 32-bit `value` can have, if provably below
/// 2^32 - 1 (`None` means no bound beyond the type's).
pub(crate) fn upper_bound(dfg: &DataFlowGraph, value: Value) -> Option<u64> {
    bound(dfg, value, DEPTH).filter(|&b| b < u64::from(u32::MAX))
}

/// The largest value `value` (an integer of at most 32 bits) can have,
/// `u32::MAX` when nothing better is known.
fn bound(dfg: &DataFlowGraph, value: Value, depth: u32) -> Option<u64> {
    let value = dfg.resolve_aliases(value);
    let type_max = match dfg.value_type(value) {
        I8 => u64::from(u8::MAX),
        I16 => u64::from(u16::MAX),
        I32 => u64::from(u32::MAX),
        _ => return None,
    };
    let Some(inst) = dfg.value_def(value).inst() else {
        return Some(type_max);
    };
    if depth == 0 {
        return Some(type_max);
    }
    let depth = depth - 1;
    let of = |v: Value| bound(dfg, v, depth).unwrap_or(type_max);
    let constant = |v: Value| super::iconst_bits(dfg, v).map(|bits| bits as u64 & type_max);
    let data = &dfg.insts[inst];
    let args = data.arguments(&dfg.value_lists);
    let within = |b: Option<u64>| b.filter(|&b| b <= type_max).unwrap_or(type_max);
    let found = match data.opcode() {
        Opcode::Iconst => constant(value).unwrap_or(type_max),
        Opcode::Uload8 => u64::from(u8::MAX),
        Opcode::Uload16 => u64::from(u16::MAX),
        Opcode::Uextend => of(args[0]),
        Opcode::Band => of(args[0]).min(of(args[1])),
        Opcode::Bor | Opcode::Bxor => {
            // Every bit set is below the wider operand's top bit.
            let widest = of(args[0]).max(of(args[1]));
            (widest + 1)
                .next_power_of_two()
                .saturating_sub(1)
                .min(type_max)
        }
        Opcode::Ushr => match constant(args[1]) {
            Some(shift) => of(args[0]) >> (shift % u64::from(type_max.count_ones())),
            None => of(args[0]),
        },
        Opcode::Ishl => match constant(args[1]) {
            // At most 2^32 - 1 shifted by at most 31: no u64 overflow.
            Some(shift) => within(Some(
                of(args[0]) << (shift % u64::from(type_max.count_ones())),
            )),
            None => type_max,
        },
        Opcode::Iadd => within(of(args[0]).checked_add(of(args[1]))),
        Opcode::Imul => within(of(args[0]).checked_mul(of(args[1]))),
        Opcode::Urem => match constant(args[1]) {
            Some(divisor) if divisor > 0 => of(args[0]).min(divisor - 1),
            _ => of(args[0]),
        },
        Opcode::Udiv => match constant(args[1]) {
            Some(divisor) if divisor > 0 => of(args[0]) / divisor,
            _ => of(args[0]),
        },
        Opcode::Select | Opcode::SelectSpectreGuard => of(args[1]).max(of(args[2])),
        Opcode::Icmp | Opcode::Fcmp => 1,
        _ => type_max,
    };
    Some(found)
}

#[cfg(test)]
mod tests {
    use cranelift_codegen::ir::condcodes::IntCC;
    use cranelift_codegen::ir::types::I64;
    use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, MemFlagsData, Signature};
    use cranelift_codegen::isa::CallConv;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    use super::*;

    /// Builds `(p: i64, x: i32) -> i32` from `body`, and returns the upper
    /// bound of the value `body` makes.
    fn bound_of(body: impl FnOnce(&mut FunctionBuilder<'_>, Value, Value) -> Value) -> Option<u64> {
        let mut sig = Signature::new(CallConv::SystemV);
        sig.params.push(AbiParam::new(I64));
        sig.params.push(AbiParam::new(I32));
        sig.returns.push(AbiParam::new(I32));
        let mut func = Function::with_name_signature(Default::default(), sig);
        let mut ctx = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut ctx);
        let block = b.create_block();
        b.append_block_params_for_function_params(block);
        b.switch_to_block(block);
        let (p, x) = (b.block_params(block)[0], b.block_params(block)[1]);
        let v = body(&mut b, p, x);
        b.ins().return_(&[v]);
        b.seal_all_blocks();
        b.finalize(super::super::host_frontend_config());
        upper_bound(&func.dfg, v)
    }

    #[test]
    fn bounded_computations() {
        let flags = MemFlagsData::new();
        // table[p[0]]: a zero-extended byte plus a table's address.
        assert_eq!(
            bound_of(|b, p, _| {
                let byte = b.ins().uload8(I32, flags, p, 0);
                b.ins().iadd_imm_u(byte, 1024)
            }),
            Some(1279)
        );
        // table[(x ^ y) & 0xff] of 4-byte entries.
        assert_eq!(
            bound_of(|b, p, x| {
                let y = b.ins().load(I32, flags, p, 0);
                let h = b.ins().bxor(x, y);
                let masked = b.ins().band_imm_u(h, 0xff);
                b.ins().ishl_imm_u(masked, 2)
            }),
            Some(1020)
        );
        // x >> 24, x % 100, a comparison's result.
        assert_eq!(bound_of(|b, _, x| b.ins().ushr_imm_u(x, 24)), Some(255));
        assert_eq!(bound_of(|b, _, x| b.ins().urem_imm_u(x, 100)), Some(99));
        assert_eq!(
            bound_of(|b, _, x| {
                let c = b.ins().icmp_imm_u(IntCC::Equal, x, 3);
                b.ins().uextend(I32, c)
            }),
            Some(1)
        );
        // An 8-bit value or'ed with a 4-bit one stays below 256.
        assert_eq!(
            bound_of(|b, p, x| {
                let byte = b.ins().uload8(I32, flags, p, 0);
                let nibble = b.ins().band_imm_u(x, 15);
                b.ins().bor(byte, nibble)
            }),
            Some(255)
        );
    }

    #[test]
    fn unbounded_computations() {
        let flags = MemFlagsData::new();
        // A parameter, a full load, a sign-extended byte.
        assert_eq!(bound_of(|_, _, x| x), None);
        assert_eq!(bound_of(|b, p, _| b.ins().load(I32, flags, p, 0)), None);
        assert_eq!(bound_of(|b, p, _| b.ins().sload8(I32, flags, p, 0)), None);
        // A sum or a shift that may wrap is not bounded.
        assert_eq!(
            bound_of(|b, _, x| {
                let high = b.ins().ushr_imm_u(x, 1);
                let wide = b.ins().ushr_imm_u(x, 0);
                b.ins().iadd(high, wide)
            }),
            None
        );
        assert_eq!(
            bound_of(|b, p, _| {
                let byte = b.ins().uload8(I32, flags, p, 0);
                b.ins().ishl_imm_u(byte, 25)
            }),
            None
        );
        // A mask with an unknown value bounds nothing; x & 0xff does.
        assert_eq!(
            bound_of(|b, p, x| {
                let y = b.ins().load(I32, flags, p, 0);
                b.ins().band(x, y)
            }),
            None
        );
    }
}
