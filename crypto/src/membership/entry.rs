//! The wire form of one membership-log entry `CFML` (FORMAT.md section 9.1).
//!
//! [`MembershipEntry::decode`] checks everything an entry can prove on its own: the encoding is
//! canonical (known action and role codes, sorted unique wraps, exact wrap and seal lengths, no
//! trailing bytes), the embedded identities and device certificate verify, the certificate was
//! issued by `signer_key`, and the device signature covers the entry. Whether the entry is *allowed*
//! where it sits in a log is decided by [`super::MembershipLog`].

use crate::caead::SEALED_BOX_OVERHEAD;
use crate::codec::{MAX_BYTES_FIELD, Reader, Writer};
use crate::device::{DEVICE_ENTRY_LEN, DeviceCertificate, DeviceSigner};
use crate::error::{Error, Result};
use crate::hpke::{self, HpkeSealed};
use crate::identity::Identity;
use crate::kdf::{SIG_MEMBERSHIP, hash};
use crate::keys::{EntryHash, KeyCommitment, SignPublicKey, SpaceId};

/// Magic of a membership-log entry. **Format-fixed.**
pub const MAGIC_MEMBERSHIP: &[u8; 4] = b"CFML";
/// Most wraps in one entry (FORMAT.md section 11). **Format-fixed.**
pub const MAX_WRAPS: usize = 10_000;
/// Length of the salt of a `create` entry. **Format-fixed.**
pub const SALT_LEN: usize = 16;
/// Length of a wrap's HPKE ciphertext: a 32-byte epoch key and the tag. **Format-fixed.**
pub const WRAP_CIPHERTEXT_LEN: usize = 32 + hpke::TAG_LEN;
/// Length of a non-empty `prev_epoch_seal`: a sealed box of a 32-byte epoch key. **Format-fixed.**
pub const EPOCH_SEAL_LEN: usize = SEALED_BOX_OVERHEAD + 32;

const WHAT: &str = "membership entry";
/// Smallest encoding of one wrap: two keys and the length prefix of its ciphertext.
const MIN_WRAP_LEN: usize = 32 + 32 + 4;

/// A member's role in a space, ordered by power: `Reader < Writer < Admin < Owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads the space.
    Reader,
    /// Reads and commits.
    Writer,
    /// Also adds, removes and re-roles non-owners, and rotates the epoch key.
    Admin,
    /// Also manages owners. A space always has at least one.
    Owner,
}

impl Role {
    /// The format-fixed code: `0x01` reader, `0x02` writer, `0x03` admin, `0x04` owner.
    pub const fn to_byte(self) -> u8 {
        match self {
            Role::Reader => 0x01,
            Role::Writer => 0x02,
            Role::Admin => 0x03,
            Role::Owner => 0x04,
        }
    }

    /// Parses a role code; `None` for unknown codes.
    pub const fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0x01 => Some(Role::Reader),
            0x02 => Some(Role::Writer),
            0x03 => Some(Role::Admin),
            0x04 => Some(Role::Owner),
            _ => None,
        }
    }

    /// Lower-case name: `reader`, `writer`, `admin`, `owner`.
    pub const fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Whether this role may sign commits (writer, admin, owner).
    pub fn can_write(self) -> bool {
        self >= Role::Writer
    }

    /// Whether this role may change membership of others and rotate (admin, owner).
    pub fn can_administer(self) -> bool {
        self >= Role::Admin
    }
}

/// What an entry does (FORMAT.md section 9.1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Creates the space (genesis only).
    Create {
        /// Random salt so that two spaces of one owner have different ids.
        salt: [u8; SALT_LEN],
        /// The first owner.
        owner: Identity,
    },
    /// Adds a member.
    Add {
        /// The new member's verified identity.
        member: Identity,
        /// Their role.
        role: Role,
    },
    /// Removes a member (the signer themselves: leaving).
    Remove {
        /// The identity key of the member removed.
        member_key: SignPublicKey,
    },
    /// Changes a member's role.
    ChangeRole {
        /// The identity key of the member.
        member_key: SignPublicKey,
        /// The new role.
        role: Role,
    },
    /// Moves the space to a fresh epoch key.
    Rotate,
}

