//! The background heartbeat task: keeps this member's session alive while
//! the application processes records, and notices rebalances.
//!
//! It only heartbeats in a stable generation (never during a join, when the
//! coordinator holds the JoinGroup and a heartbeat would be refused or
//! queued behind it), including while a rejoin waits for the next `poll()`,
//! so that a slow batch does not let the session expire. It never rejoins
//! by itself: it records what the
//! answer means in the shared [`Membership`](super::membership::Membership)
//! and wakes `poll()`, which runs the rebalance (with the revoke callback)
//! on the application's task, as Kafka's Java consumer does.
//!
//! It runs until the group consumer is dropped or closed (its handle aborts
//! it). If the application stops calling `poll()`, heartbeats go on, but a
//! rebalance waits for this member only for the rebalance timeout, after
//! which the coordinator drops it.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::AbortHandle;
use tokio::time::MissedTickBehavior;

use super::coordinator::GroupClient;
use super::membership::Recovery;
use crate::error::ClientError;

/// Starts the task; abort the handle to stop it.
pub(crate) fn spawn(client: Arc<GroupClient>, interval: Duration) -> AbortHandle {
    let cluster = client.cluster().clone();
    cluster.spawn(run(client, interval)).abort_handle()
}

async fn run(client: Arc<GroupClient>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let Some((member_id, generation)) = client.membership().heartbeat_target() else {
            continue;
        };
        let code = match client.heartbeat(&member_id, generation).await {
            Ok(code) => code,
            Err(error) => {
                // A lost connection is forgotten by the client; the next tick
                // finds the coordinator again. The session survives as long
                // as a heartbeat lands within the session timeout.
                tracing::debug!(group = client.group_id(), %error, "heartbeat failed");
                continue;
            }
        };
        let step = client.membership().on_heartbeat(generation, code);
        match step {
            Recovery::Done | Recovery::Retry => {}
            Recovery::Rejoin => {
                tracing::debug!(
                    group = client.group_id(),
                    code,
                    generation,
                    "heartbeat asks for a rejoin"
                );
                client.wake().notify_one();
            }
            Recovery::Rediscover => client.forget_coordinator(None).await,
            Recovery::Fatal => {
                let error = ClientError::from_code(
                    code,
                    || {
                        format!(
                            "heartbeat to the coordinator of group `{}`",
                            client.group_id()
                        )
                    },
                    None,
                );
                if let Some(error) = error {
                    tracing::warn!(group = client.group_id(), %error, "heartbeat refused");
                    client.set_fatal(error);
                }
            }
        }
    }
}
