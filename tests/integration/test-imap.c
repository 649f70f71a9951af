/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <gio/gio.h>
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

typedef struct
{
  GAsyncResult *result;
} Wait;

static void
wait_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  ((Wait *) user_data)->result = g_object_ref (result);
}

static gboolean
wait_done (gpointer user_data)
{
  return ((Wait *) user_data)->result != NULL;
}

/* Runs the main loop until the operation completes (or 60 s pass: a failure). */
static GAsyncResult *
wait_result (Wait *w)
{
  g_assert_true (lb_test_wait_until (wait_done, w, 60000));
  return w->result;
}

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
  Wait w = { 0 };
  gboolean ok;

  lb_imap_session_connect_async (session, NULL, wait_cb, &w);
  ok = lb_imap_session_connect_finish (session, wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
session_login (LbImapSession *session,
               const char    *user,
               const char    *password,
               GError       **error)
{
  Wait w = { 0 };
  gboolean ok;

  lb_imap_session_login_async (session, user, password, FALSE, NULL, wait_cb, &w);
  ok = lb_imap_session_login_finish (session, wait_result (&w), error);
  g_object_unref (w.result);
  return ok;
}

static LbImapResult *
run (LbImapSession *session,
     const char    *command,
     GBytes        *literal,
     GError       **error)
{
  Wait w = { 0 };
  LbImapResult *result;

  lb_imap_session_command_async (session, command, literal, NULL, wait_cb, &w);
  result = lb_imap_session_command_finish (session, wait_result (&w), error);
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
  Wait w = { 0 };

  lb_imap_session_logout_async (session, NULL, wait_cb, &w);
  lb_imap_session_logout_finish (session, wait_result (&w), &error);
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
  Wait w = { 0 };

  lb_imap_session_move_async (s, uids, box, NULL, wait_cb, &w);
  lb_imap_session_move_finish (s, wait_result (&w), &uidvalidity, &dest, &error);
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
    Wait w[300] = { 0 };
    g_autoptr(GString) uids = g_string_new (NULL);
    g_autoptr(GBytes) message = STATIC_BYTES ("Subject: many\r\n\r\nx\r\n");
    g_autofree char *append = g_strdup_printf ("APPEND %s", src);

    for (guint i = 0; i < G_N_ELEMENTS (w); i++)
      lb_imap_session_command_async (s, append, message, NULL, wait_cb, &w[i]);
    for (guint i = 0; i < G_N_ELEMENTS (w); i++)
      {
        g_autoptr(LbImapResult) res = lb_imap_session_command_finish (s, wait_result (&w[i]),
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
  Wait w1 = { 0 }, w2 = { 0 };

  lb_imap_quirks_init_defaults (&quirks);
  quirks.disabled_capabilities = no_literal_plus;
  lb_imap_session_set_quirks (s, &quirks);

  /* Two at once: each literal must go out only after its own continuation. */
  lb_imap_session_command_async (s, "APPEND INBOX", message, NULL, wait_cb, &w1);
  lb_imap_session_command_async (s, "APPEND INBOX (\\Seen)", message, NULL, wait_cb, &w2);
  first = lb_imap_session_command_finish (s, wait_result (&w1), &error);
  g_assert_no_error (error);
  second = lb_imap_session_command_finish (s, wait_result (&w2), &error);
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
  Wait w = { 0 };

  for (guint i = 0; i < 3; i++)
    seed ("alice@example.test", "INBOX", "Subject: counted\r\n\r\nx\r\n");
  lb_imap_result_free (run_ok (s, "EXAMINE INBOX"));
  lb_imap_session_command_full_async (s, "UID FETCH 1:* (UID FLAGS)", NULL, count_fetch, &fetched,
                                      NULL, wait_cb, &w);
  res = lb_imap_session_command_finish (s, wait_result (&w), &error);
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
  Wait w[20] = { 0 };

  /* Twenty commands on the wire before the first answer; each gets its own result. */
  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    {
      g_autofree char *cmd = g_strdup_printf (i % 2 ? "NOOP" : "STATUS INBOX (MESSAGES)");

      lb_imap_session_command_async (s, cmd, NULL, NULL, wait_cb, &w[i]);
    }
  for (guint i = 0; i < G_N_ELEMENTS (w); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autoptr(LbImapResult) result = lb_imap_session_command_finish (s, wait_result (&w[i]),
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

static void
test_qresync (void)
{
  g_autoptr(LbImapSession) first = logged_in ("carol@example.test");
  g_autoptr(LbImapSession) second = NULL;
  g_autoptr(LbImapResult) select = NULL;
  g_autoptr(LbImapResult) fetch = NULL;
  g_autoptr(LbImapResult) resync = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *box = g_strdup_printf ("Resync%u", g_random_int ());
  g_autofree char *cmd = NULL;
  g_autofree char *uid2 = NULL, *uid3 = NULL;
  LbImapResponse *r;
  guint64 uidvalidity, modseq;
  gboolean saw_flag = FALSE;

  cmd = g_strdup_printf ("CREATE %s", box);
  lb_imap_result_free (run_ok (first, cmd));
  for (guint i = 1; i <= 3; i++)
    {
      g_autofree char *m = g_strdup_printf ("Subject: resync %u\r\n\r\nx\r\n", i);

      seed ("carol@example.test", box, m);
    }
  lb_imap_result_free (run_ok (first, "ENABLE QRESYNC"));
  g_free (cmd);
  cmd = g_strdup_printf ("SELECT %s", box);
  select = run_ok (first, cmd);
  uidvalidity = find_code (select, LB_IMAP_CODE_UIDVALIDITY)->code.number;
  modseq = find_code (select, LB_IMAP_CODE_HIGHESTMODSEQ)->code.number;
  fetch = run_ok (first, "UID FETCH 1:* (UID)");
  g_assert_cmpuint (fetch->untagged->len, ==, 3);
  uid2 = g_strdup_printf ("%u", ((LbImapResponse *) g_ptr_array_index (fetch->untagged, 1))->fetch->uid);
  uid3 = g_strdup_printf ("%u", ((LbImapResponse *) g_ptr_array_index (fetch->untagged, 2))->fetch->uid);
  logout (first);

  /* Another client flags one message and expunges another. */
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u", "carol@example.test",
                           "\\Flagged", "mailbox", box, "uid", uid2, NULL);
  g_assert_no_error (error);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", "carol@example.test",
                           "mailbox", box, "uid", uid3, NULL);
  g_assert_no_error (error);

  /* QRESYNC (RFC 7162 §3.2.5): one SELECT tells what changed since the known modseq. */
  second = logged_in ("carol@example.test");
  lb_imap_result_free (run_ok (second, "ENABLE QRESYNC"));
  g_free (cmd);
  cmd = g_strdup_printf ("SELECT %s (QRESYNC (%" G_GUINT64_FORMAT " %" G_GUINT64_FORMAT "))", box,
                         uidvalidity, modseq);
  resync = run_ok (second, cmd);
  r = find_untagged (resync, LB_IMAP_DATA_VANISHED);
  g_assert_nonnull (r);
  g_assert_true (r->vanished_earlier);
  g_assert_true (lb_imap_set_contains (r->vanished, (guint32) g_ascii_strtoull (uid3, NULL, 10)));
  for (guint i = 0; i < resync->untagged->len; i++)
    {
      LbImapResponse *u = g_ptr_array_index (resync->untagged, i);

      if (u->data == LB_IMAP_DATA_FETCH && u->fetch->uid == g_ascii_strtoull (uid2, NULL, 10))
        for (guint j = 0; j < u->fetch->flags->len; j++)
          saw_flag |= g_str_equal (g_ptr_array_index (u->fetch->flags, j), "\\Flagged");
    }
  g_assert_true (saw_flag);
  logout (second);
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
  Wait w = { 0 };
  gulong handler;

  if (servers->smtp_port == 0)
    {
      g_test_skip ("Postfix runs only as root; this test run is not root");
      return;
    }

  lb_imap_result_free (run_ok (s, "SELECT INBOX"));
  handler = g_signal_connect (s, "untagged", G_CALLBACK (idle_untagged_cb), &state);
  lb_imap_session_idle_async (s, 600, cancellable, wait_cb, &w);

  deliver_by_smtp ("alice@example.test", "Pushed while idling");
  g_assert_true (lb_test_wait_until (idle_saw_exists, &state, 30000));

  /* Cancelling sends DONE; the call ends, cancelled, once the server agreed. */
  g_cancellable_cancel (cancellable);
  g_assert_false (lb_imap_session_idle_finish (s, wait_result (&w), &error));
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

static glong
max_rss_kb (void)
{
  struct rusage usage;

  getrusage (RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

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

  before = max_rss_kb ();
  fetch = run_ok (s, "UID FETCH 1 (UID BODY.PEEK[])");
  after = max_rss_kb ();

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
  Wait w[3] = { 0 };

  for (guint i = 0; i < 3; i++)
    lb_imap_service_acquire_async (service, NULL, wait_cb, &w[i]);
  for (guint i = 0; i < 2; i++)
    {
      sessions[i] = lb_imap_service_acquire_finish (service, wait_result (&w[i]), &error);
      g_assert_no_error (error);
      g_assert_cmpint (lb_imap_session_get_state (sessions[i]), ==, LB_IMAP_STATE_AUTHENTICATED);
    }
  g_assert_true (sessions[0] != sessions[1]);
  g_assert_cmpint (lb_imap_service_get_status (service), ==, LB_IMAP_SERVICE_ONLINE);

  /* Two are open, the limit: the third waits for one to come back. */
  drain_main_context ();
  g_assert_null (w[2].result);
  lb_imap_service_release (service, sessions[0]);
  sessions[2] = lb_imap_service_acquire_finish (service, wait_result (&w[2]), &error);
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
  Wait w = { 0 };

  lb_imap_service_acquire_async (service, NULL, wait_cb, &w);
  session = lb_imap_service_acquire_finish (service, wait_result (&w), &error);
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
  g_test_add_func ("/imap/fetch/streamed-25mb", test_streamed_body);
  g_test_add_func ("/imap/fetch/server-drops-connection", test_server_drops_mid_fetch);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  g_free (big_uid);
  g_free (big_sha256);
  return status;
}
