/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <adwaita.h>
#include <glib/gi18n.h>
#include <string.h>

#include "lb-account.h"
#include "letterbox-status-area.h"

/*
 * The strip at the top of the window's content that says what keeps mail from arriving:
 * "you are offline" (GNetworkMonitor), and one line per account whose last sync failed
 * (the window's LetterboxAccountStates: ListAccounts, then AccountChanged from whoever
 * owns org.letterbox.Backend), each with
 * the action that fixes it — enter the password again, review the certificate, or retry.
 * libadwaita 1.2 has no AdwBanner: these are revealers around styled boxes.
 */
struct _LetterboxStatusArea
{
  GtkWidget parent_instance;

  GtkWidget *box;
  GtkRevealer *offline_revealer;
  GtkRevealer *accounts_revealer;
  GtkBox *accounts_box;

  LetterboxAccountStates *states;
  GNetworkMonitor *monitor;
  GCancellable *cancellable;
  GHashTable *problems;          /* account id → Problem */
};

G_DEFINE_FINAL_TYPE (LetterboxStatusArea, letterbox_status_area, GTK_TYPE_WIDGET)

typedef struct
{
  LetterboxStatusArea *self;     /* unowned: the area owns the problem */
  char *account_id;
  char *name;
  char *kind;
  GtkWidget *row;
  GtkLabel *label;
  GtkButton *button;
} Problem;

static void
problem_free (Problem *problem)
{
  if (problem->row != NULL)
    gtk_box_remove (problem->self->accounts_box, problem->row);
  g_free (problem->account_id);
  g_free (problem->name);
  g_free (problem->kind);
  g_free (problem);
}

static void
update_revealers (LetterboxStatusArea *self)
{
  gtk_revealer_set_reveal_child (self->accounts_revealer,
                                 g_hash_table_size (self->problems) > 0);
}

/* ---- Fixing: Retry, Enter Password, Review Certificate ---- */

static void
sync_done_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  g_autoptr(GVariant) results = NULL;
  g_autoptr(GError) error = NULL;

  /* The outcome reaches the area as AccountChanged; only a failed call is told here. */
  if (!lb_bus_backend1_call_sync_finish (LB_BUS_BACKEND1 (source), &results, result, &error) &&
      !g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    g_warning ("Sync: %s", error->message);
}

static void
sync_account (LetterboxStatusArea *self,
              const char          *account_id)
{
  const char *ids[] = { account_id, NULL };
  LbBusBackend1 *backend = NULL;

  if (self->states != NULL)
    backend = letterbox_account_states_get_backend (self->states);
  if (!G_IS_DBUS_PROXY (backend))
    return;
  lb_bus_backend1_call_sync (backend, ids, g_variant_new ("a{sv}", NULL), self->cancellable,
                             sync_done_cb, NULL);
}

typedef struct
{
  LetterboxStatusArea *self;     /* a reference */
  char *account_id;
  char *password;
  LbAccount *account;
  guint pending;
  GError *error;
} PasswordJob;

static void
password_job_free (PasswordJob *job)
{
  g_object_unref (job->self);
  g_free (job->account_id);
  if (job->password != NULL)
    memset (job->password, 0, strlen (job->password));
  g_free (job->password);
  g_clear_pointer (&job->account, lb_account_free);
  g_clear_error (&job->error);
  g_free (job);
}

static void
show_problem_text (LetterboxStatusArea *self,
                   const char          *account_id,
                   const char          *text)
{
  Problem *problem = g_hash_table_lookup (self->problems, account_id);

  if (problem != NULL)
    {
      gtk_label_set_label (problem->label, text);
      gtk_widget_set_sensitive (GTK_WIDGET (problem->button), TRUE);
    }
}

