//! A small bounded set of futures polled together on the current task: at most `limit` run at
//! once, results come back in submission order ([`Window::next_in_order`]) or as they finish
//! ([`Window::next_any`]). It borrows freely (no `'static` bound, no spawn), which lets the
//! pipeline share `&Remote` without an `Arc`.
//!
//! Every poll polls all pending futures (the window is small, 4-8), so a wake-up of any of them
//! makes progress.

use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

enum Slot<F: Future> {
    Pending(Pin<Box<F>>),
    Done(F::Output),
}

/// Futures in flight, in submission order.
pub(crate) struct Window<F: Future> {
    slots: VecDeque<Slot<F>>,
}

impl<F: Future> Window<F> {
    pub(crate) fn new() -> Self {
        Window {
            slots: VecDeque::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn push(&mut self, future: F) {
        self.slots.push_back(Slot::Pending(Box::pin(future)));
    }

    fn poll_all(&mut self, cx: &mut std::task::Context<'_>) {
        for slot in &mut self.slots {
            if let Slot::Pending(future) = slot
                && let Poll::Ready(output) = future.as_mut().poll(cx)
            {
                *slot = Slot::Done(output);
            }
        }
    }

    /// The output of the oldest future, once it is done (`None` if the window is empty).
    pub(crate) async fn next_in_order(&mut self) -> Option<F::Output> {
        poll_fn(|cx| {
            self.poll_all(cx);
            match self.slots.front() {
                None => Poll::Ready(None),
                Some(Slot::Pending(_)) => Poll::Pending,
                Some(Slot::Done(_)) => match self.slots.pop_front() {
                    Some(Slot::Done(output)) => Poll::Ready(Some(output)),
                    _ => Poll::Ready(None), // the front was just seen done
                },
            }
        })
        .await
    }

    /// The output of any finished future (`None` if the window is empty).
    pub(crate) async fn next_any(&mut self) -> Option<F::Output> {
        poll_fn(|cx| {
            self.poll_all(cx);
            if self.slots.is_empty() {
                return Poll::Ready(None);
            }
            let done = self
                .slots
                .iter()
                .position(|slot| matches!(slot, Slot::Done(_)));
            match done.and_then(|index| self.slots.remove(index)) {
                Some(Slot::Done(output)) => Poll::Ready(Some(output)),
                _ => Poll::Pending,
            }
        })
        .await
    }
}

impl<F: Future> core::fmt::Debug for Window<F> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Window").field("len", &self.len()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_window_keeps_order_and_runs_concurrently() {
        let mut window = Window::new();
        for (index, delay) in [30u64, 10, 20].into_iter().enumerate() {
            window.push(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                index
            });
        }
        let start = std::time::Instant::now();
        let mut order = Vec::new();
        while let Some(index) = window.next_in_order().await {
            order.push(index);
        }
        assert_eq!(order, vec![0, 1, 2]);
        assert!(start.elapsed() < std::time::Duration::from_millis(55));
        let mut window = Window::new();
        for delay in [30u64, 10] {
            window.push(async move {
                tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
                delay
            });
        }
        assert_eq!(window.next_any().await, Some(10));
        assert_eq!(window.next_any().await, Some(30));
        assert_eq!(window.next_any().await, None);
        assert_eq!(window.len(), 0);
    }
}
