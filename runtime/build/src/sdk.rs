//! The SDKs and WIT world embedded in this crate, written out for a build.

use std::path::Path;

use sha2::{Digest, Sha256};

use crate::BuildError;

/// `runtime/wit/agent.wit`: the world every agent is built against.
pub(crate) const AGENT_WIT: &str = include_str!("../../wit/agent.wit");

/// The Python SDK (`runtime/sdk-python/corral_agent`), file by file.
pub(crate) const PYTHON_SDK: &[(&str, &str)] = &[
    (
        "corral_agent/__init__.py",
        include_str!("../../sdk-python/corral_agent/__init__.py"),
    ),
    (
        "corral_agent/_export.py",
        include_str!("../../sdk-python/corral_agent/_export.py"),
    ),
    (
        "corral_agent/agent.py",
        include_str!("../../sdk-python/corral_agent/agent.py"),
    ),
    (
        "corral_agent/errors.py",
        include_str!("../../sdk-python/corral_agent/errors.py"),
    ),
    (
        "corral_agent/host.py",
        include_str!("../../sdk-python/corral_agent/host.py"),
    ),
    (
        "corral_agent/log.py",
        include_str!("../../sdk-python/corral_agent/log.py"),
    ),
    (
        "corral_agent/memory.py",
        include_str!("../../sdk-python/corral_agent/memory.py"),
    ),
    (
        "corral_agent/stream.py",
        include_str!("../../sdk-python/corral_agent/stream.py"),
    ),
    (
        "corral_agent/tool_loop.py",
        include_str!("../../sdk-python/corral_agent/tool_loop.py"),
    ),
    (
        "corral_agent/tools.py",
        include_str!("../../sdk-python/corral_agent/tools.py"),
    ),
    (
        "corral_agent/types.py",
        include_str!("../../sdk-python/corral_agent/types.py"),
    ),
    ("corral_agent/py.typed", ""),
];

/// The JavaScript SDK (`runtime/sdk-js`), file by file.
pub(crate) const JS_SDK: &[(&str, &str)] = &[
    (
        "corral-agent/index.js",
        include_str!("../../sdk-js/index.js"),
    ),
    (
        "corral-agent/index.d.ts",
        include_str!("../../sdk-js/index.d.ts"),
    ),
    (
        "corral-agent/package.json",
        include_str!("../../sdk-js/package.json"),
    ),
];

/// A digest of `files` and the WIT world, for fingerprints.
pub(crate) fn digest(files: &[(&str, &str)]) -> String {
    let mut hash = Sha256::new();
    hash.update(AGENT_WIT.as_bytes());
    for (path, text) in files {
        hash.update(path.as_bytes());
        hash.update((text.len() as u64).to_le_bytes());
        hash.update(text.as_bytes());
    }
    hex::encode(hash.finalize())
}

/// Writes `files` under `root`.
pub(crate) fn write(root: &Path, files: &[(&str, &str)]) -> Result<(), BuildError> {
    for (path, text) in files {
        let path = root.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| BuildError::io(parent, e))?;
        }
        std::fs::write(&path, text).map_err(|e| BuildError::io(&path, e))?;
    }
    Ok(())
}

/// Writes the WIT world to `<root>/agent.wit` and returns its path.
pub(crate) fn write_wit(root: &Path) -> Result<std::path::PathBuf, BuildError> {
    std::fs::create_dir_all(root).map_err(|e| BuildError::io(root, e))?;
    let path = root.join("agent.wit");
    std::fs::write(&path, AGENT_WIT).map_err(|e| BuildError::io(&path, e))?;
    Ok(path)
}
