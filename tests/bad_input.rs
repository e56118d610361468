//! Malformed and hostile input against the live broker (DESIGN §1.5, §4):
//! every bad frame is refused on its own connection (closed with one log
//! line, or answered with a Kafka error code where the protocol has one),
//! nothing is appended from a refused batch, and a canary client producing
//! and fetching on another connection keeps being served after every case.
//! The process stays up and its memory stays bounded throughout.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, FetchRequest, FetchResponse,
    ListOffsetsRequest, ListOffsetsResponse, MetadataRequest, MetadataResponse, ProduceRequest,
    ProduceResponse, TopicName,
};
use kafka_protocol::protocol::{Decodable, StrBytes};
use sediment_broker::storage::test_batches::{batch_of_size, batch_with_records};

use common::canary::{
    create_topic, fetch, fetch_request, framed, latest_offset, now_ms, raw_connect,
    read_until_closed, send_raw, wait_for_log, Canary,
};
use common::wire::WireClient;
use common::BrokerProcess;

/// How long the broker may take to close a connection it refuses.
const CLOSE_WITHIN: Duration = Duration::from_secs(10);
/// How long a refusal may take to reach the log.
const LOG_WITHIN: Duration = Duration::from_secs(10);
/// Allowed RSS growth over the baseline taken after start-up.
const RSS_GROWTH_LIMIT_KIB: u64 = 200 * 1024;
// Kafka error codes the contracts name.
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUIRED_ACKS: i16 = 21;
const UNSUPPORTED_VERSION: i16 = 35;

/// A broker, a canary on its own long-lived connection, and the RSS baseline.
struct Fixture {
    broker: BrokerProcess,
    canary: Canary,
    baseline_rss_kib: u64,
}

impl Fixture {
    fn start(args: &[&str]) -> Self {
        let broker = BrokerProcess::start(args);
        let canary = Canary::new(&broker, "canary", true);
        let baseline_rss_kib = broker.rss_kib();
        assert!(baseline_rss_kib > 0, "RSS readable from /proc");
        Self {
            broker,
            canary,
            baseline_rss_kib,
        }
    }

    /// The broker is up, serves the canary, and its RSS is bounded.
    fn assert_survived(&mut self, case: &str) {
        assert!(
            self.broker.is_running(),
            "the broker died during `{case}`; its log:\n{}",
            self.broker.logs()
        );
        self.canary.check(case);
        let rss = self.broker.rss_kib();
        assert!(
            rss < self.baseline_rss_kib + RSS_GROWTH_LIMIT_KIB,
            "after `{case}` the broker's RSS is {rss} KiB, baseline {} KiB",
            self.baseline_rss_kib
        );
    }
}

/// A non-flexible request header (v1): api key, version, correlation id, client id.
fn header_v1(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let client_id = b"sediment-test";
    let mut header = Vec::new();
    header.extend_from_slice(&api_key.to_be_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    header.extend_from_slice(&correlation_id.to_be_bytes());
    header.extend_from_slice(&(client_id.len() as i16).to_be_bytes());
    header.extend_from_slice(client_id);
    header
}

/// A flexible request header (v2): v1 plus an empty tagged-field section.
fn header_v2(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut header = header_v1(api_key, version, correlation_id);
    header.push(0);
    header
}

/// An unsigned varint, as flexible versions encode counts and tags.
fn varint(mut n: u32) -> Vec<u8> {
    let mut out = Vec::new();
    while n >= 0x80 {
        out.push((n as u8 & 0x7f) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out
}

/// `budget` bytes of distinct empty tagged fields (tag n, size 0), preceded
/// by their count.
fn tagged_fields(budget: usize) -> Vec<u8> {
    let mut fields = Vec::with_capacity(budget + 8);
    let mut count = 0u32;
    while fields.len() < budget {
        fields.extend(varint(count));
        fields.push(0);
        count += 1;
    }
    let mut out = varint(count);
    out.extend(fields);
    out
}

/// The broker's peak RSS (KiB) while `work` runs, sampled from /proc.
fn peak_rss_while(broker: &BrokerProcess, work: impl FnOnce()) -> u64 {
    let status = format!("/proc/{}/status", broker.pid());
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let done = std::sync::Arc::clone(&done);
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let rss = std::fs::read_to_string(&status)
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
                    .unwrap_or(0);
                peak = peak.max(rss);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        })
    };
    work();
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    sampler.join().expect("RSS sampler")
}

/// Sends `frame` on a fresh connection and asserts the broker closes it
/// without answering.
fn assert_refused_and_closed(broker: &BrokerProcess, frame: &[u8], what: &str) {
    let mut stream = raw_connect(broker.addr);
    send_raw(&mut stream, frame);
    let answer = read_until_closed(&mut stream, CLOSE_WITHIN);
    assert!(
        answer.is_empty(),
        "{what}: the broker answered {} bytes instead of closing",
        answer.len()
    );
}

// ---------------------------------------------------------------------------
// Connection-level cases: each refuses the frame by closing its connection.
// ---------------------------------------------------------------------------

fn case_negative_length(broker: &BrokerProcess) {
    let mut frame = (-1i32).to_be_bytes().to_vec();
    frame.extend_from_slice(&[0u8; 16]);
    assert_refused_and_closed(broker, &frame, "length -1");
    assert_refused_and_closed(broker, &i32::MIN.to_be_bytes(), "length i32::MIN");
    wait_for_log(broker, "negative frame length -1", LOG_WITHIN);
    wait_for_log(broker, "negative frame length -2147483648", LOG_WITHIN);
}

fn case_huge_length(broker: &BrokerProcess) {
    let before = broker.rss_kib();
    // 2 GiB - 1, the largest a frame can claim, with a few bytes of body.
    let mut frame = i32::MAX.to_be_bytes().to_vec();
    frame.extend_from_slice(&header_v1(3, 4, 1));
    assert_refused_and_closed(broker, &frame, "length 2 GiB");
    wait_for_log(broker, "frame of 2147483647 bytes exceeds", LOG_WITHIN);
    let after = broker.rss_kib();
    assert!(
        after < before + 64 * 1024,
        "refusing a 2 GiB frame grew RSS from {before} to {after} KiB"
    );
}

fn case_declared_frames_under_the_cap_held_open(broker: &BrokerProcess) {
    // Frames that pass the 100 MiB cap but whose bodies never come: the
    // broker may reserve address space, but only bytes received are resident.
    let before = broker.rss_kib();
    let declared = (100 << 20) - 1i32;
    let mut held: Vec<TcpStream> = (0..8)
        .map(|_| {
            let mut stream = raw_connect(broker.addr);
            let mut frame = declared.to_be_bytes().to_vec();
            frame.extend_from_slice(&header_v1(0, 9, 1));
            frame.resize(4 + 1024, 0);
            send_raw(&mut stream, &frame);
            stream
        })
        .collect();
    // A request on another connection completes only after the ones above
    // were read (the broker handles connections concurrently, so this is a
    // good-enough barrier, and the RSS bound below is generous).
    let mut probe = WireClient::connect(broker.addr).unwrap();
    let _: ApiVersionsResponse = probe
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    let during = broker.rss_kib();
    assert!(
        during < before + 200 * 1024,
        "8 frames declaring 100 MiB each (1 KiB sent) grew RSS from {before} to {during} KiB"
    );
    for stream in &mut held {
        // Closing mid-frame is refused with a log line.
        stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert!(read_until_closed(stream, CLOSE_WITHIN).is_empty());
    }
    wait_for_log(
        broker,
        "closed mid-request (1028 bytes received)",
        LOG_WITHIN,
    );
}

