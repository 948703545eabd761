//! Collaboration end to end: the `coffre` binary against the real gateway (in process, TLS on
//! 127.0.0.1, files backend on disk), several users each with their own COFFRE_HOME.
//!
//! 1. The README's two-person walkthrough and more: alice shares with bob (writer), both edit
//!    different files concurrently and both edits survive; carol joins as reader and cannot
//!    write; alice removes bob, and a file written afterwards opens with no key bob's own
//!    keystore ever held, while bob keeps what he downloaded and can no longer commit; roles,
//!    leaving, contacts; then the operator-blindness scan of every byte the gateway stored.
//! 2. A malicious operator: it substitutes the keys of a verified and of a pinned contact
//!    (detected, nothing is shared), and injects membership entries signed by a non-admin and by
//!    a key that is no member, and a commit signed by a reader (every client refuses the space).

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use coffre_crypto::device::{
    DeviceAction, DeviceCertificate, DeviceEntry, DeviceEntryHash, DeviceSigner,
};
use coffre_crypto::identity::{Handle, IdentitySecret};
use coffre_crypto::keys::{SigningSecret, SpaceId};
use coffre_crypto::membership::{Action, MembershipLog, Role, UnsignedEntry};
use coffre_crypto::passphrase::Passphrase;
use coffre_gateway::store::Stores;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const PASSPHRASE: &str = "correct horse battery staple zq";
const SPACE_NAME: &str = "Budget-Committee-zq";
const MARKERS: [&str; 4] = [
    "PLAN-MARKER-c0ffre-71ab",
    "ALICE-EDIT-MARKER-c0ffre-2c9d",
    "BOB-EDIT-MARKER-c0ffre-8e41",
    "AFTER-REMOVAL-MARKER-c0ffre-d5f0",
];
const FILE_NAMES: [&str; 4] = [
    "plan-zq.txt",
    "alice-notes-zq.txt",
    "bob-notes-zq.txt",
    "after-removal-zq.txt",
];

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// A gateway serving `data_dir` on 127.0.0.1 in this process; restartable on the same port.
struct Gateway {
    url: String,
    port: u16,
    pin: String,
    data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// Opens the stores of `data_dir`, waiting for a stopped instance to release them.
fn open_stores(data_dir: &Path) -> Stores {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match Stores::open(data_dir, coffre_gateway::config::BlobBackend::Files) {
            Ok(stores) => return stores,
            Err(error) if Instant::now() < deadline => {
                eprintln!("reopening the gateway's stores: {error}; retrying");
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(error) => panic!("cannot open the gateway's stores: {error}"),
        }
    }
}

impl Gateway {
    fn start(runtime: &tokio::runtime::Runtime, data_dir: &Path, port: u16) -> Gateway {
        let config = coffre_gateway::Config {
            data_dir: data_dir.to_path_buf(),
            ..Default::default()
        };
        let listener = runtime
            .block_on(TcpListener::bind(("127.0.0.1", port)))
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let tls = coffre_gateway::tls::load_or_generate(&config).unwrap();
        let pin = tls.fingerprint.to_colon_hex();
        let stores = open_stores(data_dir);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            coffre_gateway::server::run_with_tls(listener, config, stores, tls, shutdown)
                .await
                .unwrap();
        });
        Gateway {
            url: format!("https://127.0.0.1:{port}"),
            port,
            pin,
            data_dir: data_dir.to_path_buf(),
            stop: Some(stop),
            task: Some(task),
        }
    }

    fn stop(&mut self, runtime: &tokio::runtime::Runtime) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            runtime
                .block_on(async { tokio::time::timeout(Duration::from_secs(30), task).await })
                .expect("the gateway stops")
                .unwrap();
        }
    }

    /// Stops the gateway, lets `tamper` edit its data directory as a malicious operator would,
    /// and starts it again on the same port and data.
    fn tamper(&mut self, runtime: &tokio::runtime::Runtime, tamper: impl FnOnce(&Path)) {
        self.stop(runtime);
        tamper(&self.data_dir);
        *self = Gateway::start(runtime, &self.data_dir.clone(), self.port);
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON document ({e}): {:?}", self.stdout))
    }
}

struct Running {
    args: Vec<String>,
    child: Child,
    out: PathBuf,
    err: PathBuf,
    _logs: tempfile::TempDir,
}

