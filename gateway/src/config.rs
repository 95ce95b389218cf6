//! Gateway configuration, in the shapes of AgentCore's `CreateGateway` and
//! `CreateGatewayTarget` (botocore `bedrock-agentcore-control`), as TOML or
//! JSON. Corral additions are marked; they are additive, so AgentCore target
//! definitions load unchanged.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::error::GatewayError;

/// A gateway: its targets, credentials, inbound auth and limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatewayConfig {
    /// Gateway name.
    #[serde(default = "default_name")]
    pub name: String,
    /// Gateway id or ARN (the policy resource); defaults to the name.
    #[serde(default)]
    pub gateway_id: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// `NONE`, `CUSTOM_JWT` or (Corral) `API_KEY`; inferred from `inboundAuth` when absent.
    #[serde(default)]
    pub authorizer_type: Option<String>,
    /// MCP protocol settings.
    #[serde(default)]
    pub protocol_configuration: ProtocolConfiguration,
    /// Tool targets.
    #[serde(default)]
    pub targets: Vec<TargetSpec>,
    /// Corral: local outbound credential providers that targets reference by
    /// `providerArn` (AgentCore keeps these in AgentCore Identity).
    #[serde(default)]
    pub credential_providers: Vec<CredentialProviderSpec>,
    /// Corral: inbound authentication.
    #[serde(default)]
    pub inbound_auth: InboundAuthConfig,
    /// Corral: per-call limits.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Corral: AWS settings for Lambda targets.
    #[serde(default)]
    pub aws: AwsSettings,
    /// The attached policy engine (AgentCore's `policyEngineConfiguration`).
    #[serde(default)]
    pub policy_engine_configuration: Option<PolicyEngineAttachment>,
}

/// `policyEngineConfiguration`: AgentCore's `arn` and `mode`, plus Corral's
/// policy directory and audit log.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyEngineAttachment {
    /// Policy engine ARN (informational; the engine is loaded from `path`).
    #[serde(default)]
    pub arn: Option<String>,
    /// ENFORCE (default) or LOG_ONLY.
    #[serde(default)]
    pub mode: corral_policy::EngineMode,
    /// Corral: directory of `.cedar` policies (and an optional `engine.json`).
    pub path: PathBuf,
    /// Corral: file decisions are appended to as JSON lines.
    #[serde(default)]
    pub audit_log: Option<PathBuf>,
}

fn default_name() -> String {
    "corral-gateway".to_string()
}

/// `protocolConfiguration`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProtocolConfiguration {
    /// MCP settings.
    #[serde(default)]
    pub mcp: McpGatewayConfiguration,
}

/// `protocolConfiguration.mcp`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct McpGatewayConfiguration {
    /// Protocol versions served (informational; rmcp negotiates).
    #[serde(default)]
    pub supported_versions: Vec<String>,
    /// Instructions returned to clients.
    #[serde(default)]
    pub instructions: Option<String>,
    /// `SEMANTIC` enables the built-in search tool.
    #[serde(default)]
    pub search_type: Option<String>,
}

/// One target (`CreateGatewayTarget`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    /// Target name; tools are exposed as `<name>___<tool>`.
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// What the target is.
    pub target_configuration: TargetConfiguration,
    /// Outbound credentials (at most one, as AgentCore).
    #[serde(default)]
    pub credential_provider_configurations: Vec<CredentialProviderConfiguration>,
    /// Corral: concurrent calls allowed to this target (overrides the default).
    #[serde(default)]
    pub max_concurrent_calls: Option<usize>,
}

/// `targetConfiguration` (union).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConfiguration {
    /// MCP-exposed targets.
    #[serde(default)]
    pub mcp: Option<McpTargetConfiguration>,
    /// AgentCore Runtime HTTP targets (not supported by Corral's gateway).
    #[serde(default)]
    pub http: Option<Value>,
}

/// `targetConfiguration.mcp` (union).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum McpTargetConfiguration {
    /// An OpenAPI 3.0/3.1 document.
    OpenApiSchema(ApiSchemaConfiguration),
    /// A Smithy model (not supported).
    SmithyModel(Value),
    /// An AWS Lambda function with inline tool definitions.
    Lambda(LambdaTargetConfiguration),
    /// An upstream MCP server.
    McpServer(McpServerTargetConfiguration),
    /// An API Gateway REST API (not supported).
    ApiGateway(Value),
    /// Corral: a WebAssembly tool component.
    Wasm(WasmTargetConfiguration),
}

/// Where a schema document comes from (union).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ApiSchemaConfiguration {
    /// The document itself (JSON or YAML text).
    InlinePayload(String),
    /// An S3 object (not supported: no AWS account is assumed).
    S3(Value),
    /// Corral: a file path, relative to the configuration file.
    Path(PathBuf),
}

