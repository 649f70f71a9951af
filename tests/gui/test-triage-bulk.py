#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# "Select all" means the whole folder (issue #8): a folder of 600 messages, three times
# what the message list keeps loaded (made 4 pages of 50 for the test), on the real
# Dovecot fixture; Ctrl+A then Ctrl+I marks every one of them read, and the server has
# every one \Seen; A archives all 600 (the folder empties, the toast counts them) and the toast's Undo
# moves all of them back, on the server too. Times are printed as TAP notes. Run through run-gui-test.sh (Xvfb + bus).
import email.utils
import os
import sys
import time

import pyatspi

import lbgui
from lbgui import find_showing, folder_row, message_row, named, wait_for

ALICE = "alice@example.test"
N = int(os.environ.get("LB_BULK_MESSAGES", "600"))
# The list keeps at most 4 pages of 50 rows loaded here (LETTERBOX_LIST_PAGES), so that
# 600 messages are three times what it holds, and the moves the backend replays one by
# one on the server stay few enough for a quick test. LB_BULK_MESSAGES=100000
# LB_BULK_MARK_ONLY=1 measures a big folder with the list's own paging.
PAGES = "50,4" if N < 5000 else None
MARK_ONLY = os.environ.get("LB_BULK_MARK_ONLY") == "1"


def seed_bulk(fx, n):
    """Creates alice's mailbox "Bulk" with n unread messages: written as Maildir files
    (Dovecot's store, mail_location = maildir) into its new/, which Dovecot takes in on
    its next look, as it does mail delivered by another program. Much faster than n
    APPENDs or n doveadm runs."""
    fx.doveadm("mailbox", "create", "-u", ALICE, "Bulk")
    path = fx.doveadm("mailbox", "path", "-u", ALICE, "Bulk").strip()
    new = os.path.join(path, "new")
    os.makedirs(new, exist_ok=True)
    for i in range(n):
        message = (f"From: Sender {i} <s{i}@example.org>\r\n"
                   f"To: {ALICE}\r\n"
                   f"Subject: Bulk message {i}\r\n"
                   f"Message-ID: <bulk-{i}@example.org>\r\n"
                   f"Date: {email.utils.formatdate(1704067200 + 60 * i)}\r\n"
                   "\r\n"
                   f"Body of bulk message {i}.\r\n")
        tmp = os.path.join(path, "tmp", f"bulk-{i}")
        os.makedirs(os.path.dirname(tmp), exist_ok=True)
        with open(tmp, "w") as f:
            f.write(message)
        os.rename(tmp, os.path.join(new, f"1704067200.M{i}P1.letterbox-test"))


def count(fx, mailbox, query="all"):
    """How many messages of alice's mailbox match a doveadm search query."""
    out = fx.doveadm("search", "-u", ALICE, "mailbox", mailbox, *query.split())
    return len(out.splitlines())


