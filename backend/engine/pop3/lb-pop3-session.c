/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-pop3"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-pop3-session.h"
#include "lb-sasl.h"

/*
 * A POP3 session (RFC 1939) over one LbConnection: the greeting (with its APOP
 * timestamp), CAPA (RFC 2449), STLS (RFC 2595) with CAPA read again inside TLS, login by
 * SASL AUTH (RFC 5034), APOP or USER/PASS, and the transaction commands. Commands queue
 * in order; with PIPELINING (RFC 2449 §6.6) up to max_in_flight of them are on the wire
 * at once, else one. The parser is told what each response will be, in the order sent,
 * and a read loop feeds it while anything is in flight. RETR data never sits in memory:
 * the parser streams it to the command whose response is in progress (the one after
 * the responses already complete), and from there to the caller's sink, or to its
 * GOutputStream with reading paused until each chunk is written.
 *
 * Deletion is guarded: DELE goes out only for messages the caller marked stored (its
 * copy is committed), and the server removes them only when QUIT is answered; a session
 * that ends any other way deletes nothing (RFC 1939 §6).
 */

G_DEFINE_QUARK (lb-pop3-error-quark, lb_pop3_error)

/* RFC 2449 §4: a command line is at most 255 octets with its CRLF. */
#define MAX_COMMAND_LINE 255
#define DEFAULT_MAX_IN_FLIGHT 64

typedef enum
{
  CMD_GREETING,
  CMD_CAPA,
  CMD_STLS,
  CMD_AUTH,
  CMD_APOP,
  CMD_USER,
  CMD_PASS,
  CMD_STAT,
  CMD_LIST,
  CMD_UIDL,
  CMD_TOP,
  CMD_RETR,
  CMD_DELE,
  CMD_RSET,
  CMD_NOOP,
  CMD_QUIT,
  N_COMMANDS,
} CommandKind;

#define STATE_BIT(s) (1u << (s))
#define AUTHORIZATION STATE_BIT (LB_POP3_STATE_AUTHORIZATION)
#define TRANSACTION STATE_BIT (LB_POP3_STATE_TRANSACTION)
#define KEEP (-1)

/* The one transition table (RFC 1939 §3-§6): in which states a command may be sent,
 * what its response looks like, whether it owns the line (nothing else may be sent
 * until its answer: STLS switches the stream, AUTH exchanges challenges), whether a
 * -ERR means the credentials, and the state after sending it and after its +OK. */
static const struct
{
  LbPop3Expect expect;
  guint allowed;
  gboolean owns_line;
  gboolean login;
  int on_send;
  int on_ok;
} transitions[N_COMMANDS] = {
  [CMD_GREETING] = { LB_POP3_EXPECT_LINE, STATE_BIT (LB_POP3_STATE_GREETING), TRUE, FALSE, KEEP,
                     LB_POP3_STATE_AUTHORIZATION },
  [CMD_CAPA] = { LB_POP3_EXPECT_MULTILINE, AUTHORIZATION | TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_STLS] = { LB_POP3_EXPECT_LINE, AUTHORIZATION, TRUE, FALSE, KEEP, KEEP },
  [CMD_AUTH] = { LB_POP3_EXPECT_AUTH, AUTHORIZATION, TRUE, TRUE, KEEP, LB_POP3_STATE_TRANSACTION },
  [CMD_APOP] = { LB_POP3_EXPECT_LINE, AUTHORIZATION, TRUE, TRUE, KEEP, LB_POP3_STATE_TRANSACTION },
  [CMD_USER] = { LB_POP3_EXPECT_LINE, AUTHORIZATION, TRUE, TRUE, KEEP, KEEP },
  [CMD_PASS] = { LB_POP3_EXPECT_LINE, AUTHORIZATION, TRUE, TRUE, KEEP, LB_POP3_STATE_TRANSACTION },
  [CMD_STAT] = { LB_POP3_EXPECT_LINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_LIST] = { LB_POP3_EXPECT_MULTILINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_UIDL] = { LB_POP3_EXPECT_MULTILINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_TOP] = { LB_POP3_EXPECT_MULTILINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_RETR] = { LB_POP3_EXPECT_STREAMED, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_DELE] = { LB_POP3_EXPECT_LINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_RSET] = { LB_POP3_EXPECT_LINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  [CMD_NOOP] = { LB_POP3_EXPECT_LINE, TRANSACTION, FALSE, FALSE, KEEP, KEEP },
  /* QUIT from TRANSACTION enters UPDATE (see queue_command); its +OK ends the session. */
  [CMD_QUIT] = { LB_POP3_EXPECT_LINE, AUTHORIZATION | TRANSACTION, TRUE, FALSE, KEEP,
                 LB_POP3_STATE_CLOSED },
};

typedef struct _Command Command;

/* Turns a command's response into its operation's result (or the next command). It
 * takes over cmd->task: returns it, or hands it on. */
typedef void (*Handler) (Command        *cmd,
                         LbPop3Response *response);

struct _Command
{
  LbPop3Session *self; /* not a reference: the task holds one */
  CommandKind kind;
  guint serial;
  char *line;          /* until sent (wiped: it may hold a secret) */
  char *shown;         /* for messages: "RETR 5", never a secret */
  GTask *task;         /* the operation; NULL once cancelled */
  Handler handler;
  GSource *cancel_source;
  guint32 number;
  /* AUTH */
  LbSasl *sasl;
  char *pending_initial;
  GError *sasl_error;
  /* RETR */
  LbPop3SinkFunc sink;
  gpointer sink_data;
  GOutputStream *stream;
  GByteArray *buffer;
  GError *stream_error;
};

struct _LbPop3Session
{
  GObject parent_instance;

  LbConnection *connection;
  LbPop3Parser *parser;
  LbPop3State state;
  LbPop3Capabilities caps;
  gboolean capa_known;
  char **sasl_mechanisms;
  char *apop_timestamp;
  int expire_days;
  guint login_delay;
  char *auth_used;
  LbPop3AuthMethod auth_method;
  guint max_in_flight;
  guint peak_in_flight;
  guint next_serial;

  GQueue held;      /* Command*, not sent yet */
  GQueue in_flight; /* Command*, sent, answers due in this order */
  gboolean reading;
  gboolean paused;  /* RETR data being written to a stream */
  gboolean switching_tls;
  GError *fatal;

  GHashTable *stored;  /* numbers the caller confirmed stored */
  GHashTable *deleted; /* numbers marked deleted on the server in this session */
};

G_DEFINE_FINAL_TYPE (LbPop3Session, lb_pop3_session, G_TYPE_OBJECT)

static void fail_session (LbPop3Session *self, GError *error);
static void pump (LbPop3Session *self);
static void start_reading (LbPop3Session *self);

static void
wipe_string (char *s)
{
  if (s != NULL)
    memset (s, 0, strlen (s));
}

static void
command_free (Command *cmd)
{
  if (cmd->cancel_source != NULL)
    {
      g_source_destroy (cmd->cancel_source);
      g_source_unref (cmd->cancel_source);
    }
  wipe_string (cmd->line);
  g_free (cmd->line);
  g_free (cmd->shown);
  g_clear_object (&cmd->task);
  lb_sasl_free (cmd->sasl);
  wipe_string (cmd->pending_initial);
  g_free (cmd->pending_initial);
  g_clear_error (&cmd->sasl_error);
  g_clear_object (&cmd->stream);
  if (cmd->buffer != NULL)
    g_byte_array_unref (cmd->buffer);
  g_clear_error (&cmd->stream_error);
  g_free (cmd);
}

static void
lb_pop3_session_dispose (GObject *object)
{
  LbPop3Session *self = LB_POP3_SESSION (object);

  if (self->connection != NULL)
    lb_connection_close (self->connection);
  G_OBJECT_CLASS (lb_pop3_session_parent_class)->dispose (object);
}

static void
lb_pop3_session_finalize (GObject *object)
{
  LbPop3Session *self = LB_POP3_SESSION (object);

  /* Only cancelled commands can be left (a live one's task holds the session). */
  g_queue_clear_full (&self->held, (GDestroyNotify) command_free);
  g_queue_clear_full (&self->in_flight, (GDestroyNotify) command_free);
  g_clear_object (&self->connection);
  lb_pop3_parser_free (self->parser);
  g_strfreev (self->sasl_mechanisms);
  g_free (self->apop_timestamp);
  g_free (self->auth_used);
  g_clear_error (&self->fatal);
  g_hash_table_unref (self->stored);
  g_hash_table_unref (self->deleted);

  G_OBJECT_CLASS (lb_pop3_session_parent_class)->finalize (object);
}

static void
lb_pop3_session_class_init (LbPop3SessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_pop3_session_dispose;
  object_class->finalize = lb_pop3_session_finalize;
}

static gboolean route_data (const guint8  *data,
                            gsize          len,
                            gpointer       user_data,
                            GError       **error);

static void
new_parser (LbPop3Session *self)
{
  lb_pop3_parser_free (self->parser);
  self->parser = lb_pop3_parser_new ();
  lb_pop3_parser_set_sink (self->parser, route_data, self);
}

static void
lb_pop3_session_init (LbPop3Session *self)
{
  g_queue_init (&self->held);
  g_queue_init (&self->in_flight);
  self->stored = g_hash_table_new (NULL, NULL);
  self->deleted = g_hash_table_new (NULL, NULL);
  self->expire_days = -1;
  self->max_in_flight = DEFAULT_MAX_IN_FLIGHT;
  self->next_serial = 1;
  new_parser (self);
}

/**
 * lb_pop3_session_new:
 * @connection: a connection not yet connected; its security decides TLS, STLS or none
 */
LbPop3Session *
lb_pop3_session_new (LbConnection *connection)
{
  LbPop3Session *self;

  g_return_val_if_fail (LB_IS_CONNECTION (connection), NULL);

  self = g_object_new (LB_TYPE_POP3_SESSION, NULL);
  self->connection = g_object_ref (connection);
  return self;
}

LbConnection *
lb_pop3_session_get_connection (LbPop3Session *self)
{
  return self->connection;
}

LbPop3State
lb_pop3_session_get_state (LbPop3Session *self)
{
  return self->state;
}

LbPop3Capabilities
lb_pop3_session_get_capabilities (LbPop3Session *self)
{
  return self->caps;
}

/**
 * lb_pop3_session_has_capa:
 *
 * Returns: whether the server answered CAPA; if not, its capabilities are unknown (an
 *   RFC 1939-only server), and TOP, UIDL and USER are tried rather than refused
 */
gboolean
lb_pop3_session_has_capa (LbPop3Session *self)
{
  return self->capa_known;
}

/**
 * lb_pop3_session_get_sasl_mechanisms:
 *
 * Returns: (transfer none) (nullable): the SASL capability's mechanisms, upper case
 */
const char *const *
lb_pop3_session_get_sasl_mechanisms (LbPop3Session *self)
{
  return (const char *const *) self->sasl_mechanisms;
}

/**
 * lb_pop3_session_get_apop_timestamp:
 *
 * Returns: (nullable): the greeting's "<…>" timestamp (RFC 1939 §7)
 */
const char *
lb_pop3_session_get_apop_timestamp (LbPop3Session *self)
{
  return self->apop_timestamp;
}

/**
 * lb_pop3_session_get_expire_days:
 *
 * Returns: the EXPIRE capability (RFC 2449 §6.7): how many days the server keeps mail
 *   that was retrieved, 0 when it deletes it after QUIT whatever the client says,
 *   G_MAXINT for NEVER, -1 when not advertised
 */
int
lb_pop3_session_get_expire_days (LbPop3Session *self)
{
  return self->expire_days;
}

/**
 * lb_pop3_session_get_login_delay:
 *
 * Returns: the LOGIN-DELAY capability (RFC 2449 §6.8): the least number of seconds
 *   between logins, 0 when not advertised
 */
guint
lb_pop3_session_get_login_delay (LbPop3Session *self)
{
  return self->login_delay;
}

/**
 * lb_pop3_session_get_auth_used:
 *
 * Returns: (nullable): how the session logged in: "SASL " and the mechanism, "APOP" or
 *   "USER"
 */
const char *
lb_pop3_session_get_auth_used (LbPop3Session *self)
{
  return self->auth_used;
}

/**
 * lb_pop3_session_set_auth_method:
 *
 * Restricts login to one method (a server whose SASL is broken, say); the default
 * %LB_POP3_AUTH_AUTO picks the best one. The security rules apply whatever the method.
 */
void
lb_pop3_session_set_auth_method (LbPop3Session    *self,
                                 LbPop3AuthMethod  method)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  self->auth_method = method;
}

