/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbd-relay"

#include "config.h"

#include <string.h>

#include "lbd-relay-parser.h"
#include "lbd-relay-secret.h"
#include "lbd-relay-session.h"

/*
 * One client of the relay: an ESMTP server session (RFC 5321) on a GIOStream, driven by
 * one pump: take every complete command (or DATA bytes) from the input, queue the
 * replies, write them all at once (PIPELINING, RFC 2920: replies are flushed before the
 * server waits for input), then read again. Nothing else happens while a reply is being
 * written or a message is with the sink, so there is one operation on the stream at a
 * time and the client cannot make the server buffer without bound.
 *
 * Time limits: every read and write is bounded by the idle timeout, and a command line
 * (or the whole DATA phase) by its own deadline, so a client trickling one byte at a
 * time is cut off (421 4.4.2).
 *
 * Replies are protocol text: ASCII, untranslated; the greeting and the EHLO reply carry
 * no enhanced status code (RFC 2034 §3), every other reply does. Logs never contain
 * message content or the secret.
 */

#define READ_CHUNK 65536
#define MAX_ERRORS_IN_ROW 10
#define MAX_PENDING_OUTPUT 65536

G_DEFINE_QUARK (lbd-relay-sink-error-quark, lbd_relay_sink_error)

typedef enum
{
  STATE_INIT,                 /* greeted; HELO/EHLO expected */
  STATE_READY,                /* no transaction */
  STATE_MAIL,                 /* MAIL accepted */
  STATE_RCPT,                 /* at least one recipient */
  STATE_DATA,                 /* reading the message */
  STATE_AUTH_PLAIN,           /* 334 sent, PLAIN response expected */
  STATE_AUTH_LOGIN_USER,
  STATE_AUTH_LOGIN_PASSWORD,
} SessionState;

#define S(x) (1u << (x))
/* The states in which a line is a command (not DATA, not an AUTH response). */
#define COMMAND_STATES (S (STATE_INIT) | S (STATE_READY) | S (STATE_MAIL) | S (STATE_RCPT))

/* Which command may come in which state; anything else is 503 5.5.1 with the text. */
static const struct
{
  guint allowed;
  const char *refusal;
} transitions[] = {
  [LBD_RELAY_VERB_HELO] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_EHLO] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_MAIL] = { S (STATE_READY), "Bad sequence of commands: MAIL needs EHLO first and "
                                             "no transaction in progress" },
  [LBD_RELAY_VERB_RCPT] = { S (STATE_MAIL) | S (STATE_RCPT), "Bad sequence of commands: need MAIL "
                                                             "before RCPT" },
  [LBD_RELAY_VERB_DATA] = { S (STATE_RCPT), "Bad sequence of commands: need RCPT before DATA" },
  [LBD_RELAY_VERB_RSET] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_NOOP] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_QUIT] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_VRFY] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_HELP] = { COMMAND_STATES, NULL },
  [LBD_RELAY_VERB_AUTH] = { S (STATE_READY), "Bad sequence of commands: AUTH needs EHLO first and "
                                             "no transaction in progress" },
};

struct _LbdRelaySession
{
  GObject parent_instance;

  GIOStream *stream;
  GInputStream *input;
  GOutputStream *output;

  LbdRelayTransport transport;
  char *hostname;
  char *user_name;
  char *secret;
  guint64 size_limit;
  guint max_recipients;
  guint idle_timeout;
  guint command_timeout;
  guint data_timeout;
  const LbdRelaySink *sink;
  gpointer sink_data;

  GTask *task;                 /* the run; NULL once it returned */
  GCancellable *cancellable;   /* the run's */
  gulong cancelled_id;
  GCancellable *op;            /* the read or write in flight */
  GSource *timer;

  SessionState state;
  gboolean authenticated;
  gboolean helo_seen;
  guint errors_in_row;

  GByteArray *in;
  guint8 *read_buf;
  GString *out;
  GString *writing_buf;
  gboolean skipping;
  gint64 deadline;             /* monotonic µs for the command line or the DATA phase */

