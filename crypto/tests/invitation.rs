//! Invitations (FORMAT.md section 9.4): round trip, and the attacks on them.

// Helpers outside #[test] fns unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used)]

mod common;

use coffre_crypto::Error;
use coffre_crypto::invitation::Invitation;
use coffre_crypto::membership::Role;
use common::{cast, device_certified_by, space};

#[test]
fn round_trip_and_check_against_the_log() {
    let cast = cast();
    let space = space(&cast);
    let add_carol = &space.log.entries()[3];
    let bytes = Invitation::seal(
        &cast.alice.identity,
        &cast.alice.signer,
        &cast.carol.identity,
        space.log.space_id(),
        Role::Reader,
        &add_carol.hash(),
        "Association des jardins",
    )
    .unwrap();
    let invitation = Invitation::open(&cast.carol.secret, &bytes).unwrap();
    assert_eq!(invitation.space_id(), space.log.space_id());
    assert_eq!(invitation.role(), Role::Reader);
    assert_eq!(invitation.space_name(), "Association des jardins");
    assert_eq!(invitation.inviter(), &cast.alice.identity);
    assert!(!format!("{invitation:?}").contains("jardins"));
    invitation
        .check_against(&space.log, &cast.carol.identity)
        .unwrap();
    // The wrong invitee, or an entry that is not this add, fails the log check.
    assert!(matches!(
        invitation.check_against(&space.log, &cast.bob.identity),
        Err(Error::Integrity { .. })
    ));
    let wrong_role = Invitation::seal(
        &cast.alice.identity,
        &cast.alice.signer,
        &cast.carol.identity,
        space.log.space_id(),
        Role::Admin,
        &add_carol.hash(),
        "x",
    )
    .unwrap();
    let wrong_role = Invitation::open(&cast.carol.secret, &wrong_role).unwrap();
    assert!(matches!(
        wrong_role.check_against(&space.log, &cast.carol.identity),
        Err(Error::Integrity { .. })
    ));
}

fn sample() -> (common::Cast, Vec<u8>) {
    let cast = cast();
    let bytes = Invitation::seal(
        &cast.alice.identity,
        &cast.alice.signer,
        &cast.carol.identity,
        &coffre_crypto::keys::SpaceId::from_bytes([1; 32]),
        Role::Writer,
        &coffre_crypto::keys::EntryHash::from_bytes([2; 32]),
        "team",
    )
    .unwrap();
    (cast, bytes)
}

#[test]
fn attack_tampered_invitation() {
    let (cast, bytes) = sample();
    // Any change after the recipient key is an authentication failure; in the header, malformed
    // or authentication.
    for bit in (0..bytes.len() * 8).step_by(3) {
        let mut flipped = bytes.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        let result = Invitation::open(&cast.carol.secret, &flipped);
        assert!(result.is_err(), "bit {bit}");
        if bit >= 37 * 8 + 32 * 8 + 32 {
            assert!(
                matches!(result, Err(Error::Authentication)),
                "bit {bit}: {result:?}"
            );
        }
    }
    for len in 0..bytes.len() {
        assert!(Invitation::open(&cast.carol.secret, &bytes[..len]).is_err());
    }
}

#[test]
fn attack_wrong_recipient() {
    let (cast, bytes) = sample();
    // bob cannot open carol's invitation, even after readdressing it to his own key.
    assert!(matches!(
        Invitation::open(&cast.bob.secret, &bytes),
        Err(Error::Authentication)
    ));
    let mut readdressed = bytes.clone();
    readdressed[5..37].copy_from_slice(&cast.bob.identity.enc_key().to_bytes());
    assert!(matches!(
        Invitation::open(&cast.bob.secret, &readdressed),
        Err(Error::Authentication)
    ));
}

#[test]
fn attack_inviter_signature_by_an_uncertified_device() {
    let cast = cast();
    // mallory certifies a device of her own and signs an invitation claiming to be alice: the
    // builder refuses, and a hand-made one fails to open.
    let rogue = device_certified_by(&cast.mallory, 77);
    assert!(matches!(
        Invitation::seal(
            &cast.alice.identity,
            &rogue,
            &cast.carol.identity,
            &coffre_crypto::keys::SpaceId::from_bytes([1; 32]),
            Role::Owner,
            &coffre_crypto::keys::EntryHash::from_bytes([2; 32]),
            "team",
        ),
        Err(Error::InvalidInput(_))
    ));
    // mallory (as herself) invites; then the gateway swaps the inviter identity for alice's
    // inside a re-sealed plaintext. The device certificate is mallory's, not alice's.
    let honest = Invitation::seal(
        &cast.mallory.identity,
        &cast.mallory.signer,
        &cast.carol.identity,
        &coffre_crypto::keys::SpaceId::from_bytes([1; 32]),
        Role::Owner,
        &coffre_crypto::keys::EntryHash::from_bytes([2; 32]),
        "team",
    )
    .unwrap();
    let opened = Invitation::open(&cast.carol.secret, &honest).unwrap();
    assert_eq!(opened.inviter(), &cast.mallory.identity);
    // The forging helper itself is sound: re-sealing with the true inviter opens.
    let resealed = forge_with_inviter(&cast, &opened, &cast.mallory.identity);
    assert_eq!(
        Invitation::open(&cast.carol.secret, &resealed).unwrap(),
        opened
    );
    let forged = forge_with_inviter(&cast, &opened, &cast.alice.identity);
    assert!(matches!(
        Invitation::open(&cast.carol.secret, &forged),
        Err(Error::Authentication)
    ));
}

/// Re-seals an invitation plaintext with `inviter` replaced (the attacker knows the recipient's
/// public key, so HPKE sealing is easy; the inner signature is what stops it).
fn forge_with_inviter(
    cast: &common::Cast,
    original: &Invitation,
    inviter: &coffre_crypto::identity::Identity,
) -> Vec<u8> {
    use coffre_crypto::hpke;
    let mut pt = b"CFIP\x01".to_vec();
    pt.extend_from_slice(original.space_id().as_bytes());
    pt.push(original.role().to_byte());
    pt.extend_from_slice(original.membership_hash().as_bytes());
    pt.extend_from_slice(&(original.space_name().len() as u16).to_be_bytes());
    pt.extend_from_slice(original.space_name().as_bytes());
    pt.extend_from_slice(&(inviter.encoded().len() as u32).to_be_bytes());
    pt.extend_from_slice(inviter.encoded());
    let device = original.inviter_device().encoded();
    pt.extend_from_slice(&(device.len() as u32).to_be_bytes());
    pt.extend_from_slice(device);
    let recipient = cast.carol.identity.enc_key();
    let mut signed = recipient.to_bytes().to_vec();
    signed.extend_from_slice(&pt);
    pt.extend_from_slice(
        &cast
            .mallory
            .signer
            .sign(coffre_crypto::kdf::SIG_INVITATION, &signed),
    );
    let mut header = b"CFIV\x01".to_vec();
    header.extend_from_slice(&recipient.to_bytes());
    let sealed = hpke::seal(
        recipient,
        coffre_crypto::kdf::HPKE_INFO_INVITATION,
        &header,
        &pt,
    )
    .unwrap();
    let mut out = header;
    out.extend_from_slice(&sealed.enc);
    out.extend_from_slice(&(sealed.ciphertext.len() as u32).to_be_bytes());
    out.extend_from_slice(&sealed.ciphertext);
    out
}
