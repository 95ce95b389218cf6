//! Compiles the guest crates this crate exposes.

fn main() {
    corral_guest_build::build_guests(&["echo-agent", "assistant-agent"]);
}
