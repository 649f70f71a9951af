/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <string.h>

#include "lb-account.h"
#include "lb-secret.h"
#include "letterbox-account-assistant.h"
#include "letterbox-combo-row-factory.h"
#include "letterbox-preferences.h"

/*
 * Preferences: the accounts (names, address, password, server settings through the
 * account assistant, removal) and the general settings in GSettings. Account files are
 * read and written in worker threads; the background service notices changed files by
 * itself (its file monitor).
 */

struct _LetterboxPreferences
{
  AdwPreferencesWindow parent_instance;

  GSettings *settings;
  GCancellable *cancellable;
  GPtrArray *account_rows;

  AdwPreferencesGroup *accounts_group;
  AdwActionRow *no_accounts_row;
  AdwComboRow *mark_read_row;
  GtkSwitch *conversations_switch;
  GtkSwitch *background_switch;
};

G_DEFINE_FINAL_TYPE (LetterboxPreferences, letterbox_preferences, ADW_TYPE_PREFERENCES_WINDOW)

/* The choices of the "Mark Messages Read" row, in seconds (-1: never). */
static const int mark_read_choices[] = { 0, 1, 3, 5, -1 };

/* ---- editing one field of an account file -------------------------------------------- */

typedef enum
{
  FIELD_DISPLAY_NAME,
  FIELD_IDENTITY_NAME,
  FIELD_IDENTITY_ADDRESS,
} Field;

typedef struct
{
  char *id;
  Field field;
  char *value;
} Edit;

static void
edit_free (Edit *edit)
{
  g_free (edit->id);
  g_free (edit->value);
  g_free (edit);
}

static void
edit_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  Edit *edit = task_data;
  GError *error = NULL;
  g_autoptr(LbAccount) account = lb_account_load (edit->id, &error);
  LbAccountIdentity *identity;

  if (account == NULL)
    {
      g_task_return_error (task, error);
      return;
    }
  if (account->identities->len == 0)
    lb_account_add_identity (account, NULL, "");
  identity = g_ptr_array_index (account->identities, 0);
  switch (edit->field)
    {
    case FIELD_DISPLAY_NAME:
      g_free (account->display_name);
      account->display_name = edit->value[0] != '\0' ? g_strdup (edit->value) : NULL;
      break;
    case FIELD_IDENTITY_NAME:
      g_free (identity->name);
      identity->name = edit->value[0] != '\0' ? g_strdup (edit->value) : NULL;
      break;
    case FIELD_IDENTITY_ADDRESS:
    default:
      g_free (identity->address);
      identity->address = g_strdup (edit->value);
      break;
    }
  if (!lb_account_validate (account, &error) || !lb_account_save (account, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
show_toast (LetterboxPreferences *self,
            const char           *text)
{
  AdwToast *toast = adw_toast_new (text);

  adw_toast_set_timeout (toast, 8);
  adw_preferences_window_add_toast (ADW_PREFERENCES_WINDOW (self), toast);
}

static void
edit_done_cb (GObject      *object,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GtkWidget) row = user_data;
  g_autoptr(GError) error = NULL;
  GtkRoot *root = gtk_widget_get_root (row);

  if (g_task_propagate_boolean (G_TASK (result), &error))
    {
      gtk_widget_remove_css_class (row, "error");
      if (LETTERBOX_IS_PREFERENCES (root))
        show_toast (LETTERBOX_PREFERENCES (root), _("Saved"));
      return;
    }
  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return;
  gtk_widget_add_css_class (row, "error");
  if (LETTERBOX_IS_PREFERENCES (root))
    show_toast (LETTERBOX_PREFERENCES (root), error->message);
}

static void
field_applied_cb (AdwEntryRow          *row,
                  LetterboxPreferences *self)
{
  g_autoptr(GTask) task = g_task_new (NULL, self->cancellable, edit_done_cb, g_object_ref (row));
  Edit *edit = g_new0 (Edit, 1);

  edit->id = g_strdup (g_object_get_data (G_OBJECT (row), "account-id"));
  edit->field = GPOINTER_TO_INT (g_object_get_data (G_OBJECT (row), "field"));
  edit->value = g_strstrip (g_strdup (gtk_editable_get_text (GTK_EDITABLE (row))));
  g_task_set_task_data (task, edit, (GDestroyNotify) edit_free);
  g_task_run_in_thread (task, edit_thread);
}

/* ---- the password -------------------------------------------------------------------- */

typedef struct
{
  LetterboxPreferences *self;
  AdwEntryRow *row;
  LbAccount *account;
  char *password;
  guint index;
} PasswordSave;

static void
password_save_free (PasswordSave *save)
{
  g_object_unref (save->self);
  g_object_unref (save->row);
  lb_account_free (save->account);
  memset (save->password, 0, strlen (save->password));
  g_free (save->password);
  g_free (save);
}

static void password_save_next (PasswordSave *save);

static void
password_stored_cb (GObject      *object,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  PasswordSave *save = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_account_set_password_finish (result, &error))
    {
      g_autofree char *message = g_strdup_printf (_("The password could not be stored: %s"),
                                                  error->message);

      gtk_widget_add_css_class (GTK_WIDGET (save->row), "error");
      show_toast (save->self, message);
      password_save_free (save);
      return;
    }
  save->index++;
  password_save_next (save);
}

