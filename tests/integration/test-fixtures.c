/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-test-util.h"

/*
 * The test fixtures themselves: the throwaway Dovecot and Postfix really run, speak TLS
 * with the certificate made for them (and only with it), take the test users' passwords,
 * refuse wrong ones, keep credentials off cleartext, and carry a message from SMTP
 * submission into an IMAP mailbox. The protocol talk here is a few hand-written lines
 * so that the fixtures are proven before the engine that will use them exists.
 */

static LbTestServers *servers;

typedef struct
{
  GIOStream *stream;
  GDataInputStream *in;
  GOutputStream *out;
} Client;

static void
client_set_stream (Client    *client,
                   GIOStream *stream)
{
  g_clear_object (&client->in);
  g_set_object (&client->stream, stream);
  client->in = g_data_input_stream_new (g_io_stream_get_input_stream (stream));
  g_data_input_stream_set_newline_type (client->in, G_DATA_STREAM_NEWLINE_TYPE_CR_LF);
  g_filter_input_stream_set_close_base_stream (G_FILTER_INPUT_STREAM (client->in), FALSE);
  client->out = g_io_stream_get_output_stream (stream);
}

static void
client_free (Client *client)
{
  if (client->stream != NULL)
    g_io_stream_close (client->stream, NULL, NULL);
  g_clear_object (&client->in);
  g_clear_object (&client->stream);
  g_free (client);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Client, client_free)

static GTlsDatabase *
fixture_ca (void)
{
  g_autoptr(GError) error = NULL;
  GTlsDatabase *db = g_tls_file_database_new (servers->ca_file, &error);

  g_assert_no_error (error);
  return db;
}

/* Wraps the client's connection in TLS and verifies the server against @db, for the
 * address the fixture's certificate names. */
static gboolean
client_start_tls (Client        *client,
                  guint16        port,
                  GTlsDatabase  *db,
                  GError       **error)
{
  g_autoptr(GSocketConnectable) identity = g_network_address_new (servers->host, port);
  g_autoptr(GIOStream) tls = NULL;

  tls = g_tls_client_connection_new (client->stream, identity, error);
  if (tls == NULL)
    return FALSE;
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);
  if (!g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, error))
    return FALSE;
  client_set_stream (client, tls);
  return TRUE;
}

static Client *
client_connect (guint16   port,
                gboolean  implicit_tls,
                GError  **error)
{
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(Client) client = g_new0 (Client, 1);

  g_socket_client_set_timeout (socket_client, 20);
  connection = g_socket_client_connect_to_host (socket_client, servers->host, port, NULL, error);
  if (connection == NULL)
    return NULL;
  client_set_stream (client, G_IO_STREAM (connection));

  if (implicit_tls)
    {
      g_autoptr(GTlsDatabase) db = fixture_ca ();

      if (!client_start_tls (client, port, db, error))
        return NULL;
    }
  return g_steal_pointer (&client);
}

static char *
client_read_line (Client *client)
{
  g_autoptr(GError) error = NULL;
  char *line = g_data_input_stream_read_line (client->in, NULL, NULL, &error);

  g_assert_no_error (error);
  g_assert_nonnull (line);
  return line;
}

G_GNUC_PRINTF (2, 3)
static void
client_send (Client     *client,
             const char *format,
             ...)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *line = NULL;
  va_list ap;

  va_start (ap, format);
  line = g_strdup_vprintf (format, ap);
  va_end (ap);

  g_output_stream_write_all (client->out, line, strlen (line), NULL, NULL, &error);
  g_assert_no_error (error);
  g_output_stream_write_all (client->out, "\r\n", 2, NULL, NULL, &error);
  g_assert_no_error (error);
}

/* Reads IMAP lines until the tagged response for @tag and returns it; untagged lines
 * are appended to @untagged when given. */
static char *
imap_wait_tagged (Client     *client,
                  const char *tag,
                  GString    *untagged)
{
  g_autofree char *prefix = g_strconcat (tag, " ", NULL);

  for (;;)
    {
      char *line = client_read_line (client);

      if (g_str_has_prefix (line, prefix))
        return line;
      if (untagged != NULL)
        g_string_append_printf (untagged, "%s\n", line);
      g_free (line);
    }
}

