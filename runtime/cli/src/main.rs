//! `corral`: run agents in sandboxes, try the demo, operate a Corral host.

mod build_cmd;
mod cache_args;
mod demo;
mod embedder_args;
mod gateway_cmd;
mod model_args;
mod policy_cmd;
mod print;
mod replay_cmd;
mod run;
mod serve;
mod signal;
mod telemetry_setup;
mod tool_args;
mod trace_cmd;

use clap::{Parser, Subcommand};

// Sessions, spans and HTTP bodies are many small allocations; mimalloc
// serves them faster than glibc's malloc, which showed up as 13% of the
// agent thread's time (malloc/free/consolidate) in a profile of the tracing
// benchmark.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Corral — a self-hostable agent runtime: every session in its own WASM sandbox.
#[derive(Parser)]
#[command(name = "corral", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,

    /// Log filter for diagnostics on stderr (e.g. `info`, `corral_host=debug`).
    #[arg(long, global = true, env = "CORRAL_LOG", default_value = "warn")]
    log: String,

    /// Log format on stderr: `text` for terminals, `json` (one object per
    /// line) for log pipelines.
    #[arg(long, global = true, env = "CORRAL_LOG_FORMAT", default_value = "text")]
    log_format: LogFormat,
}

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run an agent component: one session, one or more invocations.
    Run(Box<run::RunArgs>),
    /// Build an agent (Rust, Python or JavaScript) into a component.
    Build(build_cmd::BuildArgs),
    /// Create a new agent that builds and answers.
    New(build_cmd::NewArgs),
    /// Run the built-in demo end to end (offline, no AWS account needed).
    Demo(demo::DemoArgs),
    /// Serve a gateway's tools over MCP (streamable HTTP at /mcp).
    Gateway(gateway_cmd::GatewayArgs),
    /// Serve deployed agents over AgentCore's Runtime and Memory APIs.
    Serve(Box<serve::ServeArgs>),
    /// Deploy an agent component to a server as a new version.
    Deploy(serve::DeployArgs),
    /// List or stop live sessions on a server.
    #[command(subcommand)]
    Sessions(serve::SessionsCommand),
    /// Validate and try Cedar policies against a tool catalogue.
    #[command(subcommand)]
    Policy(policy_cmd::PolicyCommand),
    /// Show a session's trace (span tree) from the local span store.
    Trace(trace_cmd::TraceArgs),
    /// Re-run a journaled session offline and report where the agent first
    /// does something else; or fork it at a step with another model.
    Replay(Box<replay_cmd::ReplayArgs>),
}

impl Command {
    /// Where this command's spans go: the config file's `[telemetry]`
    /// section and the default store; `None` for commands that trace nothing.
    fn span_settings(
        &self,
    ) -> anyhow::Result<Option<(corral_telemetry::TelemetryFile, std::path::PathBuf)>> {
        let default_store = telemetry_setup::default_trace_dir;
        Ok(match self {
            Command::Run(_) | Command::Demo(_) | Command::Gateway(_) | Command::Replay(_) => {
                Some((Default::default(), default_store()))
            }
            Command::Serve(args) => Some(args.span_settings()?),
            _ => None,
        })
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let telemetry = match cli
        .command
        .span_settings()
        .and_then(|spans| telemetry_setup::install(&cli.log, cli.log_format, spans))
    {
        Ok(telemetry) => telemetry,
        Err(error) => {
            print::error(&error);
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(args) => gateway_cmd::serve(args).await,
        Command::Policy(command) => policy_cmd::run(command).await,
        Command::Serve(args) => serve::serve(*args).await,
        Command::Deploy(args) => serve::deploy(args).await,
        Command::Sessions(command) => serve::sessions(command).await,
        Command::Trace(args) => trace_cmd::run(args),
        Command::Replay(args) => replay_cmd::replay(*args).await,
        Command::Build(args) => build_cmd::build(args),
        Command::New(args) => build_cmd::new(args),
    };
    telemetry_setup::finish(telemetry);
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            print::error(&error);
            std::process::ExitCode::FAILURE
        }
    }
}
