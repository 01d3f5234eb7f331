#!/usr/bin/env bash
# Soak: client memory over time. Starts the built-in server (`stampede serve`) as its own
# process, runs CONNS connections each sending RATE messages/s (a paced repeat of send +
# correlated expect) for DURATION seconds, and prints the client's RSS every INTERVAL
# seconds (and how much of it is transparent huge pages), then the spread after warm-up.
#
#   scripts/soak.sh                                   # 100 connections x 10 msg/s, 60 s
#   CONNS=1000 RATE=10 DURATION=1800 scripts/soak.sh  # the 30-minute soak of issue 11
#
# Env: CONNS (100), RATE per connection (10), DURATION s (60), INTERVAL s (5),
# WARMUP s (20: samples before it are left out of the spread), STAMPEDE (binary; default
# target/release/stampede, built when missing). Linux only (/proc). Loopback only.
set -euo pipefail

CONNS=${CONNS:-100}
RATE=${RATE:-10}
DURATION=${DURATION:-60}
INTERVAL=${INTERVAL:-5}
WARMUP=${WARMUP:-20}
# Whole numbers of at least 1 (RATE at most 1,000,000: a send every microsecond at most),
# said before anything starts rather than as a shell error or a scenario error later.
for name in CONNS RATE DURATION INTERVAL; do
    value=${!name}
    # No leading zero: bash reads 010 as octal (8), and 08 not at all.
    if ! [[ $value =~ ^[1-9][0-9]*$ ]]; then
        echo "soak: $name must be a whole number of at least 1, found \"$value\"" >&2
        exit 2
    fi
done
if ! [[ $WARMUP =~ ^(0|[1-9][0-9]*)$ ]]; then
    echo "soak: WARMUP must be a whole number of seconds, found \"$WARMUP\"" >&2
    exit 2
fi
if (( RATE > 1000000 )); then
    echo "soak: RATE must be at most 1000000 messages a second per connection, found $RATE" >&2
    exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
bin=${STAMPEDE:-$root/target/release/stampede}
if [[ ! -x $bin ]]; then
    (cd "$root" && cargo build --release --quiet)
fi

work=$(mktemp -d)
server_pid=""
client_pid=""
cleanup() {
    [[ -n $client_pid ]] && kill "$client_pid" 2>/dev/null || true
    [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

export STAMPEDE_JWT_SECRET=stampede-soak-secret
"$bin" serve --addr 127.0.0.1:0 --event-delay 0ms 2>"$work/server.log" &
server_pid=$!
url=""
for _ in $(seq 100); do
    url=$(grep -o 'ws://[^ ]*' "$work/server.log" | head -n1 || true)
    [[ -n $url ]] && break
    sleep 0.1
done
[[ -n $url ]] || { echo "the server printed no URL" >&2; cat "$work/server.log" >&2; exit 1; }

every_us=$((1000000 / RATE))
times=$(( DURATION * RATE ))
# Room for the ramp and the last answers: the plan, not the duration, ends the run.
run_for=$(( DURATION + 20 ))
cat >"$work/soak.toml" <<TOML
name = "soak"
duration = "${run_for}s"
[auth]
secret = { env = "STAMPEDE_JWT_SECRET" }
[[group]]
name = "soak"
users = $CONNS
arrival = { ramp = "5s" }
steps = [
  { expect = "connection_established", within = "10s" },
  { repeat = $times, every = "${every_us}us", steps = [
    { send = { type = "user_message", run_id = "{{uuid}}", content = "soak" } },
    { expect = "agent_started agent_thinking+ agent_completed", correlate = "run_id", within = "10s" },
  ] },
]
TOML

echo "soak: $CONNS connections x $RATE msg/s for ${DURATION}s against $url"
"$bin" run "$work/soak.toml" --target "$url" --quiet --no-results >"$work/summary.txt" 2>&1 &
client_pid=$!
start=$(date +%s)
samples=()
printf '%8s  %12s  %12s\n' "t (s)" "client RSS (KiB)" "huge pages (KiB)"
while kill -0 "$client_pid" 2>/dev/null; do
    sleep "$INTERVAL"
    rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$client_pid/status" 2>/dev/null || true)
    [[ -z $rss ]] && break
    t=$(( $(date +%s) - start ))
    # Transparent huge pages (AnonHugePages): the process opts out, so this stays small.
    huge=$(awk '/^AnonHugePages:/ {print $2}' "/proc/$client_pid/smaps_rollup" 2>/dev/null || true)
    printf '%8d  %12d  %12d\n' "$t" "$rss" "${huge:-0}"
    if (( t >= WARMUP && t <= DURATION )); then samples+=("$rss"); fi
done
# The client's own exit code is the soak's: a run that failed, was killed (out of memory)
# or found violations is no flat line to trust.
status=0
wait "$client_pid" || status=$?
client_pid=""
if (( ${#samples[@]} > 1 )); then
    printf '%s\n' "${samples[@]}" | sort -n | awk '
        NR == 1 { lo = $1 } { hi = $1 }
        END { printf "after warm-up: min %d KiB, max %d KiB, spread %.1f%%\n", lo, hi, (hi - lo) * 100 / lo }'
fi
grep -E "^messages|verdict|findings" "$work/summary.txt" || tail -n 20 "$work/summary.txt"
if (( status != 0 )); then
    echo "soak: the client exited with code $status" >&2
    tail -n 20 "$work/summary.txt" >&2
fi
exit "$status"
