//! The in-memory form of a snapshot: directories loaded on demand, edited in place, re-sealed
//! bottom-up.
//!
//! Invariants:
//! - a [`DirSlot::Stored`] directory was never changed here: it is written back as the same
//!   [`BlobRef`], so unchanged subtrees are never re-uploaded;
//! - a [`Dir`] with `dirty == false` and an `origin` holds exactly the entries of that origin
//!   (it was opened from it, or sealed into it), so it is re-sealed only if a descendant changed;
//! - every directory is opened with [`DirNode::open`], which checks the blob id before decrypting
//!   and the node's canonical encoding after: nothing unverified enters the tree;
//! - a changed directory is sealed with a fresh random key ([`DirNode::seal`]).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use coffre_crypto::dirnode::{DirEntry, DirNode, EntryKind, EntryName, FileContent, Timestamp};
use coffre_crypto::envelope::{BlobRef, SealedBlob};
use coffre_crypto::keys::SpaceId;

use crate::error::{Error, Result};
use crate::remote::Remote;

/// What an entry is, with the references needed to read it.
#[derive(Debug)]
pub(crate) enum Node {
    /// A file: where its bytes are (a manifest, or its only chunk), its size (checked against
    /// the manifest or the chunk when read) and mode.
    File {
        content: FileContent,
        size: u64,
        mode: u32,
    },
    /// A directory, loaded or not.
    Dir(DirSlot),
    /// A symbolic link (stored, never followed by the SDK).
    Symlink { target: String },
}

/// One directory entry.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) mtime: Timestamp,
    pub(crate) node: Node,
}

/// A directory that is either only referenced or loaded into memory.
#[derive(Debug)]
pub(crate) enum DirSlot {
    Stored(BlobRef),
    Loaded(Box<Dir>),
}

/// A loaded directory.
#[derive(Debug, Default)]
pub(crate) struct Dir {
    pub(crate) entries: BTreeMap<EntryName, Entry>,
    /// The blob this directory was opened from or last sealed into.
    pub(crate) origin: Option<BlobRef>,
    /// Changed since `origin`.
    pub(crate) dirty: bool,
}

/// The current time as a directory-entry timestamp (the epoch if the clock is before 1970).
pub(crate) fn now() -> Result<Timestamp> {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX);
    Ok(Timestamp::new(secs, elapsed.subsec_nanos())?)
}

impl Dir {
    /// A new, empty, unsealed directory.
    pub(crate) fn new_empty() -> Self {
        Dir {
            entries: BTreeMap::new(),
            origin: None,
            dirty: true,
        }
    }
}

impl Dir {
    /// Whether a loaded subdirectory changed (recursively).
    fn any_child_changed(&self) -> bool {
        self.entries.values().any(|entry| match &entry.node {
            Node::Dir(slot) => slot.clean_ref().is_none(),
            _ => false,
        })
    }
}

impl Entry {
    /// A new empty directory entry.
    pub(crate) fn new_dir(mtime: Timestamp) -> Self {
        Entry {
            mtime,
            node: Node::Dir(DirSlot::Loaded(Box::new(Dir::new_empty()))),
        }
    }

    /// A deep copy: references are duplicated, loaded directories copied.
    pub(crate) fn duplicate(&self) -> Self {
        Entry {
            mtime: self.mtime,
            node: match &self.node {
                Node::File {
                    content,
                    size,
                    mode,
                } => Node::File {
                    content: content.duplicate(),
                    size: *size,
                    mode: *mode,
                },
                Node::Dir(slot) => Node::Dir(slot.duplicate()),
                Node::Symlink { target } => Node::Symlink {
                    target: target.clone(),
                },
            },
        }
    }

    /// Whether two entries certainly have the same content and metadata (same blob ids; a
    /// loaded, changed directory is never "the same").
    pub(crate) fn same_as(&self, other: &Entry) -> bool {
        self.mtime == other.mtime && self.node.same_as(&other.node)
    }
}

impl Node {
    /// Same content by reference (metadata aside from mtime included).
    pub(crate) fn same_as(&self, other: &Node) -> bool {
        match (self, other) {
            (
                Node::File {
                    content: a,
                    size: sa,
                    mode: ma,
                },
                Node::File {
                    content: b,
                    size: sb,
                    mode: mb,
                },
            ) => same_content(a, b) && sa == sb && ma == mb,
            (Node::Dir(a), Node::Dir(b)) => match (a.clean_id(), b.clean_id()) {
                (Some(a), Some(b)) => a == b,
                _ => false,
            },
            (Node::Symlink { target: a }, Node::Symlink { target: b }) => a == b,
            _ => false,
        }
    }
}

