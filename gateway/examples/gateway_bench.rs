//! End-to-end benchmark (not a test) of the real `coffre-gateway` binary over TLS:
//! `bash bench/gateway.sh [N_BLOBS]`, or, once the binary is built,
//! `cargo run --release -p coffre-gateway --example gateway_bench [N_BLOBS]`.
//!
//! For each blob backend (files, then sled) it starts a fresh gateway process on 127.0.0.1:0 with
//! a fresh data directory, registers an account, logs a device in (challenge, verify), creates a
//! space (real signed genesis + rotate entries from `coffre-crypto`), then:
//!
//! 1. uploads N (default 256) fresh 1 MiB blobs with 1 client, then N more with 4 concurrent
//!    clients, then N more with 16 concurrent clients. Bodies are pseudo-random (a BLAKE3 XOF
//!    seeded from the OS random generator), ids are BLAKE3 of the body; the bodies of a phase are
//!    generated before its clock starts;
//! 2. downloads the 1-client set back with 1 client and the 16-client set with 16 clients,
//!    hashing every body while it streams (inside the timed section: clients verify) and checking
//!    it against its id and size;
//! 3. samples the gateway's `VmRSS` every 50 ms in a thread (peak per row) and reads its `VmHWM`
//!    at the end;
//! 4. measures the data directory after each upload phase: allocated bytes (`st_blocks * 512`)
//!    and apparent bytes (file lengths), summed recursively, divided by the bytes stored so far;
//! 5. measures the disk's own durable write rate for the same bytes in the same filesystem: our
//!    own loop writing each body to its own new file and calling `fsync` on it (what
//!    `dd bs=1M count=1 conv=fsync` does), one writer. A shared virtual disk's fsync rate swings
//!    by 5x within a minute, so each upload phase is cut into 8 slices and every slice is written
//!    by the baseline right before the gateway uploads it: the ratio compares like with like. In
//!    the 4-client phase two more floors are interleaved the same way and printed below the
//!    table: "strict" (temporary name, `fsync`, rename, `fsync` of the directory — what a
//!    crash-safe content-addressed layout pays at the least) and "4 writers" (the plain loop in 4
//!    threads, i.e. the disk at the upload's concurrency).
//!
//! Each client is its own TCP + TLS 1.3 connection speaking **HTTP/2** (ALPN `h2`, what the SDK
//! negotiates), one request at a time; the clients of a phase share one work queue. MB/s are
//! 10^6 bytes per second. The client runs in this process on the same machine, so its TLS and
//! hashing compete with the gateway for the same cores.
//!
//! Environment:
//! - `COFFRE_GATEWAY_BIN`: the gateway binary; default `coffre-gateway` next to this example's
//!   directory (`target/release/coffre-gateway`). `cargo run --example` does not build binaries,
//!   so build it first (`bench/gateway.sh` does both).
//! - `COFFRE_BENCH_BACKENDS`: comma-separated subset of `files,sled` (default both).
//! - `COFFRE_BENCH_DIR`: where the data directories and baseline files go; default
//!   `/tmp/coffre-gateway-bench` unless `/tmp` is a tmpfs, then `target/gateway-bench`.
//!
//! Also printed per phase: the gateway's and this process's CPU seconds (`/proc/<pid>/stat`).
//!
//! The gateway runs with a 1 TiB quota, rate limits raised far out of the way (so a fast phase is
//! never answered 429) and log level `warn`; everything else is the default configuration.