fn case_garbage_body(broker: &BrokerProcess) {
    // A valid Metadata v4 header prefix whose client id claims 32767 bytes.
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(&7i32.to_be_bytes());
    body.extend_from_slice(&i16::MAX.to_be_bytes());
    body.extend_from_slice(&[0xab; 50]);
    assert_refused_and_closed(broker, &framed(&body), "garbage after a Metadata header");
    wait_for_log(broker, "malformed Metadata v4 request: header", LOG_WITHIN);

    // Pseudo-random bodies (a fixed seed, so a failure reproduces).
    let mut state = 0x5eed_0000_0000_0001u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..16 {
        let len = 8 + (next() % 1024) as usize;
        let body: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert_refused_and_closed(broker, &framed(&body), &format!("random body {round}"));
    }

    // Random bytes behind a valid header of a read-only API, so the real body
    // decoders see them: each is refused (closed) or answered, never a hang
    // or a crash. The client half-closes, so an answered connection ends too.
    let read_only: [(ApiKey, i16, i16); 3] = [
        (ApiKey::ListOffsets, 1, 7),
        (ApiKey::Metadata, 0, 12),
        (ApiKey::DescribeConfigs, 1, 4),
    ];
    for round in 0..48 {
        let (key, min, max) = read_only[round % read_only.len()];
        let version = min + (next() % (max - min + 1) as u64) as i16;
        let correlation_id = 5_000 + round as i32;
        let mut body = if key.request_header_version(version) >= 2 {
            header_v2(key as i16, version, correlation_id)
        } else {
            header_v1(key as i16, version, correlation_id)
        };
        // Mostly zero bytes (small counts and lengths), so some decode.
        let len = (next() % 256) as usize;
        body.extend((0..len).map(|_| match next() % 4 {
            0 => next() as u8,
            _ => 0,
        }));
        let mut stream = raw_connect(broker.addr);
        send_raw(&mut stream, &framed(&body));
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let answer = read_until_closed(&mut stream, CLOSE_WITHIN);
        if !answer.is_empty() {
            let what = format!("{key:?} v{version} with {len} random bytes");
            assert!(answer.len() >= 8, "{what}: a partial answer");
            let size = i32::from_be_bytes(answer[..4].try_into().unwrap());
            assert_eq!(size as usize, answer.len() - 4, "{what}: one whole frame");
            let echoed = i32::from_be_bytes(answer[4..8].try_into().unwrap());
            assert_eq!(echoed, correlation_id, "{what}: correlation id");
        }
    }
}

fn case_unknown_api_key(broker: &BrokerProcess) {
    let frame = framed(&header_v1(999, 0, 1));
    assert_refused_and_closed(broker, &frame, "api key 999");
    wait_for_log(broker, "unknown api key 999", LOG_WITHIN);
}

fn case_truncated_frame(broker: &BrokerProcess) {
    let mut stream = raw_connect(broker.addr);
    let mut frame = 100i32.to_be_bytes().to_vec();
    frame.extend_from_slice(&header_v1(3, 4, 1)[..10]);
    send_raw(&mut stream, &frame);
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert!(read_until_closed(&mut stream, CLOSE_WITHIN).is_empty());
    wait_for_log(broker, "closed mid-request (14 bytes received)", LOG_WITHIN);
}

fn case_frame_shorter_than_a_header(broker: &BrokerProcess) {
    assert_refused_and_closed(broker, &framed(&[]), "empty frame");
    assert_refused_and_closed(broker, &framed(&[0, 18, 0, 3, 0, 0, 0]), "7-byte frame");
    wait_for_log(broker, "request of 0 bytes is too short", LOG_WITHIN);
    wait_for_log(broker, "request of 7 bytes is too short", LOG_WITHIN);
}

fn case_array_count_of_i32_max(broker: &BrokerProcess) {
    // Metadata v4: topics array (i32 count), then a few bytes.
    let mut metadata = header_v1(3, 4, 1);
    metadata.extend_from_slice(&i32::MAX.to_be_bytes());
    metadata.extend_from_slice(&[0u8; 8]);
    assert_refused_and_closed(broker, &framed(&metadata), "Metadata v4 topics = i32::MAX");
    wait_for_log(broker, "malformed Metadata v4 request", LOG_WITHIN);

    // Produce v3: transactional id null, acks, timeout, topics = i32::MAX.
    let mut produce = header_v1(0, 3, 2);
    produce.extend_from_slice(&(-1i16).to_be_bytes());
    produce.extend_from_slice(&(-1i16).to_be_bytes());
    produce.extend_from_slice(&30_000i32.to_be_bytes());
    let prefix = produce.clone();
    produce.extend_from_slice(&i32::MAX.to_be_bytes());
    produce.extend_from_slice(&[0u8; 8]);
    assert_refused_and_closed(broker, &framed(&produce), "Produce v3 topics = i32::MAX");

    // Produce v3, one well-formed topic whose partitions array claims i32::MAX.
    let mut nested = prefix;
    nested.extend_from_slice(&1i32.to_be_bytes());
    nested.extend_from_slice(&1i16.to_be_bytes());
    nested.push(b't');
    nested.extend_from_slice(&i32::MAX.to_be_bytes());
    nested.extend_from_slice(&[0u8; 8]);
    assert_refused_and_closed(broker, &framed(&nested), "Produce v3 partitions = i32::MAX");
    wait_for_log(broker, "malformed Produce v3 request", LOG_WITHIN);

    // Produce v9 (flexible): compact array count 2^31 - 1 as an unsigned varint (n + 1).
    let mut flexible = header_v2(0, 9, 3);
    flexible.push(0); // transactional id: null compact string
    flexible.extend_from_slice(&(-1i16).to_be_bytes());
    flexible.extend_from_slice(&30_000i32.to_be_bytes());
    flexible.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x08]);
    flexible.extend_from_slice(&[0u8; 8]);
    assert_refused_and_closed(broker, &framed(&flexible), "Produce v9 topics = 2^31 - 1");
    wait_for_log(broker, "malformed Produce v9 request", LOG_WITHIN);
}

fn case_unserved_apis_and_versions(broker: &BrokerProcess) {
    let cases: &[(i16, i16, &str)] = &[
        (3, 13, "Metadata v13 is not supported"),
        (1, 3, "Fetch v3 is not supported"),
        (0, -1, "Produce v-1 is not supported"),
        (68, 0, "ConsumerGroupHeartbeat is not served"),
        (
            0,
            2,
            "Produce v2 is advertised for old clients' sake but not accepted",
        ),
    ];
    for &(key, version, logged) in cases {
        let frame = framed(&header_v1(key, version, 1));
        assert_refused_and_closed(broker, &frame, logged);
        wait_for_log(broker, logged, LOG_WITHIN);
    }
}

fn case_non_utf8_topic_name(broker: &BrokerProcess) {
    // Metadata v4 naming one topic whose bytes are not UTF-8.
    let mut body = header_v1(3, 4, 1);
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&[0xff, 0xfe, 0xfd]);
    body.push(0);
    assert_refused_and_closed(broker, &framed(&body), "non-UTF-8 topic name");
    wait_for_log(broker, "malformed Metadata v4 request", LOG_WITHIN);
}

