//! Reads shared by the requests that wait for one at the same time, without ever answering
//! a request with data read before it asked.
//!
//! Every request reads its environment's row first (its generation and revision say
//! whether what the service remembers is current). Under load, one read each was a fifth
//! of a CI check's cost: a round trip to the database's worker thread and back. Here at
//! most one read per key runs at a time; requests that arrive while it runs wait for the
//! next, which begins after all of them asked and answers them all.

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::oneshot;

/// Shared reads of one value (see the module's documentation).
#[derive(Debug)]
pub(crate) struct FreshReads<T> {
    pending: Arc<Mutex<Pending<T>>>,
}

impl<T> Default for FreshReads<T> {
    fn default() -> Self {
        Self { pending: Arc::new(Mutex::new(Pending { running: false, waiting: Vec::new() })) }
    }
}

#[derive(Debug)]
struct Pending<T> {
    /// Whether a reader task is running (it serves `waiting` before it stops).
    running: bool,
    /// Requests that asked after the running read began. `None` tells one that the read
    /// failed: it reads by itself, so that it gets its own error.
    waiting: Vec<oneshot::Sender<Option<T>>>,
}

impl<T: Clone + Send + 'static> FreshReads<T> {
    /// The value as read after this call began, or `None` if that read failed. `read`
    /// starts a reader task when none runs; every caller of one `FreshReads` must pass
    /// a `read` that reads the same thing.
    pub async fn read<F, Fut, E>(&self, read: F) -> Option<T>
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send,
    {
        let (sender, receiver) = oneshot::channel();
        let start = {
            let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
            pending.waiting.push(sender);
            !std::mem::replace(&mut pending.running, true)
        };
        if start {
            let pending = self.pending.clone();
            tokio::spawn(async move {
                // Should the task end early (a panic), waiters still hear back: the guard
                // drops their senders, and they read by themselves.
                let stopped = Stopped(&pending);
                loop {
                    // Requests already runnable (a socket read, a body parsed) ask before
                    // the read begins and share it instead of waiting for the next.
                    tokio::task::yield_now().await;
                    let batch = {
                        let mut pending = pending.lock().unwrap_or_else(PoisonError::into_inner);
                        if pending.waiting.is_empty() {
                            pending.running = false;
                            // Stopped in order: from here a new caller may start the next
                            // reader, whose state the guard must not touch.
                            std::mem::forget(stopped);
                            break;
                        }
                        std::mem::take(&mut pending.waiting)
                    };
                    // Every request in `batch` asked before this read began.
                    let value = read().await.ok();
                    for waiter in batch {
                        // A request that went away no longer listens.
                        let _ = waiter.send(value.clone());
                    }
                }
            });
        }
        receiver.await.ok().flatten()
    }
}

/// Marks the reader stopped and lets its waiters go when its task ends early.
struct Stopped<'a, T>(&'a Mutex<Pending<T>>);

impl<T> Drop for Stopped<'_, T> {
    fn drop(&mut self) {
        let mut pending = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        pending.running = false;
        pending.waiting.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_reads_and_none_gets_a_value_read_before_it_asked() {
        let reads: Arc<FreshReads<usize>> = Arc::default();
        // The value is the number of reads begun so far: a caller answered by a read that
        // began before it asked would see a number below the count it saw on arrival.
        let begun = Arc::new(AtomicUsize::new(0));
        let mut callers = Vec::new();
        for _ in 0..200 {
            let reads = reads.clone();
            let begun = begun.clone();
            callers.push(tokio::spawn(async move {
                let seen = begun.load(Ordering::SeqCst);
                let counter = begun.clone();
                let value = reads
                    .read(move || {
                        let counter = counter.clone();
                        async move {
                            let value = counter.fetch_add(1, Ordering::SeqCst) + 1;
                            tokio::task::yield_now().await;
                            Ok::<_, ()>(value)
                        }
                    })
                    .await;
                (seen, value)
            }));
        }
        for caller in callers {
            let (seen, value) = caller.await.unwrap_or_default();
            let value = value.unwrap_or_default();
            assert!(value > seen, "answered by read {value}, begun before the caller asked (it saw {seen} begun)");
        }
        let total = begun.load(Ordering::SeqCst);
        assert!((1..200).contains(&total), "200 concurrent callers took {total} reads");
    }

    #[tokio::test]
    async fn a_failed_read_answers_none_and_the_next_caller_starts_a_new_read() {
        // One read of the same thing for every caller (as the contract asks): it fails
        // the first time only, as a busy disk would.
        let reads: FreshReads<u32> = FreshReads::default();
        let attempts = Arc::new(AtomicUsize::new(0));
        let read = move || {
            let attempts = attempts.clone();
            async move {
                match attempts.fetch_add(1, Ordering::SeqCst) {
                    0 => Err("disk on fire"),
                    _ => Ok(7),
                }
            }
        };
        assert_eq!(reads.read(read.clone()).await, None);
        assert_eq!(reads.read(read).await, Some(7));
    }
}
