//! Listings of the code carat-jit produces, one function at a time: the
//! CLIF translation hands Cranelift (where the guards carat-jit emits and
//! removes are plain to see), the CLIF after Cranelift's optimiser, and
//! the machine code Cranelift emits, headed by the function's guard
//! counts. `carat-vm compile --emit-clif/--emit-asm` writes them, and the
//! golden CLIF tests in `jit/tests/` compare the first against expected
//! text. Listing compiles on one thread and keeps every text, so it is for
//! people and tests, never the path modules take to run.

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_frontend::FunctionBuilderContext;

use crate::module_info::EntityKind;
use crate::translate::CodeStats;
use crate::{CompileError, Compiler, SignatureRegistry, translate_function};

/// One defined function's code at each stage.
#[derive(Clone, Debug)]
pub struct FunctionListing {
    /// Its index in the module's function index space.
    pub index: u32,
    /// The names it is exported under.
    pub exports: Vec<String>,
    /// CLIF as translated, before Cranelift optimises it.
    pub clif: String,
    /// CLIF after Cranelift's optimiser.
    pub optimized_clif: String,
    /// Cranelift's listing of the machine code, headed by guard counts.
    pub disassembly: String,
    /// Its guard and poll counts.
    pub stats: CodeStats,
}

impl FunctionListing {
    /// A file name for this function's listings: its index, then its first
    /// export name reduced to characters safe in a path.
    pub fn file_stem(&self) -> String {
        match self.exports.first() {
            Some(name) => {
                let safe: String = name
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                            c
                        } else {
                            '_'
                        }
                    })
                    .take(64)
                    .collect();
                format!("{:04}-{safe}", self.index)
            }
            None => format!("{:04}", self.index),
        }
    }

    /// One comment line with the guard and poll counts, as `;`-comments.
    pub fn summary(&self) -> String {
        let s = &self.stats;
        format!(
            "; function {}: {} guards emitted, {} removed by static proof, {} by dominance, \
             {} by merging, {} by versioning {} loops, {} accesses need no guard (paging), {} polls",
            self.index,
            s.guards_emitted,
            s.guards_removed_static,
            s.guards_removed_dominated,
            s.guards_removed_merged,
            s.guards_removed_versioned,
            s.loops_versioned,
            s.accesses_unguarded,
            s.polls_emitted
        )
    }
}

impl Compiler {
    /// Validates and compiles `bytes`, keeping every defined function's
    /// listings.
    pub fn listing(
        &self,
        bytes: &[u8],
        signatures: &SignatureRegistry,
    ) -> Result<Vec<FunctionListing>, CompileError> {
        let prepared = self.prepare(bytes, signatures)?;
        let env = self.env(&prepared);
        let info = &prepared.info;
        let mut ctx = Context::new();
        let mut builder_ctx = FunctionBuilderContext::new();
        let mut listings = Vec::with_capacity(info.bodies.len());
        for defined in 0..info.bodies.len() {
            let index = info.num_imported_functions + defined as u32;
            let stats = translate_function(&env, bytes, defined, &mut ctx, &mut builder_ctx)?;
            let clif = clif_text(&ctx.func);
            // After translation: clearing the context forgets it.
            ctx.set_disasm(true);
            let compiled = ctx
                .compile(&*self.isa, &mut ControlPlane::default())
                .map_err(|e| CompileError::Codegen(format!("{:?}", e.inner)))?;
            let code = compiled.vcode.clone().unwrap_or_default();
            let exports = info
                .exports
                .iter()
                .filter(|e| e.kind == EntityKind::Func && e.index == index)
                .map(|e| e.name.clone())
                .collect();
            let mut listing = FunctionListing {
                index,
                exports,
                clif,
                optimized_clif: clif_text(&ctx.func),
                disassembly: String::new(),
                stats,
            };
            listing.disassembly = format!("{}\n{code}", listing.summary());
            listings.push(listing);
        }
        Ok(listings)
    }
}

/// A function's CLIF as text, without the wasm offsets each instruction
/// carries for backtraces (`@00a3`): a listing, and a golden file, should
/// change when the code does, not when a byte is added before it.
fn clif_text(func: &cranelift_codegen::ir::Function) -> String {
    let mut func = func.clone();
    func.srclocs.clear();
    func.display().to_string()
}
