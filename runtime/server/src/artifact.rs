//! Where a runtime's component comes from: AgentCore's `agentRuntimeArtifact`
//! union, read the way boto3 sends it, and the fetch of its bytes.
//!
//! - `codeConfiguration.code.s3` (`bucket`, `prefix` = the object key,
//!   optional `versionId`): an object in S3 or any S3-compatible store (the
//!   endpoint is configurable), holding a component `.wasm` or a zip with one
//!   (the `entryPoint` names it when the zip holds several).
//! - `containerConfiguration.containerUri`: `s3://bucket/key[?versionId=…]`,
//!   `file:///absolute/path.wasm` (only under the server's artifact roots),
//!   or `corral://components/sha256:<digest>` (a component already deployed
//!   here — what Corral reports for uploads, so the artifact round-trips).
//!   Container images (ECR) are not components and are refused.
//! - Corral's own `wasm.base64` (an inline component) is still accepted.

use std::io::{Cursor, Read};
use std::path::PathBuf;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use base64::Engine;
use serde_json::{Value, json};

/// URI scheme naming a component already deployed on this server.
pub const COMPONENT_URI_PREFIX: &str = "corral://components/sha256:";

/// Why an artifact could not be read or fetched.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    /// The artifact description is malformed or names something Corral cannot run.
    #[error("agentRuntimeArtifact: {0}")]
    Invalid(String),
    /// The artifact is larger than the server accepts.
    #[error("agent artifact {uri} is larger than the {limit}-byte limit")]
    TooLarge {
        /// What was fetched.
        uri: String,
        /// The limit.
        limit: usize,
    },
    /// The object or file could not be fetched.
    #[error("cannot fetch {uri}: {reason}")]
    Fetch {
        /// What was fetched.
        uri: String,
        /// The store's error code or a summary.
        reason: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Where the component's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactLocation {
    /// An S3 object.
    S3 {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// Object version; the latest when absent.
        version_id: Option<String>,
    },
    /// A local file (absolute path).
    File(PathBuf),
    /// A component already deployed here, by SHA-256.
    Component(String),
    /// The component itself (Corral's `wasm.base64`).
    Inline(Vec<u8>),
}

/// A parsed `agentRuntimeArtifact`.
#[derive(Debug, Clone)]
pub struct RuntimeArtifact {
    /// Where the bytes are.
    pub location: ArtifactLocation,
    /// The file to take from a zip (`codeConfiguration.entryPoint[0]`).
    pub entry_point: Option<String>,
    /// The artifact as the caller gave it, reported back by `GetAgentRuntime`;
    /// `None` for inline uploads, reported by their digest instead.
    pub reported: Option<Value>,
}

