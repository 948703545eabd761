//! The committing AEAD of `docs/FORMAT.md` section 3, and the sealed box built on it.
//!
//! Threat answered: non-committing AEAD (a ciphertext that opens under two keys, as in the
//! "invisible salamanders" and MEGA attacks). The commitment `KDF(CTX_CAEAD_COMMIT, K)` is checked in
//! constant time *before* any decryption, and every failure is the one opaque
//! [`Error::Authentication`].

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::kdf::{CTX_CAEAD_COMMIT, CTX_CAEAD_KEY, derive};
use crate::keys::{DerivedKey, random_bytes};

/// Length of the key commitment in front of every CAEAD ciphertext. **Format-fixed.**
pub const COMMITMENT_LEN: usize = 32;
/// Length of the Poly1305 tag. **Format-fixed.**
pub const TAG_LEN: usize = 16;
/// Length of an XChaCha20 nonce. **Format-fixed.**
pub const NONCE_LEN: usize = 24;
/// Bytes a CAEAD adds to a plaintext: commitment and tag.
pub const CAEAD_OVERHEAD: usize = COMMITMENT_LEN + TAG_LEN;
/// Bytes a sealed box adds to a plaintext: nonce, commitment and tag.
pub const SEALED_BOX_OVERHEAD: usize = NONCE_LEN + CAEAD_OVERHEAD;

fn cipher(key: &DerivedKey) -> XChaCha20Poly1305 {
    let enc_key = derive(CTX_CAEAD_KEY, key.expose_secret());
    XChaCha20Poly1305::new(enc_key.expose_secret().into())
}

/// The key commitment `KDF(CTX_CAEAD_COMMIT, K)`.
pub(crate) fn commitment(key: &DerivedKey) -> [u8; 32] {
    *derive(CTX_CAEAD_COMMIT, key.expose_secret()).expose_secret()
}

/// `seal(K, N, A, P)`: appends `commitment ‖ ciphertext ‖ tag` to `out`.
///
/// Invariant the caller keeps: `(key, nonce)` is never used for two different plaintexts.
pub(crate) fn seal_into(
    key: &DerivedKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    plaintext: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    out.reserve(CAEAD_OVERHEAD + plaintext.len());
    out.extend_from_slice(&commitment(key));
    let start = out.len();
    out.extend_from_slice(plaintext);
    let tag = cipher(key)
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, (&mut out[start..]).into())
        // Encryption fails only for plaintexts over 256 GiB; our limits are far below.
        .map_err(|_| Error::InvalidInput("plaintext too long for XChaCha20-Poly1305"))?;
    out.extend_from_slice(&tag);
    Ok(())
}

/// `seal(K, N, A, P)` in place, for large bodies built once by the caller (blob envelopes).
///
/// On entry `buf[start..start + COMMITMENT_LEN]` is a placeholder and `buf[start + COMMITMENT_LEN..]`
/// is the plaintext; on return the placeholder holds the commitment, the plaintext is encrypted in
/// place and the tag is appended. Same nonce invariant as [`seal_into`]. (Additive helper: the
/// output is byte-identical to [`seal_into`]'s.)
pub(crate) fn seal_in_place(
    key: &DerivedKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    buf: &mut Vec<u8>,
    start: usize,
) -> Result<()> {
    let body_start = start
        .checked_add(COMMITMENT_LEN)
        .filter(|body_start| *body_start <= buf.len())
        .ok_or(Error::InvalidInput("no room for the key commitment"))?;
    buf[start..body_start].copy_from_slice(&commitment(key));
    let tag = cipher(key)
        .encrypt_inout_detached(&XNonce::from(*nonce), aad, (&mut buf[body_start..]).into())
        // Encryption fails only for plaintexts over 256 GiB; our limits are far below.
        .map_err(|_| Error::InvalidInput("plaintext too long for XChaCha20-Poly1305"))?;
    buf.extend_from_slice(&tag);
    Ok(())
}

/// `open(K, N, A, C)` in place, for large bodies the caller owns (blob envelopes): `sealed` is
/// `commitment ‖ ciphertext ‖ tag`; on success its ciphertext part holds the plaintext and the
/// plaintext's range in `sealed` is returned. The tag is checked before anything is decrypted,
/// so on failure `sealed` is unchanged. One opaque error for every failure.
pub(crate) fn open_in_place(
    key: &DerivedKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &mut [u8],
) -> Result<core::ops::Range<usize>> {
    if sealed.len() < CAEAD_OVERHEAD {
        return Err(Error::Authentication);
    }
    if !bool::from(sealed[..COMMITMENT_LEN].ct_eq(&commitment(key))) {
        return Err(Error::Authentication);
    }
    let end = sealed.len() - TAG_LEN;
    let tag = chacha20poly1305::Tag::try_from(&sealed[end..]).map_err(|_| Error::Authentication)?;
    cipher(key)
        .decrypt_inout_detached(
            &XNonce::from(*nonce),
            aad,
            (&mut sealed[COMMITMENT_LEN..end]).into(),
            &tag,
        )
        .map_err(|_| Error::Authentication)?;
    Ok(COMMITMENT_LEN..end)
}

