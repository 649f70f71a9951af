/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <gio/gio.h>
#include <signal.h>
#include <string.h>

#include <glib/gstdio.h>

#include "lb-bus-backend1.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/*
 * letterbox-backend as the desktop runs it: on a private session bus, against the real
 * Dovecot fixture, with an IMAP and a POP3 account. It syncs every account at start and
 * reports each one's state; new mail on the server arrives by IDLE as NewMail and
 * StoreChanged; letterbox-ctl's sync, flag and delete go through it (the single writer)
 * and reach the server; a refused password and an unreachable server are told apart,
 * the latter retried with a growing wait; an account added while it runs is synced; and
 * SIGTERM in the middle of a sync ends it cleanly with a store that the next start
 * completes.
 */

static LbTestServers *servers;
static LbTestBus *bus;
static const char *backend_path;
static const char *ctl_path;

typedef struct
{
  char *config_dir;
  char *data_dir;
  char *runtime_dir;             /* XDG_RUNTIME_DIR: the relay's socket */
  GSubprocess *backend;
  LbBusBackend1 *proxy;
  /* Signals seen. */
  guint progress;
  guint store_changed;
  GPtrArray *new_mail;           /* subjects */
  GHashTable *send_results;      /* queue id → "sent" or the error */
} Fixture;

/* An account of @user: incoming @protocol on @port, and when @smtp_port is not 0,
 * outgoing submission with implicit TLS there. */
static void
write_account_full (Fixture    *f,
                    const char *id,
                    const char *protocol,
                    const char *user,
                    guint16     port,
                    const char *password,
                    guint16     smtp_port)
{
  LbTestAccount account = { .id = id, .protocol = protocol, .user = user, .port = port,
                            .password = password, .smtp_port = smtp_port };

  lb_test_write_account (servers, f->config_dir, &account);
}

static void
write_account (Fixture    *f,
               const char *id,
               const char *protocol,
               const char *user,
               guint16     port,
               const char *password)
{
  write_account_full (f, id, protocol, user, port, password, 0);
}

static void
progress_cb (LbBusBackend1 *proxy,
             const char    *account,
             const char    *folder,
             guint          done,
             guint          total,
             Fixture       *f)
{
  f->progress++;
}

static void
store_changed_cb (LbBusBackend1 *proxy,
                  const char    *account,
                  gint64         folder,
                  guint64        generation,
                  Fixture       *f)
{
  f->store_changed++;
}

static void
new_mail_cb (LbBusBackend1 *proxy,
             const char    *account,
             gint64         folder,
             GVariant      *summaries,
             Fixture       *f)
{
  for (gsize i = 0; i < g_variant_n_children (summaries); i++)
    {
      g_autoptr(GVariant) summary = g_variant_get_child_value (summaries, i);
      const char *subject = "";

      g_variant_lookup (summary, "subject", "&s", &subject);
      g_ptr_array_add (f->new_mail, g_strdup_printf ("%s: %s", account, subject));
    }
}

static void
send_result_cb (LbBusBackend1 *proxy,
                const char    *queue_id,
                gboolean       sent,
                const char    *error,
                gboolean       permanent,
                Fixture       *f)
{
  g_hash_table_insert (f->send_results, g_strdup (queue_id),
                       g_strdup (sent ? "sent" : error));
}

static void
start_backend (Fixture *f)
{
  f->backend = lb_test_spawn_backend_live (f->config_dir, f->data_dir, f->runtime_dir);

  if (f->proxy == NULL)
    {
      f->proxy = lb_test_backend_proxy_new ();
      g_signal_connect (f->proxy, "sync-progress", G_CALLBACK (progress_cb), f);
      g_signal_connect (f->proxy, "store-changed", G_CALLBACK (store_changed_cb), f);
      g_signal_connect (f->proxy, "new-mail", G_CALLBACK (new_mail_cb), f);
      g_signal_connect (f->proxy, "send-result", G_CALLBACK (send_result_cb), f);
    }
  g_assert_true (lb_test_backend_proxy_wait_owner (f->proxy, 10000));
}

