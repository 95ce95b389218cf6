//! Helpers shared by Corral's integration tests: where `.ci/test` installed
//! the real peers (the Python `mcp` SDK and `boto3` venv, npm MCP servers).

use std::path::PathBuf;

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python of `.ci/test`'s venv (`CORRAL_TEST_PYTHON` overrides it).
///
/// # Panics
/// When it is missing, naming the command that installs it (`needs` says
/// what the test wants from it).
pub fn ci_python(needs: &str) -> PathBuf {
    let path = std::env::var_os("CORRAL_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/ci-venv/bin/python"));
    assert!(
        path.exists(),
        "{} not found: run .ci/test, which installs {needs}",
        path.display()
    );
    path
}

/// A server child process (e.g. `corral serve`) on a loopback port, killed
/// when dropped.
pub struct ChildServer {
    /// The process.
    pub child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// AWS settings with dummy static credentials in `us-east-1`, for local
/// stand-ins of AWS services (a Lambda server, moto's S3).
pub fn dummy_aws() -> aws_config::SdkConfig {
    use aws_credential_types::Credentials;
    use aws_credential_types::provider::SharedCredentialsProvider;
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "AKIDTEST", "secret", None, None, "test",
        )))
        .build()
}

/// Runs `python script args…` with dummy AWS credentials and region in its
/// environment (for AWS SDKs pointed at local servers).
///
/// # Panics
/// When the interpreter cannot be started.
pub async fn run_python_with_dummy_aws(
    python: &std::path::Path,
    script: &std::path::Path,
    args: &[&std::ffi::OsStr],
) -> std::process::Output {
    #[allow(clippy::expect_used)]
    tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .output()
        .await
        .expect("run the Python interpreter")
}

