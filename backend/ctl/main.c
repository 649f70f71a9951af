/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "lbctl-commands.h"

/* letterbox-ctl: the scriptable face of Letterbox. Each command is one function taking
 * its own argv (argv[0] is the command name). */

static const struct
{
  const char *name;
  int (*run) (int argc, char **argv);
  const char *summary;
} commands[] = {
  { "status", lbctl_status, N_("Show what the background service is doing") },
  { "account", lbctl_account, N_("Add, list, show, remove or test accounts") },
};

gboolean lbctl_json = FALSE;

static void
print_usage (FILE *out)
{
  fprintf (out, "%s\n\n", _("Usage: letterbox-ctl [--config-dir DIR] [--json] COMMAND "
                            "[ARGUMENTS…]"));
  fprintf (out, "%s\n", _("Options:"));
  fprintf (out, "  %-18s %s\n", "--config-dir DIR",
           _("Accounts live under DIR (same as LETTERBOX_CONFIG_DIR)"));
  fprintf (out, "  %-18s %s\n\n", "--json", _("Print listings as JSON"));
  fprintf (out, "%s\n", _("Commands:"));
  for (guint i = 0; i < G_N_ELEMENTS (commands); i++)
    fprintf (out, "  %-10s %s\n", commands[i].name, _(commands[i].summary));
  fprintf (out, "\n%s\n", _("Exit status: 0 success, 1 failure, 2 wrong usage, "
                            "3 the background service is not running."));
  fprintf (out, "%s\n", _("account: 0 success, 1 wrong usage or invalid input, 2 no such "
                          "account or it already exists, 4 connection or login failed, "
                          "5 a file could not be read or written "
                          "(letterbox-ctl account --help)."));
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
      if (strcmp (argv[1], "--json") == 0)
        {
          lbctl_json = TRUE;
          argc--, argv++;
        }
      else if (g_str_has_prefix (argv[1], "--config-dir="))
        {
          g_setenv ("LETTERBOX_CONFIG_DIR", argv[1] + strlen ("--config-dir="), TRUE);
          argc--, argv++;
        }
      else if (strcmp (argv[1], "--config-dir") == 0 && argc > 2)
        {
          g_setenv ("LETTERBOX_CONFIG_DIR", argv[2], TRUE);
          argc -= 2, argv += 2;
        }
      else if (strcmp (argv[1], "--config-dir") == 0)
        {
          g_printerr (_("letterbox-ctl: --config-dir needs a directory\n"));
          return LBCTL_EXIT_USAGE;
        }
      else
        {
          g_printerr (_("letterbox-ctl: unknown option “%s” (try letterbox-ctl --help)\n"),
                      argv[1]);
          return LBCTL_EXIT_USAGE;
        }
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

  g_printerr (_("letterbox-ctl: unknown command “%s” (try letterbox-ctl --help)\n"), argv[1]);
  return LBCTL_EXIT_USAGE;
}
