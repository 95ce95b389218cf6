//! In-memory vector index, partitioned by namespace.
//!
//! A brute-force scan is bound by memory bandwidth (100k × 256 `f32` is
//! 100 MB per query), so the scan runs over int8-quantised copies (a quarter
//! of the bytes) and the best `4k` candidates are re-ranked with the exact
//! `f32` vectors. A namespace-prefix query touches only matching partitions.
//! No graph index (and its recall trade-offs and rebuild costs) is needed at
//! the scale one agent runtime holds.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::Arc;

#[derive(Default)]
struct Partition {
    ids: Vec<Arc<str>>,
    strategies: Vec<Arc<str>>,
    vectors: Vec<f32>,
    /// Int8 codes of `vectors`, row by row.
    codes: Vec<i8>,
    /// Per-row scale: `vector ≈ code × scale`.
    scales: Vec<f32>,
}

/// Candidates kept from the quantised scan per result wanted.
const RERANK_FACTOR: usize = 4;

/// Int8 codes of `v` and their scale.
fn quantize(v: &[f32], codes: &mut Vec<i8>) -> f32 {
    let max = v.iter().fold(0f32, |m, x| m.max(x.abs()));
    let scale = if max > 0.0 { max / 127.0 } else { 1.0 };
    codes.extend(
        v.iter()
            .map(|x| (x / scale).round().clamp(-127.0, 127.0) as i8),
    );
    scale
}

/// Integer dot product of int8 codes, 32 at a time: each product fits an
/// `i16`, which lets the compiler use packed multiply-add instructions.
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let chunks = a.len() / 32 * 32;
    let mut acc = 0i32;
    for (x, y) in a[..chunks]
        .chunks_exact(32)
        .zip(b[..chunks].chunks_exact(32))
    {
        let mut lanes = [0i16; 32];
        for l in 0..32 {
            lanes[l] = i16::from(x[l]) * i16::from(y[l]);
        }
        acc += lanes.iter().map(|v| i32::from(*v)).sum::<i32>();
    }
    acc + a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| i32::from(*x) * i32::from(*y))
        .sum::<i32>()
}

/// Dot products of `query` with every `d`-long row of `codes`, into `out`.
#[inline(always)]
fn scan_portable(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    out.clear();
    out.extend(codes.chunks_exact(d).map(|row| dot_i8(query, row)));
}

/// [`scan_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn scan_avx2(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    scan_portable(query, codes, d, out);
}

/// [`scan_portable`] compiled for AVX-512 (byte/word instructions).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512bw")]
fn scan_avx512(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    scan_portable(query, codes, d, out);
}

/// Scans with the widest instructions this CPU has. The scan is the whole
/// cost of a search, and AVX2 / AVX-512 make it 2–4× faster than the SSE2 baseline
/// every x86-64 build targets; no maintained crate offers safe runtime
/// dispatch for this without a C library, hence the one `unsafe` call.
fn scan(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512bw") {
        #[allow(unsafe_code)]
        // SAFETY: `scan_avx512` only needs AVX-512BW, detected on this CPU above.
        unsafe {
            scan_avx512(query, codes, d, out)
        };
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        #[allow(unsafe_code)]
        // SAFETY: `scan_avx2` only needs AVX2, detected on this CPU above.
        unsafe {
            scan_avx2(query, codes, d, out)
        };
        return;
    }
    scan_portable(query, codes, d, out);
}

/// Which records a search considers.
#[derive(Debug, Clone, Copy)]
pub enum NamespaceScope<'a> {
    /// Namespaces starting with this string.
    Prefix(&'a str),
    /// This namespace and those below it (`/a/b` covers `/a/b` and `/a/b/c`).
    Path(&'a str),
    /// Every namespace.
    All,
}

impl NamespaceScope<'_> {
    fn start(&self) -> &str {
        match self {
            NamespaceScope::Prefix(p) | NamespaceScope::Path(p) => p,
            NamespaceScope::All => "",
        }
    }

    pub(crate) fn covers(&self, namespace: &str) -> bool {
        match self {
            NamespaceScope::All => true,
            NamespaceScope::Prefix(p) => namespace.starts_with(p),
            NamespaceScope::Path(p) => {
                let p = p.trim_end_matches('/');
                namespace == p
                    || (namespace.starts_with(p) && namespace[p.len()..].starts_with('/'))
            }
        }
    }
}

/// A scored hit.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// Record id.
    pub id: Arc<str>,
    /// Cosine similarity.
    pub score: f32,
}

struct Ranked(f32, Arc<str>);

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    // Reversed so the heap's top is the weakest hit kept so far; ties break
    // on id so results are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
            .total_cmp(&self.0)
            .then_with(|| self.1.cmp(&other.1))
    }
}

