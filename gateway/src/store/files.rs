//! [`FileBlobs`]: blob bodies as content-addressed files in the data directory (the default).
//!
//! In the gateway's files layout this store is wrapped by [`super::packs::PackedBlobs`], which
//! keeps the small blobs of batches in pack files instead; what follows is about the blobs that
//! are files (single uploads, large blobs), and about `FileBlobs` used on its own.
//!
//! **Layout.** `<data>/blobs/<space hex>/<first 2 hex of blob>/<blob hex>`, one file per blob,
//! holding exactly the blob's bytes. `<data>/blobs/tmp/` holds writes in progress. The two-hex
//! fan-out keeps directories below a few thousand entries per space for millions of blobs.
//!
//! **Durable write.** A writer streams into a fresh file in `tmp/` (around the page cache where
//! the filesystem allows it, see `store/direct.rs`); on commit the file is
//! fsynced, its final directory is created durably if needed (each newly created directory's
//! parent is fsynced), the file is hard-linked to its final name, the final directory is fsynced,
//! and the temporary name is unlinked. `link(2)` fails if the target exists, so an existing blob
//! is **never overwritten**, even by two concurrent writers of the same id: the first commit wins
//! and later ones are discarded. (A rename would replace the target; a hard link is the portable
//! no-replace primitive. On a filesystem without hard links, commit falls back to rename after an
//! existence check, which can only race with a concurrent writer of the same id.)
//!
//! **Batches** ([`BlobStore::put_many`]) write the same way with the syncs shared by the batch
//! (see there; on Linux, large batches use `syncfs(2)` and `renameat2(RENAME_NOREPLACE)`, which
//! refuses an existing target like the hard link does); their temporary files sit next to the final names (`.<blob hex>.<pid>.<n>.tmp`
//! in the fan-out directory, never a valid blob name), which the walk skips and
//! [`FileBlobs::open`] deletes.
//!
//! **What a crash leaves.** A final name appears only after its content is on stable storage, so
//! after a crash every visible blob is complete; a crash mid-write leaves at most a file in
//! `tmp/`, and [`FileBlobs::open`] deletes everything there. A crash between the link and the
//! unlink leaves the blob committed plus a temporary name, also cleaned on open.
//!
//! **Delete** unlinks the final name and fsyncs its directory. Empty fan-out directories are left
//! in place (removing them would race with writers).
//!
//! Only one process may use a data directory at a time; [`super::Stores::open`] enforces this
//! through sled's lock on `<data>/db`.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use coffre_crypto::keys::{BlobId, SpaceId};

use super::direct::BlobFileWriter;
use crate::error::{Error, Result};
use crate::store::{BlobReader, BlobStore, BlobWriter};

/// Buffer between a blob file and its reader.
const READ_BUFFER: usize = 64 * 1024;

/// Blob bodies as files under `<data>/blobs`.
#[derive(Debug, Clone)]
pub struct FileBlobs {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    root: PathBuf,
    tmp: PathBuf,
    /// Directories known to exist durably (their entry in the parent was fsynced by this process).
    durable_dirs: Mutex<HashSet<PathBuf>>,
    /// Allocated bytes of the bodies, maintained incrementally after the walk at open.
    disk_bytes: AtomicU64,
    next_tmp: AtomicU64,
}

/// Bytes a file occupies on disk (allocated blocks), not its length.
fn allocated(metadata: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        metadata.blocks() * 512
    }
    #[cfg(not(unix))]
    {
        metadata.len()
    }
}

/// Fewest new files in one [`BlobStore::put_many`] for which the batch is made durable with
/// `syncfs(2)` rather than file-by-file fsyncs (Linux only; below it, per-file fsyncs of a few
/// files are cheaper than flushing the whole filesystem).
pub const FILESYSTEM_SYNC_MIN: usize = 16;

/// Fsyncs a directory so that its entries (created, renamed, unlinked names) are durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn blob_hex_parts(blob: &BlobId) -> (String, String) {
    let hex = blob.to_hex();
    (hex[..2].to_owned(), hex)
}

