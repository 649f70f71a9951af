/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-sync"

#include "config.h"

#include <gio/gunixoutputstream.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-pop3-session.h"
#include "lb-pop3-sync.h"
#include "lb-store.h"
#include "lb-store-import.h"

/*
 * One run, step by step (every step is a callback in the caller's main context):
 *
 *   ensure the Inbox → password → connect → login → UIDL (or content keys)
 *   → look the keys up in the store → RETR the unknown ones, WINDOW at a time:
 *       spool to an unlinked temporary file → map it → summarise → add to the writer
 *       → record the UIDL (only if the message is there, complete)
 *   → flush the writer to disk → DELE what the policy says → QUIT → prune the UIDLs
 *     no longer on the server.
 *
 * Idempotence: the add is keyed by "pop3:<key>" (the writer updates instead of
 * duplicating), and the lookup adopts a message stored under that key whose UIDL a crash
 * kept from being recorded, so it is not even downloaded again. DELE depends only on
 * recorded UIDLs, and only after the flush, so a crash never costs a message.
 *
 * Without UIDL (RFC 1939 §7 makes it optional) a message's key is "sha1:" and the SHA-1
 * of its header block (TOP n 0): Received, Message-ID and Date make it unique in
 * practice, and a repeat within the maildrop gets "/2", "/3"… in maildrop order.
 */

/* Messages between their RETR and their recorded UIDL at once: enough to keep RETRs
 * pipelined and the writer batching, each spooled to disk, not held in memory. */
#define WINDOW 8

/* body_state of a message whose body is complete in the store (lb-store.c). */
#define BODY_COMPLETE 2

struct _LbPop3Sync
{
  GObject parent_instance;

  LbAccount *account;
  LbStoreWriter *writer;
  gboolean running;
};

G_DEFINE_FINAL_TYPE (LbPop3Sync, lb_pop3_sync, G_TYPE_OBJECT)

enum
{
  SIGNAL_PROGRESS,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

/* ---- test hooks ------------------------------------------------------------------- */

/*
 * Read only by tests/integration/test-pop3-sync.c; unset in normal use.
 *
 * LB_POP3_SYNC_ABORT_AFTER: kill this process with SIGKILL, as a crash would, once that
 *   many messages are committed, or right after the step named: "flush" (the store is
 *   on disk, nothing deleted), "dele" (the DELEs answered, no QUIT), "quit" (the server
 *   removed them, the UIDLs not yet pruned).
 * LB_POP3_SYNC_NO_UIDL: act as if the server lacked UIDL, to test the content keys.
 */
static void
crash_point (const char *step,
             guint       committed)
{
  const char *at = g_getenv ("LB_POP3_SYNC_ABORT_AFTER");

  if (at == NULL)
    return;
  if (step != NULL ? strcmp (at, step) == 0
                   : g_ascii_isdigit (at[0]) && g_ascii_strtoull (at, NULL, 10) == committed)
    raise (SIGKILL);
}

/* ---- the store's side (writer thread) --------------------------------------------- */

static gboolean
db_failed (sqlite3  *db,
           GError  **error)
{
  g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO, _("The mail store failed: %s"),
               sqlite3_errmsg (db));
  return FALSE;
}

/* Keys looked up, and recorded when their message is in the store. */
typedef struct
{
  char *account_id;
  gint64 folder_id;
  gint64 now;
  GPtrArray *keys;
  gint64 *first_seen; /* out, one per key: when first stored here; 0 = not stored */
} Lookup;

static Lookup *
lookup_new (LbPop3Sync *self,
            gint64      folder_id,
            gint64      now,
            GPtrArray  *keys)
{
  Lookup *l = g_new0 (Lookup, 1);

  l->account_id = g_strdup (self->account->id);
  l->folder_id = folder_id;
  l->now = now;
  l->keys = keys;
  l->first_seen = g_new0 (gint64, MAX (keys->len, 1));
  return l;
}

static void
lookup_free (Lookup *l)
{
  if (l == NULL)
    return;
  g_free (l->account_id);
  g_ptr_array_unref (l->keys);
  g_free (l->first_seen);
  g_free (l);
}

/* A key's UIDL row, made now if its message is complete in the folder: after the add, or
 * for one a crash left unrecorded. The row and the message commit together, so a
 * recorded UIDL always has its message. */
