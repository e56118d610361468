//! Rebalance callbacks: the [`RebalanceListener`] trait and what its two
//! methods get — [`Revoked`] (commit before the partitions go) and
//! [`Assigned`] (see the committed offsets, seek elsewhere).
//!
//! Both run inside `poll()` (or `close()`), on the application's task:
//! `on_revoked` before this member rejoins the group, so a commit made
//! there lands while the partitions are still this member's; `on_assigned`
//! after the new assignment arrived and its committed offsets were read,
//! before any record of it is fetched. The group's rebalance waits for
//! them (at most the rebalance timeout), so keep them short.
//!
//! `mpsc::UnboundedSender<RebalanceEvent>` implements the trait for
//! applications that only want to be told.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

use super::coordinator::GroupClient;
use crate::consumer::Offset;
use crate::error::{ClientError, Result};
use crate::TopicPartition;

/// Called around every rebalance. Both methods have empty defaults.
///
/// Implementations may be written with `async fn`:
///
/// ```
/// use sediment_client::group::{Assigned, RebalanceListener, Revoked};
///
/// struct CommitOnRevoke;
///
/// impl RebalanceListener for CommitOnRevoke {
///     async fn on_revoked(&mut self, revoked: &mut Revoked<'_>) {
///         // Everything handed out was processed: keep it.
///         if !revoked.is_lost() {
///             if let Err(e) = revoked.commit().await {
///                 eprintln!("commit on revoke failed (records may be redelivered): {e}");
///             }
///         }
///     }
///
///     async fn on_assigned(&mut self, assigned: &mut Assigned<'_>) {
///         println!("now reading {:?}", assigned.partitions());
///     }
/// }
/// ```
pub trait RebalanceListener: Send + 'static {
    /// The member is about to give up `revoked.partitions()` (every
    /// partition it holds: the range and round-robin assignors use the eager
    /// protocol), or it was already dropped from the generation
    /// ([`Revoked::is_lost`]), or it is closing.
    fn on_revoked(&mut self, revoked: &mut Revoked<'_>) -> impl Future<Output = ()> + Send {
        let _ = revoked;
        async {}
    }

    /// The member now owns `assigned.partitions()`.
    fn on_assigned(&mut self, assigned: &mut Assigned<'_>) -> impl Future<Output = ()> + Send {
        let _ = assigned;
        async {}
    }
}

/// What [`RebalanceListener::on_revoked`] gets.
pub struct Revoked<'a> {
    pub(crate) client: &'a GroupClient,
    pub(crate) partitions: &'a [TopicPartition],
    pub(crate) returned: &'a BTreeMap<TopicPartition, i64>,
    pub(crate) lost: bool,
    pub(crate) closing: bool,
}

impl Revoked<'_> {
    /// The partitions being revoked.
    pub fn partitions(&self) -> &[TopicPartition] {
        self.partitions
    }

    /// The next offset after the last record of this partition handed to the
    /// application (what [`Revoked::commit`] would commit).
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.returned
            .get(&TopicPartition::new(topic, partition))
            .copied()
    }

    /// True when the coordinator already ended this member's generation
    /// (session expired, or the member was fenced): the partitions may
    /// already be someone else's, and commits will be refused.
    pub fn is_lost(&self) -> bool {
        self.lost
    }

    /// True when the revocation comes from `close()`.
    pub fn is_closing(&self) -> bool {
        self.closing
    }

    /// Commits the positions of every record of the revoked partitions
    /// handed to the application, and waits for the coordinator's answer.
    pub async fn commit(&self) -> Result<()> {
        let offsets: BTreeMap<TopicPartition, i64> = self
            .partitions
            .iter()
            .filter_map(|tp| self.returned.get(tp).map(|o| (tp.clone(), *o)))
            .collect();
        self.commit_offsets(offsets).await
    }

    /// Commits explicit offsets (the next offset to read, per partition).
    pub async fn commit_offsets(&self, offsets: BTreeMap<TopicPartition, i64>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.client.request_timeout();
        self.client.commit(offsets, deadline).await
    }
}

/// What [`RebalanceListener::on_assigned`] gets.
pub struct Assigned<'a> {
    pub(crate) partitions: &'a [TopicPartition],
    pub(crate) committed: &'a BTreeMap<TopicPartition, Option<i64>>,
    pub(crate) generation: i32,
    pub(crate) seeks: BTreeMap<TopicPartition, Offset>,
}

impl Assigned<'_> {
    /// The partitions now owned.
    pub fn partitions(&self) -> &[TopicPartition] {
        self.partitions
    }

    /// The group generation this assignment belongs to.
    pub fn generation(&self) -> i32 {
        self.generation
    }

    /// The group's committed offset of an assigned partition (`None`: none
    /// committed; reading starts per `auto_offset_reset`).
    pub fn committed(&self, topic: &str, partition: i32) -> Option<i64> {
        self.committed
            .get(&TopicPartition::new(topic, partition))
            .copied()
            .flatten()
    }

    /// Starts an assigned partition somewhere else than its committed offset
    /// (e.g. the offset saved in the application's own checkpoint). Nothing
    /// is committed for it until records from there are handed out.
    pub fn seek(&mut self, topic: &str, partition: i32, offset: Offset) -> Result<()> {
        let tp = TopicPartition::new(topic, partition);
        if !self.partitions.contains(&tp) {
            return Err(ClientError::NotAssigned {
                topic: topic.to_string(),
                partition,
            });
        }
        self.seeks.insert(tp, offset);
        Ok(())
    }
}

/// A rebalance, as [`mpsc::UnboundedSender<RebalanceEvent>`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RebalanceEvent {
    /// The member gave up these partitions.
    Revoked {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// See [`Revoked::is_lost`].
        lost: bool,
    },
    /// The member owns these partitions in `generation`.
    Assigned {
        /// The partitions.
        partitions: Vec<TopicPartition>,
        /// The group generation.
        generation: i32,
    },
}

/// Sends every rebalance as a [`RebalanceEvent`]; a closed receiver is ignored.
impl RebalanceListener for mpsc::UnboundedSender<RebalanceEvent> {
    async fn on_revoked(&mut self, revoked: &mut Revoked<'_>) {
        let _ = self.send(RebalanceEvent::Revoked {
            partitions: revoked.partitions().to_vec(),
            lost: revoked.is_lost(),
        });
    }

    async fn on_assigned(&mut self, assigned: &mut Assigned<'_>) {
        let _ = self.send(RebalanceEvent::Assigned {
            partitions: assigned.partitions().to_vec(),
            generation: assigned.generation(),
        });
    }
}

/// A boxed future borrowing for `'a`.
type BoxFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// [`RebalanceListener`] made object-safe, so the consumer can hold any.
pub(crate) trait DynListener: Send {
    fn on_revoked<'a, 'b>(&'a mut self, revoked: &'a mut Revoked<'b>) -> BoxFuture<'a>;
    fn on_assigned<'a, 'b>(&'a mut self, assigned: &'a mut Assigned<'b>) -> BoxFuture<'a>;
}

impl<L: RebalanceListener> DynListener for L {
    fn on_revoked<'a, 'b>(&'a mut self, revoked: &'a mut Revoked<'b>) -> BoxFuture<'a> {
        Box::pin(RebalanceListener::on_revoked(self, revoked))
    }

    fn on_assigned<'a, 'b>(&'a mut self, assigned: &'a mut Assigned<'b>) -> BoxFuture<'a> {
        Box::pin(RebalanceListener::on_assigned(self, assigned))
    }
}