static int
stop_backend (Fixture *f)
{
  int status = lb_test_stop_backend (f->backend, 30000);

  g_clear_object (&f->backend);
  return status;
}

static void
clean_server (const char *user)
{
  g_autoptr(GError) error = NULL;

  lb_test_servers_doveadm (servers, NULL, NULL, &error, "expunge", "-u", user, "mailbox",
                           "*", "all", NULL);
  g_assert_no_error (error);
}

static void
seed (const char *user,
      const char *subject,
      guint       n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = g_strdup_printf ("From: Sender <s%u@example.org>\r\n"
                                              "To: %s\r\n"
                                              "Subject: %s\r\n"
                                              "Message-ID: <backend-%u-%s@example.org>\r\n"
                                              "Date: Tue, 2 Jan 2024 09:%02u:00 +0000\r\n"
                                              "\r\n"
                                              "Text of message %u.\r\n",
                                              n, user, subject, n, user, n % 60, n);

  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", user, "-m", "INBOX",
                           NULL);
  g_assert_no_error (error);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->config_dir = g_dir_make_tmp ("lb-backend-config-XXXXXX", &error);
  g_assert_no_error (error);
  f->data_dir = g_dir_make_tmp ("lb-backend-data-XXXXXX", &error);
  g_assert_no_error (error);
  f->runtime_dir = g_dir_make_tmp ("lb-backend-run-XXXXXX", &error);
  g_assert_no_error (error);
  f->new_mail = g_ptr_array_new_with_free_func (g_free);
  f->send_results = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  clean_server ("alice@example.test");
  clean_server ("bob@example.test");
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  if (f->backend != NULL)
    stop_backend (f);
  g_clear_object (&f->proxy);
  lb_test_remove_tree (f->config_dir);
  lb_test_remove_tree (f->data_dir);
  lb_test_remove_tree (f->runtime_dir);
  g_free (f->config_dir);
  g_free (f->data_dir);
  g_free (f->runtime_dir);
  g_ptr_array_unref (f->new_mail);
  g_hash_table_unref (f->send_results);
}

/* The account's state as ListAccounts gives it, or NULL. */
static GVariant *
account_state (Fixture    *f,
               const char *id)
{
  g_autoptr(GVariant) accounts = NULL;
  g_autoptr(GError) error = NULL;

  if (!lb_bus_backend1_call_list_accounts_sync (f->proxy, &accounts, NULL, &error))
    return NULL;
  for (gsize i = 0; i < g_variant_n_children (accounts); i++)
    {
      g_autoptr(GVariant) state = NULL;
      const char *name;

      g_variant_get_child (accounts, i, "(&s@a{sv})", &name, &state);
      if (strcmp (name, id) == 0)
        return g_steal_pointer (&state);
    }
  return NULL;
}

typedef struct
{
  Fixture *f;
  const char *id;
  const char *state;
  guint failures;
} StateWait;

static gboolean
state_reached (gpointer user_data)
{
  StateWait *w = user_data;
  g_autoptr(GVariant) state = account_state (w->f, w->id);
  const char *value = NULL;
  guint failures = 0;

  if (state == NULL)
    return FALSE;
  g_variant_lookup (state, "state", "&s", &value);
  g_variant_lookup (state, "failures", "u", &failures);
  return g_strcmp0 (value, w->state) == 0 && failures >= w->failures;
}

static void
wait_state (Fixture    *f,
            const char *id,
            const char *state,
            guint       failures)
{
  StateWait w = { f, id, state, failures };

  if (!lb_test_wait_until (state_reached, &w, 20000))
    {
      g_autoptr(GVariant) now = account_state (f, id);
      g_autofree char *text = now != NULL ? g_variant_print (now, FALSE) : g_strdup ("none");

      g_error ("account %s never reached state %s (failures ≥ %u): %s", id, state, failures,
               text);
    }
}

