//! `sediment log verify DIR` and `sediment log dump FILE`: offline, read-only
//! inspection of a data directory with the same code recovery runs.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::json;

use sediment_broker::basics::TopicPartition;
use sediment_broker::storage::batch::{BatchHeader, BatchIter};
use sediment_broker::storage::index::{IndexEntry, IndexFile, OffsetEntry, TimeEntry};
use sediment_broker::storage::recovery::{
    check_segment_indexes, list_partition_dir, map_read_only, plan_recovery, Finding, RecoveryHint,
    INDEX_EXT, LOG_EXT, TIME_INDEX_EXT,
};
use sediment_broker::LogConfig;

use super::OutputFormat;

/// Offline log inspection.
#[derive(Debug, Subcommand)]
pub enum LogCommand {
    /// Check every batch of a data directory or partition directory, as recovery
    /// would; exits non-zero naming the file and byte of anything it would cut or fence.
    Verify {
        /// A data directory (holding `<topic>-<partition>` directories) or one partition directory.
        dir: PathBuf,
    },
    /// Print the batches of a `.log`, or the entries of a `.index` / `.timeindex`.
    Dump {
        /// The segment or index file.
        file: PathBuf,
    },
}

/// Runs a `log` subcommand.
pub fn run(command: LogCommand, output: OutputFormat) -> anyhow::Result<ExitCode> {
    match command {
        LogCommand::Verify { dir } => verify(&dir, output),
        LogCommand::Dump { file } => dump(&file, output),
    }
}

