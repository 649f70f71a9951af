/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-outbox"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-build.h"
#include "lb-outbox.h"
#include "lb-smtp-session.h"
#include "lb-store-import.h"

/*
 * The persistent outbox (DESIGN.md: "the relay answers 250 only after the message is
 * fsync'd in the queue").
 *
 * A submission is checked and routed in a worker thread, then written as one row of the
 * `outbox` table (with its bytes) by the store's writer, followed by a flush: it
 * completes only once the row is on disk. Submissions that arrive together land in one
 * writer batch and share its commit and its fsync (group commit). Mail for the local
 * user goes into Local Folders' Inbox in the same transaction as the row.
 *
 * The worker (lb_outbox_start()) sends due rows through their account's SMTP server, one
 * connection per account at a time, one message after another on it. Every state change
 * is a writer job: `sending` (made durable before DATA), then the outcome — delivered:
 * `sent`; refused for good: `failed`; refused for now: back to `queued` with a later
 * attempt (exponential backoff with jitter, until the message expires and is given up).
 *
 * A row found `sending` at start was interrupted after DATA may have begun: it is sent
 * again (RFC 1047's window — a duplicate is possible, a loss is not) and that is logged.
 * To keep that window short, the outcome is written the moment the server has replied,
 * as a lone UPDATE of the row; what it leaves to add to the store — the copy in the
 * account's Sent folder (an "append" journal entry for sync to upload, keyed by the queue
 * id so that it exists once), a notice in Local Folders' Inbox for a refusal — stays
 * marked in the row (`sent_copy_folder`, `notice`) and is added right after, or at the
 * next start if the process died in between: never by sending again.
 */

#define DEFAULT_RETRY_BASE_MS 60000            /* 1 min, doubling … */
#define RETRY_CAP_FACTOR 60                    /* … up to 60 × base: 1 h */
#define DEFAULT_GIVE_UP_MS (2 * 24 * 3600 * (guint64) 1000) /* 2 days */
#define KEEP_DONE_US ((gint64) 30 * 24 * 3600 * G_USEC_PER_SEC) /* finished rows, for listing */

struct _LbOutbox
{
  GObject parent_instance;

  LbStore *store;
  LbStoreWriter *writer;
  char *data_dir;

  GMutex lock; /* guards db */
  sqlite3 *db; /* reads only */

  guint retry_base_ms;
  guint64 give_up_ms;

  gboolean started;
  GMainContext *context;
  GCancellable *cancellable;
  GSource *timer;
  GSource *poke;
  GHashTable *busy; /* account id → Run*: one connection per account */
  /* account id → Unreachable*, guarded by lock: an account whose server could not be
   * reached (or refused the login) is not tried again before its own retry time, not
   * even for a message submitted meanwhile (a dead destination, as MTAs keep them). */
  GHashTable *unreachable;
  gint64 not_before; /* after trouble with the store, no run starts before this */
};

typedef struct
{
  guint failures; /* runs in a row that could not reach the server */
  gint64 until;   /* real time, µs */
} Unreachable;

G_DEFINE_FINAL_TYPE (LbOutbox, lb_outbox, G_TYPE_OBJECT)

enum
{
  PROP_0,
  PROP_RETRY_BASE_MS,
  PROP_GIVE_UP_MS,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

enum
{
  SIGNAL_SENT,
  SIGNAL_FAILED,
  SIGNAL_CHANGED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void schedule (LbOutbox *self);
static void poke (LbOutbox *self);
static void pause_runs (LbOutbox *self);

/* A test hook for crash safety (tests/integration/test-outbox.c), like LB_SYNC_CRASH_AT:
 * with LB_OUTBOX_CRASH_AT set to a step's name, the process kills itself with SIGKILL
 * there — "replied": the server took a message, nothing is written yet; "accepted": that
 * is committed, the Sent copy and any notice are not. */
static void
crash_point (const char *step)
{
  const char *want = g_getenv ("LB_OUTBOX_CRASH_AT");

  if (want != NULL && strcmp (want, step) == 0)
    raise (SIGKILL);
}

/* ---- items ------------------------------------------------------------------------ */

static const char *const state_names[] = { "queued", "sending", "sent", "failed", "cancelled" };

const char *
lb_outbox_state_to_string (LbOutboxState state)
{
  g_return_val_if_fail ((guint) state < G_N_ELEMENTS (state_names), NULL);
  return state_names[state];
}

static LbOutboxState
state_from_string (const char *text)
{
  for (guint i = 0; i < G_N_ELEMENTS (state_names); i++)
    if (g_strcmp0 (text, state_names[i]) == 0)
      return (LbOutboxState) i;
  return LB_OUTBOX_STATE_QUEUED;
}

LbOutboxItem *
lb_outbox_item_copy (const LbOutboxItem *item)
{
  LbOutboxItem *copy = g_new0 (LbOutboxItem, 1);

  *copy = *item;
  copy->queue_id = g_strdup (item->queue_id);
  copy->account_id = g_strdup (item->account_id);
  copy->sender = g_strdup (item->sender);
  copy->recipients = g_strdupv (item->recipients);
  copy->subject = g_strdup (item->subject);
  copy->last_error = g_strdup (item->last_error);
  return copy;
}

void
lb_outbox_item_free (LbOutboxItem *item)
{
  if (item == NULL)
    return;
  g_free (item->queue_id);
  g_free (item->account_id);
  g_free (item->sender);
  g_strfreev (item->recipients);
  g_free (item->subject);
  g_free (item->last_error);
  g_free (item);
}

G_DEFINE_BOXED_TYPE (LbOutboxItem, lb_outbox_item, lb_outbox_item_copy, lb_outbox_item_free)

/* ---- rows (read through the outbox's own connection) ------------------------------ */

typedef struct
{
  LbOutboxItem item;
  gint64 expires;
  gint64 sent_message_id;
  char *notice;     /* a pending failure notice: GVariant text of NOTICE_TYPE */
  gint64 sent_copy_folder; /* a pending Sent copy, for this folder; 0 if none */
  GBytes *message;  /* only when asked for */
} Row;

static void
row_free (Row *row)
{
  g_free (row->item.queue_id);
  g_free (row->item.account_id);
  g_free (row->item.sender);
  g_strfreev (row->item.recipients);
  g_free (row->item.subject);
  g_free (row->item.last_error);
  g_free (row->notice);
  g_clear_pointer (&row->message, g_bytes_unref);
  g_free (row);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Row, row_free)

/* The state shown: a message sent (or refused for good) whose Sent copy or notice is not
 * in the store yet is still `sending`, so that `sent` and `failed` keep meaning done. */
#define SHOWN_STATE "CASE WHEN state IN ('sent', 'failed') AND (notice IS NOT NULL OR " \
                    "sent_copy_folder IS NOT NULL) THEN 'sending' ELSE state END"

#define ROW_COLUMNS "queue_id, account_id, sender, recipients, subject, size, " SHOWN_STATE ", " \
                    "attempts, " \
                    "next_attempt, last_error, created, expires, sent_message_id, notice, " \
                    "sent_copy_folder"

static char *
column_dup (sqlite3_stmt *s,
            int           column)
{
  const char *text = (const char *) sqlite3_column_text (s, column);

  return text != NULL ? g_strdup (text) : NULL;
}

static gboolean
read_failed (LbOutbox  *self,
             GError   **error)
{
  g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("Could not read the outbox: %s"),
               sqlite3_errmsg (self->db));
  return FALSE;
}

/* Rows matching @where, which may use ?1 (@text) and ?2 (@number). Any thread. */
static GPtrArray *
read_rows (LbOutbox    *self,
           const char  *where,
           const char  *text,
           gint64       number,
           gboolean     with_message,
           GError     **error)
{
  g_autofree char *sql = g_strdup_printf ("SELECT " ROW_COLUMNS "%s FROM outbox %s",
                                          with_message ? ", message" : "", where);
  g_autoptr(GPtrArray) rows = g_ptr_array_new_with_free_func ((GDestroyNotify) row_free);
  sqlite3_stmt *s = NULL;
  int rc;

  g_mutex_lock (&self->lock);
  rc = sqlite3_prepare_v2 (self->db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK)
    {
      if (text != NULL)
        sqlite3_bind_text (s, 1, text, -1, SQLITE_STATIC);
      sqlite3_bind_int64 (s, 2, number);
    }
  while (rc == SQLITE_OK || rc == SQLITE_ROW)
    {
      Row *row;
      const char *recipients;

      if ((rc = sqlite3_step (s)) != SQLITE_ROW)
        break;
      row = g_new0 (Row, 1);
      recipients = (const char *) sqlite3_column_text (s, 3);
      row->item.queue_id = column_dup (s, 0);
      row->item.account_id = column_dup (s, 1);
      row->item.sender = column_dup (s, 2);
      row->item.recipients = recipients != NULL && recipients[0] != '\0'
                               ? g_strsplit (recipients, "\n", -1) : g_new0 (char *, 1);
      row->item.subject = column_dup (s, 4);
      row->item.size = (guint64) sqlite3_column_int64 (s, 5);
      row->item.state = state_from_string ((const char *) sqlite3_column_text (s, 6));
      row->item.attempts = (guint) sqlite3_column_int (s, 7);
      row->item.next_attempt = sqlite3_column_int64 (s, 8);
      row->item.last_error = column_dup (s, 9);
      row->item.created = sqlite3_column_int64 (s, 10);
      row->expires = sqlite3_column_int64 (s, 11);
      row->sent_message_id = sqlite3_column_int64 (s, 12);
      row->notice = column_dup (s, 13);
      row->sent_copy_folder = sqlite3_column_int64 (s, 14);
      if (with_message && sqlite3_column_type (s, 15) == SQLITE_BLOB)
        row->message = g_bytes_new (sqlite3_column_blob (s, 15),
                                    (gsize) sqlite3_column_bytes (s, 15));
      g_ptr_array_add (rows, row);
    }
  if (rc != SQLITE_DONE)
    read_failed (self, error);
  sqlite3_finalize (s);
  g_mutex_unlock (&self->lock);
  return rc == SQLITE_DONE ? g_steal_pointer (&rows) : NULL;
}

static Row *
read_row (LbOutbox    *self,
          const char  *queue_id,
          gboolean     with_message,
          GError     **error)
{
  g_autoptr(GPtrArray) rows = read_rows (self, "WHERE queue_id = ?1", queue_id, 0, with_message,
                                         error);

  if (rows == NULL)
    return NULL;
  if (rows->len == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   _("There is no message %s in the outbox"), queue_id);
      return NULL;
    }
  return g_ptr_array_steal_index (rows, 0);
}

/* A folder of @account_id by role (else by name, if @name is given); 0 if none. */
static gint64
find_folder (LbOutbox    *self,
             const char  *account_id,
             const char  *role,
             const char  *name)
{
  sqlite3_stmt *s = NULL;
  gint64 id = 0;

  g_mutex_lock (&self->lock);
  if (sqlite3_prepare_v2 (self->db,
                          "SELECT id FROM folders WHERE account_id = ?1 AND "
                          "(role = ?2 OR (role IS NULL AND name = ?3)) "
                          "ORDER BY role IS NULL, id LIMIT 1", -1, &s, NULL) == SQLITE_OK)
    {
      sqlite3_bind_text (s, 1, account_id, -1, SQLITE_STATIC);
      sqlite3_bind_text (s, 2, role, -1, SQLITE_STATIC);
      if (name != NULL)
        sqlite3_bind_text (s, 3, name, -1, SQLITE_STATIC);
      if (sqlite3_step (s) == SQLITE_ROW)
        id = sqlite3_column_int64 (s, 0);
    }
  sqlite3_finalize (s);
  g_mutex_unlock (&self->lock);
  return id;
}

/* ---- writer jobs (run on the writer thread) --------------------------------------- */

