/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>

#include "lb-bus-backend1.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* `letterbox-ctl status`: what the running background service reports. It never starts
 * the service: asking whether it runs must not change the answer. When it does not run,
 * the exit status stays LBCTL_EXIT_NOT_RUNNING (scripts ask exactly that) and what the
 * local store holds is printed too (no store is created where there is none). */

/* One line per account: "  work  online", "  home  error: … (needs you)". */
static void
print_accounts (GVariant *accounts)
{
  for (gsize i = 0; i < g_variant_n_children (accounts); i++)
    {
      g_autoptr(GVariant) state = NULL;
      const char *id, *value = "?", *error = "";
      gboolean action = FALSE;

      g_variant_get_child (accounts, i, "(&s@a{sv})", &id, &state);
      g_variant_lookup (state, "state", "&s", &value);
      g_variant_lookup (state, "error", "&s", &error);
      g_variant_lookup (state, "needs-user-action", "b", &action);
      if (error[0] == '\0')
        g_print ("  %-16s %s\n", id, value);
      else if (action)
        /* Translators: an account's state, its error, and a hint that waiting won't fix it. */
        g_print (_("  %-16s %s: %s (needs your action)\n"), id, value, error);
      else
        g_print ("  %-16s %s: %s\n", id, value, error);
    }
}

static void
json_accounts (LbctlJson *json,
               GVariant  *accounts)
{
  lbctl_json_name (json, "account_states");
  lbctl_json_begin_array (json);
  for (gsize i = 0; i < g_variant_n_children (accounts); i++)
    {
      g_autoptr(GVariant) state = NULL;
      const char *id, *value = "", *error = "", *kind = "";
      gboolean action = FALSE;
      gint64 last = 0;
      guint failures = 0;

      g_variant_get_child (accounts, i, "(&s@a{sv})", &id, &state);
      g_variant_lookup (state, "state", "&s", &value);
      g_variant_lookup (state, "error", "&s", &error);
      g_variant_lookup (state, "error-kind", "&s", &kind);
      g_variant_lookup (state, "needs-user-action", "b", &action);
      g_variant_lookup (state, "last-sync", "x", &last);
      g_variant_lookup (state, "failures", "u", &failures);
      lbctl_json_begin_object (json);
      lbctl_json_member_string (json, "id", id);
      lbctl_json_member_string (json, "state", value);
      lbctl_json_member_string (json, "error", error[0] != '\0' ? error : NULL);
      lbctl_json_member_string (json, "error_kind", kind[0] != '\0' ? kind : NULL);
      lbctl_json_member_boolean (json, "needs_user_action", action);
      lbctl_json_member_int (json, "last_sync", last);
      lbctl_json_member_int (json, "failures", failures);
      lbctl_json_end_object (json);
    }
  lbctl_json_end_array (json);
}

static void
print_status (GVariant *status,
              GVariant *account_states)
{
  g_autoptr(GVariantDict) dict = g_variant_dict_new (status);
  const char *version = "?";
  const char *data_dir = "?";
  const char *state = "?";
  guint32 pid = 0;
  guint32 accounts = 0;
  guint64 uptime = 0;
  guint32 outbox = 0;
  const char *relay_socket = "";
  guint16 relay_port = 0;
  g_autofree char *uptime_text = NULL;

  g_variant_dict_lookup (dict, "version", "&s", &version);
  g_variant_dict_lookup (dict, "pid", "u", &pid);
  g_variant_dict_lookup (dict, "uptime", "t", &uptime);
  g_variant_dict_lookup (dict, "data-dir", "&s", &data_dir);
  g_variant_dict_lookup (dict, "accounts", "u", &accounts);
  g_variant_dict_lookup (dict, "state", "&s", &state);
  g_variant_dict_lookup (dict, "outbox", "u", &outbox);
  g_variant_dict_lookup (dict, "relay-socket", "&s", &relay_socket);
  g_variant_dict_lookup (dict, "relay-port", "q", &relay_port);

  if (lbctl_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();
      g_autofree char *text = NULL;

      lbctl_json_begin_object (json);
      lbctl_json_member_boolean (json, "running", TRUE);
      lbctl_json_member_string (json, "version", version);
      lbctl_json_member_int (json, "pid", pid);
      lbctl_json_member_int (json, "uptime", (gint64) uptime);
      lbctl_json_member_string (json, "data_dir", data_dir);
      lbctl_json_member_int (json, "accounts", accounts);
      lbctl_json_member_string (json, "state", state);
      lbctl_json_member_int (json, "outbox", outbox);
      lbctl_json_member_string (json, "relay_socket", relay_socket[0] != '\0' ? relay_socket : NULL);
      lbctl_json_member_int (json, "relay_port", relay_port);
      json_accounts (json, account_states);
      lbctl_json_end_object (json);
      text = lbctl_json_free_to_string (g_steal_pointer (&json));
      g_print ("%s\n", text);
      return;
    }

  /* Translators: "up" time of the service, in seconds. */
  uptime_text = g_strdup_printf (_("%llu s"), (unsigned long long) uptime);
  g_print (_("letterbox-backend %s is running (pid %u, up %s)\n"), version, pid, uptime_text);
  g_print (_("Store:    %s\n"), data_dir);
  g_print (_("Accounts: %u\n"), accounts);
  g_print (_("State:    %s\n"), state);
  g_print (_("Outbox:   %u waiting\n"), outbox);
  if (relay_socket[0] != '\0')
    g_print (_("Relay:    %s (letterbox-sendmail)\n"), relay_socket);
  if (relay_port != 0)
    g_print (_("Relay:    127.0.0.1:%u (SMTP with AUTH)\n"), relay_port);
  print_accounts (account_states);
}

