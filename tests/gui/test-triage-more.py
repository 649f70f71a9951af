#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The triage paths test-triage.py leaves out, as a person uses them, against the real
# Dovecot fixture with letterbox-backend on the test's bus: J and K (and Ctrl+Page
# Down/Up) select and open the next and previous message; Ctrl+U takes \Seen away on the
# server, and the open message is not marked read again; on an account without an
# \Archive mailbox, A says so in a toast and the message stays, and once the server has an
# "All Mail" (\All) mailbox, A archives there; a click on a row's star flags that message
# (and a second takes the flag away) without opening it; Delete in the Trash asks first: Cancel
# keeps the message, Delete expunges it on the server.
# Run through run-gui-test.sh (Xvfb + private bus).
import imaplib
import ssl
import sys
import time

import pyatspi

import lbgui
from lbgui import find, find_showing, folder_row, message_row, named, wait_for

ALICE = "alice@example.test"


def shows(frame, word):
    """Whether the reading pane shows a message with word in its text."""
    return word in (lbgui.message_text(frame) or "")


def stays(condition, seconds):
    """Whether condition holds all along for seconds (for what must not happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not condition():
            return False
        time.sleep(0.2)
    return True


def seen(fx, message_id):
    return "\\Seen" in (fx.flags(ALICE, "INBOX", message_id) or [])


def flagged(fx, message_id):
    return "\\Flagged" in (fx.flags(ALICE, "INBOX", message_id) or [])


def star_point(row):
    """Where a message row draws its star: a 34 px circle 6 px from the row's end, on its
    second line, which is the middle of the row (letterbox-message-row.c)."""
    ext = lbgui.extents(row)
    return ext.x + ext.width - 6 - 17, ext.y + ext.height // 2


def click_star(row):
    x, y = star_point(row)
    pyatspi.Registry.generateMouseEvent(x, y, "b1c")


def list_attributes(fx, pattern):
    """The server's LIST answer for pattern, as alice sees it over IMAP."""
    imap = imaplib.IMAP4_SSL(fx.host, fx.imaps_port, ssl_context=ssl.create_default_context(cafile=fx.ca_file))
    try:
        imap.login(ALICE, fx.password(ALICE))
        status, lines = imap.list('""', f'"{pattern}"')
        return " ".join(line.decode() for line in lines if line)
    finally:
        imap.logout()


def dialog_with(app, title):
    return next((w for w in lbgui.windows(app.atspi) if find(w, named(title, pyatspi.ROLE_LABEL))), None)


def button(root, name):
    """The push button showing name (the dialog's response buttons are named by their
    label, which is a child of theirs)."""
    found = find(root, lambda a: a is not None and a.name in (name, "_" + name)
                 and a.getRole() in (pyatspi.ROLE_PUSH_BUTTON, pyatspi.ROLE_LABEL))
    while found is not None and found.getRole() != pyatspi.ROLE_PUSH_BUTTON:
        found = found.parent
    return found


