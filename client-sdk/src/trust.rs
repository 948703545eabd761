//! Which TLS certificates the SDK accepts from a gateway.
//!
//! Three policies ([`Trust`]):
//!
//! - [`Trust::SystemRoots`]: the operating system's root store (a gateway with a public
//!   certificate);
//! - [`Trust::CaFile`]: the CA certificates in one PEM file (an organisation's own CA);
//! - [`Trust::Pinned`]: exactly one leaf certificate, named by the SHA-256 of its DER encoding as
//!   the gateway prints it on first run (a self-signed gateway, the default for small deployments).
//!
//! Invariants and threats:
//!
//! - TLS 1.3 only, with the `ring` provider: no protocol downgrade, no TLS 1.2 code path.
//! - A pin is compared in constant time against the SHA-256 of the presented leaf, and the TLS 1.3
//!   handshake signature is still verified with the provider's algorithms, so a network attacker
//!   who merely replays the gateway's certificate cannot complete the handshake. Under a pin the
//!   certificate's names, dates and issuer are deliberately ignored: the pin *is* the gateway's
//!   identity (as with SSH host keys); rotating the certificate means pinning the new one.
//! - TLS only authenticates the transport. Everything the gateway serves is verified again above
//!   TLS (signatures, hashes, pinned logs), so even a trusted-but-malicious gateway cannot forge data.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// The SHA-256 of a certificate's DER encoding: what a client pins.
///
/// Parsed from 64 hex digits, with or without `:` between pairs, in either case (the forms
/// `coffre-gateway` and `openssl x509 -fingerprint -sha256` print). Public: safe to show and log.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct CertFingerprint([u8; 32]);

impl CertFingerprint {
    /// The fingerprint of a DER-encoded certificate.
    pub fn of_der(der: &[u8]) -> Self {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// Wraps a raw SHA-256 digest.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        CertFingerprint(bytes)
    }

    /// The raw digest.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hex digits, optionally separated by `:` between pairs, in either case.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || {
            Error::InvalidInput(
                "a certificate fingerprint is 64 hex digits (SHA-256), optionally with ':' \
                 between pairs"
                    .to_owned(),
            )
        };
        let text = text.trim();
        let compact: String = if text.contains(':') {
            // With colons, every group is exactly one pair: `AB:CD:...`.
            let groups: Vec<&str> = text.split(':').collect();
            if groups.len() != 32 || groups.iter().any(|group| group.len() != 2) {
                return Err(invalid());
            }
            groups.concat()
        } else {
            text.to_owned()
        };
        let digits = compact.as_bytes();
        if digits.len() != 64 {
            return Err(invalid());
        }
        let mut bytes = [0u8; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let high = (pair[0] as char).to_digit(16).ok_or_else(invalid)?;
            let low = (pair[1] as char).to_digit(16).ok_or_else(invalid)?;
            // Two hex digits always fit in a byte.
            *byte = u8::try_from(high << 4 | low).map_err(|_| invalid())?;
        }
        Ok(CertFingerprint(bytes))
    }

    /// Plain lower-case hex (64 characters): the canonical form in `config.toml`.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    /// Upper-case hex pairs joined by `:`, as `openssl` and browsers print.
    pub fn to_colon_hex(&self) -> String {
        let pairs: Vec<String> = self.0.iter().map(|byte| format!("{byte:02X}")).collect();
        pairs.join(":")
    }

    /// Constant-time comparison with the SHA-256 of `der`.
    pub fn matches_der(&self, der: &[u8]) -> bool {
        let seen: [u8; 32] = Sha256::digest(der).into();
        self.0.ct_eq(&seen).into()
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_colon_hex())
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({})", self.to_hex())
    }
}

impl std::str::FromStr for CertFingerprint {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        CertFingerprint::parse(text)
    }
}

/// Which gateway certificates to accept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trust {
    /// The operating system's root certificates.
    SystemRoots,
    /// The CA certificates in this PEM file.
    CaFile(PathBuf),
    /// Exactly the certificate with this SHA-256 fingerprint.
    Pinned(CertFingerprint),
}