/// `open(K, N, A, C)`: checks the commitment, then decrypts. One opaque error for every failure.
/// [`open_in_place`] on a copy; the plaintext is moved to the front of that copy (its spare
/// capacity is zeroed too when the caller zeroizes the vector).
pub(crate) fn open(
    key: &DerivedKey,
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>> {
    let mut buffer = sealed.to_vec();
    let plaintext = open_in_place(key, nonce, aad, &mut buffer)?;
    buffer.truncate(plaintext.end);
    buffer.drain(..plaintext.start);
    Ok(buffer)
}

/// `sealed_box(K, A, P) = N ‖ seal(K, N, A, P)` with a random 24-byte nonce (FORMAT.md section 3).
pub fn sealed_box_seal(key: &DerivedKey, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
    let nonce = random_bytes::<NONCE_LEN>()?;
    let mut out = Vec::with_capacity(SEALED_BOX_OVERHEAD + plaintext.len());
    out.extend_from_slice(&nonce);
    seal_into(key, &nonce, aad, plaintext, &mut out)?;
    Ok(out)
}

/// Opens a sealed box. Every failure is [`Error::Authentication`].
pub fn sealed_box_open(key: &DerivedKey, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
    if sealed.len() < SEALED_BOX_OVERHEAD {
        return Err(Error::Authentication);
    }
    let (nonce, rest) = sealed.split_at(NONCE_LEN);
    let mut nonce_bytes = [0u8; NONCE_LEN];
    nonce_bytes.copy_from_slice(nonce);
    open(key, &nonce_bytes, aad, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> DerivedKey {
        DerivedKey::from_bytes([byte; 32])
    }

    #[test]
    fn round_trip_and_every_single_bit_flip_fails() {
        let sealed = sealed_box_seal(&key(1), b"aad", b"hello sealed box").unwrap();
        assert_eq!(sealed.len(), SEALED_BOX_OVERHEAD + 16);
        assert_eq!(
            sealed_box_open(&key(1), b"aad", &sealed).unwrap(),
            b"hello sealed box"
        );
        for bit in 0..sealed.len() * 8 {
            let mut flipped = sealed.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(
                sealed_box_open(&key(1), b"aad", &flipped),
                Err(Error::Authentication)
            ));
        }
        for len in 0..sealed.len() {
            assert!(sealed_box_open(&key(1), b"aad", &sealed[..len]).is_err());
        }
    }

    #[test]
    fn wrong_key_or_aad_is_the_same_opaque_error() {
        let sealed = sealed_box_seal(&key(1), b"aad", b"x").unwrap();
        assert!(matches!(
            sealed_box_open(&key(2), b"aad", &sealed),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            sealed_box_open(&key(1), b"aaD", &sealed),
            Err(Error::Authentication)
        ));
    }

    #[test]
    fn seal_in_place_matches_seal_into() {
        let nonce = [7u8; NONCE_LEN];
        let mut expected = b"prefix".to_vec();
        seal_into(&key(3), &nonce, b"aad", b"in place body", &mut expected).unwrap();
        let mut buf = b"prefix".to_vec();
        buf.extend_from_slice(&[0; COMMITMENT_LEN]);
        buf.extend_from_slice(b"in place body");
        seal_in_place(&key(3), &nonce, b"aad", &mut buf, 6).unwrap();
        assert_eq!(buf, expected);
        let mut short = vec![0u8; COMMITMENT_LEN - 1];
        assert!(seal_in_place(&key(3), &nonce, b"", &mut short, 0).is_err());
    }

    #[test]
    fn commitment_is_checked_before_decryption() {
        // Replace the commitment with the one of another key: even though the AEAD part is intact
        // for key 1, opening with key 2's commitment in place must fail for both keys.
        let mut sealed = sealed_box_seal(&key(1), b"", b"x").unwrap();
        sealed[NONCE_LEN..NONCE_LEN + COMMITMENT_LEN].copy_from_slice(&commitment(&key(2)));
        assert!(sealed_box_open(&key(1), b"", &sealed).is_err());
        assert!(sealed_box_open(&key(2), b"", &sealed).is_err());
    }
}
