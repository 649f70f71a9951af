#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Browsing and triage as a person does it, through the accessibility tree, against the
# real Dovecot fixture with letterbox-backend on the test's bus: the sidebar shows the
# account's folders (nested, with unread counts) and All Inboxes; the Inbox's messages
# appear; opening one shows its text and, after the mark-read delay, the server has it
# \Seen; M opens the folder picker and the message lands in the folder picked, on the
# server; Ctrl+F finds a word live and Escape goes back; Delete moves to the Trash and
# the toast's Undo brings the message back, on the server too. Screenshots of the main
# window and of an open message go to $LB_SCREENSHOT_DIR (docs/screenshots/ keeps copies).
# Run through run-gui-test.sh (Xvfb + private bus).
import os
import subprocess
import sys
import tempfile

import pyatspi

import lbgui
from lbgui import find, find_showing, folder_row, message_row, named, wait_for

ALICE = "alice@example.test"


def server_has(fx, message_id, mailbox):
    return mailbox in fx.mailboxes_of(ALICE, message_id)


def picker_filter_text(app):
    entry = find(app.atspi, lambda a: a is not None and a.name == "Find a folder"
                 and a.getRole() in (pyatspi.ROLE_ENTRY, pyatspi.ROLE_TEXT))
    text = entry.queryText()
    return text.getText(0, text.characterCount)


def store_inbox(home):
    """What letterbox-ctl says the store's Inbox holds (for failure details)."""
    out = subprocess.run([lbgui.CTL_PATH, "--data-dir", home.data_dir, "list", "alice/INBOX"],
                         capture_output=True, text=True, timeout=60)
    return " | ".join(line.strip() for line in out.stdout.splitlines())


