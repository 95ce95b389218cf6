//! The capabilities the host offers agents: a model, tools and memory.

use std::sync::Arc;

use corral_model::{ModelProvider, ScriptedModel};

use crate::memory::{MemoryProvider, NoMemory};
use crate::tools::{NoTools, ToolProvider};

/// Everything a sandboxed agent can reach beyond its own memory.
#[derive(Clone)]
pub struct HostServices {
    /// Answers `model.converse`.
    pub model: Arc<dyn ModelProvider>,
    /// Serves `tools.list-tools` and `tools.call-tool`.
    pub tools: Arc<dyn ToolProvider>,
    /// Serves the `memory` interface.
    pub memory: Arc<dyn MemoryProvider>,
}

impl HostServices {
    /// Services with `model`, no tools and no memory.
    pub fn new(model: Arc<dyn ModelProvider>) -> Self {
        Self {
            model,
            tools: Arc::new(NoTools),
            memory: Arc::new(NoMemory),
        }
    }

    /// Replaces the tool catalogue.
    pub fn with_tools(mut self, tools: Arc<dyn ToolProvider>) -> Self {
        self.tools = tools;
        self
    }

    /// Replaces the memory store.
    pub fn with_memory(mut self, memory: Arc<dyn MemoryProvider>) -> Self {
        self.memory = memory;
        self
    }
}

impl Default for HostServices {
    /// An echoing scripted model, no tools, no memory.
    fn default() -> Self {
        Self::new(Arc::new(ScriptedModel::echo()))
    }
}
