//! Instantiation: linking a module's imports, laying out its vmctx,
//! allocating its memories and tables, running its segments and start
//! function.
//!
//! Every import is checked to name an entity of this store, with a type
//! that fits, before anything is allocated. Every region is allocated
//! through the store's budget (`StoreInner::allocate`), so a module that
//! declares more memory or table space than its process may hold is
//! refused here, cleanly, with nothing else disturbed. Table elements
//! that start null are never written, so a large declared table costs
//! address space in the arena but no resident memory until it is used.

use std::sync::Arc;

use carat_jit::abi::{self, WASM_PAGE_SIZE, WASM32_MAX_PAGES};
use carat_jit::{EntityKind, ImportKind, ModuleInfo, SegmentMode, Trap};

use crate::code::LoadedModule;
use crate::handles::{Entity, ExecError, Extern, Func, InstanceId, InstantiationError};
use crate::instance::{Imports, Instance, LinearMemory, TableStorage};
use crate::libcalls::LIBCALLS;
use crate::regions::{AllocError, RegionKind};
use crate::store::{Store, StoreInner};
use crate::vmctx::{VMContextHeader, VMFuncRef, VMMemoryDefinition, VMTableDefinition};

impl Store {
    /// Instantiates `module` with `imports` given in the module's import
    /// order. On a trap during initialisation the instance stays in the
    /// store (its effects on shared state persist, as the spec says) and
    /// the error is returned.
    pub fn instantiate(
        &mut self,
        module: &Arc<LoadedModule>,
        imports: &[Extern],
    ) -> Result<InstanceId, InstantiationError> {
        let _span = tracing::debug_span!("instantiate", imports = imports.len()).entered();
        let store_ptr = self.inner_ptr();
        let inner = self.inner_mut();
        let info = &module.compiled.info;
        if imports.len() != info.imports.len() {
            return Err(InstantiationError::Link(format!(
                "the module has {} imports but {} were provided",
                info.imports.len(),
                imports.len()
            )));
        }
        // Every per-process vector is allocated at its exact size: a first
        // push would take room for four, and at a million processes the
        // three spare slots of the instance list alone cost 670 MB.
        let mut resolved = Imports {
            funcs: Vec::with_capacity(info.num_imported_functions as usize),
            tables: Vec::with_capacity(info.num_imported_tables as usize),
            memories: Vec::with_capacity(info.num_imported_memories as usize),
            globals: Vec::with_capacity(info.num_imported_globals as usize),
        };
        for (import, provided) in info.imports.iter().zip(imports) {
            inner.check_import(info, import, provided)?;
            match *provided {
                Extern::Func(f) => resolved.funcs.push(f),
                Extern::Table(t) => resolved.tables.push(t),
                Extern::Memory(m) => resolved.memories.push(m),
                Extern::Global(g) => resolved.globals.push(g),
            }
        }
        if info
            .types
            .iter()
            .any(|ty| carat_jit::abi::results::spills(&ty.results))
        {
            inner.ensure_result_spill();
        }
        inner.widen_stack_margin(module.compiled.image.max_frame_size as usize);
        let size = module.compiled.layout.size() as usize;
        let vmctx = inner.allocate(RegionKind::ControlBlock, size, size)?;
        let id = InstanceId(inner.instances.len() as u32);
        if inner.instances.is_empty() {
            // Most processes hold one instance; later ones grow the list
            // as usual (amortised).
            inner.instances.reserve_exact(1);
        }
        inner.instances.push(Instance {
            id,
            module: module.clone(),
            vmctx,
            memories: Vec::with_capacity(info.memories.len() - info.num_imported_memories as usize),
            tables: Vec::with_capacity(info.tables.len() - info.num_imported_tables as usize),
            imports: resolved,
            dropped_data: vec![false; info.data.len()],
            dropped_elements: vec![false; info.elements.len()],
        });
        if let Err(error) = inner.initialize(id, store_ptr) {
            // A region it could not have: the instance never existed, and
            // nothing links to it yet. (After a trap in a segment, it stays:
            // its writes to shared state persist, as the spec says.)
            if matches!(error, InstantiationError::Alloc(_)) {
                inner.discard_last_instance();
            }
            return Err(error);
        }
        if let Some(start) = info.start {
            let func = self.inner().instances[id.0 as usize].func(start);
            self.call(func, &[]).map_err(InstantiationError::Start)?;
        }
        Ok(id)
    }
}

