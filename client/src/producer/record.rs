//! What a producer is given and what it hands back: [`ProducerRecord`],
//! [`RecordMetadata`], and the two per-producer choices that shape the wire
//! format, [`Acks`] and [`CompressionCodec`].

use std::sync::Arc;

use bytes::Bytes;
use sediment_protocol::records::Compression;

/// One record to produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// Destination topic (shared: a loop producing to one topic clones a
    /// pointer, not the name).
    pub topic: Arc<str>,
    /// Explicit partition; `None` lets the partitioner choose (murmur2 of the
    /// key, or sticky partitioning for unkeyed records).
    pub partition: Option<i32>,
    /// Record key; decides the partition when `partition` is `None`.
    pub key: Option<Bytes>,
    /// Record value (`None` is a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Record headers, in order (duplicate names are kept, as Kafka allows).
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Create time in ms since the epoch; `None` = now, at enqueue.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and nothing else set.
    pub fn new(topic: impl Into<Arc<str>>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// A keyed record: the key picks the partition.
    pub fn keyed(
        topic: impl Into<Arc<str>>,
        key: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Self {
        Self::new(topic, value).with_key(key)
    }

    /// Sets the key.
    pub fn with_key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the value.
    pub fn with_value(mut self, value: Option<Bytes>) -> Self {
        self.value = value;
        self
    }

    /// Pins the partition.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push((name.into(), Some(value.into())));
        self
    }

    /// Sets the create timestamp (ms since the epoch).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Upper bound of the record's encoded size inside a batch: the varints
    /// at their widest plus the payload. Used for `batch_size` and
    /// `buffer_memory` accounting, so it must never under-count.
    pub(crate) fn estimated_size(&self) -> usize {
        // length(5) attributes(1) timestamp delta(10) offset delta(5)
        // key length(5) value length(5) header count(5)
        const FIXED: usize = 36;
        let key = self.key.as_ref().map_or(0, Bytes::len);
        let value = self.value.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(name, value)| 10 + name.len() + value.as_ref().map_or(0, Bytes::len))
            .sum();
        FIXED + key + value + headers
    }
}

/// Where a record was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic (shared with the batch: no copy per record).
    pub topic: Arc<str>,
    /// The partition it went to.
    pub partition: i32,
    /// Its offset; `-1` with `acks = None`, where the broker does not answer.
    pub offset: i64,
    /// The record's create time, or the broker's append time when the
    /// topic uses `LogAppendTime`.
    pub timestamp: i64,
}

/// How many acknowledgements a produce waits for (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: fire and forget; no response, offsets unknown (-1).
    None,
    /// `acks=1`: the leader has appended the batch.
    Leader,
    /// `acks=all` (-1): all in-sync replicas have it; on Sediment, it is
    /// fsynced under the default flush policy.
    #[default]
    All,
}

impl Acks {
    /// The wire value.
    pub(crate) fn wire(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

/// Compression of produced record batches (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CompressionCodec {
    /// Uncompressed.
    #[default]
    None,
    /// gzip (deflate).
    Gzip,
    /// Snappy (Kafka's xerial framing).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl CompressionCodec {
    /// The codec of the record batch encoder.
    pub(crate) fn wire(self) -> Compression {
        match self {
            CompressionCodec::None => Compression::None,
            CompressionCodec::Gzip => Compression::Gzip,
            CompressionCodec::Snappy => Compression::Snappy,
            CompressionCodec::Lz4 => Compression::Lz4,
            CompressionCodec::Zstd => Compression::Zstd,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_fields() {
        let r = ProducerRecord::keyed("t", "k", "v")
            .with_partition(3)
            .with_header("h", "x")
            .with_timestamp(9);
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.partition, Some(3));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.timestamp, Some(9));
        assert_eq!(r.estimated_size(), 36 + 1 + 1 + 10 + 1 + 1);
    }
}
