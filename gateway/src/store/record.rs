//! The byte encoding of the records (and keys) the sled backend persists.
//!
//! Every value starts with a one-byte **record version** (currently [`VERSION`] = 1) so that a
//! later layout can be told apart and migrated; a value with an unknown version, a truncated
//! value or one with bytes left over is [`Error::Corrupt`], never a panic. Fields follow in
//! declaration order:
//!
//! - `u64`: 8 bytes big-endian; `u8`: one byte; `[u8; 32]`: 32 raw bytes;
//! - byte strings and UTF-8 strings: `u32` big-endian length, then the bytes;
//! - lists: `u32` big-endian count, then the items.
//!
//! | record            | fields after the version byte                                          |
//! |-------------------|------------------------------------------------------------------------|
//! | `AccountRecord`   | handle, identity, device_chain (list of bytes), key_bundles (list), quota_bytes, used_bytes, created_ms |
//! | `ChallengeRecord` | handle, device_key (32), expires_ms                                     |
//! | `TokenRecord`     | handle, device_key (32), expires_ms                                     |
//! | space summary     | membership_len, head_seq, members (list of: handle, role `u8`)          |
//! | `BlobMeta`        | size, created_ms, uploader                                              |
//! | `InboxRecord`     | id, from, invitation, received_ms                                       |
//! | inbox counters    | next_id, pending                                                        |
//!
//! The space id of a space summary is its key and is not repeated in the value.

use coffre_crypto::keys::{BlobId, SpaceId};

use crate::error::{Error, Result};
use crate::store::{
    AccountRecord, BlobMeta, ChallengeRecord, InboxRecord, MemberRecord, TokenRecord,
};

/// The record version written by this code.
pub const VERSION: u8 = 1;

/// Appends fields to a record being encoded.
#[derive(Debug)]
pub struct Writer(Vec<u8>);

impl Writer {
    /// A record with the version byte written.
    pub fn new() -> Self {
        Writer(vec![VERSION])
    }
    /// Appends a `u64`.
    pub fn u64(mut self, value: u64) -> Self {
        self.0.extend_from_slice(&value.to_be_bytes());
        self
    }
    /// Appends a `u8`.
    pub fn u8(mut self, value: u8) -> Self {
        self.0.push(value);
        self
    }
    /// Appends 32 raw bytes.
    pub fn b32(mut self, value: &[u8; 32]) -> Self {
        self.0.extend_from_slice(value);
        self
    }
    /// Appends a length-prefixed byte string.
    pub fn bytes(mut self, value: &[u8]) -> Self {
        // Records are bounded by the request limits (a few MiB), far below u32::MAX; saturating
        // keeps the encoder total, and a (never produced) oversize value would fail to decode.
        let len = u32::try_from(value.len()).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&len.to_be_bytes());
        self.0.extend_from_slice(value);
        self
    }
    /// Appends a list count.
    pub fn count(mut self, count: usize) -> Self {
        // Same bound as `bytes`: lists in records are small.
        let count = u32::try_from(count).unwrap_or(u32::MAX);
        self.0.extend_from_slice(&count.to_be_bytes());
        self
    }
    /// The encoded record.
    pub fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads fields from a stored record; every failure is [`Error::Corrupt`] naming the record kind.