impl RuntimeArtifact {
    /// Reads AgentCore's `agentRuntimeArtifact` union (or Corral's `wasm`).
    pub fn parse(value: &Value) -> Result<Self, ArtifactError> {
        let invalid = |m: &str| ArtifactError::Invalid(m.to_string());
        let Some(union) = value.as_object().filter(|o| o.len() == 1) else {
            return Err(invalid(
                "give exactly one of codeConfiguration or containerConfiguration",
            ));
        };
        if let Some(code) = union.get("codeConfiguration") {
            let s3 = code
                .pointer("/code/s3")
                .ok_or_else(|| invalid("codeConfiguration.code.s3 is required"))?;
            let field = |name: &str| s3.get(name).and_then(Value::as_str).map(str::to_string);
            let (Some(bucket), Some(key)) = (field("bucket"), field("prefix")) else {
                return Err(invalid(
                    "codeConfiguration.code.s3 needs bucket and prefix (the object key)",
                ));
            };
            let entry_point = code
                .get("entryPoint")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(Value::as_str)
                .map(str::to_string);
            return Ok(RuntimeArtifact {
                location: ArtifactLocation::S3 {
                    bucket,
                    key,
                    version_id: field("versionId"),
                },
                entry_point,
                reported: Some(value.clone()),
            });
        }
        if let Some(container) = union.get("containerConfiguration") {
            let uri = container
                .get("containerUri")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("containerConfiguration.containerUri is required"))?;
            return Ok(RuntimeArtifact {
                location: parse_uri(uri)?,
                entry_point: None,
                reported: Some(value.clone()),
            });
        }
        if let Some(wasm) = union.get("wasm") {
            let encoded = wasm
                .get("base64")
                .and_then(Value::as_str)
                .ok_or_else(|| invalid("wasm.base64 is required"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .map_err(|e| ArtifactError::Invalid(format!("wasm.base64: {e}")))?;
            return Ok(RuntimeArtifact {
                location: ArtifactLocation::Inline(bytes),
                entry_point: None,
                reported: None,
            });
        }
        Err(invalid(
            "give exactly one of codeConfiguration or containerConfiguration",
        ))
    }
}

/// The artifact reported for a component known only by its digest.
pub fn component_artifact(digest: &str) -> Value {
    json!({ "containerConfiguration": { "containerUri": format!("{COMPONENT_URI_PREFIX}{digest}") } })
}

/// Reads a `containerUri` naming a component.
pub fn parse_uri(uri: &str) -> Result<ArtifactLocation, ArtifactError> {
    if let Some(rest) = uri.strip_prefix("s3://") {
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let Some((bucket, key)) = path
            .split_once('/')
            .filter(|(b, k)| !b.is_empty() && !k.is_empty())
        else {
            return Err(ArtifactError::Invalid(format!(
                "containerUri {uri}: expected s3://bucket/key"
            )));
        };
        let version_id = query
            .split('&')
            .find_map(|p| p.strip_prefix("versionId="))
            .map(str::to_string);
        return Ok(ArtifactLocation::S3 {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id,
        });
    }
    if let Some(path) = uri.strip_prefix("file://") {
        if !path.starts_with('/') {
            return Err(ArtifactError::Invalid(format!(
                "containerUri {uri}: file URIs need an absolute path (file:///…)"
            )));
        }
        return Ok(ArtifactLocation::File(PathBuf::from(path)));
    }
    if let Some(digest) = uri.strip_prefix(COMPONENT_URI_PREFIX) {
        return Ok(ArtifactLocation::Component(digest.to_string()));
    }
    Err(ArtifactError::Invalid(format!(
        "containerUri {uri}: Corral runs WebAssembly components, not container images; \
         use s3://bucket/key, file:///path (under an artifact root) or {COMPONENT_URI_PREFIX}<digest>"
    )))
}

/// Where artifacts may be fetched from.
#[derive(Clone, Debug, Default)]
pub struct ArtifactConfig {
    /// S3-compatible endpoint (e.g. MinIO or moto); AWS's S3 when absent.
    pub s3_endpoint_url: Option<String>,
    /// AWS settings (credentials, region); loaded from the environment when absent.
    pub aws: Option<aws_config::SdkConfig>,
    /// Directories `file://` artifacts may come from; none by default, so a
    /// caller cannot make the server read its own files.
    pub file_roots: Vec<PathBuf>,
}

/// Fetches artifact bytes from S3 or local files, bounded in size.
pub struct ArtifactFetcher {
    config: ArtifactConfig,
    max_bytes: usize,
    s3: tokio::sync::OnceCell<aws_sdk_s3::Client>,
}

impl ArtifactFetcher {
    /// A fetcher refusing artifacts over `max_bytes`.
    pub fn new(config: ArtifactConfig, max_bytes: usize) -> Self {
        ArtifactFetcher {
            config,
            max_bytes,
            s3: tokio::sync::OnceCell::new(),
        }
    }

