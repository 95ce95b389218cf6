//! A span sink that encodes each span on the thread that ends it and
//! delivers the bytes in batches from a worker thread of its own.
//!
//! Replaces the SDK's `BatchSpanProcessor` (and its exporters): that queue
//! carried `SpanData` — a graph of small allocations — to an export thread
//! that converted, encoded and freed it there, cloning it first for every
//! further sink. Here a span is encoded once per sink into a thread-local
//! buffer and copied into the sink's current batch — together with the
//! spans that ended with it (a tree's held spans), under one lock of the
//! queue; the worker only hands whole batches to the delivery (an OTLP
//! request, a file append).
//!
//! Encoding on the worker instead was tried twice, on the tracing bench
//! (`cargo bench -p corral-host --bench tracing`). Handing it the span
//! itself (an `Arc` of the record) saved the agent's thread nothing: the
//! span's memory then moved to the other core and was freed there, which
//! cost as much as the encoding. Handing every sink the OTLP bytes and
//! letting the store's worker transcode them to its JSON lines took 2–3
//! points off a step with the store on, but doubled the store's CPU per
//! span (reading the bytes back costs more than writing JSON from the
//! record), and that worker then competed with the agents for the cores.
//!
//! The batching rules are the SDK's: a batch leaves when it holds
//! `max_export_batch_size` spans or `scheduled_delay` after the last timed
//! export, and at most `max_queue_size` spans wait — later ones are dropped
//! and counted.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::QueueConfig;
use crate::error::ExportError;
use crate::finished_span::{FinishedSpan, FinishedSpans};
use crate::sinks::{SinkError, SpanSink};

/// How a sink writes one span.
pub(crate) trait SpanEncoding: Send + Sync + 'static {
    /// Appends `span`'s encoding to `out`; a batch is such encodings back
    /// to back.
    fn encode(&self, span: &FinishedSpan<'_>, out: &mut Vec<u8>);
}

/// Where a sink's batches go.
pub(crate) trait BatchDelivery: Send + 'static {
    /// Delivers `batch`, the encodings of `spans` spans.
    fn deliver(&mut self, batch: &[u8], spans: usize) -> Result<(), ExportError>;
}

/// Counters of one span sink.
#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    /// Spans in successfully delivered batches.
    pub(crate) exported: AtomicU64,
    /// Spans turned away because the queue was full.
    pub(crate) dropped: AtomicU64,
    /// Deliveries that failed.
    pub(crate) failed_exports: AtomicU64,
}

/// Encoded spans waiting together.
#[derive(Debug, Default)]
struct Batch {
    bytes: Vec<u8>,
    spans: usize,
}

/// What the span-ending threads and the worker share, behind one lock.
#[derive(Debug, Default)]
struct Queue {
    /// Full batches, oldest first.
    ready: VecDeque<Batch>,
    /// The batch being filled.
    current: Batch,
    /// Spans in `ready` and `current`.
    queued: usize,
    /// Flushes asked for, and done, so far.
    flushes_asked: u64,
    flushes_done: u64,
    /// Set by shutdown: the worker delivers what is queued and exits.
    stopping: bool,
    /// Delivered batches' buffers, for reuse.
    spare: Vec<Vec<u8>>,
}

impl Queue {
    /// Moves the batch being filled to the ready ones, starting a new one
    /// in a spare buffer.
    fn seal_current(&mut self) {
        let bytes = self.spare.pop().unwrap_or_default();
        let full = std::mem::replace(&mut self.current, Batch { bytes, spans: 0 });
        self.ready.push_back(full);
    }
}

/// Spans encoded back to back, outside the queue's lock.
#[derive(Debug, Default)]
struct Encoded {
    bytes: Vec<u8>,
    /// Where each span's encoding ends in `bytes`.
    ends: Vec<usize>,
}

