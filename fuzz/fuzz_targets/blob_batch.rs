//! The blob batch decoder (`blobs/batch` request bodies, `blobs/fetch` answers) never panics, and
//! whatever it accepts re-encodes to the same bytes.
#![no_main]

use coffre_protocol::batch::{decode, push_record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(records) = decode(data, 1 << 20) {
        let mut encoded = Vec::new();
        for (id, envelope) in &records {
            push_record(&mut encoded, id, envelope).expect("a decoded record re-encodes");
        }
        assert_eq!(encoded.as_slice(), data, "batch encoding is canonical");
    }
});
