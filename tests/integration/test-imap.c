/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/resource.h>

#include "lb-connection.h"
#include "lb-imap-service.h"
#include "lb-imap-session.h"
#include "lb-test-util.h"

/* A GBytes of a string literal, its length counted by the compiler. */
#define STATIC_BYTES(s) g_bytes_new_static ("" s, sizeof (s) - 1)

/*
 * The IMAP engine (net/, sasl/, imap/) against the real Dovecot fixture: implicit TLS and
 * STARTTLS, certificates refused and then trusted by fingerprint, a server without TLS
 * refused, passwords right and wrong, the commands a client needs, CONDSTORE/QRESYNC
 * resync after another client's changes, IDLE seeing new mail, a server that drops the
 * connection mid-FETCH, and a 25 MB message streamed in bounded memory.
 */

static LbTestServers *servers;

static LbImapSession *
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
  return lb_imap_session_new (conn);
}

static gboolean
session_connect (LbImapSession *session,
                 GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_session_connect_async (session, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_connect_finish (session, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
session_login (LbImapSession *session,
               const char    *user,
               const char    *password,
               GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_session_login_async (session, user, password, FALSE, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_login_finish (session, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static LbImapResult *
run (LbImapSession *session,
     const char    *command,
     GBytes        *literal,
     GError       **error)
{
  LbTestWait w = { 0 };
  LbImapResult *result;

  lb_imap_session_command_async (session, command, literal, NULL, lb_test_wait_cb, &w);
  result = lb_imap_session_command_finish (session, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return result;
}

/* Runs a command that must succeed with OK. */
static LbImapResult *
run_ok (LbImapSession *session,
        const char    *command)
{
  g_autoptr(GError) error = NULL;
  LbImapResult *result = run (session, command, NULL, &error);

  g_assert_no_error (error);
  if (result->tagged->status != LB_IMAP_STATUS_OK)
    g_error ("%s: %s", command, result->tagged->text);
  return result;
}

static LbImapSession *
logged_in (const char *user)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *password = g_strdup_printf ("%.*s-password", (int) strcspn (user, "@"), user);
  LbImapSession *session = make_session (servers->host, servers->imaps_port, LB_NET_SECURITY_TLS,
                                         TRUE);

  session_connect (session, &error);
  g_assert_no_error (error);
  session_login (session, user, password, &error);
  g_assert_no_error (error);
  return session;
}

static void
logout (LbImapSession *session)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_imap_session_logout_async (session, NULL, lb_test_wait_cb, &w);
  lb_imap_session_logout_finish (session, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpint (lb_imap_session_get_state (session), !=, LB_IMAP_STATE_AUTHENTICATED);
}

static void
seed (const char *user,
      const char *mailbox,
      const char *message)
{
  g_autoptr(GError) error = NULL;

  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", user, "-m", mailbox, NULL);
  g_assert_no_error (error);
}

static LbImapResponse *
find_untagged (LbImapResult   *result,
               LbImapDataKind  kind)
{
  for (guint i = 0; i < result->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (result->untagged, i);

      if (r->data == kind)
        return r;
    }
  return NULL;
}

static LbImapResponse *
find_code (LbImapResult   *result,
           LbImapCodeKind  kind)
{
  for (guint i = 0; i < result->untagged->len; i++)
    {
      LbImapResponse *r = g_ptr_array_index (result->untagged, i);

      if (r->data == LB_IMAP_DATA_STATUS && r->code.kind == kind)
        return r;
    }
  return result->tagged->code.kind == kind ? result->tagged : NULL;
}

static void
test_implicit_tls (void)
{
  g_autoptr(LbImapSession) session = logged_in ("alice@example.test");
  g_autofree char *log = NULL;

  g_assert_cmpint (lb_imap_session_get_state (session), ==, LB_IMAP_STATE_AUTHENTICATED);
  g_assert_true (lb_connection_is_encrypted (lb_imap_session_get_connection (session)));
  /* Capabilities read again after login: the post-login set has these. */
  g_assert_true (lb_imap_session_has_capability (session, "CONDSTORE"));
  g_assert_true (lb_imap_session_has_capability (session, "IDLE"));
  g_assert_true (lb_imap_session_has_capability (session, "MOVE"));
  logout (session);

  /* The strongest mechanism was chosen: the password itself never went over the wire. */
  log = lb_test_servers_dup_log (servers, "dovecot");
  g_assert_nonnull (strstr (log, "user=<alice@example.test>, method=SCRAM-SHA-256"));
}

static void
test_starttls (void)
{
  g_autoptr(LbImapSession) session = make_session (servers->host, servers->imap_port,
                                                   LB_NET_SECURITY_STARTTLS, TRUE);
  g_autoptr(GError) error = NULL;

  session_connect (session, &error);
  g_assert_no_error (error);
  g_assert_true (lb_connection_is_encrypted (lb_imap_session_get_connection (session)));
  /* Before TLS the server said LOGINDISABLED and STARTTLS; after, neither. */
  g_assert_false (lb_imap_session_has_capability (session, "STARTTLS"));
  g_assert_false (lb_imap_session_has_capability (session, "LOGINDISABLED"));
  session_login (session, "bob@example.test", "bob-password", &error);
  g_assert_no_error (error);
  logout (session);
}

static void
test_no_starttls_refused (void)
{
  g_autoptr(LbImapSession) session = make_session (servers->imap_notls_host,
                                                   servers->imap_notls_port,
                                                   LB_NET_SECURITY_STARTTLS, TRUE);
  g_autoptr(GError) error = NULL;

  g_assert_false (session_connect (session, &error));
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_INSECURE);
  g_assert_nonnull (strstr (error->message, "does not offer STARTTLS"));
}

static void
test_plain_login_refused_without_tls (void)
{
  g_autoptr(LbImapSession) session = make_session (servers->imap_notls_host,
                                                   servers->imap_notls_port,
                                                   LB_NET_SECURITY_NONE, FALSE);
  g_autoptr(GError) error = NULL;

  session_connect (session, &error);
  g_assert_no_error (error);
  /* The server offers only SCRAM here (LOGINDISABLED): SCRAM never sends the password,
   * so logging in over loopback without TLS still works, and nothing else is tried. */
  g_assert_true (lb_imap_session_has_capability (session, "LOGINDISABLED"));
  session_login (session, "carol@example.test", "carol-password", &error);
  g_assert_no_error (error);
  logout (session);
}

static void
test_untrusted_certificate (void)
{
  g_autoptr(LbImapSession) refused = make_session (servers->host, servers->imaps_port,
                                                   LB_NET_SECURITY_TLS, FALSE);
  g_autoptr(LbImapSession) trusted = NULL;
  g_autoptr(LbConnection) conn = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) server_cert = NULL;
  g_autofree char *cert_path = g_build_filename (servers->dir, "tls", "server.pem", NULL);
  g_autofree char *fingerprint = NULL;
  GTlsCertificate *seen;

  g_assert_false (session_connect (refused, &error));
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
  g_assert_nonnull (strstr (error->message, "not signed by a known certificate authority"));

  /* What the user would be shown is the server's real certificate. */
  server_cert = g_tls_certificate_new_from_file (cert_path, NULL);
  fingerprint = lb_certificate_dup_fingerprint (server_cert);
  seen = lb_connection_get_peer_certificate (lb_imap_session_get_connection (refused));
  g_assert_nonnull (seen);
  g_assert_true (g_tls_certificate_is_same (seen, server_cert));
  g_assert_nonnull (strstr (error->message, fingerprint));
  g_assert_true (lb_connection_get_peer_certificate_errors (lb_imap_session_get_connection (refused)) &
                 G_TLS_CERTIFICATE_UNKNOWN_CA);

  /* Trusted by that fingerprint (any spelling), the same server is accepted. */
  conn = lb_connection_new (servers->host, servers->imaps_port, LB_NET_SECURITY_TLS);
  {
    g_autofree char *lower = g_ascii_strdown (fingerprint, -1);

    lb_connection_set_trusted_fingerprint (conn, lower);
  }
  trusted = lb_imap_session_new (conn);
  g_clear_error (&error);
  session_connect (trusted, &error);
  g_assert_no_error (error);

  /* A different fingerprint is not enough. */
  {
    g_autoptr(LbConnection) other = lb_connection_new (servers->host, servers->imaps_port,
                                                       LB_NET_SECURITY_TLS);
    g_autoptr(LbImapSession) wrong = NULL;

    lb_connection_set_trusted_fingerprint (other, "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:"
                                                  "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF");
    wrong = lb_imap_session_new (other);
    g_clear_error (&error);
    g_assert_false (session_connect (wrong, &error));
    g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
  }
}

static void
test_wrong_host (void)
{
  g_autoptr(LbImapSession) session = make_session ("localhost", servers->imaps_port,
                                                   LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;

  /* "localhost" resolves to 127.0.0.1, where nothing listens on this port. */
  g_assert_false (session_connect (session, &error));
  g_assert_error (error, LB_NET_ERROR, LB_NET_ERROR_UNREACHABLE);
  g_assert_nonnull (strstr (error->message, "localhost"));
}

static void
test_wrong_password (void)
{
  g_autoptr(LbImapSession) session = make_session (servers->host, servers->imaps_port,
                                                   LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;

  session_connect (session, &error);
  g_assert_no_error (error);
  g_assert_false (session_login (session, "alice@example.test", "not-her-password", &error));
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "Authentication failed"));
  g_assert_cmpint (lb_imap_session_get_state (session), ==, LB_IMAP_STATE_NOT_AUTHENTICATED);

  /* The session goes on: the right password works on the same connection. */
  g_clear_error (&error);
  session_login (session, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
}

static void
test_commands (void)
{
  g_autoptr(LbImapSession) s = logged_in ("bob@example.test");
  g_autoptr(LbImapResult) enable = NULL;
  g_autoptr(LbImapResult) id = NULL;
  g_autoptr(LbImapResult) ns = NULL;
  g_autoptr(LbImapResult) list = NULL;
  g_autoptr(LbImapResult) select = NULL;
  g_autoptr(LbImapResult) fetch = NULL;
  g_autoptr(LbImapResult) store = NULL;
  g_autoptr(LbImapResult) search = NULL;
  g_autoptr(LbImapResult) append = NULL;
  g_autoptr(LbImapResult) move = NULL;
  g_autoptr(LbImapResult) trycreate = NULL;
  g_autoptr(GBytes) message = NULL;
  g_autoptr(GError) error = NULL;
  LbImapResponse *r;
  gboolean saw_sent = FALSE, saw_status = FALSE;
  guint fetched = 0;
  g_autofree char *subject_a = g_strdup_printf ("Commands A %u", g_random_int ());

  {
    g_autofree char *m = g_strdup_printf ("From: a@example.org\r\nSubject: %s\r\n\r\nOne\r\n",
                                          subject_a);
    seed ("bob@example.test", "INBOX", m);
    seed ("bob@example.test", "INBOX", "From: b@example.org\r\nSubject: B\r\n\r\nTwo\r\n");
  }

  enable = run_ok (s, "ENABLE CONDSTORE QRESYNC");
  g_assert_true (lb_imap_session_is_enabled (s, "QRESYNC"));
  id = run_ok (s, "ID (\"name\" \"Letterbox\" \"version\" \"" PACKAGE_VERSION "\")");
  g_assert_nonnull (find_untagged (id, LB_IMAP_DATA_ID));
  ns = run_ok (s, "NAMESPACE");
  r = find_untagged (ns, LB_IMAP_DATA_NAMESPACE);
  g_assert_nonnull (r);
  g_assert_nonnull (r->namespaces[0]);

  /* LIST-EXTENDED with SPECIAL-USE and LIST-STATUS in one round trip. */
  list = run_ok (s, "LIST \"\" \"*\" RETURN (SPECIAL-USE STATUS (MESSAGES UIDNEXT UIDVALIDITY))");
  for (guint i = 0; i < list->untagged->len; i++)
    {
      LbImapResponse *u = g_ptr_array_index (list->untagged, i);

      if (u->data == LB_IMAP_DATA_LIST && g_str_equal (u->list->mailbox, "Sent"))
        for (guint j = 0; j < u->list->flags->len; j++)
          saw_sent |= g_str_equal (g_ptr_array_index (u->list->flags, j), "\\Sent");
      if (u->data == LB_IMAP_DATA_MAILBOX_STATUS && g_str_equal (u->mailbox_status->mailbox, "INBOX"))
        saw_status = u->mailbox_status->messages >= 2;
    }
  g_assert_true (saw_sent);
  g_assert_true (saw_status);

  select = run_ok (s, "SELECT INBOX (CONDSTORE)");
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_SELECTED);
  g_assert_nonnull (find_code (select, LB_IMAP_CODE_UIDVALIDITY));
  g_assert_nonnull (find_code (select, LB_IMAP_CODE_HIGHESTMODSEQ));
  g_assert_cmpint (select->tagged->code.kind, ==, LB_IMAP_CODE_READ_WRITE);

  fetch = run_ok (s, "UID FETCH 1:* (UID FLAGS INTERNALDATE RFC822.SIZE ENVELOPE BODYSTRUCTURE MODSEQ)");
  for (guint i = 0; i < fetch->untagged->len; i++)
    {
      LbImapResponse *u = g_ptr_array_index (fetch->untagged, i);

      if (u->data != LB_IMAP_DATA_FETCH)
        continue;
      fetched++;
      g_assert_true (u->fetch->present & LB_IMAP_FETCH_UID);
      g_assert_nonnull (u->fetch->envelope);
      g_assert_nonnull (u->fetch->body);
      g_assert_cmpuint (u->fetch->modseq, >, 0);
    }
  g_assert_cmpuint (fetched, >=, 2);

  /* UNCHANGEDSINCE 1 is older than any message: the store must be refused as MODIFIED. */
  store = run_ok (s, "UID STORE 1:* (UNCHANGEDSINCE 1) +FLAGS.SILENT (\\Seen)");
  g_assert_cmpint (store->tagged->code.kind, ==, LB_IMAP_CODE_MODIFIED);

  search = run_ok (s, "UID SEARCH RETURN (ALL COUNT) UNSEEN");
  r = find_untagged (search, LB_IMAP_DATA_ESEARCH);
  g_assert_nonnull (r);
  g_assert_true (r->esearch->uid);
  g_assert_cmpuint (r->esearch->count, >=, 2);

  /* APPEND with a literal (LITERAL+ here: no round trip). */
  message = STATIC_BYTES ("From: me@example.test\r\nSubject: Draft\r\n\r\nBody\r\n");
  append = run (s, "APPEND Drafts (\\Draft \\Seen)", message, &error);
  g_assert_no_error (error);
  g_assert_cmpint (append->tagged->status, ==, LB_IMAP_STATUS_OK);
  g_assert_cmpint (append->tagged->code.kind, ==, LB_IMAP_CODE_APPENDUID);

  /* A mailbox that does not exist: NO [TRYCREATE] comes back as a result, not a failure. */
  trycreate = run (s, "UID COPY 1 \"No such box\"", NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (trycreate->tagged->status, ==, LB_IMAP_STATUS_NO);
  g_assert_cmpint (trycreate->tagged->code.kind, ==, LB_IMAP_CODE_TRYCREATE);

  /* Mailbox names go out in modified UTF-7 (RFC 3501 §5.1.3). */
  {
    g_autofree char *name = lb_imap_utf7_encode ("Projekte/Ärger");
    g_autofree char *create = g_strdup_printf ("CREATE \"%s\"", name);
    g_autofree char *subscribe = g_strdup_printf ("SUBSCRIBE \"%s\"", name);
    g_autofree char *rename = g_strdup_printf ("RENAME \"%s\" \"Projekte/Freude\"", name);
    g_autoptr(LbImapResult) listed = NULL;
    gboolean found = FALSE;

    g_assert_cmpstr (name, ==, "Projekte/&AMQ-rger");
    lb_imap_result_free (run_ok (s, create));
    lb_imap_result_free (run_ok (s, subscribe));
    listed = run_ok (s, "LIST \"\" \"Projekte/*\"");
    for (guint i = 0; i < listed->untagged->len; i++)
      {
        LbImapResponse *u = g_ptr_array_index (listed->untagged, i);
        g_autofree char *decoded = lb_imap_utf7_decode (u->list->mailbox, u->list->mailbox_len, NULL);

        found |= g_strcmp0 (decoded, "Projekte/Ärger") == 0;
      }
    g_assert_true (found);
    lb_imap_result_free (run_ok (s, rename));
  }
  move = run_ok (s, "UID MOVE 1 \"Projekte/Freude\"");
  g_assert_cmpint (find_code (move, LB_IMAP_CODE_COPYUID)->code.kind, ==, LB_IMAP_CODE_COPYUID);
  lb_imap_result_free (run_ok (s, "UNSELECT"));
  lb_imap_result_free (run_ok (s, "DELETE \"Projekte/Freude\""));
  {
    g_autoptr(GError) bad_error = NULL;
    g_autoptr(LbImapResult) bad = run (s, "FROBNICATE", NULL, &bad_error);

    g_assert_null (bad);
    g_assert_error (bad_error, LB_IMAP_ERROR, LB_IMAP_ERROR_BAD);
  }
  logout (s);
}

static void
test_compress (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autoptr(LbImapResult) compress = NULL;
  g_autoptr(LbImapResult) list = NULL;

  g_assert_true (lb_imap_session_has_capability (s, "COMPRESS=DEFLATE"));
  compress = run_ok (s, "COMPRESS DEFLATE");
  g_assert_true (lb_connection_is_compressed (lb_imap_session_get_connection (s)));

  /* Everything after goes through DEFLATE both ways, pipelined too. */
  lb_imap_result_free (run_ok (s, "SELECT INBOX"));
  list = run_ok (s, "LIST \"\" \"*\"");
  g_assert_nonnull (find_untagged (list, LB_IMAP_DATA_LIST));
  lb_imap_result_free (run_ok (s, "NOOP"));
  logout (s);
}

static guint
count_messages (const char *user,
                const char *box)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_auto(GStrv) lines = NULL;
  guint n = 0;

  /* doveadm prints one line per message found. */
  lb_test_servers_doveadm (servers, NULL, &out, &error, "search", "-u", user, "mailbox", box,
                           "ALL", NULL);
  g_assert_no_error (error);
  lines = g_strsplit (out, "\n", -1);
  for (guint i = 0; lines[i] != NULL; i++)
    n += lines[i][0] != '\0';
  return n;
}

/* Returns how many COPYUID ranges came back (one per command at least). */
static guint
move (LbImapSession *s,
      const char    *uids,
      const char    *box,
      guint          expected_dest_uids)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapSet) dest = NULL;
  guint32 uidvalidity = 0;
  LbTestWait w = { 0 };

  lb_imap_session_move_async (s, uids, box, NULL, lb_test_wait_cb, &w);
  lb_imap_session_move_finish (s, lb_test_wait_result (&w), &uidvalidity, &dest, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (uidvalidity, >, 0);
  g_assert_nonnull (dest);
  g_assert_cmpuint (lb_imap_set_count (dest), ==, expected_dest_uids);
  return dest->ranges->len;
}

static void
test_move (void)
{
  g_autoptr(LbImapSession) s = logged_in ("bob@example.test");
  g_autofree char *src = g_strdup_printf ("Quelle%u", g_random_int ());
  g_autofree char *dst = g_strdup_printf ("Ziel Ä%u", g_random_int ());
  g_autofree char *create_src = g_strdup_printf ("CREATE %s", src);
  g_autofree char *create_dst = NULL;
  g_autofree char *encoded_dst = lb_imap_session_encode_mailbox (s, dst);
  g_autofree char *select = g_strdup_printf ("SELECT %s", src);
  g_autoptr(GError) error = NULL;
  LbImapQuirks quirks;
  char *no_move[] = { (char *) "MOVE", NULL };
  char *no_move_uidplus[] = { (char *) "MOVE", (char *) "UIDPLUS", NULL };

  create_dst = g_strdup_printf ("CREATE %s", encoded_dst);
  lb_imap_result_free (run_ok (s, create_src));
  lb_imap_result_free (run_ok (s, create_dst));
  for (guint i = 1; i <= 5; i++)
    {
      g_autofree char *m = g_strdup_printf ("Subject: move %u\r\n\r\nx\r\n", i);

      seed ("bob@example.test", src, m);
    }
  lb_imap_result_free (run_ok (s, select));

  /* UID MOVE (RFC 6851). */
  g_assert_true (lb_imap_session_has_capability (s, "MOVE"));
  move (s, "1:2", dst, 2);
  g_assert_cmpuint (count_messages ("bob@example.test", src), ==, 3);
  g_assert_cmpuint (count_messages ("bob@example.test", dst), ==, 2);

  /* A server whose MOVE is not to be trusted: COPY, STORE \Deleted, UID EXPUNGE. */
  lb_imap_quirks_init_defaults (&quirks);
  quirks.disabled_capabilities = no_move;
  lb_imap_session_set_quirks (s, &quirks);
  g_assert_false (lb_imap_session_has_capability (s, "MOVE"));
  move (s, "3", dst, 1);
  g_assert_cmpuint (count_messages ("bob@example.test", src), ==, 2);
  g_assert_cmpuint (count_messages ("bob@example.test", dst), ==, 3);

  /* Without UIDPLUS a plain EXPUNGE would also remove what another client marked
   * \Deleted: then ours stay copied and marked, and the other message survives. */
  quirks.disabled_capabilities = no_move_uidplus;
  lb_imap_session_set_quirks (s, &quirks);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u", "bob@example.test",
                           "\\Deleted", "mailbox", src, "uid", "5", NULL);
  g_assert_no_error (error);
  move (s, "4", dst, 1);
  g_assert_cmpuint (count_messages ("bob@example.test", src), ==, 2);
  g_assert_cmpuint (count_messages ("bob@example.test", dst), ==, 4);

  /* When every \Deleted message is ours, EXPUNGE is safe and used. */
  move (s, "4:5", dst, 2);
  g_assert_cmpuint (count_messages ("bob@example.test", src), ==, 0);
  g_assert_cmpuint (count_messages ("bob@example.test", dst), ==, 6);

  /* 300 messages appended in one pipelined burst, then moved with a UID set longer than
   * the quirks allow on one line: it goes in several commands, and all arrive. */
  {
    LbTestWait w[300] = { 0 };
    g_autoptr(GString) uids = g_string_new (NULL);
    g_autoptr(GBytes) message = STATIC_BYTES ("Subject: many\r\n\r\nx\r\n");
    g_autofree char *append = g_strdup_printf ("APPEND %s", src);

    for (guint i = 0; i < G_N_ELEMENTS (w); i++)
      lb_imap_session_command_async (s, append, message, NULL, lb_test_wait_cb, &w[i]);
    for (guint i = 0; i < G_N_ELEMENTS (w); i++)
      {
        g_autoptr(LbImapResult) res = lb_imap_session_command_finish (s, lb_test_wait_result (&w[i]),
                                                                      &error);

        g_assert_no_error (error);
        g_assert_cmpint (res->tagged->status, ==, LB_IMAP_STATUS_OK);
        g_assert_cmpint (res->tagged->code.kind, ==, LB_IMAP_CODE_APPENDUID);
        g_string_append_printf (uids, "%s%u", i > 0 ? "," : "",
                                g_array_index (res->tagged->code.set->ranges, LbImapRange, 0).first);
        g_object_unref (w[i].result);
      }
    g_assert_cmpuint (uids->len, >, 1024);
    quirks.max_command_length = 1024;
    lb_imap_session_set_quirks (s, &quirks);
    lb_imap_result_free (run_ok (s, "NOOP"));
    /* Dovecot answers each command with one contiguous COPYUID range: several ranges
     * show that the set was split. */
    g_assert_cmpuint (move (s, uids->str, dst, 300), >=, 2);
    g_assert_cmpuint (count_messages ("bob@example.test", src), ==, 0);
    g_assert_cmpuint (count_messages ("bob@example.test", dst), ==, 306);
  }
  logout (s);
}

/* Without LITERAL+ a literal waits for the server's "+" (RFC 9051 §7.5). */
static void
test_synchronizing_literal (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autoptr(GBytes) message = STATIC_BYTES ("Subject: sync literal\r\n\r\nx\r\n");
  g_autoptr(LbImapResult) first = NULL;
  g_autoptr(LbImapResult) second = NULL;
  g_autoptr(GError) error = NULL;
  LbImapQuirks quirks;
  char *no_literal_plus[] = { (char *) "LITERAL+", (char *) "LITERAL-", NULL };
  LbTestWait w1 = { 0 }, w2 = { 0 };

  lb_imap_quirks_init_defaults (&quirks);
  quirks.disabled_capabilities = no_literal_plus;
  lb_imap_session_set_quirks (s, &quirks);

  /* Two at once: each literal must go out only after its own continuation. */
  lb_imap_session_command_async (s, "APPEND INBOX", message, NULL, lb_test_wait_cb, &w1);
  lb_imap_session_command_async (s, "APPEND INBOX (\\Seen)", message, NULL, lb_test_wait_cb, &w2);
  first = lb_imap_session_command_finish (s, lb_test_wait_result (&w1), &error);
  g_assert_no_error (error);
  second = lb_imap_session_command_finish (s, lb_test_wait_result (&w2), &error);
  g_assert_no_error (error);
  g_assert_cmpint (first->tagged->status, ==, LB_IMAP_STATUS_OK);
  g_assert_cmpint (second->tagged->status, ==, LB_IMAP_STATUS_OK);
  g_assert_cmpint (second->tagged->code.kind, ==, LB_IMAP_CODE_APPENDUID);
  g_object_unref (w1.result);
  g_object_unref (w2.result);
  logout (s);
}

static void
count_fetch (LbImapResponse *r,
             gpointer        user_data)
{
  if (r->data == LB_IMAP_DATA_FETCH)
    (*(guint *) user_data)++;
}

static void
test_untagged_func (void)
{
  g_autoptr(LbImapSession) s = logged_in ("alice@example.test");
  g_autoptr(LbImapResult) res = NULL;
  g_autoptr(GError) error = NULL;
  guint fetched = 0;
  LbTestWait w = { 0 };

  for (guint i = 0; i < 3; i++)
    seed ("alice@example.test", "INBOX", "Subject: counted\r\n\r\nx\r\n");
  lb_imap_result_free (run_ok (s, "EXAMINE INBOX"));
  lb_imap_session_command_full_async (s, "UID FETCH 1:* (UID FLAGS)", NULL, count_fetch, &fetched,
                                      NULL, lb_test_wait_cb, &w);
  res = lb_imap_session_command_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  /* Each FETCH went to the function as it came; none were collected. */
  g_assert_cmpuint (fetched, ==, count_messages ("alice@example.test", "INBOX"));
  g_assert_cmpuint (fetched, >=, 3);
  g_assert_cmpuint (res->untagged->len, ==, 0);
  logout (s);
}

static void
test_pipelining (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  LbTestWait w[20] = { 0 };

  /* Twenty commands on the wire before the first answer; each gets its own result. */
  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    {
      g_autofree char *cmd = g_strdup_printf (i % 2 ? "NOOP" : "STATUS INBOX (MESSAGES)");

      lb_imap_session_command_async (s, cmd, NULL, NULL, lb_test_wait_cb, &w[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbImapResult) result = lb_imap_session_command_finish (s, lb_test_wait_result (&w[i]),
                                                                       &error);

      g_assert_no_error (error);
      g_assert_cmpint (result->tagged->status, ==, LB_IMAP_STATUS_OK);
      if (i % 2 == 0)
        g_assert_nonnull (find_untagged (result, LB_IMAP_DATA_MAILBOX_STATUS));
      else
        g_assert_null (find_untagged (result, LB_IMAP_DATA_MAILBOX_STATUS));
      g_object_unref (w[i].result);
    }
  logout (s);
}

typedef struct
{
  gboolean saw_exists;
} IdleState;

static void
idle_untagged_cb (LbImapSession  *session,
                  LbImapResponse *r,
                  gpointer        user_data)
{
  IdleState *state = user_data;

  if (r->data == LB_IMAP_DATA_EXISTS)
    state->saw_exists = TRUE;
}

static gboolean
idle_saw_exists (gpointer user_data)
{
  return ((IdleState *) user_data)->saw_exists;
}

/* Delivers a message through Postfix's SMTP port, as a sender on the Internet would. */
static void
deliver_by_smtp (const char *to,
                 const char *subject)
{
  g_autoptr(GSocketClient) client = g_socket_client_new ();
  g_autoptr(GSocketConnection) conn = NULL;
  g_autoptr(GDataInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  GOutputStream *out;
  g_autofree char *script = g_strdup_printf ("EHLO test\r\nMAIL FROM:<sender@example.org>\r\n"
                                             "RCPT TO:<%s>\r\nDATA\r\n", to);
  g_autofree char *body = g_strdup_printf ("Subject: %s\r\n\r\nHello\r\n.\r\nQUIT\r\n", subject);
  int replies = 0;

  conn = g_socket_client_connect_to_host (client, servers->host, servers->smtp_port, NULL, &error);
  g_assert_no_error (error);
  in = g_data_input_stream_new (g_io_stream_get_input_stream (G_IO_STREAM (conn)));
  out = g_io_stream_get_output_stream (G_IO_STREAM (conn));
  g_output_stream_write_all (out, script, strlen (script), NULL, NULL, &error);
  g_assert_no_error (error);
  /* Greeting, EHLO (multi-line), MAIL, RCPT, then 354 for DATA. */
  while (replies < 5)
    {
      g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, &error);

      g_assert_no_error (error);
      g_assert_nonnull (line);
      if (strlen (line) >= 4 && line[3] == ' ')
        {
          replies++;
          g_assert_true (line[0] == '2' || line[0] == '3');
        }
    }
  g_output_stream_write_all (out, body, strlen (body), NULL, NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *line = g_data_input_stream_read_line (in, NULL, NULL, &error);

    g_assert_no_error (error);
    g_assert_true (g_str_has_prefix (line, "250"));
  }
}

static void
test_idle (void)
{
  g_autoptr(LbImapSession) s = logged_in ("alice@example.test");
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  IdleState state = { FALSE };
  LbTestWait w = { 0 };
  gulong handler;

  if (servers->smtp_port == 0)
    {
      g_test_skip ("Postfix runs only as root; this test run is not root");
      return;
    }

  lb_imap_result_free (run_ok (s, "SELECT INBOX"));
  handler = g_signal_connect (s, "untagged", G_CALLBACK (idle_untagged_cb), &state);
  lb_imap_session_idle_async (s, 600, cancellable, lb_test_wait_cb, &w);

  deliver_by_smtp ("alice@example.test", "Pushed while idling");
  g_assert_true (lb_test_wait_until (idle_saw_exists, &state, 30000));

  /* Cancelling sends DONE; the call ends, cancelled, once the server agreed. */
  g_cancellable_cancel (cancellable);
  g_assert_false (lb_imap_session_idle_finish (s, lb_test_wait_result (&w), &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_object_unref (w.result);
  g_signal_handler_disconnect (s, handler);

  /* In step again: the next command works. */
  lb_imap_result_free (run_ok (s, "NOOP"));
  logout (s);
}

typedef struct
{
  GChecksum *sum;
  guint64 bytes;
  guint begins, ends, aborts;
  gboolean kick;
} BodySink;

static gpointer
body_begin (const LbImapLiteralInfo *info,
            gpointer                 user_data,
            GError                 **error)
{
  BodySink *sink = user_data;

  sink->begins++;
  sink->bytes = 0;
  g_checksum_reset (sink->sum);
  return sink;
}

static gboolean
body_write (gpointer      handle,
            const guint8 *data,
            gsize         len,
            gpointer      user_data,
            GError      **error)
{
  BodySink *sink = user_data;

  g_checksum_update (sink->sum, data, (gssize) len);
  sink->bytes += len;
  if (sink->kick && sink->bytes > 1024 * 1024)
    {
      /* The server drops the connection in the middle of the transfer. */
      sink->kick = FALSE;
      lb_test_servers_doveadm (servers, NULL, NULL, NULL, "kick", "alice@example.test", NULL);
    }
  return TRUE;
}

static gboolean
body_end (gpointer   handle,
          gpointer   user_data,
          GError   **error)
{
  ((BodySink *) user_data)->ends++;
  return TRUE;
}

static void
body_abort (gpointer handle,
            gpointer user_data)
{
  ((BodySink *) user_data)->aborts++;
}

static const LbImapLiteralSink body_sink_funcs = { body_begin, body_write, body_end, body_abort };

static char *big_uid;
static char *big_sha256;
static gsize big_size;

/* A 25 MB message, made by a shell pipeline straight into doveadm so that this process
 * never holds it. */
static void
seed_big_message (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *script = NULL;
  g_autofree char *out = NULL;
  g_autofree char *fixture = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh", NULL);
  g_auto(GStrv) words = NULL;
  int status;

  if (big_uid != NULL)
    return;
  script = g_strdup_printf (
    "set -euo pipefail; f=$(mktemp); "
    "{ printf 'From: big@example.org\\r\\nSubject: Big\\r\\n\\r\\n'; "
    "  { head -c 25000000 /dev/zero | tr '\\0' 'x' | fold -w 998; echo; } | sed 's/$/\\r/'; } "
    "> \"$f\"; "
    "bash '%s' doveadm '%s' save -u alice@example.test -m Big < \"$f\"; "
    "echo \"$(stat -c %%s \"$f\") $(sha256sum < \"$f\" | cut -d' ' -f1)\"; rm -f \"$f\"",
    fixture, servers->dir);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "mailbox", "create", "-u",
                           "alice@example.test", "Big", NULL);
  g_spawn_sync (NULL, (char *[]) { (char *) "bash", (char *) "-c", script, NULL }, NULL,
                G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  words = g_strsplit (g_strstrip (out), " ", 2);
  big_size = g_ascii_strtoull (words[0], NULL, 10);
  big_sha256 = g_strdup (words[1]);
  big_uid = g_strdup ("1");
  g_assert_cmpuint (big_size, >, 25000000);
}

/* getrusage()'s peak cannot be reset, so a peak left by an earlier test hides growth
 * below it. Linux resets the process's peak (VmHWM) to its current size when "5" is
 * written to /proc/self/clear_refs; then VmHWM is the peak of what follows. Returns the
 * peak after the reset, or -1 where that is not possible. */
static void
test_streamed_body (void)
{
  g_autoptr(LbImapSession) s = NULL;
  g_autoptr(LbImapResult) fetch = NULL;
  BodySink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  LbImapResponse *r;
  LbImapSection *section;
  glong before, after;

  seed_big_message ();
  s = logged_in ("alice@example.test");
  lb_imap_session_set_literal_sink (s, &body_sink_funcs, &sink);
  lb_imap_result_free (run_ok (s, "EXAMINE Big"));

  before = lb_test_peak_rss_reset ();
  fetch = run_ok (s, "UID FETCH 1 (UID BODY.PEEK[])");
  after = lb_test_peak_rss_kb ();

  g_assert_cmpuint (sink.begins, ==, 1);
  g_assert_cmpuint (sink.ends, ==, 1);
  g_assert_cmpuint (sink.bytes, ==, big_size);
  g_assert_cmpstr (g_checksum_get_string (sink.sum), ==, big_sha256);
  r = find_untagged (fetch, LB_IMAP_DATA_FETCH);
  section = g_ptr_array_index (r->fetch->sections, 0);
  g_assert_cmpint (section->value->kind, ==, LB_IMAP_VALUE_STREAMED);
  g_assert_cmpuint (section->value->number, ==, big_size);
  /* Bounded memory: the 25 MB went through, the process grew by far less. */
  g_test_message ("peak RSS %ld kB before the fetch, %ld kB after", before, after);
#ifndef __SANITIZE_ADDRESS__
  g_assert_cmpint (after - before, <, 8 * 1024);
#else
  /* AddressSanitizer keeps freed buffers in quarantine: RSS says nothing here. */
  (void) before;
#endif

  logout (s);
  g_checksum_free (sink.sum);
}

static void
test_server_drops_mid_fetch (void)
{
  g_autoptr(LbImapSession) s = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapResult) fetch = NULL;
  BodySink sink = { g_checksum_new (G_CHECKSUM_SHA256) };

  seed_big_message ();
  s = logged_in ("alice@example.test");
  lb_imap_session_set_literal_sink (s, &body_sink_funcs, &sink);
  lb_imap_result_free (run_ok (s, "EXAMINE Big"));

  sink.kick = TRUE;
  fetch = run (s, "UID FETCH 1 (UID BODY.PEEK[])", NULL, &error);
  g_assert_null (fetch);
  g_assert_true (error->domain == LB_NET_ERROR || error->domain == LB_IMAP_ERROR);
  g_test_message ("after the server dropped the connection: %s", error->message);

  /* The half-received body was abandoned, never completed. */
  g_assert_cmpuint (sink.begins, ==, 1);
  g_assert_cmpuint (sink.ends, ==, 0);
  g_assert_cmpuint (sink.aborts, ==, 1);
  g_assert_cmpuint (sink.bytes, <, big_size);
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_DISCONNECTED);

  /* Later commands fail at once with the same reason, they do not hang. */
  {
    g_autoptr(GError) again = NULL;
    g_autoptr(LbImapResult) none = run (s, "NOOP", NULL, &again);

    g_assert_null (none);
    g_assert_nonnull (again);
  }
  g_checksum_free (sink.sum);
}

static LbImapService *
make_service (const char *user,
              const char *password,
              guint       max_connections,
              guint       idle_seconds)
{
  LbImapServiceConfig config = { 0 };

  config.host = servers->host;
  config.port = servers->imaps_port;
  config.security = LB_NET_SECURITY_TLS;
  config.user = (char *) user;
  config.secret = (char *) password;
  config.ca_file = servers->ca_file;
  config.max_connections = max_connections;
  lb_imap_quirks_init_defaults (&config.quirks);
  if (idle_seconds > 0)
    config.quirks.idle_seconds = idle_seconds;
  return lb_imap_service_new (&config);
}

static void
drain_main_context (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_service_pool (void)
{
  g_autoptr(LbImapService) service = make_service ("carol@example.test", "carol-password", 2, 0);
  g_autoptr(GError) error = NULL;
  LbImapSession *sessions[3] = { NULL };
  LbTestWait w[3] = { 0 };

  for (guint i = 0; i < 3; i++)
    lb_imap_service_acquire_async (service, NULL, lb_test_wait_cb, &w[i]);
  for (guint i = 0; i < 2; i++)
    {
      sessions[i] = lb_imap_service_acquire_finish (service, lb_test_wait_result (&w[i]), &error);
      g_assert_no_error (error);
      g_assert_cmpint (lb_imap_session_get_state (sessions[i]), ==, LB_IMAP_STATE_AUTHENTICATED);
    }
  g_assert_true (sessions[0] != sessions[1]);
  g_assert_cmpint (lb_imap_service_get_status (service), ==, LB_IMAP_SERVICE_ONLINE);

  /* Two are open, the limit: the third waits for one to come back. */
  drain_main_context ();
  g_assert_null (w[2].result);
  lb_imap_service_release (service, sessions[0]);
  sessions[2] = lb_imap_service_acquire_finish (service, lb_test_wait_result (&w[2]), &error);
  g_assert_no_error (error);
  g_assert_true (sessions[2] == sessions[0]);

  lb_imap_service_release (service, sessions[1]);
  lb_imap_service_release (service, sessions[2]);
  for (guint i = 0; i < 3; i++)
    g_object_unref (w[i].result);
}

static void
test_service_needs_user (void)
{
  g_autoptr(LbImapService) service = make_service ("carol@example.test", "wrong", 1, 0);
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapSession) session = NULL;
  LbTestWait w = { 0 };

  lb_imap_service_acquire_async (service, NULL, lb_test_wait_cb, &w);
  session = lb_imap_service_acquire_finish (service, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_null (session);
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH);
  g_assert_true (lb_imap_service_error_needs_user (error));
  g_assert_cmpint (lb_imap_service_get_status (service), ==, LB_IMAP_SERVICE_ERROR);
  g_assert_error (lb_imap_service_get_last_error (service), LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH);
}

typedef struct
{
  LbImapService *service;
  guint changes;
  gint64 until;
} WatchState;

static void
changed_cb (LbImapService *service,
            const char    *mailbox,
            gpointer       user_data)
{
  WatchState *state = user_data;

  g_assert_cmpstr (mailbox, ==, "INBOX");
  state->changes++;
}

static gboolean
watch_changed (gpointer user_data)
{
  return ((WatchState *) user_data)->changes > 0;
}

static gboolean
time_reached (gpointer user_data)
{
  return g_get_monotonic_time () >= ((WatchState *) user_data)->until;
}

static gboolean
service_online (gpointer user_data)
{
  return lb_imap_service_get_status (((WatchState *) user_data)->service) ==
         LB_IMAP_SERVICE_ONLINE;
}

static void
test_service_watch (void)
{
  /* IDLE for 2 s at a time, so that the test sees it re-entered. */
  g_autoptr(LbImapService) service = make_service ("carol@example.test", "carol-password", 1, 2);
  WatchState state = { service, 0, 0 };

  g_signal_connect (service, "mailbox-changed", G_CALLBACK (changed_cb), &state);
  lb_imap_service_watch (service, "INBOX");

  /* Once watching, a change is announced (anything may have happened before). */
  g_assert_true (lb_test_wait_until (watch_changed, &state, 30000));
  g_assert_cmpint (lb_imap_service_get_status (service), ==, LB_IMAP_SERVICE_ONLINE);

  state.changes = 0;
  seed ("carol@example.test", "INBOX", "Subject: watched 1\r\n\r\nx\r\n");
  g_assert_true (lb_test_wait_until (watch_changed, &state, 30000));

  /* After more than one IDLE period the watcher still hears: it went back into IDLE. */
  state.until = g_get_monotonic_time () + 5 * G_USEC_PER_SEC;
  g_assert_true (lb_test_wait_until (time_reached, &state, 10000));
  state.changes = 0;
  seed ("carol@example.test", "INBOX", "Subject: watched 2\r\n\r\nx\r\n");
  g_assert_true (lb_test_wait_until (watch_changed, &state, 30000));

  /* The server drops every connection: the watcher comes back by itself. */
  state.changes = 0;
  lb_test_servers_doveadm (servers, NULL, NULL, NULL, "kick", "carol@example.test", NULL);
  g_assert_true (lb_test_wait_until (watch_changed, &state, 30000));
  g_assert_true (lb_test_wait_until (service_online, &state, 30000));
  state.changes = 0;
  seed ("carol@example.test", "INBOX", "Subject: watched 3\r\n\r\nx\r\n");
  g_assert_true (lb_test_wait_until (watch_changed, &state, 30000));

  lb_imap_service_unwatch (service);
  drain_main_context ();
}

/* ---- Typed commands ---- */

static char *
make_box (LbImapSession *s,
          const char    *prefix)
{
  char *box = g_strdup_printf ("%s%u", prefix, g_random_int ());
  g_autofree char *encoded = lb_imap_session_encode_mailbox (s, box);
  g_autofree char *create = g_strdup_printf ("CREATE %s", encoded);

  lb_imap_result_free (run_ok (s, create));
  return box;
}

static void
set_quirks_disabling (LbImapSession *s,
                      const char    *capability,
                      const char    *capability2)
{
  LbImapQuirks quirks;
  char *disabled[] = { (char *) capability, (char *) capability2, NULL };

  lb_imap_quirks_init_defaults (&quirks);
  quirks.disabled_capabilities = disabled;
  lb_imap_session_set_quirks (s, &quirks);
}

static LbImapMailboxInfo *
select_box (LbImapSession             *s,
            const char                *box,
            gboolean                   read_only,
            const LbImapQresyncParams *qresync,
            LbImapUntaggedFunc         func,
            gpointer                   data,
            GError                   **error)
{
  LbTestWait w = { 0 };
  LbImapMailboxInfo *info;

  lb_imap_session_select_async (s, box, read_only, qresync, func, data, NULL, lb_test_wait_cb, &w);
  info = lb_imap_session_select_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return info;
}

static gboolean
append_stream (LbImapSession     *s,
               const char        *box,
               const char *const *flags,
               GDateTime         *date,
               GInputStream      *stream,
               goffset            size,
               guint32           *uid,
               GError           **error)
{
  LbTestWait w = { 0 };
  guint32 uidvalidity = 0;
  gboolean ok;

  lb_imap_session_append_async (s, box, flags, date, stream, size, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_append_finish (s, lb_test_wait_result (&w), &uidvalidity, uid, error);
  g_object_unref (w.result);
  if (ok)
    g_assert_cmpuint (uidvalidity, >, 0);
  return ok;
}

static GInputStream *
string_stream (const char *text)
{
  return g_memory_input_stream_new_from_data (g_strdup (text), (gssize) strlen (text), g_free);
}

static LbImapSet *
search (LbImapSession *s,
        const char    *criteria)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  LbImapSet *set;

  lb_imap_session_uid_search_async (s, criteria, NULL, lb_test_wait_cb, &w);
  set = lb_imap_session_uid_search_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_nonnull (set);
  return set;
}

typedef struct
{
  guint fetches;
  guint vanished;
  GHashTable *subjects; /* uid → subject */
  GHashTable *flags;    /* uid → flags joined by spaces */
  GHashTable *dates;    /* uid → INTERNALDATE */
} Fetched;

static void
fetched_init (Fetched *f)
{
  memset (f, 0, sizeof *f);
  f->subjects = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  f->flags = g_hash_table_new_full (NULL, NULL, NULL, g_free);
  f->dates = g_hash_table_new_full (NULL, NULL, NULL, g_free);
}

static void
fetched_clear (Fetched *f)
{
  g_hash_table_unref (f->subjects);
  g_hash_table_unref (f->flags);
  g_hash_table_unref (f->dates);
}

static void
fetched_cb (LbImapResponse *r,
            gpointer        user_data)
{
  Fetched *f = user_data;
  gpointer key;

  if (r->data == LB_IMAP_DATA_VANISHED)
    f->vanished += (guint) lb_imap_set_count (r->vanished);
  if (r->data != LB_IMAP_DATA_FETCH)
    return;
  f->fetches++;
  key = GUINT_TO_POINTER (r->fetch->uid);
  if (r->fetch->envelope != NULL)
    g_hash_table_insert (f->subjects, key, g_strdup (r->fetch->envelope->subject));
  if (r->fetch->flags != NULL)
    {
      g_autoptr(GString) joined = g_string_new (NULL);

      for (guint i = 0; i < r->fetch->flags->len; i++)
        g_string_append_printf (joined, "%s%s", i > 0 ? " " : "",
                                (char *) g_ptr_array_index (r->fetch->flags, i));
      g_hash_table_insert (f->flags, key, g_string_free (g_steal_pointer (&joined), FALSE));
    }
  if (r->fetch->internaldate != NULL)
    g_hash_table_insert (f->dates, key, g_strdup (r->fetch->internaldate));
}

static gboolean
uid_fetch (LbImapSession *s,
           const char    *uids,
           const char    *items,
           guint64        changed_since,
           Fetched       *f,
           GError       **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_session_uid_fetch_async (s, uids, items, changed_since, fetched_cb, f, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_uid_fetch_finish (s, lb_test_wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
uid_store (LbImapSession     *s,
           const char        *uids,
           LbImapStoreAction  action,
           const char *const *flags,
           guint64            unchanged_since,
           Fetched           *f,
           LbImapSet        **modified,
           GError           **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_session_uid_store_async (s, uids, action, flags, unchanged_since,
                                   f != NULL ? fetched_cb : NULL, f, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_uid_store_finish (s, lb_test_wait_result (&w), modified, error);
  g_object_unref (w.result);
  return ok;
}

/* A file of about @size bytes of CRLF lines, made by a shell pipeline so that this
 * process never holds it; returns its path, and its exact size and SHA-256. */
static char *
make_big_file (gsize   approx,
               gsize  *size,
               char  **sha256)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *script = NULL;
  g_auto(GStrv) words = NULL;
  char *path = g_build_filename (servers->dir, "upload.eml", NULL);
  int status;

  script = g_strdup_printf (
    "set -euo pipefail; "
    "{ printf 'From: up@example.org\\r\\nSubject: Uploaded\\r\\n\\r\\n'; "
    "  { head -c %zu /dev/urandom | base64 -w 76; } | sed 's/$/\\r/'; } > '%s'; "
    "echo \"$(stat -c %%s '%s') $(sha256sum < '%s' | cut -d' ' -f1)\"",
    approx * 3 / 4 * 76 / 78, path, path, path);
  g_spawn_sync (NULL, (char *[]) { (char *) "bash", (char *) "-c", script, NULL }, NULL,
                G_SPAWN_SEARCH_PATH, NULL, NULL, &out, NULL, &status, &error);
  g_assert_no_error (error);
  g_assert_true (g_spawn_check_wait_status (status, NULL));
  words = g_strsplit (g_strstrip (out), " ", 2);
  *size = g_ascii_strtoull (words[0], NULL, 10);
  *sha256 = g_strdup (words[1]);
  return path;
}

static void
count_fetch_cb (LbImapResponse *r,
                gpointer        user_data)
{
  if (r->data == LB_IMAP_DATA_FETCH)
    (*(guint *) user_data)++;
}

static void
test_append_streamed (void)
{
  g_autoptr(LbImapSession) s = logged_in ("alice@example.test");
  g_autoptr(GFile) file = NULL;
  g_autoptr(GFileInputStream) in = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autofree char *box = make_box (s, "Upload");
  g_autofree char *sha256 = NULL;
  g_autofree char *path = NULL;
  g_autofree char *uid_text = NULL;
  BodySink sink = { g_checksum_new (G_CHECKSUM_SHA256) };
  const char *flags[] = { "\\Seen", NULL };
  glong before, after;
  gsize size = 0;
  guint32 uid = 0;
  guint fetched = 0;
  LbTestWait w = { 0 };

  path = make_big_file (30000000, &size, &sha256);
  g_assert_cmpuint (size, >, 28000000);
  file = g_file_new_for_path (path);
  in = g_file_read (file, NULL, &error);
  g_assert_no_error (error);

  before = lb_test_peak_rss_reset ();
  append_stream (s, box, flags, NULL, G_INPUT_STREAM (in), (goffset) size, &uid, &error);
  after = lb_test_peak_rss_kb ();
  g_assert_no_error (error);
  g_assert_cmpuint (uid, >, 0);
  g_test_message ("%zu bytes appended; peak RSS (VmHWM, reset first) %ld kB before, %ld kB "
                  "after (+%ld kB)", size, before, after, after - before);
#ifndef __SANITIZE_ADDRESS__
  /* Bounded memory: 30 MB went out, the process grew by far less. */
  g_assert_cmpint (after - before, <, 8 * 1024);
#else
  (void) before;
#endif

  /* What the server stored is byte for byte what was read. */
  info = select_box (s, box, TRUE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (info->exists, ==, 1);
  lb_imap_session_set_literal_sink (s, &body_sink_funcs, &sink);
  uid_text = g_strdup_printf ("%u", uid);
  lb_imap_session_uid_fetch_async (s, uid_text, "BODY.PEEK[]", 0, count_fetch_cb, &fetched, NULL,
                                   lb_test_wait_cb, &w);
  lb_imap_session_uid_fetch_finish (s, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (fetched, ==, 1);
  g_assert_cmpuint (sink.ends, ==, 1);
  g_assert_cmpuint (sink.bytes, ==, size);
  g_assert_cmpstr (g_checksum_get_string (sink.sum), ==, sha256);
  lb_imap_session_set_literal_sink (s, NULL, NULL);

  logout (s);
  g_checksum_free (sink.sum);
  g_unlink (path);
}

/* A stream that does not hold what was announced: the call fails with SOURCE, the
 * connection is closed (never left owing the server bytes), a command queued behind
 * fails rather than hangs, and nothing was appended. */
static void
check_size_mismatch (gboolean    sync_literal,
                     gsize       real,
                     gsize       announced,
                     const char *expected)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autofree char *box = make_box (s, "Mismatch");
  g_autofree char *text = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GError) noop_error = NULL;
  g_autoptr(LbImapResult) noop = NULL;
  LbTestWait w = { 0 }, wn = { 0 };
  guint32 uid = 0;

  if (sync_literal)
    set_quirks_disabling (s, "LITERAL+", "LITERAL-");
  text = g_strnfill (real, 'x');
  memcpy (text, "Subject: short\r\n\r\n", 18);
  stream = string_stream (text);

  lb_imap_session_append_async (s, box, NULL, NULL, stream, (goffset) announced, NULL, lb_test_wait_cb, &w);
  lb_imap_session_command_async (s, "NOOP", NULL, NULL, lb_test_wait_cb, &wn);
  g_assert_false (lb_imap_session_append_finish (s, lb_test_wait_result (&w), NULL, &uid, &error));
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_SOURCE);
  g_assert_nonnull (strstr (error->message, expected));
  g_test_message ("%s", error->message);
  noop = lb_imap_session_command_finish (s, lb_test_wait_result (&wn), &noop_error);
  g_assert_null (noop);
  g_assert_error (noop_error, LB_IMAP_ERROR, LB_IMAP_ERROR_PROTOCOL);
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_DISCONNECTED);
  g_assert_cmpuint (count_messages ("carol@example.test", box), ==, 0);
  g_object_unref (w.result);
  g_object_unref (wn.result);
}

static void
test_append_size_mismatch (void)
{
  check_size_mismatch (FALSE, 1000, 200000, "ended after 1000 of the 200000 bytes");
  check_size_mismatch (FALSE, 300, 200, "longer than the 200 bytes");
  check_size_mismatch (TRUE, 1000, 5000, "ended after 1000 of the 5000 bytes");
}

/* Without LITERAL+/LITERAL- the literal waits for the "+"; flags and date arrive. */
static void
test_append_synchronizing (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autofree char *box = make_box (s, "SyncAppend");
  g_autofree char *text = NULL;
  g_autofree char *uid_text = NULL;
  g_autoptr(GInputStream) stream = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTimeZone) zone = g_time_zone_new_offset (3600);
  g_autoptr(GDateTime) date = g_date_time_new (zone, 2021, 2, 15, 10, 20, 30);
  g_autoptr(LbImapMailboxInfo) info = NULL;
  const char *flags[] = { "\\Seen", "$Label1", NULL };
  Fetched f;
  guint32 uid = 0;

  set_quirks_disabling (s, "LITERAL+", "LITERAL-");
  text = g_strnfill (100000, 'y');
  memcpy (text, "Subject: synchronizing\r\n\r\n", 26);
  stream = string_stream (text);
  append_stream (s, box, flags, date, stream, 100000, &uid, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (uid, >, 0);

  info = select_box (s, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  fetched_init (&f);
  uid_text = g_strdup_printf ("%u", uid);
  uid_fetch (s, uid_text, "(UID FLAGS INTERNALDATE ENVELOPE)", 0, &f, &error);
  g_assert_no_error (error);
  g_assert_cmpstr (g_hash_table_lookup (f.subjects, GUINT_TO_POINTER (uid)), ==, "synchronizing");
  g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (uid)), "\\Seen"));
  g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (uid)), "$Label1"));
  {
    /* The same instant; Dovecot tells it in its own zone (UTC here). */
    const char *told = g_hash_table_lookup (f.dates, GUINT_TO_POINTER (uid));

    g_assert_true (g_strcmp0 (told, "15-Feb-2021 10:20:30 +0100") == 0 ||
                   g_strcmp0 (told, "15-Feb-2021 09:20:30 +0000") == 0);
  }
  fetched_clear (&f);
  lb_imap_result_free (run_ok (s, "NOOP"));
  logout (s);
}

