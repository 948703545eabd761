//! One conformance suite for every store backend: the same generic functions run against memory,
//! sled, content-addressed files (alone and with packs, the default layout) and sled-held blobs;
//! the on-disk ones are also reopened.

// Helpers outside `#[test]` functions unwrap too: a panic anywhere here is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::Path;

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_gateway::Error;
use coffre_gateway::config::BlobBackend;
use coffre_gateway::store::files::FileBlobs;
use coffre_gateway::store::memory::{MemoryBlobs, MemoryMeta};
use coffre_gateway::store::packs::PackedBlobs;
use coffre_gateway::store::sled_blobs::SledBlobs;
use coffre_gateway::store::sled_meta::SledMeta;
use coffre_gateway::store::{
    AccountRecord, BlobMeta, BlobStore, ChallengeRecord, MemberRecord, MetaStore, Stores,
    TokenRecord, open_db,
};

fn account(handle: &str, quota: u64) -> AccountRecord {
    AccountRecord {
        handle: handle.into(),
        identity: vec![1; 64],
        device_chain: vec![vec![2; 10]],
        key_bundles: vec![vec![3; 20], vec![4; 20]],
        quota_bytes: quota,
        used_bytes: 0,
        created_ms: 1_700_000_000_000,
        opaque_record: vec![5; 30],
    }
}

fn member(handle: &str, role: u8) -> MemberRecord {
    MemberRecord {
        handle: handle.into(),
        role,
    }
}

fn space_id(n: u8) -> SpaceId {
    SpaceId::from_bytes([n; 32])
}

fn blob_id(n: u8) -> BlobId {
    let mut bytes = [0u8; 32];
    bytes[0] = n;
    bytes[31] = 0xaa;
    BlobId::from_bytes(bytes)
}

fn blob_meta(size: u64, uploader: &str) -> BlobMeta {
    BlobMeta {
        size,
        created_ms: 5,
        uploader: uploader.into(),
    }
}

fn conflict(result: coffre_gateway::Result<()>) -> Option<u64> {
    match result {
        Err(Error::Conflict { current_seq }) => current_seq,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

fn accounts_and_quota(store: &dyn MetaStore) {
    store.create_account(&account("alice", 1000)).unwrap();
    assert!(matches!(
        store.create_account(&account("alice", 5)),
        Err(Error::AlreadyExists)
    ));
    assert_eq!(
        store.account("alice").unwrap(),
        Some(account("alice", 1000))
    );
    assert_eq!(store.account("alic").unwrap(), None);

    // Device chain CAS.
    store.append_device_entry("alice", 1, b"dev2").unwrap();
    assert_eq!(
        conflict(store.append_device_entry("alice", 1, b"x")),
        Some(2)
    );
    assert_eq!(
        conflict(store.append_device_entry("alice", 3, b"x")),
        Some(2)
    );
    let chain = store.account("alice").unwrap().unwrap().device_chain;
    assert_eq!(chain, vec![vec![2; 10], b"dev2".to_vec()]);

    // Quota: reserve up to the limit, refuse past it without changing anything, release.
    store.reserve_quota("alice", 600).unwrap();
    store.reserve_quota("alice", 400).unwrap();
    assert!(matches!(
        store.reserve_quota("alice", 1),
        Err(Error::QuotaExceeded)
    ));
    assert!(matches!(
        store.reserve_quota("alice", u64::MAX),
        Err(Error::QuotaExceeded)
    ));
    assert_eq!(store.account("alice").unwrap().unwrap().used_bytes, 1000);
    store.release_quota("alice", 300).unwrap();
    assert_eq!(store.account("alice").unwrap().unwrap().used_bytes, 700);
    store.release_quota("alice", 10_000).unwrap();
    assert_eq!(store.account("alice").unwrap().unwrap().used_bytes, 0);

    // Concurrent reservations never pass the quota.
    store.create_account(&account("busy", 100)).unwrap();
    let granted = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..10 {
                    if store.reserve_quota("busy", 3).is_ok() {
                        granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            });
        }
    });
    let granted = granted.into_inner();
    assert_eq!(granted, 33, "exactly floor(100 / 3) reservations fit");
    assert_eq!(
        store.account("busy").unwrap().unwrap().used_bytes,
        granted * 3
    );
}

