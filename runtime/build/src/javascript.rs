//! JavaScript/TypeScript agents: esbuild bundles the entry module with the
//! embedded SDK (and any npm dependencies), ComponentizeJS turns the bundle
//! into a component with a build-time (Wizer) snapshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{BuildError, BuildOptions, Staging, entry_module, fingerprint, run_to, sdk, toolchain};

/// Installs the JS toolchain next to the agent.
pub(crate) const INSTALL: &str =
    "npm install --save-dev @bytecodealliance/componentize-js@0.23.0 esbuild@0.25";

/// Features left out of every JS agent: the host links no wasi:http, and
/// agents reach the network only through tools.
const DISABLED_FEATURES: &[&str] = &["http", "fetch-event"];

/// Builds `dir` into `component`; returns `true` when the output was fresh.
pub(crate) fn build(
    dir: &Path,
    component: &Path,
    options: &BuildOptions,
) -> Result<bool, BuildError> {
    let entry = entry_module(options)?;
    let entry_file = ["js", "mjs", "ts"]
        .iter()
        .map(|ext| dir.join(format!("{entry}.{ext}")))
        .find(|p| p.is_file())
        .ok_or_else(|| BuildError::MissingEntry(dir.join(format!("{entry}.js"))))?;
    let bin = toolchain_bin(dir, options.js_toolchain.as_deref())?;
    let componentize = bin.join("componentize-js");
    let esbuild = bin.join("esbuild");
    for (tool, path) in [("componentize-js", &componentize), ("esbuild", &esbuild)] {
        if !path.is_file() {
            return Err(BuildError::ToolchainMissing {
                tool: if tool == "esbuild" {
                    "esbuild"
                } else {
                    "componentize-js"
                },
                why: format!("{} is missing", path.display()),
                install: INSTALL,
            });
        }
    }
    let stamp = fingerprint::of(
        dir,
        &["js", "mjs", "ts", "json"],
        &[
            &sdk::digest(sdk::JS_SDK),
            entry,
            &componentize.display().to_string(),
        ],
    )?;
    if !options.force && fingerprint::is_fresh(component, &stamp) {
        return Ok(true);
    }

    let staging = Staging::new(component, "js")?;
    let staging = staging.path();
    sdk::write(staging, sdk::JS_SDK)?;
    let wit = sdk::write_wit(&staging.join("wit"))?;
    let bundle = staging.join("bundle.js");
    let mut cmd = Command::new(&esbuild);
    cmd.current_dir(dir)
        .arg(&entry_file)
        .args([
            "--bundle",
            "--format=esm",
            "--platform=neutral",
            "--log-level=warning",
        ])
        .arg("--external:corral:agent/*")
        .arg(format!(
            "--alias:corral-agent={}",
            staging.join("corral-agent/index.js").display()
        ))
        .arg(format!("--outfile={}", bundle.display()));
    toolchain::run(cmd, "esbuild")?;
    toolchain::expect_output(&bundle, "esbuild")?;

    let partial = component.with_extension("wasm.partial");
    let mut cmd = Command::new(&componentize);
    // ComponentizeJS resolves paths against its working directory.
    cmd.current_dir(staging)
        .arg(&bundle)
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", "agent", "-o"])
        .arg(&partial)
        .arg("--disable")
        .args(DISABLED_FEATURES);
    run_to(cmd, "componentize-js", &partial, component)?;
    fingerprint::record(component, &stamp)?;
    Ok(false)
}

/// The `node_modules/.bin` with the JS toolchain: the agent's own, then
/// `CORRAL_JS_TOOLCHAIN` (a directory with `node_modules`), then the one
/// holding `componentize-js` on `PATH`.
fn toolchain_bin(dir: &Path, configured: Option<&Path>) -> Result<PathBuf, BuildError> {
    let own = dir.join("node_modules/.bin");
    if configured.is_none() && own.join("componentize-js").is_file() {
        return Ok(own);
    }
    if let Some(root) = configured
        .map(|p| p.as_os_str().to_owned())
        .or_else(|| std::env::var_os("CORRAL_JS_TOOLCHAIN"))
    {
        let bin = PathBuf::from(root).join("node_modules/.bin");
        return if bin.join("componentize-js").is_file() {
            Ok(bin)
        } else {
            Err(BuildError::ToolchainMissing {
                tool: "componentize-js",
                why: format!(
                    "CORRAL_JS_TOOLCHAIN has no {}",
                    bin.join("componentize-js").display()
                ),
                install: INSTALL,
            })
        };
    }
    toolchain::on_path("componentize-js")
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .ok_or(BuildError::ToolchainMissing {
            tool: "componentize-js",
            why: "not in the agent's node_modules, CORRAL_JS_TOOLCHAIN or PATH".into(),
            install: INSTALL,
        })
}
