//! Loading a [`Config`]: defaults, then a TOML file, then `COFFRE_GATEWAY_*` variables, then flags.
//!
//! One table, [`KEYS`], names every key once with its type; the file and the environment are both
//! applied through it, so they cannot drift apart. Unknown keys in the file are errors (a typo must
//! not silently leave a default in place); unknown `COFFRE_GATEWAY_*` variables are reported as
//! warnings, because the same environment may hold variables of other coffre programs.
//!
//! Durations are given in seconds (integer or decimal). Every value is checked after all layers
//! are applied, with errors naming the key, and so that no limit can make hyper or the timer
//! arithmetic panic (for example a header buffer under hyper's 8 KiB minimum, or a timeout so
//! large that `Instant + timeout` overflows).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{BlobBackend, Config, LogFormat};
use crate::error::{Error, Result};

/// Prefix of the environment variables that override the file.
pub const ENV_PREFIX: &str = "COFFRE_GATEWAY_";

/// Longest accepted duration (a year): far beyond any sane setting, far below overflow.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The type of a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A string (paths, addresses, names of variants).
    Text,
    /// A non-negative integer.
    Whole,
    /// A non-negative decimal number.
    Real,
    /// A duration in seconds (integer or decimal).
    Seconds,
    /// A list of strings (comma-separated in the environment).
    List,
}

/// One configuration key.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    /// Its name in the TOML file (`limits.` keys live in the `[limits]` table).
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
}

impl Key {
    /// The environment variable that overrides it: `COFFRE_GATEWAY_` and the name without its
    /// table, in capitals (`limits.idle_timeout_secs` is `COFFRE_GATEWAY_IDLE_TIMEOUT_SECS`).
    pub fn env_var(&self) -> String {
        let bare = self.name.strip_prefix("limits.").unwrap_or(self.name);
        format!("{ENV_PREFIX}{}", bare.to_ascii_uppercase())
    }
}

const fn key(name: &'static str, kind: Kind) -> Key {
    Key { name, kind }
}

/// Every configuration key.
pub const KEYS: &[Key] = &[
    key("data", Kind::Text),
    key("listen", Kind::Text),
    key("tls_cert", Kind::Text),
    key("tls_key", Kind::Text),
    key("tls_names", Kind::List),
    key("blob_backend", Kind::Text),
    key("log", Kind::Text),
    key("log_format", Kind::Text),
    key("quota_bytes", Kind::Whole),
    key("token_ttl_secs", Kind::Seconds),
    key("challenge_ttl_secs", Kind::Seconds),
    key("prune_grace_secs", Kind::Seconds),
    key("max_inbox", Kind::Whole),
    key("rate_per_account", Kind::Real),
    key("burst_per_account", Kind::Real),
    key("rate_per_address", Kind::Real),
    key("burst_per_address", Kind::Real),
    key("limits.max_connections", Kind::Whole),
    key("limits.max_connections_per_address", Kind::Whole),
    key("limits.tls_handshake_timeout_secs", Kind::Seconds),
    key("limits.header_read_timeout_secs", Kind::Seconds),
    key("limits.idle_timeout_secs", Kind::Seconds),
    key("limits.request_timeout_secs", Kind::Seconds),
    key("limits.shutdown_grace_secs", Kind::Seconds),
    key("limits.max_header_bytes", Kind::Whole),
    key("limits.max_headers", Kind::Whole),
    key("limits.max_concurrent_streams", Kind::Whole),
    key("limits.max_pending_resets", Kind::Whole),
    key("limits.h2_stream_window", Kind::Whole),
    key("limits.h2_connection_window", Kind::Whole),
    key("limits.h2_max_send_buffer", Kind::Whole),
    key("limits.max_json_bytes", Kind::Whole),
    key("limits.max_blob_bytes", Kind::Whole),
    key("limits.max_batch_bytes", Kind::Whole),
];

/// Values given as command-line flags: the last layer, above the environment.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `--data`
    pub data_dir: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<SocketAddr>,
    /// `--tls-cert`
    pub tls_cert: Option<PathBuf>,
    /// `--tls-key`
    pub tls_key: Option<PathBuf>,
    /// `--blob-backend`
    pub blob_backend: Option<BlobBackend>,
    /// `--log-format`
    pub log_format: Option<LogFormat>,
}

