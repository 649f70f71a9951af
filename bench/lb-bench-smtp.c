/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-bench"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lb-connection.h"
#include "lb-smtp-session.h"

/*
 * The engine's side of bench/smtp-send.sh: one SMTP session (no TLS, no login: the peer
 * is Postfix's smtp-sink on loopback), COUNT messages of about SIZE bytes each, one after
 * the other, each streamed from memory as the outbox would stream it from disk. Prints
 * "<seconds> <messages> <bytes>" on stdout.
 *
 *   lb-bench-smtp HOST PORT COUNT SIZE
 */

typedef struct
{
  GMainLoop *loop;
  LbSmtpSession *session;
  LbSmtpEnvelope *envelope;
  GBytes *message;
  GError *error;
  guint count;
  guint sent;
  guint64 bytes;
} Bench;

static void send_next (Bench *b);

static void
quit_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Bench *b = user_data;

  lb_smtp_session_quit_finish (b->session, result, &b->error);
  g_main_loop_quit (b->loop);
}

static void
send_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Bench *b = user_data;
  LbSmtpSendResult *r = NULL;

  if (!lb_smtp_session_send_finish (b->session, result, &r, &b->error))
    {
      lb_smtp_send_result_free (r);
      g_main_loop_quit (b->loop);
      return;
    }
  b->bytes += r->bytes_sent;
  lb_smtp_send_result_free (r);
  b->sent++;
  send_next (b);
}

static void
send_next (Bench *b)
{
  g_autoptr(GInputStream) stream = NULL;

  if (b->sent == b->count)
    {
      lb_smtp_session_quit_async (b->session, NULL, quit_cb, b);
      return;
    }
  stream = g_memory_input_stream_new_from_bytes (b->message);
  lb_smtp_session_send_async (b->session, b->envelope, stream,
                              (gint64) g_bytes_get_size (b->message), LB_SMTP_MESSAGE_7BIT,
                              NULL, send_cb, b);
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Bench *b = user_data;

  if (!lb_smtp_session_connect_finish (b->session, result, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  send_next (b);
}

/* A plain-text message like the ones smtp-source sends: a few headers, then SIZE bytes
 * of lines. */
static GBytes *
make_message (gsize size)
{
  GString *s = g_string_new ("From: <alice@example.test>\r\nTo: <bob@example.test>\r\n"
                             "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
                             "Message-Id: <bench@example.test>\r\nSubject: bench\r\n\r\n");
  gsize start = s->len;

  while (s->len - start < size)
    g_string_append (s, "La la la la la la la la la la la la la la la la la la la la la la la.\r\n");
  return g_string_free_to_bytes (s);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(LbConnection) conn = NULL;
  Bench b = { 0 };
  gint64 start;

  if (argc != 5)
    {
      g_printerr ("usage: %s HOST PORT COUNT SIZE\n", argv[0]);
      return 2;
    }
  conn = lb_connection_new (argv[1], (guint16) atoi (argv[2]), LB_NET_SECURITY_NONE);
  lb_connection_set_timeouts (conn, 20, 120);
  b.session = lb_smtp_session_new (conn);
  b.count = (guint) atoi (argv[3]);
  b.message = make_message ((gsize) atol (argv[4]));
  b.envelope = lb_smtp_envelope_new ("alice@example.test");
  lb_smtp_envelope_add_recipient (b.envelope, "bob@example.test", LB_SMTP_NOTIFY_DEFAULT);
  b.loop = g_main_loop_new (NULL, FALSE);

  start = g_get_monotonic_time ();
  lb_smtp_session_connect_async (b.session, NULL, connect_cb, &b);
  g_main_loop_run (b.loop);
  if (b.error != NULL)
    {
      g_printerr ("lb-bench-smtp: %s\n", b.error->message);
      return 1;
    }
  g_print ("%.3f %u %" G_GUINT64_FORMAT "\n", (g_get_monotonic_time () - start) / 1e6, b.sent,
           b.bytes);

  g_main_loop_unref (b.loop);
  g_object_unref (b.session);
  lb_smtp_envelope_free (b.envelope);
  g_bytes_unref (b.message);
  return 0;
}
