/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <signal.h>
#include <sqlite3.h>
#include <string.h>
#include <unistd.h>

#include "lb-account.h"
#include "lb-connection.h"
#include "lb-pop3-session.h"
#include "lb-pop3-sync.h"
#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"

/*
 * POP3 sync (sync/lb-pop3-sync.c) against the real Dovecot fixture: messages land in the
 * account's Inbox byte for byte as the server has them (dot-led lines, a 2 MB one);
 * leaving mail on the server downloads each message once, whatever is delivered later;
 * switching to delete removes everything from the server and keeps it here; delete
 * after N days removes only the old ones; a refused password names the account; the
 * content-key fallback for servers without UIDL, with two identical header blocks;
 * cancelling deletes nothing; and a child process killed with SIGKILL after k messages,
 * after the flush, after DELE, after QUIT and at random moments, then run again, loses
 * nothing, duplicates nothing and never has the server delete what the store lacks.
 */

static LbTestServers *servers;
static guint delivery_serial;

typedef struct
{
  const char *user;
  char *dir;               /* the store's data dir */
  LbStore *store;
  LbStoreWriter *writer;   /* NULL while a child process syncs */
  LbAccount *account;
  GHashTable *delivered;   /* SHA-256 of each message delivered → its bytes */
  gboolean distinct_ids;   /* every message delivered has its own Message-ID */
} Fixture;

/* ---- the server's side ---- */

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
  lb_test_servers_doveadm (servers, stdin_data, NULL, &error, argv[0], argv[1], argv[2], argv[3],
                           argv[4], argv[5], argv[6], argv[7], argv[8], argv[9], argv[10], NULL);
  g_assert_no_error (error);
}

static char *
password_of (const char *user)
{
  return g_strdup_printf ("%.*s-password", (int) strcspn (user, "@"), user);
}

static char *
sum_of (GBytes *bytes)
{
  return g_compute_checksum_for_bytes (G_CHECKSUM_SHA256, bytes);
}

/* Message @n: CRLF lines, some starting with a dot (dot-stuffed on the wire). */
static GBytes *
make_message (const char *user,
              guint       n,
              gsize       body_size)
{
  GString *msg = g_string_new (NULL);

  g_string_append_printf (msg, "From: Sender %u <sender%u@example.org>\r\nTo: %s\r\n"
                               "Subject: Sync test %u\r\nMessage-ID: <sync-%u@example.org>\r\n"
                               "Date: Tue, 14 Nov 2023 22:13:%02u +0000\r\n\r\n",
                          n, n, user, n, n, n % 60);
  for (guint line = 0; msg->len < body_size; line++)
    g_string_append_printf (msg, "%sline %u of message %u\r\n", line % 5 == 0 ? "." : "", line, n);
  return g_string_free_to_bytes (msg);
}

/* Writes @message straight into @user's Maildir, as a delivery would. */
static void
deliver_bytes (Fixture *f,
               GBytes  *message)
{
  g_autofree char *name = g_strndup (f->user, strcspn (f->user, "@"));
  g_autofree char *home = g_build_filename (servers->dir, "mail", name, NULL);
  g_autofree char *path = NULL;
  gsize len;
  const char *data = g_bytes_get_data (message, &len);
  GStatBuf st;

  g_assert_cmpint (g_stat (home, &st), ==, 0);
  delivery_serial++;
  path = g_strdup_printf ("%s/Maildir/cur/%u.M%uP%d.lbsync,S=%zu:2,", home,
                          1700000000 + delivery_serial, delivery_serial, (int) getpid (), len);
  g_assert_true (g_file_set_contents (path, data, (gssize) len, NULL));
  g_assert_cmpint (chown (path, st.st_uid, st.st_gid), ==, 0);
  g_hash_table_insert (f->delivered, sum_of (message), g_bytes_ref (message));
}

