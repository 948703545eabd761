//! The `coffre-gateway` binary: `serve`, `check` and `fingerprint`.
//!
//! Output contract: human and machine-readable startup lines go to **stderr**, prefixed
//! `coffre-gateway: ` (tests and scripts parse `listening on https://ADDR` and `pin HEX`); logs go
//! to stderr too; stdout carries only a command's result (`check` report, `fingerprint`).
//!
//! Exit codes: 0 success (and clean shutdown), 1 `check` found problems, 2 error.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use coffre_gateway::config::{BlobBackend, Config, LogFormat, Overrides};
use coffre_gateway::store::Stores;
use coffre_gateway::{Error, server, tls};

/// coffre's HTTPS gateway: stores client-encrypted blobs, signed logs and heads.
///
/// Configuration: a TOML file (--config), then COFFRE_GATEWAY_* environment variables, then
/// flags. With nothing given it serves https://127.0.0.1:8443 from ./coffre-data with a generated
/// self-signed certificate whose fingerprint it prints for clients to pin.
#[derive(Debug, Parser)]
#[command(name = "coffre-gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API over HTTPS until SIGINT or SIGTERM, then finish in-flight requests and exit.
    Serve(ServeArgs),
    /// Verify a data directory (every index entry; with --read-data every blob's hash).
    /// Exits 0 if clean, 1 if problems were found, 2 on error. Stop the gateway first.
    Check(CheckArgs),
    /// Print the SHA-256 fingerprint of the gateway's certificate, for clients to pin.
    Fingerprint(FingerprintArgs),
}

#[derive(Debug, Args)]
struct ConfigArgs {
    /// TOML configuration file.
    #[arg(long, value_name = "FILE", env = "COFFRE_GATEWAY_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory [default: ./coffre-data] (env COFFRE_GATEWAY_DATA).
    #[arg(long, value_name = "DIR")]
    data: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ServeArgs {
    #[command(flatten)]
    common: ConfigArgs,
    /// Address to listen on [default: 127.0.0.1:8443]; port 0 picks a free port
    /// (env COFFRE_GATEWAY_LISTEN).
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// PEM certificate chain; without it a self-signed certificate is generated in DIR/tls.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Where blob bodies are stored [default: files] (env COFFRE_GATEWAY_BLOB_BACKEND).
    #[arg(long, value_enum)]
    blob_backend: Option<BackendArg>,
    /// Log line format [default: text] (env COFFRE_GATEWAY_LOG_FORMAT). The filter comes from
    /// RUST_LOG, else COFFRE_GATEWAY_LOG, else `info`.
    #[arg(long, value_enum)]
    log_format: Option<FormatArg>,
}

#[derive(Debug, Args)]
struct CheckArgs {
    /// Data directory to verify.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,
    /// Also read every blob body and check its hash (slow: reads all data).
    #[arg(long)]
    read_data: bool,
}

#[derive(Debug, Args)]
struct FingerprintArgs {
    #[command(flatten)]
    common: ConfigArgs,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BackendArg {
    Files,
    Sled,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum FormatArg {
    Text,
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::Check(args) => check(&args),
        Command::Fingerprint(args) => fingerprint(&args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("coffre-gateway: error: {error}");
            ExitCode::from(2)
        }
    }
}

fn load_config(common: &ConfigArgs, overrides: Overrides) -> Result<Config, Error> {
    let overrides = Overrides {
        data_dir: common.data.clone(),
        ..overrides
    };
    let loaded = Config::load(common.config.as_deref(), std::env::vars(), &overrides)?;
    for warning in &loaded.warnings {
        eprintln!("coffre-gateway: warning: {warning}");
    }
    Ok(loaded.config)
}

fn serve(args: ServeArgs) -> Result<ExitCode, Error> {
    let overrides = Overrides {
        listen: args.listen,
        tls_cert: args.tls_cert,
        tls_key: args.tls_key,
        blob_backend: args.blob_backend.map(|b| match b {
            BackendArg::Files => BlobBackend::Files,
            BackendArg::Sled => BlobBackend::Sled,
        }),
        log_format: args.log_format.map(|f| match f {
            FormatArg::Text => LogFormat::Text,
            FormatArg::Json => LogFormat::Json,
        }),
        ..Overrides::default()
    };
    let config = load_config(&args.common, overrides)?;
    init_logging(&config);
    let tls = tls::load_or_generate(&config)?;
    let stores = Stores::open(&config.data_dir, config.blob_backend)?;
    let recovery = coffre_gateway::check::recover(&stores)?;
    if recovery != coffre_gateway::check::Recovery::default() {
        tracing::warn!(
            orphans_deleted = recovery.orphans_deleted,
            quotas_released = recovery.quotas_released,
            bytes_released = recovery.bytes_released,
            quotas_charged = recovery.quotas_charged,
            "recovered from an unclean stop: deleted unindexed blob bodies, released quota of uploads that never completed"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
        let address = listener.local_addr()?;
        // Handlers are installed before the address is announced: a supervisor (or a test)
        // that sends SIGTERM as soon as it reads the address gets a graceful stop.
        let shutdown = shutdown_signal()?;
        announce(&config, &tls, address);
        server::run_with_tls(listener, config, stores, tls, shutdown).await
    })?;
    Ok(ExitCode::SUCCESS)
}

/// The startup message: what an operator needs, in lines a script can parse.
fn announce(config: &Config, tls: &tls::TlsSetup, address: std::net::SocketAddr) {
    let backend = match config.blob_backend {
        BlobBackend::Files => "files",
        BlobBackend::Sled => "sled",
    };
    eprintln!("coffre-gateway: listening on https://{address}");
    eprintln!(
        "coffre-gateway: data directory {} (blob backend {backend})",
        config.data_dir.display()
    );
    eprintln!("coffre-gateway: certificate {}", tls.cert_path.display());
    eprintln!(
        "coffre-gateway: certificate SHA-256 fingerprint {}",
        tls.fingerprint
    );
    eprintln!("coffre-gateway: pin {}", tls.fingerprint.to_hex());
    if tls.generated {
        eprintln!(
            "coffre-gateway: first run: generated a self-signed certificate; clients must pin \
             the fingerprint above (it stays the same on later runs)"
        );
    }
}

fn init_logging(config: &Config) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|value| tracing_subscriber::EnvFilter::try_new(value).ok())
        .unwrap_or_else(|| {
            // Config::validate has checked the filter; "info" is the fallback all the same.
            tracing_subscriber::EnvFilter::try_new(&config.log_filter)
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

/// Installs the SIGINT and SIGTERM handlers now (inside the runtime) and returns a future that
/// completes on the first of them.
#[cfg(unix)]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Error> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => tracing::info!("SIGINT received"),
            _ = terminate.recv() => tracing::info!("SIGTERM received"),
        }
    })
}

