//! An in-memory gateway for tests: a **test double** of [`Remote`], not a storage backend.
//!
//! It keeps the real gateway's contract where the SDK relies on it: blobs are stored under
//! `H(envelope)` and a put whose bytes do not hash to the id is refused; commits are appended with
//! compare-and-swap on `seq` and must name the newest membership entry; membership entries are
//! appended at the next seq. It does **not** verify signatures (the SDK never trusts a gateway's
//! verification anyway).
//!
//! It can also misbehave on purpose, one fault at a time, to test that the SDK refuses it:
//! serve an older head ([`MemoryRemote::serve_head_at`], rollback), swap two blobs
//! ([`MemoryRemote::swap_blobs`]), drop a blob ([`MemoryRemote::drop_blob`]), and fail uploads
//! after a number of successful ones ([`MemoryRemote::fail_puts_after`], an interrupted upload).
//! It counts calls and bytes ([`MemoryRemote::stats`]) so tests can check deduplication.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use coffre_crypto::commit::Commit;
use coffre_crypto::envelope::blob_id;
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_crypto::membership::MembershipEntry;
use coffre_protocol::types::{Id32, SpaceSummary};

use crate::error::{Error, Result};
use crate::remote::{AppendOutcome, Remote};

/// Calls and bytes seen by a [`MemoryRemote`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RemoteStats {
    /// `put_blob` calls (accepted or not).
    pub put_blob_calls: u64,
    /// Envelope bytes received by accepted `put_blob` calls.
    pub put_blob_bytes: u64,
    /// `get_blob` calls.
    pub get_blob_calls: u64,
    /// `missing_blobs` calls.
    pub missing_calls: u64,
    /// `put_blobs` calls (batches, accepted or not).
    pub put_batch_calls: u64,
    /// Blobs received by accepted `put_blobs` calls.
    pub put_batch_blobs: u64,
    /// `get_blobs` calls.
    pub get_batch_calls: u64,
    /// `append_commit` calls.
    pub append_commit_calls: u64,
}

#[derive(Debug, Default)]
struct SpaceState {
    membership: Vec<Vec<u8>>,
    commits: Vec<Vec<u8>>,
    blobs: HashMap<BlobId, Vec<u8>>,
}

#[derive(Debug, Default)]
struct Inner {
    spaces: HashMap<SpaceId, SpaceState>,
    stats: RemoteStats,
    rollback: HashMap<SpaceId, u64>,
    swapped: HashMap<BlobId, BlobId>,
    dropped: HashSet<BlobId>,
    puts_left: Option<u64>,
    put_delay: Option<std::time::Duration>,
}

/// The in-memory gateway. Cheap to share by reference between several "devices".
#[derive(Debug, Default)]
pub struct MemoryRemote {
    inner: Mutex<Inner>,
}

fn lock(mutex: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    // A panic while holding the lock can only come from a test; the data is still consistent
    // (every critical section is a few map operations), so recover it.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn no_space(space: &SpaceId) -> Error {
    Error::NotFound(format!("no space {space}"))
}

impl MemoryRemote {
    /// An empty gateway.
    pub fn new() -> Self {
        MemoryRemote::default()
    }

    /// The counters so far.
    pub fn stats(&self) -> RemoteStats {
        lock(&self.inner).stats
    }

    /// Resets the counters.
    pub fn reset_stats(&self) {
        lock(&self.inner).stats = RemoteStats::default();
    }

    /// How many blobs `space` holds.
    pub fn blob_count(&self, space: &SpaceId) -> usize {
        lock(&self.inner)
            .spaces
            .get(space)
            .map_or(0, |state| state.blobs.len())
    }

    /// The ids of the blobs `space` holds.
    pub fn blob_ids(&self, space: &SpaceId) -> Vec<BlobId> {
        lock(&self.inner)
            .spaces
            .get(space)
            .map(|state| state.blobs.keys().copied().collect())
            .unwrap_or_default()
    }

    /// Fault: serve `space`'s history as if its head were `seq` (`None`: stop lying).
    pub fn serve_head_at(&self, space: &SpaceId, seq: Option<u64>) {
        let mut inner = lock(&self.inner);
        match seq {
            Some(seq) => inner.rollback.insert(*space, seq),
            None => inner.rollback.remove(space),
        };
    }

    /// Fault: answer a read of `a` with the bytes of `b`, and of `b` with those of `a`.
    pub fn swap_blobs(&self, a: BlobId, b: BlobId) {
        let mut inner = lock(&self.inner);
        inner.swapped.insert(a, b);
        inner.swapped.insert(b, a);
    }

    /// Fault: forget blob `id` (reads say not found, `missing_blobs` lists it).
    pub fn drop_blob(&self, id: BlobId) {
        lock(&self.inner).dropped.insert(id);
    }

