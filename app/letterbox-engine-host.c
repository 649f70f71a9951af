/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include "lb-store.h"
#include "lbd-host.h"
#include "letterbox-engine-host.h"

/*
 * The engine inside the app, for when no background service will write the store
 * (DESIGN.md: sync ownership = bus-name ownership). At start the app looks at the bus:
 * if someone owns org.letterbox.Backend already, that is the writer; if the user lets the
 * service run in the background (`run-in-background`) and the bus can activate it, the
 * first call activates it. Otherwise the app opens the service core (LbdHost) itself,
 * exports org.letterbox.Backend1, takes the name and syncs, sends and relays while it
 * runs; on quit it stops, lets the writer finish every queued write and only then gives
 * the name back. The window does not care: it talks to whoever owns the name through
 * letterbox_application_get_backend().
 */
struct _LetterboxEngineHost
{
  GObject parent_instance;

  GDBusConnection *connection;
  GSettings *settings;            /* nullable */
  GCancellable *cancellable;
  LbdHost *host;                  /* while hosting, once opened */
  guint owner_id;
  gboolean hosting;               /* this app is (or is about to be) the writer */
  gboolean serving;               /* the name is ours and the host runs */
  GTask *stop_task;               /* a stop waiting for the host to open */
};

G_DEFINE_FINAL_TYPE (LetterboxEngineHost, letterbox_engine_host, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_HOSTING,
  PROP_SERVING,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void
set_state (LetterboxEngineHost *self,
           gboolean             hosting,
           gboolean             serving)
{
  if (self->hosting != hosting)
    {
      self->hosting = hosting;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_HOSTING]);
    }
  if (self->serving != serving)
    {
      self->serving = serving;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_SERVING]);
    }
}

static gboolean
name_has_owner (GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  gboolean has_owner = FALSE;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "NameHasOwner", g_variant_new ("(s)", LB_BACKEND_BUS_NAME),
                                       G_VARIANT_TYPE ("(b)"), G_DBUS_CALL_FLAGS_NONE, 5000,
                                       NULL, NULL);
  if (reply != NULL)
    g_variant_get (reply, "(b)", &has_owner);
  return has_owner;
}

static gboolean
name_activatable (GDBusConnection *connection)
{
  g_autoptr(GVariant) reply = NULL;
  g_autofree const char **names = NULL;

  reply = g_dbus_connection_call_sync (connection, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                       "ListActivatableNames", NULL, G_VARIANT_TYPE ("(as)"),
                                       G_DBUS_CALL_FLAGS_NONE, 5000, NULL, NULL);
  if (reply == NULL)
    return FALSE;
  g_variant_get (reply, "(^a&s)", &names);
  return g_strv_contains (names, LB_BACKEND_BUS_NAME);
}

static gboolean
run_in_background (LetterboxEngineHost *self)
{
  g_autoptr(GSettingsSchema) schema = NULL;

  if (self->settings == NULL)
    return TRUE;
  g_object_get (self->settings, "settings-schema", &schema, NULL);
  if (!g_settings_schema_has_key (schema, "run-in-background"))
    return TRUE;
  return g_settings_get_boolean (self->settings, "run-in-background");
}

static void finish_stop (LetterboxEngineHost *self);

static void
host_stopped_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(LetterboxEngineHost) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!lbd_host_stop_finish (LBD_HOST (source), result, &error))
    g_warning ("Stopping the mail engine: %s", error->message);
  /* Every queued write is committed: now another process may become the writer. */
  if (self->owner_id != 0)
    {
      g_bus_unown_name (self->owner_id);
      self->owner_id = 0;
      g_message ("Released %s", LB_BACKEND_BUS_NAME);
    }
  g_clear_object (&self->host);
  set_state (self, FALSE, FALSE);
  finish_stop (self);
}

static void
stop_host (LetterboxEngineHost *self)
{
  if (self->host == NULL)
    {
      if (self->owner_id != 0)
        g_bus_unown_name (self->owner_id);
      self->owner_id = 0;
      set_state (self, FALSE, FALSE);
      finish_stop (self);
      return;
    }
  lbd_host_stop_async (self->host, NULL, host_stopped_cb, g_object_ref (self));
}

static void
finish_stop (LetterboxEngineHost *self)
{
  if (self->stop_task != NULL)
    {
      GTask *task = g_steal_pointer (&self->stop_task);

      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
    }
}

static void
name_acquired_cb (GDBusConnection *connection,
                  const char      *name,
                  gpointer         user_data)
{
  LetterboxEngineHost *self = user_data;

  if (self->host == NULL || self->serving)
    return;
  g_message ("Serving %s in the app (the background service is off or not installed)", name);
  lbd_host_start (self->host);
  set_state (self, TRUE, TRUE);
}

static void
name_lost_cb (GDBusConnection *connection,
              const char      *name,
              gpointer         user_data)
{
  LetterboxEngineHost *self = user_data;

  if (self->host == NULL || self->stop_task != NULL)
    return;
  /* Before it was ours: another process took it meanwhile and is the writer. After: the
   * bus connection went away. Either way this app must not write any more. */
  if (!self->serving)
    g_message ("%s is owned by another process: it syncs, not the app", name);
  else
    g_warning ("Lost %s: the app stops syncing", name);
  stop_host (self);
}

