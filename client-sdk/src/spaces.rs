//! Spaces: create, list and open, each time verifying the membership log from genesis.
//!
//! Invariants and threats:
//!
//! - a [`Space`] only exists once its whole membership log has verified (FORMAT.md 9.2), belongs
//!   to the asked space id (`H(genesis)`), extends the log this device pinned before (a shorter
//!   log is a rollback, another entry a fork: [`Error::Integrity`]) **[T-rollback]**, names this
//!   account as a member, and has given it the current epoch key (checked against the log's
//!   commitment) **[T-ghost]** **[T-unauth-keys]**;
//! - the gateway's space list is only a hint: roles and membership shown come from the verified
//!   logs, never from the gateway's summary;
//! - space names are kept locally (see [`crate::state`]): they never reach the gateway.
//!
//! File and history operations on a [`Space`] live in other modules (`impl Space` blocks) and use
//! its `pub(crate)` fields, or [`Space::context`] for [`crate::history`].

use std::sync::Arc;

use coffre_crypto::keys::{EpochKey, SpaceId};
use coffre_crypto::membership::{MembershipLog, Role};

use crate::error::{Error, Result};
use crate::history::SpaceContext;
use crate::http::HttpClient;
use crate::keystore::Unlocked;
use crate::remote::{AppendOutcome, Remote};
use crate::state::{State, check_space_name};

/// An open space: its verified membership log and the current epoch key.
pub struct Space<R = HttpClient> {
    /// `H(genesis entry)`.
    pub(crate) id: SpaceId,
    /// The verified membership log (pinned in `state`).
    pub(crate) log: MembershipLog,
    /// The current epoch.
    pub(crate) epoch: u64,
    /// The current epoch's key (older ones: `log.epoch_key(epoch, session.secret())`).
    pub(crate) epoch_key: EpochKey,
    /// The gateway.
    pub(crate) remote: R,
    /// This device's pins.
    pub(crate) state: Arc<State>,
    /// The unlocked identity and device.
    pub(crate) session: Arc<Unlocked>,
    /// The local display name.
    pub(crate) name: Option<String>,
}

impl<R> std::fmt::Debug for Space<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Space")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("epoch", &self.epoch)
            .field("members", &self.log.state().members().count())
            .finish_non_exhaustive()
    }
}

/// A space as listed: verified facts only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpaceInfo {
    /// The space id.
    pub id: SpaceId,
    /// The local display name, if set on this device.
    pub name: Option<String>,
    /// This account's role, from the verified log.
    pub role: Role,
    /// Number of members, from the verified log.
    pub members: usize,
    /// The current epoch.
    pub epoch: u64,
    /// The newest commit seq as the gateway claims it (a hint until history verifies it).
    pub head_seq_hint: u64,
}

impl<R: Remote> Space<R> {
    /// The space id.
    pub fn id(&self) -> &SpaceId {
        &self.id
    }

    /// The local display name, if set on this device.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// This account's identity key.
    pub fn session_identity_key(&self) -> &coffre_crypto::keys::SignPublicKey {
        self.session.identity().sign_key()
    }

    /// The verified membership log.
    pub fn log(&self) -> &MembershipLog {
        &self.log
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// This account's role (always present: a `Space` is only opened by a member).
    pub fn role(&self) -> Option<Role> {
        self.log.state().role_of(self.session.identity().sign_key())
    }

    /// Sets this space's local display name.
    pub fn set_name(&mut self, name: &str) -> Result<()> {
        self.state.set_name(&self.id, name)?;
        self.name = Some(name.to_owned());
        Ok(())
    }

    /// What history needs: remote, log, identity, device and pins.
    pub fn context(&self) -> SpaceContext<'_, R> {
        self.context_with(&self.log)
    }

    /// [`Space::context`] with another verified log of this space (e.g. a fresher one).
    pub(crate) fn context_with<'a>(&'a self, log: &'a MembershipLog) -> SpaceContext<'a, R> {
        SpaceContext {
            remote: &self.remote,
            space_id: self.id,
            log,
            identity: self.session.secret(),
            signer: self.session.device(),
            pins: &*self.state,
        }
    }

    /// Fetches the membership log again, verifies and pins it, and takes the newest epoch key.
    pub async fn refresh_membership(&mut self) -> Result<()> {
        let (log, epoch, key) =
            fetch_verified(&self.remote, &self.state, &self.session, &self.id).await?;
        self.log = log;
        self.epoch = epoch;
        self.epoch_key = key;
        Ok(())
    }
}

