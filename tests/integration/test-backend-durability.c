/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>

#include "lb-bus-backend1.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/*
 * The relay's promise under fire: 200 messages are submitted one by one through
 * letterbox-backend's relay socket (as letterbox-sendmail does) while the backend is
 * killed with SIGKILL at random moments and started again, and while its outbox sends
 * them through Postfix to Dovecot. Afterwards every message that got "250" is in the
 * recipient's mailbox — exactly once, unless the backend logged that it was killed in
 * the middle of that message's SMTP transaction (RFC 1047: the server may have taken it
 * before the kill; then at most twice) — and the account's Sent folder has one copy of
 * each delivered message, in the store and, after a sync, on the server.
 *
 * One round runs in CI; LB_DURABILITY_ROUNDS=N runs N (each with new random moments).
 */

#define N_MESSAGES 200

static LbTestServers *servers;
static LbTestBus *bus;
static const char *backend_path;

typedef struct
{
  char *dir;
  char *config_dir;
  char *data_dir;
  char *socket_path;
  char *log_dir;
  GSubprocess *backend;
  guint starts;
  LbBusBackend1 *proxy;
} Fixture;

/* ---- The client: one SMTP transaction per message, in a thread of its own ---- */

typedef enum
{
  OUTCOME_NONE,       /* never completed DATA: retried until it does */
  OUTCOME_ACKED,      /* "250" after the final dot */
  OUTCOME_UNKNOWN,    /* the final dot went out, the reply never came */
} Outcome;

typedef struct
{
  const char *socket_path;
  Outcome outcome[N_MESSAGES];
  char *queue_id[N_MESSAGES];
  guint reconnects;
  gint done;          /* atomic */
  gint kills;         /* atomic: the backends killed so far */
  char *failure;      /* an unexpected SMTP reply */
} Client;

static char *
message_text (guint i)
{
  return g_strdup_printf ("From: Alice <alice@example.test>\r\n"
                          "To: Bob <bob@example.test>\r\n"
                          "Subject: Durability %u\r\n"
                          "Message-ID: <durability-%u@example.test>\r\n"
                          "Date: Tue, 2 Jan 2024 09:00:00 +0000\r\n"
                          "\r\n"
                          "Message %u of the kill -9 test.\r\n"
                          "..a line that needed dot-stuffing\r\n",
                          i, i, i);
}

/* Reads one (possibly multi-line) reply; its code, and its last line in *text. */
static int
read_reply (GDataInputStream  *in,
            char             **text,
            GError           **error)
{
  for (;;)
    {
      g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, error);

      if (line == NULL)
        {
          if (error != NULL && *error == NULL)
            g_set_error_literal (error, G_IO_ERROR, G_IO_ERROR_CONNECTION_CLOSED, "closed");
          return -1;
        }
      g_strchomp (line);
      if (strlen (line) < 4 || line[3] == ' ')
        {
          if (text != NULL)
            *text = g_strdup (line);
          return (int) g_ascii_strtoll (line, NULL, 10);
        }
    }
}

static gboolean
send_line (GOutputStream *out,
           const char    *line,
           GError       **error)
{
  return g_output_stream_write_all (out, line, strlen (line), NULL, NULL, error);
}

/* One attempt at message @i. FALSE with @final_sent when the connection broke after the
 * final dot (the outcome is unknown); FALSE without when it is safe to try again. */
static gboolean
submit_one (Client   *c,
            guint     i,
            gboolean *final_sent)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (c->socket_path);
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *message = message_text (i);
  g_autofree char *reply = NULL;
  GOutputStream *out;
  static const struct
  {
    const char *command;
    int code;
  } steps[] = {
    { NULL, 220 },
    { "EHLO test.example\r\n", 250 },
    { "MAIL FROM:<alice@example.test>\r\n", 250 },
    { "RCPT TO:<bob@example.test>\r\n", 250 },
    { "DATA\r\n", 354 },
  };

  *final_sent = FALSE;
  g_socket_client_set_timeout (client, 30);
  connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, &error);
  if (connection == NULL)
    return FALSE;
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (connection)));
  g_data_input_stream_set_newline_type (in, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
  out = g_io_stream_get_output_stream (G_IO_STREAM (connection));

  for (guint s = 0; s < G_N_ELEMENTS (steps); s++)
    {
      int code;

      if (steps[s].command != NULL && !send_line (out, steps[s].command, &error))
        return FALSE;
      g_clear_pointer (&reply, g_free);
      code = read_reply (in, &reply, &error);
      if (code < 0)
        return FALSE;
      if (code != steps[s].code)
        {
          /* A refusal is a bug here, not a crash: stop the test with the reply. */
          if (c->failure == NULL)
            c->failure = g_strdup_printf ("message %u: %s", i, reply);
          return FALSE;
        }
    }
  if (!send_line (out, message, &error) || !send_line (out, ".\r\n", &error))
    return FALSE;
  *final_sent = TRUE;
  g_clear_pointer (&reply, g_free);
  if (read_reply (in, &reply, &error) != 250)
    {
      if (reply != NULL && c->failure == NULL)
        c->failure = g_strdup_printf ("message %u: %s", i, reply);
      return FALSE;
    }
  {
    const char *id = strstr (reply, "queued as ");

    c->queue_id[i] = g_strdup (id != NULL ? id + strlen ("queued as ") : "");
  }
  send_line (out, "QUIT\r\n", NULL);
  return TRUE;
}