static gboolean
append_many (LbImapSession             *s,
             const char                *box,
             const LbImapAppendMessage *messages,
             guint                      n,
             LbImapSet                **uids,
             GError                   **error)
{
  LbTestWait w = { 0 };
  guint32 uidvalidity = 0;
  gboolean ok;

  lb_imap_session_append_many_async (s, box, messages, n, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_session_append_many_finish (s, lb_test_wait_result (&w), &uidvalidity, uids, error);
  g_object_unref (w.result);
  return ok;
}

/* Three messages in; their UIDs in order; their subjects and flags as sent. Then a batch
 * whose second message the server refuses (Dovecot refuses an empty message): returns how
 * many of that batch were appended. */
static guint
check_append_many (LbImapSession *s,
                   const char    *box)
{
  const char *texts[] = { "Subject: many 1\r\n\r\none\r\n", "Subject: many 2\r\n\r\ntwo\r\n",
                          "Subject: many 3\r\n\r\nthree\r\n" };
  const char *seen[] = { "\\Seen", NULL };
  const char *flagged[] = { "\\Flagged", "$Work", NULL };
  LbImapAppendMessage m[3] = { 0 };
  g_autoptr(LbImapSet) uids = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autofree char *set_text = NULL;
  guint before;
  Fetched f;
  guint k = 0;

  for (guint i = 0; i < 3; i++)
    {
      m[i].stream = string_stream (texts[i]);
      m[i].size = (goffset) strlen (texts[i]);
    }
  m[0].flags = seen;
  m[2].flags = flagged;
  append_many (s, box, m, 3, &uids, &error);
  g_assert_no_error (error);
  g_assert_nonnull (uids);
  g_assert_cmpuint (lb_imap_set_count (uids), ==, 3);
  for (guint i = 0; i < 3; i++)
    g_object_unref (m[i].stream);

  info = select_box (s, box, TRUE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  set_text = lb_imap_set_to_string (uids);
  fetched_init (&f);
  uid_fetch (s, set_text, "(UID FLAGS ENVELOPE)", 0, &f, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f.fetches, ==, 3);
  for (guint i = 0; i < uids->ranges->len; i++)
    for (guint32 u = g_array_index (uids->ranges, LbImapRange, i).first;
         u <= g_array_index (uids->ranges, LbImapRange, i).last; u++, k++)
      {
        g_autofree char *subject = g_strdup_printf ("many %u", k + 1);

        g_assert_cmpstr (g_hash_table_lookup (f.subjects, GUINT_TO_POINTER (u)), ==, subject);
        if (k == 0)
          g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (u)), "\\Seen"));
        if (k == 2)
          g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (u)), "$Work"));
      }
  fetched_clear (&f);

  /* A batch the server refuses halfway. */
  before = count_messages ("bob@example.test", box);
  m[0].stream = string_stream (texts[0]);
  m[0].size = (goffset) strlen (texts[0]);
  m[0].flags = NULL;
  m[1].stream = string_stream ("");
  m[1].size = 0;
  m[1].flags = NULL;
  g_clear_error (&error);
  g_assert_false (append_many (s, box, m, 2, NULL, &error));
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NO);
  g_test_message ("refused: %s", error->message);
  g_object_unref (m[0].stream);
  g_object_unref (m[1].stream);
  /* The session goes on. */
  lb_imap_result_free (run_ok (s, "NOOP"));
  return count_messages ("bob@example.test", box) - before;
}

