//! How much of a file is re-sent after editing 1 MiB in its middle: chunks the file and the edited
//! file with the real chunker (FORMAT.md section 5.1) under many different space seeds and prints
//! the distribution of the bytes in chunks the edited file has and the original has not.
//!
//! ```text
//! cargo run --release -p coffre-crypto --example edit_resend -- [SIZE_MIB] [SEEDS]
//! ```
//!
//! Defaults: a 200 MiB pseudo-random file (the issue's scenario), 40 seeds. The seed decides the
//! chunk boundaries, so the figure varies per space; the median is what a user typically sees.

use std::collections::HashSet;
use std::process::ExitCode;

use coffre_crypto::chunker::{Chunker, ChunkerSeed};
use coffre_crypto::keys::{EpochKey, SpaceId};

fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

fn chunk_hashes(data: &[u8], seed: &ChunkerSeed) -> Result<Vec<(blake3::Hash, usize)>, String> {
    Chunker::new(data, seed)
        .map(|chunk| {
            let chunk = chunk.map_err(|e| e.to_string())?;
            Ok((blake3::hash(&chunk.data), chunk.data.len()))
        })
        .collect()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let size_mib: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(200);
    let seeds: u8 = args.next().and_then(|a| a.parse().ok()).unwrap_or(40);
    let size = size_mib << 20;
    let original = noise(size, 0x9E37_79B9_7F4A_7C15);
    let mut edited = original.clone();
    let middle = size / 2;
    let edit = noise(1 << 20, 42);
    edited[middle..middle + edit.len()].copy_from_slice(&edit);
    let mut resent = Vec::new();
    for n in 1..=seeds {
        let key = EpochKey::from_bytes([n; 32]);
        let seed = ChunkerSeed::derive(&SpaceId::from_bytes([n; 32]), 1, &key);
        let (Ok(old), Ok(new)) = (chunk_hashes(&original, &seed), chunk_hashes(&edited, &seed))
        else {
            eprintln!("chunking failed");
            return ExitCode::FAILURE;
        };
        let old: HashSet<blake3::Hash> = old.into_iter().map(|(hash, _)| hash).collect();
        let bytes: usize = new
            .iter()
            .filter(|(hash, _)| !old.contains(hash))
            .map(|(_, len)| len)
            .sum();
        resent.push(bytes);
    }
    resent.sort_unstable();
    let mib = |bytes: usize| bytes as f64 / 1_048_576.0;
    let at = |q: f64| resent[((resent.len() - 1) as f64 * q).round() as usize];
    let over = resent.iter().filter(|&&b| b > 3 << 20).count();
    println!(
        "{size_mib} MiB file, 1 MiB edited in the middle, {seeds} seeds: re-sent MiB min {:.2}, \
         median {:.2}, p90 {:.2}, max {:.2}; above 3 MiB: {over}/{seeds}",
        mib(resent[0]),
        mib(at(0.5)),
        mib(at(0.9)),
        mib(resent[resent.len() - 1])
    );
    ExitCode::SUCCESS
}
