/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-message-row.h"

/* One message (or conversation) in the message list, recycled by the list view's
 * factory: bound to a LetterboxMessageItem, it follows the item's summary as the model
 * fills or updates it. Kept light (labels, an icon, one button) so that long lists scroll
 * smoothly. */
struct _LetterboxMessageRow
{
  GtkBox parent_instance;

  LetterboxMessageItem *item;
  gulong notify_id;
  gint64 message_id;

  GtkLabel *sender_label;
  GtkLabel *count_label;
  GtkImage *attachment_icon;
  GtkLabel *date_label;
  GtkLabel *subject_label;
  GtkButton *star_button;
  GtkLabel *preview_label;
};

G_DEFINE_FINAL_TYPE (LetterboxMessageRow, letterbox_message_row, GTK_TYPE_BOX)

/**
 * letterbox_format_date:
 * @unix_time: seconds since the epoch
 * @full: %TRUE for the reading pane (date and time), %FALSE for the list (short)
 *
 * Returns: (transfer full): the date in the user's locale and time zone
 */
char *
letterbox_format_date (gint64   unix_time,
                       gboolean full)
{
  g_autoptr(GDateTime) utc = g_date_time_new_from_unix_utc (unix_time);
  g_autoptr(GDateTime) date = NULL;
  g_autoptr(GDateTime) now = g_date_time_new_now_local ();

  if (utc == NULL)
    return g_strdup ("");
  date = g_date_time_to_local (utc);

  if (full)
    /* Translators: a message's full date in the reading pane; see g_date_time_format(). */
    return g_date_time_format (date, _("%A, %-e %B %Y, %H:%M"));

  if (g_date_time_get_year (date) == g_date_time_get_year (now) &&
      g_date_time_get_day_of_year (date) == g_date_time_get_day_of_year (now))
    /* Translators: a message's time when it came today; see g_date_time_format(). */
    return g_date_time_format (date, _("%H:%M"));

  if (g_date_time_get_year (date) == g_date_time_get_year (now))
    /* Translators: a message's date in this year; see g_date_time_format(). */
    return g_date_time_format (date, _("%e %b"));

  /* Translators: a message's date in another year; see g_date_time_format(). */
  return g_date_time_format (date, _("%e %b %Y"));
}

/* The star asks the window to flip it (win.star, triage): all writes go through the
 * backend, and the row shows the new state when the store's change comes back. */
static void
star_clicked_cb (LetterboxMessageRow *self)
{
  if (self->message_id > 0)
    gtk_widget_activate_action (GTK_WIDGET (self), "win.star", "x", self->message_id);
}

static void
letterbox_message_row_dispose (GObject *object)
{
  letterbox_message_row_set_item (LETTERBOX_MESSAGE_ROW (object), NULL);

  G_OBJECT_CLASS (letterbox_message_row_parent_class)->dispose (object);
}

static void
letterbox_message_row_class_init (LetterboxMessageRowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  G_OBJECT_CLASS (klass)->dispose = letterbox_message_row_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-message-row.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, sender_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, count_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, attachment_icon);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, date_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, subject_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, star_button);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, preview_label);
  gtk_widget_class_bind_template_callback (widget_class, star_clicked_cb);
}

/* GTK 4.8 binds a GtkListView row before it puts the row in the list's item widget:
 * name that item (see set_accessible_label()) once it holds the row. */
static void
parent_changed_cb (LetterboxMessageRow *self,
                   GParamSpec          *pspec,
                   gpointer             user_data)
{
  if (self->item != NULL && gtk_widget_get_parent (GTK_WIDGET (self)) != NULL)
    letterbox_message_row_set_message (self, letterbox_message_item_get_summary (self->item));
}

static void
letterbox_message_row_init (LetterboxMessageRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  g_signal_connect (self, "notify::parent", G_CALLBACK (parent_changed_cb), NULL);
}

GtkWidget *
letterbox_message_row_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_ROW, NULL);
}

/* The row's name for screen readers, also on the list's item that holds it: that item
 * (GtkListView's row, which GTK 4.8 lets no one name otherwise) is what takes the focus
 * and what a screen reader reads. */
static void
set_accessible_label (LetterboxMessageRow *self,
                      const char          *label)
{
  GtkWidget *parent = gtk_widget_get_parent (GTK_WIDGET (self));

  gtk_accessible_update_property (GTK_ACCESSIBLE (self), GTK_ACCESSIBLE_PROPERTY_LABEL, label, -1);
  if (parent != NULL)
    gtk_accessible_update_property (GTK_ACCESSIBLE (parent), GTK_ACCESSIBLE_PROPERTY_LABEL, label,
                                    -1);
}