static gboolean
lookup_keys (sqlite3  *db,
             gpointer  data,
             GError  **error)
{
  Lookup *l = data;
  sqlite3_stmt *find = NULL;
  sqlite3_stmt *stored = NULL;
  sqlite3_stmt *record = NULL;
  gboolean ok = FALSE;

  if (sqlite3_prepare_v2 (db, "SELECT first_seen FROM pop3_uidls WHERE account_id = ?1 "
                              "AND uidl = ?2", -1, &find, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2 (db, "SELECT 1 FROM messages WHERE folder_id = ?1 AND import_key = ?2 "
                              "AND body_state = ?3", -1, &stored, NULL) != SQLITE_OK ||
      sqlite3_prepare_v2 (db, "INSERT INTO pop3_uidls (account_id, uidl, first_seen) "
                              "VALUES (?1, ?2, ?3)", -1, &record, NULL) != SQLITE_OK)
    {
      db_failed (db, error);
      goto out;
    }
  sqlite3_bind_text (find, 1, l->account_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (stored, 1, l->folder_id);
  sqlite3_bind_int (stored, 3, BODY_COMPLETE);
  sqlite3_bind_text (record, 1, l->account_id, -1, SQLITE_STATIC);
  sqlite3_bind_int64 (record, 3, l->now);
  for (guint i = 0; i < l->keys->len; i++)
    {
      const char *key = g_ptr_array_index (l->keys, i);
      g_autofree char *import_key = g_strconcat ("pop3:", key, NULL);
      int rc;

      sqlite3_bind_text (find, 2, key, -1, SQLITE_STATIC);
      rc = sqlite3_step (find);
      if (rc == SQLITE_ROW)
        l->first_seen[i] = sqlite3_column_int64 (find, 0);
      sqlite3_reset (find);
      if (rc == SQLITE_ROW)
        continue;
      if (rc != SQLITE_DONE)
        {
          db_failed (db, error);
          goto out;
        }

      sqlite3_bind_text (stored, 2, import_key, -1, SQLITE_STATIC);
      rc = sqlite3_step (stored);
      sqlite3_reset (stored);
      if (rc == SQLITE_DONE)
        continue;
      if (rc != SQLITE_ROW)
        {
          db_failed (db, error);
          goto out;
        }
      sqlite3_bind_text (record, 2, key, -1, SQLITE_STATIC);
      rc = sqlite3_step (record);
      sqlite3_reset (record);
      if (rc != SQLITE_DONE)
        {
          db_failed (db, error);
          goto out;
        }
      l->first_seen[i] = l->now;
    }
  ok = TRUE;

out:
  sqlite3_finalize (find);
  sqlite3_finalize (stored);
  sqlite3_finalize (record);
  return ok;
}

/* The UIDLs to forget: those no longer on the server (deleted by us or elsewhere). */
typedef struct
{
  char *account_id;
  GHashTable *keep;
} Prune;

static void
prune_free (gpointer data)
{
  Prune *p = data;

  g_free (p->account_id);
  g_hash_table_unref (p->keep);
  g_free (p);
}

static gboolean
prune_keys (sqlite3  *db,
            gpointer  data,
            GError  **error)
{
  Prune *p = data;
  g_autoptr(GPtrArray) gone = g_ptr_array_new_with_free_func (g_free);
  sqlite3_stmt *s = NULL;
  int rc;

  if (sqlite3_prepare_v2 (db, "SELECT uidl FROM pop3_uidls WHERE account_id = ?1", -1, &s,
                          NULL) != SQLITE_OK)
    return db_failed (db, error);
  sqlite3_bind_text (s, 1, p->account_id, -1, SQLITE_STATIC);
  while ((rc = sqlite3_step (s)) == SQLITE_ROW)
    {
      const char *key = (const char *) sqlite3_column_text (s, 0);

      if (!g_hash_table_contains (p->keep, key))
        g_ptr_array_add (gone, g_strdup (key));
    }
  sqlite3_finalize (s);
  if (rc != SQLITE_DONE)
    return db_failed (db, error);

  if (sqlite3_prepare_v2 (db, "DELETE FROM pop3_uidls WHERE account_id = ?1 AND uidl = ?2", -1,
                          &s, NULL) != SQLITE_OK)
    return db_failed (db, error);
  sqlite3_bind_text (s, 1, p->account_id, -1, SQLITE_STATIC);
  for (guint i = 0; i < gone->len; i++)
    {
      sqlite3_bind_text (s, 2, g_ptr_array_index (gone, i), -1, SQLITE_STATIC);
      rc = sqlite3_step (s);
      sqlite3_reset (s);
      if (rc != SQLITE_DONE)
        {
          sqlite3_finalize (s);
          return db_failed (db, error);
        }
    }
  sqlite3_finalize (s);
  return TRUE;
}

/* ---- one run ---------------------------------------------------------------------- */

typedef struct
{
  guint32 number;
  char *key;
  gint64 first_seen; /* when the store first had it; 0 = not stored here */
  gboolean deleting;
} Entry;

typedef struct
{
  LbPop3Session *session;
  char *password;
  gint64 folder_id;
  gint64 now;
  GArray *entries;     /* Entry, in maildrop order */
  Lookup *lookup;
  GArray *wanted;      /* guint: indexes into entries of the messages to download */
  guint next;          /* the next of wanted to start */
  guint in_flight;     /* messages between RETR and recorded */
  guint pending;       /* TOPs or DELEs not answered yet */
  gboolean downloading;
  gboolean aborted;
  GError *error;       /* the first error while several things are in flight */
  LbPop3SyncStats stats;
} Run;

static void
entry_clear (gpointer data)
{
  g_free (((Entry *) data)->key);
}

/* Overwritten before it is freed, as lb-account.c does with what a command printed. */
static void
forget_password (Run *run)
{
  if (run->password == NULL)
    return;
  memset (run->password, 0, strlen (run->password));
  g_clear_pointer (&run->password, g_free);
}

static void
run_free (gpointer data)
{
  Run *run = data;

  g_clear_object (&run->session);
  forget_password (run);
  g_array_unref (run->entries);
  g_clear_pointer (&run->wanted, g_array_unref);
  lookup_free (run->lookup);
  g_clear_error (&run->error);
  g_free (run);
}

static const char *
account_name (LbPop3Sync *self)
{
  return self->account->display_name != NULL ? self->account->display_name : self->account->id;
}

/* The error as the user sees it: which account, and for refused credentials, that; the
 * domain and code stay, so that callers can tell whether to retry, ask or give up. */
static GError *
account_error (LbPop3Sync *self,
               GError     *error)
{
  GError *wrapped;

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return error;
  if (g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_AUTH))
    wrapped = g_error_new (error->domain, error->code,
                           _("Account “%s”: the server refused the user name or password (%s)"),
                           account_name (self), error->message);
  else
    /* Translators: "Account “<name>”: <what went wrong>" */
    wrapped = g_error_new (error->domain, error->code, _("Account “%s”: %s"),
                           account_name (self), error->message);
  g_error_free (error);
  return wrapped;
}

static void
note_error (Run    *run,
            GError *error)
{
  if (run->error == NULL)
    run->error = error;
  else
    g_error_free (error);
}

/* Ends the run with @error (or the one noted). Nothing may be in flight: the session is
 * dropped without QUIT, so the server deletes nothing. */
static void
fail (GTask  *task,
      GError *error)
{
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);

  if (error == NULL)
    error = g_steal_pointer (&run->error);
  g_clear_error (&run->error);
  run->downloading = FALSE;
  if (run->session != NULL && !run->aborted)
    {
      run->aborted = TRUE;
      lb_pop3_session_abort (run->session);
    }
  self->running = FALSE;
  g_task_return_error (task, account_error (self, error));
}

