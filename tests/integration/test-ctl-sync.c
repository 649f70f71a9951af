/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <signal.h>
#include <sys/prctl.h>
#include <string.h>

#include "lb-test-sync.h"

/* `letterbox-ctl sync` as a user or script runs it, against the Dovecot fixture: two
 * accounts (IMAP and POP3) synced at once and matching the server byte for byte; changes
 * made with `flag`/`move`/`delete` replayed; a wrong password named; and crash safety
 * the isync way — the syncing process killed with SIGKILL right after each kind of step,
 * then run again: the store matches the server, no message twice, no local change lost,
 * and a further sync finds nothing to do. */

static LbTestServers *servers;
static const char *ctl_path;
static char *config_dir;

typedef struct
{
  int status;
  int signal;
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
run_ctl_env (Result     *r,
             const char *data_dir,
             const char *crash_at,
             ...)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;
  va_list ap;

  g_ptr_array_add (argv, (char *) ctl_path);
  g_ptr_array_add (argv, (char *) "--config-dir");
  g_ptr_array_add (argv, config_dir);
  g_ptr_array_add (argv, (char *) "--data-dir");
  g_ptr_array_add (argv, (char *) data_dir);
  va_start (ap, crash_at);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  va_end (ap);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE);
  /* One header per FETCH: a folder's new mail arrives in several chunks, newest first,
   * so a kill after the first leaves older messages for the next run. */
  g_subprocess_launcher_setenv (launcher, "LB_SYNC_HEADER_CHUNK", "1", TRUE);
  if (crash_at != NULL)
    g_subprocess_launcher_setenv (launcher, "LB_SYNC_CRASH_AT", crash_at, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "LB_SYNC_CRASH_AT");
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8 (proc, NULL, NULL, &r->out, &r->err, &error);
  g_assert_no_error (error);
  r->status = g_subprocess_get_if_exited (proc) ? g_subprocess_get_exit_status (proc) : -1;
  r->signal = g_subprocess_get_if_signaled (proc) ? g_subprocess_get_term_sig (proc) : 0;
}

#define run_ctl(r, dir, ...) run_ctl_env (r, dir, NULL, __VA_ARGS__)

static char *
url (const char *scheme,
     const char *user,
     guint16     port)
{
  g_autofree char *escaped = g_uri_escape_string (user, NULL, FALSE);

  return g_strdup_printf ("%s://%s@%s:%u", scheme, escaped, servers->host, (guint) port);
}

static void
seed (const char *user,
      const char *mailbox,
      guint       n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = g_strdup_printf ("From: Sender %u <s%u@example.org>\r\n"
                                              "To: %s\r\n"
                                              "Subject: CLI sync %u\r\n"
                                              "Message-ID: <cli-%u@example.org>\r\n"
                                              "Date: Tue, 2 Jan 2024 09:%02u:00 +0000\r\n"
                                              "\r\n"
                                              "Text of message %u.\r\n",
                                              n, n, user, n, n, n % 60, n);

  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", user, "-m", mailbox,
                           NULL);
  g_assert_no_error (error);
}

static void
add_account (const char *name,
             const char *protocol,
             const char *user,
             guint16     port,
             const char *password)
{
  g_auto(Result) r = { 0 };
  g_autofree char *incoming = url (protocol, user, port);
  g_autofree char *command = g_strdup_printf ("printf %%s %s", password);
  g_autofree char *option = g_strdup_printf ("--%.4s", protocol);
  g_autofree char *display = g_strdup_printf ("%s account", name);

  /* "plain" has no display name: its id stands in for it. */
  if (strcmp (name, "plain") == 0)
    run_ctl (&r, "/nonexistent", "account", "add", name, "--email", user, option, incoming,
             "--ca-file", servers->ca_file, "--password-command", command, NULL);
  else
    run_ctl (&r, "/nonexistent", "account", "add", name, "--email", user, "--display-name",
             display, option, incoming, "--ca-file", servers->ca_file, "--password-command",
             command, NULL);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
}