  char *sender;
  GPtrArray *recipients;
  char **submitted_recipients;
  gboolean smtputf8;
  LbdRelayDataDecoder decoder;
  GByteArray *message;
  char *login_user;

  gboolean pumping;            /* in input_run(): a sink answering at once must not recurse */
  gboolean reading;
  gboolean writing;
  gboolean submitting;
  gboolean closing;            /* close once the queued replies are written */
  gboolean closing_stream;
  gboolean timed_out;
  gboolean stopped;            /* the run was cancelled: close, write nothing more */
};

G_DEFINE_FINAL_TYPE (LbdRelaySession, lbd_relay_session, G_TYPE_OBJECT)

static void session_pump (LbdRelaySession *self);

static void
secret_free (char *secret)
{
  if (secret != NULL)
    {
      memset (secret, 0, strlen (secret));
      g_free (secret);
    }
}

static void
lbd_relay_session_finalize (GObject *object)
{
  LbdRelaySession *self = LBD_RELAY_SESSION (object);

  g_assert (self->task == NULL);
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_source_unref (self->timer);
    }
  g_clear_object (&self->op);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->stream);
  g_free (self->hostname);
  g_free (self->user_name);
  secret_free (self->secret);
  secret_free (self->login_user);
  g_byte_array_unref (self->in);
  g_free (self->read_buf);
  g_string_free (self->out, TRUE);
  if (self->writing_buf != NULL)
    g_string_free (self->writing_buf, TRUE);
  g_free (self->sender);
  g_ptr_array_unref (self->recipients);
  g_strfreev (self->submitted_recipients);
  g_clear_pointer (&self->message, g_byte_array_unref);

  G_OBJECT_CLASS (lbd_relay_session_parent_class)->finalize (object);
}

static void
lbd_relay_session_class_init (LbdRelaySessionClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lbd_relay_session_finalize;
}

static void
lbd_relay_session_init (LbdRelaySession *self)
{
  self->in = g_byte_array_new ();
  self->read_buf = g_malloc (READ_CHUNK);
  self->out = g_string_new (NULL);
  self->recipients = g_ptr_array_new_with_free_func (g_free);
}

/**
 * lbd_relay_session_new:
 * @stream: the accepted connection (peer credentials already checked)
 *
 * Returns: (transfer full): a session; nothing happens before
 *   lbd_relay_session_run_async()
 */
LbdRelaySession *
lbd_relay_session_new (GIOStream                   *stream,
                       const LbdRelaySessionConfig *config)
{
  LbdRelaySession *self;

  g_return_val_if_fail (G_IS_IO_STREAM (stream), NULL);
  g_return_val_if_fail (config != NULL && config->sink != NULL, NULL);
  g_return_val_if_fail (config->transport != LBD_RELAY_TRANSPORT_TCP ||
                        (config->user_name != NULL && config->secret != NULL), NULL);

  self = g_object_new (LBD_TYPE_RELAY_SESSION, NULL);
  self->stream = g_object_ref (stream);
  self->input = g_io_stream_get_input_stream (stream);
  self->output = g_io_stream_get_output_stream (stream);
  self->transport = config->transport;
  self->hostname = g_strdup (config->hostname != NULL ? config->hostname : "localhost");
  self->user_name = g_strdup (config->user_name);
  self->secret = g_strdup (config->secret);
  self->size_limit = config->size_limit;
  self->max_recipients = MAX (config->max_recipients, 1);
  self->idle_timeout = MAX (config->idle_timeout, 1);
  self->command_timeout = MAX (config->command_timeout, 1);
  self->data_timeout = MAX (config->data_timeout, 1);
  self->sink = config->sink;
  self->sink_data = config->sink_data;
  return self;
}

/* Replies */

static void
reply (LbdRelaySession *self,
       const char      *line)
{
  g_string_append (self->out, line);
  g_string_append (self->out, "\r\n");
}

static void G_GNUC_PRINTF (2, 3)
replyf (LbdRelaySession *self,
        const char      *format,
        ...)
{
  va_list args;

  va_start (args, format);
  g_string_append_vprintf (self->out, format, args);
  va_end (args);
  g_string_append (self->out, "\r\n");
}

