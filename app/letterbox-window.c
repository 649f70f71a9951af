/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-store.h"
#include "letterbox-application.h"
#include "letterbox-bench.h"
#include "letterbox-folder-row.h"
#include "letterbox-sidebar.h"
#include "letterbox-message-list.h"
#include "letterbox-message-row.h"
#include "letterbox-message-view.h"
#include "letterbox-status-area.h"
#include "letterbox-status-spinner.h"
#include "letterbox-toaster.h"
#include "letterbox-window.h"

/*
 * The main window: folders of every account in the sidebar, the selected folder's
 * messages, and the selected message in the reading pane. It reads the store directly
 * (DESIGN.md: bulk data never crosses D-Bus), always through the store's _async calls,
 * so the main loop never waits on the disk.
 */

struct _LetterboxWindow
{
  AdwApplicationWindow parent_instance;

  GSettings *settings;
  GCancellable *cancellable;
  GCancellable *folder_cancellable;
  LbStore *store;

  AdwWindowTitle *window_title;
  LetterboxStatusArea *status_area;
  LetterboxStatusSpinner *status_spinner;
  guint store_changed_id;
  guint present_id;               /* letterbox_window_present_when_ready()'s deadline */
  gboolean present_pending;
  gboolean list_shown;            /* the list was asked to show a folder */
  GtkStack *main_stack;
  AdwStatusPage *error_page;
  GtkPaned *outer_paned;
  GtkPaned *inner_paned;
  LetterboxSidebar *sidebar;
  AdwToastOverlay *toast_overlay;
  GtkSearchBar *search_bar;
  GtkSearchEntry *search_entry;
  GtkToggleButton *search_button;
  GtkMenuButton *move_button;
  GtkPopover *move_popover;
  GtkSearchEntry *move_filter;
  GtkListBox *move_list;
  guint mark_read_id;
  gint64 mark_read_message;
  LbFolder *shown_folder;      /* NULL: All Inboxes (or nothing yet) */
  LetterboxToaster *toaster;   /* one toast at a time, the newest replacing the one shown */
  LetterboxMessageList *message_list;
  LetterboxMessageView *message_view;
};

G_DEFINE_FINAL_TYPE (LetterboxWindow, letterbox_window, ADW_TYPE_APPLICATION_WINDOW)

static void
present_now (LetterboxWindow *self)
{
  if (!self->present_pending)
    return;
  self->present_pending = FALSE;
  g_clear_handle_id (&self->present_id, g_source_remove);
  gtk_window_present (GTK_WINDOW (self));
  letterbox_bench_mark ("window-presented");
}

static gboolean
present_deadline_cb (gpointer user_data)
{
  LetterboxWindow *self = user_data;

  self->present_id = 0;
  present_now (self);
  return G_SOURCE_REMOVE;
}

/* The list read its first rows (or found none): the window can show them at once. */
static void
list_loading_cb (LetterboxWindow *self)
{
  if (self->list_shown && !letterbox_message_list_get_loading (self->message_list))
    present_now (self);
}

/**
 * letterbox_window_present_when_ready:
 * @timeout_ms: how long to wait at most
 *
 * Presents the window once its message list has the first rows of the folder it opens
 * with (read in a worker while the window is built), or cannot have any, so that the
 * first frame shows them; or after @timeout_ms, whichever comes first. Presenting at
 * once would paint the window twice: empty, then again with the rows.
 */
void
letterbox_window_present_when_ready (LetterboxWindow *self,
                                     guint            timeout_ms)
{
  g_return_if_fail (LETTERBOX_IS_WINDOW (self));

  if (self->present_pending)
    return;
  self->present_pending = TRUE;
  if (self->list_shown && !letterbox_message_list_get_loading (self->message_list))
    {
      present_now (self);
      return;
    }
  self->present_id = g_timeout_add (timeout_ms, present_deadline_cb, self);
}

static void
show_store_error (LetterboxWindow *self,
                  const GError    *error)
{
  adw_status_page_set_description (self->error_page, error->message);
  gtk_stack_set_visible_child_name (self->main_stack, "error");
  present_now (self);
}

static void
show_message (LetterboxWindow  *self,
              LbMessageSummary *message)
{
  letterbox_message_view_show (self->message_view, self->store, message);
}

/* The reading pane shows the one message selected. */
static void
selected_message_changed_cb (LetterboxWindow *self)
{
  g_autoptr(GPtrArray) selected = letterbox_message_list_get_selected (self->message_list);

  show_message (self, selected->len == 1 ? g_ptr_array_index (selected, 0) : NULL);
}

/* The message list (LetterboxMessageList: paged from the store, multi-selection) as the
 * triage code needs it. */

static void
list_show_query (LetterboxWindow *self,
                 const char      *query)
{
  self->list_shown = TRUE;
  letterbox_message_list_show_query (self->message_list, self->store, query);
}

static void
list_show_folder (LetterboxWindow *self,
                  LbFolder        *folder)
{
  self->list_shown = TRUE;
  letterbox_message_list_show_folder (self->message_list, self->store, lb_folder_get_id (folder));
}

/* After StoreChanged: the list follows the store, keeping its selection and scroll. */
static void
list_refresh (LetterboxWindow *self)
{
  letterbox_message_list_refresh (self->message_list);
}

/* Returns: (transfer container) (element-type LbMessageSummary): the selected messages */
static GPtrArray *
list_get_selected (LetterboxWindow *self)
{
  return letterbox_message_list_get_selected (self->message_list);
}

static void
list_select_all (LetterboxWindow *self)
{
  letterbox_message_list_select_all (self->message_list);
}

static void
list_select_next (LetterboxWindow *self,
                  int              delta)
{
  letterbox_message_list_select_next (self->message_list, delta);
}

/* Shows what the sidebar has selected in the message list (not a search). */
static void
show_selected_folder (LetterboxWindow *self)
{
  LbFolder *folder = self->shown_folder;

  g_cancellable_cancel (self->folder_cancellable);
  g_clear_object (&self->folder_cancellable);

  if (self->store == NULL)
    return;

  if (folder == NULL)
    {
      adw_window_title_set_title (self->window_title, _("All Inboxes"));
      adw_window_title_set_subtitle (self->window_title, NULL);
      self->list_shown = TRUE;
      letterbox_message_list_show_unified_inbox (self->message_list, self->store);
      return;
    }
  else
    {
      g_autofree char *name = letterbox_folder_dup_display_name (folder);

      adw_window_title_set_title (self->window_title, name);
      adw_window_title_set_subtitle (self->window_title, lb_folder_get_account_name (folder));
    }

  list_show_folder (self, folder);
}

static void
folder_selected_cb (LetterboxWindow *self,
                    LbFolder        *folder)
{
  g_set_object (&self->shown_folder, folder);
  if (gtk_search_bar_get_search_mode (self->search_bar))
    gtk_search_bar_set_search_mode (self->search_bar, FALSE);
  show_selected_folder (self);
}

static void
sidebar_load_failed_cb (LetterboxWindow *self,
                        const GError    *error)
{
  show_store_error (self, error);
}