impl StoreInner {
    /// Drops the newest instance, which nothing links to, and gives its
    /// regions' bytes back to the budget.
    fn discard_last_instance(&mut self) {
        let Some(instance) = self.instances.pop() else {
            return;
        };
        let bytes = instance.vmctx.len()
            + instance
                .memories
                .iter()
                .map(|m| m.region.len())
                .sum::<usize>()
            + instance
                .tables
                .iter()
                .map(|t| t.region.len())
                .sum::<usize>();
        self.refund(bytes as u64);
    }

    /// Checks that `provided` is an entity of this store whose type fits
    /// `import`.
    fn check_import(
        &self,
        info: &ModuleInfo,
        import: &carat_jit::Import,
        provided: &Extern,
    ) -> Result<(), InstantiationError> {
        let mismatch = |detail: String| {
            InstantiationError::Link(format!(
                "incompatible import type for `{}::{}`: {detail}",
                import.module, import.name
            ))
        };
        let foreign = || mismatch("it is not an entity of this store (process)".into());
        let instance = |entity: Entity| self.instances.get(entity.instance.0 as usize);
        // Limits subtyping: the provided current size must be at least the
        // wanted minimum, and a wanted maximum needs a provided one below it.
        let limits_fit = |size: u64, max: Option<u64>, want_min: u64, want_max: Option<u64>| {
            size >= want_min && want_max.is_none_or(|want| max.is_some_and(|m| m <= want))
        };
        match (&import.kind, *provided) {
            (ImportKind::Func(type_index), Extern::Func(f)) => {
                if !self.has_func(f) {
                    return Err(foreign());
                }
                let want = &info.types[*type_index as usize];
                let have = self.func_type(f);
                if have != want {
                    return Err(mismatch(format!("function {have} is not {want}")));
                }
            }
            (ImportKind::Table(want), Extern::Table(t)) => {
                let instance = instance(t).ok_or_else(foreign)?;
                let storage = instance
                    .tables
                    .get(t.defined as usize)
                    .ok_or_else(foreign)?;
                // SAFETY: the definition belongs to a live instance's vmctx.
                let len = unsafe { (*instance.table_def(t.defined)).len };
                if storage.element != want.element
                    || !limits_fit(
                        len,
                        storage.declared_max.map(u64::from),
                        u64::from(want.minimum),
                        want.maximum.map(u64::from),
                    )
                {
                    return Err(mismatch(format!(
                        "table of {} {} elements (max {:?}) does not fit {want:?}",
                        len, storage.element, storage.declared_max
                    )));
                }
            }
            (ImportKind::Memory(want), Extern::Memory(m)) => {
                let instance = instance(m).ok_or_else(foreign)?;
                let memory = instance
                    .memories
                    .get(m.defined as usize)
                    .ok_or_else(foreign)?;
                // SAFETY: the definition belongs to a live instance's vmctx.
                let pages = unsafe { (*instance.memory_def(m.defined)).bound } / WASM_PAGE_SIZE;
                if !limits_fit(pages, memory.declared_max, want.minimum, want.maximum) {
                    return Err(mismatch(format!(
                        "memory of {pages} pages (max {:?}) does not fit {want:?}",
                        memory.declared_max
                    )));
                }
            }
            (ImportKind::Global(want), Extern::Global(g)) => {
                let instance = instance(g).ok_or_else(foreign)?;
                let info = instance.module_info();
                let defined = info.num_imported_globals as usize + g.defined as usize;
                if defined >= info.globals.len() {
                    return Err(foreign());
                }
                let (have, _) = self.global_get(g);
                if have != *want {
                    return Err(mismatch(format!("global {have:?} is not {want:?}")));
                }
            }
            (kind, provided) => {
                let want = match kind {
                    ImportKind::Func(_) => EntityKind::Func,
                    ImportKind::Table(_) => EntityKind::Table,
                    ImportKind::Memory(_) => EntityKind::Memory,
                    ImportKind::Global(_) => EntityKind::Global,
                };
                return Err(mismatch(format!(
                    "expected a {want:?}, found a {:?}",
                    provided.kind()
                )));
            }
        }
        Ok(())
    }

