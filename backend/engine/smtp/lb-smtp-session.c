/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-smtp"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-sasl.h"
#include "lb-smtp-session.h"

/*
 * An SMTP submission client (RFC 6409, RFC 5321) over one LbConnection: the greeting,
 * EHLO (read again after STARTTLS, RFC 3207 §4.2), STARTTLS when the account asks for it
 * (a server without it is an error, never a silent downgrade), AUTH through sasl/ (RFC
 * 4954), then any number of messages, each one transaction:
 *
 *   MAIL FROM (SIZE, BODY=8BITMIME, SMTPUTF8, RET/ENVID) → RCPT TO per recipient
 *   (NOTIFY/ORCPT) → DATA with the message dot-stuffed, or BDAT chunks (RFC 3030)
 *
 * With PIPELINING (RFC 2920) MAIL, every RCPT and DATA go out in one write and the
 * replies are read in order; without it, one command at a time. The message comes from a
 * GInputStream and goes out in chunks of at most CHUNK_SIZE bytes, so its size does not
 * matter to memory. Every refused recipient is reported with the server's reply; the
 * message goes to the others. One operation at a time per session.
 */

#define CHUNK_SIZE (256 * 1024)
#define READ_SIZE (64 * 1024)
/* RFC 4954 §4: AUTH lines may be up to 12288 octets; a longer initial response waits for
 * the server's empty challenge instead. */
#define MAX_AUTH_LINE 12288

G_DEFINE_QUARK (lb-smtp-error-quark, lb_smtp_error)

struct _LbSmtpEnvelope
{
  char *sender;
  GPtrArray *recipients; /* char* */
  GArray *notify;        /* LbSmtpNotify */
  gboolean dsn;
  gboolean return_full;
  char *envelope_id;
};

struct _LbSmtpSession
{
  GObject parent_instance;

  LbConnection *connection;
  LbSmtpReplyParser *parser;
  LbSmtpEhlo *ehlo;
  LbSmtpCapabilities disabled;
  char *helo_name;
  char *greeting;
  gboolean busy;
  gboolean broken;
  gboolean authenticated;
  guint8 *read_buffer;
};

G_DEFINE_FINAL_TYPE (LbSmtpSession, lb_smtp_session, G_TYPE_OBJECT)

/* ---- envelope and result ---------------------------------------------------------- */

LbSmtpEnvelope *
lb_smtp_envelope_new (const char *sender)
{
  LbSmtpEnvelope *envelope = g_new0 (LbSmtpEnvelope, 1);

  envelope->sender = g_strdup (sender != NULL ? sender : "");
  envelope->recipients = g_ptr_array_new_with_free_func (g_free);
  envelope->notify = g_array_new (FALSE, FALSE, sizeof (LbSmtpNotify));
  return envelope;
}

void
lb_smtp_envelope_add_recipient (LbSmtpEnvelope *envelope,
                                const char     *address,
                                LbSmtpNotify    notify)
{
  g_ptr_array_add (envelope->recipients, g_strdup (address));
  g_array_append_val (envelope->notify, notify);
}

/**
 * lb_smtp_envelope_set_dsn:
 * @return_full: a failure report carries the whole message (RET=FULL) rather than its
 *   headers (RET=HDRS)
 * @envelope_id: (nullable): the ENVID the reports will quote
 *
 * Asks for delivery status notifications (RFC 3461) where the server offers DSN.
 */
void
lb_smtp_envelope_set_dsn (LbSmtpEnvelope *envelope,
                          gboolean        return_full,
                          const char     *envelope_id)
{
  envelope->dsn = TRUE;
  envelope->return_full = return_full;
  g_free (envelope->envelope_id);
  envelope->envelope_id = g_strdup (envelope_id);
}

void
lb_smtp_envelope_free (LbSmtpEnvelope *envelope)
{
  if (envelope == NULL)
    return;
  g_free (envelope->sender);
  g_ptr_array_unref (envelope->recipients);
  g_array_unref (envelope->notify);
  g_free (envelope->envelope_id);
  g_free (envelope);
}

static void
recipient_result_free (LbSmtpRecipientResult *r)
{
  g_free (r->address);
  g_free (r->reply);
  g_free (r);
}

void
lb_smtp_send_result_free (LbSmtpSendResult *result)
{
  if (result == NULL)
    return;
  g_ptr_array_unref (result->recipients);
  g_free (result->data_reply);
  g_free (result);
}

/* ---- the session ------------------------------------------------------------------ */

static void
lb_smtp_session_dispose (GObject *object)
{
  LbSmtpSession *self = LB_SMTP_SESSION (object);

  if (self->connection != NULL)
    lb_connection_close (self->connection);
  G_OBJECT_CLASS (lb_smtp_session_parent_class)->dispose (object);
}

static void
lb_smtp_session_finalize (GObject *object)
{
  LbSmtpSession *self = LB_SMTP_SESSION (object);

  g_clear_object (&self->connection);
  lb_smtp_reply_parser_free (self->parser);
  lb_smtp_ehlo_free (self->ehlo);
  g_free (self->helo_name);
  g_free (self->greeting);
  g_free (self->read_buffer);
  G_OBJECT_CLASS (lb_smtp_session_parent_class)->finalize (object);
}

static void
lb_smtp_session_class_init (LbSmtpSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_smtp_session_dispose;
  object_class->finalize = lb_smtp_session_finalize;
}

static void
lb_smtp_session_init (LbSmtpSession *self)
{
  self->parser = lb_smtp_reply_parser_new ();
}

LbSmtpSession *
lb_smtp_session_new (LbConnection *connection)
{
  LbSmtpSession *self;

  g_return_val_if_fail (LB_IS_CONNECTION (connection), NULL);

  self = g_object_new (LB_TYPE_SMTP_SESSION, NULL);
  self->connection = g_object_ref (connection);
  return self;
}

LbConnection *
lb_smtp_session_get_connection (LbSmtpSession *self)
{
  return self->connection;
}

/**
 * lb_smtp_session_set_helo_name:
 *
 * What to call this client in EHLO. By default its address literal, so that the
 * machine's name does not travel in every message's Received header.
 */
void
lb_smtp_session_set_helo_name (LbSmtpSession *self,
                               const char    *name)
{
  g_free (self->helo_name);
  self->helo_name = g_strdup (name);
}

/**
 * lb_smtp_session_set_disabled_capabilities:
 *
 * Extensions the server advertises but that must not be used (a server's quirk, or a
 * test of the paths without them).
 */
void
lb_smtp_session_set_disabled_capabilities (LbSmtpSession      *self,
                                           LbSmtpCapabilities  capabilities)
{
  self->disabled = capabilities;
}

gboolean
lb_smtp_session_has_capability (LbSmtpSession      *self,
                                LbSmtpCapabilities  capability)
{
  if (self->ehlo == NULL || (self->disabled & capability) != 0)
    return FALSE;
  return (self->ehlo->caps & capability) == capability;
}

