//! OPAQUE passphrase login (RFC 9807): registration's first round, and the two login rounds that
//! end in an **enrollment token** plus the account's sealed key bundles.
//!
//! Threats and invariants:
//!
//! - **The gateway never sees the passphrase** nor anything that allows guessing it offline
//!   without its own OPRF seed (`<data>/opaque/server-setup.key`, mode 0600, generated on first
//!   start; losing it only disables passphrase login until users register again).
//! - **Enumeration**: a login start is answered for any handle (opaque-ke answers unknown handles
//!   with a fake record), and every failure of finish — unknown, expired or reused login id, wrong
//!   passphrase, malformed message — is the one [`Error::Unauthenticated`].
//! - **Guessing online**: each attempt costs a start and a finish, both rate-limited per address;
//!   pending logins are single use, expire after `challenge_ttl`, and are capped in number
//!   ([`MAX_PENDING_LOGINS`]), so they cannot fill memory.
//! - **What a passphrase login grants**: only an enrollment token (device key all zero in the
//!   token record), which [`super::auth::authenticate`] refuses everywhere; only
//!   `POST /v1/account/devices` accepts it, to certify the new device — with a device-chain entry
//!   signed by the identity key, which only the holder of the unwrapped key bundle can sign.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use coffre_crypto::opaque::{ServerLoginState, ServerSetup, registration_record};
use coffre_protocol::types::{
    Bytes64, OpaqueLoginFinishRequest, OpaqueLoginFinishResponse, OpaqueLoginStartRequest,
    OpaqueLoginStartResponse, OpaqueRegisterRequest, OpaqueRegisterResponse,
};

use super::accounts;
use super::auth::{issue_token, random32};
use crate::app::{App, blocking};
use crate::error::{Error, Result};

/// Most logins between start and finish at once; further starts get 503 until some finish or
/// expire.
pub const MAX_PENDING_LOGINS: usize = 4096;
/// The device key recorded in enrollment tokens: not a valid Ed25519 key, so no device matches.
pub const ENROLLMENT_DEVICE: [u8; 32] = [0; 32];
/// Where the OPAQUE secrets live, under the data directory.
const SETUP_FILE: &str = "opaque/server-setup.key";

/// Loads the gateway's OPAQUE secrets from `data_dir`, generating them on first start.
pub fn load_or_generate(data_dir: &Path) -> Result<ServerSetup> {
    let path = data_dir.join(SETUP_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => {
            let bytes = zeroize::Zeroizing::new(bytes);
            ServerSetup::from_bytes(&bytes)
                .map_err(|_| Error::Corrupt(format!("{} is not an OPAQUE setup", path.display())))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let setup = ServerSetup::generate();
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            crate::tls::write_durably(&path, &setup.to_bytes(), 0o600)?;
            Ok(setup)
        }
        Err(error) => Err(error.into()),
    }
}

struct Pending {
    handle: String,
    state: ServerLoginState,
    expires_ms: u64,
}

/// Logins between start and finish, by login id.
#[derive(Default)]
pub struct PendingLogins {
    logins: Mutex<HashMap<[u8; 32], Pending>>,
}

impl core::fmt::Debug for PendingLogins {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("PendingLogins(..)")
    }
}

impl PendingLogins {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Pending>> {
        // Each critical section is one map operation; a poisoned map is still consistent.
        self.logins
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn insert(&self, id: [u8; 32], pending: Pending, now_ms: u64) -> Result<()> {
        let mut logins = self.lock();
        if logins.len() >= MAX_PENDING_LOGINS {
            logins.retain(|_, login| login.expires_ms > now_ms);
        }
        if logins.len() >= MAX_PENDING_LOGINS {
            return Err(Error::Unavailable);
        }
        logins.insert(id, pending);
        Ok(())
    }

