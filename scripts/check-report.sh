#!/usr/bin/env bash
# Renders an HTML report and checks it in a real headless browser (Debian's chromium):
# the page loads from file:// with the network off, its plots are in the rendered DOM, and a
# screenshot is written for a person to look at.
#
#   scripts/check-report.sh                      # two fresh runs (one slowed), overlaid
#   scripts/check-report.sh RESULT_DIR [VS_DIR]  # an existing run, optionally overlaid
#   scripts/check-report.sh --no-browser [...]   # CI without chromium: checks the HTML file
#
# Without --no-browser it needs chromium; when missing it is installed with apt-get (root on
# Debian). --no-browser checks the same things in the file itself instead of the rendered
# DOM, and takes no screenshot. Exit status: 0 pass, 1 fail.
#
# Output goes to $CHECK_REPORT_OUT (default target/check-report/): report.html,
# report.png (the screenshot) and dom.html (the DOM chromium rendered).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${CHECK_REPORT_OUT:-$root/target/check-report}"
height="${CHECK_REPORT_HEIGHT:-2400}"
mkdir -p "$out"

use_browser=1
if [ "${1:-}" = "--no-browser" ]; then
  use_browser=0
  shift
fi

browser=""
if [ "$use_browser" = 1 ]; then
  browser="$(command -v chromium || command -v chromium-browser || true)"
  if [ -z "$browser" ]; then
    echo "installing chromium (apt-get)" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
    browser="$(command -v chromium)"
  fi
fi

cargo build --quiet --manifest-path "$root/Cargo.toml" --bin stampede
bin="${CARGO_TARGET_DIR:-$root/target}/debug/stampede"

# Two short runs of one scenario: against the built-in server, and against a slowed one.
fresh_runs() {
  local scenario="$out/check-report.toml" runs="$out/runs"
  rm -rf "$runs"
  cat >"$scenario" <<'TOML'
name = "check-report"
seed = 7
duration = "20s"

[oracles]
identity = { field = "user_id" }
sequence = { field = "seq" }

[[group]]
name = "chatters"
users = 100
arrival = { ramp = "1s" }
steps = [
  { expect = "connection_established", within = "5s" },
  { repeat = 3, steps = [
    { send = { type = "user_message", run_id = "run-{{conn}}-{{run}}", thread_id = "t-{{user}}", content = "hi" } },
    { expect = "agent_started agent_thinking+ tool_executing tool_completed agent_completed", correlate = "run_id", within = "10s" },
    { think = "exp(50ms)" },
  ] },
  { close = 1000 },
]
TOML
  "$bin" run "$scenario" --quiet --out "$runs/base" >/dev/null
  local log="$out/serve.log"
  "$bin" serve --addr 127.0.0.1:0 --delay 5ms 2>"$log" &
  local server=$!
  trap 'kill $server 2>/dev/null || true' EXIT
  local url=""
  for _ in $(seq 50); do
    url="$(grep -o 'ws://[^ ]*' "$log" | head -n1 || true)"
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { echo "the slowed server did not start: $(cat "$log")" >&2; exit 1; }
  "$bin" run "$scenario" --quiet --target "$url" --out "$runs/new" >/dev/null
  kill "$server"
  trap - EXIT
  run_dir="$(ls -d "$runs"/new/check-report/*/ | head -n1)"
  vs_dir="$(ls -d "$runs"/base/check-report/*/ | head -n1)"
}

if [ $# -ge 1 ]; then
  run_dir="$1"
  vs_dir="${2:-}"
else
  fresh_runs
fi

report="$out/report.html"
if [ -n "$vs_dir" ]; then
  "$bin" report "$run_dir" --vs "$vs_dir" -o "$report"
else
  "$bin" report "$run_dir" -o "$report"
fi

if grep -Eq 'https?://' "$report"; then
  echo "FAIL: the report references a URL" >&2
  exit 1
fi

if [ "$use_browser" = 0 ]; then
  svgs="$(grep -o '<svg' "$report" | wc -l)"
  rows="$(grep -o '<tr' "$report" | wc -l)"
  echo "report file: $svgs plots, $rows table rows (not rendered: --no-browser)"
  if [ "$svgs" -lt 3 ] || [ "$rows" -lt 10 ]; then
    echo "FAIL: the report is missing its plots or tables" >&2
    exit 1
  fi
  exit 0
fi

flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
  --disable-background-networking --disable-component-update --disable-sync
  --user-data-dir="$(mktemp -d)")
"$browser" "${flags[@]}" --dump-dom "file://$report" >"$out/dom.html" 2>"$out/chromium.log"
"$browser" "${flags[@]}" --screenshot="$out/report.png" --window-size="1280,$height" "file://$report" \
  >>"$out/chromium.log" 2>&1

svgs="$(grep -o '<svg' "$out/dom.html" | wc -l)"
rows="$(grep -o '<tr' "$out/dom.html" | wc -l)"
size="$(stat -c %s "$out/report.png" 2>/dev/null || echo 0)"
echo "rendered DOM: $svgs plots, $rows table rows; screenshot $size bytes"
if [ "$svgs" -lt 3 ] || [ "$rows" -lt 10 ] || [ "$size" -lt 20000 ]; then
  echo "FAIL: the rendered page is missing its plots or tables (see $out/chromium.log)" >&2
  exit 1
fi
echo "screenshot: $out/report.png"
