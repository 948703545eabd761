//! One typed method per gateway endpoint (`docs/API.md`), and the [`Remote`] implementation.
//!
//! Paged reads (membership entries, commits) are followed to the end here, within bounds, so
//! callers get whole answers; whatever the gateway claims about lengths is only used to page and
//! is verified by the callers like everything else.

use bytes::Bytes;
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_protocol::batch::{self, MAX_BATCH_BYTES, MAX_BLOBS_PER_BATCH};
use coffre_protocol::types::{
    AppendCommitRequest, AppendDeviceRequest, AppendMembershipRequest, AppendResponse,
    BatchPutResponse, BlobListResponse, CreateSpaceRequest, CreateSpaceResponse, FetchRequest,
    HeadsResponse, HealthResponse, Id32, InboxResponse, KeyBundlesResponse, MembershipResponse,
    MissingRequest, MissingResponse, OpaqueLoginFinishRequest, OpaqueLoginFinishResponse,
    OpaqueLoginStartRequest, OpaqueLoginStartResponse, OpaqueRegisterRequest,
    OpaqueRegisterResponse, PruneRequest, PruneResponse, RegisterRequest, RegisterResponse,
    SendInvitationRequest, SpaceSummary, SpacesResponse, UserResponse,
};
use coffre_protocol::{MAX_BLOB_BYTES, MAX_IDS_PER_REQUEST, MAX_ITEMS_PER_PAGE};
use http::{Method, StatusCode};

use super::{
    Body, Call, HttpClient, MAX_ERROR_RESPONSE, MAX_JSON_RESPONSE, Refusal, decode_json,
    encode_json,
};
use crate::error::{Error, Result};
use crate::remote::{AppendOutcome, Remote};

/// Most pages followed in one paged read (a hostile gateway cannot keep the client looping).
const MAX_PAGES: usize = 100_000;

/// The gateway's health answer, and the HTTP version the connection negotiated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayHealth {
    /// `"ok"`.
    pub status: String,
    /// The gateway's version.
    pub version: String,
    /// HTTP/2 when the gateway's ALPN offered it, else HTTP/1.1.
    pub http_version: http::Version,
}

fn space_path(space: &SpaceId, rest: &str) -> String {
    format!("/v1/spaces/{}{rest}", space.to_hex())
}

impl HttpClient {
    /// `GET /healthz` (no authentication).
    pub async fn health(&self) -> Result<GatewayHealth> {
        let call = Call {
            method: Method::GET,
            path: "/healthz".to_owned(),
            body: Body::Empty,
            auth: false,
            idempotent: true,
            max_response: MAX_ERROR_RESPONSE,
        };
        let reply = self.call(&call).await?.map_err(Refusal::into_error)?;
        let health: HealthResponse = decode_json(&reply.body)?;
        Ok(GatewayHealth {
            status: health.status,
            version: health.version,
            http_version: reply.version,
        })
    }

    /// `POST /v1/accounts`: registers an account (no authentication, never retried).
    pub async fn register(&self, request: &RegisterRequest) -> Result<RegisterResponse> {
        self.json_unauthenticated("/v1/accounts", request, false)
            .await
    }

    /// `POST /v1/accounts/opaque`: the gateway's OPAQUE registration response for `request`.
    pub async fn opaque_register(&self, handle: &str, request: Vec<u8>) -> Result<Vec<u8>> {
        let answer: OpaqueRegisterResponse = self
            .json_unauthenticated(
                "/v1/accounts/opaque",
                &OpaqueRegisterRequest {
                    handle: handle.to_owned(),
                    request: request.into(),
                },
                true,
            )
            .await?;
        Ok(answer.response.0)
    }

    /// `POST /v1/auth/opaque/start`: the login id and the gateway's OPAQUE credential response.
    pub async fn opaque_login_start(
        &self,
        handle: &str,
        request: Vec<u8>,
    ) -> Result<OpaqueLoginStartResponse> {
        self.json_unauthenticated(
            "/v1/auth/opaque/start",
            &OpaqueLoginStartRequest {
                handle: handle.to_owned(),
                request: request.into(),
            },
            false,
        )
        .await
    }

    /// `POST /v1/auth/opaque/finish`: an enrollment token, the key bundles, the identity and
    /// device chain — or [`Error::Auth`].
    pub async fn opaque_login_finish(
        &self,
        login_id: Vec<u8>,
        finalization: Vec<u8>,
    ) -> Result<OpaqueLoginFinishResponse> {
        self.json_unauthenticated(
            "/v1/auth/opaque/finish",
            &OpaqueLoginFinishRequest {
                login_id: login_id.into(),
                finalization: finalization.into(),
            },
            false,
        )
        .await
    }

