/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb-connection.h"
#include "lb-pop3-session.h"
#include "lb-test-util.h"

/*
 * The POP3 engine (net/, sasl/, pop3/) against the real Dovecot fixture: POP3S and STLS,
 * certificates refused without the CA and accepted with it, a server without STLS
 * refused, SCRAM, APOP and USER/PASS, wrong passwords, STAT/LIST/UIDL/TOP/RETR with the
 * bytes compared to what was seeded (dot-stuffed lines too), messages left on the
 * server, DELE only after the caller confirmed its copy, nothing deleted when the
 * connection drops before QUIT (server kick, the sink giving up, abort), pipelined
 * retrieval of many messages, cancellation, and a 25 MB message in bounded memory.
 */

static LbTestServers *servers;
static guint16 pop3_notls_port;
static const char *notls_host = "127.0.0.3";

static LbPop3Session *
make_session (const char    *host,
              guint16        port,
              LbNetSecurity  security,
              gboolean       trust_fixture_ca)
{
  g_autoptr(LbConnection) conn = lb_connection_new (host, port, security);
  g_autoptr(GError) error = NULL;

  if (trust_fixture_ca)
    {
      lb_connection_set_ca_file (conn, servers->ca_file, &error);
      g_assert_no_error (error);
    }
  lb_connection_set_timeouts (conn, 20, 60);
  return lb_pop3_session_new (conn);
}

static gboolean
session_connect (LbPop3Session *s,
                 GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_pop3_session_connect_async (s, NULL, lb_test_wait_cb, &w);
  ok = lb_pop3_session_connect_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
session_login (LbPop3Session *s,
               const char    *user,
               const char    *password,
               GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_pop3_session_login_async (s, user, password, FALSE, NULL, lb_test_wait_cb, &w);
  ok = lb_pop3_session_login_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static char *
password_of (const char *user)
{
  return g_strdup_printf ("%.*s-password", (int) strcspn (user, "@"), user);
}

static LbPop3Session *
logged_in (const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *password = password_of (user);
  LbPop3Session *s = make_session (servers->host, servers->pop3s_port, LB_NET_SECURITY_TLS, TRUE);

  session_connect (s, &error);
  g_assert_no_error (error);
  session_login (s, user, password, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_TRANSACTION);
  return s;
}

static guint
quit (LbPop3Session *s)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  guint deleted = G_MAXUINT;

  lb_pop3_session_quit_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_quit_finish (s, lb_test_wait_result (&w), &deleted, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_CLOSED);
  return deleted;
}

static guint
stat_count (LbPop3Session *s,
            guint64       *size)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  guint count = 0;

  lb_pop3_session_stat_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_stat_finish (s, lb_test_wait_result (&w), &count, size, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return count;
}

static GArray *
list (LbPop3Session *s)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  GArray *entries;

  lb_pop3_session_list_async (s, NULL, lb_test_wait_cb, &w);
  entries = lb_pop3_session_list_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return entries;
}

static GArray *
uidl (LbPop3Session *s)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  GArray *entries;

  lb_pop3_session_uidl_async (s, NULL, lb_test_wait_cb, &w);
  entries = lb_pop3_session_uidl_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return entries;
}

static GBytes *
top (LbPop3Session *s,
     guint32        number,
     guint          lines,
     GError       **error)
{
  LbTestWait w = { 0 };
  GBytes *bytes;

  lb_pop3_session_top_async (s, number, lines, NULL, lb_test_wait_cb, &w);
  bytes = lb_pop3_session_top_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return bytes;
}

static gboolean
collect_sink (const guint8  *data,
              gsize          len,
              gpointer       user_data,
              GError       **error)
{
  g_byte_array_append (user_data, data, (guint) len);
  return TRUE;
}

/* RETR into memory: small test messages only. */
static GBytes *
retrieve (LbPop3Session *s,
          guint32        number,
          GError       **error)
{
  g_autoptr(GByteArray) got = g_byte_array_new ();
  LbTestWait w = { 0 };
  guint64 size = 0;
  gboolean ok;

  lb_pop3_session_retrieve_async (s, number, collect_sink, got, NULL, lb_test_wait_cb, &w);
  ok = lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), &size, error);
  g_object_unref (w.result);
  if (!ok)
    return NULL;
  g_assert_cmpuint (size, ==, got->len);
  return g_byte_array_free_to_bytes (g_steal_pointer (&got));
}

static gboolean
delete (LbPop3Session *s,
        guint32        number,
        GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_pop3_session_delete_async (s, number, NULL, lb_test_wait_cb, &w);
  ok = lb_pop3_session_delete_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static void
noop_ok (LbPop3Session *s)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_pop3_session_noop_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_noop_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
doveadm (const char *stdin_data,
         ...)
{
  g_autoptr(GError) error = NULL;
  const char *argv[12] = { NULL };
  guint n = 0;
  va_list ap;

  va_start (ap, stdin_data);
  while (n < G_N_ELEMENTS (argv) - 1 && (argv[n] = va_arg (ap, const char *)) != NULL)
    n++;
  va_end (ap);
  argv[n] = NULL;
  lb_test_servers_doveadm (servers, stdin_data, NULL, &error, argv[0], argv[1], argv[2], argv[3],
                           argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], NULL);
  g_assert_no_error (error);
}

