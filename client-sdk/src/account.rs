//! Account creation and opening on this device.
//!
//! Creating an account generates every key locally: the identity (Ed25519 + X25519, self-signed),
//! the first device key, and its certificate (device-chain entry 0, signed by the identity). The
//! gateway receives only public keys and the key bundle sealed under the passphrase
//! (Argon2id, default parameters), which it cannot open.
//!
//! Order of effects, so that no failure loses keys or leaves a half account: the keystore is
//! written first (nothing registered can then exist without its keys on disk); registration comes
//! next, and if it is refused (handle taken, network) the keystore is removed again; the
//! configuration is written last.
//!
//! A second device: for now, copy the `COFFRE_HOME` directory (or the keystore and
//! `config.toml`) to the other machine and open it there with the passphrase; both machines then
//! act as the same device. A `coffre device add` flow — a new device key certified by the first
//! device's identity key and appended to the device chain — comes with passphrase login (OPAQUE).

use std::sync::Arc;

use coffre_crypto::device::DeviceEntryHash;
use coffre_crypto::device::{DeviceAction, DeviceCertificate, DeviceChain, DeviceEntry};
use coffre_crypto::identity::{Handle, IdentitySecret};
use coffre_crypto::keys::SigningSecret;
use coffre_crypto::passphrase::{Argon2Params, Passphrase};
use coffre_protocol::types::RegisterRequest;

use crate::error::{Error, Result};
use crate::home::{Config, Home};
use crate::http::{DeviceLogin, HttpClient, HttpOptions};
use crate::keystore::{Keystore, Unlocked};
use crate::trust::Trust;

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| {
            u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX)
        })
}

/// Runs CPU-heavy key stretching off the async runtime's worker threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Crypto(format!("key stretching task failed: {error}")))?
}

/// What account creation produced: the unlocked session and its HTTPS client.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) config: Config,
    pub(crate) session: Arc<Unlocked>,
    pub(crate) http: HttpClient,
}

/// Creates an account: keys, keystore, registration, configuration, first login.
pub(crate) async fn create(
    home: &Home,
    server: &str,
    trust: Trust,
    handle: &str,
    passphrase: Passphrase,
    options: HttpOptions,
) -> Result<Opened> {
    let handle = Handle::parse(handle)?;
    let keystore_path = home.keystore_path();
    if keystore_path.exists() {
        return Err(Error::AlreadyExists(format!(
            "a keystore already exists at {}; use another COFFRE_HOME",
            keystore_path.display()
        )));
    }
    let config = Config {
        server: server.to_owned(),
        trust,
        handle: handle.clone(),
    };
    let (keystore, session) = blocking(move || {
        let secret = IdentitySecret::generate()?;
        let identity = secret.certify(&handle, now_ms())?;
        let device_secret = SigningSecret::generate()?;
        let entry = DeviceEntry::sign(
            secret.sign_secret(),
            0,
            DeviceEntryHash::from_bytes([0; 32]),
            DeviceAction::Add,
            &device_secret.public_key(),
            now_ms(),
        )?;
        let chain = DeviceChain::verify(identity.sign_key(), std::slice::from_ref(&entry))?;
        let certificate = DeviceCertificate::try_from(entry)?;
        let keystore = Keystore::create(
            &identity,
            &secret,
            &device_secret,
            &certificate,
            &chain,
            &passphrase,
            Argon2Params::DEFAULT,
        )?;
        let session = keystore.unlock(&passphrase)?;
        Ok((keystore, session))
    })
    .await?;
    let session = Arc::new(session);
    let http = HttpClient::new(
        &config.server,
        &config.trust,
        options,
        Some(DeviceLogin {
            handle: config.handle.clone(),
            signer: Arc::clone(session.device()),
        }),
    )?;
    keystore.save(&keystore_path)?;
    let request = RegisterRequest {
        identity: keystore.identity().encoded().to_vec().into(),
        device_entry: keystore.device_certificate().encoded().to_vec().into(),
        key_bundles: vec![keystore.key_bundle().encode().into()],
    };
    if let Err(error) = http.register(&request).await {
        let _ = std::fs::remove_file(&keystore_path);
        return Err(error);
    }
    config.save(home)?;
    http.login().await?;
    Ok(Opened {
        config,
        session,
        http,
    })
}

/// Opens the account kept in `home` with its passphrase (no network yet).
pub(crate) async fn open(
    home: &Home,
    passphrase: Passphrase,
    options: HttpOptions,
) -> Result<Opened> {
    let config = Config::load(home)?;
    let keystore = Keystore::load(&home.keystore_path())?;
    if keystore.identity().handle() != &config.handle {
        return Err(Error::Config(format!(
            "config.toml names {} but the keystore belongs to {}",
            config.handle,
            keystore.identity().handle()
        )));
    }
    let session = Arc::new(blocking(move || keystore.unlock(&passphrase)).await?);
    let http = HttpClient::new(
        &config.server,
        &config.trust,
        options,
        Some(DeviceLogin {
            handle: config.handle.clone(),
            signer: Arc::clone(session.device()),
        }),
    )?;
    Ok(Opened {
        config,
        session,
        http,
    })
}
