//! WebAssembly tool components (the `corral:tool` world): every call runs in a
//! fresh sandbox with the same limit machinery as agents — memory cap, CPU
//! deadline, WASI without files, sockets or environment.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use corral_sandbox::{
    Fault, LineSink, OutputKind, SandboxCtx, SandboxEngine, SandboxLimits, SandboxOptions,
    SandboxState, install_cpu_budget,
};
use serde_json::Value;
use wasmtime::Store;
use wasmtime::component::Linker;
use wasmtime_wasi::{WasiCtxView, WasiView};

use super::{Target, TargetCall, TargetKind};
use crate::error::CallError;
use crate::tool::{ToolDef, ToolOutput};

#[allow(missing_docs)]
mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "corral:tool/tool-component",
        exports: { default: async },
    });
}

use bindings::exports::corral::tool::tool::ToolError as WitToolError;
use bindings::{ToolComponent, ToolComponentPre};

/// Store data of one tool sandbox.
struct ToolState {
    sandbox: SandboxCtx,
}

impl SandboxState for ToolState {
    fn sandbox(&mut self) -> &mut SandboxCtx {
        &mut self.sandbox
    }
}

impl WasiView for ToolState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.sandbox.wasi_view()
    }
}

/// Guest output of tool components goes to the process log.
struct TracingSink {
    target: String,
}

impl LineSink for TracingSink {
    fn line(&self, kind: OutputKind, line: &str) {
        tracing::debug!(target = %self.target, stream = ?kind, "{line}");
    }
}

/// A tool component.
pub struct WasmTarget {
    name: String,
    engine: SandboxEngine,
    pre: ToolComponentPre<ToolState>,
    limits: SandboxLimits,
    tools: Vec<ToolDef>,
}

impl WasmTarget {
    /// Compiles `component`, checks its world and lists its tools.
    pub async fn new(
        name: &str,
        engine: &SandboxEngine,
        component: &[u8],
        limits: SandboxLimits,
    ) -> Result<Self, String> {
        let compiled = engine.compile(component).map_err(|e| e.to_string())?;
        let mut linker = Linker::<ToolState>::new(engine.engine());
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("{e:#}"))?;
        let instance_pre = linker
            .instantiate_pre(&compiled)
            .map_err(|e| format!("component does not fit the corral:tool world: {e:#}"))?;
        let pre = ToolComponentPre::new(instance_pre)
            .map_err(|e| format!("component does not fit the corral:tool world: {e:#}"))?;
        let mut target = Self {
            name: name.to_string(),
            engine: engine.clone(),
            pre,
            limits,
            tools: Vec::new(),
        };
        let (mut store, instance) = target.instantiate().await.map_err(|e| e.to_string())?;
        let definitions = instance
            .corral_tool_tool()
            .call_list_tools(&mut store)
            .await
            .map_err(|e| format!("list-tools failed: {e:#}"))?;
        for definition in definitions {
            let input_schema: Value = serde_json::from_str(&definition.input_schema)
                .map_err(|e| format!("tool {}: input schema is not JSON: {e}", definition.name))?;
            let output_schema = match definition.output_schema {
                Some(text) => Some(serde_json::from_str(&text).map_err(|e| {
                    format!("tool {}: output schema is not JSON: {e}", definition.name)
                })?),
                None => None,
            };
            target.tools.push(ToolDef {
                name: definition.name,
                description: definition.description,
                input_schema,
                output_schema,
            });
        }
        Ok(target)
    }

    async fn instantiate(&self) -> Result<(Store<ToolState>, ToolComponent), CallError> {
        let sandbox = SandboxCtx::new(
            &self.engine,
            SandboxOptions {
                limits: self.limits.clone(),
                env: Vec::new(),
                output: Arc::new(TracingSink {
                    target: self.name.clone(),
                }),
            },
        );
        let mut store = Store::new(self.engine.engine(), ToolState { sandbox });
        install_cpu_budget(&mut store);
        match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(error) => Err(fault_error(
                &self.name,
                store.data().sandbox.classify(&error),
            )),
        }
    }
}

fn fault_error(target: &str, fault: Fault) -> CallError {
    match fault {
        Fault::CpuLimit(limit) => CallError::Timeout(limit),
        other => CallError::upstream(
            None,
            format!("tool component '{target}' failed"),
            format!("tool component '{target}': {other}"),
        ),
    }
}

#[async_trait]
impl Target for WasmTarget {
    fn kind(&self) -> TargetKind {
        TargetKind::Wasm
    }

    async fn list_tools(&self) -> Result<Vec<ToolDef>, CallError> {
        Ok(self.tools.clone())
    }

    async fn call(&self, call: TargetCall<'_>) -> Result<ToolOutput, CallError> {
        // No span of its own: the tool runs in-process, inside the caller's
        // span (`execute_tool`, or the MCP server's `tools/call`), which
        // already times it and names the tool and `target.kind`. An upstream
        // target's span exists to carry the trace context across the wire.
        let (mut store, instance) = self.instantiate().await?;
        let result = instance
            .corral_tool_tool()
            .call_call_tool(&mut store, call.tool, &call.arguments.to_string())
            .await;
        match result {
            Ok(Ok(text)) => {
                if text.len() > call.max_response_bytes {
                    return Err(CallError::ResponseTooLarge(call.max_response_bytes));
                }
                Ok(match serde_json::from_str::<Value>(&text) {
                    Ok(value) => ToolOutput::json(value),
                    Err(_) => ToolOutput::text(text),
                })
            }
            Ok(Err(WitToolError::InvalidArguments(message))) => {
                Err(CallError::InvalidArguments(message))
            }
            Ok(Err(WitToolError::UnknownTool(name))) => Err(CallError::NotFound(name)),
            Ok(Err(WitToolError::Failed(message))) => Ok(ToolOutput::error(message, None)),
            Err(error) => Err(fault_error(
                &self.name,
                store.data().sandbox.classify(&error),
            )),
        }
    }
}

/// Default limits of a tool call's sandbox.
pub fn default_limits(memory_mib: Option<usize>, cpu_ms: Option<u64>) -> SandboxLimits {
    SandboxLimits {
        memory_bytes: memory_mib.unwrap_or(64) << 20,
        cpu_time: Duration::from_millis(cpu_ms.unwrap_or(5_000)),
        output_bytes: 16 << 10,
        ..SandboxLimits::default()
    }
}
