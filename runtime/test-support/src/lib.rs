//! Helpers shared by Corral's integration tests: where `.ci/test` installed
//! the real peers (the Python `mcp` SDK and `boto3` venv, npm MCP servers).

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of `.ci/test`'s venv (`CORRAL_TEST_PYTHON` overrides it).
///
/// # Panics
/// When it is missing, naming the command that installs it (`needs` says
/// what the test wants from it).
pub fn ci_python(needs: &str) -> PathBuf {
    let path = std::env::var_os("CORRAL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/ci-venv/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run .ci/test, which installs {needs}",
        path.display()
    );
    path
}
