/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lb-imap-sync.h"
#include "lb-mime.h"
#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-backend.h"
#include "lb-test-sync.h"

/* The journal's replay of bulk changes against a real Dovecot (issue 8): a few hundred
 * messages moved and moved back before any replay (with flag changes in between, and
 * moves on to a third folder) reach the server as the store has them; moves back made
 * while the replay of the first moves is on the wire are not lost either, nor after the
 * sync was killed between the server's MOVE and recording it; and the replay
 * of many changes is timed (figures in the log, never asserted).
 *
 * LB_REPLAY_MESSAGES (default 300), LB_REPLAY_FLAGS (default 2000) and LB_REPLAY_MOVES
 * (default 500) change the sizes; bench/imap-replay.sh runs 10 000 and 2 000. */

static LbTestServers *servers;

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  LbAccount *account;
  char *user;
} Fixture;

static guint
env_count (const char *name,
           guint       fallback)
{
  const char *value = g_getenv (name);

  return value != NULL && atoi (value) > 0 ? (guint) atoi (value) : fallback;
}

/* @count messages straight into the user's Maildir (doveadm save costs a process each),
 * in cur/ (Dovecot rescans new/ at every SELECT), then indexed by Dovecot. */
static void
seed (Fixture *f,
      guint    count)
{
  g_autofree char *local = g_strndup (f->user, strcspn (f->user, "@"));
  g_autofree char *home = g_build_filename (servers->dir, "mail", local, NULL);
  g_autofree char *maildir = g_build_filename (home, "Maildir", NULL);
  g_autofree char *cur_dir = g_build_filename (maildir, "cur", NULL);
  g_autoptr(GError) error = NULL;
  struct stat st;

  g_assert_cmpint (g_stat (home, &st), ==, 0);
  g_assert_cmpint (g_mkdir_with_parents (cur_dir, 0700), ==, 0);
  for (guint n = 1; n <= count; n++)
    {
      g_autofree char *name = g_strdup_printf ("%s/%u.M%uP1.replay:2,", cur_dir, 1700000000 + n,
                                               n);
      g_autofree char *text = g_strdup_printf ("From: Sender %u <sender%u@example.org>\r\n"
                                               "To: %s\r\n"
                                               "Subject: Replay message %u\r\n"
                                               "Message-ID: <replay-%u@example.org>\r\n"
                                               "Date: Mon, 1 Jan 2024 10:%02u:00 +0000\r\n"
                                               "\r\n"
                                               "Body of replay message %u.\r\n",
                                               n, n, f->user, n, n, n % 60, n);

      g_file_set_contents (name, text, -1, &error);
      g_assert_no_error (error);
      g_assert_cmpint (chown (name, st.st_uid, st.st_gid), ==, 0);
    }
  g_assert_cmpint (chown (cur_dir, st.st_uid, st.st_gid), ==, 0);
  g_assert_cmpint (chown (maildir, st.st_uid, st.st_gid), ==, 0);
  lb_test_servers_doveadm (servers, NULL, NULL, &error, "mailbox", "status", "-u", f->user,
                           "messages", "INBOX", NULL);
  g_assert_no_error (error);
}

static void
doveadm (const char *first,
         ...)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autofree char *script = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh",
                                             NULL);
  g_autoptr(GSubprocess) process = NULL;
  va_list ap;

  g_ptr_array_add (args, (gpointer) "bash");
  g_ptr_array_add (args, script);
  g_ptr_array_add (args, (gpointer) "doveadm");
  g_ptr_array_add (args, servers->dir);
  va_start (ap, first);
  for (const char *arg = first; arg != NULL; arg = va_arg (ap, const char *))
    g_ptr_array_add (args, (gpointer) arg);
  va_end (ap);
  g_ptr_array_add (args, NULL);
  process = g_subprocess_newv ((const char *const *) args->pdata, G_SUBPROCESS_FLAGS_NONE, &error);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait_check (process, NULL, &error));
  g_assert_no_error (error);
}

