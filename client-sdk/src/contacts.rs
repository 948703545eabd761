//! Contacts: the identity keys of other users, pinned on first use and optionally verified.
//!
//! The gateway answers "who is `carol`?" (`GET /v1/users/carol`), and a malicious gateway could
//! answer with a key it holds **[T-key-substitution]**. Defences, in order of strength:
//!
//! - **trust on first use**: the first identity seen for a handle (looked up to share with, or the
//!   signer of an invitation) is pinned here; a later, different identity for that handle is
//!   [`Error::KeyChanged`] until the user confirms it ([`Contacts::replace`]);
//! - **verification**: the user compares the 60-digit safety number
//!   ([`coffre_crypto::identity::safety_number`]) with the other person out of band, then marks
//!   the contact verified ([`Contacts::mark_verified`]). A verified contact's key change is a hard
//!   error: [`Error::KeyChanged`] with `verified: true`, which only a new, explicit verification
//!   of the new key clears.
//!
//! Storage: `<data>/contacts.json` (mode `0600`, written atomically), holding each contact's
//! encoded, self-signed identity: it is re-verified on every load, so a corrupted or edited file
//! is an error, never a silently different key. The file holds only public keys and handles.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use coffre_crypto::identity::{Handle, Identity};
use serde::{Deserialize, Serialize};

use crate::account::now_ms;
use crate::error::{Error, Result};
use crate::home::write_atomic;

/// What this device knows about another user's key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The pinned identity (handle, signing and encryption keys).
    pub identity: Identity,
    /// Whether the user compared safety numbers and marked it verified.
    pub verified: bool,
    /// When it was first pinned, milliseconds since the Unix epoch.
    pub pinned_ms: u64,
}

impl Contact {
    /// The contact's handle.
    pub fn handle(&self) -> &Handle {
        self.identity.handle()
    }
}

/// How a served identity compares with the pin for its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// No pin yet: first use.
    New,
    /// Same key as pinned, not verified.
    Pinned,
    /// Same key as pinned and verified.
    Verified,
    /// Another key than pinned (`verified`: the old one had been verified).
    Changed {
        /// Whether the pinned key had been verified.
        verified: bool,
    },
}

