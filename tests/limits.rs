//! Connection limits against the live broker (DESIGN §2 server/, §4): the
//! connection semaphore, the idle and request-read timeouts (slow-loris), the
//! per-connection bound on unsent response bytes, and that no client can keep
//! a connection slot forever (one that never reads is closed after the idle
//! timeout; one refused after its header frees its slot at once, even if it
//! keeps its socket open). In every case a canary client is still served,
//! the process stays up, and its memory stays bounded. Bounds are generous;
//! nothing here asserts speed, only that a limit takes effect, and lower
//! bounds only where the limit itself makes them certain.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchResponse};
use kafka_protocol::protocol::Decodable;
use sediment_broker::storage::test_batches::batch_of_size;

use common::canary::{
    create_topic, fetch_request, framed, is_closed_error, now_ms, raw_connect, read_until_closed,
    send_raw, wait_for_log, Canary,
};
use common::wire::WireClient;
use common::BrokerProcess;

/// The idle timeout the limit tests run with.
const IDLE_MS: u64 = 2_000;
/// The request read timeout the limit tests run with.
const READ_MS: u64 = 1_000;

fn small_limits(max_connections: usize) -> Vec<String> {
    vec![
        "--max-connections".to_string(),
        max_connections.to_string(),
        "--request-read-timeout-ms".to_string(),
        READ_MS.to_string(),
        "--idle-timeout-ms".to_string(),
        IDLE_MS.to_string(),
    ]
}

fn start(args: &[String]) -> BrokerProcess {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    BrokerProcess::start(&args)
}

fn assert_running(broker: &mut BrokerProcess, case: &str) {
    assert!(
        broker.is_running(),
        "the broker died during `{case}`; its log:\n{}",
        broker.logs()
    );
}

/// One ApiVersions round trip on `client`.
fn api_versions(client: &mut WireClient) -> std::io::Result<ApiVersionsResponse> {
    client.call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
}

#[test]
fn given_max_connections_held_by_idle_clients_when_another_connects_then_it_waits_until_idle_timeout_frees_a_slot(
) {
    let mut broker = start(&small_limits(8));
    let mut canary = Canary::new(&broker, "canary", false);

    // Eight clients take every slot: each is served once, then goes quiet.
    let first_request_sent = Instant::now();
    let mut holders: Vec<WireClient> = (0..8)
        .map(|_| {
            let mut holder = WireClient::connect(broker.addr).unwrap();
            assert_eq!(api_versions(&mut holder).unwrap().error_code, 0);
            holder
        })
        .collect();

    // The ninth is accepted by the kernel but not served until a holder's
    // idle timeout (which started no earlier than `first_request_sent`) ends.
    let mut waiting = WireClient::connect(broker.addr).unwrap();
    let response = api_versions(&mut waiting).expect("served once an idle slot is freed");
    let served_after = first_request_sent.elapsed();
    assert_eq!(response.error_code, 0);
    assert!(
        served_after >= Duration::from_millis(IDLE_MS - 100),
        "the 9th connection was served after {served_after:?}, before any of the 8 holders could time out"
    );

    // Every holder was closed by the idle timeout.
    for holder in &mut holders {
        assert!(read_until_closed(holder.stream(), Duration::from_secs(30)).is_empty());
    }
    wait_for_log(&broker, "idle for 2s", Duration::from_secs(10));
    canary.check("after the idle holders were closed");
    assert_running(&mut broker, "idle holders");
}

#[test]
fn given_3000_silent_sockets_over_the_connection_limit_when_a_canary_produces_and_consumes_then_it_is_served_while_they_stay_open(
) {
    // Default limits: 1024 connections, a 10 s setup timeout, a 10 min idle
    // timeout. Without eviction of silent connections the canary would wait
    // behind them for the idle timeout.
    let mut broker = BrokerProcess::start(&[]);
    let mut canary = Canary::new(&broker, "canary", false);
    let started = Instant::now();
    let mut silent: Vec<TcpStream> = (0..3000).map(|_| raw_connect(broker.addr)).collect();
    eprintln!("3000 silent sockets open after {:?}", started.elapsed());

    // The flood is still open: the canary connects, produces and fetches.
    for round in 0..3 {
        canary.check(&format!("round {round} behind 3000 silent sockets"));
    }
    eprintln!(
        "canary served 3 times, {:?} after the flood began",
        started.elapsed()
    );
    wait_for_log(
        &broker,
        "max_connections reached: closing the oldest connection that has sent no request",
        Duration::from_secs(30),
    );

    // Every silent socket is closed (evicted, or at the setup timeout) and
    // none was sent a byte.
    for (i, stream) in silent.iter_mut().enumerate().rev().take(50) {
        let sent = read_until_closed(stream, Duration::from_secs(60));
        assert!(sent.is_empty(), "silent connection {i} was sent data");
    }
    drop(silent);
    canary.check("after the flood");
    assert_running(&mut broker, "3000 silent sockets");
    let log = broker.logs();
    let reports = log.matches("max_connections reached").count();
    assert!(
        reports <= 10,
        "the limit was reported {reports} times: the log must be rate-limited"
    );
}