static void
imap_login (Client     *client,
            const char *user,
            const char *password,
            gboolean    expect_ok)
{
  g_autofree char *reply = NULL;

  client_send (client, "l1 LOGIN \"%s\" \"%s\"", user, password);
  reply = imap_wait_tagged (client, "l1", NULL);
  if (expect_ok)
    g_assert_true (g_str_has_prefix (reply, "l1 OK"));
  else
    g_assert_true (g_str_has_prefix (reply, "l1 NO"));
}

static void
test_imap_starttls_login (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->imap_port, FALSE, &error);
  g_autoptr(GTlsDatabase) db = fixture_ca ();
  g_autoptr(GString) untagged = g_string_new (NULL);
  g_autofree char *greeting = NULL;
  g_autofree char *reply = NULL;

  g_assert_no_error (error);
  greeting = client_read_line (client);
  g_assert_true (g_str_has_prefix (greeting, "* OK"));

  /* Before TLS the server must refuse to take a password (RFC 9051 §6.2.3). */
  client_send (client, "c1 CAPABILITY");
  reply = imap_wait_tagged (client, "c1", untagged);
  g_assert_true (g_str_has_prefix (reply, "c1 OK"));
  g_assert_nonnull (strstr (untagged->str, "STARTTLS"));
  g_assert_nonnull (strstr (untagged->str, "LOGINDISABLED"));

  client_send (client, "s1 STARTTLS");
  g_clear_pointer (&reply, g_free);
  reply = imap_wait_tagged (client, "s1", NULL);
  g_assert_true (g_str_has_prefix (reply, "s1 OK"));
  client_start_tls (client, servers->imap_port, db, &error);
  g_assert_no_error (error);

  imap_login (client, "alice@example.test", "alice-password", TRUE);
}

static void
test_imap_implicit_tls_login (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->imaps_port, TRUE, &error);
  g_autofree char *greeting = NULL;

  g_assert_no_error (error);
  greeting = client_read_line (client);
  g_assert_true (g_str_has_prefix (greeting, "* OK"));
  imap_login (client, "bob@example.test", "bob-password", TRUE);
}

static void
test_imap_wrong_password (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->imaps_port, TRUE, &error);
  g_autofree char *greeting = NULL;

  g_assert_no_error (error);
  greeting = client_read_line (client);
  imap_login (client, "alice@example.test", "not-alices-password", FALSE);
}

/* The fixture's certificate is trusted only through its own CA: a client that does not
 * know that CA must fail the handshake, which proves the tests really verify. */
static void
test_tls_unknown_ca_rejected (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketConnectable) identity = g_network_address_new (servers->host,
                                                                  servers->imaps_port);
  g_autoptr(GIOStream) tls = NULL;

  connection = g_socket_client_connect_to_host (socket_client, servers->host,
                                                servers->imaps_port, NULL, &error);
  g_assert_no_error (error);
  tls = g_tls_client_connection_new (G_IO_STREAM (connection), identity, &error);
  g_assert_no_error (error);
  /* The system's trust store, which has never heard of the fixture's CA. */

  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static void
test_tls_wrong_host_rejected (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GSocketClient) socket_client = g_socket_client_new ();
  g_autoptr(GSocketConnection) connection = NULL;
  g_autoptr(GSocketConnectable) identity = g_network_address_new ("mail.example.org",
                                                                  servers->imaps_port);
  g_autoptr(GIOStream) tls = NULL;
  g_autoptr(GTlsDatabase) db = fixture_ca ();

  connection = g_socket_client_connect_to_host (socket_client, servers->host,
                                                servers->imaps_port, NULL, &error);
  g_assert_no_error (error);
  tls = g_tls_client_connection_new (G_IO_STREAM (connection), identity, &error);
  g_assert_no_error (error);
  g_tls_connection_set_database (G_TLS_CONNECTION (tls), db);

  g_assert_false (g_tls_connection_handshake (G_TLS_CONNECTION (tls), NULL, &error));
  g_assert_error (error, G_TLS_ERROR, G_TLS_ERROR_BAD_CERTIFICATE);
}

static void
pop3_expect_ok (Client *client)
{
  g_autofree char *line = client_read_line (client);

  if (!g_str_has_prefix (line, "+OK"))
    g_error ("POP3 server said: %s", line);
}

