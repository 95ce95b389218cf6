//! Inbound authentication: static API keys and JWT bearer tokens (HS256
//! secret, or RS256 keys from a JWKS file or URL), checked for signature,
//! expiry, issuer, audience and client.

use std::path::Path;
use std::time::{Duration, Instant};

use corral_policy::Principal;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use tokio::sync::Mutex;

use crate::config::{AuthorizerKind, InboundAuthConfig, JwtConfig};
use crate::error::GatewayError;

/// Why a request was not authenticated (the 401 body's message).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct AuthError(pub String);

enum JwtKeys {
    Secret(DecodingKey),
    Jwks(JwkSet),
    JwksUrl {
        url: String,
        client: reqwest::Client,
        cache: Mutex<Option<(JwkSet, Instant)>>,
    },
}

/// Validates inbound credentials and yields the caller's principal.
pub struct Authenticator {
    kind: AuthorizerKind,
    api_keys: Vec<(String, [u8; 32])>,
    jwt: Option<(JwtConfig, JwtKeys)>,
}

/// How long a fetched JWKS is trusted before it is fetched again.
const JWKS_TTL: Duration = Duration::from_secs(600);

impl Authenticator {
    /// Builds the authenticator; secrets named by environment variables must be set.
    pub fn new(
        kind: AuthorizerKind,
        config: &InboundAuthConfig,
        base_dir: &Path,
    ) -> Result<Self, GatewayError> {
        let mut api_keys = Vec::new();
        for key in &config.api_keys {
            let value = match (&key.key, &key.key_env) {
                (Some(value), _) => value.clone(),
                (None, Some(var)) => std::env::var(var).map_err(|_| {
                    GatewayError::Config(format!(
                        "API key '{}': environment variable {var} is not set",
                        key.name
                    ))
                })?,
                (None, None) => {
                    return Err(GatewayError::Config(format!(
                        "API key '{}' has no key or keyEnv",
                        key.name
                    )));
                }
            };
            api_keys.push((key.name.clone(), Sha256::digest(value.as_bytes()).into()));
        }
        let jwt = match &config.jwt {
            None => None,
            Some(jwt) => {
                let keys = if let Some(secret) = jwt.hs256_secret.clone().or_else(|| {
                    jwt.hs256_secret_env
                        .as_ref()
                        .and_then(|v| std::env::var(v).ok())
                }) {
                    JwtKeys::Secret(DecodingKey::from_secret(secret.as_bytes()))
                } else if let Some(file) = &jwt.jwks_file {
                    let text = std::fs::read_to_string(base_dir.join(file)).map_err(|e| {
                        GatewayError::Config(format!("cannot read JWKS {}: {e}", file.display()))
                    })?;
                    JwtKeys::Jwks(serde_json::from_str(&text).map_err(|e| {
                        GatewayError::Config(format!("JWKS {} is invalid: {e}", file.display()))
                    })?)
                } else if let Some(url) = &jwt.jwks_url {
                    JwtKeys::JwksUrl {
                        url: url.clone(),
                        client: reqwest::Client::new(),
                        cache: Mutex::new(None),
                    }
                } else {
                    return Err(GatewayError::Config(
                        "jwt needs hs256Secret, hs256SecretEnv, jwksFile or jwksUrl".into(),
                    ));
                };
                Some((jwt.clone(), keys))
            }
        };
        if kind != AuthorizerKind::None && api_keys.is_empty() && jwt.is_none() {
            return Err(GatewayError::Config(
                "inbound authentication is required but no API keys or JWT settings are configured"
                    .into(),
            ));
        }
        Ok(Self {
            kind,
            api_keys,
            jwt,
        })
    }

    /// Whether requests must authenticate.
    pub fn required(&self) -> bool {
        self.kind != AuthorizerKind::None
    }

    /// Authenticates a request from its `Authorization` and `x-api-key` headers.
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        api_key: Option<&str>,
    ) -> Result<Principal, AuthError> {
        if !self.required() {
            return Ok(Principal::IamEntity {
                id: "anonymous".into(),
            });
        }
        if let Some(key) = api_key {
            return self.check_api_key(key);
        }
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                AuthError(
                    "missing credentials: send Authorization: Bearer <token> or x-api-key".into(),
                )
            })?;
        if token.matches('.').count() == 2 && self.jwt.is_some() {
            return self.check_jwt(token).await;
        }
        self.check_api_key(token)
    }

    fn check_api_key(&self, key: &str) -> Result<Principal, AuthError> {
        let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
        // Comparing digests keeps the comparison time independent of the key.
        self.api_keys
            .iter()
            .find(|(_, known)| *known == digest)
            .map(|(name, _)| Principal::IamEntity { id: name.clone() })
            .ok_or_else(|| AuthError("invalid API key".into()))
    }

    async fn check_jwt(&self, token: &str) -> Result<Principal, AuthError> {
        let Some((config, keys)) = &self.jwt else {
            return Err(AuthError("bearer tokens are not accepted".into()));
        };
        let header =
            decode_header(token).map_err(|e| AuthError(format!("malformed token: {e}")))?;
        let (key, algorithm) = match keys {
            JwtKeys::Secret(key) => (key.clone(), Algorithm::HS256),
            JwtKeys::Jwks(set) => (key_from_set(set, header.kid.as_deref())?, Algorithm::RS256),
            JwtKeys::JwksUrl { url, client, cache } => {
                let set = fetch_jwks(url, client, cache, header.kid.as_deref()).await?;
                (key_from_set(&set, header.kid.as_deref())?, Algorithm::RS256)
            }
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_seconds;
        validation.set_required_spec_claims(&["exp"]);
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        if config.allowed_audience.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&config.allowed_audience);
        }
        let data = decode::<Map<String, Value>>(token, &key, &validation)
            .map_err(|e| AuthError(format!("invalid token: {e}")))?;
        let claims = data.claims;
        if !config.allowed_clients.is_empty() {
            let client = claims
                .get("client_id")
                .or_else(|| claims.get("azp"))
                .and_then(Value::as_str)
                .unwrap_or("");
            if !config.allowed_clients.iter().any(|c| c == client) {
                return Err(AuthError(format!("client {client:?} is not allowed")));
            }
        }
        let id = claims
            .get("sub")
            .and_then(Value::as_str)
            .ok_or_else(|| AuthError("token has no sub claim".into()))?
            .to_string();
        Ok(Principal::OAuthUser { id, claims })
    }
}

