/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-bench"

#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "lb-connection.h"
#include "lb-imap-session.h"

/*
 * The engine's side of bench/imap-fetch.sh: log in, EXAMINE a mailbox, and fetch every
 * message's header data (mode "headers") or full body (mode "bodies") in pipelined UID
 * batches, bodies streamed through a literal sink that only counts. Prints
 * "<seconds> <messages> <bytes>" on stdout.
 *
 *   lb-bench-imap HOST PORT CA_FILE USER PASSWORD MAILBOX headers|bodies
 */

/* UIDs per FETCH and FETCHes in flight; LB_BENCH_BATCH overrides the first. */
static guint batch = 1000;
#define IN_FLIGHT 4

typedef struct
{
  GMainLoop *loop;
  LbImapSession *session;
  GError *error;
  guint32 max_uid;
  guint32 next_uid;
  guint in_flight;
  guint64 messages;
  guint64 bytes;
  gboolean bodies;
} Bench;

static gpointer
sink_begin (const LbImapLiteralInfo *info, gpointer user_data, GError **error)
{
  return user_data;
}

static gboolean
sink_write (gpointer handle, const guint8 *data, gsize len, gpointer user_data, GError **error)
{
  ((Bench *) user_data)->bytes += len;
  return TRUE;
}

static gboolean
sink_end (gpointer handle, gpointer user_data, GError **error)
{
  return TRUE;
}

static void
sink_abort (gpointer handle, gpointer user_data)
{
}

static const LbImapLiteralSink sink = { sink_begin, sink_write, sink_end, sink_abort };

static void send_batches (Bench *b);

static void
batch_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Bench *b = user_data;
  g_autoptr(LbImapResult) res = lb_imap_session_command_finish (LB_IMAP_SESSION (object), result,
                                                                b->error == NULL ? &b->error : NULL);

  b->in_flight--;
  if (res != NULL)
    for (guint i = 0; i < res->untagged->len; i++)
      {
        LbImapResponse *r = g_ptr_array_index (res->untagged, i);

        if (r->data != LB_IMAP_DATA_FETCH)
          continue;
        b->messages++;
        for (guint j = 0; r->fetch->sections != NULL && j < r->fetch->sections->len; j++)
          {
            LbImapSection *s = g_ptr_array_index (r->fetch->sections, j);

            if (s->value->kind == LB_IMAP_VALUE_STRING)
              b->bytes += s->value->len;
          }
      }
  send_batches (b);
}

static void
send_batches (Bench *b)
{
  while (b->error == NULL && b->in_flight < IN_FLIGHT && b->next_uid <= b->max_uid)
    {
      guint32 last = MIN (b->next_uid + batch - 1, b->max_uid);
      g_autofree char *cmd = g_strdup_printf (
        b->bodies ? "UID FETCH %u:%u (UID BODY.PEEK[])"
                  : "UID FETCH %u:%u (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE)",
        b->next_uid, last);

      b->next_uid = last + 1;
      b->in_flight++;
      lb_imap_session_command_async (b->session, cmd, NULL, NULL, batch_cb, b);
    }
  if (b->in_flight == 0)
    g_main_loop_quit (b->loop);
}

static void
examine_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Bench *b = user_data;
  g_autoptr(LbImapResult) res = lb_imap_session_command_finish (b->session, result, &b->error);

  if (res == NULL)
    {
      g_main_loop_quit (b->loop);
      return;
    }
  for (guint i = 0; i < res->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (res->untagged, i);

      if (r->data == LB_IMAP_DATA_STATUS && r->code.kind == LB_IMAP_CODE_UIDNEXT)
        b->max_uid = (guint32) r->code.number - 1;
    }
  b->next_uid = 1;
  send_batches (b);
}

static void
login_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  Bench *b = user_data;
  const char *mailbox = g_object_get_data (object, "mailbox");
  g_autofree char *cmd = g_strdup_printf ("EXAMINE \"%s\"", mailbox);

  if (!lb_imap_session_login_finish (b->session, result, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  lb_imap_session_command_async (b->session, cmd, NULL, NULL, examine_cb, b);
}

static void
connect_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Bench *b = user_data;

  if (!lb_imap_session_connect_finish (b->session, result, &b->error))
    {
      g_main_loop_quit (b->loop);
      return;
    }
  lb_imap_session_login_async (b->session, g_object_get_data (object, "user"),
                               g_object_get_data (object, "password"), FALSE, NULL, login_cb, b);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(LbConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  Bench b = { 0 };
  gint64 start;

  if (argc != 8)
    {
      g_printerr ("usage: lb-bench-imap HOST PORT CA_FILE USER PASSWORD MAILBOX headers|bodies\n");
      return 2;
    }

  if (g_getenv ("LB_BENCH_BATCH") != NULL)
    batch = MAX (1, atoi (g_getenv ("LB_BENCH_BATCH")));
  conn = lb_connection_new (argv[1], (guint16) atoi (argv[2]), LB_NET_SECURITY_TLS);
  if (!lb_connection_set_ca_file (conn, argv[3], &error))
    {
      g_printerr ("%s\n", error->message);
      return 1;
    }
  b.loop = g_main_loop_new (NULL, FALSE);
  b.session = lb_imap_session_new (conn);
  b.bodies = g_str_equal (argv[7], "bodies");
  lb_imap_session_set_literal_sink (b.session, &sink, &b);
  g_object_set_data (G_OBJECT (b.session), "user", argv[4]);
  g_object_set_data (G_OBJECT (b.session), "password", argv[5]);
  g_object_set_data (G_OBJECT (b.session), "mailbox", argv[6]);

  start = g_get_monotonic_time ();
  lb_imap_session_connect_async (b.session, NULL, connect_cb, &b);
  g_main_loop_run (b.loop);

  if (b.error != NULL)
    {
      g_printerr ("lb-bench-imap: %s\n", b.error->message);
      return 1;
    }
  g_print ("%.3f %" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "\n",
           (g_get_monotonic_time () - start) / 1e6, b.messages, b.bytes);
  g_object_unref (b.session);
  g_main_loop_unref (b.loop);
  return 0;
}