static void
clean_server (const char *user)
{
  static const char *const folders[] = { "Archive", "Projects" };

  for (guint i = 0; i < G_N_ELEMENTS (folders); i++)
    lb_test_servers_doveadm (servers, NULL, NULL, NULL, "mailbox", "delete", "-r", "-s", "-u",
                             user, folders[i], NULL);
  lb_test_servers_doveadm (servers, NULL, NULL, NULL, "expunge", "-u", user, "mailbox", "*", "all",
                           NULL);
}

static void
assert_converged (const char *dir,
                  const char *account,
                  const char *user)
{
  g_autofree char *server = lb_test_server_state (servers, user);
  g_autofree char *store = lb_test_store_state (dir, account);
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM (SELECT 1 FROM messages m JOIN "
                                          "folders f ON f.id = m.folder_id WHERE f.account_id = "
                                          "'%s' GROUP BY m.folder_id, m.message_id HAVING "
                                          "count(*) > 1)", account);

  g_autofree char *integrity = lb_test_store_query (dir, "PRAGMA integrity_check");

  g_assert_cmpstr (store, ==, server);
  g_assert_cmpint (lb_test_store_query_int (dir, sql), ==, 0);
  g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM journal"), ==, 0);
  g_assert_cmpstr (integrity, ==, "ok");
}

static gint64
row_of (const char *dir,
        guint       n)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE message_id = "
                                          "'cli-%u@example.org'", n);

  return lb_test_store_query_int (dir, sql);
}

/* Two accounts at once; listings, show --raw, flag/move/delete replayed; a second sync
 * has nothing to do. */