/**
 * lb_smtp_session_get_size_limit:
 *
 * Returns: the largest message the server takes (SIZE, RFC 1870), 0 when it names none
 */
guint64
lb_smtp_session_get_size_limit (LbSmtpSession *self)
{
  if (!lb_smtp_session_has_capability (self, LB_SMTP_CAP_SIZE))
    return 0;
  return self->ehlo->size_limit;
}

const char *
lb_smtp_session_get_greeting (LbSmtpSession *self)
{
  return self->greeting;
}

gboolean
lb_smtp_session_is_authenticated (LbSmtpSession *self)
{
  return self->authenticated;
}

/* The connection can no longer be trusted or used. */
static void
break_session (LbSmtpSession *self)
{
  self->broken = TRUE;
  lb_connection_close (self->connection);
}

static GError *
reply_error (const LbSmtpReply *reply,
             const char        *what)
{
  g_autofree char *text = lb_smtp_reply_dup_text (reply);

  return g_error_new (LB_SMTP_ERROR,
                      lb_smtp_reply_is_transient (reply) ? LB_SMTP_ERROR_TEMPORARY
                                                         : LB_SMTP_ERROR_PERMANENT,
                      "%s: %s", what, text);
}

static GTask *
new_task (LbSmtpSession       *self,
          gpointer             source_tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

/* Starts an operation: one at a time, and only on a working connection. */
static gboolean
begin (LbSmtpSession *self,
       GTask         *task)
{
  if (self->busy)
    {
      g_critical ("An SMTP session runs one operation at a time");
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               _("Another operation is still running on this connection"));
      g_object_unref (task);
      return FALSE;
    }
  if (self->broken)
    {
      g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                               _("The connection to %s is closed"),
                               lb_connection_get_host (self->connection));
      g_object_unref (task);
      return FALSE;
    }
  self->busy = TRUE;
  return TRUE;
}

/* Ends an operation with @error (taken), closing the connection when it is broken. */
static void
finish_error (GTask  *task,
              GError *error)
{
  LbSmtpSession *self = g_task_get_source_object (task);

  if (error->domain != LB_SMTP_ERROR ||
      error->code == LB_SMTP_ERROR_PROTOCOL || error->code == LB_SMTP_ERROR_INSECURE)
    break_session (self);
  self->busy = FALSE;
  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
finish_ok (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);

  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
wipe_and_free (gpointer data)
{
  memset (data, 0, strlen (data));
  g_free (data);
}

/* Sends a command line. Lines that carry secrets are wiped from memory once sent. */
static void
send_line (LbSmtpSession *self,
           const char    *line,
           gboolean       secret)
{
  gsize len = strlen (line);
  char *copy = g_malloc (len + 3);
  g_autoptr(GBytes) bytes = NULL;

  memcpy (copy, line, len);
  memcpy (copy + len, "\r\n", 3);
  bytes = g_bytes_new_with_free_func (copy, len + 2, secret ? wipe_and_free : g_free, copy);
  lb_connection_write_async (self->connection, bytes, NULL, NULL, NULL);
}

/* ---- reading replies -------------------------------------------------------------- */

typedef struct
{
  guint wanted;
  GPtrArray *replies; /* LbSmtpReply* */
} ReadReplies;

static void
read_replies_free (ReadReplies *r)
{
  g_ptr_array_unref (r->replies);
  g_free (r);
}

static void read_more (GTask *task);

static gboolean
take_ready (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  ReadReplies *r = g_task_get_task_data (task);
  LbSmtpReply *reply;

  while (r->replies->len < r->wanted && (reply = lb_smtp_reply_parser_pop (self->parser)) != NULL)
    g_ptr_array_add (r->replies, reply);
  if (r->replies->len < r->wanted)
    return FALSE;
  g_task_return_pointer (task, g_ptr_array_ref (r->replies), (GDestroyNotify) g_ptr_array_unref);
  g_object_unref (task);
  return TRUE;
}

static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  gsize len;
  const guint8 *data;

  bytes = lb_connection_read_finish (LB_CONNECTION (object), result, &error);
  if (bytes == NULL)
    {
      ReadReplies *r = g_task_get_task_data (task);
      LbSmtpReply *reply;

      /* A server that closes the connection usually said why first (421, RFC 5321
       * §3.8): that reply, not "connection closed", is the error. */
      while ((reply = lb_smtp_reply_parser_pop (self->parser)) != NULL)
        g_ptr_array_add (r->replies, reply);
      for (guint i = 0; i < r->replies->len; i++)
        if (((LbSmtpReply *) g_ptr_array_index (r->replies, i))->code == 421)
          {
            g_clear_error (&error);
            error = reply_error (g_ptr_array_index (r->replies, i),
                                 _("The server closed the connection"));
            break_session (self);
            break;
          }
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  data = g_bytes_get_data (bytes, &len);
  if (!lb_smtp_reply_parser_feed (self->parser, data, len, &error))
    {
      GError *wrapped = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL, "%s",
                                     error->message);

      g_error_free (error);
      g_task_return_error (task, wrapped);
      g_object_unref (task);
      return;
    }
  if (!take_ready (task))
    read_more (task);
}

static void
read_more (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);

  lb_connection_read_async (self->connection, g_task_get_cancellable (task), read_cb, task);
}

/* Reads the next @count replies (commands were pipelined: they answer in order). */
static void
read_replies_async (LbSmtpSession       *self,
                    guint                count,
                    GCancellable        *cancellable,
                    GAsyncReadyCallback  callback,
                    gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  ReadReplies *r = g_new0 (ReadReplies, 1);

  r->wanted = count;
  r->replies = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_smtp_reply_free);
  g_task_set_task_data (task, r, (GDestroyNotify) read_replies_free);
  if (!take_ready (task))
    read_more (task);
}

static GPtrArray *
read_replies_finish (LbSmtpSession  *self,
                     GAsyncResult   *result,
                     GError        **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

#define REPLY(replies, i) ((LbSmtpReply *) g_ptr_array_index ((replies), (i)))

/* ---- connect: greeting, EHLO, STARTTLS -------------------------------------------- */

typedef enum
{
  CONNECT_GREETING,
  CONNECT_EHLO,
  CONNECT_HELO,
  CONNECT_STARTTLS,
  CONNECT_EHLO_AGAIN,
} ConnectStep;

static void connect_replies_cb (GObject *object, GAsyncResult *result, gpointer user_data);

/* A session that failed to connect is no use for anything else. */
static void
connect_fail (GTask  *task,
              GError *error)
{
  break_session (g_task_get_source_object (task));
  finish_error (task, error);
}

static void
send_ehlo (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  g_autofree char *line = NULL;
  g_autofree char *literal = NULL;
  const char *name = self->helo_name;

  if (name == NULL)
    {
      literal = lb_connection_dup_local_address_literal (self->connection);
      name = literal != NULL ? literal : "[127.0.0.1]";
    }
  line = g_strdup_printf ("EHLO %s", name);
  send_line (self, line, FALSE);
  read_replies_async (self, 1, g_task_get_cancellable (task), connect_replies_cb, task);
}

static void
starttls_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  if (!lb_connection_start_tls_finish (LB_CONNECTION (object), result, &error))
    {
      finish_error (task, error);
      return;
    }
  g_task_set_task_data (task, GUINT_TO_POINTER (CONNECT_EHLO_AGAIN), NULL);
  send_ehlo (task);
}

