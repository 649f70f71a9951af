#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Installs, from Debian 12's own archive, whatever Letterbox needs to build, run and test
# that is not already on the machine. Idempotent: when everything is present it asks dpkg,
# finds nothing missing, and returns in well under a second without touching the network.
#
#   build-aux/install-deps.sh          build + run dependencies
#   build-aux/install-deps.sh --test   also the test fixtures (Dovecot, Postfix, dnsmasq, Xvfb,
#                                      keyring)
#   build-aux/install-deps.sh --bench  also the peers the benchmarks run (mbsync, fetchmail…)
set -euo pipefail

build_pkgs=(
  meson ninja-build gcc pkg-config gettext itstool libxml2-utils
  libglib2.0-dev libglib2.0-dev-bin libglib2.0-bin
  libgtk-4-dev libadwaita-1-dev libwebkitgtk-6.0-dev
  libsecret-1-dev libgmime-3.0-dev libsqlite3-dev libgsasl-dev libsoup-3.0-dev
  desktop-file-utils appstream
  gnome-keyring dbus dbus-x11 at-spi2-core
  hicolor-icon-theme adwaita-icon-theme glib-networking ca-certificates
)
test_pkgs=(
  xvfb xauth
  dovecot-core dovecot-imapd dovecot-pop3d dovecot-lmtpd dovecot-submissiond
  postfix openssl
  python3-gi python3-pyatspi
  clang libclang-rt-14-dev
  iproute2 util-linux bsdutils
  # notmuch reads the Maildirs the store exports (test-store-import)
  notmuch
  # groff checks the letterbox-ctl manual page (check-manpage)
  groff-base
  # dnsmasq serves the SRV records of the autoconfig tests (no daemon is started)
  dnsmasq-base
  # real SMTP clients the relay tests drive (letterbox-backend's relay/)
  swaks msmtp bsd-mailx
  # test-message-view clicks a link in WebKit with a real X pointer event (XTest)
  libxtst6
)

# Peers the benchmarks compare against (bench/README.md).
bench_pkgs=(isync bc fetchmail notmuch hyperfine)

want=("${build_pkgs[@]}")
case "${1:-}" in
  --test) want+=("${test_pkgs[@]}") ;;
  --bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
  "") ;;
  *) echo "usage: install-deps.sh [--test|--bench]" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "letterbox: installing ${#missing[@]} missing package(s): ${missing[*]}" >&2

SUDO=
if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
fi

export DEBIAN_FRONTEND=noninteractive
# Postfix is only ever run by the tests as a private instance with its own config
# directory; the system copy must not start listening on port 25.
if printf '%s\n' "${missing[@]}" | grep -qx postfix; then
  echo "postfix postfix/main_mailer_type select No configuration" | $SUDO debconf-set-selections
fi

# Package lists may be absent on a fresh machine; refresh them once, then install.
if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
  $SUDO apt-get update
  $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi
