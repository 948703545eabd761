//! Request handlers: one per [`Endpoint`], grouped by resource.
//!
//! [`handle`] is what the server calls for every request. It forwards to [`dispatch`], which is
//! generic over the body type so that tests drive the whole API with in-memory bodies. `dispatch`
//! routes, applies the per-address rate limit, runs the handler, turns every error into the one
//! JSON error shape with its stable code and status, and records metrics and one log line.
//!
//! Invariants: no handler panics on any input; bodies are read only up to the endpoint's limit;
//! tokens, request bodies and blob bytes are never logged; internal errors are logged in full and
//! answered with [`Error::public_message`].

mod accounts;
mod auth;
mod blobs;
mod body;
mod heads;
mod inbox;
mod ops;
mod query;
mod response;
mod spaces;
mod stream;
mod users;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use http_body_util::BodyExt as _;
use http_body_util::combinators::{BoxBody, UnsyncBoxBody};

use crate::app::App;
use crate::error::{Error, Result};
use crate::router::{Endpoint, RouteError, route};

pub use response::error_response;

/// The body of every response: boxed, so that JSON answers and streamed blobs share one type.
pub type ResponseBody = BoxBody<Bytes, std::io::Error>;

/// Boxed error of a request body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a handler gets: the application, the request head, its body (not yet read) and the peer.
pub(crate) struct Ctx {
    /// Shared state.
    pub app: Arc<App>,
    /// Method, URI, headers.
    pub parts: http::request::Parts,
    /// The unread body.
    pub body: UnsyncBoxBody<Bytes, BoxError>,
}

/// Serves one request from the server (hyper's body type).
pub async fn handle(
    app: Arc<App>,
    request: Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Response<ResponseBody> {
    dispatch(app, request, peer).await
}

/// Serves one request with any body type: routes it, checks the per-address rate limit, runs the
/// handler, answers errors in the one JSON shape, and records metrics and a log line.
pub async fn dispatch<B>(
    app: Arc<App>,
    request: Request<B>,
    peer: SocketAddr,
) -> Response<ResponseBody>
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    let routed = route(&parts.method, parts.uri.path());
    let name = match &routed {
        Ok(endpoint) => endpoint_name(endpoint),
        Err(_) => "unrouted",
    };
    let mut ctx = Ctx {
        app: Arc::clone(&app),
        parts,
        body: body.map_err(Into::into).boxed_unsync(),
    };
    let result = match routed {
        Ok(endpoint) => serve(&mut ctx, endpoint, peer).await,
        Err(RouteError::NotFound) => Err(Error::NotFound),
        Err(RouteError::MethodNotAllowed) => Err(Error::MethodNotAllowed),
    };
    let response = match result {
        Ok(response) => response,
        Err(error) => {
            if error.is_internal() {
                tracing::error!(endpoint = name, %method, error = %error, "internal error");
            }
            app.metrics.record_error(error.code());
            error_response(&error)
        }
    };
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    let sent = response.body().size_hint().exact();
    if let Some(sent) = sent {
        app.metrics.add_bytes_sent(sent);
    }
    app.metrics.record_request(name, status, elapsed);
    tracing::info!(
        %method,
        endpoint = name,
        status,
        duration_ms = elapsed.as_secs_f64() * 1e3,
        bytes_sent = sent.unwrap_or(0),
        "request"
    );
    response
}