/// A loaded configuration and what the loader wants the operator to know.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Harmless oddities (unknown `COFFRE_GATEWAY_*` variables), to be logged once logging is up.
    pub warnings: Vec<String>,
}

impl Config {
    /// Loads a configuration: defaults, then `file` (TOML), then the `COFFRE_GATEWAY_*` variables
    /// of `env`, then `overrides`; then checks every value.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        overrides: &Overrides,
    ) -> Result<Loaded> {
        let mut config = Config::default();
        if let Some(path) = file {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Error::Config(format!("cannot read config file {}: {e}", path.display()))
            })?;
            apply_toml(&mut config, &text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
        }
        let mut warnings = Vec::new();
        for (name, value) in env {
            if name == "COFFRE_GATEWAY_CONFIG" || !name.starts_with(ENV_PREFIX) {
                continue;
            }
            match KEYS.iter().find(|key| key.env_var() == name) {
                Some(key) => set(&mut config, key, &value)
                    .map_err(|e| Error::Config(format!("environment variable {name}: {e}")))?,
                None => warnings.push(format!("unknown environment variable {name} ignored")),
            }
        }
        overrides.apply(&mut config);
        config.validate()?;
        Ok(Loaded { config, warnings })
    }

    /// Checks the values that no type can rule out, naming the key of the first bad one.
    pub fn validate(&self) -> Result<()> {
        let l = &self.limits;
        let bad = |key: &str, why: &str| Err(Error::Config(format!("{key}: {why}")));
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return bad("tls_cert", "tls_cert and tls_key must be given together");
        }
        if l.max_connections == 0 || l.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return bad("limits.max_connections", "must be between 1 and 2^61");
        }
        if l.max_connections_per_address == 0 {
            return bad("limits.max_connections_per_address", "must be at least 1");
        }
        if l.max_header_bytes < 8192 || u32::try_from(l.max_header_bytes).is_err() {
            return bad(
                "limits.max_header_bytes",
                "must be at least 8192 (hyper's smallest buffer)",
            );
        }
        if l.max_headers == 0 || l.max_concurrent_streams == 0 {
            return bad(
                "limits.max_headers / limits.max_concurrent_streams",
                "must be at least 1",
            );
        }
        // RFC 9113 section 6.9.1: windows are at least the 65 535-byte initial window (smaller
        // would stall) and at most 2^31 - 1.
        let window = 65_535..=0x7fff_ffff;
        if !window.contains(&l.h2_stream_window) || !window.contains(&l.h2_connection_window) {
            return bad(
                "limits.h2_stream_window / limits.h2_connection_window",
                "must be between 65535 and 2147483647",
            );
        }
        if l.h2_max_send_buffer < 16 * 1024 {
            return bad("limits.h2_max_send_buffer", "must be at least 16384");
        }
        if l.max_json_bytes == 0
            || l.max_blob_bytes == 0
            || l.max_batch_bytes == 0
            || self.max_inbox == 0
        {
            return bad(
                "limits.max_json_bytes / limits.max_blob_bytes / limits.max_batch_bytes / max_inbox",
                "must be at least 1",
            );
        }
        let durations = [
            ("limits.tls_handshake_timeout_secs", l.tls_handshake_timeout),
            ("limits.header_read_timeout_secs", l.header_read_timeout),
            ("limits.idle_timeout_secs", l.idle_timeout),
            ("limits.request_timeout_secs", l.request_timeout),
            ("limits.shutdown_grace_secs", l.shutdown_grace),
            ("token_ttl_secs", self.token_ttl),
            ("challenge_ttl_secs", self.challenge_ttl),
        ];
        for (key, value) in durations {
            if value.is_zero() || value > MAX_DURATION {
                return bad(key, "must be more than 0 and at most a year");
            }
        }
        if self.prune_grace > MAX_DURATION {
            return bad("prune_grace_secs", "must be at most a year");
        }
        let rates = [
            ("rate_per_account", self.rate_per_account),
            ("burst_per_account", self.burst_per_account),
            ("rate_per_address", self.rate_per_address),
            ("burst_per_address", self.burst_per_address),
        ];
        for (key, value) in rates {
            if !(value.is_finite() && value > 0.0) {
                return bad(key, "must be a positive number");
            }
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log_filter) {
            return bad("log", &format!("not a valid log filter: {e}"));
        }
        Ok(())
    }
}