static void
store_open_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  LetterboxWindow *self = user_data;
  g_autoptr(GError) error = NULL;

  self->store = letterbox_application_open_store_finish (LETTERBOX_APPLICATION (object), result,
                                                         &error);
  letterbox_bench_mark ("store-opened");
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

  gtk_stack_set_visible_child_name (self->main_stack, "mail");
  letterbox_sidebar_set_store (self->sidebar, self->store);
  g_object_unref (self);
}

/*
 * Triage: the window's actions on the selected messages. Every change goes to the single
 * writer (org.letterbox.Backend1.ApplyChanges, see data/dbus/); the store shows it when
 * the writer's StoreChanged comes back. Archive, delete and move offer an undo in a
 * toast: the inverse changes (a move back).
 */

static LbBusBackend1 *
get_backend (LetterboxWindow *self)
{
  GtkApplication *app = gtk_window_get_application (GTK_WINDOW (self));

  return app != NULL ? letterbox_application_get_backend (LETTERBOX_APPLICATION (app)) : NULL;
}

static void
show_toast (LetterboxWindow *self,
            const char      *title)
{
  g_autofree char *markup = g_markup_escape_text (title, -1);
  AdwToast *toast = adw_toast_new (markup);

  adw_toast_set_timeout (toast, 5);
  letterbox_toaster_show (self->toaster, toast);
}

/*
 * A change to send, kept small so that a bulk action on 100 000 messages costs a few
 * megabytes; the D-Bus arguments are built one batch at a time, just before it is sent.
 */
typedef struct
{
  gint64 message;
  gint64 folder;               /* 'm': the destination */
  char op;                     /* 'f' flags, 'm' move, 'd' delete */
  guint8 add;                  /* 'f': LbMessageFlags to set and to clear */
  guint8 remove;
} Change;

/* ApplyChanges calls carry at most this many changes each: the writer applies a call's
 * changes one after another (a commit each), so a call of this size returns within
 * seconds and the next one follows; the D-Bus message stays far under its limit (about
 * 100 bytes a change). */
#define BATCH_SIZE 500
/* Progress shows once a bulk change has taken this long. */
#define PROGRESS_DELAY_US G_USEC_PER_SEC

typedef struct
{
  LetterboxWindow *self;       /* a reference while the calls run, then none */
  GArray *changes;             /* Change */
  guint next;                  /* the first change not sent yet */
  GArray *undo;                /* Change, or NULL */
  char *title;                 /* what the toast says when it worked, or NULL */
  gint64 started;
  AdwToast *progress;          /* (weak) shown after PROGRESS_DELAY_US */
  gboolean progress_shown;     /* once: closed, or replaced by another toast, it stays so */
  guint in_flight;             /* the first change of the batch being sent */
} Apply;

static void
apply_free (gpointer data,
            GClosure *closure)
{
  Apply *apply = data;

  g_clear_pointer (&apply->changes, g_array_unref);
  g_clear_pointer (&apply->undo, g_array_unref);
  g_clear_weak_pointer (&apply->progress);
  g_free (apply->title);
  g_free (apply);
}

static void apply_start (LetterboxWindow *self,
                         GArray          *changes,
                         GArray          *undo,
                         const char      *title);

static void
undo_clicked_cb (AdwToast *toast,
                 Apply    *apply)
{
  g_autoptr(GArray) undo = g_steal_pointer (&apply->undo);

  g_debug ("Undo: %s", undo != NULL ? "sending the inverse changes" : "done already");
  if (undo != NULL)
    apply_start (apply->self, g_steal_pointer (&undo), NULL, NULL);
}

static void
flag_names (GStrvBuilder   *names,
            LbMessageFlags  flags)
{
  if (flags & LB_MESSAGE_FLAG_SEEN)
    g_strv_builder_add (names, "\\Seen");
  if (flags & LB_MESSAGE_FLAG_FLAGGED)
    g_strv_builder_add (names, "\\Flagged");
}

/* ApplyChanges' a(sa{sv}) for @n changes from @first. */
static GVariant *
changes_variant (GArray *changes,
                 guint   first,
                 guint   n)
{
  GVariantBuilder builder;

  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sa{sv})"));
  for (guint i = first; i < first + n; i++)
    {
      const Change *change = &g_array_index (changes, Change, i);
      GVariantDict dict;

      g_variant_dict_init (&dict, NULL);
      g_variant_dict_insert (&dict, "message", "x", change->message);
      if (change->op == 'f')
        {
          g_autoptr(GStrvBuilder) add = g_strv_builder_new ();
          g_autoptr(GStrvBuilder) remove = g_strv_builder_new ();
          g_auto(GStrv) add_names = NULL;
          g_auto(GStrv) remove_names = NULL;

          flag_names (add, change->add);
          flag_names (remove, change->remove);
          add_names = g_strv_builder_end (add);
          remove_names = g_strv_builder_end (remove);
          g_variant_dict_insert_value (&dict, "add", g_variant_new_strv ((const char * const *) add_names, -1));
          g_variant_dict_insert_value (&dict, "remove",
                                       g_variant_new_strv ((const char * const *) remove_names, -1));
        }
      else if (change->op == 'm')
        g_variant_dict_insert (&dict, "folder", "x", change->folder);
      g_variant_builder_add (&builder, "(s@a{sv})",
                             change->op == 'f' ? "flags" : change->op == 'm' ? "move" : "delete",
                             g_variant_dict_end (&dict));
    }
  return g_variant_builder_end (&builder);
}

static void apply_send_next (Apply *apply);

static void
apply_progress (Apply *apply)
{
  LetterboxWindow *self = apply->self;
  g_autofree char *title = NULL;

  if (g_get_monotonic_time () - apply->started < PROGRESS_DELAY_US)
    return;
  /* Translators: progress of a change to many messages: "1500 of 100000 messages changed". */
  title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u of %u message changed…",
                                        "%u of %u messages changed…", apply->changes->len),
                           apply->next, apply->changes->len);
  if (apply->progress != NULL)
    {
      adw_toast_set_title (apply->progress, title);
      return;
    }
  /* Never again once gone: it would replace a newer toast, and its Undo. */
  if (apply->progress_shown)
    return;
  apply->progress_shown = TRUE;
  apply->progress = adw_toast_new (title);
  g_object_add_weak_pointer (G_OBJECT (apply->progress), (gpointer *) &apply->progress);
  adw_toast_set_timeout (apply->progress, 0);
  letterbox_toaster_show (self->toaster, apply->progress);
}

/* A batch failed: the batches before it were applied. Says how far the change got and
 * offers to undo that part. */