static gboolean
cancelled (GTask *task)
{
  GError *error = NULL;

  if (!g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &error))
    return FALSE;
  fail (task, error);
  return TRUE;
}

/* ---- the end: flush, DELE, QUIT, prune -------------------------------------------- */

static void
pruned_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  GError *error = NULL;

  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (object), result, &error))
    {
      fail (task, error);
      return;
    }
  self->running = FALSE;
  g_task_return_boolean (task, TRUE);
}

static void
quit_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;
  Prune *prune;
  guint deleted = 0;

  if (!lb_pop3_session_quit_finish (LB_POP3_SESSION (object), result, &deleted, &error))
    {
      fail (task, error);
      return;
    }
  run->stats.deleted_on_server = deleted;
  crash_point ("quit", 0);

  prune = g_new0 (Prune, 1);
  prune->account_id = g_strdup (self->account->id);
  prune->keep = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  for (guint i = 0; i < run->entries->len; i++)
    {
      Entry *e = &g_array_index (run->entries, Entry, i);

      if (!e->deleting)
        g_hash_table_add (prune->keep, g_strdup (e->key));
    }
  lb_store_writer_exec_async (self->writer, prune_keys, prune, prune_free, NULL, pruned_cb,
                              g_object_ref (task));
}

static void
quit (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  lb_pop3_session_quit_async (run->session, g_task_get_cancellable (task), quit_cb,
                              g_object_ref (task));
}

