//! Sharing between people: look users up, invite them to a space, list and accept invitations,
//! and manage the pinned keys of contacts.
//!
//! ```text
//! alice: client.share(&mut space, "bob", Role::Writer, false)   // add entry + sealed invitation
//! bob:   client.invitations()                                   // open, verify the inviter
//!        client.accept("Team", false)                           // verify the log, join
//! ```
//!
//! Invariants and threats:
//!
//! - a user's identity comes from the gateway, so it is checked against this device's pin for
//!   that handle before anything is wrapped for it ([`crate::contacts`]): a substituted key is
//!   [`Error::KeyChanged`] when the handle was pinned or verified **[T-key-substitution]**; on
//!   first use the served identity must be self-signed, carry the asked handle, and come with a
//!   device chain that verifies;
//! - an invitation is sealed to the invitee's encryption key and signed by the inviter's
//!   device; accepting it verifies that signature, pins the inviter (same TOFU rule), fetches and
//!   verifies the space's whole membership log, and checks that the log holds the inviter's
//!   `add` of this account with the announced role **[T-ghost]** — the gateway can drop an
//!   invitation, not forge one;
//! - invitations that fail to open or verify are deleted from the inbox (they can only be noise
//!   or an attack; logged, never shown as offers).

use coffre_crypto::device::{DeviceChain, DeviceEntry};
use coffre_crypto::identity::{Fingerprint, Handle, Identity, safety_number};
use coffre_crypto::invitation::Invitation;
use coffre_crypto::keys::{EntryHash, SpaceId};
use coffre_crypto::membership::{Action, Role};

use crate::client::Client;
use crate::contacts::{Contact, Contacts, KeyStatus};
use crate::error::{Error, Result};
use crate::members::MemberInfo;
use crate::spaces::{self, Space};

/// A user as looked up, verified, and compared with this device's pin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    /// The identity the gateway served (self-signed, with a verified device chain).
    pub identity: Identity,
    /// How it compares with the pin (nothing was pinned by the lookup).
    pub status: KeyStatus,
    /// The safety number of this account and that identity.
    pub safety_number: String,
}

/// What [`Client::share`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shared {
    /// The invitee's identity (now pinned).
    pub identity: Identity,
    /// Their key's status before sharing (`New`: pinned by this share).
    pub status: KeyStatus,
    /// The role given.
    pub role: Role,
}

/// An invitation in this account's inbox, opened and verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingInvitation {
    /// The inbox id (to delete it).
    pub inbox_id: u64,
    /// The space.
    pub space_id: SpaceId,
    /// The space's name, as the inviter named it.
    pub space_name: String,
    /// The role offered.
    pub role: Role,
    /// The inviter's identity (signature verified).
    pub inviter: Identity,
    /// How the inviter's key compares with this device's pin.
    pub inviter_status: KeyStatus,
    /// When it arrived, milliseconds since the Unix epoch.
    pub received_ms: u64,
}

/// A member with how this device knows their key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberView {
    /// The verified member.
    pub member: MemberInfo,
    /// Their key against the contacts (`Verified` for this account itself).
    pub status: KeyStatus,
}

impl Client {
    /// This account's contacts (pinned keys of other users).
    pub fn contacts(&self) -> Contacts {
        Contacts::open(self.home().contacts_path())
    }

    /// The safety number of this account and `other` (60 digits, the same on both sides).
    pub fn safety_number(&self, other: &Identity) -> String {
        safety_number(self.session().identity(), other)
    }

    /// This account's identity fingerprint.
    pub fn fingerprint(&self) -> Fingerprint {
        self.session().fingerprint()
    }

    /// Looks `handle` up on the gateway and verifies what it served (self-signed identity with
    /// that handle, device chain). Pins nothing: see [`UserInfo::status`].
    pub async fn lookup_user(&self, handle: &str) -> Result<UserInfo> {
        let handle = Handle::parse(handle)?;
        let answer = self.http().user(handle.as_str()).await?;
        let identity = Identity::decode(&answer.identity.0)?;
        if identity.handle() != &handle {
            return Err(Error::Integrity(format!(
                "the gateway answered for {handle} with the identity of {}",
                identity.handle()
            )));
        }
        let entries = answer
            .device_chain
            .iter()
            .map(|bytes| DeviceEntry::decode(&bytes.0))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        DeviceChain::verify(identity.sign_key(), &entries)?;
        let status = self.contacts().status(&identity)?;
        Ok(UserInfo {
            safety_number: self.safety_number(&identity),
            identity,
            status,
        })
    }

