//! `corral serve`, `corral deploy`, `corral sessions`: the production server
//! and its clients.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use corral_host::{EngineConfig, SessionConfig};
use corral_runtime::RuntimeBuilder;
use corral_server::{Server, ServerConfig};
use serde_json::Value;

use crate::model_args::ModelArgs;
use crate::print;
use crate::tool_args::ToolArgs;

/// Arguments of `corral serve`. Precedence, highest first: flags, `CORRAL_*`
/// environment variables, the `--config` file, built-in defaults.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// TOML file with any of `listen`, `data_dir`, `max_artifact_mib`,
    /// `s3_endpoint_url`, `artifact_roots`, a
    /// `[telemetry]` section (OTLP endpoint, protocol, content capture, ...),
    /// `agent_memory`, `auth_config`.
    #[arg(long, env = "CORRAL_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "CORRAL_LISTEN")]
    listen: Option<SocketAddr>,
    /// Directory for deployed agents and memory [default: corral-data].
    #[arg(long, env = "CORRAL_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// PostgreSQL for agent memory and session journals
    /// (`postgres://user:password@host:port/db`); without it, sled under
    /// the data directory.
    #[arg(
        long,
        value_name = "URL",
        env = "CORRAL_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// With --database-url: the base URL other replicas forward this one's
    /// sessions to (`http://10.0.0.5:8080`; in Kubernetes, the pod's IP)
    /// [default: http://<listen>, which then must name an address].
    #[arg(long, value_name = "URL", env = "CORRAL_ADVERTISE_URL")]
    advertise_url: Option<String>,
    /// The compile cache (built-in tools, gateway WASM tools; deployed
    /// agents are precompiled into the data directory).
    #[command(flatten)]
    cache: crate::cache_args::CacheArgs,
    /// Largest accepted agent component, in MiB [default: 64].
    #[arg(long, env = "CORRAL_MAX_ARTIFACT_MIB")]
    max_artifact_mib: Option<usize>,
    /// Memory resource agents use through the `memory` interface (created
    /// when absent); AgentCore Memory's API is served either way [default: agents].
    #[arg(long, env = "CORRAL_AGENT_MEMORY")]
    agent_memory: Option<String>,
    /// Inbound authentication, JSON: `{"apiKeys": [{"name", "key" | "keyEnv"}],
    /// "jwt": {…}}` (the gateway's `inboundAuth` shape). Every route but
    /// `/ping` then needs `x-api-key` or `Authorization: Bearer`.
    #[arg(long, env = "CORRAL_AUTH_CONFIG")]
    auth_config: Option<PathBuf>,
    /// S3-compatible endpoint `CreateAgentRuntime` fetches `s3://` artifacts
    /// from (MinIO, moto, …) [default: AWS S3, credentials from the
    /// environment].
    #[arg(long, env = "CORRAL_S3_ENDPOINT_URL")]
    s3_endpoint_url: Option<String>,
    /// Directory `file://` artifacts may be read from (repeatable); without
    /// one, `file://` artifacts are refused.
    #[arg(long = "artifact-root", value_name = "DIR")]
    artifact_roots: Vec<PathBuf>,
    /// Let gateway targets created through the control-plane API reach into
    /// this host: stdio MCP servers (commands run here), files read from
    /// here, Lambda functions called with this process's AWS credentials,
    /// WASM tools with their own limits [default: off; callers then get
    /// inline OpenAPI documents, HTTP MCP servers and built-in tools].
    #[arg(long, env = "CORRAL_ALLOW_HOST_GATEWAY_TARGETS")]
    allow_host_gateway_targets: bool,
    /// Live sessions at once; past it idle sessions of the same agent are
    /// reclaimed, oldest first, else the invocation fails with
    /// `ServiceQuotaExceededException` [default: 1000].
    #[arg(long, env = "CORRAL_MAX_SESSIONS")]
    max_sessions: Option<usize>,
    /// Live sessions one agent may hold [default: unlimited].
    #[arg(long, env = "CORRAL_MAX_SESSIONS_PER_AGENT")]
    max_sessions_per_agent: Option<usize>,
    /// Live sessions one caller (authenticated principal or API key name, else
    /// peer IP) may hold; past it `ThrottlingException` [default: unlimited].
    #[arg(long, env = "CORRAL_MAX_SESSIONS_PER_CALLER")]
    max_sessions_per_caller: Option<usize>,
    /// Guest memory all live sessions may reserve (each reserves its memory
    /// cap), in MiB [default: 3/4 of physical memory or of the cgroup limit].
    #[arg(long, env = "CORRAL_GUEST_MEMORY_BUDGET_MIB")]
    guest_memory_budget_mib: Option<usize>,
    /// Memory cap of one session's sandbox, in MiB [default: 128].
    #[arg(long, env = "CORRAL_SESSION_MEMORY_MIB")]
    session_memory_mib: Option<usize>,
    /// Threads that run guest code, apart from the server's I/O threads
    /// [default: the number of CPUs].
    #[arg(long, env = "CORRAL_GUEST_THREADS")]
    guest_threads: Option<usize>,
    /// CPU time an invocation may use on the I/O thread that received it
    /// before it moves to the guest threads, in microseconds; 0 moves every
    /// invocation at once [default: 200].
    #[arg(long, env = "CORRAL_GUEST_INLINE_US")]
    guest_inline_us: Option<u64>,
    /// Guest CPU time one invocation may use, in milliseconds [default: 60000].
    #[arg(long, env = "CORRAL_SESSION_CPU_MS")]
    session_cpu_ms: Option<u64>,
    /// Journal every session (each invocation and host call, durable before
    /// the response) under `<data_dir>/journal` [default: off].
    #[arg(long, env = "CORRAL_JOURNAL")]
    journal: bool,
    /// Largest journal of one session, in MiB [default: 64].
    #[arg(long, env = "CORRAL_JOURNAL_MAX_MIB")]
    journal_max_mib: Option<u64>,
    /// Days a journal is kept after its last invocation [default: 30].
    #[arg(long, env = "CORRAL_JOURNAL_RETENTION_DAYS")]
    journal_retention_days: Option<u64>,
    /// With --journal, a session idle this many seconds drops its sandbox
    /// and keeps only its journal; its next invocation resumes it by replay
    /// (0: never) [default: 60].
    #[arg(long, env = "CORRAL_HIBERNATE_AFTER_SECS")]
    hibernate_after_secs: Option<u64>,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    tools: ToolArgs,
}

