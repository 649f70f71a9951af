/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <glib/gstdio.h>
#include <sqlite3.h>
#include <string.h>

#include "lb-store.h"
#include "lb-test-util.h"

/* The store's foundation: creating, reopening and upgrading the index database, and the
 * Local Folders account every store starts with. */

typedef struct
{
  char *dir;
} Fixture;

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autofree char *base = g_dir_make_tmp ("lb-store-XXXXXX", &error);

  g_assert_no_error (error);
  /* A directory that does not exist yet, so that open must create it. */
  f->dir = g_build_filename (base, "nested", "letterbox", NULL);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_autofree char *base = g_path_get_dirname (f->dir);
  g_autofree char *top = g_path_get_dirname (base);

  lb_test_remove_tree (top);
  g_free (f->dir);
}

static char *
sql_string (const char *dir,
            const char *sql)
{
  g_autofree char *path = g_build_filename (dir, "index.db", NULL);
  sqlite3 *db = NULL;
  sqlite3_stmt *stmt = NULL;
  char *result = NULL;

  g_assert_cmpint (sqlite3_open_v2 (path, &db, SQLITE_OPEN_READONLY, NULL), ==, SQLITE_OK);
  /* The writer may be checkpointing: wait for its lock, as the store's readers do. */
  sqlite3_busy_timeout (db, 10000);
  g_assert_cmpint (sqlite3_prepare_v2 (db, sql, -1, &stmt, NULL), ==, SQLITE_OK);
  if (sqlite3_step (stmt) == SQLITE_ROW)
    result = g_strdup ((const char *) sqlite3_column_text (stmt, 0));
  sqlite3_finalize (stmt);
  sqlite3_close (db);
  return result;
}

static void
sql_exec (const char *dir,
          const char *sql)
{
  g_autofree char *path = g_build_filename (dir, "index.db", NULL);
  sqlite3 *db = NULL;

  g_assert_cmpint (sqlite3_open (path, &db), ==, SQLITE_OK);
  g_assert_cmpint (sqlite3_exec (db, sql, NULL, NULL, NULL), ==, SQLITE_OK);
  sqlite3_close (db);
}

static LbFolder *
find_role (GPtrArray    *folders,
           LbFolderRole  role)
{
  for (guint i = 0; i < folders->len; i++)
    if (lb_folder_get_role (g_ptr_array_index (folders, i)) == role)
      return g_ptr_array_index (folders, i);
  return NULL;
}