impl Overrides {
    fn apply(&self, config: &mut Config) {
        if let Some(data) = &self.data_dir {
            config.data_dir = data.clone();
        }
        if let Some(listen) = self.listen {
            config.listen = listen;
        }
        if let Some(cert) = &self.tls_cert {
            config.tls_cert = Some(cert.clone());
        }
        if let Some(key) = &self.tls_key {
            config.tls_key = Some(key.clone());
        }
        if let Some(backend) = self.blob_backend {
            config.blob_backend = backend;
        }
        if let Some(format) = self.log_format {
            config.log_format = format;
        }
    }
}

/// Applies a TOML document: top-level keys and a `[limits]` table, nothing else.
fn apply_toml(config: &mut Config, text: &str) -> Result<(), String> {
    let table: toml::Table = toml::from_str(text).map_err(|e| format!("invalid TOML: {e}"))?;
    for (name, value) in &table {
        if name == "limits" {
            let toml::Value::Table(limits) = value else {
                return Err("limits: expected a table ([limits])".into());
            };
            for (name, value) in limits {
                apply_value(config, &format!("limits.{name}"), value)?;
            }
        } else {
            apply_value(config, name, value)?;
        }
    }
    Ok(())
}

fn apply_value(config: &mut Config, name: &str, value: &toml::Value) -> Result<(), String> {
    let Some(key) = KEYS.iter().find(|key| key.name == name) else {
        return Err(format!("unknown key `{name}`"));
    };
    let raw = match (key.kind, value) {
        (Kind::Text, toml::Value::String(s)) => s.clone(),
        (Kind::Whole, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Real | Kind::Seconds, toml::Value::Integer(i)) => i.to_string(),
        (Kind::Real | Kind::Seconds, toml::Value::Float(f)) => f.to_string(),
        (Kind::List, toml::Value::Array(items)) => {
            let mut names = Vec::new();
            for item in items {
                match item {
                    toml::Value::String(s) if !s.contains(',') => names.push(s.clone()),
                    _ => return Err(format!("{name}: expected a list of names")),
                }
            }
            names.join(",")
        }
        (kind, other) => {
            return Err(format!(
                "{name}: expected {}, found {}",
                describe(kind),
                other.type_str()
            ));
        }
    };
    set(config, key, &raw).map_err(|e| format!("{name}: {e}"))
}

fn describe(kind: Kind) -> &'static str {
    match kind {
        Kind::Text => "a string",
        Kind::Whole => "a whole number",
        Kind::Real => "a number",
        Kind::Seconds => "a number of seconds",
        Kind::List => "a list of strings",
    }
}

