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
os.dup2(tap, 1)
os.execv(binary, [binary, "--tap"] + sys.argv[2:])
