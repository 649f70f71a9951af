/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-imap"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-imap-session.h"
#include "lb-sasl.h"

/*
 * An IMAP session (RFC 9051, RFC 3501) over one LbConnection: the greeting, capabilities
 * (read again after STARTTLS and after login, RFC 9051 §6.2.1/§6.2.2), STARTTLS,
 * authentication, and tagged commands that may be pipelined. A read loop feeds every
 * byte to the incremental parser; each tagged response completes its command, untagged
 * responses go to the oldest command in flight (servers answer in order), and those that
 * come when none is waiting, or during IDLE, are emitted as "untagged" for the caller.
 *
 * States (RFC 9051 §3): DISCONNECTED → NOT_AUTHENTICATED (or AUTHENTICATED on PREAUTH)
 * → AUTHENTICATED ⇄ SELECTED → LOGOUT; any broken connection → DISCONNECTED.
 */

G_DEFINE_QUARK (lb-imap-error-quark, lb_imap_error)

typedef enum
{
  CMD_NORMAL,
  CMD_STARTTLS,
  CMD_COMPRESS,
  CMD_AUTHENTICATE,
  CMD_LOGIN,
  CMD_SELECT,
  CMD_IDLE,
  CMD_LOGOUT,
} CommandKind;

typedef struct
{
  LbImapSession *self;
  char *tag;
  CommandKind kind;
  GTask *task;
  LbImapResult *result;
  GBytes *pending_literal;
  gboolean waiting_continuation;
  LbSasl *sasl;
  GError *sasl_error;
  guint idle_timeout_id;
  gulong cancel_id;
  gboolean done_sent;
  LbImapUntaggedFunc untagged_func;
  gpointer untagged_data;
  char *line;      /* what to send, until it is sent */
  GBytes *literal;
} Command;

struct _LbImapSession
{
  GObject parent_instance;

  LbConnection *connection;
  LbImapParser *parser;
  LbImapState state;
  GHashTable *capabilities;
  GHashTable *enabled;
  guint next_tag;
  GQueue commands;
  /* While a command owns the line (a synchronizing literal not yet sent, AUTHENTICATE,
   * IDLE), later commands wait here unsent: the server would read them as its data. */
  Command *blocker;
  GQueue held;
  GTask *greeting_task;
  gboolean reading;
  gboolean pause_reading;
  GError *fatal;
  char *bye_text;
  const LbImapLiteralSink *sink;
  gpointer sink_data;
  LbImapQuirks quirks;
};

G_DEFINE_FINAL_TYPE (LbImapSession, lb_imap_session, G_TYPE_OBJECT)

