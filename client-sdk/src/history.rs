//! A space's history: verified commits, committing with compare-and-swap and automatic merge,
//! reading old snapshots, restoring.
//!
//! Invariants and threats:
//! - every commit used was decoded (device signature checked) and verified against the previous
//!   one and the membership log ([`verify_next`]: hash link, seq, membership entry, epoch, write
//!   rights) before its root is opened **[T-ghost] [T-revocation]**;
//! - the verified chain must extend the head pinned in the [`PinStore`]: a gateway serving an
//!   older head or another branch gets [`Error::Integrity`] **[T-rollback]**;
//! - a new commit is appended with compare-and-swap; when it loses, the newer commits are
//!   verified like any other, the trees are merged three-way ([`crate::tree::merge`] documents
//!   the rule and the conflict-copy names) and the commit retried, at most
//!   [`MAX_COMMIT_ATTEMPTS`] times, then [`Error::Conflict`];
//! - restoring copies references out of an old tree (blob keys live in the tree, so old blobs
//!   open whatever the epoch): nothing is re-uploaded, and the restore is a new commit.
//!
//! The membership log given to [`History`] must be current (the caller refreshes it before):
//! commits naming a newer membership entry fail verification.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use coffre_crypto::commit::{Commit, CommitRoot, LogHead, PinnedHead, verify_next};
use coffre_crypto::device::DeviceSigner;
use coffre_crypto::envelope::BlobRef;
use coffre_crypto::identity::IdentitySecret;
use coffre_crypto::keys::{CommitHash, EpochKey, SignPublicKey, SpaceId};
use coffre_crypto::membership::MembershipLog;

use crate::error::{Error, Result};
use crate::files::ChunkKeys;
use crate::remote::{AppendOutcome, Remote};
use crate::tree::{ConflictLabel, MergeReport, Snapshot, SpacePath, merge_trees};

/// How many times a commit is merged and retried after losing the compare-and-swap.
pub const MAX_COMMIT_ATTEMPTS: usize = 5;

/// Where the highest verified head of each space is remembered between runs.
///
/// The local state (`state.rs`) implements this for real; [`MemoryPins`] keeps pins in memory.
pub trait PinStore: Send + Sync {
    /// The pinned head of `space` ([`PinnedHead::NONE`] if nothing was seen yet).
    fn pinned(&self, space: &SpaceId) -> Result<PinnedHead>;
    /// Records a newer verified head (callers only ever move it forward along the chain).
    fn pin(&self, space: &SpaceId, head: PinnedHead) -> Result<()>;
}

/// Pins held in memory only (tests, short-lived tools).
#[derive(Debug, Default)]
pub struct MemoryPins(Mutex<HashMap<SpaceId, PinnedHead>>);

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Critical sections below never panic half-way; a poisoned lock still holds consistent data.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl PinStore for MemoryPins {
    fn pinned(&self, space: &SpaceId) -> Result<PinnedHead> {
        Ok(lock(&self.0)
            .get(space)
            .copied()
            .unwrap_or(PinnedHead::NONE))
    }

    fn pin(&self, space: &SpaceId, head: PinnedHead) -> Result<()> {
        lock(&self.0).insert(*space, head);
        Ok(())
    }
}

/// One verified commit, as shown to a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitInfo {
    /// Position in the history (1, 2, ...).
    pub seq: u64,
    /// `H(commit)`.
    pub hash: CommitHash,
    /// The epoch the commit was written in.
    pub epoch: u64,
    /// The author's time, milliseconds since the Unix epoch (as the author's clock said).
    pub time_ms: i64,
    /// The commit message.
    pub message: String,
    /// The author's identity key (verified: a writer at this seq).
    pub author: SignPublicKey,
    /// The author's handle, from the membership log.
    pub author_handle: Option<String>,
    /// The author's device key.
    pub device: SignPublicKey,
}

/// The result of a commit.
#[derive(Debug)]
pub struct Committed {
    /// The new head.
    pub info: CommitInfo,
    /// Conflict copies made while merging with concurrent commits.
    pub merged: MergeReport,
}

/// The pieces of an unlocked space that history needs (the `Space` type holds them).
#[derive(Debug)]
pub struct SpaceContext<'a, R> {
    /// The gateway.
    pub remote: &'a R,
    /// The space.
    pub space_id: SpaceId,
    /// The space's verified, current membership log.
    pub log: &'a MembershipLog,
    /// The member's identity (opens epoch keys).
    pub identity: &'a IdentitySecret,
    /// This device's signer.
    pub signer: &'a DeviceSigner,
    /// The pinned heads.
    pub pins: &'a dyn PinStore,
}

/// Verified access to one space's history, with a cache of the verified chain.
#[derive(Debug)]
pub struct History<'a, R> {
    ctx: SpaceContext<'a, R>,
    chain: Mutex<Vec<Commit>>,
    keys: Mutex<HashMap<u64, EpochKey>>,
}

impl core::fmt::Debug for dyn PinStore + '_ {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PinStore")
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