static gboolean
sql_failed (sqlite3  *db,
            GError  **error)
{
  g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("Could not write the outbox: %s"),
               sqlite3_errmsg (db));
  return FALSE;
}

static gboolean
step_done (sqlite3       *db,
           sqlite3_stmt  *s,
           GError       **error)
{
  int rc = sqlite3_step (s);

  sqlite3_finalize (s);
  if (rc != SQLITE_DONE)
    return sql_failed (db, error);
  return TRUE;
}

static void
bind_text_or_null (sqlite3_stmt *s,
                   int           index,
                   const char   *text)
{
  if (text != NULL)
    sqlite3_bind_text (s, index, text, -1, SQLITE_TRANSIENT);
  else
    sqlite3_bind_null (s, index);
}

/* ---- a chain of writer jobs ending in a flush ------------------------------------- */

typedef void (*BatchDone) (gpointer  data,
                           GError   *error);

typedef struct
{
  guint pending;
  GError *error;
  BatchDone done;
  gpointer data;
} Batch;

static Batch *
batch_new (BatchDone done,
           gpointer  data)
{
  Batch *batch = g_new0 (Batch, 1);

  batch->done = done;
  batch->data = data;
  return batch;
}

static void
batch_settle (Batch  *batch,
              GError *error)
{
  if (error != NULL && batch->error == NULL)
    batch->error = error;
  else if (error != NULL)
    g_error_free (error);
  if (--batch->pending > 0)
    return;
  batch->done (batch->data, batch->error);
  g_clear_error (&batch->error);
  g_free (batch);
}

static void
batch_exec_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error);
  batch_settle (user_data, error);
}

static void
batch_append_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_append_finish (LB_STORE_WRITER (source), result, &error);
  batch_settle (user_data, error);
}

static void
batch_flush_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GError *error = NULL;

  lb_store_writer_flush_finish (LB_STORE_WRITER (source), result, &error);
  batch_settle (user_data, error);
}

static void
batch_exec (LbOutbox          *self,
            Batch             *batch,
            LbStoreWriterFunc  func,
            gpointer           data,
            GDestroyNotify     destroy)
{
  batch->pending++;
  lb_store_writer_exec_async (self->writer, func, data, destroy, NULL, batch_exec_cb, batch);
}

/* @message is taken. */
static void
batch_append (LbOutbox               *self,
              Batch                  *batch,
              LbStoreMessage         *message,
              GBytes                 *body,
              LbStoreWriterAddedFunc  func,
              gpointer                data)
{
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);

  batch->pending++;
  lb_store_writer_append_full_async (self->writer, message, stream,
                                     (goffset) g_bytes_get_size (body), func, data, NULL, NULL,
                                     batch_append_cb, batch);
}

/* The last job of a batch: it completes once everything before it is on disk. Not
 * cancellable: a change that was made must be reported as made. */
static void
batch_flush (LbOutbox *self,
             Batch    *batch)
{
  batch->pending++;
  lb_store_writer_flush_async (self->writer, NULL, batch_flush_cb, batch);
}

/* ---- the object ------------------------------------------------------------------- */

static void
lb_outbox_dispose (GObject *object)
{
  LbOutbox *self = LB_OUTBOX (object);

  lb_outbox_stop (self);
  G_OBJECT_CLASS (lb_outbox_parent_class)->dispose (object);
}

static void
lb_outbox_finalize (GObject *object)
{
  LbOutbox *self = LB_OUTBOX (object);

  g_clear_object (&self->store);
  g_clear_object (&self->writer);
  if (self->db != NULL)
    sqlite3_close_v2 (self->db);
  g_mutex_clear (&self->lock);
  g_hash_table_unref (self->busy);
  g_hash_table_unref (self->unreachable);
  g_free (self->data_dir);
  G_OBJECT_CLASS (lb_outbox_parent_class)->finalize (object);
}

static void
lb_outbox_get_property (GObject    *object,
                        guint       prop_id,
                        GValue     *value,
                        GParamSpec *pspec)
{
  LbOutbox *self = LB_OUTBOX (object);

  switch (prop_id)
    {
    case PROP_RETRY_BASE_MS:
      g_value_set_uint (value, self->retry_base_ms);
      break;
    case PROP_GIVE_UP_MS:
      g_value_set_uint64 (value, self->give_up_ms);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lb_outbox_set_property (GObject      *object,
                        guint         prop_id,
                        const GValue *value,
                        GParamSpec   *pspec)
{
  LbOutbox *self = LB_OUTBOX (object);

  switch (prop_id)
    {
    case PROP_RETRY_BASE_MS:
      self->retry_base_ms = g_value_get_uint (value);
      break;
    case PROP_GIVE_UP_MS:
      self->give_up_ms = g_value_get_uint64 (value);
      break;
    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
lb_outbox_class_init (LbOutboxClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->dispose = lb_outbox_dispose;
  object_class->finalize = lb_outbox_finalize;
  object_class->get_property = lb_outbox_get_property;
  object_class->set_property = lb_outbox_set_property;

  /**
   * LbOutbox:retry-base-ms:
   *
   * The wait after a first temporary failure; each further one doubles it, up to 60
   * times this. Defaults to `$LETTERBOX_OUTBOX_RETRY_BASE_MS`, else one minute.
   */
  properties[PROP_RETRY_BASE_MS] =
    g_param_spec_uint ("retry-base-ms", NULL, NULL, 1, G_MAXUINT / RETRY_CAP_FACTOR,
                       DEFAULT_RETRY_BASE_MS,
                       G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  /**
   * LbOutbox:give-up-ms:
   *
   * How long after its submission a message that keeps failing temporarily is given
   * up (a permanent failure, with a notice): two days by default. Applies to messages
   * submitted (or retried) afterwards.
   */
  properties[PROP_GIVE_UP_MS] =
    g_param_spec_uint64 ("give-up-ms", NULL, NULL, 1, G_MAXINT64 / 1000, DEFAULT_GIVE_UP_MS,
                         G_PARAM_READWRITE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties (object_class, N_PROPS, properties);

  /**
   * LbOutbox::sent:
   * @queue_id: the message
   *
   * The message was delivered to all its recipients (or all that did not refuse it),
   * or into Local Folders. Emitted in the worker's context (lb_outbox_start()), or the
   * submitter's for mail to the local user only.
   */
  signals[SIGNAL_SENT] = g_signal_new ("sent", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0,
                                       NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_STRING);
  /**
   * LbOutbox::failed:
   * @queue_id: the message
   * @error: what went wrong, for a person
   * @permanent: %TRUE when it will not be tried again (for some recipients at least: a
   *   notice is in Local Folders), %FALSE when it will be retried
   */
  signals[SIGNAL_FAILED] = g_signal_new ("failed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                         0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_STRING,
                                         G_TYPE_STRING, G_TYPE_BOOLEAN);
  /**
   * LbOutbox::changed:
   *
   * A message was submitted, cancelled, retried, or changed state.
   */
  signals[SIGNAL_CHANGED] = g_signal_new ("changed", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST,
                                          0, NULL, NULL, NULL, G_TYPE_NONE, 0);
}

static void
lb_outbox_init (LbOutbox *self)
{
  const char *base = g_getenv ("LETTERBOX_OUTBOX_RETRY_BASE_MS");
  guint64 value = 0;

  g_mutex_init (&self->lock);
  self->busy = g_hash_table_new (g_str_hash, g_str_equal);
  self->unreachable = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->retry_base_ms = DEFAULT_RETRY_BASE_MS;
  if (base != NULL && g_ascii_string_to_unsigned (base, 10, 1, G_MAXUINT / RETRY_CAP_FACTOR,
                                                  &value, NULL))
    self->retry_base_ms = (guint) value;
  self->give_up_ms = DEFAULT_GIVE_UP_MS;
}

/**
 * lb_outbox_new:
 * @store: an open store (its schema has the outbox)
 * @writer: the store's one writer
 *
 * The outbox keeps its own read-only connection to the store's index. Nothing is sent
 * until lb_outbox_start().
 *
 * Returns: (transfer full): the outbox, or %NULL with @error set
 */
LbOutbox *
lb_outbox_new (LbStore        *store,
               LbStoreWriter  *writer,
               GError        **error)
{
  g_autoptr(LbOutbox) self = NULL;
  g_autofree char *path = NULL;
  int rc;

  g_return_val_if_fail (LB_IS_STORE (store), NULL);
  g_return_val_if_fail (LB_IS_STORE_WRITER (writer), NULL);

  self = g_object_new (LB_TYPE_OUTBOX, NULL);
  self->store = g_object_ref (store);
  self->writer = g_object_ref (writer);
  self->data_dir = g_strdup (lb_store_get_data_dir (store));
  path = g_build_filename (self->data_dir, "index.db", NULL);
  rc = sqlite3_open_v2 (path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_FULLMUTEX, NULL);
  if (rc == SQLITE_OK)
    {
      sqlite3_busy_timeout (self->db, 10000);
      rc = sqlite3_exec (self->db, "PRAGMA query_only = 1", NULL, NULL, NULL);
    }
  if (rc != SQLITE_OK)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("Could not open the outbox in “%s”: %s"),
                   path, self->db != NULL ? sqlite3_errmsg (self->db) : sqlite3_errstr (rc));
      return NULL;
    }
  return g_steal_pointer (&self);
}

static gint64
backoff_us (LbOutbox *self,
            guint     attempts)
{
  guint64 cap = (guint64) self->retry_base_ms * RETRY_CAP_FACTOR;
  guint64 delay = self->retry_base_ms;

  for (guint i = 1; i < attempts && delay < cap; i++)
    delay *= 2;
  delay = MIN (delay, cap);
  /* ±20 %, so that messages that failed together do not all come back together. */
  return (gint64) ((double) delay * 1000 * g_random_double_range (0.8, 1.2));
}

static char *
new_queue_id (void)
{
  return g_strdup_printf ("%08X%08X", g_random_int (), g_random_int ());
}

static char *
join_lines (GPtrArray *strings)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < strings->len; i++)
    {
      if (i > 0)
        g_string_append_c (out, '\n');
      g_string_append (out, g_ptr_array_index (strings, i));
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static const char *
account_name (const LbAccount *account)
{
  return account->display_name != NULL ? account->display_name : account->id;
}

/* ---- submit ----------------------------------------------------------------------- */

typedef struct
{
  /* given */
  char *sender;
  char **recipients;
  GBytes *given;
  char *account_id;

  /* prepared (worker thread) */
  char *queue_id;
  char *envelope_from;
  GPtrArray *remote;   /* char*: sent over SMTP */
  GPtrArray *local;    /* char*: delivered into Local Folders */
  char *route_account; /* the account that sends the remote part */
  char *subject;
  GBytes *message;     /* the bytes queued: the given ones with what was added */
  LbStoreMessage *local_copy;
  gint64 created;
  gint64 expires;

  /* written (writer thread) */
  gint64 local_message_id;
} Submission;

static void
submission_free (Submission *sub)
{
  g_free (sub->sender);
  g_strfreev (sub->recipients);
  g_clear_pointer (&sub->given, g_bytes_unref);
  g_free (sub->account_id);
  g_free (sub->queue_id);
  g_free (sub->envelope_from);
  g_clear_pointer (&sub->remote, g_ptr_array_unref);
  g_clear_pointer (&sub->local, g_ptr_array_unref);
  g_free (sub->route_account);
  g_free (sub->subject);
  g_clear_pointer (&sub->message, g_bytes_unref);
  lb_store_message_free (sub->local_copy);
  g_free (sub);
}

static gboolean
add_unique (GPtrArray  *list,
            const char *address)
{
  for (guint i = 0; i < list->len; i++)
    if (g_ascii_strcasecmp (g_ptr_array_index (list, i), address) == 0)
      return FALSE;
  g_ptr_array_add (list, g_strdup (address));
  return TRUE;
}

static gboolean
prepare_submission (LbOutbox    *self,
                    Submission  *sub,
                    GError     **error)
{
  const char *user = g_get_user_name ();
  const char *host = g_get_host_name ();
  g_autoptr(GPtrArray) accounts = NULL;
  g_auto(LbOutboxRoute) route = { 0 };
  g_autoptr(LbOutboxPrepared) prepared = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autofree char *domain = NULL;
  gsize len;
  const guint8 *data = g_bytes_get_data (sub->given, &len);

  if (!lb_outbox_check_address (sub->sender, error))
    {
      g_prefix_error (error, _("Sender: "));
      return FALSE;
    }
  if (sub->recipients == NULL || sub->recipients[0] == NULL)
    {
      g_set_error_literal (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                           _("The message has no recipient"));
      return FALSE;
    }
  sub->remote = g_ptr_array_new_with_free_func (g_free);
  sub->local = g_ptr_array_new_with_free_func (g_free);
  for (guint i = 0; sub->recipients[i] != NULL; i++)
    {
      const char *address = sub->recipients[i];

      if (!lb_outbox_check_address (address, error))
        {
          g_prefix_error (error, _("Recipient: "));
          return FALSE;
        }
      if (lb_outbox_address_is_local (address, user, host))
        add_unique (sub->local, address);
      else if (strchr (address, '@') == NULL)
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_INVALID,
                       _("“%s” is neither an address of the form name@domain nor a user of "
                         "this computer"), address);
          return FALSE;
        }
      else
        add_unique (sub->remote, address);
    }

  sub->envelope_from = g_strdup (sub->sender);
  if (sub->remote->len > 0)
    {
      accounts = lb_account_load_all (error);
      if (accounts == NULL ||
          !lb_outbox_route (accounts, sub->sender, sub->account_id, &route, error))
        return FALSE;
      if (route.account == NULL)
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT,
                       _("No account can send mail to %s: add an account with an outgoing "
                         "(SMTP) server"), (const char *) g_ptr_array_index (sub->remote, 0));
          return FALSE;
        }
      if (route.account->outgoing == NULL)
        {
          g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT,
                       _("The account “%s” has no outgoing (SMTP) server"),
                       account_name (route.account));
          return FALSE;
        }
      if (!route.matched)
        g_debug ("%s matches no account; sending as %s through %s", sub->sender, route.address,
                 route.account->id);
      sub->route_account = g_strdup (route.account->id);
      g_free (sub->envelope_from);
      sub->envelope_from = g_strdup (route.address);
    }

  domain = lb_outbox_message_id_domain (sub->envelope_from, host);
  prepared = lb_outbox_prepare_message (data, len, domain, now, error);
  if (prepared == NULL)
    return FALSE;
  sub->subject = g_strdup (prepared->subject);
  if (prepared->prefix[0] == '\0')
    sub->message = g_bytes_ref (sub->given);
  else
    {
      GByteArray *bytes = g_byte_array_sized_new ((guint) (strlen (prepared->prefix) + len));

      g_byte_array_append (bytes, (const guint8 *) prepared->prefix,
                           (guint) strlen (prepared->prefix));
      g_byte_array_append (bytes, data, (guint) len);
      sub->message = g_byte_array_free_to_bytes (bytes);
    }

  sub->queue_id = new_queue_id ();
  sub->created = g_get_real_time ();
  sub->expires = sub->created + (gint64) self->give_up_ms * 1000;
  if (sub->local->len > 0)
    {
      gint64 inbox = find_folder (self, LB_STORE_LOCAL_ACCOUNT_ID, "inbox", NULL);

      if (inbox == 0)
        {
          g_set_error_literal (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                               _("Local Folders have no Inbox"));
          return FALSE;
        }
      sub->local_copy = lb_store_message_from_bytes (sub->message, inbox, error);
      if (sub->local_copy == NULL)
        return FALSE;
      g_free (sub->local_copy->import_key);
      sub->local_copy->import_key = g_strdup_printf ("outbox:%s", sub->queue_id);
    }
  return TRUE;
}

