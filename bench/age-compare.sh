#!/usr/bin/env bash
# Compares coffre's single-threaded upload pipeline (FastCDC chunking, BLAKE3 convergent chunk
# keys, padded XChaCha20-Poly1305 envelopes with key commitment and BLAKE3 blob ids) with `age`
# encrypting the same file to an X25519 recipient. Both are single-threaded, so the figures are a
# direct per-core comparison.
#
#   bash bench/age-compare.sh
#
# Environment: COFFRE_BENCH_FILE (default /tmp/coffre-bench/random-1GiB, created from
# /dev/urandom if absent), COFFRE_BENCH_MIB (size of a created file, default 1024),
# COFFRE_BENCH_RUNS (runs per tool, alternating, default 2).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FILE="${COFFRE_BENCH_FILE:-/tmp/coffre-bench/random-1GiB}"
SIZE_MIB="${COFFRE_BENCH_MIB:-1024}"
RUNS="${COFFRE_BENCH_RUNS:-2}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN="$TARGET_DIR/release/examples/chunk_seal"

say() { printf '==> %s\n' "$*" >&2; }

apt_install() {
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    say "installing $* with apt-get"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1 || apt_install age
if [ ! -x /usr/bin/time ]; then
    apt_install time || say "could not install GNU time; falling back to bash time (no peak RSS)"
fi

# 1. The test file.
if [ ! -f "$FILE" ]; then
    say "creating $FILE ($SIZE_MIB MiB from /dev/urandom)"
    mkdir -p "$(dirname "$FILE")"
    head -c "$((SIZE_MIB * 1024 * 1024))" /dev/urandom >"$FILE.partial"
    mv "$FILE.partial" "$FILE"
fi
BYTES="$(stat -c %s "$FILE")"

# 2. The coffre example, in release.
say "building the chunk_seal example (release)"
(cd "$ROOT" && cargo build --quiet --release -p coffre-crypto --example chunk_seal 2>/dev/null) ||
    (cd "$ROOT" && cargo build --release -p coffre-crypto --example chunk_seal)

# 3. A fresh age identity.
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
age-keygen -o "$WORK/identity.txt" 2>/dev/null
RECIPIENT="$(age-keygen -y "$WORK/identity.txt")"

# Warm the page cache so that both tools read the file from memory, not from the disk.
cat "$FILE" >/dev/null

# Runs "$@" and prints "wall_seconds cpu_seconds peak_rss_kib" (rss "-" without GNU time).
measure() {
    local out="$WORK/time.out"
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -f '%e %U %S %M' -o "$out" "$@" >"$WORK/stdout.log" 2>"$WORK/stderr.log"
        awk '{ printf "%s %.2f %s\n", $1, $2 + $3, $4 }' "$out"
    else
        local TIMEFORMAT='%R %U %S'
        { time "$@" >"$WORK/stdout.log" 2>"$WORK/stderr.log"; } 2>"$out"
        awk '{ printf "%s %.2f -\n", $1, $2 + $3 }' "$out"
    fi
}

# Plain commands (not shell functions): /usr/bin/time executes them directly.
AGE_CMD=(age -r "$RECIPIENT" -o /dev/null "$FILE")
COFFRE_CMD=("$BIN" "$FILE")

say "load before the runs: $(cut -d' ' -f1-3 /proc/loadavg) (1/5/15 min), $(nproc) cores, $(pgrep -c rustc || true) rustc processes"
RESULTS="$WORK/results"
: >"$RESULTS"
for run in $(seq 1 "$RUNS"); do
    for tool in age coffre; do
        say "run $run: $tool"
        if [ "$tool" = age ]; then
            line="$(measure "${AGE_CMD[@]}")" || { cat "$WORK/stderr.log" >&2; exit 1; }
        else
            line="$(measure "${COFFRE_CMD[@]}")" || { cat "$WORK/stderr.log" >&2; exit 1; }
        fi
        read -r wall cpu rss <<<"$line"
        echo "$tool $run $wall $cpu $rss" >>"$RESULTS"
        if [ "$tool" = coffre ]; then
            sed 's/^/    /' "$WORK/stdout.log" >&2
        fi
    done
done
say "load after the runs: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "File: $FILE ($BYTES bytes, page-cached), age $(age --version), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "Both tools are single-threaded: this is a per-core comparison. MB = 10^6 bytes."
echo "coffre = FastCDC + BLAKE3 chunk key + padded XChaCha20-Poly1305 envelope (+commitment) + BLAKE3 blob id"
echo "age    = X25519 recipient stanza + ChaCha20-Poly1305 STREAM (64 KiB chunks)"
echo
awk -v bytes="$BYTES" '
    BEGIN {
        printf "%-8s %4s %10s %10s %10s %14s\n", "tool", "run", "wall s", "MB/s", "CPU s", "peak RSS MiB"
    }
    {
        mbs = bytes / 1e6 / $3
        rss = ($5 == "-") ? "n/a" : sprintf("%.1f", $5 / 1024)
        printf "%-8s %4d %10.2f %10.1f %10.2f %14s\n", $1, $2, $3, mbs, $4, rss
        if (!($1 in best) || $3 < best[$1]) best[$1] = $3
    }
    END {
        a = bytes / 1e6 / best["age"]; c = bytes / 1e6 / best["coffre"]
        printf "\nbest of runs: age %.1f MB/s, coffre %.1f MB/s; ratio coffre/age = %.2f (throughput)\n", a, c, c / a
    }
' "$RESULTS"