static void
deliver (Fixture *f,
         guint    count)
{
  for (guint i = 0; i < count; i++)
    {
      guint n = delivery_serial + 1;
      g_autoptr(GBytes) message = make_message (f->user, n, 200 + (n * 7919u) % 12000);

      deliver_bytes (f, message);
    }
}

static LbPop3Session *
logged_in (const char *user)
{
  g_autoptr(LbConnection) conn = lb_connection_new (servers->host, servers->pop3s_port,
                                                    LB_NET_SECURITY_TLS);
  g_autoptr(GError) error = NULL;
  g_autofree char *password = password_of (user);
  LbPop3Session *s;
  LbTestWait w = { 0 };

  lb_connection_set_ca_file (conn, servers->ca_file, &error);
  g_assert_no_error (error);
  s = lb_pop3_session_new (conn);
  lb_pop3_session_connect_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_connect_finish (s, lb_test_wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  lb_pop3_session_login_async (s, user, password, FALSE, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_login_finish (s, lb_test_wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  return s;
}

typedef struct
{
  GByteArray *bytes;
  GError *error;
  gboolean done;
} Fetch;

static gboolean
collect_sink (const guint8  *data,
              gsize          len,
              gpointer       user_data,
              GError       **error)
{
  g_byte_array_append (((Fetch *) user_data)->bytes, data, (guint) len);
  return TRUE;
}

static void
fetched_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  Fetch *fetch = user_data;

  lb_pop3_session_retrieve_finish (LB_POP3_SESSION (object), result, NULL, &fetch->error);
  fetch->done = TRUE;
}

typedef struct
{
  Fetch *fetches;
  guint count;
} Fetches;

static gboolean
all_fetched (gpointer user_data)
{
  Fetches *all = user_data;

  for (guint i = 0; i < all->count; i++)
    if (!all->fetches[i].done)
      return FALSE;
  return TRUE;
}

/* What the server holds now, seen by a separate session (RETRs pipelined): the SHA-256
 * of each message, every one of them one we delivered. */
static GHashTable *
server_sums (Fixture *f)
{
  g_autoptr(LbPop3Session) s = logged_in (f->user);
  g_autoptr(GError) error = NULL;
  GHashTable *sums = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
  LbTestWait w = { 0 };
  Fetches all = { NULL, 0 };

  lb_pop3_session_stat_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_stat_finish (s, lb_test_wait_result (&w), &all.count, NULL, &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  all.fetches = g_new0 (Fetch, all.count);
  for (guint i = 0; i < all.count; i++)
    {
      all.fetches[i].bytes = g_byte_array_new ();
      lb_pop3_session_retrieve_async (s, i + 1, collect_sink, &all.fetches[i], NULL, fetched_cb,
                                      &all.fetches[i]);
    }
  g_assert_true (lb_test_wait_until (all_fetched, &all, 60000));
  for (guint i = 0; i < all.count; i++)
    {
      g_autoptr(GBytes) bytes = g_byte_array_free_to_bytes (all.fetches[i].bytes);
      char *sum = sum_of (bytes);

      g_assert_no_error (all.fetches[i].error);
      g_assert_true (g_hash_table_contains (f->delivered, sum));
      g_hash_table_add (sums, sum);
    }
  g_free (all.fetches);
  lb_pop3_session_quit_async (s, NULL, lb_test_wait_cb, &w);
  lb_pop3_session_quit_finish (s, lb_test_wait_result (&w), NULL, &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  return sums;
}

/* ---- the store's side ---- */

static GBytes *
read_body (LbStore *store,
           gint64   id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) in = lb_store_open_body (store, id, &error);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_no_error (error);
  g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL, &error);
  g_assert_no_error (error);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static sqlite3 *
open_index (Fixture *f)
{
  g_autofree char *path = g_build_filename (f->dir, "index.db", NULL);
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READWRITE, NULL), ==, SQLITE_OK);
  sqlite3_busy_timeout (db, 10000);
  return db;
}

static gint64
query_int (sqlite3    *db,
           const char *sql,
           const char *text)
{
  sqlite3_stmt *s = NULL;
  gint64 value = -1;

  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &s, NULL), ==, SQLITE_OK);
  if (text != NULL)
    sqlite3_bind_text (s, 1, text, -1, SQLITE_TRANSIENT);
  if (sqlite3_step (s) == SQLITE_ROW)
    value = sqlite3_column_int64 (s, 0);
  sqlite3_finalize (s);
  return value;
}