fn sessions(store: &dyn MetaStore) {
    let challenge = ChallengeRecord {
        handle: "alice".into(),
        device_key: [7; 32],
        expires_ms: 100,
    };
    store.put_challenge(&[1; 32], &challenge).unwrap();
    store
        .put_challenge(
            &[2; 32],
            &ChallengeRecord {
                expires_ms: 300,
                ..challenge.clone()
            },
        )
        .unwrap();
    assert_eq!(store.take_challenge(&[1; 32]).unwrap(), Some(challenge));
    assert_eq!(store.take_challenge(&[1; 32]).unwrap(), None, "single use");

    let token = TokenRecord {
        handle: "alice".into(),
        device_key: [8; 32],
        expires_ms: 200,
    };
    store.put_token(&[3; 32], &token).unwrap();
    store
        .put_token(
            &[4; 32],
            &TokenRecord {
                expires_ms: 50,
                ..token.clone()
            },
        )
        .unwrap();
    assert_eq!(store.token(&[3; 32]).unwrap(), Some(token.clone()));
    assert_eq!(store.token(&[9; 32]).unwrap(), None);

    // At 200: the token expiring at 50 and the one at 200 go; the challenge at 300 stays.
    assert_eq!(store.purge_expired(200).unwrap(), 2);
    assert_eq!(store.token(&[3; 32]).unwrap(), None);
    assert_eq!(store.token(&[4; 32]).unwrap(), None);
    assert!(store.take_challenge(&[2; 32]).unwrap().is_some());
    assert_eq!(store.purge_expired(u64::MAX).unwrap(), 0);
}

