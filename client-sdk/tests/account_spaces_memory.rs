//! Spaces over the in-memory gateway: create, list, open, and rollback / fork / foreign-log
//! detection against the pinned membership log.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceChain, DeviceEntry, DeviceEntryHash,
};
use coffre_crypto::identity::{Handle, IdentitySecret};
use coffre_crypto::keys::{BlobId, SigningSecret, SpaceId};
use coffre_crypto::passphrase::{Argon2Params, Passphrase};
use coffre_protocol::types::SpaceSummary;
use coffre_sdk::Error;
use coffre_sdk::keystore::{Keystore, Unlocked};
use coffre_sdk::memory_remote::MemoryRemote;
use coffre_sdk::remote::{AppendOutcome, Remote};
use coffre_sdk::spaces;
use coffre_sdk::state::State;

/// A shared in-memory gateway that can serve a truncated membership log (a rollback) or the
/// log of another space.
#[derive(Clone, Default)]
struct Gateway {
    inner: Arc<MemoryRemote>,
    /// Serve at most this many membership entries (`u64::MAX`: all).
    serve_len: Arc<AtomicU64>,
    /// Serve this space's log instead (`None`: the asked one).
    substitute: Arc<std::sync::Mutex<Option<SpaceId>>>,
}

impl Gateway {
    fn new() -> Self {
        let gateway = Gateway::default();
        gateway.serve_len.store(u64::MAX, Ordering::SeqCst);
        gateway
    }
}

impl Remote for Gateway {
    async fn put_blob(&self, s: &SpaceId, id: &BlobId, e: Vec<u8>) -> coffre_sdk::Result<()> {
        self.inner.put_blob(s, id, e).await
    }
    async fn get_blob(&self, s: &SpaceId, id: &BlobId) -> coffre_sdk::Result<Vec<u8>> {
        self.inner.get_blob(s, id).await
    }
    async fn missing_blobs(&self, s: &SpaceId, ids: &[BlobId]) -> coffre_sdk::Result<Vec<BlobId>> {
        self.inner.missing_blobs(s, ids).await
    }
    async fn put_blobs(&self, s: &SpaceId, b: Vec<(BlobId, Vec<u8>)>) -> coffre_sdk::Result<()> {
        self.inner.put_blobs(s, b).await
    }
    async fn get_blobs(
        &self,
        s: &SpaceId,
        ids: &[BlobId],
    ) -> coffre_sdk::Result<Vec<(BlobId, Vec<u8>)>> {
        self.inner.get_blobs(s, ids).await
    }
    async fn create_space(&self, genesis: Vec<u8>) -> coffre_sdk::Result<SpaceId> {
        self.inner.create_space(genesis).await
    }
    async fn list_spaces(&self) -> coffre_sdk::Result<Vec<SpaceSummary>> {
        self.inner.list_spaces().await
    }
    async fn membership(&self, s: &SpaceId, since: u64) -> coffre_sdk::Result<Vec<Vec<u8>>> {
        let asked = self.substitute.lock().unwrap().unwrap_or(*s);
        let mut entries = self.inner.membership(&asked, since).await?;
        let keep = self.serve_len.load(Ordering::SeqCst).saturating_sub(since);
        entries.truncate(usize::try_from(keep).unwrap_or(usize::MAX));
        Ok(entries)
    }
    async fn append_membership(
        &self,
        s: &SpaceId,
        e: Vec<u8>,
    ) -> coffre_sdk::Result<AppendOutcome> {
        self.inner.append_membership(s, e).await
    }
    async fn commits(&self, s: &SpaceId, since: u64) -> coffre_sdk::Result<(Vec<Vec<u8>>, u64)> {
        self.inner.commits(s, since).await
    }
    async fn append_commit(
        &self,
        s: &SpaceId,
        seq: u64,
        c: Vec<u8>,
    ) -> coffre_sdk::Result<AppendOutcome> {
        self.inner.append_commit(s, seq, c).await
    }
}

fn account(handle: &str) -> Arc<Unlocked> {
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
    Arc::new(keystore.unlock(&pass).unwrap())
}