    /// Fault: accept `count` more blob uploads, then fail every upload with a network error
    /// (`None`: stop failing).
    pub fn fail_puts_after(&self, count: Option<u64>) {
        lock(&self.inner).puts_left = count;
    }

    /// Latency: every single-blob upload takes `delay` before it is stored (`None`: at once), as
    /// over a slow link, so that several are in flight together.
    pub fn delay_puts(&self, delay: Option<std::time::Duration>) {
        lock(&self.inner).put_delay = delay;
    }

    /// Stores raw bytes under `id` without checking the hash (to plant a corrupt blob).
    pub fn plant_blob(&self, space: &SpaceId, id: BlobId, bytes: Vec<u8>) {
        lock(&self.inner)
            .spaces
            .entry(*space)
            .or_default()
            .blobs
            .insert(id, bytes);
    }
}

impl Remote for MemoryRemote {
    async fn put_blob(&self, space: &SpaceId, id: &BlobId, envelope: Vec<u8>) -> Result<()> {
        let delay = lock(&self.inner).put_delay;
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let mut inner = lock(&self.inner);
        inner.stats.put_blob_calls += 1;
        if let Some(left) = inner.puts_left {
            if left == 0 {
                return Err(Error::Network("injected upload failure".into()));
            }
            inner.puts_left = Some(left - 1);
        }
        if blob_id(&envelope) != *id {
            return Err(Error::Protocol(
                "hash_mismatch: the blob does not hash to its id".into(),
            ));
        }
        inner.stats.put_blob_bytes += envelope.len() as u64;
        inner.dropped.remove(id);
        let state = inner.spaces.get_mut(space).ok_or_else(|| no_space(space))?;
        state.blobs.insert(*id, envelope);
        Ok(())
    }

    async fn put_blobs(&self, space: &SpaceId, blobs: Vec<(BlobId, Vec<u8>)>) -> Result<()> {
        let mut inner = lock(&self.inner);
        inner.stats.put_batch_calls += 1;
        if let Some(left) = inner.puts_left {
            if left == 0 {
                return Err(Error::Network("injected upload failure".into()));
            }
            inner.puts_left = Some(left - 1);
        }
        let size: usize = blobs
            .iter()
            .map(|(_, bytes)| coffre_protocol::batch::record_len(bytes.len()))
            .sum();
        let mut ids = HashSet::new();
        if blobs.is_empty()
            || blobs.len() > coffre_protocol::batch::MAX_BLOBS_PER_BATCH
            || size as u64 > coffre_protocol::batch::MAX_BATCH_BYTES
            || !blobs.iter().all(|(id, _)| ids.insert(*id))
        {
            return Err(Error::Protocol("bad blob batch".into()));
        }
        // Like the gateway: one bad blob refuses the whole batch.
        if blobs.iter().any(|(id, bytes)| blob_id(bytes) != *id) {
            return Err(Error::Protocol(
                "hash_mismatch: the blob does not hash to its id".into(),
            ));
        }
        if !inner.spaces.contains_key(space) {
            return Err(no_space(space));
        }
        for (id, bytes) in blobs {
            inner.stats.put_batch_blobs += 1;
            inner.stats.put_blob_bytes += bytes.len() as u64;
            inner.dropped.remove(&id);
            if let Some(state) = inner.spaces.get_mut(space) {
                state.blobs.insert(id, bytes);
            }
        }
        Ok(())
    }

    async fn get_blobs(&self, space: &SpaceId, ids: &[BlobId]) -> Result<Vec<(BlobId, Vec<u8>)>> {
        let mut inner = lock(&self.inner);
        inner.stats.get_batch_calls += 1;
        if ids.is_empty() || ids.len() > coffre_protocol::batch::MAX_BLOBS_PER_BATCH {
            return Err(Error::Protocol("bad fetch".into()));
        }
        let inner = &*inner;
        let state = inner.spaces.get(space).ok_or_else(|| no_space(space))?;
        // Like the gateway: a prefix that fits in one batch (at least one blob).
        let mut out = Vec::new();
        let mut size = 0usize;
        for id in ids {
            if inner.dropped.contains(id) {
                return Err(Error::NotFound(format!("no blob {id}")));
            }
            let served = inner.swapped.get(id).copied().unwrap_or(*id);
            let bytes = state
                .blobs
                .get(&served)
                .ok_or_else(|| Error::NotFound(format!("no blob {id}")))?;
            size += coffre_protocol::batch::record_len(bytes.len());
            if !out.is_empty() && size as u64 > coffre_protocol::batch::MAX_BATCH_BYTES {
                break;
            }
            out.push((*id, bytes.clone()));
        }
        Ok(out)
    }

