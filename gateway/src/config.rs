//! Gateway configuration: every limit in one struct with a documented default that needs nothing.
//!
//! Loading (TOML file, then `COFFRE_GATEWAY_*` environment overrides, then flags) is
//! [`Config::load`]; the struct itself is plain data so tests build it directly. Every key, its
//! type and its environment variable are listed in [`KEYS`]; defaults are those of
//! [`Config::default`], chosen so that a configuration with no file, no variable and no flag works.

mod load;

pub use load::{KEYS, Key, Kind, Loaded, Overrides};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which layout stores blob bodies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobBackend {
    /// Content-addressed files in the data directory, written durably (the default).
    Files,
    /// Values in the sled database.
    Sled,
}

/// How log lines are formatted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// The whole configuration of one gateway.
#[derive(Clone, Debug)]
pub struct Config {
    /// The data directory: database, blobs, generated certificate. Default `./coffre-data`.
    pub data_dir: PathBuf,
    /// Address to listen on. Default `127.0.0.1:8443`.
    pub listen: SocketAddr,
    /// PEM certificate chain; `None` generates a self-signed one in the data directory.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Extra DNS names or IP addresses the generated self-signed certificate is valid for
    /// (besides `localhost`, `127.0.0.1`, `::1` and a specific listen address).
    pub tls_names: Vec<String>,
    /// Log filter in `tracing_subscriber::EnvFilter` syntax. Default `info`.
    pub log_filter: String,
    /// Log line format. Default text.
    pub log_format: LogFormat,
    /// Blob body layout.
    pub blob_backend: BlobBackend,
    /// Limits and timeouts.
    pub limits: Limits,
    /// Default quota of new accounts, in bytes.
    pub default_quota_bytes: u64,
    /// Session token lifetime.
    pub token_ttl: Duration,
    /// Login challenge lifetime.
    pub challenge_ttl: Duration,
    /// Blobs younger than this are never pruned (protects uploads not yet committed).
    pub prune_grace: Duration,
    /// Most pending invitations per inbox.
    pub max_inbox: usize,
    /// Requests per second allowed per account (token bucket refill rate).
    pub rate_per_account: f64,
    /// Burst allowed per account.
    pub burst_per_account: f64,
    /// Requests per second allowed per client address.
    pub rate_per_address: f64,
    /// Burst allowed per client address.
    pub burst_per_address: f64,
}

/// Connection, time and size limits. Every one is explicit; none is left to a library default.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Most simultaneous connections; further ones wait in the kernel backlog.
    pub max_connections: usize,
    /// Most simultaneous connections from one IPv4 address or IPv6 /64; one more is closed at once.
    pub max_connections_per_address: usize,
    /// Time allowed for the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Time allowed to receive a request's headers (HTTP/1).
    pub header_read_timeout: Duration,
    /// A connection with no request in flight is closed after this.
    pub idle_timeout: Duration,
    /// Time allowed for one whole request, body included.
    pub request_timeout: Duration,
    /// On shutdown, how long in-flight requests may take to finish before connections are cut.
    pub shutdown_grace: Duration,
    /// Most header bytes (HTTP/1 buffer, HTTP/2 header list size).
    pub max_header_bytes: usize,
    /// Most headers per request (HTTP/1).
    pub max_headers: usize,
    /// Most concurrent HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// Most HTTP/2 stream resets a client may cause before the connection is closed.
    pub max_pending_resets: usize,
    /// HTTP/2 flow-control window of one stream: request-body bytes a client may send ahead of
    /// what the handler consumed (memory held per stream at worst).
    pub h2_stream_window: u32,
    /// HTTP/2 flow-control window of one connection (all its streams together): the most
    /// request-body bytes buffered per connection.
    pub h2_connection_window: u32,
    /// Most response bytes buffered per HTTP/2 stream for a slow reader.
    pub h2_max_send_buffer: usize,
    /// Largest JSON body.
    pub max_json_bytes: u64,
    /// Largest blob body.
    pub max_blob_bytes: u64,
    /// Largest blob batch (request of `blobs/batch`, answer of `blobs/fetch`); read whole into
    /// memory, so it also bounds the memory of one batch request.
    pub max_batch_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 1024,
            max_connections_per_address: 128,
            tls_handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            max_header_bytes: 16 * 1024,
            max_headers: 64,
            max_concurrent_streams: 64,
            max_pending_resets: 32,
            h2_stream_window: 1024 * 1024,
            h2_connection_window: 2 * 1024 * 1024,
            h2_max_send_buffer: 256 * 1024,
            max_json_bytes: coffre_protocol::MAX_JSON_BYTES,
            max_blob_bytes: coffre_protocol::MAX_BLOB_BYTES,
            max_batch_bytes: coffre_protocol::batch::MAX_BATCH_BYTES,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("coffre-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8443)),
            tls_cert: None,
            tls_key: None,
            tls_names: Vec::new(),
            log_filter: "info".to_owned(),
            log_format: LogFormat::Text,
            blob_backend: BlobBackend::Files,
            limits: Limits::default(),
            default_quota_bytes: 10 * 1024 * 1024 * 1024,
            token_ttl: Duration::from_secs(3600),
            challenge_ttl: Duration::from_secs(60),
            prune_grace: Duration::from_secs(24 * 3600),
            max_inbox: 1000,
            rate_per_account: 2000.0,
            burst_per_account: 10000.0,
            rate_per_address: 4000.0,
            burst_per_address: 20000.0,
        }
    }
}
