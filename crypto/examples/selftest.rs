//! The crypto self-demo: the README's main job until the gateway and the CLI exist.
//!
//! It plays every client-side step of coffre against an in-memory map that stands in for the
//! gateway (blob id → envelope bytes), and checks each promise of the threat model on the way:
//!
//! 1. alice and bob create identities and device certificates;
//! 2. alice creates a space (signed genesis + first key rotation) and adds bob as a writer;
//! 3. alice chunks, encrypts and commits a generated file; bob verifies the membership log and the
//!    commit, decrypts everything and gets the same bytes back;
//! 4. the "gateway" swaps a chunk: bob refuses it with an integrity error;
//! 5. alice removes bob (key rotation) and commits a new file; bob holds no key that opens it,
//!    while alice still reads the old file through the epoch chain.
//!
//! Run it with `cargo run --release -p coffre-crypto --example selftest [MiB]` (default 64 MiB).

use std::collections::HashMap;
use std::io::Read;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use coffre_crypto::Result;
use coffre_crypto::chunker::{Chunker, ChunkerSeed, ConvergenceKey, seal_chunk};
use coffre_crypto::commit::{Commit, CommitChain, CommitRoot, LogHead};
use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash, DeviceSigner,
};
use coffre_crypto::dirnode::{DirEntry, DirNode, EntryKind, EntryName, FileContent, Timestamp};
use coffre_crypto::envelope::{self, BlobKind, BlobRef};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret, safety_number};
use coffre_crypto::keys::{BlobId, EpochKey, SigningSecret, SpaceId};
use coffre_crypto::manifest::Manifest;
use coffre_crypto::membership::{MembershipLog, Role};

/// Stands in for the gateway: it stores envelopes by id and can tamper with them.
type Gateway = HashMap<BlobId, Vec<u8>>;

struct User {
    identity: Identity,
    secret: IdentitySecret,
    device: DeviceSigner,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn new_user(handle: &str) -> Result<User> {
    let secret = IdentitySecret::generate()?;
    let identity = secret.certify(&Handle::parse(handle)?, now_ms())?;
    let device_secret = SigningSecret::generate()?;
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device_secret.public_key(),
        now_ms(),
    )?;
    let device = DeviceSigner::new(DeviceCertificate::try_from(entry)?, device_secret)?;
    Ok(User {
        identity,
        secret,
        device,
    })
}

/// Deterministic pseudo-random bytes (xorshift), so the demo needs no input file.
struct Generated {
    state: u64,
    left: u64,
}

