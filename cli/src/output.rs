//! Output: one JSON document per command with `--json`, human text otherwise, nothing with
//! `--quiet` (errors always go to stderr); progress bars only on a terminal.

use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

use coffre_sdk::history::CommitInfo;
use coffre_sdk::progress::Progress;
use coffre_sdk::space_ops::{Change, SpaceStatus};
use coffre_sdk::tree::{EntryInfo, EntryType};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{Value, json};

use crate::exit::Exit;

/// Where results go.
#[derive(Debug, Clone, Copy)]
pub struct Out {
    json: bool,
    quiet: bool,
}

impl Out {
    pub fn new(json: bool, quiet: bool) -> Self {
        Out { json, quiet }
    }

    /// Prints the result: `doc` with `--json`, else `text()` unless `--quiet`.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Prints `doc` with `--json`, else the text (unless `--quiet`).
    pub fn emit(&self, doc: Value, text: impl FnOnce() -> String) {
        let mut stdout = std::io::stdout().lock();
        if self.json {
            let _ = writeln!(stdout, "{doc}");
        } else if !self.quiet {
            let text = text();
            if !text.is_empty() {
                let _ = writeln!(stdout, "{text}");
            }
        }
    }

    /// Prints a warning on stderr (unless `--quiet`).
    pub fn warn(&self, message: &str) {
        if !self.quiet {
            eprintln!("coffre: warning: {message}");
        }
    }

    /// Reports `error` and returns its exit code.
    pub fn fail(&self, error: &Exit) -> ExitCode {
        if self.json {
            let doc = json!({"error": {"kind": error.kind, "exit": error.code, "message": error.message}});
            println!("{doc}");
        }
        eprintln!("coffre: {}", error.message);
        ExitCode::from(error.code)
    }

    fn bars(&self) -> bool {
        !self.quiet && !self.json && std::io::stderr().is_terminal()
    }
}

/// Transfer progress: an indicatif bar on a terminal, warnings only otherwise.
#[derive(Debug)]
pub struct Bar {
    bar: Option<ProgressBar>,
    out: Out,
}

/// The progress reporter for a transfer.
pub fn progress(out: &Out) -> Bar {
    let bar = out.bars().then(|| {
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        bar.set_style(style);
        bar
    });
    Bar { bar, out: *out }
}

impl Bar {
    /// Removes the bar.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn on_start(&self, total_bytes: u64, _total_chunks: u64) {
        if let Some(bar) = &self.bar {
            bar.set_length(total_bytes);
        }
    }

    fn on_chunk_done(&self, bytes: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        }
    }

    fn on_warning(&self, message: &str) {
        match &self.bar {
            Some(bar) => bar.suspend(|| self.out.warn(message)),
            None => self.out.warn(message),
        }
    }
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) of seconds since the Unix epoch.
pub fn utc(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn kind_name(kind: EntryType) -> &'static str {
    match kind {
        EntryType::File => "file",
        EntryType::Dir => "dir",
        EntryType::Symlink => "symlink",
    }
}

pub fn entry_json(entry: &EntryInfo) -> Value {
    json!({
        "name": entry.name,
        "type": kind_name(entry.kind),
        "size": entry.size,
        "mtime": entry.mtime.secs(),
        "mode": entry.mode,
        "target": entry.target,
    })
}

pub fn entry_line(entry: &EntryInfo) -> String {
    let name = match (&entry.kind, &entry.target) {
        (EntryType::Dir, _) => format!("{}/", entry.name),
        (EntryType::Symlink, Some(target)) => format!("{} -> {target}", entry.name),
        _ => entry.name.clone(),
    };
    format!(
        "{:<7} {:>12} {}  {name}",
        kind_name(entry.kind),
        entry.size,
        utc(entry.mtime.secs())
    )
}

pub fn commit_json(commit: &CommitInfo) -> Value {
    json!({
        "seq": commit.seq,
        "hash": commit.hash.to_hex(),
        "epoch": commit.epoch,
        "time_ms": commit.time_ms,
        "message": commit.message,
        "author": commit.author_handle,
        "author_key": hex::encode(commit.author.to_bytes()),
        "device_key": hex::encode(commit.device.to_bytes()),
    })
}

pub fn commit_line(commit: &CommitInfo) -> String {
    format!(
        "{:>4}  {}  {:<12} {}",
        commit.seq,
        utc(commit.time_ms.div_euclid(1000)),
        commit.author_handle.as_deref().unwrap_or("?"),
        commit.message
    )
}

pub fn change_json(change: &Change) -> Value {
    json!({
        "commit": change.commit.as_ref().map(|commit| commit.seq),
        "conflicts": change
            .conflicts
            .iter()
            .map(|(original, copy)| json!({"path": original, "copy": copy}))
            .collect::<Vec<_>>(),
    })
}

pub fn change_text(change: &Change) -> String {
    match &change.commit {
        Some(commit) => format!(" (commit {})", commit.seq),
        None => " (nothing changed, no commit)".to_owned(),
    }
}

pub fn warn_conflicts(out: &Out, change: &Change) {
    for (original, copy) in &change.conflicts {
        out.warn(&format!(
            "{original} was changed concurrently on another device; your version is kept as {copy}"
        ));
    }
}

pub fn status_json(status: &SpaceStatus) -> Value {
    json!({
        "id": status.id,
        "name": status.name,
        "head_seq": status.head_seq,
        "epoch": status.epoch,
        "role": status.role.map(|role| role.name()),
        "members": status.members,
    })
}

pub fn status_line(status: &SpaceStatus) -> String {
    format!(
        "{:<20} {}  head {}  epoch {}  {}  {} member(s)",
        status.name.as_deref().unwrap_or("-"),
        status.id,
        status.head_seq,
        status.epoch,
        status.role.map_or("-", |role| role.name()),
        status.members
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_and_bytes_format() {
        assert_eq!(utc(0), "1970-01-01 00:00:00");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(utc(1_700_000_000), "2023-11-14 22:13:20");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(5 * 1024 * 1024), "5.0 MiB");
    }
}
