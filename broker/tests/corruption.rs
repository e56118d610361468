//! Corruption matrix on real files: what recovery does with each kind of
//! damage a crash or the disk can leave in a partition directory.
//!
//! Every case writes a partition of several small segments with acknowledged
//! batches (append + fdatasync), shuts it down cleanly or drops it without
//! `close()`, damages the files, and reopens it. The contracts proven:
//! - A torn or garbage tail of the last segment is cut back to the last valid
//!   batch; everything before it reads back byte-identical and the next append
//!   gets the offset after the last valid record.
//! - A damaged, missing or non-monotonic index (or time index) is a cache
//!   miss, not data loss: it is rebuilt to exactly what the appends wrote, and
//!   reads and time lookups answer as before.
//! - Invalid bytes inside a sealed segment, or a hole between segments, fence
//!   the partition with `KAFKA_STORAGE_ERROR` naming the file and byte, and
//!   leave every file in the directory byte-identical.
//! - Temp files, half-deleted files and orphan indexes are removed.
//! - `plan_recovery` alone reports the same decisions and changes nothing.

// Tests may unwrap (house style); the helpers below are test code too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;
use support::{append_acked, as_stored, read_all};

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use sediment_broker::protocol::errors::ToErrorCode;
use sediment_broker::storage::batch::BatchHeader;
use sediment_broker::storage::recovery::{
    list_partition_dir, plan_recovery, Finding, SegmentFiles,
};
use sediment_broker::storage::test_batches::{batch_of_size, batch_with_seed};
use sediment_broker::storage::{PartitionLog, RecoveryHint};
use sediment_broker::{LogConfig, StorageError};

/// Bytes of log between two index entries in these tests.
const INDEX_INTERVAL: u64 = 1024;

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: INDEX_INTERVAL,
        preallocate_bytes: 32 * 1024,
        ..LogConfig::default()
    }
}

/// A deterministic byte stream (xorshift64*) for garbage and bit positions.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

/// How the partition was last shut down.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    /// `close()`: everything synced, indexes trimmed; reopen may trust it.
    Clean,
    /// Dropped without `close()`, as after `kill -9`; reopen scans everything.
    Unclean,
}

/// A partition directory holding acknowledged batches in several segments.
struct Written {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    /// Every acknowledged batch as stored: (base offset, bytes).
    expected: Vec<(i64, Vec<u8>)>,
    /// Offset after the last acknowledged record.
    end: i64,
}

impl Written {
    fn new(shutdown: Shutdown) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("orders-0");
        let log = PartitionLog::open(&dir, small_segments(), RecoveryHint::full_scan()).unwrap();
        let mut expected = Vec::new();
        for i in 0..60u64 {
            // 1–5 records, 2–8 KiB, batch i has timestamps 1000*i + record index.
            let records = 1 + (i % 5) as usize;
            let bytes = 2000 + (i as usize * 797) % 6000;
            let batch = batch_of_size(records, bytes, 1000 * i as i64, i);
            let base = append_acked(&log, &batch);
            expected.push((base, as_stored(&batch, base)));
        }
        assert!(
            log.segment_count() >= 4,
            "the matrix needs several sealed segments, got {}",
            log.segment_count()
        );
        let end = match shutdown {
            Shutdown::Clean => log.close().unwrap(),
            Shutdown::Unclean => {
                let end = log.high_watermark();
                drop(log);
                end
            }
        };
        Self {
            _tmp: tmp,
            dir,
            expected,
            end,
        }
    }

    fn segments(&self) -> Vec<SegmentFiles> {
        list_partition_dir(&self.dir).unwrap().segments
    }

    fn last_segment(&self) -> SegmentFiles {
        self.segments().pop().unwrap()
    }

    fn open(&self, hint: RecoveryHint) -> Result<PartitionLog, StorageError> {
        PartitionLog::open(&self.dir, small_segments(), hint)
    }

    /// The acknowledged batches stored below `offset`.
    fn expected_before(&self, offset: i64) -> Vec<(i64, Vec<u8>)> {
        self.expected
            .iter()
            .filter(|(base, _)| *base < offset)
            .cloned()
            .collect()
    }
}

