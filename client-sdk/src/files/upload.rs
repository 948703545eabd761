//! The upload pipeline: chunk and seal on a blocking thread, ask which chunks are missing, send
//! only those, then seal the manifest (none for a file of one chunk: its entry points at the
//! chunk) and put the entry into the snapshot.

use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use coffre_crypto::chunker::{AVG_CHUNK_SIZE, Chunker, chunk_slice, seal_chunk};
use coffre_crypto::dirnode::{FileContent, Timestamp};
use coffre_crypto::envelope::SealedBlob;
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_crypto::manifest::{ChunkRef, Manifest};
use tokio::sync::mpsc;

use super::batch::{
    GROUP_BYTES, GROUP_FILES, GROUPS_IN_FLIGHT, SMALL_FILE, fetch_blobs, groups, send_blobs,
};
use super::walk::{LocalItem, local_meta, walk};
use super::window::Window;
use super::{
    CHANNEL_DEPTH, ChunkKeys, FILE_CONCURRENCY, TransferStats, UPLOAD_BATCH, UPLOAD_CONCURRENCY,
    missing, upload_blobs, warn,
};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::remote::Remote;
use crate::tree::{EntryType, FileRef, Snapshot, SpacePath};

type Sealed = Result<(ChunkRef, SealedBlob)>;

fn estimate_chunks(bytes: u64) -> u64 {
    bytes.div_ceil(AVG_CHUNK_SIZE as u64)
}

fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Io(std::io::Error::other(format!(
        "chunker task failed: {error}"
    )))
}

