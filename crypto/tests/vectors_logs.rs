//! Test vectors for identities, device chains, membership logs, commits and invitations
//! (FORMAT.md section 13).
//!
//! `COFFRE_WRITE_VECTORS=1 cargo test -p coffre-crypto --test vectors_logs` regenerates the JSON
//! files in `tests/vectors/`; every other run reads them and checks each case, so a change to an
//! encoding or a rule shows up as a failing vector.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;

use coffre_crypto::Error;
use coffre_crypto::commit::{Commit, CommitChain, LogHead, PinnedHead};
use coffre_crypto::device::{DeviceAction, DeviceChain, DeviceEntry, DeviceEntryHash};
use coffre_crypto::identity::{Handle, Identity, IdentitySecret};
use coffre_crypto::invitation::Invitation;
use coffre_crypto::kdf::{SIG_COMMIT, SIG_DEVICE, SIG_IDENTITY, SIG_MEMBERSHIP};
use coffre_crypto::keys::{
    CommitHash, EncSecret, EntryHash, EpochKey, SignPublicKey, SigningSecret, SpaceId,
};
use coffre_crypto::membership::{Action, MembershipEntry, MembershipLog, Role};
use common::{Cast, cast, history, next, next_advancing, root, secrets, space, wrap_for};
use serde_json::{Value, json};

fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(path(name))
        .unwrap_or_else(|e| panic!("{name}: {e} (generate with COFFRE_WRITE_VECTORS=1)"));
    serde_json::from_str(&text).unwrap()
}

fn hex_of(value: &Value) -> Vec<u8> {
    hex::decode(value.as_str().unwrap()).unwrap()
}

fn hex32(value: &Value) -> [u8; 32] {
    hex_of(value).try_into().unwrap()
}

fn hexes(value: &Value) -> Vec<Vec<u8>> {
    value.as_array().unwrap().iter().map(hex_of).collect()
}

fn class(error: &Error) -> &'static str {
    match error {
        Error::Malformed { .. } => "malformed",
        Error::Authentication => "authentication",
        Error::Integrity { .. } => "integrity",
        _ => "other",
    }
}

fn identity_secret(seed: u8) -> IdentitySecret {
    secrets(seed).0
}

fn role_name(role: Role) -> &'static str {
    role.name()
}

/// Replaces the trailing 64-byte signature of `bytes` with `signer`'s over the rest.
fn resign(bytes: &mut Vec<u8>, domain: &str, signer: &SigningSecret) {
    bytes.truncate(bytes.len() - 64);
    let signature = signer.sign(domain, bytes);
    bytes.extend_from_slice(&signature);
}

