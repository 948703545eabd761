//! Downloads: verified chunks written to a temporary file that is renamed into place only once
//! complete, size-checked and fsynced.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use coffre_crypto::dirnode::{FileContent, Timestamp};
use coffre_crypto::envelope::{
    BlobKind, BlobRef, OpenedBlob, open_verified, open_verified_in_place,
};
use coffre_crypto::keys::{BlobId, SpaceId, random_bytes};
use coffre_crypto::manifest::{ChunkRef, Manifest};

use super::batch::{GROUPS_IN_FLIGHT, SMALL_FILE, fetch_blobs, groups, sync_dirs, sync_files};
use super::sink::StreamingFile;
use super::window::Window;
use super::{DOWNLOAD_CONCURRENCY, FILE_CONCURRENCY, TransferStats, warn};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::remote::Remote;
use crate::tree::{EntryType, FileRef, Snapshot, SpacePath};

/// Verified chunks waiting for the writer thread of one large download (each at most
/// `MAX_CHUNK_SIZE`).
const WRITE_QUEUE: usize = 2;

/// A temporary file removed on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn join_error(error: tokio::task::JoinError) -> Error {
    Error::Io(std::io::Error::other(format!(
        "decryption task failed: {error}"
    )))
}

fn system_time(mtime: Timestamp) -> Option<std::time::SystemTime> {
    let base = std::time::UNIX_EPOCH;
    let nanos = std::time::Duration::from_nanos(u64::from(mtime.nanos()));
    if mtime.secs() >= 0 {
        base.checked_add(std::time::Duration::from_secs(mtime.secs().unsigned_abs()))?
            .checked_add(nanos)
    } else {
        base.checked_sub(std::time::Duration::from_secs(mtime.secs().unsigned_abs()))?
            .checked_add(nanos)
    }
}

/// Fetches one chunk and opens it in the buffer it arrived in (id, key commitment, tag,
/// padding, kind, length all checked).
async fn fetch_chunk<R: Remote>(
    remote: &R,
    space: &SpaceId,
    chunk: ChunkRef,
) -> Result<OpenedBlob> {
    let envelope = remote.get_blob(space, &chunk.id).await?;
    let plaintext = tokio::task::spawn_blocking(move || {
        open_verified_in_place(&chunk.id, &chunk.key, BlobKind::Chunk, envelope)
            .map_err(Error::from)
            .and_then(|plaintext| {
                if plaintext.content().len() as u64 == u64::from(chunk.length) {
                    Ok(plaintext)
                } else {
                    Err(Error::Integrity(
                        "a chunk's length differs from its manifest".into(),
                    ))
                }
            })
    })
    .await
    .map_err(join_error)??;
    Ok(plaintext)
}

/// Downloads the file `file` to `dest` (replacing it atomically if it exists). Returns the
/// number of bytes written.
pub(crate) async fn download_file<R: Remote>(
    remote: &R,
    space: &SpaceId,
    file: &FileRef,
    dest: &Path,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<u64> {
    let chunks = match &file.content {
        FileContent::Manifest(reference) => {
            let bytes = remote.get_blob(space, &reference.id).await?;
            opened_manifest(reference, &bytes, file.size)?
        }
        FileContent::Chunk(chunk) => vec![chunk.duplicate()],
    };
    let name = dest
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("not a file path: {}", dest.display())))?;
    let dir = match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let suffix: [u8; 8] = random_bytes()?;
    let suffix: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".coffre-{suffix}.tmp"));
    let mut temp = TempFile {
        path: dir.join(temp_name),
        armed: false,
    };
    let out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp.path)
        .await?
        .into_std()
        .await;
    temp.armed = true;

    // One blocking thread writes the verified chunks in order while the next ones are fetched
    // and opened; the queue between them bounds the plaintext held in memory.
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<OpenedBlob>(WRITE_QUEUE);
    let writer = tokio::task::spawn_blocking(move || -> std::io::Result<StreamingFile> {
        let mut sink = StreamingFile::new(out);
        while let Some(plaintext) = receiver.blocking_recv() {
            sink.write(plaintext.content())?;
        }
        Ok(sink)
    });
    let fetched: Result<()> = async {
        let mut window = Window::new();
        let mut chunks = chunks.iter();
        loop {
            while window.len() < DOWNLOAD_CONCURRENCY {
                let Some(chunk) = chunks.next() else { break };
                window.push(fetch_chunk(remote, space, chunk.duplicate()));
            }
            let Some(plaintext) = window.next_in_order().await else {
                return Ok(());
            };
            let plaintext = plaintext?;
            let length = plaintext.content().len() as u64;
            if sender.send(plaintext).await.is_err() {
                // The writer stopped on an error, reported below.
                return Ok(());
            }
            stats.chunks += 1;
            stats.chunks_sent += 1;
            progress.on_chunk_done(length);
        }
    }
    .await;
    drop(sender);
    // Waited for even when fetching failed, so nothing writes to the file once this returns.
    let sink = writer.await.map_err(join_error)?;
    fetched?;
    let sink = sink?;
    let written = sink.written();
    if written != file.size {
        return Err(Error::Integrity(
            "a file's chunks do not sum to its size".into(),
        ));
    }
    let mode = file.mode;
    let mtime = system_time(file.mtime);
    let temp_path = temp.path.clone();
    let dest_path = dest.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        let out = sink.finish()?;
        #[cfg(unix)]
        if mode != 0 {
            use std::os::unix::fs::PermissionsExt;
            out.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        if let Some(mtime) = mtime {
            out.set_modified(mtime)?;
        }
        drop(out);
        std::fs::rename(&temp_path, &dest_path)?;
        // Make the rename durable; not all platforms allow opening a directory.
        if let Ok(dir) = std::fs::File::open(&dir) {
            let _ = dir.sync_all();
        }
        Ok(())
    })
    .await
    .map_err(join_error)??;
    temp.armed = false;
    stats.files += 1;
    stats.bytes += written;
    Ok(written)
}

