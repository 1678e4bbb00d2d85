//! The guard's promise, checked over each translated function: every load
//! and store in the linear-memory alias region has an address of one of
//! the shapes `memory.rs` argues safe, speculatively included:
//!
//! - *guarded:* `base + select_spectre_guard(cond, -base, index)` (null
//!   when masked), accessed at an immediate offset that keeps the masked
//!   case below [`abi::NULL_TRAP_BYTES`];
//! - *static:* `base + c` with `c + size` within the memory's declared
//!   minimum, or `base + index` (a zero-extended 32-bit index) whose
//!   proven upper bound (see `ranges`) plus the immediate offset and size
//!   lies within it;
//! - *paging:* under a reservation, `base + index + c` (a zero-extended
//!   32-bit index) with `c + size` within the guard region;
//! - *versioned:* `fast + index` (a zero-extended 32-bit index) with the
//!   immediate offset below 2^31, where `fast` is a *fast base*: a
//!   `select_spectre_guard` one of whose arms is the speculation sink
//!   (loaded from the store context), or a block parameter every incoming
//!   value of which is a fast base (see `versioning`). This checks that
//!   no versioned access uses a base that a mispredicted check or back
//!   edge could leave unmasked; that the loop's entry check covers the
//!   index is `versioning`'s argument.
//!
//! Compilation runs it on every function in debug builds, so every test
//! (the spec suite, the differential tester, the C corpus) checks it: a
//! change that forms a heap address another way fails to compile rather
//! than quietly widening the sandbox. It checks the address's shape, not
//! where its base came from.

use std::collections::{HashMap, HashSet};

use cranelift_codegen::ir::{BlockArg, Function, InstructionData, Opcode, Value, ValueDef};

use crate::MemoryStrategy;
use crate::abi;
use crate::module_info::ModuleInfo;

/// Why an access's address is not one the guard argument covers.
pub(crate) fn check_heap_accesses(
    func: &Function,
    info: &ModuleInfo,
    strategy: MemoryStrategy,
) -> Result<(), String> {
    let Some(heap) = func
        .dfg
        .alias_regions
        .iter()
        .find(|(_, region)| region.user_id == super::HEAP_REGION_ID)
        .map(|(region, _)| region)
    else {
        return Ok(());
    };
    let minimum = info
        .memories
        .first()
        .map_or(0, |m| m.minimum.saturating_mul(abi::WASM_PAGE_SIZE));
    let guard_bytes = match strategy {
        MemoryStrategy::Guarded => 0,
        MemoryStrategy::Reserved { guard_bytes } => guard_bytes,
    };
    let incoming = incoming_values(func);
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            let data = &func.dfg.insts[inst];
            if data.alias_region(&func.dfg) != Some(heap) {
                continue;
            }
            let (address, size) = match *data {
                InstructionData::Load { opcode, arg, .. } => {
                    let ty = func.dfg.ctrl_typevar(inst);
                    (arg, access_size(opcode).unwrap_or(ty.bytes()))
                }
                InstructionData::Store { opcode, args, .. } => {
                    let ty = func.dfg.value_type(args[0]);
                    (args[1], access_size(opcode).unwrap_or(ty.bytes()))
                }
                _ => return Err(format!("{inst}: an unexpected heap instruction")),
            };
            let offset = i64::from(data.load_store_offset().unwrap_or(0));
            let end = |c: i64| u64::try_from(c + offset).ok().map(|c| c + u64::from(size));
            let fits = |c: i64, within: u64| end(c).is_some_and(|end| end <= within);
            let ok = match def(func, address) {
                Some((Opcode::Iadd, args)) if masks_to_null(func, args[0], args[1]) => {
                    fits(0, abi::NULL_TRAP_BYTES)
                }
                Some((Opcode::Iadd, args))
                    if guard_bytes == 0
                        && is_fast_base(func, &incoming, args[0])
                        && matches!(def(func, args[1]), Some((Opcode::Uextend, _))) =>
                {
                    (0..=i64::from(i32::MAX)).contains(&offset)
                }
                Some((Opcode::Iadd, args)) => match constant(func, args[1]) {
                    Some(c) if fits(c, minimum) => true,
                    None if bounded_index(func, args[1])
                        .is_some_and(|largest| fits(largest as i64, minimum)) =>
                    {
                        true
                    }
                    Some(c) if guard_bytes > 0 => {
                        fits(c, guard_bytes) && is_index_add(func, args[0])
                    }
                    _ => false,
                },
                _ => false,
            };
            if !ok {
                return Err(format!(
                    "{inst} ({}): a heap address formed outside the guard",
                    func.dfg.display_inst(inst)
                ));
            }
        }
    }
    Ok(())
}

