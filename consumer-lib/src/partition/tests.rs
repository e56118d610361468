//! Edge cases of DESIGN §6 per window kind: events exactly at a window end, a
//! watermark exactly equal to a window end, hopping with an advance that does not
//! divide the size, sessions bridged by a late-arriving middle event, duplicate
//! timestamps, negative values and times, grace 0, and checkpoint/restore.

use super::*;

/// `(key, ts, value)` shorthand.
fn ev(key: &str, ts: i64, value: i64) -> Event {
    Event::new(key, ts, value)
}

/// `(start, end, count, sum)` of each emission, in emission order.
fn summary(results: &[WindowResult]) -> Vec<(&str, i64, i64, u64, Number)> {
    results
        .iter()
        .map(|r| (r.key.as_str(), r.start, r.end, r.count, r.sum))
        .collect()
}

/// Feeds `events` and returns every emission (in order) and every late flag.
fn run(state: &mut PartitionWindows, events: &[Event]) -> (Vec<WindowResult>, Vec<bool>) {
    let mut emitted = Vec::new();
    let mut late = Vec::new();
    for e in events {
        let p = state.process_ref(e);
        emitted.extend(p.emitted);
        late.push(p.late);
    }
    (emitted, late)
}

fn tumbling(size: i64) -> Window {
    Window::tumbling(size).unwrap()
}

// ---- watermark ----

#[test]
fn given_no_event_when_asked_then_watermark_is_minus_infinity() {
    let state = PartitionWindows::new(tumbling(10), 5);
    assert_eq!(state.watermark(), None);
    assert_eq!(state.open_windows(), 0);
}

#[test]
fn given_out_of_order_events_when_processed_then_watermark_includes_current_event_and_never_decreases(
) {
    let mut state = PartitionWindows::new(tumbling(10), 5);
    state.process(ev("a", 20, 1));
    assert_eq!(state.watermark(), Some(15));
    state.process(ev("a", 3, 1));
    assert_eq!(state.watermark(), Some(15));
    state.process(ev("a", 30, 1));
    assert_eq!(state.watermark(), Some(25));
}

// ---- tumbling ----

#[test]
fn given_event_exactly_at_window_end_when_processed_then_counts_in_next_window_only() {
    let mut state = PartitionWindows::new(tumbling(10), 100);
    let (emitted, late) = run(&mut state, &[ev("a", 0, 1), ev("a", 10, 2)]);
    assert!(emitted.is_empty());
    assert_eq!(late, [false, false]);
    assert_eq!(state.open_windows(), 2);
    // Push the watermark past both windows.
    let (emitted, _) = run(&mut state, &[ev("b", 200, 0)]);
    assert_eq!(
        summary(&emitted),
        [
            ("a", 0, 10, 1, Number::Int(1)),
            ("a", 10, 20, 1, Number::Int(2))
        ]
    );
}

#[test]
fn given_grace_zero_when_watermark_reaches_window_end_exactly_then_window_closes_on_that_event() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    assert!(state.process(ev("a", 9, 4)).emitted.is_empty());
    // wm = 10 = end of [0, 10): closed by this very event, which itself opens [10, 20).
    let p = state.process(ev("a", 10, 5));
    assert!(!p.late);
    assert_eq!(summary(&p.emitted), [("a", 0, 10, 1, Number::Int(4))]);
    assert_eq!(state.open_windows(), 1);
    // An event for the closed window is late and does not reopen it.
    let p = state.process(ev("a", 5, 7));
    assert!(p.late);
    assert!(p.emitted.is_empty());
    assert_eq!(state.open_windows(), 1);
}

