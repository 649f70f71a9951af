/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "imap/lb-imap-session.h"
#include "lb-account.h"
#include "lb-autoconfig.h"
#include "lb-connection.h"
#include "lb-sasl.h"
#include "lb-search-query.h"
#include "lbctl-commands.h"
#include "pop3/lb-pop3-session.h"
#include "smtp/lb-smtp-session.h"

/* What every command shares: one-line errors, the exit status a GError stands for,
 * argument parsing, the store, and folder names. */

static void
print_error_line (const char *message)
{
  g_autofree char *line = g_strdup (message);

  /* One line, whatever the message: scripts read the first line of stderr. */
  g_strdelimit (line, "\r\n", ' ');
  g_printerr ("letterbox-ctl: %s\n", g_strchomp (line));
}

void
lbctl_error (const char *format,
             ...)
{
  g_autofree char *message = NULL;
  va_list ap;

  va_start (ap, format);
  message = g_strdup_vprintf (format, ap);
  va_end (ap);
  print_error_line (message);
}

/* Prints "letterbox-ctl: … (try letterbox-ctl COMMAND --help)" and returns the usage
 * status. */
int
lbctl_usage_error (const char *command,
                   const char *format,
                   ...)
{
  g_autofree char *message = NULL;
  g_autofree char *hint = NULL;
  va_list ap;

  va_start (ap, format);
  message = g_strdup_vprintf (format, ap);
  va_end (ap);
  if (command != NULL)
    /* Translators: the first %s is an error message, the second a command name. */
    hint = g_strdup_printf (_("%s (try letterbox-ctl %s --help)"), message, command);
  else
    hint = g_strdup_printf (_("%s (try letterbox-ctl --help)"), message);
  print_error_line (hint);
  return LBCTL_EXIT_USAGE;
}

/* The exit status table of lbctl-commands.h, for the errors the engine raises. */
int
lbctl_exit_status (const GError *error)
{
  if (error == NULL)
    return LBCTL_EXIT_OK;

  if (error->domain == G_OPTION_ERROR || error->domain == LB_SEARCH_QUERY_ERROR)
    return LBCTL_EXIT_USAGE;

  if (error->domain == LB_STORE_ERROR)
    return error->code == LB_STORE_ERROR_NOT_FOUND ? LBCTL_EXIT_NOT_FOUND : LBCTL_EXIT_IO;

  if (error->domain == LB_ACCOUNT_ERROR)
    switch ((LbAccountError) error->code)
      {
      case LB_ACCOUNT_ERROR_NOT_FOUND:
        return LBCTL_EXIT_NOT_FOUND;
      case LB_ACCOUNT_ERROR_IO:
        return LBCTL_EXIT_IO;
      case LB_ACCOUNT_ERROR_INVALID:
      case LB_ACCOUNT_ERROR_PASSWORD:
      default:
        return LBCTL_EXIT_FAILURE;
      }

  /* Settings looked up from an address (account add --autoconfig): none found is "no
   * such thing"; servers that did not answer or sent a bad document are the server's. */
  if (error->domain == LB_AUTOCONFIG_ERROR)
    switch ((LbAutoconfigError) error->code)
      {
      case LB_AUTOCONFIG_ERROR_ADDRESS:
      case LB_AUTOCONFIG_ERROR_OPTION:
        return LBCTL_EXIT_USAGE;
      case LB_AUTOCONFIG_ERROR_NOT_FOUND:
        return LBCTL_EXIT_NOT_FOUND;
      case LB_AUTOCONFIG_ERROR_UNREACHABLE:
      case LB_AUTOCONFIG_ERROR_PARSE:
      case LB_AUTOCONFIG_ERROR_TOO_BIG:
      case LB_AUTOCONFIG_ERROR_EMPTY:
      default:
        return LBCTL_EXIT_SERVER;
      }

  if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    return LBCTL_EXIT_FAILURE;
  /* GIO's errors come from local files here: connections report LB_NET_ERROR. */
  if (error->domain == G_IO_ERROR || error->domain == G_FILE_ERROR)
    return LBCTL_EXIT_IO;

  if (error->domain == LB_NET_ERROR || error->domain == G_TLS_ERROR ||
      error->domain == G_RESOLVER_ERROR || error->domain == LB_IMAP_ERROR ||
      error->domain == LB_POP3_ERROR || error->domain == LB_SMTP_ERROR ||
      error->domain == LB_SASL_ERROR)
    return LBCTL_EXIT_SERVER;

  return LBCTL_EXIT_FAILURE;
}

