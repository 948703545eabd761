//! A snapshot of a space's tree, loaded lazily from its root and edited in memory.
//!
//! Reading a path fetches only the directory nodes on that path, each verified (blob id, then
//! AEAD, then canonical encoding) before use. Editing changes the loaded directories in place;
//! [`Snapshot::write`] then re-seals only the directories from each changed entry up to the root
//! (fresh random keys) and uploads only those: every unchanged subtree keeps its [`BlobRef`].
//!
//! Threats: a gateway that swaps, drops or edits a directory node is caught when the node is
//! opened ([`Error::Integrity`] or [`Error::NotFound`]); a malicious member's tree cannot make the
//! SDK loop or recurse without bound (paths are at most [`MAX_DEPTH`] deep).

use coffre_crypto::dirnode::{EntryName, FileContent, MODE_MASK, Timestamp};
use coffre_crypto::envelope::{BlobRef, SealedBlob};
use coffre_crypto::keys::SpaceId;

use super::node::{Dir, DirSlot, Entry, Node, now, seal_slot};
use super::path::SpacePath;
use crate::error::{Error, Result};
use crate::remote::Remote;

/// The deepest path the SDK follows or creates.
pub const MAX_DEPTH: usize = 256;

/// The kind of an entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EntryType {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
}

/// What `ls` and `stat` show about an entry (no keys).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryInfo {
    /// The entry's name (empty for the root).
    pub name: String,
    /// File, directory or symlink.
    pub kind: EntryType,
    /// File size in bytes (0 for directories and symlinks).
    pub size: u64,
    /// Modification time.
    pub mtime: Timestamp,
    /// Permission bits (files only; 0 otherwise).
    pub mode: u32,
    /// The link target (symlinks only).
    pub target: Option<String>,
}

impl EntryInfo {
    fn of(name: &str, entry: &Entry) -> Self {
        let (kind, size, mode, target) = match &entry.node {
            Node::File { size, mode, .. } => (EntryType::File, *size, *mode, None),
            Node::Dir(_) => (EntryType::Dir, 0, 0, None),
            Node::Symlink { target } => (EntryType::Symlink, 0, 0, Some(target.clone())),
        };
        EntryInfo {
            name: name.to_owned(),
            kind,
            size,
            mtime: entry.mtime,
            mode,
            target,
        }
    }
}

/// A file's references, for reading it.
#[derive(Debug)]
pub struct FileRef {
    /// Where the bytes are: a manifest blob, or (a file of one chunk) the chunk itself.
    pub content: FileContent,
    /// The size the directory entry claims (checked against the manifest or the chunk).
    pub size: u64,
    /// Permission bits.
    pub mode: u32,
    /// Modification time.
    pub mtime: Timestamp,
}

/// A space's tree at one point, loaded on demand from `remote`.
#[derive(Debug)]
pub struct Snapshot<'r, R> {
    remote: &'r R,
    space: SpaceId,
    root: DirSlot,
}

fn not_found(path: &SpacePath) -> Error {
    Error::NotFound(format!("no such path: {path}"))
}

fn not_a_dir(path: &SpacePath) -> Error {
    Error::InvalidInput(format!("not a directory: {path}"))
}

fn check_depth(path: &SpacePath) -> Result<()> {
    if path.components().len() > MAX_DEPTH {
        return Err(Error::InvalidInput(format!(
            "paths are at most {MAX_DEPTH} levels deep"
        )));
    }
    Ok(())
}

impl<'r, R: Remote> Snapshot<'r, R> {
    /// An empty tree (a new space).
    pub fn empty(remote: &'r R, space: SpaceId) -> Self {
        Snapshot {
            remote,
            space,
            root: DirSlot::Loaded(Box::new(Dir::new_empty())),
        }
    }

    /// The tree whose root directory node is `root` (nothing is fetched yet).
    pub fn open(remote: &'r R, space: SpaceId, root: BlobRef) -> Self {
        Snapshot {
            remote,
            space,
            root: DirSlot::Stored(root),
        }
    }

    /// The space this snapshot belongs to.
    pub fn space(&self) -> &SpaceId {
        &self.space
    }