static void
apply_stopped (Apply      *apply,
               const char *why)
{
  g_autoptr(LetterboxWindow) self = apply->self;   /* the calls' reference */
  guint done = apply->in_flight;
  g_autofree char *title = NULL;
  g_autofree char *markup = NULL;
  AdwToast *toast;

  if (apply->progress != NULL)
    letterbox_toaster_dismiss (self->toaster, apply->progress);
  if (done == 0)
    {
      /* Translators: %s says why, from the background service. */
      title = g_strdup_printf (_("The change was not made: %s"), why);
      show_toast (self, title);
      apply_free (apply, NULL);
      return;
    }
  /* Translators: a change to many messages stopped partway; %s says why. */
  title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "Only %u of %u message changed: %s",
                                        "Only %u of %u messages changed: %s",
                                        apply->changes->len),
                           done, apply->changes->len, why);
  markup = g_markup_escape_text (title, -1);
  toast = adw_toast_new (markup);
  adw_toast_set_timeout (toast, 0);
  if (apply->undo != NULL && apply->undo->len == apply->changes->len)
    {
      /* The undo of a move is the move back of the same message, in the same order. */
      g_array_set_size (apply->undo, done);
      adw_toast_set_button_label (toast, _("_Undo"));
      g_signal_connect_data (toast, "button-clicked", G_CALLBACK (undo_clicked_cb), apply,
                             apply_free, 0);
    }
  else
    apply_free (apply, NULL);
  letterbox_toaster_show (self->toaster, toast);
}

static void
apply_done_cb (GObject      *object,
               GAsyncResult *result,
               gpointer      user_data)
{
  Apply *apply = user_data;
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;

  reply = g_dbus_proxy_call_finish (G_DBUS_PROXY (object), result, &error);
  if (reply == NULL)
    {
      g_dbus_error_strip_remote_error (error);
      g_debug ("ApplyChanges failed: %s", error->message);
      apply_stopped (apply, error->message);
      return;
    }
  apply_send_next (apply);
}

/* Sends the next batch, or when all are sent says so (with the Undo button). */
static void
apply_send_next (Apply *apply)
{
  LbBusBackend1 *backend = get_backend (apply->self);
  g_autoptr(LetterboxWindow) self = NULL;
  g_autofree char *markup = NULL;
  AdwToast *toast;
  guint n;

  if (apply->next < apply->changes->len)
    {
      if (backend == NULL)
        {
          apply->in_flight = apply->next;
          apply_stopped (apply, _("the background service cannot be reached"));
          return;
        }
      if (apply->next > 0)
        apply_progress (apply);
      n = MIN (BATCH_SIZE, apply->changes->len - apply->next);
      /* The proxy's default timeout (25 s) is for one quick call: a batch may take longer
       * on a slow disk. */
      g_dbus_proxy_call (G_DBUS_PROXY (backend), "ApplyChanges",
                         g_variant_new ("(@a(sa{sv}))",
                                        changes_variant (apply->changes, apply->next, n)),
                         G_DBUS_CALL_FLAGS_NONE, 300 * 1000, NULL, apply_done_cb, apply);
      apply->in_flight = apply->next;
      apply->next += n;
      return;
    }

  self = apply->self;
  /* The progress goes (the toaster replaces it when it is the last toast). */
  if (apply->progress != NULL &&
      (apply->title == NULL || apply->progress != letterbox_toaster_get_latest (self->toaster)))
    letterbox_toaster_dismiss (self->toaster, apply->progress);
  if (apply->title == NULL)
    {
      apply_free (apply, NULL);
      return;
    }

  markup = g_markup_escape_text (apply->title, -1);
  toast = adw_toast_new (markup);
  /* The Undo of a change to more messages than a batch (after "select all") stays until
   * the next toast or the user closes it: such a change is seen through before it is
   * undone. */
  adw_toast_set_timeout (toast, apply->changes->len > BATCH_SIZE ? 0 : 8);
  if (apply->undo != NULL)
    {
      adw_toast_set_button_label (toast, _("_Undo"));
      /* The toast lives inside the window, so the window outlives the handler. */
      g_signal_connect_data (toast, "button-clicked", G_CALLBACK (undo_clicked_cb), apply,
                             apply_free, 0);
    }
  else
    apply_free (apply, NULL);
  letterbox_toaster_show (self->toaster, toast);
}

/* Sends @changes (Change, taken) in batches; when all worked and @title is not %NULL,
 * says @title in a toast, with an Undo button that sends @undo (taken, may be %NULL). A
 * change taking over a second shows its progress meanwhile. */
static void
apply_start (LetterboxWindow *self,
             GArray          *changes,
             GArray          *undo,
             const char      *title)
{
  Apply *apply = g_new0 (Apply, 1);

  apply->self = g_object_ref (self);
  apply->changes = changes;
  apply->undo = undo;
  apply->title = g_strdup (title);
  apply->started = g_get_monotonic_time ();
  g_debug ("Applying %u changes", changes->len);
  if (changes->len == 0)
    {
      g_clear_object (&apply->self);
      apply_free (apply, NULL);
      return;
    }
  apply_send_next (apply);
}

static GArray *
changes_new (void)
{
  return g_array_new (FALSE, FALSE, sizeof (Change));
}

static void
add_flags (GArray         *changes,
           gint64          message_id,
           LbMessageFlags  add,
           LbMessageFlags  remove)
{
  Change change = { .message = message_id, .op = 'f', .add = add, .remove = remove };

  g_array_append_val (changes, change);
}

static void
add_move (GArray *changes,
          gint64  message_id,
          gint64  folder_id)
{
  Change change = { .message = message_id, .op = 'm', .folder = folder_id };

  g_array_append_val (changes, change);
}

static void
add_delete (GArray *changes,
            gint64  message_id)
{
  Change change = { .message = message_id, .op = 'd' };

  g_array_append_val (changes, change);
}

static const char *
folder_account (LetterboxWindow *self,
                gint64           folder_id)
{
  LbFolder *folder = letterbox_sidebar_find_folder (self->sidebar, folder_id);

  return folder != NULL ? lb_folder_get_account_id (folder) : NULL;
}

/* Where archiving a message of @folder_id puts it, or 0 when it cannot be archived (no
 * archive folder, or it is there already). */
static gint64
archive_target (LetterboxWindow *self,
                gint64           folder_id)
{
  const char *account = folder_account (self, folder_id);
  LbFolder *archive = account != NULL ? letterbox_sidebar_find_archive (self->sidebar, account)
                                      : NULL;

  if (archive == NULL || lb_folder_get_id (archive) == folder_id)
    return 0;
  return lb_folder_get_id (archive);
}

/* Whether the account of @folder_id has an archive folder (\Archive, else "All Mail"). */
static gboolean
has_archive (LetterboxWindow *self,
             gint64           folder_id)
{
  const char *account = folder_account (self, folder_id);

  return account != NULL && letterbox_sidebar_find_archive (self->sidebar, account) != NULL;
}

/* The Trash that deleting a message of @folder_id moves it to, or 0 when deleting removes
 * it for good (it is in the Trash already, or the account has none). */
static gint64
trash_target (LetterboxWindow *self,
              gint64           folder_id)
{
  const char *account = folder_account (self, folder_id);
  LbFolder *trash = account != NULL ? letterbox_sidebar_find_role (self->sidebar, account,
                                                                   LB_FOLDER_ROLE_TRASH)
                                    : NULL;

  if (trash == NULL || lb_folder_get_id (trash) == folder_id)
    return 0;
  return lb_folder_get_id (trash);
}

/* After "select all" in a list longer than its loaded rows, actions go to every message
 * of the folder (or search) shown, read from the store first. */
