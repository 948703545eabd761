//! Store traits: what the service layer needs from persistence, and nothing about how.
//!
//! Two traits, one per kind of data:
//!
//! - [`MetaStore`]: accounts, sessions, spaces (membership log, commits, member index), the blob
//!   index and inboxes. Small records; backends: sled (default) and memory (tests).
//! - [`BlobStore`]: blob bodies, large and immutable; backends: files in the data directory
//!   (content-addressed, written durably; small blobs of batches appended to pack files, see
//!   [`packs`]) and sled, all passing one conformance suite.
//!
//! **Durability contract.** Every mutating method (except the quota accounting of `MetaStore::reserve_quota` and `release_quota`, see there) returns only once its effect is durable (fsynced),
//! so a handler may acknowledge with a 2xx right after. A method that fails leaves the store as it
//! was. Compare-and-swap methods are atomic with respect to each other.
//!
//! The traits are synchronous; the service calls them from `tokio::task::spawn_blocking`.

use std::path::Path;
use std::sync::Arc;

use coffre_crypto::keys::{BlobId, SpaceId};

use crate::config::BlobBackend;
use crate::error::{Error, Result};

mod direct;
pub mod files;
pub mod memory;
pub mod packs;
pub mod record;
pub mod sled_blobs;
pub mod sled_meta;

/// sled's page cache, in bytes. sled's default (1 GiB) would let the gateway grow far past the
/// frugality bar on a 2 GiB machine; metadata records are small and hot sets are tiny, so 16 MiB
/// holds them. Blob bodies stored in sled (the non-default layout) are read through this cache
/// too, so it also bounds what that layout keeps resident.
pub const SLED_CACHE_BYTES: u64 = 16 * 1024 * 1024;

/// Opens (creating if needed) the sled database at `path` with the gateway's settings. sled
/// takes an exclusive lock on it, so a second process cannot open the same data directory.
///
/// sled releases its file lock from a background thread after the last handle drops, so opening a
/// database that this process closed a moment ago can briefly fail with "could not acquire lock":
/// that case is retried for up to two seconds. Any other error, or a lock still held after that (another
/// gateway running on the same data directory), is returned.
pub fn open_db(path: &Path) -> Result<sled::Db> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match sled::Config::new()
            .path(path)
            .cache_capacity(SLED_CACHE_BYTES)
            .open()
        {
            Ok(db) => return Ok(db),
            Err(sled::Error::Io(error))
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// Completes sled's flushes down to stable storage.
///
/// On Linux, sled 0.34 makes its log durable with `sync_file_range`, which neither flushes the
/// drive's volatile write cache nor commits the file's new size when the log grew (sled issue
/// #1452): a power loss could take records that `flush` reported durable. After every flush the
/// stores therefore `fdatasync` sled's log file (`<db>/db`) themselves, so that "flushed" means
/// "on stable storage" before any 2xx.
#[derive(Clone, Debug)]
pub struct LogSync(Arc<std::fs::File>);

impl LogSync {
    /// Opens sled's log file in the database directory `db_dir` (read-only: `fdatasync` works on
    /// any descriptor of the file).
    pub fn open(db_dir: &Path) -> Result<LogSync> {
        Ok(LogSync(Arc::new(std::fs::File::open(db_dir.join("db"))?)))
    }

    /// `db.flush()`, then `fdatasync` of the log file.
    pub fn flush(&self, db: &sled::Db) -> Result<()> {
        db.flush()?;
        self.0.sync_data()?;
        Ok(())
    }
}

/// `db.flush()`, then with `log_sync` its `fdatasync` of the log file (see [`LogSync`]): what
/// every sled-backed store calls before reporting a write durable.
pub(crate) fn flush_db(db: &sled::Db, log_sync: Option<&LogSync>) -> Result<()> {
    match log_sync {
        Some(log_sync) => log_sync.flush(db),
        None => {
            db.flush()?;
            Ok(())
        }
    }
}

/// The two stores a gateway runs on.
#[derive(Clone)]
pub struct Stores {
    /// Accounts, sessions, spaces, blob index, inboxes.
    pub meta: Arc<dyn MetaStore>,
    /// Blob bodies.
    pub blobs: Arc<dyn BlobStore>,
}

impl core::fmt::Debug for Stores {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Stores")
    }
}

/// The tree and key under which the data directory records its blob layout.
const LAYOUT_TREE: &str = "coffre";
const LAYOUT_KEY: &[u8] = b"blob_backend";

fn backend_name(backend: BlobBackend) -> &'static [u8] {
    match backend {
        BlobBackend::Files => b"files",
        BlobBackend::Sled => b"sled",
    }
}

