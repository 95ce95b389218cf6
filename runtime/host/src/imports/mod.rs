//! Host implementations of the interfaces the agent world imports.

mod log;
mod memory;
mod model;
mod stream;
mod tools;

impl crate::bindings::types::Host for crate::state::SessionState {}