static void
test_multiappend (void)
{
  g_autoptr(LbImapSession) s = logged_in ("bob@example.test");
  g_autofree char *box = make_box (s, "Multi");

  g_assert_true (lb_imap_session_has_capability (s, "MULTIAPPEND"));
  /* One command (RFC 3502 §3): all or nothing, so the refused batch left nothing. */
  g_assert_cmpuint (check_append_many (s, box), ==, 0);
  logout (s);
}

static void
test_multiappend_fallback (void)
{
  g_autoptr(LbImapSession) s = logged_in ("bob@example.test");
  g_autofree char *box = make_box (s, "Single");

  set_quirks_disabling (s, "MULTIAPPEND", NULL);
  g_assert_false (lb_imap_session_has_capability (s, "MULTIAPPEND"));
  /* Single pipelined APPENDs: the message before the refused one was appended. */
  g_assert_cmpuint (check_append_many (s, box), ==, 1);
  logout (s);
}

static guint32
replace_draft (LbImapSession *s,
               const char    *box,
               guint32        old_uid,
               const char    *text,
               gboolean      *old_removed)
{
  g_autoptr(GInputStream) stream = string_stream (text);
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  guint32 uid;

  lb_imap_session_replace_draft_async (s, box, old_uid, NULL, stream, (goffset) strlen (text),
                                       NULL, lb_test_wait_cb, &w);
  uid = lb_imap_session_replace_draft_finish (s, lb_test_wait_result (&w), old_removed, &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (uid, >, 0);
  return uid;
}

static gboolean
set_has (LbImapSet *set,
         guint32    uid)
{
  return lb_imap_set_contains (set, uid);
}

static void
test_replace_draft (void)
{
  g_autoptr(LbImapSession) s = logged_in ("bob@example.test");
  g_autofree char *box = make_box (s, "Entwürfe");
  g_autoptr(LbImapSet) all = NULL;
  g_autoptr(LbImapSet) deleted = NULL;
  g_autoptr(LbImapSet) drafts = NULL;
  g_autoptr(GError) error = NULL;
  guint32 first, second, third;
  gboolean removed = FALSE;

  /* Another client's message, marked \Deleted but not expunged: it must survive. */
  seed ("bob@example.test", box, "Subject: not ours\r\n\r\nx\r\n");
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u", "bob@example.test",
                           "\\Deleted", "mailbox", box, "all", NULL);
  g_assert_no_error (error);

  first = replace_draft (s, box, 0, "Subject: draft 1\r\n\r\nv1\r\n", &removed);
  g_assert_true (removed);
  second = replace_draft (s, box, first, "Subject: draft 2\r\n\r\nv2\r\n", &removed);
  g_assert_true (removed);
  g_assert_cmpuint (second, !=, first);
  /* The session selected the drafts mailbox itself to mark the old one. */
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_SELECTED);

  all = search (s, "ALL");
  deleted = search (s, "DELETED");
  drafts = search (s, "DRAFT");
  g_assert_false (set_has (all, first));
  g_assert_true (set_has (all, second));
  g_assert_true (set_has (drafts, second));
  g_assert_cmpuint (lb_imap_set_count (deleted), ==, 1);
  g_assert_cmpuint (lb_imap_set_count (all), ==, 2);
  g_assert_cmpuint (count_messages ("bob@example.test", box), ==, 2);

  /* Without UIDPLUS the old draft stays, marked \Deleted, and the caller is told. */
  set_quirks_disabling (s, "UIDPLUS", NULL);
  third = replace_draft (s, box, second, "Subject: draft 3\r\n\r\nv3\r\n", &removed);
  g_assert_false (removed);
  g_clear_pointer (&all, lb_imap_set_free);
  g_clear_pointer (&deleted, lb_imap_set_free);
  all = search (s, "ALL");
  deleted = search (s, "DELETED");
  g_assert_true (set_has (all, second));
  g_assert_true (set_has (deleted, second));
  g_assert_true (set_has (all, third));
  g_assert_false (set_has (deleted, third));
  g_assert_cmpuint (lb_imap_set_count (all), ==, 3);
  logout (s);
}

