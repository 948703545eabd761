//! API tests through `api::dispatch`: accounts, device login, tokens, users, inbox, rate limits,
//! health and metrics.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod common;

use std::time::Duration;

use coffre_gateway::Config;
use common::{TestApp, User, b64, error_code};
use http::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn register_then_duplicate_handle() {
    let t = TestApp::new();
    let alice = User::new("alice");
    let (status, body) = t.register(&alice).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["handle"], "alice");
    assert_eq!(body["quota_bytes"], Config::default().default_quota_bytes);
    let impostor = User::new("alice");
    let (status, body) = t.register(&impostor).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&body), "handle_taken");
}

#[tokio::test]
async fn register_refuses_bad_signatures_and_media_types() {
    let t = TestApp::new();
    let alice = User::new("alice");
    let bob = User::new("bob");
    // Alice's identity with Bob's first device entry (signed by another identity).
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/accounts",
            None,
            json!({
                "identity": b64(alice.identity.encoded()),
                "device_entry": b64(bob.entry0.encoded()),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&body), "invalid_signed_data");
    let mut tampered = alice.identity.encoded().to_vec();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    let (status, _) = t
        .json(
            Method::POST,
            "/v1/accounts",
            None,
            json!({
                "identity": b64(&tampered),
                "device_entry": b64(alice.entry0.encoded()),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _, body) = t
        .send(
            Method::POST,
            "/v1/accounts",
            None,
            Some("text/plain"),
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{body:?}");
    let (status, body) = t
        .json(Method::POST, "/v1/accounts", None, json!({"nope": 1}))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), "bad_request");
}

#[tokio::test]
async fn declared_body_over_the_json_limit_is_413() {
    let mut config = Config::default();
    config.limits.max_json_bytes = 100;
    let t = TestApp::with_config(config);
    let (status, _, body) = t
        .send(
            Method::POST,
            "/v1/accounts",
            None,
            Some("application/json"),
            vec![b' '; 101],
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&body), "payload_too_large");
}

#[tokio::test]
async fn login_and_authenticated_requests() {
    let t = TestApp::new();
    let alice = User::new("alice");
    let token = t.onboard(&alice).await;
    assert!(token.starts_with("cft_"));
    let (status, body) = t
        .json(Method::GET, "/v1/users/alice", Some(&token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["handle"], "alice");
    assert_eq!(body["device_chain"].as_array().unwrap().len(), 1);
    let (status, body) = t
        .json(
            Method::GET,
            "/v1/account/key-bundles",
            Some(&token),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["key_bundles"][0], b64(b"CFKB-opaque"));
    let (status, body) = t
        .json(Method::GET, "/v1/users/nobody", Some(&token), Value::Null)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = t
        .json(Method::GET, "/v1/users/alice", None, Value::Null)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
}

#[tokio::test]
async fn every_login_failure_is_the_same_answer() {
    let t = TestApp::new();
    let alice = User::new("alice");
    t.onboard(&alice).await;
    let stranger = User::new("mallory");
    let mut answers = Vec::new();
    // Unknown handle.
    let challenge = t.challenge("nobody", &alice.device).await;
    answers.push(
        t.verify("nobody", &alice.device, &challenge, &alice.device)
            .await,
    );
    // Unknown device.
    let challenge = t.challenge("alice", &stranger.device).await;
    answers.push(
        t.verify("alice", &stranger.device, &challenge, &stranger.device)
            .await,
    );
    // Bad signature (signed by another key).
    let challenge = t.challenge("alice", &alice.device).await;
    answers.push(
        t.verify("alice", &alice.device, &challenge, &stranger.device)
            .await,
    );
    // Replayed challenge (already used above).
    answers.push(
        t.verify("alice", &alice.device, &challenge, &alice.device)
            .await,
    );
    // Unknown challenge.
    answers.push(
        t.verify("alice", &alice.device, &[7; 32], &alice.device)
            .await,
    );
    // Expired challenge.
    let challenge = t.challenge("alice", &alice.device).await;
    t.advance_ms(Config::default().challenge_ttl.as_millis() as u64 + 1);
    answers.push(
        t.verify("alice", &alice.device, &challenge, &alice.device)
            .await,
    );
    // Challenge issued for another handle.
    let challenge = t.challenge("bob", &alice.device).await;
    answers.push(
        t.verify("alice", &alice.device, &challenge, &alice.device)
            .await,
    );
    let first = answers[0].clone();
    assert_eq!(first.0, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&first.1), "unauthenticated");
    for answer in &answers {
        assert_eq!(answer, &first);
    }
}

