//! The engines the differential tester compares: carat-vm (in any
//! configuration) and the wasmi interpreter, each running one test's
//! modules and reporting what it observed, canonicalised.

use std::hash::{DefaultHasher, Hash, Hasher};

use carat_vm::{ExecError, Extern, InstantiationError, Trap, Val, ValType, Vm, VmError};

use crate::{FUEL, MAX_MEMORY, MAX_TABLE_ELEMENTS, ROUNDS};

/// What happened to one call or instantiation, canonicalised.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    Values(Vec<Value>),
    Trap(&'static str),
    OutOfFuel,
    Exhausted,
    Failed(String),
}

impl Outcome {
    /// Whether the engines may diverge from here on for reasons outside
    /// wasm semantics (fuel costs, stack depth).
    pub fn is_resource_limit(&self) -> bool {
        matches!(self, Outcome::OutOfFuel | Outcome::Exhausted)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    I32(i32),
    I64(i64),
    /// Bits, with every NaN replaced by one canonical NaN.
    F32(u32),
    F64(u64),
    FuncRef {
        null: bool,
    },
    ExternRef(Option<u32>),
}

fn canonical_f32(bits: u32) -> u32 {
    if f32::from_bits(bits).is_nan() {
        0x7fc0_0000
    } else {
        bits
    }
}

fn canonical_f64(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        bits
    }
}

/// Trap categories both engines can name. `undefined element` (an indirect
/// call past the table's end) is a table access out of bounds.
fn trap_category(trap: Trap) -> &'static str {
    match trap {
        Trap::UndefinedElement | Trap::TableOutOfBounds => "table out of bounds",
        Trap::OutOfFuel | Trap::StackOverflow => unreachable!("reported as resource limits"),
        other => other.message(),
    }
}

/// Everything one engine observed of one module.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Observation {
    pub instantiate: Option<Outcome>,
    pub calls: Vec<(String, Outcome)>,
    pub globals: Vec<(String, Value)>,
    pub memories: Vec<(String, u64)>,
    /// Exported globals after each call; printed by `explain_seed`, not
    /// compared.
    pub trace: Vec<Vec<Value>>,
}

fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    bytes.hash(&mut h);
    h.finish()
}

