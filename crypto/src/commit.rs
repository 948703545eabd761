//! Signed commits `CFCM` and the history chain of a space (FORMAT.md section 10).
//!
//! A commit names the encrypted root of one snapshot. It is signed by the author's certified
//! device and carries the certificate, so it verifies on its own **[T-ghost]**; it names the
//! membership entry that applies at its seq, so a writer removed from the space cannot commit by
//! pretending not to have seen the removal **[T-revocation]**; commits are hash-chained and a
//! client pins the highest head it has verified, so a gateway that serves an older head or a
//! different branch is caught **[T-rollback]**. The root reference and the commit time are sealed
//! under a key derived from the epoch key, with the public header as AAD **[T-metadata]**, so a
//! sealed root cannot be moved to another commit.
//!
//! Checked here:
//!
//! - [`Commit::decode`]: canonical structure, device certificate, device signature (rule 1);
//! - [`verify_next`] and [`CommitChain::accept`]: hash links and seqs (rule 2), and the
//!   membership rule 3 against a verified [`MembershipLog`];
//! - [`PinnedHead::check_extension`]: freshness against what the client saw before;
//! - [`Commit::open_root`]: rule 4, opening the root with the epoch key (members only).
//!
//! Not checked here: whether the author's device has been revoked in its device chain (the SDK
//! checks that against the pinned chain).

use core::fmt;

use zeroize::Zeroizing;

use crate::caead::{SEALED_BOX_OVERHEAD, sealed_box_open, sealed_box_seal};
use crate::codec::{Reader, Writer};
use crate::device::{DEVICE_ENTRY_LEN, DeviceCertificate, DeviceSigner};
use crate::envelope::BlobRef;
use crate::error::{Error, Result};
use crate::kdf::{CTX_COMMIT_ROOT, SIG_COMMIT, derive_epoch, hash};
use crate::keys::{BlobId, BlobKey, CommitHash, EntryHash, EpochKey, SpaceId};
use crate::membership::{MembershipLog, epoch::key_matches};

/// Magic of a signed commit. **Format-fixed.**
pub const MAGIC_COMMIT: &[u8; 4] = b"CFCM";
/// Longest commit message in bytes (FORMAT.md section 11). **Format-fixed.**
pub const MAX_COMMIT_MESSAGE: usize = 4096;
/// Shortest sealed-root plaintext: ids, key, time and an empty message.
const MIN_ROOT_PLAINTEXT: usize = 32 + 32 + 8 + 2;
/// Longest sealed root: the longest plaintext and the sealed-box overhead.
pub const MAX_SEALED_ROOT_LEN: usize =
    SEALED_BOX_OVERHEAD + MIN_ROOT_PLAINTEXT + MAX_COMMIT_MESSAGE;

const WHAT: &str = "commit";
const CHAIN: &str = "commit chain";

fn broken(reason: &'static str) -> Error {
    Error::integrity(CHAIN, reason)
}

/// The sealed part of a commit: root reference, time and message, hidden from the gateway.
pub struct CommitRoot {
    /// The snapshot's root directory node.
    pub root: BlobRef,
    /// Commit time, milliseconds since the Unix epoch, as the author's device claimed it.
    pub time_ms: i64,
    /// Commit message, at most [`MAX_COMMIT_MESSAGE`] bytes.
    pub message: String,
}

impl fmt::Debug for CommitRoot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CommitRoot")
            .field("root", &self.root)
            .field("time_ms", &self.time_ms)
            .field("message", &"<redacted>")
            .finish()
    }
}

impl CommitRoot {
    fn encode(&self) -> Result<Zeroizing<Vec<u8>>> {
        let mut writer = Writer::default();
        writer.raw(self.root.id.as_bytes());
        writer.raw(self.root.key.expose_secret());
        writer.i64(self.time_ms);
        writer.str16(&self.message, MAX_COMMIT_MESSAGE)?;
        Ok(Zeroizing::new(writer.into_vec()))
    }

    /// Parses an authenticated plaintext. Errors are [`Error::Malformed`]: only a key holder can
    /// produce an authenticated plaintext, so this is no oracle.
    fn decode(plaintext: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(plaintext, "commit root");
        let id = BlobId::from_bytes(reader.b32()?);
        let key = BlobKey::from_bytes(reader.b32()?);
        let time_ms = reader.i64()?;
        let message = reader.str16(MAX_COMMIT_MESSAGE)?.to_owned();
        reader.finish()?;
        Ok(CommitRoot {
            root: BlobRef { id, key },
            time_ms,
            message,
        })
    }
}

