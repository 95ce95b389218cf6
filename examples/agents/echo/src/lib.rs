//! The smallest Corral agent: answers every invocation with its payload.

use corral_agent::{Agent, AgentError, Invocation, Response, export_agent};

struct Echo;

impl Agent for Echo {
    fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
        Ok(Response::bytes(invocation.payload, invocation.content_type))
    }
}

export_agent!(Echo);
