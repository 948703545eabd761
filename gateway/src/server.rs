//! The TLS accept loop, connection limits and graceful shutdown.
//!
//! # Invariants
//!
//! - At most `limits.max_connections` connections are served at once: a permit is taken *before*
//!   `accept`, so further clients wait in the kernel backlog instead of costing memory here.
//! - At most `limits.max_connections_per_address` of them come from one IPv4 address or IPv6 /64
//!   (`per_address`); one more from that address is closed as soon as it is accepted.
//! - Every phase of a connection has a time bound from [`Limits`]: the TLS
//!   handshake, the request headers (HTTP/1, also bounding keep-alive idleness), idleness with no
//!   request in flight (both protocols, see `connection`), and each whole request, response body
//!   included. Sizes are bounded too: header bytes and count, HTTP/2 streams and resets.
//! - Shutdown stops accepting at once, lets in-flight requests finish (HTTP/1 closes after the
//!   current response, HTTP/2 sends GOAWAY), and cuts whatever remains after
//!   `limits.shutdown_grace`.
//! - Logging: one startup line; per-connection failures (TLS noise, resets, timeouts) at debug.
//!   Bodies, headers and tokens are never logged here.
//!
//! # Threats
//!
//! Slowloris-style clients (slow handshakes, slow headers, idle connections, slow readers of
//! responses), connection floods (also from a single address), HTTP/2 reset floods and oversized headers are each bounded by a
//! limit above; none can hold more than its permit and its buffers.

mod connection;
mod per_address;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, oneshot, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio_rustls::TlsAcceptor;

use crate::app::App;
use crate::config::{Config, Limits};
use crate::error::{Error, Result};
use crate::store::Stores;
use crate::tls::{self, TlsSetup};

/// Starts a gateway on a bound `listener` and serves until `shutdown` completes; then drains.
///
/// Loads (or, on first run, generates) the TLS certificate as [`tls::load_or_generate`] does. Use
/// [`run_with_tls`] to print the certificate's fingerprint before serving.
pub async fn run(
    listener: TcpListener,
    config: Config,
    stores: Stores,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let tls = tls::load_or_generate(&config)?;
    run_with_tls(listener, config, stores, tls, shutdown).await
}

/// Like [`run`] with an already loaded TLS setup.
pub async fn run_with_tls(
    listener: TcpListener,
    config: Config,
    stores: Stores,
    tls: TlsSetup,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(
        %address,
        data_dir = %config.data_dir.display(),
        blob_backend = ?config.blob_backend,
        fingerprint = %tls.fingerprint,
        "coffre-gateway listening"
    );
    let opaque_setup = crate::service::opaque::load_or_generate(&config.data_dir)?;
    let app = Arc::new(App::new(config, stores.meta, stores.blobs).with_opaque_setup(opaque_setup));
    serve(listener, app, tls.server_config, shutdown).await
}

/// A gateway serving in this process (tests, embedding): see [`start`].
#[derive(Debug)]
pub struct ServerHandle {
    /// The bound address (the real port when the configuration asked for port 0).
    pub addr: SocketAddr,
    /// The TLS setup, with the certificate fingerprint clients pin.
    pub tls: TlsSetup,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<()>>,
}

/// Binds `config.listen`, loads or generates the certificate, and serves `stores` on a task of the
/// current runtime until [`ServerHandle::shutdown`] (or until the handle is dropped).
pub async fn start(config: Config, stores: Stores) -> Result<ServerHandle> {
    let tls = tls::load_or_generate(&config)?;
    let listener = TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let shutdown = async move {
        // A dropped handle stops the server too.
        let _ = stopped.await;
    };
    let task = tokio::spawn(run_with_tls(
        listener,
        config,
        stores,
        tls.clone(),
        shutdown,
    ));
    Ok(ServerHandle {
        addr,
        tls,
        stop,
        task,
    })
}

impl ServerHandle {
    /// Shuts down gracefully (in-flight requests finish) and waits for the server to stop.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .map_err(|e| Error::Internal(format!("server task failed: {e}")))?
    }
}

/// The accept loop: serves `app` over TLS on `listener` until `shutdown` completes, then drains.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    tls: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let limits = app.config.limits.clone();
    let acceptor = TlsAcceptor::from(tls);
    let builders = Arc::new(Builders::new(&limits));
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let per_address = per_address::PerAddress::new(limits.max_connections_per_address);
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);

    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => permit
                .map_err(|_| Error::Internal("connection semaphore closed".into()))?,
            Some(done) = connections.join_next(), if !connections.is_empty() => {
                reap(done);
                continue;
            }
            () = &mut shutdown => break,
        };
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Per-connection failures (ECONNABORTED) and resource exhaustion (EMFILE)
                    // alike: log, back off briefly so exhaustion cannot spin, keep serving.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(address_slot) = per_address.claim(peer.ip()) else {
            // Closed at once (dropping the stream); the global permit goes back with it.
            tracing::debug!(%peer, "connection refused: limits.max_connections_per_address");
            app.metrics.connection_refused();
            continue;
        };
        let _ = tcp.set_nodelay(true);
        connections.spawn(connection::serve(connection::Conn {
            tcp,
            peer,
            acceptor: acceptor.clone(),
            builders: Arc::clone(&builders),
            app: Arc::clone(&app),
            stop: stop_rx.clone(),
            permit,
            address_slot,
        }));
    }

    drop(listener);
    let in_flight = connections.len();
    tracing::info!(
        connections = in_flight,
        "shutting down: draining connections"
    );
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while let Some(done) = connections.join_next().await {
            reap(done);
        }
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            remaining = connections.len(),
            "shutdown grace period over: closing remaining connections"
        );
        connections.shutdown().await;
    }
    tracing::info!("coffre-gateway stopped");
    Ok(())
}

fn reap(done: Result<(), tokio::task::JoinError>) {
    if let Err(error) = done
        && error.is_panic()
    {
        tracing::error!(%error, "connection task panicked");
    }
}

/// Connection builders, one per protocol: the protocol is known from ALPN after the handshake, so
/// hyper never has to sniff it (sniffing would wait for bytes with no timeout).
#[derive(Debug)]
pub(crate) struct Builders {
    http1: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(limits: &Limits) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            .max_buf_size(limits.max_header_bytes)
            .max_headers(limits.max_headers)
            .keep_alive(true)
            .half_close(false);
        // Invariant: Config::validate bounds max_header_bytes to u32.
        let header_list = u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(limits.max_concurrent_streams)
            .max_header_list_size(header_list)
            .max_pending_accept_reset_streams(limits.max_pending_resets)
            .max_local_error_reset_streams(limits.max_pending_resets)
            // Flow control and buffers set explicitly, not left to hyper's defaults: they bound
            // the memory a connection can hold (docs/OPERATIONS.md, "Memory").
            .adaptive_window(false)
            .initial_stream_window_size(limits.h2_stream_window)
            .initial_connection_window_size(limits.h2_connection_window)
            .max_frame_size(16 * 1024)
            .max_send_buf_size(limits.h2_max_send_buffer)
            .keep_alive_interval(limits.idle_timeout / 2)
            .keep_alive_timeout(limits.idle_timeout / 2);
        Builders {
            http1: builder.clone().http1_only(),
            http2: builder.http2_only(),
        }
    }
}
