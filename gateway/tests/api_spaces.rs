//! API tests through `api::dispatch`: spaces, membership, blobs, heads, quotas and roles, with
//! real signed entries and commits from `coffre-crypto`.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::field_reassign_with_default
)]

mod common;

use coffre_crypto::commit::{Commit, CommitRoot, LogHead};
use coffre_crypto::envelope::BlobRef;
use coffre_crypto::keys::{BlobId, BlobKey, EpochKey};
use coffre_crypto::membership::{MembershipLog, Role, UnsignedEntry};
use coffre_gateway::Config;
use common::{TestApp, User, b64, error_code};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// Alice owns a space (genesis + rotate stored); Bob is a reader, Carol a writer.
struct World {
    t: TestApp,
    alice: User,
    bob: User,
    carol: User,
    tokens: [String; 3],
    log: MembershipLog,
    key: EpochKey,
    space: String,
}

async fn world(config: Config) -> World {
    let t = TestApp::with_config(config);
    let (alice, bob, carol) = (User::new("alice"), User::new("bob"), User::new("carol"));
    let tokens = [
        t.onboard(&alice).await,
        t.onboard(&bob).await,
        t.onboard(&carol).await,
    ];
    let (mut log, key) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [3; 16]).unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/spaces",
            Some(&tokens[0]),
            json!({"genesis": b64(log.entries()[0].encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let space = body["space_id"].as_str().unwrap().to_owned();
    assert_eq!(space, log.space_id().to_hex());
    let members = format!("/v1/spaces/{space}/members");
    let (status, body) = t
        .json(
            Method::POST,
            &members,
            Some(&tokens[0]),
            json!({"entry": b64(log.entries()[1].encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    for (user, role) in [(&bob, Role::Reader), (&carol, Role::Writer)] {
        let entry = log
            .add(&alice.secret, &alice.signer, 0, &user.identity, role)
            .unwrap();
        let (status, body) = t
            .json(
                Method::POST,
                &members,
                Some(&tokens[0]),
                json!({"entry": b64(entry.encoded())}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        log.append(&entry).unwrap();
    }
    World {
        t,
        alice,
        bob,
        carol,
        tokens,
        log,
        key,
        space,
    }
}

fn blob(content: &[u8]) -> String {
    BlobId::from_bytes(*blake3::hash(content).as_bytes()).to_hex()
}

impl World {
    async fn put_blob(&self, token: usize, id: &str, content: &[u8]) -> (StatusCode, Value) {
        let path = format!("/v1/spaces/{}/blobs/{id}", self.space);
        let (status, _, body) = self
            .t
            .send(
                Method::PUT,
                &path,
                Some(&self.tokens[token]),
                Some("application/octet-stream"),
                content.to_vec(),
            )
            .await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, value)
    }

    fn commit(&self, parent: Option<&Commit>, author: &User) -> Commit {
        let root = CommitRoot {
            root: BlobRef {
                id: BlobId::from_bytes([1; 32]),
                key: BlobKey::from_bytes([2; 32]),
            },
            time_ms: 5,
            message: "m".into(),
        };
        Commit::next(
            &self.log,
            parent,
            &self.key,
            LogHead::NONE,
            &root,
            &author.signer,
        )
        .unwrap()
    }

    async fn put_head(&self, token: usize, seq: u64, commit: &Commit) -> (StatusCode, Value) {
        let path = format!("/v1/spaces/{}/heads/{seq}", self.space);
        self.t
            .json(
                Method::PUT,
                &path,
                Some(&self.tokens[token]),
                json!({"commit": b64(commit.encoded())}),
            )
            .await
    }
}

#[tokio::test]
async fn spaces_are_listed_with_roles_and_hidden_from_strangers() {
    let w = world(Config::default()).await;
    let (status, body) =
        w.t.json(Method::GET, "/v1/spaces", Some(&w.tokens[1]), Value::Null)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["spaces"][0]["role"], "reader");
    assert_eq!(body["spaces"][0]["membership_len"], 4);
    let dave = User::new("dave");
    let dave_token = w.t.onboard(&dave).await;
    let path = format!("/v1/spaces/{}/members", w.space);
    let (status, body) =
        w.t.json(Method::GET, &path, Some(&dave_token), Value::Null)
            .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, body) =
        w.t.json(
            Method::GET,
            &format!("{path}?since=2"),
            Some(&w.tokens[1]),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["len"], 4);
    assert_eq!(body["entries"].as_array().unwrap().len(), 2);
    let (status, _) =
        w.t.json(
            Method::GET,
            &format!("{path}?since=x"),
            Some(&w.tokens[1]),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn membership_append_by_a_non_admin_is_refused() {
    let w = world(Config::default()).await;
    let dave = User::new("dave");
    w.t.onboard(&dave).await;
    // The add entry Alice would sign, signed instead by Carol (a writer): well formed, validly
    // signed by the caller's active device, but the log's rights rule refuses it.
    let valid = w
        .log
        .add(
            &w.alice.secret,
            &w.alice.signer,
            0,
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
    .sign_to_bytes(&w.carol.signer)
    .unwrap();
    let path = format!("/v1/spaces/{}/members", w.space);
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[2]),
            json!({"entry": b64(&forged)}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_signed_data")
    );
    // Alice's valid entry sent by Carol: not signed by the caller.
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[2]),
            json!({"entry": b64(valid.encoded())}),
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_signed_data")
    );
    // Sent by Alice, it is stored.
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[0]),
            json!({"entry": b64(valid.encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seq"], 4);
}

#[tokio::test]
async fn blob_put_get_head_missing_and_list() {
    let w = world(Config::default()).await;
    let content = b"an encrypted envelope".to_vec();
    let id = blob(&content);
    let (status, body) = w.put_blob(2, &id, &content).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, _) = w.put_blob(2, &id, &content).await;
    assert_eq!(status, StatusCode::OK, "already stored");
    let path = format!("/v1/spaces/{}/blobs/{id}", w.space);
    let (status, headers, body) =
        w.t.send(Method::GET, &path, Some(&w.tokens[1]), None, Vec::new())
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.as_ref(), content.as_slice());
    assert_eq!(
        headers["content-length"],
        content.len().to_string().as_str()
    );
    let (status, headers, body) =
        w.t.send(Method::HEAD, &path, Some(&w.tokens[1]), None, Vec::new())
            .await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.is_empty());
    assert_eq!(
        headers["content-length"],
        content.len().to_string().as_str()
    );
    let absent = blob(b"absent");
    let (status, body) =
        w.t.json(
            Method::POST,
            &format!("/v1/spaces/{}/blobs/missing", w.space),
            Some(&w.tokens[1]),
            json!({"ids": [id, absent]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["missing"], json!([absent]));
    let (status, body) =
        w.t.json(
            Method::GET,
            &format!("/v1/spaces/{}/blobs?limit=10", w.space),
            Some(&w.tokens[1]),
            Value::Null,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["blobs"][0]["size"], content.len());
    let (status, body) =
        w.t.json(
            Method::GET,
            &format!("/v1/spaces/{}/blobs/{absent}", w.space),
            Some(&w.tokens[1]),
            Value::Null,
        )
        .await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::NOT_FOUND, "not_found")
    );
}

#[tokio::test]
async fn wrong_hash_is_422_and_nothing_is_stored() {
    let w = world(Config::default()).await;
    let id = blob(b"the real content");
    let (status, body) = w.put_blob(2, &id, b"other content").await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
    );
    let (status, body) =
        w.t.json(
            Method::POST,
            &format!("/v1/spaces/{}/blobs/missing", w.space),
            Some(&w.tokens[1]),
            json!({"ids": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["missing"], json!([id]));
    use coffre_gateway::store::MetaStore as _;
    assert_eq!(
        w.t.meta.account("carol").unwrap().unwrap().used_bytes,
        0,
        "reservation released"
    );
}

#[tokio::test]
async fn blob_limits_quota_and_roles() {
    let mut config = Config::default();
    config.limits.max_blob_bytes = 16;
    config.default_quota_bytes = 20;
    let w = world(config).await;
    let big = vec![7u8; 17];
    let (status, body) = w.put_blob(2, &blob(&big), &big).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );
    let first = vec![1u8; 15];
    let (status, _) = w.put_blob(2, &blob(&first), &first).await;
    assert_eq!(status, StatusCode::CREATED);
    let second = vec![2u8; 10];
    let (status, body) = w.put_blob(2, &blob(&second), &second).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded")
    );
    // A reader cannot upload.
    let (status, body) = w.put_blob(1, &blob(&second), &second).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::FORBIDDEN, "forbidden")
    );
    // Wrong media type.
    let path = format!("/v1/spaces/{}/blobs/{}", w.space, blob(&second));
    let (status, _, _) =
        w.t.send(
            Method::PUT,
            &path,
            Some(&w.tokens[0]),
            Some("application/json"),
            second.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

#[tokio::test]
async fn prune_respects_grace_and_releases_quota() {
    let mut config = Config::default();
    config.token_ttl = std::time::Duration::from_secs(7 * 24 * 3600);
    let w = world(config).await;
    let content = b"old chunk".to_vec();
    let id = blob(&content);
    assert_eq!(w.put_blob(2, &id, &content).await.0, StatusCode::CREATED);
    let path = format!("/v1/spaces/{}/prune", w.space);
    let absent = blob(b"never stored");
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[0]),
            json!({"delete": [id, absent]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"deleted": 0, "kept_recent": 1, "absent": 1}));
    let (status, _) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[2]),
            json!({"delete": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "writers cannot prune");
    w.t.advance_ms(Config::default().prune_grace.as_millis() as u64 + 1);
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[0]),
            json!({"delete": [id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["deleted"], 1);

    // A blob a client was told is present (and will reference without uploading) is claimed:
    // a prune right after must keep it, even though it was stored long ago.
    let kept = b"old but still referenced".to_vec();
    let kept_id = blob(&kept);
    assert_eq!(w.put_blob(2, &kept_id, &kept).await.0, StatusCode::CREATED);
    w.t.advance_ms(Config::default().prune_grace.as_millis() as u64 + 1);
    let missing_path = format!("/v1/spaces/{}/blobs/missing", w.space);
    let (status, body) =
        w.t.json(
            Method::POST,
            &missing_path,
            Some(&w.tokens[2]),
            json!({"ids": [kept_id]}),
        )
        .await;
    assert_eq!((status, body), (StatusCode::OK, json!({"missing": []})));
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[0]),
            json!({"delete": [kept_id]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"deleted": 0, "kept_recent": 1, "absent": 0}));
    use coffre_gateway::store::{BlobStore as _, MetaStore as _};
    assert_eq!(
        w.t.meta.account("carol").unwrap().unwrap().used_bytes,
        kept.len() as u64,
        "only the kept blob is charged"
    );
    assert!(
        !w.t.blobs
            .contains(
                &coffre_crypto::keys::SpaceId::from_hex(&w.space).unwrap(),
                &BlobId::from_hex(&id).unwrap()
            )
            .unwrap()
    );
}