#[tokio::test]
async fn account_spaces_create_list_open_and_refresh() {
    let gateway = Gateway::new();
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(State::open(dir.path().join("spaces")));
    let alice = account("alice");
    let space = spaces::create_space(
        gateway.clone(),
        Arc::clone(&state),
        Arc::clone(&alice),
        "Team",
    )
    .await
    .unwrap();
    assert_eq!(space.epoch(), 1);
    assert_eq!(space.name(), Some("Team"));
    assert_eq!(space.role(), Some(coffre_crypto::membership::Role::Owner));
    assert!(!format!("{space:?}").is_empty());
    let pins = state.pins(space.id()).unwrap();
    assert_eq!(pins.membership.unwrap().len, 2);

    let listed = spaces::list_spaces(&gateway, &state, &alice).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, *space.id());
    assert_eq!(listed[0].name.as_deref(), Some("Team"));
    assert_eq!(listed[0].members, 1);

    let mut opened = spaces::open_space(
        gateway.clone(),
        Arc::clone(&state),
        Arc::clone(&alice),
        space.id(),
    )
    .await
    .unwrap();
    assert_eq!(opened.log().entries().len(), 2);
    assert_eq!(opened.epoch(), 1);
    opened.refresh_membership().await.unwrap();
    let context = opened.context();
    assert_eq!(context.space_id, *space.id());

    // Someone who is not a member cannot open it, even though the gateway serves the log.
    let mallory = account("mallory");
    let refused =
        spaces::open_space(gateway.clone(), Arc::clone(&state), mallory, space.id()).await;
    assert!(matches!(refused, Err(Error::Forbidden(_))), "{refused:?}");
}

#[tokio::test]
async fn account_spaces_membership_rollback_and_substitution_are_detected() {
    let gateway = Gateway::new();
    let dir = tempfile::tempdir().unwrap();
    let state = Arc::new(State::open(dir.path().join("spaces")));
    let alice = account("alice");
    let space = spaces::create_space(gateway.clone(), Arc::clone(&state), Arc::clone(&alice), "A")
        .await
        .unwrap();
    let id = *space.id();

    // Rollback: the gateway serves only the genesis entry after the client pinned two entries.
    gateway.serve_len.store(1, Ordering::SeqCst);
    let error = spaces::open_space(gateway.clone(), Arc::clone(&state), Arc::clone(&alice), &id)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Integrity(m) if m.contains("rollback")),
        "{error:?}"
    );
    let error = spaces::list_spaces(&gateway, &state, &alice)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
    // The pin did not move back.
    assert_eq!(state.pins(&id).unwrap().membership.unwrap().len, 2);
    gateway.serve_len.store(u64::MAX, Ordering::SeqCst);

    // Substitution: the log of another space, served for this one.
    let other = spaces::create_space(gateway.clone(), Arc::clone(&state), Arc::clone(&alice), "B")
        .await
        .unwrap();
    *gateway.substitute.lock().unwrap() = Some(*other.id());
    let error = spaces::open_space(gateway.clone(), Arc::clone(&state), Arc::clone(&alice), &id)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Integrity(_)), "{error:?}");
    *gateway.substitute.lock().unwrap() = None;

    // Fork: a fresh device state pinned to another log of the same length is refused. Simulate
    // by editing the local pin to another head hash.
    let fork_dir = tempfile::tempdir().unwrap();
    let forked = Arc::new(State::open(fork_dir.path()));
    let pinned = state.pins(&id).unwrap().membership.unwrap();
    let file = serde_json::json!({
        "membership_len": pinned.len,
        "membership_head": "ab".repeat(32),
    });
    std::fs::write(
        fork_dir.path().join(format!("{}.json", id.to_hex())),
        file.to_string(),
    )
    .unwrap();
    let error = spaces::open_space(gateway.clone(), forked, Arc::clone(&alice), &id)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Integrity(m) if m.contains("fork")),
        "{error:?}"
    );
    // And the honest log still opens with the honest pin.
    spaces::open_space(gateway.clone(), state, alice, &id)
        .await
        .unwrap();
}
