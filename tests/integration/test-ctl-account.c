/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-test-util.h"

/* `letterbox-ctl account …` as a script runs it: the built binary (LB_CTL_PATH) with
 * --config-dir, against the Dovecot/Postfix fixture; `add --autoconfig` finds it through
 * an autoconfig file from python3's http.server or SRV records from dnsmasq. */

static LbTestServers *servers;
static const char *ctl_path;
static char *config_dir;

typedef struct
{
  int status;
  char *out;
  char *err;
} Result;

static void
result_clear (Result *r)
{
  g_free (r->out);
  g_free (r->err);
}

G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC (Result, result_clear)

static void
run_ctl_va (Result             *r,
            const char * const *env,
            va_list             ap)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;

  g_ptr_array_add (argv, (char *) ctl_path);
  g_ptr_array_add (argv, (char *) "--config-dir");
  g_ptr_array_add (argv, config_dir);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  for (guint i = 0; env != NULL && env[i] != NULL; i += 2)
    g_subprocess_launcher_setenv (launcher, env[i], env[i + 1], TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
}

static void
run_ctl (Result *r,
         ...)
{
  va_list ap;

  va_start (ap, r);
  run_ctl_va (r, NULL, ap);
  va_end (ap);
}

/* With environment variables: @env is NAME, VALUE, … NULL. */
static void
run_ctl_env (Result             *r,
             const char * const *env,
             ...)
{
  va_list ap;

  va_start (ap, env);
  run_ctl_va (r, env, ap);
  va_end (ap);
}

/* Exactly one line, ending in a newline. */
static void
assert_one_line (const char *text)
{
  const char *newline = strchr (text, '\n');

  g_assert_nonnull (newline);
  g_assert_cmpstr (newline + 1, ==, "");
}

static char *
url (const char *scheme,
     guint16     port)
{
  return g_strdup_printf ("%s://%s:%u", scheme, servers->host, (guint) port);
}

static void
add_alice (const char *name,
           const char *password_command)
{
  g_auto(Result) r = { 0 };
  g_autofree char *imaps = url ("imaps", servers->imaps_port);
  g_autofree char *smtps = url ("smtps", servers->submissions_port);

  run_ctl (&r, "account", "add", name, "--email", "alice@example.test",
           "--display-name", "Alice at work", "--imap", imaps, "--smtp", smtps,
           "--ca-file", servers->ca_file, "--password-command", password_command, NULL);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
}

