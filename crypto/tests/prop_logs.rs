//! Property tests for the logs: decoders never panic and refuse every mutation of a valid
//! structure; any sequence of operations the builders accept yields a log that verifies and keeps
//! the invariants (an owner remains, members hold the current key, others do not).

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::LazyLock;

use coffre_crypto::commit::Commit;
use coffre_crypto::invitation::Invitation;
use coffre_crypto::membership::{MembershipEntry, MembershipLog, Role};
use proptest::prelude::*;

struct Samples {
    entries: Vec<Vec<u8>>,
    commits: Vec<Vec<u8>>,
    invitation: Vec<u8>,
}

static SAMPLES: LazyLock<Samples> = LazyLock::new(|| {
    let cast = common::cast();
    let space = common::space(&cast);
    let commits = common::history(&cast, &space);
    let invitation = Invitation::seal(
        &cast.alice.identity,
        &cast.alice.signer,
        &cast.carol.identity,
        space.log.space_id(),
        Role::Reader,
        &space.log.entries()[3].hash(),
        "space",
    )
    .unwrap();
    Samples {
        entries: space
            .log
            .entries()
            .iter()
            .map(|e| e.encoded().to_vec())
            .collect(),
        commits: commits.iter().map(|c| c.encoded().to_vec()).collect(),
        invitation,
    }
});

/// A mutation of `bytes`: flip one byte, truncate, or insert a byte.
fn mutate(bytes: &[u8], kind: u8, position: usize, value: u8) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let at = position % bytes.len();
    match kind % 3 {
        0 => out[at] ^= value.max(1),
        1 => out.truncate(at),
        _ => out.insert(at, value),
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..700),
        magic in 0usize..3,
    ) {
        // Prefix a valid header sometimes, so decoding gets past the magic.
        let mut input = [b"CFML\x01".as_slice(), b"CFCM\x01", b"CFIV\x01"][magic].to_vec();
        input.extend_from_slice(&bytes);
        for candidate in [&bytes, &input] {
            prop_assert!(MembershipEntry::decode(candidate).is_err());
            prop_assert!(Commit::decode(candidate).is_err());
            let secret = common::secrets(30).0;
            prop_assert!(Invitation::open(&secret, candidate).is_err());
        }
    }

    #[test]
    fn every_mutation_of_a_valid_structure_is_refused(
        which in 0usize..6,
        kind in any::<u8>(),
        position in any::<usize>(),
        value in any::<u8>(),
    ) {
        let samples = &*SAMPLES;
        let entry = &samples.entries[which];
        prop_assert!(MembershipEntry::decode(&mutate(entry, kind, position, value)).is_err());
        let commit = &samples.commits[which];
        prop_assert!(Commit::decode(&mutate(commit, kind, position, value)).is_err());
        let secret = common::secrets(30).0;
        let invitation = mutate(&samples.invitation, kind, position, value);
        prop_assert!(Invitation::open(&secret, &invitation).is_err());
    }
}

fn role(code: u8) -> Role {
    Role::from_byte(code % 4 + 1).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn accepted_operations_keep_the_log_valid(
        ops in proptest::collection::vec((0u8..5, 0usize..4, 0usize..4, any::<u8>()), 1..10),
    ) {
        let cast = common::cast();
        let people = [&cast.alice, &cast.bob, &cast.carol, &cast.dave];
        let alice = &cast.alice;
        let (mut log, _) =
            MembershipLog::create(&alice.identity, &alice.secret, &alice.signer, [1; 16]).unwrap();
        for (op, actor, target, role_code) in ops {
            let (actor, target) = (people[actor], people[target]);
            let commit_seq = log.state().commit_seq();
            let target_key = target.identity.sign_key();
            let entry = match op {
                0 => log.add(&actor.secret, &actor.signer, commit_seq, &target.identity, role(role_code)),
                1 => log.remove(&actor.secret, &actor.signer, commit_seq, target_key).map(|(e, _)| e),
                2 => log.change_role(&actor.signer, commit_seq, target_key, role(role_code)),
                3 => log.rotate(&actor.secret, &actor.signer, commit_seq).map(|(e, _)| e),
                _ => log.leave(&actor.secret, &actor.signer, commit_seq).map(|(e, _)| e),
            };
            if let Ok(entry) = entry {
                // Whatever a builder signs, a verifier accepts.
                log.append(&entry).unwrap();
            }
        }
        let encoded: Vec<Vec<u8>> = log.entries().iter().map(|e| e.encoded().to_vec()).collect();
        let again = MembershipLog::decode_and_verify(&encoded).unwrap();
        prop_assert_eq!(again.state().head(), log.state().head());
        let state = log.state();
        prop_assert!(state.owner_count() >= 1);
        let epoch = state.epoch();
        for person in people {
            let opened = log.current_epoch_key(&person.secret);
            if state.member(person.identity.sign_key()).is_some() {
                prop_assert!(opened.is_ok());
                // Every member can also walk back to epoch 1.
                prop_assert!(log.epoch_key(1, &person.secret).is_ok() || epoch == 0);
            } else {
                prop_assert!(opened.is_err());
            }
        }
    }
}
