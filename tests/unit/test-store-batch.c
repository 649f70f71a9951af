/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-store.h"
#include "lb-store-bodies.h"
#include "lb-store-import.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"

/* What makes a sync's writes cheap without changing what they write: many messages added
 * as one job (one commit, one callback; each message still fails alone), a message row
 * summarised without the parts IMAP sync does not keep, and a bodies database that a
 * clean close marks as holding no orphans, so the next writer need not read it all. */

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  gint64 folder;
} Fixture;

static gint64
ensure_folder (LbStoreWriter *writer,
               const char    *account,
               const char    *name)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_ensure_folder_async (writer, account, "imap", "Test account", name,
                                       LB_FOLDER_ROLE_NONE, NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_ensure_folder_finish (writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("lb-batch-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->folder = ensure_folder (f->writer, "acct", "INBOX");
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
}

static gint64
sql_int (const char *dir,
         const char *file,
         const char *sql)
{
  g_autofree char *path = g_build_filename (dir, file, NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  gint64 v = -1;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &s, NULL), ==, SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    v = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return v;
}

static LbStoreMessage *
message (gint64  folder,
         guint32 uid)
{
  LbStoreMessage *m = lb_store_message_new ();

  m->folder_id = folder;
  m->uid = uid;
  m->subject = g_strdup_printf (uid % 2 == 0 ? "Re: topic %u" : "topic %u", (uid + 1) / 2);
  m->sender = g_strdup ("Alice Example");
  m->sender_address = g_strdup ("alice@example.org");
  m->recipients = g_strdup ("Bob <bob@example.org>");
  m->message_id = g_strdup_printf ("batch-%u@example.org", uid);
  /* Every even message answers the one before it. */
  if (uid % 2 == 0)
    m->in_reply_to = g_strdup_printf ("batch-%u@example.org", uid - 1);
  m->date = 1700000000 + uid;
  m->size = 1000 + uid;
  return m;
}

static gboolean
add_many (LbStoreWriter  *writer,
          GPtrArray      *messages,
          GCancellable   *cancellable,
          GError        **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_store_writer_add_many_async (writer, messages, cancellable, lb_test_wait_cb, &w);
  ok = lb_store_writer_add_many_finish (writer, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static GPtrArray *
messages (gint64  folder,
          guint32 first,
          guint32 last)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);

  for (guint32 uid = first; uid <= last; uid++)
    g_ptr_array_add (list, message (folder, uid));
  return list;
}

/* Three hundred messages added as one job: one commit, every row with its search row,
 * counters and threads as if added one by one; again with other flags only updates them. */
static void
test_add_many (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  guint64 commits = lb_store_writer_get_commits (f->writer);
  GPtrArray *list = messages (f->folder, 1, 300);

  g_assert_true (add_many (f->writer, list, NULL, &error));
  g_assert_no_error (error);
  /* One job, one transaction (a job of nothing else queued beside it). */
  g_assert_cmpuint (lb_store_writer_get_commits (f->writer), ==, commits + 1);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE "
                                                "message_id LIKE 'batch-%'"), ==, 300);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages_fts WHERE "
                                                "messages_fts MATCH 'topic'"), ==, 300);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT total FROM folders WHERE name = 'INBOX' "
                                                "AND account_id = 'acct'"), ==, 300);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT unread FROM folders WHERE name = 'INBOX' "
                                                "AND account_id = 'acct'"), ==, 300);
  /* A reply shares its original's thread; different topics do not. */
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(DISTINCT thread_id) FROM messages "
                                                "WHERE message_id LIKE 'batch-%'"), ==, 150);
  g_assert_cmpint (sql_int (f->dir, "index.db",
                            "SELECT count(*) FROM messages a JOIN messages b ON "
                            "b.message_id = 'batch-' || (a.uid - 1) || '@example.org' WHERE "
                            "a.uid % 2 = 0 AND a.thread_id = b.thread_id"), ==, 150);

  /* The same UIDs again, now read: the rows stay, their flags follow. */
  list = messages (f->folder, 1, 300);
  for (guint i = 0; i < list->len; i++)
    ((LbStoreMessage *) g_ptr_array_index (list, i))->flags = LB_MESSAGE_FLAG_SEEN;
  g_assert_true (add_many (f->writer, list, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE "
                                                "message_id LIKE 'batch-%'"), ==, 300);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT unread FROM folders WHERE name = 'INBOX' "
                                                "AND account_id = 'acct'"), ==, 0);

  /* Nothing at all is fine too. */
  g_assert_true (add_many (f->writer, g_ptr_array_new (), NULL, &error));
  g_assert_no_error (error);
}

