#!/usr/bin/env bash
# coffre demo: the main job in one command.
#
# Builds the release binaries, starts `coffre-gateway serve` on 127.0.0.1 (a free port) with a
# temporary data directory and its generated self-signed certificate, reads the certificate pin
# from its stderr, then runs a CLI round trip (init, space create, put a generated tree, ls, get,
# diff -r, log, status) and the two-person sharing walkthrough (share, invites, accept, members,
# remove with key rotation), printing each command. Finally it checks, as the operator would, that
# the gateway's data directory holds none of the plaintext, and stops the gateway.
#
# Exits non-zero on any failure. Environment:
#   COFFRE_DEMO_PROFILE=debug   use debug binaries (default: release)
#   COFFRE_DEMO_KEEP=1          keep the temporary directory (printed at the end)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PROFILE=${COFFRE_DEMO_PROFILE:-release}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET/$PROFILE"

say() { printf '\n== %s\n' "$*"; }
run() {
    printf '$ %s\n' "$*"
    "$@"
}

say "building the $PROFILE binaries"
if [ "$PROFILE" = release ]; then
    run cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" -p coffre-gateway -p coffre-cli
else
    run cargo build --locked --manifest-path "$ROOT/Cargo.toml" -p coffre-gateway -p coffre-cli
fi
export PATH="$BIN:$PATH"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/coffre-demo.XXXXXX")
GATEWAY_PID=""
cleanup() {
    status=$?
    if [ -n "$GATEWAY_PID" ] && kill -0 "$GATEWAY_PID" 2>/dev/null; then
        kill -TERM "$GATEWAY_PID" 2>/dev/null || true
        for _ in $(seq 100); do
            kill -0 "$GATEWAY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$GATEWAY_PID" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$WORK/gateway.log" ]; then
        echo "--- gateway log (last lines) ---" >&2
        tail -n 20 "$WORK/gateway.log" >&2 || true
    fi
    if [ "${COFFRE_DEMO_KEEP:-0}" = 1 ]; then
        echo "kept $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT

say "starting the gateway (data in $WORK/gateway)"
printf '$ coffre-gateway serve --listen 127.0.0.1:0 --data %s &\n' "$WORK/gateway"
coffre-gateway serve --listen 127.0.0.1:0 --data "$WORK/gateway" \
    </dev/null >/dev/null 2>"$WORK/gateway.log" &
GATEWAY_PID=$!
ADDR=""
PIN=""
for _ in $(seq 300); do
    ADDR=$(sed -n 's|^coffre-gateway: listening on https://||p' "$WORK/gateway.log" | head -n 1)
    PIN=$(sed -n 's|^coffre-gateway: pin ||p' "$WORK/gateway.log" | head -n 1)
    [ -n "$ADDR" ] && [ -n "$PIN" ] && break
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        echo "the gateway exited during start-up" >&2
        exit 1
    fi
    sleep 0.1
done
if [ -z "$ADDR" ] || [ -z "$PIN" ]; then
    echo "the gateway did not print its address and pin within 30 s" >&2
    exit 1
fi
grep '^coffre-gateway: ' "$WORK/gateway.log"

say "generating a local tree"
MARKER="coffre-demo-plaintext-$$-$RANDOM"
SRC="$WORK/holiday-photos"
mkdir -p "$SRC/2024/summer" "$SRC/2024/winter" "$SRC/notes"
printf '%s: the itinerary\n' "$MARKER" >"$SRC/notes/itinerary.txt"
printf '%s: souvenirs d’été\n' "$MARKER" >"$SRC/notes/été-résumé.md"
: >"$SRC/notes/empty"
head -c 3145728 /dev/urandom >"$SRC/2024/summer/beach.raw"
head -c 200000 /dev/urandom >"$SRC/2024/winter/snow.raw"
run find "$SRC" -type f

say "client round trip"
export COFFRE_HOME="$WORK/alice"
# Scripts give the passphrase through the environment (or --passphrase-file); it is never printed.
COFFRE_PASSPHRASE="demo $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
export COFFRE_PASSPHRASE
run coffre init --server "https://$ADDR" --handle alice --pin "$PIN"
run coffre whoami
run coffre space create holidays
run coffre space ls
run coffre put "$SRC" holidays:/photos
run coffre ls holidays:/photos
run coffre ls holidays:/photos/notes
run coffre mkdir -p holidays:/archive/2023
run coffre mv holidays:/photos/notes/itinerary.txt holidays:/archive/2023
run coffre restore holidays:/photos/notes/itinerary.txt --at 1
run coffre get holidays:/photos "$WORK/restored"
run diff -r "$SRC" "$WORK/restored"
echo "identical"
run coffre log holidays
run coffre status holidays

say "sharing: bob joins as writer, both write, alice removes bob (the space key rotates)"
ALICE_HOME="$WORK/alice"
BOB_HOME="$WORK/bob"
as_bob() { COFFRE_HOME="$BOB_HOME" run "$@"; }
as_bob coffre init --server "https://$ADDR" --handle bob --pin "$PIN"
run coffre share holidays bob --role writer
as_bob coffre invites
as_bob coffre accept holidays
as_bob coffre get holidays:/photos/notes "$WORK/bob-notes"
run diff "$SRC/notes/été-résumé.md" "$WORK/bob-notes/été-résumé.md"
printf '%s: bob was here\n' "$MARKER" >"$WORK/from-bob.txt"
as_bob coffre put "$WORK/from-bob.txt" holidays:/
run coffre ls holidays:/
run coffre members holidays
run coffre members holidays --remove bob
printf '%s: after bob left\n' "$MARKER" >"$WORK/after-bob.txt"
run coffre put "$WORK/after-bob.txt" holidays:/
printf '$ COFFRE_HOME=%s coffre get holidays:/after-bob.txt ... (must fail)\n' "$BOB_HOME"
if COFFRE_HOME="$BOB_HOME" coffre get holidays:/after-bob.txt "$WORK/bob-after.txt"; then
    echo "bob read a file written after his removal" >&2
    exit 1
fi
echo "refused, as it must be"
run coffre contacts
export COFFRE_HOME="$ALICE_HOME"

say "stopping the gateway"
kill -TERM "$GATEWAY_PID"
for _ in $(seq 300); do
    kill -0 "$GATEWAY_PID" 2>/dev/null || break
    sleep 0.1
done
if kill -0 "$GATEWAY_PID" 2>/dev/null; then
    echo "the gateway did not stop within 30 s of SIGTERM" >&2
    exit 1
fi
GATEWAY_PID=""

say "the operator's view: no plaintext, file name or passphrase in the gateway's data"
printf '$ grep -r -F -e <marker> -e <names> -e <passphrase> %s\n' "$WORK/gateway"
if grep -r -l -F -e "$MARKER" -e "itinerary" -e "été-résumé" -e "beach.raw" \
    -e "from-bob" -e "after-bob" -e "$COFFRE_PASSPHRASE" "$WORK/gateway"; then
    echo "PLAINTEXT FOUND in the gateway's data directory" >&2
    exit 1
fi
du -sh "$WORK/gateway"
echo "none found"

say "demo OK"
