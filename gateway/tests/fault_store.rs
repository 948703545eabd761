//! Fault injection below the API: a `MetaStore`/`BlobStore` wrapper that fails the Nth store
//! operation (an I/O error), either before doing it or after doing it (the operation took effect
//! but reported an error, like a failed fsync), driven through `api::dispatch` over the memory
//! stores. For every N over all the operations of a blob upload and of a commit append:
//!
//! - a request during which an operation failed never gets a 2xx;
//! - the store stays consistent: `check_stores(.., true)` is clean, or shows only what a crash
//!   leaves and `check::recover` repairs at the next start (an unindexed body, over-reserved
//!   quota), and is clean after recovery; never a missing, short or wrong body or a bad log;
//! - the client's retry then succeeds and the data reads back intact.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use coffre_crypto::commit::{Commit, CommitRoot, LogHead};
use coffre_crypto::envelope::{self, BlobKind, BlobRef};
use coffre_crypto::keys::{BlobId, BlobKey, SpaceId};
use coffre_crypto::membership::MembershipLog;
use coffre_gateway::Config;
use coffre_gateway::app::App;
use coffre_gateway::check::{Problem, check_stores, recover};
use coffre_gateway::store::memory::{MemoryBlobs, MemoryMeta};
use coffre_gateway::store::{
    AccountRecord, BlobMeta, BlobReader, BlobStore, BlobWriter, ChallengeRecord, InboxRecord,
    MemberRecord, MetaStore, SpaceRecord, Stores, TokenRecord,
};
use coffre_gateway::{Error, Result};
use common::{TestApp, User, b64};
use http::{Method, StatusCode};
use serde_json::{Value, json};

/// Bound on the operations of one request (the loops stop at the first N that does not fire).
const MAX_OPS: u64 = 500;

#[derive(Default)]
struct Faults {
    /// Operations counted since `arm`.
    count: AtomicU64,
    /// The operation to fail (1-based); 0 = none.
    fail_at: AtomicU64,
    /// Fail after doing the operation (it took effect) rather than before.
    after: AtomicBool,
    /// Count only blob commits (a failing fsync at the end of a blob write).
    commits_only: AtomicBool,
    fired: AtomicBool,
}

impl Faults {
    fn arm(&self, fail_at: u64, after: bool, commits_only: bool) {
        self.count.store(0, Ordering::SeqCst);
        self.fired.store(false, Ordering::SeqCst);
        self.after.store(after, Ordering::SeqCst);
        self.commits_only.store(commits_only, Ordering::SeqCst);
        self.fail_at.store(fail_at, Ordering::SeqCst);
    }

    fn disarm(&self) -> bool {
        self.fail_at.store(0, Ordering::SeqCst);
        self.fired.load(Ordering::SeqCst)
    }

    fn run<T>(&self, is_commit: bool, op: impl FnOnce() -> Result<T>) -> Result<T> {
        if self.commits_only.load(Ordering::SeqCst) && !is_commit {
            return op();
        }
        let n = self.count.fetch_add(1, Ordering::SeqCst) + 1;
        if n != self.fail_at.load(Ordering::SeqCst) {
            return op();
        }
        self.fired.store(true, Ordering::SeqCst);
        if self.after.load(Ordering::SeqCst) {
            let _ = op();
        }
        Err(Error::Io(std::io::Error::other("injected fault")))
    }
}

struct FaultMeta {
    inner: Arc<MemoryMeta>,
    faults: Arc<Faults>,
}