static void
prepare_thread (GTask        *task,
                gpointer      source_object,
                gpointer      task_data,
                GCancellable *cancellable)
{
  GError *error = NULL;

  if (prepare_submission (source_object, task_data, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/* Writer thread: the row (and, for local mail, the copy in Local Folders: same savepoint). */
static gboolean
insert_row (sqlite3  *db,
            gpointer  data,
            GError  **error)
{
  Submission *sub = data;
  gboolean remote = sub->remote->len > 0;
  g_autofree char *recipients = join_lines (remote ? sub->remote : sub->local);
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db,
                          "INSERT INTO outbox (queue_id, created, account_id, sender, recipients, "
                          "  subject, size, message, state, next_attempt, expires, "
                          "  sent_message_id) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?2, ?10, ?11)",
                          -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, sub->queue_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 2, sub->created);
  bind_text_or_null (s, 3, remote ? sub->route_account : NULL);
  sqlite3_bind_text (s, 4, sub->envelope_from, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 5, recipients, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 6, sub->subject, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 7, (sqlite3_int64) g_bytes_get_size (sub->message));
  if (remote)
    sqlite3_bind_blob64 (s, 8, g_bytes_get_data (sub->message, NULL),
                         g_bytes_get_size (sub->message), SQLITE_STATIC);
  else
    sqlite3_bind_null (s, 8);
  sqlite3_bind_text (s, 9, remote ? "queued" : "sent", -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 10, sub->expires);
  if (!remote && sub->local_message_id != 0)
    sqlite3_bind_int64 (s, 11, sub->local_message_id);
  return step_done (db, s, error);
}

static gboolean
insert_row_after_local (sqlite3  *db,
                        gint64    message_id,
                        gpointer  data,
                        GError  **error)
{
  ((Submission *) data)->local_message_id = message_id;
  return insert_row (db, data, error);
}

static void
submitted (gpointer  data,
           GError   *error)
{
  g_autoptr(GTask) task = data;
  LbOutbox *self = g_task_get_source_object (task);
  Submission *sub = g_task_get_task_data (task);

  if (error != NULL)
    {
      g_task_return_error (task, g_error_copy (error));
      return;
    }
  g_debug ("Queued %s from %s: %u for the server, %u for Local Folders", sub->queue_id,
           sub->envelope_from, sub->remote->len, sub->local->len);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  if (sub->remote->len == 0)
    g_signal_emit (self, signals[SIGNAL_SENT], 0, sub->queue_id);
  else
    poke (self);
  g_task_return_pointer (task, g_strdup (sub->queue_id), g_free);
}

static void
prepared_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  LbOutbox *self = LB_OUTBOX (source);
  GTask *task = user_data;
  Submission *sub = g_task_get_task_data (task);
  GError *error = NULL;
  Batch *batch;

  if (!g_task_propagate_boolean (G_TASK (result), &error) ||
      g_task_return_error_if_cancelled (task))
    {
      if (error != NULL)
        g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  /* From here on the submission is not cancellable: once it is written, the caller
   * must hear so (a relay that answered 4xx would get it again). */
  batch = batch_new (submitted, task);
  if (sub->local->len > 0)
    batch_append (self, batch, g_steal_pointer (&sub->local_copy), sub->message,
                  insert_row_after_local, sub);
  else
    batch_exec (self, batch, insert_row, sub, NULL);
  batch_flush (self, batch);
}

/**
 * lb_outbox_submit_async:
 * @envelope_from: the envelope sender (MAIL FROM); it picks the account and identity
 * @recipients: the envelope recipients (RCPT TO), at least one; the local user's
 *   addresses (see lb_outbox_address_is_local()) are delivered into Local Folders'
 *   Inbox, the others queued for the account's SMTP server
 * @message: the message (RFC 5322); kept byte for byte, with `Date:` and `Message-ID:`
 *   put in front when it has none
 * @account_id: (nullable): the account to send with; %NULL to let @envelope_from choose
 *   (lb_outbox_route())
 * @cancellable: cancels only until the message is handed to the store's writer
 *
 * Checks, routes and queues a message. @callback runs in the caller's thread-default
 * main context once the message is committed and synced to disk, which is when a relay
 * may answer 250. Bad input is an %LB_OUTBOX_ERROR and nothing is queued. Submissions
 * made together share one commit and one fsync.
 */
void
lb_outbox_submit_async (LbOutbox            *self,
                        const char          *envelope_from,
                        const char * const  *recipients,
                        GBytes              *message,
                        const char          *account_id,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  GTask *task;
  g_autoptr(GTask) prepare = NULL;
  Submission *sub;

  g_return_if_fail (LB_IS_OUTBOX (self));
  g_return_if_fail (envelope_from != NULL);
  g_return_if_fail (message != NULL);

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_outbox_submit_async);
  sub = g_new0 (Submission, 1);
  sub->sender = g_strdup (envelope_from);
  sub->recipients = g_strdupv ((char **) recipients);
  sub->given = g_bytes_ref (message);
  sub->account_id = g_strdup (account_id);
  g_task_set_task_data (task, sub, (GDestroyNotify) submission_free);

  prepare = g_task_new (self, cancellable, prepared_cb, task);
  g_task_set_task_data (prepare, sub, NULL);
  g_task_run_in_thread (prepare, prepare_thread);
}

/**
 * lb_outbox_submit_finish:
 *
 * Returns: (transfer full): the queue id, or %NULL with @error set
 */
char *
lb_outbox_submit_finish (LbOutbox      *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- notices ---------------------------------------------------------------------- */

/* A failure notice as kept in the row until it is in Local Folders: the explanation and,
 * per refused recipient, (address, RFC 3463 status, the server's reply or the reason). */
#define NOTICE_TYPE "(sa(sss))"

/* The enhanced status code in an SMTP reply ("550 5.1.1 …"), else one from its class. */
static char *
status_of_reply (const char *reply,
                 gboolean    permanent)
{
  const char *p = reply;

  if (p != NULL && g_ascii_isdigit (p[0]) && g_ascii_isdigit (p[1]) && g_ascii_isdigit (p[2]) &&
      (p[3] == ' ' || p[3] == '-'))
    {
      const char *q = p + 4;
      gsize n = 0;
      guint dots = 0;

      while (g_ascii_isdigit (q[n]) || q[n] == '.')
        dots += q[n++] == '.';
      if (n >= 5 && dots == 2 && (q[0] == '2' || q[0] == '4' || q[0] == '5') && q[1] == '.')
        return g_strndup (q, n);
      return g_strdup (p[0] == '5' ? "5.0.0" : "4.0.0");
    }
  return g_strdup (permanent ? "5.0.0" : "4.4.7");
}

static char *
one_line (const char *text)
{
  g_autofree char *copy = g_strdup (text != NULL ? text : "");

  g_strdelimit (copy, "\r\n\t", ' ');
  return g_strdup (g_strstrip (copy));
}

/* The notice as a multipart/report (RFC 6522) of the human explanation, the
 * delivery-status (RFC 3464) and the original message (message/rfc822). */
static GBytes *
build_notice (const Row  *row,
              GVariant   *notice,
              GError    **error)
{
  g_autoptr(GMimeMessage) message = g_mime_message_new (TRUE);
  g_autoptr(GMimeMultipart) report = g_mime_multipart_new_with_subtype ("report");
  g_autoptr(GMimeTextPart) text = g_mime_text_part_new_with_subtype ("plain");
  g_autoptr(GMimePart) status = g_mime_part_new_with_type ("message", "delivery-status");
  g_autoptr(GMimeStream) status_stream = NULL;
  g_autoptr(GMimeDataWrapper) status_content = NULL;
  g_autoptr(GMimeMessage) original = NULL;
  g_autoptr(GMimeMessagePart) attached = NULL;
  g_autoptr(GString) fields = g_string_new (NULL);
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();
  g_autoptr(GDateTime) arrived = g_date_time_new_from_unix_local (row->item.created / G_USEC_PER_SEC);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
  g_autoptr(GVariantIter) iter = NULL;
  g_autofree char *arrival = g_mime_utils_header_format_date (arrived);
  g_autofree char *subject = NULL;
  g_autofree char *message_id = NULL;
  const char *explanation;
  const char *address, *code, *reply;

  lb_mime_init ();
  g_variant_get (notice, "(&sa(sss))", &explanation, &iter);
  subject = g_strdup_printf (_("Undelivered mail: %s"), row->item.subject != NULL &&
                             row->item.subject[0] != '\0' ? row->item.subject : _("(no subject)"));
  g_mime_message_add_mailbox (message, GMIME_ADDRESS_TYPE_FROM, _("Letterbox Outbox"),
                              "MAILER-DAEMON@localhost");
  g_mime_message_add_mailbox (message, GMIME_ADDRESS_TYPE_TO, NULL, row->item.sender);
  g_mime_message_set_subject (message, subject, "utf-8");
  g_mime_message_set_date (message, now);
  message_id = g_mime_utils_generate_message_id ("localhost");
  g_mime_message_set_message_id (message, message_id);
  /* An automatic message: no auto-reply to it (RFC 3834 §5). */
  g_mime_object_set_header (GMIME_OBJECT (message), "Auto-Submitted", "auto-replied", NULL);

  g_mime_text_part_set_text (text, explanation);
  g_mime_part_set_content_encoding (GMIME_PART (text),
                                    g_mime_part_get_best_content_encoding (GMIME_PART (text),
                                                                           GMIME_ENCODING_CONSTRAINT_7BIT));
  g_mime_multipart_add (report, GMIME_OBJECT (text));

  g_string_append_printf (fields, "Reporting-MTA: dns; %s\r\n", g_get_host_name ());
  g_string_append_printf (fields, "X-Letterbox-Queue-ID: %s\r\n", row->item.queue_id);
  g_string_append_printf (fields, "Arrival-Date: %s\r\n", arrival);
  while (g_variant_iter_next (iter, "(&s&s&s)", &address, &code, &reply))
    {
      g_autofree char *diagnostic = one_line (reply);

      g_string_append_printf (fields, "\r\nFinal-Recipient: rfc822; %s\r\nAction: failed\r\n"
                              "Status: %s\r\n", address, code);
      if (g_ascii_isdigit (diagnostic[0]) && g_ascii_isdigit (diagnostic[1]) &&
          g_ascii_isdigit (diagnostic[2]))
        g_string_append_printf (fields, "Diagnostic-Code: smtp; %s\r\n", diagnostic);
    }
  status_stream = g_mime_stream_mem_new_with_buffer (fields->str, fields->len);
  status_content = g_mime_data_wrapper_new_with_stream (status_stream,
                                                        GMIME_CONTENT_ENCODING_DEFAULT);
  g_mime_part_set_content (status, status_content);
  g_mime_multipart_add (report, GMIME_OBJECT (status));

  if (row->message != NULL)
    {
      gsize len;
      const guint8 *data = g_bytes_get_data (row->message, &len);

      original = lb_mime_parse_bytes (data, len, NULL);
    }
  if (original != NULL)
    {
      attached = g_mime_message_part_new_with_message ("rfc822", original);
      g_mime_multipart_add (report, GMIME_OBJECT (attached));
    }
  g_mime_object_set_content_type_parameter (GMIME_OBJECT (report), "report-type",
                                            "delivery-status");
  g_mime_message_set_mime_part (message, GMIME_OBJECT (report));
  if (!lb_mime_write_to_stream (message, out, error) || !g_output_stream_close (out, NULL, error))
    return NULL;
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

/* The notice for Local Folders' Inbox, as the writer adds it. */
static LbStoreMessage *
notice_message (LbOutbox    *self,
                const Row   *row,
                const char  *notice_text,
                guint        attempt,
                GBytes     **bytes,
                GError     **error)
{
  g_autoptr(GVariant) notice = g_variant_parse (G_VARIANT_TYPE (NOTICE_TYPE), notice_text, NULL,
                                                NULL, error);
  gint64 inbox = find_folder (self, LB_STORE_LOCAL_ACCOUNT_ID, "inbox", NULL);
  LbStoreMessage *m;

  if (notice == NULL)
    return NULL;
  if (inbox == 0)
    {
      g_set_error_literal (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                           _("Local Folders have no Inbox"));
      return NULL;
    }
  *bytes = build_notice (row, notice, error);
  if (*bytes == NULL)
    return NULL;
  m = lb_store_message_from_bytes (*bytes, inbox, error);
  if (m == NULL)
    return NULL;
  g_free (m->import_key);
  /* One notice per attempt that refused someone, whatever happens in between. */
  m->import_key = g_strdup_printf ("outbox-notice:%s:%u", row->item.queue_id, attempt);
  return m;
}

/* ---- what an outcome leaves to add: the Sent copy, a notice ----------------------- */

/* Which bytes of a row the store still needs: the message while it may be sent again,
 * and while its Sent copy or a notice (which attaches it) is still to be added. The
 * columns as they are once the statement has run are given (SQL text, spliced in). */
#define KEEP_MESSAGE(state, notice, copy) \
  "CASE WHEN " state " IN ('sent', 'cancelled') AND " notice " IS NULL AND " copy " IS NULL " \
  "THEN NULL ELSE message END"

typedef void (*PendingDone) (gpointer  data,
                             GError   *error);

typedef struct
{
  LbOutbox *self;
  Row *row;
  gboolean owns_row;
  LbStoreMessage *copy;
  LbStoreMessage *notice;
  GBytes *notice_bytes;
  PendingDone done;
  gpointer done_data;
} Pending;

static void
pending_free (Pending *p)
{
  g_object_unref (p->self);
  if (p->owns_row)
    row_free (p->row);
  lb_store_message_free (p->copy);
  lb_store_message_free (p->notice);
  g_clear_pointer (&p->notice_bytes, g_bytes_unref);
  g_free (p);
}

/* Writer thread, in the Sent copy's savepoint: the copy is in. */
static gboolean
copy_added (sqlite3   *db,
            gint64     message_id,
            gpointer   data,
            GError   **error)
{
  Pending *p = data;
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db,
                          "UPDATE outbox SET sent_message_id = ?2, sent_copy_folder = NULL, "
                          "  message = " KEEP_MESSAGE ("state", "notice", "NULL") " "
                          "WHERE queue_id = ?1", -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, p->row->item.queue_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 2, message_id);
  return step_done (db, s, error);
}

/* Writer thread, in the notice's savepoint: the notice is in. */
static gboolean
notice_added (sqlite3   *db,
              gint64     message_id,
              gpointer   data,
              GError   **error)
{
  Pending *p = data;
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db,
                          "UPDATE outbox SET notice = NULL, "
                          "  message = " KEEP_MESSAGE ("state", "NULL", "sent_copy_folder") " "
                          "WHERE queue_id = ?1 AND notice IS NOT NULL", -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, p->row->item.queue_id, -1, SQLITE_STATIC);
  if (!step_done (db, s, error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   _("The notice about %s is already in Local Folders"), p->row->item.queue_id);
      return FALSE;
    }
  return TRUE;
}

/* Where the Sent copy goes: the folder noted in the row, else (it went meanwhile) the
 * account's Sent folder, else Local Folders' one. Any thread. */
static gint64
copy_folder (LbOutbox  *self,
             const Row *row)
{
  sqlite3_stmt *s = NULL;
  gboolean exists = FALSE;
  gint64 folder;

  g_mutex_lock (&self->lock);
  if (sqlite3_prepare_v2 (self->db, "SELECT 1 FROM folders WHERE id = ?1", -1, &s,
                          NULL) == SQLITE_OK)
    {
      sqlite3_bind_int64 (s, 1, row->sent_copy_folder);
      exists = sqlite3_step (s) == SQLITE_ROW;
    }
  sqlite3_finalize (s);
  g_mutex_unlock (&self->lock);
  if (exists)
    return row->sent_copy_folder;
  folder = row->item.account_id != NULL ? find_folder (self, row->item.account_id, "sent",
                                                       "Sent") : 0;
  return folder != 0 ? folder : find_folder (self, LB_STORE_LOCAL_ACCOUNT_ID, "sent", NULL);
}

static void
pending_build_thread (GTask        *task,
                      gpointer      source_object,
                      gpointer      task_data,
                      GCancellable *cancellable)
{
  Pending *p = task_data;
  Row *row = p->row;
  GError *error = NULL;

  if (row->message == NULL)
    {
      g_autoptr(Row) full = read_row (p->self, row->item.queue_id, TRUE, &error);

      if (full == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
      row->message = g_steal_pointer (&full->message);
    }
  if (row->sent_copy_folder != 0)
    {
      gint64 folder = copy_folder (p->self, row);

      if (row->message == NULL || folder == 0)
        {
          g_task_return_new_error (task, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                                   row->message == NULL ? _("its bytes are gone")
                                                        : _("there is no Sent folder"));
          return;
        }
      p->copy = lb_store_message_from_bytes (row->message, folder, &error);
      if (p->copy == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
      g_free (p->copy->import_key);
      /* The key that makes the copy exist once, whatever is retried. */
      p->copy->import_key = g_strdup_printf ("outbox:%s", row->item.queue_id);
      p->copy->flags = LB_MESSAGE_FLAG_SEEN;
    }
  if (row->notice != NULL)
    {
      p->notice = notice_message (p->self, row, row->notice, row->item.attempts,
                                  &p->notice_bytes, &error);
      if (p->notice == NULL)
        {
          g_task_return_error (task, error);
          return;
        }
    }
  g_task_return_boolean (task, TRUE);
}

static void
pending_written (gpointer  data,
                 GError   *error)
{
  Pending *p = data;

  p->done (p->done_data, error);
  pending_free (p);
}

static void
pending_built_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  Pending *p = user_data;
  GError *error = NULL;
  Batch *batch;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      pending_written (p, error);
      g_error_free (error);
      return;
    }
  batch = batch_new (pending_written, p);
  if (p->copy != NULL)
    batch_append (p->self, batch, g_steal_pointer (&p->copy), p->row->message, copy_added, p);
  if (p->notice != NULL)
    batch_append (p->self, batch, g_steal_pointer (&p->notice), p->notice_bytes, notice_added,
                  p);
  batch_flush (p->self, batch);
}

/* Adds what @row's outcome left to add (its Sent copy, a notice: see the row's columns),
 * each together with clearing its mark, then flushes; @done follows (also when that
 * failed: the marks stay for the next start). The Sent copy's import key makes it exist
 * once however often this runs. @row is taken if @take_row, else kept alive by the
 * caller until @done. Main context. */
static void
pending_add (LbOutbox    *self,
             Row         *row,
             gboolean     take_row,
             PendingDone  done,
             gpointer     done_data)
{
  Pending *p = g_new0 (Pending, 1);
  g_autoptr(GTask) task = g_task_new (self, NULL, pending_built_cb, p);

  p->self = g_object_ref (self);
  p->row = row;
  p->owns_row = take_row;
  p->done = done;
  p->done_data = done_data;
  g_task_set_task_data (task, p, NULL);
  g_task_run_in_thread (task, pending_build_thread);
}

/* ---- one attempt's outcome -------------------------------------------------------- */

typedef struct
{
  char *address;
  char *reply; /* the server's reply, or why */
} Refusal;

static void
refusal_free (Refusal *refusal)
{
  g_free (refusal->address);
  g_free (refusal->reply);
  g_free (refusal);
}

static Refusal *
refusal_new (const char *address,
             const char *reply)
{
  Refusal *refusal = g_new0 (Refusal, 1);

  refusal->address = g_strdup (address);
  refusal->reply = g_strdup (reply);
  return refusal;
}

typedef void (*AttemptDone) (gpointer data);

typedef struct
{
  LbOutbox *self;
  Row *row;
  char *account_display;
  gint64 sent_folder;
  guint attempts;
  GPtrArray *accepted;  /* char* */
  GPtrArray *refused;   /* Refusal*: for good */
  GPtrArray *deferred;  /* Refusal*: for now */
  char *error;          /* the attempt's own error (for the log and last_error) */

  /* decided */
  const char *state;
  char *remaining;
  gint64 next_attempt;
  gint64 retry_at;      /* the server could not be reached: when the account is tried again */
  char *last_error;
  char *notice;         /* NOTICE_TYPE text, or NULL */
  gboolean sent_copy;
  gboolean gave_up;

  AttemptDone done;
  gpointer done_data;
} Attempt;

static void
attempt_free (Attempt *a)
{
  g_object_unref (a->self);
  row_free (a->row);
  g_free (a->account_display);
  g_ptr_array_unref (a->accepted);
  g_ptr_array_unref (a->refused);
  g_ptr_array_unref (a->deferred);
  g_free (a->error);
  g_free (a->remaining);
  g_free (a->last_error);
  g_free (a->notice);
  g_free (a);
}

static Attempt *
attempt_new (LbOutbox    *self,
             Row         *row,
             const char  *account_display,
             gint64       sent_folder,
             guint        attempts)
{
  Attempt *a = g_new0 (Attempt, 1);

  a->self = g_object_ref (self);
  a->row = row;
  a->account_display = g_strdup (account_display);
  a->sent_folder = sent_folder;
  a->attempts = attempts;
  a->accepted = g_ptr_array_new_with_free_func (g_free);
  a->refused = g_ptr_array_new_with_free_func ((GDestroyNotify) refusal_free);
  a->deferred = g_ptr_array_new_with_free_func ((GDestroyNotify) refusal_free);
  return a;
}

static char *
describe_refusals (GPtrArray *refusals)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; i < refusals->len; i++)
    {
      Refusal *r = g_ptr_array_index (refusals, i);
      g_autofree char *reply = one_line (r->reply);

      g_string_append_printf (out, "%s%s: %s", i > 0 ? "; " : "", r->address, reply);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* What to write, from what happened (main context). */
static void
attempt_decide (Attempt *a)
{
  LbOutbox *self = a->self;
  gint64 now = g_get_real_time ();
  gboolean delivered;

  if (a->deferred->len > 0)
    {
      a->next_attempt = a->retry_at != 0 ? MAX (a->retry_at, now)
                                          : now + backoff_us (self, a->attempts);
      if (a->next_attempt > a->row->expires)
        {
          /* Failing for too long: give up on the rest (RFC 5321 §4.5.4.1: 4–5 days is
           * usual for an MTA; a desktop's user is better told sooner). */
          a->gave_up = TRUE;
          for (guint i = 0; i < a->deferred->len; i++)
            {
              Refusal *r = g_ptr_array_index (a->deferred, i);
              g_autofree char *why = g_strdup_printf (_("Given up after %u attempts; the last "
                                                        "one failed: %s"), a->attempts,
                                                      r->reply);

              g_ptr_array_add (a->refused, refusal_new (r->address, why));
            }
          g_ptr_array_set_size (a->deferred, 0);
        }
    }
  delivered = a->accepted->len > 0 || a->row->sent_message_id != 0 ||
              a->row->sent_copy_folder != 0;
  a->sent_copy = a->accepted->len > 0 && a->row->sent_message_id == 0 && a->sent_folder != 0;
  if (a->deferred->len > 0)
    {
      g_autoptr(GPtrArray) remaining = g_ptr_array_new ();

      for (guint i = 0; i < a->deferred->len; i++)
        g_ptr_array_add (remaining, ((Refusal *) g_ptr_array_index (a->deferred, i))->address);
      a->state = "queued";
      a->remaining = join_lines (remaining);
      a->last_error = describe_refusals (a->deferred);
    }
  else
    {
      a->state = delivered ? "sent" : "failed";
      a->next_attempt = a->row->item.next_attempt;
      if (a->refused->len > 0)
        a->last_error = describe_refusals (a->refused);
    }

  if (a->refused->len > 0)
    {
      g_autoptr(GString) text = g_string_new (NULL);
      GVariantBuilder list;

      g_string_append_printf (text, _("Your message “%s” could not be delivered to:\n\n"),
                              a->row->item.subject != NULL ? a->row->item.subject : "");
      g_variant_builder_init (&list, G_VARIANT_TYPE ("a(sss)"));
      for (guint i = 0; i < a->refused->len; i++)
        {
          Refusal *r = g_ptr_array_index (a->refused, i);
          g_autofree char *code = status_of_reply (r->reply, !a->gave_up);

          g_string_append_printf (text, "  %s\n    %s\n\n", r->address, r->reply);
          g_variant_builder_add (&list, "(sss)", r->address, code, r->reply);
        }
      if (a->accepted->len > 0)
        {
          g_string_append (text, _("It was delivered to:"));
          g_string_append_c (text, '\n');
          for (guint i = 0; i < a->accepted->len; i++)
            g_string_append_printf (text, "  %s\n", (const char *) g_ptr_array_index (a->accepted, i));
          g_string_append_c (text, '\n');
        }
      if (a->deferred->len > 0)
        {
          g_string_append (text, _("It will be tried again for:"));
          g_string_append_c (text, '\n');
          for (guint i = 0; i < a->deferred->len; i++)
            g_string_append_printf (text, "  %s\n",
                                    ((Refusal *) g_ptr_array_index (a->deferred, i))->address);
          g_string_append_c (text, '\n');
        }
      g_string_append_printf (text, _("It was sent from %s through the account “%s” (outbox "
                                      "queue id %s). The original message is attached.\n"),
                              a->row->item.sender, a->account_display, a->row->item.queue_id);
      a->notice = g_variant_print (g_variant_new (NOTICE_TYPE, text->str, &list), FALSE);
    }
}

/* Writer thread: the attempt's outcome, with what it leaves to add (the Sent copy, a
 * notice) marked in the row — noted in addition to a mark an earlier outcome left. */
static gboolean
record_outcome (sqlite3  *db,
                gpointer  data,
                GError  **error)
{
  Attempt *a = data;
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db,
                          "UPDATE outbox SET state = ?2, recipients = coalesce (?3, recipients), "
                          "  attempts = ?4, next_attempt = ?5, last_error = ?6, "
                          "  notice = coalesce (?7, notice), "
                          "  sent_copy_folder = coalesce (?8, sent_copy_folder), "
                          "  message = " KEEP_MESSAGE ("?2", "coalesce (?7, notice)",
                                                       "coalesce (?8, sent_copy_folder)") " "
                          "WHERE queue_id = ?1 AND state IN ('queued', 'sending')",
                          -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, a->row->item.queue_id, -1, SQLITE_STATIC);
  sqlite3_bind_text (s, 2, a->state, -1, SQLITE_STATIC);
  bind_text_or_null (s, 3, a->remaining);
  sqlite3_bind_int (s, 4, (int) a->attempts);
  sqlite3_bind_int64 (s, 5, a->next_attempt);
  bind_text_or_null (s, 6, a->last_error);
  bind_text_or_null (s, 7, a->notice);
  if (a->sent_copy)
    sqlite3_bind_int64 (s, 8, a->sent_folder);
  if (!step_done (db, s, error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   _("Message %s left the outbox meanwhile"), a->row->item.queue_id);
      return FALSE;
    }
  return TRUE;
}