fn case_millions_of_header_tagged_fields(broker: &BrokerProcess) {
    // Produce v9 (header v2; Produce may be up to max_request_bytes, unlike
    // requests without records) whose header carries 30 MiB of distinct empty
    // tagged fields: ~6 million map entries if decoded.
    let mut body = header_v1(0, 9, 1);
    body.extend(tagged_fields(30 << 20));
    body.extend_from_slice(&[2, b'a', 2, b'b', 0]);
    let frame = framed(&body);
    let before = broker.rss_kib();
    let peak = peak_rss_while(broker, || {
        assert_refused_and_closed(broker, &frame, "30 MiB of header tagged fields")
    });
    wait_for_log(broker, "tagged fields (at most 16)", LOG_WITHIN);
    assert!(
        peak < before + 150 * 1024,
        "a 30 MiB header of tagged fields took RSS from {before} to {peak} KiB"
    );
}

/// A named connection-level case.
type Case = (&'static str, fn(&BrokerProcess));

/// Every connection-level case, in the order the sequence test runs them.
const CONNECTION_CASES: &[Case] = &[
    ("negative length", case_negative_length),
    ("2 GiB length", case_huge_length),
    (
        "frames under the cap held open",
        case_declared_frames_under_the_cap_held_open,
    ),
    ("garbage body", case_garbage_body),
    ("unknown api key", case_unknown_api_key),
    ("truncated frame", case_truncated_frame),
    (
        "frame shorter than a header",
        case_frame_shorter_than_a_header,
    ),
    ("array count of i32::MAX", case_array_count_of_i32_max),
    (
        "unserved apis and versions",
        case_unserved_apis_and_versions,
    ),
    ("non-UTF-8 topic name", case_non_utf8_topic_name),
    (
        "millions of header tagged fields",
        case_millions_of_header_tagged_fields,
    ),
];

fn run_case(name: &str) {
    let (_, case) = CONNECTION_CASES
        .iter()
        .find(|(n, _)| *n == name)
        .expect("known case");
    let mut fixture = Fixture::start(&[]);
    case(&fixture.broker);
    fixture.assert_survived(name);
}

#[test]
fn given_negative_length_prefix_when_sent_then_connection_closed_and_broker_stays_up() {
    run_case("negative length");
}

#[test]
fn given_frame_length_of_2gib_when_sent_then_connection_closed_without_allocating_and_broker_stays_up(
) {
    run_case("2 GiB length");
}

#[test]
fn given_frames_declaring_100mib_with_bodies_withheld_when_held_then_rss_counts_only_bytes_received(
) {
    run_case("frames under the cap held open");
}

#[test]
fn given_garbage_body_with_valid_length_when_sent_then_refused_or_answered_and_broker_stays_up() {
    run_case("garbage body");
}

#[test]
fn given_unknown_api_key_999_when_sent_then_connection_closed_and_logged() {
    run_case("unknown api key");
}

#[test]
fn given_truncated_frame_when_client_closes_mid_request_then_logged_and_broker_stays_up() {
    run_case("truncated frame");
}

#[test]
fn given_frame_shorter_than_a_request_header_when_sent_then_connection_closed() {
    run_case("frame shorter than a header");
}

#[test]
fn given_array_count_of_i32_max_in_a_tiny_request_when_decoded_then_connection_closed_and_no_crash()
{
    run_case("array count of i32::MAX");
}

#[test]
fn given_unserved_api_or_version_when_requested_then_connection_closed_with_reason_logged() {
    run_case("unserved apis and versions");
}

#[test]
fn given_topic_name_that_is_not_utf8_when_requested_then_connection_closed() {
    run_case("non-UTF-8 topic name");
}

#[test]
fn given_request_header_with_millions_of_tagged_fields_when_sent_then_refused_before_decoding_and_rss_bounded(
) {
    run_case("millions of header tagged fields");
}

#[test]
fn given_every_malformed_frame_three_times_over_when_sent_then_canary_served_after_each_and_rss_bounded(
) {
    let mut fixture = Fixture::start(&[]);
    for round in 0..3 {
        for (name, case) in CONNECTION_CASES {
            case(&fixture.broker);
            fixture.assert_survived(&format!("round {round}: {name}"));
        }
    }
    assert!(fixture.canary.checks() > 3 * CONNECTION_CASES.len());
}

// ---------------------------------------------------------------------------
// Request-level cases: a Kafka error code, and the connection stays open.
// ---------------------------------------------------------------------------

/// Produces `records` on `client` and asserts the error code and that the
/// partition's end did not move; then checks the same connection still
/// takes a good batch.
fn assert_refused_and_nothing_appended(
    client: &mut WireClient,
    topic: &str,
    records: Vec<u8>,
    expected_error: i16,
    what: &str,
) {
    let (error, end_before) = latest_offset(client, topic, 0);
    assert_eq!(error, 0);
    let (error, base_offset) = client.produce(topic, 0, Bytes::from(records)).unwrap();
    assert_eq!(error, expected_error, "{what}: produce error code");
    assert_eq!(
        base_offset, -1,
        "{what}: no base offset for a refused batch"
    );
    let (error, end_after) = latest_offset(client, topic, 0);
    assert_eq!(error, 0);
    assert_eq!(end_after, end_before, "{what}: the partition's end moved");
    let fetched = fetch(client, topic, 0, end_before, 1 << 20);
    assert_eq!(fetched.error_code, 0);
    assert!(
        fetched.records.is_empty(),
        "{what}: {} bytes readable past the old end",
        fetched.records.len()
    );
    // The same connection still takes a good batch, at the old end.
    let (error, base_offset) = client
        .produce(topic, 0, Bytes::from(batch_with_records(2, 16, now_ms())))
        .unwrap();
    assert_eq!(error, 0, "{what}: a good batch after the refused one");
    assert_eq!(base_offset, end_before, "{what}: offsets continue");
}

#[test]
fn given_2mib_batch_over_1mib_message_max_when_produced_then_message_too_large_and_connection_still_serves(
) {
    let mut fixture = Fixture::start(&["--message-max-bytes", "1048576"]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "big", 1), 0);
    let big = batch_of_size(1, 2 << 20, now_ms(), 7);
    assert!(big.len() > 2_000_000);
    assert_refused_and_nothing_appended(&mut client, "big", big, MESSAGE_TOO_LARGE, "2 MiB batch");

    // A good batch followed by an oversized one in the same record set: all or nothing.
    let mut set = batch_with_records(2, 16, now_ms());
    set.extend(batch_of_size(1, 2 << 20, now_ms(), 8));
    assert_refused_and_nothing_appended(
        &mut client,
        "big",
        set,
        MESSAGE_TOO_LARGE,
        "good + 2 MiB batch",
    );
    fixture.assert_survived("2 MiB batch");
}

#[test]
fn given_batch_with_bad_crc_when_produced_then_corrupt_message_and_nothing_appended() {
    let mut fixture = Fixture::start(&[]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "crc", 1), 0);
    // Something already in the log, so "nothing appended" is not just "empty".
    let (error, _) = client
        .produce("crc", 0, Bytes::from(batch_with_records(4, 32, now_ms())))
        .unwrap();
    assert_eq!(error, 0);

    let mut flipped = batch_with_records(3, 64, now_ms());
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01; // a value byte, covered by the CRC-32C
    assert_refused_and_nothing_appended(
        &mut client,
        "crc",
        flipped.clone(),
        CORRUPT_MESSAGE,
        "flipped value bit",
    );

    // A good batch followed by the corrupt one: the good one is not appended either.
    let mut set = batch_with_records(2, 16, now_ms());
    set.extend_from_slice(&flipped);
    assert_refused_and_nothing_appended(&mut client, "crc", set, CORRUPT_MESSAGE, "good + bad CRC");
    fixture.assert_survived("bad CRC");
}

