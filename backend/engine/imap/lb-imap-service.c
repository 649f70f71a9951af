/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-imap"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-imap-service.h"

/*
 * The IMAP service of one account: a pool of logged-in sessions (at most
 * max_connections, handed out and given back), the account's status for the UI, and a
 * watcher that keeps one mailbox under IDLE — re-entered before the server's timeout,
 * reconnected with exponential back-off and jitter when the connection drops, and
 * stopped for good on errors only the user can fix (password, certificate, no TLS).
 */

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS (5 * 60 * 1000)
#define POLL_SECONDS 60

struct _LbImapService
{
  GObject parent_instance;

  LbImapServiceConfig config;
  LbImapServiceStatus status;
  GError *last_error;

  GPtrArray *idle_sessions;
  guint open_count;
  GQueue waiters;

  char *watch_mailbox;
  GCancellable *watch_cancel;
  LbImapSession *watch_session;
  guint backoff_ms;
  guint retry_id;
};

G_DEFINE_FINAL_TYPE (LbImapService, lb_imap_service, G_TYPE_OBJECT)

enum {
  PROP_0,
  PROP_STATUS,
  N_PROPS
};

enum {
  SIGNAL_MAILBOX_CHANGED,
  N_SIGNALS
};

static GParamSpec *properties[N_PROPS];
static guint signals[N_SIGNALS];

static void start_watch (LbImapService *self);

static void
set_status (LbImapService       *self,
            LbImapServiceStatus  status,
            const GError        *error)
{
  if (error != NULL)
    {
      g_clear_error (&self->last_error);
      self->last_error = g_error_copy (error);
    }
  else if (status == LB_IMAP_SERVICE_ONLINE)
    g_clear_error (&self->last_error);

  if (self->status != status)
    {
      self->status = status;
      g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_STATUS]);
    }
}

static void
unwatch_internal (LbImapService *self)
{
  g_clear_handle_id (&self->retry_id, g_source_remove);
  if (self->watch_cancel != NULL)
    g_cancellable_cancel (self->watch_cancel);
  g_clear_object (&self->watch_cancel);
}

static void
lb_imap_service_dispose (GObject *object)
{
  LbImapService *self = LB_IMAP_SERVICE (object);
  GTask *waiter;

  unwatch_internal (self);
  g_clear_object (&self->watch_session);
  while ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    {
      g_task_return_new_error (waiter, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                               _("The account is shutting down"));
      g_object_unref (waiter);
    }
  g_clear_pointer (&self->idle_sessions, g_ptr_array_unref);

  G_OBJECT_CLASS (lb_imap_service_parent_class)->dispose (object);
}

static void
lb_imap_service_finalize (GObject *object)
{
  LbImapService *self = LB_IMAP_SERVICE (object);

  g_free (self->config.host);
  g_free (self->config.user);
  if (self->config.secret != NULL)
    memset (self->config.secret, 0, strlen (self->config.secret));
  g_free (self->config.secret);
  g_free (self->config.ca_file);
  g_free (self->config.trusted_fingerprint);
  g_strfreev (self->config.quirks.disabled_capabilities);
  g_free (self->watch_mailbox);
  g_clear_error (&self->last_error);

  G_OBJECT_CLASS (lb_imap_service_parent_class)->finalize (object);
}

