/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-net"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-connection.h"

/*
 * One connection to a mail server: TCP, then TLS from the first byte or after the
 * protocol's STARTTLS (RFC 8314), optionally COMPRESS=DEFLATE (RFC 4978) on top. It
 * verifies certificates through GIO's TLS backend, or accepts one certificate the user
 * trusted by its SHA-256 fingerprint, or a private CA file. Reads hand back whatever
 * bytes arrived (protocol parsers are incremental); writes go through a queue, so callers
 * may pipeline commands without waiting. Every operation is async with a GCancellable,
 * and its callback runs in the caller's thread-default main context.
 */

#define READ_BUFFER_SIZE (64 * 1024)

struct _LbConnection
{
  GObject parent_instance;

  char *host;
  guint16 port;
  LbNetSecurity security;
  char *trusted_fingerprint; /* upper-case hex with colons */
  GTlsDatabase *database;
  guint connect_timeout;
  guint read_timeout;

  GSocketConnection *socket;
  GIOStream *stream;
  GInputStream *in;
  GOutputStream *out;
  gboolean encrypted;
  gboolean compressed;
  GTlsCertificate *peer_certificate;
  GTlsCertificateFlags peer_errors;

  guint8 *read_buffer;
  gboolean reading;
  GQueue writes;
  gboolean writing;
  gboolean closed;
  /* A stream switch asked for while the last write before it was still going out: it
   * happens as soon as that write is done, before any later one starts. */
  GTask *pending_tls;
  GOutputStream *pending_out;
};

G_DEFINE_FINAL_TYPE (LbConnection, lb_connection, G_TYPE_OBJECT)

G_DEFINE_QUARK (lb-net-error-quark, lb_net_error)

static void
lb_connection_finalize (GObject *object)
{
  LbConnection *self = LB_CONNECTION (object);

  g_assert (g_queue_is_empty (&self->writes));
  g_free (self->host);
  g_free (self->trusted_fingerprint);
  g_clear_object (&self->database);
  g_clear_object (&self->in);
  g_clear_object (&self->out);
  g_clear_object (&self->pending_out);
  g_clear_object (&self->stream);
  g_clear_object (&self->socket);
  g_clear_object (&self->peer_certificate);
  g_free (self->read_buffer);

  G_OBJECT_CLASS (lb_connection_parent_class)->finalize (object);
}

static void
lb_connection_class_init (LbConnectionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lb_connection_finalize;
}

static void
lb_connection_init (LbConnection *self)
{
  self->connect_timeout = 30;
  self->read_timeout = 120;
  self->read_buffer = g_malloc (READ_BUFFER_SIZE);
  g_queue_init (&self->writes);
}

LbConnection *
lb_connection_new (const char    *host,
                   guint16        port,
                   LbNetSecurity  security)
{
  LbConnection *self;

  g_return_val_if_fail (host != NULL, NULL);

  self = g_object_new (LB_TYPE_CONNECTION, NULL);
  self->host = g_strdup (host);
  self->port = port;
  self->security = security;
  return self;
}

/* "ab:CD…", "abcd…" → "AB:CD:…", or NULL when it is not 32 bytes of hex. */
static char *
normalize_fingerprint (const char *text)
{
  GString *out = g_string_new (NULL);
  guint digits = 0;

  for (const char *p = text; *p != '\0'; p++)
    {
      if (*p == ':' || *p == ' ')
        continue;
      if (!g_ascii_isxdigit (*p))
        {
          g_string_free (out, TRUE);
          return NULL;
        }
      if (digits > 0 && digits % 2 == 0)
        g_string_append_c (out, ':');
      g_string_append_c (out, g_ascii_toupper (*p));
      digits++;
    }
  if (digits != 64)
    {
      g_string_free (out, TRUE);
      return NULL;
    }
  return g_string_free (out, FALSE);
}

/**
 * lb_connection_set_trusted_fingerprint:
 * @sha256: (nullable): the SHA-256 fingerprint of the one certificate to accept even
 *   though it does not verify (a self-signed server the user chose to trust)
 */
void
lb_connection_set_trusted_fingerprint (LbConnection *self,
                                       const char   *sha256)
{
  g_return_if_fail (LB_IS_CONNECTION (self));

  g_free (self->trusted_fingerprint);
  self->trusted_fingerprint = sha256 != NULL ? normalize_fingerprint (sha256) : NULL;
}

/**
 * lb_connection_set_ca_file:
 * @path: (nullable): PEM file of the authorities to trust instead of the system's
 */