static void
attempt_written (gpointer  data,
                 GError   *error)
{
  Attempt *a = data;
  LbOutbox *self = a->self;
  const char *queue_id = a->row->item.queue_id;

  if (error != NULL)
    {
      /* The outcome is recorded: the rest is added at the next start. */
      g_warning ("Could not add the Sent copy or the notice of %s: %s", queue_id,
                 error->message);
      pause_runs (self);
    }
  if (a->refused->len > 0)
    g_message (a->gave_up ? "%s: given up: %s" : "%s: refused for good: %s", queue_id,
               a->last_error != NULL ? a->last_error : "");
  if (g_strcmp0 (a->state, "sent") == 0)
    g_signal_emit (self, signals[SIGNAL_SENT], 0, queue_id);
  if (a->refused->len > 0)
    {
      g_autofree char *refused = describe_refusals (a->refused);

      g_signal_emit (self, signals[SIGNAL_FAILED], 0, queue_id, refused, TRUE);
    }
  if (a->deferred->len > 0)
    g_signal_emit (self, signals[SIGNAL_FAILED], 0, queue_id,
                   a->error != NULL ? a->error : a->last_error, FALSE);
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  a->done (a->done_data);
  attempt_free (a);
}

static void
attempt_recorded (gpointer  data,
                  GError   *error)
{
  Attempt *a = data;

  if (error != NULL)
    {
      /* The row stays as it was (`sending`: sent again at the next start). */
      g_warning ("Could not record the outcome of sending %s: %s", a->row->item.queue_id,
                 error->message);
      pause_runs (a->self);
      a->done (a->done_data);
      attempt_free (a);
      return;
    }
  if (a->accepted->len > 0)
    crash_point ("accepted");
  if (a->row->sent_copy_folder == 0 && a->row->notice == NULL)
    attempt_written (a, NULL);
  else
    pending_add (a->self, a->row, FALSE, attempt_written, a);
}

