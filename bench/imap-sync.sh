#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Account sync: `letterbox-ctl sync` against the practical limit and against mbsync, on
# the same Dovecot in one run, all over implicit TLS (imaps). Seeds alice's INBOX with
# --messages (default 20 000) realistic messages (make-maildir.py) and bob's INBOX with
# --resync-count (default 100 000), then times, best of BENCH_RUNS (default 3):
#   raw-imap-fetch.py, alice's INBOX: the summary (UID FLAGS INTERNALDATE RFC822.SIZE
#       ENVELOPE BODYSTRUCTURE) and every full body, one pipelined FETCH each read without
#       parsing: the practical limit; and a no-change QRESYNC resync of the account
#       (connect, LOGIN, ENABLE QRESYNC, LIST, SELECT (QRESYNC …) of every folder), also
#       on a session already logged in (LIST and the SELECTs only);
#   letterbox-ctl sync --headers-only into a fresh store (the time until the folder is
#       listable; `letterbox-ctl list bench/INBOX --limit 1` then proves it is), a full
#       sync into a fresh store (bodies committed and indexed before the command
#       returns), and a no-change resync of that store: the whole command, and a second
#       run in the same process (LB_SYNC_REPEAT=2), on the connection the first logged in,
#       which is what the background service pays for each resync;
#   mbsync: a full pull into a fresh Maildir, and a no-change resync of it;
#   bob's 100 000-message INBOX: the raw summary fetch and raw resync, a first
#       headers-only sync, then the no-change resync (QRESYNC) of that store: the whole
#       command, the account as letterbox-ctl printed it, and on an open session the
#       account and the INBOX alone (from its SELECT to its state saved: LB_SYNC_TRACE).
# Targets (the issue): headers-only sync <= 3x the raw summary fetch; full sync <= 3x the
# raw full fetch; no-change resync of the 100 000-message folder < 100 ms (shown for the
# folder on an open session and for the account from a cold start).
#
#   bench/imap-sync.sh [--messages N] [--resync-count N] [--runs N] [BUILD_DIR]
#
# BUILD_DIR defaults to $LB_BUILD, else _build-bench (release, set up and built if
# missing). --messages, --resync-count and --runs default to $BENCH_MESSAGES,
# $BENCH_RESYNC_MESSAGES and $BENCH_RUNS when set; --resync-count 0 leaves the
# 100 000-message case out. Exits 1 (after printing the other figures) when letterbox-ctl
# has no sync command. The table and progress (#) lines go to stdout; each command's
# output is kept in a log, whose end is shown on failure.
set -euo pipefail
cd "$(dirname "$0")/.."

messages=${BENCH_MESSAGES:-20000}
resync_count=${BENCH_RESYNC_MESSAGES:-100000}
runs=${BENCH_RUNS:-3}
build=${LB_BUILD:-_build-bench}
while [ $# -gt 0 ]; do
  case $1 in
    --messages) messages=$2; shift 2 ;;
    --resync-count) resync_count=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    -h|--help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "imap-sync: unknown option $1 (try --help)" >&2; exit 2 ;;
    *) build=$1; shift ;;
  esac
done

# The peers and the fixture's servers; install-deps.sh --bench only when one is missing.
for tool in mbsync dovecot openssl python3 awk; do
  if ! command -v "$tool" >/dev/null; then
    build-aux/install-deps.sh --bench
    break
  fi
done
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ctl=$build/backend/ctl/letterbox-ctl
# A tree where letterbox-ctl does not build yet still gives the raw and mbsync figures.
ninja -C "$build" backend/ctl/letterbox-ctl >/dev/null ||
  echo "imap-sync: letterbox-ctl did not build in $build; its rows stay empty" >&2