static void
test_create (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GPtrArray) messages = NULL;
  g_autofree char *mode = NULL;
  g_autofree char *version = NULL;
  g_autofree char *expected_version = NULL;
  LbMessageSummary *welcome;
  LbFolder *inbox;
  GStatBuf st;
  guint n_accounts = 0;

  g_assert_no_error (error);
  g_assert_nonnull (store);
  g_assert_cmpstr (lb_store_get_data_dir (store), ==, f->dir);

  /* Private to the user: mail is nobody else's business. */
  g_assert_cmpint (g_stat (f->dir, &st), ==, 0);
  g_assert_cmpint (st.st_mode & 0777, ==, 0700);

  mode = sql_string (f->dir, "PRAGMA journal_mode");
  g_assert_cmpstr (mode, ==, "wal");
  version = sql_string (f->dir, "PRAGMA user_version");
  expected_version = g_strdup_printf ("%u", lb_store_schema_version ());
  g_assert_cmpstr (version, ==, expected_version);

  g_assert_true (lb_store_count_accounts (store, &n_accounts, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (n_accounts, ==, 1);

  folders = lb_store_list_folders (store, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (folders->len, ==, 4);
  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);

      g_assert_cmpstr (lb_folder_get_account_id (folder), ==, LB_STORE_LOCAL_ACCOUNT_ID);
      g_assert_cmpstr (lb_folder_get_account_name (folder), ==, "Local Folders");
    }
  /* The Inbox comes first, the rest by role. */
  g_assert_cmpint (lb_folder_get_role (g_ptr_array_index (folders, 0)), ==, LB_FOLDER_ROLE_INBOX);
  g_assert_nonnull (find_role (folders, LB_FOLDER_ROLE_DRAFTS));
  g_assert_nonnull (find_role (folders, LB_FOLDER_ROLE_SENT));
  g_assert_nonnull (find_role (folders, LB_FOLDER_ROLE_TRASH));

  inbox = find_role (folders, LB_FOLDER_ROLE_INBOX);
  g_assert_cmpuint (lb_folder_get_total (inbox), ==, 1);
  g_assert_cmpuint (lb_folder_get_unread (inbox), ==, 1);
  g_assert_cmpuint (lb_folder_get_total (find_role (folders, LB_FOLDER_ROLE_TRASH)), ==, 0);

  messages = lb_store_list_messages (store, lb_folder_get_id (inbox), 0, 50, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (messages->len, ==, 1);
  welcome = g_ptr_array_index (messages, 0);
  g_assert_cmpstr (lb_message_summary_get_subject (welcome), ==, "Welcome to Letterbox");
  g_assert_cmpstr (lb_message_summary_get_sender (welcome), ==, "Letterbox");
  g_assert_cmpint (lb_message_summary_get_flags (welcome) & LB_MESSAGE_FLAG_SEEN, ==, 0);
  g_assert_cmpint (lb_message_summary_get_folder_id (welcome), ==, lb_folder_get_id (inbox));
  g_assert_cmpint (ABS (lb_message_summary_get_date (welcome) -
                        g_get_real_time () / G_USEC_PER_SEC), <, 600);
}

static void
test_reopen_keeps_one_local_account (Fixture       *f,
                                     gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  for (guint round = 0; round < 3; round++)
    {
      g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
      g_autoptr(GPtrArray) folders = NULL;

      g_assert_no_error (error);
      folders = lb_store_list_folders (store, &error);
      g_assert_no_error (error);
      g_assert_cmpuint (folders->len, ==, 4);
      g_assert_cmpuint (lb_folder_get_total (find_role (folders, LB_FOLDER_ROLE_INBOX)), ==, 1);
    }
}

/* The welcome message is greeted once, not once per reopening: a user who deleted it
 * must not see it come back. */
static void
test_reopen_does_not_resurrect_welcome (Fixture       *f,
                                        gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) first = lb_store_open (f->dir, &error);
  g_autoptr(LbStore) second = NULL;
  g_autoptr(GPtrArray) folders = NULL;

  g_assert_no_error (error);
  g_clear_object (&first);
  sql_exec (f->dir, "DELETE FROM messages");

  second = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  folders = lb_store_list_folders (second, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (lb_folder_get_total (find_role (folders, LB_FOLDER_ROLE_INBOX)), ==, 0);
}

static gpointer
open_in_thread (gpointer data)
{
  GError *error = NULL;
  LbStore *store = lb_store_open (data, &error);

  g_assert_no_error (error);
  return store;
}

/* The app, the backend and the CLI may all open a new store at the same moment. */
static void
test_concurrent_first_open (Fixture       *f,
                            gconstpointer  data)
{
  GThread *threads[4];
  g_autofree char *accounts = NULL;
  g_autofree char *folders = NULL;
  g_autofree char *messages = NULL;

  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    threads[i] = g_thread_new ("open", open_in_thread, f->dir);
  for (guint i = 0; i < G_N_ELEMENTS (threads); i++)
    g_object_unref (g_thread_join (threads[i]));

  accounts = sql_string (f->dir, "SELECT count(*) FROM accounts");
  folders = sql_string (f->dir, "SELECT count(*) FROM folders");
  messages = sql_string (f->dir, "SELECT count(*) FROM messages");
  g_assert_cmpstr (accounts, ==, "1");
  g_assert_cmpstr (folders, ==, "4");
  g_assert_cmpstr (messages, ==, "1");
}

static void
test_too_new (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
  g_autoptr(LbStore) again = NULL;

  g_assert_no_error (error);
  g_clear_object (&store);
  sql_exec (f->dir, "PRAGMA user_version = 999");

  again = lb_store_open (f->dir, &error);
  g_assert_null (again);
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_TOO_NEW);
  g_assert_nonnull (strstr (error->message, "newer version of Letterbox"));
}

