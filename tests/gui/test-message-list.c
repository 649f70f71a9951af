/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <adwaita.h>

#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"
#include "letterbox-message-item.h"
#include "letterbox-message-list.h"

/* The message list pane in-process, on a real store: rows appear, the empty states,
 * selection (one, all) read back through get_selected(), a refresh after new mail that
 * keeps the selected message selected, and conversations. */

typedef struct
{
  char *dir;
  LbStore *store;
  LbStoreWriter *writer;
  gint64 folder;
  GtkWidget *window;
  LetterboxMessageList *list;
  guint selection_changes;
} Fixture;

static gint64
ensure_folder (Fixture    *f,
               const char *name)
{
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };
  gint64 id;

  lb_store_writer_ensure_folder_async (f->writer, "acct", "imap", "Account", name,
                                       LB_FOLDER_ROLE_NONE, NULL, lb_test_wait_cb, &w);
  id = lb_store_writer_ensure_folder_finish (f->writer, lb_test_wait_result (&w), &error);
  g_object_unref (w.result);
  g_assert_no_error (error);
  return id;
}

static void
add_messages (Fixture *f,
              guint    first,
              guint    last)
{
  GPtrArray *list = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_store_message_free);
  g_autoptr(GError) error = NULL;
  LbTestWait w = { 0 };

  for (guint n = first; n <= last; n++)
    {
      LbStoreMessage *m = lb_store_message_new ();

      m->folder_id = f->folder;
      m->uid = n + 1;
      m->date = 1700000000 + n;
      m->sender = g_strdup_printf ("Sender %u", n);
      m->subject = g_strdup_printf ("Subject %u", n);
      m->preview = g_strdup ("A preview");
      m->message_id = g_strdup_printf ("list-%u@example.org", n);
      if (n % 2 == 1)
        m->in_reply_to = g_strdup_printf ("list-%u@example.org", n - 1);
      g_ptr_array_add (list, m);
    }
  lb_store_writer_add_many_async (f->writer, list, NULL, lb_test_wait_cb, &w);
  g_assert_true (lb_store_writer_add_many_finish (f->writer, lb_test_wait_result (&w), &error));
  g_object_unref (w.result);
  g_assert_no_error (error);
}

static GtkStack *
list_stack (Fixture *f)
{
  return GTK_STACK (gtk_widget_get_first_child (GTK_WIDGET (f->list)));
}

static GtkSelectionModel *
selection_model (Fixture *f)
{
  GtkWidget *scrolled = gtk_stack_get_child_by_name (list_stack (f), "messages");
  GtkWidget *view = gtk_scrolled_window_get_child (GTK_SCROLLED_WINDOW (scrolled));

  return gtk_list_view_get_model (GTK_LIST_VIEW (view));
}

typedef struct
{
  Fixture *f;
  const char *page;
  guint n_items;
} Wanted;

static gboolean
showing (gpointer user_data)
{
  Wanted *w = user_data;

  return g_strcmp0 (gtk_stack_get_visible_child_name (list_stack (w->f)), w->page) == 0 &&
         g_list_model_get_n_items (G_LIST_MODEL (selection_model (w->f))) == w->n_items;
}

static void
wait_showing (Fixture    *f,
              const char *page,
              guint       n_items)
{
  Wanted w = { f, page, n_items };

  g_assert_true (lb_test_wait_until (showing, &w, 10000));
}

typedef struct
{
  Fixture *f;
  gint64 date;
} WantedSelected;

static gboolean
selected_is (gpointer user_data)
{
  WantedSelected *w = user_data;
  g_autoptr(GPtrArray) selected = letterbox_message_list_get_selected (w->f->list);

  return selected->len == 1 &&
         lb_message_summary_get_date (g_ptr_array_index (selected, 0)) == w->date;
}

static gboolean
top_row_read (gpointer user_data)
{
  Fixture *f = user_data;
  g_autoptr(LetterboxMessageItem) item = g_list_model_get_item (G_LIST_MODEL (selection_model (f)), 0);

  return item != NULL && letterbox_message_item_get_summary (item) != NULL;
}

static void
selection_changed_cb (LetterboxMessageList *list,
                      Fixture              *f)
{
  f->selection_changes++;
}