static gboolean
need_starttls (LbSmtpSession *self)
{
  return lb_connection_get_security (self->connection) == LB_NET_SECURITY_STARTTLS &&
         !lb_connection_is_encrypted (self->connection);
}

static void
connect_replies_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  ConnectStep step = GPOINTER_TO_UINT (g_task_get_task_data (task));
  g_autoptr(GPtrArray) replies = NULL;
  LbSmtpReply *reply;
  GError *error = NULL;

  replies = read_replies_finish (self, result, &error);
  if (replies == NULL)
    {
      connect_fail (task, error);
      return;
    }
  reply = REPLY (replies, 0);

  switch (step)
    {
    case CONNECT_GREETING:
      if (reply->code != 220)
        {
          /* 554: this server does not take mail from us (RFC 5321 §3.1). */
          error = reply_error (reply, _("The server refused the connection"));
          send_line (self, "QUIT", FALSE);
          connect_fail (task, error);
          return;
        }
      self->greeting = lb_smtp_reply_dup_text (reply);
      g_task_set_task_data (task, GUINT_TO_POINTER (CONNECT_EHLO), NULL);
      send_ehlo (task);
      return;

    case CONNECT_EHLO:
    case CONNECT_EHLO_AGAIN:
      if (reply->code == 250)
        {
          lb_smtp_ehlo_free (self->ehlo);
          self->ehlo = lb_smtp_ehlo_parse (reply, &error);
          if (self->ehlo == NULL)
            {
              GError *wrapped = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL, "%s",
                                             error->message);
              g_error_free (error);
              connect_fail (task, wrapped);
              return;
            }
        }
      else if (step == CONNECT_EHLO && reply->code >= 500 && reply->code <= 504 &&
               !need_starttls (self))
        {
          /* An RFC 821 server: HELO, and no extensions (RFC 5321 §3.2). */
          g_autofree char *literal = lb_connection_dup_local_address_literal (self->connection);
          g_autofree char *line = g_strdup_printf ("HELO %s",
                                                   self->helo_name != NULL ? self->helo_name :
                                                   literal != NULL ? literal : "[127.0.0.1]");

          g_task_set_task_data (task, GUINT_TO_POINTER (CONNECT_HELO), NULL);
          send_line (self, line, FALSE);
          read_replies_async (self, 1, g_task_get_cancellable (task), connect_replies_cb, task);
          return;
        }
      else
        {
          connect_fail (task, reply_error (reply, _("The server did not accept EHLO")));
          return;
        }
      break;

    case CONNECT_HELO:
      if (reply->code != 250)
        {
          connect_fail (task, reply_error (reply, _("The server did not accept HELO")));
          return;
        }
      lb_smtp_ehlo_free (self->ehlo);
      self->ehlo = g_new0 (LbSmtpEhlo, 1);
      self->ehlo->auth_mechanisms = g_new0 (char *, 1);
      break;

    case CONNECT_STARTTLS:
      if (reply->code != 220)
        {
          connect_fail (task, g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_INSECURE,
                                           _("%s refused STARTTLS (%u); Letterbox will not go "
                                             "on without encryption"),
                                           lb_connection_get_host (self->connection),
                                           reply->code));
          return;
        }
      /* Anything after the reply came before encryption: an injection (RFC 3207 §6). */
      if (!lb_smtp_reply_parser_is_empty (self->parser))
        {
          connect_fail (task, g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL,
                                           _("%s sent data after agreeing to STARTTLS; the "
                                             "connection may have been tampered with"),
                                           lb_connection_get_host (self->connection)));
          return;
        }
      lb_connection_start_tls_async (self->connection, g_task_get_cancellable (task),
                                     starttls_cb, task);
      return;

    default:
      g_assert_not_reached ();
    }

  if (need_starttls (self))
    {
      if (!lb_smtp_session_has_capability (self, LB_SMTP_CAP_STARTTLS))
        {
          send_line (self, "QUIT", FALSE);
          connect_fail (task, g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_INSECURE,
                                           _("%s does not offer STARTTLS; Letterbox will not "
                                             "send a password or mail to it unencrypted"),
                                           lb_connection_get_host (self->connection)));
          return;
        }
      g_task_set_task_data (task, GUINT_TO_POINTER (CONNECT_STARTTLS), NULL);
      send_line (self, "STARTTLS", FALSE);
      read_replies_async (self, 1, g_task_get_cancellable (task), connect_replies_cb, task);
      return;
    }
  finish_ok (task);
}

static void
connection_connect_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!lb_connection_connect_finish (LB_CONNECTION (object), result, &error))
    {
      connect_fail (task, error);
      return;
    }
  read_replies_async (self, 1, g_task_get_cancellable (task), connect_replies_cb, task);
}

/**
 * lb_smtp_session_connect_async:
 *
 * Connects, reads the greeting, says EHLO, and with %LB_NET_SECURITY_STARTTLS upgrades
 * the connection and says EHLO again. Then the session is ready to log in or send.
 */
void
lb_smtp_session_connect_async (LbSmtpSession       *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_SMTP_SESSION (self));

  task = new_task (self, lb_smtp_session_connect_async, cancellable, callback, user_data);
  if (!begin (self, task))
    return;
  g_task_set_task_data (task, GUINT_TO_POINTER (CONNECT_GREETING), NULL);
  lb_connection_connect_async (self->connection, cancellable, connection_connect_cb, task);
}

