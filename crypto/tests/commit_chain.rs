//! Signed commits and the history chain (FORMAT.md section 10): rules 1 to 4, freshness, and one
//! test per attack.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use coffre_crypto::Error;
use coffre_crypto::commit::{Commit, CommitChain, CommitHeader, LogHead, PinnedHead, verify_next};
use coffre_crypto::keys::{CommitHash, EpochKey};
use common::{cast, history, root, space};

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

/// The header `Commit::next` would use for the commit after `parent`, for forging variants.
fn header_after(parent: &Commit, space: &common::Space) -> CommitHeader {
    let seq = parent.seq() + 1;
    let state = space.log.state_at_commit_seq(seq).unwrap();
    CommitHeader {
        space_id: *space.log.space_id(),
        seq,
        parent: parent.hash(),
        epoch: state.epoch(),
        membership_hash: state.head(),
        log_head: LogHead::NONE,
    }
}

#[test]
fn history_verifies_and_roots_open() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    let mut prev = None;
    for commit in &commits {
        verify_next(prev, commit, &space.log).unwrap();
        let decoded = Commit::decode(commit.encoded()).unwrap();
        assert_eq!(&decoded, commit);
        let opened = commit
            .open_root(&space.keys[commit.epoch() as usize])
            .unwrap();
        let expected = root(commit.seq() as u8);
        assert_eq!(opened.root.id, expected.root.id);
        assert_eq!(opened.root.key, expected.root.key);
        assert_eq!(opened.time_ms, expected.time_ms);
        assert_eq!(opened.message, expected.message);
        prev = Some(commit);
    }
    assert_eq!(commits[4].epoch(), 2);
    assert_eq!(
        commits[2].author_device().identity_key(),
        cast.bob.identity.sign_key()
    );

    let mut chain = CommitChain::new(*space.log.space_id());
    chain.accept(&commits[..3], &space.log).unwrap();
    chain.accept(&commits[1..], &space.log).unwrap();
    assert_eq!(chain.head(), PinnedHead::of(&commits[5]));
    chain.accept(&[], &space.log).unwrap();
}

#[test]
fn attack_commit_by_a_reader() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    // carol is a reader in the state that applies at seq 5 (entry 4).
    let header = header_after(&commits[3], &space);
    let forged = Commit::sign(&header, &space.keys[2], &root(9), &cast.carol.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[3]), &forged, &space.log),
        "may not write",
    );
    assert_integrity(
        Commit::next(
            &space.log,
            Some(&commits[3]),
            &space.keys[2],
            LogHead::NONE,
            &root(9),
            &cast.carol.signer,
        ),
        "may not write",
    );
    // An outsider neither.
    let forged = Commit::sign(&header, &space.keys[2], &root(9), &cast.mallory.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[3]), &forged, &space.log),
        "not a member",
    );
}

#[test]
fn attack_removed_writer_commits_against_the_old_membership_head() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    // bob was removed by entry 4 (commit_seq 4), so entry 4 applies at seq 5. bob pretends he
    // never saw it: he names entry 3 (where he is still a writer) and epoch 1, whose key he has.
    let mut header = header_after(&commits[3], &space);
    let old = space.log.state_at(3).unwrap();
    header.membership_hash = old.head();
    header.epoch = old.epoch();
    let stale = Commit::sign(&header, &space.keys[1], &root(9), &cast.bob.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[3]), &stale, &space.log),
        "membership_hash",
    );
    // Naming the right entry does not help him: he is no longer a member.
    let header = header_after(&commits[3], &space);
    let honest = Commit::sign(&header, &space.keys[1], &root(9), &cast.bob.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[3]), &honest, &space.log),
        "not a member",
    );
    // And an epoch that does not match the entry is refused too.
    let mut header = header_after(&commits[3], &space);
    header.epoch = 1;
    let wrong_epoch = Commit::sign(&header, &space.keys[1], &root(9), &cast.alice.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[3]), &wrong_epoch, &space.log),
        "epoch",
    );
}

#[test]
fn attack_wrong_parent_and_skipped_seq() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    let mut header = header_after(&commits[1], &space);
    header.parent = commits[0].hash();
    let wrong_parent = Commit::sign(&header, &space.keys[1], &root(9), &cast.alice.signer).unwrap();
    assert_integrity(
        verify_next(Some(&commits[1]), &wrong_parent, &space.log),
        "parent_hash",
    );

    let mut header = header_after(&commits[1], &space);
    header.seq += 1;
    let state = space.log.state_at_commit_seq(header.seq).unwrap();
    header.membership_hash = state.head();
    let skipped = Commit::sign(&header, &space.keys[1], &root(9), &cast.alice.signer).unwrap();
    assert_integrity(verify_next(Some(&commits[1]), &skipped, &space.log), "seq");
    // As the first commit, only seq 1 is accepted.
    assert_integrity(verify_next(None, &commits[1], &space.log), "seq 1");
    // A commit of another space.
    let (other, other_key) = coffre_crypto::membership::MembershipLog::create(
        &cast.alice.identity,
        &cast.alice.secret,
        &cast.alice.signer,
        [3; 16],
    )
    .unwrap();
    let foreign = Commit::next(
        &other,
        None,
        &other_key,
        LogHead::NONE,
        &root(1),
        &cast.alice.signer,
    )
    .unwrap();
    assert_integrity(verify_next(None, &foreign, &space.log), "another space");
}

