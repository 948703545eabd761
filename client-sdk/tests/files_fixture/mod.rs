//! Fixtures for the tree_*, files_* and history_* tests: a space with two writers (alice and bob,
//! one device each) on an in-memory gateway, and deterministic pseudo-random data.
#![allow(dead_code)]
// Fixtures: a panic here is a failed test.
#![allow(clippy::unwrap_used)]

use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash, DeviceSigner,
};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::keys::{EncSecret, SigningSecret, SpaceId};
use coffre_crypto::membership::{MembershipLog, Role};
use coffre_sdk::history::{History, MemoryPins, SpaceContext};
use coffre_sdk::memory_remote::MemoryRemote;
use coffre_sdk::remote::{AppendOutcome, Remote};

pub struct Person {
    pub secret: IdentitySecret,
    pub identity: Identity,
    pub signer: DeviceSigner,
    pub pins: MemoryPins,
}

pub fn person(handle: &str, seed: u8) -> Person {
    let secret = IdentitySecret::from_parts(
        SigningSecret::from_seed(&[seed; 32]),
        EncSecret::from_bytes([seed.wrapping_add(1); 32]),
    );
    let device = SigningSecret::from_seed(&[seed.wrapping_add(2); 32]);
    let identity = secret
        .certify(&Handle::parse(handle).unwrap(), 1_700_000_000_000)
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
    Person {
        secret,
        identity,
        signer: DeviceSigner::new(certificate, device).unwrap(),
        pins: MemoryPins::default(),
    }
}

pub struct World {
    pub remote: MemoryRemote,
    pub space: SpaceId,
    pub log: MembershipLog,
    pub alice: Person,
    pub bob: Person,
}

pub async fn world() -> World {
    let alice = person("alice", 10);
    let bob = person("bob", 20);
    let (mut log, _) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [7; 16]).unwrap();
    let add = log
        .add(&alice.secret, &alice.signer, 0, &bob.identity, Role::Writer)
        .unwrap();
    log.append(&add).unwrap();
    let remote = MemoryRemote::new();
    let space = remote
        .create_space(log.entries()[0].encoded().to_vec())
        .await
        .unwrap();
    assert_eq!(&space, log.space_id());
    for entry in &log.entries()[1..] {
        let outcome = remote
            .append_membership(&space, entry.encoded().to_vec())
            .await
            .unwrap();
        assert_eq!(outcome, AppendOutcome::Appended);
    }
    World {
        remote,
        space,
        log,
        alice,
        bob,
    }
}

impl World {
    /// The chunker seed of the space at its current epoch, derived as the SDK derives it (for
    /// tests that predict chunk boundaries).
    pub fn chunker_seed(&self, who: &Person) -> coffre_crypto::chunker::ChunkerSeed {
        let epoch = self.log.state().epoch();
        let key = self.history(who).epoch_key(epoch).unwrap();
        coffre_crypto::chunker::ChunkerSeed::derive(&self.space, epoch, &key)
    }

    pub fn history<'a>(&'a self, who: &'a Person) -> History<'a, MemoryRemote> {
        History::new(SpaceContext {
            remote: &self.remote,
            space_id: self.space,
            log: &self.log,
            identity: &who.secret,
            signer: &who.signer,
            pins: &who.pins,
        })
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
pub fn data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn path(text: &str) -> coffre_sdk::tree::SpacePath {
    coffre_sdk::tree::SpacePath::parse(text).unwrap()
}
