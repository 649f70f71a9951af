#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The app as a person meets it, seen through the accessibility tree (AT-SPI): the window
# opens on Local Folders with its Inbox and welcome message, clicking the message shows
# it, a second launch raises the same window instead of opening another, and the quit
# action ends the process cleanly. Run through run-gui-test.sh (Xvfb + private bus).
import os
import subprocess
import sys
import tempfile
import time

import pyatspi

APP = os.environ["LB_APP_PATH"]
APP_ID = "org.letterbox.Letterbox"

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok" if ok else "not ok") + f" {len(results)} {name}" + (f" # {detail}" if detail and not ok else ""))
    sys.stdout.flush()


def wait_for(condition, timeout, what):
    """Polls condition until it returns something true, or fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = condition()
        except Exception:  # the tree changes under us while the app starts
            value = None
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def find_app():
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == "letterbox":
            return app
    return None


def find(root, predicate):
    return pyatspi.findDescendant(root, predicate, breadthFirst=True)


def named(name, role=None):
    return lambda a: a is not None and a.name == name and (role is None or a.getRole() == role)


def starts_with(prefix):
    return lambda a: a is not None and (a.name or "").startswith(prefix)


def showing(acc):
    return acc is not None and acc.getState().contains(pyatspi.STATE_SHOWING)


def frames(app):
    return [app.getChildAtIndex(i) for i in range(app.childCount)
            if app.getChildAtIndex(i).getRole() == pyatspi.ROLE_FRAME]


def click(acc):
    ext = acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)
    pyatspi.Registry.generateMouseEvent(ext.x + ext.width // 2, ext.y + ext.height // 2, "b1c")


def main():
    data_dir = tempfile.mkdtemp(prefix="letterbox-gui-store-")
    env = dict(os.environ, LETTERBOX_DATA_DIR=data_dir)
    print("TAP version 13")
    app_proc = subprocess.Popen([APP], env=env)
    try:
        app = wait_for(find_app, 30, "the app on the accessibility bus")
        frame = wait_for(lambda: (frames(app) or [None])[0], 30, "the main window")
        check("a window appears", frame is not None)

        local = wait_for(lambda: find(frame, named("Local Folders", pyatspi.ROLE_LABEL)), 30,
                         "the Local Folders heading")
        check("the sidebar shows Local Folders", showing(local))

        inbox = wait_for(lambda: find(frame, named("Inbox, 1 unread")), 30, "the Inbox row")
        check("the Inbox row counts the welcome message as unread", showing(inbox))
        for folder in ("Drafts", "Sent", "Trash"):
            row = find(frame, named(folder, pyatspi.ROLE_LIST_ITEM))
            check(f"the sidebar lists {folder}", showing(row))

        message = wait_for(lambda: find(frame, starts_with("Unread message from Letterbox, Welcome to Letterbox")),
                           30, "the welcome message in the list")
        check("the message list shows the welcome message", showing(message))

        placeholder = find(frame, named("No Message Selected"))
        check("nothing is selected at first", showing(placeholder))

        click(message)
        body = wait_for(lambda: (lambda b: b if showing(b) else None)(
            find(frame, starts_with("Local Folders keep mail"))), 30, "the message body")
        check("clicking the message shows its text", showing(body))
        subject = find(frame, lambda a: a.name == "Welcome to Letterbox" and a.getRole() == pyatspi.ROLE_LABEL
                       and showing(a))
        check("the reading pane shows the subject", subject is not None)

        # Single instance: a second launch hands over to the first and exits.
        second = subprocess.run([APP], env=env, timeout=60)
        check("a second launch exits successfully", second.returncode == 0, f"exit {second.returncode}")
        check("the first instance still runs", app_proc.poll() is None)
        check("there is still exactly one window", len(frames(app)) == 1, f"{len(frames(app))} windows")

        subprocess.run(["gdbus", "call", "--session", "--dest", APP_ID, "--object-path",
                        "/" + APP_ID.replace(".", "/"), "--method", "org.gtk.Actions.Activate",
                        "quit", "[]", "{}"], check=True, stdout=subprocess.DEVNULL, timeout=30)
        code = app_proc.wait(timeout=30)
        check("the quit action ends the app cleanly", code == 0, f"exit {code}")
    except Exception as e:  # report as a failed check with the reason, then fail
        check("the GUI test ran to the end", False, str(e))
    finally:
        if app_proc.poll() is None:
            app_proc.kill()
            app_proc.wait()
        subprocess.run(["rm", "-rf", data_dir])
    print(f"1..{len(results)}")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