    /// `POST /v1/account/devices` with an enrollment token from a passphrase login: certifies a
    /// new device.
    pub async fn enroll_device(&self, enrollment_token: &str, entry: Vec<u8>) -> Result<()> {
        let mut bearer = http::HeaderValue::try_from(format!("Bearer {enrollment_token}"))
            .map_err(|_| Error::Protocol("the gateway issued an unusable token".to_owned()))?;
        bearer.set_sensitive(true);
        let call = Call {
            method: Method::POST,
            path: "/v1/account/devices".to_owned(),
            body: Body::Json(encode_json(&AppendDeviceRequest {
                entry: entry.into(),
            })?),
            auth: true,
            idempotent: false,
            max_response: MAX_JSON_RESPONSE,
        };
        let reply = self
            .send_with_retries(&call, Some(bearer))
            .await?
            .map_err(Refusal::into_error)?;
        let _: AppendResponse = decode_json(&reply.body)?;
        Ok(())
    }

    /// `GET /v1/account/key-bundles`: the sealed key bundles stored at registration.
    pub async fn key_bundles(&self) -> Result<Vec<Vec<u8>>> {
        let answer: KeyBundlesResponse =
            self.get_json("/v1/account/key-bundles".to_owned()).await?;
        Ok(answer.key_bundles.into_iter().map(|b| b.0).collect())
    }

    /// `POST /v1/account/devices`: appends to the caller's device chain. `Conflict` carries the
    /// gateway's chain length.
    pub async fn append_device(&self, entry: Vec<u8>) -> Result<AppendOutcome> {
        let request = AppendDeviceRequest {
            entry: entry.into(),
        };
        self.append("/v1/account/devices".to_owned(), Method::POST, &request)
            .await
    }

    /// `GET /v1/users/{handle}`: a user's identity and device chain, unverified.
    pub async fn user(&self, handle: &str) -> Result<UserResponse> {
        let handle = coffre_crypto::identity::Handle::parse(handle)?;
        self.get_json(format!("/v1/users/{handle}")).await
    }

    /// `GET /v1/spaces`: the spaces the gateway says this account belongs to (a hint only).
    pub async fn spaces(&self) -> Result<Vec<SpaceSummary>> {
        let answer: SpacesResponse = self.get_json("/v1/spaces".to_owned()).await?;
        Ok(answer.spaces)
    }

    /// `POST /v1/spaces`: creates a space from its signed genesis entry.
    pub async fn create_space_raw(&self, genesis: Vec<u8>) -> Result<SpaceId> {
        let request = CreateSpaceRequest {
            genesis: genesis.into(),
        };
        let answer: CreateSpaceResponse = self
            .json(Method::POST, "/v1/spaces".to_owned(), &request, false)
            .await?;
        Ok(SpaceId::from_bytes(answer.space_id.0))
    }

    /// `GET /v1/spaces/{id}/members`: every entry with `seq >= since`, following pages.
    pub async fn membership_entries(&self, space: &SpaceId, since: u64) -> Result<Vec<Vec<u8>>> {
        let mut entries: Vec<Vec<u8>> = Vec::new();
        for _ in 0..MAX_PAGES {
            let next = since.saturating_add(entries.len() as u64);
            let page: MembershipResponse = self
                .get_json(space_path(
                    space,
                    &format!("/members?since={next}&limit={MAX_ITEMS_PER_PAGE}"),
                ))
                .await?;
            let done = page.entries.is_empty();
            entries.extend(page.entries.into_iter().map(|b| b.0));
            if done || since.saturating_add(entries.len() as u64) >= page.len {
                return Ok(entries);
            }
        }
        Err(Error::Protocol("the membership log never ends".to_owned()))
    }

    /// `POST /v1/spaces/{id}/members`: appends a signed entry.
    pub async fn append_membership_entry(
        &self,
        space: &SpaceId,
        entry: Vec<u8>,
    ) -> Result<AppendOutcome> {
        let request = AppendMembershipRequest {
            entry: entry.into(),
        };
        self.append(space_path(space, "/members"), Method::POST, &request)
            .await
    }

