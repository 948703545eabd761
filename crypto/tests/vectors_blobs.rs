//! Test vectors of the blob layer (FORMAT.md sections 4 to 7 and 13).
//!
//! The JSON files in `tests/vectors/` are written by [`write_vectors`] from fixed keys and inputs:
//!
//! ```text
//! COFFRE_WRITE_VECTORS=1 cargo test -p coffre-crypto --test vectors_blobs write_vectors
//! ```
//!
//! Every other test reads them back: passing cases must be reproduced byte for byte (envelopes
//! are deterministic), and every `fail_*` case must be refused with the named error class. Bodies
//! with bad padding are crafted by [`seal_body`], an independent re-implementation of the CAEAD of
//! FORMAT.md section 3 straight on `chacha20poly1305` and `blake3`; the passing envelope vectors
//! are cross-checked against it as well.

// Test helpers outside `#[test]` functions: a panic there is a failed test too.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use coffre_crypto::Error;
use coffre_crypto::chunker::{Chunker, ChunkerSeed, ConvergenceKey, chunk_key, seal_chunk};
use coffre_crypto::dirnode::{DirEntry, DirNode, EntryKind, EntryName, FileContent, Timestamp};
use coffre_crypto::envelope::{self, BlobKind, BlobRef};
use coffre_crypto::kdf::{CTX_CAEAD_COMMIT, CTX_CAEAD_KEY, CTX_ENVELOPE_NONCE, derive};
use coffre_crypto::keys::{BlobId, BlobKey, EpochKey, SpaceId};
use coffre_crypto::manifest::{ChunkRef, MAX_CHUNKS, Manifest};
use coffre_crypto::padding::{padded_len, padme};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

// ---------------------------------------------------------------------------------------------
// Helpers

fn vector_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/vectors")
        .join(name)
}

fn read<T: DeserializeOwned>(name: &str) -> Vec<T> {
    let text = std::fs::read_to_string(vector_path(name)).unwrap();
    let cases: Vec<T> = serde_json::from_str(&text).unwrap();
    assert!(!cases.is_empty(), "{name} has no cases");
    cases
}

fn write<T: Serialize>(name: &str, cases: &[T]) {
    let mut text = serde_json::to_string_pretty(cases).unwrap();
    text.push('\n');
    std::fs::write(vector_path(name), text).unwrap();
}

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text).unwrap()
}

fn unhex32(text: &str) -> [u8; 32] {
    unhex(text).try_into().unwrap()
}

fn class(result: Result<impl Sized, Error>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(Error::Malformed { .. }) => "malformed",
        Err(Error::Authentication) => "authentication",
        Err(Error::Integrity { .. }) => "integrity",
        Err(_) => "other",
    }
}

/// `len` pseudo-random bytes: the BLAKE3 XOF of `seed`.
fn pseudo_random(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = vec![0u8; len];
    blake3::Hasher::new()
        .update(seed)
        .finalize_xof()
        .fill(&mut out);
    out
}

/// The envelope of an arbitrary body, computed from FORMAT.md sections 3 and 4 without the
/// crate's envelope code.
fn seal_body(key: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let header = b"CFEN\x01";
    let enc_key = blake3::derive_key(CTX_CAEAD_KEY, key);
    let commitment = blake3::derive_key(CTX_CAEAD_COMMIT, key);
    let nonce_material = blake3::derive_key(CTX_ENVELOPE_NONCE, key);
    let nonce = XNonce::try_from(&nonce_material[..24]).unwrap();
    let ciphertext = XChaCha20Poly1305::new(&enc_key.into())
        .encrypt(
            &nonce,
            Payload {
                msg: body,
                aad: header,
            },
        )
        .unwrap();
    [&header[..], &commitment, &ciphertext].concat()
}

/// `kind ‖ content ‖ 0x80 ‖ 0x00…` padded to `body_len`.
fn body(kind: u8, content: &[u8], body_len: usize) -> Vec<u8> {
    let mut body = vec![kind];
    body.extend_from_slice(content);
    body.push(0x80);
    body.resize(body_len, 0);
    body
}

fn fixed_key(label: &str) -> [u8; 32] {
    *derive("coffre v1 test vectors", label.as_bytes()).expose_secret()
}

// ---------------------------------------------------------------------------------------------
// Schemas

#[derive(Serialize, Deserialize)]
struct PadmeCase {
    length: u64,
    padme: u64,
    padded_len: u64,
}

#[derive(Serialize, Deserialize)]
struct EnvelopeCase {
    name: String,
    key: String,
    kind: u8,
    content: String,
    envelope: String,
    id: String,
}