static void
test_lifecycle (void)
{
  g_autofree char *imaps = url ("imaps", servers->imaps_port);
  g_autofree char *smtps = url ("smtps", servers->submissions_port);
  g_autofree char *incoming_ok = g_strdup_printf ("incoming %s: ok\n", imaps);
  g_autofree char *outgoing_ok = g_strdup_printf ("outgoing %s: ok\n", smtps);
  g_autofree char *expected_json = NULL;

  add_alice ("work", "echo alice-password");

  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "list", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, "work\n");
  }
  {
    g_auto(Result) r = { 0 };

    /* --json after the command works too */
    run_ctl (&r, "account", "list", "--json", NULL);
    g_assert_cmpint (r.status, ==, 0);
    expected_json = g_strdup_printf ("[{\"id\": \"work\", \"display_name\": \"Alice at work\", "
                                     "\"email\": \"alice@example.test\", \"incoming\": \"%s\", "
                                     "\"outgoing\": \"%s\"}]\n", imaps, smtps);
    g_assert_cmpstr (r.out, ==, expected_json);
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *incoming_line = g_strdup_printf ("Incoming:       %s\n", imaps);

    run_ctl (&r, "account", "show", "work", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "Account:        work\n"));
    g_assert_nonnull (strstr (r.out, "E-mail:         alice@example.test\n"));
    g_assert_nonnull (strstr (r.out, incoming_line));
    g_assert_nonnull (strstr (r.out, "Password:       from a command\n"));
    g_assert_null (strstr (r.out, "alice-password"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "--json", "account", "show", "work", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.out, "{\"id\": \"work\""));
    g_assert_nonnull (strstr (r.out, "\"password_source\": \"command\""));
    g_assert_null (strstr (r.out, "alice-password"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "add", "work", "--email", "alice@example.test",
             "--imap", imaps, NULL);
    g_assert_cmpint (r.status, ==, 6);
    assert_one_line (r.err);
    g_assert_nonnull (strstr (r.err, "work"));
    g_assert_nonnull (strstr (r.err, "already exists"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "add", "other", "--email", "alice@example.test",
             "--imap", "gopher://example.test", NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
    g_assert_nonnull (strstr (r.err, "gopher"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "add", "other", "--email", "alice@example.test", NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *expected = g_strconcat (incoming_ok, outgoing_ok, NULL);

    run_ctl (&r, "account", "test", "work", NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpstr (r.out, ==, expected);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "remove", "work", NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "list", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, "");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "show", "work", NULL);
    g_assert_cmpint (r.status, ==, 6);
    assert_one_line (r.err);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "remove", "work", NULL);
    g_assert_cmpint (r.status, ==, 6);
    assert_one_line (r.err);
  }
  {
    g_auto(Result) r = { 0 };

    /* an invalid account name is invalid input: usage */
    run_ctl (&r, "account", "add", ".hidden", "--email", "alice@example.test",
             "--imap", imaps, NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "frobnicate", NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
  }
}

static void
test_wrong_password (void)
{
  g_auto(Result) r = { 0 };
  g_autofree char *imaps = url ("imaps", servers->imaps_port);
  g_autofree char *prefix = g_strdup_printf ("letterbox-ctl: account “wrong”: incoming %s: ",
                                             imaps);

  add_alice ("wrong", "echo wrong");
  run_ctl (&r, "account", "test", "wrong", NULL);
  g_test_message ("stdout: %s\nstderr: %s", r.out, r.err);
  g_assert_cmpint (r.status, ==, 4);
  /* both servers refuse; each is named */
  g_assert_true (g_str_has_prefix (r.err, prefix));
  g_assert_nonnull (strstr (r.err, "outgoing smtps://"));
  g_assert_null (strstr (r.out, ": ok\n"));

  {
    g_auto(Result) removed = { 0 };

    run_ctl (&removed, "account", "remove", "wrong", NULL);
    g_assert_cmpint (removed.status, ==, 0);
  }
}

static void
test_pop3s (void)
{
  g_autofree char *pop3s = url ("pop3s", servers->pop3s_port);
  g_autofree char *expected = g_strdup_printf ("incoming %s: ok\n", pop3s);

  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "add", "pop", "--email", "bob@example.test", "--pop3", pop3s,
             "--ca-file", servers->ca_file, "--password-command", "echo bob-password", NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "test", "pop", NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpstr (r.out, ==, expected);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "remove", "pop", NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
}

static void
test_untrusted_certificate (void)
{
  g_autofree char *imaps = url ("imaps", servers->imaps_port);
  g_auto(Result) r = { 0 };

  /* no --ca-file: the fixture's private CA is not trusted */
  {
    g_auto(Result) added = { 0 };

    run_ctl (&added, "account", "add", "untrusted", "--email", "carol@example.test",
             "--imap", imaps, "--password-command", "echo carol-password", NULL);
    g_assert_cmpint (added.status, ==, 0);
  }
  run_ctl (&r, "account", "test", "untrusted", NULL);
  g_test_message ("stderr: %s", r.err);
  g_assert_cmpint (r.status, ==, 4);
  assert_one_line (r.err);
  g_assert_nonnull (strstr (r.err, "untrusted"));
  {
    g_auto(Result) removed = { 0 };

    run_ctl (&removed, "account", "remove", "untrusted", NULL);
    g_assert_cmpint (removed.status, ==, 0);
  }

  /* pinning the certificate the error named makes it work */
  {
    const char *at = strstr (r.err, "fingerprint ");
    g_autofree char *fingerprint = NULL;
    g_autofree char *expected = g_strdup_printf ("incoming %s: ok\n", imaps);
    g_auto(Result) added = { 0 };
    g_auto(Result) tested = { 0 };
    g_auto(Result) removed = { 0 };

    g_assert_nonnull (at);
    fingerprint = g_strndup (at + strlen ("fingerprint "), 32 * 3 - 1);
    run_ctl (&added, "account", "add", "pinned", "--email", "carol@example.test",
             "--imap", imaps, "--trust-fingerprint", fingerprint,
             "--password-command", "echo carol-password", NULL);
    g_assert_cmpstr (added.err, ==, "");
    g_assert_cmpint (added.status, ==, 0);
    run_ctl (&tested, "account", "test", "pinned", NULL);
    g_assert_cmpstr (tested.err, ==, "");
    g_assert_cmpstr (tested.out, ==, expected);
    g_assert_cmpint (tested.status, ==, 0);
    run_ctl (&removed, "account", "remove", "pinned", NULL);
    g_assert_cmpint (removed.status, ==, 0);
  }
}

/* ---- account add --autoconfig ------------------------------------------------------- */

static char *
fixture_autoconfig (void)
{
  return g_strdup_printf (
    "<?xml version=\"1.0\"?>\n<clientConfig version=\"1.1\">\n"
    " <emailProvider id=\"example.test\">\n  <domain>example.test</domain>\n"
    "  <incomingServer type=\"imap\"><hostname>%s</hostname><port>%u</port>"
    "<socketType>SSL</socketType><username>%%EMAILADDRESS%%</username>"
    "<authentication>password-cleartext</authentication></incomingServer>\n"
    "  <outgoingServer type=\"smtp\"><hostname>%s</hostname><port>%u</port>"
    "<socketType>SSL</socketType><username>%%EMAILADDRESS%%</username>"
    "<authentication>password-cleartext</authentication></outgoingServer>\n"
    " </emailProvider>\n</clientConfig>\n",
    servers->host, (guint) servers->imaps_port, servers->host,
    (guint) servers->submissions_port);
}

/* After an account was added from what autoconfig found: show has the fixture's
 * IMAPS and submissions servers, test logs in to both, remove. */
static void
check_fixture_account (const char *name)
{
  g_autofree char *imaps = url ("imaps", servers->imaps_port);
  g_autofree char *smtps = url ("smtps", servers->submissions_port);

  {
    g_auto(Result) r = { 0 };
    g_autofree char *incoming = g_strdup_printf ("\"incoming\": \"%s\"", imaps);
    g_autofree char *outgoing = g_strdup_printf ("\"outgoing\": \"%s\"", smtps);

    run_ctl (&r, "account", "show", name, "--json", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, incoming));
    g_assert_nonnull (strstr (r.out, outgoing));
    g_assert_nonnull (strstr (r.out, "\"email\": \"alice@example.test\""));
    g_assert_nonnull (strstr (r.out, "\"incoming_user\": \"alice@example.test\""));
    g_assert_nonnull (strstr (r.out, "\"password_source\": \"command\""));
    g_assert_nonnull (strstr (r.out, servers->ca_file));
  }
  {
    g_auto(Result) r = { 0 };
    g_autofree char *expected = g_strdup_printf ("incoming %s: ok\noutgoing %s: ok\n", imaps,
                                                 smtps);

    run_ctl (&r, "account", "test", name, NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpstr (r.out, ==, expected);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "remove", name, NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
}

static void
test_autoconfig_file (void)
{
  g_autoptr(GError) error = NULL;
  LbTestWeb *web = lb_test_web_start (&error);
  g_autofree char *xml = fixture_autoconfig ();
  g_autofree char *found = NULL;

  g_assert_no_error (error);
  lb_test_web_write (web, "mail/config-v1.1.xml", xml);
  found = g_strdup_printf ("Found the servers for alice@example.test in the autoconfig file at "
                           "%s/mail/config-v1.1.xml?emailaddress=alice%%40example.test\n",
                           web->base_url);
  {
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url, NULL };
    g_auto(Result) r = { 0 };

    run_ctl_env (&r, env, "account", "add", "work", "--email", "alice@example.test",
                 "--autoconfig", "--password-command", "echo alice-password",
                 "--ca-file", servers->ca_file, NULL);
    g_test_message ("stderr: %s", r.err);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.err, found));
    g_assert_nonnull (strstr (r.err, "incoming imaps://"));
    g_assert_cmpstr (r.out, ==, "Added the account “work”.\n");
  }
  check_fixture_account ("work");
  lb_test_web_stop (web);
}

