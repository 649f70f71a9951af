/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lbctl"

#include "config.h"

#include <glib/gi18n.h>
#include <stdio.h>
#include <string.h>

#include "lb-account-check.h"
#include "lb-account.h"
#include "lb-autoconfig.h"
#include "lbctl-commands.h"
#include "lbctl-json.h"

/* `letterbox-ctl account …`: the account configuration files (lb-account.c), without the
 * background service. Exit statuses: LBCTL_EXIT_* in lbctl-commands.h. */

static char *opt_config_dir;
static char *opt_data_dir;
static gboolean opt_json;
static gboolean opt_local;

static const GOptionEntry common_entries[] = {
  { "config-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_config_dir,
    N_("Read and write accounts under DIR (like LETTERBOX_CONFIG_DIR)"), N_("DIR") },
  { "data-dir", 0, 0, G_OPTION_ARG_FILENAME, &opt_data_dir,
    N_("The mail store in DIR (like LETTERBOX_DATA_DIR)"), N_("DIR") },
  { "json", 0, 0, G_OPTION_ARG_NONE, &opt_json, N_("Print JSON"), NULL },
  { "local", 0, 0, G_OPTION_ARG_NONE, &opt_local,
    N_("Run the engine in this process (for now the only mode)"), NULL },
  { NULL }
};

static void
usage_error (const char *detail)
{
  lbctl_usage_error ("account", "%s", detail);
}

/* Parses @argv in place; on failure prints one line and returns FALSE. */
static gboolean
parse_options (int           *argc,
               char        ***argv,
               const char    *parameter,
               const GOptionEntry *entries)
{
  g_autoptr(GOptionContext) context = g_option_context_new (parameter);
  g_autoptr(GError) error = NULL;

  g_option_context_set_translation_domain (context, GETTEXT_PACKAGE);
  g_option_context_add_main_entries (context, common_entries, GETTEXT_PACKAGE);
  if (entries != NULL)
    g_option_context_add_main_entries (context, entries, GETTEXT_PACKAGE);
  if (!g_option_context_parse (context, argc, argv, &error))
    {
      usage_error (error->message);
      return FALSE;
    }
  if (opt_config_dir != NULL)
    g_setenv ("LETTERBOX_CONFIG_DIR", opt_config_dir, TRUE);
  if (opt_data_dir != NULL)
    g_setenv ("LETTERBOX_DATA_DIR", opt_data_dir, TRUE);
  if (lbctl_json)
    opt_json = TRUE;
  return TRUE;
}

static int
report_error (const GError *error)
{
  return lbctl_fail (error);
}

static char *
server_url (const LbAccountServer *server)
{
  const char *protocol = lb_account_protocol_to_string (server->protocol);
  gboolean ipv6 = strchr (server->host, ':') != NULL;

  return g_strdup_printf ("%s%s://%s%s%s:%u", protocol,
                          server->security == LB_NET_SECURITY_TLS ? "s" : "",
                          ipv6 ? "[" : "", server->host, ipv6 ? "]" : "", server->port);
}

static const char *
server_user (const LbAccount       *account,
             const LbAccountServer *server)
{
  return server->user != NULL ? server->user : lb_account_get_address (account);
}

static void
account_to_json (LbctlJson       *json,
                 const LbAccount *account,
                 gboolean         full)
{
  g_autofree char *incoming = server_url (account->incoming);
  g_autofree char *outgoing = account->outgoing != NULL ? server_url (account->outgoing) : NULL;

  lbctl_json_begin_object (json);
  lbctl_json_member_string (json, "id", account->id);
  lbctl_json_member_string (json, "display_name",
                            account->display_name != NULL ? account->display_name : account->id);
  lbctl_json_member_string (json, "email", lb_account_get_address (account));
  lbctl_json_member_string (json, "incoming", incoming);
  lbctl_json_member_string (json, "outgoing", outgoing);
  if (full)
    {
      lbctl_json_member_string (json, "incoming_user",
                                server_user (account, account->incoming));
      if (account->outgoing != NULL)
        lbctl_json_member_string (json, "outgoing_user",
                                  server_user (account, account->outgoing));
      lbctl_json_member_string (json, "password_source",
                                account->password_source == LB_ACCOUNT_PASSWORD_COMMAND
                                ? "command" : "keyring");
      lbctl_json_member_string (json, "ca_file", account->ca_file);
      lbctl_json_member_string (json, "fingerprint", account->fingerprint);
    }
  lbctl_json_end_object (json);
}

