//! End to end against a real gateway, in process, over TLS on 127.0.0.1:0, with the SDK pinned to
//! the gateway's generated self-signed certificate.
//!
//! Not compiled yet: it moves to `client-sdk/tests/http_gateway.rs` (with `coffre-gateway` as a
//! dev-dependency) once the gateway's `server::run_with_tls` and `store::Stores::memory` are in
//! main.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use coffre_crypto::passphrase::Passphrase;
use coffre_sdk::Error;
use coffre_sdk::client::Client;
use coffre_sdk::home::Home;
use coffre_sdk::trust::{CertFingerprint, Trust};

/// The real gateway, in process on 127.0.0.1:0 with a generated certificate
/// (`coffre_gateway::server::start`).
struct Gateway {
    url: String,
    pin: CertFingerprint,
    server: coffre_gateway::server::ServerHandle,
    _dir: tempfile::TempDir,
}

impl Gateway {
    async fn start(token_ttl: Duration) -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let config = coffre_gateway::Config {
            data_dir: dir.path().join("gateway"),
            listen: "127.0.0.1:0".parse().unwrap(),
            token_ttl,
            ..Default::default()
        };
        let stores = coffre_gateway::store::Stores::memory();
        let server = coffre_gateway::server::start(config, stores).await.unwrap();
        Gateway {
            url: format!("https://127.0.0.1:{}", server.addr.port()),
            pin: CertFingerprint::parse(&server.tls.fingerprint.to_colon_hex()).unwrap(),
            server,
            _dir: dir,
        }
    }

    fn trust(&self) -> Trust {
        Trust::Pinned(self.pin)
    }

    async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server.shutdown()).await;
    }
}