thread_local! {
    /// Where spans are encoded before they are copied into a sink's batch,
    /// so the encoding runs outside the sink's lock without allocating.
    static SCRATCH: RefCell<Encoded> = const {
        RefCell::new(Encoded {
            bytes: Vec::new(),
            ends: Vec::new(),
        })
    };
}

/// Most of a thread's encoding scratch buffer kept between spans.
const SCRATCH_KEEP: usize = 64 << 10;

/// Buffers kept for reuse: one filling, one being delivered.
const SPARE_BUFFERS: usize = 2;
/// Most reserved up front for a fresh batch buffer.
const MAX_RESERVE: usize = 4 << 20;

#[derive(Debug)]
struct Shared {
    name: &'static str,
    queue: Mutex<Queue>,
    /// Wakes the worker: a batch is full, or a flush or shutdown is asked.
    work: Condvar,
    /// Wakes flushers: the worker finished a round.
    done: Condvar,
    limits: QueueConfig,
    counters: Arc<SinkCounters>,
}

/// A span sink with its own worker thread.
pub(crate) struct BatchSink {
    shared: Arc<Shared>,
    encoding: Box<dyn SpanEncoding>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for BatchSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchSink")
            .field("name", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl BatchSink {
    /// A sink named `name` (its worker thread is `corral-spans-{name}`)
    /// encoding with `encoding` and delivering through `delivery`.
    pub(crate) fn start(
        name: &'static str,
        encoding: impl SpanEncoding,
        delivery: impl BatchDelivery,
        limits: &QueueConfig,
        counters: Arc<SinkCounters>,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            name,
            queue: Mutex::new(Queue::default()),
            work: Condvar::new(),
            done: Condvar::new(),
            limits: *limits,
            counters,
        });
        let worker = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name(format!("corral-spans-{name}"))
                .spawn(move || run(&shared, delivery))?
        };
        Ok(Self {
            shared,
            encoding: Box::new(encoding),
            worker: Mutex::new(Some(worker)),
        })
    }

    /// Encodes `spans` into `encoded`, then queues them under one lock of
    /// the queue; spans past a full queue are dropped and counted.
    fn push(&self, spans: &dyn FinishedSpans, encoded: &mut Encoded) {
        encoded.bytes.clear();
        encoded.ends.clear();
        spans.for_each(&mut |span| {
            self.encoding.encode(span, &mut encoded.bytes);
            encoded.ends.push(encoded.bytes.len());
        });
        let shared = &*self.shared;
        let batch_size = shared.limits.max_export_batch_size;
        let (mut dropped, mut sealed, mut start) = (0_u64, false, 0);
        let mut queue = shared.queue.lock();
        for &end in &encoded.ends {
            let bytes = &encoded.bytes[start..end];
            start = end;
            if queue.stopping || queue.queued >= shared.limits.max_queue_size {
                dropped += 1;
                continue;
            }
            queue.queued += 1;
            if queue.current.bytes.capacity() == 0 {
                // A fresh buffer: room for a whole batch of spans like this
                // one, instead of doubling (and faulting in new pages) as it
                // fills.
                let batch = bytes.len().saturating_mul(batch_size);
                queue.current.bytes.reserve(batch.min(MAX_RESERVE));
            }
            queue.current.bytes.extend_from_slice(bytes);
            queue.current.spans += 1;
            if queue.current.spans >= batch_size {
                queue.seal_current();
                sealed = true;
            }
        }
        drop(queue);
        if dropped > 0 {
            shared
                .counters
                .dropped
                .fetch_add(dropped, Ordering::Relaxed);
        }
        if sealed {
            shared.work.notify_one();
        }
    }

    /// Asks the worker for a round (a flush, or the last one) and waits up
    /// to `timeout` for it.
    fn round(&self, stop: bool, timeout: Duration) -> Result<(), SinkError> {
        let shared = &*self.shared;
        let deadline = Instant::now() + timeout;
        let mut queue = shared.queue.lock();
        if queue.stopping {
            return Ok(());
        }
        queue.stopping = stop;
        queue.flushes_asked += 1;
        let target = queue.flushes_asked;
        shared.work.notify_one();
        while queue.flushes_done < target {
            if shared.done.wait_until(&mut queue, deadline).timed_out() {
                return Err(SinkError::TimedOut {
                    sink: shared.name,
                    waited: timeout,
                });
            }
        }
        Ok(())
    }
}

