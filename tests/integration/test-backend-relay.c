/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <sysexits.h>

#include "lb-bus-backend1.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/*
 * The relay end to end, with real clients: letterbox-backend runs on a private bus with
 * its relay on a free TCP port of 127.0.0.1 and on the socket in a temporary
 * XDG_RUNTIME_DIR, and one account, "work" (alice@example.test), that sends through the
 * fixture's Postfix (submissions, implicit TLS, the fixture's CA). swaks, msmtp and
 * python's smtplib submit over TCP with AUTH (without it: 530, nothing queued);
 * letterbox-sendmail -t and bsd-mailx over the socket. Each message must reach Dovecot
 * byte for byte behind the servers' trace fields, be handed to Postfix once, and leave
 * one Sent copy, in the store and — after a Sync over D-Bus — on the server. Mail for
 * the local user lands in Local Folders' Inbox and never reaches Postfix. At the end the
 * backend (sanitized in the ASan build) must exit 0 on SIGTERM.
 */

static LbTestServers *servers;
static LbTestBus *bus;
static const char *backend_path;
static const char *sendmail_path;

static struct
{
  char *home;            /* HOME, XDG_* (lb_test_make_home) */
  char *config_dir;      /* LETTERBOX_CONFIG_DIR: the account and the relay secret */
  char *data_dir;
  char *log_path;        /* the backend's stderr */
  char *socket_path;     /* $XDG_RUNTIME_DIR/letterbox/relay.sock */
  char *secret;
  char *secret_path;
  guint16 port;
  GSubprocess *backend;
  LbBusBackend1 *proxy;
  /* Subjects of the messages sent to the server, for the Sent copies checked at the end. */
  GPtrArray *sent_subjects;
} b;

/* ---- Helpers ---- */

static void
dump_logs (void)
{
  g_autofree char *backend_log = NULL;
  g_autofree char *postfix_log = lb_test_servers_dup_log (servers, "postfix");

  g_file_get_contents (b.log_path, &backend_log, NULL, NULL);
  g_test_message ("letterbox-backend's log:\n%s", backend_log != NULL ? backend_log : "");
  g_test_message ("Postfix's log:\n%s", postfix_log);
}

static char *
crlf (const char *text)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  return g_strjoinv ("\r\n", lines);
}

typedef struct
{
  gboolean done;
  char *out;
  char *err;
  GError *error;
} Communicated;

static void
communicate_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Communicated *c = user_data;

  g_subprocess_communicate_utf8_finish (G_SUBPROCESS (source), result, &c->out, &c->err,
                                        &c->error);
  c->done = TRUE;
}

static gboolean
communicated (gpointer user_data)
{
  return ((Communicated *) user_data)->done;
}

/* Runs a client to its end, for at most 60 s; its exit status (-1 for a signal). */
static int
run_client (const char * const  *argv,
            const char          *mailrc,
            const char          *input,
            char               **out,
            char               **err)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GError) error = NULL;
  Communicated c = { 0 };
  int status;

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDIN_PIPE |
                                        G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  g_subprocess_launcher_set_child_setup (launcher, lb_test_child_setup, NULL, NULL);
  if (mailrc != NULL)
    g_subprocess_launcher_setenv (launcher, "MAILRC", mailrc, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, argv, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, input != NULL ? input : "", NULL, communicate_cb,
                                       &c);
  if (!lb_test_wait_until (communicated, &c, 60000))
    {
      g_subprocess_force_exit (proc);
      g_assert_true (lb_test_wait_until (communicated, &c, 10000));
      dump_logs ();
      g_error ("%s did not finish within 60 s", argv[0]);
    }
  g_assert_no_error (c.error);
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  g_test_message ("%s: exit %d\nstdout: %s\nstderr: %s", argv[0], status, c.out, c.err);
  if (out != NULL)
    *out = g_steal_pointer (&c.out);
  if (err != NULL)
    *err = g_steal_pointer (&c.err);
  g_free (c.out);
  g_free (c.err);
  return status;
}

static char *
sql_quote (const char *text)
{
  char *quoted = sqlite3_mprintf ("%Q", text);
  char *copy = g_strdup (quoted);

  sqlite3_free (quoted);
  return copy;
}

/* The state of the outbox row with @subject ("" when there is none). */
static char *
outbox_state (const char *subject)
{
  g_autofree char *q = sql_quote (subject);
  g_autofree char *sql = g_strdup_printf ("SELECT coalesce (account_id, 'NULL') || ' ' || state "
                                          "|| ' ' || attempts FROM outbox WHERE subject = %s", q);

  return lb_test_store_query (b.data_dir, sql);
}

/* Everything about the outbox table that a queued message would change. */
static char *
outbox_snapshot (void)
{
  return lb_test_store_query (b.data_dir, "SELECT count(*), coalesce (max (id), 0), "
                                          "coalesce (group_concat (queue_id || state), '') "
                                          "FROM outbox");
}

