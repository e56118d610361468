//! The flusher: a few dedicated threads that run the fdatasyncs of group
//! commit, so that no request task and no thread of tokio's blocking pool
//! waits in one.
//!
//! A produce under `--flush always` appends, asks the flusher for a sync of
//! its partition ([`Flusher::request`]) and awaits the partition's
//! durability without a thread ([`PartitionLog::durable`](crate::storage::PartitionLog::durable)).
//! Any number of pipelined producers therefore cost no threads while they
//! wait, and tokio's blocking pool cannot run dry under them.
//!
//! Invariants:
//! - A partition is in the queue at most once. Its [`FlushSlot`] goes
//!   idle → queued (one entry sent) → running → idle; a request while it
//!   runs marks it to run again, so an append made during a sync gets a
//!   sync that starts after it. Requests never wait and never grow the
//!   queue past one entry per partition.
//! - A sync covers everything appended before it starts (group commit):
//!   the flusher syncs to the log end read when it starts.
//! - A failed sync poisons its partition (as any sync does); waiters learn
//!   it from the partition, the flusher goes on with other partitions.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crate::basics::lock;

/// Threads that sync in parallel: enough to keep several partitions'
/// fdatasyncs in flight on one disk (they mostly wait on the device), few
/// enough to cost nothing when idle.
pub const FLUSHER_THREADS: usize = 4;

const IDLE: u8 = 0;
const QUEUED: u8 = 1;
const RUNNING: u8 = 2;
const RUN_AGAIN: u8 = 3;

/// Where one partition stands with the flusher (see the module invariants).
#[derive(Debug, Default)]
pub struct FlushSlot(AtomicU8);

impl FlushSlot {
    /// Marks a sync wanted; true when the caller must queue the partition.
    fn want(&self) -> bool {
        let mut current = self.0.load(Ordering::Acquire);
        loop {
            let next = match current {
                IDLE => QUEUED,
                RUNNING => RUN_AGAIN,
                _ => return false, // queued, or already marked to run again
            };
            match self
                .0
                .compare_exchange(current, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return current == IDLE,
                Err(seen) => current = seen,
            }
        }
    }

    /// The flusher took the partition and is about to sync it.
    fn start(&self) {
        self.0.store(RUNNING, Ordering::Release);
    }

    /// The sync ended; true when a request came in meanwhile and the
    /// partition must be synced again.
    fn finish(&self) -> bool {
        match self
            .0
            .compare_exchange(RUNNING, IDLE, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => false,
            Err(_) => {
                self.0.store(RUNNING, Ordering::Release);
                true
            }
        }
    }
}

/// Something the flusher can sync: a partition log.
pub trait Flushable: Send + Sync + 'static {
    /// Its place in the flusher's bookkeeping.
    fn flush_slot(&self) -> &FlushSlot;
    /// Syncs everything appended so far; failures are the log's to report.
    fn sync_appended(&self);
}

/// The flusher's threads and its queue.
pub struct Flusher {
    queue: Mutex<Option<Sender<Arc<dyn Flushable>>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Flusher {
    /// Starts `threads` flusher threads.
    pub fn start(threads: usize) -> std::io::Result<Self> {
        let (tx, rx) = channel::<Arc<dyn Flushable>>();
        let rx = Arc::new(Mutex::new(rx));
        let threads = (0..threads.max(1))
            .map(|n| {
                let rx = Arc::clone(&rx);
                std::thread::Builder::new()
                    .name(format!("sediment-flush-{n}"))
                    .spawn(move || run(&rx))
            })
            .collect::<std::io::Result<Vec<_>>>()?;
        Ok(Self {
            queue: Mutex::new(Some(tx)),
            threads,
        })
    }

    /// Asks for a sync of `log` covering everything appended to it so far.
    /// Never waits.
    pub fn request(&self, log: Arc<dyn Flushable>) {
        if !log.flush_slot().want() {
            return;
        }
        let queue = lock(&self.queue);
        let sent = queue.as_ref().map(|tx| tx.send(Arc::clone(&log)));
        drop(queue);
        if !matches!(sent, Some(Ok(()))) {
            // Stopped: sync here, so no waiter is left without its sync.
            log.flush_slot().start();
            log.sync_appended();
            log.flush_slot().finish();
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the queue ends each thread once the queue is drained.
        lock(&self.queue).take();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn run(rx: &Mutex<Receiver<Arc<dyn Flushable>>>) {
    loop {
        let next = lock(rx).recv();
        let Ok(log) = next else { return };
        log.flush_slot().start();
        loop {
            log.sync_appended();
            if !log.flush_slot().finish() {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Condvar;

    #[derive(Default)]
    struct Counting {
        slot: FlushSlot,
        syncs: AtomicUsize,
        done: Mutex<usize>,
        changed: Condvar,
    }

    impl Flushable for Counting {
        fn flush_slot(&self) -> &FlushSlot {
            &self.slot
        }
        fn sync_appended(&self) {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            *lock(&self.done) += 1;
            self.changed.notify_all();
        }
    }

    #[test]
    fn given_requests_while_queued_then_one_entry_and_a_sync_after_each_request() {
        let slot = FlushSlot::default();
        assert!(slot.want(), "idle: queue it");
        assert!(!slot.want(), "queued: already in the queue");
        slot.start();
        assert!(!slot.want(), "running: marked to run again, not queued");
        assert!(
            slot.finish(),
            "a request came in during the sync: run again"
        );
        assert!(!slot.finish(), "no request since: idle");
        assert!(slot.want(), "idle again: queue it");
    }

    #[test]
    fn given_a_request_then_the_log_is_synced_by_a_flusher_thread() {
        let flusher = Flusher::start(2).expect("threads");
        let log = Arc::new(Counting::default());
        flusher.request(Arc::clone(&log) as Arc<dyn Flushable>);
        let mut done = lock(&log.done);
        while *done == 0 {
            done = log
                .changed
                .wait(done)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        drop(done);
        drop(flusher);
        assert!(log.syncs.load(Ordering::SeqCst) >= 1);
    }

    #[test]
    fn given_a_stopped_flusher_then_a_request_syncs_in_place() {
        let mut flusher = Flusher::start(1).expect("threads");
        lock(&flusher.queue).take();
        for thread in flusher.threads.drain(..) {
            thread.join().expect("thread");
        }
        let log = Arc::new(Counting::default());
        flusher.request(Arc::clone(&log) as Arc<dyn Flushable>);
        assert_eq!(log.syncs.load(Ordering::SeqCst), 1);
    }
}
