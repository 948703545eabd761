//! Key and identifier types: public values and secret values are different types.
//!
//! Secret types zeroize on drop, are neither `Copy` nor `Clone`-by-accident of a derive on a parent,
//! print as `<redacted>` in `Debug`, compare in constant time, and have no `Serialize`. Public
//! identifiers (hashes, ids, public keys) are plain values that print in hex.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

/// Fills `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|_| Error::Randomness)?;
    Ok(bytes)
}

pub(crate) fn fmt_hex(bytes: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    bytes.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
}

/// Declares a public 32-byte value: hashes and identifiers the gateway may see.
macro_rules! public_bytes32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 bytes.
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// The raw bytes.
            pub const fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }

            /// Lower-case hex, 64 characters.
            pub fn to_hex(&self) -> String {
                self.to_string()
            }

            /// Parses 64 hex characters (either case).
            pub fn from_hex(text: &str) -> crate::error::Result<Self> {
                crate::keys::parse_hex32(text).map($name)
            }
        }

        impl ::core::fmt::Display for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                crate::keys::fmt_hex(&self.0, f)
            }
        }

        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                crate::keys::fmt_hex(&self.0, f)?;
                write!(f, ")")
            }
        }
    };
}

/// Declares a secret 32-byte key: zeroized on drop, redacted in `Debug`, constant-time equality.
macro_rules! secret_bytes32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Zeroize, ZeroizeOnDrop)]
        pub struct $name([u8; 32]);

        impl $name {
            /// Wraps 32 secret bytes (the caller should zeroize its own copy).
            pub const fn from_bytes(bytes: [u8; 32]) -> Self {
                $name(bytes)
            }

            /// 32 fresh bytes from the operating system's CSPRNG.
            pub fn generate() -> Result<Self> {
                crate::keys::random_bytes().map($name)
            }

            /// The secret bytes. Named so that every use is visible in review.
            pub const fn expose_secret(&self) -> &[u8; 32] {
                &self.0
            }

            /// An explicit copy (there is deliberately no `Clone` derive on containers).
            pub fn duplicate(&self) -> Self {
                $name(self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(<redacted>)", stringify!($name))
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.ct_eq(&other.0).into()
            }
        }

        impl Eq for $name {}
    };
}
/// Lets other modules declare their own public 32-byte ids.
pub(crate) use public_bytes32;

pub(crate) fn parse_hex32(text: &str) -> Result<[u8; 32]> {
    let text = text.as_bytes();
    if text.len() != 64 {
        return Err(Error::InvalidInput("expected 64 hex characters"));
    }
    let mut out = [0u8; 32];
    for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(Error::InvalidInput("expected 64 hex characters")),
        };
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(out)
}

public_bytes32!(
    /// A blob's id: `H(envelope)` (FORMAT.md section 4). The gateway checks it on upload and read.
    BlobId
);
public_bytes32!(
    /// A space's id: `H(genesis membership entry)` (FORMAT.md section 9).
    SpaceId
);
public_bytes32!(
    /// `H(entry)` of a membership-log entry.
    EntryHash
);
public_bytes32!(
    /// `H(commit)` of a signed commit.
    CommitHash
);
public_bytes32!(
    /// A key commitment: `KDF(CTX_CAEAD_COMMIT, K)` or an epoch-key commitment.
    KeyCommitment
);

secret_bytes32!(
    /// The key of one blob envelope. Invariant: it seals exactly one plaintext.
    BlobKey
);
secret_bytes32!(
    /// A space's key for one epoch (FORMAT.md section 9). Everything per-space derives from it.
    EpochKey
);
secret_bytes32!(
    /// A purpose-specific symmetric key derived with a context string (FORMAT.md section 2).
    DerivedKey
);

/// An Ed25519 public key (identity or device), parsed: a valid, non-weak curve point.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SignPublicKey(ed25519_dalek::VerifyingKey);

impl SignPublicKey {
    /// Parses a public key, refusing encodings that are not curve points and small-order
    /// ("weak") keys, which would let one signature verify for many messages.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        let key = ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map_err(|_| Error::malformed("signing public key", "not a curve point"))?;
        if key.is_weak() {
            return Err(Error::malformed("signing public key", "small-order point"));
        }
        Ok(SignPublicKey(key))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// Verifies `signature` over `domain ‖ 0x00 ‖ message` with strict (non-malleable) rules.
    /// Every failure is [`Error::Authentication`].
    pub fn verify(&self, domain: &str, message: &[u8], signature: &[u8; 64]) -> Result<()> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        let signed = domain_separated(domain, message);
        self.0
            .verify_strict(&signed, &signature)
            .map_err(|_| Error::Authentication)
    }
}

impl PartialOrd for SignPublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<core::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SignPublicKey {
    fn cmp(&self, other: &Self) -> core::cmp::Ordering {
        self.0.as_bytes().cmp(other.0.as_bytes())
    }
}

impl core::hash::Hash for SignPublicKey {
    fn hash<H: core::hash::Hasher>(&self, state: &mut H) {
        self.0.as_bytes().hash(state);
    }
}

impl fmt::Debug for SignPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignPublicKey(")?;
        fmt_hex(self.0.as_bytes(), f)?;
        write!(f, ")")
    }
}

