//! Random values of every message, for the differential tests. A small
//! deterministic generator (SplitMix64) keeps failures reproducible from
//! the seed proptest reports.

use bytes::Bytes;
use uuid::Uuid;

/// A seeded source of random values.
pub struct Gen {
    state: u64,
    /// Array nesting so far; deeper arrays are kept shorter.
    pub depth: u32,
}

impl Gen {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed,
            depth: 0,
        }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A fair coin.
    pub fn coin(&mut self) -> bool {
        self.next_u64() & 1 == 1
    }

    /// A number below `n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// A type whose random values the tests can draw for a given version.
pub trait Sample {
    /// A random value valid in `version`.
    fn sample(g: &mut Gen, version: i16) -> Self;
}

macro_rules! sample_ints {
    ($($t:ty),*) => {$(
        impl Sample for $t {
            fn sample(g: &mut Gen, _: i16) -> Self {
                // Edges more often than uniform draws would give them.
                match g.below(4) {
                    0 => 0,
                    1 => <$t>::MAX,
                    2 => <$t>::MIN,
                    _ => g.next_u64() as $t,
                }
            }
        }
    )*};
}
sample_ints!(i8, i16, i32, i64, u16, u32);

impl Sample for bool {
    fn sample(g: &mut Gen, _: i16) -> Self {
        g.coin()
    }
}

impl Sample for f64 {
    fn sample(g: &mut Gen, _: i16) -> Self {
        (g.next_u64() % 1_000_000) as f64 / 8.0
    }
}

impl Sample for Uuid {
    fn sample(g: &mut Gen, _: i16) -> Self {
        if g.coin() {
            Uuid::nil()
        } else {
            Uuid::from_u64_pair(g.next_u64(), g.next_u64())
        }
    }
}

impl Sample for String {
    fn sample(g: &mut Gen, _: i16) -> Self {
        const ALPHABET: &[&str] = &["a", "Z", "0", "-", "_", ".", "é", "日", "🦀", " "];
        let len = g.below(12);
        (0..len)
            .map(|_| ALPHABET[g.below(ALPHABET.len() as u64) as usize])
            .collect()
    }
}

impl Sample for Bytes {
    fn sample(g: &mut Gen, _: i16) -> Self {
        let len = if g.below(8) == 0 { 1500 } else { g.below(40) };
        Bytes::from((0..len).map(|_| g.next_u64() as u8).collect::<Vec<u8>>())
    }
}

impl<T: Sample> Sample for Vec<T> {
    fn sample(g: &mut Gen, version: i16) -> Self {
        let max = if g.depth > 2 { 2 } else { 4 };
        let len = g.below(max);
        g.depth += 1;
        let items = (0..len).map(|_| T::sample(g, version)).collect();
        g.depth -= 1;
        items
    }
}
