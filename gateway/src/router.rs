//! Request routing: method and path to one [`Endpoint`], in one `match`.
//!
//! Routing is a pure function of the method and the path, so it is unit-tested and fuzzed on its
//! own. Path parameters are parsed here (parse, don't validate): a handler receives a [`SpaceId`]
//! or [`BlobId`], never a string to re-check.

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_protocol::ErrorCode;
use http::Method;

/// Every operation the gateway serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /healthz`
    Health,
    /// `GET /metrics`
    Metrics,
    /// `POST /v1/accounts`
    Register,
    /// `POST /v1/auth/device/challenge`
    LoginChallenge,
    /// `POST /v1/auth/device/verify`
    LoginVerify,
    /// `POST /v1/accounts/opaque`
    OpaqueRegister,
    /// `POST /v1/auth/opaque/start`
    OpaqueLoginStart,
    /// `POST /v1/auth/opaque/finish`
    OpaqueLoginFinish,
    /// `GET /v1/account/key-bundles`
    KeyBundles,
    /// `POST /v1/account/devices`
    AppendDevice,
    /// `GET /v1/users/{handle}`
    GetUser {
        /// The handle as given (the handler parses it).
        handle: String,
    },
    /// `GET /v1/spaces`
    ListSpaces,
    /// `POST /v1/spaces`
    CreateSpace,
    /// `GET /v1/spaces/{id}/members`
    GetMembers {
        /// The space.
        space: SpaceId,
    },
    /// `POST /v1/spaces/{id}/members`
    AppendMember {
        /// The space.
        space: SpaceId,
    },
    /// `GET /v1/spaces/{id}/blobs`
    ListBlobs {
        /// The space.
        space: SpaceId,
    },
    /// `POST /v1/spaces/{id}/blobs/missing`
    MissingBlobs {
        /// The space.
        space: SpaceId,
    },
    /// `POST /v1/spaces/{id}/blobs/batch`
    PutBlobBatch {
        /// The space.
        space: SpaceId,
    },
    /// `POST /v1/spaces/{id}/blobs/fetch`
    FetchBlobs {
        /// The space.
        space: SpaceId,
    },
    /// `PUT /v1/spaces/{id}/blobs/{blob}`
    PutBlob {
        /// The space.
        space: SpaceId,
        /// The blob id the body must hash to.
        blob: BlobId,
    },
    /// `GET /v1/spaces/{id}/blobs/{blob}`
    GetBlob {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
    },
    /// `HEAD /v1/spaces/{id}/blobs/{blob}`
    HeadBlob {
        /// The space.
        space: SpaceId,
        /// The blob.
        blob: BlobId,
    },
    /// `GET /v1/spaces/{id}/heads`
    GetHeads {
        /// The space.
        space: SpaceId,
    },
    /// `PUT /v1/spaces/{id}/heads/{seq}`
    PutHead {
        /// The space.
        space: SpaceId,
        /// The sequence number the commit claims.
        seq: u64,
    },
    /// `POST /v1/spaces/{id}/prune`
    Prune {
        /// The space.
        space: SpaceId,
    },
    /// `GET /v1/inbox`
    GetInbox,
    /// `POST /v1/inbox`
    SendInvitation,
    /// `DELETE /v1/inbox/{id}`
    DeleteInvitation {
        /// The item id.
        id: u64,
    },
}

/// Why a request matched no endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// No such path, or a path parameter that does not parse.
    NotFound,
    /// The path exists, with other methods.
    MethodNotAllowed,
}

impl RouteError {
    /// The stable error code to answer with.
    pub fn code(self) -> ErrorCode {
        match self {
            RouteError::NotFound => ErrorCode::NotFound,
            RouteError::MethodNotAllowed => ErrorCode::MethodNotAllowed,
        }
    }
}

/// Methods the gateway serves on some path.
const SERVED_METHODS: [Method; 5] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::HEAD,
    Method::DELETE,
];

/// Maps a method and a path (without query string) to an endpoint. A path that another method
/// serves is [`RouteError::MethodNotAllowed`]; any other unknown path, or a malformed id or
/// number in it, is [`RouteError::NotFound`].
pub fn route(method: &Method, path: &str) -> Result<Endpoint, RouteError> {
    let segments: Vec<&str> = match path.strip_prefix('/') {
        Some(rest) => rest.split('/').collect(),
        None => return Err(RouteError::NotFound),
    };
    if segments.iter().any(|segment| segment.is_empty()) {
        return Err(RouteError::NotFound);
    }
    if let Some(endpoint) = matched(method, &segments)? {
        return Ok(endpoint);
    }
    // The one route table decides 405 too, so a new route cannot be forgotten here.
    let served_otherwise = SERVED_METHODS
        .iter()
        .any(|other| other != method && matches!(matched(other, &segments), Ok(Some(_))));
    Err(if served_otherwise {
        RouteError::MethodNotAllowed
    } else {
        RouteError::NotFound
    })
}

