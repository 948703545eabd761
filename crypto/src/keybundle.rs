//! Key bundles `CFKB`: identity secrets sealed for storage (FORMAT.md section 8.4).
//!
//! ```text
//! "CFKB" ‖ 0x01 ‖ wrap_kind (u8) [‖ m_cost_kib (u32) ‖ t_cost (u32) ‖ p_cost (u32) ‖ salt (16)]
//!        ‖ sealed_box(KDF(CTX_KEY_BUNDLE, wrapping_secret), A = all bytes above,
//!                     P = identity_sign_secret (32) ‖ identity_enc_secret (32))
//! ```
//!
//! Invariants and threats:
//!
//! - the wrap kind and the Argon2id parameters are in the AAD, so a gateway cannot lower them
//!   without breaking the box **[T-downgrade]**; and [`KeyBundle::decode`] refuses parameters
//!   outside `Argon2Params::MIN..=MAX` *before* any stretching, so a hostile bundle can neither make
//!   guessing cheap **[T-offline-guess]** nor exhaust the client's memory;
//! - the box is exactly [`BOX_LEN`] bytes; unknown wrap kinds, other lengths and trailing bytes are
//!   [`Error::Malformed`] (all public facts, so not an oracle);
//! - a wrong passphrase or secret, and any tampering that still decodes, is the one opaque
//!   [`Error::Authentication`] **[T-oracle]**; the committing AEAD rules out a bundle that opens
//!   under two passphrases **[T-non-committing]**;
//! - the sealed identity secrets only ever exist in zeroizing buffers ([`IdentitySecretBytes`]).

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::caead::{SEALED_BOX_OVERHEAD, sealed_box_open, sealed_box_seal};
use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kdf::{CTX_KEY_BUNDLE, derive};
use crate::keys::{DerivedKey, EncSecret, SigningSecret, random_bytes};
use crate::passphrase::{Argon2Params, Passphrase, SALT_LEN, stretch};

/// Magic of a key bundle. **Format-fixed.**
pub const MAGIC: &[u8; 4] = b"CFKB";
/// `wrap_kind` of a passphrase (Argon2id) bundle. **Format-fixed.**
pub const WRAP_PASSPHRASE: u8 = 0x01;
/// `wrap_kind` of an OPAQUE export-key bundle. **Format-fixed.**
pub const WRAP_OPAQUE_EXPORT: u8 = 0x02;
/// `wrap_kind` of a recovery-phrase bundle. **Format-fixed.**
pub const WRAP_RECOVERY: u8 = 0x03;
/// Length of the sealed plaintext: signing seed ‖ encryption secret. **Format-fixed.**
pub const PLAINTEXT_LEN: usize = 64;
/// Length of the box: nonce, commitment, ciphertext and tag. **Format-fixed.**
pub const BOX_LEN: usize = SEALED_BOX_OVERHEAD + PLAINTEXT_LEN;

const WHAT: &str = "key bundle";

/// The identity's secret keys as sealed in a bundle: Ed25519 seed and X25519 secret.
/// Zeroized on drop, redacted in `Debug`, constant-time equality, never `Clone`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct IdentitySecretBytes {
    sign: [u8; 32],
    enc: [u8; 32],
}

impl IdentitySecretBytes {
    /// Copies the two identity secret keys.
    pub fn from_keys(sign: &SigningSecret, enc: &EncSecret) -> Self {
        IdentitySecretBytes {
            sign: sign.expose_secret(),
            enc: enc.expose_secret(),
        }
    }

    /// Rebuilds the two identity secret keys.
    pub fn into_keys(self) -> (SigningSecret, EncSecret) {
        (
            SigningSecret::from_seed(&self.sign),
            EncSecret::from_bytes(self.enc),
        )
    }

    /// The Ed25519 seed. Named so that every use is visible in review.
    pub const fn expose_sign_seed(&self) -> &[u8; 32] {
        &self.sign
    }

    /// The X25519 secret. Named so that every use is visible in review.
    pub const fn expose_enc_secret(&self) -> &[u8; 32] {
        &self.enc
    }

