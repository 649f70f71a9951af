/* SPDX-License-Identifier: GPL-3.0-or-later */
#include "config.h"

#include <adwaita.h>

#include "lb-bus-backend1.h"
#include "lb-test-backend.h"
#include "lb-test-network.h"
#include "letterbox-account-states.h"
#include "letterbox-status-area.h"
#include "letterbox-status-spinner.h"
#include "letterbox-toaster.h"

/*
 * The window's live-state widgets in-process (under Xvfb): the offline banner follows a
 * GNetworkMonitor the test switches; an account's error shows with the action that fixes
 * it (Enter Password for a refused password, Retry for the network or the server) and goes
 * when the account syncs again; the header bar's spinner turns while an account syncs and
 * names it. The states come as AccountChanged and SyncProgress, emitted here on a
 * org.letterbox.Backend1 skeleton the widgets' LetterboxAccountStates is given instead of
 * the proxy; and through a real proxy on the test's bus, both widgets learn from one
 * ListAccounts call each time the name gets an owner. And the window's toasts: a new one
 * replaces the one shown, but only once that one has settled and hidden, and the toaster
 * keeps the timeouts (libadwaita 1.2 crashes on a toast dismissed too young).
 */

/* ---- Looking into the widgets ---- */

static GtkWidget *
find_widget (GtkWidget *root,
             GType      type,
             const char *label)
{
  for (GtkWidget *child = gtk_widget_get_first_child (root);
       child != NULL;
       child = gtk_widget_get_next_sibling (child))
    {
      GtkWidget *found;

      if (G_TYPE_CHECK_INSTANCE_TYPE (child, type) &&
          (label == NULL ||
           (GTK_IS_BUTTON (child) &&
            g_strcmp0 (gtk_button_get_label (GTK_BUTTON (child)), label) == 0) ||
           (GTK_IS_LABEL (child) &&
            g_str_has_prefix (gtk_label_get_label (GTK_LABEL (child)), label))))
        return child;
      found = find_widget (child, type, label);
      if (found != NULL)
        return found;
    }
  return NULL;
}

static GVariant *
state (const char *name,
       const char *state_name,
       const char *error,
       const char *kind)
{
  GVariantDict dict;

  g_variant_dict_init (&dict, NULL);
  g_variant_dict_insert (&dict, "display-name", "s", name);
  g_variant_dict_insert (&dict, "state", "s", state_name);
  g_variant_dict_insert (&dict, "error", "s", error);
  g_variant_dict_insert (&dict, "error-kind", "s", kind);
  g_variant_dict_insert (&dict, "needs-user-action", "b", g_strcmp0 (kind, "auth") == 0);
  return g_variant_dict_end (&dict);
}

static void
spin (void)
{
  while (g_main_context_iteration (NULL, FALSE))
    ;
}

static void
test_offline_banner (void)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *area = letterbox_status_area_new ();
  g_autoptr(LbTestNetworkMonitor) monitor = lb_test_network_monitor_new ();
  GtkWidget *label;

  gtk_window_set_child (GTK_WINDOW (window), area);
  letterbox_status_area_set_network_monitor (LETTERBOX_STATUS_AREA (area),
                                             G_NETWORK_MONITOR (monitor));
  gtk_window_present (GTK_WINDOW (window));
  spin ();

  g_assert_false (letterbox_status_area_get_offline (LETTERBOX_STATUS_AREA (area)));
  lb_test_network_monitor_set_available (monitor, FALSE);
  g_assert_true (letterbox_status_area_get_offline (LETTERBOX_STATUS_AREA (area)));
  label = find_widget (area, GTK_TYPE_LABEL, "You are offline");
  g_assert_nonnull (label);
  g_assert_cmpstr (gtk_label_get_label (GTK_LABEL (label)), ==,
                   "You are offline; showing mail stored on this computer");
  g_assert_true (gtk_revealer_get_reveal_child (
    GTK_REVEALER (gtk_widget_get_ancestor (label, GTK_TYPE_REVEALER))));
  lb_test_network_monitor_set_available (monitor, TRUE);
  g_assert_false (letterbox_status_area_get_offline (LETTERBOX_STATUS_AREA (area)));
  /* Set while offline: the banner shows at once. */
  lb_test_network_monitor_set_available (monitor, FALSE);
  g_assert_true (letterbox_status_area_get_offline (LETTERBOX_STATUS_AREA (area)));

  gtk_window_destroy (GTK_WINDOW (window));
  spin ();
}

