//! Spaces and their membership log (FORMAT.md section 9).
//!
//! A space's membership is a hash chain of entries, each signed by a member's certified device.
//! [`MembershipLog::verify`] replays the whole chain from the genesis entry and applies every rule
//! of section 9.2; a log that breaks any of them is refused as a whole with an
//! [`Error::Integrity`] naming the rule. Clients never trust the gateway's own verification.
//!
//! Threats answered here:
//!
//! - **[T-ghost]**: membership changes only through entries signed by a device certified by an
//!   admin's (or owner's) identity; a gateway cannot add a member, a device, or a wrap. An entry
//!   must carry wraps for exactly the members after it, so a signer cannot quietly hand the key to
//!   someone outside the member list either.
//! - **[T-rollback]**: entries are hash-chained with consecutive `seq`s; [`MembershipLog::update`]
//!   refuses a newer copy that is shorter than (rollback) or diverges from (fork) what the client
//!   has verified.
//! - **[T-revocation]**: `remove` advances the epoch and wraps the new key to the remaining
//!   members only; commits made under the old state are refused by FORMAT.md section 10 rule 3
//!   (see [`crate::commit`]).
//! - **[T-unauth-keys]**: wraps are bound to space, epoch and recipient key and checked against the
//!   entry's epoch commitment (see [`epoch`]).
//!
//! Not decided here: whether a signing device has been revoked since it signed. That needs the
//! signer's whole device chain (FORMAT.md 8.2), which the SDK fetches and pins.
//!
//! Module map: [`entry`] is the wire format, [`epoch`] the epoch-key cryptography, `build` the
//! signing builders on [`MembershipLog`], and this file the log and its rules.

mod build;
pub mod entry;
pub mod epoch;

use std::collections::BTreeMap;

pub use entry::{Action, MembershipEntry, Role, UnsignedEntry, Wrap};
pub use epoch::epoch_commitment;

use crate::error::{Error, Result};
use crate::identity::{Identity, IdentitySecret};
use crate::keys::{EntryHash, EpochKey, KeyCommitment, SignPublicKey, SpaceId};

const LOG: &str = "membership log";

fn broken(reason: &'static str) -> Error {
    Error::integrity(LOG, reason)
}

/// A member of a space at some point of its log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    identity: Identity,
    role: Role,
}

impl Member {
    /// The member's verified identity.
    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    /// The member's identity key (how the log names members).
    pub fn key(&self) -> &SignPublicKey {
        self.identity.sign_key()
    }

    /// The member's role.
    pub fn role(&self) -> Role {
        self.role
    }
}

/// A verified membership log, and the membership state after each of its entries.
///
/// Invariant: `entries` is non-empty, starts with a valid genesis entry and every entry obeys the
/// rules of FORMAT.md 9.2 given the ones before it.
#[derive(Clone, Debug)]
pub struct MembershipLog {
    space_id: SpaceId,
    entries: Vec<MembershipEntry>,
    /// For every identity key that was ever a member: from which entry seq on it had which
    /// membership (`None`: not a member). Each list is in increasing seq order.
    timeline: BTreeMap<SignPublicKey, Vec<(u64, Option<Member>)>>,
    /// For every epoch: the seq of the entry that started it (0 for epoch 0).
    epoch_starts: Vec<u64>,
}

/// The membership of a space after one entry of its log: a view into a [`MembershipLog`].
#[derive(Clone, Copy, Debug)]
pub struct MembershipState<'a> {
    log: &'a MembershipLog,
    seq: u64,
}

impl<'a> MembershipState<'a> {
    /// The entry this state follows.
    pub fn entry(&self) -> &'a MembershipEntry {
        // Invariant: a state is only built for a seq below the log's length.
        &self.log.entries[self.seq as usize]
    }

    /// The space.
    pub fn space_id(&self) -> &'a SpaceId {
        &self.log.space_id
    }

    /// Seq of the entry this state follows.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// `H(entry)` of the entry this state follows: what commits name as `membership_hash`.
    pub fn head(&self) -> EntryHash {
        self.entry().hash()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.entry().epoch
    }

    /// The commitment to the current epoch key (zero in epoch 0).
    pub fn epoch_commitment(&self) -> &'a KeyCommitment {
        &self.entry().epoch_commitment
    }

    /// The `commit_seq` of the entry this state follows.
    pub fn commit_seq(&self) -> u64 {
        self.entry().commit_seq
    }

    /// The membership of `key`, if it is a member.
    pub fn member(&self, key: &SignPublicKey) -> Option<&'a Member> {
        member_at(self.log.timeline.get(key)?, self.seq)
    }

    /// The role of `key`, if it is a member.
    pub fn role_of(&self, key: &SignPublicKey) -> Option<Role> {
        self.member(key).map(Member::role)
    }

    /// The members, by ascending identity key.
    pub fn members(&self) -> impl Iterator<Item = &'a Member> + 'a {
        let seq = self.seq;
        self.log
            .timeline
            .values()
            .filter_map(move |history| member_at(history, seq))
    }

    /// How many owners there are.
    pub fn owner_count(&self) -> usize {
        self.members()
            .filter(|member| member.role == Role::Owner)
            .count()
    }
}

