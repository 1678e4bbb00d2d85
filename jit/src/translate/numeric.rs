//! Integer and float arithmetic, comparisons and conversions.
//!
//! Most operators map one-to-one onto a Cranelift instruction whose
//! semantics already match the spec: shift and rotate counts are taken
//! modulo the width, `fmin`/`fmax` propagate NaN and order -0 below +0,
//! `sdiv`/`udiv`/`fcvt_to_*int` trap with the spec's traps, `srem` of
//! `MIN % -1` is 0. Comparisons yield a Cranelift `i8` that is widened to
//! the wasm `i32`.

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::immediates::{Ieee32, Ieee64};
use cranelift_codegen::ir::types::{F32, F64, I8, I16, I32, I64};
use cranelift_codegen::ir::{InstBuilder, MemFlagsData, Value};
use wasmparser::Operator;

use super::{FuncTranslator, sign_extend_from};

impl FuncTranslator<'_, '_> {
    fn unary(&mut self, f: impl FnOnce(&mut Self, Value) -> Value) {
        let a = self.pop();
        let v = f(self, a);
        self.push(v);
    }

    fn binary(&mut self, f: impl FnOnce(&mut Self, Value, Value) -> Value) {
        let (a, b) = self.pop2();
        let v = f(self, a, b);
        self.push(v);
    }

    fn int_compare(&mut self, cc: IntCC) {
        self.binary(|t, a, b| {
            let flag = t.b.ins().icmp(cc, a, b);
            t.bool_to_i32(flag)
        });
    }

    fn float_compare(&mut self, cc: FloatCC) {
        self.binary(|t, a, b| {
            let flag = t.b.ins().fcmp(cc, a, b);
            t.bool_to_i32(flag)
        });
    }

