//! Signed commits (heads), appended with compare-and-swap on the sequence number.

use coffre_crypto::keys::SpaceId;
use coffre_protocol::MAX_ITEMS_PER_PAGE;
use coffre_protocol::types::{AppendCommitRequest, AppendResponse, Bytes64, HeadsResponse};
use http::{Response, StatusCode};

use super::body::read_json;
use super::query::Query;
use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::Result;
use crate::service::{auth, roles, spaces};

/// `GET /v1/spaces/{id}/heads?since=N&limit=M` (members): commits with `seq > since`.
pub(crate) async fn get(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let (record, _) = roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let query = Query::parse(ctx.parts.uri.query())?;
    let since = query.u64("since", 0)?;
    let limit = query.limit(MAX_ITEMS_PER_PAGE, MAX_ITEMS_PER_PAGE)?;
    let commits = ctx
        .app
        .meta(move |meta| meta.commits(&space, since, limit))
        .await?;
    json(
        StatusCode::OK,
        &HeadsResponse {
            commits: commits.into_iter().map(Bytes64).collect(),
            head_seq: record.head_seq,
        },
    )
}

/// `PUT /v1/spaces/{id}/heads/{seq}` (writer or above): 201; 409 `conflict` with `current_seq`
/// if `seq` is not the head + 1 or the membership log moved; 422 if the commit does not verify.
pub(crate) async fn put(ctx: &mut Ctx, space: SpaceId, seq: u64) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let (record, _) = roles::require(&ctx.app, &caller, space, roles::WRITER).await?;
    let request: AppendCommitRequest = read_json(ctx).await?;
    let seq = spaces::append_commit(&ctx.app, &caller, &record, seq, request.commit.0).await?;
    json(StatusCode::CREATED, &AppendResponse { seq })
}