/* Checks the account's Inbox: every message complete and byte for byte one we
 * delivered, none twice (by content, and by Message-ID when those are distinct).
 * Returns the SHA-256 of each. */
static GHashTable *
store_sums (Fixture *f)
{
  sqlite3 *db = open_index (f);
  sqlite3_stmt *s = NULL;
  GHashTable *sums = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);

  g_assert_cmpint (sqlite3_prepare_v2 (db, "SELECT m.id, m.body_state, m.import_key "
                                           "FROM messages m JOIN folders f ON f.id = m.folder_id "
                                           "WHERE f.account_id = ?1 AND f.name = 'Inbox'",
                                       -1, &s, NULL), ==, SQLITE_OK);
  sqlite3_bind_text (s, 1, f->account->id, -1, SQLITE_TRANSIENT);
  while (sqlite3_step (s) == SQLITE_ROW)
    {
      g_autoptr(GBytes) body = read_body (f->store, sqlite3_column_int64 (s, 0));
      g_autofree char *sum = sum_of (body);

      g_assert_cmpint (sqlite3_column_int (s, 1), ==, 2);
      g_assert_true (g_str_has_prefix ((const char *) sqlite3_column_text (s, 2), "pop3:"));
      g_assert_true (g_hash_table_contains (f->delivered, sum));
      g_assert_false (g_hash_table_contains (sums, sum));
      g_hash_table_add (sums, g_steal_pointer (&sum));
    }
  sqlite3_finalize (s);

  if (f->distinct_ids)
    g_assert_cmpint (query_int (db, "SELECT count(*) - count(DISTINCT m.message_id) "
                                    "FROM messages m JOIN folders f ON f.id = m.folder_id "
                                    "WHERE f.account_id = ?1", f->account->id), ==, 0);
  sqlite3_close (db);
  return sums;
}

static guint
store_count (Fixture *f)
{
  g_autoptr(GHashTable) sums = store_sums (f);

  return g_hash_table_size (sums);
}

static gint64
uidl_rows (Fixture *f)
{
  sqlite3 *db = open_index (f);
  gint64 n = query_int (db, "SELECT count(*) FROM pop3_uidls WHERE account_id = ?1",
                        f->account->id);

  sqlite3_close (db);
  return n;
}

/* Nothing lost: every message delivered is on the server or here (or both). Returns how
 * many the server holds. */
static guint
assert_nothing_lost (Fixture *f)
{
  g_autoptr(GHashTable) stored = store_sums (f);
  g_autoptr(GHashTable) on_server = server_sums (f);
  GHashTableIter iter;
  gpointer sum;

  g_hash_table_iter_init (&iter, f->delivered);
  while (g_hash_table_iter_next (&iter, &sum, NULL))
    g_assert_true (g_hash_table_contains (stored, sum) || g_hash_table_contains (on_server, sum));
  return g_hash_table_size (on_server);
}

/* ---- fixture ---- */

static LbAccount *
make_account (const char *user,
              const char *password)
{
  LbAccount *account = lb_account_new ("pop");

  account->display_name = g_strdup ("Bob’s POP box");
  lb_account_add_identity (account, "Bob", user);
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_POP3, servers->host,
                                             servers->pop3s_port, LB_NET_SECURITY_TLS);
  account->ca_file = g_strdup (servers->ca_file);
  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup_printf ("echo %s", password);
  account->leave_on_server = TRUE;
  return account;
}

