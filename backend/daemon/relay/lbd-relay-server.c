/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-relay"

#include "config.h"

#include <errno.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lbd-relay-secret.h"
#include "lbd-relay-server.h"

/*
 * The relay's listeners: a Unix socket in $XDG_RUNTIME_DIR/letterbox/ (directory 0700,
 * socket 0600, and every client's uid checked with SO_PEERCRED) for letterbox-sendmail,
 * and TCP on 127.0.0.1 where clients must log in (AUTH PLAIN/LOGIN with the login name
 * and the relay secret) before MAIL. Each listener takes at most max-connections
 * clients at once; one more gets "421 4.3.2" and is closed at once, so a flood of idle
 * connections costs one descriptor each only while it is being turned away.
 *
 * Everything runs in the thread-default main context of lbd_relay_server_start().
 */

/* GIO's default is 10: a burst of clients would wait for SYN retries. */
#define LISTEN_BACKLOG 128

G_DEFINE_QUARK (lbd-relay-error-quark, lbd_relay_error)

typedef struct
{
  LbdRelayServer *server;       /* unowned */
  LbdRelayTransport transport;
  GSocketListener *listener;
  guint n_sessions;
} Listener;

struct _LbdRelayServer
{
  GObject parent_instance;

  const LbdRelaySink *sink;
  gpointer sink_data;

  char *socket_path;
  gboolean unix_enabled;
  gboolean tcp_enabled;
  guint tcp_port;
  guint64 size_limit;
  guint max_recipients;
  guint max_connections;
  guint idle_timeout;
  guint command_timeout;
  guint data_timeout;
  char *hostname;
  char *secret_path;
  char *secret;

  GMainContext *context;
  GCancellable *cancellable;    /* accepts and sessions; cancelled by stop */
  Listener unix_listener;
  Listener tcp_listener;
  guint16 bound_port;
  dev_t socket_dev;
  ino_t socket_ino;
  gboolean started;
  gint n_sessions;              /* atomic: read by tests from other threads */
};

G_DEFINE_FINAL_TYPE (LbdRelayServer, lbd_relay_server, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_SOCKET_PATH,
  PROP_UNIX_ENABLED,
  PROP_TCP_ENABLED,
  PROP_TCP_PORT,
  PROP_SIZE_LIMIT,
  PROP_MAX_RECIPIENTS,
  PROP_MAX_CONNECTIONS,
  PROP_IDLE_TIMEOUT,
  PROP_COMMAND_TIMEOUT,
  PROP_DATA_TIMEOUT,
  PROP_HOSTNAME,
  PROP_SECRET_PATH,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static void accept_next (Listener *listener);

/**
 * lbd_relay_default_socket_path:
 *
 * Returns: (transfer full): `$XDG_RUNTIME_DIR/letterbox/relay.sock`; without
 *   XDG_RUNTIME_DIR (cron jobs), `/run/user/UID/letterbox/relay.sock` when that
 *   directory is the user's
 */
char *
lbd_relay_default_socket_path (void)
{
  const char *runtime = g_getenv ("XDG_RUNTIME_DIR");
  g_autofree char *run_user = NULL;
  struct stat st;

  if (runtime == NULL || runtime[0] == '\0')
    {
      run_user = g_strdup_printf ("/run/user/%u", (guint) getuid ());
      if (stat (run_user, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == getuid ())
        runtime = run_user;
      else
        runtime = g_get_user_runtime_dir ();
    }
  return g_build_filename (runtime, "letterbox", "relay.sock", NULL);
}

/**
 * lbd_relay_check_peer:
 * @credentials: the client's, from the socket (SO_PEERCRED)
 * @owner: the uid the relay serves
 *
 * Returns: %TRUE when the peer is @owner, else %FALSE with %LBD_RELAY_ERROR_PEER
 */
gboolean
lbd_relay_check_peer (GCredentials  *credentials,
                      uid_t          owner,
                      GError       **error)
{
  g_autoptr(GError) local_error = NULL;
  uid_t uid;

  if (credentials == NULL)
    {
      g_set_error_literal (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_PEER,
                           _("The client's credentials are unknown"));
      return FALSE;
    }
  uid = g_credentials_get_unix_user (credentials, &local_error);
  if (uid == (uid_t) -1)
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_PEER,
                   _("The client's user is unknown: %s"), local_error->message);
      return FALSE;
    }
  if (uid != owner)
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_PEER,
                   _("The client is user %u; the relay serves only user %u"),
                   (guint) uid, (guint) owner);
      return FALSE;
    }
  return TRUE;
}