static void
deleted_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!lb_pop3_session_delete_finish (LB_POP3_SESSION (object), result, &error))
    note_error (run, error);
  if (--run->pending > 0)
    return;
  if (run->error != NULL)
    {
      fail (task, NULL);
      return;
    }
  crash_point ("dele", 0);
  if (!cancelled (task))
    quit (task);
}

/* Whether the account's policy removes a message stored at @first_seen. */
static gboolean
should_delete (const LbAccount *account,
               gint64           first_seen,
               gint64           now)
{
  if (first_seen == 0)
    return FALSE;
  if (!account->leave_on_server)
    return TRUE;
  return account->delete_after_days > 0 &&
         now - first_seen >= (gint64) account->delete_after_days * 24 * 60 * 60;
}

static void
flushed_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!lb_store_writer_flush_finish (LB_STORE_WRITER (object), result, &error))
    {
      fail (task, error);
      return;
    }
  crash_point ("flush", 0);
  if (cancelled (task))
    return;

  /* Everything recorded is on disk now: only from here may the server let go. */
  for (guint i = 0; i < run->entries->len; i++)
    {
      Entry *e = &g_array_index (run->entries, Entry, i);

      if (!should_delete (self->account, e->first_seen, run->now))
        continue;
      e->deleting = TRUE;
      lb_pop3_session_mark_stored (run->session, e->number);
      run->pending++;
      lb_pop3_session_delete_async (run->session, e->number, g_task_get_cancellable (task),
                                    deleted_cb, g_object_ref (task));
    }
  if (run->pending == 0)
    quit (task);
}

/* ---- downloading ------------------------------------------------------------------ */

typedef struct
{
  GTask *task;
  guint entry;
  GOutputStream *spool;
  Lookup *record;
} Slot;

static void pump (GTask *task);

static void
slot_done (Slot *slot)
{
  GTask *task = slot->task;
  Run *run = g_task_get_task_data (task);

  if (slot->spool != NULL)
    g_output_stream_close (slot->spool, NULL, NULL);
  g_clear_object (&slot->spool);
  lookup_free (slot->record);
  g_free (slot);
  run->in_flight--;
  pump (task);
  g_object_unref (task);
}

static void
recorded_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Slot *slot = user_data;
  LbPop3Sync *self = g_task_get_source_object (slot->task);
  Run *run = g_task_get_task_data (slot->task);
  GError *error = NULL;

  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (object), result, &error))
    note_error (run, error);
  else
    {
      g_array_index (run->entries, Entry, slot->entry).first_seen = slot->record->first_seen[0];
      run->stats.downloaded++;
      g_signal_emit (self, signals[SIGNAL_PROGRESS], 0, run->stats.downloaded, run->wanted->len);
      crash_point (NULL, run->stats.downloaded);
    }
  slot_done (slot);
}

static void
added_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Slot *slot = user_data;
  LbPop3Sync *self = g_task_get_source_object (slot->task);
  Run *run = g_task_get_task_data (slot->task);
  Entry *e = &g_array_index (run->entries, Entry, slot->entry);
  GError *error = NULL;
  GPtrArray *keys;

  if (lb_store_writer_add_finish (LB_STORE_WRITER (object), result, &error) == 0)
    {
      note_error (run, error);
      slot_done (slot);
      return;
    }
  keys = g_ptr_array_new_with_free_func (g_free);
  g_ptr_array_add (keys, g_strdup (e->key));
  slot->record = lookup_new (self, run->folder_id, run->now, keys);
  lb_store_writer_exec_async (self->writer, lookup_keys, slot->record, NULL, NULL, recorded_cb,
                              slot);
}