impl Action {
    /// The format-fixed action code.
    pub const fn code(&self) -> u8 {
        match self {
            Action::Create { .. } => 0x01,
            Action::Add { .. } => 0x02,
            Action::Remove { .. } => 0x03,
            Action::ChangeRole { .. } => 0x04,
            Action::Rotate => 0x05,
        }
    }

    /// Lower-case name: `create`, `add`, `remove`, `change_role`, `rotate`.
    pub const fn name(&self) -> &'static str {
        match self {
            Action::Create { .. } => "create",
            Action::Add { .. } => "add",
            Action::Remove { .. } => "remove",
            Action::ChangeRole { .. } => "change_role",
            Action::Rotate => "rotate",
        }
    }

    /// Whether the action moves the space to the next epoch (`rotate` and `remove`).
    pub const fn advances_epoch(&self) -> bool {
        matches!(self, Action::Rotate | Action::Remove { .. })
    }

    fn encode(&self, writer: &mut Writer) -> Result<()> {
        writer.u8(self.code());
        match self {
            Action::Create { salt, owner } => {
                writer.raw(salt);
                writer.bytes32(owner.encoded(), MAX_BYTES_FIELD)?;
            }
            Action::Add { member, role } => {
                writer.bytes32(member.encoded(), MAX_BYTES_FIELD)?;
                writer.u8(role.to_byte());
            }
            Action::Remove { member_key } => writer.raw(&member_key.to_bytes()),
            Action::ChangeRole { member_key, role } => {
                writer.raw(&member_key.to_bytes());
                writer.u8(role.to_byte());
            }
            Action::Rotate => {}
        }
        Ok(())
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self> {
        let role = |reader: &mut Reader<'_>| {
            let byte = reader.u8()?;
            Role::from_byte(byte).ok_or_else(|| reader.error("unknown role"))
        };
        Ok(match reader.u8()? {
            0x01 => Action::Create {
                salt: reader.array()?,
                owner: Identity::decode(reader.bytes32(MAX_BYTES_FIELD)?)?,
            },
            0x02 => Action::Add {
                member: Identity::decode(reader.bytes32(MAX_BYTES_FIELD)?)?,
                role: role(reader)?,
            },
            0x03 => Action::Remove {
                member_key: SignPublicKey::from_bytes(&reader.b32()?)?,
            },
            0x04 => Action::ChangeRole {
                member_key: SignPublicKey::from_bytes(&reader.b32()?)?,
                role: role(reader)?,
            },
            0x05 => Action::Rotate,
            _ => return Err(reader.error("unknown action")),
        })
    }
}

/// One epoch-key wrap: the epoch key sealed with HPKE to a member's identity encryption key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrap {
    recipient: SignPublicKey,
    sealed: HpkeSealed,
}

impl Wrap {
    /// A wrap from its parts (the builders in this module seal them; see [`super::epoch`]).
    pub fn from_parts(recipient: SignPublicKey, sealed: HpkeSealed) -> Self {
        Wrap { recipient, sealed }
    }

    /// The identity (signing) key of the member the wrap is for.
    pub fn recipient(&self) -> &SignPublicKey {
        &self.recipient
    }

    /// The HPKE ciphertext.
    pub fn sealed(&self) -> &HpkeSealed {
        &self.sealed
    }
}

