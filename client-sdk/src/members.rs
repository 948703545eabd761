//! Membership changes on an open [`Space`]: add, change a role, remove (with key rotation), leave.
//!
//! Each change is one signed membership entry (FORMAT.md section 9) built from the freshly
//! fetched and verified log and the verified commit head, appended with compare-and-swap; when
//! the log or the head moved meanwhile, it is rebuilt on the new state and retried.
//!
//! Invariants and threats:
//!
//! - who may do what is checked here first, so a refused change fails with [`Error::Forbidden`]
//!   before anything is signed; the gateway and every other member check it again on the log
//!   (a reader or a removed member cannot sign their way in **[T-unauth-write]**);
//! - **removal rotates the epoch key**: the new key is wrapped for the remaining members only,
//!   and seals the previous one, so the remaining members keep reading history while the removed
//!   member cannot open anything written afterwards **[T-revocation]**;
//! - adding a member wraps the *current* epoch key for them: they can read the space's history
//!   (the previous keys are sealed under it), which is what joining a shared folder means.

use coffre_crypto::identity::Identity;
use coffre_crypto::keys::{EpochKey, SignPublicKey};
use coffre_crypto::membership::{Member, MembershipEntry, MembershipLog, Role};

use crate::error::{Error, Result};
use crate::history::History;
use crate::remote::{AppendOutcome, Remote};
use crate::spaces::Space;

/// How many times a membership change is rebuilt when the log or head moved meanwhile.
const MAX_APPEND_ATTEMPTS: usize = 8;

/// A member as shown to people: verified facts from the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's identity (handle and keys).
    pub identity: Identity,
    /// Their role.
    pub role: Role,
    /// Whether it is this account.
    pub is_me: bool,
}

/// What may add, remove or re-role whom (the log's rules, FORMAT.md section 9.2).
fn may_manage(me: Role, target_role: Role) -> bool {
    match me {
        Role::Owner => true,
        Role::Admin => target_role != Role::Owner,
        Role::Reader | Role::Writer => false,
    }
}

fn forbidden(what: &str) -> Error {
    Error::Forbidden(what.to_owned())
}

/// The one member of `log` with `handle` (handles are unique among a space's members unless an
/// admin added two identities under one handle: then the caller must disambiguate).
pub(crate) fn member_by_handle<'l>(log: &'l MembershipLog, handle: &str) -> Result<&'l Member> {
    let state = log.state();
    let mut found = state
        .members()
        .filter(|member| member.identity().handle().as_str() == handle);
    match (found.next(), found.next()) {
        (Some(member), None) => Ok(member),
        (None, _) => Err(Error::NotFound(format!("{handle} is not a member"))),
        (Some(_), Some(_)) => Err(Error::Conflict(format!(
            "two members of this space are named {handle}; compare fingerprints with `members`"
        ))),
    }
}

impl<R: Remote> Space<R> {
    /// The members, from the verified log (call [`Space::refresh_membership`] first for news).
    pub fn members(&self) -> Vec<MemberInfo> {
        let me = self.session.identity().sign_key();
        let mut members: Vec<MemberInfo> = self
            .log
            .state()
            .members()
            .map(|member| MemberInfo {
                identity: member.identity().clone(),
                role: member.role(),
                is_me: member.key() == me,
            })
            .collect();
        members.sort_by(|a, b| {
            b.role
                .cmp(&a.role)
                .then_with(|| a.identity.handle().cmp(b.identity.handle()))
        });
        members
    }

    fn my_role(&self) -> Result<Role> {
        self.log
            .state()
            .role_of(self.session.identity().sign_key())
            .ok_or_else(|| forbidden("this account is no longer a member of the space"))
    }

    /// Adds `member` with `role`: wraps the current epoch key for them and appends the signed
    /// entry. Returns the entry (its hash goes into the invitation). Admins add readers, writers
    /// and admins; only owners add owners.
    pub async fn add_member(&mut self, member: &Identity, role: Role) -> Result<MembershipEntry> {
        let key = *member.sign_key();
        let entry = self
            .change_membership(|space, commit_seq| {
                let me = space.my_role()?;
                if !may_manage(me, role) {
                    return Err(forbidden(&format!(
                        "a {} cannot add a {}",
                        me.name(),
                        role.name()
                    )));
                }
                if space.log.state().member(&key).is_some() {
                    return Err(Error::AlreadyExists(format!(
                        "{} is already a member",
                        member.handle()
                    )));
                }
                let session = &space.session;
                let entry =
                    space
                        .log
                        .add(session.secret(), session.device(), commit_seq, member, role)?;
                Ok((entry, None))
            })
            .await?;
        Ok(entry)
    }