//!
//! Measured once (2 shared cores, load 3.1 before and after, ext4 on a virtio disk with a
//! write-back cache, `/tmp`; `--release`, 256 blobs per phase, HTTP/2):
//!
//! ```text
//! backend | clients | upload MB/s | download MB/s | ratio to durable baseline | gateway peak RSS MiB | disk/stored (allocated, apparent)
//! files   |       1 |       206.4 |         586.8 |                      0.25 |                 12.9 | 1.001, 1.001
//! files   |       4 |       454.6 |             - |                      1.17 |                 21.8 | 1.001, 1.001
//! files   |      16 |       509.9 |         981.3 |                      0.52 |                 42.2 | 1.001, 1.001
//! sled    |       1 |       185.2 |         557.2 |                      0.22 |                290.7 | 2.369, 2.364
//! sled    |       4 |       151.6 |             - |                      0.46 |                560.1 | 2.449, 2.444
//! sled    |      16 |       181.4 |         279.0 |                      0.60 |                954.9 | 2.399, 2.394
//! ```
//!
//! Files (the default) meets the three goals: 4-client upload at 1.17x the 1-writer durable
//! baseline (from 0.98x, with `perf` attached, to 1.71x over five interleaved runs at load 3 to
//! 7; 0.65x a 4-writer baseline), peak RSS 42 MiB that grows with concurrent requests, not with stored data, and
//! 1.001x disk. Sled misses memory (resident set grows with the data: about 300 MiB per 256 MiB
//! stored, despite its 16 MiB cache setting) and disk (2.4x), as `blob_backends` found.
//!
//! Re-measured 2026-12-03 (files only, load 0.8-2): 4 clients at 304.5 MB/s = 0.88x the 1-writer
//! baseline with 256 KiB blob-file writes; 562.7 MB/s = 1.24x with 128 KiB writes, where the
//! gateway's CPU for the 4-client phase fell from 1.19 s to 0.53 s. VmHWM 41-44 MiB, disk 1.001x.

#![allow(missing_docs)]

use std::fs::{self, File};
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use bytes::Bytes;
use coffre_crypto::device::DeviceSigner;
use coffre_crypto::device::{DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash};
use coffre_crypto::identity::{Handle, IdentitySecret};
use coffre_crypto::keys::SigningSecret;
use coffre_crypto::membership::MembershipLog;
use coffre_protocol::types::{Bytes64, ChallengeResponse, Id32, TokenResponse};
use coffre_protocol::{LOGIN_DOMAIN, login_message};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, RootCertStore};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Result<T> = std::result::Result<T, BoxError>;

const BLOB: usize = 1 << 20;
const START_TIMEOUT: Duration = Duration::from_secs(30);
const RSS_PERIOD: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------------------------
// Small system helpers.