/// The `--config` file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeFile {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    max_artifact_mib: Option<usize>,
    agent_memory: Option<String>,
    auth_config: Option<PathBuf>,
    s3_endpoint_url: Option<String>,
    #[serde(default)]
    artifact_roots: Vec<PathBuf>,
    max_sessions: Option<usize>,
    max_sessions_per_agent: Option<usize>,
    max_sessions_per_caller: Option<usize>,
    guest_memory_budget_mib: Option<usize>,
    session_memory_mib: Option<usize>,
    guest_threads: Option<usize>,
    guest_inline_us: Option<u64>,
    session_cpu_ms: Option<u64>,
    journal: Option<bool>,
    journal_max_mib: Option<u64>,
    journal_retention_days: Option<u64>,
    hibernate_after_secs: Option<u64>,
    #[serde(default)]
    telemetry: corral_telemetry::TelemetryFile,
}

/// Settings after applying flags, environment, file and defaults.
struct ServeSettings {
    listen: SocketAddr,
    data_dir: PathBuf,
    max_artifact_mib: usize,
    agent_memory: String,
    auth_config: Option<PathBuf>,
    artifacts: corral_server::ArtifactConfig,
    sessions: SessionConfig,
    telemetry: corral_telemetry::TelemetryFile,
}

impl ServeArgs {
    /// The config file's `[telemetry]` section and the span store the
    /// server keeps by default (`<data_dir>/traces`).
    pub fn span_settings(&self) -> anyhow::Result<(corral_telemetry::TelemetryFile, PathBuf)> {
        let settings = self.settings()?;
        Ok((settings.telemetry, settings.data_dir.join("traces")))
    }

