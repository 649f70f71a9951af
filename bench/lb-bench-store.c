/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-bench"

#include "config.h"

#include <sqlite3.h>

#include <glib/gstdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb-store.h"
#include "lb-store-import.h"
#include "lb-store-writer.h"

/*
 * The engine's side of bench/store-search.sh.
 *
 *   lb-bench-store import DATA_DIR MAILDIR
 *     imports the Maildir into a fresh store's folder "Corpus"; prints
 *     "<seconds> <messages> <index.db bytes> <bodies bytes>"
 *   lb-bench-store query DATA_DIR NAME=QUERY…
 *     runs each query 31 times and prints "NAME <median ms> <results>"; queries are
 *     page:OFFSET (50 rows of Corpus newest first), unread (every folder's counts),
 *     thread (the thread of the newest message), or search:TEXT (first 50 results);
 *     last line: "peak-rss <kB>"
 */

static GAsyncResult *waited;

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  waited = g_object_ref (result);
}

static GAsyncResult *
wait_for (void)
{
  while (waited == NULL)
    g_main_context_iteration (NULL, TRUE);
  return g_steal_pointer (&waited);
}

/* Folds the WAL back into the database, so that the file sizes are the data's. */
static void
checkpoint (const char *path)
{
  sqlite3 *db = NULL;

  if (sqlite3_open (path, &db) == SQLITE_OK)
    sqlite3_exec (db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  sqlite3_close (db);
}

static gint64
file_size (const char *path)
{
  GStatBuf st;

  return g_stat (path, &st) == 0 ? (gint64) st.st_size : 0;
}

static int
import (const char *dir,
        const char *maildir)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (dir, &error);
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(GFile) source = g_file_new_for_path (maildir);
  g_autoptr(GAsyncResult) result = NULL;
  g_autofree char *index = g_build_filename (dir, "index.db", NULL);
  g_autofree char *index_wal = g_build_filename (dir, "index.db-wal", NULL);
  g_autofree char *bodies = g_build_filename (dir, "bodies", "local.db", NULL);
  LbStoreTransferResult counts = { 0 };
  gint64 folder;
  gint64 start;

  if (store == NULL || (writer = lb_store_writer_new (dir, &error)) == NULL)
    {
      g_printerr ("lb-bench-store: %s\n", error->message);
      return 1;
    }
  start = g_get_monotonic_time ();
  lb_store_writer_ensure_folder_async (writer, "local", "local", "Local Folders", "Corpus",
                                       LB_FOLDER_ROLE_NONE, NULL, wait_cb, NULL);
  result = wait_for ();
  folder = lb_store_writer_ensure_folder_finish (writer, result, &error);
  g_clear_object (&result);
  lb_store_import_async (writer, folder, source, LB_STORE_FORMAT_MAILDIR, NULL, wait_cb, NULL);
  result = wait_for ();
  if (!lb_store_import_finish (writer, result, &counts, &error))
    {
      g_printerr ("lb-bench-store: %s\n", error->message);
      return 1;
    }
  lb_store_writer_close (writer);
  checkpoint (index);
  checkpoint (bodies);
  g_print ("%.2f %u %" G_GINT64_FORMAT " %" G_GINT64_FORMAT "\n",
           (g_get_monotonic_time () - start) / 1e6, counts.messages,
           file_size (index) + file_size (index_wal), file_size (bodies));
  return 0;
}

static int
compare_doubles (gconstpointer a,
                 gconstpointer b)
{
  double x = *(const double *) a, y = *(const double *) b;

  return x < y ? -1 : x > y;
}

static gint64
corpus_folder (LbStore *store)
{
  g_autoptr(GPtrArray) folders = lb_store_list_folders (store, NULL);

  for (guint i = 0; folders != NULL && i < folders->len; i++)
    if (g_str_equal (lb_folder_get_name (g_ptr_array_index (folders, i)), "Corpus"))
      return lb_folder_get_id (g_ptr_array_index (folders, i));
  return 0;
}

static int
query (const char *dir,
       int         argc,
       char      **argv)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (dir, &error);
  gint64 folder;
  gint64 newest = 0;

  if (store == NULL)
    {
      g_printerr ("lb-bench-store: %s\n", error->message);
      return 1;
    }
  folder = corpus_folder (store);
  {
    g_autoptr(GPtrArray) first = lb_store_list_messages (store, folder, 0, 1, NULL);

    if (first != NULL && first->len > 0)
      newest = lb_message_summary_get_id (g_ptr_array_index (first, 0));
  }
  for (int a = 0; a < argc; a++)
    {
      g_auto(GStrv) parts = g_strsplit (argv[a], "=", 2);
      const char *q = parts[1] != NULL ? parts[1] : parts[0];
      double times[31];
      guint results = 0;

      for (guint run = 0; run < G_N_ELEMENTS (times); run++)
        {
          g_autoptr(GPtrArray) rows = NULL;
          gint64 start = g_get_monotonic_time ();

          if (g_str_has_prefix (q, "page:"))
            rows = lb_store_list_messages (store, folder, (guint) atoi (q + 5), 50, &error);
          else if (g_str_equal (q, "unread"))
            rows = lb_store_list_folders (store, &error);
          else if (g_str_equal (q, "thread"))
            rows = lb_store_list_thread (store, newest, &error);
          else if (g_str_has_prefix (q, "search:"))
            rows = lb_store_search (store, q + 7, 0, 50, &error);
          if (rows == NULL)
            {
              g_printerr ("lb-bench-store: %s: %s\n", q, error != NULL ? error->message : "?");
              return 1;
            }
          times[run] = (g_get_monotonic_time () - start) / 1000.0;
          results = rows->len;
        }
      qsort (times, G_N_ELEMENTS (times), sizeof times[0], compare_doubles);
      g_print ("%s %.3f %u\n", parts[0], times[G_N_ELEMENTS (times) / 2], results);
    }
  {
    g_autofree char *status = NULL;
    const char *hwm;

    if (g_file_get_contents ("/proc/self/status", &status, NULL, NULL) &&
        (hwm = strstr (status, "VmHWM:")) != NULL)
      g_print ("peak-rss %ld\n", strtol (hwm + 6, NULL, 10));
  }
  return 0;
}

int
main (int   argc,
      char *argv[])
{
  if (argc >= 4 && g_str_equal (argv[1], "import"))
    return import (argv[2], argv[3]);
  if (argc >= 3 && g_str_equal (argv[1], "query"))
    return query (argv[2], argc - 3, argv + 3);
  g_printerr ("usage: %s import DATA_DIR MAILDIR | query DATA_DIR NAME=QUERY…\n", argv[0]);
  return 2;
}
