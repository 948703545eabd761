//! # coffre
//!
//! The reference command-line client, a thin layer over `coffre-sdk`: `coffre init`, `space`,
//! `put`, `get`, `ls`, `rm`, `mv`, `mkdir`, `log`, `restore`, `status`, `whoami`; sharing with
//! `share`, `invites`, `accept`, `decline`, `members`, `leave`, `contacts`.
//!
//! Conventions: `--json` prints exactly one JSON document on stdout per command (errors too:
//! `{"error": {...}}`); `--quiet` prints nothing but errors; progress bars only when stderr is a
//! terminal. The passphrase comes from `--passphrase-file`, else `COFFRE_PASSPHRASE`, else a
//! prompt without echo. Local files live under `COFFRE_HOME` or the XDG directories.
//!
//! Exit codes: 0 ok, 1 error, 2 usage, 3 authentication, 4 not found, 5 conflict, 6 integrity
//! violation, 7 network or gateway unavailable, 8 quota, 9 a contact's key changed (see
//! [`exit`]).

#![forbid(unsafe_code)]

mod exit;
mod output;
mod sharing;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use coffre_crypto::keys::SpaceId;
use coffre_crypto::passphrase::Passphrase;
use coffre_sdk::client::Client;
use coffre_sdk::home::Home;
use coffre_sdk::spaces::Space;
use coffre_sdk::tree::SpacePath;
use coffre_sdk::trust::{CertFingerprint, Trust};
use serde_json::{Value, json};

use exit::Exit;
use output::Out;

