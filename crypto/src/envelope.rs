//! The blob envelope `CFEN` (FORMAT.md section 4): the only thing the gateway ever stores.
//!
//! ```text
//! body     = kind (u8) ‖ content ‖ 0x80 ‖ 0x00 × (padded_len − len(content) − 2)
//! envelope = "CFEN" ‖ 0x01 ‖ commitment (32) ‖ ciphertext (padded_len) ‖ tag (16)
//! blob id  = H(envelope)
//! ```
//!
//! The blob key `K` is used directly as the CAEAD key `K` of FORMAT.md section 3 (which derives the
//! XChaCha20 key and the commitment from it), and the nonce is the first 24 bytes of
//! `KDF(CTX_ENVELOPE_NONCE, K)`.
//!
//! Invariants and threats:
//!
//! - **one plaintext per blob key** **[T-nonce]**: the nonce is a function of the key, so callers
//!   must never seal two different contents under one key. Chunk keys are a MAC of the chunk
//!   (`crate::chunker`), manifest and directory-node keys are fresh random ([`seal_fresh`]);
//! - **kinds cannot be confused** **[T-injection]**: the kind byte is inside the ciphertext and
//!   [`open`] fails unless it equals the kind the caller expects;
//! - **no oracle** **[T-oracle]**: after the 5-byte header is parsed (bad magic or version is
//!   [`Error::Malformed`]), every failure (length, commitment, tag, kind, padding) is the one
//!   opaque [`Error::Authentication`];
//! - **swaps are caught before decryption** **[T-chunk-swap]**: [`open_verified`] compares
//!   `H(envelope)` with the id the caller followed and reports a mismatch as
//!   [`Error::Integrity`]. (Not `Authentication`: the id is public and anyone, including the
//!   gateway, can compute the hash, so the distinction reveals nothing secret, and it names the
//!   real fault: the store returned the wrong bytes.)
//! - **padded lengths only** **[T-size]**: the body is padded with [`crate::padding`], and the
//!   opener insists on the canonical padding.

use zeroize::Zeroize;

use crate::caead::{self, CAEAD_OVERHEAD, COMMITMENT_LEN, NONCE_LEN};
use crate::codec::{FORMAT_VERSION, Reader, Writer};
use crate::error::{Error, Result};
use crate::kdf::{CTX_ENVELOPE_NONCE, derive, hash};
use crate::keys::{BlobId, BlobKey, DerivedKey};
use crate::padding::{is_padded_len, padded_len};

/// The envelope magic. **Format-fixed.**
pub const MAGIC: [u8; 4] = *b"CFEN";
/// Length of the envelope header: magic and version. **Format-fixed.**
pub const HEADER_LEN: usize = 5;
/// Bytes an envelope adds to its padded body: header, commitment and tag (53). **Format-fixed.**
pub const ENVELOPE_OVERHEAD: usize = HEADER_LEN + CAEAD_OVERHEAD;
/// The largest content an envelope may hold: 16 MiB. **Format-fixed** (FORMAT.md section 11).
pub const MAX_CONTENT_LEN: usize = 16 * 1024 * 1024;
/// The byte that ends the content inside the body. **Format-fixed.**
const PADDING_MARKER: u8 = 0x80;

/// The kind of content an envelope holds. **Format-fixed** values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum BlobKind {
    /// A file chunk (FORMAT.md section 5).
    Chunk = 0x01,
    /// A file manifest `CFMF` (FORMAT.md section 6).
    Manifest = 0x02,
    /// A directory node `CFDR` (FORMAT.md section 7).
    DirNode = 0x03,
}

impl BlobKind {
    /// The kind byte.
    pub const fn to_byte(self) -> u8 {
        self as u8
    }

    /// Parses a kind byte; `None` for unknown values.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(BlobKind::Chunk),
            0x02 => Some(BlobKind::Manifest),
            0x03 => Some(BlobKind::DirNode),
            _ => None,
        }
    }
}

/// A sealed envelope and its id, ready to upload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedBlob {
    id: BlobId,
    bytes: Vec<u8>,
}

impl SealedBlob {
    /// The blob id, `H(envelope)`.
    pub const fn id(&self) -> BlobId {
        self.id
    }

