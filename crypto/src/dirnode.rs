//! Directory nodes `CFDR` (FORMAT.md section 7), sealed as envelopes of kind
//! [`BlobKind::DirNode`].
//!
//! ```text
//! "CFDR" ‖ 0x01 ‖ list32<entry>            // strictly increasing by the bytes of `name`
//! entry = name (str16) ‖ kind (u8) ‖ mtime_s (i64) ‖ mtime_ns (u32) ‖ body
//!   0x01 file:    manifest_id (b32) ‖ manifest_key (b32) ‖ size (u64) ‖ mode (u32)
//!   0x02 dir:     node_id (b32) ‖ node_key (b32)
//!   0x03 symlink: target (str16)
//!   0x04 file in one chunk: chunk_id (b32) ‖ chunk_key (b32) ‖ size (u64) ‖ mode (u32)
//! ```
//!
//! Invariants and threats:
//!
//! - **names, sizes, times and shape are encrypted and hash-linked** **[T-metadata]**
//!   **[T-name]** **[T-injection]**: a node is only reachable through a [`BlobRef`] from its
//!   parent, up to the signed commit;
//! - **parse, don't validate**: an [`EntryName`] or [`Timestamp`] cannot exist unless it obeys the
//!   rules, so a path traversal name (`..`, `a/b`, NUL) cannot reach a caller that builds paths;
//! - **one canonical encoding**: entries are strictly increasing by the bytes of their name.
//!   [`DirNode::new`] sorts and refuses duplicates; [`DirNode::encode`] *refuses* (rather than
//!   silently sorts) a node whose public `entries` were put out of order; [`DirNode::decode`]
//!   refuses unsorted or duplicate names, unknown kinds, bad modes, symlink targets and times,
//!   and trailing bytes ([`Error::Malformed`]);
//! - **keys stay secret**: the encoding is returned in a [`Zeroizing`] buffer allocated once.
//!
//! The client still checks that a file entry's `size` equals its manifest's `file_size` (it needs
//! the manifest for that; see [`crate::manifest`]). A file of exactly one chunk is written with
//! kind 0x04 ([`FileContent::Chunk`]): the entry references the chunk itself, there is no manifest
//! blob, and `size` is the chunk's length (`1..=`[`MAX_CHUNK_LEN`]).

use zeroize::Zeroizing;

use crate::codec::{Reader, Writer};
use crate::envelope::{self, BlobKind, BlobRef, SealedBlob};
use crate::error::{Error, Result};
use crate::keys::{BlobId, BlobKey};
use crate::manifest::{ChunkRef, MAX_CHUNK_LEN};

/// The directory-node magic. **Format-fixed.**
pub const MAGIC: [u8; 4] = *b"CFDR";
/// The most entries a directory node may hold. **Format-fixed.**
pub const MAX_ENTRIES: usize = 65_536;
/// The longest entry name, in bytes. **Format-fixed.**
pub const MAX_NAME_LEN: usize = 255;
/// The longest symlink target, in bytes. **Format-fixed.**
pub const MAX_SYMLINK_TARGET_LEN: usize = 4096;
/// The permission bits a file mode may carry. **Format-fixed.**
pub const MODE_MASK: u32 = 0o7777;
/// Exclusive upper bound of `mtime_ns`. **Format-fixed.**
pub const NANOS_PER_SECOND: u32 = 1_000_000_000;

const KIND_FILE: u8 = 0x01;
const KIND_DIR: u8 = 0x02;
const KIND_SYMLINK: u8 = 0x03;
const KIND_CHUNK_FILE: u8 = 0x04;
/// The shortest encoded entry: 1-byte name, kind, times, 1-byte symlink target.
const MIN_ENTRY_LEN: usize = 3 + 1 + 8 + 4 + 3;

/// A valid entry name: 1..=255 bytes of UTF-8, not `.` or `..`, no `/`, no NUL.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryName(String);

impl EntryName {
    /// Parses a name; the reason of the first broken rule otherwise.
    fn parse(name: &str) -> core::result::Result<Self, &'static str> {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            return Err("entry name length out of range");
        }
        if name == "." || name == ".." {
            return Err("entry name is . or ..");
        }
        if name.bytes().any(|byte| byte == b'/' || byte == 0) {
            return Err("entry name contains / or NUL");
        }
        Ok(EntryName(name.to_owned()))
    }

    /// Checks a name from a caller ([`Error::InvalidInput`] if it breaks a rule).
    pub fn new(name: &str) -> Result<Self> {
        EntryName::parse(name).map_err(Error::InvalidInput)
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A modification time: seconds since the Unix epoch (may be negative) and nanoseconds `< 10^9`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
}

