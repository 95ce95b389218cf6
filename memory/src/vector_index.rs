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
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};

#[derive(Default)]
struct Partition {
    ids: Vec<Arc<str>>,
    /// Each row's strategy, one shared `Arc` per distinct strategy.
    strategies: Vec<Arc<str>>,
    /// The distinct strategies (a handful) `strategies` points into.
    distinct_strategies: Vec<Arc<str>>,
    vectors: Vec<f32>,
    /// Int8 codes of `vectors`, row by row.
    codes: Vec<i8>,
    /// Per-row scale: `vector ≈ code × scale`.
    scales: Vec<f32>,
}

/// Distinct strategies shared per partition (memory resources have a few).
const MAX_INTERNED_STRATEGIES: usize = 32;

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

/// Integer dot product of int8 codes.
#[inline(always)]
fn dot_i8(a: &[i8], b: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let chunks = a.len() / 16 * 16;
    for (x, y) in a[..chunks]
        .chunks_exact(16)
        .zip(b[..chunks].chunks_exact(16))
    {
        for l in 0..16 {
            lanes[l] += i32::from(x[l]) * i32::from(y[l]);
        }
    }
    lanes.iter().sum::<i32>()
        + a[chunks..]
            .iter()
            .zip(&b[chunks..])
            .map(|(x, y)| i32::from(*x) * i32::from(*y))
            .sum::<i32>()
}

/// Dot products of `query` with every `d`-long row of `codes`, into `out`.
fn scan_portable(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    out.clear();
    for row in codes.chunks_exact(d) {
        out.push(dot_i8(query, row));
    }
}

/// [`scan_portable`] with AVX2: 32 codes per instruction, one running sum
/// per row. `maddubs` multiplies unsigned by signed bytes, so the query's
/// magnitudes meet the row's codes with the query's signs applied; codes
/// lie in ±127 ([`quantize`]), so no pair sum saturates and every product
/// equals the portable one exactly.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
#[allow(unsafe_code)]
fn scan_avx2(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
    use std::arch::x86_64::{
        __m256i, _mm_add_epi32, _mm_cvtsi128_si32, _mm_shuffle_epi32, _mm256_abs_epi8,
        _mm256_add_epi32, _mm256_castsi256_si128, _mm256_extracti128_si256, _mm256_loadu_si256,
        _mm256_madd_epi16, _mm256_maddubs_epi16, _mm256_set1_epi16, _mm256_setzero_si256,
        _mm256_sign_epi8,
    };
    out.clear();
    let wide = d.min(query.len()) / 32 * 32;
    let ones = _mm256_set1_epi16(1);
    // SAFETY: every caller passes a 32-byte chunk, what an unaligned 256-bit
    // load reads.
    let load = |chunk: &[i8]| unsafe { _mm256_loadu_si256(chunk.as_ptr().cast()) };
    let signs: Vec<__m256i> = query[..wide].chunks_exact(32).map(load).collect();
    let magnitudes: Vec<__m256i> = signs.iter().map(|q| _mm256_abs_epi8(*q)).collect();
    // `acc` plus the products of query chunk `j` with row chunk `r`.
    let add = |acc: __m256i, j: usize, r: __m256i| {
        let products = _mm256_maddubs_epi16(magnitudes[j], _mm256_sign_epi8(r, signs[j]));
        _mm256_add_epi32(acc, _mm256_madd_epi16(products, ones))
    };
    // Horizontal sum of eight i32 lanes.
    let sum = |acc: __m256i| {
        let half = _mm_add_epi32(
            _mm256_castsi256_si128(acc),
            _mm256_extracti128_si256::<1>(acc),
        );
        let quarter = _mm_add_epi32(half, _mm_shuffle_epi32::<0b01_00_11_10>(half));
        _mm_cvtsi128_si32(_mm_add_epi32(
            quarter,
            _mm_shuffle_epi32::<0b10_11_00_01>(quarter),
        ))
    };
    // Two rows at a time: each query chunk serves both, and the two sums
    // are independent chains.
    let mut pairs = codes.chunks_exact(2 * d);
    for pair in pairs.by_ref() {
        let (first, second) = pair.split_at(d);
        let (mut a, mut b) = (_mm256_setzero_si256(), _mm256_setzero_si256());
        for (j, (x, y)) in first[..wide]
            .chunks_exact(32)
            .zip(second[..wide].chunks_exact(32))
            .enumerate()
        {
            a = add(a, j, load(x));
            b = add(b, j, load(y));
        }
        out.push(sum(a) + dot_i8(&query[wide..], &first[wide..]));
        out.push(sum(b) + dot_i8(&query[wide..], &second[wide..]));
    }
    for row in pairs.remainder().chunks_exact(d) {
        let acc = row[..wide]
            .chunks_exact(32)
            .enumerate()
            .fold(_mm256_setzero_si256(), |acc, (j, r)| add(acc, j, load(r)));
        out.push(sum(acc) + dot_i8(&query[wide..], &row[wide..]));
    }
}