gboolean
lb_connection_set_ca_file (LbConnection  *self,
                           const char    *path,
                           GError       **error)
{
  g_autoptr(GError) local = NULL;

  g_return_val_if_fail (LB_IS_CONNECTION (self), FALSE);

  g_clear_object (&self->database);
  if (path == NULL)
    return TRUE;
  self->database = g_tls_file_database_new (path, &local);
  if (self->database == NULL)
    {
      g_set_error (error, LB_NET_ERROR, LB_NET_ERROR_TLS,
                   _("Could not read the certificate authorities in “%s”: %s"), path,
                   local->message);
      return FALSE;
    }
  return TRUE;
}

void
lb_connection_set_timeouts (LbConnection *self,
                            guint         connect_seconds,
                            guint         read_seconds)
{
  g_return_if_fail (LB_IS_CONNECTION (self));

  self->connect_timeout = connect_seconds;
  lb_connection_set_read_timeout (self, read_seconds);
}

/**
 * lb_connection_set_read_timeout:
 * @seconds: how long a read may wait for data (0: for ever), e.g. longer during IMAP IDLE
 */
void
lb_connection_set_read_timeout (LbConnection *self,
                                guint         seconds)
{
  g_return_if_fail (LB_IS_CONNECTION (self));

  self->read_timeout = seconds;
  if (self->socket != NULL)
    g_socket_set_timeout (g_socket_connection_get_socket (self->socket), seconds);
}

const char *
lb_connection_get_host (LbConnection *self)
{
  return self->host;
}

guint16
lb_connection_get_port (LbConnection *self)
{
  return self->port;
}

LbNetSecurity
lb_connection_get_security (LbConnection *self)
{
  return self->security;
}

gboolean
lb_connection_is_encrypted (LbConnection *self)
{
  return self->encrypted;
}

gboolean
lb_connection_is_compressed (LbConnection *self)
{
  return self->compressed;
}

/**
 * lb_connection_is_loopback:
 *
 * Returns: whether the server is on this machine (the only place credentials may go
 *   without TLS)
 */
gboolean
lb_connection_is_loopback (LbConnection *self)
{
  g_autoptr(GSocketAddress) remote = NULL;

  if (self->socket == NULL)
    return FALSE;
  remote = g_socket_connection_get_remote_address (self->socket, NULL);
  if (!G_IS_INET_SOCKET_ADDRESS (remote))
    return FALSE;
  return g_inet_address_get_is_loopback (
    g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (remote)));
}

/**
 * lb_connection_dup_local_address_literal:
 *
 * Returns: (transfer full) (nullable): this end's address as an SMTP address literal
 *   ("[192.0.2.1]", "[IPv6:2001:db8::1]", RFC 5321 §4.1.3), for EHLO without telling the
 *   server this machine's name
 */
char *
lb_connection_dup_local_address_literal (LbConnection *self)
{
  g_autoptr(GSocketAddress) local = NULL;
  g_autofree char *text = NULL;
  GInetAddress *address;

  if (self->socket == NULL)
    return NULL;
  local = g_socket_connection_get_local_address (self->socket, NULL);
  if (!G_IS_INET_SOCKET_ADDRESS (local))
    return NULL;
  address = g_inet_socket_address_get_address (G_INET_SOCKET_ADDRESS (local));
  text = g_inet_address_to_string (address);
  if (g_inet_address_get_family (address) == G_SOCKET_FAMILY_IPV6)
    return g_strdup_printf ("[IPv6:%s]", text);
  return g_strdup_printf ("[%s]", text);
}

/**
 * lb_connection_get_peer_certificate:
 *
 * Returns: (transfer none) (nullable): the server's certificate, also after a failed
 *   verification, so that the user can be shown what to accept
 */
GTlsCertificate *
lb_connection_get_peer_certificate (LbConnection *self)
{
  return self->peer_certificate;
}

GTlsCertificateFlags
lb_connection_get_peer_certificate_errors (LbConnection *self)
{
  return self->peer_errors;
}

char *
lb_certificate_dup_fingerprint (GTlsCertificate *certificate)
{
  g_autoptr(GByteArray) der = NULL;
  g_autofree char *hex = NULL;

  g_return_val_if_fail (G_IS_TLS_CERTIFICATE (certificate), NULL);

  g_object_get (certificate, "certificate", &der, NULL);
  hex = g_compute_checksum_for_data (G_CHECKSUM_SHA256, der->data, der->len);
  return normalize_fingerprint (hex);
}

static char *
describe_certificate_errors (GTlsCertificateFlags errors)
{
  g_autoptr(GPtrArray) parts = g_ptr_array_new ();

  if (errors & G_TLS_CERTIFICATE_UNKNOWN_CA)
    g_ptr_array_add (parts, (gpointer) _("it is not signed by a known certificate authority"));
  if (errors & G_TLS_CERTIFICATE_BAD_IDENTITY)
    g_ptr_array_add (parts, (gpointer) _("it was issued for a different host name"));
  if (errors & G_TLS_CERTIFICATE_NOT_ACTIVATED)
    g_ptr_array_add (parts, (gpointer) _("it is not valid yet"));
  if (errors & G_TLS_CERTIFICATE_EXPIRED)
    g_ptr_array_add (parts, (gpointer) _("it has expired"));
  if (errors & G_TLS_CERTIFICATE_REVOKED)
    g_ptr_array_add (parts, (gpointer) _("it has been revoked"));
  if (errors & G_TLS_CERTIFICATE_INSECURE)
    g_ptr_array_add (parts, (gpointer) _("it uses insecure cryptography"));
  if (parts->len == 0)
    g_ptr_array_add (parts, (gpointer) _("it could not be verified"));
  g_ptr_array_add (parts, NULL);
  /* Translators: joins the reasons why a certificate is not trusted. */
  return g_strjoinv (_("; "), (char **) parts->pdata);
}

static GError *
translate_error (LbConnection *self,
                 GError       *error,
                 const char   *doing)
{
  g_autoptr(GError) owned = error;
  int code = LB_NET_ERROR_IO;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED) || error->domain == LB_NET_ERROR)
    return g_steal_pointer (&owned);

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_TIMED_OUT))
    code = LB_NET_ERROR_TIMEOUT;
  else if (error->domain == G_RESOLVER_ERROR ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_REFUSED) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_HOST_UNREACHABLE) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NETWORK_UNREACHABLE) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_HOST_NOT_FOUND))
    code = LB_NET_ERROR_UNREACHABLE;
  else if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_BROKEN_PIPE) ||
           g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED) ||
           g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_EOF))
    code = LB_NET_ERROR_CLOSED;
  else if (error->domain == G_TLS_ERROR)
    code = LB_NET_ERROR_TLS;

  /* Translators: "Could not <connect to|read from|write to> host:port: reason" */
  return g_error_new (LB_NET_ERROR, code, _("Could not %s %s:%u: %s"), doing, self->host,
                      self->port, error->message);
}

static gboolean
accept_certificate_cb (GTlsConnection       *tls,
                       GTlsCertificate      *certificate,
                       GTlsCertificateFlags  errors,
                       gpointer              user_data)
{
  LbConnection *self = user_data;
  g_autofree char *fingerprint = lb_certificate_dup_fingerprint (certificate);

  g_set_object (&self->peer_certificate, certificate);
  self->peer_errors = errors;

  /* The user looked at this very certificate and chose to trust it. */
  return self->trusted_fingerprint != NULL &&
         g_strcmp0 (fingerprint, self->trusted_fingerprint) == 0;
}

static void
set_streams (LbConnection *self,
             GIOStream    *stream)
{
  g_set_object (&self->stream, stream);
  g_set_object (&self->in, g_io_stream_get_input_stream (stream));
  g_set_object (&self->out, g_io_stream_get_output_stream (stream));
}

static void write_next (LbConnection *self);

static void
handshake_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbConnection *self = g_task_get_source_object (task);
  GTlsConnection *tls = G_TLS_CONNECTION (object);
  GError *error = NULL;

  if (!g_tls_connection_handshake_finish (tls, result, &error))
    {
      if (g_error_matches (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE) &&
          self->peer_certificate != NULL)
        {
          g_autofree char *why = describe_certificate_errors (self->peer_errors);
          g_autofree char *fingerprint = lb_certificate_dup_fingerprint (self->peer_certificate);

          g_clear_error (&error);
          g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE,
                                   _("The certificate of %s:%u is not trusted: %s "
                                     "(SHA-256 fingerprint %s)"),
                                   self->host, self->port, why, fingerprint);
        }
      else
        g_task_return_error (task, translate_error (self, error, _("set up TLS with")));
      return;
    }

  g_set_object (&self->peer_certificate, g_tls_connection_get_peer_certificate (tls));
  set_streams (self, G_IO_STREAM (tls));
  self->encrypted = TRUE;
  g_task_return_boolean (task, TRUE);
  /* Writes queued meanwhile go out encrypted. */
  write_next (self);
}

