//! Invitations `CFIV` / `CFIP` (FORMAT.md section 9.4).
//!
//! An invitation tells an invitee where to look (space id, the `add` entry's hash, the role) and
//! carries the space's name, which only members may know. It is HPKE-sealed to the invitee's
//! identity encryption key (AAD: the header and that key), and signed inside by the inviter's
//! certified device over the recipient key and the plaintext, so the gateway can neither read it,
//! nor forge one, nor re-address one to someone else **[T-ghost]** **[T-unauth-keys]**.
//!
//! An invitation grants nothing by itself: the epoch key travels in the membership log's wrap,
//! and the invitee must verify the log from genesis ([`Invitation::check_against`]) before
//! trusting the space.
//!
//! Error classes: structure problems of the envelope are [`Error::Malformed`]; anything that stops
//! the invitation from authenticating to this recipient (another recipient, HPKE failure, bad
//! inviter signature, a device certificate not issued by the inviter) is [`Error::Authentication`].

use core::fmt;

use zeroize::Zeroizing;

use crate::codec::{FORMAT_VERSION, MAX_BYTES_FIELD, Reader, Writer};
use crate::device::{DEVICE_ENTRY_LEN, DeviceCertificate, DeviceSigner};
use crate::error::{Error, Result};
use crate::hpke;
use crate::identity::{Identity, IdentitySecret};
use crate::kdf::{HPKE_INFO_INVITATION, SIG_INVITATION};
use crate::keys::{EncPublicKey, EntryHash, SpaceId};
use crate::membership::{Action, MembershipLog, Role};

/// Magic of the invitation envelope. **Format-fixed.**
pub const MAGIC_INVITATION: &[u8; 4] = b"CFIV";
/// Magic of the invitation plaintext. **Format-fixed.**
pub const MAGIC_INVITATION_PLAINTEXT: &[u8; 4] = b"CFIP";
/// Longest space name in bytes (FORMAT.md section 11). **Format-fixed.**
pub const MAX_SPACE_NAME: usize = 255;

/// A verified invitation: opened by its recipient, signed by the inviter's certified device.
#[derive(Clone, PartialEq, Eq)]
pub struct Invitation {
    space_id: SpaceId,
    role: Role,
    membership_hash: EntryHash,
    space_name: String,
    inviter: Identity,
    inviter_device: DeviceCertificate,
}

impl fmt::Debug for Invitation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invitation")
            .field("space_id", &self.space_id)
            .field("role", &self.role)
            .field("membership_hash", &self.membership_hash)
            .field("space_name", &"<redacted>")
            .field("inviter", &self.inviter)
            .finish_non_exhaustive()
    }
}

/// `"CFIV" ‖ 0x01 ‖ recipient_enc_key`: the envelope header, also the HPKE AAD.
fn header(recipient: &EncPublicKey) -> [u8; 37] {
    let mut header = [0u8; 37];
    header[..4].copy_from_slice(MAGIC_INVITATION);
    header[4] = FORMAT_VERSION;
    header[5..].copy_from_slice(&recipient.to_bytes());
    header
}

/// What the inviter's device signs: `recipient_enc_key ‖ plaintext without the signature`.
fn signed_bytes(recipient: &EncPublicKey, plaintext: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(32 + plaintext.len());
    signed.extend_from_slice(&recipient.to_bytes());
    signed.extend_from_slice(plaintext);
    signed
}

impl Invitation {
    /// Seals an invitation from `inviter` (signed by its device `signer`) to `recipient`.
    pub fn seal(
        inviter: &Identity,
        signer: &DeviceSigner,
        recipient: &Identity,
        space_id: &SpaceId,
        role: Role,
        membership_hash: &EntryHash,
        space_name: &str,
    ) -> Result<Vec<u8>> {
        if inviter.sign_key() != signer.identity_key() {
            return Err(Error::InvalidInput(
                "the device is not certified by the inviter",
            ));
        }
        if space_name.is_empty() {
            return Err(Error::InvalidInput("a space name is 1 to 255 bytes"));
        }
        let mut plaintext = Writer::with_header(MAGIC_INVITATION_PLAINTEXT);
        plaintext.raw(space_id.as_bytes());
        plaintext.u8(role.to_byte());
        plaintext.raw(membership_hash.as_bytes());
        plaintext.str16(space_name, MAX_SPACE_NAME)?;
        plaintext.bytes32(inviter.encoded(), MAX_BYTES_FIELD)?;
        plaintext.bytes32(signer.certificate().encoded(), DEVICE_ENTRY_LEN)?;
        let recipient_key = recipient.enc_key();
        let signature = signer.sign(
            SIG_INVITATION,
            &signed_bytes(recipient_key, plaintext.as_slice()),
        );
        plaintext.raw(&signature);
        let plaintext = Zeroizing::new(plaintext.into_vec());

        let header = header(recipient_key);
        let sealed = hpke::seal(recipient_key, HPKE_INFO_INVITATION, &header, &plaintext)?;
        let mut envelope = Writer::default();
        envelope.raw(&header);
        envelope.raw(&sealed.enc);
        envelope.bytes32(&sealed.ciphertext, MAX_BYTES_FIELD)?;
        Ok(envelope.into_vec())
    }

