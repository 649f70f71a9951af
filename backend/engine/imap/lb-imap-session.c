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
  CMD_CLOSE,
} CommandKind;

/* Returns TRUE when it took the response (it frees it then), FALSE to have it freed. */
typedef gboolean (*TakeFunc) (LbImapResponse *response,
                              gpointer        user_data);

/* One message of an APPEND, streamed as a literal (RFC 9051 §6.3.12, RFC 3502). */
typedef struct
{
  char *head;            /* what comes before its literal: " (\\Seen) \"date\"" */
  GInputStream *stream;
  guint64 size;
} Upload;

typedef struct _Uploader Uploader;

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
  TakeFunc take_func;
  gpointer take_data;
  GPtrArray *uploads;   /* Upload*: the messages of an APPEND, streamed */
  guint upload_index;
  Uploader *uploader;   /* the literal going out now */
  char *select_mailbox; /* typed SELECT/EXAMINE: the mailbox as sent */
  gboolean select_read_only;
} Command;

/* Streams one message into the connection in chunks, so that a large message is never
 * held whole. Outlives its command when the session fails under it (cmd is then NULL). */
struct _Uploader
{
  LbImapSession *self;
  Command *cmd;
  GInputStream *stream;
  GCancellable *cancellable;
  guint64 size;
  guint64 sent;
};

#define UPLOAD_CHUNK (64 * 1024)

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
  /* A literal going out: nothing else may be sent until its last byte is. It may outlive
   * its command when the server answered early (see dispatch()). */
  Uploader *streaming;
  GQueue held;
  GTask *greeting_task;
  gboolean reading;
  gboolean pause_reading;
  GError *fatal;
  char *bye_text;
  const LbImapLiteralSink *sink;
  gpointer sink_data;
  /* What the caller asked for, and what is in force: that plus the server's rules. */
  LbImapQuirks requested;
  LbImapQuirks quirks;
  const char *server_kind;
  char *greeting;
  GPtrArray *server_id;  /* alternating key, value ("" for NIL) from ID (RFC 2971) */
  gboolean identified;
  /* The mailbox selected by lb_imap_session_select_async() as sent, or NULL when none
   * or unknown (a SELECT sent as a raw command). */
  char *selected_mailbox;
  gboolean selected_read_only;
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
upload_free (Upload *upload)
{
  g_free (upload->head);
  g_clear_object (&upload->stream);
  g_free (upload);
}

static void
command_free (Command *cmd)
{
  if (cmd->uploader != NULL)
    cmd->uploader->cmd = NULL;
  g_clear_pointer (&cmd->uploads, g_ptr_array_unref);
  g_free (cmd->select_mailbox);
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
  lb_imap_quirks_clear (&self->requested);
  lb_imap_quirks_clear (&self->quirks);
  g_free (self->greeting);
  g_clear_pointer (&self->server_id, g_ptr_array_unref);
  g_free (self->selected_mailbox);

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
  lb_imap_quirks_init_defaults (&self->requested);
  lb_imap_quirks_init_defaults (&self->quirks);
}

void
lb_imap_quirks_init_defaults (LbImapQuirks *quirks)
{
  quirks->disabled_capabilities = NULL;
  quirks->max_command_length = 8192;
  quirks->idle_seconds = 29 * 60;
  quirks->max_connections = 0;
  quirks->fixed = FALSE;
}

/* Frees what lb_imap_quirks_for_server() or a copy allocated. */
void
lb_imap_quirks_clear (LbImapQuirks *quirks)
{
  g_clear_pointer (&quirks->disabled_capabilities, g_strfreev);
}

static gboolean
str_contains_ci (const char *haystack,
                 const char *needle)
{
  g_autofree char *h = NULL;
  g_autofree char *n = NULL;

  if (haystack == NULL)
    return FALSE;
  h = g_ascii_strdown (haystack, -1);
  n = g_ascii_strdown (needle, -1);
  return strstr (h, n) != NULL;
}

/**
 * lb_imap_quirks_for_server:
 * @quirks: (out caller-allocates): set to the defaults plus the rules for this server;
 *   free with lb_imap_quirks_clear()
 * @capabilities: (nullable): the capabilities after login, upper case
 * @greeting: (nullable): the text of the server's greeting (after "* OK")
 * @id_params: (nullable): the server's ID response (RFC 2971) as alternating keys and
 *   values, "" for NIL
 *
 * Recognises servers whose limits are publicly documented and applies those, each rule
 * with its source beside it. Pure: no I/O, the same answer for the same input.
 *
 * Returns: (nullable): which server was recognised ("gmail", "exchange"), or %NULL
 */
const char *
lb_imap_quirks_for_server (LbImapQuirks      *quirks,
                           const char *const *capabilities,
                           const char        *greeting,
                           const char *const *id_params)
{
  const char *id_name = NULL;

  lb_imap_quirks_init_defaults (quirks);
  for (guint i = 0; id_params != NULL && id_params[i] != NULL && id_params[i + 1] != NULL; i += 2)
    if (g_ascii_strcasecmp (id_params[i], "name") == 0)
      id_name = id_params[i + 1];

  /* Gmail: greets "* OK Gimap ready for requests from …", answers ID with name "GImap",
   * and advertises X-GM-EXT-1 (Google, "IMAP Extensions", developers.google.com/gmail/
   * imap/imap-extensions). */
  if ((greeting != NULL && g_ascii_strncasecmp (greeting, "Gimap ", 6) == 0) ||
      (id_name != NULL && g_ascii_strcasecmp (id_name, "GImap") == 0) ||
      (capabilities != NULL && g_strv_contains (capabilities, "X-GM-EXT-1")))
    {
      /* Gmail Help, "Too many simultaneous connections" (answer 97150): "a limit of 10
       * simultaneous IMAP connections per account"; later figures say 15, so 10 is safe
       * either way. Google documents no IDLE or line limit below RFC 7162's 8192 and
       * RFC 2177's 29 minutes, so those stay. */
      quirks->max_connections = 10;
      return "gmail";
    }

  /* Microsoft Exchange and Exchange Online: the default banner is "The Microsoft
   * Exchange IMAP4 service is ready." (Set-ImapSettings, -Banner). */
  if (str_contains_ci (greeting, "Microsoft Exchange") || str_contains_ci (id_name, "Exchange"))
    {
      /* "Set connection limits for IMAP4" (Exchange Server 2013): at most 16 connections
       * from a single user by default. The same page gives the maximum command size as
       * 10,240 bytes by default (1,024–16,384 settable), above our 8192; "Set connection
       * time-out limits for IMAP4" gives 1,800 s for an idle authenticated connection,
       * which the 29-minute IDLE interval already respects. */
      quirks->max_connections = 16;
      return "exchange";
    }

  return NULL;
}

/* What @rules set below the defaults makes @quirks more careful: smaller limits, more
 * distrust. A caller's deliberate choice beyond the defaults stays. */
static void
quirks_tighten (LbImapQuirks       *quirks,
                const LbImapQuirks *rules)
{
  LbImapQuirks defaults;

  lb_imap_quirks_init_defaults (&defaults);
  if (rules->max_command_length < defaults.max_command_length)
    quirks->max_command_length = MIN (quirks->max_command_length, rules->max_command_length);
  if (rules->idle_seconds < defaults.idle_seconds)
    quirks->idle_seconds = MIN (quirks->idle_seconds, rules->idle_seconds);
  if (rules->max_connections > 0)
    quirks->max_connections = quirks->max_connections > 0
                                ? MIN (quirks->max_connections, rules->max_connections)
                                : rules->max_connections;
  for (guint i = 0; rules->disabled_capabilities != NULL && rules->disabled_capabilities[i] != NULL;
       i++)
    {
      g_autoptr(GStrvBuilder) builder = NULL;

      if (quirks->disabled_capabilities != NULL &&
          g_strv_contains ((const char *const *) quirks->disabled_capabilities,
                           rules->disabled_capabilities[i]))
        continue;
      builder = g_strv_builder_new ();
      if (quirks->disabled_capabilities != NULL)
        g_strv_builder_addv (builder, (const char **) quirks->disabled_capabilities);
      g_strv_builder_add (builder, rules->disabled_capabilities[i]);
      g_strfreev (quirks->disabled_capabilities);
      quirks->disabled_capabilities = g_strv_builder_end (builder);
    }
}