/// For each block parameter, the values branches pass it.
fn incoming_values(func: &Function) -> HashMap<Value, Vec<Value>> {
    let mut incoming: HashMap<Value, Vec<Value>> = HashMap::new();
    for block in func.layout.blocks() {
        for inst in func.layout.block_insts(block) {
            let data = &func.dfg.insts[inst];
            let pool = &func.dfg.value_lists;
            for call in data.branch_destination(&func.dfg.jump_tables, &func.dfg.exception_tables) {
                let params = func.dfg.block_params(call.block(pool));
                for (param, arg) in params.iter().zip(call.args(pool)) {
                    if let BlockArg::Value(v) = arg {
                        incoming.entry(*param).or_default().push(v);
                    }
                }
            }
        }
    }
    incoming
}

/// Whether `value` is a fast base (see the module doc).
fn is_fast_base(func: &Function, incoming: &HashMap<Value, Vec<Value>>, value: Value) -> bool {
    let mut seen = HashSet::new();
    let mut pending = vec![value];
    while let Some(value) = pending.pop() {
        let value = func.dfg.resolve_aliases(value);
        if !seen.insert(value) {
            continue;
        }
        match func.dfg.value_def(value) {
            ValueDef::Param(..) => match incoming.get(&value) {
                Some(values) => pending.extend(values),
                None => return false,
            },
            _ => match def(func, value) {
                Some((Opcode::SelectSpectreGuard, args))
                    if is_sink(func, args[1]) || is_sink(func, args[2]) => {}
                _ => return false,
            },
        }
    }
    true
}

/// Whether `value` is a load of the speculation sink's address.
fn is_sink(func: &Function, value: Value) -> bool {
    let value = func.dfg.resolve_aliases(value);
    let Some(inst) = func.dfg.value_def(value).inst() else {
        return false;
    };
    matches!(func.dfg.insts[inst], InstructionData::Load { opcode: Opcode::Load, offset, .. }
        if i32::from(offset) == abi::store_context::SPECULATION_SINK
            && func.dfg.value_type(value) == cranelift_codegen::ir::types::I64)
}

/// The bytes a narrowing load or store moves.
fn access_size(opcode: Opcode) -> Option<u32> {
    use Opcode::*;
    match opcode {
        Uload8 | Sload8 | Istore8 => Some(1),
        Uload16 | Sload16 | Istore16 => Some(2),
        Uload32 | Sload32 | Istore32 => Some(4),
        _ => None,
    }
}

/// The opcode and arguments of the instruction defining `value`.
fn def(func: &Function, value: Value) -> Option<(Opcode, &[Value])> {
    let value = func.dfg.resolve_aliases(value);
    let inst = func.dfg.value_def(value).inst()?;
    let data = &func.dfg.insts[inst];
    Some((data.opcode(), data.arguments(&func.dfg.value_lists)))
}

/// `value` as a constant, if an `iconst` defines it.
fn constant(func: &Function, value: Value) -> Option<i64> {
    super::iconst_bits(&func.dfg, value)
}

/// Whether `index` is `select_spectre_guard(cond, -base, _)`: `base +
/// index` is null when the guard fails.
fn masks_to_null(func: &Function, base: Value, index: Value) -> bool {
    let base = func.dfg.resolve_aliases(base);
    matches!(def(func, index), Some((Opcode::SelectSpectreGuard, args))
        if matches!(def(func, args[1]), Some((Opcode::Ineg, negated))
            if func.dfg.resolve_aliases(negated[0]) == base))
}