/// An Ed25519 signing key (identity or device). Zeroized on drop by `ed25519-dalek`.
pub struct SigningSecret(ed25519_dalek::SigningKey);

impl SigningSecret {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut seed = random_bytes::<32>()?;
        let key = SigningSecret::from_seed(&seed);
        seed.zeroize();
        Ok(key)
    }

    /// The key for a 32-byte Ed25519 seed.
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningSecret(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed. Named so that every use is visible in review.
    pub fn expose_secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> SignPublicKey {
        SignPublicKey(self.0.verifying_key())
    }

    /// Signs `domain ‖ 0x00 ‖ message`.
    pub fn sign(&self, domain: &str, message: &[u8]) -> [u8; 64] {
        use ed25519_dalek::Signer;
        self.0.sign(&domain_separated(domain, message)).to_bytes()
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SigningSecret(<redacted>, public: {:?})",
            self.public_key()
        )
    }
}

fn domain_separated(domain: &str, message: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(domain.len() + 1 + message.len());
    signed.extend_from_slice(domain.as_bytes());
    signed.push(0);
    signed.extend_from_slice(message);
    signed
}

/// An X25519 public key, parsed: never a low-order point (on the curve or its twist), so a
/// Diffie-Hellman with it always depends on our secret (FORMAT.md section 9.2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncPublicKey(x25519_dalek::PublicKey);

/// Any clamped scalar is a multiple of 8, so it sends exactly the points of order dividing 8 (the
/// low-order points of the curve and of its twist) to zero. Public by design.
const LOW_ORDER_PROBE_SCALAR: [u8; 32] = [0x5a; 32];

impl EncPublicKey {
    /// Parses a public key and refuses low-order points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        if x25519_dalek::x25519(LOW_ORDER_PROBE_SCALAR, *bytes) == [0u8; 32] {
            return Err(Error::malformed("encryption public key", "low-order point"));
        }
        Ok(EncPublicKey(x25519_dalek::PublicKey::from(*bytes)))
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }
}

impl fmt::Debug for EncPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncPublicKey(")?;
        fmt_hex(self.0.as_bytes(), f)?;
        write!(f, ")")
    }
}

/// An X25519 secret key. Zeroized on drop by `x25519-dalek`.
pub struct EncSecret(x25519_dalek::StaticSecret);

impl EncSecret {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut bytes = random_bytes::<32>()?;
        let key = EncSecret::from_bytes(bytes);
        bytes.zeroize();
        Ok(key)
    }

    /// The key for 32 secret bytes (clamped by X25519).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        EncSecret(x25519_dalek::StaticSecret::from(bytes))
    }

    /// The secret bytes. Named so that every use is visible in review.
    pub fn expose_secret(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> EncPublicKey {
        EncPublicKey(x25519_dalek::PublicKey::from(&self.0))
    }
}

impl fmt::Debug for EncSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncSecret(<redacted>, public: {:?})", self.public_key())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_in_debug() {
        let key = BlobKey::from_bytes([0xab; 32]);
        let shown = format!("{key:?}");
        assert_eq!(shown, "BlobKey(<redacted>)");
        let signing = SigningSecret::from_seed(&[7; 32]);
        assert!(!format!("{signing:?}").contains("0707"));
        let enc = EncSecret::from_bytes([9; 32]);
        assert!(!format!("{enc:?}").contains("0909"));
    }

    #[test]
    fn public_ids_round_trip_through_hex() {
        let id = BlobId::from_bytes([0x1f; 32]);
        assert_eq!(BlobId::from_hex(&id.to_hex()).unwrap(), id);
        assert_eq!(BlobId::from_hex(&id.to_hex().to_uppercase()).unwrap(), id);
        assert!(BlobId::from_hex("zz").is_err());
        assert!(BlobId::from_hex(&"g".repeat(64)).is_err());
    }

    #[test]
    fn signatures_are_domain_separated() {
        let key = SigningSecret::from_seed(&[3; 32]);
        let signature = key.sign("domain a", b"message");
        key.public_key()
            .verify("domain a", b"message", &signature)
            .unwrap();
        assert!(matches!(
            key.public_key().verify("domain b", b"message", &signature),
            Err(Error::Authentication)
        ));
        assert!(
            key.public_key()
                .verify("domain a", b"messagf", &signature)
                .is_err()
        );
    }

    #[test]
    fn low_order_x25519_points_are_refused() {
        // Order-1, order-2, order-4/8 points and a non-canonical encoding of zero.
        let low_order: [[u8; 32]; 4] = [
            [0; 32],
            {
                let mut one = [0u8; 32];
                one[0] = 1;
                one
            },
            parse_hex32("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
                .unwrap(),
            parse_hex32("5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157")
                .unwrap(),
        ];
        for point in low_order {
            assert!(EncPublicKey::from_bytes(&point).is_err(), "{point:02x?}");
        }
        let honest = EncSecret::from_bytes([42; 32]).public_key();
        assert!(EncPublicKey::from_bytes(&honest.to_bytes()).is_ok());
    }

    #[test]
    fn weak_ed25519_keys_are_refused() {
        // The identity point encodes as 1 followed by zeros: small order.
        let mut identity_point = [0u8; 32];
        identity_point[0] = 1;
        assert!(SignPublicKey::from_bytes(&identity_point).is_err());
    }
}