static Fixture *
fixture_new (const char *user,
             gboolean    with_writer)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *password = password_of (user);
  Fixture *f = g_new0 (Fixture, 1);

  f->user = user;
  f->distinct_ids = TRUE;
  f->delivered = g_hash_table_new_full (g_str_hash, g_str_equal, g_free,
                                        (GDestroyNotify) g_bytes_unref);
  doveadm (NULL, "expunge", "-u", user, "mailbox", "INBOX", "all", NULL);
  f->dir = g_dir_make_tmp ("lb-pop3-sync-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  if (with_writer)
    {
      f->writer = lb_store_writer_new (f->dir, &error);
      g_assert_no_error (error);
    }
  f->account = make_account (user, password);
  return f;
}

static void
fixture_free (Fixture *f)
{
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_account_free (f->account);
  g_hash_table_unref (f->delivered);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
  g_free (f);
}

typedef struct
{
  guint emissions;
  guint first_total;
  guint done;
  guint total;
} Progress;

static void
progress_cb (LbPop3Sync *sync,
             guint       done,
             guint       total,
             gpointer    user_data)
{
  Progress *p = user_data;

  if (p->emissions++ == 0)
    p->first_total = total;
  g_assert_cmpuint (done, <=, total);
  p->done = done;
  p->total = total;
}

static gboolean
sync_account (Fixture         *f,
              LbPop3SyncStats *stats,
              Progress        *progress,
              GError         **error)
{
  g_autoptr(LbPop3Sync) sync = lb_pop3_sync_new (f->account, f->writer);
  LbTestWait w = { 0 };
  gboolean ok;

  if (progress != NULL)
    g_signal_connect (sync, "progress", G_CALLBACK (progress_cb), progress);
  lb_pop3_sync_run_async (sync, NULL, lb_test_wait_cb, &w);
  ok = lb_pop3_sync_run_finish (sync, lb_test_wait_result (&w), stats, error);
  g_object_unref (w.result);
  return ok;
}

static void
assert_sync (Fixture *f,
             guint    downloaded,
             guint    skipped,
             guint    deleted)
{
  g_autoptr(GError) error = NULL;
  LbPop3SyncStats stats = { 0 };

  g_assert_true (sync_account (f, &stats, NULL, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.downloaded, ==, downloaded);
  g_assert_cmpuint (stats.skipped_known, ==, skipped);
  g_assert_cmpuint (stats.deleted_on_server, ==, deleted);
}

/* ---- the tests ---- */

static void
test_leave_then_delete (void)
{
  Fixture *f = fixture_new ("bob@example.test", TRUE);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) big = make_message (f->user, 9999, 2 * 1024 * 1024);
  g_autoptr(GHashTable) stored = NULL;
  g_autoptr(GPtrArray) folders = NULL;
  LbPop3SyncStats stats = { 0 };
  Progress progress = { 0 };
  gboolean found = FALSE;

  deliver (f, 4);
  deliver_bytes (f, big);

  /* Everything, byte for byte, into the account's own Inbox; the server keeps it all. */
  g_assert_true (sync_account (f, &stats, &progress, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.downloaded, ==, 5);
  g_assert_cmpuint (stats.skipped_known, ==, 0);
  g_assert_cmpuint (stats.deleted_on_server, ==, 0);
  g_assert_cmpuint (progress.first_total, ==, 5);
  g_assert_cmpuint (progress.done, ==, 5);
  g_assert_cmpuint (progress.emissions, ==, 6);
  stored = store_sums (f);
  g_assert_cmpuint (g_hash_table_size (stored), ==, 5);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 5);
  g_assert_cmpint (uidl_rows (f), ==, 5);

  folders = lb_store_list_folders (f->store, &error);
  g_assert_no_error (error);
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      if (g_strcmp0 (lb_folder_get_account_id (folder), "pop") != 0)
        continue;
      found = TRUE;
      g_assert_cmpstr (lb_folder_get_name (folder), ==, "Inbox");
      g_assert_cmpint (lb_folder_get_role (folder), ==, LB_FOLDER_ROLE_INBOX);
      g_assert_cmpuint (lb_folder_get_total (folder), ==, 5);
    }
  g_assert_true (found);

  /* Once only. */
  assert_sync (f, 0, 5, 0);
  g_assert_cmpuint (store_count (f), ==, 5);

  /* Only what is new. */
  deliver (f, 2);
  assert_sync (f, 2, 5, 0);
  g_assert_cmpuint (store_count (f), ==, 7);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 7);

  /* Not leaving it on the server any more: all of it goes there, none of it here. */
  f->account->leave_on_server = FALSE;
  assert_sync (f, 0, 7, 7);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 0);
  g_assert_cmpuint (store_count (f), ==, 7);
  /* The UIDLs of what the server no longer has are forgotten. */
  g_assert_cmpint (uidl_rows (f), ==, 0);

  /* New mail is downloaded and removed in the same run. */
  deliver (f, 3);
  assert_sync (f, 3, 0, 3);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 0);
  g_assert_cmpuint (store_count (f), ==, 10);
  assert_sync (f, 0, 0, 0);
  fixture_free (f);
}

