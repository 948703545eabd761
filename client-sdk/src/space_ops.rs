//! High-level operations on an open [`Space`]: what the CLI and applications call.
//!
//! Each method is a thin composition of [`History`], [`Snapshot`] and the [`crate::files`]
//! pipelines: read the verified head, change the tree, commit. Every mutation is exactly one
//! commit, appended with compare-and-swap; when another device committed meanwhile, the commits
//! are verified and merged and the commit retried ([`History::commit`]). A mutation that changes
//! nothing makes no commit.
//!
//! Path semantics (like `cp`/`rsync`):
//! - [`Space::put`] of a local **file** to a path that is an existing directory puts it inside,
//!   under its own name; otherwise the path is the file's new name. A local **directory**'s
//!   contents are put into the path, which is created if needed (`rsync -r DIR/ PATH`);
//! - [`Space::get`] of a **file** into an existing local directory writes it inside under its
//!   own name; otherwise the local path is the file's name. A **directory**'s contents are
//!   written into the local path (created if missing).
//!
//! Invariants: nothing here sees a key or plaintext beyond what the lower layers hand over;
//! commit messages (`put /a`, `rm /b`) are sealed inside the commit root, so the gateway never
//! sees the paths. The membership log is the one the space was opened (or last refreshed) with:
//! long-lived handles call [`Space::refresh_membership`] when the log may have moved.

use std::path::Path;

use coffre_crypto::membership::{MembershipLog, Role};

use crate::error::{Error, Result};
use crate::files::{self, TransferStats};
use crate::history::{CommitInfo, Committed, History};
use crate::progress::Progress;
use crate::remote::Remote;
use crate::spaces::{Space, fetch_log};
use crate::tree::{EntryInfo, EntryType, Snapshot, SpacePath};

/// What a mutation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    /// The new head, or `None` when nothing changed (no commit was made).
    pub commit: Option<CommitInfo>,
    /// Conflict copies made while merging with concurrent commits: `(original, copy)`.
    pub conflicts: Vec<(String, String)>,
}

impl Change {
    fn from_committed(committed: Option<Committed>) -> Self {
        match committed {
            Some(committed) => Change {
                commit: Some(committed.info),
                conflicts: committed.merged.conflicts,
            },
            None => Change::default(),
        }
    }
}

/// What [`Space::put`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PutSummary {
    /// Where the upload landed in the space.
    pub dest: SpacePath,
    /// Files, bytes, chunks and blobs sent.
    pub stats: TransferStats,
    /// The commit.
    pub change: Change,
}

/// What [`Space::get`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GetSummary {
    /// The head seq read from (0 for an empty space).
    pub seq: u64,
    /// Files and bytes written.
    pub stats: TransferStats,
}

/// A space's state as [`Space::status`] reports it (verified facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceStatus {
    /// The space id, hex.
    pub id: String,
    /// The local display name, if set on this device.
    pub name: Option<String>,
    /// The verified head seq (0: no commit yet).
    pub head_seq: u64,
    /// The current epoch.
    pub epoch: u64,
    /// This account's role.
    pub role: Option<Role>,
    /// Number of members.
    pub members: usize,
}

impl<R: Remote> Space<R> {
    /// The space's membership log fetched and verified now, if this account may write with it:
    /// a reader, or a member removed since the space was opened, is refused here
    /// ([`Error::Forbidden`]) before anything is uploaded or signed **[T-unauth-write]**. Writing
    /// with the newest log also means writing under the newest epoch key, never one a removed
    /// member holds **[T-revocation]**.
    async fn writable_log(&self) -> Result<MembershipLog> {
        let log = fetch_log(&self.remote, &self.state, &self.id).await?;
        match log.state().role_of(self.session.identity().sign_key()) {
            Some(role) if role.can_write() => Ok(log),
            Some(role) => Err(Error::Forbidden(format!(
                "a {} of this space cannot change it",
                role.name()
            ))),
            None => Err(Error::Forbidden(
                "this account is no longer a member of this space".to_owned(),
            )),
        }
    }

    /// Reads the verified head, lets `edit` change the tree, and commits it as one commit.
    async fn mutate(&self, edit: Edit<'_>) -> Result<Change> {
        let log = self.writable_log().await?;
        let history = History::new(self.context_with(&log));
        let (head, mut snapshot) = history.head_snapshot().await?;
        edit.apply(&mut snapshot).await?;
        let committed = history
            .commit(head.as_ref(), &mut snapshot, &edit.message())
            .await?;
        Ok(Change::from_committed(committed))
    }

    /// Uploads the local file or directory `local` to `dest` (see the module docs for where it
    /// lands) and commits. Unchanged chunks are not re-sent.
    pub async fn put(
        &self,
        local: &Path,
        dest: &SpacePath,
        progress: &dyn Progress,
    ) -> Result<PutSummary> {
        let metadata = tokio::fs::metadata(local).await.map_err(|error| {
            Error::Io(std::io::Error::new(
                error.kind(),
                format!("{}: {error}", local.display()),
            ))
        })?;
        let log = self.writable_log().await?;
        let history = History::new(self.context_with(&log));
        let keys = history.chunk_keys()?;
        let (head, mut snapshot) = history.head_snapshot().await?;
        let (target, stats) = if metadata.is_dir() {
            if !dest.is_root() {
                match snapshot.stat(dest).await {
                    Ok(info) if info.kind != EntryType::Dir => {
                        return Err(Error::AlreadyExists(format!(
                            "{dest} exists and is not a directory"
                        )));
                    }
                    Ok(_) => {}
                    Err(Error::NotFound(_)) => snapshot.mkdir(dest, true).await?,
                    Err(error) => return Err(error),
                }
            }
            let stats = files::put_tree(&mut snapshot, &keys, local, dest, progress).await?;
            (dest.clone(), stats)
        } else {
            let target = match snapshot.stat(dest).await {
                Ok(info) if info.kind == EntryType::Dir => dest.join(&local_name(local)?),
                Ok(_) | Err(Error::NotFound(_)) => dest.clone(),
                Err(error) => return Err(error),
            };
            let stats = files::put_file(&mut snapshot, &keys, local, &target, progress).await?;
            (target, stats)
        };
        let committed = history
            .commit(head.as_ref(), &mut snapshot, &format!("put {target}"))
            .await?;
        Ok(PutSummary {
            dest: target,
            stats,
            change: Change::from_committed(committed),
        })
    }