static void
password_stored_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  PasswordJob *job = user_data;
  g_autoptr(GError) error = NULL;

  if (!lb_account_set_password_finish (result, &error) && job->error == NULL)
    job->error = g_steal_pointer (&error);
  if (--job->pending > 0)
    return;

  if (job->error != NULL)
    {
      g_autofree char *text = NULL;

      if (!g_error_matches (job->error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          text = g_strdup_printf (_("The password could not be saved: %s"), job->error->message);
          show_problem_text (job->self, job->account_id, text);
        }
    }
  else
    /* The keyring has the new password: the next sync logs in with it. */
    sync_account (job->self, job->account_id);
  password_job_free (job);
}

static void
load_account_thread (GTask        *task,
                     gpointer      source_object,
                     gpointer      task_data,
                     GCancellable *cancellable)
{
  PasswordJob *job = task_data;
  GError *error = NULL;

  job->account = lb_account_load (job->account_id, &error);
  if (job->account == NULL)
    g_task_return_error (task, error);
  else
    g_task_return_boolean (task, TRUE);
}

static void
account_loaded_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  PasswordJob *job = g_task_get_task_data (G_TASK (result));
  g_autoptr(GError) error = NULL;
  const LbAccountServer *in, *out;

  if (!g_task_propagate_boolean (G_TASK (result), &error))
    {
      g_autofree char *text = NULL;

      if (!g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          text = g_strdup_printf (_("The password could not be saved: %s"), error->message);
          show_problem_text (job->self, job->account_id, text);
        }
      password_job_free (job);
      return;
    }

  in = job->account->incoming;
  out = job->account->outgoing;
  job->pending = 1;
  /* The same login for sending (the usual case): the same password for it too. */
  if (out != NULL && g_strcmp0 (in->user, out->user) == 0)
    job->pending = 2;
  lb_account_set_password_async (job->account, in->protocol, job->password,
                                 job->self->cancellable, password_stored_cb, job);
  if (job->pending == 2)
    lb_account_set_password_async (job->account, out->protocol, job->password,
                                   job->self->cancellable, password_stored_cb, job);
}

static void
password_response_cb (AdwMessageDialog *dialog,
                      const char       *response,
                      gpointer          user_data)
{
  PasswordJob *job = user_data;
  GtkEditable *entry = g_object_get_data (G_OBJECT (dialog), "letterbox-password-row");
  g_autoptr(GTask) task = NULL;
  Problem *problem;

  if (g_strcmp0 (response, "save") != 0 || gtk_editable_get_text (entry)[0] == '\0')
    {
      password_job_free (job);
      return;
    }

  job->password = g_strdup (gtk_editable_get_text (entry));
  gtk_editable_set_text (entry, "");
  problem = g_hash_table_lookup (job->self->problems, job->account_id);
  if (problem != NULL)
    {
      gtk_label_set_label (problem->label, _("Checking the new password…"));
      gtk_widget_set_sensitive (GTK_WIDGET (problem->button), FALSE);
    }
  /* Reading the account file is disk I/O: off the main thread. */
  task = g_task_new (NULL, job->self->cancellable, account_loaded_cb, NULL);
  /* No destroy notify: the job outlives the task (account_loaded_cb() frees it). */
  g_task_set_task_data (task, job, NULL);
  g_task_run_in_thread (task, load_account_thread);
}

static void
save_sensitive_cb (GtkEditable      *entry,
                   AdwMessageDialog *dialog)
{
  adw_message_dialog_set_response_enabled (dialog, "save",
                                           gtk_editable_get_text (entry)[0] != '\0');
}