/// A transparency-log head: size and Merkle root (zero size and zero root if none was seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogHead {
    /// Number of leaves.
    pub size: u64,
    /// Merkle tree hash.
    pub root: [u8; 32],
}

impl LogHead {
    /// No log head seen yet.
    pub const NONE: LogHead = LogHead {
        size: 0,
        root: [0; 32],
    };
}

/// The public fields of a commit, before signing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommitHeader {
    /// The space.
    pub space_id: SpaceId,
    /// Position in the history, from 1.
    pub seq: u64,
    /// `H(commit seq − 1)`; zero for seq 1.
    pub parent: CommitHash,
    /// The epoch whose key seals the root (≥ 1).
    pub epoch: u64,
    /// `H(membership entry that applies at seq)`.
    pub membership_hash: EntryHash,
    /// The transparency-log head the author had seen.
    pub log_head: LogHead,
}

/// A decoded commit whose device certificate and signature have verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commit {
    header: CommitHeader,
    author_device: DeviceCertificate,
    sealed_root: Vec<u8>,
    /// Length of the prefix of `encoded` that the sealed root authenticates (its AAD).
    aad_len: usize,
    encoded: Vec<u8>,
    hash: CommitHash,
}

impl Commit {
    /// Seals `root` under `epoch_key` and signs the commit with the author's device.
    ///
    /// This is a plain encoder: it does not check the header against any log, and the caller must
    /// pass the key of `header.epoch`. [`Commit::next`] fills and checks the header from a
    /// verified log.
    pub fn sign(
        header: &CommitHeader,
        epoch_key: &EpochKey,
        root: &CommitRoot,
        signer: &DeviceSigner,
    ) -> Result<Commit> {
        let mut writer = Writer::with_header(MAGIC_COMMIT);
        writer.raw(header.space_id.as_bytes());
        writer.u64(header.seq);
        writer.raw(header.parent.as_bytes());
        writer.u64(header.epoch);
        writer.raw(header.membership_hash.as_bytes());
        writer.u64(header.log_head.size);
        writer.raw(&header.log_head.root);
        writer.bytes32(signer.certificate().encoded(), DEVICE_ENTRY_LEN)?;
        let key = derive_epoch(CTX_COMMIT_ROOT, &header.space_id, header.epoch, epoch_key);
        let sealed = sealed_box_seal(&key, writer.as_slice(), &root.encode()?)?;
        writer.bytes32(&sealed, MAX_SEALED_ROOT_LEN)?;
        let signature = signer.sign(SIG_COMMIT, writer.as_slice());
        writer.raw(&signature);
        Commit::decode(&writer.into_vec())
    }

    /// Builds the next commit of a space from its verified membership log: seq and parent from
    /// `parent` (`None` for the first commit), epoch and membership hash from the state that
    /// applies at the new seq. Refuses (before signing) a key that is not that epoch's, and an
    /// author who may not write.
    pub fn next(
        log: &MembershipLog,
        parent: Option<&Commit>,
        epoch_key: &EpochKey,
        log_head: LogHead,
        root: &CommitRoot,
        signer: &DeviceSigner,
    ) -> Result<Commit> {
        let (seq, parent_hash) = match parent {
            None => (1, CommitHash::from_bytes([0; 32])),
            Some(parent) => (
                parent
                    .seq()
                    .checked_add(1)
                    .ok_or(Error::InvalidInput("commit seq exhausted"))?,
                parent.hash(),
            ),
        };
        let state = log
            .state_at_commit_seq(seq)
            .ok_or(broken("no membership state applies"))?;
        if !key_matches(
            log.space_id(),
            state.epoch(),
            epoch_key,
            state.epoch_commitment(),
        ) {
            return Err(Error::InvalidInput(
                "the epoch key is not the key of the current epoch",
            ));
        }
        let header = CommitHeader {
            space_id: *log.space_id(),
            seq,
            parent: parent_hash,
            epoch: state.epoch(),
            membership_hash: state.head(),
            log_head,
        };
        let commit = Commit::sign(&header, epoch_key, root, signer)?;
        verify_next(parent, &commit, log)?;
        Ok(commit)
    }