static void
assert_matches_server (Fixture    *f,
                       const char *user,
                       const char *account)
{
  g_autofree char *server = lb_test_server_state (servers, user);
  g_autofree char *store = lb_test_store_state (f->data_dir, account);

  if (g_strcmp0 (store, server) != 0)
    {
      g_autofree char *rows = lb_test_store_query (f->data_dir,
                                                   "SELECT m.id, f.name, m.uid, m.subject "
                                                   "FROM messages m JOIN folders f ON "
                                                   "f.id = m.folder_id ORDER BY m.id");
      g_autofree char *journal = lb_test_store_query (f->data_dir, "SELECT * FROM journal");

      g_test_message ("store rows:\n%s\njournal:\n%s", rows, journal);
    }
  g_assert_cmpstr (store, ==, server);
}

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

typedef struct
{
  gboolean done;
} Done;

static void
communicate_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  Result *r = user_data;
  g_autoptr(GError) error = NULL;
  GSubprocess *proc = G_SUBPROCESS (source);

  g_subprocess_communicate_utf8_finish (proc, result, &r->out, &r->err, &error);
  g_assert_no_error (error);
}

static gboolean
result_done (gpointer user_data)
{
  return ((Result *) user_data)->err != NULL;
}

/* letterbox-ctl, run while this test's main loop keeps receiving the backend's signals. */
static void
run_ctl_valist (Fixture    *f,
                Result     *r,
                const char *input,
                va_list     ap)
{
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) proc = NULL;
  g_autoptr(GPtrArray) argv = g_ptr_array_new ();
  g_autoptr(GError) error = NULL;
  const char *arg;

  g_ptr_array_add (argv, (char *) ctl_path);
  g_ptr_array_add (argv, (char *) "--config-dir");
  g_ptr_array_add (argv, f->config_dir);
  g_ptr_array_add (argv, (char *) "--data-dir");
  g_ptr_array_add (argv, f->data_dir);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (argv, (char *) arg);
  g_ptr_array_add (argv, NULL);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE |
                                        G_SUBPROCESS_FLAGS_STDERR_PIPE |
                                        (input != NULL ? G_SUBPROCESS_FLAGS_STDIN_PIPE
                                                       : G_SUBPROCESS_FLAGS_NONE));
  g_subprocess_launcher_set_child_setup (launcher, lb_test_child_setup, NULL, NULL);
  /* Were the ctl to sync in-process, it would kill itself at the first step. */
  g_subprocess_launcher_setenv (launcher, "LB_SYNC_CRASH_AT", "folders", TRUE);
  g_subprocess_launcher_setenv (launcher, "XDG_RUNTIME_DIR", f->runtime_dir, TRUE);
  proc = g_subprocess_launcher_spawnv (launcher, (const char *const *) argv->pdata, &error);
  g_assert_no_error (error);
  g_subprocess_communicate_utf8_async (proc, input, NULL, communicate_cb, r);
  g_assert_true (lb_test_wait_until (result_done, r, 60000));
  g_subprocess_wait (proc, NULL, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_get_if_exited (proc));
  r->status = g_subprocess_get_exit_status (proc);
}

static void
run_ctl (Fixture *f,
         Result  *r,
         ...)
{
  va_list ap;

  va_start (ap, r);
  run_ctl_valist (f, r, NULL, ap);
  va_end (ap);
}

/* letterbox-ctl with @input on its standard input. */
static void
run_ctl_input (Fixture    *f,
               Result     *r,
               const char *input,
               ...)
{
  va_list ap;

  va_start (ap, input);
  run_ctl_valist (f, r, input, ap);
  va_end (ap);
}

static gint64
message_id_by_subject (Fixture    *f,
                       const char *subject)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE subject = '%s'", subject);

  return lb_test_store_query_int (f->data_dir, sql);
}

static gboolean
new_mail_arrived (gpointer user_data)
{
  Fixture *f = user_data;

  return f->new_mail->len > 0;
}

typedef struct
{
  const char *user;
  const char *subject;
  const char *flag;
  gboolean present;
} ServerFlag;

