/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <glib/gstdio.h>
#include <gmodule.h>
#include <string.h>

#include "lb-mime.h"
#include "lb-mime-display.h"
#include "lb-mime-summary.h"
#include "letterbox-application.h"
#include "letterbox-html-module.h"
#include "letterbox-message-view.h"

/*
 * The reading pane: one message's headers, its body and its attachments.
 *
 * The message is read from the store and parsed (GMime) in a worker thread; a body not
 * downloaded yet is asked of the backend (FetchBody) with a spinner, and an error
 * offers Retry. Plain text is shown as text, with long quotes folded away. HTML goes to
 * a WebKit view that can reach nothing, made by the HTML module (letterbox-html.c,
 * loaded in a worker thread on the first HTML body, so that a launch does not pay for
 * WebKit): the message's own parts answer its cid: URIs. "Show remote content" switches
 * to a second view built with a permissive policy, for this message or, through
 * GSettings, for every message of its sender. Links never navigate the view: the real
 * target is shown and, when the user agrees, opened in the browser.
 */

#define QUOTE_COLLAPSE_LINES 4

/* What the worker found; shared with later attachment saves (under @lock). */
typedef struct
{
  GMutex lock;
  GMimeMessage *mime;            /* NULL for a message without a body (local welcome) */
  LbStoreMessage *row;
  LbMimeSummary *summary;        /* NULL without a body */
  LbMimeDisplay *display;
  gboolean needs_fetch;          /* only headers are in the store */
} Loaded;

struct _LetterboxMessageView
{
  AdwBin parent_instance;

  GSettings *settings;
  LbBusBackend1 *backend;
  LbStore *store;
  LbMessageSummary *message;
  GCancellable *cancellable;
  Loaded *loaded;
  gboolean fetched;              /* FetchBody was asked for this message */
  gboolean remote_allowed;       /* "Show remote content" for this message */
  const char *state;
  GtkWidget *blocked_view;       /* children of html_stack, made by the HTML module */
  GtkWidget *remote_view;
  char *pending_html;            /* waits for the HTML module */

  GtkStack *stack;
  GtkLabel *subject_label;
  GtkImage *attachment_icon;
  GtkImage *star_icon;
  GtkLabel *from_label;
  GtkLabel *to_label;
  GtkLabel *cc_label;
  GtkLabel *date_label;
  GtkRevealer *remote_revealer;
  GtkStack *body_stack;
  GtkSpinner *spinner;
  GtkLabel *loading_label;
  AdwStatusPage *error_page;
  GtkTextView *text_view;
  GtkStack *html_stack;
  GtkRevealer *attachments_revealer;
  GtkListBox *attachment_list;
};

G_DEFINE_FINAL_TYPE (LetterboxMessageView, letterbox_message_view, ADW_TYPE_BIN)

enum
{
  SIGNAL_BODY_SHOWN,
  SIGNAL_RESOURCE_REQUESTED,
  N_SIGNALS
};

static guint signals[N_SIGNALS];

static void start_load (LetterboxMessageView *self);

/* g_set_str() is GLib 2.76. */
static void
replace_str (char       **where,
             const char  *value)
{
  char *old = *where;

  *where = g_strdup (value);
  g_free (old);
}

/* ---- what the worker hands back ----------------------------------------------------- */

static void
loaded_clear (Loaded *loaded)
{
  g_mutex_clear (&loaded->lock);
  g_clear_object (&loaded->mime);
  g_clear_pointer (&loaded->row, lb_store_message_free);
  g_clear_pointer (&loaded->summary, lb_mime_summary_free);
  g_clear_pointer (&loaded->display, lb_mime_display_free);
}

static Loaded *
loaded_new (void)
{
  Loaded *loaded = g_rc_box_new0 (Loaded);

  g_mutex_init (&loaded->lock);
  return loaded;
}

static void
loaded_unref (Loaded *loaded)
{
  g_rc_box_release_full (loaded, (GDestroyNotify) loaded_clear);
}

typedef struct
{
  LbStore *store;
  gint64 id;
} LoadData;

static void
load_data_free (LoadData *data)
{
  g_object_unref (data->store);
  g_free (data);
}

/* In a worker thread: the index row, and the body parsed. */
static void
load_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  LoadData *data = task_data;
  Loaded *loaded = loaded_new ();
  g_autoptr(GInputStream) body = NULL;
  GError *error = NULL;

  if ((loaded->row = lb_store_get_message (data->store, data->id, &error)) == NULL)
    goto fail;
  body = lb_store_open_body (data->store, data->id, &error);
  if (body == NULL && g_error_matches (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND))
    {
      g_clear_error (&error);
      if (loaded->row->uid != 0)
        loaded->needs_fetch = TRUE;
      else
        {
          /* Local-only mail without a body (the welcome message): its text is all of it. */
          loaded->display = g_new0 (LbMimeDisplay, 1);
          loaded->display->text = g_strdup (loaded->row->preview != NULL ? loaded->row->preview
                                                                         : "");
          loaded->display->attachments = g_ptr_array_new ();
          loaded->display->resources = g_hash_table_new (g_str_hash, g_str_equal);
        }
      g_task_return_pointer (task, loaded, (GDestroyNotify) loaded_unref);
      return;
    }
  if (body == NULL)
    goto fail;
  if ((loaded->mime = lb_mime_parse_stream (body, &error)) == NULL)
    goto fail;
  loaded->summary = lb_mime_summarise (loaded->mime, LB_MIME_SUMMARY_NONE);
  loaded->display = lb_mime_display_new (loaded->mime);
  g_task_return_pointer (task, loaded, (GDestroyNotify) loaded_unref);
  return;

fail:
  loaded_unref (loaded);
  g_task_return_error (task, error);
}

/* ---- states ------------------------------------------------------------------------ */

static void
set_state (LetterboxMessageView *self,
           const char           *state)
{
  gboolean loading = g_strcmp0 (state, "loading") == 0;

  self->state = state;
  if (g_strcmp0 (state, "empty") == 0)
    {
      gtk_stack_set_visible_child_name (self->stack, "empty");
      return;
    }
  gtk_stack_set_visible_child_name (self->stack, "message");
  if (loading)
    gtk_spinner_start (self->spinner);
  else
    gtk_spinner_stop (self->spinner);
  if (g_strcmp0 (state, "html-loading") != 0)
    gtk_stack_set_visible_child_name (self->body_stack, loading ? "loading" : state);
  if (!loading && g_strcmp0 (state, "html-loading") != 0)
    g_signal_emit (self, signals[SIGNAL_BODY_SHOWN], 0);
}

