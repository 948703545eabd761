//! The application state shared by every request: configuration, stores, metrics, rate limiters
//! and caches.
//!
//! Invariant: the stores are the source of truth. Everything else here (caches, rate-limit buckets)
//! may be lost at any time — on restart, or when a cache entry is found stale — without changing
//! any answer except its latency.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::service::accounts::AccountCache;
use crate::service::blobs::SpaceLocks;
use crate::service::ratelimit::RateLimiter;
use crate::service::spaces::LogCache;
use crate::store::{BlobStore, MetaStore};

/// `blobs/fetch` answers in memory at once, from assembly until their last byte is sent or the
/// answer is dropped (see `App::batch_permits`); further ones wait.
pub const MAX_BATCHES_IN_MEMORY: usize = 4;

/// Milliseconds since the Unix epoch; replaceable in tests to move time forward.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// The wall clock.
pub fn system_clock() -> Clock {
    Arc::new(|| {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    })
}

/// Everything a request handler can reach.
pub struct App {
    /// The configuration (limits, quotas, lifetimes, rates).
    pub config: Config,
    /// Accounts, sessions, spaces, blob index, inboxes.
    pub meta: Arc<dyn MetaStore>,
    /// Blob bodies.
    pub blobs: Arc<dyn BlobStore>,
    /// Counters for `/metrics`.
    pub metrics: Metrics,
    /// Per-address and per-account token buckets.
    pub limiter: RateLimiter,
    /// Verified accounts (identity and device chain), checked against the store on every use.
    pub(crate) accounts: AccountCache,
    /// When expired challenges and tokens were last purged (ms since the epoch).
    pub(crate) last_purge_ms: AtomicU64,
    /// Per-space upload/prune exclusion.
    pub(crate) space_locks: SpaceLocks,
    /// Verified membership logs, checked against the stored length on every use.
    pub(crate) logs: LogCache,
    /// The OPAQUE secrets (from the data directory; see [`App::with_opaque_setup`]).
    pub(crate) opaque_setup: Arc<coffre_crypto::opaque::ServerSetup>,
    /// Passphrase logins between start and finish.
    pub(crate) opaque_logins: crate::service::opaque::PendingLogins,
    /// `blobs/fetch` answers in memory at once, each up to `limits.max_batch_bytes`: a permit is
    /// taken before an answer is assembled and released when its body is dropped (sent, or the
    /// client went away), so `MAX_BATCHES_IN_MEMORY × max_batch_bytes` bounds them however
    /// many streams ask. A client that reads slowly holds its permit at most until the
    /// per-request deadline.
    /// (Not used for `blobs/batch` bodies: waiting before reading a body can stall an HTTP/2
    /// connection, see `api::blobs::put_batch`.)
    pub(crate) batch_permits: Arc<tokio::sync::Semaphore>,
    clock: Clock,
}

impl core::fmt::Debug for App {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("App")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl App {
    /// A gateway application over the given stores, on the wall clock.
    pub fn new(config: Config, meta: Arc<dyn MetaStore>, blobs: Arc<dyn BlobStore>) -> App {
        App::with_clock(config, meta, blobs, system_clock())
    }

    /// Like [`App::new`] with another clock (tests use it to expire tokens and challenges).
    pub fn with_clock(
        config: Config,
        meta: Arc<dyn MetaStore>,
        blobs: Arc<dyn BlobStore>,
        clock: Clock,
    ) -> App {
        let limiter = RateLimiter::new(&config);
        App {
            config,
            meta,
            blobs,
            metrics: Metrics::new(),
            limiter,
            accounts: AccountCache::default(),
            last_purge_ms: AtomicU64::new(0),
            space_locks: SpaceLocks::default(),
            logs: LogCache::default(),
            // Ephemeral until the server installs the persistent one (tests keep this one).
            opaque_setup: Arc::new(coffre_crypto::opaque::ServerSetup::generate()),
            opaque_logins: crate::service::opaque::PendingLogins::default(),
            batch_permits: Arc::new(tokio::sync::Semaphore::new(MAX_BATCHES_IN_MEMORY)),
            clock,
        }
    }

    /// Uses `setup` as the OPAQUE secrets (the server loads them from the data directory, so
    /// passphrase logins survive restarts).
    #[must_use]
    pub fn with_opaque_setup(mut self, setup: coffre_crypto::opaque::ServerSetup) -> App {
        self.opaque_setup = Arc::new(setup);
        self
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        (self.clock)()
    }

    /// Runs a synchronous metadata-store call on the blocking thread pool (the store traits are
    /// synchronous and may fsync).
    pub async fn meta<T, F>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn MetaStore) -> Result<T> + Send + 'static,
    {
        let meta = Arc::clone(&self.meta);
        blocking(move || call(meta.as_ref())).await
    }

    /// Runs a synchronous blob-store call on the blocking thread pool.
    pub async fn blob_store<T, F>(&self, call: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn BlobStore) -> Result<T> + Send + 'static,
    {
        let blobs = Arc::clone(&self.blobs);
        blocking(move || call(blobs.as_ref())).await
    }
}

/// Runs `work` on tokio's blocking pool; a panic in it becomes an internal error, not a crash.
pub async fn blocking<T, F>(work: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| Error::Internal(format!("blocking task failed: {error}")))?
}