static void
password_save_next (PasswordSave *save)
{
  const LbAccountServer *server = save->index == 0 ? save->account->incoming
                                  : save->index == 1 ? save->account->outgoing : NULL;

  if (server == NULL)
    {
      gtk_widget_remove_css_class (GTK_WIDGET (save->row), "error");
      gtk_editable_set_text (GTK_EDITABLE (save->row), "");
      show_toast (save->self, _("Password saved"));
      password_save_free (save);
      return;
    }
  lb_account_set_password_async (save->account, server->protocol, save->password,
                                 save->self->cancellable, password_stored_cb, save);
}

static void
password_applied_cb (AdwEntryRow          *row,
                     LetterboxPreferences *self)
{
  const LbAccount *account = g_object_get_data (G_OBJECT (row), "account");
  PasswordSave *save;

  if (gtk_editable_get_text (GTK_EDITABLE (row))[0] == '\0')
    return;
  save = g_new0 (PasswordSave, 1);
  save->self = g_object_ref (self);
  save->row = g_object_ref (row);
  save->account = lb_account_copy (account);
  save->password = g_strdup (gtk_editable_get_text (GTK_EDITABLE (row)));
  password_save_next (save);
}

/* ---- server settings and removal ----------------------------------------------------- */

static void
assistant_saved_cb (LetterboxAccountAssistant *assistant,
                    const char                *id,
                    LetterboxPreferences      *self)
{
  letterbox_preferences_reload (self);
}

static void
open_assistant (LetterboxPreferences      *self,
                LetterboxAccountAssistant *assistant)
{
  g_signal_connect_object (assistant, "account-saved", G_CALLBACK (assistant_saved_cb), self, 0);
  gtk_window_present (GTK_WINDOW (assistant));
}

static void
server_settings_cb (AdwActionRow         *row,
                    LetterboxPreferences *self)
{
  const char *id = g_object_get_data (G_OBJECT (row), "account-id");
  g_autoptr(GError) error = NULL;
  LetterboxAccountAssistant *assistant =
    letterbox_account_assistant_new_for_account (GTK_WINDOW (self), id, &error);

  if (assistant == NULL)
    {
      show_toast (self, error->message);
      return;
    }
  open_assistant (self, assistant);
}