/* Text from elsewhere (a queue id, a sink's error) made safe for a reply line. */
static char *
reply_text (const char *text)
{
  GString *s = g_string_new (NULL);

  for (const char *p = text != NULL ? text : ""; *p != '\0' && s->len < 200; p++)
    {
      /* Line ends and other controls become one space. */
      if ((guint8) *p < 0x20)
        {
          if (s->len > 0 && s->str[s->len - 1] != ' ')
            g_string_append_c (s, ' ');
        }
      else
        g_string_append_c (s, (guint8) *p < 0x7f ? *p : '?');
    }
  return g_string_free (s, FALSE);
}

static void
reply_ok (LbdRelaySession *self,
          const char      *line)
{
  self->errors_in_row = 0;
  reply (self, line);
}

/* A refusal the client caused; too many in a row end the session. */
static void
reply_error_line (LbdRelaySession *self,
                  const char      *line)
{
  reply (self, line);
  if (++self->errors_in_row >= MAX_ERRORS_IN_ROW)
    {
      g_debug ("session %p: too many errors, closing", self);
      replyf (self, "421 4.7.0 %s Too many errors, closing connection", self->hostname);
      self->closing = TRUE;
    }
}

static void
reply_error (LbdRelaySession *self,
             const char      *code,
             const char      *text)
{
  g_autofree char *line = g_strdup_printf ("%s %s", code, text);

  reply_error_line (self, line);
}

/**
 * lbd_relay_sink_error_reply:
 *
 * How a sink's error becomes the reply to the end of DATA:
 *
 * - %LBD_RELAY_SINK_ERROR_NO_SPACE, %G_IO_ERROR_NO_SPACE: 452 4.3.1
 * - %LBD_RELAY_SINK_ERROR_SENDER, %G_IO_ERROR_PERMISSION_DENIED: 554 5.7.1
 * - %LBD_RELAY_SINK_ERROR_MESSAGE, %G_IO_ERROR_INVALID_DATA: 554 5.6.0
 * - %LBD_RELAY_SINK_ERROR_PERMANENT: 554 5.0.0
 * - anything else (%LBD_RELAY_SINK_ERROR_TEMPORARY, a store or I/O failure,
 *   cancellation at shutdown): 451 4.3.0, so the client keeps the message and retries
 *   — an unknown error never loses mail.
 *
 * Returns: the reply code and enhanced status code, such as "451 4.3.0"
 */
const char *
lbd_relay_sink_error_reply (const GError *error)
{
  g_return_val_if_fail (error != NULL, "451 4.3.0");

  if (g_error_matches (error, LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_NO_SPACE) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE))
    return "452 4.3.1";
  if (g_error_matches (error, LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_SENDER) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_PERMISSION_DENIED))
    return "554 5.7.1";
  if (g_error_matches (error, LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_MESSAGE) ||
      g_error_matches (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA))
    return "554 5.6.0";
  if (g_error_matches (error, LBD_RELAY_SINK_ERROR, LBD_RELAY_SINK_ERROR_PERMANENT))
    return "554 5.0.0";
  return "451 4.3.0";
}

/* Transactions */

static void
transaction_reset (LbdRelaySession *self)
{
  g_clear_pointer (&self->sender, g_free);
  g_ptr_array_set_size (self->recipients, 0);
  self->smtputf8 = FALSE;
  g_clear_pointer (&self->message, g_byte_array_unref);
  if (self->state != STATE_INIT)
    self->state = STATE_READY;
}

static void
deadline_set (LbdRelaySession *self,
              guint            seconds)
{
  self->deadline = g_get_monotonic_time () + (gint64) seconds * G_USEC_PER_SEC;
}