/// Downloads the file at `path` in the snapshot to the local `dest`. On any error, `dest` is
/// left as it was.
pub async fn get_file<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    path: &SpacePath,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let file = snapshot.file(path).await?;
    progress.on_start(
        file.size,
        file.size
            .div_ceil(coffre_crypto::chunker::AVG_CHUNK_SIZE as u64),
    );
    let mut stats = TransferStats::default();
    let (remote, space) = (snapshot.remote(), *snapshot.space());
    download_file(remote, &space, &file, dest, progress, &mut stats).await?;
    progress.on_file_done(&path.to_string());
    Ok(stats)
}

/// Makes the local directory `dir`, or accepts an existing real directory (never a symlink to
/// one, which could redirect writes outside the destination).
fn ensure_local_dir(dir: &Path) -> Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(metadata) if metadata.is_dir() => Ok(()),
        Ok(_) => Err(Error::AlreadyExists(format!(
            "{} exists and is not a directory",
            dir.display()
        ))),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir(dir)?;
            Ok(())
        }
        Err(error) => Err(error.into()),
    }
}

/// Downloads the directory at `path` (recursively) into the local directory `dest` (created if
/// missing; its parent must exist). Files are replaced atomically, symlinks recreated (never
/// followed), file modes and mtimes restored; existing local entries that are not in the space
/// are left alone. Returns what was transferred.
pub async fn get_tree<R: Remote>(
    snapshot: &mut Snapshot<'_, R>,
    path: &SpacePath,
    dest: &Path,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let info = snapshot.stat(path).await?;
    if info.kind != EntryType::Dir {
        return Err(Error::InvalidInput(format!("not a directory: {path}")));
    }
    ensure_local_dir(dest)?;
    // Plan: directories (created now, in order), files (downloaded below), dir mtimes (last).
    let mut files: Vec<(SpacePath, PathBuf)> = Vec::new();
    let mut dir_times: Vec<(PathBuf, Timestamp)> = Vec::new();
    let mut total: u64 = 0;
    let mut stack = vec![(path.clone(), dest.to_path_buf())];
    while let Some((at, local)) = stack.pop() {
        for entry in snapshot.ls(&at).await? {
            let child = at.join(&coffre_crypto::dirnode::EntryName::new(&entry.name)?);
            let local_child = local.join(&entry.name);
            match entry.kind {
                EntryType::Dir => {
                    ensure_local_dir(&local_child)?;
                    dir_times.push((local_child.clone(), entry.mtime));
                    stack.push((child, local_child));
                }
                EntryType::File => {
                    total += entry.size;
                    files.push((child, local_child));
                }
                EntryType::Symlink => {
                    let target = entry.target.unwrap_or_default();
                    if let Err(error) = make_symlink(&target, &local_child) {
                        warn(
                            progress,
                            format!("{}: {error}; skipped", local_child.display()),
                        );
                    }
                }
            }
        }
    }
    progress.on_start(
        total,
        total.div_ceil(coffre_crypto::chunker::AVG_CHUNK_SIZE as u64),
    );
    let mut stats = TransferStats::default();
    let (remote, space) = (snapshot.remote(), *snapshot.space());
    let mut refs = Vec::with_capacity(files.len());
    for (at, local) in files {
        refs.push((snapshot.file(&at).await?, at, local));
    }
    let (small, large): (Vec<_>, Vec<_>) = refs
        .into_iter()
        .partition(|(file, _, _)| file.size <= SMALL_FILE);
    get_small_files(remote, &space, small, progress, &mut stats).await?;
    let mut window = Window::new();
    let mut queue = large.into_iter();
    loop {
        while window.len() < FILE_CONCURRENCY {
            let Some((file, at, local)) = queue.next() else {
                break;
            };
            window.push(async move {
                let mut file_stats = TransferStats::default();
                let result =
                    download_file(remote, &space, &file, &local, progress, &mut file_stats).await;
                (at, file_stats, result)
            });
        }
        let Some((at, file_stats, result)) = window.next_any().await else {
            break;
        };
        result?;
        stats.add(&file_stats);
        progress.on_file_done(&at.to_string());
    }
    // Deepest first, so setting a child's time does not disturb its parent's afterwards.
    for (dir, mtime) in dir_times.into_iter().rev() {
        if let Some(time) = system_time(mtime)
            && let Ok(handle) = std::fs::File::open(&dir)
            && let Err(error) = handle.set_modified(time)
        {
            warn(
                progress,
                format!("{}: cannot set mtime: {error}", dir.display()),
            );
        }
    }
    Ok(stats)
}

