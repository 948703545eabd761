//! Inboxes of sealed invitations.

use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `GET /v1/inbox`.
pub(crate) async fn list(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/inbox`.
pub(crate) async fn send(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `DELETE /v1/inbox/{id}`.
pub(crate) async fn delete(_ctx: &mut Ctx, _id: u64) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