impl FileBlobs {
    /// Opens the blob directory under `data_dir` (creating it durably), deletes whatever an
    /// interrupted write left in `blobs/tmp/`, and sums the bodies' disk usage (one `stat` per
    /// blob, once; [`BlobStore::disk_bytes`] is then kept up to date without touching the disk).
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("blobs");
        let tmp = root.join("tmp");
        // The data directory itself is the caller's (`Stores::open` creates it); everything
        // below it is created durably here.
        fs::create_dir_all(data_dir)?;
        let shared = Shared {
            root,
            tmp,
            durable_dirs: Mutex::new(HashSet::from([data_dir.to_path_buf()])),
            disk_bytes: AtomicU64::new(0),
            next_tmp: AtomicU64::new(0),
        };
        shared.ensure_dir(&shared.tmp)?;
        let mut removed = 0usize;
        for entry in fs::read_dir(&shared.tmp)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                fs::remove_dir_all(entry.path())?;
            } else {
                fs::remove_file(entry.path())?;
            }
            removed += 1;
        }
        if removed > 0 {
            sync_dir(&shared.tmp)?;
            tracing::info!(removed, "removed interrupted blob writes");
        }
        let blobs = FileBlobs {
            shared: Arc::new(shared),
        };
        let mut total = 0;
        blobs.walk(true, &mut |_, _, metadata| {
            total += allocated(metadata);
            Ok(())
        })?;
        blobs.shared.disk_bytes.store(total, Ordering::Relaxed);
        Ok(blobs)
    }

    /// The final path of a blob.
    pub fn path_of(&self, space: &SpaceId, blob: &BlobId) -> PathBuf {
        let (fan, hex) = blob_hex_parts(blob);
        self.shared.root.join(space.to_hex()).join(fan).join(hex)
    }

    /// Visits every well-named blob file; anything else under `blobs/` is skipped with a warning.
    /// Temporary files of batch writes ([`is_batch_tmp`]) are skipped silently, or deleted when
    /// `clean` (at open, when no write can be in progress).
    fn walk(
        &self,
        clean: bool,
        visit: &mut dyn FnMut(&SpaceId, &BlobId, &fs::Metadata) -> Result<()>,
    ) -> Result<()> {
        for space_entry in fs::read_dir(&self.shared.root)? {
            let space_entry = space_entry?;
            let name = space_entry.file_name();
            if space_entry.path() == self.shared.tmp {
                continue;
            }
            let Some(space) = name.to_str().and_then(|n| SpaceId::from_hex(n).ok()) else {
                tracing::warn!(path = %space_entry.path().display(), "unexpected entry in blobs/");
                continue;
            };
            if !space_entry.file_type()?.is_dir() {
                tracing::warn!(path = %space_entry.path().display(), "unexpected file in blobs/");
                continue;
            }
            for fan_entry in fs::read_dir(space_entry.path())? {
                let fan_entry = fan_entry?;
                if !fan_entry.file_type()?.is_dir() {
                    tracing::warn!(path = %fan_entry.path().display(), "unexpected file in blobs/");
                    continue;
                }
                for blob_entry in fs::read_dir(fan_entry.path())? {
                    let blob_entry = blob_entry?;
                    let name = blob_entry.file_name();
                    if name.to_str().is_some_and(is_batch_tmp) {
                        if clean {
                            fs::remove_file(blob_entry.path())?;
                            tracing::info!(path = %blob_entry.path().display(), "removed an interrupted batch write");
                        }
                        continue;
                    }
                    let blob = name.to_str().and_then(|n| BlobId::from_hex(n).ok());
                    match blob {
                        Some(blob) if self.path_of(&space, &blob) == blob_entry.path() => {
                            visit(&space, &blob, &blob_entry.metadata()?)?;
                        }
                        _ => tracing::warn!(
                            path = %blob_entry.path().display(),
                            "unexpected entry in blobs/"
                        ),
                    }
                }
            }
        }
        Ok(())
    }
}

