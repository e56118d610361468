//! `PartitionWindows` against a brute-force reference of DESIGN §6, for random
//! small event sequences and every window kind.
//!
//! The reference shares no code with the implementation: it enumerates window
//! starts instead of dividing, records which event was counted where, builds
//! sessions by sorting each key's accepted events and splitting at gaps, and
//! decides closing from the final watermark. Because a window can only be closed
//! after its last counted event, and never changes after it closes, it also
//! predicts the exact event at which each window is emitted.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;

/// A window as the reference sees it: `(key, start, end)` → counted values and the
/// index of the last event counted in it.
type Counted = BTreeMap<(String, i64, i64), (Vec<Number>, usize)>;

/// One reference emission, comparable: `(event index, kind, key, start, end,
/// count, sum, min, max)` with min/max compared by value (ties between `Int(1)`
/// and `Float(1.0)` may resolve either way depending on merge order).
type Row = (
    usize,
    &'static str,
    String,
    i64,
    i64,
    u64,
    String,
    String,
    String,
);

fn row(at: usize, r: &WindowResult) -> Row {
    (
        at,
        r.kind,
        r.key.clone(),
        r.start,
        r.end,
        r.count,
        serde_json::to_string(&r.sum).unwrap(),
        r.min.as_f64().to_string(),
        r.max.as_f64().to_string(),
    )
}

/// Watermark after each event: `max(ts so far) - grace`.
fn watermarks(events: &[Event], grace: i64) -> Vec<i64> {
    let mut max = i64::MIN;
    events
        .iter()
        .map(|e| {
            max = max.max(e.ts);
            max - grace
        })
        .collect()
}

/// The reference: every emission (with the index of the event emitting it) and
/// the late flag of every event.
fn reference(window: Window, grace: i64, events: &[Event]) -> (Vec<Row>, Vec<bool>) {
    let wms = watermarks(events, grace);
    let mut counted: Counted = BTreeMap::new();
    let mut late = vec![true; events.len()];
    // Close threshold per window: end for fixed windows, last + 2G for sessions.
    let mut threshold: BTreeMap<(String, i64, i64), i64> = BTreeMap::new();
    match window {
        Window::Tumbling { size } | Window::Hopping { size, .. } => {
            let advance = match window {
                Window::Hopping { advance, .. } => advance,
                _ => size,
            };
            for (i, e) in events.iter().enumerate() {
                for k in -2000..=2000_i64 {
                    let (start, end) = (k * advance, k * advance + size);
                    if start <= e.ts && e.ts < end && end > wms[i] {
                        let entry = counted.entry((e.key.clone(), start, end)).or_default();
                        entry.0.push(e.value);
                        entry.1 = i;
                        threshold.insert((e.key.clone(), start, end), end);
                        late[i] = false;
                    }
                }
            }
        }
        Window::Session { gap } => {
            let mut accepted: BTreeMap<&str, Vec<(i64, usize)>> = BTreeMap::new();
            for (i, e) in events.iter().enumerate() {
                if e.ts + gap > wms[i] {
                    late[i] = false;
                    accepted.entry(&e.key).or_default().push((e.ts, i));
                }
            }
            for (key, mut list) in accepted {
                list.sort();
                let mut groups: Vec<Vec<(i64, usize)>> = Vec::new();
                for item in list {
                    match groups.last_mut() {
                        Some(g) if item.0 - g[g.len() - 1].0 <= gap => g.push(item),
                        _ => groups.push(vec![item]),
                    }
                }
                for g in groups {
                    let (first, last) = (g[0].0, g[g.len() - 1].0);
                    let values = g.iter().map(|&(_, i)| events[i].value).collect();
                    let newest = g.iter().map(|&(_, i)| i).max().unwrap();
                    counted.insert((key.to_owned(), first, last + gap), (values, newest));
                    threshold.insert((key.to_owned(), first, last + gap), last + 2 * gap);
                }
            }
        }
    }
    let mut rows = Vec::new();
    for ((key, start, end), (values, newest)) in counted {
        let t = threshold[&(key.clone(), start, end)];
        // Emitted by the first event, from the last one counted on, whose watermark reaches t.
        let Some(at) = (newest..events.len()).find(|&i| wms[i] >= t) else {
            continue;
        };
        let mut sum = Number::Int(0);
        let (mut min, mut max) = (values[0].as_f64(), values[0].as_f64());
        let any_float = values.iter().any(|v| matches!(v, Number::Float(_)));
        for v in &values {
            sum = sum + *v;
            min = min.min(v.as_f64());
            max = max.max(v.as_f64());
        }
        if any_float {
            sum = Number::Float(sum.as_f64());
        }
        rows.push((
            at,
            window.kind(),
            key,
            start,
            end,
            values.len() as u64,
            serde_json::to_string(&sum).unwrap(),
            min.to_string(),
            max.to_string(),
        ));
    }
    rows.sort();
    (rows, late)
}