/* The spooled message as bytes, without reading it into memory. */
static GBytes *
spool_map (GOutputStream  *spool,
           guint64         size,
           GError        **error)
{
  int fd = g_unix_output_stream_get_fd (G_UNIX_OUTPUT_STREAM (spool));
  GMappedFile *mapped = g_mapped_file_new_from_fd (fd, FALSE, error);
  GBytes *bytes;

  if (mapped == NULL)
    return NULL;
  bytes = g_mapped_file_get_bytes (mapped);
  g_mapped_file_unref (mapped);
  if (g_bytes_get_size (bytes) != size)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED,
                   _("A downloaded message was not written completely to a temporary file"));
      g_bytes_unref (bytes);
      return NULL;
    }
  return bytes;
}

/* The index row, summarised the way every import is (lb_store_message_from_bytes). */
static LbStoreMessage *
message_for (GBytes     *raw,
             gint64      folder_id,
             const char *key,
             gint64      now)
{
  g_autoptr(GError) error = NULL;
  LbStoreMessage *m = lb_store_message_from_bytes (raw, folder_id, &error);

  if (m == NULL)
    {
      /* Not something GMime reads as a message (empty, say): kept as it came all the
       * same, since the server may be about to delete its copy. */
      g_debug ("POP3: storing an unreadable message as it is: %s", error->message);
      m = lb_store_message_new ();
      m->folder_id = folder_id;
      m->size = g_bytes_get_size (raw);
    }
  g_free (m->import_key);
  m->import_key = g_strconcat ("pop3:", key, NULL);
  m->internal_date = now;
  return m;
}

static void
retrieved_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  Slot *slot = user_data;
  LbPop3Sync *self = g_task_get_source_object (slot->task);
  Run *run = g_task_get_task_data (slot->task);
  Entry *e = &g_array_index (run->entries, Entry, slot->entry);
  g_autoptr(GBytes) raw = NULL;
  g_autoptr(GInputStream) body = NULL;
  GError *error = NULL;
  guint64 size = 0;

  if (!lb_pop3_session_retrieve_finish (LB_POP3_SESSION (object), result, &size, &error) ||
      (raw = spool_map (slot->spool, size, &error)) == NULL)
    {
      note_error (run, error);
      slot_done (slot);
      return;
    }
  g_output_stream_close (slot->spool, NULL, NULL);
  g_clear_object (&slot->spool);

  /* Stored even when another message failed meanwhile: it is here, why fetch it again. */
  body = g_memory_input_stream_new_from_bytes (raw);
  lb_store_writer_add_async (self->writer, message_for (raw, run->folder_id, e->key, run->now),
                             body, (goffset) size, NULL, added_cb, slot);
}

/* An unlinked temporary file (0600) for one message: the bytes go to disk as they
 * arrive and vanish with the descriptor, also when the process dies. */
static GOutputStream *
spool_new (GError **error)
{
  g_autofree char *path = NULL;
  int fd = g_file_open_tmp ("letterbox-pop3-XXXXXX", &path, error);

  if (fd < 0)
    return NULL;
  g_unlink (path);
  return g_unix_output_stream_new (fd, TRUE);
}

static void
start_slot (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  guint entry = g_array_index (run->wanted, guint, run->next);
  GOutputStream *spool;
  GError *error = NULL;
  Slot *slot;

  run->next++;
  spool = spool_new (&error);
  if (spool == NULL)
    {
      note_error (run, error);
      return;
    }
  slot = g_new0 (Slot, 1);
  slot->task = g_object_ref (task);
  slot->entry = entry;
  slot->spool = spool;
  run->in_flight++;
  lb_pop3_session_retrieve_to_stream_async (run->session,
                                            g_array_index (run->entries, Entry, entry).number,
                                            spool, g_task_get_cancellable (task), retrieved_cb,
                                            slot);
}

/* Keeps WINDOW messages on their way; on an error, drops the session (which fails the
 * RETRs still out) and ends the run once nothing is in flight. Slot callbacks may come
 * back into it from lb_pop3_session_abort(). */
