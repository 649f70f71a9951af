#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The "Review Certificate" fix in the status area, as a person uses it: an account whose
# IMAP server (the real Dovecot fixture) presents a certificate that is neither trusted
# nor pinned fails to sync; the window says so with a "Review Certificate" button, which
# opens the account's server settings in the assistant; going on shows the certificate
# page with the server's SHA-256 fingerprint; accepting it pins the certificate and the
# account syncs: its folders appear. Run through run-gui-test.sh (Xvfb + private bus).
import hashlib
import socket
import ssl
import sys

import pyatspi

import lbgui
from lbgui import find_showing, folder_row, wait_for

ALICE = "alice@example.test"


def server_fingerprint(fx):
    """SHA-256 of the certificate the IMAP server presents, as "AB:CD:…"."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((fx.host, fx.imaps_port), timeout=10) as sock:
        with context.wrap_socket(sock) as tls:
            digest = hashlib.sha256(tls.getpeercert(binary_form=True)).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def button(root, name):
    return find_showing(root, lambda a: a is not None and a.name == name
                        and a.getRole() == pyatspi.ROLE_PUSH_BUTTON)


def assistant(app):
    return next((w for w in lbgui.windows(app.atspi) if w.name == "Server Settings"), None)


def main():
    tap = lbgui.Tap()
    fx = home = backend = app = None
    try:
        fx = lbgui.Fixture()
        home = lbgui.Home()
        home.write_account("alice", fx, ALICE, display_name="Alice at Example", trust_ca=False)
        backend = lbgui.Backend(home)
        backend.sync()  # returns when the sync has ended, here in the certificate error
        app = lbgui.App(home)
        frame = app.frame

        review = wait_for(lambda: button(frame, "Review Certificate"), 30, "the Review Certificate button")
        problem = find_showing(frame, lambda a: a is not None and a.getRole() == pyatspi.ROLE_LABEL
                               and (a.name or "").startswith("Alice at Example:"))
        tap.check("the status area says what is wrong with the account and offers Review Certificate",
                  review is not None and problem is not None, problem.name if problem else "no label")
        tap.check("no folder of the account is shown yet", folder_row(frame, "Inbox", 1) is None)
        lbgui.do_action(review)
        window = wait_for(lambda: assistant(app), 30, "the assistant")
        tap.check("Review Certificate opens the account's server settings", window is not None)

        # The assistant signs in at once: the certificate page is the first one shown.
        expected = server_fingerprint(fx)

        def fingerprint_label():
            return find_showing(window, lambda a: a is not None and a.getRole() == pyatspi.ROLE_LABEL
                                and len((a.name or "").split(":")) == 32)

        shown = wait_for(fingerprint_label, 60, "the certificate page")
        tap.check("the certificate page shows the server's SHA-256 fingerprint",
                  shown is not None and shown.name == expected,
                  f"{shown.name if shown else None} != {expected}")
        lbgui.do_action(wait_for(lambda: button(window, "Accept Certificate"), 10, "Accept Certificate"))
        close = wait_for(lambda: button(window, "Close") or button(window, "Save"), 60, "the next step")
        if close.name == "Save":
            lbgui.do_action(close)
            close = wait_for(lambda: button(window, "Close"), 60, "the done page")
        lbgui.do_action(close)

        inbox = wait_for(lambda: folder_row(frame, "Inbox", 1), 90, "the account's folders")
        tap.check("after accepting the certificate the account syncs: its folders appear", inbox is not None)
        gone = wait_for(lambda: button(frame, "Review Certificate") is None, 30, "the problem to go")
        tap.check("and the status area no longer shows the problem", gone)

        code = app.quit()
        tap.check("the app quits cleanly", code == 0, f"exit {code}")
    except Exception as e:
        lbgui.report_failure(tap, e, "triage-cert")
    finally:
        lbgui.stop_all(app=app, backend=backend, fx=fx, home=home)
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