static void
test_delete_after_days (void)
{
  Fixture *f = fixture_new ("bob@example.test", TRUE);
  sqlite3 *db;

  f->account->delete_after_days = 3;
  deliver (f, 4);
  assert_sync (f, 4, 0, 0);

  /* Two of them were first downloaded five days ago, one exactly three days ago. */
  db = open_index (f);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE pop3_uidls SET first_seen = first_seen - 5 * 86400 "
                                     "WHERE uidl IN (SELECT uidl FROM pop3_uidls ORDER BY uidl "
                                     "LIMIT 2)", NULL, NULL, NULL), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, "UPDATE pop3_uidls SET first_seen = first_seen - 3 * 86400 "
                                     "WHERE uidl = (SELECT uidl FROM pop3_uidls ORDER BY uidl "
                                     "LIMIT 1 OFFSET 2)", NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);

  assert_sync (f, 0, 4, 3);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 1);
  g_assert_cmpuint (store_count (f), ==, 4);
  g_assert_cmpint (uidl_rows (f), ==, 1);
  fixture_free (f);
}

static void
test_wrong_password (void)
{
  Fixture *f = fixture_new ("bob@example.test", TRUE);
  g_autoptr(GError) error = NULL;
  LbPop3SyncStats stats = { 1, 1, 1 };

  lb_account_free (f->account);
  f->account = make_account (f->user, "not-bobs-password");
  deliver (f, 2);
  g_assert_false (sync_account (f, &stats, NULL, &error));
  g_assert_error (error, LB_POP3_ERROR, LB_POP3_ERROR_AUTH);
  g_test_message ("%s", error->message);
  g_assert_nonnull (strstr (error->message, "Account “Bob’s POP box”"));
  g_assert_nonnull (strstr (error->message, "refused the user name or password"));
  /* The server's own words. */
  g_assert_nonnull (strstr (error->message, "Authentication failed"));
  g_assert_cmpuint (stats.downloaded, ==, 0);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 2);
  g_assert_cmpuint (store_count (f), ==, 0);

  /* A server nobody listens on: named too, and a network error. */
  g_clear_error (&error);
  lb_account_free (f->account);
  f->account = make_account (f->user, "bob-password");
  f->account->incoming->host = (g_free (f->account->incoming->host), g_strdup ("127.0.0.1"));
  f->account->incoming->port = 9;
  g_assert_false (sync_account (f, NULL, NULL, &error));
  g_assert_true (error->domain == LB_NET_ERROR);
  g_assert_true (g_str_has_prefix (error->message, "Account “Bob’s POP box”: "));
  fixture_free (f);
}

