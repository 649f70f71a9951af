/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <string.h>

#include "lb-imap-session.h"
#include "lb-imap-sync.h"
#include "lb-mime.h"
#include "lb-store.h"
#include "lb-store-import.h"
#include "lb-store-writer.h"
#include "lb-test-sync.h"

/* IMAP account sync against a real Dovecot: the first sync brings every folder with
 * roles, flags and bodies byte for byte; a second changes nothing (and says QRESYNC);
 * another client's flag changes, expunges and new mail show up; operations made while
 * the server is unreachable are replayed once it is back; a UIDVALIDITY change loses
 * neither messages nor a pending local change; IDLE brings new mail within 2 s; a wrong
 * password names the account. */

static LbTestServers *servers;

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  LbAccount *account;
  char *user;
  const char *const *disabled; /* capabilities the syncs must do without */
} Fixture;

static char *
raw_message (const char *user,
             guint       n)
{
  return g_strdup_printf ("From: Sender %u <sender%u@example.org>\r\n"
                          "To: %s\r\n"
                          "Subject: Sync message %u\r\n"
                          "Message-ID: <sync-%u@example.org>\r\n"
                          "Date: Mon, 1 Jan 2024 10:%02u:00 +0000\r\n"
                          "\r\n"
                          "Body of sync message %u, word%u.\r\n",
                          n, n, user, n, n, n % 60, n, n);
}

static void
seed (Fixture    *f,
      const char *mailbox,
      guint       n)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *message = raw_message (f->user, n);

  lb_test_servers_doveadm (servers, message, NULL, &error, "save", "-u", f->user, "-m", mailbox,
                           NULL);
  g_assert_no_error (error);
}

static void
doveadm_args (gboolean  check,
              va_list   ap)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  g_autoptr(GSubprocess) process = NULL;
  g_autofree char *script = g_build_filename (g_getenv ("LB_FIXTURES_DIR"), "mailservers.sh",
                                             NULL);
  const char *arg;

  g_ptr_array_add (args, (gpointer) "bash");
  g_ptr_array_add (args, script);
  g_ptr_array_add (args, (gpointer) "doveadm");
  g_ptr_array_add (args, servers->dir);
  while ((arg = va_arg (ap, const char *)) != NULL)
    g_ptr_array_add (args, (gpointer) arg);
  g_ptr_array_add (args, NULL);
  process = g_subprocess_newv ((const char *const *) args->pdata,
                               check ? G_SUBPROCESS_FLAGS_NONE : G_SUBPROCESS_FLAGS_STDERR_SILENCE,
                               &error);
  g_assert_no_error (error);
  if (check)
    {
      g_assert_true (g_subprocess_wait_check (process, NULL, &error));
      g_assert_no_error (error);
    }
  else
    g_subprocess_wait (process, NULL, NULL);
}

static void
doveadm (Fixture *f,
         ...)
{
  va_list ap;

  va_start (ap, f);
  doveadm_args (TRUE, ap);
  va_end (ap);
}

/* For cleaning up what may not be there. */
static void
doveadm_try (Fixture *f,
             ...)
{
  va_list ap;

  va_start (ap, f);
  doveadm_args (FALSE, ap);
  va_end (ap);
}

