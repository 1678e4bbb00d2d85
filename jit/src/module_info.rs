//! Decoding and validating a module into [`ModuleInfo`].
//!
//! The module is validated once, in full, by wasmparser's validator with the
//! WebAssembly 2.0 feature set minus SIMD; only then is it decoded into the
//! owned description below. Everything after this point (translation,
//! instantiation) may therefore assume a valid module and treats a
//! violation as a bug, not as bad input. Function bodies are kept as byte
//! ranges into the module so that decoding stays one linear pass.

use std::ops::Range;
use std::sync::Arc;

use wasmparser::{
    BinaryReaderError, ElementItems, ElementKind, ExternalKind, Operator, Parser, Payload, TypeRef,
    Validator, WasmFeatures,
};

/// A value type of WebAssembly 2.0 without SIMD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ValType {
    I32,
    I64,
    F32,
    F64,
    FuncRef,
    ExternRef,
}

impl ValType {
    pub fn is_ref(self) -> bool {
        matches!(self, ValType::FuncRef | ValType::ExternRef)
    }
}

impl std::fmt::Display for ValType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValType::I32 => "i32",
            ValType::I64 => "i64",
            ValType::F32 => "f32",
            ValType::F64 => "f64",
            ValType::FuncRef => "funcref",
            ValType::ExternRef => "externref",
        })
    }
}

/// A function signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub struct FuncType {
    pub params: Vec<ValType>,
    pub results: Vec<ValType>,
}

impl FuncType {
    pub fn new(params: impl Into<Vec<ValType>>, results: impl Into<Vec<ValType>>) -> Self {
        FuncType {
            params: params.into(),
            results: results.into(),
        }
    }
}

impl std::fmt::Display for FuncType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list = |v: &[ValType]| {
            v.iter()
                .map(|t| t.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "(func (param {}) (result {}))",
            list(&self.params),
            list(&self.results)
        )
    }
}

/// Limits of a table, in elements.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TableType {
    pub element: ValType,
    pub minimum: u32,
    pub maximum: Option<u32>,
}

/// Limits of a linear memory, in 64 KiB pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MemoryType {
    pub minimum: u64,
    pub maximum: Option<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GlobalType {
    pub content: ValType,
    pub mutable: bool,
}