impl Timestamp {
    /// A timestamp; [`Error::InvalidInput`] if `nanos ≥ 10^9`.
    pub fn new(secs: i64, nanos: u32) -> Result<Self> {
        if nanos >= NANOS_PER_SECOND {
            return Err(Error::InvalidInput("nanoseconds out of range"));
        }
        Ok(Timestamp { secs, nanos })
    }

    /// Seconds since the Unix epoch.
    pub const fn secs(&self) -> i64 {
        self.secs
    }

    /// Nanoseconds, `< 10^9`.
    pub const fn nanos(&self) -> u32 {
        self.nanos
    }
}

/// Where a file's bytes are.
#[derive(Debug, PartialEq, Eq)]
pub enum FileContent {
    /// Kind 0x01: a manifest listing the chunks (any count; what empty files and files of two or
    /// more chunks use). The entry's `size` must equal the manifest's `file_size`.
    Manifest(BlobRef),
    /// Kind 0x04: the file's only chunk, referenced directly (no manifest blob). The entry's
    /// `size` equals the chunk's `length`.
    Chunk(ChunkRef),
}

impl FileContent {
    /// An explicit copy, keys included.
    pub fn duplicate(&self) -> Self {
        match self {
            FileContent::Manifest(manifest) => FileContent::Manifest(manifest.duplicate()),
            FileContent::Chunk(chunk) => FileContent::Chunk(chunk.duplicate()),
        }
    }

    /// The blob read first to get at the bytes: the manifest, or the only chunk.
    pub fn first_blob(&self) -> &BlobId {
        match self {
            FileContent::Manifest(manifest) => &manifest.id,
            FileContent::Chunk(chunk) => &chunk.id,
        }
    }
}

/// What an entry is.
#[derive(Debug, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file.
    File {
        /// Where its bytes are.
        content: FileContent,
        /// Its size in bytes (the manifest's `file_size`, or the only chunk's length).
        size: u64,
        /// Permission bits, within [`MODE_MASK`].
        mode: u32,
    },
    /// A subdirectory.
    Dir {
        /// Its directory node.
        node: BlobRef,
    },
    /// A symbolic link.
    Symlink {
        /// The target: 1..=4096 bytes, no NUL.
        target: String,
    },
}

/// One directory entry.
#[derive(Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// The entry's name.
    pub name: EntryName,
    /// The modification time.
    pub mtime: Timestamp,
    /// What the entry is.
    pub kind: EntryKind,
}

/// A directory node: its entries, strictly increasing by name.
#[derive(Debug, PartialEq, Eq, Default)]
pub struct DirNode {
    /// The entries. Kept strictly increasing by name; [`DirNode::encode`] refuses otherwise.
    pub entries: Vec<DirEntry>,
}

fn check_symlink_target(target: &str) -> core::result::Result<(), &'static str> {
    if target.is_empty() || target.len() > MAX_SYMLINK_TARGET_LEN {
        return Err("symlink target length out of range");
    }
    if target.bytes().any(|byte| byte == 0) {
        return Err("symlink target contains NUL");
    }
    Ok(())
}

/// A one-chunk file's size: `1..=`[`MAX_CHUNK_LEN`], as the chunk length it is.
fn check_chunk_size(size: u64) -> core::result::Result<u32, &'static str> {
    match u32::try_from(size) {
        Ok(length) if (1..=MAX_CHUNK_LEN).contains(&length) => Ok(length),
        _ => Err("one-chunk file size out of range"),
    }
}

fn check_mode(mode: u32) -> core::result::Result<(), &'static str> {
    if mode & !MODE_MASK != 0 {
        return Err("file mode has bits beyond 0o7777");
    }
    Ok(())
}

impl DirEntry {
    fn encoded_len(&self) -> usize {
        let body = match &self.kind {
            EntryKind::File { .. } => 32 + 32 + 8 + 4,
            EntryKind::Dir { .. } => 32 + 32,
            EntryKind::Symlink { target } => 2 + target.len(),
        };
        2 + self.name.0.len() + 1 + 8 + 4 + body
    }

