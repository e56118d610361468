//! Partition choice: Kafka's default partitioner, so that a key lands on the
//! same partition whether the Java client, librdkafka's `murmur2_random`, or
//! this client produced it.
//!
//! - Keyed records: `toPositive(murmur2(key)) % partitions`, with Kafka's
//!   exact murmur2 (seed `0x9747b28c`) and `toPositive = h & 0x7fffffff`.
//! - Unkeyed records: sticky partitioning (KIP-480). The accumulator keeps
//!   one "sticky" partition per topic and moves to another one when the
//!   sticky partition's batch is closed for sending, so unkeyed records form
//!   full batches instead of one small batch per partition.

/// Kafka's murmur2 (`org.apache.kafka.common.utils.Utils.murmur2`).
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    // Kafka computes `seed ^ length` on Java ints; lengths above 2^32 bytes
    // cannot occur in a record.
    let mut h = SEED ^ (data.len() as u32);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let mut k = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let tail = chunks.remainder();
    if tail.len() >= 3 {
        h ^= u32::from(tail[2]) << 16;
    }
    if tail.len() >= 2 {
        h ^= u32::from(tail[1]) << 8;
    }
    if !tail.is_empty() {
        h ^= u32::from(tail[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// Kafka's `Utils.toPositive`: clears the sign bit (not `abs`, which would
/// overflow on `i32::MIN` and differ from Java).
pub fn to_positive(hash: i32) -> i32 {
    hash & 0x7fff_ffff
}

/// The partition Kafka's default partitioner gives `key` among `partitions`.
pub fn partition_for_key(key: &[u8], partitions: i32) -> i32 {
    partition_for_hash(murmur2(key), partitions)
}

/// [`partition_for_key`] with the hash already computed.
pub(crate) fn partition_for_hash(hash: i32, partitions: i32) -> i32 {
    to_positive(hash) % partitions.max(1)
}

/// A tiny xorshift generator: sticky partition switches only need to be
/// spread out, not unpredictable.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// Seeded from the clock and a process-wide counter, so two producers
    /// created in the same instant still differ.
    pub(crate) fn new() -> Self {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let count = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self((nanos ^ count.wrapping_mul(0x9e37_79b9_7f4a_7c15)) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// The next sticky partition: a random one other than `previous` when
    /// there is a choice.
    pub(crate) fn next_sticky(&mut self, previous: Option<i32>, partitions: i32) -> i32 {
        let partitions = partitions.max(1);
        if partitions == 1 {
            return 0;
        }
        match previous {
            Some(prev) if (0..partitions).contains(&prev) => {
                let offset = (self.next() % (partitions as u64 - 1)) as i32 + 1;
                (prev + offset) % partitions
            }
            _ => (self.next() % partitions as u64) as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kafka's own vectors (`UtilsTest.testMurmur2`).
    #[test]
    fn murmur2_matches_kafka_test_vectors() {
        let cases: &[(&[u8], i32)] = &[
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (input, expected) in cases {
            assert_eq!(
                murmur2(input),
                *expected,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn to_positive_clears_sign_bit_like_java() {
        assert_eq!(to_positive(i32::MIN), 0);
        assert_eq!(to_positive(-1), i32::MAX);
        assert_eq!(to_positive(5), 5);
    }

    #[test]
    fn keyed_partition_is_stable_and_in_range() {
        for n in 1..20 {
            let p = partition_for_key(b"user-42", n);
            assert!((0..n).contains(&p));
            assert_eq!(p, partition_for_key(b"user-42", n));
        }
        // toPositive(-790332482) % 7 computed by hand: 1357151166 % 7 = 4.
        assert_eq!(partition_for_key(b"foobar", 7), 1_357_151_166 % 7);
    }

    #[test]
    fn sticky_switch_moves_to_another_partition() {
        let mut rng = Rng::new();
        for _ in 0..100 {
            let next = rng.next_sticky(Some(2), 4);
            assert!((0..4).contains(&next) && next != 2);
        }
        assert_eq!(rng.next_sticky(Some(0), 1), 0);
        assert!((0..3).contains(&rng.next_sticky(None, 3)));
    }
}
