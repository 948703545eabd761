//! This account's devices: list them, revoke a lost one.
//!
//! The device chain is signed by the identity key and verified here from its first entry; a
//! chain that does not extend what this device saved in its keystore (a rollback, or a rewrite
//! that drops a revocation) is an integrity error **[T-unauth-keys]**. Revoking appends a signed
//! `revoke` entry: the gateway refuses the revoked device's tokens from its next request on.
//!
//! Not covered: other members' clients do not yet check a commit author's device against its
//! owner's device chain, so a revoked device's *key* (if stolen) could still sign commits that
//! they accept through a colluding gateway; that needs key transparency (see THREAT_MODEL.md).

use coffre_crypto::device::{DeviceAction, DeviceChain, DeviceEntry};
use coffre_crypto::keys::SignPublicKey;

use crate::account::now_ms;
use crate::client::Client;
use crate::error::{Error, Result};

/// One active device of this account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The device's public key.
    pub key: SignPublicKey,
    /// When it was certified (its owner's clock), milliseconds since the Unix epoch.
    pub added_ms: u64,
    /// Whether it is the device this client runs on.
    pub this_device: bool,
}

impl Client {
    /// Fetches and verifies this account's device chain.
    async fn own_chain(&self) -> Result<DeviceChain> {
        let me = self.session().identity();
        let answer = self.http().user(me.handle().as_str()).await?;
        if answer.identity.0 != me.encoded() {
            return Err(Error::Integrity(
                "the gateway served another identity for this account".to_owned(),
            ));
        }
        let entries = answer
            .device_chain
            .iter()
            .map(|bytes| DeviceEntry::decode(&bytes.0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let chain = DeviceChain::verify(me.sign_key(), &entries)?;
        let saved = crate::keystore::Keystore::load(&self.home().keystore_path())?
            .device_chain()
            .to_vec();
        if entries.len() < saved.len() || entries[..saved.len()] != saved[..] {
            return Err(Error::Integrity(
                "rollback: the gateway's device chain does not extend the one this device saved"
                    .to_owned(),
            ));
        }
        if entries.len() > saved.len() {
            // Pin what was verified, so that a later rollback below it is detected.
            let path = self.home().keystore_path();
            let mut keystore = crate::keystore::Keystore::load(&path)?;
            keystore.update_device_chain(&chain)?;
            keystore.save(&path)?;
        }
        Ok(chain)
    }

    /// The active devices of this account, oldest first.
    pub async fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let chain = self.own_chain().await?;
        let me = self.session().device().device_key();
        let mut devices: Vec<DeviceInfo> = chain
            .entries()
            .iter()
            .filter(|entry| {
                entry.action() == DeviceAction::Add && chain.is_active(entry.device_key())
            })
            .map(|entry| DeviceInfo {
                key: *entry.device_key(),
                added_ms: entry.created_ms(),
                this_device: entry.device_key() == me,
            })
            .collect();
        devices.dedup_by(|a, b| a.key == b.key);
        Ok(devices)
    }

    /// Revokes the active device whose key starts with `key_prefix` (hex, at least 8 digits).
    /// Revoking the device this client runs on is refused (use another device).
    pub async fn revoke_device(&self, key_prefix: &str) -> Result<SignPublicKey> {
        let prefix = key_prefix.to_ascii_lowercase();
        if prefix.len() < 8 || !prefix.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(Error::InvalidInput(
                "name the device by at least 8 hex digits of its key (see `devices`)".to_owned(),
            ));
        }
        let chain = self.own_chain().await?;
        let matches: Vec<SignPublicKey> = chain
            .active_devices()
            .filter(|key| hex::encode(key.to_bytes()).starts_with(&prefix))
            .copied()
            .collect();
        let key = match matches.as_slice() {
            [one] => *one,
            [] => return Err(Error::NotFound(format!("no active device {key_prefix}"))),
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{key_prefix} starts several device keys; give more digits"
                )));
            }
        };
        if &key == self.session().device().device_key() {
            return Err(Error::InvalidInput(
                "this is the device you are using; revoke it from another device".to_owned(),
            ));
        }
        let entry = chain.next_entry(
            self.session().secret().sign_secret(),
            DeviceAction::Revoke,
            &key,
            now_ms(),
        )?;
        match self.http().append_device(entry.encoded().to_vec()).await? {
            crate::remote::AppendOutcome::Appended => Ok(key),
            crate::remote::AppendOutcome::Conflict { .. } => Err(Error::Conflict(
                "the device chain changed meanwhile; try again".to_owned(),
            )),
        }
    }
}