static void
lb_imap_service_get_property (GObject    *object,
                              guint       prop_id,
                              GValue     *value,
                              GParamSpec *pspec)
{
  LbImapService *self = LB_IMAP_SERVICE (object);

  switch (prop_id)
    {
    case PROP_STATUS:
      g_value_set_int (value, self->status);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lb_imap_service_class_init (LbImapServiceClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_imap_service_dispose;
  object_class->finalize = lb_imap_service_finalize;
  object_class->get_property = lb_imap_service_get_property;

  properties[PROP_STATUS] =
    g_param_spec_int ("status", NULL, NULL, LB_IMAP_SERVICE_OFFLINE, LB_IMAP_SERVICE_ERROR,
                      LB_IMAP_SERVICE_OFFLINE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS |
                      G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LbImapService::mailbox-changed:
   * @mailbox: the watched mailbox, in which the server reported a change (new mail,
   *   expunges, flags)
   */
  signals[SIGNAL_MAILBOX_CHANGED] =
    g_signal_new ("mailbox-changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
lb_imap_service_init (LbImapService *self)
{
  self->idle_sessions = g_ptr_array_new_with_free_func (g_object_unref);
  g_queue_init (&self->waiters);
  self->backoff_ms = BACKOFF_MIN_MS;
}

LbImapService *
lb_imap_service_new (const LbImapServiceConfig *config)
{
  LbImapService *self;

  g_return_val_if_fail (config != NULL && config->host != NULL && config->user != NULL &&
                          config->secret != NULL,
                        NULL);

  self = g_object_new (LB_TYPE_IMAP_SERVICE, NULL);
  self->config = *config;
  self->config.host = g_strdup (config->host);
  self->config.user = g_strdup (config->user);
  self->config.secret = g_strdup (config->secret);
  self->config.ca_file = g_strdup (config->ca_file);
  self->config.trusted_fingerprint = g_strdup (config->trusted_fingerprint);
  self->config.quirks.disabled_capabilities = g_strdupv (config->quirks.disabled_capabilities);
  if (self->config.max_connections == 0)
    self->config.max_connections = 3;
  if (self->config.quirks.max_command_length == 0)
    lb_imap_quirks_init_defaults (&self->config.quirks);
  return self;
}

LbImapServiceStatus
lb_imap_service_get_status (LbImapService *self)
{
  return self->status;
}

/**
 * lb_imap_service_get_last_error:
 *
 * Returns: (nullable): why the last attempt failed, for the UI
 */
const GError *
lb_imap_service_get_last_error (LbImapService *self)
{
  return self->last_error;
}

/**
 * lb_imap_service_error_needs_user:
 *
 * Returns: whether retrying cannot help until the user acts (password, certificate,
 *   security settings)
 */
gboolean
lb_imap_service_error_needs_user (const GError *error)
{
  return g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH) ||
         g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE) ||
         g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_UNSUPPORTED) ||
         g_error_matches (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
}

/* ---- opening a session: connect, then log in ---- */

static void
open_login_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  LbImapService *self = g_task_get_source_object (task);
  LbImapSession *session = LB_IMAP_SESSION (object);
  GError *error = NULL;

  if (!lb_imap_session_login_finish (session, result, &error))
    {
      set_status (self, LB_IMAP_SERVICE_ERROR, error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  set_status (self, LB_IMAP_SERVICE_ONLINE, NULL);
  g_task_return_pointer (task, g_object_ref (session), g_object_unref);
  g_object_unref (task);
}

static void
open_connect_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  LbImapService *self = g_task_get_source_object (task);
  LbImapSession *session = LB_IMAP_SESSION (object);
  GError *error = NULL;

  if (!lb_imap_session_connect_finish (session, result, &error))
    {
      set_status (self, LB_IMAP_SERVICE_ERROR, error);
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (lb_imap_session_get_state (session) == LB_IMAP_STATE_AUTHENTICATED)
    {
      /* PREAUTH: the server knew us already. */
      set_status (self, LB_IMAP_SERVICE_ONLINE, NULL);
      g_task_return_pointer (task, g_object_ref (session), g_object_unref);
      g_object_unref (task);
      return;
    }
  lb_imap_session_login_async (session, self->config.user, self->config.secret,
                               self->config.secret_is_token, g_task_get_cancellable (task),
                               open_login_cb, task);
}

static void
open_session_async (LbImapService       *self,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  g_autoptr(LbConnection) conn = lb_connection_new (self->config.host, self->config.port,
                                                    self->config.security);
  g_autoptr(LbImapSession) session = NULL;
  g_autoptr(GError) error = NULL;
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  if (self->config.ca_file != NULL && !lb_connection_set_ca_file (conn, self->config.ca_file, &error))
    {
      set_status (self, LB_IMAP_SERVICE_ERROR, error);
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  lb_connection_set_trusted_fingerprint (conn, self->config.trusted_fingerprint);
  session = lb_imap_session_new (conn);
  lb_imap_session_set_quirks (session, &self->config.quirks);
  if (self->status != LB_IMAP_SERVICE_ONLINE)
    set_status (self, LB_IMAP_SERVICE_CONNECTING, NULL);
  lb_imap_session_connect_async (session, cancellable, open_connect_cb, task);
}

static LbImapSession *
open_session_finish (LbImapService  *self,
                     GAsyncResult   *result,
                     GError        **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- the pool ---- */

static gboolean
session_usable (LbImapSession *session)
{
  LbImapState state = lb_imap_session_get_state (session);

  return state == LB_IMAP_STATE_AUTHENTICATED || state == LB_IMAP_STATE_SELECTED;
}

static void
acquire_open_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  LbImapService *self = g_task_get_source_object (task);
  GError *error = NULL;
  LbImapSession *session = open_session_finish (self, result, &error);

  if (session == NULL)
    {
      self->open_count--;
      g_task_return_error (task, error);
    }
  else
    g_task_return_pointer (task, session, g_object_unref);
  g_object_unref (task);
}

/**
 * lb_imap_service_acquire_async:
 *
 * Gets a logged-in session: an idle one from the pool, a new one while fewer than
 * max_connections are open, or else the next one given back. Give it back with
 * lb_imap_service_release().
 */
void
lb_imap_service_acquire_async (LbImapService       *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SERVICE (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_imap_service_acquire_async);

  while (self->idle_sessions->len > 0)
    {
      LbImapSession *session = g_ptr_array_steal_index (self->idle_sessions,
                                                        self->idle_sessions->len - 1);

      if (session_usable (session))
        {
          g_task_return_pointer (task, session, g_object_unref);
          g_object_unref (task);
          return;
        }
      /* Dropped while idle in the pool: forget it. */
      self->open_count--;
      g_object_unref (session);
    }

  if (self->open_count < self->config.max_connections)
    {
      self->open_count++;
      open_session_async (self, cancellable, acquire_open_cb, task);
      return;
    }
  g_queue_push_tail (&self->waiters, task);
}

LbImapSession *
lb_imap_service_acquire_finish (LbImapService  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * lb_imap_service_release:
 * @session: a session from lb_imap_service_acquire_finish(); the service takes the
 *   reference back
 */
void
lb_imap_service_release (LbImapService *self,
                         LbImapSession *session)
{
  GTask *waiter;

  g_return_if_fail (LB_IS_IMAP_SERVICE (self));
  g_return_if_fail (LB_IS_IMAP_SESSION (session));

  if (!session_usable (session))
    {
      self->open_count--;
      g_object_unref (session);
      /* Someone waits: open a fresh one for them. */
      if ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
        {
          self->open_count++;
          open_session_async (self, g_task_get_cancellable (waiter), acquire_open_cb, waiter);
        }
      return;
    }

  if ((waiter = g_queue_pop_head (&self->waiters)) != NULL)
    {
      g_task_return_pointer (waiter, session, g_object_unref);
      g_object_unref (waiter);
      return;
    }
  g_ptr_array_add (self->idle_sessions, session);
}

/* ---- the watcher: IDLE (or NOOP polling), re-entered, reconnected ---- */

static void
watch_changed (LbImapService  *self,
               LbImapResponse *r)
{
  if (r->data == LB_IMAP_DATA_EXISTS || r->data == LB_IMAP_DATA_EXPUNGE ||
      r->data == LB_IMAP_DATA_VANISHED || r->data == LB_IMAP_DATA_FETCH)
    g_signal_emit (self, signals[SIGNAL_MAILBOX_CHANGED], 0, self->watch_mailbox);
}

static void
watch_untagged_cb (LbImapSession  *session,
                   LbImapResponse *r,
                   gpointer        user_data)
{
  watch_changed (user_data, r);
}

static void
watch_poll_untagged (LbImapResponse *r,
                     gpointer        user_data)
{
  watch_changed (user_data, r);
}

static gboolean
retry_cb (gpointer user_data)
{
  LbImapService *self = user_data;

  self->retry_id = 0;
  start_watch (self);
  return G_SOURCE_REMOVE;
}

/* The watch session failed: retry later, unless only the user can fix it. */
static void
watch_failed (LbImapService *self,
              GError        *error)
{
  g_autoptr(GError) owned = error;
  guint delay;

  if (self->watch_session != NULL)
    {
      g_signal_handlers_disconnect_by_data (self->watch_session, self);
      g_clear_object (&self->watch_session);
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || self->watch_cancel == NULL)
    return;

  set_status (self, LB_IMAP_SERVICE_ERROR, error);
  if (lb_imap_service_error_needs_user (error))
    {
      g_warning ("Not retrying %s: %s", self->config.host, error->message);
      return;
    }

  /* Exponential back-off with ±20 % jitter, so that many clients do not return at once. */
  delay = (guint) (self->backoff_ms * g_random_double_range (0.8, 1.2));
  self->backoff_ms = MIN (self->backoff_ms * 2, BACKOFF_MAX_MS);
  g_debug ("Reconnecting to %s in %u ms: %s", self->config.host, delay, error->message);
  self->retry_id = g_timeout_add (delay, retry_cb, self);
}

static void watch_wait (LbImapService *self);

static void
watch_poll_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  LbImapService *self = user_data;
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = lb_imap_session_command_finish (LB_IMAP_SESSION (object), result, &error);
  if (res == NULL)
    {
      watch_failed (self, error);
      g_object_unref (self);
      return;
    }
  watch_wait (self);
  g_object_unref (self);
}

static gboolean
watch_poll_timeout_cb (gpointer user_data)
{
  LbImapService *self = user_data;

  self->retry_id = 0;
  if (self->watch_session != NULL)
    lb_imap_session_command_full_async (self->watch_session, "NOOP", NULL, watch_poll_untagged,
                                        self, self->watch_cancel, watch_poll_cb,
                                        g_object_ref (self));
  return G_SOURCE_REMOVE;
}

static void
watch_idle_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  LbImapService *self = user_data;
  GError *error = NULL;

  if (!lb_imap_session_idle_finish (LB_IMAP_SESSION (object), result, &error))
    {
      watch_failed (self, error);
      g_object_unref (self);
      return;
    }
  /* The IDLE period ended before the server's timeout: enter it again. */
  watch_wait (self);
  g_object_unref (self);
}

static void
watch_wait (LbImapService *self)
{
  if (self->watch_session == NULL || self->watch_cancel == NULL)
    return;
  if (lb_imap_session_has_capability (self->watch_session, "IDLE"))
    lb_imap_session_idle_async (self->watch_session, 0, self->watch_cancel, watch_idle_cb,
                                g_object_ref (self));
  else
    self->retry_id = g_timeout_add_seconds (POLL_SECONDS, watch_poll_timeout_cb, self);
}

static void
watch_examine_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  LbImapService *self = user_data;
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = lb_imap_session_command_finish (LB_IMAP_SESSION (object), result, &error);
  if (res != NULL && res->tagged->status != LB_IMAP_STATUS_OK)
    error = g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_NO, "%s", res->tagged->text);
  if (error != NULL)
    {
      watch_failed (self, error);
      g_object_unref (self);
      return;
    }
  self->backoff_ms = BACKOFF_MIN_MS;
  /* Anything may have changed while we were away. */
  g_signal_emit (self, signals[SIGNAL_MAILBOX_CHANGED], 0, self->watch_mailbox);
  watch_wait (self);
  g_object_unref (self);
}

static void
watch_open_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  LbImapService *self = user_data;
  g_autofree char *name = NULL;
  g_autofree char *command = NULL;
  GError *error = NULL;
  LbImapSession *session = open_session_finish (self, result, &error);

  if (session == NULL)
    {
      watch_failed (self, error);
      g_object_unref (self);
      return;
    }
  if (self->watch_cancel == NULL)
    {
      g_object_unref (session);
      g_object_unref (self);
      return;
    }
  self->watch_session = session;
  g_signal_connect (session, "untagged", G_CALLBACK (watch_untagged_cb), self);
  name = lb_imap_session_encode_mailbox (session, self->watch_mailbox);
  command = g_strdup_printf ("EXAMINE %s", name);
  lb_imap_session_command_async (session, command, NULL, self->watch_cancel, watch_examine_cb,
                                 self);
}

static void
start_watch (LbImapService *self)
{
  if (self->watch_cancel == NULL)
    return;
  open_session_async (self, self->watch_cancel, watch_open_cb, g_object_ref (self));
}

/**
 * lb_imap_service_watch:
 * @mailbox: the mailbox to keep an eye on (UTF-8), usually INBOX
 *
 * Keeps a connection of its own on @mailbox and emits "mailbox-changed" when the server
 * reports changes, until lb_imap_service_unwatch().
 */
void
lb_imap_service_watch (LbImapService *self,
                       const char    *mailbox)
{
  g_return_if_fail (LB_IS_IMAP_SERVICE (self));

  unwatch_internal (self);
  g_free (self->watch_mailbox);
  self->watch_mailbox = g_strdup (mailbox);
  self->watch_cancel = g_cancellable_new ();
  self->backoff_ms = BACKOFF_MIN_MS;
  start_watch (self);
}

void
lb_imap_service_unwatch (LbImapService *self)
{
  g_return_if_fail (LB_IS_IMAP_SERVICE (self));

  unwatch_internal (self);
}
