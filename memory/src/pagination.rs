//! Opaque continuation tokens.
//!
//! A token is the last position returned, base64url-encoded behind a tag
//! naming the listing it belongs to, so a token from one listing fed to
//! another is rejected instead of silently skipping data.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::error::MemoryError;

/// Default page size of AgentCore's list operations.
pub const DEFAULT_PAGE: u32 = 20;
/// Largest page AgentCore allows.
pub const MAX_PAGE: u32 = 100;

/// Encodes a position of listing `kind`.
pub fn encode(kind: &str, position: &[u8]) -> String {
    let mut bytes = Vec::with_capacity(kind.len() + 1 + position.len());
    bytes.extend_from_slice(kind.as_bytes());
    bytes.push(b':');
    bytes.extend_from_slice(position);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes a token of listing `kind`.
pub fn decode(kind: &str, token: &str) -> Result<Vec<u8>, MemoryError> {
    let bad = || MemoryError::field("nextToken", "invalid pagination token");
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let tag_len = kind.len() + 1;
    if bytes.len() < tag_len || &bytes[..kind.len()] != kind.as_bytes() || bytes[kind.len()] != b':'
    {
        return Err(bad());
    }
    Ok(bytes[tag_len..].to_vec())
}

/// Validates `maxResults` against `1..=max`, defaulting to `default`.
pub fn page_size(max_results: Option<u32>, default: u32, max: u32) -> Result<usize, MemoryError> {
    match max_results {
        None => Ok(default as usize),
        Some(n) if (1..=max).contains(&n) => Ok(n as usize),
        Some(n) => Err(MemoryError::field(
            "maxResults",
            format!("must be 1 to {max}, got {n}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_are_bound_to_their_listing() {
        let token = encode("events", b"\x00abc\xff");
        assert_eq!(decode("events", &token).unwrap(), b"\x00abc\xff");
        assert!(decode("sessions", &token).is_err());
        assert!(decode("events", "not base64!").is_err());
        assert!(page_size(Some(0), 20, 100).is_err());
        assert_eq!(page_size(None, 20, 100).unwrap(), 20);
    }
}
