//! HPKE (RFC 9180) base-mode sealing to X25519 keys (FORMAT.md sections 9.2, 9.4).
//!
//! One fixed suite, no negotiation **[T-downgrade]**: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256,
//! ChaCha20-Poly1305 (suite ids `0x0020` / `0x0001` / `0x0003`), base mode, single shot. Callers
//! pass a format-fixed `info` string (`kdf::HPKE_INFO_*`) and an AAD that binds the ciphertext to
//! its context (space, epoch, recipient key), so a wrap cannot be moved elsewhere
//! **[T-unauth-keys]**.
//!
//! Invariants:
//!
//! - recipients are [`EncPublicKey`]s, which are never low-order points; the encapsulated key `enc`
//!   of a received ciphertext is checked the same way, and the `hpke` crate refuses an all-zero
//!   shared secret, so every shared secret depends on the recipient's secret key;
//! - every failure to open is the one opaque [`Error::Authentication`] **[T-oracle]**;
//! - the ephemeral key comes from the operating system through [`random_bytes`]: if the OS cannot
//!   give randomness the caller gets [`Error::Randomness`], never a panic inside the `hpke` crate;
//! - private-key bytes handed to the `hpke` crate are zeroized temporaries; the opened plaintext is
//!   returned in a [`Zeroizing`] buffer.

use core::convert::Infallible;
use core::fmt;

use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::keys::{EncPublicKey, EncSecret, random_bytes};

type Kem = hpke::kem::X25519HkdfSha256;
type Kdf = hpke::kdf::HkdfSha256;
type Aead = hpke::aead::ChaCha20Poly1305;

/// Length of the encapsulated key `enc` of the suite (an X25519 public key). **Format-fixed.**
pub const ENC_LEN: usize = 32;
/// Bytes HPKE adds to a plaintext: the ChaCha20-Poly1305 tag. **Format-fixed.**
pub const TAG_LEN: usize = 16;

/// An HPKE ciphertext: the encapsulated ephemeral key and the AEAD ciphertext (with its tag).
#[derive(Clone, PartialEq, Eq)]
pub struct HpkeSealed {
    /// The sender's ephemeral X25519 public key.
    pub enc: [u8; ENC_LEN],
    /// The ChaCha20-Poly1305 ciphertext, tag included (`plaintext length + TAG_LEN` bytes).
    pub ciphertext: Vec<u8>,
}

impl fmt::Debug for HpkeSealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkeSealed {{ enc: ")?;
        crate::keys::fmt_hex(&self.enc, f)?;
        write!(f, ", ciphertext: {} bytes }}", self.ciphertext.len())
    }
}

