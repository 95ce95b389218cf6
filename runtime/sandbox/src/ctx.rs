//! Per-sandbox store state: WASI with no ambient authority, limiter, CPU budget.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use wasmtime::component::ResourceTable;
use wasmtime::{Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView};

use crate::fault::{CpuLimitExceeded, Interrupted};
use crate::limits::{SandboxLimiter, SandboxLimits};
use crate::output::{GuestOutput, LineSink, OutputKind};
use crate::{Fault, SandboxEngine, classify_fault};

/// What a new sandbox is given.
pub struct SandboxOptions {
    /// Resource limits.
    pub limits: SandboxLimits,
    /// Environment variables visible to the guest (nothing is inherited).
    pub env: Vec<(String, String)>,
    /// Where guest stdout/stderr lines go.
    pub output: Arc<dyn LineSink>,
}

/// The sandbox part of a store's data.
pub struct SandboxCtx {
    wasi: WasiCtx,
    table: ResourceTable,
    limiter: SandboxLimiter,
    limits: SandboxLimits,
    stdout: GuestOutput,
    stderr: GuestOutput,
    cpu_budget_ticks: u64,
    cpu_used_ticks: u64,
    interrupt: Arc<AtomicBool>,
}

impl SandboxCtx {
    /// A context whose WASI has no preopens, no sockets, no name lookup, no
    /// inherited environment or arguments, and a closed stdin.
    pub fn new(engine: &SandboxEngine, options: SandboxOptions) -> Self {
        let output_limit = options.limits.output_bytes;
        let stdout = GuestOutput::new(OutputKind::Stdout, output_limit, options.output.clone());
        let stderr = GuestOutput::new(OutputKind::Stderr, output_limit, options.output);
        let mut builder = WasiCtxBuilder::new();
        builder
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .socket_addr_check(|_, _| Box::pin(async { false }));
        for (key, value) in &options.env {
            builder.env(key, value);
        }
        Self {
            wasi: builder.build(),
            table: ResourceTable::new(),
            limiter: SandboxLimiter::new(&options.limits),
            cpu_budget_ticks: engine.ticks_for(options.limits.cpu_time),
            limits: options.limits,
            stdout,
            stderr,
            cpu_used_ticks: 0,
            interrupt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// WASI state for `WasiView` implementations.
    pub fn wasi_view(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }

    /// The resource table shared by WASI and host resources.
    pub fn table(&mut self) -> &mut ResourceTable {
        &mut self.table
    }

    /// The limiter, for `Store::limiter`.
    pub fn limiter(&mut self) -> &mut SandboxLimiter {
        &mut self.limiter
    }

    /// The limits this sandbox runs under.
    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Bytes of linear memory the guest holds.
    pub fn memory_used(&self) -> usize {
        self.limiter.memory_used()
    }

    /// A handle that makes the running guest trap at its next epoch check.
    pub fn interrupt_handle(&self) -> Arc<AtomicBool> {
        self.interrupt.clone()
    }

    /// Classifies an error returned by a guest call.
    pub fn classify(&self, err: &wasmtime::Error) -> Fault {
        classify_fault(err, self.limiter.memory_denied(), self.limits.memory_bytes)
    }

    /// Flushes partial output lines into the sink.
    pub fn flush_output(&self) {
        self.stdout.flush();
        self.stderr.flush();
    }

    /// Epoch ticks of guest execution used since the last budget reset.
    pub fn cpu_ticks_used(&self) -> u64 {
        self.cpu_used_ticks
    }
}

/// Store data that contains a [`SandboxCtx`].
pub trait SandboxState: Send + 'static {
    /// The sandbox context.
    fn sandbox(&mut self) -> &mut SandboxCtx;
}

/// Configures `store` for a sandbox: limiter, and an epoch callback that
/// yields to the executor every tick, counts ticks spent in guest code and
/// traps with [`CpuLimitExceeded`] when the per-call budget runs out (or with
/// [`Interrupted`] once the interrupt handle is set). Call
/// [`reset_cpu_budget`] before each guest call.
pub fn install_cpu_budget<T: SandboxState>(store: &mut Store<T>) {
    store.limiter(|data| data.sandbox().limiter());
    store.epoch_deadline_callback(|mut cx| {
        let sandbox = cx.data_mut().sandbox();
        if sandbox.interrupt.load(Ordering::Relaxed) {
            return Err(wasmtime::Error::new(Interrupted));
        }
        // The callback runs only while guest code executes, so ticks spent
        // awaiting host calls (model, tools) are not charged to the guest.
        sandbox.cpu_used_ticks += 1;
        if sandbox.cpu_used_ticks > sandbox.cpu_budget_ticks {
            return Err(wasmtime::Error::new(CpuLimitExceeded {
                limit: sandbox.limits.cpu_time,
            }));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    reset_cpu_budget(store);
}

/// Starts a fresh CPU budget for the next guest call.
pub fn reset_cpu_budget<T: SandboxState>(store: &mut Store<T>) {
    store.data_mut().sandbox().cpu_used_ticks = 0;
    store.set_epoch_deadline(1);
}

/// Overrides the CPU budget of subsequent calls.
pub fn set_cpu_time<T: SandboxState>(store: &mut Store<T>, engine: &SandboxEngine, cpu: Duration) {
    let sandbox = store.data_mut().sandbox();
    sandbox.cpu_budget_ticks = engine.ticks_for(cpu);
    sandbox.limits.cpu_time = cpu;
}
