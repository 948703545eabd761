//! What the SDK needs from a gateway, as a trait: the HTTPS client implements it for real, and an
//! in-memory implementation serves unit tests of the file and history logic.
//!
//! Everything behind this trait is **untrusted**: implementations return bytes as the gateway
//! sent them, and callers verify them (blob ids, signatures, chains) before using them.

use std::future::Future;

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_protocol::types::SpaceSummary;

use crate::error::Result;

/// The result of appending a commit with compare-and-swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppendOutcome {
    /// Stored at the asked seq.
    Appended,
    /// Someone else appended first (or the membership log moved on); `head_seq` is the gateway's
    /// current head. Re-read, merge, retry.
    Conflict {
        /// The gateway's current head seq.
        head_seq: u64,
    },
}

/// Access to one gateway, authenticated as one device.
pub trait Remote: Send + Sync {
    /// Stores an envelope under its id (idempotent: an existing blob is fine).
    fn put_blob(
        &self,
        space: &SpaceId,
        id: &BlobId,
        envelope: Vec<u8>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Fetches an envelope. The caller checks `H(bytes) == id`.
    fn get_blob(
        &self,
        space: &SpaceId,
        id: &BlobId,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send;
    /// Stores several envelopes in one request (idempotent: existing blobs are fine); returns
    /// once the gateway has made all of them durable. The caller keeps the batch within the
    /// limits of [`coffre_protocol::batch`] (count, bytes) and sends no id twice.
    fn put_blobs(
        &self,
        space: &SpaceId,
        blobs: Vec<(BlobId, Vec<u8>)>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Fetches several envelopes in one request: a non-empty prefix of `ids` (the gateway
    /// bounds the answer's size), in the order asked, each paired with its id. The
    /// implementation checks the framing and the ids; the caller checks `H(bytes) == id`.
    /// `ids` is non-empty, holds no id twice and at most
    /// [`coffre_protocol::batch::MAX_BLOBS_PER_BATCH`] ids.
    fn get_blobs(
        &self,
        space: &SpaceId,
        ids: &[BlobId],
    ) -> impl Future<Output = Result<Vec<(BlobId, Vec<u8>)>>> + Send;
    /// Which of `ids` the gateway does not have (the caller splits into batches of at most
    /// `coffre_protocol::MAX_IDS_PER_REQUEST`).
    fn missing_blobs(
        &self,
        space: &SpaceId,
        ids: &[BlobId],
    ) -> impl Future<Output = Result<Vec<BlobId>>> + Send;
    /// Creates a space from its signed genesis entry; returns the id the gateway computed.
    fn create_space(&self, genesis: Vec<u8>) -> impl Future<Output = Result<SpaceId>> + Send;
    /// The spaces this account belongs to, as the gateway claims.
    fn list_spaces(&self) -> impl Future<Output = Result<Vec<SpaceSummary>>> + Send;
    /// Membership entries with `seq >= since`.
    fn membership(
        &self,
        space: &SpaceId,
        since: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>>> + Send;
    /// Appends a signed membership entry. `Conflict` if the log or the head moved on.
    fn append_membership(
        &self,
        space: &SpaceId,
        entry: Vec<u8>,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send;
    /// Commits with `seq > since`, and the gateway's head seq.
    fn commits(
        &self,
        space: &SpaceId,
        since: u64,
    ) -> impl Future<Output = Result<(Vec<Vec<u8>>, u64)>> + Send;
    /// Appends commit `seq` with compare-and-swap.
    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        commit: Vec<u8>,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send;
}

/// A shared gateway handle: several spaces or devices in one process (tests, apps with one
/// connection pool) use one remote.
impl<T: Remote> Remote for std::sync::Arc<T> {
    fn put_blob(
        &self,
        space: &SpaceId,
        id: &BlobId,
        envelope: Vec<u8>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).put_blob(space, id, envelope)
    }
    fn get_blob(
        &self,
        space: &SpaceId,
        id: &BlobId,
    ) -> impl Future<Output = Result<Vec<u8>>> + Send {
        (**self).get_blob(space, id)
    }
    fn put_blobs(
        &self,
        space: &SpaceId,
        blobs: Vec<(BlobId, Vec<u8>)>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).put_blobs(space, blobs)
    }
    fn get_blobs(
        &self,
        space: &SpaceId,
        ids: &[BlobId],
    ) -> impl Future<Output = Result<Vec<(BlobId, Vec<u8>)>>> + Send {
        (**self).get_blobs(space, ids)
    }
    fn missing_blobs(
        &self,
        space: &SpaceId,
        ids: &[BlobId],
    ) -> impl Future<Output = Result<Vec<BlobId>>> + Send {
        (**self).missing_blobs(space, ids)
    }
    fn create_space(&self, genesis: Vec<u8>) -> impl Future<Output = Result<SpaceId>> + Send {
        (**self).create_space(genesis)
    }
    fn list_spaces(&self) -> impl Future<Output = Result<Vec<SpaceSummary>>> + Send {
        (**self).list_spaces()
    }
    fn membership(
        &self,
        space: &SpaceId,
        since: u64,
    ) -> impl Future<Output = Result<Vec<Vec<u8>>>> + Send {
        (**self).membership(space, since)
    }
    fn append_membership(
        &self,
        space: &SpaceId,
        entry: Vec<u8>,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send {
        (**self).append_membership(space, entry)
    }
    fn commits(
        &self,
        space: &SpaceId,
        since: u64,
    ) -> impl Future<Output = Result<(Vec<Vec<u8>>, u64)>> + Send {
        (**self).commits(space, since)
    }
    fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        commit: Vec<u8>,
    ) -> impl Future<Output = Result<AppendOutcome>> + Send {
        (**self).append_commit(space, seq, commit)
    }
}
