//! The in-process server API ([`coffre_gateway::server::start`]): what SDK tests embed.

#![allow(clippy::unwrap_used)]

mod support;

use coffre_gateway::Config;
use coffre_gateway::store::Stores;
use support::{client_config_for, connect, get, read_response};

#[tokio::test]
async fn start_serves_until_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let server = coffre_gateway::server::start(config, Stores::memory())
        .await
        .unwrap();
    assert_ne!(server.addr.port(), 0);
    assert!(server.tls.generated);
    let client = client_config_for(&server.tls.cert_path, &[b"h2"], &[&rustls::version::TLS13]);
    let tls = connect(server.addr, client).await.unwrap();
    let (mut h2, driver) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(driver);
    let (status, _) = read_response(
        h2.send_request(get("https://localhost/healthz"))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, http::StatusCode::OK);
    let addr = server.addr;
    server.shutdown().await.unwrap();
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}