static gboolean
whole_list_selected (LetterboxWindow *self,
                     GPtrArray       *selected)
{
  guint n = letterbox_message_list_get_n_items (self->message_list);

  return letterbox_message_list_get_all_selected (self->message_list) &&
         (n > selected->len || letterbox_message_list_get_threads (self->message_list));
}

static void
update_actions (LetterboxWindow *self)
{
  g_autoptr(GPtrArray) selected = list_get_selected (self);
  gboolean whole = whole_list_selected (self, selected);
  gboolean any = selected->len > 0 || whole;
  gboolean archivable = whole;
  gboolean unread = whole, read = whole;

  for (guint i = 0; i < selected->len; i++)
    {
      LbMessageSummary *message = g_ptr_array_index (selected, i);
      gint64 folder_id = lb_message_summary_get_folder_id (message);

      /* Archive stays on for an account without an archive folder: it says so. Off when
       * all are in their archive already. */
      if (archive_target (self, folder_id) != 0 || !has_archive (self, folder_id))
        archivable = TRUE;
      if (lb_message_summary_get_flags (message) & LB_MESSAGE_FLAG_SEEN)
        read = TRUE;
      else
        unread = TRUE;
    }

  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.mark-read", unread);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.mark-unread", read);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.star-selected", any);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.archive", archivable);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.delete", any);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.move", any);
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "win.move-to", any);
  gtk_widget_set_sensitive (GTK_WIDGET (self->move_button), any);
}

/* What an action does to the selected messages. */
typedef enum
{
  ACT_MARK_READ,
  ACT_MARK_UNREAD,
  ACT_STAR,
  ACT_ARCHIVE,
  ACT_TRASH,                   /* Delete: to the Trash, or for good after asking */
  ACT_MOVE,
} Act;

static void act_on_refs (LetterboxWindow *self,
                         Act              act,
                         gint64           folder_id,
                         GArray          *refs);

typedef struct
{
  LetterboxWindow *self;
  Act act;
  gint64 folder_id;
  GtkBitset *positions;        /* the rows chosen, or NULL for all */
  guint n_items;               /* the list's length when they were chosen */
} Bulk;

static void
bulk_ids_cb (GObject      *object,
             GAsyncResult *result,
             gpointer      user_data)
{
  Bulk *bulk = user_data;
  g_autoptr(LetterboxWindow) self = bulk->self;
  g_autoptr(GArray) refs = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GtkBitset) positions = bulk->positions;
  Act act = bulk->act;
  gint64 folder_id = bulk->folder_id;
  guint n_items = bulk->n_items;

  g_free (bulk);
  refs = letterbox_message_list_list_all_finish (LETTERBOX_MESSAGE_LIST (object), result, &error);
  if (refs == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_toast (self, error->message);
      return;
    }
  if (positions != NULL)
    {
      /* The rows chosen by position, the store's order being the list's: unless mail
       * came or went meanwhile, when the positions no longer say which. */
      guint kept = 0;

      if (refs->len != n_items)
        {
          show_toast (self, _("Nothing was changed: the list changed meanwhile. Select again."));
          return;
        }
      for (guint i = 0; i < refs->len; i++)
        if (gtk_bitset_contains (positions, i))
          g_array_index (refs, LbMessageRef, kept++) = g_array_index (refs, LbMessageRef, i);
      g_array_set_size (refs, kept);
    }
  g_debug ("Select all: %u messages", refs->len);
  act_on_refs (self, act, folder_id, refs);
}

/* Runs @act on the selection: the selected rows, or after "select all" every message of
 * the list, loaded or not. */
static void
act_on_selection (LetterboxWindow *self,
                  Act              act,
                  gint64           folder_id)
{
  g_autoptr(GPtrArray) selected = list_get_selected (self);
  g_autoptr(GtkBitset) positions = letterbox_message_list_get_selection (self->message_list);
  gboolean unloaded = gtk_bitset_get_size (positions) > selected->len;
  gboolean threads = letterbox_message_list_get_threads (self->message_list);
  g_autoptr(GArray) refs = NULL;

  if (whole_list_selected (self, selected) || (unloaded && !threads))
    {
      Bulk *bulk = g_new0 (Bulk, 1);

      bulk->self = g_object_ref (self);
      bulk->act = act;
      bulk->folder_id = folder_id;
      /* Some chosen rows were never read (a range over pages not loaded): by position. */
      if (!whole_list_selected (self, selected))
        bulk->positions = g_steal_pointer (&positions);
      bulk->n_items = letterbox_message_list_get_n_items (self->message_list);
      letterbox_message_list_list_all_async (self->message_list, self->cancellable,
                                             bulk_ids_cb, bulk);
      return;
    }
  if (unloaded)
    {
      /* Conversations are rows of several messages: the ones not read yet cannot be told
       * by position. Nothing rather than part. */
      show_toast (self, _("Nothing was changed: some of the chosen conversations are not "
                          "loaded yet. Scroll over them, or select all."));
      return;
    }

  refs = g_array_sized_new (FALSE, FALSE, sizeof (LbMessageRef), selected->len);
  for (guint i = 0; i < selected->len; i++)
    {
      LbMessageSummary *message = g_ptr_array_index (selected, i);
      LbMessageRef ref = {
        .id = lb_message_summary_get_id (message),
        .folder_id = lb_message_summary_get_folder_id (message),
        .flags = lb_message_summary_get_flags (message),
      };

      g_array_append_val (refs, ref);
    }
  act_on_refs (self, act, folder_id, refs);
}

static void
delete_forever_response_cb (AdwMessageDialog *dialog,
                            const char       *response,
                            gpointer          user_data)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (gtk_window_get_transient_for (GTK_WINDOW (dialog)));
  GArray *changes = user_data;

  if (g_str_equal (response, "delete"))
    apply_start (self, g_array_ref (changes), NULL, _("Deleted for good"));
  g_array_unref (changes);
}