/* What the local store holds, printed when the service does not run. The exit status is
 * LBCTL_EXIT_NOT_RUNNING whatever happens here: a store that cannot be read is a second
 * line on stderr, not a different answer to "does it run?". */
static int
print_local_summary (void)
{
  g_autofree char *data_dir = lb_store_default_data_dir ();
  g_autofree char *index_path = g_build_filename (data_dir, "index.db", NULL);
  g_autoptr(LbStore) store = NULL;
  g_autoptr(GError) error = NULL;
  LbStoreCounts counts = { 0 };
  gboolean exists = g_file_test (index_path, G_FILE_TEST_IS_REGULAR);

  if (exists)
    {
      store = lb_store_open (data_dir, &error);
      if (store == NULL || !lb_store_get_counts (store, &counts, &error))
        {
          lbctl_fail (error);
          return LBCTL_EXIT_NOT_RUNNING;
        }
    }

  if (lbctl_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();
      g_autofree char *text = NULL;

      lbctl_json_begin_object (json);
      lbctl_json_member_boolean (json, "running", FALSE);
      lbctl_json_member_string (json, "data_dir", data_dir);
      lbctl_json_name (json, "store");
      if (exists)
        {
          lbctl_json_begin_object (json);
          lbctl_json_member_int (json, "accounts", counts.accounts);
          lbctl_json_member_int (json, "folders", counts.folders);
          lbctl_json_member_int (json, "messages", counts.messages);
          lbctl_json_member_int (json, "unread", counts.unread);
          lbctl_json_member_int (json, "pending", counts.pending);
          lbctl_json_end_object (json);
        }
      else
        lbctl_json_null (json);
      lbctl_json_end_object (json);
      text = lbctl_json_free_to_string (g_steal_pointer (&json));
      g_print ("%s\n", text);
      return LBCTL_EXIT_NOT_RUNNING;
    }

  if (!exists)
    {
      g_print (_("Store:    %s (no mail store yet)\n"), data_dir);
      return LBCTL_EXIT_NOT_RUNNING;
    }
  g_print (_("Store:    %s\n"), data_dir);
  g_print (_("Accounts: %u\n"), counts.accounts);
  g_print (_("Folders:  %u\n"), counts.folders);
  g_print (_("Messages: %u (%u unread)\n"), counts.messages, counts.unread);
  g_print (_("Pending:  %u offline operations waiting for sync\n"), counts.pending);
  return LBCTL_EXIT_NOT_RUNNING;
}

int
lbctl_status (int    argc,
              char **argv)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autoptr(GVariant) accounts = NULL;
  g_autoptr(GError) error = NULL;
  g_autofree char *owner = NULL;

  static const LbctlCommandHelp help = {
    "status", "",
    N_("Whether the background service runs, and what it reports. When it does not run: "
       "exit status 3, one line on stderr, and on stdout what the local store holds "
       "(accounts, folders, messages, unread, offline operations waiting for sync).")
  };
  g_autoptr(GPtrArray) args = NULL;
  int exit_status;

  if ((args = lbctl_parse_args (argc, argv, &help, NULL, FALSE, &exit_status)) == NULL)
    return exit_status;
  if (args->len > 0)
    return lbctl_usage_error ("status", _("status takes no arguments"));

  bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, &error);
  if (bus == NULL)
    {
      lbctl_error (_("cannot reach the session bus: %s"), error->message);
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
      lbctl_error (_("the Letterbox background service is not running "
                     "(nobody owns %s on the session bus)"),
                   LB_BACKEND_BUS_NAME);
      return print_local_summary ();
    }

  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), 10000);
  if (!lb_bus_backend1_call_status_sync (proxy, &status, NULL, &error))
    {
      g_dbus_error_strip_remote_error (error);
      lbctl_error (_("the background service did not answer: %s"), error->message);
      return LBCTL_EXIT_FAILURE;
    }

  if (!lb_bus_backend1_call_list_accounts_sync (proxy, &accounts, NULL, &error))
    {
      g_dbus_error_strip_remote_error (error);
      lbctl_error (_("the background service did not answer: %s"), error->message);
      return LBCTL_EXIT_FAILURE;
    }
  print_status (status, accounts);
  return LBCTL_EXIT_OK;
}
