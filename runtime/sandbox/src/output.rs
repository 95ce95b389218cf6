//! Guest stdout/stderr capture: split into lines, bounded, handed to a sink.
//!
//! wasmtime-wasi's `MemoryOutputPipe` fails writes once full, which makes a
//! Rust guest's `println!` panic; a sandbox must instead keep running and drop
//! the excess, so this is a small stream of our own.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use parking_lot::Mutex;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

/// Longest line kept; longer lines are split.
const MAX_LINE: usize = 8 << 10;

/// Which guest stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputKind {
    /// Guest standard output.
    Stdout,
    /// Guest standard error.
    Stderr,
}

/// Receives complete lines of guest output.
pub trait LineSink: Send + Sync {
    /// Called once per line (without the trailing newline).
    fn line(&self, kind: OutputKind, line: &str);
}

/// A bounded capture of one guest stream, cloneable into the WASI context.
#[derive(Clone)]
pub struct GuestOutput {
    kind: OutputKind,
    state: Arc<Mutex<OutputState>>,
    sink: Arc<dyn LineSink>,
}

struct OutputState {
    pending: Vec<u8>,
    remaining: usize,
    truncated: bool,
}

impl GuestOutput {
    /// Captures up to `limit` bytes of stream `kind` into `sink`.
    pub fn new(kind: OutputKind, limit: usize, sink: Arc<dyn LineSink>) -> Self {
        Self {
            kind,
            state: Arc::new(Mutex::new(OutputState {
                pending: Vec::new(),
                remaining: limit,
                truncated: false,
            })),
            sink,
        }
    }

    /// Accepts guest bytes; never fails, drops what exceeds the limit.
    fn accept(&self, mut bytes: &[u8]) {
        let mut state = self.state.lock();
        if state.remaining == 0 {
            if !bytes.is_empty() && !state.truncated {
                state.truncated = true;
                self.sink.line(
                    self.kind,
                    "[corral: output limit reached, further output dropped]",
                );
            }
            return;
        }
        if bytes.len() > state.remaining {
            bytes = &bytes[..state.remaining];
        }
        state.remaining -= bytes.len();
        for &byte in bytes {
            if byte == b'\n' {
                self.emit(&mut state.pending);
            } else {
                state.pending.push(byte);
                if state.pending.len() >= MAX_LINE {
                    self.emit(&mut state.pending);
                }
            }
        }
    }

    /// Emits any unterminated last line.
    pub fn flush(&self) {
        let mut state = self.state.lock();
        if !state.pending.is_empty() {
            self.emit(&mut state.pending);
        }
    }

    fn emit(&self, pending: &mut Vec<u8>) {
        let line = String::from_utf8_lossy(pending);
        let line = line.strip_suffix('\r').unwrap_or(&line);
        self.sink.line(self.kind, line);
        pending.clear();
    }
}

impl IsTerminal for GuestOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for GuestOutput {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for GuestOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for GuestOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.accept(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 << 10)
    }
}

impl tokio::io::AsyncWrite for GuestOutput {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.accept(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Lines(Mutex<Vec<(OutputKind, String)>>);

    impl LineSink for Lines {
        fn line(&self, kind: OutputKind, line: &str) {
            self.0.lock().push((kind, line.to_string()));
        }
    }

    #[test]
    fn splits_lines_and_flushes_tail() {
        let sink = Arc::new(Lines::default());
        let out = GuestOutput::new(OutputKind::Stdout, 1024, sink.clone());
        out.accept(b"hello\nwor");
        out.accept(b"ld\r\ntail");
        out.flush();
        let lines: Vec<String> = sink.0.lock().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(lines, ["hello", "world", "tail"]);
    }

    #[test]
    fn drops_beyond_limit_with_one_notice() {
        let sink = Arc::new(Lines::default());
        let out = GuestOutput::new(OutputKind::Stderr, 8, sink.clone());
        out.accept(b"0123\n5678\nabc\n");
        out.accept(b"more\n");
        out.accept(b"more\n");
        let lines: Vec<String> = sink.0.lock().iter().map(|(_, l)| l.clone()).collect();
        assert_eq!(lines[0], "0123");
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines[1].contains("output limit"));
        out.flush();
        let lines = sink.0.lock();
        assert_eq!(lines.len(), 3, "partial '567' flushed: {lines:?}");
        assert_eq!(lines[2].1, "567");
    }

    #[test]
    fn splits_overlong_lines() {
        let sink = Arc::new(Lines::default());
        let out = GuestOutput::new(OutputKind::Stdout, 1 << 20, sink.clone());
        out.accept(&vec![b'x'; MAX_LINE * 2 + 3]);
        out.flush();
        let lines = sink.0.lock();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0].1.len(), MAX_LINE);
        assert_eq!(lines[2].1.len(), 3);
    }
}
