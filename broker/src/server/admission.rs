//! Who gets a connection slot, and who gives one up.
//!
//! Threats and the limit that answers each:
//! - too many connections in all: `max_connections` slots (a semaphore);
//! - one host taking every slot: `max_connections_per_ip`; at that cap a
//!   newcomer from the address takes the slot of the address's oldest
//!   pending connection, and is closed at once only when all of the
//!   address's connections are established;
//! - silent sockets squatting on slots: a connection is *pending* until its
//!   first complete request; at the cap, a newcomer takes the slot of the
//!   oldest pending connection, which is closed. Real clients send their
//!   first request within milliseconds of connecting, so a flood of silent
//!   sockets can delay them by one eviction, never lock them out; and each
//!   pending connection is closed after `connection_setup_timeout` anyway.
//!
//! Only when every slot belongs to an established (requesting) client does a
//! newcomer wait, in the kernel's accept queue, for a slot to free up.
//! Refusals and evictions are logged at most once per [`REPORT_EVERY`], with
//! a count, so a flood cannot flood the log.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, OwnedSemaphorePermit, Semaphore};

use crate::basics::lock;

/// Shortest interval between two log lines about the same limit.
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// The connection limits of one listener.
pub struct Admission {
    slots: Arc<Semaphore>,
    max_per_ip: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    /// Connections that have not completed a request yet, oldest first.
    pending: Mutex<BTreeMap<u64, (IpAddr, oneshot::Sender<()>)>>,
    next_id: AtomicU64,
    per_ip_refusals: RateLimited,
    evictions: RateLimited,
    waits: RateLimited,
}

/// A connection's hold on its slot; dropping it frees the slot.
pub struct Ticket {
    admission: Arc<Admission>,
    ip: IpAddr,
    id: u64,
    _permit: OwnedSemaphorePermit,
    /// Fires when a newcomer took this pending connection's slot.
    evicted: Option<oneshot::Receiver<()>>,
}

impl Admission {
    /// Limits of `max_connections` slots and `max_per_ip` per address.
    pub fn new(max_connections: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(max_connections)),
            max_per_ip,
            per_ip: Mutex::new(HashMap::new()),
            pending: Mutex::new(BTreeMap::new()),
            next_id: AtomicU64::new(0),
            per_ip_refusals: RateLimited::default(),
            evictions: RateLimited::default(),
            waits: RateLimited::default(),
        })
    }

    /// A slot for a connection from `peer`, or `None` when its address is at
    /// its cap (the caller closes the connection). At the total cap, takes
    /// the slot of the oldest pending connection, or waits for one to free.
    pub async fn admit(self: &Arc<Self>, peer: SocketAddr) -> Option<Ticket> {
        let ip = peer.ip();
        {
            let mut per_ip = lock(&self.per_ip);
            let count = per_ip.entry(ip).or_insert(0);
            if *count >= self.max_per_ip {
                // The address's oldest silent connection makes room; the
                // count comes back under the cap when that one has gone.
                let mut pending = lock(&self.pending);
                let oldest = pending
                    .iter()
                    .find(|(_, (from, _))| *from == ip)
                    .map(|(id, _)| *id);
                match oldest.and_then(|id| pending.remove(&id)) {
                    Some((_, evict)) => {
                        let _ = evict.send(());
                    }
                    None => {
                        let max = self.max_per_ip;
                        self.per_ip_refusals.report(|suppressed| {
                            tracing::warn!(%ip, max_connections_per_ip = max, refused_since_last_report = suppressed, "connection refused: every connection from its address (max_connections_per_ip) is active");
                        });
                        return None;
                    }
                }
            }
            *count += 1;
        }
        let permit = match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(permit) => Ok(permit),
            Err(_) => {
                let oldest = lock(&self.pending).pop_first();
                match oldest {
                    Some((_, (_, evict))) => {
                        let _ = evict.send(());
                        self.evictions.report(|suppressed| {
                            tracing::warn!(evicted_since_last_report = suppressed, "max_connections reached: closing the oldest connection that has sent no request, to admit a new one");
                        });
                    }
                    None => self.waits.report(|suppressed| {
                        tracing::warn!(waits_since_last_report = suppressed, "max_connections reached and every connection is active: new connections wait for a free slot");
                    }),
                }
                Arc::clone(&self.slots).acquire_owned().await
            }
        };
        let Ok(permit) = permit else {
            self.release_ip(ip);
            return None;
        };
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (evict, evicted) = oneshot::channel();
        lock(&self.pending).insert(id, (ip, evict));
        Some(Ticket {
            admission: Arc::clone(self),
            ip,
            id,
            _permit: permit,
            evicted: Some(evicted),
        })
    }

    /// Waits until every admitted connection has ended, or `within` passed;
    /// false when some are still open. Call once no more connections are
    /// admitted.
    pub async fn drained(&self, max_connections: usize, within: Duration) -> bool {
        let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
        tokio::time::timeout(within, self.slots.acquire_many(all))
            .await
            .is_ok()
    }

    fn release_ip(&self, ip: IpAddr) {
        let mut per_ip = lock(&self.per_ip);
        if let Some(count) = per_ip.get_mut(&ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                per_ip.remove(&ip);
            }
        }
    }
}

