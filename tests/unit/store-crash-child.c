/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "lb-store.h"
#include "lb-store-writer.h"
#include "store-crash-common.h"

/*
 * The victim of test-store-crash: imports COUNT messages into a store as fast as the
 * writer takes them, 64 in flight, printing "committed N" after each window, until it is
 * killed (or done). Every message has an import key, so a second run must add only what
 * the first did not commit.
 *
 *   store-crash-child DATA_DIR COUNT
 */

typedef struct
{
  GMainLoop *loop;
  LbStoreWriter *writer;
  gint64 folder;
  guint count;
  guint next;
  guint pending;
  guint committed;
  gboolean failed;
} Import;

static void submit_window (Import *import);

static void
added_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Import *import = user_data;
  g_autoptr(GError) error = NULL;

  if (lb_store_writer_add_finish (LB_STORE_WRITER (object), result, &error) == 0)
    {
      g_printerr ("store-crash-child: %s\n", error->message);
      import->failed = TRUE;
    }
  import->committed++;
  if (--import->pending == 0)
    {
      printf ("committed %u\n", import->committed);
      fflush (stdout);
      submit_window (import);
    }
}

static void
submit_window (Import *import)
{
  if (import->next >= import->count || import->failed)
    {
      g_main_loop_quit (import->loop);
      return;
    }
  for (guint i = 0; i < 64 && import->next < import->count; i++, import->next++)
    {
      g_autoptr(GBytes) body = lb_crash_body (import->next);
      g_autoptr(GInputStream) stream = g_memory_input_stream_new_from_bytes (body);
      LbStoreMessage *m = lb_store_message_new ();

      m->folder_id = import->folder;
      m->subject = g_strdup_printf ("Message %u", import->next);
      m->sender = g_strdup ("Crash Test");
      m->message_id = g_strdup_printf ("crash-%u@example.org", import->next);
      m->date = 1700000000 + import->next;
      m->import_key = lb_crash_key (import->next);
      m->body_text = g_strdup_printf ("body text of message %u", import->next);
      import->pending++;
      lb_store_writer_add_async (import->writer, m, stream, (goffset) g_bytes_get_size (body), NULL,
                                 added_cb, import);
    }
}

static void
folder_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  Import *import = user_data;
  g_autoptr(GError) error = NULL;

  import->folder = lb_store_writer_ensure_folder_finish (LB_STORE_WRITER (object), result, &error);
  if (import->folder == 0)
    {
      g_printerr ("store-crash-child: %s\n", error->message);
      import->failed = TRUE;
      g_main_loop_quit (import->loop);
      return;
    }
  submit_window (import);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  Import import = { 0 };

  if (argc != 3)
    {
      g_printerr ("usage: %s DATA_DIR COUNT\n", argv[0]);
      return 2;
    }
  store = lb_store_open (argv[1], &error);
  if (store == NULL)
    {
      g_printerr ("store-crash-child: %s\n", error->message);
      return 1;
    }
  import.writer = lb_store_writer_new (argv[1], &error);
  if (import.writer == NULL)
    {
      g_printerr ("store-crash-child: %s\n", error->message);
      return 1;
    }
  import.count = (guint) atoi (argv[2]);
  import.loop = g_main_loop_new (NULL, FALSE);
  lb_store_writer_ensure_folder_async (import.writer, "crash", "imap", "Crash", "Import",
                                       LB_FOLDER_ROLE_NONE, NULL, folder_cb, &import);
  g_main_loop_run (import.loop);
  g_object_unref (import.writer);
  g_main_loop_unref (import.loop);
  printf ("done %u\n", import.committed);
  return import.failed ? 1 : 0;
}
