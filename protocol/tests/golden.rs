//! Golden JSON fixtures: the wire format of `docs/API.md`, byte for byte.

// Helpers outside `#[test]` functions unwrap too: a panic anywhere here is a failed test.
#![allow(clippy::unwrap_used)]

use coffre_protocol::types::*;
use coffre_protocol::{ErrorBody, ErrorCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn check<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(fixture: &str, value: &T) {
    let path = format!("{}/tests/golden/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let expected: serde_json::Value = serde_json::from_str(&expected).unwrap();
    assert_eq!(
        serde_json::to_value(value).unwrap(),
        expected,
        "{fixture}: serialisation"
    );
    let parsed: T = serde_json::from_value(expected).unwrap();
    assert_eq!(&parsed, value, "{fixture}: parsing");
}

fn id(byte: u8) -> Id32 {
    Id32([byte; 32])
}

#[test]
fn register_request() {
    check(
        "register_request.json",
        &RegisterRequest {
            identity: Bytes64(b"CFID".to_vec()),
            device_entry: Bytes64(b"CFDV".to_vec()),
            key_bundles: vec![Bytes64(b"CFKB".to_vec())],
            opaque_upload: None,
        },
    );
}

#[test]
fn opaque_login_messages() {
    check(
        "opaque_login_start.json",
        &OpaqueLoginStartRequest {
            handle: "alice".into(),
            request: Bytes64(b"KE1".to_vec()),
        },
    );
    check(
        "opaque_login_finish.json",
        &OpaqueLoginFinishRequest {
            login_id: Bytes64(vec![7; 4]),
            finalization: Bytes64(b"KE3".to_vec()),
        },
    );
}

#[test]
fn verify_request() {
    check(
        "verify_request.json",
        &VerifyRequest {
            handle: "alice".into(),
            device_key: id(0xab),
            challenge: Bytes64(vec![1, 2, 3]),
            signature: Bytes64(vec![4; 4]),
        },
    );
}

#[test]
fn missing_and_heads() {
    check(
        "missing_request.json",
        &MissingRequest {
            ids: vec![id(1), id(2)],
        },
    );
    check(
        "heads_response.json",
        &HeadsResponse {
            commits: vec![Bytes64(b"CFCM".to_vec())],
            head_seq: 7,
        },
    );
}

#[test]
fn blob_batches() {
    check(
        "fetch_request.json",
        &FetchRequest {
            ids: vec![id(1), id(2)],
        },
    );
    check(
        "batch_put_response.json",
        &BatchPutResponse {
            stored: 3,
            present: 1,
        },
    );
}

#[test]
fn error_bodies() {
    check(
        "error_conflict.json",
        &ErrorBody {
            code: ErrorCode::Conflict,
            message: "head moved on".into(),
            current_seq: Some(12),
        },
    );
    check(
        "error_unauthenticated.json",
        &ErrorBody::new(ErrorCode::Unauthenticated, "authentication failed"),
    );
}

#[test]
fn error_codes_are_stable_and_unique() {
    let mut seen = std::collections::BTreeSet::new();
    for code in ErrorCode::ALL {
        let json = serde_json::to_value(code).unwrap();
        assert_eq!(json, serde_json::Value::String(code.as_str().into()));
        assert!(seen.insert(code.as_str()), "duplicate {code}");
        assert!((400..600).contains(&code.status()));
    }
}

#[test]
fn bad_ids_and_base64_are_refused() {
    assert!(serde_json::from_str::<MissingRequest>(r#"{"ids":["zz"]}"#).is_err());
    assert!(serde_json::from_str::<AppendCommitRequest>(r#"{"commit":"!!"}"#).is_err());
    assert!(
        serde_json::from_str::<AppendCommitRequest>(r#"{"commit":"AA==","extra":1}"#).is_err(),
        "unknown fields are refused"
    );
}

#[test]
fn login_message_binds_the_handle() {
    let message = coffre_protocol::login_message("bob", &[9; 32]);
    assert_eq!(&message[..5], b"\x00\x03bob");
    assert_ne!(message, coffre_protocol::login_message("bob2", &[9; 32]));
}

#[test]
fn token_is_redacted_in_debug() {
    let token = TokenResponse {
        token: "secret-token".into(),
        expires_in_s: 60,
    };
    assert!(!format!("{token:?}").contains("secret-token"));
}