fn spaces_and_logs(store: &dyn MetaStore) {
    let space = space_id(1);
    let other = space_id(2);
    let founders = [member("alice", 4), member("bob", 2)];
    store.create_space(&space, b"genesis", &founders).unwrap();
    assert!(matches!(
        store.create_space(&space, b"again", &[]),
        Err(Error::AlreadyExists)
    ));
    store
        .create_space(&other, b"genesis2", &[member("bob", 4)])
        .unwrap();
    let record = store.space(&space).unwrap().unwrap();
    assert_eq!((record.membership_len, record.head_seq), (1, 0));
    assert_eq!(record.members, founders.to_vec());
    assert_eq!(store.space(&space_id(3)).unwrap(), None);
    assert_eq!(store.spaces_of("alice").unwrap(), vec![space]);
    assert_eq!(store.spaces_of("bob").unwrap(), vec![space, other]);
    assert_eq!(store.spaces_of("bo").unwrap(), vec![]);

    // Membership CAS: length and head seq must both match.
    let after_add = [member("alice", 4), member("bob", 2), member("carol", 1)];
    assert_eq!(
        conflict(store.append_membership(&space, 0, 0, b"m1", &after_add)),
        Some(1)
    );
    assert_eq!(
        conflict(store.append_membership(&space, 1, 5, b"m1", &after_add)),
        Some(0)
    );
    store
        .append_membership(&space, 1, 0, b"m1", &after_add)
        .unwrap();
    assert_eq!(store.spaces_of("carol").unwrap(), vec![space]);

    // Commits CAS: seq = head + 1, membership length must match.
    assert_eq!(conflict(store.append_commit(&space, 2, 2, b"c")), Some(0));
    assert_eq!(conflict(store.append_commit(&space, 1, 1, b"c")), Some(0));
    for seq in 1..=5u64 {
        store
            .append_commit(&space, seq, 2, format!("c{seq}").as_bytes())
            .unwrap();
    }
    assert_eq!(conflict(store.append_commit(&space, 5, 2, b"c")), Some(5));

    // A membership change now needs head seq 5; bob is removed.
    let after_remove = [member("alice", 4), member("carol", 3)];
    assert_eq!(
        conflict(store.append_membership(&space, 2, 0, b"m2", &after_remove)),
        Some(5)
    );
    store
        .append_membership(&space, 2, 5, b"m2", &after_remove)
        .unwrap();
    assert_eq!(
        store.spaces_of("bob").unwrap(),
        vec![other],
        "removed member loses the space"
    );
    assert_eq!(store.spaces_of("carol").unwrap(), vec![space]);
    let record = store.space(&space).unwrap().unwrap();
    assert_eq!((record.membership_len, record.head_seq), (3, 5));
    assert_eq!(record.members, after_remove.to_vec());
    assert!(matches!(
        store.append_membership(&space_id(9), 1, 0, b"m", &[]),
        Err(Error::NotFound)
    ));

    // Paging.
    let all = store.membership_entries(&space, 0, 100).unwrap();
    assert_eq!(
        all,
        vec![b"genesis".to_vec(), b"m1".to_vec(), b"m2".to_vec()]
    );
    assert_eq!(
        store.membership_entries(&space, 1, 1).unwrap(),
        vec![b"m1".to_vec()]
    );
    assert!(store.membership_entries(&space, 3, 10).unwrap().is_empty());
    let commits = store.commits(&space, 0, 100).unwrap();
    assert_eq!(commits.len(), 5);
    assert_eq!(commits[0], b"c1");
    assert_eq!(
        store.commits(&space, 3, 10).unwrap(),
        vec![b"c4".to_vec(), b"c5".to_vec()]
    );
    assert_eq!(
        store.commits(&space, 1, 2).unwrap(),
        vec![b"c2".to_vec(), b"c3".to_vec()]
    );
    assert!(store.commits(&space, u64::MAX, 10).unwrap().is_empty());
    assert!(store.commits(&other, 0, 10).unwrap().is_empty());

    let mut seen = Vec::new();
    store
        .for_each_space(&mut |s| {
            seen.push(s.space);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, vec![space, other]);
}

fn blob_claims(store: &dyn MetaStore) {
    let space = space_id(7);
    assert!(
        store
            .put_blob_meta(&space, &blob_id(1), &blob_meta(10, "alice"))
            .unwrap()
    );
    let present = store
        .claim_blobs(&space, &[blob_id(1), blob_id(2)], 1_000)
        .unwrap();
    assert_eq!(
        present,
        vec![true, false],
        "claims answer presence in order"
    );
    let meta = store.blob_meta(&space, &blob_id(1)).unwrap().unwrap();
    assert_eq!(meta.created_ms, 1_000, "a claim restarts the grace period");
    assert_eq!(meta.size, 10);
    store.claim_blobs(&space, &[blob_id(1)], 50).unwrap();
    assert_eq!(
        store
            .blob_meta(&space, &blob_id(1))
            .unwrap()
            .unwrap()
            .created_ms,
        1_000,
        "never moves back"
    );
    assert!(
        store.blob_meta(&space, &blob_id(2)).unwrap().is_none(),
        "claims never create entries"
    );
    store.delete_blob_meta(&space, &blob_id(1)).unwrap();
}

fn blob_index(store: &dyn MetaStore) {
    blob_claims(store);
    let (space, other) = (space_id(5), space_id(6));
    assert!(
        store
            .put_blob_meta(&space, &blob_id(3), &blob_meta(30, "alice"))
            .unwrap()
    );
    assert!(
        store
            .put_blob_meta(&space, &blob_id(1), &blob_meta(10, "alice"))
            .unwrap()
    );
    assert!(
        store
            .put_blob_meta(&space, &blob_id(2), &blob_meta(20, "bob"))
            .unwrap()
    );
    assert!(
        store
            .put_blob_meta(&other, &blob_id(1), &blob_meta(99, "bob"))
            .unwrap()
    );
    assert!(
        !store
            .put_blob_meta(&space, &blob_id(1), &blob_meta(11, "eve"))
            .unwrap()
    );
    assert_eq!(
        store.blob_meta(&space, &blob_id(1)).unwrap(),
        Some(blob_meta(10, "alice"))
    );
    assert_eq!(store.blob_meta(&space, &blob_id(4)).unwrap(), None);

    let ids = |after: Option<BlobId>, limit| -> Vec<BlobId> {
        let listed = store.list_blob_meta(&space, after.as_ref(), limit).unwrap();
        listed.into_iter().map(|(id, _)| id).collect()
    };
    assert_eq!(ids(None, 10), vec![blob_id(1), blob_id(2), blob_id(3)]);
    assert_eq!(ids(None, 2), vec![blob_id(1), blob_id(2)]);
    assert_eq!(ids(Some(blob_id(2)), 10), vec![blob_id(3)]);
    assert_eq!(ids(Some(blob_id(3)), 10), vec![]);
    let listed = store.list_blob_meta(&other, None, 10).unwrap();
    assert_eq!(listed, vec![(blob_id(1), blob_meta(99, "bob"))]);

    assert_eq!(
        store.delete_blob_meta(&space, &blob_id(2)).unwrap(),
        Some(blob_meta(20, "bob"))
    );
    assert_eq!(store.delete_blob_meta(&space, &blob_id(2)).unwrap(), None);
    let mut count = 0;
    store
        .for_each_blob_meta(&mut |_, _, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 3);
}

fn inbox(store: &dyn MetaStore) {
    assert_eq!(
        store
            .push_invitation("dave", "alice", b"inv1", 1, 2)
            .unwrap(),
        1
    );
    assert_eq!(
        store.push_invitation("dave", "bob", b"inv2", 2, 2).unwrap(),
        2
    );
    assert!(matches!(
        store.push_invitation("dave", "eve", b"inv3", 3, 2),
        Err(Error::InboxFull)
    ));
    store
        .push_invitation("dav", "alice", b"other", 1, 2)
        .unwrap();
    let items = store.invitations("dave").unwrap();
    assert_eq!(items.iter().map(|i| i.id).collect::<Vec<_>>(), vec![1, 2]);
    assert_eq!(
        (items[0].from.as_str(), items[0].invitation.as_slice()),
        ("alice", &b"inv1"[..])
    );
    assert!(store.delete_invitation("dave", 1).unwrap());
    assert!(!store.delete_invitation("dave", 1).unwrap());
    assert!(!store.delete_invitation("nobody", 1).unwrap());
    // Room again, and ids keep increasing after a delete.
    assert_eq!(
        store.push_invitation("dave", "eve", b"inv3", 3, 2).unwrap(),
        3
    );
    let ids: Vec<_> = store
        .invitations("dave")
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(ids, vec![2, 3]);
    assert!(store.invitations("nobody").unwrap().is_empty());
    assert_eq!(store.invitations("dav").unwrap().len(), 1);
}

/// `put_blob_metas`: insert-if-absent per entry, in one call.
fn blob_index_batch(store: &dyn MetaStore) {
    let space = space_id(7);
    assert!(
        store
            .put_blob_meta(&space, &blob_id(2), &blob_meta(20, "alice"))
            .unwrap()
    );
    let entries = vec![
        (blob_id(1), blob_meta(10, "bob")),
        (blob_id(2), blob_meta(99, "bob")),
        (blob_id(3), blob_meta(30, "bob")),
    ];
    assert_eq!(
        store.put_blob_metas(&space, &entries).unwrap(),
        vec![true, false, true]
    );
    assert_eq!(
        store.blob_meta(&space, &blob_id(2)).unwrap(),
        Some(blob_meta(20, "alice")),
        "an existing entry is kept"
    );
    assert_eq!(
        store.blob_meta(&space, &blob_id(3)).unwrap(),
        Some(blob_meta(30, "bob"))
    );
    assert_eq!(
        store.put_blob_metas(&space, &[]).unwrap(),
        Vec::<bool>::new()
    );
}

/// Every [`MetaStore`] method, on an empty store.
fn meta_suite(store: &dyn MetaStore) {
    accounts_and_quota(store);
    sessions(store);
    spaces_and_logs(store);
    blob_index(store);
    blob_index_batch(store);
    inbox(store);
    let mut handles = Vec::new();
    store
        .for_each_account(&mut |a| {
            handles.push(a.handle.clone());
            Ok(())
        })
        .unwrap();
    assert_eq!(handles, vec!["alice".to_owned(), "busy".to_owned()]);
}

/// What [`meta_suite`] left behind is still there (after a reopen).
fn meta_persisted(store: &dyn MetaStore) {
    assert_eq!(store.account("busy").unwrap().unwrap().used_bytes, 99);
    assert_eq!(
        store.account("alice").unwrap().unwrap().device_chain.len(),
        2
    );
    assert_eq!(store.space(&space_id(1)).unwrap().unwrap().head_seq, 5);
    assert_eq!(
        store.membership_entries(&space_id(1), 0, 10).unwrap().len(),
        3
    );
    assert_eq!(store.commits(&space_id(1), 0, 10).unwrap().len(), 5);
    assert_eq!(store.spaces_of("bob").unwrap(), vec![space_id(2)]);
    assert_eq!(
        store.list_blob_meta(&space_id(5), None, 10).unwrap().len(),
        2
    );
    assert_eq!(store.invitations("dave").unwrap().len(), 2);
    assert_eq!(store.push_invitation("dave", "x", b"i", 4, 9).unwrap(), 4);
    assert_eq!(
        store.list_blob_meta(&space_id(7), None, 10).unwrap().len(),
        3,
        "batch-inserted index entries persist"
    );
}

fn body(n: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31) ^ n).collect()
}

