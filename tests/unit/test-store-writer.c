/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-search-query.h"
#include "lb-store.h"
#include "lb-store-bodies.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"

/* The store's writer: messages with their bodies committed in batches, read back as
 * streams; duplicates by UID and by import key; threads joined and merged as messages
 * arrive; flags, counts and deletion; bodies a crash left behind; and a store made by
 * schema 1 upgraded with its messages intact. */

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

  f->dir = g_dir_make_tmp ("lb-writer-XXXXXX", &error);
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

static LbStoreMessage *
message (gint64      folder,
         guint32     uid,
         const char *subject,
         const char *message_id,
         const char *in_reply_to,
         const char *references)
{
  LbStoreMessage *m = lb_store_message_new ();

  m->folder_id = folder;
  m->uid = uid;
  m->subject = g_strdup (subject);
  m->sender = g_strdup ("Alice Example");
  m->sender_address = g_strdup ("alice@example.org");
  m->recipients = g_strdup ("Bob <bob@example.org>");
  m->preview = g_strdup ("A preview");
  m->message_id = g_strdup (message_id);
  m->in_reply_to = g_strdup (in_reply_to);
  m->references = references != NULL ? g_strsplit (references, " ", -1) : NULL;
  m->date = 1700000000 + uid;
  return m;
}

static GBytes *
body_for (guint n)
{
  char *text = g_strdup_printf ("From: alice@example.org\r\nSubject: message %u\r\n\r\n"
                                "Body of message number %u.\r\n", n, n);

  return g_bytes_new_take (text, strlen (text));
}

static gint64
add (LbStoreWriter   *writer,
     LbStoreMessage  *m,
     GBytes          *body,
     GError         **error)
{
  g_autoptr(GInputStream) stream = body != NULL ? g_memory_input_stream_new_from_bytes (body) : NULL;
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_add_async (writer, m, stream, body != NULL ? (goffset) g_bytes_get_size (body) : 0,
                             NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_add_finish (writer, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return id;
}

static GBytes *
read_body (LbStore  *store,
           gint64    id,
           GError  **error)
{
  g_autoptr(GInputStream) in = lb_store_open_body (store, id, error);
  g_autoptr(GOutputStream) out = NULL;

  if (in == NULL)
    return NULL;
  out = g_memory_output_stream_new_resizable ();
  g_assert_cmpint (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL,
                                           error), >=, 0);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
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
  /* The writer may be checkpointing: wait for its lock, as the store's readers do. */
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &s, NULL), ==, SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    v = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return v;
}

typedef struct
{
  guint pending;
  guint failed;
} Many;

static void
many_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Many *many = user_data;
  g_autoptr(GError) error = NULL;

  if (lb_store_writer_add_finish (LB_STORE_WRITER (object), result, &error) <= 0)
    many->failed++;
  many->pending--;
}

static gboolean
many_done (gpointer user_data)
{
  return ((Many *) user_data)->pending == 0;
}

/* A thousand messages queued at once are committed in a few batches; each one's body
 * reads back exactly, and the folder's counters agree. */
static void
test_batch (Fixture       *f,
            gconstpointer  data)
{
  Many many = { 0 };
  g_autoptr(GPtrArray) page = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GError) error = NULL;
  guint n = 1000;

  for (guint i = 1; i <= n; i++)
    {
      g_autoptr(GBytes) body = body_for (i);
      g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);
      g_autofree char *subject = g_strdup_printf ("message %u", i);
      g_autofree char *mid = g_strdup_printf ("m%u@example.org", i);

      many.pending++;
      lb_store_writer_add_async (f->writer, message (f->folder, i, subject, mid, NULL, NULL),
                                 stream, (goffset) g_bytes_get_size (body), NULL, many_cb, &many);
    }
  g_assert_true (lb_test_wait_until (many_done, &many, 60000));
  g_assert_cmpuint (many.failed, ==, 0);
  g_test_message ("%u messages in %" G_GUINT64_FORMAT " commits", n,
                  lb_store_writer_get_commits (f->writer));
  /* One commit for the folder, then batches of up to 512. */
  g_assert_cmpuint (lb_store_writer_get_commits (f->writer), <, 20);

  page = lb_store_list_messages (f->store, f->folder, 0, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (page->len, ==, 10);
  g_assert_cmpstr (lb_message_summary_get_subject (g_ptr_array_index (page, 0)), ==, "message 1000");
  for (guint i = 0; i < page->len; i++)
    {
      LbMessageSummary *s = g_ptr_array_index (page, i);
      guint number = (guint) g_ascii_strtoull (lb_message_summary_get_subject (s) + 8, NULL, 10);
      g_autoptr(GBytes) expected = body_for (number);
      g_autoptr(GBytes) stored = read_body (f->store, lb_message_summary_get_id (s), &error);

      g_assert_no_error (error);
      g_assert_true (g_bytes_equal (stored, expected));
    }

  folders = lb_store_list_folders (f->store, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < folders->len; i++)
    if (lb_folder_get_id (g_ptr_array_index (folders, i)) == f->folder)
      {
        g_assert_cmpuint (lb_folder_get_total (g_ptr_array_index (folders, i)), ==, n);
        g_assert_cmpuint (lb_folder_get_unread (g_ptr_array_index (folders, i)), ==, n);
      }
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, n);
}

