//! TLS configuration: TLS 1.3 only, and a self-signed certificate generated on first run.
//!
//! # Invariants
//!
//! - The server speaks **TLS 1.3 only** (ring provider, `with_protocol_versions(&[TLS13])`), even
//!   when the `tls12` feature of rustls is compiled in by feature unification: TLS 1.2's static-RSA
//!   and CBC-era baggage is refused at the handshake, not merely discouraged.
//! - ALPN offers `h2` then `http/1.1`; a client offering neither is refused by rustls.
//! - A configured certificate chain and key are used as given; the gateway never rewrites them.
//! - Without one, the first run generates a self-signed certificate in `<data>/tls/`: the key is
//!   written first with mode 0600, then the certificate, each durably (write, fsync, rename, fsync
//!   the directory). Later runs reuse them, so the fingerprint clients pinned stays valid.
//!
//! # Threats
//!
//! Clients of a self-signed gateway authenticate it by pinning the SHA-256 [`Fingerprint`] of the
//! leaf certificate's DER, printed at startup. Nothing in coffre's confidentiality depends on TLS
//! (data is end-to-end encrypted), but tokens and metadata do, so the pin matters.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::config::Config;
use crate::error::{Error, Result};

/// ALPN protocols offered, in preference order.
pub const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// File name of the generated certificate inside `<data>/tls/`.
pub const GENERATED_CERT_FILE: &str = "cert.pem";
/// File name of the generated private key inside `<data>/tls/`.
pub const GENERATED_KEY_FILE: &str = "key.pem";

/// The SHA-256 of a leaf certificate's DER encoding: what clients pin.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        Fingerprint(Sha256::digest(der).into())
    }

    /// The raw digest.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Uppercase hex pairs joined by `:` (`AB:CD:...`), the form browsers and `openssl` print.
    pub fn to_colon_hex(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|byte| format!("{byte:02X}")).collect();
        pairs.join(":")
    }

    /// Plain lowercase hex, the form the coffre CLI accepts for `--pin`.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Parses either form (colons optional, case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        let digits: Vec<u8> = text
            .trim()
            .chars()
            .filter(|c| *c != ':')
            .map(|c| c.to_digit(16).and_then(|d| u8::try_from(d).ok()))
            .collect::<Option<_>>()?;
        if digits.len() != 64 {
            return None;
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            *byte = (pair[0] << 4) | pair[1];
        }
        Some(Fingerprint(bytes))
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_colon_hex())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.to_hex())
    }
}

/// The TLS side of a gateway, ready to accept connections.
#[derive(Clone, Debug)]
pub struct TlsSetup {
    /// The rustls server configuration (TLS 1.3 only, ALPN h2 and http/1.1).
    pub server_config: Arc<ServerConfig>,
    /// Fingerprint of the leaf certificate.
    pub fingerprint: Fingerprint,
    /// Where the certificate chain was read from.
    pub cert_path: PathBuf,
    /// Whether this run generated the certificate (first run).
    pub generated: bool,
}

/// Where the generated certificate and key live for a data directory.
pub fn generated_paths(data_dir: &Path) -> (PathBuf, PathBuf) {
    let dir = data_dir.join("tls");
    (dir.join(GENERATED_CERT_FILE), dir.join(GENERATED_KEY_FILE))
}

/// Loads the configured certificate and key, or the generated ones, generating them on first run.
pub fn load_or_generate(config: &Config) -> Result<TlsSetup> {
    let (cert_path, key_path, generated) = match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => (cert.clone(), key.clone(), false),
        (None, None) => {
            let (cert, key) = generated_paths(&config.data_dir);
            let generated = ensure_generated(&cert, &key, &subject_alt_names(config))?;
            (cert, key, generated)
        }
        _ => {
            return Err(Error::Config(
                "tls_cert and tls_key must be given together (or neither, to generate a \
                 self-signed certificate)"
                    .into(),
            ));
        }
    };
    let chain = read_certificates(&cert_path)?;
    let key = read_private_key(&key_path)?;
    // Invariant: read_certificates never returns an empty chain.
    let fingerprint = Fingerprint::of_der(chain.first().map_or(&[][..], |c| c.as_ref()));
    let server_config = server_config(chain, key)?;
    Ok(TlsSetup {
        server_config,
        fingerprint,
        cert_path,
        generated,
    })
}

/// Builds the TLS 1.3-only server configuration for a chain and its key.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| Error::Tls(format!("protocol versions: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Tls(format!(
                "certificate and key do not form a usable pair: {e}"
            ))
        })?;
    config.alpn_protocols = ALPN_PROTOCOLS.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// The fingerprint of the first certificate in a PEM file (for `coffre-gateway fingerprint`).
pub fn fingerprint_of_pem_file(path: &Path) -> Result<Fingerprint> {
    let chain = read_certificates(path)?;
    Ok(Fingerprint::of_der(
        chain.first().map_or(&[][..], |c| c.as_ref()),
    ))
}

