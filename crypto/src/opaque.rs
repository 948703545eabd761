//! OPAQUE (RFC 9807) passphrase login, for a new device that has nothing but the passphrase.
//!
//! Cipher suite (**format-fixed**, FORMAT.md section 8.7): OPRF and key exchange over
//! ristretto255, 3DH with SHA-512, and Argon2id as the key-stretching function with fixed
//! parameters ([`KSF_PARAMS`]: 64 MiB, 3 passes, 1 lane) and a fixed salt ([`KSF_SALT`]; the OPRF
//! output it stretches is already unique per user and gateway). The credential identifier is the
//! account handle. The OPAQUE export key, 64 bytes, wraps a key bundle
//! ([`crate::keybundle::KeyBundle::opaque_wrapping_secret`]).
//!
//! Threats:
//!
//! - **[T-offline-guess]** the gateway stores only the OPAQUE registration record: without the
//!   client's cooperation it learns nothing that allows offline guessing cheaper than one OPRF
//!   evaluation plus one Argon2id per guess (a gateway that keeps its OPRF seed can still guess
//!   offline at that price: that is what the Argon2id KSF is for);
//! - **enumeration**: the server side answers a login for an unknown handle with a fake record
//!   (opaque-ke's dummy), so start answers look the same; every failure is the one opaque
//!   [`Error::Authentication`];
//! - secrets (export key, server setup, login state) zeroize on drop and never appear in `Debug`.

use core::fmt;

use opaque_ke::generic_array::{ArrayLength, GenericArray};
use opaque_ke::ksf::Ksf;
use opaque_ke::{
    ClientLogin as OpaqueClientLogin, ClientLoginFinishParameters,
    ClientRegistration as OpaqueClientRegistration, ClientRegistrationFinishParameters,
    CredentialFinalization, CredentialRequest, CredentialResponse, RegistrationRequest,
    RegistrationResponse, RegistrationUpload, Ristretto255, ServerLogin, ServerLoginParameters,
    ServerRegistration, TripleDh,
};
use rand_core_06::OsRng;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// Argon2id parameters of the OPAQUE KSF: 64 MiB, 3 passes, 1 lane. **Format-fixed.**
pub const KSF_PARAMS: (u32, u32, u32) = (65_536, 3, 1);
/// The salt of the OPAQUE KSF (16 bytes). **Format-fixed.**
pub const KSF_SALT: &[u8; 16] = b"coffre opaque v1";
/// Length of the OPAQUE export key. **Format-fixed** (SHA-512 output).
pub const EXPORT_KEY_LEN: usize = 64;

/// The key-stretching function: Argon2id with [`KSF_PARAMS`] and [`KSF_SALT`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Argon2Ksf;

impl Ksf for Argon2Ksf {
    fn hash<L: ArrayLength<u8>>(
        &self,
        input: GenericArray<u8, L>,
    ) -> core::result::Result<GenericArray<u8, L>, opaque_ke::errors::InternalError> {
        let (m_cost, t_cost, p_cost) = KSF_PARAMS;
        let params = argon2::Params::new(m_cost, t_cost, p_cost, Some(L::USIZE))
            .map_err(|_| opaque_ke::errors::InternalError::KsfError)?;
        let argon =
            argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
        let mut output = GenericArray::<u8, L>::default();
        argon
            .hash_password_into(&input, KSF_SALT, &mut output)
            .map_err(|_| opaque_ke::errors::InternalError::KsfError)?;
        Ok(output)
    }
}

/// coffre's OPAQUE cipher suite. **Format-fixed.**
#[derive(Debug, Clone, Copy)]
pub struct Suite;

impl opaque_ke::CipherSuite for Suite {
    type OprfCs = Ristretto255;
    type KeyExchange = TripleDh<Ristretto255, sha2::Sha512>;
    type Ksf = Argon2Ksf;
}

fn auth<E>(_: E) -> Error {
    Error::Authentication
}

fn malformed<E>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |_| Error::Malformed {
        what,
        reason: "not a valid OPAQUE message",
    }
}

/// The OPAQUE export key: a secret known to the client only after a successful registration or
/// login. 64 bytes.
pub struct ExportKey(Zeroizing<Vec<u8>>);

impl ExportKey {
    /// The bytes, for [`crate::keybundle::KeyBundle::opaque_wrapping_secret`].
    pub fn expose_secret(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ExportKey(<redacted>)")
    }
}

// ---- client ----