#[test]
fn given_watermark_exactly_at_window_end_when_event_for_that_window_arrives_then_it_is_late() {
    let mut state = PartitionWindows::new(tumbling(10), 5);
    state.process(ev("a", 3, 1));
    // wm = 14 - 5 = 9 < 10: [0, 10) still open and accepts.
    let p = state.process(ev("a", 14, 1));
    assert!(p.emitted.is_empty());
    assert!(!state.process(ev("a", 9, 1)).late);
    // wm = 15 - 5 = 10 = end: closes with count 2 ...
    let p = state.process(ev("b", 15, 1));
    assert_eq!(summary(&p.emitted), [("a", 0, 10, 2, Number::Int(2))]);
    // ... and the window no longer accepts.
    assert!(state.process(ev("a", 9, 1)).late);
}

#[test]
fn given_duplicate_timestamps_when_processed_then_each_event_counts() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    let (_, late) = run(&mut state, &[ev("a", 5, 2), ev("a", 5, 2), ev("a", 5, 3)]);
    assert_eq!(late, [false, false, false]);
    let emitted = state.process(ev("z", 10, 0)).emitted;
    assert_eq!(emitted.len(), 1);
    assert_eq!((emitted[0].count, emitted[0].sum), (3, Number::Int(7)));
}

#[test]
fn given_negative_values_and_timestamps_when_processed_then_floor_aligned_and_numeric() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    run(
        &mut state,
        &[ev("a", -10, -3), ev("a", -1, -7), ev("a", -5, 2)],
    );
    let emitted = state.process(ev("z", 0, 0)).emitted;
    assert_eq!(emitted.len(), 1);
    let r = &emitted[0];
    assert_eq!((r.start, r.end, r.count), (-10, 0, 3));
    assert_eq!(
        (r.sum, r.min, r.max),
        (Number::Int(-8), Number::Int(-7), Number::Int(2))
    );
    assert_eq!(
        serde_json::to_string(r).unwrap(),
        r#"{"kind":"tumbling","key":"a","start":-10,"end":0,"count":3,"sum":-8,"min":-7,"max":2}"#
    );
}

#[test]
fn given_float_value_when_aggregated_then_sum_becomes_float() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    state.process(ev("a", 1, 1));
    state.process(Event::new("a", 2, 0.5));
    let r = &state.process(ev("a", 10, 0)).emitted[0];
    assert_eq!(
        (r.sum, r.min, r.max),
        (Number::Float(1.5), Number::Float(0.5), Number::Int(1))
    );
    assert_eq!(r.aggregates().avg(), 0.75);
}

#[test]
fn given_several_keys_closing_together_when_emitted_then_ordered_by_end_start_key() {
    let mut state = PartitionWindows::new(tumbling(10), 100);
    run(
        &mut state,
        &[
            ev("c", 15, 1),
            ev("b", 5, 1),
            ev("a", 15, 1),
            ev("c", 5, 1),
            ev("a", 5, 1),
        ],
    );
    let emitted = state.process(ev("x", 200, 0)).emitted;
    let order: Vec<(i64, &str)> = emitted.iter().map(|r| (r.start, r.key.as_str())).collect();
    assert_eq!(order, [(0, "a"), (0, "b"), (0, "c"), (10, "a"), (10, "c")]);
}

#[test]
fn given_windows_still_open_when_input_stops_then_nothing_is_emitted() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    let (emitted, _) = run(&mut state, &[ev("a", 1, 1), ev("b", 2, 1), ev("a", 9, 1)]);
    assert!(emitted.is_empty());
    assert_eq!(state.open_windows(), 2);
    assert_eq!(state.open_keys(), 2);
}

#[test]
fn given_quiet_partition_when_watermark_advanced_then_due_windows_close_once_and_it_never_goes_back(
) {
    let mut state = PartitionWindows::new(tumbling(10), 2);
    run(&mut state, &[ev("a", 1, 1), ev("b", 12, 1)]);
    assert_eq!(state.watermark(), Some(10));
    // Below the current watermark: nothing moves.
    assert!(state.advance_watermark(5).is_empty());
    assert_eq!(state.watermark(), Some(10));
    let emitted = state.advance_watermark(20);
    assert_eq!(emitted.len(), 1);
    assert_eq!((emitted[0].key.as_str(), emitted[0].start), ("b", 10));
    assert!(state.advance_watermark(20).is_empty());
    assert_eq!(state.open_windows(), 0);
    // An event for a closed window is late afterwards.
    assert!(state.process(ev("b", 15, 1)).late);
}