#[tokio::test]
async fn heads_append_with_cas_and_verification() {
    let w = world(Config::default()).await;
    let first = w.commit(None, &w.carol);
    let (status, body) = w.put_head(2, 1, &first).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // The same seq again: conflict with the current head.
    let (status, body) = w.put_head(2, 1, &first).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::CONFLICT, "conflict")
    );
    assert_eq!(body["current_seq"], 1);
    // A reader cannot append; a path seq that differs from the commit's is a bad request.
    let second = w.commit(Some(&first), &w.carol);
    let (status, _) = w.put_head(1, 2, &second).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = w.put_head(2, 3, &second).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Carol cannot submit a commit authored by Alice.
    let by_alice = w.commit(Some(&first), &w.alice);
    let (status, body) = w.put_head(2, 2, &by_alice).await;
    assert_eq!(
        (status, error_code(&body)),
        (StatusCode::UNPROCESSABLE_ENTITY, "invalid_signed_data")
    );
    let (status, _) = w.put_head(2, 2, &second).await;
    assert_eq!(status, StatusCode::CREATED);
    let path = format!("/v1/spaces/{}/heads?since=1", w.space);
    let (status, body) =
        w.t.json(Method::GET, &path, Some(&w.tokens[1]), Value::Null)
            .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["head_seq"], 2);
    assert_eq!(body["commits"], json!([b64(second.encoded())]));
    // A membership entry whose commit_seq is stale conflicts with the head.
    let entry = w
        .log
        .change_role(&w.alice.signer, 0, w.bob.identity.sign_key(), Role::Writer)
        .unwrap();
    let path = format!("/v1/spaces/{}/members", w.space);
    let (status, body) =
        w.t.json(
            Method::POST,
            &path,
            Some(&w.tokens[0]),
            json!({"entry": b64(entry.encoded())}),
        )
        .await;
    assert_eq!(
        (status, body["current_seq"].clone()),
        (StatusCode::CONFLICT, json!(2))
    );
}

