//! Outbound credentials for HTTP targets: API keys (header or query), bearer
//! tokens, and OAuth2 client-credentials tokens cached until they expire.

use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::Mutex;

use crate::config::{CredentialProviderConfiguration, CredentialProviderSpec};
use crate::error::CallError;

/// Where an API key goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyLocation {
    /// A request header.
    Header,
    /// A query parameter.
    Query,
}

/// A credential to attach to outbound requests.
pub enum OutboundCredential {
    /// A static key in a header or query parameter, with an optional prefix.
    ApiKey {
        /// Header or parameter name.
        name: String,
        /// Value, prefix included.
        value: String,
        /// Where it goes.
        location: KeyLocation,
    },
    /// OAuth2 client credentials; the token is fetched and cached.
    OAuth2(OAuth2ClientCredentials),
}

impl std::fmt::Debug for OutboundCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OutboundCredential::ApiKey { name, location, .. } => {
                write!(f, "ApiKey({name} in {location:?}, value redacted)")
            }
            OutboundCredential::OAuth2(oauth) => write!(f, "OAuth2({})", oauth.token_endpoint),
        }
    }
}

/// The OAuth2 client-credentials grant with a token cache.
pub struct OAuth2ClientCredentials {
    token_endpoint: String,
    client_id: String,
    client_secret: String,
    scopes: Vec<String>,
    extra: Vec<(String, String)>,
    cached: Mutex<Option<(String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl OAuth2ClientCredentials {
    /// A valid access token, fetching a new one when the cached one is within
    /// 30 seconds of expiry. Concurrent callers share one fetch.
    pub async fn token(&self, client: &reqwest::Client) -> Result<String, CallError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + Duration::from_secs(30) < *expires
        {
            return Ok(token.clone());
        }
        let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
        let scope = self.scopes.join(" ");
        if !scope.is_empty() {
            form.push(("scope", &scope));
        }
        for (k, v) in &self.extra {
            form.push((k, v));
        }
        let response = client
            .post(&self.token_endpoint)
            .basic_auth(&self.client_id, Some(&self.client_secret))
            .form(&form)
            .send()
            .await
            .map_err(|e| {
                CallError::upstream(
                    None,
                    "the OAuth2 token endpoint is unreachable",
                    crate::error::describe_http_error(&e),
                )
            })?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().await.unwrap_or_default();
            return Err(CallError::upstream(
                Some(status.as_u16()),
                "the OAuth2 token request was refused",
                crate::error::excerpt(&body, 512),
            ));
        }
        let token: TokenResponse = response
            .json()
            .await
            .map_err(|e| CallError::upstream(None, "the OAuth2 token response is not valid", e))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(3600));
        *cached = Some((token.access_token.clone(), Instant::now() + lifetime));
        Ok(token.access_token)
    }
}

impl OutboundCredential {
    /// Applies the credential to a request.
    pub async fn apply(
        &self,
        request: reqwest::RequestBuilder,
        client: &reqwest::Client,
    ) -> Result<reqwest::RequestBuilder, CallError> {
        Ok(match self {
            OutboundCredential::ApiKey {
                name,
                value,
                location,
            } => match location {
                KeyLocation::Header => request.header(name.as_str(), value.as_str()),
                KeyLocation::Query => request.query(&[(name.as_str(), value.as_str())]),
            },
            OutboundCredential::OAuth2(oauth) => request.bearer_auth(oauth.token(client).await?),
        })
    }
}

/// The local provider a `providerArn` names: exact name, or its last `/` segment.
fn find_provider<'a>(
    providers: &'a [CredentialProviderSpec],
    arn: &str,
) -> Option<&'a CredentialProviderSpec> {
    let last = arn.rsplit('/').next().unwrap_or(arn);
    providers.iter().find(|p| p.name == arn || p.name == last)
}

fn secret(spec: &CredentialProviderSpec, what: &str) -> Result<String, String> {
    if let Some(secret) = spec.secret.clone().or_else(|| spec.client_secret.clone()) {
        return Ok(secret);
    }
    match &spec.secret_env {
        Some(var) => std::env::var(var).map_err(|_| {
            format!(
                "credential provider '{}': environment variable {var} is not set",
                spec.name
            )
        }),
        None => Err(format!(
            "credential provider '{}' has no {what} (set secret or secretEnv)",
            spec.name
        )),
    }
}