static void
show_error (LetterboxMessageView *self,
            const char           *message)
{
  adw_status_page_set_description (self->error_page, message);
  gtk_revealer_set_reveal_child (self->remote_revealer, FALSE);
  set_state (self, "error");
}

/* ---- headers ----------------------------------------------------------------------- */

static char *
format_address (const LbMimeAddress *address)
{
  if (address->name != NULL && address->name[0] != '\0' && address->address[0] != '\0')
    return g_strdup_printf ("%s <%s>", address->name, address->address);
  if (address->name != NULL && address->name[0] != '\0')
    return g_strdup (address->name);
  return g_strdup (address->address);
}

static char *
format_addresses (GPtrArray *list)
{
  g_autoptr(GString) out = g_string_new (NULL);

  for (guint i = 0; list != NULL && i < list->len; i++)
    {
      g_autofree char *one = format_address (list->pdata[i]);

      if (out->len > 0)
        g_string_append (out, ", ");
      g_string_append (out, one);
    }
  return g_string_free (g_steal_pointer (&out), FALSE);
}

static char *
format_date (gint64 unix_time)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (unix_time);
  g_autoptr(GDateTime) local = NULL;

  if (unix_time <= 0 || utc == NULL)
    return g_strdup ("");
  local = g_date_time_to_local (utc);
  /* Translators: a message's full date in the reading pane; see g_date_time_format(). */
  return g_date_time_format (local, _("%A, %-e %B %Y, %H:%M"));
}

static void
set_address_label (GtkLabel   *label,
                   const char *prefix,
                   GPtrArray  *list)
{
  g_autofree char *addresses = format_addresses (list);
  g_autofree char *text = NULL;

  gtk_widget_set_visible (GTK_WIDGET (label), addresses[0] != '\0');
  if (addresses[0] == '\0')
    return;
  text = g_strconcat (prefix, " ", addresses, NULL);
  gtk_label_set_label (label, text);
}

static void
show_summary_headers (LetterboxMessageView *self)
{
  const char *subject = lb_message_summary_get_subject (self->message);
  g_autofree char *date = format_date (lb_message_summary_get_date (self->message));

  gtk_label_set_label (self->subject_label, subject[0] != '\0' ? subject : _("(No subject)"));
  gtk_label_set_label (self->from_label, lb_message_summary_get_sender (self->message));
  gtk_label_set_label (self->date_label, date);
  gtk_widget_set_visible (GTK_WIDGET (self->date_label), date[0] != '\0');
  gtk_widget_set_visible (GTK_WIDGET (self->to_label), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->cc_label), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->star_icon),
                          (lb_message_summary_get_flags (self->message) &
                           LB_MESSAGE_FLAG_FLAGGED) != 0);
  gtk_widget_set_visible (GTK_WIDGET (self->attachment_icon), FALSE);
}

static void
show_full_headers (LetterboxMessageView *self)
{
  LbMimeSummary *summary = self->loaded->summary;
  LbStoreMessage *row = self->loaded->row;

  gtk_widget_set_visible (GTK_WIDGET (self->star_icon),
                          (row->flags & LB_MESSAGE_FLAG_FLAGGED) != 0);
  gtk_widget_set_visible (GTK_WIDGET (self->attachment_icon),
                          self->loaded->display != NULL &&
                          self->loaded->display->attachments->len > 0);
  if (summary == NULL)
    return;
  if (summary->from != NULL)
    {
      g_autofree char *from = format_address (summary->from);

      gtk_label_set_label (self->from_label, from);
    }
  if (summary->subject[0] != '\0')
    gtk_label_set_label (self->subject_label, summary->subject);
  /* Translators: before the recipients of the message shown. */
  set_address_label (self->to_label, _("To:"), summary->to);
  /* Translators: before the copy recipients of the message shown. */
  set_address_label (self->cc_label, _("Cc:"), summary->cc);
}

/* ---- attachments ------------------------------------------------------------------- */

static void
show_attachments (LetterboxMessageView *self)
{
  GPtrArray *attachments = self->loaded->display->attachments;
  GtkWidget *child;

  while ((child = gtk_widget_get_first_child (GTK_WIDGET (self->attachment_list))) != NULL)
    gtk_list_box_remove (self->attachment_list, child);

  for (guint i = 0; i < attachments->len; i++)
    {
      LbMimeAttachment *attachment = attachments->pdata[i];
      const char *name = attachment->filename != NULL ? attachment->filename
                                                      : _("Unnamed attachment");
      g_autofree char *type = g_content_type_from_mime_type (attachment->content_type);
      g_autofree char *description = g_content_type_get_description (type != NULL
                                                                       ? type
                                                                       : attachment->content_type);
      g_autofree char *size = g_format_size (attachment->size);
      g_autofree char *subtitle = g_strdup_printf ("%s — %s", description, size);
      g_autofree char *open_label = g_strdup_printf (_("Open “%s”"), name);
      g_autofree char *save_label = g_strdup_printf (_("Save “%s”"), name);
      g_autofree char *row_label = g_strdup_printf (_("Attachment %s, %s"), name, size);
      g_autoptr(GIcon) icon = g_content_type_get_symbolic_icon (type != NULL
                                                                  ? type
                                                                  : attachment->content_type);
      GtkWidget *row = adw_action_row_new ();
      GtkWidget *image = gtk_image_new_from_gicon (icon);
      GtkWidget *open = gtk_button_new_from_icon_name ("document-open-symbolic");
      GtkWidget *save = gtk_button_new_from_icon_name ("document-save-symbolic");

      adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (row), FALSE);
      adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), name);
      adw_action_row_set_subtitle (ADW_ACTION_ROW (row), subtitle);
      gtk_accessible_update_property (GTK_ACCESSIBLE (row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      row_label, -1);
      gtk_accessible_update_property (GTK_ACCESSIBLE (image), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                      description, -1);
      adw_action_row_add_prefix (ADW_ACTION_ROW (row), image);

      for (guint j = 0; j < 2; j++)
        {
          GtkWidget *button = j == 0 ? open : save;
          const char *label = j == 0 ? open_label : save_label;

          gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
          gtk_widget_add_css_class (button, "flat");
          gtk_widget_set_tooltip_text (button, label);
          gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                          label, -1);
          gtk_actionable_set_action_name (GTK_ACTIONABLE (button),
                                          j == 0 ? "view.open-attachment"
                                                 : "view.save-attachment");
          gtk_actionable_set_action_target (GTK_ACTIONABLE (button), "u", i);
          adw_action_row_add_suffix (ADW_ACTION_ROW (row), button);
        }
      gtk_list_box_append (self->attachment_list, row);
    }
  gtk_revealer_set_reveal_child (self->attachments_revealer, attachments->len > 0);
}