static void
test_autoconfig_srv (void)
{
  g_autoptr(GError) error = NULL;
  LbTestWeb *web = lb_test_web_start (&error);
  g_autofree char *imaps = g_strdup_printf ("srv-host=_imaps._tcp.example.test,%s,%u,0,0",
                                            servers->host, (guint) servers->imaps_port);
  g_autofree char *submissions = g_strdup_printf (
    "srv-host=_submissions._tcp.example.test,%s,%u,0,0", servers->host,
    (guint) servers->submissions_port);
  const char *records[] = { imaps, submissions, NULL };
  LbTestDns *dns = NULL;

  g_assert_no_error (error);
  dns = lb_test_dns_start (records, &error);
  g_assert_no_error (error);
  {
    /* No autoconfig file (404s): the SRV records. */
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url,
                          "LETTERBOX_AUTOCONFIG_DNS", dns->nameserver, NULL };
    g_auto(Result) r = { 0 };

    run_ctl_env (&r, env, "account", "add", "srv", "--email", "alice@example.test",
                 "--autoconfig", "--password-command", "echo alice-password",
                 "--ca-file", servers->ca_file, NULL);
    g_test_message ("stderr: %s", r.err);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.err, "Found the servers for alice@example.test from "
                                            "DNS SRV records\n"));
    /* RFC 6186 §6: a target outside the domain is pointed out. */
    g_assert_nonnull (strstr (r.err, "is not in the domain example.test"));
  }
  check_fixture_account ("srv");
  lb_test_dns_stop (dns);
  lb_test_web_stop (web);
}

