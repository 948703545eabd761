//! [`SledMeta`]: the metadata store on sled 0.34 (the default backend).
//!
//! **Trees and keys.** One sled tree per table; integers in keys are big-endian so that sled's
//! byte order is numeric order. A handle inside a composite key is length-prefixed
//! (`u32` big-endian length, then its UTF-8 bytes), so a prefix scan for one handle never sees
//! another handle that merely starts with the same bytes.
//!
//! | tree             | key                               | value (see [`super::record`])      |
//! |------------------|-----------------------------------|------------------------------------|
//! | `accounts`       | handle                            | account                            |
//! | `challenges`     | challenge (32)                    | challenge                          |
//! | `tokens`         | token hash (32)                   | token                              |
//! | `spaces`         | space id (32)                     | space summary (lengths, members)   |
//! | `membership`     | space id ‖ seq (`u64`)            | raw membership entry               |
//! | `commits`        | space id ‖ seq (`u64`)            | raw commit                         |
//! | `spaces_of`      | len ‖ handle ‖ space id           | role (1 byte)                      |
//! | `blob_index`     | space id ‖ blob id                | blob index entry                   |
//! | `inbox`          | len ‖ handle ‖ id (`u64`)         | inbox item                         |
//! | `inbox_counters` | handle                            | next id, pending count             |
//!
//! **Atomicity.** Every read-modify-write is one sled transaction over all the trees it touches
//! (sled transactions are serialisable with respect to each other), e.g. a membership append
//! writes the log entry, the space summary and the `spaces_of` index together or not at all.
//! Trees written inside transactions are never written outside one. Single-key insert-once
//! operations (blob index) use sled's compare-and-swap.
//!
//! **Durability.** Every mutating method ends with `sled::Db::flush` (which fsyncs) before it
//! returns, so its effect survives a crash once it has returned; a crash before that leaves the
//! store as it was before the call (sled recovers to a prefix of its log, and transactions are
//! all-or-nothing in it).

use std::ops::Bound;

use coffre_crypto::keys::{BlobId, SpaceId};
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::{IVec, Transactional, Tree};

use super::LogSync;
use crate::error::{Error, Result};
use crate::store::record::{
    self, SpaceSummary, blob_key, handle_key, handle_prefix, id32, seq_key,
};
use crate::store::{
    AccountRecord, BlobMeta, ChallengeRecord, InboxRecord, MemberRecord, MetaStore, SpaceRecord,
    TokenRecord,
};

/// The metadata store on sled.
#[derive(Debug, Clone)]
pub struct SledMeta {
    db: sled::Db,
    accounts: Tree,
    challenges: Tree,
    tokens: Tree,
    spaces: Tree,
    membership: Tree,
    commits: Tree,
    spaces_of: Tree,
    blob_index: Tree,
    inbox: Tree,
    inbox_counters: Tree,
    log_sync: Option<LogSync>,
}

type TxResult<T> = Result<T, ConflictableTransactionError<Error>>;

/// Turns a store error into a transaction abort.
fn abort<T>(error: Error) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(error))
}

/// Lifts a plain result (a decode) into a transaction.
fn tx<T>(result: Result<T>) -> TxResult<T> {
    result.map_err(ConflictableTransactionError::Abort)
}

fn from_tx<T>(result: Result<T, TransactionError<Error>>) -> Result<T> {
    result.map_err(|error| match error {
        TransactionError::Abort(error) => error,
        TransactionError::Storage(error) => error.into(),
    })
}

fn get_space(tree: &TransactionalTree, space: &SpaceId) -> TxResult<SpaceSummary> {
    match tree.get(space.as_bytes())? {
        Some(bytes) => tx(record::decode_space(&bytes)),
        None => abort(Error::NotFound),
    }
}

fn update_account(
    tree: &TransactionalTree,
    handle: &str,
    change: impl Fn(&mut AccountRecord) -> Result<()>,
) -> TxResult<()> {
    let Some(bytes) = tree.get(handle.as_bytes())? else {
        return abort(Error::NotFound);
    };
    let mut account = tx(record::decode_account(&bytes))?;
    tx(change(&mut account))?;
    tree.insert(handle.as_bytes(), record::encode_account(&account))?;
    Ok(())
}

