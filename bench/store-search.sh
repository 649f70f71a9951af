#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The local store against notmuch, on the same generated corpus in one run (issue #5):
# BENCH_MESSAGES (default 100 000) messages from make-corpus.py in a Maildir, then
#   - import + indexing: lb-bench-store import (bodies, FTS5, threads) vs `notmuch new`;
#     index sizes;
#   - folder queries: first page by date, a page 10 000 from the end, unread counts, the
#     thread of a message (median of 31, target < 10 ms each) and the reader's peak RSS;
#   - searches (median): a common word, a rare word, from:, a phrase and a date range, the
#     first 50 results newest first, vs `notmuch search --output=messages --limit=50`
#     (median of BENCH_RUNS (default 11) runs; each is a process, as notmuch is used).
# Targets: every query class faster than notmuch; import at least 5x faster.
#
#   bench/store-search.sh [BUILD_DIR]       (default _build-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-_build-bench}
messages=${BENCH_MESSAGES:-100000}
runs=${BENCH_RUNS:-11}

build-aux/install-deps.sh --bench
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/lb-bench-store >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-bench-store-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/mail"
echo "# generating $messages messages"
size=$(bench/make-corpus.py "$work/mail/corpus" "$messages")
sync

echo "# importing with letterbox"
read -r lb_import lb_count lb_index lb_bodies < <("$build/bench/lb-bench-store" import \
  "$work/store" "$work/mail/corpus")

echo "# indexing with notmuch new"
export NOTMUCH_CONFIG=$work/notmuch-config
cat >"$NOTMUCH_CONFIG" <<EOC
[database]
path=$work/mail
[new]
tags=new
[user]
name=Bench
primary_email=bench@example.org
[maildir]
synchronize_flags=true
EOC
start=$(date +%s.%N)
notmuch new --quiet
nm_import=$(echo "$(date +%s.%N) - $start" | bc)
nm_count=$(notmuch count '*')
nm_index=$(du -sb "$work/mail/.notmuch" | cut -f1)

# Queries: name, letterbox query, notmuch query.
queries=(
  "common|meeting|meeting"
  "rare|zanzibar|zanzibar"
  "from|from:sender42|from:sender42@example.org"
  "phrase|\"budget review\"|\"budget review\""
  "dates|after:2023-01-01 before:2023-03-01|date:2023-01-01..2023-02-28"
)
lb_args=("first=page:0" "deep=page:$(( messages > 10000 ? messages - 10000 : messages / 2 ))"
         "unread=unread" "thread=thread")
for q in "${queries[@]}"; do
  IFS='|' read -r name lbq _ <<<"$q"
  lb_args+=("$name=search:$lbq")
done
declare -A lb_ms lb_n
while read -r name ms n; do
  lb_ms[$name]=$ms
  lb_n[$name]=$n
done < <("$build/bench/lb-bench-store" query "$work/store" "${lb_args[@]}")

median_notmuch() {
  local t=()
  for _ in $(seq "$runs"); do
    local s e
    s=$(date +%s%N)
    notmuch search --output=messages --limit=50 --sort=newest-first "$1" >/dev/null
    e=$(date +%s%N)
    t+=("$(( (e - s) / 1000 ))")
  done
  printf '%s\n' "${t[@]}" | sort -n | sed -n "$(( (runs + 1) / 2 ))p"
}

ratio() { echo "scale=3; $1 / $2" | bc; }
printf '\n%-38s %12s %12s %8s %s\n' "store, $messages messages, $((size / 1000000)) MB" \
  "notmuch" "letterbox" "ratio" "target"
printf '%-38s %11.1fs %11.1fs %8s %s\n' "import + index" "$nm_import" "$lb_import" \
  "$(ratio "$lb_import" "$nm_import")" "<= 0.2"
printf '%-38s %11sM %11sM\n' "index size (notmuch: .notmuch; ours: index.db)" \
  "$(( nm_index / 1000000 ))" "$(( lb_index / 1000000 ))"
printf '%-38s %12s %11sM\n' "bodies database" "-" "$(( lb_bodies / 1000000 ))"
for name in first deep unread thread; do
  printf '%-38s %12s %10sms %8s %s\n' "$name (median of 31)" "-" "${lb_ms[$name]}" "" "< 10 ms"
done
for q in "${queries[@]}"; do
  IFS='|' read -r name _ nmq <<<"$q"
  us=$(median_notmuch "$nmq")
  nm_ms=$(echo "scale=3; $us / 1000" | bc)
  printf '%-38s %10sms %10sms %8s %s\n' "search $name" "$nm_ms" "${lb_ms[$name]}" \
    "$(ratio "${lb_ms[$name]}" "$nm_ms")" "< 1"
done
echo "# letterbox imported $lb_count messages, notmuch counted $nm_count;" \
  "reader peak RSS ${lb_ms[peak-rss]:-?} kB"