gboolean
lb_smtp_session_connect_finish (LbSmtpSession  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- AUTH ------------------------------------------------------------------------- */

typedef struct
{
  LbSasl *sasl;
  gboolean initial_pending; /* the initial response did not fit on the AUTH line */
  GError *cancelled_with;   /* our side gave up ("*"); this is why */
} Login;

static void
login_free (Login *login)
{
  lb_sasl_free (login->sasl);
  g_clear_error (&login->cancelled_with);
  g_free (login);
}

static void
wipe_string (char *s)
{
  if (s != NULL)
    memset (s, 0, strlen (s));
}

static void
login_reply_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  Login *login = g_task_get_task_data (task);
  g_autoptr(GPtrArray) replies = NULL;
  g_autofree char *response = NULL;
  LbSmtpReply *reply;
  GError *error = NULL;

  replies = read_replies_finish (self, result, &error);
  if (replies == NULL)
    {
      finish_error (task, error);
      return;
    }
  reply = REPLY (replies, 0);

  if (login->cancelled_with != NULL)
    {
      /* The reply to "*" (501): the exchange is over either way. */
      finish_error (task, g_steal_pointer (&login->cancelled_with));
      return;
    }

  if (reply->code == 235)
    {
      self->authenticated = TRUE;
      finish_ok (task);
      return;
    }

  if (reply->code == 334)
    {
      const char *challenge = reply->lines->len > 0 ? g_ptr_array_index (reply->lines, 0) : "";
      gboolean ok;

      if (login->initial_pending)
        {
          login->initial_pending = FALSE;
          ok = lb_sasl_step (login->sasl, NULL, &response, &error);
        }
      else
        ok = lb_sasl_step (login->sasl, challenge, &response, &error);
      if (!ok)
        {
          /* RFC 4954 §4: "*" cancels the exchange. */
          login->cancelled_with = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL,
                                               _("Logging in to %s failed: %s"),
                                               lb_connection_get_host (self->connection),
                                               error->message);
          g_error_free (error);
          send_line (self, "*", FALSE);
        }
      else
        {
          send_line (self, response, TRUE);
          wipe_string (response);
        }
      read_replies_async (self, 1, g_task_get_cancellable (task), login_reply_cb, task);
      return;
    }

  {
    g_autofree char *text = lb_smtp_reply_dup_text (reply);
    LbSmtpError code;

    /* 535 bad credentials, 534 a stronger mechanism required, 538 encryption required;
     * 454 and the other 4xx are temporary (RFC 4954 §6). */
    if (reply->code == 535 || reply->code == 534 || reply->code == 530)
      code = LB_SMTP_ERROR_AUTH;
    else if (reply->code == 538)
      code = LB_SMTP_ERROR_INSECURE;
    else if (lb_smtp_reply_is_transient (reply))
      code = LB_SMTP_ERROR_TEMPORARY;
    else
      code = LB_SMTP_ERROR_PERMANENT;
    finish_error (task, g_error_new (LB_SMTP_ERROR, code,
                                     _("%s did not accept the login: %s"),
                                     lb_connection_get_host (self->connection), text));
  }
}

/**
 * lb_smtp_session_login_async:
 * @secret_is_token: @secret is an OAuth 2.0 access token, not a password
 *
 * Authenticates with the strongest SASL mechanism both sides know. Nothing that could
 * reveal the secret (PLAIN, LOGIN, a token) is sent unless the connection is encrypted or
 * to this machine; SCRAM is safe either way.
 */
void
lb_smtp_session_login_async (LbSmtpSession       *self,
                             const char          *user,
                             const char          *secret,
                             gboolean             secret_is_token,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_autoptr(GString) line = NULL;
  GTask *task;
  gboolean protected_channel;
  const char *mechanism;
  Login *login;
  GError *error = NULL;

  g_return_if_fail (LB_IS_SMTP_SESSION (self));
  g_return_if_fail (user != NULL && secret != NULL);

  task = new_task (self, lb_smtp_session_login_async, cancellable, callback, user_data);
  if (!begin (self, task))
    return;
  if (self->ehlo == NULL || self->authenticated)
    {
      finish_error (task, g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL,
                                       self->ehlo == NULL ? _("Not connected yet")
                                                          : _("Already logged in")));
      return;
    }

  protected_channel = lb_connection_is_encrypted (self->connection) ||
                      lb_connection_is_loopback (self->connection);
  if (!lb_smtp_session_has_capability (self, LB_SMTP_CAP_AUTH) ||
      self->ehlo->auth_mechanisms[0] == NULL)
    {
      finish_error (task, g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED,
                                       _("%s does not offer logging in here"),
                                       lb_connection_get_host (self->connection)));
      return;
    }
  mechanism = lb_sasl_choose_mechanism ((const char *const *) self->ehlo->auth_mechanisms,
                                        secret_is_token, protected_channel);
  if (mechanism == NULL || (secret_is_token && !protected_channel))
    {
      if (!protected_channel)
        error = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_INSECURE,
                             _("%s offers no way to log in without sending the password "
                               "unencrypted; use TLS"),
                             lb_connection_get_host (self->connection));
      else
        error = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED,
                             _("%s offers no login method Letterbox can use"),
                             lb_connection_get_host (self->connection));
      finish_error (task, error);
      return;
    }

  login = g_new0 (Login, 1);
  g_task_set_task_data (task, login, (GDestroyNotify) login_free);
  login->sasl = lb_sasl_new (mechanism, user, secret, &error);
  if (login->sasl == NULL)
    {
      GError *wrapped = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED, "%s",
                                     error->message);

      g_error_free (error);
      self->busy = FALSE;
      g_task_return_error (task, wrapped);
      g_object_unref (task);
      return;
    }

  line = g_string_new ("AUTH ");
  g_string_append (line, mechanism);
  if (lb_sasl_has_initial_response (login->sasl))
    {
      g_autofree char *initial = NULL;

      if (!lb_sasl_step (login->sasl, NULL, &initial, &error))
        {
          GError *wrapped = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED, "%s",
                                         error->message);

          g_error_free (error);
          self->busy = FALSE;
          g_task_return_error (task, wrapped);
          g_object_unref (task);
          return;
        }
      if (line->len + 1 + strlen (initial) + 2 <= MAX_AUTH_LINE)
        /* RFC 4954 §4: an empty initial response is sent as "=". */
        g_string_append_printf (line, " %s", initial[0] != '\0' ? initial : "=");
      else
        {
          /* Too long for the line: the server's empty challenge asks for it. A new SASL
           * object replays the first step then. */
          lb_sasl_free (login->sasl);
          login->sasl = lb_sasl_new (mechanism, user, secret, NULL);
          login->initial_pending = TRUE;
        }
      wipe_string (initial);
    }
  send_line (self, line->str, TRUE);
  memset (line->str, 0, line->len);
  read_replies_async (self, 1, cancellable, login_reply_cb, task);
}