static gboolean
server_flag (gpointer user_data)
{
  ServerFlag *w = user_data;
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  g_autofree char *query = g_strdup_printf ("%s", w->subject);

  if (!lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", w->user, "flags",
                                "mailbox", "INBOX", "header", "Subject", query, NULL))
    return FALSE;
  /* present: the message is there with the flag; else: the message is not in INBOX. */
  if (w->present)
    return strstr (out, "flags:") != NULL && strstr (out, w->flag) != NULL;
  return strstr (out, "flags:") == NULL;
}

static void
test_accounts (Fixture       *f,
               gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_auto(Result) r = { 0 };
  g_autoptr(GVariant) results = NULL;
  GVariantDict options;
  gint64 start;
  guint progress_before;

  for (guint i = 1; i <= 5; i++)
    seed ("alice@example.test", "Before start", i);
  for (guint i = 1; i <= 3; i++)
    seed ("bob@example.test", "POP mail", i);
  write_account (f, "work", "imap", "alice@example.test", servers->imaps_port,
                 "alice-password");
  write_account (f, "home", "pop3", "bob@example.test", servers->pop3s_port, "bob-password");

  /* Every account synced at start, without being asked. */
  start_backend (f);
  wait_state (f, "work", "online", 0);
  wait_state (f, "home", "online", 0);
  assert_matches_server (f, "alice@example.test", "work");
  g_assert_cmpint (lb_test_store_query_int (f->data_dir,
                                            "SELECT count(*) FROM messages m JOIN folders f "
                                            "ON f.id = m.folder_id WHERE f.account_id = 'home'"),
                   ==, 3);
  g_assert_cmpuint (f->progress, >, 0);

  /* Sync over the bus: the results of each account, in the order asked. */
  seed ("alice@example.test", "Asked for", 6);
  g_variant_dict_init (&options, NULL);
  lb_bus_backend1_call_sync_sync (f->proxy, (const char *const[]) { "work", "home", NULL },
                                  g_variant_dict_end (&options), &results, NULL, &error);
  g_assert_no_error (error);
  {
    g_autofree char *text = g_variant_print (results, FALSE);

    g_autoptr(GVariant) work = NULL;
    g_autoptr(GVariant) home = NULL;
    const char *first = NULL;
    gboolean ok = FALSE;
    guint n = 0;

    g_test_message ("Sync: %s", text);
    g_assert_cmpuint (g_variant_n_children (results), ==, 2);
    g_variant_get_child (results, 0, "(&s@a{sv})", &first, &work);
    g_assert_cmpstr (first, ==, "work");
    g_assert_true (g_variant_lookup (work, "ok", "b", &ok) && ok);
    g_assert_true (g_variant_lookup (work, "new", "u", &n));
    g_assert_cmpuint (n, ==, 1);
    g_variant_get_child (results, 1, "(&s@a{sv})", &first, &home);
    g_assert_cmpstr (first, ==, "home");
    g_assert_true (g_variant_lookup (home, "ok", "b", &ok) && ok);
    g_assert_true (g_variant_lookup (home, "already-here", "u", &n));
    g_assert_cmpuint (n, ==, 3);
  }
  assert_matches_server (f, "alice@example.test", "work");

  /* An unknown account fails the call before anything starts. */
  g_variant_dict_init (&options, NULL);
  g_assert_false (lb_bus_backend1_call_sync_sync (f->proxy,
                                                  (const char *const[]) { "nobody", NULL },
                                                  g_variant_dict_end (&options), NULL, NULL,
                                                  &error));
  g_assert_true (g_dbus_error_is_remote_error (error));
  g_clear_error (&error);

  /* letterbox-ctl sync goes through the service: its progress comes over the bus, and
   * LB_SYNC_CRASH_AT (which would kill an in-process sync) does nothing. */
  seed ("alice@example.test", "Through ctl", 7);
  progress_before = f->progress;
  start = g_get_monotonic_time ();
  run_ctl (f, &r, "sync", NULL);
  g_test_message ("ctl sync via the backend: %.3f s\n%s%s",
                  (g_get_monotonic_time () - start) / 1e6, r.out, r.err);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  /* (The new message may have come by IDLE already: the count is not checked.) */
  g_assert_nonnull (strstr (r.out, "work: 6 folders, "));
  g_assert_nonnull (strstr (r.out, "home: 0 downloaded, 3 already here"));
  g_assert_cmpuint (f->progress, >, progress_before);
  assert_matches_server (f, "alice@example.test", "work");

  /* ctl sync of an account that does not exist: exit status 6. */
  result_clear (&r);
  memset (&r, 0, sizeof r);
  run_ctl (f, &r, "sync", "nobody", NULL);
  g_assert_cmpint (r.status, ==, 6);

  g_assert_cmpint (stop_backend (f), ==, 0);
}