static void
submit_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(LbdRelaySession) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *id = NULL;

  id = self->sink->submit_finish (self->sink_data, result, &error);
  self->submitting = FALSE;
  if (id != NULL)
    {
      g_autofree char *safe = reply_text (id);

      g_debug ("session %p: message queued as %s", self, safe);
      self->errors_in_row = 0;
      replyf (self, "250 2.0.0 Ok: queued as %s", safe);
    }
  else
    {
      g_autofree char *safe = reply_text (error->message);

      g_message ("Relay could not queue a message: %s", error->message);
      replyf (self, "%s %s", lbd_relay_sink_error_reply (error), safe);
    }
  transaction_reset (self);
  g_clear_pointer (&self->submitted_recipients, g_strfreev);
  deadline_set (self, self->command_timeout);
  session_pump (self);
}

static void
data_end (LbdRelaySession *self)
{
  g_autoptr(GBytes) message = NULL;

  if (self->decoder.flaws != 0)
    {
      g_debug ("session %p: message refused (flaws 0x%x)", self, self->decoder.flaws);
      reply_error_line (self, lbd_relay_data_flaws_reply (self->decoder.flaws));
      transaction_reset (self);
      return;
    }

  /* NULL-terminated for the sink; kept until its callback, as the sender is. */
  g_clear_pointer (&self->submitted_recipients, g_strfreev);
  self->submitted_recipients = g_new0 (char *, self->recipients->len + 1);
  for (guint i = 0; i < self->recipients->len; i++)
    self->submitted_recipients[i] = g_strdup (g_ptr_array_index (self->recipients, i));
  message = g_byte_array_free_to_bytes (g_steal_pointer (&self->message));
  g_debug ("session %p: submitting %" G_GSIZE_FORMAT " octets for %u recipients", self,
           g_bytes_get_size (message), self->recipients->len);
  self->submitting = TRUE;
  self->sink->submit_async (self->sink_data, self->sender,
                            (const char * const *) self->submitted_recipients, message,
                            self->transport == LBD_RELAY_TRANSPORT_TCP, self->cancellable,
                            submit_cb, g_object_ref (self));
}

/* AUTH (RFC 4954): PLAIN (RFC 4616) and LOGIN, TCP only */

static void
auth_check (LbdRelaySession *self,
            const char      *authzid,
            const char      *user,
            const char      *password)
{
  gboolean user_ok = g_strcmp0 (user, self->user_name) == 0 &&
                     (authzid == NULL || authzid[0] == '\0' || g_strcmp0 (authzid, user) == 0);
  gboolean password_ok = lbd_relay_secret_equal (password, self->secret);

  self->state = STATE_READY;
  if (user_ok && password_ok)
    {
      g_debug ("session %p: authenticated", self);
      self->authenticated = TRUE;
      reply_ok (self, "235 2.7.0 Authentication successful");
    }
  else
    {
      g_message ("Relay refused a login on 127.0.0.1 (wrong user name or password)");
      reply_error (self, "535 5.7.8", "Authentication credentials invalid");
    }
}

static void
auth_plain (LbdRelaySession *self,
            const char      *response)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *authzid = NULL;
  g_autofree char *authcid = NULL;
  char *password = NULL;

  if (!lbd_relay_sasl_plain_decode (response, &authzid, &authcid, &password, &error))
    {
      self->state = STATE_READY;
      reply_error (self, lbd_relay_parse_error_reply (error), error->message);
      return;
    }
  auth_check (self, authzid, authcid, password);
  secret_free (password);
}

static char *
auth_decode_text (LbdRelaySession *self,
                  const char      *response)
{
  g_autoptr(GError) error = NULL;
  gsize len;
  guint8 *raw = lbd_relay_base64_decode (response, &len, &error);

  if (raw != NULL &&
      (memchr (raw, '\0', len) != NULL || !g_utf8_validate ((char *) raw, len, NULL)))
    {
      memset (raw, 0, len);
      g_clear_pointer (&raw, g_free);
      g_set_error_literal (&error, LBD_RELAY_PARSE_ERROR, LBD_RELAY_PARSE_ERROR_BAD_RESPONSE,
                           "Response is not UTF-8 text");
    }
  if (raw == NULL)
    {
      self->state = STATE_READY;
      reply_error (self, lbd_relay_parse_error_reply (error), error->message);
    }
  return (char *) raw;
}