/// Creates (or replaces) a symlink; never writes through an existing link.
fn make_symlink(target: &str, link: &Path) -> Result<()> {
    if let Ok(metadata) = std::fs::symlink_metadata(link) {
        if metadata.file_type().is_symlink() || metadata.is_file() {
            std::fs::remove_file(link)?;
        } else {
            return Err(Error::AlreadyExists(format!(
                "{} exists and is a directory",
                link.display()
            )));
        }
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(target, link)?;
        Ok(())
    }
    #[cfg(not(unix))]
    {
        let _ = target;
        Err(Error::InvalidInput(
            "symlinks are only recreated on Unix".into(),
        ))
    }
}

/// The chunks listed by the manifest `reference` (envelope `bytes`), checked against the entry's
/// `size`.
fn opened_manifest(reference: &BlobRef, bytes: &[u8], size: u64) -> Result<Vec<ChunkRef>> {
    let manifest = Manifest::open(reference, bytes)?;
    if manifest.file_size != size {
        return Err(Error::Integrity(
            "a file's size differs from its manifest".into(),
        ));
    }
    Ok(manifest.chunks)
}

/// A small file of a tree download: its reference, its path in the space, its local path.
type SmallFile = (FileRef, SpacePath, PathBuf);

/// The directory `dest` is in.
fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// A fresh temporary name next to `dest` for a download to be written to, and its directory.
fn temp_path(dest: &Path) -> Result<(PathBuf, PathBuf)> {
    let name = dest
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("not a file path: {}", dest.display())))?;
    let dir = parent_dir(dest);
    let suffix: [u8; 8] = random_bytes()?;
    let suffix: String = suffix.iter().map(|byte| format!("{byte:02x}")).collect();
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(name);
    temp_name.push(format!(".coffre-{suffix}.tmp"));
    Ok((dir.join(temp_name), dir))
}

