//! `maxResults` / `nextToken` paging of control-plane listings.
//!
//! A token is the key of the last item returned, base64url-encoded behind
//! the listing's name: a token from one listing is refused by another, and a
//! page resumes after that key even when items were added or removed since.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;

/// The paging parameters of a list operation.
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

/// A page request that cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// `maxResults` is out of range.
    #[error("maxResults must be 1 to {max}, got {got}")]
    MaxResults {
        /// The largest page.
        max: u32,
        /// What was asked.
        got: u32,
    },
    /// `nextToken` was not issued by this listing.
    #[error("nextToken is not a token of this listing")]
    Token,
}

/// One page of `items`, which must be in ascending `key` order (at most
/// `max` per page, `max` by default); the token is `None` on the last page.
pub fn page<T>(
    items: Vec<T>,
    key: impl Fn(&T) -> String,
    query: &PageQuery,
    listing: &str,
    max: u32,
) -> Result<(Vec<T>, Option<String>), PageError> {
    let size = match query.max_results {
        None => max,
        Some(n) if (1..=max).contains(&n) => n,
        Some(got) => return Err(PageError::MaxResults { max, got }),
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

fn decode(listing: &str, token: &str) -> Result<String, PageError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(token.trim())
        .map_err(|_| PageError::Token)?;
    let text = String::from_utf8(bytes).map_err(|_| PageError::Token)?;
    text.strip_prefix(listing)
        .and_then(|rest| rest.strip_prefix(':'))
        .map(str::to_string)
        .ok_or(PageError::Token)
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

    fn list(
        items: &[String],
        q: PageQuery,
        listing: &str,
    ) -> Result<(Vec<String>, Option<String>), PageError> {
        page(items.to_vec(), Clone::clone, &q, listing, 100)
    }

    #[test]
    fn pages_cover_everything_once_and_tokens_stay_in_their_listing() {
        let items: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
        let mut seen = Vec::new();
        let mut token = None;
        loop {
            let (page, next) = list(&items, query(Some(2), token), "runtimes").unwrap();
            seen.extend(page);
            token = next;
            if token.is_none() {
                break;
            }
        }
        assert_eq!(seen, items);
        let (_, next) = list(&items, query(Some(1), None), "runtimes").unwrap();
        assert!(matches!(
            list(&items, query(None, next), "gateways"),
            Err(PageError::Token)
        ));
        assert!(list(&items, query(Some(0), None), "runtimes").is_err());
        assert!(list(&items, query(Some(101), None), "runtimes").is_err());
        // A removed item does not derail the next page.
        let (_, next) = list(&items, query(Some(2), None), "runtimes").unwrap();
        let fewer: Vec<String> = items.iter().filter(|i| *i != "r1").cloned().collect();
        let (rest, _) = list(&fewer, query(None, next), "runtimes").unwrap();
        assert_eq!(rest, ["r2", "r3", "r4"]);
    }
}
