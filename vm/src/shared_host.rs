//! Host functions a VM defines once for all its processes: WASI and the
//! carat ABI.
//!
//! Defining them per process cost each spawn about 50 boxed closures,
//! signature interning under a lock and two strings per name, and kept
//! all of it for the process's life (about 13 KB of host heap). Now each
//! module's functions are made the first time a process asks for it, with
//! their signature ids interned once, and a process links only the
//! functions its modules import, each an `Arc` clone. What differs
//! between processes (WASI's arguments, files and clocks; the carat ABI's
//! pid, mailbox and supervisor) is kept in the process's store
//! (`Store::set_host_state`), where the functions find it through their
//! caller.

use std::collections::HashMap;
use std::sync::OnceLock;

use carat_guest_runtime::{HostFunc, SharedHostFunc};
use carat_host_os::Syscall;
use carat_jit::SignatureRegistry;

/// One import module's functions, by name.
pub(crate) struct SharedModule {
    funcs: HashMap<&'static str, SharedHostFunc>,
}

impl SharedModule {
    fn new(syscalls: Vec<Syscall>, signatures: &SignatureRegistry) -> Self {
        let funcs = syscalls
            .into_iter()
            .map(|syscall| {
                let type_id = signatures.intern(&syscall.ty);
                let func = HostFunc {
                    ty: syscall.ty,
                    type_id,
                    func: syscall.call,
                };
                (syscall.name, SharedHostFunc::new(func))
            })
            .collect();
        SharedModule { funcs }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&SharedHostFunc> {
        self.funcs.get(name)
    }
}

/// The VM's shared modules, each made on first use.
#[derive(Default)]
pub(crate) struct SharedHostFuncs {
    wasi: OnceLock<SharedModule>,
    carat: OnceLock<SharedModule>,
}

impl SharedHostFuncs {
    pub(crate) fn wasi(&self, signatures: &SignatureRegistry) -> &SharedModule {
        self.wasi
            .get_or_init(|| SharedModule::new(carat_host_os::wasi::syscalls(), signatures))
    }

    pub(crate) fn carat(&self, signatures: &SignatureRegistry) -> &SharedModule {
        self.carat
            .get_or_init(|| SharedModule::new(carat_host_os::carat_abi::syscalls(), signatures))
    }
}
