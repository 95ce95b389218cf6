//! `--cache-dir` / `--no-cache`: where compiled components are kept, so
//! each is compiled once per machine instead of once per process.

use std::path::PathBuf;

use clap::Args;

/// Where compiled components are cached.
#[derive(Debug, Args)]
pub struct CacheArgs {
    /// Where compiled components (agents, WASM tools) are cached, so each
    /// is compiled once per machine; a Python or JS agent, or the built-in
    /// tools in a debug build, take seconds [default:
    /// $XDG_CACHE_HOME/corral/components or ~/.cache/corral/components].
    #[arg(long, env = "CORRAL_CACHE_DIR", value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Compile in memory only; read and write no cache (wins over
    /// `--cache-dir` and `CORRAL_CACHE_DIR`).
    #[arg(long)]
    no_cache: bool,
}

impl CacheArgs {
    /// The cache directory to use, if any.
    pub fn dir(&self) -> Option<PathBuf> {
        if self.no_cache {
            None
        } else {
            self.cache_dir.clone().or_else(default_cache_dir)
        }
    }
}

/// `$XDG_CACHE_HOME/corral/components`, else `~/.cache/corral/components`
/// (unset, empty or relative variables are ignored, as the XDG spec says).
fn default_cache_dir() -> Option<PathBuf> {
    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_CACHE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("corral").join("components"))
}