    /// Pins `identity` for first use, or checks it against the pin. A changed key of an
    /// unverified contact is accepted only with `trust_new_key` (the user confirmed it); of a
    /// verified contact, never (verify the new key with [`Contacts::mark_verified`]).
    fn check_contact(&self, identity: &Identity, trust_new_key: bool) -> Result<KeyStatus> {
        let contacts = self.contacts();
        let status = contacts.status(identity)?;
        match status {
            KeyStatus::Changed { verified: false } if trust_new_key => {
                contacts.replace(identity)?;
            }
            _ => {
                contacts.check_and_pin(identity)?;
            }
        }
        Ok(status)
    }

    /// Invites `handle` to `space` with `role`: verifies their key against the pin (see
    /// `Client::check_contact`), appends the signed `add` wrapping the epoch key for them, and
    /// leaves a sealed, signed invitation in their inbox.
    pub async fn share(
        &self,
        space: &mut Space,
        handle: &str,
        role: Role,
        trust_new_key: bool,
    ) -> Result<Shared> {
        let user = self.lookup_user(handle).await?;
        if user.identity.sign_key() == self.session().identity().sign_key() {
            return Err(Error::InvalidInput(
                "you are already a member of your own spaces".to_owned(),
            ));
        }
        let status = self.check_contact(&user.identity, trust_new_key)?;
        space.refresh_membership().await?;
        let entry_hash = match resendable_add(space, &user.identity, role) {
            // Already added by this account with this role (say the invitation was lost, or the
            // inbox was full): send the invitation again for that entry.
            Some(hash) => hash,
            None => space.add_member(&user.identity, role).await?.hash(),
        };
        let name = space
            .name()
            .map_or_else(|| format!("space {}", short_id(space.id())), str::to_owned);
        let session = self.session();
        let sealed = Invitation::seal(
            session.identity(),
            session.device(),
            &user.identity,
            space.id(),
            role,
            &entry_hash,
            &name,
        )?;
        self.http()
            .send_invitation(user.identity.handle().as_str(), sealed)
            .await?;
        Ok(Shared {
            identity: user.identity,
            status,
            role,
        })
    }

    /// The invitations waiting in this account's inbox, each opened and its signature verified.
    /// Invitations that do not open or verify are deleted.
    pub async fn invitations(&self) -> Result<Vec<PendingInvitation>> {
        Ok(self
            .opened_invitations()
            .await?
            .into_iter()
            .map(|(pending, _)| pending)
            .collect())
    }

    async fn opened_invitations(&self) -> Result<Vec<(PendingInvitation, Invitation)>> {
        let inbox = self.http().inbox().await?;
        let contacts = self.contacts();
        let mut opened = Vec::new();
        for item in inbox.invitations {
            match Invitation::open(self.session().secret(), &item.invitation.0) {
                Ok(invitation) => opened.push((
                    PendingInvitation {
                        inbox_id: item.id,
                        space_id: *invitation.space_id(),
                        space_name: invitation.space_name().to_owned(),
                        role: invitation.role(),
                        inviter_status: contacts.status(invitation.inviter())?,
                        inviter: invitation.inviter().clone(),
                        received_ms: item.received_ms,
                    },
                    invitation,
                )),
                Err(error) => {
                    tracing::warn!(inbox_id = item.id, %error, "deleting an invitation that does not verify");
                    self.http().delete_invitation(item.id).await?;
                }
            }
        }
        Ok(opened)
    }

