//! File manifests `CFMF` (FORMAT.md section 6), sealed as envelopes of kind
//! [`BlobKind::Manifest`].
//!
//! ```text
//! "CFMF" ‖ 0x01 ‖ file_size (u64) ‖ list32< chunk_id (b32) ‖ chunk_key (b32) ‖ length (u32) >
//! ```
//!
//! Invariants and threats:
//!
//! - **order, count and size are authenticated** **[T-chunk-swap]** **[T-truncation]**: the
//!   manifest lists chunk ids (each `H(envelope)`) in file order, every length is in
//!   `1..=`[`MAX_CHUNK_LEN`], and the lengths sum to `file_size`; [`Manifest::decode`] and
//!   [`Manifest::encode`] both enforce every rule, so no manifest that breaks one is ever produced
//!   or accepted. Dropping or duplicating a chunk breaks the sum, swapping two changes the ids
//!   the reader follows, and the manifest itself is reached through a hash link;
//! - **keys stay secret**: a manifest holds chunk keys, so its encoding is returned in a
//!   [`Zeroizing`] buffer allocated once at its final size, and its own key is fresh random
//!   ([`Manifest::seal`]);
//! - **untrusted input never over-allocates**: the chunk count is checked against both
//!   [`MAX_CHUNKS`] and the remaining input before anything is allocated.

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::envelope::{self, BlobKind, BlobRef, SealedBlob};
use crate::error::{Error, Result};
use crate::keys::{BlobId, BlobKey};

/// The manifest magic. **Format-fixed.**
pub const MAGIC: [u8; 4] = *b"CFMF";
/// The largest chunk length a manifest may list: 16 MiB. **Format-fixed.**
pub const MAX_CHUNK_LEN: u32 = 16 * 1024 * 1024;
/// The most chunks a manifest may list (they fill 16 MiB). **Format-fixed.**
pub const MAX_CHUNKS: usize = 246_723;
/// Encoded length of one chunk entry: id, key, length.
const CHUNK_ENTRY_LEN: usize = 32 + 32 + 4;
/// Encoded length of the fixed part: header, `file_size`, count.
const FIXED_LEN: usize = 5 + 8 + 4;

/// One chunk of a file, as listed in its manifest.
///
/// No `Clone`: copying a key is explicit ([`ChunkRef::duplicate`]). `Debug` redacts the key.
#[derive(Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// The chunk's blob id.
    pub id: BlobId,
    /// The chunk's blob key (convergent, see [`crate::chunker::chunk_key`]).
    pub key: BlobKey,
    /// The chunk's plaintext length, `1..=`[`MAX_CHUNK_LEN`].
    pub length: u32,
}

impl ChunkRef {
    /// An explicit copy, key included.
    pub fn duplicate(&self) -> Self {
        ChunkRef {
            id: self.id,
            key: self.key.duplicate(),
            length: self.length,
        }
    }
}

/// A file manifest: the file's size and its chunks in order.
#[derive(Debug, PartialEq, Eq)]
pub struct Manifest {
    /// The file's size in bytes: the sum of the chunk lengths.
    pub file_size: u64,
    /// The chunks, in the order of the bytes in the file. Empty for an empty file.
    pub chunks: Vec<ChunkRef>,
}

impl Manifest {
    /// A manifest for `chunks`, with `file_size` computed as their sum. Fails with
    /// [`Error::InvalidInput`] if a rule of FORMAT.md section 6 is broken.
    pub fn from_chunks(chunks: Vec<ChunkRef>) -> Result<Self> {
        let file_size = chunks
            .iter()
            .map(|chunk| u64::from(chunk.length))
            .sum::<u64>();
        let manifest = Manifest { file_size, chunks };
        manifest.check().map_err(Error::InvalidInput)?;
        Ok(manifest)
    }