/* One message that cannot be added (its folder does not exist) fails alone: the job says
 * so, and the others are in. A cancelled job adds nothing. */
static void
test_add_many_failures (Fixture       *f,
                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  GPtrArray *list = messages (f->folder, 1, 10);

  g_ptr_array_insert (list, 5, message (f->folder + 1000, 99));
  g_assert_false (add_many (f->writer, list, NULL, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE "
                                                "message_id LIKE 'batch-%'"), ==, 10);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE uid = 99"),
                   ==, 0);

  g_cancellable_cancel (cancellable);
  g_assert_false (add_many (f->writer, messages (f->folder, 11, 20), cancellable, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE "
                                                "message_id LIKE 'batch-%'"), ==, 10);
}

/* lb_store_message_from_bytes_full() computes only the parts asked for, and the rest the
 * same as lb_store_message_from_bytes(). */
static void
test_message_parts (void)
{
  static const char raw[] =
    "From: =?UTF-8?Q?J=C3=B6rg?= <joerg@example.org>\r\n"
    "To: Team: a@example.org, Bee <b@example.org>;, c@example.org\r\n"
    "Cc: d@example.org\r\n"
    "Subject: Re: the plan\r\n"
    "Date: Tue, 2 Jan 2024 09:30:00 +0100\r\n"
    "Message-ID: <parts@example.org>\r\n"
    "In-Reply-To: <plan@example.org>\r\n"
    "References: <start@example.org>\r\n <plan@example.org>\r\n"
    "\r\n"
    "Sounds good, word-in-the-body.\r\n";
  g_autoptr(GBytes) bytes = g_bytes_new_static (raw, sizeof raw - 1);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStoreMessage) all = lb_store_message_from_bytes (bytes, 7, &error);
  g_autoptr(LbStoreMessage) none = NULL;
  g_autoptr(LbStoreMessage) text = NULL;
  g_autoptr(LbStoreMessage) key = NULL;

  g_assert_no_error (error);
  none = lb_store_message_from_bytes_full (bytes, 7, LB_STORE_MESSAGE_SUMMARY, &error);
  g_assert_no_error (error);
  text = lb_store_message_from_bytes_full (bytes, 7, LB_STORE_MESSAGE_BODY_TEXT, &error);
  g_assert_no_error (error);
  key = lb_store_message_from_bytes_full (bytes, 7, LB_STORE_MESSAGE_IMPORT_KEY, &error);
  g_assert_no_error (error);

  g_assert_null (none->body_text);
  g_assert_null (none->import_key);
  g_assert_nonnull (strstr (text->body_text, "word-in-the-body"));
  g_assert_null (text->import_key);
  g_assert_null (key->body_text);
  g_assert_cmpstr (key->import_key, ==, all->import_key);
  g_assert_cmpstr (text->body_text, ==, all->body_text);
  for (guint i = 0; i < 3; i++)
    {
      LbStoreMessage *m = (LbStoreMessage *[]) { none, text, key }[i];

      g_assert_cmpint (m->folder_id, ==, 7);
      g_assert_cmpstr (m->sender, ==, all->sender);
      g_assert_cmpstr (m->sender, ==, "Jörg");
      g_assert_cmpstr (m->sender_address, ==, all->sender_address);
      g_assert_cmpstr (m->recipients, ==, all->recipients);
      g_assert_cmpstr (m->subject, ==, all->subject);
      g_assert_cmpstr (m->preview, ==, all->preview);
      g_assert_cmpstr (m->message_id, ==, "parts@example.org");
      g_assert_cmpstr (m->in_reply_to, ==, "plan@example.org");
      g_assert_cmpstrv (m->references, all->references);
      g_assert_cmpint (m->date, ==, all->date);
      g_assert_cmpint (m->has_attachment, ==, all->has_attachment);
      g_assert_cmpuint (m->size, ==, all->size);
    }
}