/* The same UID twice is one message (flags updated); so is the same import key. */
static void
test_duplicates (Fixture       *f,
                 gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = body_for (7);
  LbStoreMessage *again = message (f->folder, 7, "seven", "seven@example.org", NULL, NULL);
  LbStoreMessage *imported;
  gint64 first, second, third, fourth;

  first = add (f->writer, message (f->folder, 7, "seven", "seven@example.org", NULL, NULL), NULL,
               &error);
  g_assert_no_error (error);
  again->flags = LB_MESSAGE_FLAG_SEEN;
  /* The body arrives later (headers first, bodies after): it completes the row. */
  second = add (f->writer, again, body, &error);
  g_assert_no_error (error);
  g_assert_cmpint (first, ==, second);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE uid = 7"), ==, 1);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT flags FROM messages WHERE uid = 7"), ==,
                   LB_MESSAGE_FLAG_SEEN);
  {
    g_autoptr(GBytes) stored = read_body (f->store, first, &error);

    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (stored, body));
  }

  imported = message (f->folder, 0, "imported", NULL, NULL, NULL);
  imported->import_key = g_strdup ("sha1:abc");
  third = add (f->writer, imported, body, &error);
  g_assert_no_error (error);
  imported = message (f->folder, 0, "imported", NULL, NULL, NULL);
  imported->import_key = g_strdup ("sha1:abc");
  fourth = add (f->writer, imported, body, &error);
  g_assert_no_error (error);
  g_assert_cmpint (third, ==, fourth);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages"), ==, 3);
  /* The second copy's body was not kept. */
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 2);
}

static gint64
thread_of (Fixture *f,
           gint64   id)
{
  g_autofree char *sql = g_strdup_printf ("SELECT thread_id FROM messages WHERE id = %" G_GINT64_FORMAT, id);

  return sql_int (f->dir, "index.db", sql);
}

/* Threads by references, in any order of arrival; merged when a message links two; a
 * reply without references joins by subject; different subjects stay apart. */
