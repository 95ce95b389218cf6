//! Corral's MCP gateway: HTTP APIs (OpenAPI), AWS Lambda functions, upstream
//! MCP servers and WebAssembly tool components as one MCP tool catalogue,
//! served over MCP (streamable HTTP) and in-process to sandboxed agents.
//!
//! Every call takes the same path — lookup, argument check, the policy hook,
//! a per-target concurrency limit, the target with a timeout, a response cap —
//! and is a `tracing` span.

mod auth;
mod busy_poll;
mod catalog;
pub mod config;
mod credentials;
mod direct;
mod error;
mod gateway;
mod http_client;
mod jsonrpc;
mod naming;
mod per_core;
mod search;
mod server;
pub mod targets;
mod tool;

pub use auth::{AuthError, Authenticator};
pub use busy_poll::DEFAULT_BUSY_POLL;
pub use catalog::{Catalog, Page, ToolEntry};
pub use config::{AuthorizerKind, ConfigFormat, GatewayConfig};
pub use error::{CallError, GatewayError};
pub use gateway::{Caller, Gateway, GatewayOptions, ListedTool, error_kind};
pub use http_client::HttpClients;
pub use naming::{MAX_NAME_LEN, SEPARATOR, exposed_name};
pub use per_core::{PerCoreOptions, serve_per_core};
pub use search::{SEARCH_RESULTS, SEARCH_TOOL};
pub use server::{DENIED_PREFIX, HttpOptions, McpGatewayServer, router, to_call_result};
pub use targets::local::{LocalCall, LocalTools};
pub use tool::{ToolDef, ToolOutput};
