//! Running spec scripts (`.wast`).
//!
//! A script runs in one process, with `spectest` registered, so modules can
//! link to each other through `register`. Every directive is an assertion
//! that passes or fails on its own; a failure is recorded with its line and
//! the script goes on, as it does after a guest trap.

use std::collections::HashMap;

use wast::core::{AbstractHeapType, HeapType, NanPattern, WastArgCore, WastRetCore};
use wast::parser::{self, ParseBuffer};
use wast::{QuoteWat, Wast, WastArg, WastDirective, WastExecute, WastInvoke, WastRet, Wat};

use crate::{ExecError, Extern, InstanceId, InstantiationError, Module, Process, Val, Vm, VmError};

/// What a script run found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WastReport {
    /// Commands that passed.
    pub passed: usize,
    /// Commands that failed.
    pub failed: usize,
    /// One line per failure: `file:line:col: what went wrong`.
    pub failures: Vec<String>,
}

impl WastReport {
    /// Adds another run's counts and failures to these.
    pub fn merge(&mut self, other: WastReport) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.failures.extend(other.failures);
    }
}

/// The script itself could not be parsed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WastParseError(String);

/// Runs a script. `name` is used in failure messages.
pub fn run_script(vm: &Vm, name: &str, source: &str) -> Result<WastReport, WastParseError> {
    // Older scripts spell `assert_trap` on a module `assert_uninstantiable`;
    // the `wast` parser knows only the newer spelling, which means the same.
    let rewritten;
    let source = if source.contains("(assert_uninstantiable") {
        rewritten = source.replace("(assert_uninstantiable", "(assert_trap");
        rewritten.as_str()
    } else {
        source
    };
    let mut lexer = wast::lexer::Lexer::new(source);
    lexer.allow_confusing_unicode(true);
    let buffer = ParseBuffer::new_with_lexer(lexer).map_err(|e| parse_error(name, source, e))?;
    let script = parser::parse::<Wast<'_>>(&buffer).map_err(|e| parse_error(name, source, e))?;
    let mut runner = Runner::new(vm).map_err(|e| WastParseError(format!("{name}: {e}")))?;
    let mut report = WastReport::default();
    for directive in script.directives {
        let span = directive.span();
        match runner.directive(directive) {
            Ok(()) => report.passed += 1,
            Err(message) => {
                let (line, col) = span.linecol_in(source);
                report.failed += 1;
                report
                    .failures
                    .push(format!("{name}:{}:{}: {message}", line + 1, col + 1));
            }
        }
    }
    Ok(report)
}

fn parse_error(name: &str, source: &str, mut e: wast::Error) -> WastParseError {
    e.set_path(name.as_ref());
    e.set_text(source);
    WastParseError(e.to_string())
}

struct Runner {
    process: Process,
    current: Option<InstanceId>,
    named: HashMap<String, InstanceId>,
    definitions: HashMap<String, Module>,
}

type Outcome = Result<(), String>;

impl Runner {
    fn new(vm: &Vm) -> Result<Self, VmError> {
        let mut process = vm.new_process()?;
        crate::spectest::register(&mut process)?;
        Ok(Runner {
            process,
            current: None,
            named: HashMap::new(),
            definitions: HashMap::new(),
        })
    }

    fn instance(&self, id: Option<wast::token::Id<'_>>) -> Result<InstanceId, String> {
        match id {
            Some(id) => self
                .named
                .get(id.name())
                .copied()
                .ok_or_else(|| format!("unknown module ${}", id.name())),
            None => self
                .current
                .ok_or_else(|| "no module instantiated yet".to_string()),
        }
    }

    fn compile(&self, wasm: &[u8]) -> Result<Module, VmError> {
        self.process.vm().compile(wasm)
    }

    /// Compiles and instantiates a module, making it the current one.
    fn define(&mut self, name: Option<String>, wasm: &[u8]) -> Result<(), VmError> {
        let module = self.compile(wasm)?;
        let instance = self.process.instantiate(&module)?;
        self.current = Some(instance);
        if let Some(name) = name {
            self.named.insert(name, instance);
        }
        Ok(())
    }

