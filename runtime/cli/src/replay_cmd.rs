//! `corral replay`: re-runs a journaled session offline and reports where
//! the agent first does something else, or forks it at a step.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use corral_host::{
    AgentHost, CompiledAgent, EngineConfig, ReplayOptions, ReplayReport, SessionConfig,
    SessionReplayer,
};
use corral_journal::{JournalStore, Record, Segment};
use corral_runtime::RuntimeBuilder;
use serde_json::Value;

use crate::model_args::ModelArgs;
use crate::print;
use crate::tool_args::ToolArgs;

/// Arguments of `corral replay`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The session to replay.
    session: String,
    /// Data directory of a stopped server holding the journal and the
    /// deployed components [default: corral-data].
    #[arg(long, env = "CORRAL_DATA_DIR", conflicts_with = "server")]
    data_dir: Option<PathBuf>,
    /// Read the journal and the component from a running server instead.
    #[arg(long, value_name = "URL")]
    server: Option<String>,
    /// Replay this component instead of the recorded one (to see where a
    /// changed agent diverges).
    #[arg(long, value_name = "WASM")]
    agent: Option<PathBuf>,
    /// Run live from this step (the Nth model call of the session, from 1):
    /// earlier calls are answered from the journal, this one and all after
    /// it reach the model and tools given by the flags below.
    #[arg(long, value_name = "STEP")]
    until: Option<u64>,
    /// Journal the run as a new session forked from this one (needs
    /// `--until` and a local data directory; a server started on it then
    /// continues the new session).
    #[arg(
        long,
        value_name = "NEW_SESSION",
        requires = "until",
        conflicts_with = "server"
    )]
    fork: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tools: ToolArgs,
}

/// Where the journal and components come from.
enum Source {
    /// A data directory on this machine.
    Local { dir: PathBuf, journal: JournalStore },
    /// A running server.
    Remote {
        url: String,
        client: reqwest::Client,
    },
}

pub async fn replay(args: ReplayArgs) -> anyhow::Result<()> {
    let source = match &args.server {
        Some(url) => Source::Remote {
            url: url.trim_end_matches('/').to_string(),
            client: reqwest::Client::new(),
        },
        None => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("corral-data"));
            let journal_dir = dir.join("journal");
            if !journal_dir.is_dir() {
                bail!(
                    "no session journals in {} (serve with --journal to record them)",
                    dir.display()
                );
            }
            let storage = corral_memory::SledStorage::open(&journal_dir).with_context(|| {
                format!(
                    "opening {} (a server running on it holds it: use --server URL)",
                    journal_dir.display()
                )
            })?;
            let journal =
                JournalStore::new(Arc::new(storage), corral_journal::JournalConfig::default());
            Source::Local { dir, journal }
        }
    };
    let segment = source.last_segment(&args.session).await?;
    let mut runtime = RuntimeBuilder::new().engine(EngineConfig {
        max_instances: 4,
        ..EngineConfig::default()
    });
    // Offline, nothing is reached: every call is answered from the journal.
    // Live from a step, the model and tools of the flags answer.
    if args.until.is_some() {
        runtime = runtime.model(args.model.provider().await?);
        runtime = args.tools.configure(runtime).await?;
    }
    let runtime = runtime.build().await.context("starting the runtime")?;
    let host = runtime.host().clone();
    let agent = source.agent(&host, &segment, args.agent.as_deref()).await?;
    let config = SessionConfig {
        // A fork is journaled beside its parent.
        journal: match &source {
            Source::Local { journal, .. } => Some(journal.clone()),
            Source::Remote { .. } => None,
        },
        ..SessionConfig::default()
    };
    let services = runtime.sessions().services().as_ref().clone();
    let replayer = SessionReplayer::new(host, services, config);
    let options = ReplayOptions {
        until_step: args.until,
        fork: args.fork.clone(),
    };
    if !args.json {
        eprintln!(
            "{} session {} ({} version {}, {} steps, {} host calls){}",
            print::bold("replaying"),
            args.session,
            segment.start.agent,
            segment.start.version,
            segment.steps(),
            segment.host_calls(),
            match args.until {
                Some(step) => format!(", live from step {step}"),
                None => ", offline".into(),
            }
        );
    }
    let report = replayer
        .replay(&agent, &args.session, segment, &options)
        .await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_report(&report);
    }
    if let Some(divergence) = &report.divergence {
        bail!("the replay diverged: {divergence}");
    }
    Ok(())
}

impl Source {
    /// The journal entries of the session's latest sandbox.
    async fn last_segment(&self, session: &str) -> anyhow::Result<Segment> {
        let segment = match self {
            Source::Local { journal, .. } => journal.last_segment(session)?,
            Source::Remote { url, client } => {
                let records = fetch_journal(client, url, session).await?;
                corral_journal::segments(records).pop()
            }
        };
        segment.with_context(|| format!("session {session} has no journal to replay"))
    }