static void
test_select (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autofree char *box = make_box (s, "Selected");
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autoptr(LbImapMailboxInfo) examined = NULL;
  g_autoptr(LbImapMailboxInfo) missing = NULL;
  g_autoptr(GError) error = NULL;

  for (guint i = 0; i < 3; i++)
    seed ("carol@example.test", box, "Subject: select\r\n\r\nx\r\n");

  info = select_box (s, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_SELECTED);
  g_assert_cmpuint (info->exists, ==, 3);
  g_assert_cmpuint (info->uidvalidity, >, 0);
  g_assert_cmpuint (info->uidnext, ==, 4);
  g_assert_false (info->read_only);
  g_assert_false (info->nomodseq);
  /* CONDSTORE asked for by the SELECT: the modseq is known. */
  g_assert_cmpuint (info->highestmodseq, >, 0);
  g_assert_true (g_strv_contains ((const char *const *) info->flags, "\\Seen"));
  g_assert_true (g_strv_contains ((const char *const *) info->permanent_flags, "\\*"));
  g_assert_false (info->qresync);
  g_assert_null (info->vanished);

  examined = select_box (s, box, TRUE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (examined->read_only);
  g_assert_cmpuint (examined->exists, ==, 3);

  /* Dovecot's NO for SELECT carries no code; APPEND's carries [TRYCREATE]. */
  missing = select_box (s, "No such box", FALSE, NULL, NULL, NULL, &error);
  g_assert_null (missing);
  g_assert_true (g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NO) ||
                 g_error_matches (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT));
  g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_AUTHENTICATED);
  g_clear_error (&error);
  {
    const char *text = "Subject: nowhere\r\n\r\nx\r\n";
    g_autoptr(GInputStream) stream = string_stream (text);

    g_autofree char *big = g_strnfill (2 * 1024 * 1024, 'z');
    g_autoptr(GInputStream) big_stream = string_stream (big);

    g_assert_false (append_stream (s, "No such box", NULL, NULL, stream, (goffset) strlen (text),
                                   NULL, &error));
    g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT);
    /* Refused while 2 MB were still going out (LITERAL+): they are sent to the end
     * anyway, and the session goes on in step. */
    g_clear_error (&error);
    g_assert_false (append_stream (s, "No such box", NULL, NULL, big_stream,
                                   (goffset) strlen (big), NULL, &error));
    g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT);
    lb_imap_result_free (run_ok (s, "NOOP"));
    g_assert_cmpint (lb_imap_session_get_state (s), ==, LB_IMAP_STATE_AUTHENTICATED);
  }
  logout (s);
}