    /// The envelope bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The envelope bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A reference to a blob: its id and its key. This is what a parent (manifest, directory node,
/// commit) stores; holding it is the capability to find *and* read the blob.
///
/// No `Clone`: copying a key is explicit ([`BlobRef::duplicate`]). `Debug` redacts the key.
#[derive(Debug, PartialEq, Eq)]
pub struct BlobRef {
    /// The blob id, `H(envelope)`.
    pub id: BlobId,
    /// The blob key.
    pub key: BlobKey,
}

impl BlobRef {
    /// An explicit copy, key included.
    pub fn duplicate(&self) -> Self {
        BlobRef {
            id: self.id,
            key: self.key.duplicate(),
        }
    }
}

/// `H(envelope)`: the id of an envelope.
pub fn blob_id(envelope: &[u8]) -> BlobId {
    BlobId::from_bytes(hash(envelope))
}

/// The envelope length for `content_len` content bytes; `None` above [`MAX_CONTENT_LEN`].
pub fn envelope_len(content_len: usize) -> Option<usize> {
    if content_len > MAX_CONTENT_LEN {
        return None;
    }
    let body_len = usize::try_from(padded_len(content_len as u64)).ok()?;
    body_len.checked_add(ENVELOPE_OVERHEAD)
}

/// The CAEAD key and the nonce of an envelope sealed under `key`.
fn caead_key_and_nonce(key: &BlobKey) -> (DerivedKey, [u8; NONCE_LEN]) {
    let nonce_material = derive(CTX_ENVELOPE_NONCE, key.expose_secret());
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&nonce_material.expose_secret()[..NONCE_LEN]);
    (DerivedKey::from_bytes(*key.expose_secret()), nonce)
}

/// The header as bytes: the AAD of the CAEAD.
const fn header() -> [u8; HEADER_LEN] {
    [MAGIC[0], MAGIC[1], MAGIC[2], MAGIC[3], FORMAT_VERSION]
}

/// Seals `content` as a blob of `kind` under `key`.
///
/// The caller keeps the invariant that `key` seals no other content. The body is built once in
/// the output buffer and encrypted in place. Fails with [`Error::InvalidInput`] if `content` is
/// longer than [`MAX_CONTENT_LEN`].
pub fn seal(key: &BlobKey, kind: BlobKind, content: &[u8]) -> Result<SealedBlob> {
    let total = envelope_len(content.len()).ok_or(Error::InvalidInput("blob content too long"))?;
    let body_len = total - ENVELOPE_OVERHEAD; // envelope_len adds exactly the overhead
    let mut writer = Writer::with_header_capacity(&MAGIC, total);
    writer.raw(&[0; COMMITMENT_LEN]); // replaced by the commitment in `seal_in_place`
    writer.u8(kind.to_byte());
    writer.raw(content);
    writer.u8(PADDING_MARKER);
    let mut bytes = writer.into_vec();
    bytes.resize(HEADER_LEN + COMMITMENT_LEN + body_len, 0);
    let (caead_key, nonce) = caead_key_and_nonce(key);
    caead::seal_in_place(&caead_key, &nonce, &header(), &mut bytes, HEADER_LEN)?;
    Ok(SealedBlob {
        id: blob_id(&bytes),
        bytes,
    })
}

/// Seals `content` under 32 fresh random bytes (manifests, directory nodes) and returns the
/// reference a parent stores together with the envelope.
pub fn seal_fresh(kind: BlobKind, content: &[u8]) -> Result<(BlobRef, SealedBlob)> {
    let key = BlobKey::generate()?;
    let sealed = seal(&key, kind, content)?;
    Ok((
        BlobRef {
            id: sealed.id(),
            key,
        },
        sealed,
    ))
}

/// Opens an envelope of `expected_kind` and returns its content.
///
/// A bad magic or version is [`Error::Malformed`]; every later failure is
/// [`Error::Authentication`]. Callers that followed a blob id should use [`open_verified`].
pub fn open(key: &BlobKey, expected_kind: BlobKind, envelope: &[u8]) -> Result<Vec<u8>> {
    open_in_place(key, expected_kind, envelope.to_vec()).map(OpenedBlob::into_content)
}

/// A blob opened in its envelope's own buffer: the content is a range of it, nothing was copied.
pub struct OpenedBlob {
    buffer: Vec<u8>,
    content: core::ops::Range<usize>,
}

impl core::fmt::Debug for OpenedBlob {
    /// The length only: contents stay out of logs.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "OpenedBlob({} bytes)", self.content.len())
    }
}

impl OpenedBlob {
    /// The blob's content.
    pub fn content(&self) -> &[u8] {
        &self.buffer[self.content.clone()]
    }

    /// The content as a vector of its own length (moves it to the front of the buffer).
    pub fn into_content(mut self) -> Vec<u8> {
        self.buffer.truncate(self.content.end);
        self.buffer.drain(..self.content.start);
        self.buffer
    }
}