static void
empty_inbox (const char *user)
{
  doveadm (NULL, "expunge", "-u", user, "mailbox", "INBOX", "all", NULL);
}

static void
seed (const char *user,
      const char *message)
{
  doveadm (message, "save", "-u", user, "-m", "INBOX", NULL);
}

static void
assert_bytes_equal (GBytes     *got,
                    const char *expected)
{
  gsize len;
  const char *data = g_bytes_get_data (got, &len);

  g_assert_cmpuint (len, ==, strlen (expected));
  g_assert_true (memcmp (data, expected, len) == 0);
}

static const char *const messages[] = {
  "From: one@example.org\r\nTo: alice@example.test\r\nSubject: One\r\n\r\nFirst line\r\n"
  "Second line\r\nThird line\r\n",
  "From: two@example.org\r\nTo: alice@example.test\r\nSubject: Two\r\n"
  "Message-ID: <two@example.org>\r\n\r\nA\r\nB\r\nC\r\nD\r\n",
  "From: three@example.org\r\nTo: alice@example.test\r\nSubject: Three\r\n\r\nshort\r\n",
};

/* ---- connecting ---- */

static void
test_pop3s (void)
{
  g_autoptr(LbPop3Session) s = make_session (servers->host, servers->pop3s_port,
                                             LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *log = NULL;
  LbPop3Capabilities caps;

  session_connect (s, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_AUTHORIZATION);
  g_assert_true (lb_connection_is_encrypted (lb_pop3_session_get_connection (s)));
  g_assert_true (lb_pop3_session_has_capa (s));
  caps = lb_pop3_session_get_capabilities (s);
  g_assert_true (caps & LB_POP3_CAP_TOP);
  g_assert_true (caps & LB_POP3_CAP_UIDL);
  g_assert_true (caps & LB_POP3_CAP_PIPELINING);
  g_assert_true (caps & LB_POP3_CAP_RESP_CODES);
  g_assert_true (caps & LB_POP3_CAP_AUTH_RESP_CODE);
  g_assert_true (caps & LB_POP3_CAP_USER);
  g_assert_true (caps & LB_POP3_CAP_SASL);
  g_assert_false (caps & LB_POP3_CAP_STLS);
  g_assert_true (g_strv_contains (lb_pop3_session_get_sasl_mechanisms (s), "SCRAM-SHA-256"));
  /* The fixture enables APOP: the greeting carries an RFC 1939 §7 timestamp. */
  g_assert_nonnull (lb_pop3_session_get_apop_timestamp (s));
  g_assert_true (g_str_has_prefix (lb_pop3_session_get_apop_timestamp (s), "<"));

  session_login (s, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  /* SASL first, and its strongest mechanism: the password never crossed the wire. */
  g_assert_cmpstr (lb_pop3_session_get_auth_used (s), ==, "SASL SCRAM-SHA-256");
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_TRANSACTION);
  /* CAPA read again after login: Dovecot's transaction-state list lacks USER and SASL. */
  g_assert_true (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_UIDL);
  g_assert_false (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_SASL);
  g_assert_cmpuint (quit (s), ==, 0);

  log = lb_test_servers_dup_log (servers, "dovecot");
  g_assert_nonnull (strstr (log, "user=<alice@example.test>, method=SCRAM-SHA-256"));
}

static void
test_stls (void)
{
  g_autoptr(LbPop3Session) s = make_session (servers->host, servers->pop3_port,
                                             LB_NET_SECURITY_STARTTLS, TRUE);
  g_autoptr(GError) error = NULL;

  session_connect (s, &error);
  g_assert_no_error (error);
  g_assert_true (lb_connection_is_encrypted (lb_pop3_session_get_connection (s)));
  /* Capabilities are those read inside TLS: no STLS any more, USER now allowed. */
  g_assert_false (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_STLS);
  g_assert_true (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_USER);
  g_assert_true (g_strv_contains (lb_pop3_session_get_sasl_mechanisms (s), "PLAIN"));
  session_login (s, "bob@example.test", "bob-password", &error);
  g_assert_no_error (error);
  quit (s);
}

static void
test_no_stls_refused (void)
{
  g_autoptr(LbPop3Session) s = make_session (notls_host, pop3_notls_port,
                                             LB_NET_SECURITY_STARTTLS, TRUE);
  g_autoptr(GError) error = NULL;

  g_assert_false (session_connect (s, &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE);
  g_assert_nonnull (strstr (error->message, "does not offer STLS"));
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_DISCONNECTED);

  /* The session is over: no login can follow on it. */
  g_clear_error (&error);
  g_assert_false (session_login (s, "carol@example.test", "carol-password", &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_INSECURE);
}

static void
test_cleartext_loopback (void)
{
  g_autoptr(LbPop3Session) s = make_session (notls_host, pop3_notls_port, LB_NET_SECURITY_NONE,
                                             FALSE);
  g_autoptr(LbPop3Session) user = make_session (notls_host, pop3_notls_port,
                                                LB_NET_SECURITY_NONE, FALSE);
  g_autoptr(GError) error = NULL;

  /* Without TLS the server offers SCRAM only (and not USER): SCRAM never sends the
   * password, so it is used; nothing else is tried. */
  session_connect (s, &error);
  g_assert_no_error (error);
  g_assert_false (lb_connection_is_encrypted (lb_pop3_session_get_connection (s)));
  g_assert_false (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_USER);
  session_login (s, "carol@example.test", "carol-password", &error);
  g_assert_no_error (error);
  g_assert_true (g_str_has_prefix (lb_pop3_session_get_auth_used (s), "SASL SCRAM-"));
  quit (s);

  /* USER/PASS is not offered here: refused without sending the password. */
  lb_pop3_session_set_auth_method (user, LB_POP3_AUTH_USER);
  session_connect (user, &error);
  g_assert_no_error (error);
  g_assert_false (session_login (user, "carol@example.test", "carol-password", &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_UNSUPPORTED);
  g_assert_cmpint (lb_pop3_session_get_state (user), ==, LB_POP3_STATE_AUTHORIZATION);
}

static void
test_certificate (void)
{
  g_autoptr(LbPop3Session) pop3s = make_session (servers->host, servers->pop3s_port,
                                                 LB_NET_SECURITY_TLS, FALSE);
  g_autoptr(LbPop3Session) stls = make_session (servers->host, servers->pop3_port,
                                                LB_NET_SECURITY_STARTTLS, FALSE);
  g_autoptr(LbPop3Session) trusted = make_session (servers->host, servers->pop3s_port,
                                                   LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;

  g_assert_false (session_connect (pop3s, &error));
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
  g_assert_nonnull (strstr (error->message, "not signed by a known certificate authority"));
  g_assert_nonnull (lb_connection_get_peer_certificate (lb_pop3_session_get_connection (pop3s)));

  g_clear_error (&error);
  g_assert_false (session_connect (stls, &error));
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
  g_assert_cmpint (lb_pop3_session_get_state (stls), ==, LB_POP3_STATE_DISCONNECTED);

  g_clear_error (&error);
  session_connect (trusted, &error);
  g_assert_no_error (error);
}

/* ---- logging in ---- */

static void
test_wrong_password (void)
{
  const LbPop3AuthMethod methods[] = { LB_POP3_AUTH_AUTO, LB_POP3_AUTH_APOP, LB_POP3_AUTH_USER };

  for (guint i = 0; i < G_N_ELEMENTS (methods); i++)
    {
      g_autoptr(LbPop3Session) s = make_session (servers->host, servers->pop3s_port,
                                                 LB_NET_SECURITY_TLS, TRUE);
      g_autoptr(GError) error = NULL;

      lb_pop3_session_set_auth_method (s, methods[i]);
      session_connect (s, &error);
      g_assert_no_error (error);
      g_assert_false (session_login (s, "alice@example.test", "not-her-password", &error));
      g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_AUTH);
      /* The server's own words ([AUTH] Authentication failed.) */
      g_assert_nonnull (strstr (error->message, "Authentication failed"));
      g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_AUTHORIZATION);

      /* The session goes on: the right password works on the same connection. */
      g_clear_error (&error);
      session_login (s, "alice@example.test", "alice-password", &error);
      g_assert_no_error (error);
      quit (s);
    }
}

static void
test_login_methods (void)
{
  g_autoptr(LbPop3Session) apop = make_session (servers->host, servers->pop3s_port,
                                                LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(LbPop3Session) user = make_session (servers->host, servers->pop3_port,
                                                LB_NET_SECURITY_STARTTLS, TRUE);
  g_autoptr(LbPop3Session) early = make_session (servers->host, servers->pop3s_port,
                                                 LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;
  g_autofree char *log = NULL;
  LbTestWait w = { 0 };

  lb_pop3_session_set_auth_method (apop, LB_POP3_AUTH_APOP);
  session_connect (apop, &error);
  g_assert_no_error (error);
  session_login (apop, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lb_pop3_session_get_auth_used (apop), ==, "APOP");
  quit (apop);

  lb_pop3_session_set_auth_method (user, LB_POP3_AUTH_USER);
  session_connect (user, &error);
  g_assert_no_error (error);
  session_login (user, "bob@example.test", "bob-password", &error);
  g_assert_no_error (error);
  g_assert_cmpstr (lb_pop3_session_get_auth_used (user), ==, "USER");
  quit (user);

  log = lb_test_servers_dup_log (servers, "dovecot");
  g_assert_nonnull (strstr (log, "user=<alice@example.test>, method=APOP"));
  g_assert_nonnull (strstr (log, "user=<bob@example.test>, method=PLAIN"));

  /* Transaction commands before login are refused without being sent. */
  session_connect (early, &error);
  g_assert_no_error (error);
  lb_pop3_session_stat_async (early, NULL, lb_test_wait_cb, &w);
  g_assert_false (lb_pop3_session_stat_finish (early, lb_test_wait_result (&w), NULL, NULL, &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_PROTOCOL);
  g_object_unref (w.result);
}

/* ---- the maildrop ---- */

static void
test_commands (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(LbPop3Session) again = NULL;
  g_autoptr(GArray) sizes = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GArray) ids_again = NULL;
  g_autoptr(GBytes) head = NULL;
  g_autoptr(GBytes) head2 = NULL;
  g_autoptr(GError) error = NULL;
  guint64 total = 0, size = 0;

  /* An empty maildrop: LIST and UIDL answer with no lines at all. */
  empty_inbox ("alice@example.test");
  {
    g_autoptr(LbPop3Session) empty = logged_in ("alice@example.test");
    g_autoptr(GArray) no_sizes = NULL;
    g_autoptr(GArray) no_ids = NULL;

    g_assert_cmpuint (stat_count (empty, NULL), ==, 0);
    no_sizes = list (empty);
    g_assert_cmpuint (no_sizes->len, ==, 0);
    no_ids = uidl (empty);
    g_assert_cmpuint (no_ids->len, ==, 0);
    quit (empty);
  }

  for (guint i = 0; i < G_N_ELEMENTS (messages); i++)
    {
      seed ("alice@example.test", messages[i]);
      total += strlen (messages[i]);
    }

  s = logged_in ("alice@example.test");
  g_assert_cmpuint (stat_count (s, &size), ==, G_N_ELEMENTS (messages));
  g_assert_cmpuint (size, ==, total);

  sizes = list (s);
  g_assert_cmpuint (sizes->len, ==, G_N_ELEMENTS (messages));
  for (guint i = 0; i < sizes->len; i++)
    {
      LbPop3ListEntry *e = &g_array_index (sizes, LbPop3ListEntry, i);

      g_assert_cmpuint (e->number, ==, i + 1);
      g_assert_cmpuint (e->size, ==, strlen (messages[i]));
    }

  ids = uidl (s);
  g_assert_cmpuint (ids->len, ==, G_N_ELEMENTS (messages));
  for (guint i = 0; i < ids->len; i++)
    {
      LbPop3UidlEntry *e = &g_array_index (ids, LbPop3UidlEntry, i);

      g_assert_cmpuint (e->number, ==, i + 1);
      g_assert_cmpuint (strlen (e->uid), >, 0);
      for (guint j = 0; j < i; j++)
        g_assert_cmpstr (g_array_index (ids, LbPop3UidlEntry, j).uid, !=, e->uid);
    }

  /* TOP: the header and the empty line first, then the lines asked for. */
  head = top (s, 1, 0, &error);
  g_assert_no_error (error);
  assert_bytes_equal (head, "From: one@example.org\r\nTo: alice@example.test\r\nSubject: One\r\n\r\n");
  head2 = top (s, 2, 2, &error);
  g_assert_no_error (error);
  assert_bytes_equal (head2, "From: two@example.org\r\nTo: alice@example.test\r\nSubject: Two\r\n"
                             "Message-ID: <two@example.org>\r\n\r\nA\r\nB\r\n");

  for (guint i = 0; i < G_N_ELEMENTS (messages); i++)
    {
      g_autoptr(GBytes) body = retrieve (s, i + 1, &error);

      g_assert_no_error (error);
      assert_bytes_equal (body, messages[i]);
    }

  /* A message that is not there: the server's -ERR, and the session goes on. */
  {
    g_autoptr(GBytes) none = retrieve (s, 99, &error);

    g_assert_null (none);
    g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_ERR);
    g_assert_nonnull (strstr (error->message, "RETR 99"));
    g_test_message ("RETR 99: %s", error->message);
    g_clear_error (&error);
  }
  noop_ok (s);
  g_assert_cmpuint (quit (s), ==, 0);

  /* Left on the server: the next session sees the same messages, the same ids. */
  again = logged_in ("alice@example.test");
  ids_again = uidl (again);
  g_assert_cmpuint (ids_again->len, ==, ids->len);
  for (guint i = 0; i < ids->len; i++)
    g_assert_cmpstr (g_array_index (ids_again, LbPop3UidlEntry, i).uid, ==,
                     g_array_index (ids, LbPop3UidlEntry, i).uid);
  quit (again);
}

static void
test_dot_stuffing (void)
{
  static const char message[] =
    "From: dots@example.org\r\nSubject: Dots\r\n\r\n"
    ".\r\n"
    "..\r\n"
    ".hidden file\r\n"
    "...three\r\n"
    ". \r\n"
    "a line\r\n"
    ".\r\n"
    "..\r\n"
    ".";
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GBytes) body = NULL;
  g_autoptr(GBytes) head = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *expected = g_strconcat (message, "\r\n", NULL);

  empty_inbox ("alice@example.test");
  /* Its last line is a lone ".", which only stuffing keeps apart from the end. */
  seed ("alice@example.test", expected);

  s = logged_in ("alice@example.test");
  body = retrieve (s, 1, &error);
  g_assert_no_error (error);
  assert_bytes_equal (body, expected);
  head = top (s, 1, 2, &error);
  g_assert_no_error (error);
  assert_bytes_equal (head, "From: dots@example.org\r\nSubject: Dots\r\n\r\n.\r\n..\r\n");
  quit (s);
}

static void
test_delete_after_confirmation (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(LbPop3Session) after = NULL;
  g_autoptr(GArray) ids = NULL;
  g_autoptr(GArray) left = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) first = NULL;
  LbTestWait w = { 0 };

  empty_inbox ("bob@example.test");
  for (guint i = 0; i < G_N_ELEMENTS (messages); i++)
    seed ("bob@example.test", messages[i]);

  s = logged_in ("bob@example.test");
  ids = uidl (s);

  /* Not confirmed stored: refused, and nothing was sent. */
  g_assert_false (delete (s, 1, &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_NOT_STORED);
  g_clear_error (&error);

  first = retrieve (s, 1, &error);
  g_assert_no_error (error);
  assert_bytes_equal (first, messages[0]);
  g_assert_false (lb_pop3_session_is_stored (s, 1));
  lb_pop3_session_mark_stored (s, 1);
  g_assert_true (delete (s, 1, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stat_count (s, NULL), ==, G_N_ELEMENTS (messages) - 1);

  /* RSET takes it back; DELE again, then QUIT removes it. */
  lb_pop3_session_reset_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_reset_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (stat_count (s, NULL), ==, G_N_ELEMENTS (messages));
  g_assert_true (delete (s, 1, &error));
  /* Message 2 was never confirmed: still refused. */
  g_assert_false (delete (s, 2, &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_NOT_STORED);
  g_assert_cmpuint (quit (s), ==, 1);

  after = logged_in ("bob@example.test");
  left = uidl (after);
  g_assert_cmpuint (left->len, ==, G_N_ELEMENTS (messages) - 1);
  for (guint i = 0; i < left->len; i++)
    g_assert_cmpstr (g_array_index (left, LbPop3UidlEntry, i).uid, ==,
                     g_array_index (ids, LbPop3UidlEntry, i + 1).uid);
  quit (after);
}

/* ---- large messages, and connections that end before QUIT ---- */

typedef struct
{
  GChecksum *sum;
  guint64 bytes;
  gboolean kick;          /* the server drops the connection after 1 MB */
  gboolean give_up;       /* the sink fails after 1 MB */
} BigSink;

static gboolean
big_sink (const guint8  *data,
          gsize          len,
          gpointer       user_data,
          GError       **error)
{
  BigSink *sink = user_data;

  g_checksum_update (sink->sum, data, (gssize) len);
  sink->bytes += len;
  if (sink->kick && sink->bytes > 1024 * 1024)
    {
      sink->kick = FALSE;
      doveadm (NULL, "kick", "carol@example.test", NULL);
    }
  if (sink->give_up && sink->bytes > 1024 * 1024)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "the disk is full (test)");
      return FALSE;
    }
  return TRUE;
}

static char *big_sha256;
static gsize big_size;

/* carol's INBOX: the three small messages and, fourth, a 25 MB one made by a shell
 * pipeline straight into doveadm, so that this process never holds it. */
static void
seed_carol (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  g_autofree char *fixture = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh", NULL);
  g_auto(GStrv) words = NULL;
  int status;

  if (big_sha256 != NULL)
    return;
  empty_inbox ("carol@example.test");
  for (guint i = 0; i < G_N_ELEMENTS (messages); i++)
    seed ("carol@example.test", messages[i]);
  script = g_strdup_printf (
    "set -euo pipefail; f=$(mktemp); "
    "{ printf 'From: big@example.org\\r\\nSubject: Big\\r\\n\\r\\n'; "
    "  { head -c 25000000 /dev/zero | tr '\\0' 'x' | fold -w 998 | sed 's/^/./'; echo; } "
    "  | sed 's/$/\\r/'; } > \"$f\"; "
    "bash '%s' doveadm '%s' save -u carol@example.test -m INBOX < \"$f\"; "
    "echo \"$(stat -c %%s \"$f\") $(sha256sum < \"$f\" | cut -d' ' -f1)\"; rm -f \"$f\"",
    fixture, servers->dir);
  g_spawn_sync (NULL, (char *[]) { (char *) "bash", (char *) "-c", script, NULL }, NULL,
                G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  words = g_strsplit (g_strstrip (out), " ", 2);
  big_size = g_ascii_strtoull (words[0], NULL, 10);
  big_sha256 = g_strdup (words[1]);
  g_assert_cmpuint (big_size, >, 25000000);
}

static void
test_streamed_25mb (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  BigSink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  LbTestWait w = { 0 };
  glong before, after;
  guint64 size = 0;

  seed_carol ();
  s = logged_in ("carol@example.test");

  before = lb_test_peak_rss_reset ();
  lb_pop3_session_retrieve_async (s, 4, big_sink, &sink, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), &size, &error);
  g_object_unref (w.result);
  after = lb_test_peak_rss_kb ();
  g_assert_no_error (error);

  /* Every line began with a dot (stuffed on the wire): the bytes are the seeded ones. */
  g_assert_cmpuint (size, ==, big_size);
  g_assert_cmpuint (sink.bytes, ==, big_size);
  g_assert_cmpstr (g_checksum_get_string (sink.sum), ==, big_sha256);
  g_test_message ("peak RSS %ld kB before the RETR, %ld kB after", before, after);
#ifndef __SANITIZE_ADDRESS__
  g_assert_cmpint (after - before, <, 8 * 1024);
#else
  /* AddressSanitizer keeps freed buffers in quarantine: RSS says nothing here. */
  (void) before;
#endif
  quit (s);
  g_checksum_free (sink.sum);
}

static void
test_streamed_to_file (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileOutputStream) out = NULL;
  g_autoptr(GFileIOStream) io = NULL;
  g_autoptr(GMappedFile) mapped = NULL;
  g_autofree char *sha = NULL;
  LbTestWait w = { 0 };
  glong before, after;
  guint64 size = 0;

  seed_carol ();
  s = logged_in ("carol@example.test");
  file = g_file_new_tmp ("letterbox-pop3-XXXXXX.eml", &io, &error);
  g_assert_no_error (error);
  g_clear_object (&io);
  out = g_file_replace (file, NULL, FALSE, G_FILE_CREATE_NONE, NULL, &error);
  g_assert_no_error (error);

  before = lb_test_peak_rss_reset ();
  lb_pop3_session_retrieve_to_stream_async (s, 4, G_OUTPUT_STREAM (out), NULL, lb_test_wait_cb, &w);
  lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), &size, &error);
  g_object_unref (w.result);
  after = lb_test_peak_rss_kb ();
  g_assert_no_error (error);
  g_output_stream_close (G_OUTPUT_STREAM (out), NULL, &error);
  g_assert_no_error (error);

  g_assert_cmpuint (size, ==, big_size);
  mapped = g_mapped_file_new (g_file_peek_path (file), FALSE, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (g_mapped_file_get_length (mapped), ==, big_size);
  sha = g_compute_checksum_for_data (G_CHECKSUM_SHA256,
                                     (const guchar *) g_mapped_file_get_contents (mapped),
                                     g_mapped_file_get_length (mapped));
  g_assert_cmpstr (sha, ==, big_sha256);
  g_test_message ("peak RSS %ld kB before the RETR to a file, %ld kB after", before, after);
#ifndef __SANITIZE_ADDRESS__
  g_assert_cmpint (after - before, <, 8 * 1024);
#else
  (void) before;
#endif
  /* The session read on after the message: the next command works. */
  noop_ok (s);
  quit (s);
  g_file_delete (file, NULL, NULL);
}