    /// `PUT /v1/spaces/{id}/blobs/{blob}`: stores an envelope (idempotent, retried).
    pub async fn put_blob_bytes(
        &self,
        space: &SpaceId,
        id: &BlobId,
        envelope: Bytes,
    ) -> Result<()> {
        let call = Call {
            method: Method::PUT,
            path: space_path(space, &format!("/blobs/{}", id.to_hex())),
            body: Body::Octets(envelope),
            auth: true,
            idempotent: true,
            max_response: MAX_ERROR_RESPONSE,
        };
        self.call(&call).await?.map_err(Refusal::into_error)?;
        Ok(())
    }

    /// `GET /v1/spaces/{id}/blobs/{blob}`: an envelope, unverified (the caller checks its hash).
    pub async fn get_blob_bytes(&self, space: &SpaceId, id: &BlobId) -> Result<Bytes> {
        let call = Call {
            method: Method::GET,
            path: space_path(space, &format!("/blobs/{}", id.to_hex())),
            body: Body::Empty,
            auth: true,
            idempotent: true,
            // Invariant: MAX_BLOB_BYTES (17 MB) fits in usize on every supported target.
            max_response: usize::try_from(MAX_BLOB_BYTES).unwrap_or(usize::MAX),
        };
        let reply = self.call(&call).await?.map_err(Refusal::into_error)?;
        Ok(reply.body)
    }