gboolean
lb_smtp_session_login_finish (LbSmtpSession  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- sending a message ------------------------------------------------------------ */

typedef enum
{
  SEND_PRELOAD,   /* PIPELINING + CHUNKING: reading the first chunk before MAIL */
  SEND_ENVELOPE,  /* waiting for the replies to MAIL, RCPT… (and DATA when pipelined) */
  SEND_MAIL,      /* not pipelined: the reply to MAIL */
  SEND_RCPT,      /* not pipelined: the reply to RCPT number rcpt_index */
  SEND_DATA_CMD,  /* not pipelined: the reply to DATA */
  SEND_BODY,      /* the message is going out */
  SEND_CHUNK_REPLY, /* BDAT without pipelining: the reply to the chunk just sent */
  SEND_FINAL,     /* waiting for the reply to the end of data (and pipelined BDATs) */
  SEND_RSET,      /* after a failed transaction */
} SendStep;

typedef struct
{
  LbSmtpEnvelope *envelope;
  GInputStream *message;
  gint64 size;
  LbSmtpSendResult *result;
  SendStep step;
  gboolean pipelining;
  gboolean chunking;
  guint rcpt_index;
  guint encoder;
  guint8 *buffer;         /* the session's read buffer, lent to this message */
  GByteArray *out;
  gboolean eof;
  guint bdat_outstanding; /* BDAT commands sent whose replies are still to read */
  gboolean mail_accepted;
  gboolean bdat_in_envelope; /* the whole message went as BDAT LAST behind the RCPTs */
  guint extra_replies;    /* replies to read before RSET's (an unwanted DATA's end) */
  gboolean utf8;
  gboolean eight_bit;
  GError *error;          /* why the transaction failed, returned after RSET */
} Send;

static void
send_free (Send *send)
{
  lb_smtp_envelope_free (send->envelope);
  g_clear_object (&send->message);
  lb_smtp_send_result_free (send->result);
  if (send->out != NULL)
    g_byte_array_unref (send->out);
  g_clear_error (&send->error);
  g_free (send);
}

static LbSmtpEnvelope *
envelope_copy (const LbSmtpEnvelope *e)
{
  LbSmtpEnvelope *copy = lb_smtp_envelope_new (e->sender);

  for (guint i = 0; i < e->recipients->len; i++)
    lb_smtp_envelope_add_recipient (copy, g_ptr_array_index (e->recipients, i),
                                    g_array_index (e->notify, LbSmtpNotify, i));
  copy->dsn = e->dsn;
  copy->return_full = e->return_full;
  copy->envelope_id = g_strdup (e->envelope_id);
  return copy;
}

/* An address that can go between < and > on a command line: no line breaks or other
 * controls (they would inject commands), no angle brackets. */
static gboolean
address_usable (const char *address,
                gboolean    may_be_empty)
{
  if (address[0] == '\0')
    return may_be_empty;
  if (strlen (address) > 998 || !g_utf8_validate (address, -1, NULL))
    return FALSE;
  for (const char *p = address; *p != '\0'; p++)
    if ((guchar) *p < 0x20 || *p == 0x7f || *p == '<' || *p == '>' ||
        (*p == ' ' && strchr (address, '"') == NULL))
      return FALSE;
  return TRUE;
}

static gboolean
is_ascii (const char *s)
{
  for (; *s != '\0'; s++)
    if ((guchar) *s >= 0x80)
      return FALSE;
  return TRUE;
}

/* xtext (RFC 3461 §4): printable ASCII but "+" and "=" as is, the rest as +HH. */
static void
append_xtext (GString    *out,
              const char *text)
{
  for (const guchar *p = (const guchar *) text; *p != '\0'; p++)
    {
      if (*p >= '!' && *p <= '~' && *p != '+' && *p != '=')
        g_string_append_c (out, (char) *p);
      else
        g_string_append_printf (out, "+%02X", *p);
    }
}

static char *
mail_line (LbSmtpSession *self,
           Send          *send,
           gboolean       utf8,
           gboolean       eight_bit)
{
  GString *line = g_string_new ("MAIL FROM:<");

  g_string_append (line, send->envelope->sender);
  g_string_append_c (line, '>');
  if (send->size >= 0 && lb_smtp_session_has_capability (self, LB_SMTP_CAP_SIZE))
    g_string_append_printf (line, " SIZE=%" G_GINT64_FORMAT, send->size);
  if (eight_bit && lb_smtp_session_has_capability (self, LB_SMTP_CAP_8BITMIME))
    g_string_append (line, " BODY=8BITMIME");
  if (utf8)
    g_string_append (line, " SMTPUTF8");
  if (send->result->dsn_used)
    {
      g_string_append (line, send->envelope->return_full ? " RET=FULL" : " RET=HDRS");
      if (send->envelope->envelope_id != NULL)
        {
          g_string_append (line, " ENVID=");
          append_xtext (line, send->envelope->envelope_id);
        }
    }
  return g_string_free (line, FALSE);
}

static char *
rcpt_line (Send  *send,
           guint  i)
{
  const char *address = g_ptr_array_index (send->envelope->recipients, i);
  LbSmtpNotify notify = g_array_index (send->envelope->notify, LbSmtpNotify, i);
  GString *line = g_string_new ("RCPT TO:<");

  g_string_append (line, address);
  g_string_append_c (line, '>');
  if (send->result->dsn_used && notify != LB_SMTP_NOTIFY_DEFAULT)
    {
      if (notify & LB_SMTP_NOTIFY_NEVER)
        g_string_append (line, " NOTIFY=NEVER");
      else
        {
          const char *sep = " NOTIFY=";

          if (notify & LB_SMTP_NOTIFY_SUCCESS)
            {
              g_string_append_printf (line, "%sSUCCESS", sep);
              sep = ",";
            }
          if (notify & LB_SMTP_NOTIFY_FAILURE)
            {
              g_string_append_printf (line, "%sFAILURE", sep);
              sep = ",";
            }
          if (notify & LB_SMTP_NOTIFY_DELAY)
            g_string_append_printf (line, "%sDELAY", sep);
        }
      /* ORCPT's rfc822 type is ASCII only (RFC 6533 has utf-8 for the rest). */
      if (is_ascii (address))
        {
          g_string_append (line, " ORCPT=rfc822;");
          append_xtext (line, address);
        }
    }
  return g_string_free (line, FALSE);
}

static void send_replies_cb (GObject *object, GAsyncResult *result, gpointer user_data);
static void body_read_next (GTask *task);

/* The transaction failed with @error (taken): RSET, then report. */
static void
send_fail (GTask  *task,
           GError *error)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);

  g_clear_error (&send->error);
  send->error = error;
  send->step = SEND_RSET;
  send_line (self, "RSET", FALSE);
  read_replies_async (self, 1 + send->extra_replies, g_task_get_cancellable (task),
                      send_replies_cb, task);
}

static void
record_rcpt (Send        *send,
             guint        i,
             LbSmtpReply *reply)
{
  LbSmtpRecipientResult *r = g_new0 (LbSmtpRecipientResult, 1);

  r->address = g_strdup (g_ptr_array_index (send->envelope->recipients, i));
  r->code = reply->code;
  r->accepted = reply->code == 250 || reply->code == 251;
  r->reply = lb_smtp_reply_dup_text (reply);
  if (r->accepted)
    send->result->accepted++;
  g_ptr_array_add (send->result->recipients, r);
}

