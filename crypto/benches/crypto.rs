//! Criterion benchmarks of the blob layer (FORMAT.md sections 4 and 5): envelope seal/open,
//! FastCDC chunking, convergent chunk keys and the whole chunk → key → seal pipeline.
//!
//! Every benchmark reports `Throughput::Bytes` of *plaintext*, so the figures compare directly with
//! a file size. Sample sizes and times are chosen so that the whole run stays within a few minutes
//! on two shared cores; the large benchmarks use flat sampling (one iteration per sample).
//!
//! ```text
//! cargo bench -p coffre-crypto --bench crypto
//! ```

use std::hint::black_box;
use std::io::{Cursor, Read};
use std::time::Duration;

use coffre_crypto::chunker::{Chunker, MAX_CHUNK_SIZE};
use coffre_crypto::chunker::{ChunkerSeed, ConvergenceKey, chunk_key, seal_chunk};
use coffre_crypto::envelope::{self, BlobKind};
use coffre_crypto::keys::{BlobKey, EpochKey, SpaceId};
use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};

const MIB: usize = 1024 * 1024;

/// SplitMix64: a fast, deterministic, statistically decent generator (not cryptographic; the
/// benchmarks only need data on which FastCDC finds natural boundaries and nothing compresses).
const fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A pseudo-random byte stream of a fixed length, generated on the fly: byte `i` is byte `i % 8`
/// of `splitmix64(seed + i / 8)`, so the stream is the same whatever sizes the reader asks for, and
/// it never holds more than the caller's buffer.
#[derive(Debug, Clone)]
struct PseudoRandom {
    seed: u64,
    position: u64,
    len: u64,
}

impl PseudoRandom {
    const fn new(seed: u64, len: u64) -> Self {
        PseudoRandom {
            seed,
            position: 0,
            len,
        }
    }

    const fn word(&self, index: u64) -> [u8; 8] {
        splitmix64(self.seed.wrapping_add(index)).to_le_bytes()
    }
}

impl Read for PseudoRandom {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.len - self.position;
        let n = usize::try_from(left).map_or(buf.len(), |left| left.min(buf.len()));
        let mut out = &mut buf[..n];
        // Unaligned head: finish the current word.
        let skip = (self.position % 8) as usize;
        if skip != 0 {
            let word = self.word(self.position / 8);
            let take = (8 - skip).min(out.len());
            out[..take].copy_from_slice(&word[skip..skip + take]);
            out = &mut out[take..];
        }
        let mut index = (self.position + (n - out.len()) as u64) / 8;
        let mut words = out.chunks_exact_mut(8);
        for slot in &mut words {
            slot.copy_from_slice(&self.word(index));
            index += 1;
        }
        let tail = words.into_remainder();
        let tail_len = tail.len();
        tail.copy_from_slice(&self.word(index)[..tail_len]);
        self.position += n as u64;
        Ok(n)
    }
}

fn pseudo_random_vec(seed: u64, len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    PseudoRandom::new(seed, len as u64)
        .read_exact(&mut data)
        .expect("the generator yields exactly `len` bytes and never fails");
    data
}

fn keys() -> (ChunkerSeed, ConvergenceKey) {
    let space = SpaceId::from_bytes([0x5a; 32]);
    let epoch_key = EpochKey::from_bytes([0xe9; 32]);
    (
        ChunkerSeed::derive(&space, 1, &epoch_key),
        ConvergenceKey::derive(&space, 1, &epoch_key),
    )
}

fn envelope_benches(c: &mut Criterion) {
    let key = BlobKey::from_bytes([0x42; 32]);
    let content = pseudo_random_vec(1, MIB);
    let sealed = envelope::seal(&key, BlobKind::Chunk, &content)
        .expect("1 MiB is below MAX_CONTENT_LEN, so sealing succeeds");

    let mut group = c.benchmark_group("envelope");
    group
        .throughput(Throughput::Bytes(MIB as u64))
        .sample_size(30)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("seal_1MiB", |b| {
        b.iter(|| {
            envelope::seal(&key, BlobKind::Chunk, black_box(&content))
                .expect("1 MiB is below MAX_CONTENT_LEN, so sealing succeeds")
        });
    });
    // Commitment check, XChaCha20-Poly1305 decryption, kind and canonical-padding checks.
    group.bench_function("open_1MiB", |b| {
        b.iter(|| {
            envelope::open(&key, BlobKind::Chunk, black_box(sealed.as_bytes()))
                .expect("the envelope was sealed under this key and kind, so it opens")
        });
    });
    // The same plus the BLAKE3 blob-id check a downloader does first.
    group.bench_function("open_verified_1MiB", |b| {
        b.iter(|| {
            envelope::open_verified(
                &sealed.id(),
                &key,
                BlobKind::Chunk,
                black_box(sealed.as_bytes()),
            )
            .expect("the envelope hashes to its own id and opens under its key")
        });
    });
    group.finish();
}

fn chunker_benches(c: &mut Criterion) {
    let (seed, convergence) = keys();

    let mut group = c.benchmark_group("chunker");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let block = pseudo_random_vec(2, MIB);
    group
        .throughput(Throughput::Bytes(MIB as u64))
        .sample_size(30);
    group.bench_function("chunk_key_1MiB", |b| {
        b.iter(|| chunk_key(&convergence, black_box(&block)));
    });

    const CHUNKER_INPUT: usize = 64 * MIB;
    let input = pseudo_random_vec(3, CHUNKER_INPUT);
    let chunk_count = Chunker::new(Cursor::new(&input[..]), &seed).count();
    println!(
        "chunker: 64 MiB of pseudo-random data -> {chunk_count} chunks (mean {:.0} KiB)",
        CHUNKER_INPUT as f64 / chunk_count as f64 / 1024.0
    );
    group
        .throughput(Throughput::Bytes(CHUNKER_INPUT as u64))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("fastcdc_64MiB", |b| {
        b.iter(|| {
            let mut total = 0usize;
            for chunk in Chunker::new(Cursor::new(black_box(&input[..])), &seed) {
                let chunk = chunk.expect("reading from an in-memory Cursor cannot fail");
                total += chunk.data.len();
            }
            assert_eq!(total, CHUNKER_INPUT, "the chunks cover the input exactly");
            total
        });
    });
    group.finish();
}

fn pipeline_benches(c: &mut Criterion) {
    const STREAM_LEN: u64 = 256 * MIB as u64;
    let (seed, convergence) = keys();

    let mut group = c.benchmark_group("pipeline");
    group
        .throughput(Throughput::Bytes(STREAM_LEN))
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    // Chunk a 256 MiB stream generated on the fly (memory stays at the chunker's 4 MiB buffer
    // plus one chunk and one envelope), derive each convergent key and seal every chunk.
    group.bench_function("chunk_seal_256MiB", |b| {
        b.iter(|| {
            let stream = PseudoRandom::new(4, STREAM_LEN);
            let mut sealed_bytes = 0usize;
            for chunk in Chunker::new(stream, &seed) {
                let chunk = chunk.expect("the generator never fails to read");
                debug_assert!(chunk.data.len() <= MAX_CHUNK_SIZE);
                let (reference, sealed) = seal_chunk(&convergence, &chunk.data)
                    .expect("chunks are 1..=4 MiB, inside seal_chunk's range");
                black_box(&reference);
                sealed_bytes += sealed.as_bytes().len();
            }
            sealed_bytes
        });
    });
    group.finish();
}

criterion_group!(benches, envelope_benches, chunker_benches, pipeline_benches);
criterion_main!(benches);