impl Stores {
    /// Opens the stores of `data_dir` (creating it if needed): sled at `<data>/db` and the blob
    /// layout `backend`. The first open records the layout in the database; opening later with
    /// another layout is refused ([`Error::Config`]) rather than silently showing no blobs.
    pub fn open(data_dir: &Path, backend: BlobBackend) -> Result<Stores> {
        std::fs::create_dir_all(data_dir)?;
        let db = open_db(&data_dir.join("db"))?;
        let layout = db.open_tree(LAYOUT_TREE)?;
        let wanted = backend_name(backend);
        match layout.compare_and_swap(LAYOUT_KEY, None as Option<&[u8]>, Some(wanted))? {
            Ok(()) => {
                db.flush()?;
            }
            Err(existing) if existing.current.as_deref() == Some(wanted) => {}
            Err(existing) => {
                let found = existing
                    .current
                    .map(|v| String::from_utf8_lossy(&v).into_owned());
                return Err(Error::Config(format!(
                    "this data directory stores blobs in the {:?} layout, not {:?}",
                    found.unwrap_or_default(),
                    String::from_utf8_lossy(wanted)
                )));
            }
        }
        Self::with_db(data_dir, &db, backend)
    }

    /// Opens an existing data directory with the blob layout it recorded (for `check`); fails
    /// with [`Error::Config`] if there is no database there.
    pub fn open_existing(data_dir: &Path) -> Result<(Stores, BlobBackend)> {
        let path = data_dir.join("db");
        if !path.is_dir() {
            return Err(Error::Config(format!(
                "no coffre database at {}",
                path.display()
            )));
        }
        let db = open_db(&path)?;
        let layout = db.open_tree(LAYOUT_TREE)?.get(LAYOUT_KEY)?;
        let backend = match layout.as_deref() {
            Some(b"sled") => BlobBackend::Sled,
            Some(b"files") | None => BlobBackend::Files,
            Some(_) => return Err(Error::Corrupt("unknown blob layout recorded".into())),
        };
        Ok((Self::with_db(data_dir, &db, backend)?, backend))
    }

    fn with_db(data_dir: &Path, db: &sled::Db, backend: BlobBackend) -> Result<Stores> {
        let log_sync = LogSync::open(&data_dir.join("db"))?;
        let meta = Arc::new(sled_meta::SledMeta::new(db)?.with_log_sync(log_sync.clone()));
        let blobs: Arc<dyn BlobStore> = match backend {
            BlobBackend::Files => Arc::new(packs::PackedBlobs::open(
                data_dir,
                db,
                Some(log_sync.clone()),
            )?),
            BlobBackend::Sled => Arc::new(
                sled_blobs::SledBlobs::new(db, coffre_protocol::MAX_BLOB_BYTES)?
                    .with_log_sync(log_sync),
            ),
        };
        Ok(Stores { meta, blobs })
    }

    /// Fresh in-memory stores (tests).
    pub fn memory() -> Stores {
        Stores {
            meta: Arc::new(memory::MemoryMeta::new()),
            blobs: Arc::new(memory::MemoryBlobs::new()),
        }
    }
}

/// An account as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountRecord {
    /// The handle (the key of the record).
    pub handle: String,
    /// The encoded identity (`CFID`), verified at registration.
    pub identity: Vec<u8>,
    /// The device chain (`CFDV` entries in order), each verified when appended.
    pub device_chain: Vec<Vec<u8>>,
    /// Sealed key bundles, stored opaquely.
    pub key_bundles: Vec<Vec<u8>>,
    /// Storage quota in bytes.
    pub quota_bytes: u64,
    /// Bytes of blobs this account uploaded and that are still stored.
    pub used_bytes: u64,
    /// Registration time, milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// The OPAQUE registration record (empty: passphrase login not set up).
    pub opaque_record: Vec<u8>,
}

/// A pending login challenge (single use).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// The handle it was issued for.
    pub handle: String,
    /// The device key it was issued for.
    pub device_key: [u8; 32],
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// A session token, stored under the hash of the token (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenRecord {
    /// The account.
    pub handle: String,
    /// The device that logged in.
    pub device_key: [u8; 32],
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: u64,
}

/// A member of a space, as derived by the service from the verified membership log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRecord {
    /// The member's handle.
    pub handle: String,
    /// The role code of FORMAT.md section 9.1 (1 reader, 2 writer, 3 admin, 4 owner).
    pub role: u8,
}

