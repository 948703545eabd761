//! The pack files of the default blob layout ([`PackedBlobs`]): small blobs of batches share few
//! files, deletes compact, and what a crash can leave (a torn tail, a pack nobody indexes) is
//! harmless. The generic behaviour is in `store_conformance.rs`.

// Helpers outside `#[test]` functions unwrap too: a panic anywhere here is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::path::Path;

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_gateway::store::packs::{PACK_MAGIC, PACK_TARGET, PACKED_BLOB_MAX, PackedBlobs};
use coffre_gateway::store::{BlobStore, open_db};

fn space() -> SpaceId {
    SpaceId::from_bytes([7; 32])
}

fn blob_id(n: u32) -> BlobId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    bytes[31] = 0x55;
    BlobId::from_bytes(bytes)
}

fn body(n: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(n) as u8)
        .collect()
}

fn open(dir: &Path) -> PackedBlobs {
    let db = open_db(&dir.join("db")).unwrap();
    PackedBlobs::open(dir, &db, None).unwrap()
}

fn read_all(store: &PackedBlobs, blob: &BlobId) -> Option<Vec<u8>> {
    let reader = store.open(&space(), blob).unwrap()?;
    let mut out = Vec::new();
    let mut bodies = reader.body;
    bodies.read_to_end(&mut out).unwrap();
    assert_eq!(reader.size, out.len() as u64);
    Some(out)
}

/// Stores blobs `range` of `len` bytes each, in batches of 50.
fn put_range(store: &PackedBlobs, range: std::ops::Range<u32>, len: usize) {
    let bodies: Vec<(BlobId, Vec<u8>)> = range.map(|n| (blob_id(n), body(n, len))).collect();
    for batch in bodies.chunks(50) {
        let refs: Vec<(BlobId, &[u8])> = batch
            .iter()
            .map(|(id, bytes)| (*id, bytes.as_slice()))
            .collect();
        store.put_many(&space(), &refs).unwrap();
    }
}

fn assert_range(store: &PackedBlobs, range: std::ops::Range<u32>, len: usize) {
    for n in range {
        assert_eq!(read_all(store, &blob_id(n)), Some(body(n, len)), "blob {n}");
    }
}

#[test]
fn small_blobs_of_batches_share_few_packs_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 3,000 blobs of 8 KiB: 24 MiB, so two packs of at most PACK_TARGET bytes.
    put_range(&store, 0..3000, 8192);
    let packs = store.pack_paths().unwrap();
    assert_eq!(packs.len(), 2, "{packs:?}");
    for pack in &packs {
        assert!(std::fs::metadata(pack).unwrap().len() <= PACK_TARGET);
    }
    assert!(
        !dir.path().join("blobs").join(space().to_hex()).exists(),
        "no blob became a file"
    );
    assert!(store.disk_bytes().unwrap() >= 3000 * 8192);
    drop(store);
    let store = open(dir.path());
    assert_range(&store, 0..3000, 8192);
    // Appending after a restart starts a new pack.
    put_range(&store, 3000..3010, 100);
    assert_eq!(store.pack_paths().unwrap().len(), 3);
    assert_range(&store, 3000..3010, 100);
}

#[test]
fn a_blob_above_the_pack_limit_in_a_batch_becomes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let large = body(1, PACKED_BLOB_MAX + 1);
    let small = body(2, 10);
    store
        .put_many(&space(), &[(blob_id(1), &large), (blob_id(2), &small)])
        .unwrap();
    assert!(store.files().path_of(&space(), &blob_id(1)).exists());
    assert!(!store.files().path_of(&space(), &blob_id(2)).exists());
    assert_eq!(read_all(&store, &blob_id(1)), Some(large));
    assert_eq!(read_all(&store, &blob_id(2)), Some(small));
}