static void
test_without_uidl (void)
{
  Fixture *f = fixture_new ("bob@example.test", TRUE);
  g_autoptr(GBytes) first = NULL;
  g_autoptr(GBytes) second = NULL;
  const char *head = "From: twin@example.org\r\nTo: bob@example.test\r\nSubject: Twins\r\n"
                     "Message-ID: <twin@example.org>\r\n\r\n";
  g_autofree char *one = g_strconcat (head, "The first twin.\r\n", NULL);
  g_autofree char *two = g_strconcat (head, "The second twin, a little longer.\r\n", NULL);

  /* Keys from TOP n 0: two messages with the same header block are still two. */
  g_setenv ("LB_POP3_SYNC_NO_UIDL", "1", TRUE);
  f->distinct_ids = FALSE;
  first = g_bytes_new_static (one, strlen (one));
  second = g_bytes_new_static (two, strlen (two));
  deliver (f, 3);
  deliver_bytes (f, first);
  deliver_bytes (f, second);
  assert_sync (f, 5, 0, 0);
  g_assert_cmpuint (store_count (f), ==, 5);
  assert_sync (f, 0, 5, 0);
  deliver (f, 1);
  assert_sync (f, 1, 5, 0);
  f->account->leave_on_server = FALSE;
  assert_sync (f, 0, 6, 6);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 0);
  g_assert_cmpuint (store_count (f), ==, 6);
  g_assert_cmpint (uidl_rows (f), ==, 0);
  g_unsetenv ("LB_POP3_SYNC_NO_UIDL");
  fixture_free (f);
}

typedef struct
{
  GCancellable *cancellable;
  guint at;
} CancelAt;

static void
cancel_progress_cb (LbPop3Sync *sync,
                    guint       done,
                    guint       total,
                    gpointer    user_data)
{
  CancelAt *c = user_data;

  if (done == c->at)
    g_cancellable_cancel (c->cancellable);
}

static void
test_cancel (void)
{
  Fixture *f = fixture_new ("bob@example.test", TRUE);
  g_autoptr(LbPop3Sync) sync = NULL;
  g_autoptr(GCancellable) cancellable = g_cancellable_new ();
  g_autoptr(GError) error = NULL;
  CancelAt at = { cancellable, 3 };
  LbPop3SyncStats stats = { 0 };
  LbTestWait w = { 0 };
  guint stored;

  f->account->leave_on_server = FALSE;
  deliver (f, 40);
  sync = lb_pop3_sync_new (f->account, f->writer);
  g_signal_connect (sync, "progress", G_CALLBACK (cancel_progress_cb), &at);
  lb_pop3_sync_run_async (sync, cancellable, lb_test_wait_cb, &w);
  g_assert_false (lb_pop3_sync_run_finish (sync, lb_test_wait_result (&w), &stats, &error));
  g_clear_object (&w.result);
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_cmpuint (stats.downloaded, >=, 3);
  g_assert_cmpuint (stats.downloaded, <, 40);
  g_assert_cmpuint (stats.deleted_on_server, ==, 0);

  /* What was stored stays; the server deleted nothing. */
  stored = store_count (f);
  g_assert_cmpuint (stored, ==, stats.downloaded);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 40);

  /* The object runs again, to the end. */
  g_clear_error (&error);
  lb_pop3_sync_run_async (sync, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_pop3_sync_run_finish (sync, lb_test_wait_result (&w), &stats, &error));
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_cmpuint (stats.downloaded, ==, 40 - stored);
  g_assert_cmpuint (stats.skipped_known, ==, stored);
  g_assert_cmpuint (stats.deleted_on_server, ==, 40);
  g_assert_cmpuint (store_count (f), ==, 40);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 0);
  fixture_free (f);
}

/* ---- crashes ---- */

typedef struct
{
  GSubprocess *process;
  GDataInputStream *out;
  guint stored;
  gboolean exited;
  char *last;
} Child;

static void
line_cb (GObject      *object,
         GAsyncResult *result,
         gpointer      user_data)
{
  Child *c = user_data;
  g_autofree char *line = g_data_input_stream_read_line_finish (G_DATA_INPUT_STREAM (object),
                                                                result, NULL, NULL);

  if (line == NULL)
    {
      c->exited = TRUE;
      return;
    }
  if (g_str_has_prefix (line, "stored "))
    c->stored++;
  g_free (c->last);
  c->last = g_steal_pointer (&line);
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, line_cb, c);
}