static void
test_two_accounts (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-ctl-sync-XXXXXX", &error);

  clean_server ("alice@example.test");
  clean_server ("bob@example.test");
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "mailbox", "create", "-u",
                           "alice@example.test", "Archive", NULL);
  g_assert_no_error (error);
  for (guint n = 1; n <= 5; n++)
    seed ("alice@example.test", "INBOX", n);
  seed ("alice@example.test", "Archive", 6);
  for (guint n = 11; n <= 13; n++)
    seed ("bob@example.test", "INBOX", n);

  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, dir, "sync", "--json", NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "\"account\": \"work\""));
    g_assert_nonnull (strstr (r.out, "\"new\": 6"));
    g_assert_nonnull (strstr (r.out, "\"bodies\": 6"));
    g_assert_nonnull (strstr (r.out, "\"account\": \"home\""));
    g_assert_nonnull (strstr (r.out, "\"downloaded\": 3"));
  }
  assert_converged (dir, "work", "alice@example.test");
  g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM messages m JOIN folders f "
                                                 "ON f.id = m.folder_id WHERE f.account_id = "
                                                 "'home' AND body_state = 2"), ==, 3);

  /* The bytes, as the server has them. */
  {
    g_auto(Result) r = { 0 };
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, 12));

    run_ctl (&r, dir, "show", id, "--raw", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_cmpstr (r.out, ==, "From: Sender 12 <s12@example.org>\r\nTo: bob@example.test\r\n"
                                "Subject: CLI sync 12\r\nMessage-ID: <cli-12@example.org>\r\n"
                                "Date: Tue, 2 Jan 2024 09:12:00 +0000\r\n\r\n"
                                "Text of message 12.\r\n");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, dir, "list", "work/INBOX", "--json", NULL);
    g_assert_cmpint (r.status, ==, 0);
    for (guint n = 1; n <= 5; n++)
      {
        g_autofree char *subject = g_strdup_printf ("\"CLI sync %u\"", n);

        g_assert_nonnull (strstr (r.out, subject));
      }
  }

  /* Offline changes through the CLI, replayed by the next sync. */
  {
    g_auto(Result) r1 = { 0 }, r2 = { 0 }, r3 = { 0 }, r4 = { 0 };
    g_autofree char *one = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, 1));
    g_autofree char *two = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, 2));
    g_autofree char *three = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, 3));

    run_ctl (&r1, dir, "flag", one, "+flagged", "+seen", NULL);
    g_assert_cmpint (r1.status, ==, 0);
    run_ctl (&r2, dir, "move", two, "work/Archive", NULL);
    g_assert_cmpint (r2.status, ==, 0);
    run_ctl (&r3, dir, "delete", three, NULL);
    g_assert_cmpint (r3.status, ==, 0);
    g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM journal"), ==, 3);
    run_ctl (&r4, dir, "sync", "work", NULL);
    g_assert_cmpstr (r4.err, ==, "");
    g_assert_cmpint (r4.status, ==, 0);
  }
  assert_converged (dir, "work", "alice@example.test");
  {
    g_autofree char *server = lb_test_server_state (servers, "alice@example.test");
    g_autofree char *in_archive = lb_test_store_query (dir, "SELECT f.name FROM messages m JOIN "
                                                            "folders f ON f.id = m.folder_id "
                                                            "WHERE m.message_id = "
                                                            "'cli-2@example.org'");
    g_autofree char *in_trash = lb_test_store_query (dir, "SELECT f.name FROM messages m JOIN "
                                                          "folders f ON f.id = m.folder_id "
                                                          "WHERE m.message_id = "
                                                          "'cli-3@example.org'");
    g_autofree char *flags = lb_test_store_query (dir, "SELECT flags FROM messages WHERE "
                                                       "message_id = 'cli-1@example.org'");

    /* (The store matches the server, so these are the server's too.) */
    g_assert_cmpstr (in_archive, ==, "Archive");
    g_assert_cmpstr (in_trash, ==, "Trash");
    g_assert_cmpstr (flags, ==, "5");
    g_assert_nonnull (strstr (server, "\\Seen \\Flagged"));
  }

  /* Nothing left to do. */
  {
    g_auto(Result) r = { 0 };

    run_ctl (&r, dir, "sync", "--json", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "\"new\": 0, \"bodies\": 0, \"flag_changes\": 0, "
                                     "\"removed\": 0, \"replayed\": 0"));
    g_assert_nonnull (strstr (r.out, "\"method\": \"qresync\""));
    g_assert_nonnull (strstr (r.out, "\"downloaded\": 0"));
  }
  lb_test_remove_tree (dir);
}

/* An account without a display name syncs; after a headers-only sync, show fetches the
 * body it needs from the server. */
static void
test_no_display_name (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-ctl-sync-XXXXXX", &error);
  g_auto(Result) r = { 0 };
  g_auto(Result) gone = { 0 };

  clean_server ("alice@example.test");
  seed ("alice@example.test", "INBOX", 300);
  add_account ("plain", "imaps", "alice@example.test", servers->imaps_port, "alice-password");
  run_ctl (&r, dir, "sync", "plain", "--headers-only", NULL);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_cmpint (row_of (dir, 300), >, 0);
  g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM messages WHERE "
                                                 "body_state = 2 AND message_id LIKE 'cli-%'"),
                   ==, 0);
  {
    g_auto(Result) shown = { 0 };
    g_autofree char *id = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, 300));

    run_ctl (&shown, dir, "show", id, "--raw", NULL);
    g_assert_cmpstr (shown.err, ==, "");
    g_assert_cmpint (shown.status, ==, 0);
    g_assert_cmpstr (shown.out, ==, "From: Sender 300 <s300@example.org>\r\n"
                                    "To: alice@example.test\r\nSubject: CLI sync 300\r\n"
                                    "Message-ID: <cli-300@example.org>\r\n"
                                    "Date: Tue, 2 Jan 2024 09:00:00 +0000\r\n\r\n"
                                    "Text of message 300.\r\n");
  }
  run_ctl (&gone, dir, "account", "remove", "plain", NULL);
  g_assert_cmpint (gone.status, ==, 0);
  lb_test_remove_tree (dir);
}