/**
 * lb_pop3_session_set_max_in_flight:
 * @max: how many commands may await their answers at once when the server offers
 *   PIPELINING (default 64); 1 sends one command at a time
 */
void
lb_pop3_session_set_max_in_flight (LbPop3Session *self,
                                   guint          max)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  self->max_in_flight = MAX (max, 1);
}

/**
 * lb_pop3_session_get_peak_in_flight:
 *
 * Returns: the most commands that were on the wire at once so far (1 without
 *   pipelining), for diagnostics and tests
 */
guint
lb_pop3_session_get_peak_in_flight (LbPop3Session *self)
{
  return self->peak_in_flight;
}

/* ---- errors ---- */

static gboolean
code_is (const LbPop3Response *r,
         const char           *code)
{
  return r->code != NULL && g_ascii_strcasecmp (r->code, code) == 0;
}

/* The retry class of a -ERR (RFC 2449 §8, RFC 3206 §4). */
static int
classify (CommandKind           kind,
          const LbPop3Response *r)
{
  if (code_is (r, "IN-USE") || code_is (r, "LOGIN-DELAY") || code_is (r, "SYS/TEMP"))
    return LB_POP3_ERROR_TEMPORARY;
  if (code_is (r, "AUTH"))
    return LB_POP3_ERROR_AUTH;
  if (transitions[kind].login && r->code == NULL)
    return LB_POP3_ERROR_AUTH;
  return LB_POP3_ERROR_ERR;
}

static const char *
server_text (const LbPop3Response *r)
{
  return r->text != NULL && r->text[0] != '\0' ? r->text : _("no reason given");
}

static GError *
error_from_response (Command              *cmd,
                     const LbPop3Response *r)
{
  int code = classify (cmd->kind, r);
  const char *host = lb_connection_get_host (cmd->self->connection);

  switch (cmd->kind)
    {
    case CMD_GREETING:
      return g_error_new (LB_POP3_ERROR, code, _("%s refused the connection: %s"), host,
                          server_text (r));
    case CMD_AUTH:
    case CMD_APOP:
    case CMD_USER:
    case CMD_PASS:
      return g_error_new (LB_POP3_ERROR, code, _("%s refused the login: %s"), host,
                          server_text (r));
    case CMD_CAPA:
    case CMD_STLS:
    case CMD_STAT:
    case CMD_LIST:
    case CMD_UIDL:
    case CMD_TOP:
    case CMD_RETR:
    case CMD_DELE:
    case CMD_RSET:
    case CMD_NOOP:
    case CMD_QUIT:
    case N_COMMANDS:
    default:
      /* Translators: "<host> refused <POP3 command>: <the server's reason>" */
      return g_error_new (LB_POP3_ERROR, code, _("%s refused %s: %s"), host, cmd->shown,
                          server_text (r));
    }
}

static GError *
protocol_error (Command    *cmd,
                const char *what)
{
  return g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL,
                      _("The POP3 server sent a malformed answer to %s: %s"), cmd->shown, what);
}

/* ---- commands ---- */

static void
return_error (Command *cmd,
              GError  *error)
{
  GTask *task = g_steal_pointer (&cmd->task);

  g_task_return_error (task, error);
  g_object_unref (task);
}

