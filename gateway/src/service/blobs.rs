//! Blob storage rules: streaming upload with hash check and quota, verified streaming download,
//! and pruning.
//!
//! Invariants:
//! - **Nothing unverified is stored.** An upload is streamed into a [`crate::store::BlobWriter`]
//!   while hashed with BLAKE3; if the hash is not the blob id, the writer is dropped (aborted) and
//!   nothing becomes visible (422 `hash_mismatch`).
//! - **Nothing is acknowledged before it is durable**: quota reserved, body committed (fsynced),
//!   then the index entry written (fsynced), then 201. A failure after the reservation releases it.
//! - **A corrupt blob is never served as valid.** Downloads are hashed while streamed and the last
//!   chunk is held back until the hash has been checked; on a mismatch the body ends with an error
//!   instead, so the client sees a truncated response (its `Content-Length` is not met) and the
//!   gateway logs the corruption.
//! - **Memory per request is small**: at most [`CHANNEL_DEPTH`] pieces in flight each way
//!   ([`FEED_PIECE`] up, [`READ_CHUNK`] down).
//! - **Prune order** (index, quota, then body): a crash between the steps leaves at worst a body
//!   without an index entry — never served (reads go through the index), reported by `check` as an
//!   orphan, and re-indexed by a re-upload. The other order could leave an index entry without a
//!   body, which `missing` would report as present, so clients would never re-upload it.
//! - Uploads and prunes of one space are mutually exclusive (a per-space read/write lock), so a
//!   prune cannot delete a blob between an upload's "already stored" check and its 200.

use std::collections::HashMap;
use std::io::Read as _;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use coffre_crypto::keys::{BlobId, SpaceId};
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock, mpsc};

use crate::error::{Error, Result};
use crate::store::{BlobStore, BlobWriter};

/// Frames buffered between the network and the blocking store thread, each way.
pub const CHANNEL_DEPTH: usize = 4;
/// Size of the chunks a download is read in.
pub const READ_CHUNK: usize = 64 * 1024;
/// Upload bytes are handed to the writer thread in pieces of up to this size (plus one network
/// frame): with [`CHANNEL_DEPTH`], at most about 5 × 128 KiB of an upload is in memory.
pub const FEED_PIECE: usize = 128 * 1024;

/// Per-space locks: uploads share, prunes exclude.
#[derive(Debug, Default)]
pub struct SpaceLocks {
    locks: Mutex<HashMap<SpaceId, Arc<RwLock<()>>>>,
}

impl SpaceLocks {
    fn lock_for(&self, space: &SpaceId) -> Arc<RwLock<()>> {
        let mut locks = self
            .locks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if locks.len() > 10_000 {
            // Drop locks nobody holds; they are recreated on demand.
            locks.retain(|_, lock| Arc::strong_count(lock) > 1);
        }
        Arc::clone(locks.entry(*space).or_default())
    }

    /// Shared access for an upload.
    pub async fn upload(&self, space: &SpaceId) -> OwnedRwLockReadGuard<()> {
        self.lock_for(space).read_owned().await
    }

    /// Exclusive access for a prune.
    pub async fn prune(&self, space: &SpaceId) -> OwnedRwLockWriteGuard<()> {
        self.lock_for(space).write_owned().await
    }
}

/// One message to the upload thread.
#[derive(Debug)]
pub enum Feed {
    /// More bytes.
    Data(Bytes),
    /// The body ended normally.
    End,
}

/// A body written and hash-checked but not yet committed.
pub struct Written {
    /// The open writer; dropping it aborts.
    pub writer: Box<dyn BlobWriter>,
    /// Bytes written.
    pub size: u64,
}

impl core::fmt::Debug for Written {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Written({} bytes)", self.size)
    }
}

/// The upload thread: writes what arrives on `feed` while hashing; checks the hash at the end.
/// Runs on the blocking pool. If the feed closes without [`Feed::End`], the upload is aborted.
pub fn write_blob(
    store: &dyn BlobStore,
    space: &SpaceId,
    blob: &BlobId,
    mut feed: mpsc::Receiver<Feed>,
) -> Result<Written> {
    let mut writer = store.begin(space, blob)?;
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        match feed.blocking_recv() {
            Some(Feed::Data(bytes)) => {
                hasher.update(&bytes);
                writer.write(&bytes)?;
                size = size.saturating_add(bytes.len() as u64);
            }
            Some(Feed::End) => break,
            None => return Err(Error::BadRequest("the upload was interrupted".into())),
        }
    }
    if hasher.finalize().as_bytes() != blob.as_bytes() {
        return Err(Error::HashMismatch);
    }
    Ok(Written { writer, size })
}

/// The download thread: reads the body in chunks, hashes it, and sends each chunk only once the
/// next one has been read, and the last only once the whole hash and size have been checked.
pub fn stream_blob(
    mut body: Box<dyn std::io::Read + Send>,
    expected_size: u64,
    blob: BlobId,
    space: SpaceId,
    out: mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    let mut pending: Option<Bytes> = None;
    loop {
        // Read straight into the chunk that is sent (no copy): `read_to_end` fills the spare
        // capacity, up to `READ_CHUNK` bytes.
        let mut chunk = Vec::with_capacity(READ_CHUNK);
        let read = match body
            .by_ref()
            .take(READ_CHUNK as u64)
            .read_to_end(&mut chunk)
        {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) => {
                tracing::error!(%space, %blob, error = %error, "reading a blob failed");
                let _ = out.blocking_send(Err(error));
                return;
            }
        };
        let chunk = Bytes::from(chunk);
        hasher.update(&chunk);
        size = size.saturating_add(read as u64);
        if let Some(previous) = pending.replace(chunk)
            && out.blocking_send(Ok(previous)).is_err()
        {
            return; // The client went away.
        }
    }
    if size != expected_size || hasher.finalize().as_bytes() != blob.as_bytes() {
        tracing::error!(%space, %blob, size, expected_size, "stored blob is corrupt; refusing to serve it");
        let _ = out.blocking_send(Err(std::io::Error::other("stored blob is corrupt")));
        return;
    }
    if let Some(last) = pending {
        let _ = out.blocking_send(Ok(last));
    }
}
