/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-store.h"
#include "lb-store-import.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"

/* Import from mbox, Maildir and .eml; export as mbox and Maildir; run twice without
 * duplicates; round trips byte for byte; and notmuch reading what we exported. */

typedef struct
{
  char *dir;
  char *work;
  LbStore *store;
  LbStoreWriter *writer;
} Fixture;

static gint64
folder (Fixture    *f,
        const char *name)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_ensure_folder_async (f->writer, "local", "local", "Local Folders", name,
                                       LB_FOLDER_ROLE_NONE, NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_ensure_folder_finish (f->writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return id;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->work = g_dir_make_tmp ("lb-import-XXXXXX", &error);
  g_assert_no_error (error);
  f->dir = g_build_filename (f->work, "store", NULL);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_test_remove_tree (f->work);
  g_free (f->work);
  g_free (f->dir);
}

static LbStoreTransferResult
import (Fixture       *f,
        gint64         folder_id,
        const char    *path,
        LbStoreFormat  format,
        GError       **error)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  LbStoreTransferResult counts = { 0 };
  LbTestWait w = { 0 };

  lb_store_import_async (f->writer, folder_id, file, format, NULL, lb_test_wait_cb, &w);
  lb_store_import_finish (f->writer, lb_test_wait_result (&w), &counts, error);
  g_object_unref (w.result);
  return counts;
}

static LbStoreTransferResult
export (Fixture       *f,
        gint64         folder_id,
        const char    *path,
        LbStoreFormat  format)
{
  g_autoptr(GFile) file = g_file_new_for_path (path);
  g_autoptr(GError) error = NULL;
  LbStoreTransferResult counts = { 0 };
  LbTestWait w = { 0 };

  lb_store_export_async (f->store, folder_id, file, format, NULL, lb_test_wait_cb, &w);
  lb_store_export_finish (f->store, lb_test_wait_result (&w), &counts, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return counts;
}

static char *
sql_text (Fixture    *f,
          const char *sql)
{
  g_autofree char *path = g_build_filename (f->dir, "index.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  char *v = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  /* The writer may be checkpointing: wait for its lock, as the store's readers do. */
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &s, NULL), ==, SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    v = g_strdup ((const char *) sqlite3_column_text (s, 0));
  sqlite3_finalize (s);
  sqlite3_close (db);
  return v;
}

static GBytes *
body_of (Fixture    *f,
         const char *subject)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE subject = '%s' "
                                          "ORDER BY id LIMIT 1", subject);
  g_autofree char *id = sql_text (f, sql);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) in = NULL;
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_nonnull (id);
  in = lb_store_open_body (f->store, g_ascii_strtoll (id, NULL, 10), &error);
  g_assert_no_error (error);
  g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static const char mbox_text[] =
  "From alice@example.org Mon Jan  1 10:00:00 2024\n"
  "From: Alice <alice@example.org>\n"
  "To: bob@example.org\n"
  "Subject: Escapes\n"
  "Message-ID: <one@example.org>\n"
  "Date: Mon, 01 Jan 2024 10:00:00 +0000\n"
  "\n"
  ">From here on, a line that once began with From.\n"
  ">>From two levels.\n"
  "> From is a quote, left alone.\n"
  "\n"
  "From bob@example.org Tue Jan  2 10:00:00 2024\n"
  "From: =?UTF-8?B?QsO2Yg==?= <bob@example.org>\n"
  "To: alice@example.org\n"
  "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\n"
  "Message-ID: <two@example.org>\n"
  "In-Reply-To: <one@example.org>\n"
  "Date: Tue, 02 Jan 2024 10:00:00 +0000\n"
  "MIME-Version: 1.0\n"
  "Content-Type: multipart/mixed; boundary=\"b\"\n"
  "\n"
  "--b\n"
  "Content-Type: text/plain; charset=utf-8\n"
  "\n"
  "See the file.\n"
  "--b\n"
  "Content-Type: application/pdf; name=\"report.pdf\"\n"
  "Content-Disposition: attachment; filename=\"report.pdf\"\n"
  "Content-Transfer-Encoding: base64\n"
  "\n"
  "JVBERi0xLjQK\n"
  "--b--\n"
  "\n"
  "From carol@example.org Wed Jan  3 10:00:00 2024\n"
  "From: carol@example.org\n"
  "Subject: Plain\n"
  "Date: Wed, 03 Jan 2024 10:00:00 +0000\n"
  "\n"
  "Last one.\n";

static char *
write_file (Fixture    *f,
            const char *name,
            const char *text)
{
  char *path = g_build_filename (f->work, name, NULL);
  g_autofree char *dir = g_path_get_dirname (path);

  g_assert_cmpint (g_mkdir_with_parents (dir, 0700), ==, 0);
  g_assert_true (g_file_set_contents (path, text, -1, NULL));
  return path;
}