#[test]
fn given_open_session_when_watermark_advanced_past_last_plus_two_gaps_then_emitted() {
    let mut state = PartitionWindows::new(Window::session(5).unwrap(), 0);
    run(&mut state, &[ev("a", 100, 1), ev("a", 103, 2)]);
    assert!(state.advance_watermark(112).is_empty());
    let emitted = state.advance_watermark(113);
    assert_eq!(emitted.len(), 1);
    assert_eq!((emitted[0].start, emitted[0].end), (100, 108));
}

#[test]
fn given_all_windows_of_a_key_closed_when_inspected_then_key_holds_no_state() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    run(&mut state, &[ev("a", 1, 1), ev("b", 2, 1)]);
    state.process(ev("c", 25, 1));
    assert_eq!(state.open_keys(), 1);
    assert_eq!(state.open_windows(), 1);
    assert!(state.snapshot().windows.iter().all(|w| w.key == "c"));
}

// ---- hopping ----

#[test]
fn given_advance_not_dividing_size_when_processed_then_counted_in_every_covering_window() {
    let mut state = PartitionWindows::new(Window::hopping(10, 4).unwrap(), 100);
    // Covering windows of 9: starts 0, 4, 8; of 12: starts 4, 8, 12.
    run(&mut state, &[ev("a", 9, 1), ev("a", 12, 10)]);
    assert_eq!(state.open_windows(), 4);
    let emitted = state.process(ev("z", 500, 0)).emitted;
    let a: Vec<_> = summary(&emitted)
        .into_iter()
        .filter(|r| r.0 == "a")
        .collect();
    assert_eq!(
        a,
        [
            ("a", 0, 10, 1, Number::Int(1)),
            ("a", 4, 14, 2, Number::Int(11)),
            ("a", 8, 18, 2, Number::Int(11)),
            ("a", 12, 22, 1, Number::Int(10)),
        ]
    );
    assert!(emitted.iter().all(|r| r.kind == "hopping"));
}

#[test]
fn given_event_late_for_some_hopping_windows_when_processed_then_counted_in_the_others() {
    let mut state = PartitionWindows::new(Window::hopping(10, 4).unwrap(), 0);
    // wm = 14: [0,10) is gone, [4,14) closes exactly at its end.
    let p = state.process(ev("a", 14, 1));
    assert!(p.emitted.is_empty());
    // ts 9 is in [0,10) (late), [4,14) (late: 14 <= 14) and [8,18) (open).
    let p = state.process(ev("a", 9, 5));
    assert!(!p.late);
    let emitted = state.process(ev("z", 100, 0)).emitted;
    let a: Vec<_> = summary(&emitted)
        .into_iter()
        .filter(|r| r.0 == "a")
        .collect();
    assert_eq!(
        a,
        [
            ("a", 8, 18, 2, Number::Int(6)),
            ("a", 12, 22, 1, Number::Int(1))
        ]
    );
}

#[test]
fn given_event_late_for_every_hopping_window_when_processed_then_flagged_late_and_no_state() {
    let mut state = PartitionWindows::new(Window::hopping(10, 4).unwrap(), 0);
    state.process(ev("a", 100, 1));
    let open = state.open_windows();
    let p = state.process(ev("b", 50, 1));
    assert!(p.late);
    assert_eq!(state.open_windows(), open);
    assert_eq!(state.open_keys(), 1);
}

// ---- session ----

fn session(gap: i64) -> Window {
    Window::session(gap).unwrap()
}