/* Records an attempt's outcome; @done runs after (also when that failed). Takes @a.
 *
 * The outcome goes first and alone: from the server's final reply until it is committed
 * the message is still `sending`, and a crash in between sends it again at the next
 * start (RFC 1047) — so nothing else for the message (parsing it for the Sent copy,
 * the copy's body, index and search rows, a notice) is queued before it, or with it in
 * one writer batch. It needs no fsync of its own: with WAL and synchronous=NORMAL a
 * transaction is in the WAL file once COMMIT returns, which a killed process cannot
 * take back; only a power cut can, leaving the row `sending` as before. The fsync comes
 * with the Sent copy's batch right after (or with the outcome, when nothing follows). */
static void
attempt_finish (Attempt     *a,
                AttemptDone  done,
                gpointer     done_data)
{
  Batch *batch;

  a->done = done;
  a->done_data = done_data;
  attempt_decide (a);
  if (a->accepted->len > 0)
    crash_point ("replied");
  /* The row as record_outcome() leaves it: what is left to add once it is committed. */
  if (a->sent_copy)
    a->row->sent_copy_folder = a->sent_folder;
  if (a->notice != NULL)
    {
      g_free (a->row->notice);
      a->row->notice = g_strdup (a->notice);
    }
  a->row->item.attempts = a->attempts;
  batch = batch_new (attempt_recorded, a);
  batch_exec (a->self, batch, record_outcome, a, NULL);
  if (a->row->sent_copy_folder == 0 && a->row->notice == NULL)
    batch_flush (a->self, batch);
}

/* ---- the worker: one run per account ---------------------------------------------- */

typedef struct
{
  LbOutbox *self;
  GCancellable *cancellable;
  char *account_id;
  LbAccount *account;
  gint64 sent_folder;
  LbSmtpSession *session;
  GHashTable *tried; /* queue ids this run has had */
  Row *row;          /* the message being sent */
  GError *error;     /* why the run could not send */
  gint64 retry_at;   /* then: when the account is tried again */
  GPtrArray *due;    /* Row*: rows to fail after @error */
} Run;

static void
run_free (Run *run)
{
  g_object_unref (run->self);
  g_object_unref (run->cancellable);
  g_free (run->account_id);
  lb_account_free (run->account);
  g_clear_object (&run->session);
  g_hash_table_unref (run->tried);
  g_clear_pointer (&run->row, row_free);
  g_clear_error (&run->error);
  g_clear_pointer (&run->due, g_ptr_array_unref);
  g_free (run);
}

static void next_message (Run *run);