static Child *
child_start (Fixture    *f,
             const char *abort_after)
{
  g_autofree char *exe = g_test_build_filename (G_TEST_BUILT, "pop3-sync-child", NULL);
  g_autofree char *name = g_strconcat (f->account->id, ".ini", NULL);
  g_autofree char *account_file = g_build_filename (f->dir, name, NULL);
  g_autofree char *data = NULL;
  g_autoptr(GSubprocessLauncher) launcher = NULL;
  g_autoptr(GError) error = NULL;
  gsize len = 0;
  Child *c = g_new0 (Child, 1);

  launcher = g_subprocess_launcher_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE);
  data = lb_account_to_data (f->account, &len);
  g_assert_true (g_file_set_contents (account_file, data, (gssize) len, NULL));
  if (abort_after != NULL)
    g_subprocess_launcher_setenv (launcher, "LB_POP3_SYNC_ABORT_AFTER", abort_after, TRUE);
  else
    g_subprocess_launcher_unsetenv (launcher, "LB_POP3_SYNC_ABORT_AFTER");
  c->process = g_subprocess_launcher_spawn (launcher, &error, exe, f->dir, account_file, NULL);
  g_assert_no_error (error);
  c->out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (c->process));
  g_data_input_stream_read_line_async (c->out, G_PRIORITY_DEFAULT, NULL, line_cb, c);
  return c;
}

static gboolean
child_exited (gpointer user_data)
{
  return ((Child *) user_data)->exited;
}

static gboolean
child_stored_or_exited (gpointer user_data)
{
  Child *c = user_data;

  return c->stored > 0 || c->exited;
}

/* Waits for the child; returns whether SIGKILL ended it (else it must have exited 0). */
static gboolean
child_wait (Child *c)
{
  gboolean killed;

  g_assert_true (lb_test_wait_until (child_exited, c, 60000));
  g_subprocess_wait (c->process, NULL, NULL);
  killed = g_subprocess_get_if_signaled (c->process) &&
           g_subprocess_get_term_sig (c->process) == SIGKILL;
  if (!killed)
    g_assert_cmpint (g_subprocess_get_exit_status (c->process), ==, 0);
  return killed;
}

static void
child_free (Child *c)
{
  g_object_unref (c->out);
  g_object_unref (c->process);
  g_free (c->last);
  g_free (c);
}

static gboolean
flag_set (gpointer user_data)
{
  return *(gboolean *) user_data;
}

static gboolean
set_flag (gpointer user_data)
{
  *(gboolean *) user_data = TRUE;
  return G_SOURCE_REMOVE;
}

/* Runs a child to its end and returns its "done …" line. */
static char *
child_run (Fixture *f)
{
  Child *c = child_start (f, NULL);
  char *last;

  g_assert_false (child_wait (c));
  last = g_strdup (c->last);
  child_free (c);
  return last;
}