static void
ask_password (LetterboxStatusArea *self,
              Problem             *problem)
{
  GtkRoot *root = gtk_widget_get_root (GTK_WIDGET (self));
  GtkWidget *dialog, *entry;
  PasswordJob *job;

  dialog = adw_message_dialog_new (GTK_IS_WINDOW (root) ? GTK_WINDOW (root) : NULL,
                                   _("Enter Password"), NULL);
  adw_message_dialog_format_body (ADW_MESSAGE_DIALOG (dialog),
                                  _("The server did not accept the password for “%s”. "
                                    "Enter it again; it is kept in your keyring."),
                                  problem->name);
  /* A GtkEntry, not GtkPasswordEntry or AdwPasswordEntryRow: in GTK 4.8 and libadwaita
   * 1.2 those two touch their text widget after it is gone when the dialog closes, or
   * when a screen reader sets their text. */
  entry = gtk_entry_new ();
  gtk_entry_set_visibility (GTK_ENTRY (entry), FALSE);
  gtk_entry_set_input_purpose (GTK_ENTRY (entry), GTK_INPUT_PURPOSE_PASSWORD);
  gtk_entry_set_activates_default (GTK_ENTRY (entry), TRUE);
  gtk_entry_set_placeholder_text (GTK_ENTRY (entry), _("Password"));
  gtk_accessible_update_property (GTK_ACCESSIBLE (entry), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  _("Password"), -1);
  adw_message_dialog_set_extra_child (ADW_MESSAGE_DIALOG (dialog), entry);
  g_object_set_data (G_OBJECT (dialog), "letterbox-password-row", entry);
  adw_message_dialog_add_responses (ADW_MESSAGE_DIALOG (dialog),
                                    "cancel", _("_Cancel"),
                                    "save", _("_Save"),
                                    NULL);
  adw_message_dialog_set_response_appearance (ADW_MESSAGE_DIALOG (dialog), "save",
                                              ADW_RESPONSE_SUGGESTED);
  adw_message_dialog_set_default_response (ADW_MESSAGE_DIALOG (dialog), "save");
  adw_message_dialog_set_close_response (ADW_MESSAGE_DIALOG (dialog), "cancel");
  adw_message_dialog_set_response_enabled (ADW_MESSAGE_DIALOG (dialog), "save", FALSE);
  g_signal_connect (entry, "changed", G_CALLBACK (save_sensitive_cb), dialog);

  job = g_new0 (PasswordJob, 1);
  job->self = g_object_ref (self);
  job->account_id = g_strdup (problem->account_id);
  g_signal_connect (dialog, "response", G_CALLBACK (password_response_cb), job);
  gtk_window_present (GTK_WINDOW (dialog));
  gtk_widget_grab_focus (entry);
}

/* The account assistant may offer its certificate page as app.review-certificate (an
 * account id); without it, retrying is what is left. */
static gboolean
can_review_certificate (LetterboxStatusArea *self)
{
  GApplication *app = g_application_get_default ();

  return app != NULL && g_action_group_has_action (G_ACTION_GROUP (app), "review-certificate");
}

static void
fix_clicked_cb (GtkButton *button,
                Problem   *problem)
{
  LetterboxStatusArea *self = problem->self;

  if (g_strcmp0 (problem->kind, "auth") == 0)
    ask_password (self, problem);
  else if (g_strcmp0 (problem->kind, "certificate") == 0 && can_review_certificate (self))
    g_action_group_activate_action (G_ACTION_GROUP (g_application_get_default ()),
                                    "review-certificate",
                                    g_variant_new_string (problem->account_id));
  else
    {
      gtk_widget_set_sensitive (GTK_WIDGET (button), FALSE);
      sync_account (self, problem->account_id);
    }
}

/* ---- Accounts' states ---- */

