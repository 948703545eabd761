//! The real binary over TLS: HTTP/1.1 and HTTP/2 by ALPN, TLS 1.3 only, the first-run certificate
//! and its pin, reused on later runs.

#![allow(clippy::unwrap_used)]

mod support;

use http::StatusCode;
use support::{Gateway, Options, client_config_for, connect, get, pem_sha256_hex, read_response};

#[tokio::test]
async fn healthz_over_http1_and_http2() {
    let gateway = Gateway::start();

    let mut h1 = gateway.http1().await;
    let (status, body) = read_response(h1.send_request(get("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8_lossy(&body).contains("ok"), "{body:?}");
    // Keep-alive: a second request on the same connection.
    let (status, _) = read_response(h1.send_request(get("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);

    let (mut h2, _driver) = gateway.http2().await;
    let response = h2
        .send_request(get("https://localhost/healthz"))
        .await
        .unwrap();
    assert_eq!(response.version(), http::Version::HTTP_2);
    let (status, _) = read_response(response).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_without_alpn_gets_http1() {
    let gateway = Gateway::start();
    let tls = gateway.connect(&[]).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), None);
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(connection);
    let (status, _) = read_response(sender.send_request(get("/healthz")).await.unwrap()).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn tls12_only_client_is_refused() {
    let gateway = Gateway::start();
    // The test build has TLS 1.2 compiled into rustls (dev-dependency feature); the server's
    // configuration must still refuse it.
    let tls12 = client_config_for(
        &gateway.cert_path(),
        &[b"http/1.1"],
        &[&rustls::version::TLS12],
    );
    let error = connect(gateway.addr, tls12).await.unwrap_err();
    assert!(
        error.to_string().contains("ProtocolVersion") || error.to_string().contains("version"),
        "unexpected error: {error}"
    );
    // And the same certificate over TLS 1.3 works, so the refusal was about the version.
    let both = client_config_for(
        &gateway.cert_path(),
        &[b"http/1.1"],
        &[&rustls::version::TLS12, &rustls::version::TLS13],
    );
    let tls = connect(gateway.addr, both).await.unwrap();
    assert_eq!(
        tls.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

#[tokio::test]
async fn a_client_offering_only_unknown_alpn_is_refused() {
    let gateway = Gateway::start();
    assert!(gateway.connect(&[b"spdy/3"]).await.is_err());
}

#[test]
fn first_run_prints_the_pin_and_later_runs_reuse_the_certificate() {
    let mut first = Gateway::start();
    assert!(first.first_run, "{}", first.stderr_text());
    let pin = pem_sha256_hex(&first.cert_path());
    assert_eq!(first.pin, pin);
    assert_eq!(first.fingerprint.replace(':', "").to_lowercase(), pin);
    assert!(first.stop().success());

    let data_dir = first.data_dir.clone();
    let mut second = Gateway::start_with(Options {
        data_dir: Some(data_dir.clone()),
        ..Options::default()
    });
    assert!(!second.first_run, "{}", second.stderr_text());
    assert_eq!(second.pin, pin);
    assert!(second.stop().success());

    // `coffre-gateway fingerprint` prints the same pin.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_coffre-gateway"))
        .args(["fingerprint", "--data"])
        .arg(&data_dir)
        .output()
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(stdout.lines().any(|line| line == pin), "{stdout}");
    drop(first);
}