static void
test_threads (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) thread = NULL;
  gint64 sent = ensure_folder (f->writer, "acct", "Sent");
  gint64 a, b, c, d, e, x, y, z, other;

  a = add (f->writer, message (f->folder, 1, "Plans", "a@x", NULL, NULL), NULL, &error);
  /* The reply is in Sent: threads span folders. */
  b = add (f->writer, message (sent, 1, "Re: Plans", "b@x", "a@x", "a@x"), NULL, &error);
  c = add (f->writer, message (f->folder, 2, "Re: Plans", "c@x", "b@x", "a@x b@x"), NULL, &error);
  d = add (f->writer, message (f->folder, 3, "Lunch?", "d@x", NULL, NULL), NULL, &error);
  e = add (f->writer, message (f->folder, 4, "RE: lunch?", "e@x", NULL, NULL), NULL, &error);
  other = add (f->writer, message (f->folder, 5, "Lunch menu", "o@x", NULL, NULL), NULL, &error);
  g_assert_no_error (error);

  g_assert_cmpint (thread_of (f, a), ==, thread_of (f, b));
  g_assert_cmpint (thread_of (f, a), ==, thread_of (f, c));
  g_assert_cmpint (thread_of (f, d), ==, thread_of (f, e));
  g_assert_cmpint (thread_of (f, a), !=, thread_of (f, d));
  g_assert_cmpint (thread_of (f, other), !=, thread_of (f, d));

  /* x names y before y arrives; z names x and c: three threads become one. */
  x = add (f->writer, message (f->folder, 10, "Another", "x@x", "y@x", "y@x"), NULL, &error);
  y = add (f->writer, message (f->folder, 11, "Another", "y@x", NULL, NULL), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (thread_of (f, x), ==, thread_of (f, y));
  z = add (f->writer, message (f->folder, 12, "Re: both", "z@x", "x@x", "c@x x@x"), NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (thread_of (f, z), ==, thread_of (f, a));
  g_assert_cmpint (thread_of (f, y), ==, thread_of (f, a));

  thread = lb_store_list_thread (f->store, c, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (thread->len, ==, 6);
  /* Oldest first (dates follow the UIDs here). */
  g_assert_cmpstr (lb_message_summary_get_subject (g_ptr_array_index (thread, 0)), ==, "Plans");
}

static void
test_base_subject (void)
{
  static const char *const cases[][2] = {
    { "Re: Plans", "plans" },
    { "RE: re: Fwd:  Plans  for   May", "plans for may" },
    { "Aw: Sv: Re[2]: x", "x" },
    { "Re(3): x", "x" },
    { "Reply to all", "reply to all" },
    { "  ", "" },
    { "Über", "über" },
  };

  for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
    {
      g_autofree char *base = lb_store_base_subject (cases[i][0]);

      g_assert_cmpstr (base, ==, cases[i][1]);
    }
}

static gboolean
set_flags (LbStoreWriter   *writer,
           gint64           id,
           LbMessageFlags   set,
           LbMessageFlags   clear,
           GError         **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_store_writer_set_flags_async (writer, id, set, clear, NULL, lb_test_wait_cb, &w);
  ok = lb_store_writer_set_flags_finish (writer, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
delete (LbStoreWriter  *writer,
        gint64          id,
        GError        **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_store_writer_delete_async (writer, id, NULL, lb_test_wait_cb, &w);
  ok = lb_store_writer_delete_finish (writer, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static guint
unread (Fixture *f)
{
  g_autofree char *sql = g_strdup_printf ("SELECT unread FROM folders WHERE id = %" G_GINT64_FORMAT,
                                          f->folder);

  return (guint) sql_int (f->dir, "index.db", sql);
}

/* Flags move the unread counter; deleting removes the row, its search entry and its
 * body; unknown ids are clear errors. */
static void
test_flags_and_delete (Fixture       *f,
                       gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = body_for (1);
  gint64 id = add (f->writer, message (f->folder, 1, "one", "one@x", NULL, NULL), body, &error);
  gint64 two = add (f->writer, message (f->folder, 2, "two", "two@x", NULL, NULL), NULL, &error);

  g_assert_no_error (error);
  g_assert_cmpuint (unread (f), ==, 2);
  g_assert_true (set_flags (f->writer, id, LB_MESSAGE_FLAG_SEEN | LB_MESSAGE_FLAG_FLAGGED, 0,
                            &error));
  g_assert_cmpuint (unread (f), ==, 1);
  g_assert_true (set_flags (f->writer, id, 0, LB_MESSAGE_FLAG_SEEN, &error));
  g_assert_cmpuint (unread (f), ==, 2);
  g_assert_false (set_flags (f->writer, 999999, LB_MESSAGE_FLAG_SEEN, 0, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A message without its body yet says so. */
  g_assert_null (read_body (f->store, two, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  g_assert_true (delete (f->writer, id, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unread (f), ==, 1);
  g_assert_null (read_body (f->store, id, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 0);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages_fts WHERE "
                                                "messages_fts MATCH 'one'"), ==, 0);
  g_assert_false (delete (f->writer, id, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
}

/* A stream shorter or longer than announced: an error, and nothing of it is kept. */
static void
test_body_size_mismatch (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GBytes) body = body_for (3);
  g_autoptr(GError) error = NULL;

  for (int delta = -1; delta <= 1; delta += 2)
    {
      g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);
      LbTestWait w = { 0 };
      gint64 id;

      lb_store_writer_add_async (f->writer, message (f->folder, 3, "x", "x@x", NULL, NULL), stream,
                                 (goffset) g_bytes_get_size (body) + delta, NULL, lb_test_wait_cb, &w);
      id = lb_store_writer_add_finish (f->writer, lb_test_wait_result (&w), &error);
      g_object_unref (w.result);
      g_assert_cmpint (id, ==, 0);
      g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO);
      g_clear_error (&error);
    }
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages WHERE uid = 3"), ==, 0);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 0);
}

/* A body committed without its index row (a crash between the two commits) is removed
 * when the next writer starts; bodies that are referred to stay. */
static void
test_orphans (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = body_for (1);
  g_autofree char *path = lb_store_bodies_path (f->dir, "acct");
  gint64 id = add (f->writer, message (f->folder, 1, "kept", "k@x", NULL, NULL), body, &error);
  sqlite3 *db;

  g_assert_no_error (error);
  /* Closed (its thread joined) before the body is planted: a writer still closing could
   * mark the database clean with the planted body in it. */
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  db = lb_store_bodies_open (path, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sqlite3_exec (db, "INSERT INTO bodies (size, data) VALUES (3, x'616263')", NULL,
                                 NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 2);

  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 1);
  {
    g_autoptr(GBytes) stored = read_body (f->store, id, &error);

    g_assert_no_error (error);
    g_assert_true (g_bytes_equal (stored, body));
  }
}

static char *
search_subjects (LbStore    *store,
                 const char *query)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) found = lb_store_search (store, query, 0, 50, &error);
  g_autoptr(GString) out = g_string_new (NULL);

  g_assert_no_error (error);
  for (guint i = 0; i < found->len; i++)
    g_string_append_printf (out, "%s%s", i > 0 ? "," : "",
                            lb_message_summary_get_subject (g_ptr_array_index (found, i)));
  return g_string_free (g_steal_pointer (&out), FALSE);
}

/* Full-text search with the structured terms, newest first, paged. */
static void
test_search (Fixture       *f,
             gconstpointer  data)
{
  static const struct
  {
    const char *subject, *sender, *address, *recipients, *body;
    gint64 date;
    LbMessageFlags flags;
    gboolean attachment;
  } rows[] = {
    { "s1", "Alice Example", "alice@example.org", "bob@example.org", "Meeting notes from Zürich",
      1704067200 /* 2024-01-01 */, LB_MESSAGE_FLAG_SEEN, FALSE },
    { "s2", "Bob Builder", "bob@example.org", "alice@example.org", "The quarterly report is attached",
      1706745600 /* 2024-02-01 */, 0, TRUE },
    { "s3", "Carol", "carol@example.net", "alice@example.org", "Lunch at noon? Meeting later",
      1709251200 /* 2024-03-01 */, LB_MESSAGE_FLAG_FLAGGED, FALSE },
  };
  g_autoptr(GError) error = NULL;
  gint64 archive = ensure_folder (f->writer, "acct", "Archive");

  /* Only these rows: the welcome message goes (it is found like any other). */
  {
    g_autoptr(GPtrArray) welcome = lb_store_search (f->store, "subject:welcome", 0, 10, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (welcome->len, ==, 1);
    g_assert_true (delete (f->writer, lb_message_summary_get_id (g_ptr_array_index (welcome, 0)),
                           &error));
    g_assert_no_error (error);
  }

  for (guint i = 0; i < G_N_ELEMENTS (rows); i++)
    {
      LbStoreMessage *m = message (i == 2 ? archive : f->folder, i + 1, rows[i].subject, NULL, NULL,
                                   NULL);

      g_free (m->sender);
      m->sender = g_strdup (rows[i].sender);
      g_free (m->sender_address);
      m->sender_address = g_strdup (rows[i].address);
      g_free (m->recipients);
      m->recipients = g_strdup (rows[i].recipients);
      m->body_text = g_strdup (rows[i].body);
      m->date = rows[i].date;
      m->flags = rows[i].flags;
      m->has_attachment = rows[i].attachment;
      add (f->writer, m, NULL, &error);
      g_assert_no_error (error);
    }

  {
    static const char *const cases[][2] = {
      { "meet", "s3,s1" },                     /* prefix, newest first */
      { "zurich", "s1" },                      /* diacritics folded */
      { "\"quarterly report\"", "s2" },
      { "\"report quarterly\"", "" },
      { "from:alice", "s1" },
      { "from:bob@example.org", "s2" },
      { "to:alice", "s3,s2" },
      { "meeting -lunch", "s1" },
      { "lunch OR quarterly", "s3,s2" },
      { "is:unread", "s3,s2" },
      { "is:flagged", "s3" },
      { "has:attachment", "s2" },
      { "folder:archive", "s3" },
      { "in:INBOX meeting", "s1" },
      { "after:2024-01-15", "s3,s2" },
      { "before:2024-02-01", "s1" },
      { "date:2024-02", "s2" },
      { "nothingmatches", "" },
      { "", "s3,s2,s1" },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_autofree char *got = search_subjects (f->store, cases[i][0]);

        if (g_strcmp0 (got, cases[i][1]) != 0)
          g_error ("search “%s”: got “%s”, expected “%s”", cases[i][0], got, cases[i][1]);
      }
  }

  /* Paged. */
  {
    g_autoptr(GPtrArray) page = lb_store_search (f->store, "", 1, 1, &error);

    g_assert_no_error (error);
    g_assert_cmpuint (page->len, ==, 1);
    g_assert_cmpstr (lb_message_summary_get_subject (g_ptr_array_index (page, 0)), ==, "s2");
  }
  /* A query to correct is a clear error. */
  g_assert_null (lb_store_search (f->store, "before:2024-13-45", 0, 10, &error));
  g_assert_true (error != NULL && error->domain == LB_SEARCH_QUERY_ERROR);
}

typedef struct
{
  char *dir;
  gint64 folder;
  gint stop;
  gint reads;             /* atomic */
  gint done;              /* atomic: the thread has ended (failure set, or stopped) */
  guint last_total;
  char *failure;
  gint seen;              /* the test's: reads at its last check */
} Reader;

/* The reader has read again since the last check, or has given up. */
static gboolean
reader_progressed (gpointer data)
{
  Reader *r = data;
  gint reads = g_atomic_int_get (&r->reads);

  if (reads > r->seen || g_atomic_int_get (&r->done))
    {
      r->seen = reads;
      return TRUE;
    }
  return FALSE;
}

/* Another process's view (a second LbStore, as the app has): pages and searches while
 * the writer commits, never an error, never fewer messages than before. */
static void reader_loop (Reader *r);

static gpointer
reader_thread (gpointer data)
{
  Reader *r = data;

  reader_loop (r);
  g_atomic_int_set (&r->done, 1);
  return NULL;
}

static void
reader_loop (Reader *r)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (r->dir, &error);

  if (store == NULL)
    {
      r->failure = g_strdup (error->message);
      return;
    }
  while (!g_atomic_int_get (&r->stop))
    {
      g_autoptr(GPtrArray) page = lb_store_list_messages (store, r->folder, 0, 50, &error);
      g_autoptr(GPtrArray) folders = NULL;
      g_autoptr(GPtrArray) found = NULL;

      if (page == NULL || (folders = lb_store_list_folders (store, &error)) == NULL ||
          (found = lb_store_search (store, "message", 0, 20, &error)) == NULL)
        {
          r->failure = g_strdup (error->message);
          return;
        }
      for (guint i = 0; i < folders->len; i++)
        if (lb_folder_get_id (g_ptr_array_index (folders, i)) == r->folder)
          {
            guint total = lb_folder_get_total (g_ptr_array_index (folders, i));

            if (total < r->last_total)
              {
                r->failure = g_strdup_printf ("the count went back from %u to %u", r->last_total,
                                              total);
                return;
              }
            r->last_total = total;
          }
      g_atomic_int_inc (&r->reads);
    }
}

static void
test_concurrent_reader (Fixture       *f,
                        gconstpointer  data)
{
  Reader reader = { f->dir, f->folder, 0, 0, 0, 0, NULL, 0 };
  GThread *thread = g_thread_new ("reader", reader_thread, &reader);
  Many many = { 0 };

  for (guint i = 1; i <= 2000; i++)
    {
      g_autoptr(GBytes) body = body_for (i);
      g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);
      g_autofree char *subject = g_strdup_printf ("message %u", i);

      many.pending++;
      lb_store_writer_add_async (f->writer, message (f->folder, i, subject, NULL, NULL, NULL),
                                 stream, (goffset) g_bytes_get_size (body), NULL, many_cb, &many);
      /* Commits one after the other, and the reader reads between them: every 100
       * messages it must have read again (a busy machine can hold a thread back). */
      if (i % 100 == 0)
        {
          g_assert_true (lb_test_wait_until (many_done, &many, 60000));
          g_assert_true (lb_test_wait_until (reader_progressed, &reader, 60000));
        }
    }
  g_assert_true (lb_test_wait_until (many_done, &many, 60000));
  g_atomic_int_set (&reader.stop, 1);
  g_thread_join (thread);
  g_assert_null (reader.failure);
  g_assert_cmpuint (many.failed, ==, 0);
  g_test_message ("%d reads during the import; last count %u", reader.reads, reader.last_total);
  g_assert_cmpint (reader.reads, >=, 20);
}

/* A 50 MB message goes in from a file and comes back out as a stream, neither time
 * whole in memory (incremental blob I/O), byte for byte. */
static void
test_big_body (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = g_build_filename (f->dir, "big.eml", NULL);
  g_autoptr(GChecksum) written = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GChecksum) read = g_checksum_new (G_CHECKSUM_SHA256);
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GFileOutputStream) out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL,
                                                     &error);
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GInputStream) body = NULL;
  g_autofree guint8 *chunk = g_malloc (64 * 1024);
  goffset size = 0;
  glong before, after;
  gint64 id;
  gsize n;

  g_assert_no_error (error);
  for (guint i = 0; i < 800; i++)
    {
      for (gsize j = 0; j < 64 * 1024; j++)
        chunk[j] = (guint8) ('a' + (i * 31 + j) % 26);
      chunk[64 * 1024 - 1] = '\n';
      g_output_stream_write_all (G_OUTPUT_STREAM (out), chunk, 64 * 1024, NULL, NULL, &error);
      g_assert_no_error (error);
      g_checksum_update (written, chunk, 64 * 1024);
      size += 64 * 1024;
    }
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&chunk, g_free);

  in = g_file_read (file, NULL, &error);
  g_assert_no_error (error);
  before = lb_test_peak_rss_reset ();
  {
    LbTestWait w = { 0 };

    lb_store_writer_add_async (f->writer, message (f->folder, 1, "big", "big@x", NULL, NULL),
                               G_INPUT_STREAM (in), size, NULL, lb_test_wait_cb, &w);
    id = lb_store_writer_add_finish (f->writer, lb_test_wait_result (&w), &error);
    g_object_unref (w.result);
  }
  g_assert_no_error (error);
  body = lb_store_open_body (f->store, id, &error);
  g_assert_no_error (error);
  chunk = g_malloc (64 * 1024);
  while ((n = (gsize) g_input_stream_read (body, chunk, 64 * 1024, NULL, &error)) > 0)
    g_checksum_update (read, chunk, (gssize) n);
  g_assert_no_error (error);
  after = lb_test_peak_rss_kb ();
  g_test_message ("%lld bytes stored and read back; peak RSS %ld kB before, %ld kB after",
                  (long long) size, before, after);
  g_assert_cmpstr (g_checksum_get_string (read), ==, g_checksum_get_string (written));
#ifndef __SANITIZE_ADDRESS__
  /* SQLite's page caches (64 MB allowed to the writer) bound what the process keeps; a
   * body held whole would add 50 MB on top. */
  g_assert_cmpint (after - before, <, 40 * 1024);
#else
  (void) before;
#endif
}

/* Schema 1, as the first release wrote it, with a message in it. */
static const char schema_1[] =
  "CREATE TABLE accounts (id TEXT PRIMARY KEY, kind TEXT NOT NULL CHECK (kind IN ('local', "
  "'imap', 'pop3')), display_name TEXT NOT NULL, sort_order INTEGER NOT NULL DEFAULT 0);"
  "CREATE TABLE folders (id INTEGER PRIMARY KEY, account_id TEXT NOT NULL REFERENCES accounts "
  "(id) ON DELETE CASCADE, parent_id INTEGER REFERENCES folders (id) ON DELETE CASCADE, name "
  "TEXT NOT NULL, role TEXT, uidvalidity INTEGER, uidnext INTEGER, highestmodseq INTEGER, "
  "UNIQUE (account_id, name));"
  "CREATE TABLE messages (id INTEGER PRIMARY KEY, folder_id INTEGER NOT NULL REFERENCES "
  "folders (id) ON DELETE CASCADE, uid INTEGER, flags INTEGER NOT NULL DEFAULT 0, date "
  "INTEGER NOT NULL, sender TEXT NOT NULL DEFAULT '', subject TEXT NOT NULL DEFAULT '', "
  "preview TEXT NOT NULL DEFAULT '', size INTEGER NOT NULL DEFAULT 0, message_id TEXT);"
  "CREATE INDEX messages_by_folder_date ON messages (folder_id, date DESC, id DESC);"
  "INSERT INTO accounts VALUES ('local', 'local', 'Local Folders', -1);"
  "INSERT INTO folders (id, account_id, name, role) VALUES (1, 'local', 'Inbox', 'inbox'),"
  "  (2, 'local', 'Drafts', 'drafts'), (3, 'local', 'Sent', 'sent'), (4, 'local', 'Trash', 'trash');"
  "INSERT INTO messages (folder_id, flags, date, sender, subject, preview) VALUES"
  "  (1, 0, 1600000000, 'Letterbox', 'Welcome to Letterbox', 'hello'),"
  "  (1, 1, 1600000001, 'Carol', 'Quarterly figures', 'numbers inside');"
  "PRAGMA user_version = 1;";

static void
test_upgrade_from_1 (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-upgrade-XXXXXX", &error);
  g_autofree char *path = g_build_filename (dir, "index.db", NULL);
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, schema_1, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  store = lb_store_open (dir, &error);
  g_assert_no_error (error);
  g_assert_cmpint (sql_int (dir, "index.db", "PRAGMA user_version"), ==, lb_store_schema_version ());
  folders = lb_store_list_folders (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lb_folder_get_total (g_ptr_array_index (folders, 0)), ==, 2);
  g_assert_cmpuint (lb_folder_get_unread (g_ptr_array_index (folders, 0)), ==, 1);
  /* The old messages are searchable and each has a thread. */
  g_assert_cmpint (sql_int (dir, "index.db", "SELECT count(*) FROM messages_fts WHERE "
                                             "messages_fts MATCH 'quarterly'"), ==, 1);
  g_assert_cmpint (sql_int (dir, "index.db", "SELECT count(*) FROM messages WHERE thread_id IS NULL"),
                   ==, 0);
  /* No second welcome message. */
  g_assert_cmpint (sql_int (dir, "index.db", "SELECT count(*) FROM messages"), ==, 2);
  g_clear_object (&store);
  lb_test_remove_tree (dir);
}

/* ---- offline operations and sync jobs ---- */

static gboolean
writer_op (LbStoreWriter *writer,
           int            op,
           gint64         id,
           gint64         arg,
           GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok = FALSE;

  switch (op)
    {
    case 0:
      lb_store_writer_change_flags_async (writer, id, (LbMessageFlags) (arg & 0xff),
                                          (LbMessageFlags) (arg >> 8), NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_change_flags_finish (writer, lb_test_wait_result (&w), error);
      break;
    case 1:
      lb_store_writer_move_async (writer, id, arg, NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_move_finish (writer, lb_test_wait_result (&w), error);
      break;
    case 2:
      lb_store_writer_expunge_async (writer, id, NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_expunge_finish (writer, lb_test_wait_result (&w), error);
      break;
    case 3:
      {
        guint32 uid = (guint32) arg;

        lb_store_writer_expunge_uids_async (writer, id, &uid, 1, NULL, lb_test_wait_cb, &w);
        ok = lb_store_writer_expunge_uids_finish (writer, lb_test_wait_result (&w), error);
      }
      break;
    case 4:
      lb_store_writer_flush_async (writer, NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_flush_finish (writer, lb_test_wait_result (&w), error);
      break;
    default:
      g_assert_not_reached ();
    }
  g_object_unref (w.result);
  return ok;
}

static char *
sql_text (const char *dir,
          const char *sql)
{
  g_autofree char *path = g_build_filename (dir, "index.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  GString *out = g_string_new (NULL);

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  /* The writer may be checkpointing: wait for its lock, as the store's readers do. */
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &s, NULL), ==, SQLITE_OK);
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      for (int c = 0; c < sqlite3_column_count (s); c++)
        g_string_append_printf (out, "%s%s", c > 0 ? "|" : (out->len > 0 ? "\n" : ""),
                                sqlite3_column_type (s, c) == SQLITE_NULL
                                  ? "NULL" : (const char *) sqlite3_column_text (s, c));
    }
  sqlite3_finalize (s);
  sqlite3_close (db);
  return g_string_free (out, FALSE);
}

/* Flag changes, moves and deletions happen in the store at once and leave a journal the
 * sync replays: changes to one message fold together, a move back cancels the move, a
 * deletion forgets what was pending and remembers where the server has the message. */
static void
test_offline_operations (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) body = body_for (1);
  gint64 archive = ensure_folder (f->writer, "acct", "Archive");
  gint64 id = add (f->writer, message (f->folder, 7, "one", "one@x", NULL, NULL), body, &error);
  gint64 two = add (f->writer, message (f->folder, 8, "two", "two@x", NULL, NULL), NULL, &error);
  g_autofree char *sql = NULL;
  g_autofree char *text = NULL;

  g_assert_no_error (error);
  /* +seen +flagged, then -flagged: one entry, set seen, clear flagged. */
  g_assert_true (writer_op (f->writer, 0, id, LB_MESSAGE_FLAG_SEEN | LB_MESSAGE_FLAG_FLAGGED,
                            &error));
  g_assert_true (writer_op (f->writer, 0, id, LB_MESSAGE_FLAG_FLAGGED << 8, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (unread (f), ==, 1);
  text = sql_text (f->dir, "SELECT kind, payload FROM journal ORDER BY id");
  g_assert_cmpstr (text, ==, "flags|(uint32 1, uint32 4)");
  g_clear_pointer (&text, g_free);

  /* Server flags do not overwrite a change that waits for replay. */
  add (f->writer, message (f->folder, 7, "one", "one@x", NULL, NULL), NULL, &error);
  g_assert_no_error (error);
  sql = g_strdup_printf ("SELECT flags FROM messages WHERE id = %" G_GINT64_FORMAT, id);
  g_assert_cmpint (sql_int (f->dir, "index.db", sql), ==, LB_MESSAGE_FLAG_SEEN);

  /* The server expunging it keeps it while the change is pending. */
  g_assert_true (writer_op (f->writer, 3, f->folder, 7, &error));
  g_assert_cmpint (sql_int (f->dir, "index.db", sql), ==, LB_MESSAGE_FLAG_SEEN);

  /* Move to Archive and back: no move is left, and the UID is the server's again. */
  g_assert_true (writer_op (f->writer, 1, id, archive, &error));
  g_clear_pointer (&text, g_free);
  text = sql_text (f->dir, "SELECT kind, payload FROM journal ORDER BY id");
  {
    g_autofree char *expected = g_strdup_printf ("flags|(uint32 1, uint32 4)\nmove|(int64 %"
                                                 G_GINT64_FORMAT ", uint32 7, int64 %"
                                                 G_GINT64_FORMAT ", 'one@x')", f->folder, archive);

    g_assert_cmpstr (text, ==, expected);
  }
  g_assert_true (writer_op (f->writer, 1, id, f->folder, &error));
  g_clear_pointer (&text, g_free);
  text = sql_text (f->dir, "SELECT m.uid, j.kind FROM messages m, journal j WHERE m.id = j.message_id");
  g_assert_cmpstr (text, ==, "7|flags");

  /* Moved, then deleted: the expunge is for where the server has it, nothing else left. */
  g_assert_true (writer_op (f->writer, 1, id, archive, &error));
  g_assert_true (writer_op (f->writer, 2, id, 0, &error));
  g_assert_no_error (error);
  g_clear_pointer (&text, g_free);
  text = sql_text (f->dir, "SELECT kind, folder_id, payload, message_id FROM journal ORDER BY id");
  {
    g_autofree char *expected = g_strdup_printf ("expunge|%" G_GINT64_FORMAT
                                                 "|(uint32 7, 'one@x')|NULL", f->folder);

    g_assert_cmpstr (text, ==, expected);
  }
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages m JOIN folders f "
                                                "ON f.id = m.folder_id WHERE account_id = 'acct'"), ==, 1);
  g_assert_cmpint (sql_int (f->dir, "bodies/acct.db", "SELECT count(*) FROM bodies"), ==, 0);
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages_fts WHERE "
                                                "messages_fts MATCH 'one'"), ==, 0);

  /* The server expunging a message with nothing pending removes it. */
  g_assert_true (writer_op (f->writer, 3, f->folder, 8, &error));
  g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM messages m JOIN folders f "
                                                "ON f.id = m.folder_id WHERE account_id = 'acct'"), ==, 0);
  g_assert_false (writer_op (f->writer, 1, two, archive, &error));
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
  g_clear_error (&error);

  /* A message moved offline is taken back by its server copy (same Message-ID) when the
   * destination syncs, instead of appearing twice. */
  {
    gint64 three = add (f->writer, message (f->folder, 9, "three", "three@x", NULL, NULL), NULL,
                        &error);
    LbStoreMessage *copy = message (archive, 30, "three", "three@x", NULL, NULL);
    gint64 adopted;

    g_assert_true (writer_op (f->writer, 1, three, archive, &error));
    adopted = add (f->writer, copy, NULL, &error);
    g_assert_no_error (error);
    g_assert_cmpint (adopted, ==, three);
    g_clear_pointer (&text, g_free);
    text = sql_text (f->dir, "SELECT folder_id, uid FROM messages WHERE message_id = 'three@x'");
    g_autofree char *expected = g_strdup_printf ("%" G_GINT64_FORMAT "|30", archive);

    g_assert_cmpstr (text, ==, expected);
  }

  /* The local account keeps no journal. */
  {
    gint64 local = 0;
    g_autoptr(GPtrArray) folders = lb_store_list_folders (f->store, &error);
    gint64 before = sql_int (f->dir, "index.db", "SELECT count(*) FROM journal");
    gint64 lid;

    for (guint i = 0; i < folders->len; i++)
      if (g_strcmp0 (lb_folder_get_account_id (g_ptr_array_index (folders, i)),
                     LB_STORE_LOCAL_ACCOUNT_ID) == 0 && local == 0)
        local = lb_folder_get_id (g_ptr_array_index (folders, i));
    g_assert_cmpint (local, >, 0);
    lid = add (f->writer, message (local, 0, "local", "local@x", NULL, NULL), NULL, &error);
    g_assert_true (writer_op (f->writer, 0, lid, LB_MESSAGE_FLAG_SEEN, &error));
    g_assert_true (writer_op (f->writer, 2, lid, 0, &error));
    g_assert_no_error (error);
    g_assert_cmpint (sql_int (f->dir, "index.db", "SELECT count(*) FROM journal"), ==, before);
  }

  g_assert_true (writer_op (f->writer, 4, 0, 0, &error));
  g_assert_no_error (error);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/store/writer/batch", Fixture, NULL, fixture_set_up, test_batch, fixture_tear_down);
  g_test_add ("/store/writer/duplicates", Fixture, NULL, fixture_set_up, test_duplicates,
              fixture_tear_down);
  g_test_add ("/store/writer/threads", Fixture, NULL, fixture_set_up, test_threads,
              fixture_tear_down);
  g_test_add_func ("/store/writer/base-subject", test_base_subject);
  g_test_add ("/store/writer/flags-and-delete", Fixture, NULL, fixture_set_up,
              test_flags_and_delete, fixture_tear_down);
  g_test_add ("/store/writer/body-size-mismatch", Fixture, NULL, fixture_set_up,
              test_body_size_mismatch, fixture_tear_down);
  g_test_add ("/store/writer/orphans", Fixture, NULL, fixture_set_up, test_orphans,
              fixture_tear_down);
  g_test_add_func ("/store/upgrade-from-1", test_upgrade_from_1);
  g_test_add ("/store/search", Fixture, NULL, fixture_set_up, test_search, fixture_tear_down);
  g_test_add ("/store/writer/big-body", Fixture, NULL, fixture_set_up, test_big_body,
              fixture_tear_down);
  g_test_add ("/store/writer/concurrent-reader", Fixture, NULL, fixture_set_up,
              test_concurrent_reader, fixture_tear_down);
  g_test_add ("/store/writer/offline-operations", Fixture, NULL, fixture_set_up,
              test_offline_operations, fixture_tear_down);

  return g_test_run ();
}