fn spawn(home: &Path, args: &[&str]) -> Running {
    let logs = tempfile::tempdir().unwrap();
    let (out, err) = (logs.path().join("out"), logs.path().join("err"));
    let child = Command::new(env!("CARGO_BIN_EXE_coffre"))
        .args(args)
        .env("COFFRE_HOME", home)
        .env("COFFRE_PASSPHRASE", PASSPHRASE)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    Running {
        args: args.iter().map(|arg| (*arg).to_owned()).collect(),
        child,
        out,
        err,
        _logs: logs,
    }
}

impl Running {
    fn wait(mut self) -> Run {
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("coffre {:?} did not finish in time", self.args);
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        Run {
            code: status.code().unwrap_or(-1),
            stdout: std::fs::read_to_string(&self.out).unwrap(),
            stderr: std::fs::read_to_string(&self.err).unwrap(),
        }
    }
}

fn coffre(home: &Path, args: &[&str]) -> Run {
    spawn(home, args).wait()
}

fn require_code(args: &[&str], run: Run, code: i32) -> Run {
    assert_eq!(
        run.code, code,
        "coffre {args:?}: expected exit {code}\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

fn ok(home: &Path, args: &[&str]) -> Run {
    require_code(args, coffre(home, args), 0)
}

fn fails(home: &Path, args: &[&str], code: i32) -> Run {
    require_code(args, coffre(home, args), code)
}

fn init(home: &Path, gateway: &Gateway, handle: &str) {
    ok(
        home,
        &[
            "init",
            "--server",
            &gateway.url,
            "--handle",
            handle,
            "--pin",
            &gateway.pin,
        ],
    );
}

/// The names in a `ls --json` listing.
fn names(listing: &Value) -> Vec<String> {
    let mut names: Vec<String> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

/// `(handle, role)` of each member in a `members --json` document.
fn members(doc: &Value) -> Vec<(String, String)> {
    let mut members: Vec<(String, String)> = doc["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["handle"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    members.sort();
    members
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Every file under `dir` (the operator's view), as bytes.
fn all_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Unlocks the keystore in `home` in this process (the test plays that user's own software).
fn unlock(home: &Path) -> coffre_sdk::keystore::Unlocked {
    let home = coffre_sdk::home::Home::at(home);
    coffre_sdk::keystore::Keystore::load(&home.keystore_path())
        .unwrap()
        .unlock(&Passphrase::new(PASSPHRASE.to_owned()))
        .unwrap()
}

/// alice's verified view of the space: its log and the head commit, through her own SDK.
fn alice_view(
    runtime: &tokio::runtime::Runtime,
    alice: &Path,
    space: &SpaceId,
) -> (MembershipLog, coffre_crypto::commit::Commit) {
    runtime.block_on(async {
        let home = coffre_sdk::home::Home::at(alice);
        let client = coffre_sdk::client::Client::open(&home, Passphrase::new(PASSPHRASE.into()))
            .await
            .unwrap();
        let space = client.open_space(space).await.unwrap();
        let head = coffre_sdk::history::History::new(space.context())
            .head()
            .await
            .unwrap()
            .unwrap();
        (space.log().clone(), head)
    })
}

#[test]
fn two_people_share_edit_concurrently_add_a_reader_remove_and_stay_blind() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let mut gateway = Gateway::start(&runtime, &data, 0);
    let [alice, bob, carol] = ["alice", "bob", "carol"].map(|who| dir.path().join(who));
    for (home, handle) in [(&alice, "alice"), (&bob, "bob"), (&carol, "carol")] {
        init(home, &gateway, handle);
    }
    let files = dir.path().join("files");
    std::fs::create_dir_all(&files).unwrap();

    // alice creates a space with a file and shares it with bob as writer.
    let id = ok(&alice, &["--json", "space", "create", SPACE_NAME]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let plan = write(&files, FILE_NAMES[0], MARKERS[0]);
    ok(
        &alice,
        &["put", plan.to_str().unwrap(), &format!("{SPACE_NAME}:/")],
    );
    let shared = ok(
        &alice,
        &["--json", "share", SPACE_NAME, "bob", "--role", "writer"],
    )
    .json();
    assert_eq!(shared["role"], "writer");
    assert_eq!(shared["key_status"], "new");
    assert_eq!(shared["safety_number"].as_str().unwrap().len(), 60 + 11);

    // bob sees the invitation, accepts it by name, and reads the file.
    let invites = ok(&bob, &["--json", "invites"]).json();
    assert_eq!(invites.as_array().unwrap().len(), 1, "{invites}");
    assert_eq!(invites[0]["name"], SPACE_NAME);
    assert_eq!(invites[0]["space"], id.as_str());
    assert_eq!(invites[0]["role"], "writer");
    assert_eq!(invites[0]["from"]["handle"], "alice");
    let human = ok(&bob, &["invites"]).stdout;
    assert!(
        human.contains(SPACE_NAME) && human.contains("alice"),
        "{human}"
    );
    let accepted = ok(&bob, &["--json", "accept", SPACE_NAME]).json();
    assert_eq!(accepted["role"], "writer");
    assert_eq!(accepted["space"], id.as_str());
    assert_eq!(
        ok(&bob, &["--json", "invites"]).json(),
        serde_json::json!([])
    );
    // Sharing again resends the invitation (say the first was lost); bob declines the copy.
    // Another role is not a resend: that is `members --role`.
    ok(&alice, &["share", SPACE_NAME, "bob", "--role", "writer"]);
    let again = ok(&bob, &["--json", "invites"]).json();
    assert_eq!(again.as_array().unwrap().len(), 1, "{again}");
    ok(&bob, &["decline", SPACE_NAME]);
    assert_eq!(
        ok(&bob, &["--json", "invites"]).json(),
        serde_json::json!([])
    );
    fails(&alice, &["share", SPACE_NAME, "bob", "--role", "reader"], 5);
    let bob_copy = dir.path().join("bob-copy");
    ok(
        &bob,
        &[
            "get",
            &format!("{SPACE_NAME}:/"),
            bob_copy.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(bob_copy.join(FILE_NAMES[0])).unwrap(),
        MARKERS[0]
    );
    // The two see the same safety number.
    let alice_sees = ok(&alice, &["--json", "contacts"]).json();
    let bob_sees = ok(&bob, &["--json", "contacts"]).json();
    assert_eq!(alice_sees[0]["handle"], "bob");
    assert_eq!(bob_sees[0]["handle"], "alice");
    assert_eq!(alice_sees[0]["safety_number"], bob_sees[0]["safety_number"]);

    // Both edit different files at the same time: both edits survive.
    let alice_file = write(&files, FILE_NAMES[1], MARKERS[1]);
    let bob_file = write(&files, FILE_NAMES[2], MARKERS[2]);
    let dest = format!("{SPACE_NAME}:/");
    let alice_put = spawn(&alice, &["put", alice_file.to_str().unwrap(), &dest]);
    let bob_put = spawn(&bob, &["put", bob_file.to_str().unwrap(), &dest]);
    for run in [alice_put.wait(), bob_put.wait()] {
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let listing = ok(&bob, &["--json", "ls", SPACE_NAME]).json();
    assert_eq!(
        names(&listing),
        [FILE_NAMES[1], FILE_NAMES[2], FILE_NAMES[0]]
    );

    // carol joins as reader (accepting by id): she reads, and cannot write.
    ok(&alice, &["share", SPACE_NAME, "carol", "--role", "reader"]);
    ok(&carol, &["accept", &id]);
    let carol_copy = dir.path().join("carol-copy");
    ok(
        &carol,
        &[
            "get",
            &format!("{SPACE_NAME}:/{}", FILE_NAMES[2]),
            carol_copy.to_str().unwrap(),
        ],
    );
    assert_eq!(std::fs::read_to_string(&carol_copy).unwrap(), MARKERS[2]);
    let carol_file = write(&files, "carol-zq.txt", "carol was here");
    let refused = fails(
        &carol,
        &[
            "put",
            carol_file.to_str().unwrap(),
            &format!("{SPACE_NAME}:/"),
        ],
        3,
    );
    assert!(refused.stderr.contains("reader"), "{}", refused.stderr);
    fails(&carol, &["mkdir", &format!("{SPACE_NAME}:/carol")], 3);
    // A writer cannot manage members.
    fails(&bob, &["members", SPACE_NAME, "--remove", "carol"], 3);
    let listed = ok(&alice, &["--json", "members", SPACE_NAME]).json();
    assert_eq!(
        members(&listed),
        pairs(&[("alice", "owner"), ("bob", "writer"), ("carol", "reader")])
    );

    // alice removes bob; the key rotates; what she writes next bob cannot read.
    let epoch_before = listed["epoch"].as_u64().unwrap();
    let removed = ok(
        &alice,
        &["--json", "members", SPACE_NAME, "--remove", "bob"],
    )
    .json();
    assert_eq!(removed["epoch"].as_u64().unwrap(), epoch_before + 1);
    assert_eq!(
        members(&removed),
        pairs(&[("alice", "owner"), ("carol", "reader")])
    );
    let after = write(&files, FILE_NAMES[3], MARKERS[3]);
    ok(
        &alice,
        &["put", after.to_str().unwrap(), &format!("{SPACE_NAME}:/")],
    );
    // bob: the gateway no longer serves him, and his SDK refuses to commit.
    let bob_file_2 = write(&files, "bob-again-zq.txt", "bob again");
    fails(
        &bob,
        &[
            "put",
            bob_file_2.to_str().unwrap(),
            &format!("{SPACE_NAME}:/"),
        ],
        3,
    );
    let bob_after = dir.path().join("bob-after");
    let denied = coffre(
        &bob,
        &[
            "get",
            &format!("{id}:/{}", FILE_NAMES[3]),
            bob_after.to_str().unwrap(),
        ],
    );
    assert_ne!(denied.code, 0);
    assert!(!bob_after.exists());
    // What bob downloaded before is still his.
    assert_eq!(
        std::fs::read_to_string(bob_copy.join(FILE_NAMES[0])).unwrap(),
        MARKERS[0]
    );
    // With every key bob's own keystore can open, the new head does not open; the keys
    // bob had do open the commits of his time (so these are the right keys).
    let space_id = SpaceId::from_hex(&id).unwrap();
    let (log, head) = alice_view(&runtime, &alice, &space_id);
    let bob_keys = unlock(&bob);
    let mut opened_epochs = Vec::new();
    for epoch in 1..=log.state().epoch() {
        if let Ok(key) = log.epoch_key(epoch, bob_keys.secret()) {
            opened_epochs.push(epoch);
            assert!(
                head.open_root(&key).is_err(),
                "bob's epoch-{epoch} key opens the commit written after his removal"
            );
        }
    }
    assert_eq!(opened_epochs, (1..=epoch_before).collect::<Vec<_>>());
    assert_eq!(head.epoch(), epoch_before + 1);

    // Roles: carol becomes writer and writes; then she leaves and the key rotates again.
    ok(
        &alice,
        &["members", SPACE_NAME, "--role", "carol", "writer"],
    );
    ok(
        &carol,
        &[
            "put",
            carol_file.to_str().unwrap(),
            &format!("{SPACE_NAME}:/"),
        ],
    );
    ok(&carol, &["leave", SPACE_NAME]);
    let last = ok(&alice, &["--json", "members", SPACE_NAME]).json();
    assert_eq!(members(&last), pairs(&[("alice", "owner")]));
    assert_eq!(last["epoch"].as_u64().unwrap(), epoch_before + 2);
    fails(&alice, &["leave", SPACE_NAME], 2);
    let listing = ok(&alice, &["--json", "ls", SPACE_NAME]).json();
    assert_eq!(names(&listing).len(), 5);

    // Contacts: verify bob after comparing safety numbers.
    let verified = ok(&alice, &["--json", "contacts", "verify", "bob", "--yes"]).json();
    assert_eq!(verified["verified"], true);
    let contacts = ok(&alice, &["--json", "contacts"]).json();
    let bob_row = contacts
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["handle"] == "bob")
        .unwrap();
    assert_eq!(bob_row["verified"], true);
    // Without --yes and without a terminal, verification asks for it.
    fails(&alice, &["contacts", "verify", "carol"], 2);

    // Operator blindness: nothing the gateway stored shows contents, names or passphrases.
    gateway.stop(&runtime);
    let stored = all_bytes(&data);
    assert!(!stored.is_empty());
    let mut needles: Vec<&str> = MARKERS.to_vec();
    needles.extend(FILE_NAMES);
    needles.extend([SPACE_NAME, PASSPHRASE, "carol was here"]);
    for (path, bytes) in &stored {
        for needle in &needles {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "{needle:?} found in {}",
                path.display()
            );
        }
    }
}

/// A fresh identity under `handle` with a certified device: what a malicious operator would
/// make to impersonate that user.
fn forged_user(
    handle: &str,
) -> (
    IdentitySecret,
    coffre_crypto::identity::Identity,
    DeviceSigner,
) {
    let secret = IdentitySecret::generate().unwrap();
    let identity = secret.certify(&Handle::parse(handle).unwrap(), 1).unwrap();
    let device = SigningSecret::generate().unwrap();
    let entry = DeviceEntry::sign(
        secret.sign_secret(),
        0,
        DeviceEntryHash::from_bytes([0; 32]),
        DeviceAction::Add,
        &device.public_key(),
        1,
    )
    .unwrap();
    let signer = DeviceSigner::new(DeviceCertificate::try_from(entry).unwrap(), device).unwrap();
    (secret, identity, signer)
}

/// The operator replaces `handle`'s identity and device chain in its database (the stores have
/// no "replace account" operation, since no honest gateway needs one: it edits sled directly).
fn substitute_account(data_dir: &Path, handle: &str) {
    use coffre_gateway::store::record::{decode_account, encode_account};
    let db = coffre_gateway::store::open_db(&data_dir.join("db")).unwrap();
    let accounts = db.open_tree("accounts").unwrap();
    let mut record = decode_account(&accounts.get(handle.as_bytes()).unwrap().unwrap()).unwrap();
    let (_, identity, signer) = forged_user(handle);
    record.identity = identity.encoded().to_vec();
    record.device_chain = vec![signer.certificate().encoded().to_vec()];
    accounts
        .insert(handle.as_bytes(), encode_account(&record))
        .unwrap();
    db.flush().unwrap();
}

/// The operator appends a membership entry without any verification.
fn inject_entry(
    data_dir: &Path,
    space: &SpaceId,
    signer: &DeviceSigner,
    member: &coffre_crypto::identity::Identity,
) {
    let stores = open_stores(data_dir);
    let record = stores.meta.space(space).unwrap().unwrap();
    let entries = stores.meta.membership_entries(space, 0, 1000).unwrap();
    let log = MembershipLog::decode_and_verify(&entries).unwrap();
    let state = log.state();
    let forged = UnsignedEntry {
        space_id: *space,
        seq: state.seq() + 1,
        prev_hash: state.head(),
        commit_seq: record.head_seq,
        epoch: state.epoch(),
        action: Action::Add {
            member: member.clone(),
            role: Role::Admin,
        },
        epoch_commitment: *state.epoch_commitment(),
        wraps: vec![],
        prev_epoch_seal: vec![],
    }
    .sign(signer)
    .unwrap();
    stores
        .meta
        .append_membership(
            space,
            record.membership_len,
            record.head_seq,
            forged.encoded(),
            &record.members,
        )
        .unwrap();
}

#[test]
fn a_gateway_substituting_keys_or_injecting_members_or_commits_is_detected() {
    let runtime = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("gateway");
    let mut gateway = Gateway::start(&runtime, &data, 0);
    let [alice, carol, dave, erin] =
        ["alice", "carol", "dave", "erin"].map(|who| dir.path().join(who));
    for (home, handle) in [
        (&alice, "alice"),
        (&carol, "carol"),
        (&dave, "dave"),
        (&erin, "erin"),
    ] {
        init(home, &gateway, handle);
    }
    // alice verified carol's key (safety numbers compared) and pinned dave's by sharing with him.
    ok(&alice, &["contacts", "verify", "carol", "--yes"]);
    let first = ok(&alice, &["--json", "space", "create", "first-zq"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok(&alice, &["space", "create", "second-zq"]);
    ok(&alice, &["share", "first-zq", "dave", "--role", "reader"]);
    ok(&dave, &["accept", "first-zq"]);

    // The operator swaps carol's and erin's keys for its own.
    gateway.tamper(&runtime, |data_dir| {
        substitute_account(data_dir, "carol");
        substitute_account(data_dir, "dave");
    });
    // carol was verified: a hard error, nothing shared.
    let refused = fails(
        &alice,
        &["share", "second-zq", "carol", "--role", "writer"],
        9,
    );
    assert!(refused.stderr.contains("KEY CHANGED"), "{}", refused.stderr);
    let still = fails(
        &alice,
        &[
            "share",
            "second-zq",
            "carol",
            "--role",
            "writer",
            "--trust-new-key",
        ],
        9,
    );
    assert!(still.stderr.contains("verified"), "{}", still.stderr);
    // dave was pinned (not verified) when alice shared with him: an error until she confirms.
    let refused = fails(
        &alice,
        &["share", "second-zq", "dave", "--role", "reader"],
        9,
    );
    assert!(
        refused.stderr.contains("--trust-new-key"),
        "{}",
        refused.stderr
    );
    let members_after = ok(&alice, &["--json", "members", "second-zq"]).json();
    assert_eq!(members(&members_after), pairs(&[("alice", "owner")]));
    // And `contacts verify` refuses to mark the substituted key verified.
    fails(&alice, &["contacts", "verify", "carol", "--yes"], 9);
    // erin was never seen by alice: trust on first use takes her key as served (this is why
    // contacts are verified), and pins it.
    ok(&alice, &["share", "second-zq", "erin", "--role", "reader"]);
    let erin_row = ok(&alice, &["--json", "contacts"]).json();
    assert!(
        erin_row
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["handle"] == "erin" && c["verified"] == false)
    );
    ok(&erin, &["accept", "second-zq"]);

    // The operator injects an add signed by dave (a reader) into the first space, and one signed
    // by a key that is no member into the second: every client refuses those spaces.
    let first_id = SpaceId::from_hex(&first).unwrap();
    let second_id = {
        let listed = ok(&alice, &["--json", "space", "ls"]).json();
        let row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["name"] == "second-zq")
            .unwrap()
            .clone();
        SpaceId::from_hex(row["id"].as_str().unwrap()).unwrap()
    };
    let dave_keys = unlock(&dave);
    let (_, mallory, mallory_signer) = forged_user("mallory");
    gateway.tamper(&runtime, |data_dir| {
        inject_entry(data_dir, &first_id, dave_keys.device(), &mallory);
        inject_entry(data_dir, &second_id, &mallory_signer, &mallory);
    });
    // (dave's own account was substituted above: only alice and erin can still log in.)
    for (who, space) in [
        (&alice, "first-zq"),
        (&alice, "second-zq"),
        (&erin, "second-zq"),
    ] {
        let run = fails(who, &["ls", space], 6);
        assert!(run.stderr.contains("INTEGRITY"), "{}", run.stderr);
    }
    fails(&alice, &["members", "first-zq"], 6);

    // A commit signed by a reader, stored by the operator (the gateway itself refuses it): the
    // writer and the reader both reject the space's history.
    let third = ok(&alice, &["--json", "space", "create", "third-zq"]).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let third_id = SpaceId::from_hex(&third).unwrap();
    let file = dir.path().join("third-zq.txt");
    std::fs::write(&file, "third").unwrap();
    ok(&alice, &["put", file.to_str().unwrap(), "third-zq:/"]);
    ok(&alice, &["share", "third-zq", "erin", "--role", "reader"]);
    ok(&erin, &["accept", "third-zq"]);
    ok(&erin, &["ls", "third-zq"]);
    let erin_keys = unlock(&erin);
    gateway.tamper(&runtime, |data_dir| {
        inject_reader_commit(data_dir, &third_id, &erin_keys);
    });
    for who in [&alice, &erin] {
        let run = fails(who, &["ls", "third-zq"], 6);
        assert!(run.stderr.contains("may not write"), "{}", run.stderr);
    }
    gateway.stop(&runtime);
}

/// The operator appends, unverified, a commit that `reader` signed on top of the head.
fn inject_reader_commit(data_dir: &Path, space: &SpaceId, reader: &coffre_sdk::keystore::Unlocked) {
    use coffre_crypto::commit::{Commit, CommitHeader, CommitRoot, LogHead};
    let stores = open_stores(data_dir);
    let record = stores.meta.space(space).unwrap().unwrap();
    let entries = stores.meta.membership_entries(space, 0, 1000).unwrap();
    let log = MembershipLog::decode_and_verify(&entries).unwrap();
    let head_bytes = stores
        .meta
        .commits(space, record.head_seq - 1, 1)
        .unwrap()
        .pop()
        .unwrap();
    let head = Commit::decode(&head_bytes).unwrap();
    let key = log.current_epoch_key(reader.secret()).unwrap();
    let root = head.open_root(&key).unwrap();
    let state = log.state();
    let header = CommitHeader {
        space_id: *space,
        seq: head.seq() + 1,
        parent: head.hash(),
        epoch: state.epoch(),
        membership_hash: state.head(),
        log_head: LogHead::NONE,
    };
    let forged = Commit::sign(
        &header,
        &key,
        &CommitRoot {
            root: root.root.duplicate(),
            time_ms: 1,
            message: "forged by a reader".into(),
        },
        reader.device(),
    )
    .unwrap();
    stores
        .meta
        .append_commit(space, forged.seq(), record.membership_len, forged.encoded())
        .unwrap();
}
