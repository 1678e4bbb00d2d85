//! Compiled modules saved and loaded: `.cwasm` files and the compile cache.
//!
//! A saved module is machine code, and loading one runs it. So a file is
//! taken only when it is certainly one of ours, for this build and this
//! configuration, and intact:
//! - it starts with [`MAGIC`] and a format version;
//! - it names the fingerprint of what shaped its code ([`fingerprint`]):
//!   the build of this crate (`CARAT_CODE_ID`, a hash of its sources and
//!   of the lock file that pins Cranelift), the target and the ISA flags
//!   Cranelift used, the memory strategy, fuel counting and the
//!   optimisation level. A file with any other is refused, both named;
//! - a SHA-256 of the payload must match, so a corrupt file is refused,
//!   never run;
//! - the decoded module is checked for consistency (every code range,
//!   trap site, stack map and relocation inside the image, one range per
//!   defined function, two trampolines per type), so a file that passes
//!   the checksum without being ours fails with an error, not a panic.
//!
//! None of this defends against a forged file: whoever can write a
//! `.cwasm`, or the cache directory, can run code as the host (as with
//! wasmtime's `.cwasm`). The cache creates its directory private to the
//! user.
//!
//! A saved module holds no engine-specific state: `call_indirect` reads
//! type ids from the vmctx (see `abi`), and the loading VM interns the
//! module's types itself.

use sha2::{Digest, Sha256};

use crate::{
    CodeImage, CompileStats, CompiledModule, Compiler, ModuleInfo, SignatureRegistry, abi,
};

/// The first bytes of a saved module.
pub const MAGIC: &[u8; 8] = b"\0cwasm\x01\0";
/// The layout of what follows the magic.
const FORMAT: u32 = 1;

/// Why a saved module was refused.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error("not a compiled carat-vm module (no `.cwasm` header)")]
    NotAnArtifact,
    #[error("a compiled module of format {found}, this carat-vm reads format {FORMAT}")]
    Format { found: u32 },
    #[error(
        "compiled for another build or configuration: it has {}, this VM needs {} (compile the module again)",
        differences(found, expected).0,
        differences(found, expected).1
    )]
    Mismatch { found: String, expected: String },
    #[error("the compiled module is corrupt: {0}")]
    Corrupt(String),
}

/// The parts of two fingerprints that differ, each side's joined.
fn differences(found: &str, expected: &str) -> (String, String) {
    let (a, b): (Vec<&str>, Vec<&str>) = found
        .split("; ")
        .zip(expected.split("; "))
        .filter(|(a, b)| a != b)
        .unzip();
    let quote = |parts: Vec<&str>| format!("`{}`", parts.join("; "));
    if a.is_empty() {
        (format!("`{found}`"), format!("`{expected}`"))
    } else {
        (quote(a), quote(b))
    }
}

/// What a saved module holds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Saved {
    info: ModuleInfo,
    layout: abi::VmctxLayout,
    image: CodeImage,
    stats: CompileStats,
}

/// What shaped `compiler`'s code: a saved module must name the same.
pub fn fingerprint(compiler: &Compiler) -> &str {
    &compiler.fingerprint
}

/// The fingerprint of code `isa` makes under `config`, worked out once,
/// when a compiler is made.
pub(crate) fn fingerprint_of(
    isa: &dyn cranelift_codegen::isa::TargetIsa,
    config: &crate::CompileConfig,
) -> String {
    let flags: Vec<String> = isa.isa_flags().iter().map(|f| f.to_string()).collect();
    format!(
        "carat-jit {}; build {}; target {}; isa [{}]; strategy {:?}; fuel {}; opt {:?}",
        env!("CARGO_PKG_VERSION"),
        env!("CARAT_CODE_ID"),
        isa.triple(),
        flags.join(","),
        config.strategy,
        config.fuel,
        config.opt_level,
    )
}

