/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-bench"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lb-connection.h"
#include "lb-pop3-session.h"

/*
 * The engine's side of bench/pop3-fetch.sh: log in over POP3S, STAT, then RETR every
 * message, at most WINDOW queued at a time (the session pipelines them when the server
 * offers PIPELINING). Each message goes through a sink that only counts (OUT "-"), or is
 * appended to the file OUT through lb_pop3_session_retrieve_to_stream_async(). Prints
 * "<seconds> <messages> <bytes>" on stdout.
 *
 *   lb-bench-pop3 HOST PORT CA_FILE USER PASSWORD OUT
 */

#define WINDOW 128

typedef struct
{
  GMainLoop *loop;
  LbPop3Session *session;
  GOutputStream *out;
  GError *error;
  guint count;
  guint next;
  guint in_flight;
  guint64 messages;
  guint64 bytes;
} Bench;

static gboolean
count_sink (const guint8  *data,
            gsize          len,
            gpointer       user_data,
            GError       **error)
{
  ((Bench *) user_data)->bytes += len;
  return TRUE;
}

static void send_more (Bench *b);

static void
retr_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Bench *b = user_data;
  guint64 size = 0;

  b->in_flight--;
  if (lb_pop3_session_retrieve_finish (b->session, result, &size,
                                       b->error == NULL ? &b->error : NULL))
    {
      b->messages++;
      if (b->out != NULL)
        b->bytes += size;
    }
  send_more (b);
}

static void
send_more (Bench *b)
{
  while (b->error == NULL && b->in_flight < WINDOW && b->next <= b->count)
    {
      b->in_flight++;
      if (b->out != NULL)
        lb_pop3_session_retrieve_to_stream_async (b->session, b->next++, b->out, NULL, retr_cb, b);
      else
        lb_pop3_session_retrieve_async (b->session, b->next++, count_sink, b, NULL, retr_cb, b);
    }
  if (b->in_flight == 0)
    g_main_loop_quit (b->loop);
}

static void
stat_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Bench *b = user_data;

  if (!lb_pop3_session_stat_finish (b->session, result, &b->count, NULL, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  b->next = 1;
  send_more (b);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Bench *b = user_data;

  if (!lb_pop3_session_login_finish (b->session, result, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  lb_pop3_session_stat_async (b->session, NULL, stat_cb, b);
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Bench *b = user_data;

  if (!lb_pop3_session_connect_finish (b->session, result, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  lb_pop3_session_login_async (b->session, g_object_get_data (object, "user"),
                               g_object_get_data (object, "password"), FALSE, NULL, login_cb, b);
}

static void
quit_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Bench *b = user_data;

  lb_pop3_session_quit_finish (b->session, result, NULL, b->error == NULL ? &b->error : NULL);
  g_main_loop_quit (b->loop);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(LbConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = NULL;
  Bench b = { 0 };
  gint64 start;

  if (argc != 7)
    {
      g_printerr ("usage: lb-bench-pop3 HOST PORT CA_FILE USER PASSWORD OUT|-\n");
      return 2;
    }

  conn = lb_connection_new (argv[1], (guint16) atoi (argv[2]), LB_NET_SECURITY_TLS);
  if (!lb_connection_set_ca_file (conn, argv[3], &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  if (!g_str_equal (argv[6], "-"))
    {
      file = g_file_new_for_path (argv[6]);
      b.out = G_OUTPUT_STREAM (g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL,
                                               &error));
      if (b.out == NULL)
        {
          g_printerr ("%s\n", error->message);
          return 1;
        }
    }
  b.loop = g_main_loop_new (NULL, FALSE);
  b.session = lb_pop3_session_new (conn);
  g_object_set_data (G_OBJECT (b.session), "user", argv[4]);
  g_object_set_data (G_OBJECT (b.session), "password", argv[5]);

  start = g_get_monotonic_time ();
  lb_pop3_session_connect_async (b.session, NULL, connect_cb, &b);
  g_main_loop_run (b.loop);
  if (b.error == NULL)
    {
      lb_pop3_session_quit_async (b.session, NULL, quit_cb, &b);
      g_main_loop_run (b.loop);
    }
  if (b.out != NULL && b.error == NULL)
    g_output_stream_close (b.out, NULL, &b.error);

  if (b.error != NULL)
    {
      g_printerr ("lb-bench-pop3: %s\n", b.error->message);
      return 1;
    }
  g_print ("%.3f %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
           (g_get_monotonic_time () - start) / 1e6, b.messages, b.bytes);
  g_clear_object (&b.out);
  g_object_unref (b.session);
  g_main_loop_unref (b.loop);
  return 0;
}