/// Streams `source` through the chunker, uploads the chunks the gateway lacks, and returns the
/// file's manifest (not yet sealed or uploaded). Memory stays bounded whatever the size.
pub async fn upload_reader<R, S>(
    remote: &R,
    space: &SpaceId,
    keys: &ChunkKeys,
    source: S,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<Manifest>
where
    R: Remote,
    S: Read + Send + 'static,
{
    let (sender, mut receiver) = mpsc::channel::<Sealed>(CHANNEL_DEPTH);
    let (seed, convergence) = (Arc::clone(&keys.seed), Arc::clone(&keys.convergence));
    // Two stages on two threads, so a large file uses two cores: chunking (read + FastCDC) feeds
    // sealing (chunk key, padding, AEAD, blob id) through a bounded queue. Memory: the chunker's
    // buffer plus at most CHANNEL_DEPTH chunks queued and CHANNEL_DEPTH envelopes queued.
    let (chunks, to_seal) = std::sync::mpsc::sync_channel::<Result<Vec<u8>>>(CHANNEL_DEPTH);
    let chunker = tokio::task::spawn_blocking(move || {
        for chunk in Chunker::new(source, &seed) {
            let item = chunk.map(|chunk| chunk.data).map_err(Error::from);
            let failed = item.is_err();
            if chunks.send(item).is_err() || failed {
                break;
            }
        }
    });
    let sealer = tokio::task::spawn_blocking(move || {
        while let Ok(item) = to_seal.recv() {
            let item = item.and_then(|data| seal_chunk(&convergence, &data).map_err(Error::from));
            let failed = item.is_err();
            if sender.blocking_send(item).is_err() || failed {
                break;
            }
        }
    });
    // Two async stages joined on this task: `query` asks the gateway which chunks of each small
    // batch it lacks, while `send` keeps up to UPLOAD_CONCURRENCY uploads in flight. The next
    // batch's question thus overlaps the current batch's uploads instead of waiting for the
    // slowest of them. Memory: at most UPLOAD_BATCH envelopes between the stages.
    let (to_send, queued) = mpsc::channel::<(ChunkRef, Option<SealedBlob>)>(UPLOAD_BATCH);
    let query = async move {
        // Chunks already handed to `send`, in this batch or an earlier one: while its upload may
        // still be in flight the gateway would call a chunk missing again (a file repeating its
        // content), so each id is sent at most once.
        let mut queued_ids: HashSet<BlobId> = HashSet::new();
        while let Some(first) = receiver.recv().await {
            let mut batch = vec![first?];
            while batch.len() < UPLOAD_BATCH {
                match receiver.try_recv() {
                    Ok(item) => batch.push(item?),
                    Err(_) => break,
                }
            }
            let ids: Vec<_> = batch.iter().map(|(reference, _)| reference.id).collect();
            let absent: HashSet<_> = missing(remote, space, &ids).await?;
            for (reference, sealed) in batch {
                let send = absent.contains(&reference.id) && queued_ids.insert(reference.id);
                let sealed = send.then_some(sealed);
                if to_send.send((reference, sealed)).await.is_err() {
                    // `send` stopped on an error, which it reports.
                    return Ok(());
                }
            }
        }
        // Dropping `receiver` here (also on an early return) unblocks the sealer, and through
        // it the chunker; dropping `to_send` ends `send`.
        Ok::<(), Error>(())
    };
    let send = async move {
        let mut queued = queued;
        let mut refs = Vec::new();
        let mut window = Window::new();
        let mut open = true;
        while open || window.len() > 0 {
            tokio::select! {
                item = queued.recv(), if open && window.len() < UPLOAD_CONCURRENCY => {
                    let Some((reference, sealed)) = item else {
                        open = false;
                        continue;
                    };
                    let length = u64::from(reference.length);
                    stats.chunks += 1;
                    stats.bytes += length;
                    let id = reference.id;
                    refs.push(reference);
                    match sealed {
                        None => progress.on_chunk_done(length),
                        Some(sealed) => window.push(async move {
                            let bytes = sealed.into_bytes();
                            let sent = bytes.len() as u64;
                            remote
                                .put_blob(space, &id, bytes)
                                .await
                                .map(|()| (length, sent))
                        }),
                    }
                }
                Some(done) = window.next_any(), if window.len() > 0 => {
                    record(done?, progress, stats);
                }
            }
        }
        Ok::<Vec<ChunkRef>, Error>(refs)
    };
    let (queried, sent) = tokio::join!(query, send);
    sealer.await.map_err(join_error)?;
    chunker.await.map_err(join_error)?;
    let refs = sent?;
    queried?;
    if refs.len() > coffre_crypto::manifest::MAX_CHUNKS {
        return Err(Error::InvalidInput(
            "file too large for one manifest".into(),
        ));
    }
    Ok(Manifest::from_chunks(refs)?)
}

fn record((length, sent): (u64, u64), progress: &dyn Progress, stats: &mut TransferStats) {
    stats.chunks_sent += 1;
    stats.blobs_sent += 1;
    stats.bytes_sent += sent;
    progress.on_chunk_done(length);
}

/// What to put at `dest` for a file made of `manifest`'s chunks, and the blob to upload for it:
/// a file of exactly one chunk references that chunk directly (FORMAT.md section 7, kind 0x04;
/// nothing more to upload); otherwise the existing manifest if the file there has the same chunks
/// (nothing to upload), else `manifest` freshly sealed. `prefetched` may hold the envelope of the
/// existing file's manifest (fetched in a batch with others); otherwise it is fetched here.
async fn resolve_content<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    dest: &SpacePath,
    manifest: &Manifest,
    progress: &dyn Progress,
    prefetched: &HashMap<BlobId, Vec<u8>>,
) -> Result<(FileContent, Option<SealedBlob>)> {
    if let [only] = manifest.chunks.as_slice() {
        return Ok((FileContent::Chunk(only.duplicate()), None));
    }
    let remote = snapshot.remote();
    let space = *snapshot.space();
    let existing = match snapshot.file(dest).await {
        Ok(FileRef {
            content: FileContent::Manifest(reference),
            size,
            ..
        }) if size == manifest.file_size => {
            let bytes = match prefetched.get(&reference.id) {
                Some(bytes) => Ok(bytes.clone()),
                None => remote.get_blob(&space, &reference.id).await,
            };
            match bytes {
                Ok(bytes) => match Manifest::open(&reference, &bytes) {
                    Ok(old) if old == *manifest => Some(reference),
                    Ok(_) => None,
                    Err(error) => {
                        warn(
                            progress,
                            format!(
                                "{dest}: the previous version is unreadable ({error}); replacing it"
                            ),
                        );
                        None
                    }
                },
                Err(error) => {
                    warn(
                        progress,
                        format!(
                            "{dest}: the previous version is unreadable ({error}); replacing it"
                        ),
                    );
                    None
                }
            }
        }
        _ => None,
    };
    match existing {
        Some(reference) => Ok((FileContent::Manifest(reference), None)),
        None => {
            let (reference, sealed) = manifest.seal()?;
            Ok((FileContent::Manifest(reference), Some(sealed)))
        }
    }
}