enum {
  SIGNAL_UNTAGGED,
  SIGNAL_ALERT,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

void
lb_imap_result_free (LbImapResult *result)
{
  if (result == NULL)
    return;
  lb_imap_response_free (result->tagged);
  g_ptr_array_unref (result->untagged);
  g_free (result);
}

static void
command_free (Command *cmd)
{
  g_free (cmd->tag);
  lb_imap_result_free (cmd->result);
  g_clear_pointer (&cmd->pending_literal, g_bytes_unref);
  if (cmd->line != NULL)
    memset (cmd->line, 0, strlen (cmd->line));
  g_free (cmd->line);
  g_clear_pointer (&cmd->literal, g_bytes_unref);
  lb_sasl_free (cmd->sasl);
  g_clear_error (&cmd->sasl_error);
  g_clear_handle_id (&cmd->idle_timeout_id, g_source_remove);
  g_free (cmd);
}

static void
lb_imap_session_dispose (GObject *object)
{
  LbImapSession *self = LB_IMAP_SESSION (object);

  if (self->connection != NULL)
    lb_connection_close (self->connection);
  G_OBJECT_CLASS (lb_imap_session_parent_class)->dispose (object);
}

static void
lb_imap_session_finalize (GObject *object)
{
  LbImapSession *self = LB_IMAP_SESSION (object);

  g_assert (g_queue_is_empty (&self->commands));
  g_clear_object (&self->connection);
  lb_imap_parser_free (self->parser);
  g_hash_table_unref (self->capabilities);
  g_hash_table_unref (self->enabled);
  g_clear_error (&self->fatal);
  g_free (self->bye_text);
  g_strfreev (self->quirks.disabled_capabilities);

  G_OBJECT_CLASS (lb_imap_session_parent_class)->finalize (object);
}

static void
lb_imap_session_class_init (LbImapSessionClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_imap_session_dispose;
  object_class->finalize = lb_imap_session_finalize;

  /**
   * LbImapSession::untagged:
   * @response: an LbImapResponse no command was waiting for (EXISTS, EXPUNGE, FETCH of
   *   flags changed elsewhere, VANISHED…), also every one that arrives during IDLE
   *
   * Emitted in the session's main context.
   */
  signals[SIGNAL_UNTAGGED] = g_signal_new ("untagged", G_TYPE_FROM_CLASS (klass),
                                           G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                           G_TYPE_NONE, 1, G_TYPE_POINTER);
  /**
   * LbImapSession::alert:
   * @text: a server [ALERT] the user must see (RFC 9051 §7.1)
   */
  signals[SIGNAL_ALERT] = g_signal_new ("alert", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                        NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
}

static void
lb_imap_session_init (LbImapSession *self)
{
  self->capabilities = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->enabled = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  self->parser = lb_imap_parser_new (NULL);
  self->next_tag = 1;
  g_queue_init (&self->commands);
  g_queue_init (&self->held);
  lb_imap_quirks_init_defaults (&self->quirks);
}

void
lb_imap_quirks_init_defaults (LbImapQuirks *quirks)
{
  quirks->disabled_capabilities = NULL;
  quirks->max_command_length = 8192;
  quirks->idle_seconds = 29 * 60;
}

/**
 * lb_imap_session_set_quirks:
 *
 * Sets the workarounds for this server (copied).
 */
void
lb_imap_session_set_quirks (LbImapSession      *self,
                            const LbImapQuirks *quirks)
{
  g_return_if_fail (LB_IS_IMAP_SESSION (self));

  g_strfreev (self->quirks.disabled_capabilities);
  self->quirks = *quirks;
  self->quirks.disabled_capabilities = g_strdupv (quirks->disabled_capabilities);
  if (self->quirks.max_command_length < 1024)
    self->quirks.max_command_length = 1024;
}

const LbImapQuirks *
lb_imap_session_get_quirks (LbImapSession *self)
{
  return &self->quirks;
}

LbImapSession *
lb_imap_session_new (LbConnection *connection)
{
  LbImapSession *self;

  g_return_val_if_fail (LB_IS_CONNECTION (connection), NULL);

  self = g_object_new (LB_TYPE_IMAP_SESSION, NULL);
  self->connection = g_object_ref (connection);
  return self;
}

LbConnection *
lb_imap_session_get_connection (LbImapSession *self)
{
  return self->connection;
}

LbImapState
lb_imap_session_get_state (LbImapSession *self)
{
  return self->state;
}

/**
 * lb_imap_session_has_capability:
 *
 * Returns: whether the server advertises @capability and the quirks do not disable it
 */
gboolean
lb_imap_session_has_capability (LbImapSession *self,
                                const char    *capability)
{
  g_autofree char *upper = g_ascii_strup (capability, -1);

  if (self->quirks.disabled_capabilities != NULL &&
      g_strv_contains ((const char *const *) self->quirks.disabled_capabilities, upper))
    return FALSE;
  return g_hash_table_contains (self->capabilities, upper);
}

/**
 * lb_imap_session_dup_auth_mechanisms:
 *
 * Returns: (transfer full): the SASL mechanisms of the AUTH= capabilities
 */
char **
lb_imap_session_dup_auth_mechanisms (LbImapSession *self)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  GHashTableIter iter;
  const char *cap;

  g_hash_table_iter_init (&iter, self->capabilities);
  while (g_hash_table_iter_next (&iter, (gpointer *) &cap, NULL))
    if (g_str_has_prefix (cap, "AUTH="))
      g_strv_builder_add (builder, cap + 5);
  return g_strv_builder_end (builder);
}

gboolean
lb_imap_session_is_enabled (LbImapSession *self,
                            const char    *extension)
{
  g_autofree char *upper = g_ascii_strup (extension, -1);

  return g_hash_table_contains (self->enabled, upper);
}

/**
 * lb_imap_session_set_literal_sink:
 *
 * Large FETCH literals (message bodies) go to @sink as they arrive instead of memory.
 */
void
lb_imap_session_set_literal_sink (LbImapSession           *self,
                                  const LbImapLiteralSink *sink,
                                  gpointer                 user_data)
{
  self->sink = sink;
  self->sink_data = user_data;
  lb_imap_parser_set_sink (self->parser, sink, user_data);
}

static void
set_capabilities (LbImapSession *self,
                  GPtrArray     *atoms)
{
  g_hash_table_remove_all (self->capabilities);
  for (guint i = 0; atoms != NULL && i < atoms->len; i++)
    g_hash_table_add (self->capabilities, g_ascii_strup (g_ptr_array_index (atoms, i), -1));
}

/* The connection is gone or can no longer be trusted: every waiting caller learns why. */
static void
fail_session (LbImapSession *self,
              GError        *error)
{
  Command *cmd;

  if (self->fatal == NULL)
    self->fatal = error;
  else
    g_error_free (error);

  self->state = LB_IMAP_STATE_DISCONNECTED;
  self->blocker = NULL;
  g_queue_clear (&self->held);
  lb_connection_close (self->connection);
  /* A body half received is abandoned: the sink hears of it (and discards it). */
  lb_imap_parser_free (self->parser);
  self->parser = lb_imap_parser_new (NULL);

  if (self->greeting_task != NULL)
    {
      GTask *task = g_steal_pointer (&self->greeting_task);

      g_task_return_error (task, g_error_copy (self->fatal));
      g_object_unref (task);
    }

  while ((cmd = g_queue_pop_head (&self->commands)) != NULL)
    {
      GTask *task = g_steal_pointer (&cmd->task);

      if (cmd->kind == CMD_LOGOUT && g_error_matches (self->fatal, LB_IMAP_ERROR, LB_IMAP_ERROR_BYE))
        g_task_return_pointer (task, NULL, NULL);
      else
        g_task_return_error (task, g_error_copy (self->fatal));
      command_free (cmd);
      g_object_unref (task);
    }
}

static void
send_bytes_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(LbImapSession) self = user_data;
  GError *error = NULL;

  if (!lb_connection_write_finish (LB_CONNECTION (object), result, &error))
    fail_session (self, error);
}

static void
send_text (LbImapSession *self,
           const char    *text)
{
  g_autoptr(GBytes) bytes = g_bytes_new (text, strlen (text));

  lb_connection_write_async (self->connection, bytes, NULL, send_bytes_cb, g_object_ref (self));
}

static void
send_literal (LbImapSession *self,
              GBytes        *literal)
{
  lb_connection_write_async (self->connection, literal, NULL, send_bytes_cb, g_object_ref (self));
  send_text (self, "\r\n");
}

static void start_reading (LbImapSession *self);
static void unblock (LbImapSession *self);

/* Completes @cmd's task. The task's callback may start new commands, so the command is
 * already out of the queue. */
static void
finish_command (Command *cmd,
                GError  *error)
{
  GTask *task = g_steal_pointer (&cmd->task);

  if (error != NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, g_steal_pointer (&cmd->result),
                           (GDestroyNotify) lb_imap_result_free);
  command_free (cmd);
  g_object_unref (task);
}

static GError *
error_from_tagged (LbImapResponse *tagged,
                   int             code)
{
  return g_error_new (LB_IMAP_ERROR, code, "%s", tagged->text != NULL && tagged->text[0] != '\0'
                                                     ? tagged->text
                                                     : _("The server refused the command"));
}

static void
tls_started_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  Command *cmd = user_data;
  LbImapSession *self = cmd->self;
  GError *error = NULL;

  if (!lb_connection_start_tls_finish (LB_CONNECTION (object), result, &error))
    {
      finish_command (cmd, g_error_copy (error));
      fail_session (self, error);
      g_object_unref (self);
      return;
    }

  /* What the server said before TLS cannot be trusted now (RFC 9051 §6.2.1). */
  g_hash_table_remove_all (self->capabilities);
  self->pause_reading = FALSE;
  start_reading (self);
  finish_command (cmd, NULL);
  g_object_unref (self);
}