static void
test_account_problems (void)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *area = letterbox_status_area_new ();
  g_autoptr(LbBusBackend1) backend = lb_bus_backend1_skeleton_new ();
  g_autoptr(LetterboxAccountStates) states = letterbox_account_states_new ();
  LetterboxStatusArea *self = LETTERBOX_STATUS_AREA (area);
  GtkWidget *button, *label;

  gtk_window_set_child (GTK_WINDOW (window), area);
  letterbox_account_states_set_backend (states, backend);
  letterbox_status_area_set_account_states (self, states);
  gtk_window_present (GTK_WINDOW (window));
  spin ();
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 0);

  /* A refused password: its line, and Enter Password. */
  lb_bus_backend1_emit_account_changed (backend, "work",
                                        state ("Work", "error", "The password was refused",
                                               "auth"));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 1);
  label = find_widget (area, GTK_TYPE_LABEL, "Work: ");
  g_assert_nonnull (label);
  g_assert_cmpstr (gtk_label_get_label (GTK_LABEL (label)), ==, "Work: The password was refused");
  button = find_widget (area, GTK_TYPE_BUTTON, "Enter Password");
  g_assert_nonnull (button);
  g_assert_true (gtk_widget_get_sensitive (button));

  /* A second account, unreachable: Retry. */
  lb_bus_backend1_emit_account_changed (backend, "home",
                                        state ("Home", "error", "The server cannot be reached",
                                               "network"));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 2);
  g_assert_nonnull (find_widget (area, GTK_TYPE_BUTTON, "Retry"));

  /* A certificate problem without the assistant's page: Retry as well. */
  lb_bus_backend1_emit_account_changed (backend, "home",
                                        state ("Home", "error", "The certificate is not trusted",
                                               "certificate"));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 2);
  g_assert_nonnull (find_widget (area, GTK_TYPE_LABEL, "Home: The certificate is not trusted"));

  /* A retry in progress keeps the line; success clears it. */
  lb_bus_backend1_emit_account_changed (backend, "work", state ("Work", "syncing", "", ""));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 2);
  lb_bus_backend1_emit_account_changed (backend, "work", state ("Work", "online", "", ""));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 1);
  g_assert_null (find_widget (area, GTK_TYPE_BUTTON, "Enter Password"));
  lb_bus_backend1_emit_account_changed (backend, "home", state ("Home", "offline", "", ""));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 0);

  /* Another backend: what the last one said goes. */
  lb_bus_backend1_emit_account_changed (backend, "work",
                                        state ("Work", "error", "The password was refused",
                                               "auth"));
  letterbox_account_states_set_backend (states, NULL);
  g_assert_cmpuint (letterbox_status_area_get_n_problems (self), ==, 0);
  /* Skeletons take no calls. */
  g_assert_cmpuint (letterbox_account_states_get_n_list_calls (states), ==, 0);

  gtk_window_destroy (GTK_WINDOW (window));
  spin ();
}

static void
test_spinner (void)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *spinner = letterbox_status_spinner_new ();
  g_autoptr(LbBusBackend1) backend = lb_bus_backend1_skeleton_new ();
  g_autoptr(LetterboxAccountStates) states = letterbox_account_states_new ();

  gtk_window_set_child (GTK_WINDOW (window), spinner);
  letterbox_account_states_set_backend (states, backend);
  letterbox_status_spinner_set_account_states (LETTERBOX_STATUS_SPINNER (spinner), states);
  gtk_window_present (GTK_WINDOW (window));
  spin ();
  g_assert_false (gtk_widget_get_visible (spinner));

  lb_bus_backend1_emit_account_changed (backend, "work", state ("Work", "syncing", "", ""));
  g_assert_true (gtk_widget_get_visible (spinner));
  g_assert_cmpstr (gtk_widget_get_tooltip_text (spinner), ==, "Syncing Work…");

  /* Progress of an account not seen syncing yet also counts. */
  lb_bus_backend1_emit_sync_progress (backend, "home", "INBOX", 1, 10);
  g_assert_cmpstr (gtk_widget_get_tooltip_text (spinner), ==, "Syncing 2 accounts…");

  lb_bus_backend1_emit_account_changed (backend, "work", state ("Work", "online", "", ""));
  lb_bus_backend1_emit_account_changed (backend, "home", state ("Home", "syncing", "", ""));
  g_assert_cmpstr (gtk_widget_get_tooltip_text (spinner), ==, "Syncing Home…");
  lb_bus_backend1_emit_account_changed (backend, "home",
                                        state ("Home", "error", "Refused", "auth"));
  g_assert_false (gtk_widget_get_visible (spinner));

  gtk_window_destroy (GTK_WINDOW (window));
  spin ();
}

/* ---- One owner, one ListAccounts ---- */