static void
pop3_login (Client *client)
{
  g_autofree char *line = NULL;

  client_send (client, "USER carol@example.test");
  pop3_expect_ok (client);
  client_send (client, "PASS carol-password");
  pop3_expect_ok (client);
  client_send (client, "STAT");
  line = client_read_line (client);
  g_assert_true (g_str_has_prefix (line, "+OK "));
  client_send (client, "QUIT");
  pop3_expect_ok (client);
}

static void
test_pop3_stls_login (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->pop3_port, FALSE, &error);
  g_autoptr(GTlsDatabase) db = fixture_ca ();
  g_autoptr(GString) capa = g_string_new (NULL);

  g_assert_no_error (error);
  pop3_expect_ok (client);
  client_send (client, "CAPA");
  pop3_expect_ok (client);
  for (;;)
    {
      g_autofree char *line = client_read_line (client);

      if (g_str_equal (line, "."))
        break;
      g_string_append_printf (capa, "%s\n", line);
    }
  g_assert_nonnull (strstr (capa->str, "STLS"));
  g_assert_nonnull (strstr (capa->str, "UIDL"));

  client_send (client, "STLS");
  pop3_expect_ok (client);
  client_start_tls (client, servers->pop3_port, db, &error);
  g_assert_no_error (error);
  pop3_login (client);
}

static void
test_pop3_implicit_tls_login (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->pop3s_port, TRUE, &error);

  g_assert_no_error (error);
  pop3_expect_ok (client);
  pop3_login (client);
}

/* Reads one (possibly multi-line) SMTP reply and returns its code; the lines go to
 * @text when given. */
static int
smtp_reply (Client  *client,
            GString *text)
{
  for (;;)
    {
      g_autofree char *line = client_read_line (client);

      g_assert_cmpuint (strlen (line), >=, 3);
      if (text != NULL)
        g_string_append_printf (text, "%s\n", line);
      if (line[3] != '-')
        return (int) g_ascii_strtoll (line, NULL, 10);
    }
}

static Client *
smtp_submission_session (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = NULL;
  g_autoptr(GTlsDatabase) db = fixture_ca ();
  g_autoptr(GString) ehlo = g_string_new (NULL);
  g_autofree char *auth = NULL;
  const char plain[] = "\0alice@example.test\0alice-password";

  if (servers->submission_port == 0)
    return NULL;

  client = client_connect (servers->submission_port, FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (smtp_reply (client, NULL), ==, 220);
  client_send (client, "EHLO client.example.test");
  g_assert_cmpint (smtp_reply (client, ehlo), ==, 250);
  /* No AUTH before TLS, so no password can go out in cleartext (RFC 4954 §4). */
  g_assert_nonnull (strstr (ehlo->str, "STARTTLS"));
  g_assert_null (strstr (ehlo->str, "AUTH"));

  client_send (client, "STARTTLS");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 220);
  client_start_tls (client, servers->submission_port, db, &error);
  g_assert_no_error (error);

  g_string_truncate (ehlo, 0);
  client_send (client, "EHLO client.example.test");
  g_assert_cmpint (smtp_reply (client, ehlo), ==, 250);
  g_assert_nonnull (strstr (ehlo->str, "AUTH"));
  g_assert_nonnull (strstr (ehlo->str, "PLAIN"));

  auth = g_base64_encode ((const guchar *) plain, sizeof plain - 1);
  client_send (client, "AUTH PLAIN %s", auth);
  g_assert_cmpint (smtp_reply (client, NULL), ==, 235);
  return g_steal_pointer (&client);
}

static void
test_smtp_submission_auth (void)
{
  g_autoptr(Client) client = NULL;
  g_autoptr(GError) error = NULL;

  if (servers->submission_port == 0)
    {
      g_test_skip ("Postfix runs only as root; this test run is not root");
      return;
    }

  client = smtp_submission_session ();
  client_send (client, "QUIT");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 221);
}

static void
test_smtp_submission_wrong_password (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = NULL;
  g_autofree char *auth = NULL;
  const char plain[] = "\0alice@example.test\0wrong";

  if (servers->submissions_port == 0)
    {
      g_test_skip ("Postfix runs only as root; this test run is not root");
      return;
    }

  /* Port 465 style: TLS from the first byte (RFC 8314 §3.3). */
  client = client_connect (servers->submissions_port, TRUE, &error);
  g_assert_no_error (error);
  g_assert_cmpint (smtp_reply (client, NULL), ==, 220);
  client_send (client, "EHLO client.example.test");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 250);
  auth = g_base64_encode ((const guchar *) plain, sizeof plain - 1);
  client_send (client, "AUTH PLAIN %s", auth);
  g_assert_cmpint (smtp_reply (client, NULL), ==, 535);
}