/* No recipient was taken: the error says why, temporary if any refusal was. */
static GError *
no_recipient_error (Send *send)
{
  gboolean transient = FALSE;
  const char *first = "";

  for (guint i = 0; i < send->result->recipients->len; i++)
    {
      LbSmtpRecipientResult *r = g_ptr_array_index (send->result->recipients, i);

      if (r->code >= 400 && r->code < 500)
        transient = TRUE;
      if (i == 0)
        first = r->reply;
    }
  if (send->result->recipients->len == 1)
    return g_error_new (LB_SMTP_ERROR,
                        transient ? LB_SMTP_ERROR_TEMPORARY : LB_SMTP_ERROR_PERMANENT,
                        _("The server refused the recipient: %s"), first);
  return g_error_new (LB_SMTP_ERROR, transient ? LB_SMTP_ERROR_TEMPORARY : LB_SMTP_ERROR_PERMANENT,
                      _("The server refused all %u recipients; the first: %s"),
                      send->result->recipients->len, first);
}

static void send_envelope (GTask *task);

/* One read buffer per session, kept between messages. */
static guint8 *
session_read_buffer (LbSmtpSession *self)
{
  if (self->read_buffer == NULL)
    self->read_buffer = g_malloc (READ_SIZE);
  return self->read_buffer;
}

/* Room for a chunk, or for the whole message when it is smaller (encoding adds a little:
 * CRs and doubled dots). */
static GByteArray *
out_buffer_new (Send *send)
{
  guint64 room = CHUNK_SIZE + 2 * READ_SIZE;

  if (send->size >= 0 && (guint64) send->size + (guint64) send->size / 8 + 1024 < room)
    room = (guint64) send->size + (guint64) send->size / 8 + 1024;
  return g_byte_array_sized_new ((guint) room);
}
static void body_flush (GTask *task);

static void
start_body (GTask *task)
{
  Send *send = g_task_get_task_data (task);

  send->step = SEND_BODY;
  if (send->buffer == NULL)
    send->buffer = session_read_buffer (g_task_get_source_object (task));
  if (send->out == NULL)
    send->out = out_buffer_new (send);
  if (send->out->len >= CHUNK_SIZE)
    body_flush (task);
  else
    body_read_next (task);
}

static void
body_write_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);
  GError *error = NULL;

  if (!lb_connection_write_finish (LB_CONNECTION (object), result, &error))
    {
      finish_error (task, error);
      return;
    }
  if (send->step == SEND_CHUNK_REPLY)
    {
      read_replies_async (self, 1, g_task_get_cancellable (task), send_replies_cb, task);
      return;
    }
  body_read_next (task);
}

/* Sends what is in send->out: as DATA bytes, or as one BDAT chunk. */
static void
body_flush (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);
  g_autoptr(GBytes) bytes = NULL;

  if (send->chunking)
    {
      g_autofree char *command = g_strdup_printf ("BDAT %u%s\r\n", send->out->len,
                                                  send->eof ? " LAST" : "");
      g_autoptr(GBytes) head = g_bytes_new (command, strlen (command));

      lb_connection_write_async (self->connection, head, NULL, NULL, NULL);
      send->bdat_outstanding++;
      /* Without pipelining every chunk waits for its reply (RFC 3030 §4.2). */
      if (!send->pipelining && !send->eof)
        send->step = SEND_CHUNK_REPLY;
    }
  send->result->bytes_sent += send->out->len;
  bytes = g_byte_array_free_to_bytes (send->out);
  send->out = out_buffer_new (send);
  if (send->eof)
    {
      /* The last of the message: wait for the server's verdict at once, not for the write
       * to be handed to the kernel first (a failed write fails the read as well). */
      lb_connection_write_async (self->connection, bytes, NULL, NULL, NULL);
      send->step = SEND_FINAL;
      read_replies_async (self, send->chunking ? send->bdat_outstanding : 1,
                          g_task_get_cancellable (task), send_replies_cb, task);
      return;
    }
  lb_connection_write_async (self->connection, bytes, g_task_get_cancellable (task),
                             body_write_cb, task);
}

/* A chunk is ready (CHUNK_SIZE bytes, or the message's end). */
static void
body_ready (GTask *task)
{
  Send *send = g_task_get_task_data (task);

  if (send->step == SEND_PRELOAD)
    send_envelope (task);
  else
    body_flush (task);
}

/* Takes one read's outcome (and @error); returns whether to read on. */
static gboolean
body_take (GTask  *task,
           gssize  n,
           GError *error)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);

  if (n < 0)
    {
      /* Mid-message, the server would take whatever ends it as the end: only closing
       * the connection keeps a truncated message from being sent. */
      GError *wrapped;

      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        wrapped = g_error_copy (error);
      else
        wrapped = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID,
                               _("Could not read the message to send: %s"), error->message);
      g_error_free (error);
      break_session (self);
      finish_error (task, wrapped);
      return FALSE;
    }
  if (n == 0)
    {
      send->eof = TRUE;
      lb_smtp_data_encode_finish (&send->encoder, !send->chunking, send->out);
      body_ready (task);
      return FALSE;
    }
  lb_smtp_data_encode (&send->encoder, send->buffer, (gsize) n, !send->chunking, send->out);
  if (send->out->len >= CHUNK_SIZE)
    {
      body_ready (task);
      return FALSE;
    }
  return TRUE;
}

static void
body_read_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &error);
  if (body_take (task, n, error))
    body_read_next (task);
}

static void
body_read_next (GTask *task)
{
  Send *send = g_task_get_task_data (task);

  /* A stream that can say it has data (memory, pipes) is read without a round through
   * the main loop while it has. */
  if (G_IS_POLLABLE_INPUT_STREAM (send->message) &&
      g_pollable_input_stream_can_poll (G_POLLABLE_INPUT_STREAM (send->message)))
    {
      for (;;)
        {
          GError *error = NULL;
          gssize n = g_pollable_input_stream_read_nonblocking (
            G_POLLABLE_INPUT_STREAM (send->message), send->buffer, READ_SIZE,
            g_task_get_cancellable (task), &error);

          if (n < 0 && g_error_matches (error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK))
            {
              g_error_free (error);
              break;
            }
          if (!body_take (task, n, error))
            return;
        }
    }
  g_input_stream_read_async (send->message, send->buffer, READ_SIZE, G_PRIORITY_DEFAULT,
                             g_task_get_cancellable (task), body_read_cb, task);
}

static void
send_done (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);

  self->busy = FALSE;
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* Evaluates the replies to MAIL and RCPTs from @first on; returns FALSE when the
 * transaction is over (send_fail() was called). */
static gboolean
check_envelope_replies (GTask     *task,
                        GPtrArray *replies)
{
  Send *send = g_task_get_task_data (task);
  LbSmtpReply *mail = REPLY (replies, 0);

  if (mail->code != 250)
    {
      g_autofree char *what = g_strdup_printf (_("The server refused the sender <%s>"),
                                               send->envelope->sender);

      send_fail (task, reply_error (mail, what));
      return FALSE;
    }
  send->mail_accepted = TRUE;
  for (guint i = 0; i + 1 < replies->len && i < send->envelope->recipients->len; i++)
    record_rcpt (send, i, REPLY (replies, 1 + i));
  return TRUE;
}