    fn to_plaintext(&self) -> Zeroizing<[u8; PLAINTEXT_LEN]> {
        let mut plaintext = Zeroizing::new([0u8; PLAINTEXT_LEN]);
        plaintext[..32].copy_from_slice(&self.sign);
        plaintext[32..].copy_from_slice(&self.enc);
        plaintext
    }

    fn from_plaintext(plaintext: &[u8]) -> Result<Self> {
        if plaintext.len() != PLAINTEXT_LEN {
            // Unreachable for an authentic box of BOX_LEN bytes; still opaque.
            return Err(Error::Authentication);
        }
        let mut secrets = IdentitySecretBytes {
            sign: [0; 32],
            enc: [0; 32],
        };
        secrets.sign.copy_from_slice(&plaintext[..32]);
        secrets.enc.copy_from_slice(&plaintext[32..]);
        Ok(secrets)
    }
}

impl fmt::Debug for IdentitySecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("IdentitySecretBytes(<redacted>)")
    }
}

impl PartialEq for IdentitySecretBytes {
    fn eq(&self, other: &Self) -> bool {
        (self.sign.ct_eq(&other.sign) & self.enc.ct_eq(&other.enc)).into()
    }
}

impl Eq for IdentitySecretBytes {}

/// How a bundle's `wrapping_secret` is obtained: the `wrap_kind` and its parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapKind {
    /// `0x01`: Argon2id of a passphrase.
    Passphrase {
        /// Cost parameters (always within bounds).
        params: Argon2Params,
        /// Random salt (public).
        salt: [u8; SALT_LEN],
    },
    /// `0x02`: the OPAQUE export key.
    OpaqueExport,
    /// `0x03`: `KDF(CTX_RECOVERY, entropy)` of a recovery phrase.
    Recovery,
}

/// The wrap kinds whose wrapping secret is a ready 32-byte key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecretWrap {
    /// `0x02`: the OPAQUE export key.
    OpaqueExport,
    /// `0x03`: a recovery phrase's [`wrapping_secret`](crate::recovery::RecoveryPhrase::wrapping_secret).
    Recovery,
}

/// A decoded (or freshly sealed) key bundle. Holds only public bytes: header and ciphertext.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyBundle {
    wrap: WrapKind,
    sealed: Vec<u8>,
}

impl KeyBundle {
    /// Seals `secrets` under Argon2id of `passphrase` with a fresh random salt.
    ///
    /// Refuses an empty passphrase ([`Error::InvalidInput`]).
    pub fn seal_with_passphrase(
        secrets: &IdentitySecretBytes,
        passphrase: &Passphrase,
        params: Argon2Params,
    ) -> Result<Self> {
        if passphrase.is_empty() {
            return Err(Error::InvalidInput("empty passphrase"));
        }
        let salt = random_bytes::<SALT_LEN>()?;
        let wrapping_secret = stretch(passphrase, &salt, params)?;
        Self::seal(
            WrapKind::Passphrase { params, salt },
            &wrapping_secret,
            secrets,
        )
    }

    /// Seals `secrets` under a ready wrapping secret (OPAQUE export key or recovery secret).
    pub fn seal_with_secret(
        kind: SecretWrap,
        wrapping_secret: &DerivedKey,
        secrets: &IdentitySecretBytes,
    ) -> Result<Self> {
        let wrap = match kind {
            SecretWrap::OpaqueExport => WrapKind::OpaqueExport,
            SecretWrap::Recovery => WrapKind::Recovery,
        };
        Self::seal(wrap, wrapping_secret, secrets)
    }

    /// The wrapping secret of an OPAQUE export key (64 bytes in `opaque-ke`):
    /// `KDF(CTX_OPAQUE_EXPORT, export_key)` (FORMAT.md section 8.4).
    pub fn opaque_wrapping_secret(export_key: &[u8]) -> DerivedKey {
        derive(crate::kdf::CTX_OPAQUE_EXPORT, export_key)
    }

