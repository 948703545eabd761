//! `docs/openapi.json` stays in step with the gateway:
//!
//! - it is an OpenAPI 3.1 document whose every `$ref` resolves, whose every component is used,
//!   and whose error codes are exactly `coffre_protocol::ErrorCode::ALL` with their statuses;
//! - its (method, path template) pairs are exactly the routes the router serves: every documented
//!   operation, instantiated with sample parameters, is routed by [`route`] to the endpoint that
//!   [`spec`] maps back to that operation (and its `operationId` is the endpoint's metrics name);
//!   no other method is routed on a documented path; and every [`Endpoint`] variant (an
//!   exhaustive `match`: a new variant does not compile until it is added here) is documented;
//! - its schemas describe the serde wire types of `coffre_protocol`: field names, required and
//!   optional fields, closed request objects, base64 and hex strings, unsigned integers; the
//!   golden examples of `protocol/tests/golden/` and the document's own examples fit them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_gateway::api::endpoint_name;
use coffre_gateway::router::{Endpoint, route};
use coffre_protocol::types::{
    AppendCommitRequest, AppendDeviceRequest, AppendMembershipRequest, AppendResponse,
    BatchPutResponse, BlobListEntry, BlobListResponse, Bytes64, ChallengeRequest,
    ChallengeResponse, CreateSpaceRequest, CreateSpaceResponse, FetchRequest, HeadsResponse,
    HealthResponse, Id32, InboxItem, InboxResponse, KeyBundlesResponse, MembershipResponse,
    MissingRequest, MissingResponse, OpaqueLoginFinishRequest, OpaqueLoginFinishResponse,
    OpaqueLoginStartRequest, OpaqueLoginStartResponse, OpaqueRegisterRequest,
    OpaqueRegisterResponse, PruneRequest, PruneResponse, RegisterRequest, RegisterResponse,
    SendInvitationRequest, SpaceSummary, SpacesResponse, TokenResponse, UserResponse,
    VerifyRequest,
};
use coffre_protocol::{ErrorBody, ErrorCode};
use http::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// The HTTP methods an OpenAPI path item can hold, by their key in the document.
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn workspace_file(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative)
}

fn document() -> Value {
    let path = workspace_file("docs/openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("reading {}: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("{} is not JSON: {error}", path.display()))
}

fn method(key: &str) -> Method {
    Method::from_bytes(key.to_ascii_uppercase().as_bytes()).unwrap()
}

/// Follows a local `$ref` (`#/components/...`) to what it names.
fn resolve<'a>(doc: &'a Value, value: &'a Value) -> &'a Value {
    match value.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("{reference} is not a local reference"));
            let target = doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} resolves to nothing"));
            resolve(doc, target)
        }
        None => value,
    }
}

/// Every `$ref` string anywhere under `value`.
fn references(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    out.push(child.as_str().expect("$ref is a string").to_owned());
                } else {
                    references(child, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| references(item, out)),
        _ => {}
    }
}

/// `(METHOD, template) -> operation object` for every operation of the document.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut out = BTreeMap::new();
    for (template, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for key in item.keys() {
            assert!(
                METHODS.contains(&key.as_str()) || key == "parameters",
                "{template}: unexpected key {key:?} in a path item"
            );
        }
        for key in METHODS {
            if let Some(operation) = item.get(key) {
                out.insert((key.to_ascii_uppercase(), template.clone()), operation);
            }
        }
    }
    out
}

/// The `{name}` placeholders of a path template, in order.
fn placeholders(template: &str) -> Vec<&str> {
    template
        .split('/')
        .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
        .collect()
}

/// The path parameters declared for an operation (path-item level and operation level), by name.
fn path_parameters<'a>(
    doc: &'a Value,
    template: &str,
    op: &'a Value,
) -> BTreeMap<String, &'a Value> {
    let item = &doc["paths"][template];
    let mut out = BTreeMap::new();
    for list in [&item["parameters"], &op["parameters"]] {
        for parameter in list.as_array().map(Vec::as_slice).unwrap_or_default() {
            let parameter = resolve(doc, parameter);
            if parameter["in"] == "path" {
                assert_eq!(
                    parameter["required"], true,
                    "{template}: path parameters are required"
                );
                let name = parameter["name"].as_str().expect("a parameter has a name");
                out.insert(name.to_owned(), parameter);
            }
        }
    }
    out
}