/* STARTTLS and COMPRESS switch the byte stream right after the server's OK: nothing may
 * follow that OK in plain text (an injection attack, CVE-2011-0411), and reading stops
 * until the switch is made. */
static gboolean
stream_switch_ok (LbImapSession *self)
{
  return lb_imap_parser_is_idle (self->parser);
}

static void
complete_tagged (LbImapSession  *self,
                 Command        *cmd,
                 LbImapResponse *tagged)
{
  LbImapStatus status = tagged->status;

  cmd->result->tagged = tagged;

  if (tagged->code.kind == LB_IMAP_CODE_CAPABILITY)
    set_capabilities (self, tagged->code.atoms);
  if (tagged->code.kind == LB_IMAP_CODE_ALERT)
    g_signal_emit (self, signals[SIGNAL_ALERT], 0, tagged->text);

  if (status == LB_IMAP_STATUS_BAD)
    {
      if (cmd->sasl_error != NULL)
        finish_command (cmd, g_steal_pointer (&cmd->sasl_error));
      else
        finish_command (cmd, error_from_tagged (tagged, LB_IMAP_ERROR_BAD));
      return;
    }

  switch (cmd->kind)
    {
    case CMD_STARTTLS:
      if (status != LB_IMAP_STATUS_OK)
        {
          finish_command (cmd, error_from_tagged (tagged, LB_IMAP_ERROR_INSECURE));
          return;
        }
      if (!stream_switch_ok (self) || g_queue_get_length (&self->commands) > 0)
        {
          finish_command (cmd, NULL);
          fail_session (self, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                                           _("The server sent data right after agreeing to "
                                             "STARTTLS; refusing it as an attack")));
          return;
        }
      self->pause_reading = TRUE;
      /* A fresh parser: nothing from before the handshake carries over. */
      lb_imap_parser_free (self->parser);
      self->parser = lb_imap_parser_new (NULL);
      lb_imap_parser_set_sink (self->parser, self->sink, self->sink_data);
      lb_connection_start_tls_async (self->connection, NULL, tls_started_cb, cmd);
      g_object_ref (self);
      return;

    case CMD_COMPRESS:
      if (status == LB_IMAP_STATUS_OK)
        {
          GError *error = NULL;

          /* Commands sent after COMPRESS went out uncompressed: the server cannot read them. */
          if (!stream_switch_ok (self) || g_queue_get_length (&self->commands) > 0 ||
              !lb_connection_start_compress (self->connection, &error))
            {
              finish_command (cmd, NULL);
              fail_session (self, error != NULL ? error
                                                : g_error_new (LB_IMAP_ERROR,
                                                               LB_IMAP_ERROR_PROTOCOL,
                                                               _("The server sent data before "
                                                                 "compression began")));
              return;
            }
        }
      break;

    case CMD_AUTHENTICATE:
    case CMD_LOGIN:
      if (status != LB_IMAP_STATUS_OK)
        {
          finish_command (cmd, error_from_tagged (tagged, LB_IMAP_ERROR_AUTH));
          return;
        }
      self->state = LB_IMAP_STATE_AUTHENTICATED;
      break;

    case CMD_SELECT:
      /* A failed SELECT leaves no mailbox selected (RFC 9051 §6.3.2). */
      self->state = status == LB_IMAP_STATUS_OK ? LB_IMAP_STATE_SELECTED
                                                : LB_IMAP_STATE_AUTHENTICATED;
      break;

    case CMD_LOGOUT:
      self->state = LB_IMAP_STATE_LOGOUT;
      break;

    case CMD_IDLE:
    case CMD_NORMAL:
    default:
      break;
    }

  finish_command (cmd, NULL);
}

static Command *
find_command (LbImapSession *self,
              const char    *tag)
{
  for (GList *l = self->commands.head; l != NULL; l = l->next)
    if (g_strcmp0 (((Command *) l->data)->tag, tag) == 0)
      return l->data;
  return NULL;
}

static gboolean
idle_timeout_cb (gpointer user_data)
{
  Command *cmd = user_data;

  cmd->idle_timeout_id = 0;
  lb_imap_session_idle_done (cmd->self);
  return G_SOURCE_REMOVE;
}

static void
handle_continuation (LbImapSession  *self,
                     LbImapResponse *r)
{
  Command *cmd = NULL;

  for (GList *l = self->commands.head; l != NULL; l = l->next)
    {
      Command *c = l->data;

      if (c->waiting_continuation || c->kind == CMD_AUTHENTICATE ||
          (c->kind == CMD_IDLE && !c->done_sent))
        {
          cmd = c;
          break;
        }
    }

  if (cmd == NULL)
    {
      fail_session (self, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                                       _("The server asked for data no command had to send")));
      return;
    }

  if (cmd->waiting_continuation)
    {
      g_autoptr(GBytes) literal = g_steal_pointer (&cmd->pending_literal);

      cmd->waiting_continuation = FALSE;
      send_literal (self, literal);
      if (self->blocker == cmd)
        unblock (self);
    }
  else if (cmd->kind == CMD_AUTHENTICATE)
    {
      g_autofree char *answer = NULL;
      GError *error = NULL;

      if (lb_sasl_step (cmd->sasl, r->text, &answer, &error))
        {
          g_autofree char *line = g_strconcat (answer, "\r\n", NULL);

          send_text (self, line);
          memset (line, 0, strlen (line));
        }
      else
        {
          /* Cancel the exchange (RFC 9051 §6.2.2); the server answers BAD. */
          cmd->sasl_error = error;
          send_text (self, "*\r\n");
        }
    }
  else if (cmd->kind == CMD_IDLE)
    {
      guint max_seconds = GPOINTER_TO_UINT (g_task_get_task_data (cmd->task));

      /* Idling: the caller hears of changes through "untagged". */
      if (max_seconds > 0 && cmd->idle_timeout_id == 0)
        cmd->idle_timeout_id = g_timeout_add_seconds (max_seconds, idle_timeout_cb, cmd);
      if (g_cancellable_is_cancelled (g_task_get_cancellable (cmd->task)))
        lb_imap_session_idle_done (self);
    }
  lb_imap_response_free (r);
}