#[test]
fn given_two_sessions_when_late_middle_event_arrives_then_bridged_into_one() {
    let mut state = PartitionWindows::new(session(10), 5);
    // 18 - 0 > 10: two sessions; wm = 13.
    run(&mut state, &[ev("a", 0, 1), ev("a", 18, 2)]);
    assert_eq!(state.open_windows(), 2);
    // 9 arrives late but within grace (9 + 10 > 13), and is within the gap of both
    // (0 - 10 <= 9 <= 0 + 10 and 18 - 10 <= 9 <= 18 + 10): one session.
    let p = state.process(ev("a", 9, 3));
    assert!(!p.late);
    assert!(p.emitted.is_empty());
    assert_eq!(state.open_windows(), 1);
    let emitted = state.process(ev("z", 100, 0)).emitted;
    assert_eq!(summary(&emitted)[0], ("a", 0, 28, 3, Number::Int(6)));
    assert_eq!(emitted[0].kind, "session");
}

#[test]
fn given_three_sessions_when_events_bridge_them_then_merged_in_order_and_counted_once() {
    let mut state = PartitionWindows::new(session(5), 100);
    run(
        &mut state,
        &[ev("a", 0, 1), ev("a", 10, 1), ev("a", 20, 1), ev("b", 5, 1)],
    );
    assert_eq!(state.open_windows(), 4);
    // 15 bridges [10] and [20] (both exactly one gap away) ...
    state.process(ev("a", 15, 1));
    assert_eq!(state.open_windows(), 3);
    // ... then 5 bridges [0] and [10..20]; key b is untouched.
    state.process(ev("a", 5, 1));
    assert_eq!(state.open_windows(), 2);
    let emitted = state.process(ev("z", 1000, 0)).emitted;
    assert_eq!(
        summary(&emitted)[..2],
        [
            ("b", 5, 10, 1, Number::Int(1)),
            ("a", 0, 25, 5, Number::Int(5))
        ]
    );
}

#[test]
fn given_event_exactly_gap_after_last_when_processed_then_joins_and_one_more_starts_new_session() {
    let mut state = PartitionWindows::new(session(5), 100);
    run(&mut state, &[ev("a", 0, 1), ev("a", 5, 1), ev("a", 11, 1)]);
    assert_eq!(state.open_windows(), 2);
    let emitted = state.process(ev("z", 1000, 0)).emitted;
    assert_eq!(
        summary(&emitted)[..2],
        [
            ("a", 0, 10, 2, Number::Int(2)),
            ("a", 11, 16, 1, Number::Int(1))
        ]
    );
}

#[test]
fn given_session_when_watermark_reaches_last_plus_two_gaps_exactly_then_it_closes() {
    let mut state = PartitionWindows::new(session(5), 0);
    state.process(ev("a", 0, 1));
    // wm = 9 < 0 + 2*5.
    assert!(state.process(ev("b", 9, 1)).emitted.is_empty());
    // wm = 10 = last + 2G: closes as [0, 5).
    let p = state.process(ev("b", 10, 1));
    assert_eq!(summary(&p.emitted), [("a", 0, 5, 1, Number::Int(1))]);
}

#[test]
fn given_session_event_with_ts_plus_gap_equal_to_watermark_when_processed_then_late() {
    let mut state = PartitionWindows::new(session(5), 0);
    state.process(ev("a", 20, 1));
    // wm = 20; 15 + 5 <= 20: late; 16 + 5 > 20: accepted (joins [20]).
    assert!(state.process(ev("b", 15, 1)).late);
    assert!(!state.process(ev("a", 16, 1)).late);
    assert_eq!(state.open_windows(), 1);
}

#[test]
fn given_duplicate_timestamps_and_negative_values_in_session_when_closed_then_all_counted() {
    let mut state = PartitionWindows::new(session(3), 0);
    run(
        &mut state,
        &[ev("a", -4, -1), ev("a", -4, -9), ev("a", -2, 4)],
    );
    let emitted = state.process(ev("z", 100, 0)).emitted;
    let r = &emitted[0];
    assert_eq!((r.start, r.end, r.count), (-4, 1, 3));
    assert_eq!(
        (r.sum, r.min, r.max),
        (Number::Int(-6), Number::Int(-9), Number::Int(4))
    );
}