/* How many messages doveadm finds in @mailbox. */
static guint
server_count (Fixture    *f,
              const char *mailbox)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *out = NULL;
  guint n = 0;

  lb_test_servers_doveadm (servers, NULL, &out, &error, "search", "-u", f->user, "mailbox",
                           mailbox, "all", NULL);
  g_assert_no_error (error);
  for (const char *p = out; p != NULL && *p != '\0'; p++)
    n += *p == '\n';
  return n;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *local = NULL;

  f->dir = g_dir_make_tmp ("lb-replay-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->user = g_strdup (data);
  local = g_strndup (f->user, strcspn (f->user, "@"));
  /* The user's mail as a previous test left it goes (what is not there fails: ignored). */
  lb_test_servers_doveadm (servers, NULL, NULL, NULL, "mailbox", "delete", "-r", "-s", "-u",
                           f->user, "Archive", "Projects", NULL);
  lb_test_servers_doveadm (servers, NULL, NULL, NULL, "expunge", "-u", f->user, "mailbox", "*",
                           "all", NULL);
  f->account = lb_account_new ("work");
  f->account->display_name = g_strdup ("Work Mail");
  lb_account_add_identity (f->account, "Tester", f->user);
  f->account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, servers->host,
                                                servers->imaps_port, LB_NET_SECURITY_TLS);
  f->account->incoming->user = g_strdup (f->user);
  f->account->ca_file = g_strdup (servers->ca_file);
  f->account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  f->account->password_command = g_strdup_printf ("printf %%s %s-password", local);
  f->account->bodies = LB_ACCOUNT_BODIES_ON_DEMAND;
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_account_free (f->account);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f->user);
}

static void
sync_now (Fixture         *f,
          LbImapSync      *sync,
          LbImapSyncStats *stats)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_imap_sync_run_async (sync, LB_IMAP_SYNC_NONE, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_imap_sync_run_finish (sync, lb_test_wait_result (&w), stats, &error));
  g_assert_no_error (error);
  g_object_unref (w.result);
}

static gint64
query_int (Fixture    *f,
           const char *format,
           ...) G_GNUC_PRINTF (2, 3);

static gint64
query_int (Fixture    *f,
           const char *format,
           ...)
{
  g_autofree char *sql = NULL;
  va_list ap;

  va_start (ap, format);
  sql = g_strdup_vprintf (format, ap);
  va_end (ap);
  return lb_test_store_query_int (f->dir, sql);
}

static gint64
folder (Fixture    *f,
        const char *name)
{
  return query_int (f, "SELECT id FROM folders WHERE account_id = 'work' AND name = '%s'", name);
}

static gint64
message (Fixture *f,
         guint    n)
{
  return query_int (f, "SELECT id FROM messages WHERE message_id = 'replay-%u@example.org'", n);
}

typedef struct
{
  guint outstanding;
  guint failed;
} Ops;

static void
op_done (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Ops *ops = user_data;
  g_autoptr(GError) error = NULL;

  if (g_async_result_is_tagged (result, lb_store_writer_move_async))
    lb_store_writer_move_finish (LB_STORE_WRITER (source), result, &error);
  else
    lb_store_writer_change_flags_finish (LB_STORE_WRITER (source), result, &error);
  if (error != NULL)
    {
      g_printerr ("writer job failed: %s\n", error->message);
      ops->failed++;
    }
  ops->outstanding--;
}

static gboolean
ops_done (gpointer data)
{
  return ((Ops *) data)->outstanding == 0;
}

static void
move (Fixture *f,
      Ops     *ops,
      gint64   id,
      gint64   to)
{
  ops->outstanding++;
  lb_store_writer_move_async (f->writer, id, to, NULL, op_done, ops);
}

static void
flag (Fixture        *f,
      Ops            *ops,
      gint64          id,
      LbMessageFlags  set,
      LbMessageFlags  clear)
{
  ops->outstanding++;
  lb_store_writer_change_flags_async (f->writer, id, set, clear, NULL, op_done, ops);
}

static void
wait_ops (Ops *ops)
{
  g_assert_true (lb_test_wait_until (ops_done, ops, 60000));
  g_assert_cmpuint (ops->failed, ==, 0);
}

