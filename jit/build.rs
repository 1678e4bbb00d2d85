//! Gives the crate `CARAT_CODE_ID`: a hash of everything that shapes the
//! machine code it makes and the ABI that code runs against (its own
//! sources, its manifest and the workspace's lock file, which pins
//! Cranelift). A saved module records it, and one from any other build is
//! refused (`artifact`): the crate's version alone does not change
//! between the commits that change the code.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let mut inputs = Vec::new();
    files(&root.join("src"), &mut inputs);
    inputs.sort();
    inputs.push(root.join("Cargo.toml"));
    inputs.push(root.join("../Cargo.lock"));
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in &inputs {
        println!("cargo:rerun-if-changed={}", path.display());
        path.strip_prefix(&root).unwrap_or(path).hash(&mut hasher);
        std::fs::read(path).unwrap_or_default().hash(&mut hasher);
    }
    println!("cargo:rerun-if-changed={}", root.join("src").display());
    println!("cargo:rustc-env=CARAT_CODE_ID={:016x}", hasher.finish());
}
