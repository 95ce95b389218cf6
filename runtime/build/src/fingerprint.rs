//! Freshness: a SHA-256 over an agent's sources, the embedded SDK and the
//! toolchain version, stored next to the output.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::BuildError;

/// Directories never part of an agent's sources.
const SKIP: &[&str] = &[
    "build",
    "target",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    ".git",
];

/// Fingerprint of the files under `dir` with these extensions, plus `extra`.
pub(crate) fn of(dir: &Path, extensions: &[&str], extra: &[&str]) -> Result<String, BuildError> {
    of_all(&[dir.to_path_buf()], extensions, extra)
}

/// Fingerprint of the files under each of `dirs` (an agent and the
/// dependencies it bundles) with these extensions, plus `extra`.
pub(crate) fn of_all(
    dirs: &[PathBuf],
    extensions: &[&str],
    extra: &[&str],
) -> Result<String, BuildError> {
    let mut hash = Sha256::new();
    for dir in dirs {
        let mut files = Vec::new();
        collect(dir, extensions, &mut files)?;
        files.sort();
        for file in files {
            let bytes = std::fs::read(&file).map_err(|e| BuildError::io(&file, e))?;
            let name = file.strip_prefix(dir).unwrap_or(&file);
            hash.update(name.to_string_lossy().as_bytes());
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(&bytes);
        }
    }
    for part in extra {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    Ok(hex::encode(hash.finalize()))
}

fn collect(dir: &Path, extensions: &[&str], out: &mut Vec<PathBuf>) -> Result<(), BuildError> {
    let entries = std::fs::read_dir(dir).map_err(|e| BuildError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| BuildError::io(dir, e))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let kind = entry.file_type().map_err(|e| BuildError::io(&path, e))?;
        if kind.is_dir() {
            if !SKIP.contains(&name.as_ref()) && !name.starts_with('.') {
                collect(&path, extensions, out)?;
            }
        } else if path
            .extension()
            .is_some_and(|ext| extensions.iter().any(|e| ext == *e))
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Whether `component` exists and was built from `fingerprint`.
pub(crate) fn is_fresh(component: &Path, fingerprint: &str) -> bool {
    component.is_file()
        && std::fs::read_to_string(stamp(component)).is_ok_and(|s| s.trim() == fingerprint)
}

/// Records that `component` was built from `fingerprint`.
pub(crate) fn record(component: &Path, fingerprint: &str) -> Result<(), BuildError> {
    let path = stamp(component);
    std::fs::write(&path, fingerprint).map_err(|e| BuildError::io(&path, e))
}

fn stamp(component: &Path) -> PathBuf {
    component.with_extension("wasm.fingerprint")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_with_sources_and_ignores_build_output() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "x = 1").unwrap();
        let first = of(dir.path(), &["py"], &["sdk"]).unwrap();
        std::fs::create_dir(dir.path().join("build")).unwrap();
        std::fs::write(dir.path().join("build/junk.py"), "y").unwrap();
        std::fs::write(dir.path().join("notes.txt"), "z").unwrap();
        assert_eq!(first, of(dir.path(), &["py"], &["sdk"]).unwrap());
        std::fs::write(dir.path().join("app.py"), "x = 2").unwrap();
        assert_ne!(first, of(dir.path(), &["py"], &["sdk"]).unwrap());
        assert_ne!(
            of(dir.path(), &["py"], &["sdk"]).unwrap(),
            of(dir.path(), &["py"], &["sdk2"]).unwrap()
        );
    }

    #[test]
    fn freshness_needs_the_component_and_a_matching_stamp() {
        let dir = tempfile::tempdir().unwrap();
        let component = dir.path().join("a.wasm");
        assert!(!is_fresh(&component, "f"));
        std::fs::write(&component, b"\0asm").unwrap();
        assert!(!is_fresh(&component, "f"));
        record(&component, "f").unwrap();
        assert!(is_fresh(&component, "f"));
        assert!(!is_fresh(&component, "g"));
    }
}
