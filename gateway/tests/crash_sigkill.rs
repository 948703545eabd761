//! Fault test: SIGKILL the real gateway while several clients upload (single PUTs and blob
//! batches), restart it on the same data
//! directory, and prove that every acknowledged (2xx) blob is intact and that the store is
//! consistent (`coffre-gateway check --read-data` exits 0). Repeated over several kills, for the
//! files blob backend (the default) and once for the sled blob backend.
//!
//! Unacknowledged uploads may or may not have been kept; either way they must never be corrupt,
//! which `check --read-data` proves (it hashes every stored body against its id).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffre_crypto::membership::MembershipLog;
use common::{User, b64};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};
use support::{Gateway, Options};

const UPLOADERS: usize = 8;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bound on one uploader's life in a round (it normally ends when the gateway dies).
const UPLOADER_DEADLINE: Duration = Duration::from_secs(20);
const MIN_BLOB: usize = 256 * 1024;
const MAX_BLOB: usize = 1024 * 1024;
/// Uploaders (of `UPLOADERS`) that send blob batches instead of single PUTs.
const BATCH_UPLOADERS: usize = 2;
/// Blobs per batch: above the files backend's whole-filesystem sync threshold
/// (`FILESYSTEM_SYNC_MIN`), so the `syncfs` path is what gets killed.
const BATCH_BLOBS: usize = 24;
const MAX_SMALL_BLOB: usize = 16 * 1024;

fn random_u64() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).unwrap();
    u64::from_le_bytes(bytes)
}

fn random_bytes(min: usize, max: usize) -> Vec<u8> {
    let len = min + (random_u64() as usize) % (max - min + 1);
    let mut body = vec![0u8; len];
    getrandom::fill(&mut body).unwrap();
    body
}

fn random_blob() -> Vec<u8> {
    random_bytes(MIN_BLOB, MAX_BLOB)
}

/// A `blobs/batch` body of `BATCH_BLOBS` fresh small blobs, and their ids (hex).
fn random_batch() -> (Vec<u8>, Vec<String>) {
    let mut body = Vec::new();
    let mut ids = Vec::with_capacity(BATCH_BLOBS);
    for _ in 0..BATCH_BLOBS {
        let blob = random_bytes(1, MAX_SMALL_BLOB);
        let id = blake3::hash(&blob);
        coffre_protocol::batch::push_record(&mut body, id.as_bytes(), &blob).unwrap();
        ids.push(id.to_hex().to_string());
    }
    (body, ids)
}

/// Sends one request on a fresh HTTP/1.1 connection; panics on transport errors or timeouts
/// (used only while the gateway is supposed to be up).
async fn request(
    gateway: &Gateway,
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> (StatusCode, Bytes) {
    let exchange = async {
        let mut sender = gateway.http1_with::<Full<Bytes>>().await;
        let mut builder = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("content-length", body.len());
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        let response = sender
            .send_request(builder.body(Full::new(Bytes::from(body))).unwrap())
            .await
            .expect("request");
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        (status, body)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{path} timed out"))
}

async fn json(
    gateway: &Gateway,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let bytes = serde_json::to_vec(&body).unwrap();
    let (status, body) = request(
        gateway,
        method,
        path,
        token,
        Some("application/json"),
        bytes,
    )
    .await;
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body).unwrap()
    };
    (status, value)
}