static void
test_uid_fetch (void)
{
  g_autoptr(LbImapSession) s = logged_in ("alice@example.test");
  g_autofree char *box = make_box (s, "Fetched");
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GString) uids = g_string_new (NULL);
  g_autoptr(LbImapSet) appended = NULL;
  LbImapAppendMessage m[300] = { 0 };
  const char *flagged[] = { "\\Flagged", NULL };
  LbImapQuirks quirks;
  Fetched f;

  /* 300 messages in one MULTIAPPEND. */
  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    {
      m[i].stream = string_stream ("Subject: fetched\r\n\r\nx\r\n");
      m[i].size = (goffset) strlen ("Subject: fetched\r\n\r\nx\r\n");
    }
  append_many (s, box, m, G_N_ELEMENTS (m), &appended, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lb_imap_set_count (appended), ==, 300);
  for (guint i = 0; i < G_N_ELEMENTS (m); i++)
    g_object_unref (m[i].stream);
  info = select_box (s, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  /* Every UID from 1 to 20000 one by one: over 100 kB, more than Dovecot reads on one
   * line (64 kB), so this works only because the set is split. */
  for (guint i = 1; i <= 20000; i++)
    g_string_append_printf (uids, "%s%u", i > 1 ? "," : "", i);
  g_assert_cmpuint (uids->len, >, 100000);
  fetched_init (&f);
  uid_fetch (s, uids->str, "(UID FLAGS)", 0, &f, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f.fetches, ==, 300);
  fetched_clear (&f);

  /* CHANGEDSINCE: only what changed after the modseq the SELECT told. */
  uid_store (s, "7", LB_IMAP_STORE_ADD, flagged, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  fetched_init (&f);
  uid_fetch (s, "1:*", "(UID FLAGS)", info->highestmodseq, &f, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f.fetches, ==, 1);
  g_assert_nonnull (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (7)));
  fetched_clear (&f);

  /* The same long set unsplit: the server refuses it (proof that the split matters). */
  lb_imap_quirks_init_defaults (&quirks);
  quirks.max_command_length = 1024 * 1024;
  lb_imap_session_set_quirks (s, &quirks);
  fetched_init (&f);
  g_assert_false (uid_fetch (s, uids->str, "(UID FLAGS)", 0, &f, &error));
  g_test_message ("one line of %zu bytes: %s", uids->len, error->message);
  fetched_clear (&f);
}

