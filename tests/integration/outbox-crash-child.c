/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include "lb-outbox.h"
#include "lb-store.h"
#include "lb-store-writer.h"

/*
 * The victim of test-outbox's crash tests: an outbox on the store in DATA_DIR (accounts
 * from $LETTERBOX_CONFIG_DIR) sends what is queued and exits 0 once nothing is left to
 * send, 3 if that takes over a minute. The test sets LB_OUTBOX_CRASH_AT, and the outbox
 * kills itself with SIGKILL at that step (lb-outbox.c).
 *
 *   outbox-crash-child DATA_DIR
 */

typedef struct
{
  GMainLoop *loop;
  LbOutbox *outbox;
  gboolean done;
} Child;

static gboolean
check_done (gpointer user_data)
{
  Child *c = user_data;

  if (lb_outbox_get_pending_count (c->outbox) > 0 || lb_outbox_is_sending (c->outbox))
    return G_SOURCE_CONTINUE;
  c->done = TRUE;
  g_main_loop_quit (c->loop);
  return G_SOURCE_REMOVE;
}

static gboolean
give_up (gpointer user_data)
{
  g_main_loop_quit (((Child *) user_data)->loop);
  return G_SOURCE_REMOVE;
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(LbOutbox) outbox = NULL;
  Child c = { 0 };
  guint poll, deadline;

  if (argc != 2)
    {
      g_printerr ("usage: %s DATA_DIR\n", argv[0]);
      return 2;
    }
  if ((store = lb_store_open (argv[1], &error)) == NULL ||
      (writer = lb_store_writer_new (argv[1], &error)) == NULL ||
      (outbox = lb_outbox_new (store, writer, &error)) == NULL)
    {
      g_printerr ("outbox-crash-child: %s\n", error->message);
      return 1;
    }
  c.loop = g_main_loop_new (NULL, FALSE);
  c.outbox = outbox;
  lb_outbox_start (outbox);
  poll = g_timeout_add (20, check_done, &c);
  deadline = g_timeout_add_seconds (60, give_up, &c);
  g_main_loop_run (c.loop);
  if (!c.done)
    g_source_remove (poll);
  g_source_remove (deadline);
  lb_outbox_stop (outbox);
  g_clear_object (&outbox);
  lb_store_writer_close (writer);
  g_main_loop_unref (c.loop);
  return c.done ? 0 : 3;
}
