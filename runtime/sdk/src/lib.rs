//! Write Corral agents in Rust.
//!
//! An agent is a `wasm32-wasip2` component that implements [`Agent`] and is
//! exported with [`export_agent!`]. Everything it can reach — the model, the
//! tools of its session, memory, the session log — goes through the host
//! interfaces re-exported here. [`ToolLoop`] runs the usual agent loop.
//!
//! ```ignore
//! use corral_agent::{Agent, AgentError, Invocation, Response, ToolLoop, export_agent};
//!
//! struct Assistant;
//!
//! impl Agent for Assistant {
//!     fn invoke(invocation: Invocation) -> Result<Response, AgentError> {
//!         let mut conversation = Vec::new();
//!         let outcome = ToolLoop::new("You are a helpful assistant.")
//!             .max_steps(8)
//!             .ask(&mut conversation, &invocation.prompt()?)?;
//!         Ok(Response::text(outcome.text))
//!     }
//! }
//!
//! export_agent!(Assistant);
//! ```

/// Raw bindings generated from `runtime/wit/agent.wit`.
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "corral:agent/agent",
        pub_export_macro: true,
        default_bindings_module: "corral_agent::bindings",
        export_macro_name: "export",
        additional_derives: [PartialEq],
        generate_all,
    });
}

mod convenience;
mod host;
mod tool_loop;

pub use bindings::corral::agent::types::{AgentError, Invocation, Response};
pub use bindings::corral::agent::{log, memory, model, response_stream, tools};
pub use bindings::exports::corral::agent::handler::Guest as Agent;
pub use host::{AgentHost, WitHost};
pub use tool_loop::{LoopOutcome, StopCause, ToolCallRecord, ToolLoop};

/// Exports a type implementing [`Agent`] as the component's entry point.
#[macro_export]
macro_rules! export_agent {
    ($agent:ident) => {
        $crate::bindings::export!($agent with_types_in $crate::bindings);
    };
}

/// Records one conversation turn (the user's prompt and the agent's answer)
/// as an event in the session's short-term memory. Returns the event id, or
/// `None` when no memory is attached; other memory failures are logged and
/// do not fail the invocation.
pub fn remember_turn(prompt: &str, answer: &str) -> Option<String> {
    use memory::{Conversational, PayloadItem, Role};
    let items = [
        PayloadItem::Conversational(Conversational {
            role: Role::User,
            text: prompt.to_string(),
        }),
        PayloadItem::Conversational(Conversational {
            role: Role::Assistant,
            text: answer.to_string(),
        }),
    ];
    match memory::append_event(&items) {
        Ok(id) => Some(id),
        Err(memory::MemoryError::NotConfigured) => None,
        Err(error) => {
            warn(&format!("could not record the turn in memory: {error:?}"));
            None
        }
    }
}

/// Writes an info line to the session log.
pub fn info(message: &str) {
    // A line over the log budget is dropped by the host; logging never fails the agent.
    let _ = log::write(log::Level::Info, message, &[]);
}

/// Writes a warning to the session log.
pub fn warn(message: &str) {
    // A line over the log budget is dropped by the host; logging never fails the agent.
    let _ = log::write(log::Level::Warn, message, &[]);
}

/// Writes an error to the session log.
pub fn error(message: &str) {
    // A line over the log budget is dropped by the host; logging never fails the agent.
    let _ = log::write(log::Level::Error, message, &[]);
}
