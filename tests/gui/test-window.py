#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The app as a person meets it, seen through the accessibility tree (AT-SPI): the window
# opens on Local Folders with its Inbox and welcome message, clicking the message shows
# it, a second launch raises the same window instead of opening another, and the quit
# action and SIGTERM end the process cleanly, the store closed. Run through run-gui-test.sh (Xvfb + private bus).
import os
import subprocess
import sys
import tempfile

import pyatspi

import lbgui
from lbgui import click, contains, find, named, showing, starts_with, wait_for

APP = os.environ["LB_APP_PATH"]
APP_ID = "org.letterbox.Letterbox"

results = []
# run-gui-test.sh hands us the test runner's stdout as this descriptor, and sends
# everything else (the accessibility bus, the app) to stderr.
tap = os.fdopen(int(os.environ.get("LB_TAP_FD", "1")), "w", buffering=1)


def check(name, ok, detail=""):
    results.append(ok)
    print(("ok" if ok else "not ok") + f" {len(results)} {name}" + (f" # {detail}" if detail and not ok else ""),
          file=tap)


def find_app():
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == "letterbox":
            return app
    return None


def frames(app):
    return [app.getChildAtIndex(i) for i in range(app.childCount)
            if app.getChildAtIndex(i).getRole() == pyatspi.ROLE_FRAME]


def main():
    data_dir = tempfile.mkdtemp(prefix="letterbox-gui-store-")
    env = dict(os.environ, LETTERBOX_DATA_DIR=data_dir)
    print("TAP version 13", file=tap)
    # The app (hosting the engine, or the backend it activates) publishes the relay's
    # password to the keyring: an unlocked one, or a system prompt would grab the screen.
    lbgui.ensure_keyring()
    app_proc = subprocess.Popen([APP], env=env)
    try:
        app = wait_for(find_app, 30, "the app on the accessibility bus")
        frame = wait_for(lambda: (frames(app) or [None])[0], 30, "the main window")
        check("a window appears", frame is not None)

        folders = wait_for(lambda: find(frame, named("Folders", pyatspi.ROLE_LIST)), 30, "the folder list")
        local = wait_for(lambda: find(folders, named("Local Folders", pyatspi.ROLE_LABEL)), 30,
                         "the Local Folders heading")
        check("the sidebar shows Local Folders", showing(local))

        inbox = wait_for(lambda: find(frame, named("Inbox, 1 unread")), 30, "the Inbox row")
        check("the Inbox row counts the welcome message as unread", showing(inbox))
        for folder in ("Drafts", "Sent", "Trash"):
            row = find(folders, named(folder, pyatspi.ROLE_LIST_ITEM))
            check(f"the sidebar lists {folder}", showing(row))

        message = wait_for(lambda: find(frame, starts_with("Unread message from Letterbox, Welcome to Letterbox")),
                           30, "the welcome message in the list")
        check("the message list shows the welcome message", showing(message))

        placeholder = find(frame, named("No Message Selected", pyatspi.ROLE_LABEL))
        check("nothing is selected at first", showing(placeholder))

        click(message)
        body = wait_for(lambda: (lambda t: t if t and "Local Folders keep mail" in t
                                 and t.rstrip().endswith("in sync.") else None)(lbgui.message_text(frame)),
                        30, "the message body in the reading pane")
        check("clicking the message shows its text", body is not None)
        subjects = pyatspi.findAllDescendants(frame, named("Welcome to Letterbox", pyatspi.ROLE_LABEL))
        # The list's row draws its own text (its subject is in its accessible name): the one
        # label with the subject is the reading pane's.
        check("the reading pane shows the subject", len([a for a in subjects if showing(a)]) == 1,
              f"{len(subjects)} subject labels")
        check("the placeholder is gone", not showing(find(frame, named("No Message Selected", pyatspi.ROLE_LABEL))))

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

        # The session's end (SIGTERM) quits as Quit does: exit status 0, and every
        # connection to the store closed (the last one checkpoints and removes the WAL,
        # which a killed app leaves for the next launch to recover).
        app_proc = subprocess.Popen([APP], env=env)
        app = wait_for(find_app, 30, "the app on the accessibility bus, launched again")
        frame = wait_for(lambda: (frames(app) or [None])[0], 30, "the main window again")
        # Read or not: the first run's click marks it read after the mark-read delay.
        wait_for(lambda: find(frame, contains("essage from Letterbox, Welcome to Letterbox")),
                 30, "the welcome message in the list again")
        app_proc.terminate()
        code = app_proc.wait(timeout=30)
        check("SIGTERM ends the app cleanly", code == 0, f"exit {code}")
        wal = os.path.join(data_dir, "index.db-wal")
        check("the app closed the store on SIGTERM", not os.path.exists(wal),
              f"{os.path.getsize(wal) if os.path.exists(wal) else 0}-byte WAL left")
    except Exception as e:  # report as a failed check with the reason, then fail
        check("the GUI test ran to the end", False, str(e))
    finally:
        if app_proc.poll() is None:
            app_proc.kill()
            app_proc.wait()
        subprocess.run(["rm", "-rf", data_dir])
    print(f"1..{len(results)}", file=tap)
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
