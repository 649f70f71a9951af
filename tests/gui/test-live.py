#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Live state, as a person sees it (DESIGN.md "Processes"), against the real Dovecot:
#   * new mail appears in the open folder without a click: doveadm saves into the INBOX
#     while the app runs, letterbox-backend hears it by IDLE, StoreChanged reaches the
#     window, and the row shows up (with the sidebar's unread count);
#   * a refused password shows the account's error with "Enter Password"; entering the
#     right one stores it in the keyring (gnome-keyring on the test bus) and syncs, and the
#     error goes away;
#   * with run-in-background = false the app itself owns org.letterbox.Backend (even though
#     the bus could activate letterbox-backend), syncs, and the same new-mail check passes
#     with no letterbox-backend process; on quit it gives the name back.
# Run through run-gui-test.sh (Xvfb + private bus + private XDG directories).
import os
import subprocess
import sys
import time

import gi

gi.require_version("Secret", "1")
from gi.repository import Secret  # noqa: E402

import lbgui  # noqa: E402
from lbgui import contains, find, named, showing, wait_for  # noqa: E402

import pyatspi  # noqa: E402

tap = lbgui.Tap()

SECRET_SCHEMA = Secret.Schema.new("org.letterbox.Account", Secret.SchemaFlags.NONE,
                                  {"account": Secret.SchemaAttributeType.STRING,
                                   "protocol": Secret.SchemaAttributeType.STRING})


def shown(acc):
    """acc when a person sees it (lbgui.showing), else None: for wait_for."""
    return acc if acc is not None and showing(acc) else None


def write_settings(**values):
    """The app's GSettings, through the keyfile backend (the test suite's default, memory,
    cannot be set from outside the process)."""
    d = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings")
    os.makedirs(d, exist_ok=True)
    lines = ["[org/letterbox/Letterbox]"]
    for k, v in values.items():
        k = k.replace("_", "-")
        lines.append(f"{k}={'true' if v is True else 'false' if v is False else repr(v)}")
    with open(os.path.join(d, "keyfile"), "w") as f:
        f.write("\n".join(lines) + "\n")


def read_settings():
    """The keys the app wrote to the keyfile backend, as GVariant text."""
    path = os.path.join(os.environ["XDG_CONFIG_HOME"], "glib-2.0", "settings", "keyfile")
    values = {}
    with open(path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                values[k] = v
    return values


def app_env():
    return {"GSETTINGS_BACKEND": "keyfile"}


def message(sender, to, subject, message_id):
    return (f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            "Date: Mon, 1 Jul 2024 12:00:00 +0000\r\nMIME-Version: 1.0\r\n"
            "Content-Type: text/plain; charset=utf-8\r\n\r\nJust arrived.\r\n")


def name_owner_pid(name):
    out = lbgui.gdbus_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                           "org.freedesktop.DBus.GetConnectionUnixProcessID", name)
    return int(out.strip("(),").split()[-1])


def session_bus_of(pid):
    """The session bus address in a process's environment, or None."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        for var in f.read().split(b"\0"):
            if var.startswith(b"DBUS_SESSION_BUS_ADDRESS="):
                return var.split(b"=", 1)[1].decode(errors="replace")
    return None


def backend_processes():
    """PIDs of running letterbox-backend processes (by their executable) on this test's
    session bus: other tests running at the same time start their own."""
    found = []
    target = os.path.realpath(lbgui.BACKEND_PATH)
    bus = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == target and session_bus_of(pid) == bus:
                    found.append(int(pid))
            except OSError:
                pass
    return found


def button_named(label):
    """A push button by its label (GTK 4.8 names a mnemonic button "_Label Label")."""
    return lambda a: (a is not None and a.getRole() == pyatspi.ROLE_PUSH_BUTTON
                      and (a.name == label or (a.name or "").endswith(" " + label)))


def open_all_inboxes(app):
    row = wait_for(lambda: find(app.frame, lbgui.starts_with("All Inboxes", pyatspi.ROLE_LIST_ITEM)),
                   10, "All Inboxes in the sidebar")
    lbgui.click(row)


def expect_new_mail(fx, app, user, subject, message_id, timeout=20):
    """Saves a message into user's INBOX on the server and waits until the app lists it."""
    start = time.monotonic()
    fx.save(user, "INBOX", message("Eve Example <eve@example.test>", user, subject, message_id))
    # Shown, not only in the tree: AT-SPI can report the new row a moment before it is
    # laid out on screen.
    row = wait_for(lambda: (lambda r: r if r is not None and showing(r) else None)(
        find(app.frame, contains(subject))), timeout, f"the row of “{subject}”")
    return row, time.monotonic() - start


