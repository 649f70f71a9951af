/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <sqlite3.h>
#include <string.h>

#include "lb-store.h"
#include "lb-store-bodies.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"
#include "store-crash-common.h"

/*
 * kill -9 during a bulk import, many times (issue #5): store-crash-child imports into the
 * same store and is killed at a random moment after it has committed something. After
 * every kill both databases pass PRAGMA integrity_check, every message the index calls
 * complete has its whole body (byte for byte), nothing is duplicated, and the store
 * opens. A last run to the end converges on exactly COUNT messages and COUNT bodies.
 * LB_CRASH_ROUNDS (default 25) and LB_CRASH_COUNT (default 3000) make it longer.
 */

typedef struct
{
  GSubprocess *child;
  GDataInputStream *out;
  guint lines;
  gboolean exited;
  char *line;
} Child;

static void
line_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Child *c = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (object), result,
                                                                NULL, NULL);

  if (line == NULL)
    {
      c->exited = TRUE;
      return;
    }
  c->lines++;
  g_free (c->line);
  c->line = g_steal_pointer (&line);
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, line_cb, c);
}

static gboolean
has_committed (gpointer user_data)
{
  Child *c = user_data;

  return c->lines > 0 || c->exited;
}

static gboolean
timed_out (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

static gboolean
flag_set (gpointer user_data)
{
  return *(gboolean *) user_data;
}

static Child *
start_child (const char *dir,
             guint       count)
{
  g_autofree char *exe = g_test_build_filename (G_TEST_BUILT, "store-crash-child", NULL);
  g_autofree char *count_text = g_strdup_printf ("%u", count);
  g_autoptr(GError) error = NULL;
  Child *c = g_new0 (Child, 1);

  c->child = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE, &error, exe, dir, count_text, NULL);
  g_assert_no_error (error);
  c->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (c->child));
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, line_cb, c);
  return c;
}

static gboolean
child_exited (gpointer user_data)
{
  return ((Child *) user_data)->exited;
}

static void
child_free (Child *c)
{
  g_assert_true (lb_test_wait_until (child_exited, c, 60000));
  g_subprocess_wait (c->child, NULL, NULL);
  g_object_unref (c->out);
  g_object_unref (c->child);
  g_free (c->line);
  g_free (c);
}

static char *
check_integrity (const char *path)
{
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  char *result = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "PRAGMA integrity_check", -1, &s, NULL), ==, SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    result = g_strdup ((const char *) sqlite3_column_text (s, 0));
  sqlite3_finalize (s);
  sqlite3_close (db);
  return result;
}

/* Checks the store after a kill; returns how many messages it holds. */
static guint
check_store (const char *dir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (dir, &error);
  g_autofree char *index_path = g_build_filename (dir, "index.db", NULL);
  g_autofree char *bodies_path = lb_store_bodies_path (dir, "crash");
  g_autofree char *index_ok = NULL;
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  guint n = 0;

  g_assert_no_error (error);
  index_ok = check_integrity (index_path);
  g_assert_cmpstr (index_ok, ==, "ok");
  if (g_file_test (bodies_path, G_FILE_TEST_EXISTS))
    {
      g_autofree char *bodies_ok = check_integrity (bodies_path);

      g_assert_cmpstr (bodies_ok, ==, "ok");
    }

  g_assert_cmpint (sqlite3_open_v2 (index_path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  /* No duplicates. */
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) - count(DISTINCT import_key) FROM "
                                           "messages WHERE import_key IS NOT NULL",
                                       -1, &s, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_step (s), ==, SQLITE_ROW);
  g_assert_cmpint (sqlite3_column_int (s, 0), ==, 0);
  sqlite3_finalize (s);

  /* Every indexed message: complete, with exactly its body. */
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT id, import_key, body_state FROM messages "
                                           "WHERE import_key IS NOT NULL",
                                       -1, &s, NULL), ==, SQLITE_OK);
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      guint number = (guint) g_ascii_strtoull ((const char *) sqlite3_column_text (s, 1) + 6, NULL, 10);
      g_autoptr(GBytes) expected = lb_crash_body (number);
      g_autoptr(GInputStream) in = NULL;
      g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();
      g_autoptr(GBytes) stored = NULL;

      g_assert_cmpint (sqlite3_column_int (s, 2), ==, 2);
      in = lb_store_open_body (store, sqlite3_column_int64 (s, 0), &error);
      g_assert_no_error (error);
      g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
      g_assert_no_error (error);
      stored = g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
      g_assert_true (g_bytes_equal (stored, expected));
      n++;
    }
  sqlite3_finalize (s);
  sqlite3_close (db);
  return n;
}

static gint64
count_bodies (const char *dir)
{
  g_autofree char *path = lb_store_bodies_path (dir, "crash");
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  gint64 n = -1;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  /* The writer may be checkpointing: wait for its lock, as the store's readers do. */
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT count(*) FROM bodies", -1, &s, NULL), ==,
                   SQLITE_OK);
  if (sqlite3_step (s) == SQLITE_ROW)
    n = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  sqlite3_close (db);
  return n;
}

static guint
env_uint (const char *name,
          guint       fallback)
{
  const char *value = g_getenv (name);

  return value != NULL && value[0] != '\0' ? (guint) g_ascii_strtoull (value, NULL, 10) : fallback;
}

static void
test_kill_during_import (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-crash-XXXXXX", &error);
  guint rounds = env_uint ("LB_CRASH_ROUNDS", 25);
  guint count = env_uint ("LB_CRASH_COUNT", 3000);
  guint previous = 0;
  guint killed = 0;

  g_assert_no_error (error);
  for (guint round = 0; round < rounds; round++)
    {
      Child *c = start_child (dir, count);
      gboolean waited = FALSE;
      guint n;

      /* Once it has committed something, kill it within the next 0–40 ms: between
       * commits, inside a body write, inside a commit. */
      g_assert_true (lb_test_wait_until (has_committed, c, 60000));
      g_timeout_add (g_test_rand_int_range (0, 40), timed_out, &waited);
      g_assert_true (lb_test_wait_until (flag_set, &waited, 1000));
      if (!c->exited)
        {
          g_subprocess_force_exit (c->child);
          killed++;
        }
      child_free (c);

      n = check_store (dir);
      g_test_message ("round %u: %u messages after the kill", round, n);
      /* Nothing committed is ever lost. */
      g_assert_cmpuint (n, >=, previous);
      previous = n;
    }
  g_assert_cmpuint (killed, >, 0);

  /* To the end: exactly COUNT messages, each with its body, and no stray bodies. */
  {
    Child *c = start_child (dir, count);
    guint n;

    child_free (c);
    n = check_store (dir);
    g_assert_cmpuint (n, ==, count);
    /* A new writer removes what the kills left behind. */
    {
      g_autoptr(GObject) writer = G_OBJECT (lb_store_writer_new (dir, &error));

      g_assert_no_error (error);
    }
    g_assert_cmpint (count_bodies (dir), ==, count);
  }
  lb_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);
  g_test_add_func ("/store/crash/kill-during-import", test_kill_during_import);
  return g_test_run ();
}
