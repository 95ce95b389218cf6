//! `corral build` and `corral new`: agents in Rust, Python or JavaScript.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use corral_build::{BuildOptions, Language};

/// Arguments of `corral build`.
#[derive(Debug, Args)]
pub struct BuildArgs {
    /// The agent's directory (Cargo.toml, app.py or package.json/app.js).
    #[arg(default_value = ".")]
    dir: PathBuf,
    /// Language, when detection is not enough: rust, python or js.
    #[arg(long = "lang", value_parser = parse_language)]
    language: Option<Language>,
    /// Directory for the component [default: <dir>/build].
    #[arg(long, short)]
    out_dir: Option<PathBuf>,
    /// Python/JS entry module [default: app].
    #[arg(long)]
    entry: Option<String>,
    /// Rebuild even if the sources have not changed.
    #[arg(long)]
    force: bool,
}

/// Arguments of `corral new`.
#[derive(Debug, Args)]
pub struct NewArgs {
    /// Name of the agent (and of its new directory).
    name: String,
    /// Language: rust, python or js.
    #[arg(long = "lang", value_parser = parse_language, default_value = "python")]
    language: Language,
    /// Directory to create it in.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
}

fn parse_language(text: &str) -> Result<Language, String> {
    Language::parse(text)
        .ok_or_else(|| format!("unknown language {text:?}: use rust, python or js"))
}

pub fn build(args: BuildArgs) -> anyhow::Result<()> {
    let options = BuildOptions {
        out_dir: args.out_dir,
        language: args.language,
        entry: args.entry,
        force: args.force,
        ..BuildOptions::default()
    };
    let output = corral_build::build(&args.dir, &options)
        .map_err(|e| anyhow!(e).context(format!("building {}", args.dir.display())))?;
    let how = if output.fresh {
        "up to date".to_string()
    } else {
        format!("{:.1} s", output.elapsed.as_secs_f64())
    };
    eprintln!(
        "built {} ({}, {:.1} MiB, {how})",
        output.component.display(),
        output.language,
        output.bytes as f64 / (1024.0 * 1024.0)
    );
    println!("{}", output.component.display());
    Ok(())
}

pub fn new(args: NewArgs) -> anyhow::Result<()> {
    let dir = corral_build::scaffold(args.language, &args.name, &args.dir)?;
    eprintln!(
        "created {} ({}); build it with `corral build {}`",
        dir.display(),
        args.language,
        dir.display()
    );
    Ok(())
}