static void
test_wrong_password (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-ctl-sync-XXXXXX", &error);
  g_auto(Result) r = { 0 };

  add_account ("wrong", "imaps", "carol@example.test", servers->imaps_port, "not-her-password");
  run_ctl (&r, dir, "sync", "wrong", NULL);
  g_assert_cmpint (r.status, ==, 4);
  g_assert_nonnull (strstr (r.err, "wrong account"));
  g_assert_nonnull (g_str_has_prefix (r.err, "letterbox-ctl: ") ? r.err : NULL);
  g_assert_cmpint ((int) (strchr (r.err, '\n') - r.err), ==, (int) strlen (r.err) - 1);
  {
    g_auto(Result) gone = { 0 };

    run_ctl (&gone, dir, "account", "remove", "wrong", NULL);
    g_assert_cmpint (gone.status, ==, 0);
  }
  lb_test_remove_tree (dir);
}

/* kill -9 right after each kind of step, then again without: converged, nothing twice,
 * nothing lost, and a further sync changes nothing. */
static void
test_crash_steps (void)
{
  static const char *const steps[] = { "folders", "replay", "flags", "headers", "state",
                                       "bodies" };

  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *dir = g_dir_make_tmp ("lb-ctl-crash-XXXXXX", &error);
      guint base = 100 + i * 10;

      clean_server ("alice@example.test");
      lb_test_servers_doveadm (servers, NULL, NULL, &error, "mailbox", "create", "-u",
                               "alice@example.test", "Archive", NULL);
      g_assert_no_error (error);
      for (guint n = base; n < base + 4; n++)
        seed ("alice@example.test", "INBOX", n);
      {
        g_auto(Result) r = { 0 };

        run_ctl (&r, dir, "sync", "work", NULL);
        g_assert_cmpint (r.status, ==, 0);
      }
      /* Another client's changes, and the user's while offline. */
      seed ("alice@example.test", "INBOX", base + 4);
      seed ("alice@example.test", "INBOX", base + 5);
      lb_test_servers_doveadm (servers, NULL, NULL, &error, "flags", "add", "-u",
                               "alice@example.test", "\\Answered", "mailbox", "INBOX", "all",
                               NULL);
      g_assert_no_error (error);
      {
        g_auto(Result) r1 = { 0 }, r2 = { 0 };
        g_autofree char *a = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, base));
        g_autofree char *b = g_strdup_printf ("%" G_GINT64_FORMAT, row_of (dir, base + 1));

        run_ctl (&r1, dir, "flag", a, "+flagged", NULL);
        g_assert_cmpint (r1.status, ==, 0);
        run_ctl (&r2, dir, "move", b, "work/Archive", NULL);
        g_assert_cmpint (r2.status, ==, 0);
      }
      {
        g_auto(Result) r = { 0 };

        run_ctl_env (&r, dir, steps[i], "sync", "work", NULL);
        g_test_message ("killed after %s: signal %d", steps[i], r.signal);
        g_assert_cmpint (r.signal, ==, SIGKILL);
      }
      {
        g_auto(Result) r = { 0 };

        run_ctl (&r, dir, "sync", "work", NULL);
        g_assert_cmpstr (r.err, ==, "");
        g_assert_cmpint (r.status, ==, 0);
      }
      assert_converged (dir, "work", "alice@example.test");
      {
        g_autofree char *flagged = g_strdup_printf ("SELECT flags & 4 FROM messages WHERE "
                                                    "message_id = 'cli-%u@example.org'", base);
        g_autofree char *moved = g_strdup_printf ("SELECT f.name FROM messages m JOIN folders f "
                                                  "ON f.id = m.folder_id WHERE m.message_id = "
                                                  "'cli-%u@example.org'", base + 1);
        g_autofree char *where = lb_test_store_query (dir, moved);

        g_assert_cmpint (lb_test_store_query_int (dir, flagged), ==, 4);
        g_assert_cmpstr (where, ==, "Archive");
        g_assert_cmpint (lb_test_store_query_int (dir, "SELECT count(*) FROM messages WHERE "
                                                       "message_id LIKE 'cli-%' AND "
                                                       "body_state = 2"), ==, 6);
      }
      {
        g_auto(Result) r = { 0 };

        run_ctl (&r, dir, "sync", "work", "--json", NULL);
        g_assert_cmpint (r.status, ==, 0);
        g_assert_nonnull (strstr (r.out, "\"new\": 0, \"bodies\": 0, \"flag_changes\": 0, "
                                         "\"removed\": 0, \"replayed\": 0"));
      }
      lb_test_remove_tree (dir);
    }
}

