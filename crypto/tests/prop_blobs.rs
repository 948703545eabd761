//! Property tests of the blob layer: envelopes, manifests, directory nodes and the chunker
//! (FORMAT.md sections 4 to 7). Case counts are modest so the file runs in seconds.

// Test helpers outside `#[test]` functions: a panic there is a failed test too.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;

use coffre_crypto::Error;
use coffre_crypto::chunker::{
    Chunk, Chunker, ChunkerSeed, ConvergenceKey, MAX_CHUNK_SIZE, MIN_CHUNK_SIZE, chunk_key,
    seal_chunk,
};
use coffre_crypto::dirnode::{DirEntry, DirNode, EntryKind, EntryName, FileContent, Timestamp};
use coffre_crypto::envelope::{self, BlobKind, BlobRef};
use coffre_crypto::keys::{BlobId, BlobKey, EpochKey, SpaceId};
use coffre_crypto::manifest::{ChunkRef, MAX_CHUNK_LEN, Manifest};
use proptest::prelude::*;

fn kind() -> impl Strategy<Value = BlobKind> {
    prop_oneof![
        Just(BlobKind::Chunk),
        Just(BlobKind::Manifest),
        Just(BlobKind::DirNode)
    ]
}

/// `len` pseudo-random bytes from a BLAKE3 XOF seeded with `seed`.
fn pseudo_random(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed)
        .finalize_xof()
        .fill(&mut out);
    out
}

fn chunks_of(data: &[u8], seed: &ChunkerSeed) -> Vec<Chunk> {
    Chunker::new(data, seed).collect::<Result<_, _>>().unwrap()
}

fn chunk_ref() -> impl Strategy<Value = ChunkRef> {
    (any::<[u8; 32]>(), any::<[u8; 32]>(), 1..=MAX_CHUNK_LEN).prop_map(|(id, key, length)| {
        ChunkRef {
            id: BlobId::from_bytes(id),
            key: BlobKey::from_bytes(key),
            length,
        }
    })
}

