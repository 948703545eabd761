//! Spaces and their membership logs. Non-members get 404 `not_found`, exactly like a space that
//! does not exist.

use coffre_crypto::keys::SpaceId;
use coffre_protocol::MAX_ITEMS_PER_PAGE;
use coffre_protocol::types::{
    AppendMembershipRequest, AppendResponse, Bytes64, CreateSpaceRequest, CreateSpaceResponse,
    Id32, MembershipResponse, SpaceSummary, SpacesResponse,
};
use http::{Response, StatusCode};

use super::body::read_json;
use super::query::Query;
use super::response::json;
use super::{Ctx, ResponseBody};
use crate::error::Result;
use crate::service::{auth, roles, spaces};

/// `GET /v1/spaces`: the caller's spaces with role, log length and head seq.
pub(crate) async fn list(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let handle = caller.handle.clone();
    let records = ctx
        .app
        .meta(move |meta| {
            let mut records = Vec::new();
            for space in meta.spaces_of(&handle)? {
                if let Some(record) = meta.space(&space)? {
                    records.push(record);
                }
            }
            Ok(records)
        })
        .await?;
    let spaces = records
        .into_iter()
        .filter_map(|record| {
            let role = record
                .members
                .iter()
                .find(|member| member.handle == caller.handle)?
                .role;
            Some(SpaceSummary {
                space_id: Id32(*record.space.as_bytes()),
                role: roles::role_name(role).to_owned(),
                membership_len: record.membership_len,
                head_seq: record.head_seq,
            })
        })
        .collect();
    json(StatusCode::OK, &SpacesResponse { spaces })
}

/// `POST /v1/spaces`: 201 with the space id.
pub(crate) async fn create(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let request: CreateSpaceRequest = read_json(ctx).await?;
    let space = spaces::create(&ctx.app, &caller, request.genesis.0).await?;
    json(
        StatusCode::CREATED,
        &CreateSpaceResponse {
            space_id: Id32(*space.as_bytes()),
        },
    )
}

/// `GET /v1/spaces/{id}/members?since=N&limit=M` (members): entries with `seq >= since`.
pub(crate) async fn members(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let (record, _) = roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let query = Query::parse(ctx.parts.uri.query())?;
    let since = query.u64("since", 0)?;
    let limit = query.limit(MAX_ITEMS_PER_PAGE, MAX_ITEMS_PER_PAGE)?;
    let entries = ctx
        .app
        .meta(move |meta| meta.membership_entries(&space, since, limit))
        .await?;
    json(
        StatusCode::OK,
        &MembershipResponse {
            entries: entries.into_iter().map(Bytes64).collect(),
            len: record.membership_len,
        },
    )
}

/// `POST /v1/spaces/{id}/members` (members; the log's rules decide the rights): 201 with the
/// entry's seq; 409 `conflict` if the log or the head moved; 422 if the entry does not verify.
pub(crate) async fn append_member(ctx: &mut Ctx, space: SpaceId) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let (record, _) = roles::require(&ctx.app, &caller, space, roles::READER).await?;
    let request: AppendMembershipRequest = read_json(ctx).await?;
    let seq = spaces::append_member(&ctx.app, &caller, &record, request.entry.0).await?;
    json(StatusCode::CREATED, &AppendResponse { seq })
}
