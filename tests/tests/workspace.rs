//! Cross-crate invariants that hold before any service exists.

#[test]
fn every_crate_speaks_the_same_format_version() {
    assert_eq!(coffre_crypto::codec::FORMAT_VERSION, 1);
}