/// A concrete path for a template, each placeholder filled with a value its declared schema
/// allows (and the router accepts).
fn sample_path(doc: &Value, template: &str, op: &Value) -> String {
    let declared = path_parameters(doc, template, op);
    let mut path = template.to_owned();
    for name in placeholders(template) {
        let parameter = declared.get(name).unwrap_or_else(|| {
            panic!("{template}: {{{name}}} is not declared as a path parameter")
        });
        let schema = &parameter["schema"];
        let sample = match schema.get("$ref").and_then(Value::as_str) {
            Some("#/components/schemas/Hex32") => "0123456789abcdef".repeat(4),
            Some("#/components/schemas/U64") => "7".to_owned(),
            Some("#/components/schemas/Handle") => "alice".to_owned(),
            _ => panic!("{template}: no sample value for {{{name}}} of schema {schema}"),
        };
        path = path.replace(&format!("{{{name}}}"), &sample);
    }
    path
}

/// Every endpoint, mapped to its documented method, path template and path parameter values.
/// The `match` is exhaustive: a new [`Endpoint`] variant does not compile until it is added here
/// (and to [`every_endpoint`], and to `docs/openapi.json`).
fn spec(endpoint: &Endpoint) -> (Method, &'static str, Vec<(&'static str, String)>) {
    use Endpoint as E;
    let space = |space: &SpaceId| vec![("id", space.to_string())];
    let blob = |space: &SpaceId, blob: &BlobId| {
        vec![("id", space.to_string()), ("blob", blob.to_string())]
    };
    match endpoint {
        E::Health => (Method::GET, "/healthz", vec![]),
        E::Metrics => (Method::GET, "/metrics", vec![]),
        E::Register => (Method::POST, "/v1/accounts", vec![]),
        E::LoginChallenge => (Method::POST, "/v1/auth/device/challenge", vec![]),
        E::LoginVerify => (Method::POST, "/v1/auth/device/verify", vec![]),
        E::OpaqueRegister => (Method::POST, "/v1/accounts/opaque", vec![]),
        E::OpaqueLoginStart => (Method::POST, "/v1/auth/opaque/start", vec![]),
        E::OpaqueLoginFinish => (Method::POST, "/v1/auth/opaque/finish", vec![]),
        E::KeyBundles => (Method::GET, "/v1/account/key-bundles", vec![]),
        E::AppendDevice => (Method::POST, "/v1/account/devices", vec![]),
        E::GetUser { handle } => (
            Method::GET,
            "/v1/users/{handle}",
            vec![("handle", handle.clone())],
        ),
        E::ListSpaces => (Method::GET, "/v1/spaces", vec![]),
        E::CreateSpace => (Method::POST, "/v1/spaces", vec![]),
        E::GetMembers { space: s } => (Method::GET, "/v1/spaces/{id}/members", space(s)),
        E::AppendMember { space: s } => (Method::POST, "/v1/spaces/{id}/members", space(s)),
        E::ListBlobs { space: s } => (Method::GET, "/v1/spaces/{id}/blobs", space(s)),
        E::MissingBlobs { space: s } => (Method::POST, "/v1/spaces/{id}/blobs/missing", space(s)),
        E::PutBlobBatch { space: s } => (Method::POST, "/v1/spaces/{id}/blobs/batch", space(s)),
        E::FetchBlobs { space: s } => (Method::POST, "/v1/spaces/{id}/blobs/fetch", space(s)),
        E::PutBlob { space: s, blob: b } => {
            (Method::PUT, "/v1/spaces/{id}/blobs/{blob}", blob(s, b))
        }
        E::GetBlob { space: s, blob: b } => {
            (Method::GET, "/v1/spaces/{id}/blobs/{blob}", blob(s, b))
        }
        E::HeadBlob { space: s, blob: b } => {
            (Method::HEAD, "/v1/spaces/{id}/blobs/{blob}", blob(s, b))
        }
        E::GetHeads { space: s } => (Method::GET, "/v1/spaces/{id}/heads", space(s)),
        E::PutHead { space: s, seq } => (
            Method::PUT,
            "/v1/spaces/{id}/heads/{seq}",
            vec![("id", s.to_string()), ("seq", seq.to_string())],
        ),
        E::Prune { space: s } => (Method::POST, "/v1/spaces/{id}/prune", space(s)),
        E::GetInbox => (Method::GET, "/v1/inbox", vec![]),
        E::SendInvitation => (Method::POST, "/v1/inbox", vec![]),
        E::DeleteInvitation { id } => (
            Method::DELETE,
            "/v1/inbox/{id}",
            vec![("id", id.to_string())],
        ),
    }
}

