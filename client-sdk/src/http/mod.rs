//! The HTTPS client: one gateway, authenticated as one device.
//!
//! Transport: hyper 1 through `hyper-util`'s pooled client and `hyper-rustls` — TLS 1.3 only,
//! certificates accepted per [`Trust`], HTTP/2 when the gateway's ALPN offers it (else HTTP/1.1),
//! connections reused.
//!
//! Behaviour every request gets:
//!
//! - **authentication**: a bearer token is attached automatically. It is obtained by a device-key
//!   login (challenge, Ed25519 signature over [`login_message`] under [`LOGIN_DOMAIN`], verify);
//!   on a `401` the client logs in again **once** and replays the request.
//! - **retries**: only idempotent requests (reads, content-addressed blob uploads, the `missing`
//!   query) are retried, and only on transient failures ([`Error::is_transient`]), a bounded
//!   number of times with exponential backoff and jitter (or the gateway's `Retry-After`).
//! - **time limits**: on connecting and on each whole request, response body included.
//! - **size limits**: responses are read into memory only up to a bound per endpoint kind.
//! - **errors**: the gateway's JSON error body becomes [`Error::from_gateway`]; a pin mismatch or
//!   an untrusted certificate becomes [`Error::UntrustedCertificate`].
//!
//! Secrets: the token lives in a zeroizing buffer, its header value is marked sensitive (never
//! HPACK-indexed), and neither appears in `Debug` or in logs. Logs carry method, path (public ids
//! only) and status.
//!
//! Nothing this client returns is trusted: callers verify every byte (see [`crate::remote`]).

mod api;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use coffre_crypto::device::DeviceSigner;
use coffre_crypto::identity::Handle;
use coffre_protocol::types::{
    ChallengeRequest, ChallengeResponse, Id32, TokenResponse, VerifyRequest,
};
use coffre_protocol::{ErrorBody, ErrorCode, LOGIN_DOMAIN, login_message};
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Method, Request, StatusCode, Uri, Version};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::trust::{PinMismatch, Trust};

pub use api::GatewayHealth;

/// Largest JSON response read into memory (a page of membership entries can be large).
const MAX_JSON_RESPONSE: usize = 64 * 1024 * 1024;
/// Largest error body read.
const MAX_ERROR_RESPONSE: usize = 64 * 1024;
/// Longest token accepted from a gateway.
const MAX_TOKEN_LEN: usize = 512;
/// Largest HTTP/2 frame the gateway may send (the protocol's default is 16 KiB): a 1 MiB chunk
/// arrives in a few frames instead of 64, each with its own bookkeeping and flow-control update.
const H2_MAX_FRAME_SIZE: u32 = 256 * 1024;
/// Length of a login challenge (API.md).
const CHALLENGE_LEN: usize = 32;

/// Time limits and retry policy.
#[derive(Clone, Debug)]
pub struct HttpOptions {
    /// Limit on establishing a TCP connection.
    pub connect_timeout: Duration,
    /// Limit on one whole request: TLS handshake, upload, response headers and body.
    pub request_timeout: Duration,
    /// Retries of an idempotent request after a transient failure (0: none).
    pub max_retries: u32,
    /// Backoff before the first retry; doubles on each further retry (with jitter).
    pub backoff: Duration,
    /// Longest wait between two attempts, including a gateway's `Retry-After`; a longer
    /// `Retry-After` is returned to the caller as [`Error::RateLimited`] instead.
    pub max_backoff: Duration,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(120),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
        }
    }
}

/// What a device needs to log in: its account's handle and its certified key.
#[derive(Clone, Debug)]
pub struct DeviceLogin {
    /// The account's handle.
    pub handle: Handle,
    /// The device's certificate and secret key.
    pub signer: Arc<DeviceSigner>,
}

/// A bearer token: zeroized on drop, never printed.
struct Token {
    value: Zeroizing<String>,
    /// Bumped on each login, so that concurrent `401`s cause one login, not one each.
    generation: u64,
}

