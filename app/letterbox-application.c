/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>
#include <glib-unix.h>

#include "lb-bus-backend1.h"
#include "letterbox-account-assistant.h"
#include "letterbox-application.h"
#include "letterbox-bench.h"
#include "letterbox-engine-host.h"
#include "letterbox-preferences.h"
#include "letterbox-window.h"

/* The single-instance GtkApplication: a second `letterbox` asks the first to present
 * its window and exits. */
struct _LetterboxApplication
{
  AdwApplication parent_instance;

  LbBusBackend1 *backend;
  LetterboxEngineHost *engine_host;   /* NULL without a session bus */

  /* The store the windows read, opened once in a worker as the app starts
   * (letterbox_application_open_store_async). */
  LbStore *store;
  gboolean store_opening;
  GQueue store_waiters;               /* GTask */

  guint sigterm_id;
  guint sigint_id;
  guint sighup_id;
};

G_DEFINE_FINAL_TYPE (LetterboxApplication, letterbox_application, ADW_TYPE_APPLICATION)

static void
letterbox_application_activate (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (window != NULL)
    {
      gtk_window_present (window);
      return;
    }
  window = GTK_WINDOW (letterbox_window_new (LETTERBOX_APPLICATION (app)));
  letterbox_bench_mark ("window-built");
  /* A quarter of a second at most: the store opens and reads the first rows in a worker
   * while the window is built, and a slow disk must not hide the window for long. */
  letterbox_window_present_when_ready (LETTERBOX_WINDOW (window), 250);
}

static void
about_action (GSimpleAction *action,
              GVariant      *parameter,
              gpointer       user_data)
{
  GtkApplication *app = user_data;
  const char *developers[] = { _("The Letterbox developers"), NULL };

  adw_show_about_window (gtk_application_get_active_window (app),
                         "application-name", _("Letterbox"),
                         "application-icon", APP_ID,
                         "developer-name", _("The Letterbox developers"),
                         "version", PACKAGE_VERSION,
                         "developers", developers,
                         "license-type", GTK_LICENSE_GPL_3_0,
                         "comments", _("Read, write and organise your e-mail"),
                         "translator-credits", _("translator-credits"),
                         NULL);
}

static void
quit (GtkApplication *app)
{
  GList *windows = g_list_copy_deep (gtk_application_get_windows (app),
                                     (GCopyFunc) g_object_ref, NULL);

  /* Closed as the user would close them, so that each keeps its state (the main window
   * its size, panes and folder); then whatever is left (a dialog that refused) goes. */
  for (GList *l = windows; l != NULL; l = l->next)
    if (gtk_window_get_application (l->data) != NULL)
      gtk_window_close (l->data);
  g_list_free_full (windows, g_object_unref);
  g_application_quit (G_APPLICATION (app));
}

static void
quit_action (GSimpleAction *action,
             GVariant      *parameter,
             gpointer       user_data)
{
  quit (user_data);
}

static void
remove_signal_sources (LetterboxApplication *self)
{
  g_clear_handle_id (&self->sigterm_id, g_source_remove);
  g_clear_handle_id (&self->sigint_id, g_source_remove);
  g_clear_handle_id (&self->sighup_id, g_source_remove);
}

/* Once: the signals' default actions come back, so that a second one ends the process
 * at once should the clean quit hang. */
static gboolean
quit_on_signal_cb (gpointer user_data)
{
  remove_signal_sources (user_data);
  quit (user_data);
  return G_SOURCE_REMOVE;
}

/* An open window of @type, so that a second activation raises it instead of opening
 * another. */
static GtkWindow *
find_window (GtkApplication *app,
             GType           type)
{
  for (GList *l = gtk_application_get_windows (app); l != NULL; l = l->next)
    if (G_TYPE_CHECK_INSTANCE_TYPE (l->data, type))
      return l->data;
  return NULL;
}

/* The main window, for dialogs to belong to. */
static GtkWindow *
main_window (GtkApplication *app)
{
  return find_window (app, LETTERBOX_TYPE_WINDOW);
}

static void
add_account_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  GtkApplication *app = user_data;
  GtkWindow *window = find_window (app, LETTERBOX_TYPE_ACCOUNT_ASSISTANT);

  if (window == NULL || letterbox_account_assistant_get_account_id (
                          LETTERBOX_ACCOUNT_ASSISTANT (window)) != NULL)
    window = GTK_WINDOW (letterbox_account_assistant_new (main_window (app)));
  gtk_window_set_application (window, app);
  gtk_window_present (window);
}

static void
preferences_action (GSimpleAction *action,
                    GVariant      *parameter,
                    gpointer       user_data)
{
  GtkApplication *app = user_data;
  GtkWindow *window = find_window (app, LETTERBOX_TYPE_PREFERENCES);

  if (window == NULL)
    window = GTK_WINDOW (letterbox_preferences_new (main_window (app)));
  gtk_window_set_application (window, app);
  gtk_window_present (window);
}

