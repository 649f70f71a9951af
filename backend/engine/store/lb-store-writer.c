/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-store"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <sqlite3.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "lb-store.h"
#include "lb-store-bodies.h"
#include "lb-store-writer.h"

/*
 * The store's one writer (DESIGN.md): a thread fed by a queue. It takes every job waiting
 * (up to MAX_BATCH) and commits them together, so one commit covers many messages.
 *
 * A message with a body is written in two commits, in this order:
 *   1. its body into the account's bodies database;
 *   2. its index row, FTS row and thread links into the index database.
 * SQLite commits attached WAL databases one by one, not as a set, so the order is what
 * keeps the promise: an indexed message always has its complete body. A crash between
 * the two leaves only a body nobody refers to, which the next writer removes when it
 * starts. Deleting goes the other way round (index first, body after).
 */

#define MAX_BATCH 512

typedef enum
{
  JOB_ENSURE_FOLDER,
  JOB_ADD,
  JOB_SET_FLAGS,
  JOB_DELETE,
  JOB_EXEC,
  JOB_FLUSH,
  JOB_EXPUNGE_UIDS,
  JOB_CHANGE_FLAGS,
  JOB_MOVE,
  JOB_EXPUNGE,
  JOB_COPY,
  JOB_FOLDER_CREATE,
  JOB_FOLDER_RENAME,
  JOB_FOLDER_DELETE,
  JOB_ADD_MANY,
  JOB_STOP,
} JobKind;

enum
{
  FTS_NONE,
  FTS_INSERT,
  FTS_UPDATE_BODY,
  FTS_DELETE,
};

typedef struct _Job
{
  JobKind kind;
  GTask *task;          /* NULL for the parts of a JOB_ADD_MANY (see group) */
  GError *error;
  gint64 result;

  char *account_id;
  char *account_kind;
  char *account_name;
  char *folder_name;
  LbFolderRole role;

  LbStoreMessage *message;
  GInputStream *body;
  goffset body_size;
  char *body_account; /* the bodies database the body went to */
  gint64 body_id;
  gboolean body_used;
  gboolean existed;
  gboolean journal_append; /* JOB_ADD: record an upload to the server (save draft, sent) */

  /* The job's change to the FTS index, made after every job of the batch ran: FTS5
   * flushes its pending terms at every savepoint, so inside the per-job savepoints it
   * would write one tiny segment per message. */
  int fts_op;          /* FTS_NONE, FTS_INSERT, FTS_UPDATE_BODY, FTS_DELETE */
  gint64 fts_rowid;

  gint64 message_id;
  LbMessageFlags set;
  LbMessageFlags clear;

  /* JOB_EXEC; JOB_ADD from lb_store_writer_append_full_async() (added_func, same data) */
  LbStoreWriterFunc func;
  LbStoreWriterAddedFunc added_func;
  gpointer func_data;
  GDestroyNotify func_destroy;

  /* JOB_EXPUNGE_UIDS, JOB_MOVE */
  gint64 folder_id;
  GArray *uids;          /* guint32 */
  GArray *drop_bodies;   /* gint64 body ids in body_account's database, dropped after commit */

  /* JOB_ADD_MANY: its messages, each made a JOB_ADD of the batch (whose group is this job)
   * when the writer takes it, so that they commit together and complete as one. */
  GPtrArray *messages;   /* LbStoreMessage* */
  struct _Job *group;
} Job;

/* What the writer thread works with. It holds its own reference: the GObject may be
 * finalized in the writer thread itself (when the last task referring to it is freed
 * there), and then the thread finishes on its own instead of being joined. */
typedef struct
{
  gint ref_count;
  char *data_dir;
  char *index_path;
  sqlite3 *db;
  GHashTable *statements; /* SQL → sqlite3_stmt*, writer thread only */
  GHashTable *bodies;     /* account id → sqlite3*, writer thread only */
  GHashTable *bodies_max; /* account id → gint64*: the highest body id this writer knows */
  GHashTable *bodies_synced; /* account id → sqlite3_total_changes () at its last sync */
  GHashTable *accounts;   /* folder id (gint64*) → account id, writer thread only */
  GAsyncQueue *queue;
  guint64 commits;
  /* Writer thread: a job running the caller's SQL (exec, added_func), and whether SQL of
   * that kind removed a message that had a body, or a body could not be dropped: then the
   * bodies databases are not marked clean at the end (see mark_bodies_clean()). */
  gboolean foreign_sql;
  gboolean may_orphan;
  gint32 session;         /* < 0: the bodies databases' user_version while this writer has them */
  guint64 syncs;
} Core;

struct _LbStoreWriter
{
  GObject parent_instance;

  Core *core;
  GThread *thread;
  gboolean closed;
};

static void
close_bodies (gpointer data)
{
  sqlite3_close_v2 (data);
}

static Core *
core_new (void)
{
  Core *core = g_new0 (Core, 1);

  core->ref_count = 1;
  core->statements = g_hash_table_new (g_str_hash, g_str_equal);
  core->bodies = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, close_bodies);
  core->bodies_max = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  core->bodies_synced = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  core->accounts = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  core->queue = g_async_queue_new ();
  core->session = -g_random_int_range (1, G_MAXINT32);
  return core;
}

static void
core_unref (Core *core)
{
  GHashTableIter iter;
  gpointer value;

  if (!g_atomic_int_dec_and_test (&core->ref_count))
    return;
  g_hash_table_iter_init (&iter, core->statements);
  while (g_hash_table_iter_next (&iter, NULL, &value))
    sqlite3_finalize (value);
  g_hash_table_unref (core->statements);
  g_hash_table_unref (core->bodies);
  g_hash_table_unref (core->bodies_max);
  g_hash_table_unref (core->bodies_synced);
  g_hash_table_unref (core->accounts);
  if (core->db != NULL)
    sqlite3_close_v2 (core->db);
  g_async_queue_unref (core->queue);
  g_free (core->data_dir);
  g_free (core->index_path);
  g_free (core);
}

G_DEFINE_FINAL_TYPE (LbStoreWriter, lb_store_writer, G_TYPE_OBJECT)

LbStoreMessage *
lb_store_message_new (void)
{
  return g_new0 (LbStoreMessage, 1);
}

void
lb_store_message_free (LbStoreMessage *m)
{
  if (m == NULL)
    return;
  g_free (m->keywords);
  g_free (m->sender);
  g_free (m->sender_address);
  g_free (m->recipients);
  g_free (m->subject);
  g_free (m->preview);
  g_free (m->message_id);
  g_free (m->in_reply_to);
  g_strfreev (m->references);
  g_free (m->body_text);
  g_free (m->import_key);
  g_free (m);
}

static gboolean
unref_task (gpointer data)
{
  g_object_unref (data);
  return G_SOURCE_REMOVE;
}

static void
job_free (Job *job)
{
  /* The task holds the writer; its last reference must not go in the writer thread (the
   * writer's finalize joins that thread), so the caller's context drops it. */
  if (job->task != NULL)
    {
      GTask *task = g_steal_pointer (&job->task);

      g_main_context_invoke_full (g_task_get_context (task), G_PRIORITY_DEFAULT, unref_task, task,
                                  NULL);
    }
  g_clear_error (&job->error);
  g_free (job->account_id);
  g_free (job->account_kind);
  g_free (job->account_name);
  g_free (job->folder_name);
  lb_store_message_free (job->message);
  g_clear_object (&job->body);
  g_free (job->body_account);
  if (job->func_destroy != NULL)
    job->func_destroy (job->func_data);
  g_clear_pointer (&job->uids, g_array_unref);
  g_clear_pointer (&job->drop_bodies, g_array_unref);
  g_clear_pointer (&job->messages, g_ptr_array_unref);
  g_free (job);
}

/* The task a job answers to: its own, or its group's. */
static GTask *
job_task (Job *job)
{
  return job->task != NULL ? job->task : job->group->task;
}

/* ---- SQL helpers (writer thread) -------------------------------------------------- */

static gboolean journal_add (Core *self, const char *account_id, const char *kind,
                             gint64 folder_id, gint64 message_id, GVariant *payload,
                             GError **error);

static gboolean
db_error (Core           *self,
          sqlite3        *db,
          int             rc,
          GError        **error)
{
  int code = (rc & 0xff) == SQLITE_CORRUPT || (rc & 0xff) == SQLITE_NOTADB
               ? LB_STORE_ERROR_CORRUPT
             : (rc & 0xff) == SQLITE_BUSY ? LB_STORE_ERROR_BUSY
             : (rc & 0xff) == SQLITE_CONSTRAINT ? LB_STORE_ERROR_NOT_FOUND : LB_STORE_ERROR_IO;

  g_set_error (error, LB_STORE_ERROR, code, _("Could not write to the mail store “%s”: %s"),
               self->index_path, sqlite3_errmsg (db));
  return FALSE;
}

/* A cached statement, reset and unbound. */
static sqlite3_stmt *
stmt (Core           *self,
      const char     *sql,
      GError        **error)
{
  sqlite3_stmt *s = g_hash_table_lookup (self->statements, sql);
  int rc;

  if (s != NULL)
    {
      sqlite3_reset (s);
      sqlite3_clear_bindings (s);
      return s;
    }
  rc = sqlite3_prepare_v3 (self->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (self, self->db, rc, error);
      return NULL;
    }
  g_hash_table_insert (self->statements, (gpointer) sql, s);
  return s;
}

static gboolean
exec (Core           *self,
      sqlite3        *db,
      const char     *sql,
      GError        **error)
{
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  if (rc != SQLITE_OK)
    return db_error (self, db, rc, error);
  return TRUE;
}

static void
bind_text (sqlite3_stmt *s,
           int           index,
           const char   *text)
{
  sqlite3_bind_text (s, index, text != NULL ? text : "", -1, SQLITE_STATIC);
}

/* A job's SAVEPOINT, ROLLBACK TO or RELEASE through a cached statement: sqlite3_exec ()
 * would parse the SQL again for every job of a batch. */
static void
savepoint (Core       *self,
           const char *sql)
{
  sqlite3_stmt *s = stmt (self, sql, NULL);

  if (s == NULL)
    {
      sqlite3_exec (self->db, sql, NULL, NULL, NULL);
      return;
    }
  sqlite3_step (s);
  sqlite3_reset (s);
}

/* Steps a statement that returns no row. */
static gboolean
run (Core           *self,
     sqlite3_stmt   *s,
     GError        **error)
{
  int rc = sqlite3_step (s);

  sqlite3_reset (s);
  if (rc != SQLITE_DONE)
    return db_error (self, self->db, rc, error);
  return TRUE;
}

/* ---- threads ---------------------------------------------------------------------- */

static gboolean
strip_reply_prefix (const char **p)
{
  static const char *const prefixes[] = { "re", "fwd", "fw", "aw", "sv", "vs", "antw", "wg", "tr" };
  const char *s = *p;

  while (g_ascii_isspace (*s))
    s++;
  for (guint i = 0; i < G_N_ELEMENTS (prefixes); i++)
    {
      gsize len = strlen (prefixes[i]);
      const char *q = s + len;

      if (g_ascii_strncasecmp (s, prefixes[i], len) != 0)
        continue;
      /* "Re[2]:" and "Re(2):" as some clients write them. */
      if (*q == '[' || *q == '(')
        {
          char close = *q == '[' ? ']' : ')';

          q++;
          while (g_ascii_isdigit (*q))
            q++;
          if (*q++ != close)
            continue;
        }
      while (*q == ' ')
        q++;
      if (*q == ':')
        {
          *p = q + 1;
          return TRUE;
        }
    }
  return FALSE;
}