static void
handle_untagged (LbImapSession  *self,
                 LbImapResponse *r)
{
  Command *oldest = g_queue_peek_head (&self->commands);

  if (r->data == LB_IMAP_DATA_CAPABILITY)
    set_capabilities (self, r->atoms);
  else if (r->data == LB_IMAP_DATA_ENABLED)
    for (guint i = 0; i < r->atoms->len; i++)
      g_hash_table_add (self->enabled, g_ascii_strup (g_ptr_array_index (r->atoms, i), -1));
  else if (r->data == LB_IMAP_DATA_STATUS)
    {
      if (r->code.kind == LB_IMAP_CODE_CAPABILITY)
        set_capabilities (self, r->code.atoms);
      if (r->code.kind == LB_IMAP_CODE_ALERT)
        g_signal_emit (self, signals[SIGNAL_ALERT], 0, r->text);
      if (r->status == LB_IMAP_STATUS_BYE)
        {
          g_free (self->bye_text);
          self->bye_text = g_strdup (r->text);
        }
    }

  if (oldest != NULL && oldest->untagged_func != NULL)
    {
      oldest->untagged_func (r, oldest->untagged_data);
      lb_imap_response_free (r);
    }
  else if (oldest != NULL && oldest->kind != CMD_IDLE)
    g_ptr_array_add (oldest->result->untagged, r);
  else
    {
      g_signal_emit (self, signals[SIGNAL_UNTAGGED], 0, r);
      lb_imap_response_free (r);
    }
}

static void
handle_greeting (LbImapSession  *self,
                 LbImapResponse *r)
{
  GTask *task = g_steal_pointer (&self->greeting_task);
  g_autoptr(LbImapResponse) owned = r;

  if (r->kind == LB_IMAP_RESPONSE_UNTAGGED && r->data == LB_IMAP_DATA_STATUS &&
      (r->status == LB_IMAP_STATUS_OK || r->status == LB_IMAP_STATUS_PREAUTH))
    {
      self->state = r->status == LB_IMAP_STATUS_OK ? LB_IMAP_STATE_NOT_AUTHENTICATED
                                                   : LB_IMAP_STATE_AUTHENTICATED;
      if (r->code.kind == LB_IMAP_CODE_CAPABILITY)
        set_capabilities (self, r->code.atoms);
      g_task_return_boolean (task, TRUE);
    }
  else if (r->data == LB_IMAP_DATA_STATUS && r->status == LB_IMAP_STATUS_BYE)
    g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_BYE,
                             _("The server refused the connection: %s"), r->text);
  else
    g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                             _("The server did not greet like an IMAP server"));
  g_object_unref (task);
}

static void
dispatch (LbImapSession  *self,
          LbImapResponse *r)
{
  if (self->greeting_task != NULL)
    {
      handle_greeting (self, r);
      return;
    }

  switch (r->kind)
    {
    case LB_IMAP_RESPONSE_CONTINUATION:
      handle_continuation (self, r);
      break;

    case LB_IMAP_RESPONSE_TAGGED:
      {
        Command *cmd = find_command (self, r->tag);

        if (cmd == NULL)
          {
            lb_imap_response_free (r);
            fail_session (self, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                                             _("The server answered a command that was never "
                                               "sent")));
            return;
          }
        g_queue_remove (&self->commands, cmd);
        if (self->blocker == cmd)
          {
            self->blocker = NULL;
            complete_tagged (self, cmd, r);
            unblock (self);
          }
        else
          complete_tagged (self, cmd, r);
        break;
      }

    case LB_IMAP_RESPONSE_UNTAGGED:
    default:
      handle_untagged (self, r);
      break;
    }
}

static void
read_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(LbImapSession) self = user_data;
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  LbImapResponse *r;
  gsize len;
  const guint8 *data;

  self->reading = FALSE;
  bytes = lb_connection_read_finish (LB_CONNECTION (object), result, &error);
  if (bytes == NULL)
    {
      if (self->state == LB_IMAP_STATE_LOGOUT || self->bye_text != NULL)
        {
          g_autofree char *text = g_strdup (self->bye_text);

          g_clear_error (&error);
          error = g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_BYE, _("The server ended the session: %s"),
                               text != NULL ? text : "");
        }
      fail_session (self, error);
      return;
    }

  data = g_bytes_get_data (bytes, &len);
  if (!lb_imap_parser_feed (self->parser, data, len, &error))
    {
      GError *wrapped = error->domain == LB_IMAP_PARSE_ERROR
                          ? g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL, "%s", error->message)
                          : g_error_copy (error);

      g_clear_error (&error);
      fail_session (self, wrapped);
      return;
    }

  while (self->fatal == NULL && (r = lb_imap_parser_pop (self->parser)) != NULL)
    dispatch (self, r);

  start_reading (self);
}

static void
start_reading (LbImapSession *self)
{
  if (self->reading || self->pause_reading || self->fatal != NULL)
    return;
  self->reading = TRUE;
  lb_connection_read_async (self->connection, NULL, read_cb, g_object_ref (self));
}

/* Puts a command on the wire: its line, and its literal right away (LITERAL+) or once
 * the server asks for it. */
static void
transmit (LbImapSession *self,
          Command       *cmd)
{
  g_autofree char *line = g_steal_pointer (&cmd->line);
  g_autoptr(GBytes) literal = g_steal_pointer (&cmd->literal);
  g_autoptr(GString) out = g_string_new (line);

  if (literal != NULL)
    {
      gsize size = g_bytes_get_size (literal);
      /* LITERAL+ (RFC 7888): no round trip; LITERAL- only up to 4096 bytes. */
      gboolean plus = lb_imap_session_has_capability (self, "LITERAL+") ||
                      (size <= 4096 && lb_imap_session_has_capability (self, "LITERAL-"));

      g_string_append_printf (out, " {%zu%s}\r\n", size, plus ? "+" : "");
      send_text (self, out->str);
      if (plus)
        send_literal (self, literal);
      else
        {
          cmd->pending_literal = g_bytes_ref (literal);
          cmd->waiting_continuation = TRUE;
          self->blocker = cmd;
        }
    }
  else
    {
      g_string_append (out, "\r\n");
      send_text (self, out->str);
    }

  /* These exchanges own the line until their tagged response. */
  if (cmd->kind == CMD_AUTHENTICATE || cmd->kind == CMD_IDLE)
    self->blocker = cmd;

  /* The line may hold a password (LOGIN): wipe it. */
  memset (out->str, 0, out->len);
  memset (line, 0, strlen (line));
}

