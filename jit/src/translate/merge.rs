//! Merging guards: a pre-pass over a function body that finds runs of
//! loads off one local (`local.get $p` then a load, again and again, with
//! different offsets) where the first load may check the largest end of
//! them all, so that the loads after it share its guard (see `memory.rs`).
//!
//! Checking a later load's end at an earlier load makes the trap happen
//! earlier. That is invisible only if nothing observable can happen in
//! between, so a run (a *window*) lasts only across operators that are
//! straight-line, write nothing and cannot trap except as a load does:
//! constants, `local.get`, arithmetic that cannot trap, comparisons,
//! conversions that cannot trap, `select`, `drop`, `global.get`,
//! `memory.size` and loads (whose only trap is the same out-of-bounds
//! trap). Anything else (control flow, calls, stores, `local.set` of the
//! window's local, division, trapping conversions, bulk memory, tables)
//! closes every window, or that local's. Inside a window every load is
//! reached whenever the first one is passed, so the first may trap in its
//! place, with the same message and the same memory.

use std::collections::HashMap;

use wasmparser::{BinaryReaderError, FunctionBody, MemArg, Operator};

/// For a load that opens a window (by its operator's offset in the code
/// section), the largest end (`offset + size`) of the window's loads, when
/// larger than its own.
pub(super) fn merged_ends(body: &FunctionBody<'_>) -> Result<HashMap<u64, u64>, BinaryReaderError> {
    let mut merged = HashMap::new();
    // Open windows: (memory, local) -> (first load's offset, its own end,
    // the largest end so far).
    let mut open: HashMap<(u32, u32), (u64, u64, u64)> = HashMap::new();
    // Closes the windows `closes` picks, keeping those worth merging.
    let mut close = |open: &mut HashMap<(u32, u32), (u64, u64, u64)>,
                     closes: &dyn Fn(&(u32, u32)) -> bool| {
        open.retain(|key, &mut (first, own, largest)| {
            if !closes(key) {
                return true;
            }
            if largest > own {
                merged.insert(first, largest);
            }
            false
        });
    };
    let mut previous_local: Option<u32> = None;
    let mut ops = body.get_operators_reader()?;
    while !ops.eof() {
        let (op, offset) = ops.read_with_offset()?;
        let local = previous_local.take();
        if let Some((arg, size)) = load(&op) {
            if let (Some(local), Some(memory)) = (local, memory_of(arg)) {
                let end = arg.offset + u64::from(size);
                open.entry((memory, local))
                    .and_modify(|(_, _, largest)| *largest = (*largest).max(end))
                    .or_insert((offset, end, end));
            }
            continue;
        }
        match op {
            Operator::LocalGet { local_index } => previous_local = Some(local_index),
            Operator::LocalSet { local_index } | Operator::LocalTee { local_index } => {
                close(&mut open, &|&(_, local)| local == local_index);
            }
            ref op if quiet(op) => {}
            _ => close(&mut open, &|_| true),
        }
    }
    close(&mut open, &|_| true);
    Ok(merged)
}

fn memory_of(arg: &MemArg) -> Option<u32> {
    match arg.target {
        wasmparser::MemArgTarget::Memory(index) => Some(index),
        _ => None,
    }
}

/// A load's memory argument and size.
fn load<'a>(op: &'a Operator<'_>) -> Option<(&'a MemArg, u32)> {
    use Operator as O;
    Some(match op {
        O::I32Load8S { memarg } | O::I32Load8U { memarg } => (memarg, 1),
        O::I64Load8S { memarg } | O::I64Load8U { memarg } => (memarg, 1),
        O::I32Load16S { memarg } | O::I32Load16U { memarg } => (memarg, 2),
        O::I64Load16S { memarg } | O::I64Load16U { memarg } => (memarg, 2),
        O::I32Load { memarg } | O::F32Load { memarg } => (memarg, 4),
        O::I64Load32S { memarg } | O::I64Load32U { memarg } => (memarg, 4),
        O::I64Load { memarg } | O::F64Load { memarg } => (memarg, 8),
        _ => return None,
    })
}

