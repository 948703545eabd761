//! XChaCha20-Poly1305 gives the same bytes whichever SIMD backend the machine selects.
//!
//! chacha20 and poly1305 pick a backend at run time (AVX-512 — enabled for this repository by
//! `.cargo/config.toml` — AVX2, SSE2 or portable code). The Wycheproof vectors are short, so they
//! reach only the tail paths of the wide backends; this test seals messages around every block
//! and lane boundary of those backends (64-byte blocks, 4, 8 and 16 blocks at a time) up to
//! 1 MiB, and compares a digest of all the ciphertexts with one computed by the portable
//! backends:
//!
//! ```text
//! RUSTFLAGS='--cfg chacha20_backend="soft" --cfg poly1305_backend="soft"' \
//!     cargo test -p coffre-crypto --test simd_backends -- --nocapture
//! ```
//!
//! A wrong wide backend changes the digest; every length also opens again to its plaintext.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

/// Computed with the portable backends (command above); format-fixed like any test vector.
const EXPECTED_DIGEST: &str = "fe5e79f1f6be774709efd2e2821f1d0fe9e520eac628892853daaa88835d43d6";

fn lengths() -> Vec<usize> {
    let mut lengths = vec![0, 1, 15, 16, 17, 1024 * 1024 + 13];
    for blocks in [
        1usize, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 48, 64, 1024,
    ] {
        let bytes = blocks * 64;
        lengths.extend([bytes - 1, bytes, bytes + 1]);
    }
    lengths
}

#[test]
fn xchacha20_poly1305_matches_the_portable_backends() {
    let cipher = XChaCha20Poly1305::new(&[0x42; 32].into());
    let nonce = XNonce::from([0x24; 24]);
    let mut digest = blake3::Hasher::new();
    for length in lengths() {
        let plaintext: Vec<u8> = (0..length).map(|i| (i * 31 + i / 251) as u8).collect();
        let aad = length.to_le_bytes();
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: &aad,
                },
            )
            .expect("sealing in memory cannot fail");
        assert_eq!(sealed.len(), length + 16);
        let opened = cipher
            .decrypt(
                &nonce,
                Payload {
                    msg: &sealed,
                    aad: &aad,
                },
            )
            .expect("a sealed message opens");
        assert_eq!(opened, plaintext, "length {length}");
        digest.update(&(length as u64).to_le_bytes());
        digest.update(&sealed);
    }
    let digest = digest.finalize().to_hex().to_string();
    println!("digest: {digest}");
    assert_eq!(digest, EXPECTED_DIGEST);
}
