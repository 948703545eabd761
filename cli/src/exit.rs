//! Exit codes and error messages: what went wrong and what to do.
//!
//! | code | meaning |
//! |------|---------|
//! | 0 | success |
//! | 1 | any other error (local I/O, configuration, protocol) |
//! | 2 | usage: bad arguments, bad path, no passphrase source |
//! | 3 | authentication: wrong passphrase, login refused, not allowed |
//! | 4 | not found: space, path, commit |
//! | 5 | conflict: already exists, lost a race that could not be merged |
//! | 6 | integrity violation: the gateway (or someone) tampered with data |
//! | 7 | network, TLS or gateway unavailable / rate limited |
//! | 8 | storage quota exceeded |
//! | 9 | a contact's identity key changed (possible key substitution) |

use coffre_sdk::Error;

/// An error with its exit code and the message to show.
#[derive(Debug)]
pub struct Exit {
    /// The process exit code.
    pub code: u8,
    /// A stable short name for scripts (`--json`).
    pub kind: &'static str,
    /// What went wrong and what to do (never a secret).
    pub message: String,
}

impl Exit {
    /// An error with `code` and `message`.
    pub fn new(code: u8, message: impl Into<String>) -> Self {
        Exit {
            code,
            kind: kind_of(code),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Exit {}

fn kind_of(code: u8) -> &'static str {
    match code {
        2 => "usage",
        3 => "auth",
        4 => "not_found",
        5 => "conflict",
        6 => "integrity",
        7 => "unavailable",
        8 => "quota",
        9 => "key_changed",
        _ => "error",
    }
}

/// The exit code and message of any error the commands return.
pub fn classify(error: &anyhow::Error) -> Exit {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return Exit::new(exit.code, exit.message.clone());
    }
    if let Some(sdk) = error.downcast_ref::<Error>() {
        return from_sdk(sdk);
    }
    Exit::new(1, format!("{error:#}"))
}

fn from_sdk(error: &Error) -> Exit {
    let (code, message) = match error {
        Error::Network(detail) => (
            7,
            format!(
                "cannot reach the gateway ({detail}); check the server URL in config.toml and \
                 that the gateway is running, then retry"
            ),
        ),
        Error::UntrustedCertificate(detail) => (
            7,
            format!(
                "the gateway's TLS certificate is not the trusted one ({detail}). If the operator \
                 replaced the certificate, confirm the new fingerprint with them and run init \
                 again; otherwise someone may be intercepting the connection"
            ),
        ),
        Error::Auth => (
            3,
            "the gateway refused the login; check that the account exists on this gateway and \
             that this device was not revoked"
                .to_owned(),
        ),
        Error::Forbidden(detail) => (
            3,
            format!("not allowed: {detail}; ask an admin of the space"),
        ),
        Error::NotFound(detail) => (4, format!("not found: {detail}")),
        Error::AlreadyExists(detail) => (5, format!("already exists: {detail}")),
        Error::Conflict(detail) => (5, format!("conflict: {detail}; retry the command")),
        Error::Quota => (
            8,
            "the account's storage quota is exhausted; remove files or ask the operator for \
             more space"
                .to_owned(),
        ),
        Error::RateLimited { retry_after_s } => (
            7,
            format!("the gateway asks us to slow down; retry in {retry_after_s} s"),
        ),
        Error::Unavailable => (
            7,
            "the gateway is unavailable (shutting down or overloaded); retry later".to_owned(),
        ),
        Error::Integrity(detail) => (
            6,
            format!(
                "INTEGRITY VIOLATION: data from the gateway failed verification: {detail}\n\
                 The gateway (or someone with access to it) served tampered, rolled-back or \
                 forged data. Nothing unverified was written. Do not retry blindly: keep this \
                 message, tell the other members of the space, and contact the operator"
            ),
        ),
        Error::KeyChanged { handle, verified } => (
            9,
            if *verified {
                format!(
                    "KEY CHANGED: the identity key served for {handle} is not the one you \
                     verified. The gateway may be substituting keys. Ask {handle} (in person or \
                     by phone) whether they reset their account; only if so, compare the new \
                     safety number and run `coffre contacts verify {handle} --accept-changed-key`"
                )
            } else {
                format!(
                    "the identity key served for {handle} changed since you first saw it. The \
                     gateway may be substituting keys. Check with {handle} (`coffre contacts \
                     verify {handle}` shows the new safety number); if they confirm, repeat \
                     the command with --trust-new-key"
                )
            },
        ),
        Error::Protocol(detail) => (
            1,
            format!("the gateway answered something unexpected: {detail}; is it the same version?"),
        ),
        Error::Io(detail) => (1, format!("local I/O error: {detail}")),
        Error::Config(detail) => (1, format!("local configuration: {detail}")),
        Error::InvalidInput(detail) => (2, format!("invalid input: {detail}")),
        Error::Crypto(detail) => (1, format!("cryptography: {detail}")),
        other => (1, other.to_string()),
    };
    Exit::new(code, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_errors_map_to_documented_codes() {
        let cases: Vec<(Error, u8)> = vec![
            (Error::Auth, 3),
            (Error::NotFound("x".into()), 4),
            (Error::Conflict("x".into()), 5),
            (Error::AlreadyExists("x".into()), 5),
            (Error::Integrity("x".into()), 6),
            (Error::Network("x".into()), 7),
            (Error::Unavailable, 7),
            (Error::Quota, 8),
            (Error::InvalidInput("x".into()), 2),
            (Error::Config("x".into()), 1),
            (
                Error::KeyChanged {
                    handle: "bob".into(),
                    verified: true,
                },
                9,
            ),
        ];
        for (error, code) in cases {
            assert_eq!(classify(&anyhow::Error::new(error)).code, code);
        }
        assert_eq!(classify(&Exit::new(4, "gone").into()).kind, "not_found");
    }
}