/// The fields of an entry before it is signed.
///
/// This is a plain encoder: it does not check the rules of section 9.2 (the builders on
/// [`super::MembershipLog`] do, and every verifier does). It is public so that tests, tools and
/// other implementations can produce any entry, including deliberately invalid ones.
#[derive(Clone, Debug)]
pub struct UnsignedEntry {
    /// `H(genesis)`; zero in the genesis entry.
    pub space_id: SpaceId,
    /// Position in the log, from 0.
    pub seq: u64,
    /// `H(previous entry)`; zero in the genesis entry.
    pub prev_hash: EntryHash,
    /// Highest commit seq the signer had seen.
    pub commit_seq: u64,
    /// The epoch after this entry.
    pub epoch: u64,
    /// What the entry does.
    pub action: Action,
    /// `KDF(CTX_EPOCH_COMMIT, EPOCH(space_id, epoch, EK))`; zero while the epoch is 0.
    pub epoch_commitment: KeyCommitment,
    /// Epoch-key wraps, encoded in the given order (verifiers require ascending recipients).
    pub wraps: Vec<Wrap>,
    /// The previous epoch key sealed under the new one, or empty.
    pub prev_epoch_seal: Vec<u8>,
}

impl UnsignedEntry {
    /// Encodes and signs the entry with `signer`, without decoding it back.
    pub fn sign_to_bytes(&self, signer: &DeviceSigner) -> Result<Vec<u8>> {
        let mut writer = Writer::with_header(MAGIC_MEMBERSHIP);
        writer.raw(self.space_id.as_bytes());
        writer.u64(self.seq);
        writer.raw(self.prev_hash.as_bytes());
        writer.u64(self.commit_seq);
        writer.u64(self.epoch);
        writer.raw(&signer.identity_key().to_bytes());
        writer.bytes32(signer.certificate().encoded(), DEVICE_ENTRY_LEN)?;
        self.action.encode(&mut writer)?;
        writer.raw(self.epoch_commitment.as_bytes());
        writer.count32(self.wraps.len(), MAX_WRAPS)?;
        for wrap in &self.wraps {
            writer.raw(&wrap.recipient.to_bytes());
            writer.raw(&wrap.sealed.enc);
            writer.bytes32(&wrap.sealed.ciphertext, MAX_BYTES_FIELD)?;
        }
        writer.bytes32(&self.prev_epoch_seal, MAX_BYTES_FIELD)?;
        let signature = signer.sign(SIG_MEMBERSHIP, writer.as_slice());
        writer.raw(&signature);
        Ok(writer.into_vec())
    }

    /// Encodes, signs and decodes the entry (so it is known to be well-formed).
    pub fn sign(&self, signer: &DeviceSigner) -> Result<MembershipEntry> {
        MembershipEntry::decode(&self.sign_to_bytes(signer)?)
    }
}

/// A decoded membership-log entry whose device certificate and signature have verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MembershipEntry {
    pub(super) space_id: SpaceId,
    pub(super) seq: u64,
    pub(super) prev_hash: EntryHash,
    pub(super) commit_seq: u64,
    pub(super) epoch: u64,
    pub(super) signer_key: SignPublicKey,
    pub(super) signer_device: DeviceCertificate,
    pub(super) action: Action,
    pub(super) epoch_commitment: KeyCommitment,
    pub(super) wraps: Vec<Wrap>,
    pub(super) prev_epoch_seal: Vec<u8>,
    encoded: Vec<u8>,
    hash: EntryHash,
}