/// A registration in progress on the client.
pub struct ClientRegistration(OpaqueClientRegistration<Suite>);

impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientRegistration(<redacted>)")
    }
}

impl ClientRegistration {
    /// Starts registering `passphrase`: the state, and the request for the gateway.
    pub fn start(passphrase: &[u8]) -> Result<(ClientRegistration, Vec<u8>)> {
        let started = OpaqueClientRegistration::<Suite>::start(&mut OsRng, passphrase)
            .map_err(|_| Error::InvalidInput("the passphrase cannot be registered"))?;
        Ok((
            ClientRegistration(started.state),
            started.message.serialize().to_vec(),
        ))
    }

    /// Finishes with the gateway's response: the upload for the gateway and the export key.
    /// A response that does not verify is [`Error::Authentication`].
    pub fn finish(self, passphrase: &[u8], response: &[u8]) -> Result<(Vec<u8>, ExportKey)> {
        let response = RegistrationResponse::<Suite>::deserialize(response)
            .map_err(malformed("OPAQUE registration response"))?;
        let finished = self
            .0
            .finish(
                &mut OsRng,
                passphrase,
                response,
                ClientRegistrationFinishParameters::default(),
            )
            .map_err(auth)?;
        Ok((
            finished.message.serialize().to_vec(),
            ExportKey(Zeroizing::new(finished.export_key.to_vec())),
        ))
    }
}

/// A login in progress on the client.
pub struct ClientLogin(OpaqueClientLogin<Suite>);

impl fmt::Debug for ClientLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientLogin(<redacted>)")
    }
}

impl ClientLogin {
    /// Starts a login with `passphrase`: the state, and the request for the gateway.
    pub fn start(passphrase: &[u8]) -> Result<(ClientLogin, Vec<u8>)> {
        let started = OpaqueClientLogin::<Suite>::start(&mut OsRng, passphrase)
            .map_err(|_| Error::InvalidInput("the passphrase cannot be used"))?;
        Ok((
            ClientLogin(started.state),
            started.message.serialize().to_vec(),
        ))
    }

    /// Finishes with the gateway's response: the finalization for the gateway and the export
    /// key. A wrong passphrase, an unknown account or a forged response are all the one
    /// [`Error::Authentication`].
    pub fn finish(self, passphrase: &[u8], response: &[u8]) -> Result<(Vec<u8>, ExportKey)> {
        let response = CredentialResponse::<Suite>::deserialize(response).map_err(auth)?;
        let finished = self
            .0
            .finish(
                &mut OsRng,
                passphrase,
                response,
                ClientLoginFinishParameters::default(),
            )
            .map_err(auth)?;
        Ok((
            finished.message.serialize().to_vec(),
            ExportKey(Zeroizing::new(finished.export_key.to_vec())),
        ))
    }
}

// ---- server ----

/// The gateway's long-term OPAQUE secrets (OPRF seed and key-exchange key pair). Generated once,
/// kept in the data directory; losing it makes every passphrase login fail (devices keep
/// working).
pub struct ServerSetup(opaque_ke::ServerSetup<Suite>);

impl fmt::Debug for ServerSetup {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerSetup(<redacted>)")
    }
}

impl ServerSetup {
    /// Fresh secrets.
    pub fn generate() -> ServerSetup {
        ServerSetup(opaque_ke::ServerSetup::<Suite>::new(&mut OsRng))
    }

    /// The encoding to keep on disk (secret).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(self.0.serialize().to_vec())
    }

    /// Decodes what [`ServerSetup::to_bytes`] produced.
    pub fn from_bytes(bytes: &[u8]) -> Result<ServerSetup> {
        opaque_ke::ServerSetup::<Suite>::deserialize(bytes)
            .map(ServerSetup)
            .map_err(malformed("OPAQUE server setup"))
    }

    /// Answers a registration request for `handle`.
    pub fn registration_response(&self, request: &[u8], handle: &str) -> Result<Vec<u8>> {
        let request = RegistrationRequest::<Suite>::deserialize(request)
            .map_err(malformed("OPAQUE registration request"))?;
        let started = ServerRegistration::<Suite>::start(&self.0, request, handle.as_bytes())
            .map_err(malformed("OPAQUE registration request"))?;
        Ok(started.message.serialize().to_vec())
    }

    /// Starts a login for `handle` with its stored record (`None`: unknown handle; the answer is
    /// indistinguishable). Returns the state to keep until the finalization, and the response.
    pub fn login_start(
        &self,
        record: Option<&[u8]>,
        request: &[u8],
        handle: &str,
    ) -> Result<(ServerLoginState, Vec<u8>)> {
        let record = match record {
            Some(bytes) => Some(
                ServerRegistration::<Suite>::deserialize(bytes)
                    .map_err(malformed("OPAQUE record"))?,
            ),
            None => None,
        };
        let request = CredentialRequest::<Suite>::deserialize(request).map_err(auth)?;
        let started = ServerLogin::start(
            &mut OsRng,
            &self.0,
            record,
            request,
            handle.as_bytes(),
            ServerLoginParameters::default(),
        )
        .map_err(auth)?;
        Ok((
            ServerLoginState(started.state),
            started.message.serialize().to_vec(),
        ))
    }
}

