//! The composition root of a Corral process.
//!
//! [`RuntimeBuilder`] wires what a process runs agents with, once, for
//! every entry point (`corral serve`, `run`, `demo`, `replay`, the server
//! and its tests):
//! - the sandbox engine and [`AgentHost`];
//! - the model;
//! - the gateway (the agents' only tool provider, with its policy);
//! - agent memory (a [`MemoryService`] on sled, with its extraction
//!   worker);
//! - the session journal (with its expiry task);
//! - the [`SessionManager`] (with its expiry and hibernation task).
//!
//! The [`Runtime`] it builds owns those background tasks and stops them, and
//! every session, on [`Runtime::shutdown`] or drop.

mod builder;
mod error;

pub use builder::{Runtime, RuntimeBuilder};
pub use error::RuntimeError;

pub use corral_host::{AgentHost, SessionManager};
pub use corral_memory::MemoryService;
