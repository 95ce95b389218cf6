//! Flags that give an agent tools: a gateway config and/or the built-in tools.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use corral_gateway::{Gateway, GatewayConfig, GatewayOptions};
use corral_host::SandboxEngine;

/// Tool flags.
#[derive(Debug, Args)]
pub struct ToolArgs {
    /// Gateway configuration (TOML or JSON) whose tools the agent may use.
    #[arg(long, value_name = "FILE")]
    pub gateway: Option<PathBuf>,
    /// Offer Corral's built-in tools (calculator___evaluate, json___query).
    #[arg(long)]
    pub builtin_tools: bool,
}

impl ToolArgs {
    /// The gateway these flags describe, if any, sharing `engine` for WASM tools.
    pub async fn gateway(
        &self,
        engine: Option<SandboxEngine>,
    ) -> anyhow::Result<Option<Arc<Gateway>>> {
        self.gateway_with_policy(engine, true).await
    }

    /// The gateway these flags describe; without its policy engine when
    /// `with_policy` is false (to inspect policies separately).
    pub async fn gateway_with_policy(
        &self,
        engine: Option<SandboxEngine>,
        with_policy: bool,
    ) -> anyhow::Result<Option<Arc<Gateway>>> {
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
        let options = GatewayOptions {
            engine,
            base_dir,
            ..GatewayOptions::default()
        };
        let gateway = Gateway::new(config, options)
            .await
            .context("starting the gateway")?;
        Ok(Some(gateway))
    }
}