/* A store made by the first schema, before any later migration, still opens. */
static void
test_upgrade_from_empty (Fixture       *f,
                         gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autofree char *path = NULL;

  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  path = g_build_filename (f->dir, "index.db", NULL);
  /* An empty database at version 0, as a crash between creating the file and the first
   * migration would leave it. */
  g_assert_true (g_file_set_contents (path, "", 0, NULL));

  store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  g_assert_nonnull (store);
}

static void
test_corrupt (Fixture       *f,
              gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autofree char *path = NULL;
  g_autofree char *junk = NULL;

  g_assert_cmpint (g_mkdir_with_parents (f->dir, 0700), ==, 0);
  path = g_build_filename (f->dir, "index.db", NULL);
  junk = g_strnfill (8192, 'x');
  g_assert_true (g_file_set_contents (path, junk, -1, NULL));

  store = lb_store_open (f->dir, &error);
  g_assert_null (store);
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_CORRUPT);
  g_assert_nonnull (strstr (error->message, path));
}

static void
test_directory_is_a_file (Fixture       *f,
                          gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = NULL;
  g_autofree char *parent = g_path_get_dirname (f->dir);

  g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
  g_assert_true (g_file_set_contents (f->dir, "not a directory", -1, NULL));

  store = lb_store_open (f->dir, &error);
  g_assert_null (store);
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_IO);
  g_assert_nonnull (strstr (error->message, f->dir));
}

typedef struct
{
  LbStore *store;
  GPtrArray *folders;
  GPtrArray *messages;
  GError *error;
} AsyncState;

static void
async_messages_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  AsyncState *state = user_data;

  state->messages = lb_store_list_messages_finish (LB_STORE (object), result, &state->error);
}

static void
async_folders_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  AsyncState *state = user_data;

  state->folders = lb_store_list_folders_finish (LB_STORE (object), result, &state->error);
  if (state->folders != NULL)
    lb_store_list_messages_async (state->store,
                                  lb_folder_get_id (g_ptr_array_index (state->folders, 0)),
                                  0, 10, NULL, async_messages_cb, state);
}

static void
async_open_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  AsyncState *state = user_data;

  state->store = lb_store_open_finish (result, &state->error);
  if (state->store != NULL)
    lb_store_list_folders_async (state->store, NULL, async_folders_cb, state);
}

static gboolean
async_done (gpointer user_data)
{
  AsyncState *state = user_data;

  return state->messages != NULL || state->error != NULL;
}

static void
test_async (Fixture       *f,
            gconstpointer  data)
{
  AsyncState state = { 0 };

  lb_store_open_async (f->dir, NULL, async_open_cb, &state);
  g_assert_true (lb_test_wait_until (async_done, &state, 20000));
  g_assert_no_error (state.error);
  g_assert_cmpuint (state.messages->len, ==, 1);

  g_ptr_array_unref (state.messages);
  g_ptr_array_unref (state.folders);
  g_object_unref (state.store);
}

static void
async_open_error_cb (GObject      *object,
                     GAsyncResult *result,
                     gpointer      user_data)
{
  AsyncState *state = user_data;

  state->store = lb_store_open_finish (result, &state->error);
  g_assert_null (state->store);
}

static gboolean
async_failed (gpointer user_data)
{
  return ((AsyncState *) user_data)->error != NULL;
}

static void
test_async_error (Fixture       *f,
                  gconstpointer  data)
{
  g_autofree char *parent = g_path_get_dirname (f->dir);
  AsyncState state = { 0 };

  g_assert_cmpint (g_mkdir_with_parents (parent, 0700), ==, 0);
  g_assert_true (g_file_set_contents (f->dir, "not a directory", -1, NULL));

  lb_store_open_async (f->dir, NULL, async_open_error_cb, &state);
  g_assert_true (lb_test_wait_until (async_failed, &state, 20000));
  g_assert_error (state.error, LB_STORE_ERROR, LB_STORE_ERROR_IO);
  g_clear_error (&state.error);
}