impl Token {
    fn header(&self) -> Result<HeaderValue> {
        let mut header = HeaderValue::try_from(format!("Bearer {}", self.value.as_str()))
            .map_err(|_| Error::Protocol("the gateway issued an unusable token".to_owned()))?;
        header.set_sensitive(true);
        Ok(header)
    }
}

/// An HTTPS client for one gateway. Cheap to clone: clones share connections and the session.
#[derive(Clone)]
pub struct HttpClient {
    inner: Arc<Inner>,
}

struct Inner {
    base: String,
    client: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
    options: HttpOptions,
    login: Option<DeviceLogin>,
    token: std::sync::Mutex<Option<Token>>,
    /// Serialises logins.
    login_lock: tokio::sync::Mutex<u64>,
}

impl std::fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let logged_in = self
            .inner
            .token
            .lock()
            .map(|token| token.is_some())
            .unwrap_or(false);
        f.debug_struct("HttpClient")
            .field("server", &self.inner.base)
            .field("device", &self.inner.login.as_ref().map(|l| &l.handle))
            .field("logged_in", &logged_in)
            .finish_non_exhaustive()
    }
}

/// The body of a request.
#[derive(Clone)]
enum Body {
    Empty,
    Json(Bytes),
    Octets(Bytes),
}

/// One request, replayable.
struct Call {
    method: Method,
    path: String,
    body: Body,
    auth: bool,
    idempotent: bool,
    max_response: usize,
}

/// A successful (2xx) answer.
struct Reply {
    version: Version,
    body: Bytes,
}

/// An error answer from the gateway.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    body: Option<ErrorBody>,
    retry_after_s: Option<u64>,
}

impl Refusal {
    fn into_error(self) -> Error {
        match self.body {
            Some(body) => Error::from_gateway(body.code, &body.message, self.retry_after_s),
            None => match self.status {
                StatusCode::UNAUTHORIZED => Error::Auth,
                StatusCode::SERVICE_UNAVAILABLE | StatusCode::BAD_GATEWAY => Error::Unavailable,
                StatusCode::GATEWAY_TIMEOUT => Error::Unavailable,
                StatusCode::TOO_MANY_REQUESTS => Error::RateLimited {
                    retry_after_s: self.retry_after_s.unwrap_or(1),
                },
                status => Error::Protocol(format!(
                    "the gateway answered {status} without an error body"
                )),
            },
        }
    }

    /// `current_seq` of a `conflict` answer.
    fn conflict_seq(&self) -> Option<u64> {
        self.body
            .as_ref()
            .filter(|body| body.code == ErrorCode::Conflict)
            .and_then(|body| body.current_seq)
    }
}

