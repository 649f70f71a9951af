/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-outbox.h"
#include "lbd-host.h"
#include "lbd-relay-secret.h"
#include "lbd-relay-server.h"

#define LB_BACKEND_SETTINGS_SCHEMA "org.letterbox.Letterbox.Backend"

/*
 * The engine's service core, as whoever owns org.letterbox.Backend runs it (DESIGN.md:
 * sync ownership = bus-name ownership): the store and its one writer, the scheduler, the
 * outbox, the relay and the org.letterbox.Backend1 object. letterbox-backend hosts it, and
 * so does the app when the background service is off. The host does not own the name
 * itself: its caller exports it (before asking for the name, so nobody sees the name
 * without the object), starts it once the name is theirs, and stops it before or after
 * giving the name back.
 */
struct _LbdHost
{
  GObject parent_instance;

  LbStore *store;
  LbStoreWriter *writer;
  LbOutbox *outbox;
  LbdScheduler *scheduler;
  LbdRelayServer *relay;          /* NULL once it failed to start */
  LbdService *service;
  guint upload_id;
  guint publish_id;               /* the relay secret's copy into the keyring, pending */
  char *publish_secret;           /* what it copies; wiped once copied or dropped */
  gboolean started;
  gboolean stopped;
};

G_DEFINE_FINAL_TYPE (LbdHost, lbd_host, G_TYPE_OBJECT)

/* What the options, the environment and the settings make of the defaults. */
typedef struct
{
  guint poll_seconds;
  guint retry_base_ms;
  guint relay_port;
  guint64 relay_size;
  char *relay_socket;
  GNetworkMonitor *network_monitor;
} Resolved;

static void
resolved_free (Resolved *r)
{
  g_free (r->relay_socket);
  g_clear_object (&r->network_monitor);
  g_free (r);
}

/* The parts that touch the disk, opened in a worker thread by lbd_host_new_async(). */
typedef struct
{
  char *data_dir;
  Resolved *resolved;
  LbStore *store;
  LbStoreWriter *writer;
  LbOutbox *outbox;
} Parts;

static void
parts_free (Parts *parts)
{
  g_free (parts->data_dir);
  g_clear_pointer (&parts->resolved, resolved_free);
  g_clear_object (&parts->store);
  g_clear_object (&parts->writer);
  g_clear_object (&parts->outbox);
  g_free (parts);
}

/* The service's settings, or NULL when their schema is not installed (a build tree run
 * without GSETTINGS_SCHEMA_DIR): then the defaults and the options apply. */
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

static Resolved *
resolve_options (const LbdHostOptions  *options,
                 GError               **error)
{
  g_autoptr(GSettings) settings = backend_settings ();
  Resolved *r = g_new0 (Resolved, 1);
  int relay_port = options != NULL ? options->relay_port : -1;

  r->poll_seconds = options != NULL ? options->poll_seconds : 0;
  if (r->poll_seconds == 0 && settings != NULL)
    r->poll_seconds = g_settings_get_uint (settings, "poll-interval");
  r->retry_base_ms = options != NULL ? options->retry_base_ms : 0;

  /* LETTERBOX_RELAY_PORT as for the data and config directories: for tests, which must
   * not take the user's port (0 turns TCP off). */
  if (relay_port < 0 && g_getenv ("LETTERBOX_RELAY_PORT") != NULL)
    relay_port = (int) g_ascii_strtoll (g_getenv ("LETTERBOX_RELAY_PORT"), NULL, 10);
  if (relay_port < 0)
    relay_port = settings != NULL ? (int) g_settings_get_uint (settings, "relay-port") : 2525;
  if (relay_port > 65535)
    {
      g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                           _("--relay-port must be at most 65535"));
      resolved_free (r);
      return NULL;
    }
  r->relay_port = (guint) relay_port;
  r->relay_size = settings != NULL ? g_settings_get_uint (settings, "relay-max-size")
                                   : LBD_RELAY_DEFAULT_SIZE_LIMIT;
  if (options != NULL && options->relay_socket != NULL)
    r->relay_socket = g_strdup (options->relay_socket);
  if (options != NULL && options->network_monitor != NULL)
    r->network_monitor = g_object_ref (options->network_monitor);
  return r;
}

