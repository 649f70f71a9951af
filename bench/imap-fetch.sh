#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# IMAP download: the engine against the practical limit and against mbsync, on the same
# Dovecot and the same mailbox in one run (issue #3). Seeds BENCH_MESSAGES (default
# 20 000) realistic messages, then times:
#   (a) all header data  (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)
#   (b) all full bodies  (BODY.PEEK[])
# each with lb-bench-imap (the engine) and raw-imap-fetch.py (one pipelined FETCH read
# without parsing: the practical limit), best of BENCH_RUNS (default 5); and
#   (c) mbsync pulling the mailbox into a fresh Maildir.
# Target (issue #3): the engine within 1.2x of the raw limit for (a) and (b).
#
#   bench/imap-fetch.sh [BUILD_DIR]       (default _build-bench, built if missing)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-_build-bench}
messages=${BENCH_MESSAGES:-20000}
runs=${BENCH_RUNS:-5}

build-aux/install-deps.sh --bench
if [ ! -f "$build/build.ninja" ]; then
  meson setup "$build" --buildtype=release >/dev/null
fi
ninja -C "$build" bench/lb-bench-imap >/dev/null

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
# Let Dovecot index the new files before anything is timed.
tests/fixtures/mailservers.sh doveadm "$work/servers" mailbox status -u alice@example.test \
  messages INBOX >/dev/null

best() {
  # Runs "$@" $runs times; prints the line with the smallest first field.
  for _ in $(seq "$runs"); do "$@"; done | sort -n | head -n 1
}

engine() {
  "$build/bench/lb-bench-imap" "$HOST" "$IMAPS_PORT" "$CA_FILE" alice@example.test \
    alice-password INBOX "$1"
}
raw() {
  bench/raw-imap-fetch.py "$HOST" "$IMAPS_PORT" "$CA_FILE" alice@example.test \
    alice-password INBOX "$1"
}

echo "# timing (best of $runs)"
read -r eh _ _ < <(best engine headers)
read -r rh _ < <(best raw headers)
read -r eb em ebytes < <(best engine bodies)
read -r rb rbytes < <(best raw bodies)

cat >"$work/mbsyncrc" <<EOC
IMAPAccount bench
Host $HOST
Port $IMAPS_PORT
User alice@example.test
Pass alice-password
SSLType IMAPS
CertificateFile $SERVER_CERT

IMAPStore remote
Account bench

MaildirStore local
Path $work/mbsync/
Inbox $work/mbsync/INBOX

Channel pull
Far :remote:
Near :local:
Patterns INBOX
Sync Pull
Create Near
SyncState *
EOC
mkdir -p "$work/mbsync"
start=$(date +%s.%N)
mbsync -q -c "$work/mbsyncrc" pull </dev/null
mb=$(echo "$(date +%s.%N) - $start" | bc)
mbsync_count=$(find "$work/mbsync/INBOX" -type f | wc -l)

ratio() { echo "scale=2; $1 / $2" | bc; }
printf '\n%-34s %10s %10s %8s %s\n' "IMAP, $messages messages, $((size / 1000000)) MB" \
  "peer" "letterbox" "ratio" "target"
printf '%-34s %9.2fs %9.2fs %8s %s\n' "(a) headers vs raw reader" "$rh" "$eh" "$(ratio "$eh" "$rh")" "<= 1.2"
printf '%-34s %9.2fs %9.2fs %8s %s\n' "(b) bodies vs raw reader" "$rb" "$eb" "$(ratio "$eb" "$rb")" "<= 1.2"
printf '%-34s %9.2fs %9.2fs %8s %s\n' "(c) bodies vs mbsync" "$mb" "$eb" "$(ratio "$eb" "$mb")" "< 1"
echo "# engine fetched $em messages, $ebytes body bytes; raw read $rbytes bytes; mbsync wrote $mbsync_count files"