/// [`open`] on an envelope the caller owns, decrypting in its buffer: what large downloads use
/// so that a chunk is not copied after it arrived. Same checks and errors as [`open`].
pub fn open_in_place(
    key: &BlobKey,
    expected_kind: BlobKind,
    mut envelope: Vec<u8>,
) -> Result<OpenedBlob> {
    let sealed_len = Reader::with_header(&envelope, &MAGIC, "blob envelope")?
        .rest()
        .len();
    let sealed_start = envelope.len() - sealed_len;
    // Cheap public checks first: the body length must be one that `seal` can produce.
    let body_len = sealed_len
        .checked_sub(CAEAD_OVERHEAD)
        .ok_or(Error::Authentication)?;
    let max_body = padded_len(MAX_CONTENT_LEN as u64);
    if body_len as u64 > max_body || !is_padded_len(body_len as u64) {
        return Err(Error::Authentication);
    }
    let (caead_key, nonce) = caead_key_and_nonce(key);
    let body = caead::open_in_place(&caead_key, &nonce, &header(), &mut envelope[sealed_start..])?;
    let body = sealed_start + body.start..sealed_start + body.end;
    match content_len(&envelope[body.clone()], expected_kind) {
        Some(len) => Ok(OpenedBlob {
            buffer: envelope,
            content: body.start + 1..body.start + 1 + len,
        }),
        None => {
            envelope.zeroize();
            Err(Error::Authentication)
        }
    }
}

/// Checks the kind byte and the canonical padding of an authenticated body, and returns the
/// content length.
fn content_len(body: &[u8], expected_kind: BlobKind) -> Option<usize> {
    if body.first() != Some(&expected_kind.to_byte()) {
        return None;
    }
    let marker = body.iter().rposition(|byte| *byte != 0)?;
    if marker == 0 || body[marker] != PADDING_MARKER {
        return None;
    }
    let len = marker - 1;
    (len <= MAX_CONTENT_LEN && padded_len(len as u64) == body.len() as u64).then_some(len)
}

/// Checks that `H(envelope) == expected_id` ([`Error::Integrity`] if not, before any decryption),
/// then [`open`]s it.
pub fn open_verified(
    expected_id: &BlobId,
    key: &BlobKey,
    expected_kind: BlobKind,
    envelope: &[u8],
) -> Result<Vec<u8>> {
    if blob_id(envelope) != *expected_id {
        return Err(Error::integrity(
            "blob",
            "envelope does not hash to the expected blob id",
        ));
    }
    open(key, expected_kind, envelope)
}