static void
pump (GTask *task)
{
  Run *run = g_task_get_task_data (task);
  LbPop3Sync *self = g_task_get_source_object (task);

  if (!run->downloading)
    return;
  if (run->error == NULL)
    g_cancellable_set_error_if_cancelled (g_task_get_cancellable (task), &run->error);
  while (run->error == NULL && run->in_flight < WINDOW && run->next < run->wanted->len)
    start_slot (task);

  if (run->error != NULL)
    {
      if (!run->aborted)
        {
          run->aborted = TRUE;
          lb_pop3_session_abort (run->session);
          if (!run->downloading)
            return;
        }
      if (run->in_flight == 0)
        fail (task, NULL);
      return;
    }
  if (run->in_flight == 0 && run->next == run->wanted->len)
    {
      run->downloading = FALSE;
      lb_store_writer_flush_async (self->writer, NULL, flushed_cb, g_object_ref (task));
    }
}

/* ---- what is new ------------------------------------------------------------------ */

static void
looked_up_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  if (!lb_store_writer_exec_finish (LB_STORE_WRITER (object), result, &error))
    {
      fail (task, error);
      return;
    }
  run->wanted = g_array_new (FALSE, FALSE, sizeof (guint));
  for (guint i = 0; i < run->entries->len; i++)
    {
      Entry *e = &g_array_index (run->entries, Entry, i);

      e->first_seen = run->lookup->first_seen[i];
      if (e->first_seen == 0)
        g_array_append_val (run->wanted, i);
      else
        run->stats.skipped_known++;
    }
  g_clear_pointer (&run->lookup, lookup_free);
  g_debug ("POP3 %s: %u on the server, %u new", self->account->id, run->entries->len,
           run->wanted->len);
  g_signal_emit (self, signals[SIGNAL_PROGRESS], 0, 0, run->wanted->len);
  run->downloading = TRUE;
  pump (task);
}

static void
look_up (GTask *task)
{
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  GPtrArray *keys = g_ptr_array_new_full (run->entries->len, g_free);

  if (cancelled (task))
    return;
  for (guint i = 0; i < run->entries->len; i++)
    g_ptr_array_add (keys, g_strdup (g_array_index (run->entries, Entry, i).key));
  run->lookup = lookup_new (self, run->folder_id, run->now, keys);
  lb_store_writer_exec_async (self->writer, lookup_keys, run->lookup, NULL, NULL, looked_up_cb,
                              g_object_ref (task));
}

typedef struct
{
  GTask *task;
  guint entry;
} Top;

/* The same key twice (two equal header blocks, or a server repeating a UIDL): told
 * apart by their order in the maildrop. */
static void
tell_apart (GArray *entries)
{
  g_autoptr(GHashTable) seen = g_hash_table_new (g_str_hash, g_str_equal);

  for (guint i = 0; i < entries->len; i++)
    {
      Entry *e = &g_array_index (entries, Entry, i);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (seen, e->key)) + 1;

      /* The table keeps pointing at the first entry's key. */
      g_hash_table_insert (seen, e->key, GUINT_TO_POINTER (n));
      if (n > 1)
        {
          char *key = g_strdup_printf ("%s/%u", e->key, n);

          g_free (e->key);
          e->key = key;
        }
    }
}

static void
top_cb (GObject      *object,
        GAsyncResult *result,
        gpointer      user_data)
{
  Top *top = user_data;
  g_autoptr(GTask) task = top->task;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GBytes) head = NULL;
  GError *error = NULL;

  head = lb_pop3_session_top_finish (LB_POP3_SESSION (object), result, &error);
  if (head == NULL)
    note_error (run, error);
  else
    {
      g_autofree char *sum = g_compute_checksum_for_bytes (G_CHECKSUM_SHA1, head);

      g_array_index (run->entries, Entry, top->entry).key = g_strconcat ("sha1:", sum, NULL);
    }
  g_free (top);
  if (--run->pending > 0)
    return;
  if (run->error != NULL)
    {
      fail (task, NULL);
      return;
    }

  tell_apart (run->entries);
  look_up (task);
}

