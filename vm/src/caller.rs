//! What a host function sees of its caller: [`Caller<'_, T>`], the
//! process's data `T` and the calling instance's memory.
//!
//! The runtime's caller ([`RuntimeCaller`]) carries a lifetime that ties
//! it to the one host call it is for, so that no function can keep it (it
//! holds the store's address). A `&mut` to it cannot be narrowed to a
//! shorter lifetime, so this wrapper holds it as a trait object, which
//! can: one lifetime for users to write, as in wasmtime, and no `unsafe`.
//! The data lives in the process's store beside WASI's and the carat ABI's
//! state, so a function defined once for a whole VM (see
//! [`crate::Linker`]) finds each process's own.

use std::marker::PhantomData;

use carat_guest_runtime::{
    Caller as RuntimeCaller, HostError, HostFnBox, InstanceId, MemoryView, Val,
};

/// A host function over wasm values, as the runtime calls it, from a
/// closure that takes a [`Caller`].
pub(crate) fn untyped_host_fn<T: Send + 'static>(
    func: impl Fn(Caller<'_, T>, &[Val], &mut [Val]) -> Result<(), HostError> + Send + Sync + 'static,
) -> HostFnBox {
    Box::new(
        move |caller: &mut RuntimeCaller<'_>, args: &[Val], results: &mut [Val]| {
            func(Caller::new(caller), args, results)
        },
    )
}

/// The process's data, kept in its store under a type of this crate's
/// own so no other host state can collide with it.
pub(crate) struct ProcessData<T>(pub(crate) T);

/// What [`Caller`] reaches through the runtime's caller.
trait CallerAccess<T> {
    fn data(&self) -> Option<&T>;
    fn data_mut(&mut self) -> Option<&mut T>;
    fn memory(&mut self) -> Option<MemoryView<'_>>;
    fn runtime(&mut self, f: &mut dyn FnMut(&mut RuntimeCaller<'_>));
}

impl<T: Send + 'static> CallerAccess<T> for RuntimeCaller<'_> {
    fn data(&self) -> Option<&T> {
        self.host_state_ref::<ProcessData<T>>().map(|d| &d.0)
    }

    fn data_mut(&mut self) -> Option<&mut T> {
        self.host_state::<ProcessData<T>>().map(|d| &mut d.0)
    }

    fn memory(&mut self) -> Option<MemoryView<'_>> {
        RuntimeCaller::memory(self)
    }

    fn runtime(&mut self, f: &mut dyn FnMut(&mut RuntimeCaller<'_>)) {
        f(self)
    }
}

/// The caller of a host function: the process's data `T` (see
/// [`crate::Process::data`]) and the calling instance's memory, for the
/// length of the call.
pub struct Caller<'a, T = ()> {
    inner: &'a mut dyn CallerAccess<T>,
    _data: PhantomData<fn() -> T>,
}

const NO_DATA: &str = "a process's host functions see its data: a Process<T> always holds a T";

impl<'a, T: Send + 'static> Caller<'a, T> {
    pub(crate) fn new(runtime: &'a mut RuntimeCaller<'_>) -> Self {
        Caller {
            inner: runtime,
            _data: PhantomData,
        }
    }

    /// The calling process's data.
    pub fn data(&self) -> &T {
        self.inner.data().expect(NO_DATA)
    }

    /// The calling process's data, to change.
    pub fn data_mut(&mut self) -> &mut T {
        self.inner.data_mut().expect(NO_DATA)
    }

    /// The calling instance's memory 0; `None` when it has none, or when
    /// the host itself called the function.
    pub fn memory(&mut self) -> Option<MemoryView<'_>> {
        self.inner.memory()
    }

    /// The calling instance; `None` when the host itself called.
    pub fn instance(&mut self) -> Option<InstanceId> {
        self.with_runtime(|caller| caller.instance_id())
    }

    /// Parks the guest until the process's call is resumed (a yield to
    /// the scheduler); false, doing nothing, if the call cannot park
    /// (it was not started with `Process::start_call`). The data and
    /// memory may be used again after: nothing here holds them across.
    pub fn yield_now(&mut self) -> bool {
        self.with_runtime(|caller| caller.yield_now())
    }

    /// Parks the guest until `deadline`, like [`Caller::yield_now`].
    pub fn sleep_until(&mut self, deadline: std::time::Instant) -> bool {
        self.with_runtime(|caller| caller.sleep_until(deadline))
    }

    /// Parks the guest once this function returns (its results written),
    /// until `deadline` if one is given; false if the call cannot park.
    pub fn park_on_return(&mut self, deadline: Option<std::time::Instant>) -> bool {
        self.with_runtime(|caller| caller.park_on_return(deadline))
    }

    /// Whether the calling process was asked to stop (a kill): a host
    /// function that waits may give up at once.
    pub fn kill_requested(&mut self) -> bool {
        self.with_runtime(|caller| caller.kill_requested())
    }

    /// Runs `f` with the runtime's caller, for what this one does not
    /// offer: the guest's wasm frames, its vmctx, other host state.
    pub fn with_runtime<R>(&mut self, f: impl FnOnce(&mut RuntimeCaller<'_>) -> R) -> R {
        let mut f = Some(f);
        let mut result = None;
        self.inner.runtime(&mut |caller| {
            let f = f.take().expect("runs once");
            result = Some(f(caller));
        });
        result.expect("ran")
    }
}
