//! The 24-word recovery phrase (FORMAT.md section 8.5).
//!
//! A [`RecoveryPhrase`] is 32 bytes of OS randomness, shown once to the user as a 24-word BIP39
//! English mnemonic (the last word carries the 8-bit BIP39 checksum). Its
//! [`wrapping_secret`](RecoveryPhrase::wrapping_secret) `KDF(CTX_RECOVERY, entropy)` seals a
//! `wrap_kind = 0x03` key bundle; deriving it under its own context keeps the entropy itself out of
//! every other construction **[T-key-reuse]**. 256 bits of entropy need no stretching
//! **[T-offline-guess]**.
//!
//! Invariants: the entropy zeroizes on drop, prints as `<redacted>`, and is never `Clone`;
//! rendered words live in a [`Zeroizing`] string. [`RecoveryPhrase::parse`] accepts exactly 24
//! words (any case, any whitespace between them) and verifies the checksum; a typo is a typed
//! [`Error::Malformed`], never a wrong key. The checksum is public information, so its failure is
//! not an oracle.

use core::fmt;

use bip39::{Language, Mnemonic};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::error::{Error, Result};
use crate::kdf::{CTX_RECOVERY, derive};
use crate::keys::{DerivedKey, random_bytes};

/// Bytes of entropy in a recovery phrase. **Format-fixed.**
pub const ENTROPY_LEN: usize = 32;
/// Words in a recovery phrase. **Format-fixed.**
pub const WORD_COUNT: usize = 24;

const WHAT: &str = "recovery phrase";

/// A recovery phrase: 32 bytes of entropy. Zeroized on drop, redacted in `Debug`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryPhrase {
    entropy: [u8; ENTROPY_LEN],
}

impl RecoveryPhrase {
    /// A fresh phrase from the operating system's CSPRNG.
    pub fn generate() -> Result<Self> {
        random_bytes().map(|entropy| RecoveryPhrase { entropy })
    }

    /// The phrase for given entropy (test vectors, or entropy the caller drew itself).
    pub const fn from_entropy(entropy: [u8; ENTROPY_LEN]) -> Self {
        RecoveryPhrase { entropy }
    }

    /// The entropy. Named so that every use is visible in review.
    pub const fn expose_secret(&self) -> &[u8; ENTROPY_LEN] {
        &self.entropy
    }

    /// The 24 lower-case BIP39 English words, separated by single spaces.
    pub fn to_words(&self) -> Zeroizing<String> {
        // Invariant: 32 bytes is a valid BIP39 entropy length, so this cannot fail.
        #[allow(clippy::expect_used)]
        let mnemonic = Mnemonic::from_entropy_in(Language::English, &self.entropy)
            .expect("32 bytes is a valid BIP39 entropy length");
        // Longest English word is 8 letters: reserve once so the buffer is never reallocated
        // (a reallocation would leave an unzeroized copy behind).
        let mut words = Zeroizing::new(String::with_capacity(WORD_COUNT * 9));
        for (index, word) in mnemonic.words().enumerate() {
            if index > 0 {
                words.push(' ');
            }
            words.push_str(word);
        }
        words
    }

    /// Parses 24 words: case-insensitive, any whitespace between words, checksum verified.
    ///
    /// Errors are [`Error::Malformed`] with reason `"expected 24 words"`, `"unknown word"` or
    /// `"checksum mismatch"`.
    pub fn parse(text: &str) -> Result<Self> {
        let normalized = Zeroizing::new(text.to_lowercase());
        if normalized.split_whitespace().count() != WORD_COUNT {
            return Err(Error::malformed(WHAT, "expected 24 words"));
        }
        let mnemonic =
            Mnemonic::parse_in_normalized(Language::English, &normalized).map_err(|error| {
                match error {
                    bip39::Error::UnknownWord(_) => Error::malformed(WHAT, "unknown word"),
                    bip39::Error::InvalidChecksum => Error::malformed(WHAT, "checksum mismatch"),
                    _ => Error::malformed(WHAT, "not a BIP39 mnemonic"),
                }
            })?;
        let (mut array, len) = mnemonic.to_entropy_array();
        let result = match array
            .get(..len)
            .and_then(|e| <[u8; ENTROPY_LEN]>::try_from(e).ok())
        {
            Some(entropy) => Ok(RecoveryPhrase { entropy }),
            None => Err(Error::malformed(WHAT, "expected 24 words")),
        };
        array.zeroize();
        result
    }

    /// `KDF(CTX_RECOVERY, entropy)`: the wrapping secret of a recovery key bundle.
    pub fn wrapping_secret(&self) -> DerivedKey {
        derive(CTX_RECOVERY, &self.entropy)
    }
}

impl fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryPhrase(<redacted>)")
    }
}

impl PartialEq for RecoveryPhrase {
    fn eq(&self, other: &Self) -> bool {
        self.entropy.ct_eq(&other.entropy).into()
    }
}

impl Eq for RecoveryPhrase {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_with_sloppy_input() {
        let phrase = RecoveryPhrase::generate().unwrap();
        let words = phrase.to_words();
        assert_eq!(words.split(' ').count(), WORD_COUNT);
        assert_eq!(RecoveryPhrase::parse(&words).unwrap(), phrase);
        let sloppy = format!("  {}\n", words.to_uppercase().replace(' ', " \t "));
        assert_eq!(RecoveryPhrase::parse(&sloppy).unwrap(), phrase);
        assert_eq!(
            RecoveryPhrase::parse(&sloppy).unwrap().wrapping_secret(),
            phrase.wrapping_secret()
        );
    }

    #[test]
    fn known_bip39_vector() {
        // BIP39 reference vector (Trezor) for 32 bytes of 0x00.
        let phrase = RecoveryPhrase::from_entropy([0; 32]);
        let expected = format!("{}art", "abandon ".repeat(23));
        assert_eq!(phrase.to_words().as_str(), expected);
    }

    #[test]
    fn typos_are_typed_errors() {
        let words = RecoveryPhrase::from_entropy([7; 32]).to_words();
        let list: Vec<&str> = words.split(' ').collect();
        let reason = |text: &str| match RecoveryPhrase::parse(text) {
            Err(Error::Malformed { reason, .. }) => reason,
            other => panic!("{other:?}"),
        };
        assert_eq!(reason(&list[..23].join(" ")), "expected 24 words");
        assert_eq!(reason(""), "expected 24 words");
        let mut unknown = list.clone();
        unknown[5] = "coffre";
        assert_eq!(reason(&unknown.join(" ")), "unknown word");
        let mut swapped = list.clone();
        swapped.swap(0, 1);
        if swapped != list {
            assert_eq!(reason(&swapped.join(" ")), "checksum mismatch");
        }
        assert_eq!(
            format!("{:?}", RecoveryPhrase::from_entropy([7; 32])),
            "RecoveryPhrase(<redacted>)"
        );
    }
}
