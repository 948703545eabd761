//! Membership changes over the in-memory gateway (which, unlike the real one, verifies no
//! signature and enforces no role): what the SDK itself refuses and detects, whatever the gateway
//! does. Add, re-role, remove with key rotation, leave; a reader or a removed member cannot
//! commit (refused before any upload); a commit signed by a reader and a membership entry signed
//! by a non-admin are integrity errors for every other client.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use coffre_crypto::commit::{Commit, CommitHeader, CommitRoot, LogHead};
use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceChain, DeviceEntry, DeviceEntryHash,
};
use coffre_crypto::identity::{Handle, IdentitySecret};
use coffre_crypto::keys::SigningSecret;
use coffre_crypto::membership::{Action, Role, UnsignedEntry};
use coffre_crypto::passphrase::{Argon2Params, Passphrase};
use coffre_sdk::Error;
use coffre_sdk::history::History;
use coffre_sdk::keystore::{Keystore, Unlocked};
use coffre_sdk::memory_remote::MemoryRemote;
use coffre_sdk::progress::NoProgress;
use coffre_sdk::remote::Remote;
use coffre_sdk::spaces::{self, Space};
use coffre_sdk::state::State;
use coffre_sdk::tree::SpacePath;

type Gateway = Arc<MemoryRemote>;

/// One person on one device: keys and local state.
struct Person {
    session: Arc<Unlocked>,
    state: Arc<State>,
    _dir: tempfile::TempDir,
}

fn person(handle: &str) -> Person {
    let secret = IdentitySecret::generate().unwrap();
    let identity = secret.certify(&Handle::parse(handle).unwrap(), 1).unwrap();
    let device = SigningSecret::generate().unwrap();
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device.public_key(),
        1,
    )
    .unwrap();
    let chain = DeviceChain::verify(identity.sign_key(), std::slice::from_ref(&entry)).unwrap();
    let certificate = DeviceCertificate::try_from(entry).unwrap();
    let pass = Passphrase::new("pw".to_owned());
    let keystore = Keystore::create(
        &identity,
        &secret,
        &device,
        &certificate,
        &chain,
        &pass,
        Argon2Params::MIN,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    Person {
        session: Arc::new(keystore.unlock(&pass).unwrap()),
        state: Arc::new(State::open(dir.path().join("spaces"))),
        _dir: dir,
    }
}

impl Person {
    async fn open(&self, gateway: &Gateway, space: &Space<Gateway>) -> Space<Gateway> {
        spaces::open_space(
            Arc::clone(gateway),
            Arc::clone(&self.state),
            Arc::clone(&self.session),
            space.id(),
        )
        .await
        .unwrap()
    }
}

fn p(text: &str) -> SpacePath {
    SpacePath::parse(text).unwrap()
}

async fn put_text(space: &Space<Gateway>, path: &str, text: &str) -> coffre_sdk::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("file");
    std::fs::write(&local, text).unwrap();
    space.put(&local, &p(path), &NoProgress).await.map(|_| ())
}

async fn setup() -> (Gateway, Person, Person, Person, Space<Gateway>) {
    let gateway: Gateway = Arc::new(MemoryRemote::new());
    let (alice, bob, carol) = (person("alice"), person("bob"), person("carol"));
    let mut space = spaces::create_space(
        Arc::clone(&gateway),
        Arc::clone(&alice.state),
        Arc::clone(&alice.session),
        "Team",
    )
    .await
    .unwrap();
    put_text(&space, "/plan.txt", "v1").await.unwrap();
    space
        .add_member(bob.session.identity(), Role::Writer)
        .await
        .unwrap();
    space
        .add_member(carol.session.identity(), Role::Reader)
        .await
        .unwrap();
    (gateway, alice, bob, carol, space)
}

