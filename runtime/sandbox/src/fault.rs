//! Classification of errors that end a guest call.

use std::fmt;
use std::time::Duration;

/// Error raised from the epoch callback when a call used up its CPU time.
#[derive(Debug, Clone, Copy)]
pub struct CpuLimitExceeded {
    /// The budget that was exceeded.
    pub limit: Duration,
}

impl fmt::Display for CpuLimitExceeded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "guest exceeded its CPU time limit of {:?}", self.limit)
    }
}

impl std::error::Error for CpuLimitExceeded {}

/// Error raised from the epoch callback when the sandbox was interrupted.
#[derive(Debug, Clone, Copy)]
pub struct Interrupted;

impl fmt::Display for Interrupted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("sandbox was interrupted by the host")
    }
}

impl std::error::Error for Interrupted {}

/// Why a guest call failed at the sandbox level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// The guest ran past its CPU deadline.
    CpuLimit(Duration),
    /// The guest needed more memory than its cap allows and trapped.
    MemoryLimit {
        /// The cap in bytes.
        limit: usize,
        /// The trap the guest raised.
        trap: String,
    },
    /// The host interrupted the sandbox (stop, shutdown).
    Interrupted,
    /// The guest trapped (unreachable, panic, out-of-bounds access, ...).
    Trap(String),
    /// The engine's pooling allocator had no free slot (instances, memories,
    /// tables or stacks) for a new sandbox; nothing ran.
    PoolExhausted(String),
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::CpuLimit(limit) => write!(f, "CPU time limit of {limit:?} exceeded"),
            Fault::MemoryLimit { limit, trap } => write!(
                f,
                "memory limit of {} MiB exceeded ({trap})",
                limit / (1 << 20)
            ),
            Fault::Interrupted => f.write_str("interrupted by the host"),
            Fault::Trap(msg) => write!(f, "guest trapped: {msg}"),
            Fault::PoolExhausted(msg) => write!(f, "no free sandbox slot: {msg}"),
        }
    }
}

/// Classifies a wasmtime call error; `memory_denied` and `memory_limit` come
/// from the sandbox's limiter so an allocation abort is reported as such.
pub fn classify_fault(err: &wasmtime::Error, memory_denied: bool, memory_limit: usize) -> Fault {
    if let Some(cpu) = err.downcast_ref::<CpuLimitExceeded>() {
        return Fault::CpuLimit(cpu.limit);
    }
    if err.downcast_ref::<Interrupted>().is_some() {
        return Fault::Interrupted;
    }
    if let Some(pool) = err.downcast_ref::<wasmtime::PoolConcurrencyLimitError>() {
        return Fault::PoolExhausted(pool.to_string());
    }
    let trap = first_line(err);
    if memory_denied {
        return Fault::MemoryLimit {
            limit: memory_limit,
            trap,
        };
    }
    Fault::Trap(trap)
}

/// The error's message with its wasm backtrace folded onto one short line.
fn first_line(err: &wasmtime::Error) -> String {
    let mut out = err.to_string();
    if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        out = trap.to_string();
    }
    let mut source = err.source();
    let mut depth = 0;
    while let Some(cause) = source {
        if depth >= 3 {
            break;
        }
        let text = cause.to_string();
        if !text.contains("wasm backtrace") && !out.contains(&text) {
            out.push_str(": ");
            out.push_str(text.lines().next().unwrap_or(""));
        }
        source = cause.source();
        depth += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_typed_errors() {
        let err = wasmtime::Error::new(CpuLimitExceeded {
            limit: Duration::from_millis(100),
        });
        assert_eq!(
            classify_fault(&err, false, 0),
            Fault::CpuLimit(Duration::from_millis(100))
        );
        let err = wasmtime::Error::new(Interrupted);
        assert_eq!(classify_fault(&err, true, 0), Fault::Interrupted);
        let err = wasmtime::Error::new(wasmtime::Trap::UnreachableCodeReached);
        assert!(matches!(
            classify_fault(&err, true, 1 << 20),
            Fault::MemoryLimit { limit, .. } if limit == 1 << 20
        ));
        assert!(
            matches!(classify_fault(&err, false, 0), Fault::Trap(msg) if msg.contains("unreachable"))
        );
    }
}