fn key_from_set(set: &JwkSet, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
    let jwk = match kid {
        Some(kid) => set.find(kid),
        None if set.keys.len() == 1 => set.keys.first(),
        None => None,
    }
    .ok_or_else(|| AuthError(format!("no signing key for kid {kid:?}")))?;
    DecodingKey::from_jwk(jwk).map_err(|e| AuthError(format!("unusable signing key: {e}")))
}

async fn fetch_jwks(
    url: &str,
    client: &reqwest::Client,
    cache: &Mutex<Option<(JwkSet, Instant)>>,
    kid: Option<&str>,
) -> Result<JwkSet, AuthError> {
    let mut cached = cache.lock().await;
    if let Some((set, fetched)) = cached.as_ref() {
        let fresh = fetched.elapsed() < JWKS_TTL;
        let knows_kid = kid.is_none_or(|k| set.find(k).is_some());
        // An unknown kid may be a rotated key: refetch, but at most every 10 s.
        if fresh && (knows_kid || fetched.elapsed() < Duration::from_secs(10)) {
            return Ok(set.clone());
        }
    }
    let set: JwkSet = client
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .map_err(|e| {
            // The key set's URL and the client's error stay in the log.
            tracing::warn!(error = %crate::error::describe_http_error(&e), "cannot fetch the JWKS");
            AuthError("the token's signing keys are unavailable".into())
        })?
        .json()
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "the JWKS is invalid");
            AuthError("the token's signing keys are unavailable".into())
        })?;
    *cached = Some((set.clone(), Instant::now()));
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ApiKeySpec;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn hs256(secret: &str, issuer: &str) -> Authenticator {
        Authenticator::new(
            AuthorizerKind::CustomJwt,
            &InboundAuthConfig {
                api_keys: vec![ApiKeySpec {
                    name: "ci".into(),
                    key: Some("key-123".into()),
                    key_env: None,
                }],
                jwt: Some(JwtConfig {
                    hs256_secret: Some(secret.into()),
                    hs256_secret_env: None,
                    jwks_file: None,
                    jwks_url: None,
                    issuer: Some(issuer.into()),
                    allowed_audience: vec!["corral".into()],
                    allowed_clients: vec![],
                    leeway_seconds: 0,
                }),
            },
            Path::new("."),
        )
        .unwrap()
    }

    fn token(secret: &str, claims: Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[tokio::test]
    async fn accepts_valid_tokens_and_keys() {
        let auth = hs256("s3cret", "https://issuer");
        let good = token(
            "s3cret",
            json!({"sub": "alice", "iss": "https://issuer", "aud": "corral", "exp": now() + 60, "scope": "refunds"}),
        );
        match auth
            .authenticate(Some(&format!("Bearer {good}")), None)
            .await
            .unwrap()
        {
            Principal::OAuthUser { id, claims } => {
                assert_eq!(id, "alice");
                assert_eq!(claims["scope"], "refunds");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            auth.authenticate(None, Some("key-123")).await.unwrap(),
            Principal::IamEntity { id: "ci".into() }
        );
        assert!(
            auth.authenticate(Some("Bearer key-123"), None)
                .await
                .is_ok()
        );
    }

    #[tokio::test]
    async fn rejects_bad_credentials_with_reasons() {
        let auth = hs256("s3cret", "https://issuer");
        let claims = |exp: u64, iss: &str, aud: &str| json!({"sub": "a", "iss": iss, "aud": aud, "exp": exp});
        let cases = [
            (
                token("other", claims(now() + 60, "https://issuer", "corral")),
                "InvalidSignature",
            ),
            (
                token("s3cret", claims(now() - 60, "https://issuer", "corral")),
                "ExpiredSignature",
            ),
            (
                token("s3cret", claims(now() + 60, "https://evil", "corral")),
                "InvalidIssuer",
            ),
            (
                token("s3cret", claims(now() + 60, "https://issuer", "other")),
                "InvalidAudience",
            ),
        ];
        for (token, expected) in cases {
            let err = auth
                .authenticate(Some(&format!("Bearer {token}")), None)
                .await
                .unwrap_err();
            assert!(err.0.contains(expected), "{expected}: {}", err.0);
        }
        assert!(
            auth.authenticate(None, None)
                .await
                .unwrap_err()
                .0
                .contains("missing credentials")
        );
        assert_eq!(
            auth.authenticate(None, Some("nope")).await.unwrap_err().0,
            "invalid API key"
        );
    }
}