typedef struct
{
  GDBusConnection *service;      /* the "backend": its own connection to the bus */
  guint list_calls;              /* ListAccounts calls it answered */
  GtkWidget *area;
  GtkWidget *spinner;
} Owner;

static gboolean
handle_list_accounts_cb (LbBusBackend1         *skeleton,
                         GDBusMethodInvocation *invocation,
                         Owner                 *o)
{
  GVariantBuilder builder;

  o->list_calls++;
  g_variant_builder_init (&builder, G_VARIANT_TYPE ("a(sa{sv})"));
  g_variant_builder_add (&builder, "(s@a{sv})", "work",
                         state ("Work", "error", "The password was refused", "auth"));
  g_variant_builder_add (&builder, "(s@a{sv})", "home", state ("Home", "syncing", "", ""));
  lb_bus_backend1_complete_list_accounts (skeleton, invocation, g_variant_builder_end (&builder));
  return TRUE;
}

static void
bus_name (Owner      *o,
          const char *method)
{
  g_autoptr(GVariant) reply = NULL;
  g_autoptr(GError) error = NULL;
  guint32 result;

  reply = g_dbus_connection_call_sync (o->service, "org.freedesktop.DBus",
                                       "/org/freedesktop/DBus", "org.freedesktop.DBus", method,
                                       g_str_equal (method, "RequestName")
                                         ? g_variant_new ("(su)", "org.letterbox.Backend", 4)
                                         : g_variant_new ("(s)", "org.letterbox.Backend"),
                                       NULL, G_DBUS_CALL_FLAGS_NONE, 5000, NULL, &error);
  g_assert_no_error (error);
  g_variant_get (reply, "(u)", &result);
  /* RequestName: 1, the primary owner; ReleaseName: 1, released. */
  g_assert_cmpuint (result, ==, 1);
}

static gboolean
both_told (gpointer user_data)
{
  Owner *o = user_data;

  return letterbox_status_area_get_n_problems (LETTERBOX_STATUS_AREA (o->area)) == 1 &&
         gtk_widget_get_visible (o->spinner);
}

static gboolean
spinner_hidden (gpointer user_data)
{
  Owner *o = user_data;

  return !gtk_widget_get_visible (o->spinner);
}

static void
test_one_list_per_owner (void)
{
  GtkWidget *window = gtk_window_new ();
  GtkWidget *box = gtk_box_new (GTK_ORIENTATION_VERTICAL, 0);
  g_autoptr(LbBusBackend1) skeleton = lb_bus_backend1_skeleton_new ();
  g_autoptr(LetterboxAccountStates) states = letterbox_account_states_new ();
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *address = NULL;
  Owner o = { 0 };

  address = g_dbus_address_get_for_bus_sync (G_BUS_TYPE_SESSION, NULL, &error);
  g_assert_no_error (error);
  o.service = g_dbus_connection_new_for_address_sync (
    address,
    G_DBUS_CONNECTION_FLAGS_AUTHENTICATION_CLIENT |
    G_DBUS_CONNECTION_FLAGS_MESSAGE_BUS_CONNECTION,
    NULL, NULL, &error);
  g_assert_no_error (error);
  g_signal_connect (skeleton, "handle-list-accounts", G_CALLBACK (handle_list_accounts_cb), &o);
  g_dbus_interface_skeleton_export (G_DBUS_INTERFACE_SKELETON (skeleton), o.service,
                                    "/org/letterbox/Backend", &error);
  g_assert_no_error (error);
  bus_name (&o, "RequestName");

  o.area = letterbox_status_area_new ();
  o.spinner = letterbox_status_spinner_new ();
  gtk_box_append (GTK_BOX (box), o.spinner);
  gtk_box_append (GTK_BOX (box), o.area);
  gtk_window_set_child (GTK_WINDOW (window), box);
  proxy = lb_test_backend_proxy_new ();
  letterbox_account_states_set_backend (states, proxy);
  letterbox_status_area_set_account_states (LETTERBOX_STATUS_AREA (o.area), states);
  letterbox_status_spinner_set_account_states (LETTERBOX_STATUS_SPINNER (o.spinner), states);
  gtk_window_present (GTK_WINDOW (window));

  /* Both widgets show what one answer said: work's error, home syncing. */
  g_assert_true (lb_test_wait_until (both_told, &o, 10000));
  g_assert_cmpuint (o.list_calls, ==, 1);
  g_assert_cmpuint (letterbox_account_states_get_n_list_calls (states), ==, 1);
  g_assert_cmpstr (gtk_widget_get_tooltip_text (o.spinner), ==, "Syncing Home…");

  /* The service goes: nothing syncs any more, the error stays, nobody is asked. */
  bus_name (&o, "ReleaseName");
  g_assert_true (lb_test_wait_until (spinner_hidden, &o, 10000));
  g_assert_cmpuint (letterbox_status_area_get_n_problems (LETTERBOX_STATUS_AREA (o.area)), ==, 1);
  g_assert_cmpuint (letterbox_account_states_get_n_list_calls (states), ==, 1);

  /* It comes back: one more call, and both widgets are told again. */
  bus_name (&o, "RequestName");
  g_assert_true (lb_test_wait_until (both_told, &o, 10000));
  g_assert_cmpuint (o.list_calls, ==, 2);
  g_assert_cmpuint (letterbox_account_states_get_n_list_calls (states), ==, 2);

  letterbox_account_states_set_backend (states, NULL);
  g_dbus_interface_skeleton_unexport (G_DBUS_INTERFACE_SKELETON (skeleton));
  g_clear_object (&o.service);
  gtk_window_destroy (GTK_WINDOW (window));
  spin ();
}