static LbAccount *
make_account (const char *user,
              guint16     port)
{
  LbAccount *account = lb_account_new ("work");
  g_autofree char *local = g_strndup (user, strcspn (user, "@"));

  account->display_name = g_strdup ("Work Mail");
  lb_account_add_identity (account, "Tester", user);
  account->incoming = lb_account_server_new (LB_ACCOUNT_PROTOCOL_IMAP, servers->host, port,
                                             LB_NET_SECURITY_TLS);
  account->incoming->user = g_strdup (user);
  account->ca_file = g_strdup (servers->ca_file);
  account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  account->password_command = g_strdup_printf ("printf %%s %s-password", local);
  account->bodies = LB_ACCOUNT_BODIES_ALL;
  return account;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  static guint counter;

  f->dir = g_dir_make_tmp ("lb-sync-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  /* A fresh user per test: alice, bob and carol are the fixture's; the tests take turns
   * by deleting everything first. */
  f->user = g_strdup ("alice@example.test");
  for (guint i = 0; i < 7; i++)
    doveadm_try (f, "mailbox", "delete", "-r", "-s", "-u", f->user,
                 ((const char *[]) { "Archive", "Sent", "Receipts", "Lists", "Projects", "Mailing lists", "Temp" })[i], NULL);
  doveadm_try (f, "expunge", "-u", f->user, "mailbox", "*", "all", NULL);
  /* A different UIDVALIDITY each time, so that the tests do not depend on each other. */
  {
    g_autofree char *validity = g_strdup_printf ("%u", 1000 + ++counter);

    doveadm (f, "mailbox", "update", "-u", f->user, "--uid-validity", validity, "INBOX", NULL);
  }
  f->account = make_account (f->user, servers->imaps_port);
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

static gboolean
sync_account (Fixture          *f,
              LbImapSync       *sync,
              LbImapSyncFlags   flags,
              LbImapSyncStats  *stats,
              GError          **error)
{
  LbTestWait w = { 0 };
  gboolean ok;

  lb_imap_sync_run_async (sync, flags, NULL, lb_test_wait_cb, &w);
  ok = lb_imap_sync_run_finish (sync, lb_test_wait_result (&w), stats, error);
  g_object_unref (w.result);
  return ok;
}

static gboolean
sync_once (Fixture          *f,
           LbImapSyncFlags   flags,
           LbImapSyncStats  *stats,
           GError          **error)
{
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);

  lb_imap_sync_set_disabled_capabilities (sync, f->disabled);
  return sync_account (f, sync, flags, stats, error);
}

static char *
query (Fixture    *f,
       const char *sql)
{
  return lb_test_store_query (f->dir, sql);
}

static gint64
query_int (Fixture    *f,
           const char *sql)
{
  return lb_test_store_query_int (f->dir, sql);
}

static void
assert_matches_server (Fixture *f)
{
  g_autofree char *server = lb_test_server_state (servers, f->user);
  g_autofree char *store = lb_test_store_state (f->dir, "work");

  g_assert_cmpstr (store, ==, server);
}

static GBytes *
stored_body (Fixture *f,
             gint64   id)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) in = lb_store_open_body (f->store, id, &error);
  g_autoptr(GOutputStream) out = g_memory_output_stream_new_resizable ();

  g_assert_no_error (error);
  g_assert_cmpint (g_output_stream_splice (out, in, G_OUTPUT_STREAM_SPLICE_CLOSE_TARGET, NULL,
                                           &error), >, 0);
  return g_memory_output_stream_steal_as_bytes (G_MEMORY_OUTPUT_STREAM (out));
}

static gint64
message_row (Fixture *f,
             guint    n)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE message_id = "
                                          "'sync-%u@example.org'", n);

  return query_int (f, sql);
}

/* @data: the method the resyncs must use: "qresync", "condstore" (the server's QRESYNC
 * not used) or "uid-diff" (neither QRESYNC nor CONDSTORE). */
