#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# POP3 download: the engine against the practical limit and against fetchmail, on the
# same Dovecot and the same maildrop in one run (issue #4). Seeds BENCH_MESSAGES (default
# 20 000) realistic messages (make-maildir.py), then times, best of BENCH_RUNS (default 5):
#   (a) every message with lb-bench-pop3 (the engine: pipelined RETR, each message
#       streamed to a sink that counts) and raw-pop3-fetch.py (the same pipelined RETRs,
#       bytes read and end-of-message markers counted, nothing else: the practical limit)
#   (b) every message written to one file: lb-bench-pop3 through
#       lb_pop3_session_retrieve_to_stream_async(), and fetchmail -k -a with --bsmtp to a
#       file (its cheapest output: no MDA process, no SMTP), once each (fetchmail is slow)
# Targets (issue #4): (a) engine within 1.2x of the raw reader; (b) faster than fetchmail.
#
#   bench/pop3-fetch.sh [BUILD_DIR]       (default _build-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-_build-bench}
messages=${BENCH_MESSAGES:-20000}
runs=${BENCH_RUNS:-5}

build-aux/install-deps.sh --bench
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/lb-bench-pop3 >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-bench-XXXXXX")
chmod 0711 "$work" # the servers run as their own users below it
cleanup() {
  tests/fixtures/mailservers.sh stop "$work/servers" || true
  rm -rf "$work"
}
trap cleanup EXIT

tests/fixtures/mailservers.sh start "$work/servers" >/dev/null
# shellcheck disable=SC1091
source "$work/servers/servers.env"
maildir=$work/servers/mail/alice/Maildir
echo "# seeding $messages messages into alice's INBOX"
size=$(bench/make-maildir.py "$maildir" "$messages")
chown -R "$(stat -c %u:%g "$work/servers/mail/alice")" "$maildir"
# Let Dovecot index the new files (and make its POP3 UIDL list) before anything is timed.
tests/fixtures/mailservers.sh doveadm "$work/servers" mailbox status -u alice@example.test \
  messages INBOX >/dev/null
bench/raw-pop3-fetch.py "$HOST" "$POP3S_PORT" "$CA_FILE" alice@example.test alice-password \
  >/dev/null

best() {
  # Runs "$@" $runs times; prints the line with the smallest first field.
  for _ in $(seq "$runs"); do "$@"; done | sort -n | head -n 1
}

engine() {
  "$build/bench/lb-bench-pop3" "$HOST" "$POP3S_PORT" "$CA_FILE" alice@example.test \
    alice-password "$1"
}
raw() {
  bench/raw-pop3-fetch.py "$HOST" "$POP3S_PORT" "$CA_FILE" alice@example.test alice-password
}

echo "# timing (best of $runs)"
read -r ec em ebytes < <(best engine -)
read -r rc rm rbytes < <(best raw)
read -r ef efm efbytes < <(engine "$work/engine.mbox")
rm -f "$work/engine.mbox"

# fetchmail checks the certificate's name against the CN only: the fixture's is localhost.
cat >"$work/fetchmailrc" <<EOC
set no syslog
set idfile "$work/fetchids"
poll $HOST port $POP3S_PORT with proto POP3 uidl
  user "alice@example.test" there with password "alice-password" is "$(id -un)" here
  options ssl sslcertck sslcertfile "$CA_FILE" sslcommonname localhost keep fetchall no rewrite
  bsmtp "$work/fetchmail.bsmtp"
EOC
chmod 0600 "$work/fetchmailrc"
start=$(date +%s.%N)
fetchmail -s -f "$work/fetchmailrc" --nodetach </dev/null 2>"$work/fetchmail.err" ||
  { echo "fetchmail failed:"; cat "$work/fetchmail.err"; exit 1; }
fm=$(echo "$(date +%s.%N) - $start" | bc)
fm_count=$(grep -c '^MAIL FROM:' "$work/fetchmail.bsmtp" || true)
fm_bytes=$(stat -c %s "$work/fetchmail.bsmtp")

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-36s %10s %10s %8s %s\n' "POP3, $messages messages, $((size / 1000000)) MB" \
  "peer" "letterbox" "ratio" "target"
printf '%-36s %9.2fs %9.2fs %8s %s\n' "(a) RETR all vs raw reader" "$rc" "$ec" "$(ratio "$ec" "$rc")" "<= 1.2"
printf '%-36s %9.2fs %9.2fs %8s %s\n' "(b) to a file vs fetchmail (bsmtp)" "$fm" "$ef" "$(ratio "$ef" "$fm")" "< 1"
echo "# engine: $em messages, $ebytes bytes (counted), $efm messages, $efbytes bytes (file);"\
  "raw: $rm messages, $rbytes bytes on the wire; fetchmail: $fm_count messages, $fm_bytes bytes"