/* ---- Toasts ---- */

typedef struct
{
  AdwToastOverlay *overlay;
  LetterboxToaster *toaster;
  AdwToast *wanted;
} Toasts;

static guint
n_toast_widgets (AdwToastOverlay *overlay)
{
  guint n = 0;

  for (GtkWidget *child = gtk_widget_get_first_child (GTK_WIDGET (overlay)); child != NULL;
       child = gtk_widget_get_next_sibling (child))
    n += g_str_equal (G_OBJECT_TYPE_NAME (child), "AdwToastWidget");
  return n;
}

static gboolean
toast_shown (gpointer user_data)
{
  Toasts *t = user_data;

  return letterbox_toaster_get_shown (t->toaster) == t->wanted;
}

static gboolean
overlay_empty (gpointer user_data)
{
  Toasts *t = user_data;

  return n_toast_widgets (t->overlay) == 0;
}

static gboolean
one_toast_widget (gpointer user_data)
{
  Toasts *t = user_data;

  return n_toast_widgets (t->overlay) == 1;
}

static gboolean
overlay_mapped (gpointer user_data)
{
  Toasts *t = user_data;

  return gtk_widget_get_mapped (GTK_WIDGET (t->overlay));
}

typedef struct
{
  GdkFrameClock *clock;
  gint64 time;
} FrameTime;

static gboolean
frame_time_reached (gpointer user_data)
{
  FrameTime *f = user_data;

  return gdk_frame_clock_get_frame_time (f->clock) >= f->time;
}

/* Waits until the overlay's frame clock has drawn a frame at @time or later. */
static void
frame_time_after (Toasts *t,
                  gint64  time)
{
  FrameTime f = { gtk_widget_get_frame_clock (GTK_WIDGET (t->overlay)), time };

  /* Frames keep coming while the toast's animation runs, and a draw asks for one more. */
  gtk_widget_queue_draw (GTK_WIDGET (t->overlay));
  g_assert_true (lb_test_wait_until (frame_time_reached, &f, 10000));
}