impl MetaStore for FaultMeta {
    fn create_account(&self, account: &AccountRecord) -> Result<()> {
        self.faults
            .run(false, || self.inner.create_account(account))
    }
    fn account(&self, handle: &str) -> Result<Option<AccountRecord>> {
        self.faults.run(false, || self.inner.account(handle))
    }
    fn append_device_entry(&self, handle: &str, expected_len: u64, entry: &[u8]) -> Result<()> {
        self.faults.run(false, || {
            self.inner.append_device_entry(handle, expected_len, entry)
        })
    }
    fn reserve_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        self.faults
            .run(false, || self.inner.reserve_quota(handle, bytes))
    }
    fn release_quota(&self, handle: &str, bytes: u64) -> Result<()> {
        self.faults
            .run(false, || self.inner.release_quota(handle, bytes))
    }
    fn put_challenge(&self, challenge: &[u8; 32], record: &ChallengeRecord) -> Result<()> {
        self.faults
            .run(false, || self.inner.put_challenge(challenge, record))
    }
    fn take_challenge(&self, challenge: &[u8; 32]) -> Result<Option<ChallengeRecord>> {
        self.faults
            .run(false, || self.inner.take_challenge(challenge))
    }
    fn put_token(&self, token_hash: &[u8; 32], record: &TokenRecord) -> Result<()> {
        self.faults
            .run(false, || self.inner.put_token(token_hash, record))
    }
    fn token(&self, token_hash: &[u8; 32]) -> Result<Option<TokenRecord>> {
        self.faults.run(false, || self.inner.token(token_hash))
    }
    fn purge_expired(&self, now_ms: u64) -> Result<u64> {
        self.faults.run(false, || self.inner.purge_expired(now_ms))
    }
    fn create_space(
        &self,
        space: &SpaceId,
        genesis: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        self.faults
            .run(false, || self.inner.create_space(space, genesis, members))
    }
    fn space(&self, space: &SpaceId) -> Result<Option<SpaceRecord>> {
        self.faults.run(false, || self.inner.space(space))
    }
    fn spaces_of(&self, handle: &str) -> Result<Vec<SpaceId>> {
        self.faults.run(false, || self.inner.spaces_of(handle))
    }
    fn membership_entries(
        &self,
        space: &SpaceId,
        from_seq: u64,
        limit: usize,
    ) -> Result<Vec<Vec<u8>>> {
        self.faults.run(false, || {
            self.inner.membership_entries(space, from_seq, limit)
        })
    }
    fn append_membership(
        &self,
        space: &SpaceId,
        expected_len: u64,
        expected_head_seq: u64,
        entry: &[u8],
        members: &[MemberRecord],
    ) -> Result<()> {
        self.faults.run(false, || {
            self.inner
                .append_membership(space, expected_len, expected_head_seq, entry, members)
        })
    }
    fn commits(&self, space: &SpaceId, after_seq: u64, limit: usize) -> Result<Vec<Vec<u8>>> {
        self.faults
            .run(false, || self.inner.commits(space, after_seq, limit))
    }
    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        expected_membership_len: u64,
        commit: &[u8],
    ) -> Result<()> {
        self.faults.run(false, || {
            self.inner
                .append_commit(space, seq, expected_membership_len, commit)
        })
    }
    fn blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        self.faults.run(false, || self.inner.blob_meta(space, blob))
    }
    fn put_blob_meta(&self, space: &SpaceId, blob: &BlobId, meta: &BlobMeta) -> Result<bool> {
        self.faults
            .run(false, || self.inner.put_blob_meta(space, blob, meta))
    }
    fn claim_blobs(&self, space: &SpaceId, blobs: &[BlobId], now_ms: u64) -> Result<Vec<bool>> {
        self.faults
            .run(false, || self.inner.claim_blobs(space, blobs, now_ms))
    }
    fn delete_blob_meta(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobMeta>> {
        self.faults
            .run(false, || self.inner.delete_blob_meta(space, blob))
    }
    fn list_blob_meta(
        &self,
        space: &SpaceId,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<Vec<(BlobId, BlobMeta)>> {
        self.faults
            .run(false, || self.inner.list_blob_meta(space, after, limit))
    }
    fn for_each_blob_meta(
        &self,
        visit: &mut dyn FnMut(&SpaceId, &BlobId, &BlobMeta) -> Result<()>,
    ) -> Result<()> {
        self.faults
            .run(false, || self.inner.for_each_blob_meta(visit))
    }
    fn for_each_account(&self, visit: &mut dyn FnMut(&AccountRecord) -> Result<()>) -> Result<()> {
        self.faults
            .run(false, || self.inner.for_each_account(visit))
    }
    fn for_each_space(&self, visit: &mut dyn FnMut(&SpaceRecord) -> Result<()>) -> Result<()> {
        self.faults.run(false, || self.inner.for_each_space(visit))
    }
    fn push_invitation(
        &self,
        to: &str,
        from: &str,
        invitation: &[u8],
        received_ms: u64,
        max_pending: usize,
    ) -> Result<u64> {
        self.faults.run(false, || {
            self.inner
                .push_invitation(to, from, invitation, received_ms, max_pending)
        })
    }
    fn invitations(&self, handle: &str) -> Result<Vec<InboxRecord>> {
        self.faults.run(false, || self.inner.invitations(handle))
    }
    fn delete_invitation(&self, handle: &str, id: u64) -> Result<bool> {
        self.faults
            .run(false, || self.inner.delete_invitation(handle, id))
    }
}

struct FaultBlobs {
    inner: Arc<MemoryBlobs>,
    faults: Arc<Faults>,
}

struct FaultWriter {
    inner: Box<dyn BlobWriter>,
    faults: Arc<Faults>,
}

impl BlobWriter for FaultWriter {
    fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let inner = &mut self.inner;
        self.faults.run(false, || inner.write(bytes))
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let FaultWriter { inner, faults } = *self;
        faults.run(true, || inner.commit())
    }
}

