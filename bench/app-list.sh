#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The GTK client's message list on a big folder (issue #8): a store whose Local Folders
# Inbox holds BENCH_MESSAGES (default 100 000) message rows, written by lb-bench-list-gen
# through the writer's add_many; then, under Xvfb on a private session bus with an unlocked
# keyring, both started once and kept for every launch as a desktop session's are (one
# untimed launch first), the app (LETTERBOX_BENCH=1, which makes the list print its
# timings on stderr):
#   * launch to the first frame painted with message rows, cold (page cache dropped, when
#     run as root) and warm, best and median of BENCH_RUNS (default 3), and where a warm
#     launch's time goes (the app's LETTERBOX_BENCH marks). Every run uses the same home
#     directory, as a person's launches do (caches written by one serve the next), and
#     the app's relay listens on a port of its own choosing;
#   * a scroll from the top to the bottom of the list in BENCH_SCROLL_STEPS (default
#     2000) steps of the scrollbar, one per frame, starting half a second after the first
#     painted list, every frame interval recorded from the GdkFrameClock: max, p99, mean,
#     frames over 50 ms (which ones, with the main thread's CPU time in each);
#   * resident memory (VmRSS) after that scroll.
# Targets: first list < 500 ms, no frame > 50 ms, < 150 MB resident.
#
#   bench/app-list.sh [BUILD_DIR]
#
# BUILD_DIR defaults to $LB_BUILD, else _build-bench (release, set up and built if
# missing). Geary is not run: it shows only mail of an account it has synced itself over
# IMAP, so the same 100 000 messages would first have to be served by Dovecot and synced
# into Geary's own database (bench/README.md).
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${BENCH_MESSAGES:-100000}
runs=${BENCH_RUNS:-3}
steps=${BENCH_SCROLL_STEPS:-2000}
renderer=${BENCH_GSK_RENDERER:-cairo}
build=${1:-${LB_BUILD:-_build-bench}}

if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" app/letterbox app/libletterbox-html.so bench/lb-bench-list-gen data/gschemas.compiled >/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-app-list-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

echo "# generating $messages messages"
start=$(date +%s.%N)
"$build/bench/lb-bench-list-gen" "$tmp/store" "$messages" >/dev/null
echo "# store written in $(echo "$(date +%s.%N) - $start" | bc) s ($(du -sh "$tmp/store" | cut -f1))"

exec /usr/bin/python3 bench/app-list.py --build "$build" --store "$tmp/store" --tmp "$tmp" \
  --runs "$runs" --steps "$steps" --messages "$messages" --renderer "$renderer"
