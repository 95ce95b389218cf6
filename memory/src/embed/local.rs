//! The built-in embedder: no network, no model download.
//!
//! Feature hashing of words, word pairs and character trigrams into a fixed
//! number of dimensions, with sublinear term weights. It captures lexical
//! and some morphological similarity ("prefers" ~ "preference"), which is
//! what an offline default can honestly offer; plug in Bedrock or an
//! OpenAI-compatible endpoint for semantic embeddings.

use async_trait::async_trait;

use super::{EmbedError, Embedder, normalize};

/// Hashing embedder; deterministic across runs, platforms and Rust versions.
#[derive(Debug, Clone)]
pub struct LocalEmbedder {
    dimensions: usize,
}

impl Default for LocalEmbedder {
    fn default() -> Self {
        LocalEmbedder { dimensions: 256 }
    }
}

impl LocalEmbedder {
    /// An embedder producing `dimensions`-long vectors (at least 16).
    pub fn new(dimensions: usize) -> Self {
        LocalEmbedder {
            dimensions: dimensions.max(16),
        }
    }

    /// Embeds one text synchronously.
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let mut v = vec![0f32; self.dimensions];
        let lower = text.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty() && !is_stopword(w))
            .collect();
        let mut add = |feature: &[u8], weight: f32| {
            let h = fnv1a(feature);
            let index = (h % self.dimensions as u64) as usize;
            // A second hash bit picks the sign, so collisions cancel out on average.
            let sign = if (h >> 63) == 0 { 1.0 } else { -1.0 };
            v[index] += sign * weight;
        };
        for w in &words {
            add(w.as_bytes(), 1.0);
            let padded = format!("^{w}$");
            let chars: Vec<char> = padded.chars().collect();
            for tri in chars.windows(3) {
                let t: String = tri.iter().collect();
                add(format!("#{t}").as_bytes(), 0.35);
            }
        }
        for pair in words.windows(2) {
            add(format!("{} {}", pair[0], pair[1]).as_bytes(), 0.5);
        }
        // Sublinear term frequency: repeated words do not dominate.
        for x in v.iter_mut() {
            *x = x.signum() * (1.0 + x.abs()).ln();
        }
        normalize(&mut v);
        v
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn fingerprint(&self) -> String {
        format!("corral.local-hash-v1/{}", self.dimensions)
    }

    fn dimensions(&self) -> usize {
        self.dimensions
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }
}

/// FNV-1a 64: tiny and stable forever (std's hasher may change between
/// releases, which would silently invalidate every stored vector).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn is_stopword(w: &str) -> bool {
    matches!(
        w,
        "a" | "an"
            | "the"
            | "is"
            | "are"
            | "was"
            | "were"
            | "be"
            | "to"
            | "of"
            | "and"
            | "or"
            | "in"
            | "on"
            | "at"
            | "for"
            | "with"
            | "it"
            | "this"
            | "that"
            | "i"
            | "my"
            | "me"
            | "you"
            | "your"
            | "do"
            | "does"
            | "what"
            | "which"
            | "s"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dot(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn related_texts_score_above_unrelated_ones() {
        let e = LocalEmbedder::default();
        let q = e.embed_one("what is the user's favourite colour?");
        let related = e.embed_one("The user's favourite colour is green");
        let unrelated = e.embed_one("Orders ship from the Dublin warehouse on Mondays");
        assert!(dot(&q, &related) > dot(&q, &unrelated) + 0.2);
        assert!((dot(&related, &related) - 1.0).abs() < 1e-4);
    }

    #[test]
    fn deterministic_and_sized() {
        let e = LocalEmbedder::new(64);
        assert_eq!(e.embed_one("hello world"), e.embed_one("hello world"));
        assert_eq!(e.embed_one("").len(), 64);
        assert!(e.embed_one("").iter().all(|x| *x == 0.0));
    }
}