static void
test_paging (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
  g_autoptr(GPtrArray) first = NULL;
  g_autoptr(GPtrArray) second = NULL;
  g_autofree char *inbox = NULL;
  g_autofree char *sql = NULL;

  g_assert_no_error (error);
  inbox = sql_string (f->dir, "SELECT id FROM folders WHERE role = 'inbox'");
  sql = g_strdup_printf ("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                         "WHERE i < 25) INSERT INTO messages (folder_id, date, subject) "
                         "SELECT %s, 1000 + i, 'm' || i FROM n",
                         inbox);
  sql_exec (f->dir, sql);

  first = lb_store_list_messages (store, g_ascii_strtoll (inbox, NULL, 10), 0, 10, &error);
  g_assert_no_error (error);
  second = lb_store_list_messages (store, g_ascii_strtoll (inbox, NULL, 10), 10, 10, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (first->len, ==, 10);
  g_assert_cmpuint (second->len, ==, 10);
  /* Newest first: the welcome message (dated now), then m25, m24… */
  g_assert_cmpstr (lb_message_summary_get_subject (g_ptr_array_index (first, 1)), ==, "m25");
  g_assert_cmpstr (lb_message_summary_get_subject (g_ptr_array_index (second, 0)), ==, "m16");
}

static void
test_get_message (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
  g_autoptr(LbStoreMessage) welcome = NULL;
  g_autoptr(LbStoreMessage) m = NULL;
  g_autoptr(LbStoreMessage) missing = NULL;
  g_autofree char *welcome_id = NULL;
  g_autofree char *inbox = NULL;
  g_autofree char *sql = NULL;
  gint64 id;

  g_assert_no_error (error);
  welcome_id = sql_string (f->dir, "SELECT id FROM messages");
  inbox = sql_string (f->dir, "SELECT id FROM folders WHERE role = 'inbox'");
  welcome = lb_store_get_message (store, g_ascii_strtoll (welcome_id, NULL, 10), &error);
  g_assert_no_error (error);
  g_assert_cmpint (welcome->folder_id, ==, g_ascii_strtoll (inbox, NULL, 10));
  g_assert_cmpstr (welcome->sender, ==, "Letterbox");
  g_assert_cmpstr (welcome->subject, ==, "Welcome to Letterbox");
  g_assert_null (welcome->message_id);
  g_assert_cmpint (welcome->flags, ==, 0);

  sql = g_strdup_printf ("INSERT INTO messages (folder_id, uid, flags, date, sender, "
                         "sender_address, recipients, subject, preview, message_id, "
                         "in_reply_to, has_attachment, size, keywords) VALUES (%s, 7, 5, 1234, "
                         "'Alice', 'alice@example.org', 'Bob <bob@example.org>', 'Grüße', "
                         "'Hello', 'm1@example.org', 'm0@example.org', 1, 321, '$Label1')",
                         inbox);
  sql_exec (f->dir, sql);
  g_free (sql);
  sql = sql_string (f->dir, "SELECT max(id) FROM messages");
  id = g_ascii_strtoll (sql, NULL, 10);
  m = lb_store_get_message (store, id, &error);
  g_assert_no_error (error);
  g_assert_cmpuint (m->uid, ==, 7);
  g_assert_cmpint (m->flags, ==, LB_MESSAGE_FLAG_SEEN | LB_MESSAGE_FLAG_FLAGGED);
  g_assert_cmpint (m->date, ==, 1234);
  g_assert_cmpstr (m->sender, ==, "Alice");
  g_assert_cmpstr (m->sender_address, ==, "alice@example.org");
  g_assert_cmpstr (m->recipients, ==, "Bob <bob@example.org>");
  g_assert_cmpstr (m->subject, ==, "Grüße");
  g_assert_cmpstr (m->preview, ==, "Hello");
  g_assert_cmpstr (m->message_id, ==, "m1@example.org");
  g_assert_cmpstr (m->in_reply_to, ==, "m0@example.org");
  g_assert_cmpstr (m->keywords, ==, "$Label1");
  g_assert_true (m->has_attachment);
  g_assert_cmpuint (m->size, ==, 321);

  missing = lb_store_get_message (store, id + 1000, &error);
  g_assert_null (missing);
  g_assert_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND);
}