#[derive(Serialize, Deserialize)]
struct FailEnvelopeCase {
    name: String,
    key: String,
    kind: u8,
    envelope: String,
    /// When present, the case is opened with `open_verified` against this id.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    expected_id: Option<String>,
    error: String,
}

#[derive(Serialize, Deserialize)]
struct ChunkJson {
    id: String,
    key: String,
    length: u32,
}

#[derive(Serialize, Deserialize)]
struct ManifestCase {
    name: String,
    file_size: u64,
    chunks: Vec<ChunkJson>,
    /// The encoded manifest (the envelope content).
    content: String,
    key: String,
    envelope: String,
    id: String,
}

#[derive(Serialize, Deserialize)]
struct FailDecodeCase {
    name: String,
    content: String,
    error: String,
}

#[derive(Serialize, Deserialize)]
struct EntryJson {
    name: String,
    mtime_s: i64,
    mtime_ns: u32,
    /// `file`, `dir` or `symlink`.
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    mode: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    target: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct DirNodeCase {
    name: String,
    entries: Vec<EntryJson>,
    content: String,
    key: String,
    envelope: String,
    id: String,
}

#[derive(Serialize, Deserialize)]
struct ChunkKeyCase {
    name: String,
    space_id: String,
    epoch: u64,
    epoch_key: String,
    /// The chunker seed as 16 hex digits (a big-endian `u64`).
    chunker_seed: String,
    plaintext: String,
    chunk_key: String,
    chunk_id: String,
    /// When present: chunk boundaries (start offsets) of `input_len` bytes of the BLAKE3 XOF of
    /// `input_xof_seed` under this seed. Dedup-fixed rather than format-fixed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    input_xof_seed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    input_len: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    offsets: Option<Vec<u64>>,
}

// ---------------------------------------------------------------------------------------------
// Conversions

fn blob_ref(id: &str, key: &str) -> BlobRef {
    BlobRef {
        id: BlobId::from_bytes(unhex32(id)),
        key: BlobKey::from_bytes(unhex32(key)),
    }
}

fn manifest_of(case: &ManifestCase) -> Manifest {
    Manifest {
        file_size: case.file_size,
        chunks: case
            .chunks
            .iter()
            .map(|chunk| ChunkRef {
                id: BlobId::from_bytes(unhex32(&chunk.id)),
                key: BlobKey::from_bytes(unhex32(&chunk.key)),
                length: chunk.length,
            })
            .collect(),
    }
}

fn entry_of(json: &EntryJson) -> DirEntry {
    let kind = match json.kind.as_str() {
        "file" => EntryKind::File {
            content: FileContent::Manifest(blob_ref(
                json.id.as_ref().unwrap(),
                json.key.as_ref().unwrap(),
            )),
            size: json.size.unwrap(),
            mode: json.mode.unwrap(),
        },
        "chunk_file" => {
            let chunk = blob_ref(json.id.as_ref().unwrap(), json.key.as_ref().unwrap());
            EntryKind::File {
                content: FileContent::Chunk(ChunkRef {
                    id: chunk.id,
                    key: chunk.key,
                    length: u32::try_from(json.size.unwrap()).unwrap(),
                }),
                size: json.size.unwrap(),
                mode: json.mode.unwrap(),
            }
        }
        "dir" => EntryKind::Dir {
            node: blob_ref(json.id.as_ref().unwrap(), json.key.as_ref().unwrap()),
        },
        "symlink" => EntryKind::Symlink {
            target: json.target.clone().unwrap(),
        },
        other => panic!("unknown entry kind {other}"),
    };
    DirEntry {
        name: EntryName::new(&json.name).unwrap(),
        mtime: Timestamp::new(json.mtime_s, json.mtime_ns).unwrap(),
        kind,
    }
}

fn json_of(entry: &DirEntry) -> EntryJson {
    let mut json = EntryJson {
        name: entry.name.as_str().to_owned(),
        mtime_s: entry.mtime.secs(),
        mtime_ns: entry.mtime.nanos(),
        kind: String::new(),
        id: None,
        key: None,
        size: None,
        mode: None,
        target: None,
    };
    match &entry.kind {
        EntryKind::File {
            content,
            size,
            mode,
        } => {
            let (kind, id, key) = match content {
                FileContent::Manifest(manifest) => ("file", &manifest.id, &manifest.key),
                FileContent::Chunk(chunk) => ("chunk_file", &chunk.id, &chunk.key),
            };
            json.kind = kind.into();
            json.id = Some(id.to_hex());
            json.key = Some(hex::encode(key.expose_secret()));
            json.size = Some(*size);
            json.mode = Some(*mode);
        }
        EntryKind::Dir { node } => {
            json.kind = "dir".into();
            json.id = Some(node.id.to_hex());
            json.key = Some(hex::encode(node.key.expose_secret()));
        }
        EntryKind::Symlink { target } => {
            json.kind = "symlink".into();
            json.target = Some(target.clone());
        }
    }
    json
}

/// A raw `CFDR` entry, for crafting invalid nodes.
fn raw_entry(name: &[u8], kind: u8, secs: i64, nanos: u32, body: &[u8]) -> Vec<u8> {
    let mut out = (name.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(name);
    out.push(kind);
    out.extend_from_slice(&secs.to_be_bytes());
    out.extend_from_slice(&nanos.to_be_bytes());
    out.extend_from_slice(body);
    out
}

fn raw_dir(name: &[u8]) -> Vec<u8> {
    raw_entry(name, 0x02, 1, 2, &[0x11; 64])
}

fn raw_node(count: u32, entries: &[Vec<u8>]) -> Vec<u8> {
    let mut out = b"CFDR\x01".to_vec();
    out.extend_from_slice(&count.to_be_bytes());
    for entry in entries {
        out.extend_from_slice(entry);
    }
    out
}

fn raw_manifest(file_size: u64, count: u32, chunks: &[(u8, u32)]) -> Vec<u8> {
    let mut out = b"CFMF\x01".to_vec();
    out.extend_from_slice(&file_size.to_be_bytes());
    out.extend_from_slice(&count.to_be_bytes());
    for (byte, length) in chunks {
        out.extend_from_slice(&[*byte; 32]);
        out.extend_from_slice(&[byte ^ 0x5a; 32]);
        out.extend_from_slice(&length.to_be_bytes());
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Generator

fn envelope_case(name: &str, key: [u8; 32], kind: BlobKind, content: &[u8]) -> EnvelopeCase {
    let sealed = envelope::seal(&BlobKey::from_bytes(key), kind, content).unwrap();
    EnvelopeCase {
        name: name.into(),
        key: hex::encode(key),
        kind: kind.to_byte(),
        content: hex::encode(content),
        envelope: hex::encode(sealed.as_bytes()),
        id: sealed.id().to_hex(),
    }
}

fn fail_envelope(
    name: &str,
    key: [u8; 32],
    kind: u8,
    envelope: &[u8],
    error: &str,
) -> FailEnvelopeCase {
    FailEnvelopeCase {
        name: name.into(),
        key: hex::encode(key),
        kind,
        envelope: hex::encode(envelope),
        expected_id: None,
        error: error.into(),
    }
}

fn gen_envelopes() -> (Vec<EnvelopeCase>, Vec<FailEnvelopeCase>) {
    let key = fixed_key("envelope");
    let pass = vec![
        envelope_case("empty chunk", key, BlobKind::Chunk, b""),
        envelope_case("short chunk", key, BlobKind::Chunk, b"hello, coffre"),
        envelope_case(
            "254 bytes: exactly the floor",
            fixed_key("254"),
            BlobKind::Chunk,
            &pseudo_random(b"254", 254),
        ),
        envelope_case(
            "255 bytes: just above the floor",
            fixed_key("255"),
            BlobKind::Chunk,
            &pseudo_random(b"255", 255),
        ),
        envelope_case(
            "manifest kind",
            fixed_key("m"),
            BlobKind::Manifest,
            b"CFMF\x01",
        ),
        envelope_case(
            "directory node kind",
            fixed_key("d"),
            BlobKind::DirNode,
            &pseudo_random(b"d", 1000),
        ),
        envelope_case(
            "content ending in 0x80 0x00",
            fixed_key("tail"),
            BlobKind::Chunk,
            b"ab\x80\x00",
        ),
        envelope_case(
            "5000 bytes",
            fixed_key("5000"),
            BlobKind::Chunk,
            &pseudo_random(b"5000", 5000),
        ),
    ];

    let kind = BlobKind::Chunk.to_byte();
    let good =
        envelope::seal(&BlobKey::from_bytes(key), BlobKind::Chunk, b"hello, coffre").unwrap();
    let bytes = good.as_bytes().to_vec();
    let flip = |index: usize| {
        let mut out = bytes.clone();
        out[index] ^= 0x01;
        out
    };
    let last = bytes.len() - 1;
    let mut fail = vec![
        fail_envelope(
            "wrong magic",
            key,
            kind,
            &[b"CFEX", &bytes[4..]].concat(),
            "malformed",
        ),
        fail_envelope(
            "version 0x00",
            key,
            kind,
            &[b"CFEN\x00", &bytes[5..]].concat(),
            "malformed",
        ),
        fail_envelope(
            "version 0x02",
            key,
            kind,
            &[b"CFEN\x02", &bytes[5..]].concat(),
            "malformed",
        ),
        fail_envelope("empty", key, kind, b"", "malformed"),
        fail_envelope(
            "truncated inside the header",
            key,
            kind,
            &bytes[..3],
            "malformed",
        ),
        fail_envelope("header only", key, kind, &bytes[..5], "authentication"),
        fail_envelope(
            "truncated by one byte",
            key,
            kind,
            &bytes[..last],
            "authentication",
        ),
        fail_envelope(
            "truncated by 16 bytes (no tag)",
            key,
            kind,
            &bytes[..bytes.len() - 16],
            "authentication",
        ),
        fail_envelope(
            "one extra byte",
            key,
            kind,
            &[&bytes[..], &[0]].concat(),
            "authentication",
        ),
        fail_envelope(
            "flipped commitment byte",
            key,
            kind,
            &flip(5),
            "authentication",
        ),
        fail_envelope(
            "flipped ciphertext byte",
            key,
            kind,
            &flip(5 + 32 + 3),
            "authentication",
        ),
        fail_envelope("flipped tag byte", key, kind, &flip(last), "authentication"),
        fail_envelope(
            "wrong key",
            fixed_key("another key"),
            kind,
            &bytes,
            "authentication",
        ),
        fail_envelope(
            "wrong kind (chunk opened as directory node)",
            key,
            BlobKind::DirNode.to_byte(),
            &bytes,
            "authentication",
        ),
        fail_envelope(
            "wrong kind (chunk opened as manifest)",
            key,
            BlobKind::Manifest.to_byte(),
            &bytes,
            "authentication",
        ),
    ];
    let crafted: [(&str, Vec<u8>); 6] = [
        ("non-canonical padding: non-zero byte after the marker", {
            let mut b = body(kind, b"x", 256);
            b[200] = 0x01;
            b
        }),
        (
            "non-canonical padding: longer than padded_len",
            body(kind, b"x", 272),
        ),
        ("non-canonical padding: no 0x80 marker", {
            let mut b = body(kind, b"x", 256);
            b[2] = 0;
            b
        }),
        ("non-canonical padding: marker 0x81", {
            let mut b = body(kind, b"x", 256);
            b[2] = 0x81;
            b
        }),
        (
            "non-canonical padding: not a Padme length",
            body(kind, b"x", 257),
        ),
        ("unknown kind byte 0x04", body(0x04, b"x", 256)),
    ];
    let crafted_key = fixed_key("crafted");
    for (name, body) in crafted {
        fail.push(fail_envelope(
            name,
            crafted_key,
            kind,
            &seal_body(&crafted_key, &body),
            "authentication",
        ));
    }
    let mut swapped = fail_envelope(
        "envelope does not hash to the expected id",
        key,
        kind,
        &flip(5 + 32 + 3),
        "integrity",
    );
    swapped.expected_id = Some(good.id().to_hex());
    fail.push(swapped);
    let other =
        envelope::seal(&BlobKey::from_bytes(key), BlobKind::Chunk, b"another chunk").unwrap();
    let mut swapped = fail_envelope(
        "intact envelope of another blob (swap)",
        key,
        kind,
        other.as_bytes(),
        "integrity",
    );
    swapped.expected_id = Some(good.id().to_hex());
    fail.push(swapped);
    (pass, fail)
}

fn manifest_case(name: &str, manifest: &Manifest) -> ManifestCase {
    let key = fixed_key(name);
    let content = manifest.encode().unwrap();
    let sealed = envelope::seal(&BlobKey::from_bytes(key), BlobKind::Manifest, &content).unwrap();
    ManifestCase {
        name: name.into(),
        file_size: manifest.file_size,
        chunks: manifest
            .chunks
            .iter()
            .map(|chunk| ChunkJson {
                id: chunk.id.to_hex(),
                key: hex::encode(chunk.key.expose_secret()),
                length: chunk.length,
            })
            .collect(),
        content: hex::encode(&content[..]),
        key: hex::encode(key),
        envelope: hex::encode(sealed.as_bytes()),
        id: sealed.id().to_hex(),
    }
}

fn gen_manifests() -> (Vec<ManifestCase>, Vec<FailDecodeCase>) {
    let convergence = ConvergenceKey::derive(
        &SpaceId::from_bytes([0x5c; 32]),
        1,
        &EpochKey::from_bytes(fixed_key("epoch")),
    );
    let chunks: Vec<ChunkRef> = [&b"first chunk"[..], b"second", b"third and last"]
        .iter()
        .map(|data| seal_chunk(&convergence, data).unwrap().0)
        .collect();
    let pass = vec![
        manifest_case("empty file", &Manifest::from_chunks(Vec::new()).unwrap()),
        manifest_case("three chunks", &Manifest::from_chunks(chunks).unwrap()),
        manifest_case(
            "maximum chunk length",
            &Manifest::from_chunks(vec![ChunkRef {
                id: BlobId::from_bytes([1; 32]),
                key: BlobKey::from_bytes([2; 32]),
                length: 16 * 1024 * 1024,
            }])
            .unwrap(),
        ),
    ];
    let fail_case = |name: &str, content: Vec<u8>| FailDecodeCase {
        name: name.into(),
        content: hex::encode(content),
        error: "malformed".into(),
    };
    let good = raw_manifest(5, 2, &[(1, 2), (2, 3)]);
    let fail = vec![
        fail_case(
            "length sum below file_size",
            raw_manifest(6, 2, &[(1, 2), (2, 3)]),
        ),
        fail_case(
            "length sum above file_size",
            raw_manifest(4, 2, &[(1, 2), (2, 3)]),
        ),
        fail_case(
            "dropped chunk (sum mismatch)",
            raw_manifest(5, 1, &[(1, 2)]),
        ),
        fail_case("zero-length chunk", raw_manifest(2, 2, &[(1, 2), (2, 0)])),
        fail_case(
            "chunk longer than 16 MiB",
            raw_manifest(16_777_217, 1, &[(1, 16_777_217)]),
        ),
        fail_case("trailing bytes", [&good[..], &[0]].concat()),
        fail_case("truncated", good[..good.len() - 1].to_vec()),
        fail_case(
            "count above the input",
            raw_manifest(5, 3, &[(1, 2), (2, 3)]),
        ),
        fail_case(
            "count above the limit",
            raw_manifest(0, MAX_CHUNKS as u32 + 1, &[]),
        ),
        fail_case("wrong magic", [b"CFMX", &good[4..]].concat()),
        fail_case("wrong version", [b"CFMF\x02", &good[5..]].concat()),
        fail_case("empty", Vec::new()),
    ];
    (pass, fail)
}

fn dirnode_case(name: &str, node: &DirNode) -> DirNodeCase {
    let key = fixed_key(name);
    let content = node.encode().unwrap();
    let sealed = envelope::seal(&BlobKey::from_bytes(key), BlobKind::DirNode, &content).unwrap();
    DirNodeCase {
        name: name.into(),
        entries: node.entries.iter().map(json_of).collect(),
        content: hex::encode(&content[..]),
        key: hex::encode(key),
        envelope: hex::encode(sealed.as_bytes()),
        id: sealed.id().to_hex(),
    }
}

fn gen_dirnodes() -> (Vec<DirNodeCase>, Vec<FailDecodeCase>) {
    let blob = |label: &str| BlobRef {
        id: BlobId::from_bytes(fixed_key(&format!("{label} id"))),
        key: BlobKey::from_bytes(fixed_key(&format!("{label} key"))),
    };
    let entry = |name: &str, secs: i64, nanos: u32, kind: EntryKind| DirEntry {
        name: EntryName::new(name).unwrap(),
        mtime: Timestamp::new(secs, nanos).unwrap(),
        kind,
    };
    let mixed = DirNode::new(vec![
        entry(
            "notes.txt",
            1_700_000_000,
            123_456_789,
            EntryKind::File {
                content: FileContent::Manifest(blob("notes")),
                size: 5,
                mode: 0o644,
            },
        ),
        entry(
            "one-chunk.bin",
            1_700_000_001,
            5,
            EntryKind::File {
                content: {
                    let chunk = blob("one-chunk");
                    FileContent::Chunk(ChunkRef {
                        id: chunk.id,
                        key: chunk.key,
                        length: 1000,
                    })
                },
                size: 1000,
                mode: 0o600,
            },
        ),
        entry(
            "Photos",
            1_600_000_000,
            0,
            EntryKind::Dir {
                node: blob("photos"),
            },
        ),
        entry(
            "latest",
            -1,
            999_999_999,
            EntryKind::Symlink {
                target: "Photos/2024/../2025".into(),
            },
        ),
        entry(
            "été",
            0,
            1,
            EntryKind::File {
                content: FileContent::Manifest(blob("ete")),
                size: 0,
                mode: 0o7777,
            },
        ),
        entry("...", 2, 2, EntryKind::Dir { node: blob("dots") }),
    ])
    .unwrap();
    let pass = vec![
        dirnode_case("empty directory", &DirNode::default()),
        dirnode_case("mixed entries", &mixed),
    ];
    let fail_case = |name: &str, content: Vec<u8>| FailDecodeCase {
        name: name.into(),
        content: hex::encode(content),
        error: "malformed".into(),
    };
    let symlink = |target: &[u8]| {
        let mut body = (target.len() as u16).to_be_bytes().to_vec();
        body.extend_from_slice(target);
        body
    };
    let file_of = |size: u64, mode: u32| {
        let mut body = vec![0x22; 64];
        body.extend_from_slice(&size.to_be_bytes());
        body.extend_from_slice(&mode.to_be_bytes());
        body
    };
    let file = |mode: u32| file_of(7, mode);
    let good = raw_node(2, &[raw_dir(b"a"), raw_dir(b"b")]);
    let fail = vec![
        fail_case(
            "unsorted names",
            raw_node(2, &[raw_dir(b"b"), raw_dir(b"a")]),
        ),
        fail_case(
            "duplicate names",
            raw_node(2, &[raw_dir(b"a"), raw_dir(b"a")]),
        ),
        fail_case("name ..", raw_node(1, &[raw_dir(b"..")])),
        fail_case("name .", raw_node(1, &[raw_dir(b".")])),
        fail_case("name with /", raw_node(1, &[raw_dir(b"a/b")])),
        fail_case("name with NUL", raw_node(1, &[raw_dir(b"a\0b")])),
        fail_case("empty name", raw_node(1, &[raw_dir(b"")])),
        fail_case("name of 256 bytes", raw_node(1, &[raw_dir(&[b'x'; 256])])),
        fail_case("name not UTF-8", raw_node(1, &[raw_dir(b"\xff\xfe")])),
        fail_case(
            "nanos too large",
            raw_node(1, &[raw_entry(b"a", 0x02, 0, 1_000_000_000, &[0x11; 64])]),
        ),
        fail_case(
            "mode beyond 0o7777",
            raw_node(1, &[raw_entry(b"f", 0x01, 0, 0, &file(0o10644))]),
        ),
        fail_case(
            "empty symlink target",
            raw_node(1, &[raw_entry(b"l", 0x03, 0, 0, &symlink(b""))]),
        ),
        fail_case(
            "symlink target with NUL",
            raw_node(1, &[raw_entry(b"l", 0x03, 0, 0, &symlink(b"a\0"))]),
        ),
        fail_case(
            "symlink target of 4097 bytes",
            raw_node(1, &[raw_entry(b"l", 0x03, 0, 0, &symlink(&[b'x'; 4097]))]),
        ),
        fail_case(
            "unknown entry kind",
            raw_node(1, &[raw_entry(b"a", 0x05, 0, 0, &[0x11; 64])]),
        ),
        fail_case(
            "one-chunk file of size 0",
            raw_node(1, &[raw_entry(b"f", 0x04, 0, 0, &file_of(0, 0o644))]),
        ),
        fail_case(
            "one-chunk file above the longest chunk",
            raw_node(
                1,
                &[raw_entry(b"f", 0x04, 0, 0, &file_of(16_777_217, 0o644))],
            ),
        ),
        fail_case(
            "one-chunk file mode beyond 0o7777",
            raw_node(1, &[raw_entry(b"f", 0x04, 0, 0, &file_of(7, 0o10644))]),
        ),
        fail_case("trailing bytes", [&good[..], &[0]].concat()),
        fail_case("truncated", good[..good.len() - 1].to_vec()),
        fail_case("count above the limit", raw_node(65_537, &[])),
        fail_case(
            "count above the input",
            raw_node(3, &[raw_dir(b"a"), raw_dir(b"b")]),
        ),
        fail_case("wrong magic", [b"CFMF", &good[4..]].concat()),
        fail_case("wrong version", [b"CFDR\x00", &good[5..]].concat()),
    ];
    (pass, fail)
}

fn chunk_key_case(
    name: &str,
    space: [u8; 32],
    epoch: u64,
    label: &str,
    plaintext: &[u8],
    boundaries: Option<(&[u8], usize)>,
) -> ChunkKeyCase {
    let epoch_key = fixed_key(label);
    let ek = EpochKey::from_bytes(epoch_key);
    let space_id = SpaceId::from_bytes(space);
    let seed = ChunkerSeed::derive(&space_id, epoch, &ek);
    let convergence = ConvergenceKey::derive(&space_id, epoch, &ek);
    let (reference, _) = seal_chunk(&convergence, plaintext).unwrap();
    let offsets = boundaries.map(|(xof_seed, len)| {
        Chunker::new(&pseudo_random(xof_seed, len)[..], &seed)
            .map(|chunk| chunk.unwrap().offset)
            .collect()
    });
    ChunkKeyCase {
        name: name.into(),
        space_id: hex::encode(space),
        epoch,
        epoch_key: hex::encode(epoch_key),
        chunker_seed: format!("{:016x}", seed.expose_secret()),
        plaintext: hex::encode(plaintext),
        chunk_key: hex::encode(reference.key.expose_secret()),
        chunk_id: reference.id.to_hex(),
        input_xof_seed: boundaries.map(|(xof_seed, _)| hex::encode(xof_seed)),
        input_len: boundaries.map(|(_, len)| len),
        offsets,
    }
}

fn gen_chunk_keys() -> Vec<ChunkKeyCase> {
    let plaintext = b"the same chunk in three trust domains";
    vec![
        chunk_key_case(
            "space A, epoch 1",
            [0xa1; 32],
            1,
            "ek A1",
            plaintext,
            Some((b"chunker vector", 6 << 20)),
        ),
        chunk_key_case(
            "space B, epoch 1, same plaintext",
            [0xb1; 32],
            1,
            "ek A1",
            plaintext,
            None,
        ),
        chunk_key_case(
            "space A, epoch 2, same plaintext",
            [0xa1; 32],
            2,
            "ek A1",
            plaintext,
            None,
        ),
        chunk_key_case(
            "large chunk",
            [0xa1; 32],
            1,
            "ek A1",
            &pseudo_random(b"large", 4000),
            Some((b"second chunker vector", 3 << 20)),
        ),
    ]
}

#[test]
fn write_vectors() {
    if std::env::var("COFFRE_WRITE_VECTORS").as_deref() != Ok("1") {
        return;
    }
    std::fs::create_dir_all(vector_path("")).unwrap();
    let padme_cases: Vec<PadmeCase> = [
        2u64,
        3,
        9,
        100,
        254,
        255,
        256,
        257,
        1000,
        4096,
        65_537,
        1_000_000,
        1 << 20,
        (1 << 20) + 1,
        16_777_218,
        1 << 40,
        (1 << 40) + 1,
    ]
    .iter()
    .map(|&length| PadmeCase {
        length,
        padme: padme(length),
        padded_len: padded_len(length),
    })
    .collect();
    write("padme.json", &padme_cases);
    let (pass, fail) = gen_envelopes();
    write("envelope.json", &pass);
    write("fail_envelope.json", &fail);
    let (pass, fail) = gen_manifests();
    write("manifest.json", &pass);
    write("fail_manifest.json", &fail);
    let (pass, fail) = gen_dirnodes();
    write("dirnode.json", &pass);
    write("fail_dirnode.json", &fail);
    write("chunk_keys.json", &gen_chunk_keys());
}

// ---------------------------------------------------------------------------------------------
// Checks

#[test]
fn padme_vectors() {
    for case in read::<PadmeCase>("padme.json") {
        assert_eq!(padme(case.length), case.padme, "padme({})", case.length);
        assert_eq!(
            padded_len(case.length),
            case.padded_len,
            "padded_len({})",
            case.length
        );
    }
}

#[test]
fn envelope_vectors() {
    for case in read::<EnvelopeCase>("envelope.json") {
        let key = unhex32(&case.key);
        let kind = BlobKind::from_byte(case.kind).unwrap();
        let content = unhex(&case.content);
        let expected = unhex(&case.envelope);
        let sealed = envelope::seal(&BlobKey::from_bytes(key), kind, &content).unwrap();
        assert_eq!(sealed.as_bytes(), &expected[..], "{}", case.name);
        assert_eq!(sealed.id().to_hex(), case.id, "{}", case.name);
        let body_len = padded_len(content.len() as u64) as usize;
        assert_eq!(
            seal_body(&key, &body(case.kind, &content, body_len)),
            expected,
            "{}: spec",
            case.name
        );
        let id = BlobId::from_hex(&case.id).unwrap();
        let opened =
            envelope::open_verified(&id, &BlobKey::from_bytes(key), kind, &expected).unwrap();
        assert_eq!(opened, content, "{}", case.name);
    }
}

#[test]
fn fail_envelope_vectors() {
    for case in read::<FailEnvelopeCase>("fail_envelope.json") {
        let key = BlobKey::from_bytes(unhex32(&case.key));
        let kind = BlobKind::from_byte(case.kind).unwrap();
        let bytes = unhex(&case.envelope);
        let result = match &case.expected_id {
            Some(id) => envelope::open_verified(&BlobId::from_hex(id).unwrap(), &key, kind, &bytes),
            None => envelope::open(&key, kind, &bytes),
        };
        assert_eq!(class(result), case.error, "{}", case.name);
    }
}

#[test]
fn manifest_vectors() {
    for case in read::<ManifestCase>("manifest.json") {
        let manifest = manifest_of(&case);
        let content = unhex(&case.content);
        assert_eq!(
            &manifest.encode().unwrap()[..],
            &content[..],
            "{}",
            case.name
        );
        assert_eq!(
            Manifest::decode(&content).unwrap(),
            manifest,
            "{}",
            case.name
        );
        let key = unhex32(&case.key);
        let sealed =
            envelope::seal(&BlobKey::from_bytes(key), BlobKind::Manifest, &content).unwrap();
        assert_eq!(
            hex::encode(sealed.as_bytes()),
            case.envelope,
            "{}",
            case.name
        );
        assert_eq!(sealed.id().to_hex(), case.id, "{}", case.name);
        let opened =
            Manifest::open(&blob_ref(&case.id, &case.key), &unhex(&case.envelope)).unwrap();
        assert_eq!(opened, manifest, "{}", case.name);
    }
}

#[test]
fn fail_manifest_vectors() {
    for case in read::<FailDecodeCase>("fail_manifest.json") {
        assert_eq!(
            class(Manifest::decode(&unhex(&case.content))),
            case.error,
            "{}",
            case.name
        );
    }
}

#[test]
fn dirnode_vectors() {
    for case in read::<DirNodeCase>("dirnode.json") {
        let node = DirNode::new(case.entries.iter().map(entry_of).collect()).unwrap();
        let content = unhex(&case.content);
        assert_eq!(&node.encode().unwrap()[..], &content[..], "{}", case.name);
        assert_eq!(DirNode::decode(&content).unwrap(), node, "{}", case.name);
        let key = unhex32(&case.key);
        let sealed =
            envelope::seal(&BlobKey::from_bytes(key), BlobKind::DirNode, &content).unwrap();
        assert_eq!(
            hex::encode(sealed.as_bytes()),
            case.envelope,
            "{}",
            case.name
        );
        assert_eq!(sealed.id().to_hex(), case.id, "{}", case.name);
        let opened = DirNode::open(&blob_ref(&case.id, &case.key), &unhex(&case.envelope)).unwrap();
        assert_eq!(opened, node, "{}", case.name);
    }
}

#[test]
fn fail_dirnode_vectors() {
    for case in read::<FailDecodeCase>("fail_dirnode.json") {
        assert_eq!(
            class(DirNode::decode(&unhex(&case.content))),
            case.error,
            "{}",
            case.name
        );
    }
}

#[test]
fn chunk_key_vectors() {
    for case in read::<ChunkKeyCase>("chunk_keys.json") {
        let space = SpaceId::from_bytes(unhex32(&case.space_id));
        let ek = EpochKey::from_bytes(unhex32(&case.epoch_key));
        let seed = ChunkerSeed::derive(&space, case.epoch, &ek);
        assert_eq!(
            format!("{:016x}", seed.expose_secret()),
            case.chunker_seed,
            "{}",
            case.name
        );
        // Independently: the first 8 bytes, big-endian, of KDF(CTX_CHUNKER_SEED, EPOCH(...)).
        let material = [
            &space.as_bytes()[..],
            &case.epoch.to_be_bytes(),
            ek.expose_secret(),
        ]
        .concat();
        let spec_seed = blake3::derive_key(coffre_crypto::kdf::CTX_CHUNKER_SEED, &material);
        assert_eq!(
            hex::encode(&spec_seed[..8]),
            case.chunker_seed,
            "{}: spec",
            case.name
        );

        let convergence = ConvergenceKey::derive(&space, case.epoch, &ek);
        let plaintext = unhex(&case.plaintext);
        assert_eq!(
            hex::encode(chunk_key(&convergence, &plaintext).expose_secret()),
            case.chunk_key,
            "{}",
            case.name
        );
        let (reference, sealed) = seal_chunk(&convergence, &plaintext).unwrap();
        assert_eq!(reference.id.to_hex(), case.chunk_id, "{}", case.name);
        assert_eq!(
            envelope::blob_id(sealed.as_bytes()).to_hex(),
            case.chunk_id,
            "{}",
            case.name
        );

        if let (Some(xof_seed), Some(len), Some(offsets)) =
            (&case.input_xof_seed, case.input_len, &case.offsets)
        {
            let input = pseudo_random(&unhex(xof_seed), len);
            let actual: Vec<u64> = Chunker::new(&input[..], &seed)
                .map(|chunk| chunk.unwrap().offset)
                .collect();
            assert_eq!(&actual, offsets, "{}: boundaries", case.name);
            assert!(
                offsets.len() > 2,
                "{}: boundaries vector too small",
                case.name
            );
        }
    }
}
