//! Accounts: registration, key bundles, device-chain appends.

use http::Response;

use super::{Ctx, ResponseBody};
use crate::error::{Error, Result};

/// `POST /v1/accounts`.
pub(crate) async fn register(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `GET /v1/account/key-bundles`.
pub(crate) async fn key_bundles(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}

/// `POST /v1/account/devices`.
pub(crate) async fn append_device(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    Err(Error::Unavailable)
}