/// [`open_verified`] on an envelope the caller owns, decrypting in its buffer (see
/// [`open_in_place`]).
pub fn open_verified_in_place(
    expected_id: &BlobId,
    key: &BlobKey,
    expected_kind: BlobKind,
    envelope: Vec<u8>,
) -> Result<OpenedBlob> {
    if blob_id(&envelope) != *expected_id {
        return Err(Error::integrity(
            "blob",
            "envelope does not hash to the expected blob id",
        ));
    }
    open_in_place(key, expected_kind, envelope)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> BlobKey {
        BlobKey::from_bytes([byte; 32])
    }

    /// Seals an arbitrary body (test-only: lets us craft bad padding and unknown kinds).
    pub(crate) fn seal_body(key: &BlobKey, body: &[u8]) -> Vec<u8> {
        let (caead_key, nonce) = caead_key_and_nonce(key);
        let mut out = header().to_vec();
        caead::seal_into(&caead_key, &nonce, &header(), body, &mut out).unwrap();
        out
    }

    #[test]
    fn layout_round_trip_and_determinism() {
        let sealed = seal(&key(1), BlobKind::Chunk, b"hello").unwrap();
        let bytes = sealed.as_bytes();
        assert_eq!(&bytes[..5], b"CFEN\x01");
        assert_eq!(bytes.len(), ENVELOPE_OVERHEAD + 256);
        assert_eq!(sealed.id(), blob_id(bytes));
        assert_eq!(seal(&key(1), BlobKind::Chunk, b"hello").unwrap(), sealed);
        let opened = open_verified(&sealed.id(), &key(1), BlobKind::Chunk, bytes).unwrap();
        assert_eq!(opened, b"hello");
        let mut body = vec![1u8];
        body.extend_from_slice(b"hello\x80");
        body.resize(256, 0);
        assert_eq!(seal_body(&key(1), &body), bytes, "matches the spec layout");
    }

    #[test]
    fn opening_in_place_gives_the_same_content_and_the_same_errors() {
        let content: Vec<u8> = (0..70_000u32).map(|i| (i * 13) as u8).collect();
        let sealed = seal(&key(2), BlobKind::Chunk, &content).unwrap();
        let bytes = sealed.as_bytes().to_vec();
        let opened =
            open_verified_in_place(&sealed.id(), &key(2), BlobKind::Chunk, bytes.clone()).unwrap();
        assert_eq!(opened.content(), content.as_slice());
        assert_eq!(format!("{opened:?}"), "OpenedBlob(70000 bytes)");
        assert_eq!(opened.into_content(), content);
        assert!(matches!(
            open_verified_in_place(&blob_id(b"other"), &key(2), BlobKind::Chunk, bytes.clone()),
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            open_in_place(&key(3), BlobKind::Chunk, bytes.clone()),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            open_in_place(&key(2), BlobKind::Manifest, bytes.clone()),
            Err(Error::Authentication)
        ));
        for position in [
            0,
            HEADER_LEN,
            HEADER_LEN + 40,
            bytes.len() / 2,
            bytes.len() - 1,
        ] {
            let mut flipped = bytes.clone();
            flipped[position] ^= 1;
            assert!(
                open_in_place(&key(2), BlobKind::Chunk, flipped).is_err(),
                "byte {position}"
            );
        }
    }

    #[test]
    fn sizes_at_the_edges() {
        for len in [0, 1, 253, 254, 255, 256, 4095, 65_537] {
            let content = vec![0xa5; len];
            let sealed = seal(&key(2), BlobKind::DirNode, &content).unwrap();
            assert_eq!(Some(sealed.as_bytes().len()), envelope_len(len));
            assert_eq!(
                open(&key(2), BlobKind::DirNode, sealed.as_bytes()).unwrap(),
                content
            );
        }
        assert!(seal(&key(2), BlobKind::Chunk, &vec![0; MAX_CONTENT_LEN + 1]).is_err());
        assert_eq!(envelope_len(MAX_CONTENT_LEN + 1), None);
    }

    #[test]
    fn content_ending_in_marker_like_bytes_round_trips() {
        for content in [&b"\x80"[..], b"\x80\x00", b"\x00\x00", b"a\x80\x80\x00"] {
            let sealed = seal(&key(3), BlobKind::Manifest, content).unwrap();
            assert_eq!(
                open(&key(3), BlobKind::Manifest, sealed.as_bytes()).unwrap(),
                content
            );
        }
    }

    #[test]
    fn wrong_kind_key_or_id() {
        let sealed = seal(&key(4), BlobKind::Chunk, b"x").unwrap();
        let bytes = sealed.as_bytes();
        assert!(matches!(
            open(&key(4), BlobKind::DirNode, bytes),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            open(&key(5), BlobKind::Chunk, bytes),
            Err(Error::Authentication)
        ));
        let other = BlobId::from_bytes([0; 32]);
        assert!(matches!(
            open_verified(&other, &key(4), BlobKind::Chunk, bytes),
            Err(Error::Integrity { .. })
        ));
        assert!(matches!(
            open(&key(4), BlobKind::Chunk, &bytes[..4]),
            Err(Error::Malformed { .. })
        ));
    }

    #[test]
    fn non_canonical_bodies_are_refused() {
        let cases: Vec<Vec<u8>> = vec![
            {
                // Marker followed by a non-zero byte.
                let mut body = vec![1, b'a', 0x80, 0, 1];
                body.resize(256, 0);
                body[255] = 1;
                body
            },
            vec![1; 256],  // no marker at all
            vec![0; 256],  // all zero
            vec![0x80; 1], // far too short (wrong length, refused before decryption)
            {
                // Marker present but body longer than padded_len(content): 288 is a Padmé
                // length, but 10 content bytes pad to 256.
                let mut body = vec![1u8; 11];
                body.push(0x80);
                body.resize(288, 0);
                body
            },
            {
                // Unknown kind byte.
                let mut body = vec![9, 0x80];
                body.resize(256, 0);
                body
            },
            {
                // Marker with the wrong value.
                let mut body = vec![1, b'a', 0x81];
                body.resize(256, 0);
                body
            },
        ];
        for body in cases {
            let envelope = seal_body(&key(6), &body);
            assert!(
                matches!(
                    open(&key(6), BlobKind::Chunk, &envelope),
                    Err(Error::Authentication)
                ),
                "{body:02x?}"
            );
        }
    }

    #[test]
    fn every_bit_flip_and_truncation_fails() {
        let sealed = seal(&key(7), BlobKind::Chunk, b"bit flips").unwrap();
        let bytes = sealed.as_bytes();
        for bit in 0..bytes.len() * 8 {
            let mut flipped = bytes.to_vec();
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(open(&key(7), BlobKind::Chunk, &flipped).is_err(), "{bit}");
        }
        for len in 0..bytes.len() {
            assert!(open(&key(7), BlobKind::Chunk, &bytes[..len]).is_err());
        }
    }

    #[test]
    fn blob_ref_duplicates_explicitly() {
        let reference = BlobRef {
            id: BlobId::from_bytes([1; 32]),
            key: key(8),
        };
        assert_eq!(reference.duplicate(), reference);
        assert!(!format!("{reference:?}").contains("0808"));
    }
}
