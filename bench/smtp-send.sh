#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# SMTP sending: the engine against Postfix's smtp-source, both sending BENCH_MESSAGES
# (default 1 000) messages of BENCH_SIZE (default 10 240) body bytes over ONE session into
# Postfix's smtp-sink on loopback, best of BENCH_RUNS (default 5). smtp-sink accepts and
# discards, so the figures are the clients' own cost plus the round trips they need.
# Target (issue #4): the engine within 1.2x of smtp-source.
#
#   bench/smtp-send.sh [BUILD_DIR]       (default _build-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-_build-bench}
messages=${BENCH_MESSAGES:-1000}
size=${BENCH_SIZE:-10240}
runs=${BENCH_RUNS:-5}

build-aux/install-deps.sh --bench
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/lb-bench-smtp >/dev/null

port_in_use() { ss -Htan "( sport = :$1 )" 2>/dev/null | grep -q .; }
port=$(( 20000 + RANDOM % 20000 ))
while port_in_use "$port"; do port=$(( 20000 + RANDOM % 20000 )); done

sink_args=(127.0.0.1:"$port" 256)
[ "$(id -u)" -eq 0 ] && sink_args=(-u nobody "${sink_args[@]}")
smtp-sink "${sink_args[@]}" </dev/null >/dev/null 2>&1 &
sink_pid=$!
trap 'kill "$sink_pid" 2>/dev/null || true' EXIT
deadline=$(( SECONDS + 20 ))
until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || { echo "smtp-sink did not start" >&2; exit 1; }
  kill -0 "$sink_pid" || { echo "smtp-sink exited" >&2; exit 1; }
  sleep 0.05
done

best() {
  # Runs "$@" $runs times; prints the line with the smallest first field.
  for _ in $(seq "$runs"); do "$@"; done | sort -n | head -n 1
}
engine() {
  "$build/bench/lb-bench-smtp" 127.0.0.1 "$port" "$messages" "$size"
}
source_run() {
  local start
  start=$(date +%s.%N)
  # -d: every message over the same connection.
  smtp-source -d -s 1 -m "$messages" -l "$size" -f alice@example.test -t bob@example.test \
    127.0.0.1:"$port"
  echo "$(echo "$(date +%s.%N) - $start" | bc)"
}

echo "# timing $messages messages of $size bytes over one session (best of $runs)"
read -r ss < <(best source_run)
read -r es ecount ebytes < <(best engine)
[ "$ecount" -eq "$messages" ] || { echo "the engine sent $ecount of $messages" >&2; exit 1; }

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-40s %10s %10s %8s %s\n' "SMTP, $messages x $size bytes, one session" \
  "peer" "letterbox" "ratio" "target"
printf '%-40s %9.3fs %9.3fs %8s %s\n' "smtp-source into smtp-sink" "$ss" "$es" \
  "$(ratio "$es" "$ss")" "<= 1.2"
echo "# engine sent $ecount messages, $ebytes bytes on the wire"