/// Seals `plaintext` to `recipient` in HPKE base mode, with the given `info` and `aad`.
pub fn seal(
    recipient: &EncPublicKey,
    info: &str,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<HpkeSealed> {
    let recipient = <Kem as hpke::Kem>::PublicKey::from_bytes(&recipient.to_bytes())
        // Invariant: every 32-byte string is an X25519 public key for the `hpke` crate.
        .map_err(|_| Error::InvalidInput("not an X25519 public key"))?;
    let mut rng = OsSeededRng::new()?;
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<Aead, Kdf, Kem>(
        &OpModeS::Base,
        &recipient,
        info.as_bytes(),
        plaintext,
        aad,
        &mut rng,
    )
    // Fails only on an all-zero shared secret, which a non-low-order recipient rules out, or on
    // a plaintext beyond ChaCha20-Poly1305's limit.
    .map_err(|_| Error::InvalidInput("HPKE sealing failed"))?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok(HpkeSealed {
        enc: enc_bytes,
        ciphertext,
    })
}

/// Opens an HPKE base-mode ciphertext with the recipient's secret key. Every failure, including a
/// low-order `enc`, is [`Error::Authentication`].
pub fn open(
    recipient: &EncSecret,
    info: &str,
    aad: &[u8],
    enc: &[u8; ENC_LEN],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>> {
    EncPublicKey::from_bytes(enc).map_err(|_| Error::Authentication)?;
    let encapped =
        <Kem as hpke::Kem>::EncappedKey::from_bytes(enc).map_err(|_| Error::Authentication)?;
    let secret_bytes = Zeroizing::new(recipient.expose_secret());
    // The `hpke` private key wraps an `x25519_dalek::StaticSecret`, zeroized on drop.
    let secret = <Kem as hpke::Kem>::PrivateKey::from_bytes(secret_bytes.as_slice())
        .map_err(|_| Error::Authentication)?;
    hpke::single_shot_open::<Aead, Kdf, Kem>(
        &OpModeR::Base,
        &secret,
        &encapped,
        info.as_bytes(),
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| Error::Authentication)
}

/// The recipient public key matching a secret, in the `hpke` crate's terms (test helper).
#[cfg(test)]
fn hpke_public(secret: &EncSecret) -> [u8; 32] {
    let bytes = Zeroizing::new(secret.expose_secret());
    match <Kem as hpke::Kem>::PrivateKey::from_bytes(bytes.as_slice()) {
        Ok(sk) => {
            let mut out = [0u8; 32];
            out.copy_from_slice(&<Kem as hpke::Kem>::sk_to_pk(&sk).to_bytes());
            out
        }
        Err(_) => [0; 32],
    }
}

/// A CSPRNG for the `hpke` crate's ephemeral key: BLAKE3 in keyed mode over a counter, keyed by 32
/// bytes drawn from the OS up front. Drawing up front is what lets [`seal`] report
/// [`Error::Randomness`] instead of panicking inside the `hpke` crate.
struct OsSeededRng {
    seed: Zeroizing<[u8; 32]>,
    counter: u64,
}

impl OsSeededRng {
    fn new() -> Result<Self> {
        Ok(OsSeededRng {
            seed: Zeroizing::new(random_bytes::<32>()?),
            counter: 0,
        })
    }
}

impl TryRng for OsSeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(32) {
            let block = Zeroizing::new(
                *blake3::keyed_hash(&self.seed, &self.counter.to_be_bytes()).as_bytes(),
            );
            self.counter = self.counter.wrapping_add(1);
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for OsSeededRng {}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipient() -> EncSecret {
        EncSecret::from_bytes([7; 32])
    }

    #[test]
    fn round_trip_and_binding_to_info_aad_and_key() {
        let secret = recipient();
        assert_eq!(hpke_public(&secret), secret.public_key().to_bytes());
        let sealed = seal(&secret.public_key(), "info", b"aad", b"epoch key bytes").unwrap();
        assert_eq!(sealed.ciphertext.len(), 15 + TAG_LEN);
        let opened = open(&secret, "info", b"aad", &sealed.enc, &sealed.ciphertext).unwrap();
        assert_eq!(opened.as_slice(), b"epoch key bytes");

        let fails = |result: Result<Zeroizing<Vec<u8>>>| {
            assert!(matches!(result, Err(Error::Authentication)));
        };
        fails(open(
            &secret,
            "inf0",
            b"aad",
            &sealed.enc,
            &sealed.ciphertext,
        ));
        fails(open(
            &secret,
            "info",
            b"aaD",
            &sealed.enc,
            &sealed.ciphertext,
        ));
        fails(open(
            &EncSecret::from_bytes([8; 32]),
            "info",
            b"aad",
            &sealed.enc,
            &sealed.ciphertext,
        ));
        for bit in 0..(ENC_LEN + sealed.ciphertext.len()) * 8 {
            let mut enc = sealed.enc;
            let mut ct = sealed.ciphertext.clone();
            if bit < ENC_LEN * 8 {
                enc[bit / 8] ^= 1 << (bit % 8);
            } else {
                let bit = bit - ENC_LEN * 8;
                ct[bit / 8] ^= 1 << (bit % 8);
            }
            fails(open(&secret, "info", b"aad", &enc, &ct));
        }
        for len in 0..sealed.ciphertext.len() {
            fails(open(
                &secret,
                "info",
                b"aad",
                &sealed.enc,
                &sealed.ciphertext[..len],
            ));
        }
    }

    #[test]
    fn fresh_ephemeral_key_every_time() {
        let public = recipient().public_key();
        let a = seal(&public, "i", b"", b"same").unwrap();
        let b = seal(&public, "i", b"", b"same").unwrap();
        assert_ne!(a.enc, b.enc);
        assert_ne!(a.ciphertext, b.ciphertext);
    }

    #[test]
    fn low_order_enc_is_refused() {
        let mut one = [0u8; 32];
        one[0] = 1;
        for enc in [[0u8; 32], one] {
            assert!(matches!(
                open(&recipient(), "i", b"", &enc, &[0; 32]),
                Err(Error::Authentication)
            ));
        }
    }
}