impl KeyStatus {
    /// A short word for people and `--json`: `new`, `pinned`, `verified`, `CHANGED`.
    pub fn name(self) -> &'static str {
        match self {
            KeyStatus::New => "new",
            KeyStatus::Pinned => "pinned",
            KeyStatus::Verified => "verified",
            KeyStatus::Changed { .. } => "CHANGED",
        }
    }
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactsFile {
    #[serde(default)]
    contacts: BTreeMap<String, ContactRecord>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactRecord {
    identity: String,
    verified: bool,
    pinned_ms: u64,
}

/// The pinned contacts of one account on this device.
#[derive(Debug)]
pub struct Contacts {
    path: PathBuf,
    lock: Mutex<()>,
}

fn changed(identity: &Identity, verified: bool) -> Error {
    Error::KeyChanged {
        handle: identity.handle().to_string(),
        verified,
    }
}

impl Contacts {
    /// The contacts kept in `path` (created on first pin).
    pub fn open(path: impl Into<PathBuf>) -> Contacts {
        Contacts {
            path: path.into(),
            lock: Mutex::new(()),
        }
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        // The file is replaced atomically; a poisoned lock guards nothing half-written.
        self.lock
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn corrupt(&self, what: &str) -> Error {
        Error::Config(format!("{}: {what}", self.path.display()))
    }

    fn read(&self) -> Result<BTreeMap<String, Contact>> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(text) => text,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return Ok(BTreeMap::new());
            }
            Err(error) => return Err(error.into()),
        };
        let file: ContactsFile =
            serde_json::from_str(&text).map_err(|error| self.corrupt(&error.to_string()))?;
        let mut contacts = BTreeMap::new();
        for (handle, record) in file.contacts {
            let bytes = hex::decode(&record.identity)
                .map_err(|_| self.corrupt(&format!("the key of {handle} is not hex")))?;
            let identity = Identity::decode(&bytes)
                .map_err(|_| self.corrupt(&format!("the identity of {handle} does not verify")))?;
            if identity.handle().as_str() != handle {
                return Err(self.corrupt(&format!("the identity under {handle} is not theirs")));
            }
            contacts.insert(
                handle,
                Contact {
                    identity,
                    verified: record.verified,
                    pinned_ms: record.pinned_ms,
                },
            );
        }
        Ok(contacts)
    }

    fn write(&self, contacts: &BTreeMap<String, Contact>) -> Result<()> {
        let file = ContactsFile {
            contacts: contacts
                .iter()
                .map(|(handle, contact)| {
                    let record = ContactRecord {
                        identity: hex::encode(contact.identity.encoded()),
                        verified: contact.verified,
                        pinned_ms: contact.pinned_ms,
                    };
                    (handle.clone(), record)
                })
                .collect(),
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|error| Error::Config(format!("cannot encode contacts: {error}")))?;
        write_atomic(&self.path, text.as_bytes())
    }

    /// Every pinned contact, by handle.
    pub fn list(&self) -> Result<Vec<Contact>> {
        let _guard = self.guard();
        Ok(self.read()?.into_values().collect())
    }

    /// The contact pinned for `handle`, if any.
    pub fn get(&self, handle: &Handle) -> Result<Option<Contact>> {
        let _guard = self.guard();
        Ok(self.read()?.remove(handle.as_str()))
    }

    /// How `identity` compares with the pin for its handle (nothing is written).
    pub fn status(&self, identity: &Identity) -> Result<KeyStatus> {
        let _guard = self.guard();
        Ok(status_in(&self.read()?, identity))
    }

    /// Trust on first use: pins `identity` if its handle has no pin; accepts it if it is the
    /// pinned key; [`Error::KeyChanged`] if another key is pinned for that handle.
    pub fn check_and_pin(&self, identity: &Identity) -> Result<Contact> {
        let _guard = self.guard();
        let mut contacts = self.read()?;
        match contacts.get(identity.handle().as_str()) {
            Some(contact) if contact.identity.sign_key() == identity.sign_key() => {
                if contact.identity.encoded() == identity.encoded() {
                    return Ok(contact.clone());
                }
                // Same signing key, re-certified (another encryption key or time): a change of
                // the key material others encrypt to, so it is treated as a key change.
                Err(changed(identity, contact.verified))
            }
            Some(contact) => Err(changed(identity, contact.verified)),
            None => {
                let contact = Contact {
                    identity: identity.clone(),
                    verified: false,
                    pinned_ms: now_ms(),
                };
                contacts.insert(identity.handle().to_string(), contact.clone());
                self.write(&contacts)?;
                Ok(contact)
            }
        }
    }

    /// The user confirmed, after a [`Error::KeyChanged`] on an **unverified** contact, that the
    /// new key is right: pins it (unverified). A verified contact's key is only replaced by
    /// [`Contacts::mark_verified`] with `accept_changed_key`.
    pub fn replace(&self, identity: &Identity) -> Result<Contact> {
        let _guard = self.guard();
        let mut contacts = self.read()?;
        if let Some(contact) = contacts.get(identity.handle().as_str())
            && contact.verified
            && contact.identity.encoded() != identity.encoded()
        {
            return Err(changed(identity, true));
        }
        let contact = Contact {
            identity: identity.clone(),
            verified: false,
            pinned_ms: now_ms(),
        };
        contacts.insert(identity.handle().to_string(), contact.clone());
        self.write(&contacts)?;
        Ok(contact)
    }

    /// Marks `identity` verified: the user compared the safety number with its owner. If another
    /// key is pinned for the handle this is [`Error::KeyChanged`], unless `accept_changed_key`
    /// (the user compared the safety number of the **new** key).
    pub fn mark_verified(&self, identity: &Identity, accept_changed_key: bool) -> Result<Contact> {
        let _guard = self.guard();
        let mut contacts = self.read()?;
        let pinned_ms = match contacts.get(identity.handle().as_str()) {
            Some(contact) if contact.identity.encoded() == identity.encoded() => contact.pinned_ms,
            Some(contact) if !accept_changed_key => {
                return Err(changed(identity, contact.verified));
            }
            Some(_) | None => now_ms(),
        };
        let contact = Contact {
            identity: identity.clone(),
            verified: true,
            pinned_ms,
        };
        contacts.insert(identity.handle().to_string(), contact.clone());
        self.write(&contacts)?;
        Ok(contact)
    }
}