/// Reads a PEM certificate chain; an empty or unparsable file is an error naming the file.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let file = File::open(path).map_err(|e| tls_io(path, "open certificate", e))?;
    let chain = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_io(path, "parse certificate PEM", e))?;
    if chain.is_empty() {
        return Err(Error::Tls(format!(
            "{}: no CERTIFICATE block found",
            path.display()
        )));
    }
    Ok(chain)
}

/// Reads a PEM private key (PKCS#8, PKCS#1 or SEC1).
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>> {
    let file = File::open(path).map_err(|e| tls_io(path, "open private key", e))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| tls_io(path, "parse private key PEM", e))?
        .ok_or_else(|| Error::Tls(format!("{}: no PRIVATE KEY block found", path.display())))
}

fn tls_io(path: &Path, what: &str, error: std::io::Error) -> Error {
    Error::Tls(format!("{what} {}: {error}", path.display()))
}

/// Names the generated certificate is valid for: loopback, the listen address if it is a specific
/// one, and the configured extra names.
fn subject_alt_names(config: &Config) -> Vec<String> {
    let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
    let ip = config.listen.ip();
    if !ip.is_unspecified() && !ip.is_loopback() {
        names.push(ip.to_string());
    }
    for name in &config.tls_names {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    names
}

/// Generates the certificate and key unless both exist. Returns whether it generated them.
fn ensure_generated(cert_path: &Path, key_path: &Path, names: &[String]) -> Result<bool> {
    match (cert_path.exists(), key_path.exists()) {
        (true, true) => return Ok(false),
        (true, false) => {
            return Err(Error::Tls(format!(
                "{} exists but its key {} is missing; restore the key, or remove the certificate \
                 to generate a new one (clients will have to pin the new fingerprint)",
                cert_path.display(),
                key_path.display()
            )));
        }
        // A key without a certificate is a first run that crashed before printing any
        // fingerprint: nothing was pinned yet, so generating afresh is safe.
        (false, _) => {}
    }
    let mut params = rcgen::CertificateParams::new(names.to_vec())
        .map_err(|e| Error::Tls(format!("certificate names {names:?}: {e}")))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "coffre gateway");
    let key = rcgen::KeyPair::generate().map_err(|e| Error::Tls(format!("key generation: {e}")))?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(format!("self-signing: {e}")))?;
    let dir = cert_path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        // Only the gateway's user needs the directory holding its private key.
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    write_durably(key_path, key.serialize_pem().as_bytes(), 0o600)?;
    write_durably(cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(true)
}

/// Writes `bytes` to `path` so that after return the file is complete and durable: write a
/// temporary file created with `mode`, fsync it, rename it over `path`, fsync the directory.
pub(crate) fn write_durably(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut temp_name = path.file_name().unwrap_or_default().to_owned();
    temp_name.push(".tmp");
    let temp = dir.join(temp_name);
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(&temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    fs::rename(&temp, path)?;
    #[cfg(unix)]
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_in(dir: &Path) -> Config {
        Config {
            data_dir: dir.to_path_buf(),
            ..Config::default()
        }
    }

    #[test]
    fn first_run_generates_and_later_runs_reuse() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        let first = load_or_generate(&config).unwrap();
        assert!(first.generated);
        let second = load_or_generate(&config).unwrap();
        assert!(!second.generated);
        assert_eq!(first.fingerprint, second.fingerprint);
        let (cert, key) = generated_paths(dir.path());
        assert_eq!(fingerprint_of_pem_file(&cert).unwrap(), first.fingerprint);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            first.server_config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
    }

    #[test]
    fn certificate_without_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = config_in(dir.path());
        load_or_generate(&config).unwrap();
        let (_, key) = generated_paths(dir.path());
        fs::remove_file(key).unwrap();
        assert!(matches!(load_or_generate(&config), Err(Error::Tls(_))));
    }

    #[test]
    fn configured_pair_is_used_and_half_a_pair_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let generated = load_or_generate(&config_in(dir.path())).unwrap();
        let (cert, key) = generated_paths(dir.path());
        let mut config = config_in(&dir.path().join("other"));
        config.tls_cert = Some(cert.clone());
        config.tls_key = Some(key);
        let loaded = load_or_generate(&config).unwrap();
        assert!(!loaded.generated);
        assert_eq!(loaded.fingerprint, generated.fingerprint);
        config.tls_key = None;
        assert!(matches!(load_or_generate(&config), Err(Error::Config(_))));
        // A garbage certificate file is a typed error naming the file.
        let bad = dir.path().join("bad.pem");
        fs::write(&bad, "not pem").unwrap();
        let error = read_certificates(&bad).unwrap_err().to_string();
        assert!(error.contains("bad.pem"), "{error}");
    }

    #[test]
    fn fingerprint_forms_round_trip() {
        let fingerprint = Fingerprint::of_der(b"certificate");
        let colon = fingerprint.to_colon_hex();
        assert_eq!(colon.len(), 32 * 3 - 1);
        assert_eq!(colon, colon.to_uppercase());
        assert_eq!(Fingerprint::parse(&colon), Some(fingerprint));
        assert_eq!(Fingerprint::parse(&fingerprint.to_hex()), Some(fingerprint));
        assert_eq!(Fingerprint::parse("AB:CD"), None);
        assert_eq!(Fingerprint::parse("zz"), None);
    }
}
