//! Small files that must never be seen half-written: the recovery-point
//! checkpoint, the clean-shutdown marker, topic metadata, rebuilt indexes.
//!
//! Every write goes temp file → fdatasync → rename over the target → fsync of
//! the directory, so after a crash the target holds either the old or the new
//! contents, never a mix. Checksummed files carry a crc32fast (IEEE CRC-32)
//! header line so a file damaged at rest is detected instead of believed.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// Suffix of temp files; recovery deletes any it finds.
pub const TEMP_SUFFIX: &str = ".tmp";

/// First word of a checksummed file's header line.
const MAGIC: &str = "sediment-checksummed-v1";

/// Replaces `path` with `contents` atomically and durably.
pub fn write_atomically(path: &Path, contents: &[u8]) -> io::Result<()> {
    let tmp = temp_path(path);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)?;
        file.write_all(contents)?;
        file.sync_data()?;
    }
    fs::rename(&tmp, path)?;
    sync_parent_dir(path)
}

/// fsyncs the directory holding `path`, making a create, rename or unlink in
/// it durable.
pub fn sync_parent_dir(path: &Path) -> io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// fsyncs a directory.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `payload` atomically behind a header line carrying its CRC-32 and length.
pub fn write_checksummed(path: &Path, payload: &[u8]) -> io::Result<()> {
    let mut contents = format!(
        "{MAGIC} crc32={:08x} len={}\n",
        crc32fast::hash(payload),
        payload.len()
    )
    .into_bytes();
    contents.extend_from_slice(payload);
    write_atomically(path, &contents)
}

/// Why a checksummed file could not be believed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChecksummedFileError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// The header is missing or malformed, or the checksum or length does not match.
    #[error("{path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What did not match.
        reason: String,
    },
}

/// Reads a file written by [`write_checksummed`]; `Ok(None)` when it does not exist.
pub fn read_checksummed(path: &Path) -> Result<Option<Vec<u8>>, ChecksummedFileError> {
    let contents = match fs::read(path) {
        Ok(contents) => contents,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ChecksummedFileError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let damaged = |reason: &str| ChecksummedFileError::Damaged {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let newline = contents
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| damaged("no header line"))?;
    let header =
        std::str::from_utf8(&contents[..newline]).map_err(|_| damaged("header is not text"))?;
    let payload = &contents[newline + 1..];
    let mut words = header.split(' ');
    if words.next() != Some(MAGIC) {
        return Err(damaged("unknown header"));
    }
    let crc = words
        .next()
        .and_then(|w| w.strip_prefix("crc32="))
        .and_then(|hex| u32::from_str_radix(hex, 16).ok())
        .ok_or_else(|| damaged("no crc32 in header"))?;
    let len = words
        .next()
        .and_then(|w| w.strip_prefix("len="))
        .and_then(|n| n.parse::<usize>().ok())
        .ok_or_else(|| damaged("no len in header"))?;
    if len != payload.len() {
        return Err(damaged(&format!(
            "header says {len} bytes, {} present",
            payload.len()
        )));
    }
    if crc32fast::hash(payload) != crc {
        return Err(damaged("checksum mismatch"));
    }
    Ok(Some(payload.to_vec()))
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(TEMP_SUFFIX);
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_checksummed_file_when_read_back_then_payload_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("recovery-point");
        write_checksummed(&path, b"orders 0 42\n").unwrap();
        assert_eq!(read_checksummed(&path).unwrap().unwrap(), b"orders 0 42\n");
        assert!(!dir.path().join("recovery-point.tmp").exists());
    }

    #[test]
    fn given_missing_file_then_none() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read_checksummed(&dir.path().join("absent"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn given_flipped_payload_byte_then_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("meta");
        write_checksummed(&path, b"abc").unwrap();
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(matches!(
            read_checksummed(&path),
            Err(ChecksummedFileError::Damaged { .. })
        ));
    }
}