static void
print_json (LbctlJson *json)
{
  g_autofree char *text = lbctl_json_free_to_string (json);

  g_print ("%s\n", text);
}

/* account add */

static char *add_email;
static char *add_display_name;
static char *add_imap;
static char *add_pop3;
static char *add_smtp;
static char *add_password_command;
static char *add_ca_file;
static char *add_fingerprint;
static gboolean add_autoconfig;

static const GOptionEntry add_entries[] = {
  { "email", 0, 0, G_OPTION_ARG_STRING, &add_email, N_("The e-mail address"), N_("ADDRESS") },
  { "display-name", 0, 0, G_OPTION_ARG_STRING, &add_display_name,
    N_("The name shown for the account"), N_("TEXT") },
  { "imap", 0, 0, G_OPTION_ARG_STRING, &add_imap,
    N_("Incoming IMAP server: imaps://user@host:993 or imap://… (STARTTLS)"), N_("URL") },
  { "pop3", 0, 0, G_OPTION_ARG_STRING, &add_pop3,
    N_("Incoming POP3 server: pop3s://user@host:995 or pop3://… (STARTTLS)"), N_("URL") },
  { "smtp", 0, 0, G_OPTION_ARG_STRING, &add_smtp,
    N_("Outgoing server: smtps://user@host:465 or smtp://…:587 (STARTTLS)"), N_("URL") },
  { "password-command", 0, 0, G_OPTION_ARG_STRING, &add_password_command,
    N_("Command whose first output line is the password (default: the keyring)"), N_("CMD") },
  { "ca-file", 0, 0, G_OPTION_ARG_FILENAME, &add_ca_file,
    N_("Trust only certificates from this CA file"), N_("FILE") },
  { "trust-fingerprint", 0, 0, G_OPTION_ARG_STRING, &add_fingerprint,
    N_("Trust the one certificate with this SHA-256 fingerprint"), N_("SHA256") },
  { "autoconfig", 0, 0, G_OPTION_ARG_NONE, &add_autoconfig,
    N_("Find the servers from the address: the provider's autoconfig file, DNS SRV "
       "records, then probing"), NULL },
  { NULL }
};

static LbAccountServer *
parse_server (const char        *url,
              LbAccountProtocol  expected,
              const char        *option)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAccountServer) server = lb_account_server_from_url (url, &error);

  if (server == NULL)
    {
      lbctl_error ("--%s: %s", option, error->message);
      return NULL;
    }
  if (server->protocol != expected)
    {
      lbctl_error (_("--%s: “%s” is not a %s URL"), option, url,
                   lb_account_protocol_to_string (expected));
      return NULL;
    }
  return g_steal_pointer (&server);
}

/* The servers found for --autoconfig: the first of each direction that has TLS or
 * STARTTLS (RFC 8314: nothing set up automatically goes without it). Says on stderr
 * where they came from. Returns an exit status. */
