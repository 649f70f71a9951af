/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "lb-store.h"
#include "letterbox-folder-row.h"
#include "letterbox-message-row.h"
#include "letterbox-window.h"

/*
 * The main window: folders of every account in the sidebar, the selected folder's
 * messages, and the selected message in the reading pane. It reads the store directly
 * (DESIGN.md: bulk data never crosses D-Bus), always through the store's _async calls,
 * so the main loop never waits on the disk.
 */

/* One page of the list; issue #8 replaces this with a model that pages on demand. */
#define MESSAGE_PAGE_SIZE 1000

struct _LetterboxWindow
{
  AdwApplicationWindow parent_instance;

  GSettings *settings;
  GCancellable *cancellable;
  GCancellable *folder_cancellable;
  LbStore *store;
  GListStore *messages;
  GtkSingleSelection *selection;

  AdwWindowTitle *window_title;
  GtkStack *main_stack;
  AdwStatusPage *error_page;
  GtkPaned *outer_paned;
  GtkPaned *inner_paned;
  GtkListBox *folder_list;
  GtkStack *list_stack;
  GtkListView *message_list;
  GtkStack *reader_stack;
  GtkLabel *reader_subject;
  GtkLabel *reader_sender;
  GtkLabel *reader_date;
  GtkLabel *reader_body;
};

G_DEFINE_FINAL_TYPE (LetterboxWindow, letterbox_window, ADW_TYPE_APPLICATION_WINDOW)

static void
show_store_error (LetterboxWindow *self,
                  const GError    *error)
{
  adw_status_page_set_description (self->error_page, error->message);
  gtk_stack_set_visible_child_name (self->main_stack, "error");
}

static char *
folder_key (LbFolder *folder)
{
  return g_strdup_printf ("%s/%s", lb_folder_get_account_id (folder), lb_folder_get_name (folder));
}

static void
show_message (LetterboxWindow  *self,
              LbMessageSummary *message)
{
  g_autofree char *date = NULL;
  const char *subject;

  if (message == NULL)
    {
      gtk_stack_set_visible_child_name (self->reader_stack, "none");
      return;
    }

  subject = lb_message_summary_get_subject (message);
  date = letterbox_format_date (lb_message_summary_get_date (message), TRUE);

  gtk_label_set_label (self->reader_subject, subject[0] != '\0' ? subject : _("(No subject)"));
  gtk_label_set_label (self->reader_sender, lb_message_summary_get_sender (message));
  gtk_label_set_label (self->reader_date, date);
  gtk_label_set_label (self->reader_body, lb_message_summary_get_preview (message));
  gtk_stack_set_visible_child_name (self->reader_stack, "message");
}

static void
selected_message_changed_cb (LetterboxWindow *self)
{
  show_message (self, gtk_single_selection_get_selected_item (self->selection));
}

static void
list_messages_cb (GObject      *object,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  LetterboxWindow *self = user_data;
  g_autoptr(GPtrArray) messages = NULL;
  g_autoptr(GError) error = NULL;

  messages = lb_store_list_messages_finish (LB_STORE (object), result, &error);
  if (messages == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_store_error (self, error);
      g_object_unref (self);
      return;
    }

  g_list_store_splice (self->messages, 0, g_list_model_get_n_items (G_LIST_MODEL (self->messages)),
                       messages->pdata, messages->len);
  gtk_stack_set_visible_child_name (self->list_stack, messages->len > 0 ? "messages" : "empty");
  show_message (self, gtk_single_selection_get_selected_item (self->selection));
  g_object_unref (self);
}

static void
folder_selected_cb (LetterboxWindow    *self,
                    LetterboxFolderRow *row)
{
  g_autofree char *name = NULL;
  g_autofree char *key = NULL;
  LbFolder *folder;

  g_cancellable_cancel (self->folder_cancellable);
  g_clear_object (&self->folder_cancellable);

  if (row == NULL)
    return;

  folder = letterbox_folder_row_get_folder (row);
  name = letterbox_folder_dup_display_name (folder);
  adw_window_title_set_title (self->window_title, name);
  adw_window_title_set_subtitle (self->window_title, lb_folder_get_account_name (folder));

  key = folder_key (folder);
  g_settings_set_string (self->settings, "selected-folder", key);

  self->folder_cancellable = g_cancellable_new ();
  lb_store_list_messages_async (self->store, lb_folder_get_id (folder), 0, MESSAGE_PAGE_SIZE,
                                self->folder_cancellable, list_messages_cb, g_object_ref (self));
}

static void
folder_header_func (GtkListBoxRow *row,
                    GtkListBoxRow *before,
                    gpointer       user_data)
{
  LbFolder *folder = letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (row));
  GtkWidget *header;

  if (before != NULL &&
      g_strcmp0 (lb_folder_get_account_id (folder),
                 lb_folder_get_account_id (
                   letterbox_folder_row_get_folder (LETTERBOX_FOLDER_ROW (before)))) == 0)
    {
      gtk_list_box_row_set_header (row, NULL);
      return;
    }

  header = gtk_label_new (lb_folder_get_account_name (folder));
  gtk_label_set_xalign (GTK_LABEL (header), 0);
  gtk_label_set_ellipsize (GTK_LABEL (header), PANGO_ELLIPSIZE_END);
  gtk_widget_add_css_class (header, "heading");
  gtk_widget_add_css_class (header, "account-header");
  gtk_list_box_row_set_header (row, header);
}