#[tokio::test]
async fn chunked_upload_over_the_limit_is_413_and_nothing_is_stored() {
    let mut config = Config::default();
    config.limits.max_blob_bytes = 16;
    let w = world(config).await;
    let big = vec![7u8; 40];
    let id = blob(&big);
    // No Content-Length: the limit is enforced while reading.
    let request = http::Request::builder()
        .method(Method::PUT)
        .uri(format!("/v1/spaces/{}/blobs/{id}", w.space))
        .header("authorization", format!("Bearer {}", w.tokens[2]))
        .header("content-type", "application/octet-stream")
        .body(http_body_util::Full::new(bytes::Bytes::from(big)))
        .unwrap();
    let peer = common::PEER.parse().unwrap();
    let response =
        coffre_gateway::api::dispatch(std::sync::Arc::clone(&w.t.app), request, peer).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    use coffre_gateway::store::MetaStore as _;
    let space = coffre_crypto::keys::SpaceId::from_hex(&w.space).unwrap();
    assert!(
        w.t.meta
            .blob_meta(&space, &BlobId::from_hex(&id).unwrap())
            .unwrap()
            .is_none()
    );
    assert_eq!(w.t.meta.account("carol").unwrap().unwrap().used_bytes, 0);
}

#[tokio::test]
async fn a_corrupt_stored_blob_is_never_served_complete() {
    use coffre_gateway::store::{BlobMeta, BlobStore as _, MetaStore as _};
    use http_body_util::BodyExt as _;
    let w = world(Config::default()).await;
    let content = vec![9u8; 200_000];
    let id = blob(&content);
    let space = coffre_crypto::keys::SpaceId::from_hex(&w.space).unwrap();
    let blob_id = BlobId::from_hex(&id).unwrap();
    // The disk flips a byte behind the gateway's back.
    let mut corrupt = content.clone();
    corrupt[150_000] ^= 1;
    let mut writer = w.t.blobs.begin(&space, &blob_id).unwrap();
    writer.write(&corrupt).unwrap();
    writer.commit().unwrap();
    let meta = BlobMeta {
        size: corrupt.len() as u64,
        created_ms: 0,
        uploader: "carol".into(),
    };
    assert!(w.t.meta.put_blob_meta(&space, &blob_id, &meta).unwrap());
    let request = http::Request::builder()
        .method(Method::GET)
        .uri(format!("/v1/spaces/{}/blobs/{id}", w.space))
        .header("authorization", format!("Bearer {}", w.tokens[1]))
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let peer = common::PEER.parse().unwrap();
    let response =
        coffre_gateway::api::dispatch(std::sync::Arc::clone(&w.t.app), request, peer).await;
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "headers go out before the body is read"
    );
    let mut body = response.into_body();
    let mut received = 0usize;
    let mut failed = false;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => received += frame.into_data().map(|d| d.len()).unwrap_or(0),
            Err(_) => {
                failed = true;
                break;
            }
        }
    }
    assert!(failed, "the body must end in an error");
    assert!(received < content.len(), "the last chunk is held back");
}

