//! Downloads: verified chunks written to a temporary file that is renamed into place only once
//! complete, size-checked and fsynced.

use std::path::{Path, PathBuf};

use coffre_crypto::dirnode::Timestamp;
use coffre_crypto::envelope::{BlobKind, open_verified};
use coffre_crypto::keys::{SpaceId, random_bytes};
use coffre_crypto::manifest::{ChunkRef, Manifest};
use tokio::io::AsyncWriteExt;

use super::window::Window;
use super::{DOWNLOAD_CONCURRENCY, FILE_CONCURRENCY, TransferStats, warn};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::remote::Remote;
use crate::tree::{EntryType, FileRef, Snapshot, SpacePath};

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

/// Fetches one chunk and opens it (id, key commitment, tag, padding, kind, length all checked).
async fn fetch_chunk<R: Remote>(remote: &R, space: &SpaceId, chunk: ChunkRef) -> Result<Vec<u8>> {
    let envelope = remote.get_blob(space, &chunk.id).await?;
    let plaintext = tokio::task::spawn_blocking(move || {
        open_verified(&chunk.id, &chunk.key, BlobKind::Chunk, &envelope)
            .map_err(Error::from)
            .and_then(|plaintext| {
                if plaintext.len() as u64 == u64::from(chunk.length) {
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
    let bytes = remote.get_blob(space, &file.manifest.id).await?;
    let manifest = Manifest::open(&file.manifest, &bytes)?;
    if manifest.file_size != file.size {
        return Err(Error::Integrity(
            "a file's size differs from its manifest".into(),
        ));
    }
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
    let mut out = tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&temp.path)
        .await?;
    temp.armed = true;

    let mut written: u64 = 0;
    let mut window = Window::new();
    let mut chunks = manifest.chunks.iter();
    loop {
        while window.len() < DOWNLOAD_CONCURRENCY {
            let Some(chunk) = chunks.next() else { break };
            window.push(fetch_chunk(remote, space, chunk.duplicate()));
        }
        let Some(plaintext) = window.next_in_order().await else {
            break;
        };
        let plaintext = plaintext?;
        out.write_all(&plaintext).await?;
        let length = plaintext.len() as u64;
        written += length;
        stats.chunks += 1;
        stats.chunks_sent += 1;
        progress.on_chunk_done(length);
    }
    if written != file.size {
        return Err(Error::Integrity(
            "a file's chunks do not sum to its size".into(),
        ));
    }
    out.flush().await?;
    let out = out.into_std().await;
    let mode = file.mode;
    let mtime = system_time(file.mtime);
    let temp_path = temp.path.clone();
    let dest_path = dest.to_path_buf();
    tokio::task::spawn_blocking(move || -> Result<()> {
        out.sync_all()?;
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
    let mut window = Window::new();
    let mut queue = refs.into_iter();
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