    fn directive(&mut self, directive: WastDirective<'_>) -> Outcome {
        match directive {
            WastDirective::Module(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                let wasm = module
                    .encode()
                    .map_err(|e| format!("cannot encode module: {e}"))?;
                self.define(name, &wasm)
                    .map_err(|e| format!("module failed: {e}"))
            }
            WastDirective::ModuleDefinition(mut module) => {
                let name = module.name().map(|id| id.name().to_string());
                let wasm = module
                    .encode()
                    .map_err(|e| format!("cannot encode module: {e}"))?;
                let compiled = self
                    .compile(&wasm)
                    .map_err(|e| format!("module failed: {e}"))?;
                if let Some(name) = name {
                    self.definitions.insert(name, compiled);
                }
                Ok(())
            }
            WastDirective::ModuleInstance {
                instance, module, ..
            } => {
                let definition = module
                    .and_then(|m| self.definitions.get(m.name()).cloned())
                    .ok_or("unknown module definition")?;
                let id = self
                    .process
                    .instantiate(&definition)
                    .map_err(|e| format!("instantiation failed: {e}"))?;
                self.current = Some(id);
                if let Some(name) = instance {
                    self.named.insert(name.name().to_string(), id);
                }
                Ok(())
            }
            WastDirective::Register { name, module, .. } => {
                let instance = self.instance(module)?;
                self.process.register(name, instance);
                Ok(())
            }
            WastDirective::Invoke(invoke) => self.invoke(invoke).map(|_| ()).map_err(describe),
            WastDirective::AssertReturn { exec, results, .. } => {
                let actual = self.execute(exec).map_err(describe)?;
                check_results(&actual, &results)
            }
            WastDirective::AssertTrap { exec, message, .. } => match self.execute(exec) {
                Ok(values) => Err(format!("expected trap `{message}`, got {}", show(&values))),
                Err(e) => expect_trap(&e, message),
            },
            WastDirective::AssertExhaustion { call, message, .. } => match self.invoke(call) {
                Ok(values) => Err(format!("expected `{message}`, got {}", show(&values))),
                Err(e) => expect_trap(&e, message),
            },
            WastDirective::AssertInvalid {
                module, message, ..
            } => self.expect_rejected(module, message, "invalid"),
            WastDirective::AssertMalformed {
                module, message, ..
            } => self.expect_rejected(module, message, "malformed"),
            WastDirective::AssertUnlinkable {
                module, message, ..
            } => {
                let wasm = encode_wat(module)?;
                match self.define(None, &wasm) {
                    Ok(()) => Err(format!("expected unlinkable (`{message}`), but it linked")),
                    Err(VmError::UnknownImport { .. })
                    | Err(VmError::Instantiate(InstantiationError::Link(_))) => Ok(()),
                    Err(e) => Err(format!("expected unlinkable (`{message}`), got: {e}")),
                }
            }
            other => Err(format!("unsupported directive {other:?}")),
        }
    }

    fn expect_rejected(&mut self, mut module: QuoteWat<'_>, message: &str, what: &str) -> Outcome {
        // A text module that does not even parse is rejected too.
        let Ok(wasm) = module.encode() else {
            return Ok(());
        };
        match self.compile(&wasm) {
            Ok(_) => Err(format!(
                "expected {what} module (`{message}`), but it compiled"
            )),
            Err(VmError::Compile(_)) => Ok(()),
            Err(e) => Err(format!("expected {what} module (`{message}`), got: {e}")),
        }
    }

    fn invoke(&mut self, invoke: WastInvoke<'_>) -> Result<Vec<Val>, VmError> {
        let instance = self
            .instance(invoke.module)
            .map_err(VmError::UnknownExport)?;
        let args = invoke
            .args
            .iter()
            .map(arg_value)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| VmError::Exec(ExecError::Signature(e)))?;
        self.process.invoke(instance, invoke.name, &args)
    }

    fn execute(&mut self, exec: WastExecute<'_>) -> Result<Vec<Val>, VmError> {
        match exec {
            WastExecute::Invoke(invoke) => self.invoke(invoke),
            WastExecute::Wat(module) => {
                let wasm = encode_wat(module).map_err(VmError::Text)?;
                self.define(None, &wasm).map(|()| Vec::new())
            }
            WastExecute::Get { module, global, .. } => {
                let instance = self.instance(module).map_err(VmError::UnknownExport)?;
                match self.process.export(instance, global) {
                    Some(Extern::Global(g)) => Ok(vec![self.process.store().global_get(g).1]),
                    _ => Err(VmError::UnknownExport(global.to_string())),
                }
            }
        }
    }
}

fn encode_wat(mut module: Wat<'_>) -> Result<Vec<u8>, String> {
    module
        .encode()
        .map_err(|e| format!("cannot encode module: {e}"))
}

fn describe(e: VmError) -> String {
    format!("unexpected error: {e}")
}

fn expect_trap(error: &VmError, message: &str) -> Outcome {
    match error.trap() {
        Some(trap) if trap.message().contains(message) || message.contains(trap.message()) => {
            Ok(())
        }
        Some(trap) => Err(format!("expected trap `{message}`, got trap `{trap}`")),
        None => Err(format!("expected trap `{message}`, got error: {error}")),
    }
}

fn arg_value(arg: &WastArg<'_>) -> Result<Val, String> {
    let WastArg::Core(arg) = arg else {
        return Err("component values are not supported".into());
    };
    Ok(match arg {
        WastArgCore::I32(v) => Val::I32(*v),
        WastArgCore::I64(v) => Val::I64(*v),
        WastArgCore::F32(v) => Val::F32(v.bits),
        WastArgCore::F64(v) => Val::F64(v.bits),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Func,
            ..
        }) => Val::FuncRef(None),
        WastArgCore::RefNull(HeapType::Abstract {
            ty: AbstractHeapType::Extern,
            ..
        }) => Val::ExternRef(None),
        WastArgCore::RefExtern(n) => Val::ExternRef(Some(*n)),
        other => return Err(format!("unsupported argument {other:?}")),
    })
}