static void
set_account_state (LetterboxStatusArea *self,
                   const char          *account_id,
                   GVariant            *state)
{
  const char *state_name = "", *error = "", *kind = "", *name = NULL;
  g_autofree char *text = NULL;
  const char *fix;
  Problem *problem;

  g_variant_lookup (state, "state", "&s", &state_name);
  g_variant_lookup (state, "error", "&s", &error);
  g_variant_lookup (state, "error-kind", "&s", &kind);
  g_variant_lookup (state, "display-name", "&s", &name);
  if (name == NULL || name[0] == '\0')
    name = account_id;

  /* "syncing" after an error keeps the line (a retry in progress); only success or no
   * network (the offline banner says so) clears it. */
  if (g_strcmp0 (state_name, "error") != 0)
    {
      if (g_strcmp0 (state_name, "syncing") != 0)
        g_hash_table_remove (self->problems, account_id);
      update_revealers (self);
      return;
    }

  problem = g_hash_table_lookup (self->problems, account_id);
  if (problem == NULL)
    {
      GtkWidget *icon;

      problem = g_new0 (Problem, 1);
      problem->self = self;
      problem->account_id = g_strdup (account_id);
      problem->row = gtk_box_new (GTK_ORIENTATION_HORIZONTAL, 12);
      gtk_widget_add_css_class (problem->row, "status-banner");
      gtk_widget_add_css_class (problem->row, "error");
      icon = g_object_new (GTK_TYPE_IMAGE,
                           "icon-name", "dialog-warning-symbolic",
                           "accessible-role", GTK_ACCESSIBLE_ROLE_PRESENTATION,
                           NULL);
      gtk_box_append (GTK_BOX (problem->row), icon);
      problem->label = GTK_LABEL (gtk_label_new (NULL));
      gtk_label_set_xalign (problem->label, 0);
      gtk_label_set_wrap (problem->label, TRUE);
      gtk_widget_set_hexpand (GTK_WIDGET (problem->label), TRUE);
      gtk_box_append (GTK_BOX (problem->row), GTK_WIDGET (problem->label));
      problem->button = GTK_BUTTON (gtk_button_new ());
      gtk_widget_set_valign (GTK_WIDGET (problem->button), GTK_ALIGN_CENTER);
      g_signal_connect (problem->button, "clicked", G_CALLBACK (fix_clicked_cb), problem);
      gtk_box_append (GTK_BOX (problem->row), GTK_WIDGET (problem->button));
      gtk_box_append (self->accounts_box, problem->row);
      g_hash_table_insert (self->problems, problem->account_id, problem);
    }

  g_free (problem->name);
  problem->name = g_strdup (name);
  g_free (problem->kind);
  problem->kind = g_strdup (kind);

  /* Translators: an account's name, then why its mail cannot be fetched */
  text = g_strdup_printf (_("%s: %s"), name,
                          error[0] != '\0' ? error : _("Mail cannot be fetched"));
  gtk_label_set_label (problem->label, text);
  gtk_accessible_update_property (GTK_ACCESSIBLE (problem->row), GTK_ACCESSIBLE_PROPERTY_LABEL,
                                  text, -1);
  if (g_strcmp0 (kind, "auth") == 0)
    fix = _("Enter Password");
  else if (g_strcmp0 (kind, "certificate") == 0 && can_review_certificate (self))
    fix = _("Review Certificate");
  else
    fix = _("Retry");
  gtk_button_set_label (problem->button, fix);
  gtk_widget_set_sensitive (GTK_WIDGET (problem->button), TRUE);
  update_revealers (self);
}

static void
account_changed_cb (LetterboxAccountStates *states,
                    const char             *account_id,
                    LetterboxStatusArea    *self)
{
  set_account_state (self, account_id, letterbox_account_states_get_state (states, account_id));
}

static void
reset_cb (LetterboxStatusArea *self)
{
  g_hash_table_remove_all (self->problems);
  update_revealers (self);
}

/* ---- Network ---- */

static void
network_changed_cb (LetterboxStatusArea *self)
{
  gtk_revealer_set_reveal_child (self->offline_revealer,
                                 !g_network_monitor_get_network_available (self->monitor));
}

/**
 * letterbox_status_area_set_network_monitor:
 *
 * The monitor that says whether the computer is online (default:
 * g_network_monitor_get_default()). Signals are handled in the main context.
 */
void
letterbox_status_area_set_network_monitor (LetterboxStatusArea *self,
                                           GNetworkMonitor     *monitor)
{
  g_return_if_fail (LETTERBOX_IS_STATUS_AREA (self));
  g_return_if_fail (G_IS_NETWORK_MONITOR (monitor));

  if (self->monitor != NULL)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_set_object (&self->monitor, monitor);
  g_signal_connect_swapped (monitor, "notify::network-available",
                            G_CALLBACK (network_changed_cb), self);
  network_changed_cb (self);
}

