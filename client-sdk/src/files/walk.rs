//! Walking a local directory for [`put_tree`](super::put_tree): what to create, in order
//! (a directory before its contents). Symlinks are recorded as links and never followed, so a
//! walk cannot leave the given directory or loop.

use std::fs::Metadata;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use coffre_crypto::dirnode::{EntryName, MODE_MASK, Timestamp};

use crate::error::{Error, Result};
use crate::tree::{MAX_DEPTH, SpacePath};

/// One thing to put.
#[derive(Debug)]
pub(crate) enum LocalItem {
    Dir {
        dest: SpacePath,
        mtime: Timestamp,
    },
    File {
        local: PathBuf,
        dest: SpacePath,
        mtime: Timestamp,
        mode: u32,
        size: u64,
    },
    Symlink {
        dest: SpacePath,
        target: String,
        mtime: Timestamp,
    },
}

impl LocalItem {
    pub(crate) fn size(&self) -> u64 {
        match self {
            LocalItem::File { size, .. } => *size,
            _ => 0,
        }
    }
}

/// The walk's result.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub(crate) items: Vec<LocalItem>,
    pub(crate) warnings: Vec<String>,
}

/// A local file's mtime and permission bits (0o644 off Unix).
pub(crate) fn local_meta(metadata: &Metadata) -> Result<(Timestamp, u32)> {
    let mtime = match metadata.modified()?.duration_since(UNIX_EPOCH) {
        Ok(after) => Timestamp::new(
            i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
            after.subsec_nanos(),
        )?,
        Err(before) => {
            let before = before.duration();
            let secs = -i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
            match before.subsec_nanos() {
                0 => Timestamp::new(secs, 0)?,
                nanos => Timestamp::new(secs - 1, 1_000_000_000 - nanos)?,
            }
        }
    };
    #[cfg(unix)]
    let mode = {
        use std::os::unix::fs::PermissionsExt;
        metadata.permissions().mode() & MODE_MASK
    };
    #[cfg(not(unix))]
    let mode = 0o644 & MODE_MASK;
    Ok((mtime, mode))
}

/// Walks `root` (a directory; a symlink given as the root itself is followed) into `dest`.
pub(crate) fn walk(root: &Path, dest: &SpacePath) -> Result<Plan> {
    let metadata = std::fs::metadata(root)?;
    if !metadata.is_dir() {
        return Err(Error::InvalidInput(format!(
            "not a directory: {}",
            root.display()
        )));
    }
    let mut plan = Plan::default();
    let (mtime, _) = local_meta(&metadata)?;
    plan.items.push(LocalItem::Dir {
        dest: dest.clone(),
        mtime,
    });
    let mut stack = vec![(root.to_path_buf(), dest.clone())];
    while let Some((dir, at)) = stack.pop() {
        let mut children = Vec::new();
        match std::fs::read_dir(&dir) {
            Ok(entries) => {
                for entry in entries {
                    match entry {
                        Ok(entry) => children.push(entry),
                        Err(error) => plan
                            .warnings
                            .push(format!("{}: {error}; skipped", dir.display())),
                    }
                }
            }
            Err(error) => {
                plan.warnings
                    .push(format!("{}: {error}; skipped", dir.display()));
                continue;
            }
        }
        children.sort_by_key(std::fs::DirEntry::file_name);
        let mut subdirs = Vec::new();
        for child in children {
            let local = child.path();
            let Some(name) = child
                .file_name()
                .to_str()
                .and_then(|name| EntryName::new(name).ok())
            else {
                plan.warnings.push(format!(
                    "{}: the name is not valid UTF-8 or not allowed; skipped",
                    local.display()
                ));
                continue;
            };
            let dest = at.join(&name);
            if dest.components().len() > MAX_DEPTH {
                plan.warnings
                    .push(format!("{}: too deep; skipped", local.display()));
                continue;
            }
            let metadata = match std::fs::symlink_metadata(&local) {
                Ok(metadata) => metadata,
                Err(error) => {
                    plan.warnings
                        .push(format!("{}: {error}; skipped", local.display()));
                    continue;
                }
            };
            let (mtime, mode) = local_meta(&metadata)?;
            let kind = metadata.file_type();
            if kind.is_symlink() {
                let target = std::fs::read_link(&local)?;
                match target.to_str() {
                    Some(target) if !target.is_empty() => plan.items.push(LocalItem::Symlink {
                        dest,
                        target: target.to_owned(),
                        mtime,
                    }),
                    _ => plan.warnings.push(format!(
                        "{}: the link target is not valid UTF-8; skipped",
                        local.display()
                    )),
                }
            } else if kind.is_dir() {
                plan.items.push(LocalItem::Dir {
                    dest: dest.clone(),
                    mtime,
                });
                subdirs.push((local, dest));
            } else if kind.is_file() {
                plan.items.push(LocalItem::File {
                    local,
                    dest,
                    mtime,
                    mode,
                    size: metadata.len(),
                });
            } else {
                plan.warnings.push(format!(
                    "{}: not a regular file, directory or symlink; skipped",
                    local.display()
                ));
            }
        }
        // Reverse, so the stack pops them in name order.
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(plan)
}