/* Retrieves and confirms messages 1-3 and marks them deleted, then starts RETR 4 with
 * @sink: the caller decides how that session ends before QUIT. */
static LbPop3Session *
delete_three_then_retrieve_big (BigSink *sink,
                                LbTestWait    *w)
{
  LbPop3Session *s = logged_in ("carol@example.test");
  g_autoptr(GError) error = NULL;

  for (guint32 n = 1; n <= 3; n++)
    {
      g_autoptr(GBytes) body = retrieve (s, n, &error);

      g_assert_no_error (error);
      lb_pop3_session_mark_stored (s, n);
      g_assert_true (delete (s, n, &error));
    }
  g_assert_cmpuint (stat_count (s, NULL), ==, 1);
  lb_pop3_session_retrieve_async (s, 4, big_sink, sink, NULL, lb_test_wait_cb, w);
  return s;
}

static void
assert_all_still_there (void)
{
  g_autoptr(LbPop3Session) s = logged_in ("carol@example.test");

  /* DELE had been issued for three of them: without QUIT the server removed nothing. */
  g_assert_cmpuint (stat_count (s, NULL), ==, G_N_ELEMENTS (messages) + 1);
  quit (s);
}

static void
test_server_drops_mid_retr (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  BigSink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  LbTestWait w = { 0 };

  seed_carol ();
  sink.kick = TRUE;
  s = delete_three_then_retrieve_big (&sink, &w);
  g_assert_false (lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), NULL, &error));
  g_object_unref (w.result);
  g_assert_true (error->domain == LB_NET_ERROR || error->domain == LB_POP3_ERROR);
  g_test_message ("after the server dropped the connection: %s", error->message);
  g_assert_cmpuint (sink.bytes, <, big_size);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_DISCONNECTED);

  /* Later commands fail at once with the reason; they do not hang. */
  {
    g_autoptr(GError) again = NULL;
    LbTestWait w2 = { 0 };

    lb_pop3_session_quit_async (s, NULL, lb_test_wait_cb, &w2);
    g_assert_false (lb_pop3_session_quit_finish (s, lb_test_wait_result (&w2), NULL, &again));
    g_object_unref (w2.result);
    g_assert_nonnull (again);
  }
  assert_all_still_there ();
  g_checksum_free (sink.sum);
}

