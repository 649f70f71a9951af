/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib-unix.h>
#include <gio/gio.h>

#include "lbd-relay-server.h"

/*
 * A stand-in for letterbox-backend that test-relay's D-Bus activation test starts
 * through a private bus: it opens the relay's Unix socket, then takes the backend's bus
 * name (so the socket exists by the time StartServiceByName returns), and writes each
 * accepted message to OUTDIR/N.eml with its envelope in OUTDIR/N.env. It exits when it
 * loses the name or the bus, or on SIGTERM.
 *
 *   relay-test-child OUTDIR
 */

typedef struct
{
  char *dir;
  guint count;
  GMainLoop *loop;
} Child;

static void
submit_async (gpointer             sink_data,
              const char          *from,
              const char * const  *recipients,
              GBytes              *message,
              gboolean             authenticated_tcp,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  Child *child = sink_data;
  g_autoptr(GTask) task = g_task_new (NULL, cancellable, callback, user_data);
  g_autoptr(GString) envelope = g_string_new (from);
  g_autoptr(GError) error = NULL;
  guint n = ++child->count;
  g_autofree char *eml = g_strdup_printf ("%s/%u.eml", child->dir, n);
  g_autofree char *env = g_strdup_printf ("%s/%u.env", child->dir, n);

  g_string_append_c (envelope, '\n');
  for (guint i = 0; recipients[i] != NULL; i++)
    g_string_append_printf (envelope, "%s\n", recipients[i]);
  /* The envelope last: the test waits for it. */
  if (!g_file_set_contents (eml, g_bytes_get_data (message, NULL), g_bytes_get_size (message),
                            &error) ||
      !g_file_set_contents (env, envelope->str, envelope->len, &error))
    g_task_return_error (task, g_steal_pointer (&error));
  else
    g_task_return_pointer (task, g_strdup_printf ("CHILD%u", n), g_free);
}

static char *
submit_finish (gpointer       sink_data,
               GAsyncResult  *result,
               GError       **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static const LbdRelaySink sink = { submit_async, submit_finish };

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  Child *child = user_data;

  g_main_loop_quit (child->loop);
}

static gboolean
quit_cb (gpointer user_data)
{
  Child *child = user_data;

  g_main_loop_quit (child->loop);
  return G_SOURCE_CONTINUE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(LbdRelayServer) server = NULL;
  g_autoptr(GError) error = NULL;
  Child child = { 0 };
  guint owner_id;

  if (argc != 2)
    {
      g_printerr ("usage: relay-test-child OUTDIR\n");
      return 2;
    }
  child.dir = argv[1];
  child.loop = g_main_loop_new (NULL, FALSE);

  server = lbd_relay_server_new (&sink, &child);
  g_object_set (server, "tcp-enabled", FALSE, NULL);
  if (!lbd_relay_server_start (server, &error))
    {
      g_printerr ("relay-test-child: %s\n", error->message);
      return 1;
    }
  owner_id = g_bus_own_name (G_BUS_TYPE_SESSION, LB_BACKEND_BUS_NAME,
                             G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE, NULL, NULL, name_lost_cb,
                             &child, NULL);
  g_unix_signal_add (SIGTERM, quit_cb, &child);
  g_main_loop_run (child.loop);

  g_bus_unown_name (owner_id);
  lbd_relay_server_stop (server);
  g_main_loop_unref (child.loop);
  return 0;
}
