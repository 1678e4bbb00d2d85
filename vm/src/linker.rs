//! Host functions defined once for every process of a VM: [`Linker<T>`].
//!
//! A process's own definitions ([`Process::func_wrap`]) are made for it
//! alone: a boxed closure and a signature lookup per function, per spawn.
//! A linker makes each function once, as the VM's shared WASI and carat
//! functions are made (see `shared_host`), and instantiating through it
//! links an `Arc` clone into the process. What differs between processes
//! is their data `T`, which each function reaches through its
//! [`Caller`].

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use carat_guest_runtime::{HostFnBox, HostFunc, SharedHostFunc};

use crate::caller::untyped_host_fn;
use crate::typed::IntoHostFunc;
use crate::{Caller, FuncType, HostError, InstanceId, Module, Process, Val, Vm, VmError};

/// Host functions for the processes of one VM whose data is `T`.
///
/// ```
/// use carat_vm::{Caller, Linker, Process, Vm, VmConfig};
/// let vm = Vm::new(VmConfig::default())?;
/// let mut linker = Linker::<i32>::new(&vm);
/// linker.func_wrap("host", "count", |mut caller: Caller<'_, i32>| {
///     *caller.data_mut() += 1;
///     *caller.data()
/// })?;
/// let module = vm.compile_any(br#"(module
///     (import "host" "count" (func $count (result i32)))
///     (func (export "twice") (result i32) (drop (call $count)) (call $count)))"#)?;
/// let mut process = Process::new(&vm, 40)?;
/// let instance = linker.instantiate(&mut process, &module)?;
/// let twice = process.typed_func::<(), i32>(instance, "twice")?;
/// assert_eq!(twice.call(&mut process, ())?, 42);
/// # Ok::<(), carat_vm::VmError>(())
/// ```
pub struct Linker<T> {
    vm: Vm,
    funcs: HashMap<String, HashMap<String, SharedHostFunc>>,
    _data: PhantomData<fn() -> T>,
}

impl<T: Send + 'static> Linker<T> {
    /// An empty linker for processes of `vm`.
    pub fn new(vm: &Vm) -> Self {
        Linker {
            vm: vm.clone(),
            funcs: HashMap::new(),
            _data: PhantomData,
        }
    }

    /// Defines `module::name` as a Rust closure whose arguments and
    /// results are Rust values; its wasm type comes from the closure's.
    /// A name defined already is an error.
    pub fn func_wrap<Params>(
        &mut self,
        module: &str,
        name: &str,
        func: impl IntoHostFunc<T, Params>,
    ) -> Result<&mut Self, VmError> {
        let ty = func.ty();
        self.define(module, name, ty, func.into_host_fn())
    }

    /// Defines `module::name` as a closure over wasm values of type `ty`
    /// (the runtime checks the arguments against it and hands the
    /// closure zeroed results to fill).
    pub fn func_new(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), HostError>
        + Send
        + Sync
        + 'static,
    ) -> Result<&mut Self, VmError> {
        self.define(module, name, ty, untyped_host_fn(func))
    }

    fn define(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: HostFnBox,
    ) -> Result<&mut Self, VmError> {
        let names = self.funcs.entry(module.to_string()).or_default();
        if names.contains_key(name) {
            return Err(VmError::DuplicateDefinition {
                module: module.to_string(),
                name: name.to_string(),
            });
        }
        let type_id = self.vm.signature_id(&ty);
        let func = SharedHostFunc::new(HostFunc { ty, type_id, func });
        names.insert(name.to_string(), func);
        Ok(self)
    }

    /// Instantiates `module` in `process`, resolving its imports by what
    /// the process defines itself, then this linker's functions, then
    /// the VM's shared modules (WASI and the carat ABI, if the process
    /// was given them).
    pub fn instantiate(
        &self,
        process: &mut Process<T>,
        module: &Module,
    ) -> Result<InstanceId, VmError> {
        // Signature ids are the VM's own: a function typed by another
        // VM's registry would pass or fail `call_indirect`'s check wrongly.
        if !Arc::ptr_eq(&self.vm.inner, &process.vm().inner) {
            return Err(VmError::ForeignLinker);
        }
        process.instantiate_linking(module, &|module, name| {
            self.funcs.get(module)?.get(name).cloned()
        })
    }
}
