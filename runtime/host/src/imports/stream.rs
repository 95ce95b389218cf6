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

/// Every call crosses the journal seam ([`crate::host_calls`]).
impl Host for SessionState {
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), StreamError> {
        let recorded = self.scope.calls.request(&chunk);
        let result = self.send_live(chunk).await;
        self.scope
            .calls
            .record("response-stream", "send", recorded, &result);
        result
    }
}
