//! Compiles the built-in tool components.

fn main() {
    corral_guest_build::build_guests(&["corral-calculator", "corral-json-query"]);
}