static void
show_placeholder (LetterboxMessageRow *self)
{
  self->message_id = 0;
  gtk_label_set_label (self->sender_label, "");
  gtk_label_set_label (self->date_label, "");
  gtk_label_set_label (self->subject_label, "");
  gtk_label_set_label (self->preview_label, "");
  gtk_widget_set_visible (GTK_WIDGET (self->count_label), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->attachment_icon), FALSE);
  gtk_widget_set_visible (GTK_WIDGET (self->star_button), FALSE);
  gtk_widget_remove_css_class (GTK_WIDGET (self), "unread");
  set_accessible_label (self, _("Loading message"));
}

/**
 * letterbox_message_row_set_message:
 * @message: (nullable): the row to show, %NULL for one not read yet
 */
void
letterbox_message_row_set_message (LetterboxMessageRow *self,
                                   LbMessageSummary    *message)
{
  g_autofree char *date = NULL;
  g_autoptr(GString) accessible = NULL;
  const char *subject;
  const char *sender;
  LbMessageFlags flags;
  gboolean unread, starred, attachment;
  guint count;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));
  g_return_if_fail (message == NULL || LB_IS_MESSAGE_SUMMARY (message));

  if (message == NULL)
    {
      show_placeholder (self);
      return;
    }

  self->message_id = lb_message_summary_get_id (message);
  subject = lb_message_summary_get_subject (message);
  if (subject[0] == '\0')
    subject = _("(No subject)");
  sender = lb_message_summary_get_sender (message);
  flags = lb_message_summary_get_flags (message);
  unread = (flags & LB_MESSAGE_FLAG_SEEN) == 0;
  starred = (flags & LB_MESSAGE_FLAG_FLAGGED) != 0;
  attachment = lb_message_summary_get_has_attachment (message);
  count = lb_message_summary_get_thread_count (message);
  date = letterbox_format_date (lb_message_summary_get_date (message), FALSE);

  gtk_label_set_label (self->sender_label, sender);
  gtk_label_set_label (self->date_label, date);
  gtk_label_set_label (self->subject_label, subject);
  gtk_label_set_label (self->preview_label, lb_message_summary_get_preview (message));

  gtk_widget_set_visible (GTK_WIDGET (self->count_label), count > 1);
  if (count > 1)
    {
      char text[16];

      g_snprintf (text, sizeof text, "%u", count);
      gtk_label_set_label (self->count_label, text);
    }
  gtk_widget_set_visible (GTK_WIDGET (self->attachment_icon), attachment);

  gtk_widget_set_visible (GTK_WIDGET (self->star_button), TRUE);
  gtk_button_set_icon_name (self->star_button,
                            starred ? "starred-symbolic" : "non-starred-symbolic");
  gtk_widget_set_tooltip_text (GTK_WIDGET (self->star_button),
                               starred ? _("Unstar") : _("Star"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->star_button),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  starred ? _("Unstar") : _("Star"),
                                  -1);
  if (starred)
    gtk_widget_add_css_class (GTK_WIDGET (self->star_button), "starred");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self->star_button), "starred");

  if (unread)
    gtk_widget_add_css_class (GTK_WIDGET (self), "unread");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self), "unread");

  accessible = g_string_new (NULL);
  if (unread)
    /* Translators: a message in the list, for screen readers: sender, subject, date. */
    g_string_printf (accessible, _("Unread message from %s, %s, %s"), sender, subject, date);
  else
    g_string_printf (accessible, _("Message from %s, %s, %s"), sender, subject, date);
  if (starred)
    /* Translators: added to a message's description for screen readers. */
    g_string_append (accessible, _(", starred"));
  if (attachment)
    /* Translators: added to a message's description for screen readers. */
    g_string_append (accessible, _(", with attachment"));
  if (count > 1)
    /* Translators: added to a conversation's description for screen readers. */
    g_string_append_printf (accessible, ngettext (", %u message in the conversation",
                                                  ", %u messages in the conversation", count),
                            count);
  set_accessible_label (self, accessible->str);
}

static void
item_summary_changed_cb (LetterboxMessageRow *self)
{
  letterbox_message_row_set_message (self, letterbox_message_item_get_summary (self->item));
}

/**
 * letterbox_message_row_set_item:
 * @item: (nullable): the list model's item to show and follow, %NULL to unbind
 */
void
letterbox_message_row_set_item (LetterboxMessageRow  *self,
                                LetterboxMessageItem *item)
{
  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));
  g_return_if_fail (item == NULL || LETTERBOX_IS_MESSAGE_ITEM (item));

  if (self->item != NULL)
    {
      g_clear_signal_handler (&self->notify_id, self->item);
      g_clear_object (&self->item);
    }
  if (item == NULL)
    return;

  self->item = g_object_ref (item);
  self->notify_id = g_signal_connect_swapped (item, "notify::summary",
                                              G_CALLBACK (item_summary_changed_cb), self);
  item_summary_changed_cb (self);
}

/* The id of the message shown, 0 while the row is not read. */
gint64
letterbox_message_row_get_message_id (LetterboxMessageRow *self)
{
  g_return_val_if_fail (LETTERBOX_IS_MESSAGE_ROW (self), 0);
  return self->message_id;
}