    fn settings(&self) -> anyhow::Result<ServeSettings> {
        let file: ServeFile = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => ServeFile::default(),
        };
        let sessions = self.session_config(&file)?;
        Ok(ServeSettings {
            listen: self
                .listen
                .or(file.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            data_dir: self
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from("corral-data")),
            max_artifact_mib: self
                .max_artifact_mib
                .or(file.max_artifact_mib)
                .unwrap_or(64),
            agent_memory: self
                .agent_memory
                .clone()
                .or(file.agent_memory)
                .unwrap_or_else(|| "agents".into()),
            auth_config: self.auth_config.clone().or(file.auth_config),
            artifacts: corral_server::ArtifactConfig {
                s3_endpoint_url: self.s3_endpoint_url.clone().or(file.s3_endpoint_url),
                aws: None,
                file_roots: if self.artifact_roots.is_empty() {
                    file.artifact_roots
                } else {
                    self.artifact_roots.clone()
                },
            },
            sessions,
            telemetry: file.telemetry,
        })
    }

    /// The session journal's settings, when journaling is on (flag,
    /// environment or `journal = true` in the file).
    fn journal_config(&self) -> anyhow::Result<Option<corral_journal::JournalConfig>> {
        let file: ServeFile = match &self.config {
            Some(path) => toml::from_str(&std::fs::read_to_string(path)?)?,
            None => ServeFile::default(),
        };
        if !(self.journal || file.journal.unwrap_or(false)) {
            return Ok(None);
        }
        let defaults = corral_journal::JournalConfig::default();
        Ok(Some(corral_journal::JournalConfig {
            max_bytes_per_session: self
                .journal_max_mib
                .or(file.journal_max_mib)
                .map_or(defaults.max_bytes_per_session, |mib| {
                    mib.saturating_mul(1 << 20)
                }),
            retention: Some(
                self.journal_retention_days
                    .or(file.journal_retention_days)
                    .map_or(defaults.retention.unwrap_or_default(), |days| {
                        std::time::Duration::from_secs(days.saturating_mul(24 * 3600))
                    }),
            ),
        }))
    }

    fn session_config(&self, file: &ServeFile) -> anyhow::Result<SessionConfig> {
        let defaults = SessionConfig::default();
        let memory_bytes = match self.session_memory_mib.or(file.session_memory_mib) {
            Some(mib) => mib_to_bytes(mib, "session_memory_mib")?,
            None => defaults.limits.memory_bytes,
        };
        let budget = match self
            .guest_memory_budget_mib
            .or(file.guest_memory_budget_mib)
        {
            Some(mib) => Some(mib_to_bytes(mib, "guest_memory_budget_mib")?),
            None => available_memory_bytes().map(|total| total / 4 * 3),
        };
        let config = SessionConfig {
            max_sessions: self
                .max_sessions
                .or(file.max_sessions)
                .unwrap_or(defaults.max_sessions),
            max_sessions_per_agent: self.max_sessions_per_agent.or(file.max_sessions_per_agent),
            max_sessions_per_caller: self
                .max_sessions_per_caller
                .or(file.max_sessions_per_caller),
            guest_memory_budget: budget,
            guest_threads: self
                .guest_threads
                .or(file.guest_threads)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            guest_inline_budget: self.guest_inline_us.or(file.guest_inline_us).map_or(
                defaults.guest_inline_budget,
                std::time::Duration::from_micros,
            ),
            limits: corral_host::SandboxLimits {
                memory_bytes,
                cpu_time: self
                    .session_cpu_ms
                    .or(file.session_cpu_ms)
                    .map_or(defaults.limits.cpu_time, std::time::Duration::from_millis),
                ..defaults.limits.clone()
            },
            hibernate_after: match self.hibernate_after_secs.or(file.hibernate_after_secs) {
                Some(0) => None,
                Some(secs) => Some(std::time::Duration::from_secs(secs)),
                None => Some(std::time::Duration::from_secs(60)),
            },
            ..defaults
        };
        if config.max_sessions == 0
            || config.guest_threads == 0
            || memory_bytes == 0
            || config.limits.cpu_time.is_zero()
        {
            bail!(
                "max_sessions, guest_threads, session_memory_mib and session_cpu_ms must be at least 1"
            );
        }
        if let Some(budget) = config.guest_memory_budget
            && budget < memory_bytes
        {
            bail!(
                "guest_memory_budget_mib ({} MiB) is smaller than one session's memory cap ({} MiB)",
                budget >> 20,
                memory_bytes >> 20
            );
        }
        Ok(config)
    }
}

