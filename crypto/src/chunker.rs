//! Content-defined chunking and convergent chunk keys (FORMAT.md section 5).
//!
//! ```text
//! seed            = first 8 bytes (u64) of KDF(CTX_CHUNKER_SEED, EPOCH(space_id, epoch, EK)); 1 if 0
//! convergence_key = KDF(CTX_CONVERGENCE, EPOCH(space_id, epoch, EK))
//! chunk_key       = MAC(convergence_key, chunk_plaintext)
//! ```
//!
//! Invariants and threats:
//!
//! - **dedup only inside one trust domain** **[T-dedup]**: both the gear seed and the convergence
//!   key are derived from the space's epoch material, so equal chunks give equal blobs inside one
//!   space and epoch and unrelated blobs anywhere else. The seed is secret: it makes boundaries
//!   depend on a key the gateway does not have (a mitigation of boundary fingerprinting; the
//!   64-bit XOR seed of `fastcdc` is not a proof against it);
//! - **one plaintext per chunk key** **[T-nonce]**: the chunk key is a MAC of the exact chunk, so
//!   the deterministic envelope nonce never meets two plaintexts;
//! - **bounded memory**: [`Chunker`] reads through one buffer of [`MAX_CHUNK_SIZE`] bytes and holds
//!   at most one chunk besides it; a file is never held whole.
//!
//! The parameters below are **dedup-fixed**: changing them breaks deduplication with earlier data,
//! not decoding.

use core::fmt;
use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization, StreamCDC};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::envelope::{self, BlobKind, MAX_CONTENT_LEN, SealedBlob};
use crate::error::{Error, Result};
use crate::kdf::{CTX_CHUNKER_SEED, CTX_CONVERGENCE, derive_epoch, mac};
use crate::keys::{BlobKey, DerivedKey, EpochKey, SpaceId};
use crate::manifest::ChunkRef;

/// FastCDC minimum chunk size: 256 KiB. **Dedup-fixed.**
pub const MIN_CHUNK_SIZE: usize = 256 * 1024;
/// FastCDC average chunk size: 1 MiB. **Dedup-fixed.**
pub const AVG_CHUNK_SIZE: usize = 1024 * 1024;
/// FastCDC maximum chunk size (and the read buffer): 4 MiB. **Dedup-fixed.**
pub const MAX_CHUNK_SIZE: usize = 4 * 1024 * 1024;

/// The secret FastCDC gear seed of one space and epoch. Zeroized on drop, redacted in `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct ChunkerSeed(u64);

impl ChunkerSeed {
    /// Derives the seed of `space` at `epoch` (FORMAT.md section 5.1). Never zero: `fastcdc`
    /// treats seed 0 as "unseeded", so 0 is replaced by 1.
    pub fn derive(space: &SpaceId, epoch: u64, epoch_key: &EpochKey) -> Self {
        let key = derive_epoch(CTX_CHUNKER_SEED, space, epoch, epoch_key);
        let mut first = [0u8; 8];
        first.copy_from_slice(&key.expose_secret()[..8]);
        let seed = u64::from_be_bytes(first);
        first.zeroize();
        ChunkerSeed(if seed == 0 { 1 } else { seed })
    }

    /// The seed value. Named so that every use is visible in review.
    pub const fn expose_secret(&self) -> u64 {
        self.0
    }
}

impl fmt::Debug for ChunkerSeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ChunkerSeed(<redacted>)")
    }
}

/// The convergence key of one space and epoch: chunk keys are a MAC under it. Zeroized on drop,
/// redacted in `Debug`, no `Clone`.
#[derive(Debug)]
pub struct ConvergenceKey(DerivedKey);

impl ConvergenceKey {
    /// Derives the convergence key of `space` at `epoch` (FORMAT.md section 5.2).
    pub fn derive(space: &SpaceId, epoch: u64, epoch_key: &EpochKey) -> Self {
        ConvergenceKey(derive_epoch(CTX_CONVERGENCE, space, epoch, epoch_key))
    }
}

/// `MAC(convergence_key, plaintext)`: the blob key of a chunk.
pub fn chunk_key(convergence_key: &ConvergenceKey, plaintext: &[u8]) -> BlobKey {
    BlobKey::from_bytes(mac(&convergence_key.0, plaintext))
}

/// Seals one chunk under its convergent key and returns the manifest entry and the envelope.
///
/// Fails with [`Error::InvalidInput`] for an empty chunk or one longer than 16 MiB (a manifest
/// could not list it).
pub fn seal_chunk(
    convergence_key: &ConvergenceKey,
    plaintext: &[u8],
) -> Result<(ChunkRef, SealedBlob)> {
    if plaintext.is_empty() || plaintext.len() > MAX_CONTENT_LEN {
        return Err(Error::InvalidInput("chunk length out of range"));
    }
    let length = u32::try_from(plaintext.len())
        .map_err(|_| Error::InvalidInput("chunk length out of range"))?;
    let key = chunk_key(convergence_key, plaintext);
    let sealed = envelope::seal(&key, BlobKind::Chunk, plaintext)?;
    let reference = ChunkRef {
        id: sealed.id(),
        key,
        length,
    };
    Ok((reference, sealed))
}

/// One chunk of a file: where it starts and its bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chunk {
    /// Offset of the first byte in the file.
    pub offset: u64,
    /// The chunk's bytes: `MIN_CHUNK_SIZE..=MAX_CHUNK_SIZE` long, except the last chunk, which
    /// may be shorter. Never empty.
    pub data: Vec<u8>,
}