/* How many messages with @subject @account's folder of @role holds in the store. */
static gint64
store_count (const char *account,
             const char *role,
             const char *subject)
{
  g_autofree char *q = sql_quote (subject);
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = '%s' AND "
                                          "f.role = '%s' AND m.subject = %s", account, role, q);

  return lb_test_store_query_int (b.data_dir, sql);
}

/* The bytes the store keeps for the one message with @subject in @account's @role. */
static GBytes *
store_body (const char *account,
            const char *role,
            const char *subject)
{
  g_autofree char *q = sql_quote (subject);
  g_autofree char *sql = g_strdup_printf ("SELECT m.body_id FROM messages m JOIN folders f ON "
                                          "f.id = m.folder_id WHERE f.account_id = '%s' AND "
                                          "f.role = '%s' AND m.subject = %s AND "
                                          "m.body_state = 2", account, role, q);
  gint64 body_id = lb_test_store_query_int (b.data_dir, sql);
  g_autofree char *name = g_strdup_printf ("%s.db", account);
  g_autofree char *path = g_build_filename (b.data_dir, "bodies", name, NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *s = NULL;
  GBytes *bytes;

  g_assert_cmpint (body_id, >, 0);
  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 5000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT data FROM bodies WHERE id = ?", -1, &s, NULL),
                   ==, SQLITE_OK);
  sqlite3_bind_int64 (s, 1, body_id);
  g_assert_cmpint (sqlite3_step (s), ==, SQLITE_ROW);
  bytes = g_bytes_new (sqlite3_column_blob (s, 0), (gsize) sqlite3_column_bytes (s, 0));
  sqlite3_finalize (s);
  sqlite3_close (db);
  return bytes;
}

/* How many messages with @subject @user's @mailbox holds on the server. */
static guint
server_count (const char *user,
              const char *mailbox,
              const char *subject)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  lb_test_servers_doveadm (servers, NULL, &out, &error, "search", "-u", user, "mailbox",
                           mailbox, "header", "Subject", subject, NULL);
  g_assert_no_error (error);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (lines[i][0] != '\0')
      n++;
  return n;
}

/* The one message with @subject in @user's INBOX, as Dovecot stores it. */
static char *
server_text (const char *user,
             const char *subject)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  g_assert_cmpuint (server_count (user, "INBOX", subject), ==, 1);
  lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", user, "text", "mailbox",
                           "INBOX", "header", "Subject", subject, NULL);
  g_assert_no_error (error);
  /* doveadm's pager format: "text:" on a line of its own, then the message as it is. */
  g_assert_true (g_str_has_prefix (out, "text:\n"));
  return g_strdup (out + strlen ("text:\n"));
}

typedef struct
{
  const char *user;
  const char *subject;
  gint64 next_check;
} Delivery;

static gboolean
delivered (gpointer user_data)
{
  Delivery *d = user_data;

  /* doveadm is a process: asked ten times a second, not at every tick. */
  if (g_get_monotonic_time () < d->next_check)
    return FALSE;
  d->next_check = g_get_monotonic_time () + 100 * 1000;
  return server_count (d->user, "INBOX", d->subject) > 0;
}

typedef struct
{
  const char *subject;
  const char *state;
} OutboxWait;

static gboolean
outbox_reached (gpointer user_data)
{
  OutboxWait *w = user_data;
  g_autofree char *state = outbox_state (w->subject);

  return g_str_equal (state, w->state);
}

static gboolean
sent_copy_in (gpointer user_data)
{
  return store_count ("work", "sent", user_data) > 0;
}

/* The message with @subject went out through the outbox once and reached @user: the row
 * is sent after one attempt, the store has one Sent copy, the server's INBOX one copy. */
static void
wait_sent_and_delivered (const char *user,
                         const char *subject)
{
  OutboxWait w = { subject, "work sent 1" };
  Delivery d = { user, subject, 0 };

  if (!lb_test_wait_until (outbox_reached, &w, 30000) ||
      !lb_test_wait_until (sent_copy_in, (gpointer) subject, 10000) ||
      !lb_test_wait_until (delivered, &d, 30000))
    {
      g_autofree char *state = outbox_state (subject);

      dump_logs ();
      g_error ("“%s” was not sent and delivered to %s (outbox: “%s”, Sent copies: %"
               G_GINT64_FORMAT ", in the INBOX: %u)", subject, user, state,
               store_count ("work", "sent", subject), server_count (user, "INBOX", subject));
    }
  g_assert_cmpint (store_count ("work", "sent", subject), ==, 1);
  g_assert_cmpuint (server_count (user, "INBOX", subject), ==, 1);
  if (!g_ptr_array_find_with_equal_func (b.sent_subjects, subject, g_str_equal, NULL))
    g_ptr_array_add (b.sent_subjects, g_strdup (subject));
}