typedef struct
{
  Loaded *loaded;
  char *part_id;
  GFile *file;
  gboolean private_copy;
} Save;

static void
save_free (Save *save)
{
  loaded_unref (save->loaded);
  g_free (save->part_id);
  g_object_unref (save->file);
  g_free (save);
}

static void
save_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  Save *save = task_data;
  g_autoptr(GFileOutputStream) out = NULL;
  GMimeObject *part;
  GError *error = NULL;
  gboolean ok;

  out = g_file_replace (save->file, NULL, FALSE,
                        save->private_copy ? G_FILE_CREATE_PRIVATE : G_FILE_CREATE_NONE,
                        cancellable, &error);
  if (out == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  /* GMime reads the message lazily from the store's stream: one reader at a time. */
  g_mutex_lock (&save->loaded->lock);
  part = lb_mime_message_find_part (save->loaded->mime, save->part_id);
  if (part == NULL)
    {
      g_set_error (&error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   _("The attachment is not in the message"));
      ok = FALSE;
    }
  else
    ok = lb_mime_object_write_decoded (part, G_OUTPUT_STREAM (out), cancellable, &error);
  g_mutex_unlock (&save->loaded->lock);

  if (ok)
    ok = g_output_stream_close (G_OUTPUT_STREAM (out), cancellable, &error);
  else
    g_output_stream_close (G_OUTPUT_STREAM (out), NULL, NULL);
  if (!ok)
    {
      g_file_delete (save->file, NULL, NULL);
      g_task_return_error (task, error);
      return;
    }
  g_task_return_boolean (task, TRUE);
}

static void
save_attachment (LetterboxMessageView *self,
                 guint                 index,
                 GFile                *file,
                 gboolean              private_copy,
                 GCancellable         *cancellable,
                 GAsyncReadyCallback   callback,
                 gpointer              user_data)
{
  g_autoptr(GTask) task = g_task_new (self, cancellable, callback, user_data);
  LbMimeAttachment *attachment;
  Save *save;

  g_task_set_source_tag (task, letterbox_message_view_save_attachment_async);
  if (self->loaded == NULL || self->loaded->mime == NULL || self->loaded->display == NULL ||
      index >= self->loaded->display->attachments->len)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("The attachment is not in the message"));
      return;
    }
  attachment = self->loaded->display->attachments->pdata[index];
  save = g_new0 (Save, 1);
  save->loaded = g_rc_box_acquire (self->loaded);
  save->part_id = g_strdup (attachment->part_id);
  save->file = g_object_ref (file);
  save->private_copy = private_copy;
  g_task_set_task_data (task, save, (GDestroyNotify) save_free);
  g_task_run_in_thread (task, save_thread);
}

/**
 * letterbox_message_view_save_attachment_async:
 * @index: the attachment's position in the list shown
 * @file: where to write it (replaced)
 *
 * Writes an attachment of the message shown, decoded, in a worker thread. The callback
 * runs in the caller's main context.
 */
void
letterbox_message_view_save_attachment_async (LetterboxMessageView *self,
                                              guint                 index,
                                              GFile                *file,
                                              GCancellable         *cancellable,
                                              GAsyncReadyCallback   callback,
                                              gpointer              user_data)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self));
  g_return_if_fail (G_IS_FILE (file));

  save_attachment (self, index, file, FALSE, cancellable, callback, user_data);
}

gboolean
letterbox_message_view_save_attachment_finish (LetterboxMessageView *self,
                                               GAsyncResult         *result,
                                               GError              **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), FALSE);
  return g_task_propagate_boolean (G_TASK (result), error);
}

static void
alert (LetterboxMessageView *self,
       const char           *heading,
       const char           *body)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkWidget *dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                              heading, body);

  adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
  gtk_window_present (GTK_WINDOW (dialog));
}

static void
saved_cb (GObject      *source,
          GAsyncResult *result,
          gpointer      user_data)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (source);
  g_autoptr(GFile) open_after = user_data;
  g_autoptr(GError) error = NULL;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        alert (self, _("The Attachment Cannot Be Saved"), error->message);
      return;
    }
  if (open_after != NULL)
    {
      g_autofree char *uri = g_file_get_uri (open_after);
      GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

      gtk_show_uri (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, uri, GDK_CURRENT_TIME);
    }
}

static void
open_attachment_action (GtkWidget  *widget,
                        const char *action_name,
                        GVariant   *parameter)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (widget);
  guint index = g_variant_get_uint32 (parameter);
  g_autofree char *base = g_build_filename (g_get_user_cache_dir (), "letterbox", "attachments",
                                            NULL);
  g_autofree char *template = g_build_filename (base, "XXXXXX", NULL);
  g_autoptr(GFile) file = NULL;
  LbMimeAttachment *attachment;
  g_autofree char *name = NULL;

  if (self->loaded == NULL || self->loaded->display == NULL ||
      index >= self->loaded->display->attachments->len)
    return;
  attachment = self->loaded->display->attachments->pdata[index];
  /* A private directory per opening: other users never see it, and two attachments
   * with one name do not overwrite each other. */
  if (g_mkdir_with_parents (base, 0700) != 0 || g_mkdtemp_full (template, 0700) == NULL)
    {
      alert (self, _("The Attachment Cannot Be Opened"),
             _("No private folder for it could be made in the cache folder"));
      return;
    }
  name = g_strdup (attachment->filename != NULL ? attachment->filename : "attachment");
  g_strdelimit (name, "/\\", '_');
  if (name[0] == '.')
    name[0] = '_';
  file = g_file_new_build_filename (template, name, NULL);
  save_attachment (self, index, file, TRUE, self->cancellable, saved_cb, g_object_ref (file));
}

static void
save_response_cb (GtkNativeDialog *native,
                  int              response,
                  gpointer         user_data)
{
  LetterboxMessageView *self = user_data;

  if (response == GTK_RESPONSE_ACCEPT)
    {
      g_autoptr(GFile) file = gtk_file_chooser_get_file (GTK_FILE_CHOOSER (native));
      guint index = GPOINTER_TO_UINT (g_object_get_data (G_OBJECT (native), "index"));

      if (file != NULL)
        save_attachment (self, index, file, FALSE, self->cancellable, saved_cb, NULL);
    }
  gtk_native_dialog_destroy (native);
  g_object_unref (native);
  g_object_unref (self);
}

