//! Fixtures shared by the log tests: people with deterministic keys, and a realistic space.
#![allow(dead_code)]
// Fixtures: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash, DeviceSigner,
};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::keys::{EncSecret, EpochKey, SigningSecret};
use coffre_crypto::membership::{MembershipEntry, MembershipLog, Role};

/// A user with one device. Keys derive from `seed` so vectors can record them.
pub struct Person {
    pub seed: u8,
    pub secret: IdentitySecret,
    pub identity: Identity,
    pub signer: DeviceSigner,
}

pub fn secrets(seed: u8) -> (IdentitySecret, SigningSecret) {
    let identity = IdentitySecret::from_parts(
        SigningSecret::from_seed(&[seed; 32]),
        EncSecret::from_bytes([seed.wrapping_add(1); 32]),
    );
    (
        identity,
        SigningSecret::from_seed(&[seed.wrapping_add(2); 32]),
    )
}

pub fn person(handle: &str, seed: u8) -> Person {
    let (secret, device) = secrets(seed);
    let identity = secret
        .certify(
            &Handle::parse(handle).unwrap(),
            1_700_000_000_000 + u64::from(seed),
        )
        .unwrap();
    let certificate = DeviceCertificate::try_from(
        DeviceEntry::sign(
            secret.sign_secret(),
            0,
            DeviceEntryHash::from_bytes([0; 32]),
            DeviceAction::Add,
            &device.public_key(),
            1_700_000_000_000,
        )
        .unwrap(),
    )
    .unwrap();
    let signer = DeviceSigner::new(certificate, device).unwrap();
    Person {
        seed,
        secret,
        identity,
        signer,
    }
}

/// A device of `owner` certified by someone else's identity (`issuer`).
pub fn device_certified_by(issuer: &Person, device_seed: u8) -> DeviceSigner {
    let device = SigningSecret::from_seed(&[device_seed; 32]);
    let certificate = DeviceCertificate::try_from(
        DeviceEntry::sign(
            issuer.secret.sign_secret(),
            1,
            DeviceEntryHash::from_bytes([1; 32]),
            DeviceAction::Add,
            &device.public_key(),
            0,
        )
        .unwrap(),
    )
    .unwrap();
    DeviceSigner::new(certificate, device).unwrap()
}

pub struct Cast {
    pub alice: Person,
    pub bob: Person,
    pub carol: Person,
    pub dave: Person,
    pub mallory: Person,
}

pub fn cast() -> Cast {
    Cast {
        alice: person("alice", 10),
        bob: person("bob", 20),
        carol: person("carol", 30),
        dave: person("dave", 40),
        mallory: person("mallory", 50),
    }
}

/// The realistic space: genesis by alice (owner), rotate to epoch 1, add bob (writer) and carol
/// (reader), remove bob (epoch 2), make carol a writer. Entries 2.. have `commit_seq = seq`.
pub struct Space {
    pub log: MembershipLog,
    /// `keys[e]` is the key of epoch `e` (index 0 unused).
    pub keys: Vec<EpochKey>,
}

pub fn space(cast: &Cast) -> Space {
    let Cast {
        alice, bob, carol, ..
    } = cast;
    let (mut log, k1) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [7; 16]).unwrap();
    let add_bob = log
        .add(&alice.secret, &alice.signer, 2, &bob.identity, Role::Writer)
        .unwrap();
    log.append(&add_bob).unwrap();
    let add_carol = log
        .add(
            &alice.secret,
            &alice.signer,
            3,
            &carol.identity,
            Role::Reader,
        )
        .unwrap();
    log.append(&add_carol).unwrap();
    let (remove_bob, k2) = log
        .remove(&alice.secret, &alice.signer, 4, bob.identity.sign_key())
        .unwrap();
    log.append(&remove_bob).unwrap();
    let promote = log
        .change_role(&alice.signer, 5, carol.identity.sign_key(), Role::Writer)
        .unwrap();
    log.append(&promote).unwrap();
    Space {
        log,
        keys: vec![EpochKey::from_bytes([0; 32]), k1, k2],
    }
}