static void
test_autoconfig_errors (void)
{
  g_autoptr(GError) error = NULL;
  LbTestWeb *web = lb_test_web_start (&error);
  guint16 closed = lb_test_free_port ();
  g_autofree char *dead = g_strdup_printf ("srv-host=_imaps._tcp.example.test,127.0.0.1,%u,0,0",
                                           (guint) closed);
  const char *no_records[] = { NULL };
  const char *dead_records[] = { dead, NULL };
  LbTestDns *empty = NULL;
  LbTestDns *unreachable = NULL;

  g_assert_no_error (error);
  empty = lb_test_dns_start (no_records, &error);
  g_assert_no_error (error);
  unreachable = lb_test_dns_start (dead_records, &error);
  g_assert_no_error (error);

  /* Nothing anywhere: 6, the problems of every step on one line. The probe goes to an
   * address on loopback where no mail server listens. */
  {
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url,
                          "LETTERBOX_AUTOCONFIG_DNS", empty->nameserver,
                          "LETTERBOX_AUTOCONFIG_PROBE_HOSTS", "127.0.0.4", NULL };
    g_auto(Result) r = { 0 };

    run_ctl_env (&r, env, "account", "add", "none", "--email", "alice@example.test",
                 "--autoconfig", NULL);
    g_test_message ("stderr: %s", r.err);
    g_assert_cmpint (r.status, ==, 6);
    assert_one_line (r.err);
    g_assert_true (g_str_has_prefix (r.err, "letterbox-ctl: No settings were found for "));
    g_assert_nonnull (strstr (r.err, "404"));
  }
  /* SRV records naming a server that does not answer: 4. */
  {
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url,
                          "LETTERBOX_AUTOCONFIG_DNS", unreachable->nameserver,
                          "LETTERBOX_AUTOCONFIG_PROBE_HOSTS", "127.0.0.4", NULL };
    g_auto(Result) r = { 0 };
    g_autofree char *where = g_strdup_printf ("127.0.0.1:%u", (guint) closed);

    run_ctl_env (&r, env, "account", "add", "none", "--email", "alice@example.test",
                 "--autoconfig", NULL);
    g_test_message ("stderr: %s", r.err);
    g_assert_cmpint (r.status, ==, 4);
    assert_one_line (r.err);
    g_assert_nonnull (strstr (r.err, where));
  }
  /* A broken autoconfig file and nothing else: 4, naming the file. */
  {
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url,
                          "LETTERBOX_AUTOCONFIG_DNS", empty->nameserver,
                          "LETTERBOX_AUTOCONFIG_PROBE_HOSTS", "127.0.0.4", NULL };
    g_auto(Result) r = { 0 };

    lb_test_web_write (web, "mail/config-v1.1.xml", "<clientConfig><emailProvider>");
    run_ctl_env (&r, env, "account", "add", "none", "--email", "alice@example.test",
                 "--autoconfig", NULL);
    lb_test_web_remove (web, "mail/config-v1.1.xml");
    g_assert_cmpint (r.status, ==, 4);
    assert_one_line (r.err);
    g_assert_nonnull (strstr (r.err, "/mail/config-v1.1.xml"));
  }
  /* Wrong usage and input: 2; an unreadable CA file: 5; an existing account: 6 — all
   * before any lookup. */
  {
    g_auto(Result) r = { 0 };
    g_autofree char *imaps = url ("imaps", servers->imaps_port);

    run_ctl (&r, "account", "add", "none", "--email", "alice@example.test", "--autoconfig",
             "--imap", imaps, NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
  }
  {
    const char *env[] = { "LETTERBOX_AUTOCONFIG_URL", web->base_url, NULL };
    g_auto(Result) r = { 0 };

    run_ctl_env (&r, env, "account", "add", "none", "--email", "not an address",
                 "--autoconfig", NULL);
    g_assert_cmpint (r.status, ==, 2);
    assert_one_line (r.err);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "add", "none", "--email", "alice@example.test", "--autoconfig",
             "--ca-file", "/nonexistent/ca.pem", NULL);
    g_assert_cmpint (r.status, ==, 5);
    assert_one_line (r.err);
    g_assert_nonnull (strstr (r.err, "/nonexistent/ca.pem"));
  }
  {
    g_auto(Result) r = { 0 };
    g_auto(Result) exists = { 0 };

    add_alice ("taken", "echo alice-password");
    run_ctl (&exists, "account", "add", "taken", "--email", "alice@example.test",
             "--autoconfig", NULL);
    g_assert_cmpint (exists.status, ==, 6);
    assert_one_line (exists.err);
    g_assert_nonnull (strstr (exists.err, "already exists"));
    run_ctl (&r, "account", "remove", "taken", NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, "account", "list", NULL);
    g_assert_cmpstr (r.out, ==, "");
  }

  lb_test_dns_stop (unreachable);
  lb_test_dns_stop (empty);
  lb_test_web_stop (web);
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
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (ctl_path);
  config_dir = g_build_filename (home, "ctl-config", NULL);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);

  g_test_add_func ("/ctl/account/lifecycle", test_lifecycle);
  g_test_add_func ("/ctl/account/wrong-password", test_wrong_password);
  g_test_add_func ("/ctl/account/pop3s", test_pop3s);
  g_test_add_func ("/ctl/account/untrusted-certificate", test_untrusted_certificate);
  g_test_add_func ("/ctl/account/autoconfig/file", test_autoconfig_file);
  g_test_add_func ("/ctl/account/autoconfig/srv", test_autoconfig_srv);
  g_test_add_func ("/ctl/account/autoconfig/errors", test_autoconfig_errors);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  g_free (config_dir);
  return status;
}