def main():
    tap = lbgui.Tap()
    fx = home = backend = app = None
    try:
        fx = lbgui.Fixture(archive_all_mail=True)
        home = lbgui.Home()
        home.write_account("alice", fx, ALICE, display_name="Alice at Example")
        backend = lbgui.Backend(home)
        backend.sync()
        app = lbgui.App(home)
        frame = app.frame

        inbox = wait_for(lambda: folder_row(frame, "Inbox", 1), 30, "the account's Inbox")
        lbgui.click(inbox)
        photos = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the Inbox's messages")

        # J/K, Ctrl+Page Down/Up: newest first, Photos (3 Jan), Lunch (2 Jan), Budget (1 Jan).
        lbgui.click(photos)
        wait_for(lambda: shows(frame, "lighthouse"), 30, "the first message open")
        steps = (("j", "noodle", "J opens the next message"),
                 ("j", "marmalade", "J again opens the one after"),
                 ("j", "marmalade", "J on the last message stays there"),
                 ("k", "noodle", "K opens the previous message"),
                 ("ctrl+Page_Up", "lighthouse", "Ctrl+Page Up opens the previous message"),
                 ("ctrl+Page_Down", "noodle", "Ctrl+Page Down opens the next message"))
        for combo, word, name in steps:
            lbgui.key(combo)
            try:
                ok = wait_for(lambda: shows(frame, word), 15, name)
            except TimeoutError:
                ok = False
            tap.check(name, ok, repr((lbgui.message_text(frame) or "")[:60]))

        # Ctrl+U on the open message, once it is read.
        read = wait_for(lambda: seen(fx, "<gui-2@example.test>"), 30, "\\Seen on the server after the delay")
        tap.check("the open message is \\Seen on the server after the mark-read delay", read)
        # As a person would, wait to see it read in the list (the store's change reaches the
        # list and the server in either order); then Ctrl+U must be on for it.
        wait_for(lambda: (lambda r: r is not None and not (r.name or "").startswith("Unread"))(
                     message_row(frame, "Lunch on Thursday")), 30, "the list to show the message read")
        lbgui.key("ctrl+u")
        try:
            unread = wait_for(lambda: not seen(fx, "<gui-2@example.test>"), 30, "\\Seen gone on the server")
        except TimeoutError:
            unread = False
        tap.check("Ctrl+U takes \\Seen away on the server", unread)
        # The store has it unread too (its row says so), and the message still open is not
        # marked read again: it stays unread for longer than the mark-read delay (1 s).
        row = wait_for(lambda: message_row(frame, "Lunch on Thursday")
                       if (message_row(frame, "Lunch on Thursday").name or "").startswith("Unread") else None,
                       30, "the row to say unread")
        tap.check("the list shows it unread", row is not None)
        tap.check("the message stays unread while open",
                  stays(lambda: not seen(fx, "<gui-2@example.test>"), 3))

        # The star drawn at the end of a row's second line is a button for the mouse: it
        # stars that message (not the open one) without selecting or opening it, and a
        # second click takes the star away.
        for click_no, want, name in ((1, True, "clicking a row's star flags that message on the server"),
                                     (2, False, "clicking the star again takes \\Flagged away")):
            photos = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the row to star")
            click_star(photos)
            try:
                ok = wait_for(lambda: flagged(fx, "<gui-3@example.org>") == want, 30, name)
            except TimeoutError:
                ok = False
            tap.check(name, ok)
            if click_no == 1:
                tap.check("the row says it is starred",
                          wait_for(lambda: ", starred" in (message_row(frame, "Photos from the trip").name or ""),
                                   30, "the row's name to say starred") is not None)
        tap.check("clicking the star neither opens nor selects that message",
                  shows(frame, "noodle") and stays(lambda: shows(frame, "noodle"), 2))
        # Pressed on the star, then dragged off it and released: no click, as with a
        # button, and no drag of the message either.
        photos = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the row")
        x, y = star_point(photos)
        pyatspi.Registry.generateMouseEvent(x, y, "abs")
        pyatspi.Registry.generateMouseEvent(x, y, "b1p")
        for step in range(1, 9):
            pyatspi.Registry.generateMouseEvent(x - step * 15, y, "abs")
            time.sleep(0.03)
        pyatspi.Registry.generateMouseEvent(x - 120, y, "b1r")
        tap.check("a press on the star released off it changes nothing",
                  stays(lambda: not flagged(fx, "<gui-3@example.org>")
                        and "Photos from the trip" in (message_row(frame, "Photos from the trip").name or ""), 3)
                  and shows(frame, "noodle"))

        # Archive without an \Archive mailbox.
        tap.check("the account has no archive folder in the sidebar",
                  folder_row(frame, "Archive") is None and folder_row(frame, "All Mail") is None)
        budget = message_row(frame, "Quarterly budget review")
        lbgui.click(budget)
        lbgui.key("a")
        toast = wait_for(lambda: find_showing(frame, named("Not archived: the account has no archive folder",
                                                           pyatspi.ROLE_LABEL)), 30, "the toast")
        tap.check("A says in a toast that there is no archive folder", toast is not None)
        tap.check("and the message stays in the Inbox, on the server and in the list",
                  fx.mailboxes_of(ALICE, "<gui-1@example.test>") == ["INBOX"]
                  and message_row(frame, "Quarterly budget review") is not None)

        # With an "All Mail" (\All) mailbox, A archives there.
        fx.doveadm("mailbox", "create", "-s", "-u", ALICE, "All Mail")
        attributes = list_attributes(fx, "All Mail")
        tap.check("the server lists All Mail as \\All, and no \\Archive",
                  "\\All" in attributes and "\\Archive" not in list_attributes(fx, "*"), attributes)
        # With a message in it, as on a real server (a sync that adds only a folder sends
        # no StoreChanged today, so the sidebar would show it at the next change only).
        fx.save(ALICE, "All Mail", "From: Bob <bob@example.test>\r\nTo: Alice <alice@example.test>\r\n"
                "Subject: Kept forever\r\nMessage-ID: <all-1@example.test>\r\n"
                "Date: Sat, 2 Dec 2023 08:00:00 +0000\r\n\r\nEverything is here.\r\n")
        backend.sync()
        wait_for(lambda: folder_row(frame, "All Mail"), 30, "All Mail in the sidebar")
        lbgui.click(message_row(frame, "Quarterly budget review"))
        lbgui.key("a")
        try:
            archived = wait_for(lambda: fx.mailboxes_of(ALICE, "<gui-1@example.test>") == ["All Mail"], 60,
                                "the message in All Mail on the server")
        except TimeoutError:
            archived = False
        tap.check("A archives to All Mail when there is no \\Archive", archived,
                  repr(fx.mailboxes_of(ALICE, "<gui-1@example.test>")))

        # Delete for good, from the Trash: Cancel keeps, Delete expunges.
        lbgui.click(wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the message to delete"))
        lbgui.key("Delete")
        wait_for(lambda: fx.mailboxes_of(ALICE, "<gui-3@example.org>") == ["Trash"], 60, "the message in Trash")
        lbgui.click(folder_row(frame, "Trash", 1))
        in_trash = wait_for(lambda: message_row(frame, "Photos from the trip"), 30, "the Trash's message")
        lbgui.click(in_trash)
        lbgui.key("Delete")
        dialog = wait_for(lambda: dialog_with(app, "Delete for Good?"), 30, "the confirmation")
        tap.check("Delete in the Trash asks before deleting for good", dialog is not None)
        lbgui.do_action(button(dialog, "Cancel"))
        wait_for(lambda: dialog_with(app, "Delete for Good?") is None, 30, "the dialog to close")
        tap.check("Cancel keeps the message, on the server and in the list",
                  stays(lambda: fx.mailboxes_of(ALICE, "<gui-3@example.org>") == ["Trash"], 2)
                  and message_row(frame, "Photos from the trip") is not None)
        lbgui.click(message_row(frame, "Photos from the trip"))
        lbgui.key("Delete")
        dialog = wait_for(lambda: dialog_with(app, "Delete for Good?"), 30, "the confirmation again")
        lbgui.do_action(button(dialog, "Delete"))
        try:
            gone = wait_for(lambda: fx.mailboxes_of(ALICE, "<gui-3@example.org>") == [], 60,
                            "the message expunged on the server")
        except TimeoutError:
            gone = False
        tap.check("Delete in the confirmation expunges it on the server", gone)
        wait_for(lambda: message_row(frame, "Photos from the trip") is None, 30, "the row to go")
        tap.check("and it leaves the list", True)

        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
    except Exception as e:
        lbgui.report_failure(tap, e, "triage-more")
    finally:
        lbgui.stop_all(app=app, backend=backend, fx=fx, home=home)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
