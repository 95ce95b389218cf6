//! The capabilities the host offers agents: a model, tools and memory.

use std::sync::Arc;

use corral_gateway::Gateway;
use corral_model::{ModelProvider, ScriptedModel};

use crate::memory::MemoryProvider;

/// Everything a sandboxed agent can reach beyond its own memory.
#[derive(Clone)]
pub struct HostServices {
    /// Answers `model.converse`.
    pub model: Arc<dyn ModelProvider>,
    /// Serves `tools.list-tools` and `tools.call-tool`: the gateway's
    /// catalogue (configured targets and in-process ones), under its policy
    /// and limits; `None`: no tools.
    pub tools: Option<Arc<Gateway>>,
    /// Serves the `memory` interface; `None`: no memory attached, and every
    /// memory call answers `not-configured` at once — no span, no quota
    /// charged, as nothing was stored or read.
    pub memory: Option<Arc<dyn MemoryProvider>>,
}

impl HostServices {
    /// Services with `model`, no tools and no memory.
    pub fn new(model: Arc<dyn ModelProvider>) -> Self {
        Self {
            model,
            tools: None,
            memory: None,
        }
    }

    /// Serves `gateway`'s tools to agents.
    pub fn with_gateway(mut self, gateway: Arc<Gateway>) -> Self {
        self.tools = Some(gateway);
        self
    }

    /// Attaches `memory` as the agents' memory store.
    pub fn with_memory(mut self, memory: Arc<dyn MemoryProvider>) -> Self {
        self.memory = Some(memory);
        self
    }
}

impl Default for HostServices {
    /// An echoing scripted model, no tools, no memory.
    fn default() -> Self {
        Self::new(Arc::new(ScriptedModel::echo()))
    }
}