static void
return_boolean (Command *cmd)
{
  GTask *task = g_steal_pointer (&cmd->task);

  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* Completes a command whose answer arrived (or failed): out of every queue already. */
static void
complete (Command        *cmd,
          LbPop3Response *response,
          GError         *error)
{
  if (cmd->task == NULL)
    g_clear_error (&error); /* cancelled: the answer is dropped */
  else if (error != NULL)
    return_error (cmd, error);
  else if (cmd->stream_error != NULL)
    return_error (cmd, g_steal_pointer (&cmd->stream_error));
  else
    {
      cmd->handler (cmd, response);
      g_assert (cmd->task == NULL);
    }
  lb_pop3_response_free (response);
  command_free (cmd);
}

static gboolean
cancelled_cb (GCancellable *cancellable,
              gpointer      user_data)
{
  Command *cmd = user_data;
  LbPop3Session *self = cmd->self;
  GList *link;

  if (cmd->task == NULL)
    return G_SOURCE_REMOVE;

  if ((link = g_queue_find (&self->held, cmd)) != NULL)
    {
      /* Never sent: it just goes. */
      g_queue_delete_link (&self->held, link);
      complete (cmd, NULL, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                        _("The operation was cancelled")));
      return G_SOURCE_REMOVE;
    }

  if (transitions[cmd->kind].owns_line)
    {
      /* A half-done login or TLS switch cannot be taken back: the session ends. Nothing
       * was deleted (no QUIT). */
      g_object_ref (self);
      fail_session (self, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                       _("The operation was cancelled")));
      g_object_unref (self);
      return G_SOURCE_REMOVE;
    }

  /* On the wire: POP3 cannot abort it, so its answer is read and dropped later. */
  g_clear_pointer (&cmd->cancel_source, g_source_unref);
  return_error (cmd, g_error_new (G_IO_ERROR, G_IO_ERROR_CANCELLED,
                                  _("The operation was cancelled")));
  return G_SOURCE_REMOVE;
}

static Command *
command_new (LbPop3Session *self,
             CommandKind    kind,
             char          *line,
             GTask         *task,
             Handler        handler)
{
  Command *cmd = g_new0 (Command, 1);
  GCancellable *cancellable = g_task_get_cancellable (task);

  cmd->self = self;
  cmd->kind = kind;
  cmd->serial = self->next_serial++;
  cmd->line = line;
  cmd->task = task;
  cmd->handler = handler;
  if (line != NULL)
    {
      /* What an error message may show: the verb and a message number, never a secret. */
      gsize verb = strcspn (line, " ");

      cmd->shown = (kind == CMD_RETR || kind == CMD_DELE || kind == CMD_TOP)
                     ? g_strdup (line)
                     : g_strndup (line, verb);
    }
  if (cancellable != NULL)
    {
      cmd->cancel_source = g_cancellable_source_new (cancellable);
      g_source_set_callback (cmd->cancel_source, G_SOURCE_FUNC (cancelled_cb), cmd, NULL);
      g_source_attach (cmd->cancel_source, g_task_get_context (task));
    }
  return cmd;
}

/* Queues a command behind the others; it is sent when the rules allow (pump). Takes
 * @line and @task. */
static Command *
queue_command (LbPop3Session *self,
               CommandKind    kind,
               char          *line,
               GTask         *task,
               Handler        handler)
{
  Command *cmd = command_new (self, kind, line, task, handler);

  g_queue_push_tail (&self->held, cmd);
  pump (self);
  return cmd;
}

static void
write_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(LbPop3Session) self = user_data;
  GError *error = NULL;

  if (!lb_connection_write_finish (LB_CONNECTION (object), result, &error))
    fail_session (self, error);
}

static void
wipe_free (gpointer data)
{
  GString *s = data;

  memset (s->str, 0, s->len);
  g_string_free (s, TRUE);
}

/* Sends @text; the copy is wiped when written (it may hold a password). Takes @text. */
static void
send_string (LbPop3Session *self,
             GString       *text)
{
  g_autoptr(GBytes) bytes = g_bytes_new_with_free_func (text->str, text->len, wipe_free, text);

  lb_connection_write_async (self->connection, bytes, NULL, write_cb, g_object_ref (self));
}

/* Sends what may be sent now: with PIPELINING everything up to the window, else one at a
 * time; a command that owns the line goes alone, with nothing behind it. All of it in
 * one write. */
static void
pump (LbPop3Session *self)
{
  GString *out = NULL;
  Command *cmd;

  while (self->fatal == NULL && !self->switching_tls &&
         (cmd = g_queue_peek_head (&self->held)) != NULL)
    {
      Command *last = g_queue_peek_tail (&self->in_flight);
      guint n = g_queue_get_length (&self->in_flight);
      gboolean pipelining = (self->caps & LB_POP3_CAP_PIPELINING) != 0;

      /* Queued behind a QUIT that has been answered: there is no session any more. */
      if (self->state == LB_POP3_STATE_CLOSED)
        {
          g_queue_pop_head (&self->held);
          complete (cmd, NULL, g_error_new (LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                                            _("The POP3 session has ended")));
          continue;
        }
      if (last != NULL && transitions[last->kind].owns_line)
        break;
      if (n > 0 && (transitions[cmd->kind].owns_line || !pipelining || n >= self->max_in_flight))
        break;

      g_queue_pop_head (&self->held);
      g_queue_push_tail (&self->in_flight, cmd);
      self->peak_in_flight = MAX (self->peak_in_flight, n + 1);
      lb_pop3_parser_expect (self->parser, transitions[cmd->kind].expect);
      if (transitions[cmd->kind].on_send != KEEP)
        self->state = transitions[cmd->kind].on_send;
      if (cmd->kind == CMD_QUIT && self->state == LB_POP3_STATE_TRANSACTION)
        self->state = LB_POP3_STATE_UPDATE; /* RFC 1939 §6 */

      if (out == NULL)
        out = g_string_new (NULL);
      g_string_append (out, cmd->line);
      g_string_append (out, "\r\n");
      wipe_string (cmd->line);
      g_clear_pointer (&cmd->line, g_free);
    }

  if (out != NULL)
    send_string (self, out);
  start_reading (self);
}

/* Fails @task at once when the session cannot take @kind now. */
static gboolean
check_usable (LbPop3Session *self,
              CommandKind    kind,
              GTask         *task)
{
  if (self->fatal != NULL)
    {
      g_task_return_error (task, g_error_copy (self->fatal));
      g_object_unref (task);
      return FALSE;
    }
  if (self->state == LB_POP3_STATE_UPDATE || self->state == LB_POP3_STATE_CLOSED)
    {
      g_task_return_new_error (task, LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                               _("The POP3 session has ended"));
      g_object_unref (task);
      return FALSE;
    }
  if ((transitions[kind].allowed & STATE_BIT (self->state)) == 0)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL,
                               self->state == LB_POP3_STATE_AUTHORIZATION
                                 ? _("Not logged in to the POP3 server yet")
                                 : _("The POP3 session is not ready for this command"));
      g_object_unref (task);
      return FALSE;
    }
  return TRUE;
}

