//! `coffre-gateway check [--read-data]`: verification of a data directory, in the spirit of
//! `restic check`.
//!
//! [`check`] opens a stopped gateway's data directory (sled's lock refuses a running one) and
//! verifies, reporting every problem it finds rather than stopping at the first:
//!
//! - every blob-index entry has a body of the indexed size, and every body has an index entry
//!   (orphans are reported);
//! - with `read_data`, every body hashes (BLAKE3, streamed) to its blob id;
//! - every space's membership log and commit chain have the lengths its summary records, every
//!   entry is well-formed (see [`check_membership_entry`] and [`check_commit`]), and every member
//!   is in the `spaces_of` index;
//! - every account's quota usage equals the sum of the sizes of the blobs charged to it.
//!
//! Check only reads. It holds the blob index in memory (about 100 bytes per blob).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;

use coffre_crypto::commit::{Commit, verify_next};
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_crypto::membership::{MembershipEntry, MembershipLog};

use crate::error::Result;
use crate::store::{BlobMeta, Stores};

/// One thing found wrong. Carries ids and sizes only, never blob contents.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// An index entry whose body is missing.
    MissingBody {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
    },
    /// A body whose size differs from its index entry.
    SizeMismatch {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
        /// Size in the index.
        indexed: u64,
        /// Size of the stored body.
        stored: u64,
    },
    /// A body with no index entry.
    OrphanBody {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
        /// Its size.
        size: u64,
    },
    /// A body that does not hash to its id (read with `--read-data` only).
    HashMismatch {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
    },
    /// A log's length differs from what the space summary records.
    LogLength {
        /// The space.
        space: SpaceId,
        /// `"membership"` or `"commits"`.
        log: &'static str,
        /// Length recorded in the summary.
        recorded: u64,
        /// Entries actually stored.
        stored: u64,
    },
    /// A log entry that is not well-formed.
    BadLogEntry {
        /// The space.
        space: SpaceId,
        /// `"membership"` or `"commits"`.
        log: &'static str,
        /// Its seq.
        seq: u64,
        /// What is wrong.
        reason: String,
    },
    /// A member missing from the `spaces_of` index.
    MemberIndex {
        /// The space.
        space: SpaceId,
        /// The member.
        handle: String,
    },
    /// An account's recorded usage differs from the sum of its blobs.
    Quota {
        /// The account.
        handle: String,
        /// Usage recorded on the account.
        recorded: u64,
        /// Sum of the sizes of the blobs charged to it.
        computed: u64,
    },
    /// Blobs charged to an account that does not exist.
    UnknownUploader {
        /// The handle in the index entries.
        handle: String,
        /// Bytes charged to it.
        bytes: u64,
    },
    /// A part of the store could not be read at all (an undecodable record, an I/O error).
    Unreadable {
        /// What was being read.
        what: &'static str,
        /// The error.
        error: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingBody { space, blob } => {
                write!(f, "blob {space}/{blob}: indexed but its body is missing")
            }
            Problem::SizeMismatch {
                space,
                blob,
                indexed,
                stored,
            } => write!(
                f,
                "blob {space}/{blob}: index says {indexed} bytes, body has {stored}"
            ),
            Problem::OrphanBody { space, blob, size } => {
                write!(
                    f,
                    "blob {space}/{blob}: body of {size} bytes has no index entry"
                )
            }
            Problem::HashMismatch { space, blob } => {
                write!(
                    f,
                    "blob {space}/{blob}: body does not hash to its id (corrupt)"
                )
            }
            Problem::LogLength {
                space,
                log,
                recorded,
                stored,
            } => write!(
                f,
                "space {space}: {log} log records {recorded} entries, {stored} are stored"
            ),
            Problem::BadLogEntry {
                space,
                log,
                seq,
                reason,
            } => {
                write!(f, "space {space}: {log} entry {seq}: {reason}")
            }
            Problem::MemberIndex { space, handle } => {
                write!(
                    f,
                    "space {space}: member {handle:?} missing from the member index"
                )
            }
            Problem::Quota {
                handle,
                recorded,
                computed,
            } => write!(
                f,
                "account {handle:?}: usage recorded {recorded} bytes, its blobs total {computed}"
            ),
            Problem::UnknownUploader { handle, bytes } => {
                write!(
                    f,
                    "{bytes} bytes of blobs charged to unknown account {handle:?}"
                )
            }
            Problem::Unreadable { what, error } => write!(f, "could not read {what}: {error}"),
        }
    }
}

