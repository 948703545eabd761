//! Benchmark (not a test) of the blob layouts: `cargo run --release -p coffre-gateway --example
//! blob_backends [N_BLOBS]`.
//!
//! For each layout — a raw durable-write baseline (write, fsync, rename, fsync dir: the floor any
//! durable layout pays), content-addressed files, and sled values — a **fresh child process**
//! writes N (default 256) blobs of 1 MiB of pseudo-random bytes, committing each durably, then
//! reads them all back and checks their hashes. Each child reports:
//!
//! - write and read throughput in MB/s (10^6 bytes/s), timing only the store calls (generating
//!   and hashing the data is outside the timed sections); reads are warm-cache (just written);
//! - disk bytes per stored byte, twice: the sum of file lengths under its data directory
//!   (apparent size) and the sum of allocated blocks (`st_blocks * 512`);
//! - the child's peak resident set (`VmHWM`) and its resident set before writing (`VmRSS`), so
//!   `peak - start` is what the layout itself held at its worst. Each blob is generated when it
//!   is written, so the benchmark holds about 2 MiB of data at a time.
//!
//! The data directory is `$COFFRE_BENCH_DIR` or `target/blob-bench` (a real disk, not a tmpfs).
//!
//! Measured once (2 shared cores, ext4 on a virtual disk, `--release`, 256 blobs):
//!
//! ```text
//! baseline  write    85.0 MB/s  read  3039.8 MB/s  disk/stored apparent 1.000 allocated 1.000  peak RSS    4.3 MiB (start 2.1 MiB, delta 2.2 MiB)
//! files     write    81.4 MB/s  read  2621.0 MB/s  disk/stored apparent 1.000 allocated 1.000  peak RSS    5.9 MiB (start 2.2 MiB, delta 3.7 MiB)
//! sled      write   103.8 MB/s  read  3857.1 MB/s  disk/stored apparent 2.563 allocated 2.567  peak RSS  270.6 MiB (start 2.1 MiB, delta 268.5 MiB)
//! ```
//!
//! Files run at 96 % of the raw durable-write floor with 1.00x disk and a flat few MiB of
//! memory; sled writes a little faster (one log, group fsync) but takes 2.56x the disk and holds
//! about the whole data set in memory despite its 16 MiB cache setting: files are the default.

#![allow(missing_docs)]

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use coffre_crypto::keys::{BlobId, SpaceId};
use coffre_gateway::config::BlobBackend;
use coffre_gateway::store::Stores;

type BoxError = Box<dyn std::error::Error>;

const BLOB: usize = 1 << 20;

fn blob_body(n: usize, out: &mut [u8]) {
    let mut xof = blake3::Hasher::new_derive_key("coffre blob bench")
        .update(&n.to_le_bytes())
        .finalize_xof();
    xof.fill(out);
}

fn status_kib(field: &str) -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn dir_size(dir: &Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let (mut apparent, mut allocated) = (0, 0);
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        if metadata.is_dir() {
            let (a, b) = dir_size(&entry.path())?;
            apparent += a;
            allocated += b;
        } else {
            apparent += metadata.len();
            allocated += metadata.blocks() * 512;
        }
    }
    Ok((apparent, allocated))
}

/// The floor: each body to its own file, durably, in one directory.
fn baseline(dir: &Path, count: usize) -> Result<(Duration, Duration), BoxError> {
    fs::create_dir_all(dir)?;
    let dir_handle = File::open(dir)?;
    let mut body = vec![0u8; BLOB];
    let mut write = Duration::ZERO;
    for n in 0..count {
        blob_body(n, &mut body);
        let start = Instant::now();
        let tmp = dir.join(format!("{n}.tmp"));
        let mut file = File::create(&tmp)?;
        file.write_all(&body)?;
        file.sync_all()?;
        fs::rename(&tmp, dir.join(n.to_string()))?;
        dir_handle.sync_all()?;
        write += start.elapsed();
    }
    let mut read = Duration::ZERO;
    let mut buffer = Vec::with_capacity(BLOB);
    for n in 0..count {
        blob_body(n, &mut body);
        buffer.clear();
        let start = Instant::now();
        File::open(dir.join(n.to_string()))?.read_to_end(&mut buffer)?;
        read += start.elapsed();
        if buffer != body {
            return Err("baseline read back different bytes".into());
        }
    }
    Ok((write, read))
}