    /// Opens and verifies an invitation addressed to `recipient`.
    pub fn open(recipient: &IdentitySecret, bytes: &[u8]) -> Result<Invitation> {
        let mut reader = Reader::with_header(bytes, MAGIC_INVITATION, "invitation")?;
        let addressed_to = reader.b32()?;
        let enc = reader.b32()?;
        let ciphertext = reader.bytes32(MAX_BYTES_FIELD)?;
        reader.finish()?;
        let own_key = recipient.enc_secret().public_key();
        if addressed_to != own_key.to_bytes() {
            return Err(Error::Authentication);
        }
        let plaintext = hpke::open(
            recipient.enc_secret(),
            HPKE_INFO_INVITATION,
            &header(&own_key),
            &enc,
            ciphertext,
        )?;
        Invitation::decode_plaintext(&own_key, &plaintext)
    }

    fn decode_plaintext(recipient: &EncPublicKey, plaintext: &[u8]) -> Result<Invitation> {
        let mut reader = Reader::with_header(
            plaintext,
            MAGIC_INVITATION_PLAINTEXT,
            "invitation plaintext",
        )?;
        let space_id = SpaceId::from_bytes(reader.b32()?);
        let role_byte = reader.u8()?;
        let role = Role::from_byte(role_byte).ok_or_else(|| reader.error("unknown role"))?;
        let membership_hash = EntryHash::from_bytes(reader.b32()?);
        let space_name = reader.str16(MAX_SPACE_NAME)?;
        if space_name.is_empty() {
            return Err(reader.error("empty space name"));
        }
        let space_name = space_name.to_owned();
        let inviter = Identity::decode(reader.bytes32(MAX_BYTES_FIELD)?)?;
        let inviter_device = DeviceCertificate::decode(reader.bytes32(DEVICE_ENTRY_LEN)?)?;
        let signed = reader.consumed();
        let signature = reader.array::<64>()?;
        reader.finish()?;
        if inviter_device.identity_key() != inviter.sign_key() {
            return Err(Error::Authentication);
        }
        inviter_device.device_key().verify(
            SIG_INVITATION,
            &signed_bytes(recipient, signed),
            &signature,
        )?;
        Ok(Invitation {
            space_id,
            role,
            membership_hash,
            space_name,
            inviter,
            inviter_device,
        })
    }

    /// Checks the invitation against the space's verified membership log: same space, and the
    /// entry it names is an `add` of `invitee` with the announced role, signed by the inviter.
    /// [`Error::Integrity`] otherwise.
    pub fn check_against(&self, log: &MembershipLog, invitee: &Identity) -> Result<()> {
        let broken = |reason| Error::integrity("invitation", reason);
        if log.space_id() != &self.space_id {
            return Err(broken("the log belongs to another space"));
        }
        let entry = log
            .find(&self.membership_hash)
            .ok_or(broken("the named entry is not in the log"))?;
        match entry.action() {
            Action::Add { member, role }
                if member.sign_key() == invitee.sign_key()
                    && *role == self.role
                    && entry.signer_key() == self.inviter.sign_key() =>
            {
                Ok(())
            }
            _ => Err(broken(
                "the named entry is not the inviter's add of this invitee with this role",
            )),
        }
    }

    /// The space.
    pub fn space_id(&self) -> &SpaceId {
        &self.space_id
    }

    /// The role the invitee was given.
    pub fn role(&self) -> Role {
        self.role
    }

    /// `H(the add entry)`.
    pub fn membership_hash(&self) -> &EntryHash {
        &self.membership_hash
    }

    /// The space's name (confidential: only members see it).
    pub fn space_name(&self) -> &str {
        &self.space_name
    }

    /// The inviter's verified identity.
    pub fn inviter(&self) -> &Identity {
        &self.inviter
    }

    /// The certificate of the device that signed.
    pub fn inviter_device(&self) -> &DeviceCertificate {
        &self.inviter_device
    }
}