fn pass(text: &str) -> Passphrase {
    Passphrase::new(text.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_account_spaces_and_reopen() {
    let gateway = Gateway::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("alice"));
    let client = Client::create_account(
        &home,
        &gateway.url,
        gateway.trust(),
        "alice",
        pass("pw one"),
    )
    .await
    .unwrap();
    let me = client.whoami();
    assert_eq!(me.handle.as_str(), "alice");
    assert!(client.http().is_logged_in());
    let health = client.http().health().await.unwrap();
    assert_eq!(health.status, "ok");
    assert_eq!(health.http_version, http::Version::HTTP_2, "ALPN h2");

    let space = client.create_space("Budget").await.unwrap();
    let listed = client.spaces().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, *space.id());
    assert_eq!(listed[0].name.as_deref(), Some("Budget"));
    let opened = client.open_space(space.id()).await.unwrap();
    assert_eq!(opened.log().entries().len(), 2);
    assert_eq!(opened.epoch(), 1);

    // The same handle cannot be registered twice.
    let other = Home::at(dir.path().join("alice2"));
    let taken =
        Client::create_account(&other, &gateway.url, gateway.trust(), "alice", pass("x")).await;
    assert!(matches!(taken, Err(Error::AlreadyExists(_))), "{taken:?}");
    assert!(
        !other.keystore_path().exists(),
        "a refused registration leaves no keystore"
    );

    // Re-open from the keystore: wrong passphrase refused, right one logs in lazily.
    drop(client);
    let wrong = Client::open(&home, pass("pw two")).await;
    assert!(matches!(wrong, Err(Error::Auth)), "{wrong:?}");
    let reopened = Client::open(&home, pass("pw one")).await.unwrap();
    assert_eq!(reopened.whoami(), me);
    assert!(!reopened.http().is_logged_in());
    let listed = reopened.spaces().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(reopened.http().is_logged_in());

    // A copied COFFRE_HOME opens on "another machine" as the same device.
    let copy = dir.path().join("copy");
    std::fs::create_dir_all(&copy).unwrap();
    for name in ["config.toml", "keystore.cfk"] {
        std::fs::copy(home.config_dir().join(name), copy.join(name)).unwrap();
    }
    let copied = Client::open(&Home::at(&copy), pass("pw one"))
        .await
        .unwrap();
    assert_eq!(copied.spaces().await.unwrap().len(), 1);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_expired_token_is_renewed_transparently() {
    let gateway = Gateway::start(Duration::from_secs(1)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let client = Client::create_account(&home, &gateway.url, gateway.trust(), "bob", pass("pw"))
        .await
        .unwrap();
    client.create_space("One").await.unwrap();
    tokio::time::sleep(Duration::from_millis(2200)).await;
    // The token has expired: the next request gets 401, logs in again and succeeds.
    assert_eq!(client.spaces().await.unwrap().len(), 1);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_pin_mismatch_is_refused() {
    let gateway = Gateway::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let mut wrong = *gateway.pin.as_bytes();
    wrong[0] ^= 1;
    let result = Client::create_account(
        &home,
        &gateway.url,
        Trust::Pinned(CertFingerprint::from_bytes(wrong)),
        "carol",
        pass("pw"),
    )
    .await;
    let Err(Error::UntrustedCertificate(message)) = result else {
        panic!("{result:?}");
    };
    assert!(message.contains(&gateway.pin.to_colon_hex()), "{message}");
    assert!(!home.keystore_path().exists());
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_membership_rollback_is_detected() {
    let gateway = Gateway::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path());
    let client = Client::create_account(&home, &gateway.url, gateway.trust(), "dave", pass("pw"))
        .await
        .unwrap();
    let space = client.create_space("S").await.unwrap();
    let id = *space.id();
    // This device claims to have verified a longer log than the gateway serves: a rollback.
    let path = home.spaces_dir().join(format!("{}.json", id.to_hex()));
    let mut file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    file["membership_len"] = serde_json::json!(5);
    std::fs::write(&path, file.to_string()).unwrap();
    let error = client.open_space(&id).await.unwrap_err();
    assert!(
        matches!(&error, Error::Integrity(m) if m.contains("rollback")),
        "{error:?}"
    );
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_blob_batches_round_trip_and_refuse_a_bad_hash() {
    use coffre_crypto::envelope::blob_id;
    use coffre_sdk::remote::Remote;

    let gateway = Gateway::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("alice"));
    let client = Client::create_account(&home, &gateway.url, gateway.trust(), "alice", pass("pw"))
        .await
        .unwrap();
    let space = client.create_space("Batches").await.unwrap();
    let http = client.http();
    let blobs: Vec<_> = (0..300u32)
        .map(|n| {
            let bytes = format!("envelope {n}")
                .repeat(1 + n as usize % 50)
                .into_bytes();
            (blob_id(&bytes), bytes)
        })
        .collect();
    http.put_blobs(space.id(), blobs.clone()).await.unwrap();
    let ids: Vec<_> = blobs.iter().map(|(id, _)| *id).collect();
    assert!(
        http.missing_blobs(space.id(), &ids)
            .await
            .unwrap()
            .is_empty()
    );
    let fetched = http.get_blobs(space.id(), &ids).await.unwrap();
    assert_eq!(fetched, blobs, "all of them, in the order asked");

    // One blob that does not hash to its id: the whole batch is refused, nothing stored.
    let good = b"good".to_vec();
    let bad = vec![
        (blob_id(&good), good),
        (blob_id(b"other"), b"not other".to_vec()),
    ];
    let refused = http.put_blobs(space.id(), bad.clone()).await;
    assert!(matches!(refused, Err(Error::Protocol(_))), "{refused:?}");
    let missing = http
        .missing_blobs(space.id(), &[bad[0].0, bad[1].0])
        .await
        .unwrap();
    assert_eq!(missing.len(), 2);
    gateway.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_many_concurrent_batches_on_one_connection_complete() {
    use coffre_crypto::envelope::blob_id;
    use coffre_sdk::remote::Remote;

    // Regression: with the handler waiting for a permit before reading its body, unread HTTP/2
    // bodies took the whole connection window and every stream stalled until the timeout.
    let gateway = Gateway::start(Duration::from_secs(3600)).await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("alice"));
    let client = Client::create_account(&home, &gateway.url, gateway.trust(), "alice", pass("pw"))
        .await
        .unwrap();
    let space = *client.create_space("Concurrent").await.unwrap().id();
    let mut tasks = Vec::new();
    for n in 0..10u8 {
        let http = client.http().clone();
        tasks.push(tokio::spawn(async move {
            let blobs: Vec<_> = (0..3u8)
                .map(|k| {
                    let bytes = vec![n.wrapping_mul(7) ^ k; 1024 * 1024 - usize::from(k)];
                    (blob_id(&bytes), bytes)
                })
                .collect();
            http.put_blobs(&space, blobs).await
        }));
    }
    let all = tokio::time::timeout(Duration::from_secs(60), async {
        for task in tasks {
            task.await.unwrap().unwrap();
        }
    })
    .await;
    assert!(all.is_ok(), "concurrent batches stalled");
    gateway.stop().await;
}
