#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Builds one libFuzzer target with clang (ASan + UBSan) and runs it from its seed corpus
# for a bounded time; any crash, leak, overread or timeout fails the test.
#
#   run-fuzzer.sh TARGET SECONDS SRCDIR BUILDDIR SOURCES…
#
# The corpus in tests/fuzz/corpus/<name> is copied, never written. For a longer run by
# hand: LB_FUZZ_SECONDS=600 meson test -C _build fuzz-imap-parser --timeout-multiplier 0
# A target that needs more than GLib names its pkg-config packages in LB_FUZZ_PACKAGES
# (space-separated, e.g. "gio-2.0 gmime-3.0").
set -euo pipefail
target=$1
seconds=${LB_FUZZ_SECONDS:-$2}
src=$3
build=$4
shift 4

work=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-fuzz-XXXXXX")
trap 'rm -rf "$work"' EXIT

packages="glib-2.0 ${LB_FUZZ_PACKAGES:-}"

corpus_name=${target#fuzz-}
corpus_name=${corpus_name%-parser}
cp -r "$src/tests/fuzz/corpus/$corpus_name" "$work/corpus"

# shellcheck disable=SC2046,SC2086
clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -DGLIB_VERSION_MIN_REQUIRED=GLIB_VERSION_2_74 -DGLIB_VERSION_MAX_ALLOWED=GLIB_VERSION_2_74 \
  -I"$build" $(for f in "$@"; do printf -- '-I%s ' "$(dirname "$f")"; done) \
  $(pkg-config --cflags $packages) \
  "$src/tests/fuzz/$target.c" "$@" \
  $(pkg-config --libs $packages) -o "$work/$target"

echo "# fuzzing $target for $seconds s"
status=0
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
  "$work/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
  -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/" "$work/corpus" \
  >"$work/log" 2>&1 || status=$?
tail -n 80 "$work/log"
if [ "$status" -ne 0 ]; then
  # The input that failed, for a unit test or the corpus (libFuzzer's exit codes, such
  # as 77 for a leak, must not read as "skipped" to meson).
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    [ -f "$f" ] && { echo "# failing input $(basename "$f"), base64:"; base64 -w0 "$f"; echo; }
  done
  exit 1
fi
