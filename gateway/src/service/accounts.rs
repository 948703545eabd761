//! Accounts: registration, verified identities and device chains, device-chain appends.
//!
//! Invariant: an account record only ever holds an identity whose self-signature verified and a
//! device chain every entry of which verified and extended the one before ([`DeviceChain`]). The
//! gateway re-verifies what it reads anyway (cheap, cached by chain length) because its disk is
//! untrusted; the cache is keyed by handle and checked against the stored chain's length and last
//! entry, so a stale entry is never used.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use coffre_crypto::device::{DeviceChain, DeviceEntry};
use coffre_crypto::identity::Identity;
use coffre_crypto::keys::SignPublicKey;
use coffre_protocol::types::{
    AppendDeviceRequest, AppendResponse, RegisterRequest, RegisterResponse,
};

use super::Caller;
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::AccountRecord;

/// Most key bundles stored per account.
pub const MAX_KEY_BUNDLES: usize = 8;
/// Largest key bundle accepted, in bytes (a `CFKB` is well under 200 bytes).
pub const MAX_KEY_BUNDLE_BYTES: usize = 4096;
/// Most entries in a device chain (adds plus revokes).
pub const MAX_DEVICE_CHAIN: usize = 1024;
/// Most verified accounts kept in the cache.
const CACHE_CAPACITY: usize = 10_000;

/// An account whose identity and device chain have been verified.
#[derive(Debug)]
pub struct VerifiedAccount {
    /// The stored record.
    pub record: AccountRecord,
    /// The verified identity.
    pub identity: Identity,
    /// The verified device chain.
    pub chain: DeviceChain,
}

/// Cache of verified accounts, keyed by handle.
#[derive(Debug, Default)]
pub struct AccountCache {
    entries: Mutex<HashMap<String, Arc<VerifiedAccount>>>,
}

impl AccountCache {
    fn get(&self, record: &AccountRecord) -> Option<Arc<VerifiedAccount>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let cached = entries.get(&record.handle)?;
        let same = cached.record.identity == record.identity
            && cached.record.device_chain.len() == record.device_chain.len()
            && cached.record.device_chain.last() == record.device_chain.last();
        same.then(|| Arc::clone(cached))
    }

    fn put(&self, account: Arc<VerifiedAccount>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(account.record.handle.clone(), account);
    }
}

fn invalid(what: &str, error: coffre_crypto::Error) -> Error {
    Error::InvalidSignedData(format!("{what}: {error}"))
}

/// Verifies a stored account. A record that does not verify means the store was tampered with or
/// corrupted: an internal fault, not the client's.
fn verify_record(record: AccountRecord) -> Result<VerifiedAccount> {
    let corrupt = |error: coffre_crypto::Error| {
        Error::Corrupt(format!(
            "account {:?} does not verify: {error}",
            record.handle
        ))
    };
    let identity = Identity::decode(&record.identity).map_err(corrupt)?;
    let entries = record
        .device_chain
        .iter()
        .map(|bytes| DeviceEntry::decode(bytes))
        .collect::<Result<Vec<_>, _>>()
        .map_err(corrupt)?;
    let chain = DeviceChain::verify(identity.sign_key(), &entries).map_err(corrupt)?;
    if identity.handle().as_str() != record.handle {
        return Err(Error::Corrupt(format!(
            "account {:?} holds the identity of another handle",
            record.handle
        )));
    }
    Ok(VerifiedAccount {
        record,
        identity,
        chain,
    })
}

/// Loads and verifies an account; `None` if there is no such handle.
pub async fn load(app: &App, handle: &str) -> Result<Option<Arc<VerifiedAccount>>> {
    let key = handle.to_owned();
    let Some(record) = app.meta(move |meta| meta.account(&key)).await? else {
        return Ok(None);
    };
    if let Some(cached) = app.accounts.get(&record) {
        return Ok(Some(cached));
    }
    let account = Arc::new(crate::app::blocking(move || verify_record(record)).await?);
    app.accounts.put(Arc::clone(&account));
    Ok(Some(account))
}

/// Registers an account from a self-signed identity and its first device entry.
pub async fn register(app: &App, request: RegisterRequest) -> Result<RegisterResponse> {
    if request.key_bundles.len() > MAX_KEY_BUNDLES
        || request
            .key_bundles
            .iter()
            .any(|bundle| bundle.0.len() > MAX_KEY_BUNDLE_BYTES)
    {
        return Err(Error::BadRequest(format!(
            "at most {MAX_KEY_BUNDLES} key bundles of at most {MAX_KEY_BUNDLE_BYTES} bytes"
        )));
    }
    let identity = Identity::decode(&request.identity.0).map_err(|e| invalid("identity", e))?;
    let entry =
        DeviceEntry::decode(&request.device_entry.0).map_err(|e| invalid("device entry", e))?;
    DeviceChain::verify(identity.sign_key(), std::slice::from_ref(&entry))
        .map_err(|e| invalid("device entry", e))?;
    let handle = identity.handle().as_str().to_owned();
    let record = AccountRecord {
        handle: handle.clone(),
        identity: request.identity.0,
        device_chain: vec![request.device_entry.0],
        key_bundles: request
            .key_bundles
            .into_iter()
            .map(|bundle| bundle.0)
            .collect(),
        quota_bytes: app.config.default_quota_bytes,
        used_bytes: 0,
        created_ms: app.now_ms(),
        opaque_record: match &request.opaque_upload {
            Some(upload) => super::opaque::record_from_upload(&upload.0)?,
            None => Vec::new(),
        },
    };
    app.meta(move |meta| meta.create_account(&record))
        .await
        .map_err(|error| match error {
            Error::AlreadyExists => Error::HandleTaken,
            other => other,
        })?;
    tracing::info!(handle = %handle, "account registered");
    Ok(RegisterResponse {
        handle,
        quota_bytes: app.config.default_quota_bytes,
    })
}

/// Appends the next device-chain entry to the caller's own chain (compare-and-swap on its length).
pub async fn append_device(
    app: &App,
    caller: &Caller,
    request: AppendDeviceRequest,
) -> Result<AppendResponse> {
    let account = load(app, &caller.handle)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let entry = DeviceEntry::decode(&request.entry.0).map_err(|e| invalid("device entry", e))?;
    let length = account.chain.entries().len() as u64;
    if entry.seq() != length {
        return Err(Error::Conflict {
            current_seq: Some(length),
        });
    }
    if account.chain.entries().len() >= MAX_DEVICE_CHAIN {
        return Err(Error::BadRequest("the device chain is full".into()));
    }
    let mut chain = account.chain.clone();
    chain
        .extend(std::slice::from_ref(&entry))
        .map_err(|e| invalid("device entry", e))?;
    let (handle, bytes) = (caller.handle.clone(), request.entry.0);
    app.meta(move |meta| meta.append_device_entry(&handle, length, &bytes))
        .await?;
    Ok(AppendResponse { seq: length })
}

/// Whether `device` is an active device of `account`.
pub fn device_is_active(account: &VerifiedAccount, device: &[u8; 32]) -> bool {
    SignPublicKey::from_bytes(device).is_ok_and(|key| account.chain.is_active(&key))
}