/* Asks before deleting @forever (Change) for good. */
static void
confirm_delete_forever (LetterboxWindow *self,
                        GArray          *forever)
{
  AdwMessageDialog *dialog;
  g_autofree char *body = NULL;

  body = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE,
                                       "%u message will be deleted for good. This cannot be undone.",
                                       "%u messages will be deleted for good. This cannot be undone.",
                                       forever->len),
                          forever->len);
  dialog = ADW_MESSAGE_DIALOG (adw_message_dialog_new (GTK_WINDOW (self),
                                                       _("Delete for Good?"), body));
  adw_message_dialog_add_responses (dialog, "cancel", _("_Cancel"), "delete", _("_Delete"), NULL);
  adw_message_dialog_set_response_appearance (dialog, "delete", ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (dialog, "cancel");
  adw_message_dialog_set_close_response (dialog, "cancel");
  g_signal_connect (dialog, "response", G_CALLBACK (delete_forever_response_cb), forever);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* Per folder, where archiving or deleting moves its messages (0: nowhere). */
static gint64
cached_target (LetterboxWindow *self,
               GHashTable      *cache,
               Act              act,
               gint64           from)
{
  gpointer value;
  gint64 to;

  if (g_hash_table_lookup_extended (cache, &from, NULL, &value))
    return *(gint64 *) value;
  to = act == ACT_ARCHIVE ? archive_target (self, from) : trash_target (self, from);
  g_hash_table_insert (cache, g_memdup2 (&from, sizeof from), g_memdup2 (&to, sizeof to));
  return to;
}

static void
act_on_refs (LetterboxWindow *self,
             Act              act,
             gint64           folder_id,
             GArray          *refs)
{
  g_autoptr(GArray) changes = changes_new ();
  g_autoptr(GArray) undo = NULL;
  g_autoptr(GArray) forever = NULL;
  g_autoptr(GHashTable) targets = NULL;
  g_autofree char *title = NULL;
  guint n;

  switch (act)
    {
    case ACT_MARK_READ:
    case ACT_MARK_UNREAD:
      for (guint i = 0; i < refs->len; i++)
        {
          const LbMessageRef *ref = &g_array_index (refs, LbMessageRef, i);
          gboolean is_seen = (ref->flags & LB_MESSAGE_FLAG_SEEN) != 0;

          if (is_seen != (act == ACT_MARK_READ))
            add_flags (changes, ref->id, act == ACT_MARK_READ ? LB_MESSAGE_FLAG_SEEN : 0,
                       act == ACT_MARK_READ ? 0 : LB_MESSAGE_FLAG_SEEN);
        }
      apply_start (self, g_steal_pointer (&changes), NULL, NULL);
      return;

    case ACT_STAR:
      {
        gboolean star = FALSE;

        /* Stars them all unless all have one already: then it takes the stars away. */
        for (guint i = 0; i < refs->len; i++)
          if (!(g_array_index (refs, LbMessageRef, i).flags & LB_MESSAGE_FLAG_FLAGGED))
            star = TRUE;
        for (guint i = 0; i < refs->len; i++)
          add_flags (changes, g_array_index (refs, LbMessageRef, i).id,
                     star ? LB_MESSAGE_FLAG_FLAGGED : 0, star ? 0 : LB_MESSAGE_FLAG_FLAGGED);
        apply_start (self, g_steal_pointer (&changes), NULL, NULL);
        return;
      }

    case ACT_ARCHIVE:
    case ACT_TRASH:
    case ACT_MOVE:
    default:
      break;
    }

  /* Moves, with an undo that moves each back where it was. */
  undo = changes_new ();
  forever = changes_new ();
  targets = g_hash_table_new_full (g_int64_hash, g_int64_equal, g_free, g_free);
  for (guint i = 0; i < refs->len; i++)
    {
      const LbMessageRef *ref = &g_array_index (refs, LbMessageRef, i);
      gint64 to = act == ACT_MOVE ? folder_id : cached_target (self, targets, act, ref->folder_id);

      if (to == 0 && act == ACT_TRASH)
        add_delete (forever, ref->id);
      if (to == 0 || to == ref->folder_id)
        continue;
      add_move (changes, ref->id, to);
      add_move (undo, ref->id, ref->folder_id);
      /* Moved away before the mark-read delay: it was not read here. */
      if (self->mark_read_id != 0 && self->mark_read_message == ref->id)
        g_clear_handle_id (&self->mark_read_id, g_source_remove);
    }

  n = changes->len;
  for (guint i = 0; act == ACT_ARCHIVE && i < refs->len; i++)
    if (cached_target (self, targets, act, g_array_index (refs, LbMessageRef, i).folder_id) == 0 &&
        !has_archive (self, g_array_index (refs, LbMessageRef, i).folder_id))
      {
        /* No \Archive nor "All Mail" folder in the account: its messages stay. */
        show_toast (self, n == 0 ? _("Not archived: the account has no archive folder")
                                 : _("Some messages were not archived: their account has no archive folder"));
        break;
      }
  if (n > 0)
    {
      switch (act)
        {
        case ACT_ARCHIVE:
          title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u message archived",
                                                "%u messages archived", n), n);
          break;
        case ACT_TRASH:
          title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u message moved to Trash",
                                                "%u messages moved to Trash", n), n);
          break;
        case ACT_MOVE:
        case ACT_MARK_READ:
        case ACT_MARK_UNREAD:
        case ACT_STAR:
        default:
          {
            LbFolder *folder = letterbox_sidebar_find_folder (self->sidebar, folder_id);
            g_autofree char *name = folder != NULL ? letterbox_folder_dup_display_name (folder)
                                                   : g_strdup ("?");

            /* Translators: "3 messages moved to Projects". */
            title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u message moved to %s",
                                                  "%u messages moved to %s", n), n, name);
          }
        }
      apply_start (self, g_steal_pointer (&changes), g_steal_pointer (&undo), title);
    }
  if (forever->len > 0)
    confirm_delete_forever (self, g_steal_pointer (&forever));
}

static void
mark_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  act_on_selection (LETTERBOX_WINDOW (widget),
                    g_str_equal (action_name, "win.mark-read") ? ACT_MARK_READ : ACT_MARK_UNREAD, 0);
}

static void
star_selected_action (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *parameter)
{
  act_on_selection (LETTERBOX_WINDOW (widget), ACT_STAR, 0);
}

static void
get_message_thread (GTask        *task,
                    gpointer      source_object,
                    gpointer      task_data,
                    GCancellable *cancellable)
{
  GError *error = NULL;
  LbStoreMessage *message = lb_store_get_message (source_object, *(gint64 *) task_data, &error);

  if (message == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, message, (GDestroyNotify) lb_store_message_free);
}

static void
star_lookup_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(LetterboxWindow) self = user_data;
  g_autoptr(LbStoreMessage) message = NULL;
  g_autoptr(GError) error = NULL;
  g_autoptr(GArray) changes = changes_new ();
  gint64 id = *(gint64 *) g_task_get_task_data (G_TASK (result));
  gboolean star;

  message = g_task_propagate_pointer (G_TASK (result), &error);
  if (message == NULL)
    {
      show_toast (self, error->message);
      return;
    }

  star = !(message->flags & LB_MESSAGE_FLAG_FLAGGED);
  add_flags (changes, id, star ? LB_MESSAGE_FLAG_FLAGGED : 0, star ? 0 : LB_MESSAGE_FLAG_FLAGGED);
  apply_start (self, g_steal_pointer (&changes), NULL, NULL);
}

/* win.star(x): turns the star of one message on or off (its row's star button). The
 * store says which it has now. */
static void
star_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (widget);
  g_autoptr(GTask) task = NULL;
  gint64 *id;

  if (self->store == NULL)
    return;

  id = g_new (gint64, 1);
  *id = g_variant_get_int64 (parameter);
  task = g_task_new (self->store, self->cancellable, star_lookup_cb, g_object_ref (self));
  g_task_set_task_data (task, id, g_free);
  g_task_run_in_thread (task, get_message_thread);
}

static void
archive_action (GtkWidget  *widget,
                const char *action_name,
                GVariant   *parameter)
{
  act_on_selection (LETTERBOX_WINDOW (widget), ACT_ARCHIVE, 0);
}

/* Delete: to the account's Trash (with undo); messages in the Trash already, or of an
 * account without one, are deleted for good after the user says so. */
