//! Content-addressed blobs: upload (streamed, hash-checked, quota-charged), download (streamed,
//! hash-verified), listing, `missing` queries and pruning. The rules are in
//! [`crate::service::blobs`].

use bytes::BytesMut;
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_protocol::batch;
use coffre_protocol::types::{
    BatchPutResponse, BlobListEntry, BlobListResponse, FetchRequest, Id32, MissingRequest,
    MissingResponse, PruneRequest, PruneResponse,
};
use coffre_protocol::{MAX_IDS_PER_REQUEST, MAX_ITEMS_PER_PAGE};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::BodyExt as _;
use std::io::Read as _;

use tokio::sync::mpsc;

use super::body::{check_declared, next_data, read_json, read_limited, require_media_type};
use super::query::Query;
use super::response::{empty, empty_body, full_holding, json};
use super::stream::ChannelBody;
use super::{Ctx, ResponseBody};
use crate::app::{App, blocking};
use crate::error::{Error, Result};
use crate::service::blobs::{CHANNEL_DEPTH, FEED_PIECE, Feed, stream_blob, write_blob};
use crate::service::{auth, roles};
use crate::store::BlobMeta;

fn blob_id(id: &Id32) -> BlobId {
    BlobId::from_bytes(id.0)
}

/// `PUT /v1/spaces/{id}/blobs/{blob}` (writer or above): 201 once durable, 200 if already stored,
/// 422 `hash_mismatch`, 413, 415, 507 `quota_exceeded`.
pub(crate) async fn put(
    ctx: &mut Ctx,
    space: SpaceId,
    blob: BlobId,
) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::WRITER).await?;
    require_media_type(&ctx.parts, "application/octet-stream")?;
    let limit = ctx.app.config.limits.max_blob_bytes;
    let declared = check_declared(&ctx.parts, limit)?;
    let app = std::sync::Arc::clone(&ctx.app);
    let _shared = app.space_locks.upload(&space).await;
    let now = app.now_ms();
    // Already stored: claim it (the prune grace period restarts) and answer without reading.
    if app
        .meta(move |meta| meta.claim_blobs(&space, &[blob], now))
        .await?
        .first()
        .copied()
        .unwrap_or(false)
    {
        return Ok(empty(StatusCode::OK));
    }
    // Reserve a declared length up front, so an over-quota upload is refused before it is read.
    let uploader = caller.handle.clone();
    let mut reserved = 0;
    if let Some(length) = declared {
        reserve(&app, &uploader, length).await?;
        reserved = length;
    }
    let result = upload(ctx, &app, space, blob, limit, &uploader, &mut reserved).await;
    // Whatever happened, a reservation not consumed by a new index entry is given back.
    if reserved > 0 {
        let handle = uploader.clone();
        if let Err(error) = app
            .meta(move |meta| meta.release_quota(&handle, reserved))
            .await
        {
            tracing::error!(error = %error, "releasing a quota reservation failed");
        }
    }
    result
}

async fn reserve(app: &App, handle: &str, bytes: u64) -> Result<()> {
    let handle = handle.to_owned();
    app.meta(move |meta| meta.reserve_quota(&handle, bytes))
        .await
}

async fn upload(
    ctx: &mut Ctx,
    app: &App,
    space: SpaceId,
    blob: BlobId,
    limit: u64,
    uploader: &str,
    reserved: &mut u64,
) -> Result<Response<ResponseBody>> {
    let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
    let store = std::sync::Arc::clone(&app.blobs);
    let writer =
        tokio::task::spawn_blocking(move || write_blob(store.as_ref(), &space, &blob, receiver));
    let mut received = 0;
    // Network frames are small (16 KiB HTTP/2 DATA frames, TLS records); they are gathered into
    // pieces of up to FEED_PIECE bytes so the writer thread wakes once per piece, not per frame.
    let mut piece = BytesMut::new();
    let fed = loop {
        match next_data(ctx, &mut received, limit).await {
            Ok(Some(data)) => {
                let ready = if piece.is_empty() && data.len() >= FEED_PIECE {
                    data
                } else {
                    piece.extend_from_slice(&data);
                    if piece.len() < FEED_PIECE {
                        continue;
                    }
                    piece.split().freeze()
                };
                if sender.send(Feed::Data(ready)).await.is_err() {
                    break Ok(()); // The writer stopped; its result says why.
                }
            }
            Ok(None) => {
                if !piece.is_empty() {
                    let _ = sender.send(Feed::Data(piece.split().freeze())).await;
                }
                let _ = sender.send(Feed::End).await;
                break Ok(());
            }
            Err(error) => break Err(error),
        }
    };
    drop(sender);
    let written = writer
        .await
        .map_err(|error| Error::Internal(format!("upload task failed: {error}")))?;
    fed?;
    let written = written?;
    let size = written.size;
    if size != *reserved {
        if *reserved > 0 {
            // Hyper enforces a declared Content-Length; a mismatch is a bug, not the client's.
            return Err(Error::Internal(
                "upload size differs from its Content-Length".into(),
            ));
        }
        reserve(app, uploader, size).await?;
        *reserved = size;
    }
    blocking(move || written.writer.commit()).await?;
    let record = BlobMeta {
        size,
        created_ms: app.now_ms(),
        uploader: uploader.to_owned(),
    };
    let inserted = app
        .meta(move |meta| meta.put_blob_meta(&space, &blob, &record))
        .await?;
    if inserted {
        *reserved = 0; // Now charged for good.
        Ok(empty(StatusCode::CREATED))
    } else {
        // A concurrent upload of the same blob was indexed first and is charged for it; `put`
        // releases this one's reservation.
        Ok(empty(StatusCode::OK))
    }
}