static void
test_initial_and_resync (Fixture       *f,
                         gconstpointer  data)
{
  static const char *const no_qresync[] = { "QRESYNC", NULL };
  static const char *const no_condstore[] = { "QRESYNC", "CONDSTORE", NULL };
  const char *method = data;
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  g_autofree char *roles = NULL;

  if (strcmp (method, "condstore") == 0)
    f->disabled = no_qresync;
  else if (strcmp (method, "uid-diff") == 0)
    f->disabled = no_condstore;
  doveadm (f, "mailbox", "create", "-u", f->user, "Archive", "Sent", "Lists", "Lists/GNOME", NULL);
  for (guint n = 1; n <= 12; n++)
    seed (f, n <= 9 ? "INBOX" : n <= 11 ? "Archive" : "Lists/GNOME", n);
  doveadm (f, "flags", "add", "-u", f->user, "\\Seen \\Flagged", "mailbox", "INBOX", "header", "Message-ID",
           "sync-2@example.org",
           NULL);
  doveadm (f, "flags", "add", "-u", f->user, "\\Answered", "mailbox", "Archive", "all", NULL);

  /* Headers only: every message listed, no body yet. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_HEADERS_ONLY, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, 12);
  g_assert_cmpuint (stats.bodies, ==, 0);
  assert_matches_server (f);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE body_state = 2 AND "
                                 "message_id LIKE 'sync-%'"), ==, 0);
  roles = query (f, "SELECT name || '=' || coalesce (role, '-') FROM folders WHERE "
                    "account_id = 'work' ORDER BY name");
  g_assert_cmpstr (roles, ==, "Archive=archive\nDrafts=drafts\nINBOX=inbox\nJunk=junk\nLists=-\nLists/GNOME=-\nSent=sent\nTrash=trash");
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE subject = 'Sync message 7'"),
                   ==, 1);

  /* Then the bodies, byte for byte as the server has them. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, 0);
  g_assert_cmpuint (stats.bodies, ==, 12);
  for (guint n = 1; n <= 12; n++)
    {
      g_autofree char *expected = raw_message (f->user, n);
      g_autoptr(GBytes) body = stored_body (f, message_row (f, n));

      g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), expected,
                       strlen (expected));
    }
  /* Searchable by a word only the body has. */
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages_fts WHERE messages_fts MATCH "
                                 "'word5'"), ==, 1);

  /* Nothing changed: nothing to do, found by the method asked for. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages + stats.bodies + stats.flag_updates + stats.expunged, ==, 0);
  g_assert_cmpstr (stats.method, ==, method);
  assert_matches_server (f);

  /* Another client: a flag, an expunge, new mail, a new folder. */
  doveadm (f, "flags", "add", "-u", f->user, "\\Seen", "mailbox", "INBOX", "header", "Message-ID",
           "sync-1@example.org", NULL);
  doveadm (f, "flags", "remove", "-u", f->user, "\\Flagged", "mailbox", "INBOX", "header", "Message-ID",
           "sync-2@example.org", NULL);
  doveadm (f, "expunge", "-u", f->user, "mailbox", "INBOX", "header", "Message-ID",
           "sync-3@example.org", NULL);
  doveadm (f, "mailbox", "create", "-u", f->user, "Receipts", NULL);
  seed (f, "INBOX", 13);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, 1);
  g_assert_cmpuint (stats.bodies, ==, 1);
  g_assert_cmpuint (stats.flag_updates, >=, 2);
  g_assert_cmpuint (stats.expunged, ==, 1);
  assert_matches_server (f);
  g_assert_cmpint (message_row (f, 3), ==, 0);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM folders WHERE account_id = 'work' AND "
                                 "name = 'Receipts'"), ==, 1);

  /* A folder deleted on the server goes here too, with its messages. */
  doveadm (f, "mailbox", "delete", "-r", "-s", "-u", f->user, "Lists", NULL);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  assert_matches_server (f);
  g_assert_cmpint (message_row (f, 12), ==, 0);
}