impl DirSlot {
    /// The blob id of this directory if it has not changed since it was stored.
    pub(crate) fn clean_id(&self) -> Option<coffre_crypto::keys::BlobId> {
        self.clean_ref().map(|blob| blob.id)
    }

    /// The reference of this directory if nothing in it changed since it was stored.
    pub(crate) fn clean_ref(&self) -> Option<&BlobRef> {
        match self {
            DirSlot::Stored(blob) => Some(blob),
            DirSlot::Loaded(dir) if !dir.dirty && !dir.any_child_changed() => dir.origin.as_ref(),
            DirSlot::Loaded(_) => None,
        }
    }

    /// A deep copy.
    pub(crate) fn duplicate(&self) -> Self {
        match self {
            DirSlot::Stored(blob) => DirSlot::Stored(blob.duplicate()),
            DirSlot::Loaded(dir) => DirSlot::Loaded(Box::new(Dir {
                entries: dir
                    .entries
                    .iter()
                    .map(|(name, entry)| (name.clone(), entry.duplicate()))
                    .collect(),
                origin: dir.origin.as_ref().map(BlobRef::duplicate),
                dirty: dir.dirty,
            })),
        }
    }

    /// Loads the directory if needed and returns it.
    pub(crate) async fn load<R: Remote>(
        &mut self,
        remote: &R,
        space: &SpaceId,
    ) -> Result<&mut Dir> {
        if let DirSlot::Stored(blob) = self {
            let dir = fetch_dir(remote, space, blob).await?;
            *self = DirSlot::Loaded(Box::new(dir));
        }
        match self {
            DirSlot::Loaded(dir) => Ok(dir),
            // Replaced just above.
            DirSlot::Stored(_) => Err(Error::Integrity("directory failed to load".into())),
        }
    }
}

/// Whether two file contents are the same blobs (ids only: a blob id commits to its bytes).
fn same_content(a: &FileContent, b: &FileContent) -> bool {
    match (a, b) {
        (FileContent::Manifest(a), FileContent::Manifest(b)) => a.id == b.id,
        (FileContent::Chunk(a), FileContent::Chunk(b)) => a.id == b.id && a.length == b.length,
        _ => false,
    }
}

/// Fetches and opens one directory node: the blob id is checked before decryption.
pub(crate) async fn fetch_dir<R: Remote>(
    remote: &R,
    space: &SpaceId,
    blob: &BlobRef,
) -> Result<Dir> {
    let bytes = remote.get_blob(space, &blob.id).await?;
    let node = DirNode::open(blob, &bytes)?;
    Ok(Dir {
        entries: node
            .entries
            .into_iter()
            .map(|entry| {
                let node = match entry.kind {
                    EntryKind::File {
                        content,
                        size,
                        mode,
                    } => Node::File {
                        content,
                        size,
                        mode,
                    },
                    EntryKind::Dir { node } => Node::Dir(DirSlot::Stored(node)),
                    EntryKind::Symlink { target } => Node::Symlink { target },
                };
                (
                    entry.name,
                    Entry {
                        mtime: entry.mtime,
                        node,
                    },
                )
            })
            .collect(),
        origin: Some(blob.duplicate()),
        dirty: false,
    })
}

/// Seals every changed directory under `slot`, children first, appending the new blobs to `out`.
/// Returns the slot's (possibly unchanged) reference and whether it changed.
pub(crate) fn seal_slot(slot: &mut DirSlot, out: &mut Vec<SealedBlob>) -> Result<(BlobRef, bool)> {
    let dir = match slot {
        DirSlot::Stored(blob) => return Ok((blob.duplicate(), false)),
        DirSlot::Loaded(dir) => dir,
    };
    let mut child_changed = false;
    let mut entries = Vec::with_capacity(dir.entries.len());
    for (name, entry) in &mut dir.entries {
        let kind = match &mut entry.node {
            Node::File {
                content,
                size,
                mode,
            } => EntryKind::File {
                content: content.duplicate(),
                size: *size,
                mode: *mode,
            },
            Node::Dir(child) => {
                let (node, changed) = seal_slot(child, out)?;
                child_changed |= changed;
                EntryKind::Dir { node }
            }
            Node::Symlink { target } => EntryKind::Symlink {
                target: target.clone(),
            },
        };
        entries.push(DirEntry {
            name: name.clone(),
            mtime: entry.mtime,
            kind,
        });
    }
    if let Some(origin) = &dir.origin
        && !dir.dirty
        && !child_changed
    {
        return Ok((origin.duplicate(), false));
    }
    let (blob, sealed) = DirNode::new(entries)?.seal()?;
    out.push(sealed);
    dir.origin = Some(blob.duplicate());
    dir.dirty = false;
    Ok((blob, true))
}
