#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Runs an in-process GTK test binary (a GLib test program) inside the environment that
# run-gui-test.sh made (Xvfb, private bus, private XDG directories): its TAP report goes
# to the runner's descriptor, like the python GUI tests'.
import os
import sys

# --no-leak-check: memory errors only. test-message-view: under the slow unwinder its
# WebKit UI process is so much slower that its pointer-driven link click, beside another
# test on two CPUs, missed its deadline; and WebKit's EGL display and what JavaScriptCore
# keeps for each web view would need suppressing too.
args = sys.argv[1:]
leak_check = args[0] != "--no-leak-check"
if not leak_check:
    args = args[1:]
binary = args[0]
tap = int(os.environ.get("LB_TAP_FD", "1"))
# Under the sanitizers these tests check leaks too, with the slow unwinder: GTK, Mesa and
# WebKit keep caches for the life of the process, and the fast unwinder stops in those
# uninstrumented libraries after a frame or two, so their allocations could not be told
# from ours. With a dozen frames of each stack, tests/lsan.supp names the libraries whose
# caches they are (fontconfig's, for these tests); test-message-list takes ~15 s, not ~4 s.
if "ASAN_OPTIONS" in os.environ:
    options = [o for o in os.environ["ASAN_OPTIONS"].split(":")
               if not o.startswith(("detect_leaks=", "fast_unwind_on_malloc=", "malloc_context_size="))]
    if leak_check:
        options += ["detect_leaks=1", "fast_unwind_on_malloc=0", "malloc_context_size=12"]
    else:
        options += ["detect_leaks=0"]
    os.environ["ASAN_OPTIONS"] = ":".join(options)
os.dup2(tap, 1)
os.execv(binary, [binary, "--tap"] + args[1:])