/// `POST /v1/spaces/{id}/blobs/batch` (writer or above): many small blobs in one request, made
/// durable with one group sync. The whole batch is refused (nothing stored) if its framing is bad
/// (400), if any blob does not hash to its id (422 `hash_mismatch`), or if the new blobs would pass
/// the uploader's quota (507); 413 above `limits.max_batch_bytes`. **200** once every blob of the
/// batch is durable and indexed, with how many were stored and how many were already there.
pub(crate) async fn put_batch(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::WRITER).await?;
    require_media_type(&ctx.parts, "application/octet-stream")?;
    let limit = ctx.app.config.limits.max_batch_bytes;
    // Read at once, never after waiting on anything other requests hold: on HTTP/2 an unread
    // body keeps its share of the connection's flow-control window, so a handler that waits
    // (say, for a permit held by a request whose body is stuck behind it) before reading can
    // stall every stream of the connection.
    let body = read_limited(ctx, limit).await?;
    let app = std::sync::Arc::clone(&ctx.app);
    let max_blob = ctx.app.config.limits.max_blob_bytes;
    // Shared with other uploads, exclusive of a prune (see `put`).
    let _shared = app.space_locks.upload(&space).await;
    let now = app.now_ms();
    let uploader = caller.handle.clone();
    let (meta_store, blob_store) = (
        std::sync::Arc::clone(&app.meta),
        std::sync::Arc::clone(&app.blobs),
    );
    let answer = blocking(move || {
        let records = batch::decode(&body, max_blob)
            .map_err(|error| Error::BadRequest(format!("invalid blob batch: {error}")))?;
        // Every blob is checked before anything is stored: one bad blob refuses the batch.
        if records
            .iter()
            .any(|(id, envelope)| blake3::hash(envelope).as_bytes() != id)
        {
            return Err(Error::HashMismatch);
        }
        let ids: Vec<BlobId> = records
            .iter()
            .map(|(id, _)| BlobId::from_bytes(*id))
            .collect();
        // Present blobs are claimed (as a single PUT's 200 does) and not written again.
        let present = meta_store.claim_blobs(&space, &ids, now)?;
        let absent: Vec<(BlobId, &[u8])> = ids
            .iter()
            .zip(&records)
            .zip(&present)
            .filter(|(_, present)| !**present)
            .map(|((id, (_, envelope)), _)| (*id, *envelope))
            .collect();
        let answer = BatchPutResponse {
            stored: 0,
            present: (ids.len() - absent.len()) as u64,
        };
        if absent.is_empty() {
            return Ok(answer);
        }
        let total: u64 = absent.iter().map(|(_, bytes)| bytes.len() as u64).sum();
        meta_store.reserve_quota(&uploader, total)?;
        let outcome = (|| {
            // Bodies durable first, then the index entries (one flush): nothing is indexed,
            // let alone acknowledged, before its body is on stable storage.
            blob_store.put_many(&space, &absent)?;
            let created_ms = now;
            let entries: Vec<(BlobId, crate::store::BlobMeta)> = absent
                .iter()
                .map(|(id, bytes)| {
                    (
                        *id,
                        BlobMeta {
                            size: bytes.len() as u64,
                            created_ms,
                            uploader: uploader.clone(),
                        },
                    )
                })
                .collect();
            meta_store.put_blob_metas(&space, &entries)
        })();
        // Give back the reservation of whatever was not indexed by this request (a failure, or
        // a concurrent upload of the same blob indexed first and charged for it).
        let (unused, stored) = match &outcome {
            Ok(inserted) => (
                absent
                    .iter()
                    .zip(inserted)
                    .filter(|(_, inserted)| !**inserted)
                    .map(|((_, bytes), _)| bytes.len() as u64)
                    .sum(),
                inserted.iter().filter(|inserted| **inserted).count() as u64,
            ),
            Err(_) => (total, 0),
        };
        if unused > 0
            && let Err(error) = meta_store.release_quota(&uploader, unused)
        {
            tracing::error!(error = %error, "releasing a quota reservation failed");
        }
        outcome?;
        Ok(BatchPutResponse {
            stored,
            present: answer.present + (absent.len() as u64 - stored),
        })
    })
    .await?;
    json(StatusCode::OK, &answer)
}