static int
autoconfig_servers (LbAccount   *account,
                    const char  *address,
                    const char  *ca_file,
                    const char  *fingerprint)
{
  const char *probe_hosts = g_getenv ("LETTERBOX_AUTOCONFIG_PROBE_HOSTS");
  g_auto(GStrv) probe_host_list = probe_hosts != NULL ? g_strsplit (probe_hosts, ",", -1)
                                                      : NULL;
  LbAutoconfigOptions options = {
    .ca_file = ca_file,
    .trusted_fingerprint = fingerprint,
    /* Testing aids, documented as such in letterbox-ctl(1). */
    .base_url_override = g_getenv ("LETTERBOX_AUTOCONFIG_URL"),
    .nameserver = g_getenv ("LETTERBOX_AUTOCONFIG_DNS"),
    .probe_hosts = (const char * const *) probe_host_list,
  };
  g_autoptr(GError) error = NULL;
  g_autoptr(LbAutoconfig) config = NULL;
  g_autofree char *domain = NULL;
  g_autofree char *dotted_domain = NULL;
  LbctlWait wait;

  if (ca_file != NULL)
    {
      g_autoptr(GTlsDatabase) database = g_tls_file_database_new (ca_file, &error);

      if (database == NULL)
        {
          lbctl_error (_("--ca-file %s: %s"), ca_file, error->message);
          return LBCTL_EXIT_IO;
        }
    }

  lbctl_wait_init (&wait);
  lb_autoconfig_discover_async (address, &options, NULL, lbctl_wait_cb, &wait);
  config = lb_autoconfig_discover_finish (lbctl_wait_run (&wait), &error);
  lbctl_wait_clear (&wait);
  if (config == NULL)
    return lbctl_fail (error);

  for (guint i = 0; i < config->incoming->len && account->incoming == NULL; i++)
    {
      const LbAccountServer *server = g_ptr_array_index (config->incoming, i);

      if (server->security != LB_NET_SECURITY_NONE)
        account->incoming = lb_account_server_copy (server);
    }
  for (guint i = 0; i < config->outgoing->len && account->outgoing == NULL; i++)
    {
      const LbAccountServer *server = g_ptr_array_index (config->outgoing, i);

      if (server->security != LB_NET_SECURITY_NONE)
        account->outgoing = lb_account_server_copy (server);
    }
  if (account->incoming == NULL)
    {
      lbctl_error (_("the settings found for %s offer no encrypted connection to receive "
                     "mail; give --imap or --pop3 yourself"), address);
      return LBCTL_EXIT_NOT_FOUND;
    }

  switch (config->method)
    {
    case LB_AUTOCONFIG_METHOD_FILE:
      g_printerr (_("Found the servers for %s in the autoconfig file at %s\n"), address,
                  config->source);
      break;
    case LB_AUTOCONFIG_METHOD_SRV:
      g_printerr (_("Found the servers for %s from DNS SRV records\n"), address);
      break;
    case LB_AUTOCONFIG_METHOD_PROBE:
    case LB_AUTOCONFIG_METHOD_DOCUMENT:
    default:
      g_printerr (_("Found the servers for %s by probing\n"), address);
      break;
    }
  lb_autoconfig_split_address (address, NULL, &domain, NULL);
  dotted_domain = g_strconcat (".", domain, NULL);
  for (guint i = 0; i < 2; i++)
    {
      const LbAccountServer *server = i == 0 ? account->incoming : account->outgoing;
      g_autofree char *url = NULL;
      g_autofree char *host = NULL;

      if (server == NULL)
        continue;
      url = server_url (server);
      g_printerr ("  %s %s\n", i == 0 ? "incoming" : "outgoing", url);
      /* RFC 6186 §6: DNS is not authenticated; a target outside the address's domain is
       * the user's to accept. */
      host = g_ascii_strdown (server->host, -1);
      if (config->method == LB_AUTOCONFIG_METHOD_SRV && domain != NULL &&
          strcmp (host, domain) != 0 && !g_str_has_suffix (host, dotted_domain))
        g_printerr (_("  note: %s is not in the domain %s; the DNS said so, unverified. "
                      "Remove the account if you do not trust that server.\n"),
                    server->host, domain);
    }
  return LBCTL_EXIT_OK;
}