static void
run_end (Run *run)
{
  g_autoptr(LbOutbox) self = g_object_ref (run->self);

  g_hash_table_remove (self->busy, run->account_id);
  run_free (run);
  schedule (self);
}

static void
quit_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  lb_smtp_session_quit_finish (LB_SMTP_SESSION (source), result, NULL);
  run_end (user_data);
}

static void
run_close (Run *run)
{
  if (run->session != NULL && !g_cancellable_is_cancelled (run->cancellable))
    {
      lb_smtp_session_quit_async (run->session, NULL, quit_cb, run);
      return;
    }
  if (run->session != NULL)
    lb_connection_close (lb_smtp_session_get_connection (run->session));
  run_end (run);
}

static const char *
run_account_name (Run *run)
{
  return run->account != NULL ? account_name (run->account) : run->account_id;
}

/* The run could not get to sending (no account, no connection, no login): every due
 * message of the account counts a failed attempt, so that none is tried in a tight loop. */
static void fail_next_due (gpointer data);

static void
fail_due (Run *run)
{
  g_autoptr(GError) error = NULL;

  if (g_error_matches (run->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      run_close (run);
      return;
    }
  g_message ("%s", run->error->message);
  run->due = read_rows (run->self, "WHERE state = 'queued' AND account_id = ?1 AND "
                        "next_attempt <= ?2 ORDER BY next_attempt, id", run->account_id,
                        g_get_real_time (), FALSE, &error);
  if (run->due == NULL)
    {
      g_warning ("%s", error->message);
      pause_runs (run->self);
      run_close (run);
      return;
    }
  fail_next_due (run);
}

static void
fail_next_due (gpointer data)
{
  Run *run = data;
  Row *row;
  Attempt *a;

  if (run->due->len == 0)
    {
      run_close (run);
      return;
    }
  row = g_ptr_array_steal_index (run->due, 0);
  a = attempt_new (run->self, row, run_account_name (run), run->sent_folder,
                   row->item.attempts + 1);
  a->error = g_strdup (run->error->message);
  a->retry_at = run->retry_at;
  for (guint i = 0; row->item.recipients[i] != NULL; i++)
    g_ptr_array_add (a->deferred, refusal_new (row->item.recipients[i], run->error->message));
  attempt_finish (a, fail_next_due, run);
}

static void
run_fail (Run    *run,
          GError *error)
{
  if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      LbOutbox *self = run->self;
      Unreachable *u;

      g_prefix_error (&error, "%s: ", run_account_name (run));
      g_mutex_lock (&self->lock);
      u = g_hash_table_lookup (self->unreachable, run->account_id);
      if (u == NULL)
        {
          u = g_new0 (Unreachable, 1);
          g_hash_table_insert (self->unreachable, g_strdup (run->account_id), u);
        }
      u->failures++;
      u->until = g_get_real_time () + backoff_us (self, u->failures);
      run->retry_at = u->until;
      g_mutex_unlock (&self->lock);
    }
  run->error = error;
  fail_due (run);
}

/* After the message: the session goes on with the next one unless it broke. */
static void
after_attempt (gpointer data)
{
  Run *run = data;

  g_clear_pointer (&run->row, row_free);
  if (run->error != NULL)
    {
      g_clear_error (&run->error);
      if (run->session != NULL)
        lb_connection_close (lb_smtp_session_get_connection (run->session));
      g_clear_object (&run->session);
      run_end (run);
      return;
    }
  next_message (run);
}

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Run *run = user_data;
  g_autoptr(LbSmtpSendResult) outcome = NULL;
  g_autoptr(GError) error = NULL;
  gboolean ok = lb_smtp_session_send_finish (LB_SMTP_SESSION (source), result, &outcome, &error);
  Row *row = g_steal_pointer (&run->row);
  gboolean permanent;
  Attempt *a;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      /* Stopped while sending: the row stays `sending` and is sent again at the next
       * start. */
      row_free (row);
      run_close (run);
      return;
    }
  a = attempt_new (run->self, row, run_account_name (run), run->sent_folder,
                   row->item.attempts + 1);
  permanent = g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_PERMANENT) ||
              g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_TOO_BIG) ||
              g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_UNSUPPORTED) ||
              g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_INVALID);
  if (error != NULL)
    a->error = g_strdup (error->message);
  for (guint i = 0; row->item.recipients[i] != NULL; i++)
    {
      const char *address = row->item.recipients[i];
      LbSmtpRecipientResult *r = NULL;

      for (guint j = 0; outcome != NULL && j < outcome->recipients->len; j++)
        {
          LbSmtpRecipientResult *candidate = g_ptr_array_index (outcome->recipients, j);

          if (g_strcmp0 (candidate->address, address) == 0)
            r = candidate;
        }
      if (ok && r != NULL && r->accepted)
        g_ptr_array_add (a->accepted, g_strdup (address));
      else if (r != NULL && !r->accepted && r->code >= 500 && r->code < 600)
        g_ptr_array_add (a->refused, refusal_new (address, r->reply));
      else if (r != NULL && !r->accepted && r->code != 0)
        g_ptr_array_add (a->deferred, refusal_new (address, r->reply));
      else if (permanent)
        g_ptr_array_add (a->refused, refusal_new (address, error->message));
      else
        g_ptr_array_add (a->deferred, refusal_new (address, error != NULL
                                                             ? error->message
                                                             : _("The server did not say")));
    }
  /* A session that failed other than by refusing (the connection, the protocol) is not
   * used again. */
  if (error != NULL && !g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_PERMANENT) &&
      !(g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_TEMPORARY) && outcome != NULL))
    run->error = g_steal_pointer (&error);
  attempt_finish (a, after_attempt, run);
}

static void
loaded_cb (GObject      *source,
           GAsyncResult *result,
           gpointer      user_data)
{
  Run *run = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(Row) full = g_task_propagate_pointer (G_TASK (result), &error);
  g_autoptr(LbSmtpEnvelope) envelope = NULL;
  g_autoptr(GInputStream) stream = NULL;
  gsize len;
  const guint8 *data;
  gsize header_size;

  if (full == NULL || full->message == NULL)
    {
      g_warning ("Could not read message %s from the outbox: %s", run->row->item.queue_id,
                 error != NULL ? error->message : _("its bytes are gone"));
      g_clear_pointer (&run->row, row_free);
      pause_runs (run->self);
      run_close (run);
      return;
    }
  run->row->message = g_steal_pointer (&full->message);
  data = g_bytes_get_data (run->row->message, &len);
  /* Where the header ends (the first empty line): it tells SMTPUTF8 from 8BITMIME. */
  header_size = len;
  for (gsize i = 0; i + 1 < len; i++)
    if (data[i] == '\n' && (data[i + 1] == '\n' || (data[i + 1] == '\r' && i + 2 < len &&
                                                    data[i + 2] == '\n')))
      {
        header_size = i + 1;
        break;
      }

  envelope = lb_smtp_envelope_new (run->row->item.sender);
  for (guint i = 0; run->row->item.recipients[i] != NULL; i++)
    lb_smtp_envelope_add_recipient (envelope, run->row->item.recipients[i],
                                    LB_SMTP_NOTIFY_DEFAULT);
  stream = g_memory_input_stream_new_from_bytes (run->row->message);
  g_debug ("Sending %s through %s", run->row->item.queue_id, run->account_id);
  lb_smtp_session_send_async (run->session, envelope, stream, (gint64) len,
                              lb_outbox_message_transport (data, len, header_size),
                              run->cancellable, sent_cb, run);
}

static void
load_thread (GTask        *task,
             gpointer      source_object,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;
  Row *row = read_row (source_object, task_data, TRUE, &error);

  if (row == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, row, (GDestroyNotify) row_free);
}

/* Writer thread: the message is taken for sending (still queued: not cancelled). */
static gboolean
mark_sending (sqlite3  *db,
              gpointer  data,
              GError  **error)
{
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db, "UPDATE outbox SET state = 'sending', attempts = attempts + 1 "
                              "WHERE queue_id = ?1 AND state = 'queued'", -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, data, -1, SQLITE_STATIC);
  if (!step_done (db, s, error))
    return FALSE;
  if (sqlite3_changes (db) == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   _("Message %s is no longer queued"), (const char *) data);
      return FALSE;
    }
  return TRUE;
}

static void
marked (gpointer  data,
        GError   *error)
{
  Run *run = data;
  g_autoptr(GTask) task = NULL;

  if (error != NULL)
    {
      /* Cancelled or retried elsewhere meanwhile: on with the next. */
      g_debug ("%s", error->message);
      g_clear_pointer (&run->row, row_free);
      if (g_error_matches (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND))
        next_message (run);
      else
        {
          g_warning ("Could not update the outbox: %s", error->message);
          pause_runs (run->self);
          run_close (run);
        }
      return;
    }
  g_signal_emit (run->self, signals[SIGNAL_CHANGED], 0);
  if (g_cancellable_is_cancelled (run->cancellable))
    {
      g_clear_pointer (&run->row, row_free);
      run_close (run);
      return;
    }
  task = g_task_new (run->self, NULL, loaded_cb, run);
  g_task_set_task_data (task, g_strdup (run->row->item.queue_id), g_free);
  g_task_run_in_thread (task, load_thread);
}

static void
next_message (Run *run)
{
  g_autoptr(GPtrArray) rows = NULL;
  g_autoptr(GError) error = NULL;
  Batch *batch;

  if (g_cancellable_is_cancelled (run->cancellable))
    {
      run_close (run);
      return;
    }
  rows = read_rows (run->self, "WHERE state = 'queued' AND account_id = ?1 AND "
                    "next_attempt <= ?2 ORDER BY next_attempt, id", run->account_id,
                    g_get_real_time (), FALSE, &error);
  if (rows == NULL)
    {
      g_warning ("%s", error->message);
      pause_runs (run->self);
      run_close (run);
      return;
    }
  for (guint i = 0; i < rows->len && run->row == NULL; i++)
    {
      Row *row = g_ptr_array_index (rows, i);

      if (!g_hash_table_contains (run->tried, row->item.queue_id))
        run->row = g_ptr_array_steal_index (rows, i);
    }
  if (run->row == NULL)
    {
      run_close (run);
      return;
    }
  g_hash_table_add (run->tried, g_strdup (run->row->item.queue_id));
  /* `sending` is on disk before DATA: a crash from here on is a possible duplicate,
   * which the next start logs. */
  batch = batch_new (marked, run);
  batch_exec (run->self, batch, mark_sending, g_strdup (run->row->item.queue_id), g_free);
  batch_flush (run->self, batch);
}

static void
logged_in_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;

  if (!lb_smtp_session_login_finish (LB_SMTP_SESSION (source), result, &error))
    {
      if (g_error_matches (error, LB_SMTP_ERROR, LB_SMTP_ERROR_AUTH))
        {
          GError *auth = g_error_new (LB_SMTP_ERROR, LB_SMTP_ERROR_AUTH,
                                      _("The outgoing server refused the password (%s)"),
                                      error->message);

          g_error_free (error);
          error = auth;
        }
      run_fail (run, error);
      return;
    }
  g_mutex_lock (&run->self->lock);
  g_hash_table_remove (run->self->unreachable, run->account_id);
  g_mutex_unlock (&run->self->lock);
  next_message (run);
}

static void
password_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;
  g_autofree char *password = lb_account_get_password_finish (result, &error);
  const LbAccountServer *server = run->account->outgoing;

  if (password == NULL)
    {
      run_fail (run, error);
      return;
    }
  lb_smtp_session_login_async (run->session, server->user != NULL
                                               ? server->user
                                               : lb_account_get_address (run->account),
                               password, FALSE, run->cancellable, logged_in_cb, run);
}

