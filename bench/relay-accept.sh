#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The relay's acceptance rate: Postfix's smtp-source pushes BENCH_MESSAGES (default 2 000)
# messages of BENCH_SIZE (default 5 120) bytes over BENCH_SESSIONS (default 4) parallel
# sessions, in one run, into
#   (a) letterbox-backend's relay, on its Unix socket (what letterbox-sendmail, cron and
#       scripts use), where "250" means the message is fsync'd in the outbox; and
#   (b) a throwaway Postfix (tests/fixtures/mailservers.sh) on loopback, whose smtpd and
#       cleanup write each message to its queue and fsync it before their "250",
# both on the same disk, both keeping the mail queued: the Letterbox account sends
# through a closed port and Postfix defers its delivery transports, so neither spends
# the run delivering. Best of BENCH_RUNS (default 3). Target (issue #7): at least
# Postfix's rate. Needs root, for Postfix.
#
#   bench/relay-accept.sh [BUILD_DIR]       (default _build-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
build=${1:-_build-bench}
messages=${BENCH_MESSAGES:-2000}
size=${BENCH_SIZE:-5120}
sessions=${BENCH_SESSIONS:-4}
runs=${BENCH_RUNS:-3}

if [ "$(id -u)" -ne 0 ]; then
  echo "relay-accept.sh: Postfix, the peer, needs root" >&2
  exit 77
fi
build-aux/install-deps.sh --bench
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" backend/daemon/letterbox-backend >/dev/null
case $build in /*) ;; *) build=$root/$build ;; esac

# Both queues on the disk the store lives on (not a tmpfs).
tmp=$(mktemp -d -p /var/tmp lb-bench-relay-XXXXXX)
# The servers drop to their own users and must reach their directories.
chmod 711 "$tmp"
bus_pid=
backend_pid=
cleanup() {
  [ -n "$backend_pid" ] && kill "$backend_pid" 2>/dev/null && wait "$backend_pid" 2>/dev/null
  [ -n "$bus_pid" ] && kill "$bus_pid" 2>/dev/null
  tests/fixtures/mailservers.sh stop "$tmp/servers" >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

LB_FIXTURE_WATCH_PID=$$ tests/fixtures/mailservers.sh start "$tmp/servers" >/dev/null
# shellcheck disable=SC1091
. "$tmp/servers/servers.env"
conf=$tmp/servers/postfix/conf
# Accept and queue, deliver nothing: the cost measured is the queueing.
postconf -c "$conf" -e 'defer_transports = lmtp virtual error'
postfix -c "$conf" reload >/dev/null 2>&1

# letterbox-backend on a private bus, with one account whose mail cannot leave (its
# servers are a closed port), so the outbox only queues.
eval "$(dbus-daemon --session --fork --print-address=1 --print-pid=1 |
        { read -r a; read -r p; echo "export DBUS_SESSION_BUS_ADDRESS='$a'; bus_pid=$p"; })"
export XDG_RUNTIME_DIR=$tmp/run LETTERBOX_CONFIG_DIR=$tmp/config XDG_CONFIG_HOME=$tmp/xdg
mkdir -p -m 0700 "$XDG_RUNTIME_DIR"
mkdir -p "$LETTERBOX_CONFIG_DIR/accounts"
cat >"$LETTERBOX_CONFIG_DIR/accounts/bench.ini" <<EOF
[account]
display-name=Bench
password-command=echo bench

[identity]
address=bench@example.test

[incoming]
protocol=imap
host=127.0.0.1
port=1
security=tls
user=bench

[outgoing]
host=127.0.0.1
port=1
security=tls
user=bench
EOF
socket=$XDG_RUNTIME_DIR/letterbox/relay.sock

start_backend() {
  rm -rf "$tmp/store"
  "$build/backend/daemon/letterbox-backend" --data-dir "$tmp/store" --relay-port 0 \
    --poll-interval 86400 --retry-base 3600000 >"$tmp/backend.log" 2>&1 &
  backend_pid=$!
  local deadline=$(( SECONDS + 20 ))
  until [ -S "$socket" ]; do
    [ $SECONDS -lt $deadline ] || { cat "$tmp/backend.log" >&2; echo "no relay socket" >&2; exit 1; }
    sleep 0.05
  done
}
stop_backend() {
  kill "$backend_pid"
  wait "$backend_pid" || true
  backend_pid=
}

# One smtp-source run against $1; prints "SECONDS".
source_run() {
  local start end
  start=$(date +%s.%N)
  smtp-source -c -m "$messages" -s "$sessions" -l "$size" -f bench@example.test \
    -t alice@example.test "$1" >/dev/null
  end=$(date +%s.%N)
  echo "$end - $start" | bc -l
}

postfix_queued() {
  find "$tmp/servers/postfix/queue"/{incoming,active,deferred,maildrop} -type f 2>/dev/null | wc -l
}
letterbox_queued() {
  sqlite3 "$tmp/store/index.db" "SELECT count(*) FROM outbox" 2>/dev/null ||
    /usr/bin/python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT count(*) FROM outbox').fetchone()[0])" "$tmp/store/index.db"
}

lb_best=
pf_best=
for run in $(seq "$runs"); do
  start_backend
  t=$(source_run "unix:$socket")
  n=$(letterbox_queued)
  stop_backend
  [ "$n" -eq "$messages" ] || { echo "letterbox queued $n of $messages" >&2; exit 1; }
  if [ -z "$lb_best" ] || [ "$(echo "$t < $lb_best" | bc -l)" = 1 ]; then lb_best=$t; fi

  postsuper -c "$conf" -d ALL >/dev/null 2>&1 || true
  t=$(source_run "$HOST:$SMTP_PORT")
  n=$(postfix_queued)
  [ "$n" -ge "$messages" ] || { echo "postfix queued $n of $messages" >&2; exit 1; }
  if [ -z "$pf_best" ] || [ "$(echo "$t < $pf_best" | bc -l)" = 1 ]; then pf_best=$t; fi
  echo "run $run: letterbox $lb_best s, postfix $pf_best s (best so far)" >&2
done

lb_rate=$(echo "$messages / $lb_best" | bc -l)
pf_rate=$(echo "$messages / $pf_best" | bc -l)
printf '\nRelay acceptance, %s messages x %s bytes, %s sessions (best of %s)\n' \
  "$messages" "$size" "$sessions" "$runs"
printf '%-34s %10s %10s %8s %s\n' "" "seconds" "msgs/s" "ratio" "target"
printf '%-34s %10.3f %10.1f\n' "postfix smtpd (queue, fsync)" "$pf_best" "$pf_rate"
printf '%-34s %10.3f %10.1f %8.2f %s\n' "letterbox relay (outbox, fsync)" "$lb_best" "$lb_rate" \
  "$(echo "$lb_rate / $pf_rate" | bc -l)" ">= 1"