/// Where one batch lies in a `.log` file.
#[derive(Debug, Clone, Copy)]
struct BatchAt {
    position: u64,
    len: u64,
    base_offset: i64,
}

/// Walks the batch headers of a `.log` file (which must be undamaged).
fn batches_in(log: &Path) -> Vec<BatchAt> {
    let bytes = fs::read(log).unwrap();
    let mut out = Vec::new();
    let mut position = 0;
    while position < bytes.len() {
        let header = BatchHeader::parse(&bytes[position..]).unwrap();
        out.push(BatchAt {
            position: position as u64,
            len: header.total_len() as u64,
            base_offset: header.base_offset(),
        });
        position += header.total_len();
    }
    out
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            (path, bytes)
        })
        .collect()
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).unwrap().len()
}

/// Flips one bit at byte `position` of `path`.
fn flip_bit(path: &Path, position: u64, bit: u8) {
    let mut bytes = fs::read(path).unwrap();
    bytes[position as usize] ^= 1 << bit;
    fs::write(path, bytes).unwrap();
}

/// The next append gets `expected` as its base offset: no offset is reused
/// and none is skipped.
fn assert_next_append_at(log: &PartitionLog, expected: i64) {
    assert_eq!(log.log_end_offset(), expected);
    assert_eq!(log.high_watermark(), expected);
    let base = append_acked(log, &batch_with_seed(2, 50, 999_999, 4242));
    assert_eq!(base, expected, "next append after recovery");
}

/// Every record's timestamp finds its own offset, a timestamp between two
/// batches finds the next batch's first record, and one past the end finds
/// nothing. (The records of batch `i` have timestamps `1000 * i + record`.)
fn assert_time_lookups(log: &PartitionLog, expected: &[(i64, Vec<u8>)]) {
    for (base, bytes) in expected {
        let header = BatchHeader::parse(bytes).unwrap();
        let first = header.base_timestamp();
        let last = i64::from(header.record_count()) - 1;
        assert_eq!(log.offset_for_timestamp(first), Some((*base, first)));
        assert_eq!(log.offset_for_timestamp(first - 1), Some((*base, first)));
        assert_eq!(
            log.offset_for_timestamp(first + last),
            Some((base + last, first + last))
        );
    }
    let newest = expected
        .iter()
        .map(|(_, bytes)| BatchHeader::parse(bytes).unwrap().max_timestamp())
        .max()
        .unwrap();
    assert_eq!(log.offset_for_timestamp(newest + 1), None);
}

/// Decodes a sealed index file into (key, relative offset) pairs, checking it
/// is a whole number of `entry_size`-byte entries.
fn index_entries(path: &Path, entry_size: usize) -> Vec<(i64, u32)> {
    let bytes = fs::read(path).unwrap();
    assert_eq!(
        bytes.len() % entry_size,
        0,
        "{} is not a whole number of entries",
        path.display()
    );
    bytes
        .chunks_exact(entry_size)
        .map(|entry| match entry_size {
            8 => {
                let relative = u32::from_be_bytes(entry[..4].try_into().unwrap());
                (i64::from(relative), relative)
            }
            12 => (
                i64::from_be_bytes(entry[..8].try_into().unwrap()),
                u32::from_be_bytes(entry[8..].try_into().unwrap()),
            ),
            _ => unreachable!("entry sizes are 8 and 12"),
        })
        .collect()
}

fn assert_strictly_increasing(entries: &[(i64, u32)], what: &str) {
    assert!(!entries.is_empty(), "{what} has entries");
    for pair in entries.windows(2) {
        assert!(
            pair[1].0 > pair[0].0 && pair[1].1 >= pair[0].1,
            "{what} is not increasing: {pair:?}"
        );
    }
}