    /// Accepts the invitation to the space named `selector` (its name as invited, its id, or an
    /// id prefix of at least 8 hex digits): verifies the inviter against the pin, the space's
    /// membership log from genesis, and that the log holds the inviter's `add` of this account
    /// with the announced role. Names the space locally and removes the invitation.
    pub async fn accept(&self, selector: &str, trust_new_key: bool) -> Result<Space> {
        let opened = self.opened_invitations().await?;
        let pending: Vec<PendingInvitation> =
            opened.iter().map(|(pending, _)| pending.clone()).collect();
        let chosen = select(&pending, selector)?;
        let (_, invitation) = opened
            .iter()
            .find(|(item, _)| item.inbox_id == chosen.inbox_id)
            .ok_or_else(|| Error::NotFound("the invitation was withdrawn".to_owned()))?;
        self.check_contact(invitation.inviter(), trust_new_key)?;
        let log = spaces::fetch_log(self.http(), self.state(), invitation.space_id()).await?;
        invitation.check_against(&log, self.session().identity())?;
        if log
            .state()
            .member(self.session().identity().sign_key())
            .is_none()
        {
            return Err(Error::Forbidden(
                "you were removed from this space after being invited".to_owned(),
            ));
        }
        let mut space = self.open_space(invitation.space_id()).await?;
        if space.name().is_none() {
            space.set_name(invitation.space_name())?;
        }
        for item in pending
            .iter()
            .filter(|item| item.space_id == chosen.space_id)
        {
            self.http().delete_invitation(item.inbox_id).await?;
        }
        Ok(space)
    }

    /// Declines (deletes) the invitations to the space named `selector`. Membership the inviter
    /// already granted stays until someone removes it (or `leave`).
    pub async fn decline(&self, selector: &str) -> Result<SpaceId> {
        let pending = self.invitations().await?;
        let space_id = select(&pending, selector)?.space_id;
        for item in pending.iter().filter(|item| item.space_id == space_id) {
            self.http().delete_invitation(item.inbox_id).await?;
        }
        Ok(space_id)
    }

    /// The members of `space` (from its verified log) with how this device knows their keys.
    pub fn members(&self, space: &Space) -> Result<Vec<MemberView>> {
        let contacts = self.contacts();
        space
            .members()
            .into_iter()
            .map(|member| {
                let status = if member.is_me {
                    KeyStatus::Verified
                } else {
                    contacts.status(&member.identity)?
                };
                Ok(MemberView { member, status })
            })
            .collect()
    }

    /// Marks `identity` verified after the user compared safety numbers (see
    /// [`Contacts::mark_verified`]).
    pub fn verify_contact(&self, identity: &Identity, accept_changed_key: bool) -> Result<Contact> {
        self.contacts().mark_verified(identity, accept_changed_key)
    }
}

/// The hash of the `add` that made `member` what they are now, if this account signed it with
/// `role` (so an invitation naming it verifies on their side).
fn resendable_add(space: &Space, member: &Identity, role: Role) -> Option<EntryHash> {
    let log = space.log();
    if log.state().role_of(member.sign_key()) != Some(role) {
        return None;
    }
    let me = space.session_identity_key();
    // The newest entry about this member decides: an add by this account with this role.
    for entry in log.entries().iter().rev() {
        match entry.action() {
            Action::Add {
                member: added,
                role: added_role,
            } if added.sign_key() == member.sign_key() => {
                return (entry.signer_key() == me && *added_role == role).then(|| entry.hash());
            }
            Action::Remove { member_key } | Action::ChangeRole { member_key, .. }
                if member_key == member.sign_key() =>
            {
                return None;
            }
            _ => {}
        }
    }
    None
}

fn short_id(id: &SpaceId) -> String {
    id.to_hex().chars().take(12).collect()
}

/// The invitation `selector` names: the newest of those whose space id, id prefix (≥ 8 hex
/// digits) or name matches; ambiguous if they name more than one space.
fn select<'p>(pending: &'p [PendingInvitation], selector: &str) -> Result<&'p PendingInvitation> {
    let selector_lower = selector.to_ascii_lowercase();
    let matches: Vec<&PendingInvitation> = pending
        .iter()
        .filter(|item| {
            let hex = item.space_id.to_hex();
            item.space_name == selector
                || hex == selector_lower
                || (selector_lower.len() >= 8 && hex.starts_with(&selector_lower))
        })
        .collect();
    let Some(newest) = matches.iter().max_by_key(|item| item.received_ms) else {
        return Err(Error::NotFound(format!(
            "no invitation to a space named {selector:?}; see `coffre invites`"
        )));
    };
    if matches.iter().any(|item| item.space_id != newest.space_id) {
        return Err(Error::InvalidInput(format!(
            "several invited spaces match {selector:?}; use the space id"
        )));
    }
    Ok(newest)
}