impl Trust {
    /// Parses the `config.toml` form: `system`, `ca:<path>` or `pin:<fingerprint>`.
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        if text == "system" {
            Ok(Trust::SystemRoots)
        } else if let Some(path) = text.strip_prefix("ca:") {
            if path.is_empty() {
                return Err(Error::InvalidInput("ca: needs a file path".to_owned()));
            }
            Ok(Trust::CaFile(PathBuf::from(path)))
        } else if let Some(pin) = text.strip_prefix("pin:") {
            Ok(Trust::Pinned(CertFingerprint::parse(pin)?))
        } else {
            Err(Error::InvalidInput(
                "trust is 'system', 'ca:<path to PEM file>' or 'pin:<SHA-256 fingerprint>'"
                    .to_owned(),
            ))
        }
    }

    /// The `config.toml` form (inverse of [`Trust::parse`]).
    pub fn to_config_string(&self) -> String {
        match self {
            Trust::SystemRoots => "system".to_owned(),
            Trust::CaFile(path) => format!("ca:{}", path.display()),
            Trust::Pinned(pin) => format!("pin:{}", pin.to_hex()),
        }
    }

    /// A TLS 1.3-only client configuration (no ALPN yet: the HTTP layer sets it).
    pub fn client_config(&self) -> Result<ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|error| Error::Config(format!("TLS setup: {error}")))?;
        let config = match self {
            Trust::SystemRoots => builder
                .with_root_certificates(system_roots()?)
                .with_no_client_auth(),
            Trust::CaFile(path) => builder
                .with_root_certificates(roots_from_pem(path)?)
                .with_no_client_auth(),
            Trust::Pinned(pin) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(PinnedCertVerifier::new(
                    *pin, &provider,
                )))
                .with_no_client_auth(),
        };
        Ok(config)
    }
}

fn system_roots() -> Result<RootCertStore> {
    let loaded = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(loaded.certs);
    if added == 0 {
        return Err(Error::Config(
            "no usable root certificate in the system store; use a CA file or a pinned \
             fingerprint instead"
                .to_owned(),
        ));
    }
    Ok(roots)
}

fn roots_from_pem(path: &Path) -> Result<RootCertStore> {
    let pem = std::fs::read(path).map_err(|error| {
        Error::Config(format!("cannot read CA file {}: {error}", path.display()))
    })?;
    let mut roots = RootCertStore::empty();
    for certificate in rustls_pemfile::certs(&mut pem.as_slice()) {
        let certificate = certificate.map_err(|error| {
            Error::Config(format!("bad PEM in CA file {}: {error}", path.display()))
        })?;
        roots.add(certificate).map_err(|error| {
            Error::Config(format!(
                "bad certificate in CA file {}: {error}",
                path.display()
            ))
        })?;
    }
    if roots.is_empty() {
        return Err(Error::Config(format!(
            "no certificate in CA file {}",
            path.display()
        )));
    }
    Ok(roots)
}

/// Accepts exactly one leaf certificate, by the SHA-256 of its DER encoding, and verifies the
/// handshake signature with the provider's algorithms.
#[derive(Debug)]
pub struct PinnedCertVerifier {
    pin: CertFingerprint,
    algorithms: WebPkiSupportedAlgorithms,
}

impl PinnedCertVerifier {
    /// A verifier for `pin`, using `provider`'s signature algorithms.
    pub fn new(pin: CertFingerprint, provider: &CryptoProvider) -> Self {
        PinnedCertVerifier {
            pin,
            algorithms: provider.signature_verification_algorithms,
        }
    }
}

/// The error a pin mismatch surfaces as inside rustls (turned into
/// [`Error::UntrustedCertificate`] by the HTTP layer).
#[derive(Debug)]
pub struct PinMismatch {
    /// The pinned fingerprint.
    pub pinned: CertFingerprint,
    /// The fingerprint of the certificate the server presented.
    pub presented: CertFingerprint,
}

impl fmt::Display for PinMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the gateway presented a certificate with SHA-256 {}, but {} is pinned; if the \
             operator replaced the certificate, check the new fingerprint with them and pin it",
            self.presented, self.pinned
        )
    }
}

impl std::error::Error for PinMismatch {}