static void
lbd_relay_server_get_property (GObject    *object,
                               guint       prop_id,
                               GValue     *value,
                               GParamSpec *pspec)
{
  LbdRelayServer *self = LBD_RELAY_SERVER (object);

  switch (prop_id)
    {
    case PROP_SOCKET_PATH:
      g_value_set_string (value, self->socket_path);
      break;
    case PROP_UNIX_ENABLED:
      g_value_set_boolean (value, self->unix_enabled);
      break;
    case PROP_TCP_ENABLED:
      g_value_set_boolean (value, self->tcp_enabled);
      break;
    case PROP_TCP_PORT:
      g_value_set_uint (value, self->tcp_port);
      break;
    case PROP_SIZE_LIMIT:
      g_value_set_uint64 (value, self->size_limit);
      break;
    case PROP_MAX_RECIPIENTS:
      g_value_set_uint (value, self->max_recipients);
      break;
    case PROP_MAX_CONNECTIONS:
      g_value_set_uint (value, self->max_connections);
      break;
    case PROP_IDLE_TIMEOUT:
      g_value_set_uint (value, self->idle_timeout);
      break;
    case PROP_COMMAND_TIMEOUT:
      g_value_set_uint (value, self->command_timeout);
      break;
    case PROP_DATA_TIMEOUT:
      g_value_set_uint (value, self->data_timeout);
      break;
    case PROP_HOSTNAME:
      g_value_set_string (value, self->hostname);
      break;
    case PROP_SECRET_PATH:
      g_value_set_string (value, self->secret_path);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lbd_relay_server_set_property (GObject      *object,
                               guint         prop_id,
                               const GValue *value,
                               GParamSpec   *pspec)
{
  LbdRelayServer *self = LBD_RELAY_SERVER (object);

  switch (prop_id)
    {
    case PROP_SOCKET_PATH:
      g_free (self->socket_path);
      self->socket_path = g_value_dup_string (value);
      if (self->socket_path == NULL)
        self->socket_path = lbd_relay_default_socket_path ();
      break;
    case PROP_UNIX_ENABLED:
      self->unix_enabled = g_value_get_boolean (value);
      break;
    case PROP_TCP_ENABLED:
      self->tcp_enabled = g_value_get_boolean (value);
      break;
    case PROP_TCP_PORT:
      self->tcp_port = g_value_get_uint (value);
      break;
    case PROP_SIZE_LIMIT:
      self->size_limit = g_value_get_uint64 (value);
      break;
    case PROP_MAX_RECIPIENTS:
      self->max_recipients = g_value_get_uint (value);
      break;
    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_uint (value);
      break;
    case PROP_IDLE_TIMEOUT:
      self->idle_timeout = g_value_get_uint (value);
      break;
    case PROP_COMMAND_TIMEOUT:
      self->command_timeout = g_value_get_uint (value);
      break;
    case PROP_DATA_TIMEOUT:
      self->data_timeout = g_value_get_uint (value);
      break;
    case PROP_HOSTNAME:
      g_free (self->hostname);
      self->hostname = g_value_dup_string (value);
      if (self->hostname == NULL)
        self->hostname = g_strdup (g_get_host_name ());
      break;
    case PROP_SECRET_PATH:
      g_free (self->secret_path);
      self->secret_path = g_value_dup_string (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lbd_relay_server_dispose (GObject *object)
{
  LbdRelayServer *self = LBD_RELAY_SERVER (object);

  lbd_relay_server_stop (self);
  G_OBJECT_CLASS (lbd_relay_server_parent_class)->dispose (object);
}

static void
lbd_relay_server_finalize (GObject *object)
{
  LbdRelayServer *self = LBD_RELAY_SERVER (object);

  g_free (self->socket_path);
  g_free (self->hostname);
  g_free (self->secret_path);
  if (self->secret != NULL)
    {
      memset (self->secret, 0, strlen (self->secret));
      g_free (self->secret);
    }
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->context, g_main_context_unref);

  G_OBJECT_CLASS (lbd_relay_server_parent_class)->finalize (object);
}

static void
lbd_relay_server_class_init (LbdRelayServerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT | G_PARAM_STATIC_STRINGS |
                      G_PARAM_EXPLICIT_NOTIFY;

  object_class->get_property = lbd_relay_server_get_property;
  object_class->set_property = lbd_relay_server_set_property;
  object_class->dispose = lbd_relay_server_dispose;
  object_class->finalize = lbd_relay_server_finalize;

  /* Socket, port and secret count at start; the limits and timeouts for each new
   * connection. */
  properties[PROP_SOCKET_PATH] =
    g_param_spec_string ("socket-path", NULL, NULL, NULL, flags);
  properties[PROP_UNIX_ENABLED] =
    g_param_spec_boolean ("unix-enabled", NULL, NULL, TRUE, flags);
  properties[PROP_TCP_ENABLED] =
    g_param_spec_boolean ("tcp-enabled", NULL, NULL, TRUE, flags);
  properties[PROP_TCP_PORT] =
    g_param_spec_uint ("tcp-port", NULL, NULL, 0, 65535, 0, flags);
  properties[PROP_SIZE_LIMIT] =
    g_param_spec_uint64 ("size-limit", NULL, NULL, 1, G_MAXUINT64, LBD_RELAY_DEFAULT_SIZE_LIMIT,
                         flags);
  properties[PROP_MAX_RECIPIENTS] =
    g_param_spec_uint ("max-recipients", NULL, NULL, 1, G_MAXUINT,
                       LBD_RELAY_DEFAULT_MAX_RECIPIENTS, flags);
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_uint ("max-connections", NULL, NULL, 1, G_MAXUINT,
                       LBD_RELAY_DEFAULT_MAX_CONNECTIONS, flags);
  properties[PROP_IDLE_TIMEOUT] =
    g_param_spec_uint ("idle-timeout", NULL, NULL, 1, G_MAXINT, LBD_RELAY_DEFAULT_IDLE_TIMEOUT,
                       flags);
  properties[PROP_COMMAND_TIMEOUT] =
    g_param_spec_uint ("command-timeout", NULL, NULL, 1, G_MAXINT,
                       LBD_RELAY_DEFAULT_COMMAND_TIMEOUT, flags);
  properties[PROP_DATA_TIMEOUT] =
    g_param_spec_uint ("data-timeout", NULL, NULL, 1, G_MAXINT, LBD_RELAY_DEFAULT_DATA_TIMEOUT,
                       flags);
  properties[PROP_HOSTNAME] =
    g_param_spec_string ("hostname", NULL, NULL, NULL, flags);
  properties[PROP_SECRET_PATH] =
    g_param_spec_string ("secret-path", NULL, NULL, NULL, flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
lbd_relay_server_init (LbdRelayServer *self)
{
  self->unix_listener.server = self;
  self->unix_listener.transport = LBD_RELAY_TRANSPORT_UNIX;
  self->tcp_listener.server = self;
  self->tcp_listener.transport = LBD_RELAY_TRANSPORT_TCP;
}

/**
 * lbd_relay_server_new:
 * @sink: where accepted messages go; must outlive the server
 *
 * Properties (settable until lbd_relay_server_start(); limits and timeouts also later,
 * for new connections): `socket-path` (default lbd_relay_default_socket_path()),
 * `unix-enabled`, `tcp-enabled`, `tcp-port` (0: any free port, see
 * lbd_relay_server_get_tcp_port()), `size-limit` (octets, default 50 MiB),
 * `max-recipients` (1000), `max-connections` (per listener, 64), `idle-timeout`,
 * `command-timeout`, `data-timeout` (seconds: 300, 300, 600), `hostname` (default the
 * machine's), `secret-path` (default lbd_relay_secret_default_path()).
 *
 * Once started, the server holds itself until lbd_relay_server_stop(): call it before
 * dropping the last reference.
 */
LbdRelayServer *
lbd_relay_server_new (const LbdRelaySink *sink,
                      gpointer            sink_data)
{
  LbdRelayServer *self;

  g_return_val_if_fail (sink != NULL && sink->submit_async != NULL && sink->submit_finish != NULL,
                        NULL);

  self = g_object_new (LBD_TYPE_RELAY_SERVER, NULL);
  self->sink = sink;
  self->sink_data = sink_data;
  return self;
}

/**
 * lbd_relay_server_set_secret:
 *
 * The password for AUTH over TCP; without one, start reads (or makes) the secret file.
 */
void
lbd_relay_server_set_secret (LbdRelayServer *self,
                             const char     *secret)
{
  g_return_if_fail (LBD_IS_RELAY_SERVER (self));

  if (self->secret != NULL)
    memset (self->secret, 0, strlen (self->secret));
  g_free (self->secret);
  self->secret = g_strdup (secret);
}

typedef struct
{
  LbdRelayServer *server;       /* owned */
  Listener *listener;
} SessionData;

static void
session_done_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  SessionData *data = user_data;

  lbd_relay_session_run_finish (LBD_RELAY_SESSION (object), result, NULL);
  data->listener->n_sessions--;
  g_atomic_int_dec_and_test (&data->server->n_sessions);
  g_object_unref (data->server);
  g_free (data);
}

/* Turned away at once: the reply fits the empty send buffer, so a non-blocking send
 * never waits. */
static void
refuse (GSocketConnection *connection,
        const char        *line)
{
  GSocket *socket = g_socket_connection_get_socket (connection);

  g_socket_set_blocking (socket, FALSE);
  g_socket_send (socket, line, strlen (line), NULL, NULL);
  g_io_stream_close (G_IO_STREAM (connection), NULL, NULL);
}

static gboolean
accept_retry_cb (gpointer user_data)
{
  Listener *listener = user_data;

  accept_next (listener);
  g_object_unref (listener->server);
  return G_SOURCE_REMOVE;
}

static void
accept_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Listener *listener = user_data;
  LbdRelayServer *self = listener->server;
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbdRelaySession) session = NULL;
  LbdRelaySessionConfig config = { 0 };
  SessionData *data;

  connection = g_socket_listener_accept_finish (G_SOCKET_LISTENER (object), result, NULL, &error);
  if (connection == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) &&
          !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CLOSED) &&
          !g_cancellable_is_cancelled (self->cancellable))
        {
          /* Out of descriptors, say: try again shortly rather than spin. */
          GSource *retry = g_timeout_source_new (100);

          g_message ("Relay cannot accept a connection: %s", error->message);
          g_source_set_callback (retry, accept_retry_cb, listener, NULL);
          g_source_attach (retry, self->context);
          g_source_unref (retry);
          return; /* the retry keeps the reference */
        }
      g_object_unref (self);
      return;
    }

  if (listener->transport == LBD_RELAY_TRANSPORT_UNIX)
    {
      g_autoptr(GCredentials) credentials = NULL;
      g_autoptr(GError) peer_error = NULL;

      credentials = g_socket_get_credentials (g_socket_connection_get_socket (connection),
                                              &peer_error);
      if (credentials == NULL || !lbd_relay_check_peer (credentials, getuid (), &peer_error))
        {
          g_message ("Relay refused a client of its socket: %s", peer_error->message);
          refuse (connection, "421 4.7.0 This relay serves only its owner\r\n");
          accept_next (listener);
          g_object_unref (self);
          return;
        }
    }

  if (listener->n_sessions >= self->max_connections)
    {
      g_debug ("Relay turned a client away: %u connections", listener->n_sessions);
      refuse (connection, "421 4.3.2 Too many connections, try again later\r\n");
      accept_next (listener);
      g_object_unref (self);
      return;
    }

  config.transport = listener->transport;
  config.hostname = self->hostname;
  config.user_name = g_get_user_name ();
  config.secret = self->secret;
  config.size_limit = self->size_limit;
  config.max_recipients = self->max_recipients;
  config.idle_timeout = self->idle_timeout;
  config.command_timeout = self->command_timeout;
  config.data_timeout = self->data_timeout;
  config.sink = self->sink;
  config.sink_data = self->sink_data;
  session = lbd_relay_session_new (G_IO_STREAM (connection), &config);

  listener->n_sessions++;
  g_atomic_int_inc (&self->n_sessions);
  data = g_new0 (SessionData, 1);
  data->server = g_object_ref (self);
  data->listener = listener;
  lbd_relay_session_run_async (session, self->cancellable, session_done_cb, data);

  accept_next (listener);
  g_object_unref (self);
}