static gboolean
parts_open (Parts   *parts,
            GError **error)
{
  parts->store = lb_store_open (parts->data_dir, error);
  if (parts->store == NULL)
    return FALSE;
  parts->writer = lb_store_writer_new (parts->data_dir, error);
  if (parts->writer == NULL)
    return FALSE;
  parts->outbox = lb_outbox_new (parts->store, parts->writer, error);
  return parts->outbox != NULL;
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

/* How long after start the keyring's copy of an existing relay secret is refreshed:
 * opening a Secret Service session costs a key exchange (and may start the keyring), which
 * a launch of the app does not need to wait for. A new secret is copied at once. */
#define PUBLISH_DELAY_SECONDS 10

static void
drop_publish_secret (LbdHost *self)
{
  g_clear_handle_id (&self->publish_id, g_source_remove);
  if (self->publish_secret != NULL)
    {
      memset (self->publish_secret, 0, strlen (self->publish_secret));
      g_clear_pointer (&self->publish_secret, g_free);
    }
}

static gboolean
publish_secret_cb (gpointer user_data)
{
  LbdHost *self = user_data;

  self->publish_id = 0;
  lbd_relay_secret_publish_async (self->publish_secret, NULL, secret_published_cb,
                                  lbd_relay_secret_default_path ());
  drop_publish_secret (self);
  return G_SOURCE_REMOVE;
}

static void
start_relay (LbdHost *self)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *secret_path = lbd_relay_secret_default_path ();
  g_autofree char *secret = NULL;
  gboolean created = FALSE;

  if (self->relay == NULL)
    return;
  secret = lbd_relay_secret_load_or_create (secret_path, &created, &error);
  if (secret == NULL)
    {
      /* Without its password the TCP relay would be open to everyone here: Unix only. */
      g_warning ("No relay password (%s): the TCP relay stays off", error->message);
      g_object_set (self->relay, "tcp-enabled", FALSE, NULL);
      g_clear_error (&error);
    }
  else
    {
      lbd_relay_server_set_secret (self->relay, secret);
      if (created)
        lbd_relay_secret_publish_async (secret, NULL, secret_published_cb,
                                        g_steal_pointer (&secret_path));
      else
        {
          drop_publish_secret (self);
          self->publish_secret = g_strdup (secret);
          self->publish_id = g_timeout_add_seconds (PUBLISH_DELAY_SECONDS, publish_secret_cb,
                                                    self);
        }
      memset (secret, 0, strlen (secret));
    }
  if (!lbd_relay_server_start (self->relay, &error))
    {
      g_warning ("The mail relay does not run: %s", error->message);
      g_clear_object (&self->relay);
      lbd_service_set_relay (self->service, NULL, 0);
      return;
    }
  lbd_service_set_relay (self->service, lbd_relay_server_get_socket_path (self->relay),
                         lbd_relay_server_get_tcp_port (self->relay));
  g_message ("Relaying mail from %s and 127.0.0.1:%u",
             lbd_relay_server_get_socket_path (self->relay),
             (guint) lbd_relay_server_get_tcp_port (self->relay));
}

/* Sent copies wait in the journal for a sync to upload them: one soon after a burst of
 * sends (the scheduler folds requests made while a run is going into the next run). */
static gboolean
upload_sent_cb (gpointer user_data)
{
  LbdHost *self = user_data;
  g_auto(GStrv) ids = lbd_scheduler_dup_account_ids (self->scheduler);

  self->upload_id = 0;
  for (guint i = 0; ids[i] != NULL; i++)
    lbd_scheduler_kick (self->scheduler, ids[i]);
  return G_SOURCE_REMOVE;
}

static void
outbox_sent_cb (LbOutbox   *outbox,
                const char *queue_id,
                gpointer    user_data)
{
  LbdHost *self = user_data;

  if (self->upload_id == 0)
    self->upload_id = g_timeout_add (1000, upload_sent_cb, self);
}