static void
auth_response (LbdRelaySession *self,
               const char      *line)
{
  char *text;

  if (g_str_equal (line, "*"))
    {
      self->state = STATE_READY;
      secret_free (g_steal_pointer (&self->login_user));
      reply_error (self, "501 5.0.0", "Authentication cancelled");
      return;
    }

  switch (self->state)
    {
    case STATE_AUTH_PLAIN:
      auth_plain (self, line);
      break;

    case STATE_AUTH_LOGIN_USER:
      text = auth_decode_text (self, line);
      if (text != NULL)
        {
          secret_free (self->login_user);
          self->login_user = text;
          self->state = STATE_AUTH_LOGIN_PASSWORD;
          reply (self, "334 UGFzc3dvcmQ6"); /* "Password:" */
        }
      break;

    case STATE_AUTH_LOGIN_PASSWORD:
      text = auth_decode_text (self, line);
      if (text != NULL)
        auth_check (self, NULL, self->login_user, text);
      secret_free (text);
      secret_free (g_steal_pointer (&self->login_user));
      break;

    case STATE_INIT:
    case STATE_READY:
    case STATE_MAIL:
    case STATE_RCPT:
    case STATE_DATA:
    default:
      g_assert_not_reached ();
    }
}

static void
command_auth (LbdRelaySession *self,
              LbdRelayCommand *command)
{
  if (self->transport != LBD_RELAY_TRANSPORT_TCP)
    {
      reply_error (self, "503 5.5.1", "Already authenticated by the socket's peer credentials");
      return;
    }
  if (self->authenticated)
    {
      reply_error (self, "503 5.5.1", "Already authenticated");
      return;
    }

  if (g_str_equal (command->argument, "PLAIN"))
    {
      if (command->auth_response != NULL)
        auth_plain (self, command->auth_response);
      else
        {
          self->state = STATE_AUTH_PLAIN;
          reply (self, "334 ");
        }
    }
  else if (g_str_equal (command->argument, "LOGIN"))
    {
      self->state = STATE_AUTH_LOGIN_USER;
      if (command->auth_response != NULL)
        auth_response (self,
                       g_str_equal (command->auth_response, "=") ? "" : command->auth_response);
      else
        reply (self, "334 VXNlcm5hbWU6"); /* "Username:" */
    }
  else
    {
      reply_error (self, "504 5.5.4", "Unrecognized authentication type");
    }
}

/* Commands */

static void
reply_ehlo (LbdRelaySession *self)
{
  replyf (self, "250-%s", self->hostname);
  reply (self, "250-PIPELINING");
  replyf (self, "250-SIZE %" G_GUINT64_FORMAT, self->size_limit);
  reply (self, "250-8BITMIME");
  reply (self, "250-SMTPUTF8");
  reply (self, "250-ENHANCEDSTATUSCODES");
  if (self->transport == LBD_RELAY_TRANSPORT_TCP && !self->authenticated)
    reply (self, "250-AUTH PLAIN LOGIN");
  reply (self, "250 HELP");
}

