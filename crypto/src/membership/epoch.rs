//! Epoch keys: wraps to members, commitments, and the chain back to older epochs (FORMAT.md
//! sections 9.2 and 9.3).
//!
//! - A wrap is HPKE to the member's identity encryption key with an AAD that names the space, the
//!   epoch and that encryption key, so it cannot be replayed into another space, epoch or
//!   recipient; the opened key must match the entry's public `epoch_commitment`, so an admin
//!   cannot give different members different keys unnoticed **[T-unauth-keys]**.
//! - `prev_epoch_seal` seals the previous key under a key derived from the new one: whoever holds
//!   the newest key can walk back through all history, and a removed member, who never receives
//!   the new key, cannot walk forward **[T-revocation]**.

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::entry::{MAGIC_MEMBERSHIP, MembershipEntry, Wrap};
use crate::caead::{sealed_box_open, sealed_box_seal};
use crate::codec::FORMAT_VERSION;
use crate::error::{Error, Result};
use crate::hpke;
use crate::identity::{Identity, IdentitySecret};
use crate::kdf::{CTX_EPOCH_CHAIN, CTX_EPOCH_COMMIT, HPKE_INFO_EPOCH_WRAP, derive_epoch};
use crate::keys::{EncPublicKey, EpochKey, KeyCommitment, SpaceId};

/// `KDF(CTX_EPOCH_COMMIT, EPOCH(space_id, epoch, EK))`: the public commitment to an epoch key.
pub fn epoch_commitment(space: &SpaceId, epoch: u64, key: &EpochKey) -> KeyCommitment {
    KeyCommitment::from_bytes(*derive_epoch(CTX_EPOCH_COMMIT, space, epoch, key).expose_secret())
}

/// `"CFML" ‖ 0x01 ‖ space_id ‖ epoch ‖ recipient enc_key`.
fn wrap_aad(space: &SpaceId, epoch: u64, recipient: &EncPublicKey) -> [u8; 77] {
    let mut aad = [0u8; 77];
    aad[..4].copy_from_slice(MAGIC_MEMBERSHIP);
    aad[4] = FORMAT_VERSION;
    aad[5..37].copy_from_slice(space.as_bytes());
    aad[37..45].copy_from_slice(&epoch.to_be_bytes());
    aad[45..].copy_from_slice(&recipient.to_bytes());
    aad
}

/// `space_id ‖ epoch`: the AAD of `prev_epoch_seal` (with the *new* epoch).
fn seal_aad(space: &SpaceId, epoch: u64) -> [u8; 40] {
    let mut aad = [0u8; 40];
    aad[..32].copy_from_slice(space.as_bytes());
    aad[32..].copy_from_slice(&epoch.to_be_bytes());
    aad
}

/// Wraps `key` (of `epoch` in `space`) for `recipient`.
pub(super) fn wrap_epoch_key(
    space: &SpaceId,
    epoch: u64,
    key: &EpochKey,
    recipient: &Identity,
) -> Result<Wrap> {
    let sealed = hpke::seal(
        recipient.enc_key(),
        HPKE_INFO_EPOCH_WRAP,
        &wrap_aad(space, epoch, recipient.enc_key()),
        key.expose_secret(),
    )?;
    Ok(Wrap::from_parts(*recipient.sign_key(), sealed))
}

/// Seals `previous` (the key of `new_epoch − 1`) under `new_key`.
pub(super) fn seal_previous_key(
    space: &SpaceId,
    new_epoch: u64,
    new_key: &EpochKey,
    previous: &EpochKey,
) -> Result<Vec<u8>> {
    let chain_key = derive_epoch(CTX_EPOCH_CHAIN, space, new_epoch, new_key);
    sealed_box_seal(
        &chain_key,
        &seal_aad(space, new_epoch),
        previous.expose_secret(),
    )
}

fn key_from_plaintext(plaintext: &[u8]) -> Result<EpochKey> {
    let bytes: Zeroizing<[u8; 32]> =
        Zeroizing::new(plaintext.try_into().map_err(|_| Error::Authentication)?);
    Ok(EpochKey::from_bytes(*bytes))
}

/// Whether `key` is the epoch key that `commitment` commits to (constant time).
pub fn key_matches(
    space: &SpaceId,
    epoch: u64,
    key: &EpochKey,
    commitment: &KeyCommitment,
) -> bool {
    epoch_commitment(space, epoch, key)
        .as_bytes()
        .ct_eq(commitment.as_bytes())
        .into()
}

impl MembershipEntry {
    /// Opens this entry's wrap for `identity` and checks the key against `epoch_commitment`.
    ///
    /// Every failure (no wrap for this identity, a wrap that does not open, a key that does not
    /// match the commitment) is [`Error::Authentication`].
    pub fn open_epoch_key(&self, identity: &IdentitySecret) -> Result<EpochKey> {
        let me = identity.sign_secret().public_key();
        let wrap = self.wrap_for(&me).ok_or(Error::Authentication)?;
        let enc_key = identity.enc_secret().public_key();
        let plaintext = hpke::open(
            identity.enc_secret(),
            HPKE_INFO_EPOCH_WRAP,
            &wrap_aad(&self.space_id, self.epoch, &enc_key),
            &wrap.sealed().enc,
            &wrap.sealed().ciphertext,
        )?;
        let key = key_from_plaintext(&plaintext)?;
        if !key_matches(&self.space_id, self.epoch, &key, &self.epoch_commitment) {
            return Err(Error::Authentication);
        }
        Ok(key)
    }

    /// Given this entry's epoch key, opens `prev_epoch_seal` and returns the key of the epoch
    /// before. The result is checked against the log's commitment by
    /// [`super::MembershipLog::epoch_key`]; here, `key` is checked against this entry's.
    pub fn previous_epoch_key(&self, key: &EpochKey) -> Result<EpochKey> {
        if !key_matches(&self.space_id, self.epoch, key, &self.epoch_commitment) {
            return Err(Error::Authentication);
        }
        let seal = self.prev_epoch_seal().ok_or(Error::Authentication)?;
        let chain_key = derive_epoch(CTX_EPOCH_CHAIN, &self.space_id, self.epoch, key);
        let plaintext = Zeroizing::new(sealed_box_open(
            &chain_key,
            &seal_aad(&self.space_id, self.epoch),
            seal,
        )?);
        key_from_plaintext(&plaintext)
    }
}
