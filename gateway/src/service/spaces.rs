//! Spaces: creation from a signed genesis entry, membership-log appends and commit appends, each
//! verified with `coffre-crypto` before it is stored.
//!
//! The gateway verifies the chains to protect **availability** (only members with the right role
//! can change a space); clients verify everything again and never rely on it.
//!
//! Invariants:
//! - Every stored membership entry extends a log that verifies from genesis (FORMAT.md 9.2), was
//!   signed by the caller's identity through a device active in the caller's device chain, and has
//!   `commit_seq` equal to the head seq at the time (compare-and-swap on log length *and* head).
//! - Every stored commit verifies against its parent and the newest membership entry (FORMAT.md
//!   §10 rules 1–3), was authored by the caller through an active device, and was appended with
//!   compare-and-swap on the head seq *and* the log length.
//! - The verified-log cache is only an accelerator: an entry is used only if its length equals the
//!   stored length; a shorter cached log is extended with the stored entries (each re-verified); a
//!   new log enters the cache only after the store accepted it. Concurrent appends are decided by
//!   the store's compare-and-swap, never by the cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coffre_crypto::commit::{Commit, verify_next};
use coffre_crypto::keys::{SignPublicKey, SpaceId};
use coffre_crypto::membership::{MembershipEntry, MembershipLog};
use coffre_protocol::MAX_ITEMS_PER_PAGE;

use super::Caller;
use crate::app::{App, blocking};
use crate::error::{Error, Result};
use crate::store::{MemberRecord, SpaceRecord};

/// Most verified logs kept in the cache.
const CACHE_CAPACITY: usize = 1_000;

/// Verified membership logs by space.
#[derive(Debug, Default)]
pub struct LogCache {
    logs: Mutex<HashMap<SpaceId, Arc<MembershipLog>>>,
}

impl LogCache {
    fn get(&self, space: &SpaceId) -> Option<Arc<MembershipLog>> {
        let logs = self
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        logs.get(space).cloned()
    }

    fn put(&self, log: Arc<MembershipLog>) {
        let mut logs = self
            .logs
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if logs.len() >= CACHE_CAPACITY {
            logs.clear();
        }
        let space = *log.space_id();
        match logs.get(&space) {
            // Never replace a longer verified log by a shorter one (a slower concurrent reader).
            Some(existing) if existing.entries().len() > log.entries().len() => {}
            _ => {
                logs.insert(space, log);
            }
        }
    }
}

fn invalid(what: &str, error: coffre_crypto::Error) -> Error {
    Error::InvalidSignedData(format!("{what}: {error}"))
}

/// The member index of a verified log's current state: handles from the members' identities.
pub fn member_index(log: &MembershipLog) -> Vec<MemberRecord> {
    log.state()
        .members()
        .map(|member| MemberRecord {
            handle: member.identity().handle().as_str().to_owned(),
            role: member.role().to_byte(),
        })
        .collect()
}

/// Checks that an entry or commit was signed by the caller's identity through one of the caller's
/// active devices.
fn check_signer(caller: &Caller, identity: &SignPublicKey, device: &SignPublicKey) -> Result<()> {
    if identity != caller.account.identity.sign_key() {
        return Err(Error::InvalidSignedData(
            "it must be signed by the caller's identity".into(),
        ));
    }
    if !caller.account.chain.is_active(device) {
        return Err(Error::InvalidSignedData(
            "the signing device is not active in the caller's device chain".into(),
        ));
    }
    Ok(())
}

/// The verified log of `space` with exactly `len` entries (from the cache when possible).
pub async fn verified_log(app: &App, space: SpaceId, len: u64) -> Result<Arc<MembershipLog>> {
    let cached = app.logs.get(&space);
    if let Some(log) = &cached
        && log.entries().len() as u64 == len
    {
        return Ok(Arc::clone(log));
    }
    let base = cached.filter(|log| (log.entries().len() as u64) < len);
    let from = base.as_ref().map_or(0, |log| log.entries().len() as u64);
    let meta = Arc::clone(&app.meta);
    let log = blocking(move || {
        let mut encoded = Vec::new();
        let mut next = from;
        while next < len {
            let page = meta.membership_entries(&space, next, MAX_ITEMS_PER_PAGE)?;
            if page.is_empty() {
                break;
            }
            next += page.len() as u64;
            encoded.extend(page);
        }
        encoded.truncate(usize::try_from(len - from).unwrap_or(usize::MAX));
        let corrupt = |error: coffre_crypto::Error| {
            Error::Corrupt(format!(
                "membership log of {space} does not verify: {error}"
            ))
        };
        let entries = encoded
            .iter()
            .map(|bytes| MembershipEntry::decode(bytes))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let log = match base {
            Some(base) => {
                let mut log = (*base).clone();
                log.extend(&entries).map_err(corrupt)?;
                log
            }
            None => MembershipLog::verify(&entries).map_err(corrupt)?,
        };
        if log.entries().len() as u64 != len || *log.space_id() != space {
            return Err(Error::Corrupt(format!(
                "membership log of {space} is incomplete"
            )));
        }
        Ok(log)
    })
    .await?;
    let log = Arc::new(log);
    app.logs.put(Arc::clone(&log));
    Ok(log)
}