/* The first line's value of the first field @name in the header of @text ("" if none). */
static char *
header_value (const char *text,
              const char *name)
{
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);
  gsize len = strlen (name);

  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    if (g_ascii_strncasecmp (lines[i], name, len) == 0 && lines[i][len] == ':')
      return g_strstrip (g_strdup (lines[i] + len + 1));
  return g_strdup ("");
}

/* Postfix's cleanup logged the message of @user's INBOX with @subject once: the outbox
 * handed it to the server once (whatever Message-ID it has, given or added). */
static void
assert_postfix_took_once (const char *user,
                          const char *subject)
{
  g_autofree char *text = server_text (user, subject);
  g_autofree char *id = header_value (text, "Message-ID");
  g_autofree char *log = lb_test_servers_dup_log (servers, "postfix");
  g_autofree char *needle = g_strdup_printf ("message-id=%s", id);
  guint n = 0;

  g_assert_true (g_str_has_prefix (id, "<") && g_str_has_suffix (id, ">"));
  for (const char *p = strstr (log, needle); p != NULL; p = strstr (p + 1, needle))
    n++;
  g_assert_cmpuint (n, ==, 1);
}

/* The fields the servers put in front of a message they deliver through Dovecot's LMTP,
 * in this order (as found in the fixture's mailboxes): Return-Path (the envelope
 * sender), Delivered-To (the recipient) and a Received, all three from Dovecot's LMTP;
 * then the Received of Postfix's smtpd. Nothing else is added and nothing changed: the
 * messages carry From, To, Date and Message-ID, so Postfix's cleanup fills in nothing.
 * (The relay itself adds no field; the outbox adds Date and Message-ID in front only
 * when a message lacks them — the python step sends such a message.) */
static const char trace_fields[] = "Return-Path,Delivered-To,Received,Received";

/* The names of the header fields of @text (continuation lines skipped), comma-joined. */
static char *
field_names (const char *text)
{
  g_autoptr(GString) names = g_string_new (NULL);
  g_auto(GStrv) lines = g_strsplit (text, "\n", -1);

  for (guint i = 0; lines[i] != NULL && lines[i][0] != '\0'; i++)
    {
      const char *colon = strchr (lines[i], ':');

      if (lines[i][0] == ' ' || lines[i][0] == '\t')
        continue;
      g_assert_nonnull (colon);
      g_string_append_printf (names, "%s%.*s", names->len > 0 ? "," : "",
                              (int) (colon - lines[i]), lines[i]);
    }
  return g_string_free (g_steal_pointer (&names), FALSE);
}

/* @user's copy is @sent (CRLF, as SMTP carried it) behind exactly the trace fields, and
 * the fields @added (comma-separated; NULL for none) that the outbox puts in front when
 * the message lacks them. The envelope sender is alice's address. Dovecot keeps its
 * Maildir files with LF line ends (mail_save_crlf = no) and doveadm prints them as
 * stored, so the comparison is with @sent's CRLFs made LF; @sent has no bare CR or LF
 * (the relay refuses those), so nothing else is lost in between. */
static void
assert_delivered_exactly (const char *user,
                          const char *subject,
                          const char *sent,
                          const char *added)
{
  g_autofree char *text = server_text (user, subject);
  g_auto(GStrv) lines = g_strsplit (sent, "\r\n", -1);
  g_autofree char *expected = g_strjoinv ("\n", lines);
  g_autofree char *expected_names = g_strjoin (added != NULL ? "," : "", trace_fields,
                                               added != NULL ? added : "", NULL);
  g_autofree char *front = NULL;
  g_autofree char *names = NULL;
  gsize len = strlen (text);
  gsize expected_len = strlen (expected);

  g_assert_null (strchr (expected, '\r'));
  if (len < expected_len || strcmp (text + len - expected_len, expected) != 0)
    g_error ("%s's copy of “%s” is not the message sent.\nSent:\n%s\nStored:\n%s", user,
             subject, expected, text);
  front = g_strndup (text, len - expected_len);
  names = field_names (front);
  g_test_message ("%s's copy: %s in front of the %zu bytes sent", user, names, strlen (sent));
  g_assert_cmpstr (names, ==, expected_names);
  g_assert_true (g_str_has_prefix (front, "Return-Path: <alice@example.test>\n"));
}

/* A message as a program writes it (LF line ends): the usual header fields, dots at line
 * starts that SMTP must stuff and unstuff, 8-bit text. With @message_id NULL it has no
 * Date and no Message-ID, for the outbox to add. */
