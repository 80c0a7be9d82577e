#!/usr/bin/env bash
# Async replication on loopback, kvstore vs Redis, in one run, alternating, on this machine.
#
#   kvstore-net/benches/replication_compare.sh [REQUESTS]      (default 200000)
#
# For each system, `redis-benchmark -t set -n N -c 50 -d 100 -r 200000 -P 16` against
#   - a master without replicas (unreplicated), and
#   - a master with replicas attached and caught up (kvstore: 2 `kvstore-server --replica`
#     nodes, async mode; Redis: `redis-server --replicaof`, with 1 replica and with 2),
# every node with fsync once a second (kvstore --fsync everysec, Redis appendonly +
# appendfsync everysec). The replicated run is also the write burst: from the moment
# redis-benchmark returns, the replicas' `INFO replication` offsets (slave_repl_offset; on
# kvstore the applied LSN) are polled every millisecond until every replica has reached the
# master's master_repl_offset read at that moment; that is the drain time. Then kvstore's
# replicas must have the master's DIGEST and Redis's the master's DBSIZE, or the script fails.
#
# FSYNC=always syncs every write on every node instead (kvstore --fsync always, Redis
# appendfsync always). KVSTORE=/path/to/kvstore-server uses a given build instead of building
# this tree.
# Needs redis-server, redis-benchmark, redis-cli and python3. Prints a markdown table.
set -euo pipefail

N=${1:-200000}
ROUNDS=${ROUNDS:-2}
FSYNC=${FSYNC:-everysec}
source "$(dirname "$0")/common.sh"

field() { # PORT NAME -> value of NAME in INFO replication
    redis-cli -p "$1" info replication | tr -d '\r' | awk -F: -v f="$2" '$1 == f { print $2 }'
}

# wait_attached PORT COUNT: until the master reports COUNT replicas streaming / online.
wait_attached() {
    for _ in $(seq 1 400); do
        local up
        up=$(redis-cli -p "$1" info replication | tr -d '\r' |
            grep -cE '^(replica|slave)[0-9]+:.*state=(streaming|online)' || true)
        [[ $up -ge $2 ]] && return 0
        sleep 0.05
    done
    echo "replicas of port $1 did not attach" >&2
    exit 1
}

STARTED=() # ports of the nodes started by the last start_* call, master first
stop_all() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    PIDS=()
    rm -rf "$WORK"/node-*
}

kv_node() { # PORT EXTRA-ARGS...
    local port=$1
    shift
    RUST_LOG=warn "$KVSTORE" --data-dir "$WORK/node-$port" --port "$port" --fsync "$FSYNC" "$@" \
        >/dev/null 2>>"$WORK/kvstore.log" &
    PIDS+=($!)
    wait_ready "$port"
}

redis_node() { # PORT EXTRA-ARGS...
    local port=$1
    shift
    mkdir -p "$WORK/node-$port"
    redis-server --port "$port" --bind 127.0.0.1 --dir "$WORK/node-$port" --save "" \
        --appendonly yes --appendfsync "$FSYNC" --daemonize no \
        --logfile "$WORK/node-$port/log" "$@" &
    PIDS+=($!)
    wait_ready "$port"
}

start_kvstore() { # REPLICAS
    local master replicas=() list=""
    master=$(free_port)
    for _ in $(seq 1 "$1"); do
        local port
        port=$(free_port)
        kv_node "$port" --replica
        replicas+=("$port")
        list+="${list:+,}127.0.0.1:$port"
    done
    if [[ $1 -gt 0 ]]; then
        kv_node "$master" --replicas "$list"
        wait_attached "$master" "$1"
    else
        kv_node "$master"
    fi
    STARTED=("$master" "${replicas[@]}")
}

start_redis() { # REPLICAS
    local master
    master=$(free_port)
    redis_node "$master"
    STARTED=("$master")
    for _ in $(seq 1 "$1"); do
        local port
        port=$(free_port)
        redis_node "$port" --replicaof 127.0.0.1 "$master"
        STARTED+=("$port")
    done
    [[ $1 -gt 0 ]] && wait_attached "$master" "$1"
    return 0
}