def test_new_mail_from_backend(fx):
    """letterbox-backend writes; the window follows its StoreChanged."""
    home = lbgui.Home()
    backend = app = None
    try:
        home.write_account("alice", fx, "alice@example.test", display_name="Alice")
        backend = lbgui.Backend(home)
        backend.sync()
        write_settings(selected_folder="alice/INBOX", window_width=1000, window_height=600)
        app = lbgui.App(home, **app_env())
        size = lbgui.extents(app.frame)
        # Within the few pixels that the client-side frame adds or takes (the default is
        # 1100×720).
        tap.check("the window opens at the remembered size",
                  abs(size.width - 1000) <= 20 and abs(size.height - 600) <= 20,
                  f"{size.width}×{size.height}")
        first = wait_for(lambda: find(app.frame, contains("Quarterly budget review")), 30,
                         "alice's seeded mail")
        tap.check("the app shows the synced INBOX", showing(first))
        tap.check("the app does not own the backend's name while letterbox-backend runs",
                  name_owner_pid(lbgui.BACKEND_NAME) == backend.proc.pid)
        row, seconds = expect_new_mail(fx, app, "alice@example.test", "Fresh from the press",
                                       "<live-1@example.test>")
        tap.check("new mail appears in the list without a click", showing(row))
        tap.note(f"new mail on the server → row in the window: {seconds:.2f} s")
        inbox = wait_for(lambda: find(app.frame, lambda a: a is not None
                                      and (a.name or "").startswith("Inbox, 4 unread")), 10,
                         "the Inbox's count of 4 unread")
        tap.check("the sidebar's unread count follows", inbox is not None)
        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
        tap.check("letterbox-backend keeps running after the window closes",
                  backend.proc.poll() is None)
    finally:
        if app is not None:
            app.kill()
        if backend is not None:
            backend.stop()
        home.remove()


def start_keyring():
    """gnome-keyring's Secret Service on the test bus, with an unlocked login keyring."""
    proc = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock",
                             "--components=secrets"], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL)
    proc.stdin.write(b"test")
    proc.stdin.close()
    wait_for(lambda: lbgui.name_has_owner("org.freedesktop.secrets"), 20, "the keyring")
    return proc


def keyring_password(account, protocol):
    return Secret.password_lookup_sync(SECRET_SCHEMA, {"account": account, "protocol": protocol},
                                       None)


def test_wrong_password(fx):
    """A refused password: the error with its fix, the fix, and the error gone."""
    home = lbgui.Home()
    backend = app = None
    try:
        home.write_account("bob", fx, "bob@example.test", display_name="Bob")
        path = os.path.join(home.config_dir, "accounts", "bob.ini")
        with open(path) as f:
            text = f.read()
        with open(path, "w") as f:
            f.write("".join(line + "\n" for line in text.splitlines()
                            if not line.startswith("password-command=")))
        for protocol in ("imap", "smtp"):
            Secret.password_store_sync(SECRET_SCHEMA, {"account": "bob", "protocol": protocol},
                                       Secret.COLLECTION_DEFAULT, "bob", "not-the-password", None)
        fx.save("bob@example.test", "INBOX",
                message("Alice <alice@example.test>", "bob@example.test", "Waiting for Bob",
                        "<live-2@example.test>"))
        backend = lbgui.Backend(home)
        write_settings(selected_folder="bob/INBOX")
        app = lbgui.App(home, **app_env())
        # Shown, not only in the accessibility tree: the error slides in (a revealer), and
        # its line and button are there a moment before they are laid out.
        fix = wait_for(lambda: shown(find(app.frame, button_named("Enter Password"))),
                       30, "the account error's Enter Password button")
        try:
            problem = wait_for(lambda: shown(find(app.frame, lambda a: a is not None and
                                                  (a.name or "").startswith("Bob: "))),
                               30, "the account's error line")
        except TimeoutError:
            problem = None
        tap.check("a refused password shows the account's error", problem is not None,
                  problem.name if problem is not None else "no error line shown")
        tap.check("the error offers Enter Password", showing(fix))
        tap.check("no mail is listed yet", find(app.frame, contains("Waiting for Bob")) is None)

        lbgui.click(fix)
        password_field = lambda a: a is not None and a.name == "Password" and a.getRole() in (  # noqa: E731
            pyatspi.ROLE_TEXT, pyatspi.ROLE_ENTRY, pyatspi.ROLE_PASSWORD_TEXT)
        dialog = wait_for(lambda: next((w for w in lbgui.windows(app.atspi)
                                        if find(w, password_field) is not None), None),
                          10, "the password dialog")
        entry = find(dialog, password_field)
        # Synthesized keys did not reach the dialog here (no window manager gives it the
        # focus): set the text as a screen reader does, through the entry's EditableText.
        entry.queryEditableText().setTextContents(fx.password("bob@example.test"))
        save = wait_for(lambda: (lambda b: b if b is not None and
                                 b.getState().contains(pyatspi.STATE_SENSITIVE) else None)(
                                     find(dialog, button_named("Save"))),
                        10, "Save to become clickable")
        lbgui.do_action(save)

        wait_for(lambda: find(app.frame, button_named("Enter Password")) is None,
                 20, "the error to go away")
        tap.check("the error goes away",
                  find(app.frame, lambda a: a is not None and (a.name or "").startswith("Bob: ")) is None)
        # Bob's Inbox was not in the store when the window opened: All Inboxes has it.
        open_all_inboxes(app)
        row = wait_for(lambda: find(app.frame, contains("Waiting for Bob")), 10,
                       "bob's mail after the password was fixed")
        tap.check("with the right password the mail arrives", showing(row))
        tap.check("the keyring holds the new password",
                  keyring_password("bob", "imap") == fx.password("bob@example.test"))
        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
    finally:
        if app is not None:
            app.kill()
        if backend is not None:
            backend.stop()
        home.remove()


