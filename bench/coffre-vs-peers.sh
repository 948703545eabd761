#!/usr/bin/env bash
# coffre-vs-peers.sh - coffre (CLI + gateway over loopback TLS) beside age / restic / rclone crypt,
# in ONE run on the same data (/tmp/perfdata: `big` 1 GiB random, `big-mod` = big with 1 MiB
# changed at 512 MiB, `dataset/` 20,000 small files, ~307 MiB).
#
#   bash bench/coffre-vs-peers.sh
#
# Order: (a) /work/shared/bench/peers.sh (creates /tmp/perfdata if missing, prints the peer lines;
# RUNS=$PEER_RUNS, default 1 to keep the run short); (b) restic over REST (rclone serve restic,
# TLS, loopback) backing up the 20k-file tree, measured here the same way peers.sh measures, since
# peers.sh has no REST figure for the tree; (c) coffre: release build, a gateway (files backend) on
# 127.0.0.1 with a fresh data dir on the same filesystem as the data (not tmpfs), `coffre init`,
# then five timed steps; steps 1-2 and 4-5 run COFFRE_RUNS times, run r in its own space (fresh
# chunk keys, so every byte is uploaded again), and the table gives the median wall (as peers.sh
# does) and the largest RSS of the runs:
#   1 put big            2 get big (to a file on disk; verified with cmp, then deleted)
#   3 put big-mod over run 1's space path, once (bytes re-sent, from `--json` bytes_sent and the
#     gateway's coffre_bytes_received_total delta when /metrics answers)
#   4 put dataset        5 get dataset (verified with diff -r, then deleted)
# Timing: GNU time '%e %M' (wall seconds, client max RSS). Gateway: its peak RSS *per step*,
# by resetting the kernel's high-water mark (echo 5 > /proc/PID/clear_refs) before the step and
# reading VmHWM after it; a 0.1 s VmRSS sampler runs as a cross-check (max over the step).
# MB/s = 10^6 bytes / wall second (as peers.sh). One table on stdout at the end.
#
# Environment: DATA (default /tmp/perfdata), PEER_RUNS (default 1), COFFRE_RUNS (default PEER_RUNS;
# PEER_RUNS=3 gives medians of 3 on both sides, ~10 min), SKIP_PEERS=1 (coffre only),
# REST_TREE=1 (with SKIP_PEERS=1: still run (b), the restic REST backup and restore of the tree),
# COFFRE_BENCH_DIR (parent of the temp dir; default /var/tmp, must be on DATA's filesystem),
# STEP_TIMEOUT (seconds per coffre step, default 900), GW_CONFIG_TOML (TOML text given to the
# gateway with --config, e.g. 'rate_per_account = 1e6' to lift the per-account request limit, whose
# default of 200 requests/s bounds tree transfers), SKIP_BIG=1 (only the 20k-file steps),
# COFFRE_BIN_DIR (use the coffre and coffre-gateway binaries there instead of building).
# Cleans up on every exit path: stops the gateway / rclone / sampler by PID, removes temp dirs.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DATA=${DATA:-/tmp/perfdata}
PEER_RUNS=${PEER_RUNS:-1}
COFFRE_RUNS=${COFFRE_RUNS:-$PEER_RUNS}
PEERS=${PEERS:-/work/shared/bench/peers.sh}
STEP_TIMEOUT=${STEP_TIMEOUT:-900}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
BIN="$TARGET/release"
B=1073741824

say() { printf '==> %s\n' "$*" >&2; }
die() { say "FATAL: $*"; exit 1; }
case "$COFFRE_RUNS$PEER_RUNS" in *[!0-9]*) die "PEER_RUNS and COFFRE_RUNS must be whole numbers" ;; esac
[ "$COFFRE_RUNS" -ge 1 ] && [ "$PEER_RUNS" -ge 1 ] || die "PEER_RUNS and COFFRE_RUNS must be at least 1"

for t in restic rclone age openssl python3 curl /usr/bin/time cargo; do
    command -v "$t" >/dev/null || die "missing $t (apt-get install -y restic rclone age time curl)"
done