impl ServerCertVerifier for PinnedCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pin.matches_der(end_entity.as_ref()) {
            Ok(ServerCertVerified::assertion())
        } else {
            let mismatch = PinMismatch {
                pinned: self.pin,
                presented: CertFingerprint::of_der(end_entity.as_ref()),
            };
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Other(rustls::OtherError(Arc::new(mismatch))),
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // Unreachable: the configuration allows TLS 1.3 only. Refuse rather than accept.
        Err(rustls::Error::PeerIncompatible(
            rustls::PeerIncompatible::Tls12NotOffered,
        ))
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const HEX: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn fingerprints_parse_with_or_without_colons_in_any_case() {
        let plain = CertFingerprint::parse(HEX).unwrap();
        assert_eq!(plain.as_bytes()[1], 0x11);
        assert_eq!(plain.as_bytes()[31], 0xff);
        assert_eq!(CertFingerprint::parse(&HEX.to_uppercase()).unwrap(), plain);
        assert_eq!(
            CertFingerprint::parse(&plain.to_colon_hex()).unwrap(),
            plain
        );
        assert_eq!(
            CertFingerprint::parse(&plain.to_colon_hex().to_lowercase()).unwrap(),
            plain
        );
        assert_eq!(
            CertFingerprint::parse(&format!("  {HEX}\n")).unwrap(),
            plain
        );
        assert_eq!(plain.to_hex(), HEX);
        assert!(plain.to_colon_hex().starts_with("00:11:22:"));
        assert_eq!(plain.to_string(), plain.to_colon_hex());
    }

    #[test]
    fn malformed_fingerprints_are_refused() {
        for bad in [
            "",
            &HEX[..62],
            &format!("{HEX}00"),
            &HEX.replace('a', "g"),
            "0:01122",
            // Colons in the wrong places, or a missing pair.
            &format!("{}:{}", &HEX[..3], &HEX[3..]),
            &CertFingerprint::parse(HEX).unwrap().to_colon_hex()[3..],
            "+0112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
        ] {
            assert!(
                matches!(CertFingerprint::parse(bad), Err(Error::InvalidInput(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pin_matches_only_its_certificate() {
        let der = b"not really DER, but hashed all the same";
        let pin = CertFingerprint::of_der(der);
        assert!(pin.matches_der(der));
        assert!(!pin.matches_der(b"another certificate"));
        let provider = rustls::crypto::ring::default_provider();
        let verifier = PinnedCertVerifier::new(pin, &provider);
        let name = ServerName::try_from("localhost").unwrap();
        let now = UnixTime::now();
        assert!(
            verifier
                .verify_server_cert(&CertificateDer::from(der.to_vec()), &[], &name, &[], now)
                .is_ok()
        );
        let refused = verifier
            .verify_server_cert(
                &CertificateDer::from(b"another certificate".to_vec()),
                &[],
                &name,
                &[],
                now,
            )
            .unwrap_err();
        let rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) = refused
        else {
            panic!("{refused:?}");
        };
        let mismatch = other.0.downcast_ref::<PinMismatch>().unwrap();
        assert_eq!(mismatch.pinned, pin);
        assert_eq!(
            mismatch.presented,
            CertFingerprint::of_der(b"another certificate")
        );
        assert!(mismatch.to_string().contains(&pin.to_colon_hex()));
        assert!(!verifier.supported_verify_schemes().is_empty());
    }

    #[test]
    fn trust_config_strings_round_trip() {
        let pin = CertFingerprint::parse(HEX).unwrap();
        for trust in [
            Trust::SystemRoots,
            Trust::CaFile(PathBuf::from("/etc/coffre/ca.pem")),
            Trust::Pinned(pin),
        ] {
            assert_eq!(Trust::parse(&trust.to_config_string()).unwrap(), trust);
        }
        assert_eq!(
            Trust::parse(&format!("pin:{}", pin.to_colon_hex())).unwrap(),
            Trust::Pinned(pin)
        );
        for bad in ["", "pin:", "ca:", "pinned:00", "System"] {
            assert!(Trust::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configs_build_and_a_missing_ca_file_is_a_config_error() {
        // TLS 1.2 cannot be negotiated at all: rustls is built without its `tls12` feature, and
        // the builder names TLS 1.3 only (checked end to end against the gateway).
        Trust::Pinned(CertFingerprint::from_bytes([7; 32]))
            .client_config()
            .unwrap();
        let missing = Trust::CaFile(PathBuf::from("/nonexistent/ca.pem")).client_config();
        assert!(matches!(missing, Err(Error::Config(_))));
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, b"").unwrap();
        assert!(matches!(
            Trust::CaFile(empty).client_config(),
            Err(Error::Config(_))
        ));
    }
}