fn status_in(contacts: &BTreeMap<String, Contact>, identity: &Identity) -> KeyStatus {
    match contacts.get(identity.handle().as_str()) {
        None => KeyStatus::New,
        Some(contact) if contact.identity.encoded() != identity.encoded() => KeyStatus::Changed {
            verified: contact.verified,
        },
        Some(contact) if contact.verified => KeyStatus::Verified,
        Some(_) => KeyStatus::Pinned,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coffre_crypto::identity::IdentitySecret;

    fn identity(handle: &str) -> Identity {
        IdentitySecret::generate()
            .unwrap()
            .certify(&Handle::parse(handle).unwrap(), 1_700_000_000_000)
            .unwrap()
    }

    #[test]
    fn first_use_pins_then_a_changed_key_is_refused_until_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let contacts = Contacts::open(dir.path().join("contacts.json"));
        let carol = identity("carol");
        assert_eq!(contacts.status(&carol).unwrap(), KeyStatus::New);
        contacts.check_and_pin(&carol).unwrap();
        assert_eq!(contacts.status(&carol).unwrap(), KeyStatus::Pinned);
        // Same key again: fine. Reopened from disk: still pinned.
        contacts.check_and_pin(&carol).unwrap();
        let contacts = Contacts::open(dir.path().join("contacts.json"));
        assert_eq!(contacts.list().unwrap().len(), 1);

        let impostor = identity("carol");
        let error = contacts.check_and_pin(&impostor).unwrap_err();
        assert!(
            matches!(
                error,
                Error::KeyChanged {
                    verified: false,
                    ..
                }
            ),
            "{error}"
        );
        assert_eq!(
            contacts.status(&impostor).unwrap(),
            KeyStatus::Changed { verified: false }
        );
        // The pin did not move.
        assert_eq!(
            contacts
                .get(carol.handle())
                .unwrap()
                .unwrap()
                .identity
                .encoded(),
            carol.encoded()
        );
        // Confirmed by the user: the new key is pinned.
        contacts.replace(&impostor).unwrap();
        contacts.check_and_pin(&impostor).unwrap();
        assert!(contacts.check_and_pin(&carol).is_err());
    }

    #[test]
    fn a_verified_contact_whose_key_changes_is_a_hard_error() {
        let dir = tempfile::tempdir().unwrap();
        let contacts = Contacts::open(dir.path().join("contacts.json"));
        let bob = identity("bob");
        contacts.mark_verified(&bob, false).unwrap();
        assert_eq!(contacts.status(&bob).unwrap(), KeyStatus::Verified);
        let impostor = identity("bob");
        for error in [
            contacts.check_and_pin(&impostor).unwrap_err(),
            contacts.replace(&impostor).unwrap_err(),
            contacts.mark_verified(&impostor, false).unwrap_err(),
        ] {
            assert!(
                matches!(error, Error::KeyChanged { verified: true, .. }),
                "{error}"
            );
        }
        // Only an explicit verification of the new key replaces it.
        contacts.mark_verified(&impostor, true).unwrap();
        assert_eq!(contacts.status(&impostor).unwrap(), KeyStatus::Verified);
    }

    #[test]
    fn an_edited_contacts_file_is_an_error_not_another_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contacts.json");
        let contacts = Contacts::open(&path);
        let alice = identity("alice");
        contacts.check_and_pin(&alice).unwrap();
        // Move alice's identity under another handle.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("\"alice\"", "\"mallory\"")).unwrap();
        assert!(matches!(contacts.list(), Err(Error::Config(_))));
        // Flip one hex digit of the identity.
        let text = text.replacen("\"identity\": \"", "\"identity\": \"0", 1);
        std::fs::write(&path, text).unwrap();
        assert!(matches!(contacts.list(), Err(Error::Config(_))));
    }
}