impl BlobStore for FaultBlobs {
    fn begin(&self, space: &SpaceId, blob: &BlobId) -> Result<Box<dyn BlobWriter>> {
        let inner = self.faults.run(false, || self.inner.begin(space, blob))?;
        Ok(Box::new(FaultWriter {
            inner,
            faults: Arc::clone(&self.faults),
        }))
    }
    fn open(&self, space: &SpaceId, blob: &BlobId) -> Result<Option<BlobReader>> {
        self.faults.run(false, || self.inner.open(space, blob))
    }
    fn contains(&self, space: &SpaceId, blob: &BlobId) -> Result<bool> {
        self.faults.run(false, || self.inner.contains(space, blob))
    }
    fn delete(&self, space: &SpaceId, blob: &BlobId) -> Result<()> {
        self.faults.run(false, || self.inner.delete(space, blob))
    }
    fn for_each(&self, visit: &mut dyn FnMut(&SpaceId, &BlobId, u64) -> Result<()>) -> Result<()> {
        self.faults.run(false, || self.inner.for_each(visit))
    }
    fn disk_bytes(&self) -> Result<u64> {
        self.faults.run(false, || self.inner.disk_bytes())
    }
}

/// A world over fault-injecting memory stores: Alice owns a space (genesis + rotate).
struct World {
    t: TestApp,
    faults: Arc<Faults>,
    /// The memory stores without the wrapper, for `check`.
    stores: Stores,
    alice: User,
    token: String,
    log: MembershipLog,
    key: coffre_crypto::keys::EpochKey,
    space: String,
}

