#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Runs one GUI test script the way ../shared/TESTING.md found reliable: its own HOME and
# XDG directories, an Xvfb display that the X server picks itself (-displayfd, so tests
# in parallel never collide; -noreset, or the server restarts and refuses clients each
# time its last client leaves), and a private session bus started *inside* that display
# so that the accessibility bus it activates can reach the screen. Xvfb is stopped by PID.
set -euo pipefail
script=$1
shift

tmp=$(mktemp -d "${TMPDIR:-/tmp}/letterbox-gui-XXXXXX")
xvfb_pid=
cleanup() {
  if [ -n "$xvfb_pid" ]; then
    kill "$xvfb_pid" 2>/dev/null || true
    wait "$xvfb_pid" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT

export HOME=$tmp/home
export XDG_CONFIG_HOME=$tmp/config XDG_DATA_HOME=$tmp/data XDG_CACHE_HOME=$tmp/cache
export XDG_STATE_HOME=$tmp/state XDG_RUNTIME_DIR=$tmp/runtime
mkdir -p "$HOME" "$XDG_CONFIG_HOME" "$XDG_DATA_HOME" "$XDG_CACHE_HOME" "$XDG_STATE_HOME"
mkdir -m 0700 "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS WAYLAND_DISPLAY LETTERBOX_DATA_DIR
export GDK_BACKEND=x11 GSK_RENDERER=cairo NO_AT_BRIDGE=0 GTK_A11Y=atspi

Xvfb -displayfd 3 -screen 0 1280x800x24 -fbdir "$tmp" -nolisten tcp -noreset 3>"$tmp/display" >"$tmp/xvfb.log" 2>&1 &
xvfb_pid=$!
deadline=$(( SECONDS + 20 ))
until [ -s "$tmp/display" ]; do
  if (( SECONDS >= deadline )) || ! kill -0 "$xvfb_pid" 2>/dev/null; then
    echo "Xvfb did not start:" >&2
    cat "$tmp/xvfb.log" >&2
    exit 1
  fi
  sleep 0.05
done
export DISPLAY=:$(tr -d '\n' <"$tmp/display")
# The screen's frame buffer as a file (XWD), for screenshots (tests/gui/lbgui.py).
export LB_XVFB_FBDIR=$tmp

# The script writes its TAP report to descriptor 3 (the runner's stdout); whatever the
# bus and the services it starts print goes to stderr, out of the report's way.
export LB_TAP_FD=3
dbus-run-session -- /usr/bin/python3 "$script" "$@" 3>&1 1>&2