static void
test_sink_gives_up (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  BigSink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  LbTestWait w = { 0 };

  seed_carol ();
  sink.give_up = TRUE;
  s = delete_three_then_retrieve_big (&sink, &w);
  g_assert_false (lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), NULL, &error));
  g_object_unref (w.result);
  /* The sink's own error reaches the caller; the connection was closed. */
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_NO_SPACE);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_DISCONNECTED);
  assert_all_still_there ();
  g_checksum_free (sink.sum);
}

static void
test_abort (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  BigSink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  LbTestWait w = { 0 };

  seed_carol ();
  s = delete_three_then_retrieve_big (&sink, &w);
  /* The caller gives up (the store failed, say) with RETR 4 on the wire. */
  lb_pop3_session_abort (s);
  g_assert_false (lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), NULL, &error));
  g_object_unref (w.result);
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CLOSED);
  g_assert_cmpint (lb_pop3_session_get_state (s), ==, LB_POP3_STATE_CLOSED);
  assert_all_still_there ();
  g_checksum_free (sink.sum);
}

typedef struct
{
  GCancellable *cancellable;
  guint64 bytes;
  guint64 after_cancel;
} CancelSink;

static gboolean
cancel_sink (const guint8  *data,
             gsize          len,
             gpointer       user_data,
             GError       **error)
{
  CancelSink *sink = user_data;

  if (g_cancellable_is_cancelled (sink->cancellable))
    sink->after_cancel += len;
  sink->bytes += len;
  if (sink->bytes > 1024 * 1024 && !g_cancellable_is_cancelled (sink->cancellable))
    g_cancellable_cancel (sink->cancellable);
  return TRUE;
}