#[test]
fn given_a_per_ip_cap_when_one_address_opens_more_then_the_extra_are_closed_and_logged() {
    let mut broker = BrokerProcess::start(&["--max-connections-per-ip", "4"]);
    let mut held: Vec<WireClient> = (0..4)
        .map(|_| {
            let mut client = WireClient::connect(broker.addr).unwrap();
            assert_eq!(api_versions(&mut client).unwrap().error_code, 0);
            client
        })
        .collect();
    let mut extra = raw_connect(broker.addr);
    assert!(read_until_closed(&mut extra, Duration::from_secs(30)).is_empty());
    wait_for_log(&broker, "max_connections_per_ip", Duration::from_secs(10));
    // A slot given back is usable again, once the broker has seen the close.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let served = WireClient::connect(broker.addr)
            .ok()
            .and_then(|mut client| api_versions(&mut client).ok());
        if served.is_some_and(|response| response.error_code == 0) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the freed slot was never usable again"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_running(&mut broker, "per-IP cap");
}

#[test]
fn given_a_socket_that_sends_nothing_when_the_setup_timeout_passes_then_closed() {
    let mut broker = BrokerProcess::start(&["--connection-setup-timeout-ms", "1000"]);
    let mut silent = raw_connect(broker.addr);
    let opened = Instant::now();
    assert!(read_until_closed(&mut silent, Duration::from_secs(60)).is_empty());
    assert!(
        opened.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the 1 s setup timeout",
        opened.elapsed()
    );
    assert_running(&mut broker, "setup timeout");
}

/// Sends a 100-byte frame one byte every 250 ms until the broker closes the
/// connection; returns the time from the first byte to the close. Every
/// byte comes well within the 1 s read timeout, so only a deadline on the
/// whole frame (not on each read) catches this client.
fn dribble(addr: std::net::SocketAddr) -> Duration {
    let mut stream = raw_connect(addr);
    stream
        .set_read_timeout(Some(Duration::from_millis(250)))
        .unwrap();
    let mut frame = 100i32.to_be_bytes().to_vec();
    frame.resize(104, 0xaa);
    let mut first_byte_at = None;
    for byte in frame.iter().take(60) {
        if let Err(error) = stream.write_all(&[*byte]) {
            assert!(is_closed_error(&error), "write failed: {error}");
            break;
        }
        first_byte_at.get_or_insert_with(Instant::now);
        // The read timeout paces the dribble; EOF or a reset means closed.
        let mut buf = [0u8; 64];
        match std::io::Read::read(&mut stream, &mut buf) {
            Ok(0) => break,
            Ok(n) => panic!("the broker answered {n} bytes to an incomplete frame"),
            Err(e) if is_closed_error(&e) => break,
            Err(_) => {} // timed out: still open, send the next byte
        }
    }
    let closed_after = first_byte_at.expect("first byte sent").elapsed();
    // Confirm the close rather than trusting the loop's exit.
    assert!(read_until_closed(&mut stream, Duration::from_secs(5)).is_empty());
    closed_after
}

#[test]
fn given_clients_dribbling_one_byte_at_a_time_when_request_read_timeout_passes_then_closed_and_canary_served(
) {
    let mut broker = start(&small_limits(8));
    let mut canary = Canary::new(&broker, "canary", false);
    let dribblers: Vec<_> = (0..4)
        .map(|_| {
            let addr = broker.addr;
            std::thread::spawn(move || dribble(addr))
        })
        .collect();
    // The canary is served while the dribblers hold their connections.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !dribblers.iter().all(|d| d.is_finished()) {
        assert!(
            Instant::now() < deadline,
            "dribblers still running after 20 s"
        );
        canary.check("while slow-loris clients are connected");
    }
    for dribbler in dribblers {
        let closed_after = dribbler.join().expect("dribbler thread");
        assert!(
            closed_after >= Duration::from_millis(READ_MS - 50),
            "closed after {closed_after:?}, before the {READ_MS} ms read timeout"
        );
        assert!(
            closed_after < Duration::from_secs(10),
            "a slow-loris connection stayed open {closed_after:?} (read timeout {READ_MS} ms)"
        );
    }
    wait_for_log(
        &broker,
        "request not complete after 1s",
        Duration::from_secs(10),
    );
    canary.check("after the slow-loris clients were closed");
    assert!(canary.checks() > 2);
    assert_running(&mut broker, "slow loris");
}

/// Fills `topic` with about 4 MiB in four batches below the 1 MiB limit.
fn fill_topic(broker: &BrokerProcess, topic: &str) -> i64 {
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, topic, 1), 0);
    let mut end = 0;
    for seed in 0..4 {
        let batch = batch_of_size(16, 1000 * 1024, now_ms(), seed);
        let (error, base_offset) = client.produce(topic, 0, Bytes::from(batch)).unwrap();
        assert_eq!(error, 0);
        end = base_offset + 16;
    }
    end
}