# burst MASTER [REPLICA...] -> "req/s drain_ms": runs redis-benchmark, then times the drain.
burst() {
    python3 - "$N" "$@" <<'PY'
import socket, subprocess, sys, time

n, master, replicas = sys.argv[1], int(sys.argv[2]), [int(p) for p in sys.argv[3:]]

class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.file = self.sock.makefile("rb")

    def info(self):
        self.sock.sendall(b"INFO replication\r\n")
        header = self.file.readline()
        body = self.file.read(int(header[1:]) + 2).decode()
        return dict(l.split(":", 1) for l in body.split("\r\n") if ":" in l)

conns = [Conn(p) for p in [master] + replicas]
out = subprocess.run(
    ["redis-benchmark", "-p", str(master), "-t", "set", "-n", n, "-c", "50", "-d", "100",
     "-r", "200000", "-P", "16", "--csv"], capture_output=True, text=True, check=True).stdout
done = time.monotonic()
rps = out.splitlines()[1].split('","')[1].strip('"')
target = int(conns[0].info()["master_repl_offset"])
waiting = conns[1:]
while waiting:
    waiting = [c for c in waiting if int(c.info()["slave_repl_offset"]) < target]
    if waiting:
        if time.monotonic() - done > 120:
            sys.exit("replicas did not catch up within 120 s")
        time.sleep(0.001)
print(rps, round((time.monotonic() - done) * 1000))
PY
}

# same_data KIND PORTS...: the replicas hold what the master holds.
same_data() {
    local kind=$1 master=$2 want got
    shift 2
    local query=(digest)
    [[ $kind == redis ]] && query=(dbsize)
    want=$(redis-cli -p "$master" "${query[@]}")
    for port in "$@"; do
        got=$(redis-cli -p "$port" "${query[@]}")
        if [[ $got != "$want" ]]; then
            echo "$kind replica on port $port has ${query[*]} $got, master $want" >&2
            exit 1
        fi
    done
}

declare -A RPS DRAIN
record() { # KEY RPS [DRAIN]
    RPS[$1]="${RPS[$1]:-} $2"
    [[ -n ${3:-} ]] && DRAIN[$1]="${DRAIN[$1]:-} $3"
    return 0
}

measure() { # KIND REPLICAS
    local kind=$1 replicas=$2 result
    "start_$kind" "$replicas"
    result=$(burst "${STARTED[@]}")
    if [[ $replicas -gt 0 ]]; then
        same_data "$kind" "${STARTED[@]}"
        record "$kind $replicas" ${result% *} ${result#* }
    else
        record "$kind $replicas" ${result% *}
    fi
    stop_all
}

for _ in $(seq 1 "$ROUNDS"); do
    measure kvstore 0
    measure redis 0
    measure kvstore 2
    measure redis 1
    measure redis 2
done

best() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | tail -1; }
least() { tr ' ' '\n' <<<"$1" | grep -v '^$' | sort -g | head -1; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

echo
echo "redis-benchmark -t set -n $N -c 50 -d 100 -r 200000 -P 16, fsync $FSYNC on every node," \
    "async replication on loopback (best of $ROUNDS alternating rounds), $(date -u +%F), $(nproc) cores"
echo
echo "| system | replicas | unreplicated req/s | replicated req/s | replicated / unreplicated | drain after the burst (ms, all runs) |"
echo "|---|---|---|---|---|---|"
for row in "kvstore 2" "redis 1" "redis 2"; do
    read -r kind replicas <<<"$row"
    base=$(best "${RPS[$kind 0]}")
    repl=$(best "${RPS[$row]}")
    drains=$(tr ' ' '\n' <<<"${DRAIN[$row]}" | grep -v '^$' | paste -sd/)
    echo "| $kind | $replicas | $base | $repl | $(ratio "$repl" "$base")x | $drains |"
done
