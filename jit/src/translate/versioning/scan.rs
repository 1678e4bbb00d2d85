//! The wasm pre-pass of loop versioning: reads a loop's operators before
//! it is translated and says whether to version it, which locals are
//! induction variables and invariants, and whether its latch has a shape
//! whose trip range can be computed (see the parent module).

use std::collections::{HashMap, HashSet};

use wasmparser::{BlockType, OperatorsReader};

use super::{MAX_BODY_OPERATORS, MAX_STEP};
use crate::CompileError;

/// What `scan` learned of a loop from its operators.
pub(in crate::translate) struct LoopPlan {
    /// Induction variables and their steps.
    pub(super) inductions: HashMap<u32, i64>,
    /// Locals the loop writes.
    pub(super) written: HashSet<u32>,
    /// Locals the loop reads.
    pub(super) read: HashSet<u32>,
    /// Whether the latch has a shape whose trip range the check can
    /// compute (an induction variable compared with an invariant or a
    /// constant, or tested against zero). Without it, only accesses at
    /// loop-invariant indices are covered, and a loop with none is not
    /// duplicated.
    pub(super) latch_known: bool,
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
pub(in crate::translate) fn scan(
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