static void
remove_thread (GTask        *task,
               gpointer      source,
               gpointer      task_data,
               GCancellable *cancellable)
{
  GError *error = NULL;

  if (!lb_account_remove (task_data, &error))
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
secret_cleared_cb (GObject      *object,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  g_autoptr(GError) error = NULL;

  /* Nothing stored (a password command, or no keyring) is not worth a word. */
  if (!lb_secret_clear_finish (result, &error))
    g_debug ("Clearing a removed account's password: %s", error->message);
}

static void
removed_cb (GObject      *object,
            GAsyncResult *result,
            gpointer      user_data)
{
  g_autoptr(LetterboxPreferences) self = user_data;
  g_autoptr(GError) error = NULL;
  const char *id = g_task_get_task_data (G_TASK (result));

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      show_toast (self, error->message);
      return;
    }
  for (LbAccountProtocol p = LB_ACCOUNT_PROTOCOL_IMAP; p <= LB_ACCOUNT_PROTOCOL_SMTP; p++)
    lb_secret_clear_async (id, lb_account_protocol_to_string (p), NULL, secret_cleared_cb, NULL);
  letterbox_preferences_reload (self);
}

static void
remove_response_cb (AdwMessageDialog     *dialog,
                    const char           *response,
                    LetterboxPreferences *self)
{
  g_autoptr(GTask) task = NULL;

  if (g_strcmp0 (response, "remove") != 0)
    return;
  task = g_task_new (NULL, self->cancellable, removed_cb, g_object_ref (self));
  g_task_set_task_data (task, g_strdup (g_object_get_data (G_OBJECT (dialog), "account-id")),
                        g_free);
  g_task_run_in_thread (task, remove_thread);
}

static void
remove_clicked_cb (GtkButton            *button,
                   LetterboxPreferences *self)
{
  const LbAccount *account = g_object_get_data (G_OBJECT (button), "account");
  GtkWidget *dialog;
  g_autofree char *heading = g_strdup_printf (_("Remove %s?"), lb_account_get_address (account));

  dialog = adw_message_dialog_new (GTK_WINDOW (self), heading,
                                   _("Letterbox stops syncing this account and forgets its "
                                     "settings and its stored password. The mail on the server "
                                     "is not touched. The copies already downloaded stay on "
                                     "this computer in Letterbox’s mail store; adding the "
                                     "account again reuses nothing of them."));
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "remove", _("_Remove"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "remove",
                                              ADW_RESPONSE_DESTRUCTIVE);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  g_object_set_data_full (G_OBJECT (dialog), "account-id", g_strdup (account->id), g_free);
  g_signal_connect_object (dialog, "response", G_CALLBACK (remove_response_cb), self, 0);
  gtk_window_present (GTK_WINDOW (dialog));
}

/* ---- the account rows ---------------------------------------------------------------- */

static AdwEntryRow *
add_entry_row (AdwExpanderRow *expander,
               gboolean        password,
               const char     *title,
               const char     *text)
{
  GtkWidget *row = password ? adw_password_entry_row_new () : adw_entry_row_new ();

  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (row), title);
  adw_preferences_row_set_use_underline (ADW_PREFERENCES_ROW (row), TRUE);
  /* Applied with its button or with Enter ("apply" or "entry-activated"). */
  adw_entry_row_set_show_apply_button (ADW_ENTRY_ROW (row), TRUE);
  gtk_editable_set_text (GTK_EDITABLE (row), text != NULL ? text : "");
  adw_expander_row_add_row (expander, row);
  return ADW_ENTRY_ROW (row);
}

