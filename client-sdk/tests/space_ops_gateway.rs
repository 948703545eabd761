//! `Space`'s high-level operations (space_ops) end to end against the real gateway, in process,
//! over TLS on 127.0.0.1:0, pinned: put a tree, get it back identical, ls, stat, mkdir, mv, rm,
//! log, restore, status.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use coffre_crypto::passphrase::Passphrase;
use coffre_sdk::Error;
use coffre_sdk::client::Client;
use coffre_sdk::home::Home;
use coffre_sdk::progress::NoProgress;
use coffre_sdk::tree::{EntryType, SpacePath};
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
    async fn start() -> Gateway {
        let dir = tempfile::tempdir().unwrap();
        let config = coffre_gateway::Config {
            data_dir: dir.path().join("gateway"),
            listen: "127.0.0.1:0".parse().unwrap(),
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

    async fn stop(self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.server.shutdown()).await;
    }
}

fn p(text: &str) -> SpacePath {
    SpacePath::parse(text).unwrap()
}

/// Every file under `dir`, relative path → bytes.
fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn space_ops_round_trip_over_https() {
    let gateway = Gateway::start().await;
    let dir = tempfile::tempdir().unwrap();
    let home = Home::at(dir.path().join("home"));
    let client = Client::create_account(
        &home,
        &gateway.url,
        Trust::Pinned(gateway.pin),
        "erin",
        Passphrase::new("pw erin".into()),
    )
    .await
    .unwrap();
    let space = client.create_space("Work").await.unwrap();
    let status = space.status().await.unwrap();
    assert_eq!((status.head_seq, status.epoch, status.members), (0, 1, 1));

    // A small tree: nested directories, an empty file, a unicode name, a multi-chunk file.
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::write(src.join("top.txt"), b"top level").unwrap();
    std::fs::write(src.join("a/empty"), b"").unwrap();
    std::fs::write(src.join("a/b/été ☃.md"), "bonjour").unwrap();
    let big: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("a/big.bin"), &big).unwrap();

    let put = space.put(&src, &p("/proj"), &NoProgress).await.unwrap();
    assert_eq!(put.dest, p("/proj"));
    assert_eq!(put.stats.files, 4);
    assert_eq!(put.change.commit.as_ref().unwrap().seq, 1);
    // Putting the same tree again sends no chunk and makes no commit.
    let again = space.put(&src, &p("/proj"), &NoProgress).await.unwrap();
    assert_eq!(again.stats.chunks_sent, 0);
    assert!(again.change.commit.is_none(), "{again:?}");

    // A single file put on a directory lands inside it under its own name.
    let single = space
        .put(&src.join("top.txt"), &p("/"), &NoProgress)
        .await
        .unwrap();
    assert_eq!(single.dest, p("/top.txt"));
    assert_eq!(single.change.commit.as_ref().unwrap().seq, 2);

    // Get it back identical.
    let out = dir.path().join("out");
    let got = space.get(&p("/proj"), &out, &NoProgress).await.unwrap();
    assert_eq!((got.seq, got.stats.files), (2, 4));
    assert_eq!(read_tree(&out), read_tree(&src));
    let one = dir.path().join("one.txt");
    space.get(&p("/top.txt"), &one, &NoProgress).await.unwrap();
    assert_eq!(std::fs::read(&one).unwrap(), b"top level");

    // ls and stat.
    let names: Vec<String> = space
        .ls(&p("/proj/a"))
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.name)
        .collect();
    assert_eq!(names, ["b", "big.bin", "empty"]);
    let stat = space.stat(&p("/proj/a/big.bin")).await.unwrap();
    assert_eq!((stat.kind, stat.size), (EntryType::File, big.len() as u64));
    assert!(matches!(
        space.ls(&p("/nope")).await,
        Err(Error::NotFound(_))
    ));

    // mkdir, mv, rm: one commit each.
    let made = space.mkdir(&p("/archive/2024"), true).await.unwrap();
    assert_eq!(made.commit.unwrap().seq, 3);
    assert!(
        space
            .mkdir(&p("/archive/2024"), true)
            .await
            .unwrap()
            .commit
            .is_none(),
        "mkdir -p of an existing directory changes nothing"
    );
    let moved = space.mv(&p("/top.txt"), &p("/archive/2024")).await.unwrap();
    assert_eq!(moved.commit.unwrap().seq, 4);
    assert_eq!(
        space.stat(&p("/archive/2024/top.txt")).await.unwrap().size,
        9
    );
    assert!(matches!(
        space.rm(&p("/proj/a"), false).await,
        Err(Error::InvalidInput(_))
    ));
    let removed = space.rm(&p("/proj/a"), true).await.unwrap();
    assert_eq!(removed.commit.unwrap().seq, 5);
    assert!(matches!(
        space.stat(&p("/proj/a")).await,
        Err(Error::NotFound(_))
    ));

    // log: every commit, in order, with its (sealed) message.
    let log = space.history_log().await.unwrap();
    let messages: Vec<&str> = log.iter().map(|c| c.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "put /proj",
            "put /top.txt",
            "mkdir /archive/2024",
            "mv /top.txt /archive/2024",
            "rm /proj/a"
        ]
    );
    assert!(
        log.iter()
            .all(|c| c.author_handle.as_deref() == Some("erin"))
    );

    // restore one path from seq 1: the removed directory comes back, the rest stays.
    let restored = space.restore(Some(&p("/proj/a")), 1).await.unwrap();
    assert_eq!(restored.commit.unwrap().seq, 6);
    let back = dir.path().join("back");
    space.get(&p("/proj"), &back, &NoProgress).await.unwrap();
    assert_eq!(read_tree(&back), read_tree(&src));
    assert!(space.stat(&p("/archive/2024/top.txt")).await.is_ok());
    // restore everything from seq 1: the archive goes away.
    space.restore(None, 1).await.unwrap();
    assert!(matches!(
        space.stat(&p("/archive")).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        space.restore(None, 99).await,
        Err(Error::NotFound(_))
    ));

    // Another handle on the same space (as another process would) sees the same head.
    let other = client.open_space(space.id()).await.unwrap();
    assert_eq!(other.status().await.unwrap().head_seq, 7);
    gateway.stop().await;
}