pub fn entries(log: &MembershipLog) -> Vec<MembershipEntry> {
    log.entries().to_vec()
}

use coffre_crypto::commit::{Commit, CommitRoot, LogHead};
use coffre_crypto::envelope::BlobRef;
use coffre_crypto::keys::{BlobId, BlobKey};

pub fn root(n: u8) -> CommitRoot {
    CommitRoot {
        root: BlobRef {
            id: BlobId::from_bytes([n; 32]),
            key: BlobKey::from_bytes([n ^ 0xff; 32]),
        },
        time_ms: 1_700_000_000_000 + i64::from(n),
        message: format!("commit {n}"),
    }
}

/// The space's history, consistent with `space()`'s commit_seqs: commits 1, 2 by alice (epoch 1),
/// 3 by bob (writer since entry 2), 4, 5 by alice (5 is after bob's removal, epoch 2), 6 by carol
/// (writer since entry 5).
pub fn history(cast: &Cast, space: &Space) -> Vec<Commit> {
    let authors = [
        &cast.alice,
        &cast.alice,
        &cast.bob,
        &cast.alice,
        &cast.alice,
        &cast.carol,
    ];
    let mut commits: Vec<Commit> = Vec::new();
    for (index, author) in authors.iter().enumerate() {
        let seq = index as u64 + 1;
        let epoch = space.log.state_at_commit_seq(seq).unwrap().epoch();
        let commit = Commit::next(
            &space.log,
            commits.last(),
            &space.keys[epoch as usize],
            LogHead {
                size: seq,
                root: [seq as u8; 32],
            },
            &root(seq as u8),
            &author.signer,
        )
        .unwrap();
        commits.push(commit);
    }
    commits
}

// Forging helpers: entries that the builders would refuse to sign.

use coffre_crypto::hpke;
use coffre_crypto::kdf::HPKE_INFO_EPOCH_WRAP;
use coffre_crypto::keys::KeyCommitment;
use coffre_crypto::membership::{Action, UnsignedEntry, Wrap};

/// A wrap with real HPKE to `person` (the verifier cannot tell real from fake; recipients can).
pub fn wrap_for(_log: &MembershipLog, _epoch: u64, person: &Person) -> Wrap {
    let sealed = hpke::seal(
        person.identity.enc_key(),
        HPKE_INFO_EPOCH_WRAP,
        b"junk aad",
        &[9; 32],
    )
    .unwrap();
    Wrap::from_parts(*person.identity.sign_key(), sealed)
}

pub fn sorted(mut wraps: Vec<Wrap>) -> Vec<Wrap> {
    wraps.sort_by(|a, b| a.recipient().cmp(b.recipient()));
    wraps
}

/// The unsigned next entry of `log` with the given action and the current epoch data.
pub fn next(log: &MembershipLog, action: Action) -> UnsignedEntry {
    let state = log.state();
    UnsignedEntry {
        space_id: *log.space_id(),
        seq: state.seq() + 1,
        prev_hash: state.head(),
        commit_seq: state.commit_seq(),
        epoch: state.epoch(),
        action,
        epoch_commitment: *state.epoch_commitment(),
        wraps: Vec::new(),
        prev_epoch_seal: Vec::new(),
    }
}

/// The unsigned next entry advancing the epoch with a plausible commitment and seal.
pub fn next_advancing(log: &MembershipLog, action: Action, wraps: Vec<Wrap>) -> UnsignedEntry {
    let mut entry = next(log, action);
    entry.epoch += 1;
    entry.epoch_commitment = KeyCommitment::from_bytes([0x33; 32]);
    entry.wraps = sorted(wraps);
    entry.prev_epoch_seal = vec![0x44; coffre_crypto::membership::entry::EPOCH_SEAL_LEN];
    entry
}