fn read_all(store: &dyn BlobStore, space: &SpaceId, blob: &BlobId) -> Option<Vec<u8>> {
    let reader = store.open(space, blob).unwrap()?;
    let mut out = Vec::new();
    let mut body = reader.body;
    body.read_to_end(&mut out).unwrap();
    assert_eq!(reader.size, out.len() as u64);
    Some(out)
}

fn put(store: &dyn BlobStore, space: &SpaceId, blob: &BlobId, bytes: &[u8]) {
    let mut writer = store.begin(space, blob).unwrap();
    for chunk in bytes.chunks(7000) {
        writer.write(chunk).unwrap();
    }
    writer.commit().unwrap();
}

/// Every [`BlobStore`] method, on an empty store.
fn blob_suite(store: &dyn BlobStore) {
    let space = space_id(1);
    let start = store.disk_bytes().unwrap();
    let first = body(1, 100_000);
    put(store, &space, &blob_id(1), &first);
    assert_eq!(read_all(store, &space, &blob_id(1)), Some(first.clone()));
    assert!(store.contains(&space, &blob_id(1)).unwrap());
    assert!(
        !store.contains(&space_id(2), &blob_id(1)).unwrap(),
        "spaces are separate"
    );
    assert!(store.disk_bytes().unwrap() > start);

    // Abort: a writer dropped without commit leaves nothing.
    let mut writer = store.begin(&space, &blob_id(2)).unwrap();
    writer.write(b"partial").unwrap();
    drop(writer);
    assert!(!store.contains(&space, &blob_id(2)).unwrap());
    assert!(store.open(&space, &blob_id(2)).unwrap().is_none());

    // A second write of the same id keeps the first body.
    put(store, &space, &blob_id(1), b"different");
    assert_eq!(read_all(store, &space, &blob_id(1)), Some(first));

    // Empty bodies are blobs too.
    put(store, &space, &blob_id(3), b"");
    assert_eq!(read_all(store, &space, &blob_id(3)), Some(Vec::new()));
    put(store, &space_id(2), &blob_id(4), &body(4, 10));

    let mut listed = Vec::new();
    store
        .for_each(&mut |s, b, size| {
            listed.push((*s, *b, size));
            Ok(())
        })
        .unwrap();
    listed.sort();
    let expected = vec![
        (space, blob_id(1), 100_000),
        (space, blob_id(3), 0),
        (space_id(2), blob_id(4), 10),
    ];
    assert_eq!(listed, expected);

    store.delete(&space, &blob_id(3)).unwrap();
    store.delete(&space, &blob_id(3)).unwrap();
    store.delete(&space, &blob_id(9)).unwrap();
    assert!(!store.contains(&space, &blob_id(3)).unwrap());
    assert!(store.open(&space, &blob_id(3)).unwrap().is_none());
}