static char *
make_message (const char *subject,
              const char *message_id)
{
  g_autofree char *date_and_id = NULL;

  if (message_id != NULL)
    date_and_id = g_strdup_printf ("Date: Mon, 03 Jun 2024 10:00:00 +0200\n"
                                   "Message-ID: <%s>\n", message_id);
  return g_strdup_printf ("From: Alice <alice@example.test>\n"
                          "To: Bob <bob@example.test>\n"
                          "Subject: %s\n"
                          "%s"
                          "MIME-Version: 1.0\n"
                          "Content-Type: text/plain; charset=UTF-8\n"
                          "Content-Transfer-Encoding: 8bit\n"
                          "\n"
                          "Hello Bob,\n"
                          ".a leading dot\n"
                          "..two dots\n"
                          "Gr\xc3\xbc\xc3\x9f" "e aus K\xc3\xb6ln.\n"
                          "\n"
                          "-- \n"
                          "Alice\n", subject, date_and_id != NULL ? date_and_id : "");
}

/* ---- The backend ---- */

static gboolean
relay_ready (gpointer user_data)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketAddress) unix_address = g_unix_socket_address_new (b.socket_path);
  g_autoptr(GSocketConnection) unix_connection = NULL;
  g_autoptr(GSocketConnection) tcp_connection = NULL;

  if (g_subprocess_get_identifier (b.backend) == NULL)
    return TRUE;   /* gone: the caller says so */
  unix_connection = g_socket_client_connect (client, G_SOCKET_CONNECTABLE (unix_address), NULL,
                                             NULL);
  if (unix_connection == NULL)
    return FALSE;
  tcp_connection = g_socket_client_connect_to_host (client, "127.0.0.1", b.port, NULL, NULL);
  return tcp_connection != NULL;
}

static GVariant *
account_state (const char *id)
{
  g_autoptr(GVariant) accounts = NULL;

  if (!lb_bus_backend1_call_list_accounts_sync (b.proxy, &accounts, NULL, NULL))
    return NULL;
  for (gsize i = 0; i < g_variant_n_children (accounts); i++)
    {
      g_autoptr(GVariant) state = NULL;
      const char *name;

      g_variant_get_child (accounts, i, "(&s@a{sv})", &name, &state);
      if (g_str_equal (name, id))
        return g_steal_pointer (&state);
    }
  return NULL;
}

static gboolean
work_online (gpointer user_data)
{
  g_autoptr(GVariant) state = account_state ("work");
  const char *value = NULL;

  return state != NULL && g_variant_lookup (state, "state", "&s", &value) &&
         g_str_equal (value, "online");
}

static void
write_account (void)
{
  const LbTestAccount account = { .id = "work", .display_name = "Work",
                                  .user = "alice@example.test", .identity_name = "Alice",
                                  .port = servers->imaps_port, .password = "alice-password",
                                  .smtp_port = servers->submissions_port };

  lb_test_write_account (servers, b.config_dir, &account);
}

static void
start_backend (void)
{
  const char *const environment[] = { "LETTERBOX_OUTBOX_RETRY_BASE_MS=100", NULL };
  g_autoptr(GError) error = NULL;
  g_autofree char *port = NULL;

  b.port = lb_test_free_port ();
  port = g_strdup_printf ("%u", (guint) b.port);
  {
    const char *const arguments[] = { "--relay-port", port, "--poll-interval", "600",
                                      "--retry-base", "100", NULL };

    b.backend = lb_test_spawn_backend (b.config_dir, b.data_dir, b.log_path, environment,
                                       arguments);
  }

  b.proxy = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                    G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START |
                                                    G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                    "org.letterbox.Backend",
                                                    "/org/letterbox/Backend", NULL, &error);
  g_assert_no_error (error);
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (b.proxy), 60000);

  /* Both listeners accept, so the relay's password file has been written; the first
   * sync found the account's folders (its Sent among them). */
  if (!lb_test_wait_until (relay_ready, NULL, 20000) ||
      g_subprocess_get_identifier (b.backend) == NULL ||
      !lb_test_wait_until (work_online, NULL, 20000))
    {
      dump_logs ();
      g_error ("letterbox-backend did not start its relay on %s and 127.0.0.1:%u and sync",
               b.socket_path, (guint) b.port);
    }
  g_file_get_contents (b.secret_path, &b.secret, NULL, &error);
  g_assert_no_error (error);
  g_strchomp (b.secret);
  g_assert_cmpuint (strlen (b.secret), ==, 64);

  /* Status names both addresses. */
  {
    g_autoptr(GVariant) status = NULL;
    const char *socket = NULL;
    guint16 relay_port = 0;

    lb_bus_backend1_call_status_sync (b.proxy, &status, NULL, &error);
    g_assert_no_error (error);
    g_assert_true (g_variant_lookup (status, "relay-socket", "&s", &socket));
    g_assert_true (g_variant_lookup (status, "relay-port", "q", &relay_port));
    g_assert_cmpstr (socket, ==, b.socket_path);
    g_assert_cmpuint (relay_port, ==, b.port);
  }
}

