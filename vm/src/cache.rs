//! The compile cache: compiled modules on disk, found by content.
//!
//! A module's key is the SHA-256 of the compiler's fingerprint (this
//! build, the target, the memory strategy, fuel counting: see
//! `carat_jit::artifact`) and the module's bytes, so a module compiled
//! another way, or by another build, is another entry, never a wrong
//! one. An entry is a saved module (`.cwasm`), checked in full when it
//! is loaded: one that fails (corrupt, truncated, from another build) is
//! compiled again and replaced. Entries are written to a temporary file
//! and renamed into place, so concurrent VMs (the test suite's, say)
//! never read half an entry. The directory is made private to its user:
//! whoever can write an entry can run code as the host.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A cache directory.
#[derive(Debug)]
pub(crate) struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    pub(crate) fn new(dir: PathBuf) -> Self {
        CompileCache { dir }
    }

    /// The entry's key for `bytes` compiled as `fingerprint` says.
    pub(crate) fn key(fingerprint: &str, bytes: &[u8]) -> String {
        let mut hasher = Sha256::new();
        hasher.update((fingerprint.len() as u64).to_le_bytes());
        hasher.update(fingerprint.as_bytes());
        hasher.update(bytes);
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..2]).join(format!("{key}.cwasm"))
    }

    /// The saved module under `key`, if there is one.
    pub(crate) fn load(&self, key: &str) -> Option<Vec<u8>> {
        std::fs::read(self.path(key)).ok()
    }

    /// Saves `bytes` under `key`.
    pub(crate) fn store(&self, key: &str, bytes: &[u8]) -> std::io::Result<()> {
        let path = self.path(key);
        let dir = path.parent().expect("an entry has a directory");
        create_private_dir(&self.dir)?;
        create_private_dir(dir)?;
        let temporary = dir.join(format!(
            ".{key}.{}.{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        std::fs::rename(&temporary, &path)
    }
}

/// Makes `dir` (and its parents) if missing, readable by its user only.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Where the command line keeps its cache: `CARAT_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/carat-vm`, else `$HOME/.cache/carat-vm`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    var("CARAT_CACHE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_CACHE_HOME").map(|d| PathBuf::from(d).join("carat-vm")))
        .or_else(|| var("HOME").map(|d| PathBuf::from(d).join(".cache/carat-vm")))
}
