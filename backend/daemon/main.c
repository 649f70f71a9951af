/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdlib.h>

#include "lbd-host.h"

/*
 * letterbox-backend: the headless host of the engine. It owns org.letterbox.Backend on
 * the session bus (and with it the right to write the store) and exports
 * org.letterbox.Backend1. A second copy finds the name taken and exits politely;
 * SIGTERM or SIGINT releases the name, closes the store and exits cleanly. The service
 * itself is LbdHost (lbd-host.c), which the app runs too when the background service is
 * off.
 */

typedef struct
{
  GMainLoop *loop;
  LbdHost *host;
  guint owner_id;
  gboolean acquired;
  int exit_status;
} Backend;

static void
bus_acquired_cb (GDBusConnection *connection,
                 const char      *name,
                 gpointer         user_data)
{
  Backend *backend = user_data;
  g_autoptr(GError) error = NULL;

  /* Export before the name is ours, so no caller can see the name without the object. */
  if (!lbd_host_export (backend->host, connection, &error))
    {
      g_printerr (_("letterbox-backend: cannot export %s: %s\n"), LB_BACKEND_OBJECT_PATH,
                  error->message);
      backend->exit_status = EXIT_FAILURE;
      g_main_loop_quit (backend->loop);
    }
}

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  Backend *backend = user_data;

  backend->acquired = TRUE;
  g_message ("Serving %s as %s", LB_BACKEND_OBJECT_PATH, name);
  /* Sync ownership follows the name: only its owner syncs, sends and relays (DESIGN.md). */
  lbd_host_start (backend->host);
}

static guint32
name_owner_pid (GDBusConnection *connection,
                const char      *name)
{
  g_autoptr(GVariant) reply = NULL;
  guint32 pid = 0;

  if (connection == NULL)
    return 0;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "GetConnectionUnixProcessID", g_variant_new ("(s)", name),
                                       G_VARIANT_TYPE ("(u)"), G_DBUS_CALL_FLAGS_NONE, 1000,
                                       NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(u)", &pid);
  return pid;
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Backend *backend = user_data;

  if (connection == NULL)
    {
      g_printerr (_("letterbox-backend: cannot connect to the session bus\n"));
      backend->exit_status = EXIT_FAILURE;
    }
  else if (!backend->acquired)
    {
      guint32 pid = name_owner_pid (connection, name);

      /* Not an error: the service the user wanted is running. */
      if (pid != 0)
        g_printerr (_("letterbox-backend: already running (pid %u); exiting\n"), pid);
      else
        g_printerr (_("letterbox-backend: already running; exiting\n"));
      backend->exit_status = EXIT_SUCCESS;
    }
  else
    {
      g_printerr (_("letterbox-backend: lost the bus name %s; exiting\n"), name);
      backend->exit_status = EXIT_FAILURE;
    }

  g_main_loop_quit (backend->loop);
}

static gboolean
quit_on_signal_cb (gpointer user_data)
{
  Backend *backend = user_data;

  g_message ("Shutting down");
  g_main_loop_quit (backend->loop);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbdHost) host = NULL;
  g_autofree char *data_dir = NULL;
  gboolean version = FALSE;
  int poll_seconds = 0;
  int retry_base_ms = 0;
  int relay_port = -1;
  g_autofree char *relay_socket = NULL;
  LbdHostOptions options = LBD_HOST_OPTIONS_INIT;
  Backend backend = { 0 };
  guint sigterm_id, sigint_id;
  const GOptionEntry entries[] = {
    { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &data_dir,
      N_("The mail store to serve (default: $LETTERBOX_DATA_DIR or ~/.local/share/letterbox)"),
      N_("DIR") },
    { "poll-interval", 0, 0, G_OPTION_ARG_INT, &poll_seconds,
      N_("Seconds between polls of every account (default 300)"), N_("SECONDS") },
    { "retry-base", 0, 0, G_OPTION_ARG_INT, &retry_base_ms,
      N_("Milliseconds before the first retry of a failed sync; each failure in a row "
         "doubles it (default 30000)"), N_("MS") },
    { "relay-port", 0, 0, G_OPTION_ARG_INT, &relay_port,
      N_("The relay's TCP port on 127.0.0.1 (0: none; default: the relay-port setting)"),
      N_("PORT") },
    { "relay-socket", 0, 0, G_OPTION_ARG_FILENAME, &relay_socket,
      N_("The relay's Unix socket (default: $XDG_RUNTIME_DIR/letterbox/relay.sock)"),
      N_("PATH") },
    { "version", 0, 0, G_OPTION_ARG_NONE, &version, N_("Print the version and exit"), NULL },
    { NULL }
  };

  setlocale (LC_ALL, "");
  bindtextdomain (GETTEXT_PACKAGE, LOCALEDIR);
  bind_textdomain_codeset (GETTEXT_PACKAGE, "UTF-8");
  textdomain (GETTEXT_PACKAGE);

  context = g_option_context_new (NULL);
  g_option_context_set_summary (context,
                                _("The Letterbox background service: keeps mail in sync and "
                                  "serves the desktop over D-Bus."));
  g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, &argc, &argv, &error))
    {
      g_printerr ("letterbox-backend: %s\n", error->message);
      return EXIT_FAILURE;
    }

  if (version)
    {
      g_print ("letterbox-backend %s\n", PACKAGE_VERSION);
      return EXIT_SUCCESS;
    }

  if (data_dir == NULL)
    data_dir = lb_store_default_data_dir ();

  if (poll_seconds < 0 || retry_base_ms < 0)
    {
      g_printerr ("letterbox-backend: %s\n", _("--poll-interval and --retry-base cannot be "
                                                 "negative"));
      return EXIT_FAILURE;
    }

  options.poll_seconds = (guint) poll_seconds;
  options.retry_base_ms = (guint) retry_base_ms;
  options.relay_port = relay_port;
  options.relay_socket = relay_socket;
  host = lbd_host_new (data_dir, &options, &error);
  if (host == NULL)
    {
      g_printerr ("letterbox-backend: %s\n", error->message);
      return EXIT_FAILURE;
    }

  backend.loop = g_main_loop_new (NULL, FALSE);
  backend.host = host;
  backend.exit_status = EXIT_SUCCESS;

  sigterm_id = g_unix_signal_add (SIGTERM, quit_on_signal_cb, &backend);
  sigint_id = g_unix_signal_add (SIGINT, quit_on_signal_cb, &backend);

  backend.owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, LB_BACKEND_BUS_NAME,
                                     G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                     bus_acquired_cb, name_acquired_cb, name_lost_cb,
                                     &backend, NULL);

  g_main_loop_run (backend.loop);

  /* Give the name back first, so a new instance can start while this one closes; then
   * stop syncing and let the writer finish what is queued, so nothing written is lost. */
  g_bus_unown_name (backend.owner_id);
  lbd_host_stop (host);
  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  g_clear_pointer (&backend.loop, g_main_loop_unref);

  return backend.exit_status;
}
