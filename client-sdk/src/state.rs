//! What this device remembers about each space between runs: the pins that make rollback and
//! forks detectable **[T-rollback]**, and the space's local display name.
//!
//! For code that verifies commits (history): obtain the pinned head with
//! [`PinStore::pinned`] (or [`State::commit_chain`]), verify what the gateway serves against it
//! (`PinnedHead::check_extension` / `CommitChain::accept`), then move the pin forward with
//! [`State::check_and_pin_commit`] (or [`PinStore::pin`], which is the same call). The pin only
//! moves forward: a head with a lower seq is refused as a rollback, another hash at the pinned seq
//! as a fork, both [`Error::Integrity`], and nothing is written.
//!
//! For membership logs: [`State::check_and_pin_membership`] after verifying a log from genesis.
//! The pin is the log's length and the hash of its last entry; since entries are hash-chained, a
//! served log that has the same hash at that position has the same whole prefix. A shorter log is
//! a rollback, another entry there a fork.
//!
//! Storage: one JSON file per space in `<data>/spaces/<space id>.json`, written atomically (mode
//! `0600`); a mutex serialises read-modify-write within the process. Two processes of the same
//! account racing may lose a pin update (the older pin stays, which is safe: it only weakens
//! detection until the next refresh), never corrupt the file.
//!
//! Space names are local for now: FORMAT.md has no encrypted space-name blob yet (invitations
//! carry the name to invitees), so a name set here is not seen by other members or devices.

use std::path::PathBuf;
use std::sync::Mutex;

use coffre_crypto::commit::{CommitChain, PinnedHead};
use coffre_crypto::keys::{CommitHash, EntryHash, SpaceId};
use coffre_crypto::membership::MembershipLog;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::history::PinStore;
use crate::home::write_atomic;

/// Longest space name in bytes (FORMAT.md section 11).
pub const MAX_SPACE_NAME: usize = 255;

/// The pinned head of a membership log: its length and the hash of its last entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPin {
    /// Number of entries verified.
    pub len: u64,
    /// `H(last entry)`.
    pub head: EntryHash,
}

/// Everything remembered about one space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpacePins {
    /// The membership log as far as verified (`None`: never seen).
    pub membership: Option<LogPin>,
    /// The highest verified commit ([`PinnedHead::NONE`]: none yet).
    pub commit: PinnedHead,
    /// The local display name.
    pub name: Option<String>,
}

impl Default for SpacePins {
    fn default() -> Self {
        SpacePins {
            membership: None,
            commit: PinnedHead::NONE,
            name: None,
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SpaceFile {
    #[serde(default)]
    membership_len: u64,
    #[serde(default)]
    membership_head: Option<String>,
    #[serde(default)]
    commit_seq: u64,
    #[serde(default)]
    commit_hash: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The per-space state of one account on this device.
#[derive(Debug)]
pub struct State {
    dir: PathBuf,
    lock: Mutex<()>,
}

fn rollback(what: &str) -> Error {
    Error::Integrity(format!("rollback: {what}"))
}

fn fork(what: &str) -> Error {
    Error::Integrity(format!("fork: {what}"))
}

/// Checks a space name: 1 to 255 bytes, no control characters.
pub fn check_space_name(name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_SPACE_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidInput(
            "a space name is 1 to 255 bytes without control characters".to_owned(),
        ));
    }
    Ok(())
}

impl State {
    /// The state kept in `dir` (created on first write).
    pub fn open(dir: impl Into<PathBuf>) -> State {
        State {
            dir: dir.into(),
            lock: Mutex::new(()),
        }
    }

    fn path(&self, space: &SpaceId) -> PathBuf {
        self.dir.join(format!("{}.json", space.to_hex()))
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is on disk and written atomically; a poisoned lock protects nothing
        // that could be half-updated.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// What is remembered about `space` (defaults if nothing).
    pub fn pins(&self, space: &SpaceId) -> Result<SpacePins> {
        let _guard = self.guard();
        self.read(space)
    }

    /// The spaces this device has state for.
    pub fn known_spaces(&self) -> Result<Vec<SpaceId>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error.into()),
        };
        let mut spaces = Vec::new();
        for entry in entries {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            if let Some(hex) = name.strip_suffix(".json")
                && let Ok(space) = SpaceId::from_hex(hex)
            {
                spaces.push(space);
            }
        }
        spaces.sort();
        Ok(spaces)
    }

    /// Checks that `log` (verified from genesis) extends the pinned log of its space, without
    /// pinning it.
    pub fn check_membership(&self, log: &MembershipLog) -> Result<()> {
        let _guard = self.guard();
        check_log(&self.read(log.space_id())?, log)
    }

    /// Checks that `log` (verified from genesis) extends the pinned log, then pins it.
    pub fn check_and_pin_membership(&self, log: &MembershipLog) -> Result<()> {
        let _guard = self.guard();
        let space = log.space_id();
        let mut pins = self.read(space)?;
        check_log(&pins, log)?;
        let head = log.state().head();
        let len = log.entries().len() as u64;
        if pins.membership != Some(LogPin { len, head }) {
            pins.membership = Some(LogPin { len, head });
            self.write(space, &pins)?;
        }
        Ok(())
    }

    /// Moves the commit pin of `space` to `head`, which the caller has verified extends the
    /// current pin. Refuses a lower seq (rollback) or another hash at the pinned seq (fork).
    pub fn check_and_pin_commit(&self, space: &SpaceId, head: PinnedHead) -> Result<()> {
        let _guard = self.guard();
        let mut pins = self.read(space)?;
        let pinned = pins.commit;
        if head.seq < pinned.seq {
            return Err(rollback(&format!(
                "commit seq {} is older than the verified seq {}",
                head.seq, pinned.seq
            )));
        }
        if head.seq == pinned.seq {
            return if head.hash == pinned.hash {
                Ok(())
            } else {
                Err(fork(&format!(
                    "another commit at the verified seq {}",
                    pinned.seq
                )))
            };
        }
        pins.commit = head;
        self.write(space, &pins)
    }