    async fn s3(&self) -> &aws_sdk_s3::Client {
        self.s3
            .get_or_init(|| async {
                let base = match &self.config.aws {
                    Some(config) => config.clone(),
                    None => aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await,
                };
                let mut builder = aws_sdk_s3::config::Builder::from(&base)
                    .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest());
                if base.region().is_none() {
                    builder = builder.region(aws_sdk_s3::config::Region::new("us-east-1"));
                }
                if let Some(url) = &self.config.s3_endpoint_url {
                    // S3-compatible stores address buckets by path.
                    builder = builder.endpoint_url(url).force_path_style(true);
                }
                aws_sdk_s3::Client::from_conf(builder.build())
            })
            .await
    }

    /// The component bytes of an S3 object or a file (a zip is unpacked).
    /// Inline and already-deployed components are not fetched here.
    pub async fn fetch(&self, artifact: &RuntimeArtifact) -> Result<Vec<u8>, ArtifactError> {
        let (uri, bytes) = match &artifact.location {
            ArtifactLocation::S3 {
                bucket,
                key,
                version_id,
            } => {
                let uri = format!("s3://{bucket}/{key}");
                (
                    uri.clone(),
                    self.fetch_s3(&uri, bucket, key, version_id.as_deref())
                        .await?,
                )
            }
            ArtifactLocation::File(path) => {
                let uri = format!("file://{}", path.display());
                (uri.clone(), self.read_file(&uri, path.clone()).await?)
            }
            ArtifactLocation::Inline(bytes) => ("wasm.base64".to_string(), bytes.clone()),
            ArtifactLocation::Component(_) => {
                return Err(ArtifactError::Invalid(
                    "a deployed component is read from the registry".into(),
                ));
            }
        };
        // Unzipping is CPU-bound.
        let entry_point = artifact.entry_point.clone();
        let limit = self.max_bytes;
        tokio::task::spawn_blocking(move || unpack(&uri, bytes, entry_point.as_deref(), limit))
            .await
            .map_err(|e| ArtifactError::Fetch {
                uri: "zip".into(),
                reason: "the unzip task failed".into(),
                source: Box::new(e),
            })?
    }

    async fn fetch_s3(
        &self,
        uri: &str,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<Vec<u8>, ArtifactError> {
        let output = self
            .s3()
            .await
            .get_object()
            .bucket(bucket)
            .key(key)
            .set_version_id(version_id.map(str::to_string))
            .send()
            .await
            .map_err(|e| ArtifactError::Fetch {
                uri: uri.to_string(),
                reason: e
                    .code()
                    .map(str::to_string)
                    .unwrap_or_else(|| DisplayErrorContext(&e).to_string()),
                source: Box::new(e),
            })?;
        let too_large = || ArtifactError::TooLarge {
            uri: uri.to_string(),
            limit: self.max_bytes,
        };
        if output
            .content_length()
            .is_some_and(|n| usize::try_from(n).map_or(true, |n| n > self.max_bytes))
        {
            return Err(too_large());
        }
        let mut body = output.body;
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| ArtifactError::Fetch {
                uri: uri.to_string(),
                reason: "the object's body was cut off".into(),
                source: Box::new(e),
            })?;
            if bytes.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        Ok(bytes)
    }

