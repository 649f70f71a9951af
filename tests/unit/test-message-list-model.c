/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"
#include "letterbox-message-list-model.h"

/* The message list's paging model against a real store: counts, pages read on demand
 * and bounded in memory, placeholders filled in place, refreshes that emit only what
 * changed, the unified Inbox, search, and conversations. No display needed. */

#define BASE_DATE 1700000000

typedef struct
{
  guint position;
  guint removed;
  guint added;
} Change;

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  gint64 folder;
  LetterboxMessageListModel *model;
  GArray *changes;
  guint notifies;
} Fixture;

static gint64
ensure_folder (LbStoreWriter *writer,
               const char    *account,
               const char    *name,
               LbFolderRole   role)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_ensure_folder_async (writer, account, "imap", account, name, role, NULL,
                                       lb_test_wait_cb, &w);
  id = lb_store_writer_ensure_folder_finish (writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return id;
}

/* Message @n of a folder: date BASE_DATE + @n, so the list's order is known; every
 * @thread_every-th message (if not 0) answers the one before it. */
static LbStoreMessage *
message (gint64      folder,
         const char *tag,
         guint       n,
         guint       thread_every)
{
  LbStoreMessage *m = lb_store_message_new ();

  m->folder_id = folder;
  m->uid = n + 1;
  m->subject = g_strdup_printf ("%s subject %u", tag, n);
  m->sender = g_strdup (n % 3 == 0 ? "Alice Example" : "Bob Example");
  m->sender_address = g_strdup (n % 3 == 0 ? "alice@example.org" : "bob@example.org");
  m->preview = g_strdup_printf ("preview %u", n);
  m->message_id = g_strdup_printf ("%s-%u@example.org", tag, n);
  if (thread_every > 0 && n % thread_every != 0)
    m->in_reply_to = g_strdup_printf ("%s-%u@example.org", tag, n - 1);
  m->date = BASE_DATE + n;
  m->flags = n % 2 == 0 ? LB_MESSAGE_FLAG_SEEN : 0;
  m->has_attachment = n % 5 == 0;
  return m;
}