W=$(mktemp -d "${COFFRE_BENCH_DIR:-/var/tmp}/coffre-vs-peers.XXXXXX") || die "mktemp"
GW_PID="" SAMPLER_PID="" RS_PID=""
stop_pid() { # PID: TERM, wait up to 10 s, then KILL
    local p=$1
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
    wait "$p" 2>/dev/null
    return 0
}
cleanup() {
    local st=$?
    stop_pid "$SAMPLER_PID"; stop_pid "$GW_PID"; stop_pid "$RS_PID"
    if [ "$st" -ne 0 ] && [ -f "$W/gateway.log" ]; then
        say "gateway log (last lines):"; tail -n 15 "$W/gateway.log" >&2
    fi
    rm -rf "$W"
    exit "$st"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

say "load before: $(uptime)"
LOAD_BEFORE=$(uptime)

# ---------- (a) peers (also creates the data) ----------
PEER_OUT="$W/peers.out"
if [ "${SKIP_PEERS:-0}" = 1 ]; then
    : >"$PEER_OUT"
else
    say "running $PEERS with RUNS=$PEER_RUNS (details: /tmp/peerbench-detail.log)"
    RUNS=$PEER_RUNS timeout 3600 bash "$PEERS" >"$PEER_OUT" || say "WARN peers.sh exit=$?"
    cat "$PEER_OUT" >&2
fi
[ "$(stat -c %s "$DATA/big" 2>/dev/null)" = "$B" ] || die "$DATA/big missing (run peers.sh)"
[ "$(stat -c %s "$DATA/big-mod" 2>/dev/null)" = "$B" ] || die "$DATA/big-mod missing"
NFILES=$(find "$DATA/dataset" -type f | wc -l)
[ "$NFILES" = 20000 ] || die "$DATA/dataset has $NFILES files, want 20000"
DS=$(find "$DATA/dataset" -type f -printf '%s\n' | awk '{s+=$1} END{print s}')

# Same filesystem as the data, and not tmpfs.
[ "$(stat -c %d "$W")" = "$(stat -c %d "$DATA")" ] || die "$W is not on $DATA's filesystem"
FSTYPE=$(stat -f -c %T "$W")
[ "$FSTYPE" != tmpfs ] || die "$W is on tmpfs"
say "scratch $W on $(df --output=source,fstype,target "$W" | tail -1 | tr -s ' ')"

warm() { find "$@" -type f -exec cat {} + >/dev/null; }

# ---------- (b) restic over REST, 20k-file tree (peers.sh measures it only locally) ----------
RS_LINE="" RS_SRV="" RS_RESTORE_LINE=""
if [ "${SKIP_PEERS:-0}" != 1 ] || [ "${REST_TREE:-0}" = 1 ]; then
    RPORT=18544
    if (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null; then say "port $RPORT busy; skipping restic REST dataset"
    else
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=localhost \
            -addext "subjectAltName=IP:127.0.0.1" -keyout "$W/tls.key" -out "$W/tls.crt" 2>/dev/null
        mkdir -p "$W/rest-root"
        rclone serve restic "$W/rest-root" --addr 127.0.0.1:$RPORT --cert "$W/tls.crt" --key "$W/tls.key" \
            >"$W/rclone.log" 2>&1 &
        RS_PID=$!
        for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/"$RPORT") 2>/dev/null && break; sleep 0.1; done
        export RESTIC_PASSWORD=peerbench RESTIC_CACHE_DIR="$W/restic-cache"
        RS="restic -r rest:https://127.0.0.1:$RPORT/ --cacert $W/tls.crt"
        if $RS init >"$W/restic.log" 2>&1; then
            warm "$DATA/dataset"
            /usr/bin/time -f '%e %M' -o "$W/t.rs" timeout 1800 $RS backup "$DATA/dataset" >>"$W/restic.log" 2>&1 \
                || say "WARN restic REST dataset backup failed"
            read -r w m <"$W/t.rs"
            RS_LINE=$(awk -v b="$DS" -v w="$w" -v k="$m" 'BEGIN{printf "restic-rest-https-backup-dataset %.1f %.1f", b/w/1e6, k/1024}')
            RS_SRV=$(awk '/VmHWM/{printf "%.1f", $2/1024}' /proc/"$RS_PID"/status)
            say "$RS_LINE (server $RS_SRV MiB)"
            warm "$W/rest-root"
            /usr/bin/time -f '%e %M' -o "$W/t.rs" timeout 1800 $RS restore latest --target "$W/rs-restore" >>"$W/restic.log" 2>&1 \
                || say "WARN restic REST dataset restore failed"
            read -r w m <"$W/t.rs"
            RS_RESTORE_LINE=$(awk -v b="$DS" -v w="$w" -v k="$m" 'BEGIN{printf "restic-rest-https-restore-dataset %.1f %.1f", b/w/1e6, k/1024}')
            say "$RS_RESTORE_LINE"
            diff -rq "$DATA/dataset" "$W/rs-restore$DATA/dataset" >/dev/null || say "WARN restic REST dataset restore mismatch"
            # Kept until the exit cleanup: deleting 20,000 files right before the coffre steps
            # would slow their file creation (ext4 without a journal skips recently freed inodes
            # one by one when allocating, for up to several minutes).
        else
            say "WARN restic init on REST failed"
        fi
        stop_pid "$RS_PID"; RS_PID=""; rm -rf "$W/rest-root" "$W/restic-cache"
    fi
fi

# ---------- (c) coffre ----------
if [ -n "${COFFRE_BIN_DIR:-}" ]; then
    BIN=$COFFRE_BIN_DIR; say "using prebuilt binaries in $BIN"
else
    say "building release coffre + coffre-gateway"
    cargo build --release --locked --manifest-path "$ROOT/Cargo.toml" -p coffre-gateway -p coffre-cli >&2 \
        || die "cargo build failed"
fi
COFFRE="$BIN/coffre"; GATEWAY="$BIN/coffre-gateway"

GW_ARGS=()
if [ -n "${GW_CONFIG_TOML:-}" ]; then
    printf '%s\n' "$GW_CONFIG_TOML" >"$W/gateway.toml"; GW_ARGS=(--config "$W/gateway.toml")
    say "gateway config: $GW_CONFIG_TOML"
fi
"$GATEWAY" serve "${GW_ARGS[@]}" --listen 127.0.0.1:0 --data "$W/gateway" --blob-backend files \
    </dev/null >/dev/null 2>"$W/gateway.log" &
GW_PID=$!
ADDR="" PIN=""
for _ in $(seq 300); do
    ADDR=$(sed -n 's|^coffre-gateway: listening on https://||p' "$W/gateway.log" | head -n 1)
    PIN=$(sed -n 's|^coffre-gateway: pin ||p' "$W/gateway.log" | head -n 1)
    [ -n "$ADDR" ] && [ -n "$PIN" ] && break
    kill -0 "$GW_PID" 2>/dev/null || die "the gateway exited during start-up"
    sleep 0.1
done
[ -n "$ADDR" ] && [ -n "$PIN" ] || die "the gateway did not print its address and pin within 30 s"
case "$ADDR" in 127.0.0.1:*) ;; *) die "gateway not on loopback: $ADDR" ;; esac
say "gateway pid $GW_PID on $ADDR, data $W/gateway"

