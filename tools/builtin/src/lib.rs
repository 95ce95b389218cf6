//! Corral's built-in tools, compiled to `wasm32-wasip2` components by the build.

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// A built-in tool component and the target name it is served under.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinTool {
    /// Target name in the gateway (tools appear as `<target>___<tool>`).
    pub target: &'static str,
    /// What the component offers.
    pub description: &'static str,
    /// The component bytes.
    pub component: &'static [u8],
}

/// All built-in tools.
pub const BUILTIN_TOOLS: &[BuiltinTool] = &[
    BuiltinTool {
        target: "calculator",
        description: "Safe arithmetic expression evaluation",
        component: CORRAL_CALCULATOR,
    },
    BuiltinTool {
        target: "json",
        description: "jq-style queries over JSON documents",
        component: CORRAL_JSON_QUERY,
    },
];

/// The built-in tool served under `target`.
pub fn builtin(target: &str) -> Option<&'static BuiltinTool> {
    BUILTIN_TOOLS.iter().find(|tool| tool.target == target)
}
