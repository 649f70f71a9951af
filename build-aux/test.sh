#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The README's test command (and all that .ci/run does): installs whatever is missing,
# builds with warnings as errors, runs every test suite (unit, integration, gui, fuzz), then
# builds the engine again with AddressSanitizer and UndefinedBehaviorSanitizer and runs
# the engine's suites (unit, integration) under them. Prints the total time at the end.
#
#   build-aux/test.sh                 everything
#   build-aux/test.sh -- ARGS…        pass ARGS to the first `meson test` (e.g. a suite)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

build-aux/install-deps.sh --test

setup() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson setup --reconfigure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}

summary() {
  # One line in the plain "N passed, N failed" form, from meson's own log.
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
counts = {}
for line in open(sys.argv[1] + "/meson-logs/testlog.json"):
    r = json.loads(line)["result"]
    counts[r] = counts.get(r, 0) + 1
passed = counts.get("OK", 0) + counts.get("EXPECTEDFAIL", 0)
failed = sum(v for k, v in counts.items() if k not in ("OK", "EXPECTEDFAIL", "SKIP"))
print(f"{sys.argv[2]}: {passed} passed, {failed} failed, {counts.get('SKIP', 0)} skipped")
PY
}

status=0

setup _build-test -Dwerror=true
ninja -C _build-test
meson test -C _build-test --print-errorlogs --num-processes 2 "${@:2}" || status=1
summary _build-test tests

setup _build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false
ninja -C _build-asan
meson test -C _build-asan --print-errorlogs --num-processes 2 --suite unit --suite integration ||
  status=1
summary _build-asan sanitizers
# The GUI code in-process (list, status widgets, reading pane) under the sanitizers too.
meson test -C _build-asan --no-rebuild --print-errorlogs --num-processes 2 \
  test-message-list test-status test-message-view || status=1
summary _build-asan "sanitizers (in-process GUI)"

echo "letterbox: all tests took $(( SECONDS - start )) s"
exit $status
