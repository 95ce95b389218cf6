//! `corral:agent/response-stream`: response chunks before the final payload.

use crate::bindings::response_stream::{Host, StreamError};
use crate::state::SessionState;

impl SessionState {
    async fn send_live(&mut self, chunk: Vec<u8>) -> Result<(), StreamError> {
        let limit = self.sandbox.limits().response_bytes;
        let total = self.scope.response_bytes.saturating_add(chunk.len());
        if total > limit {
            return Err(StreamError::LimitExceeded(format!(
                "response_bytes: the response (chunks plus final payload) may be at most {limit} bytes"
            )));
        }
        self.scope.response_bytes = total;
        match &self.scope.stream {
            Some(sender) => sender.send(chunk).await.map_err(|_| StreamError::Closed),
            None => {
                self.scope.buffered.extend_from_slice(&chunk);
                Ok(())
            }
        }
    }
}

/// Every call crosses the host-call seam ([`crate::host_calls`]): recorded
/// for the journal, or answered from it on replay.
impl Host for SessionState {
    async fn send(&mut self, chunk: Vec<u8>) -> wasmtime::Result<Result<(), StreamError>> {
        crate::host_calls::journaled!(
            self,
            "response-stream",
            "send",
            &chunk,
            self.send_live(chunk).await
        )
    }
}