static void
save_attachment_action (GtkWidget  *widget,
                        const char *action_name,
                        GVariant   *parameter)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (widget);
  guint index = g_variant_get_uint32 (parameter);
  GtkRoot *root = gtk_widget_get_root (widget);
  const char *downloads = g_get_user_special_dir (G_USER_DIRECTORY_DOWNLOAD);
  LbMimeAttachment *attachment;
  GtkFileChooserNative *native;

  if (self->loaded == NULL || self->loaded->display == NULL ||
      index >= self->loaded->display->attachments->len)
    return;
  attachment = self->loaded->display->attachments->pdata[index];
  native = gtk_file_chooser_native_new (_("Save Attachment"),
                                        GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                        GTK_FILE_CHOOSER_ACTION_SAVE, _("_Save"), _("_Cancel"));
  gtk_native_dialog_set_modal (GTK_NATIVE_DIALOG (native), TRUE);
  gtk_file_chooser_set_current_name (GTK_FILE_CHOOSER (native),
                                     attachment->filename != NULL ? attachment->filename
                                                                  : _("attachment"));
  if (downloads != NULL)
    {
      g_autoptr(GFile) folder = g_file_new_for_path (downloads);

      gtk_file_chooser_set_current_folder (GTK_FILE_CHOOSER (native), folder, NULL);
    }
  g_object_set_data (G_OBJECT (native), "index", GUINT_TO_POINTER (index));
  g_signal_connect (native, "response", G_CALLBACK (save_response_cb), g_object_ref (self));
  gtk_native_dialog_show (GTK_NATIVE_DIALOG (native));
}

/* ---- links ------------------------------------------------------------------------- */

static gboolean
openable_uri (const char *uri)
{
  g_autofree char *scheme = g_uri_parse_scheme (uri);

  return scheme != NULL && (g_ascii_strcasecmp (scheme, "http") == 0 ||
                            g_ascii_strcasecmp (scheme, "https") == 0 ||
                            g_ascii_strcasecmp (scheme, "mailto") == 0);
}

static void
link_response_cb (AdwMessageDialog *dialog,
                  const char       *response,
                  gpointer          user_data)
{
  const char *uri = g_object_get_data (G_OBJECT (dialog), "uri");

  if (g_strcmp0 (response, "open") == 0)
    gtk_show_uri (gtk_window_get_transient_for (GTK_WINDOW (dialog)), uri, GDK_CURRENT_TIME);
}

/* A link clicked in an HTML body: its real target, before anything is opened. */
static void
confirm_link (LetterboxMessageView *self,
              const char           *uri,
              const char           *text)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  g_autofree char *shown = NULL;
  g_autofree char *label = NULL;
  g_autofree char *body = NULL;
  GtkWidget *dialog;

  if (!openable_uri (uri))
    {
      g_debug ("Not opening a link to %s", uri);
      return;
    }
  shown = g_uri_unescape_string (uri, NULL);
  if (shown == NULL || !g_utf8_validate (shown, -1, NULL))
    replace_str (&shown, uri);
  label = g_strstrip (g_strdup (text != NULL ? text : ""));
  if (label[0] != '\0' && strchr (label, '.') != NULL && strchr (label, ' ') == NULL &&
      strstr (uri, label) == NULL)
    /* The text looks like an address, but not this one: the classic phishing link. */
    body = g_strdup_printf (_("The link shows “%s”, but it leads to:\n\n%s"), label, shown);
  else
    body = g_strdup_printf (_("The link leads to:\n\n%s"), shown);

  dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                   _("Open Link?"), body);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "open", _("_Open Link"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "open",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_object_set_data_full (G_OBJECT (dialog), "uri", g_strdup (uri), g_free);
  g_signal_connect (dialog, "response", G_CALLBACK (link_response_cb), NULL);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- HTML -------------------------------------------------------------------------- */

static void load_pending (LetterboxMessageView *self);

/* The HTML module (letterbox-html-module.h), loaded once per process. */
static const LetterboxHtmlModule *html_module;
static gboolean html_ready;
static GError *html_error;           /* why the module cannot be used */
static GPtrArray *html_waiters;      /* LetterboxMessageView*, reffed */

/* Where the module is: $LETTERBOX_HTML_MODULE (tests), next to the program (the build
 * tree), or where it is installed. */
static char *
html_module_path (void)
{
  const char *path = g_getenv ("LETTERBOX_HTML_MODULE");
  g_autofree char *exe = NULL;

  if (path != NULL && path[0] != '\0')
    return g_strdup (path);
  exe = g_file_read_link ("/proc/self/exe", NULL);
  if (exe != NULL)
    {
      g_autofree char *dir = g_path_get_dirname (exe);
      g_autofree char *beside = g_module_build_path (dir, LETTERBOX_HTML_MODULE_NAME);

      if (g_file_test (beside, G_FILE_TEST_EXISTS))
        return g_steal_pointer (&beside);
    }
  return g_module_build_path (LB_HTML_MODULE_DIR, LETTERBOX_HTML_MODULE_NAME);
}

/* In a worker: mapping WebKit and its libraries takes a while, the window goes on. */
static void
html_open_thread (GTask        *task,
                  gpointer      source_object,
                  gpointer      task_data,
                  GCancellable *cancellable)
{
  g_autofree char *path = html_module_path ();
  GModule *module = g_module_open (path, G_MODULE_BIND_LAZY | G_MODULE_BIND_LOCAL);
  gpointer symbol = NULL;
  const LetterboxHtmlModule *table;

  if (module == NULL)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                               _("HTML mail cannot be shown: %s"), g_module_error ());
      return;
    }
  if (!g_module_symbol (module, LETTERBOX_HTML_MODULE_SYMBOL, &symbol) || symbol == NULL ||
      ((const LetterboxHtmlModule *) symbol)->abi != LETTERBOX_HTML_MODULE_ABI)
    {
      g_task_return_new_error (task, G_IO_ERROR, G_IO_ERROR_FAILED,
                               _("HTML mail cannot be shown: %s is not this version’s HTML module"),
                               path);
      g_module_close (module);
      return;
    }
  table = symbol;
  /* WebKit's types and threads stay for the life of the process. */
  g_module_make_resident (module);
  g_task_return_pointer (task, (gpointer) table, NULL);
}