/// `mcp.lambda`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaTargetConfiguration {
    /// Function ARN (or name).
    pub lambda_arn: String,
    /// Tools the function implements.
    pub tool_schema: ToolSchema,
}

/// `toolSchema` (union).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ToolSchema {
    /// Inline tool definitions.
    InlinePayload(Vec<ToolDefinition>),
    /// An S3 object (not supported).
    S3(Value),
    /// Corral: a JSON file with the definitions.
    Path(PathBuf),
}

/// One inline tool definition.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolDefinition {
    /// Tool name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Input schema (AgentCore's `SchemaDefinition`, a JSON Schema subset).
    pub input_schema: Value,
    /// Output schema.
    #[serde(default)]
    pub output_schema: Option<Value>,
}

/// `mcp.mcpServer`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct McpServerTargetConfiguration {
    /// Streamable HTTP endpoint.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Corral: command of a local stdio server.
    #[serde(default)]
    pub command: Option<String>,
    /// Corral: its arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Corral: its environment (nothing else is inherited but `PATH`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Listing mode (`DEFAULT`, `DYNAMIC`).
    #[serde(default)]
    pub listing_mode: Option<String>,
    /// Tool schema override (unused: tools are listed from the server).
    #[serde(default)]
    pub mcp_tool_schema: Option<Value>,
    /// Resource priority (unused).
    #[serde(default)]
    pub resource_priority: Option<u32>,
}

/// Corral: `mcp.wasm`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WasmTargetConfiguration {
    /// A built-in tool component (`calculator`, `json`).
    #[serde(default)]
    pub builtin: Option<String>,
    /// A component file, relative to the configuration file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// Memory cap of each call's sandbox, in MiB (default 64).
    #[serde(default)]
    pub memory_mib: Option<usize>,
    /// CPU time of each call, in milliseconds (default 5000).
    #[serde(default)]
    pub cpu_ms: Option<u64>,
}

/// `credentialProviderConfigurations[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProviderConfiguration {
    /// `GATEWAY_IAM_ROLE`, `OAUTH`, `API_KEY`, ...
    pub credential_provider_type: String,
    /// Provider details.
    #[serde(default)]
    pub credential_provider: Option<CredentialProvider>,
}

/// `credentialProvider` (union).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CredentialProvider {
    /// OAuth2 provider reference.
    #[serde(default)]
    pub oauth_credential_provider: Option<OAuthCredentialProvider>,
    /// API key provider reference.
    #[serde(default)]
    pub api_key_credential_provider: Option<ApiKeyCredentialProvider>,
    /// IAM (SigV4) provider (Lambda targets use the AWS chain).
    #[serde(default)]
    pub iam_credential_provider: Option<Value>,
}

/// `oauthCredentialProvider`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OAuthCredentialProvider {
    /// Provider ARN (its last path segment names a local provider).
    pub provider_arn: String,
    /// Scopes to request.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Extra token-request parameters.
    #[serde(default)]
    pub custom_parameters: BTreeMap<String, String>,
    /// Grant type; only `CLIENT_CREDENTIALS` is supported.
    #[serde(default)]
    pub grant_type: Option<String>,
}

/// `apiKeyCredentialProvider`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCredentialProvider {
    /// Provider ARN (its last path segment names a local provider).
    pub provider_arn: String,
    /// Header or query parameter name (default `Authorization`).
    #[serde(default)]
    pub credential_parameter_name: Option<String>,
    /// Prefix before the key (e.g. `Bearer`).
    #[serde(default)]
    pub credential_prefix: Option<String>,
    /// `HEADER` (default) or `QUERY_PARAMETER`.
    #[serde(default)]
    pub credential_location: Option<String>,
}

/// Corral: a local credential provider.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CredentialProviderSpec {
    /// Name matched against the last segment of a target's `providerArn`.
    pub name: String,
    /// `API_KEY`, `BEARER` or `OAUTH`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The API key or bearer token.
    #[serde(default)]
    pub secret: Option<String>,
    /// Environment variable holding the key, token or client secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// OAuth2 token endpoint.
    #[serde(default)]
    pub token_endpoint: Option<String>,
    /// OAuth2 client id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// OAuth2 client secret.
    #[serde(default)]
    pub client_secret: Option<String>,
}

/// Corral: inbound authentication.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InboundAuthConfig {
    /// Static API keys (sent as `x-api-key` or `Authorization: Bearer`).
    #[serde(default)]
    pub api_keys: Vec<ApiKeySpec>,
    /// JWT bearer tokens.
    #[serde(default)]
    pub jwt: Option<JwtConfig>,
}