/// One value of every [`Endpoint`] variant (keep in step with [`spec`]).
fn every_endpoint() -> Vec<Endpoint> {
    let space = SpaceId::from_bytes([0xa1; 32]);
    let blob = BlobId::from_bytes([0xb2; 32]);
    vec![
        Endpoint::Health,
        Endpoint::Metrics,
        Endpoint::Register,
        Endpoint::LoginChallenge,
        Endpoint::LoginVerify,
        Endpoint::OpaqueRegister,
        Endpoint::OpaqueLoginStart,
        Endpoint::OpaqueLoginFinish,
        Endpoint::KeyBundles,
        Endpoint::AppendDevice,
        Endpoint::GetUser {
            handle: "bob.b-2_".into(),
        },
        Endpoint::ListSpaces,
        Endpoint::CreateSpace,
        Endpoint::GetMembers { space },
        Endpoint::AppendMember { space },
        Endpoint::ListBlobs { space },
        Endpoint::MissingBlobs { space },
        Endpoint::PutBlobBatch { space },
        Endpoint::FetchBlobs { space },
        Endpoint::PutBlob { space, blob },
        Endpoint::GetBlob { space, blob },
        Endpoint::HeadBlob { space, blob },
        Endpoint::GetHeads { space },
        Endpoint::PutHead { space, seq: 42 },
        Endpoint::Prune { space },
        Endpoint::GetInbox,
        Endpoint::SendInvitation,
        Endpoint::DeleteInvitation { id: 9 },
    ]
}

#[test]
fn is_openapi_3_1_with_every_reference_resolving() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "coffre gateway API");
    assert_eq!(doc["info"]["version"], coffre_gateway::API_VERSION);
    let bearer = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (&bearer["type"], &bearer["scheme"]),
        (&json!("http"), &json!("bearer"))
    );

    // Every reference is local and resolves; every component is referenced.
    let mut refs = Vec::new();
    references(&doc, &mut refs);
    assert!(!refs.is_empty());
    for reference in &refs {
        let pointer = reference
            .strip_prefix("#/components/")
            .unwrap_or_else(|| panic!("{reference} does not name a component"));
        assert!(
            doc["components"].pointer(&format!("/{pointer}")).is_some(),
            "{reference} resolves to nothing"
        );
    }
    let referenced: BTreeSet<&str> = refs.iter().map(String::as_str).collect();
    for kind in ["schemas", "parameters", "headers", "responses"] {
        for name in doc["components"][kind]
            .as_object()
            .expect("components")
            .keys()
        {
            let reference = format!("#/components/{kind}/{name}");
            assert!(
                referenced.contains(reference.as_str()),
                "{reference} is never used"
            );
        }
    }

    // Security requirements name defined schemes.
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("schemes");
    let mut requirements: Vec<&Value> = vec![&doc["security"]];
    let ops = operations(&doc);
    requirements.extend(ops.values().filter_map(|op| op.get("security")));
    for requirement in requirements {
        for alternative in requirement.as_array().expect("security is an array") {
            for name in alternative
                .as_object()
                .expect("a requirement is an object")
                .keys()
            {
                assert!(schemes.contains_key(name), "unknown security scheme {name}");
            }
        }
    }

    // Operations: unique ids, a summary, a description, responses with valid status keys, and
    // path placeholders that are exactly the declared path parameters.
    let mut ids = BTreeSet::new();
    for ((method, template), op) in &ops {
        let what = format!("{method} {template}");
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{what}: no operationId"));
        assert!(ids.insert(id), "{what}: operationId {id} used twice");
        for field in ["summary", "description"] {
            assert!(
                op[field].as_str().is_some_and(|text| !text.is_empty()),
                "{what}: no {field}"
            );
        }
        let responses = op["responses"].as_object().expect("responses");
        assert!(!responses.is_empty(), "{what}: no responses");
        for status in responses.keys() {
            assert!(
                status.len() == 3 && status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                "{what}: bad status key {status}"
            );
        }
        let declared: BTreeSet<String> = path_parameters(&doc, template, op).into_keys().collect();
        let used: BTreeSet<String> = placeholders(template)
            .into_iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(declared, used, "{what}: path parameters");
    }

    // The error codes are the protocol's, each with its one status.
    let code = &doc["components"]["schemas"]["ErrorCode"];
    let documented: Vec<&str> = code["enum"]
        .as_array()
        .expect("enum")
        .iter()
        .map(|code| code.as_str().expect("a code is a string"))
        .collect();
    let protocol: Vec<&str> = ErrorCode::ALL.iter().map(|code| code.as_str()).collect();
    assert_eq!(documented, protocol, "ErrorCode enum");
    let statuses = code["x-http-status"].as_object().expect("x-http-status");
    assert_eq!(statuses.len(), ErrorCode::ALL.len());
    for error in ErrorCode::ALL {
        assert_eq!(
            statuses[error.as_str()],
            error.status(),
            "status of {error}"
        );
    }
}