/// Scans with AVX2 where the CPU has it (the scan is the whole cost of a
/// search, and the SSE2 baseline every x86-64 build targets is ~4× slower);
/// no maintained crate offers this kernel with runtime dispatch, hence the
/// intrinsics.
fn scan(query: &[i8], codes: &[i8], d: usize, out: &mut Vec<i32>) {
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

/// Searches over fewer code bytes than this (across the partitions in
/// scope) scan on the calling thread: below it, starting threads costs more
/// than the scan (~1 ms per 10 MB on one core).
const PARALLEL_SCAN_BYTES: usize = 4 << 20;

/// Threads a large scan is split over (at most 4: past that the scan is
/// bound by memory bandwidth, not by cores).
static SCAN_THREADS: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::thread::available_parallelism().map_or(1, |n| n.get().min(4)));

/// A partition a search scans, and which of its rows it keeps (`None`: all).
struct Selected<'a> {
    partition: &'a Partition,
    kept: Option<Vec<bool>>,
}

/// Adds a candidate to `heap` if it is among the best `candidates` so far.
fn offer(heap: &mut BinaryHeap<Ranked>, candidates: usize, approx: f32, id: &Arc<str>) {
    if heap.len() < candidates {
        heap.push(Ranked(approx, id.clone()));
    } else if heap.peek().is_some_and(|weakest| approx > weakest.0) {
        heap.pop();
        heap.push(Ranked(approx, id.clone()));
    }
}

