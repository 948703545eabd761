//! Request and response bodies of every JSON endpoint in `docs/API.md`.
//!
//! Binary structures (identities, device entries, membership entries, commits, invitations, key
//! bundles) travel as standard base64 ([`Bytes64`]); 32-byte ids as lower-case hex ([`Id32`]). The
//! gateway treats these bytes as opaque except where it verifies signatures and hashes.

use core::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Binary data carried in JSON as standard (padded) base64.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bytes64(pub Vec<u8>);

impl fmt::Debug for Bytes64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bytes64({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Bytes64 {
    fn from(bytes: Vec<u8>) -> Self {
        Bytes64(bytes)
    }
}

impl Serialize for Bytes64 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Bytes64 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text)
            .map(Bytes64)
            .map_err(serde::de::Error::custom)
    }
}

/// A 32-byte id (blob id, space id, device key, hash) as 64 lower-case hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Id32(pub [u8; 32]);

impl Id32 {
    /// Parses 64 hex characters (either case).
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.as_bytes();
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (byte, pair) in out.iter_mut().zip(text.chunks_exact(2)) {
            let high = (pair[0] as char).to_digit(16)?;
            let low = (pair[1] as char).to_digit(16)?;
            *byte = (high << 4 | low) as u8;
        }
        Some(Id32(out))
    }
}

impl fmt::Display for Id32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for Id32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id32({self})")
    }
}

impl Serialize for Id32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Id32::parse(&text).ok_or_else(|| serde::de::Error::custom("expected 64 hex characters"))
    }
}

/// `POST /v1/accounts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// The encoded, self-signed identity (`CFID`); its handle is the account's handle.
    pub identity: Bytes64,
    /// The first device-chain entry (`CFDV`, seq 0, add), signed by the identity key.
    pub device_entry: Bytes64,
    /// Sealed key bundles (`CFKB`) the gateway stores for the user and never opens.
    #[serde(default)]
    pub key_bundles: Vec<Bytes64>,
    /// The OPAQUE registration upload (after `POST /v1/accounts/opaque`); without it the account
    /// cannot log in with its passphrase on a new device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opaque_upload: Option<Bytes64>,
}

/// `POST /v1/accounts/opaque`: the first message of OPAQUE registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpaqueRegisterRequest {
    /// The handle to be registered (the OPAQUE credential identifier).
    pub handle: String,
    /// The OPAQUE registration request.
    pub request: Bytes64,
}

/// Answer to [`OpaqueRegisterRequest`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueRegisterResponse {
    /// The OPAQUE registration response.
    pub response: Bytes64,
}

/// `POST /v1/auth/opaque/start`: passphrase login, first message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpaqueLoginStartRequest {
    /// The account's handle.
    pub handle: String,
    /// The OPAQUE credential request.
    pub request: Bytes64,
}

/// Answer to [`OpaqueLoginStartRequest`] (given for any handle).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueLoginStartResponse {
    /// Names this login attempt in the finish request (single use, short-lived).
    pub login_id: Bytes64,
    /// The OPAQUE credential response.
    pub response: Bytes64,
}

/// `POST /v1/auth/opaque/finish`: passphrase login, second message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpaqueLoginFinishRequest {
    /// From the start answer.
    pub login_id: Bytes64,
    /// The OPAQUE credential finalization.
    pub finalization: Bytes64,
}

/// Answer to a successful [`OpaqueLoginFinishRequest`]: an **enrollment** token, which only
/// allows `POST /v1/account/devices` (certify this new device), and the sealed key bundles.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpaqueLoginFinishResponse {
    /// The enrollment token (the gateway stores only its hash).
    pub token: String,
    /// Seconds before it expires.
    pub expires_in_s: u64,
    /// The account's sealed key bundles (`CFKB`).
    pub key_bundles: Vec<Bytes64>,
    /// The account's encoded identity (`CFID`; the client checks it against the unwrapped keys).
    pub identity: Bytes64,
    /// The account's device chain (`CFDV` entries in order), to append the new device to.
    pub device_chain: Vec<Bytes64>,
}

impl fmt::Debug for OpaqueLoginFinishResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpaqueLoginFinishResponse")
            .field("token", &"<redacted>")
            .field("expires_in_s", &self.expires_in_s)
            .field("key_bundles", &self.key_bundles.len())
            .finish()
    }
}

/// Answer to a successful registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterResponse {
    /// The registered handle.
    pub handle: String,
    /// The account's storage quota in bytes.
    pub quota_bytes: u64,
}

/// `POST /v1/auth/device/challenge`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChallengeRequest {
    /// The account's handle.
    pub handle: String,
    /// The device's Ed25519 public key.
    pub device_key: Id32,
}

/// A single-use login challenge.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// 32 random bytes to sign.
    pub challenge: Bytes64,
    /// Seconds before the challenge expires.
    pub expires_in_s: u64,
}

/// `POST /v1/auth/device/verify`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyRequest {
    /// The account's handle.
    pub handle: String,
    /// The device's Ed25519 public key.
    pub device_key: Id32,
    /// The challenge as received.
    pub challenge: Bytes64,
    /// Ed25519 signature by the device key over the login message (`docs/API.md`).
    pub signature: Bytes64,
}

/// A bearer token for `Authorization: Bearer <token>`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The opaque token (the gateway stores only its hash).
    pub token: String,
    /// Seconds before it expires.
    pub expires_in_s: u64,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenResponse(<redacted>, expires_in_s: {})",
            self.expires_in_s
        )
    }
}