    /// Every rule of FORMAT.md section 6, with the reason of the first one broken.
    fn check(&self) -> core::result::Result<(), &'static str> {
        if self.chunks.len() > MAX_CHUNKS {
            return Err("too many chunks");
        }
        let mut sum: u64 = 0;
        for chunk in &self.chunks {
            if chunk.length == 0 || chunk.length > MAX_CHUNK_LEN {
                return Err("chunk length out of range");
            }
            // Cannot overflow: at most MAX_CHUNKS lengths of at most 2^24 each.
            sum += u64::from(chunk.length);
        }
        if sum != self.file_size {
            return Err("chunk lengths do not sum to the file size");
        }
        Ok(())
    }

    /// The canonical encoding, in a buffer that is zeroized on drop (it holds chunk keys).
    /// Fails with [`Error::InvalidInput`] if a rule is broken.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        self.check().map_err(Error::InvalidInput)?;
        let len = FIXED_LEN + CHUNK_ENTRY_LEN * self.chunks.len();
        let mut writer = Writer::with_header_capacity(&MAGIC, len);
        writer.u64(self.file_size);
        writer.count32(self.chunks.len(), MAX_CHUNKS)?;
        for chunk in &self.chunks {
            writer.raw(chunk.id.as_bytes());
            writer.raw(chunk.key.expose_secret());
            writer.u32(chunk.length);
        }
        Ok(Zeroizing::new(writer.into_vec()))
    }

    /// Decodes untrusted bytes, enforcing every rule. Failures are [`Error::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, &MAGIC, "manifest")?;
        let file_size = reader.u64()?;
        let count = reader.count32(MAX_CHUNKS, CHUNK_ENTRY_LEN)?;
        let mut chunks = Vec::with_capacity(count);
        for _ in 0..count {
            let id = BlobId::from_bytes(reader.b32()?);
            let key = BlobKey::from_bytes(reader.b32()?);
            let length = reader.u32()?;
            chunks.push(ChunkRef { id, key, length });
        }
        reader.finish()?;
        let manifest = Manifest { file_size, chunks };
        manifest
            .check()
            .map_err(|reason| Error::malformed("manifest", reason))?;
        Ok(manifest)
    }

    /// Seals the manifest under a fresh random key; returns the reference its parent directory
    /// entry stores, and the envelope.
    pub fn seal(&self) -> Result<(BlobRef, SealedBlob)> {
        envelope::seal_fresh(BlobKind::Manifest, &self.encode()?)
    }

    /// Checks the envelope against `blob.id`, opens it as a manifest and decodes it.
    pub fn open(blob: &BlobRef, envelope_bytes: &[u8]) -> Result<Self> {
        let content = Zeroizing::new(envelope::open_verified(
            &blob.id,
            &blob.key,
            BlobKind::Manifest,
            envelope_bytes,
        )?);
        Manifest::decode(&content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunk(byte: u8, length: u32) -> ChunkRef {
        ChunkRef {
            id: BlobId::from_bytes([byte; 32]),
            key: BlobKey::from_bytes([byte ^ 0xff; 32]),
            length,
        }
    }

    #[test]
    fn round_trip_and_layout() {
        let manifest = Manifest::from_chunks(vec![chunk(1, 10), chunk(2, 5)]).unwrap();
        assert_eq!(manifest.file_size, 15);
        let bytes = manifest.encode().unwrap();
        assert_eq!(bytes.len(), FIXED_LEN + 2 * CHUNK_ENTRY_LEN);
        assert_eq!(&bytes[..5], b"CFMF\x01");
        assert_eq!(&bytes[5..13], &15u64.to_be_bytes());
        assert_eq!(&bytes[13..17], &2u32.to_be_bytes());
        assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);

        let (reference, sealed) = manifest.seal().unwrap();
        assert_eq!(
            Manifest::open(&reference, sealed.as_bytes()).unwrap(),
            manifest
        );
        let empty = Manifest::from_chunks(Vec::new()).unwrap();
        assert_eq!(Manifest::decode(&empty.encode().unwrap()).unwrap(), empty);
    }

    #[test]
    fn rules_are_enforced_both_ways() {
        assert!(Manifest::from_chunks(vec![chunk(1, 0)]).is_err());
        assert!(Manifest::from_chunks(vec![chunk(1, MAX_CHUNK_LEN + 1)]).is_err());
        assert!(Manifest::from_chunks(vec![chunk(1, MAX_CHUNK_LEN)]).is_ok());
        let wrong_sum = Manifest {
            file_size: 3,
            chunks: vec![chunk(1, 2)],
        };
        assert!(matches!(wrong_sum.encode(), Err(Error::InvalidInput(_))));

        let good = Manifest::from_chunks(vec![chunk(1, 2)]).unwrap();
        let bytes = good.encode().unwrap();
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        let mut bad_sum = bytes.to_vec();
        bad_sum[12] = 3;
        let mut zero = bytes.to_vec();
        let last = zero.len() - 1;
        zero[last] = 0;
        let mut huge_count = bytes.to_vec();
        huge_count[13..17].copy_from_slice(&u32::MAX.to_be_bytes());
        for bad in [
            trailing,
            bad_sum,
            zero,
            huge_count,
            bytes[..bytes.len() - 1].to_vec(),
        ] {
            assert!(matches!(
                Manifest::decode(&bad),
                Err(Error::Malformed { .. })
            ));
        }
    }

    #[test]
    fn opened_as_the_wrong_kind_fails() {
        let manifest = Manifest::from_chunks(vec![chunk(1, 2)]).unwrap();
        let key = BlobKey::from_bytes([4; 32]);
        let sealed = envelope::seal(&key, BlobKind::DirNode, &manifest.encode().unwrap()).unwrap();
        let reference = BlobRef {
            id: sealed.id(),
            key,
        };
        assert!(matches!(
            Manifest::open(&reference, sealed.as_bytes()),
            Err(Error::Authentication)
        ));
    }
}
