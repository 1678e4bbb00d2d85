//! One instantiated module, and the accessors of its vmctx.
//!
//! An [`Instance`] is the host's bookkeeping for a module instance: its
//! vmctx region (which JIT code reads), the regions of the memories and
//! tables it defines, and what its imports resolved to. The vmctx is laid
//! out as `carat_jit::abi::VmctxLayout` says; every address this module
//! hands out is computed from the vmctx's current base, so it is valid
//! until the next relocation and must not be kept past a point where the
//! guest can park. Instances live in their store's vector and never point
//! back at it: the vmctx header names the store and the instance's index,
//! and libcalls and host calls resolve those (see `store`).

use carat_jit::abi::{Location, SharedKind};
use carat_jit::{ConstExpr, EntityKind, ValType};

use crate::code::LoadedModule;
use crate::handles::{Entity, Extern, Func, InstanceId};
use crate::memory_view::MemoryView;
use crate::regions::Region;
use crate::values::Val;
use crate::vmctx::{VMFuncRef, VMMemoryDefinition, VMTableDefinition};

pub(crate) struct LinearMemory {
    pub(crate) region: Box<dyn Region>,
    /// The effective maximum: the declared one capped by the store's limit.
    pub(crate) max_pages: u64,
    pub(crate) declared_max: Option<u64>,
}

pub(crate) struct TableStorage {
    pub(crate) region: Box<dyn Region>,
    pub(crate) element: ValType,
    /// The effective maximum: the declared one capped by the store's limit.
    pub(crate) maximum: u32,
    pub(crate) declared_max: Option<u32>,
}

/// Imports as resolved at instantiation, for re-export and for reaching
/// the owners of imported memories and tables.
#[derive(Default)]
pub(crate) struct Imports {
    pub(crate) funcs: Vec<Func>,
    pub(crate) tables: Vec<Entity>,
    pub(crate) memories: Vec<Entity>,
    pub(crate) globals: Vec<Entity>,
}

/// One instantiated module.
pub struct Instance {
    pub(crate) id: InstanceId,
    pub(crate) module: std::sync::Arc<LoadedModule>,
    pub(crate) vmctx: Box<dyn Region>,
    pub(crate) memories: Vec<LinearMemory>,
    pub(crate) tables: Vec<TableStorage>,
    pub(crate) imports: Imports,
    pub(crate) dropped_data: Vec<bool>,
    pub(crate) dropped_elements: Vec<bool>,
}

impl Instance {
    pub fn id(&self) -> InstanceId {
        self.id
    }

    pub fn module(&self) -> &std::sync::Arc<LoadedModule> {
        &self.module
    }

    pub fn module_info(&self) -> &carat_jit::ModuleInfo {
        &self.module.compiled.info
    }

    /// Where the vmctx is now. It moves with relocation: an address kept
    /// across a point where the guest parks is stale.
    pub fn vmctx(&self) -> *mut u8 {
        self.vmctx.base()
    }

    pub(crate) fn layout(&self) -> &carat_jit::abi::VmctxLayout {
        &self.module.compiled.layout
    }

    /// The address of a field of the vmctx.
    fn field<T>(&self, offset: u32) -> *mut T {
        // Offsets from the layout lie inside the vmctx region.
        self.vmctx().wrapping_add(offset as usize).cast()
    }

    pub(crate) fn funcref_record(&self, index: u32) -> *mut VMFuncRef {
        self.field(self.layout().funcref(index))
    }

    pub(crate) fn memory_def(&self, defined: u32) -> *mut VMMemoryDefinition {
        self.field(self.layout().memory_def(defined))
    }

    pub(crate) fn table_def(&self, defined: u32) -> *mut VMTableDefinition {
        self.field(self.layout().table_def(defined))
    }

    pub(crate) fn global_def(&self, defined: u32) -> *mut u64 {
        self.field(self.layout().global_def(defined))
    }

    /// Entity `index` (imported or defined) of `kind`, reached the way JIT
    /// code reaches it.
    fn locate<T>(&self, kind: SharedKind, index: u32) -> *mut T {
        match self.layout().locate(kind, index) {
            // SAFETY: import pointers were written at instantiation and
            // are patched by every move of the definition they point at.
            Location::Import(pointer) => unsafe { *self.field::<*mut T>(pointer) },
            Location::Local(offset) => self.field(offset),
        }
    }

