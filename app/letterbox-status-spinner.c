/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "letterbox-status-spinner.h"

/*
 * A spinner in the header bar while any account syncs, its tooltip naming them
 * ("Syncing Work…"). Syncing starts with an AccountChanged whose state is "syncing" (or
 * a SyncProgress) and ends with one in any other state.
 */
struct _LetterboxStatusSpinner
{
  GtkWidget parent_instance;

  GtkSpinner *spinner;

  LbBusBackend1 *backend;
  GCancellable *cancellable;
  GHashTable *names;             /* account id → display name */
  GHashTable *syncing;           /* account ids (keys of @names) */
};

G_DEFINE_FINAL_TYPE (LetterboxStatusSpinner, letterbox_status_spinner, GTK_TYPE_WIDGET)

static void
update (LetterboxStatusSpinner *self)
{
  guint n = g_hash_table_size (self->syncing);
  g_autofree char *text = NULL;

  gtk_widget_set_visible (GTK_WIDGET (self), n > 0);
  gtk_spinner_set_spinning (self->spinner, n > 0);
  if (n == 0)
    {
      gtk_widget_set_tooltip_text (GTK_WIDGET (self), NULL);
      return;
    }
  if (n == 1)
    {
      GHashTableIter iter;
      gpointer id;

      g_hash_table_iter_init (&iter, self->syncing);
      g_hash_table_iter_next (&iter, &id, NULL);
      /* Translators: an account's name */
      text = g_strdup_printf (_("Syncing %s…"),
                              (const char *) g_hash_table_lookup (self->names, id));
    }
  else
    text = g_strdup_printf (ngettext ("Syncing %u account…", "Syncing %u accounts…", n), n);
  gtk_widget_set_tooltip_text (GTK_WIDGET (self), text);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->spinner), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  text, -1);
}

static void
remember (LetterboxStatusSpinner *self,
          const char             *account_id,
          const char             *name)
{
  if (name != NULL && name[0] != '\0')
    g_hash_table_replace (self->names, g_strdup (account_id), g_strdup (name));
  else if (!g_hash_table_contains (self->names, account_id))
    g_hash_table_replace (self->names, g_strdup (account_id), g_strdup (account_id));
}

static void
set_account_state (LetterboxStatusSpinner *self,
                   const char             *account_id,
                   GVariant               *state)
{
  const char *state_name = "", *name = NULL;

  g_variant_lookup (state, "state", "&s", &state_name);
  g_variant_lookup (state, "display-name", "&s", &name);
  remember (self, account_id, name);
  if (g_strcmp0 (state_name, "syncing") == 0)
    g_hash_table_add (self->syncing, g_strdup (account_id));
  else
    g_hash_table_remove (self->syncing, account_id);
  update (self);
}

static void
account_changed_cb (LbBusBackend1          *backend,
                    const char             *account_id,
                    GVariant               *state,
                    LetterboxStatusSpinner *self)
{
  set_account_state (self, account_id, state);
}

static void
progress_cb (LbBusBackend1          *backend,
             const char             *account_id,
             const char             *folder,
             guint                   done,
             guint                   total,
             LetterboxStatusSpinner *self)
{
  if (g_hash_table_contains (self->syncing, account_id))
    return;
  remember (self, account_id, NULL);
  g_hash_table_add (self->syncing, g_strdup (account_id));
  update (self);
}

static void
list_accounts_cb (GObject      *source,
                  GAsyncResult *result,
                  gpointer      user_data)
{
  LetterboxStatusSpinner *self = user_data;
  g_autoptr(GVariant) accounts = NULL;
  g_autoptr(GError) error = NULL;
  GVariantIter iter;
  const char *id;
  GVariant *state;

  if (!lb_bus_backend1_call_list_accounts_finish (LB_BUS_BACKEND1 (source), &accounts, result,
                                                  &error))
    return;
  g_variant_iter_init (&iter, accounts);
  while (g_variant_iter_next (&iter, "(&s@a{sv})", &id, &state))
    {
      set_account_state (self, id, state);
      g_variant_unref (state);
    }
}

static void
name_owner_changed_cb (GDBusProxy             *proxy,
                       GParamSpec             *pspec,
                       LetterboxStatusSpinner *self)
{
  g_autofree char *owner = g_dbus_proxy_get_name_owner (proxy);

  /* A service that went away syncs nothing any more. */
  g_hash_table_remove_all (self->syncing);
  update (self);
  if (owner != NULL)
    lb_bus_backend1_call_list_accounts (self->backend, self->cancellable, list_accounts_cb, self);
}

/**
 * letterbox_status_spinner_set_backend:
 * @backend: (nullable): the proxy for org.letterbox.Backend1
 */
void
letterbox_status_spinner_set_backend (LetterboxStatusSpinner *self,
                                      LbBusBackend1          *backend)
{
  g_return_if_fail (LETTERBOX_IS_STATUS_SPINNER (self));
  g_return_if_fail (backend == NULL || LB_BUS_IS_BACKEND1 (backend));

  if (self->backend == backend)
    return;
  if (self->backend != NULL)
    g_signal_handlers_disconnect_by_data (self->backend, self);
  g_set_object (&self->backend, backend);
  g_hash_table_remove_all (self->syncing);
  update (self);
  if (backend == NULL)
    return;
  g_signal_connect (backend, "account-changed", G_CALLBACK (account_changed_cb), self);
  g_signal_connect (backend, "sync-progress", G_CALLBACK (progress_cb), self);
  /* A proxy (always, but for tests, which may hand in a skeleton to emit signals on). */
  if (G_IS_DBUS_PROXY (backend))
    {
      g_signal_connect (backend, "notify::g-name-owner", G_CALLBACK (name_owner_changed_cb),
                        self);
      lb_bus_backend1_call_list_accounts (backend, self->cancellable, list_accounts_cb, self);
    }
}

static void
letterbox_status_spinner_dispose (GObject *object)
{
  LetterboxStatusSpinner *self = LETTERBOX_STATUS_SPINNER (object);

  g_cancellable_cancel (self->cancellable);
  if (self->backend != NULL)
    g_signal_handlers_disconnect_by_data (self->backend, self);
  g_clear_object (&self->backend);
  g_clear_pointer (&self->syncing, g_hash_table_unref);
  g_clear_pointer (&self->names, g_hash_table_unref);
  g_clear_object (&self->cancellable);
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
  self->cancellable = g_cancellable_new ();
  self->names = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, g_free);
  self->syncing = g_hash_table_new_full (g_str_hash, g_str_equal, g_free, NULL);
}

GtkWidget *
letterbox_status_spinner_new (void)
{
  return g_object_new (LETTERBOX_TYPE_STATUS_SPINNER, NULL);
}