impl HttpClient {
    /// A client for the gateway at `server` (`https://host[:port][/prefix]`), accepting
    /// certificates per `trust`, logging in as `login` when an endpoint needs it.
    pub fn new(
        server: &str,
        trust: &Trust,
        options: HttpOptions,
        login: Option<DeviceLogin>,
    ) -> Result<Self> {
        let base = parse_server(server)?;
        let tls = trust.client_config()?;
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(options.connect_timeout));
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_only()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = HyperClient::builder(TokioExecutor::new())
            .http2_max_frame_size(H2_MAX_FRAME_SIZE)
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient {
            inner: Arc::new(Inner {
                base,
                client,
                options,
                login,
                token: std::sync::Mutex::new(None),
                login_lock: tokio::sync::Mutex::new(0),
            }),
        })
    }

    /// The gateway's base URL.
    pub fn server(&self) -> &str {
        &self.inner.base
    }

    /// Whether a token is held (it may have expired; the next request renews it).
    pub fn is_logged_in(&self) -> bool {
        self.lock_token()
            .map(|token| token.is_some())
            .unwrap_or(false)
    }

    /// Logs in with the device key now (requests otherwise log in on first need).
    pub async fn login(&self) -> Result<()> {
        let generation = self.token_generation()?;
        self.relogin(generation).await
    }

    /// Forgets the token, so the next authenticated request logs in again.
    pub fn logout(&self) {
        if let Ok(mut token) = self.lock_token() {
            *token = None;
        }
    }

    fn lock_token(&self) -> Result<std::sync::MutexGuard<'_, Option<Token>>> {
        self.inner
            .token
            .lock()
            .map_err(|_| Error::Crypto("session state poisoned by a panic".to_owned()))
    }

    fn token_generation(&self) -> Result<u64> {
        Ok(self.lock_token()?.as_ref().map_or(0, |t| t.generation))
    }

    /// The current token's header, logging in first if there is none.
    async fn bearer(&self) -> Result<(HeaderValue, u64)> {
        {
            let token = self.lock_token()?;
            if let Some(token) = token.as_ref() {
                return Ok((token.header()?, token.generation));
            }
        }
        self.relogin(0).await?;
        let token = self.lock_token()?;
        let token = token.as_ref().ok_or(Error::Auth)?;
        Ok((token.header()?, token.generation))
    }

    /// Logs in unless someone else already did since `seen_generation`.
    async fn relogin(&self, seen_generation: u64) -> Result<()> {
        let login = self.inner.login.as_ref().ok_or(Error::Auth)?;
        let mut generations = self.inner.login_lock.lock().await;
        if *generations != seen_generation && self.is_logged_in() {
            return Ok(());
        }
        let value = self.device_login(login).await?;
        *generations += 1;
        *self.lock_token()? = Some(Token {
            value,
            generation: *generations,
        });
        tracing::debug!(server = %self.inner.base, handle = %login.handle, "logged in");
        Ok(())
    }

    async fn device_login(&self, login: &DeviceLogin) -> Result<Zeroizing<String>> {
        let device_key = Id32(login.signer.device_key().to_bytes());
        let handle = login.handle.as_str().to_owned();
        let challenge: ChallengeResponse = self
            .json_unauthenticated(
                "/v1/auth/device/challenge",
                &ChallengeRequest {
                    handle: handle.clone(),
                    device_key,
                },
                true,
            )
            .await?;
        if challenge.challenge.0.len() != CHALLENGE_LEN {
            return Err(Error::Protocol(
                "the gateway sent a login challenge of the wrong length".to_owned(),
            ));
        }
        let message = login_message(&handle, &challenge.challenge.0);
        let signature = login.signer.sign(LOGIN_DOMAIN, &message);
        let answer: TokenResponse = self
            .json_unauthenticated(
                "/v1/auth/device/verify",
                &VerifyRequest {
                    handle,
                    device_key,
                    challenge: challenge.challenge,
                    signature: signature.to_vec().into(),
                },
                false,
            )
            .await?;
        let value = Zeroizing::new(answer.token);
        let usable = !value.is_empty()
            && value.len() <= MAX_TOKEN_LEN
            && value.bytes().all(|c| c.is_ascii_graphic());
        if !usable {
            return Err(Error::Protocol(
                "the gateway issued an unusable token".to_owned(),
            ));
        }
        Ok(value)
    }

    /// Sends an authenticated JSON request and decodes a JSON answer.
    async fn json<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: String,
        request: &Q,
        idempotent: bool,
    ) -> Result<A> {
        let call = Call {
            method,
            path,
            body: Body::Json(encode_json(request)?),
            auth: true,
            idempotent,
            max_response: MAX_JSON_RESPONSE,
        };
        let reply = self.call(&call).await?.map_err(Refusal::into_error)?;
        decode_json(&reply.body)
    }

    /// POSTs JSON without a token (registration, login) and decodes a JSON answer.
    async fn json_unauthenticated<Q: serde::Serialize, A: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        request: &Q,
        idempotent: bool,
    ) -> Result<A> {
        let call = Call {
            method: Method::POST,
            path: path.to_owned(),
            body: Body::Json(encode_json(request)?),
            auth: false,
            idempotent,
            max_response: MAX_JSON_RESPONSE,
        };
        let reply = self
            .send_with_retries(&call, None)
            .await?
            .map_err(Refusal::into_error)?;
        decode_json(&reply.body)
    }

    /// A GET of JSON, authenticated and retried.
    async fn get_json<A: serde::de::DeserializeOwned>(&self, path: String) -> Result<A> {
        let call = Call {
            method: Method::GET,
            path,
            body: Body::Empty,
            auth: true,
            idempotent: true,
            max_response: MAX_JSON_RESPONSE,
        };
        let reply = self.call(&call).await?.map_err(Refusal::into_error)?;
        decode_json(&reply.body)
    }

    /// Runs a call: attaches the token (logging in first if needed), logs in again once on
    /// `401`, and retries transient failures of idempotent calls. The outer error is local or
    /// transport; the inner one, the gateway's final refusal.
    async fn call(&self, call: &Call) -> Result<std::result::Result<Reply, Refusal>> {
        if !call.auth {
            return self.send_with_retries(call, None).await;
        }
        let (bearer, generation) = self.bearer().await?;
        match self.send_with_retries(call, Some(bearer)).await? {
            Err(refusal) if refusal.status == StatusCode::UNAUTHORIZED => {
                if self.inner.login.is_none() {
                    return Ok(Err(refusal));
                }
                tracing::debug!(path = %call.path, "token refused; logging in again");
                self.relogin(generation).await?;
                let (bearer, _) = self.bearer().await?;
                self.send_with_retries(call, Some(bearer)).await
            }
            outcome => Ok(outcome),
        }
    }

    /// Sends a call, retrying transient failures of idempotent calls with backoff.
    async fn send_with_retries(
        &self,
        call: &Call,
        bearer: Option<HeaderValue>,
    ) -> Result<std::result::Result<Reply, Refusal>> {
        let options = &self.inner.options;
        let mut retries = 0u32;
        loop {
            let error = match self.send_once(call, bearer.clone()).await {
                Ok(Ok(reply)) => return Ok(Ok(reply)),
                Ok(Err(refusal)) => {
                    let retryable = call.idempotent && refusal_is_transient(&refusal);
                    if !retryable || retries >= options.max_retries {
                        return Ok(Err(refusal));
                    }
                    refusal.into_error()
                }
                Err(error) => {
                    if !call.idempotent || !error.is_transient() || retries >= options.max_retries {
                        return Err(error);
                    }
                    error
                }
            };
            let Some(wait) = backoff(options, retries, &error) else {
                return Err(error);
            };
            tracing::debug!(path = %call.path, %error, ?wait, "transient failure; retrying");
            retries += 1;
            tokio::time::sleep(wait).await;
        }
    }

    /// One attempt, within the request time limit.
    async fn send_once(
        &self,
        call: &Call,
        bearer: Option<HeaderValue>,
    ) -> Result<std::result::Result<Reply, Refusal>> {
        let uri: Uri = format!("{}{}", self.inner.base, call.path)
            .parse()
            .map_err(|_| Error::InvalidInput(format!("bad request path {}", call.path)))?;
        let mut builder = Request::builder().method(call.method.clone()).uri(uri);
        if let Some(bearer) = bearer {
            builder = builder.header(AUTHORIZATION, bearer);
        }
        let body = match &call.body {
            Body::Empty => Bytes::new(),
            Body::Json(bytes) => {
                builder = builder.header(CONTENT_TYPE, "application/json");
                bytes.clone()
            }
            Body::Octets(bytes) => {
                builder = builder.header(CONTENT_TYPE, "application/octet-stream");
                bytes.clone()
            }
        };
        let request = builder
            .body(Full::new(body))
            .map_err(|error| Error::InvalidInput(format!("cannot build request: {error}")))?;
        let attempt = async {
            let response = self
                .inner
                .client
                .request(request)
                .await
                .map_err(transport_error)?;
            let status = response.status();
            let version = response.version();
            let retry_after_s = response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok());
            let limit = if status.is_success() {
                call.max_response
            } else {
                MAX_ERROR_RESPONSE
            };
            let body = Limited::new(response.into_body(), limit)
                .collect()
                .await
                .map_err(|error| body_error(&*error))?
                .to_bytes();
            tracing::debug!(method = %call.method, path = %call.path, %status, "gateway answered");
            if status.is_success() {
                Ok(Ok(Reply { version, body }))
            } else {
                Ok(Err(Refusal {
                    status,
                    body: serde_json::from_slice::<ErrorBody>(&body).ok(),
                    retry_after_s,
                }))
            }
        };
        tokio::time::timeout(self.inner.options.request_timeout, attempt)
            .await
            .map_err(|_| {
                Error::Network(format!(
                    "no complete answer within {} s",
                    self.inner.options.request_timeout.as_secs()
                ))
            })?
    }
}

