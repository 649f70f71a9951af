# SPDX-License-Identifier: GPL-3.0-or-later
#
# Shared helpers for the GUI tests (run through run-gui-test.sh: Xvfb, a private session
# bus, private XDG directories). They drive the real app through the accessibility tree
# (AT-SPI) as a person would, against real servers:
#
#   import lbgui
#   tap = lbgui.Tap()
#   with lbgui.Fixture() as fx:                 # Dovecot + Postfix, seeded (lb-gui-fixture)
#       home = lbgui.Home()                     # config + data dirs for app and backend
#       home.write_account("alice", fx, "alice@example.test")
#       backend = lbgui.Backend(home)           # letterbox-backend on the test bus
#       backend.sync()
#       app = lbgui.App(home)                   # the app; app.frame is its window
#       row = lbgui.wait_for(lambda: lbgui.find(app.frame, lbgui.named("Inbox")), 30, "Inbox")
#       lbgui.click(row)
#       ...
#       app.quit(); backend.stop()
#   sys.exit(tap.finish())
#
# Every wait has a deadline (wait_for); nothing sleeps and hopes.
import atexit
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import zlib

import pyatspi

APP_PATH = os.environ.get("LB_APP_PATH")
BACKEND_PATH = os.environ.get("LB_BACKEND_PATH")
CTL_PATH = os.environ.get("LB_CTL_PATH")
FIXTURE_PATH = os.environ.get("LB_GUI_FIXTURE_PATH")
APP_ID = "org.letterbox.Letterbox"
BACKEND_NAME = "org.letterbox.Backend"
BACKEND_PATH_OBJECT = "/org/letterbox/Backend"


# --- TAP ------------------------------------------------------------------------------

class Tap:
    """TAP output on the descriptor run-gui-test.sh hands over (LB_TAP_FD)."""

    def __init__(self):
        self.out = os.fdopen(int(os.environ.get("LB_TAP_FD", "1")), "w", buffering=1)
        self.results = []
        print("TAP version 13", file=self.out)

    def check(self, name, ok, detail=""):
        ok = bool(ok)
        self.results.append(ok)
        print(("ok" if ok else "not ok") + f" {len(self.results)} {name}"
              + (f" # {detail}" if detail and not ok else ""), file=self.out)
        return ok

    def note(self, text):
        print(f"# {text}", file=self.out)

    def finish(self):
        print(f"1..{len(self.results)}", file=self.out)
        return 0 if self.results and all(self.results) else 1


# --- waiting and finding ----------------------------------------------------------------