static void
accept_next (Listener *listener)
{
  LbdRelayServer *self = listener->server;

  if (listener->listener == NULL || g_cancellable_is_cancelled (self->cancellable))
    return;
  /* Each accept in flight holds the server; stop() cancels them. */
  g_object_ref (self);
  g_socket_listener_accept_async (listener->listener, self->cancellable, accept_cb, listener);
}

static gboolean
socket_dir_prepare (const char  *dir,
                    GError     **error)
{
  struct stat st;

  if (g_mkdir_with_parents (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot create %s: %s"), dir, g_strerror (saved));
      return FALSE;
    }
  if (lstat (dir, &st) != 0 || !S_ISDIR (st.st_mode) || st.st_uid != getuid ())
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_UNSAFE,
                   _("%s is not a directory of yours; the relay will not put its socket there"),
                   dir);
      return FALSE;
    }
  if ((st.st_mode & 07777) != 0700 && chmod (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_UNSAFE,
                   _("Cannot make %s private: %s"), dir, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

/* A socket file left by a relay that died is removed; one somebody listens on is not. */
static gboolean
socket_path_claim (const char  *path,
                   GError     **error)
{
  g_autoptr(GSocket) probe = NULL;
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GError) connect_error = NULL;
  struct stat st;

  if (lstat (path, &st) != 0)
    return TRUE;
  if (!S_ISSOCK (st.st_mode))
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_IN_USE,
                   _("%s exists and is not a socket"), path);
      return FALSE;
    }

  probe = g_socket_new (G_SOCKET_FAMILY_UNIX, G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT,
                        error);
  if (probe == NULL)
    return FALSE;
  address = g_unix_socket_address_new (path);
  if (g_socket_connect (probe, address, NULL, &connect_error))
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_IN_USE,
                   _("Another relay is already listening on %s"), path);
      return FALSE;
    }
  if (!g_error_matches (connect_error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED))
    {
      g_set_error (error, LBD_RELAY_ERROR, LBD_RELAY_ERROR_IN_USE,
                   _("Cannot tell whether %s is in use: %s"), path, connect_error->message);
      return FALSE;
    }
  g_debug ("Removing the stale socket %s", path);
  if (g_unlink (path) != 0 && errno != ENOENT)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved),
                   _("Cannot remove the stale socket %s: %s"), path, g_strerror (saved));
      return FALSE;
    }
  return TRUE;
}