static void
add_messages (Fixture    *f,
              gint64      folder,
              const char *tag,
              guint       first,
              guint       last,
              guint       thread_every)
{
  /* add_many takes the array. */
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  for (guint n = first; n <= last; n++)
    g_ptr_array_add (list, message (folder, tag, n, thread_every));
  lb_store_writer_add_many_async (f->writer, list, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_add_many_finish (f->writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
items_changed_cb (GListModel *model,
                  guint       position,
                  guint       removed,
                  guint       added,
                  Fixture    *f)
{
  Change c = { position, removed, added };

  g_array_append_val (f->changes, c);
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("lb-list-model-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->folder = ensure_folder (f->writer, "acct", "Lists", LB_FOLDER_ROLE_NONE);
  f->model = letterbox_message_list_model_new ();
  f->changes = g_array_new (FALSE, FALSE, sizeof (Change));
  g_signal_connect (f->model, "items-changed", G_CALLBACK (items_changed_cb), f);
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  g_clear_object (&f->model);
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  g_array_unref (f->changes);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
}

static gboolean
model_idle (gpointer user_data)
{
  return !letterbox_message_list_model_get_busy (user_data);
}

static void
wait_idle (Fixture *f)
{
  g_assert_true (lb_test_wait_until (model_idle, f->model, 10000));
}

static LetterboxMessageItem *
item_at (Fixture *f,
         guint    position)
{
  LetterboxMessageItem *item = g_list_model_get_item (G_LIST_MODEL (f->model), position);

  g_assert_nonnull (item);
  /* The caller keeps a borrowed pointer; the model and the test's array hold it. */
  g_object_unref (item);
  return item;
}

/* The summary at @position once read: waits for the row to be filled. */
static LbMessageSummary *
summary_at (Fixture *f,
            guint    position)
{
  g_autoptr(LetterboxMessageItem) item = g_list_model_get_item (G_LIST_MODEL (f->model),
                                                                position);

  g_assert_nonnull (item);
  wait_idle (f);
  g_assert_nonnull (letterbox_message_item_get_summary (item));
  return letterbox_message_item_get_summary (item);
}

static void
show_folder (Fixture *f,
             gint64   folder)
{
  letterbox_message_list_model_show_folders (f->model, f->store, &folder, 1);
  g_assert_true (letterbox_message_list_model_get_loading (f->model));
  wait_idle (f);
  g_assert_false (letterbox_message_list_model_get_loading (f->model));
  g_assert_null (letterbox_message_list_model_get_error (f->model));
  g_array_set_size (f->changes, 0);
}

static void
assert_changes (Fixture     *f,
                const Change *expected,
                guint         n)
{
  if (f->changes->len != n)
    {
      for (guint i = 0; i < f->changes->len; i++)
        {
          Change *c = &g_array_index (f->changes, Change, i);

          g_test_message ("items-changed (%u, %u, %u)", c->position, c->removed, c->added);
        }
      g_assert_cmpuint (f->changes->len, ==, n);
    }
  for (guint i = 0; i < n; i++)
    {
      Change *c = &g_array_index (f->changes, Change, i);

      g_assert_cmpuint (c->position, ==, expected[i].position);
      g_assert_cmpuint (c->removed, ==, expected[i].removed);
      g_assert_cmpuint (c->added, ==, expected[i].added);
    }
  g_array_set_size (f->changes, 0);
}

/* One query counts, the first page comes with it, and nothing else is read. */
static void
test_count (Fixture       *f,
            gconstpointer  data)
{
  add_messages (f, f->folder, "c", 0, 999, 0);
  letterbox_message_list_model_set_page_size (f->model, 100, 4);
  letterbox_message_list_model_show_folders (f->model, f->store, &f->folder, 1);
  wait_idle (f);

  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 1000);
  g_assert_cmpuint (f->changes->len, ==, 1);
  g_assert_cmpuint (letterbox_message_list_model_get_n_pages (f->model), ==, 1);
  g_assert_cmpuint (letterbox_message_list_model_get_n_loaded_rows (f->model), ==, 100);
  g_assert_true (g_list_model_get_item_type (G_LIST_MODEL (f->model)) ==
                 LETTERBOX_TYPE_MESSAGE_ITEM);
  g_assert_null (g_list_model_get_item (G_LIST_MODEL (f->model), 1000));

  /* An empty folder: counted, no rows. */
  {
    gint64 empty = ensure_folder (f->writer, "acct", "Empty", LB_FOLDER_ROLE_NONE);

    show_folder (f, empty);
    g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 0);
  }
}

static void
assert_row (LbMessageSummary *s,
            guint             n)
{
  g_autofree char *subject = g_strdup_printf ("p subject %u", n);

  g_assert_cmpint (lb_message_summary_get_date (s), ==, BASE_DATE + n);
  g_assert_cmpstr (lb_message_summary_get_subject (s), ==, subject);
  g_assert_cmpint (lb_message_summary_get_has_attachment (s), ==, n % 5 == 0);
  g_assert_cmpint ((lb_message_summary_get_flags (s) & LB_MESSAGE_FLAG_SEEN) != 0, ==,
                   n % 2 == 0);
}

/* Pages at the start, middle and end hold the right rows, newest first; the pages kept
 * stay bounded however far the list is walked. */
static void
test_paging (Fixture       *f,
             gconstpointer  data)
{
  add_messages (f, f->folder, "p", 0, 2499, 0);
  letterbox_message_list_model_set_page_size (f->model, 100, 4);
  show_folder (f, f->folder);

  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 2500);
  assert_row (summary_at (f, 0), 2499);
  assert_row (summary_at (f, 99), 2400);
  assert_row (summary_at (f, 100), 2399);
  assert_row (summary_at (f, 1250), 1249);
  assert_row (summary_at (f, 2499), 0);

  /* Walk every row, as a scroll from top to bottom would. */
  for (guint p = 0; p < 2500; p += 7)
    {
      g_autoptr(GObject) item = g_list_model_get_item (G_LIST_MODEL (f->model), p);

      g_assert_cmpuint (letterbox_message_list_model_get_n_pages (f->model), <=, 4);
    }
  wait_idle (f);
  g_assert_cmpuint (letterbox_message_list_model_get_n_loaded_rows (f->model), <=, 400);
  assert_row (summary_at (f, 2000), 499);
  /* Walking the list changes no row count. */
  g_assert_cmpuint (f->changes->len, ==, 0);
}

static void
notify_cb (GObject    *object,
           GParamSpec *pspec,
           Fixture    *f)
{
  f->notifies++;
}

/* A row not read yet is a placeholder that is filled in place: the same item, a
 * notification, no items-changed. */
static void
test_placeholder (Fixture       *f,
                  gconstpointer  data)
{
  g_autoptr(LetterboxMessageItem) item = NULL;

  add_messages (f, f->folder, "p", 0, 999, 0);
  letterbox_message_list_model_set_page_size (f->model, 100, 4);
  show_folder (f, f->folder);

  item = g_list_model_get_item (G_LIST_MODEL (f->model), 555);
  g_assert_null (letterbox_message_item_get_summary (item));
  g_assert_cmpint (letterbox_message_item_get_id (item), ==, 0);
  g_signal_connect (item, "notify::summary", G_CALLBACK (notify_cb), f);
  g_assert_true (letterbox_message_list_model_get_busy (f->model));
  wait_idle (f);

  g_assert_cmpuint (f->notifies, ==, 1);
  g_assert_nonnull (letterbox_message_item_get_summary (item));
  assert_row (letterbox_message_item_get_summary (item), 444);
  g_assert_true (item_at (f, 555) == item);
  g_assert_cmpuint (f->changes->len, ==, 0);
  g_assert_cmpuint (letterbox_message_list_model_find (f->model,
                                                       letterbox_message_item_get_id (item)),
                    ==, 555);
}

static void
set_flags (Fixture        *f,
           gint64          id,
           LbMessageFlags  set,
           LbMessageFlags  clear)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_store_writer_set_flags_async (f->writer, id, set, clear, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_set_flags_finish (f->writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static void
delete_message (Fixture *f,
                gint64   id)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  lb_store_writer_delete_async (f->writer, id, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_delete_finish (f->writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

/* New mail at the top: one insertion at 0, every other item kept and shifted. */
static void
test_refresh_insert (Fixture       *f,
                     gconstpointer  data)
{
  static const Change top[] = { { 0, 0, 5 } };
  static const Change none[] = { { 0, 0, 0 } };
  g_autoptr(LetterboxMessageItem) held = NULL;

  add_messages (f, f->folder, "p", 0, 299, 0);
  letterbox_message_list_model_set_page_size (f->model, 50, 4);
  show_folder (f, f->folder);
  summary_at (f, 60);
  held = g_list_model_get_item (G_LIST_MODEL (f->model), 10);
  assert_row (letterbox_message_item_get_summary (held), 289);

  add_messages (f, f->folder, "p", 300, 304, 0);
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  assert_changes (f, top, 1);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 305);
  g_assert_true (item_at (f, 15) == held);
  assert_row (summary_at (f, 0), 304);
  assert_row (summary_at (f, 304), 0);

  /* Nothing changed: nothing emitted. */
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  assert_changes (f, none, 0);
}

/* A deleted row: one removal where it was; a flag change: the item updated in place. */
static void
test_refresh_delete_and_flags (Fixture       *f,
                               gconstpointer  data)
{
  static const Change removal[] = { { 20, 1, 0 } };
  g_autoptr(LetterboxMessageItem) flagged = NULL;
  g_autoptr(LetterboxMessageItem) after = NULL;
  LbMessageSummary *s;

  add_messages (f, f->folder, "p", 0, 299, 0);
  letterbox_message_list_model_set_page_size (f->model, 50, 4);
  show_folder (f, f->folder);
  summary_at (f, 30);

  after = g_list_model_get_item (G_LIST_MODEL (f->model), 21);
  s = summary_at (f, 20);
  delete_message (f, lb_message_summary_get_id (s));
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  assert_changes (f, removal, 1);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 299);
  g_assert_true (item_at (f, 20) == after);

  flagged = g_list_model_get_item (G_LIST_MODEL (f->model), 3);
  g_assert_cmpint (lb_message_summary_get_flags (letterbox_message_item_get_summary (flagged)) &
                   LB_MESSAGE_FLAG_FLAGGED, ==, 0);
  g_signal_connect (flagged, "notify::summary", G_CALLBACK (notify_cb), f);
  set_flags (f, letterbox_message_item_get_id (flagged), LB_MESSAGE_FLAG_FLAGGED, 0);
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  g_assert_cmpuint (f->changes->len, ==, 0);
  g_assert_cmpuint (f->notifies, ==, 1);
  g_assert_true (item_at (f, 3) == flagged);
  g_assert_cmpint (lb_message_summary_get_flags (letterbox_message_item_get_summary (flagged)) &
                   LB_MESSAGE_FLAG_FLAGGED, !=, 0);
}

/* Far down the list: new mail above comes as an insertion at the top, a deletion inside
 * the window as a removal there, and the window's items are kept. */
static void
test_refresh_middle (Fixture       *f,
                     gconstpointer  data)
{
  static const Change expected[] = { { 0, 0, 3 }, { 613, 1, 0 } };
  g_autoptr(LetterboxMessageItem) held = NULL;
  gint64 doomed;

  add_messages (f, f->folder, "p", 0, 999, 0);
  letterbox_message_list_model_set_page_size (f->model, 50, 4);
  show_folder (f, f->folder);
  held = g_list_model_get_item (G_LIST_MODEL (f->model), 620);
  wait_idle (f);
  assert_row (letterbox_message_item_get_summary (held), 379);
  doomed = lb_message_summary_get_id (summary_at (f, 610));

  add_messages (f, f->folder, "p", 1000, 1002, 0);
  delete_message (f, doomed);
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  assert_changes (f, expected, G_N_ELEMENTS (expected));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 1002);
  g_assert_true (item_at (f, 622) == held);
  /* Rows outside the window are read again at their new places. */
  assert_row (summary_at (f, 0), 1002);
  assert_row (summary_at (f, 1001), 0);
  assert_row (summary_at (f, 800), 201);   /* 1002..1000, 999..390, 388.. */
}

/* Every account's Inbox and Local Folders' Inbox, newest first across them. */
static void
test_unified_inbox (Fixture       *f,
                    gconstpointer  data)
{
  gint64 inbox_a = ensure_folder (f->writer, "acct", "INBOX", LB_FOLDER_ROLE_INBOX);
  gint64 inbox_b = ensure_folder (f->writer, "other", "INBOX", LB_FOLDER_ROLE_INBOX);
  gint64 last_date = G_MAXINT64;
  gboolean seen_a = FALSE, seen_b = FALSE, seen_local = FALSE;
  guint n;

  add_messages (f, inbox_a, "a", 0, 149, 0);
  add_messages (f, inbox_b, "b", 0, 99, 0);
  add_messages (f, f->folder, "x", 0, 49, 0);   /* not an Inbox */
  letterbox_message_list_model_set_page_size (f->model, 40, 4);
  letterbox_message_list_model_show_unified_inbox (f->model, f->store);
  wait_idle (f);

  /* 150 + 100 + Local Folders' welcome message. */
  n = g_list_model_get_n_items (G_LIST_MODEL (f->model));
  g_assert_cmpuint (n, ==, 251);
  for (guint p = 0; p < n; p++)
    {
      LbMessageSummary *s = summary_at (f, p);
      gint64 folder = lb_message_summary_get_folder_id (s);

      g_assert_cmpint (lb_message_summary_get_date (s), <=, last_date);
      last_date = lb_message_summary_get_date (s);
      g_assert_cmpint (folder, !=, f->folder);
      seen_a |= folder == inbox_a;
      seen_b |= folder == inbox_b;
      seen_local |= folder != inbox_a && folder != inbox_b;
    }
  g_assert_true (seen_a && seen_b && seen_local);

  /* New mail in one Inbox shows on refresh. */
  add_messages (f, inbox_b, "b", 100, 101, 0);
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 253);
}

/* A search lists what lb_store_search() finds, in its order; a bad query is an error. */
static void
test_search (Fixture       *f,
             gconstpointer  data)
{
  g_autoptr(GPtrArray) expected = NULL;
  g_autoptr(GError) error = NULL;
  const GError *model_error;

  add_messages (f, f->folder, "s", 0, 299, 0);
  letterbox_message_list_model_set_page_size (f->model, 30, 4);

  letterbox_message_list_model_show_query (f->model, f->store, "from:alice is:unread");
  wait_idle (f);
  g_assert_true (letterbox_message_list_model_is_search (f->model));
  expected = lb_store_search (f->store, "from:alice is:unread", 0, 1000, &error);
  g_assert_no_error (error);
  /* n % 3 == 0 and n odd: 50 of 300. */
  g_assert_cmpuint (expected->len, ==, 50);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, expected->len);
  for (guint p = 0; p < expected->len; p++)
    g_assert_cmpint (lb_message_summary_get_id (summary_at (f, p)), ==,
                     lb_message_summary_get_id (g_ptr_array_index (expected, p)));

  letterbox_message_list_model_show_query (f->model, f->store, "nosuchword");
  wait_idle (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 0);
  g_assert_null (letterbox_message_list_model_get_error (f->model));

  letterbox_message_list_model_show_query (f->model, f->store, "before:notadate");
  wait_idle (f);
  model_error = letterbox_message_list_model_get_error (f->model);
  g_assert_nonnull (model_error);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 0);
}