/// Seals the manifest (or reuses the existing one if the chunks are the same), uploads it if
/// needed, and puts the file entry at `dest`. Returns whether the tree changed.
pub(crate) async fn store_file<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    dest: &SpacePath,
    manifest: Manifest,
    mtime: Timestamp,
    mode: u32,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<bool> {
    let (content, sealed) =
        resolve_content(snapshot, dest, &manifest, progress, &HashMap::new()).await?;
    if let Some(sealed) = sealed {
        let (blobs, bytes) =
            upload_blobs(snapshot.remote(), snapshot.space(), vec![sealed]).await?;
        stats.blobs_sent += blobs;
        stats.bytes_sent += bytes;
    }
    snapshot
        .insert_file(dest, content, manifest.file_size, mtime, mode)
        .await
}

/// Uploads the local file `local` to `dest` in the snapshot (not yet written or committed).
/// A symlink given here is followed (use [`put_tree`] to store links as links).
pub async fn put_file<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    keys: &ChunkKeys,
    local: &Path,
    dest: &SpacePath,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let metadata = tokio::fs::metadata(local).await?;
    if !metadata.is_file() {
        return Err(Error::InvalidInput(format!(
            "not a regular file: {}",
            local.display()
        )));
    }
    let (mtime, mode) = local_meta(&metadata)?;
    progress.on_start(metadata.len(), estimate_chunks(metadata.len()));
    let file = std::fs::File::open(local)?;
    let mut stats = TransferStats::default();
    put_one(
        snapshot, keys, file, dest, mtime, mode, progress, &mut stats,
    )
    .await?;
    progress.on_file_done(&local.display().to_string());
    Ok(stats)
}

/// Uploads everything `source` yields to `dest` (mtime now, mode 0o644).
pub async fn put_reader<R: Remote, S: Read + Send + 'static>(
    snapshot: &mut Snapshot<'_, R>,
    keys: &ChunkKeys,
    source: S,
    dest: &SpacePath,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let mut stats = TransferStats::default();
    let mtime = crate::tree::now()?;
    put_one(
        snapshot, keys, source, dest, mtime, 0o644, progress, &mut stats,
    )
    .await?;
    progress.on_file_done(&dest.to_string());
    Ok(stats)
}

#[allow(clippy::too_many_arguments)]
async fn put_one<R: Remote, S: Read + Send + 'static>(
    snapshot: &mut Snapshot<'_, R>,
    keys: &ChunkKeys,
    source: S,
    dest: &SpacePath,
    mtime: Timestamp,
    mode: u32,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<()> {
    if dest.is_root() {
        return Err(Error::InvalidInput("a file cannot replace the root".into()));
    }
    if let Ok(info) = snapshot.stat(dest).await
        && info.kind == EntryType::Dir
    {
        return Err(Error::AlreadyExists(format!("{dest} is a directory")));
    }
    let (remote, space) = (snapshot.remote(), *snapshot.space());
    let manifest = upload_reader(remote, &space, keys, source, progress, stats).await?;
    stats.files += 1;
    store_file(snapshot, dest, manifest, mtime, mode, progress, stats).await?;
    Ok(())
}

