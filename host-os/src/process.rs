//! Processes as the supervisor gates them: which imports a process's
//! capabilities grant, and how a call into another process's entry point
//! runs.
//!
//! # Capabilities
//!
//! A process reaches outside itself only through its imports, and each
//! import module needs a capability: `wasi` for WASI preview1, `carat`
//! for the carat ABI, `process:NAME` for NAME's declared entry points. An
//! import its capabilities do not grant fails that process's spawn, with
//! the import named.
//!
//! # Entry points
//!
//! A client's import of `process:NAME::f` is a host function that runs
//! NAME's export `f` in NAME's own store, with scalars passed by value and
//! buffers copied through the [`Mailbox`]es (`carat.send` before the call,
//! `carat.receive` in the callee, and the same way back). The callee runs
//! as a resumable call, so it is scheduled like any guest:
//!
//! - one call at a time per provider (its mailbox serves one request): a
//!   client that finds the provider busy, or its process stepping on a
//!   worker, parks and tries again; it never holds a worker while it
//!   waits;
//! - the callee shares its client's time slice: the client's interrupts
//!   (a scheduler's yield request, a kill) are forwarded to the callee
//!   while the call runs, and when the callee yields the client parks
//!   too, giving the worker up;
//! - the callee uses the provider's fuel, and a provider may bound each
//!   call's running time (`call_timeout`): past it the call is killed, the
//!   client's import fails, and the provider serves the next client.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

use carat_guest_runtime::{
    CallProgress, Caller, ExecError, Func, GuestCall, HostError, HostFnBox, InterruptHandle, Val,
};
use carat_jit::{FuncType, Import};

use crate::carat_abi::Mailbox;

/// The import module name of WASI preview1.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The capability an import module needs, if any grants it.
pub fn capability_for(module: &str) -> Option<&str> {
    match module {
        WASI_MODULE => Some("wasi"),
        "carat" => Some("carat"),
        m if m.starts_with("process:") => Some(m),
        _ => None,
    }
}

/// Whether a manifest may name `capability`.
pub fn is_known_capability(capability: &str) -> bool {
    capability == "wasi" || capability == "carat" || capability.starts_with("process:")
}

/// Checks every import against the process's capabilities.
pub fn check_capabilities(imports: &[Import], capabilities: &[String]) -> Result<(), String> {
    for import in imports {
        let granted = capability_for(&import.module)
            .is_some_and(|needed| capabilities.iter().any(|c| c == needed));
        if !granted {
            return Err(format!(
                "import `{}::{}` is not granted by its capabilities {capabilities:?}",
                import.module, import.name
            ));
        }
    }
    Ok(())
}

/// What an entry-point call runs on: the provider's process.
pub trait Callee: Send + 'static {
    fn start_call(&mut self, func: Func, args: &[Val]) -> Result<GuestCall, ExecError>;
    fn resume_call(&mut self, call: &mut GuestCall) -> Result<CallProgress, ExecError>;
}

/// A process whose declared entry points others may import. What linking
/// needs is read once, when the provider is spawned, so a client can be
/// linked while the provider itself runs.
pub struct Provider<P> {
    name: String,
    process: Arc<Mutex<P>>,
    mailbox: Arc<Mutex<Mailbox>>,
    interrupt: InterruptHandle,
    /// Taken by the call being served.
    busy: Arc<AtomicBool>,
    call_timeout: Option<Duration>,
    /// Each declared entry point, if the provider exports it as a function.
    entry_points: HashMap<String, Result<(Func, FuncType), String>>,
}

impl<P> Clone for Provider<P> {
    fn clone(&self) -> Self {
        Provider {
            name: self.name.clone(),
            process: self.process.clone(),
            mailbox: self.mailbox.clone(),
            interrupt: self.interrupt.clone(),
            busy: self.busy.clone(),
            call_timeout: self.call_timeout,
            entry_points: self.entry_points.clone(),
        }
    }
}

/// How a provider is set up.
pub struct ProviderSpec<P> {
    pub name: String,
    pub process: Arc<Mutex<P>>,
    pub mailbox: Arc<Mutex<Mailbox>>,
    pub interrupt: InterruptHandle,
    pub call_timeout: Option<Duration>,
    /// Each declared entry point: its function and type, or why the
    /// provider cannot serve it.
    pub entry_points: HashMap<String, Result<(Func, FuncType), String>>,
}

impl<P: Callee> Provider<P> {
    pub fn new(spec: ProviderSpec<P>) -> Self {
        Provider {
            name: spec.name,
            process: spec.process,
            mailbox: spec.mailbox,
            interrupt: spec.interrupt,
            busy: Arc::default(),
            call_timeout: spec.call_timeout,
            entry_points: spec.entry_points,
        }
    }

    /// Waits, parked, until no other call is being served.
    fn take_turn(&self, caller: &mut Caller<'_>) -> Turn<'_> {
        let mut waits = 0;
        while self
            .busy
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            park(caller, &mut waits);
        }
        Turn(&self.busy)
    }