static void
add_account_row (LetterboxPreferences *self,
                 const LbAccount      *account)
{
  GtkWidget *expander = adw_expander_row_new ();
  const LbAccountIdentity *identity = account->identities->len > 0
                                      ? g_ptr_array_index (account->identities, 0) : NULL;
  LbAccount *copy = lb_account_copy (account);
  AdwEntryRow *row;
  GtkWidget *action_row;
  GtkWidget *button;
  g_autofree char *settings_label = NULL;
  g_autofree char *subtitle = NULL;
  GtkWidget *label;

  adw_preferences_row_set_use_markup (ADW_PREFERENCES_ROW (expander), FALSE);
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (expander),
                                 account->display_name != NULL ? account->display_name
                                                               : account->id);
  /* The address, or when the account is named after it, where its mail comes from. */
  if (g_strcmp0 (account->display_name, lb_account_get_address (account)) != 0)
    subtitle = g_strdup (lb_account_get_address (account));
  else
    subtitle = g_strdup_printf ("%s, %s",
                                account->incoming->protocol == LB_ACCOUNT_PROTOCOL_POP3
                                ? _("POP3") : _("IMAP"), account->incoming->host);
  adw_expander_row_set_subtitle (ADW_EXPANDER_ROW (expander), subtitle);
  {
    g_autofree char *name = NULL;

    /* Translators: an account in Preferences, for screen readers: its name, then its
     * address (or where its mail comes from). */
    name = g_strdup_printf (_("%s, %s"),
                            adw_preferences_row_get_title (ADW_PREFERENCES_ROW (expander)),
                            subtitle);
    gtk_accessible_update_property (GTK_ACCESSIBLE (expander), GTK_ACCESSIBLE_PROPERTY_LABEL, name,
                                    -1);
  }
  g_object_set_data_full (G_OBJECT (expander), "account", copy, (GDestroyNotify) lb_account_free);

  row = add_entry_row (ADW_EXPANDER_ROW (expander), FALSE, _("Account _Name"),
                       account->display_name != NULL ? account->display_name : account->id);
  g_object_set_data_full (G_OBJECT (row), "account-id", g_strdup (account->id), g_free);
  g_object_set_data (G_OBJECT (row), "field", GINT_TO_POINTER (FIELD_DISPLAY_NAME));
  g_signal_connect (row, "apply", G_CALLBACK (field_applied_cb), self);
  g_signal_connect (row, "entry-activated", G_CALLBACK (field_applied_cb), self);

  row = add_entry_row (ADW_EXPANDER_ROW (expander), FALSE, _("_Your Name"),
                       identity != NULL ? identity->name : NULL);
  g_object_set_data_full (G_OBJECT (row), "account-id", g_strdup (account->id), g_free);
  g_object_set_data (G_OBJECT (row), "field", GINT_TO_POINTER (FIELD_IDENTITY_NAME));
  g_signal_connect (row, "apply", G_CALLBACK (field_applied_cb), self);
  g_signal_connect (row, "entry-activated", G_CALLBACK (field_applied_cb), self);

  row = add_entry_row (ADW_EXPANDER_ROW (expander), FALSE, _("_E-mail Address"),
                       lb_account_get_address (account));
  g_object_set_data_full (G_OBJECT (row), "account-id", g_strdup (account->id), g_free);
  g_object_set_data (G_OBJECT (row), "field", GINT_TO_POINTER (FIELD_IDENTITY_ADDRESS));
  g_signal_connect (row, "apply", G_CALLBACK (field_applied_cb), self);
  g_signal_connect (row, "entry-activated", G_CALLBACK (field_applied_cb), self);

  if (account->password_source == LB_ACCOUNT_PASSWORD_KEYRING)
    {
      row = add_entry_row (ADW_EXPANDER_ROW (expander), TRUE, _("New _Password"), NULL);
      g_object_set_data (G_OBJECT (row), "account", copy);
      g_signal_connect (row, "apply", G_CALLBACK (password_applied_cb), self);
      g_signal_connect (row, "entry-activated", G_CALLBACK (password_applied_cb), self);
    }

  action_row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (action_row), _("_Server Settings"));
  adw_preferences_row_set_use_underline (ADW_PREFERENCES_ROW (action_row), TRUE);
  adw_action_row_add_suffix (ADW_ACTION_ROW (action_row),
                             gtk_image_new_from_icon_name ("go-next-symbolic"));
  gtk_list_box_row_set_activatable (GTK_LIST_BOX_ROW (action_row), TRUE);
  settings_label = g_strdup_printf (_("Server settings of %s"), lb_account_get_address (account));
  gtk_accessible_update_property (GTK_ACCESSIBLE (action_row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  settings_label, -1);
  g_object_set_data_full (G_OBJECT (action_row), "account-id", g_strdup (account->id), g_free);
  g_signal_connect (action_row, "activated", G_CALLBACK (server_settings_cb), self);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), action_row);

  action_row = adw_action_row_new ();
  adw_preferences_row_set_title (ADW_PREFERENCES_ROW (action_row), _("Remove Account"));
  /* A plain label child and a name, not gtk_button_new_with_mnemonic(): GTK 4.8 would
   * name the button "_Remove… Remove…" for screen readers (see set_button_label() in
   * letterbox-account-assistant.c). */
  button = gtk_button_new ();
  label = gtk_label_new_with_mnemonic (_("_Remove…"));
  gtk_button_set_child (GTK_BUTTON (button), label);
  gtk_accessible_update_property (GTK_ACCESSIBLE (button), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Remove…"), -1);
  gtk_widget_set_valign (button, GTK_ALIGN_CENTER);
  gtk_widget_add_css_class (button, "destructive-action");
  g_object_set_data (G_OBJECT (button), "account", copy);
  g_signal_connect (button, "clicked", G_CALLBACK (remove_clicked_cb), self);
  adw_action_row_add_suffix (ADW_ACTION_ROW (action_row), button);
  adw_expander_row_add_row (ADW_EXPANDER_ROW (expander), action_row);

  adw_preferences_group_add (self->accounts_group, expander);
  g_ptr_array_add (self->account_rows, expander);
}