/// Opens every chunk of a group's files and writes each file to a temporary file; then all the
/// temporary files are fsynced together, renamed over their destinations, and each directory
/// touched is fsynced once (blocking). The same guarantee as [`download_file`] — a destination is
/// only ever replaced by a complete, verified, fsynced file — with the syncs shared by the group.
fn write_group(
    files: &[(SmallFile, Vec<ChunkRef>)],
    envelopes: &HashMap<BlobId, Vec<u8>>,
) -> Result<u64> {
    let mut temps: Vec<TempFile> = Vec::with_capacity(files.len());
    let mut handles = Vec::with_capacity(files.len());
    let mut written_total = 0u64;
    for ((file, _, dest), chunks) in files {
        let (temp_path, _) = temp_path(dest)?;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp_path)?;
        temps.push(TempFile {
            path: temp_path,
            armed: true,
        });
        let mut written = 0u64;
        for chunk in chunks {
            let envelope = envelopes.get(&chunk.id).ok_or_else(|| {
                Error::Protocol("the gateway did not send a chunk it was asked for".into())
            })?;
            let plaintext = open_verified(&chunk.id, &chunk.key, BlobKind::Chunk, envelope)?;
            if plaintext.len() as u64 != u64::from(chunk.length) {
                return Err(Error::Integrity(
                    "a chunk's length differs from its manifest".into(),
                ));
            }
            std::io::Write::write_all(&mut out, &plaintext)?;
            written += plaintext.len() as u64;
        }
        if written != file.size {
            return Err(Error::Integrity(
                "a file's chunks do not sum to its size".into(),
            ));
        }
        #[cfg(unix)]
        if file.mode != 0 {
            use std::os::unix::fs::PermissionsExt;
            out.set_permissions(std::fs::Permissions::from_mode(file.mode))?;
        }
        if let Some(mtime) = system_time(file.mtime) {
            out.set_modified(mtime)?;
        }
        written_total += written;
        handles.push(out);
    }
    sync_files(&handles)?;
    drop(handles);
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (((_, _, dest), _), temp) in files.iter().zip(&mut temps) {
        std::fs::rename(&temp.path, dest)?;
        temp.armed = false;
        let dir = parent_dir(dest);
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    sync_dirs(&dirs)?;
    Ok(written_total)
}

/// Downloads one group of small files: their manifests in one fetch (files of one chunk have
/// none), their chunks in another, then opened and written on a blocking thread
/// ([`write_group`]).
async fn download_group<R: Remote>(
    remote: &R,
    space: &SpaceId,
    files: Vec<SmallFile>,
    progress: &dyn Progress,
) -> Result<TransferStats> {
    let mut stats = TransferStats::default();
    let mut seen = HashSet::new();
    let manifest_ids: Vec<BlobId> = files
        .iter()
        .filter_map(|(file, _, _)| match &file.content {
            FileContent::Manifest(reference) => Some(reference.id),
            FileContent::Chunk(_) => None,
        })
        .filter(|id| seen.insert(*id))
        .collect();
    let manifest_bytes = if manifest_ids.is_empty() {
        HashMap::new()
    } else {
        fetch_blobs(remote, space, &manifest_ids).await?
    };
    let mut opened = Vec::with_capacity(files.len());
    let mut chunk_ids = Vec::new();
    let mut seen = HashSet::new();
    for small in files {
        let chunks = match &small.0.content {
            FileContent::Manifest(reference) => {
                let bytes = manifest_bytes.get(&reference.id).ok_or_else(|| {
                    Error::Protocol("the gateway did not send a manifest it was asked for".into())
                })?;
                opened_manifest(reference, bytes, small.0.size)?
            }
            FileContent::Chunk(chunk) => vec![chunk.duplicate()],
        };
        for chunk in &chunks {
            stats.chunks += 1;
            if seen.insert(chunk.id) {
                chunk_ids.push(chunk.id);
            }
        }
        opened.push((small, chunks));
    }
    let envelopes = if chunk_ids.is_empty() {
        HashMap::new()
    } else {
        fetch_blobs(remote, space, &chunk_ids).await?
    };
    stats.chunks_sent += chunk_ids.len() as u64;
    let (opened, written) = tokio::task::spawn_blocking(move || {
        let written = write_group(&opened, &envelopes);
        (opened, written)
    })
    .await
    .map_err(join_error)?;
    let written = written?;
    stats.files += opened.len() as u64;
    stats.bytes += written;
    for ((file, at, _), _) in &opened {
        progress.on_chunk_done(file.size);
        progress.on_file_done(&at.to_string());
    }
    Ok(stats)
}

/// Downloads the small files of a tree in groups, up to [`GROUPS_IN_FLIGHT`] at once.
async fn get_small_files<R: Remote>(
    remote: &R,
    space: &SpaceId,
    files: Vec<SmallFile>,
    progress: &dyn Progress,
    stats: &mut TransferStats,
) -> Result<()> {
    let mut queue = groups(files, |(file, _, _)| file.size).into_iter();
    let mut window = Window::new();
    loop {
        while window.len() < GROUPS_IN_FLIGHT {
            let Some(group) = queue.next() else { break };
            window.push(download_group(remote, space, group, progress));
        }
        let Some(done) = window.next_any().await else {
            break;
        };
        match done {
            Ok(group) => stats.add(&group),
            Err(error) => {
                // Let the groups in flight finish (their blocking writers cannot be cancelled),
                // so that nothing is still being written, and no temporary file is left, once
                // this returns.
                while window.next_any().await.is_some() {}
                return Err(error);
            }
        }
    }
    Ok(())
}
