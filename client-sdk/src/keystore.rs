//! The local keystore `keystore.cfk` (FORMAT.md section 8.6) and the unlocked session.
//!
//! A [`Keystore`] holds only public bytes and ciphertext: the identity, the passphrase key bundle
//! (also uploaded at registration), this device's certificate, the account's device chain, and one
//! sealed box with the identity secrets and the device seed, keyed from the Argon2id stretching of
//! the passphrase (the key bundle's salt and parameters) through `CTX_LOCAL_KEYSTORE`.
//!
//! [`Keystore::unlock`] stretches once and yields an [`Unlocked`] session: the identity secret
//! and the device signer, in memory only, zeroized on drop by the crypto types, redacted in
//! `Debug`. Invariants checked on unlock (so a keystore edited on disk cannot pair mismatched
//! keys): the opened secrets match the identity's and the certificate's public keys, the
//! certificate is signed by the identity, and the device chain verifies and has this device
//! active.
//!
//! Threats: a stolen keystore allows offline passphrase guessing at the Argon2id cost (the same as
//! the key bundle the gateway holds); a wrong passphrase and any tampering are the one
//! [`Error::Auth`] answer. The file is written atomically with mode `0600`.

use std::path::Path;
use std::sync::Arc;

use coffre_crypto::caead::{sealed_box_open, sealed_box_seal};
use coffre_crypto::device::{DeviceCertificate, DeviceChain, DeviceEntry, DeviceSigner};
use coffre_crypto::identity::{Fingerprint, Handle, Identity, IdentitySecret};
use coffre_crypto::kdf::{CTX_LOCAL_KEYSTORE, derive};
use coffre_crypto::keybundle::{IdentitySecretBytes, KeyBundle, WrapKind};
use coffre_crypto::keys::{EncSecret, SigningSecret};
use coffre_crypto::passphrase::{Argon2Params, Passphrase, stretch};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::home::write_atomic;

/// Magic of a local keystore. **Format-fixed.**
pub const MAGIC_KEYSTORE: &[u8; 4] = b"CFKS";
/// Most device-chain entries kept (the gateway's limit).
pub const MAX_CHAIN_ENTRIES: usize = 1024;
/// Longest `bytes32` field.
const MAX_FIELD: usize = 64 * 1024;
/// Length of the sealed plaintext: identity sign secret, identity enc secret, device seed.
const SECRETS_LEN: usize = 96;

/// A device's keystore, locked: public bytes and ciphertext only.
#[derive(Clone, Debug)]
pub struct Keystore {
    identity: Identity,
    key_bundle: KeyBundle,
    device_cert: DeviceCertificate,
    local_box: Vec<u8>,
    device_chain: Vec<DeviceEntry>,
}

/// The unlocked identity and device of one account: what signs and decrypts.
///
/// Holds the secrets in memory only; they are zeroized when the last reference drops.
pub struct Unlocked {
    identity: Identity,
    secret: IdentitySecret,
    device: Arc<DeviceSigner>,
    chain: DeviceChain,
}

impl std::fmt::Debug for Unlocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unlocked")
            .field("handle", self.identity.handle())
            .field("fingerprint", &self.identity.fingerprint())
            .field("device_key", self.device.device_key())
            .finish_non_exhaustive()
    }
}

impl Unlocked {
    /// The account's public identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The account's handle.
    pub fn handle(&self) -> &Handle {
        self.identity.handle()
    }

    /// The identity fingerprint, for people to compare.
    pub fn fingerprint(&self) -> Fingerprint {
        self.identity.fingerprint()
    }

    /// The identity secrets (sign: certifies devices; enc: opens epoch-key wraps).
    pub fn secret(&self) -> &IdentitySecret {
        &self.secret
    }

    /// This device's signer.
    pub fn device(&self) -> &Arc<DeviceSigner> {
        &self.device
    }

    /// The account's device chain as last seen by this device.
    pub fn device_chain(&self) -> &DeviceChain {
        &self.chain
    }
}