#[test]
fn given_batch_whose_length_field_lies_when_produced_then_corrupt_message_and_nothing_appended() {
    let mut fixture = Fixture::start(&[]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "lies", 1), 0);

    let mut huge = batch_with_records(2, 32, now_ms());
    huge[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
    assert_refused_and_nothing_appended(
        &mut client,
        "lies",
        huge,
        CORRUPT_MESSAGE,
        "batchLength i32::MAX",
    );

    let mut negative = batch_with_records(2, 32, now_ms());
    negative[8..12].copy_from_slice(&(-5i32).to_be_bytes());
    assert_refused_and_nothing_appended(
        &mut client,
        "lies",
        negative,
        CORRUPT_MESSAGE,
        "batchLength -5",
    );

    let whole = batch_with_records(2, 32, now_ms());
    let truncated = whole[..whole.len() - 10].to_vec();
    assert_refused_and_nothing_appended(
        &mut client,
        "lies",
        truncated,
        CORRUPT_MESSAGE,
        "truncated batch",
    );

    assert_refused_and_nothing_appended(
        &mut client,
        "lies",
        vec![0xee; 40],
        CORRUPT_MESSAGE,
        "40 bytes of garbage",
    );
    fixture.assert_survived("lying batch lengths");
}

#[test]
fn given_api_versions_above_v4_when_requested_then_v0_reply_with_unsupported_version_and_ranges_and_connection_open(
) {
    let mut fixture = Fixture::start(&[]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    for (correlation_id, version) in [(41, 5i16), (42, 127), (43, i16::MAX), (44, -1)] {
        let mut body = header_v2(18, version, correlation_id);
        for field in [&b"sediment-test"[..], b"1.0"] {
            body.push(field.len() as u8 + 1); // compact string length
            body.extend_from_slice(field);
        }
        body.push(0); // tagged fields
        client.send_frame(&body).unwrap();
        let mut reply = client.read_frame().unwrap();
        // Response header v0: the correlation id only.
        assert_eq!(
            reply.get_i32(),
            correlation_id,
            "v{version}: correlation id"
        );
        let response = ApiVersionsResponse::decode(&mut reply, 0).unwrap();
        assert_eq!(
            response.error_code, UNSUPPORTED_VERSION,
            "v{version}: error code"
        );
        assert!(
            !reply.has_remaining(),
            "v{version}: v0 body has no more fields"
        );
        let range = |key: ApiKey| {
            response
                .api_keys
                .iter()
                .find(|k| k.api_key == key as i16)
                .map(|k| (k.min_version, k.max_version))
        };
        assert_eq!(range(ApiKey::ApiVersions), Some((0, 4)), "v{version}");
        assert_eq!(range(ApiKey::Produce), Some((0, 11)), "v{version}");
        assert_eq!(range(ApiKey::Fetch), Some((4, 12)), "v{version}");
    }
    // The connection is still open and serves the version the client now picks.
    let response: ApiVersionsResponse = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    assert_eq!(response.error_code, 0);
    let metadata: MetadataResponse = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    fixture.assert_survived("ApiVersions above v4");
}

#[test]
fn given_auto_create_off_when_producing_to_unknown_topic_then_unknown_topic_or_partition_and_no_topic(
) {
    let mut fixture = Fixture::start(&["--auto-create-topics", "false"]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    let (error, base_offset) = client
        .produce(
            "nobody-made-me",
            0,
            Bytes::from(batch_with_records(2, 16, now_ms())),
        )
        .unwrap();
    assert_eq!(error, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(base_offset, -1);
    // Nor was it created behind the client's back.
    let (error, _) = latest_offset(&mut client, "nobody-made-me", 0);
    assert_eq!(error, UNKNOWN_TOPIC_OR_PARTITION);
    // A partition that does not exist of a topic that does.
    let (error, _) = client
        .produce(
            "canary",
            5,
            Bytes::from(batch_with_records(2, 16, now_ms())),
        )
        .unwrap();
    assert_eq!(error, UNKNOWN_TOPIC_OR_PARTITION);
    fixture.assert_survived("unknown topic");
}

// ---------------------------------------------------------------------------
// Decoded-size amplification in request bodies. These document open bugs
// outside the server and protocol glue (the vendored kafka-protocol decoders
// and the Metadata handler): a 20 MiB request costs the broker 350 MiB to
// 1.8 GiB, so a few parallel 100 MiB requests (the default
// max_request_bytes) exhaust memory and the process is killed. Run them with
// `cargo test --test bad_input -- --ignored`.
// ---------------------------------------------------------------------------

/// Sends `frame`, waits for the answer or the close, and asserts the broker's
/// RSS never grew by more than 300 MiB.
fn assert_bounded_amplification(frame: &[u8], what: &str) {
    let mut fixture = Fixture::start(&[]);
    let broker = &fixture.broker;
    let before = broker.rss_kib();
    let peak = peak_rss_while(broker, || {
        let mut stream = raw_connect(broker.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(120)))
            .unwrap();
        send_raw(&mut stream, frame);
        let mut size = [0u8; 4];
        // Either an answer or a close ends the wait.
        let _ = std::io::Read::read_exact(&mut stream, &mut size);
    });
    assert!(
        peak < before + 300 * 1024,
        "{what}: a {} MiB request took RSS from {before} to {peak} KiB",
        frame.len() >> 20
    );
    fixture.assert_survived(what);
}

// Requests without records are capped at `max_control_request_bytes` (1 MiB)
// before decoding, because decoding builds structures many times their wire
// size (unknown tagged fields ~17x, empty topic names ~36x).
#[test]
fn given_metadata_body_with_millions_of_tagged_fields_when_sent_then_rss_bounded() {
    // Metadata v12: topics null, two flags, then 20 MiB of tagged fields.
    let mut body = header_v2(3, 12, 1);
    body.extend_from_slice(&[0, 0, 0]);
    body.extend(tagged_fields(20 << 20));
    assert_bounded_amplification(&framed(&body), "Metadata v12 body tagged fields");
}

#[test]
fn given_metadata_request_naming_ten_million_topics_when_sent_then_rss_bounded() {
    let count = 10_000_000i32;
    let mut body = header_v1(3, 4, 1);
    body.extend_from_slice(&count.to_be_bytes());
    body.resize(body.len() + 2 * count as usize, 0); // empty names
    body.push(0); // allow_auto_topic_creation = false
    assert_bounded_amplification(&framed(&body), "Metadata v4 with 10M topics");
}

// ---------------------------------------------------------------------------
// Hostile but well-formed requests.
// ---------------------------------------------------------------------------

/// A Produce request for one partition with the given acks.
fn produce_request(topic: &str, acks: i16, records: Vec<u8>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(0)
                .with_records(Some(Bytes::from(records)))])])
}

