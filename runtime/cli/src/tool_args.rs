//! Flags that give an agent tools: a gateway config and/or the built-in tools.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::SandboxEngine;
use corral_runtime::RuntimeBuilder;

use crate::embedder_args::EmbedderArgs;

/// Tool flags.
#[derive(Debug, Args)]
pub struct ToolArgs {
    /// Gateway configuration (TOML or JSON) whose tools the agent may use.
    #[arg(long, value_name = "FILE")]
    pub gateway: Option<PathBuf>,
    /// Offer Corral's built-in tools (calculator___evaluate, json___query).
    #[arg(long)]
    pub builtin_tools: bool,
    /// What semantic tool search (and memory, where it runs) embeds with.
    #[command(flatten)]
    pub embedding: EmbedderArgs,
}

impl ToolArgs {
    /// The gateway configuration these flags describe, if any, with the
    /// directory its relative paths resolve against; without its policy
    /// engine when `with_policy` is false (to inspect policies separately).
    pub fn gateway_config(
        &self,
        with_policy: bool,
    ) -> anyhow::Result<Option<(GatewayConfig, PathBuf)>> {
        if self.gateway.is_none() && !self.builtin_tools {
            return Ok(None);
        }
        let (mut config, base_dir) = match &self.gateway {
            Some(path) => GatewayConfig::load(path)?,
            None => (
                GatewayConfig::parse("{}", corral_gateway::ConfigFormat::Json)?,
                PathBuf::new(),
            ),
        };
        if !with_policy {
            config.policy_engine_configuration = None;
        }
        if self.builtin_tools {
            config
                .targets
                .extend(corral_gateway::config::TargetSpec::all_builtins()?);
        }
        Ok(Some((config, base_dir)))
    }

    /// The gateway these flags describe, if any, with its policies, on its
    /// own sandbox engine (`corral gateway`: no agents run beside it).
    pub async fn gateway(&self) -> anyhow::Result<Option<Arc<Gateway>>> {
        let embedder = self.embedding.embedder().await?;
        self.build_gateway(None, true, embedder).await
    }

    /// The gateway these flags describe, if any, sharing `engine` for WASM
    /// tools; without its policy engine when `with_policy` is false; its
    /// search ranks by words (no embedding model is loaded).
    pub async fn gateway_with_policy(
        &self,
        engine: Option<SandboxEngine>,
        with_policy: bool,
    ) -> anyhow::Result<Option<Arc<Gateway>>> {
        self.build_gateway(engine, with_policy, None).await
    }

    async fn build_gateway(
        &self,
        engine: Option<SandboxEngine>,
        with_policy: bool,
        embedder: Option<Arc<dyn corral_memory::embed::Embedder>>,
    ) -> anyhow::Result<Option<Arc<Gateway>>> {
        let Some((config, base_dir)) = self.gateway_config(with_policy)? else {
            return Ok(None);
        };
        let options = GatewayOptions {
            engine,
            embedder,
            ..gateway_options(base_dir)
        };
        let gateway = Gateway::new(config, options)
            .await
            .context("starting the gateway")?;
        Ok(Some(gateway))
    }
}

impl ToolArgs {
    /// Adds these flags' gateway (if any) and embedder to `runtime`.
    pub async fn configure(&self, mut runtime: RuntimeBuilder) -> anyhow::Result<RuntimeBuilder> {
        if let Some((config, base_dir)) = self.gateway_config(true)? {
            runtime = runtime.gateway(config, gateway_options(base_dir));
        }
        if let Some(embedder) = self.embedding.embedder().await? {
            runtime = runtime.embedder(embedder);
        }
        Ok(runtime)
    }
}

/// Gateway options for a configuration whose relative paths resolve
/// against `base_dir` (the engine is the runtime's).
pub fn gateway_options(base_dir: PathBuf) -> GatewayOptions {
    GatewayOptions {
        base_dir,
        ..GatewayOptions::default()
    }
}