static void
load_thread (GTask        *task,
             gpointer      source,
             gpointer      task_data,
             GCancellable *cancellable)
{
  GError *error = NULL;
  GPtrArray *accounts = lb_account_load_all (&error);

  if (accounts == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_pointer (task, accounts, (GDestroyNotify) g_ptr_array_unref);
}

static void
loaded_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(LetterboxPreferences) self = user_data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) accounts = g_task_propagate_pointer (G_TASK (result), &error);

  if (accounts == NULL)
    {
      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        show_toast (self, error->message);
      return;
    }
  for (guint i = 0; i < self->account_rows->len; i++)
    adw_preferences_group_remove (self->accounts_group, g_ptr_array_index (self->account_rows, i));
  g_ptr_array_set_size (self->account_rows, 0);
  for (guint i = 0; i < accounts->len; i++)
    add_account_row (self, g_ptr_array_index (accounts, i));
  gtk_widget_set_visible (GTK_WIDGET (self->no_accounts_row), accounts->len == 0);
}

/**
 * letterbox_preferences_reload:
 *
 * Reads the account files again (in a worker thread) and rebuilds the account rows.
 */
void
letterbox_preferences_reload (LetterboxPreferences *self)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LETTERBOX_IS_PREFERENCES (self));

  task = g_task_new (NULL, self->cancellable, loaded_cb, g_object_ref (self));
  g_task_run_in_thread (task, load_thread);
}

/* ---- general settings ---------------------------------------------------------------- */

static void
mark_read_setting_cb (LetterboxPreferences *self)
{
  int delay = g_settings_get_int (self->settings, "mark-read-delay");
  guint best = G_N_ELEMENTS (mark_read_choices) - 1;

  /* A value set elsewhere (dconf) shows as the first choice that is not sooner. */
  if (delay >= 0)
    {
      best = G_N_ELEMENTS (mark_read_choices) - 2;
      for (guint i = 0; i < G_N_ELEMENTS (mark_read_choices) - 1; i++)
        if (mark_read_choices[i] >= delay)
          {
            best = i;
            break;
          }
    }
  if (adw_combo_row_get_selected (self->mark_read_row) != best)
    adw_combo_row_set_selected (self->mark_read_row, best);
}