static int
stop_backend (void)
{
  int status = lb_test_stop_backend (b.backend, 30000);

  g_clear_object (&b.backend);
  return status;
}

static gboolean
skip_without_postfix (void)
{
  if (servers->submissions_port != 0 && b.backend != NULL)
    return FALSE;
  g_test_skip (servers->submissions_port == 0 ? "no Postfix (it needs root)"
                                              : "the backend is no longer running");
  return TRUE;
}

/* ---- 1, 2: swaks over TCP ---- */

static void
test_swaks_auth (void)
{
  const char *subject = "E2E swaks";
  const char *id = "e2e-swaks@example.test";
  g_autofree char *message = NULL;
  g_autofree char *sent = NULL;
  g_autofree char *path = NULL;
  g_autofree char *data_arg = NULL;
  g_autofree char *port = NULL;
  g_autofree char *out = NULL;
  g_autoptr(GBytes) copy = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_postfix ())
    return;
  message = make_message (subject, id);
  sent = crlf (message);
  /* swaks puts CRLF "." CRLF after the data itself: the file has no final line end. */
  path = g_build_filename (b.home, "swaks.eml", NULL);
  g_file_set_contents (path, message, (gssize) strlen (message) - 1, &error);
  g_assert_no_error (error);
  data_arg = g_strconcat ("@", path, NULL);
  port = g_strdup_printf ("%u", (guint) b.port);
  {
    const char *argv[] = { "swaks", "--server", "127.0.0.1", "--port", port,
                           "--from", "alice@example.test", "--to", "bob@example.test",
                           "--auth", "PLAIN", "--auth-user", g_get_user_name (),
                           "--auth-password", b.secret, "--data", data_arg, NULL };

    g_assert_cmpint (run_client (argv, NULL, NULL, &out, NULL), ==, 0);
  }
  g_assert_nonnull (strstr (out, "235 2.7.0 "));
  g_assert_nonnull (strstr (out, "250 2.0.0 Ok: queued as "));

  wait_sent_and_delivered ("bob@example.test", subject);
  assert_postfix_took_once ("bob@example.test", subject);
  assert_delivered_exactly ("bob@example.test", subject, sent, NULL);

  /* The Sent copy is the message as the client sent it, byte for byte (it had a Date
   * and a Message-ID, so the outbox added nothing). */
  copy = store_body ("work", "sent", subject);
  g_assert_cmpmem (g_bytes_get_data (copy, NULL), g_bytes_get_size (copy), sent, strlen (sent));

  /* A sync uploads it to the server's Sent, once; the store still has one (the upload's
   * UID is the same row's, not a second message). */
  {
    g_autoptr(GVariant) results = NULL;
    GVariantDict options;

    g_variant_dict_init (&options, NULL);
    lb_bus_backend1_call_sync_sync (b.proxy, (const char *const[]) { "work", NULL },
                                    g_variant_dict_end (&options), &results, NULL, &error);
    g_assert_no_error (error);
  }
  g_assert_cmpuint (server_count ("alice@example.test", "Sent", subject), ==, 1);
  g_assert_cmpint (store_count ("work", "sent", subject), ==, 1);
}

static void
test_swaks_no_auth (void)
{
  g_autofree char *message = NULL;
  g_autofree char *path = NULL;
  g_autofree char *data_arg = NULL;
  g_autofree char *port = NULL;
  g_autofree char *out = NULL;
  g_autofree char *before = NULL;
  g_autofree char *after = NULL;
  g_autofree char *row = NULL;
  g_autoptr(GError) error = NULL;

  if (skip_without_postfix ())
    return;
  message = make_message ("E2E refused without AUTH", "e2e-noauth@example.test");
  path = g_build_filename (b.home, "noauth.eml", NULL);
  g_file_set_contents (path, message, (gssize) strlen (message) - 1, &error);
  g_assert_no_error (error);
  data_arg = g_strconcat ("@", path, NULL);
  port = g_strdup_printf ("%u", (guint) b.port);
  before = outbox_snapshot ();
  {
    const char *argv[] = { "swaks", "--server", "127.0.0.1", "--port", port,
                           "--from", "alice@example.test", "--to", "bob@example.test",
                           "--data", data_arg, NULL };

    g_assert_cmpint (run_client (argv, NULL, NULL, &out, NULL), !=, 0);
  }
  g_assert_nonnull (strstr (out, "530 5.7.0 Authentication required"));
  g_assert_null (strstr (out, "queued as"));
  after = outbox_snapshot ();
  g_assert_cmpstr (after, ==, before);
  row = outbox_state ("E2E refused without AUTH");
  g_assert_cmpstr (row, ==, "");
}

/* ---- 3: msmtp and python's smtplib over TCP ---- */