#[test]
fn attack_transplanted_sealed_root() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    // Move commit 1's sealed root into commit 2 (same epoch, same key) and re-sign it: the header
    // is the AAD, so the root no longer opens.
    let donor = commits[0].sealed_root().to_vec();
    let mut bytes = commits[1].encoded().to_vec();
    let own = commits[1].sealed_root();
    assert_eq!(own.len(), donor.len(), "same-length messages");
    let at = bytes.windows(own.len()).position(|w| w == own).unwrap();
    bytes[at..at + own.len()].copy_from_slice(&donor);
    // The signature now fails (the gateway cannot re-sign)...
    assert!(matches!(Commit::decode(&bytes), Err(Error::Authentication)));
    // ...and even a member re-signing it gets a root that does not open.
    let header = *commits[1].header();
    let resealed = Commit::sign(&header, &space.keys[1], &root(2), &cast.alice.signer).unwrap();
    let mut bytes = resealed.encoded()[..resealed.encoded().len() - 64 - 4 - donor.len()].to_vec();
    bytes.extend_from_slice(&(donor.len() as u32).to_be_bytes());
    bytes.extend_from_slice(&donor);
    let signature = {
        let (_, device) = common::secrets(cast.alice.seed);
        device.sign(coffre_crypto::kdf::SIG_COMMIT, &bytes)
    };
    bytes.extend_from_slice(&signature);
    let transplanted = Commit::decode(&bytes).unwrap();
    assert!(matches!(
        transplanted.open_root(&space.keys[1]),
        Err(Error::Authentication)
    ));
    // A wrong epoch key fails the same way.
    assert!(matches!(
        commits[0].open_root(&space.keys[2]),
        Err(Error::Authentication)
    ));
    assert!(matches!(
        commits[0].open_root(&EpochKey::from_bytes([1; 32])),
        Err(Error::Authentication)
    ));
}

#[test]
fn freshness_rollback_and_fork() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    let pin = PinnedHead::of(&commits[3]);

    // Extensions, with or without the pinned commit itself.
    assert_eq!(
        pin.check_extension(&commits[4..]).unwrap(),
        PinnedHead::of(&commits[5])
    );
    assert_eq!(
        pin.check_extension(&commits[2..]).unwrap(),
        PinnedHead::of(&commits[5])
    );
    assert_eq!(pin.check_extension(&commits[3..4]).unwrap(), pin);
    assert_eq!(
        PinnedHead::NONE.check_extension(&commits).unwrap(),
        PinnedHead::of(&commits[5])
    );

    // Rollback: the gateway serves an older head.
    assert_integrity(pin.check_extension(&commits[..2]), "rollback");
    // Fork: a different commit 4 (same author, different root), and a branch after it.
    let fork4 = Commit::next(
        &space.log,
        Some(&commits[2]),
        &space.keys[1],
        LogHead::NONE,
        &root(40),
        &cast.alice.signer,
    )
    .unwrap();
    assert_integrity(
        pin.check_extension(&[commits[2].clone(), fork4.clone()]),
        "fork",
    );
    let fork5 = Commit::next(
        &space.log,
        Some(&fork4),
        &space.keys[2],
        LogHead::NONE,
        &root(50),
        &cast.alice.signer,
    )
    .unwrap();
    assert_integrity(pin.check_extension(std::slice::from_ref(&fork5)), "fork");
    // Gap: commits that do not reach the pin; broken links inside the batch.
    assert_integrity(pin.check_extension(&commits[5..]), "gap");
    assert_integrity(
        pin.check_extension(&[commits[4].clone(), fork5.clone()]),
        "hash chain",
    );

    // The stateful chain refuses the same and stays where it was.
    let mut chain = CommitChain::pinned(*space.log.space_id(), pin);
    assert!(
        chain
            .accept(std::slice::from_ref(&fork5), &space.log)
            .is_err()
    );
    assert!(chain.accept(&commits[..3], &space.log).is_err());
    assert_eq!(chain.head(), pin);
    chain.accept(&commits[4..], &space.log).unwrap();
}

#[test]
fn structural_rules_of_decode() {
    let cast = cast();
    let space = space(&cast);
    let commits = history(&cast, &space);
    let bytes = commits[1].encoded();
    for bit in (0..bytes.len() * 8).step_by(5) {
        let mut flipped = bytes.to_vec();
        flipped[bit / 8] ^= 1 << (bit % 8);
        assert!(Commit::decode(&flipped).is_err(), "bit {bit}");
    }
    for len in 0..bytes.len() {
        assert!(Commit::decode(&bytes[..len]).is_err());
    }
    // Signed but non-canonical: seq 2 with a zero parent, epoch 0.
    let mut header = *commits[1].header();
    header.parent = CommitHash::from_bytes([0; 32]);
    assert!(matches!(
        Commit::sign(&header, &space.keys[1], &root(2), &cast.alice.signer),
        Err(Error::Malformed { .. })
    ));
    let mut header = *commits[1].header();
    header.epoch = 0;
    assert!(matches!(
        Commit::sign(&header, &space.keys[1], &root(2), &cast.alice.signer),
        Err(Error::Malformed { .. })
    ));
    // A message over the limit is refused when sealing.
    let mut long = root(1);
    long.message = "x".repeat(4097);
    assert!(matches!(
        Commit::sign(
            commits[0].header(),
            &space.keys[1],
            &long,
            &cast.alice.signer
        ),
        Err(Error::InvalidInput(_))
    ));
    // The builder refuses a key of the wrong epoch.
    assert!(matches!(
        Commit::next(
            &space.log,
            Some(&commits[5]),
            &space.keys[1],
            LogHead::NONE,
            &root(7),
            &cast.alice.signer
        ),
        Err(Error::InvalidInput(_))
    ));
}