/// `mib` MiB in bytes, or an error naming the setting when it overflows.
fn mib_to_bytes(mib: usize, setting: &str) -> anyhow::Result<usize> {
    mib.checked_mul(1 << 20)
        .with_context(|| format!("{setting} = {mib} MiB is too large"))
}

/// The memory this process may use: physical memory (`/proc/meminfo`), or
/// the cgroup v2 limit (`memory.max`) when a container sets a lower one.
fn available_memory_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: usize = line.split_whitespace().nth(1)?.parse().ok()?;
    let physical = kib.checked_mul(1024)?;
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|max| max.trim().parse::<usize>().ok());
    Some(cgroup.map_or(physical, |limit| limit.min(physical)))
}

fn authenticator(path: &std::path::Path) -> anyhow::Result<Arc<corral_gateway::Authenticator>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: corral_gateway::config::InboundAuthConfig =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let kind = if config.jwt.is_some() {
        corral_gateway::AuthorizerKind::CustomJwt
    } else {
        corral_gateway::AuthorizerKind::ApiKey
    };
    let base = path.parent().unwrap_or(std::path::Path::new("."));
    Ok(Arc::new(corral_gateway::Authenticator::new(
        kind, &config, base,
    )?))
}

/// Serves until Ctrl-C or SIGTERM, then drains in-flight invocations.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let settings = args.settings()?;
    let auth = settings
        .auth_config
        .as_deref()
        .map(authenticator)
        .transpose()?;
    // Pool slots for every session plus the gateway's WASM tool sandboxes,
    // each as large as a session's memory cap.
    let engine = EngineConfig::default();
    let mut runtime = RuntimeBuilder::new()
        .engine(EngineConfig {
            max_instances: u32::try_from(settings.sessions.max_sessions.saturating_add(64))
                .unwrap_or(u32::MAX),
            max_memory_bytes: engine
                .max_memory_bytes
                .max(settings.sessions.limits.memory_bytes),
            cache_dir: args.cache.dir(),
            ..engine
        })
        .sessions(settings.sessions.clone())
        .model(args.model.provider().await?)
        .memory(settings.data_dir.join("memory"), &settings.agent_memory);
    runtime = args.tools.configure(runtime).await?;
    if let Some(url) = &args.database_url {
        runtime = runtime.database(url.clone());
    }
    // Replicas move sessions by replaying journals: a database journals.
    let journal = match args.journal_config()? {
        None if args.database_url.is_some() => Some(corral_journal::JournalConfig::default()),
        journal => journal,
    };
    if let Some(journal) = journal {
        runtime = runtime.journal(settings.data_dir.join("journal"), journal);
    }
    let cluster = match &args.database_url {
        Some(_) => Some(corral_cluster::ClusterConfig::new(advertised_url(
            args.advertise_url.as_deref(),
            settings.listen,
        )?)),
        None => None,
    };
    // Host checks guard loopback servers against DNS rebinding; a server
    // listening beyond loopback is reached by names this process cannot know.
    let mcp_hosts = if settings.listen.ip().is_loopback() {
        corral_gateway::HttpOptions::default()
    } else {
        corral_gateway::HttpOptions {
            allowed_hosts: vec!["*".into()],
        }
    };
    runtime = runtime.gateway_resources(
        settings.data_dir.join("gateways"),
        corral_gateway_control::ControlOptions {
            http: mcp_hosts,
            allow_host_targets: args.allow_host_gateway_targets,
        },
    );
    let runtime = runtime
        .build()
        .await
        .with_context(|| format!("starting on {}", settings.data_dir.display()))?;
    let server = Server::new(
        &runtime,
        &ServerConfig {
            data_dir: settings.data_dir.clone(),
            max_artifact_bytes: settings.max_artifact_mib << 20,
            auth,
            // On loopback, only loopback names: no DNS rebinding.
            allowed_hosts: settings
                .listen
                .ip()
                .is_loopback()
                .then(|| ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec()),
            artifacts: settings.artifacts.clone(),
            cluster,
        },
    )?;
    let listener = Server::bind(settings.listen).await?;
    eprintln!(
        "{} on http://{} (data in {}, agent memory {})",
        print::bold("corral serve"),
        listener.local_addr()?,
        settings.data_dir.display(),
        runtime.agent_memory_id().unwrap_or_default()
    );
    server
        .serve(listener, crate::signal::shutdown_signal())
        .await?;
    runtime.shutdown();
    eprintln!("{}", print::dim("drained and stopped"));
    Ok(())
}

