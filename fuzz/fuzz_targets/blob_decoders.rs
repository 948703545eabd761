//! The decoders of decrypted blob contents (manifests, directory nodes) never panic, and whatever
//! they accept re-encodes to the same bytes (the encoding is canonical).
#![no_main]

use coffre_crypto::dirnode::DirNode;
use coffre_crypto::manifest::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = Manifest::decode(data) {
        let encoded = manifest.encode().expect("a decoded manifest re-encodes");
        assert_eq!(encoded.as_slice(), data, "manifest encoding is canonical");
    }
    if let Ok(node) = DirNode::decode(data) {
        let encoded = node.encode().expect("a decoded directory node re-encodes");
        assert_eq!(encoded.as_slice(), data, "directory node encoding is canonical");
    }
});