impl Ticket {
    /// The connection completed a request: it is no longer evictable.
    pub fn established(&mut self) {
        lock(&self.admission.pending).remove(&self.id);
        self.evicted = None;
    }

    /// Resolves when a newcomer took this pending connection's slot; never
    /// for an established one.
    pub async fn evicted(&mut self) {
        match self.evicted.as_mut() {
            Some(evicted) => {
                if evicted.await.is_err() {
                    // The admission was dropped: nothing will evict us.
                    std::future::pending::<()>().await;
                }
            }
            None => std::future::pending::<()>().await,
        }
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        lock(&self.admission.pending).remove(&self.id);
        self.admission.release_ip(self.ip);
    }
}

/// Lets one log line through per [`REPORT_EVERY`], counting the rest.
#[derive(Default)]
struct RateLimited {
    state: Mutex<(Option<Instant>, u64)>,
}

impl RateLimited {
    /// Calls `log` with the number of events suppressed since the last line,
    /// if the last line is old enough.
    fn report(&self, log: impl FnOnce(u64)) {
        let mut state = lock(&self.state);
        let (last, suppressed) = &mut *state;
        if last.is_some_and(|at| at.elapsed() < REPORT_EVERY) {
            *suppressed += 1;
            return;
        }
        log(*suppressed);
        *last = Some(Instant::now());
        *suppressed = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(last: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, last], 9000))
    }

    #[tokio::test]
    async fn given_full_slots_when_a_newcomer_arrives_then_the_oldest_pending_is_evicted() {
        let admission = Admission::new(2, 10);
        let mut first = admission.admit(peer(1)).await.unwrap();
        let mut second = admission.admit(peer(1)).await.unwrap();
        second.established();
        let newcomer = tokio::spawn({
            let admission = Arc::clone(&admission);
            async move { admission.admit(peer(2)).await.is_some() }
        });
        // The first (still pending) connection is told to go, and goes.
        first.evicted().await;
        drop(first);
        assert!(newcomer.await.unwrap());
        drop(second);
    }

    #[tokio::test]
    async fn given_an_address_at_its_cap_when_it_connects_again_then_its_oldest_silent_one_goes_or_it_is_refused(
    ) {
        let admission = Admission::new(10, 2);
        let mut a = admission.admit(peer(1)).await.unwrap();
        let mut b = admission.admit(peer(1)).await.unwrap();
        b.established();
        // `a` never sent a request: a third connection from the address takes its place.
        let c = admission.admit(peer(1)).await;
        assert!(c.is_some());
        a.evicted().await;
        drop(a);
        // Now both are active: a fourth is refused; another address is not.
        let mut c = c.unwrap();
        c.established();
        assert!(admission.admit(peer(1)).await.is_none());
        assert!(admission.admit(peer(2)).await.is_some());
        drop(b);
        assert!(admission.admit(peer(1)).await.is_some());
    }

    #[test]
    fn given_many_events_then_one_report_per_interval_with_a_count() {
        let limited = RateLimited::default();
        let mut reports = Vec::new();
        for _ in 0..1000 {
            limited.report(|suppressed| reports.push(suppressed));
        }
        assert_eq!(reports, vec![0]);
    }
}