/// `put_many`: several bodies in one call (one group sync), existing ones kept; on a fresh store.
fn blob_batch_suite(store: &dyn BlobStore) {
    let space = space_id(3);
    put(store, &space, &blob_id(2), b"kept");
    let bodies: Vec<(BlobId, Vec<u8>)> = (1..=40u8)
        .map(|n| (blob_id(n), body(n, 100 * usize::from(n))))
        .collect();
    let refs: Vec<(BlobId, &[u8])> = bodies
        .iter()
        .map(|(id, bytes)| (*id, bytes.as_slice()))
        .collect();
    store.put_many(&space, &refs).unwrap();
    for (id, bytes) in &bodies {
        let expected = if *id == blob_id(2) {
            b"kept".to_vec()
        } else {
            bytes.clone()
        };
        assert_eq!(read_all(store, &space, id), Some(expected));
    }
    // A few new ones (below the files backend's whole-filesystem sync threshold).
    let few: Vec<(BlobId, Vec<u8>)> = (41..=43u8)
        .map(|n| (blob_id(n), body(n, 10 * usize::from(n))))
        .collect();
    let few_refs: Vec<(BlobId, &[u8])> = few
        .iter()
        .map(|(id, bytes)| (*id, bytes.as_slice()))
        .collect();
    store.put_many(&space, &few_refs).unwrap();
    for (id, bytes) in &few {
        assert_eq!(read_all(store, &space, id), Some(bytes.clone()));
    }
    // Again: nothing changes.
    store.put_many(&space, &refs).unwrap();
    store.put_many(&space, &[]).unwrap();
    let count = |store: &dyn BlobStore| {
        let mut count = 0;
        store
            .for_each(&mut |s, _, _| {
                assert_eq!(*s, space);
                count += 1;
                Ok(())
            })
            .unwrap();
        count
    };
    assert_eq!(count(store), 43);
    // A blob of a batch can be deleted (twice is fine) and stored again.
    store.delete(&space, &blob_id(43)).unwrap();
    store.delete(&space, &blob_id(43)).unwrap();
    assert!(!store.contains(&space, &blob_id(43)).unwrap());
    assert!(store.open(&space, &blob_id(43)).unwrap().is_none());
    assert_eq!(count(store), 42);
    store.put_many(&space, &few_refs[2..]).unwrap();
    assert_eq!(
        read_all(store, &space, &blob_id(43)),
        Some(few[2].1.clone())
    );
    assert_eq!(count(store), 43);
}