/// The vectors of one memory's records.
pub struct VectorIndex {
    dimensions: usize,
    partitions: BTreeMap<String, Partition>,
    positions: HashMap<Arc<str>, (String, usize)>,
}

impl VectorIndex {
    /// An empty index of `dimensions`-long vectors.
    pub fn new(dimensions: usize) -> Self {
        VectorIndex {
            dimensions,
            partitions: BTreeMap::new(),
            positions: HashMap::new(),
        }
    }

    /// Number of records indexed.
    pub fn len(&self) -> usize {
        self.positions.len()
    }

    /// Whether the index is empty.
    pub fn is_empty(&self) -> bool {
        self.positions.is_empty()
    }

    /// Adds or replaces a record's vector. Vectors of the wrong length are ignored.
    pub fn upsert(&mut self, id: &str, namespace: &str, strategy: &str, vector: &[f32]) {
        if vector.len() != self.dimensions {
            return;
        }
        self.remove(id);
        let id: Arc<str> = Arc::from(id);
        let partition = self.partitions.entry(namespace.to_string()).or_default();
        partition.ids.push(id.clone());
        partition.strategies.push(Arc::from(strategy));
        partition.vectors.extend_from_slice(vector);
        let scale = quantize(vector, &mut partition.codes);
        partition.scales.push(scale);
        self.positions
            .insert(id, (namespace.to_string(), partition.ids.len() - 1));
    }

    /// Removes a record; absent ids are ignored.
    pub fn remove(&mut self, id: &str) {
        let Some((namespace, index)) = self.positions.remove(id) else {
            return;
        };
        let Some(partition) = self.partitions.get_mut(&namespace) else {
            return;
        };
        let last = partition.ids.len() - 1;
        partition.ids.swap_remove(index);
        partition.strategies.swap_remove(index);
        let d = self.dimensions;
        if index != last {
            partition
                .vectors
                .copy_within(last * d..(last + 1) * d, index * d);
            partition
                .codes
                .copy_within(last * d..(last + 1) * d, index * d);
            partition.scales[index] = partition.scales[last];
            let moved = partition.ids[index].clone();
            self.positions.insert(moved, (namespace.clone(), index));
        }
        partition.vectors.truncate(last * d);
        partition.codes.truncate(last * d);
        partition.scales.truncate(last);
        if partition.ids.is_empty() {
            self.partitions.remove(&namespace);
        }
    }

    /// The `k` records most similar to `query` in `scope`, best first;
    /// `strategy` restricts to one strategy's records.
    pub fn search(
        &self,
        query: &[f32],
        scope: NamespaceScope<'_>,
        strategy: Option<&str>,
        k: usize,
    ) -> Vec<Hit> {
        self.search_where(query, scope, k, |_, s| {
            strategy.is_none_or(|want| want == s)
        })
    }

    /// The `k` records most similar to `query` in `scope`, best first, among
    /// those whose namespace and strategy satisfy `keep(namespace, strategy)`.
    /// Records `keep` refuses take no place among the `k`: however many there
    /// are, they cannot push kept records out. `keep` is asked once per run
    /// of rows of one strategy in a namespace, and partitions without a kept
    /// row are not scanned.
    pub fn search_where(
        &self,
        query: &[f32],
        scope: NamespaceScope<'_>,
        k: usize,
        keep: impl Fn(&str, &str) -> bool,
    ) -> Vec<Hit> {
        if query.len() != self.dimensions || k == 0 {
            return Vec::new();
        }
        let d = self.dimensions;
        let mut query_codes = Vec::with_capacity(d);
        // The query's own scale is common to every row: ranking ignores it.
        quantize(query, &mut query_codes);
        let candidates = k.saturating_mul(RERANK_FACTOR);
        let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(candidates + 1);
        let mut products = Vec::new();
        let mut kept = Vec::new();
        for (namespace, partition) in self.partitions.range(scope.start().to_string()..) {
            if !namespace.starts_with(scope.start()) {
                break;
            }
            if !scope.covers(namespace) {
                continue;
            }
            kept.clear();
            let mut last: Option<(&str, bool)> = None;
            for strategy in partition.strategies.iter().map(|s| &**s) {
                let verdict = match last {
                    Some((previous, verdict)) if previous == strategy => verdict,
                    _ => keep(namespace, strategy),
                };
                last = Some((strategy, verdict));
                kept.push(verdict);
            }
            if !kept.contains(&true) {
                continue;
            }
            scan(&query_codes, &partition.codes, d, &mut products);
            for (i, product) in products.iter().enumerate() {
                if !kept[i] {
                    continue;
                }
                let approx = *product as f32 * partition.scales[i];
                if heap.len() < candidates {
                    heap.push(Ranked(approx, partition.ids[i].clone()));
                } else if heap.peek().is_some_and(|weakest| approx > weakest.0) {
                    heap.pop();
                    heap.push(Ranked(approx, partition.ids[i].clone()));
                }
            }
        }
        // Re-rank the candidates with the exact vectors.
        let mut hits: Vec<Hit> = heap
            .into_iter()
            .filter_map(|Ranked(_, id)| {
                let (namespace, index) = self.positions.get(&id)?;
                let row = self
                    .partitions
                    .get(namespace)?
                    .vectors
                    .get(index * d..(index + 1) * d)?;
                Some(Hit {
                    score: dot(query, row),
                    id,
                })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score).then_with(|| a.id.cmp(&b.id)));
        hits.truncate(k);
        hits
    }
}