static void
html_waiters_go (void)
{
  g_autoptr(GPtrArray) waiters = g_steal_pointer (&html_waiters);

  for (guint i = 0; waiters != NULL && i < waiters->len; i++)
    {
      LetterboxMessageView *view = waiters->pdata[i];

      if (view->pending_html == NULL)
        /* Another message since, or the view is gone. */
        continue;
      if (html_error != NULL)
        {
          g_clear_pointer (&view->pending_html, g_free);
          show_error (view, html_error->message);
        }
      else
        load_pending (view);
    }
}

static void
html_prepared_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  if (!html_module->prepare_finish (result, &error))
    /* The content filter is a second wall: the policy alone still blocks every load. */
    g_warning ("The HTML module could not be readied: %s", error->message);
  html_ready = TRUE;
  html_waiters_go ();
}

static void
html_opened_cb (GObject      *source,
                GAsyncResult *result,
                gpointer      user_data)
{
  GError *error = NULL;

  html_module = g_task_propagate_pointer (G_TASK (result), &error);
  if (html_module == NULL)
    {
      g_warning ("%s", error->message);
      html_error = error;
      html_waiters_go ();
      return;
    }
  html_module->prepare_async (NULL, html_prepared_cb, NULL);
}

static void
ensure_html (LetterboxMessageView *self)
{
  gboolean started = html_waiters != NULL;

  if (html_error != NULL)
    {
      g_clear_pointer (&self->pending_html, g_free);
      show_error (self, html_error->message);
      return;
    }
  if (html_waiters == NULL)
    html_waiters = g_ptr_array_new_with_free_func (g_object_unref);
  if (!g_ptr_array_find (html_waiters, self, NULL))
    g_ptr_array_add (html_waiters, g_object_ref (self));
  if (!started)
    {
      g_autoptr(GTask) task = g_task_new (NULL, NULL, html_opened_cb, NULL);

      g_task_set_source_tag (task, ensure_html);
      g_task_run_in_thread (task, html_open_thread);
    }
}

static void
html_link_activated (gpointer    user_data,
                     const char *uri,
                     const char *text)
{
  confirm_link (user_data, uri, text);
}

static void
html_resource_requested (gpointer    user_data,
                         const char *uri)
{
  g_signal_emit (user_data, signals[SIGNAL_RESOURCE_REQUESTED], 0, uri);
}

static void
html_load_finished (gpointer   user_data,
                    GtkWidget *view)
{
  LetterboxMessageView *self = user_data;

  if (g_strcmp0 (self->state, "html-loading") == 0 &&
      view == gtk_stack_get_visible_child (self->html_stack))
    set_state (self, "html");
}

static GBytes *
html_lookup_part (gpointer     user_data,
                  const char  *content_id,
                  char       **content_type)
{
  LetterboxMessageView *self = user_data;
  LbMimeResource *resource = NULL;

  if (self->loaded != NULL && self->loaded->display != NULL)
    resource = g_hash_table_lookup (self->loaded->display->resources, content_id);
  if (resource == NULL)
    return NULL;
  *content_type = g_strdup (resource->content_type);
  return g_bytes_ref (resource->data);
}

static const LetterboxHtmlHooks html_hooks = {
  .link_activated = html_link_activated,
  .resource_requested = html_resource_requested,
  .load_finished = html_load_finished,
  .lookup_part = html_lookup_part,
};

static GtkWidget *
make_web_view (LetterboxMessageView *self,
               gboolean              remote)
{
  GtkWidget *web_view = html_module->view_new (remote, &html_hooks, G_OBJECT (self));

  gtk_stack_add_child (self->html_stack, web_view);
  return web_view;
}

static gboolean
ascii_contains (const char *haystack,
                const char *needle)
{
  gsize n = strlen (needle);

  for (const char *p = haystack; *p != '\0'; p++)
    if (g_ascii_strncasecmp (p, needle, n) == 0)
      return TRUE;
  return FALSE;
}

/* Whether the HTML names anything the network would have to give: an image, a style
 * sheet, a background, a font. Links alone do not count. */
static gboolean
has_remote_references (const char *html)
{
  static const char *const openers[] = { "src=", "url(", "background=", "srcset=", "@import",
                                         "<link", "poster=" };
  g_autofree char *lower = g_ascii_strdown (html, -1);

  for (guint i = 0; i < G_N_ELEMENTS (openers); i++)
    for (const char *p = strstr (lower, openers[i]); p != NULL;
         p = strstr (p + 1, openers[i]))
      {
        const char *q = p + strlen (openers[i]);

        if (g_str_equal (openers[i], "<link"))
          return TRUE;
        while (*q == ' ' || *q == '"' || *q == '\'' || *q == '\t' || *q == '\n' || *q == '\r')
          q++;
        if (g_str_has_prefix (q, "http:") || g_str_has_prefix (q, "https:") ||
            g_str_has_prefix (q, "//") || g_str_has_prefix (q, "ftp:"))
          return TRUE;
      }
  return FALSE;
}

static gboolean
sender_allowed (LetterboxMessageView *self)
{
  g_auto(GStrv) senders = g_settings_get_strv (self->settings, "remote-content-senders");
  const char *address = self->loaded != NULL && self->loaded->row != NULL
                          ? self->loaded->row->sender_address : NULL;

  if (address == NULL || address[0] == '\0')
    return FALSE;
  for (guint i = 0; senders[i] != NULL; i++)
    if (g_ascii_strcasecmp (senders[i], address) == 0)
      return TRUE;
  return FALSE;
}

static char *
page_for (const char *html,
          gboolean    dark,
          GdkRGBA    *background)
{
  gboolean own_colours = ascii_contains (html, "color") || ascii_contains (html, "background");
  const char *style;

  /* Mail that sets its own colours is shown as its author made it, on white; the rest
   * follows the desktop's dark style. */
  if (dark && !own_colours)
    {
      gdk_rgba_parse (background, "#1e1e1e");
      style = "<style>html{color-scheme:dark;background:#1e1e1e;color:#ffffff}"
              "a{color:#78aeed}";
    }
  else
    {
      gdk_rgba_parse (background, "#ffffff");
      style = "<style>html{color-scheme:light;background:#ffffff;color:#000000}";
    }
  return g_strconcat (style,
                      "body{margin:12px 24px;overflow-wrap:break-word}"
                      "img{max-width:100%}</style>",
                      html, NULL);
}