static void
test_crash (void)
{
  Fixture *f = fixture_new ("alice@example.test", FALSE);
  /* Up to WINDOW - 1 more may commit beside the k-th: these leave some of the 40 for
   * each round. */
  const char *const after_k[] = { "1", "5", "12" };
  const char *const steps[] = { "3", "flush", "dele", "quit" };
  g_autofree char *done = NULL;
  guint previous = 0;
  guint killed = 0;

  deliver (f, 40);

  /* Leaving mail on the server: killed after k messages were committed. */
  for (guint i = 0; i < G_N_ELEMENTS (after_k); i++)
    {
      Child *c = child_start (f, after_k[i]);
      guint n;

      g_assert_true (child_wait (c));
      g_assert_cmpuint (c->stored, ==, g_ascii_strtoull (after_k[i], NULL, 10));
      child_free (c);
      n = store_count (f);
      g_test_message ("killed after %s: %u stored", after_k[i], n);
      g_assert_cmpuint (n, >=, g_ascii_strtoull (after_k[i], NULL, 10));
      g_assert_cmpuint (n, >=, previous);
      previous = n;
      g_assert_cmpuint (assert_nothing_lost (f), ==, 40);
    }

  /* …and at random moments once it has stored something, each time with new mail. */
  for (guint round = 0; round < 4; round++)
    {
      Child *c;
      gboolean waited = FALSE;
      guint n;

      deliver (f, 20);
      c = child_start (f, NULL);

      g_assert_true (lb_test_wait_until (child_stored_or_exited, c, 60000));
      g_timeout_add (g_test_rand_int_range (0, 30), set_flag, &waited);
      g_assert_true (lb_test_wait_until (flag_set, &waited, 1000));
      if (!c->exited)
        {
          g_subprocess_force_exit (c->process);
          killed++;
        }
      g_assert_true (lb_test_wait_until (child_exited, c, 60000));
      g_subprocess_wait (c->process, NULL, NULL);
      child_free (c);
      n = store_count (f);
      g_test_message ("round %u: %u stored", round, n);
      g_assert_cmpuint (n, >=, previous);
      previous = n;
      g_assert_cmpuint (assert_nothing_lost (f), ==, 60 + 20 * round);
    }
  g_test_message ("%u of 4 killed from outside", killed);

  /* To the end: all 120, once each; a second run finds nothing new. */
  g_free (done);
  done = child_run (f);
  g_assert_cmpuint (store_count (f), ==, 120);
  g_free (done);
  done = child_run (f);
  g_assert_cmpstr (done, ==, "done 0 120 0");

  /* Deleting from the server: killed after k messages, after the flush, after DELE and
   * after QUIT. Never is a message gone from the server that is not stored here. */
  f->account->leave_on_server = FALSE;
  deliver (f, 10);
  for (guint i = 0; i < G_N_ELEMENTS (steps); i++)
    {
      Child *c = child_start (f, steps[i]);
      guint on_server;

      g_assert_true (child_wait (c));
      child_free (c);
      on_server = assert_nothing_lost (f);
      g_test_message ("killed after %s: %u stored, %u on the server", steps[i], store_count (f),
                      on_server);
      /* The server removes mail only when QUIT is answered. */
      g_assert_cmpuint (on_server, ==, strcmp (steps[i], "quit") == 0 ? 0 : 130);
      if (strcmp (steps[i], "3") != 0)
        g_assert_cmpuint (store_count (f), ==, 130);
    }
  g_free (done);
  done = child_run (f);
  g_assert_cmpstr (done, ==, "done 0 0 0");
  g_assert_cmpuint (store_count (f), ==, 130);
  g_assert_cmpint (uidl_rows (f), ==, 0);

  /* Killed after k with deletion on: the next run deletes exactly what is stored. */
  deliver (f, 12);
  {
    Child *c = child_start (f, "5");

    g_assert_true (child_wait (c));
    child_free (c);
  }
  g_assert_cmpuint (assert_nothing_lost (f), ==, 12);
  g_free (done);
  done = child_run (f);
  g_assert_cmpuint (assert_nothing_lost (f), ==, 0);
  g_assert_cmpuint (store_count (f), ==, 142);
  fixture_free (f);
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
  g_unsetenv ("LB_POP3_SYNC_ABORT_AFTER");
  g_unsetenv ("LB_POP3_SYNC_NO_UIDL");

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);

  g_test_add_func ("/pop3-sync/leave-then-delete", test_leave_then_delete);
  g_test_add_func ("/pop3-sync/delete-after-days", test_delete_after_days);
  g_test_add_func ("/pop3-sync/wrong-password", test_wrong_password);
  g_test_add_func ("/pop3-sync/without-uidl", test_without_uidl);
  g_test_add_func ("/pop3-sync/cancel", test_cancel);
  g_test_add_func ("/pop3-sync/crash", test_crash);

  status = g_test_run ();

  lb_test_servers_stop (servers);
  lb_test_remove_tree (home);
  return status;
}