impl MembershipEntry {
    /// Decodes an entry from untrusted bytes: canonical structure, valid embedded identity and
    /// device certificate, certificate issued by `signer_key` ([`Error::Integrity`] otherwise),
    /// and the device signature ([`Error::Authentication`] otherwise).
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::with_header(bytes, MAGIC_MEMBERSHIP, WHAT)?;
        let space_id = SpaceId::from_bytes(reader.b32()?);
        let seq = reader.u64()?;
        let prev_hash = EntryHash::from_bytes(reader.b32()?);
        let commit_seq = reader.u64()?;
        let epoch = reader.u64()?;
        let signer_key = SignPublicKey::from_bytes(&reader.b32()?)?;
        let signer_device = DeviceCertificate::decode(reader.bytes32(DEVICE_ENTRY_LEN)?)?;
        let action = Action::decode(&mut reader)?;
        let epoch_commitment = KeyCommitment::from_bytes(reader.b32()?);
        let count = reader.count32(MAX_WRAPS, MIN_WRAP_LEN)?;
        let mut wraps: Vec<Wrap> = Vec::with_capacity(count);
        for _ in 0..count {
            let recipient = SignPublicKey::from_bytes(&reader.b32()?)?;
            let enc = reader.b32()?;
            let ciphertext = reader.bytes32(WRAP_CIPHERTEXT_LEN)?;
            if ciphertext.len() != WRAP_CIPHERTEXT_LEN {
                return Err(reader.error("wrap ciphertext has the wrong length"));
            }
            if wraps.last().is_some_and(|last| last.recipient >= recipient) {
                return Err(reader.error("wraps not sorted by recipient or not unique"));
            }
            wraps.push(Wrap {
                recipient,
                sealed: HpkeSealed {
                    enc,
                    ciphertext: ciphertext.to_vec(),
                },
            });
        }
        let prev_epoch_seal = reader.bytes32(EPOCH_SEAL_LEN)?;
        if !prev_epoch_seal.is_empty() && prev_epoch_seal.len() != EPOCH_SEAL_LEN {
            return Err(reader.error("prev_epoch_seal has the wrong length"));
        }
        let prev_epoch_seal = prev_epoch_seal.to_vec();
        let signed = reader.consumed();
        let signature = reader.array::<64>()?;
        reader.finish()?;
        if signer_device.identity_key() != &signer_key {
            return Err(Error::integrity(
                "membership log",
                "device certificate not issued by the signer",
            ));
        }
        signer_device
            .device_key()
            .verify(SIG_MEMBERSHIP, signed, &signature)?;
        Ok(MembershipEntry {
            space_id,
            seq,
            prev_hash,
            commit_seq,
            epoch,
            signer_key,
            signer_device,
            action,
            epoch_commitment,
            wraps,
            prev_epoch_seal,
            encoded: bytes.to_vec(),
            hash: EntryHash::from_bytes(hash(bytes)),
        })
    }

    /// The canonical encoding, signature included.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// `H(entry)`. The space id is the hash of the genesis entry.
    pub fn hash(&self) -> EntryHash {
        self.hash
    }

    /// The `space_id` field (zero in the genesis entry).
    pub fn space_id(&self) -> &SpaceId {
        &self.space_id
    }

    /// Position in the log, from 0.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `H(previous entry)`; zero in the genesis entry.
    pub fn prev_hash(&self) -> &EntryHash {
        &self.prev_hash
    }

    /// Highest commit seq the signer had seen.
    pub fn commit_seq(&self) -> u64 {
        self.commit_seq
    }

    /// The epoch after this entry.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The identity key of the signing member.
    pub fn signer_key(&self) -> &SignPublicKey {
        &self.signer_key
    }

    /// The certificate of the signing device.
    pub fn signer_device(&self) -> &DeviceCertificate {
        &self.signer_device
    }

    /// What the entry does.
    pub fn action(&self) -> &Action {
        &self.action
    }

    /// The commitment to the epoch key after this entry (zero while the epoch is 0).
    pub fn epoch_commitment(&self) -> &KeyCommitment {
        &self.epoch_commitment
    }

    /// The epoch-key wraps, sorted by recipient.
    pub fn wraps(&self) -> &[Wrap] {
        &self.wraps
    }

    /// The wrap for `member`, if any.
    pub fn wrap_for(&self, member: &SignPublicKey) -> Option<&Wrap> {
        self.wraps
            .binary_search_by(|wrap| wrap.recipient.cmp(member))
            .ok()
            .and_then(|index| self.wraps.get(index))
    }

    /// The sealed previous epoch key, if the entry moved from an epoch ≥ 1 to the next.
    pub fn prev_epoch_seal(&self) -> Option<&[u8]> {
        (!self.prev_epoch_seal.is_empty()).then_some(self.prev_epoch_seal.as_slice())
    }
}