    fn encode(&self, writer: &mut Writer) -> Result<()> {
        writer.str16(self.name.as_str(), MAX_NAME_LEN)?;
        let kind = match &self.kind {
            EntryKind::File {
                content: FileContent::Manifest(_),
                ..
            } => KIND_FILE,
            EntryKind::File {
                content: FileContent::Chunk(_),
                ..
            } => KIND_CHUNK_FILE,
            EntryKind::Dir { .. } => KIND_DIR,
            EntryKind::Symlink { .. } => KIND_SYMLINK,
        };
        writer.u8(kind);
        writer.i64(self.mtime.secs);
        writer.u32(self.mtime.nanos);
        match &self.kind {
            EntryKind::File {
                content,
                size,
                mode,
            } => {
                check_mode(*mode).map_err(Error::InvalidInput)?;
                match content {
                    FileContent::Manifest(manifest) => {
                        writer.raw(manifest.id.as_bytes());
                        writer.raw(manifest.key.expose_secret());
                    }
                    FileContent::Chunk(chunk) => {
                        check_chunk_size(*size).map_err(Error::InvalidInput)?;
                        if u64::from(chunk.length) != *size {
                            return Err(Error::InvalidInput(
                                "a one-chunk file's size differs from its chunk's length",
                            ));
                        }
                        writer.raw(chunk.id.as_bytes());
                        writer.raw(chunk.key.expose_secret());
                    }
                }
                writer.u64(*size);
                writer.u32(*mode);
            }
            EntryKind::Dir { node } => {
                writer.raw(node.id.as_bytes());
                writer.raw(node.key.expose_secret());
            }
            EntryKind::Symlink { target } => {
                check_symlink_target(target).map_err(Error::InvalidInput)?;
                writer.str16(target, MAX_SYMLINK_TARGET_LEN)?;
            }
        }
        Ok(())
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self> {
        let name =
            EntryName::parse(reader.str16(MAX_NAME_LEN)?).map_err(|reason| reader.error(reason))?;
        let kind = reader.u8()?;
        let secs = reader.i64()?;
        let nanos = reader.u32()?;
        if nanos >= NANOS_PER_SECOND {
            return Err(reader.error("nanoseconds out of range"));
        }
        let kind = match kind {
            KIND_FILE => {
                let manifest = decode_blob_ref(reader)?;
                let size = reader.u64()?;
                let mode = reader.u32()?;
                check_mode(mode).map_err(|reason| reader.error(reason))?;
                EntryKind::File {
                    content: FileContent::Manifest(manifest),
                    size,
                    mode,
                }
            }
            KIND_CHUNK_FILE => {
                let chunk = decode_blob_ref(reader)?;
                let size = reader.u64()?;
                let mode = reader.u32()?;
                check_mode(mode).map_err(|reason| reader.error(reason))?;
                let length = check_chunk_size(size).map_err(|reason| reader.error(reason))?;
                EntryKind::File {
                    content: FileContent::Chunk(ChunkRef {
                        id: chunk.id,
                        key: chunk.key,
                        length,
                    }),
                    size,
                    mode,
                }
            }
            KIND_DIR => EntryKind::Dir {
                node: decode_blob_ref(reader)?,
            },
            KIND_SYMLINK => {
                let target = reader.str16(MAX_SYMLINK_TARGET_LEN)?;
                check_symlink_target(target).map_err(|reason| reader.error(reason))?;
                EntryKind::Symlink {
                    target: target.to_owned(),
                }
            }
            _ => return Err(reader.error("unknown entry kind")),
        };
        Ok(DirEntry {
            name,
            mtime: Timestamp { secs, nanos },
            kind,
        })
    }
}

fn decode_blob_ref(reader: &mut Reader<'_>) -> Result<BlobRef> {
    Ok(BlobRef {
        id: BlobId::from_bytes(reader.b32()?),
        key: BlobKey::from_bytes(reader.b32()?),
    })
}

/// Whether names are strictly increasing (sorted and unique).
fn strictly_increasing(entries: &[DirEntry]) -> bool {
    entries
        .windows(2)
        .all(|pair| pair[0].name.as_str().as_bytes() < pair[1].name.as_str().as_bytes())
}

impl DirNode {
    /// A node from entries in any order: sorts them by name; [`Error::InvalidInput`] on a
    /// duplicate name or more than [`MAX_ENTRIES`] entries.
    pub fn new(mut entries: Vec<DirEntry>) -> Result<Self> {
        if entries.len() > MAX_ENTRIES {
            return Err(Error::InvalidInput("too many directory entries"));
        }
        entries.sort_by(|a, b| a.name.as_str().as_bytes().cmp(b.name.as_str().as_bytes()));
        if !strictly_increasing(&entries) {
            return Err(Error::InvalidInput("duplicate entry name"));
        }
        Ok(DirNode { entries })
    }