/* The quirks in force: the caller's, tightened by the server's rules once it is known. */
static void
update_quirks (LbImapSession *self)
{
  lb_imap_quirks_clear (&self->quirks);
  self->quirks = self->requested;
  self->quirks.disabled_capabilities = g_strdupv (self->requested.disabled_capabilities);
  self->server_kind = NULL;

  if (!self->requested.fixed && self->identified)
    {
      g_autoptr(GPtrArray) caps = g_ptr_array_new ();
      g_autoptr(GPtrArray) id = g_ptr_array_new ();
      LbImapQuirks rules;
      GHashTableIter iter;
      gpointer cap;

      g_hash_table_iter_init (&iter, self->capabilities);
      while (g_hash_table_iter_next (&iter, &cap, NULL))
        g_ptr_array_add (caps, cap);
      g_ptr_array_add (caps, NULL);
      for (guint i = 0; self->server_id != NULL && i < self->server_id->len; i++)
        g_ptr_array_add (id, g_ptr_array_index (self->server_id, i));
      g_ptr_array_add (id, NULL);

      self->server_kind = lb_imap_quirks_for_server (&rules, (const char *const *) caps->pdata,
                                                     self->greeting,
                                                     (const char *const *) id->pdata);
      quirks_tighten (&self->quirks, &rules);
      lb_imap_quirks_clear (&rules);
      if (self->server_kind != NULL)
        g_debug ("%s: rules for %s in force", lb_connection_get_host (self->connection),
                 self->server_kind);
    }
}

/**
 * lb_imap_session_set_quirks:
 *
 * Sets the workarounds for this server (copied). Unless @quirks is fixed, the rules for
 * the server (lb_imap_quirks_for_server()) are added once it is known, after login.
 */
void
lb_imap_session_set_quirks (LbImapSession      *self,
                            const LbImapQuirks *quirks)
{
  g_return_if_fail (LB_IS_IMAP_SESSION (self));

  lb_imap_quirks_clear (&self->requested);
  self->requested = *quirks;
  self->requested.disabled_capabilities = g_strdupv (quirks->disabled_capabilities);
  if (self->requested.max_command_length < 1024)
    self->requested.max_command_length = 1024;
  update_quirks (self);
}

/**
 * lb_imap_session_get_server_id:
 * @key: such as "name", "version", "vendor"
 *
 * Returns: (nullable): what the server said of itself in its ID response (RFC 2971),
 *   asked for after login unless the quirks are fixed
 */
const char *
lb_imap_session_get_server_id (LbImapSession *self,
                               const char    *key)
{
  for (guint i = 0; self->server_id != NULL && i + 1 < self->server_id->len; i += 2)
    if (g_ascii_strcasecmp (g_ptr_array_index (self->server_id, i), key) == 0)
      return g_ptr_array_index (self->server_id, i + 1);
  return NULL;
}

/**
 * lb_imap_session_get_server_kind:
 *
 * Returns: (nullable): the server whose rules are in force ("gmail", "exchange"), or
 *   %NULL for none
 */
