//! `corral trace`: a session's spans from the local store, as a tree.

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use corral_telemetry::{store, tree};

use crate::telemetry_setup::default_trace_dir;

/// Arguments of `corral trace`.
#[derive(Debug, Args)]
pub struct TraceArgs {
    /// Session id to show; omit to list the sessions in the store.
    session: Option<String>,
    /// Span store directory [default: `$CORRAL_TRACE_DIR` or
    /// `~/.local/state/corral/traces`].
    #[arg(long, conflicts_with = "data_dir")]
    dir: Option<PathBuf>,
    /// Read the store of a `corral serve` data directory (`<dir>/traces`).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Print the spans as JSON lines instead of a tree.
    #[arg(long)]
    json: bool,
}

/// Prints a session's span tree, or the sessions in the store.
pub fn run(args: TraceArgs) -> anyhow::Result<()> {
    let dir = match (&args.dir, &args.data_dir) {
        (Some(dir), _) => dir.clone(),
        (None, Some(data)) => data.join("traces"),
        (None, None) => default_trace_dir(),
    };
    let Some(session) = args.session else {
        let sessions = store::list_sessions(&dir)
            .with_context(|| format!("reading the span store {}", dir.display()))?;
        if sessions.is_empty() {
            println!("no sessions in {}", dir.display());
        }
        for (session, spans) in sessions {
            println!("{session}  ({spans} spans)");
        }
        return Ok(());
    };
    let spans = store::read_session(&dir, &session)
        .with_context(|| format!("reading the span store {}", dir.display()))?;
    if spans.is_empty() {
        anyhow::bail!(
            "no spans for session {session:?} in {} (spans reach the store within a second \
             of ending; `corral trace` without a session lists what is there)",
            dir.display()
        );
    }
    if args.json {
        for span in &spans {
            println!("{}", serde_json::to_string(span)?);
        }
    } else {
        print!("{}", tree::render(&spans));
    }
    Ok(())
}