/// The first partition's (error code, base offset) of a Produce v9 response
/// frame whose correlation id was read.
fn produce_outcome(mut frame: Bytes) -> (i16, i64) {
    frame.advance(1); // response header v1: empty tagged fields
    let response = ProduceResponse::decode(&mut frame, 9).unwrap();
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[test]
fn given_good_and_bad_requests_pipelined_on_one_connection_when_answered_then_in_order_each_with_its_own_error(
) {
    let mut fixture = Fixture::start(&["--message-max-bytes", "1048576"]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "mixed", 1), 0);
    let (_, end) = latest_offset(&mut client, "mixed", 0);
    let mut bad_crc = batch_with_records(2, 16, now_ms());
    let last = bad_crc.len() - 1;
    bad_crc[last] ^= 0x40;

    // All the frames, and the answers expected (correlation id, what it
    // is), none for acks=0.
    let mut wire = Vec::new();
    let mut expected = Vec::new();
    for (acks, records, what) in [
        (-1, batch_with_records(2, 16, now_ms()), "good"),
        (-1, bad_crc.clone(), "bad crc"),
        (-2, Vec::new(), "ApiVersions v5"),
        (-1, batch_of_size(1, 2 << 20, now_ms(), 3), "too large"),
        (7, batch_with_records(2, 16, now_ms()), "acks=7"),
        (1, batch_with_records(2, 16, now_ms()), "good, acks=1"),
        // Last: Kafka closes the connection after a failed acks=0 produce
        // (the client's only way to learn of it); DESIGN says only "no response".
        (0, bad_crc, "bad crc, acks=0"),
    ] {
        if what == "ApiVersions v5" {
            let mut body = header_v2(18, 5, 9001);
            body.extend_from_slice(&[1, 1, 0]); // two empty compact strings, no tags
            wire.extend(framed(&body));
            expected.push((9001, what));
            continue;
        }
        let (correlation_id, body) =
            client.encode(ApiKey::Produce, 9, &produce_request("mixed", acks, records));
        wire.extend(framed(&body));
        if acks != 0 {
            expected.push((correlation_id, what));
        }
    }
    client.stream().write_all(&wire).unwrap();

    for &(correlation_id, what) in &expected {
        let mut frame = client.read_frame().unwrap();
        assert_eq!(
            frame.get_i32(),
            correlation_id,
            "responses in request order: expected `{what}`"
        );
        let outcome = match what {
            "ApiVersions v5" => {
                let response = ApiVersionsResponse::decode(&mut frame, 0).unwrap();
                (response.error_code, -1)
            }
            _ => produce_outcome(frame),
        };
        let wanted = match what {
            "good" => (0, end),
            "bad crc" => (CORRUPT_MESSAGE, -1),
            "ApiVersions v5" => (UNSUPPORTED_VERSION, -1),
            "too large" => (MESSAGE_TOO_LARGE, -1),
            "acks=7" => (INVALID_REQUIRED_ACKS, -1),
            "good, acks=1" => (0, end + 2),
            other => unreachable!("{other}"),
        };
        assert_eq!(outcome, wanted, "`{what}`: (error code, base offset)");
    }
    // Exactly the two good batches were appended.
    let mut other = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(latest_offset(&mut other, "mixed", 0), (0, end + 4));
    fixture.assert_survived("pipelined good and bad requests");
}

/// The one partition of a Fetch v12 response: (error code, records).
fn fetch_one(client: &mut WireClient, request: &FetchRequest) -> (i16, Bytes) {
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, request).unwrap();
    let partition = &response.responses[0].partitions[0];
    (
        partition.error_code,
        partition.records.clone().unwrap_or_default(),
    )
}

/// ListOffsets v7 of one partition of `t`: (error code, offset).
fn list_offset(client: &mut WireClient, partition: i32, timestamp: i64) -> (i16, i64) {
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(partition)
                .with_current_leader_epoch(-1)
                .with_timestamp(timestamp)])]);
    let response: ListOffsetsResponse = client.call(ApiKey::ListOffsets, 7, &request).unwrap();
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.offset)
}

#[test]
fn given_hostile_fetch_and_list_offsets_parameters_when_requested_then_per_partition_errors_and_no_crash(
) {
    let mut fixture = Fixture::start(&[]);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "t", 1), 0);
    let first = batch_with_records(2, 300, now_ms());
    for batch in [first.clone(), batch_with_records(2, 300, now_ms())] {
        assert_eq!(client.produce("t", 0, Bytes::from(batch)).unwrap().0, 0);
    }

    for offset in [-5, -1, i64::MIN, 5, i64::MAX] {
        let (error, records) = fetch_one(&mut client, &fetch_request("t", 0, offset, 1 << 20));
        assert_eq!(error, OFFSET_OUT_OF_RANGE, "fetch offset {offset}");
        assert!(records.is_empty(), "fetch offset {offset}");
    }
    let (error, records) = fetch_one(&mut client, &fetch_request("t", 0, 4, 1 << 20));
    assert_eq!(
        (error, records.len()),
        (0, 0),
        "fetch at the high watermark"
    );

    for partition in [-1, 1, i32::MAX, i32::MIN] {
        let (error, _) = fetch_one(&mut client, &fetch_request("t", partition, 0, 1 << 20));
        assert_eq!(
            error, UNKNOWN_TOPIC_OR_PARTITION,
            "fetch partition {partition}"
        );
    }

    // Negative and tiny size limits still return the first batch whole.
    for limit in [-1, 0, 1] {
        let (error, records) = fetch_one(&mut client, &fetch_request("t", 0, 0, limit));
        assert_eq!(error, 0, "max bytes {limit}");
        assert_eq!(
            records.len(),
            first.len(),
            "max bytes {limit}: one whole batch"
        );
    }

    // A min_bytes nobody can satisfy is answered when max_wait runs out.
    let mut request = fetch_request("t", 0, 4, 1 << 20);
    request.min_bytes = i32::MAX;
    request.max_wait_ms = 200;
    assert_eq!(fetch_one(&mut client, &request).0, 0);
    request.max_wait_ms = i32::MIN;
    assert_eq!(fetch_one(&mut client, &request).0, 0);

    // The same partition asked for 5,000 times in one request.
    let mut request = fetch_request("t", 0, 0, 50 << 20);
    let partition = request.topics[0].partitions[0].clone();
    request.topics[0].partitions = vec![partition; 5_000];
    let response: FetchResponse = client.call(ApiKey::Fetch, 12, &request).unwrap();
    assert_eq!(response.responses[0].partitions.len(), 5_000);

    // ListOffsets: odd timestamps are answered, unknown partitions refused.
    for timestamp in [i64::MIN, -5, -4, -3, -2, -1, 0, i64::MAX] {
        let (error, offset) = list_offset(&mut client, 0, timestamp);
        assert_eq!(error, 0, "ListOffsets timestamp {timestamp}");
        assert!(
            (-1..=4).contains(&offset),
            "ListOffsets timestamp {timestamp}: offset {offset}"
        );
    }
    assert_eq!(
        list_offset(&mut client, -1, -1).0,
        UNKNOWN_TOPIC_OR_PARTITION
    );
    fixture.assert_survived("hostile fetch and list offsets parameters");
}

