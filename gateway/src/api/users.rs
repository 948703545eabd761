//! Public user records.

use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `GET /v1/users/{handle}`.
pub(crate) async fn get(_ctx: &mut Ctx, _handle: &str) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