/// Splits a reader into content-defined chunks, streaming: an iterator over `Result<Chunk>`.
///
/// After the first error the iterator ends. Read errors are [`Error::Io`]. An empty input yields
/// no chunks.
pub struct Chunker<R: Read> {
    inner: StreamCDC<R>,
    failed: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader` with the gear table of `seed`.
    pub fn new(reader: R, seed: &ChunkerSeed) -> Self {
        Chunker {
            inner: StreamCDC::with_level_and_seed(
                reader,
                MIN_CHUNK_SIZE,
                AVG_CHUNK_SIZE,
                MAX_CHUNK_SIZE,
                Normalization::Level1,
                seed.expose_secret(),
            ),
            failed: false,
        }
    }
}

impl<R: Read> fmt::Debug for Chunker<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker")
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.inner.next()? {
            Ok(chunk) => Some(Ok(Chunk {
                offset: chunk.offset,
                data: chunk.data,
            })),
            Err(error) => {
                self.failed = true;
                Some(Err(Error::Io(error.into())))
            }
        }
    }
}

/// Splits bytes already in memory into the **same** chunks as [`Chunker`] (same algorithm,
/// parameters and seed), borrowing them: no read buffer. [`Chunker`] allocates and zeroes a
/// [`MAX_CHUNK_SIZE`] buffer per input, which dominates the cost of chunking many small files;
/// callers that hold a small file whole use this instead. An empty input yields no chunks.
pub fn chunk_slice<'a>(data: &'a [u8], seed: &ChunkerSeed) -> impl Iterator<Item = &'a [u8]> {
    FastCDC::with_level_and_seed(
        data,
        MIN_CHUNK_SIZE,
        AVG_CHUNK_SIZE,
        MAX_CHUNK_SIZE,
        Normalization::Level1,
        seed.expose_secret(),
    )
    .map(move |chunk| &data[chunk.offset..chunk.offset + chunk.length])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space(byte: u8) -> SpaceId {
        SpaceId::from_bytes([byte; 32])
    }

    #[test]
    fn keys_are_scoped_to_space_and_epoch() {
        let ek = EpochKey::from_bytes([9; 32]);
        let a = ConvergenceKey::derive(&space(1), 1, &ek);
        let a_again = ConvergenceKey::derive(&space(1), 1, &ek);
        let b = ConvergenceKey::derive(&space(2), 1, &ek);
        let a2 = ConvergenceKey::derive(&space(1), 2, &ek);
        let data = b"same chunk";
        assert_eq!(chunk_key(&a, data), chunk_key(&a_again, data));
        assert_ne!(chunk_key(&a, data), chunk_key(&b, data));
        assert_ne!(chunk_key(&a, data), chunk_key(&a2, data));
        assert_ne!(chunk_key(&a, data), chunk_key(&a, b"other chunk"));
        let seed_a = ChunkerSeed::derive(&space(1), 1, &ek);
        let seed_b = ChunkerSeed::derive(&space(2), 1, &ek);
        assert_ne!(seed_a.expose_secret(), seed_b.expose_secret());
        assert_ne!(seed_a.expose_secret(), 0);
        assert_eq!(format!("{seed_a:?}"), "ChunkerSeed(<redacted>)");
        assert!(format!("{a:?}").contains("redacted"));
    }

    #[test]
    fn seal_chunk_is_convergent_and_opens() {
        let key = ConvergenceKey::derive(&space(3), 1, &EpochKey::from_bytes([1; 32]));
        let (reference, sealed) = seal_chunk(&key, b"chunk bytes").unwrap();
        let (again, sealed_again) = seal_chunk(&key, b"chunk bytes").unwrap();
        assert_eq!(sealed, sealed_again);
        assert_eq!(reference, again);
        assert_eq!(reference.length, 11);
        let opened = envelope::open_verified(
            &reference.id,
            &reference.key,
            BlobKind::Chunk,
            sealed.as_bytes(),
        )
        .unwrap();
        assert_eq!(opened, b"chunk bytes");
        assert!(seal_chunk(&key, b"").is_err());
    }

    struct FailingReader;

    impl Read for FailingReader {
        fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk on fire"))
        }
    }

    #[test]
    fn read_errors_end_the_iteration() {
        let seed = ChunkerSeed::derive(&space(4), 1, &EpochKey::from_bytes([2; 32]));
        let mut chunker = Chunker::new(FailingReader, &seed);
        assert!(matches!(chunker.next(), Some(Err(Error::Io(_)))));
        assert!(chunker.next().is_none());
        assert!(Chunker::new(&[][..], &seed).next().is_none());
    }

    #[test]
    fn small_input_is_one_chunk() {
        let seed = ChunkerSeed::derive(&space(5), 1, &EpochKey::from_bytes([3; 32]));
        let data = vec![7u8; 1000];
        let chunks: Vec<Chunk> = Chunker::new(&data[..], &seed)
            .collect::<Result<_>>()
            .unwrap();
        assert_eq!(
            chunks,
            vec![Chunk {
                offset: 0,
                data: data.clone()
            }]
        );
    }

    #[test]
    fn chunk_slice_cuts_exactly_like_the_streaming_chunker() {
        let seed = ChunkerSeed::derive(&space(4), 1, &EpochKey::from_bytes([4; 32]));
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let data: Vec<u8> = (0..9 * 1024 * 1024 + 17)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        for len in [
            0,
            1,
            100_000,
            MIN_CHUNK_SIZE,
            MIN_CHUNK_SIZE + 1,
            3 * 1024 * 1024,
            data.len(),
        ] {
            let input = &data[..len];
            let streamed: Vec<Vec<u8>> = Chunker::new(input, &seed)
                .map(|chunk| chunk.unwrap().data)
                .collect();
            let sliced: Vec<Vec<u8>> = chunk_slice(input, &seed).map(<[u8]>::to_vec).collect();
            assert_eq!(streamed, sliced, "length {len}");
        }
    }
}
