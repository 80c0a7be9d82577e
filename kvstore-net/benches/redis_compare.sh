#!/usr/bin/env bash
# kvstore-server vs redis-server under redis-benchmark, in one run, alternating, on this machine.
#
#   kvstore-net/benches/redis_compare.sh [REQUESTS]      (default 200000)
#
# Needs redis-server and redis-benchmark (apt-get install redis-tools redis-server) and builds
# kvstore-server in release mode. Workload: redis-benchmark -t set,get -n N -c 50 -d 100
# -r 200000, with -P 1 and -P 16, against kvstore-server --fsync everysec and redis-server
# --appendonly yes --appendfsync everysec; then SET with kvstore --fsync always against Redis
# appendfsync always. Prints a markdown table of requests per second.
# KV_ARGS="--io-threads 2" passes extra flags to kvstore-server.
set -euo pipefail

N=${1:-200000}
ROUNDS=${ROUNDS:-2}
source "$(dirname "$0")/common.sh"

# start_kvstore FSYNC -> sets KV_PORT, KV_PID
start_kvstore() {
    KV_PORT=$(free_port)
    rm -rf "$WORK/kv"
    # shellcheck disable=SC2086 # KV_ARGS holds several flags
    RUST_LOG=warn "$KVSTORE" --data-dir "$WORK/kv" --port "$KV_PORT" --fsync "$1" ${KV_ARGS:-} >/dev/null 2>&1 &
    KV_PID=$!
    PIDS+=("$KV_PID")
    wait_ready "$KV_PORT"
}

# start_redis APPENDFSYNC -> sets RD_PORT, RD_PID
start_redis() {
    RD_PORT=$(free_port)
    rm -rf "$WORK/redis" && mkdir -p "$WORK/redis"
    redis-server --port "$RD_PORT" --bind 127.0.0.1 --dir "$WORK/redis" --save "" \
        --appendonly yes --appendfsync "$1" --daemonize no --logfile "$WORK/redis.log" &
    RD_PID=$!
    PIDS+=("$RD_PID")
    wait_ready "$RD_PORT"
}

stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# bench PORT TEST PIPELINE -> prints requests/s
bench() {
    redis-benchmark -p "$1" -t "$2" -n "$N" -c 50 -d 100 -r 200000 -P "$3" --csv 2>/dev/null |
        awk -F'","' 'NR==2 { print $2 }' | tr -d '"'
}

declare -A KV RD
run_pair() { # LABEL TEST PIPELINE
    local kv rd
    kv=$(bench "$KV_PORT" "$2" "$3")
    rd=$(bench "$RD_PORT" "$2" "$3")
    KV[$1]="${KV[$1]:-} $kv"
    RD[$1]="${RD[$1]:-} $rd"
}

best() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | tail -1; }

ROWS=()
for round in $(seq 1 "$ROUNDS"); do
    start_kvstore everysec
    start_redis everysec
    for p in 1 16; do
        for t in set get; do
            run_pair "$t P$p everysec" "$t" "$p"
            [[ $round == 1 ]] && ROWS+=("$t P$p everysec")
        done
    done
    stop "$KV_PID"
    stop "$RD_PID"
    start_kvstore always
    start_redis always
    for p in 1 16; do
        run_pair "set P$p always" set "$p"
        [[ $round == 1 ]] && ROWS+=("set P$p always")
    done
    stop "$KV_PID"
    stop "$RD_PID"
done

echo
echo "redis-benchmark -t set,get -n $N -c 50 -d 100 -r 200000 (best of $ROUNDS alternating rounds), $(date -u +%F), $(nproc) cores, kvstore-server flags: ${KV_ARGS:-none}"
echo
echo "| test | pipeline | fsync | kvstore req/s | redis req/s | kvstore / redis |"
echo "|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    read -r test pipe fsync <<<"$row"
    kv=$(best "${KV[$row]}")
    rd=$(best "${RD[$row]}")
    ratio=$(awk -v a="$kv" -v b="$rd" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }')
    echo "| ${test^^} | ${pipe#P} | $fsync | $kv | $rd | ${ratio}x |"
done
