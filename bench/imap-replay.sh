#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Journal replay (issue 8): FLAGS flag changes (default 10 000) and MOVES moves (default
# 2 000) recorded offline, then replayed by one sync each against the Dovecot fixture;
# prints the time of each replay and its rate. Runs the /imap-replay/figures case of
# tests/test-imap-replay, which also checks that the server ends up as the store says.
#
#   bench/imap-replay.sh [--flags N] [--moves N] [BUILD_DIR]
#
# BUILD_DIR defaults to $LB_BUILD, else _build-bench (set up and built if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

flags=10000
moves=2000
build=${LB_BUILD:-_build-bench}
while [ $# -gt 0 ]; do
  case $1 in
    --flags) flags=$2; shift 2 ;;
    --moves) moves=$2; shift 2 ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "imap-replay: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done

if [ ! -d "$build" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" tests/test-imap-replay >/dev/null

log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! LB_REPLAY_FLAGS=$flags LB_REPLAY_MOVES=$moves \
     meson test -C "$build" --no-rebuild test-imap-replay -t 10 \
       --test-args '-p /imap-replay/figures' >"$log" 2>&1; then
  tail -n 30 "$log" "$build/meson-logs/testlog.txt" >&2
  exit 1
fi
grep -o 'FIGURES.*' "$build/meson-logs/testlog.txt" | sed 's/^FIGURES //'