// ---------------------------------------------------------------------------
// The undamaged layout every case below starts from.
// ---------------------------------------------------------------------------

#[test]
fn given_small_batches_when_appended_then_segments_fill_up_and_sealed_indexes_are_trimmed() {
    let written = Written::new(Shutdown::Clean);
    let segments = written.segments();
    let (sealed, _last) = segments.split_at(segments.len() - 1);
    for files in sealed {
        let batches = batches_in(&files.log);
        // 2–8 KiB batches into 64 KiB segments: a segment rolls only when the
        // next batch would not fit, so each sealed one is more than half full.
        assert!(
            batches.len() >= 4 && file_len(&files.log) > 32 * 1024,
            "{} holds {} batches in {} bytes: the log rolled early",
            files.log.display(),
            batches.len(),
            file_len(&files.log)
        );
        // A sealed index holds one entry per `INDEX_INTERVAL` bytes at most,
        // trimmed to its entries (not the index capacity).
        for which in [Which::Offsets, Which::Times] {
            let path = which.path(files);
            let entries = index_entries(path, which.entry_size());
            assert!(
                entries.len() < batches.len(),
                "{} has {} entries for {} batches: not trimmed",
                path.display(),
                entries.len(),
                batches.len()
            );
            assert_strictly_increasing(&entries, &path.display().to_string());
        }
    }
    let log = written.open(RecoveryHint::clean(written.end)).unwrap();
    assert_eq!(read_all(&log, 0), written.expected);
    assert_time_lookups(&log, &written.expected);
}

// ---------------------------------------------------------------------------
// Damage to the last segment: torn or garbage tails are truncated.
// ---------------------------------------------------------------------------

#[test]
fn given_garbage_appended_to_last_segment_when_reopened_then_truncated_to_original_length() {
    let written = Written::new(Shutdown::Unclean);
    let last = written.last_segment();
    let original_len = file_len(&last.log);
    let mut bytes = fs::read(&last.log).unwrap();
    bytes.extend(Noise(7).bytes(5000));
    fs::write(&last.log, bytes).unwrap();

    let log = written.open(RecoveryHint::full_scan()).unwrap();

    assert_eq!(file_len(&last.log), original_len, "garbage cut off");
    assert_eq!(read_all(&log, 0), written.expected);
    assert_next_append_at(&log, written.end);
}

#[test]
fn given_last_batch_cut_midway_when_reopened_then_that_batch_is_gone_and_its_offset_is_next() {
    let written = Written::new(Shutdown::Unclean);
    let last = written.last_segment();
    let tail = *batches_in(&last.log).last().unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&last.log)
        .unwrap()
        .set_len(tail.position + tail.len / 2)
        .unwrap();

    let log = written.open(RecoveryHint::full_scan()).unwrap();

    assert_eq!(file_len(&last.log), tail.position, "cut at the torn batch");
    assert_eq!(read_all(&log, 0), written.expected_before(tail.base_offset));
    assert_next_append_at(&log, tail.base_offset);
}

#[test]
fn given_bit_flip_in_last_batch_of_last_segment_when_reopened_then_crc_drops_that_batch_only() {
    let written = Written::new(Shutdown::Unclean);
    let last = written.last_segment();
    let batches = batches_in(&last.log);
    assert!(
        batches.len() >= 2,
        "the last segment holds earlier batches too"
    );
    let tail = *batches.last().unwrap();
    // A record byte, inside the CRC-32C's coverage.
    flip_bit(&last.log, tail.position + tail.len - 3, 4);

    let log = written.open(RecoveryHint::full_scan()).unwrap();

    assert_eq!(file_len(&last.log), tail.position);
    let survivors = read_all(&log, 0);
    assert_eq!(survivors, written.expected_before(tail.base_offset));
    assert_eq!(
        survivors.len(),
        written.expected.len() - 1,
        "only one batch lost"
    );
    assert_next_append_at(&log, tail.base_offset);
}

// ---------------------------------------------------------------------------
// Damage to indexes: rebuilt from the log, never trusted over it.
// ---------------------------------------------------------------------------