static gboolean
writer_op (Fixture *f,
           int      op,
           gint64   id,
           gint64   arg)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gboolean ok = FALSE;

  if (op == 0)
    {
      lb_store_writer_change_flags_async (f->writer, id, (LbMessageFlags) (arg & 0xff),
                                          (LbMessageFlags) (arg >> 8), NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_change_flags_finish (f->writer, lb_test_wait_result (&w), &error);
    }
  else if (op == 1)
    {
      lb_store_writer_move_async (f->writer, id, arg, NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_move_finish (f->writer, lb_test_wait_result (&w), &error);
    }
  else
    {
      lb_store_writer_expunge_async (f->writer, id, NULL, lb_test_wait_cb, &w);
      ok = lb_store_writer_expunge_finish (f->writer, lb_test_wait_result (&w), &error);
    }
  g_object_unref (w.result);
  g_assert_no_error (error);
  return ok;
}

/* Changes made while the server cannot be reached stay in the journal and are replayed,
 * in order, once it can; one whose message another client removed meanwhile is dropped. */
static void
test_offline_replay (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAccount) unreachable = NULL;
  LbImapSyncStats stats = { 0 };
  gint64 archive;

  doveadm (f, "mailbox", "create", "-u", f->user, "Archive", NULL);
  for (guint n = 1; n <= 5; n++)
    seed (f, "INBOX", n);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  archive = query_int (f, "SELECT id FROM folders WHERE account_id = 'work' AND name = 'Archive'");

  g_assert_true (writer_op (f, 0, message_row (f, 1), LB_MESSAGE_FLAG_SEEN | LB_MESSAGE_FLAG_FLAGGED));
  g_assert_true (writer_op (f, 1, message_row (f, 2), archive));
  g_assert_true (writer_op (f, 2, message_row (f, 3), 0));
  g_assert_true (writer_op (f, 0, message_row (f, 4), LB_MESSAGE_FLAG_SEEN));
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 4);
  /* Meanwhile another client deletes message 4. */
  {
    g_autofree char *sql = g_strdup_printf ("SELECT uid FROM messages WHERE id = %" G_GINT64_FORMAT,
                                            message_row (f, 4));
    g_autofree char *uid = query (f, sql);

    doveadm (f, "expunge", "-u", f->user, "mailbox", "INBOX", "uid", uid, NULL);
  }

  /* The server is unreachable (nothing listens on the port): an error naming the
   * account, and the journal untouched. */
  unreachable = make_account (f->user, 1);
  {
    g_autoptr(LbImapSync) sync = lb_imap_sync_new (unreachable, f->writer);

    g_assert_false (sync_account (f, sync, LB_IMAP_SYNC_NONE, &stats, &error));
    g_assert_nonnull (error);
    g_assert_nonnull (strstr (error->message, "Work Mail"));
    g_clear_error (&error);
  }
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 4);

  /* Reachable again: replayed, and the store matches the server. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.replayed, >=, 3);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  assert_matches_server (f);
  /* (The store matches the server, so these are the server's flags and folders.) */
  {
    g_autofree char *sql = g_strdup_printf ("SELECT f.name || ' ' || m.flags || ' ' || "
                                            "(m.uid IS NOT NULL) FROM messages m JOIN folders f "
                                            "ON f.id = m.folder_id WHERE m.id = %" G_GINT64_FORMAT,
                                            message_row (f, 1));
    g_autofree char *one = query (f, sql);
    g_autofree char *sql2 = g_strdup_printf ("SELECT f.name || ' ' || (m.uid IS NOT NULL) FROM "
                                             "messages m JOIN folders f ON f.id = m.folder_id "
                                             "WHERE m.id = %" G_GINT64_FORMAT, message_row (f, 2));
    g_autofree char *two = query (f, sql2);

    g_assert_cmpstr (one, ==, "INBOX 5 1");
    /* The moved message kept its row (and body), now with its UID in Archive. */
    g_assert_cmpstr (two, ==, "Archive 1");
  }
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE message_id LIKE 'sync-%'"),
                   ==, 3);

  /* A second sync changes nothing. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_cmpuint (stats.new_messages + stats.bodies + stats.flag_updates + stats.expunged +
                    stats.replayed, ==, 0);
}

/* The server renumbers the Inbox: no message is lost or doubled, a local change still
 * pending survives and reaches the server. */