static void
test_push_and_changes (Fixture       *f,
                       gconstpointer  data)
{
  g_auto(Result) r = { 0 };
  g_autofree char *id = NULL;
  gint64 start;
  guint changed_before;
  ServerFlag seen = { "alice@example.test", "Flag me", "\\Seen", TRUE };

  seed ("alice@example.test", "Flag me", 1);
  seed ("alice@example.test", "Delete me", 2);
  write_account (f, "work", "imap", "alice@example.test", servers->imaps_port,
                 "alice-password");
  start_backend (f);
  wait_state (f, "work", "online", 0);

  /* IDLE: mail delivered on the server is announced within 2 s, without a poll (the
   * poll interval is 600 s). */
  changed_before = f->store_changed;
  start = g_get_monotonic_time ();
  seed ("alice@example.test", "Pushed", 3);
  g_assert_true (lb_test_wait_until (new_mail_arrived, f, 2000));
  g_test_message ("NewMail after %.3f s", (g_get_monotonic_time () - start) / 1e6);
  g_assert_cmpstr (g_ptr_array_index (f->new_mail, 0), ==, "work: Pushed");
  g_assert_cmpuint (f->store_changed, >, changed_before);
  assert_matches_server (f, "alice@example.test", "work");

  /* ctl flag through the service: recorded, replayed at once, seen on the server. */
  id = g_strdup_printf ("%" G_GINT64_FORMAT, message_id_by_subject (f, "Flag me"));
  run_ctl (f, &r, "flag", id, "+seen", NULL);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  g_assert_true (lb_test_wait_until (server_flag, &seen, 5000));

  /* ctl delete: the message leaves the server's INBOX (for its Trash, or for good). */
  g_free (id);
  id = g_strdup_printf ("%" G_GINT64_FORMAT, message_id_by_subject (f, "Delete me"));
  result_clear (&r);
  memset (&r, 0, sizeof r);
  run_ctl (f, &r, "delete", id, NULL);
  g_assert_cmpstr (r.err, ==, "");
  g_assert_cmpint (r.status, ==, 0);
  {
    ServerFlag gone = { "alice@example.test", "Delete me", "flags:", FALSE };

    g_assert_true (lb_test_wait_until (server_flag, &gone, 5000));
  }

  /* A flag the API does not know: InvalidArgs, exit status 2 for a script. */
  {
    g_autoptr(GError) error = NULL;
    GVariantBuilder changes;
    GVariantDict args;
    const char *add[] = { "$Junk", NULL };

    g_variant_dict_init (&args, NULL);
    g_variant_dict_insert (&args, "message", "x", message_id_by_subject (f, "Flag me"));
    g_variant_dict_insert_value (&args, "add", g_variant_new_strv (add, -1));
    g_variant_builder_init (&changes, G_VARIANT_TYPE ("a(sa{sv})"));
    g_variant_builder_add (&changes, "(s@a{sv})", "flags", g_variant_dict_end (&args));
    g_assert_false (lb_bus_backend1_call_apply_changes_sync (f->proxy,
                                                             g_variant_builder_end (&changes),
                                                             NULL, &error));
    g_assert_error (error, G_DBUS_ERROR, G_DBUS_ERROR_INVALID_ARGS);
  }

  assert_matches_server (f, "alice@example.test", "work");
  g_assert_cmpint (stop_backend (f), ==, 0);
}

