//! The broker binary starts, answers ApiVersions and Metadata over real TCP,
//! and shuts down cleanly on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::wire::WireClient;
use common::BrokerProcess;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse,
};

#[test]
fn given_started_broker_when_asked_api_versions_then_advertises_design_table() {
    let broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    let response: ApiVersionsResponse = client
        .call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default())
        .unwrap();
    assert_eq!(response.error_code, 0);
    let produce = response.api_keys.iter().find(|k| k.api_key == 0).unwrap();
    assert_eq!((produce.min_version, produce.max_version), (0, 11));
    let fetch = response.api_keys.iter().find(|k| k.api_key == 1).unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 12));
    assert!(response
        .api_keys
        .iter()
        .all(|k| k.api_key != 68 && k.api_key != 71));
}

#[test]
fn given_started_broker_when_terminated_then_exits_zero_and_restarts_without_recovery() {
    let mut broker = BrokerProcess::start(&[]);
    let mut client = WireClient::connect(broker.addr).unwrap();
    let metadata: MetadataResponse = client
        .call(ApiKey::Metadata, 12, &MetadataRequest::default())
        .unwrap();
    assert_eq!(metadata.brokers.len(), 1);
    assert_eq!(metadata.controller_id.0, 0);
    assert_eq!(broker.terminate(), Some(0));
    assert!(broker.data_dir.join("meta/clean-shutdown").exists());
    broker.restart();
    assert!(
        !broker.logs().contains("no clean-shutdown marker"),
        "a clean restart does not recover: {}",
        broker.logs()
    );
}