    /// Decodes a commit from untrusted bytes and verifies its device certificate and signature
    /// (rule 1). Structural problems are [`Error::Malformed`], a bad signature
    /// [`Error::Authentication`].
    pub fn decode(bytes: &[u8]) -> Result<Commit> {
        let mut reader = Reader::with_header(bytes, MAGIC_COMMIT, WHAT)?;
        let space_id = SpaceId::from_bytes(reader.b32()?);
        let seq = reader.u64()?;
        let parent = CommitHash::from_bytes(reader.b32()?);
        let epoch = reader.u64()?;
        let membership_hash = EntryHash::from_bytes(reader.b32()?);
        let log_head = LogHead {
            size: reader.u64()?,
            root: reader.b32()?,
        };
        let author_device = DeviceCertificate::decode(reader.bytes32(DEVICE_ENTRY_LEN)?)?;
        let aad_len = reader.consumed().len();
        let sealed_root = reader.bytes32(MAX_SEALED_ROOT_LEN)?.to_vec();
        let signed = reader.consumed();
        let signature = reader.array::<64>()?;
        reader.finish()?;
        let malformed = |reason| Error::malformed(WHAT, reason);
        if seq == 0 {
            return Err(malformed("seq starts at 1"));
        }
        if (seq == 1) != (parent.as_bytes() == &[0; 32]) {
            return Err(malformed("parent_hash is zero iff seq is 1"));
        }
        if epoch == 0 {
            return Err(malformed("a commit's epoch is at least 1"));
        }
        if log_head.size == 0 && log_head.root != [0; 32] {
            return Err(malformed("an empty log head has a zero root"));
        }
        if sealed_root.len() < SEALED_BOX_OVERHEAD + MIN_ROOT_PLAINTEXT {
            return Err(malformed("sealed root too short"));
        }
        author_device
            .device_key()
            .verify(SIG_COMMIT, signed, &signature)?;
        Ok(Commit {
            header: CommitHeader {
                space_id,
                seq,
                parent,
                epoch,
                membership_hash,
                log_head,
            },
            author_device,
            sealed_root,
            aad_len,
            encoded: bytes.to_vec(),
            hash: CommitHash::from_bytes(hash(bytes)),
        })
    }

    /// Opens the sealed root with the key of the commit's epoch (rule 4). A wrong key, or a sealed
    /// root moved from another commit, is [`Error::Authentication`].
    pub fn open_root(&self, epoch_key: &EpochKey) -> Result<CommitRoot> {
        let key = derive_epoch(
            CTX_COMMIT_ROOT,
            &self.header.space_id,
            self.header.epoch,
            epoch_key,
        );
        // Invariant: `aad_len` was measured on `encoded` while decoding it.
        let aad = self
            .encoded
            .get(..self.aad_len)
            .ok_or(Error::Authentication)?;
        let plaintext = Zeroizing::new(sealed_box_open(&key, aad, &self.sealed_root)?);
        CommitRoot::decode(&plaintext)
    }

    /// The canonical encoding, signature included.
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// `H(commit)`.
    pub fn hash(&self) -> CommitHash {
        self.hash
    }

    /// The public fields.
    pub fn header(&self) -> &CommitHeader {
        &self.header
    }

    /// The space.
    pub fn space_id(&self) -> &SpaceId {
        &self.header.space_id
    }

    /// Position in the history, from 1.
    pub fn seq(&self) -> u64 {
        self.header.seq
    }

    /// `H(commit seq − 1)`, zero for seq 1.
    pub fn parent(&self) -> &CommitHash {
        &self.header.parent
    }

    /// The epoch whose key seals the root.
    pub fn epoch(&self) -> u64 {
        self.header.epoch
    }

    /// The membership entry the author claims applies.
    pub fn membership_hash(&self) -> &EntryHash {
        &self.header.membership_hash
    }

    /// The transparency-log head the author had seen.
    pub fn log_head(&self) -> &LogHead {
        &self.header.log_head
    }

    /// The author's device certificate; its identity key is the author.
    pub fn author_device(&self) -> &DeviceCertificate {
        &self.author_device
    }

    /// The sealed root, as stored.
    pub fn sealed_root(&self) -> &[u8] {
        &self.sealed_root
    }
}

/// Checks that `next` may follow `prev` (`None`: `next` is the first commit) in a space whose
/// verified membership log is `log`: FORMAT.md section 10 rules 2 and 3 (rule 1 was checked by
/// [`Commit::decode`]). Every violation is [`Error::Integrity`].
pub fn verify_next(prev: Option<&Commit>, next: &Commit, log: &MembershipLog) -> Result<()> {
    match prev {
        None if next.seq() != 1 => return Err(broken("the first commit must have seq 1")),
        None => {}
        Some(prev) => {
            if prev.space_id() != next.space_id() {
                return Err(broken("commit belongs to another space"));
            }
            if Some(next.seq()) != prev.seq().checked_add(1) {
                return Err(broken("commit seq does not follow its parent"));
            }
            if *next.parent() != prev.hash() {
                return Err(broken("parent_hash is not the hash of the previous commit"));
            }
        }
    }
    check_membership(next, log)
}