def make_backend_activatable():
    """A D-Bus service file for letterbox-backend in this session's XDG_DATA_HOME, so that
    only the setting keeps the app from activating it."""
    d = os.path.join(os.environ["XDG_DATA_HOME"], "dbus-1", "services")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "org.letterbox.Backend.service"), "w") as f:
        f.write(f"[D-BUS Service]\nName={lbgui.BACKEND_NAME}\nExec={lbgui.BACKEND_PATH}\n")
    lbgui.gdbus_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                     "org.freedesktop.DBus.ReloadConfig")
    wait_for(lambda: lbgui.BACKEND_NAME in lbgui.gdbus_call(
        "org.freedesktop.DBus", "/org/freedesktop/DBus",
        "org.freedesktop.DBus.ListActivatableNames"), 10, "the service file to be read")


def test_app_hosts_engine(fx):
    """run-in-background = false: the app is the writer while it runs."""
    home = lbgui.Home()
    app = None
    try:
        make_backend_activatable()
        home.write_account("carol", fx, "carol@example.test", display_name="Carol")
        fx.save("carol@example.test", "INBOX",
                message("Alice <alice@example.test>", "carol@example.test", "Hello Carol",
                        "<live-3@example.test>"))
        write_settings(selected_folder="carol/INBOX", run_in_background=False)
        app = lbgui.App(home, **app_env())
        wait_for(lambda: lbgui.name_has_owner(lbgui.BACKEND_NAME), 20, "someone to own the name")
        tap.check("the app owns org.letterbox.Backend",
                  name_owner_pid(lbgui.BACKEND_NAME) == app.proc.pid)
        # The app's own service answers Sync when carol's first sync is done; her Inbox was
        # not there when the window opened, so look at All Inboxes.
        lbgui.gdbus_call(lbgui.BACKEND_NAME, lbgui.BACKEND_PATH_OBJECT,
                         "org.letterbox.Backend1.Sync", "['carol']", "{}")
        open_all_inboxes(app)
        first = wait_for(lambda: find(app.frame, contains("Hello Carol")), 10,
                         "carol's mail, synced by the app")
        tap.check("the app syncs by itself", showing(first))
        status = lbgui.gdbus_call(lbgui.BACKEND_NAME, lbgui.BACKEND_PATH_OBJECT,
                                  "org.letterbox.Backend1.Status")
        tap.check("Status answers from the app's process", f"uint32 {app.proc.pid}" in status, status)
        row, seconds = expect_new_mail(fx, app, "carol@example.test", "Straight into the app",
                                       "<live-4@example.test>")
        tap.check("new mail appears with the engine in the app", showing(row))
        tap.note(f"new mail on the server → row in the window (app hosting): {seconds:.2f} s")
        tap.check("no letterbox-backend process ran", backend_processes() == [],
                  str(backend_processes()))
        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
        tap.check("the name is given back on quit", not lbgui.name_has_owner(lbgui.BACKEND_NAME))
        selected = read_settings().get("selected-folder")
        tap.check("the folder chosen last (All Inboxes) is remembered", selected == "'all-inboxes'",
                  str(selected))
        # Not in the keyfile before: written when the app quit.
        width = read_settings().get("window-width")
        tap.check("quitting keeps the window's size", width == "1100", str(width))
    finally:
        if app is not None:
            app.kill()
        home.remove()


def main():
    tests = [test_new_mail_from_backend, test_wrong_password, test_app_hosts_engine]
    only = sys.argv[1:]
    # First of all: otherwise the backend's relay password would have the bus activate a
    # keyring with no unlocked collection, and a prompt.
    keyring = start_keyring()
    with lbgui.Fixture() as fx:
        for test in tests:
            if only and test.__name__ not in only:
                continue
            try:
                test(fx)
            except Exception as e:  # a failed check with the reason; the next test still runs
                tap.check(f"{test.__name__} ran to the end", False, repr(e))
    keyring.terminate()
    keyring.wait()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