static void
test_counts (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbStore) store = lb_store_open (f->dir, &error);
  g_autofree char *inbox = NULL;
  g_autofree char *sql = NULL;
  LbStoreCounts counts = { 0 };

  g_assert_no_error (error);
  g_assert_true (lb_store_get_counts (store, &counts, &error));
  g_assert_no_error (error);
  /* Local Folders: four folders, the unread welcome message, nothing pending */
  g_assert_cmpuint (counts.accounts, ==, 1);
  g_assert_cmpuint (counts.folders, ==, 4);
  g_assert_cmpuint (counts.messages, ==, 1);
  g_assert_cmpuint (counts.unread, ==, 1);
  g_assert_cmpuint (counts.pending, ==, 0);

  inbox = sql_string (f->dir, "SELECT id FROM folders WHERE role = 'inbox'");
  sql = g_strdup_printf ("INSERT INTO messages (folder_id, flags, date) VALUES (%s, 1, 1), "
                         "(%s, 0, 2);"
                         "INSERT INTO accounts (id, kind, display_name) VALUES "
                         "('work', 'imap', 'Work');"
                         "INSERT INTO folders (account_id, name) VALUES ('work', 'INBOX');"
                         "INSERT INTO journal (account_id, kind, created) VALUES "
                         "('work', 'flags', 0), ('work', 'move', 0);",
                         inbox, inbox);
  sql_exec (f->dir, sql);
  g_assert_true (lb_store_get_counts (store, &counts, &error));
  g_assert_no_error (error);
  g_assert_cmpuint (counts.accounts, ==, 2);
  g_assert_cmpuint (counts.folders, ==, 5);
  g_assert_cmpuint (counts.messages, ==, 3);
  g_assert_cmpuint (counts.unread, ==, 2);
  g_assert_cmpuint (counts.pending, ==, 2);
}

static void
test_roles (void)
{
  for (LbFolderRole role = LB_FOLDER_ROLE_INBOX; role <= LB_FOLDER_ROLE_ARCHIVE; role++)
    g_assert_cmpint (lb_folder_role_from_string (lb_folder_role_to_string (role)), ==, role);
  g_assert_cmpint (lb_folder_role_from_string ("nonsense"), ==, LB_FOLDER_ROLE_NONE);
  g_assert_cmpint (lb_folder_role_from_string (NULL), ==, LB_FOLDER_ROLE_NONE);
}

static void
test_default_data_dir (void)
{
  g_autofree char *from_env = NULL;
  g_autofree char *from_xdg = NULL;
  g_autofree char *expected = g_build_filename (g_get_user_data_dir (), "letterbox", NULL);

  g_setenv ("LETTERBOX_DATA_DIR", "/srv/mail/store", TRUE);
  from_env = lb_store_default_data_dir ();
  g_assert_cmpstr (from_env, ==, "/srv/mail/store");

  g_unsetenv ("LETTERBOX_DATA_DIR");
  from_xdg = lb_store_default_data_dir ();
  g_assert_cmpstr (from_xdg, ==, expected);
}

#define ADD(path, func) \
  g_test_add (path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)

int
main (int   argc,
      char *argv[])
{
  g_autofree char *home = NULL;
  int status;

  g_test_init (&argc, &argv, NULL);
  home = lb_test_make_home ();

  ADD ("/store/create", test_create);
  ADD ("/store/reopen", test_reopen_keeps_one_local_account);
  ADD ("/store/reopen-no-resurrection", test_reopen_does_not_resurrect_welcome);
  ADD ("/store/concurrent-first-open", test_concurrent_first_open);
  ADD ("/store/upgrade-from-empty", test_upgrade_from_empty);
  ADD ("/store/error/too-new", test_too_new);
  ADD ("/store/error/corrupt", test_corrupt);
  ADD ("/store/error/directory-is-a-file", test_directory_is_a_file);
  ADD ("/store/async", test_async);
  ADD ("/store/async-error", test_async_error);
  ADD ("/store/paging", test_paging);
  ADD ("/store/get-message", test_get_message);
  ADD ("/store/counts", test_counts);
  g_test_add_func ("/store/roles", test_roles);
  g_test_add_func ("/store/default-data-dir", test_default_data_dir);

  status = g_test_run ();
  lb_test_remove_tree (home);
  return status;
}
