//! `corral:agent/response-stream`: response chunks before the final payload.

use crate::bindings::response_stream::Host;
use crate::state::SessionState;

impl Host for SessionState {
    async fn send(&mut self, chunk: Vec<u8>) -> Result<(), String> {
        let total = self.scope.response_bytes.saturating_add(chunk.len());
        if total > self.max_response_bytes {
            return Err(format!(
                "response exceeds {} bytes",
                self.max_response_bytes
            ));
        }
        self.scope.response_bytes = total;
        match &self.scope.stream {
            Some(sender) => sender
                .send(chunk)
                .await
                .map_err(|_| "the caller has gone away".to_string()),
            None => {
                self.scope.buffered.extend_from_slice(&chunk);
                Ok(())
            }
        }
    }
}
