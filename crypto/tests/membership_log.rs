//! The membership log end to end: a realistic space, who can open which epoch key, and one test
//! per attack on the log (FORMAT.md section 9).

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use coffre_crypto::Error;
use coffre_crypto::hpke::{self, HpkeSealed};
use coffre_crypto::kdf::HPKE_INFO_EPOCH_WRAP;
use coffre_crypto::keys::{EntryHash, KeyCommitment};
use coffre_crypto::membership::{
    Action, MembershipEntry, MembershipLog, Role, UnsignedEntry, epoch_commitment,
};
use common::{
    Cast, cast, device_certified_by, entries, next, next_advancing, sorted, space, wrap_for,
};

fn is_integrity<T: std::fmt::Debug>(result: Result<T, Error>) -> bool {
    matches!(result, Err(Error::Integrity { .. }))
}

fn assert_integrity<T: std::fmt::Debug>(result: Result<T, Error>, reason_part: &str) {
    match result {
        Err(Error::Integrity { reason, .. }) => {
            assert!(
                reason.contains(reason_part),
                "reason {reason:?} lacks {reason_part:?}"
            )
        }
        other => panic!("expected an integrity error containing {reason_part:?}, got {other:?}"),
    }
}

#[test]
fn realistic_space_verifies_and_has_the_right_members() {
    let cast = cast();
    let space = space(&cast);
    let log = &space.log;
    assert_eq!(log.entries().len(), 6);
    assert_eq!(
        log.space_id().as_bytes(),
        log.entries()[0].hash().as_bytes()
    );

    let state = log.state();
    assert_eq!(state.epoch(), 2);
    assert_eq!(
        state.role_of(cast.alice.identity.sign_key()),
        Some(Role::Owner)
    );
    assert_eq!(
        state.role_of(cast.carol.identity.sign_key()),
        Some(Role::Writer)
    );
    assert_eq!(state.role_of(cast.bob.identity.sign_key()), None);
    assert_eq!(state.members().count(), 2);
    assert_eq!(state.owner_count(), 1);

    let before_removal = log.state_at(3).unwrap();
    assert_eq!(
        before_removal.role_of(cast.bob.identity.sign_key()),
        Some(Role::Writer)
    );
    assert_eq!(
        before_removal.role_of(cast.carol.identity.sign_key()),
        Some(Role::Reader)
    );
    assert_eq!(before_removal.epoch(), 1);

    // Re-verifying from the encoded bytes gives the same log.
    let encoded: Vec<Vec<u8>> = log.entries().iter().map(|e| e.encoded().to_vec()).collect();
    let again = MembershipLog::decode_and_verify(&encoded).unwrap();
    assert_eq!(again.state().head(), state.head());
    assert_eq!(again.space_id(), log.space_id());

    // Commitments match the keys the builders returned.
    for epoch in 1..=2 {
        assert_eq!(
            log.epoch_commitment(epoch).unwrap(),
            &epoch_commitment(log.space_id(), epoch, &space.keys[epoch as usize])
        );
    }
    // Rule-3 lookups: entry 2 has commit_seq 2, so it applies from commit 3 on.
    assert_eq!(log.entry_applying_at(1).unwrap().seq(), 1);
    assert_eq!(log.entry_applying_at(3).unwrap().seq(), 2);
    assert_eq!(log.entry_applying_at(6).unwrap().seq(), 5);
    assert_eq!(log.entry_applying_at(600).unwrap().seq(), 5);
    assert!(log.state_at_commit_seq(0).is_none());
}