static void
mark_read_row_cb (LetterboxPreferences *self)
{
  guint selected = adw_combo_row_get_selected (self->mark_read_row);

  if (selected < G_N_ELEMENTS (mark_read_choices) &&
      g_settings_get_int (self->settings, "mark-read-delay") != mark_read_choices[selected])
    g_settings_set_int (self->settings, "mark-read-delay", mark_read_choices[selected]);
}

static void
add_account_action (GtkWidget  *widget,
                    const char *action_name,
                    GVariant   *parameter)
{
  LetterboxPreferences *self = LETTERBOX_PREFERENCES (widget);

  open_assistant (self, letterbox_account_assistant_new (GTK_WINDOW (self)));
}

static void
letterbox_preferences_dispose (GObject *object)
{
  LetterboxPreferences *self = LETTERBOX_PREFERENCES (object);

  g_cancellable_cancel (self->cancellable);
  gtk_widget_dispose_template (GTK_WIDGET (self), LETTERBOX_TYPE_PREFERENCES);

  G_OBJECT_CLASS (letterbox_preferences_parent_class)->dispose (object);
}

static void
letterbox_preferences_finalize (GObject *object)
{
  LetterboxPreferences *self = LETTERBOX_PREFERENCES (object);

  g_clear_object (&self->settings);
  g_clear_object (&self->cancellable);
  g_clear_pointer (&self->account_rows, g_ptr_array_unref);

  G_OBJECT_CLASS (letterbox_preferences_parent_class)->finalize (object);
}

static void
letterbox_preferences_class_init (LetterboxPreferencesClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_preferences_dispose;
  object_class->finalize = letterbox_preferences_finalize;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-preferences.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxPreferences, accounts_group);
  gtk_widget_class_bind_template_child (widget_class, LetterboxPreferences, no_accounts_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxPreferences, mark_read_row);
  gtk_widget_class_bind_template_child (widget_class, LetterboxPreferences, conversations_switch);
  gtk_widget_class_bind_template_child (widget_class, LetterboxPreferences, background_switch);

  gtk_widget_class_install_action (widget_class, "preferences.add-account", NULL,
                                   add_account_action);
  gtk_widget_class_add_binding_action (widget_class, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void
letterbox_preferences_init (LetterboxPreferences *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));

  self->cancellable = g_cancellable_new ();
  {
    g_autoptr(GtkListItemFactory) factory = letterbox_combo_row_factory_new ();

    adw_combo_row_set_factory (self->mark_read_row, factory);
  }
  self->account_rows = g_ptr_array_new ();
  self->settings = g_settings_new (APP_ID);

  g_settings_bind (self->settings, "conversations", self->conversations_switch, "active",
                   G_SETTINGS_BIND_DEFAULT);
  g_settings_bind (self->settings, "run-in-background", self->background_switch, "active",
                   G_SETTINGS_BIND_DEFAULT);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->conversations_switch),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Group Conversations"), -1);
  gtk_accessible_update_property (GTK_ACCESSIBLE (self->background_switch),
                                  GTK_ACCESSIBLE_PROPERTY_LABEL, _("Run in Background"), -1);

  mark_read_setting_cb (self);
  g_signal_connect_object (self->settings, "changed::mark-read-delay",
                           G_CALLBACK (mark_read_setting_cb), self, G_CONNECT_SWAPPED);
  g_signal_connect_object (self->mark_read_row, "notify::selected",
                           G_CALLBACK (mark_read_row_cb), self, G_CONNECT_SWAPPED);

  letterbox_preferences_reload (self);
}

/**
 * letterbox_preferences_new:
 * @parent: (nullable): the window it belongs to
 *
 * Returns: (transfer full): the preferences window; present it
 */
LetterboxPreferences *
letterbox_preferences_new (GtkWindow *parent)
{
  return g_object_new (LETTERBOX_TYPE_PREFERENCES,
                       "transient-for", parent,
                       "application", parent != NULL ? gtk_window_get_application (parent) : NULL,
                       NULL);
}