/// The implementation's emissions (also checking the order within each event)
/// and late flags.
fn actual(state: &mut PartitionWindows, events: &[Event], offset: usize) -> (Vec<Row>, Vec<bool>) {
    let mut rows = Vec::new();
    let mut late = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let p = state.process_ref(e);
        let order: Vec<_> = p
            .emitted
            .iter()
            .map(|r| (r.end, r.start, r.key.clone()))
            .collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(
            order, sorted,
            "emissions of one event must be sorted by end, start, key"
        );
        rows.extend(p.emitted.iter().map(|r| row(offset + i, r)));
        late.push(p.late);
    }
    (rows, late)
}

fn arb_window() -> impl Strategy<Value = Window> {
    prop_oneof![
        (1..15_i64).prop_map(|s| Window::tumbling(s).unwrap()),
        (1..15_i64)
            .prop_flat_map(|s| (Just(s), 1..=s))
            .prop_map(|(s, a)| Window::hopping(s, a).unwrap()),
        (1..10_i64).prop_map(|g| Window::session(g).unwrap()),
    ]
}

fn arb_events() -> impl Strategy<Value = Vec<Event>> {
    let value = prop_oneof![
        4 => (-20..20_i64).prop_map(Number::Int),
        // Halves are exact in f64, so sums do not depend on the order of addition.
        1 => (-20..20_i64).prop_map(|h| Number::Float(h as f64 / 2.0)),
    ];
    prop::collection::vec((0..3_usize, -30..60_i64, value), 0..60).prop_map(|v| {
        v.into_iter()
            .map(|(k, ts, value)| Event {
                key: ["a", "b", "c"][k].to_owned(),
                ts,
                value,
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn given_random_events_when_processed_then_emissions_and_late_flags_match_reference(
        window in arb_window(),
        grace in 0..12_i64,
        events in arb_events(),
    ) {
        let mut state = PartitionWindows::new(window, grace);
        let (rows, late) = actual(&mut state, &events, 0);
        let (expected_rows, expected_late) = reference(window, grace, &events);
        let mut sorted_rows = rows.clone();
        sorted_rows.sort();
        prop_assert_eq!(sorted_rows, expected_rows);
        prop_assert_eq!(late, expected_late);
        // Open = everything counted somewhere and not yet emitted.
        let open_reference = {
            let mut total = 0;
            let (all, _) = reference(window, grace, &[events.clone(), vec![Event::new("zz", i64::MAX / 4, 0)]].concat());
            // Every window of the original events closes at the huge event; the
            // huge event's own window stays open.
            total += all.iter().filter(|r| r.0 == events.len()).count();
            total
        };
        prop_assert_eq!(state.open_windows(), open_reference);
    }

    #[test]
    fn given_random_split_when_snapshot_restored_then_same_as_never_stopping(
        window in arb_window(),
        grace in 0..12_i64,
        events in arb_events(),
        split in any::<prop::sample::Index>(),
    ) {
        let split = split.index(events.len() + 1);
        let mut straight = PartitionWindows::new(window, grace);
        let expected = actual(&mut straight, &events, 0);

        let mut first = PartitionWindows::new(window, grace);
        let (mut rows, mut late) = actual(&mut first, &events[..split], 0);
        let json = serde_json::to_vec(&first.snapshot()).unwrap();
        let mut second = PartitionWindows::restore(window, grace, serde_json::from_slice(&json).unwrap()).unwrap();
        let (rows2, late2) = actual(&mut second, &events[split..], split);
        rows.extend(rows2);
        late.extend(late2);
        prop_assert_eq!((rows, late), expected);
        prop_assert_eq!(second.snapshot(), straight.snapshot());
    }
}