fn blob_batch_persisted(store: &dyn BlobStore) {
    assert_eq!(
        read_all(store, &space_id(3), &blob_id(40)),
        Some(body(40, 4000))
    );
    assert_eq!(
        read_all(store, &space_id(3), &blob_id(2)),
        Some(b"kept".to_vec())
    );
}

fn blobs_persisted(store: &dyn BlobStore) {
    assert_eq!(
        read_all(store, &space_id(1), &blob_id(1)),
        Some(body(1, 100_000))
    );
    assert_eq!(
        read_all(store, &space_id(2), &blob_id(4)),
        Some(body(4, 10))
    );
    assert!(!store.contains(&space_id(1), &blob_id(3)).unwrap());
    assert!(!store.contains(&space_id(1), &blob_id(2)).unwrap());
    assert!(store.disk_bytes().unwrap() >= 100_000);
}

#[test]
fn memory_backends_conform() {
    meta_suite(&MemoryMeta::new());
    blob_suite(&MemoryBlobs::new());
    blob_batch_suite(&MemoryBlobs::new());
}

#[test]
fn file_and_sled_blobs_batches_conform_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileBlobs::open(dir.path()).unwrap();
    blob_batch_suite(&store);
    // No temporary name is left next to the blobs; a crash leftover is skipped, then deleted
    // at the next open.
    let fan = store.path_of(&space_id(3), &blob_id(1));
    let fan = fan.parent().unwrap();
    let names: Vec<String> = std::fs::read_dir(fan)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|name| !name.ends_with(".tmp")),
        "{names:?}"
    );
    let leftover = fan.join(".0101.77.3.tmp");
    std::fs::write(&leftover, b"interrupted").unwrap();
    let mut count = 0;
    store
        .for_each(&mut |_, _, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 43, "a batch temporary file is not a blob");
    drop(store);
    let reopened = FileBlobs::open(dir.path()).unwrap();
    assert!(!leftover.exists(), "removed at open");
    blob_batch_persisted(&reopened);
    assert!(
        std::fs::read_dir(dir.path().join("blobs/tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no temporary file left"
    );
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(&dir.path().join("db")).unwrap();
        blob_batch_suite(&SledBlobs::new(&db, 1 << 20).unwrap());
    }
    let db = open_db(&dir.path().join("db")).unwrap();
    blob_batch_persisted(&SledBlobs::new(&db, 1 << 20).unwrap());
}