const char *
lb_imap_session_get_server_kind (LbImapSession *self)
{
  return self->server_kind;
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
  self->streaming = NULL;
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
static void upload_start (LbImapSession *self, Command *cmd);
static void upload_announce (LbImapSession *self, Command *cmd, const char *head);

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
      g_clear_pointer (&self->selected_mailbox, g_free);
      if (status == LB_IMAP_STATUS_OK)
        {
          self->selected_mailbox = g_strdup (cmd->select_mailbox);
          self->selected_read_only = cmd->select_read_only ||
                                     tagged->code.kind == LB_IMAP_CODE_READ_ONLY;
        }
      break;

    case CMD_CLOSE:
      if (status == LB_IMAP_STATUS_OK)
        {
          self->state = LB_IMAP_STATE_AUTHENTICATED;
          g_clear_pointer (&self->selected_mailbox, g_free);
        }
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

  if (cmd->waiting_continuation && cmd->uploads != NULL)
    {
      cmd->waiting_continuation = FALSE;
      upload_start (self, cmd);
    }
  else if (cmd->waiting_continuation)
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

  if (oldest != NULL && oldest->take_func != NULL)
    {
      if (!oldest->take_func (r, oldest->take_data))
        lb_imap_response_free (r);
    }
  else if (oldest != NULL && oldest->untagged_func != NULL)
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
      g_free (self->greeting);
      self->greeting = g_strdup (r->text);
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
        if (cmd->uploader != NULL)
          {
            /* Answered (NO [TRYCREATE], say) while its non-synchronizing literal is still
             * going out: the server reads and discards the rest (RFC 7888 §4: a literal
             * is part of the command however the command ends), so the upload finishes
             * the announced bytes and ends the line, and holds the line until then. */
            cmd->uploader->cmd = NULL;
            cmd->uploader = NULL;
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

/* LITERAL+ (RFC 7888): no round trip; LITERAL- only up to 4096 bytes. */
static gboolean
literal_plus_allowed (LbImapSession *self,
                      guint64        size)
{
  return lb_imap_session_has_capability (self, "LITERAL+") ||
         (size <= 4096 && lb_imap_session_has_capability (self, "LITERAL-"));
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

  if (cmd->uploads != NULL)
    {
      /* The command owns the line until its last literal is out. */
      self->blocker = cmd;
      upload_announce (self, cmd, line);
      memset (line, 0, strlen (line));
      return;
    }

  if (literal != NULL)
    {
      gsize size = g_bytes_get_size (literal);
      gboolean plus;

      plus = literal_plus_allowed (self, size);
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
  while (self->blocker == NULL && self->streaming == NULL && self->fatal == NULL &&
         (cmd = g_queue_pop_head (&self->held)) != NULL)
    transmit (self, cmd);
}

/* Queues a command; it is sent at once unless another owns the line. Its task completes
 * with its tagged response. */
static Command *
send_command_full (LbImapSession *self,
                   CommandKind    kind,
                   const char    *text,
                   GBytes        *literal,
                   GPtrArray     *uploads,
                   const char    *select_mailbox,
                   gboolean       select_read_only,
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
  cmd->uploads = uploads != NULL ? g_ptr_array_ref (uploads) : NULL;
  cmd->select_mailbox = g_strdup (select_mailbox);
  cmd->select_read_only = select_read_only;
  g_queue_push_tail (&self->commands, cmd);

  if (self->blocker != NULL || self->streaming != NULL)
    g_queue_push_tail (&self->held, cmd);
  else
    transmit (self, cmd);
  return cmd;
}

static Command *
send_command (LbImapSession *self,
              CommandKind    kind,
              const char    *text,
              GBytes        *literal,
              GTask         *task)
{
  return send_command_full (self, kind, text, literal, NULL, NULL, FALSE, task);
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
  else if (g_ascii_strcasecmp (command, "CLOSE") == 0 ||
           g_ascii_strcasecmp (command, "UNSELECT") == 0)
    kind = CMD_CLOSE;
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
login_id_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL && self->fatal != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  /* A server that refuses ID is still a server: it just stays unrecognised. */
  g_clear_error (&error);
  for (guint i = 0; res != NULL && i < res->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (res->untagged, i);

      if (r->data != LB_IMAP_DATA_ID || r->id == NULL)
        continue;
      g_clear_pointer (&self->server_id, g_ptr_array_unref);
      self->server_id = g_ptr_array_new_with_free_func (g_free);
      for (guint j = 0; j < r->id->len; j++)
        {
          const char *v = g_ptr_array_index (r->id, j);

          g_ptr_array_add (self->server_id, g_strdup (v != NULL ? v : ""));
        }
    }
  self->identified = TRUE;
  update_quirks (self);
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* Learns which server this is, for its quirks: the greeting is known; ID (RFC 2971) tells
 * more, and Gmail asks clients to announce themselves with it. Skipped when the caller
 * fixed the quirks. */
static void
login_identify (GTask *task)
{
  LbImapSession *self = g_task_get_source_object (task);

  if (self->requested.fixed)
    {
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  if (!lb_imap_session_has_capability (self, "ID"))
    {
      self->identified = TRUE;
      update_quirks (self);
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  run_internal (self, CMD_NORMAL, "ID (\"name\" \"Letterbox\" \"version\" \"" PACKAGE_VERSION "\")",
                g_task_get_cancellable (task), login_id_cb, task);
}

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
    {
      g_task_return_error (task, error);
      g_object_unref (task);
    }
  else
    login_identify (task);
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
  login_identify (task);
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

/* ---- Literals streamed from a GInputStream (APPEND) ---- */

static void uploader_read (Uploader *up);

static void
uploader_free (Uploader *up)
{
  if (up->cmd != NULL)
    up->cmd->uploader = NULL;
  if (up->self->streaming == up)
    up->self->streaming = NULL;
  g_object_unref (up->self);
  g_object_unref (up->stream);
  g_clear_object (&up->cancellable);
  g_free (up);
}

/* The stream let us down halfway through a literal. The server is owed exactly the
 * announced number of bytes and cannot be told otherwise (RFC 9051 §4.3): whatever we
 * sent next would become part of the message or be read as commands. So the connection
 * is closed, which also leaves the APPEND incomplete: nothing is appended. The upload's
 * caller learns why; every other waiting command fails with a protocol error. */
static void
upload_fail (Uploader *up,
             GError   *error)
{
  g_autoptr(LbImapSession) self = g_object_ref (up->self);
  Command *cmd = up->cmd;

  if (cmd == NULL)
    {
      /* The command was answered already; only the connection is left to close. */
      uploader_free (up);
      fail_session (self, error);
      return;
    }
  g_queue_remove (&self->commands, cmd);
  uploader_free (up);
  fail_session (self, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL,
                                   _("The connection was closed because a message upload "
                                     "could not be completed")));
  finish_command (cmd, error);
}

static void
uploader_write_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Uploader *up = user_data;
  GError *error = NULL;

  if (!lb_connection_write_finish (LB_CONNECTION (object), result, &error))
    {
      if (up->self->fatal == NULL)
        fail_session (up->self, error);
      else
        g_error_free (error);
      uploader_free (up);
      return;
    }
  if (up->self->fatal != NULL)
    {
      uploader_free (up);
      return;
    }
  uploader_read (up);
}

/* This message's literal is out: announce the next one, or end the command. */
static void
upload_part_done (Uploader *up)
{
  LbImapSession *self = g_object_ref (up->self);
  Command *cmd = up->cmd;

  uploader_free (up);
  if (cmd == NULL)
    {
      /* Answered early: end the line here, without the messages not yet announced. */
      send_text (self, "\r\n");
      unblock (self);
      g_object_unref (self);
      return;
    }
  cmd->upload_index++;
  if (cmd->upload_index < cmd->uploads->len)
    {
      Upload *next = g_ptr_array_index (cmd->uploads, cmd->upload_index);

      upload_announce (self, cmd, next->head);
    }
  else
    {
      send_text (self, "\r\n");
      if (self->blocker == cmd)
        unblock (self);
    }
  g_object_unref (self);
}

static void
uploader_read_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Uploader *up = user_data;
  g_autoptr(GBytes) bytes = NULL;
  GError *error = NULL;
  gsize len;

  bytes = g_input_stream_read_bytes_finish (G_INPUT_STREAM (object), result, &error);
  if (up->self->fatal != NULL)
    {
      /* The session failed meanwhile; its commands have their answers already. */
      g_clear_error (&error);
      uploader_free (up);
      return;
    }
  if (bytes == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          GError *wrapped = g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE,
                                         _("Could not read the message to upload: %s"),
                                         error->message);

          g_clear_error (&error);
          error = wrapped;
        }
      upload_fail (up, error);
      return;
    }

  len = g_bytes_get_size (bytes);
  if (up->sent == up->size)
    {
      /* All announced bytes are out; the stream must be at its end now. */
      g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT, up->size);

      if (len == 0)
        upload_part_done (up);
      else
        /* Translators: %s is a number of bytes */
        upload_fail (up, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE,
                                      _("The message to upload is longer than the %s bytes "
                                        "announced"),
                                      size));
      return;
    }
  if (len == 0)
    {
      g_autofree char *sent = g_strdup_printf ("%" G_GUINT64_FORMAT, up->sent);
      g_autofree char *size = g_strdup_printf ("%" G_GUINT64_FORMAT, up->size);

      /* Translators: "ended after 1000 of the 5000 bytes announced" */
      upload_fail (up, g_error_new (LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE,
                                    _("The message to upload ended after %s of the %s bytes "
                                      "announced"),
                                    sent, size));
      return;
    }
  up->sent += len;
  lb_connection_write_async (up->self->connection, bytes, NULL, uploader_write_cb, up);
}

/* One chunk at a time: the next is read only once the last was handed to the kernel, so
 * memory stays at a chunk or two however large the message. */
static void
uploader_read (Uploader *up)
{
  gsize want = up->size > up->sent ? (gsize) MIN (up->size - up->sent, UPLOAD_CHUNK) : 1;

  g_input_stream_read_bytes_async (up->stream, want, G_PRIORITY_DEFAULT, up->cancellable,
                                   uploader_read_cb, up);
}

static void
upload_start (LbImapSession *self,
              Command       *cmd)
{
  Upload *upload = g_ptr_array_index (cmd->uploads, cmd->upload_index);
  Uploader *up = g_new0 (Uploader, 1);
  GCancellable *cancellable = g_task_get_cancellable (cmd->task);

  up->self = g_object_ref (self);
  up->cmd = cmd;
  up->stream = g_object_ref (upload->stream);
  up->cancellable = cancellable != NULL ? g_object_ref (cancellable) : NULL;
  up->size = upload->size;
  cmd->uploader = up;
  self->streaming = up;
  uploader_read (up);
}

/* Sends "<head> {size}" and streams the literal at once (LITERAL+, or LITERAL- up to
 * 4096 bytes) or after the server's "+". */
static void
upload_announce (LbImapSession *self,
                 Command       *cmd,
                 const char    *head)
{
  Upload *upload = g_ptr_array_index (cmd->uploads, cmd->upload_index);
  gboolean plus = literal_plus_allowed (self, upload->size);
  g_autofree char *text = g_strdup_printf ("%s {%" G_GUINT64_FORMAT "%s}\r\n", head,
                                           upload->size, plus ? "+" : "");

  send_text (self, text);
  if (plus)
    upload_start (self, cmd);
  else
    cmd->waiting_continuation = TRUE;
}

/* ---- Helpers of the typed commands ---- */