    fn seal(
        wrap: WrapKind,
        wrapping_secret: &DerivedKey,
        secrets: &IdentitySecretBytes,
    ) -> Result<Self> {
        let key = derive(CTX_KEY_BUNDLE, wrapping_secret.expose_secret());
        let sealed = sealed_box_seal(&key, &header(&wrap), secrets.to_plaintext().as_slice())?;
        Ok(KeyBundle { wrap, sealed })
    }

    /// Opens a passphrase bundle. A wrong passphrase is [`Error::Authentication`]; a bundle of
    /// another wrap kind is [`Error::InvalidInput`] (the kind is public).
    pub fn open_with_passphrase(&self, passphrase: &Passphrase) -> Result<IdentitySecretBytes> {
        let WrapKind::Passphrase { params, salt } = self.wrap else {
            return Err(Error::InvalidInput(
                "key bundle is not wrapped with a passphrase",
            ));
        };
        self.open(&stretch(passphrase, &salt, params)?)
    }

    /// Opens an OPAQUE-export or recovery bundle. A wrong secret is [`Error::Authentication`]; a
    /// passphrase bundle is [`Error::InvalidInput`].
    pub fn open_with_secret(&self, wrapping_secret: &DerivedKey) -> Result<IdentitySecretBytes> {
        if matches!(self.wrap, WrapKind::Passphrase { .. }) {
            return Err(Error::InvalidInput(
                "key bundle is wrapped with a passphrase",
            ));
        }
        self.open(wrapping_secret)
    }

    fn open(&self, wrapping_secret: &DerivedKey) -> Result<IdentitySecretBytes> {
        let key = derive(CTX_KEY_BUNDLE, wrapping_secret.expose_secret());
        let plaintext = Zeroizing::new(sealed_box_open(&key, &header(&self.wrap), &self.sealed)?);
        IdentitySecretBytes::from_plaintext(&plaintext)
    }

    /// The wrap kind and its parameters.
    pub const fn wrap_kind(&self) -> &WrapKind {
        &self.wrap
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = header(&self.wrap);
        bytes.extend_from_slice(&self.sealed);
        bytes
    }

    /// Decodes untrusted bytes. Every failure is [`Error::Malformed`], including Argon2id
    /// parameters outside `MIN..=MAX` (checked here, before anything is stretched).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, MAGIC, WHAT)?;
        let wrap = match reader.u8()? {
            WRAP_PASSPHRASE => {
                let (m, t, p) = (reader.u32()?, reader.u32()?, reader.u32()?);
                let salt = reader.array::<SALT_LEN>()?;
                let params = Argon2Params::new(m, t, p)
                    .map_err(|_| reader.error("Argon2id parameters out of bounds"))?;
                WrapKind::Passphrase { params, salt }
            }
            WRAP_OPAQUE_EXPORT => WrapKind::OpaqueExport,
            WRAP_RECOVERY => WrapKind::Recovery,
            _ => return Err(reader.error("unknown wrap kind")),
        };
        let sealed = reader.take(BOX_LEN)?.to_vec();
        reader.finish()?;
        Ok(KeyBundle { wrap, sealed })
    }
}

