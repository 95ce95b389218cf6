//! `corral gateway`: serve a gateway's catalogue over MCP.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use corral_gateway::{
    Gateway, GatewayOptions, HttpOptions, PerCoreOptions, router, serve_per_core,
};

use crate::embedder_args::EmbedderArgs;
use crate::print;
use crate::tool_args::ToolArgs;

/// Arguments of `corral gateway`.
#[derive(Debug, Args)]
pub struct GatewayArgs {
    /// Gateway configuration (TOML or JSON).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Add the built-in tools.
    #[arg(long)]
    builtin_tools: bool,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8000")]
    listen: SocketAddr,
    /// Accepted `Host` header values (DNS-rebinding protection); `*` for any.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// Event loops serving requests (one single-threaded runtime each);
    /// default: one per CPU core.
    #[arg(long, value_name = "N")]
    threads: Option<std::num::NonZeroUsize>,
    /// How long, in microseconds, an event loop keeps polling without
    /// sleeping after a request starts or ends, where the last wait after
    /// that kind of activity was short (0: never; at most 10,000): up to
    /// this much CPU after each, for lower latency. Default: 100.
    #[arg(long, value_name = "MICROSECONDS", value_parser = clap::value_parser!(u64).range(0..=10_000))]
    busy_poll_us: Option<u64>,
    /// Print the tool catalogue (name and description) and exit instead of serving.
    #[arg(long)]
    list: bool,
    /// What the search tool embeds queries and tools with.
    #[command(flatten)]
    embedding: EmbedderArgs,
}

pub async fn serve(args: GatewayArgs) -> anyhow::Result<()> {
    let tools = ToolArgs {
        gateway: args.config.clone(),
        builtin_tools: args.builtin_tools || args.config.is_none(),
        embedding: args.embedding,
    };
    let gateway: std::sync::Arc<Gateway> = match tools.gateway().await? {
        Some(gateway) => gateway,
        None => Gateway::new(serde_json::from_str("{}")?, GatewayOptions::default()).await?,
    };
    if args.list {
        for entry in gateway.catalog().entries() {
            println!(
                "{}\t{}",
                entry.exposed_name,
                first_line(&entry.tool.description)
            );
        }
        for target in gateway.unavailable_targets() {
            println!("{target}___*\t(unavailable: its MCP server has not been reached yet)");
        }
        return Ok(());
    }
    // Clients often search first: embed the catalogue before serving.
    if let Err(error) = gateway.prepare_search().await {
        tracing::warn!(%error, "cannot embed the tool catalogue; search ranks by words until it can");
    }
    let mut http = HttpOptions::default();
    http.allowed_hosts
        .extend(args.allowed_hosts.iter().cloned());
    let app = router(gateway.clone(), http)?;
    let listener = std::net::TcpListener::bind(args.listen)
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let mut options = PerCoreOptions::default();
    if let Some(threads) = args.threads {
        options.threads = threads;
    }
    if let Some(micros) = args.busy_poll_us {
        options.busy_poll = std::time::Duration::from_micros(micros);
    }
    eprintln!(
        "{} {} tools at http://{}/mcp",
        print::bold("gateway serving"),
        gateway.catalog().len(),
        listener.local_addr()?
    );
    serve_per_core(listener, app, options, crate::signal::shutdown_signal())
        .await
        .context("serving MCP")
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}