static void
test_cancel_retr (void)
{
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GBytes) small = NULL;
  CancelSink sink = { cancellable };
  LbTestWait w = { 0 };

  seed_carol ();
  s = logged_in ("carol@example.test");
  lb_pop3_session_retrieve_async (s, 4, cancel_sink, &sink, cancellable, lb_test_wait_cb, &w);
  g_assert_false (lb_pop3_session_retrieve_finish (s, lb_test_wait_result (&w), NULL, &error));
  g_object_unref (w.result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);

  /* The session stays usable: the rest of message 4 is read and dropped (the sink is
   * not called again), and the next command gets its own answer. */
  small = retrieve (s, 3, &error);
  g_assert_no_error (error);
  assert_bytes_equal (small, messages[2]);
  g_assert_cmpuint (sink.after_cancel, ==, 0);
  g_assert_cmpuint (sink.bytes, <, big_size);
  quit (s);
}

/* ---- pipelining ---- */

#define MANY 400

/* Writes @count messages straight into @user's Maildir (as a delivery would), far
 * faster than one doveadm run each. */
static void
write_maildir (const char *user,
               guint       count,
               GPtrArray  *sums)
{
  g_autofree char *name = g_strndup (user, strcspn (user, "@"));
  g_autofree char *home = g_build_filename (servers->dir, "mail", name, NULL);
  g_autofree char *cur = g_build_filename (home, "Maildir", "cur", NULL);
  GStatBuf st;
  GRand *rand = g_rand_new_with_seed (20261122);

  g_assert_cmpint (g_stat (home, &st), ==, 0);
  for (guint i = 1; i <= count; i++)
    {
      g_autoptr(GString) msg = g_string_new (NULL);
      g_autofree char *path = NULL;
      guint lines = (guint) g_rand_int_range (rand, 1, 400);

      g_string_append_printf (msg, "From: sender%u@example.org\r\nTo: %s\r\n"
                                   "Subject: Pipelined %u\r\nMessage-ID: <p%u@example.org>\r\n\r\n",
                              i, user, i, i);
      for (guint l = 0; l < lines; l++)
        g_string_append_printf (msg, "%sline %u of message %u\r\n", l % 7 == 0 ? "." : "", l, i);
      path = g_strdup_printf ("%s/%u.M%uP%d.lbtest,S=%zu:2,", cur, 1700000000 + i, i,
                              (int) getpid (), msg->len);
      g_assert_true (g_file_set_contents (path, msg->str, (gssize) msg->len, NULL));
      g_assert_cmpint (chown (path, st.st_uid, st.st_gid), ==, 0);
      g_ptr_array_add (sums, g_compute_checksum_for_string (G_CHECKSUM_SHA256, msg->str,
                                                            (gssize) msg->len));
    }
  g_rand_free (rand);
}