/// Arguments for a call: a few edge values, then values from the seed.
pub fn arguments(seed: u64, call: usize, params: &[ValType]) -> Vec<Val> {
    let mut state =
        seed ^ (call as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xd1b5_4a32_d192_ed03;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    params
        .iter()
        .map(|ty| {
            let r = next();
            let small = [0u64, 1, u64::MAX, 2, 8, 0x8000_0000, 65536][(r % 7) as usize];
            let raw = if r % 3 == 0 { r >> 8 } else { small };
            match ty {
                ValType::I32 => Val::I32(raw as i32),
                ValType::I64 => Val::I64(raw as i64),
                ValType::F32 => Val::F32(raw as u32),
                ValType::F64 => Val::F64(raw),
                ValType::FuncRef => Val::FuncRef(None),
                ValType::ExternRef => Val::ExternRef(None),
            }
        })
        .collect()
}

// ----- carat-vm -----

fn our_value(v: &Val) -> Value {
    match *v {
        Val::I32(x) => Value::I32(x),
        Val::I64(x) => Value::I64(x),
        Val::F32(b) => Value::F32(canonical_f32(b)),
        Val::F64(b) => Value::F64(canonical_f64(b)),
        Val::FuncRef(r) => Value::FuncRef { null: r.is_none() },
        Val::ExternRef(r) => Value::ExternRef(r),
    }
}

fn our_outcome(result: Result<Vec<Val>, VmError>) -> Outcome {
    match result {
        Ok(values) => Outcome::Values(values.iter().map(our_value).collect()),
        Err(e) => match e.trap() {
            Some(Trap::OutOfFuel) => Outcome::OutOfFuel,
            Some(Trap::StackOverflow) => Outcome::Exhausted,
            Some(trap) => Outcome::Trap(trap_category(trap)),
            None => Outcome::Failed(e.to_string()),
        },
    }
}

/// Runs `modules` in one process: each is instantiated in order, the
/// first registered as import module `a` of the others; then every export
/// of every instance is called, `ROUNDS` times, in binary order.
pub fn run_ours(vm: &Vm, modules: &[Vec<u8>], seed: u64) -> Observation {
    let mut seen = Observation::default();
    let mut process = vm.new_process().expect("process");
    let mut instances = Vec::new();
    for (m, wasm) in modules.iter().enumerate() {
        let module = match vm.compile(wasm) {
            Ok(module) => module,
            Err(e) => {
                seen.instantiate = Some(Outcome::Failed(format!("compile {m}: {e}")));
                return seen;
            }
        };
        match process.instantiate(&module) {
            Ok(instance) => {
                if m == 0 {
                    process.register("a", instance);
                }
                instances.push((instance, module.info().exports.clone()));
            }
            Err(e) => {
                let outcome = match &e {
                    VmError::Instantiate(InstantiationError::Start(ExecError::Trap(..))) => {
                        our_outcome(Err(e))
                    }
                    _ => Outcome::Failed(format!("instantiate {m}: {e}")),
                };
                seen.instantiate = Some(outcome);
                return seen;
            }
        }
    }
    seen.instantiate = Some(Outcome::Values(vec![]));
    let mut call = 0;
    for _ in 0..ROUNDS {
        for (m, (instance, exports)) in instances.iter().enumerate() {
            for export in exports {
                if let Some(Extern::Func(f)) = process.export(*instance, &export.name) {
                    let params = process.func_type(f).params.clone();
                    let args = arguments(seed, call, &params);
                    call += 1;
                    let outcome = our_outcome(process.call(f, &args));
                    seen.calls.push((format!("{m}:{}", export.name), outcome));
                    let snapshot = instances
                        .iter()
                        .flat_map(|(i, exports)| exports.iter().map(move |e| (*i, e)))
                        .filter_map(|(i, e)| match process.export(i, &e.name) {
                            Some(Extern::Global(g)) => {
                                Some(our_value(&process.store().global_get(g).1))
                            }
                            _ => None,
                        })
                        .collect();
                    seen.trace.push(snapshot);
                }
            }
        }
    }
    for (m, (instance, exports)) in instances.iter().enumerate() {
        for export in exports {
            let name = format!("{m}:{}", export.name);
            match process.export(*instance, &export.name) {
                Some(Extern::Global(g)) => {
                    let value = process.store().global_get(g).1;
                    seen.globals.push((name, our_value(&value)));
                }
                Some(Extern::Memory(memory)) => {
                    let hash = hash_bytes(process.store().memory_view(memory).bytes());
                    seen.memories.push((name, hash));
                }
                _ => {}
            }
        }
    }
    seen
}

// ----- wasmi -----

fn wasmi_value(v: &wasmi::Val) -> Value {
    match v {
        wasmi::Val::I32(x) => Value::I32(*x),
        wasmi::Val::I64(x) => Value::I64(*x),
        wasmi::Val::F32(f) => Value::F32(canonical_f32(f.to_bits())),
        wasmi::Val::F64(f) => Value::F64(canonical_f64(f.to_bits())),
        wasmi::Val::FuncRef(r) => Value::FuncRef { null: r.is_null() },
        // Arguments carry only null externrefs, and wasm cannot make others.
        wasmi::Val::ExternRef(r) => {
            Value::ExternRef(if r.is_null() { None } else { Some(u32::MAX) })
        }
        other => panic!("unexpected wasmi value {other:?}"),
    }
}

fn wasmi_trap(e: &wasmi::Error) -> Outcome {
    use wasmi::TrapCode as T;
    match e.as_trap_code() {
        Some(T::OutOfFuel) => Outcome::OutOfFuel,
        Some(T::StackOverflow) => Outcome::Exhausted,
        Some(T::UnreachableCodeReached) => Outcome::Trap(Trap::Unreachable.message()),
        Some(T::MemoryOutOfBounds) => Outcome::Trap(Trap::MemoryOutOfBounds.message()),
        Some(T::TableOutOfBounds) => Outcome::Trap("table out of bounds"),
        Some(T::IndirectCallToNull) => Outcome::Trap(Trap::IndirectCallToNull.message()),
        Some(T::IntegerDivisionByZero) => Outcome::Trap(Trap::IntegerDivideByZero.message()),
        Some(T::IntegerOverflow) => Outcome::Trap(Trap::IntegerOverflow.message()),
        Some(T::BadConversionToInteger) => Outcome::Trap(Trap::BadConversionToInteger.message()),
        Some(T::BadSignature) => Outcome::Trap(Trap::IndirectCallTypeMismatch.message()),
        // Segment initialisation reports bounds errors without a trap code.
        _ if e.to_string().contains("out of bounds table access") => {
            Outcome::Trap("table out of bounds")
        }
        _ if e.to_string().contains("out of bounds memory access") => {
            Outcome::Trap(Trap::MemoryOutOfBounds.message())
        }
        _ => Outcome::Failed(format!("wasmi: {e}")),
    }
}

/// As `run_ours`, in wasmi; `exports` are each module's export names in
/// binary order.
pub fn run_wasmi(modules: &[Vec<u8>], seed: u64, exports: &[Vec<String>]) -> Observation {
    let mut seen = Observation::default();
    let mut config = wasmi::Config::default();
    config.consume_fuel(true);
    let engine = wasmi::Engine::new(&config);
    let limits = wasmi::StoreLimitsBuilder::new()
        .memory_size(MAX_MEMORY as usize)
        .table_elements(MAX_TABLE_ELEMENTS as usize)
        .build();
    let mut store = wasmi::Store::new(&engine, limits);
    store.limiter(|limits| limits);
    store.set_fuel(FUEL).expect("fuel enabled");
    let mut linker = wasmi::Linker::new(&engine);
    let mut instances = Vec::new();
    for (m, wasm) in modules.iter().enumerate() {
        let module = match wasmi::Module::new(&engine, wasm) {
            Ok(module) => module,
            Err(e) => {
                seen.instantiate = Some(Outcome::Failed(format!("compile {m}: {e}")));
                return seen;
            }
        };
        match linker.instantiate_and_start(&mut store, &module) {
            Ok(instance) => {
                if m == 0 {
                    linker
                        .instance(&mut store, "a", instance)
                        .expect("registers");
                }
                instances.push(instance);
            }
            Err(e) => {
                seen.instantiate = Some(match wasmi_trap(&e) {
                    Outcome::Failed(message) => {
                        Outcome::Failed(format!("instantiate {m}: {message}"))
                    }
                    other => other,
                });
                return seen;
            }
        }
    }
    seen.instantiate = Some(Outcome::Values(vec![]));
    let mut call = 0;
    for _ in 0..ROUNDS {
        for (m, (instance, names)) in instances.iter().zip(exports).enumerate() {
            for name in names {
                let Some(func) = instance.get_func(&store, name) else {
                    continue;
                };
                let ty = func.ty(&store);
                let params: Vec<ValType> = ty.params().iter().map(|t| our_type(*t)).collect();
                let args: Vec<wasmi::Val> = arguments(seed, call, &params)
                    .iter()
                    .map(to_wasmi)
                    .collect();
                call += 1;
                let mut results: Vec<wasmi::Val> = ty
                    .results()
                    .iter()
                    .map(|t| wasmi::Val::default_for_ty(*t))
                    .collect();
                let outcome = match func.call(&mut store, &args, &mut results) {
                    Ok(()) => Outcome::Values(results.iter().map(wasmi_value).collect()),
                    Err(e) => wasmi_trap(&e),
                };
                seen.calls.push((format!("{m}:{name}"), outcome));
                let snapshot = instances
                    .iter()
                    .zip(exports)
                    .flat_map(|(i, names)| names.iter().map(move |n| (i, n)))
                    .filter_map(|(i, n)| {
                        i.get_global(&store, n).map(|g| wasmi_value(&g.get(&store)))
                    })
                    .collect();
                seen.trace.push(snapshot);
            }
        }
    }
    for (m, (instance, names)) in instances.iter().zip(exports).enumerate() {
        for name in names {
            let key = format!("{m}:{name}");
            if let Some(g) = instance.get_global(&store, name) {
                seen.globals.push((key, wasmi_value(&g.get(&store))));
            } else if let Some(memory) = instance.get_memory(&store, name) {
                seen.memories.push((key, hash_bytes(memory.data(&store))));
            }
        }
    }
    seen
}

fn our_type(t: wasmi::ValType) -> ValType {
    match t {
        wasmi::ValType::I32 => ValType::I32,
        wasmi::ValType::I64 => ValType::I64,
        wasmi::ValType::F32 => ValType::F32,
        wasmi::ValType::F64 => ValType::F64,
        wasmi::ValType::FuncRef => ValType::FuncRef,
        wasmi::ValType::ExternRef => ValType::ExternRef,
        other => panic!("unexpected type {other:?}"),
    }
}

fn to_wasmi(v: &Val) -> wasmi::Val {
    match *v {
        Val::I32(x) => wasmi::Val::I32(x),
        Val::I64(x) => wasmi::Val::I64(x),
        Val::F32(b) => wasmi::Val::F32(wasmi::F32::from_bits(b)),
        Val::F64(b) => wasmi::Val::F64(wasmi::F64::from_bits(b)),
        Val::FuncRef(_) => wasmi::Val::FuncRef(wasmi::Nullable::Null),
        Val::ExternRef(_) => wasmi::Val::ExternRef(wasmi::Nullable::Null),
    }
}