static void
delete_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  act_on_selection (LETTERBOX_WINDOW (widget), ACT_TRASH, 0);
}

static void
move_to_action (GtkWidget  *widget,
                const char *action_name,
                GVariant   *parameter)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (widget);

  gtk_popover_popdown (self->move_popover);
  act_on_selection (self, ACT_MOVE, g_variant_get_int64 (parameter));
}

static gboolean
move_filter_func (GtkListBoxRow *row,
                  gpointer       user_data)
{
  LetterboxWindow *self = user_data;
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->move_filter));
  const char *path = g_object_get_data (G_OBJECT (row), "letterbox-folder-path");
  g_autofree char *folded_text = NULL;
  g_autofree char *folded_path = NULL;

  if (text[0] == '\0' || path == NULL)
    return TRUE;
  folded_text = g_utf8_casefold (text, -1);
  folded_path = g_utf8_casefold (path, -1);
  return strstr (folded_path, folded_text) != NULL;
}

/* Fills the folder picker: every folder but the shown one, named with its account. */
static void
move_popover_show_cb (LetterboxWindow *self)
{
  g_autoptr(GPtrArray) folders = letterbox_sidebar_get_folders (self->sidebar);
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->move_list))) != NULL)
    gtk_list_box_remove (self->move_list, child);
  gtk_editable_set_text (GTK_EDITABLE (self->move_filter), "");

  for (guint i = 0; i < folders->len; i++)
    {
      LbFolder *folder = g_ptr_array_index (folders, i);
      g_autofree char *path = letterbox_sidebar_dup_folder_path (self->sidebar, folder);
      GtkWidget *row, *box, *icon, *label;

      if (self->shown_folder != NULL &&
          lb_folder_get_id (folder) == lb_folder_get_id (self->shown_folder))
        continue;

      box = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
      icon = gtk_image_new_from_icon_name (letterbox_folder_get_icon_name (folder));
      gtk_accessible_update_property (GTK_ACCESSIBLE (icon), GTK_ACCESSIBLE_PROPERTY_LABEL, "", -1);
      label = gtk_label_new (path);
      gtk_label_set_xalign (GTK_LABEL (label), 0);
      gtk_label_set_ellipsize (GTK_LABEL (label), PANGO_ELLIPSIZE_MIDDLE);
      gtk_box_append (GTK_BOX (box), icon);
      gtk_box_append (GTK_BOX (box), label);
      row = gtk_list_box_row_new ();
      gtk_list_box_row_set_child (GTK_LIST_BOX_ROW (row), box);
      gtk_actionable_set_action_name (GTK_ACTIONABLE (row), "win.move-to");
      gtk_actionable_set_action_target (GTK_ACTIONABLE (row), "x", lb_folder_get_id (folder));
      gtk_accessible_update_property (GTK_ACCESSIBLE (row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      path, -1);
      g_object_set_data_full (G_OBJECT (row), "letterbox-folder-path", g_steal_pointer (&path),
                              g_free);
      gtk_list_box_append (self->move_list, row);
    }
  gtk_widget_grab_focus (GTK_WIDGET (self->move_filter));
}

static void
move_filter_changed_cb (LetterboxWindow *self)
{
  gtk_list_box_invalidate_filter (self->move_list);
}

/* Enter in the filter moves to the first folder that is left. */
static void
move_filter_activate_cb (LetterboxWindow *self)
{
  /* The filter may not have seen the last keys yet (search-changed waits 150 ms). */
  gtk_list_box_invalidate_filter (self->move_list);
  for (GtkWidget *row = gtk_widget_get_first_child (GTK_WIDGET (self->move_list));
       row != NULL;
       row = gtk_widget_get_next_sibling (row))
    if (gtk_widget_get_child_visible (row) && gtk_widget_get_visible (row))
      {
        gtk_widget_activate (row);
        return;
      }
}

static void
move_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  gtk_menu_button_popup (LETTERBOX_WINDOW (widget)->move_button);
}

static void
messages_dropped_cb (LetterboxWindow *self,
                     LbFolder        *folder,
                     const char      *ids)
{
  g_auto(GStrv) parts = g_strsplit (ids, ",", -1);
  g_autoptr(GArray) changes = changes_new ();
  g_autoptr(GPtrArray) selected = list_get_selected (self);
  g_autoptr(GArray) undo = changes_new ();
  g_autofree char *name = letterbox_folder_dup_display_name (folder);
  g_autofree char *title = NULL;
  guint n = 0;

  /* Dragging the whole list after "select all" moves every message of it. */
  if (whole_list_selected (self, selected))
    {
      act_on_selection (self, ACT_MOVE, lb_folder_get_id (folder));
      return;
    }

  for (guint i = 0; parts[i] != NULL; i++)
    {
      gint64 id;

      if (!g_ascii_string_to_signed (g_strstrip (parts[i]), 10, 1, G_MAXINT64, &id, NULL))
        continue;
      add_move (changes, id, lb_folder_get_id (folder));
      n++;
      /* The undo knows where a message was when the list still shows it. */
      for (guint j = 0; j < selected->len; j++)
        if (lb_message_summary_get_id (g_ptr_array_index (selected, j)) == id)
          add_move (undo, id, lb_message_summary_get_folder_id (g_ptr_array_index (selected, j)));
    }
  if (n == 0)
    return;

  title = g_strdup_printf (g_dngettext (GETTEXT_PACKAGE, "%u message moved to %s",
                                        "%u messages moved to %s", n), n, name);
  if (undo->len != n)
    g_clear_pointer (&undo, g_array_unref);
  apply_start (self, g_steal_pointer (&changes), g_steal_pointer (&undo), title);
}

static void
select_all_action (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  list_select_all (LETTERBOX_WINDOW (widget));
}

static void
next_action (GtkWidget  *widget,
             const char *action_name,
             GVariant   *parameter)
{
  list_select_next (LETTERBOX_WINDOW (widget), g_str_equal (action_name, "win.next-message") ? 1 : -1);
}

static void
search_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (widget);

  gtk_search_bar_set_search_mode (self->search_bar, TRUE);
  gtk_widget_grab_focus (GTK_WIDGET (self->search_entry));
}

static void
escape_action (GtkWidget  *widget,
               const char *action_name,
               GVariant   *parameter)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (widget);

  if (gtk_search_bar_get_search_mode (self->search_bar))
    gtk_search_bar_set_search_mode (self->search_bar, FALSE);
}

/* Live results, 150 ms after the last key (GtkSearchEntry's search-delay). */
static void
search_changed_cb (LetterboxWindow *self)
{
  const char *text = gtk_editable_get_text (GTK_EDITABLE (self->search_entry));
  g_autofree char *trimmed = g_strstrip (g_strdup (text));

  if (!gtk_search_bar_get_search_mode (self->search_bar))
    return;
  if (trimmed[0] == '\0')
    {
      show_selected_folder (self);
      return;
    }
  adw_window_title_set_title (self->window_title, _("Search"));
  adw_window_title_set_subtitle (self->window_title, text);
  list_show_query (self, text);
}