#[test]
fn packed_blobs_conform_and_persist() {
    let open = |dir: &Path| {
        let db = open_db(&dir.join("db")).unwrap();
        PackedBlobs::open(dir, &db, None).unwrap()
    };
    let single = tempfile::tempdir().unwrap();
    blob_suite(&open(single.path()));
    blobs_persisted(&open(single.path()));
    let batches = tempfile::tempdir().unwrap();
    blob_batch_suite(&open(batches.path()));
    let reopened = open(batches.path());
    blob_batch_persisted(&reopened);
    assert_eq!(
        reopened.pack_paths().unwrap().len(),
        1,
        "one pack holds the batches"
    );
}

#[test]
fn sled_meta_conforms_and_persists() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(&dir.path().join("db")).unwrap();
        let log_sync = coffre_gateway::store::LogSync::open(&dir.path().join("db")).unwrap();
        meta_suite(&SledMeta::new(&db).unwrap().with_log_sync(log_sync));
    }
    let db = open_db(&dir.path().join("db")).unwrap();
    meta_persisted(&SledMeta::new(&db).unwrap());
}

#[test]
fn file_blobs_conform_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    blob_suite(&FileBlobs::open(dir.path()).unwrap());
    let reopened = FileBlobs::open(dir.path()).unwrap();
    blobs_persisted(&reopened);
    let mut total = 0;
    reopened
        .for_each(&mut |_, _, _| {
            total += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(total, 2);
}

#[test]
fn sled_blobs_conform_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = open_db(&dir.path().join("db")).unwrap();
        blob_suite(&SledBlobs::new(&db, 1 << 20).unwrap());
    }
    let db = open_db(&dir.path().join("db")).unwrap();
    let store = SledBlobs::new(&db, 1 << 20).unwrap();
    blobs_persisted(&store);
    let mut writer = store.begin(&space_id(1), &blob_id(7)).unwrap();
    writer.write(&vec![0; 1 << 20]).unwrap();
    assert!(matches!(
        writer.write(b"x"),
        Err(Error::PayloadTooLarge { .. })
    ));
}

fn stores_round_trip(dir: &Path, backend: BlobBackend) {
    {
        let stores = Stores::open(dir, backend).unwrap();
        stores.meta.create_account(&account("alice", 10)).unwrap();
        put(stores.blobs.as_ref(), &space_id(1), &blob_id(1), b"body");
    }
    let stores = Stores::open(dir, backend).unwrap();
    assert!(stores.meta.account("alice").unwrap().is_some());
    assert_eq!(
        read_all(stores.blobs.as_ref(), &space_id(1), &blob_id(1)),
        Some(b"body".to_vec())
    );
}

#[test]
fn stores_open_both_layouts_and_refuse_a_switch() {
    for backend in [BlobBackend::Files, BlobBackend::Sled] {
        let dir = tempfile::tempdir().unwrap();
        stores_round_trip(dir.path(), backend);
        let other = match backend {
            BlobBackend::Files => BlobBackend::Sled,
            BlobBackend::Sled => BlobBackend::Files,
        };
        assert!(matches!(
            Stores::open(dir.path(), other),
            Err(Error::Config(_))
        ));
    }
    let stores = Stores::memory();
    meta_suite(stores.meta.as_ref());
    blob_suite(stores.blobs.as_ref());
}