static int
account_add (int    argc,
             char **argv)
{
  g_autoptr(LbAccount) account = NULL;
  g_autoptr(LbAccount) existing = NULL;
  g_autoptr(GError) error = NULL;
  const char *id;

  if (!parse_options (&argc, &argv,
                      N_("NAME --email ADDRESS (--imap URL | --pop3 URL | --autoconfig) …"),
                      add_entries))
    return LBCTL_EXIT_USAGE;
  if (argc != 2)
    {
      usage_error (_("account add takes one NAME"));
      return LBCTL_EXIT_USAGE;
    }
  id = argv[1];
  if (add_email == NULL)
    {
      usage_error (_("account add needs --email"));
      return LBCTL_EXIT_USAGE;
    }
  if (add_autoconfig && (add_imap != NULL || add_pop3 != NULL || add_smtp != NULL))
    {
      usage_error (_("--autoconfig finds the servers: it excludes --imap, --pop3 and --smtp"));
      return LBCTL_EXIT_USAGE;
    }
  if (!add_autoconfig && (add_imap == NULL) == (add_pop3 == NULL))
    {
      usage_error (_("account add needs exactly one of --imap, --pop3 and --autoconfig"));
      return LBCTL_EXIT_USAGE;
    }
  if (add_ca_file != NULL && add_fingerprint != NULL)
    {
      usage_error (_("--ca-file and --trust-fingerprint exclude each other"));
      return LBCTL_EXIT_USAGE;
    }

  account = lb_account_new (id);
  account->display_name = g_strdup (add_display_name);
  lb_account_add_identity (account, add_display_name, add_email);
  if (add_autoconfig)
    {
      int status;

      /* Before the network: a bad name or an account that exists needs no search. */
      if (!lb_account_id_is_valid (id))
        {
          lbctl_error (_("“%s” is not a valid account name (letters, digits, “.”, “_”, “-”; "
                         "not starting with “.”)"), id);
          return LBCTL_EXIT_USAGE;
        }
      existing = lb_account_load (id, &error);
      if (existing != NULL ||
          !g_error_matches (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND))
        {
          lbctl_error (_("the account “%s” already exists"), id);
          return LBCTL_EXIT_NOT_FOUND;
        }
      g_clear_error (&error);
      status = autoconfig_servers (account, add_email, add_ca_file, add_fingerprint);
      if (status != LBCTL_EXIT_OK)
        return status;
    }
  else
    {
      account->incoming = add_imap != NULL
        ? parse_server (add_imap, LB_ACCOUNT_PROTOCOL_IMAP, "imap")
        : parse_server (add_pop3, LB_ACCOUNT_PROTOCOL_POP3, "pop3");
      if (account->incoming == NULL)
        return LBCTL_EXIT_USAGE;
      if (add_smtp != NULL)
        {
          account->outgoing = parse_server (add_smtp, LB_ACCOUNT_PROTOCOL_SMTP, "smtp");
          if (account->outgoing == NULL)
            return LBCTL_EXIT_USAGE;
        }
    }
  if (add_password_command != NULL)
    {
      account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
      account->password_command = g_strdup (add_password_command);
    }
  else
    account->password_source = LB_ACCOUNT_PASSWORD_KEYRING;
  if (add_ca_file != NULL)
    {
      g_autoptr(GFile) file = g_file_new_for_commandline_arg (add_ca_file);
      account->ca_file = g_file_get_path (file);
    }
  account->fingerprint = g_strdup (add_fingerprint);

  /* What the user typed is wrong: a usage error, whatever the account module calls it. */
  if (!lb_account_validate (account, &error))
    {
      lbctl_error ("%s", error->message);
      return LBCTL_EXIT_USAGE;
    }

  existing = lb_account_load (id, &error);
  if (existing != NULL ||
      !g_error_matches (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND))
    {
      lbctl_error (_("the account “%s” already exists"), id);
      return LBCTL_EXIT_NOT_FOUND;
    }
  g_clear_error (&error);

  if (!lb_account_save (account, &error))
    return report_error (error);

  g_print (_("Added the account “%s”.\n"), id);
  if (account->password_source == LB_ACCOUNT_PASSWORD_KEYRING)
    g_print (_("Its password is read from the keyring; to store it there: "
               "secret-tool store --label='Letterbox %s' xdg:schema org.letterbox.Account "
               "account %s protocol %s\n"),
             id, id, lb_account_protocol_to_string (account->incoming->protocol));
  if (account->password_source == LB_ACCOUNT_PASSWORD_KEYRING && account->outgoing != NULL)
    g_print (_("and for the outgoing server: "
               "secret-tool store --label='Letterbox %s' xdg:schema org.letterbox.Account "
               "account %s protocol %s\n"),
             id, id, lb_account_protocol_to_string (account->outgoing->protocol));
  return LBCTL_EXIT_OK;
}

/* account list */

static int
account_list (int    argc,
              char **argv)
{
  g_autoptr(GError) error = NULL;

  if (!parse_options (&argc, &argv, NULL, NULL))
    return LBCTL_EXIT_USAGE;
  if (argc != 1)
    {
      usage_error (_("account list takes no arguments"));
      return LBCTL_EXIT_USAGE;
    }

  if (opt_json)
    {
      g_autoptr(GPtrArray) accounts = lb_account_load_all (&error);
      g_autoptr(LbctlJson) json = lbctl_json_new ();

      if (accounts == NULL)
        return report_error (error);
      lbctl_json_begin_array (json);
      for (guint i = 0; i < accounts->len; i++)
        account_to_json (json, g_ptr_array_index (accounts, i), FALSE);
      lbctl_json_end_array (json);
      print_json (g_steal_pointer (&json));
    }
  else
    {
      g_auto(GStrv) ids = lb_account_list_ids (&error);

      if (ids == NULL)
        return report_error (error);
      for (guint i = 0; ids[i] != NULL; i++)
        g_print ("%s\n", ids[i]);
    }
  return LBCTL_EXIT_OK;
}

/* account show / remove */