typedef struct
{
  GChecksum *sum;
  char *hex;
  gboolean done;
  GError *error;
} Fetched;

static gboolean
fetched_sink (const guint8  *data,
              gsize          len,
              gpointer       user_data,
              GError       **error)
{
  g_checksum_update (((Fetched *) user_data)->sum, data, (gssize) len);
  return TRUE;
}

static void
fetched_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Fetched *f = user_data;

  lb_pop3_session_retrieve_finish (LB_POP3_SESSION (object), result, NULL, &f->error);
  f->hex = g_strdup (g_checksum_get_string (f->sum));
  f->done = TRUE;
}

typedef struct
{
  Fetched *fetched;
  guint count;
} AllFetched;

static gboolean
all_fetched (gpointer user_data)
{
  AllFetched *all = user_data;

  for (guint i = 0; i < all->count; i++)
    if (!all->fetched[i].done)
      return FALSE;
  return TRUE;
}

/* Queues RETR for every message at once and checks each one's bytes. */
static void
fetch_all (LbPop3Session *s,
           GPtrArray     *sums)
{
  Fetched *fetched = g_new0 (Fetched, sums->len);
  AllFetched all = { fetched, sums->len };

  for (guint i = 0; i < sums->len; i++)
    {
      fetched[i].sum = g_checksum_new (G_CHECKSUM_SHA256);
      lb_pop3_session_retrieve_async (s, i + 1, fetched_sink, &fetched[i], NULL, fetched_cb,
                                      &fetched[i]);
    }
  g_assert_true (lb_test_wait_until (all_fetched, &all, 60000));
  for (guint i = 0; i < sums->len; i++)
    {
      g_assert_no_error (fetched[i].error);
      g_assert_cmpstr (fetched[i].hex, ==, g_ptr_array_index (sums, i));
      g_checksum_free (fetched[i].sum);
      g_free (fetched[i].hex);
    }
  g_free (fetched);
}