/// Sets one key from its textual form (the environment's, or a TOML value's).
fn set(config: &mut Config, key: &Key, raw: &str) -> Result<(), String> {
    let raw = raw.trim();
    let l = &mut config.limits;
    match key.name {
        "data" => config.data_dir = non_empty_path(raw)?,
        "listen" => {
            config.listen = raw.parse().map_err(|_| {
                format!("`{raw}` is not an address like 127.0.0.1:8443 or [::1]:8443")
            })?;
        }
        "tls_cert" => config.tls_cert = Some(non_empty_path(raw)?),
        "tls_key" => config.tls_key = Some(non_empty_path(raw)?),
        "tls_names" => {
            config.tls_names = raw
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(str::to_owned)
                .collect();
        }
        "blob_backend" => {
            config.blob_backend = match raw {
                "files" => BlobBackend::Files,
                "sled" => BlobBackend::Sled,
                _ => return Err(format!("`{raw}` is not one of: files, sled")),
            };
        }
        "log" => config.log_filter = raw.to_owned(),
        "log_format" => {
            config.log_format = match raw {
                "text" => LogFormat::Text,
                "json" => LogFormat::Json,
                _ => return Err(format!("`{raw}` is not one of: text, json")),
            };
        }
        "quota_bytes" => config.default_quota_bytes = whole(raw)?,
        "token_ttl_secs" => config.token_ttl = seconds(raw)?,
        "challenge_ttl_secs" => config.challenge_ttl = seconds(raw)?,
        "prune_grace_secs" => config.prune_grace = seconds(raw)?,
        "max_inbox" => config.max_inbox = whole_usize(raw)?,
        "rate_per_account" => config.rate_per_account = real(raw)?,
        "burst_per_account" => config.burst_per_account = real(raw)?,
        "rate_per_address" => config.rate_per_address = real(raw)?,
        "burst_per_address" => config.burst_per_address = real(raw)?,
        "limits.max_connections" => l.max_connections = whole_usize(raw)?,
        "limits.max_connections_per_address" => {
            l.max_connections_per_address = whole_usize(raw)?;
        }
        "limits.tls_handshake_timeout_secs" => l.tls_handshake_timeout = seconds(raw)?,
        "limits.header_read_timeout_secs" => l.header_read_timeout = seconds(raw)?,
        "limits.idle_timeout_secs" => l.idle_timeout = seconds(raw)?,
        "limits.request_timeout_secs" => l.request_timeout = seconds(raw)?,
        "limits.shutdown_grace_secs" => l.shutdown_grace = seconds(raw)?,
        "limits.max_header_bytes" => l.max_header_bytes = whole_usize(raw)?,
        "limits.max_headers" => l.max_headers = whole_usize(raw)?,
        "limits.max_concurrent_streams" => {
            l.max_concurrent_streams = u32::try_from(whole(raw)?).map_err(|_| "too large")?;
        }
        "limits.max_pending_resets" => l.max_pending_resets = whole_usize(raw)?,
        "limits.h2_stream_window" => {
            l.h2_stream_window = u32::try_from(whole(raw)?).map_err(|_| "too large")?;
        }
        "limits.h2_connection_window" => {
            l.h2_connection_window = u32::try_from(whole(raw)?).map_err(|_| "too large")?;
        }
        "limits.h2_max_send_buffer" => l.h2_max_send_buffer = whole_usize(raw)?,
        "limits.max_json_bytes" => l.max_json_bytes = whole(raw)?,
        "limits.max_blob_bytes" => l.max_blob_bytes = whole(raw)?,
        "limits.max_batch_bytes" => l.max_batch_bytes = whole(raw)?,
        // Invariant: every name in KEYS has an arm above (the unit tests set every key).
        other => return Err(format!("unknown key `{other}`")),
    }
    Ok(())
}

fn non_empty_path(raw: &str) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(PathBuf::from(raw))
}

fn whole(raw: &str) -> Result<u64, String> {
    raw.replace('_', "")
        .parse()
        .map_err(|_| format!("`{raw}` is not a whole number"))
}

fn whole_usize(raw: &str) -> Result<usize, String> {
    usize::try_from(whole(raw)?).map_err(|_| format!("`{raw}` is too large"))
}

fn real(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(value) if value.is_finite() && value >= 0.0 => Ok(value),
        _ => Err(format!("`{raw}` is not a non-negative number")),
    }
}

