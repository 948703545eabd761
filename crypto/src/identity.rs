//! Identities `CFID`, fingerprints and safety numbers (FORMAT.md sections 8.1, 8.3).
//!
//! An [`Identity`] is a user's public half: handle, Ed25519 signing key, X25519 encryption key, bound
//! together by a self-signature so that a gateway cannot pair a user's signing key with an encryption
//! key of its own choosing, nor move an identity to another handle **[T-unauth-keys]**
//! **[T-key-substitution]**. An `Identity` value only exists once its self-signature has verified
//! (parse, don't validate).
//!
//! Fingerprints and safety numbers are what two people compare out of band.

use core::fmt;

use crate::codec::{Reader, Writer};
use crate::error::{Error, Result};
use crate::kdf::{CTX_FINGERPRINT, SIG_IDENTITY, derive};
use crate::keys::{EncPublicKey, EncSecret, SignPublicKey, SigningSecret};

/// Magic of an identity. **Format-fixed.**
pub const MAGIC_IDENTITY: &[u8; 4] = b"CFID";
/// Longest handle in bytes. **Format-fixed.**
pub const MAX_HANDLE_LEN: usize = 64;

/// A user's handle: 1..=64 bytes of `[a-z0-9._-]`, starting with a letter or digit.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Handle(String);

impl Handle {
    /// Parses a handle. Upper-case input is refused rather than folded, so that one handle has
    /// exactly one spelling in signed data.
    pub fn parse(text: &str) -> Result<Self> {
        let bytes = text.as_bytes();
        let valid = !bytes.is_empty()
            && bytes.len() <= MAX_HANDLE_LEN
            && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
            && bytes.iter().all(|&c| {
                c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'.' | b'_' | b'-')
            });
        if !valid {
            return Err(Error::InvalidInput(
                "a handle is 1 to 64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            ));
        }
        Ok(Handle(text.to_owned()))
    }

    /// The handle as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Handle({:?})", self.0)
    }
}

/// A verified identity: its self-signature has been checked.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    handle: Handle,
    sign_key: SignPublicKey,
    enc_key: EncPublicKey,
    created_ms: u64,
    encoded: Vec<u8>,
}

impl Identity {
    /// Decodes and verifies an identity from untrusted bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, MAGIC_IDENTITY, "identity")?;
        let handle = reader.str16(MAX_HANDLE_LEN)?;
        let handle = Handle::parse(handle).map_err(|_| reader.error("invalid handle"))?;
        let sign_key = SignPublicKey::from_bytes(&reader.b32()?)?;
        let enc_key = EncPublicKey::from_bytes(&reader.b32()?)?;
        let created_ms = reader.u64()?;
        let signed = reader.consumed();
        let signature = reader.array::<64>()?;
        reader.finish()?;
        sign_key.verify(SIG_IDENTITY, signed, &signature)?;
        Ok(Identity {
            handle,
            sign_key,
            enc_key,
            created_ms,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding, self-signature included.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The user's handle.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// The Ed25519 identity key: certifies devices and identifies the user in spaces.
    pub fn sign_key(&self) -> &SignPublicKey {
        &self.sign_key
    }

    /// The X25519 key that epoch keys and invitations are sealed to.
    pub fn enc_key(&self) -> &EncPublicKey {
        &self.enc_key
    }

    /// Creation time, milliseconds since the Unix epoch, as the user's device claimed it.
    pub fn created_ms(&self) -> u64 {
        self.created_ms
    }

    /// `KDF(CTX_FINGERPRINT, sign_key ‖ enc_key)`.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut material = [0u8; 64];
        material[..32].copy_from_slice(&self.sign_key.to_bytes());
        material[32..].copy_from_slice(&self.enc_key.to_bytes());
        Fingerprint(*derive(CTX_FINGERPRINT, &material).expose_secret())
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Identity")
            .field("handle", &self.handle)
            .field("sign_key", &self.sign_key)
            .field("enc_key", &self.enc_key)
            .field("created_ms", &self.created_ms)
            .finish()
    }
}

/// A user's identity secrets: the Ed25519 signing key and the X25519 decryption key.
pub struct IdentitySecret {
    sign: SigningSecret,
    enc: EncSecret,
}

impl IdentitySecret {
    /// Fresh keys from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        Ok(IdentitySecret {
            sign: SigningSecret::generate()?,
            enc: EncSecret::generate()?,
        })
    }

    /// Reassembles secrets (e.g. opened from a key bundle).
    pub fn from_parts(sign: SigningSecret, enc: EncSecret) -> Self {
        IdentitySecret { sign, enc }
    }

    /// The signing half.
    pub fn sign_secret(&self) -> &SigningSecret {
        &self.sign
    }

    /// The decryption half.
    pub fn enc_secret(&self) -> &EncSecret {
        &self.enc
    }

    /// Builds and self-signs the public identity for `handle`.
    pub fn certify(&self, handle: &Handle, created_ms: u64) -> Result<Identity> {
        let mut writer = Writer::with_header(MAGIC_IDENTITY);
        writer.str16(handle.as_str(), MAX_HANDLE_LEN)?;
        writer.raw(&self.sign.public_key().to_bytes());
        writer.raw(&self.enc.public_key().to_bytes());
        writer.u64(created_ms);
        let signature = self.sign.sign(SIG_IDENTITY, writer.as_slice());
        writer.raw(&signature);
        Identity::decode(&writer.into_vec())
    }
}