fn parse_server(server: &str) -> Result<String> {
    let trimmed = server.trim().trim_end_matches('/');
    let uri: Uri = trimmed
        .parse()
        .map_err(|_| Error::InvalidInput(format!("not a URL: {server}")))?;
    if uri.scheme_str() != Some("https") {
        return Err(Error::InvalidInput(format!(
            "the gateway URL must start with https:// (got {server})"
        )));
    }
    if uri.authority().is_none() || uri.query().is_some() {
        return Err(Error::InvalidInput(format!(
            "the gateway URL must be https://host[:port][/path] (got {server})"
        )));
    }
    Ok(trimmed.to_owned())
}

fn encode_json<Q: serde::Serialize>(request: &Q) -> Result<Bytes> {
    serde_json::to_vec(request)
        .map(Bytes::from)
        .map_err(|error| Error::InvalidInput(format!("cannot encode request: {error}")))
}

fn decode_json<A: serde::de::DeserializeOwned>(body: &[u8]) -> Result<A> {
    serde_json::from_slice(body)
        .map_err(|error| Error::Protocol(format!("unexpected answer from the gateway: {error}")))
}

fn refusal_is_transient(refusal: &Refusal) -> bool {
    matches!(
        refusal.status,
        StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::TOO_MANY_REQUESTS
            | StatusCode::BAD_GATEWAY
            | StatusCode::GATEWAY_TIMEOUT
    )
}