size_large=0 raw_headers_large='' raw_resync_large='' raw_resync_open_large='' raw_select_large=''
lb_missing=''
work=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-bench-XXXXXX")
chmod 0711 "$work" # the servers run as their own users below it
log=$work/commands.log
child= # the command running now, to be stopped by PID on an early exit
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM "$child" 2>/dev/null || true
    wait "$child" 2>/dev/null || true
  fi
  if [ $status -gt 128 ]; then
    echo "imap-sync: stopped by a signal; cleaning up" >&2
  elif [ $status -ne 0 ] && [ -z "$lb_missing" ] && [ -s "$log" ]; then
    echo "imap-sync: failed; the last commands' output:" >&2
    tail -n 30 "$log" >&2
  fi
  tests/fixtures/mailservers.sh stop "$work/servers" || true
  rm -rf "$work"
  exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Runs the program "$@" in the background (stdout to $work/out, stderr to $work/err, then
# both to the log) and waits for it, so that a signal reaches cleanup() at once and
# cleanup() can stop it by PID; sets T to the seconds it took. A failure ends the bench.
run() {
  local start=$EPOCHREALTIME status=0
  echo "\$ $*" >>"$log"
  "$@" </dev/null >"$work/out" 2>"$work/err" &
  child=$!
  wait "$child" || status=$?
  child=
  T=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.4f", b - a }')
  cat "$work/err" "$work/out" >>"$log"
  if [ $status -ne 0 ]; then
    echo "imap-sync: exit status $status from: $*" >&2
    return $status
  fi
}

min() { printf '%s\n' "$@" | { grep . || true; } | sort -g | head -n 1; }

tests/fixtures/mailservers.sh start "$work/servers" >/dev/null
# shellcheck disable=SC1091
source "$work/servers/servers.env"

seed() { # USER COUNT: fills USER's INBOX; sets SIZE to its bytes
  local maildir=$work/servers/mail/$1/Maildir
  run bench/make-maildir.py "$maildir" "$2"
  SIZE=$(cat "$work/out")
  chown -R "$(stat -c %u:%g "$work/servers/mail/$1")" "$maildir"
  # Let Dovecot index the new files before anything is timed.
  tests/fixtures/mailservers.sh doveadm "$work/servers" mailbox status -u "$1@example.test" \
    messages INBOX >/dev/null
}
echo "# seeding $messages messages into alice's INBOX"
seed alice "$messages"
size=$SIZE
if [ "$resync_count" -gt 0 ]; then
  echo "# seeding $resync_count messages into bob's INBOX"
  seed bob "$resync_count"
  size_large=$SIZE
fi
# The seeded gigabytes reach the disk now, not while something is timed.
sync
for u in alice bob; do
  echo "$u-password" >"$work/$u.pass"
done

raw() { # USER MODE: sets RAW to the best of $runs raw fetches, in seconds (and for
         # resync-open RAW_SELECT to the best time of the INBOX's SELECT)
  local t=() s=() out
  for _ in $(seq "$runs"); do
    run bench/raw-imap-fetch.py "$HOST" "$IMAPS_PORT" "$CA_FILE" "$1@example.test" \
      "$1-password" INBOX "$2"
    out=$(cat "$work/out")
    t+=("${out%% *}")
    s+=("$(awk '{ print $3 }' <<<"$out")")
  done
  RAW=$(min "${t[@]}")
  RAW_SELECT=$(min "${s[@]}")
}

echo "# raw fetches (best of $runs)"
raw alice headers
raw_headers=$RAW
raw alice bodies
raw_bodies=$RAW
raw alice resync
raw_resync=$RAW
raw alice resync-open
raw_resync_open=$RAW
if [ "$resync_count" -gt 0 ]; then
  raw bob headers
  raw_headers_large=$RAW
  raw bob resync
  raw_resync_large=$RAW
  raw bob resync-open
  raw_resync_open_large=$RAW
  raw_select_large=$RAW_SELECT
fi

# --- mbsync ----------------------------------------------------------------------------

# CertificateFile is the server's own certificate, as in imap-fetch.sh: mbsync 1.4 matches
# the host name against the certificate's DNS names only, never an IP address, so with the
# CA it refuses 127.0.0.2; a certificate given here is trusted as it is.
mbsync_rc() { # USER DIR: writes DIR/mbsyncrc pulling USER's INBOX into DIR/INBOX
  mkdir -p "$2"
  cat >"$2/mbsyncrc" <<EOC
IMAPAccount bench
Host $HOST
Port $IMAPS_PORT
User $1@example.test
PassCmd "cat $work/$1.pass"
SSLType IMAPS
CertificateFile $SERVER_CERT

IMAPStore remote
Account bench

MaildirStore local
Path $2/
Inbox $2/INBOX

Channel pull
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
EOC
}

echo "# mbsync: full pull into a fresh Maildir, then no-change resync (best of $runs)"
t=()
for _ in $(seq "$runs"); do
  rm -rf "$work/mbsync"
  mbsync_rc alice "$work/mbsync"
  run mbsync -q -c "$work/mbsync/mbsyncrc" pull
  t+=("$T")
done
mbsync_full=$(min "${t[@]}")
mbsync_count=$(find "$work/mbsync/INBOX/cur" "$work/mbsync/INBOX/new" -type f | wc -l)
t=()
for _ in $(seq "$runs"); do
  run mbsync -q -c "$work/mbsync/mbsyncrc" pull
  t+=("$T")
done
mbsync_resync=$(min "${t[@]}")
rm -rf "$work/mbsync"

# --- letterbox -------------------------------------------------------------------------

# Nothing of the caller's home is read or written.
export HOME=$work/home XDG_CONFIG_HOME=$work/home/.config \
  XDG_DATA_HOME=$work/home/.local/share XDG_CACHE_HOME=$work/home/.cache
mkdir -p "$HOME"
config=$work/config
if [ ! -x "$ctl" ]; then
  lb_missing="$ctl does not exist (did the build fail?)"
elif ! "$ctl" --help 2>&1 | grep -qE '^ +sync '; then
  lb_missing="$ctl has no \`sync\` command yet (backend/ctl/lbctl-sync.c)"
fi
data_opt=0 local_opt=0

lb_env=() # extra environment for lb(), such as LB_SYNC_REPEAT=2
lb() { # DATA_DIR ARGS…: runs letterbox-ctl on that store and the bench's accounts
  local data=$1
  shift
  if [ $data_opt = 1 ]; then
    set -- --data-dir "$data" "$@"
  fi
  # In this process, even when a background service runs on the caller's session bus.
  if [ $local_opt = 1 ]; then
    set -- --local "$@"
  fi
  run env LETTERBOX_DATA_DIR="$data" "${lb_env[@]}" "$ctl" --config-dir "$config" "$@"
}

# From the summary line letterbox-ctl sync printed for ACCOUNT ("ACCOUNT: 6 folders,
# 0 new, … (qresync) in 0.045 s"): sets REPORTED to its seconds, METHOD to how changes
# were found, NEW and BODIES to its counts (empty if there is no such line).
reported() {
  local line
  line=$(grep -E "^$1: .*\\(([a-z-]+)\\) in [0-9.]+ s\$" "$work/out" | tail -n 1) || true
  REPORTED=$(sed -nE 's/.* in ([0-9.]+) s$/\1/p' <<<"$line")
  METHOD=$(sed -nE 's/.*\(([a-z-]+)\) in [0-9.]+ s$/\1/p' <<<"$line")
  NEW=$(sed -nE 's/.* ([0-9]+) new,.*/\1/p' <<<"$line")
  BODIES=$(sed -nE 's/.* ([0-9]+) bodies,.*/\1/p' <<<"$line")
}

# A no-change resync on a connection that is already logged in, as the background service
# does it: `letterbox-ctl sync` runs twice in one process (LB_SYNC_REPEAT=2; the second run
# reuses the first one's session) with LB_SYNC_TRACE on. Sets OPEN to the seconds the
# second run took for ACCOUNT (as printed) and FOLDER to those of its INBOX, from the
# trace: the folder's step, from reading its state (just before its SELECT) to its new
# state committed.
open_resync() { # DATA_DIR ACCOUNT ARGS…
  local data=$1 account=$2
  shift 2
  lb_env=(LB_SYNC_REPEAT=2 LB_SYNC_TRACE=1)
  lb "$data" sync "$account" "$@"
  lb_env=()
  check_counts "$account" 0
  OPEN=$REPORTED
  FOLDER=$(awk -v a="$account" '$1 == "lb-sync" && $2 == a && /“INBOX”: folder started$/ {
      s = $3 }
    $1 == "lb-sync" && $2 == a && /“INBOX”: folder done$/ { d = $3 }
    END { if (s != "" && d != "") printf "%.4f", (d - s) / 1000 }' "$work/err")
}

lb_headers='' lb_full='' lb_resync='' lb_headers_large='' lb_resync_large=''
lb_resync_open='' lb_resync_open_large='' lb_folder_large=''
store_size='' resync_large_wall='' resync_method='' resync_large_method='' resync_source=''
# Fails the bench unless the last sync of ACCOUNT reported EXPECTED new messages (and as
# many bodies for a full sync: "bodies").
check_counts() { # ACCOUNT EXPECTED [bodies]
  reported "$1"
  if [ "${NEW:-x}" != "$2" ] || { [ "${3:-}" = bodies ] && [ "${BODIES:-x}" != "$2" ]; }; then
    echo "imap-sync: $1's sync reported ${NEW:-?} new and ${BODIES:-?} bodies, not $2:" \
      "$(cat "$work/out")" >&2
    exit 1
  fi
}
if [ -n "$lb_missing" ]; then
  echo "imap-sync: $lb_missing: the letterbox rows are left empty" >&2
else
  if "$ctl" --help 2>&1 | grep -q -- '--data-dir'; then
    data_opt=1
  fi
  if "$ctl" --help 2>&1 | grep -q -- '--local'; then
    local_opt=1
  fi
  lb "$work/data" account add bench --display-name Bench --email alice@example.test \
    --imap "imaps://alice%40example.test@$HOST:$IMAPS_PORT" \
    --password-command "cat $work/alice.pass" --ca-file "$CA_FILE"
  lb "$work/data" account add bench-large --display-name "Bench large" --email bob@example.test \
    --imap "imaps://bob%40example.test@$HOST:$IMAPS_PORT" \
    --password-command "cat $work/bob.pass" --ca-file "$CA_FILE"

  echo "# letterbox: headers-only sync into a fresh store (best of $runs)"
  t=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/data"
    lb "$work/data" sync bench --headers-only
    t+=("$T")
    check_counts bench "$messages"
  done
  lb_headers=$(min "${t[@]}")
  lb "$work/data" list bench/INBOX --limit 1
  if ! grep -q . "$work/out"; then
    echo "imap-sync: bench/INBOX is not listable after the headers-only sync" >&2
    exit 1
  fi
  echo "# listable: $(head -n 1 "$work/out")"

  echo "# letterbox: full sync into a fresh store, then no-change resync (best of $runs)"
  t=()
  for _ in $(seq "$runs"); do
    rm -rf "$work/data"
    lb "$work/data" sync bench
    t+=("$T")
    check_counts bench "$messages" bodies
  done
  lb_full=$(min "${t[@]}")
  store_size=$(du -sm "$work/data" | cut -f1)
  t=()
  for _ in $(seq "$runs"); do
    lb "$work/data" sync bench
    t+=("$T")
    check_counts bench 0
    resync_method=$METHOD
  done
  lb_resync=$(min "${t[@]}")
  t=()
  for _ in $(seq "$runs"); do
    open_resync "$work/data" bench
    t+=("$OPEN")
  done
  lb_resync_open=$(min "${t[@]}")
  rm -rf "$work/data"

  if [ "$resync_count" -gt 0 ]; then
    echo "# letterbox: $resync_count messages: headers-only sync, then no-change" \
      "headers-only resync (best of $runs)"
    lb "$work/data-large" sync bench-large --headers-only
    lb_headers_large=$T
    check_counts bench-large "$resync_count"
    t=()
    reported_times=()
    for _ in $(seq "$runs"); do
      lb "$work/data-large" sync bench-large --headers-only
      t+=("$T")
      check_counts bench-large 0
      reported_times+=("$REPORTED")
      resync_large_method=$METHOD
    done
    resync_large_wall=$(min "${t[@]}")
    lb_resync_large=$(min "${reported_times[@]}")
    t=()
    f=()
    for _ in $(seq "$runs"); do
      open_resync "$work/data-large" bench-large --headers-only
      t+=("$OPEN")
      f+=("$FOLDER")
    done
    lb_resync_open_large=$(min "${t[@]}")
    lb_folder_large=$(min "${f[@]}")
    if [ -n "$lb_resync_large" ]; then
      resync_source="the time letterbox-ctl sync printed for the account (its ${resync_large_method:-?} sync of all its folders, INBOX and five empty ones; no process start or store open)"
    else
      lb_resync_large=$resync_large_wall
      resync_source="wall time of the whole command (no time was printed)"
    fi
    rm -rf "$work/data-large"
  fi
fi

# --- the table -------------------------------------------------------------------------

secs() { if [ -n "$1" ]; then awk -v v="$1" 'BEGIN { printf "%.3fs", v }'; else echo "-"; fi; }
ratio() { # A B: A / B, or "-" when either is missing
  if [ -n "$1" ] && [ -n "$2" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
  else echo "-"; fi
}
met() { # VALUE LIMIT [strict]: "yes" when VALUE <= LIMIT (< if strict), "NO" if not
  if [ -z "$1" ] || [ "$1" = - ]; then echo "n/a"; return; fi
  awk -v v="$1" -v l="$2" -v strict="${3:-0}" \
    'BEGIN { print ((strict ? v < l : v <= l) ? "yes" : "NO") }'
}
row() { printf '%-44s %9s %10s %6s %-8s %s\n' "$@"; } # LABEL PEER LETTERBOX RATIO TARGET MET

echo
row "IMAP sync (imaps), $messages msgs, $((size / 1000000)) MB" peer letterbox ratio target met
r=$(ratio "$lb_headers" "$raw_headers")
row "headers-only sync vs raw summary fetch" "$(secs "$raw_headers")" "$(secs "$lb_headers")" \
  "$r" "<= 3" "$(met "$r" 3)"
r=$(ratio "$lb_full" "$raw_bodies")
row "full sync vs raw full fetch" "$(secs "$raw_bodies")" "$(secs "$lb_full")" "$r" "<= 3" \
  "$(met "$r" 3)"
row "full sync vs mbsync full sync" "$(secs "$mbsync_full")" "$(secs "$lb_full")" \
  "$(ratio "$lb_full" "$mbsync_full")" "-" "-"
row "no-change resync vs mbsync resync" "$(secs "$mbsync_resync")" "$(secs "$lb_resync")" \
  "$(ratio "$lb_resync" "$mbsync_resync")" "-" "-"
row "no-change resync vs raw QRESYNC resync" "$(secs "$raw_resync")" "$(secs "$lb_resync")" \
  "$(ratio "$lb_resync" "$raw_resync")" "-" "-"
row "  the same on an open session vs raw" "$(secs "$raw_resync_open")" \
  "$(secs "$lb_resync_open")" "$(ratio "$lb_resync_open" "$raw_resync_open")" "-" "-"
if [ "$resync_count" -gt 0 ]; then
  r=$(ratio "$lb_headers_large" "$raw_headers_large")
  row "$resync_count msgs ($((size_large / 1000000)) MB): headers-only vs raw" \
    "$(secs "$raw_headers_large")" "$(secs "$lb_headers_large")" "$r" "-" "-"
  row "$resync_count msgs: no-change resync vs raw" "$(secs "$raw_resync_large")" \
    "$(secs "$lb_resync_large")" "$(ratio "$lb_resync_large" "$raw_resync_large")" "< 0.1s" \
    "$(met "$lb_resync_large" 0.1 strict)"
  row "  the same on an open session vs raw" "$(secs "$raw_resync_open_large")" \
    "$(secs "$lb_resync_open_large")" \
    "$(ratio "$lb_resync_open_large" "$raw_resync_open_large")" "-" "-"
  row "  its INBOX alone, open session vs raw SELECT" "$(secs "$raw_select_large")" \
    "$(secs "$lb_folder_large")" "$(ratio "$lb_folder_large" "$raw_select_large")" "< 0.1s" \
    "$(met "$lb_folder_large" 0.1 strict)"
fi
echo "# best of $runs; raw: bench/raw-imap-fetch.py (one pipelined UID FETCH 1:*, nothing" \
  "parsed; resync: connect, TLS, LOGIN, ENABLE QRESYNC, LIST, SELECT (QRESYNC …) of each" \
  "of the 6 folders; on an open session: LIST and the SELECTs); mbsync pulled" \
  "$mbsync_count files"
if [ -n "$lb_missing" ]; then
  echo "# letterbox: not measured: $lb_missing"
  exit 1
fi
echo "# letterbox: wall time of each letterbox-ctl command (process start, store open," \
  "login, sync, writer closed); the full sync's store: $store_size MB;" \
  "the no-change resync found changes by ${resync_method:-?}"
echo "# open session: the second of two syncs in one letterbox-ctl process (LB_SYNC_REPEAT=2)," \
  "on the connection the first logged in: the time it printed for the account"
if [ "$resync_count" -gt 0 ]; then
  echo "# $resync_count-message resync: $resync_source; the whole command took" \
    "$(secs "$resync_large_wall")"
  echo "# its INBOX alone: the folder's step in that second sync (LB_SYNC_TRACE), from reading" \
    "its state (just before SELECT) to its new state committed; raw: its SELECT (QRESYNC …)"
fi
