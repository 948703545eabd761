//! [`PackedBlobs`]: the files layout with small blobs of batches appended to pack files.
//!
//! **Why.** A tree of small files becomes as many small blobs. Stored one file each, every blob
//! costs an inode, a directory entry and their share of the syncs; on filesystems where creating
//! a file is expensive (ext4 without a journal skips inodes freed in the last minutes, scanning
//! past each of them at every creation) the gateway then spends seconds of system CPU per
//! 20,000 files. Backup tools (restic, kopia, borg) pack small objects for the same reason.
//!
//! **Layout.** Blobs of a [`BlobStore::put_many`] no longer than [`PACKED_BLOB_MAX`] are appended
//! to `<data>/packs/<16 hex digits>.pack`; everything else (streamed uploads, larger blobs) is a
//! file of [`FileBlobs`], as before, so a data directory written by an older gateway is read as it
//! is. A pack starts with [`PACK_MAGIC`] and holds records `space id (32) ‖ blob id (32) ‖ body
//! length (u32, big-endian) ‖ body`; records are self-describing, so a pack can be read (for
//! compaction) without the index. The index, sled tree `packed_blobs`, maps `space ‖ blob` to
//! `pack number (u64 BE) ‖ body offset (u64 BE) ‖ body length (u32 BE)`; a record is live exactly
//! when the index points to it.
//!
//! **Durable write.** Under the pack lock, a batch's records are written to the active pack in one
//! go and the pack is `fdatasync`ed; only then are the index entries inserted (each only if
//! absent: an existing blob is never replaced) and the index flushed to stable storage. A crash
//! before the flush leaves unindexed bytes at the end of a pack (garbage, never read); the next
//! write appends after them. The active pack is closed once it reaches [`PACK_TARGET`] bytes.
//!
//! **Delete and compaction.** Deleting removes the index entry (flushed). A closed pack with no
//! live record is removed; one whose live records take less than half of it is compacted: its live
//! records are appended to the active pack (synced), the index entries are moved to them
//! (flushed), then the old pack is removed. Readers are not blocked: one that looked a blob up
//! just before its pack went away looks it up again. A crash during compaction leaves either the
//! old pack still indexed (the copies are garbage) or a pack with no live record, removed at the
//! next open.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use coffre_crypto::keys::{BlobId, SpaceId};
use sled::Tree;

use super::LogSync;
use super::files::{FileBlobs, sync_dir};
use crate::error::{Error, Result};
use crate::store::record::blob_key as key;
use crate::store::{BlobReader, BlobStore, BlobWriter};

/// First bytes of every pack file (format-fixed: changing them orphans existing packs).
pub const PACK_MAGIC: &[u8; 8] = b"CFPACK\x00\x01";
/// Bytes before each body in a pack: space id, blob id, body length (format-fixed).
pub const RECORD_HEADER: u64 = 32 + 32 + 4;
/// Largest blob a batch stores in a pack; larger ones become files (a tuning value, not a format
/// constant: either kind of blob is found by either path). The SDK batches blobs up to 1 MiB.
pub const PACKED_BLOB_MAX: usize = 1024 * 1024;
/// Size at which the active pack is closed and a new one started (a tuning value). Small enough
/// that compacting a pack copies at most a few MiB, large enough that a tree of 20,000 files
/// makes tens of files instead of tens of thousands.
pub const PACK_TARGET: u64 = 16 * 1024 * 1024;
/// Most pack files kept open for reading at once.
const OPEN_PACKS: usize = 64;
/// Name of the index tree in the gateway's sled database.
const INDEX_TREE: &str = "packed_blobs";

/// Where a packed blob's body lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Location {
    pack: u64,
    offset: u64,
    length: u32,
}