/* A NO as an error: the mailbox missing is its own code, so callers can create it. */
static GError *
error_from_refusal (LbImapResponse *tagged)
{
  if (tagged->code.kind == LB_IMAP_CODE_TRYCREATE || tagged->code.kind == LB_IMAP_CODE_NONEXISTENT)
    return error_from_tagged (tagged, LB_IMAP_ERROR_NONEXISTENT);
  return error_from_tagged (tagged, LB_IMAP_ERROR_NO);
}

/* Flags are atoms, optionally after one backslash (RFC 9051 §9 flag, flag-keyword). */
static gboolean
flags_valid (const char *const *flags)
{
  for (guint i = 0; flags != NULL && flags[i] != NULL; i++)
    {
      const char *f = flags[i][0] == '\\' ? flags[i] + 1 : flags[i];

      if (f[0] == '\0')
        return FALSE;
      for (const char *p = f; *p != '\0'; p++)
        if ((guchar) *p <= ' ' || (guchar) *p >= 0x7f || strchr ("(){%*\"\\]", *p) != NULL)
          return FALSE;
    }
  return TRUE;
}

static void
append_flag_list (GString           *out,
                  const char *const *flags)
{
  g_string_append_c (out, '(');
  for (guint i = 0; flags != NULL && flags[i] != NULL; i++)
    {
      if (i > 0)
        g_string_append_c (out, ' ');
      g_string_append (out, flags[i]);
    }
  g_string_append_c (out, ')');
}

/* RFC 9051 §9 date-time: "dd-Mon-yyyy hh:mm:ss +zzzz", the day space-padded, month
 * names in English whatever the locale. */
static void
append_date_time (GString   *out,
                  GDateTime *date)
{
  static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                        "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
  gint64 offset = g_date_time_get_utc_offset (date) / G_TIME_SPAN_MINUTE;
  char sign = offset < 0 ? '-' : '+';

  offset = ABS (offset);
  g_string_append_printf (out, "\"%2d-%s-%04d %02d:%02d:%02d %c%02d%02d\"",
                          g_date_time_get_day_of_month (date),
                          months[g_date_time_get_month (date) - 1],
                          g_date_time_get_year (date), g_date_time_get_hour (date),
                          g_date_time_get_minute (date), g_date_time_get_second (date), sign,
                          (int) (offset / 60), (int) (offset % 60));
}

/* Appends @uid to @set, extending the last range when it follows on. */
static void
set_add (LbImapSet *set,
         guint32    uid)
{
  LbImapRange *last = set->ranges->len > 0
                        ? &g_array_index (set->ranges, LbImapRange, set->ranges->len - 1)
                        : NULL;
  LbImapRange range = { uid, uid };

  if (last != NULL && last->last + 1 == uid)
    last->last = uid;
  else
    g_array_append_val (set->ranges, range);
}

static void
set_add_set (LbImapSet       *set,
             const LbImapSet *more)
{
  if (more != NULL)
    g_array_append_vals (set->ranges, more->ranges->data, more->ranges->len);
}

static gboolean
uid_set_valid (const char *uid_set)
{
  return uid_set != NULL && uid_set[0] != '\0' &&
         strspn (uid_set, "0123456789:,*") == strlen (uid_set);
}

/* ---- APPEND, MULTIAPPEND (RFC 3502) ---- */

typedef struct
{
  guint n;
  guint pending;
  guint32 uidvalidity;
  guint32 *uids;   /* per message, 0 when the server did not say */
  GError *error;   /* the first failure */
} AppendData;

typedef struct
{
  GTask *task;
  guint first;     /* index of the command's first message */
  guint count;
} AppendPart;

static void
append_data_free (AppendData *data)
{
  g_free (data->uids);
  g_clear_error (&data->error);
  g_free (data);
}

static void
append_part_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  AppendPart *part = user_data;
  GTask *task = part->task;
  AppendData *data = g_task_get_task_data (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res != NULL && res->tagged->status != LB_IMAP_STATUS_OK)
    error = error_from_refusal (res->tagged);
  if (error != NULL)
    {
      /* An unreadable message fails the other commands too: name the cause, not them. */
      if (data->error == NULL || (g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE) &&
                                  !g_error_matches (data->error, LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE)))
        {
          g_clear_error (&data->error);
          data->error = error;
        }
      else
        g_error_free (error);
    }
  else if (res->tagged->code.kind == LB_IMAP_CODE_APPENDUID && res->tagged->code.set != NULL &&
           lb_imap_set_count (res->tagged->code.set) == part->count)
    {
      /* RFC 4315 §3: the UIDs in the order of the messages. */
      LbImapSet *set = res->tagged->code.set;
      guint k = part->first;

      data->uidvalidity = (guint32) res->tagged->code.number;
      for (guint i = 0; i < set->ranges->len; i++)
        {
          LbImapRange *r = &g_array_index (set->ranges, LbImapRange, i);

          for (guint64 u = r->first; u <= r->last && k < part->first + part->count; u++)
            data->uids[k++] = (guint32) u;
        }
    }
  g_free (part);

  if (--data->pending > 0)
    return;
  if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* One APPEND command carrying @count messages from @first. */
static void
append_send (LbImapSession             *self,
             GTask                     *task,
             const char                *mailbox,
             const LbImapAppendMessage *messages,
             guint                      first,
             guint                      count)
{
  g_autoptr(GPtrArray) uploads = g_ptr_array_new_with_free_func ((GDestroyNotify) upload_free);
  g_autoptr(GString) head = g_string_new ("APPEND ");
  AppendPart *part = g_new0 (AppendPart, 1);

  g_string_append (head, mailbox);
  for (guint i = first; i < first + count; i++)
    {
      Upload *upload = g_new0 (Upload, 1);
      GString *opts = g_string_new (NULL);

      if (messages[i].flags != NULL && messages[i].flags[0] != NULL)
        {
          g_string_append_c (opts, ' ');
          append_flag_list (opts, messages[i].flags);
        }
      if (messages[i].internal_date != NULL)
        {
          g_string_append_c (opts, ' ');
          append_date_time (opts, messages[i].internal_date);
        }
      upload->stream = g_object_ref (messages[i].stream);
      upload->size = (guint64) messages[i].size;
      /* The first message's options follow the mailbox on the command line itself. */
      if (i == first)
        {
          g_string_append (head, opts->str);
          upload->head = g_strdup ("");
        }
      else
        upload->head = g_strdup (opts->str);
      g_string_free (opts, TRUE);
      g_ptr_array_add (uploads, upload);
    }

  part->task = task;
  part->first = first;
  part->count = count;
  send_command_full (self, CMD_NORMAL, head->str, NULL, uploads, NULL, FALSE,
                     g_task_new (self, g_task_get_cancellable (task), append_part_cb, part));
}

/**
 * lb_imap_session_append_many_async:
 * @mailbox: the mailbox's name in UTF-8
 * @messages: (array length=n_messages): what to append, each streamed from its stream in
 *   chunks of 64 KiB, so that no message is ever held whole
 *
 * Appends the messages as one APPEND when the server offers MULTIAPPEND (RFC 3502: all or
 * none are appended), else as pipelined single APPENDs, where a failure leaves those
 * before it appended. Each literal is non-synchronizing where LITERAL+ (or LITERAL- up to
 * 4096 bytes) allows, else sent after the server's "+"; the command holds the line until
 * its last byte is out.
 *
 * A stream that fails, or holds fewer or more bytes than its size, fails the call with
 * %LB_IMAP_ERROR_SOURCE and closes the connection (the server is owed exactly the
 * announced bytes; nothing half-sent is appended); so does cancelling once a literal has
 * begun. The streams are read from the session's main context.
 */
