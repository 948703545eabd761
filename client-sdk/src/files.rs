//! Putting files and trees into a snapshot, and getting them back out.
//!
//! Upload ([`upload_reader`], [`put_file`], [`put_tree`]): the file is streamed through the
//! space's seeded FastCDC [`Chunker`](coffre_crypto::chunker::Chunker) on one blocking thread
//! and each chunk sealed (convergent key) on a second one (two cores for one large file), which
//! feeds a bounded channel; the async side asks the gateway which chunk ids it lacks
//! (`missing_blobs`, in small batches, the next batch's question overlapping the current
//! batch's uploads) and uploads only those, a few at a time. Unchanged chunks are therefore never
//! re-sent, and an interrupted upload resumes where it stopped. Memory is bounded by
//! `(2 × CHANNEL_DEPTH + 2 × UPLOAD_BATCH + UPLOAD_CONCURRENCY + 4) × MAX_CHUNK_SIZE` per file
//! (the chunker's [`STREAM_BUFFER`](coffre_crypto::chunker::STREAM_BUFFER) is three of them;
//! about 96 MiB in the worst case; the whole CLI peaks at 70-71 MiB RSS putting a 1 GiB file in
//! `bench/coffre-vs-peers.sh`), never by the file's size.
//!
//! Download ([`get_file`], [`get_tree`]): chunks are fetched a few at a time, each checked
//! against its id and opened in the buffer it arrived in
//! ([`open_verified_in_place`](coffre_crypto::envelope::open_verified_in_place)) before a byte
//! of it is written, written in order (by one blocking thread, `files/sink.rs`) to a temporary
//! file in the destination directory, which is size-checked, fsynced, and only then renamed over
//! the destination. On Linux the file is written around the page cache (`O_DIRECT`, or, where
//! the filesystem refuses it, buffered with the written pages dropped as the file grows), so
//! restoring a large file neither evicts the machine's cache nor pays for filling it. Memory: `(DOWNLOAD_CONCURRENCY + 3) × MAX_CHUNK_SIZE` at most. Any failure
//! (tampering, a dropped blob, a full disk) removes the temporary file: no partial or unverified
//! destination is ever left.
//!
//! Trees of small files ([`put_tree`], [`get_tree`] for files up to [`SMALL_FILE`]): per-file
//! requests and fsyncs, not bytes, are the cost there, so files move in groups of about
//! [`GROUP_BYTES`] (see `files/batch.rs`): one `missing` query per group, chunks and manifests in
//! blob batches (`POST …/blobs/batch`, made durable by the gateway with one group sync), chunks
//! fetched in batches (`POST …/blobs/fetch`), and downloaded files made durable together before
//! they are renamed into place (on Linux 5.8 or later one `syncfs(2)` per group of 16 files or
//! more, else fsyncs in parallel). Memory: a few groups in flight, each a few MiB.
//!
//! Local trees: symlinks are stored as symlink entries and never followed (neither on upload nor
//! download); special files (devices, sockets, FIFOs) and names that are not valid UTF-8 entry
//! names are skipped with a warning through [`Progress::on_warning`].

mod batch;
mod download;
mod sink;
mod upload;
mod walk;
pub(crate) mod window;

use std::sync::Arc;

use coffre_crypto::chunker::{ChunkerSeed, ConvergenceKey};
use coffre_crypto::envelope::SealedBlob;
use coffre_crypto::keys::{BlobId, EpochKey, SpaceId};
use coffre_protocol::MAX_IDS_PER_REQUEST;

pub use batch::{BATCH_BYTES, GROUP_BYTES, SMALL_FILE};
pub use download::{get_file, get_tree};
pub use upload::{put_file, put_reader, put_tree, upload_reader};

use crate::error::Result;
use crate::progress::Progress;
use crate::remote::Remote;

/// Blobs uploaded at once.
pub const UPLOAD_CONCURRENCY: usize = 4;
/// Chunks fetched at once for one file.
pub const DOWNLOAD_CONCURRENCY: usize = 4;
/// Files handled at once by [`put_tree`] and [`get_tree`].
pub const FILE_CONCURRENCY: usize = 4;
/// Sealed chunks waiting between the chunker thread and the uploader.
pub const CHANNEL_DEPTH: usize = 4;
/// Chunk ids asked about in one `missing_blobs` call during an upload.
pub const UPLOAD_BATCH: usize = 4;

/// The per-space, per-epoch chunking secrets (FORMAT.md section 5).
#[derive(Debug, Clone)]
pub struct ChunkKeys {
    seed: Arc<ChunkerSeed>,
    convergence: Arc<ConvergenceKey>,
}

impl ChunkKeys {
    /// The chunker seed and convergence key of `space` at `epoch`.
    pub fn derive(space: &SpaceId, epoch: u64, epoch_key: &EpochKey) -> Self {
        ChunkKeys {
            seed: Arc::new(ChunkerSeed::derive(space, epoch, epoch_key)),
            convergence: Arc::new(ConvergenceKey::derive(space, epoch, epoch_key)),
        }
    }
}

/// What a transfer did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TransferStats {
    /// Files transferred.
    pub files: u64,
    /// Plaintext bytes of those files.
    pub bytes: u64,
    /// Chunks of those files.
    pub chunks: u64,
    /// Chunks actually sent to the gateway (uploads) or fetched (downloads).
    pub chunks_sent: u64,
    /// Blobs sent (chunks, manifests and directory nodes).
    pub blobs_sent: u64,
    /// Envelope bytes sent (uploads).
    pub bytes_sent: u64,
}

impl TransferStats {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &TransferStats) {
        self.files += other.files;
        self.bytes += other.bytes;
        self.chunks += other.chunks;
        self.chunks_sent += other.chunks_sent;
        self.blobs_sent += other.blobs_sent;
        self.bytes_sent += other.bytes_sent;
    }
}

/// The ids among `ids` that the gateway lacks, asked in batches of at most
/// `MAX_IDS_PER_REQUEST`.
pub async fn missing<R: Remote>(
    remote: &R,
    space: &SpaceId,
    ids: &[BlobId],
) -> Result<std::collections::HashSet<BlobId>> {
    let mut out = std::collections::HashSet::new();
    for batch in ids.chunks(MAX_IDS_PER_REQUEST) {
        out.extend(remote.missing_blobs(space, batch).await?);
    }
    Ok(out)
}

/// Uploads freshly sealed manifests and directory nodes, small ones in blob batches (one
/// request and one gateway group sync for many), a few requests at a time; returns
/// `(blobs, bytes)` sent.
///
/// Invariant: every blob here was just sealed under 32 fresh random bytes (FORMAT.md section 4),
/// so its id is new and the gateway cannot hold it: no `missing` round trip is asked (chunks,
/// whose convergent ids may exist, go through the chunk pipeline's `missing` batches instead).
/// A duplicate within `blobs` is sent once.
pub async fn upload_blobs<R: Remote>(
    remote: &R,
    space: &SpaceId,
    blobs: Vec<SealedBlob>,
) -> Result<(u64, u64)> {
    let mut queued = std::collections::HashSet::new();
    let blobs = blobs
        .into_iter()
        .filter(|blob| queued.insert(blob.id()))
        .map(|blob| (blob.id(), blob.into_bytes()))
        .collect();
    batch::send_blobs(remote, space, blobs).await
}

/// Reports through `progress` and returns `()`: shorthand for warnings.
pub(crate) fn warn(progress: &dyn Progress, message: String) {
    progress.on_warning(&message);
}