/// A constant expression of WebAssembly 2.0: exactly one instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ConstExpr {
    I32(i32),
    I64(i64),
    F32(u32),
    F64(u64),
    /// A null reference of the given reference type.
    RefNull(ValType),
    RefFunc(u32),
    GlobalGet(u32),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ImportKind {
    Func(u32),
    Table(TableType),
    Memory(MemoryType),
    Global(GlobalType),
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Import {
    pub module: String,
    pub name: String,
    pub kind: ImportKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum EntityKind {
    Func,
    Table,
    Memory,
    Global,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Export {
    pub name: String,
    pub kind: EntityKind,
    pub index: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum SegmentMode {
    Passive,
    Active { index: u32, offset: ConstExpr },
    Declared,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ElementSegment {
    pub mode: SegmentMode,
    pub element: ValType,
    pub items: Vec<ConstExpr>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataSegment {
    pub mode: SegmentMode,
    pub bytes: Arc<[u8]>,
}

/// Everything about a module except its code, owned.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct ModuleInfo {
    pub types: Vec<FuncType>,
    pub imports: Vec<Import>,
    /// Type index of every function, imported ones first.
    pub functions: Vec<u32>,
    pub num_imported_functions: u32,
    pub tables: Vec<TableType>,
    pub table_inits: Vec<Option<ConstExpr>>,
    pub num_imported_tables: u32,
    pub memories: Vec<MemoryType>,
    pub num_imported_memories: u32,
    pub globals: Vec<GlobalType>,
    /// Initialiser of each defined global.
    pub global_inits: Vec<ConstExpr>,
    pub num_imported_globals: u32,
    pub exports: Vec<Export>,
    pub start: Option<u32>,
    pub elements: Vec<ElementSegment>,
    pub data: Vec<DataSegment>,
    /// Byte range of each defined function's body in the module.
    pub bodies: Vec<Range<usize>>,
    /// What the name section calls the module and its functions (by
    /// function index), for backtraces. Names are advice: a malformed
    /// name section is ignored, never an error.
    pub names: Names,
}

/// The names a module's name section gives.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Names {
    pub module: Option<String>,
    /// By function index.
    pub functions: std::collections::BTreeMap<u32, String>,
}

impl Names {
    /// Reads a name section, keeping whatever parses before any error.
    fn read(&mut self, reader: wasmparser::NameSectionReader<'_>) {
        for name in reader {
            match name {
                Ok(wasmparser::Name::Module { name, .. }) => self.module = Some(name.to_string()),
                Ok(wasmparser::Name::Function(map)) => {
                    for naming in map.into_iter().map_while(Result::ok) {
                        self.functions.insert(naming.index, naming.name.to_string());
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    }
}

impl ModuleInfo {
    pub fn func_type(&self, func_index: u32) -> &FuncType {
        &self.types[self.functions[func_index as usize] as usize]
    }

    pub fn num_defined_functions(&self) -> u32 {
        self.functions.len() as u32 - self.num_imported_functions
    }

    pub fn is_imported_function(&self, index: u32) -> bool {
        index < self.num_imported_functions
    }

    pub fn counts(&self) -> crate::abi::EntityCounts {
        crate::abi::EntityCounts {
            functions: self.functions.len() as u32,
            imported_memories: self.num_imported_memories,
            defined_memories: self.memories.len() as u32 - self.num_imported_memories,
            imported_tables: self.num_imported_tables,
            defined_tables: self.tables.len() as u32 - self.num_imported_tables,
            imported_globals: self.num_imported_globals,
            defined_globals: self.globals.len() as u32 - self.num_imported_globals,
            types: self.types.len() as u32,
        }
    }

    pub fn export(&self, name: &str) -> Option<&Export> {
        self.exports.iter().find(|e| e.name == name)
    }
}

/// A module that failed to decode or validate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid module: {message} (at offset {offset})")]
pub struct InvalidModule {
    pub message: String,
    pub offset: usize,
}

impl From<BinaryReaderError> for InvalidModule {
    fn from(e: BinaryReaderError) -> Self {
        // Some messages span lines (debug-printed arrays); errors are
        // reported on one line.
        let message = e
            .message()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .replace("[ ", "[")
            .replace(", ]", "]");
        InvalidModule {
            message,
            offset: e.offset() as usize,
        }
    }
}

/// The features carat-vm implements: WebAssembly 2.0 without SIMD.
pub fn supported_features() -> WasmFeatures {
    WasmFeatures::WASM2.difference(WasmFeatures::SIMD)
}

/// Validates `bytes` and decodes it.
pub fn decode(bytes: &[u8]) -> Result<ModuleInfo, InvalidModule> {
    Validator::new_with_features(supported_features()).validate_all(bytes)?;
    let mut info = ModuleInfo::default();
    for payload in Parser::new(0).parse_all(bytes) {
        decode_payload(&mut info, payload?)?;
    }
    Ok(info)
}

fn decode_payload(info: &mut ModuleInfo, payload: Payload<'_>) -> Result<(), InvalidModule> {
    match payload {
        Payload::TypeSection(reader) => {
            for ty in reader.into_iter_err_on_gc_types() {
                let ty = ty?;
                info.types.push(FuncType {
                    params: ty
                        .params()
                        .iter()
                        .map(|t| val_type_of(*t))
                        .collect::<Result<_, _>>()?,
                    results: ty
                        .results()
                        .iter()
                        .map(|t| val_type_of(*t))
                        .collect::<Result<_, _>>()?,
                });
            }
        }
        Payload::ImportSection(reader) => {
            for import in reader.into_imports() {
                let import = import?;
                let kind = match import.ty {
                    TypeRef::Func(ty) => {
                        info.functions.push(ty);
                        info.num_imported_functions += 1;
                        ImportKind::Func(ty)
                    }
                    TypeRef::Table(ty) => {
                        let ty = table_type(ty)?;
                        info.tables.push(ty);
                        info.table_inits.push(None);
                        info.num_imported_tables += 1;
                        ImportKind::Table(ty)
                    }
                    TypeRef::Memory(ty) => {
                        let ty = memory_type(ty);
                        info.memories.push(ty);
                        info.num_imported_memories += 1;
                        ImportKind::Memory(ty)
                    }
                    TypeRef::Global(ty) => {
                        let ty = GlobalType {
                            content: val_type_of(ty.content_type)?,
                            mutable: ty.mutable,
                        };
                        info.globals.push(ty);
                        info.num_imported_globals += 1;
                        ImportKind::Global(ty)
                    }
                    other => return Err(unsupported(&format!("import of {other:?}"))),
                };
                info.imports.push(Import {
                    module: import.module.to_string(),
                    name: import.name.to_string(),
                    kind,
                });
            }
        }
        Payload::FunctionSection(reader) => {
            for ty in reader {
                info.functions.push(ty?);
            }
        }
        Payload::TableSection(reader) => {
            for table in reader {
                let table = table?;
                info.tables.push(table_type(table.ty)?);
                info.table_inits.push(match table.init {
                    wasmparser::TableInit::RefNull => None,
                    wasmparser::TableInit::Expr(expr) => Some(const_expr(&expr)?),
                });
            }
        }
        Payload::MemorySection(reader) => {
            for memory in reader {
                info.memories.push(memory_type(memory?));
            }
        }
        Payload::GlobalSection(reader) => {
            for global in reader {
                let global = global?;
                info.globals.push(GlobalType {
                    content: val_type_of(global.ty.content_type)?,
                    mutable: global.ty.mutable,
                });
                info.global_inits.push(const_expr(&global.init_expr)?);
            }
        }
        Payload::ExportSection(reader) => {
            for export in reader {
                let export = export?;
                let kind = match export.kind {
                    ExternalKind::Func | ExternalKind::FuncExact => EntityKind::Func,
                    ExternalKind::Table => EntityKind::Table,
                    ExternalKind::Memory => EntityKind::Memory,
                    ExternalKind::Global => EntityKind::Global,
                    ExternalKind::Tag => return Err(unsupported("tag export")),
                };
                info.exports.push(Export {
                    name: export.name.to_string(),
                    kind,
                    index: export.index,
                });
            }
        }
        Payload::StartSection { func, .. } => info.start = Some(func),
        Payload::ElementSection(reader) => {
            for element in reader {
                let element = element?;
                let mode = match element.kind {
                    ElementKind::Passive => SegmentMode::Passive,
                    ElementKind::Declared => SegmentMode::Declared,
                    ElementKind::Active {
                        table_index,
                        offset_expr,
                    } => SegmentMode::Active {
                        index: table_index.unwrap_or(0),
                        offset: const_expr(&offset_expr)?,
                    },
                };
                let (element, items) = match element.items {
                    ElementItems::Functions(funcs) => (
                        ValType::FuncRef,
                        funcs
                            .into_iter()
                            .map(|f| f.map(ConstExpr::RefFunc))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                    ElementItems::Expressions(ty, exprs) => (
                        ref_type(ty)?,
                        exprs
                            .into_iter()
                            .map(|e| const_expr(&e?))
                            .collect::<Result<Vec<_>, _>>()?,
                    ),
                };
                info.elements.push(ElementSegment {
                    mode,
                    element,
                    items,
                });
            }
        }
        Payload::DataSection(reader) => {
            for data in reader {
                let data = data?;
                let mode = match data.kind {
                    wasmparser::DataKind::Passive => SegmentMode::Passive,
                    wasmparser::DataKind::Active {
                        memory_index,
                        offset_expr,
                    } => SegmentMode::Active {
                        index: memory_index,
                        offset: const_expr(&offset_expr)?,
                    },
                };
                info.data.push(DataSegment {
                    mode,
                    bytes: data.data.into(),
                });
            }
        }
        Payload::CodeSectionEntry(body) => {
            let range = body.range();
            info.bodies.push(range.start as usize..range.end as usize);
        }
        Payload::CustomSection(reader) => {
            if let wasmparser::KnownCustom::Name(names) = reader.as_known() {
                info.names.read(names);
            }
        }
        _ => {}
    }
    Ok(())
}

fn unsupported(what: &str) -> InvalidModule {
    InvalidModule {
        message: format!("unsupported: {what}"),
        offset: 0,
    }
}

pub(crate) fn val_type_of(ty: wasmparser::ValType) -> Result<ValType, InvalidModule> {
    Ok(match ty {
        wasmparser::ValType::I32 => ValType::I32,
        wasmparser::ValType::I64 => ValType::I64,
        wasmparser::ValType::F32 => ValType::F32,
        wasmparser::ValType::F64 => ValType::F64,
        wasmparser::ValType::Ref(r) => ref_type(r)?,
        wasmparser::ValType::V128 => return Err(unsupported("v128")),
    })
}

fn ref_type(ty: wasmparser::RefType) -> Result<ValType, InvalidModule> {
    if ty == wasmparser::RefType::FUNCREF {
        Ok(ValType::FuncRef)
    } else if ty == wasmparser::RefType::EXTERNREF {
        Ok(ValType::ExternRef)
    } else {
        Err(unsupported(&format!("reference type {ty}")))
    }
}

fn table_type(ty: wasmparser::TableType) -> Result<TableType, InvalidModule> {
    // Validation without the memory64 feature guarantees 32-bit limits.
    Ok(TableType {
        element: ref_type(ty.element_type)?,
        minimum: ty.initial as u32,
        maximum: ty.maximum.map(|m| m as u32),
    })
}

fn memory_type(ty: wasmparser::MemoryType) -> MemoryType {
    MemoryType {
        minimum: ty.initial,
        maximum: ty.maximum,
    }
}

fn const_expr(expr: &wasmparser::ConstExpr<'_>) -> Result<ConstExpr, InvalidModule> {
    let mut ops = expr.get_operators_reader();
    let value = match ops.read()? {
        Operator::I32Const { value } => ConstExpr::I32(value),
        Operator::I64Const { value } => ConstExpr::I64(value),
        Operator::F32Const { value } => ConstExpr::F32(value.bits()),
        Operator::F64Const { value } => ConstExpr::F64(value.bits()),
        Operator::RefNull { hty } => ConstExpr::RefNull(match hty {
            wasmparser::HeapType::Abstract {
                ty: wasmparser::AbstractHeapType::Extern,
                ..
            } => ValType::ExternRef,
            _ => ValType::FuncRef,
        }),
        Operator::RefFunc { function_index } => ConstExpr::RefFunc(function_index),
        Operator::GlobalGet { global_index } => ConstExpr::GlobalGet(global_index),
        other => return Err(unsupported(&format!("constant expression {other:?}"))),
    };
    match ops.read()? {
        Operator::End => Ok(value),
        other => Err(unsupported(&format!("constant expression with {other:?}"))),
    }
}