static void
start_handshake (LbConnection *self,
                 GTask        *task)
{
  g_autoptr(GSocketConnectable) identity = g_network_address_new (self->host, self->port);
  g_autoptr(GIOStream) tls = NULL;
  GError *error = NULL;

  tls = g_tls_client_connection_new (G_IO_STREAM (self->socket), identity, &error);
  if (tls == NULL)
    {
      g_task_return_error (task, translate_error (self, error, _("set up TLS with")));
      g_object_unref (task);
      return;
    }
  if (self->database != NULL)
    g_tls_connection_set_database (G_TLS_CONNECTION (tls), self->database);
  g_signal_connect_object (tls, "accept-certificate", G_CALLBACK (accept_certificate_cb), self, 0);
  g_tls_connection_handshake_async (G_TLS_CONNECTION (tls), G_PRIORITY_DEFAULT,
                                    g_task_get_cancellable (task), handshake_cb, task);
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  GTask *task = user_data;
  LbConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->socket = g_socket_client_connect_to_host_finish (G_SOCKET_CLIENT (object), result, &error);
  if (self->socket == NULL)
    {
      g_task_return_error (task, translate_error (self, error, _("connect to")));
      g_object_unref (task);
      return;
    }

  g_socket_set_timeout (g_socket_connection_get_socket (self->socket), self->read_timeout);
  set_streams (self, G_IO_STREAM (self->socket));

  if (self->security == LB_NET_SECURITY_TLS)
    {
      start_handshake (self, task);
      return;
    }
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

void
lb_connection_connect_async (LbConnection        *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  GTask *task;

  g_return_if_fail (LB_IS_CONNECTION (self));
  g_return_if_fail (self->socket == NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_connection_connect_async);
  g_socket_client_set_timeout (client, self->connect_timeout);
  g_socket_client_connect_to_host_async (client, self->host, self->port, cancellable, connect_cb,
                                         task);
}

gboolean
lb_connection_connect_finish (LbConnection  *self,
                              GAsyncResult  *result,
                              GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_connection_start_tls_async:
 *
 * Upgrades the connection to TLS after the protocol agreed to (IMAP STARTTLS, POP3 STLS,
 * SMTP STARTTLS). Nothing may be in flight, and nothing read before may be kept
 * (RFC 3207 §4.2: data sent before the handshake is discarded).
 */
void
lb_connection_start_tls_async (LbConnection        *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_CONNECTION (self));
  g_return_if_fail (self->socket != NULL && !self->encrypted);
  g_return_if_fail (!self->reading && self->pending_tls == NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_connection_start_tls_async);
  /* The STARTTLS command itself may still be on its way out. */
  if (self->writing)
    {
      self->pending_tls = task;
      return;
    }
  start_handshake (self, task);
}

gboolean
lb_connection_start_tls_finish (LbConnection  *self,
                                GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_connection_start_compress:
 *
 * From now on, both directions are raw DEFLATE (RFC 4978). Call it right after the
 * server accepted COMPRESS, with no read in flight; a write still going out (the
 * COMPRESS command itself) finishes uncompressed, and every later one is compressed.
 */
gboolean
lb_connection_start_compress (LbConnection  *self,
                              GError       **error)
{
  g_autoptr(GZlibCompressor) compressor = NULL;
  g_autoptr(GZlibDecompressor) decompressor = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GOutputStream) out = NULL;

  g_return_val_if_fail (LB_IS_CONNECTION (self), FALSE);
  g_return_val_if_fail (!self->compressed && !self->reading, FALSE);

  compressor = g_zlib_compressor_new (G_ZLIB_COMPRESSOR_FORMAT_RAW, -1);
  decompressor = g_zlib_decompressor_new (G_ZLIB_COMPRESSOR_FORMAT_RAW);
  in = g_converter_input_stream_new (self->in, G_CONVERTER (decompressor));
  out = g_converter_output_stream_new (self->out, G_CONVERTER (compressor));
  g_set_object (&self->in, in);
  if (self->writing)
    self->pending_out = g_steal_pointer (&out);
  else
    g_set_object (&self->out, out);
  self->compressed = TRUE;
  return TRUE;
}

static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbConnection *self = g_task_get_source_object (task);
  GError *error = NULL;
  gssize n;

  self->reading = FALSE;
  n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &error);
  if (n < 0)
    g_task_return_error (task, translate_error (self, error, _("read from")));
  else if (n == 0)
    g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                             _("%s:%u closed the connection"), self->host, self->port);
  else
    g_task_return_pointer (task, g_bytes_new (self->read_buffer, (gsize) n),
                           (GDestroyNotify) g_bytes_unref);
}