/**
 * lb_store_base_subject:
 *
 * Returns: (transfer full): the subject without reply and forward prefixes, whitespace
 *   collapsed, case folded: what replies to one message have in common
 */
char *
lb_store_base_subject (const char *subject)
{
  const char *p = subject != NULL ? subject : "";
  g_autoptr(GString) out = g_string_new (NULL);
  gboolean space = FALSE;

  while (strip_reply_prefix (&p))
    ;
  for (; *p != '\0'; p++)
    {
      if (g_ascii_isspace (*p))
        {
          space = out->len > 0;
          continue;
        }
      if (space)
        g_string_append_c (out, ' ');
      space = FALSE;
      g_string_append_c (out, *p);
    }
  if (!g_utf8_validate (out->str, (gssize) out->len, NULL))
    return g_strdup (out->str[0] != '\0' ? "?" : "");
  return g_utf8_casefold (out->str, (gssize) out->len);
}

static gboolean
is_reply_subject (const char *subject)
{
  const char *p = subject != NULL ? subject : "";

  return strip_reply_prefix (&p);
}

static gboolean
merge_thread (Core           *self,
              gint64          from,
              gint64          into,
              GError        **error)
{
  static const char *const sql[] = {
    "UPDATE messages SET thread_id = ?2 WHERE thread_id = ?1",
    "UPDATE thread_ids SET thread_id = ?2 WHERE thread_id = ?1",
    "UPDATE thread_subjects SET thread_id = ?2 WHERE thread_id = ?1",
    "DELETE FROM threads WHERE id = ?1 AND ?2 IS NOT NULL",
  };

  for (guint i = 0; i < G_N_ELEMENTS (sql); i++)
    {
      sqlite3_stmt *s = stmt (self, sql[i], error);

      if (s == NULL)
        return FALSE;
      sqlite3_bind_int64 (s, 1, from);
      sqlite3_bind_int64 (s, 2, into);
      if (!run (self, s, error))
        return FALSE;
    }
  return TRUE;
}

/* JWZ threading, incrementally: the message joins the thread of any Message-ID it names
 * (its own, In-Reply-To, References), threads it joins are merged, and a reply whose
 * references lead nowhere joins the thread of its subject. */
static gint64
assign_thread (Core                  *self,
               const char            *account_id,
               const LbStoreMessage  *m,
               GError               **error)
{
  g_autoptr(GPtrArray) ids = g_ptr_array_new ();
  g_autoptr(GArray) found = g_array_new (FALSE, FALSE, sizeof (gint64));
  g_autoptr(GArray) known = g_array_new (FALSE, TRUE, sizeof (gboolean));
  g_autofree char *base = lb_store_base_subject (m->subject);
  gboolean reply = is_reply_subject (m->subject);
  sqlite3_stmt *s;
  gint64 thread = 0;

  if (m->message_id != NULL && m->message_id[0] != '\0')
    g_ptr_array_add (ids, m->message_id);
  if (m->in_reply_to != NULL && m->in_reply_to[0] != '\0')
    g_ptr_array_add (ids, m->in_reply_to);
  for (guint i = 0; m->references != NULL && m->references[i] != NULL; i++)
    if (m->references[i][0] != '\0')
      g_ptr_array_add (ids, m->references[i]);

  for (guint i = 0; i < ids->len; i++)
    {
      if ((s = stmt (self, "SELECT thread_id FROM thread_ids WHERE account_id = ?1 AND "
                           "message_id = ?2", error)) == NULL)
        return 0;
      bind_text (s, 1, account_id);
      bind_text (s, 2, g_ptr_array_index (ids, i));
      g_array_set_size (known, i + 1);
      if (sqlite3_step (s) == SQLITE_ROW)
        {
          gint64 t = sqlite3_column_int64 (s, 0);
          gboolean seen = FALSE;

          /* Already linked: merge_thread() moves it if its thread is merged. */
          g_array_index (known, gboolean, i) = TRUE;

          for (guint j = 0; j < found->len; j++)
            seen = seen || g_array_index (found, gint64, j) == t;
          if (!seen)
            g_array_append_val (found, t);
        }
      sqlite3_reset (s);
    }

  if (found->len == 0 && reply && base[0] != '\0')
    {
      if ((s = stmt (self, "SELECT thread_id FROM thread_subjects WHERE account_id = ?1 AND "
                           "subject = ?2", error)) == NULL)
        return 0;
      bind_text (s, 1, account_id);
      bind_text (s, 2, base);
      if (sqlite3_step (s) == SQLITE_ROW)
        {
          gint64 t = sqlite3_column_int64 (s, 0);

          g_array_append_val (found, t);
        }
      sqlite3_reset (s);
    }

  if (found->len == 0)
    {
      if ((s = stmt (self, "INSERT INTO threads DEFAULT VALUES", error)) == NULL ||
          !run (self, s, error))
        return 0;
      thread = sqlite3_last_insert_rowid (self->db);
    }
  else
    {
      thread = g_array_index (found, gint64, 0);
      for (guint j = 1; j < found->len; j++)
        thread = MIN (thread, g_array_index (found, gint64, j));
      for (guint j = 0; j < found->len; j++)
        if (g_array_index (found, gint64, j) != thread &&
            !merge_thread (self, g_array_index (found, gint64, j), thread, error))
          return 0;
    }

  for (guint i = 0; i < ids->len; i++)
    {
      if (g_array_index (known, gboolean, i))
        continue;
      if ((s = stmt (self, "INSERT OR REPLACE INTO thread_ids (account_id, message_id, "
                           "thread_id) VALUES (?1, ?2, ?3)", error)) == NULL)
        return 0;
      bind_text (s, 1, account_id);
      bind_text (s, 2, g_ptr_array_index (ids, i));
      sqlite3_bind_int64 (s, 3, thread);
      if (!run (self, s, error))
        return 0;
    }
  if (base[0] != '\0')
    {
      /* The first message of a subject names its thread; replies only fill a gap. */
      if ((s = stmt (self, reply ? "INSERT OR IGNORE INTO thread_subjects (account_id, subject, "
                                   "thread_id, date) VALUES (?1, ?2, ?3, ?4)"
                                 : "INSERT OR REPLACE INTO thread_subjects (account_id, subject, "
                                   "thread_id, date) VALUES (?1, ?2, ?3, ?4)", error)) == NULL)
        return 0;
      bind_text (s, 1, account_id);
      bind_text (s, 2, base);
      sqlite3_bind_int64 (s, 3, thread);
      sqlite3_bind_int64 (s, 4, m->date);
      if (!run (self, s, error))
        return 0;
    }
  return thread;
}

/* ---- jobs (writer thread, inside the index transaction) --------------------------- */

static char *
folder_account (Core           *self,
                gint64          folder_id,
                GError        **error)
{
  sqlite3_stmt *s;
  const char *cached = g_hash_table_lookup (self->accounts, &folder_id);
  char *account = NULL;

  /* A folder never changes account. */
  if (cached != NULL)
    return g_strdup (cached);
  s = stmt (self, "SELECT account_id FROM folders WHERE id = ?1", error);
  if (s == NULL)
    return NULL;
  sqlite3_bind_int64 (s, 1, folder_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    account = g_strdup ((const char *) sqlite3_column_text (s, 0));
  sqlite3_reset (s);
  if (account == NULL)
    g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                 _("There is no folder %lld in the mail store"), (long long) folder_id);
  else
    g_hash_table_insert (self->accounts, g_memdup2 (&folder_id, sizeof folder_id),
                         g_strdup (account));
  return account;
}

static gboolean
do_ensure_folder (Core           *self,
                  Job            *job,
                  GError        **error)
{
  sqlite3_stmt *s;

  if ((s = stmt (self, "INSERT OR IGNORE INTO accounts (id, kind, display_name) "
                       "VALUES (?1, ?2, ?3)", error)) == NULL)
    return FALSE;
  bind_text (s, 1, job->account_id);
  bind_text (s, 2, job->account_kind);
  bind_text (s, 3, job->account_name);
  if (!run (self, s, error))
    return FALSE;
  if ((s = stmt (self, "INSERT OR IGNORE INTO folders (account_id, name, role) "
                       "VALUES (?1, ?2, ?3)", error)) == NULL)
    return FALSE;
  bind_text (s, 1, job->account_id);
  bind_text (s, 2, job->folder_name);
  if (job->role == LB_FOLDER_ROLE_NONE)
    sqlite3_bind_null (s, 3);
  else
    sqlite3_bind_text (s, 3, lb_folder_role_to_string (job->role), -1, SQLITE_STATIC);
  if (!run (self, s, error))
    return FALSE;
  if ((s = stmt (self, "SELECT id FROM folders WHERE account_id = ?1 AND name = ?2", error)) ==
      NULL)
    return FALSE;
  bind_text (s, 1, job->account_id);
  bind_text (s, 2, job->folder_name);
  if (sqlite3_step (s) == SQLITE_ROW)
    job->result = sqlite3_column_int64 (s, 0);
  sqlite3_reset (s);
  return job->result != 0 || db_error (self, self->db, SQLITE_ERROR, error);
}

/* An existing row for the same server message or the same imported content. */
static gint64
find_existing (Core                  *self,
               const LbStoreMessage  *m,
               gint                  *body_state,
               GError               **error)
{
  sqlite3_stmt *s;
  gint64 id = 0;

  if (m->uid != 0)
    s = stmt (self, "SELECT id, body_state FROM messages WHERE folder_id = ?1 AND uid = ?2",
              error);
  else if (m->import_key != NULL)
    s = stmt (self, "SELECT id, body_state FROM messages WHERE folder_id = ?1 AND "
                    "import_key = ?2", error);
  else
    return 0;
  if (s == NULL)
    return -1;
  sqlite3_bind_int64 (s, 1, m->folder_id);
  if (m->uid != 0)
    sqlite3_bind_int64 (s, 2, m->uid);
  else
    bind_text (s, 2, m->import_key);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      id = sqlite3_column_int64 (s, 0);
      *body_state = sqlite3_column_int (s, 1);
    }
  sqlite3_reset (s);
  if (id != 0 || m->uid == 0 || m->message_id == NULL)
    return id;

  /* A server message that a local row is waiting for: one moved, saved or sent here
   * while offline, whose replay reached the server before its new UID was recorded (or
   * a folder whose UIDVALIDITY changed). The row takes the server's UID. */
  if ((s = stmt (self, "SELECT id, body_state FROM messages WHERE folder_id = ?1 AND "
                       "uid IS NULL AND message_id = ?2 ORDER BY id LIMIT 1", error)) == NULL)
    return -1;
  sqlite3_bind_int64 (s, 1, m->folder_id);
  bind_text (s, 2, m->message_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      id = sqlite3_column_int64 (s, 0);
      *body_state = sqlite3_column_int (s, 1);
    }
  sqlite3_reset (s);
  if (id == 0)
    return 0;
  if ((s = stmt (self, "UPDATE messages SET uid = ?2 WHERE id = ?1", error)) == NULL)
    return -1;
  sqlite3_bind_int64 (s, 1, id);
  sqlite3_bind_int64 (s, 2, m->uid);
  if (!run (self, s, error))
    return -1;
  return id;
}

/* 1 when a journal entry about the message waits for replay, 0 if not, -1 on error. */
static int
has_pending (Core    *self,
             gint64   message_id,
             GError **error)
{
  sqlite3_stmt *s = stmt (self, "SELECT 1 FROM journal WHERE message_id = ?1 LIMIT 1", error);
  int pending;

  if (s == NULL)
    return -1;
  sqlite3_bind_int64 (s, 1, message_id);
  pending = sqlite3_step (s) == SQLITE_ROW;
  sqlite3_reset (s);
  return pending;
}