#[tokio::test]
async fn members_roles_removal_with_rotation_and_leaving() {
    let (gateway, alice, bob, carol, mut space) = setup().await;
    let members = space.members();
    let roles: Vec<(String, Role, bool)> = members
        .iter()
        .map(|m| (m.identity.handle().to_string(), m.role, m.is_me))
        .collect();
    assert_eq!(
        roles,
        [
            ("alice".to_owned(), Role::Owner, true),
            ("bob".to_owned(), Role::Writer, false),
            ("carol".to_owned(), Role::Reader, false),
        ]
    );
    // Adding twice is refused; a writer cannot manage members.
    let again = space.add_member(bob.session.identity(), Role::Reader).await;
    assert!(matches!(again, Err(Error::AlreadyExists(_))), "{again:?}");
    let mut bobs = bob.open(&gateway, &space).await;
    let refused = bobs.set_role("carol", Role::Writer).await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let refused = bobs.remove_member("carol").await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");

    // bob writes; carol (reader) is refused by the SDK before any upload.
    put_text(&bobs, "/bob.txt", "from bob").await.unwrap();
    let carols = carol.open(&gateway, &space).await;
    gateway.reset_stats();
    let refused = put_text(&carols, "/carol.txt", "from carol").await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let refused = carols.mkdir(&p("/carol"), false).await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let stats = gateway.stats();
    assert_eq!(stats.put_blob_calls + stats.put_batch_calls, 0, "{stats:?}");
    assert_eq!(gateway.stats().append_commit_calls, 0);

    // Promoted, carol writes.
    space.set_role("carol", Role::Writer).await.unwrap();
    put_text(&carols, "/carol.txt", "from carol").await.unwrap();

    // Remove bob: the epoch advances, bob's stale handle cannot commit, and nothing written
    // afterwards opens with any key bob ever held.
    let epoch_before = space.epoch();
    space.remove_member("bob").await.unwrap();
    assert_eq!(space.epoch(), epoch_before + 1);
    assert_eq!(space.members().len(), 2);
    gateway.reset_stats();
    let refused = put_text(&bobs, "/bob2.txt", "after removal").await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
    let stats = gateway.stats();
    assert_eq!(stats.put_blob_calls + stats.put_batch_calls, 0, "{stats:?}");
    put_text(&space, "/secret.txt", "written after bob left")
        .await
        .unwrap();

    let history = History::new(space.context());
    let head = history.head().await.unwrap().unwrap();
    assert_eq!(head.epoch(), space.epoch());
    let log = space.log();
    let bob_secret = bob.session.secret();
    let mut bob_keys = Vec::new();
    for epoch in 1..=log.state().epoch() {
        if let Ok(key) = log.epoch_key(epoch, bob_secret) {
            bob_keys.push((epoch, key));
        }
    }
    let bob_epochs: Vec<u64> = bob_keys.iter().map(|(epoch, _)| *epoch).collect();
    assert_eq!(bob_epochs, (1..=epoch_before).collect::<Vec<_>>());
    for (_, key) in &bob_keys {
        assert!(head.open_root(key).is_err());
    }
    // The remaining members still read everything, old and new.
    let log_text = space.history_log().await.unwrap();
    assert!(log_text.len() >= 4);
    let first = history.commit_at(1).await.unwrap();
    history.open_root(&first).unwrap();

    // carol leaves: the epoch rotates again; the last owner cannot leave.
    let carols = carol.open(&gateway, &space).await;
    carols.leave().await.unwrap();
    space.refresh_membership().await.unwrap();
    assert_eq!(space.members().len(), 1);
    assert_eq!(space.epoch(), epoch_before + 2);
    let refused = alice.open(&gateway, &space).await.leave().await;
    assert!(
        matches!(refused, Err(Error::InvalidInput(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn a_commit_signed_by_a_reader_is_rejected_by_the_other_members() {
    let (gateway, _alice, _bob, carol, space) = setup().await;
    let history = History::new(space.context());
    let head = history.head().await.unwrap().unwrap();
    // carol (reader) signs a commit by hand, and the (colluding) gateway stores it.
    let log = space.log();
    let state = log.state();
    let header = CommitHeader {
        space_id: *space.id(),
        seq: head.seq() + 1,
        parent: head.hash(),
        epoch: state.epoch(),
        membership_hash: state.head(),
        log_head: LogHead::NONE,
    };
    let key = log.current_epoch_key(carol.session.secret()).unwrap();
    let root = history.open_root(&head).unwrap();
    let forged = Commit::sign(
        &header,
        &key,
        &CommitRoot {
            root: root.root.duplicate(),
            time_ms: 1,
            message: "forged".into(),
        },
        carol.session.device(),
    )
    .unwrap();
    gateway
        .append_commit(space.id(), forged.seq(), forged.encoded().to_vec())
        .await
        .unwrap();
    let error = space.history_log().await.unwrap_err();
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
}

#[tokio::test]
async fn a_membership_entry_signed_by_a_non_admin_is_rejected() {
    let (gateway, _alice, bob, _carol, space) = setup().await;
    let mallory = person("mallory");
    // bob (writer) signs the add of mallory as admin; the gateway stores it without checking.
    let head = History::new(space.context())
        .head()
        .await
        .unwrap()
        .map_or(0, |c| c.seq());
    let state = space.log().state();
    let injected = UnsignedEntry {
        space_id: *space.id(),
        seq: state.seq() + 1,
        prev_hash: state.head(),
        commit_seq: head,
        epoch: state.epoch(),
        action: Action::Add {
            member: mallory.session.identity().clone(),
            role: Role::Admin,
        },
        epoch_commitment: *state.epoch_commitment(),
        wraps: vec![],
        prev_epoch_seal: vec![],
    }
    .sign(bob.session.device())
    .unwrap();
    gateway
        .append_membership(space.id(), injected.encoded().to_vec())
        .await
        .unwrap();
    let mut space = space;
    let error = space.refresh_membership().await.unwrap_err();
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
    // Nor does mallory get a usable space.
    let error = spaces::open_space(
        Arc::clone(&gateway),
        Arc::clone(&mallory.state),
        Arc::clone(&mallory.session),
        space.id(),
    )
    .await
    .unwrap_err();
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
}