static GTask *
new_task (LbPop3Session       *self,
          gpointer             source_tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

/* ---- the read loop ---- */

/* Every waiting caller learns why the session ended; the connection is closed, so the
 * server removes nothing (RFC 1939 §6: only QUIT enters UPDATE). */
static void
fail_session (LbPop3Session *self,
              GError        *error)
{
  Command *cmd;

  if (self->fatal == NULL)
    self->fatal = error;
  else
    g_error_free (error);

  if (self->state != LB_POP3_STATE_CLOSED)
    self->state = LB_POP3_STATE_DISCONNECTED;
  self->paused = FALSE;
  lb_connection_close (self->connection);
  new_parser (self);

  while ((cmd = g_queue_pop_head (&self->in_flight)) != NULL ||
         (cmd = g_queue_pop_head (&self->held)) != NULL)
    complete (cmd, NULL, g_error_copy (self->fatal));
}

/* The parser's sink: RETR data belongs to the command after those already complete. */
static gboolean
route_data (const guint8  *data,
            gsize          len,
            gpointer       user_data,
            GError       **error)
{
  LbPop3Session *self = user_data;
  Command *cmd = g_queue_peek_nth (&self->in_flight, lb_pop3_parser_count_ready (self->parser));

  if (cmd == NULL || cmd->kind != CMD_RETR)
    {
      g_set_error (error, LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL,
                   _("The POP3 server sent message data nobody asked for"));
      return FALSE;
    }
  /* Cancelled (even if the cancellation is not dispatched yet), or its stream failed:
   * the rest is read and dropped. */
  if (cmd->task == NULL || cmd->stream_error != NULL ||
      g_cancellable_is_cancelled (g_task_get_cancellable (cmd->task)))
    return TRUE;
  if (cmd->sink != NULL)
    return cmd->sink (data, len, cmd->sink_data, error);
  g_byte_array_append (cmd->buffer, data, (guint) len);
  return TRUE;
}

static void handle_continuation (LbPop3Session *self, LbPop3Response *r);

static void
dispatch_ready (LbPop3Session *self)
{
  LbPop3Response *r;

  while (self->fatal == NULL && !self->paused && (r = lb_pop3_parser_pop (self->parser)) != NULL)
    {
      Command *cmd;

      if (r->continuation)
        {
          handle_continuation (self, r);
          continue;
        }
      cmd = g_queue_pop_head (&self->in_flight);
      g_assert (cmd != NULL); /* the parser expects only what was sent */
      if (r->ok && transitions[cmd->kind].on_ok != KEEP)
        self->state = transitions[cmd->kind].on_ok;
      complete (cmd, r, NULL);
    }
  pump (self);
}

typedef struct
{
  LbPop3Session *self;
  guint serial;
  GBytes *bytes;
} StreamWrite;

static void flush_streams (LbPop3Session *self);

static void
stream_write_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  StreamWrite *w = user_data;
  LbPop3Session *self = w->self;
  GError *error = NULL;

  if (!g_output_stream_write_all_finish (G_OUTPUT_STREAM (object), result, NULL, &error))
    {
      gboolean found = FALSE;

      for (GList *l = self->in_flight.head; l != NULL; l = l->next)
        {
          Command *cmd = l->data;

          if (cmd->serial == w->serial)
            {
              /* This message fails; the session reads on past it. */
              if (cmd->stream_error == NULL)
                cmd->stream_error = g_steal_pointer (&error);
              found = TRUE;
              break;
            }
        }
      if (!found)
        g_clear_error (&error);
    }
  g_bytes_unref (w->bytes);
  if (self->paused)
    flush_streams (self);
  g_object_unref (self);
  g_free (w);
}

/* Writes what the last read brought for streamed RETRs, one chunk at a time, with
 * reading and dispatch paused; then answers what completed and reads on. */
static void
flush_streams (LbPop3Session *self)
{
  for (GList *l = self->in_flight.head; l != NULL; l = l->next)
    {
      Command *cmd = l->data;

      if (cmd->buffer != NULL && cmd->buffer->len > 0)
        {
          StreamWrite *w = g_new0 (StreamWrite, 1);
          gsize len;
          const guint8 *data;

          w->self = g_object_ref (self);
          w->serial = cmd->serial;
          w->bytes = g_byte_array_free_to_bytes (cmd->buffer);
          cmd->buffer = g_byte_array_new ();
          data = g_bytes_get_data (w->bytes, &len);
          self->paused = TRUE;
          g_output_stream_write_all_async (cmd->stream, data, len, G_PRIORITY_DEFAULT,
                                           cmd->task != NULL ? g_task_get_cancellable (cmd->task)
                                                             : NULL,
                                           stream_write_cb, w);
          return;
        }
    }
  self->paused = FALSE;
  dispatch_ready (self);
}

static GError *
wrap_parse_error (GError *error)
{
  GError *wrapped;

  if (error->domain != LB_POP3_PARSE_ERROR || error->code == LB_POP3_PARSE_ERROR_SINK)
    return error; /* the caller's own sink said why */
  wrapped = g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL, "%s", error->message);
  g_error_free (error);
  return wrapped;
}

static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(LbPop3Session) self = user_data;
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  const guint8 *data;
  gsize len;

  self->reading = FALSE;
  bytes = lb_connection_read_finish (LB_CONNECTION (object), result, &error);
  if (self->fatal != NULL)
    {
      g_clear_error (&error);
      return;
    }
  if (bytes == NULL)
    {
      fail_session (self, error);
      return;
    }

  data = g_bytes_get_data (bytes, &len);
  if (!lb_pop3_parser_feed (self->parser, data, len, &error))
    {
      fail_session (self, wrap_parse_error (error));
      return;
    }
  flush_streams (self);
}

/* Reads while answers are due. Not when idle: a server that drops an idle session is
 * noticed at the next command, and STLS needs the socket to itself. */
static void
start_reading (LbPop3Session *self)
{
  if (self->reading || self->paused || self->switching_tls || self->fatal != NULL ||
      g_queue_is_empty (&self->in_flight))
    return;
  self->reading = TRUE;
  lb_connection_read_async (self->connection, NULL, read_cb, g_object_ref (self));
}

/* ---- connect: greeting, CAPA, STLS, CAPA ---- */

static void
parse_capa (LbPop3Session *self,
            GByteArray    *data)
{
  g_autofree char *text = g_strndup ((const char *) data->data, data->len);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  self->caps = 0;
  self->capa_known = TRUE;
  g_clear_pointer (&self->sasl_mechanisms, g_strfreev);
  self->expire_days = -1;
  self->login_delay = 0;

  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_auto(GStrv) words = NULL;
      const char *name;

      g_strchomp (lines[i]);
      words = g_strsplit_set (lines[i], " \t", -1);
      name = words[0];
      if (name == NULL || name[0] == '\0')
        continue;
      if (g_ascii_strcasecmp (name, "STLS") == 0)
        self->caps |= LB_POP3_CAP_STLS;
      else if (g_ascii_strcasecmp (name, "USER") == 0)
        self->caps |= LB_POP3_CAP_USER;
      else if (g_ascii_strcasecmp (name, "TOP") == 0)
        self->caps |= LB_POP3_CAP_TOP;
      else if (g_ascii_strcasecmp (name, "UIDL") == 0)
        self->caps |= LB_POP3_CAP_UIDL;
      else if (g_ascii_strcasecmp (name, "PIPELINING") == 0)
        self->caps |= LB_POP3_CAP_PIPELINING;
      else if (g_ascii_strcasecmp (name, "RESP-CODES") == 0)
        self->caps |= LB_POP3_CAP_RESP_CODES;
      else if (g_ascii_strcasecmp (name, "AUTH-RESP-CODE") == 0)
        self->caps |= LB_POP3_CAP_AUTH_RESP_CODE;
      else if (g_ascii_strcasecmp (name, "SASL") == 0)
        {
          g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

          self->caps |= LB_POP3_CAP_SASL;
          for (guint j = 1; words[j] != NULL; j++)
            if (words[j][0] != '\0')
              {
                g_autofree char *upper = g_ascii_strup (words[j], -1);

                g_strv_builder_add (builder, upper);
              }
          self->sasl_mechanisms = g_strv_builder_end (builder);
        }
      else if (g_ascii_strcasecmp (name, "EXPIRE") == 0)
        {
          guint64 days = 0;

          self->caps |= LB_POP3_CAP_EXPIRE;
          if (words[1] != NULL && g_ascii_strcasecmp (words[1], "NEVER") == 0)
            self->expire_days = G_MAXINT;
          else if (words[1] != NULL &&
                   g_ascii_string_to_unsigned (words[1], 10, 0, G_MAXINT - 1, &days, NULL))
            self->expire_days = (int) days;
        }
      else if (g_ascii_strcasecmp (name, "LOGIN-DELAY") == 0)
        {
          guint64 seconds = 0;

          self->caps |= LB_POP3_CAP_LOGIN_DELAY;
          if (words[1] != NULL &&
              g_ascii_string_to_unsigned (words[1], 10, 0, G_MAXUINT, &seconds, NULL))
            self->login_delay = (guint) seconds;
        }
    }
}