static void
test_msmtp (void)
{
  const char *subject = "E2E msmtp";
  const char *id = "e2e-msmtp@example.test";
  g_autofree char *message = NULL;
  g_autofree char *port = NULL;
  g_autofree char *user = NULL;
  g_autofree char *passwordeval = NULL;

  if (skip_without_postfix ())
    return;
  message = make_message (subject, id);
  port = g_strdup_printf ("--port=%u", (guint) b.port);
  user = g_strdup_printf ("--user=%s", g_get_user_name ());
  /* The password from the secret file, as the man page tells scripts to take it; with
   * TLS off msmtp's --auth=on refuses PLAIN, so the method is named. */
  passwordeval = g_strdup_printf ("--passwordeval=cat %s", b.secret_path);
  {
    const char *argv[] = { "msmtp", "--host=127.0.0.1", port, "--auth=plain", user,
                           passwordeval, "--tls=off", "--from=alice@example.test", "--",
                           "bob@example.test", NULL };

    g_assert_cmpint (run_client (argv, NULL, message, NULL, NULL), ==, 0);
  }
  wait_sent_and_delivered ("bob@example.test", subject);
  assert_postfix_took_once ("bob@example.test", subject);
  {
    g_autofree char *sent = crlf (message);

    assert_delivered_exactly ("bob@example.test", subject, sent, NULL);
  }
}

static const char python_client[] =
  "import smtplib, sys\n"
  "port, user, password = sys.argv[1:4]\n"
  "msg = sys.stdin.buffer.read()\n"
  "s = smtplib.SMTP('127.0.0.1', int(port), timeout=30)\n"
  "s.ehlo('python.test')\n"
  "s.login(user, password)\n"
  "s.sendmail('alice@example.test', ['bob@example.test'], msg)\n"
  "s.quit()\n"
  "print('sent')\n";

static void
test_python (void)
{
  const char *subject = "E2E python smtplib";
  g_autofree char *message = NULL;
  g_autofree char *sent = NULL;
  g_autofree char *port = NULL;
  g_autofree char *out = NULL;
  g_autofree char *text = NULL;
  g_autofree char *id = NULL;
  g_autoptr(GBytes) copy = NULL;

  if (skip_without_postfix ())
    return;
  /* Without Date and Message-ID: what the relay's side adds, and only that. */
  message = make_message (subject, NULL);
  /* smtplib sends the bytes as they are (only dots stuffed): given with CRLF. */
  sent = crlf (message);
  port = g_strdup_printf ("%u", (guint) b.port);
  {
    const char *argv[] = { "/usr/bin/python3", "-c", python_client, port, g_get_user_name (),
                           b.secret, NULL };

    g_assert_cmpint (run_client (argv, NULL, sent, &out, NULL), ==, 0);
  }
  g_assert_cmpstr (out, ==, "sent\n");
  wait_sent_and_delivered ("bob@example.test", subject);
  assert_postfix_took_once ("bob@example.test", subject);
  assert_delivered_exactly ("bob@example.test", subject, sent, "Date,Message-ID");
  text = server_text ("bob@example.test", subject);
  id = header_value (text, "Message-ID");
  /* In the sender's domain. */
  g_assert_true (g_str_has_suffix (id, "@example.test>"));

  /* The Sent copy is what went out: the two fields, then the bytes sent. */
  copy = store_body ("work", "sent", subject);
  g_assert_true (g_str_has_prefix (g_bytes_get_data (copy, NULL), "Date: "));
  g_assert_cmpuint (g_bytes_get_size (copy), >, strlen (sent));
  g_assert_cmpmem ((const char *) g_bytes_get_data (copy, NULL) + g_bytes_get_size (copy) -
                   strlen (sent), strlen (sent), sent, strlen (sent));
  {
    g_autofree char *header = g_strndup (g_bytes_get_data (copy, NULL),
                                         g_bytes_get_size (copy) - strlen (sent));
    g_autofree char *expected = g_strdup_printf ("\r\nMessage-ID: %s\r\n", id);

    g_assert_true (g_str_has_suffix (header, expected));
  }
}

/* ---- 4, 5: letterbox-sendmail and mailx over the socket ---- */