#[test]
fn deletes_compact_mostly_dead_packs_and_remove_empty_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 40 blobs of 512 KiB: the first pack closes after 31 of them, the second is active.
    let len = 512 * 1024;
    put_range(&store, 0..40, len);
    let packs = store.pack_paths().unwrap();
    assert_eq!(packs.len(), 2);
    let before = store.disk_bytes().unwrap();
    // A reader opened before the compaction keeps reading the old pack.
    let mut early = store.open(&space(), &blob_id(30)).unwrap().unwrap();

    // Deleting a third of the first pack compacts nothing yet.
    for n in 0..10 {
        store.delete(&space(), &blob_id(n)).unwrap();
    }
    assert_eq!(store.pack_paths().unwrap(), packs);
    // Past half of it dead: its live blobs move to the active pack and it goes.
    for n in 10..20 {
        store.delete(&space(), &blob_id(n)).unwrap();
    }
    let after = store.pack_paths().unwrap();
    assert!(!after.contains(&packs[0]), "{after:?}");
    assert!(!packs[0].exists());
    assert!(store.disk_bytes().unwrap() < before);
    assert_range(&store, 20..40, len);
    for n in 0..20 {
        assert!(!store.contains(&space(), &blob_id(n)).unwrap());
    }
    let mut early_body = Vec::new();
    early.body.read_to_end(&mut early_body).unwrap();
    assert_eq!(early_body, body(30, len));

    // Everything deleted: only the active pack is left, and it goes at the next open.
    for n in 20..40 {
        store.delete(&space(), &blob_id(n)).unwrap();
    }
    assert_eq!(store.pack_paths().unwrap().len(), 1);
    drop(store);
    let store = open(dir.path());
    assert!(store.pack_paths().unwrap().is_empty());
    let mut count = 0;
    store
        .for_each(&mut |_, _, _| {
            count += 1;
            Ok(())
        })
        .unwrap();
    assert_eq!(count, 0);
    put_range(&store, 100..105, 1000);
    assert_range(&store, 100..105, 1000);
}

#[test]
fn a_torn_tail_and_a_pack_nobody_indexes_are_harmless() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put_range(&store, 0..20, 5000);
    let packs = store.pack_paths().unwrap();
    assert_eq!(packs.len(), 1);
    drop(store);
    // A crash in the middle of an append leaves part of a record at the end of the pack.
    let mut tail = std::fs::OpenOptions::new()
        .append(true)
        .open(&packs[0])
        .unwrap();
    tail.write_all(&[0xee; 100]).unwrap();
    drop(tail);
    // A crash after a compaction moved every record, before the old pack was removed, leaves a
    // pack whose records are indexed elsewhere: an older number with nothing live in it.
    let stale = packs[0].with_file_name(format!("{:016x}.pack", 0));
    let mut stale_bytes = PACK_MAGIC.to_vec();
    stale_bytes.extend_from_slice(&[0x11; 300]);
    std::fs::write(&stale, stale_bytes).unwrap();

    let store = open(dir.path());
    assert!(
        !stale.exists(),
        "a pack without live blobs is removed at open"
    );
    assert_range(&store, 0..20, 5000);
    // Nothing is appended after a possibly torn tail: new records go to a new pack.
    put_range(&store, 20..30, 7000);
    assert_eq!(store.pack_paths().unwrap().len(), 2);
    assert_range(&store, 20..30, 7000);
    // The pack with the torn tail compacts: its survivors move, it goes.
    for n in 0..15 {
        store.delete(&space(), &blob_id(n)).unwrap();
    }
    assert!(!packs[0].exists());
    drop(store);
    let store = open(dir.path());
    assert_range(&store, 15..20, 5000);
    assert_range(&store, 20..30, 7000);
    assert_eq!(store.pack_paths().unwrap().len(), 1);
}

#[test]
fn a_lost_pack_is_reported_and_its_number_never_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    put_range(&store, 0..10, 3000);
    let lost = store.pack_paths().unwrap();
    assert_eq!(lost.len(), 1);
    drop(store);
    // The pack disappears (a disk fault, an operator's mistake): the index still names it.
    std::fs::remove_file(&lost[0]).unwrap();
    let store = open(dir.path());
    put_range(&store, 10..20, 4000);
    let packs = store.pack_paths().unwrap();
    assert_eq!(packs.len(), 1);
    assert_ne!(
        packs[0], lost[0],
        "a new pack must not take the lost one's number"
    );
    assert!(matches!(
        store.open(&space(), &blob_id(3)),
        Err(coffre_gateway::Error::Corrupt(_))
    ));
    assert_range(&store, 10..20, 4000);
    // What `check` walks lists only the bodies that exist, so it reports the lost ones missing.
    let mut listed = Vec::new();
    store
        .for_each(&mut |_, blob, _| {
            listed.push(*blob);
            Ok(())
        })
        .unwrap();
    listed.sort();
    let expected: Vec<BlobId> = (10..20).map(blob_id).collect();
    assert_eq!(listed, expected);
}
