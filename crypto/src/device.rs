//! Device chains and device certificates `CFDV` (FORMAT.md section 8.2).
//!
//! A user's devices are listed in a hash chain of entries signed by the user's identity key. The
//! `add` entry of a device is its **certificate**: commits and membership entries carry it so that
//! a device signature can be traced to an identity without asking the gateway **[T-ghost]**.
//!
//! [`DeviceChain::verify`] checks a whole chain; [`DeviceChain::extend`] checks that a newer copy of
//! a chain the client already pinned only appends to it (a gateway cannot rewrite device history).

use std::collections::BTreeSet;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kdf::{SIG_DEVICE, hash};
use crate::keys::{SignPublicKey, SigningSecret, public_bytes32};

/// Magic of a device-chain entry. **Format-fixed.**
pub const MAGIC_DEVICE: &[u8; 4] = b"CFDV";
/// Encoded length of every device-chain entry: header, fields and signature. **Format-fixed.**
pub const DEVICE_ENTRY_LEN: usize = 5 + 32 + 8 + 32 + 1 + 32 + 8 + 64;

public_bytes32!(
    /// `H(entry)` of a device-chain entry.
    DeviceEntryHash
);

/// What a device-chain entry does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeviceAction {
    /// Certifies a new device key.
    Add,
    /// Withdraws a previously added device key, for good.
    Revoke,
}

impl DeviceAction {
    fn to_byte(self) -> u8 {
        match self {
            DeviceAction::Add => 0x01,
            DeviceAction::Revoke => 0x02,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(DeviceAction::Add),
            0x02 => Some(DeviceAction::Revoke),
            _ => None,
        }
    }
}

/// One verified device-chain entry: its signature under `identity_key` has been checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceEntry {
    identity_key: SignPublicKey,
    seq: u64,
    prev_hash: DeviceEntryHash,
    action: DeviceAction,
    device_key: SignPublicKey,
    created_ms: u64,
    encoded: Vec<u8>,
}

impl DeviceEntry {
    /// Builds and signs an entry with the identity secret.
    pub fn sign(
        identity: &SigningSecret,
        seq: u64,
        prev_hash: DeviceEntryHash,
        action: DeviceAction,
        device_key: &SignPublicKey,
        created_ms: u64,
    ) -> Result<Self> {
        let mut writer = Writer::with_header(MAGIC_DEVICE);
        writer.raw(&identity.public_key().to_bytes());
        writer.u64(seq);
        writer.raw(prev_hash.as_bytes());
        writer.u8(action.to_byte());
        writer.raw(&device_key.to_bytes());
        writer.u64(created_ms);
        let signature = identity.sign(SIG_DEVICE, writer.as_slice());
        writer.raw(&signature);
        DeviceEntry::decode(&writer.into_vec())
    }

    /// Decodes an entry from untrusted bytes and verifies its signature.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, MAGIC_DEVICE, "device entry")?;
        let identity_key = SignPublicKey::from_bytes(&reader.b32()?)?;
        let seq = reader.u64()?;
        let prev_hash = DeviceEntryHash::from_bytes(reader.b32()?);
        let action =
            DeviceAction::from_byte(reader.u8()?).ok_or_else(|| reader.error("unknown action"))?;
        let device_key = SignPublicKey::from_bytes(&reader.b32()?)?;
        let created_ms = reader.u64()?;
        let signed = reader.consumed();
        let signature = reader.array::<64>()?;
        reader.finish()?;
        if (seq == 0) != (prev_hash == DeviceEntryHash::from_bytes([0; 32])) {
            return Err(Error::malformed(
                "device entry",
                "prev_hash is zero iff seq is 0",
            ));
        }
        identity_key.verify(SIG_DEVICE, signed, &signature)?;
        Ok(DeviceEntry {
            identity_key,
            seq,
            prev_hash,
            action,
            device_key,
            created_ms,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding, signature included.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// `H(entry)`.
    pub fn hash(&self) -> DeviceEntryHash {
        DeviceEntryHash::from_bytes(hash(&self.encoded))
    }

    /// The identity key that signed the entry.
    pub fn identity_key(&self) -> &SignPublicKey {
        &self.identity_key
    }

    /// Position in the chain, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `H(previous entry)`, zero for the first.
    pub fn prev_hash(&self) -> &DeviceEntryHash {
        &self.prev_hash
    }

    /// Add or revoke.
    pub fn action(&self) -> DeviceAction {
        self.action
    }

    /// The device key added or revoked.
    pub fn device_key(&self) -> &SignPublicKey {
        &self.device_key
    }

    /// Creation time claimed by the signer, milliseconds since the Unix epoch.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }
}

/// A device certificate: the verified `add` entry of one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceCertificate(DeviceEntry);

impl DeviceCertificate {
    /// Decodes and verifies a certificate; refuses `revoke` entries.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        DeviceCertificate::try_from(DeviceEntry::decode(bytes)?)
    }

    /// The certified device key.
    pub fn device_key(&self) -> &SignPublicKey {
        &self.0.device_key
    }

    /// The identity key that certified it.
    pub fn identity_key(&self) -> &SignPublicKey {
        &self.0.identity_key
    }

    /// The underlying chain entry.
    pub fn entry(&self) -> &DeviceEntry {
        &self.0
    }

    /// The canonical encoding.
    pub fn encoded(&self) -> &[u8] {
        &self.0.encoded
    }
}

impl TryFrom<DeviceEntry> for DeviceCertificate {
    type Error = Error;

