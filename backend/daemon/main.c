/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd"

#include "config.h"

#include <glib-unix.h>
#include <glib/gi18n.h>
#include <locale.h>
#include <stdlib.h>

#include "lb-mime.h"
#include "lb-store-writer.h"
#include "lb-outbox.h"
#include "lbd-relay-secret.h"
#include "lbd-relay-server.h"
#include "lbd-scheduler.h"
#include "lbd-service.h"

#define LB_BACKEND_SETTINGS_SCHEMA "org.letterbox.Letterbox.Backend"

/*
 * letterbox-backend: the headless host of the engine. It owns org.letterbox.Backend on
 * the session bus (and with it the right to write the store) and exports
 * org.letterbox.Backend1. A second copy finds the name taken and exits politely;
 * SIGTERM or SIGINT releases the name, closes the store and exits cleanly.
 */

typedef struct
{
  GMainLoop *loop;
  LbdService *service;
  LbdScheduler *scheduler;
  LbOutbox *outbox;
  LbdRelayServer *relay;
  guint upload_id;
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
  if (!lbd_service_export (backend->service, connection, &error))
    {
      g_printerr (_("letterbox-backend: cannot export %s: %s\n"), LB_BACKEND_OBJECT_PATH,
                  error->message);
      backend->exit_status = EXIT_FAILURE;
      g_main_loop_quit (backend->loop);
    }
}

/* ---- The relay hands what it accepts to the outbox ---- */

static void
relay_submit_async (gpointer             sink_data,
                    const char          *envelope_from,
                    const char * const  *recipients,
                    GBytes              *message,
                    gboolean             authenticated_tcp,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  lb_outbox_submit_async (LB_OUTBOX (sink_data), envelope_from, recipients, message, NULL,
                          cancellable, callback, user_data);
}

/* Queued (and fsync'd) → the queue id for "250 … queued as"; otherwise an error the relay
 * turns into the SMTP reply: the message's or sender's fault is permanent, anything
 * else (the store, the disk) temporary, so the client keeps the message and retries. */
static char *
relay_submit_finish (gpointer       sink_data,
                     GAsyncResult  *result,
                     GError       **error)
{
  g_autoptr(GError) local_error = NULL;
  char *queue_id = lb_outbox_submit_finish (LB_OUTBOX (sink_data), result, &local_error);
  LbdRelaySinkError code = LBD_RELAY_SINK_ERROR_TEMPORARY;

  if (queue_id != NULL)
    return queue_id;
  if (g_error_matches (local_error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID))
    code = LBD_RELAY_SINK_ERROR_MESSAGE;
  else if (g_error_matches (local_error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT))
    code = LBD_RELAY_SINK_ERROR_SENDER;
  g_set_error_literal (error, LBD_RELAY_SINK_ERROR, code, local_error->message);
  return NULL;
}

static const LbdRelaySink relay_sink = {
  relay_submit_async,
  relay_submit_finish,
};

static void
secret_published_cb (GObject      *source,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!lbd_relay_secret_publish_finish (result, &error))
    g_message ("The relay password is not in the keyring (%s); scripts find it in %s",
               error->message, (const char *) user_data);
  g_free (user_data);
}

static void
start_relay (Backend *backend)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *secret_path = lbd_relay_secret_default_path ();
  g_autofree char *secret = NULL;
  gboolean created = FALSE;

  if (backend->relay == NULL)
    return;
  secret = lbd_relay_secret_load_or_create (secret_path, &created, &error);
  if (secret == NULL)
    {
      /* Without its password the TCP relay would be open to everyone here: Unix only. */
      g_warning ("No relay password (%s): the TCP relay stays off", error->message);
      g_object_set (backend->relay, "tcp-enabled", FALSE, NULL);
      g_clear_error (&error);
    }
  else
    {
      lbd_relay_server_set_secret (backend->relay, secret);
      lbd_relay_secret_publish_async (secret, NULL, secret_published_cb,
                                      g_steal_pointer (&secret_path));
    }
  if (!lbd_relay_server_start (backend->relay, &error))
    {
      g_warning ("The mail relay does not run: %s", error->message);
      g_clear_object (&backend->relay);
      lbd_service_set_relay (backend->service, NULL, 0);
      return;
    }
  lbd_service_set_relay (backend->service, lbd_relay_server_get_socket_path (backend->relay),
                         lbd_relay_server_get_tcp_port (backend->relay));
  g_message ("Relaying mail from %s and 127.0.0.1:%u",
             lbd_relay_server_get_socket_path (backend->relay),
             (guint) lbd_relay_server_get_tcp_port (backend->relay));
}

/* Sent copies wait in the journal for a sync to upload them: one soon after a burst of
 * sends (the scheduler folds requests made while a run is going into the next run). */
static gboolean
upload_sent_cb (gpointer user_data)
{
  Backend *backend = user_data;
  g_auto(GStrv) ids = lbd_scheduler_dup_account_ids (backend->scheduler);

  backend->upload_id = 0;
  for (guint i = 0; ids[i] != NULL; i++)
    lbd_scheduler_kick (backend->scheduler, ids[i]);
  return G_SOURCE_REMOVE;
}