static void
connected_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;

  if (!lb_smtp_session_connect_finish (LB_SMTP_SESSION (source), result, &error))
    {
      run_fail (run, error);
      return;
    }
  /* A server that offers no AUTH (a relay trusting this host) takes mail without it. */
  if (!lb_smtp_session_has_capability (run->session, LB_SMTP_CAP_AUTH))
    {
      next_message (run);
      return;
    }
  lb_account_get_password_async (run->account, LB_ACCOUNT_PROTOCOL_SMTP, run->cancellable,
                                 password_cb, run);
}

static void
run_connect (Run *run)
{
  const LbAccountServer *server = run->account->outgoing;
  g_autoptr(LbConnection) connection = lb_connection_new (server->host, (guint16) server->port,
                                                          server->security);
  GError *error = NULL;

  if (run->account->ca_file != NULL &&
      !lb_connection_set_ca_file (connection, run->account->ca_file, &error))
    {
      run_fail (run, error);
      return;
    }
  if (run->account->fingerprint != NULL)
    lb_connection_set_trusted_fingerprint (connection, run->account->fingerprint);
  lb_connection_set_timeouts (connection, 30, 120);
  run->session = lb_smtp_session_new (connection);
  lb_smtp_session_connect_async (run->session, run->cancellable, connected_cb, run);
}

/* Writer thread: a folder made for Sent copies gets the role. */
static gboolean
set_sent_role (sqlite3  *db,
               gpointer  data,
               GError  **error)
{
  Run *run = data;
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db, "UPDATE folders SET role = 'sent' WHERE id = ?1 AND role IS NULL "
                              "AND NOT EXISTS (SELECT 1 FROM folders WHERE account_id = ?2 AND "
                              "role = 'sent')", -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_int64 (s, 1, run->sent_folder);
  sqlite3_bind_text (s, 2, run->account_id, -1, SQLITE_STATIC);
  return step_done (db, s, error);
}

static void
role_set_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;

  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (source), result, &error))
    {
      run_fail (run, error);
      return;
    }
  run_connect (run);
}

static void
folder_created_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;

  run->sent_folder = lb_store_writer_create_folder_finish (LB_STORE_WRITER (source), result,
                                                           &error);
  if (run->sent_folder == 0)
    {
      run_fail (run, error);
      return;
    }
  lb_store_writer_exec_async (run->self->writer, set_sent_role, run, NULL, NULL, role_set_cb, run);
}

typedef struct
{
  LbAccount *account;
  gint64 sent_folder;
} RunSetup;

static void
run_setup_free (RunSetup *setup)
{
  lb_account_free (setup->account);
  g_free (setup);
}

static void
setup_thread (GTask        *task,
              gpointer      source_object,
              gpointer      task_data,
              GCancellable *cancellable)
{
  LbOutbox *self = source_object;
  const char *account_id = task_data;
  g_autoptr(GPtrArray) accounts = NULL;
  RunSetup *setup;
  GError *error = NULL;

  /* The account files as they are now: a fixed password or server takes effect. */
  accounts = lb_account_load_all (&error);
  if (accounts == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  setup = g_new0 (RunSetup, 1);
  for (guint i = 0; i < accounts->len && setup->account == NULL; i++)
    if (g_strcmp0 (((LbAccount *) g_ptr_array_index (accounts, i))->id, account_id) == 0)
      setup->account = g_ptr_array_steal_index (accounts, i);
  if (setup->account == NULL || setup->account->outgoing == NULL)
    {
      g_task_return_new_error (task, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NO_ACCOUNT,
                               setup->account == NULL
                                 ? _("There is no account “%s” any more")
                                 : _("The account “%s” has no outgoing (SMTP) server"),
                               account_id);
      run_setup_free (setup);
      return;
    }
  /* POP3 keeps no folders on the server: its Sent copies live in Local Folders. */
  if (setup->account->incoming != NULL &&
      setup->account->incoming->protocol == LB_ACCOUNT_PROTOCOL_POP3)
    setup->sent_folder = find_folder (self, LB_STORE_LOCAL_ACCOUNT_ID, "sent", NULL);
  else
    setup->sent_folder = find_folder (self, account_id, "sent", "Sent");
  g_task_return_pointer (task, setup, (GDestroyNotify) run_setup_free);
}

static void
setup_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  Run *run = user_data;
  GError *error = NULL;
  RunSetup *setup = g_task_propagate_pointer (G_TASK (result), &error);

  if (setup == NULL)
    {
      run_fail (run, error);
      return;
    }
  run->account = g_steal_pointer (&setup->account);
  run->sent_folder = setup->sent_folder;
  run_setup_free (setup);
  if (g_cancellable_is_cancelled (run->cancellable))
    {
      run_close (run);
      return;
    }
  if (run->sent_folder == 0)
    {
      /* The Sent folder, made here and on the server by sync (the journal). Before
       * any message is sent, so that a copy never waits for it. */
      lb_store_writer_create_folder_async (run->self->writer, run->account_id, "Sent", NULL,
                                           folder_created_cb, run);
      return;
    }
  run_connect (run);
}

static void
run_start (LbOutbox   *self,
           const char *account_id)
{
  Run *run = g_new0 (Run, 1);
  g_autoptr(GTask) task = NULL;

  run->self = g_object_ref (self);
  run->cancellable = g_object_ref (self->cancellable);
  run->account_id = g_strdup (account_id);
  run->tried = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  g_hash_table_insert (self->busy, run->account_id, run);
  task = g_task_new (self, NULL, setup_cb, run);
  g_task_set_task_data (task, g_strdup (account_id), g_free);
  g_task_run_in_thread (task, setup_thread);
}

static gboolean
timer_cb (gpointer user_data)
{
  LbOutbox *self = user_data;

  g_clear_pointer (&self->timer, g_source_unref);
  schedule (self);
  return G_SOURCE_REMOVE;
}

/* Starts a run for every account with a due message and none running; wakes up for the
 * next one due. Main context. */
static void
schedule (LbOutbox *self)
{
  sqlite3_stmt *s = NULL;
  gint64 now = g_get_real_time ();
  gint64 next = G_MAXINT64;
  g_autoptr(GPtrArray) due = g_ptr_array_new_with_free_func (g_free);

  if (!self->started)
    return;
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (now < self->not_before)
    {
      next = self->not_before;
      goto wait;
    }
  g_mutex_lock (&self->lock);
  if (sqlite3_prepare_v2 (self->db, "SELECT account_id, min (next_attempt) FROM outbox "
                                    "INDEXED BY outbox_due "
                                    "WHERE state = 'queued' AND account_id IS NOT NULL "
                                    "GROUP BY account_id", -1, &s, NULL) == SQLITE_OK)
    while (sqlite3_step (s) == SQLITE_ROW)
      {
        const char *account = (const char *) sqlite3_column_text (s, 0);
        gint64 when = sqlite3_column_int64 (s, 1);
        Unreachable *u = g_hash_table_lookup (self->unreachable, account);

        if (g_hash_table_contains (self->busy, account))
          continue;
        if (u != NULL)
          when = MAX (when, u->until);
        if (when <= now)
          g_ptr_array_add (due, g_strdup (account));
        else
          next = MIN (next, when);
      }
  sqlite3_finalize (s);
  g_mutex_unlock (&self->lock);

  /* Runs live in the worker's context (their tasks take the thread-default one); this
   * runs in it, from its timer, an idle or a run's callback. */
  g_main_context_push_thread_default (self->context);
  for (guint i = 0; i < due->len; i++)
    run_start (self, g_ptr_array_index (due, i));
  g_main_context_pop_thread_default (self->context);
wait:
  if (next != G_MAXINT64)
    {
      self->timer = g_timeout_source_new ((guint) MIN ((next - now) / 1000 + 1, G_MAXUINT));
      g_source_set_callback (self->timer, timer_cb, self, NULL);
      g_source_set_name (self->timer, "[letterbox] outbox retry");
      g_source_attach (self->timer, self->context);
    }
}

static gboolean
poke_cb (gpointer user_data)
{
  LbOutbox *self = user_data;

  g_clear_pointer (&self->poke, g_source_unref);
  schedule (self);
  return G_SOURCE_REMOVE;
}

/* Something became due (a submission, a retry): schedule soon, in the worker's
 * context, whichever context this is called from. */
static void
poke (LbOutbox *self)
{
  if (!self->started || self->poke != NULL)
    return;
  self->poke = g_idle_source_new ();
  g_source_set_callback (self->poke, poke_cb, self, NULL);
  g_source_set_name (self->poke, "[letterbox] outbox poke");
  g_source_attach (self->poke, self->context);
}

/* The store failed under a run: rather than retry at once (and again), wait a while. */
static void
pause_runs (LbOutbox *self)
{
  self->not_before = g_get_real_time () + (gint64) self->retry_base_ms * 1000;
}

/* ---- start: what the last run left ------------------------------------------------ */

static void
left_over_added (gpointer  data,
                 GError   *error)
{
  g_autoptr(LbOutbox) self = data;

  if (error != NULL)
    g_warning ("Could not add what sending left to the store: %s", error->message);
  else
    g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
}

