/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <string.h>

#include "lb-account-check.h"
#include "lb-account.h"
#include "lb-connection.h"
#include "lb-test-util.h"

/*
 * lb_account_check_server_async() — what the account assistant runs before saving an
 * account — against the real Dovecot/Postfix fixture, whose certificate comes from a CA
 * the system does not know: the untrusted certificate is handed back with its error
 * (the one the server sent, its fingerprint the one in the message); pinning exactly that
 * fingerprint in the account makes IMAPS, POP3S, SMTPS and STARTTLS work; pinning another
 * certificate's fingerprint (also the CA's own) does not; a wrong password, a closed port
 * and a missing STARTTLS are told apart for the user.
 */

static LbTestServers *servers;

typedef struct
{
  gboolean ok;
  GTlsCertificate *certificate;
  GError *error;
} CheckResult;

static void
check_result_clear (CheckResult *r)
{
  g_clear_object (&r->certificate);
  g_clear_error (&r->error);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (CheckResult, check_result_clear)

static LbAccount *
make_account (const char *fingerprint)
{
  LbAccount *account = lb_account_new ("check");

  lb_account_add_identity (account, "Alice", "alice@example.test");
  account->fingerprint = g_strdup (fingerprint);
  return account;
}

static void
run_check (const LbAccount   *account,
           LbAccountProtocol  protocol,
           guint16            port,
           LbNetSecurity      security,
           const char        *password,
           CheckResult       *r)
{
  g_autoptr(LbAccountServer) server = lb_account_server_new (protocol, servers->host, port,
                                                             security);
  LbTestWait wait = { 0 };

  lb_account_check_server_async (account, server, password, NULL, lb_test_wait_cb, &wait);
  r->ok = lb_account_check_server_finish (lb_test_wait_result (&wait), &r->certificate,
                                          &r->error);
  g_object_unref (wait.result);
}

static char *
file_fingerprint (const char *name)
{
  g_autofree char *path = g_build_filename (servers->dir, "tls", name, NULL);
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = g_tls_certificate_new_from_file (path, &error);

  g_assert_no_error (error);
  return lb_certificate_dup_fingerprint (certificate);
}

static void
test_untrusted_then_pinned (void)
{
  g_autofree char *server_fingerprint = file_fingerprint ("server.pem");
  g_autofree char *seen = NULL;
  g_autoptr(LbAccount) plain = make_account (NULL);
  g_autoptr(LbAccount) pinned = NULL;

  {
    g_auto(CheckResult) r = { 0 };

    run_check (plain, LB_ACCOUNT_PROTOCOL_IMAP, servers->imaps_port, LB_NET_SECURITY_TLS,
               "alice-password", &r);
    g_assert_false (r.ok);
    g_assert_error (r.error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
    g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_CERTIFICATE);
    /* The certificate to show the user is the one the server sent. */
    g_assert_nonnull (r.certificate);
    seen = lb_certificate_dup_fingerprint (r.certificate);
    g_assert_cmpstr (seen, ==, server_fingerprint);
    g_assert_nonnull (strstr (r.error->message, server_fingerprint));
  }

  /* Pinned: accepted over implicit TLS and STARTTLS, for IMAP, POP3 and SMTP. */
  pinned = make_account (seen);
  {
    const struct
    {
      LbAccountProtocol protocol;
      guint16 port;
      LbNetSecurity security;
    } cases[] = {
      { LB_ACCOUNT_PROTOCOL_IMAP, servers->imaps_port, LB_NET_SECURITY_TLS },
      { LB_ACCOUNT_PROTOCOL_IMAP, servers->imap_port, LB_NET_SECURITY_STARTTLS },
      { LB_ACCOUNT_PROTOCOL_POP3, servers->pop3s_port, LB_NET_SECURITY_TLS },
      { LB_ACCOUNT_PROTOCOL_SMTP, servers->submissions_port, LB_NET_SECURITY_TLS },
      { LB_ACCOUNT_PROTOCOL_SMTP, servers->submission_port, LB_NET_SECURITY_STARTTLS },
    };

    for (guint i = 0; i < G_N_ELEMENTS (cases); i++)
      {
        g_auto(CheckResult) r = { 0 };

        if (cases[i].port == 0)
          continue; /* no Postfix (not root) */
        g_test_message ("pinned, %s port %u", lb_account_protocol_to_string (cases[i].protocol),
                        cases[i].port);
        run_check (pinned, cases[i].protocol, cases[i].port, cases[i].security,
                   "alice-password", &r);
        g_assert_no_error (r.error);
        g_assert_true (r.ok);
        g_assert_null (r.certificate);
      }
  }
}

/* Only the very certificate pinned is accepted: another fingerprint, or the fingerprint
 * of the CA that signed the server's certificate, is not. */
static void
test_pin_is_exact (void)
{
  g_autofree char *ca_fingerprint = file_fingerprint ("ca.pem");
  const char *others[] = {
    "00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF",
    ca_fingerprint,
  };

  for (guint i = 0; i < G_N_ELEMENTS (others); i++)
    {
      g_autoptr(LbAccount) account = make_account (others[i]);
      g_auto(CheckResult) r = { 0 };

      run_check (account, LB_ACCOUNT_PROTOCOL_IMAP, servers->imaps_port, LB_NET_SECURITY_TLS,
                 "alice-password", &r);
      g_assert_false (r.ok);
      g_assert_error (r.error, LB_NET_ERROR, LB_NET_ERROR_CERTIFICATE);
      g_assert_nonnull (r.certificate);
    }
}

static void
test_failures_classified (void)
{
  g_autofree char *fingerprint = file_fingerprint ("server.pem");
  g_autoptr(LbAccount) account = make_account (fingerprint);
  g_autoptr(LbAccount) with_ca = make_account (NULL);

  with_ca->ca_file = g_strdup (servers->ca_file);

  /* A wrong password, over IMAP, POP3 and SMTP. */
  {
    g_auto(CheckResult) r = { 0 };

    run_check (account, LB_ACCOUNT_PROTOCOL_IMAP, servers->imaps_port, LB_NET_SECURITY_TLS,
               "not-the-password", &r);
    g_assert_false (r.ok);
    g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_PASSWORD);
    g_assert_null (r.certificate);
  }
  {
    g_auto(CheckResult) r = { 0 };

    run_check (with_ca, LB_ACCOUNT_PROTOCOL_POP3, servers->pop3s_port, LB_NET_SECURITY_TLS,
               "not-the-password", &r);
    g_assert_false (r.ok);
    g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_PASSWORD);
  }
  if (servers->submissions_port != 0)
    {
      g_auto(CheckResult) r = { 0 };

      run_check (with_ca, LB_ACCOUNT_PROTOCOL_SMTP, servers->submissions_port,
                 LB_NET_SECURITY_TLS, "not-the-password", &r);
      g_assert_false (r.ok);
      g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_PASSWORD);
    }

  /* A port where nothing listens: unreachable, naming host and port. */
  {
    g_auto(CheckResult) r = { 0 };
    guint16 port = lb_test_free_port ();
    g_autofree char *where = g_strdup_printf ("%s:%u", servers->host, port);

    run_check (account, LB_ACCOUNT_PROTOCOL_IMAP, port, LB_NET_SECURITY_TLS, "alice-password",
               &r);
    g_assert_false (r.ok);
    g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_UNREACHABLE);
    g_assert_nonnull (strstr (r.error->message, where));
  }

  /* STARTTLS asked of a server that does not offer it: never a silent downgrade. */
  {
    g_autoptr(LbAccountServer) server = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP,
                                                               servers->imap_notls_host,
                                                               servers->imap_notls_port,
                                                               LB_NET_SECURITY_STARTTLS);
    LbTestWait wait = { 0 };
    g_auto(CheckResult) r = { 0 };

    lb_account_check_server_async (account, server, "alice-password", NULL, lb_test_wait_cb,
                                   &wait);
    r.ok = lb_account_check_server_finish (lb_test_wait_result (&wait), &r.certificate, &r.error);
    g_object_unref (wait.result);
    g_assert_false (r.ok);
    g_assert_cmpint (lb_account_check_classify (r.error), ==, LB_ACCOUNT_CHECK_SECURITY);
  }

  /* Bad input is an error, not a connection attempt. */
  {
    g_autoptr(LbAccountServer) server = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP,
                                                               servers->host, 993,
                                                               LB_NET_SECURITY_TLS);
    LbTestWait wait = { 0 };
    g_auto(CheckResult) r = { 0 };

    server->port = 70000;
    lb_account_check_server_async (account, server, "alice-password", NULL, lb_test_wait_cb,
                                   &wait);
    r.ok = lb_account_check_server_finish (lb_test_wait_result (&wait), &r.certificate, &r.error);
    g_object_unref (wait.result);
    g_assert_false (r.ok);
    g_assert_error (r.error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID);
  }
  g_assert_cmpint (lb_account_check_classify (NULL), ==, LB_ACCOUNT_CHECK_OK);
}

static void
test_cancel (void)
{
  g_autoptr(LbAccount) account = make_account (NULL);
  g_autoptr(LbAccountServer) server = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP,
                                                             servers->host, servers->imaps_port,
                                                             LB_NET_SECURITY_TLS);
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsCertificate) certificate = NULL;
  LbTestWait wait = { 0 };

  account->ca_file = g_strdup (servers->ca_file);
  lb_account_check_server_async (account, server, "alice-password", cancellable,
                                 lb_test_wait_cb, &wait);
  g_cancellable_cancel (cancellable);
  g_assert_false (lb_account_check_server_finish (lb_test_wait_result (&wait), &certificate,
                                                  &error));
  g_object_unref (wait.result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null (certificate);
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

  g_test_add_func ("/account-check/untrusted-then-pinned", test_untrusted_then_pinned);
  g_test_add_func ("/account-check/pin-is-exact", test_pin_is_exact);
  g_test_add_func ("/account-check/failures-classified", test_failures_classified);
  g_test_add_func ("/account-check/cancel", test_cancel);

  status = g_test_run ();
  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  return status;
}