/// Offers every kept row of `rows` to `heap`, counting rows across
/// `selected` as if its partitions were one run. `products` is scratch space.
fn rank_rows(
    query: &[i8],
    selected: &[Selected<'_>],
    rows: Range<usize>,
    d: usize,
    candidates: usize,
    heap: &mut BinaryHeap<Ranked>,
    products: &mut Vec<i32>,
) {
    let mut first_row = 0;
    for Selected { partition, kept } in selected {
        if first_row >= rows.end {
            break;
        }
        let count = partition.ids.len();
        let lo = rows.start.saturating_sub(first_row);
        let hi = (rows.end - first_row).min(count);
        first_row += count;
        if lo >= hi {
            continue;
        }
        scan(query, &partition.codes[lo * d..hi * d], d, products);
        for (row, product) in (lo..hi).zip(products.iter()) {
            if kept.as_ref().is_some_and(|kept| !kept[row]) {
                continue;
            }
            let approx = *product as f32 * partition.scales[row];
            offer(heap, candidates, approx, &partition.ids[row]);
        }
    }
}

/// Rows a scan thread takes at a time (512 KiB of 256-d codes).
const SCAN_CHUNK_ROWS: usize = 2048;

/// The best `candidates` of all of `selected` by quantised score. When the
/// scan spans [`PARALLEL_SCAN_BYTES`] or more it runs on scoped threads
/// that take chunks of rows from a shared counter: one core reads ~10 GB/s,
/// short of what the memory serves, and a thread the OS runs less often
/// (the other core busy with requests or a store's flusher) just takes
/// fewer chunks, so a busy machine scans about as fast as with one thread.
/// Scoped threads rather than a pool: a search that large takes
/// milliseconds, so a thread's ~20 µs start is noise, and no idle pool is
/// kept for the rare large search.
fn rank_all(
    query: &[i8],
    selected: &[Selected<'_>],
    d: usize,
    candidates: usize,
) -> BinaryHeap<Ranked> {
    let rows: usize = selected.iter().map(|s| s.partition.ids.len()).sum();
    let threads = if rows.saturating_mul(d) >= PARALLEL_SCAN_BYTES {
        (*SCAN_THREADS).min(rows.div_ceil(SCAN_CHUNK_ROWS))
    } else {
        1
    };
    let mut heap = BinaryHeap::with_capacity(candidates + 1);
    let mut products = Vec::new();
    if threads <= 1 {
        rank_rows(
            query,
            selected,
            0..rows,
            d,
            candidates,
            &mut heap,
            &mut products,
        );
        return heap;
    }
    let next = AtomicUsize::new(0);
    let work = |heap: &mut BinaryHeap<Ranked>, products: &mut Vec<i32>| loop {
        let start = next.fetch_add(SCAN_CHUNK_ROWS, AtomicOrdering::Relaxed);
        if start >= rows {
            break;
        }
        let range = start..(start + SCAN_CHUNK_ROWS).min(rows);
        rank_rows(query, selected, range, d, candidates, heap, products);
    };
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut heap = BinaryHeap::with_capacity(candidates + 1);
                    work(&mut heap, &mut Vec::new());
                    heap
                })
            })
            .collect();
        // The calling thread scans too.
        work(&mut heap, &mut products);
        for other in others {
            match other.join() {
                Ok(part) => {
                    for Ranked(approx, id) in part {
                        offer(&mut heap, candidates, approx, &id);
                    }
                }
                // `rank_rows` does not panic; were it to, the panic carries on.
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
    });
    heap
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
        let strategy = match partition
            .distinct_strategies
            .iter()
            .find(|s| ***s == *strategy)
        {
            Some(known) => known.clone(),
            None => {
                let new: Arc<str> = Arc::from(strategy);
                // A handful is the norm; past that, rows keep their own copy.
                if partition.distinct_strategies.len() < MAX_INTERNED_STRATEGIES {
                    partition.distinct_strategies.push(new.clone());
                }
                new
            }
        };
        partition.strategies.push(strategy);
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
        let mut selected = Vec::new();
        for (namespace, partition) in self.partitions.range(scope.start().to_string()..) {
            if !namespace.starts_with(scope.start()) {
                break;
            }
            if !scope.covers(namespace) {
                continue;
            }
            let mut kept = Vec::with_capacity(partition.strategies.len());
            let mut last: Option<(&str, bool)> = None;
            for strategy in partition.strategies.iter().map(|s| &**s) {
                let verdict = match last {
                    // Strategies are interned per partition: one pointer
                    // comparison per row.
                    Some((previous, verdict)) if std::ptr::eq(previous, strategy) => verdict,
                    _ => keep(namespace, strategy),
                };
                last = Some((strategy, verdict));
                kept.push(verdict);
            }
            if !kept.contains(&true) {
                continue;
            }
            let all_kept = !kept.contains(&false);
            selected.push(Selected {
                partition,
                kept: (!all_kept).then_some(kept),
            });
        }
        let heap = rank_all(&query_codes, &selected, d, candidates);
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

    /// A reproducible stream of pseudo-random `u32`s (xorshift32).
    fn xorshift(mut seed: u32) -> impl FnMut() -> u32 {
        move || {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            seed
        }
    }

    #[test]
    fn the_avx2_scan_equals_the_portable_one() {
        // Codes at both extremes, and widths with and without a remainder.
        let mut random = xorshift(0x9e37_79b9);
        let mut next = || (random() % 255) as i32 - 127;
        for d in [7, 32, 256, 300] {
            let query: Vec<i8> = (0..d).map(|_| next() as i8).collect();
            let mut codes: Vec<i8> = (0..d * 51).map(|_| next() as i8).collect();
            codes[..d].fill(127);
            codes[d..2 * d].fill(-127);
            let (mut portable, mut fast) = (Vec::new(), Vec::new());
            scan_portable(&query, &codes, d, &mut portable);
            scan(&query, &codes, d, &mut fast);
            assert_eq!(portable, fast, "d = {d}");
            assert_eq!(
                portable[0],
                query.iter().map(|q| i32::from(*q) * 127).sum::<i32>()
            );
        }
    }

    #[test]
    fn a_threaded_scan_keeps_the_same_candidates() {
        // Over PARALLEL_SCAN_BYTES across three partitions, one of them
        // with rows a filter drops, so the row ranges straddle partitions.
        let d = 256;
        let rows_per_partition = PARALLEL_SCAN_BYTES / d / 3 + 500;
        let mut random = xorshift(0x2545_f491);
        let mut next = || (random() % 2001) as f32 / 1000.0 - 1.0;
        let mut index = VectorIndex::new(d);
        for p in 0..3 {
            for r in 0..rows_per_partition {
                let vector: Vec<f32> = (0..d).map(|_| next()).collect();
                let strategy = if r % 5 == 0 { "dropped" } else { "kept" };
                index.upsert(&format!("{p}-{r}"), &format!("/p{p}"), strategy, &vector);
            }
        }
        let query: Vec<f32> = (0..d).map(|_| next()).collect();
        let mut codes = Vec::new();
        quantize(&query, &mut codes);
        let selected: Vec<Selected<'_>> = index
            .partitions
            .values()
            .enumerate()
            .map(|(p, partition)| Selected {
                partition,
                kept: (p == 1).then(|| {
                    partition
                        .strategies
                        .iter()
                        .map(|s| &**s == "kept")
                        .collect()
                }),
            })
            .collect();
        let rows = 3 * rows_per_partition;
        assert!(rows * d >= PARALLEL_SCAN_BYTES);
        let ids = |heap: BinaryHeap<Ranked>| {
            let mut ids: Vec<String> = heap.into_iter().map(|r| r.1.to_string()).collect();
            ids.sort();
            ids
        };
        let mut heap = BinaryHeap::new();
        rank_rows(
            &codes,
            &selected,
            0..rows,
            d,
            40,
            &mut heap,
            &mut Vec::new(),
        );
        let one_thread = ids(heap);
        let threaded = ids(rank_all(&codes, &selected, d, 40));
        assert_eq!(one_thread.len(), 40);
        assert_eq!(one_thread, threaded);
        assert!(
            !one_thread.iter().any(
                |id| id.starts_with("1-") && id[2..].parse::<usize>().is_ok_and(|r| r % 5 == 0)
            ),
            "a dropped row was ranked"
        );
    }

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