/// What the service needs to know about a space without reading its logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceRecord {
    /// The space.
    pub space: SpaceId,
    /// Number of membership entries (genesis included).
    pub membership_len: u64,
    /// Seq of the newest commit; 0 when there is none.
    pub head_seq: u64,
    /// Current members.
    pub members: Vec<MemberRecord>,
}

/// The index entry of one stored blob.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobMeta {
    /// Size in bytes.
    pub size: u64,
    /// When it was stored or last claimed (a dedup upload or a `missing` answer "present"),
    /// milliseconds since the Unix epoch. The prune grace period counts from it.
    pub created_ms: u64,
    /// The account charged for it.
    pub uploader: String,
}

/// One inbox item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxRecord {
    /// Per-recipient id, increasing.
    pub id: u64,
    /// Sender's handle.
    pub from: String,
    /// The sealed invitation bytes.
    pub invitation: Vec<u8>,
    /// Arrival time, milliseconds since the Unix epoch.
    pub received_ms: u64,
}

/// Accounts, sessions, spaces, blob index and inboxes.
pub trait MetaStore: Send + Sync + 'static {
    // ---- accounts ----
    /// Creates an account; [`crate::Error::AlreadyExists`] if the handle is taken.
    fn create_account(&self, account: &AccountRecord) -> Result<()>;
    /// Reads an account.
    fn account(&self, handle: &str) -> Result<Option<AccountRecord>>;
    /// Appends a device-chain entry if the chain has exactly `expected_len` entries, else
    /// [`crate::Error::Conflict`] with the current length.
    fn append_device_entry(&self, handle: &str, expected_len: u64, entry: &[u8]) -> Result<()>;
    /// Atomically adds `bytes` to the account's usage, or fails with
    /// [`crate::Error::QuotaExceeded`] if that would pass its quota.
    fn reserve_quota(&self, handle: &str, bytes: u64) -> Result<()>;
    /// Subtracts `bytes` from the account's usage (saturating at zero).
    ///
    /// Quota reservations and releases are the one exception to the durability contract: they
    /// are accounting, rebuilt from the blob index (the truth) by `check::recover` at every start,
    /// so they need not be flushed on their own and become durable with the next flush. This
    /// saves two synchronous disk flushes per upload; a crash can only leave usage too high,
    /// which the next start repairs.
    fn release_quota(&self, handle: &str, bytes: u64) -> Result<()>;

    // ---- sessions ----
    /// Stores a login challenge under its 32 random bytes.
    fn put_challenge(&self, challenge: &[u8; 32], record: &ChallengeRecord) -> Result<()>;
    /// Removes and returns a challenge (single use), whether or not it has expired.
    fn take_challenge(&self, challenge: &[u8; 32]) -> Result<Option<ChallengeRecord>>;
    /// Stores a session under the hash of its token.
    fn put_token(&self, token_hash: &[u8; 32], record: &TokenRecord) -> Result<()>;
    /// Looks a session up by the hash of its token.
    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>>;
    /// Deletes expired challenges and tokens; returns how many.
    fn purge_expired(&self, now_ms: u64) -> Result<u64>;

    // ---- spaces ----
    /// Creates a space from its genesis entry; [`crate::Error::AlreadyExists`] if it exists.
    fn create_space(&self, space: &SpaceId, genesis: &[u8], members: &[MemberRecord])
    -> Result<()>;
    /// Reads a space's summary.
    fn space(&self, space: &SpaceId) -> Result<Option<SpaceRecord>>;
    /// The spaces `handle` is currently a member of.
    fn spaces_of(&self, handle: &str) -> Result<Vec<SpaceId>>;
    /// Membership entries with `seq >= from_seq`, at most `limit`, in order.
    fn membership_entries(
        &self,
        space: &SpaceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>>;
    /// Appends a membership entry and replaces the member index, atomically, if the log has
    /// `expected_len` entries **and** the head seq is `expected_head_seq`; else
    /// [`crate::Error::Conflict`].
    fn append_membership(
        &self,
        space: &SpaceId,
        expected_len: u64,
        expected_head_seq: u64,
        entry: &[u8],
        members: &[MemberRecord],
    ) -> Result<()>;
    /// Commits with `seq > after_seq`, at most `limit`, in order.
    fn commits(&self, space: &SpaceId, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>>;
    /// Appends commit `seq` if `seq` is the head seq + 1 **and** the membership log has
    /// `expected_membership_len` entries; else [`crate::Error::Conflict`] with the head seq.
    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        expected_membership_len: u64,
        commit: &[u8],
    ) -> Result<()>;

    // ---- blob index ----
    /// The index entry of a blob.
    fn blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>>;
    /// Inserts an index entry; returns `false` (and changes nothing) if one exists.
    fn put_blob_meta(&self, space: &SpaceId, blob: &BlobId, meta: &BlobMeta) -> Result<bool>;
    /// Inserts several index entries of one space, each only if absent, and makes them durable
    /// together (one flush for the whole set, not one per entry); returns, per entry, whether it
    /// was inserted. Durable on return. The default inserts them one by one.
    fn put_blob_metas(&self, space: &SpaceId, entries: &[(BlobId, BlobMeta)]) -> Result<Vec<bool>> {
        entries
            .iter()
            .map(|(blob, meta)| self.put_blob_meta(space, blob, meta))
            .collect()
    }
    /// Marks the indexed blobs among `blobs` as claimed at `now_ms` (their `created_ms` becomes at
    /// least `now_ms`) and returns, for each id, whether it is indexed. Durable on return.
    ///
    /// A dedup upload and a `missing` answer "present" claim the blob: the client will reference
    /// it without uploading it, so the prune grace period must count from that moment, or a
    /// concurrent prune could delete a blob that a commit is about to reference.
    fn claim_blobs(&self, space: &SpaceId, blobs: &[BlobId], now_ms: u64) -> Result<Vec<bool>>;
    /// Removes and returns an index entry.
    fn delete_blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>>;
    /// Index entries of a space in id order, strictly after `after`, at most `limit`.
    fn list_blob_meta(
        &self,
        space: &SpaceId,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobMeta)>>;
    /// Visits every index entry of every space (for `check`).
    fn for_each_blob_meta(
        &self,
        visit: &mut dyn FnMut(&SpaceId, &BlobId, &BlobMeta) -> Result<()>,
    ) -> Result<()>;

    /// Visits every account (for `check`: quota usage against the blob index).
    fn for_each_account(&self, visit: &mut dyn FnMut(&AccountRecord) -> Result<()>) -> Result<()>;
    /// Visits every space's summary (for `check`: logs and member index).
    fn for_each_space(&self, visit: &mut dyn FnMut(&SpaceRecord) -> Result<()>) -> Result<()>;

    // ---- inbox ----
    /// Appends an invitation to `to`'s inbox; [`crate::Error::InboxFull`] past `max_pending`.
    fn push_invitation(
        &self,
        to: &str,
        from: &str,
        invitation: &[u8],
        received_ms: u64,
        max_pending: usize,
    ) -> Result<u64>;
    /// The pending invitations of `handle`, oldest first.
    fn invitations(&self, handle: &str) -> Result<Vec<InboxRecord>>;
    /// Deletes one; returns whether it existed.
    fn delete_invitation(&self, handle: &str, id: u64) -> Result<bool>;
}