/// `POST /v1/spaces/{id}/blobs/fetch` (any member): many blobs in one answer, in the order
/// asked, as a blob batch. Every body is read whole and checked against its id before a byte is
/// sent; the answer holds a prefix of the ids (at least one) whose bodies fit in
/// `limits.max_batch_bytes`, and the client asks again for the rest. 404 if any id is not stored.
pub(crate) async fn fetch(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let request: FetchRequest = read_json(ctx).await?;
    if request.ids.is_empty() || request.ids.len() > batch::MAX_BLOBS_PER_BATCH {
        return Err(Error::BadRequest(format!(
            "between 1 and {} ids per request",
            batch::MAX_BLOBS_PER_BATCH
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if !request.ids.iter().all(|id| seen.insert(id.0)) {
        return Err(Error::BadRequest("an id appears twice".into()));
    }
    let limit = ctx.app.config.limits.max_batch_bytes;
    let max_blob = ctx.app.config.limits.max_blob_bytes;
    let (meta_store, blob_store) = (
        std::sync::Arc::clone(&ctx.app.meta),
        std::sync::Arc::clone(&ctx.app.blobs),
    );
    let app = std::sync::Arc::clone(&ctx.app);
    // Held by the answer's body until it is dropped (see `App::batch_permits`).
    let permit = std::sync::Arc::clone(&app.batch_permits)
        .acquire_owned()
        .await
        .map_err(|_| Error::Unavailable)?;
    let body = blocking(move || {
        let mut out = Vec::new();
        for id in &request.ids {
            let blob = blob_id(id);
            let meta = meta_store
                .blob_meta(&space, &blob)?
                .ok_or(Error::NotFound)?;
            if !out.is_empty()
                && (out.len() as u64).saturating_add(batch::record_len(0) as u64 + meta.size)
                    > limit
            {
                break;
            }
            let mut reader = blob_store.open(&space, &blob)?.ok_or_else(|| {
                Error::Corrupt(format!("blob {space}/{blob} is indexed but has no body"))
            })?;
            // The index's size is only a hint for the allocation: at most one blob's limit.
            let hint = meta.size.min(max_blob);
            let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0));
            reader
                .body
                .by_ref()
                .take(meta.size.saturating_add(1))
                .read_to_end(&mut bytes)?;
            if bytes.len() as u64 != meta.size || blake3::hash(&bytes).as_bytes() != &id.0 {
                tracing::error!(%space, %blob, "stored blob is corrupt; refusing to serve it");
                return Err(Error::Corrupt(format!("blob {space}/{blob} is corrupt")));
            }
            batch::push_record(&mut out, &id.0, &bytes)
                .map_err(|error| Error::Internal(format!("encoding a batch: {error}")))?;
        }
        Ok(out)
    })
    .await?;
    let mut response = Response::new(full_holding(body, permit));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(response)
}

/// `GET|HEAD /v1/spaces/{id}/blobs/{blob}` (any member): the body, streamed and verified.
pub(crate) async fn get(
    ctx: &mut Ctx,
    space: SpaceId,
    blob: BlobId,
    head_only: bool,
) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let meta = ctx
        .app
        .meta(move |meta| meta.blob_meta(&space, &blob))
        .await?
        .ok_or(Error::NotFound)?;
    let body = if head_only {
        empty_body()
    } else {
        let reader = ctx
            .app
            .blob_store(move |blobs| blobs.open(&space, &blob))
            .await?
            .ok_or_else(|| {
                Error::Corrupt(format!("blob {space}/{blob} is indexed but has no body"))
            })?;
        let (sender, receiver) = mpsc::channel(CHANNEL_DEPTH);
        let size = meta.size;
        tokio::task::spawn_blocking(move || stream_blob(reader.body, size, blob, space, sender));
        ChannelBody::new(receiver, meta.size).boxed()
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(meta.size));
    Ok(response)
}

/// `POST /v1/spaces/{id}/blobs/missing` (any member): which of the ids are not stored.
pub(crate) async fn missing(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let request: MissingRequest = read_json(ctx).await?;
    if request.ids.len() > MAX_IDS_PER_REQUEST {
        return Err(Error::BadRequest(format!(
            "at most {MAX_IDS_PER_REQUEST} ids per request"
        )));
    }
    // Every id answered "present" is claimed: the client will reference it without uploading,
    // so a prune must not take it (the shared lock orders this against a running prune).
    let app = std::sync::Arc::clone(&ctx.app);
    let _shared = app.space_locks.upload(&space).await;
    let now = app.now_ms();
    let missing = app
        .meta(move |meta| {
            let ids: Vec<BlobId> = request.ids.iter().map(blob_id).collect();
            let present = meta.claim_blobs(&space, &ids, now)?;
            Ok(request
                .ids
                .into_iter()
                .zip(present)
                .filter_map(|(id, present)| (!present).then_some(id))
                .collect::<Vec<_>>())
        })
        .await?;
    json(StatusCode::OK, &MissingResponse { missing })
}

/// `GET /v1/spaces/{id}/blobs?after=ID&limit=N` (any member): the index in id order.
pub(crate) async fn list(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let query = Query::parse(ctx.parts.uri.query())?;
    let limit = query.limit(MAX_ITEMS_PER_PAGE, MAX_ITEMS_PER_PAGE)?;
    let after = match query.str("after") {
        None => None,
        Some(text) => Some(
            BlobId::from_hex(text)
                .map_err(|_| Error::BadRequest("after must be a blob id".into()))?,
        ),
    };
    let page = ctx
        .app
        .meta(move |meta| meta.list_blob_meta(&space, after.as_ref(), limit))
        .await?;
    let next_after = (page.len() == limit)
        .then(|| page.last().map(|(id, _)| Id32(*id.as_bytes())))
        .flatten();
    let blobs = page
        .into_iter()
        .map(|(id, meta)| BlobListEntry {
            id: Id32(*id.as_bytes()),
            size: meta.size,
            created_ms: meta.created_ms,
        })
        .collect();
    json(StatusCode::OK, &BlobListResponse { blobs, next_after })
}

/// `POST /v1/spaces/{id}/prune` (admin or owner): deletes the listed blobs older than the grace
/// period, releasing their uploaders' quota.
pub(crate) async fn prune(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    roles::require(&ctx.app, &caller, space, roles::ADMIN).await?;
    let request: PruneRequest = read_json(ctx).await?;
    if request.delete.len() > MAX_IDS_PER_REQUEST {
        return Err(Error::BadRequest(format!(
            "at most {MAX_IDS_PER_REQUEST} ids per request"
        )));
    }
    let app = std::sync::Arc::clone(&ctx.app);
    let _exclusive = app.space_locks.prune(&space).await;
    let grace = u64::try_from(app.config.prune_grace.as_millis()).unwrap_or(u64::MAX);
    let cutoff = app.now_ms().saturating_sub(grace);
    let (meta_store, blob_store) = (
        std::sync::Arc::clone(&app.meta),
        std::sync::Arc::clone(&app.blobs),
    );
    let answer = blocking(move || {
        let mut answer = PruneResponse {
            deleted: 0,
            kept_recent: 0,
            absent: 0,
        };
        for id in request.delete {
            let blob = blob_id(&id);
            match meta_store.blob_meta(&space, &blob)? {
                None => answer.absent += 1,
                Some(meta) if meta.created_ms > cutoff => answer.kept_recent += 1,
                Some(_) => {
                    // Index first, then quota, then body: see the module docs of service::blobs.
                    if let Some(meta) = meta_store.delete_blob_meta(&space, &blob)? {
                        meta_store.release_quota(&meta.uploader, meta.size)?;
                    }
                    blob_store.delete(&space, &blob)?;
                    answer.deleted += 1;
                }
            }
        }
        Ok(answer)
    })
    .await?;
    json(StatusCode::OK, &answer)
}
