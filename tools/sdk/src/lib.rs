//! Write Corral tool components in Rust.
//!
//! Implement [`ToolSet`] and export it with [`export_tools!`]; build the
//! crate as a `cdylib` for `wasm32-wasip2`. The gateway runs each call in a
//! fresh sandbox.

/// Raw bindings generated from `gateway/wit/tool.wit`.
#[allow(missing_docs, clippy::all, unsafe_code)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../gateway/wit/tool.wit",
        world: "corral:tool/tool-component",
        pub_export_macro: true,
        default_bindings_module: "corral_tool::bindings",
        export_macro_name: "export",
        generate_all,
    });
}

use serde_json::Value;

pub use bindings::exports::corral::tool::tool::{ToolDefinition, ToolError};

/// A set of tools implemented by this component.
pub trait ToolSet {
    /// The tools offered.
    fn tools() -> Vec<ToolDefinition>;
    /// Runs tool `name` with parsed JSON arguments.
    fn call(name: &str, arguments: Value) -> Result<Value, ToolError>;
}

/// Adapts a [`ToolSet`] to the component's exported interface.
#[doc(hidden)]
pub fn dispatch<T: ToolSet>(name: &str, arguments: &str) -> Result<String, ToolError> {
    let arguments: Value = serde_json::from_str(arguments)
        .map_err(|e| ToolError::InvalidArguments(format!("arguments are not valid JSON: {e}")))?;
    T::call(name, arguments).map(|value| value.to_string())
}

/// A tool definition from a name, description and JSON schema value.
pub fn definition(name: &str, description: &str, input_schema: &Value) -> ToolDefinition {
    ToolDefinition {
        name: name.to_string(),
        description: description.to_string(),
        input_schema: input_schema.to_string(),
        output_schema: None,
    }
}

/// Exports a type implementing [`ToolSet`] as the component's tools.
#[macro_export]
macro_rules! export_tools {
    ($set:ident) => {
        const _: () = {
            struct Component;
            impl $crate::bindings::exports::corral::tool::tool::Guest for Component {
                fn list_tools() -> Vec<$crate::ToolDefinition> {
                    <$set as $crate::ToolSet>::tools()
                }
                fn call_tool(name: String, arguments: String) -> Result<String, $crate::ToolError> {
                    $crate::dispatch::<$set>(&name, &arguments)
                }
            }
    $crate::bindings::export!(Component with_types_in $crate::bindings);
        };
    };
}
