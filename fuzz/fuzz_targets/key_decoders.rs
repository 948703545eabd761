//! The decoders of identities, device entries, key bundles and recovery phrases never panic on
//! arbitrary bytes.
#![no_main]

use coffre_crypto::device::DeviceEntry;
use coffre_crypto::identity::Identity;
use coffre_crypto::keybundle::KeyBundle;
use coffre_crypto::recovery::RecoveryPhrase;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = Identity::decode(data);
    let _ = DeviceEntry::decode(data);
    if let Ok(bundle) = KeyBundle::decode(data) {
        assert_eq!(bundle.encode(), data, "key bundle encoding is canonical");
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = RecoveryPhrase::parse(text);
    }
});