export COFFRE_HOME="$W/home" COFFRE_PASSPHRASE="bench $(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
timeout 120 "$COFFRE" init --server "https://$ADDR" --handle bench --pin "$PIN" >&2 || die "coffre init"
timeout 60 "$COFFRE" space create bench >&2 || die "space create"

metric_req() { # "requests 429s duration_sum" summed over endpoints
    curl -sk --max-time 5 "https://$ADDR/metrics" 2>/dev/null | awk '
        /^coffre_requests_total/ { n += $2; if ($1 ~ /status="429"/) r += $2 }
        /^coffre_request_duration_seconds_sum/ { d = $2 } END { printf "%d %d %.3f", n, r, d }'
}
metric_rx() { # coffre_bytes_received_total, or empty
    curl -sk --max-time 5 "https://$ADDR/metrics" 2>/dev/null |
        awk '$1 == "coffre_bytes_received_total" {printf "%.0f", $2}'
}
gw_rss_now() { awk '/VmRSS/{print $2}' /proc/"$GW_PID"/status 2>/dev/null; }
sampler() { # background: max VmRSS (KiB) since started, written to $1
    local max=0 v
    while :; do
        v=$(gw_rss_now); [ -n "$v" ] && [ "$v" -gt "$max" ] && { max=$v; echo "$max" >"$1"; }
        sleep 0.1
    done
}

