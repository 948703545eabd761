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
//! Registration also runs OPAQUE (RFC 9807, [`coffre_crypto::opaque`]) with the passphrase, and
//! uploads a second key bundle sealed under the OPAQUE export key.
//!
//! A second device ([`enroll`]): with only the handle and the passphrase, the device logs in with
//! OPAQUE (the gateway learns nothing it could guess the passphrase from), receives an enrollment
//! token and the sealed key bundles, opens the bundle with the export key, checks that the
//! identity the gateway served is the one the unwrapped keys belong to, and certifies a fresh
//! device key with the identity key (the next device-chain entry). Its keystore is then its own:
//! the device logs in with its own key, and its commits name it.

use std::sync::Arc;

use coffre_crypto::device::DeviceEntryHash;
use coffre_crypto::device::{DeviceAction, DeviceCertificate, DeviceChain, DeviceEntry};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::keybundle::{IdentitySecretBytes, KeyBundle, SecretWrap, WrapKind};
use coffre_crypto::keys::SigningSecret;
use coffre_crypto::opaque::{ClientLogin, ClientRegistration};
use coffre_crypto::passphrase::{Argon2Params, Passphrase};
use coffre_protocol::types::RegisterRequest;
use zeroize::Zeroizing;

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

/// The configuration of a new device in `home` (which must not hold a keystore yet), with
/// `handle` parsed.
fn fresh_config(home: &Home, server: &str, trust: Trust, handle: &str) -> Result<(Handle, Config)> {
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
    Ok((handle, config))
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
    let (handle, config) = fresh_config(home, server, trust, handle)?;
    let keystore_path = home.keystore_path();
    let (keystore, session, passphrase) = blocking(move || {
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
        Ok((keystore, session, passphrase))
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
    let (opaque_upload, opaque_bundle) =
        register_opaque(&http, &config.handle, &passphrase, &session).await?;
    keystore.save(&keystore_path)?;
    let request = RegisterRequest {
        identity: keystore.identity().encoded().to_vec().into(),
        device_entry: keystore.device_certificate().encoded().to_vec().into(),
        key_bundles: vec![
            keystore.key_bundle().encode().into(),
            opaque_bundle.encode().into(),
        ],
        opaque_upload: Some(opaque_upload.into()),
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

/// Runs OPAQUE registration with the gateway (round 1; the upload goes with the registration)
/// and seals the identity secrets under the export key. Returns the upload and that bundle.
async fn register_opaque(
    http: &HttpClient,
    handle: &Handle,
    passphrase: &Passphrase,
    session: &Unlocked,
) -> Result<(Vec<u8>, KeyBundle)> {
    let phrase = Zeroizing::new(passphrase.expose_secret().as_bytes().to_vec());
    let (state, request) = {
        let phrase = phrase.clone();
        blocking(move || Ok(ClientRegistration::start(&phrase)?)).await?
    };
    let response = http.opaque_register(handle.as_str(), request).await?;
    let (upload, export) = blocking(move || Ok(state.finish(&phrase, &response)?)).await?;
    let secrets = IdentitySecretBytes::from_keys(
        session.secret().sign_secret(),
        session.secret().enc_secret(),
    );
    let bundle = KeyBundle::seal_with_secret(
        SecretWrap::OpaqueExport,
        &KeyBundle::opaque_wrapping_secret(export.expose_secret()),
        &secrets,
    )?;
    Ok((upload, bundle))
}

/// Sets up this device for an existing account with only its handle and passphrase: OPAQUE
/// login, unwrap the identity from the key bundle, certify a new device key, keep it all in a
/// new keystore in `home`, and log in with the new device.
///
/// Errors: [`Error::Auth`] for a wrong passphrase or unknown handle (indistinguishable);
/// [`Error::Integrity`] if the gateway's identity or device chain does not match the keys;
/// [`Error::AlreadyExists`] if `home` already holds a keystore.
pub(crate) async fn enroll(
    home: &Home,
    server: &str,
    trust: Trust,
    handle: &str,
    passphrase: Passphrase,
    options: HttpOptions,
) -> Result<Opened> {
    let (handle, config) = fresh_config(home, server, trust, handle)?;
    let keystore_path = home.keystore_path();
    let anonymous = HttpClient::new(&config.server, &config.trust, options.clone(), None)?;
    let phrase = Zeroizing::new(passphrase.expose_secret().as_bytes().to_vec());
    let (login, request) = {
        let phrase = phrase.clone();
        blocking(move || Ok(ClientLogin::start(&phrase)?)).await?
    };
    let started = anonymous
        .opaque_login_start(handle.as_str(), request)
        .await?;
    let response = started.response.0;
    // A wrong passphrase (or an unknown handle) shows here: the answer does not open.
    let (finalization, export) =
        blocking(move || login.finish(&phrase, &response).map_err(|_| Error::Auth)).await?;
    let finished = anonymous
        .opaque_login_finish(started.login_id.0, finalization)
        .await?;

    let wrapping = KeyBundle::opaque_wrapping_secret(export.expose_secret());
    let secrets = finished
        .key_bundles
        .iter()
        .filter_map(|bytes| KeyBundle::decode(&bytes.0).ok())
        .filter(|bundle| matches!(bundle.wrap_kind(), WrapKind::OpaqueExport))
        .find_map(|bundle| bundle.open_with_secret(&wrapping).ok())
        .ok_or_else(|| {
            Error::Integrity(
                "the gateway served no key bundle that the passphrase login opens".to_owned(),
            )
        })?;
    let (sign, enc) = secrets.into_keys();
    let secret = IdentitySecret::from_parts(sign, enc);
    let identity = Identity::decode(&finished.identity.0)?;
    if identity.handle() != &handle
        || identity.sign_key() != &secret.sign_secret().public_key()
        || identity.enc_key() != &secret.enc_secret().public_key()
    {
        return Err(Error::Integrity(
            "the identity the gateway served is not the one the key bundle holds keys for"
                .to_owned(),
        ));
    }
    let entries = finished
        .device_chain
        .iter()
        .map(|bytes| DeviceEntry::decode(&bytes.0))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let mut chain = DeviceChain::verify(identity.sign_key(), &entries)?;
    let device_secret = SigningSecret::generate()?;
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        entries.len() as u64,
        chain.head_hash(),
        DeviceAction::Add,
        &device_secret.public_key(),
        now_ms(),
    )?;
    chain.extend(std::slice::from_ref(&entry))?;
    let certificate = DeviceCertificate::try_from(entry.clone())?;
    let (keystore, session) = blocking(move || {
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
    // The keystore first: a certified device must never exist without its key on disk.
    keystore.save(&keystore_path)?;
    if let Err(error) = anonymous
        .enroll_device(&finished.token, entry.encoded().to_vec())
        .await
    {
        let _ = std::fs::remove_file(&keystore_path);
        return Err(error);
    }
    config.save(home)?;
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
