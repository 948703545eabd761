//! Path operations on snapshots: semantics, errors, and that only the changed path is rewritten.
#![allow(clippy::unwrap_used)]

mod files_fixture;

use coffre_crypto::dirnode::Timestamp;
use coffre_sdk::Error;
use coffre_sdk::files::put_reader;
use coffre_sdk::progress::NoProgress;
use coffre_sdk::tree::{EntryType, Snapshot};
use files_fixture::{path, world};

#[tokio::test]
async fn tree_mkdir_rm_mv_ls_stat() {
    let world = world().await;
    let history = world.history(&world.alice);
    let keys = history.chunk_keys().unwrap();
    let mut tree = Snapshot::empty(&world.remote, world.space);
    tree.mkdir(&path("/a"), false).await.unwrap();
    assert!(matches!(
        tree.mkdir(&path("/a"), false).await,
        Err(Error::AlreadyExists(_))
    ));
    tree.mkdir(&path("/a"), true).await.unwrap();
    assert!(matches!(
        tree.mkdir(&path("/x/y"), false).await,
        Err(Error::NotFound(_))
    ));
    tree.mkdir(&path("/x/y/z"), true).await.unwrap();
    put_reader(
        &mut tree,
        &keys,
        std::io::Cursor::new(b"hello".to_vec()),
        &path("/a/hello.txt"),
        &NoProgress,
    )
    .await
    .unwrap();
    tree.insert_symlink(&path("/a/link"), "hello.txt", Timestamp::new(5, 0).unwrap())
        .await
        .unwrap();
    let names: Vec<String> = tree
        .ls(&path("/"))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name)
        .collect();
    assert_eq!(names, ["a", "x"]);
    let info = tree.stat(&path("/a/hello.txt")).await.unwrap();
    assert_eq!(
        (info.kind, info.size, info.mode),
        (EntryType::File, 5, 0o644)
    );
    let link = tree.stat(&path("/a/link")).await.unwrap();
    assert_eq!(
        (link.kind, link.target.as_deref()),
        (EntryType::Symlink, Some("hello.txt"))
    );
    assert!(matches!(
        tree.ls(&path("/a/hello.txt")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        tree.stat(&path("/nope")).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        tree.mkdir(&path("/a/hello.txt/sub"), true).await,
        Err(Error::InvalidInput(_))
    ));

    // rm: non-empty needs recursive; the root cannot go.
    assert!(matches!(
        tree.rm(&path("/x"), false).await,
        Err(Error::InvalidInput(_))
    ));
    tree.rm(&path("/x/y/z"), false).await.unwrap();
    tree.rm(&path("/x"), true).await.unwrap();
    assert!(tree.rm(&path("/"), true).await.is_err());
    assert!(matches!(
        tree.rm(&path("/x"), true).await,
        Err(Error::NotFound(_))
    ));

    // mv: rename, move into a directory, refuse overwriting and moving into itself.
    tree.mv(&path("/a/hello.txt"), &path("/a/hi.txt"))
        .await
        .unwrap();
    tree.mkdir(&path("/b"), false).await.unwrap();
    tree.mv(&path("/a/hi.txt"), &path("/b")).await.unwrap();
    assert_eq!(tree.stat(&path("/b/hi.txt")).await.unwrap().size, 5);
    assert!(matches!(
        tree.mv(&path("/a"), &path("/a/inner")).await,
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        tree.mv(&path("/a/link"), &path("/b/hi.txt")).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        tree.mv(&path("/missing"), &path("/c")).await,
        Err(Error::NotFound(_))
    ));
    assert!(
        tree.stat(&path("/a/link")).await.is_ok(),
        "a failed mv changes nothing"
    );

    // Written and reopened, the tree reads the same.
    let root = tree.write().await.unwrap();
    let mut again = Snapshot::open(&world.remote, world.space, root);
    assert_eq!(
        again.ls(&path("/b")).await.unwrap(),
        tree.ls(&path("/b")).await.unwrap()
    );
    assert_eq!(again.stat(&path("/a/link")).await.unwrap(), link);
}

#[tokio::test]
async fn tree_edits_rewrite_only_the_changed_path() {
    let world = world().await;
    let mut tree = Snapshot::empty(&world.remote, world.space);
    for dir in ["/a/b/c/d", "/a/side/one", "/z/two"] {
        tree.mkdir(&path(dir), true).await.unwrap();
    }
    let root = tree.write().await.unwrap();
    let blobs = world.remote.blob_count(&world.space);
    world.remote.reset_stats();

    let mut tree = Snapshot::open(&world.remote, world.space, root);
    assert!(tree.clean_root().is_some());
    tree.mkdir(&path("/a/b/c/d/e"), false).await.unwrap();
    assert!(tree.is_changed());
    let new_root = tree.write().await.unwrap();
    let stats = world.remote.stats();
    // New node e, then d, c, b, a and the root: 6 blobs, in one batch; /a/side and /z
    // untouched, not fetched.
    assert_eq!(
        (
            stats.put_blob_calls,
            stats.put_batch_calls,
            stats.put_batch_blobs
        ),
        (0, 1, 6)
    );
    assert_eq!(world.remote.blob_count(&world.space), blobs + 6);
    assert_eq!(stats.get_blob_calls, 5, "only /, a, b, c, d are read");
    // Writing again without a change uploads nothing and keeps the root.
    world.remote.reset_stats();
    assert_eq!(tree.write().await.unwrap().id, new_root.id);
    assert_eq!(world.remote.stats().put_blob_calls, 0);
    assert_eq!(world.remote.stats().put_batch_calls, 0);
}

#[tokio::test]
async fn tree_tampered_directory_nodes_are_refused() {
    let world = world().await;
    let mut tree = Snapshot::empty(&world.remote, world.space);
    tree.mkdir(&path("/a/b"), true).await.unwrap();
    let root = tree.write().await.unwrap();
    let mut other = Snapshot::empty(&world.remote, world.space);
    other.mkdir(&path("/evil"), true).await.unwrap();
    let evil = other.write().await.unwrap();
    world.remote.swap_blobs(root.id, evil.id);
    let mut tree = Snapshot::open(&world.remote, world.space, root);
    assert!(matches!(
        tree.ls(&path("/")).await,
        Err(Error::Integrity(_))
    ));
    world.remote.swap_blobs(evil.id, evil.id);
    world
        .remote
        .swap_blobs(tree.clean_root().unwrap().id, tree.clean_root().unwrap().id);
    world.remote.drop_blob(tree.clean_root().unwrap().id);
    assert!(matches!(tree.ls(&path("/")).await, Err(Error::NotFound(_))));
}
