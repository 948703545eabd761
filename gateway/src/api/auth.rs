//! Device-key login: challenge and verify.

use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `POST /v1/auth/device/challenge`.
pub(crate) async fn challenge(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/auth/device/verify`.
pub(crate) async fn verify(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