impl fmt::Debug for IdentitySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "IdentitySecret(<redacted>, public: {:?})",
            self.sign.public_key()
        )
    }
}

/// An identity fingerprint (FORMAT.md section 8.3). Public: safe to show and log.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// 30 decimal digits: six groups of five, each a 5-byte big-endian integer mod 100 000.
    pub fn digits(&self) -> String {
        self.0[..30]
            .chunks_exact(5)
            .map(|group| {
                let value = group
                    .iter()
                    .fold(0u64, |acc, &byte| acc << 8 | u64::from(byte));
                format!("{:05}", value % 100_000)
            })
            .collect()
    }

    /// The digits in groups of five separated by spaces, for people to read aloud.
    pub fn display_groups(&self) -> String {
        group_digits(&self.digits())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.digits())
    }
}

fn group_digits(digits: &str) -> String {
    digits
        .as_bytes()
        .chunks(5)
        .map(|group| String::from_utf8_lossy(group).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The 60-digit safety number of two users: the same on both sides (FORMAT.md section 8.3).
pub fn safety_number(a: &Identity, b: &Identity) -> String {
    let (first, second) = {
        let (a, b) = (a.fingerprint().digits(), b.fingerprint().digits());
        if a <= b { (a, b) } else { (b, a) }
    };
    group_digits(&(first + &second))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> (IdentitySecret, Identity) {
        let secret = IdentitySecret::from_parts(
            SigningSecret::from_seed(&[1; 32]),
            EncSecret::from_bytes([2; 32]),
        );
        let identity = secret
            .certify(&Handle::parse("alice").unwrap(), 1_700_000_000_000)
            .unwrap();
        (secret, identity)
    }

    #[test]
    fn handles_follow_the_rules() {
        for good in ["a", "alice", "bob.smith", "x_1-2", "0day", &"a".repeat(64)] {
            assert!(Handle::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "Alice", "-a", ".a", "a/b", "a b", "é", &"a".repeat(65)] {
            assert!(Handle::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn identity_round_trips_and_every_bit_flip_is_refused() {
        let (_, identity) = alice();
        assert_eq!(Identity::decode(identity.encoded()).unwrap(), identity);
        let bytes = identity.encoded();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(Identity::decode(&flipped).is_err(), "bit {bit}");
        }
        for len in 0..bytes.len() {
            assert!(Identity::decode(&bytes[..len]).is_err());
        }
        let mut trailing = bytes.to_vec();
        trailing.push(0);
        assert!(Identity::decode(&trailing).is_err());
    }

    #[test]
    fn substituted_encryption_key_is_refused() {
        let (_, identity) = alice();
        let mallory = EncSecret::from_bytes([66; 32]).public_key();
        let mut forged = identity.encoded().to_vec();
        let offset = 5 + 2 + "alice".len() + 32;
        forged[offset..offset + 32].copy_from_slice(&mallory.to_bytes());
        assert!(matches!(
            Identity::decode(&forged),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn fingerprints_and_safety_numbers() {
        let (_, alice) = alice();
        let bob = IdentitySecret::from_parts(
            SigningSecret::from_seed(&[3; 32]),
            EncSecret::from_bytes([4; 32]),
        )
        .certify(&Handle::parse("bob").unwrap(), 0)
        .unwrap();
        let digits = alice.fingerprint().digits();
        assert_eq!(digits.len(), 30);
        assert!(digits.bytes().all(|c| c.is_ascii_digit()));
        assert_ne!(alice.fingerprint(), bob.fingerprint());
        let number = safety_number(&alice, &bob);
        assert_eq!(number, safety_number(&bob, &alice), "symmetric");
        assert_eq!(number.replace(' ', "").len(), 60);
        assert_eq!(alice.fingerprint().display_groups().len(), 30 + 5);
    }
}