static void
test_mbox (Fixture       *f,
           gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_file (f, "in.mbox", mbox_text);
  gint64 inbox = folder (f, "Imported");
  LbStoreTransferResult counts = import (f, inbox, path, LB_STORE_FORMAT_AUTO, &error);
  g_autoptr(GBytes) escapes = NULL;
  g_autofree char *subject = NULL;
  g_autofree char *sender = NULL;
  g_autofree char *attachment = NULL;
  g_autofree char *thread_count = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 3);
  g_assert_cmpuint (counts.failed, ==, 0);

  /* mboxrd: one ">" less where ">*From " began a line; the separator's blank line gone. */
  escapes = body_of (f, "Escapes");
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (escapes, NULL), (gssize) g_bytes_get_size (escapes),
                                  "\nFrom here on"));
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (escapes, NULL), (gssize) g_bytes_get_size (escapes),
                                  "\n>From two levels."));
  g_assert_nonnull (g_strstr_len (g_bytes_get_data (escapes, NULL), (gssize) g_bytes_get_size (escapes),
                                  "\n> From is a quote"));
  g_assert_true (g_str_has_suffix (g_bytes_get_data (escapes, NULL), "left alone.\n"));

  /* Summarised through GMime: decoded names and subjects, attachments, threads. */
  subject = sql_text (f, "SELECT subject FROM messages WHERE message_id = 'two@example.org'");
  g_assert_cmpstr (subject, ==, "Grüße");
  sender = sql_text (f, "SELECT sender FROM messages WHERE message_id = 'two@example.org'");
  g_assert_cmpstr (sender, ==, "Böb");
  attachment = sql_text (f, "SELECT has_attachment FROM messages WHERE message_id = 'two@example.org'");
  g_assert_cmpstr (attachment, ==, "1");
  thread_count = sql_text (f, "SELECT count(DISTINCT thread_id) FROM messages WHERE message_id IN "
                              "('one@example.org', 'two@example.org')");
  g_assert_cmpstr (thread_count, ==, "1");

  /* The same file again adds nothing. */
  counts = import (f, inbox, path, LB_STORE_FORMAT_MBOX, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 0);
  g_assert_cmpuint (counts.skipped, ==, 3);
  {
    g_autofree char *n = sql_text (f, "SELECT count(*) FROM messages WHERE subject != "
                                      "'Welcome to Letterbox'");

    g_assert_cmpstr (n, ==, "3");
  }

  /* Not an mbox. */
  {
    g_autofree char *bad = write_file (f, "bad.mbox", "Subject: x\n\nno separator\n");

    import (f, inbox, bad, LB_STORE_FORMAT_MBOX, &error);
    g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  }
}

static void
test_maildir_and_eml (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *a = write_file (f, "md/cur/1700000001.1.host:2,S",
                                   "From: a@x\nSubject: seen\n\nA\n");
  g_autofree char *b = write_file (f, "md/cur/1700000002.2.host:2,FR",
                                   "From: b@x\nSubject: flagged\n\nB\n");
  g_autofree char *c = write_file (f, "md/new/1700000003.3.host", "From: c@x\nSubject: new\n\nC\n");
  g_autofree char *md = g_build_filename (f->work, "md", NULL);
  g_autofree char *eml = write_file (f, "one.eml", "From: d@x\r\nSubject: eml\r\n\r\nD\r\n");
  gint64 target = folder (f, "FromMaildir");
  LbStoreTransferResult counts = import (f, target, md, LB_STORE_FORMAT_AUTO, &error);
  g_autofree char *seen = NULL;
  g_autofree char *flagged = NULL;
  g_autofree char *fresh = NULL;

  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 3);
  seen = sql_text (f, "SELECT flags FROM messages WHERE subject = 'seen'");
  flagged = sql_text (f, "SELECT flags FROM messages WHERE subject = 'flagged'");
  fresh = sql_text (f, "SELECT flags FROM messages WHERE subject = 'new'");
  g_assert_cmpint (atoi (seen), ==, LB_MESSAGE_FLAG_SEEN);
  g_assert_cmpint (atoi (flagged), ==, LB_MESSAGE_FLAG_FLAGGED | LB_MESSAGE_FLAG_ANSWERED);
  g_assert_cmpint (atoi (fresh), ==, 0);

  counts = import (f, target, eml, LB_STORE_FORMAT_AUTO, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 1);
  {
    g_autoptr(GBytes) stored = body_of (f, "eml");

    /* Stored as it came, CRLF and all. */
    g_assert_cmpmem (g_bytes_get_data (stored, NULL), g_bytes_get_size (stored),
                     "From: d@x\r\nSubject: eml\r\n\r\nD\r\n", 30);
  }
}