#[test]
fn documents_exactly_the_routes_the_router_serves() {
    let doc = document();
    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops.keys().cloned().collect();

    // Every documented operation is routed, to the endpoint documented there.
    for ((method_name, template), op) in &ops {
        let path = sample_path(&doc, template, op);
        let endpoint = route(&method(method_name), &path)
            .unwrap_or_else(|error| panic!("{method_name} {path}: the router answers {error:?}"));
        let (m, t, _) = spec(&endpoint);
        assert_eq!(
            (m.as_str(), t),
            (method_name.as_str(), template.as_str()),
            "{method_name} {path} routes to {endpoint:?}"
        );
        assert_eq!(
            op["operationId"],
            endpoint_name(&endpoint),
            "{method_name} {template}: operationId"
        );
    }

    // On a documented path, no undocumented method is routed.
    let templates: BTreeSet<&String> = documented.iter().map(|(_, template)| template).collect();
    for template in templates {
        let (_, op) = ops
            .iter()
            .find(|((_, t), _)| t == template)
            .expect("a documented template has an operation");
        let path = sample_path(&doc, template, op);
        for key in METHODS {
            let name = key.to_ascii_uppercase();
            if !documented.contains(&(name.clone(), template.clone())) {
                let routed = route(&method(key), &path);
                assert!(
                    routed.is_err(),
                    "{name} {path} is served ({routed:?}) but not documented"
                );
            }
        }
    }

    // Every endpoint is documented, and its path with its own parameters routes back to it.
    let endpoints = every_endpoint();
    let mut specified = BTreeSet::new();
    for endpoint in &endpoints {
        let (m, template, values) = spec(endpoint);
        let key = (m.as_str().to_owned(), template.to_owned());
        assert!(
            documented.contains(&key),
            "{endpoint:?}: {m} {template} is not in docs/openapi.json"
        );
        assert!(
            specified.insert(key),
            "{endpoint:?}: {m} {template} given twice"
        );
        let mut path = template.to_owned();
        for (name, value) in values {
            path = path.replace(&format!("{{{name}}}"), &value);
        }
        assert!(
            !path.contains('{'),
            "{endpoint:?}: {path} has an unfilled placeholder"
        );
        assert_eq!(route(&m, &path), Ok(endpoint.clone()), "{m} {path}");
    }
    assert_eq!(
        specified, documented,
        "documented operations versus Endpoint variants"
    );
}