/* Leaving the search goes back to the folder. */
static void
search_mode_cb (LetterboxWindow *self)
{
  if (gtk_search_bar_get_search_mode (self->search_bar))
    return;
  gtk_editable_set_text (GTK_EDITABLE (self->search_entry), "");
  show_selected_folder (self);
}

/* Mark read on open: a message that stays selected alone for "mark-read-delay" seconds. */
static gboolean
mark_read_timeout_cb (gpointer user_data)
{
  LetterboxWindow *self = user_data;
  g_autoptr(GArray) changes = changes_new ();

  self->mark_read_id = 0;
  g_debug ("Marking message %" G_GINT64_FORMAT " read", self->mark_read_message);
  add_flags (changes, self->mark_read_message, LB_MESSAGE_FLAG_SEEN, 0);
  apply_start (self, g_steal_pointer (&changes), NULL, NULL);
  return G_SOURCE_REMOVE;
}

static void
selection_changed_cb (LetterboxWindow *self)
{
  g_autoptr(GPtrArray) selected = list_get_selected (self);
  int delay = g_settings_get_int (self->settings, "mark-read-delay");
  LbMessageSummary *message;

  update_actions (self);

  if (selected->len != 1 || delay < 0)
    {
      g_clear_handle_id (&self->mark_read_id, g_source_remove);
      return;
    }

  message = g_ptr_array_index (selected, 0);
  if (self->mark_read_id != 0 && self->mark_read_message == lb_message_summary_get_id (message))
    return;  /* the same message, after a refresh */

  g_clear_handle_id (&self->mark_read_id, g_source_remove);
  if (lb_message_summary_get_flags (message) & LB_MESSAGE_FLAG_SEEN)
    return;
  self->mark_read_message = lb_message_summary_get_id (message);
  self->mark_read_id = g_timeout_add (delay * 1000, mark_read_timeout_cb, self);
}

static void
triage_class_init (GtkWidgetClass *widget_class)
{
  gtk_widget_class_install_action (widget_class, "win.mark-read", NULL, mark_action);
  gtk_widget_class_install_action (widget_class, "win.mark-unread", NULL, mark_action);
  gtk_widget_class_install_action (widget_class, "win.star", "x", star_action);
  gtk_widget_class_install_action (widget_class, "win.star-selected", NULL, star_selected_action);
  gtk_widget_class_install_action (widget_class, "win.archive", NULL, archive_action);
  gtk_widget_class_install_action (widget_class, "win.delete", NULL, delete_action);
  gtk_widget_class_install_action (widget_class, "win.move", NULL, move_action);
  gtk_widget_class_install_action (widget_class, "win.move-to", "x", move_to_action);
  gtk_widget_class_install_action (widget_class, "win.select-all", NULL, select_all_action);
  gtk_widget_class_install_action (widget_class, "win.next-message", NULL, next_action);
  gtk_widget_class_install_action (widget_class, "win.previous-message", NULL, next_action);
  gtk_widget_class_install_action (widget_class, "win.search", NULL, search_action);
  gtk_widget_class_install_action (widget_class, "win.escape", NULL, escape_action);

  /* Geary's keys where it has them (app/gtk/help-overlay.ui lists them all). Single
   * letters are bubble-phase bindings: typing in an entry never triggers them. */
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_i, GDK_CONTROL_MASK, "win.mark-read", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_I, GDK_SHIFT_MASK, "win.mark-read", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_u, GDK_CONTROL_MASK, "win.mark-unread", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_U, GDK_SHIFT_MASK, "win.mark-unread", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_s, 0, "win.star-selected", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_a, 0, "win.archive", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_e, 0, "win.archive", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Delete, 0, "win.delete", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_KP_Delete, 0, "win.delete", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_m, 0, "win.move", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_a, GDK_CONTROL_MASK, "win.select-all", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_j, 0, "win.next-message", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_k, 0, "win.previous-message", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_f, GDK_CONTROL_MASK, "win.search", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_slash, 0, "win.search", NULL);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "win.escape", NULL);
}

static void
triage_init (LetterboxWindow *self)
{
  GtkEventController *shortcuts = gtk_shortcut_controller_new ();

  /* Ctrl+Page Down/Up: caught before the focused message list, whose own binding for
   * them moves its focus without selecting. */
  gtk_event_controller_set_propagation_phase (shortcuts, GTK_PHASE_CAPTURE);
  gtk_shortcut_controller_add_shortcut (GTK_SHORTCUT_CONTROLLER (shortcuts),
                                        gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_Page_Down,
                                                                                  GDK_CONTROL_MASK),
                                                          gtk_named_action_new ("win.next-message")));
  gtk_shortcut_controller_add_shortcut (GTK_SHORTCUT_CONTROLLER (shortcuts),
                                        gtk_shortcut_new (gtk_keyval_trigger_new (GDK_KEY_Page_Up,
                                                                                  GDK_CONTROL_MASK),
                                                          gtk_named_action_new ("win.previous-message")));
  gtk_widget_add_controller (GTK_WIDGET (self), shortcuts);

  g_object_bind_property (self->search_button, "active", self->search_bar, "search-mode-enabled",
                          G_BINDING_BIDIRECTIONAL | G_BINDING_SYNC_CREATE);
  gtk_search_bar_connect_entry (self->search_bar, GTK_EDITABLE (self->search_entry));
  g_signal_connect_swapped (self->search_entry, "search-changed",
                            G_CALLBACK (search_changed_cb), self);
  g_signal_connect_swapped (self->search_bar, "notify::search-mode-enabled",
                            G_CALLBACK (search_mode_cb), self);

  gtk_list_box_set_filter_func (self->move_list, move_filter_func, self, NULL);
  g_signal_connect_swapped (self->move_popover, "show", G_CALLBACK (move_popover_show_cb), self);
  g_signal_connect_swapped (self->move_filter, "search-changed",
                            G_CALLBACK (move_filter_changed_cb), self);
  g_signal_connect_swapped (self->move_filter, "activate",
                            G_CALLBACK (move_filter_activate_cb), self);

  g_signal_connect_swapped (self->sidebar, "messages-dropped",
                            G_CALLBACK (messages_dropped_cb), self);
  g_signal_connect_swapped (self->message_list, "selection-changed",
                            G_CALLBACK (selection_changed_cb), self);
  /* A message marked read on open makes "mark unread" possible, and so on. */
  g_signal_connect_swapped (self->message_list, "selected-messages-updated",
                            G_CALLBACK (update_actions), self);
  update_actions (self);
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

  g_clear_handle_id (&self->store_changed_id, g_source_remove);
  g_clear_handle_id (&self->present_id, g_source_remove);
  g_clear_handle_id (&self->mark_read_id, g_source_remove);
  g_clear_object (&self->shown_folder);
  /* Before the overlay goes: it dismisses its toasts, and nothing must follow them. */
  g_clear_object (&self->toaster);
  g_cancellable_cancel (self->cancellable);
  g_cancellable_cancel (self->folder_cancellable);
  g_clear_object (&self->folder_cancellable);
  g_clear_object (&self->cancellable);
  g_clear_object (&self->store);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (letterbox_window_parent_class)->dispose (object);
}

