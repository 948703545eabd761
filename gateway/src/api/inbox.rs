//! Inboxes of sealed invitations.
//!
//! The gateway cannot open invitations; it only checks that the recipient exists, bounds the
//! inbox (`max_inbox`) and the size of each invitation, and records the authenticated sender.

use coffre_crypto::identity::Handle;
use coffre_protocol::types::{Bytes64, InboxItem, InboxResponse, SendInvitationRequest};
use http::{Response, StatusCode};
use serde::Serialize;

use super::body::read_json;
use super::response::{empty, json};
use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};
use crate::service::{accounts, auth};

/// Largest sealed invitation accepted (an invitation is well under 2 KiB).
pub const MAX_INVITATION_BYTES: usize = 16 * 1024;

#[derive(Serialize)]
struct Sent {
    id: u64,
}

/// `GET /v1/inbox`: the caller's pending invitations, oldest first.
pub(crate) async fn list(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let handle = caller.handle.clone();
    let records = ctx.app.meta(move |meta| meta.invitations(&handle)).await?;
    let invitations = records
        .into_iter()
        .map(|record| InboxItem {
            id: record.id,
            from: record.from,
            invitation: Bytes64(record.invitation),
            received_ms: record.received_ms,
        })
        .collect();
    json(StatusCode::OK, &InboxResponse { invitations })
}

/// `POST /v1/inbox`: 201 with the item's id; 404 if the recipient does not exist; 409
/// `inbox_full` when the recipient's inbox is full.
pub(crate) async fn send(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let request: SendInvitationRequest = read_json(ctx).await?;
    if request.invitation.0.is_empty() || request.invitation.0.len() > MAX_INVITATION_BYTES {
        return Err(Error::BadRequest(format!(
            "an invitation is 1 to {MAX_INVITATION_BYTES} bytes"
        )));
    }
    let to = Handle::parse(&request.to).map_err(|_| Error::NotFound)?;
    if accounts::load(&ctx.app, to.as_str()).await?.is_none() {
        return Err(Error::NotFound);
    }
    let (app, from) = (&ctx.app, caller.handle);
    let (now, max) = (app.now_ms(), app.config.max_inbox);
    let to = to.as_str().to_owned();
    let invitation = request.invitation.0;
    let id = app
        .meta(move |meta| meta.push_invitation(&to, &from, &invitation, now, max))
        .await?;
    json(StatusCode::CREATED, &Sent { id })
}

/// `DELETE /v1/inbox/{id}`: 204, or 404 if the caller has no such item.
pub(crate) async fn delete(ctx: &mut Ctx, id: u64) -> Result<Response<ResponseBody>> {
    let caller = auth::authenticate(&ctx.app, &ctx.parts.headers).await?;
    let handle = caller.handle;
    let existed = ctx
        .app
        .meta(move |meta| meta.delete_invitation(&handle, id))
        .await?;
    if existed {
        Ok(empty(StatusCode::NO_CONTENT))
    } else {
        Err(Error::NotFound)
    }
}