static void
stat_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;
  guint count = 0;

  if (!lb_pop3_session_stat_finish (LB_POP3_SESSION (object), result, &count, NULL, &error))
    {
      fail (task, error);
      return;
    }
  if (count == 0)
    {
      look_up (task);
      return;
    }
  for (guint i = 0; i < count; i++)
    {
      Entry e = { .number = i + 1 };
      Top *top = g_new0 (Top, 1);

      g_array_append_val (run->entries, e);
      top->task = g_object_ref (task);
      top->entry = i;
      run->pending++;
      lb_pop3_session_top_async (run->session, i + 1, 0, g_task_get_cancellable (task), top_cb,
                                 top);
    }
}

/* Without UIDL: STAT for the count, TOP n 0 for each key. */
static void
list_by_content (GTask *task)
{
  Run *run = g_task_get_task_data (task);

  lb_pop3_session_stat_async (run->session, g_task_get_cancellable (task), stat_cb,
                              g_object_ref (task));
}

static void
uidl_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  g_autoptr(GArray) listing = NULL;
  GError *error = NULL;

  listing = lb_pop3_session_uidl_finish (LB_POP3_SESSION (object), result, &error);
  if (listing == NULL)
    {
      /* UNSUPPORTED: no UIDL in CAPA; ERR: a server without CAPA that lacks it too. */
      if (g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED) ||
          g_error_matches (error, LB_POP3_ERROR, LB_POP3_ERROR_ERR))
        {
          g_debug ("POP3: no UIDL (%s); keying messages by their headers", error->message);
          g_error_free (error);
          list_by_content (task);
        }
      else
        fail (task, error);
      return;
    }
  for (guint i = 0; i < listing->len; i++)
    {
      const LbPop3UidlEntry *u = &g_array_index (listing, LbPop3UidlEntry, i);
      Entry e = { .number = u->number, .key = g_strdup (u->uid) };

      g_array_append_val (run->entries, e);
    }
  /* RFC 1939 §7 wants them unique; a server that repeats one must not have the second
   * message taken for the first (and deleted unread). */
  tell_apart (run->entries);
  look_up (task);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  forget_password (run);
  if (!lb_pop3_session_login_finish (LB_POP3_SESSION (object), result, &error))
    {
      fail (task, error);
      return;
    }
  if (cancelled (task))
    return;
  if (g_getenv ("LB_POP3_SYNC_NO_UIDL") != NULL)
    list_by_content (task);
  else
    lb_pop3_session_uidl_async (run->session, g_task_get_cancellable (task), uidl_cb,
                                g_object_ref (task));
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  const LbAccountServer *server = self->account->incoming;
  GError *error = NULL;

  if (!lb_pop3_session_connect_finish (LB_POP3_SESSION (object), result, &error))
    {
      fail (task, error);
      return;
    }
  lb_pop3_session_login_async (run->session,
                               server->user != NULL ? server->user
                                                    : lb_account_get_address (self->account),
                               run->password, FALSE, g_task_get_cancellable (task), login_cb,
                               g_object_ref (task));
}

static void
password_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  const LbAccountServer *server = self->account->incoming;
  g_autoptr(LbConnection) connection = NULL;
  GError *error = NULL;

  run->password = lb_account_get_password_finish (result, &error);
  if (run->password == NULL)
    {
      fail (task, error);
      return;
    }
  connection = lb_connection_new (server->host, (guint16) server->port, server->security);
  if (self->account->ca_file != NULL &&
      !lb_connection_set_ca_file (connection, self->account->ca_file, &error))
    {
      fail (task, error);
      return;
    }
  if (self->account->fingerprint != NULL)
    lb_connection_set_trusted_fingerprint (connection, self->account->fingerprint);
  run->session = lb_pop3_session_new (connection);
  lb_pop3_session_connect_async (run->session, g_task_get_cancellable (task), connect_cb,
                                 g_object_ref (task));
}

static void
folder_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  LbPop3Sync *self = g_task_get_source_object (task);
  Run *run = g_task_get_task_data (task);
  GError *error = NULL;

  run->folder_id = lb_store_writer_ensure_folder_finish (LB_STORE_WRITER (object), result, &error);
  if (run->folder_id == 0)
    {
      fail (task, error);
      return;
    }
  if (cancelled (task))
    return;
  lb_account_get_password_async (self->account, LB_ACCOUNT_PROTOCOL_POP3,
                                 g_task_get_cancellable (task), password_cb,
                                 g_object_ref (task));
}

