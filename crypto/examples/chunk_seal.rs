//! Streams a file through the upload pipeline of FORMAT.md section 5, single-threaded:
//! `Chunker` (FastCDC) → `chunk_key` (BLAKE3 keyed hash) → `seal_chunk` (envelope: padding,
//! XChaCha20-Poly1305 with key commitment, BLAKE3 blob id), and reports the throughput and the
//! peak resident memory.
//!
//! ```text
//! cargo run --release -p coffre-crypto --example chunk_seal -- FILE [--out PATH]
//! ```
//!
//! Nothing is written unless `--out PATH` is given (e.g. `--out /dev/null`), in which case the
//! envelopes are written there one after another. Memory is constant: the chunker holds one
//! 4 MiB buffer, and one chunk and its envelope are alive at a time, whatever the file size.
//!
//! The keys are fixed demo keys: this measures speed, it is not a way to encrypt files.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use coffre_crypto::chunker::{Chunker, ChunkerSeed, ConvergenceKey, seal_chunk};
use coffre_crypto::keys::{EpochKey, SpaceId};

/// Peak resident set size in KiB (`VmHWM` of `/proc/self/status`), if the platform reports it.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn run(path: &str, out_path: Option<&str>) -> Result<(), Box<dyn std::error::Error>> {
    let space = SpaceId::from_bytes([0x5a; 32]);
    let epoch_key = EpochKey::from_bytes([0xe9; 32]);
    let seed = ChunkerSeed::derive(&space, 1, &epoch_key);
    let convergence = ConvergenceKey::derive(&space, 1, &epoch_key);

    let file = File::open(path).map_err(|error| format!("cannot open {path}: {error}"))?;
    let mut out = match out_path {
        Some(out_path) => {
            Some(BufWriter::new(File::create(out_path).map_err(|error| {
                format!("cannot create {out_path}: {error}")
            })?))
        }
        None => None,
    };

    let rss_before = peak_rss_kib();
    let mut bytes = 0u64;
    let mut envelope_bytes = 0u64;
    let mut chunks = 0u64;
    let mut chunking = Duration::ZERO; // file read + FastCDC + copy of the chunk out of its buffer
    let mut sealing = Duration::ZERO; // chunk key + envelope (pad, encrypt, blob id)
    let start = Instant::now();
    let mut chunker = Chunker::new(file, &seed);
    loop {
        let t0 = Instant::now();
        let Some(chunk) = chunker.next() else { break };
        let chunk = chunk?;
        let t1 = Instant::now();
        let (reference, sealed) = seal_chunk(&convergence, &chunk.data)?;
        sealing += t1.elapsed();
        chunking += t1 - t0;
        if let Some(out) = out.as_mut() {
            out.write_all(sealed.as_bytes())?;
        }
        std::hint::black_box(&reference);
        bytes += chunk.data.len() as u64;
        envelope_bytes += sealed.as_bytes().len() as u64;
        chunks += 1;
    }
    if let Some(out) = out.as_mut() {
        out.flush()?;
    }
    let seconds = start.elapsed().as_secs_f64();

    let mb_s = bytes as f64 / 1e6 / seconds;
    let mib_s = bytes as f64 / (1024.0 * 1024.0) / seconds;
    println!("file:            {path}");
    println!(
        "bytes:           {bytes} ({:.1} MiB)",
        bytes as f64 / 1048576.0
    );
    println!(
        "chunks:          {chunks} (mean {:.0} KiB)",
        if chunks == 0 {
            0.0
        } else {
            bytes as f64 / chunks as f64 / 1024.0
        }
    );
    println!(
        "envelopes:       {envelope_bytes} bytes (+{:.2} % padding and overhead)",
        if bytes == 0 {
            0.0
        } else {
            (envelope_bytes as f64 / bytes as f64 - 1.0) * 100.0
        }
    );
    println!("seconds:         {seconds:.3}");
    println!("throughput:      {mb_s:.1} MB/s ({mib_s:.1} MiB/s), single thread");
    println!(
        "time split:      chunking (read + FastCDC) {:.3} s, chunk key + seal {:.3} s",
        chunking.as_secs_f64(),
        sealing.as_secs_f64()
    );
    match (rss_before, peak_rss_kib()) {
        (Some(before), Some(peak)) => println!(
            "peak RSS:        {peak} KiB ({:.1} MiB; {:.1} MiB before the first read)",
            peak as f64 / 1024.0,
            before as f64 / 1024.0
        ),
        _ => println!("peak RSS:        unavailable (no /proc/self/status)"),
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (path, out_path) = match args.as_slice() {
        [path] => (path.as_str(), None),
        [path, flag, out] if flag == "--out" => (path.as_str(), Some(out.as_str())),
        _ => {
            eprintln!("usage: chunk_seal FILE [--out PATH]");
            return ExitCode::from(2);
        }
    };
    match run(path, out_path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("chunk_seal: {error}");
            ExitCode::FAILURE
        }
    }
}
