//! `corral`: run agents in sandboxes, try the demo, operate a Corral host.

mod demo;
mod gateway_cmd;
mod model_args;
mod policy_cmd;
mod print;
mod run;
mod serve;
mod tool_args;

use clap::{Parser, Subcommand};

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
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let logs = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log))
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    let result = match cli.command {
        Command::Run(args) => run::run(*args).await,
        Command::Demo(args) => demo::demo(args).await,
        Command::Gateway(args) => gateway_cmd::serve(args).await,
        Command::Policy(command) => policy_cmd::run(command).await,
        Command::Serve(args) => serve::serve(*args).await,
        Command::Deploy(args) => serve::deploy(args).await,
        Command::Sessions(command) => serve::sessions(command).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            print::error(&error);
            std::process::ExitCode::FAILURE
        }
    }
}