/// A `kB` field of `/proc/<pid>/status`, in KiB (0 if absent).
fn status_kib(pid: &str, field: &str) -> u64 {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat` fields 14 and 15).
fn cpu_seconds(pid: &str, ticks_per_second: f64) -> f64 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The command name (field 2) may hold spaces; fields are counted after its closing ')'.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // After ')': field 3 is index 0, so fields 14 and 15 are indexes 11 and 12.
    (tick(11) + tick(12)) / ticks_per_second
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".into())
}

/// (apparent bytes, allocated bytes) of everything under `dir`, recursively.
fn dir_size(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated) = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            let (a, b) = dir_size(&entry.path())?;
            apparent += a;
            allocated += b;
        } else {
            apparent += metadata.len();
            allocated += metadata.blocks() * 512;
        }
    }
    Ok((apparent, allocated))
}

/// The mount (device, mount point, type) holding `path`, from `/proc/mounts`.
fn filesystem_of(path: &Path) -> String {
    let path = fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mounts = fs::read_to_string("/proc/mounts").unwrap_or_default();
    mounts
        .lines()
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let (device, point, kind) = (fields.next()?, fields.next()?, fields.next()?);
            path.starts_with(point).then(|| {
                (
                    point.len(),
                    format!("{kind} on {device} mounted at {point}"),
                )
            })
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, text)| text)
        .unwrap_or_else(|| "unknown filesystem".into())
}

fn is_tmpfs(path: &Path) -> bool {
    filesystem_of(path).starts_with("tmpfs ")
}

// ---------------------------------------------------------------------------------------------
// Blobs.

/// One phase's blobs: (id hex, body).
type Blobs = Arc<Vec<(String, Bytes)>>;

/// `count` fresh 1 MiB bodies from a BLAKE3 XOF keyed with OS randomness, with their ids.
fn make_blobs(count: usize) -> Result<Blobs> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| format!("OS randomness: {e}"))?;
    let mut xof = blake3::Hasher::new_keyed(&key).finalize_xof();
    let mut blobs = Vec::with_capacity(count);
    for _ in 0..count {
        let mut body = vec![0u8; BLOB];
        xof.fill(&mut body);
        let id = blake3::hash(&body).to_hex().to_string();
        blobs.push((id, Bytes::from(body)));
    }
    Ok(Arc::new(blobs))
}

// ---------------------------------------------------------------------------------------------
// The durable-write baselines.

/// Each body to its own new file `f<n>` in `dir`, then `fsync` on it (what
/// `dd bs=1M count=1 conv=fsync` does), one writer. `first` numbers the files.
fn baseline_plain(dir: &Path, items: &[(String, Bytes)], first: usize) -> Result<Duration> {
    let start = Instant::now();
    for (n, (_, body)) in items.iter().enumerate() {
        let mut file = File::create(dir.join(format!("f{}", first + n)))?;
        file.write_all(body)?;
        file.sync_all()?;
    }
    Ok(start.elapsed())
}

/// [`baseline_plain`] with `threads` writers taking files from one queue: the disk's durable
/// write rate at the upload's concurrency (ext4 lets concurrent fsyncs share journal commits).
fn baseline_parallel(
    dir: &Path,
    items: &[(String, Bytes)],
    first: usize,
    threads: usize,
) -> Result<Duration> {
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> std::io::Result<()> {
                    loop {
                        let n = next.fetch_add(1, Ordering::Relaxed);
                        let Some((_, body)) = items.get(n) else {
                            return Ok(());
                        };
                        let mut file = File::create(dir.join(format!("f{}", first + n)))?;
                        file.write_all(body)?;
                        file.sync_all()?;
                    }
                })
            })
            .collect();
        for worker in workers {
            worker
                .join()
                .map_err(|_| "a baseline writer thread panicked")??;
        }
        Ok::<(), BoxError>(())
    })?;
    Ok(start.elapsed())
}

/// Crash-safe publication, one writer: temporary name, `fsync`, rename, `fsync` of the directory.
fn baseline_strict(dir: &Path, items: &[(String, Bytes)], first: usize) -> Result<Duration> {
    let dir_handle = File::open(dir)?;
    let start = Instant::now();
    for (n, (_, body)) in items.iter().enumerate() {
        let name = format!("f{}", first + n);
        let tmp = dir.join(format!("{name}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(body)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(name))?;
        dir_handle.sync_all()?;
    }
    Ok(start.elapsed())
}

// ---------------------------------------------------------------------------------------------
// The gateway process.

struct Gateway {
    child: Child,
    addr: SocketAddr,
    pid: String,
    data_dir: PathBuf,
    tls: Arc<ClientConfig>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Gateway {
    fn start(bin: &Path, data_dir: &Path, backend: &str) -> Result<Gateway> {
        let mut child = Command::new(bin)
            .arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(data_dir)
            .env_remove("RUST_LOG")
            .env("COFFRE_GATEWAY_LOG", "warn")
            .env("COFFRE_GATEWAY_BLOB_BACKEND", backend)
            .env("COFFRE_GATEWAY_QUOTA_BYTES", (1u64 << 40).to_string())
            .env("COFFRE_GATEWAY_RATE_PER_ACCOUNT", "1000000")
            .env("COFFRE_GATEWAY_BURST_PER_ACCOUNT", "1000000")
            .env("COFFRE_GATEWAY_RATE_PER_ADDRESS", "1000000")
            .env("COFFRE_GATEWAY_BURST_PER_ADDRESS", "1000000")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let stderr = child
            .stderr
            .take()
            .ok_or("the gateway's stderr is not piped")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        {
            let lines = Arc::clone(&lines);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let _ = tx.send(line.clone());
                    lines
                        .lock()
                        .unwrap_or_else(|poisoned| poisoned.into_inner())
                        .push(line);
                }
            });
        }
        let pid = child.id().to_string();
        let mut gateway = Gateway {
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            pid,
            data_dir: data_dir.to_path_buf(),
            tls: Arc::new(
                ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_protocol_versions(&[&rustls::version::TLS13])?
                .with_root_certificates(RootCertStore::empty())
                .with_no_client_auth(),
            ),
            stderr: lines,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        let (mut addr, mut pin) = (None, None);
        while addr.is_none() || pin.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                return Err(format!("gateway did not start:\n{}", gateway.stderr_text()).into());
            };
            let rest = line.strip_prefix("coffre-gateway: ").unwrap_or("");
            if let Some(a) = rest.strip_prefix("listening on https://") {
                addr = Some(a.parse::<SocketAddr>()?);
            }
            if let Some(p) = rest.strip_prefix("pin ") {
                pin = Some(p.to_owned());
            }
        }
        gateway.addr = addr.ok_or("loop ends only with an address")?;
        let pin = pin.ok_or("loop ends only with a pin")?;
        gateway.tls = pinned_client(&data_dir.join("tls").join("cert.pem"), &pin)?;
        Ok(gateway)
    }

    fn stderr_text(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .join("\n")
    }

    fn rss_kib(&self) -> u64 {
        status_kib(&self.pid, "VmRSS:")
    }

    fn hwm_kib(&self) -> u64 {
        status_kib(&self.pid, "VmHWM:")
    }

    /// SIGTERM (through `kill`), then wait up to 30 s.
    fn stop(mut self) -> Result<()> {
        Command::new("kill").arg("-TERM").arg(&self.pid).status()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                if !status.success() {
                    eprintln!("gateway exited with {status}:\n{}", self.stderr_text());
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err("the gateway did not exit within 30 s of SIGTERM".into())
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

/// A TLS 1.3 client (ALPN `h2`) trusting only the generated certificate, after checking that its
/// SHA-256 is the pin the gateway printed.
fn pinned_client(cert_pem: &Path, pin: &str) -> Result<Arc<ClientConfig>> {
    use sha2::Digest as _;
    let pem = fs::read(cert_pem)?;
    let mut roots = RootCertStore::empty();
    let mut first = true;
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        let cert = cert?;
        if first {
            let hex: String = sha2::Sha256::digest(cert.as_ref())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if hex != pin {
                return Err(
                    format!("certificate SHA-256 {hex} is not the printed pin {pin}").into(),
                );
            }
            first = false;
        }
        roots.add(cert)?;
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

// ---------------------------------------------------------------------------------------------
// HTTP/2 client.

type Sender = SendRequest<Full<Bytes>>;

async fn connect(addr: SocketAddr, tls: Arc<ClientConfig>) -> Result<Sender> {
    let tcp = TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost")?;
    let tls = TlsConnector::from(tls).connect(name, tcp).await?;
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Err("the gateway did not negotiate h2".into());
    }
    let (sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

fn request(
    method: Method,
    path: &str,
    token: Option<&str>,
    content_type: Option<&str>,
    body: Bytes,
) -> Result<Request<Full<Bytes>>> {
    let mut builder = Request::builder()
        .method(method)
        .uri(format!("https://localhost{path}"))
        .header("content-length", body.len());
    if let Some(token) = token {
        builder = builder.header("authorization", format!("Bearer {token}"));
    }
    if let Some(content_type) = content_type {
        builder = builder.header("content-type", content_type);
    }
    Ok(builder.body(Full::new(body))?)
}

async fn send_json(
    sender: &mut Sender,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> Result<(StatusCode, Value)> {
    let bytes = if body.is_null() {
        Bytes::new()
    } else {
        Bytes::from(serde_json::to_vec(&body)?)
    };
    sender.ready().await?;
    let response = sender
        .send_request(request(
            method,
            path,
            token,
            Some("application/json"),
            bytes,
        )?)
        .await?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)?
    };
    Ok((status, value))
}

fn b64(bytes: &[u8]) -> Result<Value> {
    Ok(serde_json::to_value(Bytes64(bytes.to_vec()))?)
}

fn expect_status(what: &str, got: StatusCode, want: StatusCode, body: &Value) -> Result<()> {
    if got == want {
        Ok(())
    } else {
        Err(format!("{what}: expected {want}, got {got}: {body}").into())
    }
}

/// Registers `bench`, logs its device in and creates a space; returns (token, space id hex).
async fn onboard(addr: SocketAddr, tls: Arc<ClientConfig>) -> Result<(String, String)> {
    let mut sender = connect(addr, tls).await?;
    let handle = "bench";
    let secret = IdentitySecret::generate()?;
    let identity = secret.certify(&Handle::parse(handle)?, 1)?;
    let device = SigningSecret::generate()?;
    let entry0 = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device.public_key(),
        1,
    )?;
    let certificate = DeviceCertificate::try_from(entry0.clone())?;
    let signer = DeviceSigner::new(
        certificate,
        SigningSecret::from_seed(&device.expose_secret()),
    )?;
    let (status, body) = send_json(
        &mut sender,
        Method::POST,
        "/v1/accounts",
        None,
        json!({
            "identity": b64(identity.encoded())?,
            "device_entry": b64(entry0.encoded())?,
            "key_bundles": [b64(b"CFKB-opaque")?],
        }),
    )
    .await?;
    expect_status("register", status, StatusCode::CREATED, &body)?;
    let device_key = Id32(device.public_key().to_bytes());
    let (status, body) = send_json(
        &mut sender,
        Method::POST,
        "/v1/auth/device/challenge",
        None,
        json!({ "handle": handle, "device_key": device_key }),
    )
    .await?;
    expect_status("challenge", status, StatusCode::OK, &body)?;
    let challenge: ChallengeResponse = serde_json::from_value(body)?;
    let signature = device.sign(LOGIN_DOMAIN, &login_message(handle, &challenge.challenge.0));
    let (status, body) = send_json(
        &mut sender,
        Method::POST,
        "/v1/auth/device/verify",
        None,
        json!({
            "handle": handle,
            "device_key": device_key,
            "challenge": b64(&challenge.challenge.0)?,
            "signature": b64(&signature)?,
        }),
    )
    .await?;
    expect_status("verify", status, StatusCode::OK, &body)?;
    let token: TokenResponse = serde_json::from_value(body)?;
    let token = token.token;

    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| format!("OS randomness: {e}"))?;
    let (log, _key) = MembershipLog::create(&identity, &secret, &signer, salt)?;
    let (status, body) = send_json(
        &mut sender,
        Method::POST,
        "/v1/spaces",
        Some(&token),
        json!({ "genesis": b64(log.entries()[0].encoded())? }),
    )
    .await?;
    expect_status("create space", status, StatusCode::CREATED, &body)?;
    let space = log.space_id().to_hex();
    if body["space_id"].as_str() != Some(space.as_str()) {
        return Err(format!("space id {body} is not the genesis hash {space}").into());
    }
    let (status, body) = send_json(
        &mut sender,
        Method::POST,
        &format!("/v1/spaces/{space}/members"),
        Some(&token),
        json!({ "entry": b64(log.entries()[1].encoded())? }),
    )
    .await?;
    expect_status("rotate", status, StatusCode::CREATED, &body)?;
    Ok((token, space))
}

async fn connect_all(
    addr: SocketAddr,
    tls: &Arc<ClientConfig>,
    clients: usize,
) -> Result<Vec<Sender>> {
    let mut senders = Vec::with_capacity(clients);
    for _ in 0..clients {
        senders.push(connect(addr, Arc::clone(tls)).await?);
    }
    Ok(senders)
}

/// Times the connected clients taking the blobs of `range` from one shared queue.
async fn run_phase(
    senders: &[Sender],
    work: Arc<dyn Fn(Sender, usize) -> PhaseFuture + Send + Sync>,
    range: std::ops::Range<usize>,
) -> Result<Duration> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(senders.len());
    for sender in senders {
        let (next, work, sender) = (Arc::clone(&next), Arc::clone(&work), sender.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = sender;
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= end {
                    return Ok::<(), BoxError>(());
                }
                sender = work(sender, n).await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(start.elapsed())
}

type PhaseFuture = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Sender>> + Send>>;

fn upload_work(
    blobs: Blobs,
    space: String,
    token: String,
) -> Arc<dyn Fn(Sender, usize) -> PhaseFuture + Send + Sync> {
    Arc::new(move |mut sender: Sender, n: usize| {
        let (id, body) = blobs[n].clone();
        let path = format!("/v1/spaces/{space}/blobs/{id}");
        let token = token.clone();
        Box::pin(async move {
            let request = request(
                Method::PUT,
                &path,
                Some(&token),
                Some("application/octet-stream"),
                body,
            )?;
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status();
            let answer = response.into_body().collect().await?.to_bytes();
            if status != StatusCode::CREATED {
                return Err(format!(
                    "PUT {id}: expected 201, got {status}: {}",
                    String::from_utf8_lossy(&answer)
                )
                .into());
            }
            Ok(sender)
        })
    })
}

fn download_work(
    blobs: Blobs,
    space: String,
    token: String,
) -> Arc<dyn Fn(Sender, usize) -> PhaseFuture + Send + Sync> {
    Arc::new(move |mut sender: Sender, n: usize| {
        let id = blobs[n].0.clone();
        let path = format!("/v1/spaces/{space}/blobs/{id}");
        let token = token.clone();
        Box::pin(async move {
            let request = request(Method::GET, &path, Some(&token), None, Bytes::new())?;
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            if response.status() != StatusCode::OK {
                return Err(format!("GET {id}: expected 200, got {}", response.status()).into());
            }
            let mut body = response.into_body();
            let mut hasher = blake3::Hasher::new();
            let mut size = 0usize;
            while let Some(frame) = body.frame().await {
                if let Ok(data) = frame?.into_data() {
                    hasher.update(&data);
                    size += data.len();
                }
            }
            if size != BLOB || hasher.finalize().to_hex().as_str() != id {
                return Err(format!("GET {id}: {size} bytes that do not hash to the id").into());
            }
            Ok(sender)
        })
    })
}

// ---------------------------------------------------------------------------------------------
// RSS sampling.

struct Sampler {
    stop: Arc<AtomicBool>,
    peak_kib: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    fn start(pid: String) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak_kib = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, peak) = (Arc::clone(&stop), Arc::clone(&peak_kib));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(status_kib(&pid, "VmRSS:"), Ordering::Relaxed);
                    std::thread::sleep(RSS_PERIOD);
                }
            })
        };
        Sampler {
            stop,
            peak_kib,
            thread: Some(thread),
        }
    }

    /// The peak since the last call (or the start), then starts a new window at `current`.
    fn take_peak(&self, current: u64) -> u64 {
        self.peak_kib.swap(current, Ordering::Relaxed).max(current)
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// One backend.

struct Row {
    backend: &'static str,
    clients: usize,
    upload_mbs: f64,
    download_mbs: Option<f64>,
    /// The plain durable baseline measured interleaved with this row's upload.
    baseline_mbs: f64,
    peak_rss_mib: f64,
    disk_allocated: f64,
    disk_apparent: f64,
    detail: String,
}

struct BackendResult {
    rows: Vec<Row>,
    /// Strict and 4-writer baselines, interleaved with the 4-client upload.
    baseline_strict_mbs: f64,
    baseline_parallel_mbs: f64,
    hwm_mib: f64,
    idle_rss_mib: f64,
}

/// Each upload phase is cut into this many slices, alternating with the baselines' writes of the
/// same slice, so that both see the same (shared, noisy) disk.
const SLICES: usize = 8;

fn mbs(bytes: usize, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn run_backend(
    runtime: &tokio::runtime::Runtime,
    bin: &Path,
    base: &Path,
    backend: &'static str,
    count: usize,
    ticks: f64,
) -> Result<BackendResult> {
    let data_dir = base.join(format!("data-{backend}"));
    if data_dir.exists() {
        fs::remove_dir_all(&data_dir)?;
    }
    let gateway = Gateway::start(bin, &data_dir, backend)?;
    let result = measure_backend(runtime, &gateway, base, backend, count, ticks);
    if let Err(error) = &result {
        eprintln!(
            "{backend}: {error}\ngateway stderr:\n{}",
            gateway.stderr_text()
        );
    }
    gateway.stop()?;
    fs::remove_dir_all(&data_dir)?;
    result
}

fn measure_backend(
    runtime: &tokio::runtime::Runtime,
    gateway: &Gateway,
    base: &Path,
    backend: &'static str,
    count: usize,
    ticks: f64,
) -> Result<BackendResult> {
    let (addr, tls) = (gateway.addr, Arc::clone(&gateway.tls));
    let (token, space) = runtime.block_on(onboard(addr, Arc::clone(&tls)))?;
    let idle_rss_mib = gateway.rss_kib() as f64 / 1024.0;
    let sampler = Sampler::start(gateway.pid.clone());
    let mut rows = Vec::new();
    let (mut baseline_strict_mbs, mut baseline_parallel_mbs) = (0.0, 0.0);
    let mut stored = 0usize;
    for clients in [1usize, 4, 16] {
        let blobs = make_blobs(count)?;
        let bytes = count * BLOB;
        let senders = runtime.block_on(connect_all(addr, &tls, clients))?;
        let work = upload_work(Arc::clone(&blobs), space.clone(), token.clone());
        let dirs = ["baseline-plain", "baseline-strict", "baseline-parallel"].map(|d| base.join(d));
        for dir in &dirs {
            fs::create_dir_all(dir)?;
        }
        sampler.take_peak(gateway.rss_kib());
        let [mut up, mut plain, mut strict, mut parallel] = [Duration::ZERO; 4];
        let (mut gateway_cpu, mut client_cpu) = (0.0, 0.0);
        for slice in 0..SLICES {
            let range = slice * count / SLICES..(slice + 1) * count / SLICES;
            let items = &blobs[range.clone()];
            plain += baseline_plain(&dirs[0], items, range.start)?;
            if clients == 4 {
                strict += baseline_strict(&dirs[1], items, range.start)?;
                parallel += baseline_parallel(&dirs[2], items, range.start, 4)?;
            }
            let cpu_before = cpu_seconds(&gateway.pid, ticks);
            let self_before = cpu_seconds("self", ticks);
            up += runtime.block_on(run_phase(&senders, Arc::clone(&work), range))?;
            gateway_cpu += cpu_seconds(&gateway.pid, ticks) - cpu_before;
            client_cpu += cpu_seconds("self", ticks) - self_before;
        }
        for dir in &dirs {
            fs::remove_dir_all(dir)?;
        }
        if clients == 4 {
            baseline_strict_mbs = mbs(bytes, strict);
            baseline_parallel_mbs = mbs(bytes, parallel);
        }
        stored += bytes;
        let (apparent, allocated) = dir_size(&gateway.data_dir)?;
        let mut detail = format!(
            "{clients:>2} clients: upload {:.2} s wall, gateway CPU {:.2} s, client CPU {:.2} s; \
             interleaved baseline {:.2} s",
            up.as_secs_f64(),
            gateway_cpu,
            client_cpu,
            plain.as_secs_f64(),
        );
        // Downloads read back the set just uploaded, at 1 and 16 clients.
        let download_mbs = if clients == 4 {
            None
        } else {
            let cpu_before = cpu_seconds(&gateway.pid, ticks);
            let self_before = cpu_seconds("self", ticks);
            let down = runtime.block_on(run_phase(
                &senders,
                download_work(Arc::clone(&blobs), space.clone(), token.clone()),
                0..count,
            ))?;
            detail.push_str(&format!(
                "; download {:.2} s wall, gateway CPU {:.2} s, client CPU {:.2} s",
                down.as_secs_f64(),
                cpu_seconds(&gateway.pid, ticks) - cpu_before,
                cpu_seconds("self", ticks) - self_before
            ));
            Some(mbs(bytes, down))
        };
        let peak_rss_mib = sampler.take_peak(gateway.rss_kib()) as f64 / 1024.0;
        rows.push(Row {
            backend,
            clients,
            upload_mbs: mbs(bytes, up),
            download_mbs,
            baseline_mbs: mbs(bytes, plain),
            peak_rss_mib,
            disk_allocated: allocated as f64 / stored as f64,
            disk_apparent: apparent as f64 / stored as f64,
            detail,
        });
    }
    drop(sampler);
    Ok(BackendResult {
        rows,
        baseline_strict_mbs,
        baseline_parallel_mbs,
        hwm_mib: gateway.hwm_kib() as f64 / 1024.0,
        idle_rss_mib,
    })
}

// ---------------------------------------------------------------------------------------------

fn gateway_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("COFFRE_GATEWAY_BIN") {
        return Ok(PathBuf::from(path));
    }
    // This example is target/<profile>/examples/gateway_bench; the binary is target/<profile>/.
    let exe = std::env::current_exe()?;
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or("the example's path has no profile directory")?;
    let bin = profile_dir.join("coffre-gateway");
    if !bin.is_file() {
        return Err(format!(
            "{} not found: build it first (`cargo build --release -p coffre-gateway`, or run \
             bench/gateway.sh), or set COFFRE_GATEWAY_BIN",
            bin.display()
        )
        .into());
    }
    Ok(bin)
}

fn bench_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("COFFRE_BENCH_DIR") {
        return PathBuf::from(dir);
    }
    if is_tmpfs(Path::new("/tmp")) {
        PathBuf::from("target/gateway-bench")
    } else {
        PathBuf::from("/tmp/coffre-gateway-bench")
    }
}

fn main() -> Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map(|c| c.parse())
        .transpose()?
        .unwrap_or(256);
    let bin = gateway_binary()?;
    let base = bench_dir();
    fs::create_dir_all(&base)?;
    if is_tmpfs(&base) {
        eprintln!(
            "warning: {} is a tmpfs; fsync costs nothing there",
            base.display()
        );
    }
    let ticks = clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let load_before = loadavg();
    println!(
        "gateway_bench: {count} x 1 MiB blobs per phase; HTTP/2 over TLS 1.3, one connection per \
         client; gateway {}",
        bin.display()
    );
    println!(
        "data and baseline dir {} ({}); {} cores; load before {load_before}",
        base.display(),
        filesystem_of(&base),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    let mut results = Vec::new();
    let only = std::env::var("COFFRE_BENCH_BACKENDS").unwrap_or_default();
    for backend in ["files", "sled"] {
        if !only.is_empty() && !only.split(',').any(|b| b.trim() == backend) {
            continue;
        }
        results.push(run_backend(&runtime, &bin, &base, backend, count, ticks)?);
    }
    let load_after = loadavg();
    println!();
    println!(
        "backend | clients | upload MB/s | download MB/s | ratio to durable baseline | gateway peak RSS MiB | disk/stored (allocated, apparent)"
    );
    println!(
        "--------|---------|-------------|---------------|---------------------------|----------------------|-----------------------------------"
    );
    for result in &results {
        for row in &result.rows {
            let download = row
                .download_mbs
                .map_or_else(|| "-".to_owned(), |d| format!("{d:.1}"));
            println!(
                "{:<7} | {:>7} | {:>11.1} | {:>13} | {:>25.2} | {:>20.1} | {:.3}, {:.3}",
                row.backend,
                row.clients,
                row.upload_mbs,
                download,
                row.upload_mbs / row.baseline_mbs,
                row.peak_rss_mib,
                row.disk_allocated,
                row.disk_apparent
            );
        }
    }
    println!();
    for result in &results {
        let backend = result.rows.first().map_or("?", |r| r.backend);
        if let Some(row) = result.rows.iter().find(|r| r.clients == 4) {
            println!(
                "{backend}: 4-client phase, interleaved baselines: 1 writer (write + fsync per \
                 file) {:.1} MB/s; strict (tmp + fsync + rename + dir fsync) {:.1} MB/s; 4 \
                 writers {:.1} MB/s",
                row.baseline_mbs, result.baseline_strict_mbs, result.baseline_parallel_mbs,
            );
            println!(
                "{backend}: 4-client upload / 1 writer {:.2}, / strict {:.2}, / 4 writers {:.2}",
                row.upload_mbs / row.baseline_mbs,
                row.upload_mbs / result.baseline_strict_mbs,
                row.upload_mbs / result.baseline_parallel_mbs,
            );
        }
        println!(
            "{backend}: gateway RSS after login {:.1} MiB, VmHWM at end {:.1} MiB",
            result.idle_rss_mib, result.hwm_mib
        );
        for row in &result.rows {
            println!("{backend}:   {}", row.detail);
        }
    }
    println!("load (1/5/15 min) before {load_before}, after {load_after}");
    Ok(())
}