static void
list_folders_cb (GObject      *object,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  LetterboxWindow *self = user_data;
  g_autoptr(GPtrArray) folders = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *wanted = NULL;
  GtkWidget *select = NULL;

  folders = lb_store_list_folders_finish (LB_STORE (object), result, &error);
  if (folders == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_store_error (self, error);
      g_object_unref (self);
      return;
    }

  wanted = g_settings_get_string (self->settings, "selected-folder");

  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);
      GtkWidget *row = letterbox_folder_row_new (folder);
      g_autofree char *key = folder_key (folder);

      gtk_list_box_append (self->folder_list, row);
      if (g_strcmp0 (key, wanted) == 0 ||
          (select == NULL && lb_folder_get_role (folder) == LB_FOLDER_ROLE_INBOX))
        select = row;
    }

  gtk_stack_set_visible_child_name (self->main_stack, "mail");
  if (select != NULL)
    gtk_list_box_select_row (self->folder_list, GTK_LIST_BOX_ROW (select));

  g_object_unref (self);
}

static void
store_open_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  LetterboxWindow *self = user_data;
  g_autoptr(GError) error = NULL;

  self->store = lb_store_open_finish (result, &error);
  if (self->store == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_warning ("%s", error->message);
          show_store_error (self, error);
        }
      g_object_unref (self);
      return;
    }

  lb_store_list_folders_async (self->store, self->cancellable, list_folders_cb, self);
}

static void
setup_message_row_cb (GtkSignalListItemFactory *factory,
                      GtkListItem              *item,
                      gpointer                  user_data)
{
  gtk_list_item_set_child (item, letterbox_message_row_new ());
}

static void
bind_message_row_cb (GtkSignalListItemFactory *factory,
                     GtkListItem              *item,
                     gpointer                  user_data)
{
  letterbox_message_row_set_message (LETTERBOX_MESSAGE_ROW (gtk_list_item_get_child (item)),
                                     gtk_list_item_get_item (item));
}

static gboolean
letterbox_window_close_request (GtkWindow *window)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (window);
  int width, height;

  gtk_window_get_default_size (window, &width, &height);
  g_settings_set_boolean (self->settings, "window-maximized", gtk_window_is_maximized (window));
  if (!gtk_window_is_maximized (window))
    {
      g_settings_set_int (self->settings, "window-width", width);
      g_settings_set_int (self->settings, "window-height", height);
    }

  return GTK_WINDOW_CLASS (letterbox_window_parent_class)->close_request (window);
}

static void
letterbox_window_dispose (GObject *object)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (object);

  g_cancellable_cancel (self->cancellable);
  g_cancellable_cancel (self->folder_cancellable);
  g_clear_object (&self->folder_cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->store);
  g_clear_object (&self->selection);
  g_clear_object (&self->messages);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (letterbox_window_parent_class)->dispose (object);
}

static void
letterbox_window_class_init (LetterboxWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = letterbox_window_dispose;
  window_class->close_request = letterbox_window_close_request;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-window.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, error_page);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, outer_paned);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, inner_paned);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, folder_list);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, list_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, message_list);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, reader_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, reader_subject);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, reader_sender);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, reader_date);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, reader_body);
}

static void
letterbox_window_init (LetterboxWindow *self)
{
  g_autoptr(GtkListItemFactory) factory = NULL;
  g_autofree char *data_dir = NULL;

  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (APP_ID);
  self->cancellable = g_cancellable_new ();

  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  g_settings_bind (self->settings, "sidebar-width", self->outer_paned, "position",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "message-list-width", self->inner_paned, "position",
                   G_SETTINGS_BIND_DEFAULT);

  self->messages = g_list_store_new (LB_TYPE_MESSAGE_SUMMARY);
  self->selection = gtk_single_selection_new (g_object_ref (G_LIST_MODEL (self->messages)));
  gtk_single_selection_set_autoselect (self->selection, FALSE);
  gtk_single_selection_set_can_unselect (self->selection, TRUE);
  g_signal_connect_swapped (self->selection, "notify::selected-item",
                            G_CALLBACK (selected_message_changed_cb), self);

  factory = gtk_signal_list_item_factory_new ();
  g_signal_connect (factory, "setup", G_CALLBACK (setup_message_row_cb), NULL);
  g_signal_connect (factory, "bind", G_CALLBACK (bind_message_row_cb), NULL);
  gtk_list_view_set_factory (self->message_list, factory);
  gtk_list_view_set_model (self->message_list, GTK_SELECTION_MODEL (self->selection));

  gtk_list_box_set_header_func (self->folder_list, folder_header_func, NULL, NULL);
  g_signal_connect_swapped (self->folder_list, "row-selected",
                            G_CALLBACK (folder_selected_cb), self);

  gtk_stack_set_visible_child_name (self->main_stack, "loading");
  data_dir = lb_store_default_data_dir ();
  lb_store_open_async (data_dir, self->cancellable, store_open_cb, g_object_ref (self));
}

LetterboxWindow *
letterbox_window_new (LetterboxApplication *application)
{
  return g_object_new (LETTERBOX_TYPE_WINDOW, "application", application, NULL);
}