/**
 * letterbox_status_area_set_account_states:
 * @states: (nullable): the window's accounts' states
 *
 * Shows a line for each account of @states in error; the backend @states follows is
 * the one asked to sync again.
 */
void
letterbox_status_area_set_account_states (LetterboxStatusArea    *self,
                                          LetterboxAccountStates *states)
{
  g_return_if_fail (LETTERBOX_IS_STATUS_AREA (self));
  g_return_if_fail (states == NULL || LETTERBOX_IS_ACCOUNT_STATES (states));

  if (self->states == states)
    return;
  if (self->states != NULL)
    g_signal_handlers_disconnect_by_data (self->states, self);
  g_set_object (&self->states, states);
  reset_cb (self);
  if (states == NULL)
    return;
  g_signal_connect (states, "account-changed", G_CALLBACK (account_changed_cb), self);
  g_signal_connect_swapped (states, "reset", G_CALLBACK (reset_cb), self);
}

gboolean
letterbox_status_area_get_offline (LetterboxStatusArea *self)
{
  g_return_val_if_fail (LETTERBOX_IS_STATUS_AREA (self), FALSE);
  return gtk_revealer_get_reveal_child (self->offline_revealer);
}

guint
letterbox_status_area_get_n_problems (LetterboxStatusArea *self)
{
  g_return_val_if_fail (LETTERBOX_IS_STATUS_AREA (self), 0);
  return g_hash_table_size (self->problems);
}

static void
letterbox_status_area_dispose (GObject *object)
{
  LetterboxStatusArea *self = LETTERBOX_STATUS_AREA (object);

  g_cancellable_cancel (self->cancellable);
  if (self->states != NULL)
    g_signal_handlers_disconnect_by_data (self->states, self);
  if (self->monitor != NULL)
    g_signal_handlers_disconnect_by_data (self->monitor, self);
  g_clear_object (&self->states);
  g_clear_object (&self->monitor);
  g_clear_pointer (&self->problems, g_hash_table_unref);
  gtk_widget_dispose_template (GTK_WIDGET (self), LETTERBOX_TYPE_STATUS_AREA);
  g_clear_object (&self->cancellable);

  G_OBJECT_CLASS (letterbox_status_area_parent_class)->dispose (object);
}

static void
letterbox_status_area_class_init (LetterboxStatusAreaClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  GtkWidgetClass *widget_class = GTK_WIDGET_CLASS (klass);

  object_class->dispose = letterbox_status_area_dispose;

  gtk_widget_class_set_template_from_resource (widget_class,
                                               "/org/letterbox/Letterbox/letterbox-status-area.ui");
  gtk_widget_class_bind_template_child (widget_class, LetterboxStatusArea, box);
  gtk_widget_class_bind_template_child (widget_class, LetterboxStatusArea, offline_revealer);
  gtk_widget_class_bind_template_child (widget_class, LetterboxStatusArea, accounts_revealer);
  gtk_widget_class_bind_template_child (widget_class, LetterboxStatusArea, accounts_box);
  gtk_widget_class_set_layout_manager_type (widget_class, GTK_TYPE_BIN_LAYOUT);
  gtk_widget_class_set_css_name (widget_class, "statusarea");
}

static void
letterbox_status_area_init (LetterboxStatusArea *self)
{
  gtk_widget_init_template (GTK_WIDGET (self));
  self->cancellable = g_cancellable_new ();
  self->problems = g_hash_table_new_full (g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify) problem_free);
  letterbox_status_area_set_network_monitor (self, g_network_monitor_get_default ());
}

GtkWidget *
letterbox_status_area_new (void)
{
  return g_object_new (LETTERBOX_TYPE_STATUS_AREA, NULL);
}