fn device_secret(seed: u8) -> SigningSecret {
    secrets(seed).1
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

fn people_json(cast: &Cast) -> Value {
    let people = [
        &cast.alice,
        &cast.bob,
        &cast.carol,
        &cast.dave,
        &cast.mallory,
    ];
    Value::Array(
        people
            .iter()
            .map(|p| {
                json!({
                    "handle": p.identity.handle().as_str(),
                    "seed": p.seed,
                    "sign_seed": hex::encode([p.seed; 32]),
                    "enc_secret": hex::encode([p.seed.wrapping_add(1); 32]),
                    "device_seed": hex::encode([p.seed.wrapping_add(2); 32]),
                    "identity": hex::encode(p.identity.encoded()),
                    "device_certificate": hex::encode(p.signer.certificate().encoded()),
                })
            })
            .collect(),
    )
}

fn gen_identity() -> (Value, Value) {
    let mut cases = Vec::new();
    for (handle, seed, created) in [
        ("alice", 10u8, 1_700_000_000_010u64),
        ("bob.smith-2", 20, 0),
        ("0day_x", 30, u64::MAX),
    ] {
        let secret = identity_secret(seed);
        let identity = secret
            .certify(&Handle::parse(handle).unwrap(), created)
            .unwrap();
        cases.push(json!({
            "sign_seed": hex::encode([seed; 32]),
            "enc_secret": hex::encode([seed.wrapping_add(1); 32]),
            "handle": handle,
            "created_ms": created,
            "encoded": hex::encode(identity.encoded()),
            "sign_key": hex::encode(identity.sign_key().to_bytes()),
            "enc_key": hex::encode(identity.enc_key().to_bytes()),
            "fingerprint": identity.fingerprint().digits(),
        }));
    }
    let good = identity_secret(10)
        .certify(&Handle::parse("alice").unwrap(), 5)
        .unwrap();
    let bytes = good.encoded().to_vec();
    let mut fails = Vec::new();
    let mut fail = |description: &str, bytes: Vec<u8>, error: &str| {
        fails.push(
            json!({"description": description, "encoded": hex::encode(bytes), "error": error}),
        );
    };
    fail("empty", vec![], "malformed");
    fail(
        "truncated signature",
        bytes[..bytes.len() - 1].to_vec(),
        "malformed",
    );
    fail(
        "trailing byte",
        [bytes.clone(), vec![0]].concat(),
        "malformed",
    );
    fail(
        "wrong magic",
        [b"CFIX".to_vec(), bytes[4..].to_vec()].concat(),
        "malformed",
    );
    fail(
        "version 2",
        [bytes[..4].to_vec(), vec![2], bytes[5..].to_vec()].concat(),
        "malformed",
    );
    let mut flipped = bytes.clone();
    *flipped.last_mut().unwrap() ^= 1;
    fail("signature flipped", flipped, "authentication");
    let sign = SigningSecret::from_seed(&[10; 32]);
    let raw = |handle: &[u8], enc: [u8; 32]| {
        let mut out = b"CFID\x01".to_vec();
        out.extend_from_slice(&(handle.len() as u16).to_be_bytes());
        out.extend_from_slice(handle);
        out.extend_from_slice(&sign.public_key().to_bytes());
        out.extend_from_slice(&enc);
        out.extend_from_slice(&5u64.to_be_bytes());
        let signature = sign.sign(SIG_IDENTITY, &out);
        out.extend_from_slice(&signature);
        out
    };
    let enc = EncSecret::from_bytes([11; 32]).public_key().to_bytes();
    fail(
        "upper-case handle, validly signed",
        raw(b"Alice", enc),
        "malformed",
    );
    fail("empty handle, validly signed", raw(b"", enc), "malformed");
    fail(
        "low-order encryption key, validly signed",
        raw(b"alice", [0; 32]),
        "malformed",
    );
    let mut substituted = bytes.clone();
    let at = 5 + 2 + 5 + 32;
    substituted[at..at + 32]
        .copy_from_slice(&EncSecret::from_bytes([66; 32]).public_key().to_bytes());
    fail("substituted encryption key", substituted, "authentication");
    (Value::Array(cases), Value::Array(fails))
}

fn gen_device() -> (Value, Value) {
    let identity = SigningSecret::from_seed(&[10; 32]);
    let d1 = SigningSecret::from_seed(&[12; 32]).public_key();
    let d2 = SigningSecret::from_seed(&[13; 32]).public_key();
    let mut chain = DeviceChain::verify(
        &identity.public_key(),
        &[DeviceEntry::sign(
            &identity,
            0,
            DeviceEntryHash::from_bytes([0; 32]),
            DeviceAction::Add,
            &d1,
            100,
        )
        .unwrap()],
    )
    .unwrap();
    let add = chain
        .next_entry(&identity, DeviceAction::Add, &d2, 200)
        .unwrap();
    chain.extend(std::slice::from_ref(&add)).unwrap();
    let revoke = chain
        .next_entry(&identity, DeviceAction::Revoke, &d1, 300)
        .unwrap();
    chain.extend(std::slice::from_ref(&revoke)).unwrap();
    let entries: Vec<Value> = chain
        .entries()
        .iter()
        .map(|e| {
            json!({
                "encoded": hex::encode(e.encoded()),
                "seq": e.seq(),
                "action": match e.action() { DeviceAction::Add => "add", DeviceAction::Revoke => "revoke" },
                "device_key": hex::encode(e.device_key().to_bytes()),
                "created_ms": e.created_ms(),
                "hash": e.hash().to_hex(),
            })
        })
        .collect();
    let cases = json!([{
        "identity_seed": hex::encode([10u8; 32]),
        "identity_key": hex::encode(identity.public_key().to_bytes()),
        "entries": entries,
        "active": [hex::encode(d2.to_bytes())],
    }]);

    let all: Vec<Vec<u8>> = chain
        .entries()
        .iter()
        .map(|e| e.encoded().to_vec())
        .collect();
    let mut fails = Vec::new();
    let mut fail = |description: &str, entries: Vec<Vec<u8>>, error: &str| {
        fails.push(json!({
            "description": description,
            "identity_key": hex::encode(identity.public_key().to_bytes()),
            "entries": entries.iter().map(hex::encode).collect::<Vec<_>>(),
            "error": error,
        }));
    };
    let mut truncated = all[0].clone();
    truncated.pop();
    fail("truncated entry", vec![truncated], "malformed");
    let mut action = all[0].clone();
    action[5 + 32 + 8 + 32] = 3;
    resign(&mut action, SIG_DEVICE, &identity);
    fail("unknown action, validly signed", vec![action], "malformed");
    let mut flipped = all[1].clone();
    *flipped.last_mut().unwrap() ^= 0x80;
    fail(
        "signature flipped",
        vec![all[0].clone(), flipped],
        "authentication",
    );
    fail(
        "chain without its first entry",
        all[1..].to_vec(),
        "integrity",
    );
    fail(
        "entries swapped",
        vec![all[0].clone(), all[2].clone(), all[1].clone()],
        "integrity",
    );
    let first_is_revoke = DeviceEntry::sign(
        &identity,
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Revoke,
        &d1,
        1,
    )
    .unwrap();
    fail(
        "first entry is a revoke",
        vec![first_is_revoke.encoded().to_vec()],
        "integrity",
    );
    let readd = chain
        .next_entry(&identity, DeviceAction::Add, &d1, 400)
        .unwrap();
    fail(
        "revoked device added again",
        [all.clone(), vec![readd.encoded().to_vec()]].concat(),
        "integrity",
    );
    let other = SigningSecret::from_seed(&[50; 32]);
    let foreign = DeviceEntry::sign(
        &other,
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &d1,
        1,
    )
    .unwrap();
    fail(
        "entry of another identity",
        vec![foreign.encoded().to_vec()],
        "integrity",
    );
    (cases, Value::Array(fails))
}

fn gen_membership(cast: &Cast, space: &common::Space) -> (Value, Value) {
    let log = &space.log;
    let entries: Vec<Value> = log
        .entries()
        .iter()
        .map(|e| {
            json!({
                "encoded": hex::encode(e.encoded()),
                "hash": e.hash().to_hex(),
                "seq": e.seq(),
                "commit_seq": e.commit_seq(),
                "epoch": e.epoch(),
                "action": e.action().name(),
                "signer_key": hex::encode(e.signer_key().to_bytes()),
                "wraps": e.wraps().iter().map(|w| hex::encode(w.recipient().to_bytes())).collect::<Vec<_>>(),
                "epoch_commitment": e.epoch_commitment().to_hex(),
            })
        })
        .collect();
    // Which epochs each person can open ("" = cannot).
    let people = [&cast.alice, &cast.bob, &cast.carol, &cast.mallory];
    let access: Vec<Value> = people
        .iter()
        .map(|p| {
            json!({
                "seed": p.seed,
                "epochs": (1..=2u64).map(|e| log.epoch_key(e, &p.secret).map(|k| hex::encode(k.expose_secret())).unwrap_or_default()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let members: Vec<Value> = log
        .state()
        .members()
        .map(|m| json!({"key": hex::encode(m.key().to_bytes()), "role": role_name(m.role())}))
        .collect();
    let cases = json!({
        "people": people_json(cast),
        "space_id": log.space_id().to_hex(),
        "entries": entries,
        "epoch_keys": [hex::encode(space.keys[1].expose_secret()), hex::encode(space.keys[2].expose_secret())],
        "access": access,
        "members": members,
    });

    let all: Vec<Vec<u8>> = log.entries().iter().map(|e| e.encoded().to_vec()).collect();
    let mut fails = Vec::new();
    let mut fail = |description: &str, entries: Vec<Vec<u8>>, error: &str| {
        fails.push(json!({
            "description": description,
            "entries": entries.iter().map(hex::encode).collect::<Vec<_>>(),
            "error": error,
        }));
    };
    let with = |extra: &MembershipEntry| [all.clone(), vec![extra.encoded().to_vec()]].concat();
    let Cast {
        alice,
        bob,
        carol,
        dave,
        mallory,
    } = cast;
    let mut truncated = all.clone();
    truncated[2].truncate(200);
    fail("truncated entry", truncated, "malformed");
    let mut trailing = all.clone();
    trailing[3].push(0);
    fail("trailing byte", trailing, "malformed");
    let mut flipped = all.clone();
    *flipped[4].last_mut().unwrap() ^= 1;
    fail("signature flipped", flipped, "authentication");
    let mut action = all.clone();
    action[1][5 + 32 + 8 + 32 + 8 + 8 + 32 + 4 + coffre_crypto::device::DEVICE_ENTRY_LEN] = 0x06;
    resign(&mut action[1], SIG_MEMBERSHIP, &device_secret(alice.seed));
    fail("unknown action, validly signed", action, "malformed");
    let mut reordered = all.clone();
    reordered.swap(2, 3);
    fail("entries reordered", reordered, "integrity");
    let mut dropped = all.clone();
    dropped.remove(3);
    fail("middle entry dropped", dropped, "integrity");
    let mut duplicated = all.clone();
    duplicated.insert(3, all[2].clone());
    fail("entry duplicated", duplicated, "integrity");
    fail("no genesis", all[1..].to_vec(), "integrity");

    let mut add = next(
        log,
        Action::Add {
            member: mallory.identity.clone(),
            role: Role::Admin,
        },
    );
    add.wraps = vec![wrap_for(log, 2, mallory)];
    fail(
        "writer adds a member",
        with(&add.sign(&carol.signer).unwrap()),
        "integrity",
    );
    let mut unsorted = next_advancing(
        log,
        Action::Rotate,
        vec![wrap_for(log, 3, alice), wrap_for(log, 3, carol)],
    );
    unsorted.wraps.reverse();
    let bytes = unsorted.sign_to_bytes(&alice.signer).unwrap();
    fail(
        "wraps unsorted, validly signed",
        [all.clone(), vec![bytes]].concat(),
        "malformed",
    );
    let ghost = next_advancing(
        log,
        Action::Rotate,
        vec![
            wrap_for(log, 3, alice),
            wrap_for(log, 3, carol),
            wrap_for(log, 3, mallory),
        ],
    );
    fail(
        "ghost wrap for a non-member",
        with(&ghost.sign(&alice.signer).unwrap()),
        "integrity",
    );
    let leaky = next_advancing(
        log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
        vec![wrap_for(log, 3, alice), wrap_for(log, 3, carol)],
    );
    fail(
        "remove keeps a wrap for the removed member",
        with(&leaky.sign(&alice.signer).unwrap()),
        "integrity",
    );
    let mut stale = next(
        log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
    );
    stale.wraps = vec![wrap_for(log, 2, alice)];
    fail(
        "remove without advancing the epoch",
        with(&stale.sign(&alice.signer).unwrap()),
        "integrity",
    );
    let last_owner = next_advancing(
        log,
        Action::Remove {
            member_key: *alice.identity.sign_key(),
        },
        vec![wrap_for(log, 3, carol)],
    );
    fail(
        "last owner leaves",
        with(&last_owner.sign(&alice.signer).unwrap()),
        "integrity",
    );
    let by_removed = next_advancing(
        log,
        Action::Rotate,
        vec![wrap_for(log, 3, alice), wrap_for(log, 3, carol)],
    );
    fail(
        "entry signed by a removed member",
        with(&by_removed.sign(&bob.signer).unwrap()),
        "integrity",
    );
    let mut foreign = next(
        log,
        Action::ChangeRole {
            member_key: *carol.identity.sign_key(),
            role: Role::Reader,
        },
    );
    foreign.space_id = SpaceId::from_bytes([0xee; 32]);
    fail(
        "entry of another space",
        with(&foreign.sign(&alice.signer).unwrap()),
        "integrity",
    );
    let mut uncertified = next(
        log,
        Action::ChangeRole {
            member_key: *carol.identity.sign_key(),
            role: Role::Reader,
        },
    )
    .sign_to_bytes(&common::device_certified_by(mallory, 99))
    .unwrap();
    uncertified[5 + 32 + 8 + 32 + 8 + 8..][..32]
        .copy_from_slice(&alice.identity.sign_key().to_bytes());
    fail(
        "device not certified by the signer",
        [all.clone(), vec![uncertified]].concat(),
        "integrity",
    );
    let forged_genesis = coffre_crypto::membership::UnsignedEntry {
        space_id: SpaceId::from_bytes([0; 32]),
        seq: 0,
        prev_hash: EntryHash::from_bytes([0; 32]),
        commit_seq: 0,
        epoch: 0,
        action: Action::Create {
            salt: [1; 16],
            owner: alice.identity.clone(),
        },
        epoch_commitment: coffre_crypto::keys::KeyCommitment::from_bytes([0; 32]),
        wraps: vec![],
        prev_epoch_seal: vec![],
    }
    .sign(&mallory.signer)
    .unwrap();
    fail(
        "genesis naming an owner who did not sign it",
        vec![forged_genesis.encoded().to_vec()],
        "integrity",
    );
    let _ = dave;
    (cases, Value::Array(fails))
}

fn gen_commit(cast: &Cast, space: &common::Space) -> (Value, Value) {
    let log = &space.log;
    let commits = history(cast, space);
    let membership: Vec<String> = log
        .entries()
        .iter()
        .map(|e| hex::encode(e.encoded()))
        .collect();
    let cases: Vec<Value> = commits
        .iter()
        .map(|c| {
            let r = c.open_root(&space.keys[c.epoch() as usize]).unwrap();
            json!({
                "encoded": hex::encode(c.encoded()),
                "hash": c.hash().to_hex(),
                "seq": c.seq(),
                "epoch": c.epoch(),
                "membership_hash": c.membership_hash().to_hex(),
                "author_key": hex::encode(c.author_device().identity_key().to_bytes()),
                "log_size": c.log_head().size,
                "root_id": r.root.id.to_hex(),
                "root_key": hex::encode(r.root.key.expose_secret()),
                "time_ms": r.time_ms,
                "message": r.message,
            })
        })
        .collect();
    let value = json!({
        "membership": membership,
        "epoch_keys": [hex::encode(space.keys[1].expose_secret()), hex::encode(space.keys[2].expose_secret())],
        "commits": cases,
    });

    let enc = |cs: &[Commit]| cs.iter().map(|c| c.encoded().to_vec()).collect::<Vec<_>>();
    let mut fails = Vec::new();
    let mut fail =
        |description: &str, pinned: Option<&Commit>, commits: Vec<Vec<u8>>, error: &str| {
            let pin = pinned.map(PinnedHead::of).unwrap_or(PinnedHead::NONE);
            fails.push(json!({
                "description": description,
                "membership": membership,
                "pinned_seq": pin.seq,
                "pinned_hash": pin.hash.to_hex(),
                "commits": commits.iter().map(hex::encode).collect::<Vec<_>>(),
                "error": error,
            }));
        };
    let mut truncated = enc(&commits[..2]);
    truncated[1].pop();
    fail("truncated commit", None, truncated, "malformed");
    let mut flipped = enc(&commits[..2]);
    flipped[1][20] ^= 1;
    fail("header bit flipped", None, flipped, "authentication");
    let mut epoch0 = enc(&commits[..1]);
    epoch0[0][5 + 32 + 8 + 32..][..8].copy_from_slice(&0u64.to_be_bytes());
    resign(&mut epoch0[0], SIG_COMMIT, &device_secret(cast.alice.seed));
    fail("epoch 0, validly signed", None, epoch0, "malformed");
    let (a, b) = (&cast.alice, &cast.bob);
    let key = |e: u64| &space.keys[e as usize];
    let reader = {
        let mut h = *commits[4].header();
        h.log_head = LogHead::NONE;
        Commit::sign(&h, key(2), &root(9), &cast.carol.signer).unwrap()
    };
    fail(
        "commit by a reader",
        Some(&commits[3]),
        vec![reader.encoded().to_vec()],
        "integrity",
    );
    let stale = {
        let mut h = *commits[4].header();
        let old = log.state_at(3).unwrap();
        h.membership_hash = old.head();
        h.epoch = 1;
        Commit::sign(&h, key(1), &root(9), &b.signer).unwrap()
    };
    fail(
        "removed writer names the old membership head",
        Some(&commits[3]),
        vec![stale.encoded().to_vec()],
        "integrity",
    );
    let wrong_parent = {
        let mut h = *commits[2].header();
        h.parent = commits[0].hash();
        Commit::sign(&h, key(1), &root(9), &a.signer).unwrap()
    };
    fail(
        "wrong parent hash",
        Some(&commits[1]),
        vec![wrong_parent.encoded().to_vec()],
        "integrity",
    );
    fail(
        "skipped seq",
        Some(&commits[1]),
        enc(&commits[3..5]),
        "integrity",
    );
    fail(
        "rollback below the pinned head",
        Some(&commits[4]),
        enc(&commits[..3]),
        "integrity",
    );
    let fork = Commit::next(
        log,
        Some(&commits[2]),
        key(1),
        LogHead::NONE,
        &root(40),
        &a.signer,
    )
    .unwrap();
    fail(
        "fork at the pinned seq",
        Some(&commits[3]),
        vec![commits[2].encoded().to_vec(), fork.encoded().to_vec()],
        "integrity",
    );
    fail(
        "first commit is not seq 1",
        None,
        enc(&commits[1..3]),
        "integrity",
    );
    (value, Value::Array(fails))
}

fn gen_invitation(cast: &Cast, space: &common::Space) -> (Value, Value) {
    let add_carol = &space.log.entries()[3];
    let bytes = Invitation::seal(
        &cast.alice.identity,
        &cast.alice.signer,
        &cast.carol.identity,
        space.log.space_id(),
        Role::Reader,
        &add_carol.hash(),
        "Jardins partagés",
    )
    .unwrap();
    let cases = json!([{
        "recipient_seed": cast.carol.seed,
        "encoded": hex::encode(&bytes),
        "space_id": space.log.space_id().to_hex(),
        "role": "reader",
        "membership_hash": add_carol.hash().to_hex(),
        "space_name": "Jardins partagés",
        "inviter_key": hex::encode(cast.alice.identity.sign_key().to_bytes()),
    }]);
    let mut fails = Vec::new();
    let mut fail = |description: &str, seed: u8, bytes: Vec<u8>, error: &str| {
        fails.push(json!({"description": description, "recipient_seed": seed, "encoded": hex::encode(bytes), "error": error}));
    };
    fail(
        "wrong recipient",
        cast.bob.seed,
        bytes.clone(),
        "authentication",
    );
    let mut readdressed = bytes.clone();
    readdressed[5..37].copy_from_slice(&cast.bob.identity.enc_key().to_bytes());
    fail(
        "readdressed to another key",
        cast.bob.seed,
        readdressed,
        "authentication",
    );
    let mut tampered = bytes.clone();
    *tampered.last_mut().unwrap() ^= 1;
    fail(
        "ciphertext tampered",
        cast.carol.seed,
        tampered,
        "authentication",
    );
    let mut trailing = bytes.clone();
    trailing.push(0);
    fail("trailing byte", cast.carol.seed, trailing, "malformed");
    fail(
        "wrong magic",
        cast.carol.seed,
        [b"CFIP".to_vec(), bytes[4..].to_vec()].concat(),
        "malformed",
    );
    (cases, Value::Array(fails))
}

#[test]
fn write_vectors() {
    if std::env::var_os("COFFRE_WRITE_VECTORS").is_none_or(|v| v != "1") {
        return;
    }
    let cast = cast();
    let space = space(&cast);
    let write = |name: &str, value: Value| {
        std::fs::create_dir_all(path("")).unwrap();
        std::fs::write(
            path(name),
            serde_json::to_string_pretty(&value).unwrap() + "\n",
        )
        .unwrap();
    };
    let (cases, fails) = gen_identity();
    write("identity.json", cases);
    write("fail_identity.json", fails);
    let (cases, fails) = gen_device();
    write("device.json", cases);
    write("fail_device.json", fails);
    let (cases, fails) = gen_membership(&cast, &space);
    write("membership.json", cases);
    write("fail_membership.json", fails);
    let (cases, fails) = gen_commit(&cast, &space);
    write("commit.json", cases);
    write("fail_commit.json", fails);
    let (cases, fails) = gen_invitation(&cast, &space);
    write("invitation.json", cases);
    write("fail_invitation.json", fails);
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

fn expect_class<T: std::fmt::Debug>(
    result: Result<T, Error>,
    expected: &Value,
    description: &Value,
) {
    match result {
        Ok(value) => panic!("{description}: accepted {value:?}"),
        Err(error) => assert_eq!(
            class(&error),
            expected.as_str().unwrap(),
            "{description}: {error}"
        ),
    }
}

#[test]
fn identity_vectors() {
    for case in load("identity.json").as_array().unwrap() {
        let identity = Identity::decode(&hex_of(&case["encoded"])).unwrap();
        assert_eq!(identity.handle().as_str(), case["handle"].as_str().unwrap());
        assert_eq!(identity.created_ms(), case["created_ms"].as_u64().unwrap());
        assert_eq!(identity.sign_key().to_bytes(), hex32(&case["sign_key"]));
        assert_eq!(identity.enc_key().to_bytes(), hex32(&case["enc_key"]));
        assert_eq!(
            identity.fingerprint().digits(),
            case["fingerprint"].as_str().unwrap()
        );
        // Ed25519 is deterministic: the secrets reproduce the exact bytes.
        let secret = IdentitySecret::from_parts(
            SigningSecret::from_seed(&hex32(&case["sign_seed"])),
            EncSecret::from_bytes(hex32(&case["enc_secret"])),
        );
        let again = secret
            .certify(identity.handle(), identity.created_ms())
            .unwrap();
        assert_eq!(again.encoded(), identity.encoded());
    }
    for case in load("fail_identity.json").as_array().unwrap() {
        expect_class(
            Identity::decode(&hex_of(&case["encoded"])),
            &case["error"],
            &case["description"],
        );
    }
}

#[test]
fn device_vectors() {
    for case in load("device.json").as_array().unwrap() {
        let identity = SigningSecret::from_seed(&hex32(&case["identity_seed"]));
        let key = SignPublicKey::from_bytes(&hex32(&case["identity_key"])).unwrap();
        assert_eq!(identity.public_key(), key);
        let mut entries = Vec::new();
        for e in case["entries"].as_array().unwrap() {
            let entry = DeviceEntry::decode(&hex_of(&e["encoded"])).unwrap();
            assert_eq!(entry.seq(), e["seq"].as_u64().unwrap());
            assert_eq!(entry.created_ms(), e["created_ms"].as_u64().unwrap());
            assert_eq!(entry.device_key().to_bytes(), hex32(&e["device_key"]));
            assert_eq!(entry.hash().to_hex(), e["hash"].as_str().unwrap());
            let action = match e["action"].as_str().unwrap() {
                "add" => DeviceAction::Add,
                _ => DeviceAction::Revoke,
            };
            assert_eq!(entry.action(), action);
            let again = DeviceEntry::sign(
                &identity,
                entry.seq(),
                *entry.prev_hash(),
                action,
                entry.device_key(),
                entry.created_ms(),
            )
            .unwrap();
            assert_eq!(again.encoded(), entry.encoded());
            entries.push(entry);
        }
        let chain = DeviceChain::verify(&key, &entries).unwrap();
        let active: Vec<String> = chain
            .active_devices()
            .map(|k| hex::encode(k.to_bytes()))
            .collect();
        let expected: Vec<String> = case["active"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(active, expected);
    }
    for case in load("fail_device.json").as_array().unwrap() {
        let key = SignPublicKey::from_bytes(&hex32(&case["identity_key"])).unwrap();
        let result = hexes(&case["entries"])
            .iter()
            .map(|bytes| DeviceEntry::decode(bytes))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|entries| DeviceChain::verify(&key, &entries));
        expect_class(result, &case["error"], &case["description"]);
    }
}

#[test]
fn membership_vectors() {
    let value = load("membership.json");
    let log = MembershipLog::decode_and_verify(&hexes(&Value::Array(
        value["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["encoded"].clone())
            .collect(),
    )))
    .unwrap();
    assert_eq!(log.space_id().to_hex(), value["space_id"].as_str().unwrap());
    for (entry, expected) in log
        .entries()
        .iter()
        .zip(value["entries"].as_array().unwrap())
    {
        assert_eq!(entry.hash().to_hex(), expected["hash"].as_str().unwrap());
        assert_eq!(entry.seq(), expected["seq"].as_u64().unwrap());
        assert_eq!(entry.commit_seq(), expected["commit_seq"].as_u64().unwrap());
        assert_eq!(entry.epoch(), expected["epoch"].as_u64().unwrap());
        assert_eq!(entry.action().name(), expected["action"].as_str().unwrap());
        assert_eq!(
            entry.signer_key().to_bytes(),
            hex32(&expected["signer_key"])
        );
        assert_eq!(
            entry.epoch_commitment().to_hex(),
            expected["epoch_commitment"].as_str().unwrap()
        );
        let wraps: Vec<[u8; 32]> = entry
            .wraps()
            .iter()
            .map(|w| w.recipient().to_bytes())
            .collect();
        let expected_wraps: Vec<[u8; 32]> = expected["wraps"]
            .as_array()
            .unwrap()
            .iter()
            .map(hex32)
            .collect();
        assert_eq!(wraps, expected_wraps);
    }
    let members: Vec<(String, &str)> = log
        .state()
        .members()
        .map(|m| (hex::encode(m.key().to_bytes()), m.role().name()))
        .collect();
    let expected: Vec<(String, &str)> = value["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["key"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(members, expected);
    let keys: Vec<EpochKey> = value["epoch_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| EpochKey::from_bytes(hex32(k)))
        .collect();
    for (index, key) in keys.iter().enumerate() {
        let epoch = index as u64 + 1;
        assert_eq!(
            log.epoch_commitment(epoch).unwrap(),
            &coffre_crypto::membership::epoch_commitment(log.space_id(), epoch, key)
        );
    }
    for person in value["access"].as_array().unwrap() {
        let secret = identity_secret(person["seed"].as_u64().unwrap() as u8);
        for (index, expected) in person["epochs"].as_array().unwrap().iter().enumerate() {
            let opened = log.epoch_key(index as u64 + 1, &secret);
            match expected.as_str().unwrap() {
                "" => assert!(matches!(opened, Err(Error::Authentication))),
                key => assert_eq!(hex::encode(opened.unwrap().expose_secret()), key),
            }
        }
    }
    for case in load("fail_membership.json").as_array().unwrap() {
        expect_class(
            MembershipLog::decode_and_verify(&hexes(&case["entries"])),
            &case["error"],
            &case["description"],
        );
    }
}

#[test]
fn commit_vectors() {
    let value = load("commit.json");
    let log = MembershipLog::decode_and_verify(&hexes(&value["membership"])).unwrap();
    let keys: Vec<EpochKey> = value["epoch_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| EpochKey::from_bytes(hex32(k)))
        .collect();
    let mut commits = Vec::new();
    for case in value["commits"].as_array().unwrap() {
        let commit = Commit::decode(&hex_of(&case["encoded"])).unwrap();
        assert_eq!(commit.hash().to_hex(), case["hash"].as_str().unwrap());
        assert_eq!(commit.seq(), case["seq"].as_u64().unwrap());
        assert_eq!(commit.epoch(), case["epoch"].as_u64().unwrap());
        assert_eq!(
            commit.membership_hash().to_hex(),
            case["membership_hash"].as_str().unwrap()
        );
        assert_eq!(
            commit.author_device().identity_key().to_bytes(),
            hex32(&case["author_key"])
        );
        assert_eq!(commit.log_head().size, case["log_size"].as_u64().unwrap());
        let root = commit
            .open_root(&keys[commit.epoch() as usize - 1])
            .unwrap();
        assert_eq!(root.root.id.to_hex(), case["root_id"].as_str().unwrap());
        assert_eq!(root.root.key.expose_secret(), &hex32(&case["root_key"]));
        assert_eq!(root.time_ms, case["time_ms"].as_i64().unwrap());
        assert_eq!(root.message, case["message"].as_str().unwrap());
        commits.push(commit);
    }
    let mut chain = CommitChain::new(*log.space_id());
    chain.accept(&commits, &log).unwrap();
    assert_eq!(chain.head().seq, commits.len() as u64);

    for case in load("fail_commit.json").as_array().unwrap() {
        let log = MembershipLog::decode_and_verify(&hexes(&case["membership"])).unwrap();
        let pin = PinnedHead {
            seq: case["pinned_seq"].as_u64().unwrap(),
            hash: CommitHash::from_hex(case["pinned_hash"].as_str().unwrap()).unwrap(),
        };
        let result = hexes(&case["commits"])
            .iter()
            .map(|bytes| Commit::decode(bytes))
            .collect::<Result<Vec<_>, _>>()
            .and_then(|commits| CommitChain::pinned(*log.space_id(), pin).accept(&commits, &log));
        expect_class(result, &case["error"], &case["description"]);
    }
}

#[test]
fn invitation_vectors() {
    for case in load("invitation.json").as_array().unwrap() {
        let secret = identity_secret(case["recipient_seed"].as_u64().unwrap() as u8);
        let invitation = Invitation::open(&secret, &hex_of(&case["encoded"])).unwrap();
        assert_eq!(
            invitation.space_id().to_hex(),
            case["space_id"].as_str().unwrap()
        );
        assert_eq!(invitation.role().name(), case["role"].as_str().unwrap());
        assert_eq!(
            invitation.membership_hash().to_hex(),
            case["membership_hash"].as_str().unwrap()
        );
        assert_eq!(
            invitation.space_name(),
            case["space_name"].as_str().unwrap()
        );
        assert_eq!(
            invitation.inviter().sign_key().to_bytes(),
            hex32(&case["inviter_key"])
        );
    }
    for case in load("fail_invitation.json").as_array().unwrap() {
        let secret = identity_secret(case["recipient_seed"].as_u64().unwrap() as u8);
        expect_class(
            Invitation::open(&secret, &hex_of(&case["encoded"])),
            &case["error"],
            &case["description"],
        );
    }
}