fn member_at(history: &[(u64, Option<Member>)], seq: u64) -> Option<&Member> {
    let index = history.partition_point(|(from, _)| *from <= seq);
    history.get(index.checked_sub(1)?)?.1.as_ref()
}

/// What an entry changes, once its rules have been checked. Short-lived, so its size is moot.
#[allow(clippy::large_enum_variant)]
enum Change {
    None,
    Set(SignPublicKey, Option<Member>),
}

impl MembershipLog {
    /// Verifies a whole log from its genesis entry (FORMAT.md section 9.2).
    pub fn verify(entries: &[MembershipEntry]) -> Result<Self> {
        let (genesis, rest) = entries
            .split_first()
            .ok_or(broken("a log has at least its genesis entry"))?;
        let mut log = MembershipLog::from_genesis(genesis)?;
        log.extend(rest)?;
        Ok(log)
    }

    /// Decodes and verifies a whole log from its encoded entries.
    pub fn decode_and_verify<B: AsRef<[u8]>>(encoded: &[B]) -> Result<Self> {
        let entries = encoded
            .iter()
            .map(|bytes| MembershipEntry::decode(bytes.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        MembershipLog::verify(&entries)
    }

    fn from_genesis(genesis: &MembershipEntry) -> Result<Self> {
        let zero = [0u8; 32];
        let Action::Create { owner, .. } = &genesis.action else {
            return Err(broken("the genesis entry must be a create"));
        };
        if genesis.seq != 0
            || genesis.space_id.as_bytes() != &zero
            || genesis.prev_hash.as_bytes() != &zero
            || genesis.commit_seq != 0
            || genesis.epoch != 0
            || genesis.epoch_commitment.as_bytes() != &zero
            || !genesis.wraps.is_empty()
            || !genesis.prev_epoch_seal.is_empty()
        {
            return Err(broken(
                "the genesis entry must have zero seq, ids, epoch and commitment, and no wraps",
            ));
        }
        if owner.sign_key() != &genesis.signer_key {
            return Err(broken("the genesis entry must be signed by its owner"));
        }
        let mut timeline = BTreeMap::new();
        timeline.insert(
            *owner.sign_key(),
            vec![(
                0,
                Some(Member {
                    identity: owner.clone(),
                    role: Role::Owner,
                }),
            )],
        );
        Ok(MembershipLog {
            space_id: SpaceId::from_bytes(*genesis.hash().as_bytes()),
            entries: vec![genesis.clone()],
            timeline,
            epoch_starts: vec![0],
        })
    }

    /// Appends newer entries, checking each against the rules. All or nothing: on error the log
    /// is left as it was.
    pub fn extend(&mut self, newer: &[MembershipEntry]) -> Result<()> {
        let original_len = self.entries.len();
        for entry in newer {
            if let Err(error) = self.append(entry) {
                self.truncate(original_len);
                return Err(error);
            }
        }
        Ok(())
    }

    /// Appends one entry, checking it against the rules.
    pub fn append(&mut self, entry: &MembershipEntry) -> Result<()> {
        let change = self.check(entry)?;
        self.apply(entry, change);
        Ok(())
    }

    /// Accepts a newer copy of the whole log (from genesis) if it extends this one: a shorter copy
    /// is a rollback, a different entry at a known position is a fork. All or nothing.
    pub fn update(&mut self, full: &[MembershipEntry]) -> Result<()> {
        if full.len() < self.entries.len() {
            return Err(broken("rollback: the log is shorter than the verified one"));
        }
        let (known, newer) = full.split_at(self.entries.len());
        if known
            .iter()
            .zip(&self.entries)
            .any(|(fetched, verified)| fetched.hash() != verified.hash())
        {
            return Err(broken("fork: the log diverges from the verified one"));
        }
        self.extend(newer)
    }

    fn truncate(&mut self, len: usize) {
        let len_seq = len as u64;
        self.entries.truncate(len);
        for history in self.timeline.values_mut() {
            history.retain(|(from, _)| *from < len_seq);
        }
        self.timeline.retain(|_, history| !history.is_empty());
        self.epoch_starts.retain(|start| *start < len_seq);
    }

    /// Checks that `entry` may come next (FORMAT.md 9.2 rules 3 to 6); changes nothing.
    fn check(&self, entry: &MembershipEntry) -> Result<Change> {
        let state = self.state();
        let head = state.entry();
        if entry.space_id != self.space_id {
            return Err(broken("entry belongs to another space"));
        }
        if Some(entry.seq) != head.seq.checked_add(1) {
            return Err(broken("entry seq does not follow the previous entry"));
        }
        if entry.prev_hash != head.hash() {
            return Err(broken("prev_hash is not the hash of the previous entry"));
        }
        if entry.commit_seq < head.commit_seq {
            return Err(broken("commit_seq went backwards"));
        }
        let signer_role = state
            .role_of(&entry.signer_key)
            .ok_or(broken("the signer is not a member"))?;
        if entry.seq == 1 && entry.action != Action::Rotate {
            return Err(broken("entry 1 must be a rotate"));
        }

        let change = check_rights(&state, entry, signer_role)?;

        // Membership after the entry: who must (and may) receive wraps, and the owner count.
        let after = |key: &SignPublicKey| -> Option<Role> {
            match &change {
                Change::Set(changed, membership) if changed == key => {
                    membership.as_ref().map(Member::role)
                }
                _ => state.role_of(key),
            }
        };
        let mut keys_after: Vec<SignPublicKey> = state.members().map(|m| *m.key()).collect();
        if let Change::Set(key, Some(_)) = &change
            && let Err(index) = keys_after.binary_search(key)
        {
            keys_after.insert(index, *key);
        }
        keys_after.retain(|key| after(key).is_some());
        if !keys_after.iter().any(|key| after(key) == Some(Role::Owner)) {
            return Err(broken("no owner would remain"));
        }

        check_epoch(&state, entry, &keys_after)?;
        Ok(change)
    }

    fn apply(&mut self, entry: &MembershipEntry, change: Change) {
        if let Change::Set(key, membership) = change {
            self.timeline
                .entry(key)
                .or_default()
                .push((entry.seq, membership));
        }
        if entry.action.advances_epoch() {
            self.epoch_starts.push(entry.seq);
        }
        self.entries.push(entry.clone());
    }

    /// The space id, `H(genesis entry)`.
    pub fn space_id(&self) -> &SpaceId {
        &self.space_id
    }

    /// The verified entries, in order.
    pub fn entries(&self) -> &[MembershipEntry] {
        &self.entries
    }

    /// The current membership state (after the last entry).
    pub fn state(&self) -> MembershipState<'_> {
        MembershipState {
            log: self,
            // Invariant: a log always holds at least its genesis entry.
            seq: self.entries.len().saturating_sub(1) as u64,
        }
    }

    /// The membership state after entry `seq`, if the log has it.
    pub fn state_at(&self, seq: u64) -> Option<MembershipState<'_>> {
        (seq < self.entries.len() as u64).then_some(MembershipState { log: self, seq })
    }