/* Sends what waited behind a command that owned the line, until one owns it again. */
static void
unblock (LbImapSession *self)
{
  Command *cmd;

  self->blocker = NULL;
  while (self->blocker == NULL && self->fatal == NULL &&
         (cmd = g_queue_pop_head (&self->held)) != NULL)
    transmit (self, cmd);
}

/* Queues a command; it is sent at once unless another owns the line. Its task completes
 * with its tagged response. */
static Command *
send_command (LbImapSession *self,
              CommandKind    kind,
              const char    *text,
              GBytes        *literal,
              GTask         *task)
{
  Command *cmd = g_new0 (Command, 1);

  cmd->self = self;
  cmd->kind = kind;
  cmd->task = task;
  cmd->tag = g_strdup_printf ("L%u", self->next_tag++);
  cmd->result = g_new0 (LbImapResult, 1);
  cmd->result->untagged = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_response_free);
  cmd->line = g_strdup_printf ("%s %s", cmd->tag, text);
  cmd->literal = literal != NULL ? g_bytes_ref (literal) : NULL;
  g_queue_push_tail (&self->commands, cmd);

  if (self->blocker != NULL)
    g_queue_push_tail (&self->held, cmd);
  else
    transmit (self, cmd);
  return cmd;
}

static GTask *
new_task (LbImapSession       *self,
          gpointer             source_tag,
          GCancellable        *cancellable,
          GAsyncReadyCallback  callback,
          gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, source_tag);
  return task;
}

/* Fails @task at once if the session cannot take commands. */
static gboolean
check_usable (LbImapSession *self,
              GTask         *task)
{
  if (self->fatal != NULL)
    {
      g_task_return_error (task, g_error_copy (self->fatal));
      g_object_unref (task);
      return FALSE;
    }
  if (self->state == LB_IMAP_STATE_DISCONNECTED || self->state == LB_IMAP_STATE_LOGOUT)
    {
      g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_BYE,
                               _("The session with the server has ended"));
      g_object_unref (task);
      return FALSE;
    }
  return TRUE;
}

/**
 * lb_imap_session_command_async:
 * @command: the command without tag and line end, such as `UID FETCH 1:* (FLAGS)`
 * @literal: (nullable): data to send as a literal at the end of the command (APPEND),
 *   non-synchronizing where LITERAL+ allows
 *
 * Sends the command at once (pipelined behind any in flight). Finishing gives the
 * result for OK and for NO (check result->tagged->status; NO codes such as TRYCREATE
 * matter); BAD and broken connections are errors.
 */
void
lb_imap_session_command_async (LbImapSession       *self,
                               const char          *command,
                               GBytes              *literal,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  lb_imap_session_command_full_async (self, command, literal, NULL, NULL, cancellable, callback,
                                      user_data);
}

/**
 * lb_imap_session_command_full_async:
 * @untagged_func: (nullable): receives each untagged response of this command as it
 *   arrives (a FETCH of a whole mailbox need not be held in memory); the result's
 *   untagged array then stays empty
 *
 * Like lb_imap_session_command_async(); finish with lb_imap_session_command_finish().
 */
void
lb_imap_session_command_full_async (LbImapSession       *self,
                                    const char          *command,
                                    GBytes              *literal,
                                    LbImapUntaggedFunc   untagged_func,
                                    gpointer             untagged_data,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  GTask *task;
  Command *cmd;
  CommandKind kind = CMD_NORMAL;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (command != NULL && strpbrk (command, "\r\n") == NULL);

  task = new_task (self, lb_imap_session_command_async, cancellable, callback, user_data);
  if (!check_usable (self, task))
    return;

  if (g_ascii_strncasecmp (command, "SELECT ", 7) == 0 ||
      g_ascii_strncasecmp (command, "EXAMINE ", 8) == 0)
    kind = CMD_SELECT;
  else if (g_ascii_strcasecmp (command, "COMPRESS DEFLATE") == 0)
    kind = CMD_COMPRESS;
  else if (g_ascii_strcasecmp (command, "LOGOUT") == 0)
    kind = CMD_LOGOUT;
  g_return_if_fail (g_ascii_strcasecmp (command, "STARTTLS") != 0);

  cmd = send_command (self, kind, command, literal, task);
  cmd->untagged_func = untagged_func;
  cmd->untagged_data = untagged_data;
}

LbImapResult *
lb_imap_session_command_finish (LbImapSession  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- connect: greeting, CAPABILITY, STARTTLS, CAPABILITY ---- */

static void connect_step (GTask *task);

static void
connect_capability_cb (GObject      *object,
                       GAsyncResult *result,
                       gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  connect_step (task);
}

static void
connect_starttls_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  g_assert (lb_connection_is_encrypted (self->connection));
  connect_step (task);
}

static void
run_internal (LbImapSession       *self,
              CommandKind          kind,
              const char          *text,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  if (!check_usable (self, task))
    return;
  send_command (self, kind, text, NULL, task);
}

/* Each step looks at what is known so far and does the next thing needed. */
static void
connect_step (GTask *task)
{
  LbImapSession *self = g_task_get_source_object (task);
  LbConnection *conn = self->connection;

  if (g_hash_table_size (self->capabilities) == 0)
    {
      run_internal (self, CMD_NORMAL, "CAPABILITY", g_task_get_cancellable (task),
                    connect_capability_cb, task);
      return;
    }

  if (lb_connection_get_security (conn) == LB_NET_SECURITY_STARTTLS &&
      !lb_connection_is_encrypted (conn))
    {
      if (self->state != LB_IMAP_STATE_NOT_AUTHENTICATED ||
          !lb_imap_session_has_capability (self, "STARTTLS"))
        {
          /* Never go on in plain text when the account says STARTTLS (RFC 8314 §4.1). */
          g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE,
                                   _("%s does not offer STARTTLS, which this account requires; "
                                     "nothing was sent unencrypted"),
                                   lb_connection_get_host (conn));
          g_object_unref (task);
          return;
        }
      run_internal (self, CMD_STARTTLS, "STARTTLS", g_task_get_cancellable (task),
                    connect_starttls_cb, task);
      return;
    }

  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
greeting_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  connect_step (task);
}

static void
connected_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!lb_connection_connect_finish (LB_CONNECTION (object), result, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  self->greeting_task = g_task_new (self, g_task_get_cancellable (task), greeting_cb, task);
  start_reading (self);
}