impl SpanSink for BatchSink {
    fn on_end(&self, spans: &dyn FinishedSpans) {
        SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
            Ok(mut scratch) => {
                self.push(spans, &mut scratch);
                // One huge span (captured content) must not pin its size on
                // every thread that ever ended one.
                if scratch.bytes.capacity() > SCRATCH_KEEP {
                    scratch.bytes.clear();
                    scratch.bytes.shrink_to(SCRATCH_KEEP);
                }
            }
            // Only if encoding ended a span on this thread (it does not).
            Err(_) => self.push(spans, &mut Encoded::default()),
        });
    }

    fn force_flush(&self, timeout: Duration) -> Result<(), SinkError> {
        self.round(false, timeout)
    }

    fn shutdown(&self, timeout: Duration) -> Result<(), SinkError> {
        let result = self.round(true, timeout);
        if result.is_ok()
            && let Some(worker) = self.worker.lock().take()
        {
            // The worker has finished its last round and is returning.
            let _ = worker.join();
        }
        result
    }
}

impl Drop for BatchSink {
    fn drop(&mut self) {
        // Without a shutdown, the worker still delivers what is queued, then
        // exits; nothing waits for it.
        let mut queue = self.shared.queue.lock();
        if !queue.stopping {
            queue.stopping = true;
            queue.flushes_asked += 1;
            self.shared.work.notify_one();
        }
    }
}

