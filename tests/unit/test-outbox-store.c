/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "lb-store.h"
#include "lb-store-bodies.h"
#include "lb-store-writer.h"
#include "lb-test-sync.h"

/* What the outbox needs from the store and added to it: schema 5's outbox table (also
 * by upgrade from 4); lb_store_writer_append_full_async(), whose function commits with the
 * appended message or takes it back with it (row, journal entry and body), and whose
 * import key makes a second append the first; and flushes queued together sharing one
 * sync (lb_store_writer_get_syncs(), lb_store_writer_get_queued()). */

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  gint64 folder;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  f->dir = g_dir_make_tmp ("lb-outbox-store-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  lb_store_writer_ensure_folder_async (f->writer, "acct", "imap", "Account", "Sent",
                                       LB_FOLDER_ROLE_SENT, NULL, lb_test_wait_cb, &w);
  f->folder = lb_store_writer_ensure_folder_finish (f->writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
}

static gint64
count (Fixture    *f,
       const char *sql)
{
  return lb_test_store_query_int (f->dir, sql);
}

static gint64
count_bodies (Fixture *f)
{
  g_autofree char *path = lb_store_bodies_path (f->dir, "acct");
  g_autoptr(GError) error = NULL;
  sqlite3 *db = lb_store_bodies_open (path, FALSE, &error);
  sqlite3_stmt *s = NULL;
  gint64 n = -1;

  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM bodies", -1, &s, NULL), ==,
                   SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    n = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return n;
}

typedef struct
{
  const char *note;
  gboolean fail;
  gint64 seen_id;
  guint calls;
} Bookkeeping;

/* Writer thread: a row of the caller's own, in the append's savepoint. */
static gboolean
note_row (sqlite3   *db,
          gint64     message_id,
          gpointer   data,
          GError   **error)
{
  Bookkeeping *b = data;
  char *sql = sqlite3_mprintf ("INSERT INTO outbox (queue_id, created, sender, recipients, state, "
                               "sent_message_id) VALUES (%Q, 1, 's', 'r', 'sent', %lld)",
                               b->note, (long long) message_id);
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  sqlite3_free (sql);
  b->calls++;
  b->seen_id = message_id;
  if (rc != SQLITE_OK || b->fail)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_FAILED, "bookkeeping refused: %s",
                   rc != SQLITE_OK ? sqlite3_errmsg (db) : "on purpose");
      return FALSE;
    }
  return TRUE;
}