static void
test_sendmail_bcc (void)
{
  const char *subject = "E2E sendmail -t";
  const char *id = "e2e-sendmail@example.test";
  g_autofree char *input = NULL;
  g_autofree char *without_bcc = NULL;
  g_autofree char *sent = NULL;
  g_autofree char *err = NULL;
  g_autofree char *carol = NULL;

  if (skip_without_postfix ())
    return;
  input = g_strdup_printf ("From: Alice <alice@example.test>\n"
                           "To: Bob <bob@example.test>\n"
                           "Bcc: carol@example.test\n"
                           "Subject: %s\n"
                           "Date: Mon, 03 Jun 2024 11:00:00 +0200\n"
                           "Message-ID: <%s>\n"
                           "\n"
                           "For Bob, and Carol sees it too.\n"
                           "..two dots\n", subject, id);
  {
    const char *argv[] = { sendmail_path, "-t", "-i", NULL };

    g_assert_cmpint (run_client (argv, NULL, input, NULL, &err), ==, EX_OK);
  }
  g_assert_cmpstr (err, ==, "");

  /* Both got it; the message is the one given less its Bcc field, in both mailboxes. */
  wait_sent_and_delivered ("bob@example.test", subject);
  assert_postfix_took_once ("bob@example.test", subject);
  {
    Delivery d = { "carol@example.test", subject, 0 };

    if (!lb_test_wait_until (delivered, &d, 30000))
      {
        dump_logs ();
        g_error ("carol (Bcc) did not get “%s”", subject);
      }
  }
  g_assert_cmpuint (server_count ("carol@example.test", "INBOX", subject), ==, 1);
  {
    const char *bcc = strstr (input, "Bcc: ");
    const char *end = strchr (bcc, '\n') + 1;

    without_bcc = g_strdup_printf ("%.*s%s", (int) (bcc - input), input, end);
  }
  sent = crlf (without_bcc);
  assert_delivered_exactly ("bob@example.test", subject, sent, NULL);
  {
    g_autofree char *bob = server_text ("bob@example.test", subject);

    g_assert_null (strstr (bob, "Bcc"));
    g_assert_null (strstr (bob, "carol"));
  }
  /* carol's copy came through Postfix's virtual(8), not Dovecot's LMTP: other trace
   * fields, the same message behind them. */
  carol = server_text ("carol@example.test", subject);
  {
    g_auto(GStrv) lines = g_strsplit (sent, "\r\n", -1);
    g_autofree char *expected = g_strjoinv ("\n", lines);

    g_assert_true (g_str_has_suffix (carol, expected));
  }
  g_assert_null (strstr (carol, "Bcc"));
}

static void
test_mailx (void)
{
  const char *subject = "E2E mailx";
  g_autofree char *rc_text = g_strdup_printf ("set sendmail=%s\n", sendmail_path);
  g_autofree char *rc = g_build_filename (b.home, "mailrc", NULL);
  g_autofree char *text = NULL;
  g_autoptr(GError) error = NULL;
  const char *argv[] = { "mail", "-s", subject, "bob@example.test", NULL };

  if (skip_without_postfix ())
    return;
  g_file_set_contents (rc, rc_text, -1, &error);
  g_assert_no_error (error);
  /* bsd-mailx runs its "sendmail" with -i -t. */
  g_assert_cmpint (run_client (argv, rc, "Hello from mailx.\n.not the end\n", NULL, NULL), ==, 0);
  wait_sent_and_delivered ("bob@example.test", subject);
  assert_postfix_took_once ("bob@example.test", subject);
  text = server_text ("bob@example.test", subject);
  g_assert_true (g_str_has_prefix (text, "Return-Path: <alice@example.test>\n"));
  g_assert_nonnull (strstr (text, "\nSubject: E2E mailx\n"));
  g_assert_nonnull (strstr (text, "\nTo: bob@example.test\n"));
  g_assert_true (g_str_has_suffix (text, "\n\nHello from mailx.\n.not the end\n"));
}

/* ---- 6: the local user ---- */

static void
test_local_user (void)
{
  const char *subject = "E2E for the local user";
  const char *id = "e2e-local@example.test";
  g_autofree char *input = NULL;
  g_autofree char *sent = NULL;
  g_autofree char *err = NULL;
  g_autofree char *row = NULL;
  g_autofree char *log = NULL;
  g_autoptr(GBytes) copy = NULL;

  if (skip_without_postfix ())
    return;
  input = g_strdup_printf ("From: Cron Daemon <root@localhost>\n"
                           "To: %s\n"
                           "Subject: %s\n"
                           "Date: Mon, 03 Jun 2024 12:00:00 +0200\n"
                           "Message-ID: <%s>\n"
                           "\n"
                           "backup done\n", g_get_user_name (), subject, id);
  {
    const char *argv[] = { sendmail_path, "-i", "--", g_get_user_name (), "root", NULL };

    g_assert_cmpint (run_client (argv, NULL, input, NULL, &err), ==, EX_OK);
  }
  g_assert_cmpstr (err, ==, "");

  /* sendmail's 250 came after the outbox's fsync: the copy is in Local Folders' Inbox
   * already, once (the login name and root are the same user here, or two local
   * recipients of one copy), byte for byte as given (LF made CRLF). */
  g_assert_cmpint (store_count ("local", "inbox", subject), ==, 1);
  copy = store_body ("local", "inbox", subject);
  sent = crlf (input);
  g_assert_cmpmem (g_bytes_get_data (copy, NULL), g_bytes_get_size (copy), sent, strlen (sent));

  /* Its outbox row has no sending account and is done: nothing for Postfix. */
  row = outbox_state (subject);
  g_assert_cmpstr (row, ==, "NULL sent 0");
  g_assert_cmpint (store_count ("work", "sent", subject), ==, 0);
  log = lb_test_servers_dup_log (servers, "postfix");
  g_assert_null (strstr (log, id));
}