/* Writer thread: rows the last run left `sending` go back to the queue, due now. */
static gboolean
requeue_interrupted (sqlite3  *db,
                     gpointer  data,
                     GError  **error)
{
  sqlite3_stmt *s = NULL;

  if (sqlite3_prepare_v2 (db, "UPDATE outbox SET state = 'queued', next_attempt = ?1, "
                              "  last_error = ?2 WHERE state = 'sending'", -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_int64 (s, 1, g_get_real_time ());
  sqlite3_bind_text (s, 2, _("Sending was interrupted; sent again, it may arrive twice"), -1,
                     SQLITE_TRANSIENT);
  if (!step_done (db, s, error))
    return FALSE;
  /* Finished rows are kept a while for listing, then forgotten. */
  if (sqlite3_prepare_v2 (db, "DELETE FROM outbox WHERE state IN ('sent', 'failed', 'cancelled') "
                              "AND notice IS NULL AND sent_copy_folder IS NULL AND created < ?1",
                          -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_int64 (s, 1, g_get_real_time () - KEEP_DONE_US);
  return step_done (db, s, error);
}

static void
requeued (gpointer  data,
          GError   *error)
{
  g_autoptr(LbOutbox) self = data;

  if (error != NULL)
    g_warning ("Could not requeue interrupted messages: %s", error->message);
  schedule (self);
}

/**
 * lb_outbox_start:
 *
 * Starts sending, in the thread-default main context of the caller (where the `sent`,
 * `failed` and `changed` signals of sending are emitted): due messages at once, others
 * when they fall due. Messages the last run left `sending` are sent again — the
 * connection broke after DATA began, so the recipients may get them twice (RFC 1047),
 * which is logged; never dropped. Messages the server took whose Sent copy or notice
 * was not yet in the store get it, and are not sent again.
 *
 * Call lb_outbox_stop() before dropping the last reference: a send in flight holds one
 * until it ends.
 */
void
lb_outbox_start (LbOutbox *self)
{
  g_autoptr(GPtrArray) interrupted = NULL;
  g_autoptr(GPtrArray) left_over = NULL;
  g_autoptr(GError) error = NULL;
  Batch *batch;

  g_return_if_fail (LB_IS_OUTBOX (self));

  if (self->started)
    return;
  self->started = TRUE;
  self->context = g_main_context_ref_thread_default ();
  self->cancellable = g_cancellable_new ();

  interrupted = read_rows (self, "WHERE state = 'sending'", NULL, 0, FALSE, &error);
  for (guint i = 0; interrupted != NULL && i < interrupted->len; i++)
    {
      Row *row = g_ptr_array_index (interrupted, i);
      g_autofree char *recipients = g_strjoinv (", ", row->item.recipients);

      g_warning ("Message %s (from %s to %s) was being sent when the outbox stopped: it is "
                 "sent again and may arrive twice", row->item.queue_id, row->item.sender,
                 recipients);
    }
  if (interrupted != NULL)
    left_over = read_rows (self, "WHERE notice IS NOT NULL OR sent_copy_folder IS NOT NULL",
                           NULL, 0, TRUE, &error);
  while (left_over != NULL && left_over->len > 0)
    {
      Row *row = g_ptr_array_steal_index (left_over, 0);

      g_debug ("Adding the Sent copy or notice sending %s left", row->item.queue_id);
      pending_add (self, row, TRUE, left_over_added, g_object_ref (self));
    }
  if (error != NULL)
    g_warning ("%s", error->message);

  batch = batch_new (requeued, g_object_ref (self));
  batch_exec (self, batch, requeue_interrupted, NULL, NULL);
  batch_flush (self, batch);
}

/**
 * lb_outbox_stop:
 *
 * Stops sending: connections are closed at once (a message in the middle of DATA is not
 * completed; it stays `sending` and goes again at the next start). Safe to call twice.
 */
void
lb_outbox_stop (LbOutbox *self)
{
  g_return_if_fail (LB_IS_OUTBOX (self));

  if (!self->started)
    return;
  self->started = FALSE;
  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  if (self->timer != NULL)
    {
      g_source_destroy (self->timer);
      g_clear_pointer (&self->timer, g_source_unref);
    }
  if (self->poke != NULL)
    {
      g_source_destroy (self->poke);
      g_clear_pointer (&self->poke, g_source_unref);
    }
  g_clear_pointer (&self->context, g_main_context_unref);
}

/* ---- management ------------------------------------------------------------------- */

/**
 * lb_outbox_list:
 *
 * Reads the outbox: queued messages and those finished in the last 30 days, oldest
 * first. Reads the disk in the caller's thread (a small table).
 *
 * Returns: (transfer full) (element-type LbOutboxItem): the items, or %NULL with @error set
 */
GPtrArray *
lb_outbox_list (LbOutbox  *self,
                GError   **error)
{
  g_autoptr(GPtrArray) rows = NULL;
  GPtrArray *items;

  g_return_val_if_fail (LB_IS_OUTBOX (self), NULL);

  rows = read_rows (self, "ORDER BY created, id", NULL, 0, FALSE, error);
  if (rows == NULL)
    return NULL;
  items = g_ptr_array_new_full (rows->len, (GDestroyNotify) lb_outbox_item_free);
  for (guint i = 0; i < rows->len; i++)
    g_ptr_array_add (items, lb_outbox_item_copy (&((Row *) g_ptr_array_index (rows, i))->item));
  return items;
}

/**
 * lb_outbox_list_variant:
 *
 * The outbox as `ListOutbox` (org.letterbox.Backend1) gives it, for the service and
 * for `letterbox-ctl outbox` without it: `a(sa{sv})`, a queue id and its fields, for
 * what waits and what failed for good, not what is sent or cancelled.
 *
 * Returns: (transfer full): a non-floating `a(sa{sv})`, or %NULL with @error set
 */
GVariant *
lb_outbox_list_variant (LbOutbox  *self,
                        GError   **error)
{
  g_autoptr(GPtrArray) items = lb_outbox_list (self, error);
  const char *const none[] = { NULL };
  GVariantBuilder builder;

  if (items == NULL)
    return NULL;
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sa{sv})"));
  for (guint i = 0; i < items->len; i++)
    {
      LbOutboxItem *item = g_ptr_array_index (items, i);
      GVariantDict dict;

      if (item->state == LB_OUTBOX_STATE_SENT || item->state == LB_OUTBOX_STATE_CANCELLED)
        continue;
      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "account", "s", item->account_id != NULL ? item->account_id : "");
      g_variant_dict_insert (&dict, "from", "s", item->sender != NULL ? item->sender : "");
      g_variant_dict_insert_value (&dict, "recipients",
                                   g_variant_new_strv (item->recipients != NULL
                                                         ? (const char *const *) item->recipients
                                                         : none, -1));
      g_variant_dict_insert (&dict, "subject", "s", item->subject != NULL ? item->subject : "");
      g_variant_dict_insert (&dict, "size", "t", item->size);
      g_variant_dict_insert (&dict, "state", "s", lb_outbox_state_to_string (item->state));
      g_variant_dict_insert (&dict, "attempts", "u", item->attempts);
      g_variant_dict_insert (&dict, "next-attempt", "x", item->next_attempt);
      g_variant_dict_insert (&dict, "error", "s", item->last_error != NULL ? item->last_error : "");
      g_variant_dict_insert (&dict, "created", "x", item->created);
      g_variant_builder_add (&builder, "(s@a{sv})", item->queue_id, g_variant_dict_end (&dict));
    }
  return g_variant_ref_sink (g_variant_builder_end (&builder));
}

/**
 * lb_outbox_is_sending:
 *
 * Returns: whether a connection to a server is open (or being opened) to send
 */
gboolean
lb_outbox_is_sending (LbOutbox *self)
{
  g_return_val_if_fail (LB_IS_OUTBOX (self), FALSE);

  return g_hash_table_size (self->busy) > 0;
}

/**
 * lb_outbox_get_pending_count:
 *
 * Returns: how many messages wait to be sent (queued or being sent, see
 *   %LB_OUTBOX_STATE_SENDING)
 */
guint
lb_outbox_get_pending_count (LbOutbox *self)
{
  sqlite3_stmt *s = NULL;
  guint count = 0;

  g_return_val_if_fail (LB_IS_OUTBOX (self), 0);

  g_mutex_lock (&self->lock);
  if (sqlite3_prepare_v2 (self->db, "SELECT count(*) FROM outbox WHERE " SHOWN_STATE " IN "
                                    "('queued', 'sending')", -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step (s) == SQLITE_ROW)
    count = (guint) sqlite3_column_int (s, 0);
  sqlite3_finalize (s);
  g_mutex_unlock (&self->lock);
  return count;
}

typedef struct
{
  char *queue_id;
  gboolean retry;
  gint64 now;
  gint64 expires;
} Change;

static void
change_free (Change *change)
{
  g_free (change->queue_id);
  g_free (change);
}

/* Writer thread: cancel or retry, judged by the state the row has when it runs. */
static gboolean
change_row (sqlite3  *db,
            gpointer  data,
            GError  **error)
{
  Change *change = data;
  sqlite3_stmt *s = NULL;
  g_autofree char *state = NULL;
  gboolean has_message = FALSE;
  const char *sql;

  if (change->queue_id == NULL)
    {
      /* Retry everything that waits. */
      if (sqlite3_prepare_v2 (db, "UPDATE outbox SET next_attempt = ?1 WHERE state = 'queued'",
                              -1, &s, NULL) != SQLITE_OK)
        return sql_failed (db, error);
      sqlite3_bind_int64 (s, 1, change->now);
      return step_done (db, s, error);
    }
  if (sqlite3_prepare_v2 (db, "SELECT state, message IS NOT NULL FROM outbox WHERE queue_id = ?1",
                          -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, change->queue_id, -1, SQLITE_STATIC);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      state = g_strdup ((const char *) sqlite3_column_text (s, 0));
      has_message = sqlite3_column_int (s, 1) != 0;
    }
  sqlite3_finalize (s);

  if (state == NULL || (change->retry && g_strcmp0 (state, "cancelled") == 0))
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   state == NULL ? _("There is no message %s in the outbox")
                                 : _("Message %s was cancelled"), change->queue_id);
      return FALSE;
    }
  if (g_strcmp0 (state, "sending") == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_BUSY,
                   _("Message %s is being sent right now"), change->queue_id);
      return FALSE;
    }
  if (g_strcmp0 (state, "sent") == 0)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_ALREADY_SENT,
                   _("Message %s has already been sent"), change->queue_id);
      return FALSE;
    }
  if (!change->retry && g_strcmp0 (state, "cancelled") == 0)
    return TRUE;
  if (change->retry && !has_message)
    {
      g_set_error (error, LB_OUTBOX_ERROR, LB_OUTBOX_ERROR_NOT_FOUND,
                   _("Message %s is no longer kept"), change->queue_id);
      return FALSE;
    }
  if (change->retry)
    sql = "UPDATE outbox SET state = 'queued', next_attempt = ?2, "
          "  expires = CASE WHEN state = 'failed' THEN ?3 ELSE expires END "
          "WHERE queue_id = ?1";
  else
    sql = "UPDATE outbox SET state = 'cancelled', notice = NULL, "
          "  message = CASE WHEN sent_copy_folder IS NULL THEN NULL ELSE message END "
          "WHERE queue_id = ?1";
  if (sqlite3_prepare_v2 (db, sql, -1, &s, NULL) != SQLITE_OK)
    return sql_failed (db, error);
  sqlite3_bind_text (s, 1, change->queue_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (s, 2, change->now);
  sqlite3_bind_int64 (s, 3, change->expires);
  return step_done (db, s, error);
}

static void
changed (gpointer  data,
         GError   *error)
{
  g_autoptr(GTask) task = data;
  LbOutbox *self = g_task_get_source_object (task);

  if (error != NULL)
    {
      g_task_return_error (task, g_error_copy (error));
      return;
    }
  g_signal_emit (self, signals[SIGNAL_CHANGED], 0);
  if (g_task_get_source_tag (task) == lb_outbox_retry_async)
    {
      /* The user asks to try now: every server gets its chance again. */
      g_mutex_lock (&self->lock);
      g_hash_table_remove_all (self->unreachable);
      g_mutex_unlock (&self->lock);
    }
  poke (self);
  g_task_return_boolean (task, TRUE);
}

static void
change_async (LbOutbox            *self,
              const char          *queue_id,
              gboolean             retry,
              gpointer             source_tag,
              GCancellable        *cancellable,
              GAsyncReadyCallback  callback,
              gpointer             user_data)
{
  GTask *task = g_task_new (self, cancellable, callback, user_data);
  Change *change = g_new0 (Change, 1);
  Batch *batch;

  g_task_set_source_tag (task, source_tag);
  change->queue_id = g_strdup (queue_id);
  change->retry = retry;
  change->now = g_get_real_time ();
  change->expires = change->now + (gint64) self->give_up_ms * 1000;
  batch = batch_new (changed, task);
  batch_exec (self, batch, change_row, change, (GDestroyNotify) change_free);
  batch_flush (self, batch);
}

/**
 * lb_outbox_cancel_async:
 *
 * Takes a queued (or failed) message out of the outbox; its bytes are dropped. A message
 * being sent right now is %LB_OUTBOX_ERROR_BUSY, one already sent
 * %LB_OUTBOX_ERROR_ALREADY_SENT, an unknown id %LB_OUTBOX_ERROR_NOT_FOUND; cancelling
 * twice is no error. Completes once that is on disk.
 */
void
lb_outbox_cancel_async (LbOutbox            *self,
                        const char          *queue_id,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_return_if_fail (LB_IS_OUTBOX (self));
  g_return_if_fail (queue_id != NULL);

  change_async (self, queue_id, FALSE, lb_outbox_cancel_async, cancellable, callback, user_data);
}

gboolean
lb_outbox_cancel_finish (LbOutbox      *self,
                         GAsyncResult  *result,
                         GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_outbox_retry_async:
 * @queue_id: (nullable): the message; %NULL for every queued message
 *
 * Makes a queued message due now; a failed one (given up, or refused) goes back into
 * the queue, due now, with a new #LbOutbox:give-up-ms. The errors are those of
 * lb_outbox_cancel_async(), and %LB_OUTBOX_ERROR_NOT_FOUND for a cancelled message.
 */
void
lb_outbox_retry_async (LbOutbox            *self,
                       const char          *queue_id,
                       GCancellable        *cancellable,
                       GAsyncReadyCallback  callback,
                       gpointer             user_data)
{
  g_return_if_fail (LB_IS_OUTBOX (self));

  change_async (self, queue_id, TRUE, lb_outbox_retry_async, cancellable, callback, user_data);
}

gboolean
lb_outbox_retry_finish (LbOutbox      *self,
                        GAsyncResult  *result,
                        GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}