impl Shared {
    /// Creates `dir` and its missing parents so that they survive a crash.
    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        let mut known = self
            .durable_dirs
            .lock()
            .map_err(|_| Error::Internal("blob directory lock poisoned".into()))?;
        Self::ensure_dir_locked(&mut known, dir)
    }

    fn ensure_dir_locked(known: &mut HashSet<PathBuf>, dir: &Path) -> Result<()> {
        if known.contains(dir) {
            return Ok(());
        }
        // Recursion stops at the data directory, which is in `known` from the start.
        let parent = dir.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(parent) = parent {
            Self::ensure_dir_locked(known, parent)?;
        }
        match fs::create_dir(dir) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {}
            Err(error) => return Err(error.into()),
        }
        // Fsync the parent even if the directory already existed: another process (or a crash
        // before the parent was synced) may have left its entry not yet durable.
        sync_dir(parent.unwrap_or(Path::new(".")))?;
        known.insert(dir.to_path_buf());
        Ok(())
    }
}

struct FileWriter {
    file: Option<BlobFileWriter>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    shared: Arc<Shared>,
}

impl BlobWriter for FileWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        match &mut self.file {
            Some(file) => Ok(file.write(bytes)?),
            None => Err(Error::Internal("blob writer used after failure".into())),
        }
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(file) = self.file.take() else {
            return Err(Error::Internal("blob writer used after failure".into()));
        };
        let file = file.finish()?;
        file.sync_all()?;
        let metadata = file.metadata()?;
        drop(file);
        // The final path always has a parent: it is `<root>/<space>/<fan>/<blob>`.
        let dir = self
            .final_path
            .parent()
            .unwrap_or(&self.shared.root)
            .to_path_buf();
        self.shared.ensure_dir(&dir)?;
        let created = match fs::hard_link(&self.tmp_path, &self.final_path) {
            Ok(()) => true,
            Err(error) if error.kind() == io::ErrorKind::AlreadyExists => false,
            Err(error) if error.kind() == io::ErrorKind::Unsupported => {
                if self.final_path.exists() {
                    false
                } else {
                    fs::rename(&self.tmp_path, &self.final_path)?;
                    true
                }
            }
            Err(error) => return Err(error.into()),
        };
        if created {
            sync_dir(&dir)?;
            self.shared
                .disk_bytes
                .fetch_add(allocated(&metadata), Ordering::Relaxed);
        }
        // Drop removes the temporary name (a leftover is cleaned at the next open).
        Ok(())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        self.file = None;
        match fs::remove_file(&self.tmp_path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => tracing::warn!(%error, "could not remove a temporary blob file"),
        }
    }
}

/// Most threads one [`FileBlobs::put_many`] uses to fsync in parallel. Concurrent fsyncs let the
/// filesystem share one journal commit and one device flush among many files (ext4 and XFS do),
/// where one thread would pay a flush per file.
const SYNC_THREADS: usize = 16;

/// Runs `work` on every item, spread over at most [`SYNC_THREADS`] scoped threads; the first
/// error wins.
fn parallel<T: Sync>(items: &[T], work: impl Fn(&T) -> io::Result<()> + Sync) -> io::Result<()> {
    if items.len() <= 1 {
        return items.iter().try_for_each(&work);
    }
    let per_thread = items.len().div_ceil(SYNC_THREADS);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(per_thread)
            .map(|slice| scope.spawn(|| slice.iter().try_for_each(&work)))
            .collect();
        let mut result = Ok(());
        for handle in handles {
            let outcome = handle
                .join()
                .unwrap_or_else(|_| Err(io::Error::other("an fsync thread panicked")));
            if result.is_ok() {
                result = outcome;
            }
        }
        result
    })
}

/// Temporary files of a batch, removed on drop (committed ones are linked or renamed first).
struct TmpFiles(Vec<PathBuf>);

impl Drop for TmpFiles {
    fn drop(&mut self) {
        for path in &self.0 {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => tracing::warn!(%error, "could not remove a temporary blob file"),
            }
        }
    }
}

/// Whether a name in a fan-out directory is the temporary file of a batch write
/// (`.<blob hex>.<pid>.<n>.tmp`, see [`FileBlobs::batch_tmp_path`]).
fn is_batch_tmp(name: &str) -> bool {
    name.starts_with('.') && name.ends_with(".tmp")
}

/// How [`place_no_replace`] gave a temporary file its final name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placed {
    /// Renamed: the temporary name is gone.
    Renamed,
    /// Hard-linked: the temporary name is still there.
    Linked,
    /// The final name already existed and was left as it is.
    Existed,
}