/* mbox out and in again: the same messages, byte for byte (LF line ends). */
static void
test_mbox_round_trip (Fixture       *f,
                      gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_file (f, "in.mbox", mbox_text);
  g_autofree char *out = g_build_filename (f->work, "out.mbox", NULL);
  gint64 first = folder (f, "First");
  gint64 second = folder (f, "Second");
  LbStoreTransferResult counts;
  g_autofree char *exported = NULL;

  import (f, first, path, LB_STORE_FORMAT_MBOX, &error);
  g_assert_no_error (error);
  counts = export (f, first, out, LB_STORE_FORMAT_MBOX);
  g_assert_cmpuint (counts.messages, ==, 3);
  g_assert_true (g_file_get_contents (out, &exported, NULL, NULL));
  /* Escaped again on the way out. */
  g_assert_nonnull (strstr (exported, "\n>From here on"));
  g_assert_nonnull (strstr (exported, "\n>>From two levels."));

  counts = import (f, second, out, LB_STORE_FORMAT_MBOX, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 3);
  {
    g_autofree char *same = sql_text (f, "SELECT count(*) FROM messages a JOIN messages b ON "
                                         "a.import_key = b.import_key WHERE a.folder_id != "
                                         "b.folder_id AND a.subject = b.subject");

    /* Each message has its twin with the same content key in the other folder. */
    g_assert_cmpstr (same, ==, "6");
  }
}

/* Maildir out, read by notmuch (and in again by us). */
static void
test_maildir_export (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *path = write_file (f, "in.mbox", mbox_text);
  g_autofree char *root = g_build_filename (f->work, "mail", NULL);
  g_autofree char *maildir = g_build_filename (root, "Exported", NULL);
  gint64 source = folder (f, "Source");
  gint64 back = folder (f, "Back");
  LbStoreTransferResult counts;
  g_autofree char *notmuch = g_find_program_in_path ("notmuch");

  import (f, source, path, LB_STORE_FORMAT_MBOX, &error);
  g_assert_no_error (error);
  counts = export (f, source, maildir, LB_STORE_FORMAT_MAILDIR);
  g_assert_cmpuint (counts.messages, ==, 3);

  counts = import (f, back, maildir, LB_STORE_FORMAT_MAILDIR, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (counts.messages, ==, 3);

  if (notmuch == NULL)
    {
      g_test_skip ("notmuch is not installed (build-aux/install-deps.sh --test installs it)");
      return;
    }
  {
    g_autofree char *config = g_build_filename (f->work, "notmuch-config", NULL);
    g_autofree char *text = g_strdup_printf ("[database]\npath=%s\n[new]\ntags=new\n"
                                             "[user]\nname=Test\nprimary_email=t@example.org\n",
                                             root);
    g_autofree char *out = NULL;
    g_autofree char *count_cmd = NULL;
    int status;

    g_assert_true (g_file_set_contents (config, text, -1, NULL));
    g_setenv ("NOTMUCH_CONFIG", config, TRUE);
    g_assert_true (g_spawn_sync (NULL, (char *[]) { notmuch, (char *) "new", (char *) "--quiet", NULL },
                                 NULL, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, NULL, &status,
                                 &error));
    g_assert_no_error (error);
    g_assert_true (g_spawn_check_wait_status (status, NULL));
    g_assert_true (g_spawn_sync (NULL, (char *[]) { notmuch, (char *) "count", (char *) "*", NULL },
                                 NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error));
    g_assert_no_error (error);
    g_assert_cmpint (atoi (out), ==, 3);
    g_free (out);
    out = NULL;
    /* notmuch reads our headers and threads as we do. */
    g_assert_true (g_spawn_sync (NULL, (char *[]) { notmuch, (char *) "count", (char *) "--output=threads",
                                                    (char *) "*", NULL },
                                 NULL, G_SPAWN_DEFAULT, NULL, NULL, &out, NULL, &status, &error));
    g_assert_cmpint (atoi (out), ==, 2);
    g_unsetenv ("NOTMUCH_CONFIG");
  }
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

  g_test_add ("/store/import/mbox", Fixture, NULL, fixture_set_up, test_mbox, fixture_tear_down);
  g_test_add ("/store/import/maildir-and-eml", Fixture, NULL, fixture_set_up, test_maildir_and_eml,
              fixture_tear_down);
  g_test_add ("/store/export/mbox-round-trip", Fixture, NULL, fixture_set_up, test_mbox_round_trip,
              fixture_tear_down);
  g_test_add ("/store/export/maildir", Fixture, NULL, fixture_set_up, test_maildir_export,
              fixture_tear_down);

  return g_test_run ();
}