async fn serve(
    ctx: &mut Ctx,
    endpoint: Endpoint,
    peer: SocketAddr,
) -> Result<Response<ResponseBody>> {
    if !matches!(endpoint, Endpoint::Health | Endpoint::Metrics) {
        ctx.app.limiter.per_address.check(&peer.ip())?;
    }
    match endpoint {
        Endpoint::Health => ops::health(ctx).await,
        Endpoint::Metrics => ops::metrics(ctx).await,
        Endpoint::Register => accounts::register(ctx).await,
        Endpoint::LoginChallenge => auth::challenge(ctx).await,
        Endpoint::LoginVerify => auth::verify(ctx).await,
        Endpoint::OpaqueRegister => auth::opaque_register(ctx).await,
        Endpoint::OpaqueLoginStart => auth::opaque_start(ctx).await,
        Endpoint::OpaqueLoginFinish => auth::opaque_finish(ctx).await,
        Endpoint::KeyBundles => accounts::key_bundles(ctx).await,
        Endpoint::AppendDevice => accounts::append_device(ctx).await,
        Endpoint::GetUser { handle } => users::get(ctx, &handle).await,
        Endpoint::ListSpaces => spaces::list(ctx).await,
        Endpoint::CreateSpace => spaces::create(ctx).await,
        Endpoint::GetMembers { space } => spaces::members(ctx, space).await,
        Endpoint::AppendMember { space } => spaces::append_member(ctx, space).await,
        Endpoint::ListBlobs { space } => blobs::list(ctx, space).await,
        Endpoint::MissingBlobs { space } => blobs::missing(ctx, space).await,
        Endpoint::PutBlobBatch { space } => blobs::put_batch(ctx, space).await,
        Endpoint::FetchBlobs { space } => blobs::fetch(ctx, space).await,
        Endpoint::PutBlob { space, blob } => blobs::put(ctx, space, blob).await,
        Endpoint::GetBlob { space, blob } => blobs::get(ctx, space, blob, false).await,
        Endpoint::HeadBlob { space, blob } => blobs::get(ctx, space, blob, true).await,
        Endpoint::Prune { space } => blobs::prune(ctx, space).await,
        Endpoint::GetHeads { space } => heads::get(ctx, space).await,
        Endpoint::PutHead { space, seq } => heads::put(ctx, space, seq).await,
        Endpoint::GetInbox => inbox::list(ctx).await,
        Endpoint::SendInvitation => inbox::send(ctx).await,
        Endpoint::DeleteInvitation { id } => inbox::delete(ctx, id).await,
    }
}

/// The endpoint's name in metrics and logs: a closed set, so label cardinality stays bounded.
pub fn endpoint_name(endpoint: &Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Health => "healthz",
        Endpoint::Metrics => "metrics",
        Endpoint::Register => "register",
        Endpoint::LoginChallenge => "login_challenge",
        Endpoint::LoginVerify => "login_verify",
        Endpoint::OpaqueRegister => "opaque_register",
        Endpoint::OpaqueLoginStart => "opaque_login_start",
        Endpoint::OpaqueLoginFinish => "opaque_login_finish",
        Endpoint::KeyBundles => "key_bundles",
        Endpoint::AppendDevice => "append_device",
        Endpoint::GetUser { .. } => "get_user",
        Endpoint::ListSpaces => "list_spaces",
        Endpoint::CreateSpace => "create_space",
        Endpoint::GetMembers { .. } => "get_members",
        Endpoint::AppendMember { .. } => "append_member",
        Endpoint::ListBlobs { .. } => "list_blobs",
        Endpoint::MissingBlobs { .. } => "missing_blobs",
        Endpoint::PutBlobBatch { .. } => "put_blob_batch",
        Endpoint::FetchBlobs { .. } => "fetch_blobs",
        Endpoint::PutBlob { .. } => "put_blob",
        Endpoint::GetBlob { .. } => "get_blob",
        Endpoint::HeadBlob { .. } => "head_blob",
        Endpoint::Prune { .. } => "prune",
        Endpoint::GetHeads { .. } => "get_heads",
        Endpoint::PutHead { .. } => "put_head",
        Endpoint::GetInbox => "get_inbox",
        Endpoint::SendInvitation => "send_invitation",
        Endpoint::DeleteInvitation { .. } => "delete_invitation",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    /// The server spawns `handle` on a multi-threaded runtime: its future must be `Send`.
    #[allow(dead_code)]
    fn handle_future_is_send(app: Arc<App>, request: Request<hyper::body::Incoming>) {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        assert_send(&handle(app, request, peer));
    }

    #[test]
    fn endpoint_names_are_snake_case() {
        let name = endpoint_name(&Endpoint::PutHead {
            space: coffre_crypto::keys::SpaceId::from_bytes([0; 32]),
            seq: 1,
        });
        assert_eq!(name, "put_head");
    }
}