/* Conversations: one row per thread, its newest message, with the thread's size. */
static void
test_threads (Fixture       *f,
              gconstpointer  data)
{
  LbMessageSummary *s;

  /* 0..99: threads of four (n, n+1, n+2, n+3 each answering the one before). */
  add_messages (f, f->folder, "t", 0, 99, 4);
  letterbox_message_list_model_set_page_size (f->model, 10, 4);
  show_folder (f, f->folder);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 100);
  g_assert_cmpuint (lb_message_summary_get_thread_count (summary_at (f, 0)), ==, 1);

  letterbox_message_list_model_set_threads (f->model, TRUE);
  wait_idle (f);
  g_assert_true (letterbox_message_list_model_get_threads (f->model));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 25);
  for (guint p = 0; p < 25; p++)
    {
      s = summary_at (f, p);
      /* Thread k holds 4k..4k+3; its newest is 4k+3, and the newest thread comes first. */
      g_assert_cmpint (lb_message_summary_get_date (s), ==, BASE_DATE + 4 * (24 - p) + 3);
      g_assert_cmpuint (lb_message_summary_get_thread_count (s), ==, 4);
    }

  /* A reply to the oldest thread brings it to the top. */
  {
    GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);
    g_autoptr(GError) error = NULL;
    LbStoreMessage *m = message (f->folder, "t", 100, 0);
    LbTestWait w = { 0 };

    g_free (m->in_reply_to);
    m->in_reply_to = g_strdup ("t-3@example.org");
    g_ptr_array_add (list, m);
    lb_store_writer_add_many_async (f->writer, list, NULL, lb_test_wait_cb, &w);
    g_assert_true (lb_store_writer_add_many_finish (f->writer, lb_test_wait_result (&w), &error));
    g_object_unref (w.result);
  }
  letterbox_message_list_model_refresh (f->model);
  wait_idle (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 25);
  s = summary_at (f, 0);
  g_assert_cmpint (lb_message_summary_get_date (s), ==, BASE_DATE + 100);
  g_assert_cmpuint (lb_message_summary_get_thread_count (s), ==, 5);
  s = summary_at (f, 24);
  g_assert_cmpint (lb_message_summary_get_date (s), ==, BASE_DATE + 7);

  letterbox_message_list_model_set_threads (f->model, FALSE);
  wait_idle (f);
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (f->model)), ==, 101);
}

int
main (int   argc,
      char *argv[])
{
  g_test_init (&argc, &argv, NULL);

#define ADD(path, func) \
  g_test_add ("/message-list-model/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("count", test_count);
  ADD ("paging", test_paging);
  ADD ("placeholder", test_placeholder);
  ADD ("refresh/insert", test_refresh_insert);
  ADD ("refresh/delete-and-flags", test_refresh_delete_and_flags);
  ADD ("refresh/middle", test_refresh_middle);
  ADD ("unified-inbox", test_unified_inbox);
  ADD ("search", test_search);
  ADD ("threads", test_threads);
#undef ADD

  return g_test_run ();
}
