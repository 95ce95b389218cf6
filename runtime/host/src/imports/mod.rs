//! Host implementations of the interfaces the agent world imports.

mod log;
mod memory;
mod model;
mod model_convert;
mod stream;
mod tool_gateway;
mod tools;
mod wasi;

pub(crate) use wasi::shadow_nondeterminism;

impl crate::bindings::types::Host for crate::state::SessionState {}