/* ---- the object ------------------------------------------------------------------- */

static void
lb_pop3_sync_finalize (GObject *object)
{
  LbPop3Sync *self = LB_POP3_SYNC (object);

  lb_account_free (self->account);
  g_clear_object (&self->writer);
  G_OBJECT_CLASS (lb_pop3_sync_parent_class)->finalize (object);
}

static void
lb_pop3_sync_class_init (LbPop3SyncClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);

  object_class->finalize = lb_pop3_sync_finalize;

  /**
   * LbPop3Sync::progress:
   * @done: messages downloaded and stored so far in this run
   * @total: messages this run downloads
   *
   * Emitted in the main context of lb_pop3_sync_run_async()'s caller: once with @done 0
   * when the new messages are known, then after each one is stored.
   */
  signals[SIGNAL_PROGRESS] =
    g_signal_new ("progress", G_TYPE_FROM_CLASS (klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                  NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_UINT);
}

static void
lb_pop3_sync_init (LbPop3Sync *self)
{
}

/**
 * lb_pop3_sync_new:
 * @account: a POP3 account (copied)
 * @writer: the store's writer
 *
 * Returns: (transfer full): a sync for @account's Inbox
 */
LbPop3Sync *
lb_pop3_sync_new (const LbAccount *account,
                  LbStoreWriter   *writer)
{
  LbPop3Sync *self;

  g_return_val_if_fail (account != NULL, NULL);
  g_return_val_if_fail (account->incoming != NULL, NULL);
  g_return_val_if_fail (account->incoming->protocol == LB_ACCOUNT_PROTOCOL_POP3, NULL);
  g_return_val_if_fail (LB_IS_STORE_WRITER (writer), NULL);

  self = g_object_new (LB_TYPE_POP3_SYNC, NULL);
  self->account = lb_account_copy (account);
  self->writer = g_object_ref (writer);
  return self;
}

/**
 * lb_pop3_sync_run_async:
 *
 * Downloads the account's new mail into its Inbox and deletes from the server what the
 * account's policy says, once the store has it on disk (see the top of lb-pop3-sync.h).
 * One run at a time per object (%G_IO_ERROR_PENDING otherwise). Errors name the account
 * and keep the domain and code they came with: %LB_POP3_ERROR_AUTH for refused
 * credentials, %LB_NET_ERROR, %LB_ACCOUNT_ERROR, %LB_STORE_ERROR… Cancelling, or any
 * error, drops the session without QUIT, so the server deletes nothing; what was stored
 * stays stored. @callback runs in the thread-default main context of this call.
 */
void
lb_pop3_sync_run_async (LbPop3Sync          *self,
                        GCancellable        *cancellable,
                        GAsyncReadyCallback  callback,
                        gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  Run *run;

  g_return_if_fail (LB_IS_POP3_SYNC (self));
  g_return_if_fail (cancellable == NULL || G_IS_CANCELLABLE (cancellable));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_pop3_sync_run_async);
  run = g_new0 (Run, 1);
  run->now = g_get_real_time () / G_USEC_PER_SEC;
  run->entries = g_array_new (FALSE, TRUE, sizeof (Entry));
  g_array_set_clear_func (run->entries, entry_clear);
  g_task_set_task_data (task, run, run_free);

  if (self->running)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_PENDING,
                               _("Account “%s” is already being synchronised"),
                               account_name (self));
      return;
    }
  self->running = TRUE;
  lb_store_writer_ensure_folder_async (self->writer, self->account->id, "pop3",
                                       account_name (self), "Inbox", LB_FOLDER_ROLE_INBOX, NULL,
                                       folder_cb, g_object_ref (task));
}

/**
 * lb_pop3_sync_run_finish:
 * @stats: (out) (optional): what the run did, also when it failed part of the way
 *
 * Returns: %TRUE when the run went to the end (QUIT answered)
 */
gboolean
lb_pop3_sync_run_finish (LbPop3Sync       *self,
                         GAsyncResult     *result,
                         LbPop3SyncStats  *stats,
                         GError          **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lb_pop3_sync_run_async, FALSE);

  if (stats != NULL)
    *stats = ((Run *) g_task_get_task_data (G_TASK (result)))->stats;
  return g_task_propagate_boolean (G_TASK (result), error);
}
