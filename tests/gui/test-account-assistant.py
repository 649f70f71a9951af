#!/usr/bin/python3
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Adding an account through the assistant, as a person would, against the real Dovecot
# and Postfix fixture (lb-gui-fixture): the settings come from an autoconfig file on a
# local HTTP server (LETTERBOX_AUTOCONFIG_URL), the page says where they were found; the
# fixture's certificate is not trusted, so the assistant shows it (its SHA-256 fingerprint
# must be the fixture certificate's); accepted, a wrong password is refused with the
# error shown and the password field marked; with the right one the account file is
# written (with the pinned fingerprint, without the password), the password is in the
# keyring (a real gnome-keyring on the test bus), and the backend syncs the account so
# its folders appear in the sidebar. Escape closes the assistant; Preferences lists the
# account. Screenshots of the assistant go to $LB_SCREENSHOT_DIR (default: the build
# directory's tests/screenshots). Run through run-gui-test.sh (Xvfb + private bus).
import glob
import hashlib
import http.server
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request

import pyatspi

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lbgui  # noqa: E402
from lbgui import find, find_all, named, contains, starts_with, showing, wait_for  # noqa: E402

ADDRESS = "alice@example.test"
SCREENSHOTS = os.environ.get("LB_SCREENSHOT_DIR",
                             os.path.join(os.environ.get("G_TEST_BUILDDIR", "."), "screenshots"))


def start_keyring():
    """A throwaway login keyring on the test's bus (TESTING.md)."""
    subprocess.run(["gnome-keyring-daemon", "--unlock", "--components=secrets"], input=b"test",
                   check=True, stdout=subprocess.DEVNULL, timeout=30)


def keyring_password(account_id, protocol):
    import gi
    gi.require_version("Secret", "1")
    from gi.repository import Secret
    schema = Secret.Schema.new("org.letterbox.Account", Secret.SchemaFlags.NONE,
                               {"account": Secret.SchemaAttributeType.STRING,
                                "protocol": Secret.SchemaAttributeType.STRING})
    return Secret.password_lookup_sync(schema, {"account": account_id, "protocol": protocol}, None)


class AutoconfigServer:
    """Serves one autoconfig document for every path, counting requests."""

    def __init__(self, document):
        outer = self
        self.paths = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.paths.append(self.path)
                body = document.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def autoconfig_document(fx):
    return f"""<?xml version="1.0"?>
<clientConfig version="1.1">
 <emailProvider id="example.test">
  <domain>example.test</domain>
  <displayName>Example Test Mail</displayName>
  <incomingServer type="imap"><hostname>{fx.host}</hostname><port>{fx.imaps_port}</port>
   <socketType>SSL</socketType><username>%EMAILADDRESS%</username>
   <authentication>password-cleartext</authentication></incomingServer>
  <outgoingServer type="smtp"><hostname>{fx.host}</hostname><port>{fx.submissions_port}</port>
   <socketType>SSL</socketType><username>%EMAILADDRESS%</username>
   <authentication>password-cleartext</authentication></outgoingServer>
 </emailProvider>
</clientConfig>
"""


