#!/usr/bin/env bash
# Holds N idle WebSocket connections against the built-in reference server on loopback and
# prints how long they took to open, the client's and the servers' memory per connection,
# and what the servers answered. Both sides are split over processes so each stays under
# the open-file limit: S `serve --reuse-port` processes share one port, and the client is
# `run --workers W` (each worker its own source address 127.0.0.x, its own ports).
#
#   [RAMP=60] [HOLD=90] [EVERY=10] scripts/hold.sh [CONNECTIONS] [CLIENT_WORKERS] [SERVER_PROCESSES]
#   (defaults 100000 6 8: connections arrive over RAMP seconds and each stays HOLD seconds,
#   so with the defaults all 100,000 are open together for the last ~30 s; the sockets are
#   counted every EVERY seconds: one `ss` count of 32,000 sockets took 0.07 s of CPU. On
#   this project's 2-core machine the defaults held all 100,000 at once, CLEAN)
#
# Needs a release build (cargo build --release). Bounded: the run stops RAMP + HOLD + 60 s
# after it starts, and is killed a minute after that.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-100000}; W=${2:-6}; S=${3:-8}
RAMP=${RAMP:-60}; HOLD=${HOLD:-90}; LAST=$((RAMP + HOLD + 60))
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
duration = "${LAST}s"
[limits]
handshake_timeout = "60s"
[oracles]
exclusive = false
liveness = false
[[group]]
name = "idle"
users = $N
arrival = { ramp = "${RAMP}s" }
steps = [{ expect = "connection_established", within = "60s" }, { think = "fixed(${HOLD}s)" }, { close = 1000 }]
TOML

# Summed resident memory of the given processes (0 for those gone: a process may end
# between a sample's steps).
rss_kib() { { ps -o rss= -p "$@" 2>/dev/null || true; } | awk '{s += $1} END {print s + 0}'; }
server_pids=$(pgrep -f "serve --addr 127.0.0.1:$PORT --reuse-port" | tr '\n' ' ')
start=$(date +%s.%N)
timeout $((LAST + 60)) "$BIN" run "$TMP/hold.toml" --target "ws://127.0.0.1:$PORT/ws" --workers "$W" \
  --out "$TMP/results" --json --quiet > "$TMP/summary.json" &
run_pid=$!
peak_held=0; peak_client=0; peak_server=0; base=""; t_open=""
while kill -0 "$run_pid" 2>/dev/null; do
  sleep "${EVERY:-10}"
  # Under --workers 1 the run is one process of its own (the child of `timeout`).
  workers=$(pgrep -f -- "--shard .*/$W" | tr '\n' ' ' || true)
  [ -n "$workers" ] || workers=$(pgrep -P "$run_pid" | tr '\n' ' ' || true)
  c=$(rss_kib $workers)
  s=$(rss_kib $server_pids)
  est=$(ss -Htn state established "( dport = :$PORT )" 2>/dev/null | wc -l)
  # Memory per connection is the growth from the first sample with a twentieth open (the
  # plans, tokens and runtimes before it are no connection's) to the most held at once.
  if [ -z "$base" ] && [ "$est" -ge $((N / 20)) ]; then base="$est $c $s"; fi
  if [ "$est" -gt "$peak_held" ]; then peak_held=$est; peak_client=$c; peak_server=$s; fi
  if [ -z "$t_open" ] && [ "$est" -ge "$N" ]; then
    t_open=$(echo "$(date +%s.%N) - $start" | bc)
  fi
  printf 'held %6d  client RSS %7d KiB  servers RSS %7d KiB\n' "$est" "$c" "$s"
done
wait "$run_pid" || true
python3 - "$TMP/summary.json" "$N" "$peak_held $peak_client $peak_server" "${base:-0 0 0}" "${t_open:-n/a}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
n, t_open = int(sys.argv[2]), sys.argv[5]
held, client, server = map(int, sys.argv[3].split())
held0, client0, server0 = map(int, sys.argv[4].split())
c = s["counters"]
print(f"connections: attempted {c['attempted']}  accepted {c['accepted']}  verdict {s['verdict']}")
others = {k: c[k] for k in ("rejected", "failed", "aborted", "cut", "client_errors", "shed") if c.get(k)}
if others or c.get("refused_by"):
    print(f"not accepted: {others}  causes {c.get('refused_by', {})}")
print(f"hint: {s.get('hint')}")
print(f"most held at once (sampled): {held}; all {n} open after {t_open} s")
grown = max(held - held0, 1)
print(f"client memory per connection: {(client - client0) / grown:.1f} KiB from {held0} to {held} open "
      f"(peak RSS {client / 1024:.0f} MiB, {client0 / 1024:.0f} MiB before)")
print(f"server memory per connection: {(server - server0) / grown:.1f} KiB "
      f"(peak RSS {server / 1024:.0f} MiB, {server0 / 1024:.0f} MiB before)")
def quantiles(phase):
    q = s["phases"].get(phase, {})
    return " / ".join(f"{q.get(k, 'n/a')}" for k in ("p50_ms", "p99_ms", "max_ms"))
print(f"tcp connect p50 / p99 / max: {quantiles('tcp_connect')} ms; "
      f"upgrade: {quantiles('upgrade')} ms")
print(f"late starts (generator lag) p50 / p99 / max: {quantiles('generator_lag')} ms")
PY
