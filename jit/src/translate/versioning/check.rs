//! The entry check of a versioned loop, emitted in its check block once
//! the fast copy is translated: the last iteration from the latch, and
//! each access group's lowest and highest byte over the trip range (see
//! the parent module for why it is exact).

use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::types::{I32, I64, I128};
use cranelift_codegen::ir::{self, InstBuilder, Opcode, Type, Value};

use super::{Affine, FastLoop, Latch, Leaf};
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
            let both = self.group_check(fast, terms, extent, n_last, bound);
            ok = Some(match ok {
                Some(so_far) => self.b.ins().band(so_far, both),
                None => both,
            });
        }
        ok.expect("at least one group")
    }

    /// One group's check: its lowest byte over the trip is at least 0 and
    /// its highest at most the bound. In 64 bits, or in 128 bits for a
    /// group with a run-time coefficient (a `Scaled` leaf), where every
    /// product of two 32-bit values, a 32-bit trip count and 15-bit
    /// constants fits with room to spare; either way nothing overflows and
    /// the comparison is exact.
    fn group_check(
        &mut self,
        fast: &FastLoop,
        terms: &[(Leaf, i64)],
        extent: &super::Extent,
        n_last: Value,
        bound: Value,
    ) -> Value {
        let scaled = terms
            .iter()
            .any(|(leaf, _)| matches!(leaf, Leaf::Scaled(..)));
        let ty = if scaled { I128 } else { I64 };
        let mut sum = self.constant_of(ty, 0);
        // What one iteration adds: in a group of constant steps, their
        // sum, exactly; in a group with run-time steps (a `Scaled` leaf's,
        // whose factor is unsigned, so its sign is known), every step split
        // by sign, the lowest byte taking the falling ones over the whole
        // trip and the highest the rising ones, which bounds the true range
        // from outside.
        let mut per_iteration = 0i64;
        let mut rising = None;
        let mut falling = None;
        for &(leaf, coefficient) in terms {
            let value = match leaf {
                Leaf::Scaled(local, invariant) => {
                    let entry = self.leaf_at_entry(fast, Leaf::Local(local));
                    let entry = self.widened(ty, entry);
                    let factor = self.invariant_at_entry(fast, invariant);
                    let factor = self.widened(ty, factor);
                    let delta =
                        fast.plan.inductions.get(&local).copied().unwrap_or(0) * coefficient;
                    let k = self.constant_of(ty, delta);
                    let delta_value = self.b.ins().imul(factor, k);
                    let side = if delta > 0 { &mut rising } else { &mut falling };
                    self.accumulate(side, delta_value);
                    self.b.ins().imul(entry, factor)
                }
                other => {
                    let delta = match other {
                        Leaf::Local(l) => fast.plan.inductions.get(&l).copied().unwrap_or(0),
                        _ => 0,
                    } * coefficient;
                    if scaled && delta != 0 {
                        // With run-time steps in the group, every step
                        // goes by its sign.
                        let delta_value = self.constant_of(ty, delta);
                        let side = if delta > 0 { &mut rising } else { &mut falling };
                        self.accumulate(side, delta_value);
                    } else {
                        per_iteration += delta;
                    }
                    let value = self.leaf_at_entry(fast, other);
                    self.widened(ty, value)
                }
            };
            let c = self.constant_of(ty, coefficient);
            let term = self.b.ins().imul(value, c);
            sum = self.b.ins().iadd(sum, term);
        }
        let n = self.widened(ty, n_last);
        let per_iteration_value = self.constant_of(ty, per_iteration);
        let travel = self.b.ins().imul(n, per_iteration_value);
        let zero = self.constant_of(ty, 0);
        let (mut down, mut up) = if per_iteration < 0 {
            (travel, zero)
        } else {
            (zero, travel)
        };
        if let Some(falling) = falling {
            let more = self.b.ins().imul(n, falling);
            down = self.b.ins().iadd(down, more);
        }
        if let Some(rising) = rising {
            let more = self.b.ins().imul(n, rising);
            up = self.b.ins().iadd(up, more);
        }
        let lowest_c = self.constant_of(ty, extent.lowest);
        let highest_c = self.constant_of(ty, extent.highest_end);
        let lowest = self.b.ins().iadd(sum, lowest_c);
        let lowest = self.b.ins().iadd(lowest, down);
        let highest = self.b.ins().iadd(sum, highest_c);
        let highest = self.b.ins().iadd(highest, up);
        let bound = self.widened_signed(ty, bound);
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

    /// `sum += value`, `sum` starting empty.
    fn accumulate(&mut self, sum: &mut Option<Value>, value: Value) {
        *sum = Some(match *sum {
            Some(so_far) => self.b.ins().iadd(so_far, value),
            None => value,
        });
    }

    /// A constant of type `ty` (I64 or I128).
    fn constant_of(&mut self, ty: Type, value: i64) -> Value {
        let narrow = self.b.ins().iconst(I64, value);
        self.widened_signed(ty, narrow)
    }

    /// `value` zero-extended to `ty`, or itself when it has that type.
    fn widened(&mut self, ty: Type, value: Value) -> Value {
        if self.b.func.dfg.value_type(value) == ty {
            value
        } else {
            self.b.ins().uextend(ty, value)
        }
    }

    /// `value` sign-extended to `ty`, or itself when it has that type.
    fn widened_signed(&mut self, ty: Type, value: Value) -> Value {
        if self.b.func.dfg.value_type(value) == ty {
            value
        } else {
            self.b.ins().sextend(ty, value)
        }
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
        if super::defined_before_loop(self.b.func, fast, value) {
            return value;
        }
        let inst = dfg
            .value_def(value)
            .inst()
            .expect("is_invariant admits no other parameter");
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
