//! `corral run`: one session of an agent component, one or more invocations.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use corral_host::{AgentSettings, EngineConfig, InvocationRequest, RunLimits};
use corral_runtime::RuntimeBuilder;

use crate::model_args::ModelArgs;
use crate::print;
use crate::tool_args::ToolArgs;

/// Arguments of `corral run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The agent component (`.wasm`, built for wasm32-wasip2), or `--harness`.
    #[arg(required_unless_present = "harness")]
    agent: Option<PathBuf>,
    /// Run Corral's no-code harness agent configured by this file.
    #[arg(long, value_name = "FILE", conflicts_with = "agent")]
    harness: Option<PathBuf>,
    /// Session id (a new one is generated when absent).
    #[arg(long)]
    session: Option<String>,
    /// Actor (end user) id.
    #[arg(long, default_value = "default")]
    actor: String,
    /// Request payload; repeat for several invocations in the same session.
    /// Without it the payload is read from standard input.
    #[arg(long, short)]
    input: Vec<String>,
    /// Content type of the payload.
    #[arg(long, default_value = "application/json")]
    content_type: String,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tools: ToolArgs,
    /// Environment variable for the agent (`KEY=VALUE`, repeatable).
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Linear-memory cap of the sandbox, in MiB.
    #[arg(long, default_value_t = 128)]
    memory_mib: usize,
    /// Guest CPU time allowed per invocation, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    cpu_ms: u64,
    /// Most tool calls the session may make.
    #[arg(long, value_name = "N")]
    max_tool_calls: Option<u32>,
    /// Most model calls one invocation may make.
    #[arg(long, value_name = "N")]
    max_model_calls: Option<u32>,
    /// Most tokens (input + output) one invocation may use.
    #[arg(long, value_name = "N")]
    max_tokens: Option<u64>,
    /// Print only responses, not the session log.
    #[arg(long, short)]
    quiet: bool,
    /// The compile cache.
    #[command(flatten)]
    cache: crate::cache_args::CacheArgs,
}

pub async fn run(args: RunArgs) -> anyhow::Result<()> {
    let mut env = args
        .env
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("--env expects KEY=VALUE, got {pair:?}"),
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let (path, bytes) = match (&args.agent, &args.harness) {
        (_, Some(harness)) => {
            if env.iter().any(|(k, _)| k == corral_harness::ENV_VAR) {
                bail!(
                    "--env {} would replace the harness file; edit the file instead",
                    corral_harness::ENV_VAR
                );
            }
            let config = corral_harness::load(harness)?;
            env.push((corral_harness::ENV_VAR.into(), config.to_env_value()));
            (harness.clone(), corral_harness::COMPONENT.to_vec())
        }
        (Some(agent), None) => (
            agent.clone(),
            std::fs::read(agent).with_context(|| format!("reading {}", agent.display()))?,
        ),
        (None, None) => bail!("give an agent component or --harness FILE"),
    };
    let memory_bytes = args.memory_mib.max(1) << 20;
    let mut runtime = RuntimeBuilder::new()
        .engine(EngineConfig {
            max_instances: 4,
            max_memory_bytes: memory_bytes,
            cache_dir: args.cache.dir(),
            ..EngineConfig::default()
        })
        .model(args.model.provider().await?);
    runtime = args.tools.configure(runtime).await?;
    let runtime = runtime.build().await.context("starting the runtime")?;
    let host = runtime.host();
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "agent".into());
    let started = Instant::now();
    let agent = host
        .compile(&name, &bytes)
        .with_context(|| format!("loading {}", path.display()))?
        .with_settings(AgentSettings {
            env,
            memory_bytes: Some(memory_bytes),
            cpu_time: Some(Duration::from_millis(args.cpu_ms)),
            run_limits: RunLimits {
                max_tool_calls_per_session: args.max_tool_calls,
                max_model_calls_per_invocation: args.max_model_calls,
                max_tokens_per_invocation: args.max_tokens,
            },
            ..AgentSettings::default()
        });
    let agent = Arc::new(agent);
    if !args.quiet {
        eprintln!(
            "{} {} ({} KiB, compiled in {} ms)",
            print::bold("agent"),
            name,
            bytes.len() / 1024,
            started.elapsed().as_millis()
        );
    }
    let manager = runtime.sessions();
    let session = args
        .session
        .clone()
        .unwrap_or_else(|| format!("session-{}", uuid::Uuid::new_v4()));
    let inputs = if args.input.is_empty() {
        let mut stdin = String::new();
        std::io::stdin()
            .read_to_string(&mut stdin)
            .context("reading the payload from stdin")?;
        vec![stdin]
    } else {
        args.input.clone()
    };
    for (index, input) in inputs.iter().enumerate() {
        let request = InvocationRequest::new(&session, input.as_bytes().to_vec())
            .actor(&args.actor)
            .content_type(&args.content_type);
        let response = manager
            .invoke(&agent, request)
            .await
            .with_context(|| format!("invocation {} in session {session}", index + 1))?;
        if !args.quiet {
            eprintln!(
                "{} {} {}",
                print::bold(&format!("invocation {}", index + 1)),
                print::dim(&format!("session {session}")),
                print::dim(&format!(
                    "{} ms, {} model calls, {} tool calls",
                    response.duration.as_millis(),
                    response.stats.model_calls,
                    response.stats.tool_calls
                )),
            );
            for entry in &response.log {
                print::log_entry(entry);
            }
        }
        println!("{}", response.text());
    }
    Ok(())
}