/// What [`check`] looked at and found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Accounts checked.
    pub accounts: u64,
    /// Spaces checked.
    pub spaces: u64,
    /// Blob-index entries.
    pub indexed_blobs: u64,
    /// Stored bodies.
    pub stored_blobs: u64,
    /// Bytes of bodies read and hashed (`read_data` only).
    pub bytes_read: u64,
    /// Whether bodies were read and hashed.
    pub read_data: bool,
    /// Everything found wrong.
    pub problems: Vec<Problem>,
}

impl CheckReport {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks the data directory `data_dir` (see the module docs); `read_data` also hashes every
/// body. Fails only if the store cannot be opened; everything else is a [`Problem`].
pub fn check(data_dir: &Path, read_data: bool) -> Result<CheckReport> {
    let (stores, _backend) = Stores::open_existing(data_dir)?;
    Ok(check_stores(&stores, read_data))
}

/// Checks opened stores (what [`check`] does after opening; tests call it on memory stores).
pub fn check_stores(stores: &Stores, read_data: bool) -> CheckReport {
    let mut report = CheckReport {
        read_data,
        ..CheckReport::default()
    };
    let mut index: HashMap<(SpaceId, BlobId), BlobMeta> = HashMap::new();
    let unreadable = |report: &mut CheckReport, what, result: Result<()>| {
        if let Err(error) = result {
            report.problems.push(Problem::Unreadable {
                what,
                error: error.to_string(),
            });
        }
    };

    let result = stores.meta.for_each_blob_meta(&mut |space, blob, meta| {
        index.insert((*space, *blob), meta.clone());
        Ok(())
    });
    unreadable(&mut report, "the blob index", result);
    report.indexed_blobs = index.len() as u64;

    let mut seen = HashMap::with_capacity(index.len());
    let mut problems = Vec::new();
    let result = stores.blobs.for_each(&mut |space, blob, size| {
        seen.insert((*space, *blob), size);
        match index.get(&(*space, *blob)) {
            None => problems.push(Problem::OrphanBody {
                space: *space,
                blob: *blob,
                size,
            }),
            Some(meta) if meta.size != size => problems.push(Problem::SizeMismatch {
                space: *space,
                blob: *blob,
                indexed: meta.size,
                stored: size,
            }),
            Some(_) => {}
        }
        Ok(())
    });
    report.problems.append(&mut problems);
    unreadable(&mut report, "the blob bodies", result);
    report.stored_blobs = seen.len() as u64;
    let mut missing: Vec<_> = index.keys().filter(|key| !seen.contains_key(key)).collect();
    missing.sort();
    for (space, blob) in missing {
        report.problems.push(Problem::MissingBody {
            space: *space,
            blob: *blob,
        });
    }

    if read_data {
        let mut bodies: Vec<_> = seen.keys().copied().collect();
        bodies.sort();
        for (space, blob) in bodies {
            match hash_body(stores, &space, &blob) {
                Ok(Some((hash, bytes))) => {
                    report.bytes_read += bytes;
                    if hash != *blob.as_bytes() {
                        report.problems.push(Problem::HashMismatch { space, blob });
                    }
                }
                Ok(None) => report.problems.push(Problem::MissingBody { space, blob }),
                Err(error) => report.problems.push(Problem::Unreadable {
                    what: "a blob body",
                    error: format!("{space}/{blob}: {error}"),
                }),
            }
        }
    }

    check_spaces(stores, &mut report);
    check_quotas(stores, &index, &mut report);
    report
}

/// Streams a body through BLAKE3; returns its hash and length.
fn hash_body(stores: &Stores, space: &SpaceId, blob: &BlobId) -> Result<Option<([u8; 32], u64)>> {
    let Some(reader) = stores.blobs.open(space, blob)? else {
        return Ok(None);
    };
    let mut hasher = blake3::Hasher::new();
    let mut body = reader.body;
    let bytes = std::io::copy(&mut body, &mut hasher)?;
    Ok(Some((*hasher.finalize().as_bytes(), bytes)))
}

/// Checks the form of one membership-log entry: its `CFML` magic and version (FORMAT.md 9.1).
///
/// Decodes the entry and verifies its device certificate and signature; the chain rules are
/// checked over the whole log afterwards.
pub fn check_membership_entry(entry: &[u8]) -> core::result::Result<(), String> {
    check_magic(entry, b"CFML\x01")?;
    MembershipEntry::decode(entry)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Checks one signed commit: its `CFCM` magic and version, its device certificate and signature
/// (FORMAT.md 10 rule 1); the chain rules are checked over the whole chain afterwards.
pub fn check_commit(commit: &[u8]) -> core::result::Result<(), String> {
    check_magic(commit, b"CFCM\x01")?;
    Commit::decode(commit)
        .map(drop)
        .map_err(|error| error.to_string())
}

/// Verifies a space's whole membership log (FORMAT.md 9.2) and commit chain (FORMAT.md 10 rules
/// 1-3) as a client would, reporting the first broken rule of each.
fn check_chains(
    report: &mut CheckReport,
    space: SpaceId,
    membership: &[Vec<u8>],
    commits: &[Vec<u8>],
) {
    let log = match MembershipLog::decode_and_verify(membership) {
        Ok(log) if *log.space_id() != space => {
            report.problems.push(Problem::BadLogEntry {
                space,
                log: "membership",
                seq: 0,
                reason: "the space is filed under an id that is not the hash of its genesis".into(),
            });
            return;
        }
        Ok(log) => log,
        Err(error) => {
            report.problems.push(Problem::BadLogEntry {
                space,
                log: "membership",
                seq: membership.len() as u64,
                reason: format!("the log does not verify: {error}"),
            });
            return;
        }
    };
    let mut previous: Option<Commit> = None;
    for (index, bytes) in commits.iter().enumerate() {
        let verified = Commit::decode(bytes)
            .and_then(|commit| verify_next(previous.as_ref(), &commit, &log).map(|()| commit));
        match verified {
            Ok(commit) => previous = Some(commit),
            Err(error) => {
                report.problems.push(Problem::BadLogEntry {
                    space,
                    log: "commits",
                    seq: index as u64 + 1,
                    reason: format!("the chain breaks here: {error}"),
                });
                return;
            }
        }
    }
}

fn check_magic(bytes: &[u8], magic: &[u8]) -> core::result::Result<(), String> {
    if bytes.len() > magic.len() && bytes.starts_with(magic) {
        Ok(())
    } else {
        Err(format!(
            "does not start with {:?} followed by a body",
            String::from_utf8_lossy(&magic[..4])
        ))
    }
}

/// Page size when reading logs.
const PAGE: usize = 256;

type WellFormed = fn(&[u8]) -> core::result::Result<(), String>;

/// Reads a whole log page by page (`read(n)` returns the entries after the first `n`), checks
/// each entry's form and the log's length against the summary.
fn check_log(
    report: &mut CheckReport,
    space: SpaceId,
    log: &'static str,
    first_seq: u64,
    recorded: u64,
    read: &dyn Fn(u64) -> Result<Vec<Vec<u8>>>,
    well_formed: WellFormed,
) -> Vec<Vec<u8>> {
    let mut stored = 0u64;
    let mut entries = Vec::new();
    loop {
        let page = match read(stored) {
            Ok(page) => page,
            Err(error) => {
                report.problems.push(Problem::Unreadable {
                    what: "a space log",
                    error: format!("{space} {log}: {error}"),
                });
                return entries;
            }
        };
        for entry in &page {
            if let Err(reason) = well_formed(entry) {
                let seq = first_seq + stored;
                report.problems.push(Problem::BadLogEntry {
                    space,
                    log,
                    seq,
                    reason,
                });
            }
            stored += 1;
        }
        let full = page.len() == PAGE;
        entries.extend(page);
        if !full {
            break;
        }
    }
    if stored != recorded {
        report.problems.push(Problem::LogLength {
            space,
            log,
            recorded,
            stored,
        });
    }
    entries
}

fn check_spaces(stores: &Stores, report: &mut CheckReport) {
    let mut spaces = Vec::new();
    let result = stores.meta.for_each_space(&mut |space| {
        spaces.push(space.clone());
        Ok(())
    });
    if let Err(error) = result {
        report.problems.push(Problem::Unreadable {
            what: "the spaces",
            error: error.to_string(),
        });
    }
    report.spaces = spaces.len() as u64;
    for space in spaces {
        let id = space.space;
        // Membership entries are numbered from 0 (genesis) and read "from seq n"; commits are
        // numbered from 1 and read "after seq n": in both cases n is the count read so far.
        let membership = |n| stores.meta.membership_entries(&id, n, PAGE);
        let commits = |n| stores.meta.commits(&id, n, PAGE);
        let membership_len = space.membership_len;
        let problems_before = report.problems.len();
        let membership_entries = check_log(
            report,
            id,
            "membership",
            0,
            membership_len,
            &membership,
            check_membership_entry,
        );
        let commit_entries = check_log(
            report,
            id,
            "commits",
            1,
            space.head_seq,
            &commits,
            check_commit,
        );
        // Chain rules only make sense over entries that decode one by one.
        if report.problems.len() == problems_before {
            check_chains(report, id, &membership_entries, &commit_entries);
        }
        for member in &space.members {
            let indexed = stores
                .meta
                .spaces_of(&member.handle)
                .map(|s| s.contains(&id));
            if !matches!(indexed, Ok(true)) {
                report.problems.push(Problem::MemberIndex {
                    space: id,
                    handle: member.handle.clone(),
                });
            }
        }
    }
}

fn check_quotas(
    stores: &Stores,
    index: &HashMap<(SpaceId, BlobId), BlobMeta>,
    report: &mut CheckReport,
) {
    let mut charged: BTreeMap<&str, u64> = BTreeMap::new();
    for meta in index.values() {
        *charged.entry(meta.uploader.as_str()).or_default() += meta.size;
    }
    let mut accounts = Vec::new();
    let result = stores.meta.for_each_account(&mut |account| {
        accounts.push((account.handle.clone(), account.used_bytes));
        Ok(())
    });
    if let Err(error) = result {
        report.problems.push(Problem::Unreadable {
            what: "the accounts",
            error: error.to_string(),
        });
    }
    report.accounts = accounts.len() as u64;
    for (handle, recorded) in accounts {
        let computed = charged.remove(handle.as_str()).unwrap_or(0);
        if computed != recorded {
            report.problems.push(Problem::Quota {
                handle,
                recorded,
                computed,
            });
        }
    }
    for (handle, bytes) in charged {
        report.problems.push(Problem::UnknownUploader {
            handle: handle.to_owned(),
            bytes,
        });
    }
}

/// What [`recover`] repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// Bodies with no index entry that were deleted (uploads cut off between the body and its
    /// index entry, or prunes cut off between the index entry and the body).
    pub orphans_deleted: u64,
    /// Accounts whose recorded usage exceeded the sum of their blobs.
    pub quotas_released: u64,
    /// Bytes of quota released in all.
    pub bytes_released: u64,
    /// Accounts whose recorded usage was below the sum of their blobs and were charged again.
    pub quotas_charged: u64,
}

/// Repairs what a crash (or SIGKILL) of a running gateway leaves behind, before it serves again:
/// quota reserved by uploads that never completed (the reservation is made durable before the
/// body is read) is released, and bodies without an index entry are deleted. Must run while no
/// request is served (at startup): with no upload or prune in flight, the blob index is the
/// truth for both.
///
/// Usage below the sum of an account's blobs (an index insert that took effect but reported an
/// error, so its reservation was given back) is charged again if the quota allows.
pub fn recover(stores: &Stores) -> Result<Recovery> {
    let mut recovery = Recovery::default();
    let mut indexed: std::collections::HashSet<(SpaceId, BlobId)> =
        std::collections::HashSet::new();
    let mut charged: HashMap<String, u64> = HashMap::new();
    stores.meta.for_each_blob_meta(&mut |space, blob, meta| {
        indexed.insert((*space, *blob));
        let sum = charged.entry(meta.uploader.clone()).or_default();
        *sum = sum.saturating_add(meta.size);
        Ok(())
    })?;
    let mut orphans = Vec::new();
    stores.blobs.for_each(&mut |space, blob, _size| {
        if !indexed.contains(&(*space, *blob)) {
            orphans.push((*space, *blob));
        }
        Ok(())
    })?;
    for (space, blob) in orphans {
        stores.blobs.delete(&space, &blob)?;
        recovery.orphans_deleted += 1;
    }
    let mut excess = Vec::new();
    let mut shortfall = Vec::new();
    stores.meta.for_each_account(&mut |account| {
        let computed = charged.get(&account.handle).copied().unwrap_or(0);
        if account.used_bytes > computed {
            excess.push((account.handle.clone(), account.used_bytes - computed));
        } else if account.used_bytes < computed {
            shortfall.push((account.handle.clone(), computed - account.used_bytes));
        }
        Ok(())
    })?;
    for (handle, bytes) in excess {
        stores.meta.release_quota(&handle, bytes)?;
        recovery.quotas_released += 1;
        recovery.bytes_released += bytes;
    }
    for (handle, bytes) in shortfall {
        // An index insert that took effect but reported an error (a failed flush) had its
        // reservation given back. Charge it again; past the quota it stays for `check` to report.
        match stores.meta.reserve_quota(&handle, bytes) {
            Ok(()) => recovery.quotas_charged += 1,
            Err(crate::error::Error::QuotaExceeded) => {}
            Err(error) => return Err(error),
        }
    }
    Ok(recovery)
}
