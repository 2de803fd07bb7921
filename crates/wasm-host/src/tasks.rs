//! Leaf module: the node's background tasks that belong to invocations — guests finishing after their
//! client left, instance teardown, prewarming — tracked so shutdown can wait for them (within the drain
//! budget) instead of cancelling a guest mid-run when the runtime goes away.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::sync::Notify;

/// Spawns and counts tasks; [`Tasks::idle`] waits until none is left. Cheap to clone.
#[derive(Clone, Default)]
pub struct Tasks(Arc<Inner>);

#[derive(Default)]
struct Inner {
    running: AtomicUsize,
    done: Notify,
}

struct Running(Arc<Inner>);

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.running.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

impl Tasks {
    /// Runs `fut` on the current runtime as a tracked task.
    pub fn spawn<F: Future<Output = ()> + Send + 'static>(&self, fut: F) {
        self.0.running.fetch_add(1, Ordering::AcqRel);
        let running = Running(self.0.clone());
        tokio::spawn(async move {
            let _running = running;
            fut.await;
        });
    }

    /// Tasks still running.
    pub fn running(&self) -> usize {
        self.0.running.load(Ordering::Acquire)
    }

    /// Resolves once no tracked task is running.
    pub async fn idle(&self) {
        loop {
            let notified = self.0.done.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.running() == 0 {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_waits_for_every_task() {
        let tasks = Tasks::default();
        tasks.idle().await; // nothing running
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.spawn(async move {
            let _ = rx.await;
        });
        assert_eq!(tasks.running(), 1);
        let waiter = tokio::spawn({
            let tasks = tasks.clone();
            async move { tasks.idle().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        tx.send(()).unwrap();
        waiter.await.unwrap();
        assert_eq!(tasks.running(), 0);
    }
}