static void
host_opened_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(LetterboxEngineHost) self = user_data;
  g_autoptr(GError) error = NULL;

  self->host = lbd_host_new_finish (result, &error);
  if (self->host == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        g_warning ("The app cannot run the mail engine: %s", error->message);
      set_state (self, FALSE, FALSE);
      finish_stop (self);
      return;
    }
  if (self->stop_task != NULL)
    {
      stop_host (self);
      return;
    }
  /* Export before asking for the name, so that no client sees the name without the
   * object; no queueing: if someone else has it, they are the writer. */
  if (!lbd_host_export (self->host, self->connection, &error))
    {
      g_warning ("The app cannot export the mail engine: %s", error->message);
      stop_host (self);
      return;
    }
  self->owner_id = g_bus_own_name_on_connection (self->connection, LB_BACKEND_BUS_NAME,
                                                 G_BUS_NAME_OWNER_FLAGS_DO_NOT_QUEUE,
                                                 name_acquired_cb, name_lost_cb, self, NULL);
}

/**
 * letterbox_engine_host_start:
 *
 * Decides who writes the store and, when it is this app, starts opening the engine
 * (asynchronously; #LetterboxEngineHost:serving turns %TRUE once the name is ours).
 * Asks the bus daemon two quick questions synchronously, so that it runs before anything
 * calls the backend (a call could activate letterbox-backend otherwise).
 */
void
letterbox_engine_host_start (LetterboxEngineHost *self)
{
  g_autofree char *data_dir = NULL;
  LbdHostOptions options = LBD_HOST_OPTIONS_INIT;

  g_return_if_fail (LETTERBOX_IS_ENGINE_HOST (self));

  if (self->hosting)
    return;
  if (name_has_owner (self->connection))
    {
      g_debug ("%s runs already: it is the writer", LB_BACKEND_BUS_NAME);
      return;
    }
  if (run_in_background (self) && name_activatable (self->connection))
    {
      g_debug ("%s will be activated on first use", LB_BACKEND_BUS_NAME);
      return;
    }

  set_state (self, TRUE, FALSE);
  data_dir = lb_store_default_data_dir ();
  lbd_host_new_async (data_dir, &options, self->cancellable, host_opened_cb,
                      g_object_ref (self));
}

/**
 * letterbox_engine_host_stop_async:
 *
 * Stops the engine if the app runs it: syncing, sending and relaying stop, the writer
 * finishes every queued write, then the name is given back. @callback runs in the
 * thread-default main context of the caller, at once when the app hosts nothing.
 */
void
letterbox_engine_host_stop_async (LetterboxEngineHost *self,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LETTERBOX_IS_ENGINE_HOST (self));

  task = g_task_new (self, NULL, callback, user_data);
  g_task_set_source_tag (task, letterbox_engine_host_stop_async);
  if (!self->hosting || self->stop_task != NULL)
    {
      g_task_return_boolean (task, TRUE);
      return;
    }
  self->stop_task = g_steal_pointer (&task);
  /* Still opening: host_opened_cb() stops it once open. */
  if (self->host != NULL)
    stop_host (self);
}

gboolean
letterbox_engine_host_stop_finish (LetterboxEngineHost  *self,
                                   GAsyncResult         *result,
                                   GError              **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* Whether the app is, or is about to be, the writer (the backend proxy must then not
 * activate letterbox-backend). */
gboolean
letterbox_engine_host_get_hosting (LetterboxEngineHost *self)
{
  g_return_val_if_fail (LETTERBOX_IS_ENGINE_HOST (self), FALSE);
  return self->hosting;
}

/* Whether the app owns org.letterbox.Backend and runs the engine now. */
gboolean
letterbox_engine_host_get_serving (LetterboxEngineHost *self)
{
  g_return_val_if_fail (LETTERBOX_IS_ENGINE_HOST (self), FALSE);
  return self->serving;
}

static void
letterbox_engine_host_get_property (GObject    *object,
                                    guint       prop_id,
                                    GValue     *value,
                                    GParamSpec *pspec)
{
  LetterboxEngineHost *self = LETTERBOX_ENGINE_HOST (object);

  switch (prop_id)
    {
    case PROP_HOSTING:
      g_value_set_boolean (value, self->hosting);
      break;
    case PROP_SERVING:
      g_value_set_boolean (value, self->serving);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
letterbox_engine_host_dispose (GObject *object)
{
  LetterboxEngineHost *self = LETTERBOX_ENGINE_HOST (object);

  g_cancellable_cancel (self->cancellable);
  if (self->owner_id != 0)
    g_bus_unown_name (self->owner_id);
  self->owner_id = 0;
  /* Without a stop first: the writer still commits its queue when it is finalized. */
  g_clear_object (&self->host);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->settings);
  g_clear_object (&self->connection);

  G_OBJECT_CLASS (letterbox_engine_host_parent_class)->dispose (object);
}

static void
letterbox_engine_host_class_init (LetterboxEngineHostClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->get_property = letterbox_engine_host_get_property;
  object_class->dispose = letterbox_engine_host_dispose;

  properties[PROP_HOSTING] =
    g_param_spec_boolean ("hosting", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  properties[PROP_SERVING] =
    g_param_spec_boolean ("serving", NULL, NULL, FALSE,
                          G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
letterbox_engine_host_init (LetterboxEngineHost *self)
{
  self->cancellable = g_cancellable_new ();
}

/**
 * letterbox_engine_host_new:
 * @connection: the session bus
 * @settings: (nullable): org.letterbox.Letterbox, for `run-in-background`
 */
LetterboxEngineHost *
letterbox_engine_host_new (GDBusConnection *connection,
                           GSettings       *settings)
{
  LetterboxEngineHost *self;

  g_return_val_if_fail (G_IS_DBUS_CONNECTION (connection), NULL);

  self = g_object_new (LETTERBOX_TYPE_ENGINE_HOST, NULL);
  self->connection = g_object_ref (connection);
  if (settings != NULL)
    self->settings = g_object_ref (settings);
  return self;
}
