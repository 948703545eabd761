//! In-memory backends for tests: [`MemoryMeta`] and [`MemoryBlobs`].
//!
//! Same semantics as the on-disk backends (the conformance suite runs against both), minus
//! durability: everything is lost when the value is dropped. Each store is one mutex around plain
//! maps, so every method — compare-and-swap included — is atomic with respect to every other.
//! A poisoned mutex (a panic while holding it) is reported as [`Error::Internal`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use coffre_crypto::keys::{BlobId, SpaceId};

use crate::error::{Error, Result};
use crate::store::record::SpaceSummary;
use crate::store::{
    AccountRecord, BlobMeta, BlobReader, BlobStore, BlobWriter, ChallengeRecord, InboxRecord,
    MemberRecord, MetaStore, SpaceRecord, TokenRecord,
};

fn lock<T>(mutex: &Mutex<T>) -> Result<MutexGuard<'_, T>> {
    mutex
        .lock()
        .map_err(|_| Error::Internal("memory store lock poisoned".into()))
}

#[derive(Debug, Default)]
struct Space {
    summary: SpaceSummary,
    membership: Vec<Vec<u8>>,
    commits: Vec<Vec<u8>>,
}

#[derive(Debug, Default)]
struct Inbox {
    next_id: u64,
    items: BTreeMap<u64, InboxRecord>,
}

#[derive(Debug, Default)]
struct Meta {
    accounts: BTreeMap<String, AccountRecord>,
    challenges: BTreeMap<[u8; 32], ChallengeRecord>,
    tokens: BTreeMap<[u8; 32], TokenRecord>,
    spaces: BTreeMap<SpaceId, Space>,
    spaces_of: BTreeMap<String, BTreeSet<SpaceId>>,
    blobs: BTreeMap<(SpaceId, BlobId), BlobMeta>,
    inboxes: BTreeMap<String, Inbox>,
}

impl Meta {
    fn set_members(&mut self, space: &SpaceId, old: &[MemberRecord], new: &[MemberRecord]) {
        for member in old {
            if let Some(set) = self.spaces_of.get_mut(&member.handle) {
                set.remove(space);
            }
        }
        for member in new {
            self.spaces_of
                .entry(member.handle.clone())
                .or_default()
                .insert(*space);
        }
    }

    fn account_mut(&mut self, handle: &str) -> Result<&mut AccountRecord> {
        self.accounts.get_mut(handle).ok_or(Error::NotFound)
    }
}

/// Accounts, sessions, spaces, blob index and inboxes in memory.
#[derive(Debug, Default)]
pub struct MemoryMeta {
    inner: Mutex<Meta>,
}

impl MemoryMeta {
    /// An empty store.
    pub fn new() -> Self {
        MemoryMeta::default()
    }
}

fn page<T: Clone>(items: &[T], skip: u64, limit: usize) -> Vec<T> {
    let skip = usize::try_from(skip).unwrap_or(usize::MAX);
    items.iter().skip(skip).take(limit).cloned().collect()
}

