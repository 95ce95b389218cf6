//! Build-script helper: compiles guest crates of this workspace to
//! `wasm32-wasip2` components and generates constants pointing at them.
//!
//! Modelled on wasmtime's test-programs artifacts crate: a nested `cargo
//! build` with its own target directory (so it never waits on the outer
//! build's lock), dependency tracking through the `.d` files cargo writes, and
//! a generated `guests.rs` with one `NAME: &[u8]` and `NAME_PATH: &str` per
//! guest. Build scripts report failure by panicking, so this crate does too,
//! with messages that say what to do.

use std::collections::BTreeSet;
use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Rust target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// The cargo profile guests are built with (defined in the workspace manifest).
pub const PROFILE: &str = "wasm-guest";

/// Builds `packages` (workspace package names) and writes `$OUT_DIR/guests.rs`.
///
/// Include it with `include!(concat!(env!("OUT_DIR"), "/guests.rs"));`.
pub fn build_guests(packages: &[&str]) {
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_else(|| {
        panic!("corral-guest-build must run inside a build script (OUT_DIR is unset)")
    }));
    let workspace = workspace_root();
    let target_dir = env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"))
        .join("wasm-guests");

    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&workspace)
        .arg("build")
        .arg("--quiet")
        .arg("--target")
        .arg(TARGET)
        .arg("--profile")
        .arg(PROFILE)
        .env("CARGO_TARGET_DIR", &target_dir)
        // Host-only settings must not leak into the guest build.
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CARGO_BUILD_TARGET");
    for package in packages {
        cmd.arg("--package").arg(package);
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo: {e}"));
    if !status.success() {
        panic!(
            "building guest components {packages:?} for {TARGET} failed (see errors above). \
             If the target is missing, run `rustup target add {TARGET}`."
        );
    }

    let artifacts = target_dir.join(TARGET).join(PROFILE);
    let mut generated = String::new();
    let mut deps = BTreeSet::new();
    for package in packages {
        let stem = package.replace('-', "_");
        let wasm = artifacts.join(format!("{stem}.wasm"));
        if !wasm.exists() {
            panic!(
                "guest {package} built but {} is missing; guest crates must set crate-type = [\"cdylib\"]",
                wasm.display()
            );
        }
        read_deps(&wasm.with_extension("d"), &mut deps);
        let constant = stem.to_uppercase();
        let path = wasm.display().to_string();
        let _ = writeln!(
            generated,
            "/// The `{package}` component, compiled for {TARGET}.\npub const {constant}: &[u8] = include_bytes!({path:?});"
        );
        let _ = writeln!(
            generated,
            "/// Path of the `{package}` component file.\npub const {constant}_PATH: &str = {path:?};"
        );
    }
    for dep in deps {
        println!("cargo:rerun-if-changed={dep}");
    }
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("runtime/wit").display()
    );
    println!(
        "cargo:rerun-if-changed={}",
        workspace.join("Cargo.lock").display()
    );
    fs::write(out_dir.join("guests.rs"), generated)
        .unwrap_or_else(|e| panic!("cannot write guests.rs: {e}"));
}

/// The directory holding the workspace manifest.
fn workspace_root() -> PathBuf {
    let manifest_dir = PathBuf::from(
        env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| panic!("CARGO_MANIFEST_DIR is unset")),
    );
    let mut dir = manifest_dir.as_path();
    loop {
        let manifest = dir.join("Cargo.toml");
        if fs::read_to_string(&manifest).is_ok_and(|text| text.contains("[workspace]")) {
            return dir.to_path_buf();
        }
        dir = dir
            .parent()
            .unwrap_or_else(|| panic!("no workspace manifest above {}", manifest_dir.display()));
    }
}

/// Collects source files listed in a cargo dep-info (`.d`) file.
fn read_deps(dep_file: &Path, deps: &mut BTreeSet<String>) {
    let Ok(contents) = fs::read_to_string(dep_file) else {
        return;
    };
    for line in contents.lines() {
        let Some((_, files)) = line.split_once(": ") else {
            continue;
        };
        let mut parts = files.split_whitespace();
        while let Some(part) = parts.next() {
            let mut file = part.to_string();
            // Spaces in paths are escaped with a backslash.
            while file.ends_with('\\') {
                file.pop();
                file.push(' ');
                match parts.next() {
                    Some(next) => file.push_str(next),
                    None => break,
                }
            }
            deps.insert(file);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dep_info_with_escaped_spaces() {
        let dir = env::temp_dir().join(format!("corral-guest-build-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("x.d");
        fs::write(
            &file,
            "/t/x.wasm: /src/a.rs /src/my\\ file.rs\n\n/src/a.rs:\n",
        )
        .unwrap();
        let mut deps = BTreeSet::new();
        read_deps(&file, &mut deps);
        assert_eq!(
            deps.into_iter().collect::<Vec<_>>(),
            vec!["/src/a.rs".to_string(), "/src/my file.rs".to_string()]
        );
        fs::remove_dir_all(dir).unwrap();
    }
}