static void
command_run (LbdRelaySession *self,
             LbdRelayCommand *command)
{
  if (!(transitions[command->verb].allowed & S (self->state)))
    {
      if (self->state == STATE_INIT &&
          (command->verb == LBD_RELAY_VERB_MAIL || command->verb == LBD_RELAY_VERB_AUTH))
        reply_error (self, "503 5.5.1", "Bad sequence of commands: send EHLO or HELO first");
      else if (command->verb == LBD_RELAY_VERB_MAIL)
        reply_error (self, "503 5.5.1", "Bad sequence of commands: nested MAIL command");
      else
        reply_error (self, "503 5.5.1", transitions[command->verb].refusal);
      return;
    }

  switch (command->verb)
    {
    case LBD_RELAY_VERB_HELO:
    case LBD_RELAY_VERB_EHLO:
      /* EHLO/HELO again resets the transaction (RFC 5321 §4.1.4). */
      self->state = STATE_READY;
      transaction_reset (self);
      self->errors_in_row = 0;
      if (command->verb == LBD_RELAY_VERB_EHLO)
        reply_ehlo (self);
      else
        replyf (self, "250 %s", self->hostname);
      break;

    case LBD_RELAY_VERB_MAIL:
      if (self->transport == LBD_RELAY_TRANSPORT_TCP && !self->authenticated)
        reply_error (self, "530 5.7.0", "Authentication required");
      else if (command->address_utf8 && !command->smtputf8)
        reply_error (self, "553 5.6.7", "Non-ASCII sender address needs SMTPUTF8");
      else if (command->has_size && command->size > self->size_limit)
        {
          replyf (self, "552 5.3.4 Message size exceeds fixed maximum message size (%"
                  G_GUINT64_FORMAT " octets)", self->size_limit);
          self->errors_in_row = 0;
        }
      else
        {
          self->sender = g_strdup (command->address);
          self->smtputf8 = command->smtputf8;
          self->state = STATE_MAIL;
          reply_ok (self, "250 2.1.0 Ok");
        }
      break;

    case LBD_RELAY_VERB_RCPT:
      if (command->address_utf8 && !self->smtputf8)
        reply_error (self, "553 5.6.7", "Non-ASCII recipient address needs SMTPUTF8");
      else if (self->recipients->len >= self->max_recipients)
        reply (self, "452 4.5.3 Too many recipients");
      else
        {
          g_ptr_array_add (self->recipients, g_strdup (command->address));
          self->state = STATE_RCPT;
          reply_ok (self, "250 2.1.5 Ok");
        }
      break;

    case LBD_RELAY_VERB_DATA:
      self->state = STATE_DATA;
      lbd_relay_data_decoder_init (&self->decoder);
      self->message = g_byte_array_sized_new (4096);
      deadline_set (self, self->data_timeout);
      reply_ok (self, "354 End data with <CR><LF>.<CR><LF>");
      break;

    case LBD_RELAY_VERB_RSET:
      transaction_reset (self);
      reply_ok (self, "250 2.0.0 Ok");
      break;

    case LBD_RELAY_VERB_NOOP:
      reply_ok (self, "250 2.0.0 Ok");
      break;

    case LBD_RELAY_VERB_QUIT:
      replyf (self, "221 2.0.0 %s Bye", self->hostname);
      self->closing = TRUE;
      break;

    case LBD_RELAY_VERB_VRFY:
      /* RFC 5321 §3.5.3 */
      reply_ok (self, "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery");
      break;

    case LBD_RELAY_VERB_HELP:
      reply_ok (self, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA RSET NOOP QUIT VRFY HELP AUTH");
      break;

    case LBD_RELAY_VERB_AUTH:
      command_auth (self, command);
      break;

    default:
      g_assert_not_reached ();
    }
}

static void
line_run (LbdRelaySession *self,
          const char      *line,
          gsize            len)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbdRelayCommand) command = NULL;

  if (self->state == STATE_AUTH_PLAIN || self->state == STATE_AUTH_LOGIN_USER ||
      self->state == STATE_AUTH_LOGIN_PASSWORD)
    {
      g_autofree char *text = g_strndup (line, len);

      auth_response (self, text);
      memset (text, 0, len);
      return;
    }

  command = lbd_relay_command_parse (line, len, &error);
  if (command == NULL)
    reply_error (self, lbd_relay_parse_error_reply (error), error->message);
  else
    command_run (self, command);
}

/* Takes what it can from the input; returns when more input, a written reply or the
 * sink is needed. */
