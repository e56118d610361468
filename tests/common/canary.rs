//! Helpers for the adversarial tests (`bad_input`, `limits`): a canary that
//! proves the broker still serves well-behaved clients, small typed requests
//! (CreateTopics, ListOffsets, Fetch, OffsetFetch), and raw-socket helpers that tell a
//! closed connection from a slow one without sleeping.
#![allow(dead_code)] // each test file uses a different part

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::{
    ApiKey, BrokerId, CreateTopicsRequest, CreateTopicsResponse, FetchRequest, FetchResponse,
    GroupId, ListOffsetsRequest, ListOffsetsResponse, OffsetFetchRequest, OffsetFetchResponse,
    TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sediment_broker::storage::test_batches::batch_with_seed;

use super::wire::WireClient;
use super::BrokerProcess;

/// Records in each canary batch.
const CANARY_RECORDS: usize = 3;

fn topic_name(topic: &str) -> TopicName {
    TopicName(StrBytes::from_string(topic.to_string()))
}

/// Milliseconds since the epoch, for record timestamps.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Creates `topic` with `partitions` partitions (CreateTopics v7); returns
/// the topic's error code.
pub fn create_topic(client: &mut WireClient, topic: &str, partitions: i32) -> i16 {
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(topic))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let response: CreateTopicsResponse = client
        .call(ApiKey::CreateTopics, 7, &request)
        .expect("CreateTopics round trip");
    response
        .topics
        .first()
        .expect("one topic result")
        .error_code
}

/// The latest offset of a partition (ListOffsets v7, timestamp -1): (error
/// code, offset).
pub fn latest_offset(client: &mut WireClient, topic: &str, partition: i32) -> (i16, i64) {
    latest_offset_at(client, topic, partition, READ_UNCOMMITTED)
}

/// ListOffsets isolation level: the high watermark.
pub const READ_UNCOMMITTED: i8 = 0;
/// ListOffsets isolation level: the last stable offset.
pub const READ_COMMITTED: i8 = 1;

/// The latest offset of a partition a consumer with `isolation_level`
/// ([`READ_UNCOMMITTED`] or [`READ_COMMITTED`]) may read up to: the high
/// watermark or the last stable offset (ListOffsets v7, timestamp -1).
pub fn latest_offset_at(
    client: &mut WireClient,
    topic: &str,
    partition: i32,
    isolation_level: i8,
) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_isolation_level(isolation_level)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(topic_name(topic))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(-1)])]);
    let response: ListOffsetsResponse = client
        .call(ApiKey::ListOffsets, 7, &request)
        .expect("ListOffsets round trip");
    let partition = response
        .topics
        .first()
        .and_then(|t| t.partitions.first())
        .expect("one partition result");
    (partition.error_code, partition.offset)
}

/// A group's committed offsets for partitions `0..partitions` of `topic`
/// (OffsetFetch v7, on a fresh connection), or `None` if the broker cannot
/// answer right now (not listening, an error, a partition without one).
pub fn committed_offsets(
    broker: &BrokerProcess,
    group: &str,
    topic: &str,
    partitions: i32,
) -> Option<Vec<i64>> {
    let mut client = WireClient::connect(broker.addr).ok()?;
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(topic_name(topic))
            .with_partition_indexes((0..partitions).collect())]));
    let response: OffsetFetchResponse = client.call(ApiKey::OffsetFetch, 7, &request).ok()?;
    if response.error_code != 0 {
        return None;
    }
    let topic = response.topics.first()?;
    topic
        .partitions
        .iter()
        .map(|p| (p.error_code == 0).then_some(p.committed_offset))
        .collect()
}

/// A Fetch v12 request for one partition with `max_wait_ms` 0.
pub fn fetch_request(topic: &str, partition: i32, offset: i64, max_bytes: i32) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(max_bytes)
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic_name(topic))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(partition)
                .with_current_leader_epoch(-1)
                .with_fetch_offset(offset)
                .with_log_start_offset(-1)
                .with_partition_max_bytes(max_bytes)])])
}

/// What one Fetch returned for one partition.
#[derive(Debug)]
pub struct Fetched {
    /// The partition's error code.
    pub error_code: i16,
    /// Its high watermark.
    pub high_watermark: i64,
    /// The record batches, as stored.
    pub records: Bytes,
}

/// Fetches one partition from `offset` without waiting.
pub fn fetch(
    client: &mut WireClient,
    topic: &str,
    partition: i32,
    offset: i64,
    max_bytes: i32,
) -> Fetched {
    let request = fetch_request(topic, partition, offset, max_bytes);
    let response: FetchResponse = client
        .call(ApiKey::Fetch, 12, &request)
        .expect("Fetch round trip");
    let data = response
        .responses
        .first()
        .and_then(|t| t.partitions.first())
        .expect("one partition in the fetch response");
    Fetched {
        error_code: data.error_code,
        high_watermark: data.high_watermark,
        records: data.records.clone().unwrap_or_default(),
    }
}