/// Checks a JSON value against a schema of the document, for the keywords the document uses.
/// With `exact`, every property of an object schema must be present (a value with every optional
/// field set); without, only the required ones.
fn check(doc: &Value, schema: &Value, value: &Value, exact: bool, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(constant) = schema.get("const") {
        assert_eq!(value, constant, "{at}: const");
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        assert!(allowed.contains(value), "{at}: {value} not in {allowed:?}");
    }
    match schema["type"].as_str() {
        Some("object") => {
            let object = value
                .as_object()
                .unwrap_or_else(|| panic!("{at}: {value} is not an object"));
            let properties = schema["properties"].as_object().expect("properties");
            let required: BTreeSet<&str> = schema["required"]
                .as_array()
                .expect("required")
                .iter()
                .map(|name| name.as_str().expect("a name"))
                .collect();
            let present: BTreeSet<&str> = object.keys().map(String::as_str).collect();
            let known: BTreeSet<&str> = properties.keys().map(String::as_str).collect();
            assert!(
                required.is_subset(&known),
                "{at}: required names unknown properties"
            );
            assert!(
                present.is_subset(&known),
                "{at}: fields {:?} not in the schema",
                &present - &known
            );
            assert!(
                required.is_subset(&present),
                "{at}: required {:?} missing",
                &required - &present
            );
            if exact {
                assert_eq!(present, known, "{at}: fields versus properties");
            }
            for (name, field) in object {
                check(
                    doc,
                    &properties[name],
                    field,
                    exact,
                    &format!("{at}.{name}"),
                );
            }
        }
        Some("array") => {
            let items = value
                .as_array()
                .unwrap_or_else(|| panic!("{at}: {value} is not an array"));
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                assert!(items.len() as u64 <= max, "{at}: more than {max} items");
            }
            for (index, item) in items.iter().enumerate() {
                check(
                    doc,
                    &schema["items"],
                    item,
                    exact,
                    &format!("{at}[{index}]"),
                );
            }
        }
        Some("string") => {
            let text = value
                .as_str()
                .unwrap_or_else(|| panic!("{at}: {value} is not a string"));
            if schema.get("contentEncoding").and_then(Value::as_str) == Some("base64") {
                assert!(
                    STANDARD.decode(text).is_ok(),
                    "{at}: {text:?} is not padded base64"
                );
            }
            if schema.get("pattern").and_then(Value::as_str) == Some("^[0-9a-fA-F]{64}$") {
                assert!(
                    Id32::parse(text).is_some(),
                    "{at}: {text:?} is not 64 hex characters"
                );
            }
        }
        Some("integer") => {
            assert!(value.is_u64(), "{at}: {value} is not an unsigned integer");
        }
        other => panic!("{at}: schema type {other:?} is not checked here"),
    }
}

/// Checks a wire type against its component schema: a value with every optional field set
/// matches exactly, one with none set holds the required fields, and the schema's
/// `additionalProperties: false` is exactly the type's refusal of unknown fields.
fn wire<T: Serialize + DeserializeOwned>(doc: &Value, name: &str, full: &T, minimal: &T) -> String {
    let schema = &doc["components"]["schemas"][name];
    assert!(schema.is_object(), "no schema {name}");
    let full = serde_json::to_value(full).unwrap();
    check(doc, schema, &full, true, name);
    check(
        doc,
        schema,
        &serde_json::to_value(minimal).unwrap(),
        false,
        name,
    );
    let mut extended = full;
    extended
        .as_object_mut()
        .expect("an object")
        .insert("surely_unknown".into(), json!(1));
    let closed = schema.get("additionalProperties") == Some(&json!(false));
    assert_eq!(
        serde_json::from_value::<T>(extended).is_err(),
        closed,
        "{name}: additionalProperties versus deny_unknown_fields"
    );
    name.to_owned()
}