/// The endpoint `method` serves at `segments`: `Ok(None)` if none, an error for a malformed id
/// or number in a path that has the endpoint's shape.
fn matched(method: &Method, segments: &[&str]) -> Result<Option<Endpoint>, RouteError> {
    let m = method;
    let (get, post, put, head, delete) = (
        m == Method::GET,
        m == Method::POST,
        m == Method::PUT,
        m == Method::HEAD,
        m == Method::DELETE,
    );
    let endpoint = match segments {
        ["healthz"] if get => Endpoint::Health,
        ["metrics"] if get => Endpoint::Metrics,
        ["v1", "accounts"] if post => Endpoint::Register,
        ["v1", "auth", "device", "challenge"] if post => Endpoint::LoginChallenge,
        ["v1", "auth", "device", "verify"] if post => Endpoint::LoginVerify,
        ["v1", "accounts", "opaque"] if post => Endpoint::OpaqueRegister,
        ["v1", "auth", "opaque", "start"] if post => Endpoint::OpaqueLoginStart,
        ["v1", "auth", "opaque", "finish"] if post => Endpoint::OpaqueLoginFinish,
        ["v1", "account", "key-bundles"] if get => Endpoint::KeyBundles,
        ["v1", "account", "devices"] if post => Endpoint::AppendDevice,
        ["v1", "users", handle] if get && !handle.is_empty() => Endpoint::GetUser {
            handle: (*handle).to_owned(),
        },
        ["v1", "spaces"] if get => Endpoint::ListSpaces,
        ["v1", "spaces"] if post => Endpoint::CreateSpace,
        ["v1", "spaces", space, "members"] if get => Endpoint::GetMembers {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "members"] if post => Endpoint::AppendMember {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "blobs"] if get => Endpoint::ListBlobs {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "blobs", "missing"] if post => Endpoint::MissingBlobs {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "blobs", "batch"] if post => Endpoint::PutBlobBatch {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "blobs", "fetch"] if post => Endpoint::FetchBlobs {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "blobs", blob] if put => Endpoint::PutBlob {
            space: space_id(space)?,
            blob: blob_id(blob)?,
        },
        ["v1", "spaces", space, "blobs", blob] if get => Endpoint::GetBlob {
            space: space_id(space)?,
            blob: blob_id(blob)?,
        },
        ["v1", "spaces", space, "blobs", blob] if head => Endpoint::HeadBlob {
            space: space_id(space)?,
            blob: blob_id(blob)?,
        },
        ["v1", "spaces", space, "heads"] if get => Endpoint::GetHeads {
            space: space_id(space)?,
        },
        ["v1", "spaces", space, "heads", seq] if put => Endpoint::PutHead {
            space: space_id(space)?,
            seq: number(seq)?,
        },
        ["v1", "spaces", space, "prune"] if post => Endpoint::Prune {
            space: space_id(space)?,
        },
        ["v1", "inbox"] if get => Endpoint::GetInbox,
        ["v1", "inbox"] if post => Endpoint::SendInvitation,
        ["v1", "inbox", id] if delete => Endpoint::DeleteInvitation { id: number(id)? },
        _ => return Ok(None),
    };
    Ok(Some(endpoint))
}

fn space_id(text: &str) -> Result<SpaceId, RouteError> {
    SpaceId::from_hex(text).map_err(|_| RouteError::NotFound)
}

fn blob_id(text: &str) -> Result<BlobId, RouteError> {
    BlobId::from_hex(text).map_err(|_| RouteError::NotFound)
}

