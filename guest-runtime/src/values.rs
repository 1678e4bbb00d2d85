//! Wasm values as the host sees them, and their 8-byte slot encoding.
//!
//! Floats are carried as bits so that NaN payloads survive every copy.
//! In a slot, references are one word: a funcref is the address of its
//! VMFuncRef record, an externref is a host number `n` stored as `n + 1`,
//! and null is 0 for both.
//!
//! The host never sees a record's address. A [`FuncRef`] it holds names
//! the function (store, instance, index) instead, because records live in
//! vmctx regions that move: an address kept across a relocation would
//! point at whatever occupies the old range next. The store turns one
//! into the other at every crossing (arguments, results, globals, host
//! calls) and refuses a funcref of another store; the host cannot make
//! one up, since its fields are private.

use carat_jit::ValType;

/// A non-null function reference as the host holds it: function `index`
/// (in its instance's function index space, imports first) of an
/// instance of one store. Only that store accepts it back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FuncRef {
    pub(crate) store: u64,
    pub(crate) instance: u32,
    pub(crate) index: u32,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Val {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    FuncRef(Option<FuncRef>),
    ExternRef(Option<u32>),
}

impl Val {
    pub fn ty(&self) -> ValType {
        match self {
            Val::I32(_) => ValType::I32,
            Val::I64(_) => ValType::I64,
            Val::F32(_) => ValType::F32,
            Val::F64(_) => ValType::F64,
            Val::FuncRef(_) => ValType::FuncRef,
            Val::ExternRef(_) => ValType::ExternRef,
        }
    }

    /// The zero value of a type (null for references).
    pub fn default_for(ty: ValType) -> Val {
        Val::from_slot(ty, 0)
    }

    /// The 8-byte slot encoding used by trampolines, globals and tables,
    /// for every value but a non-null funcref, which only its store can
    /// encode (see `StoreInner::slot_of`); that gives null here.
    pub(crate) fn to_slot(self) -> u64 {
        match self {
            Val::I32(v) => u64::from(v as u32),
            Val::I64(v) => v as u64,
            Val::F32(bits) => u64::from(bits),
            Val::F64(bits) => bits,
            Val::FuncRef(r) => {
                debug_assert!(r.is_none(), "a funcref encoded without its store");
                0
            }
            Val::ExternRef(r) => r.map_or(0, |n| u64::from(n) + 1),
        }
    }

    /// Decodes a slot, for every type but funcref, whose non-null slots
    /// only the store can decode (see `StoreInner::val_of`).
    pub(crate) fn from_slot(ty: ValType, slot: u64) -> Val {
        match ty {
            ValType::I32 => Val::I32(slot as u32 as i32),
            ValType::I64 => Val::I64(slot as i64),
            ValType::F32 => Val::F32(slot as u32),
            ValType::F64 => Val::F64(slot),
            ValType::FuncRef => {
                debug_assert_eq!(slot, 0, "a funcref decoded without its store");
                Val::FuncRef(None)
            }
            ValType::ExternRef => Val::ExternRef(slot.checked_sub(1).map(|n| n as u32)),
        }
    }
}

impl std::fmt::Display for Val {
    /// Prints a value the way `carat-vm run --invoke` reports results.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Val::I32(v) => write!(f, "{v}"),
            Val::I64(v) => write!(f, "{v}"),
            Val::F32(bits) => write_float(f, f64::from(f32::from_bits(bits)), bits.into(), 32),
            Val::F64(bits) => write_float(f, f64::from_bits(bits), bits, 64),
            Val::FuncRef(None) | Val::ExternRef(None) => f.write_str("null"),
            Val::FuncRef(Some(r)) => write!(f, "funcref({}:{})", r.instance, r.index),
            Val::ExternRef(Some(n)) => write!(f, "externref({n})"),
        }
    }
}

fn write_float(
    f: &mut std::fmt::Formatter<'_>,
    value: f64,
    bits: u64,
    width: u32,
) -> std::fmt::Result {
    if value.is_nan() {
        let payload_bits = if width == 32 { 23 } else { 52 };
        let payload = bits & ((1u64 << payload_bits) - 1);
        let sign = if bits >> (width - 1) & 1 == 1 {
            "-"
        } else {
            ""
        };
        let canonical = 1u64 << (payload_bits - 1);
        if payload == canonical {
            write!(f, "{sign}nan")
        } else {
            write!(f, "{sign}nan:{payload:#x}")
        }
    } else if value.is_infinite() {
        f.write_str(if value < 0.0 { "-inf" } else { "inf" })
    } else if width == 32 {
        write!(f, "{:?}", value as f32)
    } else {
        write!(f, "{value:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip() {
        let values = [
            Val::I32(-1),
            Val::I64(i64::MIN),
            Val::F32(0x7fc0_0001),
            Val::F64(0xfff8_0000_0000_0001),
            Val::FuncRef(None),
            Val::ExternRef(None),
            Val::ExternRef(Some(0)),
            Val::ExternRef(Some(u32::MAX)),
        ];
        for v in values {
            assert_eq!(Val::from_slot(v.ty(), v.to_slot()), v);
        }
    }

    #[test]
    fn floats_print_like_the_cli_promises() {
        assert_eq!(Val::F32(1.5f32.to_bits()).to_string(), "1.5");
        assert_eq!(Val::F64(f64::NEG_INFINITY.to_bits()).to_string(), "-inf");
        assert_eq!(Val::F32(0x7fc0_0000).to_string(), "nan");
        assert_eq!(Val::F32(0xffc0_0001).to_string(), "-nan:0x400001");
    }
}