/// Dot product in eight independent lanes (the compiler vectorises this).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let chunks = a.len() / 8 * 8;
    for (x, y) in a[..chunks].chunks_exact(8).zip(b[..chunks].chunks_exact(8)) {
        for l in 0..8 {
            lanes[l] += x[l] * y[l];
        }
    }
    let tail: f32 = a[chunks..]
        .iter()
        .zip(&b[chunks..])
        .map(|(x, y)| x * y)
        .sum();
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(i: usize, d: usize) -> Vec<f32> {
        let mut v = vec![0.0; d];
        v[i % d] = 1.0;
        v
    }

    #[test]
    fn quantised_scan_finds_the_exact_top_k() {
        let d = 64;
        let mut x: u64 = 7;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) - 0.5
        };
        let mut index = VectorIndex::new(d);
        let mut rows = Vec::new();
        for i in 0..2000 {
            let mut v: Vec<f32> = (0..d).map(|_| next()).collect();
            crate::embed::normalize(&mut v);
            index.upsert(&format!("r{i}"), "/n", "s", &v);
            rows.push(v);
        }
        for _ in 0..20 {
            let mut q: Vec<f32> = (0..d).map(|_| next()).collect();
            crate::embed::normalize(&mut q);
            let mut exact: Vec<(f32, usize)> = rows
                .iter()
                .enumerate()
                .map(|(i, r)| (dot(&q, r), i))
                .collect();
            exact.sort_by(|a, b| b.0.total_cmp(&a.0));
            let hits = index.search(&q, NamespaceScope::All, None, 10);
            let got: Vec<String> = hits.iter().map(|h| h.id.to_string()).collect();
            let want: Vec<String> = exact[..10].iter().map(|(_, i)| format!("r{i}")).collect();
            assert_eq!(got, want);
            assert!((hits[0].score - exact[0].0).abs() < 1e-6);
        }
    }

    #[test]
    fn search_ranks_within_the_namespace_scope() {
        let mut index = VectorIndex::new(4);
        index.upsert("a", "/users/alice", "s", &[1.0, 0.0, 0.0, 0.0]);
        index.upsert("b", "/users/alice/sessions/1", "s", &[0.8, 0.6, 0.0, 0.0]);
        index.upsert("c", "/users/bob", "s", &[1.0, 0.0, 0.0, 0.0]);
        index.upsert("d", "/users/alicexyz", "t", &[1.0, 0.0, 0.0, 0.0]);
        let q = [1.0, 0.0, 0.0, 0.0];
        let ids = |hits: Vec<Hit>| {
            hits.into_iter()
                .map(|h| h.id.to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids(index.search(&q, NamespaceScope::Path("/users/alice"), None, 10)),
            ["a", "b"]
        );
        assert_eq!(
            ids(index.search(&q, NamespaceScope::Prefix("/users/alice"), None, 10)),
            ["a", "d", "b"]
        );
        assert_eq!(
            ids(index.search(&q, NamespaceScope::All, Some("t"), 10)),
            ["d"]
        );
        assert_eq!(index.search(&q, NamespaceScope::All, None, 2).len(), 2);
        // Refused records do not count towards `k`.
        let exact = |ns: &str, _: &str| ns == "/users/alice/sessions/1";
        assert_eq!(
            ids(index.search_where(&q, NamespaceScope::Path("/users/alice"), 1, exact)),
            ["b"]
        );
    }

    #[test]
    fn remove_and_replace_keep_positions_consistent() {
        let mut index = VectorIndex::new(8);
        for i in 0..20 {
            index.upsert(&format!("r{i}"), "/n", "s", &unit(i, 8));
        }
        for i in (0..20).step_by(3) {
            index.remove(&format!("r{i}"));
        }
        index.upsert("r1", "/m", "s", &unit(5, 8));
        assert_eq!(index.len(), 13);
        let hits = index.search(&unit(5, 8), NamespaceScope::All, None, 3);
        assert_eq!(hits[0].score, 1.0);
        assert!(hits.iter().any(|h| &*h.id == "r1"));
        assert!(
            index
                .search(&unit(1, 8), NamespaceScope::Path("/n"), None, 20)
                .iter()
                .all(|h| &*h.id != "r1")
        );
    }
}