    /// Locks the provider's process, parked while its own task steps.
    fn lock_process(&self, caller: &mut Caller<'_>) -> MutexGuard<'_, P> {
        let mut waits = 0;
        loop {
            match self.process.try_lock() {
                Ok(guard) => return guard,
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => park(caller, &mut waits),
            }
        }
    }

    /// Runs `func` with `args` in the provider, on the client's behalf.
    fn call(
        &self,
        caller: &mut Caller<'_>,
        entry: &str,
        func: Func,
        args: &[Val],
    ) -> Result<Vec<Val>, String> {
        let mut call = self
            .lock_process(caller)
            .start_call(func, args)
            .map_err(|e| e.to_string())?;
        let _forward = caller.forward_interrupts(self.interrupt.clone());
        let mut ran = Duration::ZERO;
        let mut killed = None;
        loop {
            let progress = {
                let mut process = self.lock_process(caller);
                let started = Instant::now();
                let progress = process.resume_call(&mut call);
                ran += started.elapsed();
                progress.map_err(|e| e.to_string())?
            };
            match progress {
                CallProgress::Done(result) => {
                    return match (result, killed) {
                        (Ok(values), _) => Ok(values),
                        (Err(_), Some(limit)) => Err(format!(
                            "`{}::{entry}` ran past its call_timeout of {limit:?} and was killed",
                            self.name
                        )),
                        (Err(e), None) => Err(e.to_string()),
                    };
                }
                CallProgress::Suspended => {
                    if let Some(limit) = self.call_timeout
                        && killed.is_none()
                        && ran >= limit
                    {
                        self.interrupt.kill();
                        killed = Some(limit);
                    }
                    // Off a scheduler (a plain call) it simply goes on.
                    caller.yield_now();
                }
                CallProgress::Sleeping(until) => {
                    if !caller.sleep_until(until) {
                        std::thread::sleep(until.saturating_duration_since(Instant::now()));
                    }
                }
            }
        }
    }
}

/// The call a provider is serving; the next may start when it drops.
struct Turn<'a>(&'a AtomicBool);

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// Parks a client that waits for a provider: a few yields (the provider
/// is likely to be done within a time slice), then sleeps of 1 ms, so
/// many waiting clients do not keep the workers busy. Off a scheduler it
/// waits on the thread.
fn park(caller: &mut Caller<'_>, waits: &mut u32) {
    *waits += 1;
    if *waits < 64 {
        if !caller.yield_now() {
            std::thread::yield_now();
        }
        return;
    }
    let until = Instant::now() + Duration::from_millis(1);
    if !caller.sleep_until(until) {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// An import of a client resolved to a provider's entry point.
pub struct EntryImport {
    pub module: String,
    pub name: String,
    pub ty: FuncType,
    pub call: HostFnBox,
}

/// Resolves a client's `process:NAME` imports to calls into NAME's entry
/// points; an error names the first that cannot be resolved.
pub fn link_entry_points<P: Callee>(
    imports: &[Import],
    providers: &HashMap<String, Provider<P>>,
    client_mailbox: &Arc<Mutex<Mailbox>>,
) -> Result<Vec<EntryImport>, String> {
    let mut linked = Vec::new();
    for import in imports {
        let Some(callee) = import.module.strip_prefix("process:") else {
            continue;
        };
        let provider = providers.get(callee).ok_or_else(|| {
            format!(
                "import `{}::{}`: no process `{callee}` with entry points comes before it",
                import.module, import.name
            )
        })?;
        let (func, ty) = match provider.entry_points.get(&import.name) {
            None => {
                return Err(format!(
                    "import `{}::{}`: `{callee}` does not declare `{}` an entry point",
                    import.module, import.name, import.name
                ));
            }
            Some(Err(e)) => return Err(format!("entry point `{callee}::{}`: {e}", import.name)),
            Some(Ok((func, ty))) => (*func, ty.clone()),
        };
        let provider = provider.clone();
        let client_mailbox = client_mailbox.clone();
        let entry = import.name.clone();
        let call: HostFnBox = Box::new(move |caller, args, results| {
            let turn = provider.take_turn(caller);
            let request = std::mem::take(&mut Mailbox::lock(&client_mailbox).outbox);
            Mailbox::lock(&provider.mailbox).inbox = request;
            let outcome = provider.call(caller, &entry, func, args);
            let reply = std::mem::take(&mut Mailbox::lock(&provider.mailbox).outbox);
            drop(turn);
            Mailbox::lock(&client_mailbox).inbox = reply;
            match outcome {
                Ok(values) => {
                    results.copy_from_slice(&values);
                    Ok(())
                }
                Err(e) => Err(HostError::Failed(format!(
                    "entry point of `{}`: {e}",
                    provider.name
                ))),
            }
        });
        linked.push(EntryImport {
            module: import.module.clone(),
            name: import.name.clone(),
            ty,
            call,
        });
    }
    Ok(linked)
}
