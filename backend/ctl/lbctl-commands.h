/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Exit statuses shared by every command, stated in `letterbox-ctl --help`. */
enum
{
  LBCTL_EXIT_OK = 0,
  LBCTL_EXIT_FAILURE = 1,
  LBCTL_EXIT_USAGE = 2,
  LBCTL_EXIT_NOT_RUNNING = 3,
};

int lbctl_status (int argc, char **argv);

G_END_DECLS