#[derive(Debug)]
pub struct Reader<'a> {
    rest: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// Checks the version byte of a `what` record.
    pub fn new(bytes: &'a [u8], what: &'static str) -> Result<Self> {
        match bytes.split_first() {
            Some((&VERSION, rest)) => Ok(Reader { rest, what }),
            Some((version, _)) => Err(Error::Corrupt(format!(
                "{what} record has unknown version {version}"
            ))),
            None => Err(Error::Corrupt(format!("{what} record is empty"))),
        }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.rest.len() < n {
            return Err(Error::Corrupt(format!("{} record is truncated", self.what)));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }
    /// Reads a `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(out))
    }
    /// Reads a `u8`.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    /// Reads 32 raw bytes.
    pub fn b32(&mut self) -> Result<[u8; 32]> {
        let mut out = [0u8; 32];
        out.copy_from_slice(self.take(32)?);
        Ok(out)
    }
    fn len(&mut self) -> Result<usize> {
        let mut out = [0u8; 4];
        out.copy_from_slice(self.take(4)?);
        usize::try_from(u32::from_be_bytes(out))
            .map_err(|_| Error::Corrupt(format!("{} record length overflows", self.what)))
    }
    /// Reads a length-prefixed byte string.
    pub fn bytes(&mut self) -> Result<Vec<u8>> {
        let len = self.len()?;
        Ok(self.take(len)?.to_vec())
    }
    /// Reads a length-prefixed UTF-8 string.
    pub fn string(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?)
            .map_err(|_| Error::Corrupt(format!("{} record holds invalid UTF-8", self.what)))
    }
    /// Reads a list count, bounded by the bytes left (each item takes at least one byte), so a
    /// corrupt count cannot make the decoder allocate without limit.
    pub fn count(&mut self) -> Result<usize> {
        let count = self.len()?;
        if count > self.rest.len() {
            return Err(Error::Corrupt(format!(
                "{} record list is truncated",
                self.what
            )));
        }
        Ok(count)
    }
    /// Whether every byte has been read (for fields added at the end of a record later).
    pub fn is_at_end(&self) -> bool {
        self.rest.is_empty()
    }
    /// Checks that nothing is left over.
    pub fn end(self) -> Result<()> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(Error::Corrupt(format!(
                "{} record has trailing bytes",
                self.what
            )))
        }
    }
}

impl Default for Writer {
    fn default() -> Self {
        Writer::new()
    }
}

fn write_list(mut writer: Writer, items: &[Vec<u8>]) -> Writer {
    writer = writer.count(items.len());
    for item in items {
        writer = writer.bytes(item);
    }
    writer
}

fn read_list(reader: &mut Reader<'_>) -> Result<Vec<Vec<u8>>> {
    let count = reader.count()?;
    (0..count).map(|_| reader.bytes()).collect()
}

/// Encodes an account.
pub fn encode_account(account: &AccountRecord) -> Vec<u8> {
    let writer = Writer::new()
        .bytes(account.handle.as_bytes())
        .bytes(&account.identity);
    let writer = write_list(writer, &account.device_chain);
    write_list(writer, &account.key_bundles)
        .u64(account.quota_bytes)
        .u64(account.used_bytes)
        .u64(account.created_ms)
        .bytes(&account.opaque_record)
        .finish()
}

/// Decodes an account.
pub fn decode_account(bytes: &[u8]) -> Result<AccountRecord> {
    let mut r = Reader::new(bytes, "account")?;
    let account = AccountRecord {
        handle: r.string()?,
        identity: r.bytes()?,
        device_chain: read_list(&mut r)?,
        key_bundles: read_list(&mut r)?,
        quota_bytes: r.u64()?,
        used_bytes: r.u64()?,
        created_ms: r.u64()?,
        // Added after the first release: records written before it end here.
        opaque_record: if r.is_at_end() {
            Vec::new()
        } else {
            r.bytes()?
        },
    };
    r.end()?;
    Ok(account)
}

/// Encodes a challenge or token (they share a layout).
pub fn encode_session(handle: &str, device_key: &[u8; 32], expires_ms: u64) -> Vec<u8> {
    Writer::new()
        .bytes(handle.as_bytes())
        .b32(device_key)
        .u64(expires_ms)
        .finish()
}

fn decode_session(bytes: &[u8], what: &'static str) -> Result<(String, [u8; 32], u64)> {
    let mut r = Reader::new(bytes, what)?;
    let out = (r.string()?, r.b32()?, r.u64()?);
    r.end()?;
    Ok(out)
}

