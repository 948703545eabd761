//! Graceful shutdown of the real binary: SIGTERM while a request is in flight lets it complete,
//! refuses new connections, then exits 0.

#![allow(clippy::unwrap_used)]

mod support;

use std::time::Duration;

use support::Gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn sigterm_lets_the_request_in_flight_complete_then_exits_zero() {
    let mut gateway = Gateway::start();
    let mut tls = gateway.connect(&[b"http/1.1"]).await.unwrap();

    // A request whose body is only half sent: the handler is waiting for the rest.
    let body = br#"{"handle":"alice","padding":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;
    let head = format!(
        "POST /v1/accounts HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes()).await.unwrap();
    tls.write_all(&body[..10]).await.unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    gateway.signal_term();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Still running: it is waiting for the request in flight.
    assert!(
        gateway.wait_timeout(Duration::ZERO).is_none(),
        "exited with a request in flight:\n{}",
        gateway.stderr_text()
    );
    // New connections are no longer accepted.
    assert!(gateway.connect(&[b"http/1.1"]).await.is_err());

    // The rest of the body arrives; the request gets its answer (whatever it is, it is an answer).
    tls.write_all(&body[10..]).await.unwrap();
    tls.flush().await.unwrap();
    let mut received = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut received)).await;
    let text = String::from_utf8_lossy(&received);
    assert!(
        read.is_ok(),
        "connection not closed after the response: {text}"
    );
    assert!(text.starts_with("HTTP/1.1 "), "no response: {text:?}");
    assert!(
        !text.starts_with("HTTP/1.1 503"),
        "the request in flight was refused: {text}"
    );

    let status = gateway
        .wait_timeout(Duration::from_secs(10))
        .expect("gateway did not exit after its last request");
    assert!(status.success(), "exit status {status:?}");
    let log = gateway.stderr_text();
    assert!(log.contains("SIGTERM received"), "{log}");
}

#[test]
fn sigterm_on_an_idle_gateway_exits_zero_promptly() {
    let mut gateway = Gateway::start();
    let started = std::time::Instant::now();
    assert!(gateway.stop().success());
    assert!(started.elapsed() < Duration::from_secs(5));
}
