//! The local keystore: round trip, wrong passphrase, tampering, file modes, atomic writes, and
//! that no secret shows in `Debug`.

#![allow(clippy::unwrap_used)]

use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceChain, DeviceEntry, DeviceEntryHash,
};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::keys::SigningSecret;
use coffre_crypto::passphrase::{Argon2Params, Passphrase};
use coffre_sdk::Error;
use coffre_sdk::keystore::Keystore;

struct Parts {
    identity: Identity,
    secret: IdentitySecret,
    device: SigningSecret,
    certificate: DeviceCertificate,
    chain: DeviceChain,
}

fn parts() -> Parts {
    let secret = IdentitySecret::generate().unwrap();
    let identity = secret
        .certify(&Handle::parse("alice").unwrap(), 1_700_000_000_000)
        .unwrap();
    let device = SigningSecret::generate().unwrap();
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device.public_key(),
        1,
    )
    .unwrap();
    let chain = DeviceChain::verify(identity.sign_key(), std::slice::from_ref(&entry)).unwrap();
    Parts {
        identity,
        secret,
        device,
        certificate: DeviceCertificate::try_from(entry).unwrap(),
        chain,
    }
}

fn pass(text: &str) -> Passphrase {
    Passphrase::new(text.to_owned())
}

fn sealed(parts: &Parts) -> Keystore {
    Keystore::create(
        &parts.identity,
        &parts.secret,
        &parts.device,
        &parts.certificate,
        &parts.chain,
        &pass("correct horse battery staple"),
        Argon2Params::MIN,
    )
    .unwrap()
}

#[test]
fn keystore_round_trips_through_a_file_and_unlocks() {
    let parts = parts();
    let keystore = sealed(&parts);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data/keystore.cfk");
    keystore.save(&path).unwrap();
    let loaded = Keystore::load(&path).unwrap();
    assert_eq!(loaded.encode(), keystore.encode());
    let unlocked = loaded
        .unlock(&pass("correct horse battery staple"))
        .unwrap();
    assert_eq!(unlocked.identity(), &parts.identity);
    assert_eq!(
        unlocked.secret().sign_secret().public_key(),
        parts.secret.sign_secret().public_key()
    );
    assert_eq!(
        unlocked.secret().enc_secret().expose_secret(),
        parts.secret.enc_secret().expose_secret()
    );
    assert_eq!(unlocked.device().device_key(), &parts.device.public_key());
    assert_eq!(unlocked.device_chain().entries(), parts.chain.entries());
    // The key bundle inside opens with the same passphrase to the same identity secrets.
    let bundle = loaded
        .key_bundle()
        .open_with_passphrase(&pass("correct horse battery staple"))
        .unwrap();
    assert_eq!(
        bundle.expose_sign_seed(),
        &parts.secret.sign_secret().expose_secret()
    );
}

#[test]
fn keystore_wrong_passphrase_is_auth() {
    let keystore = sealed(&parts());
    for wrong in [
        "correct horse battery stapl",
        "Correct horse battery staple",
        " ",
    ] {
        assert!(
            matches!(keystore.unlock(&pass(wrong)), Err(Error::Auth)),
            "{wrong:?}"
        );
    }
    assert!(matches!(keystore.unlock(&pass("")), Err(Error::Auth)));
}

#[test]
fn keystore_tampering_is_refused() {
    let keystore = sealed(&parts());
    let bytes = keystore.encode();
    let phrase = pass("correct horse battery staple");
    // Every byte flip either fails to decode, or fails to unlock: never a different key.
    for index in (0..bytes.len()).step_by(7) {
        let mut flipped = bytes.clone();
        flipped[index] ^= 0x01;
        match Keystore::decode(&flipped) {
            Err(error) => assert!(matches!(error, Error::Config(_)), "{index}: {error}"),
            Ok(decoded) => match decoded.unlock(&phrase) {
                Err(Error::Auth | Error::Config(_) | Error::InvalidInput(_)) => {}
                Ok(_) => panic!("byte {index} flipped and still unlocked"),
                Err(other) => panic!("byte {index}: {other}"),
            },
        }
    }
    assert!(Keystore::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Keystore::decode(&trailing).is_err());
    // Another account's identity swapped in is refused (it is in the AAD).
    let other = sealed(&parts());
    let mut mixed = other.encode();
    let identity_len = 4 + parts().identity.encoded().len();
    mixed[5..5 + identity_len].copy_from_slice(&bytes[5..5 + identity_len]);
    let mixed = Keystore::decode(&mixed).unwrap();
    assert!(matches!(mixed.unlock(&phrase), Err(Error::Auth)));
}

#[cfg(unix)]
#[test]
fn keystore_file_is_0600_and_written_atomically() {
    use std::os::unix::fs::PermissionsExt as _;
    let parts = parts();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keystore.cfk");
    sealed(&parts).save(&path).unwrap();
    sealed(&parts).save(&path).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["keystore.cfk".to_owned()]);
}

#[test]
fn keystore_debug_shows_no_secret() {
    let parts = parts();
    let keystore = sealed(&parts);
    let unlocked = keystore
        .unlock(&pass("correct horse battery staple"))
        .unwrap();
    let shown = format!("{unlocked:?} {keystore:?} {:?}", unlocked.secret());
    for secret in [
        parts.secret.sign_secret().expose_secret(),
        parts.secret.enc_secret().expose_secret(),
        parts.device.expose_secret(),
    ] {
        let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        assert!(!shown.contains(&hex), "a secret in Debug: {shown}");
        assert!(!shown.contains(&format!("{:?}", &secret[..8])), "{shown}");
    }
    assert!(shown.contains("alice"));
    assert!(!shown.contains("correct horse"));
}