# step NAME CMD... : times CMD; sets S_WALL S_RSS(KiB) S_GW_HWM(KiB) S_GW_SAMPLED(KiB) S_RX(bytes)
step() {
    local name=$1; shift
    echo 5 >/proc/"$GW_PID"/clear_refs 2>/dev/null || say "WARN cannot reset gateway VmHWM"
    local rx0 q0; rx0=$(metric_rx); q0=$(metric_req)
    echo 0 >"$W/sampled"; sampler "$W/sampled" & SAMPLER_PID=$!
    /usr/bin/time -f '%e %M' -o "$W/t.out" timeout "$STEP_TIMEOUT" "$@" >"$W/$name.json" 2>"$W/$name.err"
    local rc=$?
    stop_pid "$SAMPLER_PID"; SAMPLER_PID=""
    [ "$rc" = 0 ] || { cat "$W/$name.err" >&2; die "step $name failed (exit $rc)"; }
    read -r S_WALL S_RSS < <(tail -n 1 "$W/t.out")
    S_GW_HWM=$(awk '/VmHWM/{print $2}' /proc/"$GW_PID"/status)
    S_GW_SAMPLED=$(cat "$W/sampled")
    local rx1; rx1=$(metric_rx)
    S_RX=""; [ -n "$rx0" ] && [ -n "$rx1" ] && S_RX=$((rx1 - rx0))
    S_REQ=$(printf '%s %s\n' "$q0" "$(metric_req)" | awk -v w="$S_WALL" '{n=$4-$1-1; printf "%d req (%.0f/s), %d 429s, mean %.1f ms", n, n/w, $5-$2, (n>0)?($6-$3)*1000/n:0}')
    say "$name: wall ${S_WALL}s client ${S_RSS} KiB gateway HWM ${S_GW_HWM} KiB (sampled max ${S_GW_SAMPLED} KiB) rx ${S_RX:-?}; $S_REQ"
}
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get(sys.argv[2],""))' "$1" "$2" 2>/dev/null; }
ROWS="$W/coffre.rows"; : >"$ROWS"
row() { # name bytes wall clientKiB gwKiB gwSampledKiB notes
    awk -v n="$1" -v b="$2" -v w="$3" -v c="$4" -v g="$5" -v s="$6" -v note="$7" 'BEGIN{
        printf "%s\t%.1f\t%.1f\t%.1f\t%s\n", n, b/w/1e6, c/1024, (g>s?g:s)/1024, note }' >>"$ROWS"
}

