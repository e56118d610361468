//! The "wagg-1" window contract (DESIGN §6) on the test side: a seeded,
//! out-of-order event generator, a brute-force reference written from §6
//! (not from the library), and the parsing of a job's output windows.
//! Shared by the window tests against Sediment and against Apache Kafka.

use std::collections::BTreeMap;

use serde_json::Value;

// ---------------------------------------------------------------- generator

/// xorshift64: small, seeded, reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[derive(Debug, Clone)]
pub struct Ev {
    pub key: String,
    pub ts: i64,
    pub value: i64,
}

impl Ev {
    pub fn json(&self) -> String {
        format!(
            r#"{{"key": "{}", "ts": {}, "value": {}}}"#,
            self.key, self.ts, self.value
        )
    }
}

/// `n` events over 20 keys (skewed), timestamps mostly increasing with
/// jitter, occasional jumps (so sessions close), ~6% far later than the grace.
pub fn generate(seed: u64, n: usize) -> Vec<Ev> {
    let mut rng = Rng(seed);
    let mut base: i64 = 1_000;
    (0..n)
        .map(|_| {
            base += 5 + rng.below(10) as i64;
            if rng.below(60) == 0 {
                base += 800 + rng.below(2_500) as i64;
            }
            let ts = match rng.below(100) {
                0..=5 => (base - 250 - rng.below(1_500) as i64).max(0),
                6..=25 => (base - rng.below(190) as i64).max(0),
                _ => base + rng.below(120) as i64,
            };
            let k = rng.below(20) * rng.below(20) / 19;
            Ev {
                key: format!("k{k:02}"),
                ts,
                value: rng.below(201) as i64 - 100,
            }
        })
        .collect()
}

/// Partition of a key (FNV-1a), so each partition's order is produce order.
pub fn partition_of(key: &str, partitions: usize) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % partitions as u64) as usize
}

pub fn split(events: &[Ev], partitions: usize) -> Vec<Vec<Ev>> {
    let mut out = vec![Vec::new(); partitions];
    for e in events {
        out[partition_of(&e.key, partitions)].push(e.clone());
    }
    out
}

// ---------------------------------------------------------------- reference

#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Tumbling(i64),
    Hopping(i64, i64),
    Session(i64),
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Tumbling(_) => "tumbling",
            Kind::Hopping(..) => "hopping",
            Kind::Session(_) => "session",
        }
    }
    pub fn flags(self) -> Vec<String> {
        match self {
            Kind::Tumbling(s) => vec!["--tumbling".into(), s.to_string()],
            Kind::Hopping(s, a) => vec!["--hopping".into(), format!("{s}:{a}")],
            Kind::Session(g) => vec!["--session".into(), g.to_string()],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Agg {
    pub count: u64,
    pub sum: i64,
    pub min: i64,
    pub max: i64,
}

impl Agg {
    pub fn one(v: i64) -> Self {
        Agg {
            count: 1,
            sum: v,
            min: v,
            max: v,
        }
    }
    pub fn add(&mut self, v: i64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
    }
    pub fn merge(&mut self, o: Agg) {
        self.count += o.count;
        self.sum += o.sum;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
    }
}

/// (kind, key, start, end) → aggregates.
pub type WinId = (String, String, i64, i64);

pub struct Expected {
    pub windows: BTreeMap<WinId, Agg>,
    pub late: usize,
}

/// Brute force from DESIGN §6, one input partition at a time.
pub fn reference(kind: Kind, grace: i64, partitions: &[Vec<Ev>]) -> Expected {
    let mut windows = BTreeMap::new();
    let mut late = 0;
    for events in partitions {
        let mut max_ts: Option<i64> = None;
        let mut emit = |key: &str, start: i64, end: i64, agg: Agg| {
            let id = (kind.name().to_string(), key.to_string(), start, end);
            assert!(windows.insert(id, agg).is_none(), "reference emitted twice");
        };
        match kind {
            Kind::Tumbling(_) | Kind::Hopping(..) => {
                let (size, adv) = match kind {
                    Kind::Tumbling(s) => (s, s),
                    Kind::Hopping(s, a) => (s, a),
                    Kind::Session(_) => unreachable!(),
                };
                let mut open: BTreeMap<(String, i64), Agg> = BTreeMap::new();
                for e in events {
                    max_ts = Some(max_ts.map_or(e.ts, |m| m.max(e.ts)));
                    let wm = max_ts.unwrap() - grace;
                    let mut counted = false;
                    // every [k*adv, k*adv+size) containing ts
                    let mut k = e.ts.div_euclid(adv);
                    while k * adv + size > e.ts {
                        let (start, end) = (k * adv, k * adv + size);
                        if end > wm {
                            counted = true;
                            open.entry((e.key.clone(), start))
                                .and_modify(|a| a.add(e.value))
                                .or_insert(Agg::one(e.value));
                        }
                        k -= 1;
                    }
                    if !counted {
                        late += 1;
                    }
                    let closing: Vec<(String, i64)> = open
                        .keys()
                        .filter(|(_, start)| start + size <= wm)
                        .cloned()
                        .collect();
                    for id in closing {
                        let agg = open.remove(&id).unwrap();
                        emit(&id.0, id.1, id.1 + size, agg);
                    }
                }
            }
            Kind::Session(gap) => {
                // key → open sessions (first, last, agg)
                let mut open: BTreeMap<String, Vec<(i64, i64, Agg)>> = BTreeMap::new();
                for e in events {
                    max_ts = Some(max_ts.map_or(e.ts, |m| m.max(e.ts)));
                    let wm = max_ts.unwrap() - grace;
                    if e.ts + gap <= wm {
                        late += 1;
                    } else {
                        let sessions = open.entry(e.key.clone()).or_default();
                        let (mut first, mut last, mut agg) = (e.ts, e.ts, Agg::one(e.value));
                        sessions.retain(|&(f, l, a)| {
                            if f - gap <= e.ts && e.ts <= l + gap {
                                first = first.min(f);
                                last = last.max(l);
                                agg.merge(a);
                                false
                            } else {
                                true
                            }
                        });
                        sessions.push((first, last, agg));
                    }
                    for (key, sessions) in open.iter_mut() {
                        sessions.retain(|&(f, l, a)| {
                            if l + 2 * gap <= wm {
                                emit(key, f, l + gap, a);
                                false
                            } else {
                                true
                            }
                        });
                    }
                }
            }
        }
    }
    Expected { windows, late }
}

pub fn int(w: &Value, field: &str) -> i64 {
    w[field]
        .as_i64()
        .unwrap_or_else(|| panic!("`{field}` is not an exact integer in {w}"))
}

/// Parses windows; panics if a duplicate (same kind/key/start/end) carries
/// different aggregates than its first copy. Returns (distinct windows, raw count).
pub fn dedup(raw: &[Value]) -> BTreeMap<WinId, Agg> {
    let mut out: BTreeMap<WinId, Agg> = BTreeMap::new();
    for w in raw {
        let id = (
            w["kind"].as_str().unwrap().to_string(),
            w["key"].as_str().unwrap().to_string(),
            int(w, "start"),
            int(w, "end"),
        );
        let agg = Agg {
            count: int(w, "count") as u64,
            sum: int(w, "sum"),
            min: int(w, "min"),
            max: int(w, "max"),
        };
        if let Some(first) = out.get(&id) {
            assert_eq!(
                *first, agg,
                "window {id:?} emitted again with different aggregates"
            );
        } else {
            out.insert(id, agg);
        }
    }
    out
}