    fn try_from(entry: DeviceEntry) -> Result<Self> {
        match entry.action {
            DeviceAction::Add => Ok(DeviceCertificate(entry)),
            DeviceAction::Revoke => Err(Error::malformed(
                "device certificate",
                "a revoke entry is not a certificate",
            )),
        }
    }
}

/// A device's signing secret together with its certificate: what a device needs to sign
/// membership entries, commits and invitations that verify on their own **[T-ghost]**.
///
/// Invariant: the secret is the one of the certified device key.
pub struct DeviceSigner {
    certificate: DeviceCertificate,
    secret: SigningSecret,
}

impl DeviceSigner {
    /// Pairs a certificate with the device's secret; fails if they do not match.
    pub fn new(certificate: DeviceCertificate, secret: SigningSecret) -> Result<Self> {
        if secret.public_key() != *certificate.device_key() {
            return Err(Error::InvalidInput(
                "the device secret does not match the device certificate",
            ));
        }
        Ok(DeviceSigner {
            certificate,
            secret,
        })
    }

    /// The device certificate.
    pub fn certificate(&self) -> &DeviceCertificate {
        &self.certificate
    }

    /// The identity key that certified the device.
    pub fn identity_key(&self) -> &SignPublicKey {
        self.certificate.identity_key()
    }

    /// The device key.
    pub fn device_key(&self) -> &SignPublicKey {
        self.certificate.device_key()
    }

    /// Signs `domain ‖ 0x00 ‖ message` with the device key.
    pub fn sign(&self, domain: &str, message: &[u8]) -> [u8; 64] {
        self.secret.sign(domain, message)
    }
}

impl core::fmt::Debug for DeviceSigner {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeviceSigner")
            .field("identity_key", self.identity_key())
            .field("device_key", self.device_key())
            .finish_non_exhaustive()
    }
}

/// A verified device chain: which devices of one identity are active now.
#[derive(Clone, Debug)]
pub struct DeviceChain {
    identity_key: SignPublicKey,
    entries: Vec<DeviceEntry>,
    active: BTreeSet<SignPublicKey>,
    ever_added: BTreeSet<SignPublicKey>,
}

const CHAIN: &str = "device chain";

impl DeviceChain {
    /// Verifies a whole chain from its first entry.
    pub fn verify(identity_key: &SignPublicKey, entries: &[DeviceEntry]) -> Result<Self> {
        if entries.is_empty() {
            return Err(Error::integrity(
                CHAIN,
                "a device chain has at least one entry",
            ));
        }
        let mut chain = DeviceChain {
            identity_key: *identity_key,
            entries: Vec::with_capacity(entries.len()),
            active: BTreeSet::new(),
            ever_added: BTreeSet::new(),
        };
        chain.extend(entries)?;
        Ok(chain)
    }

    /// Appends newer entries, checking each links to the previous one. A chain that does not
    /// extend what the caller has already verified (a rewrite or a fork) is refused.
    pub fn extend(&mut self, newer: &[DeviceEntry]) -> Result<()> {
        for entry in newer {
            self.apply(entry)?;
        }
        Ok(())
    }

    fn apply(&mut self, entry: &DeviceEntry) -> Result<()> {
        if entry.identity_key != self.identity_key {
            return Err(Error::integrity(CHAIN, "entry signed by another identity"));
        }
        let (expected_seq, expected_prev) = match self.entries.last() {
            None => (0, DeviceEntryHash::from_bytes([0; 32])),
            Some(last) => (last.seq + 1, last.hash()),
        };
        if entry.seq != expected_seq || entry.prev_hash != expected_prev {
            return Err(Error::integrity(CHAIN, "entry does not extend the chain"));
        }
        match entry.action {
            DeviceAction::Add => {
                if !self.ever_added.insert(entry.device_key) {
                    return Err(Error::integrity(CHAIN, "device key added twice"));
                }
                self.active.insert(entry.device_key);
            }
            DeviceAction::Revoke => {
                if entry.seq == 0 || !self.active.remove(&entry.device_key) {
                    return Err(Error::integrity(
                        CHAIN,
                        "revokes a device that is not active",
                    ));
                }
            }
        }
        self.entries.push(entry.clone());
        Ok(())
    }