int
lbctl_fail (const GError *error)
{
  print_error_line (error->message);
  return lbctl_exit_status (error);
}

/* ---- arguments ---------------------------------------------------------------------- */

static void
print_command_help (const LbctlCommandHelp *help)
{
  /* Translators: the first %s is a command name, the second its arguments. */
  g_print (_("Usage: letterbox-ctl [OPTIONS] %s %s\n"), help->name, _(help->synopsis));
  if (help->help != NULL)
    g_print ("\n%s\n", _(help->help));
  g_print ("\n%s\n", _("Global options (before or after the command): --json, --local, "
                       "--data-dir DIR, --config-dir DIR. See letterbox-ctl --help for the "
                       "exit statuses, and the manual page letterbox-ctl(1)."));
}

static gboolean
set_global_option (const char *name,
                   const char *value)
{
  if (strcmp (name, "data-dir") == 0)
    g_setenv ("LETTERBOX_DATA_DIR", value, TRUE);
  else if (strcmp (name, "config-dir") == 0)
    g_setenv ("LETTERBOX_CONFIG_DIR", value, TRUE);
  else
    return FALSE;
  return TRUE;
}

static gboolean
parse_uint (const char *text,
            guint      *value)
{
  guint64 parsed;

  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT, &parsed, NULL))
    return FALSE;
  *value = (guint) parsed;
  return TRUE;
}

GPtrArray *
lbctl_parse_args (int                      argc,
                  char                   **argv,
                  const LbctlCommandHelp  *help,
                  const LbctlOption       *options,
                  gboolean                 dash_arguments,
                  int                     *status)
{
  g_autoptr(GPtrArray) args = g_ptr_array_new ();
  gboolean options_ended = FALSE;

  *status = LBCTL_EXIT_OK;
  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      g_autofree char *name = NULL;
      const char *value = NULL;
      const char *equals;
      const LbctlOption *option = NULL;
      gboolean global = FALSE;

      if (options_ended || arg[0] != '-' || arg[1] == '\0' ||
          (dash_arguments && arg[1] != '-' && strcmp (arg, "-h") != 0))
        {
          g_ptr_array_add (args, (char *) arg);
          continue;
        }
      if (strcmp (arg, "--") == 0)
        {
          options_ended = TRUE;
          continue;
        }
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          print_command_help (help);
          return NULL;
        }
      if (arg[1] != '-')
        {
          *status = lbctl_usage_error (help->name, _("unknown option “%s”"), arg);
          return NULL;
        }

      equals = strchr (arg, '=');
      name = equals != NULL ? g_strndup (arg + 2, equals - arg - 2) : g_strdup (arg + 2);
      if (equals != NULL)
        value = equals + 1;

      if (strcmp (name, "json") == 0 || strcmp (name, "local") == 0)
        {
          if (value != NULL)
            {
              *status = lbctl_usage_error (help->name, _("--%s takes no value"), name);
              return NULL;
            }
          if (strcmp (name, "json") == 0)
            lbctl_json = TRUE;
          else
            lbctl_local = TRUE;
          continue;
        }
      global = strcmp (name, "data-dir") == 0 || strcmp (name, "config-dir") == 0;
      for (guint j = 0; !global && options != NULL && options[j].name != NULL; j++)
        if (strcmp (options[j].name, name) == 0)
          option = &options[j];
      if (!global && option == NULL)
        {
          *status = lbctl_usage_error (help->name, _("unknown option “--%s”"), name);
          return NULL;
        }

      if (option != NULL && option->kind == LBCTL_OPTION_FLAG)
        {
          if (value != NULL)
            {
              *status = lbctl_usage_error (help->name, _("--%s takes no value"), name);
              return NULL;
            }
          *(gboolean *) option->value = TRUE;
          continue;
        }
      if (value == NULL)
        {
          if (i + 1 >= argc)
            {
              *status = lbctl_usage_error (help->name, _("--%s needs a value"), name);
              return NULL;
            }
          value = argv[++i];
        }
      if (global)
        {
          if (value[0] == '\0')
            {
              *status = lbctl_usage_error (help->name, _("--%s needs a directory"), name);
              return NULL;
            }
          set_global_option (name, value);
        }
      else if (option->kind == LBCTL_OPTION_UINT)
        {
          if (!parse_uint (value, option->value))
            {
              *status = lbctl_usage_error (help->name,
                                           _("--%s needs a whole number, not “%s”"),
                                           name, value);
              return NULL;
            }
        }
      else
        {
          char **target = option->value;

          g_free (*target);
          *target = g_strdup (value);
        }
    }
  return g_steal_pointer (&args);
}

