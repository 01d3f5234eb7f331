#!/usr/bin/env bash
# Holds N idle WebSocket connections against the built-in reference server on loopback and
# prints how long they took to open, the client's and the servers' memory per connection,
# and what the servers answered. Both sides are split over processes so each stays under
# the open-file limit: S `serve --reuse-port` processes share one port, and the client is
# `run --workers W` (each worker its own source address 127.0.0.x, its own ports).
#
#   [RAMP=20] [HOLD=40] scripts/hold.sh [CONNECTIONS] [CLIENT_WORKERS] [SERVER_PROCESSES]
#   (defaults 100000 6 8: connections arrive over RAMP seconds and each stays HOLD seconds)
#
# Needs a release build (cargo build --release). Bounded: gives up after 5 minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; W=${2:-6}; S=${3:-8}
BIN=target/release/stampede
PORT=$((20000 + RANDOM % 20000))
TMP=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$TMP"' EXIT

for _ in $(seq "$S"); do
  "$BIN" serve --addr "127.0.0.1:$PORT" --reuse-port >/dev/null 2>&1 &
done
sleep 1  # the servers bind; a readiness check follows
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break; sleep 0.1; done

cat > "$TMP/hold.toml" <<TOML
name = "hold"
seed = 1
duration = "240s"
[limits]
handshake_timeout = "60s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "idle"
users = $N
arrival = { ramp = "${RAMP:-20}s" }
steps = [{ expect = "connection_established", within = "60s" }, { think = "fixed(${HOLD:-40}s)" }, { close = 1000 }]
TOML

rss_kib() { ps -o rss= -p "$@" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
server_pids=$(pgrep -f "serve --addr 127.0.0.1:$PORT --reuse-port" | tr '\n' ' ')
start=$(date +%s.%N)
timeout 300 "$BIN" run "$TMP/hold.toml" --target "ws://127.0.0.1:$PORT/ws" --workers "$W" \
  --out "$TMP/results" --json --quiet > "$TMP/summary.json" &
run_pid=$!
peak_client=0; peak_server=0; t_open=""
while kill -0 "$run_pid" 2>/dev/null; do
  sleep 2
  workers=$(pgrep -f -- "--shard .*/$W" | tr '\n' ' ' || true)
  [ -n "$workers" ] && c=$(rss_kib $workers) || c=0
  s=$(rss_kib $server_pids)
  est=$(ss -Htn state established "( dport = :$PORT )" 2>/dev/null | wc -l)
  [ "$c" -gt "$peak_client" ] && peak_client=$c
  [ "$s" -gt "$peak_server" ] && peak_server=$s
  if [ -z "$t_open" ] && [ "$est" -ge "$N" ]; then
    t_open=$(echo "$(date +%s.%N) - $start" | bc)
  fi
  printf 'held %6d  client RSS %7d KiB  servers RSS %7d KiB\n' "$est" "$c" "$s"
done
wait "$run_pid" || true
python3 - "$TMP/summary.json" "$N" "$peak_client" "$peak_server" "${t_open:-n/a}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, client, server, t_open = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
c = s["counters"]
print(f"connections: attempted {c['attempted']}  accepted {c['accepted']}  verdict {s['verdict']}")
print(f"all {n} open after {t_open} s")
print(f"client memory per connection: {client / max(c['accepted'], 1):.1f} KiB (peak RSS {client / 1024:.0f} MiB)")
print(f"server memory per connection: {server / max(c['accepted'], 1):.1f} KiB (peak RSS {server / 1024:.0f} MiB)")
print(f"upgrade p99 {s['phases'].get('upgrade', {}).get('p99_ms', 'n/a')} ms")
PY
