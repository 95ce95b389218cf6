//! `maxResults` / `nextToken` paging of the control plane's listings.
//!
//! A token is the key of the last item returned, base64url-encoded behind
//! the listing's name: a token from one listing is refused by another, and a
//! page resumes after that key even when items were added or removed since.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

use crate::error::ApiError;

/// The paging parameters of a list operation (query string or body).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageQuery {
    /// Page size.
    #[serde(default)]
    pub max_results: Option<u32>,
    /// Where the previous page ended.
    #[serde(default)]
    pub next_token: Option<String>,
}

/// One page of `items`, which must be in ascending `key` order; the token
/// is `None` on the last page.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
    listing: &str,
    max: u32,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let size = match query.max_results {
        None => max,
        Some(n) if (1..=max).contains(&n) => n,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "maxResults must be 1 to {max}, got {n}"
            )));
        }
    } as usize;
    let after = match query.next_token.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(token) => Some(decode(listing, token)?),
    };
    let mut page: Vec<T> = items
        .into_iter()
        .filter(|item| after.as_ref().is_none_or(|a| key(item) > *a))
        .take(size + 1)
        .collect();
    let next = if page.len() > size {
        page.truncate(size);
        page.last().map(|last| encode(listing, &key(last)))
    } else {
        None
    };
    Ok((page, next))
}

fn encode(listing: &str, key: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{listing}:{key}"))
}

fn decode(listing: &str, token: &str) -> Result<String, ApiError> {
    let bad = || ApiError::validation("nextToken is not a token of this listing");
    let bytes = URL_SAFE_NO_PAD.decode(token.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(listing)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_string)
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn query(max: Option<u32>, token: Option<String>) -> PageQuery {
        PageQuery {
            max_results: max,
            next_token: token,
        }
    }

    #[test]
    fn pages_cover_everything_once_and_tokens_stay_in_their_listing() {
        let items: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = page(
                items.clone(),
                Clone::clone,
                &query(Some(2), token),
                "runtimes",
                100,
            )
            .unwrap();
            seen.extend(page);
            token = next;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, items);
        let (_, next) = page(
            items.clone(),
            Clone::clone,
            &query(Some(1), None),
            "runtimes",
            100,
        )
        .unwrap();
        assert!(
            page(
                items.clone(),
                Clone::clone,
                &query(None, next),
                "gateways",
                100
            )
            .is_err()
        );
        assert!(
            page(
                items.clone(),
                Clone::clone,
                &query(Some(0), None),
                "runtimes",
                100
            )
            .is_err()
        );
        assert!(
            page(
                items.clone(),
                Clone::clone,
                &query(Some(101), None),
                "runtimes",
                100
            )
            .is_err()
        );
        // A removed item does not derail the next page.
        let (_, next) = page(
            items.clone(),
            Clone::clone,
            &query(Some(2), None),
            "runtimes",
            100,
        )
        .unwrap();
        let fewer: Vec<String> = items.iter().filter(|i| *i != "r1").cloned().collect();
        let (rest, _) = page(fewer, Clone::clone, &query(None, next), "runtimes", 100).unwrap();
        assert_eq!(rest, ["r2", "r3", "r4"]);
    }
}