static gboolean
unix_listen (LbdRelayServer  *self,
             GError         **error)
{
  g_autofree char *dir = g_path_get_dirname (self->socket_path);
  g_autoptr(GSocketAddress) address = NULL;
  struct stat st;

  if (!socket_dir_prepare (dir, error) || !socket_path_claim (self->socket_path, error))
    return FALSE;

  address = g_unix_socket_address_new (self->socket_path);
  self->unix_listener.listener = g_socket_listener_new ();
  g_socket_listener_set_backlog (self->unix_listener.listener, LISTEN_BACKLOG);
  if (!g_socket_listener_add_address (self->unix_listener.listener, address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_DEFAULT, NULL,
                                      NULL, error))
    {
      g_clear_object (&self->unix_listener.listener);
      return FALSE;
    }
  /* The directory already keeps others out; the socket's own mode says so too. */
  if (chmod (self->socket_path, 0600) != 0 || lstat (self->socket_path, &st) != 0)
    {
      int saved = errno;

      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (saved), "%s: %s",
                   self->socket_path, g_strerror (saved));
      return FALSE;
    }
  self->socket_dev = st.st_dev;
  self->socket_ino = st.st_ino;
  return TRUE;
}

static gboolean
tcp_listen (LbdRelayServer  *self,
            GError         **error)
{
  g_autoptr(GInetAddress) loopback = g_inet_address_new_loopback (G_SOCKET_FAMILY_IPV4);
  g_autoptr(GSocketAddress) address = NULL;
  g_autoptr(GSocketAddress) effective = NULL;

  address = g_inet_socket_address_new (loopback, (guint16) self->tcp_port);
  if (self->secret == NULL)
    {
      self->secret = lbd_relay_secret_load_or_create (self->secret_path, NULL, error);
      if (self->secret == NULL)
        return FALSE;
    }

  self->tcp_listener.listener = g_socket_listener_new ();
  g_socket_listener_set_backlog (self->tcp_listener.listener, LISTEN_BACKLOG);
  if (!g_socket_listener_add_address (self->tcp_listener.listener, address,
                                      G_SOCKET_TYPE_STREAM, G_SOCKET_PROTOCOL_TCP, NULL,
                                      &effective, error))
    {
      g_clear_object (&self->tcp_listener.listener);
      return FALSE;
    }
  self->bound_port = g_inet_socket_address_get_port (G_INET_SOCKET_ADDRESS (effective));
  return TRUE;
}

