//! The idempotent producer against the real binary, spoken by the
//! `kafka-protocol` oracle client: a retried Produce is stored once and both
//! answers carry the same base offset, also after a kill -9; InitProducerId
//! never hands out an id twice across restarts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use bytes::Bytes;
use common::canary::{create_topic, latest_offset};
use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::{ApiKey, InitProducerIdRequest, InitProducerIdResponse};
use sediment_broker::storage::test_batches::idempotent_batch;

fn init_producer_id(client: &mut WireClient) -> i64 {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000);
    let response: InitProducerIdResponse =
        client.call(ApiKey::InitProducerId, 4, &request).unwrap();
    assert_eq!(response.error_code, 0);
    assert_eq!(response.producer_epoch, 0);
    response.producer_id.0
}

#[test]
fn given_an_idempotent_produce_when_retried_and_after_kill9_then_stored_once_with_one_offset() {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    assert_eq!(create_topic(&mut client, "idem", 1), 0);
    let pid = init_producer_id(&mut client);
    let batch = Bytes::from(idempotent_batch(3, pid, 0, 0, 7));

    let first = client.produce("idem", 0, batch.clone()).unwrap();
    let retry = client.produce("idem", 0, batch.clone()).unwrap();
    assert_eq!(first, (0, 0));
    assert_eq!(retry, first, "the retry gets the original base offset");
    assert_eq!(latest_offset(&mut client, "idem", 0), (0, 3), "stored once");

    broker.restart(); // kill -9, then start again
    let mut client = WireClient::connect(broker.addr).unwrap();
    let after = client.produce("idem", 0, batch).unwrap();
    assert_eq!(after, first, "a retry after the crash is still a duplicate");
    assert_eq!(
        latest_offset(&mut client, "idem", 0),
        (0, 3),
        "still one copy"
    );
    let next = client
        .produce("idem", 0, Bytes::from(idempotent_batch(1, pid, 0, 3, 8)))
        .unwrap();
    assert_eq!(next, (0, 3), "the next sequence appends");
}

#[test]
fn given_ids_handed_out_when_the_broker_restarts_then_init_producer_id_returns_a_higher_id() {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    let before: Vec<i64> = (0..5).map(|_| init_producer_id(&mut client)).collect();
    assert!(
        broker.data_dir.join("meta/producer-id-block").exists(),
        "the reserved block is persisted before ids are handed out"
    );
    broker.restart(); // kill -9
    let mut client = WireClient::connect(broker.addr).unwrap();
    let after = init_producer_id(&mut client);
    assert!(
        before.iter().all(|id| *id < after),
        "{after} is not above {before:?}"
    );
    let mut client_ids = before.clone();
    client_ids.sort_unstable();
    client_ids.dedup();
    assert_eq!(client_ids.len(), before.len(), "ids are unique");
}