#[tokio::test]
async fn tokens_expire() {
    let mut config = Config::default();
    config.token_ttl = Duration::from_secs(60);
    let t = TestApp::with_config(config);
    let alice = User::new("alice");
    let token = t.onboard(&alice).await;
    let (status, _) = t
        .json(Method::GET, "/v1/inbox", Some(&token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    t.advance_ms(60_000);
    let (status, body) = t
        .json(Method::GET, "/v1/inbox", Some(&token), Value::Null)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    let (status, _) = t
        .json(Method::GET, "/v1/inbox", Some("cft_forged"), Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn revoked_device_loses_its_session() {
    let t = TestApp::new();
    let alice = User::new("alice");
    let token = t.onboard(&alice).await;
    let chain = coffre_crypto::device::DeviceChain::verify(
        alice.identity.sign_key(),
        std::slice::from_ref(&alice.entry0),
    )
    .unwrap();
    let laptop = coffre_crypto::keys::SigningSecret::generate().unwrap();
    let add = chain
        .next_entry(
            alice.secret.sign_secret(),
            coffre_crypto::device::DeviceAction::Add,
            &laptop.public_key(),
            2,
        )
        .unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/account/devices",
            Some(&token),
            json!({"entry": b64(add.encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seq"], 1);
    // The same entry again: the chain moved on.
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/account/devices",
            Some(&token),
            json!({"entry": b64(add.encoded())}),
        )
        .await;
    assert_eq!(
        (status, body["current_seq"].clone()),
        (StatusCode::CONFLICT, json!(2))
    );
    let mut chain = chain;
    chain.extend(&[add]).unwrap();
    let revoke = chain
        .next_entry(
            alice.secret.sign_secret(),
            coffre_crypto::device::DeviceAction::Revoke,
            &alice.device.public_key(),
            3,
        )
        .unwrap();
    let (status, _) = t
        .json(
            Method::POST,
            "/v1/account/devices",
            Some(&token),
            json!({"entry": b64(revoke.encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = t
        .json(Method::GET, "/v1/inbox", Some(&token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn inbox_round_trip() {
    let t = TestApp::new();
    let (alice, bob) = (User::new("alice"), User::new("bob"));
    let alice_token = t.onboard(&alice).await;
    let bob_token = t.onboard(&bob).await;
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/inbox",
            Some(&alice_token),
            json!({"to": "bob", "invitation": b64(b"CFIV-sealed")}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let id = body["id"].as_u64().unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/inbox",
            Some(&alice_token),
            json!({"to": "nobody", "invitation": b64(b"x")}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) = t
        .json(Method::GET, "/v1/inbox", Some(&bob_token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::OK);
    let items = body["invitations"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["from"], "alice");
    assert_eq!(items[0]["invitation"], b64(b"CFIV-sealed"));
    // Alice cannot delete Bob's item; Bob can, once.
    let path = format!("/v1/inbox/{id}");
    let (status, _) = t
        .json(Method::DELETE, &path, Some(&alice_token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = t
        .json(Method::DELETE, &path, Some(&bob_token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = t
        .json(Method::DELETE, &path, Some(&bob_token), Value::Null)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let mut config = Config::default();
    config.rate_per_address = 1.0;
    config.burst_per_address = 2.0;
    let t = TestApp::with_config(config);
    for _ in 0..2 {
        let (status, _) = t.json(Method::GET, "/v1/inbox", None, Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, headers, body) = t
        .send(Method::GET, "/v1/inbox", None, None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(headers["retry-after"], "1");
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(error_code(&body), "rate_limited");
    // Another address is not affected; health checks are never limited.
    let (status, _, _) = t
        .send_from(
            "198.51.100.7:1",
            Method::GET,
            "/v1/inbox",
            None,
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = t
        .send(Method::GET, "/healthz", None, None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn health_metrics_and_routing_errors() {
    let t = TestApp::new();
    let (status, body) = t.json(Method::GET, "/healthz", None, Value::Null).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    let (status, _) = t.json(Method::GET, "/nope", None, Value::Null).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = t.json(Method::DELETE, "/healthz", None, Value::Null).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let (status, headers, body) = t
        .send(Method::GET, "/metrics", None, None, Vec::new())
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("coffre_requests_total{endpoint=\"healthz\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.contains("coffre_request_errors_total{code=\"not_found\"} 1"));
    assert!(text.contains("coffre_request_errors_total{code=\"method_not_allowed\"} 1"));
    assert!(text.contains("coffre_store_blob_bytes"));
}

/// OPAQUE registration for `user` with `passphrase`, then `POST /v1/accounts` with the upload.
async fn register_with_passphrase(t: &TestApp, user: &User, passphrase: &[u8]) {
    use coffre_crypto::opaque::ClientRegistration;
    let (state, request) = ClientRegistration::start(passphrase).unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/accounts/opaque",
            None,
            json!({"handle": user.handle, "request": b64(&request)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: coffre_protocol::types::OpaqueRegisterResponse =
        serde_json::from_value(body).unwrap();
    let (upload, _export) = state.finish(passphrase, &response.response.0).unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/accounts",
            None,
            json!({
                "identity": b64(user.identity.encoded()),
                "device_entry": b64(user.entry0.encoded()),
                "key_bundles": [b64(b"CFKB-sealed")],
                "opaque_upload": b64(&upload),
            }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

/// Starts an OPAQUE login; returns the client state, the login id and the server's response.
async fn opaque_start(
    t: &TestApp,
    handle: &str,
    passphrase: &[u8],
) -> (coffre_crypto::opaque::ClientLogin, Value, Vec<u8>) {
    let (client, request) = coffre_crypto::opaque::ClientLogin::start(passphrase).unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/auth/opaque/start",
            None,
            json!({"handle": handle, "request": b64(&request)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response: coffre_protocol::types::OpaqueLoginStartResponse =
        serde_json::from_value(body.clone()).unwrap();
    (client, body["login_id"].clone(), response.response.0)
}

#[tokio::test]
async fn passphrase_login_gives_an_enrollment_token_good_only_for_adding_a_device() {
    let t = TestApp::new();
    let alice = User::new("alice");
    register_with_passphrase(&t, &alice, b"correct horse").await;

    // The right passphrase: an enrollment token and the sealed key bundles.
    let (client, login_id, response) = opaque_start(&t, "alice", b"correct horse").await;
    let (finalization, _export) = client.finish(b"correct horse", &response).unwrap();
    let finish = json!({"login_id": login_id, "finalization": b64(&finalization)});
    let (status, body) = t
        .json(Method::POST, "/v1/auth/opaque/finish", None, finish.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["key_bundles"][0], b64(b"CFKB-sealed"));
    let token = body["token"].as_str().unwrap().to_owned();
    // Single use.
    let (status, body) = t
        .json(Method::POST, "/v1/auth/opaque/finish", None, finish)
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );

    // The enrollment token opens nothing but the device chain.
    for path in [
        "/v1/account/key-bundles",
        "/v1/spaces",
        "/v1/users/alice",
        "/v1/inbox",
    ] {
        let (status, _) = t.json(Method::GET, path, Some(&token), Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
    let new_device = coffre_crypto::keys::SigningSecret::generate().unwrap();
    let entry1 = coffre_crypto::device::DeviceEntry::sign(
        alice.secret.sign_secret(),
        1,
        alice.entry0.hash(),
        coffre_crypto::device::DeviceAction::Add,
        &new_device.public_key(),
        2,
    )
    .unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/account/devices",
            Some(&token),
            json!({"entry": b64(entry1.encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The new device logs in with its own key.
    let challenge = t.challenge("alice", &new_device).await;
    let (status, body) = t
        .verify("alice", &new_device, &challenge, &new_device)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A wrong passphrase fails on the client (the gateway's answer does not open), and a
    // made-up finalization fails on the gateway with the same answer as everything else.
    let (client, login_id, response) = opaque_start(&t, "alice", b"wrong horse").await;
    assert!(client.finish(b"wrong horse", &response).is_err());
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/auth/opaque/finish",
            None,
            json!({"login_id": login_id, "finalization": b64(&[7; 64])}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    // An unknown handle, and an account without passphrase login, are answered like any other.
    for handle in ["nobody", "bob"] {
        if handle == "bob" {
            t.register(&User::new("bob")).await;
        }
        let (client, _, response) = opaque_start(&t, handle, b"correct horse").await;
        assert!(
            client.finish(b"correct horse", &response).is_err(),
            "{handle}"
        );
    }
    // An expired login cannot be finished.
    let (client, login_id, response) = opaque_start(&t, "alice", b"correct horse").await;
    let (finalization, _) = client.finish(b"correct horse", &response).unwrap();
    t.advance_ms(10 * 60 * 1000);
    let (status, _) = t
        .json(
            Method::POST,
            "/v1/auth/opaque/finish",
            None,
            json!({"login_id": login_id, "finalization": b64(&finalization)}),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
