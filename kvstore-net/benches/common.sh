# Shared by redis_compare.sh and replication_compare.sh (sourced, not run): builds or takes the
# kvstore-server binary, a scratch directory, cleanup of every started server by PID, free
# loopback ports and waiting for a server to answer PING.
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
# KVSTORE=/path/to/kvstore-server compares a given build instead of building this tree.
if [[ -z "${KVSTORE:-}" ]]; then
    (cd "$ROOT" && cargo build --release -q -p kvstore-net --bin kvstore-server)
    KVSTORE=$TARGET/release/kvstore-server
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_ready() {
    for _ in $(seq 1 200); do
        redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
        sleep 0.05
    done
    echo "server on port $1 did not start" >&2
    exit 1
}