fn store(dir: &Path, backend: BlobBackend, count: usize) -> Result<(Duration, Duration), BoxError> {
    let stores = Stores::open(dir, backend)?;
    let space = SpaceId::from_bytes([1; 32]);
    let mut body = vec![0u8; BLOB];
    let mut ids = Vec::with_capacity(count);
    let mut write = Duration::ZERO;
    for n in 0..count {
        blob_body(n, &mut body);
        let blob = BlobId::from_bytes(*blake3::hash(&body).as_bytes());
        let start = Instant::now();
        let mut writer = stores.blobs.begin(&space, &blob)?;
        // The gateway streams bodies in pieces; 64 KiB is a typical HTTP frame batch.
        for piece in body.chunks(64 * 1024) {
            writer.write(piece)?;
        }
        writer.commit()?;
        write += start.elapsed();
        ids.push(blob);
    }
    let mut read = Duration::ZERO;
    let mut buffer = Vec::with_capacity(BLOB);
    for blob in &ids {
        buffer.clear();
        let start = Instant::now();
        let reader = stores.blobs.open(&space, blob)?.ok_or("blob missing")?;
        let mut reader_body = reader.body;
        reader_body.read_to_end(&mut buffer)?;
        read += start.elapsed();
        if blake3::hash(&buffer).as_bytes() != blob.as_bytes() {
            return Err("read back a body that does not hash to its id".into());
        }
    }
    Ok((write, read))
}

fn child(mode: &str, dir: &Path, count: usize) -> Result<(), BoxError> {
    let start_rss = status_kib("VmRSS:");
    let (write, read) = match mode {
        "baseline" => baseline(dir, count)?,
        "files" => store(dir, BlobBackend::Files, count)?,
        "sled" => store(dir, BlobBackend::Sled, count)?,
        _ => return Err(format!("unknown mode {mode}").into()),
    };
    let (apparent, allocated) = dir_size(dir)?;
    let stored = (count * BLOB) as f64;
    let mb = stored / 1e6;
    println!(
        "{mode:<9} write {:>7.1} MB/s  read {:>7.1} MB/s  disk/stored apparent {:.3} allocated {:.3}  \
         peak RSS {:>6.1} MiB (start {:.1} MiB, delta {:.1} MiB)",
        mb / write.as_secs_f64(),
        mb / read.as_secs_f64(),
        apparent as f64 / stored,
        allocated as f64 / stored,
        status_kib("VmHWM:") as f64 / 1024.0,
        start_rss as f64 / 1024.0,
        (status_kib("VmHWM:").saturating_sub(start_rss)) as f64 / 1024.0,
    );
    Ok(())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--child") {
        let (mode, dir, count) = match (args.get(2), args.get(3), args.get(4)) {
            (Some(mode), Some(dir), Some(count)) => (mode, PathBuf::from(dir), count.parse()?),
            _ => return Err("usage: --child MODE DIR COUNT".into()),
        };
        return child(mode, &dir, count);
    }
    let count: usize = args.get(1).map(|c| c.parse()).transpose()?.unwrap_or(256);
    let base = std::env::var_os("COFFRE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/blob-bench"));
    println!(
        "{count} blobs x 1 MiB, each committed durably; one fresh process per layout; dir {}",
        base.display()
    );
    for mode in ["baseline", "files", "sled"] {
        let dir = base.join(mode);
        if dir.exists() {
            fs::remove_dir_all(&dir)?;
        }
        let status = Command::new(std::env::current_exe()?)
            .args(["--child", mode])
            .arg(&dir)
            .arg(count.to_string())
            .status()?;
        fs::remove_dir_all(&dir)?;
        if !status.success() {
            return Err(format!("{mode} run failed").into());
        }
    }
    Ok(())
}
