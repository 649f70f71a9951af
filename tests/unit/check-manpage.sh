#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# A manual page formats without a warning (groff's own checks, and man-db's when it is
# there), and documents every command, option and exit status that the program's --help
# prints, so the two cannot drift apart:
#   check-manpage.sh docs/letterbox-ctl.1 PATH/letterbox-ctl
#   check-manpage.sh docs/letterbox-sendmail.1 PATH/letterbox-sendmail
set -euo pipefail
page=$1
ctl=$2
prog=$(basename "$ctl")
status=0

if ! command -v groff >/dev/null; then
  echo "groff is not installed (Debian: groff-base)"
  exit 77
fi

warnings=$(groff -man -ww -z -rCHECKSTYLE=3 "$page" 2>&1 || true)
if [ -n "$warnings" ]; then
  echo "groff warns about $page:"
  echo "$warnings"
  status=1
fi
if command -v man >/dev/null; then
  warnings=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$page" 2>&1 >/dev/null || true)
  if [ -n "$warnings" ]; then
    echo "man warns about $page:"
    echo "$warnings"
    status=1
  fi
fi

help=$(LC_ALL=C.UTF-8 "$ctl" --help)

commands=
if [ "$prog" = letterbox-ctl ]; then
  # Commands: the lines of the Commands: block that start with two spaces and a name.
  commands=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | sed -n 's/^  \([a-z][a-z-]*\).*/\1/p')
  if [ -z "$commands" ]; then
    echo "letterbox-ctl --help lists no commands"
    status=1
  fi
  for c in $commands sync; do
    if ! grep -Eq "^\.(B|BI|BR) \"?$c( |\"|$)" "$page"; then
      echo "$page does not document the command $c"
      status=1
    fi
  done
  options=$(grep -o -- '--[a-z][a-z-]*' <<<"$(sed -n '/^Options:/,/^$/p' <<<"$help")")
  variables="LETTERBOX_DATA_DIR LETTERBOX_CONFIG_DIR"
else
  # sendmail-style options: those in the first column of the Options: block.
  options=$(sed -n '/^Options:/,/^$/p' <<<"$help" | sed -n 's/^  \(-[^ ]*\( -[^ ]*\)*\).*/\1/p' |
            grep -o -- '--*[A-Za-z][A-Za-z-]*')
  variables="XDG_RUNTIME_DIR DBUS_SESSION_BUS_ADDRESS"
fi
if [ -z "$options" ]; then
  echo "$prog --help lists no options"
  status=1
fi

for o in $options; do
  if ! grep -Fq -- "${o//-/\\-}" "$page"; then
    echo "$page does not document the option $o"
    status=1
  fi
done

codes=$(sed -n '/^Exit status:/,/^$/p' <<<"$help" | sed -n 's/^  \([0-9][0-9]*\)  *[^ ].*/\1/p')
page_codes=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$page" | sed -n 's/^\.B \([0-9][0-9]*\)$/\1/p')
if [ -z "$codes" ] || [ "$codes" != "$page_codes" ]; then
  echo "exit statuses differ: --help has" $codes "and $page has" $page_codes
  status=1
fi

for v in $variables; do
  if ! grep -q "^\.B $v" "$page"; then
    echo "$page does not document $v"
    status=1
  fi
done

[ $status -eq 0 ] && echo "$page: formats cleanly and documents $(wc -w <<<"$commands") commands," \
  "$(wc -w <<<"$options") options"
exit $status