/// How long to wait before retry number `retries + 1`, or `None` to give up now.
fn backoff(options: &HttpOptions, retries: u32, error: &Error) -> Option<Duration> {
    if let Error::RateLimited { retry_after_s } = error {
        let wait = Duration::from_secs(*retry_after_s);
        return (wait <= options.max_backoff).then_some(wait);
    }
    let base = options
        .backoff
        .saturating_mul(1u32.checked_shl(retries).unwrap_or(u32::MAX));
    // Jitter in [0.5, 1.0) of the exponential delay, so clients do not retry in lockstep.
    let jitter = coffre_crypto::keys::random_bytes::<1>().map_or(0, |b| u32::from(b[0]));
    let wait = base / 2 + base.mul_f64(f64::from(jitter) / 512.0);
    Some(wait.min(options.max_backoff))
}

/// Maps a transport failure, recognising certificate refusals anywhere in the error tree: the
/// `source()` chain and the errors wrapped in (possibly nested) `std::io::Error`s, whose own
/// `source()` skips the wrapped error.
fn transport_error(error: hyper_util::client::legacy::Error) -> Error {
    let mut pending: Vec<&(dyn std::error::Error + 'static)> = vec![&error];
    let mut visited = 0;
    while let Some(current) = pending.pop() {
        visited += 1;
        if visited > 32 {
            break;
        }
        if let Some(mapped) = certificate_error(current) {
            return mapped;
        }
        if let Some(inner) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            pending.push(inner);
        }
        if let Some(source) = current.source() {
            pending.push(source);
        }
    }
    Error::Network(describe_chain(&error))
}

