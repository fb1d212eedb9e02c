//! A thread of its own for work that may block (fsync, rename on a slow SD
//! card), so that the main loop never waits for it. The loop hands over the
//! newest batch and goes on; a batch that was not yet started when a newer
//! one arrives is merged into it (the newer state of a file replaces the
//! older), so a stalled disk costs one write when it comes back, not a
//! queue of them.

use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Work for a lane, which can absorb newer work given before it started.
pub trait Batch: Send + 'static {
    /// Takes in `newer`, given after `self` and before `self` was started.
    fn merge(&mut self, newer: Self);
}

struct Queue<B> {
    pending: Option<B>,
    busy: bool,
    closed: bool,
}

struct Shared<B> {
    queue: Mutex<Queue<B>>,
    /// Signalled when work arrives, when the lane closes and when it idles.
    changed: Condvar,
}

impl<B> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, Queue<B>> {
        // A panic in `work` is caught below; the queue is consistent anyway.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A worker thread and the batch waiting for it.
pub struct Lane<B: Batch> {
    shared: Arc<Shared<B>>,
    thread: Option<JoinHandle<()>>,
}

impl<B: Batch> Lane<B> {
    /// Starts a thread named `name` that runs `work` on each batch, in order.
    pub fn spawn(name: &str, mut work: impl FnMut(B) + Send + 'static) -> io::Result<Lane<B>> {
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue {
                pending: None,
                busy: false,
                closed: false,
            }),
            changed: Condvar::new(),
        });
        let inner = shared.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                loop {
                    let batch = {
                        let mut q = inner.lock();
                        q.busy = false;
                        inner.changed.notify_all();
                        loop {
                            if let Some(batch) = q.pending.take() {
                                q.busy = true;
                                break batch;
                            }
                            if q.closed {
                                return;
                            }
                            q = inner.changed.wait(q).unwrap_or_else(|p| p.into_inner());
                        }
                    };
                    work(batch);
                }
            })?;
        Ok(Lane {
            shared,
            thread: Some(thread),
        })
    }

    /// Hands over `batch`; never waits for the work.
    pub fn submit(&self, batch: B) {
        let mut q = self.shared.lock();
        match q.pending.as_mut() {
            Some(pending) => pending.merge(batch),
            None => q.pending = Some(batch),
        }
        self.shared.changed.notify_all();
    }

    /// Waits (blocking) until every batch given so far is done, at most
    /// `limit`; returns whether it is. For the end of the daemon and tests.
    pub fn wait_idle(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let mut q = self.shared.lock();
        while q.busy || q.pending.is_some() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            q = self
                .shared
                .changed
                .wait_timeout(q, left)
                .map(|(q, _)| q)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        true
    }
}

impl<B: Batch> Drop for Lane<B> {
    /// Lets the thread finish what it was given, without waiting for it.
    fn drop(&mut self) {
        self.shared.lock().closed = true;
        self.shared.changed.notify_all();
        // Detached: a thread stuck in an fsync must not hold the exit.
        drop(self.thread.take());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    struct Numbers(Vec<u32>);

    impl Batch for Numbers {
        fn merge(&mut self, newer: Self) {
            self.0.extend(newer.0);
        }
    }

    #[test]
    fn batches_given_while_busy_are_merged_and_done_in_order() {
        let (gate_tx, gate_rx) = mpsc::channel::<()>();
        let (done_tx, done_rx) = mpsc::channel();
        let lane = Lane::spawn("test-lane", move |b: Numbers| {
            let _ = gate_rx.recv();
            let _ = done_tx.send(b.0);
        })
        .unwrap();
        lane.submit(Numbers(vec![1]));
        // The first batch is held at the gate; the next ones merge.
        while !lane.shared.lock().busy {
            std::thread::yield_now();
        }
        lane.submit(Numbers(vec![2]));
        lane.submit(Numbers(vec![3]));
        assert!(!lane.wait_idle(Duration::from_millis(20)));
        gate_tx.send(()).unwrap();
        gate_tx.send(()).unwrap();
        assert!(lane.wait_idle(Duration::from_secs(5)));
        assert_eq!(
            done_rx.try_iter().collect::<Vec<_>>(),
            vec![vec![1], vec![2, 3]]
        );
    }
}
