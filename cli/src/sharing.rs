//! The collaboration commands: `share`, `invites`, `accept`, `decline`, `members`, `leave`,
//! `contacts`. Each is a thin layer over `coffre_sdk::sharing` and `coffre_sdk::members`.

use std::io::IsTerminal as _;

use anyhow::Result;
use coffre_crypto::identity::Identity;
use coffre_crypto::membership::Role;
use coffre_sdk::client::Client;
use coffre_sdk::contacts::KeyStatus;
use serde_json::{Value, json};

use crate::exit::Exit;
use crate::output::Out;

/// A role as typed on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Reads the space.
    Reader,
    /// Reads and writes.
    Writer,
    /// Also manages members (not owners).
    Admin,
    /// Also manages owners.
    Owner,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Reader => Role::Reader,
            RoleArg::Writer => Role::Writer,
            RoleArg::Admin => Role::Admin,
            RoleArg::Owner => Role::Owner,
        }
    }
}

fn parse_role(text: &str) -> Result<Role> {
    match text.to_ascii_lowercase().as_str() {
        "reader" => Ok(Role::Reader),
        "writer" => Ok(Role::Writer),
        "admin" => Ok(Role::Admin),
        "owner" => Ok(Role::Owner),
        _ => Err(Exit::new(
            2,
            format!("{text:?} is not a role: reader, writer, admin or owner"),
        )
        .into()),
    }
}

fn status_note(status: KeyStatus) -> &'static str {
    match status {
        KeyStatus::New => "first seen now: compare safety numbers with `coffre contacts verify`",
        KeyStatus::Pinned => "same key as before (not verified)",
        KeyStatus::Verified => "verified",
        KeyStatus::Changed { .. } => "KEY CHANGED since pinned",
    }
}

fn identity_json(identity: &Identity) -> Value {
    json!({
        "handle": identity.handle().as_str(),
        "fingerprint": identity.fingerprint().digits(),
    })
}

/// `coffre share SPACE HANDLE --role ROLE`.
pub async fn share(
    client: &Client,
    out: &Out,
    space: &str,
    handle: &str,
    role: RoleArg,
    trust_new_key: bool,
) -> Result<()> {
    let mut space = crate::open_space(client, space).await?;
    let shared = client
        .share(&mut space, handle, role.into(), trust_new_key)
        .await?;
    let name = space.name().unwrap_or("the space").to_owned();
    let safety = client.safety_number(&shared.identity);
    out.emit(
        json!({
            "space": space.id().to_hex(),
            "member": identity_json(&shared.identity),
            "role": shared.role.name(),
            "key_status": shared.status.name(),
            "safety_number": safety,
        }),
        || {
            format!(
                "shared {name} with {} as {}; they accept with `coffre accept {}`\n\
                 {}'s key: {} ({})\nsafety number: {safety}",
                shared.identity.handle(),
                shared.role.name(),
                space.id().to_hex(),
                shared.identity.handle(),
                shared.identity.fingerprint().display_groups(),
                status_note(shared.status)
            )
        },
    );
    Ok(())
}