impl Keystore {
    /// Seals a new keystore under `passphrase`: a fresh key bundle with `params`, and the local
    /// box keyed from the same stretching.
    pub fn create(
        identity: &Identity,
        secret: &IdentitySecret,
        device_secret: &SigningSecret,
        device_cert: &DeviceCertificate,
        device_chain: &DeviceChain,
        passphrase: &Passphrase,
        params: Argon2Params,
    ) -> Result<Keystore> {
        let bundle_secrets =
            IdentitySecretBytes::from_keys(secret.sign_secret(), secret.enc_secret());
        let key_bundle = KeyBundle::seal_with_passphrase(&bundle_secrets, passphrase, params)?;
        let mut keystore = Keystore {
            identity: identity.clone(),
            key_bundle,
            device_cert: device_cert.clone(),
            local_box: Vec::new(),
            device_chain: device_chain.entries().to_vec(),
        };
        let key = keystore.box_key(passphrase)?;
        let mut plaintext = Zeroizing::new([0u8; SECRETS_LEN]);
        plaintext[..32].copy_from_slice(bundle_secrets.expose_sign_seed());
        plaintext[32..64].copy_from_slice(bundle_secrets.expose_enc_secret());
        plaintext[64..].copy_from_slice(&device_secret.expose_secret());
        keystore.local_box = sealed_box_seal(&key, &keystore.aad(), plaintext.as_slice())?;
        Ok(keystore)
    }

    /// Opens the keystore. A wrong passphrase (or a tampered file) is [`Error::Auth`].
    pub fn unlock(&self, passphrase: &Passphrase) -> Result<Unlocked> {
        let key = self.box_key(passphrase)?;
        let plaintext = Zeroizing::new(
            sealed_box_open(&key, &self.aad(), &self.local_box).map_err(|_| Error::Auth)?,
        );
        if plaintext.len() != SECRETS_LEN {
            return Err(Error::Auth);
        }
        let mut seed = Zeroizing::new([0u8; 32]);
        seed.copy_from_slice(&plaintext[..32]);
        let sign = SigningSecret::from_seed(&seed);
        let mut enc = Zeroizing::new([0u8; 32]);
        enc.copy_from_slice(&plaintext[32..64]);
        let enc = EncSecret::from_bytes(*enc);
        seed.copy_from_slice(&plaintext[64..]);
        let device_secret = SigningSecret::from_seed(&seed);

        let inconsistent =
            |what: &str| Error::Config(format!("the keystore is inconsistent: {what}"));
        if sign.public_key() != *self.identity.sign_key()
            || enc.public_key() != *self.identity.enc_key()
        {
            return Err(inconsistent("identity secrets do not match the identity"));
        }
        if self.device_cert.identity_key() != self.identity.sign_key() {
            return Err(inconsistent("the device certificate is not the identity's"));
        }
        let device = DeviceSigner::new(self.device_cert.clone(), device_secret)
            .map_err(|_| inconsistent("the device secret does not match its certificate"))?;
        let chain = DeviceChain::verify(self.identity.sign_key(), &self.device_chain)
            .map_err(|_| inconsistent("the device chain does not verify"))?;
        if !chain
            .entries()
            .iter()
            .any(|entry| entry == self.device_cert.entry())
        {
            return Err(inconsistent(
                "the device chain does not certify this device",
            ));
        }
        if !chain.is_active(self.device_cert.device_key()) {
            return Err(Error::Config(
                "this device has been revoked from the account".to_owned(),
            ));
        }
        Ok(Unlocked {
            identity: self.identity.clone(),
            secret: IdentitySecret::from_parts(sign, enc),
            device: Arc::new(device),
            chain,
        })
    }

    /// The public identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The passphrase key bundle (uploaded at registration).
    pub fn key_bundle(&self) -> &KeyBundle {
        &self.key_bundle
    }

    /// This device's certificate.
    pub fn device_certificate(&self) -> &DeviceCertificate {
        &self.device_cert
    }

    /// The device chain as last saved.
    pub fn device_chain(&self) -> &[DeviceEntry] {
        &self.device_chain
    }

    /// Replaces the saved device chain with a newer verified one (no passphrase needed). It must
    /// extend the saved chain.
    pub fn update_device_chain(&mut self, chain: &DeviceChain) -> Result<()> {
        let known = &self.device_chain;
        if chain.identity_key() != self.identity.sign_key()
            || chain.entries().len() < known.len()
            || chain.entries()[..known.len()] != known[..]
        {
            return Err(Error::Integrity(
                "device chain: the new chain does not extend the saved one".to_owned(),
            ));
        }
        self.device_chain = chain.entries().to_vec();
        Ok(())
    }