void
lb_imap_session_append_many_async (LbImapSession             *self,
                                   const char                *mailbox,
                                   const LbImapAppendMessage *messages,
                                   guint                      n_messages,
                                   GCancellable              *cancellable,
                                   GAsyncReadyCallback        callback,
                                   gpointer                   user_data)
{
  g_autofree char *encoded = NULL;
  AppendData *data;
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (mailbox != NULL && messages != NULL && n_messages > 0);
  for (guint i = 0; i < n_messages; i++)
    {
      g_return_if_fail (G_IS_INPUT_STREAM (messages[i].stream));
      g_return_if_fail (messages[i].size >= 0);
      g_return_if_fail (flags_valid (messages[i].flags));
    }

  task = new_task (self, lb_imap_session_append_many_async, cancellable, callback, user_data);
  data = g_new0 (AppendData, 1);
  data->n = n_messages;
  data->uids = g_new0 (guint32, n_messages);
  g_task_set_task_data (task, data, (GDestroyNotify) append_data_free);
  if (!check_usable (self, task))
    return;

  encoded = lb_imap_session_encode_mailbox (self, mailbox);
  if (n_messages == 1 || lb_imap_session_has_capability (self, "MULTIAPPEND"))
    {
      data->pending = 1;
      append_send (self, task, encoded, messages, 0, n_messages);
    }
  else
    {
      data->pending = n_messages;
      for (guint i = 0; i < n_messages; i++)
        append_send (self, task, encoded, messages, i, 1);
    }
}

/**
 * lb_imap_session_append_many_finish:
 * @uidvalidity: (out) (optional): the mailbox's UIDVALIDITY, 0 without UIDPLUS
 * @uids: (out) (optional) (transfer full): the new messages' UIDs in their order
 *   (APPENDUID, RFC 4315), %NULL when the server did not tell them all
 */
gboolean
lb_imap_session_append_many_finish (LbImapSession  *self,
                                    GAsyncResult   *result,
                                    guint32        *uidvalidity,
                                    LbImapSet     **uids,
                                    GError        **error)
{
  AppendData *data;
  LbImapSet *set;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  data = g_task_get_task_data (G_TASK (result));
  if (uidvalidity != NULL)
    *uidvalidity = data->uidvalidity;
  if (uids != NULL)
    {
      set = lb_imap_set_new ();
      for (guint i = 0; i < data->n && set != NULL; i++)
        if (data->uids[i] == 0)
          g_clear_pointer (&set, lb_imap_set_free);
        else
          set_add (set, data->uids[i]);
      *uids = set;
    }
  return TRUE;
}

static void
append_one_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  GTask *task = user_data;
  GError *error = NULL;
  guint32 *out = g_new0 (guint32, 2);
  g_autoptr(LbImapSet) uids = NULL;

  if (!lb_imap_session_append_many_finish (LB_IMAP_SESSION (object), result, &out[0], &uids,
                                           &error))
    {
      g_free (out);
      g_task_return_error (task, error);
    }
  else
    {
      if (uids != NULL)
        out[1] = g_array_index (uids->ranges, LbImapRange, 0).first;
      g_task_return_pointer (task, out, g_free);
    }
  g_object_unref (task);
}

/**
 * lb_imap_session_append_async:
 * @mailbox: the mailbox's name in UTF-8
 * @flags: (nullable) (array zero-terminated=1): the message's flags
 * @internal_date: (nullable): its internal date; %NULL leaves it to the server
 * @message: the message, read from here in chunks: it is never held whole
 * @size: exactly how many bytes @message holds
 *
 * APPEND (RFC 9051 §6.3.12) of one message, streamed; see
 * lb_imap_session_append_many_async() for literals, failures and cancelling.
 */
void
lb_imap_session_append_async (LbImapSession       *self,
                              const char          *mailbox,
                              const char *const   *flags,
                              GDateTime           *internal_date,
                              GInputStream        *message,
                              goffset              size,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  LbImapAppendMessage m = { message, size, flags, internal_date };
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));

  task = new_task (self, lb_imap_session_append_async, cancellable, callback, user_data);
  lb_imap_session_append_many_async (self, mailbox, &m, 1, cancellable, append_one_cb, task);
}

/**
 * lb_imap_session_append_finish:
 * @uidvalidity: (out) (optional): the mailbox's UIDVALIDITY, 0 when not told
 * @uid: (out) (optional): the new message's UID (APPENDUID, RFC 4315), 0 when not told
 */
gboolean
lb_imap_session_append_finish (LbImapSession  *self,
                               GAsyncResult   *result,
                               guint32        *uidvalidity,
                               guint32        *uid,
                               GError        **error)
{
  g_autofree guint32 *out = NULL;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  out = g_task_propagate_pointer (G_TASK (result), error);
  if (out == NULL)
    return FALSE;
  if (uidvalidity != NULL)
    *uidvalidity = out[0];
  if (uid != NULL)
    *uid = out[1];
  return TRUE;
}

/* ---- Drafts without CATENATE ---- */

typedef enum
{
  DRAFT_STEP_APPEND,
  DRAFT_STEP_SELECT,
  DRAFT_STEP_STORE,
  DRAFT_STEP_EXPUNGE,
} DraftStep;

typedef struct
{
  char *mailbox;   /* UTF-8 */
  char *encoded;
  guint32 old_uid;
  guint32 new_uid;
  gboolean old_removed;
  DraftStep step;
} DraftData;

static void
draft_data_free (DraftData *data)
{
  g_free (data->mailbox);
  g_free (data->encoded);
  g_free (data);
}

static void draft_store (GTask *task);