    /// Fills in freshly pushed instance `id`: vmctx header, funcref and
    /// import records, memories, globals, tables, then its segments.
    fn initialize(
        &mut self,
        id: InstanceId,
        store: *mut StoreInner,
    ) -> Result<(), InstantiationError> {
        self.write_records(id, store);
        let instance = &self.instances[id.0 as usize];
        let module = instance.module.clone();
        let info = &module.compiled.info;

        let limit_pages = (self.limits.max_memory_bytes / WASM_PAGE_SIZE).min(WASM32_MAX_PAGES);
        for (defined, ty) in info.memories[info.num_imported_memories as usize..]
            .iter()
            .enumerate()
        {
            let max_pages = ty.maximum.unwrap_or(WASM32_MAX_PAGES).min(limit_pages);
            if ty.minimum > max_pages {
                return Err(AllocError::LimitExceeded {
                    kind: RegionKind::LinearMemory,
                    requested: ty.minimum * WASM_PAGE_SIZE,
                    limit: max_pages * WASM_PAGE_SIZE,
                }
                .into());
            }
            let len = ty.minimum * WASM_PAGE_SIZE;
            let region = self.allocate(
                RegionKind::LinearMemory,
                len as usize,
                (max_pages * WASM_PAGE_SIZE) as usize,
            )?;
            let instance = &mut self.instances[id.0 as usize];
            // SAFETY: the definition lies inside this instance's vmctx.
            unsafe {
                instance
                    .memory_def(defined as u32)
                    .write(VMMemoryDefinition {
                        base: region.base(),
                        bound: len,
                    });
            }
            instance.memories.push(LinearMemory {
                region,
                max_pages,
                declared_max: ty.maximum,
            });
        }

        let instance = &self.instances[id.0 as usize];
        for defined in 0..info.globals.len() - info.num_imported_globals as usize {
            let value = instance.const_slot(info.global_inits[defined]);
            // SAFETY: the slot lies inside this instance's vmctx.
            unsafe { instance.global_def(defined as u32).write(value) };
        }

        let element = abi::table::ELEMENT_SIZE as usize;
        for (defined, ty) in info.tables[info.num_imported_tables as usize..]
            .iter()
            .enumerate()
        {
            let maximum = ty
                .maximum
                .unwrap_or(u32::MAX)
                .min(self.limits.max_table_elements);
            if ty.minimum > maximum {
                return Err(AllocError::LimitExceeded {
                    kind: RegionKind::Table,
                    requested: u64::from(ty.minimum) * element as u64,
                    limit: u64::from(maximum) * element as u64,
                }
                .into());
            }
            let region = self.allocate(
                RegionKind::Table,
                ty.minimum as usize * element,
                maximum as usize * element,
            )?;
            let instance = &mut self.instances[id.0 as usize];
            let init = info.table_inits[info.num_imported_tables as usize + defined]
                .map_or(0, |e| instance.const_slot(e));
            // SAFETY: the region holds `minimum` elements, zero (null) as
            // allocated: only a non-null init is written, so a large table
            // commits no memory. The definition lies inside the vmctx.
            unsafe {
                let elements = region.base().cast::<u64>();
                if init != 0 {
                    for i in 0..ty.minimum as usize {
                        elements.add(i).write(init);
                    }
                }
                instance.table_def(defined as u32).write(VMTableDefinition {
                    base: elements,
                    len: u64::from(ty.minimum),
                });
            }
            instance.tables.push(TableStorage {
                region,
                element: ty.element,
                maximum,
                declared_max: ty.maximum,
            });
        }

        // Segments, in order; the first that does not fit traps and leaves
        // the writes before it in place.
        let const_slot = |store: &Self, expr| store.instances[id.0 as usize].const_slot(expr);
        for (i, segment) in info.elements.iter().enumerate() {
            match segment.mode {
                SegmentMode::Active { index, offset } => {
                    let offset = const_slot(self, offset) as u32;
                    let len = segment.items.len() as u32;
                    if !self.table_init(id, index, i as u32, offset, 0, len) {
                        return Err(InstantiationError::Start(ExecError::trap(
                            Trap::TableOutOfBounds,
                        )));
                    }
                    self.instances[id.0 as usize].dropped_elements[i] = true;
                }
                SegmentMode::Declared => self.instances[id.0 as usize].dropped_elements[i] = true,
                SegmentMode::Passive => {}
            }
        }
        for (i, segment) in info.data.iter().enumerate() {
            if let SegmentMode::Active { index, offset } = segment.mode {
                let offset = const_slot(self, offset) as u32;
                let len = segment.bytes.len() as u32;
                if !self.memory_init(id, index, i as u32, offset, 0, len) {
                    return Err(InstantiationError::Start(ExecError::trap(
                        Trap::MemoryOutOfBounds,
                    )));
                }
                self.instances[id.0 as usize].dropped_data[i] = true;
            }
        }
        Ok(())
    }