/// The base URL other replicas reach this one at.
fn advertised_url(given: Option<&str>, listen: SocketAddr) -> anyhow::Result<String> {
    if let Some(url) = given {
        let parsed = reqwest::Url::parse(url)
            .with_context(|| format!("--advertise-url {url} is not a URL"))?;
        anyhow::ensure!(
            parsed.scheme() == "http" || parsed.scheme() == "https",
            "--advertise-url {url} must be http:// or https://"
        );
        return Ok(url.trim_end_matches('/').to_string());
    }
    anyhow::ensure!(
        !listen.ip().is_unspecified() && listen.port() != 0,
        "listening on {listen}, other replicas cannot know where to reach this one: give --advertise-url (CORRAL_ADVERTISE_URL)"
    );
    Ok(format!("http://{listen}"))
}

/// Arguments of `corral deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The agent component (or `--harness`).
    #[arg(required_unless_present = "harness")]
    wasm: Option<PathBuf>,
    /// Deploy Corral's no-code harness agent configured by this file
    /// (system prompt, model id, tool allow-list, steps, memory, output).
    #[arg(long, value_name = "FILE", conflicts_with = "wasm")]
    harness: Option<PathBuf>,
    /// Runtime name.
    #[arg(long)]
    name: String,
    /// Server URL.
    #[arg(long, env = "CORRAL_URL", default_value = "http://127.0.0.1:8080")]
    server: String,
    /// Description of this version.
    #[arg(long)]
    description: Option<String>,
}