fn number(text: &str) -> Result<u64, RouteError> {
    // Only plain decimal digits: no sign, no spaces, no leading '+'.
    if text.is_empty() || !text.bytes().all(|c| c.is_ascii_digit()) {
        return Err(RouteError::NotFound);
    }
    text.parse().map_err(|_| RouteError::NotFound)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPACE: &str = "0101010101010101010101010101010101010101010101010101010101010101";
    const BLOB: &str = "0202020202020202020202020202020202020202020202020202020202020202";

    #[test]
    fn every_endpoint_routes() {
        let space = SpaceId::from_bytes([1; 32]);
        let blob = BlobId::from_bytes([2; 32]);
        let cases = [
            (Method::GET, "/healthz".to_owned(), Endpoint::Health),
            (Method::GET, "/metrics".to_owned(), Endpoint::Metrics),
            (Method::POST, "/v1/accounts".to_owned(), Endpoint::Register),
            (
                Method::POST,
                "/v1/auth/device/challenge".to_owned(),
                Endpoint::LoginChallenge,
            ),
            (
                Method::POST,
                "/v1/auth/device/verify".to_owned(),
                Endpoint::LoginVerify,
            ),
            (
                Method::POST,
                "/v1/accounts/opaque".to_owned(),
                Endpoint::OpaqueRegister,
            ),
            (
                Method::POST,
                "/v1/auth/opaque/start".to_owned(),
                Endpoint::OpaqueLoginStart,
            ),
            (
                Method::POST,
                "/v1/auth/opaque/finish".to_owned(),
                Endpoint::OpaqueLoginFinish,
            ),
            (
                Method::GET,
                "/v1/account/key-bundles".to_owned(),
                Endpoint::KeyBundles,
            ),
            (
                Method::POST,
                "/v1/account/devices".to_owned(),
                Endpoint::AppendDevice,
            ),
            (
                Method::GET,
                "/v1/users/alice".to_owned(),
                Endpoint::GetUser {
                    handle: "alice".into(),
                },
            ),
            (Method::GET, "/v1/spaces".to_owned(), Endpoint::ListSpaces),
            (Method::POST, "/v1/spaces".to_owned(), Endpoint::CreateSpace),
            (
                Method::GET,
                format!("/v1/spaces/{SPACE}/members"),
                Endpoint::GetMembers { space },
            ),
            (
                Method::POST,
                format!("/v1/spaces/{SPACE}/members"),
                Endpoint::AppendMember { space },
            ),
            (
                Method::GET,
                format!("/v1/spaces/{SPACE}/blobs"),
                Endpoint::ListBlobs { space },
            ),
            (
                Method::POST,
                format!("/v1/spaces/{SPACE}/blobs/missing"),
                Endpoint::MissingBlobs { space },
            ),
            (
                Method::POST,
                format!("/v1/spaces/{SPACE}/blobs/batch"),
                Endpoint::PutBlobBatch { space },
            ),
            (
                Method::POST,
                format!("/v1/spaces/{SPACE}/blobs/fetch"),
                Endpoint::FetchBlobs { space },
            ),
            (
                Method::PUT,
                format!("/v1/spaces/{SPACE}/blobs/{BLOB}"),
                Endpoint::PutBlob { space, blob },
            ),
            (
                Method::GET,
                format!("/v1/spaces/{SPACE}/blobs/{BLOB}"),
                Endpoint::GetBlob { space, blob },
            ),
            (
                Method::HEAD,
                format!("/v1/spaces/{SPACE}/blobs/{BLOB}"),
                Endpoint::HeadBlob { space, blob },
            ),
            (
                Method::GET,
                format!("/v1/spaces/{SPACE}/heads"),
                Endpoint::GetHeads { space },
            ),
            (
                Method::PUT,
                format!("/v1/spaces/{SPACE}/heads/42"),
                Endpoint::PutHead { space, seq: 42 },
            ),
            (
                Method::POST,
                format!("/v1/spaces/{SPACE}/prune"),
                Endpoint::Prune { space },
            ),
            (Method::GET, "/v1/inbox".to_owned(), Endpoint::GetInbox),
            (
                Method::POST,
                "/v1/inbox".to_owned(),
                Endpoint::SendInvitation,
            ),
            (
                Method::DELETE,
                "/v1/inbox/7".to_owned(),
                Endpoint::DeleteInvitation { id: 7 },
            ),
        ];
        for (method, path, expected) in cases {
            assert_eq!(route(&method, &path), Ok(expected), "{method} {path}");
        }
    }

    #[test]
    fn bad_paths_and_methods() {
        assert_eq!(route(&Method::GET, "/nope"), Err(RouteError::NotFound));
        assert_eq!(route(&Method::GET, "healthz"), Err(RouteError::NotFound));
        assert_eq!(
            route(&Method::DELETE, "/healthz"),
            Err(RouteError::MethodNotAllowed)
        );
        assert_eq!(
            route(&Method::GET, "/v1/spaces/xyz/heads"),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::PUT, &format!("/v1/spaces/{SPACE}/heads/-1")),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(
                &Method::PUT,
                &format!("/v1/spaces/{SPACE}/heads/99999999999999999999999")
            ),
            Err(RouteError::NotFound)
        );
        assert_eq!(
            route(&Method::DELETE, &format!("/v1/spaces/{SPACE}/blobs/{BLOB}")),
            Err(RouteError::MethodNotAllowed)
        );
        // Every path some method serves answers 405 to the others (404 would say it does not
        // exist): the passphrase-login paths were once missing from a separate list.
        for path in [
            "/v1/accounts/opaque",
            "/v1/auth/opaque/start",
            "/v1/auth/opaque/finish",
        ] {
            assert_eq!(
                route(&Method::GET, path),
                Err(RouteError::MethodNotAllowed),
                "{path}"
            );
        }
        assert_eq!(
            route(&Method::GET, &format!("/v1/spaces/{SPACE}/blobs/fetch")),
            Err(RouteError::NotFound),
            "GET of blobs/fetch reads `fetch` as a blob id, which it is not"
        );
        assert_eq!(route(&Method::GET, "/v1/users/"), Err(RouteError::NotFound));
        assert_eq!(
            route(&Method::GET, "/v1/spaces/"),
            Err(RouteError::NotFound)
        );
    }
}