static gpointer
client_thread (gpointer data)
{
  Client *c = data;

  for (guint i = 0; i < N_MESSAGES && c->failure == NULL; i++)
    {
      gint64 deadline = g_get_monotonic_time () + 60 * G_USEC_PER_SEC;

      /* Half-way, the first kill must have come: on a fast machine the whole intake
       * can take less than the first random wait, and no kill would hit it. */
      if (i == N_MESSAGES / 2)
        {
          while (g_atomic_int_get (&c->kills) == 0 && g_get_monotonic_time () < deadline)
            g_usleep (1000);  /* waiting for the main thread's kill, bounded by the deadline */
          if (g_atomic_int_get (&c->kills) == 0)
            {
              c->failure = g_strdup ("no kill within 60 s of the intake's middle");
              break;
            }
        }

      for (;;)
        {
          gboolean final_sent;

          if (submit_one (c, i, &final_sent))
            {
              c->outcome[i] = OUTCOME_ACKED;
              break;
            }
          if (final_sent)
            {
              /* Maybe queued, maybe not: a real client would retry and risk a
               * duplicate; this one records the uncertainty instead. */
              c->outcome[i] = OUTCOME_UNKNOWN;
              break;
            }
          if (c->failure != NULL || g_get_monotonic_time () > deadline)
            {
              if (c->failure == NULL)
                c->failure = g_strdup_printf ("message %u: no relay for 60 s", i);
              break;
            }
          /* The backend is down: its restart is on the way. */
          c->reconnects++;
          g_usleep (20 * 1000);
        }
    }
  g_atomic_int_set (&c->done, 1);
  return NULL;
}

/* ---- The backend ---- */

static gboolean
socket_accepts (gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) address = g_unix_socket_address_new (f->socket_path);
  g_autoptr(GSocketConnection) connection =
    g_socket_client_connect (client, G_SOCKET_CONNECTABLE (address), NULL, NULL);

  return connection != NULL;
}

static void
start_backend (Fixture *f)
{
  g_autofree char *log = g_strdup_printf ("%s/backend-%u.log", f->log_dir, ++f->starts);
  const char *const environment[] = { "LETTERBOX_OUTBOX_RETRY_BASE_MS=100", NULL };
  const char *const arguments[] = { "--relay-socket", f->socket_path, "--relay-port", "0",
                                    "--poll-interval", "600", "--retry-base", "100", NULL };

  f->backend = lb_test_spawn_backend (f->config_dir, f->data_dir, log, environment, arguments);
  g_assert_true (lb_test_wait_until (socket_accepts, f, 20000));
}

static void
kill_backend (Fixture *f,
              int      signal)
{
  g_autoptr(GError) error = NULL;

  g_subprocess_send_signal (f->backend, signal);
  g_subprocess_wait (f->backend, NULL, &error);
  g_assert_no_error (error);
  if (signal == SIGTERM)
    {
      g_assert_true (g_subprocess_get_if_exited (f->backend));
      g_assert_cmpint (g_subprocess_get_exit_status (f->backend), ==, 0);
    }
  g_clear_object (&f->backend);
}

static void
write_account (Fixture *f)
{
  const LbTestAccount account = { .id = "work", .display_name = "Work",
                                  .user = "alice@example.test", .identity_name = "Alice",
                                  .port = servers->imaps_port, .password = "alice-password",
                                  .smtp_port = servers->submissions_port };

  lb_test_write_account (servers, f->config_dir, &account);
}

static void
clean_server (const char *user)
{
  g_autoptr(GError) error = NULL;

  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", user, "mailbox",
                           "*", "all", NULL);
  g_assert_no_error (error);
}

static gboolean
outbox_empty (gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(GVariant) items = NULL;

  if (!lb_bus_backend1_call_list_outbox_sync (f->proxy, &items, NULL, NULL))
    return FALSE;
  for (gsize i = 0; i < g_variant_n_children (items); i++)
    {
      g_autoptr(GVariant) details = NULL;
      const char *state = "";

      g_variant_get_child (items, i, "(&s@a{sv})", NULL, &details);
      g_variant_lookup (details, "state", "&s", &state);
      if (strcmp (state, "queued") == 0 || strcmp (state, "sending") == 0)
        return FALSE;
      g_assert_cmpstr (state, !=, "failed");
    }
  return TRUE;
}