static void
load_pending (LetterboxMessageView *self)
{
  g_autofree char *html = g_steal_pointer (&self->pending_html);
  GtkWidget *web_view;
  gboolean remote;
  GdkRGBA background;
  g_autofree char *page = NULL;

  if (html == NULL)
    return;
  remote = self->remote_allowed || sender_allowed (self);
  if (remote && self->remote_view == NULL)
    self->remote_view = make_web_view (self, TRUE);
  if (!remote && self->blocked_view == NULL)
    self->blocked_view = make_web_view (self, FALSE);
  web_view = remote ? self->remote_view : self->blocked_view;

  page = page_for (html, adw_style_manager_get_dark (adw_style_manager_get_default ()),
                   &background);
  gtk_stack_set_visible_child (self->html_stack, web_view);
  set_state (self, "html-loading");
  gtk_stack_set_visible_child_name (self->body_stack, "html");
  html_module->view_load (web_view, page, &background);
}

static void
show_html (LetterboxMessageView *self)
{
  const char *html = self->loaded->display->html;
  gboolean remote = self->remote_allowed || sender_allowed (self);

  gtk_revealer_set_reveal_child (self->remote_revealer, !remote && has_remote_references (html));
  gtk_widget_action_set_enabled (GTK_WIDGET (self), "view.always-remote-content",
                                 self->loaded->row->sender_address != NULL &&
                                 self->loaded->row->sender_address[0] != '\0');
  replace_str (&self->pending_html, html);
  if (html_ready)
    load_pending (self);
  else
    ensure_html (self);
}

/* ---- plain text -------------------------------------------------------------------- */

static void
insert_linked (GtkTextBuffer *buffer,
               GtkTextIter   *iter,
               const char    *text,
               gsize          len,
               GtkTextTag    *tag,
               GtkTextTag    *link_tag)
{
  static GRegex *url;
  g_autoptr(GMatchInfo) match = NULL;
  g_autofree char *slice = g_strndup (text, len);
  gsize done = 0;

  if (url == NULL)
    url = g_regex_new ("(?:https?://|mailto:|www\\.)[^\\s<>\"]+", G_REGEX_CASELESS | G_REGEX_OPTIMIZE,
                       0, NULL);
  g_regex_match (url, slice, 0, &match);
  while (g_match_info_matches (match))
    {
      int start, end;
      g_autofree char *target = NULL;
      GtkTextTag *one;

      g_match_info_fetch_pos (match, 0, &start, &end);
      /* Trailing punctuation ends the sentence, not the address. */
      while (end > start && strchr (".,;:!?)]}'", slice[end - 1]) != NULL)
        end--;
      if (start > (int) done)
        gtk_text_buffer_insert_with_tags (buffer, iter, slice + done, start - done, tag, NULL);
      target = g_strndup (slice + start, end - start);
      if (g_ascii_strncasecmp (target, "www.", 4) == 0)
        {
          char *with_scheme = g_strconcat ("https://", target, NULL);

          g_free (target);
          target = with_scheme;
        }
      one = gtk_text_buffer_create_tag (buffer, NULL, NULL);
      g_object_set_data_full (G_OBJECT (one), "letterbox-uri", g_strdup (target), g_free);
      /* @tag may be NULL: it goes last, where it ends the list. */
      gtk_text_buffer_insert_with_tags (buffer, iter, slice + start, end - start, link_tag, one,
                                        tag, NULL);
      done = end;
      g_match_info_next (match, NULL);
    }
  if (done < len)
    gtk_text_buffer_insert_with_tags (buffer, iter, slice + done, len - done, tag, NULL);
}

static void
quote_toggled_cb (GtkButton *button,
                  GtkTextTag *hidden)
{
  gboolean invisible;

  g_object_get (hidden, "invisible", &invisible, NULL);
  g_object_set (hidden, "invisible", !invisible, NULL);
  gtk_button_set_label (button, invisible ? _("Hide Quoted Text") : _("Show Quoted Text"));
}

static void
show_text (LetterboxMessageView *self,
           const char           *raw)
{
  g_autoptr(GtkTextBuffer) buffer = gtk_text_buffer_new (NULL);
  g_autoptr(GString) text = g_string_new (NULL);
  g_autoptr(GArray) blocks = NULL;
  gboolean dark = adw_style_manager_get_dark (adw_style_manager_get_default ());
  GtkTextTag *quote_tag, *link_tag;
  GtkTextIter iter;

  /* One kind of line end; no trailing blank lines. */
  for (const char *p = raw; *p != '\0'; p++)
    if (*p != '\r')
      g_string_append_c (text, *p);
  while (text->len > 0 && (text->str[text->len - 1] == '\n' || text->str[text->len - 1] == ' '))
    g_string_truncate (text, text->len - 1);

  quote_tag = gtk_text_buffer_create_tag (buffer, "quote",
                                          "foreground", dark ? "#a0a0a0" : "#5e5c64",
                                          "left-margin", 36,
                                          NULL);
  link_tag = gtk_text_buffer_create_tag (buffer, "link",
                                         "foreground", dark ? "#78aeed" : "#1c71d8",
                                         "underline", PANGO_UNDERLINE_SINGLE,
                                         NULL);
  /* The buffer goes in first: child anchors need the view that shows them. */
  gtk_text_view_set_buffer (self->text_view, buffer);
  blocks = lb_mime_text_split_quotes (text->str);
  gtk_text_buffer_get_end_iter (buffer, &iter);
  for (guint i = 0; i < blocks->len; i++)
    {
      LbMimeTextBlock *block = &g_array_index (blocks, LbMimeTextBlock, i);
      const char *start = text->str + block->start;
      gsize len = block->end - block->start;

      if (block->quoted && block->lines >= QUOTE_COLLAPSE_LINES)
        {
          GtkTextTag *hidden = gtk_text_buffer_create_tag (buffer, NULL, "invisible", TRUE, NULL);
          GtkTextChildAnchor *anchor = gtk_text_buffer_create_child_anchor (buffer, &iter);
          GtkWidget *button = gtk_button_new_with_label (_("Show Quoted Text"));
          g_autofree char *description = g_strdup_printf (
            g_dngettext (GETTEXT_PACKAGE, "%u quoted line", "%u quoted lines", block->lines),
            block->lines);

          gtk_widget_add_css_class (button, "flat");
          gtk_widget_add_css_class (button, "quote-toggle");
          gtk_widget_set_tooltip_text (button, description);
          g_signal_connect (button, "clicked", G_CALLBACK (quote_toggled_cb), hidden);
          gtk_text_view_add_child_at_anchor (self->text_view, button, anchor);
          gtk_text_buffer_insert (buffer, &iter, "\n", 1);
          gtk_text_buffer_insert_with_tags (buffer, &iter, start, len, hidden, quote_tag, NULL);
        }
      else
        insert_linked (buffer, &iter, start, len, block->quoted ? quote_tag : NULL, link_tag);
    }
  set_state (self, "text");
}