static void
test_uidvalidity_change (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  gint64 kept;

  for (guint n = 1; n <= 6; n++)
    seed (f, "INBOX", n);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  kept = message_row (f, 5);
  g_assert_true (writer_op (f, 0, kept, LB_MESSAGE_FLAG_FLAGGED));

  doveadm (f, "mailbox", "update", "-u", f->user, "--uid-validity", "777777", "INBOX", NULL);
  {
    g_autofree char *sql = g_strdup_printf ("SELECT uid FROM messages WHERE id = %" G_GINT64_FORMAT,
                                            message_row (f, 6));
    g_autofree char *uid = query (f, sql);

    doveadm (f, "expunge", "-u", f->user, "mailbox", "INBOX", "uid", uid, NULL);
  }

  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.uidvalidity_resets, ==, 1);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE message_id LIKE 'sync-%'"),
                   ==, 5);
  g_assert_cmpint (query_int (f, "SELECT uidvalidity FROM folders WHERE account_id = 'work' AND "
                                 "name = 'INBOX'"), ==, 777777);
  /* The same row, its body kept. */
  g_assert_cmpint (message_row (f, 5), ==, kept);
  {
    g_autoptr(GBytes) body = stored_body (f, kept);

    g_assert_cmpuint (g_bytes_get_size (body), >, 0);
  }
  /* The flag change waited for the row's new UID; the next sync sends it. */
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  assert_matches_server (f);
  {
    g_autofree char *sql = g_strdup_printf ("SELECT flags FROM messages WHERE id = %"
                                            G_GINT64_FORMAT, kept);

    g_assert_cmpint (query_int (f, sql), ==, LB_MESSAGE_FLAG_FLAGGED);
  }
}

static gint64
folder_id (Fixture    *f,
           const char *name)
{
  g_autofree char *sql = g_strdup_printf ("SELECT id FROM folders WHERE account_id = 'work' AND "
                                          "name = '%s'", name);

  return query_int (f, sql);
}

/* Saving a draft, copying, and creating, renaming and deleting folders while offline: all
 * done here at once and on the server at the next sync, in order. */