static gint64
append_full (Fixture      *f,
             const char   *import_key,
             Bookkeeping  *b,
             GError      **error)
{
  static const char raw[] = "From: a@example.test\r\nSubject: kept\r\nMessage-ID: <k@x>\r\n\r\nx\r\n";
  g_autoptr(GBytes) body = g_bytes_new_static (raw, sizeof raw - 1);
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);
  LbStoreMessage *m = lb_store_message_new ();
  LbTestWait w = { 0 };
  gint64 id;

  m->folder_id = f->folder;
  m->subject = g_strdup ("kept");
  m->message_id = g_strdup ("k@x");
  m->import_key = g_strdup (import_key);
  m->size = sizeof raw - 1;
  lb_store_writer_append_full_async (f->writer, m, stream, (goffset) (sizeof raw - 1), note_row,
                                     b, NULL, NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_append_finish (f->writer, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return id;
}

/* Both commit: the message (with its upload in the journal) and the caller's row, which
 * knew the message's id. */
static void
test_append_full_commits_together (Fixture       *f,
                                   gconstpointer  data)
{
  Bookkeeping b = { "Q1", FALSE, 0, 0 };
  g_autoptr(GError) error = NULL;
  gint64 id = append_full (f, "outbox:Q1", &b, &error);
  g_autofree char *sql = NULL;

  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  g_assert_cmpint (b.seen_id, ==, id);
  sql = g_strdup_printf ("SELECT count(*) FROM outbox WHERE queue_id = 'Q1' AND "
                         "sent_message_id = %" G_GINT64_FORMAT, id);
  g_assert_cmpint (count (f, sql), ==, 1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM journal WHERE kind = 'append'"), ==, 1);
  g_assert_cmpint (count_bodies (f), ==, 1);
}

/* The caller's function fails: nothing of the append stays (row, search row, journal,
 * body), and the error is the function's. */
static void
test_append_full_rolls_back (Fixture       *f,
                             gconstpointer  data)
{
  Bookkeeping b = { "Q2", TRUE, 0, 0 };
  g_autoptr(GError) error = NULL;
  gint64 id = append_full (f, "outbox:Q2", &b, &error);

  g_assert_cmpint (id, ==, 0);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_FAILED);
  g_assert_cmpuint (b.calls, ==, 1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM messages WHERE subject = 'kept'"), ==, 0);
  g_assert_cmpint (count (f, "SELECT count(*) FROM messages_fts WHERE subject = 'kept'"), ==, 0);
  g_assert_cmpint (count (f, "SELECT count(*) FROM journal"), ==, 0);
  g_assert_cmpint (count (f, "SELECT count(*) FROM outbox"), ==, 0);
  g_assert_cmpint (count_bodies (f), ==, 0);
}

/* The same import key twice: the second append is the first message (its id, no second
 * row, no second upload), and the function runs again with that id (here its own row
 * already exists, so it refuses, and the store is as after the first). */
static void
test_append_full_import_key (Fixture       *f,
                             gconstpointer  data)
{
  Bookkeeping first = { "Q3", FALSE, 0, 0 };
  Bookkeeping again = { "Q4", FALSE, 0, 0 };
  Bookkeeping clash = { "Q3", FALSE, 0, 0 };
  g_autoptr(GError) error = NULL;
  gint64 id1 = append_full (f, "outbox:Q3", &first, &error);
  gint64 id2;

  g_assert_no_error (error);
  id2 = append_full (f, "outbox:Q3", &again, &error);
  g_assert_no_error (error);
  g_assert_cmpint (id2, ==, id1);
  g_assert_cmpint (again.seen_id, ==, id1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM messages WHERE subject = 'kept'"), ==, 1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM journal"), ==, 1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM outbox"), ==, 2);

  g_assert_cmpint (append_full (f, "outbox:Q3", &clash, &error), ==, 0);
  g_assert_nonnull (error);
  g_assert_cmpint (count (f, "SELECT count(*) FROM messages WHERE subject = 'kept'"), ==, 1);
  g_assert_cmpint (count (f, "SELECT count(*) FROM outbox"), ==, 2);
  g_assert_cmpint (count_bodies (f), ==, 1);
}

typedef struct
{
  GMutex lock;
  GCond cond;
  gboolean entered;
  gboolean open;
} Gate;

static gboolean
gate_func (sqlite3  *db,
           gpointer  data,
           GError  **error)
{
  Gate *gate = data;

  g_mutex_lock (&gate->lock);
  gate->entered = TRUE;
  while (!gate->open)
    g_cond_wait (&gate->cond, &gate->lock);
  g_mutex_unlock (&gate->lock);
  return TRUE;
}

static gboolean
gate_entered (gpointer data)
{
  Gate *gate = data;
  gboolean entered;

  g_mutex_lock (&gate->lock);
  entered = gate->entered;
  g_mutex_unlock (&gate->lock);
  return entered;
}

typedef struct
{
  guint done;
} Flushes;

static void
flushed_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  g_assert_true (lb_store_writer_flush_finish (LB_STORE_WRITER (source), result, &error));
  g_assert_no_error (error);
  ((Flushes *) user_data)->done++;
}

static gboolean
all_flushed (gpointer data)
{
  return ((Flushes *) data)->done == 10;
}

/* Ten flushes waiting together are one sync; one alone is one too. */
static void
test_flushes_share_a_sync (Fixture       *f,
                           gconstpointer  data)
{
  Gate gate = { 0 };
  Flushes flushes = { 0 };
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  LbTestWait w2 = { 0 };
  guint64 syncs;

  g_mutex_init (&gate.lock);
  g_cond_init (&gate.cond);
  lb_store_writer_exec_async (f->writer, gate_func, &gate, NULL, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_test_wait_until (gate_entered, &gate, 10000));
  g_assert_cmpuint (lb_store_writer_get_queued (f->writer), ==, 0);
  syncs = lb_store_writer_get_syncs (f->writer);
  for (guint i = 0; i < 10; i++)
    lb_store_writer_flush_async (f->writer, NULL, flushed_cb, &flushes);
  g_assert_cmpuint (lb_store_writer_get_queued (f->writer), ==, 10);
  g_mutex_lock (&gate.lock);
  gate.open = TRUE;
  g_cond_broadcast (&gate.cond);
  g_mutex_unlock (&gate.lock);
  lb_store_writer_exec_finish (f->writer, lb_test_wait_result (&w), &error);
  g_assert_no_error (error);
  g_object_unref (w.result);
  g_assert_true (lb_test_wait_until (all_flushed, &flushes, 20000));
  g_assert_cmpuint (lb_store_writer_get_syncs (f->writer) - syncs, ==, 1);

  lb_store_writer_flush_async (f->writer, NULL, lb_test_wait_cb, &w2);
  g_assert_true (lb_store_writer_flush_finish (f->writer, lb_test_wait_result (&w2), &error));
  g_object_unref (w2.result);
  g_assert_cmpuint (lb_store_writer_get_syncs (f->writer) - syncs, ==, 2);
  g_mutex_clear (&gate.lock);
  g_cond_clear (&gate.cond);
}

/* A schema 4 store (no outbox) is upgraded to 5 and gets the table. */
static void
test_upgrade_from_4 (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-outbox-store-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "index.db", NULL);
  g_autoptr(LbStore) store = lb_store_open (dir, &error);
  sqlite3 *db = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (lb_store_schema_version (), >=, 5);
  g_clear_object (&store);
  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "DROP TABLE outbox; PRAGMA user_version = 4", NULL, NULL,
                                 NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = lb_store_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lb_test_store_query_int (dir, "PRAGMA user_version"), ==,
                   lb_store_schema_version ());
  g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM outbox"), ==, 0);
  /* The mark of a Sent copy still to add after the server took the message. */
  g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM pragma_table_info "
                                                 "('outbox') WHERE name = 'sent_copy_folder'"),
                   ==, 1);
  g_clear_object (&store);
  lb_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/outbox-store/append-full/commits-together", Fixture, NULL, fixture_set_up,
              test_append_full_commits_together, fixture_tear_down);
  g_test_add ("/outbox-store/append-full/rolls-back", Fixture, NULL, fixture_set_up,
              test_append_full_rolls_back, fixture_tear_down);
  g_test_add ("/outbox-store/append-full/import-key", Fixture, NULL, fixture_set_up,
              test_append_full_import_key, fixture_tear_down);
  g_test_add ("/outbox-store/flushes-share-a-sync", Fixture, NULL, fixture_set_up,
              test_flushes_share_a_sync, fixture_tear_down);
  g_test_add_func ("/outbox-store/upgrade-from-4", test_upgrade_from_4);

  return g_test_run ();
}