impl MetaStore for MemoryMeta {
    fn create_account(&self, account: &AccountRecord) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        if meta.accounts.contains_key(&account.handle) {
            return Err(Error::AlreadyExists);
        }
        meta.accounts
            .insert(account.handle.clone(), account.clone());
        Ok(())
    }

    fn account(&self, handle: &str) -> Result<Option<AccountRecord>> {
        Ok(lock(&self.inner)?.accounts.get(handle).cloned())
    }

    fn append_device_entry(&self, handle: &str, expected_len: u64, entry: &[u8]) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        let account = meta.account_mut(handle)?;
        let len = account.device_chain.len() as u64;
        if len != expected_len {
            return Err(Error::Conflict {
                current_seq: Some(len),
            });
        }
        account.device_chain.push(entry.to_vec());
        Ok(())
    }

    fn reserve_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        let account = meta.account_mut(handle)?;
        match account.used_bytes.checked_add(bytes) {
            Some(used) if used <= account.quota_bytes => {
                account.used_bytes = used;
                Ok(())
            }
            _ => Err(Error::QuotaExceeded),
        }
    }

    fn release_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        let account = meta.account_mut(handle)?;
        account.used_bytes = account.used_bytes.saturating_sub(bytes);
        Ok(())
    }

    fn put_challenge(&self, challenge: &[u8; 32], record: &ChallengeRecord) -> Result<()> {
        lock(&self.inner)?
            .challenges
            .insert(*challenge, record.clone());
        Ok(())
    }

    fn take_challenge(&self, challenge: &[u8; 32]) -> Result<Option<ChallengeRecord>> {
        Ok(lock(&self.inner)?.challenges.remove(challenge))
    }

    fn put_token(&self, token_hash: &[u8; 32], record: &TokenRecord) -> Result<()> {
        lock(&self.inner)?
            .tokens
            .insert(*token_hash, record.clone());
        Ok(())
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        Ok(lock(&self.inner)?.tokens.get(token_hash).cloned())
    }

    fn purge_expired(&self, now_ms: u64) -> Result<u64> {
        let mut meta = lock(&self.inner)?;
        let before = meta.challenges.len() + meta.tokens.len();
        meta.challenges.retain(|_, c| c.expires_ms > now_ms);
        meta.tokens.retain(|_, t| t.expires_ms > now_ms);
        Ok((before - meta.challenges.len() - meta.tokens.len()) as u64)
    }

    fn create_space(
        &self,
        space: &SpaceId,
        genesis: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        if meta.spaces.contains_key(space) {
            return Err(Error::AlreadyExists);
        }
        let record = Space {
            summary: SpaceSummary {
                membership_len: 1,
                head_seq: 0,
                members: members.to_vec(),
            },
            membership: vec![genesis.to_vec()],
            commits: Vec::new(),
        };
        meta.spaces.insert(*space, record);
        meta.set_members(space, &[], members);
        Ok(())
    }

    fn space(&self, space: &SpaceId) -> Result<Option<SpaceRecord>> {
        Ok(lock(&self.inner)?.spaces.get(space).map(|s| SpaceRecord {
            space: *space,
            membership_len: s.summary.membership_len,
            head_seq: s.summary.head_seq,
            members: s.summary.members.clone(),
        }))
    }

    fn spaces_of(&self, handle: &str) -> Result<Vec<SpaceId>> {
        let meta = lock(&self.inner)?;
        Ok(meta
            .spaces_of
            .get(handle)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default())
    }

    fn membership_entries(
        &self,
        space: &SpaceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let meta = lock(&self.inner)?;
        Ok(meta
            .spaces
            .get(space)
            .map(|s| page(&s.membership, from_seq, limit))
            .unwrap_or_default())
    }

    fn append_membership(
        &self,
        space: &SpaceId,
        expected_len: u64,
        expected_head_seq: u64,
        entry: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        let record = meta.spaces.get_mut(space).ok_or(Error::NotFound)?;
        let summary = &mut record.summary;
        if summary.membership_len != expected_len {
            return Err(Error::Conflict {
                current_seq: Some(summary.membership_len),
            });
        }
        if summary.head_seq != expected_head_seq {
            return Err(Error::Conflict {
                current_seq: Some(summary.head_seq),
            });
        }
        record.membership.push(entry.to_vec());
        summary.membership_len += 1;
        let old = std::mem::replace(&mut summary.members, members.to_vec());
        meta.set_members(space, &old, members);
        Ok(())
    }

    fn commits(&self, space: &SpaceId, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let meta = lock(&self.inner)?;
        // Commit seq n (n >= 1) is at index n - 1, so "after n" starts at index n.
        Ok(meta
            .spaces
            .get(space)
            .map(|s| page(&s.commits, after_seq, limit))
            .unwrap_or_default())
    }

    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        expected_membership_len: u64,
        commit: &[u8],
    ) -> Result<()> {
        let mut meta = lock(&self.inner)?;
        let record = meta.spaces.get_mut(space).ok_or(Error::NotFound)?;
        let summary = &mut record.summary;
        if Some(seq) != summary.head_seq.checked_add(1)
            || summary.membership_len != expected_membership_len
        {
            return Err(Error::Conflict {
                current_seq: Some(summary.head_seq),
            });
        }
        record.commits.push(commit.to_vec());
        summary.head_seq = seq;
        Ok(())
    }

    fn blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        Ok(lock(&self.inner)?.blobs.get(&(*space, *blob)).cloned())
    }

    fn put_blob_meta(&self, space: &SpaceId, blob: &BlobId, meta: &BlobMeta) -> Result<bool> {
        let mut inner = lock(&self.inner)?;
        if inner.blobs.contains_key(&(*space, *blob)) {
            return Ok(false);
        }
        inner.blobs.insert((*space, *blob), meta.clone());
        Ok(true)
    }

    fn claim_blobs(&self, space: &SpaceId, blobs: &[BlobId], now_ms: u64) -> Result<Vec<bool>> {
        let mut inner = lock(&self.inner)?;
        Ok(blobs
            .iter()
            .map(|blob| match inner.blobs.get_mut(&(*space, *blob)) {
                Some(meta) => {
                    meta.created_ms = meta.created_ms.max(now_ms);
                    true
                }
                None => false,
            })
            .collect())
    }

    fn delete_blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        Ok(lock(&self.inner)?.blobs.remove(&(*space, *blob)))
    }

    fn list_blob_meta(
        &self,
        space: &SpaceId,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobMeta)>> {
        use std::ops::Bound;
        let inner = lock(&self.inner)?;
        let start = match after {
            Some(after) => Bound::Excluded((*space, *after)),
            None => Bound::Included((*space, BlobId::from_bytes([0; 32]))),
        };
        Ok(inner
            .blobs
            .range((start, Bound::Unbounded))
            .take_while(|((s, _), _)| s == space)
            .take(limit)
            .map(|((_, blob), meta)| (*blob, meta.clone()))
            .collect())
    }

    fn for_each_blob_meta(
        &self,
        visit: &mut dyn FnMut(&SpaceId, &BlobId, &BlobMeta) -> Result<()>,
    ) -> Result<()> {
        // Visit a snapshot so the visitor may call back into the store.
        let entries: Vec<_> = lock(&self.inner)?.blobs.clone().into_iter().collect();
        entries
            .iter()
            .try_for_each(|((space, blob), meta)| visit(space, blob, meta))
    }

    fn for_each_account(&self, visit: &mut dyn FnMut(&AccountRecord) -> Result<()>) -> Result<()> {
        let accounts: Vec<_> = lock(&self.inner)?.accounts.values().cloned().collect();
        accounts.iter().try_for_each(visit)
    }

    fn for_each_space(&self, visit: &mut dyn FnMut(&SpaceRecord) -> Result<()>) -> Result<()> {
        let spaces: Vec<_> = lock(&self.inner)?.spaces.keys().copied().collect();
        for space in spaces {
            if let Some(record) = self.space(&space)? {
                visit(&record)?;
            }
        }
        Ok(())
    }

    fn push_invitation(
        &self,
        to: &str,
        from: &str,
        invitation: &[u8],
        received_ms: u64,
        max_pending: usize,
    ) -> Result<u64> {
        let mut meta = lock(&self.inner)?;
        let inbox = meta.inboxes.entry(to.to_owned()).or_default();
        if inbox.items.len() >= max_pending {
            return Err(Error::InboxFull);
        }
        inbox.next_id += 1;
        let id = inbox.next_id;
        let record = InboxRecord {
            id,
            from: from.to_owned(),
            invitation: invitation.to_vec(),
            received_ms,
        };
        inbox.items.insert(id, record);
        Ok(id)
    }

    fn invitations(&self, handle: &str) -> Result<Vec<InboxRecord>> {
        let meta = lock(&self.inner)?;
        Ok(meta
            .inboxes
            .get(handle)
            .map(|inbox| inbox.items.values().cloned().collect())
            .unwrap_or_default())
    }

    fn delete_invitation(&self, handle: &str, id: u64) -> Result<bool> {
        let mut meta = lock(&self.inner)?;
        Ok(meta
            .inboxes
            .get_mut(handle)
            .is_some_and(|inbox| inbox.items.remove(&id).is_some()))
    }
}