/* The window's "Review Certificate" for an account whose server's certificate is not
 * trusted: the account's server settings, where Next signs in again and, for a
 * certificate that cannot be verified, shows it (subject, issuer, validity, SHA-256
 * fingerprint) to be accepted for this account. */
static void
review_certificate_action (GSimpleAction *action,
                           GVariant      *parameter,
                           gpointer       user_data)
{
  GtkApplication *app = user_data;
  const char *account_id = g_variant_get_string (parameter, NULL);
  g_autoptr(GError) error = NULL;
  GtkWindow *window;

  window = GTK_WINDOW (letterbox_account_assistant_new_for_account (main_window (app), account_id,
                                                                    &error));
  if (window == NULL)
    {
      GtkWidget *dialog = adw_message_dialog_new (main_window (app),
                                                  _("Cannot Open the Account"),
                                                  error->message);

      adw_message_dialog_add_response (ADW_MESSAGE_DIALOG (dialog), "close", _("_Close"));
      gtk_window_present (GTK_WINDOW (dialog));
      return;
    }
  gtk_window_set_application (window, app);
  gtk_window_present (window);
  /* Straight to the sign-in: the certificate to review is the page that shows. */
  letterbox_account_assistant_check_now (LETTERBOX_ACCOUNT_ASSISTANT (window));
}

static const GActionEntry account_actions[] = {
  { "add-account", add_account_action },
  { "preferences", preferences_action },
  { "review-certificate", review_certificate_action, "s" },
};

static const GActionEntry app_actions[] = {
  { "about", about_action },
  { "quit", quit_action },
};

static void
store_opened_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  g_autoptr(LetterboxApplication) self = user_data;
  g_autoptr(GError) error = NULL;
  GQueue waiters = self->store_waiters;
  GTask *task;

  self->store_opening = FALSE;
  self->store = lb_store_open_finish (result, &error);
  /* An error goes to the windows waiting now; the next window tries again. */
  g_queue_init (&self->store_waiters);
  while ((task = g_queue_pop_head (&waiters)) != NULL)
    {
      if (g_task_return_error_if_cancelled (task))
        ;
      else if (self->store != NULL)
        g_task_return_pointer (task, g_object_ref (self->store), g_object_unref);
      else
        g_task_return_error (task, g_error_copy (error));
      g_object_unref (task);
    }
}

static void
start_store_open (LetterboxApplication *self)
{
  g_autofree char *data_dir = NULL;

  if (self->store != NULL || self->store_opening)
    return;
  self->store_opening = TRUE;
  data_dir = lb_store_default_data_dir ();
  lb_store_open_async (data_dir, NULL, store_opened_cb, g_object_ref (self));
}

/**
 * letterbox_application_open_store_async:
 *
 * The store the windows read: the app's one #LbStore, opened in a worker from the app's
 * start (before GTK's, so that its disk reads overlap GTK's set-up). A failed open is
 * tried again by the next call.
 */
void
letterbox_application_open_store_async (LetterboxApplication *self,
                                        GCancellable         *cancellable,
                                        GAsyncReadyCallback   callback,
                                        gpointer              user_data)
{
  g_autoptr(GTask) task = NULL;

  g_return_if_fail (LETTERBOX_IS_APPLICATION (self));

  task = g_task_new (self, cancellable, callback, user_data);
  g_task_set_source_tag (task, letterbox_application_open_store_async);
  if (self->store != NULL)
    {
      g_task_return_pointer (task, g_object_ref (self->store), g_object_unref);
      return;
    }
  g_queue_push_tail (&self->store_waiters, g_steal_pointer (&task));
  start_store_open (self);
}

