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
//! - **bounded memory**: [`Chunker`] reads through one buffer of [`STREAM_BUFFER`] bytes and holds
//!   at most one chunk besides it; a file is never held whole.
//!
//! The parameters below are **dedup-fixed**: changing them breaks deduplication with earlier data,
//! not decoding.

use core::fmt;
use std::io::Read;

use fastcdc::v2020::{FastCDC, Normalization};
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

/// The streaming chunker's read buffer: three maximum chunks. A cut needs [`MAX_CHUNK_SIZE`]
/// bytes ahead (or the end of the input), so the buffer is refilled when fewer remain; the bytes
/// still unconsumed then move to its front, at most one maximum chunk per two or more consumed.
pub const STREAM_BUFFER: usize = 3 * MAX_CHUNK_SIZE;

/// Splits a reader into content-defined chunks, streaming: an iterator over `Result<Chunk>`.
///
/// The cuts are those of [`chunk_slice`] over the whole input (same algorithm, parameters and
/// seed). Memory: one [`STREAM_BUFFER`] plus the chunk returned. Each byte is copied once, into
/// its chunk (`fastcdc`'s `StreamCDC` also moved the rest of its buffer after every chunk).
///
/// After the first error the iterator ends. Read errors are [`Error::Io`]. An empty input yields
/// no chunks.
pub struct Chunker<R: Read> {
    reader: R,
    seed: u64,
    buffer: Vec<u8>,
    /// `buffer[start..end]` is read and not yet chunked; it begins at `offset` in the input.
    start: usize,
    end: usize,
    offset: u64,
    eof: bool,
    failed: bool,
}

impl<R: Read> Chunker<R> {
    /// A chunker over `reader` with the gear table of `seed`.
    pub fn new(reader: R, seed: &ChunkerSeed) -> Self {
        Chunker {
            reader,
            seed: seed.expose_secret(),
            buffer: Vec::new(),
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            failed: false,
        }
    }

    /// Makes `MAX_CHUNK_SIZE` bytes available, or everything up to the end of the input.
    fn fill(&mut self) -> std::io::Result<()> {
        if self.eof || self.end - self.start >= MAX_CHUNK_SIZE {
            return Ok(());
        }
        if self.buffer.is_empty() {
            self.buffer = vec![0; STREAM_BUFFER];
        }
        self.buffer.copy_within(self.start..self.end, 0);
        self.end -= self.start;
        self.start = 0;
        while !self.eof && self.end < self.buffer.len() {
            match self.reader.read(&mut self.buffer[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

impl<R: Read> fmt::Debug for Chunker<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunker")
            .field("offset", &self.offset)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl<R: Read> Drop for Chunker<R> {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

impl<R: Read> Iterator for Chunker<R> {
    type Item = Result<Chunk>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if let Err(error) = self.fill() {
            self.failed = true;
            return Some(Err(Error::Io(error)));
        }
        let available = &self.buffer[self.start..self.end];
        if available.is_empty() {
            return None;
        }
        // With MAX_CHUNK_SIZE bytes ahead (or the input's end) the first cut of the available
        // bytes is the cut `chunk_slice` makes at this offset of the whole input.
        let (_, length) = FastCDC::with_level_and_seed(
            available,
            MIN_CHUNK_SIZE,
            AVG_CHUNK_SIZE,
            MAX_CHUNK_SIZE,
            Normalization::Level1,
            self.seed,
        )
        .cut(0, available.len());
        let chunk = Chunk {
            offset: self.offset,
            data: available[..length].to_vec(),
        };
        self.start += length;
        self.offset += length as u64;
        Some(Ok(chunk))
    }
}

/// Splits bytes already in memory into the **same** chunks as [`Chunker`] (same algorithm,
/// parameters and seed), borrowing them: no read buffer. [`Chunker`] allocates and zeroes a
/// [`STREAM_BUFFER`] per input, which would dominate the cost of chunking many small files;
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

    /// Hands out at most `step` bytes per read, and an `Interrupted` error before every third.
    struct TrickleReader<'a> {
        data: &'a [u8],
        step: usize,
        reads: usize,
    }

    impl Read for TrickleReader<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.reads += 1;
            if self.reads.is_multiple_of(3) {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let length = buf.len().min(self.step).min(self.data.len());
            buf[..length].copy_from_slice(&self.data[..length]);
            self.data = &self.data[length..];
            Ok(length)
        }
    }

    /// `length` bytes of xorshift64 output from `state` (chunkable data without a dependency).
    fn pseudo_random(mut state: u64, length: usize) -> Vec<u8> {
        (0..length)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    }

    #[test]
    fn short_and_interrupted_reads_give_the_same_cuts() {
        let seed = ChunkerSeed::derive(&space(6), 1, &EpochKey::from_bytes([6; 32]));
        // Several refills of the stream buffer, ending off any block boundary.
        let data = pseudo_random(0x2545_f491_4f6c_dd1d, 3 * STREAM_BUFFER + 12_345);
        let expected: Vec<&[u8]> = chunk_slice(&data, &seed).collect();
        assert!(expected.len() > 20);
        for step in [MAX_CHUNK_SIZE - 1, 777_777, STREAM_BUFFER] {
            let reader = TrickleReader {
                data: &data,
                step,
                reads: 0,
            };
            let mut offset = 0u64;
            let mut count = 0;
            for (chunk, expected) in Chunker::new(reader, &seed).zip(&expected) {
                let chunk = chunk.unwrap();
                assert_eq!(chunk.offset, offset, "step {step}");
                assert_eq!(&chunk.data[..], *expected, "step {step}, offset {offset}");
                offset += chunk.data.len() as u64;
                count += 1;
            }
            assert_eq!((count, offset), (expected.len(), data.len() as u64));
        }
    }

    #[test]
    fn chunk_slice_cuts_exactly_like_the_streaming_chunker() {
        let seed = ChunkerSeed::derive(&space(4), 1, &EpochKey::from_bytes([4; 32]));
        let data = pseudo_random(0x9e37_79b9_7f4a_7c15, 9 * 1024 * 1024 + 17);
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