static void
input_run (LbdRelaySession *self)
{
  gsize pos = 0;

  while (!self->closing && !self->submitting && self->out->len < MAX_PENDING_OUTPUT)
    {
      const guint8 *data = self->in->data + pos;
      gsize len = self->in->len - pos;
      g_autoptr(GError) error = NULL;
      LbdRelayLineResult result;
      gsize line_len, consumed;

      if (self->state == STATE_DATA)
        {
          gboolean done;

          pos += lbd_relay_data_decode (&self->decoder, data, len, self->message, &done);
          if (self->decoder.size > self->size_limit)
            {
              /* Said before the rest is read (RFC 1870 §6.3); then the connection goes,
               * since the client is still sending. */
              g_debug ("session %p: message over the size limit, closing", self);
              replyf (self, "552 5.3.4 Message size exceeds fixed maximum message size (%"
                      G_GUINT64_FORMAT " octets)", self->size_limit);
              transaction_reset (self);
              self->closing = TRUE;
              break;
            }
          if (!done)
            break;
          deadline_set (self, self->command_timeout);
          self->state = STATE_READY;
          data_end (self);
          continue;
        }

      if (len == 0)
        break;
      result = lbd_relay_line_next (&self->skipping, data, len, &line_len, &consumed, &error);
      pos += consumed;
      if (result == LBD_RELAY_LINE_MORE)
        break;
      deadline_set (self, self->command_timeout);
      if (result == LBD_RELAY_LINE_ERROR)
        {
          if (self->state == STATE_AUTH_PLAIN || self->state == STATE_AUTH_LOGIN_USER ||
              self->state == STATE_AUTH_LOGIN_PASSWORD)
            self->state = STATE_READY;
          reply_error (self, lbd_relay_parse_error_reply (error), error->message);
          continue;
        }
      line_run (self, (const char *) data, line_len);
    }
  g_byte_array_remove_range (self->in, 0, pos);
}

/* I/O */

static void
run_return (LbdRelaySession *self)
{
  g_autoptr(GTask) task = g_steal_pointer (&self->task);

  if (task == NULL)
    return;
  if (self->cancelled_id != 0)
    {
      g_cancellable_disconnect (self->cancellable, self->cancelled_id);
      self->cancelled_id = 0;
    }
  g_task_return_boolean (task, TRUE);
}

static void
close_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(LbdRelaySession) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_io_stream_close_finish (G_IO_STREAM (object), result, &error))
    g_debug ("session %p: close: %s", self, error->message);
  g_debug ("session %p: closed", self);
  run_return (self);
}

static void
session_close (LbdRelaySession *self)
{
  if (self->closing_stream)
    return;
  self->closing_stream = TRUE;
  g_io_stream_close_async (self->stream, G_PRIORITY_DEFAULT, NULL, close_cb, g_object_ref (self));
}

static gboolean
timer_cb (gpointer user_data)
{
  LbdRelaySession *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  self->timed_out = TRUE;
  if (self->op != NULL)
    g_cancellable_cancel (self->op);
  return G_SOURCE_REMOVE;
}

static void
timer_start (LbdRelaySession *self,
             gint64           deadline)
{
  gint64 now = g_get_monotonic_time ();
  gint64 wait_ms = MAX ((deadline - now) / 1000, 0);

  g_assert (self->timer == NULL);
  self->timer = g_timeout_source_new ((guint) MIN (wait_ms, G_MAXUINT));
  g_source_set_callback (self->timer, timer_cb, self, NULL);
  g_source_attach (self->timer, g_main_context_get_thread_default ());
}

static void
op_done (LbdRelaySession *self)
{
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  g_clear_object (&self->op);
}

static void
write_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(LbdRelaySession) self = user_data;
  g_autoptr(GError) error = NULL;

  self->writing = FALSE;
  op_done (self);
  g_string_free (g_steal_pointer (&self->writing_buf), TRUE);
  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      /* A client that does not read its replies, or went away. */
      g_debug ("session %p: write: %s", self, self->timed_out ? "timed out" : error->message);
      session_close (self);
      return;
    }
  session_pump (self);
}

static void
write_start (LbdRelaySession *self)
{
  self->writing = TRUE;
  self->timed_out = FALSE;
  self->writing_buf = g_steal_pointer (&self->out);
  self->out = g_string_new (NULL);
  self->op = g_cancellable_new ();
  timer_start (self, g_get_monotonic_time () + (gint64) self->idle_timeout * G_USEC_PER_SEC);
  g_output_stream_write_all_async (self->output, self->writing_buf->str, self->writing_buf->len,
                                   G_PRIORITY_DEFAULT, self->op, write_cb, g_object_ref (self));
}

