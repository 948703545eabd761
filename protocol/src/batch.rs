//! The framing of blob batches (`POST /v1/spaces/{id}/blobs/batch` request bodies and
//! `POST /v1/spaces/{id}/blobs/fetch` response bodies, `docs/API.md`).
//!
//! A batch is a sequence of records, nothing before, between or after them:
//!
//! ```text
//! record = blob id (32 raw bytes) ‖ length (u32 big-endian) ‖ envelope (length bytes)
//! ```
//!
//! The codec checks only the framing (lengths, count, per-record limit, no duplicate ids); the
//! receiver checks that each envelope hashes to its id. Decoding never panics and never allocates
//! more than the input it was given.

use std::collections::HashSet;

/// Bytes of a record header: the id and the length.
pub const RECORD_HEADER: usize = 32 + 4;

/// Most blobs in one batch.
pub const MAX_BLOBS_PER_BATCH: usize = 4_096;

/// Default limit on a batch body (request of `blobs/batch`, answer of `blobs/fetch`).
pub const MAX_BATCH_BYTES: u64 = 16 * 1024 * 1024;

/// Why a batch body does not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The body ends inside a record.
    #[error("the batch is truncated")]
    Truncated,
    /// No records.
    #[error("the batch is empty")]
    Empty,
    /// More than [`MAX_BLOBS_PER_BATCH`] records.
    #[error("more than {MAX_BLOBS_PER_BATCH} blobs in one batch")]
    TooManyBlobs,
    /// A record longer than the per-blob limit.
    #[error("a blob in the batch is longer than {limit} bytes")]
    BlobTooLarge {
        /// The per-blob limit.
        limit: u64,
    },
    /// The same id twice.
    #[error("a blob id appears twice in the batch")]
    DuplicateId,
}

/// Appends one record to `out`. `envelope` must be at most `u32::MAX` bytes (blobs are at most
/// [`crate::MAX_BLOB_BYTES`]); a longer one is refused with [`BatchError::BlobTooLarge`].
pub fn push_record(out: &mut Vec<u8>, id: &[u8; 32], envelope: &[u8]) -> Result<(), BatchError> {
    let length = u32::try_from(envelope.len()).map_err(|_| BatchError::BlobTooLarge {
        limit: u64::from(u32::MAX),
    })?;
    out.reserve(RECORD_HEADER + envelope.len());
    out.extend_from_slice(id);
    out.extend_from_slice(&length.to_be_bytes());
    out.extend_from_slice(envelope);
    Ok(())
}

/// The encoded size of a record holding `envelope_len` bytes.
pub fn record_len(envelope_len: usize) -> usize {
    RECORD_HEADER.saturating_add(envelope_len)
}

/// One decoded record: the blob id and its envelope, borrowed from the body.
pub type Record<'a> = ([u8; 32], &'a [u8]);

/// Splits a batch body into `(id, envelope)` records (borrowing `body`), checking the framing:
/// at least one and at most [`MAX_BLOBS_PER_BATCH`] records, each at most `max_blob_bytes`, no id
/// twice, no bytes left over.
pub fn decode(body: &[u8], max_blob_bytes: u64) -> Result<Vec<Record<'_>>, BatchError> {
    let mut records = Vec::new();
    let mut seen = HashSet::new();
    let mut rest = body;
    while !rest.is_empty() {
        if records.len() == MAX_BLOBS_PER_BATCH {
            return Err(BatchError::TooManyBlobs);
        }
        if rest.len() < RECORD_HEADER {
            return Err(BatchError::Truncated);
        }
        let (header, tail) = rest.split_at(RECORD_HEADER);
        let mut id = [0u8; 32];
        id.copy_from_slice(&header[..32]);
        let mut length = [0u8; 4];
        length.copy_from_slice(&header[32..]);
        let length = u32::from_be_bytes(length);
        if u64::from(length) > max_blob_bytes {
            return Err(BatchError::BlobTooLarge {
                limit: max_blob_bytes,
            });
        }
        let length = usize::try_from(length).map_err(|_| BatchError::Truncated)?;
        if tail.len() < length {
            return Err(BatchError::Truncated);
        }
        let (envelope, tail) = tail.split_at(length);
        if !seen.insert(id) {
            return Err(BatchError::DuplicateId);
        }
        records.push((id, envelope));
        rest = tail;
    }
    if records.is_empty() {
        return Err(BatchError::Empty);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn round_trip_and_golden_bytes() {
        let mut body = Vec::new();
        push_record(&mut body, &[1; 32], b"abc").unwrap();
        push_record(&mut body, &[2; 32], b"").unwrap();
        let mut expected = vec![1u8; 32];
        expected.extend_from_slice(&[0, 0, 0, 3]);
        expected.extend_from_slice(b"abc");
        expected.extend_from_slice(&[2u8; 32]);
        expected.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(body, expected);
        assert_eq!(body.len(), record_len(3) + record_len(0));
        let records = decode(&body, 10).unwrap();
        assert_eq!(records, vec![([1; 32], &b"abc"[..]), ([2; 32], &b""[..])]);
    }

    #[test]
    fn bad_framing_is_a_typed_error() {
        assert_eq!(decode(&[], 10), Err(BatchError::Empty));
        let mut body = Vec::new();
        push_record(&mut body, &[1; 32], b"abcdef").unwrap();
        for cut in 1..body.len() {
            assert_eq!(
                decode(&body[..cut], 10),
                Err(BatchError::Truncated),
                "{cut}"
            );
        }
        assert_eq!(decode(&body, 5), Err(BatchError::BlobTooLarge { limit: 5 }));
        let mut twice = body.clone();
        twice.extend_from_slice(&body);
        assert_eq!(decode(&twice, 10), Err(BatchError::DuplicateId));
        let mut many = Vec::new();
        for n in 0..=MAX_BLOBS_PER_BATCH {
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(n as u64).to_be_bytes());
            push_record(&mut many, &id, b"").unwrap();
        }
        assert_eq!(decode(&many, 10), Err(BatchError::TooManyBlobs));
        // A huge declared length never allocates or panics.
        let mut huge = vec![7u8; 32];
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(decode(&huge, u64::MAX), Err(BatchError::Truncated));
    }
}