/// Creates a space from its genesis entry, owned by the caller. Returns the space id.
pub async fn create(app: &App, caller: &Caller, genesis: Vec<u8>) -> Result<SpaceId> {
    let (log, genesis) = blocking(move || {
        let entry = MembershipEntry::decode(&genesis).map_err(|e| invalid("genesis entry", e))?;
        let log = MembershipLog::verify(std::slice::from_ref(&entry))
            .map_err(|e| invalid("genesis entry", e))?;
        Ok((log, genesis))
    })
    .await?;
    let entry = &log.entries()[0]; // Invariant: a verified log holds its genesis entry.
    check_signer(
        caller,
        entry.signer_key(),
        entry.signer_device().device_key(),
    )?;
    let owner_is_caller = log
        .state()
        .members()
        .all(|member| member.identity().encoded() == caller.account.identity.encoded());
    if !owner_is_caller {
        return Err(Error::InvalidSignedData(
            "the genesis entry must name the caller's identity as owner".into(),
        ));
    }
    let space = *log.space_id();
    let members = member_index(&log);
    app.meta(move |meta| meta.create_space(&space, &genesis, &members))
        .await
        .map_err(|error| match error {
            Error::AlreadyExists => Error::Conflict { current_seq: None },
            other => other,
        })?;
    app.logs.put(Arc::new(log));
    Ok(space)
}

/// Appends a membership entry signed by the caller. Returns its seq.
pub async fn append_member(
    app: &App,
    caller: &Caller,
    record: &SpaceRecord,
    bytes: Vec<u8>,
) -> Result<u64> {
    let (entry, bytes) = blocking(move || {
        let entry = MembershipEntry::decode(&bytes).map_err(|e| invalid("membership entry", e))?;
        Ok((entry, bytes))
    })
    .await?;
    check_signer(
        caller,
        entry.signer_key(),
        entry.signer_device().device_key(),
    )?;
    if entry.seq() != record.membership_len {
        return Err(Error::Conflict {
            current_seq: Some(record.membership_len),
        });
    }
    if entry.commit_seq() != record.head_seq {
        return Err(Error::Conflict {
            current_seq: Some(record.head_seq),
        });
    }
    let log = verified_log(app, record.space, record.membership_len).await?;
    let log = blocking(move || {
        let mut log = (*log).clone();
        log.append(&entry)
            .map_err(|e| invalid("membership entry", e))?;
        Ok(log)
    })
    .await?;
    let members = member_index(&log);
    let (space, len, head) = (record.space, record.membership_len, record.head_seq);
    app.meta(move |meta| meta.append_membership(&space, len, head, &bytes, &members))
        .await?;
    app.logs.put(Arc::new(log));
    Ok(len)
}

/// Appends commit `seq` authored by the caller. Returns its seq.
pub async fn append_commit(
    app: &App,
    caller: &Caller,
    record: &SpaceRecord,
    seq: u64,
    bytes: Vec<u8>,
) -> Result<u64> {
    let (commit, bytes) = blocking(move || {
        let commit = Commit::decode(&bytes).map_err(|e| invalid("commit", e))?;
        Ok((commit, bytes))
    })
    .await?;
    if commit.seq() != seq {
        return Err(Error::BadRequest(
            "the commit's seq is not the one in the path".into(),
        ));
    }
    if *commit.space_id() != record.space {
        return Err(Error::InvalidSignedData(
            "the commit belongs to another space".into(),
        ));
    }
    let device = commit.author_device();
    check_signer(caller, device.identity_key(), device.device_key())?;
    if Some(seq) != record.head_seq.checked_add(1) {
        return Err(Error::Conflict {
            current_seq: Some(record.head_seq),
        });
    }
    let space = record.space;
    let previous = if seq > 1 {
        let stored = app
            .meta(move |meta| meta.commits(&space, seq - 2, 1))
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Corrupt(format!("commit {} of {space} is missing", seq - 1)))?;
        let previous = Commit::decode(&stored)
            .map_err(|e| Error::Corrupt(format!("commit {} of {space}: {e}", seq - 1)))?;
        Some(previous)
    } else {
        None
    };
    let log = verified_log(app, space, record.membership_len).await?;
    let newest = log.state().head();
    if *commit.membership_hash() != newest && log.find(commit.membership_hash()).is_some() {
        // It names an older membership entry: the log moved on since the author read it.
        return Err(Error::Conflict {
            current_seq: Some(record.head_seq),
        });
    }
    verify_next(previous.as_ref(), &commit, &log).map_err(|e| invalid("commit", e))?;
    let expected_len = record.membership_len;
    app.meta(move |meta| meta.append_commit(&space, seq, expected_len, &bytes))
        .await?;
    Ok(seq)
}
