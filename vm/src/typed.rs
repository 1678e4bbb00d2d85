//! Typed calls into a guest: `TypedFunc<Params, Results>`.
//!
//! `process.typed::<(i32, i64), f64>(func)` checks once, against the
//! function's wasm type, that its parameters are `(i32, i64)` and its
//! result `f64`. A mismatch is an error there, naming both types. Its
//! `call` then takes and returns plain Rust values, with no `&[Val]` to
//! build and no `Val` to destructure. Parameters and results are `()`, one
//! of `i32`, `i64`, `f32`, `f64`, or a tuple of up to eight of them.
//!
//! The other way round, `process.func_wrap(module, name, closure)` (or a
//! [`crate::Linker`]'s, once for every process) defines a host function
//! from a closure of typed arguments (`|caller: Caller<'_, T>, a: i32, b:
//! i64| -> f64`, or returning a `Result<_, HostError>`), its wasm type
//! taken from the closure's.

use std::marker::PhantomData;

use crate::caller::untyped_host_fn;
use crate::{Caller, Func, FuncType, HostError, InstanceId, Process, Val, ValType, VmError};
use carat_guest_runtime::HostFnBox;

/// A Rust type a wasm value converts to and from.
pub trait WasmTy: Copy + Send + 'static {
    /// Its wasm type.
    const TYPE: ValType;
    /// As a wasm value.
    fn into_val(self) -> Val;
    /// From a wasm value of type [`Self::TYPE`].
    fn from_val(val: &Val) -> Option<Self>;
}

macro_rules! wasm_ty {
    ($rust:ty, $variant:ident, $into:expr, $from:expr) => {
        impl WasmTy for $rust {
            const TYPE: ValType = ValType::$variant;
            fn into_val(self) -> Val {
                #[allow(clippy::redundant_closure_call)]
                Val::$variant(($into)(self))
            }
            fn from_val(val: &Val) -> Option<Self> {
                match val {
                    #[allow(clippy::redundant_closure_call)]
                    Val::$variant(v) => Some(($from)(*v)),
                    _ => None,
                }
            }
        }
    };
}

wasm_ty!(i32, I32, |v| v, |v| v);
wasm_ty!(i64, I64, |v| v, |v| v);
wasm_ty!(f32, F32, f32::to_bits, f32::from_bits);
wasm_ty!(f64, F64, f64::to_bits, f64::from_bits);

/// A function's parameters, or its results, as Rust values.
pub trait WasmTypes: Sized {
    /// Their wasm types, in order.
    fn types() -> Vec<ValType>;
    /// As wasm values.
    fn into_vals(self) -> Vec<Val>;
    /// From wasm values of [`Self::types`].
    fn from_vals(vals: &[Val]) -> Option<Self>;
}

impl WasmTypes for () {
    fn types() -> Vec<ValType> {
        Vec::new()
    }
    fn into_vals(self) -> Vec<Val> {
        Vec::new()
    }
    fn from_vals(vals: &[Val]) -> Option<Self> {
        vals.is_empty().then_some(())
    }
}

impl<T: WasmTy> WasmTypes for T {
    fn types() -> Vec<ValType> {
        vec![T::TYPE]
    }
    fn into_vals(self) -> Vec<Val> {
        vec![self.into_val()]
    }
    fn from_vals(vals: &[Val]) -> Option<Self> {
        match vals {
            [val] => T::from_val(val),
            _ => None,
        }
    }
}

macro_rules! wasm_tuple {
    ($($name:ident),+) => {
        impl<$($name: WasmTy),+> WasmTypes for ($($name,)+) {
            fn types() -> Vec<ValType> {
                vec![$($name::TYPE),+]
            }
            #[allow(non_snake_case)]
            fn into_vals(self) -> Vec<Val> {
                let ($($name,)+) = self;
                vec![$($name.into_val()),+]
            }
            #[allow(non_snake_case)]
            fn from_vals(vals: &[Val]) -> Option<Self> {
                let mut vals = vals.iter();
                $(let $name = $name::from_val(vals.next()?)?;)+
                vals.next().is_none().then_some(($($name,)+))
            }
        }
    };
}

wasm_tuple!(A);
wasm_tuple!(A, B);
wasm_tuple!(A, B, C);
wasm_tuple!(A, B, C, D);
wasm_tuple!(A, B, C, D, E);
wasm_tuple!(A, B, C, D, E, F);
wasm_tuple!(A, B, C, D, E, F, G);
wasm_tuple!(A, B, C, D, E, F, G, H);

/// A guest function whose type was checked once: called with `Params`,
/// it returns `Results`.
pub struct TypedFunc<Params, Results> {
    func: Func,
    _types: PhantomData<fn(Params) -> Results>,
}