static void
assert_matches_server (Fixture *f)
{
  g_autofree char *server = lb_test_server_state (servers, f->user);
  g_autofree char *store = lb_test_store_state (f->dir, "work");

  g_assert_cmpstr (store, ==, server);
}

/* Moved to Archive and back (with a flag change in between for a third of them), moved to
 * Archive then Projects, or to Archive only — all before any replay. After one sync the
 * server's folders are the store's, the journal is empty and a second sync does nothing. */
static void
test_move_back (Fixture       *f,
                gconstpointer  data)
{
  guint count = env_count ("LB_REPLAY_MESSAGES", 300);
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  LbImapSyncStats stats = { 0 };
  Ops ops = { 0 };
  gint64 inbox, archive, projects;
  guint back = 0, on = 0, stay = 0;

  doveadm ("mailbox", "create", "-u", f->user, "Archive", "Projects", NULL);
  seed (f, count);
  sync_now (f, sync, &stats);
  g_assert_cmpuint (stats.new_messages, ==, count);
  inbox = folder (f, "INBOX");
  archive = folder (f, "Archive");
  projects = folder (f, "Projects");

  /* All to Archive (as a bulk move does), then the Undo. */
  for (guint n = 1; n <= count; n++)
    move (f, &ops, message (f, n), archive);
  wait_ops (&ops);
  for (guint n = 1; n <= count; n++)
    if (n % 3 == 0)
      flag (f, &ops, message (f, n), LB_MESSAGE_FLAG_SEEN, 0);
  wait_ops (&ops);
  for (guint n = 1; n <= count; n++)
    {
      if (n % 10 == 1)
        {
          move (f, &ops, message (f, n), projects);
          on++;
        }
      else if (n % 10 == 2)
        stay++;
      else
        {
          move (f, &ops, message (f, n), inbox);
          back++;
        }
    }
  wait_ops (&ops);
  /* No move entry without the UID it moves from. */
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal WHERE kind = 'move' AND "
                                 "payload LIKE '%%uint32 0,%%'"), ==, 0);

  sync_now (f, sync, &stats);
  g_test_message ("replayed %u, dropped %u", stats.replayed, stats.dropped);
  g_assert_cmpuint (stats.dropped, ==, 0);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  g_assert_cmpuint (server_count (f, "INBOX"), ==, back);
  g_assert_cmpuint (server_count (f, "Archive"), ==, stay);
  g_assert_cmpuint (server_count (f, "Projects"), ==, on);
  assert_matches_server (f);
  /* Every third message is \Seen there too (assert_matches_server compared the flags). */
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages m JOIN folders f ON "
                                 "f.id = m.folder_id WHERE f.account_id = 'work' AND "
                                 "m.flags & 1"), ==, count / 3);

  sync_now (f, sync, &stats);
  g_assert_cmpuint (stats.new_messages + stats.flag_updates + stats.expunged + stats.replayed +
                    stats.dropped, ==, 0);
  assert_matches_server (f);
}

typedef struct
{
  Fixture *f;
  gint64 inbox;
  guint next;
  guint count;
  Ops *ops;
  gboolean done;
} Racer;

static void
race_synced (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  Racer *r = user_data;
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };

  g_assert_true (lb_imap_sync_run_finish (LB_IMAP_SYNC (source), result, &stats, &error));
  g_assert_no_error (error);
  g_test_message ("racing sync: replayed %u, dropped %u", stats.replayed, stats.dropped);
  r->done = TRUE;
}

static gboolean
race_over (gpointer data)
{
  Racer *r = data;

  return r->done && r->next > r->count && r->ops->outstanding == 0;
}

/* The moves back are made while the sync replays the moves to Archive: some before the
 * journal is read, some while UID MOVE is on the wire, some after it was recorded. Each
 * must reach the server: after a second sync every message is back in the Inbox there. */
