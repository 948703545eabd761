#!/usr/bin/env bash
# End-to-end gateway benchmark: builds the release gateway binary and the gateway_bench example,
# then runs the example, which starts the binary once per blob backend and drives it over TLS.
#
#   bash bench/gateway.sh [N_BLOBS]          # default 256 x 1 MiB per phase
#
# Environment: COFFRE_BENCH_DIR (data and baseline directory; default /tmp/coffre-gateway-bench,
# or target/gateway-bench if /tmp is a tmpfs), COFFRE_GATEWAY_BIN (gateway binary; default the
# one built here). See gateway/examples/gateway_bench.rs for what is measured.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

cd "$ROOT"
cargo build --release -p coffre-gateway --bin coffre-gateway --example gateway_bench
export COFFRE_GATEWAY_BIN="${COFFRE_GATEWAY_BIN:-$TARGET_DIR/release/coffre-gateway}"
exec "$TARGET_DIR/release/examples/gateway_bench" "$@"