static void
test_errors (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GVariant) state = NULL;
  const char *kind = NULL;
  const char *message = NULL;
  gboolean action = FALSE;
  guint16 closed = lb_test_free_port ();

  write_account (f, "wrong", "imap", "carol@example.test", servers->imaps_port,
                 "not-her-password");
  write_account (f, "down", "imap", "alice@example.test", closed, "alice-password");
  start_backend (f);

  /* A refused password: the user must act; the reason names the account. */
  wait_state (f, "wrong", "error", 1);
  state = account_state (f, "wrong");
  g_variant_lookup (state, "error-kind", "&s", &kind);
  g_variant_lookup (state, "error", "&s", &message);
  g_variant_lookup (state, "needs-user-action", "b", &action);
  g_test_message ("wrong: %s", message);
  g_assert_cmpstr (kind, ==, "auth");
  g_assert_true (action);
  g_assert_nonnull (strstr (message, "wrong account"));
  {
    g_auto(Result) r = { 0 };

    /* letterbox-ctl status tells the user which account needs them. */
    run_ctl (f, &r, "status", NULL);
    g_test_message ("%s", r.out);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, "(needs your action)"));
    g_assert_nonnull (strstr (r.out, "  wrong "));
  }

  /* An unreachable server: retried by itself (100 ms, then 200, 400… ±25 %). */
  wait_state (f, "down", "error", 3);
  g_clear_pointer (&state, g_variant_unref);
  state = account_state (f, "down");
  g_variant_lookup (state, "error-kind", "&s", &kind);
  g_variant_lookup (state, "needs-user-action", "b", &action);
  g_assert_cmpstr (kind, ==, "network");
  g_assert_false (action);

  /* The password is corrected in the account file: the service notices and syncs. */
  write_account (f, "wrong", "imap", "carol@example.test", servers->imaps_port,
                 "carol-password");
  wait_state (f, "wrong", "online", 0);

  /* An account added while it runs is synced. */
  seed ("bob@example.test", "Added later", 1);
  write_account (f, "late", "imap", "bob@example.test", servers->imaps_port, "bob-password");
  wait_state (f, "late", "online", 0);
  assert_matches_server (f, "bob@example.test", "late");

  g_assert_cmpint (stop_backend (f), ==, 0);
}

static void
test_sigterm (Fixture       *f,
              gconstpointer  data)
{
  g_autofree char *check = NULL;
  guint n = 200;

  for (guint i = 1; i <= n; i++)
    seed ("alice@example.test", "Bulk", i);
  write_account (f, "work", "imap", "alice@example.test", servers->imaps_port,
                 "alice-password");
  start_backend (f);
  /* SIGTERM as soon as the first messages are in: in the middle of the sync. */
  {
    gint64 deadline = g_get_monotonic_time () + 20 * G_USEC_PER_SEC;
    gint64 count = 0;

    while (g_get_monotonic_time () < deadline &&
           (!lb_test_store_try_query_int (f->data_dir, "SELECT count(*) FROM messages m "
                                          "JOIN folders f ON f.id = m.folder_id "
                                          "WHERE f.account_id = 'work'", &count) ||
            count == 0))
      g_main_context_iteration (NULL, FALSE), g_usleep (2000);
    g_assert_cmpint (count, >, 0);
    g_test_message ("SIGTERM with %" G_GINT64_FORMAT " of %u messages in", count, n);
  }
  g_assert_cmpint (stop_backend (f), ==, 0);
  check = lb_test_store_query (f->data_dir, "PRAGMA integrity_check");
  g_assert_cmpstr (check, ==, "ok");

  /* The next start completes the sync: the store matches the server. */
  start_backend (f);
  wait_state (f, "work", "online", 0);
  assert_matches_server (f, "alice@example.test", "work");
  g_assert_cmpint (stop_backend (f), ==, 0);
}