static void
draft_command_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  GTask *task = user_data;
  LbImapSession *self = g_task_get_source_object (task);
  DraftData *data = g_task_get_task_data (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = lb_imap_session_command_finish (self, result, &error);
  if (res != NULL && res->tagged->status != LB_IMAP_STATUS_OK)
    error = error_from_refusal (res->tagged);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  if (data->step == DRAFT_STEP_STORE && lb_imap_session_has_capability (self, "UIDPLUS"))
    {
      g_autofree char *command = g_strdup_printf ("UID EXPUNGE %u", data->old_uid);

      /* RFC 4315 §2.1: removes exactly this message, never another client's \Deleted. */
      data->step = DRAFT_STEP_EXPUNGE;
      lb_imap_session_command_async (self, command, NULL, g_task_get_cancellable (task),
                                     draft_command_cb, task);
      return;
    }
  /* Without UIDPLUS a plain EXPUNGE could remove what others marked: the old draft stays,
   * marked \Deleted, for the next expunge. */
  data->old_removed = data->step == DRAFT_STEP_EXPUNGE;
  g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

static void
draft_select_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(LbImapMailboxInfo) info = NULL;
  GError *error = NULL;

  info = lb_imap_session_select_finish (LB_IMAP_SESSION (object), result, &error);
  if (info == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  draft_store (task);
}

static void
draft_store (GTask *task)
{
  LbImapSession *self = g_task_get_source_object (task);
  DraftData *data = g_task_get_task_data (task);
  g_autofree char *command = NULL;

  /* STORE needs the mailbox selected read-write. */
  if (self->state != LB_IMAP_STATE_SELECTED || self->selected_read_only ||
      g_strcmp0 (self->selected_mailbox, data->encoded) != 0)
    {
      if (data->step == DRAFT_STEP_SELECT)
        {
          g_task_return_new_error (task, LB_IMAP_ERROR, LB_IMAP_ERROR_NO,
                                   _("The drafts mailbox could not be opened for writing"));
          g_object_unref (task);
          return;
        }
      data->step = DRAFT_STEP_SELECT;
      lb_imap_session_select_async (self, data->mailbox, FALSE, NULL, NULL, NULL,
                                    g_task_get_cancellable (task), draft_select_cb, task);
      return;
    }
  data->step = DRAFT_STEP_STORE;
  command = g_strdup_printf ("UID STORE %u +FLAGS.SILENT (\\Deleted)", data->old_uid);
  lb_imap_session_command_async (self, command, NULL, g_task_get_cancellable (task),
                                 draft_command_cb, task);
}

static void
draft_append_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  DraftData *data = g_task_get_task_data (task);
  GError *error = NULL;

  if (!lb_imap_session_append_finish (LB_IMAP_SESSION (object), result, NULL, &data->new_uid,
                                      &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  /* The new draft is safe on the server: only now may the old one go. */
  if (data->old_uid == 0)
    {
      data->old_removed = TRUE;
      g_task_return_boolean (task, TRUE);
      g_object_unref (task);
      return;
    }
  draft_store (task);
}

/**
 * lb_imap_session_replace_draft_async:
 * @mailbox: the drafts mailbox's name in UTF-8
 * @old_uid: the draft being replaced, or 0 for a first save
 * @flags: (nullable) (array zero-terminated=1): the new draft's flags; \Draft is added
 * @message: the new draft, streamed (see lb_imap_session_append_async())
 *
 * Saves a new version of a draft without CATENATE: APPENDs the new one, and only after
 * the server accepted it marks the old one \Deleted and removes it with UID EXPUNGE
 * (UIDPLUS, RFC 4315) — never a plain EXPUNGE, which would also remove every other
 * message marked \Deleted. Without UIDPLUS the old draft stays, marked \Deleted. Marking
 * needs @mailbox selected read-write: when lb_imap_session_select_async() did not leave
 * it so, it is selected, and stays selected.
 */
void
lb_imap_session_replace_draft_async (LbImapSession       *self,
                                     const char          *mailbox,
                                     guint32              old_uid,
                                     const char *const   *flags,
                                     GInputStream        *message,
                                     goffset              size,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) all_flags = NULL;
  DraftData *data;
  GTask *task;
  gboolean has_draft = FALSE;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (mailbox != NULL);

  for (guint i = 0; flags != NULL && flags[i] != NULL; i++)
    {
      has_draft |= g_ascii_strcasecmp (flags[i], "\\Draft") == 0;
      g_strv_builder_add (builder, flags[i]);
    }
  if (!has_draft)
    g_strv_builder_add (builder, "\\Draft");
  all_flags = g_strv_builder_end (builder);

  task = new_task (self, lb_imap_session_replace_draft_async, cancellable, callback, user_data);
  data = g_new0 (DraftData, 1);
  data->mailbox = g_strdup (mailbox);
  data->encoded = lb_imap_session_encode_mailbox (self, mailbox);
  data->old_uid = old_uid;
  data->step = DRAFT_STEP_APPEND;
  g_task_set_task_data (task, data, (GDestroyNotify) draft_data_free);
  lb_imap_session_append_async (self, mailbox, (const char *const *) all_flags, NULL, message,
                                size, cancellable, draft_append_cb, task);
}

/**
 * lb_imap_session_replace_draft_finish:
 * @old_removed: (out) (optional): whether the old draft is gone (TRUE also when there was
 *   none); FALSE when it stays marked \Deleted because the server lacks UIDPLUS
 *
 * Returns: the new draft's UID, 0 when the server did not tell it (or on error)
 */
guint32
lb_imap_session_replace_draft_finish (LbImapSession  *self,
                                      GAsyncResult   *result,
                                      gboolean       *old_removed,
                                      GError        **error)
{
  DraftData *data;

  g_return_val_if_fail (g_task_is_valid (result, self), 0);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return 0;
  data = g_task_get_task_data (G_TASK (result));
  if (old_removed != NULL)
    *old_removed = data->old_removed;
  return data->new_uid;
}

/* ---- SELECT / EXAMINE ---- */

void
lb_imap_mailbox_info_free (LbImapMailboxInfo *info)
{
  if (info == NULL)
    return;
  g_strfreev (info->flags);
  g_strfreev (info->permanent_flags);
  lb_imap_set_free (info->vanished);
  g_clear_pointer (&info->changed, g_ptr_array_unref);
  g_free (info);
}

typedef struct
{
  LbImapMailboxInfo *info;
  LbImapUntaggedFunc changed_func;
  gpointer changed_data;
  gboolean qresync_asked;
  guint32 qresync_uidvalidity;
} SelectData;

static void
select_data_free (SelectData *data)
{
  lb_imap_mailbox_info_free (data->info);
  g_free (data);
}

static char **
strv_from_atoms (GPtrArray *atoms)
{
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();

  for (guint i = 0; atoms != NULL && i < atoms->len; i++)
    g_strv_builder_add (builder, g_ptr_array_index (atoms, i));
  return g_strv_builder_end (builder);
}

static void
select_take_code (LbImapMailboxInfo *info,
                  LbImapCode        *code)
{
  if (code->kind == LB_IMAP_CODE_UIDVALIDITY)
    info->uidvalidity = (guint32) code->number;
  else if (code->kind == LB_IMAP_CODE_UIDNEXT)
    info->uidnext = (guint32) code->number;
  else if (code->kind == LB_IMAP_CODE_UNSEEN)
    info->unseen = (guint32) code->number;
  else if (code->kind == LB_IMAP_CODE_HIGHESTMODSEQ)
    info->highestmodseq = code->number;
  else if (code->kind == LB_IMAP_CODE_NOMODSEQ)
    info->nomodseq = TRUE;
  else if (code->kind == LB_IMAP_CODE_PERMANENTFLAGS)
    {
      g_strfreev (info->permanent_flags);
      info->permanent_flags = strv_from_atoms (code->atoms);
    }
  else if (code->kind == LB_IMAP_CODE_READ_ONLY)
    info->read_only = TRUE;
  else if (code->kind == LB_IMAP_CODE_READ_WRITE)
    info->read_only = FALSE;
}

static gboolean
select_take (LbImapResponse *r,
             gpointer        user_data)
{
  SelectData *data = user_data;
  LbImapMailboxInfo *info = data->info;

  if (r->data == LB_IMAP_DATA_STATUS && r->code.kind == LB_IMAP_CODE_CLOSED)
    {
      /* RFC 7162 §3.2.11: what came before was about the previous mailbox. */
      g_clear_pointer (&info->vanished, lb_imap_set_free);
      g_ptr_array_set_size (info->changed, 0);
      info->exists = info->recent = 0;
    }
  else if (r->data == LB_IMAP_DATA_STATUS)
    select_take_code (info, &r->code);
  else if (r->data == LB_IMAP_DATA_FLAGS)
    {
      g_strfreev (info->flags);
      info->flags = strv_from_atoms (r->atoms);
    }
  else if (r->data == LB_IMAP_DATA_EXISTS)
    info->exists = r->number;
  else if (r->data == LB_IMAP_DATA_RECENT)
    info->recent = r->number;
  else if (r->data == LB_IMAP_DATA_VANISHED)
    {
      if (info->vanished == NULL)
        info->vanished = lb_imap_set_new ();
      set_add_set (info->vanished, r->vanished);
    }
  else if (r->data == LB_IMAP_DATA_FETCH && data->changed_func != NULL)
    data->changed_func (r, data->changed_data);
  else if (r->data == LB_IMAP_DATA_FETCH)
    {
      g_ptr_array_add (info->changed, r);
      return TRUE;
    }
  return FALSE;
}

static void
select_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  SelectData *data = g_task_get_task_data (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = g_task_propagate_pointer (G_TASK (result), &error);
  if (res == NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  if (res->tagged->status != LB_IMAP_STATUS_OK)
    {
      g_task_return_error (task, error_from_refusal (res->tagged));
      g_object_unref (task);
      return;
    }
  select_take_code (data->info, &res->tagged->code);
  /* A changed UIDVALIDITY voids what the client knew: the server ignores the QRESYNC
   * parameters then (RFC 7162 §3.2.5.1). */
  data->info->qresync = data->qresync_asked &&
                        data->info->uidvalidity == data->qresync_uidvalidity;
  g_task_return_pointer (task, g_steal_pointer (&data->info),
                         (GDestroyNotify) lb_imap_mailbox_info_free);
  g_object_unref (task);
}

/**
 * lb_imap_session_select_async:
 * @mailbox: the mailbox's name in UTF-8
 * @read_only: EXAMINE rather than SELECT
 * @qresync: (nullable): what the client knows, to be told only the changes since (QRESYNC,
 *   RFC 7162 §3.2.5; ENABLEd first where needed). Without QRESYNC on the server the call
 *   is a plain SELECT and the info says qresync FALSE.
 * @changed_func: (nullable): receives each FETCH of a message changed since @qresync's
 *   modseq as it arrives, in the session's main context; without it they are collected in
 *   the info's changed array
 *
 * Selects a mailbox and tells what the server said of it. With CONDSTORE (and without
 * QRESYNC) the SELECT asks for it (RFC 7162 §3.1.8) so that HIGHESTMODSEQ is known.
 */
void
lb_imap_session_select_async (LbImapSession             *self,
                              const char                *mailbox,
                              gboolean                   read_only,
                              const LbImapQresyncParams *qresync,
                              LbImapUntaggedFunc         changed_func,
                              gpointer                   changed_data,
                              GCancellable              *cancellable,
                              GAsyncReadyCallback        callback,
                              gpointer                   user_data)
{
  g_autofree char *encoded = NULL;
  g_autoptr(GString) command = g_string_new (read_only ? "EXAMINE " : "SELECT ");
  SelectData *data;
  GTask *task;
  Command *cmd;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (mailbox != NULL);
  g_return_if_fail (qresync == NULL || qresync->known_uids == NULL ||
                    uid_set_valid (qresync->known_uids));

  task = new_task (self, lb_imap_session_select_async, cancellable, callback, user_data);
  data = g_new0 (SelectData, 1);
  data->info = g_new0 (LbImapMailboxInfo, 1);
  data->info->changed = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_imap_response_free);
  data->info->read_only = read_only;
  data->changed_func = changed_func;
  data->changed_data = changed_data;
  g_task_set_task_data (task, data, (GDestroyNotify) select_data_free);
  if (!check_usable (self, task))
    return;

  encoded = lb_imap_session_encode_mailbox (self, mailbox);
  g_string_append (command, encoded);
  /* ENABLE is valid only before a mailbox is selected (RFC 5161 §3.1). */
  if (qresync != NULL && lb_imap_session_has_capability (self, "QRESYNC") &&
      (lb_imap_session_is_enabled (self, "QRESYNC") || self->state == LB_IMAP_STATE_AUTHENTICATED))
    {
      /* Pipelined: the server handles ENABLE before the SELECT that needs it. */
      if (!lb_imap_session_is_enabled (self, "QRESYNC"))
        run_internal (self, CMD_NORMAL, "ENABLE QRESYNC", NULL, (GAsyncReadyCallback) NULL, NULL);
      data->qresync_asked = TRUE;
      data->qresync_uidvalidity = qresync->uidvalidity;
      g_string_append_printf (command, " (QRESYNC (%u %" G_GUINT64_FORMAT "%s%s))",
                              qresync->uidvalidity, qresync->modseq,
                              qresync->known_uids != NULL ? " " : "",
                              qresync->known_uids != NULL ? qresync->known_uids : "");
    }
  else if (lb_imap_session_has_capability (self, "CONDSTORE") &&
           !lb_imap_session_is_enabled (self, "QRESYNC"))
    g_string_append (command, " (CONDSTORE)");

  cmd = send_command_full (self, CMD_SELECT, command->str, NULL, NULL, encoded, read_only,
                           g_task_new (self, cancellable, select_cb, task));
  cmd->take_func = select_take;
  cmd->take_data = data;
}

/**
 * lb_imap_session_select_finish:
 *
 * Returns: (transfer full): what the server told of the mailbox; a mailbox that does not
 *   exist is %LB_IMAP_ERROR_NONEXISTENT, another refusal %LB_IMAP_ERROR_NO
 */
LbImapMailboxInfo *
lb_imap_session_select_finish (LbImapSession  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- Commands over UID sets, split to fit the line (UID FETCH, UID STORE) ---- */

typedef struct
{
  guint pending;
  GError *error;
  LbImapSet *modified;
} ChunkedData;

static void
chunked_data_free (ChunkedData *data)
{
  g_clear_error (&data->error);
  lb_imap_set_free (data->modified);
  g_free (data);
}

static void
chunk_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  GTask *task = user_data;
  ChunkedData *data = g_task_get_task_data (task);
  g_autoptr(LbImapResult) res = NULL;
  GError *error = NULL;

  res = lb_imap_session_command_finish (LB_IMAP_SESSION (object), result, &error);
  if (res != NULL && res->tagged->status != LB_IMAP_STATUS_OK)
    error = error_from_refusal (res->tagged);
  if (error != NULL)
    {
      if (data->error == NULL)
        data->error = error;
      else
        g_error_free (error);
    }
  else if (res->tagged->code.kind == LB_IMAP_CODE_MODIFIED)
    {
      /* RFC 7162 §3.1.3: the messages UNCHANGEDSINCE protected from this STORE. */
      if (data->modified == NULL)
        data->modified = lb_imap_set_new ();
      set_add_set (data->modified, res->tagged->code.set);
    }

  if (--data->pending > 0)
    return;
  if (data->error != NULL)
    g_task_return_error (task, g_steal_pointer (&data->error));
  else
    g_task_return_boolean (task, TRUE);
  g_object_unref (task);
}

/* Sends "<before><chunk><after>" for each piece of @uid_set, pipelined. */
static void
send_chunked (LbImapSession      *self,
              GTask              *task,
              const char         *before,
              const char         *uid_set,
              const char         *after,
              LbImapUntaggedFunc  untagged_func,
              gpointer            untagged_data)
{
  ChunkedData *data = g_task_get_task_data (task);
  gsize overhead = strlen (before) + strlen (after) + 16; /* tag, spaces, CRLF */
  gsize room = self->quirks.max_command_length > overhead + 256
                 ? self->quirks.max_command_length - overhead
                 : 256;
  g_auto(GStrv) chunks = split_uid_set (uid_set, room);

  data->pending = g_strv_length (chunks);
  for (guint i = 0; chunks[i] != NULL; i++)
    {
      g_autofree char *command = g_strconcat (before, chunks[i], after, NULL);

      lb_imap_session_command_full_async (self, command, NULL, untagged_func, untagged_data,
                                          g_task_get_cancellable (task), chunk_cb, task);
    }
}

/**
 * lb_imap_session_uid_fetch_async:
 * @uid_set: such as "1:*" or "4,7:9"; split into several commands when longer than the
 *   quirks allow on one line
 * @items: the data items, such as "(UID FLAGS MODSEQ)" or "BODY.PEEK[]"
 * @changed_since: 0, or only messages whose mod-sequence is above it (CHANGEDSINCE,
 *   RFC 7162 §3.1.4); with QRESYNC enabled, expunged UIDs of the set then come as
 *   VANISHED (EARLIER) (§3.2.6)
 * @untagged_func: receives every untagged response of the fetch (FETCH, VANISHED, and
 *   whatever else the server says meanwhile) as it arrives, in the session's main context
 *
 * Large bodies go to the session's literal sink (lb_imap_session_set_literal_sink()).
 */
void
lb_imap_session_uid_fetch_async (LbImapSession       *self,
                                 const char          *uid_set,
                                 const char          *items,
                                 guint64              changed_since,
                                 LbImapUntaggedFunc   untagged_func,
                                 gpointer             untagged_data,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  g_autofree char *after = NULL;
  g_autofree char *modifiers = NULL;
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (uid_set_valid (uid_set));
  g_return_if_fail (items != NULL && items[0] != '\0' && strpbrk (items, "\r\n") == NULL);
  g_return_if_fail (untagged_func != NULL);

  task = new_task (self, lb_imap_session_uid_fetch_async, cancellable, callback, user_data);
  g_task_set_task_data (task, g_new0 (ChunkedData, 1), (GDestroyNotify) chunked_data_free);
  if (!check_usable (self, task))
    return;

  if (changed_since > 0)
    modifiers = g_strdup_printf (" (CHANGEDSINCE %" G_GUINT64_FORMAT "%s)", changed_since,
                                 lb_imap_session_is_enabled (self, "QRESYNC") ? " VANISHED" : "");
  after = g_strdup_printf (items[0] == '(' ? " %s%s" : " (%s)%s", items,
                           modifiers != NULL ? modifiers : "");
  send_chunked (self, task, "UID FETCH ", uid_set, after, untagged_func, untagged_data);
}

gboolean
lb_imap_session_uid_fetch_finish (LbImapSession  *self,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
ignore_untagged (LbImapResponse *response,
                 gpointer        user_data)
{
}

/**
 * lb_imap_session_uid_store_async:
 * @uid_set: the messages; split to fit the line as for lb_imap_session_uid_fetch_async()
 * @flags: (array zero-terminated=1): the flags to add, remove or set
 * @unchanged_since: 0, or store only in messages whose mod-sequence is not above it
 *   (UNCHANGEDSINCE, RFC 7162 §3.1.3); the others are reported as modified
 * @untagged_func: (nullable): receives the FETCH responses telling the new flags (and
 *   MODSEQ); without it the store is .SILENT
 *
 * UID STORE on the selected mailbox.
 */
void
lb_imap_session_uid_store_async (LbImapSession       *self,
                                 const char          *uid_set,
                                 LbImapStoreAction    action,
                                 const char *const   *flags,
                                 guint64              unchanged_since,
                                 LbImapUntaggedFunc   untagged_func,
                                 gpointer             untagged_data,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  static const char *const names[] = { "+FLAGS", "-FLAGS", "FLAGS" };
  g_autoptr(GString) after = g_string_new (NULL);
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (uid_set_valid (uid_set));
  g_return_if_fail (action <= LB_IMAP_STORE_REPLACE);
  g_return_if_fail (flags != NULL && flags_valid (flags));

  task = new_task (self, lb_imap_session_uid_store_async, cancellable, callback, user_data);
  g_task_set_task_data (task, g_new0 (ChunkedData, 1), (GDestroyNotify) chunked_data_free);
  if (!check_usable (self, task))
    return;

  if (unchanged_since > 0)
    g_string_append_printf (after, " (UNCHANGEDSINCE %" G_GUINT64_FORMAT ")", unchanged_since);
  g_string_append_printf (after, " %s%s ", names[action], untagged_func == NULL ? ".SILENT" : "");
  append_flag_list (after, flags);
  send_chunked (self, task, "UID STORE ", uid_set, after->str,
                untagged_func != NULL ? untagged_func : ignore_untagged, untagged_data);
}

/**
 * lb_imap_session_uid_store_finish:
 * @modified: (out) (optional) (transfer full): the UIDs left unchanged because they were
 *   modified since unchanged_since (MODIFIED, RFC 7162 §3.1.3), %NULL when none
 */
gboolean
lb_imap_session_uid_store_finish (LbImapSession  *self,
                                  GAsyncResult   *result,
                                  LbImapSet     **modified,
                                  GError        **error)
{
  ChunkedData *data;

  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  if (!g_task_propagate_boolean (G_TASK (result), error))
    return FALSE;
  data = g_task_get_task_data (G_TASK (result));
  if (modified != NULL)
    *modified = g_steal_pointer (&data->modified);
  return TRUE;
}

/* ---- UID SEARCH ---- */

static gint
compare_uids (gconstpointer a,
              gconstpointer b)
{
  guint32 x = *(const guint32 *) a, y = *(const guint32 *) b;

  return x < y ? -1 : x > y;
}

static void
search_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  GTask *task = user_data;
  g_autoptr(LbImapResult) res = NULL;
  g_autoptr(GArray) numbers = g_array_new (FALSE, FALSE, sizeof (guint32));
  LbImapSet *set;
  GError *error = NULL;

  res = lb_imap_session_command_finish (LB_IMAP_SESSION (object), result, &error);
  if (res != NULL && res->tagged->status != LB_IMAP_STATUS_OK)
    error = error_from_refusal (res->tagged);
  if (error != NULL)
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }

  set = lb_imap_set_new ();
  for (guint i = 0; i < res->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (res->untagged, i);

      /* ESEARCH (RFC 4731): ALL is absent when nothing matched. */
      if (r->data == LB_IMAP_DATA_ESEARCH && r->esearch->uid)
        set_add_set (set, r->esearch->all);
      else if (r->data == LB_IMAP_DATA_SEARCH)
        g_array_append_vals (numbers, r->numbers->data, r->numbers->len);
    }
  /* Plain SEARCH lists the UIDs in any order: sorted, they fold into ranges. */
  g_array_sort (numbers, compare_uids);
  for (guint i = 0; i < numbers->len; i++)
    {
      guint32 uid = g_array_index (numbers, guint32, i);

      if (i == 0 || uid != g_array_index (numbers, guint32, i - 1))
        set_add (set, uid);
    }
  g_task_return_pointer (task, set, (GDestroyNotify) lb_imap_set_free);
  g_object_unref (task);
}