/* "<1896.697170952@dbc.mtview.ca.us>" in the greeting (RFC 1939 §7): kept only when it
 * looks like one, to be hashed byte for byte. */
static char *
find_timestamp (const char *text)
{
  const char *open = strchr (text, '<');
  const char *close = open != NULL ? strchr (open, '>') : NULL;

  if (close == NULL || close - open < 3 || close - open > 200)
    return NULL;
  for (const char *p = open + 1; p < close; p++)
    if ((guchar) *p <= ' ' || (guchar) *p >= 0x7f || *p == '<')
      return NULL;
  return g_strndup (open, close - open + 1);
}

static void connect_after_capa (LbPop3Session *self, GTask *task);

static void
connect_capa_handler (Command        *cmd,
                      LbPop3Response *r)
{
  LbPop3Session *self = cmd->self;

  /* -ERR: an RFC 1939-only server; its capabilities stay unknown. */
  if (r->ok)
    parse_capa (self, r->data);
  else
    {
      self->capa_known = FALSE;
      self->caps = 0;
    }
  connect_after_capa (self, g_steal_pointer (&cmd->task));
}

static void
tls_started_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  GTask *task = user_data;
  LbPop3Session *self = g_task_get_source_object (task);
  GError *error = NULL;

  self->switching_tls = FALSE;
  if (!lb_connection_start_tls_finish (LB_CONNECTION (object), result, &error))
    {
      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
      fail_session (self, error);
      return;
    }
  if (self->fatal != NULL)
    {
      g_task_return_error (task, g_error_copy (self->fatal));
      g_object_unref (task);
      return;
    }
  /* What the server said before TLS cannot be trusted now (RFC 2595 §4): ask again. */
  self->caps = 0;
  self->capa_known = FALSE;
  g_clear_pointer (&self->sasl_mechanisms, g_strfreev);
  queue_command (self, CMD_CAPA, g_strdup ("CAPA"), task, connect_capa_handler);
}

static void
stls_handler (Command        *cmd,
              LbPop3Response *r)
{
  LbPop3Session *self = cmd->self;
  GTask *task = g_steal_pointer (&cmd->task);

  if (!r->ok)
    {
      GError *error = g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_INSECURE,
                                   _("%s refused STLS, which this account requires; nothing "
                                     "was sent unencrypted: %s"),
                                   lb_connection_get_host (self->connection), server_text (r));

      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
      fail_session (self, error);
      return;
    }
  /* Nothing may follow the +OK before the handshake: it would be read as if it came
   * through TLS (an injection, CVE-2011-0411). */
  if (!lb_pop3_parser_is_idle (self->parser) || !g_queue_is_empty (&self->in_flight))
    {
      GError *error = g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL,
                                   _("The server sent data right after agreeing to STLS; "
                                     "refusing it as an attack"));

      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
      fail_session (self, error);
      return;
    }
  self->switching_tls = TRUE;
  new_parser (self);
  lb_connection_start_tls_async (self->connection, g_task_get_cancellable (task), tls_started_cb,
                                 task);
}

static void
connect_after_capa (LbPop3Session *self,
                    GTask         *task)
{
  LbConnection *conn = self->connection;

  if (lb_connection_get_security (conn) == LB_NET_SECURITY_STARTTLS &&
      !lb_connection_is_encrypted (conn))
    {
      /* Never go on in the clear when the account says STARTTLS (RFC 8314 §4.1); a
       * server without CAPA may still know STLS, so only a known "no" stops here. */
      if (self->capa_known && (self->caps & LB_POP3_CAP_STLS) == 0)
        {
          GError *error = g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_INSECURE,
                                       _("%s does not offer STLS, which this account requires; "
                                         "nothing was sent unencrypted"),
                                       lb_connection_get_host (conn));

          g_task_return_error (task, g_error_copy (error));
          g_object_unref (task);
          fail_session (self, error);
          return;
        }
      queue_command (self, CMD_STLS, g_strdup ("STLS"), task, stls_handler);
      return;
    }

  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
greeting_handler (Command        *cmd,
                  LbPop3Response *r)
{
  LbPop3Session *self = cmd->self;
  GTask *task = g_steal_pointer (&cmd->task);

  if (!r->ok)
    {
      GError *error = error_from_response (cmd, r);

      g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
      fail_session (self, error);
      return;
    }
  self->apop_timestamp = find_timestamp (r->text);
  queue_command (self, CMD_CAPA, g_strdup ("CAPA"), task, connect_capa_handler);
}

static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  LbPop3Session *self = g_task_get_source_object (task);
  GError *error = NULL;
  Command *cmd;

  if (!lb_connection_connect_finish (LB_CONNECTION (object), result, &error))
    {
      self->state = LB_POP3_STATE_DISCONNECTED;
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  /* The greeting is the answer to connecting. */
  self->state = LB_POP3_STATE_GREETING;
  cmd = command_new (self, CMD_GREETING, NULL, task, greeting_handler);
  cmd->shown = g_strdup ("the greeting");
  g_queue_push_tail (&self->in_flight, cmd);
  lb_pop3_parser_expect (self->parser, LB_POP3_EXPECT_LINE);
  start_reading (self);
}

/**
 * lb_pop3_session_connect_async:
 *
 * Connects, reads the greeting and the capabilities (CAPA), and, when the connection's
 * security is STARTTLS, upgrades with STLS and reads the capabilities again, or fails
 * with %LB_POP3_ERROR_INSECURE before anything but CAPA went out in the clear. The
 * callback runs in the thread-default main context of the call.
 */
void
lb_pop3_session_connect_async (LbPop3Session       *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (self->state == LB_POP3_STATE_DISCONNECTED && self->fatal == NULL);

  task = new_task (self, lb_pop3_session_connect_async, cancellable, callback, user_data);
  lb_connection_connect_async (self->connection, cancellable, connected_cb, task);
}