/// `"CFKB" ‖ 0x01 ‖ wrap_kind [‖ params ‖ salt]`: the AAD of the box.
fn header(wrap: &WrapKind) -> Vec<u8> {
    let mut writer = Writer::with_header(MAGIC);
    match wrap {
        WrapKind::Passphrase { params, salt } => {
            writer.u8(WRAP_PASSPHRASE);
            writer.u32(params.m_cost_kib());
            writer.u32(params.t_cost());
            writer.u32(params.p_cost());
            writer.raw(salt);
        }
        WrapKind::OpaqueExport => writer.u8(WRAP_OPAQUE_EXPORT),
        WrapKind::Recovery => writer.u8(WRAP_RECOVERY),
    }
    writer.into_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> IdentitySecretBytes {
        IdentitySecretBytes::from_keys(
            &SigningSecret::from_seed(&[1; 32]),
            &EncSecret::from_bytes([2; 32]),
        )
    }

    fn passphrase(text: &str) -> Passphrase {
        Passphrase::from(text.to_owned())
    }

    #[test]
    fn passphrase_round_trip_and_wrong_passphrase() {
        let bundle =
            KeyBundle::seal_with_passphrase(&secrets(), &passphrase("pw"), Argon2Params::MIN)
                .unwrap();
        let bytes = bundle.encode();
        assert_eq!(bytes.len(), 5 + 1 + 12 + SALT_LEN + BOX_LEN);
        let decoded = KeyBundle::decode(&bytes).unwrap();
        assert_eq!(decoded, bundle);
        let opened = decoded.open_with_passphrase(&passphrase("pw")).unwrap();
        assert_eq!(opened, secrets());
        let (sign, enc) = opened.into_keys();
        assert_eq!(sign.expose_secret(), [1; 32]);
        assert_eq!(enc.expose_secret(), [2; 32]);
        assert!(matches!(
            decoded.open_with_passphrase(&passphrase("pW")),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            decoded.open_with_secret(&DerivedKey::from_bytes([0; 32])),
            Err(Error::InvalidInput(_))
        ));
        assert!(matches!(
            KeyBundle::seal_with_passphrase(&secrets(), &passphrase(""), Argon2Params::MIN),
            Err(Error::InvalidInput(_))
        ));
    }

    #[test]
    fn every_bit_flip_of_a_secret_bundle_is_refused() {
        let secret = DerivedKey::from_bytes([9; 32]);
        for kind in [SecretWrap::OpaqueExport, SecretWrap::Recovery] {
            let bytes = KeyBundle::seal_with_secret(kind, &secret, &secrets())
                .unwrap()
                .encode();
            assert_eq!(bytes.len(), 6 + BOX_LEN);
            let opened = KeyBundle::decode(&bytes).unwrap().open_with_secret(&secret);
            assert_eq!(opened.unwrap(), secrets());
            for bit in 0..bytes.len() * 8 {
                let mut flipped = bytes.clone();
                flipped[bit / 8] ^= 1 << (bit % 8);
                let result = KeyBundle::decode(&flipped).and_then(|b| b.open_with_secret(&secret));
                match result {
                    Err(Error::Malformed { .. }) => assert!(bit < 48, "bit {bit}"),
                    Err(Error::Authentication) => assert!(bit >= 40, "bit {bit}"),
                    other => panic!("bit {bit}: {other:?}"),
                }
            }
            for len in 0..bytes.len() {
                assert!(KeyBundle::decode(&bytes[..len]).is_err());
            }
            let mut trailing = bytes.clone();
            trailing.push(0);
            assert!(matches!(
                KeyBundle::decode(&trailing),
                Err(Error::Malformed { .. })
            ));
        }
    }

    #[test]
    fn out_of_bounds_params_are_refused_before_stretching() {
        let bundle =
            KeyBundle::seal_with_passphrase(&secrets(), &passphrase("pw"), Argon2Params::MIN)
                .unwrap();
        let bytes = bundle.encode();
        // m_cost_kib is bytes 6..10, t_cost 10..14, p_cost 14..18.
        for (offset, value) in [
            (6, 19_455u32),
            (6, 1_048_577),
            (10, 1),
            (10, 17),
            (14, 0),
            (14, 5),
            (6, u32::MAX),
        ] {
            let mut tampered = bytes.clone();
            tampered[offset..offset + 4].copy_from_slice(&value.to_be_bytes());
            assert!(matches!(
                KeyBundle::decode(&tampered),
                Err(Error::Malformed { .. })
            ));
        }
        let mut raised = bytes.clone();
        raised[13] = 3; // t_cost 2 -> 3: decodes, but the AAD no longer matches.
        let raised = KeyBundle::decode(&raised).unwrap();
        assert!(matches!(
            raised.open_with_passphrase(&passphrase("pw")),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn secrets_are_redacted() {
        assert_eq!(
            format!("{:?}", secrets()),
            "IdentitySecretBytes(<redacted>)"
        );
    }
}