/**
 * lb_connection_read_async:
 *
 * Reads whatever the server sent next (at most 64 KiB). One read at a time; the end of
 * the stream is an %LB_NET_ERROR_CLOSED error.
 */
void
lb_connection_read_async (LbConnection        *self,
                          GCancellable        *cancellable,
                          GAsyncReadyCallback  callback,
                          gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_CONNECTION (self));
  g_return_if_fail (!self->reading);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_connection_read_async);
  if (self->in == NULL || self->closed)
    {
      g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                               _("The connection to %s:%u is closed"), self->host, self->port);
      g_object_unref (task);
      return;
    }
  self->reading = TRUE;
  g_input_stream_read_async (self->in, self->read_buffer, READ_BUFFER_SIZE, G_PRIORITY_DEFAULT,
                             cancellable, read_cb, task);
}

GBytes *
lb_connection_read_finish (LbConnection  *self,
                           GAsyncResult  *result,
                           GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}


static void
write_done (LbConnection *self,
            GTask        *task,
            GError       *error)
{
  self->writing = FALSE;
  if (self->pending_out != NULL)
    {
      g_clear_object (&self->out);
      self->out = g_steal_pointer (&self->pending_out);
    }
  if (error != NULL)
    g_task_return_error (task, translate_error (self, error, _("write to")));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
  if (self->pending_tls != NULL)
    {
      start_handshake (self, g_steal_pointer (&self->pending_tls));
      return;
    }
  write_next (self);
}

static void
flush_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  g_output_stream_flush_finish (G_OUTPUT_STREAM (object), result, &error);
  write_done (g_task_get_source_object (task), task, error);
}

static void
write_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  LbConnection *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      write_done (self, task, error);
      return;
    }
  /* A compressor holds data back until flushed; the server must see each command whole. */
  if (self->compressed)
    {
      g_output_stream_flush_async (self->out, G_PRIORITY_DEFAULT, g_task_get_cancellable (task),
                                   flush_cb, task);
      return;
    }
  write_done (self, task, NULL);
}

static void
write_next (LbConnection *self)
{
  GTask *task;
  GBytes *data;
  gsize len;
  const guint8 *bytes;

  if (self->writing || (task = g_queue_pop_head (&self->writes)) == NULL)
    return;

  if (g_task_return_error_if_cancelled (task))
    {
      g_object_unref (task);
      write_next (self);
      return;
    }
  if (self->out == NULL || self->closed)
    {
      g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                               _("The connection to %s:%u is closed"), self->host, self->port);
      g_object_unref (task);
      write_next (self);
      return;
    }

  self->writing = TRUE;
  data = g_task_get_task_data (task);
  bytes = g_bytes_get_data (data, &len);
  g_output_stream_write_all_async (self->out, bytes, len, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), write_cb, task);
}

/**
 * lb_connection_write_async:
 * @data: the bytes to send
 *
 * Queues @data behind earlier writes; the callback runs once it is all handed to the
 * kernel. A write cancelled halfway leaves the stream unusable: close the connection.
 */
void
lb_connection_write_async (LbConnection        *self,
                           GBytes              *data,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_CONNECTION (self));
  g_return_if_fail (data != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_connection_write_async);
  g_task_set_task_data (task, g_bytes_ref (data), (GDestroyNotify) g_bytes_unref);
  g_queue_push_tail (&self->writes, task);
  write_next (self);
}

gboolean
lb_connection_write_finish (LbConnection  *self,
                            GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
close_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_io_stream_close_finish (G_IO_STREAM (object), result, NULL);
}

/**
 * lb_connection_close:
 *
 * Closes the connection (sending TLS close_notify in the background). Pending writes
 * fail with %LB_NET_ERROR_CLOSED.
 */
void
lb_connection_close (LbConnection *self)
{
  g_return_if_fail (LB_IS_CONNECTION (self));

  if (self->closed)
    return;
  self->closed = TRUE;
  if (self->stream != NULL)
    g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL, close_cb, NULL);
  if (!self->writing)
    write_next (self);
}
