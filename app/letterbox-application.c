/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

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
quit_action (GSimpleAction *action,
             GVariant      *parameter,
             gpointer       user_data)
{
  GList *windows = g_list_copy_deep (gtk_application_get_windows (GTK_APPLICATION (user_data)),
                                     (GCopyFunc) g_object_ref, NULL);

  /* Closed as the user would close them, so that each keeps its state (the main window
   * its size, panes and folder); then whatever is left (a dialog that refused) goes. */
  for (GList *l = windows; l != NULL; l = l->next)
    if (gtk_window_get_application (l->data) != NULL)
      gtk_window_close (l->data);
  g_list_free_full (windows, g_object_unref);
  g_application_quit (G_APPLICATION (user_data));
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
  static const char *quit_accels[] = { "<Control>q", NULL };
  static const char *close_accels[] = { "<Control>w", NULL };

  G_APPLICATION_CLASS (letterbox_application_parent_class)->startup (app);
  letterbox_bench_mark ("gtk-ready");

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