fn entry() -> impl Strategy<Value = DirEntry> {
    let name = "[a-zA-Z0-9 ._é-]{1,24}".prop_filter_map("valid name", |n| EntryName::new(&n).ok());
    let blob = (any::<[u8; 32]>(), any::<[u8; 32]>()).prop_map(|(id, key)| BlobRef {
        id: BlobId::from_bytes(id),
        key: BlobKey::from_bytes(key),
    });
    let kind = prop_oneof![
        (blob.clone(), any::<u64>(), 0u32..=0o7777).prop_map(|(manifest, size, mode)| {
            EntryKind::File {
                content: FileContent::Manifest(manifest),
                size,
                mode,
            }
        }),
        (blob.clone(), 1u32..=MAX_CHUNK_LEN, 0u32..=0o7777).prop_map(|(chunk, length, mode)| {
            EntryKind::File {
                content: FileContent::Chunk(ChunkRef {
                    id: chunk.id,
                    key: chunk.key,
                    length,
                }),
                size: u64::from(length),
                mode,
            }
        }),
        blob.prop_map(|node| EntryKind::Dir { node }),
        "[^\u{0}]{1,64}".prop_map(|target| EntryKind::Symlink { target }),
    ];
    (name, any::<i64>(), 0u32..1_000_000_000, kind).prop_map(|(name, secs, nanos, kind)| DirEntry {
        name,
        mtime: Timestamp::new(secs, nanos).unwrap(),
        kind,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn envelope_round_trips(key in any::<[u8; 32]>(), kind in kind(),
                            content in proptest::collection::vec(any::<u8>(), 0..3000)) {
        let key = BlobKey::from_bytes(key);
        let sealed = envelope::seal(&key, kind, &content).unwrap();
        prop_assert_eq!(Some(sealed.as_bytes().len()), envelope::envelope_len(content.len()));
        let opened = envelope::open_verified(&sealed.id(), &key, kind, sealed.as_bytes()).unwrap();
        prop_assert_eq!(opened, content);
    }

    #[test]
    fn any_bit_flip_fails(key in any::<[u8; 32]>(), kind in kind(),
                          content in proptest::collection::vec(any::<u8>(), 0..600),
                          bit in any::<prop::sample::Index>()) {
        let key = BlobKey::from_bytes(key);
        let sealed = envelope::seal(&key, kind, &content).unwrap();
        let mut bytes = sealed.into_bytes();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(envelope::open(&key, kind, &bytes).is_err());
        // With the id check the error is an integrity failure, before any decryption.
        let id = envelope::seal(&key, kind, &content).unwrap().id();
        prop_assert!(
            matches!(envelope::open_verified(&id, &key, kind, &bytes), Err(Error::Integrity { .. })),
            "bit flips must be caught by the id check"
        );
    }

    #[test]
    fn any_truncation_fails(key in any::<[u8; 32]>(),
                            content in proptest::collection::vec(any::<u8>(), 0..600),
                            cut in any::<prop::sample::Index>()) {
        let key = BlobKey::from_bytes(key);
        let sealed = envelope::seal(&key, BlobKind::Chunk, &content).unwrap();
        let len = cut.index(sealed.as_bytes().len());
        prop_assert!(envelope::open(&key, BlobKind::Chunk, &sealed.as_bytes()[..len]).is_err());
    }

    #[test]
    fn manifest_round_trips(chunks in proptest::collection::vec(chunk_ref(), 0..40)) {
        let manifest = Manifest::from_chunks(chunks).unwrap();
        let bytes = manifest.encode().unwrap();
        prop_assert_eq!(&Manifest::decode(&bytes).unwrap(), &manifest);
        let (reference, sealed) = manifest.seal().unwrap();
        prop_assert_eq!(Manifest::open(&reference, sealed.as_bytes()).unwrap(), manifest);
    }

    #[test]
    fn dropping_a_manifest_entry_breaks_the_sum(
        chunks in proptest::collection::vec(chunk_ref(), 1..20),
        drop in any::<prop::sample::Index>(),
    ) {
        let manifest = Manifest::from_chunks(chunks).unwrap();
        let drop = drop.index(manifest.chunks.len());
        let mut bytes = manifest.encode().unwrap().to_vec();
        let count = (manifest.chunks.len() - 1) as u32;
        bytes[13..17].copy_from_slice(&count.to_be_bytes());
        let start = 17 + 68 * drop;
        bytes.drain(start..start + 68);
        prop_assert!(
            matches!(Manifest::decode(&bytes), Err(Error::Malformed { .. })),
            "a dropped chunk must be refused"
        );
    }

    #[test]
    fn swapped_chunks_are_detected(a in proptest::collection::vec(any::<u8>(), 1..500),
                                   b in proptest::collection::vec(any::<u8>(), 1..500)) {
        prop_assume!(a != b);
        let key = ConvergenceKey::derive(&SpaceId::from_bytes([7; 32]), 1, &EpochKey::from_bytes([7; 32]));
        let (ref_a, _) = seal_chunk(&key, &a).unwrap();
        let (ref_b, sealed_b) = seal_chunk(&key, &b).unwrap();
        // The gateway serves B's envelope when asked for A: caught by the id, before decryption.
        prop_assert!(matches!(
            envelope::open_verified(&ref_a.id, &ref_a.key, BlobKind::Chunk, sealed_b.as_bytes()),
            Err(Error::Integrity { .. })
        ), "a swapped envelope must fail the id check");
        // Reordering the chunks changes the manifest's bytes, hence its id and the parent's link.
        let in_order = Manifest::from_chunks(vec![ref_a.duplicate(), ref_b.duplicate()]).unwrap();
        let swapped = Manifest::from_chunks(vec![ref_b, ref_a]).unwrap();
        prop_assert_ne!(in_order.encode().unwrap(), swapped.encode().unwrap());
        let (in_order_ref, _) = in_order.seal().unwrap();
        let (swapped_ref, swapped_sealed) = swapped.seal().unwrap();
        prop_assert_ne!(in_order_ref.id, swapped_ref.id);
        prop_assert!(matches!(
            Manifest::open(&in_order_ref, swapped_sealed.as_bytes()),
            Err(Error::Integrity { .. })
        ), "a swapped manifest must fail the id check");
    }

    #[test]
    fn dirnode_round_trips(entries in proptest::collection::vec(entry(), 0..24)) {
        let mut names = BTreeSet::new();
        let unique = entries.into_iter().filter(|e| names.insert(e.name.clone())).collect();
        let node = DirNode::new(unique).unwrap();
        let bytes = node.encode().unwrap();
        prop_assert_eq!(&DirNode::decode(&bytes).unwrap(), &node);
        let (reference, sealed) = node.seal().unwrap();
        prop_assert_eq!(DirNode::open(&reference, sealed.as_bytes()).unwrap(), node);
    }

    #[test]
    fn dedup_is_scoped_to_one_space(space_a in any::<[u8; 32]>(), space_b in any::<[u8; 32]>(),
                                    epoch_key in any::<[u8; 32]>(),
                                    plaintext in proptest::collection::vec(any::<u8>(), 1..2000)) {
        prop_assume!(space_a != space_b);
        let ek = EpochKey::from_bytes(epoch_key);
        let key_a = ConvergenceKey::derive(&SpaceId::from_bytes(space_a), 1, &ek);
        let key_b = ConvergenceKey::derive(&SpaceId::from_bytes(space_b), 1, &ek);
        let (ref_a, sealed_a) = seal_chunk(&key_a, &plaintext).unwrap();
        let (ref_a2, _) = seal_chunk(&key_a, &plaintext).unwrap();
        let (ref_b, _) = seal_chunk(&key_b, &plaintext).unwrap();
        prop_assert_eq!(ref_a.id, ref_a2.id, "equal ids within one space");
        prop_assert_ne!(ref_a.id, ref_b.id, "unrelated ids across spaces");
        // Space B's member derives B's key for the same plaintext: it does not open A's blob.
        let b_key = chunk_key(&key_b, &plaintext);
        prop_assert!(matches!(
            envelope::open(&b_key, BlobKind::Chunk, sealed_a.as_bytes()),
            Err(Error::Authentication)
        ), "space B's key must not open space A's chunk");
        // Another epoch of the same space is another trust domain too.
        let key_a_next = ConvergenceKey::derive(&SpaceId::from_bytes(space_a), 2, &ek);
        prop_assert_ne!(seal_chunk(&key_a_next, &plaintext).unwrap().0.id, ref_a.id);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn chunker_is_a_deterministic_partition(epoch_key in any::<[u8; 32]>(),
                                            input_seed in any::<[u8; 8]>(),
                                            len in 0usize..(9 << 20)) {
        let seed = ChunkerSeed::derive(&SpaceId::from_bytes([1; 32]), 1,
                                       &EpochKey::from_bytes(epoch_key));
        let data = pseudo_random(&input_seed, len);
        let chunks = chunks_of(&data, &seed);
        prop_assert_eq!(&chunks, &chunks_of(&data, &seed), "deterministic");
        let mut offset = 0u64;
        for (index, chunk) in chunks.iter().enumerate() {
            prop_assert_eq!(chunk.offset, offset);
            prop_assert!(!chunk.data.is_empty() && chunk.data.len() <= MAX_CHUNK_SIZE);
            if index + 1 < chunks.len() {
                prop_assert!(chunk.data.len() >= MIN_CHUNK_SIZE);
            }
            offset += chunk.data.len() as u64;
        }
        let joined: Vec<u8> = chunks.into_iter().flat_map(|chunk| chunk.data).collect();
        prop_assert_eq!(joined, data);
    }
}

fn boundaries(chunks: &[Chunk]) -> Vec<u64> {
    chunks.iter().map(|chunk| chunk.offset).collect()
}

#[test]
fn boundaries_depend_on_the_seed() {
    let data = pseudo_random(b"seed test", 12 << 20);
    let space = SpaceId::from_bytes([2; 32]);
    let seed_a = ChunkerSeed::derive(&space, 1, &EpochKey::from_bytes([1; 32]));
    let seed_b = ChunkerSeed::derive(&space, 1, &EpochKey::from_bytes([2; 32]));
    let a = boundaries(&chunks_of(&data, &seed_a));
    let b = boundaries(&chunks_of(&data, &seed_b));
    assert!(a.len() > 3, "{a:?}");
    assert_ne!(a, b);
    // Not merely shifted by one chunk: most interior boundaries differ.
    let shared = a.iter().skip(1).filter(|offset| b.contains(offset)).count();
    assert!(shared * 2 < a.len(), "{a:?} vs {b:?}");
}

#[test]
fn an_edit_in_the_middle_changes_only_a_few_chunks() {
    let space = SpaceId::from_bytes([3; 32]);
    let ek = EpochKey::from_bytes([3; 32]);
    let seed = ChunkerSeed::derive(&space, 1, &ek);
    let convergence = ConvergenceKey::derive(&space, 1, &ek);
    let original = pseudo_random(b"original file", 24 << 20);
    let mut edited = original.clone();
    edited[12 << 20..13 << 20].copy_from_slice(&pseudo_random(b"the edit", 1 << 20));

    let ids = |data: &[u8]| -> BTreeSet<BlobId> {
        chunks_of(data, &seed)
            .iter()
            .map(|chunk| seal_chunk(&convergence, &chunk.data).unwrap().0.id)
            .collect()
    };
    let before = ids(&original);
    let after = ids(&edited);
    assert!(before.len() >= 10, "about 1 MiB chunks: {}", before.len());
    let changed = after.difference(&before).count();
    assert!(changed >= 1, "the edit must change something");
    assert!(changed <= 3, "{changed} of {} chunks changed", after.len());
    assert!(before.difference(&after).count() <= 3);
}