/* Message-ID → how many times @user's @mailbox holds it. */
static GHashTable *
server_counts (const char *user,
               const char *mailbox)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  GHashTable *counts = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", user,
                           "hdr.message-id", "mailbox", mailbox, "all", NULL);
  g_assert_no_error (error);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    {
      const char *id = strstr (lines[i], "<durability-");

      if (id != NULL)
        {
          g_autofree char *key = g_strndup (id, strcspn (id, ">") + 1);

          g_hash_table_insert (counts, g_strdup (key),
                               GUINT_TO_POINTER (GPOINTER_TO_UINT (g_hash_table_lookup (counts, key)) + 1));
        }
    }
  return counts;
}

/* Queue id → how many times the backends logged it as interrupted mid-send (each time,
 * one more delivery may have happened). */
static GHashTable *
interrupted_ids (Fixture *f)
{
  GHashTable *ids = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  for (guint n = 1; n <= f->starts; n++)
    {
      g_autofree char *path = g_strdup_printf ("%s/backend-%u.log", f->log_dir, n);
      g_autofree char *text = NULL;
      const char *p;

      if (!g_file_get_contents (path, &text, NULL, NULL))
        continue;
      for (p = text; (p = strstr (p, "Message ")) != NULL; p++)
        {
          const char *end = strstr (p, " (from ");

          const char *eol = end != NULL ? strchr (end, '\n') : NULL;

          if (end != NULL && end - p < 80 &&
              g_strstr_len (end, eol != NULL ? eol - end : -1, "may arrive twice") != NULL)
            {
              g_autofree char *id = g_strndup (p + strlen ("Message "),
                                               end - p - strlen ("Message "));
              guint seen = GPOINTER_TO_UINT (g_hash_table_lookup (ids, id));

              g_hash_table_insert (ids, g_strdup (id), GUINT_TO_POINTER (seen + 1));
            }
        }
    }
  return ids;
}