/// A loopback port free at the time of the call.
///
/// # Panics
/// When no port can be bound.
pub fn free_port() -> u16 {
    #[allow(clippy::expect_used)]
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// Header `name` of a request a test upstream received, as text; empty
/// when it is absent or not text.
pub fn header_text(headers: &reqwest::header::HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Spawns `command`, which must listen on 127.0.0.1:`port`, and waits (up
/// to 60 s) until it accepts connections.
///
/// # Panics
/// When it cannot be spawned, exits, or does not listen in time.
pub fn spawn_server(command: &mut std::process::Command, port: u16) -> ChildServer {
    #[allow(clippy::expect_used)]
    let child = command.spawn().expect("spawn the server");
    let mut server = ChildServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    // A debug `corral serve` compiles the built-in tools at start: on a
    // loaded 2-core machine that alone can take over 20 s.
    for _ in 0..1200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the server exited before listening: {status}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the server did not listen on port {port} within 60 s");
}

/// The directory whose `node_modules` holds `.ci/test`'s JS agent
/// toolchain (ComponentizeJS, esbuild).
pub fn ci_js_toolchain() -> PathBuf {
    std::env::var_os("CORRAL_TEST_JS_TOOLCHAIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/ci-js"))
}

/// Builds the agent in `dir` (relative to the workspace, e.g.
/// `examples/agents/assistant-py`) with `.ci/test`'s componentize-py and
/// ComponentizeJS into `target/test-agents`, and returns the component.
/// Unchanged sources are not rebuilt (the build's fingerprint).
///
/// # Panics
/// When the build fails, with the toolchain's own message.
pub fn built_agent(dir: &str) -> PathBuf {
    static BUILDS: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = BUILDS.lock().unwrap_or_else(|p| p.into_inner());
    let python = ci_python("componentize-py");
    let options = corral_build::BuildOptions {
        out_dir: Some(workspace().join("target/test-agents")),
        componentize_py: python.parent().map(|bin| bin.join("componentize-py")),
        js_toolchain: Some(ci_js_toolchain()),
        ..corral_build::BuildOptions::default()
    };
    match corral_build::build(&workspace().join(dir), &options) {
        Ok(output) => output.component,
        Err(error) => panic!("building {dir}: {error} (run .ci/test to install the toolchains)"),
    }
}

/// Deploys `component` as agent `name` to the `corral serve` at `url`;
/// returns its ARN.
///
/// # Panics
/// When the server refuses it.
pub async fn deploy(url: &str, name: &str, component: Vec<u8>) -> String {
    #[allow(clippy::unwrap_used)]
    let deployed = reqwest::Client::new()
        .post(format!("{url}/corral/runtimes/{name}"))
        .body(component)
        .send()
        .await
        .unwrap();
    let status = deployed.status();
    #[allow(clippy::unwrap_used)]
    let body: serde_json::Value = deployed.json().await.unwrap();
    assert!(status.is_success(), "{name}: {status} {body}");
    body["agentRuntimeArn"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Invokes `agent` in `session` over AgentCore's Runtime API; returns the
/// status and the body (JSON when it parses, else the text).
///
/// # Panics
/// When the server cannot be reached.
#[allow(clippy::unwrap_used)]
pub async fn invoke(
    url: &str,
    agent: &str,
    session: &str,
    body: &serde_json::Value,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(format!("{url}/runtimes/{agent}/invocations"))
        .header("x-amzn-bedrock-agentcore-runtime-session-id", session)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

/// A session id of the length AgentCore requires (at least 33 characters).
pub fn session_id(name: &str) -> String {
    format!("{name}-{}", "0".repeat(40))
}

/// The all-MiniLM-L6-v2 directory `.ci/test` fetches with
/// `.ci/fetch-embedding-model` (`CORRAL_EMBEDDING_MODEL` overrides it).
///
/// # Panics
/// When it is missing, naming the command that fetches it.
pub fn embedding_model() -> PathBuf {
    let path = std::env::var_os("CORRAL_EMBEDDING_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/models/all-MiniLM-L6-v2"));
    assert!(
        path.join("model.safetensors").exists(),
        "{} has no model: run .ci/fetch-embedding-model",
        path.display()
    );
    path
}

/// The test PostgreSQL's URL: `CORRAL_TEST_DATABASE_URL`, which `.ci/test`
/// sets (to a throwaway cluster `.ci/postgres start` runs when none answers).
///
/// # Panics
/// When it is unset, naming the command that starts one.
pub fn database_url() -> String {
    std::env::var("CORRAL_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!("CORRAL_TEST_DATABASE_URL is unset: run .ci/test, or eval \"$(.ci/postgres start)\"")
    })
}

/// A new, empty database on the test PostgreSQL ([`database_url`]) named
/// after `test` and this process; returns its URL.
///
/// # Panics
/// When the server does not answer or refuses.
pub fn fresh_database(test: &str) -> String {
    let admin = database_url();
    let name = format!(
        "{}_{}_{}",
        test.to_lowercase()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default()
    );
    let created = name.clone();
    let url = admin.clone();
    // Its own thread and runtime: callers may be inside a runtime already.
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("no runtime: {e}"));
        runtime.block_on(async {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("the test database at {url} does not answer: {e}"));
            tokio::spawn(connection);
            client
                .batch_execute(&format!("CREATE DATABASE \"{created}\""))
                .await
                .unwrap_or_else(|e| panic!("cannot create database {created}: {e}"));
        });
    })
    .join()
    .unwrap_or_else(|_| panic!("creating the database failed"));
    match admin.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("{admin} names no database"),
    }
}

/// A TCP forwarder on loopback that can be cut and restored, to take a
/// server (PostgreSQL) away from its clients mid-run.
pub struct TcpProxy {
    /// The address clients connect to.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TcpProxy {
    /// Forwards `listen` (`127.0.0.1:0` for any port) to `target`.
    ///
    /// # Panics
    /// When the port cannot be bound.
    pub fn start(listen: std::net::SocketAddr, target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind(listen)
            .unwrap_or_else(|e| panic!("cannot listen on {listen}: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no local address: {e}"));
        let _ = listener.set_nonblocking(true);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let forward = async {
                    let mut connections = tokio::task::JoinSet::new();
                    while let Ok((mut inbound, _)) = listener.accept().await {
                        connections.spawn(async move {
                            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound)
                                    .await;
                            }
                        });
                    }
                };
                // Stopping drops the listener and every connection.
                tokio::select! {
                    () = forward => {}
                    _ = stopped => {}
                }
            });
        });
        TcpProxy {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Cuts the listener and every forwarded connection.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop();
    }
}
