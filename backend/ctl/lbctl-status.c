/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>

#include "lb-bus-backend1.h"
#include "lbctl-commands.h"

/* `letterbox-ctl status`: what the running background service reports. It never starts
 * the service: asking whether it runs must not change the answer. */

static void
print_status (GVariant *status)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new (status);
  const char *version = "?";
  const char *data_dir = "?";
  const char *state = "?";
  guint32 pid = 0;
  guint32 accounts = 0;
  guint64 uptime = 0;
  g_autofree char *uptime_text = NULL;

  g_variant_dict_lookup (dict, "version", "&s", &version);
  g_variant_dict_lookup (dict, "pid", "u", &pid);
  g_variant_dict_lookup (dict, "uptime", "t", &uptime);
  g_variant_dict_lookup (dict, "data-dir", "&s", &data_dir);
  g_variant_dict_lookup (dict, "accounts", "u", &accounts);
  g_variant_dict_lookup (dict, "state", "&s", &state);

  /* Translators: "up" time of the service, in seconds. */
  uptime_text = g_strdup_printf (_("%llu s"), (unsigned long long) uptime);
  g_print (_("letterbox-backend %s is running (pid %u, up %s)\n"), version, pid, uptime_text);
  g_print (_("Store:    %s\n"), data_dir);
  g_print (_("Accounts: %u\n"), accounts);
  g_print (_("State:    %s\n"), state);
}

int
lbctl_status (int    argc,
              char **argv)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner = NULL;

  if (argc > 1)
    {
      g_printerr (_("letterbox-ctl: status takes no arguments\n"));
      return LBCTL_EXIT_USAGE;
    }

  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (bus == NULL)
    {
      g_printerr (_("letterbox-ctl: cannot reach the session bus: %s\n"), error->message);
      return LBCTL_EXIT_FAILURE;
    }

  proxy = lb_bus_backend1_proxy_new_sync (bus,
                                          G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START |
                                          G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES |
                                          G_DBUS_PROXY_FLAGS_DO_NOT_CONNECT_SIGNALS,
                                          LB_BACKEND_BUS_NAME, LB_BACKEND_OBJECT_PATH,
                                          NULL, &error);
  if (proxy != NULL)
    owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (proxy));
  if (owner == NULL)
    {
      g_printerr (_("letterbox-ctl: the Letterbox background service is not running "
                    "(nobody owns %s on the session bus)\n"),
                  LB_BACKEND_BUS_NAME);
      return LBCTL_EXIT_NOT_RUNNING;
    }

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), 10000);
  if (!lb_bus_backend1_call_status_sync (proxy, &status, NULL, &error))
    {
      g_dbus_error_strip_remote_error (error);
      g_printerr (_("letterbox-ctl: the background service did not answer: %s\n"),
                  error->message);
      return LBCTL_EXIT_FAILURE;
    }

  print_status (status);
  return LBCTL_EXIT_OK;
}