/// The proven upper bound of `value`, if it is a zero-extended 32-bit index.
fn bounded_index(func: &Function, value: Value) -> Option<u64> {
    match def(func, value) {
        Some((Opcode::Uextend, args)) => super::ranges::upper_bound(&func.dfg, args[0]),
        _ => None,
    }
}

/// Whether `value` is `base + zero-extended 32-bit index`.
fn is_index_add(func: &Function, value: Value) -> bool {
    matches!(def(func, value), Some((Opcode::Iadd, args))
        if matches!(def(func, args[1]), Some((Opcode::Uextend, _))))
}

#[cfg(test)]
mod tests {
    use cranelift_codegen::ir::types::I64;
    use cranelift_codegen::ir::{AbiParam, AliasRegionData, InstBuilder, MemFlagsData, Signature};
    use cranelift_codegen::isa::CallConv;
    use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

    use super::*;

    /// A function `(base, index) -> i64` whose one heap load's address
    /// `address` forms, at immediate offset `offset`.
    fn load_through(
        offset: i32,
        address: impl Fn(&mut FunctionBuilder<'_>, Value, Value) -> Value,
    ) -> Function {
        let mut signature = Signature::new(CallConv::SystemV);
        signature
            .params
            .extend([AbiParam::new(I64), AbiParam::new(I64)]);
        signature.returns.push(AbiParam::new(I64));
        let mut func = Function::with_name_signature(Default::default(), signature);
        let heap = func.dfg.alias_regions.insert(AliasRegionData {
            user_id: super::super::HEAP_REGION_ID,
            description: "linear memory".into(),
        });
        let mut context = FunctionBuilderContext::new();
        let mut b = FunctionBuilder::new(&mut func, &mut context);
        let entry = b.create_block();
        b.append_block_params_for_function_params(entry);
        b.switch_to_block(entry);
        b.seal_block(entry);
        let (base, index) = (b.block_params(entry)[0], b.block_params(entry)[1]);
        let addr = address(&mut b, base, index);
        let flags = MemFlagsData::new().with_alias_region(Some(heap));
        let value = b.ins().load(I64, flags, addr, offset);
        b.ins().return_(&[value]);
        b.finalize(super::super::host_frontend_config());
        func
    }

    fn check(func: &Function) -> Result<(), String> {
        let info = crate::module_info::decode(&[0, b'a', b's', b'm', 1, 0, 0, 0]).unwrap();
        check_heap_accesses(func, &info, MemoryStrategy::Guarded)
    }

    fn masked(b: &mut FunctionBuilder<'_>, base: Value, index: Value) -> Value {
        let to_null = b.ins().ineg(base);
        let index = b.ins().select_spectre_guard(index, to_null, index);
        b.ins().iadd(base, index)
    }

    #[test]
    fn a_masked_address_passes() {
        assert_eq!(check(&load_through(8, masked)), Ok(()));
    }

    #[test]
    fn an_unmasked_address_is_refused() {
        let unmasked = |b: &mut FunctionBuilder<'_>, base, index| b.ins().iadd(base, index);
        assert!(check(&load_through(0, unmasked)).is_err());
    }

    #[test]
    fn a_mask_to_another_value_is_refused() {
        // `base + select(c, -index, index)` is not null when masked.
        let wrong = |b: &mut FunctionBuilder<'_>, base, index| {
            let negated = b.ins().ineg(index);
            let masked = b.ins().select_spectre_guard(index, negated, index);
            b.ins().iadd(base, masked)
        };
        assert!(check(&load_through(0, wrong)).is_err());
    }

    #[test]
    fn an_offset_that_leaves_the_null_page_is_refused() {
        let offset = abi::NULL_TRAP_BYTES as i32 - 4;
        assert!(check(&load_through(offset, masked)).is_err());
    }

    #[test]
    fn a_constant_address_past_the_minimum_is_refused() {
        // The module declares no memory: its minimum is 0 bytes.
        let constant = |b: &mut FunctionBuilder<'_>, base, _| {
            let c = b.ins().iconst(I64, 16);
            b.ins().iadd(base, c)
        };
        assert!(check(&load_through(0, constant)).is_err());
    }
}