async fn login(gateway: &Gateway, user: &User) -> String {
    let device_key = coffre_protocol::types::Id32(user.device.public_key().to_bytes());
    let (status, body) = json(
        gateway,
        Method::POST,
        "/v1/auth/device/challenge",
        None,
        json!({"handle": user.handle, "device_key": device_key}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let challenge: coffre_protocol::types::ChallengeResponse =
        serde_json::from_value(body).unwrap();
    let signature = user.device.sign(
        coffre_protocol::LOGIN_DOMAIN,
        &coffre_protocol::login_message(&user.handle, &challenge.challenge.0),
    );
    let (status, body) = json(
        gateway,
        Method::POST,
        "/v1/auth/device/verify",
        None,
        json!({
            "handle": user.handle,
            "device_key": device_key,
            "challenge": challenge.challenge,
            "signature": b64(&signature),
        }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

/// Registers `user`, creates a space it owns (genesis and rotate); returns the space id.
async fn setup(gateway: &Gateway, user: &User) -> String {
    let (status, body) = json(
        gateway,
        Method::POST,
        "/v1/accounts",
        None,
        json!({
            "identity": b64(user.identity.encoded()),
            "device_entry": b64(user.entry0.encoded()),
            "key_bundles": [],
        }),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = login(gateway, user).await;
    let (log, _key) =
        MembershipLog::create(&user.identity, &user.secret, &user.signer, [1; 16]).unwrap();
    let (status, body) = json(
        gateway,
        Method::POST,
        "/v1/spaces",
        Some(&token),
        json!({"genesis": b64(log.entries()[0].encoded())}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let space = body["space_id"].as_str().unwrap().to_owned();
    let (status, body) = json(
        gateway,
        Method::POST,
        &format!("/v1/spaces/{space}/members"),
        Some(&token),
        json!({"entry": b64(log.entries()[1].encoded())}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    space
}

/// One uploader: PUTs fresh random blobs (or, with `batches`, POSTs blob batches) on one
/// connection until it fails (the gateway died), `stop` is set, or the deadline passes. Records
/// the acknowledged ids (hex) in `acknowledged`; returns the unexpected answers (any status other
/// than 201 for a PUT, 200 for a batch).
async fn uploader(
    gateway_addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
    space: String,
    token: String,
    stop: Arc<AtomicBool>,
    acknowledged: Arc<Mutex<Vec<String>>>,
    batches: bool,
) -> Vec<String> {
    let mut unexpected = Vec::new();
    let deadline = Instant::now() + UPLOADER_DEADLINE;
    let Ok(tls) = support::connect(gateway_addr, config).await else {
        return unexpected;
    };
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(hyper_util::rt::TokioIo::new(tls))
            .await
    else {
        return unexpected;
    };
    tokio::spawn(connection);
    while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
        let (method, path, body, ids, expected) = if batches {
            let (body, ids) = random_batch();
            let path = format!("/v1/spaces/{space}/blobs/batch");
            (Method::POST, path, body, ids, StatusCode::OK)
        } else {
            let body = random_blob();
            let id = blake3::hash(&body).to_hex().to_string();
            let path = format!("/v1/spaces/{space}/blobs/{id}");
            (Method::PUT, path, body, vec![id], StatusCode::CREATED)
        };
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("host", "localhost")
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/octet-stream")
            .header("content-length", body.len())
            .body(Full::new(Bytes::from(body)))
            .unwrap();
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            response.into_body().collect().await?;
            Ok::<_, hyper::Error>(status)
        };
        match tokio::time::timeout(REQUEST_TIMEOUT, exchange).await {
            Ok(Ok(status)) if status == expected => acknowledged.lock().unwrap().extend(ids),
            Ok(Ok(status)) => unexpected.push(format!("{status} for fresh blobs")),
            // The gateway died under us (or the request timed out): this upload is not
            // acknowledged, and this connection is finished.
            Ok(Err(_)) | Err(_) => break,
        }
    }
    unexpected
}

/// GETs every acknowledged blob and checks its hash; returns how many were checked.
async fn verify_all(gateway: &Gateway, space: &str, token: &str, ids: &[String]) -> usize {
    let mut lost = Vec::new();
    for id in ids {
        let (status, body) = request(
            gateway,
            Method::GET,
            &format!("/v1/spaces/{space}/blobs/{id}"),
            Some(token),
            None,
            Vec::new(),
        )
        .await;
        if status != StatusCode::OK || blake3::hash(&body).to_hex().as_str() != id {
            lost.push(format!("{id}: {status}, {} bytes", body.len()));
        }
    }
    assert!(
        lost.is_empty(),
        "acknowledged blobs lost or corrupt: {lost:?}"
    );
    ids.len()
}

/// `coffre-gateway check --read-data` on a stopped gateway's data directory; asserts exit 0.
fn check_clean(data_dir: &Path, when: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(["check", "--read-data", "--data"])
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "check {when}:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `coffre-gateway check --read-data` straight after a SIGKILL: the only problems allowed are
/// what a cut-off upload leaves and the next start repairs: bodies with no index entry and usage
/// recorded above the sum of the blobs. No hash mismatch, no missing or short body.
fn check_crash_state(data_dir: &Path, when: &str) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(["check", "--read-data", "--data"])
        .arg(data_dir)
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(0) {
        return;
    }
    assert_eq!(output.status.code(), Some(1), "check {when}: {stdout}");
    for line in stdout.lines().filter_map(|l| l.strip_prefix("  - ")) {
        let orphan = line.ends_with("has no index entry");
        let over_reserved = line
            .split_once(": usage recorded ")
            .and_then(|(_, rest)| rest.split_once(" bytes, its blobs total "))
            .map(|(recorded, computed)| {
                recorded.parse::<u64>().unwrap() > computed.parse::<u64>().unwrap()
            })
            .unwrap_or(false);
        assert!(orphan || over_reserved, "check {when}: {line}\n{stdout}");
    }
}

fn start(data_dir: &Path, backend: &str) -> Gateway {
    Gateway::start_with(
        Options {
            data_dir: Some(data_dir.to_path_buf()),
            ..Options::default()
        }
        .arg("--blob-backend")
        .arg(backend)
        // Debug logs of every request would only slow the uploads down.
        .env("COFFRE_GATEWAY_LOG", "warn"),
    )
}

/// `kills` rounds of: start, verify everything acknowledged so far, upload from `UPLOADERS`
/// tasks, SIGKILL after 200-800 ms, `check --read-data`. Then a final restart and verification.
async fn crash_rounds(backend: &str, kills: usize) -> (usize, usize) {
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    let user = User::new("alice");
    let mut acknowledged_total: Vec<String> = Vec::new();
    let mut space = None;
    for round in 0..kills {
        let mut gateway = start(&data_dir, backend);
        if space.is_none() {
            space = Some(setup(&gateway, &user).await);
        }
        let space = space.clone().unwrap();
        let token = login(&gateway, &user).await;
        verify_all(&gateway, &space, &token, &acknowledged_total).await;

        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged = Arc::new(Mutex::new(Vec::new()));
        let config = gateway.client_config(&[b"http/1.1"]);
        let tasks: Vec<_> = (0..UPLOADERS)
            .map(|n| {
                tokio::spawn(uploader(
                    gateway.addr,
                    Arc::clone(&config),
                    space.clone(),
                    token.clone(),
                    Arc::clone(&stop),
                    Arc::clone(&acknowledged),
                    n < BATCH_UPLOADERS,
                ))
            })
            .collect();
        let delay = 200 + random_u64() % 601;
        tokio::time::sleep(Duration::from_millis(delay)).await;
        let status = gateway.kill();
        assert!(!status.success(), "killed, not exited: {status:?}");
        stop.store(true, Ordering::SeqCst);
        for task in tasks {
            let unexpected = tokio::time::timeout(Duration::from_secs(60), task)
                .await
                .expect("uploader did not finish")
                .expect("uploader panicked");
            assert!(unexpected.is_empty(), "{unexpected:?}");
        }
        let acked = std::mem::take(&mut *acknowledged.lock().unwrap());
        // The killed process is gone (sled's lock released). The raw crash state may hold what
        // a cut-off upload leaves (an unindexed body, reserved quota), never anything corrupt.
        let when = format!("after kill {} ({backend})", round + 1);
        check_crash_state(&data_dir, &when);
        // A restart recovers: afterwards the store is entirely clean.
        let mut gateway = start(&data_dir, backend);
        assert!(gateway.stop().success());
        check_clean(&data_dir, &format!("{when}, restarted and stopped"));
        eprintln!(
            "round {}: killed after {delay} ms, {} acknowledged this round",
            round + 1,
            acked.len()
        );
        acknowledged_total.extend(acked);
    }
    // Final restart: every blob acknowledged in any round is still there, byte-identical.
    let mut gateway = start(&data_dir, backend);
    let space = space.unwrap();
    let token = login(&gateway, &user).await;
    let checked = verify_all(&gateway, &space, &token, &acknowledged_total).await;
    assert!(gateway.stop().success());
    check_clean(&data_dir, &format!("at the end ({backend})"));
    let unacknowledged_kept = stored_blob_files(&data_dir).saturating_sub(checked);
    (checked, unacknowledged_kept)
}

/// Blob files under `<data>/blobs/<space>/` (files backend; 0 for sled).
fn stored_blob_files(data_dir: &Path) -> usize {
    let mut count = 0;
    let Ok(spaces) = std::fs::read_dir(data_dir.join("blobs")) else {
        return 0;
    };
    for space in spaces.flatten() {
        if space.file_name() == "tmp" || !space.path().is_dir() {
            continue;
        }
        for fan in std::fs::read_dir(space.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            count += std::fs::read_dir(fan.path()).into_iter().flatten().count();
        }
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_uploads_loses_no_acknowledged_blob_files_backend() {
    let kills = 5;
    let started = Instant::now();
    let (checked, extra) =
        tokio::time::timeout(Duration::from_secs(240), crash_rounds("files", kills))
            .await
            .expect("crash test timed out");
    assert!(
        checked > 0,
        "no upload was ever acknowledged: the test proved nothing"
    );
    eprintln!(
        "crash test (files backend): {kills} kills, {checked} acknowledged blobs checked, 0 lost, \
         check clean ({extra} unacknowledged blobs kept, all hash-checked), {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_uploads_loses_no_acknowledged_blob_sled_backend() {
    let kills = 3;
    let started = Instant::now();
    let (checked, _) = tokio::time::timeout(Duration::from_secs(240), crash_rounds("sled", kills))
        .await
        .expect("crash test timed out");
    assert!(
        checked > 0,
        "no upload was ever acknowledged: the test proved nothing"
    );
    eprintln!(
        "crash test (sled backend): {kills} kills, {checked} acknowledged blobs checked, 0 lost, \
         check clean, {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