/// Whether `bytes` start like a saved module.
pub fn is_artifact(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Saves `module`, compiled by `compiler`.
pub fn serialize(compiler: &Compiler, module: &CompiledModule) -> Vec<u8> {
    let saved = Saved {
        info: module.info.clone(),
        layout: module.layout.clone(),
        image: module.image.clone(),
        stats: module.stats,
    };
    let payload = postcard::to_stdvec(&saved).expect("a compiled module encodes");
    let fingerprint = fingerprint(compiler);
    let mut out = Vec::with_capacity(payload.len() + fingerprint.len() + 56);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT.to_le_bytes());
    out.extend_from_slice(&(fingerprint.len() as u32).to_le_bytes());
    out.extend_from_slice(fingerprint.as_bytes());
    out.extend_from_slice(&Sha256::digest(&payload));
    out.extend_from_slice(&payload);
    out
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], ArtifactError> {
    if rest.len() < n {
        return Err(ArtifactError::Corrupt(format!("it ends inside its {what}")));
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Ok(head)
}

fn u32_at(rest: &mut &[u8], what: &str) -> Result<u32, ArtifactError> {
    let bytes = take(rest, 4, what)?;
    Ok(u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
}

/// Loads a module [`serialize`] saved, for `compiler`'s configuration,
/// with its types interned in `signatures`.
pub fn deserialize(
    compiler: &Compiler,
    bytes: &[u8],
    signatures: &SignatureRegistry,
) -> Result<CompiledModule, ArtifactError> {
    let mut rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or(ArtifactError::NotAnArtifact)?;
    let format = u32_at(&mut rest, "format")?;
    if format != FORMAT {
        return Err(ArtifactError::Format { found: format });
    }
    let len = u32_at(&mut rest, "fingerprint")? as usize;
    let found = String::from_utf8_lossy(take(&mut rest, len, "fingerprint")?).into_owned();
    let expected = fingerprint(compiler);
    if found != expected {
        let expected = expected.to_string();
        return Err(ArtifactError::Mismatch { found, expected });
    }
    let digest = take(&mut rest, 32, "checksum")?;
    if Sha256::digest(rest).as_slice() != digest {
        return Err(ArtifactError::Corrupt(
            "its checksum does not match its contents".into(),
        ));
    }
    let saved: Saved = postcard::from_bytes(rest)
        .map_err(|e| ArtifactError::Corrupt(format!("cannot decode it: {e}")))?;
    check(&saved).map_err(ArtifactError::Corrupt)?;
    let type_ids = saved
        .info
        .types
        .iter()
        .map(|t| signatures.intern(t))
        .collect();
    Ok(CompiledModule {
        info: saved.info,
        layout: saved.layout,
        image: saved.image,
        type_ids,
        stats: saved.stats,
    })
}

/// The structure loading relies on: everything the runtime indexes or
/// patches lies inside the image, and there is code for every function
/// and type.
fn check(saved: &Saved) -> Result<(), String> {
    let Saved {
        info,
        layout,
        image,
        ..
    } = saved;
    let len = image.bytes.len() as u64;
    let inside = |offset: u32, size: u64| u64::from(offset) + size <= len;
    if image.functions.len() != info.bodies.len() {
        return Err("its functions do not match its module".into());
    }
    if image
        .functions
        .iter()
        .any(|r| r.start > r.end || !inside(r.start, u64::from(r.end - r.start)))
    {
        return Err("a function lies outside its code".into());
    }
    let types = info.types.len();
    if image.entry_trampolines.len() != types || image.host_trampolines.len() != types {
        return Err("its trampolines do not match its types".into());
    }
    let offsets = image
        .entry_trampolines
        .iter()
        .chain(&image.host_trampolines)
        .copied()
        .chain(image.traps.iter().map(|t| t.offset))
        .chain(image.stack_maps.iter().map(|m| m.return_address))
        .chain(image.source_map.iter().map(|s| s.code_offset));
    if offsets.clone().any(|o| !inside(o, 0)) {
        return Err("an offset lies outside its code".into());
    }
    if image.absolute_relocs.iter().any(|r| !inside(r.offset, 8)) {
        return Err("a relocation lies outside its code".into());
    }
    if info.functions.iter().any(|&t| t as usize >= types) {
        return Err("its module description is inconsistent".into());
    }
    if *layout != abi::VmctxLayout::new(info.counts()) {
        return Err("its vmctx layout does not match its module".into());
    }
    Ok(())
}