/// One inbound API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeySpec {
    /// Name; becomes the caller's `IamEntity` id.
    pub name: String,
    /// The key.
    #[serde(default)]
    pub key: Option<String>,
    /// Environment variable holding the key.
    #[serde(default)]
    pub key_env: Option<String>,
}

/// JWT validation settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JwtConfig {
    /// HS256 shared secret.
    #[serde(default)]
    pub hs256_secret: Option<String>,
    /// Environment variable holding the HS256 secret.
    #[serde(default)]
    pub hs256_secret_env: Option<String>,
    /// JWKS file with RS256 public keys.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// JWKS URL with RS256 public keys (fetched and cached).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Required `iss`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Accepted `aud` values (AgentCore's `allowedAudience`).
    #[serde(default)]
    pub allowed_audience: Vec<String>,
    /// Accepted `client_id` values (AgentCore's `allowedClients`).
    #[serde(default)]
    pub allowed_clients: Vec<String>,
    /// Clock skew tolerated, in seconds.
    #[serde(default = "default_leeway")]
    pub leeway_seconds: u64,
}

fn default_leeway() -> u64 {
    30
}

/// Corral: limits on calls.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LimitsConfig {
    /// Per-call timeout in milliseconds.
    #[serde(default = "default_timeout_ms")]
    pub call_timeout_ms: u64,
    /// How long one attempt to connect to an MCP server may take, in
    /// milliseconds (a stdio server may take seconds to start); failed
    /// attempts are retried in the background with backoff.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Largest tool response, in bytes.
    #[serde(default = "default_response_bytes")]
    pub max_response_bytes: usize,
    /// Concurrent calls per target.
    #[serde(default = "default_concurrency")]
    pub max_concurrent_calls_per_target: usize,
    /// Tools per `tools/list` page.
    #[serde(default = "default_page_size")]
    pub page_size: usize,
    /// Largest MCP request body, in bytes.
    #[serde(default = "default_request_bytes")]
    pub max_request_bytes: usize,
}

fn default_timeout_ms() -> u64 {
    30_000
}
fn default_connect_timeout_ms() -> u64 {
    10_000
}
fn default_response_bytes() -> usize {
    4 << 20
}
fn default_concurrency() -> usize {
    64
}
fn default_page_size() -> usize {
    100
}
fn default_request_bytes() -> usize {
    4 << 20
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            call_timeout_ms: default_timeout_ms(),
            connect_timeout_ms: default_connect_timeout_ms(),
            max_response_bytes: default_response_bytes(),
            max_concurrent_calls_per_target: default_concurrency(),
            page_size: default_page_size(),
            max_request_bytes: default_request_bytes(),
        }
    }
}

/// Corral: AWS settings for Lambda targets (credentials: standard chain).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsSettings {
    /// Region (defaults to the chain, then the function ARN's region).
    #[serde(default)]
    pub region: Option<String>,
    /// Lambda endpoint override.
    #[serde(default)]
    pub lambda_endpoint_url: Option<String>,
    /// Named profile.
    #[serde(default)]
    pub profile: Option<String>,
}

impl TargetSpec {
    /// A target serving a built-in WASM tool component under its own name.
    pub fn builtin(tool: &corral_builtin_tools::BuiltinTool) -> Result<Self, GatewayError> {
        serde_json::from_value(serde_json::json!({
            "name": tool.target,
            "description": tool.description,
            "targetConfiguration": {"mcp": {"wasm": {"builtin": tool.target}}},
        }))
        .map_err(|e| GatewayError::Config(e.to_string()))
    }

    /// One target per built-in tool component.
    pub fn all_builtins() -> Result<Vec<Self>, GatewayError> {
        corral_builtin_tools::BUILTIN_TOOLS
            .iter()
            .map(Self::builtin)
            .collect()
    }
}

impl GatewayConfig {
    /// A gateway serving only the named built-in tools (`calculator`, `json`).
    pub fn builtin_tools(names: &[&str]) -> Result<Self, GatewayError> {
        let mut config = Self::parse("{}", ConfigFormat::Json)?;
        for name in names {
            let tool = corral_builtin_tools::builtin(name)
                .ok_or_else(|| GatewayError::Config(format!("no built-in tool named `{name}`")))?;
            config.targets.push(TargetSpec::builtin(tool)?);
        }
        Ok(config)
    }

    /// Parses TOML (`.toml`) or JSON (anything else) text.
    pub fn parse(text: &str, format: ConfigFormat) -> Result<Self, GatewayError> {
        match format {
            ConfigFormat::Toml => {
                toml::from_str(text).map_err(|e| GatewayError::Config(e.to_string()))
            }
            ConfigFormat::Json => {
                serde_json::from_str(text).map_err(|e| GatewayError::Config(e.to_string()))
            }
        }
    }

