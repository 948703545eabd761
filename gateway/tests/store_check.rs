//! Crash safety of the file layout, and `check` finding what is wrong (and only that).

// Helpers outside `#[test]` functions unwrap too: a panic anywhere here is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_gateway::check::{Problem, check, check_stores};
use coffre_gateway::config::BlobBackend;
use coffre_gateway::store::files::FileBlobs;
use coffre_gateway::store::{AccountRecord, BlobMeta, BlobStore, MemberRecord, Stores};

const SPACE: SpaceId = SpaceId::from_bytes([7; 32]);

fn tmp_entries(data: &Path) -> usize {
    std::fs::read_dir(data.join("blobs").join("tmp"))
        .unwrap()
        .count()
}

#[test]
fn a_crash_mid_write_leaves_only_a_temp_file_that_open_removes() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FileBlobs::open(dir.path()).unwrap();
    let blob = BlobId::from_bytes([1; 32]);
    let mut writer = blobs.begin(&SPACE, &blob).unwrap();
    writer.write(&vec![0x5a; 3 << 20]).unwrap();
    // The process dies here: no commit, no destructor.
    std::mem::forget(writer);
    assert_eq!(
        tmp_entries(dir.path()),
        1,
        "the interrupted write is in tmp/"
    );
    assert!(!blobs.contains(&SPACE, &blob).unwrap());
    assert!(blobs.open(&SPACE, &blob).unwrap().is_none());
    drop(blobs);

    let reopened = FileBlobs::open(dir.path()).unwrap();
    assert_eq!(tmp_entries(dir.path()), 0, "open cleans interrupted writes");
    assert!(reopened.open(&SPACE, &blob).unwrap().is_none());
    let mut count = 0;
    reopened
        .for_each(&mut |_, _, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 0);
    assert_eq!(reopened.disk_bytes().unwrap(), 0);

    // The same blob can then be written in full.
    let mut writer = reopened.begin(&SPACE, &blob).unwrap();
    writer.write(b"whole").unwrap();
    writer.commit().unwrap();
    assert_eq!(reopened.open(&SPACE, &blob).unwrap().unwrap().size, 5);
    assert_eq!(tmp_entries(dir.path()), 0, "a commit leaves no temp file");
}

#[test]
fn an_aborted_write_removes_its_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let blobs = FileBlobs::open(dir.path()).unwrap();
    let mut writer = blobs.begin(&SPACE, &BlobId::from_bytes([2; 32])).unwrap();
    writer.write(b"abc").unwrap();
    drop(writer);
    assert_eq!(tmp_entries(dir.path()), 0);
}

fn store_blob(stores: &Stores, space: &SpaceId, body: &[u8], uploader: &str) -> BlobId {
    let blob = BlobId::from_bytes(*blake3::hash(body).as_bytes());
    let mut writer = stores.blobs.begin(space, &blob).unwrap();
    writer.write(body).unwrap();
    writer.commit().unwrap();
    let meta = BlobMeta {
        size: body.len() as u64,
        created_ms: 1,
        uploader: uploader.into(),
    };
    stores.meta.reserve_quota(uploader, meta.size).unwrap();
    assert!(stores.meta.put_blob_meta(space, &blob, &meta).unwrap());
    blob
}