impl<Params, Results> Clone for TypedFunc<Params, Results> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Params, Results> Copy for TypedFunc<Params, Results> {}

impl<Params: WasmTypes, Results: WasmTypes> TypedFunc<Params, Results> {
    /// The untyped function.
    pub fn func(&self) -> Func {
        self.func
    }

    /// Calls it in `process`, the process it came from.
    pub fn call<T: Send + 'static>(
        &self,
        process: &mut Process<T>,
        params: Params,
    ) -> Result<Results, VmError> {
        let results = process.call(self.func, &params.into_vals())?;
        Ok(Results::from_vals(&results).expect("the type was checked when it was made"))
    }
}

impl<T: Send + 'static> Process<T> {
    /// `func` as a [`TypedFunc`], if its wasm type is `Params -> Results`.
    pub fn typed<Params: WasmTypes, Results: WasmTypes>(
        &self,
        func: Func,
    ) -> Result<TypedFunc<Params, Results>, VmError> {
        let expected = FuncType::new(Params::types(), Results::types());
        let found = self.func_type(func);
        if *found != expected {
            return Err(VmError::FuncTypeMismatch {
                expected: expected.to_string(),
                found: found.to_string(),
            });
        }
        Ok(TypedFunc {
            func,
            _types: PhantomData,
        })
    }

    /// Export `name` of `instance` as a [`TypedFunc`].
    pub fn typed_func<Params: WasmTypes, Results: WasmTypes>(
        &self,
        instance: InstanceId,
        name: &str,
    ) -> Result<TypedFunc<Params, Results>, VmError> {
        self.typed(self.func(instance, name)?)
    }
}

/// What a typed host function may return: its results, or them or an
/// error (an exit, a trap, a failure).
pub trait HostResults {
    /// The results as Rust values.
    type Results: WasmTypes;
    /// The results, or why the function stopped the guest.
    fn into_results(self) -> Result<Self::Results, HostError>;
}

impl<R: WasmTypes> HostResults for R {
    type Results = R;
    fn into_results(self) -> Result<R, HostError> {
        Ok(self)
    }
}

impl<R: WasmTypes> HostResults for Result<R, HostError> {
    type Results = R;
    fn into_results(self) -> Result<R, HostError> {
        self
    }
}

/// A Rust closure that can be a host function of a [`Process<T>`]:
/// `Fn(Caller<'_, T>, A, B, ...) -> R`, each argument a [`WasmTy`], `R`
/// results or a `Result` of them. `Params` is the arguments as a tuple
/// (inferred).
pub trait IntoHostFunc<T, Params>: Send + Sync + 'static {
    /// The function's wasm type.
    fn ty(&self) -> FuncType;
    /// The function as the runtime calls it.
    fn into_host_fn(self) -> HostFnBox;
}

macro_rules! host_func {
    ($($arg:ident),*) => {
        impl<T: Send + 'static, Func, Out, $($arg: WasmTy),*> IntoHostFunc<T, ($($arg,)*)> for Func
        where
            Func: Fn(Caller<'_, T>, $($arg),*) -> Out + Send + Sync + 'static,
            Out: HostResults,
        {
            fn ty(&self) -> FuncType {
                FuncType::new(vec![$($arg::TYPE),*], Out::Results::types())
            }

            #[allow(non_snake_case, unused_mut, unused_variables)]
            fn into_host_fn(self) -> HostFnBox {
                untyped_host_fn(move |caller: Caller<'_, T>, args: &[Val], results: &mut [Val]| {
                    // The runtime checked the arguments against `ty`.
                    let mut args = args.iter();
                    $(let $arg = $arg::from_val(args.next().expect("typed")).expect("typed");)*
                    let out = self(caller, $($arg),*).into_results()?;
                    for (slot, value) in results.iter_mut().zip(out.into_vals()) {
                        *slot = value;
                    }
                    Ok(())
                })
            }
        }
    };
}

host_func!();
host_func!(A);
host_func!(A, B);
host_func!(A, B, C);
host_func!(A, B, C, D);
host_func!(A, B, C, D, E);
host_func!(A, B, C, D, E, F);

impl<T: Send + 'static> Process<T> {
    /// Defines `module::name`, for this process only, as a Rust closure
    /// whose arguments and results are Rust values: its wasm type comes
    /// from the closure's.
    /// `process.func_wrap("env", "add", |_: Caller<'_>, a: i32, b: i32| a + b)`.
    pub fn func_wrap<Params>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoHostFunc<T, Params>,
    ) {
        let ty = func.ty();
        self.define_boxed(module, name, ty, func.into_host_fn());
    }
}
