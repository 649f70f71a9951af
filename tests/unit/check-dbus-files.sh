#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The D-Bus service file, the systemd user unit and the code agree on the bus name, so
# that activation through either path starts the backend that claims the name.
set -euo pipefail
src=$1
build=$2
status=0

service=$build/data/org.letterbox.Backend.service
unit=$build/data/letterbox-backend.service
name=$(sed -n 's/^Name=//p' "$service")
exec_path=$(sed -n 's/^Exec=//p' "$service")
systemd_service=$(sed -n 's/^SystemdService=//p' "$service")

check() {
  if [ "$1" != "$2" ]; then
    echo "$3: expected '$2', found '$1'"
    status=1
  fi
}

check "$(head -n 1 "$service")" "[D-BUS Service]" "service file header"
check "$name" "org.letterbox.Backend" "service file Name"
check "$systemd_service" "$(basename "$unit")" "service file SystemdService"
check "$(sed -n 's/^Type=//p' "$unit")" "dbus" "unit Type"
check "$(sed -n 's/^BusName=//p' "$unit")" "$name" "unit BusName"
check "$(sed -n 's/^ExecStart=//p' "$unit")" "$exec_path" "unit ExecStart"
case $exec_path in
  /*/letterbox-backend) ;;
  *) echo "service file Exec is not an absolute path to letterbox-backend: $exec_path"; status=1 ;;
esac
grep -q "\"$name\"" "$build/config.h" || { echo "config.h does not name $name"; status=1; }
grep -q "<interface name=\"org.letterbox.Backend1\">" "$src/data/dbus/org.letterbox.Backend1.xml" ||
  { echo "the interface XML lacks org.letterbox.Backend1"; status=1; }

if command -v systemd-analyze >/dev/null 2>&1; then
  # Reports unknown keys and malformed lines; a missing binary is expected uninstalled.
  out=$(systemd-analyze verify --man=no "$unit" 2>&1 || true)
  if grep -qiE 'unknown (key|section)|failed to parse|invalid' <<<"$out"; then
    echo "systemd-analyze: $out"
    status=1
  fi
fi
[ $status -eq 0 ] && echo "# service file and unit agree on $name"
exit $status