/// coffre: end-to-end encrypted storage. The gateway only ever sees encrypted blobs.
#[derive(Debug, Parser)]
#[command(name = "coffre", version, about, long_about = None)]
#[command(
    after_help = "SPACE is a space's local name (see `coffre space ls`) or its hex id. \
    Paths in a space are written SPACE:/path.\n\
    Exit codes: 0 ok, 1 error, 2 usage, 3 authentication, 4 not found, 5 conflict, \
    6 integrity violation, 7 network or gateway unavailable, 8 quota exceeded, \
    9 a contact's identity key changed."
)]
struct Cli {
    /// Print one JSON document on stdout (for scripts).
    #[arg(long, global = true)]
    json: bool,
    /// Print nothing but errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Read the passphrase from this file (first line) instead of COFFRE_PASSPHRASE or a prompt.
    #[arg(long, global = true, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// Which account on which gateway, and how to trust the gateway's certificate.
#[derive(Debug, clap::Args)]
struct AccountAt {
    /// The gateway's URL, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    server: String,
    /// Your account handle.
    #[arg(long)]
    handle: String,
    /// Trust the CA certificate(s) in this PEM file.
    #[arg(long, value_name = "FILE", conflicts_with = "pin")]
    ca: Option<PathBuf>,
    /// Trust exactly the certificate with this SHA-256 fingerprint (hex, colons optional).
    #[arg(long, value_name = "SHA256")]
    pin: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create an account on a gateway and keep its keys on this device.
    Init(AccountAt),
    /// Set up this device for an existing account, with its handle and passphrase only.
    Login(AccountAt),
    /// Show this account's handle and identity fingerprint (compare it out of band).
    Whoami,
    /// Create and list spaces.
    #[command(subcommand)]
    Space(SpaceCommand),
    /// Upload a local file or directory (a directory's contents go into the path).
    Put {
        /// Local file or directory.
        local: PathBuf,
        /// Destination, SPACE:/path (a file put on an existing directory lands inside it).
        dest: String,
    },
    /// Download a file or directory (a directory's contents go into LOCAL).
    Get {
        /// Source, SPACE:/path.
        src: String,
        /// Local destination.
        local: PathBuf,
    },
    /// List a directory.
    Ls {
        /// SPACE or SPACE:/path.
        target: String,
    },
    /// Show what is at a path.
    Stat {
        /// SPACE:/path.
        target: String,
    },
    /// Remove a file or directory (one commit).
    Rm {
        /// Remove a non-empty directory and everything in it.
        #[arg(short, long)]
        recursive: bool,
        /// SPACE:/path.
        target: String,
    },
    /// Move or rename (one commit; nothing is re-uploaded).
    Mv {
        /// SPACE:/from.
        from: String,
        /// SPACE:/to (into it if it is a directory); the space may be omitted.
        to: String,
    },
    /// Create a directory (one commit).
    Mkdir {
        /// Create missing parents; an existing directory is fine.
        #[arg(short, long)]
        parents: bool,
        /// SPACE:/path.
        target: String,
    },
    /// Show a space's history, oldest first.
    Log {
        /// SPACE.
        space: String,
    },
    /// Restore a path (or the whole space) as it was at a commit, as a new commit.
    Restore {
        /// SPACE (everything) or SPACE:/path.
        target: String,
        /// The commit seq to restore from (see `coffre log`).
        #[arg(long, value_name = "SEQ")]
        at: u64,
    },
    /// Show a space's head, epoch, role and members (without SPACE: every space).
    Status {
        /// SPACE.
        space: Option<String>,
    },
    /// Invite a user to a space with a role (their key is checked against your contacts).
    Share {
        /// SPACE.
        space: String,
        /// The user's handle.
        handle: String,
        /// Their role.
        #[arg(long, value_enum)]
        role: sharing::RoleArg,
        /// Accept a changed key of an unverified contact (after checking it with them).
        #[arg(long)]
        trust_new_key: bool,
    },
    /// List the invitations waiting for you.
    Invites,
    /// Accept an invitation: SPACE is the name or id `coffre invites` shows.
    Accept {
        /// The space's name or id, as `coffre invites` shows it.
        space: String,
        /// Accept a changed key of the (unverified) inviter (after checking it with them).
        #[arg(long)]
        trust_new_key: bool,
    },
    /// Decline (delete) an invitation.
    Decline {
        /// The space's name or id, as `coffre invites` shows it.
        space: String,
    },
    /// List a space's members; remove one (rotating the space key) or change a role.
    Members {
        /// SPACE.
        space: String,
        /// Remove this member; everything written afterwards uses a key they never get.
        #[arg(long, value_name = "HANDLE", conflicts_with = "role")]
        remove: Option<String>,
        /// Give member HANDLE the role ROLE (reader, writer, admin, owner).
        #[arg(long, num_args = 2, value_names = ["HANDLE", "ROLE"])]
        role: Option<Vec<String>>,
    },
    /// Leave a space (the others' key is rotated).
    Leave {
        /// SPACE.
        space: String,
    },
    /// List this account's devices, or revoke a lost one.
    #[command(subcommand)]
    Device(DeviceCommand),
    /// List your contacts (pinned keys of other users), or verify one.
    Contacts {
        #[command(subcommand)]
        command: Option<ContactsCommand>,
    },
}

#[derive(Debug, Subcommand)]
enum DeviceCommand {
    /// The active devices (key, when added, which one this is).
    Ls,
    /// Revoke a device (lost or retired): its logins stop working at once.
    Revoke {
        /// At least 8 hex digits of the device's key, as `coffre device ls` shows it.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    /// Show the safety number you share with HANDLE; once they confirm they see the same,
    /// mark their key verified (a verified key that changes is a hard error).
    Verify {
        /// The user's handle.
        handle: String,
        /// Do not ask: the safety numbers were compared.
        #[arg(long, short)]
        yes: bool,
        /// Replace a pinned key that changed (only after comparing the new safety number).
        #[arg(long)]
        accept_changed_key: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SpaceCommand {
    /// Create a space owned by you, with a local name.
    Create {
        /// The local name (kept on this device only; the gateway never sees it).
        name: String,
    },
    /// List your spaces: local names and ids.
    Ls,
    /// Give a space a local name on this device (e.g. on a new device, where spaces have ids).
    Name {
        /// The space: its id (or current name).
        space: String,
        /// The new local name.
        name: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.json, cli.quiet);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            return out.fail(&Exit::new(1, format!("cannot start the runtime: {error}")));
        }
    };
    match runtime.block_on(run(&cli, &out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => out.fail(&exit::classify(&error)),
    }
}

async fn run(cli: &Cli, out: &Out) -> Result<()> {
    let home = Home::from_env()?;
    match &cli.command {
        Command::Init(account) => init(cli, out, &home, account).await,
        Command::Login(account) => login(cli, out, &home, account).await,
        Command::Whoami => {
            let client = open(cli, &home).await?;
            let me = client.whoami();
            let groups = me.fingerprint.display_groups();
            out.emit(
                json!({
                    "handle": me.handle.as_str(),
                    "fingerprint": me.fingerprint.digits(),
                    "device_key": hex::encode(me.device_key.to_bytes()),
                    "server": me.server,
                }),
                || {
                    format!(
                        "{}\nfingerprint: {groups}\nserver: {}",
                        me.handle.as_str(),
                        me.server
                    )
                },
            );
            Ok(())
        }
        Command::Space(SpaceCommand::Create { name }) => {
            let client = open(cli, &home).await?;
            if find_local_name(&client, name)?.is_some() {
                return Err(Exit::new(
                    5,
                    format!(
                        "a space named {name:?} already exists on this device; pick another name"
                    ),
                )
                .into());
            }
            let space = client.create_space(name).await?;
            let id = space.id().to_hex();
            out.emit(json!({"id": id, "name": name}), || {
                format!("created space {name} ({id})")
            });
            Ok(())
        }
        Command::Space(SpaceCommand::Name { space, name }) => {
            let client = open(cli, &home).await?;
            let mut opened = open_space(&client, space).await?;
            if let Some(other) = find_local_name(&client, name)?
                && other != *opened.id()
            {
                return Err(Exit::new(
                    5,
                    format!("another space is named {name:?} on this device"),
                )
                .into());
            }
            opened.set_name(name)?;
            let id = opened.id().to_hex();
            out.emit(json!({"id": id, "name": name}), || {
                format!("{id} is now {name} on this device")
            });
            Ok(())
        }
        Command::Space(SpaceCommand::Ls) => {
            let client = open(cli, &home).await?;
            let spaces = client.spaces().await?;
            let rows: Vec<Value> = spaces
                .iter()
                .map(|info| {
                    json!({
                        "id": info.id.to_hex(),
                        "name": info.name,
                        "role": info.role.name(),
                        "members": info.members,
                        "epoch": info.epoch,
                        "head_seq": info.head_seq_hint,
                    })
                })
                .collect();
            out.emit(Value::Array(rows), || {
                spaces
                    .iter()
                    .map(|info| {
                        format!(
                            "{:<20} {}  {:<6} {} member(s)",
                            info.name.as_deref().unwrap_or("-"),
                            info.id.to_hex(),
                            info.role.name(),
                            info.members
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Command::Put { local, dest } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, dest).await?;
            let progress = output::progress(out);
            let summary = space.put(local, &path, &progress).await?;
            progress.finish();
            let stats = summary.stats;
            out.emit(
                json!({
                    "space": space.id().to_hex(),
                    "dest": summary.dest.to_string(),
                    "files": stats.files,
                    "bytes": stats.bytes,
                    "chunks": stats.chunks,
                    "chunks_sent": stats.chunks_sent,
                    "bytes_sent": stats.bytes_sent,
                    "commit": output::change_json(&summary.change),
                }),
                || {
                    format!(
                        "put {} file(s), {} into {} ({} of {} chunks sent){}",
                        stats.files,
                        output::human_bytes(stats.bytes),
                        summary.dest,
                        stats.chunks_sent,
                        stats.chunks,
                        output::change_text(&summary.change)
                    )
                },
            );
            output::warn_conflicts(out, &summary.change);
            Ok(())
        }
        Command::Get { src, local } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, src).await?;
            let progress = output::progress(out);
            let summary = space.get(&path, local, &progress).await?;
            progress.finish();
            out.emit(
                json!({
                    "seq": summary.seq,
                    "files": summary.stats.files,
                    "bytes": summary.stats.bytes,
                    "local": local.display().to_string(),
                }),
                || {
                    format!(
                        "got {} file(s), {} from {path} at commit {} into {}",
                        summary.stats.files,
                        output::human_bytes(summary.stats.bytes),
                        summary.seq,
                        local.display()
                    )
                },
            );
            Ok(())
        }
        Command::Ls { target } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, target).await?;
            let entries = space.ls(&path).await?;
            out.emit(
                Value::Array(entries.iter().map(output::entry_json).collect()),
                || {
                    entries
                        .iter()
                        .map(output::entry_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
            Ok(())
        }
        Command::Stat { target } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, target).await?;
            let entry = space.stat(&path).await?;
            out.emit(output::entry_json(&entry), || output::entry_line(&entry));
            Ok(())
        }
        Command::Rm { recursive, target } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, target).await?;
            let change = space.rm(&path, *recursive).await?;
            report_change(out, &format!("removed {path}"), &change);
            Ok(())
        }
        Command::Mv { from, to } => {
            let client = open(cli, &home).await?;
            let (space, from_path) = open_target(&client, from).await?;
            let to_path = match split_target(to) {
                (Some(other), path) => {
                    let other_id = resolve_space(&client, other).await?;
                    if other_id != *space.id() {
                        return Err(Exit::new(
                            2,
                            "mv works within one space; use get and put to copy between spaces",
                        )
                        .into());
                    }
                    path
                }
                (None, path) => path,
            };
            let to_path = parse_path(&to_path)?;
            let change = space.mv(&from_path, &to_path).await?;
            report_change(out, &format!("moved {from_path} to {to_path}"), &change);
            Ok(())
        }
        Command::Mkdir { parents, target } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, target).await?;
            let change = space.mkdir(&path, *parents).await?;
            report_change(out, &format!("created {path}"), &change);
            Ok(())
        }
        Command::Log { space } => {
            let client = open(cli, &home).await?;
            let space = open_space(&client, space).await?;
            let log = space.history_log().await?;
            out.emit(
                Value::Array(log.iter().map(output::commit_json).collect()),
                || {
                    log.iter()
                        .map(output::commit_line)
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
            Ok(())
        }
        Command::Restore { target, at } => {
            let client = open(cli, &home).await?;
            let (space, path) = open_target(&client, target).await?;
            let path = (!path.is_root()).then_some(path);
            let change = space.restore(path.as_ref(), *at).await?;
            let what = path.map_or_else(|| "everything".to_owned(), |path| path.to_string());
            report_change(out, &format!("restored {what} from commit {at}"), &change);
            Ok(())
        }
        Command::Status { space } => {
            let client = open(cli, &home).await?;
            let spaces = match space {
                Some(space) => vec![open_space(&client, space).await?],
                None => {
                    let mut opened = Vec::new();
                    for info in client.spaces().await? {
                        opened.push(client.open_space(&info.id).await?);
                    }
                    opened
                }
            };
            let mut rows = Vec::new();
            for space in &spaces {
                rows.push(space.status().await?);
            }
            let docs: Vec<Value> = rows.iter().map(output::status_json).collect();
            let doc = match (space, docs.as_slice()) {
                (Some(_), [one]) => one.clone(),
                _ => Value::Array(docs),
            };
            out.emit(doc, || {
                let me = client.whoami();
                let mut lines = vec![format!("{} on {}", me.handle.as_str(), me.server)];
                lines.extend(rows.iter().map(output::status_line));
                lines.join("\n")
            });
            Ok(())
        }
        Command::Share {
            space,
            handle,
            role,
            trust_new_key,
        } => {
            let client = open(cli, &home).await?;
            sharing::share(&client, out, space, handle, *role, *trust_new_key).await
        }
        Command::Invites => sharing::invites(&open(cli, &home).await?, out).await,
        Command::Accept {
            space,
            trust_new_key,
        } => sharing::accept(&open(cli, &home).await?, out, space, *trust_new_key).await,
        Command::Decline { space } => sharing::decline(&open(cli, &home).await?, out, space).await,
        Command::Members {
            space,
            remove,
            role,
        } => {
            let client = open(cli, &home).await?;
            sharing::members(&client, out, space, remove.as_deref(), role.as_deref()).await
        }
        Command::Leave { space } => sharing::leave(&open(cli, &home).await?, out, space).await,
        Command::Device(DeviceCommand::Ls) => {
            let client = open(cli, &home).await?;
            let devices = client.devices().await?;
            let rows: Vec<Value> = devices
                .iter()
                .map(|device| {
                    json!({
                        "key": hex::encode(device.key.to_bytes()),
                        "added_ms": device.added_ms,
                        "this_device": device.this_device,
                    })
                })
                .collect();
            out.emit(Value::Array(rows), || {
                devices
                    .iter()
                    .map(|device| {
                        let secs = i64::try_from(device.added_ms / 1000).unwrap_or(i64::MAX);
                        format!(
                            "{}  added {}{}",
                            hex::encode(device.key.to_bytes()),
                            output::utc(secs),
                            if device.this_device {
                                "  (this device)"
                            } else {
                                ""
                            }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
            Ok(())
        }
        Command::Device(DeviceCommand::Revoke { key }) => {
            let client = open(cli, &home).await?;
            let revoked = hex::encode(client.revoke_device(key).await?.to_bytes());
            out.emit(json!({"revoked": revoked}), || {
                format!("revoked device {revoked}: it can no longer log in")
            });
            Ok(())
        }
        Command::Contacts { command: None } => {
            sharing::list_contacts(&open(cli, &home).await?, out)
        }
        Command::Contacts {
            command:
                Some(ContactsCommand::Verify {
                    handle,
                    yes,
                    accept_changed_key,
                }),
        } => {
            let client = open(cli, &home).await?;
            sharing::verify(&client, out, handle, *yes, *accept_changed_key).await
        }
    }
}

async fn init(cli: &Cli, out: &Out, home: &Home, account: &AccountAt) -> Result<()> {
    let (server, handle) = (account.server.as_str(), account.handle.as_str());
    let trust = trust_and_home(home, server, account.ca.as_deref(), account.pin.as_deref())?;
    let passphrase = passphrase(cli, home, true)?;
    let client = Client::create_account(home, server, trust, handle, passphrase).await?;
    let me = client.whoami();
    let groups = me.fingerprint.display_groups();
    let keystore = home.keystore_path().display().to_string();
    out.emit(
        json!({
            "handle": me.handle.as_str(),
            "fingerprint": me.fingerprint.digits(),
            "server": me.server,
            "keystore": keystore,
        }),
        || {
            format!(
                "created account {} on {}\nfingerprint: {groups}\nkeystore: {keystore} \
                 (keep a backup; copy it with config.toml to use another device)",
                me.handle.as_str(),
                me.server
            )
        },
    );
    Ok(())
}

/// The trust settings from `--ca` / `--pin`, after checking the server URL and that `home` holds
/// no account yet.
fn trust_and_home(
    home: &Home,
    server: &str,
    ca: Option<&Path>,
    pin: Option<&str>,
) -> Result<Trust> {
    let trust = match (ca, pin) {
        (Some(ca), _) => {
            if !ca.is_file() {
                return Err(Exit::new(2, format!("--ca {}: no such file", ca.display())).into());
            }
            let ca = std::fs::canonicalize(ca).unwrap_or_else(|_| ca.to_path_buf());
            Trust::CaFile(ca)
        }
        (None, Some(pin)) => Trust::Pinned(CertFingerprint::parse(pin).map_err(|_| {
            Exit::new(
                2,
                "--pin takes the gateway's SHA-256 certificate fingerprint: 64 hex digits, \
                 colons optional (the gateway prints it at start-up)",
            )
        })?),
        (None, None) => Trust::SystemRoots,
    };
    if !server.starts_with("https://") {
        return Err(Exit::new(
            2,
            format!("--server must be an https:// URL (got {server:?})"),
        )
        .into());
    }
    if home.keystore_path().exists() {
        return Err(Exit::new(
            5,
            format!(
                "{} already holds an account; use another COFFRE_HOME for another account",
                home.keystore_path().display()
            ),
        )
        .into());
    }
    Ok(trust)
}

/// `coffre login`: this device joins an existing account (OPAQUE passphrase login).
async fn login(cli: &Cli, out: &Out, home: &Home, account: &AccountAt) -> Result<()> {
    let (server, handle) = (account.server.as_str(), account.handle.as_str());
    let trust = trust_and_home(home, server, account.ca.as_deref(), account.pin.as_deref())?;
    let passphrase = passphrase(cli, home, false)?;
    let client = match Client::enroll_device(home, server, trust, handle, passphrase).await {
        Ok(client) => client,
        Err(coffre_sdk::Error::Auth) => {
            return Err(Exit::new(
                3,
                format!(
                    "the gateway did not accept this handle and passphrase ({handle}); check \
                     both (the passphrase is the one chosen at `coffre init`)"
                ),
            )
            .into());
        }
        Err(error) => return Err(error.into()),
    };
    let me = client.whoami();
    let groups = me.fingerprint.display_groups();
    let keystore = home.keystore_path().display().to_string();
    out.emit(
        json!({
            "handle": me.handle.as_str(),
            "fingerprint": me.fingerprint.digits(),
            "device_key": hex::encode(me.device_key.to_bytes()),
            "server": me.server,
            "keystore": keystore,
        }),
        || {
            format!(
                "this device now belongs to {} on {}\nfingerprint: {groups} (the same as on \
                 your other devices)\nkeystore: {keystore}\nspaces are named by id here: \
                 `coffre space ls`",
                me.handle.as_str(),
                me.server
            )
        },
    );
    Ok(())
}

/// Reads the passphrase: `--passphrase-file`, else `COFFRE_PASSPHRASE`, else a prompt.
fn passphrase(cli: &Cli, home: &Home, confirm: bool) -> Result<Passphrase> {
    if let Some(file) = &cli.passphrase_file {
        let mut text = std::fs::read_to_string(file).map_err(|error| {
            Exit::new(
                2,
                format!(
                    "cannot read the passphrase file {}: {error}",
                    file.display()
                ),
            )
        })?;
        // The first line; a trailing newline is not part of the passphrase.
        let end = text.find(['\n', '\r']).unwrap_or(text.len());
        text.truncate(end);
        return non_empty(Passphrase::new(text));
    }
    if let Some(value) = std::env::var_os("COFFRE_PASSPHRASE") {
        let text = value
            .into_string()
            .map_err(|_| Exit::new(2, "COFFRE_PASSPHRASE is not valid UTF-8"))?;
        return non_empty(Passphrase::new(text));
    }
    let no_tty = |_| {
        Exit::new(
            2,
            "no passphrase given and no terminal to ask on: set COFFRE_PASSPHRASE or pass \
             --passphrase-file FILE",
        )
    };
    let prompt = if confirm {
        "New passphrase: ".to_owned()
    } else {
        format!("Passphrase for {}: ", home.keystore_path().display())
    };
    let first = Passphrase::new(rpassword::prompt_password(prompt).map_err(no_tty)?);
    if confirm {
        let again = Passphrase::new(rpassword::prompt_password("Repeat it: ").map_err(no_tty)?);
        if again.expose_secret() != first.expose_secret() {
            return Err(Exit::new(2, "the two passphrases differ; try again").into());
        }
    }
    non_empty(first)
}

fn non_empty(passphrase: Passphrase) -> Result<Passphrase> {
    if passphrase.is_empty() {
        return Err(Exit::new(2, "the passphrase is empty").into());
    }
    Ok(passphrase)
}

/// Unlocks the account in `home`, with messages that say what to do.
async fn open(cli: &Cli, home: &Home) -> Result<Client> {
    if !home.keystore_path().exists() {
        return Err(Exit::new(
            1,
            format!(
                "no account on this device ({} does not exist); run `coffre init --server URL \
                 --handle NAME`, or copy keystore.cfk and config.toml from another device \
                 (set COFFRE_HOME to use another directory)",
                home.keystore_path().display()
            ),
        )
        .into());
    }
    let passphrase = passphrase(cli, home, false)?;
    match Client::open(home, passphrase).await {
        Ok(client) => Ok(client),
        Err(coffre_sdk::Error::Auth) => Err(Exit::new(
            3,
            format!(
                "the passphrase does not open the keystore in {}; try again or set \
                 COFFRE_PASSPHRASE",
                home.keystore_path().display()
            ),
        )
        .into()),
        Err(error) => Err(error.into()),
    }
}

/// Splits `SPACE:/path` into the space and the path (`/` when absent).
fn split_target(text: &str) -> (Option<&str>, String) {
    match text.split_once(':') {
        Some((space, path)) if !space.is_empty() => (Some(space), normalise(path)),
        Some((_, path)) => (None, normalise(path)),
        None if text.starts_with('/') => (None, text.to_owned()),
        None => (Some(text), "/".to_owned()),
    }
}

fn normalise(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn parse_path(text: &str) -> Result<SpacePath> {
    SpacePath::parse(text).map_err(|error| Exit::new(2, error.to_string()).into())
}

/// The space named by `text`: its hex id, its local name, or a unique prefix of its id.
async fn resolve_space(client: &Client, text: &str) -> Result<SpaceId> {
    if text.len() == 64
        && let Ok(id) = SpaceId::from_hex(text)
    {
        return Ok(id);
    }
    if let Some(id) = find_local_name(client, text)? {
        return Ok(id);
    }
    let is_hex = text.len() >= 6 && text.chars().all(|c| c.is_ascii_hexdigit());
    if is_hex {
        let wanted = text.to_ascii_lowercase();
        let matches: Vec<SpaceId> = client
            .spaces()
            .await?
            .into_iter()
            .map(|info| info.id)
            .filter(|id| id.to_hex().starts_with(&wanted))
            .collect();
        match matches.as_slice() {
            [one] => return Ok(*one),
            [] => {}
            _ => {
                return Err(Exit::new(
                    2,
                    format!("{text:?} is the start of several space ids; give more digits"),
                )
                .into());
            }
        }
    }
    Err(Exit::new(
        4,
        format!(
            "no space named {text:?} on this device; `coffre space ls` lists names and ids \
             (names are local: on another device use the id)"
        ),
    )
    .into())
}

fn find_local_name(client: &Client, name: &str) -> Result<Option<SpaceId>> {
    let state = client.state();
    let mut found = None;
    for id in state.known_spaces()? {
        if state.pins(&id)?.name.as_deref() == Some(name) {
            if found.is_some() {
                return Err(Exit::new(
                    2,
                    format!("several spaces are named {name:?} here; use the id"),
                )
                .into());
            }
            found = Some(id);
        }
    }
    Ok(found)
}

async fn open_space(client: &Client, text: &str) -> Result<Space> {
    let id = resolve_space(client, text).await?;
    Ok(client.open_space(&id).await?)
}

async fn open_target(client: &Client, text: &str) -> Result<(Space, SpacePath)> {
    let (Some(space), path) = split_target(text) else {
        return Err(Exit::new(
            2,
            format!("{text:?} names no space; write SPACE:/path (e.g. docs:/reports)"),
        )
        .into());
    };
    let path = parse_path(&path)?;
    Ok((open_space(client, space).await?, path))
}

fn report_change(out: &Out, done: &str, change: &coffre_sdk::space_ops::Change) {
    out.emit(output::change_json(change), || match change.commit {
        Some(_) => format!("{done}{}", output::change_text(change)),
        None => "nothing changed".to_owned(),
    });
    output::warn_conflicts(out, change);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split() {
        assert_eq!(split_target("docs:/a/b"), (Some("docs"), "/a/b".to_owned()));
        assert_eq!(split_target("docs"), (Some("docs"), "/".to_owned()));
        assert_eq!(split_target("docs:"), (Some("docs"), "/".to_owned()));
        assert_eq!(split_target("docs:a"), (Some("docs"), "/a".to_owned()));
        assert_eq!(split_target("/a"), (None, "/a".to_owned()));
        assert_eq!(split_target(":/a"), (None, "/a".to_owned()));
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory as _;
        Cli::command().debug_assert();
    }
}
