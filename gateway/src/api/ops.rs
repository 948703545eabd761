//! Operations endpoints: `/healthz` and `/metrics`, both without authentication.
//!
//! `/metrics` reveals only aggregate counts (no handles, ids or addresses); operators who consider
//! even those sensitive should not expose the port publicly.

use coffre_protocol::types::HealthResponse;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Response, StatusCode};

use super::response::{full, json};
use super::{Ctx, ResponseBody};
use crate::error::Result;

/// `GET /healthz`: the gateway answers, with its version.
pub(crate) async fn health(_ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    json(
        StatusCode::OK,
        &HealthResponse {
            status: "ok".into(),
            version: env!("CARGO_PKG_VERSION").into(),
        },
    )
}

/// `GET /metrics`: Prometheus text exposition.
pub(crate) async fn metrics(ctx: &mut Ctx) -> Result<Response<ResponseBody>> {
    let disk = match ctx.app.blob_store(|blobs| blobs.disk_bytes()).await {
        Ok(bytes) => Some(bytes),
        Err(error) => {
            tracing::warn!(error = %error, "could not measure the blob store for /metrics");
            None
        }
    };
    let mut response = Response::new(full(ctx.app.metrics.render(disk)));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