    pub(crate) fn memory_definition(&self, index: u32) -> *mut VMMemoryDefinition {
        self.locate(SharedKind::Memory, index)
    }

    pub(crate) fn table_definition(&self, index: u32) -> *mut VMTableDefinition {
        self.locate(SharedKind::Table, index)
    }

    pub(crate) fn global_slot(&self, index: u32) -> *mut u64 {
        self.locate(SharedKind::Global, index)
    }

    /// A view of memory `index` (imported or defined).
    pub fn memory_view(&mut self, index: u32) -> Option<MemoryView<'_>> {
        if index as usize >= self.module_info().memories.len() {
            return None;
        }
        // SAFETY: the definition is live; `&mut self` (and so `&mut` of
        // the store that owns this instance) keeps the memory from moving
        // or being used elsewhere while the view lives.
        unsafe {
            let def = &*self.memory_definition(index);
            Some(MemoryView::new(def.base, def.bound as usize))
        }
    }

    /// Where the elements of table `index` (imported or defined) are now,
    /// and how many there are.
    pub(crate) fn table_parts(&self, index: u32) -> (*mut u64, usize) {
        // SAFETY: the definition is live.
        let def = unsafe { &*self.table_definition(index) };
        (def.base, def.len as usize)
    }

    /// The elements of table `index` (imported or defined).
    ///
    /// # Safety
    /// The slice must not be used past any point where the store's
    /// regions can move or the table can grow, nor beside another view
    /// of the same table.
    pub(crate) unsafe fn table_elements<'a>(&self, index: u32) -> &'a mut [u64] {
        let (base, len) = self.table_parts(index);
        // SAFETY: base and len describe the live table; the caller bounds
        // the borrow.
        unsafe { std::slice::from_raw_parts_mut(base, len) }
    }

    /// The handle of entity `index` of `kind`, following imports to their
    /// owner.
    pub(crate) fn entity(&self, kind: EntityKind, index: u32) -> Extern {
        let info = self.module_info();
        let own = |imported: u32| Entity {
            instance: self.id,
            defined: index - imported,
        };
        match kind {
            EntityKind::Func => Extern::Func(self.func(index)),
            EntityKind::Table if index < info.num_imported_tables => {
                Extern::Table(self.imports.tables[index as usize])
            }
            EntityKind::Table => Extern::Table(own(info.num_imported_tables)),
            EntityKind::Memory if index < info.num_imported_memories => {
                Extern::Memory(self.imports.memories[index as usize])
            }
            EntityKind::Memory => Extern::Memory(own(info.num_imported_memories)),
            EntityKind::Global if index < info.num_imported_globals => {
                Extern::Global(self.imports.globals[index as usize])
            }
            EntityKind::Global => Extern::Global(own(info.num_imported_globals)),
        }
    }

    pub(crate) fn func(&self, index: u32) -> Func {
        if index < self.module_info().num_imported_functions {
            self.imports.funcs[index as usize]
        } else {
            Func::Wasm {
                instance: self.id,
                index,
            }
        }
    }

    /// The owner and defined index of memory `index` (imported or not).
    pub(crate) fn memory_owner(&self, index: u32) -> Entity {
        match index.checked_sub(self.module_info().num_imported_memories) {
            Some(defined) => Entity {
                instance: self.id,
                defined,
            },
            None => self.imports.memories[index as usize],
        }
    }

    /// The owner and defined index of table `index` (imported or not).
    pub(crate) fn table_owner(&self, index: u32) -> Entity {
        match index.checked_sub(self.module_info().num_imported_tables) {
            Some(defined) => Entity {
                instance: self.id,
                defined,
            },
            None => self.imports.tables[index as usize],
        }
    }

    /// Evaluates a constant expression in this instance, to its slot.
    pub(crate) fn const_slot(&self, expr: ConstExpr) -> u64 {
        match expr {
            ConstExpr::I32(v) => Val::I32(v).to_slot(),
            ConstExpr::I64(v) => Val::I64(v).to_slot(),
            ConstExpr::F32(bits) => Val::F32(bits).to_slot(),
            ConstExpr::F64(bits) => Val::F64(bits).to_slot(),
            ConstExpr::RefNull(_) => 0,
            ConstExpr::RefFunc(index) => self.funcref_record(index) as u64,
            // SAFETY: the slot belongs to a live instance.
            ConstExpr::GlobalGet(index) => unsafe { *self.global_slot(index) },
        }
    }
}