    /// Reads a file under one of the artifact roots. Every refusal reads
    /// the same, so callers cannot probe which paths exist outside them.
    async fn read_file(&self, uri: &str, path: PathBuf) -> Result<Vec<u8>, ArtifactError> {
        let refused = {
            let uri = uri.to_string();
            move || {
                ArtifactError::Invalid(format!(
                    "{uri} is not a file under an artifact root of this server \
                     (corral serve --artifact-root)"
                ))
            }
        };
        // Lexically first, without touching the disk.
        let inside = !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
            && self
                .config
                .file_roots
                .iter()
                .any(|root| path.starts_with(root));
        if !inside {
            return Err(refused());
        }
        let roots = self.config.file_roots.clone();
        let limit = self.max_bytes;
        let uri = uri.to_string();
        tokio::task::spawn_blocking(move || {
            // Then for real: a symlink must not lead out of the roots.
            let real = std::fs::canonicalize(&path).map_err(|_| refused())?;
            let under_root = roots
                .iter()
                .filter_map(|root| std::fs::canonicalize(root).ok())
                .any(|root| real.starts_with(root));
            if !under_root {
                return Err(refused());
            }
            let file = std::fs::File::open(&real).map_err(|_| refused())?;
            // Not a FIFO or device: those have no size and may never end.
            if !file.metadata().is_ok_and(|m| m.is_file()) {
                return Err(refused());
            }
            let mut bytes = Vec::new();
            file.take(limit as u64 + 1)
                .read_to_end(&mut bytes)
                .map_err(|e| ArtifactError::Fetch {
                    uri: uri.clone(),
                    reason: e.to_string(),
                    source: Box::new(e),
                })?;
            if bytes.len() > limit {
                return Err(ArtifactError::TooLarge { uri, limit });
            }
            Ok(bytes)
        })
        .await
        .map_err(|e| ArtifactError::Fetch {
            uri: "file".into(),
            reason: "the read task failed".into(),
            source: Box::new(e),
        })?
    }
}