    /// The identity the chain belongs to.
    pub fn identity_key(&self) -> &SignPublicKey {
        &self.identity_key
    }

    /// The verified entries, in order.
    pub fn entries(&self) -> &[DeviceEntry] {
        &self.entries
    }

    /// Whether `device` is certified and not revoked.
    pub fn is_active(&self, device: &SignPublicKey) -> bool {
        self.active.contains(device)
    }

    /// The active device keys.
    pub fn active_devices(&self) -> impl Iterator<Item = &SignPublicKey> {
        self.active.iter()
    }

    /// `H(last entry)`: what a client pins.
    pub fn head_hash(&self) -> DeviceEntryHash {
        // Invariant: `verify` refuses empty chains and `extend` only appends.
        self.entries
            .last()
            .map(DeviceEntry::hash)
            .unwrap_or(DeviceEntryHash::from_bytes([0; 32]))
    }

    /// Signs the next entry of this chain (the caller then publishes it).
    pub fn next_entry(
        &self,
        identity: &SigningSecret,
        action: DeviceAction,
        device_key: &SignPublicKey,
        created_ms: u64,
    ) -> Result<DeviceEntry> {
        let seq = self.entries.last().map_or(0, |last| last.seq + 1);
        DeviceEntry::sign(
            identity,
            seq,
            self.head_hash(),
            action,
            device_key,
            created_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> SigningSecret {
        SigningSecret::from_seed(&[9; 32])
    }

    fn device(seed: u8) -> SignPublicKey {
        SigningSecret::from_seed(&[seed; 32]).public_key()
    }

    fn first(identity: &SigningSecret) -> DeviceEntry {
        DeviceEntry::sign(
            identity,
            0,
            DeviceEntryHash::from_bytes([0; 32]),
            DeviceAction::Add,
            &device(1),
            5,
        )
        .unwrap()
    }

    #[test]
    fn chain_of_adds_and_revokes() {
        let id = identity();
        let mut chain = DeviceChain::verify(&id.public_key(), &[first(&id)]).unwrap();
        let add = chain
            .next_entry(&id, DeviceAction::Add, &device(2), 6)
            .unwrap();
        chain.extend(std::slice::from_ref(&add)).unwrap();
        let revoke = chain
            .next_entry(&id, DeviceAction::Revoke, &device(1), 7)
            .unwrap();
        chain.extend(std::slice::from_ref(&revoke)).unwrap();
        assert!(!chain.is_active(&device(1)));
        assert!(chain.is_active(&device(2)));
        assert_eq!(chain.entries().len(), 3);
        assert_eq!(DeviceEntry::decode(add.encoded()).unwrap(), add);
        assert_eq!(add.encoded().len(), DEVICE_ENTRY_LEN);
        assert!(DeviceCertificate::decode(revoke.encoded()).is_err());
        assert_eq!(
            DeviceCertificate::decode(add.encoded())
                .unwrap()
                .device_key(),
            &device(2)
        );
    }

    #[test]
    fn chain_rules_are_enforced() {
        let id = identity();
        let chain = DeviceChain::verify(&id.public_key(), &[first(&id)]).unwrap();
        // A revoked key cannot come back; re-adding an active key is refused.
        let again = chain
            .next_entry(&id, DeviceAction::Add, &device(1), 6)
            .unwrap();
        assert!(chain.clone().extend(&[again]).is_err());
        // Revoking an unknown device is refused.
        let unknown = chain
            .next_entry(&id, DeviceAction::Revoke, &device(3), 6)
            .unwrap();
        assert!(chain.clone().extend(&[unknown]).is_err());
        // Entries signed by another identity, or that skip or fork, are refused.
        let other = SigningSecret::from_seed(&[10; 32]);
        let foreign = chain
            .next_entry(&other, DeviceAction::Add, &device(4), 6)
            .unwrap();
        assert!(chain.clone().extend(&[foreign]).is_err());
        let gap =
            DeviceEntry::sign(&id, 2, chain.head_hash(), DeviceAction::Add, &device(4), 6).unwrap();
        assert!(chain.clone().extend(&[gap]).is_err());
        let fork = DeviceEntry::sign(
            &id,
            1,
            DeviceEntryHash::from_bytes([1; 32]),
            DeviceAction::Add,
            &device(4),
            6,
        )
        .unwrap();
        assert!(chain.clone().extend(&[fork]).is_err());
        assert!(DeviceChain::verify(&id.public_key(), &[]).is_err());
    }

    #[test]
    fn every_bit_flip_is_refused() {
        let entry = first(&identity());
        let bytes = entry.encoded();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(DeviceEntry::decode(&flipped).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(DeviceEntry::decode(&bytes[..len]).is_err());
        }
    }
}