/// Uploads the local directory `local` (recursively) to `dest`, which is created if needed.
/// Symlinks are stored as links, not followed; special files and non-UTF-8 names are skipped
/// with a warning; a file that cannot be read is skipped with a warning. Up to
/// [`FILE_CONCURRENCY`] files are uploaded at once.
pub async fn put_tree<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    keys: &ChunkKeys,
    local: &Path,
    dest: &SpacePath,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let root = local.to_path_buf();
    let dest_root = dest.clone();
    let plan = tokio::task::spawn_blocking(move || walk(&root, &dest_root))
        .await
        .map_err(join_error)??;
    for message in &plan.warnings {
        progress.on_warning(message);
    }
    let total: u64 = plan.items.iter().map(LocalItem::size).sum();
    progress.on_start(total, estimate_chunks(total));
    let mut stats = TransferStats::default();
    let mut files: Vec<(PathBuf, SpacePath, Timestamp, u32, u64)> = Vec::new();
    for item in plan.items {
        match item {
            LocalItem::Dir { dest, mtime } => {
                if dest.is_root() {
                    continue;
                }
                match snapshot.stat(&dest).await {
                    Ok(info) if info.kind == EntryType::Dir => {}
                    Ok(_) => {
                        warn(
                            progress,
                            format!("{dest} exists and is not a directory; skipped"),
                        );
                    }
                    Err(Error::NotFound(_)) => snapshot.mkdir_at(&dest, mtime).await?,
                    Err(error) => return Err(error),
                }
            }
            LocalItem::Symlink {
                dest,
                target,
                mtime,
            } => {
                if let Err(error) = snapshot.insert_symlink(&dest, &target, mtime).await {
                    warn(progress, format!("{dest}: {error}; skipped"));
                }
            }
            LocalItem::File {
                local,
                dest,
                mtime,
                mode,
                size,
            } => {
                files.push((local, dest, mtime, mode, size));
            }
        }
    }
    let (small, large): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(_, _, _, _, size)| *size <= SMALL_FILE);
    put_small_files(snapshot, keys, small, progress, &mut stats).await?;
    let (remote, space) = (snapshot.remote(), *snapshot.space());
    let mut window = Window::new();
    let mut queue = large
        .into_iter()
        .map(|(local, dest, mtime, mode, _)| (local, dest, mtime, mode));
    loop {
        while window.len() < FILE_CONCURRENCY {
            let Some((local, dest, mtime, mode)) = queue.next() else {
                break;
            };
            window.push(async move {
                let mut file_stats = TransferStats::default();
                let opened = std::fs::File::open(&local);
                let result = match opened {
                    Ok(file) => {
                        upload_reader(remote, &space, keys, file, progress, &mut file_stats).await
                    }
                    Err(error) => Err(Error::Io(error)),
                };
                (local, dest, mtime, mode, file_stats, result)
            });
        }
        let Some((local, dest, mtime, mode, file_stats, result)) = window.next_any().await else {
            break;
        };
        stats.add(&file_stats);
        match result {
            Ok(manifest) => {
                stats.files += 1;
                store_file(snapshot, &dest, manifest, mtime, mode, progress, &mut stats).await?;
                progress.on_file_done(&local.display().to_string());
            }
            Err(Error::Io(error)) => {
                warn(progress, format!("{}: {error}; skipped", local.display()));
            }
            Err(error) => return Err(error),
        }
    }
    Ok(stats)
}

/// A small file of a tree upload.
type SmallFile = (PathBuf, SpacePath, Timestamp, u32, u64);

/// What a group upload made of one file: its manifest (chunks uploaded), or why it failed.
type GroupOutcome = (SmallFile, Result<Manifest>);