static void
test_offline_folders_and_uploads (Fixture       *f,
                                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };
  g_autofree char *draft = raw_message (f->user, 70);
  gint64 draft_id, copy_id;
  LbTestWait w = { 0 };

  doveadm (f, "mailbox", "create", "-u", f->user, "Archive", "Lists", "Temp", NULL);
  seed (f, "INBOX", 61);
  seed (f, "Lists", 62);
  seed (f, "Temp", 63);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);

  /* A draft saved here. */
  {
    g_autoptr(GBytes) bytes = g_bytes_new (draft, strlen (draft));
    g_autoptr(GInputStream) in = g_memory_input_stream_new_from_bytes (bytes);
    LbStoreMessage *m = lb_store_message_from_bytes (bytes, folder_id (f, "Drafts"), &error);

    g_assert_no_error (error);
    g_clear_pointer (&m->import_key, g_free);
    m->flags = LB_MESSAGE_FLAG_DRAFT | LB_MESSAGE_FLAG_SEEN;
    lb_store_writer_append_async (f->writer, m, in, (goffset) g_bytes_get_size (bytes), NULL,
                                  lb_test_wait_cb, &w);
    draft_id = lb_store_writer_append_finish (f->writer, lb_test_wait_result (&w), &error);
    g_clear_object (&w.result);
    g_assert_no_error (error);
  }
  /* A copy into Archive, a folder made, one renamed, one deleted. */
  lb_store_writer_copy_async (f->writer, message_row (f, 61), folder_id (f, "Archive"), NULL,
                              lb_test_wait_cb, &w);
  copy_id = lb_store_writer_copy_finish (f->writer, lb_test_wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  lb_store_writer_create_folder_async (f->writer, "work", "Projects", NULL, lb_test_wait_cb, &w);
  g_assert_cmpint (lb_store_writer_create_folder_finish (f->writer, lb_test_wait_result (&w),
                                                         &error), >, 0);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  lb_store_writer_rename_folder_async (f->writer, folder_id (f, "Lists"), "Mailing lists", NULL,
                                       lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_rename_folder_finish (f->writer, lb_test_wait_result (&w),
                                                       &error));
  g_clear_object (&w.result);
  lb_store_writer_delete_folder_async (f->writer, folder_id (f, "Temp"), NULL, lb_test_wait_cb,
                                       &w);
  g_assert_true (lb_store_writer_delete_folder_finish (f->writer, lb_test_wait_result (&w),
                                                       &error));
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_cmpint (message_row (f, 63), ==, 0);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE message_id = "
                                 "'sync-61@example.org'"), ==, 2);

  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM journal"), ==, 0);
  assert_matches_server (f);
  {
    g_autofree char *folders = query (f, "SELECT name FROM folders WHERE account_id = 'work' "
                                         "ORDER BY name");

    g_assert_cmpstr (folders, ==, "Archive\nDrafts\nINBOX\nJunk\nMailing lists\nProjects\nSent\nTrash");
  }
  /* The draft is on the server, byte for byte, as the same row with its new UID. */
  {
    g_autofree char *out = NULL;
    g_autofree char *sql = g_strdup_printf ("SELECT uid IS NOT NULL FROM messages WHERE id = %"
                                            G_GINT64_FORMAT, draft_id);

    lb_test_servers_doveadm (servers, NULL, &out, &error, "fetch", "-u", f->user, "text",
                             "mailbox", "Drafts", "all", NULL);
    g_assert_no_error (error);
    g_assert_nonnull (strstr (out, "Subject: Sync message 70"));
    g_assert_cmpint (query_int (f, sql), ==, 1);
  }
  g_assert_cmpint (message_row (f, 62), >, 0);
  /* The copy made offline got its UID from COPYUID, the same row. */
  {
    g_autofree char *sql = g_strdup_printf ("SELECT uid IS NOT NULL FROM messages WHERE id = %"
                                            G_GINT64_FORMAT, copy_id);

    g_assert_cmpint (query_int (f, sql), ==, 1);
  }
  /* Deleting the original leaves the copy its body (they share it). */
  {
    g_autofree char *sql = g_strdup_printf ("SELECT id FROM messages WHERE message_id = "
                                            "'sync-61@example.org' AND id <> %" G_GINT64_FORMAT,
                                            copy_id);
    gint64 original = query_int (f, sql);

    lb_store_writer_expunge_async (f->writer, original, NULL, lb_test_wait_cb, &w);
    g_assert_true (lb_store_writer_expunge_finish (f->writer, lb_test_wait_result (&w), &error));
    g_clear_object (&w.result);
    g_assert_no_error (error);
    {
      g_autoptr(GBytes) kept = stored_body (f, copy_id);

      g_assert_cmpuint (g_bytes_get_size (kept), >, 0);
    }
  }

  /* A copy replayed as a server-side COPY. */
  lb_store_writer_copy_async (f->writer, message_row (f, 61), folder_id (f, "Projects"), NULL,
                              lb_test_wait_cb, &w);
  copy_id = lb_store_writer_copy_finish (f->writer, lb_test_wait_result (&w), &error);
  g_clear_object (&w.result);
  g_assert_no_error (error);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  assert_matches_server (f);
  {
    g_autofree char *sql = g_strdup_printf ("SELECT uid IS NOT NULL FROM messages WHERE id = %"
                                            G_GINT64_FORMAT, copy_id);

    g_assert_cmpint (query_int (f, sql), ==, 1);
  }
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_cmpuint (stats.new_messages + stats.bodies + stats.flag_updates + stats.expunged +
                    stats.replayed, ==, 0);
}

/* Bodies on demand: a sync brings headers only; opening a message fetches its body alone,
 * byte for byte, without marking it read on the server. */