fn show(values: &[Val]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v}:{}", v.ty())).collect();
    format!("[{}]", parts.join(", "))
}

fn check_results(actual: &[Val], expected: &[WastRet<'_>]) -> Outcome {
    let matches = actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| match e {
            WastRet::Core(e) => matches_ret(a, e),
            _ => false,
        });
    if matches {
        Ok(())
    } else {
        let expected: Vec<String> = expected.iter().map(show_expected).collect();
        Err(format!(
            "expected [{}], got {}",
            expected.join(", "),
            show(actual)
        ))
    }
}

/// An expected result as `show` prints an actual one (`value:type`), so
/// a failure's two sides read alike; NaN patterns print as the spec
/// scripts write them.
fn show_expected(ret: &WastRet<'_>) -> String {
    fn nan<T>(pattern: &NanPattern<T>, exact: impl Fn(&T) -> String) -> String {
        match pattern {
            NanPattern::CanonicalNan => "nan:canonical".into(),
            NanPattern::ArithmeticNan => "nan:arithmetic".into(),
            NanPattern::Value(v) => exact(v),
        }
    }
    fn core(ret: &WastRetCore<'_>) -> String {
        match ret {
            WastRetCore::I32(v) => format!("{}:i32", Val::I32(*v)),
            WastRetCore::I64(v) => format!("{}:i64", Val::I64(*v)),
            WastRetCore::F32(p) => format!("{}:f32", nan(p, |v| Val::F32(v.bits).to_string())),
            WastRetCore::F64(p) => format!("{}:f64", nan(p, |v| Val::F64(v.bits).to_string())),
            WastRetCore::RefNull(Some(HeapType::Abstract {
                ty: AbstractHeapType::Extern,
                ..
            })) => "null:externref".into(),
            WastRetCore::RefNull(_) => "null:funcref".into(),
            WastRetCore::RefExtern(Some(n)) => format!("{n}:externref"),
            WastRetCore::RefExtern(None) => "non-null:externref".into(),
            WastRetCore::RefFunc(_) => "non-null:funcref".into(),
            WastRetCore::Either(options) => {
                let options: Vec<String> = options.iter().map(core).collect();
                format!("either({})", options.join(" | "))
            }
            other => format!("{other:?}"),
        }
    }
    match ret {
        WastRet::Core(ret) => core(ret),
        other => format!("{other:?}"),
    }
}

fn matches_nan<T>(
    pattern: &NanPattern<T>,
    bits: u64,
    width: u32,
    exact: impl Fn(&T) -> u64,
) -> bool {
    let (exponent_and_quiet, payload_mask) = if width == 32 {
        (0x7fc0_0000u64, 0x7fff_ffffu64)
    } else {
        (0x7ff8_0000_0000_0000, 0x7fff_ffff_ffff_ffff)
    };
    match pattern {
        NanPattern::CanonicalNan => bits & payload_mask == exponent_and_quiet,
        NanPattern::ArithmeticNan => bits & exponent_and_quiet == exponent_and_quiet,
        NanPattern::Value(v) => bits == exact(v),
    }
}

fn matches_ret(actual: &Val, expected: &WastRetCore<'_>) -> bool {
    match (actual, expected) {
        (Val::I32(a), WastRetCore::I32(e)) => a == e,
        (Val::I64(a), WastRetCore::I64(e)) => a == e,
        (Val::F32(bits), WastRetCore::F32(p)) => {
            matches_nan(p, u64::from(*bits), 32, |v| u64::from(v.bits))
        }
        (Val::F64(bits), WastRetCore::F64(p)) => matches_nan(p, *bits, 64, |v| v.bits),
        (Val::FuncRef(r), WastRetCore::RefNull(ty)) => {
            r.is_none()
                && !matches!(
                    ty,
                    Some(HeapType::Abstract {
                        ty: AbstractHeapType::Extern,
                        ..
                    })
                )
        }
        (Val::ExternRef(r), WastRetCore::RefNull(ty)) => {
            r.is_none()
                && !matches!(
                    ty,
                    Some(HeapType::Abstract {
                        ty: AbstractHeapType::Func,
                        ..
                    })
                )
        }
        (Val::ExternRef(r), WastRetCore::RefExtern(e)) => match e {
            Some(n) => *r == Some(*n),
            None => r.is_some(),
        },
        (Val::FuncRef(r), WastRetCore::RefFunc(_)) => r.is_some(),
        (_, WastRetCore::Either(options)) => options.iter().any(|o| matches_ret(actual, o)),
        _ => false,
    }
}