/// Checks a registration upload and returns the record to store for the account.
pub fn registration_record(upload: &[u8]) -> Result<Vec<u8>> {
    let upload = RegistrationUpload::<Suite>::deserialize(upload)
        .map_err(malformed("OPAQUE registration upload"))?;
    Ok(ServerRegistration::<Suite>::finish(upload)
        .serialize()
        .to_vec())
}

/// The gateway's state between login start and finish.
pub struct ServerLoginState(ServerLogin<Suite>);

impl fmt::Debug for ServerLoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerLoginState(<redacted>)")
    }
}

impl ServerLoginState {
    /// Checks the client's finalization: `Ok` only if the client knew the passphrase.
    pub fn finish(self, finalization: &[u8]) -> Result<()> {
        let finalization =
            CredentialFinalization::<Suite>::deserialize(finalization).map_err(auth)?;
        self.0
            .finish(finalization, ServerLoginParameters::default())
            .map(|_| ())
            .map_err(auth)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn register(setup: &ServerSetup, handle: &str, passphrase: &[u8]) -> (Vec<u8>, ExportKey) {
        let (state, request) = ClientRegistration::start(passphrase).unwrap();
        let response = setup.registration_response(&request, handle).unwrap();
        let (upload, export) = state.finish(passphrase, &response).unwrap();
        (registration_record(&upload).unwrap(), export)
    }

    fn login(
        setup: &ServerSetup,
        record: Option<&[u8]>,
        handle: &str,
        passphrase: &[u8],
    ) -> Result<ExportKey> {
        let (client, request) = ClientLogin::start(passphrase)?;
        let (server, response) = setup.login_start(record, &request, handle)?;
        let (finalization, export) = client.finish(passphrase, &response)?;
        server.finish(&finalization)?;
        Ok(export)
    }

    #[test]
    fn register_then_log_in_gives_the_same_export_key_and_a_wrong_passphrase_fails() {
        let setup = ServerSetup::from_bytes(&ServerSetup::generate().to_bytes()).unwrap();
        let (record, export) = register(&setup, "alice", b"correct horse");
        assert_eq!(export.expose_secret().len(), EXPORT_KEY_LEN);
        let again = login(&setup, Some(&record), "alice", b"correct horse").unwrap();
        assert_eq!(again.expose_secret(), export.expose_secret());
        assert!(matches!(
            login(&setup, Some(&record), "alice", b"wrong horse"),
            Err(Error::Authentication)
        ));
        // The record is bound to the handle, and an unknown handle fails the same way.
        assert!(matches!(
            login(&setup, Some(&record), "mallory", b"correct horse"),
            Err(Error::Authentication)
        ));
        assert!(matches!(
            login(&setup, None, "nobody", b"correct horse"),
            Err(Error::Authentication)
        ));
        // Another gateway's secrets do not open it either.
        let other = ServerSetup::generate();
        assert!(matches!(
            login(&other, Some(&record), "alice", b"correct horse"),
            Err(Error::Authentication)
        ));
        assert_eq!(format!("{export:?}"), "ExportKey(<redacted>)");
    }

    #[test]
    fn garbage_is_a_typed_error_not_a_panic() {
        let setup = ServerSetup::generate();
        assert!(ServerSetup::from_bytes(&[1, 2, 3]).is_err());
        assert!(setup.registration_response(&[0; 5], "alice").is_err());
        assert!(registration_record(&[7; 10]).is_err());
        assert!(setup.login_start(None, &[0; 3], "alice").is_err());
        assert!(setup.login_start(Some(&[9; 4]), &[0; 3], "alice").is_err());
        let (client, _) = ClientLogin::start(b"pw").unwrap();
        assert!(client.finish(b"pw", &[0; 12]).is_err());
    }
}