static void
test_body_on_demand (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapSync) sync = NULL;
  LbImapSyncStats stats = { 0 };
  g_autofree char *expected = raw_message (f->user, 82);
  LbTestWait w = { 0 };
  gint64 id;

  f->account->bodies = LB_ACCOUNT_BODIES_ON_DEMAND;
  for (guint n = 81; n <= 83; n++)
    seed (f, "INBOX", n);
  g_assert_true (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (stats.new_messages, ==, 3);
  g_assert_cmpuint (stats.bodies, ==, 0);

  id = message_row (f, 82);
  sync = lb_imap_sync_new (f->account, f->writer);
  lb_imap_sync_fetch_body_async (sync, id, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_imap_sync_fetch_body_finish (sync, lb_test_wait_result (&w), &error));
  g_clear_object (&w.result);
  g_assert_no_error (error);
  {
    g_autoptr(GBytes) body = stored_body (f, id);

    g_assert_cmpmem (g_bytes_get_data (body, NULL), g_bytes_get_size (body), expected,
                     strlen (expected));
  }
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE body_state = 2 AND "
                                 "message_id LIKE 'sync-%'"), ==, 1);
  /* Not marked read anywhere. */
  assert_matches_server (f);
  g_assert_cmpint (query_int (f, "SELECT count(*) FROM messages WHERE flags & 1"), ==, 0);

  /* A message the server no longer has: a clear error. */
  {
    g_autofree char *sql = g_strdup_printf ("SELECT uid FROM messages WHERE id = %" G_GINT64_FORMAT,
                                            message_row (f, 83));
    g_autofree char *uid = query (f, sql);

    doveadm (f, "expunge", "-u", f->user, "mailbox", "INBOX", "uid", uid, NULL);
  }
  lb_imap_sync_fetch_body_async (sync, message_row (f, 83), NULL, lb_test_wait_cb, &w);
  g_assert_false (lb_imap_sync_fetch_body_finish (sync, lb_test_wait_result (&w), &error));
  g_clear_object (&w.result);
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_NONEXISTENT);
  g_assert_nonnull (strstr (error->message, "Work Mail"));
}

typedef struct
{
  guint synced;
  GError *error;
} Pushed;

static void
inbox_synced_cb (LbImapSync   *sync,
                 const GError *error,
                 gpointer      user_data)
{
  Pushed *pushed = user_data;

  if (error != NULL && pushed->error == NULL)
    pushed->error = g_error_copy (error);
  pushed->synced++;
}

typedef struct
{
  Fixture *f;
  guint n;
} Arrived;

static gboolean
arrived (gpointer data)
{
  Arrived *a = data;

  return message_row (a->f, a->n) != 0;
}