/* The parts that live on the caller's main context, around the opened ones. */
static LbdHost *
assemble (Parts *parts)
{
  Resolved *r = parts->resolved;
  LbdHost *self = g_object_new (LBD_TYPE_HOST, NULL);

  lb_mime_init ();
  self->store = g_steal_pointer (&parts->store);
  self->writer = g_steal_pointer (&parts->writer);
  self->outbox = g_steal_pointer (&parts->outbox);

  self->scheduler = lbd_scheduler_new (self->store, self->writer);
  if (r->poll_seconds > 0)
    lbd_scheduler_set_poll_interval (self->scheduler, r->poll_seconds);
  if (r->retry_base_ms > 0)
    lbd_scheduler_set_retry_base (self->scheduler, r->retry_base_ms);
  if (r->network_monitor != NULL)
    lbd_scheduler_set_network_monitor (self->scheduler, r->network_monitor);

  self->relay = lbd_relay_server_new (&relay_sink, self->outbox);
  g_object_set (self->relay,
                "tcp-enabled", r->relay_port > 0,
                "tcp-port", r->relay_port,
                "size-limit", r->relay_size,
                NULL);
  if (r->relay_socket != NULL)
    g_object_set (self->relay, "socket-path", r->relay_socket, NULL);

  self->service = lbd_service_new (self->store, self->writer, self->scheduler);
  lbd_service_set_outbox (self->service, self->outbox);
  return self;
}

/**
 * lbd_host_new:
 * @data_dir: the mail store to serve
 * @options: (nullable): %NULL for the defaults
 *
 * Opens the store, its writer and the outbox, and makes (without starting them) the
 * scheduler, the relay and the service object. Blocks on the disk: a GUI uses
 * lbd_host_new_async().
 *
 * Returns: (transfer full) (nullable): the host, or %NULL with @error set
 */
LbdHost *
lbd_host_new (const char            *data_dir,
              const LbdHostOptions  *options,
              GError               **error)
{
  Parts *parts;
  LbdHost *self = NULL;

  g_return_val_if_fail (data_dir != NULL, NULL);

  parts = g_new0 (Parts, 1);
  parts->data_dir = g_strdup (data_dir);
  parts->resolved = resolve_options (options, error);
  if (parts->resolved != NULL && parts_open (parts, error))
    self = assemble (parts);
  parts_free (parts);
  return self;
}

static void
open_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;

  if (!parts_open (task_data, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

/**
 * lbd_host_new_async:
 *
 * lbd_host_new() with the disk work in a worker thread; the settings are read, and the
 * host is assembled, in the caller's thread-default main context, where @callback runs.
 */
void
lbd_host_new_async (const char            *data_dir,
                    const LbdHostOptions  *options,
                    GCancellable          *cancellable,
                    GAsyncReadyCallback    callback,
                    gpointer               user_data)
{
  g_autoptr(GTask) task = NULL;
  GError *error = NULL;
  Parts *parts;

  g_return_if_fail (data_dir != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lbd_host_new_async);
  parts = g_new0 (Parts, 1);
  parts->data_dir = g_strdup (data_dir);
  g_task_set_task_data (task, parts, (GDestroyNotify) parts_free);
  parts->resolved = resolve_options (options, &error);
  if (parts->resolved == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  g_task_run_in_thread (task, open_thread);
}

LbdHost *
lbd_host_new_finish (GAsyncResult  *result,
                     GError       **error)
{
  GTask *task = G_TASK (result);

  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (task) == lbd_host_new_async, NULL);

  if (!g_task_propagate_boolean (task, error))
    return NULL;
  return assemble (g_task_get_task_data (task));
}

/**
 * lbd_host_export:
 *
 * Exports org.letterbox.Backend1 at LB_BACKEND_OBJECT_PATH on @connection: before the
 * caller asks for the name, so that no client can see the name without the object.
 */
gboolean
lbd_host_export (LbdHost          *self,
                 GDBusConnection  *connection,
                 GError          **error)
{
  g_return_val_if_fail (LBD_IS_HOST (self), FALSE);
  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), FALSE);

  return lbd_service_export (self->service, connection, error);
}

