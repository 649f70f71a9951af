/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-bench"

#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "lb-store.h"
#include "lb-store-writer.h"

/*
 * lb-bench-list-gen DATA-DIR COUNT: fills Local Folders' Inbox of the store in DATA-DIR
 * with COUNT message rows (no bodies) through the writer's add_many, 5000 a job, for
 * bench/app-list.sh. Deterministic: the same rows every run (a fixed seed), one every
 * ten minutes back from a fixed date, a thread of replies every few messages, a fifth
 * unread, one in twenty starred, one in seven with an attachment.
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
wait_result (void)
{
  while (waited == NULL)
    g_main_context_iteration (NULL, TRUE);
  return g_steal_pointer (&waited);
}

static const char *const names[] = {
  "Alice Example", "Bob Martin", "Carol Nguyen", "Dmitri Ivanov", "Élodie Durand",
  "Farah Haddad", "GNOME Foundation", "Hiroshi Tanaka", "Ines Garcia", "Jonas Berg",
};
static const char *const words[] = {
  "meeting", "release", "invoice", "build", "review", "patch", "holiday", "report",
  "budget", "schedule", "conference", "agenda", "update", "question", "proposal",
};

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autoptr(LbStoreWriter) writer = NULL;
  g_autoptr(GRand) rand = g_rand_new_with_seed (20261204);
  gint64 folder;
  guint count;

  if (argc != 3)
    {
      fprintf (stderr, "usage: %s DATA-DIR COUNT\n", argv[0]);
      return 2;
    }
  count = (guint) strtoul (argv[2], NULL, 10);

  store = lb_store_open (argv[1], &error);
  if (store == NULL || (writer = lb_store_writer_new (argv[1], &error)) == NULL)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }
  lb_store_writer_ensure_folder_async (writer, LB_STORE_LOCAL_ACCOUNT_ID, "local", "Local Folders",
                                       "Inbox", LB_FOLDER_ROLE_INBOX, NULL, wait_cb, NULL);
  {
    /* The task holds the writer: unreffed, so that the writer's connection closes at the
     * end and its WAL is checkpointed into index.db (as when letterbox-backend stops). */
    g_autoptr(GAsyncResult) result = wait_result ();

    folder = lb_store_writer_ensure_folder_finish (writer, result, &error);
  }
  if (folder <= 0)
    {
      fprintf (stderr, "%s\n", error->message);
      return 1;
    }

  for (guint first = 0; first < count; first += 5000)
    {
      GPtrArray *batch = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);
      GAsyncResult *result;

      for (guint n = first; n < count && n < first + 5000; n++)
        {
          LbStoreMessage *m = lb_store_message_new ();
          guint name = g_rand_int_range (rand, 0, G_N_ELEMENTS (names));
          const char *w1 = words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))];
          const char *w2 = words[g_rand_int_range (rand, 0, G_N_ELEMENTS (words))];

          m->folder_id = folder;
          m->date = 1764806400 - (gint64) (count - n) * 600;
          m->sender = g_strdup (names[name]);
          m->sender_address = g_strdup_printf ("person%u@example.org", name);
          m->recipients = g_strdup ("me@example.org");
          m->subject = g_strdup_printf ("%s%s about the %s, part %u", n % 4 != 0 ? "Re: " : "",
                                        w1, w2, n / 4);
          m->preview = g_strdup_printf ("Hello, here are my notes on the %s and the %s we "
                                        "talked about on Tuesday; see the details below, and "
                                        "tell me what you think (%u).", w1, w2, n);
          m->message_id = g_strdup_printf ("bench-%u@example.org", n);
          if (n % 4 != 0)
            m->in_reply_to = g_strdup_printf ("bench-%u@example.org", n - 1);
          m->flags = (g_rand_int_range (rand, 0, 5) != 0 ? LB_MESSAGE_FLAG_SEEN : 0) |
                     (n % 20 == 0 ? LB_MESSAGE_FLAG_FLAGGED : 0);
          m->has_attachment = n % 7 == 0;
          m->size = 2000 + g_rand_int_range (rand, 0, 50000);
          m->import_key = g_strdup_printf ("bench-%u", n);
          g_ptr_array_add (batch, m);
        }
      lb_store_writer_add_many_async (writer, batch, NULL, wait_cb, NULL);
      result = wait_result ();
      if (!lb_store_writer_add_many_finish (writer, result, &error))
        {
          fprintf (stderr, "%s\n", error->message);
          g_object_unref (result);
          return 1;
        }
      g_object_unref (result);
    }

  lb_store_writer_close (writer);
  printf ("%u messages in folder %" G_GINT64_FORMAT "\n", count, folder);
  return 0;
}