static void
send_replies_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);
  g_autoptr(GPtrArray) replies = NULL;
  GError *error = NULL;

  replies = read_replies_finish (self, result, &error);
  if (replies == NULL && send->step == SEND_RSET)
    {
      /* A server that ends the session with its refusal (421) leaves no one to hear
       * RSET; the refusal is what the caller needs. */
      g_error_free (error);
      break_session (self);
      finish_error (task, g_steal_pointer (&send->error));
      return;
    }
  if (replies == NULL)
    {
      finish_error (task, error);
      return;
    }

  switch (send->step)
    {
    case SEND_ENVELOPE:
      if (!check_envelope_replies (task, replies))
        return;
      if (send->result->accepted == 0)
        {
          /* (A BDAT LAST that went along was refused for want of recipients.) */
          if (!send->chunking && REPLY (replies, replies->len - 1)->code == 354)
            {
              /* A server that opened DATA with no recipient: end it empty. */
              send_line (self, ".", FALSE);
              send->extra_replies = 1;
            }
          send_fail (task, no_recipient_error (send));
          return;
        }
      if (send->bdat_in_envelope)
        {
          LbSmtpReply *reply = REPLY (replies, replies->len - 1);

          send->result->data_reply = lb_smtp_reply_dup_text (reply);
          if (reply->code != 250)
            send_fail (task, reply_error (reply, _("The server refused the message")));
          else
            send_done (task);
          return;
        }
      if (!send->chunking && REPLY (replies, replies->len - 1)->code != 354)
        {
          send_fail (task, reply_error (REPLY (replies, replies->len - 1),
                                        _("The server refused to take the message")));
          return;
        }
      start_body (task);
      return;

    case SEND_MAIL:
      if (!check_envelope_replies (task, replies))
        return;
      send->step = SEND_RCPT;
      send->rcpt_index = 0;
      {
        g_autofree char *line = rcpt_line (send, 0);

        send_line (self, line, FALSE);
      }
      read_replies_async (self, 1, g_task_get_cancellable (task), send_replies_cb, task);
      return;

    case SEND_RCPT:
      record_rcpt (send, send->rcpt_index, REPLY (replies, 0));
      send->rcpt_index++;
      if (send->rcpt_index < send->envelope->recipients->len)
        {
          g_autofree char *line = rcpt_line (send, send->rcpt_index);

          send_line (self, line, FALSE);
          read_replies_async (self, 1, g_task_get_cancellable (task), send_replies_cb, task);
          return;
        }
      if (send->result->accepted == 0)
        {
          send_fail (task, no_recipient_error (send));
          return;
        }
      if (send->chunking)
        {
          start_body (task);
          return;
        }
      send->step = SEND_DATA_CMD;
      send_line (self, "DATA", FALSE);
      read_replies_async (self, 1, g_task_get_cancellable (task), send_replies_cb, task);
      return;

    case SEND_DATA_CMD:
      if (REPLY (replies, 0)->code != 354)
        {
          send_fail (task, reply_error (REPLY (replies, 0),
                                        _("The server refused to take the message")));
          return;
        }
      start_body (task);
      return;

    case SEND_CHUNK_REPLY:
      send->bdat_outstanding--;
      if (REPLY (replies, 0)->code != 250)
        {
          send_fail (task, reply_error (REPLY (replies, 0),
                                        _("The server refused the message")));
          return;
        }
      send->step = SEND_BODY;
      body_read_next (task);
      return;

    case SEND_FINAL:
      for (guint i = 0; i < replies->len; i++)
        if (REPLY (replies, i)->code != 250 || i == replies->len - 1)
          {
            LbSmtpReply *reply = REPLY (replies, i);

            send->result->data_reply = lb_smtp_reply_dup_text (reply);
            if (reply->code != 250)
              {
                send_fail (task, reply_error (reply, _("The server refused the message")));
                return;
              }
            break;
          }
      send_done (task);
      return;

    case SEND_RSET:
      /* Whatever RSET said, the transaction's error is what the caller needs. */
      finish_error (task, g_steal_pointer (&send->error));
      return;

    case SEND_PRELOAD:
    case SEND_BODY:
    default:
      g_assert_not_reached ();
    }
}

/**
 * lb_smtp_session_send_async:
 * @envelope: the sender and recipients (the sender may be "" for a bounce)
 * @message: the message, RFC 5322, read to its end (line ends may be LF or CRLF)
 * @size: its size in bytes if known (for SIZE, RFC 1870), else -1
 * @flags: what the message needs of the server
 *
 * Sends one message. It succeeds when the server took the message for at least one
 * recipient; send_finish() tells which recipients were refused and why. A message over
 * the server's SIZE limit, or needing SMTPUTF8 or 8BITMIME from a server without them,
 * is refused before anything is sent.
 */