typedef struct
{
  const char *dir;
  guint n;
} Arrival;

static gboolean
arrived (gpointer data)
{
  Arrival *a = data;
  g_autofree char *sql = g_strdup_printf ("SELECT count(*) FROM messages WHERE message_id = "
                                          "'cli-%u@example.org'", a->n);
  gint64 found = 0;

  return lb_test_store_try_query_int (a->dir, sql, &found) && found > 0;
}

/* The watcher dies with the test, even when an assertion ends the test first. */
static void
die_with_parent (gpointer data)
{
  prctl (PR_SET_PDEATHSIG, SIGKILL);
}

/* sync --watch: new mail reaches the store through IDLE without another command, and
 * SIGTERM ends it cleanly. */
static void
test_watch (void)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *dir = g_dir_make_tmp ("lb-ctl-watch-XXXXXX", &error);
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GSubprocessLauncher) launcher = g_subprocess_launcher_new (
    G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  Arrival first = { dir, 201 }, pushed = { dir, 202 };
  gint64 start;

  clean_server ("alice@example.test");
  seed ("alice@example.test", "INBOX", 200);
  g_subprocess_launcher_set_child_setup (launcher, die_with_parent, NULL, NULL);
  proc = g_subprocess_launcher_spawn (launcher, &error, ctl_path, "--config-dir", config_dir,
                                      "--data-dir", dir, "sync", "work", "--watch", NULL);
  g_assert_no_error (error);
  /* The first message may race the watcher's own login: it is given time. The second is
   * timed from its delivery. */
  g_assert_true (lb_test_wait_until (arrived, &(Arrival) { dir, 200 }, 30000));
  seed ("alice@example.test", "INBOX", 201);
  g_assert_true (lb_test_wait_until (arrived, &first, 30000));
  start = g_get_monotonic_time ();
  seed ("alice@example.test", "INBOX", 202);
  g_assert_true (lb_test_wait_until (arrived, &pushed, 2000));
  g_test_message ("pushed through letterbox-ctl sync --watch in %.0f ms",
                  (g_get_monotonic_time () - start) / 1000.0);
  g_subprocess_send_signal (proc, SIGTERM);
  g_assert_true (g_subprocess_wait (proc, NULL, &error));
  g_assert_true (g_subprocess_get_if_exited (proc));
  g_assert_cmpint (g_subprocess_get_exit_status (proc), ==, 0);
  lb_test_remove_tree (dir);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (ctl_path);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  config_dir = g_dir_make_tmp ("lb-ctl-config-XXXXXX", &error);
  g_assert_no_error (error);
  add_account ("work", "imaps", "alice@example.test", servers->imaps_port, "alice-password");
  add_account ("home", "pop3s", "bob@example.test", servers->pop3s_port, "bob-password");

  g_test_add_func ("/ctl-sync/two-accounts", test_two_accounts);
  g_test_add_func ("/ctl-sync/wrong-password", test_wrong_password);
  g_test_add_func ("/ctl-sync/no-display-name", test_no_display_name);
  g_test_add_func ("/ctl-sync/crash-steps", test_crash_steps);
  g_test_add_func ("/ctl-sync/watch", test_watch);
  status = g_test_run ();

  lb_test_remove_tree (config_dir);
  lb_test_servers_stop (servers);
  return status;
}