def wait_for(condition, timeout, what):
    """Polls condition until it returns something true (and returns that), or raises
    TimeoutError after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = condition()
        except Exception as e:  # the tree changes under us
            value, last_error = None, e
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {what}"
                               + (f" (last error: {last_error!r})" if last_error else ""))
        time.sleep(0.05)


def find_app(name="letterbox"):
    desktop = pyatspi.Registry.getDesktop(0)
    for i in range(desktop.childCount):
        app = desktop.getChildAtIndex(i)
        if app is not None and app.name == name:
            return app
    return None


def find(root, predicate):
    return pyatspi.findDescendant(root, predicate, breadth_first=True)


def find_all(root, predicate):
    return pyatspi.findAllDescendants(root, predicate)


def named(name, role=None):
    return lambda a: a is not None and a.name == name and (role is None or a.getRole() == role)


def starts_with(prefix, role=None):
    return lambda a: (a is not None and (a.name or "").startswith(prefix)
                      and (role is None or a.getRole() == role))


def contains(text, role=None):
    return lambda a: (a is not None and text in (a.name or "")
                      and (role is None or a.getRole() == role))


def role(r):
    return lambda a: a is not None and a.getRole() == r


def extents(acc):
    # Screen coordinates: GTK 4.8 answers hit tests only in these (without a window
    # manager the window sits at (0, 0), so window-relative numbers are the screen's).
    return acc.queryComponent().getExtents(pyatspi.DESKTOP_COORDS)


def _frame_of(acc):
    window = acc
    while window is not None and window.getRole() not in (pyatspi.ROLE_FRAME, pyatspi.ROLE_DIALOG,
                                                          pyatspi.ROLE_WINDOW):
        window = window.parent
    return window


def showing(acc):
    """Whether a person sees acc. GTK 4.8 marks every widget, even one on a hidden stack
    page, as visible and none as showing, so ask the window what lies at the centre of a
    label (GTK answers hit tests for labels, not for rows or boxes): a label is showing
    when the hit is the label itself; anything else when one of its labels is."""
    if acc is None:
        return False
    try:
        if acc.getRole() != pyatspi.ROLE_LABEL:
            labels = pyatspi.findAllDescendants(acc, lambda a: a.getRole() == pyatspi.ROLE_LABEL)
            if labels:
                return any(showing(label) for label in labels)
            # A widget that draws its own text (a message row) answers hit tests itself.
        ext = extents(acc)
        if ext.width <= 0 or ext.height <= 0:
            return False
        window = _frame_of(acc)
        if window is None:
            return False
        hit = window.queryComponent().getAccessibleAtPoint(ext.x + ext.width // 2,
                                                           ext.y + ext.height // 2,
                                                           pyatspi.DESKTOP_COORDS)
        # A widget that draws its own text answers with itself (or, for its list item, with
        # the row inside it).
        while hit is not None:
            if hit == acc:
                return True
            if acc.getRole() == pyatspi.ROLE_LABEL:
                return False
            hit = hit.parent
        return False
    except Exception:
        return False


def find_showing(root, predicate):
    """The first descendant matching predicate that a person sees, or None."""
    for acc in find_all(root, predicate):
        if showing(acc):
            return acc
    return None

def message_row(frame, subject):
    """The message list's showing row for subject (its accessible name includes the
    subject; the row draws its text itself, so it is a panel with no labels inside)."""
    messages = find(frame, named("Messages"))
    return find_showing(messages or frame, lambda a: a is not None and subject in (a.name or "")
                        and a.getRole() in (pyatspi.ROLE_LIST_ITEM, pyatspi.ROLE_TABLE_ROW,
                                            pyatspi.ROLE_TABLE_CELL, pyatspi.ROLE_PANEL))


def folder_row(frame, prefix, nth=0):
    """The nth showing sidebar row whose name is prefix or starts with "prefix, "."""
    folders = find(frame, named("Folders", pyatspi.ROLE_LIST))
    rows = [r for r in find_all(folders, lambda a: a is not None and a.getRole() == pyatspi.ROLE_LIST_ITEM
                                and (a.name == prefix or (a.name or "").startswith(prefix + ", ")))
            if showing(r)]
    return rows[nth] if len(rows) > nth else None



def frames(app):
    return [app.getChildAtIndex(i) for i in range(app.childCount)
            if app.getChildAtIndex(i) is not None
            and app.getChildAtIndex(i).getRole() == pyatspi.ROLE_FRAME]


def windows(app):
    """Every toplevel of the app (frames, dialogs, popovers' windows)."""
    return [app.getChildAtIndex(i) for i in range(app.childCount) if app.getChildAtIndex(i) is not None]


def click(acc, button=1, double=False):
    ext = extents(acc)
    pyatspi.Registry.generateMouseEvent(ext.x + ext.width // 2, ext.y + ext.height // 2,
                                        f"b{button}{'d' if double else 'c'}")


def click_when_still(acc, timeout=10):
    """Clicks acc once it stops moving (a toast slides in, a popover grows)."""
    last = [None]

    def still():
        ext = extents(acc)
        now = (ext.x, ext.y, ext.width, ext.height)
        settled = now == last[0] and ext.width > 0
        last[0] = now
        return settled
    wait_for(still, timeout, f"{acc.name!r} to stop moving")
    click(acc)


def drag(source, target, steps=12):
    """Drags from the centre of source to the centre of target with the first button,
    moving in steps as a hand does (GTK starts a drag only after the pointer has moved)."""
    a, b = extents(source), extents(target)
    x0, y0 = a.x + a.width // 2, a.y + a.height // 2
    x1, y1 = b.x + b.width // 2, b.y + b.height // 2
    pyatspi.Registry.generateMouseEvent(x0, y0, "abs")
    pyatspi.Registry.generateMouseEvent(x0, y0, "b1p")
    for i in range(1, steps + 1):
        time.sleep(0.03)  # pacing the motion events, not waiting for a result
        pyatspi.Registry.generateMouseEvent(x0 + (x1 - x0) * i // steps, y0 + (y1 - y0) * i // steps, "abs")
    time.sleep(0.1)
    pyatspi.Registry.generateMouseEvent(x1, y1, "b1r")


def do_action(acc, name=None):
    """Runs one of acc's AT-SPI actions (the first, or the one called name)."""
    action = acc.queryAction()
    for i in range(action.nActions):
        if name is None or action.getName(i) == name:
            return action.doAction(i)
    raise LookupError(f"{acc.name!r} has no action {name!r}")


# --- keyboard ---------------------------------------------------------------------------

# Modifiers are pressed and released by keycode (KEY_PRESS and KEY_RELEASE take keycodes,
# only KEY_SYM takes a keysym): Xvfb's keymap has Control_L at 37, Shift_L at 50 and
# Alt_L at 64.
_MODIFIERS = {
    "ctrl": 37,
    "shift": 50,
    "alt": 64,
}

_KEYS = {
    "Escape": 0xff1b, "Return": 0xff0d, "Delete": 0xffff, "Tab": 0xff09, "BackSpace": 0xff08,
    "Up": 0xff52, "Down": 0xff54, "Left": 0xff51, "Right": 0xff53, "Home": 0xff50, "End": 0xff57,
    "space": 0x20, "period": 0x2e, "comma": 0x2c, "question": 0x3f,
    "F6": 0xffc3, "F10": 0xffc7, "Page_Up": 0xff55, "Page_Down": 0xff56,
}


def key(combo):
    """Presses a key combination such as "ctrl+f", "shift+ctrl+u", "Delete", "m"."""
    parts = combo.split("+")
    mods = [_MODIFIERS[p.lower()] for p in parts[:-1]]
    last = parts[-1]
    sym = _KEYS.get(last, ord(last) if len(last) == 1 else None)
    if sym is None:
        raise ValueError(f"unknown key {last!r}")
    for m in mods:
        pyatspi.Registry.generateKeyboardEvent(m, None, pyatspi.KEY_PRESS)
    pyatspi.Registry.generateKeyboardEvent(sym, None, pyatspi.KEY_SYM)
    for m in reversed(mods):
        pyatspi.Registry.generateKeyboardEvent(m, None, pyatspi.KEY_RELEASE)
    time.sleep(0.02)  # lets the X server deliver the events in order, not a wait for a result


def type_text(text):
    for ch in text:
        pyatspi.Registry.generateKeyboardEvent(ord(ch), None, pyatspi.KEY_SYM)
    time.sleep(0.02)


# --- servers, account, backend, app -----------------------------------------------------

class Fixture:
    """Dovecot and Postfix from lb-gui-fixture (see tests/gui/lb-gui-fixture.c): the
    attributes of its JSON (imap_port, ca_file, host, users, seeded…) are in self.info."""

    def __init__(self, seed=True, archive_all_mail=False):
        """archive_all_mail: no \\Archive mailbox; "All Mail" is \\All once created
        (see lb-gui-fixture --archive-all-mail)."""
        args = ([FIXTURE_PATH] + ([] if seed else ["--no-seed"])
                + (["--archive-all-mail"] if archive_all_mail else []))
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait(timeout=60)
            raise RuntimeError(f"lb-gui-fixture failed (exit {self.proc.returncode})")
        self.info = json.loads(line)

    def __getattr__(self, name):
        try:
            return self.__dict__["info"][name]
        except KeyError:
            raise AttributeError(name)

    def doveadm(self, *args, input=None):
        """Runs doveadm against the fixture's Dovecot; returns what it printed."""
        return subprocess.run(self.info["doveadm"] + list(args), input=input, text=True,
                              check=True, capture_output=True, timeout=60).stdout

    def password(self, address):
        return next(u["password"] for u in self.info["users"] if u["address"] == address)

    def save(self, user, mailbox, message):
        self.doveadm("save", "-u", user, "-m", mailbox, input=message)

    def flags(self, user, mailbox, message_id):
        """The IMAP flags of the message with that Message-ID, or None when it is not there."""
        out = self.doveadm("fetch", "-u", user, "flags", "mailbox", mailbox, "header",
                           "Message-ID", message_id)
        for line in out.splitlines():
            if line.startswith("flags:"):
                return line[len("flags:"):].split()
        return None

    def mailboxes_of(self, user, message_id):
        """The mailboxes holding the message with that Message-ID (not expunged)."""
        out = self.doveadm("fetch", "-u", user, "mailbox", "mailbox", "*", "header",
                           "Message-ID", message_id)
        return [line[len("mailbox:"):].strip() for line in out.splitlines()
                if line.startswith("mailbox:")]

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Home:
    """The config and data directories that the app and the backend share."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="letterbox-gui-")
        self.config_dir = os.path.join(self.root, "config")
        self.data_dir = os.path.join(self.root, "data")
        self.runtime_dir = os.path.join(self.root, "run")
        for d in (self.config_dir, self.data_dir, self.runtime_dir):
            os.makedirs(d, mode=0o700)

    def env(self, **extra):
        env = dict(os.environ, LETTERBOX_CONFIG_DIR=self.config_dir,
                   LETTERBOX_DATA_DIR=self.data_dir, LETTERBOX_RELAY_PORT="0")
        env.update(extra)
        return env

    def write_account(self, account_id, fixture, address, protocol="imap", display_name=None,
                      trust_ca=True):
        """An account file as letterbox-ctl writes it, the password given by a command
        (password-command, so that no keyring is needed). trust_ca=False leaves the
        fixture's CA out: its servers' certificate is then not trusted."""
        port = fixture.imaps_port if protocol == "imap" else fixture.pop3s_port
        user = address
        text = ("[account]\n"
                f"display-name={display_name or address}\n"
                + (f"ca-file={fixture.ca_file}\n" if trust_ca else "") +
                f"password-command=printf %s {fixture.password(address)}\n"
                "\n[identity]\n"
                f"address={address}\n"
                "\n[incoming]\n"
                f"protocol={protocol}\nsecurity=tls\nhost={fixture.host}\nport={port}\nuser={user}\n"
                "\n[outgoing]\n"
                f"security=tls\nhost={fixture.host}\nport={fixture.submissions_port}\nuser={user}\n")
        d = os.path.join(self.config_dir, "accounts")
        os.makedirs(d, mode=0o700, exist_ok=True)
        tmp = os.path.join(d, f".{account_id}.tmp")
        with open(tmp, "w") as f:
            f.write(text)
        os.rename(tmp, os.path.join(d, f"{account_id}.ini"))

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


def gdbus_call(dest, path, method, *args, timeout=60):
    out = subprocess.run(["gdbus", "call", "--session", "--dest", dest, "--object-path", path,
                          "--timeout", str(timeout), "--method", method] + list(args),
                         check=True, capture_output=True, text=True, timeout=timeout + 10)
    return out.stdout.strip()


def name_has_owner(name):
    out = gdbus_call("org.freedesktop.DBus", "/org/freedesktop/DBus",
                     "org.freedesktop.DBus.NameHasOwner", name)
    return out == "(true,)"


_keyring = None


def ensure_keyring():
    """gnome-keyring-daemon's Secret Service on the test bus with a login keyring unlocked
    by a throwaway password, like lb_test_bus_start_keyring(). Without it the first
    libsecret call activates a keyring that asks for a new password in a system prompt,
    which grabs the pointer and keyboard of the whole (virtual) screen."""
    global _keyring
    if _keyring is not None or name_has_owner("org.freedesktop.secrets"):
        return
    _keyring = subprocess.Popen(["gnome-keyring-daemon", "--foreground", "--unlock",
                                 "--components=secrets"], stdin=subprocess.PIPE,
                                stdout=subprocess.DEVNULL)
    _keyring.stdin.write(b"test")
    _keyring.stdin.close()
    wait_for(lambda: name_has_owner("org.freedesktop.secrets"), 20, "the keyring on the bus")
    atexit.register(_stop_keyring)


def _stop_keyring():
    if _keyring is not None and _keyring.poll() is None:
        _keyring.terminate()
        try:
            _keyring.wait(timeout=10)
        except subprocess.TimeoutExpired:
            _keyring.kill()
            _keyring.wait()


class Backend:
    """letterbox-backend on the test's session bus, serving home's store and accounts."""

    def __init__(self, home, poll_interval=600):
        ensure_keyring()
        self.proc = subprocess.Popen([BACKEND_PATH, "--data-dir", home.data_dir,
                                      "--poll-interval", str(poll_interval), "--retry-base", "100"],
                                     env=home.env(XDG_RUNTIME_DIR=home.runtime_dir))
        wait_for(lambda: self.proc.poll() is not None or name_has_owner(BACKEND_NAME), 30,
                 "letterbox-backend on the bus")
        if self.proc.poll() is not None:
            raise RuntimeError(f"letterbox-backend exited with {self.proc.returncode}")

    def call(self, method, *args, timeout=120):
        return gdbus_call(BACKEND_NAME, BACKEND_PATH_OBJECT, "org.letterbox.Backend1." + method,
                          *args, timeout=timeout)

    def sync(self, accounts=()):
        """Syncs and returns when done (the Sync call returns after the sync)."""
        return self.call("Sync", "[" + ", ".join(f"'{a}'" for a in accounts) + "]", "{}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


class App:
    """The app, with home's store and accounts; self.atspi is it on the accessibility bus,
    self.frame its main window."""

    def __init__(self, home, args=(), **env):
        ensure_keyring()
        self.proc = subprocess.Popen([APP_PATH] + list(args), env=home.env(**env))
        self.atspi = wait_for(find_app, 30, "the app on the accessibility bus")
        self.frame = wait_for(lambda: (frames(self.atspi) or [None])[0], 30, "the main window")

    def activate_action(self, name, parameter="[]"):
        """Runs an app. action over D-Bus (org.gtk.Actions), as the shell would."""
        gdbus_call(APP_ID, "/" + APP_ID.replace(".", "/"), "org.gtk.Actions.Activate",
                   name, parameter, "{}")

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.activate_action("quit")
                self.proc.wait(timeout=30)
            except Exception:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()



def report_failure(tap, error, name):
    """The test stopped early: says why, with a picture of the screen in
    LB_SCREENSHOT_DIR (or the temporary folder) as NAME-failure.png."""
    tap.check("the GUI test ran to the end", False, repr(error).replace("\n", " "))
    try:  # what the screen showed, for whoever reads the failure
        folder = os.environ.get("LB_SCREENSHOT_DIR") or tempfile.gettempdir()
        tap.note("screen at the failure: " + screenshot(os.path.join(folder, f"{name}-failure.png")))
    except Exception:
        pass


def stop_all(app=None, backend=None, fx=None, home=None):
    """Stops what a test started, each that is not None: the app, the backend, the
    servers, then the home directory goes."""
    if app is not None:
        app.kill()
    if backend is not None:
        backend.stop()
    if fx is not None:
        fx.stop()
    if home is not None:
        home.remove()

# --- screenshots ------------------------------------------------------------------------

def _png(width, height, rgb_rows):
    def chunk(kind, data):
        c = kind + data
        return struct.pack(">I", len(data)) + c + struct.pack(">I", zlib.crc32(c) & 0xffffffff)
    raw = b"".join(b"\0" + row for row in rgb_rows)
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def screenshot(path, acc=None):
    """Writes a PNG of the screen, or of the part that acc covers. Reads the frame buffer
    that run-gui-test.sh has Xvfb keep in a file (XWD format, -fbdir: LB_XVFB_FBDIR), so it
    needs no screenshot tool."""
    fb = os.path.join(os.environ["LB_XVFB_FBDIR"], "Xvfb_screen0")
    with open(fb, "rb") as f:
        data = f.read()
    (header_size, _version, _format, depth, width, height, _xoff, byte_order, _unit, _bit_order,
     _pad, bpp, bytes_per_line, _visual, red_mask, green_mask, blue_mask, _bits_per_rgb,
     ncolors, _entries, _ww, _wh, _wx, _wy, _border) = struct.unpack(">25I", data[:100])
    if bpp != 32:
        raise RuntimeError(f"unexpected frame buffer format: {bpp} bits per pixel")
    offset = header_size + ncolors * 12
    x0, y0, x1, y1 = 0, 0, width, height
    if acc is not None:
        ext = extents(acc)
        x0, y0 = max(0, ext.x), max(0, ext.y)
        x1, y1 = min(width, ext.x + ext.width), min(height, ext.y + ext.height)
    # Little-endian 32-bit pixels with red in 0xff0000: bytes B, G, R, X.
    little = byte_order == 0
    r_i, g_i, b_i = (2, 1, 0) if little == (red_mask == 0xff0000) else (1, 2, 3)
    rows = []
    for y in range(y0, y1):
        start = offset + y * bytes_per_line + x0 * 4
        line = data[start:start + (x1 - x0) * 4]
        out = bytearray((x1 - x0) * 3)
        out[0::3] = line[r_i::4]
        out[1::3] = line[g_i::4]
        out[2::3] = line[b_i::4]
        rows.append(bytes(out))
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(_png(x1 - x0, y1 - y0, rows))
    return path


# --- the reading pane -------------------------------------------------------------------

def message_text(root):
    """The text of the message shown, read from the reading pane's "Message text" view
    (a GtkTextView: its text is not its accessible name; GTK 4.8 answers getText only with
    an explicit end). Folded quotes are in it too. None when no plain-text body is there;
    an HTML body lives in WebKit, which AT-SPI cannot see (TESTING.md)."""
    view = find(root, lambda a: a is not None and a.name == "Message text"
                and a.getRole() == pyatspi.ROLE_TEXT)
    if view is None:
        return None
    text = view.queryText()
    return text.getText(0, text.characterCount)