/// Asserts that `stored` begins with `sent` as the broker stores it: the same
/// bytes from the magic byte on (the broker patches only `baseOffset` and
/// `partitionLeaderEpoch`), at `base_offset`.
pub fn assert_stored_batch(stored: &[u8], sent: &[u8], base_offset: i64, context: &str) {
    assert!(
        stored.len() >= sent.len(),
        "{context}: fetched {} bytes, the batch has {}",
        stored.len(),
        sent.len()
    );
    let offset = i64::from_be_bytes(stored[..8].try_into().unwrap());
    assert_eq!(offset, base_offset, "{context}: stored base offset");
    assert_eq!(
        &stored[8..12],
        &sent[8..12],
        "{context}: stored batch length"
    );
    assert!(
        stored[16..sent.len()] == sent[16..],
        "{context}: stored batch bytes differ from the sent ones"
    );
}

/// A well-behaved client that produces a small self-verifying batch with
/// acks=-1 and reads it back, to show that whatever the test does to the
/// broker on other connections, ordinary clients are still served.
pub struct Canary {
    addr: SocketAddr,
    topic: String,
    seed: u64,
    /// `None`: a fresh connection for every check (for tests whose limits
    /// would close a long-lived one).
    client: Option<WireClient>,
    checks: usize,
}

impl Canary {
    /// Creates `topic` and checks a first round trip. With `persistent` the
    /// canary keeps one connection for all its checks.
    pub fn new(broker: &BrokerProcess, topic: &str, persistent: bool) -> Self {
        let mut client = WireClient::connect(broker.addr).expect("canary connects");
        assert_eq!(
            create_topic(&mut client, topic, 1),
            0,
            "canary topic created"
        );
        let mut canary = Self {
            addr: broker.addr,
            topic: topic.to_string(),
            seed: 1,
            client: persistent.then_some(client),
            checks: 0,
        };
        canary.check("first canary check");
        canary
    }

    /// Produces one batch (acks=-1, error 0 expected) and fetches it back
    /// byte-identical; panics naming `context` otherwise.
    pub fn check(&mut self, context: &str) {
        let mut fresh;
        let client = match self.client.as_mut() {
            Some(client) => client,
            None => {
                fresh = WireClient::connect(self.addr)
                    .unwrap_or_else(|e| panic!("{context}: canary cannot connect: {e}"));
                &mut fresh
            }
        };
        self.seed += 1;
        let batch = batch_with_seed(CANARY_RECORDS, 40, now_ms(), self.seed);
        let (error, base_offset) = client
            .produce(&self.topic, 0, Bytes::from(batch.clone()))
            .unwrap_or_else(|e| panic!("{context}: canary produce failed: {e}"));
        assert_eq!(error, 0, "{context}: canary produce error code");
        assert!(base_offset >= 0, "{context}: canary base offset");
        let fetched = fetch(client, &self.topic, 0, base_offset, 1 << 20);
        assert_eq!(fetched.error_code, 0, "{context}: canary fetch error code");
        assert!(
            fetched.high_watermark >= base_offset + CANARY_RECORDS as i64,
            "{context}: high watermark {} does not cover the acknowledged batch at {base_offset}",
            fetched.high_watermark
        );
        assert_stored_batch(&fetched.records, &batch, base_offset, context);
        self.checks += 1;
    }

    /// How many checks passed.
    pub fn checks(&self) -> usize {
        self.checks
    }
}

/// Connects a raw socket with a read timeout.
pub fn raw_connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// True for the errors a socket reports once the peer has closed it.
pub fn is_closed_error(error: &std::io::Error) -> bool {
    matches!(
        error.kind(),
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
    )
}

/// Writes `bytes`; a write refused because the broker already closed the
/// connection is fine (the caller checks the close), anything else panics.
pub fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    if let Err(error) = stream.write_all(bytes).and_then(|()| stream.flush()) {
        assert!(is_closed_error(&error), "write failed: {error}");
    }
}

/// A frame: big-endian i32 length, then `body`.
pub fn framed(body: &[u8]) -> Vec<u8> {
    let mut frame = (body.len() as i32).to_be_bytes().to_vec();
    frame.extend_from_slice(body);
    frame
}

/// Reads until the broker closes the connection (EOF or reset) and returns
/// whatever it sent before; panics if it is still open after `within`.
pub fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let deadline = Instant::now() + within;
    let mut received = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "connection still open after {within:?} ({} bytes received)",
            received.len()
        );
        stream
            .set_read_timeout(Some(
                left.clamp(Duration::from_millis(1), Duration::from_millis(200)),
            ))
            .expect("read timeout");
        match stream.read(&mut buf) {
            Ok(0) => return received,
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if is_closed_error(&e) => return received,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) => {}
            Err(e) => panic!("read failed: {e}"),
        }
    }
}

/// Waits until the broker's log contains `needle`; panics with the log if it
/// does not within `within`.
pub fn wait_for_log(broker: &BrokerProcess, needle: &str, within: Duration) {
    super::wait_until(
        within,
        || broker.logs().contains(needle),
        || {
            format!(
                "the broker did not log `{needle}`; its log:\n{}",
                broker.logs()
            )
        },
    );
}

/// Produces `batches` batches of 5 records each to `topic`-`partition`,
/// asserting each is accepted.
pub fn produce_batches(client: &mut WireClient, topic: &str, partition: i32, batches: u64) {
    for seed in 0..batches {
        let records = Bytes::from(batch_with_seed(5, 100, now_ms(), seed));
        let (code, _) = client.produce(topic, partition, records).unwrap();
        assert_eq!(code, 0, "produce to {topic}-{partition}");
    }
}