    /// The remote blobs are read from.
    pub fn remote(&self) -> &'r R {
        self.remote
    }

    /// Whether something changed since the snapshot was opened or last written.
    pub fn is_changed(&self) -> bool {
        self.root.clean_id().is_none()
    }

    /// The root reference if nothing changed since it was opened or written.
    pub fn clean_root(&self) -> Option<BlobRef> {
        self.root.clean_ref().map(BlobRef::duplicate)
    }

    pub(crate) fn root_slot_mut(&mut self) -> &mut DirSlot {
        &mut self.root
    }

    /// The directory at `components`, loaded; with `create`, missing directories are made.
    pub(crate) async fn dir_mut(&mut self, path: &SpacePath, create: bool) -> Result<&mut Dir> {
        check_depth(path)?;
        let (remote, space) = (self.remote, self.space);
        let mut dir = self.root.load(remote, &space).await?;
        for name in path.components() {
            if !dir.entries.contains_key(name) {
                if !create {
                    return Err(not_found(path));
                }
                dir.entries.insert(name.clone(), Entry::new_dir(now()?));
                dir.dirty = true;
            }
            dir = match dir.entries.get_mut(name).map(|entry| &mut entry.node) {
                Some(Node::Dir(slot)) => slot.load(remote, &space).await?,
                Some(_) => return Err(not_a_dir(path)),
                None => return Err(not_found(path)),
            };
        }
        Ok(dir)
    }

    /// The entry at `path` (not the root).
    pub(crate) async fn entry(&mut self, path: &SpacePath) -> Result<&Entry> {
        let (parent, name) = path.split_last()?;
        let dir = match self.dir_mut(&parent, false).await {
            Err(Error::NotFound(_)) => return Err(not_found(path)),
            other => other?,
        };
        dir.entries.get(name).ok_or_else(|| not_found(path))
    }

    /// The entries of the directory at `path`, by name (byte order).
    pub async fn ls(&mut self, path: &SpacePath) -> Result<Vec<EntryInfo>> {
        let dir = self.dir_mut(path, false).await?;
        Ok(dir
            .entries
            .iter()
            .map(|(name, entry)| EntryInfo::of(name.as_str(), entry))
            .collect())
    }

    /// What is at `path` (the root is a directory named "").
    pub async fn stat(&mut self, path: &SpacePath) -> Result<EntryInfo> {
        if path.is_root() {
            self.dir_mut(path, false).await?;
            return Ok(EntryInfo {
                name: String::new(),
                kind: EntryType::Dir,
                size: 0,
                mtime: Timestamp::new(0, 0)?,
                mode: 0,
                target: None,
            });
        }
        let name = path.file_name().map(EntryName::as_str).unwrap_or_default();
        let name = name.to_owned();
        Ok(EntryInfo::of(&name, self.entry(path).await?))
    }

    /// The references of the file at `path`.
    pub async fn file(&mut self, path: &SpacePath) -> Result<FileRef> {
        match self.entry(path).await? {
            Entry {
                mtime,
                node:
                    Node::File {
                        content,
                        size,
                        mode,
                    },
            } => Ok(FileRef {
                content: content.duplicate(),
                size: *size,
                mode: *mode,
                mtime: *mtime,
            }),
            _ => Err(Error::InvalidInput(format!("not a file: {path}"))),
        }
    }

    /// Creates the directory `path`. With `parents`, missing parents are created and an existing
    /// directory is fine (`mkdir -p`); without, the parent must exist and `path` must not.
    pub async fn mkdir(&mut self, path: &SpacePath, parents: bool) -> Result<()> {
        let (parent, name) = path.split_last()?;
        let mtime = now()?;
        let dir = self.dir_mut(&parent, parents).await?;
        match dir.entries.get(name).map(|entry| &entry.node) {
            Some(Node::Dir(_)) if parents => Ok(()),
            Some(_) => Err(Error::AlreadyExists(path.to_string())),
            None => {
                dir.entries.insert(name.clone(), Entry::new_dir(mtime));
                dir.dirty = true;
                Ok(())
            }
        }
    }

    /// Creates the directory `path` and its missing parents with `mtime` (an existing directory
    /// is left as it is).
    pub(crate) async fn mkdir_at(&mut self, path: &SpacePath, mtime: Timestamp) -> Result<()> {
        let (parent, name) = path.split_last()?;
        let dir = self.dir_mut(&parent, true).await?;
        match dir.entries.get(name).map(|entry| &entry.node) {
            Some(Node::Dir(_)) => Ok(()),
            Some(_) => Err(Error::AlreadyExists(path.to_string())),
            None => {
                dir.entries.insert(name.clone(), Entry::new_dir(mtime));
                dir.dirty = true;
                Ok(())
            }
        }
    }

    /// Removes `path`. A non-empty directory needs `recursive`.
    pub async fn rm(&mut self, path: &SpacePath, recursive: bool) -> Result<()> {
        let (parent, name) = path.split_last()?;
        let (remote, space) = (self.remote, self.space);
        let dir = match self.dir_mut(&parent, false).await {
            Err(Error::NotFound(_)) => return Err(not_found(path)),
            other => other?,
        };
        let entry = dir.entries.get_mut(name).ok_or_else(|| not_found(path))?;
        if let Node::Dir(slot) = &mut entry.node
            && !recursive
            && !slot.load(remote, &space).await?.entries.is_empty()
        {
            return Err(Error::InvalidInput(format!(
                "directory not empty (remove it recursively): {path}"
            )));
        }
        dir.entries.remove(name);
        dir.dirty = true;
        Ok(())
    }

    /// Detaches the entry at `path` and returns it.
    pub(crate) async fn take(&mut self, path: &SpacePath) -> Result<Entry> {
        let (parent, name) = path.split_last()?;
        let dir = match self.dir_mut(&parent, false).await {
            Err(Error::NotFound(_)) => return Err(not_found(path)),
            other => other?,
        };
        let entry = dir.entries.remove(name).ok_or_else(|| not_found(path))?;
        dir.dirty = true;
        Ok(entry)
    }

    /// Puts `entry` at `path`, creating missing parents. An existing entry is replaced, unless
    /// it is a directory and `entry` is not (then [`Error::AlreadyExists`]). Returns whether the
    /// tree changed (putting an identical entry changes nothing).
    pub(crate) async fn put_entry(&mut self, path: &SpacePath, entry: Entry) -> Result<bool> {
        let (parent, name) = path.split_last()?;
        let dir = self.dir_mut(&parent, true).await?;
        if let Some(existing) = dir.entries.get(name) {
            if existing.same_as(&entry) {
                return Ok(false);
            }
            if matches!(existing.node, Node::Dir(_)) && !matches!(entry.node, Node::Dir(_)) {
                return Err(Error::AlreadyExists(format!("{path} is a directory")));
            }
        }
        dir.entries.insert(name.clone(), entry);
        dir.dirty = true;
        Ok(true)
    }

    /// Moves `from` to `to` without re-uploading anything. If `to` is an existing directory the
    /// entry moves into it under its own name; otherwise `to` must not exist and its parent must.
    pub async fn mv(&mut self, from: &SpacePath, to: &SpacePath) -> Result<()> {
        let name = from.split_last()?.1.clone();
        let target = match self.stat(to).await {
            Ok(info) if info.kind == EntryType::Dir => to.join(&name),
            Ok(_) => return Err(Error::AlreadyExists(to.to_string())),
            Err(Error::NotFound(_)) => to.clone(),
            Err(error) => return Err(error),
        };
        if target.starts_with(from) {
            return Err(Error::InvalidInput(format!(
                "cannot move {from} into itself ({target})"
            )));
        }
        check_depth(&target)?;
        let (target_parent, target_name) = target.split_last()?;
        // Check the destination before detaching, so a failure changes nothing.
        let dir = self.dir_mut(&target_parent, false).await?;
        if dir.entries.contains_key(target_name) {
            return Err(Error::AlreadyExists(target.to_string()));
        }
        let entry = self.take(from).await?;
        let dir = self.dir_mut(&target_parent, false).await?;
        dir.entries.insert(target_name.clone(), entry);
        dir.dirty = true;
        Ok(())
    }

    /// Puts a file entry at `path` (parents created; an existing file or symlink replaced).
    /// Returns whether the tree changed.
    pub async fn insert_file(
        &mut self,
        path: &SpacePath,
        content: FileContent,
        size: u64,
        mtime: Timestamp,
        mode: u32,
    ) -> Result<bool> {
        let entry = Entry {
            mtime,
            node: Node::File {
                content,
                size,
                mode: mode & MODE_MASK,
            },
        };
        self.put_entry(path, entry).await
    }

    /// Puts a symlink entry at `path` (parents created). Returns whether the tree changed.
    pub async fn insert_symlink(
        &mut self,
        path: &SpacePath,
        target: &str,
        mtime: Timestamp,
    ) -> Result<bool> {
        let entry = Entry {
            mtime,
            node: Node::Symlink {
                target: target.to_owned(),
            },
        };
        self.put_entry(path, entry).await
    }

    /// Seals every changed directory (children first) and returns the new root and the blobs to
    /// upload. Nothing changed: the old root and no blobs.
    pub fn seal(&mut self) -> Result<(BlobRef, Vec<SealedBlob>)> {
        let mut blobs = Vec::new();
        let (root, _) = seal_slot(&mut self.root, &mut blobs)?;
        Ok((root, blobs))
    }

    /// Seals the changed directories, uploads the ones the gateway lacks, and returns the root.
    pub async fn write(&mut self) -> Result<BlobRef> {
        let (root, blobs) = self.seal()?;
        crate::files::upload_blobs(self.remote, &self.space, blobs).await?;
        Ok(root)
    }
}