/// Rule 3: the author may write in the membership state that applies at the commit's seq, and
/// the commit names that state's entry and epoch.
fn check_membership(commit: &Commit, log: &MembershipLog) -> Result<()> {
    if commit.space_id() != log.space_id() {
        return Err(broken("commit belongs to another space"));
    }
    let state = log
        .state_at_commit_seq(commit.seq())
        .ok_or(broken("no membership state applies at this seq"))?;
    if *commit.membership_hash() != state.head() {
        return Err(broken(
            "membership_hash does not name the entry that applies at this seq",
        ));
    }
    if commit.epoch() != state.epoch() {
        return Err(broken("epoch differs from the membership state's"));
    }
    let role = state
        .role_of(commit.author_device().identity_key())
        .ok_or(broken("the author is not a member"))?;
    if !role.can_write() {
        return Err(broken("the author may not write"));
    }
    Ok(())
}

/// The highest commit a client has verified for a space: what it pins **[T-rollback]**.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PinnedHead {
    /// The commit's seq (0: nothing seen yet).
    pub seq: u64,
    /// The commit's hash (zero: nothing seen yet).
    pub hash: CommitHash,
}

impl PinnedHead {
    /// Nothing seen yet: the next commit must be seq 1 with a zero parent.
    pub const NONE: PinnedHead = PinnedHead {
        seq: 0,
        hash: CommitHash::from_bytes([0; 32]),
    };

    /// The pin for `commit`.
    pub fn of(commit: &Commit) -> Self {
        PinnedHead {
            seq: commit.seq(),
            hash: commit.hash(),
        }
    }

    /// Checks that `commits` (consecutive, ending at the gateway's head) extend this pin, and
    /// returns the new pin. They may start at or before the pin, as long as they contain it.
    ///
    /// Errors ([`Error::Integrity`]): a head below the pin ("rollback"), a different commit at the
    /// pinned seq or a first commit not linking to the pin ("fork"), commits that skip over the pin
    /// ("gap"), commits that do not link to each other.
    pub fn check_extension(&self, commits: &[Commit]) -> Result<PinnedHead> {
        let (Some(first), Some(last)) = (commits.first(), commits.last()) else {
            return Ok(*self);
        };
        for pair in commits.windows(2) {
            if let [a, b] = pair
                && (a.space_id() != b.space_id()
                    || Some(b.seq()) != a.seq().checked_add(1)
                    || *b.parent() != a.hash())
            {
                return Err(broken("the commits do not form a hash chain"));
            }
        }
        if last.seq() < self.seq {
            return Err(broken("rollback: the head is older than the pinned one"));
        }
        if let Some(at_pin) = commits.iter().find(|commit| commit.seq() == self.seq) {
            if at_pin.hash() != self.hash {
                return Err(broken("fork: another commit at the pinned seq"));
            }
        } else if Some(first.seq()) != self.seq.checked_add(1) {
            return Err(broken("gap: the commits do not reach the pinned head"));
        } else if *first.parent() != self.hash {
            return Err(broken(
                "fork: the next commit does not follow the pinned head",
            ));
        }
        Ok(PinnedHead::of(last))
    }
}

/// A space's verified history as far as this client has seen it: the pinned head, advanced
/// only by commits that extend it and pass rules 1 to 3.
#[derive(Clone, Debug)]
pub struct CommitChain {
    space_id: SpaceId,
    head: PinnedHead,
}

impl CommitChain {
    /// A chain for a space whose history this client has not seen yet.
    pub fn new(space_id: SpaceId) -> Self {
        CommitChain {
            space_id,
            head: PinnedHead::NONE,
        }
    }

    /// A chain resumed from a pinned head.
    pub fn pinned(space_id: SpaceId, head: PinnedHead) -> Self {
        CommitChain { space_id, head }
    }

    /// The space.
    pub fn space_id(&self) -> &SpaceId {
        &self.space_id
    }

    /// The highest verified commit.
    pub fn head(&self) -> PinnedHead {
        self.head
    }

    /// Accepts commits from the gateway (consecutive, ending at its head): they must extend the
    /// pin (freshness), and every commit above it must pass rules 1 to 3 against `log`. All or
    /// nothing.
    pub fn accept(&mut self, commits: &[Commit], log: &MembershipLog) -> Result<()> {
        if log.space_id() != &self.space_id {
            return Err(broken("the membership log belongs to another space"));
        }
        let new_head = self.head.check_extension(commits)?;
        for commit in commits.iter().filter(|commit| commit.seq() > self.head.seq) {
            // Links were checked by `check_extension`; rule 3 remains.
            check_membership(commit, log)?;
        }
        self.head = new_head;
        Ok(())
    }
}
