//! What the hot paths count for the metrics endpoint (`http::metrics`), with
//! atomics only: no lock, no map lookup and no allocation per request or
//! per record.
//!
//! Invariants:
//! - every counter is updated with `Relaxed` increments; a scrape reads each
//!   value on its own, so the families of one scrape are not a consistent
//!   cut (a histogram's `_sum` may lag its buckets by a request in flight),
//!   which Prometheus tolerates;
//! - a histogram's count is the sum of its buckets, so the `+Inf` bucket and
//!   `_count` always agree;
//! - a request histogram exists for every API key from the start (an array
//!   indexed by the key), so observing one is an index and two additions.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use sediment_protocol::ApiKey;

/// Upper bounds of the latency histograms' buckets, in seconds (the last,
/// implicit bucket is `+Inf`). From 50 µs (an fdatasync on a fast disk
/// takes ~0.2 ms) to 30 s (the longest a Fetch may wait).
pub const LATENCY_BOUNDS_SECONDS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// [`LATENCY_BOUNDS_SECONDS`] in nanoseconds, compared against on the hot path.
const LATENCY_BOUNDS_NANOS: [u64; 18] = [
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
];

/// Buckets of a latency histogram: one per bound, plus `+Inf`.
const BUCKETS: usize = LATENCY_BOUNDS_NANOS.len() + 1;

/// Time spent in `fdatasync` by `PartitionLog::make_durable`, for every
/// partition of the process.
///
/// A process-wide static rather than a handle passed to each partition log:
/// partitions are opened from many places (the log manager, recovery tools,
/// tests) and fsync latency is a property of the process's disk, so
/// threading a handle through every open would be churn for no gain. Two
/// brokers in one process (tests only) share it.
pub static FSYNC_SECONDS: LatencyHistogram = LatencyHistogram::new();

/// A latency histogram with fixed buckets ([`LATENCY_BOUNDS_SECONDS`]),
/// observed with atomics only. (`prometheus-client`'s own histogram takes a
/// lock per observation; this one is read into the registry at scrape time.)
#[derive(Debug)]
pub struct LatencyHistogram {
    /// Observations per bucket (not cumulative).
    buckets: [AtomicU64; BUCKETS],
    /// Sum of all observations, in nanoseconds (overflows after 584 years).
    sum_nanos: AtomicU64,
}

/// A histogram's values at one moment, as the encoder wants them.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramSnapshot {
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
    /// `(upper bound in seconds, observations in that bucket)`, not
    /// cumulative, the last bound being `f64::MAX` for `+Inf` (the
    /// encoder's convention).
    pub buckets: Vec<(f64, u64)>,
}

impl LatencyHistogram {
    /// An empty histogram (usable in a `static`).
    pub const fn new() -> Self {
        Self {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            sum_nanos: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, elapsed: Duration) {
        let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
        let bucket = LATENCY_BOUNDS_NANOS
            .iter()
            .position(|&bound| nanos <= bound)
            .unwrap_or(BUCKETS - 1);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// The current values.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let buckets: Vec<(f64, u64)> = LATENCY_BOUNDS_SECONDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::MAX))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        HistogramSnapshot {
            sum_seconds: self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9,
            count: buckets.iter().map(|(_, n)| n).sum(),
            buckets,
        }
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Traffic of one partition, kept with its log: records and bytes appended
/// by Produce, record bytes returned by Fetch. Summed per topic at scrape
/// time.
#[derive(Debug, Default)]
pub struct PartitionTraffic {
    messages_in: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
}

impl PartitionTraffic {
    /// Counts one appended record set: `messages` records of `bytes` bytes.
    pub fn record_in(&self, messages: u64, bytes: u64) {
        self.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Counts record bytes returned by a Fetch.
    pub fn record_out(&self, bytes: u64) {
        self.bytes_out.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Records appended by Produce since the partition was opened.
    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Ordering::Relaxed)
    }

    /// Record-set bytes appended by Produce since the partition was opened.
    pub fn bytes_in(&self) -> u64 {
        self.bytes_in.load(Ordering::Relaxed)
    }

    /// Record bytes returned by Fetch since the partition was opened.
    pub fn bytes_out(&self) -> u64 {
        self.bytes_out.load(Ordering::Relaxed)
    }
}

/// The broker-wide counters: request latency per API and open Kafka
/// connections.
#[derive(Debug)]
pub struct Telemetry {
    /// Indexed by API key number; one per key Kafka defines.
    requests: Box<[LatencyHistogram]>,
    connections: AtomicI64,
    /// When the broker started (the console's uptime).
    started: std::time::Instant,
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Every histogram created up front, so a request never allocates one.
    pub fn new() -> Self {
        let slots = ApiKey::ALL
            .iter()
            .map(|&key| key as i16 as usize + 1)
            .max()
            .unwrap_or(0);
        Self {
            requests: (0..slots).map(|_| LatencyHistogram::new()).collect(),
            connections: AtomicI64::new(0),
            started: std::time::Instant::now(),
        }
    }

    /// How long the broker has run.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// Records how long one request took, from its decoded header to its
    /// reply being ready.
    pub fn observe_request(&self, key: ApiKey, elapsed: Duration) {
        if let Some(histogram) = self.request_histogram(key) {
            histogram.observe(elapsed);
        }
    }

    /// The latency histogram of an API.
    pub fn request_histogram(&self, key: ApiKey) -> Option<&LatencyHistogram> {
        self.requests.get(key as i16 as usize)
    }

    /// Counts an open Kafka connection until the guard is dropped.
    pub fn connection_opened(&self) -> OpenConnection<'_> {
        self.connections.fetch_add(1, Ordering::Relaxed);
        OpenConnection(&self.connections)
    }

    /// Open Kafka connections.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::Relaxed)
    }
}

/// One open connection in [`Telemetry::connections`]; dropping it closes it
/// there, whichever way the connection ended.
#[derive(Debug)]
pub struct OpenConnection<'a>(&'a AtomicI64);

impl Drop for OpenConnection<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_observations_when_snapshotted_then_each_lands_in_its_bucket_and_the_count_matches() {
        let histogram = LatencyHistogram::new();
        histogram.observe(Duration::from_micros(10));
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_millis(3));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.count, 4);
        assert_eq!(snapshot.buckets.len(), BUCKETS);
        assert_eq!(snapshot.buckets[0], (0.000_05, 2));
        assert_eq!(snapshot.buckets[6], (0.005, 1));
        assert_eq!(snapshot.buckets[BUCKETS - 1], (f64::MAX, 1));
        assert!((snapshot.sum_seconds - 60.003_06).abs() < 1e-9);
    }

    #[test]
    fn given_every_api_key_then_it_has_a_request_histogram() {
        let telemetry = Telemetry::new();
        for &key in ApiKey::ALL {
            assert!(telemetry.request_histogram(key).is_some(), "{key:?}");
        }
        let open = telemetry.connection_opened();
        assert_eq!(telemetry.connections(), 1);
        drop(open);
        assert_eq!(telemetry.connections(), 0);
    }
}