    /// The state that applies to commit `commit_seq` (FORMAT.md section 10 rule 3): the one after
    /// the last entry whose `commit_seq` is below it. `None` for commit seq 0, which does not exist.
    pub fn state_at_commit_seq(&self, commit_seq: u64) -> Option<MembershipState<'_>> {
        // `commit_seq` never decreases along the log, so the entries below form a prefix.
        let count = self
            .entries
            .partition_point(|entry| entry.commit_seq < commit_seq);
        self.state_at(count.checked_sub(1)? as u64)
    }

    /// The entry whose state applies to commit `commit_seq`.
    pub fn entry_applying_at(&self, commit_seq: u64) -> Option<&MembershipEntry> {
        self.state_at_commit_seq(commit_seq)
            .map(|state| state.entry())
    }

    /// The entry with hash `hash`, if it is in the log.
    pub fn find(&self, hash: &EntryHash) -> Option<&MembershipEntry> {
        self.entries.iter().find(|entry| entry.hash() == *hash)
    }

    /// The commitment to the key of `epoch`, if the log has reached it.
    pub fn epoch_commitment(&self, epoch: u64) -> Option<&KeyCommitment> {
        let start = *self.epoch_starts.get(usize::try_from(epoch).ok()?)?;
        Some(&self.entries.get(start as usize)?.epoch_commitment)
    }

    /// The current epoch key, opened from this identity's most recent wrap.
    pub fn current_epoch_key(&self, identity: &IdentitySecret) -> Result<EpochKey> {
        self.epoch_key(self.state().epoch(), identity)
    }

    /// The key of `epoch`: opens this identity's most recent wrap of an epoch ≥ `epoch`, then walks
    /// back through `prev_epoch_seal`s, checking each key against the log's commitment.
    /// [`Error::Authentication`] if the identity never received a key that reaches `epoch` (for
    /// instance a member removed before it).
    pub fn epoch_key(&self, epoch: u64, identity: &IdentitySecret) -> Result<EpochKey> {
        if epoch == 0 {
            return Err(Error::InvalidInput("epoch 0 has no key"));
        }
        let me = identity.sign_secret().public_key();
        let source = self
            .entries
            .iter()
            .rev()
            .filter(|entry| entry.epoch >= epoch)
            .find(|entry| entry.wrap_for(&me).is_some())
            .ok_or(Error::Authentication)?;
        let mut current = source.epoch;
        let mut key = source.open_epoch_key(identity)?;
        while current > epoch {
            let starts = self
                .epoch_starts
                .get(current as usize)
                .and_then(|seq| self.entries.get(*seq as usize))
                .ok_or(broken("epoch without a starting entry"))?;
            key = starts.previous_epoch_key(&key)?;
            current -= 1;
            let commitment = self
                .epoch_commitment(current)
                .ok_or(broken("epoch without a commitment"))?;
            if !epoch::key_matches(&self.space_id, current, &key, commitment) {
                return Err(Error::Authentication);
            }
        }
        Ok(key)
    }
}