    /// A commit chain resumed from the pin of `space`.
    pub fn commit_chain(&self, space: &SpaceId) -> Result<CommitChain> {
        Ok(CommitChain::pinned(*space, self.pins(space)?.commit))
    }

    /// Sets the local display name of `space`.
    pub fn set_name(&self, space: &SpaceId, name: &str) -> Result<()> {
        check_space_name(name)?;
        let _guard = self.guard();
        let mut pins = self.read(space)?;
        pins.name = Some(name.to_owned());
        self.write(space, &pins)
    }

    fn read(&self, space: &SpaceId) -> Result<SpacePins> {
        let path = self.path(space);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SpacePins::default());
            }
            Err(error) => return Err(error.into()),
        };
        let damaged = |what: &str| {
            Error::Config(format!(
                "the state file {} is damaged ({what}); restore it from a backup or delete it \
                 (this device then trusts the gateway's next answer for that space)",
                path.display()
            ))
        };
        let file: SpaceFile =
            serde_json::from_slice(&bytes).map_err(|error| damaged(&error.to_string()))?;
        let membership = match file.membership_head {
            Some(hex) => Some(LogPin {
                len: file.membership_len,
                head: EntryHash::from_hex(&hex).map_err(|_| damaged("membership_head"))?,
            }),
            None => None,
        };
        let commit = match file.commit_hash {
            Some(hex) => PinnedHead {
                seq: file.commit_seq,
                hash: CommitHash::from_hex(&hex).map_err(|_| damaged("commit_hash"))?,
            },
            None => PinnedHead::NONE,
        };
        if let Some(name) = &file.name {
            check_space_name(name).map_err(|_| damaged("name"))?;
        }
        Ok(SpacePins {
            membership,
            commit,
            name: file.name,
        })
    }

    fn write(&self, space: &SpaceId, pins: &SpacePins) -> Result<()> {
        let file = SpaceFile {
            membership_len: pins.membership.map_or(0, |pin| pin.len),
            membership_head: pins.membership.map(|pin| pin.head.to_hex()),
            commit_seq: pins.commit.seq,
            commit_hash: (pins.commit != PinnedHead::NONE).then(|| pins.commit.hash.to_hex()),
            name: pins.name.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&file)
            .map_err(|error| Error::Config(format!("cannot encode state: {error}")))?;
        write_atomic(&self.path(space), &bytes)
    }
}

fn check_log(pins: &SpacePins, log: &MembershipLog) -> Result<()> {
    let Some(pin) = pins.membership else {
        return Ok(());
    };
    let entries = log.entries();
    if (entries.len() as u64) < pin.len {
        return Err(rollback(&format!(
            "the membership log has {} entries, {} were verified before",
            entries.len(),
            pin.len
        )));
    }
    let at_pin = usize::try_from(pin.len)
        .ok()
        .and_then(|len| len.checked_sub(1))
        .and_then(|index| entries.get(index));
    match at_pin {
        Some(entry) if entry.hash() == pin.head => Ok(()),
        _ => Err(fork(
            "the membership log differs from the one verified before",
        )),
    }
}

impl PinStore for State {
    fn pinned(&self, space: &SpaceId) -> Result<PinnedHead> {
        Ok(self.pins(space)?.commit)
    }

    fn pin(&self, space: &SpaceId, head: PinnedHead) -> Result<()> {
        self.check_and_pin_commit(space, head)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn head(seq: u64, byte: u8) -> PinnedHead {
        PinnedHead {
            seq,
            hash: CommitHash::from_bytes([byte; 32]),
        }
    }

    #[test]
    fn commit_pins_only_move_forward_and_persist() {
        let dir = tempfile::tempdir().unwrap();
        let space = SpaceId::from_bytes([3; 32]);
        let state = State::open(dir.path().join("spaces"));
        assert_eq!(state.pinned(&space).unwrap(), PinnedHead::NONE);
        state.check_and_pin_commit(&space, head(2, 1)).unwrap();
        state.check_and_pin_commit(&space, head(2, 1)).unwrap();
        let error = state.check_and_pin_commit(&space, head(1, 1)).unwrap_err();
        assert!(error.to_string().contains("rollback"), "{error}");
        let error = state.pin(&space, head(2, 9)).unwrap_err();
        assert!(error.to_string().contains("fork"), "{error}");
        state.pin(&space, head(5, 2)).unwrap();
        state.set_name(&space, "Budget 2026").unwrap();
        let reopened = State::open(dir.path().join("spaces"));
        let pins = reopened.pins(&space).unwrap();
        assert_eq!(pins.commit, head(5, 2));
        assert_eq!(pins.name.as_deref(), Some("Budget 2026"));
        assert_eq!(reopened.known_spaces().unwrap(), vec![space]);
        assert_eq!(reopened.commit_chain(&space).unwrap().head(), head(5, 2));
        assert!(state.set_name(&space, "").is_err());
        assert!(state.set_name(&space, "a\nb").is_err());
    }

    #[test]
    fn damaged_state_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        let space = SpaceId::from_bytes([4; 32]);
        let state = State::open(dir.path());
        std::fs::write(state.path(&space), b"{ not json").unwrap();
        assert!(matches!(state.pins(&space), Err(Error::Config(_))));
    }
}
