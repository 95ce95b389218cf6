//! Python agents: componentize-py over the agent's module and the embedded SDK.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, BuildOptions, Staging, entry_module, fingerprint, run_to, sdk, toolchain};

/// The componentize-py release the SDK is tested with.
pub(crate) const INSTALL: &str = "pip install componentize-py==0.25.1";

/// The module `corral build` generates to export the SDK's handler after
/// importing the agent's entry module.
const SHIM: &str = "_corral_component";

/// Builds `dir` into `component`; returns `true` when the output was fresh.
pub(crate) fn build(
    dir: &Path,
    component: &Path,
    options: &BuildOptions,
) -> Result<bool, BuildError> {
    let entry = entry_module(options)?;
    let entry_file = dir.join(format!("{}.py", entry.replace('.', "/")));
    if !entry_file.is_file() {
        return Err(BuildError::MissingEntry(entry_file));
    }
    let tool = match &options.componentize_py {
        Some(path) if path.is_file() => path.clone(),
        Some(path) => {
            return Err(BuildError::ToolchainMissing {
                tool: "componentize-py",
                why: format!("{} is not a file", path.display()),
                install: INSTALL,
            });
        }
        None => toolchain::find("componentize-py", "CORRAL_COMPONENTIZE_PY", INSTALL)?,
    };
    let mut version = Command::new(&tool);
    version.arg("--version");
    let version = toolchain::run(version, "componentize-py")?;
    let mut sources = vec![dir.to_path_buf()];
    sources.extend(site_packages(dir));
    let stamp = fingerprint::of_all(
        &sources,
        &["py"],
        &[&version, &sdk::digest(sdk::PYTHON_SDK), entry],
    )?;
    if !options.force && fingerprint::is_fresh(component, &stamp) {
        return Ok(true);
    }

    let staging = Staging::new(component, "python")?;
    let staging = staging.path();
    let sdk_dir = staging.join("sdk");
    sdk::write(&sdk_dir, sdk::PYTHON_SDK)?;
    let wit = sdk::write_wit(&staging.join("wit"))?;
    let shim_dir = staging.join("shim");
    std::fs::create_dir_all(&shim_dir).map_err(|e| BuildError::io(&shim_dir, e))?;
    let shim = shim_dir.join(format!("{SHIM}.py"));
    std::fs::write(
        &shim,
        format!(
            "import {entry}  # noqa: F401  (registers the entry point)\n\
             from corral_agent._export import Handler  # noqa: F401\n"
        ),
    )
    .map_err(|e| BuildError::io(&shim, e))?;

    let partial = component.with_extension("wasm.partial");
    let mut cmd = Command::new(&tool);
    cmd.arg("-d")
        .arg(&wit)
        .args(["-w", "agent", "componentize", SHIM])
        .arg("-p")
        .arg(&shim_dir)
        .arg("-p")
        .arg(dir)
        .arg("-p")
        .arg(&sdk_dir);
    for packages in site_packages(dir) {
        cmd.arg("-p").arg(packages);
    }
    cmd.arg("-o").arg(&partial);
    run_to(cmd, "componentize-py", &partial, component)?;
    fingerprint::record(component, &stamp)?;
    Ok(false)
}

/// The agent's own pure-Python dependencies: `.venv/lib/python3*/site-packages`.
fn site_packages(dir: &Path) -> Vec<PathBuf> {
    let lib = dir.join(".venv").join("lib");
    let Ok(entries) = std::fs::read_dir(&lib) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path().join("site-packages"))
        .filter(|p| p.is_dir())
        .collect()
}
