//! Running a future inside a span the caller keeps.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// `future` with `span` entered on every poll, like
/// `tracing::Instrument::instrument`, but borrowing the span instead of
/// owning a handle to it: a caller that records on the span after the
/// future finishes saves a handle clone and drop (two registry
/// reference-count updates, each a look-up in its slab) per span. Unlike
/// `instrument`, a future dropped before it finishes is dropped outside the
/// span.
pub fn in_span<F: Future>(span: &tracing::Span, future: F) -> InSpan<'_, F> {
    InSpan { span, future }
}

pin_project_lite::pin_project! {
    /// A future polled with a span entered ([`in_span`]). A struct, not an
    /// `async fn`, so the future is polled where it lies instead of being
    /// moved into the `async fn`'s state first.
    #[must_use = "futures do nothing unless polled"]
    pub struct InSpan<'a, F> {
        span: &'a tracing::Span,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for InSpan<'_, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        this.future.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_future_runs_inside_the_span_and_the_span_stays_usable() {
        let subscriber = tracing_subscriber::registry();
        let _default = tracing::subscriber::set_default(subscriber);
        let span = tracing::info_span!("outer", done = tracing::field::Empty);
        let id = span.id();
        let inner = in_span(&span, async {
            tokio::task::yield_now().await;
            tracing::Span::current().id()
        })
        .await;
        assert!(id.is_some());
        assert_eq!(inner, id);
        assert_eq!(tracing::Span::current().id(), None, "exited after");
        span.record("done", true);
    }
}