static void
test_move_back_racing (Fixture       *f,
                       gconstpointer  data)
{
  guint count = env_count ("LB_REPLAY_MESSAGES", 300);
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  LbImapSyncStats stats = { 0 };
  Ops ops = { 0 };
  Racer racer = { f, 0, 1, count, &ops, FALSE };
  gint64 archive;
  g_autoptr(GArray) ids = g_array_new (FALSE, FALSE, sizeof (gint64));

  doveadm ("mailbox", "create", "-u", f->user, "Archive", NULL);
  seed (f, count);
  sync_now (f, sync, &stats);
  racer.inbox = folder (f, "INBOX");
  archive = folder (f, "Archive");
  for (guint n = 1; n <= count; n++)
    {
      gint64 id = message (f, n);

      g_array_append_val (ids, id);
      move (f, &ops, id, archive);
    }
  wait_ops (&ops);

  lb_imap_sync_run_async (sync, LB_IMAP_SYNC_NONE, NULL, race_synced, &racer);
  /* One move back per event the sync's main loop handles (a server reply, a writer job):
   * spread over the whole run. */
  while (!race_over (&racer))
    {
      g_main_context_iteration (NULL, TRUE);
      for (guint k = 0; k < 3 && racer.next <= count; k++, racer.next++)
        move (f, &ops, g_array_index (ids, gint64, racer.next - 1), racer.inbox);
    }
  g_test_message ("after the racing sync: %" G_GINT64_FORMAT " journal entries, %u in Archive "
                  "on the server", query_int (f, "SELECT count(*) FROM journal"),
                  server_count (f, "Archive"));

  sync_now (f, sync, &stats);
  g_test_message ("second sync: replayed %u, dropped %u", stats.replayed, stats.dropped);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  g_assert_cmpuint (server_count (f, "Archive"), ==, 0);
  g_assert_cmpuint (server_count (f, "INBOX"), ==, count);
  assert_matches_server (f);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages m JOIN folders f ON "
                                 "f.id = m.folder_id WHERE f.account_id = 'work'"), ==, count);
  sync_now (f, sync, &stats);
  g_assert_cmpuint (stats.new_messages + stats.expunged + stats.replayed + stats.dropped, ==, 0);
}

/* letterbox-ctl syncs and is killed (SIGKILL) right after the server answered the batch's
 * UID MOVE, before the result may have been recorded; then the moves are undone in the
 * store. The next sync must take the messages back on the server too: the journal had
 * marked the moves as sent, so the Undo was recorded as moves of its own. */
static void
test_crash_then_undo (Fixture       *f,
                      gconstpointer  data)
{
  guint count = 40;
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  g_autoptr(GError) error = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GSubprocess) ctl = NULL;
  g_autofree char *config = g_dir_make_tmp ("lb-replay-config-XXXXXX", &error);
  g_autofree char *local = g_strndup (f->user, strcspn (f->user, "@"));
  g_autofree char *password = g_strdup_printf ("%s-password", local);
  LbTestAccount account = { .id = "work", .protocol = "imap", .user = f->user,
                            .port = servers->imaps_port, .password = password,
                            .bodies = "on-demand" };
  LbImapSyncStats stats = { 0 };
  Ops ops = { 0 };
  gint64 inbox, archive;

  g_assert_no_error (error);
  doveadm ("mailbox", "create", "-u", f->user, "Archive", NULL);
  seed (f, count);
  sync_now (f, sync, &stats);
  g_clear_object (&sync);
  inbox = folder (f, "INBOX");
  archive = folder (f, "Archive");
  for (guint n = 1; n <= count; n++)
    move (f, &ops, message (f, n), archive);
  wait_ops (&ops);

  /* The store's one writer is letterbox-ctl's now. */
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  lb_test_write_account (servers, config, &account);
  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
  g_subprocess_launcher_setenv (launcher, "LB_SYNC_CRASH_AT", "replay", TRUE);
  ctl = g_subprocess_launcher_spawn (launcher, &error, g_getenv ("LB_CTL_PATH"), "--local",
                                     "--config-dir", config, "--data-dir", f->dir, "sync",
                                     "work", NULL);
  g_assert_no_error (error);
  g_assert_true (g_subprocess_wait (ctl, NULL, &error));
  g_assert_true (g_subprocess_get_if_signaled (ctl));
  g_assert_cmpint (g_subprocess_get_term_sig (ctl), ==, SIGKILL);
  g_assert_cmpuint (server_count (f, "Archive"), ==, count);
  g_test_message ("killed after the MOVE: %" G_GINT64_FORMAT " moves still in the journal, "
                  "%" G_GINT64_FORMAT " marked as sent",
                  query_int (f, "SELECT count(*) FROM journal WHERE kind LIKE 'move%%'"),
                  query_int (f, "SELECT count(*) FROM journal WHERE kind = 'move-sent'"));

  /* The Undo, in a new writer. */
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  for (guint n = 1; n <= count; n++)
    move (f, &ops, message (f, n), inbox);
  wait_ops (&ops);

  sync = lb_imap_sync_new (f->account, f->writer);
  sync_now (f, sync, &stats);
  g_test_message ("after the restart: replayed %u, dropped %u", stats.replayed, stats.dropped);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  g_assert_cmpuint (server_count (f, "Archive"), ==, 0);
  g_assert_cmpuint (server_count (f, "INBOX"), ==, count);
  assert_matches_server (f);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages m JOIN folders f ON "
                                 "f.id = m.folder_id WHERE f.account_id = 'work'"), ==, count);
  lb_test_remove_tree (config);
}

