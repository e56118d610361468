//! The check a compacted partition applies on append: every record has a key.
//!
//! The cleaner keeps the latest record *per key*; a record without one has
//! no place in a compacted log (Kafka refuses it the same way, with
//! INVALID_RECORD). The whole record set is checked before anything is
//! written, so a refused append leaves nothing behind.
//!
//! Invariants: control batches (transaction markers) carry no user key and
//! are not checked; compressed batches are inflated to read their keys, at
//! most [`MAX_INFLATED_CHECK`] bytes each, so a decompression bomb is a
//! refusal, not an allocation.

use bytes::Bytes;
use sediment_protocol::records::decode_batch;

use crate::error::StorageError;
use crate::storage::batch::BatchHeader;

/// Most bytes one batch may inflate to while its keys are checked.
pub const MAX_INFLATED_CHECK: usize = 64 * 1024 * 1024;

/// Attribute bit of a control batch.
const CONTROL_BIT: i16 = 0x20;

/// Refuses the record set if any record of a data batch has a null key
/// ([`StorageError::InvalidRecord`]). `batches` were validated (lengths,
/// counts, CRC) already.
pub fn require_keys(batches: &[BatchHeader<'_>]) -> Result<(), StorageError> {
    let mut position = 0;
    for batch in batches {
        if batch.attributes() & CONTROL_BIT == 0 {
            let decoded = decode_batch(Bytes::copy_from_slice(batch.bytes()), MAX_INFLATED_CHECK)
                .map_err(|e| StorageError::InvalidRecord {
                position,
                reason: format!("cannot read the batch's records to check their keys: {e}"),
            })?;
            if let Some(keyless) = decoded.records.iter().find(|r| r.key.is_none()) {
                return Err(StorageError::InvalidRecord {
                    position,
                    reason: format!(
                        "the record at offset delta {} has no key; compacted topics accept only keyed records",
                        keyless.offset - decoded.base_offset
                    ),
                });
            }
        }
        position += batch.total_len();
    }
    Ok(())
}