/**
 * lb_imap_session_connect_async:
 *
 * Connects, reads the greeting and the capabilities, and, when the connection's security
 * is STARTTLS, upgrades to TLS or fails with %LB_IMAP_ERROR_INSECURE.
 */
void
lb_imap_session_connect_async (LbImapSession       *self,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (self->state == LB_IMAP_STATE_DISCONNECTED);

  task = new_task (self, lb_imap_session_connect_async, cancellable, callback, user_data);
  lb_connection_connect_async (self->connection, cancellable, connected_cb, task);
}

gboolean
lb_imap_session_connect_finish (LbImapSession  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- login ---- */

static void
login_capability_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  /* Capabilities change with login (RFC 9051 §6.2.2); most servers send them along. */
  if (res->tagged->code.kind != LB_IMAP_CODE_CAPABILITY)
    {
      g_hash_table_remove_all (self->capabilities);
      run_internal (self, CMD_NORMAL, "CAPABILITY", g_task_get_cancellable (task),
                    login_capability_cb, task);
      return;
    }
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

char *
lb_imap_quote (const char *string)
{
  GString *out = g_string_new ("\"");

  for (const char *p = string; *p != '\0'; p++)
    {
      if (*p == '"' || *p == '\\')
        g_string_append_c (out, '\\');
      g_string_append_c (out, *p);
    }
  g_string_append_c (out, '"');
  return g_string_free (out, FALSE);
}

/**
 * lb_imap_session_login_async:
 * @secret: the password, or an OAuth 2.0 access token when @secret_is_token
 *
 * Authenticates with the strongest mechanism both sides have: SCRAM, then PLAIN and
 * LOGIN only inside TLS or to loopback, then the LOGIN command unless LOGINDISABLED. A
 * refusal is %LB_IMAP_ERROR_AUTH with the server's words.
 */
void
lb_imap_session_login_async (LbImapSession       *self,
                             const char          *user,
                             const char          *secret,
                             gboolean             secret_is_token,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  g_auto(GStrv) offered = NULL;
  GTask *task;
  GTask *inner;
  gboolean protected_channel;
  const char *mechanism;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (user != NULL && secret != NULL);

  task = new_task (self, lb_imap_session_login_async, cancellable, callback, user_data);
  if (!check_usable (self, task))
    return;
  if (self->state != LB_IMAP_STATE_NOT_AUTHENTICATED)
    {
      g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                               _("The session is already authenticated"));
      g_object_unref (task);
      return;
    }

  protected_channel = lb_connection_is_encrypted (self->connection) ||
                      lb_connection_is_loopback (self->connection);
  offered = lb_imap_session_dup_auth_mechanisms (self);
  mechanism = lb_sasl_choose_mechanism ((const char *const *) offered, secret_is_token,
                                        protected_channel);
  inner = g_task_new (self, cancellable, login_cb, task);

  if (mechanism != NULL)
    {
      g_autoptr(GString) line = g_string_new ("AUTHENTICATE ");
      GError *error = NULL;
      LbSasl *sasl = lb_sasl_new (mechanism, user, secret, &error);
      Command *cmd;

      if (sasl == NULL)
        {
          g_task_return_error (inner, error);
          g_object_unref (inner);
          return;
        }
      g_string_append (line, mechanism);
      /* SASL-IR (RFC 4959): the first response rides on the command line. */
      if (lb_imap_session_has_capability (self, "SASL-IR") && lb_sasl_has_initial_response (sasl))
        {
          g_autofree char *initial = NULL;

          if (!lb_sasl_step (sasl, NULL, &initial, &error))
            {
              lb_sasl_free (sasl);
              g_task_return_error (inner, error);
              g_object_unref (inner);
              return;
            }
          g_string_append_printf (line, " %s", initial[0] != '\0' ? initial : "=");
          memset (initial, 0, strlen (initial));
        }
      cmd = send_command (self, CMD_AUTHENTICATE, line->str, NULL, inner);
      cmd->sasl = sasl;
      memset (line->str, 0, line->len);
      return;
    }

  if (!secret_is_token && protected_channel &&
      !lb_imap_session_has_capability (self, "LOGINDISABLED"))
    {
      g_autofree char *quoted_user = lb_imap_quote (user);
      g_autofree char *quoted_secret = lb_imap_quote (secret);
      g_autofree char *line = g_strdup_printf ("LOGIN %s %s", quoted_user, quoted_secret);

      send_command (self, CMD_LOGIN, line, NULL, inner);
      memset (line, 0, strlen (line));
      memset (quoted_secret, 0, strlen (quoted_secret));
      return;
    }

  if (!protected_channel)
    g_task_return_new_error (inner, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE,
                             _("%s offers no way to log in without sending the password "
                               "unencrypted; use TLS"),
                             lb_connection_get_host (self->connection));
  else
    g_task_return_new_error (inner, LB_IMAP_ERROR, LB_IMAP_ERROR_UNSUPPORTED,
                             _("%s offers no login method Letterbox can use"),
                             lb_connection_get_host (self->connection));
  g_object_unref (inner);
}