mkdir -p "$W/out"
# Run r uses space bench (r = 1) or bench<r>: a fresh space has its own chunk keys, so each run
# uploads every byte again. Reported: the median wall over the runs (as peers.sh does), the
# largest RSS of any run.
median() { tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END{if(NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
maxof() { tr ' ' '\n' | grep . | sort -g | tail -n 1; }
space_of() { if [ "$1" = 1 ]; then echo bench; else echo "bench$1"; fi; }
for ((r = 2; r <= COFFRE_RUNS; r++)); do
    timeout 60 "$COFFRE" space create "$(space_of "$r")" >&2 || die "space create $(space_of "$r")"
done
# Collects one step's figures under a prefix: <P>_WALLS, <P>_RSS, <P>_GW (lists over the runs).
collect() {
    local p=$1
    eval "${p}_WALLS+=\" \$S_WALL\"; ${p}_RSS+=\" \$S_RSS\"; ${p}_GW+=\" \$S_GW_HWM \$S_GW_SAMPLED\""
}
# summary P BYTES NAME NOTE: one table row from the collected lists; sets MBS.
summary() {
    local p=$1 bytes=$2 name=$3 note=$4 walls rss gw wall
    eval "walls=\$${p}_WALLS; rss=\$${p}_RSS; gw=\$${p}_GW"
    wall=$(echo "$walls" | median)
    [ "$COFFRE_RUNS" -gt 1 ] && note="$note; median of walls${walls}s" || note="$note; wall ${wall}s"
    row "$name" "$bytes" "$wall" "$(echo "$rss" | maxof)" "$(echo "$gw" | maxof)" 0 "$note"
    MBS=$(awk -v w="$wall" -v b="$bytes" 'BEGIN{printf "%.1f", b/w/1e6}')
}
PUT_BIG_MBS="" GET_BIG_MBS="" PB_WALLS="" PB_RSS="" PB_GW="" GB_WALLS="" GB_RSS="" GB_GW=""
PD_WALLS="" PD_RSS="" PD_GW="" GD_WALLS="" GD_RSS="" GD_GW="" CHUNKS="" PD_REQ="" GD_REQ=""
if [ "${SKIP_BIG:-0}" != 1 ]; then
for ((r = 1; r <= COFFRE_RUNS; r++)); do
    SPACE=$(space_of "$r")
    # Every put starts with nothing dirty on the filesystem (the peers' and earlier steps'
    # writes flushed), so no step pays for another's write-back: the gateway's syncs of a blob
    # batch flush the whole filesystem (docs/OPERATIONS.md).
    sync; warm "$DATA/big"
    step put-big "$COFFRE" --json put "$DATA/big" "$SPACE:/big"
    collect PB; CHUNKS+=" $(jget "$W/put-big.json" chunks)"

    sync; warm "$W/gateway"
    step get-big "$COFFRE" --json get "$SPACE:/big" "$W/out/big"
    collect GB
    cmp -s "$DATA/big" "$W/out/big" || die "get big: content mismatch"
    rm -f "$W/out/big"
done
summary PB "$B" coffre-put-1GiB "chunks${CHUNKS}"; PUT_BIG_MBS=$MBS
summary GB "$B" coffre-get-1GiB "to disk"; GET_BIG_MBS=$MBS

sync; warm "$DATA/big-mod"
step put-big-mod "$COFFRE" --json put "$DATA/big-mod" bench:/big
SENT=$(jget "$W/put-big-mod.json" bytes_sent)
row coffre-put-1GiBmod "$B" "$S_WALL" "$S_RSS" "$S_GW_HWM" "$S_GW_SAMPLED" \
    "re-sent $(awk -v x="$SENT" 'BEGIN{printf "%.2f MiB", x/1048576}') ($(jget "$W/put-big-mod.json" chunks_sent)/$(jget "$W/put-big-mod.json" chunks) chunks; gateway rx ${S_RX:-n/a} B); wall ${S_WALL}s"

fi
for ((r = 1; r <= COFFRE_RUNS; r++)); do
    SPACE=$(space_of "$r")
    sync; warm "$DATA/dataset"
    step put-dataset "$COFFRE" --json put "$DATA/dataset" "$SPACE:/dataset"
    [ "$(jget "$W/put-dataset.json" files)" = 20000 ] || say "WARN put dataset files=$(jget "$W/put-dataset.json" files)"
    collect PD; PD_REQ=$S_REQ

    sync; warm "$W/gateway"
    step get-dataset "$COFFRE" --json get "$SPACE:/dataset" "$W/out/ds$r"
    collect GD; GD_REQ=$S_REQ
    diff -rq "$DATA/dataset" "$W/out/ds$r" >/dev/null || die "get dataset: content mismatch"
    # Kept until the exit cleanup, like restic's restore above: the next run's 20,000 file
    # creations would otherwise pay for these deletions (2.18, 2.74, 3.28 s over three runs).
done
PD_WALL=$(echo "$PD_WALLS" | median) GD_WALL=$(echo "$GD_WALLS" | median)
summary PD "$DS" coffre-put-dataset \
    "$(awk -v w="$PD_WALL" 'BEGIN{printf "%.0f files/s", 20000/w}'); last run: $PD_REQ"; PUT_DS_MBS=$MBS
summary GD "$DS" coffre-get-dataset \
    "$(awk -v w="$GD_WALL" 'BEGIN{printf "%.0f files/s", 20000/w}'); last run: $GD_REQ"; GET_DS_MBS=$MBS

LOAD_AFTER=$(uptime)

# ---------- the table ----------
{
    printf '%-38s | %9s | %10s | %10s | %s\n' "tool/op" "MB/s" "client MiB" "server MiB" "notes"
    printf '%s\n' "---------------------------------------+-----------+------------+------------+------"
    awk -F'\t' '{printf "%-38s | %9s | %10s | %10s | %s\n", $1, $2, $3, $4, $5}' "$ROWS"
    # peers: "name MB/s rss" and "name:server - rss" (server VmHWM goes into the server column)
    awk -v rsline="$RS_LINE" -v rssrv="$RS_SRV" -v rsrline="$RS_RESTORE_LINE" -v runs="$PEER_RUNS" '
        NF == 3 && $1 ~ /:server$/ { n = $1; sub(/:server$/, "", n); srv[n] = $3; next }
        NF == 3 { order[++k] = $1; mbs[$1] = $2; rss[$1] = $3 }
        END {
            if (rsline != "") { split(rsline, a, " "); order[++k] = a[1]; mbs[a[1]] = a[2]; rss[a[1]] = a[3]; srv[a[1]] = rssrv; extra[a[1]] = 1 }
            if (rsrline != "") { split(rsrline, a, " "); order[++k] = a[1]; mbs[a[1]] = a[2]; rss[a[1]] = a[3]; extra[a[1]] = 1 }
            for (i = 1; i <= k; i++) { n = order[i]
                note = (extra[n] ? "measured by this script (1 run)" : "peers.sh, RUNS=" runs)
                if (n ~ /^openssl/) note = "single-core AEAD ceiling"
                printf "%-38s | %9s | %10s | %10s | %s\n", n, mbs[n], rss[n], (n in srv ? srv[n] : "-"), note }
        }' "$PEER_OUT"
    echo
    peer() { awk -v n="$1" '$1 == n {print $2}' "$PEER_OUT"; }
    ratio() { # label coffre peer goal
        if [ -n "$3" ]; then awk -v l="$1" -v c="$2" -v p="$3" -v g="$4" \
            'BEGIN{r=c/p; printf "ratio %-44s %6.2fx  (coffre %s / restic %s MB/s; goal >= %sx: %s)\n", l, r, c, p, g, (r>=g)?"MET":"MISSED"}'
        else echo "ratio $1: no restic figure"; fi
    }
    [ -n "${GW_CONFIG_TOML:-}" ] && echo "gateway config: $GW_CONFIG_TOML"
    [ -n "$PUT_BIG_MBS" ] && ratio "1GiB upload   coffre/restic(REST)" "$PUT_BIG_MBS" "$(peer restic-rest-https-backup-1GiB)" 2
    [ -n "$GET_BIG_MBS" ] && ratio "1GiB download coffre/restic(REST)" "$GET_BIG_MBS" "$(peer restic-rest-https-restore-1GiB)" 2
    ratio "20k files up  coffre/restic(REST)" "$PUT_DS_MBS" "$(echo "$RS_LINE" | awk '{print $2}')" 1
    ratio "20k files up  coffre/restic(local)" "$PUT_DS_MBS" "$(peer restic-local-backup-dataset)" 1
    ratio "20k files down coffre/restic(REST)" "$GET_DS_MBS" "$(echo "$RS_RESTORE_LINE" | awk '{print $2}')" 1
    [ -n "$PUT_BIG_MBS" ] && awk -v gm="$(echo "$PB_GW $GB_GW" | maxof)" -v cm="$(echo "$PB_RSS $GB_RSS" | maxof)" 'BEGIN{
        printf "1GiB transfers: gateway peak RSS %.1f MiB (goal < 150: %s); client peak RSS %.1f MiB (goal < 200: %s)\n",
            gm/1024, (gm/1024 < 150) ? "MET" : "MISSED", cm/1024, (cm/1024 < 200) ? "MET" : "MISSED" }'
    echo "load before: $LOAD_BEFORE"
    echo "load after:  $LOAD_AFTER"
    echo "host: $(nproc) cores; scratch fs $FSTYPE ($(df --output=source "$W" | tail -1)); MB/s = 1e6 B / wall s; coffre $COFFRE_RUNS run(s) per op (median wall), peers RUNS=$PEER_RUNS"
}
