//! Shared helpers for the API tests: an app over the memory stores with a controllable clock,
//! real identities and devices, and a one-call request helper driving `api::dispatch`.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use coffre_crypto::device::{DeviceAction, DeviceCertificate, DeviceEntry, DeviceSigner};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::keys::SigningSecret;
use coffre_gateway::Config;
use coffre_gateway::api::dispatch;
use coffre_gateway::app::App;
use coffre_gateway::store::memory::{MemoryBlobs, MemoryMeta};
use coffre_protocol::types::{Bytes64, ChallengeResponse, Id32, TokenResponse};
use coffre_protocol::{LOGIN_DOMAIN, login_message};
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Value, json};

pub const PEER: &str = "192.0.2.1:4000";

pub struct TestApp {
    pub app: Arc<App>,
    pub clock: Arc<AtomicU64>,
    pub meta: Arc<MemoryMeta>,
    pub blobs: Arc<MemoryBlobs>,
}

impl TestApp {
    pub fn new() -> Self {
        TestApp::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        let clock = Arc::new(AtomicU64::new(1_700_000_000_000));
        let meta = Arc::new(MemoryMeta::new());
        let blobs = Arc::new(MemoryBlobs::new());
        let reading = Arc::clone(&clock);
        let app = App::with_clock(
            config,
            meta.clone(),
            blobs.clone(),
            Arc::new(move || reading.load(Ordering::SeqCst)),
        );
        TestApp {
            app: Arc::new(app),
            clock,
            meta,
            blobs,
        }
    }

    pub fn advance_ms(&self, ms: u64) {
        self.clock.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sends a request; returns status, headers and the whole body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        self.send_from(PEER, method, path, token, content_type, body)
            .await
    }

    pub async fn send_from(
        &self,
        peer: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut builder = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder = builder.header("content-length", body.len());
        let request = builder.body(Full::new(Bytes::from(body))).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        let response = dispatch(Arc::clone(&self.app), request, peer).await;
        let (parts, body) = response.into_parts();
        let bytes = body
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        (parts.status, parts.headers, bytes)
    }

    /// A JSON request; returns status and parsed JSON (Null if the body is empty).
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> (StatusCode, Value) {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(&body).unwrap()
        };
        let (status, _, body) = self
            .send(method, path, token, Some("application/json"), bytes)
            .await;
        let value = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (status, value)
    }

    pub async fn register(&self, user: &User) -> (StatusCode, Value) {
        self.json(
            Method::POST,
            "/v1/accounts",
            None,
            json!({
                "identity": b64(user.identity.encoded()),
                "device_entry": b64(user.entry0.encoded()),
                "key_bundles": [b64(b"CFKB-opaque")],
            }),
        )
        .await
    }

    pub async fn challenge(&self, handle: &str, device: &SigningSecret) -> Vec<u8> {
        let (status, body) = self
            .json(
                Method::POST,
                "/v1/auth/device/challenge",
                None,
                json!({
                    "handle": handle,
                    "device_key": Id32(device.public_key().to_bytes()),
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let response: ChallengeResponse = serde_json::from_value(body).unwrap();
        response.challenge.0
    }

    pub async fn verify(
        &self,
        handle: &str,
        device: &SigningSecret,
        challenge: &[u8],
        signer: &SigningSecret,
    ) -> (StatusCode, Value) {
        let signature = signer.sign(LOGIN_DOMAIN, &login_message(handle, challenge));
        self.json(
            Method::POST,
            "/v1/auth/device/verify",
            None,
            json!({
                "handle": handle,
                "device_key": Id32(device.public_key().to_bytes()),
                "challenge": b64(challenge),
                "signature": b64(&signature),
            }),
        )
        .await
    }

    /// Logs `user` in with its first device; returns the token.
    pub async fn login(&self, user: &User) -> String {
        let challenge = self.challenge(&user.handle, &user.device).await;
        let (status, body) = self
            .verify(&user.handle, &user.device, &challenge, &user.device)
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let token: TokenResponse = serde_json::from_value(body).unwrap();
        token.token
    }

    /// Registers and logs in.
    pub async fn onboard(&self, user: &User) -> String {
        let (status, body) = self.register(user).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        self.login(user).await
    }
}

pub fn b64(bytes: &[u8]) -> Value {
    serde_json::to_value(Bytes64(bytes.to_vec())).unwrap()
}

pub struct User {
    pub handle: String,
    pub secret: IdentitySecret,
    pub identity: Identity,
    pub device: SigningSecret,
    pub entry0: DeviceEntry,
    pub signer: DeviceSigner,
}

impl User {
    pub fn new(handle: &str) -> Self {
        let secret = IdentitySecret::generate().unwrap();
        let identity = secret.certify(&Handle::parse(handle).unwrap(), 1).unwrap();
        let device = SigningSecret::generate().unwrap();
        let entry0 = DeviceEntry::sign(
            secret.sign_secret(),
            0,
            coffre_crypto::device::DeviceEntryHash::from_bytes([0; 32]),
            DeviceAction::Add,
            &device.public_key(),
            1,
        )
        .unwrap();
        let certificate = DeviceCertificate::try_from(entry0.clone()).unwrap();
        let signer = DeviceSigner::new(
            certificate,
            SigningSecret::from_seed(&device.expose_secret()),
        )
        .unwrap();
        User {
            handle: handle.to_owned(),
            secret,
            identity,
            device,
            entry0,
            signer,
        }
    }
}

pub fn error_code(body: &Value) -> &str {
    body["code"].as_str().unwrap_or("<no code>")
}
