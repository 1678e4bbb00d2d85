//! Parsing command-line values: typed `--invoke` arguments, sizes,
//! durations, wasmtime's `-W` options, and the rewriting that lets
//! wasmtime's spellings of a command line through.
//!
//! Numbers use the WebAssembly text format's literal syntax (through the
//! `wast` crate's parser), so everything a `.wat` file accepts works here:
//! decimal and hex integers (negative, or unsigned up to the type's width),
//! `_` separators, decimal and hex floats, `inf`, `nan` and `nan:0x…`.
//! References take `null`, or a number for an externref.

use carat_guest_runtime::Val;
use carat_jit::ValType;
use wast::parser::{self, Parse, ParseBuffer};

/// An argument of `--invoke` that does not parse as its parameter's type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {ty} argument `{text}`: {reason}")]
pub struct ArgError {
    /// The parameter's type.
    pub ty: ValType,
    /// The argument as given.
    pub text: String,
    /// Why it does not parse.
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

/// The subcommands `carat-vm` has; a command line that names none runs
/// its module, as `wasmtime m.wasm` does.
pub const SUBCOMMANDS: [&str; 5] = ["run", "launch", "compile", "wast", "help"];

/// Rewrites a command line into the form the parser takes, accepting
/// wasmtime's habits beside carat-vm's own:
/// - no subcommand (`carat-vm m.wasm`, `carat-vm --invoke f m.wasm`)
///   means `run`;
/// - `--stats json` and `--stats text`, with a space, mean `--stats=json`
///   (the value is optional, so the parser alone would take `json` for
///   the module).
///
/// Nothing after a `--` is touched: it is the guest's.
pub fn normalize_command_line(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args = args;
    if let Some(first) = args.get(1)
        && names_a_run(first)
    {
        args.insert(1, "run".into());
    }
    let mut out = Vec::with_capacity(args.len());
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        if arg == "--" {
            out.push(arg);
            out.extend(iter);
            break;
        }
        if arg == "--stats" {
            let mut rest = iter.clone();
            if let Some(format) = rest.next().filter(|v| v == "json" || v == "text") {
                let mut merged = std::ffi::OsString::from("--stats=");
                merged.push(format);
                out.push(merged);
                iter = rest;
                continue;
            }
        }
        out.push(arg);
    }
    out
}

/// Whether a command line's first argument starts a `run` without naming
/// it: a flag (not one about the tool itself) or a module's path. A bare
/// word that is no file is left to the parser, which calls it an unknown
/// subcommand (`carat-vm lanch`) rather than a missing module.
fn names_a_run(first: &std::ffi::OsStr) -> bool {
    let text = first.to_string_lossy();
    if SUBCOMMANDS.contains(&text.as_ref())
        || ["-h", "--help", "-V", "--version"].contains(&text.as_ref())
    {
        return false;
    }
    text.starts_with('-')
        || text.contains('.')
        || text.contains('/')
        || std::path::Path::new(first).exists()
}

/// wasmtime's `-W` options carat-vm knows, as one `-W` gives them
/// (`-W fuel=1000,max-memory-size=64MiB,timeout=2s`; several `-W` add up).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WasmOptions {
    /// `fuel=N`: the fuel a run may burn.
    pub fuel: Option<u64>,
    /// `max-memory-size=BYTES`: the most bytes a memory may grow to.
    pub max_memory_size: Option<u64>,
    /// `timeout=DURATION`: the longest a run may take.
    pub timeout: Option<std::time::Duration>,
}

/// The `-W` keys, for errors.
const WASM_OPTION_KEYS: &str = "fuel, max-memory-size, timeout";

impl WasmOptions {
    /// Parses one `-W` value.
    pub fn parse(text: &str) -> Result<WasmOptions, String> {
        let mut options = WasmOptions::default();
        for item in text.split(',').filter(|i| !i.trim().is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                format!("-W `{item}`: expected KEY=VALUE (keys: {WASM_OPTION_KEYS})")
            })?;
            let context = |e: String| format!("-W {key}: {e}");
            match key.trim() {
                "fuel" => {
                    options.fuel = Some(value.trim().replace('_', "").parse().map_err(|_| {
                        context(format!("invalid count `{value}`: expected a whole number"))
                    })?)
                }
                "max-memory-size" => {
                    options.max_memory_size = Some(parse_size(value).map_err(context)?)
                }
                "timeout" => options.timeout = Some(parse_duration(value).map_err(context)?),
                other => {
                    return Err(format!(
                        "unknown -W option `{other}` (known: {WASM_OPTION_KEYS})"
                    ));
                }
            }
        }
        Ok(options)
    }

    /// These options, with `later`'s set ones in their place.
    pub fn and(self, later: WasmOptions) -> WasmOptions {
        WasmOptions {
            fuel: later.fuel.or(self.fuel),
            max_memory_size: later.max_memory_size.or(self.max_memory_size),
            timeout: later.timeout.or(self.timeout),
        }
    }
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

    fn command_line(args: &[&str]) -> Vec<String> {
        let args = args.iter().map(std::ffi::OsString::from).collect();
        normalize_command_line(args)
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn wasmtime_spellings_are_rewritten() {
        assert_eq!(command_line(&["cv", "m.wasm"]), ["cv", "run", "m.wasm"]);
        assert_eq!(
            command_line(&["cv", "--invoke", "f", "m.wasm"]),
            ["cv", "run", "--invoke", "f", "m.wasm"]
        );
        assert_eq!(command_line(&["cv", "--help"]), ["cv", "--help"]);
        assert_eq!(command_line(&["cv", "lanch"]), ["cv", "lanch"], "a typo");
        assert_eq!(
            command_line(&["cv", "wast", "a.wast"]),
            ["cv", "wast", "a.wast"]
        );
        assert_eq!(
            command_line(&["cv", "run", "--stats", "json", "m.wasm"]),
            ["cv", "run", "--stats=json", "m.wasm"]
        );
        assert_eq!(
            command_line(&["cv", "run", "--stats", "m.wasm"]),
            ["cv", "run", "--stats", "m.wasm"]
        );
        assert_eq!(
            command_line(&["cv", "run", "m.wasm", "--", "--stats", "json"]),
            ["cv", "run", "m.wasm", "--", "--stats", "json"]
        );
    }

    #[test]
    fn wasm_options_parse_and_refuse_what_they_do_not_know() {
        let options = WasmOptions::parse("fuel=1_000,max-memory-size=64MiB,timeout=2s").unwrap();
        assert_eq!(options.fuel, Some(1000));
        assert_eq!(options.max_memory_size, Some(64 << 20));
        assert_eq!(options.timeout, Some(std::time::Duration::from_secs(2)));
        let later = WasmOptions::parse("fuel=5").unwrap();
        assert_eq!(options.clone().and(later).fuel, Some(5));
        assert!(
            WasmOptions::parse("speed=11")
                .unwrap_err()
                .contains("unknown -W option `speed`")
        );
        assert!(
            WasmOptions::parse("fuel")
                .unwrap_err()
                .contains("KEY=VALUE")
        );
        assert!(
            WasmOptions::parse("timeout=soon")
                .unwrap_err()
                .contains("-W timeout")
        );
        assert!(
            WasmOptions::parse("fuel=-1")
                .unwrap_err()
                .contains("-W fuel")
        );
    }
}