gboolean
lb_imap_session_login_finish (LbImapSession  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- IDLE (RFC 2177) ---- */

static Command *
find_idle (LbImapSession *self)
{
  for (GList *l = self->commands.head; l != NULL; l = l->next)
    if (((Command *) l->data)->kind == CMD_IDLE)
      return l->data;
  return NULL;
}

/**
 * lb_imap_session_idle_done:
 *
 * Ends IDLE: sends DONE; the idle call completes when the server confirms.
 */
void
lb_imap_session_idle_done (LbImapSession *self)
{
  Command *cmd = find_idle (self);

  if (cmd == NULL || cmd->done_sent)
    return;
  cmd->done_sent = TRUE;
  g_clear_handle_id (&cmd->idle_timeout_id, g_source_remove);
  send_text (self, "DONE\r\n");
}

static gboolean
idle_done_in_main (gpointer user_data)
{
  lb_imap_session_idle_done (user_data);
  return G_SOURCE_REMOVE;
}

static void
idle_cancelled_cb (GCancellable *cancellable,
                   gpointer      user_data)
{
  /* From the cancellable's thread; DONE goes out from the main context. */
  g_idle_add_full (G_PRIORITY_DEFAULT, idle_done_in_main, g_object_ref (user_data),
                   g_object_unref);
}

static void
idle_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  lb_connection_set_read_timeout (self->connection, 120);
  g_cancellable_disconnect (g_task_get_cancellable (task),
                            GPOINTER_TO_SIZE (g_object_get_data (G_OBJECT (task), "cancel-id")));
  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    g_task_return_error (task, error);
  else if (res->tagged->status != LB_IMAP_STATUS_OK)
    g_task_return_error (task, error_from_tagged (res->tagged, LB_IMAP_ERROR_NO));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/**
 * lb_imap_session_idle_async:
 * @max_seconds: send DONE after this long; 0 takes the quirks' idle_seconds (29 minutes
 *   by default: servers may drop a client idle for 30, RFC 2177 §3), after which the
 *   caller re-enters IDLE
 *
 * Waits for changes; each arrives as "untagged". Cancelling sends DONE and completes,
 * once the server agreed, with %G_IO_ERROR_CANCELLED.
 */
void
lb_imap_session_idle_async (LbImapSession       *self,
                            guint                max_seconds,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  GTask *task;
  GTask *inner;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));

  task = new_task (self, lb_imap_session_idle_async, cancellable, callback, user_data);
  if (!check_usable (self, task))
    return;
  if (!lb_imap_session_has_capability (self, "IDLE"))
    {
      g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_UNSUPPORTED,
                               _("The server does not support IDLE"));
      g_object_unref (task);
      return;
    }

  if (max_seconds == 0)
    max_seconds = self->quirks.idle_seconds;
  /* A read must outlast the idle period. */
  lb_connection_set_read_timeout (self->connection, max_seconds + 60);
  inner = g_task_new (self, NULL, idle_cb, task);
  g_task_set_task_data (inner, GUINT_TO_POINTER (max_seconds), NULL);
  if (cancellable != NULL)
    g_object_set_data (G_OBJECT (task), "cancel-id",
                       GSIZE_TO_POINTER (g_cancellable_connect (cancellable,
                                                                G_CALLBACK (idle_cancelled_cb),
                                                                g_object_ref (self),
                                                                g_object_unref)));
  send_command (self, CMD_IDLE, "IDLE", NULL, inner);
}

gboolean
lb_imap_session_idle_finish (LbImapSession  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- LOGOUT ---- */

static void
logout_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  self->state = LB_IMAP_STATE_LOGOUT;
  lb_connection_close (self->connection);
  if (error != NULL && !g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_BYE))
    g_task_return_error (task, error);
  else
    {
      g_clear_error (&error);
      g_task_return_boolean (task, TRUE);
    }
  g_object_unref (task);
}

void
lb_imap_session_logout_async (LbImapSession       *self,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));

  task = new_task (self, lb_imap_session_logout_async, cancellable, callback, user_data);
  if (!check_usable (self, task))
    return;
  send_command (self, CMD_LOGOUT, "LOGOUT", NULL, g_task_new (self, NULL, logout_cb, task));
}

gboolean
lb_imap_session_logout_finish (LbImapSession  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/* ---- UID MOVE, or its equivalent where the server lacks it ---- */

/**
 * lb_imap_session_encode_mailbox:
 *
 * Returns: (transfer full): @utf8_name as a quoted mailbox argument: UTF-8 once
 *   UTF8=ACCEPT is enabled (RFC 6855), modified UTF-7 otherwise
 */
char *
lb_imap_session_encode_mailbox (LbImapSession *self,
                                const char    *utf8_name)
{
  g_autofree char *encoded = NULL;

  if (lb_imap_session_is_enabled (self, "UTF8=ACCEPT"))
    return lb_imap_quote (utf8_name);
  encoded = lb_imap_utf7_encode (utf8_name);
  return lb_imap_quote (encoded);
}

typedef enum
{
  MOVE_STEP_MOVE,
  MOVE_STEP_COPY,
  MOVE_STEP_STORE,
  MOVE_STEP_UID_EXPUNGE,
  MOVE_STEP_SEARCH_DELETED,
  MOVE_STEP_EXPUNGE,
} MoveStep;

typedef struct
{
  char **chunks;   /* the UID set cut to fit the quirks' line length */
  guint chunk;
  char *uid_set;   /* the chunk being moved */
  char *mailbox;
  MoveStep step;
  guint32 uidvalidity;
  LbImapSet *dest;
} MoveData;

static void
move_data_free (MoveData *data)
{
  g_strfreev (data->chunks);
  g_free (data->uid_set);
  g_free (data->mailbox);
  lb_imap_set_free (data->dest);
  g_free (data);
}

/* Cuts "1,3:7,9,…" at commas into pieces of at most @max bytes each. */
static char **
split_uid_set (const char *uid_set,
               gsize       max)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) parts = g_strsplit (uid_set, ",", -1);
  g_autoptr(GString) chunk = g_string_new (NULL);

  for (guint i = 0; parts[i] != NULL; i++)
    {
      if (chunk->len > 0 && chunk->len + 1 + strlen (parts[i]) > max)
        {
          g_strv_builder_add (builder, chunk->str);
          g_string_truncate (chunk, 0);
        }
      if (chunk->len > 0)
        g_string_append_c (chunk, ',');
      g_string_append (chunk, parts[i]);
    }
  if (chunk->len > 0)
    g_strv_builder_add (builder, chunk->str);
  return g_strv_builder_end (builder);
}

static void
move_take_copyuid (MoveData       *data,
                   LbImapResponse *r)
{
  if (r->data == LB_IMAP_DATA_STATUS && r->code.kind == LB_IMAP_CODE_COPYUID && r->code.set2 != NULL)
    {
      data->uidvalidity = (guint32) r->code.number;
      if (data->dest == NULL)
        data->dest = lb_imap_set_new ();
      g_array_append_vals (data->dest->ranges, r->code.set2->ranges->data,
                           r->code.set2->ranges->len);
    }
}

static void move_next (GTask *task, const char *command);
static void move_start_chunk (GTask *task);