#[test]
fn members_open_exactly_the_epoch_keys_they_should() {
    let cast = cast();
    let space = space(&cast);
    let log = &space.log;
    let (k1, k2) = (&space.keys[1], &space.keys[2]);

    // alice and carol hold the current key; carol walks back to epoch 1 as well.
    assert_eq!(&log.current_epoch_key(&cast.alice.secret).unwrap(), k2);
    assert_eq!(&log.current_epoch_key(&cast.carol.secret).unwrap(), k2);
    assert_eq!(&log.epoch_key(1, &cast.carol.secret).unwrap(), k1);
    assert_eq!(
        &log.entries()[3].open_epoch_key(&cast.carol.secret).unwrap(),
        k1
    );

    // bob holds epoch 1 (from his add wrap) but nothing after his removal [T-revocation].
    assert_eq!(&log.epoch_key(1, &cast.bob.secret).unwrap(), k1);
    assert_eq!(
        &log.entries()[2].open_epoch_key(&cast.bob.secret).unwrap(),
        k1
    );
    assert!(matches!(
        log.epoch_key(2, &cast.bob.secret),
        Err(Error::Authentication)
    ));
    let removal = &log.entries()[4];
    assert!(removal.wrap_for(cast.bob.identity.sign_key()).is_none());
    assert!(matches!(
        removal.open_epoch_key(&cast.bob.secret),
        Err(Error::Authentication)
    ));
    // Nor can bob open anyone else's wrap with his keys.
    let bob_enc = cast.bob.secret.enc_secret();
    for wrap in removal.wraps() {
        for aad_key in [
            bob_enc.public_key(),
            *cast.alice.identity.enc_key(),
            *cast.carol.identity.enc_key(),
        ] {
            let mut aad = b"CFML\x01".to_vec();
            aad.extend_from_slice(log.space_id().as_bytes());
            aad.extend_from_slice(&2u64.to_be_bytes());
            aad.extend_from_slice(&aad_key.to_bytes());
            let opened = hpke::open(
                bob_enc,
                HPKE_INFO_EPOCH_WRAP,
                &aad,
                &wrap.sealed().enc,
                &wrap.sealed().ciphertext,
            );
            assert!(matches!(opened, Err(Error::Authentication)));
        }
    }
    // An outsider opens nothing.
    assert!(matches!(
        log.epoch_key(1, &cast.mallory.secret),
        Err(Error::Authentication)
    ));

    // alice walks back from epoch 2 to epoch 1 through the removal's prev_epoch_seal.
    assert_eq!(&removal.previous_epoch_key(k2).unwrap(), k1);
    assert_eq!(&log.epoch_key(1, &cast.alice.secret).unwrap(), k1);
    // The wrong key cannot open the seal, and epoch 1 (from epoch 0) has no seal.
    assert!(matches!(
        removal.previous_epoch_key(k1),
        Err(Error::Authentication)
    ));
    assert!(log.entries()[1].prev_epoch_seal().is_none());
    assert!(matches!(
        log.epoch_key(0, &cast.alice.secret),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn a_wrap_moved_to_another_recipient_or_epoch_fails_the_commitment() {
    let cast = cast();
    let space = space(&cast);
    let log = &space.log;
    // carol's add wrap, presented as if it were in the removal entry (other epoch): the AAD
    // differs, so HPKE refuses.
    let add_carol = &log.entries()[3];
    let wrap = add_carol.wrap_for(cast.carol.identity.sign_key()).unwrap();
    let mut aad = b"CFML\x01".to_vec();
    aad.extend_from_slice(log.space_id().as_bytes());
    aad.extend_from_slice(&2u64.to_be_bytes());
    aad.extend_from_slice(&cast.carol.identity.enc_key().to_bytes());
    assert!(
        hpke::open(
            cast.carol.secret.enc_secret(),
            HPKE_INFO_EPOCH_WRAP,
            &aad,
            &wrap.sealed().enc,
            &wrap.sealed().ciphertext
        )
        .is_err()
    );
}

#[test]
fn builders_refuse_what_verifiers_refuse() {
    let cast = cast();
    let space = space(&cast);
    let log = &space.log;
    let Cast {
        alice,
        bob,
        carol,
        dave,
        mallory,
    } = &cast;
    // A removed member cannot sign anything.
    assert_integrity(log.rotate(&bob.secret, &bob.signer, 5), "not a member");
    // An outsider neither.
    assert_integrity(
        log.add(
            &mallory.secret,
            &mallory.signer,
            5,
            &mallory.identity,
            Role::Owner,
        ),
        "not a member",
    );
    // carol (writer) cannot add or rotate.
    assert_integrity(
        log.add(
            &carol.secret,
            &carol.signer,
            5,
            &dave.identity,
            Role::Reader,
        ),
        "admin",
    );
    assert_integrity(log.rotate(&carol.secret, &carol.signer, 5), "admin");
    // Adding a current member, removing a non-member, a no-op role change.
    assert_integrity(
        log.add(
            &alice.secret,
            &alice.signer,
            5,
            &carol.identity,
            Role::Reader,
        ),
        "already",
    );
    assert_integrity(
        log.remove(&alice.secret, &alice.signer, 5, bob.identity.sign_key()),
        "not a member",
    );
    assert_integrity(
        log.change_role(&alice.signer, 5, carol.identity.sign_key(), Role::Writer),
        "current role",
    );
    // commit_seq may not go backwards.
    assert_integrity(log.rotate(&alice.secret, &alice.signer, 4), "commit_seq");
    // A signer whose device belongs to someone else is refused before signing.
    assert!(matches!(
        log.rotate(&alice.secret, &carol.signer, 5),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn attack_writer_adds_a_member() {
    let cast = cast();
    let space = space(&cast);
    let Cast { carol, mallory, .. } = &cast;
    // carol is a writer; she forges an add of mallory with a valid-looking wrap.
    let mut forged = next(
        &space.log,
        Action::Add {
            member: mallory.identity.clone(),
            role: Role::Admin,
        },
    );
    forged.wraps = vec![wrap_for(&space.log, 2, mallory)];
    let forged = forged.sign(&carol.signer).unwrap();
    assert_integrity(space.log.clone().append(&forged), "admin or owner");
}

#[test]
fn attack_unsigned_or_uncertified_entries() {
    let cast = cast();
    let space = space(&cast);
    let Cast { alice, mallory, .. } = &cast;
    let good = space.log.rotate(&alice.secret, &alice.signer, 5).unwrap().0;

    // Signed by nobody: a broken signature.
    let mut bytes = good.encoded().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    assert!(matches!(
        MembershipEntry::decode(&bytes),
        Err(Error::Authentication)
    ));

    // Signed by a device that alice's identity never certified (mallory certified it), while
    // claiming alice as signer: the certificate is not alice's.
    let rogue = device_certified_by(mallory, 99);
    let mut forged = next(&space.log, Action::Rotate)
        .sign_to_bytes(&rogue)
        .unwrap();
    forged[5 + 32 + 8 + 32 + 8 + 8..][..32].copy_from_slice(&alice.identity.sign_key().to_bytes());
    assert_integrity(
        MembershipEntry::decode(&forged),
        "certificate not issued by the signer",
    );

    // Signed by mallory's own, properly certified device: mallory is not a member.
    let mut forged = next_advancing(&space.log, Action::Rotate, vec![]);
    forged.wraps = sorted(vec![
        wrap_for(&space.log, 3, alice),
        wrap_for(&space.log, 3, &cast.carol),
    ]);
    let forged = forged.sign(&mallory.signer).unwrap();
    assert_integrity(space.log.clone().append(&forged), "not a member");
}

#[test]
fn attack_ghost_member_in_the_wraps() {
    let cast = cast();
    let space = space(&cast);
    let Cast {
        alice,
        carol,
        mallory,
        ..
    } = &cast;
    let rotate = space.log.rotate(&alice.secret, &alice.signer, 5).unwrap().0;
    space.log.clone().append(&rotate).unwrap();

    // The gateway rewrites a wrap's recipient to mallory: the signature no longer verifies.
    let mut bytes = rotate.encoded().to_vec();
    let carol_key = carol.identity.sign_key().to_bytes();
    let at = bytes.windows(32).position(|w| w == carol_key).unwrap();
    bytes[at..at + 32].copy_from_slice(&mallory.identity.sign_key().to_bytes());
    assert!(MembershipEntry::decode(&bytes).is_err());

    // A signer (even the owner) cannot slip in a wrap for a non-member...
    let ghost = next_advancing(
        &space.log,
        Action::Rotate,
        vec![
            wrap_for(&space.log, 3, alice),
            wrap_for(&space.log, 3, carol),
            wrap_for(&space.log, 3, mallory),
        ],
    )
    .sign(&alice.signer)
    .unwrap();
    assert_integrity(space.log.clone().append(&ghost), "exactly the members");
    // ...nor leave a member without one.
    let missing = next_advancing(
        &space.log,
        Action::Rotate,
        vec![wrap_for(&space.log, 3, alice)],
    )
    .sign(&alice.signer)
    .unwrap();
    assert_integrity(space.log.clone().append(&missing), "exactly the members");
    // An add that also wraps for someone else.
    let mut add = next(
        &space.log,
        Action::Add {
            member: cast.dave.identity.clone(),
            role: Role::Reader,
        },
    );
    add.wraps = sorted(vec![
        wrap_for(&space.log, 2, &cast.dave),
        wrap_for(&space.log, 2, mallory),
    ]);
    assert_integrity(
        space.log.clone().append(&add.sign(&alice.signer).unwrap()),
        "one wrap",
    );
    // A change_role that carries a wrap.
    let mut change = next(
        &space.log,
        Action::ChangeRole {
            member_key: *carol.identity.sign_key(),
            role: Role::Reader,
        },
    );
    change.wraps = vec![wrap_for(&space.log, 2, mallory)];
    assert!(is_integrity(
        space
            .log
            .clone()
            .append(&change.sign(&alice.signer).unwrap())
    ));
}

#[test]
fn attack_reorder_truncate_duplicate() {
    let cast = cast();
    let space = space(&cast);
    let all = entries(&space.log);

    let mut reordered = all.clone();
    reordered.swap(2, 3);
    assert_integrity(MembershipLog::verify(&reordered), "seq");

    let mut truncated = all.clone();
    truncated.remove(3);
    assert_integrity(MembershipLog::verify(&truncated), "seq");

    let mut duplicated = all.clone();
    duplicated.insert(3, all[2].clone());
    assert_integrity(MembershipLog::verify(&duplicated), "seq");

    assert!(is_integrity(MembershipLog::verify(&[])));
    assert!(is_integrity(MembershipLog::verify(&all[1..])));
    // Dropping the tail is a valid (older) log on its own: pinning catches it, see `update`.
    MembershipLog::verify(&all[..4]).unwrap();
}

#[test]
fn attack_entry_from_another_space() {
    let cast = cast();
    let space = space(&cast);
    let alice = &cast.alice;
    let (other, _) =
        MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [8; 16]).unwrap();
    assert_ne!(other.space_id(), space.log.space_id());
    // Transplant: an entry correctly signed by alice for the other space, at the right position.
    let mut transplanted = next(
        &space.log,
        Action::ChangeRole {
            member_key: *cast.carol.identity.sign_key(),
            role: Role::Reader,
        },
    );
    transplanted.space_id = *other.space_id();
    let transplanted = transplanted.sign(&alice.signer).unwrap();
    assert_integrity(space.log.clone().append(&transplanted), "another space");
    // And a whole entry of the other log.
    let mut mixed = entries(&space.log);
    mixed.truncate(1);
    mixed.push(other.entries()[1].clone());
    assert!(is_integrity(MembershipLog::verify(&mixed)));
}

#[test]
fn attack_forged_genesis() {
    let cast = cast();
    let Cast { alice, mallory, .. } = &cast;
    // mallory creates a "space of alice's", naming alice as owner.
    let forged = UnsignedEntry {
        space_id: coffre_crypto::keys::SpaceId::from_bytes([0; 32]),
        seq: 0,
        prev_hash: EntryHash::from_bytes([0; 32]),
        commit_seq: 0,
        epoch: 0,
        action: Action::Create {
            salt: [1; 16],
            owner: alice.identity.clone(),
        },
        epoch_commitment: KeyCommitment::from_bytes([0; 32]),
        wraps: vec![],
        prev_epoch_seal: vec![],
    }
    .sign(&mallory.signer)
    .unwrap();
    assert_integrity(MembershipLog::verify(&[forged]), "signed by its owner");
    // A genesis that is not a create, or carries an epoch.
    let space = space(&cast);
    assert_integrity(MembershipLog::verify(&space.log.entries()[1..2]), "create");
    // Replacing genesis changes the space id, so nothing after it links any more.
    let (other, _) = MembershipEntry::genesis(&alice.identity, &alice.signer, [9; 16]).unwrap();
    let mut swapped = entries(&space.log);
    swapped[0] = other;
    assert!(is_integrity(MembershipLog::verify(&swapped)));
}

#[test]
fn attack_stale_epoch_on_remove() {
    let cast = cast();
    let space = space(&cast);
    let Cast { alice, carol, .. } = &cast;
    // Remove carol without advancing the epoch (and without a new key).
    let mut stale = next(
        &space.log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
    );
    stale.wraps = vec![wrap_for(&space.log, 2, alice)];
    assert_integrity(
        space
            .log
            .clone()
            .append(&stale.sign(&alice.signer).unwrap()),
        "advance the epoch",
    );
    // Advancing by two is refused too.
    let mut jump = next_advancing(
        &space.log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
        vec![wrap_for(&space.log, 3, alice)],
    );
    jump.epoch += 1;
    assert_integrity(
        space.log.clone().append(&jump.sign(&alice.signer).unwrap()),
        "advance the epoch",
    );
    // An add that changes the epoch or its commitment.
    let mut add = next(
        &space.log,
        Action::Add {
            member: cast.dave.identity.clone(),
            role: Role::Reader,
        },
    );
    add.wraps = vec![wrap_for(&space.log, 2, &cast.dave)];
    add.epoch_commitment = KeyCommitment::from_bytes([5; 32]);
    assert_integrity(
        space.log.clone().append(&add.sign(&alice.signer).unwrap()),
        "commitment",
    );
    // A remove without the seal of the previous key.
    let mut unsealed = next_advancing(
        &space.log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
        vec![wrap_for(&space.log, 3, alice)],
    );
    unsealed.prev_epoch_seal.clear();
    assert_integrity(
        space
            .log
            .clone()
            .append(&unsealed.sign(&alice.signer).unwrap()),
        "prev_epoch_seal",
    );
}

#[test]
fn attack_remove_keeps_a_wrap_for_the_removed_member() {
    let cast = cast();
    let space = space(&cast);
    let Cast { alice, carol, .. } = &cast;
    let leaky = next_advancing(
        &space.log,
        Action::Remove {
            member_key: *carol.identity.sign_key(),
        },
        vec![
            wrap_for(&space.log, 3, alice),
            wrap_for(&space.log, 3, carol),
        ],
    )
    .sign(&alice.signer)
    .unwrap();
    assert_integrity(space.log.clone().append(&leaky), "exactly the members");
    // The honest builder leaves carol out.
    let (honest, _) = space
        .log
        .remove(&alice.secret, &alice.signer, 5, carol.identity.sign_key())
        .unwrap();
    assert!(honest.wrap_for(carol.identity.sign_key()).is_none());
    space.log.clone().append(&honest).unwrap();
}

#[test]
fn attack_admin_removes_an_owner_and_owner_rules() {
    let cast = cast();
    let mut space = space(&cast);
    let Cast {
        alice, carol, dave, ..
    } = &cast;
    let add_dave = space
        .log
        .add(&alice.secret, &alice.signer, 5, &dave.identity, Role::Admin)
        .unwrap();
    space.log.append(&add_dave).unwrap();
    // dave (admin) removes alice (owner): refused by the builder and by verifiers.
    assert_integrity(
        space
            .log
            .remove(&dave.secret, &dave.signer, 5, alice.identity.sign_key()),
        "owner",
    );
    let forged = next_advancing(
        &space.log,
        Action::Remove {
            member_key: *alice.identity.sign_key(),
        },
        vec![
            wrap_for(&space.log, 3, carol),
            wrap_for(&space.log, 3, dave),
        ],
    )
    .sign(&dave.signer)
    .unwrap();
    assert_integrity(space.log.clone().append(&forged), "only an owner");
    // dave can neither make himself owner, nor add an owner, nor demote alice.
    assert_integrity(
        space
            .log
            .change_role(&dave.signer, 5, dave.identity.sign_key(), Role::Owner),
        "owner",
    );
    assert_integrity(
        space
            .log
            .change_role(&dave.signer, 5, alice.identity.sign_key(), Role::Reader),
        "owner",
    );
    assert_integrity(
        space.log.add(
            &dave.secret,
            &dave.signer,
            5,
            &cast.mallory.identity,
            Role::Owner,
        ),
        "owner",
    );
    // dave may remove carol (writer) and may leave.
    space
        .log
        .clone()
        .append(
            &space
                .log
                .remove(&dave.secret, &dave.signer, 5, carol.identity.sign_key())
                .unwrap()
                .0,
        )
        .unwrap();
    let (leave, _) = space.log.leave(&dave.secret, &dave.signer, 5).unwrap();
    space.log.clone().append(&leave).unwrap();
    // A writer may leave too.
    let (leave, _) = space.log.leave(&carol.secret, &carol.signer, 5).unwrap();
    space.log.clone().append(&leave).unwrap();
}

#[test]
fn attack_last_owner_leaves() {
    let cast = cast();
    let mut space = space(&cast);
    let Cast { alice, carol, .. } = &cast;
    assert_integrity(space.log.leave(&alice.secret, &alice.signer, 5), "no owner");
    assert_integrity(
        space
            .log
            .change_role(&alice.signer, 5, alice.identity.sign_key(), Role::Admin),
        "no owner",
    );
    let forged = next_advancing(
        &space.log,
        Action::Remove {
            member_key: *alice.identity.sign_key(),
        },
        vec![wrap_for(&space.log, 3, carol)],
    )
    .sign(&alice.signer)
    .unwrap();
    assert_integrity(space.log.clone().append(&forged), "no owner");
    // With a second owner, alice may leave, and carol can still read everything.
    let promote = space
        .log
        .change_role(&alice.signer, 5, carol.identity.sign_key(), Role::Owner)
        .unwrap();
    space.log.append(&promote).unwrap();
    let (leave, k3) = space.log.leave(&alice.secret, &alice.signer, 5).unwrap();
    space.log.append(&leave).unwrap();
    assert_eq!(space.log.current_epoch_key(&carol.secret).unwrap(), k3);
    assert_eq!(
        space.log.epoch_key(1, &carol.secret).unwrap(),
        space.keys[1]
    );
    assert!(space.log.epoch_key(3, &alice.secret).is_err());
}

#[test]
fn extend_is_atomic_and_update_detects_rollback_and_fork() {
    let cast = cast();
    let space = space(&cast);
    let all = entries(&space.log);
    let mut pinned = MembershipLog::verify(&all[..3]).unwrap();

    // A batch with a bad entry in the middle leaves the pinned log untouched.
    let mut bad = all[3..].to_vec();
    bad.swap(0, 1);
    assert!(is_integrity(pinned.extend(&bad)));
    assert_eq!(pinned.entries().len(), 3);
    assert_eq!(pinned.state().role_of(cast.carol.identity.sign_key()), None);

    // Rollback and fork against the pinned copy.
    assert_integrity(pinned.update(&all[..2]), "rollback");
    let (other_genesis, _) =
        MembershipEntry::genesis(&cast.alice.identity, &cast.alice.signer, [1; 16]).unwrap();
    let mut forked = all.clone();
    forked[0] = other_genesis;
    assert_integrity(pinned.update(&forked), "fork");
    assert_eq!(pinned.entries().len(), 3);

    pinned.update(&all).unwrap();
    assert_eq!(pinned.state().head(), space.log.state().head());
    pinned.update(&all).unwrap();
}

#[test]
fn every_bit_flip_of_an_entry_is_refused() {
    let cast = cast();
    let space = space(&cast);
    let entry = &space.log.entries()[2];
    let bytes = entry.encoded();
    // Flip a sample of bits across the whole entry (every 7th bit keeps the test fast).
    for bit in (0..bytes.len() * 8).step_by(7) {
        let mut flipped = bytes.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(MembershipEntry::decode(&flipped).is_err(), "bit {bit}");
    }
    for len in 0..bytes.len() {
        assert!(MembershipEntry::decode(&bytes[..len]).is_err());
    }
    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert!(matches!(
        MembershipEntry::decode(&trailing),
        Err(Error::Malformed { .. })
    ));
    let _ = HpkeSealed {
        enc: [0; 32],
        ciphertext: vec![],
    };
}
