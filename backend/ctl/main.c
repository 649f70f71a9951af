/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "lbctl-commands.h"

/* letterbox-ctl: the scriptable face of Letterbox. Each command is one function taking
 * its own argv (argv[0] is the command name); a new command is one line here, its
 * declaration in lbctl-commands.h and a section in docs/letterbox-ctl.1. */

static const struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *synopsis;
  const char *summary;
} commands[] = {
  { "status", lbctl_status, "", N_("Whether the background service runs; else the store") },
  { "account", lbctl_account, N_("add|list|show|remove|test …"),
    N_("Add, list, show, remove or test accounts") },
  { "folders", lbctl_folders, N_("[ACCOUNT]"), N_("List folders with their counts") },
  { "list", lbctl_list, N_("FOLDER [--limit N] [--offset N] [--thread]"),
    N_("List a folder's messages, newest first") },
  { "show", lbctl_show, N_("ID [--raw]"), N_("Show a message, or its exact bytes") },
  { "search", lbctl_search, N_("QUERY… [--limit N] [--offset N]"),
    N_("Search every folder (from:, is:unread, has:attachment…)") },
  { "flag", lbctl_flag, N_("ID +FLAG|-FLAG…"),
    N_("Set or clear seen, flagged, answered, draft") },
  { "move", lbctl_move, N_("ID FOLDER"), N_("Move a message to another folder") },
  { "delete", lbctl_delete, N_("ID"), N_("Move a message to the Trash, or delete it there") },
  { "sync", lbctl_sync, N_("[NAME…] [--headers-only] [--watch]"),
    N_("Download mail and changes, replay offline changes") },
  { "send", lbctl_send, N_("[--account NAME] [--from ADDRESS] [RECIPIENT…] < MESSAGE"),
    N_("Queue a message in the outbox and send it") },
  { "outbox", lbctl_outbox, N_("[list] | retry [ID] | cancel ID"),
    N_("What waits in the outbox; send it now, or cancel it") },
  { "import", lbctl_import, N_("PATH [--into FOLDER]"),
    N_("Import an mbox file, a Maildir or .eml files") },
  { "export", lbctl_export, N_("FOLDER FILE"),
    N_("Export a folder as an mbox file, or a Maildir if FILE is a directory or ends in /") },
};

gboolean lbctl_json = FALSE;
gboolean lbctl_local = FALSE;

static void
print_usage (FILE *out)
{
  fprintf (out, "%s\n\n", _("Usage: letterbox-ctl [OPTIONS] COMMAND [ARGUMENTS…]"));
  fprintf (out, "%s\n", _("Options:"));
  fprintf (out, "  %-18s %s\n", "--data-dir DIR",
           _("The mail store in DIR (same as LETTERBOX_DATA_DIR)"));
  fprintf (out, "  %-18s %s\n", "--config-dir DIR",
           _("Accounts live under DIR (same as LETTERBOX_CONFIG_DIR)"));
  fprintf (out, "  %-18s %s\n", "--json", _("Print listings as JSON, one document a line"));
  fprintf (out, "  %-18s %s\n", "--local",
           _("Run the engine in this process (for now the only mode)"));
  fprintf (out, "  %-18s %s\n\n", "--version", _("Print the version"));
  fprintf (out, "%s\n", _("Commands:"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    {
      g_autofree char *usage = g_strdup_printf ("%s %s", commands[i].name,
                                                commands[i].synopsis[0] != '\0'
                                                ? _(commands[i].synopsis) : "");

      fprintf (out, "  %s\n      %s\n", g_strchomp (usage), _(commands[i].summary));
    }
  fprintf (out, "\n%s\n", _("FOLDER: a folder id, ACCOUNT/NAME (local/Inbox, work/INBOX) or a "
                            "name only one account has. ID: a message id, as list, search and "
                            "show print it."));
  fprintf (out, "\n%s\n", _("Exit status:"));
  fprintf (out, "  0  %s\n", _("success"));
  fprintf (out, "  1  %s\n", _("failure (anything not below)"));
  fprintf (out, "  2  %s\n", _("wrong usage: unknown command or option, wrong arguments, "
                               "invalid input"));
  fprintf (out, "  3  %s\n", _("the background service is not running (status)"));
  fprintf (out, "  4  %s\n", _("a server: connection, TLS or login failed"));
  fprintf (out, "  5  %s\n", _("a local file or the store could not be read or written"));
  fprintf (out, "  6  %s\n", _("no such account, folder or message, or it already exists"));
  fprintf (out, "\n%s\n", _("Errors are one line on stderr: “letterbox-ctl: MESSAGE”. "
                            "COMMAND --help for a command's options; man letterbox-ctl for "
                            "everything."));
}

/* A global option before the command: how many arguments it took, 0 if @argv[0] is none,
 * -1 after a usage error. */
static int
parse_global_option (int    argc,
                     char **argv)
{
  static const struct
  {
    const char *name;
    const char *variable;
  } directories[] = {
    { "--data-dir", "LETTERBOX_DATA_DIR" },
    { "--config-dir", "LETTERBOX_CONFIG_DIR" },
  };

  if (strcmp (argv[0], "--json") == 0)
    {
      lbctl_json = TRUE;
      return 1;
    }
  if (strcmp (argv[0], "--local") == 0)
    {
      lbctl_local = TRUE;
      return 1;
    }
  for (guint i = 0; i < G_N_ELEMENTS (directories); i++)
    {
      gsize len = strlen (directories[i].name);
      const char *value = NULL;
      int used = 0;

      if (strncmp (argv[0], directories[i].name, len) != 0)
        continue;
      if (argv[0][len] == '=')
        {
          value = argv[0] + len + 1;
          used = 1;
        }
      else if (argv[0][len] == '\0' && argc > 1)
        {
          value = argv[1];
          used = 2;
        }
      else if (argv[0][len] != '\0')
        continue;
      if (value == NULL || value[0] == '\0')
        {
          lbctl_usage_error (NULL, _("%s needs a directory"), directories[i].name);
          return -1;
        }
      g_setenv (directories[i].variable, value, TRUE);
      return used;
    }
  return 0;
}

int
main (int   argc,
      char *argv[])
{
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  /* Global options before the command. */
  while (argc > 1 && argv[1][0] == '-' && strcmp (argv[1], "-h") != 0 &&
         strcmp (argv[1], "--help") != 0 && strcmp (argv[1], "--version") != 0)
    {
      int used = parse_global_option (argc - 1, argv + 1);

      if (used < 0)
        return LBCTL_EXIT_USAGE;
      if (used == 0)
        {
          lbctl_error (_("unknown option “%s” (try letterbox-ctl --help)"), argv[1]);
          return LBCTL_EXIT_USAGE;
        }
      argc -= used;
      argv += used;
    }

  if (argc < 2)
    {
      print_usage (stderr);
      return LBCTL_EXIT_USAGE;
    }

  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0)
    {
      print_usage (stdout);
      return LBCTL_EXIT_OK;
    }

  if (strcmp (argv[1], "--version") == 0)
    {
      g_print ("letterbox-ctl %s\n", PACKAGE_VERSION);
      return LBCTL_EXIT_OK;
    }

  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    if (strcmp (argv[1], commands[i].name) == 0)
      return commands[i].run (argc - 1, argv + 1);

  lbctl_error (_("unknown command “%s” (try letterbox-ctl --help)"), argv[1]);
  return LBCTL_EXIT_USAGE;
}
