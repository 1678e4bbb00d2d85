//! Parsing command-line values: typed `--invoke` arguments and sizes.
//!
//! Numbers use the WebAssembly text format's literal syntax (through the
//! `wast` crate's parser), so everything a `.wat` file accepts works here:
//! decimal and hex integers (negative, or unsigned up to the type's width),
//! `_` separators, decimal and hex floats, `inf`, `nan` and `nan:0x…`.
//! References take `null`, or a number for an externref.

use carat_guest_runtime::Val;
use carat_jit::ValType;
use wast::parser::{self, Parse, ParseBuffer};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ty} argument `{text}`: {reason}")]
pub struct ArgError {
    pub ty: ValType,
    pub text: String,
    pub reason: String,
}

fn parse_literal<T: for<'a> Parse<'a>>(text: &str) -> Result<T, String> {
    let buffer = ParseBuffer::new(text).map_err(|e| e.message())?;
    parser::parse::<T>(&buffer).map_err(|e| e.message())
}

/// Parses `text` as a value of type `ty`.
pub fn parse_value(ty: ValType, text: &str) -> Result<Val, ArgError> {
    let error = |reason: String| ArgError {
        ty,
        text: text.to_string(),
        reason,
    };
    let text = text.trim();
    Ok(match ty {
        ValType::I32 => Val::I32(parse_literal::<i32>(text).map_err(error)?),
        ValType::I64 => Val::I64(parse_literal::<i64>(text).map_err(error)?),
        ValType::F32 => Val::F32(parse_literal::<wast::token::F32>(text).map_err(error)?.bits),
        ValType::F64 => Val::F64(parse_literal::<wast::token::F64>(text).map_err(error)?.bits),
        ValType::FuncRef if text == "null" => Val::FuncRef(None),
        ValType::FuncRef => return Err(error("only `null` can be passed as a funcref".into())),
        ValType::ExternRef if text == "null" => Val::ExternRef(None),
        ValType::ExternRef => Val::ExternRef(Some(
            text.parse::<u32>()
                .map_err(|e| error(format!("expected `null` or a number: {e}")))?,
        )),
    })
}

/// Parses arguments for a function taking `params`.
pub fn parse_args(params: &[ValType], texts: &[String]) -> Result<Vec<Val>, String> {
    if params.len() != texts.len() {
        return Err(format!(
            "the function takes {} argument{} ({}) but {} {} given",
            params.len(),
            if params.len() == 1 { "" } else { "s" },
            params
                .iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(", "),
            texts.len(),
            if texts.len() == 1 { "was" } else { "were" },
        ));
    }
    params
        .iter()
        .zip(texts)
        .map(|(ty, text)| parse_value(*ty, text).map_err(|e| e.to_string()))
        .collect()
}

/// Parses a size such as `65536`, `64KiB`, `64MiB`, `4GiB` or `2G`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let number: u64 = digits
        .replace('_', "")
        .parse()
        .map_err(|_| format!("invalid size `{text}`: expected a number with an optional unit"))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        other => return Err(format!("invalid size `{text}`: unknown unit `{other}`")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("invalid size `{text}`: too large"))
}

/// Parses a duration such as `250ms`, `2s`, `1.5s`, `3m`, `500us` or
/// `100ns`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.' && c != '_')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .replace('_', "")
        .parse()
        .map_err(|_| format!("invalid duration `{text}`: expected a number with a unit"))?;
    let seconds = match unit.trim() {
        "" | "s" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "ns" => 1e-9,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => return Err(format!("invalid duration `{text}`: unknown unit `{other}`")),
    };
    std::time::Duration::try_from_secs_f64(number * seconds)
        .map_err(|_| format!("invalid duration `{text}`: out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_accept_signed_unsigned_and_hex() {
        assert_eq!(parse_value(ValType::I32, "-1"), Ok(Val::I32(-1)));
        assert_eq!(parse_value(ValType::I32, "0xffffffff"), Ok(Val::I32(-1)));
        assert_eq!(parse_value(ValType::I32, "4294967295"), Ok(Val::I32(-1)));
        assert_eq!(parse_value(ValType::I64, "1_000"), Ok(Val::I64(1000)));
        assert!(parse_value(ValType::I32, "4294967296").is_err());
        assert!(parse_value(ValType::I32, "one").is_err());
    }

    #[test]
    fn floats_accept_nan_inf_and_hex() {
        assert_eq!(parse_value(ValType::F32, "nan"), Ok(Val::F32(0x7fc0_0000)));
        assert_eq!(
            parse_value(ValType::F32, "-inf"),
            Ok(Val::F32(f32::NEG_INFINITY.to_bits()))
        );
        assert_eq!(
            parse_value(ValType::F64, "0x1.8p1"),
            Ok(Val::F64(3.0f64.to_bits()))
        );
        assert_eq!(
            parse_value(ValType::F64, "nan:0x1"),
            Ok(Val::F64(0x7ff0_0000_0000_0001))
        );
        assert_eq!(
            parse_value(ValType::F32, "2.5"),
            Ok(Val::F32(2.5f32.to_bits()))
        );
        assert!(parse_value(ValType::F32, "1e99").is_err());
    }

    #[test]
    fn argument_count_is_checked() {
        assert!(parse_args(&[ValType::I32], &[]).is_err());
        assert!(parse_args(&[], &["1".to_string()]).is_err());
    }

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2G"), Ok(2 << 30));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert!(parse_size("12 parsecs").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn durations_take_units() {
        use std::time::Duration;
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("1 fortnight").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1e999s").is_err());
    }
}