gboolean
lb_pop3_session_connect_finish (LbPop3Session  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- login ---- */

static void
login_capa_handler (Command        *cmd,
                    LbPop3Response *r)
{
  /* Capabilities after login may differ (EXPIRE per user, RFC 2449 §6). */
  if (r->ok)
    parse_capa (cmd->self, r->data);
  return_boolean (cmd);
}

static void
logged_in (Command    *cmd,
           const char *how)
{
  LbPop3Session *self = cmd->self;

  g_free (self->auth_used);
  self->auth_used = g_strdup (how);
  if (self->capa_known)
    queue_command (self, CMD_CAPA, g_strdup ("CAPA"), g_steal_pointer (&cmd->task),
                   login_capa_handler);
  else
    return_boolean (cmd);
}

static void
login_done_handler (Command        *cmd,
                    LbPop3Response *r)
{
  if (!r->ok)
    {
      if (cmd->sasl_error != NULL)
        return_error (cmd, g_steal_pointer (&cmd->sasl_error));
      else
        return_error (cmd, error_from_response (cmd, r));
      return;
    }
  if (cmd->kind == CMD_AUTH)
    {
      g_autofree char *how = g_strconcat ("SASL ", lb_sasl_get_mechanism (cmd->sasl), NULL);

      logged_in (cmd, how);
    }
  else
    logged_in (cmd, cmd->kind == CMD_APOP ? "APOP" : "USER");
}

static void
user_handler (Command        *cmd,
              LbPop3Response *r)
{
  char *secret = g_task_get_task_data (cmd->task);

  if (!r->ok)
    {
      return_error (cmd, error_from_response (cmd, r));
      return;
    }
  queue_command (cmd->self, CMD_PASS, g_strconcat ("PASS ", secret, NULL),
                 g_steal_pointer (&cmd->task), login_done_handler);
}

static void
handle_continuation (LbPop3Session  *self,
                     LbPop3Response *r)
{
  g_autoptr(LbPop3Response) owned = r;
  Command *cmd = g_queue_peek_head (&self->in_flight);
  g_autofree char *answer = NULL;
  GError *error = NULL;

  g_assert (cmd != NULL && cmd->kind == CMD_AUTH);

  if (cmd->sasl_error != NULL)
    answer = g_strdup ("*");
  else if (cmd->pending_initial != NULL)
    answer = g_steal_pointer (&cmd->pending_initial); /* it did not fit on the AUTH line */
  else if (!lb_sasl_step (cmd->sasl, r->text, &answer, &error))
    {
      /* Cancel the exchange (RFC 5034 §4); the server answers -ERR. */
      cmd->sasl_error = error;
      answer = g_strdup ("*");
    }
  send_string (self, g_string_append (g_string_new (answer), "\r\n"));
  wipe_string (answer);
}

static gboolean
has_line_breaks (const char *s)
{
  return strpbrk (s, "\r\n") != NULL;
}

/**
 * lb_pop3_session_login_async:
 * @secret: the password, or an OAuth 2.0 access token when @secret_is_token
 *
 * Logs in with, in this order: SASL AUTH (RFC 5034; the initial response on the AUTH
 * line when it fits in 255 octets) with the strongest mechanism the server offers and
 * that may be used here (SCRAM anywhere; PLAIN and LOGIN only inside TLS or to
 * loopback); else APOP when the greeting has a timestamp; else USER/PASS. A password,
 * and APOP too (an MD5 digest anyone who sees it can test passwords against), goes only
 * inside TLS or to loopback; otherwise %LB_POP3_ERROR_INSECURE and nothing is sent.
 * Refused credentials are %LB_POP3_ERROR_AUTH with the server's words; [IN-USE],
 * [LOGIN-DELAY] and [SYS/TEMP] are %LB_POP3_ERROR_TEMPORARY. CAPA is read again after.
 */
void
lb_pop3_session_login_async (LbPop3Session       *self,
                             const char          *user,
                             const char          *secret,
                             gboolean             secret_is_token,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  GTask *task;
  gboolean protected_channel;
  const char *host;
  const char *mechanism = NULL;
  LbPop3AuthMethod method = self->auth_method;

  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (user != NULL && secret != NULL);

  task = new_task (self, lb_pop3_session_login_async, cancellable, callback, user_data);
  if (!check_usable (self, CMD_AUTH, task))
    return;
  host = lb_connection_get_host (self->connection);
  if (has_line_breaks (user) || has_line_breaks (secret) || user[0] == '\0')
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_AUTH,
                               _("The user name or password contains a line break"));
      g_object_unref (task);
      return;
    }

  protected_channel = lb_connection_is_encrypted (self->connection) ||
                      lb_connection_is_loopback (self->connection);

  if (method == LB_POP3_AUTH_AUTO || method == LB_POP3_AUTH_SASL)
    mechanism = lb_sasl_choose_mechanism ((const char *const *) self->sasl_mechanisms,
                                          secret_is_token, protected_channel);

  if (mechanism != NULL)
    {
      GError *error = NULL;
      LbSasl *sasl = lb_sasl_new (mechanism, user, secret, &error);
      g_autofree char *initial = NULL;
      char *line;
      Command *cmd;

      if (sasl == NULL)
        {
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
      if (lb_sasl_has_initial_response (sasl) && !lb_sasl_step (sasl, NULL, &initial, &error))
        {
          lb_sasl_free (sasl);
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
      /* RFC 5034 §4: the initial response rides on the AUTH line ("=" when empty) if the
       * line stays within 255 octets; else it answers the server's first "+ ". */
      if (initial != NULL &&
          strlen ("AUTH ") + strlen (mechanism) + 1 + MAX (strlen (initial), 1) + 2 <=
            MAX_COMMAND_LINE)
        {
          line = g_strdup_printf ("AUTH %s %s", mechanism, initial[0] != '\0' ? initial : "=");
          wipe_string (initial);
          g_clear_pointer (&initial, g_free);
        }
      else
        line = g_strdup_printf ("AUTH %s", mechanism);
      cmd = command_new (self, CMD_AUTH, line, task, login_done_handler);
      cmd->sasl = sasl;
      cmd->pending_initial = g_steal_pointer (&initial);
      g_queue_push_tail (&self->held, cmd);
      pump (self);
      return;
    }

  if (secret_is_token || method == LB_POP3_AUTH_SASL)
    {
      g_task_return_new_error (task, LB_POP3_ERROR,
                               protected_channel ? LB_POP3_ERROR_UNSUPPORTED
                                                 : LB_POP3_ERROR_INSECURE,
                               protected_channel
                                 ? _("%s offers no SASL mechanism Letterbox can use")
                                 : _("%s offers no SASL mechanism that keeps the password "
                                     "safe without TLS; use TLS"),
                               host);
      g_object_unref (task);
      return;
    }

  if (self->apop_timestamp != NULL &&
      (method == LB_POP3_AUTH_AUTO || method == LB_POP3_AUTH_APOP))
    {
      g_autofree char *salted = NULL;
      g_autofree char *digest = NULL;

      if (!protected_channel)
        {
          g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE,
                                   _("%s offers only APOP or a plain password without TLS; "
                                     "APOP’s MD5 digest would let an eavesdropper find the "
                                     "password, so use TLS"),
                                   host);
          g_object_unref (task);
          return;
        }
      salted = g_strconcat (self->apop_timestamp, secret, NULL);
      digest = g_compute_checksum_for_string (G_CHECKSUM_MD5, salted, -1);
      wipe_string (salted);
      queue_command (self, CMD_APOP, g_strdup_printf ("APOP %s %s", user, digest), task,
                     login_done_handler);
      return;
    }
  if (method == LB_POP3_AUTH_APOP)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED,
                               _("%s does not offer APOP"), host);
      g_object_unref (task);
      return;
    }

  if (!protected_channel)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE,
                               _("%s offers no way to log in without sending the password "
                                 "unencrypted; use TLS"),
                               host);
      g_object_unref (task);
      return;
    }
  /* With CAPA, a server that does not list USER does not take it (RFC 2449 §6.4). */
  if (self->capa_known && (self->caps & LB_POP3_CAP_USER) == 0)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED,
                               _("%s offers no login method Letterbox can use"), host);
      g_object_unref (task);
      return;
    }
  g_task_set_task_data (task, g_strdup (secret), (GDestroyNotify) g_free);
  queue_command (self, CMD_USER, g_strdup_printf ("USER %s", user), task, user_handler);
}