static void
run_round (guint round)
{
  Fixture fx = { 0 };
  Fixture *f = &fx;
  g_autoptr(GError) error = NULL;
  g_autoptr(GThread) thread = NULL;
  g_autoptr(GHashTable) delivered = NULL;
  g_autoptr(GHashTable) sent = NULL;
  g_autoptr(GHashTable) twice = NULL;
  Client *c = g_new0 (Client, 1);
  GRand *rand = g_rand_new ();
  guint kills = 0, acked = 0, unknown = 0, duplicates = 0;
  gint64 start = g_get_monotonic_time ();

  clean_server ("alice@example.test");
  clean_server ("bob@example.test");
  f->dir = g_dir_make_tmp ("lb-durability-XXXXXX", &error);
  g_assert_no_error (error);
  f->config_dir = g_build_filename (f->dir, "config", NULL);
  f->data_dir = g_build_filename (f->dir, "data", NULL);
  f->log_dir = g_build_filename (f->dir, "logs", NULL);
  f->socket_path = g_build_filename (f->dir, "relay.sock", NULL);
  g_mkdir_with_parents (f->log_dir, 0700);
  write_account (f);
  f->proxy = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                     G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START |
                                                     G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                     "org.letterbox.Backend",
                                                     "/org/letterbox/Backend", NULL, &error);
  g_assert_no_error (error);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (f->proxy), 60000);

  start_backend (f);
  c->socket_path = f->socket_path;
  thread = g_thread_new ("durability-client", client_thread, c);

  /* SIGKILL at random moments while messages come in, and twice more while the outbox
   * is still sending them out. */
  for (guint after = 0; after < 2;)
    {
      /* Counted as after the intake only when the intake had ended before the kill. */
      gboolean intake_done = g_atomic_int_get (&c->done);

      g_usleep (g_rand_int_range (rand, 100, 700) * 1000);
      kill_backend (f, SIGKILL);
      kills++;
      g_atomic_int_inc (&c->kills);
      start_backend (f);
      if (intake_done)
        after++;
    }
  g_thread_join (g_steal_pointer (&thread));
  g_assert_null (c->failure);

  /* Everything queued goes out; then a sync uploads the Sent copies. */
  g_assert_true (lb_test_wait_until (outbox_empty, f, 120000));
  {
    g_autoptr(GVariant) results = NULL;
    GVariantDict options;

    g_variant_dict_init (&options, NULL);
    lb_bus_backend1_call_sync_sync (f->proxy, (const char *const[]) { "work", NULL },
                                    g_variant_dict_end (&options), &results, NULL, &error);
    g_assert_no_error (error);
  }
  kill_backend (f, SIGTERM);

  delivered = server_counts ("bob@example.test", "INBOX");
  sent = server_counts ("alice@example.test", "Sent");
  twice = interrupted_ids (f);
  for (guint i = 0; i < N_MESSAGES; i++)
    {
      g_autofree char *key = g_strdup_printf ("<durability-%u@example.test>", i);
      guint n = GPOINTER_TO_UINT (g_hash_table_lookup (delivered, key));
      guint in_sent = GPOINTER_TO_UINT (g_hash_table_lookup (sent, key));
      g_autofree char *qid_sql = g_strdup_printf ("SELECT coalesce (max (queue_id), '') FROM "
                                                  "outbox WHERE subject = 'Durability %u'", i);
      g_autofree char *stored_qid = lb_test_store_query (f->data_dir, qid_sql);
      /* The queue id: from the 250 reply, or (no reply came) from the outbox itself. */
      const char *qid = c->queue_id[i] != NULL ? c->queue_id[i] : stored_qid;
      guint interruptions = GPOINTER_TO_UINT (g_hash_table_lookup (twice, qid));
      g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM messages m JOIN folders f "
                                              "ON f.id = m.folder_id WHERE f.account_id = 'work' "
                                              "AND f.role = 'sent' AND m.message_id = "
                                              "'durability-%u@example.test'", i);
      gint64 in_store = lb_test_store_query_int (f->data_dir, sql);

      if (c->outcome[i] == OUTCOME_ACKED)
        {
          acked++;
          if (n == 0)
            g_error ("message %u (%s) got 250 and was never delivered", i, c->queue_id[i]);
        }
      else
        {
          g_assert_cmpint (c->outcome[i], ==, OUTCOME_UNKNOWN);
          unknown++;
        }
      if (n > 1)
        {
          duplicates++;
          /* One more delivery per send the backend logged as interrupted, no more. */
          if (n > 1 + interruptions)
            g_error ("message %u (%s) was delivered %u times, interrupted %u times", i, qid,
                     n, interruptions);
        }
      /* One Sent copy of every delivered message, none of the others. */
      if (in_store != (n > 0 ? 1 : 0))
        {
          g_autofree char *rows_sql = g_strdup_printf ("SELECT m.id, m.uid, m.import_key, "
                                                       "f.name FROM messages m JOIN folders f "
                                                       "ON f.id = m.folder_id WHERE m.message_id "
                                                       "= 'durability-%u@example.test'", i);
          g_autofree char *rows = lb_test_store_query (f->data_dir, rows_sql);

          g_error ("message %u (%s, outcome %d, delivered %u, on the server's Sent %u): "
                   "%" G_GINT64_FORMAT " Sent copies in the store:\n%s", i, c->queue_id[i],
                   c->outcome[i], n, in_sent, in_store, rows);
        }
      g_assert_cmpuint (in_sent, ==, n > 0 ? 1 : 0);
    }
  g_test_message ("round %u: %u kills, %u messages acked, %u unknown (killed after the final "
                  "dot), %u reconnects, %u interrupted mid-send, %u delivered more than once, "
                  "%.1f s", round, kills, acked, unknown, c->reconnects,
                  g_hash_table_size (twice), duplicates,
                  (g_get_monotonic_time () - start) / 1e6);
  /* At least one kill while the messages came in, and two while they went out. */
  g_assert_cmpuint (kills, >=, 3);
  g_assert_cmpuint (acked, >, 0);

  {
    g_autofree char *check = lb_test_store_query (f->data_dir, "PRAGMA integrity_check");

    g_assert_cmpstr (check, ==, "ok");
  }
  for (guint i = 0; i < N_MESSAGES; i++)
    g_free (c->queue_id[i]);
  g_free (c);
  g_rand_free (rand);
  g_clear_object (&f->proxy);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->config_dir);
  g_free (f->data_dir);
  g_free (f->log_dir);
  g_free (f->socket_path);
}

static void
test_kill_while_relaying (void)
{
  const char *env = g_getenv ("LB_DURABILITY_ROUNDS");
  guint rounds = env != NULL ? (guint) g_ascii_strtoull (env, NULL, 10) : 1;

  if (servers->submissions_port == 0)
    {
      g_test_skip ("no Postfix submission server (Postfix needs root)");
      return;
    }

  for (guint r = 1; r <= MAX (rounds, 1); r++)
    run_round (r);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  backend_path = g_getenv ("LB_BACKEND_PATH");
  g_assert_nonnull (backend_path);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  bus = lb_test_bus_start (NULL);

  g_test_add_func ("/backend-durability/kill-while-relaying", test_kill_while_relaying);
  status = g_test_run ();

  lb_test_bus_stop (bus);
  lb_test_servers_stop (servers);
  return status;
}
