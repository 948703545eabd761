//! Builders that sign the next entry of a verified log.
//!
//! Every builder checks its result against the same rules a verifier applies before returning it,
//! so a client never publishes an entry that other members would refuse.

use super::entry::{Action, MembershipEntry, Role, SALT_LEN, UnsignedEntry};
use super::epoch::{epoch_commitment, seal_previous_key, wrap_epoch_key};
use super::{Member, MembershipLog};
use crate::device::DeviceSigner;
use crate::error::{Error, Result};
use crate::identity::{Identity, IdentitySecret};
use crate::keys::{EntryHash, EpochKey, KeyCommitment, SignPublicKey, SpaceId};

impl MembershipEntry {
    /// Signs the genesis entry of a new space owned by `owner`, whose device `signer` signs.
    /// Returns the entry and the new space id, `H(entry)`.
    ///
    /// The space has no epoch key until entry 1, a rotate: see [`MembershipLog::create`].
    pub fn genesis(
        owner: &Identity,
        signer: &DeviceSigner,
        salt: [u8; SALT_LEN],
    ) -> Result<(MembershipEntry, SpaceId)> {
        if owner.sign_key() != signer.identity_key() {
            return Err(Error::InvalidInput(
                "the owner's device must sign the genesis entry",
            ));
        }
        let entry = UnsignedEntry {
            space_id: SpaceId::from_bytes([0; 32]),
            seq: 0,
            prev_hash: EntryHash::from_bytes([0; 32]),
            commit_seq: 0,
            epoch: 0,
            action: Action::Create {
                salt,
                owner: owner.clone(),
            },
            epoch_commitment: KeyCommitment::from_bytes([0; 32]),
            wraps: Vec::new(),
            prev_epoch_seal: Vec::new(),
        }
        .sign(signer)?;
        let space = SpaceId::from_bytes(*entry.hash().as_bytes());
        Ok((entry, space))
    }
}

impl MembershipLog {
    /// Creates a space: the genesis entry and the first rotate, verified, with the epoch-1 key.
    pub fn create(
        owner: &Identity,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        salt: [u8; SALT_LEN],
    ) -> Result<(MembershipLog, EpochKey)> {
        let (genesis, _) = MembershipEntry::genesis(owner, signer, salt)?;
        let mut log = MembershipLog::verify(&[genesis])?;
        let (rotate, key) = log.rotate(identity, signer, 0)?;
        log.append(&rotate)?;
        Ok((log, key))
    }

    /// Signs a `rotate`: a fresh epoch key for the current members. Returns the entry and the key.
    pub fn rotate(
        &self,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        commit_seq: u64,
    ) -> Result<(MembershipEntry, EpochKey)> {
        self.advance(identity, signer, commit_seq, Action::Rotate)
    }

    /// Signs a `remove` of `member_key` (another member): the epoch advances and only the members
    /// who remain receive the new key. Returns the entry and the new key.
    pub fn remove(
        &self,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        commit_seq: u64,
        member_key: &SignPublicKey,
    ) -> Result<(MembershipEntry, EpochKey)> {
        let action = Action::Remove {
            member_key: *member_key,
        };
        self.advance(identity, signer, commit_seq, action)
    }

    /// Signs the signer's own `remove` (leaving the space). The leaver still draws the next epoch
    /// key for the others; it should forget it. Returns the entry and that key.
    pub fn leave(
        &self,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        commit_seq: u64,
    ) -> Result<(MembershipEntry, EpochKey)> {
        let me = *signer.identity_key();
        self.remove(identity, signer, commit_seq, &me)
    }

    /// Signs an `add` of `member` with `role`, wrapping the current epoch key for them.
    pub fn add(
        &self,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        commit_seq: u64,
        member: &Identity,
        role: Role,
    ) -> Result<MembershipEntry> {
        check_signer(self, identity, signer)?;
        let state = self.state();
        let key = self.current_epoch_key(identity)?;
        let wrap = wrap_epoch_key(&self.space_id, state.epoch(), &key, member)?;
        let action = Action::Add {
            member: member.clone(),
            role,
        };
        self.finish(
            signer,
            commit_seq,
            action,
            *state.epoch_commitment(),
            vec![wrap],
            Vec::new(),
        )
    }

    /// Signs a `change_role` of `member_key` to `role`.
    pub fn change_role(
        &self,
        signer: &DeviceSigner,
        commit_seq: u64,
        member_key: &SignPublicKey,
        role: Role,
    ) -> Result<MembershipEntry> {
        let action = Action::ChangeRole {
            member_key: *member_key,
            role,
        };
        let commitment = *self.state().epoch_commitment();
        self.finish(
            signer,
            commit_seq,
            action,
            commitment,
            Vec::new(),
            Vec::new(),
        )
    }

    fn advance(
        &self,
        identity: &IdentitySecret,
        signer: &DeviceSigner,
        commit_seq: u64,
        action: Action,
    ) -> Result<(MembershipEntry, EpochKey)> {
        check_signer(self, identity, signer)?;
        let state = self.state();
        let new_epoch = state
            .epoch()
            .checked_add(1)
            .ok_or(Error::InvalidInput("epoch counter exhausted"))?;
        let new_key = EpochKey::generate()?;
        let removed = match &action {
            Action::Remove { member_key } => Some(*member_key),
            _ => None,
        };
        let mut wraps = state
            .members()
            .filter(|member| Some(*member.key()) != removed)
            .map(|member: &Member| {
                wrap_epoch_key(&self.space_id, new_epoch, &new_key, member.identity())
            })
            .collect::<Result<Vec<_>>>()?;
        wraps.sort_by(|a, b| a.recipient().cmp(b.recipient()));
        let seal = if state.epoch() >= 1 {
            let previous = self.current_epoch_key(identity)?;
            seal_previous_key(&self.space_id, new_epoch, &new_key, &previous)?
        } else {
            Vec::new()
        };
        let commitment = epoch_commitment(&self.space_id, new_epoch, &new_key);
        let entry = self.finish(signer, commit_seq, action, commitment, wraps, seal)?;
        Ok((entry, new_key))
    }

    /// Signs the next entry and checks it against the rules.
    fn finish(
        &self,
        signer: &DeviceSigner,
        commit_seq: u64,
        action: Action,
        epoch_commitment: KeyCommitment,
        wraps: Vec<super::Wrap>,
        prev_epoch_seal: Vec<u8>,
    ) -> Result<MembershipEntry> {
        let state = self.state();
        let epoch = if action.advances_epoch() {
            state.epoch().saturating_add(1)
        } else {
            state.epoch()
        };
        let entry = UnsignedEntry {
            space_id: self.space_id,
            seq: state.seq() + 1,
            prev_hash: state.head(),
            commit_seq,
            epoch,
            action,
            epoch_commitment,
            wraps,
            prev_epoch_seal,
        }
        .sign(signer)?;
        self.check(&entry)?;
        Ok(entry)
    }
}

/// The signer's device belongs to `identity`, which is a current member (checked before any key
/// is opened, so the error says what is wrong).
fn check_signer(
    log: &MembershipLog,
    identity: &IdentitySecret,
    signer: &DeviceSigner,
) -> Result<()> {
    if identity.sign_secret().public_key() != *signer.identity_key() {
        return Err(Error::InvalidInput(
            "the device is not certified by this identity",
        ));
    }
    if log.state().member(signer.identity_key()).is_none() {
        return Err(super::broken("the signer is not a member"));
    }
    Ok(())
}