gboolean
lb_pop3_session_login_finish (LbPop3Session  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  /* The password kept for PASS goes now. */
  wipe_string (g_task_get_task_data (G_TASK (result)));
  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- transaction commands ---- */

/* Runs @kind now (or fails @task); the handler returns the task. */
static void
run (LbPop3Session *self,
     CommandKind    kind,
     char          *line,
     GTask         *task,
     Handler        handler)
{
  if (!check_usable (self, kind, task))
    {
      g_free (line);
      return;
    }
  queue_command (self, kind, line, task, handler);
}

static void
ok_handler (Command        *cmd,
            LbPop3Response *r)
{
  if (!r->ok)
    return_error (cmd, error_from_response (cmd, r));
  else
    return_boolean (cmd);
}

typedef struct
{
  guint count;
  guint64 size;
} StatResult;

static void
stat_handler (Command        *cmd,
              LbPop3Response *r)
{
  StatResult *st = g_new0 (StatResult, 1);
  guint32 count;
  GTask *task;

  if (!r->ok)
    {
      g_free (st);
      return_error (cmd, error_from_response (cmd, r));
      return;
    }
  if (!lb_pop3_parse_scan_line (r->text, &count, &st->size))
    {
      g_free (st);
      return_error (cmd, protocol_error (cmd, r->text));
      return;
    }
  st->count = count;
  task = g_steal_pointer (&cmd->task);
  g_task_return_pointer (task, st, g_free);
  g_object_unref (task);
}

void
lb_pop3_session_stat_async (LbPop3Session       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  run (self, CMD_STAT, g_strdup ("STAT"),
       new_task (self, lb_pop3_session_stat_async, cancellable, callback, user_data),
       stat_handler);
}

/**
 * lb_pop3_session_stat_finish:
 * @count: (out) (optional): messages in the maildrop (not counting those marked deleted)
 * @size: (out) (optional): their size in octets
 */
gboolean
lb_pop3_session_stat_finish (LbPop3Session  *self,
                             GAsyncResult   *result,
                             guint          *count,
                             guint64        *size,
                             GError        **error)
{
  g_autofree StatResult *st = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  st = g_task_propagate_pointer (G_TASK (result), error);
  if (st == NULL)
    return FALSE;
  if (count != NULL)
    *count = st->count;
  if (size != NULL)
    *size = st->size;
  return TRUE;
}

static void
uidl_entry_clear (gpointer data)
{
  g_free (((LbPop3UidlEntry *) data)->uid);
}

/* LIST and UIDL data: one "number argument" line each. */
static void
listing_handler (Command        *cmd,
                 LbPop3Response *r)
{
  g_autoptr(GArray) entries = NULL;
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  GTask *task;

  if (!r->ok)
    {
      return_error (cmd, error_from_response (cmd, r));
      return;
    }
  if (cmd->kind == CMD_LIST)
    entries = g_array_new (FALSE, FALSE, sizeof (LbPop3ListEntry));
  else
    {
      entries = g_array_new (FALSE, FALSE, sizeof (LbPop3UidlEntry));
      g_array_set_clear_func (entries, uidl_entry_clear);
    }
  /* An empty maildrop's listing has no data at all (data may be NULL). */
  text = g_strndup (r->data->len > 0 ? (const char *) r->data->data : "", r->data->len);
  if (strlen (text) != r->data->len)
    {
      return_error (cmd, protocol_error (cmd, _("a NUL byte")));
      return;
    }
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      g_strchomp (lines[i]);
      if (lines[i][0] == '\0')
        continue;
      if (cmd->kind == CMD_LIST)
        {
          LbPop3ListEntry e;

          if (!lb_pop3_parse_scan_line (lines[i], &e.number, &e.size))
            {
              return_error (cmd, protocol_error (cmd, lines[i]));
              return;
            }
          g_array_append_val (entries, e);
        }
      else
        {
          LbPop3UidlEntry e;

          if (!lb_pop3_parse_uidl_line (lines[i], &e.number, &e.uid))
            {
              return_error (cmd, protocol_error (cmd, lines[i]));
              return;
            }
          g_array_append_val (entries, e);
        }
    }
  task = g_steal_pointer (&cmd->task);
  g_task_return_pointer (task, g_steal_pointer (&entries), (GDestroyNotify) g_array_unref);
  g_object_unref (task);
}

/**
 * lb_pop3_session_list_async:
 *
 * LIST of the whole maildrop (RFC 1939 §5): every message not marked deleted.
 */
void
lb_pop3_session_list_async (LbPop3Session       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  run (self, CMD_LIST, g_strdup ("LIST"),
       new_task (self, lb_pop3_session_list_async, cancellable, callback, user_data),
       listing_handler);
}

/**
 * lb_pop3_session_list_finish:
 *
 * Returns: (transfer full) (element-type LbPop3ListEntry): number and size of each message
 */
GArray *
lb_pop3_session_list_finish (LbPop3Session  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/**
 * lb_pop3_session_uidl_async:
 *
 * UIDL of the whole maildrop (RFC 1939 §7): the unique id of every message, which stays
 * the same across sessions (message numbers do not). %LB_POP3_ERROR_UNSUPPORTED without
 * the UIDL capability.
 */
void
lb_pop3_session_uidl_async (LbPop3Session       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_POP3_SESSION (self));

  task = new_task (self, lb_pop3_session_uidl_async, cancellable, callback, user_data);
  if (self->capa_known && (self->caps & LB_POP3_CAP_UIDL) == 0)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED,
                               _("The POP3 server does not support UIDL"));
      g_object_unref (task);
      return;
    }
  run (self, CMD_UIDL, g_strdup ("UIDL"), task, listing_handler);
}

/**
 * lb_pop3_session_uidl_finish:
 *
 * Returns: (transfer full) (element-type LbPop3UidlEntry): number and unique id of each
 *   message (freeing the array frees the ids)
 */
GArray *
lb_pop3_session_uidl_finish (LbPop3Session  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
top_handler (Command        *cmd,
             LbPop3Response *r)
{
  GTask *task;

  if (!r->ok)
    {
      return_error (cmd, error_from_response (cmd, r));
      return;
    }
  task = g_steal_pointer (&cmd->task);
  g_task_return_pointer (task, g_byte_array_free_to_bytes (g_steal_pointer (&r->data)),
                         (GDestroyNotify) g_bytes_unref);
  g_object_unref (task);
}

/**
 * lb_pop3_session_top_async:
 * @lines: how many lines of the body to send after the header
 *
 * TOP (RFC 1939 §7): the header, the empty line and the first @lines lines of the body,
 * dot-stuffing undone, CRLF kept (at most 64 MiB). %LB_POP3_ERROR_UNSUPPORTED without
 * the TOP capability.
 */
void
lb_pop3_session_top_async (LbPop3Session       *self,
                           guint32              number,
                           guint                lines,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (number > 0);

  task = new_task (self, lb_pop3_session_top_async, cancellable, callback, user_data);
  if (self->capa_known && (self->caps & LB_POP3_CAP_TOP) == 0)
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED,
                               _("The POP3 server does not support TOP"));
      g_object_unref (task);
      return;
    }
  run (self, CMD_TOP, g_strdup_printf ("TOP %u %u", number, lines), task, top_handler);
}

/**
 * lb_pop3_session_top_finish:
 *
 * Returns: (transfer full): the header and the first lines of the body
 */
