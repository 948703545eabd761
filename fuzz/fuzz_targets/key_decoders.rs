//! The decoders of identities, device entries, key bundles and recovery phrases, and the
//! gateway's handling of OPAQUE messages (registration request and upload, login request), never
//! panic on arbitrary bytes.
#![no_main]

use coffre_crypto::device::DeviceEntry;
use coffre_crypto::identity::Identity;
use coffre_crypto::keybundle::KeyBundle;
use coffre_crypto::opaque::{ServerSetup, registration_record};
use coffre_crypto::recovery::RecoveryPhrase;
use libfuzzer_sys::fuzz_target;

/// One gateway's OPAQUE secrets for the whole run (generating them per input would dominate).
fn setup() -> &'static ServerSetup {
    static SETUP: std::sync::OnceLock<ServerSetup> = std::sync::OnceLock::new();
    SETUP.get_or_init(ServerSetup::generate)
}

fuzz_target!(|data: &[u8]| {
    let _ = Identity::decode(data);
    let _ = DeviceEntry::decode(data);
    if let Ok(bundle) = KeyBundle::decode(data) {
        assert_eq!(bundle.encode(), data, "key bundle encoding is canonical");
    }
    if let Ok(text) = core::str::from_utf8(data) {
        let _ = RecoveryPhrase::parse(text);
    }
    let _ = registration_record(data);
    let _ = setup().registration_response(data, "alice");
    let _ = setup().login_start(None, data, "alice");
    let (record, request) = data.split_at(data.len() / 2);
    let _ = setup().login_start(Some(record), request, "alice");
});