/// Whether `op` is straight-line, writes nothing and cannot trap.
fn quiet(op: &Operator<'_>) -> bool {
    use Operator as O;
    matches!(
        op,
        O::Nop
            | O::Drop
            | O::Select
            | O::TypedSelect { .. }
            | O::GlobalGet { .. }
            | O::MemorySize { .. }
            | O::I32Const { .. }
            | O::I64Const { .. }
            | O::F32Const { .. }
            | O::F64Const { .. }
            | O::I32Eqz
            | O::I32Eq
            | O::I32Ne
            | O::I32LtS
            | O::I32LtU
            | O::I32GtS
            | O::I32GtU
            | O::I32LeS
            | O::I32LeU
            | O::I32GeS
            | O::I32GeU
            | O::I64Eqz
            | O::I64Eq
            | O::I64Ne
            | O::I64LtS
            | O::I64LtU
            | O::I64GtS
            | O::I64GtU
            | O::I64LeS
            | O::I64LeU
            | O::I64GeS
            | O::I64GeU
            | O::F32Eq
            | O::F32Ne
            | O::F32Lt
            | O::F32Gt
            | O::F32Le
            | O::F32Ge
            | O::F64Eq
            | O::F64Ne
            | O::F64Lt
            | O::F64Gt
            | O::F64Le
            | O::F64Ge
            | O::I32Clz
            | O::I32Ctz
            | O::I32Popcnt
            | O::I32Add
            | O::I32Sub
            | O::I32Mul
            | O::I32And
            | O::I32Or
            | O::I32Xor
            | O::I32Shl
            | O::I32ShrS
            | O::I32ShrU
            | O::I32Rotl
            | O::I32Rotr
            | O::I64Clz
            | O::I64Ctz
            | O::I64Popcnt
            | O::I64Add
            | O::I64Sub
            | O::I64Mul
            | O::I64And
            | O::I64Or
            | O::I64Xor
            | O::I64Shl
            | O::I64ShrS
            | O::I64ShrU
            | O::I64Rotl
            | O::I64Rotr
            | O::F32Abs
            | O::F32Neg
            | O::F32Ceil
            | O::F32Floor
            | O::F32Trunc
            | O::F32Nearest
            | O::F32Sqrt
            | O::F32Add
            | O::F32Sub
            | O::F32Mul
            | O::F32Div
            | O::F32Min
            | O::F32Max
            | O::F32Copysign
            | O::F64Abs
            | O::F64Neg
            | O::F64Ceil
            | O::F64Floor
            | O::F64Trunc
            | O::F64Nearest
            | O::F64Sqrt
            | O::F64Add
            | O::F64Sub
            | O::F64Mul
            | O::F64Div
            | O::F64Min
            | O::F64Max
            | O::F64Copysign
            | O::I32WrapI64
            | O::I64ExtendI32S
            | O::I64ExtendI32U
            | O::F32ConvertI32S
            | O::F32ConvertI32U
            | O::F32ConvertI64S
            | O::F32ConvertI64U
            | O::F32DemoteF64
            | O::F64ConvertI32S
            | O::F64ConvertI32U
            | O::F64ConvertI64S
            | O::F64ConvertI64U
            | O::F64PromoteF32
            | O::I32ReinterpretF32
            | O::I64ReinterpretF64
            | O::F32ReinterpretI32
            | O::F64ReinterpretI64
            | O::I32Extend8S
            | O::I32Extend16S
            | O::I64Extend8S
            | O::I64Extend16S
            | O::I64Extend32S
            | O::I32TruncSatF32S
            | O::I32TruncSatF32U
            | O::I32TruncSatF64S
            | O::I32TruncSatF64U
            | O::I64TruncSatF32S
            | O::I64TruncSatF32U
            | O::I64TruncSatF64S
            | O::I64TruncSatF64U
    )
}