/// The component in `bytes`: the bytes themselves, or the entry of a zip
/// named `entry_point` (else its only `.wasm` file), at most `limit` bytes.
pub fn unpack(
    uri: &str,
    bytes: Vec<u8>,
    entry_point: Option<&str>,
    limit: usize,
) -> Result<Vec<u8>, ArtifactError> {
    if !bytes.starts_with(b"PK\x03\x04") {
        return Ok(bytes);
    }
    let bad_zip = |e: zip::result::ZipError| ArtifactError::Fetch {
        uri: uri.to_string(),
        reason: format!("not a readable zip: {e}"),
        source: Box::new(e),
    };
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(bad_zip)?;
    let names: Vec<String> = archive.file_names().map(str::to_string).collect();
    let name = match entry_point.filter(|e| names.iter().any(|n| n == e)) {
        Some(entry) => entry.to_string(),
        None => {
            let wasm: Vec<&String> = names.iter().filter(|n| n.ends_with(".wasm")).collect();
            match wasm.as_slice() {
                [only] => (*only).clone(),
                [] => {
                    return Err(ArtifactError::Invalid(format!(
                        "{uri}: the zip holds no .wasm component"
                    )));
                }
                _ => {
                    return Err(ArtifactError::Invalid(format!(
                        "{uri}: the zip holds several .wasm files; name one in codeConfiguration.entryPoint"
                    )));
                }
            }
        }
    };
    let file = archive.by_name(&name).map_err(bad_zip)?;
    // Read one byte past the limit to tell a full-size file from a bomb.
    let mut out = Vec::new();
    file.take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| ArtifactError::Fetch {
            uri: uri.to_string(),
            reason: format!("cannot unzip {name}: {e}"),
            source: Box::new(e),
        })?;
    if out.len() > limit {
        return Err(ArtifactError::TooLarge {
            uri: format!("{uri}!{name}"),
            limit,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::io::Write;

    use super::*;

    fn zip_of(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut writer = zip::ZipWriter::new(Cursor::new(Vec::new()));
        for (name, bytes) in files {
            writer
                .start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            writer.write_all(bytes).unwrap();
        }
        writer.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_the_artifact_shapes_boto3_sends() {
        let code = RuntimeArtifact::parse(&json!({"codeConfiguration": {
            "code": {"s3": {"bucket": "b", "prefix": "agents/a.zip", "versionId": "v1"}},
            "runtime": "PYTHON_3_12", "entryPoint": ["agent.wasm"]}}))
        .unwrap();
        assert_eq!(
            code.location,
            ArtifactLocation::S3 {
                bucket: "b".into(),
                key: "agents/a.zip".into(),
                version_id: Some("v1".into())
            }
        );
        assert_eq!(code.entry_point.as_deref(), Some("agent.wasm"));
        assert!(code.reported.is_some());
        let uri = |u: &str| {
            RuntimeArtifact::parse(&json!({"containerConfiguration": {"containerUri": u}}))
                .map(|a| a.location)
        };
        assert_eq!(
            uri("s3://b/k.wasm?versionId=7").unwrap(),
            ArtifactLocation::S3 {
                bucket: "b".into(),
                key: "k.wasm".into(),
                version_id: Some("7".into())
            }
        );
        assert_eq!(
            uri("file:///srv/a.wasm").unwrap(),
            ArtifactLocation::File("/srv/a.wasm".into())
        );
        assert_eq!(
            uri(&format!("{COMPONENT_URI_PREFIX}abc")).unwrap(),
            ArtifactLocation::Component("abc".into())
        );
        for bad in [
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/agent:latest",
            "s3://bucket-only",
            "file://relative.wasm",
        ] {
            assert!(matches!(uri(bad), Err(ArtifactError::Invalid(_))), "{bad}");
        }
        assert!(RuntimeArtifact::parse(&json!({})).is_err());
        assert!(RuntimeArtifact::parse(&json!({"codeConfiguration": {"code": {}}})).is_err());
    }

    #[tokio::test]
    async fn files_are_read_only_from_under_the_artifact_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("agent.wasm"), b"\0asm").unwrap();
        std::fs::write(dir.path().join("secret.wasm"), b"secret").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret.wasm"), root.join("link.wasm")).unwrap();
        let fetcher = ArtifactFetcher::new(
            ArtifactConfig {
                file_roots: vec![root.clone()],
                ..ArtifactConfig::default()
            },
            1024,
        );
        let read = |path: PathBuf| {
            let artifact = RuntimeArtifact {
                location: ArtifactLocation::File(path),
                entry_point: None,
                reported: None,
            };
            let fetcher = &fetcher;
            async move { fetcher.fetch(&artifact).await }
        };
        assert_eq!(read(root.join("agent.wasm")).await.unwrap(), b"\0asm");
        for outside in [
            dir.path().join("secret.wasm"),
            root.join("../secret.wasm"),
            root.join("link.wasm"),
            root.join("missing.wasm"),
            root.clone(),
        ] {
            let error = read(outside.clone()).await.unwrap_err();
            assert!(
                error
                    .to_string()
                    .contains("not a file under an artifact root"),
                "{}: {error}",
                outside.display()
            );
        }
        std::fs::write(root.join("big.wasm"), vec![0u8; 2048]).unwrap();
        assert!(matches!(
            read(root.join("big.wasm")).await,
            Err(ArtifactError::TooLarge { .. })
        ));
    }

    #[test]
    fn zips_give_up_their_component_within_the_limit() {
        let plain = unpack("x", b"\0asm....".to_vec(), None, 100).unwrap();
        assert_eq!(plain, b"\0asm....");
        let one = zip_of(&[("README", b"hi"), ("agent.wasm", b"\0asm-one")]);
        assert_eq!(unpack("x", one, None, 100).unwrap(), b"\0asm-one");
        let two = zip_of(&[("a.wasm", b"\0asm-a"), ("b.wasm", b"\0asm-b")]);
        assert!(matches!(
            unpack("x", two.clone(), None, 100),
            Err(ArtifactError::Invalid(_))
        ));
        assert_eq!(unpack("x", two, Some("b.wasm"), 100).unwrap(), b"\0asm-b");
        let none = zip_of(&[("main.py", b"print()")]);
        assert!(matches!(
            unpack("x", none, None, 100),
            Err(ArtifactError::Invalid(_))
        ));
        let big = zip_of(&[("agent.wasm", &[0u8; 4096])]);
        assert!(matches!(
            unpack("x", big, None, 1024),
            Err(ArtifactError::TooLarge { .. })
        ));
    }
}