fn verify(dir: &Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        bail!(
            "{} is not a directory; pass a data directory or a partition directory",
            dir.display()
        );
    }
    let partitions = partition_dirs(dir)?;
    if partitions.is_empty() {
        bail!(
            "{} holds no partition directories and no segments",
            dir.display()
        );
    }
    let index_interval = LogConfig::default().index_interval_bytes;
    let mut damaged = 0;
    let mut reports = Vec::new();
    for partition in &partitions {
        let name = partition.file_name().map_or_else(
            || partition.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        let plan = plan_recovery(partition, RecoveryHint::full_scan(), index_interval)
            .with_context(|| format!("cannot verify {}", partition.display()))?;
        let mut findings = plan.findings.clone();
        if plan.fence.is_none() {
            for segment in &plan.segments {
                if let Err((file, reason)) = check_segment_indexes(&segment.files, index_interval) {
                    findings.push(Finding::RebuildIndex { file, reason });
                }
            }
        }
        let status = if plan.fence.is_some() {
            "fenced"
        } else if findings
            .iter()
            .any(|f| matches!(f, Finding::Truncate { .. }))
        {
            "cut"
        } else {
            "ok"
        };
        if findings.iter().any(Finding::affects_data) {
            damaged += 1;
        }
        let log_start = plan.segments.first().map_or(0, |s| s.files.base_offset);
        let log_end = plan.segments.last().map_or(0, |s| s.next_offset);
        let bytes: u64 = plan.segments.iter().map(|s| s.log_len).sum();
        match output {
            OutputFormat::Table => {
                outln!(
                    "{name}: {status}, {} segments, offsets [{log_start}, {log_end}), {bytes} bytes",
                    plan.segments.len()
                );
                for finding in &findings {
                    outln!("  {}", describe(finding));
                }
            }
            OutputFormat::Json => reports.push(json!({
                "partition": name,
                "dir": partition.display().to_string(),
                "status": status,
                "segments": plan.segments.len(),
                "log_start": log_start,
                "log_end": log_end,
                "bytes": bytes,
                "findings": findings.iter().map(finding_json).collect::<Vec<_>>(),
            })),
        }
    }
    if output == OutputFormat::Json {
        outln!("{}", json!({ "ok": damaged == 0, "partitions": reports }));
    }
    if damaged > 0 {
        eprintln!(
            "verify: {damaged} of {} partitions have damage recovery would cut or fence",
            partitions.len()
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A partition directory itself, or the `<topic>-<partition>` directories under a data directory.
fn partition_dirs(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let listing =
        list_partition_dir(dir).with_context(|| format!("cannot list {}", dir.display()))?;
    if !listing.segments.is_empty() {
        return Ok(vec![dir.to_path_buf()]);
    }
    let mut dirs = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let path = entry?.path();
        let is_partition = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|name| name.parse::<TopicPartition>().ok())
            .is_some();
        if path.is_dir() && is_partition {
            dirs.push(path);
        }
    }
    dirs.sort();
    Ok(dirs)
}

fn describe(finding: &Finding) -> String {
    match finding {
        Finding::Truncate {
            file,
            position,
            bytes_cut,
            last_valid_offset,
            reason,
        } => format!(
            "CUT {} at byte {position}: {reason} ({bytes_cut} bytes would be cut; last valid offset {last_valid_offset})",
            file.display()
        ),
        Finding::Fence { file, position, reason } => {
            format!("FENCE {} at byte {position}: {reason}", file.display())
        }
        Finding::RebuildIndex { file, reason } => {
            format!("index {} would be rebuilt: {reason}", file.display())
        }
        Finding::RemoveStray { file } => format!("stray file {} would be removed", file.display()),
    }
}

fn finding_json(finding: &Finding) -> serde_json::Value {
    match finding {
        Finding::Truncate {
            file,
            position,
            bytes_cut,
            last_valid_offset,
            reason,
        } => json!({
            "kind": "truncate", "file": file.display().to_string(), "position": position,
            "bytes_cut": bytes_cut, "last_valid_offset": last_valid_offset, "reason": reason,
        }),
        Finding::Fence {
            file,
            position,
            reason,
        } => json!({
            "kind": "fence", "file": file.display().to_string(), "position": position, "reason": reason,
        }),
        Finding::RebuildIndex { file, reason } => json!({
            "kind": "rebuild_index", "file": file.display().to_string(), "reason": reason,
        }),
        Finding::RemoveStray { file } => {
            json!({ "kind": "remove_stray", "file": file.display().to_string() })
        }
    }
}

fn dump(file: &Path, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let (stem, ext) = name.split_once('.').with_context(|| {
        format!(
            "{} is not a .log, .index or .timeindex file",
            file.display()
        )
    })?;
    let base_offset: i64 = stem.parse().with_context(|| {
        format!("{name} is not named after its base offset (like 00000000000000000000.{ext})")
    })?;
    match ext {
        LOG_EXT => dump_log(file, base_offset, output),
        INDEX_EXT => dump_index::<OffsetEntry>(file, output, |entry| {
            let offset = base_offset + i64::from(entry.relative_offset);
            (
                format!("offset={offset} position={}", entry.position),
                json!({ "offset": offset, "position": entry.position }),
            )
        }),
        TIME_INDEX_EXT => dump_index::<TimeEntry>(file, output, |entry| {
            let offset = base_offset + i64::from(entry.relative_offset);
            (
                format!("timestamp={} offset={offset}", entry.timestamp),
                json!({ "timestamp": entry.timestamp, "offset": offset }),
            )
        }),
        _ => bail!(
            "{} is not a .log, .index or .timeindex file",
            file.display()
        ),
    }
}

/// One line per index entry, as `describe` renders it.
fn dump_index<E: IndexEntry>(
    file: &Path,
    output: OutputFormat,
    describe: impl Fn(E) -> (String, serde_json::Value),
) -> anyhow::Result<ExitCode> {
    let index = IndexFile::<E>::open_read_only(file)
        .with_context(|| format!("cannot open {}", file.display()))?;
    for i in 0..index.len() {
        let (table, json) = describe(index.entry(i));
        print_line(output, table, json);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per batch; a batch with a bad CRC is reported and the walk goes
/// on while lengths still make sense; a structural defect ends it.
fn dump_log(file: &Path, base_offset: i64, output: OutputFormat) -> anyhow::Result<ExitCode> {
    let map = map_read_only(file)?;
    let bytes: &[u8] = map.as_deref().unwrap_or(&[]);
    let mut expected = base_offset;
    let mut clean = true;
    let mut walk = BatchIter::headers(bytes);
    for item in walk.by_ref() {
        match item {
            Ok((position, header)) => {
                let crc_ok = header.verify_crc().is_ok();
                let continuous = header.base_offset() == expected;
                clean &= crc_ok && continuous;
                expected = header.last_offset() + 1;
                print_line(
                    output,
                    batch_line(&header, position, crc_ok, continuous),
                    json!({
                        "base_offset": header.base_offset(), "last_offset": header.last_offset(),
                        "count": header.record_count(), "position": position, "size": header.total_len(),
                        "crc_ok": crc_ok, "continuous": continuous, "base_timestamp": header.base_timestamp(),
                        "max_timestamp": header.max_timestamp(), "compression": header.compression(),
                        "producer_id": header.producer_id(), "leader_epoch": header.partition_leader_epoch(),
                        "producer_epoch": header.producer_epoch(), "base_sequence": header.base_sequence(),
                        "transactional": header.is_transactional(),
                        "marker": marker_name(&header),
                    }),
                );
            }
            Err((position, defect)) => {
                clean = false;
                print_line(
                    output,
                    format!(
                        "invalid at position={position}: {defect}; {} bytes follow",
                        bytes.len() - position
                    ),
                    json!({ "invalid_at": position, "reason": defect.to_string(), "bytes_after": bytes.len() - position }),
                );
            }
        }
    }
    Ok(if clean {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `commit` or `abort` for a transaction marker, else null.
fn marker_name(header: &BatchHeader<'_>) -> Option<&'static str> {
    header
        .marker_commits()
        .map(|commit| if commit { "commit" } else { "abort" })
}

fn batch_line(header: &BatchHeader<'_>, position: usize, crc_ok: bool, continuous: bool) -> String {
    let transaction = match (marker_name(header), header.is_transactional()) {
        (Some(marker), _) => format!(" marker={marker}"),
        (None, true) => " transactional".to_string(),
        (None, false) => String::new(),
    };
    format!(
        "offset={}..{} count={} position={position} size={} crc={} timestamps={}..{} compression={} producer_id={}{transaction}{}",
        header.base_offset(),
        header.last_offset(),
        header.record_count(),
        header.total_len(),
        if crc_ok { "ok" } else { "BAD" },
        header.base_timestamp(),
        header.max_timestamp(),
        header.compression(),
        header.producer_id(),
        if continuous { "" } else { " (offset gap)" },
    )
}

fn print_line(output: OutputFormat, table: String, json: serde_json::Value) {
    match output {
        OutputFormat::Table => outln!("{table}"),
        OutputFormat::Json => outln!("{json}"),
    }
}