/// The worker: delivers full batches as they come, everything on each tick
/// of `scheduled_delay` and on each flush, and exits after the last round.
fn run(shared: &Shared, mut delivery: impl BatchDelivery) {
    let delay = shared.limits.scheduled_delay;
    let mut next_tick = Instant::now() + delay;
    let mut failing = false;
    loop {
        let (batches, round, stopping) = {
            let mut queue = shared.queue.lock();
            while queue.ready.is_empty()
                && queue.flushes_asked == queue.flushes_done
                && !shared.work.wait_until(&mut queue, next_tick).timed_out()
            {}
            let now = Instant::now();
            let ticked = now >= next_tick;
            if ticked {
                next_tick = now + delay;
            }
            if (ticked || queue.flushes_asked != queue.flushes_done) && queue.current.spans > 0 {
                queue.seal_current();
            }
            let batches: Vec<Batch> = queue.ready.drain(..).collect();
            queue.queued -= batches.iter().map(|b| b.spans).sum::<usize>();
            (batches, queue.flushes_asked, queue.stopping)
        };
        for mut batch in batches {
            match delivery.deliver(&batch.bytes, batch.spans) {
                Ok(()) => {
                    failing = false;
                    shared
                        .counters
                        .exported
                        .fetch_add(batch.spans as u64, Ordering::Relaxed);
                }
                Err(error) => {
                    shared
                        .counters
                        .failed_exports
                        .fetch_add(1, Ordering::Relaxed);
                    // Once per outage, not once per batch.
                    if !failing {
                        tracing::warn!(
                            sink = shared.name,
                            error = &error as &dyn std::error::Error,
                            "span export failed; spans are dropped until it recovers"
                        );
                    }
                    failing = true;
                }
            }
            batch.bytes.clear();
            let mut queue = shared.queue.lock();
            if queue.spare.len() < SPARE_BUFFERS {
                queue.spare.push(batch.bytes);
            }
        }
        let mut queue = shared.queue.lock();
        queue.flushes_done = round;
        shared.done.notify_all();
        if stopping {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use opentelemetry_sdk::trace::SpanData;

    use super::*;

    /// Encodes a span as its name and a newline.
    struct Names;

    impl SpanEncoding for Names {
        fn encode(&self, span: &FinishedSpan<'_>, out: &mut Vec<u8>) {
            out.extend_from_slice(span.name.as_bytes());
            out.push(b'\n');
        }
    }

    /// Sends every batch to a channel; fails while `fail` is set, and
    /// blocks until `gate` has a message when there is a gate.
    struct Channel {
        batches: mpsc::Sender<(String, usize)>,
        gate: Option<mpsc::Receiver<()>>,
        fail: bool,
    }

    impl BatchDelivery for Channel {
        fn deliver(&mut self, batch: &[u8], spans: usize) -> Result<(), ExportError> {
            if let Some(gate) = &self.gate {
                let _ = gate.recv();
            }
            if self.fail {
                return Err(ExportError::Timeout(Duration::ZERO));
            }
            let _ = self
                .batches
                .send((String::from_utf8_lossy(batch).into_owned(), spans));
            Ok(())
        }
    }

    fn span(name: &str) -> SpanData {
        use opentelemetry::trace::{SpanContext, SpanKind, Status};
        SpanData {
            span_context: SpanContext::empty_context(),
            parent_span_id: opentelemetry::trace::SpanId::INVALID,
            parent_span_is_remote: false,
            span_kind: SpanKind::Internal,
            name: name.to_string().into(),
            start_time: std::time::SystemTime::now(),
            end_time: std::time::SystemTime::now(),
            attributes: Vec::new(),
            dropped_attributes_count: 0,
            events: Default::default(),
            links: Default::default(),
            status: Status::Unset,
            instrumentation_scope: Default::default(),
        }
    }

    fn limits(queue: usize, batch: usize, delay_ms: u64) -> QueueConfig {
        QueueConfig {
            max_queue_size: queue,
            max_export_batch_size: batch,
            scheduled_delay: Duration::from_millis(delay_ms),
        }
    }

    const WAIT: Duration = Duration::from_secs(10);

    fn start(delivery: Channel, limits: &QueueConfig, counters: Arc<SinkCounters>) -> BatchSink {
        match BatchSink::start("test", Names, delivery, limits, counters) {
            Ok(sink) => sink,
            Err(error) => panic!("no worker thread: {error}"),
        }
    }

    /// A sink whose worker blocks on `open` before each delivery, with
    /// what it delivers and its counters.
    struct Gated {
        sink: BatchSink,
        batches: mpsc::Receiver<(String, usize)>,
        open: mpsc::Sender<()>,
        counters: Arc<SinkCounters>,
    }

    fn gated(limits: &QueueConfig) -> Gated {
        let (tx, batches) = mpsc::channel();
        let (open, gate) = mpsc::channel();
        let counters = Arc::new(SinkCounters::default());
        let delivery = Channel {
            batches: tx,
            gate: Some(gate),
            fail: false,
        };
        Gated {
            sink: start(delivery, limits, counters.clone()),
            batches,
            open,
            counters,
        }
    }

    #[test]
    fn full_batches_leave_at_once_and_the_rest_on_flush() -> Result<(), SinkError> {
        let (tx, rx) = mpsc::channel();
        let counters = Arc::new(SinkCounters::default());
        let delivery = Channel {
            batches: tx,
            gate: None,
            fail: false,
        };
        let sink = start(delivery, &limits(100, 2, 60_000), counters.clone());
        for name in ["a", "b", "c"] {
            sink.on_end(&FinishedSpan::of(&span(name)));
        }
        // The full batch goes without waiting for the (one-minute) tick.
        assert_eq!(rx.recv_timeout(WAIT).ok(), Some(("a\nb\n".to_string(), 2)));
        assert!(rx.try_recv().is_err(), "a partial batch waits");
        sink.force_flush(WAIT)?;
        assert_eq!(rx.try_recv().ok(), Some(("c\n".to_string(), 1)));
        sink.on_end(&FinishedSpan::of(&span("d")));
        sink.shutdown(WAIT)?;
        assert_eq!(rx.try_recv().ok(), Some(("d\n".to_string(), 1)));
        sink.on_end(&FinishedSpan::of(&span("late")));
        assert_eq!(counters.exported.load(Ordering::Relaxed), 4);
        assert_eq!(
            counters.dropped.load(Ordering::Relaxed),
            1,
            "after shutdown"
        );
        Ok(())
    }

    /// Spans handed over in one call, as a tree's held spans are.
    struct Together(Vec<SpanData>);

    impl FinishedSpans for Together {
        fn for_each(&self, each: &mut dyn FnMut(&FinishedSpan<'_>)) {
            for span in &self.0 {
                each(&FinishedSpan::of(span));
            }
        }
    }

    #[test]
    fn spans_handed_over_together_fill_batches_in_order_and_the_queue_bounds_them()
    -> Result<(), SinkError> {
        let Gated {
            sink,
            batches: rx,
            open,
            counters,
        } = gated(&limits(3, 2, 60_000));
        // One call, five spans: a batch seals after two, the queue holds
        // three, and the last two are turned away and counted.
        let names = ["a", "b", "c", "d", "e"];
        sink.on_end(&Together(names.iter().map(|n| span(n)).collect()));
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 2);
        for _ in 0..2 {
            let _ = open.send(());
        }
        sink.shutdown(WAIT)?;
        let delivered: Vec<(String, usize)> = rx.try_iter().collect();
        assert_eq!(
            delivered,
            [("a\nb\n".to_string(), 2), ("c\n".to_string(), 1)]
        );
        assert_eq!(counters.exported.load(Ordering::Relaxed), 3);
        Ok(())
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_failures_are_counted() -> Result<(), SinkError> {
        let Gated {
            sink,
            batches: rx,
            open,
            counters,
        } = gated(&limits(4, 2, 60_000));
        // The worker takes the first batch and blocks on the gate; then the
        // queue holds four more and turns the rest away.
        sink.on_end(&FinishedSpan::of(&span("1")));
        sink.on_end(&FinishedSpan::of(&span("2")));
        let deadline = Instant::now() + WAIT;
        while sink.shared.queue.lock().queued != 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        for i in 3..=9 {
            sink.on_end(&FinishedSpan::of(&span(&i.to_string())));
        }
        assert_eq!(counters.dropped.load(Ordering::Relaxed), 3);
        for _ in 0..3 {
            let _ = open.send(());
        }
        sink.shutdown(WAIT)?;
        let delivered: Vec<(String, usize)> = rx.try_iter().collect();
        assert_eq!(
            delivered,
            [
                ("1\n2\n".to_string(), 2),
                ("3\n4\n".to_string(), 2),
                ("5\n6\n".to_string(), 2)
            ]
        );

        let (tx, _rx) = mpsc::channel();
        let failing = Arc::new(SinkCounters::default());
        let delivery = Channel {
            batches: tx,
            gate: None,
            fail: true,
        };
        let sink = start(delivery, &limits(10, 10, 5), failing.clone());
        sink.on_end(&FinishedSpan::of(&span("x")));
        sink.force_flush(WAIT)?;
        assert_eq!(failing.failed_exports.load(Ordering::Relaxed), 1);
        assert_eq!(failing.exported.load(Ordering::Relaxed), 0);
        Ok(())
    }

    #[test]
    fn the_tick_sends_a_partial_batch() {
        let (tx, rx) = mpsc::channel();
        let delivery = Channel {
            batches: tx,
            gate: None,
            fail: false,
        };
        let sink = start(delivery, &limits(10, 10, 20), Arc::default());
        sink.on_end(&FinishedSpan::of(&span("tick")));
        assert_eq!(rx.recv_timeout(WAIT).ok(), Some(("tick\n".to_string(), 1)));
    }
}
