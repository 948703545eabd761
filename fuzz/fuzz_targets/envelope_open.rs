//! Opening arbitrary bytes as a blob envelope never panics and never succeeds for bytes that were
//! not sealed under the key (the fuzzer cannot forge a Poly1305 tag).
#![no_main]

use coffre_crypto::envelope::{BlobKind, open};
use coffre_crypto::keys::BlobKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = BlobKey::from_bytes([7; 32]);
    for kind in [BlobKind::Chunk, BlobKind::Manifest, BlobKind::DirNode] {
        assert!(open(&key, kind, data).is_err());
    }
});