/// Completes on Ctrl-C (the only stop signal off Unix).
#[cfg(not(unix))]
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Error> {
    Ok(async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::warn!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
        tracing::info!("Ctrl-C received");
    })
}

fn check(args: &CheckArgs) -> Result<ExitCode, Error> {
    let report = coffre_gateway::check::check(&args.data, args.read_data)?;
    println!(
        "checked {} accounts, {} spaces, {} indexed blobs, {} stored blobs",
        report.accounts, report.spaces, report.indexed_blobs, report.stored_blobs
    );
    if report.read_data {
        println!("read and hashed {} bytes of blob data", report.bytes_read);
    } else {
        println!("blob bodies not read (use --read-data to hash every blob)");
    }
    if report.is_clean() {
        println!("no problems found");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{} problem(s) found:", report.problems.len());
    for problem in &report.problems {
        println!("  - {problem}");
    }
    Ok(ExitCode::from(1))
}

fn fingerprint(args: &FingerprintArgs) -> Result<ExitCode, Error> {
    let config = load_config(&args.common, Overrides::default())?;
    let path = match &config.tls_cert {
        Some(path) => path.clone(),
        None => tls::generated_paths(&config.data_dir).0,
    };
    if !Path::new(&path).exists() {
        return Err(Error::Config(format!(
            "no certificate at {} yet; `coffre-gateway serve` generates it on first run",
            path.display()
        )));
    }
    let fingerprint = tls::fingerprint_of_pem_file(&path)?;
    println!("{}", fingerprint.to_colon_hex());
    println!("{}", fingerprint.to_hex());
    Ok(ExitCode::SUCCESS)
}