def main():
    tap = lbgui.Tap()
    fx = home = backend = app = None
    try:
        fx = lbgui.Fixture()
        started = time.monotonic()
        seed_bulk(fx, N)
        tap.check(f"the server's Bulk holds {N} unread messages", count(fx, "Bulk", "unseen") == N,
                  f"{count(fx, 'Bulk', 'unseen')} unseen")
        tap.note(f"seeding {N} messages: {time.monotonic() - started:.1f} s")
        home = lbgui.Home()
        home.write_account("alice", fx, ALICE, display_name="Alice at Example")
        backend = lbgui.Backend(home)
        started = time.monotonic()
        backend.call("Sync", "[]", "{}", timeout=max(120, N // 50))
        tap.note(f"first sync: {time.monotonic() - started:.1f} s")
        app = lbgui.App(home, **({"LETTERBOX_LIST_PAGES": PAGES} if PAGES else {}))
        frame = app.frame

        bulk = wait_for(lambda: folder_row(frame, "Bulk"), 30, "the Bulk folder in the sidebar")
        tap.check("the Bulk folder counts every message unread", bulk.name == f"Bulk, {N} unread", bulk.name)
        lbgui.click(bulk)
        newest = wait_for(lambda: message_row(frame, f"Bulk message {N - 1}"), 30, "the newest message")
        lbgui.click(newest)
        lbgui.key("ctrl+a")
        time.sleep(0.05)  # the key events reach the window in order; no result is awaited here
        started = time.monotonic()
        lbgui.key("ctrl+i")
        # The store first (the sidebar's count goes), then the server.
        wait_for(lambda: folder_row(frame, "Bulk") and folder_row(frame, "Bulk").name == "Bulk",
                 max(30, N // 50), "the unread count to go")
        tap.note(f"marking {N} messages read, key to the store (the count gone): "
                 f"{time.monotonic() - started:.1f} s")
        if MARK_ONLY:
            tap.note(f"the server has {N - count(fx, 'Bulk', 'unseen')} \\Seen by then")
            return tap.finish()
        all_seen = wait_for(lambda: count(fx, "Bulk", "unseen") == 0, max(80, N // 50), "every message \\Seen on the server")
        took = time.monotonic() - started
        tap.check(f"Ctrl+A, Ctrl+I marks all {N} messages read on the server, not just the loaded ones",
                  all_seen and count(fx, "Bulk", "seen") == N)
        tap.note(f"marking {N} messages read, key to the last \\Seen on the server: {took:.1f} s")
        wait_for(lambda: folder_row(frame, "Bulk") and folder_row(frame, "Bulk").name == "Bulk", 30,
                 "the unread count to go")
        tap.check("the folder has no unread messages left", folder_row(frame, "Bulk").name == "Bulk")

        # Archive the whole folder, then Undo.
        archive_before = count(fx, "Archive")
        lbgui.click(message_row(frame, f"Bulk message {N - 1}"))
        lbgui.key("ctrl+a")
        time.sleep(0.05)
        started = time.monotonic()
        lbgui.key("a")
        # The toast comes when the store has every change (the server follows as the
        # backend replays its journal).
        toast = wait_for(lambda: find_showing(frame, named(f"{N} messages archived", pyatspi.ROLE_LABEL)), 80,
                         "the toast")
        tap.check("the toast counts every message archived", toast is not None)
        tap.note(f"archiving {N} messages, key to the toast: {time.monotonic() - started:.1f} s")
        empty = wait_for(lambda: find_showing(frame, named("This folder is empty", pyatspi.ROLE_LABEL)), 30,
                         "the folder to show empty")
        tap.check("the folder is empty in the app: every message left it, loaded or not", empty is not None)
        # Then on the server (the backend replays one move after another).
        try:
            archived = wait_for(lambda: count(fx, "Archive") == archive_before + N and count(fx, "Bulk") == 0,
                                120, "every message in Archive on the server")
        except TimeoutError:
            archived = False
        tap.check(f"A archives all {N} messages on the server", archived,
                  f"Bulk {count(fx, 'Bulk')}, Archive {count(fx, 'Archive')}")
        tap.note(f"archiving {N} messages, key to the server: {time.monotonic() - started:.1f} s")
        # The toast of a change this big keeps its Undo until dismissed.
        undo = wait_for(lambda: find_showing(frame, named("Undo", pyatspi.ROLE_LABEL)), 10, "the Undo button")
        started = time.monotonic()
        lbgui.click(undo)
        try:
            restored = wait_for(lambda: count(fx, "Bulk") == N and count(fx, "Archive") == archive_before,
                                120, "every message back in Bulk on the server")
        except TimeoutError:
            restored = False
        tap.check(f"Undo brings all {N} messages back to Bulk on the server, none lost", restored,
                  f"Bulk {count(fx, 'Bulk')}, Archive {count(fx, 'Archive')}")
        tap.note(f"undoing, click to the server: {time.monotonic() - started:.1f} s")
        row = wait_for(lambda: message_row(frame, f"Bulk message {N - 1}"), 30, "the rows to come back")
        tap.check("and the app lists them again", row is not None)

        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
    except Exception as e:
        lbgui.report_failure(tap, e, "triage-bulk")
    finally:
        lbgui.stop_all(app=app, backend=backend, fx=fx, home=home)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
