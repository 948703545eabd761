//! Where the SDK keeps its local files, the non-secret `config.toml`, and durable file writes.
//!
//! Layout: with `COFFRE_HOME=<dir>`, everything lives in `<dir>`. Otherwise the XDG base
//! directories: `config.toml` in `$XDG_CONFIG_HOME/coffre` (default `~/.config/coffre`), and the
//! keystore and per-space state in `$XDG_DATA_HOME/coffre` (default `~/.local/share/coffre`).
//!
//! ```text
//! <config>/config.toml         server URL, TLS trust, handle — no secrets
//! <data>/keystore.cfk          identity and device secrets, sealed under the passphrase (0600)
//! <data>/spaces/<id>.json      per-space pins and local name (0600)
//! ```
//!
//! Invariants: every file is written atomically and durably (`write_atomic`: temporary file in
//! the same directory, `fsync`, `rename`, `fsync` of the directory), created with mode `0600` in
//! directories created `0700`, so a crash leaves either the old or the new content and other local
//! users cannot read them.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use coffre_crypto::identity::Handle;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::trust::Trust;

/// File name of the configuration.
pub const CONFIG_FILE: &str = "config.toml";
/// File name of the keystore.
pub const KEYSTORE_FILE: &str = "keystore.cfk";
/// Directory of the per-space state.
pub const SPACES_DIR: &str = "spaces";

/// The local directories of one account on one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Home {
    config_dir: PathBuf,
    data_dir: PathBuf,
}

impl Home {
    /// Everything in one directory (what `COFFRE_HOME` selects).
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        Home {
            config_dir: dir.clone(),
            data_dir: dir,
        }
    }

    /// `COFFRE_HOME` if set, else the XDG base directories.
    pub fn from_env() -> Result<Self> {
        let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(dir) = var("COFFRE_HOME") {
            return Ok(Home::at(dir));
        }
        let home = var("HOME").map(PathBuf::from);
        let base = |xdg: &str, fallback: &str| -> Result<PathBuf> {
            match (var(xdg), &home) {
                (Some(dir), _) => Ok(PathBuf::from(dir)),
                (None, Some(home)) => Ok(home.join(fallback)),
                (None, None) => Err(Error::Config(
                    "neither COFFRE_HOME nor HOME is set; set COFFRE_HOME to a directory".into(),
                )),
            }
        };
        Ok(Home {
            config_dir: base("XDG_CONFIG_HOME", ".config")?.join("coffre"),
            data_dir: base("XDG_DATA_HOME", ".local/share")?.join("coffre"),
        })
    }

    /// The directory of `config.toml`.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The directory of the keystore and state.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// `<config>/config.toml`.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir.join(CONFIG_FILE)
    }

    /// `<data>/keystore.cfk`.
    pub fn keystore_path(&self) -> PathBuf {
        self.data_dir.join(KEYSTORE_FILE)
    }

    /// `<data>/spaces`.
    pub fn spaces_dir(&self) -> PathBuf {
        self.data_dir.join(SPACES_DIR)
    }

    /// `<data>/contacts.json`: pinned identity keys of other users.
    pub fn contacts_path(&self) -> PathBuf {
        self.data_dir.join("contacts.json")
    }
}

/// The non-secret settings of an account on this device (`config.toml`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// The gateway's URL.
    pub server: String,
    /// Which TLS certificates to accept.
    pub trust: Trust,
    /// The account's handle.
    pub handle: Handle,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    server: String,
    trust: String,
    handle: String,
}

impl Config {
    /// Reads `config.toml`.
    pub fn load(home: &Home) -> Result<Self> {
        let path = home.config_path();
        let text = std::fs::read_to_string(&path).map_err(|error| {
            Error::Config(format!(
                "cannot read {} ({error}); create an account or set COFFRE_HOME",
                path.display()
            ))
        })?;
        let file: ConfigFile = toml::from_str(&text)
            .map_err(|error| Error::Config(format!("{}: {error}", path.display())))?;
        let bad = |what: &str, error: Error| {
            Error::Config(format!("{}: {what}: {error}", path.display()))
        };
        Ok(Config {
            server: file.server,
            trust: Trust::parse(&file.trust).map_err(|e| bad("trust", e))?,
            handle: Handle::parse(&file.handle).map_err(|e| bad("handle", e.into()))?,
        })
    }

    /// Writes `config.toml` atomically.
    pub fn save(&self, home: &Home) -> Result<()> {
        let file = ConfigFile {
            server: self.server.clone(),
            trust: self.trust.to_config_string(),
            handle: self.handle.as_str().to_owned(),
        };
        let text = toml::to_string(&file)
            .map_err(|error| Error::Config(format!("cannot encode the configuration: {error}")))?;
        write_atomic(&home.config_path(), text.as_bytes())
    }
}

/// Creates `dir` (and parents) with mode `0700` where it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir)?;
    Ok(())
}

/// Replaces `path` with `bytes` atomically and durably, mode `0600`.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no directory", path.display())))?;
    create_private_dir(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| Error::InvalidInput(format!("{} has no file name", path.display())))?;
    let suffix = coffre_crypto::keys::random_bytes::<8>()?;
    let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
    let temp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));
    let result = write_then_rename(&temp, path, dir, bytes);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

fn write_then_rename(temp: &Path, path: &Path, dir: &Path, bytes: &[u8]) -> Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(temp)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    drop(file);
    std::fs::rename(temp, path)?;
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::trust::CertFingerprint;

    #[test]
    fn config_round_trips_and_holds_no_secret_fields() {
        let dir = tempfile::tempdir().unwrap();
        let home = Home::at(dir.path().join("home"));
        assert!(matches!(Config::load(&home), Err(Error::Config(_))));
        let config = Config {
            server: "https://127.0.0.1:8443".to_owned(),
            trust: Trust::Pinned(CertFingerprint::from_bytes([0xab; 32])),
            handle: Handle::parse("alice").unwrap(),
        };
        config.save(&home).unwrap();
        assert_eq!(Config::load(&home).unwrap(), config);
        let text = std::fs::read_to_string(home.config_path()).unwrap();
        assert!(
            text.contains("server") && text.contains("pin:abab"),
            "{text}"
        );
        std::fs::write(home.config_path(), format!("{text}token = \"x\"\n")).unwrap();
        assert!(matches!(Config::load(&home), Err(Error::Config(_))));
    }

    #[cfg(unix)]
    #[test]
    fn atomic_writes_are_private_and_leave_no_temporary_file() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("a/b");
        let path = sub.join("file");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&sub).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|entry| entry.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file")]);
        // A failed write (the target is a directory) leaves no temporary file behind either.
        let blocked = dir.path().join("a/b/dir");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("inner"), b"").unwrap();
        assert!(write_atomic(&blocked, b"x").is_err());
        let names: Vec<_> = std::fs::read_dir(&sub)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|name| !name.ends_with(".tmp")),
            "{names:?}"
        );
    }
}
