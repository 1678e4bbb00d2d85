//! The entry check of a versioned loop, emitted in its check block once
//! the fast copy is translated: the last iteration from the latch, and
//! each access group's lowest and highest byte over the trip range (see
//! the parent module for why it is exact).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64};
use cranelift_codegen::ir::{self, InstBuilder, Opcode, Value};

use super::{Affine, FastLoop, Latch, Leaf, is_outside};
use crate::translate::FuncTranslator;

impl FuncTranslator<'_, '_> {
    /// The check block's condition: non-zero when every covered access is
    /// in bounds on every iteration.
    pub(super) fn entry_check(&mut self, fast: &FastLoop, bound: Value) -> Value {
        let uses_induction = fast.covered.keys().any(|terms| {
            terms.iter().any(|(leaf, _)| match leaf {
                Leaf::Local(l) => fast.plan.inductions.contains_key(l),
                Leaf::Scaled(..) => true,
                _ => false,
            })
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
            if terms
                .iter()
                .any(|(leaf, _)| matches!(leaf, Leaf::Scaled(..)))
            {
                let both = self.wide_group_check(fast, terms, extent, n_last, bound);
                ok = Some(match ok {
                    Some(so_far) => self.b.ins().band(so_far, both),
                    None => both,
                });
                continue;
            }
            let mut sum = self.b.ins().iconst(I64, 0);
            let mut per_iteration = 0i64;
            for &(leaf, coefficient) in terms {
                let value = self.leaf_at_entry(fast, leaf);
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

    /// One group's check, in 128 bits, for groups with a run-time
    /// coefficient (a `Scaled` leaf): every product of two 32-bit values,
    /// a 32-bit trip count and 15-bit constants fits with room to spare,
    /// so the comparison with the bound is exact.
    fn wide_group_check(
        &mut self,
        fast: &FastLoop,
        terms: &[(Leaf, i64)],
        extent: &super::Extent,
        n_last: Value,
        bound: Value,
    ) -> Value {
        use cranelift_codegen::ir::types::I128;
        let mut sum = self.wide_constant(0);
        // What one iteration adds, split by sign (each term's sign is known
        // here: a run-time factor is unsigned): the lowest byte takes the
        // falling terms over the whole trip, the highest the rising ones,
        // which bounds the true range from outside.
        let mut rising = self.wide_constant(0);
        let mut falling = self.wide_constant(0);
        for &(leaf, coefficient) in terms {
            let (value, step) = match leaf {
                Leaf::Scaled(local, invariant) => {
                    let entry = self.leaf_at_entry(fast, Leaf::Local(local));
                    let factor = self.invariant_at_entry(fast, invariant);
                    let (entry, factor) = (
                        self.b.ins().uextend(I128, entry),
                        self.b.ins().uextend(I128, factor),
                    );
                    let step = fast.plan.inductions.get(&local).copied().unwrap_or(0);
                    let value = self.b.ins().imul(entry, factor);
                    let k = self.wide_constant(step * coefficient);
                    (
                        value,
                        Some((self.b.ins().imul(factor, k), step * coefficient)),
                    )
                }
                other => {
                    let value = self.leaf_at_entry(fast, other);
                    let value = self.b.ins().uextend(I128, value);
                    let step = match other {
                        Leaf::Local(l) => fast.plan.inductions.get(&l).copied(),
                        _ => None,
                    };
                    let delta =
                        step.map(|k| (self.wide_constant(k * coefficient), k * coefficient));
                    (value, delta)
                }
            };
            let c = self.wide_constant(coefficient);
            let term = self.b.ins().imul(value, c);
            sum = self.b.ins().iadd(sum, term);
            match step {
                Some((delta, sign)) if sign > 0 => rising = self.b.ins().iadd(rising, delta),
                Some((delta, _)) => falling = self.b.ins().iadd(falling, delta),
                None => {}
            }
        }
        let n = self.b.ins().uextend(I128, n_last);
        let up = self.b.ins().imul(n, rising);
        let down = self.b.ins().imul(n, falling);
        let zero = self.wide_constant(0);
        let lowest_c = self.wide_constant(extent.lowest);
        let highest_c = self.wide_constant(extent.highest_end);
        let lowest = self.b.ins().iadd(sum, lowest_c);
        let lowest = self.b.ins().iadd(lowest, down);
        let highest = self.b.ins().iadd(sum, highest_c);
        let highest = self.b.ins().iadd(highest, up);
        let bound = self.b.ins().sextend(I128, bound);
        let above_zero = self
            .b
            .ins()
            .icmp(IntCC::SignedGreaterThanOrEqual, lowest, zero);
        let below_bound = self
            .b
            .ins()
            .icmp(IntCC::SignedLessThanOrEqual, highest, bound);
        self.b.ins().band(above_zero, below_bound)
    }

    /// A 128-bit constant.
    fn wide_constant(&mut self, value: i64) -> Value {
        let narrow = self.b.ins().iconst(I64, value);
        self.b
            .ins()
            .sextend(cranelift_codegen::ir::types::I128, narrow)
    }

    /// A leaf's value on entry to the loop (in the check block).
    pub(super) fn leaf_at_entry(&mut self, fast: &FastLoop, leaf: Leaf) -> Value {
        match leaf {
            Leaf::Local(local) => self.b.use_var(self.locals[local as usize]),
            Leaf::Outside(value) => value,
            Leaf::Invariant(value) => self.invariant_at_entry(fast, value),
            Leaf::Scaled(..) => unreachable!("a product: see `wide_group_check`"),
        }
    }

    /// An invariant value (see `is_invariant`) computed again in the
    /// check block, from the same operations on the invariants' values at
    /// entry, which are their values in every iteration.
    fn invariant_at_entry(&mut self, fast: &FastLoop, value: Value) -> Value {
        let dfg = &self.b.func.dfg;
        let value = dfg.resolve_aliases(value);
        if let Some(bits) = crate::translate::iconst_bits(dfg, value) {
            return self.b.ins().iconst(I32, bits);
        }
        if let Some(&local) = fast.leaves.get(&value) {
            return self.b.use_var(self.locals[local as usize]);
        }
        let Some(inst) = dfg
            .value_def(value)
            .inst()
            .filter(|&i| !is_outside(self.b.func, fast, i))
        else {
            return value;
        };
        let opcode = dfg.insts[inst].opcode();
        let args = dfg.inst_args(inst).to_vec();
        let a = self.invariant_at_entry(fast, args[0]);
        let b = self.invariant_at_entry(fast, args[1]);
        let ins = self.b.ins();
        match opcode {
            Opcode::Iadd => ins.iadd(a, b),
            Opcode::Isub => ins.isub(a, b),
            Opcode::Imul => ins.imul(a, b),
            Opcode::Ishl => ins.ishl(a, b),
            Opcode::Ushr => ins.ushr(a, b),
            Opcode::Sshr => ins.sshr(a, b),
            Opcode::Band => ins.band(a, b),
            Opcode::Bor => ins.bor(a, b),
            Opcode::Bxor => ins.bxor(a, b),
            other => unreachable!("is_invariant admits no {other}"),
        }
    }

    /// The index of the last iteration (64 bits) and, when the latch's
    /// shape needs one, a condition for the loop to end without its
    /// induction variable wrapping. `None` for a latch whose trip range
    /// cannot be bounded this way.
    fn last_iteration(&mut self, fast: &FastLoop, latch: &Latch) -> Option<(Value, Option<Value>)> {
        let step = *fast.plan.inductions.get(&latch.induction)?;
        let magnitude = step.abs();
        let entry = self.leaf_at_entry(fast, Leaf::Local(latch.induction));
        let first = self.b.ins().iadd_imm_s(entry, latch.offset);
        let limit = self.form_value_i32(fast, &latch.limit);
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
    fn form_value_i32(&mut self, fast: &FastLoop, form: &Affine) -> Value {
        let mut sum = self.b.ins().iconst(I32, form.constant as i32 as i64);
        for &(leaf, coefficient) in &form.terms {
            let value = self.leaf_at_entry(fast, leaf);
            let term = self.b.ins().imul_imm_s(value, coefficient);
            sum = self.b.ins().iadd(sum, term);
        }
        sum
    }
}