fn certificate_error(error: &(dyn std::error::Error + 'static)) -> Option<Error> {
    if let Some(mismatch) = error.downcast_ref::<PinMismatch>() {
        return Some(Error::UntrustedCertificate(mismatch.to_string()));
    }
    match error.downcast_ref::<rustls::Error>()? {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other))
            if other.0.downcast_ref::<PinMismatch>().is_some() =>
        {
            other
                .0
                .downcast_ref::<PinMismatch>()
                .map(|mismatch| Error::UntrustedCertificate(mismatch.to_string()))
        }
        rustls::Error::InvalidCertificate(reason) => {
            Some(Error::UntrustedCertificate(format!("{reason:?}")))
        }
        tls => Some(Error::Network(format!("TLS: {tls}"))),
    }
}

fn body_error(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Error {
    if error.is::<http_body_util::LengthLimitError>() {
        Error::Protocol("the gateway's answer is larger than allowed".to_owned())
    } else {
        Error::Network(format!("reading the answer: {}", describe_chain(error)))
    }
}

fn describe_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn server_urls_are_checked() {
        assert_eq!(
            parse_server("https://example.org:8443/").unwrap(),
            "https://example.org:8443"
        );
        assert_eq!(
            parse_server("https://example.org/coffre").unwrap(),
            "https://example.org/coffre"
        );
        for bad in [
            "http://example.org",
            "example.org",
            "https://",
            "https://a/?x=1",
            "",
        ] {
            assert!(parse_server(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backoff_grows_is_bounded_and_honours_retry_after() {
        let options = HttpOptions::default();
        let network = Error::Network("reset".to_owned());
        for retries in 0..40 {
            let wait = backoff(&options, retries, &network).unwrap();
            assert!(wait <= options.max_backoff);
            if retries == 0 {
                assert!(wait >= options.backoff / 2 && wait < options.backoff);
            }
        }
        let soon = Error::RateLimited { retry_after_s: 2 };
        assert_eq!(backoff(&options, 0, &soon), Some(Duration::from_secs(2)));
        let late = Error::RateLimited {
            retry_after_s: 3600,
        };
        assert_eq!(backoff(&options, 0, &late), None);
    }

    #[test]
    fn refusals_map_to_sdk_errors() {
        let refusal = |status: u16, code: Option<ErrorCode>, current_seq| Refusal {
            status: StatusCode::from_u16(status).unwrap(),
            body: code.map(|code| ErrorBody {
                code,
                message: "m".to_owned(),
                current_seq,
            }),
            retry_after_s: Some(7),
        };
        assert!(matches!(
            refusal(401, Some(ErrorCode::Unauthenticated), None).into_error(),
            Error::Auth
        ));
        assert!(matches!(
            refusal(429, Some(ErrorCode::RateLimited), None).into_error(),
            Error::RateLimited { retry_after_s: 7 }
        ));
        assert!(matches!(
            refusal(502, None, None).into_error(),
            Error::Unavailable
        ));
        assert!(matches!(
            refusal(418, None, None).into_error(),
            Error::Protocol(_)
        ));
        assert_eq!(
            refusal(409, Some(ErrorCode::Conflict), Some(4)).conflict_seq(),
            Some(4)
        );
        assert_eq!(
            refusal(409, Some(ErrorCode::HandleTaken), Some(4)).conflict_seq(),
            None
        );
        assert!(refusal_is_transient(&refusal(503, None, None)));
        assert!(!refusal_is_transient(&refusal(500, None, None)));
    }

    #[test]
    fn debug_never_shows_the_token() {
        let client = HttpClient::new(
            "https://127.0.0.1:1",
            &Trust::Pinned(crate::trust::CertFingerprint::from_bytes([1; 32])),
            HttpOptions::default(),
            None,
        )
        .unwrap();
        *client.inner.token.lock().unwrap() = Some(Token {
            value: Zeroizing::new("cft_SECRETSECRETSECRET".to_owned()),
            generation: 1,
        });
        let shown = format!("{client:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("logged_in: true"), "{shown}");
        assert!(client.is_logged_in());
        let header = client
            .inner
            .token
            .lock()
            .unwrap()
            .as_ref()
            .unwrap()
            .header()
            .unwrap();
        assert!(header.is_sensitive());
        assert!(!format!("{header:?}").contains("SECRET"));
        client.logout();
        assert!(!client.is_logged_in());
    }
}