/// Rewrites the `spaces_of` index of `space` from `old` members to `new` ones.
fn reindex_members(
    tree: &TransactionalTree,
    space: &SpaceId,
    old: &[MemberRecord],
    new: &[MemberRecord],
) -> TxResult<()> {
    for member in old {
        tree.remove(tx(handle_key(&member.handle, space.as_bytes()))?)?;
    }
    for member in new {
        tree.insert(
            tx(handle_key(&member.handle, space.as_bytes()))?,
            &[member.role],
        )?;
    }
    Ok(())
}

impl SledMeta {
    /// Opens (creating if needed) the metadata trees in `db`.
    pub fn new(db: &sled::Db) -> Result<Self> {
        Ok(SledMeta {
            db: db.clone(),
            accounts: db.open_tree("accounts")?,
            challenges: db.open_tree("challenges")?,
            tokens: db.open_tree("tokens")?,
            spaces: db.open_tree("spaces")?,
            membership: db.open_tree("membership")?,
            commits: db.open_tree("commits")?,
            spaces_of: db.open_tree("spaces_of")?,
            blob_index: db.open_tree("blob_index")?,
            inbox: db.open_tree("inbox")?,
            inbox_counters: db.open_tree("inbox_counters")?,
            log_sync: None,
        })
    }

    /// Makes every flush reach stable storage (see [`LogSync`]). [`super::Stores::open`] always
    /// sets it; without it a flush is only as durable as sled makes it.
    pub fn with_log_sync(mut self, log_sync: LogSync) -> Self {
        self.log_sync = Some(log_sync);
        self
    }

    fn flush(&self) -> Result<()> {
        super::flush_db(&self.db, self.log_sync.as_ref())
    }

    /// Values of `tree` with keys in `[start, end]`, at most `limit`.
    fn values_between(tree: &Tree, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Vec<u8>>> {
        tree.range(start..=end)
            .take(limit)
            .map(|item| Ok(item?.1.to_vec()))
            .collect()
    }

    fn purge_tree(tree: &Tree, now_ms: u64, expires: fn(&[u8]) -> Result<u64>) -> Result<u64> {
        let mut purged = 0;
        for item in tree.iter() {
            let (key, value) = item?;
            if expires(&value)? <= now_ms
                && tree
                    .compare_and_swap(&key, Some(&value), None as Option<IVec>)?
                    .is_ok()
            {
                purged += 1;
            }
        }
        Ok(purged)
    }
}

impl MetaStore for SledMeta {
    fn create_account(&self, account: &AccountRecord) -> Result<()> {
        let value = record::encode_account(account);
        from_tx(self.accounts.transaction(|accounts| {
            if accounts.get(account.handle.as_bytes())?.is_some() {
                return abort(Error::AlreadyExists);
            }
            accounts.insert(account.handle.as_bytes(), value.as_slice())?;
            Ok(())
        }))?;
        self.flush()
    }

    fn account(&self, handle: &str) -> Result<Option<AccountRecord>> {
        self.accounts
            .get(handle.as_bytes())?
            .map(|bytes| record::decode_account(&bytes))
            .transpose()
    }

    fn append_device_entry(&self, handle: &str, expected_len: u64, entry: &[u8]) -> Result<()> {
        from_tx(self.accounts.transaction(|accounts| {
            update_account(accounts, handle, |account| {
                let len = account.device_chain.len() as u64;
                if len != expected_len {
                    return Err(Error::Conflict {
                        current_seq: Some(len),
                    });
                }
                account.device_chain.push(entry.to_vec());
                Ok(())
            })
        }))?;
        self.flush()
    }

    fn reserve_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        from_tx(self.accounts.transaction(|accounts| {
            update_account(accounts, handle, |account| {
                match account.used_bytes.checked_add(bytes) {
                    Some(used) if used <= account.quota_bytes => {
                        account.used_bytes = used;
                        Ok(())
                    }
                    _ => Err(Error::QuotaExceeded),
                }
            })
        }))?;
        // Not flushed on its own: see the trait. sled's log is ordered, so the reservation is on
        // disk no later than the index entry that consumes it.
        Ok(())
    }