/// Everything under `dir`, recursively, as sorted relative paths.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(next) = stack.pop() {
        for entry in std::fs::read_dir(&next).unwrap().flatten() {
            let path = entry.path();
            out.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn given_topic_names_that_try_to_leave_the_data_dir_when_used_then_invalid_topic_and_no_file_created(
) {
    let mut fixture = Fixture::start(&[]);
    let root = fixture.broker.data_dir.parent().unwrap().to_path_buf();
    let outside = std::env::temp_dir().join(format!("sediment-escape-{}", std::process::id()));
    let names = [
        "../escape".to_string(),
        "../../escape".to_string(),
        "..".to_string(),
        ".".to_string(),
        "a/b".to_string(),
        outside.display().to_string(),
        String::new(),
        "x".repeat(250),
        "nul\u{0}byte".to_string(),
        "ünïcode".to_string(),
        "white space".to_string(),
    ];
    let before = tree(&root);
    let mut client = WireClient::connect(fixture.broker.addr).unwrap();
    for name in &names {
        assert_eq!(
            create_topic(&mut client, name, 1),
            INVALID_TOPIC_EXCEPTION,
            "CreateTopics {name:?}"
        );
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(true)
            .with_topics(Some(vec![MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))]));
        let metadata: MetadataResponse = client.call(ApiKey::Metadata, 12, &request).unwrap();
        assert_eq!(
            metadata.topics[0].error_code, INVALID_TOPIC_EXCEPTION,
            "Metadata auto-create {name:?}"
        );
        let (error, _) = client
            .produce(name, 0, Bytes::from(batch_with_records(1, 8, now_ms())))
            .unwrap();
        assert_eq!(error, INVALID_TOPIC_EXCEPTION, "Produce {name:?}");
    }
    let after = tree(&root);
    let created: Vec<_> = after.iter().filter(|p| !before.contains(p)).collect();
    assert!(created.is_empty(), "files created: {created:?}");
    assert!(!outside.exists(), "{} was created", outside.display());
    assert!(!root.parent().unwrap().join("escape").exists());
    fixture.assert_survived("escaping topic names");
}

/// The hostile bodies of the sweep: counts and lengths at their extremes in
/// both encodings, and seeded random bytes.
fn hostile_bodies(seed: u64) -> Vec<(&'static str, Vec<u8>)> {
    let mut state = seed;
    let mut random = || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (state >> 33) as u8
    };
    vec![
        (
            "all 0xff (every i32 -1, every varint unterminated)",
            vec![0xff; 64],
        ),
        ("i32::MAX counts", [0x7f, 0xff, 0xff, 0xff].repeat(16)),
        ("maximal varints", [0xff, 0xff, 0xff, 0xff, 0x0f].repeat(13)),
        ("empty body", Vec::new()),
        ("random bytes", (0..96).map(|_| random()).collect()),
    ]
}

#[test]
fn given_hostile_bodies_for_every_advertised_api_version_and_header_form_when_sent_then_broker_stays_up_with_rss_bounded(
) {
    let mut fixture = Fixture::start(&[]);
    let addr = fixture.broker.addr;
    let mut sent = 0;
    for range in sediment_broker::protocol::versions::ADVERTISED {
        let key = range.key as i16;
        for version in range.min..=range.max {
            // Both request-header forms: v1 (classic) and v2 (flexible, with
            // a tagged-field count), whichever the version really uses.
            for header_version in [1, 2] {
                for (what, body) in
                    hostile_bodies(((key as u64) << 32) | ((version as u64) << 8) | header_version)
                {
                    let mut frame = Vec::new();
                    frame.extend_from_slice(&key.to_be_bytes());
                    frame.extend_from_slice(&version.to_be_bytes());
                    frame.extend_from_slice(&7i32.to_be_bytes());
                    frame.extend_from_slice(&5i16.to_be_bytes());
                    frame.extend_from_slice(b"sweep");
                    if header_version == 2 {
                        frame.push(0);
                    }
                    frame.extend_from_slice(&body);
                    let mut stream = raw_connect(addr);
                    send_raw(&mut stream, &framed(&frame));
                    // Half-close: a request that does decode is answered and
                    // the connection then ends; one that does not is refused.
                    let _ = stream.shutdown(std::net::Shutdown::Write);
                    let _ = read_until_closed(&mut stream, CLOSE_WITHIN);
                    sent += 1;
                    assert!(
                        fixture.broker.is_running(),
                        "the broker died on {:?} v{version} header v{header_version} with {what}; log:\n{}",
                        range.key,
                        fixture.broker.logs()
                    );
                }
            }
        }
        fixture.assert_survived(&format!("hostile bodies for {:?}", range.key));
    }
    assert!(sent > 500, "only {sent} hostile frames sent");
}

// ---------------------------------------------------------------------------
// Authentication and TLS: hostile SASL exchanges on a `--sasl` listener and
// hostile bytes on the TLS listener. Each is closed or refused, and a good
// client (our CLI, authenticated over SASL_PLAINTEXT and SASL_SSL) is served
// after every case.
// ---------------------------------------------------------------------------

mod auth {
    use super::*;

    use common::certs::TestCerts;
    use common::security::{create_user_offline, sediment_ok, Connect, User};
    use kafka_protocol::messages::{
        SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
        SaslHandshakeResponse,
    };

    /// Kafka's SASL_AUTHENTICATION_FAILED.
    const SASL_AUTHENTICATION_FAILED: i16 = 58;
    /// Kafka's ILLEGAL_SASL_STATE.
    const ILLEGAL_SASL_STATE: i16 = 34;

    /// A broker requiring SASL on its plaintext and TLS listeners, with one
    /// user created offline.
    pub struct SaslFixture {
        pub broker: BrokerProcess,
        pub user: User,
        pub certs: TestCerts,
        secrets: tempfile::TempDir,
        _data: tempfile::TempDir,
    }

    impl SaslFixture {
        pub fn start() -> Self {
            let certs = TestCerts::generate();
            let data = tempfile::tempdir().expect("temp dir");
            let data_dir = data.path().join("data");
            let user = User::new("alice", "SCRAM-SHA-256");
            create_user_offline(&data_dir, &user);
            let mut args = certs.serve_args(&certs.broker);
            args.extend([
                "--sasl".to_string(),
                "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN".to_string(),
            ]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let broker = BrokerProcess::start_in(&data_dir, &args);
            Self {
                broker,
                user,
                certs,
                secrets: tempfile::tempdir().expect("temp dir"),
                _data: data,
            }
        }

        /// The broker is up and serves an authenticated client on both
        /// listeners.
        pub fn assert_survived(&mut self, case: &str) {
            assert!(
                self.broker.is_running(),
                "the broker died during `{case}`; its log:\n{}",
                self.broker.logs()
            );
            let password_file = self.user.password_file(self.secrets.path());
            for (bootstrap, protocol, ca) in [
                (self.broker.bootstrap(), "sasl_plaintext", None),
                (
                    self.broker.tls_bootstrap(),
                    "sasl_ssl",
                    Some(self.certs.ca_pem.clone()),
                ),
            ] {
                let connect = Connect {
                    bootstrap,
                    protocol,
                    ca,
                    user: Some((self.user.clone(), password_file.clone())),
                    mechanism: None,
                };
                let topic = format!("after-{}", uuid::Uuid::new_v4().simple());
                sediment_ok(
                    &self.broker,
                    &connect,
                    &["topic", "create", &topic, "--partitions", "1"],
                    None,
                );
                sediment_ok(&self.broker, &connect, &["produce", &topic], Some("ok\n"));
            }
        }
    }

    /// SaslHandshake v1 for `mechanism`; panics unless it is accepted.
    fn handshake(client: &mut WireClient, mechanism: &str) {
        let response: SaslHandshakeResponse = client
            .call(
                ApiKey::SaslHandshake,
                1,
                &SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_string(mechanism.to_string())),
            )
            .expect("SaslHandshake round trip");
        assert_eq!(response.error_code, 0, "SaslHandshake {mechanism}");
    }