/// `GET /v1/users/{handle}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserResponse {
    /// The handle.
    pub handle: String,
    /// The encoded identity (`CFID`).
    pub identity: Bytes64,
    /// The whole device chain (`CFDV` entries in order).
    pub device_chain: Vec<Bytes64>,
}

/// `POST /v1/account/devices`: append to the caller's own device chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendDeviceRequest {
    /// The next device-chain entry, signed by the identity key.
    pub entry: Bytes64,
}

/// `GET /v1/account/key-bundles` answer (and what a passphrase login will return later).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyBundlesResponse {
    /// The sealed key bundles stored at registration.
    pub key_bundles: Vec<Bytes64>,
}

/// `POST /v1/spaces`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateSpaceRequest {
    /// The signed genesis membership entry (`CFML`, seq 0).
    pub genesis: Bytes64,
}

/// Answer to space creation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateSpaceResponse {
    /// `H(genesis)`.
    pub space_id: Id32,
}

/// One space in `GET /v1/spaces`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpaceSummary {
    /// The space id.
    pub space_id: Id32,
    /// The caller's role: `reader`, `writer`, `admin` or `owner`.
    pub role: String,
    /// Length of the membership log.
    pub membership_len: u64,
    /// Sequence number of the newest commit (0 if none).
    pub head_seq: u64,
}

/// `GET /v1/spaces`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpacesResponse {
    /// The spaces the caller is a member of.
    pub spaces: Vec<SpaceSummary>,
}

/// `GET /v1/spaces/{id}/members?since=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipResponse {
    /// Entries with `seq >= since`, in order.
    pub entries: Vec<Bytes64>,
    /// Total length of the log.
    pub len: u64,
}

/// `POST /v1/spaces/{id}/members`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendMembershipRequest {
    /// The next signed membership entry.
    pub entry: Bytes64,
}

/// Answer to an append (membership entry or commit).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendResponse {
    /// The sequence number the entry was stored at.
    pub seq: u64,
}

/// `POST /v1/spaces/{id}/blobs/missing`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingRequest {
    /// Blob ids to look up (at most 10 000).
    pub ids: Vec<Id32>,
}

/// Which of the asked ids the gateway does not have.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MissingResponse {
    /// The absent ids, in the order asked.
    pub missing: Vec<Id32>,
}

/// Answer to `POST /v1/spaces/{id}/blobs/batch` (the request body is a blob batch, see
/// [`crate::batch`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPutResponse {
    /// Blobs of the batch stored by this request.
    pub stored: u64,
    /// Blobs of the batch that were already stored (their bodies were not written again).
    pub present: u64,
}

/// `POST /v1/spaces/{id}/blobs/fetch` (the answer body is a blob batch, see [`crate::batch`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchRequest {
    /// Blob ids to read, in the order wanted (at most
    /// [`MAX_BLOBS_PER_BATCH`](crate::batch::MAX_BLOBS_PER_BATCH), no id twice).
    pub ids: Vec<Id32>,
}

/// `GET /v1/spaces/{id}/blobs?after=ID&limit=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobListResponse {
    /// Blobs in id order.
    pub blobs: Vec<BlobListEntry>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<Id32>,
}

/// One blob in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobListEntry {
    /// The blob id.
    pub id: Id32,
    /// Its size in bytes.
    pub size: u64,
    /// When it was first stored, milliseconds since the Unix epoch.
    pub created_ms: u64,
}

/// `GET /v1/spaces/{id}/heads?since=N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsResponse {
    /// Commits with `seq > since`, in order (at most `limit`).
    pub commits: Vec<Bytes64>,
    /// The newest sequence number (0 if the space has no commit).
    pub head_seq: u64,
}

/// `PUT /v1/spaces/{id}/heads/{seq}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppendCommitRequest {
    /// The signed commit (`CFCM`) whose seq is the one in the path.
    pub commit: Bytes64,
}

/// `POST /v1/spaces/{id}/prune`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PruneRequest {
    /// Blob ids the client found unreachable from every commit it keeps.
    pub delete: Vec<Id32>,
}

/// What a prune did.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneResponse {
    /// Blobs deleted.
    pub deleted: u64,
    /// Blobs kept because they are younger than the grace period.
    pub kept_recent: u64,
    /// Ids that were not present.
    pub absent: u64,
}

/// `POST /v1/inbox`: leave a sealed invitation for a user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SendInvitationRequest {
    /// The invitee's handle.
    pub to: String,
    /// The sealed invitation (`CFIV`).
    pub invitation: Bytes64,
}

/// One item of `GET /v1/inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// Id to delete it with `DELETE /v1/inbox/{id}`.
    pub id: u64,
    /// The sender's handle (as authenticated by the gateway; the invitation carries its own
    /// signature, which is what clients trust).
    pub from: String,
    /// The sealed invitation.
    pub invitation: Bytes64,
    /// When it arrived, milliseconds since the Unix epoch.
    pub received_ms: u64,
}

/// `GET /v1/inbox`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxResponse {
    /// Pending invitations, oldest first.
    pub invitations: Vec<InboxItem>,
}

/// `GET /healthz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthResponse {
    /// `"ok"`.
    pub status: String,
    /// The gateway's version.
    pub version: String,
}