// ---- snapshot / restore ----

/// A fixed, out-of-order stream touching every edge above.
fn mixed_stream() -> Vec<Event> {
    let mut events = Vec::new();
    let mut x: i64 = 7;
    for i in 0..400_i64 {
        x = (x * 1_103_515_245 + 12_345).rem_euclid(1 << 31);
        let key = ["a", "b", "c", "d"][(x % 4) as usize];
        let ts = i * 3 - (x % 40) - 50;
        events.push(Event::new(key, ts, (x % 21) - 10));
    }
    events
}

#[test]
fn given_snapshot_restored_mid_stream_when_continued_then_same_emissions_as_never_stopping() {
    let windows = [tumbling(25), Window::hopping(30, 7).unwrap(), session(6)];
    for window in windows {
        for grace in [0, 15] {
            let events = mixed_stream();
            let mut straight = PartitionWindows::new(window, grace);
            let expected = run(&mut straight, &events);
            for split in [0, 1, 137, 399, 400] {
                let mut first = PartitionWindows::new(window, grace);
                let (mut emitted, mut late) = run(&mut first, &events[..split]);
                let json = serde_json::to_string(&first.snapshot()).unwrap();
                let snapshot: PartitionSnapshot = serde_json::from_str(&json).unwrap();
                let mut second = PartitionWindows::restore(window, grace, snapshot).unwrap();
                assert_eq!(second.watermark(), first.watermark());
                assert_eq!(second.open_windows(), first.open_windows());
                let (e2, l2) = run(&mut second, &events[split..]);
                emitted.extend(e2);
                late.extend(l2);
                assert_eq!(
                    (emitted, late),
                    expected,
                    "{window:?} grace {grace} split {split}"
                );
                assert_eq!(second.snapshot(), straight.snapshot());
            }
        }
    }
}

#[test]
fn given_restored_watermark_when_old_late_event_replayed_then_still_late() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    state.process(ev("a", 35, 1));
    let restored = PartitionWindows::restore(tumbling(10), 0, state.snapshot());
    let mut restored = restored.unwrap();
    assert!(restored.process(ev("a", 5, 1)).late);
}

#[test]
fn given_snapshot_of_other_window_when_restored_then_refused() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    state.process(ev("a", 5, 1));
    let err = PartitionWindows::restore(tumbling(20), 0, state.snapshot()).unwrap_err();
    assert!(matches!(err, RestoreError::WindowMismatch { .. }));
}

#[test]
fn given_tampered_snapshot_when_restored_then_refused() {
    let mut state = PartitionWindows::new(tumbling(10), 0);
    run(&mut state, &[ev("a", 15, 1), ev("b", 12, 1)]);
    let good = state.snapshot();

    let mut misaligned = good.clone();
    misaligned.windows[0].start += 1;
    assert!(matches!(
        PartitionWindows::restore(tumbling(10), 0, misaligned),
        Err(RestoreError::InvalidWindow { .. })
    ));

    let mut unsorted = good.clone();
    unsorted.windows.reverse();
    assert!(PartitionWindows::restore(tumbling(10), 0, unsorted).is_err());

    let mut already_closed = good.clone();
    already_closed.watermark = Some(20);
    assert!(PartitionWindows::restore(tumbling(10), 0, already_closed).is_err());

    let mut future = good;
    future.format = 99;
    assert!(matches!(
        PartitionWindows::restore(tumbling(10), 0, future),
        Err(RestoreError::Format { found: 99 })
    ));
}

#[test]
fn given_snapshot_json_when_inspected_then_contains_watermark_and_windows() {
    let mut state = PartitionWindows::new(session(5), 2);
    state.process(ev("k", 7, 3));
    let json = serde_json::to_value(state.snapshot()).unwrap();
    assert_eq!(json["watermark"], 5);
    assert_eq!(json["window"]["kind"], "session");
    assert_eq!(json["windows"][0]["key"], "k");
    assert_eq!(json["windows"][0]["agg"]["sum"], 3);
}
