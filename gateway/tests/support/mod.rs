//! Test support: start the real `coffre-gateway` binary on 127.0.0.1:0 and talk to it over TLS.
//!
//! [`Gateway::start`] runs `coffre-gateway serve --listen 127.0.0.1:0` in a fresh temporary data
//! directory, waits for its `listening on https://ADDR` line on stderr, and records the pin it
//! printed. [`Gateway::client_config`] trusts only that gateway's generated certificate (through
//! ordinary webpki verification with the certificate as the only root, so host names are checked
//! too). End-to-end test packages can include this file with `#[path]`.

#![allow(dead_code)] // Each test crate uses a different subset.
#![allow(clippy::unwrap_used)] // A panic in a test helper is a failed test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How long a gateway may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Options for [`Gateway::start_with`].
#[derive(Debug, Default, Clone)]
pub struct Options {
    /// Data directory to use instead of a fresh temporary one (for restart tests).
    pub data_dir: Option<PathBuf>,
    /// Extra environment variables (e.g. `COFFRE_GATEWAY_HEADER_READ_TIMEOUT_SECS`).
    pub env: Vec<(String, String)>,
    /// Extra arguments after `serve`.
    pub args: Vec<String>,
}

impl Options {
    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }
}

/// A running gateway process. Killed (SIGKILL) on drop if still running.
#[derive(Debug)]
pub struct Gateway {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// The pin it printed (lowercase hex SHA-256 of the certificate DER).
    pub pin: String,
    /// The colon-separated uppercase fingerprint it printed.
    pub fingerprint: String,
    /// Whether it said it generated its certificate (first run).
    pub first_run: bool,
    /// Every stderr line so far (startup message and logs).
    pub stderr: Arc<Mutex<Vec<String>>>,
    _temp: Option<tempfile::TempDir>,
}

impl Gateway {
    /// Starts a gateway in a fresh temporary data directory.
    pub fn start() -> Gateway {
        Gateway::start_with(Options::default())
    }

    /// Starts a gateway with options.
    pub fn start_with(options: Options) -> Gateway {
        let (temp, data_dir) = match options.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let mut command = Command::new(env!("CARGO_BIN_EXE_coffre-gateway"));
        command
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&data_dir)
            .args(&options.args)
            .env_remove("RUST_LOG")
            .env("COFFRE_GATEWAY_LOG", "debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in &options.env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("spawn coffre-gateway");
        let stderr = child.stderr.take().expect("piped stderr");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut addr, mut pin, mut fingerprint, mut first_run) = (None, None, None, false);
        while addr.is_none() || pin.is_none() || fingerprint.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "gateway did not start; stderr:\n{}",
                    lines.lock().unwrap().join("\n")
                ),
            };
            let field = |prefix: &str| {
                line.strip_prefix("coffre-gateway: ")
                    .and_then(|rest| rest.strip_prefix(prefix))
                    .map(str::to_owned)
            };
            if let Some(a) = field("listening on https://") {
                addr = Some(a.parse().expect("listening address"));
            }
            if let Some(p) = field("pin ") {
                pin = Some(p);
            }
            if let Some(f) = field("certificate SHA-256 fingerprint ") {
                fingerprint = Some(f);
            }
        }
        // The first-run line follows the pin line; give it a moment.
        std::thread::sleep(Duration::from_millis(50));
        while let Ok(line) = rx.try_recv() {
            first_run |= line.starts_with("coffre-gateway: first run:");
        }
        Gateway {
            child,
            addr: addr.expect("address"),
            data_dir,
            pin: pin.expect("pin"),
            fingerprint: fingerprint.expect("fingerprint"),
            first_run,
            stderr: lines,
            _temp: temp,
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The generated certificate.
    pub fn cert_path(&self) -> PathBuf {
        self.data_dir.join("tls").join("cert.pem")
    }

    /// Sends SIGTERM (through `kill`, no libc needed).
    pub fn signal_term(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, at most `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL (no chance to flush or clean up), then waits for the process to be reaped.
    pub fn kill(&mut self) -> ExitStatus {
        if let Ok(None) = self.child.try_wait() {
            self.child.kill().expect("SIGKILL the gateway");
        }
        self.child.wait().expect("wait for the killed gateway")
    }

    /// SIGTERM, then the exit status (panics if it does not exit within 30 s).
    pub fn stop(&mut self) -> ExitStatus {
        self.signal_term();
        self.wait_timeout(Duration::from_secs(30))
            .expect("gateway did not exit after SIGTERM")
    }

    /// A TLS client trusting only this gateway's certificate, offering `alpn`.
    pub fn client_config(&self, alpn: &[&[u8]]) -> Arc<ClientConfig> {
        client_config_for(&self.cert_path(), alpn, &[&rustls::version::TLS13])
    }

    /// Opens a TCP+TLS connection offering `alpn`.
    pub async fn connect(&self, alpn: &[&[u8]]) -> std::io::Result<TlsStream<TcpStream>> {
        connect(self.addr, self.client_config(alpn)).await
    }

    /// An HTTP/1.1 client connection (ALPN `http/1.1`).
    pub async fn http1(&self) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
        self.http1_with().await
    }

    /// An HTTP/1.1 client connection (ALPN `http/1.1`) sending request bodies of type `B`.
    pub async fn http1_with<B>(&self) -> hyper::client::conn::http1::SendRequest<B>
    where
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let tls = self.connect(&[b"http/1.1"]).await.expect("connect");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .expect("http1 handshake");
        tokio::spawn(connection);
        sender
    }

    /// An HTTP/2 client connection (ALPN `h2`) and the task driving it.
    pub async fn http2(
        &self,
    ) -> (
        hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
        tokio::task::JoinHandle<hyper::Result<()>>,
    ) {
        let tls = self.connect(&[b"h2"]).await.expect("connect");
        assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
        let (sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                .await
                .expect("http2 handshake");
        (sender, tokio::spawn(connection))
    }

    /// Everything the gateway wrote to stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A TLS client configuration trusting only the certificate(s) in `cert_pem`, for `versions`.
pub fn client_config_for(
    cert_pem: &Path,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    let pem = std::fs::read(cert_pem).expect("read cert.pem");
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots.add(cert.expect("cert PEM")).expect("add root");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Opens TCP then TLS (server name `localhost`) to `addr`.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    TlsConnector::from(config).connect(name, tcp).await
}

/// A GET request for `path` (with the `Host` header HTTP/1.1 needs).
pub fn get(path: &str) -> Request<Empty<Bytes>> {
    Request::get(path)
        .header("host", "localhost")
        .body(Empty::new())
        .expect("request")
}

/// Status and whole body of a response.
pub async fn read_response(response: http::Response<hyper::body::Incoming>) -> (StatusCode, Bytes) {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    (status, body)
}

/// SHA-256 of the first certificate in a PEM file, as lowercase hex.
pub fn pem_sha256_hex(cert_pem: &Path) -> String {
    use sha2::Digest;
    let pem = std::fs::read(cert_pem).expect("read cert.pem");
    let der = rustls_pemfile::certs(&mut &pem[..])
        .next()
        .expect("a certificate")
        .expect("cert PEM");
    sha2::Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