static gboolean
do_add (Core           *self,
        Job            *job,
        GError        **error)
{
  LbStoreMessage *m = job->message;
  g_autofree char *account = folder_account (self, m->folder_id, error);
  sqlite3_stmt *s;
  gint body_state = 0;
  gint64 existing;
  gint64 thread;
  gint64 id;

  if (account == NULL)
    return FALSE;
  existing = find_existing (self, m, &body_state, error);
  if (existing < 0)
    return FALSE;
  if (existing > 0)
    {
      /* Seen before: the server's flags win, unless a local change waits to be replayed;
       * a body arriving now completes the row. */
      int pending = has_pending (self, existing, error);

      if (pending < 0)
        return FALSE;
      if (pending == 0)
        {
          if ((s = stmt (self, "UPDATE messages SET flags = ?2, keywords = ?3, modseq = ?4 "
                               "WHERE id = ?1", error)) == NULL)
            return FALSE;
          sqlite3_bind_int64 (s, 1, existing);
          sqlite3_bind_int (s, 2, (int) m->flags);
          bind_text (s, 3, m->keywords);
          sqlite3_bind_int64 (s, 4, (sqlite3_int64) m->modseq);
          if (!run (self, s, error))
            return FALSE;
        }
      if (job->body_id != 0 && body_state != 2)
        {
          /* What only the body tells: the preview and whether it has attachments. */
          if ((s = stmt (self, "UPDATE messages SET body_state = 2, body_id = ?2, "
                               "preview = coalesce (?3, preview), has_attachment = ?4 "
                               "WHERE id = ?1", error)) == NULL)
            return FALSE;
          sqlite3_bind_int64 (s, 1, existing);
          sqlite3_bind_int64 (s, 2, job->body_id);
          if (m->preview != NULL)
            bind_text (s, 3, m->preview);
          sqlite3_bind_int (s, 4, m->has_attachment ? 1 : 0);
          if (!run (self, s, error))
            return FALSE;
          job->body_used = TRUE;
        }
      if (m->body_text != NULL && body_state != 2)
        {
          job->fts_op = FTS_UPDATE_BODY;
          job->fts_rowid = existing;
        }
      job->result = existing;
      job->existed = TRUE;
      return TRUE;
    }

  thread = assign_thread (self, account, m, error);
  if (thread == 0)
    return FALSE;

  if ((s = stmt (self,
                 "INSERT INTO messages (folder_id, uid, flags, keywords, modseq, internal_date, "
                 "  date, sender, sender_address, recipients, subject, preview, message_id, "
                 "  in_reply_to, has_attachment, size, thread_id, body_state, body_id, "
                 "  import_key) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                 "  ?16, ?17, ?18, ?19, ?20)", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, m->folder_id);
  if (m->uid != 0)
    sqlite3_bind_int64 (s, 2, m->uid);
  sqlite3_bind_int (s, 3, (int) m->flags);
  bind_text (s, 4, m->keywords);
  sqlite3_bind_int64 (s, 5, (sqlite3_int64) m->modseq);
  sqlite3_bind_int64 (s, 6, m->internal_date);
  sqlite3_bind_int64 (s, 7, m->date);
  bind_text (s, 8, m->sender);
  bind_text (s, 9, m->sender_address);
  bind_text (s, 10, m->recipients);
  bind_text (s, 11, m->subject);
  bind_text (s, 12, m->preview);
  if (m->message_id != NULL)
    bind_text (s, 13, m->message_id);
  if (m->in_reply_to != NULL)
    bind_text (s, 14, m->in_reply_to);
  sqlite3_bind_int (s, 15, m->has_attachment ? 1 : 0);
  sqlite3_bind_int64 (s, 16, (sqlite3_int64) m->size);
  sqlite3_bind_int64 (s, 17, thread);
  sqlite3_bind_int (s, 18, job->body_id != 0 ? 2 : 0);
  if (job->body_id != 0)
    sqlite3_bind_int64 (s, 19, job->body_id);
  if (m->import_key != NULL)
    bind_text (s, 20, m->import_key);
  if (!run (self, s, error))
    return FALSE;
  id = sqlite3_last_insert_rowid (self->db);
  job->body_used = job->body_id != 0;

  job->fts_op = FTS_INSERT;
  job->fts_rowid = id;
  job->result = id;
  if (job->journal_append && g_strcmp0 (account, LB_STORE_LOCAL_ACCOUNT_ID) != 0)
    {
      if (job->body_id == 0)
        {
          g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                       _("A message to upload needs its body"));
          return FALSE;
        }
      return journal_add (self, account, "append", m->folder_id, id,
                          g_variant_new ("(x)", m->folder_id), error);
    }
  return TRUE;
}

/* The batch's FTS changes, in job order, inside the batch's transaction. */
static gboolean
apply_fts (Core       *self,
           GPtrArray  *batch,
           GError    **error)
{
  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = g_ptr_array_index (batch, i);
      LbStoreMessage *m = job->message;
      sqlite3_stmt *s = NULL;

      if (job->error != NULL || job->fts_op == FTS_NONE)
        continue;
      switch (job->fts_op)
        {
        case FTS_INSERT:
          {
            g_autofree char *sender_text = g_strconcat (m->sender != NULL ? m->sender : "", " ",
                                                        m->sender_address != NULL
                                                          ? m->sender_address : "", NULL);

            if ((s = stmt (self, "INSERT INTO messages_fts (rowid, subject, sender, recipients, "
                                 "body) VALUES (?1, ?2, ?3, ?4, ?5)", error)) == NULL)
              return FALSE;
            sqlite3_bind_int64 (s, 1, job->fts_rowid);
            bind_text (s, 2, m->subject);
            sqlite3_bind_text (s, 3, sender_text, -1, SQLITE_TRANSIENT);
            bind_text (s, 4, m->recipients);
            bind_text (s, 5, m->body_text != NULL ? m->body_text : m->preview);
          }
          break;
        case FTS_UPDATE_BODY:
          if ((s = stmt (self, "UPDATE messages_fts SET body = ?2 WHERE rowid = ?1", error)) == NULL)
            return FALSE;
          sqlite3_bind_int64 (s, 1, job->fts_rowid);
          bind_text (s, 2, m->body_text);
          break;
        case FTS_DELETE:
          if ((s = stmt (self, "DELETE FROM messages_fts WHERE rowid = ?1", error)) == NULL)
            return FALSE;
          sqlite3_bind_int64 (s, 1, job->fts_rowid);
          break;
        default:
          g_assert_not_reached ();
        }
      if (!run (self, s, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
do_set_flags (Core           *self,
              Job            *job,
              GError        **error)
{
  sqlite3_stmt *s = stmt (self, "UPDATE messages SET flags = (flags | ?2) & ~?3 WHERE id = ?1",
                          error);

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  sqlite3_bind_int (s, 2, (int) job->set);
  sqlite3_bind_int (s, 3, (int) job->clear);
  if (!run (self, s, error))
    return FALSE;
  if (sqlite3_changes (self->db) == 0)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("There is no message %lld in the mail store"), (long long) job->message_id);
      return FALSE;
    }
  return TRUE;
}

/* Whether another message of the account (a copy) still uses the body. */
static gboolean
body_shared (Core        *self,
             gint64       body_id,
             const char  *account_id,
             GError     **error)
{
  sqlite3_stmt *s = stmt (self, "SELECT 1 FROM messages m JOIN folders f ON f.id = m.folder_id "
                                "WHERE m.body_id = ?1 AND f.account_id = ?2 LIMIT 1", error);
  gboolean shared;

  if (s == NULL)
    return TRUE; /* when unsure, keep it: an orphan is collected at the next start */
  sqlite3_bind_int64 (s, 1, body_id);
  bind_text (s, 2, account_id);
  shared = sqlite3_step (s) == SQLITE_ROW;
  sqlite3_reset (s);
  return shared;
}

static gboolean
do_delete (Core           *self,
           Job            *job,
           GError        **error)
{
  sqlite3_stmt *s;
  gint64 body_id = 0;
  g_autofree char *account = NULL;

  if ((s = stmt (self, "SELECT m.body_id, f.account_id FROM messages m JOIN folders f "
                       "ON f.id = m.folder_id WHERE m.id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      body_id = sqlite3_column_int64 (s, 0);
      account = g_strdup ((const char *) sqlite3_column_text (s, 1));
    }
  sqlite3_reset (s);
  if (account == NULL)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("There is no message %lld in the mail store"), (long long) job->message_id);
      return FALSE;
    }
  if ((s = stmt (self, "DELETE FROM messages WHERE id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  if (!run (self, s, error))
    return FALSE;
  if (body_id != 0 && body_shared (self, body_id, account, error))
    body_id = 0;
  job->fts_op = FTS_DELETE;
  job->fts_rowid = job->message_id;
  /* The body goes after the index commits (see the top of this file). */
  job->body_id = body_id;
  job->body_account = g_steal_pointer (&account);
  return TRUE;
}

/* ---- sync jobs and offline operations (writer thread) ------------------------------ */

static void fail_job (Job *job, GError *error);

typedef struct
{
  gint64 folder_id;
  gint64 uid;          /* 0 when NULL */
  char *account_id;
  char *message_id;
  gint64 body_id;
} Row;

static void
row_clear (Row *row)
{
  g_free (row->account_id);
  g_free (row->message_id);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Row, row_clear)

static gboolean
read_row (Core    *self,
          gint64   id,
          Row     *row,
          GError **error)
{
  sqlite3_stmt *s = stmt (self, "SELECT m.folder_id, m.uid, f.account_id, m.message_id, "
                                "m.body_id FROM messages m JOIN folders f ON f.id = m.folder_id "
                                "WHERE m.id = ?1", error);
  gboolean found = FALSE;

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      row->folder_id = sqlite3_column_int64 (s, 0);
      row->uid = sqlite3_column_int64 (s, 1);
      row->account_id = g_strdup ((const char *) sqlite3_column_text (s, 2));
      row->message_id = g_strdup ((const char *) sqlite3_column_text (s, 3));
      row->body_id = sqlite3_column_int64 (s, 4);
      found = TRUE;
    }
  sqlite3_reset (s);
  if (!found)
    g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                 _("There is no message %lld in the mail store"), (long long) id);
  return found;
}

static gboolean
journal_add (Core        *self,
             const char  *account_id,
             const char  *kind,
             gint64       folder_id,
             gint64       message_id,
             GVariant    *payload,
             GError     **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (payload);
  g_autofree char *text = g_variant_print (owned, TRUE);
  sqlite3_stmt *s = stmt (self, "INSERT INTO journal (account_id, kind, folder_id, payload, "
                                "created, message_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)", error);

  if (s == NULL)
    return FALSE;
  bind_text (s, 1, account_id);
  bind_text (s, 2, kind);
  sqlite3_bind_int64 (s, 3, folder_id);
  sqlite3_bind_text (s, 4, text, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64 (s, 5, g_get_real_time () / G_USEC_PER_SEC);
  if (message_id != 0)
    sqlite3_bind_int64 (s, 6, message_id);
  return run (self, s, error);
}

/* The newest journal entry about a message: its id, kind and payload (kind NULL if none). */
static gboolean
journal_last (Core      *self,
              gint64     message_id,
              gint64    *entry_id,
              char     **kind,
              GVariant **payload,
              GError   **error)
{
  sqlite3_stmt *s = stmt (self, "SELECT id, kind, payload FROM journal WHERE message_id = ?1 "
                                "ORDER BY id DESC LIMIT 1", error);

  *kind = NULL;
  *payload = NULL;
  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, message_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      *entry_id = sqlite3_column_int64 (s, 0);
      *kind = g_strdup ((const char *) sqlite3_column_text (s, 1));
      *payload = g_variant_parse (NULL, (const char *) sqlite3_column_text (s, 2), NULL, NULL,
                                  NULL);
    }
  sqlite3_reset (s);
  if (*kind != NULL && *payload == NULL)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_CORRUPT,
                   _("Journal entry %lld of the mail store cannot be read"), (long long) *entry_id);
      g_clear_pointer (kind, g_free);
      return FALSE;
    }
  return TRUE;
}

/* The message's pending move, if any: its id and payload (kind "move", else unchanged).
 * @first: the oldest, also one the sync marked as sent ("move-sent": on its way to the
 * server, no longer to be folded into) — where the server has the message; else the
 * newest not yet sent. */
static gboolean
journal_pending_move (Core      *self,
                      gint64     message_id,
                      gboolean   first,
                      gint64    *entry_id,
                      char     **kind,
                      GVariant **payload,
                      GError   **error)
{
  sqlite3_stmt *s = stmt (self, first ? "SELECT id, payload FROM journal WHERE message_id = ?1 "
                                        "AND kind IN ('move', 'move-sent') ORDER BY id LIMIT 1"
                                      : "SELECT id, payload FROM journal WHERE message_id = ?1 "
                                        "AND kind = 'move' ORDER BY id DESC LIMIT 1", error);
  GVariant *found = NULL;

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, message_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      *entry_id = sqlite3_column_int64 (s, 0);
      found = g_variant_parse (G_VARIANT_TYPE ("(xuxs)"),
                               (const char *) sqlite3_column_text (s, 1), NULL, NULL, NULL);
      if (found == NULL)
        {
          sqlite3_reset (s);
          g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_CORRUPT,
                       _("Journal entry %lld of the mail store cannot be read"),
                       (long long) *entry_id);
          return FALSE;
        }
    }
  sqlite3_reset (s);
  if (found != NULL)
    {
      g_free (*kind);
      *kind = g_strdup ("move");
      g_clear_pointer (payload, g_variant_unref);
      *payload = found;
    }
  return TRUE;
}