typedef struct
{
  const char *user;
  const char *subject;
  char *body;
} Delivered;

/* Asks Dovecot itself whether the message has arrived: the condition a waiting test polls. */
static gboolean
message_delivered (gpointer user_data)
{
  Delivered *d = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  if (!lb_test_servers_doveadm (servers, NULL, &out, &error, "search", "-u", d->user,
                                "mailbox", "INBOX", "header", "Subject", d->subject, NULL))
    return FALSE;
  return out != NULL && out[0] != '\0';
}

/* Fetches the newest message in INBOX whose subject is @subject over IMAP and returns its
 * raw bytes. */
static GBytes *
imap_fetch_by_subject (const char *user,
                       const char *password,
                       const char *subject)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = client_connect (servers->imaps_port, TRUE, &error);
  g_autoptr(GString) untagged = g_string_new (NULL);
  g_autofree char *line = NULL;
  g_autofree char *reply = NULL;
  g_autofree guint8 *data = NULL;
  const char *search;
  guint64 uid, size;
  gsize got = 0;
  char *brace;

  g_assert_no_error (error);
  g_free (client_read_line (client));
  imap_login (client, user, password, TRUE);
  client_send (client, "x1 SELECT INBOX");
  g_free (imap_wait_tagged (client, "x1", NULL));

  client_send (client, "x2 UID SEARCH SUBJECT \"%s\"", subject);
  reply = imap_wait_tagged (client, "x2", untagged);
  g_assert_true (g_str_has_prefix (reply, "x2 OK"));
  search = strstr (untagged->str, "* SEARCH ");
  g_assert_nonnull (search);
  uid = g_ascii_strtoull (search + strlen ("* SEARCH "), NULL, 10);
  g_assert_cmpuint (uid, >, 0);

  client_send (client, "x3 UID FETCH %" G_GUINT64_FORMAT " BODY.PEEK[]", uid);
  line = client_read_line (client);
  brace = strrchr (line, '{');
  g_assert_nonnull (brace);
  size = g_ascii_strtoull (brace + 1, NULL, 10);
  g_assert_cmpuint (size, >, 0);
  data = g_malloc (size);
  g_input_stream_read_all (G_INPUT_STREAM (client->in), data, size, &got, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (got, ==, size);
  g_clear_pointer (&reply, g_free);
  reply = imap_wait_tagged (client, "x3", NULL);
  g_assert_true (g_str_has_prefix (reply, "x3 OK"));

  return g_bytes_new_take (g_steal_pointer (&data), size);
}

static gboolean
bytes_end_with (const char *data,
                gsize       len,
                const char *suffix,
                gsize       suffix_len)
{
  return len >= suffix_len && memcmp (data + len - suffix_len, suffix, suffix_len) == 0;
}