/// Decodes a challenge.
pub fn decode_challenge(bytes: &[u8]) -> Result<ChallengeRecord> {
    let (handle, device_key, expires_ms) = decode_session(bytes, "challenge")?;
    Ok(ChallengeRecord {
        handle,
        device_key,
        expires_ms,
    })
}

/// Decodes a token.
pub fn decode_token(bytes: &[u8]) -> Result<TokenRecord> {
    let (handle, device_key, expires_ms) = decode_session(bytes, "token")?;
    Ok(TokenRecord {
        handle,
        device_key,
        expires_ms,
    })
}

/// A space summary as stored (its id is the key).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpaceSummary {
    /// Membership entries stored.
    pub membership_len: u64,
    /// Newest commit seq, 0 if none.
    pub head_seq: u64,
    /// Current members.
    pub members: Vec<MemberRecord>,
}

/// Encodes a space summary.
pub fn encode_space(space: &SpaceSummary) -> Vec<u8> {
    let mut writer = Writer::new()
        .u64(space.membership_len)
        .u64(space.head_seq)
        .count(space.members.len());
    for member in &space.members {
        writer = writer.bytes(member.handle.as_bytes()).u8(member.role);
    }
    writer.finish()
}

/// Decodes a space summary.
pub fn decode_space(bytes: &[u8]) -> Result<SpaceSummary> {
    let mut r = Reader::new(bytes, "space")?;
    let membership_len = r.u64()?;
    let head_seq = r.u64()?;
    let count = r.count()?;
    let members = (0..count)
        .map(|_| {
            Ok(MemberRecord {
                handle: r.string()?,
                role: r.u8()?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    r.end()?;
    Ok(SpaceSummary {
        membership_len,
        head_seq,
        members,
    })
}

/// Encodes a blob index entry.
pub fn encode_blob_meta(meta: &BlobMeta) -> Vec<u8> {
    Writer::new()
        .u64(meta.size)
        .u64(meta.created_ms)
        .bytes(meta.uploader.as_bytes())
        .finish()
}

/// Decodes a blob index entry.
pub fn decode_blob_meta(bytes: &[u8]) -> Result<BlobMeta> {
    let mut r = Reader::new(bytes, "blob index")?;
    let meta = BlobMeta {
        size: r.u64()?,
        created_ms: r.u64()?,
        uploader: r.string()?,
    };
    r.end()?;
    Ok(meta)
}

/// Encodes an inbox item.
pub fn encode_inbox(record: &InboxRecord) -> Vec<u8> {
    Writer::new()
        .u64(record.id)
        .bytes(record.from.as_bytes())
        .bytes(&record.invitation)
        .u64(record.received_ms)
        .finish()
}

/// Decodes an inbox item.
pub fn decode_inbox(bytes: &[u8]) -> Result<InboxRecord> {
    let mut r = Reader::new(bytes, "inbox")?;
    let record = InboxRecord {
        id: r.u64()?,
        from: r.string()?,
        invitation: r.bytes()?,
        received_ms: r.u64()?,
    };
    r.end()?;
    Ok(record)
}

/// Encodes an inbox's counters: the next id to hand out and the number pending.
pub fn encode_inbox_counters(next_id: u64, pending: u64) -> Vec<u8> {
    Writer::new().u64(next_id).u64(pending).finish()
}

/// Decodes an inbox's counters.
pub fn decode_inbox_counters(bytes: &[u8]) -> Result<(u64, u64)> {
    let mut r = Reader::new(bytes, "inbox counters")?;
    let out = (r.u64()?, r.u64()?);
    r.end()?;
    Ok(out)
}

// ---- keys (the layout of each tree is in `super::sled_meta`) ----

/// `space id ‖ seq` (big-endian), the key of a log entry.
pub fn seq_key(space: &SpaceId, seq: u64) -> [u8; 40] {
    let mut key = [0u8; 40];
    key[..32].copy_from_slice(space.as_bytes());
    key[32..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `space id ‖ blob id`, the key of a blob index entry.
pub fn blob_key(space: &SpaceId, blob: &BlobId) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(space.as_bytes());
    key[32..].copy_from_slice(blob.as_bytes());
    key
}

/// `u32` big-endian length ‖ handle: the prefix of a handle's keys in composite keys.
pub fn handle_prefix(handle: &str) -> Result<Vec<u8>> {
    let len =
        u32::try_from(handle.len()).map_err(|_| Error::BadRequest("handle too long".into()))?;
    let mut key = Vec::with_capacity(4 + handle.len() + 32);
    key.extend_from_slice(&len.to_be_bytes());
    key.extend_from_slice(handle.as_bytes());
    Ok(key)
}

/// [`handle_prefix`] ‖ `suffix`.
pub fn handle_key(handle: &str, suffix: &[u8]) -> Result<Vec<u8>> {
    let mut key = handle_prefix(handle)?;
    key.extend_from_slice(suffix);
    Ok(key)
}

/// A 32-byte id from a key part; [`Error::Corrupt`] if the length is wrong.
pub fn id32(bytes: &[u8], what: &str) -> Result<[u8; 32]> {
    bytes
        .try_into()
        .map_err(|_| Error::Corrupt(format!("{what} key has the wrong length")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_round_trips_and_bad_bytes_are_corrupt() {
        let account = AccountRecord {
            handle: "alice".into(),
            identity: vec![1, 2, 3],
            device_chain: vec![vec![4], vec![5, 6]],
            key_bundles: vec![vec![7; 40]],
            quota_bytes: 1000,
            used_bytes: 10,
            created_ms: 42,
            opaque_record: vec![9; 20],
        };
        let bytes = encode_account(&account);
        assert_eq!(decode_account(&bytes).ok(), Some(account.clone()));
        // A record written before OPAQUE ends right before its field: no passphrase login.
        let before_opaque = bytes.len() - 4 - 20;
        for cut in 0..bytes.len() {
            let decoded = decode_account(&bytes[..cut]);
            if cut == before_opaque {
                let old = decoded.unwrap();
                assert!(old.opaque_record.is_empty());
                assert_eq!(old.handle, account.handle);
            } else {
                assert!(matches!(decoded, Err(Error::Corrupt(_))), "cut {cut}");
            }
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(matches!(decode_account(&longer), Err(Error::Corrupt(_))));
        let mut wrong_version = bytes;
        wrong_version[0] = 2;
        assert!(matches!(
            decode_account(&wrong_version),
            Err(Error::Corrupt(_))
        ));
        // A huge list count does not allocate: it is bounded by the bytes left.
        let huge = [VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
        assert!(matches!(decode_account(&huge), Err(Error::Corrupt(_))));
    }

    #[test]
    fn other_records_round_trip() {
        let space = SpaceSummary {
            membership_len: 3,
            head_seq: 9,
            members: vec![MemberRecord {
                handle: "bob".into(),
                role: 2,
            }],
        };
        assert_eq!(decode_space(&encode_space(&space)).ok(), Some(space));
        let meta = BlobMeta {
            size: 5,
            created_ms: 6,
            uploader: "carol".into(),
        };
        assert_eq!(decode_blob_meta(&encode_blob_meta(&meta)).ok(), Some(meta));
        let item = InboxRecord {
            id: 1,
            from: "dave".into(),
            invitation: vec![9; 10],
            received_ms: 77,
        };
        assert_eq!(decode_inbox(&encode_inbox(&item)).ok(), Some(item));
        assert_eq!(
            decode_inbox_counters(&encode_inbox_counters(4, 2)).ok(),
            Some((4, 2))
        );
        let token = decode_token(&encode_session("eve", &[3; 32], 8)).ok();
        assert_eq!(
            token.map(|t| (t.handle, t.expires_ms)),
            Some(("eve".into(), 8))
        );
    }
}