/* A message id: a positive decimal number. */
gboolean
lbctl_parse_id (const char *text,
                gint64     *id)
{
  guint64 parsed;

  if (!g_ascii_string_to_unsigned (text, 10, 1, G_MAXINT64, &parsed, NULL))
    return FALSE;
  *id = (gint64) parsed;
  return TRUE;
}

/* ---- the store ---------------------------------------------------------------------- */

/* In this process: the background service has no D-Bus API for the store yet, so --local
 * is the only mode. */
LbBusBackend1 *
lbctl_backend (void)
{
  g_autoptr(GDBusConnection) bus = NULL;
  g_autoptr(LbBusBackend1) proxy = NULL;
  g_autoptr(GVariant) status = NULL;
  g_autofree char *owner = NULL;
  g_autofree char *data_dir = NULL;
  const char *served = NULL;

  if (lbctl_local || g_getenv ("DBUS_SESSION_BUS_ADDRESS") == NULL)
    return NULL;
  if ((bus = g_bus_get_sync (G_BUS_TYPE_SESSION, NULL, NULL)) == NULL)
    return NULL;
  proxy = lb_bus_backend1_proxy_new_sync (bus,
                                          G_DBUS_PROXY_FLAGS_DO_NOT_AUTO_START |
                                          G_DBUS_PROXY_FLAGS_DO_NOT_LOAD_PROPERTIES,
                                          LB_BACKEND_BUS_NAME, LB_BACKEND_OBJECT_PATH,
                                          NULL, NULL);
  if (proxy == NULL || (owner = g_dbus_proxy_get_name_owner (G_DBUS_PROXY (proxy))) == NULL)
    return NULL;
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), 10000);
  if (!lb_bus_backend1_call_status_sync (proxy, &status, NULL, NULL) ||
      !g_variant_lookup (status, "data-dir", "&s", &served))
    return NULL;
  data_dir = lb_store_default_data_dir ();
  if (strcmp (served, data_dir) != 0)
    {
      g_debug ("The background service serves %s, not %s: working in-process", served,
               data_dir);
      return NULL;
    }
  /* Syncs and sends take as long as the servers do: no D-Bus timeout. */
  g_dbus_proxy_set_default_timeout (G_DBUS_PROXY (proxy), G_MAXINT);
  return g_steal_pointer (&proxy);
}

int
lbctl_fail_remote (GError *error)
{
  g_autofree char *name = g_dbus_error_get_remote_error (error);
  int status = LBCTL_EXIT_FAILURE;

  if (g_strcmp0 (name, "org.letterbox.Backend1.Error.NotFound") == 0)
    status = LBCTL_EXIT_NOT_FOUND;
  else if (g_strcmp0 (name, "org.freedesktop.DBus.Error.InvalidArgs") == 0)
    status = LBCTL_EXIT_USAGE;
  g_dbus_error_strip_remote_error (error);
  lbctl_error ("%s", error->message);
  return status;
}

LbStore *
lbctl_open_store (GError **error)
{
  g_autofree char *data_dir = lb_store_default_data_dir ();

  return lb_store_open (data_dir, error);
}

LbStoreWriter *
lbctl_open_writer (LbStore  *store,
                   GError  **error)
{
  return lb_store_writer_new (lb_store_get_data_dir (store), error);
}

void
lbctl_wait_init (LbctlWait *wait)
{
  wait->loop = g_main_loop_new (NULL, FALSE);
  wait->result = NULL;
}

void
lbctl_wait_clear (LbctlWait *wait)
{
  g_clear_object (&wait->result);
  g_clear_pointer (&wait->loop, g_main_loop_unref);
}

void
lbctl_wait_cb (GObject      *source,
               GAsyncResult *result,
               gpointer      user_data)
{
  LbctlWait *wait = user_data;

  wait->result = g_object_ref (result);
  g_main_loop_quit (wait->loop);
}