fn seconds(raw: &str) -> Result<Duration, String> {
    let value = real(raw).map_err(|_| format!("`{raw}` is not a number of seconds"))?;
    Duration::try_from_secs_f64(value).map_err(|_| format!("`{raw}` seconds is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn load_toml(text: &str, vars: &[(&str, &str)], overrides: &Overrides) -> Result<Loaded> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(Some(&path), env(vars), overrides)
    }

    #[test]
    fn nothing_given_is_the_documented_default() {
        let loaded = Config::load(None, env(&[("HOME", "/x")]), &Overrides::default()).unwrap();
        assert_eq!(loaded.config.data_dir, PathBuf::from("coffre-data"));
        assert_eq!(loaded.config.listen.to_string(), "127.0.0.1:8443");
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn file_then_env_then_flags() {
        let text = r#"
            data = "/from/file"
            listen = "127.0.0.1:1000"
            blob_backend = "sled"
            quota_bytes = 1_000
            tls_names = ["files.example.org", "10.0.0.7"]
            [limits]
            header_read_timeout_secs = 1.5
            max_connections = 7
        "#;
        let vars = [
            ("COFFRE_GATEWAY_LISTEN", "127.0.0.1:2000"),
            ("COFFRE_GATEWAY_DATA", "/from/env"),
            ("COFFRE_GATEWAY_MAX_CONNECTIONS", "9"),
            ("COFFRE_GATEWAY_TYPO", "1"),
            ("COFFRE_GATEWAY_CONFIG", "ignored: names the file"),
        ];
        let flags = Overrides {
            data_dir: Some("/from/flag".into()),
            ..Overrides::default()
        };
        let loaded = load_toml(text, &vars, &flags).unwrap();
        let config = loaded.config;
        assert_eq!(config.data_dir, PathBuf::from("/from/flag"));
        assert_eq!(config.listen.port(), 2000);
        assert_eq!(config.blob_backend, BlobBackend::Sled);
        assert_eq!(config.default_quota_bytes, 1000);
        assert_eq!(config.tls_names, ["files.example.org", "10.0.0.7"]);
        assert_eq!(
            config.limits.header_read_timeout,
            Duration::from_millis(1500)
        );
        assert_eq!(config.limits.max_connections, 9);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(loaded.warnings[0].contains("COFFRE_GATEWAY_TYPO"));
    }

    #[test]
    fn every_key_can_be_set_from_the_environment() {
        for key in KEYS {
            let value = match key.kind {
                Kind::Text => match key.name {
                    "listen" => "127.0.0.1:1",
                    "blob_backend" => "sled",
                    "log_format" => "json",
                    "log" => "debug",
                    _ => "/some/path",
                },
                Kind::Whole => "65536",
                Kind::Real | Kind::Seconds => "2",
                Kind::List => "a,b",
            };
            let mut vars = vec![(key.env_var(), value.to_owned())];
            if key.name == "tls_cert" || key.name == "tls_key" {
                vars = env(&[
                    ("COFFRE_GATEWAY_TLS_CERT", "/c"),
                    ("COFFRE_GATEWAY_TLS_KEY", "/k"),
                ]);
            }
            let loaded = Config::load(None, vars, &Overrides::default());
            let loaded = loaded.unwrap_or_else(|e| panic!("{}: {e}", key.name));
            assert!(loaded.warnings.is_empty(), "{}", key.name);
        }
    }

    #[test]
    fn bad_values_are_errors_naming_the_key() {
        let cases = [
            ("colour = 1", "colour"),
            ("[limits]\nmax_conections = 1", "limits.max_conections"),
            ("listen = \"localhost\"", "listen"),
            ("blob_backend = \"s3\"", "blob_backend"),
            ("quota_bytes = -1", "quota_bytes"),
            ("quota_bytes = \"12\"", "quota_bytes"),
            (
                "[limits]\nidle_timeout_secs = 0",
                "limits.idle_timeout_secs",
            ),
            (
                "[limits]\nmax_header_bytes = 100",
                "limits.max_header_bytes",
            ),
            (
                "[limits]\nrequest_timeout_secs = 1e30",
                "limits.request_timeout_secs",
            ),
            (
                "[limits]\nh2_stream_window = 1000",
                "limits.h2_stream_window",
            ),
            (
                "[limits]\nh2_connection_window = 4294967295",
                "limits.h2_connection_window",
            ),
            (
                "[limits]\nh2_max_send_buffer = 10",
                "limits.h2_max_send_buffer",
            ),
            ("limits = 3", "limits"),
            ("tls_cert = \"/c\"", "tls_cert"),
            ("rate_per_account = 0", "rate_per_account"),
            ("log = \"[[[\"", "log"),
            ("data = ", "invalid TOML"),
        ];
        for (text, named) in cases {
            let error = load_toml(text, &[], &Overrides::default()).unwrap_err();
            assert!(matches!(error, Error::Config(_)), "{text}");
            let message = error.to_string();
            assert!(message.contains(named), "{text}: {message}");
        }
        let error = Config::load(
            None,
            env(&[("COFFRE_GATEWAY_IDLE_TIMEOUT_SECS", "soon")]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("COFFRE_GATEWAY_IDLE_TIMEOUT_SECS")
        );
    }

    #[test]
    fn missing_file_is_a_config_error() {
        let error = Config::load(
            Some(Path::new("/no/such/gateway.toml")),
            env(&[]),
            &Overrides::default(),
        )
        .unwrap_err();
        assert!(error.to_string().contains("/no/such/gateway.toml"));
    }
}
