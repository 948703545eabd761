//! End to end against the real `coffre-gateway` binary over TLS on 127.0.0.1, with real
//! identities, device entries, membership entries, commits and envelopes from `coffre-crypto`:
//! registration and device login, a space with an owner, a writer and a reader, blobs (put, get,
//! head, missing, hash mismatch, roles, strangers), heads with compare-and-swap, the membership
//! log's rights rule, quota and size limits, metrics, and an operator-blindness scan of the
//! gateway's log and every file of its data directory.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use coffre_crypto::commit::{Commit, CommitRoot, LogHead};
use coffre_crypto::envelope::{self, BlobKind, BlobRef, SealedBlob};
use coffre_crypto::keys::{BlobId, BlobKey, EpochKey};
use coffre_crypto::membership::{MembershipLog, Role, UnsignedEntry};
use coffre_protocol::types::{Bytes64, ChallengeResponse, Id32, TokenResponse};
use coffre_protocol::{LOGIN_DOMAIN, login_message};
use common::{User, b64, error_code};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use rustls::ClientConfig;
use serde_json::{Value, json};
use support::{Gateway, Options};

/// Longest any single request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the whole scenario may take.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);

/// A client for one gateway: each request on a fresh pinned TLS connection (HTTP/1.1 or HTTP/2).
struct Api {
    addr: SocketAddr,
    h1: Arc<ClientConfig>,
    h2: Arc<ClientConfig>,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> Value {
        if self.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.body)
                .unwrap_or_else(|e| panic!("{}: not JSON ({e}): {:?}", self.status, self.body))
        }
    }
}

impl Api {
    fn new(gateway: &Gateway) -> Api {
        Api {
            addr: gateway.addr,
            h1: gateway.client_config(&[b"http/1.1"]),
            h2: gateway.client_config(&[b"h2"]),
        }
    }

