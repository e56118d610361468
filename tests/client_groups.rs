//! sediment-client's `GroupConsumer` against Sediment's own group
//! coordinator (the real binary on 127.0.0.1:0): the scenarios of
//! `group_scenarios/`, which `client_groups_mock.rs` also runs against
//! librdkafka's mock cluster.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;
mod group_scenarios;

use std::time::Duration;

use common::BrokerProcess;
use group_scenarios::Env;
use sediment_client::{ClientBuilder, NewTopic};

/// A broker with an empty `topic` of the scenarios' partition count.
async fn broker_with_topic(topic: &str) -> (BrokerProcess, Env) {
    let broker = BrokerProcess::start(&[]);
    let env = Env {
        client: ClientBuilder::new(broker.bootstrap())
            .build()
            .await
            .expect("client"),
        topic: topic.to_string(),
        session_timeout: Duration::from_secs(3),
    };
    env.client
        .admin()
        .create_topic(NewTopic::new(topic, group_scenarios::PARTITIONS))
        .await
        .expect("create topic");
    (broker, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_two_members_split_commit_and_one_restarts_then_it_resumes_at_committed_offsets(
) {
    let (_broker, env) = broker_with_topic("split").await;
    group_scenarios::split_commit_and_resume(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_members_go_one_three_one_then_every_partition_has_one_owner_after_each_rebalance(
) {
    let (_broker, env) = broker_with_topic("grow-shrink").await;
    group_scenarios::one_three_one(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_auto_committing_then_only_records_released_by_the_next_poll_are_committed(
) {
    let (_broker, env) = broker_with_topic("auto").await;
    group_scenarios::auto_commit_commits_only_released_records(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_a_member_commits_in_on_revoked_then_the_next_owner_reads_nothing_twice(
) {
    let (_broker, env) = broker_with_topic("revoke").await;
    group_scenarios::commit_on_revoke_hands_over_without_redelivery(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_streaming_then_each_item_is_released_when_the_next_is_asked_for() {
    let (_broker, env) = broker_with_topic("stream").await;
    group_scenarios::stream_releases_each_item_when_the_next_is_asked_for(&env).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn given_sediment_when_committing_by_hand_and_seeking_then_offsets_and_positions_follow() {
    let (_broker, env) = broker_with_topic("manual").await;
    group_scenarios::manual_commits_and_seek(&env).await;
}