/// A blob being written. Dropping it without [`BlobWriter::commit`] aborts: nothing becomes visible.
pub trait BlobWriter: Send {
    /// Appends bytes.
    fn write(&mut self, bytes: &[u8]) -> Result<()>;
    /// Makes the blob durable and visible, atomically. Returns only after it is on stable storage.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A stored blob being read.
pub struct BlobReader {
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes.
    pub body: Box<dyn std::io::Read + Send>,
}

impl core::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "BlobReader({} bytes)", self.size)
    }
}

/// Blob bodies, addressed by space and blob id. The store does not check hashes; the service does
/// on upload, `check --read-data` does at rest, and readers do on download.
pub trait BlobStore: Send + Sync + 'static {
    /// Starts writing a blob (replacing nothing: if it exists, the commit keeps the existing one).
    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>>;
    /// Stores several complete bodies of one space and makes them durable **together**: returns
    /// only once every one is on stable storage, like a [`BlobWriter::commit`] of each, but a
    /// backend may share one group sync among them instead of paying one per blob. An existing
    /// blob is kept, never replaced. On an error some of the bodies may have been stored (each
    /// one whole or not at all); none is indexed yet, so a retry is safe. The default commits
    /// one writer per body.
    fn put_many(&self, space: &SpaceId, blobs: &[(BlobId, &[u8])]) -> Result<()> {
        for (blob, bytes) in blobs {
            let mut writer = self.begin(space, blob)?;
            writer.write(bytes)?;
            writer.commit()?;
        }
        Ok(())
    }
    /// Opens a blob for reading.
    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>>;
    /// Whether a blob body exists.
    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool>;
    /// Deletes a blob body durably (absent is not an error).
    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()>;
    /// Visits every stored body with its size (for `check`).
    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()>;
    /// Bytes the bodies take on disk (for `/metrics` and the benchmark).
    fn disk_bytes(&self) -> Result<u64>;
}
