#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
"""Runs the app for bench/app-list.sh and prints its table (see that script)."""

import argparse
import os
import re
import selectors
import signal
import statistics
import subprocess
import sys
import time

parser = argparse.ArgumentParser()
parser.add_argument("--build", required=True)
parser.add_argument("--store", required=True)
parser.add_argument("--tmp", required=True)
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--steps", type=int, default=2000)
parser.add_argument("--messages", type=int, default=100000)
parser.add_argument("--renderer", default="cairo")
args = parser.parse_args()

build = os.path.abspath(args.build)
app = os.path.join(build, "app", "letterbox")


def start_xvfb():
    fbdir = os.path.join(args.tmp, "xvfb")
    os.makedirs(fbdir, exist_ok=True)
    r, w = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", "1280x800x24",
                             "-nolisten", "tcp", "-noreset"], pass_fds=(w,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    display = b""
    deadline = time.monotonic() + 20
    while not display.endswith(b"\n") and time.monotonic() < deadline:
        chunk = os.read(r, 16)
        if not chunk:
            break
        display += chunk
    os.close(r)
    if not display.strip():
        sys.exit("Xvfb did not start")
    return proc, ":" + display.decode().strip()


def drop_caches():
    try:
        subprocess.run(["sync"], check=True)
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def session_env(display):
    """One home for every run, as a person has: a warm launch finds the caches (fonts,
    Mesa's shaders) the launches before it wrote."""
    home = os.path.join(args.tmp, "home")
    env = dict(os.environ)
    for d in ("home", "config", "data", "cache", "state"):
        os.makedirs(os.path.join(home, d), exist_ok=True)
    runtime = os.path.join(home, "runtime")
    os.makedirs(runtime, mode=0o700, exist_ok=True)
    env.update(HOME=os.path.join(home, "home"), XDG_CONFIG_HOME=os.path.join(home, "config"),
               XDG_DATA_HOME=os.path.join(home, "data"), XDG_CACHE_HOME=os.path.join(home, "cache"),
               XDG_STATE_HOME=os.path.join(home, "state"), XDG_RUNTIME_DIR=runtime,
               DISPLAY=display, GDK_BACKEND="x11", GSK_RENDERER=args.renderer,
               GSETTINGS_SCHEMA_DIR=os.path.join(build, "data"), GSETTINGS_BACKEND="memory",
               LETTERBOX_CONFIG_DIR=os.path.join(home, "config"),
               LETTERBOX_BENCH="1", LETTERBOX_RELAY_PORT="0")
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    env.pop("WAYLAND_DISPLAY", None)
    return env


def start_bus(env):
    """The session's bus, started once before the first launch and kept for every run, as
    a desktop session's bus is: what it activates (the accessibility bus, the keyring)
    stays running between launches, and no launch is timed starting a bus."""
    r, w = os.pipe()
    proc = subprocess.Popen(["dbus-daemon", "--session", "--nofork", f"--print-address={w}"],
                            pass_fds=(w,), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    os.close(w)
    address = b""
    selector = selectors.DefaultSelector()
    selector.register(r, selectors.EVENT_READ)
    deadline = time.monotonic() + 20
    while not address.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            break
        chunk = os.read(r, 256)
        if not chunk:
            break
        address += chunk
    os.close(r)
    if not address.strip():
        proc.kill()
        proc.wait()
        sys.exit("dbus-daemon did not start")
    env["DBUS_SESSION_BUS_ADDRESS"] = address.decode().strip()
    return proc


def start_keyring(env):
    """The session's keyring, unlocked, as a desktop's is from login: without it the app's
    first use of the Secret Service (the relay secret's copy, 10 s after start) activates
    a keyring that asks for a new password in a system prompt, which grabs the whole
    screen and stalls the launches after it."""
    proc = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock",
                             "--components=secrets"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                            start_new_session=True)
    proc.stdin.write(b"bench")
    proc.stdin.close()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        owned = subprocess.run(["gdbus", "call", "--session", "--dest", "org.freedesktop.DBus",
                                "--object-path", "/org/freedesktop/DBus", "--method",
                                "org.freedesktop.DBus.NameHasOwner", "org.freedesktop.secrets"],
                               env=env, capture_output=True, text=True).stdout
        if "true" in owned:
            return proc
        time.sleep(0.1)  # polling for the name, bounded by the deadline
    proc.kill()
    proc.wait()
    sys.exit("gnome-keyring-daemon did not take org.freedesktop.secrets")


def run_app(env, scroll_steps, cold, data_dir=None):
    env = dict(env)
    env["LETTERBOX_DATA_DIR"] = data_dir or args.store
    if scroll_steps:
        env["LETTERBOX_BENCH_SCROLL"] = str(scroll_steps)
    if cold and not drop_caches():
        return None
    t0 = time.monotonic_ns() // 1000
    proc = subprocess.Popen([app], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True)
    result = {}
    deadline = time.monotonic() + (1200 if scroll_steps else 60)
    try:
        for line in lines_until(proc.stderr, deadline):
            m = re.match(r"bench mark (\S+) monotonic_us=(\d+)", line)
            if m:
                result.setdefault("marks", {})[m.group(1)] = (int(m.group(2)) - t0) / 1000.0
            m = re.match(r"bench first-list-painted monotonic_us=(\d+) rows=(\d+) rss_kb=(\d+)"
                         r" main_cpu_us=(\d+) process_cpu_us=(\d+)", line)
            if m:
                result["first_ms"] = (int(m.group(1)) - t0) / 1000.0
                result["rows"] = int(m.group(2))
                result["first_rss_kb"] = int(m.group(3))
                result["main_cpu_ms"] = int(m.group(4)) / 1000.0
                result["process_cpu_ms"] = int(m.group(5)) / 1000.0
                if not scroll_steps:
                    break
            m = re.match(r"bench scroll (.*)", line)
            if m:
                for kv in m.group(1).split():
                    k, v = kv.split("=")
                    result[k] = v if k == "slow" else float(v)
                break
    finally:
        stop_session(proc)
    if "first_ms" not in result:
        failures.append("launch" if not scroll_steps else f"scroll {scroll_steps}")
    return result


def lines_until(stream, deadline):
    """The lines of stream until its end or the deadline, whichever comes first (an app
    that never paints must not stop the benchmark)."""
    selector = selectors.DefaultSelector()
    selector.register(stream, selectors.EVENT_READ)
    buffered = b""
    fd = stream.fileno()
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not selector.select(left):
            return
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffered += chunk
        *complete, buffered = buffered.split(b"\n")
        for line in complete:
            yield line.decode(errors="replace")


def stop_session(proc):
    """Ends the app (its own process group; the bus too for start_bus's process), and
    waits until every process of the group is gone, so that the next run starts on a quiet
    machine."""
    for sig, grace in ((signal.SIGTERM, 10), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            try:
                os.killpg(proc.pid, 0)
            except ProcessLookupError:
                break
            proc.poll()
            time.sleep(0.05)  # polling for the group's end, bounded by the deadline
        else:
            continue
        break
    proc.wait()


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


failures = []
xvfb, display = start_xvfb()
session = session_env(display)
bus = keyring = None
loads = [loadavg()]
try:
    bus = start_bus(session)
    keyring = start_keyring(session)
    cold, warm, empty = [], [], []
    phases = {}
    warm_cpu = {}
    can_drop = os.geteuid() == 0
    rows = "?"
    # A session's first launch also starts what the app asks its bus for (the
    # accessibility bus, the keyring), which on a desktop run from login: not timed.
    run_app(session, 0, False)
    for i in range(args.runs):
        if can_drop:
            r = run_app(session, 0, True)
            if r is None:
                can_drop = False
            elif "first_ms" in r:
                cold.append(r["first_ms"])
        r = run_app(session, 0, False)
        if "first_ms" in r:
            warm.append(r["first_ms"])
            warm_cpu.setdefault("main thread", []).append(r["main_cpu_ms"])
            warm_cpu.setdefault("all threads", []).append(r["process_cpu_ms"])
            rows = r["rows"]
            for phase, ms in r.get("marks", {}).items():
                phases.setdefault(phase, []).append(ms)
        # The same launch on an empty store: what the list itself adds.
        r = run_app(session, 0, False, os.path.join(args.tmp, "empty-store"))
        if "first_ms" in r:
            empty.append(r["first_ms"])
        print(f"# run {i + 1}: cold {cold[-1] if cold else float('nan'):.0f} ms, "
              f"warm {warm[-1] if warm else float('nan'):.0f} ms, "
              f"empty store {empty[-1] if empty else float('nan'):.0f} ms", flush=True)
    loads.append(loadavg())
    page = run_app(session, "page", False)
    loads.append(loadavg())
    jumps = run_app(session, args.steps, False)
    loads.append(loadavg())
finally:
    for proc in (keyring, bus):
        if proc is not None:
            stop_session(proc)
    xvfb.terminate()
    xvfb.wait()

print()
if failures:
    print(f"# {len(failures)} run(s) reported no painted list within the deadline: "
          + ", ".join(failures))
print(f"message list, {args.messages} messages in one folder ({rows} rows listed), "
      f"GSK_RENDERER={args.renderer}, load average {min(loads):.1f}-{max(loads):.1f} "
      f"on {os.cpu_count()} CPUs")
fmt = "{:<46} {:>12} {:>12}  {}"
print(fmt.format("measure", "best", "median", "target"))


def row(name, values, target):
    if values:
        print(fmt.format(name, f"{min(values):.0f} ms", f"{statistics.median(values):.0f} ms", target))
    else:
        print(fmt.format(name, "n/a", "n/a", target))


row("launch to first painted list, cold", cold,
    "< 500 ms" if can_drop else "< 500 ms (not root: not measured)")
row("launch to first painted list, warm", warm, "< 500 ms")
row("  the same launch, empty store (1 row)", empty, "")
for name, values in warm_cpu.items():
    print(f"  CPU time of its {name} until then (median): {statistics.median(values):.0f} ms")
if phases:
    print("  where the warm launch's time goes (median, ms since exec):")
    for phase, values in sorted(phases.items(), key=lambda kv: statistics.median(kv[1])):
        print(f"    {phase:<24} {statistics.median(values):7.0f}")
for name, r in (("scroll by a screenful a frame", page),
                (f"scroll in {args.steps} scrollbar jumps", jumps)):
    if "frames" not in r:
        print(f"{name}: the app did not report")
        continue
    print(fmt.format(f"{name}, {int(r['frames'])} frames", "", "", ""))
    print(fmt.format("  frame interval max / p99 / mean",
                     f"{r['max_ms']:.0f} / {r['p99_ms']:.0f} / {r['mean_ms']:.1f} ms", "", "max <= 50 ms"))
    print(fmt.format("  frames over 50 ms", f"{int(r['over50'])}", "", "0"))
    if r.get("slow", "-") != "-":
        print("    which (frame:interval ms:this thread's CPU ms): " + r["slow"])
    print(fmt.format("  main-thread CPU a frame max / p99 / mean",
                     f"{r['cpu_max_ms']:.0f} / {r['cpu_p99_ms']:.0f} / {r['cpu_mean_ms']:.1f} ms", "", ""))
    print(fmt.format("  frames using over 50 ms of CPU", f"{int(r['cpu_over50'])}", "", ""))
    print(fmt.format("  resident memory after the scroll", f"{r['rss_kb'] / 1024:.0f} MB", "",
                     "< 150 MB"))