static void
outbox_sent_cb (LbOutbox   *outbox,
                const char *queue_id,
                gpointer    user_data)
{
  Backend *backend = user_data;

  if (backend->upload_id == 0)
    backend->upload_id = g_timeout_add (1000, upload_sent_cb, backend);
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
  lbd_scheduler_start (backend->scheduler);
  g_signal_connect (backend->outbox, "sent", G_CALLBACK (outbox_sent_cb), backend);
  lb_outbox_start (backend->outbox);
  start_relay (backend);
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

/* The service's settings, or NULL when their schema is not installed (a build tree run
 * without GSETTINGS_SCHEMA_DIR): then the defaults and the command line apply. */
static GSettings *
backend_settings (void)
{
  GSettingsSchemaSource *source = g_settings_schema_source_get_default ();
  g_autoptr(GSettingsSchema) schema = NULL;

  if (source != NULL)
    schema = g_settings_schema_source_lookup (source, LB_BACKEND_SETTINGS_SCHEMA, TRUE);
  if (schema == NULL)
    {
      g_message ("The settings schema %s is not installed: using the defaults",
                 LB_BACKEND_SETTINGS_SCHEMA);
      return NULL;
    }
  return g_settings_new_full (schema, NULL, NULL);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GOptionContext) context = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(LbdScheduler) scheduler = NULL;
  g_autoptr(GSettings) settings = NULL;
  g_autofree char *data_dir = NULL;
  gboolean version = FALSE;
  int poll_seconds = 0;
  int retry_base_ms = 0;
  int relay_port = -1;
  g_autofree char *relay_socket = NULL;
  g_autoptr(LbOutbox) outbox = NULL;
  g_autoptr(LbdRelayServer) relay = NULL;
  guint64 relay_size = LBD_RELAY_DEFAULT_SIZE_LIMIT;
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

  store = lb_store_open (data_dir, &error);
  if (store == NULL)
    {
      g_printerr ("letterbox-backend: %s\n", error->message);
      return EXIT_FAILURE;
    }

  if (poll_seconds < 0 || retry_base_ms < 0)
    {
      g_printerr ("letterbox-backend: %s\n", _("--poll-interval and --retry-base cannot be "
                                                 "negative"));
      return EXIT_FAILURE;
    }

  lb_mime_init ();
  writer = lb_store_writer_new (data_dir, &error);
  if (writer == NULL)
    {
      g_printerr ("letterbox-backend: %s\n", error->message);
      return EXIT_FAILURE;
    }
  settings = backend_settings ();
  scheduler = lbd_scheduler_new (store, writer);
  if (poll_seconds == 0 && settings != NULL)
    poll_seconds = (int) g_settings_get_uint (settings, "poll-interval");
  if (poll_seconds > 0)
    lbd_scheduler_set_poll_interval (scheduler, poll_seconds);
  if (retry_base_ms > 0)
    lbd_scheduler_set_retry_base (scheduler, retry_base_ms);

  outbox = lb_outbox_new (store, writer, &error);
  if (outbox == NULL)
    {
      g_printerr ("letterbox-backend: %s\n", error->message);
      return EXIT_FAILURE;
    }

  /* LETTERBOX_RELAY_PORT as for the data and config directories: for tests, which must
   * not take the user's port (0 turns TCP off). */
  if (relay_port < 0 && g_getenv ("LETTERBOX_RELAY_PORT") != NULL)
    relay_port = (int) g_ascii_strtoll (g_getenv ("LETTERBOX_RELAY_PORT"), NULL, 10);
  if (relay_port < 0)
    relay_port = settings != NULL ? (int) g_settings_get_uint (settings, "relay-port") : 2525;
  if (relay_port > 65535)
    {
      g_printerr ("letterbox-backend: %s\n", _("--relay-port must be at most 65535"));
      return EXIT_FAILURE;
    }
  if (settings != NULL)
    relay_size = g_settings_get_uint (settings, "relay-max-size");
  relay = lbd_relay_server_new (&relay_sink, outbox);
  g_object_set (relay,
                "tcp-enabled", relay_port > 0,
                "tcp-port", (guint) relay_port,
                "size-limit", relay_size,
                NULL);
  if (relay_socket != NULL)
    g_object_set (relay, "socket-path", relay_socket, NULL);

  backend.loop = g_main_loop_new (NULL, FALSE);
  backend.scheduler = scheduler;
  backend.outbox = outbox;
  backend.relay = relay;
  backend.service = lbd_service_new (store, writer, scheduler);
  lbd_service_set_outbox (backend.service, outbox);
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
  lbd_service_unexport (backend.service);
  if (backend.relay != NULL)
    lbd_relay_server_stop (backend.relay);
  g_signal_handlers_disconnect_by_func (outbox, outbox_sent_cb, &backend);
  g_clear_handle_id (&backend.upload_id, g_source_remove);
  lb_outbox_stop (outbox);
  lbd_scheduler_stop (scheduler);
  lb_store_writer_close (writer);
  g_source_remove (sigterm_id);
  g_source_remove (sigint_id);
  g_clear_object (&backend.service);
  g_clear_pointer (&backend.loop, g_main_loop_unref);

  return backend.exit_status;
}