/// Which index file a case damages.
#[derive(Clone, Copy)]
enum Which {
    Offsets,
    Times,
}

impl Which {
    fn path(self, files: &SegmentFiles) -> &Path {
        match self {
            Self::Offsets => &files.index,
            Self::Times => &files.time_index,
        }
    }

    fn entry_size(self) -> usize {
        match self {
            Self::Offsets => 8,
            Self::Times => 12,
        }
    }
}

/// Closes a partition cleanly, damages one index of a segment with `damage`,
/// reopens it as a clean restart would and checks that recovery noticed, that
/// the index was rewritten to what the appends wrote, and that reads and time
/// lookups are unaffected.
fn index_damage_case(segment: SegmentChoice, which: Which, damage: impl FnOnce(&Path)) {
    let written = Written::new(Shutdown::Clean);
    let segments = written.segments();
    let files = match segment {
        SegmentChoice::Sealed => segments[1].clone(),
        SegmentChoice::Last => segments.last().unwrap().clone(),
    };
    let target = which.path(&files).to_path_buf();
    let original = fs::read(&target).unwrap();
    assert!(
        original.len() >= 3 * which.entry_size(),
        "{} should have several entries",
        target.display()
    );
    damage(&target);

    let plan = plan_recovery(
        &written.dir,
        RecoveryHint::clean(written.end),
        INDEX_INTERVAL,
    )
    .unwrap();
    assert!(
        plan.findings
            .iter()
            .any(|f| matches!(f, Finding::RebuildIndex { file, .. } if *file == target)),
        "recovery doubts {}: {:?}",
        target.display(),
        plan.findings
    );
    assert!(
        !plan.findings.iter().any(Finding::affects_data),
        "an index problem never cuts data: {:?}",
        plan.findings
    );

    let log = written.open(RecoveryHint::clean(written.end)).unwrap();

    if matches!(segment, SegmentChoice::Sealed) {
        // The active segment's index is mapped at full capacity; a sealed one
        // is trimmed, so it can be compared with what the appends wrote.
        let rebuilt = index_entries(&target, which.entry_size());
        assert_strictly_increasing(&rebuilt, &target.display().to_string());
        assert_eq!(
            fs::read(&target).unwrap(),
            original,
            "the rebuilt index is the one the appends wrote"
        );
    }
    assert_eq!(read_all(&log, 0), written.expected);
    assert_time_lookups(&log, &written.expected);
    assert_next_append_at(&log, written.end);
}

#[derive(Clone, Copy)]
enum SegmentChoice {
    /// A segment in the middle of the log.
    Sealed,
    /// The segment appends continue in.
    Last,
}