    /// `POST /v1/spaces/{id}/blobs/batch`: stores several envelopes in one request (idempotent,
    /// retried); the gateway answers once all of them are durable. A gateway without the
    /// endpoint (405) gets one `PUT` per blob instead.
    pub async fn put_blob_batch(
        &self,
        space: &SpaceId,
        blobs: &[(BlobId, Vec<u8>)],
    ) -> Result<BatchPutResponse> {
        if blobs.is_empty() || blobs.len() > MAX_BLOBS_PER_BATCH {
            return Err(Error::InvalidInput(format!(
                "between 1 and {MAX_BLOBS_PER_BATCH} blobs per batch"
            )));
        }
        let size: usize = blobs
            .iter()
            .map(|(_, bytes)| batch::record_len(bytes.len()))
            .sum();
        let mut body = Vec::with_capacity(size);
        for (id, bytes) in blobs {
            batch::push_record(&mut body, id.as_bytes(), bytes)
                .map_err(|error| Error::InvalidInput(error.to_string()))?;
        }
        let call = Call {
            method: Method::POST,
            path: space_path(space, "/blobs/batch"),
            body: Body::Octets(Bytes::from(body)),
            auth: true,
            idempotent: true,
            max_response: MAX_JSON_RESPONSE,
        };
        match self.call(&call).await? {
            Ok(reply) => decode_json(&reply.body),
            // A gateway from before blob batches answers 405 on this path: one PUT per blob.
            Err(refusal) if refusal.status == StatusCode::METHOD_NOT_ALLOWED => {
                for (id, bytes) in blobs {
                    self.put_blob_bytes(space, id, Bytes::from(bytes.clone()))
                        .await?;
                }
                Ok(BatchPutResponse {
                    stored: blobs.len() as u64,
                    present: 0,
                })
            }
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// `POST /v1/spaces/{id}/blobs/fetch`: a non-empty prefix of `ids` with their envelopes,
    /// unverified (the caller checks each hash). The framing, the count and the ids are checked
    /// here: a gateway answering other ids, in another order, or none, is refused. A gateway
    /// without the endpoint (405) gets one `GET` (the answer is then the first blob).
    pub async fn fetch_blobs(
        &self,
        space: &SpaceId,
        ids: &[BlobId],
    ) -> Result<Vec<(BlobId, Vec<u8>)>> {
        if ids.is_empty() || ids.len() > MAX_BLOBS_PER_BATCH {
            return Err(Error::InvalidInput(format!(
                "between 1 and {MAX_BLOBS_PER_BATCH} ids per fetch"
            )));
        }
        let request = FetchRequest {
            ids: ids.iter().map(|id| Id32(*id.as_bytes())).collect(),
        };
        // The gateway adds blobs while the answer stays within its batch limit, but always sends
        // at least one (which may be as large as a blob can be).
        let max_response = usize::try_from(MAX_BATCH_BYTES.saturating_add(MAX_BLOB_BYTES))
            .unwrap_or(usize::MAX)
            .saturating_add(batch::RECORD_HEADER);
        let call = Call {
            method: Method::POST,
            path: space_path(space, "/blobs/fetch"),
            body: Body::Json(encode_json(&request)?),
            auth: true,
            idempotent: true,
            max_response,
        };
        let reply = match self.call(&call).await? {
            Ok(reply) => reply,
            // A gateway from before blob batches answers 405 on this path: one GET.
            Err(refusal) if refusal.status == StatusCode::METHOD_NOT_ALLOWED => {
                let first = ids[0];
                let bytes = self.get_blob_bytes(space, &first).await?;
                return Ok(vec![(first, bytes.to_vec())]);
            }
            Err(refusal) => return Err(refusal.into_error()),
        };
        let records = batch::decode(&reply.body, MAX_BLOB_BYTES).map_err(|error| {
            Error::Protocol(format!("the gateway sent a bad blob batch: {error}"))
        })?;
        if records.len() > ids.len()
            || records
                .iter()
                .zip(ids)
                .any(|((got, _), asked)| got != asked.as_bytes())
        {
            return Err(Error::Protocol(
                "the gateway answered a fetch with blobs that were not asked for".into(),
            ));
        }
        Ok(records
            .into_iter()
            .map(|(id, bytes)| (BlobId::from_bytes(id), bytes.to_vec()))
            .collect())
    }

    /// `HEAD /v1/spaces/{id}/blobs/{blob}`: whether the gateway has the blob.
    pub async fn has_blob(&self, space: &SpaceId, id: &BlobId) -> Result<bool> {
        let call = Call {
            method: Method::HEAD,
            path: space_path(space, &format!("/blobs/{}", id.to_hex())),
            body: Body::Empty,
            auth: true,
            idempotent: true,
            max_response: 0,
        };
        match self.call(&call).await? {
            Ok(_) => Ok(true),
            Err(refusal) if refusal.status == StatusCode::NOT_FOUND => Ok(false),
            Err(refusal) => Err(refusal.into_error()),
        }
    }

    /// `POST /v1/spaces/{id}/blobs/missing`: which of `ids` are absent (batched by the caller,
    /// at most [`MAX_IDS_PER_REQUEST`]).
    pub async fn missing(&self, space: &SpaceId, ids: &[BlobId]) -> Result<Vec<BlobId>> {
        if ids.len() > MAX_IDS_PER_REQUEST {
            return Err(Error::InvalidInput(format!(
                "at most {MAX_IDS_PER_REQUEST} ids per query"
            )));
        }
        let request = MissingRequest {
            ids: ids.iter().map(|id| Id32(*id.as_bytes())).collect(),
        };
        let answer: MissingResponse = self
            .json(
                Method::POST,
                space_path(space, "/blobs/missing"),
                &request,
                true,
            )
            .await?;
        Ok(answer
            .missing
            .into_iter()
            .map(|id| BlobId::from_bytes(id.0))
            .collect())
    }

    /// `GET /v1/spaces/{id}/blobs?after=&limit=`: one page of the blob listing.
    pub async fn list_blobs(
        &self,
        space: &SpaceId,
        after: Option<&BlobId>,
        limit: usize,
    ) -> Result<BlobListResponse> {
        let after = after.map_or(String::new(), |id| format!("&after={}", id.to_hex()));
        self.get_json(space_path(space, &format!("/blobs?limit={limit}{after}")))
            .await
    }

    /// `GET /v1/spaces/{id}/heads`: every commit with `seq > since` (following pages), and the
    /// gateway's head seq.
    pub async fn commit_bytes(&self, space: &SpaceId, since: u64) -> Result<(Vec<Vec<u8>>, u64)> {
        let mut commits: Vec<Vec<u8>> = Vec::new();
        for _ in 0..MAX_PAGES {
            let next = since.saturating_add(commits.len() as u64);
            let page: HeadsResponse = self
                .get_json(space_path(
                    space,
                    &format!("/heads?since={next}&limit={MAX_ITEMS_PER_PAGE}"),
                ))
                .await?;
            let done = page.commits.is_empty();
            commits.extend(page.commits.into_iter().map(|b| b.0));
            if done || since.saturating_add(commits.len() as u64) >= page.head_seq {
                return Ok((commits, page.head_seq));
            }
        }
        Err(Error::Protocol("the commit history never ends".to_owned()))
    }

    /// `PUT /v1/spaces/{id}/heads/{seq}`: appends a commit with compare-and-swap.
    pub async fn put_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        commit: Vec<u8>,
    ) -> Result<AppendOutcome> {
        let request = AppendCommitRequest {
            commit: commit.into(),
        };
        self.append(
            space_path(space, &format!("/heads/{seq}")),
            Method::PUT,
            &request,
        )
        .await
    }

    /// `POST /v1/spaces/{id}/prune`: deletes blobs the caller found unreachable.
    pub async fn prune(&self, space: &SpaceId, delete: &[BlobId]) -> Result<PruneResponse> {
        let request = PruneRequest {
            delete: delete.iter().map(|id| Id32(*id.as_bytes())).collect(),
        };
        self.json(Method::POST, space_path(space, "/prune"), &request, false)
            .await
    }

    /// `GET /v1/inbox`: pending sealed invitations, unverified.
    pub async fn inbox(&self) -> Result<InboxResponse> {
        self.get_json("/v1/inbox".to_owned()).await
    }

    /// `POST /v1/inbox`: leaves a sealed invitation for `to`.
    pub async fn send_invitation(&self, to: &str, invitation: Vec<u8>) -> Result<()> {
        let request = SendInvitationRequest {
            to: to.to_owned(),
            invitation: invitation.into(),
        };
        let _: serde_json::Value = self
            .json(Method::POST, "/v1/inbox".to_owned(), &request, false)
            .await?;
        Ok(())
    }

    /// `DELETE /v1/inbox/{id}`.
    pub async fn delete_invitation(&self, id: u64) -> Result<()> {
        let call = Call {
            method: Method::DELETE,
            path: format!("/v1/inbox/{id}"),
            body: Body::Empty,
            auth: true,
            idempotent: true,
            max_response: MAX_ERROR_RESPONSE,
        };
        self.call(&call).await?.map_err(Refusal::into_error)?;
        Ok(())
    }

    /// An append with compare-and-swap: `409 conflict` becomes [`AppendOutcome::Conflict`] with
    /// the gateway's `current_seq`. Never retried automatically (the caller re-reads).
    async fn append<Q: serde::Serialize>(
        &self,
        path: String,
        method: Method,
        request: &Q,
    ) -> Result<AppendOutcome> {
        let call = Call {
            method,
            path,
            body: Body::Json(encode_json(request)?),
            auth: true,
            idempotent: false,
            max_response: MAX_JSON_RESPONSE,
        };
        match self.call(&call).await? {
            Ok(reply) => {
                let _: AppendResponse = decode_json(&reply.body)?;
                Ok(AppendOutcome::Appended)
            }
            Err(refusal) => match refusal.conflict_seq() {
                Some(head_seq) => Ok(AppendOutcome::Conflict { head_seq }),
                None => Err(refusal.into_error()),
            },
        }
    }
}

impl Remote for HttpClient {
    async fn put_blob(&self, space: &SpaceId, id: &BlobId, envelope: Vec<u8>) -> Result<()> {
        self.put_blob_bytes(space, id, Bytes::from(envelope)).await
    }