    /// `KDF(CTX_LOCAL_KEYSTORE, Argon2id(passphrase, bundle salt, bundle params))`.
    fn box_key(&self, passphrase: &Passphrase) -> Result<coffre_crypto::keys::DerivedKey> {
        let WrapKind::Passphrase { params, salt } = self.key_bundle.wrap_kind() else {
            return Err(Error::Config(
                "the keystore's key bundle is not a passphrase bundle".to_owned(),
            ));
        };
        if passphrase.is_empty() {
            return Err(Error::Auth);
        }
        let stretched = stretch(passphrase, salt, *params)?;
        Ok(derive(CTX_LOCAL_KEYSTORE, stretched.expose_secret()))
    }

    /// `"CFKS" ‖ 0x01 ‖ identity ‖ key_bundle ‖ device_cert`: the local box's AAD.
    fn aad(&self) -> Vec<u8> {
        let mut out = MAGIC_KEYSTORE.to_vec();
        out.push(crate::FORMAT_VERSION);
        for field in [
            self.identity.encoded().to_vec(),
            self.key_bundle.encode(),
            self.device_cert.encoded().to_vec(),
        ] {
            put_bytes32(&mut out, &field);
        }
        out
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.aad();
        put_bytes32(&mut out, &self.local_box);
        // Invariant: chains are at most MAX_CHAIN_ENTRIES long (checked on decode and by the
        // gateway), far below u32::MAX.
        let count = u32::try_from(self.device_chain.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&count.to_be_bytes());
        for entry in &self.device_chain {
            put_bytes32(&mut out, entry.encoded());
        }
        out
    }

    /// Decodes a keystore, verifying every signed part. Bad bytes are [`Error::Config`].
    pub fn decode(bytes: &[u8]) -> Result<Keystore> {
        let malformed = |what: &str| Error::Config(format!("the keystore file is damaged: {what}"));
        let mut input = Input { bytes };
        let header = input.take(5).ok_or_else(|| malformed("too short"))?;
        if &header[..4] != MAGIC_KEYSTORE || header[4] != crate::FORMAT_VERSION {
            return Err(malformed("not a coffre keystore of this version"));
        }
        let identity = Identity::decode(input.bytes32().ok_or_else(|| malformed("identity"))?)
            .map_err(|_| malformed("identity"))?;
        let key_bundle = KeyBundle::decode(input.bytes32().ok_or_else(|| malformed("key bundle"))?)
            .map_err(|_| malformed("key bundle"))?;
        let device_cert =
            DeviceCertificate::decode(input.bytes32().ok_or_else(|| malformed("certificate"))?)
                .map_err(|_| malformed("device certificate"))?;
        let local_box = input
            .bytes32()
            .ok_or_else(|| malformed("sealed box"))?
            .to_vec();
        let count = input.u32().ok_or_else(|| malformed("device chain"))? as usize;
        if count == 0 || count > MAX_CHAIN_ENTRIES {
            return Err(malformed("device chain length"));
        }
        let mut device_chain = Vec::with_capacity(count);
        for _ in 0..count {
            let entry = input.bytes32().ok_or_else(|| malformed("device chain"))?;
            device_chain.push(DeviceEntry::decode(entry).map_err(|_| malformed("device entry"))?);
        }
        if !input.bytes.is_empty() {
            return Err(malformed("trailing bytes"));
        }
        Ok(Keystore {
            identity,
            key_bundle,
            device_cert,
            local_box,
            device_chain,
        })
    }

    /// Reads a keystore file.
    pub fn load(path: &Path) -> Result<Keystore> {
        let bytes = std::fs::read(path).map_err(|error| {
            Error::Config(format!(
                "cannot read the keystore {} ({error}); create an account first, or copy the \
                 keystore from another device",
                path.display()
            ))
        })?;
        Keystore::decode(&bytes)
    }

    /// Writes the keystore atomically, mode `0600`.
    pub fn save(&self, path: &Path) -> Result<()> {
        write_atomic(path, &self.encode())
    }
}

fn put_bytes32(out: &mut Vec<u8>, field: &[u8]) {
    // Invariant: every field is an encoded structure far below 4 GiB (checked on decode).
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

/// A bounds-checked reader over untrusted bytes.
struct Input<'a> {
    bytes: &'a [u8],
}

impl<'a> Input<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < len {
            return None;
        }
        let (head, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes: [u8; 4] = self.take(4)?.try_into().ok()?;
        Some(u32::from_be_bytes(bytes))
    }

    fn bytes32(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        if len > MAX_FIELD {
            return None;
        }
        self.take(len)
    }
}