impl Location {
    fn encode(&self) -> [u8; 20] {
        let mut bytes = [0u8; 20];
        bytes[..8].copy_from_slice(&self.pack.to_be_bytes());
        bytes[8..16].copy_from_slice(&self.offset.to_be_bytes());
        bytes[16..].copy_from_slice(&self.length.to_be_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Location> {
        let bytes: &[u8; 20] = bytes
            .try_into()
            .map_err(|_| Error::Corrupt("a packed-blob index entry has the wrong length".into()))?;
        let mut pack = [0u8; 8];
        let mut offset = [0u8; 8];
        let mut length = [0u8; 4];
        pack.copy_from_slice(&bytes[..8]);
        offset.copy_from_slice(&bytes[8..16]);
        length.copy_from_slice(&bytes[16..]);
        Ok(Location {
            pack: u64::from_be_bytes(pack),
            offset: u64::from_be_bytes(offset),
            length: u32::from_be_bytes(length),
        })
    }

    /// Bytes the record takes in its pack.
    fn record_bytes(&self) -> u64 {
        RECORD_HEADER + u64::from(self.length)
    }
}

/// What the pack lock guards.
#[derive(Debug)]
struct Packs {
    /// Every pack on disk: its length and the bytes of its live records.
    sizes: BTreeMap<u64, PackSize>,
    /// The pack being appended to, if one is open.
    active: Option<(u64, File)>,
    /// Number of the next pack: above every pack on disk and every pack the index names (so
    /// that an index entry left pointing to a lost pack can never point into a new one).
    next: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct PackSize {
    length: u64,
    live: u64,
}

#[derive(Debug)]
struct Shared {
    dir: PathBuf,
    db: sled::Db,
    index: Tree,
    log_sync: Option<LogSync>,
    packs: Mutex<Packs>,
    /// Pack files open for reading; shared with readers, so a pack removed meanwhile stays
    /// readable through the handle they hold.
    readers: Mutex<HashMap<u64, Arc<File>>>,
}

/// The files layout (see the module docs): [`FileBlobs`] plus packs for batches of small blobs.
#[derive(Debug, Clone)]
pub struct PackedBlobs {
    files: FileBlobs,
    shared: Arc<Shared>,
}

fn pack_name(number: u64) -> String {
    format!("{number:016x}.pack")
}

fn pack_number(name: &str) -> Option<u64> {
    let hex = name.strip_suffix(".pack").filter(|hex| hex.len() == 16)?;
    u64::from_str_radix(hex, 16).ok()
}

fn poisoned() -> Error {
    Error::Internal("pack lock poisoned".into())
}

impl PackedBlobs {
    /// Opens the layout under `data_dir`: [`FileBlobs::open`], the `packs/` directory (created
    /// durably) and the index in `db`. Sums each pack's live bytes from the index and removes
    /// packs without a live record (left by an interrupted compaction, or emptied by deletes);
    /// the first batch written starts a new pack. With `log_sync`, every index flush reaches
    /// stable storage (see [`LogSync`]; `Stores::open` passes it).
    pub fn open(data_dir: &Path, db: &sled::Db, log_sync: Option<LogSync>) -> Result<PackedBlobs> {
        let files = FileBlobs::open(data_dir)?;
        let dir = data_dir.join("packs");
        match fs::create_dir(&dir) {
            Ok(()) => sync_dir(data_dir)?,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error.into()),
        }
        let index = db.open_tree(INDEX_TREE)?;
        let mut sizes = BTreeMap::new();
        for entry in fs::read_dir(&dir)? {
            let entry = entry?;
            match entry.file_name().to_str().and_then(pack_number) {
                Some(number) => {
                    let length = entry.metadata()?.len();
                    sizes.insert(number, PackSize { length, live: 0 });
                }
                None => {
                    tracing::warn!(path = %entry.path().display(), "unexpected entry in packs/")
                }
            }
        }
        let mut next = sizes.keys().next_back().map_or(1, |newest| newest + 1);
        for item in index.iter() {
            let (_, value) = item?;
            let location = match Location::decode(&value) {
                Ok(location) => location,
                Err(error) => {
                    tracing::error!(%error, "run coffre-gateway check");
                    continue;
                }
            };
            next = next.max(location.pack.saturating_add(1));
            match sizes.get_mut(&location.pack) {
                Some(size) => size.live += location.record_bytes(),
                None => tracing::error!(
                    pack = location.pack,
                    "the packed-blob index names a missing pack (run coffre-gateway check)"
                ),
            }
        }
        let mut removed = 0usize;
        sizes.retain(|number, size| {
            if size.live > 0 {
                return true;
            }
            match fs::remove_file(dir.join(pack_name(*number))) {
                Ok(()) => removed += 1,
                Err(error) => tracing::warn!(%error, "could not remove an unused pack"),
            }
            false
        });
        if removed > 0 {
            sync_dir(&dir)?;
            tracing::info!(removed, "removed packs without live blobs");
        }
        Ok(PackedBlobs {
            files,
            shared: Arc::new(Shared {
                dir,
                db: db.clone(),
                index,
                log_sync,
                // Never resumed: a crash may have left a torn record at the end of the newest
                // pack, and records must only ever follow whole records (compaction reads
                // packs from the start).
                packs: Mutex::new(Packs {
                    sizes,
                    active: None,
                    next,
                }),
                readers: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The store of blobs kept as files.
    pub fn files(&self) -> &FileBlobs {
        &self.files
    }

    /// The pack files on disk, oldest first (for tests).
    pub fn pack_paths(&self) -> Result<Vec<PathBuf>> {
        let packs = self.shared.lock()?;
        Ok(packs
            .sizes
            .keys()
            .map(|number| self.shared.dir.join(pack_name(*number)))
            .collect())
    }

    fn location(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<Location>> {
        self.shared
            .index
            .get(key(space, blob))?
            .map(|value| Location::decode(&value))
            .transpose()
    }
}

impl Shared {
    fn lock(&self) -> Result<MutexGuard<'_, Packs>> {
        self.packs.lock().map_err(|_| poisoned())
    }

    fn flush(&self) -> Result<()> {
        super::flush_db(&self.db, self.log_sync.as_ref())
    }

    /// Appends `records` (key, body) to the active pack, starting a new pack when it is full,
    /// and makes them durable; returns where each body lies, in order.
    fn append(&self, packs: &mut Packs, records: &[([u8; 64], &[u8])]) -> Result<Vec<Location>> {
        let mut locations = Vec::with_capacity(records.len());
        let mut start = 0;
        while start < records.len() {
            let number = self.ensure_active(packs)?;
            let mut length = packs.sizes.get(&number).map_or(0, |size| size.length);
            let mut end = start;
            // As many records as fit below the target; a record larger than that still goes
            // into a pack of its own.
            while end < records.len() {
                let (_, body) = records[end];
                let record = RECORD_HEADER + body.len() as u64;
                if length + record > PACK_TARGET && length > PACK_MAGIC.len() as u64 {
                    break;
                }
                let body_length = u32::try_from(body.len())
                    .map_err(|_| Error::Internal("a packed body is too long".into()))?;
                locations.push(Location {
                    pack: number,
                    offset: length + RECORD_HEADER,
                    length: body_length,
                });
                length += record;
                end += 1;
            }
            let batch = &records[start..end];
            let placed = &locations[start..end];
            let written = match &mut packs.active {
                Some(_) if batch.is_empty() => Ok(()),
                Some((_, file)) => {
                    write_records(file, batch, placed).and_then(|()| file.sync_data())
                }
                None => Err(io::Error::other("no active pack")),
            };
            if let Err(error) = written {
                // The pack's tail is unknown now: close it, the next write starts a new one.
                packs.active = None;
                if let Ok(metadata) = fs::metadata(self.dir.join(pack_name(number))) {
                    packs.sizes.entry(number).or_default().length = metadata.len();
                }
                return Err(error.into());
            }
            packs.sizes.entry(number).or_default().length = length;
            if end < records.len() || length >= PACK_TARGET {
                // Full: the next record starts a new pack.
                packs.active = None;
            }
            start = end;
        }
        Ok(locations)
    }

    /// The number of the active pack, creating a new one (durably, magic first) if none is open.
    fn ensure_active(&self, packs: &mut Packs) -> Result<u64> {
        if let Some((number, _)) = &packs.active {
            return Ok(*number);
        }
        let number = packs.next;
        packs.next = number.saturating_add(1);
        let mut file = File::options()
            .append(true)
            .create_new(true)
            .open(self.dir.join(pack_name(number)))?;
        file.write_all(PACK_MAGIC)?;
        file.sync_all()?;
        sync_dir(&self.dir)?;
        packs.sizes.insert(
            number,
            PackSize {
                length: PACK_MAGIC.len() as u64,
                live: 0,
            },
        );
        packs.active = Some((number, file));
        Ok(number)
    }

    /// Inserts index entries (each only if absent), flushes, and counts the inserted ones as
    /// live.
    fn index_new(&self, packs: &mut Packs, entries: &[([u8; 64], Location)]) -> Result<()> {
        let mut inserted = Vec::new();
        for (record_key, location) in entries {
            let swapped = self.index.compare_and_swap(
                record_key,
                None as Option<&[u8]>,
                Some(&location.encode()[..]),
            )?;
            if swapped.is_ok() {
                inserted.push(*location);
            }
        }
        if !inserted.is_empty() {
            self.flush()?;
        }
        for location in &inserted {
            packs.sizes.entry(location.pack).or_default().live += location.record_bytes();
        }
        Ok(())
    }

    /// After a record of `pack` stopped being live: removes the pack if it is closed and
    /// empty, compacts it if it is closed and mostly garbage.
    fn tidy(&self, packs: &mut Packs, pack: u64) -> Result<()> {
        if packs
            .active
            .as_ref()
            .is_some_and(|(active, _)| *active == pack)
        {
            return Ok(());
        }
        let Some(size) = packs.sizes.get(&pack).copied() else {
            return Ok(());
        };
        if size.live == 0 {
            return self.remove_pack(packs, pack);
        }
        if size.live * 2 < size.length {
            self.compact(packs, pack)?;
        }
        Ok(())
    }

    fn remove_pack(&self, packs: &mut Packs, pack: u64) -> Result<()> {
        match fs::remove_file(self.dir.join(pack_name(pack))) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        sync_dir(&self.dir)?;
        packs.sizes.remove(&pack);
        self.readers.lock().map_err(|_| poisoned())?.remove(&pack);
        Ok(())
    }

    /// Moves the live records of `pack` to the active pack, then removes `pack`.
    fn compact(&self, packs: &mut Packs, pack: u64) -> Result<()> {
        let mut live: Vec<([u8; 64], Location, Vec<u8>)> = Vec::new();
        let mut reader = BufReader::new(File::open(self.dir.join(pack_name(pack)))?);
        let mut magic = [0u8; 8];
        reader.read_exact(&mut magic)?;
        if &magic != PACK_MAGIC {
            return Err(Error::Corrupt(format!(
                "pack {pack:016x} has no pack header"
            )));
        }
        let mut offset = PACK_MAGIC.len() as u64;
        loop {
            let mut header = [0u8; RECORD_HEADER as usize];
            match reader.read_exact(&mut header) {
                Ok(()) => {}
                // The end, or the torn tail of an interrupted append: nothing indexed is there.
                Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => break,
                Err(error) => return Err(error.into()),
            }
            let mut record_key = [0u8; 64];
            record_key.copy_from_slice(&header[..64]);
            let mut length = [0u8; 4];
            length.copy_from_slice(&header[64..]);
            let length = u32::from_be_bytes(length);
            let here = Location {
                pack,
                offset: offset + RECORD_HEADER,
                length,
            };
            let indexed = self.index.get(record_key)?;
            if indexed.is_some_and(|value| Location::decode(&value).ok() == Some(here)) {
                let mut body = vec![0u8; length as usize];
                reader.read_exact(&mut body)?;
                live.push((record_key, here, body));
            } else {
                io::copy(&mut (&mut reader).take(u64::from(length)), &mut io::sink())?;
            }
            offset = here.offset + u64::from(length);
        }
        let found: u64 = live.iter().map(|(_, here, _)| here.record_bytes()).sum();
        let expected = packs.sizes.get(&pack).map_or(0, |size| size.live);
        if found != expected {
            // Records only ever follow whole records, so this means damage: keep the pack (its
            // blobs stay readable where the index says) and let `check` report.
            tracing::error!(
                pack,
                found,
                expected,
                "a pack's records do not add up to its live bytes; not compacted"
            );
            return Ok(());
        }
        let records: Vec<([u8; 64], &[u8])> = live
            .iter()
            .map(|(record_key, _, body)| (*record_key, body.as_slice()))
            .collect();
        let moved = self.append(packs, &records)?;
        let mut kept = Vec::new();
        for ((record_key, old, _), new) in live.iter().zip(&moved) {
            // Compare-and-swap: an entry deleted meanwhile stays deleted.
            let swapped = self.index.compare_and_swap(
                record_key,
                Some(&old.encode()[..]),
                Some(&new.encode()[..]),
            )?;
            if swapped.is_ok() {
                kept.push(*new);
            }
        }
        self.flush()?;
        for location in kept {
            packs.sizes.entry(location.pack).or_default().live += location.record_bytes();
        }
        self.remove_pack(packs, pack)
    }

    /// A shared read handle of `pack`; `None` if the pack is gone.
    fn reader(&self, pack: u64) -> Result<Option<Arc<File>>> {
        let mut readers = self.readers.lock().map_err(|_| poisoned())?;
        if let Some(file) = readers.get(&pack) {
            return Ok(Some(Arc::clone(file)));
        }
        let file = match File::open(self.dir.join(pack_name(pack))) {
            Ok(file) => Arc::new(file),
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        if readers.len() >= OPEN_PACKS {
            readers.clear();
        }
        readers.insert(pack, Arc::clone(&file));
        Ok(Some(file))
    }
}

/// Bytes gathered before each `write(2)` of an append (the batch itself is not copied whole).
const APPEND_BUFFER: usize = 256 * 1024;

/// Writes `records` (key, body) one after the other at the end of `file`, each with the body
/// length its location (computed by the caller, in the same order) gives.
fn write_records(
    file: &mut File,
    records: &[([u8; 64], &[u8])],
    locations: &[Location],
) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(APPEND_BUFFER, file);
    for ((record_key, body), location) in records.iter().zip(locations) {
        out.write_all(record_key)?;
        out.write_all(&location.length.to_be_bytes())?;
        out.write_all(body)?;
    }
    out.flush()
}

/// Reads one packed body with positioned reads (no shared file offset, no lock).
struct PackReader {
    file: Arc<File>,
    position: u64,
    end: u64,
}

impl Read for PackReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.end.saturating_sub(self.position);
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if want == 0 {
            return Ok(0);
        }
        let read = read_at(&self.file, &mut buf[..want], self.position)?;
        if read == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "a pack ends inside a blob",
            ));
        }
        self.position += read as u64;
        Ok(read)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

impl BlobStore for PackedBlobs {
    /// Streamed uploads become files (their size is not known in advance).
    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>> {
        self.files.begin(space, blob)
    }

    fn put_many(&self, space: &SpaceId, blobs: &[(BlobId, &[u8])]) -> Result<()> {
        let (small, large): (Vec<_>, Vec<_>) = blobs
            .iter()
            .partition(|(_, bytes)| bytes.len() <= PACKED_BLOB_MAX);
        if !large.is_empty() {
            let large: Vec<(BlobId, &[u8])> = large.into_iter().copied().collect();
            self.files.put_many(space, &large)?;
        }
        let mut seen = HashSet::new();
        let mut fresh: Vec<([u8; 64], &[u8])> = Vec::with_capacity(small.len());
        for (blob, bytes) in small {
            if !seen.insert(*blob) || self.contains(space, blob)? {
                continue;
            }
            fresh.push((key(space, blob), bytes));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let mut packs = self.shared.lock()?;
        let locations = self.shared.append(&mut packs, &fresh)?;
        let entries: Vec<([u8; 64], Location)> = fresh
            .iter()
            .map(|(record_key, _)| *record_key)
            .zip(locations)
            .collect();
        self.shared.index_new(&mut packs, &entries)?;
        Ok(())
    }

    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>> {
        // Twice at most: a compaction may move the blob between the lookup and the open.
        for _ in 0..2 {
            let Some(location) = self.location(space, blob)? else {
                return self.files.open(space, blob);
            };
            if let Some(file) = self.shared.reader(location.pack)? {
                return Ok(Some(BlobReader {
                    size: u64::from(location.length),
                    body: Box::new(PackReader {
                        file,
                        position: location.offset,
                        end: location.offset + u64::from(location.length),
                    }),
                }));
            }
        }
        Err(Error::Corrupt(
            "the packed-blob index names a missing pack".into(),
        ))
    }

    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool> {
        Ok(
            self.shared.index.contains_key(key(space, blob))?
                || self.files.contains(space, blob)?,
        )
    }

    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()> {
        {
            let mut packs = self.shared.lock()?;
            if let Some(value) = self.shared.index.remove(key(space, blob))? {
                self.shared.flush()?;
                let location = Location::decode(&value)?;
                if let Some(size) = packs.sizes.get_mut(&location.pack) {
                    size.live = size.live.saturating_sub(location.record_bytes());
                }
                self.shared.tidy(&mut packs, location.pack)?;
            }
        }
        // A blob can also exist as a file (a streamed upload of a packed id): both go.
        self.files.delete(space, blob)
    }

    /// Packed blobs whose pack is gone from disk are not visited: they are not stored bodies,
    /// and `check` then reports them missing.
    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()> {
        let on_disk: BTreeSet<u64> = self.shared.lock()?.sizes.keys().copied().collect();
        for item in self.shared.index.iter() {
            let (record_key, value) = item?;
            if record_key.len() != 64 {
                return Err(Error::Corrupt(
                    "a packed-blob index key has the wrong length".into(),
                ));
            }
            let mut space = [0u8; 32];
            let mut blob = [0u8; 32];
            space.copy_from_slice(&record_key[..32]);
            blob.copy_from_slice(&record_key[32..]);
            let location = Location::decode(&value)?;
            if !on_disk.contains(&location.pack) {
                continue;
            }
            visit(
                &SpaceId::from_bytes(space),
                &BlobId::from_bytes(blob),
                u64::from(location.length),
            )?;
        }
        self.files.for_each(visit)
    }

    fn disk_bytes(&self) -> Result<u64> {
        let packs: u64 = self
            .shared
            .lock()?
            .sizes
            .values()
            .map(|size| size.length)
            .sum();
        Ok(self.files.disk_bytes()? + packs)
    }
}
