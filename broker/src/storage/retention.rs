//! Which sealed segments retention deletes.
//!
//! Retention only ever deletes whole sealed segments, oldest first, and never
//! the active one, so the log stays a contiguous run of offsets and the log
//! start offset simply becomes the base offset of the first segment kept.
//!
//! By size (Kafka's rule): the oldest segments go while the log would still be
//! at least `retention_bytes` without them.
//!
//! By time (Sediment's rule, unlike Kafka's): a sealed segment goes once its
//! **last append, by the broker's clock**, is more than `retention_ms` ago.
//! Record timestamps play no part. Kafka ages a segment by its largest record
//! timestamp, which a client chooses: one record stamped in the year 3000
//! pins its segment, and every later one, forever; a record stamped -5 or
//! 30 days ago makes data written a moment ago eligible at once. The broker's
//! clock at append is the one time no client controls. (Bounding client
//! timestamps with `message.timestamp.*.max.ms` limits what consumers see; it
//! does not make them a safe basis for deleting data.)
//!
//! The last-append time is [`Segment::last_append_ms`]: kept in memory and
//! persisted as the `.log` file's modification time. That needs no new file
//! and no format change: the file system moves it on every append (`pwrite`),
//! sealing stamps it exactly (so trimming the file does not move it), and a
//! restart reads it back. What can disturb it errs on the side of keeping
//! data: a recovery truncation or a copy without preserved times makes a
//! segment look newer, never older.
//!
//! Invariants: `segments_to_delete` never counts the active segment, counts
//! from the oldest, and stops at the first segment retention keeps.
//!
//! [`Segment::last_append_ms`]: crate::storage::segment::Segment::last_append_ms

use std::time::Duration;

/// What retention needs to know of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    /// Bytes in the segment.
    pub size: u64,
    /// The broker's clock at the segment's last append, ms since the epoch
    /// (never a record timestamp).
    pub last_append_ms: i64,
}

/// How many segments, counted from the oldest, retention deletes. `segments`
/// are in offset order and the last one is the active segment.
pub fn segments_to_delete(
    segments: &[SegmentStats],
    retention_ms: Option<Duration>,
    retention_bytes: Option<u64>,
    now_ms: i64,
) -> usize {
    let sealed = segments.len().saturating_sub(1);
    let by_time = retention_ms.map_or(0, |keep| {
        let cutoff = now_ms.saturating_sub(i64::try_from(keep.as_millis()).unwrap_or(i64::MAX));
        segments[..sealed]
            .iter()
            .take_while(|segment| segment.last_append_ms < cutoff)
            .count()
    });
    let by_size = retention_bytes.map_or(0, |limit| {
        let mut excess = segments
            .iter()
            .map(|s| s.size)
            .sum::<u64>()
            .saturating_sub(limit);
        segments[..sealed]
            .iter()
            .take_while(|segment| {
                let fits = segment.size <= excess;
                if fits {
                    excess -= segment.size;
                }
                fits
            })
            .count()
    });
    by_time.max(by_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(size: u64, last_append_ms: i64) -> SegmentStats {
        SegmentStats {
            size,
            last_append_ms,
        }
    }

    #[test]
    fn given_sealed_segments_last_appended_long_ago_when_retention_ms_then_deleted_oldest_first() {
        let segments = [
            stats(10, 100),
            stats(10, 500),
            stats(10, 200),
            stats(10, 50),
        ];
        // cutoff 1000 - 600 = 400: first is older, second is not, so stop there.
        assert_eq!(
            segments_to_delete(&segments, Some(Duration::from_millis(600)), None, 1000),
            1
        );
    }

    #[test]
    fn given_active_segment_then_never_deleted() {
        let segments = [stats(10, 0), stats(10, 0)];
        assert_eq!(
            segments_to_delete(&segments, Some(Duration::ZERO), Some(0), 1_000_000),
            1
        );
        assert_eq!(
            segments_to_delete(&[stats(10, 0)], Some(Duration::ZERO), Some(0), 1_000_000),
            0
        );
    }

    #[test]
    fn given_size_limit_then_deletes_while_log_stays_at_least_limit() {
        let segments = [stats(100, 0), stats(100, 0), stats(100, 0), stats(50, 0)];
        // 350 total, limit 200: deleting one leaves 250, two leaves 150 < 200.
        assert_eq!(segments_to_delete(&segments, None, Some(200), 0), 1);
        assert_eq!(segments_to_delete(&segments, None, Some(150), 0), 2);
        assert_eq!(segments_to_delete(&segments, None, Some(1000), 0), 0);
    }

    #[test]
    fn given_no_limits_then_nothing_deleted() {
        let segments = [stats(100, 0), stats(100, 0)];
        assert_eq!(segments_to_delete(&segments, None, None, i64::MAX), 0);
    }
}
