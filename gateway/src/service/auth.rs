//! Authentication: device-key login (challenge, signature, token) and bearer-token lookup.
//!
//! Threats and invariants:
//! - **Enumeration.** Every login failure — unknown handle, unknown or revoked device, bad
//!   signature, unknown, expired or already used challenge — is the one [`Error::Unauthenticated`],
//!   and a challenge is issued for any handle, so the answers reveal nothing about which part failed.
//! - **Replay.** A challenge is single use (taken from the store before anything is checked),
//!   expires after `challenge_ttl`, and is bound to the handle and device it was issued for; the
//!   signed message also binds the handle ([`coffre_protocol::login_message`]).
//! - **Token theft from the store.** Only `BLAKE3(token)` is stored; tokens are 256-bit random, so
//!   a lookup by hash is safe (no timing oracle on a secret comparison).
//! - **Revoked devices.** Every authenticated request re-checks that the token's device is still
//!   active in the account's verified device chain.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use coffre_crypto::keys::SignPublicKey;
use coffre_protocol::types::{
    Bytes64, ChallengeRequest, ChallengeResponse, TokenResponse, VerifyRequest,
};
use coffre_protocol::{LOGIN_DOMAIN, login_message};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use super::{Caller, accounts};
use crate::app::App;
use crate::error::{Error, Result};
use crate::store::{ChallengeRecord, TokenRecord};

/// Prefix of every token, so that leaked tokens are recognisable by secret scanners.
pub const TOKEN_PREFIX: &str = "cft_";
/// Length of a token: the prefix and 32 bytes in unpadded base64url.
const TOKEN_LEN: usize = 4 + 43;
/// Expired challenges and tokens are purged at most this often.
const PURGE_INTERVAL_MS: u64 = 60_000;

pub(crate) fn random32() -> Result<[u8; 32]> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| Error::Internal(format!("randomness: {error}")))?;
    Ok(bytes)
}

fn token_hash(token: &str) -> [u8; 32] {
    *blake3::hash(token.as_bytes()).as_bytes()
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Issues a single-use challenge for `(handle, device_key)`.
pub async fn challenge(app: &App, request: ChallengeRequest) -> Result<ChallengeResponse> {
    if request.handle.len() > coffre_crypto::identity::MAX_HANDLE_LEN {
        return Err(Error::BadRequest("handle too long".into()));
    }
    purge_now_and_then(app).await;
    let challenge = random32()?;
    let record = ChallengeRecord {
        handle: request.handle,
        device_key: request.device_key.0,
        expires_ms: app
            .now_ms()
            .saturating_add(millis(app.config.challenge_ttl)),
    };
    app.meta(move |meta| meta.put_challenge(&challenge, &record))
        .await?;
    Ok(ChallengeResponse {
        challenge: Bytes64(challenge.to_vec()),
        expires_in_s: app.config.challenge_ttl.as_secs(),
    })
}

async fn purge_now_and_then(app: &App) {
    let now = app.now_ms();
    let last = app.last_purge_ms.load(std::sync::atomic::Ordering::Relaxed);
    if now.saturating_sub(last) < PURGE_INTERVAL_MS {
        return;
    }
    app.last_purge_ms
        .store(now, std::sync::atomic::Ordering::Relaxed);
    if let Err(error) = app.meta(move |meta| meta.purge_expired(now)).await {
        tracing::warn!(error = %error, "purging expired sessions failed");
    }
}

/// Checks a signed challenge and issues a bearer token.
pub async fn verify(app: &App, request: VerifyRequest) -> Result<TokenResponse> {
    let challenge: [u8; 32] = request
        .challenge
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Error::Unauthenticated)?;
    let signature: [u8; 64] = request
        .signature
        .0
        .as_slice()
        .try_into()
        .map_err(|_| Error::Unauthenticated)?;
    // Take first: whatever happens next, this challenge cannot be tried again.
    let record = app
        .meta(move |meta| meta.take_challenge(&challenge))
        .await?
        .ok_or(Error::Unauthenticated)?;
    let now = app.now_ms();
    if record.expires_ms <= now
        || record.handle != request.handle
        || record.device_key != request.device_key.0
    {
        return Err(Error::Unauthenticated);
    }
    let account = accounts::load(app, &request.handle)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let device =
        SignPublicKey::from_bytes(&request.device_key.0).map_err(|_| Error::Unauthenticated)?;
    if !account.chain.is_active(&device) {
        return Err(Error::Unauthenticated);
    }
    device
        .verify(
            LOGIN_DOMAIN,
            &login_message(&request.handle, &challenge),
            &signature,
        )
        .map_err(|_| Error::Unauthenticated)?;
    let (token, expires_in_s) = issue_token(app, &request.handle, request.device_key.0).await?;
    Ok(TokenResponse {
        token,
        expires_in_s,
    })
}

/// Issues and stores (by hash) a fresh bearer token for `(handle, device_key)`: the token and
/// its lifetime in seconds.
pub(crate) async fn issue_token(
    app: &App,
    handle: &str,
    device_key: [u8; 32],
) -> Result<(String, u64)> {
    let token = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random32()?));
    let hash = token_hash(&token);
    let record = TokenRecord {
        handle: handle.to_owned(),
        device_key,
        expires_ms: app.now_ms().saturating_add(millis(app.config.token_ttl)),
    };
    app.meta(move |meta| meta.put_token(&hash, &record)).await?;
    Ok((token, app.config.token_ttl.as_secs()))
}

/// Authenticates a request by its `Authorization: Bearer` token, then applies the per-account
/// rate limit. Only tokens of active devices pass (not enrollment tokens).
pub async fn authenticate(app: &App, headers: &HeaderMap) -> Result<Caller> {
    authenticate_as(app, headers, false).await
}

/// [`authenticate`] that also accepts an enrollment token from a passphrase login (for
/// certifying a new device, and nothing else).
pub async fn authenticate_enrollment(app: &App, headers: &HeaderMap) -> Result<Caller> {
    authenticate_as(app, headers, true).await
}

async fn authenticate_as(app: &App, headers: &HeaderMap, enrollment: bool) -> Result<Caller> {
    let token = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| token.len() == TOKEN_LEN && token.starts_with(TOKEN_PREFIX))
        .ok_or(Error::Unauthenticated)?;
    let hash = token_hash(token);
    let record = app
        .meta(move |meta| meta.token(&hash))
        .await?
        .ok_or(Error::Unauthenticated)?;
    if record.expires_ms <= app.now_ms() {
        return Err(Error::Unauthenticated);
    }
    let account = accounts::load(app, &record.handle)
        .await?
        .ok_or(Error::Unauthenticated)?;
    let enrolling = enrollment && record.device_key == super::opaque::ENROLLMENT_DEVICE;
    if !enrolling && !accounts::device_is_active(&account, &record.device_key) {
        return Err(Error::Unauthenticated);
    }
    app.limiter.per_account.check(&record.handle)?;
    Ok(Caller {
        handle: record.handle,
        device_key: record.device_key,
        account,
    })
}