/// FORMAT.md 9.2 rules 3 (no second create) and 5 (rights), and the member change of the entry.
fn check_rights(
    state: &MembershipState<'_>,
    entry: &MembershipEntry,
    signer_role: Role,
) -> Result<Change> {
    let needs_admin = || {
        if signer_role.can_administer() {
            Ok(())
        } else {
            Err(broken("only an admin or owner may do this"))
        }
    };
    let needs_owner = || {
        if signer_role == Role::Owner {
            Ok(())
        } else {
            Err(broken("only an owner may manage owners"))
        }
    };
    Ok(match &entry.action {
        Action::Create { .. } => return Err(broken("create is only allowed in genesis")),
        Action::Rotate => {
            needs_admin()?;
            Change::None
        }
        Action::Add { member, role } => {
            needs_admin()?;
            if *role == Role::Owner {
                needs_owner()?;
            }
            if state.member(member.sign_key()).is_some() {
                return Err(broken("add names someone who is already a member"));
            }
            Change::Set(
                *member.sign_key(),
                Some(Member {
                    identity: member.clone(),
                    role: *role,
                }),
            )
        }
        Action::Remove { member_key } => {
            let target = state
                .role_of(member_key)
                .ok_or(broken("remove names someone who is not a member"))?;
            if *member_key != entry.signer_key {
                needs_admin()?;
                if target == Role::Owner {
                    needs_owner()?;
                }
            }
            Change::Set(*member_key, None)
        }
        Action::ChangeRole { member_key, role } => {
            needs_admin()?;
            let target = state
                .member(member_key)
                .ok_or(broken("change_role names someone who is not a member"))?;
            if target.role == Role::Owner || *role == Role::Owner {
                needs_owner()?;
            }
            if target.role == *role {
                return Err(broken("change_role to the member's current role"));
            }
            Change::Set(
                *member_key,
                Some(Member {
                    identity: target.identity.clone(),
                    role: *role,
                }),
            )
        }
    })
}

/// FORMAT.md 9.2 rules 4 and 6: epochs, commitments, wraps and seals.
fn check_epoch(
    state: &MembershipState<'_>,
    entry: &MembershipEntry,
    keys_after: &[SignPublicKey],
) -> Result<()> {
    let previous_epoch = state.epoch();
    let recipients = entry.wraps.iter().map(Wrap::recipient);
    if entry.action.advances_epoch() {
        if Some(entry.epoch) != previous_epoch.checked_add(1) {
            return Err(broken("rotate and remove must advance the epoch by one"));
        }
        if entry.epoch_commitment.as_bytes() == &[0; 32] {
            return Err(broken("an epoch ≥ 1 needs an epoch commitment"));
        }
        if !recipients.eq(keys_after.iter()) {
            return Err(broken(
                "wraps must be for exactly the members after the entry",
            ));
        }
        if entry.prev_epoch_seal.is_empty() == (previous_epoch >= 1) {
            return Err(broken(
                "prev_epoch_seal must be present iff the previous epoch is at least 1",
            ));
        }
    } else {
        if entry.epoch != previous_epoch {
            return Err(broken("add and change_role must keep the epoch"));
        }
        if entry.epoch_commitment != *state.epoch_commitment() {
            return Err(broken(
                "an entry that keeps the epoch must keep its commitment",
            ));
        }
        if !entry.prev_epoch_seal.is_empty() {
            return Err(broken("only rotate and remove carry a prev_epoch_seal"));
        }
        let expected: &[SignPublicKey] = match &entry.action {
            Action::Add { member, .. } => core::slice::from_ref(member.sign_key()),
            _ => &[],
        };
        if !recipients.eq(expected.iter()) {
            return Err(broken(
                "add carries one wrap for the added member, change_role none",
            ));
        }
    }
    Ok(())
}