static LbAccount *
load_named (int    argc,
            char **argv,
            const char *command,
            int   *status)
{
  g_autoptr(GError) error = NULL;
  LbAccount *account;

  if (argc != 2)
    {
      g_autofree char *detail = g_strdup_printf (_("account %s takes one NAME"), command);
      usage_error (detail);
      *status = LBCTL_EXIT_USAGE;
      return NULL;
    }
  account = lb_account_load (argv[1], &error);
  if (account == NULL)
    *status = report_error (error);
  return account;
}

static void
print_server (const char            *label,
              const LbAccount       *account,
              const LbAccountServer *server)
{
  g_autofree char *url = server_url (server);

  g_print ("%-15s %s\n", label, url);
  g_print ("%-15s %s\n", _("  User:"), server_user (account, server));
}

static int
account_show (int    argc,
              char **argv)
{
  g_autoptr(LbAccount) account = NULL;
  int status = LBCTL_EXIT_OK;

  if (!parse_options (&argc, &argv, N_("NAME"), NULL))
    return LBCTL_EXIT_USAGE;
  account = load_named (argc, argv, "show", &status);
  if (account == NULL)
    return status;

  if (opt_json)
    {
      g_autoptr(LbctlJson) json = lbctl_json_new ();

      account_to_json (json, account, TRUE);
      print_json (g_steal_pointer (&json));
      return LBCTL_EXIT_OK;
    }

  g_print ("%-15s %s\n", _("Account:"), account->id);
  g_print ("%-15s %s\n", _("Display name:"),
           account->display_name != NULL ? account->display_name : account->id);
  for (guint i = 0; i < account->identities->len; i++)
    {
      const LbAccountIdentity *identity = g_ptr_array_index (account->identities, i);

      g_print ("%-15s %s\n", _("E-mail:"), identity->address);
    }
  print_server (_("Incoming:"), account, account->incoming);
  if (account->outgoing != NULL)
    print_server (_("Outgoing:"), account, account->outgoing);
  g_print ("%-15s %s\n", _("Password:"),
           account->password_source == LB_ACCOUNT_PASSWORD_COMMAND
           ? _("from a command") : _("from the keyring"));
  if (account->ca_file != NULL)
    g_print ("%-15s %s\n", _("CA file:"), account->ca_file);
  if (account->fingerprint != NULL)
    g_print ("%-15s %s\n", _("Fingerprint:"), account->fingerprint);
  return LBCTL_EXIT_OK;
}

static int
account_remove (int    argc,
                char **argv)
{
  g_autoptr(GError) error = NULL;

  if (!parse_options (&argc, &argv, N_("NAME"), NULL))
    return LBCTL_EXIT_USAGE;
  if (argc != 2)
    {
      usage_error (_("account remove takes one NAME"));
      return LBCTL_EXIT_USAGE;
    }
  if (!lb_account_remove (argv[1], &error))
    return report_error (error);
  g_print (_("Removed the account “%s”.\n"), argv[1]);
  return LBCTL_EXIT_OK;
}

/* account test: one async call at a time, each waited for in a GMainLoop. */

typedef struct
{
  GMainLoop *loop;
  GAsyncResult *result;
} Wait;

static void
wait_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  Wait *wait = user_data;

  wait->result = g_object_ref (result);
  g_main_loop_quit (wait->loop);
}

static GAsyncResult *
wait_run (Wait *wait)
{
  g_clear_object (&wait->result);
  g_main_loop_run (wait->loop);
  return wait->result;
}

/* The password from where the account keeps it, then the same check as the account
 * assistant's (lb-account-check.c): connect, log in, log out. */
static gboolean
test_server (const LbAccount       *account,
             const LbAccountServer *server,
             Wait                  *wait,
             GError               **error)
{
  g_autofree char *password = NULL;
  gboolean ok;

  if (server->port == 0 || server->port > G_MAXUINT16)
    {
      g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
                   _("port %u is out of range"), server->port);
      return FALSE;
    }

  lb_account_get_password_async (account, server->protocol, NULL, wait_cb, wait);
  password = lb_account_get_password_finish (wait_run (wait), error);
  if (password == NULL)
    return FALSE;

  lb_account_check_server_async (account, server, password, NULL, wait_cb, wait);
  ok = lb_account_check_server_finish (wait_run (wait), NULL, error);
  memset (password, 0, strlen (password));
  return ok;
}