    /// SaslAuthenticate v2 with `auth_bytes`.
    fn authenticate(
        client: &mut WireClient,
        auth_bytes: &[u8],
    ) -> std::io::Result<SaslAuthenticateResponse> {
        client.call(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(auth_bytes)),
        )
    }

    /// Sends `auth_bytes` and asserts the exchange is refused: an answer,
    /// if one comes, carries an error code in `allowed`; and the broker
    /// then closes the connection.
    fn assert_auth_refused(
        broker: &BrokerProcess,
        client: &mut WireClient,
        auth_bytes: &[u8],
        allowed: &[i16],
        what: &str,
    ) {
        match authenticate(client, auth_bytes) {
            Ok(response) => assert!(
                allowed.contains(&response.error_code),
                "{what}: answered with error {} ({:?}), want one of {allowed:?}; broker log:\n{}",
                response.error_code,
                response.error_message,
                broker.logs()
            ),
            Err(error) => assert!(
                error.kind() == std::io::ErrorKind::UnexpectedEof
                    || common::canary::is_closed_error(&error),
                "{what}: {error}"
            ),
        }
        let rest = read_until_closed(client.stream(), CLOSE_WITHIN);
        assert!(
            rest.is_empty(),
            "{what}: {} more bytes after the refusal",
            rest.len()
        );
    }

    /// The server-first message of a SCRAM exchange begun with `client_first`.
    fn server_first(broker: &BrokerProcess, client: &mut WireClient, client_first: &str) -> String {
        let response =
            authenticate(client, client_first.as_bytes()).expect("client-first answered");
        assert_eq!(
            response.error_code,
            0,
            "client-first {client_first:?} refused ({:?}); broker log:\n{}",
            response.error_message,
            broker.logs()
        );
        String::from_utf8(response.auth_bytes.to_vec()).expect("server-first is UTF-8")
    }

    /// `name=value` from a SCRAM message.
    fn attribute<'a>(message: &'a str, name: &str) -> &'a str {
        message
            .split(',')
            .find_map(|a| a.strip_prefix(name).and_then(|v| v.strip_prefix('=')))
            .unwrap_or_else(|| panic!("no {name}= in {message:?}"))
    }

    pub fn case_authenticate_before_handshake(fixture: &SaslFixture) {
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        assert_auth_refused(
            &fixture.broker,
            &mut client,
            format!("n,,n={},r=0123456789abcdef", fixture.user.name).as_bytes(),
            &[ILLEGAL_SASL_STATE, SASL_AUTHENTICATION_FAILED],
            "SaslAuthenticate before SaslHandshake",
        );
    }

    pub fn case_request_before_authentication(fixture: &SaslFixture) {
        // Metadata (and Produce) before any SASL exchange: closed unanswered.
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        let (_, frame) = client.encode(ApiKey::Metadata, 4, &MetadataRequest::default());
        assert_refused_and_closed(
            &fixture.broker,
            &framed(&frame),
            "Metadata before authentication",
        );
        // And after a handshake, before SaslAuthenticate completes.
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        handshake(&mut client, "SCRAM-SHA-256");
        let (_, frame) = client.encode(ApiKey::Metadata, 4, &MetadataRequest::default());
        send_raw(client.stream(), &framed(&frame));
        assert!(
            read_until_closed(client.stream(), CLOSE_WITHIN).is_empty(),
            "Metadata between SaslHandshake and SaslAuthenticate was answered"
        );
    }

    pub fn case_oversized_auth_bytes(fixture: &SaslFixture) {
        // 600 KiB of auth bytes, over the 512 KiB allowed before
        // authentication.
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        handshake(&mut client, "SCRAM-SHA-256");
        let huge = vec![b'a'; 600 << 10];
        let (_, frame) = client.encode(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(huge.clone())),
        );
        send_raw(client.stream(), &framed(&frame));
        let answer = read_until_closed(client.stream(), CLOSE_WITHIN);
        if !answer.is_empty() {
            // An error answer is allowed, never a success.
            let mut body = Bytes::from(answer[4..].to_vec());
            let _correlation = body.get_i32();
            let _tagged = body.get_u8();
            let response = SaslAuthenticateResponse::decode(&mut body, 2)
                .expect("an oversized SaslAuthenticate answered with a valid response");
            assert_ne!(response.error_code, 0, "600 KiB of auth bytes accepted");
        }
        // The same size as a frame before any handshake.
        let mut raw = header_v2(36, 2, 1);
        raw.extend_from_slice(&huge);
        assert_refused_and_closed(
            &fixture.broker,
            &framed(&raw),
            "a 600 KiB frame before authentication",
        );
    }

    pub fn case_bad_scram_nonce_and_proof(fixture: &SaslFixture) {
        let name = &fixture.user.name;
        // The client-final message's nonce is not the server's.
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        handshake(&mut client, "SCRAM-SHA-256");
        let first = server_first(
            &fixture.broker,
            &mut client,
            &format!("n,,n={name},r=clientnonce1"),
        );
        let nonce = attribute(&first, "r");
        assert!(
            nonce.starts_with("clientnonce1") && nonce.len() > "clientnonce1".len(),
            "{first}"
        );
        assert_auth_refused(
            &fixture.broker,
            &mut client,
            b"c=biws,r=clientnonce1-not-the-servers,p=dGhpcyBpcyBub3QgYSBwcm9vZg==",
            &[SASL_AUTHENTICATION_FAILED],
            "a client-final message with a forged nonce",
        );

        // The right nonce, a wrong proof (32 bytes, the SHA-256 size).
        let mut client = WireClient::connect(fixture.broker.addr).unwrap();
        handshake(&mut client, "SCRAM-SHA-256");
        let first = server_first(
            &fixture.broker,
            &mut client,
            &format!("n,,n={name},r=clientnonce2"),
        );
        let nonce = attribute(&first, "r").to_string();
        assert_auth_refused(
            &fixture.broker,
            &mut client,
            format!("c=biws,r={nonce},p=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").as_bytes(),
            &[SASL_AUTHENTICATION_FAILED],
            "a client-final message with a wrong proof",
        );

        // A proof that is not base64, and a client-final without a proof.
        for (i, bad) in ["p=!!!not-base64!!!", "p="].iter().enumerate() {
            let mut client = WireClient::connect(fixture.broker.addr).unwrap();
            handshake(&mut client, "SCRAM-SHA-256");
            let first = server_first(
                &fixture.broker,
                &mut client,
                &format!("n,,n={name},r=clientnonce-bad{i}"),
            );
            let nonce = attribute(&first, "r").to_string();
            assert_auth_refused(
                &fixture.broker,
                &mut client,
                format!("c=biws,r={nonce},{bad}").as_bytes(),
                &[SASL_AUTHENTICATION_FAILED],
                &format!("a client-final with {bad:?}"),
            );
        }
    }

    pub fn case_forged_client_first_attributes(fixture: &SaslFixture) {
        let name = &fixture.user.name;
        let forged = [
            // A mandatory extension the server does not understand (RFC 5802 §5.1: m= fails).
            format!("n,,m=ext,n={name},r=nonce-m"),
            // Channel binding the broker does not offer.
            format!("p=tls-unique,,n={name},r=nonce-p"),
            // An authorization identity naming someone else.
            format!("n,a=admin,n={name},r=nonce-a"),
            // No nonce; a nonce with a comma-free but non-printable byte.
            format!("n,,n={name}"),
            format!("n,,n={name},r=no\u{1}nce"),
            // Not SCRAM at all.
            "garbage".to_string(),
            String::new(),
        ];
        for client_first in &forged {
            let mut client = WireClient::connect(fixture.broker.addr).unwrap();
            handshake(&mut client, "SCRAM-SHA-256");
            assert_auth_refused(
                &fixture.broker,
                &mut client,
                client_first.as_bytes(),
                &[SASL_AUTHENTICATION_FAILED],
                &format!("client-first {client_first:?}"),
            );
        }
        // PLAIN with an authorization identity that is not the user, and
        // with a missing separator.
        for plain in [
            format!("admin\0{name}\0{}", fixture.user.password),
            format!("{name}{}", fixture.user.password),
        ] {
            let mut client = WireClient::connect(fixture.broker.addr).unwrap();
            handshake(&mut client, "PLAIN");
            assert_auth_refused(
                &fixture.broker,
                &mut client,
                plain.as_bytes(),
                &[SASL_AUTHENTICATION_FAILED],
                "a forged PLAIN message",
            );
        }
    }

    /// A TLS 1.2 ClientHello (record and handshake headers, one ECDHE-ECDSA
    /// suite, P-256, ecdsa_secp256r1_sha256), valid enough for a server to
    /// start the handshake.
    fn client_hello() -> Vec<u8> {
        let mut extensions = Vec::new();
        extensions.extend_from_slice(&[0x00, 0x0a, 0x00, 0x04, 0x00, 0x02, 0x00, 0x17]);
        extensions.extend_from_slice(&[0x00, 0x0b, 0x00, 0x02, 0x01, 0x00]);
        extensions.extend_from_slice(&[0x00, 0x0d, 0x00, 0x04, 0x00, 0x02, 0x04, 0x03]);
        let mut body = vec![0x03, 0x03];
        body.extend((0u8..32).map(|i| i.wrapping_mul(37)));
        body.push(0); // session id
        body.extend_from_slice(&[0x00, 0x04, 0xc0, 0x2b, 0xc0, 0x2f]);
        body.extend_from_slice(&[0x01, 0x00]);
        body.extend_from_slice(&(extensions.len() as u16).to_be_bytes());
        body.extend(extensions);
        let mut handshake = vec![0x01];
        handshake.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
        handshake.extend(body);
        let mut record = vec![0x16, 0x03, 0x01];
        record.extend_from_slice(&(handshake.len() as u16).to_be_bytes());
        record.extend(handshake);
        record
    }

    pub fn case_tls_garbage(fixture: &SaslFixture) {
        let tls = fixture.broker.tls_addr.expect("TLS listener");
        let mut state = 0x7e57_0000_0000_0001u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..8 {
            let len = 1 + (next() % 4096) as usize;
            let garbage: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut stream = raw_connect(tls);
            send_raw(&mut stream, &garbage);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let answer = read_until_closed(&mut stream, CLOSE_WITHIN);
            assert!(
                answer.is_empty() || answer[0] == 0x15,
                "random bytes {round} to the TLS port: answered with something other than a TLS alert: {:?}",
                &answer[..answer.len().min(16)]
            );
        }
        // A Kafka request in the clear on the TLS port: never a Kafka answer.
        let mut stream = raw_connect(tls);
        let mut plain = WireClient::connect(fixture.broker.addr).unwrap();
        let (_, frame) = plain.encode(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
        send_raw(&mut stream, &framed(&frame));
        let answer = read_until_closed(&mut stream, CLOSE_WITHIN);
        assert!(
            answer.is_empty() || answer[0] == 0x15,
            "a plaintext ApiVersions on the TLS port was answered in the clear: {:?}",
            &answer[..answer.len().min(16)]
        );
        // A TLS ClientHello on the plaintext port: not a Kafka frame.
        let mut stream = raw_connect(fixture.broker.addr);
        send_raw(&mut stream, &client_hello());
        let _ = stream.shutdown(std::net::Shutdown::Write);
        assert!(
            read_until_closed(&mut stream, CLOSE_WITHIN).is_empty(),
            "a ClientHello on the plaintext port was answered"
        );
    }

    pub fn case_truncated_tls_handshake(fixture: &SaslFixture) {
        let tls = fixture.broker.tls_addr.expect("TLS listener");
        let hello = client_hello();
        for cut in [1, 5, hello.len() / 2, hello.len() - 1] {
            let mut stream = raw_connect(tls);
            send_raw(&mut stream, &hello[..cut]);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            let answer = read_until_closed(&mut stream, CLOSE_WITHIN);
            assert!(
                answer.is_empty() || answer[0] == 0x15,
                "{cut} bytes of a ClientHello: answered with something other than a TLS alert"
            );
        }
        // The whole ClientHello, then the client goes away mid-handshake.
        let mut stream = raw_connect(tls);
        send_raw(&mut stream, &hello);
        let _ = stream.shutdown(std::net::Shutdown::Write);
        let _ = read_until_closed(&mut stream, CLOSE_WITHIN);
    }

    /// A named authentication or TLS case.
    pub type AuthCase = (&'static str, fn(&SaslFixture));

    pub const AUTH_CASES: &[AuthCase] = &[
        (
            "SaslAuthenticate before SaslHandshake",
            case_authenticate_before_handshake,
        ),
        (
            "requests before authentication",
            case_request_before_authentication,
        ),
        ("oversized auth bytes", case_oversized_auth_bytes),
        ("bad SCRAM nonce and proof", case_bad_scram_nonce_and_proof),
        (
            "forged client-first attributes",
            case_forged_client_first_attributes,
        ),
        ("TLS garbage", case_tls_garbage),
        ("truncated TLS handshake", case_truncated_tls_handshake),
    ];

    pub fn run_auth_case(name: &str) {
        let (_, case) = AUTH_CASES
            .iter()
            .find(|(n, _)| *n == name)
            .expect("known case");
        let mut fixture = SaslFixture::start();
        case(&fixture);
        fixture.assert_survived(name);
    }
}

#[test]
fn given_sasl_authenticate_before_sasl_handshake_when_sent_then_refused_and_closed_and_broker_serves_good_clients(
) {
    auth::run_auth_case("SaslAuthenticate before SaslHandshake");
}

#[test]
fn given_sasl_required_when_requests_come_before_authentication_then_connection_closed_unanswered()
{
    auth::run_auth_case("requests before authentication");
}

#[test]
fn given_auth_bytes_over_512kib_before_authentication_when_sent_then_connection_closed_and_broker_serves_good_clients(
) {
    auth::run_auth_case("oversized auth bytes");
}

#[test]
fn given_scram_client_final_with_forged_nonce_or_wrong_proof_when_sent_then_sasl_authentication_failed_and_closed(
) {
    auth::run_auth_case("bad SCRAM nonce and proof");
}

#[test]
fn given_scram_client_first_with_forged_attributes_when_sent_then_sasl_authentication_failed_and_closed(
) {
    auth::run_auth_case("forged client-first attributes");
}

#[test]
fn given_random_bytes_or_plaintext_kafka_on_the_tls_port_when_sent_then_closed_and_broker_serves_good_clients(
) {
    auth::run_auth_case("TLS garbage");
}

#[test]
fn given_truncated_tls_client_hello_when_client_closes_then_connection_closed_and_broker_serves_good_clients(
) {
    auth::run_auth_case("truncated TLS handshake");
}

#[test]
fn given_every_authentication_and_tls_case_twice_over_when_sent_then_good_clients_served_after_each(
) {
    let mut fixture = auth::SaslFixture::start();
    for round in 0..2 {
        for (name, case) in auth::AUTH_CASES {
            case(&fixture);
            fixture.assert_survived(&format!("round {round}: {name}"));
        }
    }
}