/* Runs the main loop until the call started with lbctl_wait_cb() completes. */
GAsyncResult *
lbctl_wait_run (LbctlWait *wait)
{
  g_clear_object (&wait->result);
  while (wait->result == NULL)
    g_main_loop_run (wait->loop);
  return wait->result;
}

/* ---- folders ------------------------------------------------------------------------ */

char *
lbctl_folder_path (LbFolder *folder)
{
  return g_strdup_printf ("%s/%s", lb_folder_get_account_id (folder), lb_folder_get_name (folder));
}

LbFolder *
lbctl_folder_by_id (GPtrArray *folders,
                    gint64     id)
{
  for (guint i = 0; i < folders->len; i++)
    if (lb_folder_get_id (g_ptr_array_index (folders, i)) == id)
      return g_ptr_array_index (folders, i);
  return NULL;
}

static gboolean
same_text (const char *a,
           const char *b,
           gboolean    fold_case)
{
  g_autofree char *fa = NULL;
  g_autofree char *fb = NULL;

  if (a == NULL || b == NULL)
    return FALSE;
  if (!fold_case)
    return strcmp (a, b) == 0;
  fa = g_utf8_casefold (a, -1);
  fb = g_utf8_casefold (b, -1);
  return strcmp (fa, fb) == 0;
}

static gboolean
account_matches (LbFolder   *folder,
                 const char *account)
{
  return strcmp (lb_folder_get_account_id (folder), account) == 0 ||
         same_text (lb_folder_get_account_name (folder), account, TRUE);
}

/* The folders named @name (of @account, or of any account): the exact name first, then
 * ignoring case (IMAP's INBOX is case-insensitive, RFC 9051 §5.1). */
static GPtrArray *
match_name (GPtrArray  *folders,
            const char *account,
            const char *name)
{
  GPtrArray *found = g_ptr_array_new ();

  for (guint pass = 0; pass < 2 && found->len == 0; pass++)
    for (guint i = 0; i < folders->len; i++)
      {
        LbFolder *folder = g_ptr_array_index (folders, i);

        if ((account == NULL || account_matches (folder, account)) &&
            same_text (lb_folder_get_name (folder), name, pass == 1))
          g_ptr_array_add (found, folder);
      }
  return found;
}

static gboolean
any_account (GPtrArray  *folders,
             const char *account)
{
  for (guint i = 0; i < folders->len; i++)
    if (account_matches (g_ptr_array_index (folders, i), account))
      return TRUE;
  return FALSE;
}

LbFolder *
lbctl_find_folder (GPtrArray   *folders,
                   const char  *spec,
                   GError     **error)
{
  g_autoptr(GPtrArray) found = NULL;
  const char *slash = strchr (spec, '/');
  gint64 id;

  if (lbctl_parse_id (spec, &id))
    {
      LbFolder *folder = lbctl_folder_by_id (folders, id);

      if (folder == NULL)
        g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                     _("There is no folder %s"), spec);
      return folder;
    }

  /* "ACCOUNT/NAME": the name may have more slashes. A first part that names no account
   * makes the whole a folder name ("INBOX/Lists"). */
  if (slash != NULL && slash > spec)
    {
      g_autofree char *account = g_strndup (spec, slash - spec);

      if (any_account (folders, account))
        {
          found = match_name (folders, account, slash + 1);
          if (found->len == 0)
            {
              g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                           _("The account “%s” has no folder “%s”"), account, slash + 1);
              return NULL;
            }
        }
    }
  if (found == NULL)
    found = match_name (folders, NULL, spec);

  if (found->len == 1)
    return g_ptr_array_index (found, 0);
  if (found->len == 0)
    {
      g_set_error (error, LB_STORE_ERROR, LB_STORE_ERROR_NOT_FOUND,
                   _("There is no folder “%s”"), spec);
      return NULL;
    }

  {
    g_autoptr(GString) candidates = g_string_new (NULL);

    for (guint i = 0; i < found->len; i++)
      {
        g_autofree char *path = lbctl_folder_path (g_ptr_array_index (found, i));

        if (i > 0)
          g_string_append (candidates, ", ");
        g_string_append (candidates, path);
      }
    g_set_error (error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                 _("“%s” could be any of these folders: %s; name one as ACCOUNT/NAME or by "
                   "its id"),
                 spec, candidates->str);
    return NULL;
  }
}