static gboolean
journal_update (Core      *self,
                gint64     entry_id,
                gint64     folder_id,
                GVariant  *payload,
                GError   **error)
{
  g_autoptr(GVariant) owned = g_variant_ref_sink (payload);
  g_autofree char *text = g_variant_print (owned, TRUE);
  sqlite3_stmt *s = stmt (self, "UPDATE journal SET payload = ?2, folder_id = ?3 WHERE id = ?1",
                          error);

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, entry_id);
  sqlite3_bind_text (s, 2, text, -1, SQLITE_TRANSIENT);
  sqlite3_bind_int64 (s, 3, folder_id);
  return run (self, s, error);
}

static gboolean
journal_remove (Core    *self,
                gint64   entry_id,
                GError **error)
{
  sqlite3_stmt *s = stmt (self, "DELETE FROM journal WHERE id = ?1", error);

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, entry_id);
  return run (self, s, error);
}

static gboolean
is_local (const char *account_id)
{
  return g_strcmp0 (account_id, LB_STORE_LOCAL_ACCOUNT_ID) == 0;
}

/* Removes one message row with its search row; its body goes after the commit. */
static gboolean
remove_row (Core        *self,
            Job         *job,
            gint64       id,
            const Row   *row,
            GError     **error)
{
  sqlite3_stmt *s = stmt (self, "DELETE FROM messages WHERE id = ?1", error);

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, id);
  if (!run (self, s, error))
    return FALSE;
  if ((s = stmt (self, "DELETE FROM messages_fts WHERE rowid = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, id);
  if (!run (self, s, error))
    return FALSE;
  if (row->body_id != 0 && !body_shared (self, row->body_id, row->account_id, error))
    {
      if (job->drop_bodies == NULL)
        job->drop_bodies = g_array_new (FALSE, FALSE, sizeof (gint64));
      g_array_append_val (job->drop_bodies, row->body_id);
      if (job->body_account == NULL)
        job->body_account = g_strdup (row->account_id);
    }
  return TRUE;
}

static gboolean
do_expunge_uids (Core    *self,
                 Job     *job,
                 GError **error)
{
  g_autofree char *account = folder_account (self, job->folder_id, error);

  if (account == NULL)
    return FALSE;
  for (guint i = 0; i < job->uids->len; i++)
    {
      sqlite3_stmt *s = stmt (self, "SELECT id, body_id FROM messages WHERE folder_id = ?1 AND "
                                    "uid = ?2", error);
      Row row = { 0 };
      gint64 id = 0;
      int pending;

      if (s == NULL)
        return FALSE;
      sqlite3_bind_int64 (s, 1, job->folder_id);
      sqlite3_bind_int64 (s, 2, g_array_index (job->uids, guint32, i));
      if (sqlite3_step (s) == SQLITE_ROW)
        {
          id = sqlite3_column_int64 (s, 0);
          row.body_id = sqlite3_column_int64 (s, 1);
        }
      sqlite3_reset (s);
      if (id == 0)
        continue;
      /* A message with a pending local change stays until the change is replayed (the
       * replay then finds it gone and drops the change, or re-creates what it must). */
      pending = has_pending (self, id, error);
      if (pending < 0)
        return FALSE;
      if (pending > 0)
        continue;
      row.account_id = account;
      if (!remove_row (self, job, id, &row, error))
        return FALSE;
    }
  return TRUE;
}

static gboolean
do_change_flags (Core    *self,
                 Job     *job,
                 GError **error)
{
  g_auto(Row) row = { 0 };
  g_autofree char *kind = NULL;
  g_autoptr(GVariant) payload = NULL;
  gint64 entry = 0;

  if (!read_row (self, job->message_id, &row, error) || !do_set_flags (self, job, error))
    return FALSE;
  if (is_local (row.account_id))
    return TRUE;
  if (!journal_last (self, job->message_id, &entry, &kind, &payload, error))
    return FALSE;
  if (g_strcmp0 (kind, "flags") == 0)
    {
      /* Folds into the pending change: the newest wish for each flag wins. */
      guint32 set, clear;

      g_variant_get (payload, "(uu)", &set, &clear);
      set = (set & ~job->clear) | job->set;
      clear = (clear & ~job->set) | job->clear;
      return journal_update (self, entry, row.folder_id, g_variant_new ("(uu)", set, clear),
                             error);
    }
  return journal_add (self, row.account_id, "flags", row.folder_id, job->message_id,
                      g_variant_new ("(uu)", (guint32) job->set, (guint32) job->clear), error);
}

static gboolean
do_move (Core    *self,
         Job     *job,
         GError **error)
{
  g_auto(Row) row = { 0 };
  g_autofree char *dest_account = folder_account (self, job->folder_id, error);
  g_autofree char *kind = NULL;
  g_autoptr(GVariant) payload = NULL;
  gint64 entry = 0;
  sqlite3_stmt *s;

  if (dest_account == NULL || !read_row (self, job->message_id, &row, error))
    return FALSE;
  if (g_strcmp0 (dest_account, row.account_id) != 0)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("Message %lld cannot be moved to a folder of another account"),
                   (long long) job->message_id);
      return FALSE;
    }
  if (row.folder_id == job->folder_id)
    return TRUE;
  if ((s = stmt (self, "UPDATE messages SET folder_id = ?2, uid = NULL WHERE id = ?1", error)) ==
      NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  sqlite3_bind_int64 (s, 2, job->folder_id);
  if (!run (self, s, error))
    return FALSE;
  if (is_local (row.account_id))
    return TRUE;

  if (!journal_last (self, job->message_id, &entry, &kind, &payload, error))
    return FALSE;
  /* The pending move may not be the newest entry (a flag change made after it): look it
   * up, or a move back would be recorded with no UID to move from. One the sync marked as
   * sent is not folded into: the server may have done it already, so this move is
   * recorded after it, from where it puts the message (the sync fills in the UID). */
  if (row.uid == 0 && g_strcmp0 (kind, "move") != 0 && g_strcmp0 (kind, "append") != 0 &&
      !journal_pending_move (self, job->message_id, FALSE, &entry, &kind, &payload, error))
    return FALSE;
  if (row.uid == 0 && g_strcmp0 (kind, "move") == 0)
    {
      /* Moved again before the first move reached the server: one move from where the
       * server has it, or none when it goes back there. */
      gint64 src_folder, dest_folder;
      guint32 src_uid;
      const char *mid;

      g_variant_get (payload, "(xux&s)", &src_folder, &src_uid, &dest_folder, &mid);
      if (src_folder == job->folder_id)
        {
          if ((s = stmt (self, "UPDATE messages SET uid = ?2 WHERE id = ?1", error)) == NULL)
            return FALSE;
          sqlite3_bind_int64 (s, 1, job->message_id);
          if (src_uid != 0)
            sqlite3_bind_int64 (s, 2, src_uid);
          return run (self, s, error) && journal_remove (self, entry, error);
        }
      return journal_update (self, entry, src_folder,
                             g_variant_new ("(xuxs)", src_folder, src_uid, job->folder_id, mid),
                             error);
    }
  if (row.uid == 0 && g_strcmp0 (kind, "append") == 0)
    /* Not on the server yet: it will be uploaded where it is now. */
    return journal_update (self, entry, job->folder_id, g_variant_new ("(x)", job->folder_id),
                           error);
  return journal_add (self, row.account_id, "move", row.folder_id, job->message_id,
                      g_variant_new ("(xuxs)", row.folder_id, (guint32) row.uid, job->folder_id,
                                     row.message_id != NULL ? row.message_id : ""),
                      error);
}

static gboolean
do_expunge (Core    *self,
            Job     *job,
            GError **error)
{
  g_auto(Row) row = { 0 };
  g_autofree char *kind = NULL;
  g_autoptr(GVariant) payload = NULL;
  gint64 entry = 0;
  gint64 server_folder;
  guint32 server_uid;
  sqlite3_stmt *s;

  if (!read_row (self, job->message_id, &row, error))
    return FALSE;
  server_folder = row.folder_id;
  server_uid = (guint32) row.uid;
  if (!is_local (row.account_id))
    {
      if (!journal_last (self, job->message_id, &entry, &kind, &payload, error))
        return FALSE;
      /* Where the server has it: the pending move's source, even behind a flag change. */
      if (row.uid == 0 && g_strcmp0 (kind, "append") != 0 &&
          !journal_pending_move (self, job->message_id, TRUE, &entry, &kind, &payload, error))
        return FALSE;
      if (row.uid == 0 && g_strcmp0 (kind, "move") == 0)
        {
          gint64 dest_folder;
          const char *mid;

          g_variant_get (payload, "(xux&s)", &server_folder, &server_uid, &dest_folder, &mid);
        }
      else if (row.uid == 0 && g_strcmp0 (kind, "append") == 0)
        server_folder = 0; /* never reached the server */
    }
  /* Whatever was pending for the message no longer matters. */
  if ((s = stmt (self, "DELETE FROM journal WHERE message_id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  if (!run (self, s, error) || !remove_row (self, job, job->message_id, &row, error))
    return FALSE;
  if (is_local (row.account_id) || server_folder == 0)
    return TRUE;
  return journal_add (self, row.account_id, "expunge", server_folder, 0,
                      g_variant_new ("(us)", server_uid,
                                     row.message_id != NULL ? row.message_id : ""),
                      error);
}

static gboolean
do_copy (Core    *self,
         Job     *job,
         GError **error)
{
  g_auto(Row) row = { 0 };
  g_autofree char *dest_account = folder_account (self, job->folder_id, error);
  sqlite3_stmt *s;
  gint64 id;

  if (dest_account == NULL || !read_row (self, job->message_id, &row, error))
    return FALSE;
  if (g_strcmp0 (dest_account, row.account_id) != 0)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("Message %lld cannot be copied to a folder of another account"),
                   (long long) job->message_id);
      return FALSE;
    }
  /* The copy shares the body (see body_shared ()) and the thread. */
  if ((s = stmt (self, "INSERT INTO messages (folder_id, uid, flags, keywords, modseq, "
                       "  internal_date, date, sender, sender_address, recipients, subject, "
                       "  preview, message_id, in_reply_to, has_attachment, size, thread_id, "
                       "  body_state, body_id) "
                       "SELECT ?2, NULL, flags, keywords, 0, internal_date, date, sender, "
                       "  sender_address, recipients, subject, preview, message_id, in_reply_to, "
                       "  has_attachment, size, thread_id, body_state, body_id "
                       "FROM messages WHERE id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  sqlite3_bind_int64 (s, 2, job->folder_id);
  if (!run (self, s, error))
    return FALSE;
  id = sqlite3_last_insert_rowid (self->db);
  if ((s = stmt (self, "INSERT INTO messages_fts (rowid, subject, sender, recipients, body) "
                       "SELECT ?2, subject, sender, recipients, body FROM messages_fts "
                       "WHERE rowid = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->message_id);
  sqlite3_bind_int64 (s, 2, id);
  if (!run (self, s, error))
    return FALSE;
  job->result = id;
  if (is_local (row.account_id))
    return TRUE;
  /* Replayed as a server-side COPY from where the server has the original, else as an
   * upload of the body. */
  return journal_add (self, row.account_id, "copy", job->folder_id, id,
                      g_variant_new ("(xuxs)", row.folder_id, (guint32) row.uid, job->folder_id,
                                     row.message_id != NULL ? row.message_id : ""),
                      error);
}

static gboolean
folder_row (Core     *self,
            gint64    folder_id,
            char    **account_id,
            char    **name,
            char     *delimiter,
            GError  **error)
{
  sqlite3_stmt *s = stmt (self, "SELECT account_id, name, coalesce (delimiter, '') FROM folders "
                                "WHERE id = ?1", error);
  gboolean found = FALSE;

  if (s == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, folder_id);
  if (sqlite3_step (s) == SQLITE_ROW)
    {
      *account_id = g_strdup ((const char *) sqlite3_column_text (s, 0));
      *name = g_strdup ((const char *) sqlite3_column_text (s, 1));
      *delimiter = ((const char *) sqlite3_column_text (s, 2))[0];
      found = TRUE;
    }
  sqlite3_reset (s);
  if (!found)
    g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                 _("There is no folder %lld in the mail store"), (long long) folder_id);
  return found;
}

static gboolean
do_folder_create (Core    *self,
                  Job     *job,
                  GError **error)
{
  sqlite3_stmt *s;
  char *sql;
  int rc;

  sql = sqlite3_mprintf ("SELECT 1 FROM folders WHERE account_id = %Q AND name = %Q",
                         job->account_id, job->folder_name);
  rc = sqlite3_prepare_v2 (self->db, sql, -1, &s, NULL);
  sqlite3_free (sql);
  if (rc != SQLITE_OK)
    return db_error (self, self->db, rc, error);
  rc = sqlite3_step (s);
  sqlite3_finalize (s);
  if (rc == SQLITE_ROW)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("The folder “%s” already exists"), job->folder_name);
      return FALSE;
    }
  if (!do_ensure_folder (self, job, error))
    return FALSE;
  if (is_local (job->account_id))
    return TRUE;
  return journal_add (self, job->account_id, "folder-create", job->result, 0,
                      g_variant_new ("(s)", job->folder_name), error);
}

static gboolean
do_folder_rename (Core    *self,
                  Job     *job,
                  GError **error)
{
  g_autofree char *account = NULL;
  g_autofree char *old_name = NULL;
  char delimiter = 0;
  char *sql;
  int rc;

  if (!folder_row (self, job->folder_id, &account, &old_name, &delimiter, error))
    return FALSE;
  /* The folder and everything below it. */
  if (delimiter != 0)
    sql = sqlite3_mprintf ("UPDATE folders SET name = %Q || substr (name, %d) WHERE "
                           "account_id = %Q AND (id = %lld OR substr (name, 1, %d) = %Q || '%c')",
                           job->folder_name, (int) strlen (old_name) + 1, account,
                           (long long) job->folder_id, (int) strlen (old_name) + 1, old_name,
                           delimiter);
  else
    sql = sqlite3_mprintf ("UPDATE folders SET name = %Q WHERE id = %lld", job->folder_name,
                           (long long) job->folder_id);
  rc = sqlite3_exec (self->db, sql, NULL, NULL, NULL);
  sqlite3_free (sql);
  if (rc != SQLITE_OK)
    return db_error (self, self->db, rc, error);
  if (is_local (account))
    return TRUE;
  return journal_add (self, account, "folder-rename", job->folder_id, 0,
                      g_variant_new ("(ss)", old_name, job->folder_name), error);
}

static gboolean
do_folder_delete (Core    *self,
                  Job     *job,
                  GError **error)
{
  g_autofree char *account = NULL;
  g_autofree char *name = NULL;
  char delimiter = 0;
  sqlite3_stmt *s;
  int rc;

  if (!folder_row (self, job->folder_id, &account, &name, &delimiter, error))
    return FALSE;
  /* Its messages: their search rows and (after the commit) their bodies go too, and so
   * does whatever was pending for them. */
  rc = sqlite3_prepare_v2 (self->db, "SELECT id, body_id FROM messages WHERE folder_id = ?1",
                           -1, &s, NULL);
  if (rc == SQLITE_OK)
    sqlite3_bind_int64 (s, 1, job->folder_id);
  while (rc == SQLITE_OK && sqlite3_step (s) == SQLITE_ROW)
    {
      Row row = { 0 };
      gint64 id = sqlite3_column_int64 (s, 0);
      sqlite3_stmt *j = stmt (self, "DELETE FROM journal WHERE message_id = ?1", error);

      row.body_id = sqlite3_column_int64 (s, 1);
      row.account_id = account;
      if (j == NULL)
        {
          sqlite3_finalize (s);
          return FALSE;
        }
      sqlite3_bind_int64 (j, 1, id);
      if (!run (self, j, error) || !remove_row (self, job, id, &row, error))
        {
          sqlite3_finalize (s);
          return FALSE;
        }
    }
  sqlite3_finalize (s);
  if (rc != SQLITE_OK)
    return db_error (self, self->db, rc, error);
  if ((s = stmt (self, "DELETE FROM folders WHERE id = ?1", error)) == NULL)
    return FALSE;
  sqlite3_bind_int64 (s, 1, job->folder_id);
  if (!run (self, s, error))
    return FALSE;
  g_hash_table_remove (self->accounts, &job->folder_id);
  if (is_local (account))
    return TRUE;
  return journal_add (self, account, "folder-delete", 0, 0, g_variant_new ("(s)", name), error);
}

/* Syncs the WAL file of @db's main database (and nothing if it has none open), through
 * the file handle SQLite itself uses. Opening and closing the file here instead would
 * drop every POSIX lock this process holds on it (close() releases them all), and a
 * connection that then believes itself alone deletes the WAL under the others. */
static int
sync_wal (sqlite3 *db)
{
  sqlite3_file *file = NULL;
  int rc;

  rc = sqlite3_file_control (db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &file);
  if (rc != SQLITE_OK)
    return rc;
  if (file == NULL || file->pMethods == NULL)
    return SQLITE_OK;
  return file->pMethods->xSync (file, SQLITE_SYNC_NORMAL);
}

/* Makes every commit so far durable: SQLite's WAL mode with synchronous=NORMAL syncs the
 * WAL only at checkpoints, so the WAL files are synced here. */
static void
flush_files (Core          *self,
             GPtrArray     *batch)
{
  GHashTableIter iter;
  gpointer key, value;
  const char *failed = NULL;
  int rc;

  if ((rc = sync_wal (self->db)) != SQLITE_OK)
    failed = self->index_path;
  /* A bodies database that wrote nothing since its last sync needs none: each sync is a
   * disk flush, and most flushes (an outbox submission) touch the index only. */
  g_hash_table_iter_init (&iter, self->bodies);
  while (failed == NULL && g_hash_table_iter_next (&iter, &key, &value))
    {
      int changes = sqlite3_total_changes (value);
      gpointer last;

      if (g_hash_table_lookup_extended (self->bodies_synced, key, NULL, &last) &&
          GPOINTER_TO_INT (last) == changes)
        continue;
      if ((rc = sync_wal (value)) != SQLITE_OK)
        failed = key;
      else
        g_hash_table_insert (self->bodies_synced, g_strdup (key), GINT_TO_POINTER (changes));
    }
  if (failed != NULL)
    {
      for (guint j = 0; j < batch->len; j++)
        {
          Job *job = g_ptr_array_index (batch, j);

          if (job->kind == JOB_FLUSH)
            fail_job (job, g_error_new (LB_STORE_ERROR, LB_STORE_ERROR_IO,
                                        _("Could not write “%s” to disk: %s"), failed,
                                        sqlite3_errstr (rc)));
        }
      return;
    }
  self->syncs++;
}

/* ---- bodies (writer thread) ------------------------------------------------------- */

/*
 * Bodies nobody refers to (see the top of this file) are looked for when a writer starts,
 * but only in a bodies database whose last writer may have left some: looking reads the
 * whole database (~0.2 s for 20 000 messages here), which every letterbox-ctl command
 * would pay. A bodies database's user_version says how its last writer ended: negative (a
 * number of that writer's own) while a writer has it open, and so after a crash; 1 + its
 * highest body id once a writer closed cleanly (so that a body added since by anything
 * else shows too); 0 for a database from before this. A close is clean when every body
 * whose message went was dropped — not so when the caller's own SQL (an exec job, such as
 * sync removing a folder the server no longer has) removed a message with a body, or a
 * body could not be deleted — when no other connection added a body meanwhile, and when no
 * other writer opened the database since.
 */

static gint64
bodies_max_id (sqlite3 *db)
{
  sqlite3_stmt *s = NULL;
  gint64 max = -1;

  if (sqlite3_prepare_v2 (db, "SELECT coalesce (max (id), 0) FROM bodies", -1, &s, NULL) ==
        SQLITE_OK &&
      sqlite3_step (s) == SQLITE_ROW)
    max = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  return max;
}

/* The user_version of a cleanly closed bodies database whose highest body id is @max. */
static gint64
bodies_clean_mark (gint64 max)
{
  return max >= 0 && max < G_MAXINT32 ? max + 1 : 0;
}

/* A body this writer added (or found): at the end, a higher one is somebody else's. */
static void
bodies_seen (Core       *self,
             const char *account_id,
             gint64      body_id)
{
  gint64 *known = g_hash_table_lookup (self->bodies_max, account_id);

  if (known == NULL)
    g_hash_table_insert (self->bodies_max, g_strdup (account_id),
                         g_memdup2 (&body_id, sizeof body_id));
  else if (body_id > *known)
    *known = body_id;
}

static gint64
bodies_user_version (sqlite3 *db)
{
  sqlite3_stmt *s = NULL;
  gint64 version = 0;

  if (sqlite3_prepare_v2 (db, "PRAGMA user_version", -1, &s, NULL) == SQLITE_OK &&
      sqlite3_step (s) == SQLITE_ROW)
    version = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  return version;
}

static gboolean
set_bodies_user_version (sqlite3 *db,
                         gint64   version)
{
  char *sql = sqlite3_mprintf ("PRAGMA user_version = %lld", (long long) version);
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  sqlite3_free (sql);
  return rc == SQLITE_OK;
}

/* The account's bodies database, opened (and created) the first time; @was_clean says
 * whether its last writer closed it cleanly. From now on it is this writer's. */
static sqlite3 *
bodies_db_full (Core           *self,
                const char     *account_id,
                gboolean       *was_clean,
                GError        **error)
{
  sqlite3 *db = g_hash_table_lookup (self->bodies, account_id);
  g_autofree char *path = NULL;
  gint64 version;
  gint64 max;

  if (db != NULL)
    return db;
  path = lb_store_bodies_path (self->data_dir, account_id);
  db = lb_store_bodies_open (path, TRUE, error);
  if (db == NULL)
    return NULL;
  version = bodies_user_version (db);
  max = bodies_max_id (db);
  if (was_clean != NULL)
    *was_clean = version > 0 && version == bodies_clean_mark (max);
  if (!set_bodies_user_version (db, self->session))
    {
      db_error (self, db, sqlite3_errcode (db), error);
      sqlite3_close_v2 (db);
      return NULL;
    }
  g_hash_table_insert (self->bodies, g_strdup (account_id), db);
  bodies_seen (self, account_id, max);
  return db;
}

static sqlite3 *
bodies_db (Core           *self,
           const char     *account_id,
           GError        **error)
{
  return bodies_db_full (self, account_id, NULL, error);
}

/* At the end of a writer that left no unreferenced body: its bodies databases are clean,
 * unless another connection added a body meanwhile (a second writer, or a test). */
static void
mark_bodies_clean (Core *self)
{
  GHashTableIter iter;
  gpointer account, db;

  if (self->may_orphan)
    return;
  g_hash_table_iter_init (&iter, self->bodies);
  while (g_hash_table_iter_next (&iter, &account, &db))
    {
      gint64 *known = g_hash_table_lookup (self->bodies_max, account);
      gint64 max = bodies_max_id (db);
      gint64 mark = bodies_clean_mark (max);

      if (mark != 0 && known != NULL && max <= *known &&
          bodies_user_version (db) == self->session)
        set_bodies_user_version (db, mark);
    }
}

/* SQL function lb_body_unlinked (), called by a temporary trigger when a message with a
 * body is deleted. */
static void
body_unlinked (sqlite3_context  *context,
               int               argc,
               sqlite3_value   **argv)
{
  Core *self = sqlite3_user_data (context);

  if (self->foreign_sql)
    self->may_orphan = TRUE;
}

/* Removes bodies no index row refers to: what a crash between the two commits leaves. */
static gboolean
collect_orphans (Core           *self,
                 const char     *account_id,
                 GError        **error)
{
  sqlite3 *db = bodies_db (self, account_id, error);
  g_autofree char *path = lb_store_bodies_path (self->data_dir, account_id);
  char *attach;
  sqlite3_stmt *s = NULL;
  gboolean attached;
  int rc;

  if (db == NULL)
    return FALSE;
  attach = sqlite3_mprintf ("ATTACH DATABASE %Q AS idx", self->index_path);
  attached = exec (self, db, attach, error);
  sqlite3_free (attach);
  if (!attached)
    return FALSE;
  rc = sqlite3_prepare_v2 (db,
                           "DELETE FROM main.bodies WHERE id NOT IN ("
                           "  SELECT m.body_id FROM idx.messages m JOIN idx.folders f"
                           "  ON f.id = m.folder_id"
                           "  WHERE f.account_id = ?1 AND m.body_id IS NOT NULL)",
                           -1, &s, NULL);
  if (rc == SQLITE_OK)
    rc = sqlite3_bind_text (s, 1, account_id, -1, SQLITE_STATIC);
  if (rc == SQLITE_OK)
    rc = sqlite3_step (s);
  sqlite3_finalize (s);
  if (rc == SQLITE_DONE && sqlite3_changes (db) > 0)
    g_debug ("Removed %d unreferenced bodies from %s", sqlite3_changes (db), path);
  sqlite3_exec (db, "DETACH DATABASE idx", NULL, NULL, NULL);
  if (rc != SQLITE_DONE)
    return db_error (self, db, rc, error);
  return TRUE;
}

/* ---- the thread ------------------------------------------------------------------- */

static void
fail_job (Job    *job,
          GError *error)
{
  if (job->error == NULL)
    job->error = error;
  else
    g_error_free (error);
}

static void
write_bodies (Core          *self,
              GPtrArray     *batch)
{
  g_autoptr(GHashTable) open = g_hash_table_new (g_str_hash, g_str_equal);
  GHashTableIter iter;
  gpointer key, value;

  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = g_ptr_array_index (batch, i);
      GError *error = NULL;
      g_autofree char *path = NULL;
      sqlite3 *db;
      char *account;

      if (job->kind != JOB_ADD || job->body == NULL || job->error != NULL)
        continue;
      account = folder_account (self, job->message->folder_id, &error);
      if (account == NULL)
        {
          fail_job (job, error);
          continue;
        }
      job->body_account = account;
      db = bodies_db (self, account, &error);
      if (db == NULL)
        {
          fail_job (job, error);
          continue;
        }
      if (!g_hash_table_contains (open, account))
        {
          if (!exec (self, db, "BEGIN IMMEDIATE", &error))
            {
              fail_job (job, error);
              continue;
            }
          g_hash_table_insert (open, account, db);
        }
      path = lb_store_bodies_path (self->data_dir, account);
      sqlite3_exec (db, "SAVEPOINT body", NULL, NULL, NULL);
      job->body_id = lb_store_bodies_write (db, path, job->body, job->body_size,
                                            g_task_get_cancellable (job_task (job)), &error);
      if (job->body_id != 0)
        bodies_seen (self, account, job->body_id);
      if (job->body_id == 0)
        {
          sqlite3_exec (db, "ROLLBACK TO body", NULL, NULL, NULL);
          fail_job (job, error);
        }
      sqlite3_exec (db, "RELEASE body", NULL, NULL, NULL);
    }

  g_hash_table_iter_init (&iter, open);
  while (g_hash_table_iter_next (&iter, &key, &value))
    {
      GError *error = NULL;

      if (exec (self, value, "COMMIT", &error))
        continue;
      sqlite3_exec (value, "ROLLBACK", NULL, NULL, NULL);
      for (guint i = 0; i < batch->len; i++)
        {
          Job *job = g_ptr_array_index (batch, i);

          if (job->kind == JOB_ADD && g_strcmp0 (job->body_account, key) == 0 &&
              job->body_id != 0)
            {
              job->body_id = 0;
              fail_job (job, g_error_copy (error));
            }
        }
      g_error_free (error);
    }
}

/* After the index commit: bodies of deleted messages, and bodies whose index row was not
 * written (their job failed). Failure here only leaves orphans for the next start. */
static void
drop_bodies (Core          *self,
             GPtrArray     *batch)
{
  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = g_ptr_array_index (batch, i);
      g_autofree char *path = NULL;
      sqlite3 *db;

      if (job->drop_bodies != NULL && job->error == NULL && job->body_account != NULL)
        {
          g_autofree char *bodies_path = lb_store_bodies_path (self->data_dir, job->body_account);

          db = bodies_db (self, job->body_account, NULL);
          for (guint j = 0; db != NULL && j < job->drop_bodies->len; j++)
            if (!lb_store_bodies_delete (db, bodies_path,
                                         g_array_index (job->drop_bodies, gint64, j), NULL))
              self->may_orphan = TRUE;
          if (db == NULL)
            self->may_orphan = TRUE;
          continue;
        }
      if (job->body_id == 0 || job->body_account == NULL ||
          (job->kind == JOB_ADD && job->body_used))
        continue;
      if (job->kind == JOB_DELETE && job->error != NULL)
        continue;
      db = bodies_db (self, job->body_account, NULL);
      path = lb_store_bodies_path (self->data_dir, job->body_account);
      if (db == NULL || !lb_store_bodies_delete (db, path, job->body_id, NULL))
        self->may_orphan = TRUE;
    }
}

static void
run_batch (Core          *self,
           GPtrArray     *batch)
{
  GError *error = NULL;

  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = g_ptr_array_index (batch, i);
      GError *cancelled = NULL;

      if (g_cancellable_set_error_if_cancelled (g_task_get_cancellable (job_task (job)),
                                                &cancelled))
        fail_job (job, cancelled);
    }

  write_bodies (self, batch);

  if (!exec (self, self->db, "BEGIN IMMEDIATE", &error))
    {
      for (guint i = 0; i < batch->len; i++)
        fail_job (g_ptr_array_index (batch, i), g_error_copy (error));
      g_error_free (error);
      drop_bodies (self, batch);
      return;
    }
  for (guint i = 0; i < batch->len; i++)
    {
      Job *job = g_ptr_array_index (batch, i);
      gboolean ok = FALSE;

      if (job->error != NULL)
        continue;
      savepoint (self, "SAVEPOINT job");
      self->foreign_sql = job->kind == JOB_EXEC || job->added_func != NULL;
      switch (job->kind)
        {
        case JOB_ENSURE_FOLDER:
          ok = do_ensure_folder (self, job, &error);
          break;
        case JOB_ADD:
          ok = do_add (self, job, &error);
          /* In the same savepoint: the caller's bookkeeping commits with the message. */
          if (ok && job->added_func != NULL &&
              !(ok = job->added_func (self->db, job->result, job->func_data, &error)) &&
              error == NULL)
            g_set_error (&error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                         _("A change to the mail store failed"));
          break;
        case JOB_SET_FLAGS:
          ok = do_set_flags (self, job, &error);
          break;
        case JOB_DELETE:
          ok = do_delete (self, job, &error);
          break;
        case JOB_EXEC:
          ok = job->func (self->db, job->func_data, &error);
          if (!ok && error == NULL)
            g_set_error (&error, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                         _("A change to the mail store failed"));
          break;
        case JOB_FLUSH:
          ok = TRUE;
          break;
        case JOB_EXPUNGE_UIDS:
          ok = do_expunge_uids (self, job, &error);
          break;
        case JOB_CHANGE_FLAGS:
          ok = do_change_flags (self, job, &error);
          break;
        case JOB_MOVE:
          ok = do_move (self, job, &error);
          break;
        case JOB_EXPUNGE:
          ok = do_expunge (self, job, &error);
          break;
        case JOB_COPY:
          ok = do_copy (self, job, &error);
          break;
        case JOB_FOLDER_CREATE:
          ok = do_folder_create (self, job, &error);
          break;
        case JOB_FOLDER_RENAME:
          ok = do_folder_rename (self, job, &error);
          break;
        case JOB_FOLDER_DELETE:
          ok = do_folder_delete (self, job, &error);
          break;
        case JOB_ADD_MANY:
          ok = TRUE; /* its messages are the JOB_ADDs before it */
          break;
        case JOB_STOP:
        default:
          g_assert_not_reached ();
        }
      self->foreign_sql = FALSE;
      if (!ok)
        {
          savepoint (self, "ROLLBACK TO job");
          job->body_used = FALSE;
          g_clear_pointer (&job->drop_bodies, g_array_unref);
          job->fts_op = FTS_NONE;
          fail_job (job, error);
          error = NULL;
        }
      savepoint (self, "RELEASE job");
    }
  if (!apply_fts (self, batch, &error) || !exec (self, self->db, "COMMIT", &error))
    {
      sqlite3_exec (self->db, "ROLLBACK", NULL, NULL, NULL);
      /* Folders created in this batch are gone again. */
      g_hash_table_remove_all (self->accounts);
      for (guint i = 0; i < batch->len; i++)
        {
          Job *job = g_ptr_array_index (batch, i);

          job->body_used = FALSE;
          if (job->kind == JOB_DELETE)
            job->body_id = 0;
          g_clear_pointer (&job->drop_bodies, g_array_unref);
          fail_job (job, g_error_copy (error));
        }
      g_error_free (error);
    }
  else
    self->commits++;
  drop_bodies (self, batch);
  for (guint i = 0; i < batch->len; i++)
    if (((Job *) g_ptr_array_index (batch, i))->kind == JOB_FLUSH)
      {
        flush_files (self, batch);
        break;
      }
}

static void
complete (Job *job)
{
  if (job->group != NULL)
    {
      /* Part of a JOB_ADD_MANY, which comes after it in the batch: the first failure is
       * the group's. */
      if (job->error != NULL && job->group->error == NULL)
        job->group->error = g_steal_pointer (&job->error);
      return;
    }
  if (job->error != NULL)
    g_task_return_error (job->task, g_steal_pointer (&job->error));
  else if (job->kind == JOB_ADD && job->existed)
    g_task_return_int (job->task, -job->result);
  else if (job->kind == JOB_ENSURE_FOLDER || job->kind == JOB_ADD || job->kind == JOB_COPY ||
           job->kind == JOB_FOLDER_CREATE)
    g_task_return_int (job->task, job->result);
  else
    g_task_return_boolean (job->task, TRUE);
}

static gpointer
writer_thread (gpointer data)
{
  Core          *self = data;
  gboolean stop = FALSE;

  while (!stop)
    {
      g_autoptr(GPtrArray) batch = g_ptr_array_new_with_free_func ((GDestroyNotify) job_free);
      Job *job = g_async_queue_pop (self->queue);

      for (;;)
        {
          if (job->kind == JOB_STOP)
            {
              stop = TRUE;
              job_free (job);
              break;
            }
          for (guint i = 0; job->kind == JOB_ADD_MANY && i < job->messages->len; i++)
            {
              Job *part = g_new0 (Job, 1);

              part->kind = JOB_ADD;
              part->message = g_steal_pointer (&job->messages->pdata[i]);
              part->group = job;
              g_ptr_array_add (batch, part);
            }
          g_ptr_array_add (batch, job);
          if (batch->len >= MAX_BATCH || (job = g_async_queue_try_pop (self->queue)) == NULL)
            break;
        }
      if (batch->len == 0)
        continue;
      run_batch (self, batch);
      for (guint i = 0; i < batch->len; i++)
        complete (g_ptr_array_index (batch, i));
    }
  mark_bodies_clean (self);
  core_unref (self);
  return NULL;
}

/* ---- the object ------------------------------------------------------------------- */

static void
lb_store_writer_finalize (GObject *object)
{
  LbStoreWriter *self = LB_STORE_WRITER (object);

  lb_store_writer_close (self);
  core_unref (self->core);
  G_OBJECT_CLASS (lb_store_writer_parent_class)->finalize (object);
}

static void
lb_store_writer_class_init (LbStoreWriterClass *klass)
{
  G_OBJECT_CLASS (klass)->finalize = lb_store_writer_finalize;
}

static void
lb_store_writer_init (LbStoreWriter *self)
{
  self->core = core_new ();
}

/**
 * lb_store_writer_new:
 * @data_dir: a store that lb_store_open() has created or upgraded
 *
 * Starts the writer thread with its own connection. There must be one writer per store
 * (DESIGN.md: the owner of the backend's bus name). Bodies no index row refers to (left
 * by a crash between a body's commit and its index row's) are removed first.
 *
 * Returns: (transfer full): the writer, or %NULL with @error set
 */
LbStoreWriter *
lb_store_writer_new (const char  *data_dir,
                     GError     **error)
{
  g_autoptr(LbStoreWriter) writer = g_object_new (LB_TYPE_STORE_WRITER, NULL);
  g_autoptr(GPtrArray) accounts = g_ptr_array_new_with_free_func (g_free);
  Core *self = writer->core;
  sqlite3_stmt *s = NULL;
  int rc;

  self->data_dir = g_strdup (data_dir);
  self->index_path = g_build_filename (data_dir, "index.db", NULL);
  /* One thread at a time uses this connection (this one, then the writer thread's): no
   * need for SQLite to lock its mutex around every call. */
  rc = sqlite3_open_v2 (self->index_path, &self->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
                        NULL);
  if (rc != SQLITE_OK)
    {
      db_error (self, self->db, rc, error);
      return NULL;
    }
  sqlite3_extended_result_codes (self->db, 1);
  sqlite3_busy_timeout (self->db, 10000);
  /* The writer's cache holds the FTS index's hot pages (SQLite's default of 2 MB makes
   * bulk indexing thrash); checkpoints every ~64 MB of WAL rather than every 4 MB. Each
   * job's savepoint keeps a copy of every page the job first changes: in memory, not in a
   * temporary file (measured: 1.1 GB written there for 20 000 headers, most of the
   * sync's system time). */
  if (!exec (self, self->db, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
                             "PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; "
                             "PRAGMA temp_store = MEMORY; "
                             "PRAGMA wal_autocheckpoint = 16384; "
                             "INSERT INTO messages_fts (messages_fts, rank) VALUES ('automerge', 8)",
                             error))
    return NULL;
  /* Messages with a body deleted by the caller's SQL: see mark_bodies_clean(). */
  rc = sqlite3_create_function (self->db, "lb_body_unlinked", 0, SQLITE_UTF8, self,
                                body_unlinked, NULL, NULL);
  if (rc != SQLITE_OK)
    {
      db_error (self, self->db, rc, error);
      return NULL;
    }
  if (!exec (self, self->db, "CREATE TEMP TRIGGER lb_body_unlinked AFTER DELETE ON main.messages "
                             "WHEN OLD.body_id IS NOT NULL BEGIN SELECT lb_body_unlinked (); END",
             error))
    return NULL;

  rc = sqlite3_prepare_v2 (self->db, "SELECT id FROM accounts", -1, &s, NULL);
  while (rc == SQLITE_OK && sqlite3_step (s) == SQLITE_ROW)
    g_ptr_array_add (accounts, g_strdup ((const char *) sqlite3_column_text (s, 0)));
  sqlite3_finalize (s);
  for (guint i = 0; i < accounts->len; i++)
    {
      g_autofree char *path = lb_store_bodies_path (data_dir, g_ptr_array_index (accounts, i));
      gboolean clean = FALSE;

      if (!g_file_test (path, G_FILE_TEST_EXISTS))
        continue;
      if (bodies_db_full (self, g_ptr_array_index (accounts, i), &clean, error) == NULL ||
          (!clean && !collect_orphans (self, g_ptr_array_index (accounts, i), error)))
        return NULL;
    }

  g_atomic_int_inc (&self->ref_count);
  writer->thread = g_thread_new ("lb-store-writer", writer_thread, self);
  return g_steal_pointer (&writer);
}

/**
 * lb_store_writer_close:
 *
 * Finishes every job already queued, then stops the thread. Later jobs fail.
 */
void
lb_store_writer_close (LbStoreWriter *self)
{
  Job *stop;

  if (self->thread == NULL)
    return;
  self->closed = TRUE;
  stop = g_new0 (Job, 1);
  stop->kind = JOB_STOP;
  g_async_queue_push (self->core->queue, stop);
  if (g_thread_self () == self->thread)
    /* Finalized by the writer thread itself: it stops after this batch. */
    g_thread_unref (self->thread);
  else
    g_thread_join (self->thread);
  self->thread = NULL;
}

guint64
lb_store_writer_get_commits (LbStoreWriter *self)
{
  return self->core->commits;
}

/**
 * lb_store_writer_get_syncs:
 *
 * Returns: how many times the writer has synced the store's files to disk: once per
 *   batch that holds any number of flush jobs, so flushes queued together share one
 */
guint64
lb_store_writer_get_syncs (LbStoreWriter *self)
{
  return self->core->syncs;
}

/**
 * lb_store_writer_get_queued:
 *
 * Returns: how many jobs wait for the writer thread (not counting the batch it is running)
 */
guint
lb_store_writer_get_queued (LbStoreWriter *self)
{
  gint n = g_async_queue_length (self->core->queue);

  return n > 0 ? (guint) n : 0;
}

static Job *
new_job (LbStoreWriter       *self,
         JobKind              kind,
         gpointer             source_tag,
         GCancellable        *cancellable,
         GAsyncReadyCallback  callback,
         gpointer             user_data)
{
  Job *job = g_new0 (Job, 1);

  job->kind = kind;
  job->task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (job->task, source_tag);
  return job;
}

static void
submit (LbStoreWriter *self,
        Job           *job)
{
  if (self->closed)
    {
      g_task_return_new_error (job->task, LB_STORE_ERROR, LB_STORE_ERROR_IO,
                               _("The mail store is closed"));
      job_free (job);
      return;
    }
  g_async_queue_push (self->core->queue, job);
}

/**
 * lb_store_writer_ensure_folder_async:
 *
 * Makes sure the account and its folder exist; the result is the folder's id.
 */
void
lb_store_writer_ensure_folder_async (LbStoreWriter       *self,
                                     const char          *account_id,
                                     const char          *account_kind,
                                     const char          *account_name,
                                     const char          *folder_name,
                                     LbFolderRole         role,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  Job *job = new_job (self, JOB_ENSURE_FOLDER, lb_store_writer_ensure_folder_async, cancellable,
                      callback, user_data);

  job->account_id = g_strdup (account_id);
  job->account_kind = g_strdup (account_kind);
  job->account_name = g_strdup (account_name);
  job->folder_name = g_strdup (folder_name);
  job->role = role;
  submit (self, job);
}

gint64
lb_store_writer_ensure_folder_finish (LbStoreWriter  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  gint64 id;

  g_return_val_if_fail (g_task_is_valid (result, self), 0);

  id = g_task_propagate_int (G_TASK (result), error);
  return id > 0 ? id : 0;
}

/**
 * lb_store_writer_add_async:
 * @message: (transfer full): the index row
 * @body: (nullable): the raw message, read to its end in the writer thread
 * @body_size: its exact size
 *
 * Adds a message (or, for a UID or import key already there, updates its flags and
 * completes its body). The result is the message's id once it is committed: body and
 * index row both, or neither.
 */
void
lb_store_writer_add_async (LbStoreWriter       *self,
                           LbStoreMessage      *message,
                           GInputStream        *body,
                           goffset              body_size,
                           GCancellable        *cancellable,
                           GAsyncReadyCallback  callback,
                           gpointer             user_data)
{
  Job *job = new_job (self, JOB_ADD, lb_store_writer_add_async, cancellable, callback, user_data);

  job->message = message;
  job->body = body != NULL ? g_object_ref (body) : NULL;
  job->body_size = body_size;
  submit (self, job);
}

gint64
lb_store_writer_add_finish (LbStoreWriter  *self,
                            GAsyncResult   *result,
                            GError        **error)
{
  return lb_store_writer_add_finish_full (self, result, NULL, error);
}

/**
 * lb_store_writer_add_finish_full:
 * @existed: (out) (optional): the message was already there (same UID or import key)
 *
 * Returns: the message's id, or 0 with @error set
 */
gint64
lb_store_writer_add_finish_full (LbStoreWriter  *self,
                                 GAsyncResult   *result,
                                 gboolean       *existed,
                                 GError        **error)
{
  GError *local_error = NULL;
  gint64 id;

  g_return_val_if_fail (g_task_is_valid (result, self), 0);

  id = g_task_propagate_int (G_TASK (result), &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return 0;
    }
  /* A message that was already there comes back negated (see complete()). */
  if (existed != NULL)
    *existed = id < 0;
  return ABS (id);
}

/**
 * lb_store_writer_add_many_async:
 * @messages: (transfer full) (element-type LbStoreMessage): index rows without bodies
 *
 * Adds several messages as lb_store_writer_add_async() adds each one without a body, but
 * queued as one job, so that the writer commits them together (in one transaction with
 * whatever else is waiting) and answers once: a sync's headers, hundreds at a time, then
 * cost one commit and one callback rather than hundreds. Each message still has its own
 * savepoint: one that fails does not keep the others out.
 *
 * Returns (through lb_store_writer_add_many_finish()): %TRUE once all are committed, or
 * the first message's error.
 */
void
lb_store_writer_add_many_async (LbStoreWriter       *self,
                                GPtrArray           *messages,
                                GCancellable        *cancellable,
                                GAsyncReadyCallback  callback,
                                gpointer             user_data)
{
  Job *job = new_job (self, JOB_ADD_MANY, lb_store_writer_add_many_async, cancellable, callback,
                      user_data);

  g_ptr_array_set_free_func (messages, (GDestroyNotify) lb_store_message_free);
  job->messages = messages;
  submit (self, job);
}

gboolean
lb_store_writer_add_many_finish (LbStoreWriter  *self,
                                 GAsyncResult   *result,
                                 GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
lb_store_writer_set_flags_async (LbStoreWriter       *self,
                                 gint64               message_id,
                                 LbMessageFlags       set,
                                 LbMessageFlags       clear,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  Job *job = new_job (self, JOB_SET_FLAGS, lb_store_writer_set_flags_async, cancellable, callback,
                      user_data);

  job->message_id = message_id;
  job->set = set;
  job->clear = clear;
  submit (self, job);
}

gboolean
lb_store_writer_set_flags_finish (LbStoreWriter  *self,
                                  GAsyncResult   *result,
                                  GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

void
lb_store_writer_delete_async (LbStoreWriter       *self,
                              gint64               message_id,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  Job *job = new_job (self, JOB_DELETE, lb_store_writer_delete_async, cancellable, callback,
                      user_data);

  job->message_id = message_id;
  submit (self, job);
}

gboolean
lb_store_writer_delete_finish (LbStoreWriter  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_exec_async:
 * @func: runs on the writer thread with the index database, inside the batch's
 *   transaction and its own savepoint
 * @destroy: (nullable): frees @data once the job is done (on either thread)
 *
 * For sync's bookkeeping (folder state, flag updates from the server, the journal).
 */
void
lb_store_writer_exec_async (LbStoreWriter       *self,
                            LbStoreWriterFunc    func,
                            gpointer             data,
                            GDestroyNotify       destroy,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  Job *job = new_job (self, JOB_EXEC, lb_store_writer_exec_async, cancellable, callback,
                      user_data);

  job->func = func;
  job->func_data = data;
  job->func_destroy = destroy;
  submit (self, job);
}

gboolean
lb_store_writer_exec_finish (LbStoreWriter  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_flush_async:
 *
 * Completes when every job queued before it has been committed and the database files
 * have been synced to disk.
 */
void
lb_store_writer_flush_async (LbStoreWriter       *self,
                             GCancellable        *cancellable,
                             GAsyncReadyCallback  callback,
                             gpointer             user_data)
{
  submit (self, new_job (self, JOB_FLUSH, lb_store_writer_flush_async, cancellable, callback,
                         user_data));
}

gboolean
lb_store_writer_flush_finish (LbStoreWriter  *self,
                              GAsyncResult   *result,
                              GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

void
lb_store_writer_expunge_uids_async (LbStoreWriter       *self,
                                    gint64               folder_id,
                                    const guint32       *uids,
                                    guint                n_uids,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  Job *job = new_job (self, JOB_EXPUNGE_UIDS, lb_store_writer_expunge_uids_async, cancellable,
                      callback, user_data);

  job->folder_id = folder_id;
  job->uids = g_array_sized_new (FALSE, FALSE, sizeof (guint32), n_uids);
  g_array_append_vals (job->uids, uids, n_uids);
  submit (self, job);
}

gboolean
lb_store_writer_expunge_uids_finish (LbStoreWriter  *self,
                                     GAsyncResult   *result,
                                     GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_change_flags_async:
 *
 * Sets and clears flags of a message now and records the change for the server. Two
 * changes to one message before a replay become one.
 */
void
lb_store_writer_change_flags_async (LbStoreWriter       *self,
                                    gint64               message_id,
                                    LbMessageFlags       set,
                                    LbMessageFlags       clear,
                                    GCancellable        *cancellable,
                                    GAsyncReadyCallback  callback,
                                    gpointer             user_data)
{
  Job *job = new_job (self, JOB_CHANGE_FLAGS, lb_store_writer_change_flags_async, cancellable,
                      callback, user_data);

  job->message_id = message_id;
  job->set = set;
  job->clear = clear;
  submit (self, job);
}

gboolean
lb_store_writer_change_flags_finish (LbStoreWriter  *self,
                                     GAsyncResult   *result,
                                     GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_move_async:
 *
 * Moves a message to @folder_id now; until the move is replayed the message has no
 * server UID. A move back to where the server has it cancels the pending move.
 */
void
lb_store_writer_move_async (LbStoreWriter       *self,
                            gint64               message_id,
                            gint64               folder_id,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  Job *job = new_job (self, JOB_MOVE, lb_store_writer_move_async, cancellable, callback,
                      user_data);

  job->message_id = message_id;
  job->folder_id = folder_id;
  submit (self, job);
}

gboolean
lb_store_writer_move_finish (LbStoreWriter  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_expunge_async:
 *
 * Deletes a message for good: its row, search entry and body now, and (for a server
 * account) an expunge on the server at the next replay.
 */
void
lb_store_writer_expunge_async (LbStoreWriter       *self,
                               gint64               message_id,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  Job *job = new_job (self, JOB_EXPUNGE, lb_store_writer_expunge_async, cancellable, callback,
                      user_data);

  job->message_id = message_id;
  submit (self, job);
}

gboolean
lb_store_writer_expunge_finish (LbStoreWriter  *self,
                                GAsyncResult   *result,
                                GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_append_async:
 * @message: a message with its folder set and no UID; taken
 * @body: its raw bytes (required: they are what is uploaded)
 *
 * Adds a message made here (a saved draft, a sent message's copy) and, for a server
 * account, records its upload; the result is its id.
 */
void
lb_store_writer_append_async (LbStoreWriter       *self,
                              LbStoreMessage      *message,
                              GInputStream        *body,
                              goffset              body_size,
                              GCancellable        *cancellable,
                              GAsyncReadyCallback  callback,
                              gpointer             user_data)
{
  Job *job = new_job (self, JOB_ADD, lb_store_writer_append_async, cancellable, callback,
                      user_data);

  g_return_if_fail (message->uid == 0 && body != NULL);
  job->message = message;
  job->body = g_object_ref (body);
  job->body_size = body_size;
  job->journal_append = TRUE;
  submit (self, job);
}

gint64
lb_store_writer_append_finish (LbStoreWriter  *self,
                               GAsyncResult   *result,
                               GError        **error)
{
  GError *local_error = NULL;
  gint64 id;

  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  id = g_task_propagate_int (G_TASK (result), &local_error);
  if (local_error != NULL)
    {
      g_propagate_error (error, local_error);
      return 0;
    }
  /* One found by its import key comes back negated (see complete()). */
  return ABS (id);
}

/**
 * lb_store_writer_append_full_async:
 * @func: runs on the writer thread right after the message is added (or found by its
 *   import key), in the same savepoint, with the message's id: returning %FALSE undoes
 *   both, so the message and the caller's own rows commit together or not at all
 * @destroy: (nullable): frees @data once the job is done (on either thread)
 *
 * lb_store_writer_append_async() plus the caller's bookkeeping in one transaction (the
 * outbox marks a message sent with its Sent copy). Finish with
 * lb_store_writer_append_finish().
 */
void
lb_store_writer_append_full_async (LbStoreWriter          *self,
                                   LbStoreMessage         *message,
                                   GInputStream           *body,
                                   goffset                 body_size,
                                   LbStoreWriterAddedFunc  func,
                                   gpointer                data,
                                   GDestroyNotify          destroy,
                                   GCancellable           *cancellable,
                                   GAsyncReadyCallback     callback,
                                   gpointer                user_data)
{
  Job *job = new_job (self, JOB_ADD, lb_store_writer_append_async, cancellable, callback,
                      user_data);

  g_return_if_fail (message->uid == 0 && body != NULL && func != NULL);
  job->message = message;
  job->body = g_object_ref (body);
  job->body_size = body_size;
  job->journal_append = TRUE;
  job->added_func = func;
  job->func_data = data;
  job->func_destroy = destroy;
  submit (self, job);
}

/**
 * lb_store_writer_copy_async:
 *
 * Copies a message into another folder of its account; the result is the copy's id.
 */
void
lb_store_writer_copy_async (LbStoreWriter       *self,
                            gint64               message_id,
                            gint64               folder_id,
                            GCancellable        *cancellable,
                            GAsyncReadyCallback  callback,
                            gpointer             user_data)
{
  Job *job = new_job (self, JOB_COPY, lb_store_writer_copy_async, cancellable, callback,
                      user_data);

  job->message_id = message_id;
  job->folder_id = folder_id;
  submit (self, job);
}

gint64
lb_store_writer_copy_finish (LbStoreWriter  *self,
                             GAsyncResult   *result,
                             GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  return g_task_propagate_int (G_TASK (result), error);
}

/**
 * lb_store_writer_create_folder_async:
 * @name: the full name, with the server's delimiter between levels
 *
 * The result is the new folder's id; a folder of that name is an error.
 */
void
lb_store_writer_create_folder_async (LbStoreWriter       *self,
                                     const char          *account_id,
                                     const char          *name,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  Job *job = new_job (self, JOB_FOLDER_CREATE, lb_store_writer_create_folder_async, cancellable,
                      callback, user_data);

  job->account_id = g_strdup (account_id);
  job->account_kind = g_strdup ("imap");
  job->account_name = g_strdup (account_id);
  job->folder_name = g_strdup (name);
  submit (self, job);
}

gint64
lb_store_writer_create_folder_finish (LbStoreWriter  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), 0);
  return g_task_propagate_int (G_TASK (result), error);
}

/**
 * lb_store_writer_rename_folder_async:
 *
 * Renames a folder and the folders below it.
 */
void
lb_store_writer_rename_folder_async (LbStoreWriter       *self,
                                     gint64               folder_id,
                                     const char          *name,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  Job *job = new_job (self, JOB_FOLDER_RENAME, lb_store_writer_rename_folder_async, cancellable,
                      callback, user_data);

  job->folder_id = folder_id;
  job->folder_name = g_strdup (name);
  submit (self, job);
}

gboolean
lb_store_writer_rename_folder_finish (LbStoreWriter  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

/**
 * lb_store_writer_delete_folder_async:
 *
 * Deletes a folder with its messages.
 */
void
lb_store_writer_delete_folder_async (LbStoreWriter       *self,
                                     gint64               folder_id,
                                     GCancellable        *cancellable,
                                     GAsyncReadyCallback  callback,
                                     gpointer             user_data)
{
  Job *job = new_job (self, JOB_FOLDER_DELETE, lb_store_writer_delete_folder_async, cancellable,
                      callback, user_data);

  job->folder_id = folder_id;
  submit (self, job);
}

gboolean
lb_store_writer_delete_folder_finish (LbStoreWriter  *self,
                                      GAsyncResult   *result,
                                      GError        **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

const char *
lb_store_writer_get_data_dir (LbStoreWriter *self)
{
  return self->core->data_dir;
}
