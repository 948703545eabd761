//! Test vectors for key bundles (FORMAT.md 8.4) and recovery phrases (8.5).
//!
//! `COFFRE_WRITE_VECTORS=1 cargo test -p coffre-crypto --test vectors_secrets` regenerates
//! `tests/vectors/{keybundle,fail_keybundle,recovery,fail_recovery}.json` (the box nonce and the
//! passphrase salt are random, so regenerated bundles differ byte for byte) and then checks them;
//! without the variable the tests only check the committed files. Error classes in `fail_*` files:
//! `malformed`, `authentication`, `invalid_input`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::path::PathBuf;
use std::time::Instant;

use coffre_crypto::Error;
use coffre_crypto::keybundle::{IdentitySecretBytes, KeyBundle, SecretWrap, WrapKind};
use coffre_crypto::keys::{DerivedKey, EncSecret, SigningSecret};
use coffre_crypto::passphrase::{Argon2Params, Passphrase, stretch};
use coffre_crypto::recovery::RecoveryPhrase;
use serde::{Deserialize, Serialize};

const WRITE_ENV: &str = "COFFRE_WRITE_VECTORS";

fn writing() -> bool {
    std::env::var(WRITE_ENV).is_ok_and(|value| value == "1")
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn load<T: for<'de> Deserialize<'de>>(name: &str) -> Vec<T> {
    let text = std::fs::read_to_string(path(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    let cases: Vec<T> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

fn store<T: Serialize>(name: &str, cases: &[T]) {
    let mut text = serde_json::to_string_pretty(cases).unwrap();
    text.push('\n');
    std::fs::create_dir_all(path("")).unwrap();
    std::fs::write(path(name), text).unwrap();
}

fn class(result: Result<impl Sized, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Malformed { .. }) => "malformed",
        Err(Error::Authentication) => "authentication",
        Err(Error::InvalidInput(_)) => "invalid_input",
        Err(Error::Integrity { .. }) => "integrity",
        Err(_) => "other",
    }
}

fn key(text: &str) -> DerivedKey {
    DerivedKey::from_bytes(hex::decode(text).unwrap().try_into().unwrap())
}

// ---------------------------------------------------------------------------------------------
// Key bundles.

#[derive(Serialize, Deserialize)]
struct BundleCase {
    name: String,
    wrap_kind: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<[u32; 3]>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    salt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    recovery_entropy: Option<String>,
    /// Argon2id output, recovery secret or OPAQUE export key.
    wrapping_secret: String,
    sign_seed: String,
    enc_secret: String,
    sign_public: String,
    enc_public: String,
    bundle: String,
}

#[derive(Serialize, Deserialize)]
struct BundleFailCase {
    name: String,
    /// Absent for `params` cases, which test `Argon2Params::new`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bundle: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wrapping_secret: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    params: Option<[u32; 3]>,
    error: String,
}

fn fixed_secrets() -> IdentitySecretBytes {
    let sign: [u8; 32] = core::array::from_fn(|i| i as u8);
    let enc: [u8; 32] = core::array::from_fn(|i| 0x20 + i as u8);
    IdentitySecretBytes::from_keys(
        &SigningSecret::from_seed(&sign),
        &EncSecret::from_bytes(enc),
    )
}

fn bundle_case(name: &str, bundle: &KeyBundle, wrapping_secret: &DerivedKey) -> BundleCase {
    let secrets = fixed_secrets();
    let (sign, enc) = fixed_secrets().into_keys();
    let (wrap_kind, params, salt) = match bundle.wrap_kind() {
        WrapKind::Passphrase { params, salt } => (
            1,
            Some([params.m_cost_kib(), params.t_cost(), params.p_cost()]),
            Some(hex::encode(salt)),
        ),
        WrapKind::OpaqueExport => (2, None, None),
        WrapKind::Recovery => (3, None, None),
    };
    BundleCase {
        name: name.to_owned(),
        wrap_kind,
        passphrase: None,
        params,
        salt,
        recovery_entropy: None,
        wrapping_secret: hex::encode(wrapping_secret.expose_secret()),
        sign_seed: hex::encode(secrets.expose_sign_seed()),
        enc_secret: hex::encode(secrets.expose_enc_secret()),
        sign_public: hex::encode(sign.public_key().to_bytes()),
        enc_public: hex::encode(enc.public_key().to_bytes()),
        bundle: hex::encode(bundle.encode()),
    }
}

fn write_keybundle_vectors() {
    let mut cases = Vec::new();
    let mut fails = Vec::new();
    let fail = |name: &str, bundle: &[u8], passphrase: Option<&str>, secret: Option<&str>| {
        BundleFailCase {
            name: name.to_owned(),
            bundle: Some(hex::encode(bundle)),
            passphrase: passphrase.map(str::to_owned),
            wrapping_secret: secret.map(str::to_owned),
            params: None,
            error: String::new(),
        }
    };

    // Passphrase bundles at the minimum parameters (fast enough for every test run).
    let mut passphrase_bytes = Vec::new();
    for (name, text) in [
        ("passphrase, ASCII", "correct horse battery staple"),
        (
            "passphrase, UTF-8 (not normalized)",
            "Café crème — 🔑 ünïcödé",
        ),
    ] {
        let passphrase = Passphrase::from(text.to_owned());
        let bundle =
            KeyBundle::seal_with_passphrase(&fixed_secrets(), &passphrase, Argon2Params::MIN)
                .unwrap();
        let WrapKind::Passphrase { params, salt } = *bundle.wrap_kind() else {
            unreachable!()
        };
        let secret = stretch(&passphrase, &salt, params).unwrap();
        let mut case = bundle_case(name, &bundle, &secret);
        case.passphrase = Some(text.to_owned());
        cases.push(case);
        passphrase_bytes.push(bundle.encode());
    }

    // Recovery and OPAQUE-export bundles.
    let recovery = RecoveryPhrase::from_entropy(core::array::from_fn(|i| 0x40 + i as u8));
    let recovery_secret = recovery.wrapping_secret();
    let bundle =
        KeyBundle::seal_with_secret(SecretWrap::Recovery, &recovery_secret, &fixed_secrets())
            .unwrap();
    let mut case = bundle_case("recovery phrase", &bundle, &recovery_secret);
    case.recovery_entropy = Some(hex::encode(recovery.expose_secret()));
    cases.push(case);
    let recovery_bytes = bundle.encode();
    let export_key = DerivedKey::from_bytes([0x5e; 32]);
    let bundle =
        KeyBundle::seal_with_secret(SecretWrap::OpaqueExport, &export_key, &fixed_secrets())
            .unwrap();
    cases.push(bundle_case("OPAQUE export key", &bundle, &export_key));

    // Failures, derived from the ASCII passphrase bundle P and the recovery bundle R.
    let p = &passphrase_bytes[0];
    let good = Some("correct horse battery staple");
    let r = &recovery_bytes;
    let r_secret = hex::encode(recovery_secret.expose_secret());
    let with = |bytes: &[u8], edit: &dyn Fn(&mut Vec<u8>)| {
        let mut copy = bytes.to_vec();
        edit(&mut copy);
        copy
    };
    let set_u32 = |offset: usize, value: u32| {
        with(p, &move |b: &mut Vec<u8>| {
            b[offset..offset + 4].copy_from_slice(&value.to_be_bytes())
        })
    };
    let last = p.len() - 1;
    let mut push = |name: &str, bytes: Vec<u8>, pass: Option<&str>, secret: Option<&str>, e| {
        let mut case = fail(name, &bytes, pass, secret);
        case.error = String::from(e);
        fails.push(case);
    };
    push(
        "wrong passphrase",
        p.clone(),
        Some("correct horse battery stapler"),
        None,
        "authentication",
    );
    push(
        "flipped params byte (t_cost 2 -> 3)",
        with(p, &|b| b[13] ^= 1),
        good,
        None,
        "authentication",
    );
    push(
        "flipped salt byte",
        with(p, &|b| b[18] ^= 0x80),
        good,
        None,
        "authentication",
    );
    push(
        "flipped nonce byte",
        with(p, &|b| b[34] ^= 1),
        good,
        None,
        "authentication",
    );
    push(
        "flipped commitment byte",
        with(p, &|b| b[58] ^= 1),
        good,
        None,
        "authentication",
    );
    push(
        "flipped ciphertext byte",
        with(p, &|b| b[90] ^= 1),
        good,
        None,
        "authentication",
    );
    push(
        "flipped tag",
        with(p, &|b| b[last] ^= 1),
        good,
        None,
        "authentication",
    );
    push(
        "m_cost below MIN (19455 KiB)",
        set_u32(6, 19_455),
        good,
        None,
        "malformed",
    );
    push(
        "t_cost below MIN (1)",
        set_u32(10, 1),
        good,
        None,
        "malformed",
    );
    push(
        "p_cost below MIN (0)",
        set_u32(14, 0),
        good,
        None,
        "malformed",
    );
    push(
        "m_cost above MAX (1048577 KiB)",
        set_u32(6, 1_048_577),
        good,
        None,
        "malformed",
    );
    push(
        "t_cost above MAX (17)",
        set_u32(10, 17),
        good,
        None,
        "malformed",
    );
    push(
        "p_cost above MAX (5)",
        set_u32(14, 5),
        good,
        None,
        "malformed",
    );
    push(
        "unknown wrap kind 0x04",
        with(p, &|b| b[5] = 4),
        good,
        None,
        "malformed",
    );
    push(
        "unknown wrap kind 0x00",
        with(p, &|b| b[5] = 0),
        good,
        None,
        "malformed",
    );
    push(
        "wrong magic",
        with(p, &|b| b[0] = b'X'),
        good,
        None,
        "malformed",
    );
    push(
        "wrong version",
        with(p, &|b| b[4] = 2),
        good,
        None,
        "malformed",
    );
    push(
        "truncated by one byte",
        p[..last].to_vec(),
        good,
        None,
        "malformed",
    );
    push(
        "truncated after the header",
        p[..34].to_vec(),
        good,
        None,
        "malformed",
    );
    push("empty", Vec::new(), good, None, "malformed");
    push(
        "trailing byte",
        with(p, &|b| b.push(0)),
        good,
        None,
        "malformed",
    );
    push(
        "recovery bundle, wrong secret",
        r.clone(),
        None,
        Some(&"00".repeat(32)),
        "authentication",
    );
    push(
        "recovery bundle relabelled as OPAQUE export",
        with(r, &|b| b[5] = 2),
        None,
        Some(&r_secret),
        "authentication",
    );
    push(
        "recovery bundle, flipped tag",
        with(r, &|b| *b.last_mut().unwrap() ^= 1),
        None,
        Some(&r_secret),
        "authentication",
    );
    push(
        "recovery bundle with a trailing byte",
        with(r, &|b| b.push(0)),
        None,
        Some(&r_secret),
        "malformed",
    );
    push(
        "passphrase bundle opened with a secret",
        p.clone(),
        None,
        Some(&r_secret),
        "invalid_input",
    );
    push(
        "recovery bundle opened with a passphrase",
        r.clone(),
        good,
        None,
        "invalid_input",
    );
    for (name, params) in [
        ("params: m_cost below MIN", [19_455, 2, 1]),
        ("params: t_cost below MIN", [19_456, 1, 1]),
        ("params: p_cost below MIN", [19_456, 2, 0]),
        ("params: m_cost above MAX", [1_048_577, 3, 1]),
        ("params: t_cost above MAX", [65_536, 17, 1]),
        ("params: p_cost above MAX", [65_536, 3, 5]),
    ] {
        fails.push(BundleFailCase {
            name: name.to_owned(),
            bundle: None,
            passphrase: None,
            wrapping_secret: None,
            params: Some(params),
            error: "invalid_input".to_owned(),
        });
    }
    store("keybundle.json", &cases);
    store("fail_keybundle.json", &fails);
}

fn check_keybundle_vectors() {
    for case in load::<BundleCase>("keybundle.json") {
        let name = &case.name;
        let bytes = hex::decode(&case.bundle).unwrap();
        let bundle = KeyBundle::decode(&bytes).unwrap();
        assert_eq!(bundle.encode(), bytes, "{name}: canonical re-encoding");
        let opened = match (*bundle.wrap_kind(), case.wrap_kind) {
            (WrapKind::Passphrase { params, salt }, 1) => {
                let [m, t, p] = case.params.unwrap();
                assert_eq!(params, Argon2Params::new(m, t, p).unwrap(), "{name}");
                assert_eq!(hex::encode(salt), case.salt.clone().unwrap(), "{name}");
                let passphrase = Passphrase::from(case.passphrase.clone().unwrap());
                let stretched = stretch(&passphrase, &salt, params).unwrap();
                assert_eq!(
                    stretched,
                    key(&case.wrapping_secret),
                    "{name}: Argon2id output"
                );
                bundle.open_with_passphrase(&passphrase).unwrap()
            }
            (WrapKind::Recovery, 3) => {
                let entropy = hex::decode(case.recovery_entropy.clone().unwrap()).unwrap();
                let phrase = RecoveryPhrase::from_entropy(entropy.try_into().unwrap());
                assert_eq!(
                    phrase.wrapping_secret(),
                    key(&case.wrapping_secret),
                    "{name}"
                );
                bundle.open_with_secret(&phrase.wrapping_secret()).unwrap()
            }
            (WrapKind::OpaqueExport, 2) => bundle
                .open_with_secret(&key(&case.wrapping_secret))
                .unwrap(),
            (kind, expected) => panic!("{name}: decoded {kind:?}, expected kind {expected}"),
        };
        assert_eq!(
            hex::encode(opened.expose_sign_seed()),
            case.sign_seed,
            "{name}"
        );
        assert_eq!(
            hex::encode(opened.expose_enc_secret()),
            case.enc_secret,
            "{name}"
        );
        let (sign, enc) = opened.into_keys();
        assert_eq!(
            hex::encode(sign.public_key().to_bytes()),
            case.sign_public,
            "{name}"
        );
        assert_eq!(
            hex::encode(enc.public_key().to_bytes()),
            case.enc_public,
            "{name}"
        );
    }

    for case in load::<BundleFailCase>("fail_keybundle.json") {
        let outcome = if let Some([m, t, p]) = case.params {
            class(Argon2Params::new(m, t, p))
        } else {
            let bytes = hex::decode(case.bundle.as_deref().unwrap()).unwrap();
            let decoded = KeyBundle::decode(&bytes);
            class(
                decoded.and_then(|bundle| match (&case.passphrase, &case.wrapping_secret) {
                    (Some(text), None) => {
                        bundle.open_with_passphrase(&Passphrase::from(text.clone()))
                    }
                    (None, Some(secret)) => bundle.open_with_secret(&key(secret)),
                    _ => panic!(
                        "{}: needs exactly one of passphrase, wrapping_secret",
                        case.name
                    ),
                }),
            )
        };
        assert_eq!(outcome, case.error, "{}", case.name);
    }
}

// ---------------------------------------------------------------------------------------------
// Recovery phrases.

#[derive(Serialize, Deserialize)]
struct RecoveryCase {
    entropy: String,
    words: String,
    wrapping_secret: String,
}

#[derive(Serialize, Deserialize)]
struct RecoveryFailCase {
    name: String,
    words: String,
    error: String,
    reason: String,
}

/// The 256-bit English vectors of the BIP39 reference (trezor/python-mnemonic `vectors.json`).
const BIP39_REFERENCE: [(&str, &str); 4] = [
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon art",
    ),
    (
        "7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f7f",
        "legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth useful legal winner thank year wave sausage worth title",
    ),
    (
        "8080808080808080808080808080808080808080808080808080808080808080",
        "letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic avoid letter advice cage absurd amount doctor acoustic bless",
    ),
    (
        "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo vote",
    ),
];

fn recovery_case(entropy: [u8; 32]) -> RecoveryCase {
    let phrase = RecoveryPhrase::from_entropy(entropy);
    RecoveryCase {
        entropy: hex::encode(entropy),
        words: phrase.to_words().to_string(),
        wrapping_secret: hex::encode(phrase.wrapping_secret().expose_secret()),
    }
}

fn write_recovery_vectors() {
    let mut cases: Vec<RecoveryCase> = BIP39_REFERENCE
        .iter()
        .map(|(entropy, _)| recovery_case(hex::decode(entropy).unwrap().try_into().unwrap()))
        .collect();
    let random = RecoveryPhrase::generate().unwrap();
    cases.push(recovery_case(*random.expose_secret()));
    store("recovery.json", &cases);

    let zero = BIP39_REFERENCE[0].1;
    let words: Vec<&str> = zero.split(' ').collect();
    let fail = |name: &str, words: String, reason: &str| RecoveryFailCase {
        name: name.to_owned(),
        words,
        error: "malformed".to_owned(),
        reason: reason.to_owned(),
    };
    let fails = vec![
        fail(
            "bad checksum word",
            zero.replace(" art", " abandon"),
            "checksum mismatch",
        ),
        fail("23 words", words[..23].join(" "), "expected 24 words"),
        fail("25 words", format!("{zero} art"), "expected 24 words"),
        fail(
            "unknown word",
            zero.replacen("abandon", "coffre", 1),
            "unknown word",
        ),
        fail(
            "valid 12-word BIP39 mnemonic",
            format!("{}about", "abandon ".repeat(11)),
            "expected 24 words",
        ),
        fail("empty", String::new(), "expected 24 words"),
        fail(
            "French word",
            zero.replacen("abandon", "abaisser", 1),
            "unknown word",
        ),
    ];
    store("fail_recovery.json", &fails);
}

fn check_recovery_vectors() {
    let cases = load::<RecoveryCase>("recovery.json");
    for (entropy, words) in BIP39_REFERENCE {
        let case = cases
            .iter()
            .find(|c| c.entropy == entropy)
            .expect("reference vector");
        assert_eq!(case.words, words, "BIP39 reference vector");
    }
    for case in &cases {
        let entropy: [u8; 32] = hex::decode(&case.entropy).unwrap().try_into().unwrap();
        let phrase = RecoveryPhrase::from_entropy(entropy);
        assert_eq!(phrase.to_words().as_str(), case.words);
        assert_eq!(
            hex::encode(phrase.wrapping_secret().expose_secret()),
            case.wrapping_secret
        );
        let sloppy = format!("\t{} \n", case.words.to_uppercase().replace(' ', "  "));
        for text in [case.words.clone(), sloppy] {
            let parsed = RecoveryPhrase::parse(&text).unwrap();
            assert_eq!(hex::encode(parsed.expose_secret()), case.entropy);
        }
    }
    for case in load::<RecoveryFailCase>("fail_recovery.json") {
        match RecoveryPhrase::parse(&case.words) {
            Err(Error::Malformed { reason, .. }) => {
                assert_eq!(case.error, "malformed", "{}", case.name);
                assert_eq!(reason, case.reason, "{}", case.name);
            }
            other => panic!("{}: {other:?}", case.name),
        }
    }
}

// ---------------------------------------------------------------------------------------------

#[test]
fn keybundle_vectors() {
    if writing() {
        return; // `write_vectors` writes, then checks.
    }
    check_keybundle_vectors();
}

#[test]
fn recovery_vectors() {
    if writing() {
        return;
    }
    check_recovery_vectors();
}

#[test]
fn write_vectors() {
    if !writing() {
        return;
    }
    write_keybundle_vectors();
    write_recovery_vectors();
    check_keybundle_vectors();
    check_recovery_vectors();
}

/// Prints how long one stretch takes at MIN and DEFAULT in the current profile.
#[test]
fn argon2id_timing() {
    let passphrase = Passphrase::from("timing".to_owned());
    for (name, params) in [
        ("MIN", Argon2Params::MIN),
        ("DEFAULT", Argon2Params::DEFAULT),
    ] {
        let start = Instant::now();
        stretch(&passphrase, &[7; 16], params).unwrap();
        println!(
            "Argon2id {name} (m={} KiB, t={}, p={}): {:?}",
            params.m_cost_kib(),
            params.t_cost(),
            params.p_cost(),
            start.elapsed()
        );
    }
}
