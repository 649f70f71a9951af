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

/* `letterbox-ctl account …` has its own, also stated in its --help. */
enum
{
  LBCTL_ACCOUNT_EXIT_OK = 0,
  LBCTL_ACCOUNT_EXIT_INVALID = 1,     /* wrong usage, bad URL, invalid settings */
  LBCTL_ACCOUNT_EXIT_NOT_FOUND = 2,   /* no such account, or it already exists */
  LBCTL_ACCOUNT_EXIT_CONNECT = 4,     /* account test: a connection or login failed */
  LBCTL_ACCOUNT_EXIT_FAILED = 5,      /* a configuration file could not be read or written */
};

/* Global options, given before the command. */
extern gboolean lbctl_json;

int lbctl_status (int argc, char **argv);
int lbctl_account (int argc, char **argv);

G_END_DECLS