static void
test_uid_store (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autofree char *box = make_box (s, "Stored");
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autoptr(LbImapSet) modified = NULL;
  g_autoptr(LbImapSet) flagged = NULL;
  g_autoptr(GError) error = NULL;
  const char *flag[] = { "\\Flagged", NULL };
  const char *replace[] = { "\\Seen", "$Work", NULL };
  Fetched f;

  for (guint i = 0; i < 3; i++)
    seed ("carol@example.test", box, "Subject: stored\r\n\r\nx\r\n");
  info = select_box (s, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);

  /* +FLAGS, told back through the function. */
  fetched_init (&f);
  uid_store (s, "1:2", LB_IMAP_STORE_ADD, flag, 0, &f, &modified, &error);
  g_assert_no_error (error);
  g_assert_null (modified);
  g_assert_cmpuint (f.fetches, ==, 2);
  g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (2)), "\\Flagged"));
  fetched_clear (&f);
  flagged = search (s, "FLAGGED");
  g_assert_cmpuint (lb_imap_set_count (flagged), ==, 2);

  /* -FLAGS, silent. */
  uid_store (s, "1", LB_IMAP_STORE_REMOVE, flag, 0, NULL, NULL, &error);
  g_assert_no_error (error);
  g_clear_pointer (&flagged, lb_imap_set_free);
  flagged = search (s, "FLAGGED");
  g_assert_false (lb_imap_set_contains (flagged, 1));
  g_assert_true (lb_imap_set_contains (flagged, 2));

  /* FLAGS replaces. */
  fetched_init (&f);
  uid_store (s, "2", LB_IMAP_STORE_REPLACE, replace, 0, &f, NULL, &error);
  g_assert_no_error (error);
  {
    const char *now = g_hash_table_lookup (f.flags, GUINT_TO_POINTER (2));

    g_assert_nonnull (strstr (now, "\\Seen"));
    g_assert_nonnull (strstr (now, "$Work"));
    g_assert_null (strstr (now, "\\Flagged"));
  }
  fetched_clear (&f);

  /* UNCHANGEDSINCE older than every message: nothing changes, all reported MODIFIED. */
  uid_store (s, "1:3", LB_IMAP_STORE_ADD, flag, 1, NULL, &modified, &error);
  g_assert_no_error (error);
  g_assert_nonnull (modified);
  g_assert_cmpuint (lb_imap_set_count (modified), ==, 3);
  g_clear_pointer (&flagged, lb_imap_set_free);
  flagged = search (s, "FLAGGED");
  g_assert_cmpuint (lb_imap_set_count (flagged), ==, 0);
  g_clear_pointer (&modified, lb_imap_set_free);

  /* A current UNCHANGEDSINCE stores. */
  uid_store (s, "3", LB_IMAP_STORE_ADD, flag, G_MAXINT64, NULL, &modified, &error);
  g_assert_no_error (error);
  g_assert_null (modified);
  g_clear_pointer (&flagged, lb_imap_set_free);
  flagged = search (s, "FLAGGED");
  g_assert_true (lb_imap_set_contains (flagged, 3));
  logout (s);
}