    fn take(&self, id: &[u8; 32]) -> Option<Pending> {
        self.lock().remove(id)
    }
}

fn check_handle(handle: &str) -> Result<()> {
    if handle.is_empty() || handle.len() > coffre_crypto::identity::MAX_HANDLE_LEN {
        return Err(Error::BadRequest("invalid handle".into()));
    }
    Ok(())
}

/// `POST /v1/accounts/opaque`: the server's registration response for `handle`. Stateless: the
/// upload comes with the registration itself.
pub async fn register_start(
    app: &App,
    request: OpaqueRegisterRequest,
) -> Result<OpaqueRegisterResponse> {
    check_handle(&request.handle)?;
    let setup = std::sync::Arc::clone(&app.opaque_setup);
    let response = blocking(move || {
        setup
            .registration_response(&request.request.0, &request.handle)
            .map_err(|_| Error::BadRequest("invalid OPAQUE registration request".into()))
    })
    .await?;
    Ok(OpaqueRegisterResponse {
        response: Bytes64(response),
    })
}

/// Checks a registration upload: the record to store.
pub fn record_from_upload(upload: &[u8]) -> Result<Vec<u8>> {
    registration_record(upload)
        .map_err(|_| Error::InvalidSignedData("invalid OPAQUE registration upload".into()))
}

/// `POST /v1/auth/opaque/start`: answered for any handle.
pub async fn login_start(
    app: &App,
    request: OpaqueLoginStartRequest,
) -> Result<OpaqueLoginStartResponse> {
    check_handle(&request.handle)?;
    let record = accounts::load(app, &request.handle)
        .await?
        .map(|account| account.record.opaque_record.clone())
        .filter(|record| !record.is_empty());
    let setup = std::sync::Arc::clone(&app.opaque_setup);
    let handle = request.handle.clone();
    let (state, response) = blocking(move || {
        setup
            .login_start(record.as_deref(), &request.request.0, &handle)
            .map_err(|_| Error::Unauthenticated)
    })
    .await?;
    let id = random32()?;
    let now = app.now_ms();
    let ttl = u64::try_from(app.config.challenge_ttl.as_millis()).unwrap_or(u64::MAX);
    app.opaque_logins.insert(
        id,
        Pending {
            handle: request.handle,
            state,
            expires_ms: now.saturating_add(ttl),
        },
        now,
    )?;
    Ok(OpaqueLoginStartResponse {
        login_id: Bytes64(id.to_vec()),
        response: Bytes64(response),
    })
}

/// `POST /v1/auth/opaque/finish`: an enrollment token and the key bundles, or
/// `unauthenticated`.
pub async fn login_finish(
    app: &App,
    request: OpaqueLoginFinishRequest,
) -> Result<OpaqueLoginFinishResponse> {
    let id: [u8; 32] = request
        .login_id
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Error::Unauthenticated)?;
    // Taken first: whatever happens next, this login cannot be finished twice.
    let pending = app.opaque_logins.take(&id).ok_or(Error::Unauthenticated)?;
    if pending.expires_ms <= app.now_ms() {
        return Err(Error::Unauthenticated);
    }
    let finalization = request.finalization.0;
    blocking(move || {
        pending
            .state
            .finish(&finalization)
            .map_err(|_| Error::Unauthenticated)
    })
    .await?;
    let account = accounts::load(app, &pending.handle)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let (token, expires_in_s) = issue_token(app, &pending.handle, ENROLLMENT_DEVICE).await?;
    tracing::info!(handle = %pending.handle, "passphrase login: enrollment token issued");
    Ok(OpaqueLoginFinishResponse {
        token,
        expires_in_s,
        key_bundles: account
            .record
            .key_bundles
            .iter()
            .map(|bundle| Bytes64(bundle.clone()))
            .collect(),
        identity: Bytes64(account.record.identity.clone()),
        device_chain: account
            .record
            .device_chain
            .iter()
            .map(|entry| Bytes64(entry.clone()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_setup_is_generated_once_kept_private_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_generate(dir.path()).unwrap();
        let again = load_or_generate(dir.path()).unwrap();
        assert_eq!(*first.to_bytes(), *again.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join(SETUP_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join(SETUP_FILE), b"garbage").unwrap();
        assert!(matches!(
            load_or_generate(dir.path()),
            Err(Error::Corrupt(_))
        ));
    }
}