#[test]
fn schemas_match_the_protocol_wire_types() {
    let doc = document();
    let b = |bytes: &[u8]| Bytes64(bytes.to_vec());
    let id = Id32([0xc3; 32]);
    let token = format!("cft_{}", "A".repeat(43));
    let mut checked = BTreeSet::new();

    let register = RegisterRequest {
        identity: b(b"CFID"),
        device_entry: b(b"CFDV"),
        key_bundles: vec![b(b"CFKB")],
        opaque_upload: Some(b(b"up")),
    };
    let register_minimal = RegisterRequest {
        opaque_upload: None,
        ..register.clone()
    };
    checked.insert(wire(&doc, "RegisterRequest", &register, &register_minimal));
    let v = RegisterResponse {
        handle: "alice".into(),
        quota_bytes: 10,
    };
    checked.insert(wire(&doc, "RegisterResponse", &v, &v));
    let v = OpaqueRegisterRequest {
        handle: "alice".into(),
        request: b(b"rq"),
    };
    checked.insert(wire(&doc, "OpaqueRegisterRequest", &v, &v));
    let v = OpaqueRegisterResponse { response: b(b"rs") };
    checked.insert(wire(&doc, "OpaqueRegisterResponse", &v, &v));
    let v = OpaqueLoginStartRequest {
        handle: "alice".into(),
        request: b(b"rq"),
    };
    checked.insert(wire(&doc, "OpaqueLoginStartRequest", &v, &v));
    let v = OpaqueLoginStartResponse {
        login_id: b(&[7; 32]),
        response: b(b"rs"),
    };
    checked.insert(wire(&doc, "OpaqueLoginStartResponse", &v, &v));
    let v = OpaqueLoginFinishRequest {
        login_id: b(&[7; 32]),
        finalization: b(b"fin"),
    };
    checked.insert(wire(&doc, "OpaqueLoginFinishRequest", &v, &v));
    let v = OpaqueLoginFinishResponse {
        token: token.clone(),
        expires_in_s: 3600,
        key_bundles: vec![b(b"CFKB")],
        identity: b(b"CFID"),
        device_chain: vec![b(b"CFDV")],
    };
    checked.insert(wire(&doc, "OpaqueLoginFinishResponse", &v, &v));
    let v = ChallengeRequest {
        handle: "alice".into(),
        device_key: id,
    };
    checked.insert(wire(&doc, "ChallengeRequest", &v, &v));
    let v = ChallengeResponse {
        challenge: b(&[1; 32]),
        expires_in_s: 60,
    };
    checked.insert(wire(&doc, "ChallengeResponse", &v, &v));
    let v = VerifyRequest {
        handle: "alice".into(),
        device_key: id,
        challenge: b(&[1; 32]),
        signature: b(&[2; 64]),
    };
    checked.insert(wire(&doc, "VerifyRequest", &v, &v));
    let v = TokenResponse {
        token,
        expires_in_s: 3600,
    };
    checked.insert(wire(&doc, "TokenResponse", &v, &v));
    let v = UserResponse {
        handle: "alice".into(),
        identity: b(b"CFID"),
        device_chain: vec![b(b"CFDV")],
    };
    checked.insert(wire(&doc, "UserResponse", &v, &v));
    let v = AppendDeviceRequest { entry: b(b"CFDV") };
    checked.insert(wire(&doc, "AppendDeviceRequest", &v, &v));
    let v = KeyBundlesResponse {
        key_bundles: vec![b(b"CFKB")],
    };
    checked.insert(wire(&doc, "KeyBundlesResponse", &v, &v));
    let v = CreateSpaceRequest {
        genesis: b(b"CFML"),
    };
    checked.insert(wire(&doc, "CreateSpaceRequest", &v, &v));
    let v = CreateSpaceResponse { space_id: id };
    checked.insert(wire(&doc, "CreateSpaceResponse", &v, &v));
    let v = SpacesResponse {
        spaces: vec![SpaceSummary {
            space_id: id,
            role: "writer".into(),
            membership_len: 2,
            head_seq: 0,
        }],
    };
    checked.insert(wire(&doc, "SpacesResponse", &v, &v));
    checked.insert("SpaceSummary".into());
    let v = MembershipResponse {
        entries: vec![b(b"CFML")],
        len: 1,
    };
    checked.insert(wire(&doc, "MembershipResponse", &v, &v));
    let v = AppendMembershipRequest { entry: b(b"CFML") };
    checked.insert(wire(&doc, "AppendMembershipRequest", &v, &v));
    let v = AppendResponse { seq: 3 };
    checked.insert(wire(&doc, "AppendResponse", &v, &v));
    let v = MissingRequest { ids: vec![id] };
    checked.insert(wire(&doc, "MissingRequest", &v, &v));
    let v = MissingResponse { missing: vec![id] };
    checked.insert(wire(&doc, "MissingResponse", &v, &v));
    let v = BatchPutResponse {
        stored: 3,
        present: 1,
    };
    checked.insert(wire(&doc, "BatchPutResponse", &v, &v));
    let v = FetchRequest { ids: vec![id] };
    checked.insert(wire(&doc, "FetchRequest", &v, &v));
    let entry = BlobListEntry {
        id,
        size: 100,
        created_ms: 1_700_000_000_000,
    };
    let full = BlobListResponse {
        blobs: vec![entry],
        next_after: Some(id),
    };
    let minimal = BlobListResponse {
        next_after: None,
        ..full.clone()
    };
    checked.insert(wire(&doc, "BlobListResponse", &full, &minimal));
    checked.insert("BlobListEntry".into());
    let v = HeadsResponse {
        commits: vec![b(b"CFCM")],
        head_seq: 7,
    };
    checked.insert(wire(&doc, "HeadsResponse", &v, &v));
    let v = AppendCommitRequest { commit: b(b"CFCM") };
    checked.insert(wire(&doc, "AppendCommitRequest", &v, &v));
    let v = PruneRequest { delete: vec![id] };
    checked.insert(wire(&doc, "PruneRequest", &v, &v));
    let v = PruneResponse {
        deleted: 1,
        kept_recent: 2,
        absent: 3,
    };
    checked.insert(wire(&doc, "PruneResponse", &v, &v));
    let v = SendInvitationRequest {
        to: "bob".into(),
        invitation: b(b"CFIV"),
    };
    checked.insert(wire(&doc, "SendInvitationRequest", &v, &v));
    let v = InboxResponse {
        invitations: vec![InboxItem {
            id: 1,
            from: "alice".into(),
            invitation: b(b"CFIV"),
            received_ms: 1_700_000_000_000,
        }],
    };
    checked.insert(wire(&doc, "InboxResponse", &v, &v));
    checked.insert("InboxItem".into());
    let v = HealthResponse {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
    };
    checked.insert(wire(&doc, "HealthResponse", &v, &v));
    let full = ErrorBody {
        code: ErrorCode::Conflict,
        message: "conflict".into(),
        current_seq: Some(3),
    };
    checked.insert(wire(
        &doc,
        "Error",
        &full,
        &ErrorBody::new(ErrorCode::NotFound, "not found"),
    ));
    // `POST /v1/inbox` answers with a struct private to the gateway (`api::inbox`): `{ "id": n }`.
    let sent = &doc["components"]["schemas"]["InvitationSent"];
    check(&doc, sent, &json!({ "id": 12 }), true, "InvitationSent");
    checked.insert("InvitationSent".into());

    // Every object schema of the document was checked against a wire type.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        if schema["type"] == "object" {
            assert!(
                checked.contains(name),
                "schema {name} is not checked against a wire type"
            );
        }
    }

    // The document's own examples fit their schemas.
    for (name, schema) in doc["components"]["schemas"].as_object().expect("schemas") {
        for example in schema["examples"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            check(&doc, schema, example, false, &format!("{name} example"));
        }
    }
}

#[test]
fn golden_examples_fit_their_schemas() {
    let doc = document();
    let golden = [
        ("batch_put_response", "BatchPutResponse"),
        ("error_conflict", "Error"),
        ("error_unauthenticated", "Error"),
        ("fetch_request", "FetchRequest"),
        ("heads_response", "HeadsResponse"),
        ("missing_request", "MissingRequest"),
        ("opaque_login_finish", "OpaqueLoginFinishRequest"),
        ("opaque_login_start", "OpaqueLoginStartRequest"),
        ("register_request", "RegisterRequest"),
        ("verify_request", "VerifyRequest"),
    ];
    let directory = workspace_file("protocol/tests/golden");
    let mut files: Vec<String> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    files.sort();
    let listed: Vec<String> = golden
        .iter()
        .map(|(file, _)| format!("{file}.json"))
        .collect();
    assert_eq!(files, listed, "every golden file is checked here");
    for (file, schema) in golden {
        let text = std::fs::read_to_string(directory.join(format!("{file}.json"))).unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        check(
            &doc,
            &doc["components"]["schemas"][schema],
            &value,
            false,
            file,
        );
    }
}