    /// Reads a configuration file; returns it and its directory (the base of relative paths).
    pub fn load(path: &Path) -> Result<(Self, PathBuf), GatewayError> {
        let text = std::fs::read_to_string(path).map_err(|source| GatewayError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let format = if path.extension().is_some_and(|e| e == "toml") {
            ConfigFormat::Toml
        } else {
            ConfigFormat::Json
        };
        let config = Self::parse(&text, format)
            .map_err(|e| GatewayError::Config(format!("{}: {e}", path.display())))?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok((config, base))
    }

    /// The resource id policies see.
    pub fn resource_id(&self) -> &str {
        self.gateway_id.as_deref().unwrap_or(&self.name)
    }

    /// Whether the search tool is enabled.
    pub fn search_enabled(&self) -> bool {
        self.protocol_configuration
            .mcp
            .search_type
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("SEMANTIC"))
    }
}

/// How inbound requests authenticate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizerKind {
    /// No authentication (local use).
    None,
    /// JWT bearer tokens (and any configured API keys).
    CustomJwt,
    /// Static API keys.
    ApiKey,
}

impl GatewayConfig {
    /// Whether any target is a WASM component (and so needs a sandbox engine).
    pub fn has_wasm_targets(&self) -> bool {
        self.targets.iter().any(|target| {
            matches!(
                target.target_configuration.mcp,
                Some(McpTargetConfiguration::Wasm(_))
            )
        })
    }

    /// The authorizer: `authorizerType`, else inferred from `inboundAuth`.
    pub fn authorizer(&self) -> Result<AuthorizerKind, GatewayError> {
        match self.authorizer_type.as_deref() {
            Some("NONE") => Ok(AuthorizerKind::None),
            Some("CUSTOM_JWT") => Ok(AuthorizerKind::CustomJwt),
            Some("API_KEY") => Ok(AuthorizerKind::ApiKey),
            Some(other) => Err(GatewayError::Config(format!(
                "authorizerType {other:?} is not supported (NONE, CUSTOM_JWT, API_KEY)"
            ))),
            None if self.inbound_auth.jwt.is_some() => Ok(AuthorizerKind::CustomJwt),
            None if !self.inbound_auth.api_keys.is_empty() => Ok(AuthorizerKind::ApiKey),
            None => Ok(AuthorizerKind::None),
        }
    }
}

/// Configuration text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigFormat {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_tools_config_names_known_components_only() {
        let config = GatewayConfig::builtin_tools(&["calculator"]).unwrap();
        assert_eq!(config.targets.len(), 1);
        assert_eq!(config.targets[0].name, "calculator");
        assert_eq!(TargetSpec::all_builtins().unwrap().len(), 2);
        assert!(matches!(
            GatewayConfig::builtin_tools(&["shell"]),
            Err(GatewayError::Config(message)) if message.contains("shell")
        ));
    }

    #[test]
    fn parses_agentcore_shaped_json() {
        let config = GatewayConfig::parse(
            r#"{
              "name": "gw",
              "protocolConfiguration": {"mcp": {"searchType": "SEMANTIC"}},
              "targets": [{
                "name": "orders",
                "targetConfiguration": {"mcp": {"lambda": {
                  "lambdaArn": "arn:aws:lambda:us-east-1:123456789012:function:orders",
                  "toolSchema": {"inlinePayload": [{"name": "get_order", "description": "d",
                     "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}}]}
                }}},
                "credentialProviderConfigurations": [{"credentialProviderType": "GATEWAY_IAM_ROLE"}]
              }, {
                "name": "pets",
                "targetConfiguration": {"mcp": {"openApiSchema": {"inlinePayload": "openapi: 3.0.0"}}},
                "credentialProviderConfigurations": [{"credentialProviderType": "API_KEY", "credentialProvider": {
                  "apiKeyCredentialProvider": {"providerArn": "arn:aws:agentcore:us-east-1:123456789012:token-vault/default/apikeycredentialprovider/pets",
                  "credentialParameterName": "x-api-key", "credentialLocation": "HEADER"}}}]
              }]
            }"#,
            ConfigFormat::Json,
        )
        .unwrap();
        assert!(config.search_enabled());
        assert_eq!(config.targets.len(), 2);
        assert!(matches!(
            config.targets[0].target_configuration.mcp,
            Some(McpTargetConfiguration::Lambda(_))
        ));
    }

    #[test]
    fn rejects_unknown_fields_with_a_message() {
        let err = GatewayConfig::parse("nmae = 'x'", ConfigFormat::Toml).unwrap_err();
        assert!(err.to_string().contains("nmae"), "{err}");
    }
}