/// Encodes `count` Fetch v12 requests for `topic` from offset 0 with
/// correlation ids 1..=count, as one buffer of frames.
fn pipelined_fetches(client: &mut WireClient, topic: &str, count: usize) -> Vec<u8> {
    let request = fetch_request(topic, 0, 0, 50 << 20);
    let mut wire = Vec::new();
    for _ in 0..count {
        let (_, body) = client.encode(ApiKey::Fetch, 12, &request);
        wire.extend(framed(&body));
    }
    wire
}

#[test]
fn given_clients_pipelining_200_fetches_without_reading_when_responses_pile_up_then_rss_bounded_and_canary_served(
) {
    let mut broker = start(&["--max-connections".to_string(), "16".to_string()]);
    let mut canary = Canary::new(&broker, "canary", false);
    let log_end = fill_topic(&broker, "bulk");
    let baseline = broker.rss_kib();

    let mut flooders: Vec<WireClient> = (0..4)
        .map(|_| {
            let mut client = WireClient::connect(broker.addr).unwrap();
            let wire = pipelined_fetches(&mut client, "bulk", 200);
            client.stream().write_all(&wire).unwrap();
            client
        })
        .collect();

    // 4 x 200 responses of ~4 MiB would be over 3 GiB if the broker buffered them.
    let mut peak = baseline;
    let sampling = Instant::now();
    while sampling.elapsed() < Duration::from_secs(3) {
        canary.check("while fetch responses pile up unread");
        peak = peak.max(broker.rss_kib());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        peak < baseline + 300 * 1024,
        "RSS grew from {baseline} KiB to {peak} KiB while 4 clients left fetch responses unread"
    );

    // Nothing was lost: the responses come out whole and in order once read.
    let reader = &mut flooders[0];
    for correlation_id in 1..=200 {
        let mut frame = reader.read_frame().expect("pipelined fetch response");
        assert_eq!(
            frame.get_i32(),
            correlation_id,
            "responses in request order"
        );
        frame.advance(1); // response header v1: empty tagged fields
        let response = FetchResponse::decode(&mut frame, 12).unwrap();
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        assert_eq!(partition.high_watermark, log_end);
        assert!(partition.records.as_ref().unwrap().len() > 4_000_000);
    }
    drop(flooders);
    canary.check("after the flooders left");
    assert_running(&mut broker, "fetch flood");
}

#[test]
fn given_clients_that_never_read_holding_every_slot_when_idle_timeout_passes_then_closed_and_canary_served(
) {
    let mut broker = start(&small_limits(4));
    let mut canary = Canary::new(&broker, "canary", false);
    fill_topic(&broker, "bulk");

    // Four clients take every slot and stall their connection's writer.
    let _stalled: Vec<WireClient> = (0..4)
        .map(|_| {
            let mut client = WireClient::connect(broker.addr).unwrap();
            let wire = pipelined_fetches(&mut client, "bulk", 50);
            client.stream().write_all(&wire).unwrap();
            client
        })
        .collect();

    // A client that reads nothing makes no progress: the broker must not
    // let it keep a slot forever.
    let started = Instant::now();
    canary.check("while every slot is held by a client that never reads");
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "served only after {:?}",
        started.elapsed()
    );
    assert_running(&mut broker, "stalled readers");
}

#[test]
fn given_requests_refused_after_decoding_when_clients_keep_the_socket_open_then_their_slots_are_freed(
) {
    let mut broker = start(&[
        "--max-connections".to_string(),
        "2".to_string(),
        "--idle-timeout-ms".to_string(),
        "30000".to_string(),
    ]);
    let mut canary = Canary::new(&broker, "canary", false);
    // Metadata v4 whose topics array claims i32::MAX elements: the header
    // decodes, the body does not, and the connection is closed.
    let mut body = Vec::new();
    body.extend_from_slice(&3i16.to_be_bytes());
    body.extend_from_slice(&4i16.to_be_bytes());
    body.extend_from_slice(&1i32.to_be_bytes());
    body.extend_from_slice(&(-1i16).to_be_bytes()); // null client id
    body.extend_from_slice(&i32::MAX.to_be_bytes());
    body.extend_from_slice(&[0u8; 8]);
    let mut refused: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut stream = raw_connect(broker.addr);
            send_raw(&mut stream, &framed(&body));
            stream
        })
        .collect();
    for stream in &mut refused {
        // The broker stops writing, but these clients never close their side.
        assert!(read_until_closed(stream, Duration::from_secs(10)).is_empty());
    }
    let started = Instant::now();
    canary.check("after two connections were refused but left open by their clients");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the canary waited {:?} for a slot held by refused connections (idle timeout 30 s)",
        started.elapsed()
    );
    assert_running(&mut broker, "refused but open");
}