/// A blob batch body (`coffre_protocol::batch` framing).
fn batch_body(blobs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    for (id, content) in blobs {
        let id = BlobId::from_hex(id).unwrap();
        coffre_protocol::batch::push_record(&mut body, id.as_bytes(), content).unwrap();
    }
    body
}

impl World {
    async fn put_batch(&self, token: usize, body: Vec<u8>) -> (StatusCode, Value) {
        let path = format!("/v1/spaces/{}/blobs/batch", self.space);
        let (status, _, body) = self
            .t
            .send(
                Method::POST,
                &path,
                Some(&self.tokens[token]),
                Some("application/octet-stream"),
                body,
            )
            .await;
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    async fn fetch(&self, token: usize, ids: &[&str]) -> (StatusCode, Vec<u8>) {
        let path = format!("/v1/spaces/{}/blobs/fetch", self.space);
        let (status, _, body) = self
            .t
            .send(
                Method::POST,
                &path,
                Some(&self.tokens[token]),
                Some("application/json"),
                serde_json::to_vec(&json!({ "ids": ids })).unwrap(),
            )
            .await;
        (status, body.to_vec())
    }
}

#[tokio::test]
async fn blob_batch_upload_and_fetch() {
    let mut config = Config::default();
    config.limits.max_batch_bytes = 4096;
    config.default_quota_bytes = 5_000;
    let w = world(config).await;
    let (a, b, c) = (b"first".to_vec(), b"second".to_vec(), vec![9u8; 3000]);
    let (ida, idb, idc) = (blob(&a), blob(&b), blob(&c));

    // One wrong hash refuses the whole batch: nothing stored, nothing charged.
    let body = batch_body(&[(&ida, &a), (&idb, b"not second")]);
    let (status, answer) = w.put_batch(2, body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::UNPROCESSABLE_ENTITY, "hash_mismatch")
    );
    let (status, answer) =
        w.t.json(
            Method::POST,
            &format!("/v1/spaces/{}/blobs/missing", w.space),
            Some(&w.tokens[2]),
            json!({"ids": [ida, idb]}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer["missing"], json!([ida, idb]));
    use coffre_gateway::store::MetaStore as _;
    assert_eq!(w.t.meta.account("carol").unwrap().unwrap().used_bytes, 0);

    // A reader cannot upload.
    let body = batch_body(&[(&ida, &a)]);
    let (status, answer) = w.put_batch(1, body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::FORBIDDEN, "forbidden")
    );