static int
account_test (int    argc,
              char **argv)
{
  g_autoptr(LbAccount) account = NULL;
  Wait wait = { 0 };
  int status = LBCTL_EXIT_OK;
  struct
  {
    const char *label;
    const LbAccountServer *server;
  } servers[2];
  guint n_servers = 0;
  guint failed = 0;

  if (!parse_options (&argc, &argv, N_("NAME"), NULL))
    return LBCTL_EXIT_USAGE;
  account = load_named (argc, argv, "test", &status);
  if (account == NULL)
    return status;

  servers[n_servers].label = "incoming";
  servers[n_servers++].server = account->incoming;
  if (account->outgoing != NULL)
    {
      servers[n_servers].label = "outgoing";
      servers[n_servers++].server = account->outgoing;
    }

  wait.loop = g_main_loop_new (NULL, FALSE);
  for (guint i = 0; i < n_servers; i++)
    {
      g_autoptr(GError) error = NULL;
      g_autofree char *url = server_url (servers[i].server);

      if (test_server (account, servers[i].server, &wait, &error))
        g_print ("%s %s: %s\n", servers[i].label, url, _("ok"));
      else
        {
          failed++;
          g_print ("%s %s: %s\n", servers[i].label, url, error->message);
          lbctl_error (_("account “%s”: %s %s: %s"), account->id, servers[i].label, url,
                       error->message);
        }
    }
  g_clear_object (&wait.result);
  g_main_loop_unref (wait.loop);

  return failed == 0 ? LBCTL_EXIT_OK : LBCTL_EXIT_SERVER;
}

static void
print_account_usage (FILE *out)
{
  fprintf (out, "%s\n\n", _("Usage: letterbox-ctl [--config-dir DIR] [--json] account "
                            "SUBCOMMAND [ARGUMENTS…]"));
  fprintf (out, "%s\n", _("Subcommands:"));
  fprintf (out, "  %s\n", _("add NAME --email ADDRESS (--imap URL | --pop3 URL) [--smtp URL] "
                            "[--display-name TEXT] [--password-command CMD] "
                            "[--ca-file FILE | --trust-fingerprint SHA256]"));
  fprintf (out, "  %s\n", _("add NAME --email ADDRESS --autoconfig [--display-name TEXT] "
                            "[--password-command CMD] [--ca-file FILE | --trust-fingerprint "
                            "SHA256]"));
  fprintf (out, "  %s\n", _("list                  the account names, or with --json their "
                            "details"));
  fprintf (out, "  %s\n", _("show NAME             the account's settings (never a password)"));
  fprintf (out, "  %s\n", _("remove NAME           delete the account's configuration"));
  fprintf (out, "  %s\n", _("test NAME             log in to its servers, one line each"));
  fprintf (out, "\n%s\n", _("URLs: imaps://user@host:993, imap://… (STARTTLS), pop3s://…, "
                            "pop3://… (STARTTLS), smtps://…:465, smtp://…:587 (STARTTLS); "
                            "the user defaults to the e-mail address."));
  fprintf (out, "%s\n", _("--autoconfig finds the servers from the address: its provider's "
                          "autoconfig file, then DNS SRV records (RFC 6186), then probing "
                          "the usual host names; where they came from goes to stderr."));
  fprintf (out, "%s\n", _("Exit status: 0 success, 1 failure, 2 wrong usage or invalid "
                          "input, 4 a connection, TLS or login failed (or, for --autoconfig, "
                          "the servers found did not answer or sent unusable settings), 5 a "
                          "file could not be read or written, 6 no such account or it "
                          "already exists, or --autoconfig found nothing usable."));
}

int
lbctl_account (int    argc,
               char **argv)
{
  static const struct
  {
    const char *name;
    int (*run) (int argc, char **argv);
  } subcommands[] = {
    { "add", account_add },
    { "list", account_list },
    { "show", account_show },
    { "remove", account_remove },
    { "test", account_test },
  };

  if (argc < 2)
    {
      print_account_usage (stderr);
      return LBCTL_EXIT_USAGE;
    }
  if (strcmp (argv[1], "--help") == 0 || strcmp (argv[1], "-h") == 0 ||
      strcmp (argv[1], "help") == 0)
    {
      print_account_usage (stdout);
      return LBCTL_EXIT_OK;
    }
  for (guint i = 0; i < G_N_ELEMENTS (subcommands); i++)
    if (strcmp (argv[1], subcommands[i].name) == 0)
      return subcommands[i].run (argc - 1, argv + 1);

  return lbctl_usage_error ("account", _("unknown account subcommand “%s”"), argv[1]);
}
