#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-3.0-or-later
#
# The README's run command: installs what is missing, builds, and starts Letterbox from
# the build tree on its embedded default (Local Folders). Extra arguments go to the app.
set -euo pipefail
cd "$(dirname "$0")/.."

build-aux/install-deps.sh
if [ ! -f _build/build.ninja ]; then
  meson setup _build
fi
ninja -C _build

# Uninstalled: the app's settings schema is compiled into the build tree.
export GSETTINGS_SCHEMA_DIR="$PWD/_build/data${GSETTINGS_SCHEMA_DIR:+:$GSETTINGS_SCHEMA_DIR}"
exec _build/app/letterbox "$@"