/// A real space (signed genesis, first rotation, one signed commit), as a client makes them.
fn signed_space() -> (SpaceId, Vec<Vec<u8>>, Vec<u8>) {
    use coffre_crypto::commit::{Commit, CommitRoot, LogHead};
    use coffre_crypto::device::{
        DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash, DeviceSigner,
    };
    use coffre_crypto::envelope::BlobRef;
    use coffre_crypto::identity::{Handle, IdentitySecret};
    use coffre_crypto::keys::{BlobKey, EncSecret, SigningSecret};
    use coffre_crypto::membership::MembershipLog;

    let secret = IdentitySecret::from_parts(
        SigningSecret::from_seed(&[1; 32]),
        EncSecret::from_bytes([2; 32]),
    );
    let identity = secret.certify(&Handle::parse("alice").unwrap(), 0).unwrap();
    let device = SigningSecret::from_seed(&[3; 32]);
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device.public_key(),
        0,
    )
    .unwrap();
    let signer = DeviceSigner::new(DeviceCertificate::try_from(entry).unwrap(), device).unwrap();
    let (log, key) = MembershipLog::create(&identity, &secret, &signer, [4; 16]).unwrap();
    let root = CommitRoot {
        root: BlobRef {
            id: BlobId::from_bytes([5; 32]),
            key: BlobKey::from_bytes([6; 32]),
        },
        time_ms: 0,
        message: String::new(),
    };
    let commit = Commit::next(&log, None, &key, LogHead::NONE, &root, &signer).unwrap();
    let entries = log.entries().iter().map(|e| e.encoded().to_vec()).collect();
    (*log.space_id(), entries, commit.encoded().to_vec())
}

/// A small, consistent store: one account, one space with one commit, three blobs.
fn populate(stores: &Stores) -> (SpaceId, Vec<BlobId>) {
    let account = AccountRecord {
        handle: "alice".into(),
        identity: vec![1; 32],
        device_chain: vec![],
        key_bundles: vec![],
        quota_bytes: 1 << 30,
        used_bytes: 0,
        created_ms: 0,
        opaque_record: Vec::new(),
    };
    stores.meta.create_account(&account).unwrap();
    let owner = MemberRecord {
        handle: "alice".into(),
        role: 4,
    };
    let (space, entries, commit) = signed_space();
    stores
        .meta
        .create_space(&space, &entries[0], std::slice::from_ref(&owner))
        .unwrap();
    stores
        .meta
        .append_membership(&space, 1, 0, &entries[1], &[owner])
        .unwrap();
    stores.meta.append_commit(&space, 1, 2, &commit).unwrap();
    let blobs = (0u8..3)
        .map(|n| store_blob(stores, &space, &vec![n; 5000 + usize::from(n)], "alice"))
        .collect();
    (space, blobs)
}

fn blob_path(data: &Path, space: &SpaceId, blob: &BlobId) -> PathBuf {
    let hex = blob.to_hex();
    data.join("blobs")
        .join(space.to_hex())
        .join(&hex[..2])
        .join(hex)
}

#[test]
fn check_finds_corrupt_missing_and_orphan_bodies_in_the_file_layout() {
    let dir = tempfile::tempdir().unwrap();
    let (space, blobs) = {
        let stores = Stores::open(dir.path(), BlobBackend::Files).unwrap();
        populate(&stores)
    };
    let report = check(dir.path(), true).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(
        (report.accounts, report.spaces, report.indexed_blobs),
        (1, 1, 3)
    );
    assert_eq!(report.bytes_read, 5000 + 5001 + 5002);

    // Flip one byte of one body: only reading the data finds it.
    let path = blob_path(dir.path(), &space, &blobs[0]);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[1234] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    assert!(check(dir.path(), false).unwrap().is_clean());
    let report = check(dir.path(), true).unwrap();
    let corrupt = Problem::HashMismatch {
        space,
        blob: blobs[0],
    };
    assert_eq!(report.problems, vec![corrupt.clone()]);
    assert!(corrupt.to_string().contains("corrupt"));

    // A missing body, and a body nobody indexed.
    std::fs::remove_file(blob_path(dir.path(), &space, &blobs[1])).unwrap();
    let orphan = {
        let stores = Stores::open(dir.path(), BlobBackend::Files).unwrap();
        let orphan = BlobId::from_bytes(*blake3::hash(b"orphan").as_bytes());
        let mut writer = stores.blobs.begin(&space, &orphan).unwrap();
        writer.write(b"orphan").unwrap();
        writer.commit().unwrap();
        orphan
    };
    let report = check(dir.path(), false).unwrap();
    assert!(!report.is_clean());
    let expected = [
        Problem::OrphanBody {
            space,
            blob: orphan,
            size: 6,
        },
        Problem::MissingBody {
            space,
            blob: blobs[1],
        },
    ];
    assert_eq!(report.problems, expected.to_vec());
}