/* How many messages of @user's INBOX have @subject, and the first one's header. */
static guint
server_find (const char  *user,
             const char  *subject,
             char       **header)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  guint n = 0;

  lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", user, "hdr",
                           "mailbox", "INBOX", "header", "Subject", subject, NULL);
  g_assert_no_error (error);
  for (const char *p = out; (p = strstr (p, "hdr:")) != NULL; p++)
    n++;
  if (header != NULL)
    *header = g_steal_pointer (&out);
  return n;
}

typedef struct
{
  const char *user;
  const char *subject;
} Delivered;

static gboolean
delivered (gpointer user_data)
{
  Delivered *d = user_data;

  return server_find (d->user, d->subject, NULL) > 0;
}

static gboolean
in_servers_sent (gpointer user_data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;

  lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", "alice@example.test",
                           "hdr", "mailbox", "Sent", "header", "Subject", (const char *) user_data,
                           NULL);
  return error == NULL && strstr (out, "hdr:") != NULL;
}

typedef struct
{
  Fixture *f;
  const char *queue_id;
} SendWait;

static gboolean
send_result_seen (gpointer user_data)
{
  SendWait *w = user_data;

  return g_hash_table_contains (w->f->send_results, w->queue_id);
}

/* "Queued ID." / "Sent ID." → ID */
static char *
queue_id_of (const char *out)
{
  const char *space = strchr (out, ' ');
  const char *end = space != NULL ? strpbrk (space + 1, ".;\n") : NULL;

  g_assert_nonnull (end);
  return g_strndup (space + 1, end - space - 1);
}