/// `coffre invites`.
pub async fn invites(client: &Client, out: &Out) -> Result<()> {
    let pending = client.invitations().await?;
    let rows: Vec<Value> = pending
        .iter()
        .map(|item| {
            json!({
                "space": item.space_id.to_hex(),
                "name": item.space_name,
                "role": item.role.name(),
                "from": identity_json(&item.inviter),
                "from_key_status": item.inviter_status.name(),
                "received_ms": item.received_ms,
            })
        })
        .collect();
    out.emit(Value::Array(rows), || {
        if pending.is_empty() {
            return "no invitations".to_owned();
        }
        pending
            .iter()
            .map(|item| {
                format!(
                    "{:<20} {}  {:<6} from {} ({}; {})",
                    item.space_name,
                    item.space_id.to_hex(),
                    item.role.name(),
                    item.inviter.handle(),
                    item.inviter.fingerprint().display_groups(),
                    status_note(item.inviter_status)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `coffre accept SPACE`.
pub async fn accept(client: &Client, out: &Out, selector: &str, trust_new_key: bool) -> Result<()> {
    let space = client.accept(selector, trust_new_key).await?;
    let role = space.role().map_or("-", Role::name);
    let name = space.name().unwrap_or("-").to_owned();
    let id = space.id().to_hex();
    out.emit(
        json!({"space": id, "name": name, "role": role, "members": space.members().len()}),
        || format!("joined {name} ({id}) as {role}"),
    );
    Ok(())
}

/// `coffre decline SPACE`.
pub async fn decline(client: &Client, out: &Out, selector: &str) -> Result<()> {
    let id = client.decline(selector).await?.to_hex();
    out.emit(json!({"space": id, "declined": true}), || {
        format!("declined the invitation to {id}")
    });
    Ok(())
}

/// `coffre members SPACE [--remove HANDLE | --role HANDLE ROLE]`.
pub async fn members(
    client: &Client,
    out: &Out,
    space: &str,
    remove: Option<&str>,
    set_role: Option<&[String]>,
) -> Result<()> {
    let mut space = crate::open_space(client, space).await?;
    let done = match (remove, set_role) {
        (Some(handle), _) => {
            space.remove_member(handle).await?;
            Some(format!(
                "removed {handle}; the space key was rotated (epoch {}): {handle} cannot read \
                 anything written from now on",
                space.epoch()
            ))
        }
        (None, Some([handle, role])) => {
            let role = parse_role(role)?;
            space.set_role(handle, role).await?;
            Some(format!("{handle} is now {}", role.name()))
        }
        (None, Some(_)) => return Err(Exit::new(2, "--role takes HANDLE ROLE").into()),
        (None, None) => None,
    };
    let members = client.members(&space)?;
    let rows: Vec<Value> = members
        .iter()
        .map(|view| {
            json!({
                "handle": view.member.identity.handle().as_str(),
                "role": view.member.role.name(),
                "fingerprint": view.member.identity.fingerprint().digits(),
                "me": view.member.is_me,
                "key_status": view.status.name(),
            })
        })
        .collect();
    out.emit(
        json!({"space": space.id().to_hex(), "epoch": space.epoch(), "members": rows, "done": done}),
        || {
            let mut lines: Vec<String> = done.iter().cloned().collect();
            lines.extend(members.iter().map(|view| {
                let who = view.member.identity.handle().to_string();
                let marker = if view.member.is_me { " (you)" } else { "" };
                let key = if view.member.is_me {
                    ""
                } else {
                    view.status.name()
                };
                format!(
                    "{:<7} {who}{marker}  {}  [{key}]",
                    view.member.role.name(),
                    view.member.identity.fingerprint().display_groups(),
                )
            }));
            lines.join("\n")
        },
    );
    Ok(())
}

/// `coffre leave SPACE`.
pub async fn leave(client: &Client, out: &Out, selector: &str) -> Result<()> {
    let space = crate::open_space(client, selector).await?;
    let id = space.id().to_hex();
    space.leave().await?;
    out.emit(json!({"space": id, "left": true}), || {
        format!("left {selector} ({id}); the others' key was rotated")
    });
    Ok(())
}

/// `coffre contacts`.
pub fn list_contacts(client: &Client, out: &Out) -> Result<()> {
    let contacts = client.contacts().list()?;
    let rows: Vec<Value> = contacts
        .iter()
        .map(|contact| {
            json!({
                "handle": contact.handle().as_str(),
                "fingerprint": contact.identity.fingerprint().digits(),
                "verified": contact.verified,
                "safety_number": client.safety_number(&contact.identity),
            })
        })
        .collect();
    out.emit(Value::Array(rows), || {
        if contacts.is_empty() {
            return "no contacts yet (they are pinned when you share with or are invited by \
                    someone)"
                .to_owned();
        }
        contacts
            .iter()
            .map(|contact| {
                format!(
                    "{:<20} {}  {}",
                    contact.handle().as_str(),
                    contact.identity.fingerprint().display_groups(),
                    if contact.verified {
                        "verified"
                    } else {
                        "not verified"
                    }
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

/// `coffre contacts verify HANDLE`: show the safety number, confirm, mark verified.
pub async fn verify(
    client: &Client,
    out: &Out,
    handle: &str,
    yes: bool,
    accept_changed_key: bool,
) -> Result<()> {
    let user = client.lookup_user(handle).await?;
    if let KeyStatus::Changed { verified } = user.status
        && !accept_changed_key
    {
        return Err(coffre_sdk::Error::KeyChanged {
            handle: handle.to_owned(),
            verified,
        }
        .into());
    }
    let fingerprint = user.identity.fingerprint().display_groups();
    if !yes {
        if out.is_json() || !std::io::stdin().is_terminal() {
            return Err(Exit::new(
                2,
                format!(
                    "compare the safety number with {handle} first, then confirm with --yes:\n{}",
                    user.safety_number
                ),
            )
            .into());
        }
        eprintln!(
            "{handle}'s key: {fingerprint}\nsafety number: {}\nDoes {handle} see the same safety \
             number (`coffre contacts verify <your handle>` on their side)? [y/N] ",
            user.safety_number
        );
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Exit::new(1, "not verified").into());
        }
    }
    client.verify_contact(&user.identity, accept_changed_key)?;
    out.emit(
        json!({
            "contact": identity_json(&user.identity),
            "verified": true,
            "safety_number": user.safety_number,
        }),
        || {
            format!(
                "{handle} verified\nkey: {fingerprint}\nsafety number: {}",
                user.safety_number
            )
        },
    );
    Ok(())
}