    async fn send_with(
        &self,
        http2: bool,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        let mut builder = Request::builder().method(method.clone());
        if http2 {
            builder = builder.uri(format!("https://localhost{path}"));
        } else {
            builder = builder.uri(path).header("host", "localhost");
        }
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        if method != Method::GET && method != Method::HEAD {
            builder = builder.header("content-length", body.len());
        }
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let exchange = async {
            let response = if http2 {
                let tls = support::connect(self.addr, Arc::clone(&self.h2))
                    .await
                    .expect("connect");
                let (mut sender, connection) = hyper::client::conn::http2::handshake(
                    hyper_util::rt::TokioExecutor::new(),
                    TokioIo::new(tls),
                )
                .await
                .expect("h2 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("h2 request")
            } else {
                let tls = support::connect(self.addr, Arc::clone(&self.h1))
                    .await
                    .expect("connect");
                let (mut sender, connection) =
                    hyper::client::conn::http1::handshake(TokioIo::new(tls))
                        .await
                        .expect("http1 handshake");
                tokio::spawn(connection);
                sender.send_request(request).await.expect("http1 request")
            };
            let (parts, body) = response.into_parts();
            let body = body.collect().await.expect("response body").to_bytes();
            Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            }
        };
        tokio::time::timeout(REQUEST_TIMEOUT, exchange)
            .await
            .unwrap_or_else(|_| panic!("request {path} timed out"))
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Reply {
        self.send_with(false, method, path, token, content_type, body)
            .await
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let content_type = (!body.is_null()).then_some("application/json");
        let reply = self.send(method, path, token, content_type, bytes).await;
        (reply.status, reply.json())
    }

    async fn register(&self, user: &User) {
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/accounts",
                None,
                json!({
                    "identity": b64(user.identity.encoded()),
                    "device_entry": b64(user.entry0.encoded()),
                    "key_bundles": [b64(b"CFKB-opaque")],
                }),
            )
            .await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "register {}: {body}",
            user.handle
        );
        assert_eq!(body["handle"], user.handle);
    }

    /// Device login: challenge, sign the login message, verify; returns the bearer token.
    async fn login(&self, user: &User) -> String {
        let device_key = Id32(user.device.public_key().to_bytes());
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/auth/device/challenge",
                None,
                json!({"handle": user.handle, "device_key": device_key}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let challenge: ChallengeResponse = serde_json::from_value(body).unwrap();
        let challenge = challenge.challenge.0;
        assert_eq!(challenge.len(), 32);
        let signature = user
            .device
            .sign(LOGIN_DOMAIN, &login_message(&user.handle, &challenge));
        let verify = json!({
            "handle": user.handle,
            "device_key": device_key,
            "challenge": Bytes64(challenge.clone()),
            "signature": b64(&signature),
        });
        let (status, body) = self
            .json(Method::POST, "/v1/auth/device/verify", None, verify.clone())
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token: TokenResponse = serde_json::from_value(body).unwrap();
        assert!(token.token.starts_with("cft_"), "token shape");
        // The challenge is single use.
        let (status, body) = self
            .json(Method::POST, "/v1/auth/device/verify", None, verify)
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        );
        token.token
    }

    async fn put_blob(&self, space: &str, token: &str, id: &str, body: Vec<u8>) -> Reply {
        self.send(
            Method::PUT,
            &format!("/v1/spaces/{space}/blobs/{id}"),
            Some(token),
            Some("application/octet-stream"),
            body,
        )
        .await
    }

    async fn missing(&self, space: &str, token: &str, ids: &[&str]) -> Value {
        let (status, body) = self
            .json(
                Method::POST,
                &format!("/v1/spaces/{space}/blobs/missing"),
                Some(token),
                json!({ "ids": ids }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["missing"].clone()
    }

    async fn append_member(&self, space: &str, token: &str, entry: &[u8]) -> (StatusCode, Value) {
        self.json(
            Method::POST,
            &format!("/v1/spaces/{space}/members"),
            Some(token),
            json!({ "entry": b64(entry) }),
        )
        .await
    }

    async fn put_head(&self, space: &str, token: &str, commit: &Commit) -> (StatusCode, Value) {
        self.json(
            Method::PUT,
            &format!("/v1/spaces/{space}/heads/{}", commit.seq()),
            Some(token),
            json!({ "commit": b64(commit.encoded()) }),
        )
        .await
    }
}

/// A space owned by `owner` with `members` added (genesis and rotate through the API, then one
/// signed `add` per member). Returns the log, the epoch key and the space id.
async fn create_space(
    api: &Api,
    owner: &User,
    owner_token: &str,
    members: &[(&User, Role)],
) -> (MembershipLog, EpochKey, String) {
    let (mut log, key) =
        MembershipLog::create(&owner.identity, &owner.secret, &owner.signer, [7; 16]).unwrap();
    let (status, body) = api
        .json(
            Method::POST,
            "/v1/spaces",
            Some(owner_token),
            json!({"genesis": b64(log.entries()[0].encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let space = body["space_id"].as_str().unwrap().to_owned();
    assert_eq!(space, log.space_id().to_hex(), "space id = H(genesis)");
    let (status, body) = api
        .append_member(&space, owner_token, log.entries()[1].encoded())
        .await;
    assert_eq!(
        (status, body["seq"].clone()),
        (StatusCode::CREATED, json!(1)),
        "{body}"
    );
    for (member, role) in members {
        let entry = log
            .add(&owner.secret, &owner.signer, 0, &member.identity, *role)
            .unwrap();
        let (status, body) = api
            .append_member(&space, owner_token, entry.encoded())
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        log.append(&entry).unwrap();
    }
    (log, key, space)
}

fn commit_root(message: &str) -> CommitRoot {
    CommitRoot {
        root: BlobRef {
            id: BlobId::from_bytes([1; 32]),
            key: BlobKey::from_bytes([2; 32]),
        },
        time_ms: 1_700_000_000_000,
        message: message.into(),
    }
}

fn seal(content: &[u8]) -> (BlobKey, SealedBlob) {
    let key = BlobKey::generate().unwrap();
    let sealed = envelope::seal(&key, BlobKind::Chunk, content).unwrap();
    (key, sealed)
}

fn random_marker() -> String {
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("PLAINTEXT-MARKER-{hex}")
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let kind = entry.file_type().unwrap();
        if kind.is_dir() {
            files_under(&entry.path(), out);
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Sum of the `coffre_requests_total` samples, and the sample lines.
fn request_counters(metrics: &str) -> (f64, Vec<&str>) {
    let lines: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("coffre_requests_total{"))
        .collect();
    let sum = lines
        .iter()
        .map(|l| l.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum();
    (sum, lines)
}

#[tokio::test]
async fn the_real_binary_serves_a_shared_space_end_to_end() {
    let mut gateway = Gateway::start();
    let api = Api::new(&gateway);
    let scenario = async {
        let (alice, bob, carol, dave) = (
            User::new("alice"),
            User::new("bob"),
            User::new("carol"),
            User::new("dave"),
        );
        for user in [&alice, &bob, &carol, &dave] {
            api.register(user).await;
        }
        let (status, body) = api
            .json(
                Method::POST,
                "/v1/accounts",
                None,
                json!({
                    "identity": b64(alice.identity.encoded()),
                    "device_entry": b64(alice.entry0.encoded()),
                    "key_bundles": [],
                }),
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::CONFLICT, "handle_taken")
        );
        let ta = api.login(&alice).await;
        let tb = api.login(&bob).await;
        let tc = api.login(&carol).await;
        let td = api.login(&dave).await;
        let (status, body) = api
            .json(
                Method::GET,
                "/v1/spaces",
                Some("cft_not-a-token"),
                Value::Null,
            )
            .await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNAUTHORIZED, "unauthenticated")
        );

        // Alice's space: Bob writes, Carol reads.
        let (mut log, epoch_key, space) = create_space(
            &api,
            &alice,
            &ta,
            &[(&bob, Role::Writer), (&carol, Role::Reader)],
        )
        .await;
        let (status, body) = api
            .json(Method::GET, "/v1/spaces", Some(&tc), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["spaces"][0]["space_id"], space.as_str());
        assert_eq!(body["spaces"][0]["role"], "reader");
        assert_eq!(body["spaces"][0]["membership_len"], 4);
        let (status, body) = api
            .json(
                Method::GET,
                &format!("/v1/spaces/{space}/members"),
                Some(&tc),
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let entries: Vec<Vec<u8>> = serde_json::from_value::<Vec<Bytes64>>(body["entries"].clone())
            .unwrap()
            .into_iter()
            .map(|b| b.0)
            .collect();
        let served = MembershipLog::decode_and_verify(&entries).unwrap();
        assert_eq!(
            served.state().head(),
            log.state().head(),
            "the served log is Alice's log"
        );

        // Blobs: real envelopes, fetched back byte-identical over HTTP/1.1 and HTTP/2.
        let marker = random_marker();
        let plaintext = format!("{marker} the quarterly numbers, very secret").repeat(200);
        let (blob_key, sealed) = seal(plaintext.as_bytes());
        let id = sealed.id().to_hex();
        let envelope_bytes = sealed.as_bytes().to_vec();
        let reply = api.put_blob(&space, &ta, &id, envelope_bytes.clone()).await;
        assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
        let reply = api.put_blob(&space, &ta, &id, envelope_bytes.clone()).await;
        assert_eq!(reply.status, StatusCode::OK, "already stored");
        let path = format!("/v1/spaces/{space}/blobs/{id}");
        for http2 in [false, true] {
            let reply = api
                .send_with(http2, Method::GET, &path, Some(&tc), None, Vec::new())
                .await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(
                reply.body.as_ref(),
                envelope_bytes.as_slice(),
                "byte-identical"
            );
            let opened = envelope::open(&blob_key, BlobKind::Chunk, &reply.body).unwrap();
            assert_eq!(opened, plaintext.as_bytes());
        }
        let reply = api
            .send(Method::HEAD, &path, Some(&tc), None, Vec::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert!(reply.body.is_empty());
        assert_eq!(
            reply.headers["content-length"],
            envelope_bytes.len().to_string().as_str()
        );

        // A body that does not hash to its id: 422, and nothing stored.
        let (_, other) = seal(b"other content");
        let (_, claimed) = seal(b"claimed content");
        let claimed_id = claimed.id().to_hex();
        let reply = api
            .put_blob(&space, &ta, &claimed_id, other.as_bytes().to_vec())
            .await;
        assert_eq!(
            (reply.status, error_code(&reply.json())),
            (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
        );
        let absent = other.id().to_hex();
        assert_eq!(
            api.missing(&space, &tc, &[&id, &claimed_id, &absent]).await,
            json!([claimed_id, absent])
        );
        let reply = api
            .send(
                Method::GET,
                &format!("/v1/spaces/{space}/blobs/{claimed_id}"),
                Some(&ta),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND);

        // Dave is no member: the space does not exist for him.
        for (method, path) in [
            (Method::GET, format!("/v1/spaces/{space}/members")),
            (Method::GET, format!("/v1/spaces/{space}/blobs/{id}")),
            (Method::HEAD, format!("/v1/spaces/{space}/blobs/{id}")),
            (Method::GET, format!("/v1/spaces/{space}/heads")),
        ] {
            let reply = api
                .send(method.clone(), &path, Some(&td), None, Vec::new())
                .await;
            assert_eq!(reply.status, StatusCode::NOT_FOUND, "{method} {path}");
        }
        let (_, daves) = seal(b"dave's chunk");
        let reply = api
            .put_blob(&space, &td, &daves.id().to_hex(), daves.as_bytes().to_vec())
            .await;
        assert_eq!(
            (reply.status, error_code(&reply.json())),
            (StatusCode::NOT_FOUND, "not_found")
        );

        // Roles: Carol (reader) cannot upload; Bob (writer) can.
        let (_, bobs) = seal(format!("{marker} bob's chunk").as_bytes());
        let bobs_id = bobs.id().to_hex();
        let reply = api
            .put_blob(&space, &tc, &bobs_id, bobs.as_bytes().to_vec())
            .await;
        assert_eq!(
            (reply.status, error_code(&reply.json())),
            (StatusCode::FORBIDDEN, "forbidden")
        );
        assert_eq!(
            api.missing(&space, &ta, &[&bobs_id]).await,
            json!([bobs_id])
        );
        let reply = api
            .put_blob(&space, &tb, &bobs_id, bobs.as_bytes().to_vec())
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let reply = api
            .send(
                Method::GET,
                &format!("/v1/spaces/{space}/blobs/{bobs_id}"),
                Some(&ta),
                None,
                Vec::new(),
            )
            .await;
        assert_eq!(reply.body.as_ref(), bobs.as_bytes());
        assert_eq!(api.missing(&space, &tc, &[&id, &bobs_id]).await, json!([]));

        // Heads: Alice appends commit 1; Bob's concurrent commit 1 loses; he re-reads, appends 2.
        let first = Commit::next(
            &log,
            None,
            &epoch_key,
            LogHead::NONE,
            &commit_root("a1"),
            &alice.signer,
        )
        .unwrap();
        let (status, body) = api.put_head(&space, &ta, &first).await;
        assert_eq!(
            (status, body["seq"].clone()),
            (StatusCode::CREATED, json!(1))
        );
        let racing = Commit::next(
            &log,
            None,
            &epoch_key,
            LogHead::NONE,
            &commit_root("b1"),
            &bob.signer,
        )
        .unwrap();
        assert_eq!(racing.seq(), 1);
        let (status, body) = api.put_head(&space, &tb, &racing).await;
        assert_eq!(
            (status, error_code(&body), body["current_seq"].clone()),
            (StatusCode::CONFLICT, "conflict", json!(1))
        );
        let (status, body) = api
            .json(
                Method::GET,
                &format!("/v1/spaces/{space}/heads?since=0"),
                Some(&tb),
                Value::Null,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["head_seq"], 1);
        let commits: Vec<Bytes64> = serde_json::from_value(body["commits"].clone()).unwrap();
        assert_eq!(commits.len(), 1);
        let head = Commit::decode(&commits[0].0).unwrap();
        coffre_crypto::commit::verify_next(None, &head, &log).unwrap();
        assert_eq!(head.hash(), first.hash());
        let second = Commit::next(
            &log,
            Some(&head),
            &epoch_key,
            LogHead::NONE,
            &commit_root("b2"),
            &bob.signer,
        )
        .unwrap();
        assert_eq!(second.seq(), 2);
        let (status, body) = api.put_head(&space, &tb, &second).await;
        assert_eq!(
            (status, body["seq"].clone()),
            (StatusCode::CREATED, json!(2)),
            "{body}"
        );
        // Carol (reader) cannot append a commit (the crypto crate will not even build one for
        // her, so she sends one of Bob's).
        let third = Commit::next(
            &log,
            Some(&second),
            &epoch_key,
            LogHead::NONE,
            &commit_root("c3"),
            &bob.signer,
        )
        .unwrap();
        let (status, _) = api.put_head(&space, &tc, &third).await;
        assert_eq!(status, StatusCode::FORBIDDEN);

        // A membership entry adding Dave, validly signed by Bob's device, but Bob is only a
        // writer: the log's rules refuse it.
        let valid = log
            .add(
                &alice.secret,
                &alice.signer,
                2,
                &dave.identity,
                Role::Reader,
            )
            .unwrap();
        let forged = UnsignedEntry {
            space_id: *valid.space_id(),
            seq: valid.seq(),
            prev_hash: *valid.prev_hash(),
            commit_seq: valid.commit_seq(),
            epoch: valid.epoch(),
            action: valid.action().clone(),
            epoch_commitment: *valid.epoch_commitment(),
            wraps: valid.wraps().to_vec(),
            prev_epoch_seal: Vec::new(),
        }
        .sign_to_bytes(&bob.signer)
        .unwrap();
        let (status, body) = api.append_member(&space, &tb, &forged).await;
        assert_eq!(
            (status, error_code(&body)),
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_signed_data")
        );
        // Alice's own entry, sent by Alice, is accepted; Dave now sees the space.
        let (status, body) = api.append_member(&space, &ta, valid.encoded()).await;
        assert_eq!(
            (status, body["seq"].clone()),
            (StatusCode::CREATED, json!(4)),
            "{body}"
        );
        log.append(&valid).unwrap();
        let reply = api
            .send(Method::GET, &path, Some(&td), None, Vec::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.body.as_ref(), envelope_bytes.as_slice());

        // Metrics count what happened (no auth needed, closed label sets).
        let reply = api
            .send(Method::GET, "/metrics", None, None, Vec::new())
            .await;
        assert_eq!(reply.status, StatusCode::OK);
        let metrics = String::from_utf8(reply.body.to_vec()).unwrap();
        let (total, lines) = request_counters(&metrics);
        assert!(total >= 40.0, "request counters: {lines:?}");
        assert!(
            lines.iter().any(|l| l.contains("status=\"201\"")),
            "{lines:?}"
        );
        assert!(
            lines.iter().any(|l| l.contains("status=\"409\"")),
            "{lines:?}"
        );
        assert!(!metrics.contains(&ta) && !metrics.contains(&space) && !metrics.contains(&id));

        Secrets {
            marker,
            tokens: vec![ta, tb, tc, td],
            keys: vec![
                blob_key.expose_secret().to_vec(),
                alice.device.expose_secret().to_vec(),
                bob.device.expose_secret().to_vec(),
                epoch_key.expose_secret().to_vec(),
            ],
            envelope_window: envelope_bytes[64..96].to_vec(),
        }
    };
    let secrets = tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("scenario timed out");

    // Stop cleanly (flushes the log and the store), then scan the log and the data directory.
    assert!(gateway.stop().success(), "{}", gateway.stderr_text());
    secrets.assert_absent_from_log(&gateway.stderr_text());
    secrets.assert_absent_from_dir(&gateway.data_dir);
}

/// What the operator must never see.
struct Secrets {
    marker: String,
    tokens: Vec<String>,
    keys: Vec<Vec<u8>>,
    envelope_window: Vec<u8>,
}

impl Secrets {
    fn byte_needles(&self) -> Vec<(String, Vec<u8>)> {
        let b64 = base64::engine::general_purpose::STANDARD;
        let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut needles = vec![(
            "plaintext marker".to_owned(),
            self.marker.as_bytes().to_vec(),
        )];
        for token in &self.tokens {
            needles.push(("token".into(), token.as_bytes().to_vec()));
            let part = token.strip_prefix("cft_").unwrap();
            let raw = b64url.decode(part).unwrap();
            assert_eq!(raw.len(), 32);
            needles.push(("token base64 part".into(), part.as_bytes().to_vec()));
            needles.push(("raw token bytes".into(), raw));
        }
        for key in &self.keys {
            needles.push(("key bytes".into(), key.clone()));
            needles.push(("key hex".into(), hex(key).into_bytes()));
            needles.push(("key base64".into(), b64.encode(key).into_bytes()));
        }
        needles
    }

    fn assert_absent_from_log(&self, log: &str) {
        assert!(!log.is_empty());
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut needles = self.byte_needles();
        needles.push((
            "envelope bytes (hex)".into(),
            hex(&self.envelope_window).into_bytes(),
        ));
        needles.push((
            "envelope bytes (base64)".into(),
            b64.encode(&self.envelope_window[..30]).into_bytes(),
        ));
        needles.push(("envelope bytes".into(), self.envelope_window.clone()));
        for (what, needle) in needles {
            assert!(
                !contains(log.as_bytes(), &needle),
                "the gateway log contains a {what}"
            );
        }
    }

    fn assert_absent_from_dir(&self, dir: &Path) {
        let mut files = Vec::new();
        files_under(dir, &mut files);
        assert!(files.len() >= 3, "{files:?}");
        let needles = self.byte_needles();
        let mut scanned = 0usize;
        for file in &files {
            let bytes = std::fs::read(file).unwrap();
            scanned += bytes.len();
            for (what, needle) in &needles {
                assert!(
                    !contains(&bytes, needle),
                    "{} contains a {what}",
                    file.display()
                );
            }
        }
        assert!(scanned > 0);
        assert!(
            files.iter().any(|f| f.ends_with("db")),
            "the sled database is scanned: {files:?}"
        );
        // Positive controls: the scan does see stored content (the envelope, the handles).
        let everything: Vec<u8> = files
            .iter()
            .flat_map(|f| std::fs::read(f).unwrap())
            .collect();
        assert!(
            contains(&everything, &self.envelope_window),
            "envelope stored"
        );
        assert!(contains(&everything, b"carol"), "handles stored");
        eprintln!(
            "operator-blindness scan: {} files, {scanned} bytes, {} needles, none found: {files:?}",
            files.len(),
            needles.len()
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn quota_and_size_limits_hold_on_the_real_binary() {
    let mut gateway = Gateway::start_with(
        Options::default()
            .env("COFFRE_GATEWAY_QUOTA_BYTES", "3000")
            .env("COFFRE_GATEWAY_MAX_BLOB_BYTES", "2048"),
    );
    let api = Api::new(&gateway);
    let scenario = async {
        let alice = User::new("alice");
        api.register(&alice).await;
        let token = api.login(&alice).await;
        let (_, _, space) = create_space(&api, &alice, &token, &[]).await;

        // Over the size limit: 413 from the declared length, nothing stored.
        let (_, big) = seal(&[5u8; 2100]);
        assert!(big.as_bytes().len() > 2048);
        let big_id = big.id().to_hex();
        let reply = api
            .put_blob(&space, &token, &big_id, big.as_bytes().to_vec())
            .await;
        assert_eq!(
            (reply.status, error_code(&reply.json())),
            (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
        );
        assert_eq!(
            api.missing(&space, &token, &[&big_id]).await,
            json!([big_id])
        );

        // Within the quota, then past it.
        let (_, first) = seal(&[1u8; 1500]);
        let (_, second) = seal(&[2u8; 1500]);
        assert!(first.as_bytes().len() + second.as_bytes().len() > 3000);
        assert!(first.as_bytes().len() <= 2048);
        let reply = api
            .put_blob(
                &space,
                &token,
                &first.id().to_hex(),
                first.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
        let second_id = second.id().to_hex();
        let reply = api
            .put_blob(&space, &token, &second_id, second.as_bytes().to_vec())
            .await;
        assert_eq!(
            (reply.status, error_code(&reply.json())),
            (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded")
        );
        assert_eq!(
            api.missing(&space, &token, &[&second_id]).await,
            json!([second_id])
        );
        // A failed upload released its reservation: a small blob still fits.
        let (_, small) = seal(&[3u8; 100]);
        let reply = api
            .put_blob(
                &space,
                &token,
                &small.id().to_hex(),
                small.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::CREATED);
    };
    tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .expect("scenario timed out");
    assert!(gateway.stop().success());
    // The store is consistent afterwards (quota usage = sum of blob sizes, every hash).
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(["check", "--read-data", "--data"])
        .arg(&gateway.data_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}