    /// Writes instance `id`'s vmctx header, its funcref records and its
    /// import records.
    fn write_records(&self, id: InstanceId, store: *mut StoreInner) {
        let instance = &self.instances[id.0 as usize];
        let module = &instance.module;
        let info = &module.compiled.info;
        let layout = &module.compiled.layout;
        let vmctx = instance.vmctx();
        // SAFETY: vmctx is a zeroed region of `layout.size()` bytes; every
        // write below stays within the offsets the layout hands out, and
        // every record it copies or points at belongs to a live instance
        // or host function of this store.
        unsafe {
            vmctx.cast::<VMContextHeader>().write(VMContextHeader {
                store_context: self.context_ptr(),
                libcalls: (&raw const LIBCALLS).cast(),
                store: store.cast(),
                magic: abi::vmctx::MAGIC_VALUE,
                instance_id: id.0,
                _pad: 0,
            });
            for (i, func) in instance.imports.funcs.iter().enumerate() {
                let type_index = info.functions[i];
                let record = match *func {
                    Func::Host(h) => {
                        let ctx = &*self.host_funcs[h as usize];
                        VMFuncRef {
                            func_ptr: module.host_trampoline(type_index),
                            vmctx: (ctx as *const crate::host::HostFuncContext)
                                .cast_mut()
                                .cast(),
                            type_id: ctx.func.type_id,
                            _pad: 0,
                        }
                    }
                    Func::Wasm {
                        instance: owner,
                        index,
                    } => *self.instances[owner.0 as usize].funcref_record(index),
                };
                instance.funcref_record(i as u32).write(record);
            }
            for defined in 0..info.num_defined_functions() {
                let index = info.num_imported_functions + defined;
                instance.funcref_record(index).write(VMFuncRef {
                    func_ptr: module.function_address(defined as usize),
                    vmctx,
                    type_id: module.compiled.type_ids[info.functions[index as usize] as usize],
                    _pad: 0,
                });
            }
            let owner = |entity: Entity| &self.instances[entity.instance.0 as usize];
            for (i, m) in instance.imports.memories.iter().enumerate() {
                vmctx
                    .add(layout.memory_import(i as u32) as usize)
                    .cast::<*mut VMMemoryDefinition>()
                    .write(owner(*m).memory_def(m.defined));
            }
            for (i, t) in instance.imports.tables.iter().enumerate() {
                vmctx
                    .add(layout.table_import(i as u32) as usize)
                    .cast::<*mut VMTableDefinition>()
                    .write(owner(*t).table_def(t.defined));
            }
            for (i, g) in instance.imports.globals.iter().enumerate() {
                vmctx
                    .add(layout.global_import(i as u32) as usize)
                    .cast::<*mut u64>()
                    .write(owner(*g).global_def(g.defined));
            }
            // What `call_indirect` checks against: this VM's ids of the
            // module's types (see `jit::abi`).
            for (i, id) in module.compiled.type_ids.iter().enumerate() {
                vmctx
                    .add(layout.type_id(i as u32) as usize)
                    .cast::<u32>()
                    .write(*id);
            }
        }
    }
}