static void
fixture_set_up (Fixture       *f,
                gconstpointer  data)
{
  g_autoptr(GError) error = NULL;

  f->dir = g_dir_make_tmp ("lb-list-gui-XXXXXX", &error);
  g_assert_no_error (error);
  f->store = lb_store_open (f->dir, &error);
  g_assert_no_error (error);
  f->writer = lb_store_writer_new (f->dir, &error);
  g_assert_no_error (error);
  f->folder = ensure_folder (f, "Lists");

  f->window = gtk_window_new ();
  gtk_window_set_default_size (GTK_WINDOW (f->window), 400, 600);
  f->list = LETTERBOX_MESSAGE_LIST (letterbox_message_list_new ());
  gtk_window_set_child (GTK_WINDOW (f->window), GTK_WIDGET (f->list));
  g_signal_connect (f->list, "selection-changed", G_CALLBACK (selection_changed_cb), f);
  gtk_window_present (GTK_WINDOW (f->window));
}

static void
fixture_tear_down (Fixture       *f,
                   gconstpointer  data)
{
  gtk_window_destroy (GTK_WINDOW (f->window));
  lb_store_writer_close (f->writer);
  g_clear_object (&f->writer);
  g_clear_object (&f->store);
  lb_test_remove_tree (f->dir);
  g_free (f->dir);
}

static void
test_empty_states (Fixture       *f,
                   gconstpointer  data)
{
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  wait_showing (f, "empty", 0);

  add_messages (f, 0, 9);
  letterbox_message_list_show_query (f->list, f->store, "nosuchword");
  wait_showing (f, "no-results", 0);
  letterbox_message_list_show_query (f->list, f->store, "subject");
  wait_showing (f, "messages", 10);
}

static void
test_selection_and_refresh (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) selected = NULL;
  g_autoptr(GtkBitset) all = NULL;
  WantedSelected w = { f, 1700000000 + 2990 };

  add_messages (f, 0, 2999);
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  wait_showing (f, "messages", 3000);

  /* The tenth row: Subject 2990. */
  gtk_selection_model_select_item (selection_model (f), 9, TRUE);
  g_assert_cmpuint (f->selection_changes, >=, 1);
  g_assert_true (lb_test_wait_until (selected_is, &w, 10000));

  /* New mail on top: the same message stays selected, ten rows lower. */
  add_messages (f, 3000, 3009);
  letterbox_message_list_refresh (f->list);
  wait_showing (f, "messages", 3010);
  g_assert_true (lb_test_wait_until (selected_is, &w, 10000));
  g_assert_true (gtk_selection_model_is_selected (selection_model (f), 19));
  g_assert_false (gtk_selection_model_is_selected (selection_model (f), 9));

  /* Next: the row below. */
  letterbox_message_list_select_next (f->list, 1);
  w.date = 1700000000 + 2989;
  g_assert_true (lb_test_wait_until (selected_is, &w, 10000));

  /* Ctrl+A selects every row; what has been read comes back, without reading the
   * whole folder. */
  /* The new rows on top are read (filled in place). */
  g_assert_true (lb_test_wait_until (top_row_read, f, 10000));
  letterbox_message_list_select_all (f->list);
  all = gtk_selection_model_get_selection (selection_model (f));
  g_assert_cmpuint (gtk_bitset_get_size (all), ==, 3010);
  selected = letterbox_message_list_get_selected (f->list);
  /* The pages on screen were kept: the top row (Subject 3009) is among them. */
  g_assert_cmpuint (selected->len, >=, 200);
  g_assert_cmpuint (selected->len, <=, 8 * 200);
  g_assert_cmpint (lb_message_summary_get_date (g_ptr_array_index (selected, 0)), ==,
                   1700000000 + 3009);
}

static void
test_conversations (Fixture       *f,
                    gconstpointer  data)
{
  add_messages (f, 0, 99);
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  wait_showing (f, "messages", 100);
  letterbox_message_list_set_threads (f->list, TRUE);
  wait_showing (f, "messages", 50);
  letterbox_message_list_set_threads (f->list, FALSE);
  wait_showing (f, "messages", 100);
}

int
main (int   argc,
      char *argv[])
{
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();

#define ADD(path, func) \
  g_test_add ("/message-list/" path, Fixture, NULL, fixture_set_up, func, fixture_tear_down)
  ADD ("empty-states", test_empty_states);
  ADD ("selection-and-refresh", test_selection_and_refresh);
  ADD ("conversations", test_conversations);
#undef ADD

  return g_test_run ();
}