static void
test_send (Fixture       *f,
           gconstpointer  data)
{
  g_autofree char *to_bob = g_strdup ("From: Alice <alice@example.test>\n"
                                      "To: Bob <bob@example.test>\n"
                                      "Subject: Sent in-process\n"
                                      "\n"
                                      "Hello Bob.\n");
  g_autofree char *to_me = g_strdup_printf ("From: Alice <alice@example.test>\n"
                                            "To: %s@localhost\n"
                                            "Subject: For the local user\n"
                                            "\n"
                                            "Cron says hi.\n", g_get_user_name ());
  g_autofree char *queued_id = NULL;
  g_autofree char *stuck_id = NULL;
  g_autofree char *header = NULL;
  Delivered d = { "bob@example.test", "Sent through the service" };
  guint16 closed = lb_test_free_port ();

  clean_server ("carol@example.test");
  write_account_full (f, "work", "imap", "alice@example.test", servers->imaps_port,
                      "alice-password", servers->submissions_port);
  write_account_full (f, "down", "imap", "dave@example.test", closed, "dave-password", closed);

  /* Without the service: queued, sent before the command returns. */
  {
    g_auto(Result) r = { 0 };

    run_ctl_input (f, &r, to_bob, "send", "--account", "work", NULL);
    g_test_message ("%s%s", r.out, r.err);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.out, "Sent "));
    g_assert_cmpuint (server_find ("bob@example.test", "Sent in-process", NULL), ==, 1);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl_input (f, &r, to_me, "send", NULL);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.out, "Delivered "));
    g_assert_cmpint (lb_test_store_query_int (f->data_dir,
                                              "SELECT count(*) FROM messages m JOIN folders f "
                                              "ON f.id = m.folder_id WHERE f.account_id = "
                                              "'local' AND f.role = 'inbox' AND m.subject = "
                                              "'For the local user'"), ==, 1);
  }
  {
    g_auto(Result) r = { 0 };

    /* Nobody to send to: exit status 2 and a sentence. */
    run_ctl_input (f, &r, "Subject: nobody\n\nx\n", "send", NULL);
    g_assert_cmpint (r.status, ==, 2);
    g_assert_nonnull (strstr (r.err, "recipient"));
  }

  /* Through the service: Submit takes our stdin; Bcc goes to carol and nowhere else. */
  start_backend (f);
  {
    g_auto(Result) r = { 0 };
    SendWait w = { f, NULL };

    run_ctl_input (f, &r, "From: Alice <alice@example.test>\n"
                          "To: Bob <bob@example.test>\n"
                          "Bcc: carol@example.test\n"
                          "Subject: Sent through the service\n"
                          "\n"
                          "Hello again.\n", "send", NULL);
    g_test_message ("%s%s", r.out, r.err);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
    g_assert_true (g_str_has_prefix (r.out, "Queued "));
    queued_id = queue_id_of (r.out);
    w.queue_id = queued_id;
    g_assert_true (lb_test_wait_until (send_result_seen, &w, 20000));
    g_assert_cmpstr (g_hash_table_lookup (f->send_results, queued_id), ==, "sent");
    g_assert_true (lb_test_wait_until (delivered, &d, 10000));
    g_assert_cmpuint (server_find ("bob@example.test", "Sent through the service", &header), ==, 1);
    g_assert_null (strstr (header, "carol"));
    d.user = "carol@example.test";
    g_assert_true (lb_test_wait_until (delivered, &d, 10000));
    /* The Sent copy reaches the server by itself soon after (no poll for 600 s here). */
    g_assert_true (lb_test_wait_until (in_servers_sent, (gpointer) "Sent through the service",
                                       10000));
  }

  /* A server that is down: the message waits in the outbox, listed with its error, and
   * can be cancelled (once). */
  {
    g_auto(Result) r = { 0 };
    SendWait w = { f, NULL };

    run_ctl_input (f, &r, to_bob, "send", "--account", "down", NULL);
    g_assert_cmpint (r.status, ==, 0);
    stuck_id = queue_id_of (r.out);
    w.queue_id = stuck_id;
    g_assert_true (lb_test_wait_until (send_result_seen, &w, 20000));
    g_assert_cmpstr (g_hash_table_lookup (f->send_results, stuck_id), !=, "sent");
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (f, &r, "outbox", NULL);
    g_test_message ("%s", r.out);
    g_assert_cmpint (r.status, ==, 0);
    g_assert_nonnull (strstr (r.out, stuck_id));
    g_assert_nonnull (strstr (r.out, "queued"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (f, &r, "status", NULL);
    g_assert_nonnull (strstr (r.out, "Outbox:   1 waiting"));
    g_assert_nonnull (strstr (r.out, "relay.sock"));
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (f, &r, "outbox", "cancel", stuck_id, NULL);
    g_assert_cmpstr (r.err, ==, "");
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    /* Twice is no error; an id the outbox never had is "not found". */
    run_ctl (f, &r, "outbox", "cancel", stuck_id, NULL);
    g_assert_cmpint (r.status, ==, 0);
  }
  {
    g_auto(Result) r = { 0 };

    run_ctl (f, &r, "outbox", "cancel", "0123456789ABCDEF", NULL);
    g_assert_cmpint (r.status, ==, 6);
  }
  {
    g_auto(Result) r = { 0 };

    /* What was sent or cancelled is not listed. */
    run_ctl (f, &r, "outbox", NULL);
    g_assert_cmpstr (r.out, ==, "The outbox is empty.\n");
  }
  g_assert_cmpint (stop_backend (f), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  backend_path = g_getenv ("LB_BACKEND_PATH");
  ctl_path = g_getenv ("LB_CTL_PATH");
  g_assert_nonnull (backend_path);
  g_assert_nonnull (ctl_path);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  bus = lb_test_bus_start (NULL);

  g_test_add ("/backend-sync/accounts", Fixture, NULL, fixture_set_up, test_accounts,
              fixture_tear_down);
  g_test_add ("/backend-sync/push-and-changes", Fixture, NULL, fixture_set_up,
              test_push_and_changes, fixture_tear_down);
  g_test_add ("/backend-sync/errors", Fixture, NULL, fixture_set_up, test_errors,
              fixture_tear_down);
  g_test_add ("/backend-sync/sigterm", Fixture, NULL, fixture_set_up, test_sigterm,
              fixture_tear_down);
  g_test_add ("/backend-sync/send", Fixture, NULL, fixture_set_up, test_send,
              fixture_tear_down);
  status = g_test_run ();

  lb_test_bus_stop (bus);
  lb_test_servers_stop (servers);
  return status;
}