/* Figures for issue 8: the replay of LB_REPLAY_FLAGS flag changes and LB_REPLAY_MOVES moves
 * (one sync each; the sync's other steps cost little next to it: shown as the no-change
 * resync). Checked for correctness, never for time. */
static void
test_figures (Fixture       *f,
              gconstpointer  data)
{
  guint flags = env_count ("LB_REPLAY_FLAGS", 2000);
  guint moves = MIN (env_count ("LB_REPLAY_MOVES", 500), flags);
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  LbImapSyncStats stats = { 0 };
  Ops ops = { 0 };
  gint64 archive, started, idle, flag_time, move_time;

  doveadm ("mailbox", "create", "-u", f->user, "Archive", NULL);
  seed (f, flags);
  sync_now (f, sync, &stats);
  archive = folder (f, "Archive");

  started = g_get_monotonic_time ();
  sync_now (f, sync, &stats);
  idle = g_get_monotonic_time () - started;

  for (guint n = 1; n <= flags; n++)
    flag (f, &ops, message (f, n), LB_MESSAGE_FLAG_SEEN | LB_MESSAGE_FLAG_FLAGGED, 0);
  wait_ops (&ops);
  started = g_get_monotonic_time ();
  sync_now (f, sync, &stats);
  flag_time = g_get_monotonic_time () - started;
  g_assert_cmpuint (stats.replayed, ==, flags);
  g_assert_cmpuint (server_count (f, "INBOX"), ==, flags);

  for (guint n = 1; n <= moves; n++)
    move (f, &ops, message (f, n), archive);
  wait_ops (&ops);
  started = g_get_monotonic_time ();
  sync_now (f, sync, &stats);
  move_time = g_get_monotonic_time () - started;
  g_assert_cmpuint (stats.replayed, ==, moves);
  g_assert_cmpuint (server_count (f, "Archive"), ==, moves);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  assert_matches_server (f);

  g_test_message ("FIGURES no-change sync %.1f ms; %u flag changes replayed in %.1f ms "
                  "(%.0f/s); %u moves replayed in %.1f ms (%.0f/s)",
                  idle / 1000.0, flags, flag_time / 1000.0, flags * 1e6 / MAX (flag_time, 1),
                  moves, move_time / 1000.0, moves * 1e6 / MAX (move_time, 1));
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();
  g_test_add ("/imap-replay/move-back", Fixture, "alice@example.test", fixture_set_up,
              test_move_back, fixture_tear_down);
  g_test_add ("/imap-replay/move-back-racing", Fixture, "bob@example.test", fixture_set_up,
              test_move_back_racing, fixture_tear_down);
  g_test_add ("/imap-replay/crash-then-undo", Fixture, "alice@example.test", fixture_set_up,
              test_crash_then_undo, fixture_tear_down);
  g_test_add ("/imap-replay/figures", Fixture, "carol@example.test", fixture_set_up,
              test_figures, fixture_tear_down);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  status = g_test_run ();
  lb_test_servers_stop (servers);
  return status;
}
