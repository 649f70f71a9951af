/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-test"

#include "config.h"

#include <adwaita.h>

#include "lb-store.h"
#include "lb-store-writer.h"
#include "lb-test-util.h"
#include "letterbox-message-item.h"
#include "letterbox-message-list.h"
#include "letterbox-message-row.h"

/* The message list pane in-process, on a real store: rows appear, the empty states,
 * selection (one, all) read back through get_selected(), a refresh after new mail that
 * keeps the selected message selected, conversations, and a folder shown a screenful
 * in its first frame, every row from the next. */

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

static gboolean
list_loaded (gpointer user_data)
{
  Fixture *f = user_data;

  return !letterbox_message_list_get_loading (f->list);
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

typedef struct
{
  guint frames;           /* painted so far */
  GArray *changes;        /* Change: what the list view was told, and when */
} Frames;

typedef struct
{
  guint position, removed, added;
  guint frames;           /* painted before it */
} Change;

static void
count_frame_cb (GdkFrameClock *clock,
                Frames        *fr)
{
  fr->frames++;
}

static void
list_changed_cb (GListModel *model,
                 guint       position,
                 guint       removed,
                 guint       added,
                 Frames     *fr)
{
  Change c = { position, removed, added, fr->frames };

  g_array_append_val (fr->changes, c);
}

static void
test_selection_and_refresh (Fixture       *f,
                            gconstpointer  data)
{
  g_autoptr(GPtrArray) selected = NULL;
  g_autoptr(GtkBitset) all = NULL;
  WantedSelected w = { f, 1700000000 + 2990 };
  Frames fr = { 0, NULL };
  gulong changed_id;

  add_messages (f, 0, 2999);
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  wait_showing (f, "messages", 3000);

  /* The tenth row: Subject 2990. */
  gtk_selection_model_select_item (selection_model (f), 9, TRUE);
  g_assert_cmpuint (f->selection_changes, >=, 1);
  g_assert_true (lb_test_wait_until (selected_is, &w, 10000));

  /* New mail on top: the same message stays selected, ten rows lower. The list view is
   * told of ten rows inserted on top, and of nothing else: not of every row replaced,
   * which would have it ask for all 3 010. */
  fr.changes = g_array_new (FALSE, FALSE, sizeof (Change));
  changed_id = g_signal_connect (selection_model (f), "items-changed",
                                 G_CALLBACK (list_changed_cb), &fr);
  add_messages (f, 3000, 3009);
  letterbox_message_list_refresh (f->list);
  wait_showing (f, "messages", 3010);
  g_signal_handler_disconnect (selection_model (f), changed_id);
  g_assert_cmpuint (fr.changes->len, ==, 1);
  g_assert_cmpuint (g_array_index (fr.changes, Change, 0).position, ==, 0);
  g_assert_cmpuint (g_array_index (fr.changes, Change, 0).removed, ==, 0);
  g_assert_cmpuint (g_array_index (fr.changes, Change, 0).added, ==, 10);
  g_array_unref (fr.changes);
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
test_screenful_first (Fixture       *f,
                      gconstpointer  data)
{
  GdkFrameClock *clock = gtk_widget_get_frame_clock (f->window);
  Frames fr = { 0, g_array_new (FALSE, FALSE, sizeof (Change)) };
  g_autoptr(GtkBitset) all = NULL;
  /* The fixture's window is 600 px high. */
  guint window_rows = 600 / LETTERBOX_MESSAGE_ROW_MIN_HEIGHT;
  Change *first, *rest;
  gulong paint_id, changed_id;

  g_assert_nonnull (clock);
  add_messages (f, 0, 499);
  paint_id = g_signal_connect (clock, "paint", G_CALLBACK (count_frame_cb), &fr);
  changed_id = g_signal_connect (selection_model (f), "items-changed",
                                 G_CALLBACK (list_changed_cb), &fr);
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  wait_showing (f, "messages", 500);
  g_signal_handler_disconnect (clock, paint_id);
  g_signal_handler_disconnect (selection_model (f), changed_id);

  /* The list view was given the rows in two steps: the first rows, as many as fill the
   * window at least, then, after a frame had painted them, the other rows below. */
  g_assert_cmpuint (fr.changes->len, ==, 2);
  first = &g_array_index (fr.changes, Change, 0);
  rest = &g_array_index (fr.changes, Change, 1);
  g_assert_cmpuint (first->position, ==, 0);
  g_assert_cmpuint (first->removed, ==, 0);
  g_assert_cmpuint (first->added, >=, window_rows);
  g_assert_cmpuint (first->added, <, 500);
  g_assert_cmpuint (rest->position, ==, first->added);
  g_assert_cmpuint (rest->removed, ==, 0);
  g_assert_cmpuint (rest->added, ==, 500 - first->added);
  g_assert_cmpuint (rest->frames, >, first->frames);

  /* Shown again (a search, another folder): the same, from an empty list. */
  g_array_set_size (fr.changes, 0);
  paint_id = g_signal_connect (clock, "paint", G_CALLBACK (count_frame_cb), &fr);
  changed_id = g_signal_connect (selection_model (f), "items-changed",
                                 G_CALLBACK (list_changed_cb), &fr);
  letterbox_message_list_show_query (f->list, f->store, "subject");
  wait_showing (f, "messages", 500);
  g_signal_handler_disconnect (clock, paint_id);
  g_signal_handler_disconnect (selection_model (f), changed_id);
  g_assert_cmpuint (fr.changes->len, ==, 3);
  g_assert_cmpuint (g_array_index (fr.changes, Change, 0).removed, ==, 500);
  g_assert_cmpuint (g_array_index (fr.changes, Change, 0).added, ==, 0);
  first = &g_array_index (fr.changes, Change, 1);
  rest = &g_array_index (fr.changes, Change, 2);
  g_assert_cmpuint (first->added, >=, window_rows);
  g_assert_cmpuint (first->added, <, 500);
  g_assert_cmpuint (rest->added, ==, 500 - first->added);
  g_assert_cmpuint (rest->frames, >, first->frames);

  /* A list not on screen waits for no frame: it keeps the first screenful until asked to
   * act on positions. Ctrl+A selects every row, not only those. */
  gtk_widget_set_visible (f->window, FALSE);
  letterbox_message_list_show_folder (f->list, f->store, f->folder);
  g_assert_true (lb_test_wait_until (list_loaded, f, 10000));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (selection_model (f))), ==,
                    first->added);
  letterbox_message_list_select_all (f->list);
  all = gtk_selection_model_get_selection (selection_model (f));
  g_assert_cmpuint (g_list_model_get_n_items (G_LIST_MODEL (selection_model (f))), ==, 500);
  g_assert_cmpuint (gtk_bitset_get_size (all), ==, 500);

  g_array_unref (fr.changes);
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
  ADD ("screenful-first", test_screenful_first);
#undef ADD

  return g_test_run ();
}