def server_fingerprint(fx):
    """The SHA-256 fingerprint of the certificate the fixture's servers present, read
    from the servers themselves (and checked against the fixture's file when there)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection((fx.host, fx.imaps_port), timeout=10) as sock:
        with context.wrap_socket(sock) as tls:
            der = tls.getpeercert(binary_form=True)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def file_fingerprint(path):
    der = subprocess.run(["openssl", "x509", "-in", path, "-outform", "DER"], check=True,
                         capture_output=True, timeout=30).stdout
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def assistant_window(app):
    return next((w for w in lbgui.windows(app.atspi) if w.name in ("Add Account",)), None)


def text_field(root, name):
    """The editable text of the entry row titled name."""
    return find(root, lambda a: a is not None and a.name == name and a.getRole() in (
        pyatspi.ROLE_TEXT, pyatspi.ROLE_ENTRY, pyatspi.ROLE_PASSWORD_TEXT))


def set_text(acc, text):
    """Types into a field the way a person does: click it, then enter the text (set
    through AT-SPI's EditableText, which GTK 4.8 applies to the focused field)."""
    lbgui.click(acc)
    acc.queryEditableText().setTextContents(text)
    wait_for(lambda: acc.queryText().getText(0, acc.queryText().characterCount) == text
             or acc.getRole() == pyatspi.ROLE_PASSWORD_TEXT, 10, f"the text in {acc.name}")


def button(root, name):
    return find(root, lambda a: a is not None and a.name == name and a.getRole() == pyatspi.ROLE_PUSH_BUTTON)


def button_showing_label(root, text):
    """A button by the text on it (libadwaita's own buttons are named "_Remove Remove" by
    GTK 4.8)."""
    label = find(root, lambda a: a is not None and a.name == text and a.getRole() == pyatspi.ROLE_LABEL
                 and a.parent is not None and a.parent.getRole() == pyatspi.ROLE_PUSH_BUTTON)
    return label.parent if label is not None else None


def visible_label(root, predicate):
    return lbgui.find_showing(root, lambda a: predicate(a) and a.getRole() == pyatspi.ROLE_LABEL)


class _Area:
    """A rectangle that lbgui.screenshot() can crop to, like an accessible's extents."""

    def __init__(self, x, y, width, height):
        self.x, self.y, self.width, self.height = x, y, width, height

    def queryComponent(self):
        return self

    def getExtents(self, coords):
        return self


def shot(name, acc):
    """A screenshot of the window acc, with the pointer moved off the screen's used part
    first. GTK 4.8 reports a window's extents 10 pixels short of what it draws (its
    border), so the picture takes them in."""
    pyatspi.Registry.generateMouseEvent(1279, 799, "abs")
    time.sleep(0.3)  # one frame for the hover state to go, not a wait for a result
    area = None
    if acc is not None:
        ext = lbgui.extents(acc)
        area = _Area(ext.x, ext.y, ext.width + 10, ext.height + 10)
    lbgui.screenshot(os.path.join(SCREENSHOTS, name), area)


def main():
    tap = lbgui.Tap()
    web = None
    app = None
    backend = None
    home = None
    try:
        start_keyring()
        with lbgui.Fixture() as fx:
            web = AutoconfigServer(autoconfig_document(fx))
            home = lbgui.Home()
            backend = lbgui.Backend(home)
            # In the sanitizer build: full stacks for allocations, so that the leak
            # suppression for GLib's first quark block (tests/lsan.supp, _dl_init) can
            # see where it was made.
            asan = os.environ.get("ASAN_OPTIONS", "")
            app = lbgui.App(home, LETTERBOX_AUTOCONFIG_URL=web.base_url,
                            ASAN_OPTIONS=(asan + ":fast_unwind_on_malloc=0") if asan else "")
            expected_fingerprint = server_fingerprint(fx)
            cert_files = glob.glob(os.path.join(fx.dir, "tls", "server*.pem"))
            if cert_files:
                tap.check("the servers present the fixture's certificate",
                          file_fingerprint(cert_files[0]) == expected_fingerprint)

            # Escape closes the assistant.
            app.activate_action("add-account")
            window = wait_for(lambda: assistant_window(app), 30, "the assistant")
            name_field = wait_for(lambda: text_field(window, "Your Name"), 10, "the name field")
            lbgui.click(name_field)
            lbgui.key("Escape")
            wait_for(lambda: assistant_window(app) is None, 10, "the assistant to close on Escape")
            tap.check("Escape closes the assistant", True)

            app.activate_action("add-account")
            window = wait_for(lambda: assistant_window(app), 30, "the assistant")
            name_field = wait_for(lambda: text_field(window, "Your Name"), 10, "the name field")
            address_field = text_field(window, "E-mail Address")
            password_field = text_field(window, "Password")
            tap.check("the fields have accessible names",
                      None not in (name_field, address_field, password_field))
            set_text(name_field, "Alice Example")
            set_text(address_field, ADDRESS)
            set_text(password_field, "not-her-password")
            shot("assistant-account.png", window)
            # Enter in the password field goes on.
            lbgui.click(password_field)
            lbgui.key("Return")

            found = wait_for(lambda: visible_label(window, starts_with("Found settings for example.test")),
                             30, "the settings found")
            expected_url = f"{web.base_url}/mail/config-v1.1.xml?emailaddress=alice%40example.test"
            tap.check("the assistant says the settings came from the provider's configuration file",
                      f"in the provider’s configuration ({expected_url})" in found.name, found.name)
            tap.check("the autoconfig file was fetched from the local server",
                      any(p.startswith("/mail/config-v1.1.xml") for p in web.paths), str(web.paths))
            incoming = find_all(window, contains(f"{fx.host}:{fx.imaps_port}"))
            tap.check("the incoming server found is shown", any(showing(a) for a in incoming))
            shot("assistant-found.png", window)

            lbgui.click(wait_for(lambda: button(window, "Sign In"), 10, "Sign In"))
            shown = wait_for(lambda: visible_label(window, lambda a: ":" in (a.name or "") and
                                                   len((a.name or "").split(":")) == 32),
                             30, "the certificate page with a fingerprint")
            tap.check("the certificate page shows the server's SHA-256 fingerprint",
                      shown.name == expected_fingerprint, f"{shown.name} != {expected_fingerprint}")
            tap.check("the certificate page asks to accept it",
                      visible_label(window, named("Accept This Certificate?")) is not None)
            shot("assistant-certificate.png", window)

            lbgui.click(wait_for(lambda: button(window, "Accept Certificate"), 10, "Accept Certificate"))
            error = wait_for(lambda: visible_label(window, contains("refused the user name or password")),
                             30, "the wrong-password error")
            tap.check("a wrong password is reported naming the server",
                      f"{fx.host}:{fx.imaps_port}" in error.name, error.name)
            tap.check("the wrong password leads back to the password field",
                      showing(text_field(window, "Password")) or
                      visible_label(window, named("Your Mail Account")) is not None)
            accounts_dir = os.path.join(home.config_dir, "accounts")
            tap.check("nothing is saved after a wrong password",
                      not glob.glob(os.path.join(accounts_dir, "*.ini")))
            shot("assistant-wrong-password.png", window)

            password_field = text_field(window, "Password")
            set_text(password_field, fx.password(ADDRESS))
            lbgui.click(password_field)
            lbgui.key("Return")
            wait_for(lambda: visible_label(window, named("Account Added")), 60, "the account to be added")
            tap.check("the right password adds the account", True)

            files = glob.glob(os.path.join(accounts_dir, "*.ini"))
            tap.check("one account file is written", len(files) == 1, str(files))
            text = open(files[0]).read() if files else ""
            account_id = os.path.basename(files[0])[:-4] if files else ""
            tap.check("the account file pins the accepted certificate",
                      expected_fingerprint in text, text)
            tap.check("the account file holds no password",
                      fx.password(ADDRESS) not in text and "not-her-password" not in text)
            tap.check("the account file has the servers found",
                      f"port={fx.imaps_port}" in text and f"port={fx.submissions_port}" in text, text)
            tap.check("the incoming password is in the keyring",
                      keyring_password(account_id, "imap") == fx.password(ADDRESS))
            tap.check("the outgoing password is in the keyring",
                      keyring_password(account_id, "smtp") == fx.password(ADDRESS))
            shot("assistant-done.png", window)

            # The backend noticed the file, synced with the keyring's password and the
            # pinned certificate: alice's own folders appear in the window's sidebar.
            folder = wait_for(lambda: find(app.frame, starts_with("Projects")), 60,
                              "alice's folders in the sidebar")
            tap.check("the new account's folders appear in the sidebar", folder is not None)

            # The keyboard closes it: the focus is on Close. (A mouse click that closes a
            # window trips GTK 4.8's AT-SPI bridge, see the report of the assistant.)
            lbgui.key("Return")
            wait_for(lambda: assistant_window(app) is None, 10, "the assistant to close")
            tap.check("the sidebar shows the new account's folders",
                      lbgui.find_showing(app.frame, starts_with("Projects")) is not None)
            status = backend.call("ListAccounts")
            entry = status.split(f"'{account_id}'", 1)[1] if f"'{account_id}'" in status else ""
            tap.check("the backend syncs the account without an error",
                      "'error-kind': <''>" in entry.split("})", 1)[0], status)

            # Preferences lists it.
            app.activate_action("preferences")
            prefs = wait_for(lambda: next((w for w in lbgui.windows(app.atspi) if w.name == "Preferences"), None),
                             30, "the preferences window")
            listed = wait_for(lambda: find(prefs, named(ADDRESS)), 30, "the account in Preferences")
            tap.check("Preferences lists the account", listed is not None)
            shot("preferences.png", prefs)

            # Rename the account there (Enter applies), then remove it.
            lbgui.click(listed)
            name_row = wait_for(lambda: lbgui.find_showing(prefs, lambda a: a.name == "Account Name" and a.getRole() == pyatspi.ROLE_TEXT)
                                or find(prefs, lambda a: a.name == "Account Name" and a.getRole() == pyatspi.ROLE_TEXT),
                                10, "the account name field")
            set_text(name_row, "Work Mail")
            lbgui.key("Return")
            account_file = os.path.join(accounts_dir, f"{account_id}.ini")
            wait_for(lambda: "display-name=Work Mail" in open(account_file).read(), 30,
                     "the new name in the account file")
            tap.check("Preferences renames the account in its file", True)

            remove = wait_for(lambda: button(prefs, "Remove…"), 10, "Remove…")
            lbgui.click(remove)
            dialog = wait_for(lambda: next((w for w in lbgui.windows(app.atspi)
                                            if (w.name or "").startswith("Remove ")), None)
                              or find(app.atspi, starts_with(f"Remove {ADDRESS}?")), 10,
                              "the confirmation")
            said = find(app.atspi, contains("The mail on the server is not touched"))
            tap.check("removing asks first and says what happens to the mail", said is not None)
            tap.check("the account file is still there while the question is open",
                      os.path.exists(account_file))
            lbgui.click(wait_for(lambda: button_showing_label(app.atspi, "Remove"), 10,
                                 "the Remove response"))
            wait_for(lambda: not os.path.exists(account_file), 30, "the account file to go")
            tap.check("Remove deletes the account file", True)
            wait_for(lambda: keyring_password(account_id, "imap") is None, 30,
                     "the password to leave the keyring")
            tap.check("Remove clears the password from the keyring",
                      keyring_password(account_id, "smtp") is None)
            lbgui.key("Escape")

            code = app.quit()
            tap.check("the app quits cleanly", code == 0, f"exit {code}")
            code = backend.stop()
            tap.check("the backend stops cleanly", code == 0, f"exit {code}")
    except Exception as e:
        import traceback
        traceback.print_exc()
        try:
            shot("failure.png", None)
        except Exception:
            pass
        tap.check("the GUI test ran to the end", False, str(e).replace("\n", " "))
    finally:
        if app is not None:
            app.kill()
        if backend is not None:
            backend.stop()
        if web is not None:
            web.stop()
        if home is not None:
            home.remove()
    return tap.finish()


if __name__ == "__main__":
    sys.exit(main())
