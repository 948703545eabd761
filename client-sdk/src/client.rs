//! [`Client`]: the SDK's entry point — one account, unlocked on this device, talking to its
//! gateway.
//!
//! ```no_run
//! # async fn demo() -> coffre_sdk::Result<()> {
//! use coffre_sdk::client::Client;
//! use coffre_sdk::home::Home;
//! use coffre_crypto::passphrase::Passphrase;
//!
//! let home = Home::from_env()?;
//! let client = Client::open(&home, Passphrase::new("correct horse".into())).await?;
//! let space = client.create_space("Budget").await?;
//! for info in client.spaces().await? {
//!     println!("{} {:?} ({})", info.id, info.name, info.role.name());
//! }
//! # let _ = space; Ok(()) }
//! ```
//!
//! Every answer of the gateway is verified before it is returned (see [`crate::spaces`]); the
//! passphrase and the keys never leave this process, except the sealed key bundle at registration.

use std::sync::Arc;

use coffre_crypto::identity::{Fingerprint, Handle};
use coffre_crypto::keys::{SignPublicKey, SpaceId};
use coffre_crypto::passphrase::Passphrase;

use crate::account;
use crate::error::Result;
use crate::home::{Config, Home};
use crate::http::{HttpClient, HttpOptions};
use crate::keystore::Unlocked;
use crate::spaces::{self, Space, SpaceInfo};
use crate::state::State;
use crate::trust::Trust;

/// Who this client is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WhoAmI {
    /// The account's handle.
    pub handle: Handle,
    /// The identity fingerprint (compare it out of band; `display_groups()` for people).
    pub fingerprint: Fingerprint,
    /// This device's public key.
    pub device_key: SignPublicKey,
    /// The gateway's URL.
    pub server: String,
}

/// One account, unlocked on this device.
#[derive(Debug)]
pub struct Client {
    home: Home,
    config: Config,
    session: Arc<Unlocked>,
    http: HttpClient,
    state: Arc<State>,
}

impl Client {
    /// Creates an account on the gateway at `server` (TLS per `trust`), keeps its keys in `home`
    /// sealed under `passphrase`, and logs in.
    ///
    /// Errors: [`crate::Error::AlreadyExists`] if the handle is taken or `home` already holds a
    /// keystore; [`crate::Error::UntrustedCertificate`] if the gateway's certificate does not
    /// match `trust`.
    pub async fn create_account(
        home: &Home,
        server: &str,
        trust: Trust,
        handle: &str,
        passphrase: Passphrase,
    ) -> Result<Client> {
        Self::create_account_with(
            home,
            server,
            trust,
            handle,
            passphrase,
            HttpOptions::default(),
        )
        .await
    }

    /// [`Client::create_account`] with explicit HTTP time limits and retry policy.
    pub async fn create_account_with(
        home: &Home,
        server: &str,
        trust: Trust,
        handle: &str,
        passphrase: Passphrase,
        options: HttpOptions,
    ) -> Result<Client> {
        let opened = account::create(home, server, trust, handle, passphrase, options).await?;
        Ok(Client::from_opened(home, opened))
    }

    /// Sets up this device for an **existing** account with only its handle and passphrase
    /// (OPAQUE login; a new device key certified by the account's identity), keeping the new
    /// keystore in `home`. A wrong passphrase or unknown handle is [`crate::Error::Auth`].
    pub async fn enroll_device(
        home: &Home,
        server: &str,
        trust: Trust,
        handle: &str,
        passphrase: Passphrase,
    ) -> Result<Client> {
        Self::enroll_device_with(
            home,
            server,
            trust,
            handle,
            passphrase,
            HttpOptions::default(),
        )
        .await
    }

    /// [`Client::enroll_device`] with explicit HTTP time limits and retry policy.
    pub async fn enroll_device_with(
        home: &Home,
        server: &str,
        trust: Trust,
        handle: &str,
        passphrase: Passphrase,
        options: HttpOptions,
    ) -> Result<Client> {
        let opened = account::enroll(home, server, trust, handle, passphrase, options).await?;
        Ok(Client::from_opened(home, opened))
    }

    /// Unlocks the account kept in `home` (a wrong passphrase is [`crate::Error::Auth`]). Logs in
    /// on the first request that needs it.
    pub async fn open(home: &Home, passphrase: Passphrase) -> Result<Client> {
        Self::open_with(home, passphrase, HttpOptions::default()).await
    }

    /// [`Client::open`] with explicit HTTP time limits and retry policy.
    pub async fn open_with(
        home: &Home,
        passphrase: Passphrase,
        options: HttpOptions,
    ) -> Result<Client> {
        let opened = account::open(home, passphrase, options).await?;
        Ok(Client::from_opened(home, opened))
    }

    fn from_opened(home: &Home, opened: account::Opened) -> Client {
        Client {
            home: home.clone(),
            state: Arc::new(State::open(home.spaces_dir())),
            config: opened.config,
            session: opened.session,
            http: opened.http,
        }
    }

    /// Who this client is.
    pub fn whoami(&self) -> WhoAmI {
        WhoAmI {
            handle: self.session.handle().clone(),
            fingerprint: self.session.fingerprint(),
            device_key: *self.session.device().device_key(),
            server: self.config.server.clone(),
        }
    }

    /// Logs in now with the device key (otherwise done on first need, and again on expiry).
    pub async fn login(&self) -> Result<()> {
        self.http.login().await
    }

    /// The spaces this account belongs to, each verified from its membership log.
    pub async fn spaces(&self) -> Result<Vec<SpaceInfo>> {
        spaces::list_spaces(&self.http, &self.state, &self.session).await
    }

    /// Creates a space owned by this account, with a local display name.
    pub async fn create_space(&self, name: &str) -> Result<Space> {
        spaces::create_space(
            self.http.clone(),
            Arc::clone(&self.state),
            Arc::clone(&self.session),
            name,
        )
        .await
    }

    /// Opens a space, verifying its membership log against what this device pinned.
    pub async fn open_space(&self, id: &SpaceId) -> Result<Space> {
        spaces::open_space(
            self.http.clone(),
            Arc::clone(&self.state),
            Arc::clone(&self.session),
            id,
        )
        .await
    }

    /// The HTTPS client (typed access to every endpoint).
    pub fn http(&self) -> &HttpClient {
        &self.http
    }

    /// This device's per-space pins.
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// The unlocked identity and device.
    pub fn session(&self) -> &Arc<Unlocked> {
        &self.session
    }

    /// The local directories.
    pub fn home(&self) -> &Home {
        &self.home
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}