/// Uploads a component as a new version.
pub async fn deploy(args: DeployArgs) -> anyhow::Result<()> {
    let (bytes, env) = match (&args.wasm, &args.harness) {
        (_, Some(harness)) => {
            let config = corral_harness::load(harness)?;
            (
                corral_harness::COMPONENT.to_vec(),
                Some(format!(
                    "{}={}",
                    corral_harness::ENV_VAR,
                    config.to_env_value()
                )),
            )
        }
        (Some(wasm), None) => (
            std::fs::read(wasm).with_context(|| format!("reading {}", wasm.display()))?,
            None,
        ),
        (None, None) => bail!("give an agent component or --harness FILE"),
    };
    let mut request = reqwest::Client::new()
        .post(format!(
            "{}/corral/runtimes/{}",
            args.server.trim_end_matches('/'),
            args.name
        ))
        .header("content-type", "application/wasm")
        .body(bytes);
    if let Some(d) = &args.description {
        request = request.query(&[("description", d)]);
    }
    if let Some(env) = &env {
        request = request.query(&[("env", env)]);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("reaching {}", args.server))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "deploy refused ({status}): {}",
            body["message"].as_str().unwrap_or("no message")
        );
    }
    println!(
        "deployed {} version {}\n  {}",
        body["agentRuntimeName"].as_str().unwrap_or_default(),
        body["agentRuntimeVersion"].as_str().unwrap_or_default(),
        body["agentRuntimeArn"].as_str().unwrap_or_default()
    );
    Ok(())
}

/// `corral sessions`.
#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List live sessions.
    List {
        /// Server URL.
        #[arg(long, env = "CORRAL_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Stop a session and free its sandbox.
    Stop {
        /// Session id.
        session: String,
        /// Also delete the session's journal.
        #[arg(long)]
        purge: bool,
        /// Server URL.
        #[arg(long, env = "CORRAL_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
    /// Print a session's journal as JSON lines (one entry per line).
    Journal {
        /// Session id.
        session: String,
        /// First entry to print.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Most entries to print.
        #[arg(long, default_value_t = 1_000)]
        limit: u64,
        /// Server URL.
        #[arg(long, env = "CORRAL_URL", default_value = "http://127.0.0.1:8080")]
        server: String,
    },
}

/// Lists or stops sessions on a server.
pub async fn sessions(command: SessionsCommand) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    match command {
        SessionsCommand::List { server } => {
            let body: Value = client
                .get(format!("{}/corral/sessions", server.trim_end_matches('/')))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let sessions: Vec<&Value> = body["sessions"].as_array().into_iter().flatten().collect();
            // Replicas on one database name each session's holder.
            let replicas = sessions.iter().any(|s| s["replica"].is_string());
            println!(
                "{:<40} {:<16} {:>7} {:<10} {:>8} {:>10}{}",
                "SESSION",
                "AGENT",
                "VERSION",
                "STATE",
                "AGE(s)",
                "MEMORY KiB",
                if replicas { "  REPLICA" } else { "" }
            );
            for s in sessions {
                let replica = s["replica"].as_str().map(|r| format!("  {r}"));
                println!(
                    "{:<40} {:<16} {:>7} {:<10} {:>8.0} {:>10}{}",
                    s["runtimeSessionId"].as_str().unwrap_or_default(),
                    s["agentRuntimeName"].as_str().unwrap_or_default(),
                    s["agentRuntimeVersion"].as_str().unwrap_or_default(),
                    s["state"].as_str().unwrap_or_default(),
                    s["ageSeconds"].as_f64().unwrap_or_default(),
                    s["memoryBytes"].as_u64().unwrap_or_default() / 1024,
                    replica.unwrap_or_default()
                );
            }
        }
        SessionsCommand::Stop {
            session,
            purge,
            server,
        } => {
            let response = client
                .delete(format!(
                    "{}/corral/sessions/{session}",
                    server.trim_end_matches('/')
                ))
                .query(&[("purge", purge)])
                .send()
                .await?;
            if !response.status().is_success() {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                bail!("{}", body["message"].as_str().unwrap_or("stop failed"));
            }
            println!("stopped {session}");
        }
        SessionsCommand::Journal {
            session,
            offset,
            limit,
            server,
        } => {
            let response = client
                .get(format!(
                    "{}/corral/sessions/{session}/journal",
                    server.trim_end_matches('/')
                ))
                .query(&[("offset", offset), ("limit", limit)])
                .send()
                .await?;
            if !response.status().is_success() {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                bail!("{}", body["message"].as_str().unwrap_or("no journal"));
            }
            print!("{}", response.text().await?);
        }
    }
    Ok(())
}