    // Above the batch limit: 413 before anything is stored.
    let huge = vec![1u8; 5000];
    let body = batch_body(&[(&blob(&huge), &huge)]);
    let (status, answer) = w.put_batch(2, body).await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    // Bad framing, an empty batch, a repeated id: 400.
    for body in [
        Vec::new(),
        batch_body(&[(&ida, &a)])[..40].to_vec(),
        batch_body(&[(&ida, &a), (&ida, &a)]),
    ] {
        let (status, answer) = w.put_batch(2, body).await;
        assert_eq!(
            (status, error_code(&answer)),
            (StatusCode::BAD_REQUEST, "bad_request")
        );
    }

    // A good batch: stored, indexed, charged; a repeat is all present.
    let body = batch_body(&[(&ida, &a), (&idb, &b)]);
    let (status, answer) = w.put_batch(2, body.clone()).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, json!({"stored": 2, "present": 0}));
    assert_eq!(
        w.t.meta.account("carol").unwrap().unwrap().used_bytes,
        (a.len() + b.len()) as u64
    );
    let (status, answer) = w.put_batch(2, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, json!({"stored": 0, "present": 2}));
    let (status, answer) = w.put_batch(2, batch_body(&[(&idc, &c)])).await;
    assert_eq!(answer, json!({"stored": 1, "present": 0}), "{status}");
    // Readable one by one too.
    let path = format!("/v1/spaces/{}/blobs/{idb}", w.space);
    let (status, _, got) =
        w.t.send(Method::GET, &path, Some(&w.tokens[1]), None, Vec::new())
            .await;
    assert_eq!((status, got.to_vec()), (StatusCode::OK, b.clone()));

    // Quota: a batch that would pass it is refused whole.
    let d = vec![4u8; 1500];
    let e = vec![5u8; 1000];
    let (status, answer) = w
        .put_batch(2, batch_body(&[(&blob(&d), &d), (&blob(&e), &e)]))
        .await;
    assert_eq!(
        (status, error_code(&answer)),
        (StatusCode::INSUFFICIENT_STORAGE, "quota_exceeded")
    );
    assert_eq!(
        w.t.meta.account("carol").unwrap().unwrap().used_bytes,
        (a.len() + b.len() + c.len()) as u64
    );

    // Fetch (a reader may): a prefix that fits the limit, in the order asked.
    let (status, body) = w.fetch(1, &[&idb, &ida, &idc]).await;
    assert_eq!(status, StatusCode::OK);
    let records = coffre_protocol::batch::decode(&body, 1 << 20).unwrap();
    let got: Vec<(String, Vec<u8>)> = records
        .iter()
        .map(|(id, bytes)| (BlobId::from_bytes(*id).to_hex(), bytes.to_vec()))
        .collect();
    assert_eq!(
        got,
        vec![
            (idb.clone(), b.clone()),
            (ida.clone(), a.clone()),
            (idc.clone(), c.clone())
        ]
    );
    // The first blob is always sent, the rest only while the answer fits.
    let f = vec![6u8; 1500];
    let idf = blob(&f);
    let (status, _) = w.put_batch(2, batch_body(&[(&idf, &f)])).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = w.fetch(1, &[&idc, &idf, &ida]).await;
    assert_eq!(status, StatusCode::OK);
    let records = coffre_protocol::batch::decode(&body, 1 << 20).unwrap();
    assert_eq!(records.len(), 1, "only the first fits in 4096 bytes");
    assert_eq!(BlobId::from_bytes(records[0].0).to_hex(), idc);
    let (status, _) = w.fetch(1, &[&ida, &blob(b"never stored")]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = w.fetch(1, &[&ida, &ida]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = w.fetch(1, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A `blobs/fetch` answer keeps its memory permit until its body is dropped (sent, or abandoned
/// by the client), so at most `MAX_BATCHES_IN_MEMORY` answers exist at once however many
/// streams ask, including answers still waiting to be sent.
#[tokio::test]
async fn fetch_answers_hold_their_memory_permit_until_sent_or_dropped() {
    use coffre_gateway::app::MAX_BATCHES_IN_MEMORY;
    use http_body_util::BodyExt as _;

    let w = world(Config::default()).await;
    let content = vec![5u8; 600 * 1024]; // more than one piece of the answer body
    let id = blob(&content);
    let (status, _) = w.put_batch(2, batch_body(&[(&id, &content)])).await;
    assert_eq!(status, StatusCode::OK);
    let fetch = || {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(format!("/v1/spaces/{}/blobs/fetch", w.space))
            .header("authorization", format!("Bearer {}", w.tokens[1]))
            .header("content-type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                serde_json::to_vec(&json!({ "ids": [id] })).unwrap(),
            )))
            .unwrap();
        let peer = common::PEER.parse().unwrap();
        coffre_gateway::api::dispatch(std::sync::Arc::clone(&w.t.app), request, peer)
    };

    // Answers assembled but not yet sent: the permits are all taken.
    let mut held = Vec::new();
    for _ in 0..MAX_BATCHES_IN_MEMORY {
        let response = soon(fetch(), "a permit is free").await;
        assert_eq!(response.status(), StatusCode::OK);
        held.push(response);
    }
    let mut waiting = Box::pin(fetch());
    assert!(
        still_pending(&mut waiting).await,
        "one more answer was assembled while {MAX_BATCHES_IN_MEMORY} unsent ones were held"
    );

    // Sending one answer to the end frees its permit: the waiting fetch proceeds.
    let sent = held.remove(0).into_body().collect().await.unwrap();
    let sent = sent.to_bytes();
    let records = coffre_protocol::batch::decode(&sent, 1 << 20).unwrap();
    assert_eq!(records.len(), 1);
    assert!(records[0].1 == content.as_slice());
    let response = soon(waiting, "the waiting fetch gets the freed permit").await;
    assert_eq!(response.status(), StatusCode::OK);
    held.push(response);

    // An answer dropped unsent (the client went away) frees its permit too.
    let mut waiting = Box::pin(fetch());
    assert!(still_pending(&mut waiting).await);
    drop(held.pop());
    let response = soon(
        waiting,
        "the waiting fetch gets the dropped answer's permit",
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// Awaits `future`, failing the test with `what` after 10 s.
async fn soon<T>(future: impl std::future::Future<Output = T>, what: &str) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), future)
        .await
        .unwrap_or_else(|_| panic!("timed out: {what}"))
}

/// Whether `future` is still pending after 300 ms of polling (it is not dropped).
async fn still_pending<F: std::future::Future + Unpin>(future: &mut F) -> bool {
    tokio::time::timeout(std::time::Duration::from_millis(300), future)
        .await
        .is_err()
}