static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(LbdRelaySession) self = user_data;
  g_autoptr(GError) error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (object), result, &error);
  self->reading = FALSE;
  op_done (self);

  if (self->stopped)
    {
      session_close (self);
      return;
    }
  if (n < 0 && self->timed_out)
    {
      g_debug ("session %p: timed out", self);
      self->timed_out = FALSE;
      replyf (self, "421 4.4.2 %s Timeout, closing connection", self->hostname);
      self->closing = TRUE;
      session_pump (self);
      return;
    }
  if (n <= 0)
    {
      if (n < 0)
        g_debug ("session %p: read: %s", self, error->message);
      else if (self->state == STATE_DATA)
        g_debug ("session %p: client left during DATA; nothing queued", self);
      session_close (self);
      return;
    }
  g_byte_array_append (self->in, self->read_buf, (guint) n);
  session_pump (self);
}

static void
read_start (LbdRelaySession *self)
{
  gint64 idle = g_get_monotonic_time () + (gint64) self->idle_timeout * G_USEC_PER_SEC;

  self->reading = TRUE;
  self->timed_out = FALSE;
  self->op = g_cancellable_new ();
  timer_start (self, MIN (idle, self->deadline));
  g_input_stream_read_async (self->input, self->read_buf, READ_CHUNK, G_PRIORITY_DEFAULT,
                             self->op, read_cb, g_object_ref (self));
}

static void
session_pump (LbdRelaySession *self)
{
  if (self->task == NULL || self->closing_stream || self->reading || self->writing ||
      self->submitting || self->pumping)
    return;

  if (self->stopped)
    {
      session_close (self);
      return;
    }
  self->pumping = TRUE;
  input_run (self);
  self->pumping = FALSE;
  if (self->out->len > 0)
    write_start (self);
  else if (self->submitting)
    ;
  else if (self->closing)
    session_close (self);
  else
    read_start (self);
}

static void
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  LbdRelaySession *self = user_data;

  /* Only flag and cancel the operation in flight; its callback closes. The run's
   * cancellable must be cancelled in the session's thread. */
  self->stopped = TRUE;
  if (self->op != NULL)
    g_cancellable_cancel (self->op);
}

static gboolean
stop_idle_cb (gpointer user_data)
{
  session_pump (user_data);
  return G_SOURCE_REMOVE;
}

/**
 * lbd_relay_session_run_async:
 * @cancellable: (nullable): stops the session: the connection closes, nothing more is
 *   written; a message with the sink is left to it
 *
 * Greets the client and serves it until it quits, times out, breaks the rules too often
 * or goes away. @callback runs once, in the thread-default main context of this call,
 * when the connection is closed; it never fails.
 */
void
lbd_relay_session_run_async (LbdRelaySession     *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (LBD_IS_RELAY_SESSION (self));
  g_return_if_fail (self->task == NULL && !self->closing_stream);

  self->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (self->task, lbd_relay_session_run_async);
  self->cancellable = cancellable != NULL ? g_object_ref (cancellable) : g_cancellable_new ();
  if (cancellable != NULL)
    {
      self->cancelled_id = g_cancellable_connect (cancellable, G_CALLBACK (cancelled_cb), self,
                                                  NULL);
      if (self->stopped)
        {
          /* Already cancelled: cancelled_cb ran synchronously. Close from an idle, so
           * that the callback does not run inside this call (the task keeps self). */
          GSource *idle = g_idle_source_new ();

          g_source_set_callback (idle, stop_idle_cb, self, NULL);
          g_source_attach (idle, g_main_context_get_thread_default ());
          g_source_unref (idle);
          return;
        }
    }

  g_debug ("session %p: new %s client", self,
           self->transport == LBD_RELAY_TRANSPORT_TCP ? "TCP" : "Unix socket");
  replyf (self, "220 %s ESMTP Letterbox", self->hostname);
  deadline_set (self, self->command_timeout);
  session_pump (self);
}

gboolean
lbd_relay_session_run_finish (LbdRelaySession  *self,
                              GAsyncResult     *result,
                              GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
