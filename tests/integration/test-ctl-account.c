/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <string.h>

#include "lb-test-util.h"

/* `letterbox-ctl account …` as a script runs it: the built binary (LB_CTL_PATH) with
 * --config-dir, against the Dovecot/Postfix fixture. */

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
run_ctl (Result *r,
         ...)
{
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) ctl_path);
  g_ptr_array_add (argv, (char *) "--config-dir");
  g_ptr_array_add (argv, config_dir);
  va_start (ap, r);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  proc = g_subprocess_newv ((const char *const *) argv->pdata,
                            G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                            &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
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

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  g_free (config_dir);
  return status;
}