/**
 * lbd_relay_server_start:
 *
 * Listens on the Unix socket and on 127.0.0.1 (as enabled) and starts accepting, in the
 * calling thread's thread-default main context. The socket's directory is made 0700; a
 * stale socket is replaced, a live one is %LBD_RELAY_ERROR_IN_USE; a TCP port in use is
 * %G_IO_ERROR_ADDRESS_IN_USE. On error nothing listens.
 */
gboolean
lbd_relay_server_start (LbdRelayServer  *self,
                        GError         **error)
{
  g_return_val_if_fail (LBD_IS_RELAY_SERVER (self), FALSE);
  g_return_val_if_fail (!self->started, FALSE);

  g_clear_object (&self->cancellable);
  self->cancellable = g_cancellable_new ();
  g_clear_pointer (&self->context, g_main_context_unref);
  self->context = g_main_context_ref_thread_default ();

  if ((self->unix_enabled && !unix_listen (self, error)) ||
      (self->tcp_enabled && !tcp_listen (self, error)))
    {
      self->started = TRUE;
      lbd_relay_server_stop (self);
      return FALSE;
    }
  self->started = TRUE;

  if (self->unix_listener.listener != NULL)
    {
      g_message ("Relay listening on %s", self->socket_path);
      accept_next (&self->unix_listener);
    }
  if (self->tcp_listener.listener != NULL)
    {
      g_message ("Relay listening on 127.0.0.1:%u", self->bound_port);
      accept_next (&self->tcp_listener);
    }
  return TRUE;
}