/* F6 and Shift+F6 go round the panes (sidebar, message list, reading pane), so that a
 * keyboard reaches each without a walk through every control of the one before it. A
 * pane with nothing to focus (an empty reading pane) is passed over. */
static void
cycle_pane_action (GtkWidget  *widget,
                   const char *action_name,
                   GVariant   *parameter)
{
  LetterboxWindow *self = LETTERBOX_WINDOW (widget);
  GtkWidget *panes[] = {
    GTK_WIDGET (self->sidebar), GTK_WIDGET (self->message_list), GTK_WIDGET (self->message_view),
  };
  const int n_panes = G_N_ELEMENTS (panes);
  int step = g_variant_get_int32 (parameter) < 0 ? n_panes - 1 : 1;
  GtkWidget *focus = gtk_root_get_focus (GTK_ROOT (self));
  int current = step == 1 ? n_panes - 1 : 0;

  for (int i = 0; i < n_panes; i++)
    if (focus != NULL && (focus == panes[i] || gtk_widget_is_ancestor (focus, panes[i])))
      current = i;
  for (int i = 1; i <= n_panes; i++)
    {
      GtkWidget *pane = panes[(current + i * step) % n_panes];

      if (gtk_widget_get_mapped (pane) && gtk_widget_child_focus (pane, GTK_DIR_TAB_FORWARD))
        return;
    }
}

/* The shortcuts window, made when asked for and destroyed when closed. Not
 * GtkApplication's help overlay (made with each window, hidden and never realized): GTK
 * 4.8's AT-SPI root answers a GetChildAtIndex past the shown windows, which a screen
 * reader sends when a dialog closes under it, with the last toplevel in its list, and
 * aborts (a NULL object path) when that window's accessible was never realized. So no
 * hidden window stays in the list (the resource is not at gtk/help-overlay.ui for that). */
static void
show_help_overlay_action (GtkWidget  *widget,
                          const char *action_name,
                          GVariant   *parameter)
{
  g_autoptr(GtkBuilder) builder =
    gtk_builder_new_from_resource ("/org/letterbox/Letterbox/letterbox-shortcuts.ui");
  GtkWindow *shortcuts = GTK_WINDOW (gtk_builder_get_object (builder, "help_overlay"));

  gtk_window_set_transient_for (shortcuts, GTK_WINDOW (widget));
  gtk_window_present (shortcuts);
}

static void
letterbox_window_class_init (LetterboxWindowClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);
  GtkWindowClass *window_class = GTK_WINDOW_CLASS (klass);

  object_class->dispose = letterbox_window_dispose;

  g_type_ensure (LETTERBOX_TYPE_SIDEBAR);
  g_type_ensure (LETTERBOX_TYPE_MESSAGE_LIST);
  g_type_ensure (LETTERBOX_TYPE_MESSAGE_VIEW);
  g_type_ensure (LETTERBOX_TYPE_STATUS_AREA);
  g_type_ensure (LETTERBOX_TYPE_STATUS_SPINNER);
  window_class->close_request = letterbox_window_close_request;
  gtk_widget_class_install_action (widget_class, "win.show-help-overlay", NULL,
                                   show_help_overlay_action);
  gtk_widget_class_install_action (widget_class, "win.cycle-pane", "i", cycle_pane_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F6, 0, "win.cycle-pane", "i", 1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_F6, GDK_SHIFT_MASK, "win.cycle-pane",
                                       "i", -1);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_question, GDK_CONTROL_MASK,
                                       "win.show-help-overlay", NULL);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-window.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, window_title);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, status_area);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, status_spinner);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, main_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, error_page);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, outer_paned);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, inner_paned);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, sidebar);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, toast_overlay);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, search_bar);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, search_entry);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, search_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, move_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, move_popover);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, move_filter);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, move_list);
  triage_class_init (widget_class);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, message_list);
  gtk_widget_class_bind_template_child (widget_class, LetterboxWindow, message_view);
}

static void
letterbox_window_init (LetterboxWindow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->settings = g_settings_new (APP_ID);
  self->cancellable = g_cancellable_new ();
  self->toaster = letterbox_toaster_new (self->toast_overlay);

  gtk_window_set_default_size (GTK_WINDOW (self),
                               g_settings_get_int (self->settings, "window-width"),
                               g_settings_get_int (self->settings, "window-height"));
  if (g_settings_get_boolean (self->settings, "window-maximized"))
    gtk_window_maximize (GTK_WINDOW (self));
  g_settings_bind (self->settings, "sidebar-width", self->outer_paned, "position",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "message-list-width", self->inner_paned, "position",
                   G_SETTINGS_BIND_DEFAULT);

  g_signal_connect_swapped (self->message_list, "selection-changed",
                            G_CALLBACK (selected_message_changed_cb), self);
  g_signal_connect_swapped (self->message_list, "notify::loading",
                            G_CALLBACK (list_loading_cb), self);

  g_signal_connect_swapped (self->sidebar, "folder-selected",
                            G_CALLBACK (folder_selected_cb), self);
  g_signal_connect_swapped (self->sidebar, "load-failed",
                            G_CALLBACK (sidebar_load_failed_cb), self);
  triage_init (self);

  gtk_stack_set_visible_child_name (self->main_stack, "loading");
}

/* Reads the folders (their unread counts) and the shown folder's messages again; the
 * sidebar and the message list keep their selection. */
static void
refresh_mail (LetterboxWindow *self)
{
  if (self->store == NULL)
    return;
  letterbox_sidebar_refresh (self->sidebar);
  list_refresh (self);
}

/* A burst of StoreChanged (a sync commits in batches) reloads once. */
static gboolean
store_changed_timeout_cb (gpointer user_data)
{
  LetterboxWindow *self = user_data;

  self->store_changed_id = 0;
  refresh_mail (self);
  return G_SOURCE_REMOVE;
}

/* Live state (DESIGN.md): whoever writes the store says what changed; the window reads
 * it again. NewMail needs nothing more here: notifications are the backend's. */
static void
backend_store_changed_cb (LetterboxWindow *self,
                          const char      *account_id,
                          gint64           folder_id,
                          guint64          generation)
{
  if (self->store_changed_id == 0)
    self->store_changed_id = g_timeout_add (150, store_changed_timeout_cb, self);
}

LetterboxWindow *
letterbox_window_new (LetterboxApplication *application)
{
  LetterboxWindow *self = g_object_new (LETTERBOX_TYPE_WINDOW, "application", application, NULL);
  LbBusBackend1 *backend = letterbox_application_get_backend (application);
  /* One follower of the accounts' states for both widgets (they keep it). */
  g_autoptr(LetterboxAccountStates) states = letterbox_account_states_new ();

  letterbox_account_states_set_backend (states, backend);
  letterbox_status_area_set_account_states (self->status_area, states);
  letterbox_status_spinner_set_account_states (self->status_spinner, states);
  if (backend != NULL)
    g_signal_connect_object (backend, "store-changed", G_CALLBACK (backend_store_changed_cb),
                             self, G_CONNECT_SWAPPED);
  letterbox_application_open_store_async (application, self->cancellable, store_open_cb,
                                          g_object_ref (self));
  return self;
}