type BlobMap = BTreeMap<(SpaceId, BlobId), Arc<Vec<u8>>>;

/// Blob bodies in memory.
#[derive(Debug, Default)]
pub struct MemoryBlobs {
    bodies: Arc<Mutex<BlobMap>>,
}

impl MemoryBlobs {
    /// An empty store.
    pub fn new() -> Self {
        MemoryBlobs::default()
    }
}

struct MemoryWriter {
    key: (SpaceId, BlobId),
    buffer: Vec<u8>,
    bodies: Arc<Mutex<BlobMap>>,
}

impl BlobWriter for MemoryWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        self.buffer.extend_from_slice(bytes);
        Ok(())
    }

    fn commit(self: Box<Self>) -> Result<()> {
        let this = *self;
        lock(&this.bodies)?
            .entry(this.key)
            .or_insert_with(|| Arc::new(this.buffer));
        Ok(())
    }
}

/// Reads a shared body without copying it.
struct SharedBody {
    body: Arc<Vec<u8>>,
    position: usize,
}

impl std::io::Read for SharedBody {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let rest = self.body.get(self.position..).unwrap_or_default();
        let n = rest.len().min(out.len());
        out[..n].copy_from_slice(&rest[..n]);
        self.position += n;
        Ok(n)
    }
}

impl BlobStore for MemoryBlobs {
    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>> {
        Ok(Box::new(MemoryWriter {
            key: (*space, *blob),
            buffer: Vec::new(),
            bodies: Arc::clone(&self.bodies),
        }))
    }

    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>> {
        Ok(lock(&self.bodies)?
            .get(&(*space, *blob))
            .map(|body| BlobReader {
                size: body.len() as u64,
                body: Box::new(SharedBody {
                    body: Arc::clone(body),
                    position: 0,
                }),
            }))
    }

    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool> {
        Ok(lock(&self.bodies)?.contains_key(&(*space, *blob)))
    }

    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()> {
        lock(&self.bodies)?.remove(&(*space, *blob));
        Ok(())
    }

    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()> {
        let sizes: Vec<_> = lock(&self.bodies)?
            .iter()
            .map(|(key, body)| (*key, body.len() as u64))
            .collect();
        sizes
            .iter()
            .try_for_each(|((space, blob), size)| visit(space, blob, *size))
    }

    fn disk_bytes(&self) -> Result<u64> {
        Ok(lock(&self.bodies)?
            .values()
            .map(|body| body.len() as u64)
            .sum())
    }
}