    fn release_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        from_tx(self.accounts.transaction(|accounts| {
            update_account(accounts, handle, |account| {
                account.used_bytes = account.used_bytes.saturating_sub(bytes);
                Ok(())
            })
        }))?;
        // Not flushed on its own: see the trait.
        Ok(())
    }

    fn put_challenge(&self, challenge: &[u8; 32], record: &ChallengeRecord) -> Result<()> {
        let value = record::encode_session(&record.handle, &record.device_key, record.expires_ms);
        self.challenges.insert(challenge, value)?;
        self.flush()
    }

    fn take_challenge(&self, challenge: &[u8; 32]) -> Result<Option<ChallengeRecord>> {
        let Some(bytes) = self.challenges.remove(challenge)? else {
            return Ok(None);
        };
        self.flush()?;
        record::decode_challenge(&bytes).map(Some)
    }

    fn put_token(&self, token_hash: &[u8; 32], record: &TokenRecord) -> Result<()> {
        let value = record::encode_session(&record.handle, &record.device_key, record.expires_ms);
        self.tokens.insert(token_hash, value)?;
        self.flush()
    }

    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        self.tokens
            .get(token_hash)?
            .map(|bytes| record::decode_token(&bytes))
            .transpose()
    }

    fn purge_expired(&self, now_ms: u64) -> Result<u64> {
        let challenges = Self::purge_tree(&self.challenges, now_ms, |bytes| {
            record::decode_challenge(bytes).map(|c| c.expires_ms)
        })?;
        let tokens = Self::purge_tree(&self.tokens, now_ms, |bytes| {
            record::decode_token(bytes).map(|t| t.expires_ms)
        })?;
        self.flush()?;
        Ok(challenges + tokens)
    }

    fn create_space(
        &self,
        space: &SpaceId,
        genesis: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        let summary = record::encode_space(&SpaceSummary {
            membership_len: 1,
            head_seq: 0,
            members: members.to_vec(),
        });
        from_tx(
            (&self.spaces, &self.membership, &self.spaces_of).transaction(
                |(spaces, membership, spaces_of)| {
                    if spaces.get(space.as_bytes())?.is_some() {
                        return abort(Error::AlreadyExists);
                    }
                    spaces.insert(space.as_bytes(), summary.as_slice())?;
                    membership.insert(&seq_key(space, 0)[..], genesis)?;
                    reindex_members(spaces_of, space, &[], members)
                },
            ),
        )?;
        self.flush()
    }

    fn space(&self, space: &SpaceId) -> Result<Option<SpaceRecord>> {
        let Some(bytes) = self.spaces.get(space.as_bytes())? else {
            return Ok(None);
        };
        let summary = record::decode_space(&bytes)?;
        Ok(Some(SpaceRecord {
            space: *space,
            membership_len: summary.membership_len,
            head_seq: summary.head_seq,
            members: summary.members,
        }))
    }

    fn spaces_of(&self, handle: &str) -> Result<Vec<SpaceId>> {
        let prefix = handle_prefix(handle)?;
        self.spaces_of
            .scan_prefix(&prefix)
            .map(|item| {
                let (key, _) = item?;
                let id = id32(&key[prefix.len()..], "spaces_of")?;
                Ok(SpaceId::from_bytes(id))
            })
            .collect()
    }

    fn membership_entries(
        &self,
        space: &SpaceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        let (start, end) = (seq_key(space, from_seq), seq_key(space, u64::MAX));
        Self::values_between(&self.membership, &start, &end, limit)
    }

    fn append_membership(
        &self,
        space: &SpaceId,
        expected_len: u64,
        expected_head_seq: u64,
        entry: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        from_tx(
            (&self.spaces, &self.membership, &self.spaces_of).transaction(
                |(spaces, membership, spaces_of)| {
                    let mut summary = get_space(spaces, space)?;
                    if summary.membership_len != expected_len {
                        return abort(Error::Conflict {
                            current_seq: Some(summary.membership_len),
                        });
                    }
                    if summary.head_seq != expected_head_seq {
                        return abort(Error::Conflict {
                            current_seq: Some(summary.head_seq),
                        });
                    }
                    membership.insert(&seq_key(space, summary.membership_len)[..], entry)?;
                    reindex_members(spaces_of, space, &summary.members, members)?;
                    summary.membership_len += 1;
                    summary.members = members.to_vec();
                    spaces.insert(space.as_bytes(), record::encode_space(&summary))?;
                    Ok(())
                },
            ),
        )?;
        self.flush()
    }

    fn commits(&self, space: &SpaceId, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        let Some(first) = after_seq.checked_add(1) else {
            return Ok(Vec::new());
        };
        let (start, end) = (seq_key(space, first), seq_key(space, u64::MAX));
        Self::values_between(&self.commits, &start, &end, limit)
    }

    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        expected_membership_len: u64,
        commit: &[u8],
    ) -> Result<()> {
        from_tx(
            (&self.spaces, &self.commits).transaction(|(spaces, commits)| {
                let mut summary = get_space(spaces, space)?;
                if Some(seq) != summary.head_seq.checked_add(1)
                    || summary.membership_len != expected_membership_len
                {
                    return abort(Error::Conflict {
                        current_seq: Some(summary.head_seq),
                    });
                }
                commits.insert(&seq_key(space, seq)[..], commit)?;
                summary.head_seq = seq;
                spaces.insert(space.as_bytes(), record::encode_space(&summary))?;
                Ok(())
            }),
        )?;
        self.flush()
    }

    fn blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        self.blob_index
            .get(blob_key(space, blob))?
            .map(|bytes| record::decode_blob_meta(&bytes))
            .transpose()
    }

    fn put_blob_meta(&self, space: &SpaceId, blob: &BlobId, meta: &BlobMeta) -> Result<bool> {
        let swapped = self.blob_index.compare_and_swap(
            blob_key(space, blob),
            None as Option<&[u8]>,
            Some(record::encode_blob_meta(meta)),
        )?;
        if swapped.is_err() {
            return Ok(false);
        }
        self.flush()?;
        Ok(true)
    }

    fn put_blob_metas(&self, space: &SpaceId, entries: &[(BlobId, BlobMeta)]) -> Result<Vec<bool>> {
        let mut inserted = Vec::with_capacity(entries.len());
        for (blob, meta) in entries {
            let swapped = self.blob_index.compare_and_swap(
                blob_key(space, blob),
                None as Option<&[u8]>,
                Some(record::encode_blob_meta(meta)),
            )?;
            inserted.push(swapped.is_ok());
        }
        // One flush makes every insert above durable (sled's log is ordered).
        if inserted.contains(&true) {
            self.flush()?;
        }
        Ok(inserted)
    }

    fn claim_blobs(&self, space: &SpaceId, blobs: &[BlobId], now_ms: u64) -> Result<Vec<bool>> {
        let mut present = Vec::with_capacity(blobs.len());
        let mut changed = false;
        for blob in blobs {
            let key = blob_key(space, blob);
            let Some(bytes) = self.blob_index.get(key)? else {
                present.push(false);
                continue;
            };
            let mut meta = record::decode_blob_meta(&bytes)?;
            if meta.created_ms < now_ms {
                meta.created_ms = now_ms;
                // Only this blob's own record changes; if a prune removed it meanwhile the swap
                // fails and the blob counts as absent (the client then uploads it again).
                let swapped = self.blob_index.compare_and_swap(
                    key,
                    Some(bytes),
                    Some(record::encode_blob_meta(&meta)),
                )?;
                if swapped.is_err() {
                    present.push(self.blob_index.contains_key(key)?);
                    continue;
                }
                changed = true;
            }
            present.push(true);
        }
        if changed {
            self.flush()?;
        }
        Ok(present)
    }

    fn delete_blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        let Some(bytes) = self.blob_index.remove(blob_key(space, blob))? else {
            return Ok(None);
        };
        self.flush()?;
        record::decode_blob_meta(&bytes).map(Some)
    }

    fn list_blob_meta(
        &self,
        space: &SpaceId,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobMeta)>> {
        let start = match after {
            Some(after) => Bound::Excluded(blob_key(space, after)),
            None => Bound::Included(blob_key(space, &BlobId::from_bytes([0; 32]))),
        };
        let end = Bound::Included(blob_key(space, &BlobId::from_bytes([0xff; 32])));
        self.blob_index
            .range::<[u8; 64], _>((start, end))
            .take(limit)
            .map(|item| {
                let (key, value) = item?;
                let blob = BlobId::from_bytes(id32(&key[32..], "blob_index")?);
                Ok((blob, record::decode_blob_meta(&value)?))
            })
            .collect()
    }

    fn for_each_blob_meta(
        &self,
        visit: &mut dyn FnMut(&SpaceId, &BlobId, &BlobMeta) -> Result<()>,
    ) -> Result<()> {
        for item in self.blob_index.iter() {
            let (key, value) = item?;
            if key.len() != 64 {
                return Err(Error::Corrupt("blob_index key has the wrong length".into()));
            }
            let space = SpaceId::from_bytes(id32(&key[..32], "blob_index")?);
            let blob = BlobId::from_bytes(id32(&key[32..], "blob_index")?);
            visit(&space, &blob, &record::decode_blob_meta(&value)?)?;
        }
        Ok(())
    }

    fn for_each_account(&self, visit: &mut dyn FnMut(&AccountRecord) -> Result<()>) -> Result<()> {
        for item in self.accounts.iter() {
            visit(&record::decode_account(&item?.1)?)?;
        }
        Ok(())
    }

    fn for_each_space(&self, visit: &mut dyn FnMut(&SpaceRecord) -> Result<()>) -> Result<()> {
        for item in self.spaces.iter() {
            let (key, value) = item?;
            let summary = record::decode_space(&value)?;
            visit(&SpaceRecord {
                space: SpaceId::from_bytes(id32(&key, "spaces")?),
                membership_len: summary.membership_len,
                head_seq: summary.head_seq,
                members: summary.members,
            })?;
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
        let prefix = handle_prefix(to)?;
        let id = from_tx(
            (&self.inbox, &self.inbox_counters).transaction(|(inbox, counters)| {
                let (next_id, pending) = match counters.get(to.as_bytes())? {
                    Some(bytes) => tx(record::decode_inbox_counters(&bytes))?,
                    None => (1, 0),
                };
                if pending >= max_pending as u64 {
                    return abort(Error::InboxFull);
                }
                let item = InboxRecord {
                    id: next_id,
                    from: from.to_owned(),
                    invitation: invitation.to_vec(),
                    received_ms,
                };
                let mut key = prefix.clone();
                key.extend_from_slice(&next_id.to_be_bytes());
                inbox.insert(key, record::encode_inbox(&item))?;
                counters.insert(
                    to.as_bytes(),
                    record::encode_inbox_counters(next_id + 1, pending + 1),
                )?;
                Ok(next_id)
            }),
        )?;
        self.flush()?;
        Ok(id)
    }

    fn invitations(&self, handle: &str) -> Result<Vec<InboxRecord>> {
        self.inbox
            .scan_prefix(handle_prefix(handle)?)
            .map(|item| record::decode_inbox(&item?.1))
            .collect()
    }

    fn delete_invitation(&self, handle: &str, id: u64) -> Result<bool> {
        let key = handle_key(handle, &id.to_be_bytes())?;
        let existed = from_tx((&self.inbox, &self.inbox_counters).transaction(
            |(inbox, counters)| {
                if inbox.remove(key.as_slice())?.is_none() {
                    return Ok(false);
                }
                let Some(bytes) = counters.get(handle.as_bytes())? else {
                    return abort(Error::Corrupt("inbox item without counters".into()));
                };
                let (next_id, pending) = tx(record::decode_inbox_counters(&bytes))?;
                let counters_value =
                    record::encode_inbox_counters(next_id, pending.saturating_sub(1));
                counters.insert(handle.as_bytes(), counters_value)?;
                Ok(true)
            },
        ))?;
        if existed {
            self.flush()?;
        }
        Ok(existed)
    }
}