#[test]
fn given_sealed_index_with_partial_entry_when_reopened_clean_then_rebuilt_and_reads_identical() {
    index_damage_case(SegmentChoice::Sealed, Which::Offsets, |path| {
        let mut bytes = fs::read(path).unwrap();
        bytes.extend([0xab, 0xcd, 0xef]);
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn given_zeroed_sealed_index_when_reopened_clean_then_rebuilt_and_reads_identical() {
    index_damage_case(SegmentChoice::Sealed, Which::Offsets, |path| {
        let len = fs::read(path).unwrap().len();
        fs::write(path, vec![0u8; len]).unwrap();
    });
}

#[test]
fn given_deleted_sealed_index_when_reopened_clean_then_rebuilt_and_reads_identical() {
    index_damage_case(SegmentChoice::Sealed, Which::Offsets, |path| {
        fs::remove_file(path).unwrap();
    });
}

#[test]
fn given_non_monotonic_sealed_index_when_reopened_clean_then_rebuilt_and_reads_identical() {
    index_damage_case(SegmentChoice::Sealed, Which::Offsets, |path| {
        let mut bytes = fs::read(path).unwrap();
        let (first, second) = bytes.split_at_mut(16);
        first[8..16].swap_with_slice(&mut second[..8]);
        fs::write(path, bytes).unwrap();
    });
}

#[test]
fn given_deleted_sealed_time_index_when_reopened_clean_then_rebuilt_and_time_lookups_correct() {
    index_damage_case(SegmentChoice::Sealed, Which::Times, |path| {
        fs::remove_file(path).unwrap();
    });
}

#[test]
fn given_garbled_sealed_time_index_when_reopened_clean_then_rebuilt_and_time_lookups_correct() {
    index_damage_case(SegmentChoice::Sealed, Which::Times, |path| {
        let len = fs::read(path).unwrap().len();
        fs::write(path, Noise(11).bytes(len)).unwrap();
    });
}

#[test]
fn given_zeroed_index_of_last_segment_when_reopened_clean_then_rebuilt_and_appends_continue() {
    index_damage_case(SegmentChoice::Last, Which::Offsets, |path| {
        let len = fs::read(path).unwrap().len();
        fs::write(path, vec![0u8; len]).unwrap();
    });
}

// ---------------------------------------------------------------------------
// Damage recovery must not repair: the partition is fenced, files untouched.
// ---------------------------------------------------------------------------

/// Opens the partition expecting a fence, checks the error names `file` at
/// `position`, maps to KAFKA_STORAGE_ERROR, and that no file changed.
fn assert_fenced(written: &Written, hint: RecoveryHint, file: &Path, position: u64) {
    let before = snapshot(&written.dir);
    for attempt in 0..2 {
        let err = match written.open(hint) {
            Ok(_) => panic!("attempt {attempt}: a damaged sealed segment must fence the partition"),
            Err(err) => err,
        };
        match &err {
            StorageError::Fenced {
                file: fenced,
                position: at,
                partition,
                ..
            } => {
                assert_eq!(fenced, file, "{err}");
                assert_eq!(*at, position, "{err}");
                assert_eq!(partition, "orders-0");
            }
            other => panic!("expected Fenced, got {other:?}"),
        }
        assert_eq!(err.kafka_error_code(), 56, "KAFKA_STORAGE_ERROR");
        assert_eq!(
            snapshot(&written.dir),
            before,
            "a fenced partition's files are left for the operator"
        );
    }
}

#[test]
fn given_bit_flip_inside_sealed_segment_when_reopened_unclean_then_fenced_and_files_untouched() {
    let written = Written::new(Shutdown::Unclean);
    let sealed = written.segments()[1].clone();
    let batches = batches_in(&sealed.log);
    assert!(batches.len() >= 3);
    let victim = batches[batches.len() / 2];
    // A byte of the records, well inside the batch.
    flip_bit(&sealed.log, victim.position + victim.len / 2, 0);

    assert_fenced(
        &written,
        RecoveryHint::full_scan(),
        &sealed.log,
        victim.position,
    );
}

#[test]
fn given_missing_middle_segment_when_reopened_unclean_then_hole_fences_partition() {
    let written = Written::new(Shutdown::Unclean);
    let segments = written.segments();
    let missing = &segments[2];
    for path in [&missing.log, &missing.index, &missing.time_index] {
        fs::remove_file(path).unwrap();
    }

    assert_fenced(&written, RecoveryHint::full_scan(), &segments[3].log, 0);
}

#[test]
fn given_missing_middle_segment_when_reopened_clean_then_hole_fences_partition() {
    let written = Written::new(Shutdown::Clean);
    let segments = written.segments();
    let missing = &segments[1];
    for path in [&missing.log, &missing.index, &missing.time_index] {
        fs::remove_file(path).unwrap();
    }

    assert_fenced(
        &written,
        RecoveryHint::clean(written.end),
        &segments[2].log,
        0,
    );
}

// ---------------------------------------------------------------------------
// Leftovers of interrupted writes and deletions.
// ---------------------------------------------------------------------------

#[test]
fn given_temp_deleted_and_orphan_index_files_when_reopened_then_removed_and_data_intact() {
    let written = Written::new(Shutdown::Unclean);
    let strays: Vec<PathBuf> = [
        "something.tmp",
        "00000000000000000000.index.tmp",
        "00000000000000000000.log.deleted",
        "00000000000000099999.index",
        "00000000000000099999.timeindex",
    ]
    .iter()
    .map(|name| written.dir.join(name))
    .collect();
    for (i, path) in strays.iter().enumerate() {
        fs::write(path, Noise(100 + i as u64).bytes(100)).unwrap();
    }

    let plan = plan_recovery(&written.dir, RecoveryHint::full_scan(), INDEX_INTERVAL).unwrap();
    for path in &strays {
        assert!(
            plan.findings
                .contains(&Finding::RemoveStray { file: path.clone() }),
            "{} is planned for removal: {:?}",
            path.display(),
            plan.findings
        );
    }
    assert!(plan.fence.is_none());

    let log = written.open(RecoveryHint::full_scan()).unwrap();

    for path in &strays {
        assert!(!path.exists(), "{} removed", path.display());
    }
    assert_eq!(read_all(&log, 0), written.expected);
    assert_next_append_at(&log, written.end);
}

// ---------------------------------------------------------------------------
// The read-only planner (also what `sediment log verify` runs).
// ---------------------------------------------------------------------------

#[test]
fn given_torn_tail_when_planned_then_truncate_finding_names_file_and_byte_and_nothing_changes() {
    let written = Written::new(Shutdown::Unclean);
    let last = written.last_segment();
    let tail = *batches_in(&last.log).last().unwrap();
    let cut_to = tail.position + tail.len - 10;
    fs::OpenOptions::new()
        .write(true)
        .open(&last.log)
        .unwrap()
        .set_len(cut_to)
        .unwrap();
    let before = snapshot(&written.dir);

    let plan = plan_recovery(&written.dir, RecoveryHint::full_scan(), INDEX_INTERVAL).unwrap();

    assert!(plan.fence.is_none());
    let truncations: Vec<&Finding> = plan
        .findings
        .iter()
        .filter(|f| matches!(f, Finding::Truncate { .. }))
        .collect();
    match truncations.as_slice() {
        [Finding::Truncate {
            file,
            position,
            bytes_cut,
            last_valid_offset,
            reason,
        }] => {
            assert_eq!(file, &last.log);
            assert_eq!(*position, tail.position);
            assert_eq!(*bytes_cut, cut_to - tail.position);
            assert_eq!(*last_valid_offset, tail.base_offset - 1);
            assert!(!reason.is_empty());
        }
        other => panic!("expected one Truncate finding, got {other:?}"),
    }
    let planned_last = plan.segments.last().unwrap();
    assert_eq!(planned_last.log_len, tail.position);
    assert_eq!(planned_last.next_offset, tail.base_offset);
    assert_eq!(snapshot(&written.dir), before, "planning only reads");
}

#[test]
fn given_bit_flip_in_sealed_segment_when_planned_then_fence_finding_names_file_and_byte() {
    let written = Written::new(Shutdown::Unclean);
    let sealed = written.segments()[2].clone();
    let victim = batches_in(&sealed.log)[1];
    flip_bit(&sealed.log, victim.position + victim.len - 1, 7);
    let before = snapshot(&written.dir);

    let plan = plan_recovery(&written.dir, RecoveryHint::full_scan(), INDEX_INTERVAL).unwrap();

    match &plan.fence {
        Some(Finding::Fence {
            file,
            position,
            reason,
        }) => {
            assert_eq!(file, &sealed.log);
            assert_eq!(*position, victim.position);
            assert!(reason.contains("CRC"), "{reason}");
        }
        other => panic!("expected a fence, got {other:?}"),
    }
    assert!(plan.findings.contains(plan.fence.as_ref().unwrap()));
    assert!(
        !plan
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Truncate { .. })),
        "sealed data is never cut: {:?}",
        plan.findings
    );
    assert_eq!(snapshot(&written.dir), before, "planning only reads");
}