GBytes *
lb_pop3_session_top_finish (LbPop3Session  *self,
                            GAsyncResult   *result,
                            GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
retr_handler (Command        *cmd,
              LbPop3Response *r)
{
  GTask *task;
  guint64 *size;

  if (!r->ok)
    {
      return_error (cmd, error_from_response (cmd, r));
      return;
    }
  size = g_new (guint64, 1);
  *size = r->data_size;
  task = g_steal_pointer (&cmd->task);
  g_task_return_pointer (task, size, g_free);
  g_object_unref (task);
}

static void
retrieve (LbPop3Session  *self,
          guint32         number,
          LbPop3SinkFunc  sink,
          gpointer        sink_data,
          GOutputStream  *stream,
          GTask          *task)
{
  Command *cmd;

  if (!check_usable (self, CMD_RETR, task))
    return;
  cmd = command_new (self, CMD_RETR, g_strdup_printf ("RETR %u", number), task, retr_handler);
  cmd->number = number;
  cmd->sink = sink;
  cmd->sink_data = sink_data;
  if (stream != NULL)
    {
      cmd->stream = g_object_ref (stream);
      cmd->buffer = g_byte_array_new ();
    }
  g_queue_push_tail (&self->held, cmd);
  pump (self);
}

/**
 * lb_pop3_session_retrieve_async:
 * @sink: receives the message's bytes in order as they arrive, dot-stuffing undone and
 *   CRLF kept, in the session's main context; the message is never whole in memory.
 *   Returning %FALSE (with an error) ends the session: the rest of the message is on
 *   its way and POP3 cannot stop it, so the connection is closed (nothing is deleted).
 *
 * RETR (RFC 1939 §5). Queue as many as you like: with PIPELINING they go out together.
 * Once the caller's copy is safely stored, lb_pop3_session_mark_stored() allows DELE.
 * Cancelling stops the sink being called at once; the rest is read and dropped.
 */
void
lb_pop3_session_retrieve_async (LbPop3Session       *self,
                                guint32              number,
                                LbPop3SinkFunc       sink,
                                gpointer             sink_data,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (number > 0 && sink != NULL);

  retrieve (self, number, sink, sink_data, NULL,
            new_task (self, lb_pop3_session_retrieve_async, cancellable, callback, user_data));
}

/**
 * lb_pop3_session_retrieve_to_stream_async:
 * @stream: where the message's bytes go, written asynchronously; reading from the
 *   server waits while a chunk is being written, so memory stays bounded whatever the
 *   size. A failed write fails this RETR only (the session reads on past it). The
 *   stream is not closed.
 *
 * Like lb_pop3_session_retrieve_async(); finish with lb_pop3_session_retrieve_finish().
 */
void
lb_pop3_session_retrieve_to_stream_async (LbPop3Session       *self,
                                          guint32              number,
                                          GOutputStream       *stream,
                                          GCancellable        *cancellable,
                                          GAsyncReadyCallback  callback,
                                          gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (number > 0 && G_IS_OUTPUT_STREAM (stream));

  retrieve (self, number, NULL, NULL, stream,
            new_task (self, lb_pop3_session_retrieve_async, cancellable, callback, user_data));
}

/**
 * lb_pop3_session_retrieve_finish:
 * @size: (out) (optional): how many octets the message had (after dot-stuffing was
 *   undone)
 */
gboolean
lb_pop3_session_retrieve_finish (LbPop3Session  *self,
                                 GAsyncResult   *result,
                                 guint64        *size,
                                 GError        **error)
{
  g_autofree guint64 *got = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  got = g_task_propagate_pointer (G_TASK (result), error);
  if (got == NULL)
    return FALSE;
  if (size != NULL)
    *size = *got;
  return TRUE;
}

/**
 * lb_pop3_session_mark_stored:
 * @number: a message number of this session
 *
 * Tells the session that the caller's copy of message @number is durably committed
 * (its body and index rows are in the store), which is what allows
 * lb_pop3_session_delete_async() for it. Marks last for this session only: message
 * numbers mean nothing in the next one.
 */
void
lb_pop3_session_mark_stored (LbPop3Session *self,
                             guint32        number)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));
  g_return_if_fail (number > 0);

  g_hash_table_add (self->stored, GUINT_TO_POINTER (number));
}

gboolean
lb_pop3_session_is_stored (LbPop3Session *self,
                           guint32        number)
{
  return g_hash_table_contains (self->stored, GUINT_TO_POINTER (number));
}

static void
dele_handler (Command        *cmd,
              LbPop3Response *r)
{
  if (r->ok)
    g_hash_table_add (cmd->self->deleted, GUINT_TO_POINTER (cmd->number));
  ok_handler (cmd, r);
}

/**
 * lb_pop3_session_delete_async:
 *
 * DELE (RFC 1939 §5) for a message the caller marked stored with
 * lb_pop3_session_mark_stored(); any other is refused with
 * %LB_POP3_ERROR_NOT_STORED and nothing is sent. The server only marks it: it is
 * removed when QUIT is answered, and kept if the session ends any other way or after
 * lb_pop3_session_reset_async().
 */
void
lb_pop3_session_delete_async (LbPop3Session       *self,
                              guint32              number,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task;
  Command *cmd;

  g_return_if_fail (LB_IS_POP3_SESSION (self));

  task = new_task (self, lb_pop3_session_delete_async, cancellable, callback, user_data);
  if (!lb_pop3_session_is_stored (self, number))
    {
      g_task_return_new_error (task, LB_POP3_ERROR, LB_POP3_ERROR_NOT_STORED,
                               _("Message %u is not confirmed stored here; it stays on the "
                                 "server"),
                               number);
      g_object_unref (task);
      return;
    }
  if (!check_usable (self, CMD_DELE, task))
    return;
  cmd = command_new (self, CMD_DELE, g_strdup_printf ("DELE %u", number), task, dele_handler);
  cmd->number = number;
  g_queue_push_tail (&self->held, cmd);
  pump (self);
}

gboolean
lb_pop3_session_delete_finish (LbPop3Session  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
rset_handler (Command        *cmd,
              LbPop3Response *r)
{
  if (r->ok)
    g_hash_table_remove_all (cmd->self->deleted);
  ok_handler (cmd, r);
}

/**
 * lb_pop3_session_reset_async:
 *
 * RSET (RFC 1939 §5): unmarks every message marked deleted in this session.
 */
void
lb_pop3_session_reset_async (LbPop3Session       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  run (self, CMD_RSET, g_strdup ("RSET"),
       new_task (self, lb_pop3_session_reset_async, cancellable, callback, user_data),
       rset_handler);
}

gboolean
lb_pop3_session_reset_finish (LbPop3Session  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
lb_pop3_session_noop_async (LbPop3Session       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  run (self, CMD_NOOP, g_strdup ("NOOP"),
       new_task (self, lb_pop3_session_noop_async, cancellable, callback, user_data),
       ok_handler);
}

gboolean
lb_pop3_session_noop_finish (LbPop3Session  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
quit_handler (Command        *cmd,
              LbPop3Response *r)
{
  LbPop3Session *self = cmd->self;
  guint deleted = g_hash_table_size (self->deleted);
  GTask *task;

  self->state = LB_POP3_STATE_CLOSED;
  lb_connection_close (self->connection);
  if (!r->ok)
    {
      /* RFC 1939 §6: some messages marked deleted could not be removed. */
      return_error (cmd, g_error_new (LB_POP3_ERROR, LB_POP3_ERROR_ERR,
                                      _("%s could not remove every deleted message: %s"),
                                      lb_connection_get_host (self->connection),
                                      server_text (r)));
      return;
    }
  g_hash_table_remove_all (self->deleted);
  task = g_steal_pointer (&cmd->task);
  g_task_return_pointer (task, GUINT_TO_POINTER (deleted + 1), NULL);
  g_object_unref (task);
}

/**
 * lb_pop3_session_quit_async:
 *
 * QUIT (RFC 1939 §6): in TRANSACTION the server now removes the messages marked
 * deleted, and its +OK says it did; then the connection is closed. If the connection
 * breaks before the answer, the caller cannot know whether they were removed (the next
 * session's UIDL tells).
 */
void
lb_pop3_session_quit_async (LbPop3Session       *self,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  run (self, CMD_QUIT, g_strdup ("QUIT"),
       new_task (self, lb_pop3_session_quit_async, cancellable, callback, user_data),
       quit_handler);
}

/**
 * lb_pop3_session_quit_finish:
 * @deleted: (out) (optional): how many messages the server removed
 */
gboolean
lb_pop3_session_quit_finish (LbPop3Session  *self,
                             GAsyncResult   *result,
                             guint          *deleted,
                             GError        **error)
{
  gpointer value;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  value = g_task_propagate_pointer (G_TASK (result), error);
  if (value == NULL)
    return FALSE;
  if (deleted != NULL)
    *deleted = GPOINTER_TO_UINT (value) - 1;
  return TRUE;
}

/**
 * lb_pop3_session_abort:
 *
 * Drops the connection without QUIT: the server removes nothing, whatever was marked
 * deleted (RFC 1939 §6). Operations still waiting fail with %LB_NET_ERROR_CLOSED.
 */
void
lb_pop3_session_abort (LbPop3Session *self)
{
  g_return_if_fail (LB_IS_POP3_SESSION (self));

  g_object_ref (self);
  if (self->fatal == NULL)
    fail_session (self, g_error_new (LB_NET_ERROR, LB_NET_ERROR_CLOSED,
                                     _("The POP3 session was closed before QUIT; nothing was "
                                       "deleted")));
  self->state = LB_POP3_STATE_CLOSED;
  g_object_unref (self);
}
