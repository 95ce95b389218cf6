//! WASI's clocks and random, through the host-call seam: the guest reads
//! time and randomness only through these, so a replay sees the values the
//! recorded run saw. Linked over wasmtime-wasi's own definitions, which do
//! the live work.

use wasmtime::component::{HasSelf, Linker, Resource};
use wasmtime_wasi::clocks::WasiClocksView;
use wasmtime_wasi::p2::DynPollable;
use wasmtime_wasi::p2::bindings::clocks::{monotonic_clock, wall_clock};
use wasmtime_wasi::p2::bindings::random::{insecure, insecure_seed, random};
use wasmtime_wasi::random::WasiRandomView;

use crate::host_calls::Begun;
use crate::state::SessionState;

/// Replaces wasmtime-wasi's clocks and random in `linker` with the
/// journaled ones.
pub(crate) fn shadow_nondeterminism(linker: &mut Linker<SessionState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    wall_clock::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    monotonic_clock::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    random::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    insecure::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    insecure_seed::add_to_linker::<_, HasSelf<_>>(linker, |state| state)?;
    linker.allow_shadowing(false);
    Ok(())
}

impl SessionState {
    /// Runs a synchronous WASI call through the seam: `live` runs only when
    /// the journal does not answer.
    fn journaled_wasi<T: serde::Serialize + serde::de::DeserializeOwned>(
        &mut self,
        interface: &'static str,
        function: &'static str,
        request: &impl serde::Serialize,
        live: impl FnOnce(&mut Self) -> wasmtime::Result<T>,
    ) -> wasmtime::Result<T> {
        match self
            .calls
            .begin::<Result<T, String>>(interface, function, request)?
        {
            Begun::Replayed(answer) => answer.map_err(wasmtime::Error::msg),
            Begun::Live(pending) => match live(self) {
                Ok(value) => {
                    let answer = Ok(value);
                    self.calls.finish::<Result<T, String>>(pending, &answer);
                    answer.map_err(wasmtime::Error::msg)
                }
                Err(error) => {
                    self.calls
                        .finish::<Result<T, String>>(pending, &Err(error.to_string()));
                    Err(error)
                }
            },
        }
    }
}

impl wall_clock::Host for SessionState {
    fn now(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        let (seconds, nanoseconds): (u64, u32) =
            self.journaled_wasi("wasi:clocks/wall-clock", "now", &(), |state| {
                wall_clock::Host::now(&mut state.clocks()).map(|now| (now.seconds, now.nanoseconds))
            })?;
        Ok(wall_clock::Datetime {
            seconds,
            nanoseconds,
        })
    }

    fn resolution(&mut self) -> wasmtime::Result<wall_clock::Datetime> {
        wall_clock::Host::resolution(&mut self.clocks())
    }
}

impl monotonic_clock::Host for SessionState {
    fn now(&mut self) -> wasmtime::Result<monotonic_clock::Instant> {
        self.journaled_wasi("wasi:clocks/monotonic-clock", "now", &(), |state| {
            monotonic_clock::Host::now(&mut state.clocks())
        })
    }

    fn resolution(&mut self) -> wasmtime::Result<monotonic_clock::Duration> {
        monotonic_clock::Host::resolution(&mut self.clocks())
    }

    fn subscribe_instant(
        &mut self,
        when: monotonic_clock::Instant,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        monotonic_clock::Host::subscribe_instant(&mut self.clocks(), when)
    }

    fn subscribe_duration(
        &mut self,
        duration: monotonic_clock::Duration,
    ) -> wasmtime::Result<Resource<DynPollable>> {
        monotonic_clock::Host::subscribe_duration(&mut self.clocks(), duration)
    }
}

impl random::Host for SessionState {
    fn get_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.journaled_wasi("wasi:random/random", "get-random-bytes", &len, |state| {
            random::Host::get_random_bytes(WasiRandomView::random(state), len)
        })
    }

    fn get_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.journaled_wasi("wasi:random/random", "get-random-u64", &(), |state| {
            random::Host::get_random_u64(WasiRandomView::random(state))
        })
    }
}

impl insecure::Host for SessionState {
    fn get_insecure_random_bytes(&mut self, len: u64) -> wasmtime::Result<Vec<u8>> {
        self.journaled_wasi(
            "wasi:random/insecure",
            "get-insecure-random-bytes",
            &len,
            |state| insecure::Host::get_insecure_random_bytes(WasiRandomView::random(state), len),
        )
    }

    fn get_insecure_random_u64(&mut self) -> wasmtime::Result<u64> {
        self.journaled_wasi(
            "wasi:random/insecure",
            "get-insecure-random-u64",
            &(),
            |state| insecure::Host::get_insecure_random_u64(WasiRandomView::random(state)),
        )
    }
}

impl insecure_seed::Host for SessionState {
    fn insecure_seed(&mut self) -> wasmtime::Result<(u64, u64)> {
        self.journaled_wasi("wasi:random/insecure-seed", "insecure-seed", &(), |state| {
            insecure_seed::Host::insecure_seed(WasiRandomView::random(state))
        })
    }
}