async fn world() -> World {
    let faults = Arc::new(Faults::default());
    let meta = Arc::new(MemoryMeta::new());
    let blobs = Arc::new(MemoryBlobs::new());
    let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
    let reading = Arc::clone(&clock);
    let app = App::with_clock(
        Config::default(),
        Arc::new(FaultMeta {
            inner: Arc::clone(&meta),
            faults: Arc::clone(&faults),
        }),
        Arc::new(FaultBlobs {
            inner: Arc::clone(&blobs),
            faults: Arc::clone(&faults),
        }),
        Arc::new(move || reading.load(Ordering::SeqCst)),
    );
    let stores = Stores {
        meta: meta.clone(),
        blobs: blobs.clone(),
    };
    let t = TestApp {
        app: Arc::new(app),
        clock,
        meta,
        blobs,
    };
    let alice = User::new("alice");
    let token = t.onboard(&alice).await;
    let (log, key) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [9; 16]).unwrap();
    let (status, body) = t
        .json(
            Method::POST,
            "/v1/spaces",
            Some(&token),
            json!({"genesis": b64(log.entries()[0].encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let space = body["space_id"].as_str().unwrap().to_owned();
    let (status, body) = t
        .json(
            Method::POST,
            &format!("/v1/spaces/{space}/members"),
            Some(&token),
            json!({"entry": b64(log.entries()[1].encoded())}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    World {
        t,
        faults,
        stores,
        alice,
        token,
        log,
        key,
        space,
    }
}

impl World {
    async fn put_blob(&self, id: &str, body: &[u8]) -> StatusCode {
        let path = format!("/v1/spaces/{}/blobs/{id}", self.space);
        let (status, _, _) = self
            .t
            .send(
                Method::PUT,
                &path,
                Some(&self.token),
                Some("application/octet-stream"),
                body.to_vec(),
            )
            .await;
        status
    }

    async fn get_blob(&self, id: &str) -> (StatusCode, Vec<u8>) {
        let path = format!("/v1/spaces/{}/blobs/{id}", self.space);
        let (status, _, body) = self
            .t
            .send(Method::GET, &path, Some(&self.token), None, Vec::new())
            .await;
        (status, body.to_vec())
    }

    async fn put_head(&self, commit: &Commit) -> (StatusCode, Value) {
        let path = format!("/v1/spaces/{}/heads/{}", self.space, commit.seq());
        self.t
            .json(
                Method::PUT,
                &path,
                Some(&self.token),
                json!({"commit": b64(commit.encoded())}),
            )
            .await
    }

    async fn head_seq(&self) -> u64 {
        let path = format!("/v1/spaces/{}/heads", self.space);
        let (status, body) = self
            .t
            .json(Method::GET, &path, Some(&self.token), Value::Null)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body["head_seq"].as_u64().unwrap()
    }

    /// The store is clean, or shows only what a crash also leaves and `recover` repairs at the
    /// next start (an unindexed body, quota reserved above the blobs), and is clean after it.
    fn assert_consistent(&self, what: &str) {
        let report = check_stores(&self.stores, true);
        if report.is_clean() {
            return;
        }
        // Even a fault before the operation can leave these: the body is committed and then
        // the index insert fails (deleting the body then would race with a concurrent upload
        // of the same id), or releasing a reservation fails (logged, not answered).
        for problem in &report.problems {
            let repairable = match problem {
                Problem::OrphanBody { .. } => true,
                // Above: a reservation whose release failed. Below: an index insert that took
                // effect but failed, whose reservation was then given back.
                Problem::Quota { .. } => true,
                _ => false,
            };
            assert!(repairable, "{what}: {problem}");
        }
        recover(&self.stores).unwrap();
        let report = check_stores(&self.stores, true);
        assert!(
            report.is_clean(),
            "{what}: after recovery {:?}",
            report.problems
        );
    }
}

fn sealed(n: u64) -> (String, Vec<u8>) {
    let content = format!("chunk {n} ").repeat(5000);
    let key = BlobKey::from_bytes(*blake3::hash(&n.to_le_bytes()).as_bytes());
    let blob = envelope::seal(&key, BlobKind::Chunk, content.as_bytes()).unwrap();
    (blob.id().to_hex(), blob.into_bytes())
}

/// Runs `upload` under a fault at every operation N in turn; returns how many Ns fired.
async fn blob_upload_under_faults(after: bool, commits_only: bool) -> u64 {
    let w = world().await;
    let mut fired_count = 0;
    for n in 1..=MAX_OPS {
        let (id, body) =
            sealed(n + if after { 1000 } else { 0 } + if commits_only { 2000 } else { 0 });
        let what =
            format!("blob upload, fault at op {n} (after: {after}, commits only: {commits_only})");
        w.faults.arm(n, after, commits_only);
        let status = w.put_blob(&id, &body).await;
        let fired = w.faults.disarm();
        if !fired {
            assert_eq!(status, StatusCode::CREATED, "{what}: no fault fired");
            assert!(
                n > 1 || commits_only,
                "the upload performs store operations"
            );
            assert_eq!(w.get_blob(&id).await, (StatusCode::OK, body));
            w.assert_consistent(&what);
            break;
        }
        fired_count += 1;
        assert!(!status.is_success(), "{what}: answered {status}");
        w.assert_consistent(&what);
        // The client retries; it succeeds (201, or 200 if the failed attempt had stored it).
        let retry = w.put_blob(&id, &body).await;
        assert!(
            retry == StatusCode::CREATED || retry == StatusCode::OK,
            "{what}: retry answered {retry}"
        );
        assert_eq!(w.get_blob(&id).await, (StatusCode::OK, body), "{what}");
        w.assert_consistent(&what);
        if commits_only {
            break;
        }
    }
    assert!(fired_count > 0);
    fired_count
}

#[tokio::test]
async fn a_failing_store_operation_never_acknowledges_a_blob_upload() {
    let before = blob_upload_under_faults(false, false).await;
    let after = blob_upload_under_faults(true, false).await;
    let commit = blob_upload_under_faults(false, true).await;
    let commit_after = blob_upload_under_faults(true, true).await;
    eprintln!(
        "fault store, blob upload: {before} operations failed before, {after} after, \
         commit (fsync) failed {commit} before + {commit_after} after: no 2xx, store consistent"
    );
}

fn root(message: &str) -> CommitRoot {
    CommitRoot {
        root: BlobRef {
            id: BlobId::from_bytes([1; 32]),
            key: BlobKey::from_bytes([2; 32]),
        },
        time_ms: 5,
        message: message.into(),
    }
}

async fn commit_append_under_faults(after: bool) -> u64 {
    let w = world().await;
    let mut parent: Option<Commit> = None;
    let mut fired_count = 0;
    for n in 1..=MAX_OPS {
        let commit = Commit::next(
            &w.log,
            parent.as_ref(),
            &w.key,
            LogHead::NONE,
            &root(&format!("c{n}")),
            &w.alice.signer,
        )
        .unwrap();
        let what = format!(
            "commit {} append, fault at op {n} (after: {after})",
            commit.seq()
        );
        let before_seq = w.head_seq().await;
        w.faults.arm(n, after, false);
        let (status, body) = w.put_head(&commit).await;
        let fired = w.faults.disarm();
        if !fired {
            assert_eq!(status, StatusCode::CREATED, "{what}: {body}");
            assert_eq!(w.head_seq().await, commit.seq());
            w.assert_consistent(&what);
            break;
        }
        fired_count += 1;
        assert!(!status.is_success(), "{what}: answered {status} {body}");
        let now = w.head_seq().await;
        if after {
            // The append may have taken effect before the error: the head is then this commit.
            assert!(
                now == before_seq || now == commit.seq(),
                "{what}: head {now}"
            );
        } else {
            assert_eq!(now, before_seq, "{what}: a failed append moved the head");
        }
        w.assert_consistent(&what);
        if now == before_seq {
            // The client retries the same commit; it is stored.
            let (status, body) = w.put_head(&commit).await;
            assert_eq!(status, StatusCode::CREATED, "{what}: retry {body}");
        } else {
            // The client re-reads the head: it is exactly its commit.
            let path = format!("/v1/spaces/{}/heads?since={before_seq}", w.space);
            let (_, body) =
                w.t.json(Method::GET, &path, Some(&w.token), Value::Null)
                    .await;
            assert_eq!(body["commits"], json!([b64(commit.encoded())]), "{what}");
        }
        assert_eq!(w.head_seq().await, commit.seq());
        w.assert_consistent(&what);
        parent = Some(commit);
    }
    assert!(fired_count > 0);
    fired_count
}

#[tokio::test]
async fn a_failing_store_operation_never_acknowledges_a_commit() {
    let before = commit_append_under_faults(false).await;
    let after = commit_append_under_faults(true).await;
    eprintln!(
        "fault store, commit append: {before} operations failed before, {after} after: \
         no 2xx, head unchanged or exactly the commit, store consistent"
    );
}
