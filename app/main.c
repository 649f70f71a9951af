/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <locale.h>

#include "letterbox-application.h"
#include "letterbox-bench.h"

int
main (int   argc,
      char *argv[])
{
  g_autoptr(LetterboxApplication) app = NULL;

  letterbox_bench_mark ("main");
  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  app = letterbox_application_new ();
  return g_application_run (G_APPLICATION (app), argc, argv);
}
