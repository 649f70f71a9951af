/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <stdio.h>
#include <string.h>

#include "lb-account.h"
#include "lb-pop3-sync.h"
#include "lb-store.h"
#include "lb-store-writer.h"

/*
 * The victim of test-pop3-sync's crash tests: one POP3 sync of the account in
 * ACCOUNT_FILE (an account's <id>.ini) into the store in DATA_DIR, printing
 * "stored N" after each message and "done DOWNLOADED SKIPPED DELETED" at the end. The
 * test kills it with SIGKILL, from outside or through LB_POP3_SYNC_ABORT_AFTER.
 *
 *   pop3-sync-child DATA_DIR ACCOUNT_FILE
 */

typedef struct
{
  GMainLoop *loop;
  GAsyncResult *result;
} Wait;

static void
done_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Wait *wait = user_data;

  wait->result = g_object_ref (result);
  g_main_loop_quit (wait->loop);
}

static void
progress_cb (LbPop3Sync *sync,
             guint       done,
             guint       total,
             gpointer    user_data)
{
  if (done > 0)
    {
      printf ("stored %u\n", done);
      fflush (stdout);
    }
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(LbAccount) account = NULL;
  g_autoptr(LbPop3Sync) sync = NULL;
  g_autofree char *data = NULL;
  g_autofree char *id = NULL;
  gsize length = 0;
  LbPop3SyncStats stats = { 0 };
  Wait wait = { 0 };
  gboolean ok;

  if (argc != 3)
    {
      g_printerr ("usage: %s DATA_DIR ACCOUNT_FILE\n", argv[0]);
      return 2;
    }
  id = g_path_get_basename (argv[2]);
  if (g_str_has_suffix (id, ".ini"))
    id[strlen (id) - 4] = '\0';
  if (!g_file_get_contents (argv[2], &data, &length, &error) ||
      (account = lb_account_load_from_data (id, data, (gssize) length, &error)) == NULL ||
      (store = lb_store_open (argv[1], &error)) == NULL ||
      (writer = lb_store_writer_new (argv[1], &error)) == NULL)
    {
      g_printerr ("pop3-sync-child: %s\n", error->message);
      return 1;
    }

  sync = lb_pop3_sync_new (account, writer);
  g_signal_connect (sync, "progress", G_CALLBACK (progress_cb), NULL);
  wait.loop = g_main_loop_new (NULL, FALSE);
  lb_pop3_sync_run_async (sync, NULL, done_cb, &wait);
  g_main_loop_run (wait.loop);
  ok = lb_pop3_sync_run_finish (sync, wait.result, &stats, &error);
  g_object_unref (wait.result);
  g_main_loop_unref (wait.loop);
  if (!ok)
    {
      g_printerr ("pop3-sync-child: %s\n", error->message);
      return 1;
    }
  printf ("done %u %u %u\n", stats.downloaded, stats.skipped_known, stats.deleted_on_server);
  return 0;
}
