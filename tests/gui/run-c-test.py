#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Runs an in-process GTK test binary (a GLib test program) inside the environment that
# run-gui-test.sh made (Xvfb, private bus, private XDG directories): its TAP report goes
# to the runner's descriptor, like the python GUI tests'.
import os
import sys

binary = sys.argv[1]
tap = int(os.environ.get("LB_TAP_FD", "1"))
# Under the sanitizers these tests check memory errors, not leaks: GTK, Mesa and WebKit
# keep caches for the life of the process, and LeakSanitizer reports them at exit with
# one or two frames it cannot attribute (its fast unwinder stops in those uninstrumented
# libraries). The engine's own leaks are checked by the unit and integration tests.
if "ASAN_OPTIONS" in os.environ:
    options = [o for o in os.environ["ASAN_OPTIONS"].split(":") if not o.startswith("detect_leaks=")]
    os.environ["ASAN_OPTIONS"] = ":".join(options + ["detect_leaks=0"])
os.dup2(tap, 1)
os.execv(binary, [binary, "--tap"] + sys.argv[2:])