static void
test_pipelined (void)
{
  g_autoptr(GPtrArray) sums = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(LbPop3Session) s = NULL;
  g_autoptr(LbPop3Session) single = NULL;

  empty_inbox ("alice@example.test");
  write_maildir ("alice@example.test", MANY, sums);

  s = logged_in ("alice@example.test");
  g_assert_true (lb_pop3_session_get_capabilities (s) & LB_POP3_CAP_PIPELINING);
  g_assert_cmpuint (stat_count (s, NULL), ==, MANY);
  fetch_all (s, sums);
  /* Many RETRs were on the wire at once, and every answer reached its own caller. */
  g_test_message ("at most %u commands in flight", lb_pop3_session_get_peak_in_flight (s));
  g_assert_cmpuint (lb_pop3_session_get_peak_in_flight (s), >, 8);
  quit (s);

  /* One at a time gives the same bytes. */
  single = logged_in ("alice@example.test");
  lb_pop3_session_set_max_in_flight (single, 1);
  fetch_all (single, sums);
  g_assert_cmpuint (lb_pop3_session_get_peak_in_flight (single), ==, 1);
  quit (single);
}

/* The fixture's servers.env has more than LbTestServers holds. */
static guint16
read_env_port (const char *key)
{
  g_autofree char *path = g_build_filename (servers->dir, "servers.env", NULL);
  g_autofree char *text = NULL;
  g_auto(GStrv) lines = NULL;
  g_autofree char *prefix = g_strconcat (key, "=", NULL);

  g_assert_true (g_file_get_contents (path, &text, NULL, NULL));
  lines = g_strsplit (text, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    if (g_str_has_prefix (lines[i], prefix))
      return (guint16) g_ascii_strtoull (lines[i] + strlen (prefix), NULL, 10);
  g_error ("%s is not in %s", key, path);
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
  pop3_notls_port = read_env_port ("POP3_NOTLS_PORT");

  g_test_add_func ("/pop3/connect/pop3s", test_pop3s);
  g_test_add_func ("/pop3/connect/stls", test_stls);
  g_test_add_func ("/pop3/connect/no-stls-refused", test_no_stls_refused);
  g_test_add_func ("/pop3/connect/scram-without-tls-on-loopback", test_cleartext_loopback);
  g_test_add_func ("/pop3/connect/certificate", test_certificate);
  g_test_add_func ("/pop3/login/wrong-password", test_wrong_password);
  g_test_add_func ("/pop3/login/methods", test_login_methods);
  g_test_add_func ("/pop3/commands", test_commands);
  g_test_add_func ("/pop3/retr/dot-stuffing", test_dot_stuffing);
  g_test_add_func ("/pop3/dele/after-confirmation", test_delete_after_confirmation);
  g_test_add_func ("/pop3/retr/streamed-25mb", test_streamed_25mb);
  g_test_add_func ("/pop3/retr/to-stream", test_streamed_to_file);
  g_test_add_func ("/pop3/drop/server-kicks-mid-retr", test_server_drops_mid_retr);
  g_test_add_func ("/pop3/drop/sink-gives-up", test_sink_gives_up);
  g_test_add_func ("/pop3/drop/abort", test_abort);
  g_test_add_func ("/pop3/retr/cancel", test_cancel_retr);
  g_test_add_func ("/pop3/retr/pipelined", test_pipelined);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  g_free (big_sha256);
  return status;
}