    /// Changes the role of the member named `handle`. Admins re-role non-owners; only owners
    /// make or unmake owners; a space keeps at least one owner.
    pub async fn set_role(&mut self, handle: &str, role: Role) -> Result<()> {
        self.change_membership(|space, commit_seq| {
            let me = space.my_role()?;
            let target = member_by_handle(&space.log, handle)?;
            if !may_manage(me, target.role()) || !may_manage(me, role) {
                return Err(forbidden(&format!(
                    "a {} cannot change a {} into a {}",
                    me.name(),
                    target.role().name(),
                    role.name()
                )));
            }
            if target.role() == role {
                return Err(Error::AlreadyExists(format!(
                    "{handle} is already a {}",
                    role.name()
                )));
            }
            if target.role() == Role::Owner && space.log.state().owner_count() == 1 {
                return Err(Error::InvalidInput(format!(
                    "{handle} is the last owner; make someone else owner first"
                )));
            }
            let entry =
                space
                    .log
                    .change_role(space.session.device(), commit_seq, target.key(), role)?;
            Ok((entry, None))
        })
        .await?;
        Ok(())
    }

    /// Removes the member named `handle` and rotates the epoch key: the new key is wrapped for
    /// the remaining members only. Use [`Space::leave`] to remove yourself.
    pub async fn remove_member(&mut self, handle: &str) -> Result<()> {
        self.change_membership(|space, commit_seq| {
            let me = space.my_role()?;
            let target = member_by_handle(&space.log, handle)?;
            if target.key() == space.session.identity().sign_key() {
                return Err(Error::InvalidInput(
                    "to remove yourself, leave the space".to_owned(),
                ));
            }
            if !may_manage(me, target.role()) {
                return Err(forbidden(&format!(
                    "a {} cannot remove a {}",
                    me.name(),
                    target.role().name()
                )));
            }
            let session = &space.session;
            let (entry, key) =
                space
                    .log
                    .remove(session.secret(), session.device(), commit_seq, target.key())?;
            Ok((entry, Some(key)))
        })
        .await?;
        Ok(())
    }

    /// Leaves the space: a signed removal of this account, rotating the epoch key for the
    /// others (this device forgets the new key at once). The last owner cannot leave.
    pub async fn leave(mut self) -> Result<()> {
        self.change_membership(|space, commit_seq| {
            let me = space.my_role()?;
            if me == Role::Owner && space.log.state().owner_count() == 1 {
                return Err(Error::InvalidInput(
                    "the last owner cannot leave; make another member owner first".to_owned(),
                ));
            }
            let session = &space.session;
            // The next epoch's key is drawn here for the others; it is dropped (zeroized) now.
            let (entry, _forgotten) =
                space
                    .log
                    .leave(session.secret(), session.device(), commit_seq)?;
            Ok((entry, None))
        })
        .await?;
        Ok(())
    }

    /// Builds an entry with `build(self, head commit seq)` on the freshly verified log, appends
    /// it with compare-and-swap, and on success adopts the extended log (and the new epoch key,
    /// if the entry rotated it). Retries when the log or the head moved.
    async fn change_membership(
        &mut self,
        build: impl Fn(&Self, u64) -> Result<(MembershipEntry, Option<EpochKey>)>,
    ) -> Result<MembershipEntry> {
        for _ in 0..MAX_APPEND_ATTEMPTS {
            self.refresh_membership().await?;
            let head_seq = History::new(self.context())
                .head()
                .await?
                .map_or(0, |commit| commit.seq());
            let (entry, new_key) = build(self, head_seq)?;
            match self
                .remote
                .append_membership(&self.id, entry.encoded().to_vec())
                .await?
            {
                AppendOutcome::Appended => {
                    let mut log = self.log.clone();
                    log.append(&entry)?;
                    self.state.check_and_pin_membership(&log)?;
                    let me: SignPublicKey = *self.session.identity().sign_key();
                    if log.state().member(&me).is_some() {
                        self.epoch_key = match new_key {
                            Some(key) => key,
                            None => log.current_epoch_key(self.session.secret())?,
                        };
                        self.epoch = log.state().epoch();
                    }
                    self.log = log;
                    return Ok(entry);
                }
                AppendOutcome::Conflict { .. } => continue,
            }
        }
        Err(Error::Conflict(format!(
            "the space changed {MAX_APPEND_ATTEMPTS} times while changing its membership; try again"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn who_may_manage_whom() {
        use Role::*;
        for target in [Reader, Writer, Admin, Owner] {
            assert!(may_manage(Owner, target));
            assert!(!may_manage(Writer, target));
            assert!(!may_manage(Reader, target));
        }
        assert!(may_manage(Admin, Admin));
        assert!(!may_manage(Admin, Owner));
    }
}