void
lb_smtp_session_send_async (LbSmtpSession        *self,
                            const LbSmtpEnvelope *envelope,
                            GInputStream         *message,
                            gint64                size,
                            LbSmtpMessageFlags    flags,
                            GCancellable         *cancellable,
                            GAsyncReadyCallback   callback,
                            gpointer              user_data)
{
  GTask *task;
  Send *send;
  gboolean utf8;
  gboolean eight_bit;
  g_autofree char *line = NULL;
  guint64 limit;

  g_return_if_fail (LB_IS_SMTP_SESSION (self));
  g_return_if_fail (envelope != NULL);
  g_return_if_fail (G_IS_INPUT_STREAM (message));

  task = new_task (self, lb_smtp_session_send_async, cancellable, callback, user_data);
  if (!begin (self, task))
    return;

  send = g_new0 (Send, 1);
  send->envelope = envelope_copy (envelope);
  send->message = g_object_ref (message);
  send->size = size;
  send->result = g_new0 (LbSmtpSendResult, 1);
  send->result->recipients = g_ptr_array_new_with_free_func ((GDestroyNotify) recipient_result_free);
  g_task_set_task_data (task, send, (GDestroyNotify) send_free);

  if (self->ehlo == NULL)
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_PROTOCOL,
                               _("Not connected yet"));
      g_object_unref (task);
      return;
    }

  if (!address_usable (envelope->sender, TRUE))
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID,
                               _("“%s” cannot be used as the sender’s address"),
                               envelope->sender);
      g_object_unref (task);
      return;
    }
  if (envelope->recipients->len == 0)
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID,
                               _("The message has no recipients"));
      g_object_unref (task);
      return;
    }
  utf8 = (flags & LB_SMTP_MESSAGE_UTF8) != 0 || !is_ascii (envelope->sender);
  for (guint i = 0; i < envelope->recipients->len; i++)
    {
      const char *address = g_ptr_array_index (envelope->recipients, i);

      if (!address_usable (address, FALSE))
        {
          self->busy = FALSE;
          g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID,
                                   _("“%s” cannot be used as a recipient’s address"), address);
          g_object_unref (task);
          return;
        }
      if (!is_ascii (address))
        utf8 = TRUE;
    }
  eight_bit = (flags & (LB_SMTP_MESSAGE_8BIT | LB_SMTP_MESSAGE_UTF8)) != 0;

  if (utf8 && !lb_smtp_session_has_capability (self, LB_SMTP_CAP_SMTPUTF8))
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED,
                               _("%s does not accept internationalised addresses or headers "
                                 "(SMTPUTF8); use ASCII addresses for this message"),
                               lb_connection_get_host (self->connection));
      g_object_unref (task);
      return;
    }
  if (eight_bit && !utf8 && !lb_smtp_session_has_capability (self, LB_SMTP_CAP_8BITMIME))
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED,
                               _("%s does not accept 8-bit messages (8BITMIME); the message "
                                 "must be encoded for 7-bit transport"),
                               lb_connection_get_host (self->connection));
      g_object_unref (task);
      return;
    }
  limit = lb_smtp_session_get_size_limit (self);
  if (size >= 0 && limit > 0 && (guint64) size > limit)
    {
      self->busy = FALSE;
      g_task_return_new_error (task, LB_SMTP_ERROR, LB_SMTP_ERROR_TOO_BIG,
                               _("The message is %llu bytes; %s takes at most %llu"),
                               (unsigned long long) size,
                               lb_connection_get_host (self->connection),
                               (unsigned long long) limit);
      g_object_unref (task);
      return;
    }

  send->pipelining = lb_smtp_session_has_capability (self, LB_SMTP_CAP_PIPELINING);
  send->chunking = lb_smtp_session_has_capability (self, LB_SMTP_CAP_CHUNKING);
  send->result->chunked = send->chunking;
  send->result->dsn_used = envelope->dsn && lb_smtp_session_has_capability (self, LB_SMTP_CAP_DSN);
  for (guint i = 0; i < envelope->recipients->len && !send->result->dsn_used; i++)
    if (g_array_index (envelope->notify, LbSmtpNotify, i) != LB_SMTP_NOTIFY_DEFAULT &&
        lb_smtp_session_has_capability (self, LB_SMTP_CAP_DSN))
      send->result->dsn_used = TRUE;

  send->utf8 = utf8;
  send->eight_bit = eight_bit;
  if (send->pipelining && send->chunking)
    {
      /* Read the message first: one that fits in a chunk goes as BDAT LAST in the same
       * write as MAIL and RCPT, one round trip for the whole transaction (RFC 3030 §4.2
       * allows BDAT in a pipelined group). A larger one waits for the RCPT replies, so
       * that nothing big is sent to nobody. */
      send->step = SEND_PRELOAD;
      send->buffer = session_read_buffer (self);
      send->out = out_buffer_new (send);
      body_read_next (task);
      return;
    }
  if (send->pipelining)
    {
      send_envelope (task);
      return;
    }

  line = mail_line (self, send, utf8, eight_bit);
  send->step = SEND_MAIL;
  send_line (self, line, FALSE);
  read_replies_async (self, 1, cancellable, send_replies_cb, task);
}

/* The pipelined group: MAIL, every RCPT, then DATA, or the whole message as BDAT LAST
 * when it was read to its end (RFC 2920 §3.1). */
static void
send_envelope (GTask *task)
{
  LbSmtpSession *self = g_task_get_source_object (task);
  Send *send = g_task_get_task_data (task);
  g_autofree char *line = mail_line (self, send, send->utf8, send->eight_bit);
  g_autoptr(GByteArray) batch = g_byte_array_new ();
  guint replies = 1 + send->envelope->recipients->len;

  g_byte_array_append (batch, (const guint8 *) line, (guint) strlen (line));
  g_byte_array_append (batch, (const guint8 *) "\r\n", 2);
  for (guint i = 0; i < send->envelope->recipients->len; i++)
    {
      g_autofree char *rcpt = rcpt_line (send, i);

      g_byte_array_append (batch, (const guint8 *) rcpt, (guint) strlen (rcpt));
      g_byte_array_append (batch, (const guint8 *) "\r\n", 2);
    }
  if (!send->chunking)
    {
      g_byte_array_append (batch, (const guint8 *) "DATA\r\n", 6);
      replies++;
    }
  else if (send->eof)
    {
      g_autofree char *bdat = g_strdup_printf ("BDAT %u LAST\r\n", send->out->len);

      g_byte_array_append (batch, (const guint8 *) bdat, (guint) strlen (bdat));
      g_byte_array_append (batch, send->out->data, send->out->len);
      send->result->bytes_sent += send->out->len;
      g_byte_array_set_size (send->out, 0);
      send->bdat_in_envelope = TRUE;
      replies++;
    }
  {
    g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (g_steal_pointer (&batch));

    lb_connection_write_async (self->connection, bytes, NULL, NULL, NULL);
  }
  send->step = SEND_ENVELOPE;
  read_replies_async (self, replies, g_task_get_cancellable (task), send_replies_cb, task);
}

/**
 * lb_smtp_session_send_finish:
 * @send_result: (out) (optional) (transfer full): what happened per recipient; also set
 *   on an error once the server answered the envelope
 */
gboolean
lb_smtp_session_send_finish (LbSmtpSession     *self,
                             GAsyncResult      *result,
                             LbSmtpSendResult **send_result,
                             GError           **error)
{
  Send *send;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  send = g_task_get_task_data (G_TASK (result));
  if (send_result != NULL)
    *send_result = (send != NULL && send->result->recipients->len > 0)
                     ? g_steal_pointer (&send->result) : NULL;
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- QUIT ------------------------------------------------------------------------- */

static void
quit_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  LbSmtpSession *self = g_task_get_source_object (task);
  g_autoptr(GPtrArray) replies = NULL;
  GError *error = NULL;

  replies = read_replies_finish (self, result, &error);
  self->busy = FALSE;
  break_session (self);
  if (replies == NULL)
    g_task_return_error (task, error);
  else if (REPLY (replies, 0)->code != 221)
    g_task_return_error (task, reply_error (REPLY (replies, 0), _("QUIT was refused")));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/**
 * lb_smtp_session_quit_async:
 *
 * Says goodbye and closes the connection.
 */
void
lb_smtp_session_quit_async (LbSmtpSession       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_SMTP_SESSION (self));

  task = new_task (self, lb_smtp_session_quit_async, cancellable, callback, user_data);
  if (!begin (self, task))
    return;
  send_line (self, "QUIT", FALSE);
  read_replies_async (self, 1, cancellable, quit_cb, task);
}

gboolean
lb_smtp_session_quit_finish (LbSmtpSession  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
