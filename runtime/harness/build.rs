//! Compiles the harness agent component.

fn main() {
    corral_guest_build::build_guests(&["corral-harness-agent"]);
}
