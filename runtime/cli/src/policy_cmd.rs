//! `corral policy`: validate Cedar policies against a tool catalogue, print
//! the generated schema, and evaluate a request offline.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use corral_policy::{AuthorizationRequest, EngineMode, PolicyBundle, PolicyEngine, ToolSignature};
use serde_json::Value;

use crate::print;
use crate::tool_args::ToolArgs;

/// `corral policy …`.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory against the tool catalogue's Cedar schema.
    Validate(ValidateArgs),
    /// Evaluate one authorization request and print the decision and reasons.
    Test(TestArgs),
    /// Print the Cedar schema generated from the tool catalogue.
    Schema(CatalogArgs),
}

/// Where the tool catalogue comes from.
#[derive(Debug, Args)]
pub struct CatalogArgs {
    #[command(flatten)]
    tools: ToolArgs,
    /// MCP `tools/list` result (JSON: `{"tools": [...]}`, a JSON-RPC response, or an array).
    #[arg(long = "tools", value_name = "FILE")]
    tools_file: Option<PathBuf>,
}

/// Arguments of `corral policy validate`.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Directory of `.cedar` policies (and an optional `engine.json`).
    dir: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
}

/// Arguments of `corral policy test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Directory of `.cedar` policies (and an optional `engine.json`).
    dir: PathBuf,
    /// The request: `{"principal": {"type": "OAuthUser", "id": …, "claims": {…}},
    /// "tool": "<target>___<tool>", "gateway": "<id or ARN>", "input": {…}, "context": {…}}`.
    #[arg(long, value_name = "FILE")]
    request: PathBuf,
    #[command(flatten)]
    catalog: CatalogArgs,
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Validate(args) => {
            let tools = catalog(&args.catalog).await?;
            let engine = load(&args.dir, &tools)?;
            let report = engine.report();
            println!(
                "{} {} policies in '{}' validate against {} tools",
                print::bold("ok"),
                engine.bundle().policies.len(),
                engine.name(),
                tools.len()
            );
            for finding in &report.ignored_findings {
                println!("{} {finding}", print::dim("ignored (IGNORE_ALL_FINDINGS):"));
            }
            for tool in &report.untyped_tools {
                println!("{} {tool}", print::dim("input not typed:"));
            }
            Ok(())
        }
        PolicyCommand::Test(args) => {
            let tools = catalog(&args.catalog).await?;
            let engine = load(&args.dir, &tools)?;
            let text = std::fs::read_to_string(&args.request)
                .with_context(|| format!("reading {}", args.request.display()))?;
            let request: AuthorizationRequest = serde_json::from_str(&text).with_context(|| {
                format!("{} is not an authorization request", args.request.display())
            })?;
            let evaluation = engine.evaluate(&request);
            let decision = &evaluation.decision;
            println!(
                "{}",
                print::bold(match decision.effect {
                    corral_policy::Effect::Allow => "ALLOW",
                    corral_policy::Effect::Deny => "DENY",
                })
            );
            println!("reason: {}", decision.reason);
            if !decision.policy_ids.is_empty() {
                println!("determining policies: {}", decision.policy_ids.join(", "));
            }
            if let Some(effect) = evaluation.log_only_decision {
                println!(
                    "with LOG_ONLY policies: {effect:?} ({})",
                    evaluation.log_only_policies.join(", ")
                );
            }
            for error in &evaluation.errors {
                println!("error: {error}");
            }
            println!(
                "{}",
                print::dim(&format!("evaluated in {:.1} µs", evaluation.micros))
            );
            Ok(())
        }
        PolicyCommand::Schema(args) => {
            let tools = catalog(&args).await?;
            let schema = corral_policy::CatalogSchema::generate(&tools)?;
            print!("{}", schema.text);
            Ok(())
        }
    }
}

fn load(dir: &Path, tools: &[ToolSignature]) -> anyhow::Result<PolicyEngine> {
    let bundle = PolicyBundle::load_dir(dir)?;
    Ok(PolicyEngine::new(bundle, EngineMode::Enforce, tools)?)
}

async fn catalog(args: &CatalogArgs) -> anyhow::Result<Vec<ToolSignature>> {
    let mut tools = Vec::new();
    if let Some(gateway) = args.tools.gateway_with_policy(None, false).await? {
        tools.extend(gateway.tool_signatures());
    }
    if let Some(path) = &args.tools_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let list = value
            .pointer("/result/tools")
            .or_else(|| value.get("tools"))
            .unwrap_or(&value);
        let Some(list) = list.as_array() else {
            bail!("{} holds no tool list", path.display());
        };
        for tool in list {
            let Some(name) = tool.get("name").and_then(Value::as_str) else {
                bail!("{}: a tool has no name", path.display());
            };
            let schema = tool.get("inputSchema").cloned().unwrap_or(Value::Null);
            tools.push(ToolSignature::new(name, schema));
        }
    }
    if tools.is_empty() {
        bail!("no tools to validate against: give --gateway FILE, --builtin-tools or --tools FILE");
    }
    Ok(tools)
}