#[test]
fn check_is_clean_on_the_sled_layout_and_refuses_a_missing_directory() {
    let dir = tempfile::tempdir().unwrap();
    {
        let stores = Stores::open(dir.path(), BlobBackend::Sled).unwrap();
        populate(&stores);
    }
    let report = check(dir.path(), true).unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.stored_blobs, 3);
    assert!(check(&dir.path().join("nowhere"), false).is_err());
}

#[test]
fn check_finds_quota_size_and_log_problems() {
    let stores = Stores::memory();
    let (space, blobs) = populate(&stores);
    assert!(check_stores(&stores, true).is_clean());

    stores.meta.release_quota("alice", 10).unwrap();
    let meta = stores
        .meta
        .delete_blob_meta(&space, &blobs[2])
        .unwrap()
        .unwrap();
    let wrong = BlobMeta {
        size: meta.size + 1,
        uploader: "mallory".into(),
        ..meta
    };
    stores
        .meta
        .put_blob_meta(&space, &blobs[2], &wrong)
        .unwrap();
    stores
        .meta
        .create_space(&SpaceId::from_bytes([9; 32]), b"not an entry", &[])
        .unwrap();
    let report = check_stores(&stores, false);
    let problems = report.problems;
    assert!(problems.contains(&Problem::SizeMismatch {
        space,
        blob: blobs[2],
        indexed: 5003,
        stored: 5002,
    }));
    assert!(problems.contains(&Problem::Quota {
        handle: "alice".into(),
        recorded: 5000 + 5001 + 5002 - 10,
        computed: 5000 + 5001,
    }));
    assert!(problems.contains(&Problem::UnknownUploader {
        handle: "mallory".into(),
        bytes: 5003,
    }));
    assert!(
        problems
            .iter()
            .any(|p| matches!(p, Problem::BadLogEntry { seq: 0, .. }))
    );
    assert_eq!(problems.len(), 4, "{problems:?}");
}

#[test]
fn undecodable_records_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let stores = Stores::open(dir.path(), BlobBackend::Files).unwrap();
        populate(&stores);
    }
    {
        let db = coffre_gateway::store::open_db(&dir.path().join("db")).unwrap();
        db.open_tree("accounts")
            .unwrap()
            .insert("bob", &[1u8, 0, 0][..])
            .unwrap();
        db.open_tree("blob_index")
            .unwrap()
            .insert([0u8; 64], &[9u8][..])
            .unwrap();
        db.flush().unwrap();
    }
    let report = check(dir.path(), false).unwrap();
    let unreadable: Vec<_> = report
        .problems
        .iter()
        .filter_map(|p| match p {
            Problem::Unreadable { what, .. } => Some(*what),
            _ => None,
        })
        .collect();
    assert!(
        unreadable.contains(&"the accounts"),
        "{:?}",
        report.problems
    );
    assert!(
        unreadable.contains(&"the blob index"),
        "{:?}",
        report.problems
    );
    let stores = Stores::open(dir.path(), BlobBackend::Files).unwrap();
    assert!(matches!(
        stores.meta.account("bob"),
        Err(coffre_gateway::Error::Corrupt(_))
    ));
}

#[test]
fn check_verifies_the_commit_chain_like_a_client() {
    let stores = Stores::memory();
    let (space, _) = populate(&stores);
    assert!(check_stores(&stores, false).is_clean());
    // A replayed commit: well-formed and correctly signed, but it does not extend the chain.
    let first = stores.meta.commits(&space, 0, 1).unwrap().remove(0);
    stores.meta.append_commit(&space, 2, 2, &first).unwrap();
    let problems = check_stores(&stores, false).problems;
    assert!(
        matches!(
            problems.as_slice(),
            [Problem::BadLogEntry {
                log: "commits",
                seq: 2,
                ..
            }]
        ),
        "{problems:?}"
    );
}