static const char *
link_at (LetterboxMessageView *self,
         double                x,
         double                y)
{
  GtkTextIter iter;
  int bx, by;
  g_autoptr(GSList) tags = NULL;

  gtk_text_view_window_to_buffer_coords (self->text_view, GTK_TEXT_WINDOW_WIDGET, (int) x, (int) y,
                                         &bx, &by);
  if (!gtk_text_view_get_iter_at_location (self->text_view, &iter, bx, by))
    return NULL;
  tags = gtk_text_iter_get_tags (&iter);
  for (GSList *l = tags; l != NULL; l = l->next)
    {
      const char *uri = g_object_get_data (l->data, "letterbox-uri");

      if (uri != NULL)
        return uri;
    }
  return NULL;
}

static void
text_released_cb (GtkGestureClick      *gesture,
                  int                   n_press,
                  double                x,
                  double                y,
                  LetterboxMessageView *self)
{
  GtkTextBuffer *buffer = gtk_text_view_get_buffer (self->text_view);
  const char *uri;

  if (gtk_text_buffer_get_has_selection (buffer) || (uri = link_at (self, x, y)) == NULL)
    return;
  /* The text of a plain-text link is its target: nothing to confirm. */
  if (openable_uri (uri))
    {
      GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));

      gtk_show_uri (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL, uri, GDK_CURRENT_TIME);
    }
}

static void
text_motion_cb (GtkEventControllerMotion *motion,
                double                    x,
                double                    y,
                LetterboxMessageView     *self)
{
  gtk_widget_set_cursor_from_name (GTK_WIDGET (self->text_view),
                                   link_at (self, x, y) != NULL ? "pointer" : "text");
}

/* ---- loading ----------------------------------------------------------------------- */

static void
render (LetterboxMessageView *self)
{
  show_full_headers (self);
  show_attachments (self);
  if (self->loaded->display->html != NULL)
    show_html (self);
  else
    {
      gtk_revealer_set_reveal_child (self->remote_revealer, FALSE);
      show_text (self, self->loaded->display->text);
    }
}

static LbBusBackend1 *
get_backend (LetterboxMessageView *self)
{
  GtkRoot *root;
  GtkApplication *app;

  if (self->backend != NULL)
    return self->backend;
  root = gtk_widget_get_root (GTK_WIDGET (self));
  app = GTK_IS_WINDOW (root) ? gtk_window_get_application (GTK_WINDOW (root)) : NULL;
  if (LETTERBOX_IS_APPLICATION (app))
    return letterbox_application_get_backend (LETTERBOX_APPLICATION (app));
  return NULL;
}

static void
fetch_body_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  g_autoptr(LetterboxMessageView) self = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_bus_backend1_call_fetch_body_finish (LB_BUS_BACKEND1 (source), result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        return;
      g_dbus_error_strip_remote_error (error);
      show_error (self, error->message);
      return;
    }
  start_load (self);
}

static void
start_fetch (LetterboxMessageView *self)
{
  LbBusBackend1 *backend = get_backend (self);

  if (backend == NULL)
    {
      show_error (self, _("This message has not been downloaded yet, and the Letterbox "
                          "background service that downloads it cannot be reached."));
      return;
    }
  self->fetched = TRUE;
  gtk_label_set_label (self->loading_label, _("Downloading message…"));
  set_state (self, "loading");
  lb_bus_backend1_call_fetch_body (backend, "", lb_message_summary_get_id (self->message),
                                   self->cancellable, fetch_body_cb, g_object_ref (self));
}

static void
load_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(LetterboxMessageView) self = user_data;
  g_autoptr(GError) error = NULL;
  Loaded *loaded = g_task_propagate_pointer (G_TASK (result), &error);

  if (loaded == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_error (self, error->message);
      return;
    }
  if (g_cancellable_is_cancelled (g_task_get_cancellable (G_TASK (result))))
    {
      loaded_unref (loaded);
      return;
    }
  g_clear_pointer (&self->loaded, loaded_unref);
  self->loaded = loaded;
  if (loaded->needs_fetch)
    {
      if (self->fetched)
        show_error (self, _("The message was downloaded, but its body is still missing."));
      else
        start_fetch (self);
      return;
    }
  render (self);
}

static void
start_load (LetterboxMessageView *self)
{
  g_autoptr(GTask) task = NULL;
  LoadData *data;

  gtk_label_set_label (self->loading_label, _("Loading…"));
  set_state (self, "loading");
  data = g_new0 (LoadData, 1);
  data->store = g_object_ref (self->store);
  data->id = lb_message_summary_get_id (self->message);
  task = g_task_new (NULL, self->cancellable, load_done_cb, g_object_ref (self));
  g_task_set_source_tag (task, start_load);
  g_task_set_task_data (task, data, (GDestroyNotify) load_data_free);
  g_task_run_in_thread (task, load_thread);
}

/**
 * letterbox_message_view_show:
 * @store: the store to read the message from
 * @message: (nullable): the message, or %NULL for the "nothing selected" page
 *
 * Shows a message: its headers at once from @message, then its body when the worker
 * has read it (or the backend has downloaded it). "body-shown" is emitted, in the main
 * context, once the body (or an error) is on screen.
 */
void
letterbox_message_view_show (LetterboxMessageView *self,
                             LbStore              *store,
                             LbMessageSummary     *message)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self));
  g_return_if_fail (store == NULL || LB_IS_STORE (store));
  g_return_if_fail (message == NULL || LB_IS_MESSAGE_SUMMARY (message));

  if (message != NULL && self->message != NULL && store == self->store &&
      lb_message_summary_get_id (message) == lb_message_summary_get_id (self->message))
    {
      /* The same message again (a list refresh): keep what is shown. */
      g_set_object (&self->message, message);
      return;
    }

  g_cancellable_cancel (self->cancellable);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->loaded, loaded_unref);
  g_clear_pointer (&self->pending_html, g_free);
  g_set_object (&self->store, store);
  g_set_object (&self->message, message);
  self->fetched = FALSE;
  self->remote_allowed = FALSE;
  gtk_revealer_set_reveal_child (self->remote_revealer, FALSE);
  gtk_revealer_set_reveal_child (self->attachments_revealer, FALSE);

  if (message == NULL || store == NULL)
    {
      set_state (self, "empty");
      return;
    }
  self->cancellable = g_cancellable_new ();
  show_summary_headers (self);
  start_load (self);
}

