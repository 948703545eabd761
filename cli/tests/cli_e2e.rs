//! The `coffre` binary end to end against a real gateway (in process, TLS on 127.0.0.1:0, files
//! blob backend on disk), driven exactly as a user or script would: two users with their own
//! COFFRE_HOME, `init --pin`, `space create`, `put` a tree, `get` it back byte for byte, `ls
//! --json`, `mv`, `rm`, `log`, `restore --at 1`, a wrong passphrase (exit 3), a second device
//! from a copied keystore, and finally an operator-blindness scan of every byte the gateway
//! stored: no file content, file name or passphrase may appear.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The longest any one CLI command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);
const MARKER: &str = "PLAINTEXT-MARKER-c0ffre-5f1e";
const PASSPHRASE: &str = "correct horse battery staple zq";
const NAMES: [&str; 5] = [
    "quarterly-report-zq",
    "minutes-2024-zq.txt",
    "résumé-été-☃-zq.md",
    "empty-file-zq",
    "big-archive-zq.bin",
];

struct Gateway {
    url: String,
    pin_colons: String,
    pin_hex: String,
    data_dir: PathBuf,
    server: coffre_gateway::server::ServerHandle,
}

/// The real gateway on `data_dir` (files backend), in process on 127.0.0.1:0.
fn start_gateway(runtime: &tokio::runtime::Runtime, data_dir: &Path) -> Gateway {
    let config = coffre_gateway::Config {
        data_dir: data_dir.to_path_buf(),
        listen: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    };
    let stores =
        coffre_gateway::store::Stores::open(data_dir, coffre_gateway::config::BlobBackend::Files)
            .unwrap();
    let server = runtime
        .block_on(coffre_gateway::server::start(config, stores))
        .unwrap();
    let pin_colons = server.tls.fingerprint.to_colon_hex();
    let pin_hex = pin_colons.replace(':', "").to_ascii_lowercase();
    Gateway {
        url: format!("https://127.0.0.1:{}", server.addr.port()),
        pin_colons,
        pin_hex,
        data_dir: data_dir.to_path_buf(),
        server,
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

/// Runs `coffre` with `home` as COFFRE_HOME, bounded by [`COMMAND_TIMEOUT`].
fn coffre(home: &Path, passphrase: Option<&str>, args: &[&str]) -> Run {
    let logs = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (logs.path().join("out"), logs.path().join("err"));
    let mut command = Command::new(env!("CARGO_BIN_EXE_coffre"));
    command
        .args(args)
        .env("COFFRE_HOME", home)
        .env_remove("COFFRE_PASSPHRASE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if let Some(passphrase) = passphrase {
        command.env("COFFRE_PASSPHRASE", passphrase);
    }
    let mut child = command.spawn().unwrap();
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coffre {args:?} did not finish within {COMMAND_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap(),
        stderr: std::fs::read_to_string(&err_path).unwrap(),
    }
}

/// Runs `coffre` and requires exit 0.
fn ok(home: &Path, args: &[&str]) -> Run {
    let run = coffre(home, Some(PASSPHRASE), args);
    assert_eq!(
        run.code, 0,
        "coffre {args:?} failed:\nstdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    run
}

/// Every file under `dir`, relative path → bytes, sorted.
fn read_tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            } else {
                let rel = path
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
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

fn make_tree(src: &Path) {
    std::fs::create_dir_all(src.join(NAMES[0]).join("deeper/deepest")).unwrap();
    std::fs::write(
        src.join(NAMES[1]),
        format!("{MARKER} minutes of the meeting"),
    )
    .unwrap();
    std::fs::write(
        src.join(NAMES[0]).join(NAMES[2]),
        format!("{MARKER} unicode file"),
    )
    .unwrap();
    std::fs::write(src.join(NAMES[0]).join("deeper").join(NAMES[3]), b"").unwrap();
    std::fs::write(
        src.join(NAMES[0]).join("deeper/deepest/leaf.txt"),
        format!("{MARKER} leaf"),
    )
    .unwrap();
    // 5 MiB of pseudo-random bytes (many chunks), with the marker at the start and middle.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut big: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    big[..MARKER.len()].copy_from_slice(MARKER.as_bytes());
    let middle = big.len() / 2;
    big[middle..middle + MARKER.len()].copy_from_slice(MARKER.as_bytes());
    std::fs::write(src.join(NAMES[0]).join(NAMES[4]), big).unwrap();
}

#[test]
fn cli_end_to_end_two_users_second_device_and_operator_blindness() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gateway = start_gateway(&runtime, &dir.path().join("gateway"));
    let alice = dir.path().join("alice");
    let bob = dir.path().join("bob");

    // Usage errors exit 2; commands without an account say so.
    assert_eq!(coffre(&alice, None, &["frobnicate"]).code, 2);
    let none = coffre(&alice, Some(PASSPHRASE), &["whoami"]);
    assert_eq!(none.code, 1);
    assert!(none.stderr.contains("coffre init"), "{}", none.stderr);

    // Two users; pins in both printed forms.
    let init = ok(
        &alice,
        &[
            "--json",
            "init",
            "--server",
            &gateway.url,
            "--handle",
            "alice",
            "--pin",
            &gateway.pin_colons,
        ],
    )
    .json();
    assert_eq!(init["handle"], "alice");
    ok(
        &bob,
        &[
            "init",
            "--server",
            &gateway.url,
            "--handle",
            "bob",
            "--pin",
            &gateway.pin_hex,
        ],
    );
    let who = ok(&alice, &["--json", "whoami"]).json();
    assert_eq!(who["fingerprint"], init["fingerprint"]);
    assert_eq!(who["fingerprint"].as_str().unwrap().len(), 30);

    // A space, a tree in it.
    let created = ok(&alice, &["--json", "space", "create", "docs"]).json();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 64);
    let listed = ok(&alice, &["--json", "space", "ls"]).json();
    assert_eq!(listed[0]["name"], "docs");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(
        ok(&bob, &["--json", "space", "ls"]).json(),
        serde_json::json!([])
    );

    let src = dir.path().join("src");
    make_tree(&src);
    let put = ok(
        &alice,
        &["--json", "put", src.to_str().unwrap(), "docs:/proj"],
    )
    .json();
    assert_eq!(put["files"], 5);
    assert_eq!(put["commit"]["commit"], 1);
    assert!(put["chunks"].as_u64().unwrap() > 4, "{put}");

    let out = dir.path().join("out");
    ok(&alice, &["get", "docs:/proj", out.to_str().unwrap()]);
    assert_eq!(
        read_tree(&out),
        read_tree(&src),
        "get gives back every byte"
    );

    let ls = ok(
        &alice,
        &["--json", "ls", &format!("docs:/proj/{}", NAMES[0])],
    )
    .json();
    let names: Vec<&str> = ls
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [NAMES[4], "deeper", NAMES[2]]);
    assert_eq!(ls[0]["size"], 5 * 1024 * 1024);
    assert_eq!(ls[1]["type"], "dir");
    let human = ok(&alice, &["ls", "docs:/proj"]).stdout;
    assert!(
        human.contains(NAMES[1]) && human.contains(&format!("{}/", NAMES[0])),
        "{human}"
    );

    // mv, rm, mkdir: one commit each; errors have their codes.
    ok(
        &alice,
        &["mv", &format!("docs:/proj/{}", NAMES[1]), "docs:/moved.txt"],
    );
    let unicode = format!("docs:/proj/{}/{}", NAMES[0], NAMES[2]);
    ok(&alice, &["rm", &unicode]);
    let not_empty = coffre(
        &alice,
        Some(PASSPHRASE),
        &["rm", &format!("docs:/proj/{}", NAMES[0])],
    );
    assert_eq!(not_empty.code, 2, "{}", not_empty.stderr);
    ok(&alice, &["mkdir", "-p", "docs:/a/b"]);
    let missing = coffre(&alice, Some(PASSPHRASE), &["--json", "ls", "docs:/nope"]);
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    assert_eq!(missing.json()["error"]["kind"], "not_found");
    let exists = coffre(&alice, Some(PASSPHRASE), &["mkdir", "docs:/a"]);
    assert_eq!(exists.code, 5, "{}", exists.stderr);
    assert_eq!(
        coffre(&alice, Some(PASSPHRASE), &["ls", "nospace:/"]).code,
        4
    );

    let log = ok(&alice, &["--json", "log", "docs"]).json();
    let messages: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|commit| commit["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages,
        [
            "put /proj".to_owned(),
            format!("mv /proj/{} /moved.txt", NAMES[1]),
            format!("rm /proj/{}/{}", NAMES[0], NAMES[2]),
            "mkdir /a/b".to_owned(),
        ]
    );
    assert!(
        log.as_array()
            .unwrap()
            .iter()
            .all(|c| c["author"] == "alice")
    );

    // restore --at 1 brings the removed file back.
    let stat = coffre(&alice, Some(PASSPHRASE), &["stat", &unicode]);
    assert_eq!(stat.code, 4);
    let restored = ok(&alice, &["--json", "restore", &unicode, "--at", "1"]).json();
    assert_eq!(restored["commit"], 5);
    let back = dir.path().join("back.md");
    ok(&alice, &["get", &unicode, back.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(&back).unwrap(),
        std::fs::read(src.join(NAMES[0]).join(NAMES[2])).unwrap()
    );

    // A wrong passphrase exits 3 and says what to do; the passphrase file works for scripts.
    let wrong = coffre(&alice, Some("not the passphrase"), &["ls", "docs"]);
    assert_eq!(wrong.code, 3, "{}", wrong.stderr);
    assert!(
        wrong.stderr.contains("COFFRE_PASSPHRASE"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not the passphrase"));
    let pass_file = dir.path().join("pass");
    std::fs::write(&pass_file, format!("{PASSPHRASE}\n")).unwrap();
    let via_file = coffre(
        &alice,
        None,
        &[
            "--passphrase-file",
            pass_file.to_str().unwrap(),
            "status",
            "docs",
        ],
    );
    assert_eq!(via_file.code, 0, "{}", via_file.stderr);
    assert!(via_file.stdout.contains("head 5"), "{}", via_file.stdout);

    // Bob is not a member of alice's space.
    let denied = coffre(&bob, Some(PASSPHRASE), &["ls", &id]);
    assert!(
        [3, 4].contains(&denied.code),
        "{} {}",
        denied.code,
        denied.stderr
    );

    // A second device: a copy of the keystore and config (names are local: use the id).
    let laptop = dir.path().join("laptop");
    std::fs::create_dir_all(&laptop).unwrap();
    for name in ["config.toml", "keystore.cfk"] {
        std::fs::copy(alice.join(name), laptop.join(name)).unwrap();
    }
    let tree_a = ok(&alice, &["--json", "ls", "docs:/proj"]).json();
    let tree_b = ok(&laptop, &["--json", "ls", &format!("{id}:/proj")]).json();
    assert_eq!(tree_a, tree_b);
    let laptop_out = dir.path().join("laptop-out");
    ok(
        &laptop,
        &[
            "get",
            &format!("{}:/proj", &id[..12]),
            laptop_out.to_str().unwrap(),
        ],
    );
    let mut expected = read_tree(&src);
    expected.retain(|(path, _)| !path.ends_with(NAMES[1]));
    assert_eq!(read_tree(&laptop_out), expected);

    // Stop the gateway, then read everything it stored as the operator would.
    let data_dir = gateway.data_dir.clone();
    runtime
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(30), gateway.server.shutdown()).await
        })
        .expect("the gateway stops")
        .unwrap();
    let stored = all_bytes(&data_dir);
    let total: usize = stored.iter().map(|(_, bytes)| bytes.len()).sum();
    assert!(
        total > 5 * 1024 * 1024,
        "the blobs are on disk ({total} bytes)"
    );
    let mut needles: Vec<&str> = vec![MARKER, PASSPHRASE, "minutes of the meeting", "moved.txt"];
    needles.extend(NAMES);
    for (path, bytes) in &stored {
        for needle in &needles {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "the gateway stored {needle:?} in plaintext in {}",
                path.display()
            );
        }
    }
}
