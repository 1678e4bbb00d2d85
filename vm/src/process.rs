//! A guest process: a store of linked instances, the names its imports
//! resolve by, and the data `T` its host functions share (see
//! [`crate::Caller`]).

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use carat_guest_runtime::{SharedHostFunc, Store};
use carat_host_os::carat_abi::{Mailbox, Supervisor};
use carat_host_os::process::WASI_MODULE;
use carat_host_os::wasi::WasiCtx;

use crate::caller::{ProcessData, untyped_host_fn};
use crate::{
    CallProgress, Caller, ExecError, Extern, Func, FuncType, GuestCall, HostError, InstanceId,
    InstantiationError, InterruptHandle, MemoryView, Module, Val, Vm, VmError, WasiConfig,
};

/// A guest process: linked instances, the names they import by, and the
/// data `T` its host functions share ([`Caller::data`]).
pub struct Process<T = ()> {
    vm: Vm,
    store: Store,
    /// What this process defined itself; looked up before the VM's shared
    /// modules.
    names: HashMap<(String, String), Extern>,
    /// Which of the VM's shared modules this process imports from.
    shared: SharedImports,
    pid: u32,
    mailbox: Arc<Mutex<Mailbox>>,
    _data: PhantomData<fn() -> T>,
}

/// The VM-wide host modules a process was given (see `shared_host`).
#[derive(Clone, Copy, Default)]
struct SharedImports {
    wasi: bool,
    carat: bool,
    /// Whether its carat ABI offers `spawn`.
    carat_spawn: bool,
}

impl<T> Drop for Process<T> {
    fn drop(&mut self) {
        self.vm
            .inner
            .counters
            .processes_live
            .fetch_sub(1, Ordering::Relaxed);
    }
}