    /// The entry named `name`, by binary search.
    pub fn get(&self, name: &str) -> Option<&DirEntry> {
        self.entries
            .binary_search_by(|entry| entry.name.as_str().as_bytes().cmp(name.as_bytes()))
            .ok()
            .and_then(|index| self.entries.get(index))
    }

    /// The canonical encoding, in a buffer that is zeroized on drop (it holds blob keys).
    /// [`Error::InvalidInput`] if entries are not strictly increasing or a rule is broken.
    pub fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        if !strictly_increasing(&self.entries) {
            return Err(Error::InvalidInput(
                "directory entries not strictly increasing by name",
            ));
        }
        let len = 5
            + 4
            + self
                .entries
                .iter()
                .map(DirEntry::encoded_len)
                .sum::<usize>();
        let mut writer = Writer::with_header_capacity(&MAGIC, len);
        writer.count32(self.entries.len(), MAX_ENTRIES)?;
        for entry in &self.entries {
            entry.encode(&mut writer)?;
        }
        Ok(Zeroizing::new(writer.into_vec()))
    }

    /// Decodes untrusted bytes, enforcing every rule. Failures are [`Error::Malformed`].
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, &MAGIC, "directory node")?;
        let count = reader.count32(MAX_ENTRIES, MIN_ENTRY_LEN)?;
        let mut entries: Vec<DirEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = DirEntry::decode(&mut reader)?;
            if let Some(previous) = entries.last()
                && previous.name.as_str().as_bytes() >= entry.name.as_str().as_bytes()
            {
                return Err(reader.error("entry names not strictly increasing"));
            }
            entries.push(entry);
        }
        reader.finish()?;
        Ok(DirNode { entries })
    }

    /// Seals the node under a fresh random key; returns the reference its parent stores, and the
    /// envelope.
    pub fn seal(&self) -> Result<(BlobRef, SealedBlob)> {
        envelope::seal_fresh(BlobKind::DirNode, &self.encode()?)
    }

    /// Checks the envelope against `blob.id`, opens it as a directory node and decodes it.
    pub fn open(blob: &BlobRef, envelope_bytes: &[u8]) -> Result<Self> {
        let content = Zeroizing::new(envelope::open_verified(
            &blob.id,
            &blob.key,
            BlobKind::DirNode,
            envelope_bytes,
        )?);
        DirNode::decode(&content)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blob(byte: u8) -> BlobRef {
        BlobRef {
            id: BlobId::from_bytes([byte; 32]),
            key: BlobKey::from_bytes([byte ^ 0xff; 32]),
        }
    }

    fn one_chunk(byte: u8, length: u32) -> ChunkRef {
        let blob = blob(byte);
        ChunkRef {
            id: blob.id,
            key: blob.key,
            length,
        }
    }

    fn entry(name: &str, kind: EntryKind) -> DirEntry {
        DirEntry {
            name: EntryName::new(name).unwrap(),
            mtime: Timestamp::new(-5, 999_999_999).unwrap(),
            kind,
        }
    }

    fn sample() -> DirNode {
        DirNode::new(vec![
            entry(
                "z-link",
                EntryKind::Symlink {
                    target: "../a".into(),
                },
            ),
            entry(
                "a.txt",
                EntryKind::File {
                    content: FileContent::Manifest(blob(1)),
                    size: 42,
                    mode: 0o644,
                },
            ),
            entry(
                "b.txt",
                EntryKind::File {
                    content: FileContent::Chunk(one_chunk(3, 7)),
                    size: 7,
                    mode: 0o600,
                },
            ),
            entry("Docs", EntryKind::Dir { node: blob(2) }),
        ])
        .unwrap()
    }

    #[test]
    fn round_trip_sorted_by_bytes() {
        let node = sample();
        let names: Vec<_> = node.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["Docs", "a.txt", "b.txt", "z-link"]);
        let bytes = node.encode().unwrap();
        assert_eq!(&bytes[..9], b"CFDR\x01\x00\x00\x00\x04");
        assert_eq!(bytes.len(), bytes.capacity(), "allocated once");
        assert_eq!(DirNode::decode(&bytes).unwrap(), node);
        let (reference, sealed) = node.seal().unwrap();
        assert_eq!(DirNode::open(&reference, sealed.as_bytes()).unwrap(), node);
        assert!(node.get("a.txt").is_some());
        assert!(node.get("b").is_none());
        let Some(DirEntry {
            kind: EntryKind::File { content, .. },
            ..
        }) = node.get("b.txt")
        else {
            panic!("b.txt is a file");
        };
        assert_eq!(*content, FileContent::Chunk(one_chunk(3, 7)));
        assert_eq!(content.first_blob(), &BlobId::from_bytes([3; 32]));
        let empty = DirNode::default();
        assert_eq!(DirNode::decode(&empty.encode().unwrap()).unwrap(), empty);
    }

    #[test]
    fn names_are_parsed() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b", &"x".repeat(256)] {
            assert!(EntryName::new(bad).is_err(), "{bad:?}");
        }
        for good in ["...", ".hidden", "é", &"x".repeat(255)] {
            assert!(EntryName::new(good).is_ok(), "{good:?}");
        }
        assert!(Timestamp::new(0, 1_000_000_000).is_err());
    }

    #[test]
    fn encode_refuses_bad_nodes() {
        assert!(
            DirNode::new(vec![
                entry("a", EntryKind::Dir { node: blob(1) }),
                entry("a", EntryKind::Dir { node: blob(2) })
            ])
            .is_err()
        );
        let mut node = sample();
        node.entries.swap(0, 1);
        assert!(matches!(node.encode(), Err(Error::InvalidInput(_))));
        let bad_mode = DirNode::new(vec![entry(
            "f",
            EntryKind::File {
                content: FileContent::Manifest(blob(1)),
                size: 0,
                mode: 0o10000,
            },
        )])
        .unwrap();
        assert!(bad_mode.encode().is_err());
        // A one-chunk file: size must be the chunk's length, 1..=MAX_CHUNK_LEN.
        for (length, size) in [
            (7, 8),
            (0, 0),
            (MAX_CHUNK_LEN + 1, u64::from(MAX_CHUNK_LEN) + 1),
        ] {
            let node = DirNode::new(vec![entry(
                "f",
                EntryKind::File {
                    content: FileContent::Chunk(one_chunk(1, length)),
                    size,
                    mode: 0o644,
                },
            )])
            .unwrap();
            assert!(
                matches!(node.encode(), Err(Error::InvalidInput(_))),
                "{length} {size}"
            );
        }
        for target in [String::new(), "a\0".into(), "x".repeat(4097)] {
            let node = DirNode::new(vec![entry("l", EntryKind::Symlink { target })]).unwrap();
            assert!(node.encode().is_err());
        }
    }

    #[test]
    fn decode_refuses_non_canonical_input() {
        let bytes = sample().encode().unwrap();
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        let mut wrong_kind = bytes.to_vec();
        wrong_kind[9 + 2 + 4] = 9; // first entry "Docs": kind byte after the name
        let mut big_count = bytes.to_vec();
        big_count[5..9].copy_from_slice(&(MAX_ENTRIES as u32 + 1).to_be_bytes());
        // A one-chunk file whose size is 0 or above the longest chunk.
        let one = DirNode::new(vec![entry(
            "f",
            EntryKind::File {
                content: FileContent::Chunk(one_chunk(1, 5)),
                size: 5,
                mode: 0o644,
            },
        )])
        .unwrap()
        .encode()
        .unwrap();
        let size_at = 9 + 2 + 1 + 1 + 8 + 4 + 64;
        let mut zero_size = one.to_vec();
        zero_size[size_at..size_at + 8].copy_from_slice(&0u64.to_be_bytes());
        let mut huge_size = one.to_vec();
        huge_size[size_at..size_at + 8]
            .copy_from_slice(&(u64::from(MAX_CHUNK_LEN) + 1).to_be_bytes());
        assert!(DirNode::decode(&one).is_ok());
        for bad in [
            trailing,
            wrong_kind,
            big_count,
            bytes[..bytes.len() - 1].to_vec(),
            zero_size,
            huge_size,
        ] {
            assert!(matches!(
                DirNode::decode(&bad),
                Err(Error::Malformed { .. })
            ));
        }
    }
}