LbMessageSummary *
letterbox_message_view_get_message (LetterboxMessageView *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self), NULL);
  return self->message;
}

/**
 * letterbox_message_view_set_backend:
 * @backend: (nullable): the proxy to ask for bodies; %NULL: the application's
 */
void
letterbox_message_view_set_backend (LetterboxMessageView *self,
                                    LbBusBackend1        *backend)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self));
  g_set_object (&self->backend, backend);
}

/**
 * letterbox_message_view_get_state:
 *
 * Returns: "empty", "loading", "error", "text", "html-loading" or "html"
 */
const char *
letterbox_message_view_get_state (LetterboxMessageView *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self), NULL);
  return self->state;
}

/**
 * letterbox_message_view_get_web_view:
 *
 * For tests and screenshots: the web view showing the current HTML body.
 *
 * Returns: (transfer none) (nullable): the web view, or %NULL when no HTML is shown
 */
GtkWidget *
letterbox_message_view_get_web_view (LetterboxMessageView *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_VIEW (self), NULL);
  return gtk_stack_get_visible_child (self->html_stack);
}

/* ---- actions ----------------------------------------------------------------------- */

static void
show_remote_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *parameter)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (widget);

  if (self->loaded == NULL || self->loaded->display == NULL ||
      self->loaded->display->html == NULL)
    return;
  self->remote_allowed = TRUE;
  show_html (self);
}

static void
always_remote_action (GtkWidget  *widget,
                      const char *action_name,
                      GVariant   *parameter)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (widget);
  g_auto(GStrv) senders = NULL;
  g_autoptr(GStrvBuilder) builder = g_strv_builder_new ();
  g_auto(GStrv) updated = NULL;
  const char *address;

  if (self->loaded == NULL || self->loaded->row == NULL)
    return;
  address = self->loaded->row->sender_address;
  if (address == NULL || address[0] == '\0')
    return;
  if (!sender_allowed (self))
    {
      senders = g_settings_get_strv (self->settings, "remote-content-senders");
      g_strv_builder_addv (builder, (const char **) senders);
      g_strv_builder_add (builder, address);
      updated = g_strv_builder_end (builder);
      g_settings_set_strv (self->settings, "remote-content-senders",
                           (const char * const *) updated);
    }
  show_remote_action (widget, NULL, NULL);
}

static void
retry_action (GtkWidget  *widget,
              const char *action_name,
              GVariant   *parameter)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (widget);

  if (self->message == NULL || self->store == NULL)
    return;
  g_cancellable_cancel (self->cancellable);
  g_set_object (&self->cancellable, g_cancellable_new ());
  self->fetched = FALSE;
  start_load (self);
}

static void
dark_changed_cb (AdwStyleManager      *manager,
                 GParamSpec           *pspec,
                 LetterboxMessageView *self)
{
  if (self->loaded == NULL || self->loaded->display == NULL)
    return;
  if (g_strcmp0 (self->state, "html") == 0 || g_strcmp0 (self->state, "text") == 0)
    render (self);
}

static void
letterbox_message_view_dispose (GObject *object)
{
  LetterboxMessageView *self = LETTERBOX_MESSAGE_VIEW (object);

  g_cancellable_cancel (self->cancellable);
  g_signal_handlers_disconnect_by_data (adw_style_manager_get_default (), self);
  /* AdwBin unparents the template's one child (the stack) itself. */
  self->blocked_view = NULL;
  self->remote_view = NULL;
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->loaded, loaded_unref);
  g_clear_pointer (&self->pending_html, g_free);
  g_clear_object (&self->message);
  g_clear_object (&self->store);
  g_clear_object (&self->backend);
  g_clear_object (&self->settings);

  G_OBJECT_CLASS (letterbox_message_view_parent_class)->dispose (object);
}

static void
letterbox_message_view_class_init (LetterboxMessageViewClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_message_view_dispose;

  /**
   * LetterboxMessageView::body-shown:
   *
   * The body of the message (or the reason it cannot be shown) is on screen: the text,
   * or the HTML page loaded. Emitted in the main context.
   */
  signals[SIGNAL_BODY_SHOWN] = g_signal_new ("body-shown", G_TYPE_FROM_CLASS (klass),
                                             G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                             G_TYPE_NONE, 0);
  /**
   * LetterboxMessageView::resource-requested:
   * @uri: what the page asked for
   *
   * Every sub-resource the HTML page started to load (WebKit's resource-load-started),
   * for diagnostics and tests. Emitted in the main context.
   */
  signals[SIGNAL_RESOURCE_REQUESTED] = g_signal_new ("resource-requested",
                                                     G_TYPE_FROM_CLASS (klass),
                                                     G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                                     G_TYPE_NONE, 1, G_TYPE_STRING);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-message-view.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, subject_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, attachment_icon);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, star_icon);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, from_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, to_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, cc_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, date_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, remote_revealer);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, body_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, spinner);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, loading_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, error_page);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, text_view);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, html_stack);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, attachments_revealer);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageView, attachment_list);

  gtk_widget_class_install_action (widget_class, "view.show-remote-content", NULL,
                                   show_remote_action);
  gtk_widget_class_install_action (widget_class, "view.always-remote-content", NULL,
                                   always_remote_action);
  gtk_widget_class_install_action (widget_class, "view.retry", NULL, retry_action);
  gtk_widget_class_install_action (widget_class, "view.open-attachment", "u",
                                   open_attachment_action);
  gtk_widget_class_install_action (widget_class, "view.save-attachment", "u",
                                   save_attachment_action);
}

static void
letterbox_message_view_init (LetterboxMessageView *self)
{
  GtkGesture *click;
  GtkEventController *motion;

  gtk_widget_init_template (GTK_WIDGET (self));
  self->settings = g_settings_new (APP_ID);
  self->state = "empty";

  click = gtk_gesture_click_new ();
  gtk_gesture_single_set_button (GTK_GESTURE_SINGLE (click), GDK_BUTTON_PRIMARY);
  g_signal_connect (click, "released", G_CALLBACK (text_released_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->text_view), GTK_EVENT_CONTROLLER (click));
  motion = gtk_event_controller_motion_new ();
  g_signal_connect (motion, "motion", G_CALLBACK (text_motion_cb), self);
  gtk_widget_add_controller (GTK_WIDGET (self->text_view), motion);

  g_signal_connect (adw_style_manager_get_default (), "notify::dark",
                    G_CALLBACK (dark_changed_cb), self);
}

GtkWidget *
letterbox_message_view_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_VIEW, NULL);
}