def main():
    tap = lbgui.Tap()
    shots = os.environ.get("LB_SCREENSHOT_DIR") or tempfile.mkdtemp(prefix="letterbox-shots-")
    fx = home = backend = app = None
    try:
        fx = lbgui.Fixture()
        home = lbgui.Home()
        home.write_account("alice", fx, ALICE, display_name="Alice at Example")
        backend = lbgui.Backend(home)
        backend.sync()
        app = lbgui.App(home)
        frame = app.frame

        # The sidebar.
        wait_for(lambda: folder_row(frame, "All Inboxes"), 30, "All Inboxes in the sidebar")
        tap.check("All Inboxes is in the sidebar with an account configured",
                  folder_row(frame, "All Inboxes") is not None)
        heading = wait_for(lambda: find_showing(frame, named("Alice at Example", pyatspi.ROLE_LABEL)), 30,
                           "the account's heading")
        tap.check("the account has a heading in the sidebar", heading is not None)
        inbox = wait_for(lambda: folder_row(frame, "Inbox", 1), 30, "the account's Inbox")
        tap.check("the account's Inbox counts 3 unread", inbox.name == "Inbox, 3 unread", inbox.name)
        nested = folder_row(frame, "Letterbox")
        tap.check("a nested folder shows its last level only, with its count",
                  nested is not None and nested.name == "Letterbox, 1 unread",
                  nested.name if nested else "no row")
        tap.check("its parent folder is listed", folder_row(frame, "Projects") is not None)
        tap.check("the archive folder is listed", folder_row(frame, "Archive") is not None)

        # Messages of the Inbox.
        lbgui.click(inbox)
        row = wait_for(lambda: message_row(frame, "Quarterly budget review"), 30, "the Inbox's messages")
        tap.check("the Inbox's messages appear", row is not None)
        tap.check("all three are listed", all(message_row(frame, s) for s in
                                              ("Lunch on Thursday", "Photos from the trip")))
        lbgui.screenshot(os.path.join(shots, "main-window.png"), frame)

        # Open one: its text shows, and after the delay the server has it \Seen.
        tap.check("it is not \\Seen on the server yet",
                  "\\Seen" not in (fx.flags(ALICE, "INBOX", "<gui-1@example.test>") or []))
        lbgui.click(row)
        body = wait_for(lambda: "marmalade" in (lbgui.message_text(frame) or ""),
                        30, "the message's text in the reading pane")
        tap.check("opening the message shows its text", body is not None)
        seen = wait_for(lambda: "\\Seen" in (fx.flags(ALICE, "INBOX", "<gui-1@example.test>") or []), 30,
                        "\\Seen on the server")
        tap.check("after the mark-read delay the server has it \\Seen", seen)
        wait_for(lambda: folder_row(frame, "Inbox, 2 unread") or
                 (folder_row(frame, "Inbox", 1) and folder_row(frame, "Inbox", 1).name == "Inbox, 2 unread"),
                 30, "the unread count to drop")
        tap.check("the Inbox's unread count drops", True)
        lbgui.screenshot(os.path.join(shots, "message.png"), frame)

        # Move by action: M, pick the folder, and it is there on the server.
        lunch = message_row(frame, "Lunch on Thursday")
        lbgui.click(lunch)
        lbgui.key("m")
        picker = wait_for(lambda: find_showing(app.atspi, named("Find a folder")) or
                          find(app.atspi, named("Move to Folder", pyatspi.ROLE_LIST)), 30, "the folder picker")
        target = wait_for(lambda: find(app.atspi, lambda a: a is not None and a.getRole() == pyatspi.ROLE_LIST_ITEM
                                       and (a.name or "").endswith("Projects › Letterbox")), 30,
                          "the folder in the picker")
        tap.check("the picker lists folders by their path", target is not None)
        # The popover is a surface of its own, whose positions GTK 4.8 cannot give in
        # screen coordinates: pick with the keyboard, as the picker is made for.
        lbgui.type_text("letterbox")
        wait_for(lambda: picker_filter_text(app) == "letterbox", 30, "the typed filter")
        lbgui.key("Return")
        moved = wait_for(lambda: server_has(fx, "<gui-2@example.test>", "Projects/Letterbox"), 60,
                         "the message in Projects/Letterbox on the server")
        tap.check("M → folder moves the message on the server", moved)
        tap.check("it left the Inbox on the server",
                  not server_has(fx, "<gui-2@example.test>", "INBOX"))
        wait_for(lambda: message_row(frame, "Lunch on Thursday") is None, 30, "the row to go")
        tap.check("the moved message leaves the list", message_row(frame, "Lunch on Thursday") is None)

        # Search: live results, then Escape goes back to the folder.
        lbgui.key("ctrl+f")
        entry = wait_for(lambda: find_showing(frame, named("Search mail")) or find(frame, named("Search mail")),
                         30, "the search entry")
        lbgui.type_text("lighthouse")
        hit = wait_for(lambda: message_row(frame, "Photos from the trip") and
                       not message_row(frame, "Quarterly budget review"), 30, "the search results")
        tap.check("searching a word finds the one message with it", bool(hit))
        lbgui.key("Escape")
        back = wait_for(lambda: message_row(frame, "Quarterly budget review"), 30, "the folder again")
        tap.check("Escape goes back to the folder", back is not None)
        tap.check("the folder still lacks the message moved away", message_row(frame, "Lunch on Thursday") is None,
                  "the store's Inbox: " + store_inbox(home))
        del entry

        # Delete, then Undo in the toast.
        photos = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the message to delete")
        lbgui.click(photos)
        lbgui.key("Delete")
        trashed = wait_for(lambda: server_has(fx, "<gui-3@example.org>", "Trash"), 60, "the message in Trash")
        tap.check("Delete moves the message to the Trash on the server", trashed)
        # The toast slides in: wait until the window's hit test finds its button's label
        # where the label says it is (that is, a person can click it), then click.
        wait_for(lambda: find_showing(frame, named("1 message moved to Trash", pyatspi.ROLE_LABEL)), 30,
                 "the toast saying so")
        undo = wait_for(lambda: find_showing(frame, named("Undo", pyatspi.ROLE_LABEL)), 30,
                        "the toast's Undo button")
        lbgui.click(undo)
        restored = wait_for(lambda: server_has(fx, "<gui-3@example.org>", "INBOX") and
                            not server_has(fx, "<gui-3@example.org>", "Trash"), 60,
                            "the message back in the Inbox on the server")
        tap.check("Undo brings it back to the Inbox on the server", restored)
        wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the row to come back")
        tap.check("and to the list", message_row(frame, "Photos from the trip") is not None)
        tap.check("the message moved earlier stays out of the Inbox",
                  message_row(frame, "Lunch on Thursday") is None
                  and not server_has(fx, "<gui-2@example.test>", "INBOX"))

        # Drag a message onto a folder in the sidebar.
        photos = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the message to drag")
        lbgui.drag(photos, folder_row(frame, "Letterbox"))
        dropped = wait_for(lambda: server_has(fx, "<gui-3@example.org>", "Projects/Letterbox"), 60,
                           "the dragged message in Projects/Letterbox on the server")
        tap.check("dragging a message onto a folder moves it there on the server", dropped)

        # Star (S) and archive (A) the first message, which is read by now.
        budget = wait_for(lambda: message_row(frame, "Quarterly budget review"), 30, "the message to archive")
        lbgui.click(budget)
        lbgui.key("s")
        flagged = wait_for(lambda: "\\Flagged" in (fx.flags(ALICE, "INBOX", "<gui-1@example.test>") or []), 60,
                           "\\Flagged on the server")
        tap.check("S stars the message: \\Flagged on the server", flagged)
        lbgui.key("a")
        archived = wait_for(lambda: server_has(fx, "<gui-1@example.test>", "Archive"), 60,
                            "the message in Archive on the server")
        tap.check("A archives the message: it is in Archive on the server", archived)

        # Ctrl+? lists the shortcuts.
        lbgui.key("ctrl+question")
        shortcuts = wait_for(lambda: next((w for w in lbgui.windows(app.atspi) if w is not frame and
                                           find(w, named("Move to Folder", pyatspi.ROLE_LABEL))), None),
                             30, "the shortcuts window")
        tap.check("Ctrl+? opens the shortcuts window listing the triage keys",
                  all(find(shortcuts, named(t, pyatspi.ROLE_LABEL)) for t in
                      ("Archive", "Mark as Read", "Star or Unstar", "Search")))

        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
    except Exception as e:
        lbgui.report_failure(tap, e, "triage")
    finally:
        lbgui.stop_all(app=app, backend=backend, fx=fx, home=home)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