LbStore *
letterbox_application_open_store_finish (LetterboxApplication  *self,
                                         GAsyncResult          *result,
                                         GError               **error)
{
  g_return_val_if_fail (g_task_is_valid (result, self), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) ==
                        letterbox_application_open_store_async, NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* Who writes the store: letterbox-backend, or this app when the background service is off
 * or not installed (DESIGN.md). Decided before anything calls the backend. */
static void
start_engine_host (LetterboxApplication *self)
{
  GDBusConnection *connection = g_application_get_dbus_connection (G_APPLICATION (self));
  g_autoptr(GSettings) settings = NULL;

  if (connection == NULL)
    return;
  settings = g_settings_new (APP_ID);
  self->engine_host = letterbox_engine_host_new (connection, settings);
  letterbox_engine_host_start (self->engine_host);
}

static void
engine_host_stopped_cb (GObject      *source,
                        GAsyncResult *result,
                        gpointer      user_data)
{
  gboolean *done = user_data;

  letterbox_engine_host_stop_finish (LETTERBOX_ENGINE_HOST (source), result, NULL);
  *done = TRUE;
}

static void
letterbox_application_startup (GApplication *app)
{
  LetterboxApplication *self = LETTERBOX_APPLICATION (app);
  static const char *quit_accels[] = { "<Control>q", NULL };
  static const char *close_accels[] = { "<Control>w", NULL };

  /* The store's first disk reads (cold, tens of milliseconds) go on in a worker while
   * GTK starts, which is the longer of the two. */
  start_store_open (self);

  G_APPLICATION_CLASS (letterbox_application_parent_class)->startup (app);
  letterbox_bench_mark ("gtk-ready");

  /* The session's end (or a kill) quits as Quit does: the windows keep their state and
   * the in-app engine commits what is queued before the store closes. */
  self->sigterm_id = g_unix_signal_add (SIGTERM, quit_on_signal_cb, app);
  self->sigint_id = g_unix_signal_add (SIGINT, quit_on_signal_cb, app);
  self->sighup_id = g_unix_signal_add (SIGHUP, quit_on_signal_cb, app);

  g_action_map_add_action_entries (G_ACTION_MAP (app), app_actions, G_N_ELEMENTS (app_actions),
                                   app);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "window.close", close_accels);
  {
    static const char *preferences_accels[] = { "<Control>comma", NULL };

    g_action_map_add_action_entries (G_ACTION_MAP (app), account_actions,
                                     G_N_ELEMENTS (account_actions), app);
    gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.preferences",
                                           preferences_accels);
  }

  start_engine_host (LETTERBOX_APPLICATION (app));
}

static void
letterbox_application_shutdown (GApplication *app)
{
  LetterboxApplication *self = LETTERBOX_APPLICATION (app);

  /* The main loop has ended: while the writer finishes what is queued, only the engine's
   * own sources run; the bus name goes back when every write is committed. */
  if (self->engine_host != NULL)
    {
      gboolean done = FALSE;

      letterbox_engine_host_stop_async (self->engine_host, engine_host_stopped_cb, &done);
      while (!done)
        g_main_context_iteration (NULL, TRUE);
    }
  g_clear_object (&self->backend);
  g_clear_object (&self->engine_host);
  /* An open still under way (a quit right at the start) finishes, so that the store is
   * closed cleanly too. */
  while (self->store_opening)
    g_main_context_iteration (NULL, TRUE);
  g_clear_object (&self->store);
  remove_signal_sources (self);

  G_APPLICATION_CLASS (letterbox_application_parent_class)->shutdown (app);
}

static void
letterbox_application_class_init (LetterboxApplicationClass *klass)
{
  GApplicationClass *app_class = G_APPLICATION_CLASS (klass);

  app_class->activate = letterbox_application_activate;
  app_class->startup = letterbox_application_startup;
  app_class->shutdown = letterbox_application_shutdown;
}

static void
letterbox_application_init (LetterboxApplication *self)
{
}

LetterboxApplication *
letterbox_application_new (void)
{
  return g_object_new (LETTERBOX_TYPE_APPLICATION,
                       "application-id", APP_ID,
                       "flags", G_APPLICATION_DEFAULT_FLAGS,
                       "resource-base-path", "/org/letterbox/Letterbox",
                       NULL);
}

/**
 * letterbox_application_get_backend:
 *
 * The proxy for `org.letterbox.Backend1` at whoever owns `org.letterbox.Backend`: the
 * single writer of the store (DESIGN.md). Every change the window makes (flags, moves,
 * deletes, sync requests, bodies on demand) goes through it; the store is only read
 * directly. Created on first use; calls to it D-Bus-activate letterbox-backend, unless the
 * app hosts the engine itself (letterbox-engine-host.c): then the name is the app's own
 * and the calls come back to it over the bus.
 *
 * Returns: (transfer none) (nullable): the proxy, or %NULL without a session bus
 */
LbBusBackend1 *
letterbox_application_get_backend (LetterboxApplication *self)
{
  g_autoptr(GError) error = NULL;
  GDBusProxyFlags flags;

  g_return_val_if_fail (LETTERBOX_IS_APPLICATION (self), NULL);

  if (self->backend != NULL)
    return self->backend;

  /* Never activate the service while the app is about to own the name itself. */
  flags = G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
          G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START_AT_CONSTRUCTION;
  if (self->engine_host != NULL && letterbox_engine_host_get_hosting (self->engine_host))
    flags |= G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START;
  self->backend = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION, flags,
                                                          LB_BACKEND_BUS_NAME,
                                                          LB_BACKEND_OBJECT_PATH,
                                                          NULL, &error);
  if (self->backend == NULL)
    g_warning ("Cannot reach the Letterbox background service: %s", error->message);

  return self->backend;
}
