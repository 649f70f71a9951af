/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-message-row.h"

/* One message in the message list, recycled by the list view's factory. */
struct _LetterboxMessageRow
{
  GtkBox parent_instance;

  GtkLabel *sender_label;
  GtkLabel *date_label;
  GtkLabel *subject_label;
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
    return g_date_time_format (date, _("%A, %e %B %Y, %H:%M"));

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

static void
letterbox_message_row_class_init (LetterboxMessageRowClass *klass)
{
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-message-row.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, sender_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, date_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, subject_label);
  gtk_widget_class_bind_template_child (widget_class, LetterboxMessageRow, preview_label);
}

static void
letterbox_message_row_init (LetterboxMessageRow *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
letterbox_message_row_new (void)
{
  return g_object_new (LETTERBOX_TYPE_MESSAGE_ROW, NULL);
}

void
letterbox_message_row_set_message (LetterboxMessageRow *self,
                                   LbMessageSummary    *message)
{
  g_autofree char *date = NULL;
  g_autofree char *accessible = NULL;
  const char *subject;
  gboolean unread;

  g_return_if_fail (LETTERBOX_IS_MESSAGE_ROW (self));
  g_return_if_fail (LB_IS_MESSAGE_SUMMARY (message));

  subject = lb_message_summary_get_subject (message);
  if (subject[0] == '\0')
    subject = _("(No subject)");
  unread = (lb_message_summary_get_flags (message) & LB_MESSAGE_FLAG_SEEN) == 0;
  date = letterbox_format_date (lb_message_summary_get_date (message), FALSE);

  gtk_label_set_label (self->sender_label, lb_message_summary_get_sender (message));
  gtk_label_set_label (self->date_label, date);
  gtk_label_set_label (self->subject_label, subject);
  gtk_label_set_label (self->preview_label, lb_message_summary_get_preview (message));

  if (unread)
    gtk_widget_add_css_class (GTK_WIDGET (self), "unread");
  else
    gtk_widget_remove_css_class (GTK_WIDGET (self), "unread");

  accessible = unread
    /* Translators: a message in the list, for screen readers: sender, subject, date. */
    ? g_strdup_printf (_("Unread message from %s, %s, %s"),
                       lb_message_summary_get_sender (message), subject, date)
    : g_strdup_printf (_("Message from %s, %s, %s"),
                       lb_message_summary_get_sender (message), subject, date);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, accessible,
                                  -1);
}