    /// Downloads the file or directory `src` at the verified head to `local` (see the module
    /// docs). Every byte is verified before it is written; files are replaced atomically.
    pub async fn get(
        &self,
        src: &SpacePath,
        local: &Path,
        progress: &dyn Progress,
    ) -> Result<GetSummary> {
        let history = History::new(self.context());
        let (head, mut snapshot) = history.head_snapshot().await?;
        let info = snapshot.stat(src).await?;
        let stats = match info.kind {
            EntryType::Dir => files::get_tree(&mut snapshot, src, local, progress).await?,
            EntryType::File => {
                let target = match std::fs::metadata(local) {
                    Ok(metadata) if metadata.is_dir() => local.join(&info.name),
                    _ => local.to_path_buf(),
                };
                files::get_file(&mut snapshot, src, &target, progress).await?
            }
            EntryType::Symlink => {
                return Err(Error::InvalidInput(format!(
                    "{src} is a symbolic link (to {:?}); get its directory instead",
                    info.target.unwrap_or_default()
                )));
            }
        };
        Ok(GetSummary {
            seq: head.map_or(0, |commit| commit.seq()),
            stats,
        })
    }

    /// The entries of the directory `path` at the verified head (a file: just that entry).
    pub async fn ls(&self, path: &SpacePath) -> Result<Vec<EntryInfo>> {
        let history = History::new(self.context());
        let (_, mut snapshot) = history.head_snapshot().await?;
        let info = snapshot.stat(path).await?;
        if info.kind == EntryType::Dir {
            snapshot.ls(path).await
        } else {
            Ok(vec![info])
        }
    }

    /// What is at `path` at the verified head.
    pub async fn stat(&self, path: &SpacePath) -> Result<EntryInfo> {
        let history = History::new(self.context());
        let (_, mut snapshot) = history.head_snapshot().await?;
        snapshot.stat(path).await
    }

    /// Removes `path` (a non-empty directory needs `recursive`), as one commit.
    pub async fn rm(&self, path: &SpacePath, recursive: bool) -> Result<Change> {
        self.mutate(Edit::Rm(path, recursive)).await
    }

    /// Moves `from` to `to` (into `to` if it is a directory), as one commit. Nothing is
    /// re-uploaded but the changed directory nodes.
    pub async fn mv(&self, from: &SpacePath, to: &SpacePath) -> Result<Change> {
        self.mutate(Edit::Mv(from, to)).await
    }

    /// Creates the directory `path` (with `parents`: missing parents too, and an existing
    /// directory is fine), as one commit.
    pub async fn mkdir(&self, path: &SpacePath, parents: bool) -> Result<Change> {
        self.mutate(Edit::Mkdir(path, parents)).await
    }

    /// Every commit, oldest first, verified.
    pub async fn history_log(&self) -> Result<Vec<CommitInfo>> {
        History::new(self.context()).log().await
    }

    /// Restores `path` (or everything, with `None`) as it was at commit `seq`, as a new commit.
    pub async fn restore(&self, path: Option<&SpacePath>, seq: u64) -> Result<Change> {
        let log = self.writable_log().await?;
        let committed = History::new(self.context_with(&log))
            .restore(path, seq)
            .await?;
        Ok(Change::from_committed(committed))
    }

    /// The verified head seq, epoch, this account's role and the member count.
    pub async fn status(&self) -> Result<SpaceStatus> {
        let head = History::new(self.context()).head().await?;
        Ok(SpaceStatus {
            id: self.id.to_hex(),
            name: self.name.clone(),
            head_seq: head.map_or(0, |commit| commit.seq()),
            epoch: self.epoch,
            role: self.role(),
            members: self.log.state().members().count(),
        })
    }
}

fn local_name(local: &Path) -> Result<coffre_crypto::dirnode::EntryName> {
    let name = local
        .file_name()
        .and_then(|name| name.to_str())
        .ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} has no UTF-8 file name; name the destination explicitly",
                local.display()
            ))
        })?;
    Ok(coffre_crypto::dirnode::EntryName::new(name)?)
}

/// One tree edit, applied to the head snapshot by [`Space::mutate`].
enum Edit<'p> {
    Rm(&'p SpacePath, bool),
    Mv(&'p SpacePath, &'p SpacePath),
    Mkdir(&'p SpacePath, bool),
}

impl Edit<'_> {
    fn message(&self) -> String {
        match self {
            Edit::Rm(path, _) => format!("rm {path}"),
            Edit::Mv(from, to) => format!("mv {from} {to}"),
            Edit::Mkdir(path, _) => format!("mkdir {path}"),
        }
    }

    async fn apply<R: Remote>(&self, snapshot: &mut Snapshot<'_, R>) -> Result<()> {
        match *self {
            Edit::Rm(path, recursive) => snapshot.rm(path, recursive).await,
            Edit::Mv(from, to) => snapshot.mv(from, to).await,
            Edit::Mkdir(path, parents) => snapshot.mkdir(path, parents).await,
        }
    }
}
