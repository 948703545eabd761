//! The real binary's connection, time and size limits: slow headers, idle HTTP/2 connections,
//! oversized bodies refused before they are read, and the connection cap.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::{Duration, Instant};

use support::{Gateway, Options, get, read_response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Reads until EOF, an error, or `limit`; returns what was read and whether the peer closed.
async fn read_until_closed<S: AsyncReadExt + Unpin>(
    stream: &mut S,
    limit: Duration,
) -> (Vec<u8>, bool) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_slow_header_client_is_cut_off() {
    // The timeout comes from a config file here (the other tests use the environment).
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, "[limits]\nheader_read_timeout_secs = 1\n").unwrap();
    let gateway = Gateway::start_with(
        Options::default()
            .arg("--config")
            .arg(config.to_str().unwrap()),
    );

    let mut tls = gateway.connect(&[b"http/1.1"]).await.unwrap();
    let started = Instant::now();
    tls.write_all(b"GET /healthz HT").await.unwrap();
    tls.flush().await.unwrap();
    let (received, closed) = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    let elapsed = started.elapsed();
    assert!(closed, "connection still open after 10 s");
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "closed too late: {elapsed:?}"
    );
    // Either a bare close or a 408; never a 200 for half a request line.
    let text = String::from_utf8_lossy(&received);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let gateway =
        Gateway::start_with(Options::default().env("COFFRE_GATEWAY_IDLE_TIMEOUT_SECS", "1"));
    let (mut h2, driver) = gateway.http2().await;
    let (status, _) = read_response(
        h2.send_request(get("https://localhost/healthz"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK);
    let started = Instant::now();
    // The server sends GOAWAY and closes; the client's connection task then ends.
    let ended = tokio::time::timeout(Duration::from_secs(10), driver).await;
    assert!(
        ended.is_ok(),
        "idle HTTP/2 connection still open after 10 s"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
}

#[tokio::test]
async fn an_oversized_body_is_refused_before_it_is_sent() {
    let gateway = Gateway::start();
    let mut tls = gateway.connect(&[b"http/1.1"]).await.unwrap();
    // Announce a body far over the JSON limit and send none of it: the 413 must come anyway.
    let head = "POST /v1/accounts HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                content-length: 1000000000\r\n\r\n";
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !received.windows(4).any(|w| w == b"\r\n\r\n") {
        match tokio::time::timeout_at(deadline, tls.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
            other => panic!(
                "no response head: {other:?}, got {:?}",
                String::from_utf8_lossy(&received)
            ),
        }
    }
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
}

#[tokio::test]
async fn connections_over_the_cap_wait_in_the_backlog() {
    let gateway =
        Gateway::start_with(Options::default().env("COFFRE_GATEWAY_MAX_CONNECTIONS", "1"));
    let first = gateway.connect(&[b"http/1.1"]).await.unwrap();
    // The second TCP connection is accepted by the kernel, but the gateway does not take it (no
    // TLS handshake) while the first one holds the only permit.
    let second =
        tokio::time::timeout(Duration::from_millis(1500), gateway.connect(&[b"http/1.1"])).await;
    assert!(
        second.is_err(),
        "a second connection was served past the cap"
    );
    drop(first);
    let mut h1 = gateway.http1().await;
    let (status, _) = read_response(h1.send_request(get("/healthz")).await.unwrap()).await;
    assert_eq!(status, http::StatusCode::OK);
}

#[tokio::test]
async fn a_silent_client_is_cut_off_after_the_handshake_timeout() {
    let gateway = Gateway::start_with(
        Options::default().env("COFFRE_GATEWAY_TLS_HANDSHAKE_TIMEOUT_SECS", "1"),
    );
    let mut tcp = tokio::net::TcpStream::connect(gateway.addr).await.unwrap();
    let started = Instant::now();
    let (_, closed) = read_until_closed(&mut tcp, Duration::from_secs(10)).await;
    assert!(closed, "silent connection still open after 10 s");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(900),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(5),
        "closed too late: {elapsed:?}"
    );
}

#[tokio::test]
async fn a_request_over_its_time_gets_503() {
    let gateway =
        Gateway::start_with(Options::default().env("COFFRE_GATEWAY_REQUEST_TIMEOUT_SECS", "1"));
    let mut tls = gateway.connect(&[b"http/1.1"]).await.unwrap();
    // A body that never finishes arriving keeps the handler waiting past the deadline.
    let head = "POST /v1/accounts HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
                content-length: 100\r\n\r\n{\"handle\":";
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.flush().await.unwrap();
    let started = Instant::now();
    let (received, _) = read_until_closed(&mut tls, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("unavailable"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn connections_over_the_per_address_cap_are_closed_and_counted() {
    let gateway = Gateway::start_with(
        Options::default().env("COFFRE_GATEWAY_MAX_CONNECTIONS_PER_ADDRESS", "2"),
    );
    let first = gateway.connect(&[b"http/1.1"]).await.unwrap();
    let second = gateway.connect(&[b"http/1.1"]).await.unwrap();
    // The third from the same address is accepted by the kernel and closed by the gateway
    // before any TLS: the handshake fails (or the stream ends) well before any timeout.
    let started = Instant::now();
    let third = tokio::time::timeout(Duration::from_secs(5), gateway.connect(&[b"http/1.1"]))
        .await
        .expect("the refusal is immediate, not a timeout");
    assert!(
        third.is_err(),
        "a third connection from one address was served"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
    // A slot comes back when a connection closes.
    drop(first);
    let mut served = false;
    for _ in 0..50 {
        if let Ok(tls) = gateway.connect(&[b"http/1.1"]).await {
            let (mut h1, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
                    .await
                    .unwrap();
            tokio::spawn(connection);
            let (status, body) =
                read_response(h1.send_request(get("/metrics")).await.unwrap()).await;
            assert_eq!(status, http::StatusCode::OK);
            let text = String::from_utf8_lossy(&body).into_owned();
            // At least the third connection; retries above that raced the first's closing.
            let refused: u64 = text
                .lines()
                .find_map(|line| line.strip_prefix("coffre_connections_refused_total "))
                .and_then(|value| value.parse().ok())
                .unwrap_or(0);
            assert!(refused >= 1, "{text}");
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "no slot came back after a connection closed");
    drop(second);
}
