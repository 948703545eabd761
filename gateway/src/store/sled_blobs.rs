//! [`SledBlobs`]: blob bodies as values of the sled tree `blobs`, keyed `space id ‖ blob id`.
//!
//! A writer buffers the body in memory, up to the blob size limit (a longer body is refused with
//! [`Error::PayloadTooLarge`]), then commits with one insert-if-absent (sled compare-and-swap) and
//! a `sled::Db::flush` (fsync), so a committed blob is durable and an existing one is never
//! replaced. A dropped writer only frees its buffer; a crash before the flush leaves the store as
//! it was.
//!
//! sled keeps recently used values in its page cache and rewrites them during compaction, so this
//! layout costs more memory and disk per stored byte than [`super::files::FileBlobs`]; the
//! `blob_backends` benchmark measures by how much. [`BlobStore::disk_bytes`] reports the size of
//! the whole sled database (sled cannot report one tree's share), metadata included.

use coffre_crypto::keys::{BlobId, SpaceId};
use sled::Tree;

use super::LogSync;
use crate::error::{Error, Result};
use crate::store::record::blob_key as key;
use crate::store::{BlobReader, BlobStore, BlobWriter};

/// Blob bodies as sled values.
#[derive(Debug, Clone)]
pub struct SledBlobs {
    db: sled::Db,
    bodies: Tree,
    max_blob_bytes: u64,
    log_sync: Option<LogSync>,
}

impl SledBlobs {
    /// Opens (creating if needed) the `blobs` tree of `db`; writers refuse bodies longer than
    /// `max_blob_bytes`.
    pub fn new(db: &sled::Db, max_blob_bytes: u64) -> Result<Self> {
        Ok(SledBlobs {
            db: db.clone(),
            bodies: db.open_tree("blobs")?,
            max_blob_bytes,
            log_sync: None,
        })
    }

    /// Makes every flush reach stable storage (see [`LogSync`]); [`super::Stores::open`] sets it.
    pub fn with_log_sync(mut self, log_sync: LogSync) -> Self {
        self.log_sync = Some(log_sync);
        self
    }

    fn flush(&self) -> Result<()> {
        super::flush_db(&self.db, self.log_sync.as_ref())
    }
}

struct SledWriter {
    key: [u8; 64],
    buffer: Vec<u8>,
    limit: u64,
    store: SledBlobs,
}

impl BlobWriter for SledWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        if (self.buffer.len() + bytes.len()) as u64 > self.limit {
            return Err(Error::PayloadTooLarge { limit: self.limit });
        }
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        let inserted = this.store.bodies.compare_and_swap(
            this.key,
            None as Option<&[u8]>,
            Some(this.buffer),
        )?;
        if inserted.is_ok() {
            this.store.flush()?;
        }
        Ok(())
    }
}

impl BlobStore for SledBlobs {
    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(SledWriter {
            key: key(space, blob),
            buffer: Vec::new(),
            limit: self.max_blob_bytes,
            store: self.clone(),
        }))
    }

    fn put_many(&self, space: &SpaceId, blobs: &[(BlobId, &[u8])]) -> Result<()> {
        let mut inserted = false;
        for (blob, bytes) in blobs {
            if bytes.len() as u64 > self.max_blob_bytes {
                return Err(Error::PayloadTooLarge {
                    limit: self.max_blob_bytes,
                });
            }
            let swapped = self.bodies.compare_and_swap(
                key(space, blob),
                None as Option<&[u8]>,
                Some(*bytes),
            )?;
            inserted |= swapped.is_ok();
        }
        // One flush for the whole batch.
        if inserted {
            self.flush()?;
        }
        Ok(())
    }

    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>> {
        Ok(self.bodies.get(key(space, blob))?.map(|value| BlobReader {
            size: value.len() as u64,
            // `IVec` is reference-counted: the reader shares sled's copy.
            body: Box::new(std::io::Cursor::new(value)),
        }))
    }

    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool> {
        Ok(self.bodies.contains_key(key(space, blob))?)
    }

    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()> {
        if self.bodies.remove(key(space, blob))?.is_some() {
            self.flush()?;
        }
        Ok(())
    }

    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()> {
        for item in self.bodies.iter() {
            let (key, value) = item?;
            if key.len() != 64 {
                return Err(Error::Corrupt("blobs key has the wrong length".into()));
            }
            let mut space = [0u8; 32];
            let mut blob = [0u8; 32];
            space.copy_from_slice(&key[..32]);
            blob.copy_from_slice(&key[32..]);
            let (space, blob) = (SpaceId::from_bytes(space), BlobId::from_bytes(blob));
            visit(&space, &blob, value.len() as u64)?;
        }
        Ok(())
    }

    fn disk_bytes(&self) -> Result<u64> {
        Ok(self.db.size_on_disk()?)
    }
}