/* This chunk is done: the next one, or the end. */
static void
move_chunk_done (GTask *task)
{
  MoveData *data = g_task_get_task_data (task);

  data->chunk++;
  if (data->chunks[data->chunk] != NULL)
    {
      move_start_chunk (task);
      return;
    }
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
move_step_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  MoveData *data = g_task_get_task_data (task);
  g_autoptr(LbImapResult) res = NULL;
  g_autofree char *command = NULL;
  GError *error = NULL;

  res = lb_imap_session_command_finish (self, result, &error);
  if (res == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (res->tagged->status != LB_IMAP_STATUS_OK)
    {
      g_task_return_error (task, error_from_tagged (res->tagged, LB_IMAP_ERROR_NO));
      g_object_unref (task);
      return;
    }

  for (guint i = 0; i < res->untagged->len; i++)
    move_take_copyuid (data, g_ptr_array_index (res->untagged, i));
  move_take_copyuid (data, res->tagged);

  switch (data->step)
    {
    case MOVE_STEP_MOVE:
    case MOVE_STEP_UID_EXPUNGE:
    case MOVE_STEP_EXPUNGE:
      move_chunk_done (task);
      return;

    case MOVE_STEP_COPY:
      /* The copy is safe on the server: only now mark the originals (RFC 9051 §6.4.8). */
      data->step = MOVE_STEP_STORE;
      command = g_strdup_printf ("UID STORE %s +FLAGS.SILENT (\\Deleted)", data->uid_set);
      break;

    case MOVE_STEP_STORE:
      if (lb_imap_session_has_capability (self, "UIDPLUS"))
        {
          /* RFC 4315 §2.1: expunges exactly these UIDs. */
          data->step = MOVE_STEP_UID_EXPUNGE;
          command = g_strdup_printf ("UID EXPUNGE %s", data->uid_set);
        }
      else
        {
          data->step = MOVE_STEP_SEARCH_DELETED;
          command = g_strdup ("UID SEARCH DELETED");
        }
      break;

    case MOVE_STEP_SEARCH_DELETED:
      {
        g_autoptr(LbImapSet) ours = NULL;
        g_autoptr(GError) parse_error = NULL;
        g_autoptr(LbImapResponse) parsed = NULL;
        /* Our UID set, read with the response parser's own set grammar. */
        g_autofree char *line = g_strdup_printf ("* VANISHED %s", data->uid_set);
        gboolean only_ours = TRUE;

        parsed = lb_imap_parse_response (line, strlen (line), &parse_error);
        for (guint i = 0; i < res->untagged->len && parsed != NULL; i++)
          {
            LbImapResponse *r = g_ptr_array_index (res->untagged, i);

            for (guint j = 0; r->data == LB_IMAP_DATA_SEARCH && j < r->numbers->len; j++)
              only_ours &= lb_imap_set_contains (parsed->vanished,
                                                 g_array_index (r->numbers, guint32, j));
          }
        /* A plain EXPUNGE removes every \Deleted message: only when they are all ours.
         * Otherwise ours stay marked, copied and safe, for the next expunge. */
        if (parsed == NULL || !only_ours)
          {
            move_chunk_done (task);
            return;
          }
        data->step = MOVE_STEP_EXPUNGE;
        command = g_strdup ("EXPUNGE");
        break;
      }

    default:
      g_assert_not_reached ();
    }

  move_next (task, command);
}

static void
move_next (GTask      *task,
           const char *command)
{
  lb_imap_session_command_async (g_task_get_source_object (task), command, NULL,
                                 g_task_get_cancellable (task), move_step_cb, task);
}

/**
 * lb_imap_session_move_async:
 * @uid_set: the UIDs to move, such as "4,7:9"
 * @mailbox: the destination's name in UTF-8
 *
 * Moves messages of the selected mailbox: UID MOVE (RFC 6851) where offered, else COPY,
 * then STORE \Deleted, then UID EXPUNGE (UIDPLUS), or a plain EXPUNGE only when no other
 * message is marked \Deleted. Nothing is removed before the copy succeeded.
 */
void
lb_imap_session_move_async (LbImapSession       *self,
                            const char          *uid_set,
                            const char          *mailbox,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  MoveData *data;
  GTask *task;
  gsize room;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (uid_set != NULL && uid_set[0] != '\0' &&
                    strspn (uid_set, "0123456789:,") == strlen (uid_set));

  task = new_task (self, lb_imap_session_move_async, cancellable, callback, user_data);
  data = g_new0 (MoveData, 1);
  data->mailbox = lb_imap_session_encode_mailbox (self, mailbox);
  /* Room for the set on the longest line: "TAG UID STORE <set> +FLAGS.SILENT (\Deleted)". */
  room = self->quirks.max_command_length > strlen (data->mailbox) + 64
           ? self->quirks.max_command_length - strlen (data->mailbox) - 64
           : 256;
  data->chunks = split_uid_set (uid_set, room);
  g_task_set_task_data (task, data, (GDestroyNotify) move_data_free);
  move_start_chunk (task);
}

static void
move_start_chunk (GTask *task)
{
  LbImapSession *self = g_task_get_source_object (task);
  MoveData *data = g_task_get_task_data (task);
  g_autofree char *command = NULL;

  g_free (data->uid_set);
  data->uid_set = g_strdup (data->chunks[data->chunk]);
  if (lb_imap_session_has_capability (self, "MOVE"))
    {
      data->step = MOVE_STEP_MOVE;
      command = g_strdup_printf ("UID MOVE %s %s", data->uid_set, data->mailbox);
    }
  else
    {
      data->step = MOVE_STEP_COPY;
      command = g_strdup_printf ("UID COPY %s %s", data->uid_set, data->mailbox);
    }
  move_next (task, command);
}

/**
 * lb_imap_session_move_finish:
 * @dest_uidvalidity: (out) (optional): the destination's UIDVALIDITY, 0 if not reported
 * @dest_uids: (out) (optional) (transfer full): the messages' new UIDs (COPYUID,
 *   RFC 4315), %NULL if the server did not say
 */
gboolean
lb_imap_session_move_finish (LbImapSession  *self,
                             GAsyncResult   *result,
                             guint32        *dest_uidvalidity,
                             LbImapSet     **dest_uids,
                             GError        **error)
{
  MoveData *data;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  data = g_task_get_task_data (G_TASK (result));
  if (dest_uidvalidity != NULL)
    *dest_uidvalidity = data->uidvalidity;
  if (dest_uids != NULL)
    *dest_uids = g_steal_pointer (&data->dest);
  return TRUE;
}