/// Reads, chunks and seals every file of a group (blocking): per file, its sealed chunks or the
/// error that stopped it. Each file (at most [`SMALL_FILE`] bytes when walked) is read whole and
/// cut with [`chunk_slice`]: the same cuts as the streaming [`Chunker`], without its zeroed 4 MiB
/// buffer per file (which was half of the client's CPU time on a tree of small files).
fn seal_group(keys: &ChunkKeys, files: &[SmallFile]) -> Vec<Result<Vec<(ChunkRef, SealedBlob)>>> {
    files
        .iter()
        .map(|(local, ..)| {
            let file = std::fs::File::open(local)?;
            let mut bytes = Vec::new();
            file.take(SMALL_FILE + 1).read_to_end(&mut bytes)?;
            if bytes.len() as u64 > SMALL_FILE {
                // It grew since the walk: skipped (with a warning) rather than held whole.
                return Err(Error::Io(std::io::Error::other(
                    "the file grew while the tree was being uploaded",
                )));
            }
            chunk_slice(&bytes, &keys.seed)
                .map(|chunk| Ok(seal_chunk(&keys.convergence, chunk)?))
                .collect::<Result<Vec<_>>>()
        })
        .collect()
}

/// Uploads the chunks of one group of small files: sealed on a blocking thread, one `missing`
/// query for all their chunks, the absent ones sent in blob batches. Returns each file's
/// manifest (not yet sealed or uploaded) or its error.
async fn upload_group<R: Remote>(
    remote: &R,
    space: &SpaceId,
    keys: &ChunkKeys,
    files: Vec<SmallFile>,
    progress: &dyn Progress,
) -> Result<(Vec<GroupOutcome>, TransferStats)> {
    let mut stats = TransferStats::default();
    let group_keys = keys.clone();
    let (files, sealed) = tokio::task::spawn_blocking(move || {
        let sealed = seal_group(&group_keys, &files);
        (files, sealed)
    })
    .await
    .map_err(join_error)?;
    let mut ids = Vec::new();
    let mut seen = HashSet::new();
    for (reference, _) in sealed.iter().flatten().flatten() {
        if seen.insert(reference.id) {
            ids.push(reference.id);
        }
    }
    let mut absent = missing(remote, space, &ids).await?;
    let mut outcomes = Vec::with_capacity(files.len());
    let mut to_send = Vec::new();
    for (file, result) in files.into_iter().zip(sealed) {
        let chunks = match result {
            Ok(chunks) => chunks,
            Err(error) => {
                outcomes.push((file, Err(error)));
                continue;
            }
        };
        let mut refs = Vec::with_capacity(chunks.len());
        for (reference, blob) in chunks {
            let length = u64::from(reference.length);
            stats.chunks += 1;
            stats.bytes += length;
            // `remove` also skips a repeat of a chunk already queued in this group.
            if absent.remove(&reference.id) {
                stats.chunks_sent += 1;
                to_send.push((reference.id, blob.into_bytes()));
            }
            progress.on_chunk_done(length);
            refs.push(reference);
        }
        outcomes.push((file, Manifest::from_chunks(refs).map_err(Error::from)));
    }
    let (blobs, bytes) = send_blobs(remote, space, to_send).await?;
    stats.blobs_sent += blobs;
    stats.bytes_sent += bytes;
    Ok((outcomes, stats))
}

/// What one unit of work of [`put_small_files`] finished.
enum Step {
    /// A group's chunks are uploaded: its files' manifests (or errors), and its stats.
    Group(Result<(Vec<GroupOutcome>, TransferStats)>),
    /// A batch of manifests is uploaded: `(blobs, bytes)` sent.
    Manifests(Result<(u64, u64)>),
}

