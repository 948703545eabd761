//! Hashing, key derivation and the format-fixed context strings of `docs/FORMAT.md` section 2.
//!
//! Every derived key has its own context string: one key, one purpose.

use zeroize::Zeroizing;

use crate::keys::{DerivedKey, EpochKey, SpaceId};

/// `KDF` context: the encryption subkey of the committing AEAD. **Format-fixed.**
pub const CTX_CAEAD_KEY: &str = "coffre v1 caead encryption key";
/// `KDF` context: the key commitment of the committing AEAD. **Format-fixed.**
pub const CTX_CAEAD_COMMIT: &str = "coffre v1 caead key commitment";
/// `KDF` context: the deterministic nonce of a blob envelope. **Format-fixed.**
pub const CTX_ENVELOPE_NONCE: &str = "coffre v1 envelope nonce";
/// `KDF` context: the per-space, per-epoch convergence key for chunk keys. **Format-fixed.**
pub const CTX_CONVERGENCE: &str = "coffre v1 chunk convergence key";
/// `KDF` context: the per-space, per-epoch FastCDC gear seed. **Format-fixed.**
pub const CTX_CHUNKER_SEED: &str = "coffre v1 chunker seed";
/// `KDF` context: the key sealing a commit's root reference. **Format-fixed.**
pub const CTX_COMMIT_ROOT: &str = "coffre v1 commit root key";
/// `KDF` context: the key sealing the previous epoch key on rotation. **Format-fixed.**
pub const CTX_EPOCH_CHAIN: &str = "coffre v1 epoch chain key";
/// `KDF` context: the public commitment to an epoch key. **Format-fixed.**
pub const CTX_EPOCH_COMMIT: &str = "coffre v1 epoch key commitment";
/// `KDF` context: the key sealing a key bundle. **Format-fixed.**
pub const CTX_KEY_BUNDLE: &str = "coffre v1 key bundle key";
/// `KDF` context: the wrapping secret derived from a recovery phrase. **Format-fixed.**
pub const CTX_RECOVERY: &str = "coffre v1 recovery key";
/// `KDF` context: the wrapping secret derived from an OPAQUE export key. **Format-fixed.**
pub const CTX_OPAQUE_EXPORT: &str = "coffre v1 opaque export key";
/// `KDF` context: identity fingerprints. **Format-fixed.**
pub const CTX_FINGERPRINT: &str = "coffre v1 fingerprint";
/// `KDF` context: the key sealing a device's local keystore (FORMAT.md section 8.6). **Format-fixed.**
pub const CTX_LOCAL_KEYSTORE: &str = "coffre v1 local keystore key";

/// Signature domain: identity self-signature. **Format-fixed.**
pub const SIG_IDENTITY: &str = "coffre v1 identity self-signature";
/// Signature domain: device-chain entries. **Format-fixed.**
pub const SIG_DEVICE: &str = "coffre v1 device certificate";
/// Signature domain: membership-log entries. **Format-fixed.**
pub const SIG_MEMBERSHIP: &str = "coffre v1 membership entry";
/// Signature domain: commits. **Format-fixed.**
pub const SIG_COMMIT: &str = "coffre v1 commit";
/// Signature domain: invitations. **Format-fixed.**
pub const SIG_INVITATION: &str = "coffre v1 invitation";

/// HPKE `info` for epoch-key wraps. **Format-fixed.**
pub const HPKE_INFO_EPOCH_WRAP: &str = "coffre v1 epoch key wrap";
/// HPKE `info` for invitations. **Format-fixed.**
pub const HPKE_INFO_INVITATION: &str = "coffre v1 invitation";

/// `H(x)`: plain BLAKE3-256.
pub fn hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// `KDF(ctx, material)`: BLAKE3 `derive_key`.
pub fn derive(context: &str, material: &[u8]) -> DerivedKey {
    DerivedKey::from_bytes(blake3::derive_key(context, material))
}

/// `MAC(key, input)`: BLAKE3 `keyed_hash`.
pub fn mac(key: &DerivedKey, input: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(key.expose_secret(), input).as_bytes()
}

/// `EPOCH(space_id, epoch, EK)`: the 72-byte key material of FORMAT.md section 2.1.
pub fn epoch_material(space: &SpaceId, epoch: u64, key: &EpochKey) -> Zeroizing<[u8; 72]> {
    let mut material = Zeroizing::new([0u8; 72]);
    material[..32].copy_from_slice(space.as_bytes());
    material[32..40].copy_from_slice(&epoch.to_be_bytes());
    material[40..].copy_from_slice(key.expose_secret());
    material
}

/// `KDF(ctx, EPOCH(space_id, epoch, EK))`.
pub fn derive_epoch(context: &str, space: &SpaceId, epoch: u64, key: &EpochKey) -> DerivedKey {
    derive(context, epoch_material(space, epoch, key).as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_are_distinct() {
        let contexts = [
            CTX_CAEAD_KEY,
            CTX_CAEAD_COMMIT,
            CTX_ENVELOPE_NONCE,
            CTX_CONVERGENCE,
            CTX_CHUNKER_SEED,
            CTX_COMMIT_ROOT,
            CTX_EPOCH_CHAIN,
            CTX_EPOCH_COMMIT,
            CTX_KEY_BUNDLE,
            CTX_RECOVERY,
            CTX_OPAQUE_EXPORT,
            CTX_FINGERPRINT,
            CTX_LOCAL_KEYSTORE,
        ];
        let unique: std::collections::BTreeSet<_> = contexts.iter().collect();
        assert_eq!(unique.len(), contexts.len());
        let keys: std::collections::BTreeSet<_> = contexts
            .iter()
            .map(|ctx| *derive(ctx, b"same material").expose_secret())
            .collect();
        assert_eq!(keys.len(), contexts.len(), "one key per purpose");
    }

    #[test]
    fn epoch_material_layout() {
        let material = epoch_material(
            &SpaceId::from_bytes([1; 32]),
            0x0203,
            &EpochKey::from_bytes([4; 32]),
        );
        assert_eq!(&material[..32], &[1; 32]);
        assert_eq!(&material[32..40], &[0, 0, 0, 0, 0, 0, 2, 3]);
        assert_eq!(&material[40..], &[4; 32]);
    }
}
