/* SPDX-License-Identifier: GPL-3.0-or-later */
#pragma once

#include <gio/gio.h>

#include "lb-bus-backend1.h"
#include "lb-store.h"

G_BEGIN_DECLS

/* Exit statuses shared by every command, stated in `letterbox-ctl --help` and in
 * letterbox-ctl(1). Scripts rely on them: add new ones at the end, never renumber. */
enum
{
  LBCTL_EXIT_OK = 0,
  LBCTL_EXIT_FAILURE = 1,     /* anything not below */
  LBCTL_EXIT_USAGE = 2,       /* unknown command or option, wrong arguments, invalid input
                               * (a bad URL, a search to correct, an ambiguous folder) */
  LBCTL_EXIT_NOT_RUNNING = 3, /* status: the background service is not running */
  LBCTL_EXIT_SERVER = 4,      /* a server: connection, TLS or login failed */
  LBCTL_EXIT_IO = 5,          /* a local file or the store could not be read or written */
  LBCTL_EXIT_NOT_FOUND = 6,   /* no such account, folder or message, or it already exists */
};

/* Global options, given before the command (or anywhere among a command's options). */
extern gboolean lbctl_json;
extern gboolean lbctl_local;

/* Commands: each takes its own argv, argv[0] being the command's name, and returns an
 * exit status. Errors go to stderr as one line, "letterbox-ctl: <message>". */

/* lbctl-status.c */
int lbctl_status (int argc, char **argv);
/* lbctl-account.c */
int lbctl_account (int argc, char **argv);
/* lbctl-store.c: reading and changing the store */
int lbctl_folders (int argc, char **argv);
int lbctl_list (int argc, char **argv);
int lbctl_show (int argc, char **argv);
int lbctl_search (int argc, char **argv);
int lbctl_flag (int argc, char **argv);
int lbctl_move (int argc, char **argv);
int lbctl_delete (int argc, char **argv);
/* lbctl-sync.c: accounts synced in-process */
int lbctl_sync (int argc, char **argv);
/* lbctl-send.c: the outbox */
int lbctl_send (int argc, char **argv);
int lbctl_outbox (int argc, char **argv);
/* lbctl-import.c: mail in and out of the store */
int lbctl_import (int argc, char **argv);
int lbctl_export (int argc, char **argv);

/* ---- Shared by the commands (lbctl-common.c) ---- */

void     lbctl_error          (const char    *format,
                               ...) G_GNUC_PRINTF (1, 2);
int      lbctl_usage_error    (const char    *command,
                               const char    *format,
                               ...) G_GNUC_PRINTF (2, 3);
int      lbctl_exit_status    (const GError  *error);
int      lbctl_fail           (const GError  *error);

/* A command's --help: "Usage: letterbox-ctl [OPTIONS] <name> <synopsis>", then @help. */
typedef struct
{
  const char *name;
  const char *synopsis;  /* N_() */
  const char *help;      /* N_(), one option or argument a line */
} LbctlCommandHelp;

typedef enum
{
  LBCTL_OPTION_FLAG,     /* gboolean */
  LBCTL_OPTION_UINT,     /* guint */
  LBCTL_OPTION_STRING,   /* char *, freed by the caller */
} LbctlOptionKind;

typedef struct
{
  const char *name;      /* without the "--" */
  LbctlOptionKind kind;
  gpointer value;
} LbctlOption;

/* Parses a command's arguments: "--name", "--name VALUE" or "--name=VALUE" from
 * @options and the global options (--json, --local, --data-dir, --config-dir) anywhere,
 * "--" ends the options, "--help"/"-h" prints the help. With @dash_arguments, a word
 * starting with one "-" ("-seen", "-word") is an argument, not an option.
 * Returns: (transfer full): the arguments (without argv[0]), or NULL when the command
 *   should stop with *status (the help printed: 0; a usage error printed: 2) */
GPtrArray *lbctl_parse_args   (int                      argc,
                               char                   **argv,
                               const LbctlCommandHelp  *help,
                               const LbctlOption       *options,
                               gboolean                 dash_arguments,
                               int                     *status);
gboolean   lbctl_parse_id     (const char              *text,
                               gint64                  *id);

/* The running background service serving this store, or NULL: with --local, without a
 * session bus, when nobody owns its name (it is never started for this), or when it
 * serves another data directory. Commands that write the store go through it when it
 * runs, so that the store keeps a single writer. */
LbBusBackend1 *lbctl_backend     (void);
/* A D-Bus error from the service as an exit status (NotFound → 6, InvalidArgs → 2…),
 * with its message printed. */
int            lbctl_fail_remote (GError        *error);

LbStore       *lbctl_open_store  (GError        **error);
LbStoreWriter *lbctl_open_writer (LbStore        *store,
                                  GError        **error);

/* One async call at a time, waited for in a main loop. */
typedef struct
{
  GMainLoop *loop;
  GAsyncResult *result;
} LbctlWait;

void          lbctl_wait_init  (LbctlWait     *wait);
void          lbctl_wait_clear (LbctlWait     *wait);
void          lbctl_wait_cb    (GObject       *source,
                                GAsyncResult  *result,
                                gpointer       user_data);
GAsyncResult *lbctl_wait_run   (LbctlWait     *wait);

/* FOLDER arguments: an id, "ACCOUNT/NAME" (account id or display name) or a name that
 * only one account has. Errors: LB_STORE_ERROR_NOT_FOUND; G_OPTION_ERROR_BAD_VALUE when
 * several folders match (the message lists them). */
LbFolder  *lbctl_find_folder   (GPtrArray     *folders,
                                const char    *spec,
                                GError       **error);
LbFolder  *lbctl_folder_by_id  (GPtrArray     *folders,
                                gint64         id);
char      *lbctl_folder_path   (LbFolder      *folder);

G_END_DECLS