impl Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = buf.len().min(self.left as usize) / 8 * 8;
        let n = if n == 0 {
            buf.len().min(self.left as usize)
        } else {
            n
        };
        for chunk in buf[..n].chunks_mut(8) {
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            chunk.copy_from_slice(&self.state.to_le_bytes()[..chunk.len()]);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Chunks, encrypts and stores a file, then a one-entry root directory. Returns the root
/// reference and the BLAKE3 of the plaintext (to compare after the round trip).
fn put_file(
    gateway: &mut Gateway,
    space: &SpaceId,
    epoch: u64,
    key: &EpochKey,
    name: &str,
    source: impl Read,
) -> Result<(BlobRef, [u8; 32], usize)> {
    let seed = ChunkerSeed::derive(space, epoch, key);
    let convergence = ConvergenceKey::derive(space, epoch, key);
    let mut plaintext_hash = blake3::Hasher::new();
    let mut chunks = Vec::new();
    for chunk in Chunker::new(source, &seed) {
        let chunk = chunk?;
        plaintext_hash.update(&chunk.data);
        let (chunk_ref, sealed) = seal_chunk(&convergence, &chunk.data)?;
        gateway.insert(sealed.id(), sealed.into_bytes());
        chunks.push(chunk_ref);
    }
    let chunk_count = chunks.len();
    let manifest = Manifest::from_chunks(chunks)?;
    let size = manifest.file_size;
    let (manifest_ref, sealed) = manifest.seal()?;
    gateway.insert(sealed.id(), sealed.into_bytes());
    let entry = DirEntry {
        name: EntryName::new(name)?,
        mtime: Timestamp::new((now_ms() / 1000) as i64, 0)?,
        kind: EntryKind::File {
            // Always a manifest here, even for one chunk: the demo swaps chunks in it below.
            content: FileContent::Manifest(manifest_ref),
            size,
            mode: 0o644,
        },
    };
    let (root, sealed) = DirNode::new(vec![entry])?.seal()?;
    gateway.insert(sealed.id(), sealed.into_bytes());
    Ok((root, *plaintext_hash.finalize().as_bytes(), chunk_count))
}

/// Follows a root down to the file, verifying every blob id and decrypting every chunk.
fn get_file(gateway: &Gateway, root: &BlobRef, name: &str) -> Result<[u8; 32]> {
    let missing = || coffre_crypto::Error::InvalidInput("blob missing from the gateway");
    let node = DirNode::open(root, gateway.get(&root.id).ok_or_else(missing)?)?;
    let Some(DirEntry {
        kind:
            EntryKind::File {
                content: FileContent::Manifest(manifest),
                size,
                ..
            },
        ..
    }) = node.get(name)
    else {
        return Err(coffre_crypto::Error::InvalidInput(
            "no such file in the snapshot",
        ));
    };
    let manifest = Manifest::open(manifest, gateway.get(&manifest.id).ok_or_else(missing)?)?;
    if manifest.file_size != *size {
        return Err(coffre_crypto::Error::InvalidInput(
            "directory size and manifest disagree",
        ));
    }
    let mut hash = blake3::Hasher::new();
    for chunk in &manifest.chunks {
        let bytes = gateway.get(&chunk.id).ok_or_else(missing)?;
        hash.update(&envelope::open_verified(
            &chunk.id,
            &chunk.key,
            BlobKind::Chunk,
            bytes,
        )?);
    }
    Ok(*hash.finalize().as_bytes())
}

fn mb_per_s(bytes: u64, since: Instant) -> f64 {
    bytes as f64 / 1e6 / since.elapsed().as_secs_f64()
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let mebibytes: u64 = std::env::args().nth(1).map_or(Ok(64), |arg| arg.parse())?;
    let file_len = mebibytes * 1024 * 1024;
    let mut gateway = Gateway::new();

    // 1. Identities and devices.
    let alice = new_user("alice")?;
    let bob = new_user("bob")?;
    println!("1. alice and bob created identities; safety number to compare out of band:");
    println!("   {}", safety_number(&alice.identity, &bob.identity));

    // 2. A space, with bob as a writer.
    let salt = coffre_crypto::keys::random_bytes()?;
    let (mut log, epoch1_key) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.device, salt)?;
    let add_bob = log.add(&alice.secret, &alice.device, 0, &bob.identity, Role::Writer)?;
    log.append(&add_bob)?;
    let space = *log.space_id();
    println!(
        "2. alice created space {space} and added bob as writer ({} log entries)",
        log.entries().len()
    );

    // 3. alice stores a file and commits; bob verifies and reads it back.
    let started = Instant::now();
    let source = Generated {
        state: 0x9e37_79b9_7f4a_7c15,
        left: file_len,
    };
    let (root1, hash1, chunks) =
        put_file(&mut gateway, &space, 1, &epoch1_key, "report.bin", source)?;
    let upload_rate = mb_per_s(file_len, started);
    let commit1_root = CommitRoot {
        root: root1.duplicate(),
        time_ms: now_ms() as i64,
        message: "first".into(),
    };
    let commit1 = Commit::next(
        &log,
        None,
        &epoch1_key,
        LogHead::NONE,
        &commit1_root,
        &alice.device,
    )?;

    let bob_log = MembershipLog::decode_and_verify(
        &log.entries()
            .iter()
            .map(|e| e.encoded())
            .collect::<Vec<_>>(),
    )?;
    let bob_key = bob_log.current_epoch_key(&bob.secret)?;
    let mut bob_chain = CommitChain::new(space);
    bob_chain.accept(&[Commit::decode(commit1.encoded())?], &bob_log)?;
    let started = Instant::now();
    let bob_root = commit1.open_root(&bob_key)?.root;
    let bob_hash = get_file(&gateway, &bob_root, "report.bin")?;
    let download_rate = mb_per_s(file_len, started);
    assert_eq!(bob_hash, hash1, "round trip must give the same bytes");
    println!(
        "3. alice stored {mebibytes} MiB as {chunks} chunks + manifest + directory node ({upload_rate:.0} MB/s chunk+seal); \
         bob verified log and commit and read it back identical ({download_rate:.0} MB/s open+verify)"
    );

    // 4. The gateway swaps two chunks: bob refuses.
    let node = DirNode::open(&root1, &gateway[&root1.id])?;
    let Some(DirEntry {
        kind:
            EntryKind::File {
                content: FileContent::Manifest(manifest),
                ..
            },
        ..
    }) = node.get("report.bin")
    else {
        return Err("the demo file is missing".into());
    };
    let manifest = Manifest::open(manifest, &gateway[&manifest.id])?;
    if manifest.chunks.len() >= 2 {
        let (first, second) = (manifest.chunks[0].id, manifest.chunks[1].id);
        let (a, b) = (gateway[&first].clone(), gateway[&second].clone());
        gateway.insert(first, b.clone());
        gateway.insert(second, a.clone());
        let refused = get_file(&gateway, &bob_root, "report.bin");
        println!(
            "4. the gateway swapped two chunks; bob's client says: {}",
            refused
                .as_ref()
                .err()
                .map_or("ACCEPTED (bug!)".into(), ToString::to_string)
        );
        assert!(refused.is_err(), "a swapped chunk must be refused");
        gateway.insert(first, a);
        gateway.insert(second, b);
    }

    // 5. alice removes bob, rotates the key and commits a new file.
    let (remove_bob, epoch2_key) = log.remove(
        &alice.secret,
        &alice.device,
        commit1.seq(),
        bob.identity.sign_key(),
    )?;
    log.append(&remove_bob)?;
    let secret_plan = Generated {
        state: 42,
        left: 300_000,
    };
    let (root2, _, _) = put_file(
        &mut gateway,
        &space,
        2,
        &epoch2_key,
        "after-removal.txt",
        secret_plan,
    )?;
    let commit2_root = CommitRoot {
        root: root2,
        time_ms: now_ms() as i64,
        message: "after bob left".into(),
    };
    let commit2 = Commit::next(
        &log,
        Some(&commit1),
        &epoch2_key,
        LogHead::NONE,
        &commit2_root,
        &alice.device,
    )?;
    let bob_epoch2 = log.current_epoch_key(&bob.secret);
    let bob_reads_new = commit2.open_root(&bob_key);
    assert!(
        bob_epoch2.is_err() && bob_reads_new.is_err(),
        "a removed member must not read new data"
    );
    let alice_old = log.epoch_key(1, &alice.secret)?;
    let alice_hash = get_file(&gateway, &commit1.open_root(&alice_old)?.root, "report.bin")?;
    assert_eq!(alice_hash, hash1);
    println!(
        "5. alice removed bob (epoch 2): bob's keys open nothing new ({}); alice still reads the old file through the epoch chain",
        bob_reads_new
            .err()
            .map_or("ACCEPTED (bug!)".into(), |e| e.to_string())
    );

    let stored: usize = gateway.values().map(Vec::len).sum();
    println!(
        "self-demo passed: {} blobs, {:.1} MiB stored for {:.1} MiB of plaintext; every check above held",
        gateway.len(),
        stored as f64 / 1048576.0,
        (file_len + 300_000) as f64 / 1048576.0
    );
    Ok(())
}