    async fn get_blob(&self, space: &SpaceId, id: &BlobId) -> Result<Vec<u8>> {
        let mut inner = lock(&self.inner);
        inner.stats.get_blob_calls += 1;
        if inner.dropped.contains(id) {
            return Err(Error::NotFound(format!("no blob {id}")));
        }
        let served = inner.swapped.get(id).copied().unwrap_or(*id);
        let state = inner.spaces.get(space).ok_or_else(|| no_space(space))?;
        state
            .blobs
            .get(&served)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("no blob {id}")))
    }

    async fn missing_blobs(&self, space: &SpaceId, ids: &[BlobId]) -> Result<Vec<BlobId>> {
        let mut inner = lock(&self.inner);
        inner.stats.missing_calls += 1;
        if ids.len() > coffre_protocol::MAX_IDS_PER_REQUEST {
            return Err(Error::Protocol("too many ids in one request".into()));
        }
        let inner = &*inner;
        let state = inner.spaces.get(space).ok_or_else(|| no_space(space))?;
        Ok(ids
            .iter()
            .filter(|id| !state.blobs.contains_key(id) || inner.dropped.contains(id))
            .copied()
            .collect())
    }

    async fn create_space(&self, genesis: Vec<u8>) -> Result<SpaceId> {
        let entry = MembershipEntry::decode(&genesis)?;
        if entry.seq() != 0 {
            return Err(Error::Protocol("not a genesis entry".into()));
        }
        let space = SpaceId::from_bytes(*entry.hash().as_bytes());
        let mut inner = lock(&self.inner);
        if inner.spaces.contains_key(&space) {
            return Err(Error::AlreadyExists(format!("space {space}")));
        }
        inner.spaces.insert(
            space,
            SpaceState {
                membership: vec![genesis],
                ..SpaceState::default()
            },
        );
        Ok(space)
    }

    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>> {
        let inner = lock(&self.inner);
        Ok(inner
            .spaces
            .iter()
            .map(|(id, state)| SpaceSummary {
                space_id: Id32(*id.as_bytes()),
                role: "owner".into(),
                membership_len: state.membership.len() as u64,
                head_seq: state.commits.len() as u64,
            })
            .collect())
    }

    async fn membership(&self, space: &SpaceId, since: u64) -> Result<Vec<Vec<u8>>> {
        let inner = lock(&self.inner);
        let state = inner.spaces.get(space).ok_or_else(|| no_space(space))?;
        let since = usize::try_from(since).unwrap_or(usize::MAX);
        Ok(state.membership.iter().skip(since).cloned().collect())
    }

    async fn append_membership(&self, space: &SpaceId, entry: Vec<u8>) -> Result<AppendOutcome> {
        let decoded = MembershipEntry::decode(&entry)?;
        let mut inner = lock(&self.inner);
        let state = inner.spaces.get_mut(space).ok_or_else(|| no_space(space))?;
        let head_seq = state.commits.len() as u64;
        if decoded.seq() != state.membership.len() as u64 || decoded.commit_seq() != head_seq {
            return Ok(AppendOutcome::Conflict { head_seq });
        }
        state.membership.push(entry);
        Ok(AppendOutcome::Appended)
    }

    async fn commits(&self, space: &SpaceId, since: u64) -> Result<(Vec<Vec<u8>>, u64)> {
        let inner = lock(&self.inner);
        let state = inner.spaces.get(space).ok_or_else(|| no_space(space))?;
        let head = match inner.rollback.get(space) {
            Some(seq) => (*seq).min(state.commits.len() as u64),
            None => state.commits.len() as u64,
        };
        let from = usize::try_from(since).unwrap_or(usize::MAX);
        let to = usize::try_from(head).unwrap_or(usize::MAX);
        let commits = state
            .commits
            .get(from..to)
            .map(<[_]>::to_vec)
            .unwrap_or_default();
        Ok((commits, head))
    }

    async fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        commit: Vec<u8>,
    ) -> Result<AppendOutcome> {
        let decoded = Commit::decode(&commit)?;
        let mut inner = lock(&self.inner);
        inner.stats.append_commit_calls += 1;
        let state = inner.spaces.get_mut(space).ok_or_else(|| no_space(space))?;
        let head_seq = state.commits.len() as u64;
        let newest_entry = state
            .membership
            .last()
            .map(|entry| coffre_crypto::kdf::hash(entry));
        if seq != head_seq + 1
            || decoded.seq() != seq
            || newest_entry != Some(*decoded.membership_hash().as_bytes())
        {
            return Ok(AppendOutcome::Conflict { head_seq });
        }
        state.commits.push(commit);
        Ok(AppendOutcome::Appended)
    }
}