    /// The component to replay: `path` if given, else the recorded one
    /// (with the environment its version was deployed with, when known).
    async fn agent(
        &self,
        host: &Arc<AgentHost>,
        segment: &Segment,
        path: Option<&std::path::Path>,
    ) -> anyhow::Result<CompiledAgent> {
        let name = &segment.start.agent;
        let digest = &segment.start.digest;
        let bytes = match (path, self) {
            (Some(path), _) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))?
            }
            (None, Source::Local { dir, .. }) => local_registry(dir, host)
                .with_context(|| {
                    format!(
                        "opening the deploy registry in {} (a server running on it holds it: give the component with --agent, or replay through --server)",
                        dir.display()
                    )
                })?
                .component_source(digest)
                .with_context(|| {
                    format!(
                        "the recorded component {digest} is not in {} (give it with --agent)",
                        dir.display()
                    )
                })?,
            (None, Source::Remote { url, client }) => {
                let response = client
                    .get(format!("{url}/corral/components/{digest}"))
                    .send()
                    .await?;
                if !response.status().is_success() {
                    let body: Value = response.json().await.unwrap_or(Value::Null);
                    bail!(
                        "the server has no component {digest}: {} (give it with --agent)",
                        body["message"].as_str().unwrap_or("not found")
                    );
                }
                response.bytes().await?.to_vec()
            }
        };
        let mut agent = host
            .compile(name, &bytes)?
            .with_version(segment.start.version.clone());
        // The registry's sled store is locked while a server runs on it:
        // then the recorded settings are not applied.
        if let Source::Local { dir, .. } = self
            && let Ok(registry) = local_registry(dir, host)
            && let Some(version) = registry.version_by_digest(name, digest)
        {
            // The recorded version's settings, without loading it again.
            agent = agent.with_settings(version.settings());
        }
        Ok(agent)
    }
}

/// The deploy registry of the data directory `dir` (sled; not shared with
/// a running server).
fn local_registry(
    dir: &std::path::Path,
    host: &Arc<AgentHost>,
) -> anyhow::Result<corral_server::AgentRegistry> {
    let store = corral_storage::SledStorage::open(&dir.join("registry"))?;
    Ok(corral_server::AgentRegistry::open(
        dir,
        Arc::new(store),
        host.clone(),
        usize::MAX,
    )?)
}

/// Reads a session's whole journal from a server, page by page.
async fn fetch_journal(
    client: &reqwest::Client,
    url: &str,
    session: &str,
) -> anyhow::Result<Vec<Record>> {
    let mut records = Vec::new();
    let mut offset = 0u64;
    loop {
        let response = client
            .get(format!("{url}/corral/sessions/{session}/journal"))
            .query(&[("offset", offset), ("limit", 10_000)])
            .send()
            .await?;
        if !response.status().is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            bail!("{}", body["message"].as_str().unwrap_or("no journal"));
        }
        let text = response.text().await?;
        let before = records.len();
        for (line, entry) in text.lines().enumerate() {
            let record = Record::from_json(entry)
                .with_context(|| format!("journal line {} from the server", line + 1))?;
            offset = record.offset + 1;
            records.push(record);
        }
        if records.len() == before {
            return Ok(records);
        }
    }
}

fn print_report(report: &ReplayReport) {
    for invocation in &report.invocations {
        let status = match (invocation.live, invocation.ok) {
            (true, true) => print::bold("live"),
            (true, false) => print::bold("live error"),
            (false, true) => "same".to_string(),
            (false, false) => "same error".to_string(),
        };
        println!(
            "{:>4}  {:<38} {:<10} {}",
            invocation.number,
            invocation.request_id,
            status,
            one_line(&invocation.response)
        );
    }
    match &report.divergence {
        None => {
            let live = report.invocations.iter().filter(|i| i.live).count();
            if live == 0 {
                println!(
                    "identical: {} invocations made the same {} host calls and returned the same responses",
                    report.invocations.len(),
                    report.recorded_host_calls
                );
            }
        }
        Some(divergence) => {
            println!("{} {divergence}", print::bold("DIVERGED"));
            if let Some(recorded) = &divergence.recorded {
                println!("  recorded: {}", one_line(&recorded.to_string()));
            }
            if let Some(actual) = &divergence.actual {
                println!("  now:      {}", one_line(&actual.to_string()));
            }
        }
    }
    if let Some(fork) = &report.fork {
        println!(
            "forked {} from {} at step {} (journal offset {}); serve this data directory to continue it",
            fork.session, fork.parent, fork.step, fork.parent_offset
        );
    }
}

/// Text cut to one short line.
fn one_line(text: &str) -> String {
    const MAX: usize = 240;
    let line = text.replace('\n', " ");
    if line.len() <= MAX {
        return line;
    }
    let mut end = MAX;
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &line[..end])
}