/**
 * lb_imap_session_uid_search_async:
 * @criteria: the search keys (RFC 9051 §6.4.4) in ASCII, such as "UNSEEN SINCE 1-Jan-2024"
 *
 * UID SEARCH on the selected mailbox, as ESEARCH RETURN (ALL) where offered (RFC 4731:
 * the answer comes as ranges), else the plain SEARCH.
 */
void
lb_imap_session_uid_search_async (LbImapSession       *self,
                                  const char          *criteria,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autofree char *command = NULL;
  GTask *task;

  g_return_if_fail (LB_IS_IMAP_SESSION (self));
  g_return_if_fail (criteria != NULL && criteria[0] != '\0' && strpbrk (criteria, "\r\n") == NULL);

  task = new_task (self, lb_imap_session_uid_search_async, cancellable, callback, user_data);
  if (!check_usable (self, task))
    return;
  if (lb_imap_session_has_capability (self, "ESEARCH"))
    command = g_strdup_printf ("UID SEARCH RETURN (ALL) %s", criteria);
  else
    command = g_strdup_printf ("UID SEARCH %s", criteria);
  lb_imap_session_command_async (self, command, NULL, cancellable, search_cb, task);
}

/**
 * lb_imap_session_uid_search_finish:
 *
 * Returns: (transfer full): the matching UIDs, an empty set when none
 */
LbImapSet *
lb_imap_session_uid_search_finish (LbImapSession  *self,
                                   GAsyncResult   *result,
                                   GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