static void
test_smtp_to_imap_round_trip (void)
{
  g_autoptr(Client) client = NULL;
  g_autoptr(GBytes) fetched = NULL;
  g_autoptr(GString) message = g_string_new (NULL);
  g_autofree char *subject = NULL;
  g_autofree char *body = NULL;
  Delivered delivered = { 0 };
  gsize fetched_len;
  const char *fetched_data;

  if (servers->submission_port == 0)
    {
      g_test_skip ("Postfix runs only as root; this test run is not root");
      return;
    }

  subject = g_strdup_printf ("Round trip %d-%u", (int) getpid (), g_random_int ());
  body = g_strdup ("Grüße aus dem Test.\r\n"
                   "..a line that starts with a dot survives dot-stuffing\r\n"
                   "Last line.\r\n");
  g_string_append_printf (message,
                          "From: Alice <alice@example.test>\r\n"
                          "To: Bob <bob@example.test>\r\n"
                          "Subject: %s\r\n"
                          "Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n"
                          "Message-ID: <%s@example.test>\r\n"
                          "MIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=utf-8\r\n"
                          "Content-Transfer-Encoding: 8bit\r\n"
                          "\r\n"
                          "%s",
                          subject, subject + strlen ("Round trip "), body);

  client = smtp_submission_session ();
  client_send (client, "MAIL FROM:<alice@example.test> BODY=8BITMIME");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 250);
  client_send (client, "RCPT TO:<bob@example.test>");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 250);
  client_send (client, "RCPT TO:<nobody@example.test>");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 550);
  client_send (client, "DATA");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 354);
  {
    /* Dot-stuffing (RFC 5321 §4.5.2): the line "..a line" goes out as "...a line". */
    g_autofree char *stuffed = NULL;
    g_auto(GStrv) lines = g_strsplit (message->str, "\r\n", -1);
    g_autoptr(GString) out = g_string_new (NULL);

    for (guint i = 0; lines[i] != NULL && lines[i + 1] != NULL; i++)
      g_string_append_printf (out, "%s%s\r\n", lines[i][0] == '.' ? "." : "", lines[i]);
    g_string_append (out, ".");
    stuffed = g_string_free (g_steal_pointer (&out), FALSE);
    client_send (client, "%s", stuffed);
  }
  g_assert_cmpint (smtp_reply (client, NULL), ==, 250);
  client_send (client, "QUIT");
  g_assert_cmpint (smtp_reply (client, NULL), ==, 221);

  delivered.user = "bob@example.test";
  delivered.subject = subject;
  g_assert_true (lb_test_wait_until (message_delivered, &delivered, 30000));

  fetched = imap_fetch_by_subject ("bob@example.test", "bob-password", subject);
  fetched_data = g_bytes_get_data (fetched, &fetched_len);
  /* The MTA adds trace headers in front; what the sender wrote must follow unchanged. */
  g_assert_true (bytes_end_with (fetched_data, fetched_len, message->str, message->len));
}

static void
test_doveadm_seed_and_flag (void)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(Client) client = NULL;
  g_autoptr(GString) untagged = g_string_new (NULL);
  g_autofree char *subject = g_strdup_printf ("Seeded %u", g_random_int ());
  g_autofree char *message = NULL;
  g_autofree char *reply = NULL;

  message = g_strdup_printf ("From: someone@example.org\r\nTo: carol@example.test\r\n"
                             "Subject: %s\r\n\r\nSeeded from outside.\r\n",
                             subject);
  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", "carol@example.test",
                           "-m", "INBOX", NULL);
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u",
                           "carol@example.test", "\\Flagged", "mailbox", "INBOX", "header",
                           "Subject", subject, NULL);
  g_assert_no_error (error);

  client = client_connect (servers->imaps_port, TRUE, &error);
  g_assert_no_error (error);
  g_free (client_read_line (client));
  imap_login (client, "carol@example.test", "carol-password", TRUE);
  client_send (client, "f1 EXAMINE INBOX");
  g_free (imap_wait_tagged (client, "f1", NULL));
  client_send (client, "f2 FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (SUBJECT)])");
  reply = imap_wait_tagged (client, "f2", untagged);
  g_assert_true (g_str_has_prefix (reply, "f2 OK"));
  g_assert_nonnull (strstr (untagged->str, subject));
  g_assert_nonnull (strstr (untagged->str, "\\Flagged"));
}

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);

  g_test_add_func ("/fixtures/imap/starttls-login", test_imap_starttls_login);
  g_test_add_func ("/fixtures/imap/implicit-tls-login", test_imap_implicit_tls_login);
  g_test_add_func ("/fixtures/imap/wrong-password", test_imap_wrong_password);
  g_test_add_func ("/fixtures/tls/unknown-ca-rejected", test_tls_unknown_ca_rejected);
  g_test_add_func ("/fixtures/tls/wrong-host-rejected", test_tls_wrong_host_rejected);
  g_test_add_func ("/fixtures/pop3/stls-login", test_pop3_stls_login);
  g_test_add_func ("/fixtures/pop3/implicit-tls-login", test_pop3_implicit_tls_login);
  g_test_add_func ("/fixtures/smtp/submission-auth", test_smtp_submission_auth);
  g_test_add_func ("/fixtures/smtp/wrong-password", test_smtp_submission_wrong_password);
  g_test_add_func ("/fixtures/smtp/round-trip-to-imap", test_smtp_to_imap_round_trip);
  g_test_add_func ("/fixtures/doveadm/seed-and-flag", test_doveadm_seed_and_flag);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  return status;
}