/// Gives `tmp` the name `target` unless `target` exists (an existing blob is never replaced).
/// On Linux one `renameat2(RENAME_NOREPLACE)`; where the filesystem does not support it, and
/// elsewhere, a hard link (which also refuses an existing target), else an existence check and
/// a rename.
fn place_no_replace(tmp: &Path, target: &Path) -> io::Result<Placed> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{CWD, RenameFlags, renameat_with};
        use rustix::io::Errno;
        match renameat_with(CWD, tmp, CWD, target, RenameFlags::NOREPLACE) {
            Ok(()) => return Ok(Placed::Renamed),
            Err(Errno::EXIST) => return Ok(Placed::Existed),
            // Not supported by this filesystem or kernel: the portable way below.
            Err(Errno::INVAL | Errno::NOSYS | Errno::OPNOTSUPP) => {}
            Err(errno) => return Err(errno.into()),
        }
    }
    match fs::hard_link(tmp, target) {
        Ok(()) => Ok(Placed::Linked),
        Err(error) if error.kind() == io::ErrorKind::AlreadyExists => Ok(Placed::Existed),
        Err(error) if error.kind() == io::ErrorKind::Unsupported => {
            if target.exists() {
                Ok(Placed::Existed)
            } else {
                fs::rename(tmp, target)?;
                Ok(Placed::Renamed)
            }
        }
        Err(error) => Err(error),
    }
}

impl Shared {
    /// Whether a batch of `new_files` is made durable by [`Shared::sync_filesystem`].
    fn sync_filesystem_for(&self, new_files: usize) -> bool {
        cfg!(target_os = "linux") && new_files >= FILESYSTEM_SYNC_MIN
    }

    /// `syncfs(2)` on the filesystem holding the blobs: every dirty page, inode and directory
    /// entry on it is on stable storage when this returns `Ok` (Linux reports writeback errors
    /// from `syncfs` since 5.8).
    #[cfg(target_os = "linux")]
    fn sync_filesystem(&self) -> io::Result<()> {
        let root = File::open(&self.root)?;
        rustix::fs::syncfs(&root).map_err(io::Error::from)
    }

    /// Never called: [`Shared::sync_filesystem_for`] is false off Linux.
    #[cfg(not(target_os = "linux"))]
    fn sync_filesystem(&self) -> io::Result<()> {
        Err(io::Error::other("syncfs is Linux-only"))
    }
}

impl FileBlobs {
    /// The temporary name of a batch write: next to its final name, so that the writes of a
    /// batch spread over the fan-out directories instead of all contending for the lock of
    /// `tmp/` (measured: 11% of the gateway's CPU spinning on it). Leftovers of a crash are
    /// deleted at the next open.
    fn batch_tmp_path(&self, final_path: &Path, blob: &BlobId) -> PathBuf {
        let n = self.shared.next_tmp.fetch_add(1, Ordering::Relaxed);
        let name = format!(".{}.{}.{n}.tmp", blob.to_hex(), std::process::id());
        final_path.with_file_name(name)
    }

    fn tmp_path(&self, space: &SpaceId, blob: &BlobId) -> PathBuf {
        let n = self.shared.next_tmp.fetch_add(1, Ordering::Relaxed);
        let name = format!(
            "{}-{}.{}.{n}",
            space.to_hex(),
            blob.to_hex(),
            std::process::id()
        );
        self.shared.tmp.join(name)
    }
}