/// Uploads the small files of a tree in groups ([`GROUP_BYTES`], up to [`GROUPS_IN_FLIGHT`] at
/// once), then puts their entries into the snapshot; new manifests go up in blob batches too,
/// alongside the groups (never holding them up). A file that cannot be read is skipped with a
/// warning. Every blob is durable at the gateway before this returns.
async fn put_small_files<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    keys: &ChunkKeys,
    files: Vec<SmallFile>,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<()> {
    type Work<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Step> + Send + 'a>>;
    let (remote, space) = (snapshot.remote(), *snapshot.space());
    let space = &space;
    let mut queue = groups(files, |(.., size)| *size).into_iter();
    let mut window: Window<Work<'_>> = Window::new();
    let mut groups_in_flight = 0usize;
    let mut manifests: Vec<SealedBlob> = Vec::new();
    let mut manifest_bytes = 0usize;
    let mut failure: Option<Error> = None;
    loop {
        while failure.is_none() && groups_in_flight < GROUPS_IN_FLIGHT {
            let Some(group) = queue.next() else { break };
            groups_in_flight += 1;
            window.push(Box::pin(async move {
                Step::Group(upload_group(remote, space, keys, group, progress).await)
            }));
        }
        let flush = manifest_bytes >= GROUP_BYTES as usize
            || manifests.len() >= GROUP_FILES
            || (groups_in_flight == 0 && !manifests.is_empty());
        if failure.is_none() && flush {
            let batch = std::mem::take(&mut manifests);
            manifest_bytes = 0;
            window.push(Box::pin(async move {
                Step::Manifests(upload_blobs(remote, space, batch).await)
            }));
        }
        // On a failure, the work in flight is let finish rather than dropped mid-request.
        let Some(done) = window.next_any().await else {
            break;
        };
        let outcomes = match done {
            Step::Manifests(Ok((blobs, bytes))) => {
                stats.blobs_sent += blobs;
                stats.bytes_sent += bytes;
                continue;
            }
            Step::Group(Ok((outcomes, group_stats))) => {
                groups_in_flight -= 1;
                stats.add(&group_stats);
                outcomes
            }
            Step::Group(Err(error)) | Step::Manifests(Err(error)) => {
                groups_in_flight = groups_in_flight.saturating_sub(1);
                failure.get_or_insert(error);
                continue;
            }
        };
        if failure.is_some() {
            continue;
        }
        // Files already in the snapshot with the same size: their manifests are compared with
        // the new ones (an unchanged file keeps its entry); fetch them in batches rather than
        // one request each. If that fails, each is fetched (and reported) on its own below.
        let mut previous = Vec::new();
        let mut seen = HashSet::new();
        for ((_, dest, ..), result) in &outcomes {
            if let Ok(manifest) = result
                && manifest.chunks.len() != 1
                && let Ok(FileRef {
                    content: FileContent::Manifest(reference),
                    size,
                    ..
                }) = snapshot.file(dest).await
                && size == manifest.file_size
                && seen.insert(reference.id)
            {
                previous.push(reference.id);
            }
        }
        let prefetched = if previous.is_empty() {
            HashMap::new()
        } else {
            fetch_blobs(remote, space, &previous)
                .await
                .unwrap_or_default()
        };
        for ((local, dest, mtime, mode, _), result) in outcomes {
            let stored = match result {
                Ok(manifest) => {
                    stats.files += 1;
                    match resolve_content(snapshot, &dest, &manifest, progress, &prefetched).await {
                        Ok((content, sealed)) => {
                            if let Some(sealed) = sealed {
                                manifest_bytes += sealed.as_bytes().len();
                                manifests.push(sealed);
                            }
                            snapshot
                                .insert_file(&dest, content, manifest.file_size, mtime, mode)
                                .await
                                .map(|_| progress.on_file_done(&local.display().to_string()))
                        }
                        Err(error) => Err(error),
                    }
                }
                Err(Error::Io(error)) => {
                    warn(progress, format!("{}: {error}; skipped", local.display()));
                    Ok(())
                }
                Err(error) => Err(error),
            };
            if let Err(error) = stored {
                failure = Some(error);
                break;
            }
        }
    }
    match failure {
        Some(error) => Err(error),
        None => Ok(()),
    }
}