/**
 * lbd_host_start:
 *
 * Starts syncing, sending and relaying. Call it once the bus name is the caller's own:
 * only the name's owner writes (DESIGN.md).
 */
void
lbd_host_start (LbdHost *self)
{
  g_return_if_fail (LBD_IS_HOST (self));
  g_return_if_fail (!self->started && !self->stopped);

  self->started = TRUE;
  lbd_scheduler_start (self->scheduler);
  g_signal_connect (self->outbox, "sent", G_CALLBACK (outbox_sent_cb), self);
  lb_outbox_start (self->outbox);
  start_relay (self);
}

/* Everything but closing the writer, in the main context. */
static gboolean
stop_services (LbdHost *self)
{
  if (self->stopped)
    return FALSE;
  self->stopped = TRUE;
  lbd_service_unexport (self->service);
  if (self->relay != NULL)
    lbd_relay_server_stop (self->relay);
  g_signal_handlers_disconnect_by_func (self->outbox, outbox_sent_cb, self);
  g_clear_handle_id (&self->upload_id, g_source_remove);
  drop_publish_secret (self);
  lb_outbox_stop (self->outbox);
  lbd_scheduler_stop (self->scheduler);
  return TRUE;
}

/**
 * lbd_host_stop:
 *
 * Unexports the object, stops the relay, the outbox and the scheduler (cancelling their
 * runs), and closes the writer, which first finishes every job queued — so nothing
 * written is lost. Blocks until the writer is done. Safe to call twice.
 */
void
lbd_host_stop (LbdHost *self)
{
  g_return_if_fail (LBD_IS_HOST (self));

  if (stop_services (self))
    lb_store_writer_close (self->writer);
}

static void
close_writer_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  lb_store_writer_close (task_data);
  g_task_return_boolean (task, TRUE);
}

/**
 * lbd_host_stop_async:
 *
 * lbd_host_stop() with the wait for the writer in a worker thread; @callback runs in the
 * caller's thread-default main context once every queued write is committed. Not
 * cancellable once started (@cancellable is accepted for the usual shape).
 */
void
lbd_host_stop_async (LbdHost             *self,
                     GCancellable        *cancellable,
                     GAsyncReadyCallback  callback,
                     gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LBD_IS_HOST (self));

  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, lbd_host_stop_async);
  if (!stop_services (self))
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  g_task_set_task_data (task, g_object_ref (self->writer), g_object_unref);
  g_task_run_in_thread (task, close_writer_thread);
}

gboolean
lbd_host_stop_finish (LbdHost       *self,
                      GAsyncResult  *result,
                      GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lbd_host_stop_async, FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

gboolean
lbd_host_is_started (LbdHost *self)
{
  g_return_val_if_fail (LBD_IS_HOST (self), FALSE);
  return self->started && !self->stopped;
}

LbStore *
lbd_host_get_store (LbdHost *self)
{
  g_return_val_if_fail (LBD_IS_HOST (self), NULL);
  return self->store;
}

LbdScheduler *
lbd_host_get_scheduler (LbdHost *self)
{
  g_return_val_if_fail (LBD_IS_HOST (self), NULL);
  return self->scheduler;
}

LbdService *
lbd_host_get_service (LbdHost *self)
{
  g_return_val_if_fail (LBD_IS_HOST (self), NULL);
  return self->service;
}

static void
lbd_host_dispose (GObject *object)
{
  LbdHost *self = LBD_HOST (object);

  /* Dropped without a stop: the writer still finishes its queue (it closes on finalize). */
  if (self->outbox != NULL)
    stop_services (self);
  drop_publish_secret (self);
  g_clear_object (&self->service);
  g_clear_object (&self->relay);
  g_clear_object (&self->scheduler);
  g_clear_object (&self->outbox);
  g_clear_object (&self->writer);
  g_clear_object (&self->store);

  G_OBJECT_CLASS (lbd_host_parent_class)->dispose (object);
}

static void
lbd_host_class_init (LbdHostClass *klass)
{
  G_OBJECT_CLASS (klass)->dispose = lbd_host_dispose;
}

static void
lbd_host_init (LbdHost *self)
{
}