/**
 * lbd_relay_server_stop:
 *
 * Stops listening (removing the socket file if it is still the one made at start) and
 * closes every connection; a message with the sink stays with it. Call in the server's
 * thread. Idempotent.
 */
void
lbd_relay_server_stop (LbdRelayServer *self)
{
  struct stat st;

  g_return_if_fail (LBD_IS_RELAY_SERVER (self));

  if (!self->started)
    return;
  self->started = FALSE;
  g_cancellable_cancel (self->cancellable);

  if (self->unix_listener.listener != NULL)
    {
      g_socket_listener_close (self->unix_listener.listener);
      g_clear_object (&self->unix_listener.listener);
      if (self->socket_ino != 0 && lstat (self->socket_path, &st) == 0 &&
          st.st_dev == self->socket_dev && st.st_ino == self->socket_ino)
        g_unlink (self->socket_path);
      self->socket_ino = 0;
    }
  if (self->tcp_listener.listener != NULL)
    {
      g_socket_listener_close (self->tcp_listener.listener);
      g_clear_object (&self->tcp_listener.listener);
    }
}

const char *
lbd_relay_server_get_socket_path (LbdRelayServer *self)
{
  g_return_val_if_fail (LBD_IS_RELAY_SERVER (self), NULL);

  return self->socket_path;
}

/**
 * lbd_relay_server_get_tcp_port:
 *
 * Returns: the port the TCP listener is bound to, 0 when it is not listening
 */
guint16
lbd_relay_server_get_tcp_port (LbdRelayServer *self)
{
  g_return_val_if_fail (LBD_IS_RELAY_SERVER (self), 0);

  return self->tcp_listener.listener != NULL ? self->bound_port : 0;
}

/**
 * lbd_relay_server_get_n_sessions:
 *
 * Returns: the connections being served now (not those turned away); may be called
 *   from any thread
 */
guint
lbd_relay_server_get_n_sessions (LbdRelayServer *self)
{
  g_return_val_if_fail (LBD_IS_RELAY_SERVER (self), 0);

  return (guint) g_atomic_int_get (&self->n_sessions);
}