static void
test_uid_search (void)
{
  g_autoptr(LbImapSession) s = logged_in ("carol@example.test");
  g_autofree char *box = make_box (s, "Searched");
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autoptr(GError) error = NULL;
  const char *seen[] = { "\\Seen", NULL };
  g_autofree char *with_esearch = NULL;
  g_autofree char *without = NULL;
  g_autofree char *unseen_esearch = NULL;
  g_autofree char *unseen_plain = NULL;

  for (guint i = 0; i < 6; i++)
    seed ("carol@example.test", box, "Subject: searched\r\n\r\nx\r\n");
  info = select_box (s, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  uid_store (s, "2,4:5", LB_IMAP_STORE_ADD, seen, 0, NULL, NULL, &error);
  g_assert_no_error (error);

  g_assert_true (lb_imap_session_has_capability (s, "ESEARCH"));
  {
    g_autoptr(LbImapSet) all = search (s, "ALL");
    g_autoptr(LbImapSet) unseen = search (s, "UNSEEN");
    g_autoptr(LbImapSet) none = search (s, "SUBJECT nothing-matches-this");

    with_esearch = lb_imap_set_to_string (all);
    unseen_esearch = lb_imap_set_to_string (unseen);
    g_assert_cmpuint (lb_imap_set_count (none), ==, 0);
  }
  set_quirks_disabling (s, "ESEARCH", NULL);
  {
    g_autoptr(LbImapSet) all = search (s, "ALL");
    g_autoptr(LbImapSet) unseen = search (s, "UNSEEN");
    g_autoptr(LbImapSet) none = search (s, "SUBJECT nothing-matches-this");

    without = lb_imap_set_to_string (all);
    unseen_plain = lb_imap_set_to_string (unseen);
    g_assert_cmpuint (lb_imap_set_count (none), ==, 0);
  }
  g_assert_cmpstr (with_esearch, ==, "1:6");
  g_assert_cmpstr (without, ==, "1:6");
  g_assert_cmpstr (unseen_esearch, ==, "1,3,6");
  g_assert_cmpstr (unseen_plain, ==, "1,3,6");
  logout (s);
}

static void
test_server_identified (void)
{
  g_autoptr(LbImapSession) s = logged_in ("alice@example.test");
  g_autoptr(LbImapSession) fixed = make_session (servers->host, servers->imaps_port,
                                                 LB_NET_SECURITY_TLS, TRUE);
  g_autoptr(GError) error = NULL;
  LbImapQuirks quirks;

  /* ID after login (RFC 2971): Dovecot says who it is; no rules for it, defaults stay. */
  g_assert_cmpstr (lb_imap_session_get_server_id (s, "name"), ==, "Dovecot");
  g_assert_null (lb_imap_session_get_server_kind (s));
  g_assert_cmpuint (lb_imap_session_get_quirks (s)->max_command_length, ==, 8192);
  logout (s);

  /* Fixed quirks: the server is not asked. */
  lb_imap_quirks_init_defaults (&quirks);
  quirks.fixed = TRUE;
  quirks.idle_seconds = 60;
  lb_imap_session_set_quirks (fixed, &quirks);
  session_connect (fixed, &error);
  g_assert_no_error (error);
  session_login (fixed, "alice@example.test", "alice-password", &error);
  g_assert_no_error (error);
  g_assert_null (lb_imap_session_get_server_id (fixed, "name"));
  g_assert_cmpuint (lb_imap_session_get_quirks (fixed)->idle_seconds, ==, 60);
  logout (fixed);
}

static gboolean
has_flag (LbImapResponse *r,
          const char     *flag)
{
  for (guint j = 0; r->fetch->flags != NULL && j < r->fetch->flags->len; j++)
    if (g_str_equal (g_ptr_array_index (r->fetch->flags, j), flag))
      return TRUE;
  return FALSE;
}

static void
test_qresync (void)
{
  g_autoptr(LbImapSession) first = logged_in ("carol@example.test");
  g_autoptr(LbImapSession) second = NULL;
  g_autoptr(LbImapSession) third = NULL;
  g_autoptr(LbImapMailboxInfo) info = NULL;
  g_autoptr(LbImapMailboxInfo) resync = NULL;
  g_autoptr(LbImapMailboxInfo) streamed = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *box = g_strdup_printf ("Resync%u", g_random_int ());
  g_autofree char *cmd = NULL;
  g_autofree char *uid2 = NULL, *uid3 = NULL;
  LbImapQresyncParams params = { 0 };
  gboolean saw_flag = FALSE;
  Fetched f;

  cmd = g_strdup_printf ("CREATE %s", box);
  lb_imap_result_free (run_ok (first, cmd));
  for (guint i = 1; i <= 3; i++)
    {
      g_autofree char *m = g_strdup_printf ("Subject: resync %u\r\n\r\nx\r\n", i);

      seed ("carol@example.test", box, m);
    }
  info = select_box (first, box, FALSE, NULL, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (info->highestmodseq, >, 0);
  fetched_init (&f);
  uid_fetch (first, "1:*", "(UID)", 0, &f, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (f.fetches, ==, 3);
  fetched_clear (&f);
  uid2 = g_strdup ("2");
  uid3 = g_strdup ("3");
  logout (first);

  /* Another client flags one message and expunges another. */
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u", "carol@example.test",
                           "\\Flagged", "mailbox", box, "uid", uid2, NULL);
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", "carol@example.test",
                           "mailbox", box, "uid", uid3, NULL);
  g_assert_no_error (error);

  /* QRESYNC (RFC 7162 §3.2.5): one SELECT tells what changed since the known modseq;
   * the session ENABLEs QRESYNC itself. */
  params.uidvalidity = info->uidvalidity;
  params.modseq = info->highestmodseq;
  params.known_uids = "1:3";
  second = logged_in ("carol@example.test");
  resync = select_box (second, box, FALSE, &params, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (lb_imap_session_is_enabled (second, "QRESYNC"));
  g_assert_true (resync->qresync);
  g_assert_nonnull (resync->vanished);
  g_assert_true (lb_imap_set_contains (resync->vanished, 3));
  g_assert_cmpuint (lb_imap_set_count (resync->vanished), ==, 1);
  g_assert_cmpuint (resync->exists, ==, 2);
  g_assert_cmpuint (resync->highestmodseq, >, info->highestmodseq);
  for (guint i = 0; i < resync->changed->len; i++)
    {
      LbImapResponse *u = g_ptr_array_index (resync->changed, i);

      if (u->fetch->uid == 2)
        saw_flag |= has_flag (u, "\\Flagged");
    }
  g_assert_true (saw_flag);
  logout (second);

  /* The same with the changes handed over as they come, and a UIDVALIDITY the server no
   * longer has: no resync, the caller must start over. */
  third = logged_in ("carol@example.test");
  fetched_init (&f);
  streamed = select_box (third, box, TRUE, &params, fetched_cb, &f, &error);
  g_assert_no_error (error);
  g_assert_true (streamed->qresync);
  g_assert_cmpuint (streamed->changed->len, ==, 0);
  g_assert_cmpuint (f.fetches, >=, 1);
  g_assert_nonnull (strstr (g_hash_table_lookup (f.flags, GUINT_TO_POINTER (2)), "\\Flagged"));
  fetched_clear (&f);
  g_clear_pointer (&streamed, lb_imap_mailbox_info_free);
  lb_imap_result_free (run_ok (third, "UNSELECT"));
  g_assert_cmpint (lb_imap_session_get_state (third), ==, LB_IMAP_STATE_AUTHENTICATED);
  params.uidvalidity = info->uidvalidity + 1;
  streamed = select_box (third, box, TRUE, &params, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_false (streamed->qresync);
  logout (third);
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

  g_test_add_func ("/imap/connect/implicit-tls", test_implicit_tls);
  g_test_add_func ("/imap/connect/starttls", test_starttls);
  g_test_add_func ("/imap/connect/no-starttls-refused", test_no_starttls_refused);
  g_test_add_func ("/imap/connect/scram-without-tls-on-loopback", test_plain_login_refused_without_tls);
  g_test_add_func ("/imap/connect/untrusted-certificate", test_untrusted_certificate);
  g_test_add_func ("/imap/connect/unreachable", test_wrong_host);
  g_test_add_func ("/imap/login/wrong-password", test_wrong_password);
  g_test_add_func ("/imap/commands", test_commands);
  g_test_add_func ("/imap/pipelining", test_pipelining);
  g_test_add_func ("/imap/compress", test_compress);
  g_test_add_func ("/imap/move", test_move);
  g_test_add_func ("/imap/untagged-func", test_untagged_func);
  g_test_add_func ("/imap/synchronizing-literal", test_synchronizing_literal);
  g_test_add_func ("/imap/service/pool", test_service_pool);
  g_test_add_func ("/imap/service/needs-user", test_service_needs_user);
  g_test_add_func ("/imap/service/watch", test_service_watch);
  g_test_add_func ("/imap/qresync", test_qresync);
  g_test_add_func ("/imap/idle", test_idle);
  g_test_add_func ("/imap/append/streamed-30mb", test_append_streamed);
  g_test_add_func ("/imap/append/size-mismatch", test_append_size_mismatch);
  g_test_add_func ("/imap/append/synchronizing", test_append_synchronizing);
  g_test_add_func ("/imap/append/multiappend", test_multiappend);
  g_test_add_func ("/imap/append/multiappend-fallback", test_multiappend_fallback);
  g_test_add_func ("/imap/drafts/replace", test_replace_draft);
  g_test_add_func ("/imap/typed/select", test_select);
  g_test_add_func ("/imap/typed/uid-fetch", test_uid_fetch);
  g_test_add_func ("/imap/typed/uid-store", test_uid_store);
  g_test_add_func ("/imap/typed/uid-search", test_uid_search);
  g_test_add_func ("/imap/quirks/identified", test_server_identified);
  g_test_add_func ("/imap/fetch/streamed-25mb", test_streamed_body);
  g_test_add_func ("/imap/fetch/server-drops-connection", test_server_drops_mid_fetch);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  g_free (big_uid);
  g_free (big_sha256);
  return status;
}