/* ---- The end: every Sent copy once, then SIGTERM ---- */

static void
test_sent_copies (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GVariant) results = NULL;
  GVariantDict options;

  if (skip_without_postfix ())
    return;
  g_variant_dict_init (&options, NULL);
  lb_bus_backend1_call_sync_sync (b.proxy, (const char *const[]) { "work", NULL },
                                  g_variant_dict_end (&options), &results, NULL, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < b.sent_subjects->len; i++)
    {
      const char *subject = g_ptr_array_index (b.sent_subjects, i);

      g_test_message ("Sent copies of “%s”: store %" G_GINT64_FORMAT ", server %u", subject,
                      store_count ("work", "sent", subject),
                      server_count ("alice@example.test", "Sent", subject));
      g_assert_cmpint (store_count ("work", "sent", subject), ==, 1);
      g_assert_cmpuint (server_count ("alice@example.test", "Sent", subject), ==, 1);
      /* … and nothing was delivered twice. */
      g_assert_cmpuint (server_count ("bob@example.test", "INBOX", subject), ==, 1);
    }
  g_assert_cmpint (lb_test_store_query_int (b.data_dir, "SELECT count(*) FROM outbox WHERE "
                                                        "state <> 'sent'"), ==, 0);
}

static void
test_sigterm (void)
{
  g_autofree char *check = NULL;
  int status;

  if (b.backend == NULL)
    {
      g_test_skip ("the backend was not started");
      return;
    }
  status = stop_backend ();
  if (status != 0 || g_test_verbose ())
    dump_logs ();
  g_assert_cmpint (status, ==, 0);
  g_assert_false (g_file_test (b.socket_path, G_FILE_TEST_EXISTS));
  check = lb_test_store_query (b.data_dir, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  g_autofree char *runtime = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  /* HOME and XDG_* in a temporary directory: mailx's dead.letter, msmtp's rc file and
   * the relay's socket ($XDG_RUNTIME_DIR/letterbox/relay.sock) stay in there. */
  b.home = lb_test_make_home ();
  backend_path = g_getenv ("LB_BACKEND_PATH");
  sendmail_path = g_getenv ("LB_SENDMAIL_PATH");
  g_assert_nonnull (backend_path);
  g_assert_nonnull (sendmail_path);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  /* GTestDBus unsets XDG_RUNTIME_DIR, which the relay and letterbox-sendmail need. */
  runtime = g_strdup (g_getenv ("XDG_RUNTIME_DIR"));
  bus = lb_test_bus_start (NULL);
  g_setenv ("XDG_RUNTIME_DIR", runtime, TRUE);

  b.config_dir = g_build_filename (b.home, "letterbox-config", NULL);
  b.data_dir = g_build_filename (b.home, "letterbox-data", NULL);
  b.log_path = g_build_filename (b.home, "backend.log", NULL);
  b.socket_path = g_build_filename (runtime, "letterbox", "relay.sock", NULL);
  b.secret_path = g_build_filename (b.config_dir, "relay-secret", NULL);
  b.sent_subjects = g_ptr_array_new_with_free_func (g_free);
  if (servers->submissions_port != 0)
    {
      write_account ();
      start_backend ();
    }

  g_test_add_func ("/backend-relay/tcp/swaks-auth", test_swaks_auth);
  g_test_add_func ("/backend-relay/tcp/swaks-no-auth", test_swaks_no_auth);
  g_test_add_func ("/backend-relay/tcp/msmtp", test_msmtp);
  g_test_add_func ("/backend-relay/tcp/python", test_python);
  g_test_add_func ("/backend-relay/unix/sendmail-bcc", test_sendmail_bcc);
  g_test_add_func ("/backend-relay/unix/mailx", test_mailx);
  g_test_add_func ("/backend-relay/unix/local-user", test_local_user);
  g_test_add_func ("/backend-relay/end/sent-copies", test_sent_copies);
  /* Last (GLib runs a suite's cases before its sub-suites, sub-suites in order): the
   * backend goes. */
  g_test_add_func ("/backend-relay/end/sigterm", test_sigterm);
  status = g_test_run ();

  if (b.backend != NULL)
    stop_backend ();
  g_clear_object (&b.proxy);
  lb_test_bus_stop (bus);
  lb_test_servers_stop (servers);
  lb_test_remove_tree (b.home);
  g_free (b.home);
  g_free (b.config_dir);
  g_free (b.data_dir);
  g_free (b.log_path);
  g_free (b.socket_path);
  g_free (b.secret);
  g_free (b.secret_path);
  g_ptr_array_unref (b.sent_subjects);
  return status;
}