/* IDLE: new mail is in the store within 2 s without asking. */
static void
test_idle_push (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbImapSync) sync = lb_imap_sync_new (f->account, f->writer);
  LbImapSyncStats stats = { 0 };
  Pushed pushed = { 0 };
  Arrived a = { f, 42 };
  Arrived first = { f, 41 };
  gint64 start;

  seed (f, "INBOX", 1);
  g_assert_true (sync_account (f, sync, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_no_error (error);
  g_signal_connect (sync, "inbox-synced", G_CALLBACK (inbox_synced_cb), &pushed);
  lb_imap_sync_watch (sync);
  /* The first push may race the watcher's login; it is given time. The second is
   * timed from delivery. */
  seed (f, "INBOX", 41);
  g_assert_true (lb_test_wait_until (arrived, &first, 20000));
  start = g_get_monotonic_time ();
  seed (f, "INBOX", 42);
  g_assert_true (lb_test_wait_until (arrived, &a, 2000));
  g_test_message ("pushed in %.0f ms", (g_get_monotonic_time () - start) / 1000.0);
  g_assert_no_error (pushed.error);
  lb_imap_sync_unwatch (sync);
}

static void
test_wrong_password (Fixture       *f,
                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  LbImapSyncStats stats = { 0 };

  g_free (f->account->password_command);
  f->account->password_command = g_strdup ("printf %s wrong-password");
  g_assert_false (sync_once (f, LB_IMAP_SYNC_NONE, &stats, &error));
  g_assert_error (error, LB_IMAP_ERROR, LB_IMAP_ERROR_AUTH);
  g_assert_nonnull (strstr (error->message, "Work Mail"));
  g_test_message ("%s", error->message);
}

static void
test_guess_role (void)
{
  const char *const sent[] = { "\\HasNoChildren", "\\Sent", NULL };

  g_assert_cmpint (lb_imap_sync_guess_role ("INBOX", NULL), ==, LB_FOLDER_ROLE_INBOX);
  g_assert_cmpint (lb_imap_sync_guess_role ("Gesendet", NULL), ==, LB_FOLDER_ROLE_SENT);
  g_assert_cmpint (lb_imap_sync_guess_role ("INBOX.Trash", NULL), ==, LB_FOLDER_ROLE_TRASH);
  g_assert_cmpint (lb_imap_sync_guess_role ("Projects/Trash", NULL), ==, LB_FOLDER_ROLE_NONE);
  g_assert_cmpint (lb_imap_sync_guess_role ("Outbox-copies", sent), ==, LB_FOLDER_ROLE_SENT);
  g_assert_cmpint (lb_imap_sync_guess_role ("Spam", NULL), ==, LB_FOLDER_ROLE_JUNK);
  g_assert_cmpint (lb_imap_parse_internal_date ("17-Jul-1996 02:44:25 -0700"), ==, 837596665);
  g_assert_cmpint (lb_imap_parse_internal_date (" 1-Jan-2024 00:00:00 +0000"), ==, 1704067200);
  g_assert_cmpint (lb_imap_parse_internal_date ("1-Foo-2024 00:00:00 +0000"), ==, 0);
  g_assert_cmpint (lb_imap_parse_internal_date ("garbage"), ==, 0);
}

int
main (int   argc,
      char *argv[])
{
  g_autoptr(GError) error = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  lb_mime_init ();
  g_test_add_func ("/imap-sync/guess-role", test_guess_role);
  g_test_add ("/imap-sync/initial-and-resync/qresync", Fixture, "qresync", fixture_set_up,
              test_initial_and_resync, fixture_tear_down);
  g_test_add ("/imap-sync/initial-and-resync/condstore", Fixture, "condstore", fixture_set_up,
              test_initial_and_resync, fixture_tear_down);
  g_test_add ("/imap-sync/initial-and-resync/uid-diff", Fixture, "uid-diff", fixture_set_up,
              test_initial_and_resync, fixture_tear_down);
  g_test_add ("/imap-sync/offline-replay", Fixture, NULL, fixture_set_up, test_offline_replay,
              fixture_tear_down);
  g_test_add ("/imap-sync/offline-folders-and-uploads", Fixture, NULL, fixture_set_up,
              test_offline_folders_and_uploads, fixture_tear_down);
  g_test_add ("/imap-sync/body-on-demand", Fixture, NULL, fixture_set_up, test_body_on_demand,
              fixture_tear_down);
  g_test_add ("/imap-sync/uidvalidity-change", Fixture, NULL, fixture_set_up,
              test_uidvalidity_change, fixture_tear_down);
  g_test_add ("/imap-sync/idle-push", Fixture, NULL, fixture_set_up, test_idle_push,
              fixture_tear_down);
  g_test_add ("/imap-sync/wrong-password", Fixture, NULL, fixture_set_up, test_wrong_password,
              fixture_tear_down);

  servers = lb_test_servers_start (&error);
  g_assert_no_error (error);
  status = g_test_run ();
  lb_test_servers_stop (servers);
  return status;
}