static gint64
add_with_body (LbStoreWriter *writer,
               gint64         folder,
               guint32        uid)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *text = g_strdup_printf ("Subject: body %u\r\n\r\nBody %u.\r\n", uid, uid);
  g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_data (g_strdup (text),
                                                                        (gssize) strlen (text),
                                                                        g_free);
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_add_async (writer, message (folder, uid), stream, (goffset) strlen (text),
                             NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_add_finish (writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpint (id, >, 0);
  return id;
}

static gboolean
delete_row (sqlite3  *db,
            gpointer  data,
            GError  **error)
{
  char *sql = sqlite3_mprintf ("DELETE FROM messages WHERE id = %lld",
                               (long long) *(gint64 *) data);
  int rc = sqlite3_exec (db, sql, NULL, NULL, NULL);

  sqlite3_free (sql);
  return rc == SQLITE_OK;
}

static void
exec_job (LbStoreWriter     *writer,
          LbStoreWriterFunc  func,
          gpointer           data)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_store_writer_exec_async (writer, func, data, NULL, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_exec_finish (writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
delete_message (LbStoreWriter *writer,
                gint64         id)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_store_writer_delete_async (writer, id, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_delete_finish (writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
reopen (Fixture *f)
{
  g_autoptr(GError) error = NULL;

  g_clear_object (&f->writer);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
}

/* A writer that closes cleanly marks its bodies database so (1 + its highest body id);
 * while a writer has it open — and so after a crash — the mark is negative, and the next
 * writer looks for bodies nobody refers to. */
static void
test_bodies_clean_close (Fixture       *f,
                         gconstpointer  data)
{
  gint64 first = add_with_body (f->writer, f->folder, 1);
  gint64 second = add_with_body (f->writer, f->folder, 2);

  g_assert_cmpint (first, >, 0);
  g_assert_cmpint (second, >, 0);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), <, 0);
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), ==,
                   sql_int (f->dir, "bodies/acct.db", "SELECT max(id) FROM bodies") + 1);

  /* Open again: not clean until closed again, even with nothing written. */
  reopen (f);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), <, 0);
  /* A message the writer deletes takes its body along: still clean at the end. */
  delete_message (f->writer, first);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 1);
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), ==,
                   sql_int (f->dir, "bodies/acct.db", "SELECT max(id) FROM bodies") + 1);
  reopen (f);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 1);
}

/* The caller's own SQL (as sync's removal of a folder the server no longer has) deleting a
 * message with a body leaves the body for the next writer to remove: the database is not
 * marked clean, and the next writer removes it. */
static void
test_bodies_exec_orphan (Fixture       *f,
                         gconstpointer  data)
{
  gint64 kept = add_with_body (f->writer, f->folder, 1);
  gint64 gone = add_with_body (f->writer, f->folder, 2);

  exec_job (f->writer, delete_row, &gone);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 2);
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), <, 0);

  reopen (f);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 1);
  {
    g_autoptr(GError) error = NULL;
    g_autoptr(GInputStream) in = lb_store_open_body (f->store, kept, &error);

    g_assert_no_error (error);
    g_assert_nonnull (in);
  }
  /* That writer found nothing more to leave behind. */
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), >, 0);
}

/* What a writer did not see for itself it does not vouch for: a body another connection
 * added while it had the database open, or a second writer that opened it meanwhile. */
static void
test_bodies_others (Fixture       *f,
                    gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = lb_store_bodies_path (f->dir, "acct");
  g_autoptr(LbStoreWriter) second = NULL;
  sqlite3 *db;

  add_with_body (f->writer, f->folder, 1);
  db = lb_store_bodies_open (path, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (db, "INSERT INTO bodies (size, data) VALUES (3, x'616263')", NULL,
                                 NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), <, 0);
  reopen (f);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 1);

  second = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  lb_store_writer_close (f->writer);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), <, 0);
  lb_store_writer_close (second);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "PRAGMA user_version"), ==,
                   sql_int (f->dir, "bodies/acct.db", "SELECT max(id) FROM bodies") + 1);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();

  g_test_add ("/store/batch/add-many", Fixture, NULL, fixture_set_up, test_add_many,
              fixture_tear_down);
  g_test_add ("/store/batch/add-many-failures", Fixture, NULL, fixture_set_up,
              test_add_many_failures, fixture_tear_down);
  g_test_add_func ("/store/batch/message-parts", test_message_parts);
  g_test_add ("/store/batch/bodies-clean-close", Fixture, NULL, fixture_set_up,
              test_bodies_clean_close, fixture_tear_down);
  g_test_add ("/store/batch/bodies-exec-orphan", Fixture, NULL, fixture_set_up,
              test_bodies_exec_orphan, fixture_tear_down);
  g_test_add ("/store/batch/bodies-others", Fixture, NULL, fixture_set_up, test_bodies_others,
              fixture_tear_down);

  return g_test_run ();
}