impl<'a, R: Remote> History<'a, R> {
    /// History over `ctx`; nothing is fetched yet.
    pub fn new(ctx: SpaceContext<'a, R>) -> Self {
        History {
            ctx,
            chain: Mutex::new(Vec::new()),
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// The context.
    pub fn context(&self) -> &SpaceContext<'a, R> {
        &self.ctx
    }

    /// The key of `epoch` (opened from the membership log once, then cached).
    pub fn epoch_key(&self, epoch: u64) -> Result<EpochKey> {
        if let Some(key) = lock(&self.keys).get(&epoch) {
            return Ok(key.duplicate());
        }
        let key = self.ctx.log.epoch_key(epoch, self.ctx.identity)?;
        lock(&self.keys).insert(epoch, key.duplicate());
        Ok(key)
    }

    /// The chunking keys of the current epoch (for uploads).
    pub fn chunk_keys(&self) -> Result<ChunkKeys> {
        let epoch = self.ctx.log.state().epoch();
        Ok(ChunkKeys::derive(
            &self.ctx.space_id,
            epoch,
            &self.epoch_key(epoch)?,
        ))
    }

    /// Fetches the commits not seen yet, verifies them, checks they extend the pinned head,
    /// moves the pin forward, and returns the whole verified chain (seq 1 first).
    pub async fn refresh(&self) -> Result<Vec<Commit>> {
        let mut chain = lock(&self.chain).clone();
        let since = chain.len() as u64;
        let (raw, head_seq) = self.ctx.remote.commits(&self.ctx.space_id, since).await?;
        // Call site of the freshness pin (the local state implements `PinStore`).
        let pin = self.ctx.pins.pinned(&self.ctx.space_id)?;
        if head_seq < pin.seq || head_seq < since {
            return Err(Error::Integrity(format!(
                "rollback: the gateway's head is seq {head_seq}, older than the verified seq {}",
                pin.seq.max(since)
            )));
        }
        if raw.len() as u64 != head_seq - since {
            return Err(Error::Protocol(
                "the gateway's commit list does not reach its head".into(),
            ));
        }
        for bytes in raw {
            let commit = Commit::decode(&bytes)?;
            verify_next(chain.last(), &commit, self.ctx.log)?;
            chain.push(commit);
        }
        let head = pin.check_extension(&chain)?;
        if head.seq < pin.seq {
            return Err(Error::Integrity("rollback: the head moved back".into()));
        }
        self.ctx.pins.pin(&self.ctx.space_id, head)?;
        *lock(&self.chain) = chain.clone();
        Ok(chain)
    }

    /// The verified head commit (`None` for a space without commits).
    pub async fn head(&self) -> Result<Option<Commit>> {
        Ok(self.refresh().await?.pop())
    }

    /// Opens the sealed root of a verified commit.
    pub fn open_root(&self, commit: &Commit) -> Result<CommitRoot> {
        Ok(commit.open_root(&self.epoch_key(commit.epoch())?)?)
    }

    /// What a user sees of a verified commit.
    pub fn info(&self, commit: &Commit) -> Result<CommitInfo> {
        let root = self.open_root(commit)?;
        let author = *commit.author_device().identity_key();
        let author_handle = self
            .ctx
            .log
            .state_at_commit_seq(commit.seq())
            .and_then(|state| state.member(&author))
            .map(|member| member.identity().handle().as_str().to_owned());
        Ok(CommitInfo {
            seq: commit.seq(),
            hash: commit.hash(),
            epoch: commit.epoch(),
            time_ms: root.time_ms,
            message: root.message,
            author,
            author_handle,
            device: *commit.author_device().device_key(),
        })
    }

    /// Every commit, oldest first, verified.
    pub async fn log(&self) -> Result<Vec<CommitInfo>> {
        self.refresh()
            .await?
            .iter()
            .map(|commit| self.info(commit))
            .collect()
    }

    /// The snapshot at the head, and the head commit (an empty tree if there is none).
    pub async fn head_snapshot(&self) -> Result<(Option<Commit>, Snapshot<'a, R>)> {
        let head = self.head().await?;
        let snapshot = match &head {
            Some(commit) => Snapshot::open(
                self.ctx.remote,
                self.ctx.space_id,
                self.open_root(commit)?.root,
            ),
            None => Snapshot::empty(self.ctx.remote, self.ctx.space_id),
        };
        Ok((head, snapshot))
    }

    /// The verified commit `seq`.
    pub async fn commit_at(&self, seq: u64) -> Result<Commit> {
        let chain = self.refresh().await?;
        usize::try_from(seq)
            .ok()
            .and_then(|seq| seq.checked_sub(1))
            .and_then(|index| chain.get(index))
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no commit {seq}")))
    }

    /// The snapshot at commit `seq`.
    pub async fn snapshot_at(&self, seq: u64) -> Result<Snapshot<'a, R>> {
        let commit = self.commit_at(seq).await?;
        Ok(Snapshot::open(
            self.ctx.remote,
            self.ctx.space_id,
            self.open_root(&commit)?.root,
        ))
    }