    /// Handles numeric operators; returns false for any other operator.
    pub(super) fn numeric_operator(&mut self, op: &Operator<'_>) -> bool {
        use Operator as O;
        match *op {
            O::I32Const { value } => {
                let v = self.b.ins().iconst(I32, i64::from(value));
                self.push(v);
            }
            O::I64Const { value } => {
                let v = self.b.ins().iconst(I64, value);
                self.push(v);
            }
            O::F32Const { value } => {
                let v = self.b.ins().f32const(Ieee32::with_bits(value.bits()));
                self.push(v);
            }
            O::F64Const { value } => {
                let v = self.b.ins().f64const(Ieee64::with_bits(value.bits()));
                self.push(v);
            }

            O::I32Eqz | O::I64Eqz => self.unary(|t, a| t.i32_is_zero(a)),
            O::I32Eq | O::I64Eq => self.int_compare(IntCC::Equal),
            O::I32Ne | O::I64Ne => self.int_compare(IntCC::NotEqual),
            O::I32LtS | O::I64LtS => self.int_compare(IntCC::SignedLessThan),
            O::I32LtU | O::I64LtU => self.int_compare(IntCC::UnsignedLessThan),
            O::I32GtS | O::I64GtS => self.int_compare(IntCC::SignedGreaterThan),
            O::I32GtU | O::I64GtU => self.int_compare(IntCC::UnsignedGreaterThan),
            O::I32LeS | O::I64LeS => self.int_compare(IntCC::SignedLessThanOrEqual),
            O::I32LeU | O::I64LeU => self.int_compare(IntCC::UnsignedLessThanOrEqual),
            O::I32GeS | O::I64GeS => self.int_compare(IntCC::SignedGreaterThanOrEqual),
            O::I32GeU | O::I64GeU => self.int_compare(IntCC::UnsignedGreaterThanOrEqual),

            O::F32Eq | O::F64Eq => self.float_compare(FloatCC::Equal),
            O::F32Ne | O::F64Ne => self.float_compare(FloatCC::NotEqual),
            O::F32Lt | O::F64Lt => self.float_compare(FloatCC::LessThan),
            O::F32Gt | O::F64Gt => self.float_compare(FloatCC::GreaterThan),
            O::F32Le | O::F64Le => self.float_compare(FloatCC::LessThanOrEqual),
            O::F32Ge | O::F64Ge => self.float_compare(FloatCC::GreaterThanOrEqual),

            O::I32Clz | O::I64Clz => self.unary(|t, a| t.b.ins().clz(a)),
            O::I32Ctz | O::I64Ctz => self.unary(|t, a| t.b.ins().ctz(a)),
            O::I32Popcnt | O::I64Popcnt => self.unary(|t, a| t.b.ins().popcnt(a)),
            O::I32Add | O::I64Add => self.binary(|t, a, b| t.b.ins().iadd(a, b)),
            O::I32Sub | O::I64Sub => self.binary(|t, a, b| t.b.ins().isub(a, b)),
            O::I32Mul | O::I64Mul => self.binary(|t, a, b| t.b.ins().imul(a, b)),
            O::I32DivS | O::I64DivS => self.binary(|t, a, b| t.b.ins().sdiv(a, b)),
            O::I32DivU | O::I64DivU => self.binary(|t, a, b| t.b.ins().udiv(a, b)),
            O::I32RemS | O::I64RemS => self.binary(|t, a, b| t.b.ins().srem(a, b)),
            O::I32RemU | O::I64RemU => self.binary(|t, a, b| t.b.ins().urem(a, b)),
            O::I32And | O::I64And => self.binary(|t, a, b| t.b.ins().band(a, b)),
            O::I32Or | O::I64Or => self.binary(|t, a, b| t.b.ins().bor(a, b)),
            O::I32Xor | O::I64Xor => self.binary(|t, a, b| t.b.ins().bxor(a, b)),
            O::I32Shl | O::I64Shl => self.binary(|t, a, b| t.b.ins().ishl(a, b)),
            O::I32ShrS | O::I64ShrS => self.binary(|t, a, b| t.b.ins().sshr(a, b)),
            O::I32ShrU | O::I64ShrU => self.binary(|t, a, b| t.b.ins().ushr(a, b)),
            O::I32Rotl | O::I64Rotl => self.binary(|t, a, b| t.b.ins().rotl(a, b)),
            O::I32Rotr | O::I64Rotr => self.binary(|t, a, b| t.b.ins().rotr(a, b)),

            O::F32Abs | O::F64Abs => self.unary(|t, a| t.b.ins().fabs(a)),
            O::F32Neg | O::F64Neg => self.unary(|t, a| t.b.ins().fneg(a)),
            O::F32Ceil | O::F64Ceil => self.unary(|t, a| t.b.ins().ceil(a)),
            O::F32Floor | O::F64Floor => self.unary(|t, a| t.b.ins().floor(a)),
            O::F32Trunc | O::F64Trunc => self.unary(|t, a| t.b.ins().trunc(a)),
            O::F32Nearest | O::F64Nearest => self.unary(|t, a| t.b.ins().nearest(a)),
            O::F32Sqrt | O::F64Sqrt => self.unary(|t, a| t.b.ins().sqrt(a)),
            O::F32Add | O::F64Add => self.binary(|t, a, b| t.b.ins().fadd(a, b)),
            O::F32Sub | O::F64Sub => self.binary(|t, a, b| t.b.ins().fsub(a, b)),
            O::F32Mul | O::F64Mul => self.binary(|t, a, b| t.b.ins().fmul(a, b)),
            O::F32Div | O::F64Div => self.binary(|t, a, b| t.b.ins().fdiv(a, b)),
            O::F32Min | O::F64Min => self.binary(|t, a, b| t.b.ins().fmin(a, b)),
            O::F32Max | O::F64Max => self.binary(|t, a, b| t.b.ins().fmax(a, b)),
            O::F32Copysign | O::F64Copysign => self.binary(|t, a, b| t.b.ins().fcopysign(a, b)),

            O::I32WrapI64 => self.unary(|t, a| t.b.ins().ireduce(I32, a)),
            O::I64ExtendI32S => self.unary(|t, a| t.b.ins().sextend(I64, a)),
            O::I64ExtendI32U => self.unary(|t, a| t.b.ins().uextend(I64, a)),
            O::I32TruncF32S | O::I32TruncF64S => self.unary(|t, a| t.b.ins().fcvt_to_sint(I32, a)),
            O::I32TruncF32U | O::I32TruncF64U => self.unary(|t, a| t.b.ins().fcvt_to_uint(I32, a)),
            O::I64TruncF32S | O::I64TruncF64S => self.unary(|t, a| t.b.ins().fcvt_to_sint(I64, a)),
            O::I64TruncF32U | O::I64TruncF64U => self.unary(|t, a| t.b.ins().fcvt_to_uint(I64, a)),
            O::I32TruncSatF32S | O::I32TruncSatF64S => {
                self.unary(|t, a| t.b.ins().fcvt_to_sint_sat(I32, a))
            }
            O::I32TruncSatF32U | O::I32TruncSatF64U => {
                self.unary(|t, a| t.b.ins().fcvt_to_uint_sat(I32, a))
            }
            O::I64TruncSatF32S | O::I64TruncSatF64S => {
                self.unary(|t, a| t.b.ins().fcvt_to_sint_sat(I64, a))
            }
            O::I64TruncSatF32U | O::I64TruncSatF64U => {
                self.unary(|t, a| t.b.ins().fcvt_to_uint_sat(I64, a))
            }
            O::F32ConvertI32S | O::F32ConvertI64S => {
                self.unary(|t, a| t.b.ins().fcvt_from_sint(F32, a))
            }
            O::F32ConvertI32U | O::F32ConvertI64U => {
                self.unary(|t, a| t.b.ins().fcvt_from_uint(F32, a))
            }
            O::F64ConvertI32S | O::F64ConvertI64S => {
                self.unary(|t, a| t.b.ins().fcvt_from_sint(F64, a))
            }
            O::F64ConvertI32U | O::F64ConvertI64U => {
                self.unary(|t, a| t.b.ins().fcvt_from_uint(F64, a))
            }
            O::F32DemoteF64 => self.unary(|t, a| t.b.ins().fdemote(F32, a)),
            O::F64PromoteF32 => self.unary(|t, a| t.b.ins().fpromote(F64, a)),
            O::I32ReinterpretF32 => {
                self.unary(|t, a| t.b.ins().bitcast(I32, MemFlagsData::new(), a))
            }
            O::I64ReinterpretF64 => {
                self.unary(|t, a| t.b.ins().bitcast(I64, MemFlagsData::new(), a))
            }
            O::F32ReinterpretI32 => {
                self.unary(|t, a| t.b.ins().bitcast(F32, MemFlagsData::new(), a))
            }
            O::F64ReinterpretI64 => {
                self.unary(|t, a| t.b.ins().bitcast(F64, MemFlagsData::new(), a))
            }

            O::I32Extend8S | O::I64Extend8S => self.unary(|t, a| sign_extend_from(&mut t.b, a, I8)),
            O::I32Extend16S | O::I64Extend16S => {
                self.unary(|t, a| sign_extend_from(&mut t.b, a, I16))
            }
            O::I64Extend32S => self.unary(|t, a| sign_extend_from(&mut t.b, a, I32)),
            _ => return false,
        }
        true
    }
}