static void
test_toasts (void)
{
  GtkWidget *window = gtk_window_new ();
  Toasts t = { ADW_TOAST_OVERLAY (adw_toast_overlay_new ()), NULL, NULL };
  AdwToast *one = adw_toast_new ("One");
  AdwToast *two = adw_toast_new ("Two");
  AdwToast *three = adw_toast_new ("Three");
  AdwToast *four = adw_toast_new ("Four");
  AdwToast *five = adw_toast_new ("Five");
  AdwToast *six = adw_toast_new ("Six");
  AdwToast *seven = adw_toast_new ("Seven");
  gint64 start, three_added;

  g_object_add_weak_pointer (G_OBJECT (one), (gpointer *) &one);
  g_object_add_weak_pointer (G_OBJECT (two), (gpointer *) &two);
  g_object_add_weak_pointer (G_OBJECT (three), (gpointer *) &three);
  g_object_add_weak_pointer (G_OBJECT (four), (gpointer *) &four);
  g_object_add_weak_pointer (G_OBJECT (five), (gpointer *) &five);
  g_object_add_weak_pointer (G_OBJECT (six), (gpointer *) &six);
  g_object_add_weak_pointer (G_OBJECT (seven), (gpointer *) &seven);
  adw_toast_overlay_set_child (t.overlay, gtk_label_new ("Content"));
  gtk_window_set_child (GTK_WINDOW (window), GTK_WIDGET (t.overlay));
  gtk_window_set_default_size (GTK_WINDOW (window), 600, 400);
  gtk_window_present (GTK_WINDOW (window));
  g_assert_true (lb_test_wait_until (overlay_mapped, &t, 10000));
  t.toaster = letterbox_toaster_new (t.overlay);

  /* Three changes in a row, as fast as a person pressing keys: the first toast shows;
   * the second waits and is dropped unseen for the third. */
  start = g_get_monotonic_time ();
  letterbox_toaster_show (t.toaster, one);
  letterbox_toaster_show (t.toaster, two);
  g_assert_true (letterbox_toaster_get_shown (t.toaster) == one);
  g_assert_true (letterbox_toaster_get_latest (t.toaster) == two);
  letterbox_toaster_show (t.toaster, three);
  g_assert_null (two);
  g_assert_true (letterbox_toaster_get_latest (t.toaster) == three);
  g_assert_cmpuint (n_toast_widgets (t.overlay), ==, 1);

  /* The third shows once the first has settled (its show animation over, 300 ms) and
   * has hidden (300 ms more): the overlay has let it go, and shows the third alone. */
  t.wanted = three;
  g_assert_true (lb_test_wait_until (toast_shown, &t, 10000));
  three_added = gdk_frame_clock_get_frame_time (gtk_widget_get_frame_clock (GTK_WIDGET (t.overlay)));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, 600 * G_TIME_SPAN_MILLISECOND);
  g_assert_null (one);
  g_assert_cmpuint (n_toast_widgets (t.overlay), ==, 1);

  /* A toast waiting can be dismissed: it never shows. */
  letterbox_toaster_show (t.toaster, four);
  g_assert_true (letterbox_toaster_get_latest (t.toaster) == four);
  letterbox_toaster_dismiss (t.toaster, four);
  g_assert_null (four);
  g_assert_true (letterbox_toaster_get_latest (t.toaster) == three);

  /* The person closes the young toast 180 ms after it appeared (its close button,
   * Escape, Undo: the toast dismissed directly, not through the toaster). Shown alone,
   * its show animation is the short one (300 ms), which its hide animation (300 ms from
   * the dismissal) outlives. Added while the first was still hiding, it would have the
   * long one (500 ms), and this crashed libadwaita 1.2 when that ended. */
  frame_time_after (&t, three_added + 180 * G_TIME_SPAN_MILLISECOND);
  adw_toast_dismiss (three);
  g_assert_null (letterbox_toaster_get_shown (t.toaster));
  g_assert_true (lb_test_wait_until (overlay_empty, &t, 10000));
  g_assert_null (three);

  /* Timeouts are the toaster's, and a timed-out toast goes like any other. */
  adw_toast_set_timeout (five, 1);
  start = g_get_monotonic_time ();
  letterbox_toaster_show (t.toaster, five);
  g_assert_cmpuint (adw_toast_get_timeout (five), ==, 0);
  g_assert_true (letterbox_toaster_get_shown (t.toaster) == five);
  t.wanted = NULL;
  g_assert_true (lb_test_wait_until (toast_shown, &t, 10000));
  g_assert_cmpint (g_get_monotonic_time () - start, >=, G_TIME_SPAN_SECOND);
  g_assert_true (lb_test_wait_until (overlay_empty, &t, 10000));
  g_assert_null (five);

  /* A toast added while the window is hidden (libadwaita skips its animations) still
   * gives way to the next one once the window is back. */
  gtk_widget_set_visible (window, FALSE);
  letterbox_toaster_show (t.toaster, six);
  g_assert_true (letterbox_toaster_get_shown (t.toaster) == six);
  gtk_window_present (GTK_WINDOW (window));
  g_assert_true (lb_test_wait_until (overlay_mapped, &t, 10000));
  letterbox_toaster_show (t.toaster, seven);
  t.wanted = seven;
  g_assert_true (lb_test_wait_until (toast_shown, &t, 10000));
  g_assert_true (lb_test_wait_until (one_toast_widget, &t, 10000));
  g_assert_null (six);

  g_clear_object (&t.toaster);
  gtk_window_destroy (GTK_WINDOW (window));
  spin ();
  g_assert_null (seven);
}

int
main (int   argc,
      char *argv[])
{
  gtk_test_init (&argc, &argv, NULL);
  adw_init ();
  g_test_add_func ("/status/offline-banner", test_offline_banner);
  g_test_add_func ("/status/account-problems", test_account_problems);
  g_test_add_func ("/status/spinner", test_spinner);
  g_test_add_func ("/status/one-list-per-owner", test_one_list_per_owner);
  g_test_add_func ("/status/toasts", test_toasts);
  return g_test_run ();
}