/// Resolves a target's `credentialProviderConfigurations` against the local
/// providers. `GATEWAY_IAM_ROLE` (and none) need no HTTP credential.
pub fn resolve(
    configs: &[CredentialProviderConfiguration],
    providers: &[CredentialProviderSpec],
) -> Result<Option<OutboundCredential>, String> {
    let Some(config) = configs.first() else {
        return Ok(None);
    };
    if configs.len() > 1 {
        return Err("at most one credential provider configuration is allowed".into());
    }
    match config.credential_provider_type.as_str() {
        "GATEWAY_IAM_ROLE" | "CALLER_IAM_CREDENTIALS" => Ok(None),
        "API_KEY" => {
            let api_key = config
                .credential_provider
                .as_ref()
                .and_then(|p| p.api_key_credential_provider.as_ref())
                .ok_or("API_KEY needs credentialProvider.apiKeyCredentialProvider")?;
            let spec = find_provider(providers, &api_key.provider_arn).ok_or_else(|| {
                format!("no credential provider named by {}", api_key.provider_arn)
            })?;
            let key = secret(spec, "key")?;
            let value = match (&api_key.credential_prefix, spec.kind.as_str()) {
                (Some(prefix), _) => format!("{prefix} {key}"),
                (None, "BEARER") => format!("Bearer {key}"),
                (None, _) => key,
            };
            let location = match api_key.credential_location.as_deref() {
                None | Some("HEADER") => KeyLocation::Header,
                Some("QUERY_PARAMETER") => KeyLocation::Query,
                Some(other) => return Err(format!("unknown credentialLocation {other}")),
            };
            Ok(Some(OutboundCredential::ApiKey {
                name: api_key
                    .credential_parameter_name
                    .clone()
                    .unwrap_or_else(|| "Authorization".into()),
                value,
                location,
            }))
        }
        "OAUTH" => {
            let oauth = config
                .credential_provider
                .as_ref()
                .and_then(|p| p.oauth_credential_provider.as_ref())
                .ok_or("OAUTH needs credentialProvider.oauthCredentialProvider")?;
            if oauth
                .grant_type
                .as_deref()
                .is_some_and(|g| g != "CLIENT_CREDENTIALS")
            {
                return Err("only the CLIENT_CREDENTIALS OAuth grant is supported".into());
            }
            let spec = find_provider(providers, &oauth.provider_arn)
                .ok_or_else(|| format!("no credential provider named by {}", oauth.provider_arn))?;
            if spec.kind == "BEARER" {
                return Ok(Some(OutboundCredential::ApiKey {
                    name: "Authorization".into(),
                    value: format!("Bearer {}", secret(spec, "token")?),
                    location: KeyLocation::Header,
                }));
            }
            Ok(Some(OutboundCredential::OAuth2(OAuth2ClientCredentials {
                token_endpoint: spec.token_endpoint.clone().ok_or_else(|| {
                    format!("credential provider '{}' has no tokenEndpoint", spec.name)
                })?,
                client_id: spec.client_id.clone().ok_or_else(|| {
                    format!("credential provider '{}' has no clientId", spec.name)
                })?,
                client_secret: secret(spec, "client secret")?,
                scopes: oauth.scopes.clone(),
                extra: oauth
                    .custom_parameters
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                cached: Mutex::new(None),
            })))
        }
        other => Err(format!("credential provider type {other} is not supported")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ApiKeyCredentialProvider, CredentialProvider};

    fn provider(name: &str, kind: &str) -> CredentialProviderSpec {
        CredentialProviderSpec {
            name: name.into(),
            kind: kind.into(),
            secret: Some("s3cret".into()),
            secret_env: None,
            token_endpoint: None,
            client_id: None,
            client_secret: None,
        }
    }

    fn api_key_config(
        arn: &str,
        prefix: Option<&str>,
        location: Option<&str>,
    ) -> CredentialProviderConfiguration {
        CredentialProviderConfiguration {
            credential_provider_type: "API_KEY".into(),
            credential_provider: Some(CredentialProvider {
                oauth_credential_provider: None,
                api_key_credential_provider: Some(ApiKeyCredentialProvider {
                    provider_arn: arn.into(),
                    credential_parameter_name: Some("x-api-key".into()),
                    credential_prefix: prefix.map(Into::into),
                    credential_location: location.map(Into::into),
                }),
                iam_credential_provider: None,
            }),
        }
    }

    #[test]
    fn resolves_api_keys_by_arn_suffix() {
        let providers = vec![provider("pets", "API_KEY")];
        let resolved = resolve(
            &[api_key_config(
                "arn:aws:x:us-east-1:1:token-vault/default/apikeycredentialprovider/pets",
                Some("Key"),
                Some("QUERY_PARAMETER"),
            )],
            &providers,
        )
        .unwrap()
        .unwrap();
        match resolved {
            OutboundCredential::ApiKey {
                name,
                value,
                location,
            } => {
                assert_eq!(name, "x-api-key");
                assert_eq!(value, "Key s3cret");
                assert_eq!(location, KeyLocation::Query);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(resolve(&[api_key_config("arn:.../missing", None, None)], &providers).is_err());
        assert!(resolve(&[], &providers).unwrap().is_none());
    }

    #[test]
    fn debug_output_redacts_secrets() {
        let credential = OutboundCredential::ApiKey {
            name: "x".into(),
            value: "s3cret".into(),
            location: KeyLocation::Header,
        };
        assert!(!format!("{credential:?}").contains("s3cret"));
    }
}
