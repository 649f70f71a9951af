/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-status-spinner.h"

/*
 * A spinner in the header bar while any account syncs, its tooltip naming them
 * ("Syncing Work…"), as the window's LetterboxAccountStates tells: syncing starts with an
 * AccountChanged whose state is "syncing" (or a SyncProgress) and ends with one in any
 * other state, or when the service goes away.
 */
struct _LetterboxStatusSpinner
{
  GtkWidget parent_instance;

  GtkSpinner *spinner;

  LetterboxAccountStates *states;
};

G_DEFINE_FINAL_TYPE (LetterboxStatusSpinner, letterbox_status_spinner, GTK_TYPE_WIDGET)

static void
update (LetterboxStatusSpinner *self)
{
  g_auto(GStrv) syncing = NULL;
  g_autofree char *text = NULL;
  guint n = 0;

  if (self->states != NULL)
    {
      syncing = letterbox_account_states_dup_syncing (self->states);
      n = g_strv_length (syncing);
    }
  gtk_widget_set_visible (GTK_WIDGET (self), n > 0);
  gtk_spinner_set_spinning (self->spinner, n > 0);
  if (n == 0)
    {
      gtk_widget_set_tooltip_text (GTK_WIDGET (self), NULL);
      return;
    }
  if (n == 1)
    /* Translators: an account's name */
    text = g_strdup_printf (_("Syncing %s…"),
                            letterbox_account_states_get_display_name (self->states,
                                                                       syncing[0]));
  else
    text = g_strdup_printf (ngettext ("Syncing %u account…", "Syncing %u accounts…", n), n);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self), text);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->spinner), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  text, -1);
}

/**
 * letterbox_status_spinner_set_account_states:
 * @states: (nullable): the window's accounts' states
 */
void
letterbox_status_spinner_set_account_states (LetterboxStatusSpinner *self,
                                             LetterboxAccountStates *states)
{
  g_return_if_fail (LETTERBOX_IS_STATUS_SPINNER (self));
  g_return_if_fail (states == NULL || LETTERBOX_IS_ACCOUNT_STATES (states));

  if (self->states == states)
    return;
  if (self->states != NULL)
    g_signal_handlers_disconnect_by_data (self->states, self);
  g_set_object (&self->states, states);
  if (states != NULL)
    {
      /* A new display name may come with a state that changes nothing else. */
      g_signal_connect_swapped (states, "account-changed", G_CALLBACK (update), self);
      g_signal_connect_swapped (states, "syncing-changed", G_CALLBACK (update), self);
      g_signal_connect_swapped (states, "reset", G_CALLBACK (update), self);
    }
  update (self);
}

static void
letterbox_status_spinner_dispose (GObject *object)
{
  LetterboxStatusSpinner *self = LETTERBOX_STATUS_SPINNER (object);

  if (self->states != NULL)
    g_signal_handlers_disconnect_by_data (self->states, self);
  g_clear_object (&self->states);
  gtk_widget_dispose_template (GTK_WIDGET (self), LETTERBOX_TYPE_STATUS_SPINNER);

  G_OBJECT_CLASS (letterbox_status_spinner_parent_class)->dispose (object);
}

static void
letterbox_status_spinner_class_init (LetterboxStatusSpinnerClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_status_spinner_dispose;

  gtk_widget_class_set_template_from_resource (
    widget_class, "/org/letterbox/Letterbox/letterbox-status-spinner.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxStatusSpinner, spinner);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
}

static void
letterbox_status_spinner_init (LetterboxStatusSpinner *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
}

GtkWidget *
letterbox_status_spinner_new (void)
{
  return g_object_new (LETTERBOX_TYPE_STATUS_SPINNER, NULL);
}