impl BlobStore for FileBlobs {
    /// The durable write of the module docs, with the syncs shared by the whole batch: every
    /// body is written to a temporary file next to its final name (`.<blob>.<pid>.<n>.tmp`, in
    /// the fan-out directory), all the files are fsynced (in parallel, so the
    /// filesystem can group them into few journal commits), then each gets its final name
    /// without replacing an existing one (`place_no_replace`), and each final directory touched is fsynced once (also in parallel). Only then does
    /// this return; a crash before leaves at most temporary files (cleaned at open) and blobs
    /// whose final name points to fully synced content.
    ///
    /// On Linux, a batch of at least [`FILESYSTEM_SYNC_MIN`] new files replaces both rounds of
    /// fsyncs by one `syncfs(2)` of the data directory's filesystem each (before the links, and
    /// after them): the same ordering, but the kernel writes each inode-table and directory
    /// block once per round instead of once per file. Measured on ext4, 40,000 files of 1-16 KiB
    /// in batches of 200: 8.3 s wall / 7.6 s system CPU with per-file fsyncs, 2.5 s / 1.2 s
    /// with two `syncfs` per batch. The price: the sync also flushes whatever else is dirty on
    /// that filesystem (OPERATIONS.md: give the data directory its own filesystem if another
    /// workload writes heavily there).
    fn put_many(&self, space: &SpaceId, blobs: &[(BlobId, &[u8])]) -> Result<()> {
        let mut tmp = TmpFiles(Vec::with_capacity(blobs.len()));
        let mut pending = Vec::with_capacity(blobs.len());
        for (blob, bytes) in blobs {
            // An existing blob is kept as it is: `place_no_replace` below refuses to replace it.
            let final_path = self.path_of(space, blob);
            // The final path always has a parent: it is `<root>/<space>/<fan>/<blob>`.
            self.shared
                .ensure_dir(final_path.parent().unwrap_or(&self.shared.root))?;
            let tmp_path = self.batch_tmp_path(&final_path, blob);
            let mut file = File::options()
                .write(true)
                .create_new(true)
                .open(&tmp_path)?;
            tmp.0.push(tmp_path.clone());
            file.write_all(bytes)?;
            pending.push((file, tmp_path, final_path));
        }
        let whole_filesystem = self.shared.sync_filesystem_for(pending.len());
        if whole_filesystem {
            // Content on stable storage before any final name points to it.
            self.shared.sync_filesystem()?;
        } else {
            parallel(&pending, |(file, _, _)| file.sync_all())?;
        }
        let mut dirs: Vec<PathBuf> = Vec::new();
        let mut added = 0u64;
        // Temporary names renamed away: nothing left to remove for them.
        let mut moved = Vec::with_capacity(pending.len());
        for (file, tmp_path, final_path) in &pending {
            let dir = final_path.parent().unwrap_or(&self.shared.root);
            let placed = place_no_replace(tmp_path, final_path)?;
            moved.push(placed == Placed::Renamed);
            if placed != Placed::Existed {
                added += allocated(&file.metadata()?);
                if !dirs.iter().any(|known| known == dir) {
                    dirs.push(dir.to_path_buf());
                }
            }
        }
        // `tmp` and `pending` were filled in the same order, one entry per body.
        let mut moved = moved.into_iter();
        tmp.0.retain(|_| !moved.next().unwrap_or(false));
        drop(pending);
        if whole_filesystem {
            self.shared.sync_filesystem()?;
        } else {
            parallel(&dirs, |dir| sync_dir(dir))?;
        }
        self.shared.disk_bytes.fetch_add(added, Ordering::Relaxed);
        // `tmp` drops here: the temporary names go (a leftover is cleaned at the next open).
        Ok(())
    }

    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>> {
        let tmp_path = self.tmp_path(space, blob);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(Box::new(FileWriter {
            file: Some(BlobFileWriter::new(file)),
            tmp_path,
            final_path: self.path_of(space, blob),
            shared: Arc::clone(&self.shared),
        }))
    }

    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>> {
        let file = match File::open(self.path_of(space, blob)) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let size = file.metadata()?.len();
        Ok(Some(BlobReader {
            size,
            body: Box::new(BufReader::with_capacity(READ_BUFFER, file)),
        }))
    }

    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool> {
        Ok(self.path_of(space, blob).try_exists()?)
    }

    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()> {
        let path = self.path_of(space, blob);
        let metadata = match fs::metadata(&path) {
            Ok(metadata) => metadata,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        match fs::remove_file(&path) {
            Ok(()) => {
                let bytes = allocated(&metadata);
                // Saturating: a concurrent delete of the same blob must not wrap the counter.
                let _ = self.shared.disk_bytes.fetch_update(
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                    |total| Some(total.saturating_sub(bytes)),
                );
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error.into()),
        }
        if let Some(dir) = path.parent() {
            sync_dir(dir)?;
        }
        Ok(())
    }

    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()> {
        self.walk(false, &mut |space, blob, metadata| {
            visit(space, blob, metadata.len())
        })
    }

    fn disk_bytes(&self) -> Result<u64> {
        Ok(self.shared.disk_bytes.load(Ordering::Relaxed))
    }
}
