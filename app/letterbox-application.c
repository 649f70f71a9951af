/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "letterbox"

#include "config.h"

#include <glib/gi18n.h>

#include "lb-bus-backend1.h"
#include "letterbox-application.h"
#include "letterbox-window.h"

/* The single-instance GtkApplication: a second `letterbox` asks the first to present
 * its window and exits. */
struct _LetterboxApplication
{
  AdwApplication parent_instance;

  LbBusBackend1 *backend;
};

G_DEFINE_FINAL_TYPE (LetterboxApplication, letterbox_application, ADW_TYPE_APPLICATION)

static void
letterbox_application_activate (GApplication *app)
{
  GtkWindow *window = gtk_application_get_active_window (GTK_APPLICATION (app));

  if (window == NULL)
    window = GTK_WINDOW (letterbox_window_new (LETTERBOX_APPLICATION (app)));

  gtk_window_present (window);
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
  g_application_quit (G_APPLICATION (user_data));
}

static const GActionEntry app_actions[] = {
  { "about", about_action },
  { "quit", quit_action },
};

static void
letterbox_application_startup (GApplication *app)
{
  static const char *quit_accels[] = { "<Control>q", NULL };
  static const char *close_accels[] = { "<Control>w", NULL };

  G_APPLICATION_CLASS (letterbox_application_parent_class)->startup (app);

  g_action_map_add_action_entries (G_ACTION_MAP (app), app_actions, G_N_ELEMENTS (app_actions),
                                   app);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "app.quit", quit_accels);
  gtk_application_set_accels_for_action (GTK_APPLICATION (app), "window.close", close_accels);
}

static void
letterbox_application_shutdown (GApplication *app)
{
  LetterboxApplication *self = LETTERBOX_APPLICATION (app);

  g_clear_object (&self->backend);

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
 * directly. Created on first use; calls to it D-Bus-activate letterbox-backend.
 *
 * Returns: (transfer none) (nullable): the proxy, or %NULL without a session bus
 */
LbBusBackend1 *
letterbox_application_get_backend (LetterboxApplication *self)
{
  g_autoptr(GError) error = NULL;

  g_return_val_if_fail (LETTERBOX_IS_APPLICATION (self), NULL);

  if (self->backend != NULL)
    return self->backend;

  self->backend = lb_bus_backend1_proxy_new_for_bus_sync (G_BUS_TYPE_SESSION,
                                                          G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                                          LB_BACKEND_BUS_NAME,
                                                          LB_BACKEND_OBJECT_PATH,
                                                          NULL, &error);
  if (self->backend == NULL)
    g_warning ("Cannot reach the Letterbox background service: %s", error->message);

  return self->backend;
}
