//! DescribeLogDirs v1–4: the broker's one log directory (the data
//! directory, as an absolute path) and, in it, each requested partition's
//! size: the bytes of its segments' `.log` files, as Kafka counts a log's
//! size. `topics: null` asks for every partition, `__consumer_offsets`
//! included (Kafka lists its internal topics too).
//!
//! As Kafka answers: partitions this broker does not host (unknown topics,
//! indexes beyond the count, offline partitions) are left out rather than
//! refused; a topic with none left is left out too. `offset_lag` is 0 (there
//! are no future logs, and the high watermark never trails the log end of a
//! single replica for long) and `is_future_key` false. v4's `total_bytes` and
//! `usable_bytes` come from statvfs of the directory (`f_blocks` and
//! `f_bavail`, the blocks an unprivileged writer may still use), -1 when
//! statvfs fails; it runs on the blocking pool, as a slow disk can stall it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sediment_protocol::messages::describe_log_dirs::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use sediment_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse};

use crate::basics::TopicPartition;
use crate::broker::Broker;
use crate::protocol::errors::Refusal;
use crate::security::acl::{AclOperation, ResourceType, CLUSTER_RESOURCE_NAME};
use crate::session::Session;

/// Size and free space of the volume holding a directory, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VolumeSpace {
    /// Size of the volume.
    pub total_bytes: i64,
    /// Bytes an unprivileged writer may still use.
    pub usable_bytes: i64,
}

/// The DescribeLogDirs response.
pub async fn handle(
    broker: &Arc<Broker>,
    request: DescribeLogDirsRequest,
    version: i16,
    session: &Session,
) -> DescribeLogDirsResponse {
    if let Err(denied) = broker.authorize(
        session,
        AclOperation::Describe,
        ResourceType::Cluster,
        CLUSTER_RESOURCE_NAME,
    ) {
        // As Kafka: the code at the top (v3+), and no directories.
        return DescribeLogDirsResponse::default().with_error_code(Refusal::from(denied).code);
    }
    let dir = absolute(broker.logs().data_dir());
    let space = if version >= 4 {
        let probed = dir.clone();
        match tokio::task::spawn_blocking(move || volume_space(&probed)).await {
            Ok(space) => space,
            Err(error) => {
                tracing::error!(error = %error, "statvfs task failed");
                None
            }
        }
    } else {
        None
    };
    let topics = partition_sizes(broker, request.topics.as_deref().map(wanted))
        .into_iter()
        .map(|(name, partitions)| {
            DescribeLogDirsTopic::default()
                .with_name(name)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, size)| {
                            DescribeLogDirsPartition::default()
                                .with_partition_index(index)
                                .with_partition_size(size)
                                .with_offset_lag(0)
                                .with_is_future_key(false)
                        })
                        .collect(),
                )
        })
        .collect();
    let result = DescribeLogDirsResult::default()
        .with_error_code(0)
        .with_log_dir(dir.display().to_string())
        .with_topics(topics)
        .with_total_bytes(space.map_or(-1, |s| s.total_bytes))
        .with_usable_bytes(space.map_or(-1, |s| s.usable_bytes));
    DescribeLogDirsResponse::default()
        .with_error_code(0)
        .with_results(vec![result])
}

/// The requested partitions, without repeats.
fn wanted(
    topics: &[sediment_protocol::messages::describe_log_dirs::DescribableLogDirTopic],
) -> BTreeSet<TopicPartition> {
    topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.topic.clone(), *p))
        })
        .collect()
}

/// Size in bytes of every hosted partition in `wanted` (every one for
/// `None`), by topic then partition index.
fn partition_sizes(
    broker: &Broker,
    wanted: Option<BTreeSet<TopicPartition>>,
) -> BTreeMap<String, BTreeMap<i32, i64>> {
    let mut sizes: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    let hosted = match wanted {
        None => broker.logs().partitions(),
        Some(wanted) => wanted
            .into_iter()
            .filter_map(|tp| match broker.logs().get(&tp) {
                Ok(Some(log)) => Some((tp, log)),
                // Not hosted, or offline: Kafka leaves such partitions out.
                Ok(None) | Err(_) => None,
            })
            .collect(),
    };
    for (tp, log) in hosted {
        let size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
        sizes
            .entry(tp.topic)
            .or_default()
            .insert(tp.partition, size);
    }
    sizes
}

/// `dir` as an absolute path (relative data directories are resolved
/// against the working directory; the path is left as given if that fails).
fn absolute(dir: &Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

/// The size and usable space of the volume holding `dir`; `None` (logged)
/// when statvfs fails.
pub fn volume_space(dir: &Path) -> Option<VolumeSpace> {
    match rustix::fs::statvfs(dir) {
        Ok(stat) => {
            let bytes = |blocks: u64| {
                i64::try_from(blocks.saturating_mul(stat.f_frsize)).unwrap_or(i64::MAX)
            };
            Some(VolumeSpace {
                total_bytes: bytes(stat.f_blocks),
                usable_bytes: bytes(stat.f_bavail),
            })
        }
        Err(error) => {
            tracing::warn!(dir = %dir.display(), error = %error, "statvfs failed: total and usable bytes are unknown");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_existing_directory_then_volume_space_is_positive_and_usable_at_most_total() {
        let dir = tempfile::tempdir().unwrap();
        let space = volume_space(dir.path()).unwrap();
        assert!(space.total_bytes > 0, "{space:?}");
        assert!(
            (0..=space.total_bytes).contains(&space.usable_bytes),
            "{space:?}"
        );
    }

    #[test]
    fn given_missing_directory_then_volume_space_is_unknown() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(volume_space(&dir.path().join("missing")), None);
    }
}
