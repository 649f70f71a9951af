#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# Every file with a translatable string is in po/POTFILES.in, every file listed there
# exists, and xgettext extracts the catalogue from them (what the letterbox-pot target
# does, with the same flags as meson's glib preset), so no user-visible string is left out
# of translation or extracted wrongly.
set -euo pipefail
top=$1
cd "$top"

listed=$(grep -v '^#' po/POTFILES.in | sed '/^$/d' | sort)
status=0

for f in $listed; do
  if [ ! -f "$f" ]; then
    echo "po/POTFILES.in lists $f, which does not exist"
    status=1
  fi
done

marked=$( (grep -rlE '(^|[^A-Za-z0-9_])(N?C?_|g_dngettext) ?\(' --include='*.c' app backend || true
           grep -rl 'translatable="yes"' --include='*.ui' app || true
           ls data/*.desktop.in data/*.metainfo.xml.in data/*.gschema.xml) | sort -u)

for f in $marked; do
  if ! grep -qx "$f" <<<"$listed"; then
    echo "$f has translatable strings but is missing from po/POTFILES.in"
    status=1
  fi
done

pot=$(mktemp)
trap 'rm -f "$pot" "$pot.log"' EXIT
xgettext --from-code=UTF-8 --add-comments --package-name=letterbox \
  --keyword=_ --keyword=N_ --keyword=C_:1c,2 --keyword=NC_:1c,2 \
  --keyword=g_dngettext:2,3 --keyword=g_dpgettext2:2c,3 \
  --flag=N_:1:pass-c-format --flag=C_:2:pass-c-format --flag=NC_:2:pass-c-format \
  --flag=g_dngettext:2:pass-c-format --flag=g_strdup_printf:1:c-format \
  --flag=g_string_printf:2:c-format --flag=g_string_append_printf:2:c-format \
  --flag=g_error_new:3:c-format --flag=g_set_error:4:c-format --flag=g_print:1:c-format \
  --flag=g_printerr:1:c-format --flag=g_printf:1:c-format --flag=g_fprintf:2:c-format \
  --files-from=<(echo "$listed") --output="$pot" 2>"$pot.log"
if grep -q 'warning' "$pot.log"; then
  # A warning means a string was extracted wrongly (a macro inside a format, say).
  cat "$pot.log"
  status=1
fi
count=$(grep -c '^msgid "' "$pot" || true)
echo "# xgettext extracted $count messages from $(wc -w <<<"$listed") files"
for must in "Welcome to Letterbox" "Local Folders" "No Message Selected" "Mail Client"; do
  if ! grep -q "msgid \"$must\"" "$pot"; then
    echo "the catalogue lacks \"$must\""
    status=1
  fi
done
exit $status