    fn label(&self) -> ConflictLabel {
        let me = self.ctx.signer.identity_key();
        let who = self
            .ctx
            .log
            .state()
            .member(me)
            .map(|member| member.identity().handle().as_str().to_owned())
            .unwrap_or_else(|| {
                let hex: String = me.to_bytes()[..4]
                    .iter()
                    .map(|byte| format!("{byte:02x}"))
                    .collect();
                format!("device {hex}")
            });
        ConflictLabel::now(&who)
    }

    /// Writes `snapshot` (only changed directories are uploaded) and commits it on top of
    /// `base` (the commit it was read from). If someone committed meanwhile, their commits are
    /// verified and merged, and the commit retried. Returns `None` if nothing changed.
    pub async fn commit(
        &self,
        base: Option<&Commit>,
        snapshot: &mut Snapshot<'_, R>,
        message: &str,
    ) -> Result<Option<Committed>> {
        let root = snapshot.write().await?;
        if let Some(base) = base
            && self.open_root(base)?.root.id == root.id
        {
            return Ok(None);
        }
        self.commit_root(base, root, message).await.map(Some)
    }

    /// Commits `root` on top of `base`, merging with concurrent commits (see the module docs).
    pub async fn commit_root(
        &self,
        base: Option<&Commit>,
        root: BlobRef,
        message: &str,
    ) -> Result<Committed> {
        let epoch = self.ctx.log.state().epoch();
        let epoch_key = self.epoch_key(epoch)?;
        let mut parent = base.cloned();
        let mut root = root;
        let mut merged = MergeReport::default();
        let label = self.label();
        for _ in 0..MAX_COMMIT_ATTEMPTS {
            let commit_root = CommitRoot {
                root: root.duplicate(),
                time_ms: now_ms(),
                message: message.to_owned(),
            };
            let commit = Commit::next(
                self.ctx.log,
                parent.as_ref(),
                &epoch_key,
                LogHead::NONE,
                &commit_root,
                self.ctx.signer,
            )?;
            let outcome = self
                .ctx
                .remote
                .append_commit(&self.ctx.space_id, commit.seq(), commit.encoded().to_vec())
                .await?;
            if outcome == AppendOutcome::Appended {
                let mut chain = lock(&self.chain);
                if chain.last().map(Commit::hash) == parent.as_ref().map(Commit::hash) {
                    chain.push(commit.clone());
                }
                drop(chain);
                // Our parent was verified to extend the pin, so the pin is below our seq unless
                // the gateway accepted a second commit at a seq we already verified: a fork.
                let pin = self.ctx.pins.pinned(&self.ctx.space_id)?;
                if pin.seq >= commit.seq() {
                    return Err(Error::Integrity(format!(
                        "fork: the gateway accepted seq {} but seq {} was already verified",
                        commit.seq(),
                        pin.seq
                    )));
                }
                self.ctx
                    .pins
                    .pin(&self.ctx.space_id, PinnedHead::of(&commit))?;
                return Ok(Committed {
                    info: self.info(&commit)?,
                    merged,
                });
            }
            let theirs = self.head().await?;
            let (Some(theirs), true) = (
                theirs.clone(),
                theirs.as_ref().map(Commit::seq) > parent.as_ref().map(Commit::seq),
            ) else {
                return Err(Error::Conflict(
                    "the gateway refused the commit but has no newer one (the membership log may \
                     have changed: refresh the space and retry)"
                        .into(),
                ));
            };
            let base_root = match &parent {
                Some(parent) => Some(self.open_root(parent)?.root),
                None => None,
            };
            let their_root = self.open_root(&theirs)?.root;
            let (mut snapshot, report) = merge_trees(
                self.ctx.remote,
                self.ctx.space_id,
                base_root.as_ref(),
                &their_root,
                &root,
                &label,
            )
            .await?;
            merged.conflicts.extend(report.conflicts);
            root = snapshot.write().await?;
            parent = Some(theirs);
        }
        Err(Error::Conflict(format!(
            "lost the race to commit {MAX_COMMIT_ATTEMPTS} times; try again"
        )))
    }

    /// Restores `path` (or, with `None`, the whole space) as it was at commit `seq`, as a new
    /// commit. Nothing is re-uploaded but changed directory nodes. A path absent at `seq` is
    /// [`Error::NotFound`].
    pub async fn restore(&self, path: Option<&SpacePath>, seq: u64) -> Result<Option<Committed>> {
        let old_root = self.open_root(&self.commit_at(seq).await?)?.root;
        let (head, mut snapshot) = self.head_snapshot().await?;
        let message = match path {
            Some(path) => format!("restore {path} from {seq}"),
            None => format!("restore everything from {seq}"),
        };
        let mut old = Snapshot::open(self.ctx.remote, self.ctx.space_id, old_root);
        match path.filter(|path| !path.is_root()) {
            None => self.commit(head.as_ref(), &mut old, &message).await,
            Some(path) => {
                let entry = old.entry(path).await?.duplicate();
                if snapshot.stat(path).await.is_ok() {
                    snapshot.take(path).await?;
                }
                snapshot.put_entry(path, entry).await?;
                self.commit(head.as_ref(), &mut snapshot, &message).await
            }
        }
    }
}
