//! One connection: TLS handshake under a deadline, HTTP over it, idleness and request deadlines.
//!
//! hyper bounds HTTP/1 header reads (which also bounds HTTP/1 keep-alive idleness) but has no
//! idle timeout for HTTP/2. [`Activity`] counts requests in flight — a request stays in flight
//! until its response body is finished or dropped — and a watchdog closes the connection
//! gracefully once nothing has been in flight for `limits.idle_timeout`.
//!
//! Each request gets one deadline, `limits.request_timeout`, covering the handler (body upload
//! included) and the streaming of the response: a handler still running at the deadline is dropped
//! and answered `503 unavailable`; a response body still streaming at the deadline fails, which
//! makes hyper abort the exchange (a slow reader cannot pin a blob reader forever).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Request;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, watch};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;

use super::Builders;
use crate::api::{self, ResponseBody};
use crate::app::App;
use crate::error::Error;

/// Everything one connection task owns.
pub(super) struct Conn {
    pub tcp: TcpStream,
    pub peer: SocketAddr,
    pub acceptor: TlsAcceptor,
    pub builders: Arc<Builders>,
    pub app: Arc<App>,
    /// Becomes `true` when the server shuts down.
    pub stop: watch::Receiver<bool>,
    /// Released when the task ends, letting the accept loop take another connection.
    pub permit: OwnedSemaphorePermit,
    /// This connection counted against its address; released when the task ends.
    pub address_slot: super::per_address::AddressSlot,
}

/// Serves one connection to completion. Failures are the client's business: logged at debug.
pub(super) async fn serve(conn: Conn) {
    let Conn {
        tcp,
        peer,
        acceptor,
        builders,
        app,
        mut stop,
        permit,
        address_slot,
    } = conn;
    let limits = app.config.limits.clone();
    app.metrics.connection_opened();
    let _closed = OnDrop(|| app.metrics.connection_closed());

    let handshake = tokio::time::timeout(limits.tls_handshake_timeout, acceptor.accept(tcp));
    let tls = tokio::select! {
        result = handshake => match result {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        _ = stop.wait_for(|stopping| *stopping) => return,
    };
    let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
    let builder = if h2 { &builders.http2 } else { &builders.http1 };

    let activity = Arc::new(Activity::new());
    let service = {
        let activity = Arc::clone(&activity);
        let app = Arc::clone(&app);
        service_fn(move |request: Request<Incoming>| {
            let guard = Activity::begin(&activity);
            let app = Arc::clone(&app);
            let timeout = app.config.limits.request_timeout;
            async move {
                let deadline = Instant::now() + timeout;
                let handled = api::handle(app, request, peer);
                let response = match tokio::time::timeout_at(deadline, handled).await {
                    Ok(response) => response,
                    Err(_) => {
                        tracing::debug!(%peer, "request timed out");
                        api::error_response(&Error::Unavailable)
                    }
                };
                Ok::<_, Infallible>(response.map(|body| Tracked::new(body, deadline, guard)))
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(tls), service);
    tokio::pin!(connection);

    let mut closing = false;
    loop {
        let idle_check = tokio::time::sleep_until(activity.idle_deadline(limits.idle_timeout));
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%peer, %error, "connection ended with an error");
                }
                break;
            }
            () = idle_check, if !closing => {
                if activity.idle_for(limits.idle_timeout) {
                    tracing::debug!(%peer, "closing idle connection");
                    connection.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
            _ = stop.wait_for(|stopping| *stopping), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
        }
    }
    drop(permit);
    drop(address_slot);
}

/// Requests in flight on one connection, and since when none has been.
#[derive(Debug)]
struct Activity {
    /// (requests in flight, when the count last dropped to zero or the connection started)
    state: Mutex<(usize, Instant)>,
}

impl Activity {
    fn new() -> Self {
        Activity {
            state: Mutex::new((0, Instant::now())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (usize, Instant)> {
        // Invariant: no code panics while holding this lock, so poisoning only carries a
        // consistent state; recover it rather than propagate a panic.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn begin(this: &Arc<Self>) -> InFlight {
        this.lock().0 += 1;
        InFlight(Arc::clone(this))
    }

    /// When the connection will have been idle for `idle` if nothing starts; while requests are in
    /// flight, simply `idle` from now (checked again then).
    fn idle_deadline(&self, idle: std::time::Duration) -> Instant {
        let (in_flight, since) = *self.lock();
        if in_flight == 0 {
            since + idle
        } else {
            Instant::now() + idle
        }
    }

    fn idle_for(&self, idle: std::time::Duration) -> bool {
        let (in_flight, since) = *self.lock();
        in_flight == 0 && since.elapsed() >= idle
    }
}

/// One request in flight; dropping it ends the request.
#[derive(Debug)]
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.0 = state.0.saturating_sub(1);
        if state.0 == 0 {
            state.1 = Instant::now();
        }
    }
}

/// A response body that keeps its request in flight until finished and fails at the deadline.
pub(crate) struct Tracked {
    inner: ResponseBody,
    deadline: Pin<Box<Sleep>>,
    _in_flight: InFlight,
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracked").finish_non_exhaustive()
    }
}

impl Tracked {
    fn new(inner: ResponseBody, deadline: Instant, in_flight: InFlight) -> Self {
        Tracked {
            inner,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            _in_flight: in_flight,
        }
    }
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match self.deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response not sent within the request timeout",
            )))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Runs a closure when dropped (connection bookkeeping that must happen on every exit path).
struct OnDrop<F: FnMut()>(F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)();
    }
}