impl<T: Send + 'static> Process<T> {
    /// A new process of `vm` holding `data`, with the VM's memory limit
    /// and fuel.
    pub fn new(vm: &Vm, data: T) -> Result<Process<T>, VmError> {
        let config = vm.config();
        Process::with_limits(vm, data, config.max_memory, config.fuel)
    }

    /// A new process of `vm` holding `data`, with its own memory limit
    /// and fuel (fuel only counts if the VM compiles fuel counting, i.e.
    /// its config has `fuel`).
    pub fn with_limits(
        vm: &Vm,
        data: T,
        max_memory: Option<u64>,
        fuel: Option<u64>,
    ) -> Result<Process<T>, VmError> {
        let (store, pid) = vm.new_store(max_memory, fuel)?;
        let mut process = Process {
            vm: vm.clone(),
            store,
            names: HashMap::new(),
            shared: SharedImports::default(),
            pid,
            mailbox: Arc::default(),
            _data: PhantomData,
        };
        process.store.set_host_state(ProcessData(data));
        Ok(process)
    }

    /// The process's data.
    pub fn data(&self) -> &T {
        let data = self.store.host_state_ref::<ProcessData<T>>();
        &data.expect("set when the process was made").0
    }

    /// The process's data, to change.
    pub fn data_mut(&mut self) -> &mut T {
        let data = self.store.host_state::<ProcessData<T>>();
        &mut data.expect("set when the process was made").0
    }

    /// The VM it belongs to.
    pub fn vm(&self) -> &Vm {
        &self.vm
    }

    /// Its store, for the runtime's lower-level API.
    pub fn store(&mut self) -> &mut Store {
        &mut self.store
    }

    /// Makes `func` importable as `module::name`.
    pub fn define_func(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), HostError>
        + Send
        + Sync
        + 'static,
    ) {
        self.define_boxed(module, name, ty, untyped_host_fn(func));
    }

    /// This process's id: unique within its VM.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Bytes of guest state it holds: memories, tables, control blocks.
    pub fn bytes_in_use(&self) -> u64 {
        self.store.bytes_in_use()
    }

    /// Sets the stack bytes its wasm frames may use, for the calls it
    /// starts from now on (the VM's `max_wasm_stack` by default).
    pub fn set_max_stack(&mut self, bytes: usize) {
        self.store.set_max_wasm_stack(bytes);
    }

    /// The buffers this process exchanges with others.
    pub fn mailbox(&self) -> Arc<Mutex<Mailbox>> {
        self.mailbox.clone()
    }

    /// Makes the carat ABI importable as `carat` (see
    /// `carat_host_os::carat_abi`), with this VM's counters and no
    /// `spawn`.
    pub fn add_carat_abi(&mut self) {
        let supervisor = Arc::new(VmSupervisor {
            vm: self.vm.clone(),
        });
        self.add_carat_abi_with(supervisor);
    }

    /// Makes the carat ABI importable as `carat`, answered by
    /// `supervisor` (which may offer `spawn`).
    pub fn add_carat_abi_with(&mut self, supervisor: Arc<dyn Supervisor>) {
        self.shared.carat = true;
        self.shared.carat_spawn = supervisor.can_spawn();
        self.store
            .set_host_state(carat_host_os::carat_abi::CaratProcess {
                pid: self.pid,
                mailbox: self.mailbox.clone(),
                supervisor,
            });
    }

    /// Makes `func` importable as `module::name`.
    pub fn define_boxed(
        &mut self,
        module: &str,
        name: &str,
        ty: FuncType,
        func: carat_guest_runtime::HostFnBox,
    ) {
        let type_id = self.vm.signature_id(&ty);
        let func = self.store.host_func(ty, type_id, func);
        self.define(module, name, Extern::Func(func));
    }

    /// Makes WASI preview1 importable as `wasi_snapshot_preview1`.
    pub fn add_wasi(&mut self, config: WasiConfig) -> Result<(), VmError> {
        let ctx = WasiCtx::new(config).map_err(VmError::Wasi)?;
        self.store
            .set_host_state(carat_host_os::wasi::WasiState::new(ctx));
        self.shared.wasi = true;
        Ok(())
    }

    /// Links `module::name` from the VM's shared modules, if this process
    /// was given that module and it has such a function.
    fn link_shared(&mut self, module: &str, name: &str) -> Option<Extern> {
        let inner = &self.vm.inner;
        let shared = match module {
            WASI_MODULE if self.shared.wasi => inner.shared_host.wasi(&inner.signatures),
            "carat" if self.shared.carat && (name != "spawn" || self.shared.carat_spawn) => {
                inner.shared_host.carat(&inner.signatures)
            }
            _ => return None,
        };
        let func = shared.get(name)?;
        Some(Extern::Func(self.store.link_host_func(func)))
    }

    /// Makes `item` importable as `module::name` in this process.
    pub fn define(&mut self, module: &str, name: &str, item: Extern) {
        self.names
            .insert((module.to_string(), name.to_string()), item);
    }

    /// Makes every export of `instance` importable from module `name`.
    pub fn register(&mut self, name: &str, instance: InstanceId) {
        let exports: Vec<String> = self
            .store
            .instance(instance)
            .module_info()
            .exports
            .iter()
            .map(|e| e.name.clone())
            .collect();
        for export in exports {
            if let Some(item) = self.store.export(instance, &export) {
                self.define(name, &export, item);
            }
        }
    }

    /// Instantiates `module`, resolving its imports by name.
    pub fn instantiate(&mut self, module: &Module) -> Result<InstanceId, VmError> {
        self.instantiate_linking(module, &|_, _| None)
    }

    /// [`Process::instantiate`], resolving what the process does not
    /// define itself through `linked` (a [`crate::Linker`]'s functions)
    /// before the VM's shared modules.
    pub(crate) fn instantiate_linking(
        &mut self,
        module: &Module,
        linked: &dyn Fn(&str, &str) -> Option<SharedHostFunc>,
    ) -> Result<InstanceId, VmError> {
        let mut imports = Vec::new();
        for import in &module.info().imports {
            let key = (import.module.clone(), import.name.clone());
            let item = match self.names.get(&key) {
                Some(item) => *item,
                None => match linked(&import.module, &import.name) {
                    Some(func) => Extern::Func(self.store.link_host_func(&func)),
                    None => self
                        .link_shared(&import.module, &import.name)
                        .ok_or_else(|| VmError::UnknownImport {
                            module: import.module.clone(),
                            name: import.name.clone(),
                        })?,
                },
            };
            imports.push(item);
        }
        let result = self.store.instantiate(&module.loaded, &imports);
        if let Err(InstantiationError::Start(ExecError::Trap(..))) = &result {
            self.count_trap();
        }
        Ok(result?)
    }

    fn count_trap(&self) {
        self.vm.inner.counters.traps.fetch_add(1, Ordering::Relaxed);
    }

    /// Fuel left (negative once used up), when the VM counts fuel.
    pub fn fuel(&self) -> Option<i64> {
        self.vm.config().fuel.map(|_| self.store.fuel())
    }

    /// Export `name` of `instance`.
    pub fn export(&self, instance: InstanceId, name: &str) -> Option<Extern> {
        self.store.export(instance, name)
    }

    /// Exported function `name` of `instance`.
    pub fn func(&self, instance: InstanceId, name: &str) -> Result<Func, VmError> {
        match self.store.export(instance, name) {
            Some(Extern::Func(f)) => Ok(f),
            Some(_) => Err(VmError::NotAFunction(name.to_string())),
            None => Err(VmError::UnknownExport(name.to_string())),
        }
    }

    /// The bytes of `instance`'s exported memory `name`, to read and
    /// write while no call of this process runs.
    pub fn memory(&mut self, instance: InstanceId, name: &str) -> Result<MemoryView<'_>, VmError> {
        match self.store.export(instance, name) {
            Some(Extern::Memory(memory)) => Ok(self.store.memory_view(memory)),
            Some(_) => Err(VmError::NotAMemory(name.to_string())),
            None => Err(VmError::UnknownExport(name.to_string())),
        }
    }

    /// A function's wasm type.
    pub fn func_type(&self, func: Func) -> &FuncType {
        self.store.func_type(func)
    }

    /// Calls `func` with `args`, returning its results; a trap is an error carrying its backtrace.
    pub fn call(&mut self, func: Func, args: &[Val]) -> Result<Vec<Val>, VmError> {
        let result = self.store.call(func, args);
        if let Err(ExecError::Trap(..)) = &result {
            self.count_trap();
        }
        Ok(result?)
    }

    /// Starts a call that can be suspended at its polls (see
    /// [`Process::interrupt_handle`]) and resumed with [`Process::resume`].
    pub fn start_call(&mut self, func: Func, args: &[Val]) -> Result<GuestCall, VmError> {
        Ok(self.store.start_call(func, args)?)
    }

    /// Runs a started call until it returns, traps or parks. A call
    /// another process started is refused.
    pub fn resume(&mut self, call: &mut GuestCall) -> Result<CallProgress, VmError> {
        let progress = self.store.resume_call(call)?;
        if let CallProgress::Done(Err(ExecError::Trap(..))) = &progress {
            self.count_trap();
        }
        Ok(progress)
    }

    /// Compaction of this process: its memories move to the lowest free
    /// ranges below them that hold them. Only while none of its calls
    /// runs. Returns the bytes moved (0 in paging mode).
    pub fn compact(&mut self) -> u64 {
        self.store.compact()
    }

    /// A handle that other threads may use to make this process yield or
    /// stop at its next poll.
    pub fn interrupt_handle(&self) -> InterruptHandle {
        self.store.interrupt_handle()
    }

    /// Calls the exported function `name`.
    pub fn invoke(
        &mut self,
        instance: InstanceId,
        name: &str,
        args: &[Val],
    ) -> Result<Vec<Val>, VmError> {
        let func = self.func(instance, name)?;
        self.call(func, args)
    }
}

/// The carat ABI's supervisor outside `launch`: the VM's counters, no
/// spawning.
struct VmSupervisor {
    vm: Vm,
}

impl Supervisor for VmSupervisor {
    fn stat(&self, which: i32) -> i64 {
        self.vm.stat(which)
    }

    fn spawn(&self, _: &str) -> Option<i32> {
        None
    }

    fn can_spawn(&self) -> bool {
        false
    }
}

impl<T: Send + 'static> carat_host_os::process::Callee for Process<T> {
    fn start_call(&mut self, func: Func, args: &[Val]) -> Result<GuestCall, ExecError> {
        self.store.start_call(func, args)
    }

    fn resume_call(&mut self, call: &mut GuestCall) -> Result<CallProgress, ExecError> {
        let progress = self.store.resume_call(call)?;
        if let CallProgress::Done(Err(ExecError::Trap(..))) = &progress {
            self.count_trap();
        }
        Ok(progress)
    }
}