    async fn get_blob(&self, space: &SpaceId, id: &BlobId) -> Result<Vec<u8>> {
        // Without a copy when the body was gathered from several frames (the usual case for
        // chunks); `Vec::from` copies only when the bytes are shared.
        Ok(Vec::from(self.get_blob_bytes(space, id).await?))
    }

    async fn put_blobs(&self, space: &SpaceId, blobs: Vec<(BlobId, Vec<u8>)>) -> Result<()> {
        self.put_blob_batch(space, &blobs).await.map(|_| ())
    }

    async fn get_blobs(&self, space: &SpaceId, ids: &[BlobId]) -> Result<Vec<(BlobId, Vec<u8>)>> {
        self.fetch_blobs(space, ids).await
    }

    async fn missing_blobs(&self, space: &SpaceId, ids: &[BlobId]) -> Result<Vec<BlobId>> {
        self.missing(space, ids).await
    }

    async fn create_space(&self, genesis: Vec<u8>) -> Result<SpaceId> {
        self.create_space_raw(genesis).await
    }

    async fn list_spaces(&self) -> Result<Vec<SpaceSummary>> {
        self.spaces().await
    }

    async fn membership(&self, space: &SpaceId, since: u64) -> Result<Vec<Vec<u8>>> {
        self.membership_entries(space, since).await
    }

    async fn append_membership(&self, space: &SpaceId, entry: Vec<u8>) -> Result<AppendOutcome> {
        self.append_membership_entry(space, entry).await
    }

    async fn commits(&self, space: &SpaceId, since: u64) -> Result<(Vec<Vec<u8>>, u64)> {
        self.commit_bytes(space, since).await
    }

    async fn append_commit(
        &self,
        space: &SpaceId,
        seq: u64,
        commit: Vec<u8>,
    ) -> Result<AppendOutcome> {
        self.put_commit(space, seq, commit).await
    }
}