/// Creates a space owned by this account: genesis, then the first rotate (its epoch-1 key).
pub async fn create_space<R: Remote>(
    remote: R,
    state: Arc<State>,
    session: Arc<Unlocked>,
    name: &str,
) -> Result<Space<R>> {
    check_space_name(name)?;
    let salt = coffre_crypto::keys::random_bytes::<16>()?;
    let (log, key) =
        MembershipLog::create(session.identity(), session.secret(), session.device(), salt)?;
    let [genesis, rotate] = log.entries() else {
        return Err(Error::Crypto(
            "a new space's log is its genesis and first rotate".to_owned(),
        ));
    };
    let id = remote.create_space(genesis.encoded().to_vec()).await?;
    if id != *log.space_id() {
        return Err(Error::Protocol(format!(
            "the gateway named the new space {id}, but its genesis hashes to {}",
            log.space_id()
        )));
    }
    match remote
        .append_membership(&id, rotate.encoded().to_vec())
        .await?
    {
        AppendOutcome::Appended => {}
        AppendOutcome::Conflict { .. } => {
            return Err(Error::Conflict(
                "the new space's log moved on before its first key was stored".to_owned(),
            ));
        }
    }
    state.check_and_pin_membership(&log)?;
    state.set_name(&id, name)?;
    let epoch = log.state().epoch();
    Ok(Space {
        id,
        log,
        epoch,
        epoch_key: key,
        remote,
        state,
        session,
        name: Some(name.to_owned()),
    })
}

/// Opens a space: fetches its log, verifies it from genesis against the pin, takes the key.
pub async fn open_space<R: Remote>(
    remote: R,
    state: Arc<State>,
    session: Arc<Unlocked>,
    id: &SpaceId,
) -> Result<Space<R>> {
    let (log, epoch, key) = fetch_verified(&remote, &state, &session, id).await?;
    let name = state.pins(id)?.name;
    Ok(Space {
        id: *id,
        log,
        epoch,
        epoch_key: key,
        remote,
        state,
        session,
        name,
    })
}

/// Lists the spaces the gateway says this account is in, verifying each log. A log that fails
/// verification fails the whole listing ([`Error::Integrity`]): stop and warn.
pub async fn list_spaces<R: Remote>(
    remote: &R,
    state: &State,
    session: &Unlocked,
) -> Result<Vec<SpaceInfo>> {
    let mut infos = Vec::new();
    for summary in remote.list_spaces().await? {
        let id = SpaceId::from_bytes(summary.space_id.0);
        let log = fetch_log(remote, state, &id).await?;
        let me = session.identity().sign_key();
        let Some(role) = log.state().role_of(me) else {
            // The gateway lists a space whose verified log does not include us: not ours.
            continue;
        };
        infos.push(SpaceInfo {
            id,
            name: state.pins(&id)?.name,
            role,
            members: log.state().members().count(),
            epoch: log.state().epoch(),
            head_seq_hint: summary.head_seq,
        });
    }
    infos.sort_by(|a, b| a.name.cmp(&b.name).then(a.id.cmp(&b.id)));
    Ok(infos)
}

/// Fetches and verifies a log from genesis, checks it against the pin, and pins it.
pub(crate) async fn fetch_log<R: Remote>(
    remote: &R,
    state: &State,
    id: &SpaceId,
) -> Result<MembershipLog> {
    let entries = match remote.membership(id, 0).await {
        // The gateway does not reveal spaces to non-members; if this device verified the log
        // before, the likely story is a removal, which is what the person needs to hear.
        Err(Error::NotFound(_)) if state.pins(id)?.membership.is_some() => {
            return Err(Error::Forbidden(format!(
                "the gateway no longer shows space {id} to this account: you were removed (or \
                 left), or the space is gone"
            )));
        }
        other => other?,
    };
    let log = MembershipLog::decode_and_verify(&entries)?;
    if log.space_id() != id {
        return Err(Error::Integrity(format!(
            "the gateway served the log of space {} for space {id}",
            log.space_id()
        )));
    }
    state.check_and_pin_membership(&log)?;
    Ok(log)
}

async fn fetch_verified<R: Remote>(
    remote: &R,
    state: &State,
    session: &Unlocked,
    id: &SpaceId,
) -> Result<(MembershipLog, u64, EpochKey)> {
    let log = fetch_log(remote, state, id).await?;
    if log.state().member(session.identity().sign_key()).is_none() {
        return Err(Error::Forbidden(format!(
            "this account is not a member of space {id}"
        )));
    }
    let key = log.current_epoch_key(session.secret())?;
    let epoch = log.state().epoch();
    Ok((log, epoch, key))
}
