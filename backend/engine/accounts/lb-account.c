/* SPDX-License-Identifier: GPL-3.0-or-later */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <errno.h>
#include <glib/gi18n-lib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "lb-account.h"
#include "lb-secret.h"

/*
 * Account configuration: one GKeyFile per account, `<id>.ini` in lb_account_dir(), mode
 * 0600 in a 0700 directory, written atomically. Passwords never go into the file: they
 * live in the keyring (lb-secret.c) or come from a password command (like mbsync's
 * PassCmd). The file looks like this:
 *
 *   [account]
 *   display-name=Work
 *   password-source=keyring        # or "command", with password-command=pass show mail
 *   ca-file=/path/to/ca.pem        # or fingerprint=AA:BB:… (SHA-256), not both
 *
 *   [identity 1]                   # one group per identity, the first is the default
 *   name=Alice
 *   address=alice@example.org
 *
 *   [incoming]
 *   protocol=imap                  # or pop3
 *   host=imap.example.org
 *   port=993                       # default from protocol and security
 *   security=tls                   # tls | starttls | none
 *   user=alice                     # default: the first identity's address
 *   auth=auto                      # or a SASL mechanism name
 *   allow-insecure=false           # security=none to a host other than loopback needs true
 *
 *   [outgoing]                     # optional; SMTP, same keys but protocol
 *   host=smtp.example.org
 *   port=587
 *   security=starttls
 *
 *   [sync]
 *   bodies=all                     # all | recent (bodies-days=N) | on-demand
 *   leave-on-server=true           # POP3
 *   delete-after-days=0            # POP3, with leave-on-server; 0 = never
 *
 * Unknown groups and keys are ignored, so a newer version's file still loads.
 */

G_DEFINE_QUARK (lb-account-error-quark, lb_account_error)

#define FINGERPRINT_LENGTH (32 * 3 - 1)
#define DEFAULT_BODIES_DAYS 30

static const struct
{
  const char *name;
  LbAccountProtocol protocol;
} protocol_names[] = {
  { "imap", LB_ACCOUNT_PROTOCOL_IMAP },
  { "pop3", LB_ACCOUNT_PROTOCOL_POP3 },
  { "smtp", LB_ACCOUNT_PROTOCOL_SMTP },
};

static const struct
{
  const char *name;
  LbNetSecurity security;
} security_names[] = {
  { "tls", LB_NET_SECURITY_TLS },
  { "starttls", LB_NET_SECURITY_STARTTLS },
  { "none", LB_NET_SECURITY_NONE },
};

static const struct
{
  const char *name;
  LbAccountBodies bodies;
} bodies_names[] = {
  { "all", LB_ACCOUNT_BODIES_ALL },
  { "recent", LB_ACCOUNT_BODIES_RECENT },
  { "on-demand", LB_ACCOUNT_BODIES_ON_DEMAND },
};

/* Takes @detail. The field is named as in the file ("[incoming] port"). */
static gboolean
set_invalid (GError    **error,
             const char *id,
             const char *field,
             char       *detail)
{
  g_autofree char *owned = detail;

  g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
               /* Translators: account id, the field in the account file, what is wrong */
               _("Account “%s”, %s: %s"), id != NULL ? id : "", field, owned);
  return FALSE;
}

const char *
lb_account_protocol_to_string (LbAccountProtocol protocol)
{
  for (guint i = 0; i < G_N_ELEMENTS (protocol_names); i++)
    if (protocol_names[i].protocol == protocol)
      return protocol_names[i].name;
  return NULL;
}

const char *
lb_account_security_to_string (LbNetSecurity security)
{
  for (guint i = 0; i < G_N_ELEMENTS (security_names); i++)
    if (security_names[i].security == security)
      return security_names[i].name;
  return NULL;
}

static gboolean
security_from_string (const char    *text,
                      LbNetSecurity *security)
{
  for (guint i = 0; i < G_N_ELEMENTS (security_names); i++)
    if (g_ascii_strcasecmp (text, security_names[i].name) == 0)
      {
        *security = security_names[i].security;
        return TRUE;
      }
  return FALSE;
}

/**
 * lb_account_default_port:
 *
 * Returns: the registered port: 993/143 (IMAP), 995/110 (POP3), 465/587 (SMTP), the
 *   first with implicit TLS, the second with STARTTLS or none
 */
guint
lb_account_default_port (LbAccountProtocol protocol,
                         LbNetSecurity     security)
{
  gboolean tls = security == LB_NET_SECURITY_TLS;

  switch (protocol)
    {
    case LB_ACCOUNT_PROTOCOL_IMAP:
      return tls ? 993 : 143;
    case LB_ACCOUNT_PROTOCOL_POP3:
      return tls ? 995 : 110;
    case LB_ACCOUNT_PROTOCOL_SMTP:
      return tls ? 465 : 587;
    default:
      g_return_val_if_reached (0);
    }
}

LbAccountServer *
lb_account_server_new (LbAccountProtocol protocol,
                       const char       *host,
                       guint             port,
                       LbNetSecurity     security)
{
  LbAccountServer *server = g_new0 (LbAccountServer, 1);

  server->protocol = protocol;
  server->host = g_strdup (host);
  server->port = port != 0 ? port : lb_account_default_port (protocol, security);
  server->security = security;
  server->auth = g_strdup ("auto");
  return server;
}

LbAccountServer *
lb_account_server_copy (const LbAccountServer *server)
{
  LbAccountServer *copy;

  if (server == NULL)
    return NULL;
  copy = g_memdup2 (server, sizeof *server);
  copy->host = g_strdup (server->host);
  copy->user = g_strdup (server->user);
  copy->auth = g_strdup (server->auth);
  return copy;
}

void
lb_account_server_free (LbAccountServer *server)
{
  if (server == NULL)
    return;
  g_free (server->host);
  g_free (server->user);
  g_free (server->auth);
  g_free (server);
}

static void
identity_free (gpointer data)
{
  LbAccountIdentity *identity = data;

  g_free (identity->name);
  g_free (identity->address);
  g_free (identity);
}

/**
 * lb_account_new:
 * @id: the account's id (checked by lb_account_validate(), not here)
 *
 * Returns: (transfer full): an account with no identity or server yet, passwords in the
 *   keyring and every body downloaded
 */
LbAccount *
lb_account_new (const char *id)
{
  LbAccount *account = g_new0 (LbAccount, 1);

  g_return_val_if_fail (id != NULL, NULL);

  account->id = g_strdup (id);
  account->identities = g_ptr_array_new_with_free_func (identity_free);
  account->password_source = LB_ACCOUNT_PASSWORD_KEYRING;
  account->bodies = LB_ACCOUNT_BODIES_ALL;
  account->bodies_days = DEFAULT_BODIES_DAYS;
  account->leave_on_server = TRUE;
  return account;
}

void
lb_account_free (LbAccount *account)
{
  if (account == NULL)
    return;
  g_free (account->id);
  g_free (account->display_name);
  g_ptr_array_unref (account->identities);
  lb_account_server_free (account->incoming);
  lb_account_server_free (account->outgoing);
  g_free (account->ca_file);
  g_free (account->fingerprint);
  g_free (account->password_command);
  g_free (account);
}

/**
 * lb_account_copy:
 *
 * A deep copy, for work that outlives the caller's account (a sync in progress).
 *
 * Returns: (transfer full): the copy
 */
LbAccount *
lb_account_copy (const LbAccount *account)
{
  LbAccount *copy;

  g_return_val_if_fail (account != NULL, NULL);

  copy = lb_account_new (account->id);
  copy->display_name = g_strdup (account->display_name);
  for (guint i = 0; i < account->identities->len; i++)
    {
      const LbAccountIdentity *identity = g_ptr_array_index (account->identities, i);

      lb_account_add_identity (copy, identity->name, identity->address);
    }
  copy->incoming = lb_account_server_copy (account->incoming);
  copy->outgoing = lb_account_server_copy (account->outgoing);
  copy->ca_file = g_strdup (account->ca_file);
  copy->fingerprint = g_strdup (account->fingerprint);
  copy->password_source = account->password_source;
  copy->password_command = g_strdup (account->password_command);
  copy->bodies = account->bodies;
  copy->bodies_days = account->bodies_days;
  copy->leave_on_server = account->leave_on_server;
  copy->delete_after_days = account->delete_after_days;
  return copy;
}

void
lb_account_add_identity (LbAccount  *account,
                         const char *name,
                         const char *address)
{
  LbAccountIdentity *identity = g_new0 (LbAccountIdentity, 1);

  g_return_if_fail (account != NULL);

  identity->name = g_strdup (name);
  identity->address = g_strdup (address);
  g_ptr_array_add (account->identities, identity);
}

/**
 * lb_account_get_address:
 *
 * Returns: (nullable): the first identity's address
 */
const char *
lb_account_get_address (const LbAccount *account)
{
  const LbAccountIdentity *identity;

  g_return_val_if_fail (account != NULL, NULL);

  if (account->identities->len == 0)
    return NULL;
  identity = g_ptr_array_index (account->identities, 0);
  return identity->address;
}

/**
 * lb_account_id_is_valid:
 *
 * Returns: whether @id is a safe file name: [A-Za-z0-9._-], 1–64 characters, not
 *   starting with '.'
 */
gboolean
lb_account_id_is_valid (const char *id)
{
  gsize len;

  if (id == NULL || id[0] == '\0' || id[0] == '.')
    return FALSE;
  len = strlen (id);
  if (len > 64)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (id[i]) && id[i] != '.' && id[i] != '_' && id[i] != '-')
      return FALSE;
  return TRUE;
}

/* local@domain: something on each side of the one '@', no spaces, controls, angle
 * brackets or quotes (a display name belongs in the identity's name), domain not
 * starting or ending with '.'. Stricter checks are the server's business. */
static gboolean
address_is_valid (const char *address)
{
  const char *at;

  if (address == NULL || !g_utf8_validate (address, -1, NULL))
    return FALSE;
  at = strchr (address, '@');
  if (at == NULL || at == address || at[1] == '\0' || strchr (at + 1, '@') != NULL)
    return FALSE;
  if (at[1] == '.' || address[strlen (address) - 1] == '.')
    return FALSE;
  for (const char *p = address; *p != '\0'; p++)
    if ((guchar) *p <= ' ' || *p == 0x7f || strchr ("<>()[],;:\"\\", *p) != NULL)
      return FALSE;
  return TRUE;
}

static gboolean
host_is_valid (const char *host)
{
  if (host == NULL || host[0] == '\0' || strlen (host) > 255)
    return FALSE;
  for (const char *p = host; *p != '\0'; p++)
    if ((guchar) *p <= ' ' || *p == 0x7f || strchr ("/@?#[]", *p) != NULL)
      return FALSE;
  return TRUE;
}

/* Decided from the configuration alone: "localhost" or a loopback address literal. The
 * connection checks again where it actually went (lb_connection_is_loopback()). */
static gboolean
host_is_loopback (const char *host)
{
  g_autoptr(GInetAddress) address = NULL;

  if (g_ascii_strcasecmp (host, "localhost") == 0 ||
      g_ascii_strcasecmp (host, "localhost.") == 0)
    return TRUE;
  address = g_inet_address_new_from_string (host);
  return address != NULL && g_inet_address_get_is_loopback (address);
}

/* RFC 4422 §3.1: 1–20 of [A-Z0-9-_]; lower case accepted and compared as upper. */
static gboolean
auth_is_valid (const char *auth)
{
  gsize len;

  if (auth == NULL || g_ascii_strcasecmp (auth, "auto") == 0)
    return TRUE;
  len = strlen (auth);
  if (len == 0 || len > 20)
    return FALSE;
  for (gsize i = 0; i < len; i++)
    if (!g_ascii_isalnum (auth[i]) && auth[i] != '-' && auth[i] != '_')
      return FALSE;
  return TRUE;
}

static gboolean
fingerprint_is_valid (const char *fingerprint)
{
  if (strlen (fingerprint) != FINGERPRINT_LENGTH)
    return FALSE;
  for (guint i = 0; i < FINGERPRINT_LENGTH; i++)
    {
      char c = fingerprint[i];

      if (i % 3 == 2)
        {
          if (c != ':')
            return FALSE;
        }
      else if (!g_ascii_isdigit (c) && !(c >= 'A' && c <= 'F'))
        return FALSE;
    }
  return TRUE;
}

static gboolean
validate_server (const LbAccount       *account,
                 const LbAccountServer *server,
                 const char            *group,
                 GError               **error)
{
  g_autofree char *field = NULL;
  gboolean outgoing = g_str_equal (group, "outgoing");

#define FIELD(key) (g_free (field), field = g_strdup_printf ("[%s] %s", group, key))

  if (outgoing ? server->protocol != LB_ACCOUNT_PROTOCOL_SMTP
               : (server->protocol != LB_ACCOUNT_PROTOCOL_IMAP &&
                  server->protocol != LB_ACCOUNT_PROTOCOL_POP3))
    return set_invalid (error, account->id, FIELD ("protocol"),
                        outgoing ? g_strdup (_("the outgoing server must be SMTP"))
                                 : g_strdup (_("the incoming server must be IMAP or POP3")));
  if (server->host == NULL || server->host[0] == '\0')
    return set_invalid (error, account->id, FIELD ("host"), g_strdup (_("no server is given")));
  if (!host_is_valid (server->host))
    return set_invalid (error, account->id, FIELD ("host"),
                        g_strdup_printf (_("“%s” is not a host name or address"),
                                         server->host));
  if (server->port < 1 || server->port > 65535)
    return set_invalid (error, account->id, FIELD ("port"),
                        g_strdup_printf (_("%u is out of range (1–65535)"), server->port));
  if (lb_account_security_to_string (server->security) == NULL)
    return set_invalid (error, account->id, FIELD ("security"),
                        g_strdup (_("unknown security; use tls, starttls or none")));
  if (server->security == LB_NET_SECURITY_NONE && !server->allow_insecure &&
      !host_is_loopback (server->host))
    return set_invalid (error, account->id, FIELD ("security"),
                        g_strdup_printf (_("“none” would send the password and mail to %s "
                                           "unencrypted; use tls or starttls, or set "
                                           "allow-insecure=true to accept that"),
                                         server->host));
  if (server->user != NULL &&
      (server->user[0] == '\0' || !g_utf8_validate (server->user, -1, NULL)))
    return set_invalid (error, account->id, FIELD ("user"),
                        g_strdup (_("the user name is empty or not UTF-8")));
  if (!auth_is_valid (server->auth))
    return set_invalid (error, account->id, FIELD ("auth"),
                        g_strdup_printf (_("“%s” is neither “auto” nor a SASL mechanism "
                                           "name"), server->auth));
#undef FIELD
  return TRUE;
}

/**
 * lb_account_validate:
 * @error: an #LB_ACCOUNT_ERROR_INVALID naming the account and the field
 *
 * Checks everything that can be checked without the network: the id, the identities, the
 * servers (protocol, host, port, security — none only to loopback unless
 * allow_insecure), the trust settings (a CA file that exists, or a well-formed
 * fingerprint, not both), the password command and the sync policy.
 */
gboolean
lb_account_validate (const LbAccount  *account,
                     GError          **error)
{
  g_return_val_if_fail (account != NULL, FALSE);

  if (!lb_account_id_is_valid (account->id))
    return set_invalid (error, account->id, "id",
                        g_strdup (_("an id is 1–64 letters, digits, “.”, “_” or “-”, "
                                    "not starting with “.”")));
  if (account->display_name != NULL && !g_utf8_validate (account->display_name, -1, NULL))
    return set_invalid (error, account->id, "display-name", g_strdup (_("not valid UTF-8")));
  if (account->identities->len == 0)
    return set_invalid (error, account->id, "address",
                        g_strdup (_("the account has no e-mail address")));
  for (guint i = 0; i < account->identities->len; i++)
    {
      const LbAccountIdentity *identity = g_ptr_array_index (account->identities, i);

      if (identity->address == NULL || identity->address[0] == '\0')
        return set_invalid (error, account->id, "address",
                            g_strdup (_("an identity has no e-mail address")));
      if (!address_is_valid (identity->address))
        return set_invalid (error, account->id, "address",
                            g_strdup_printf (_("“%s” is not a valid e-mail address"),
                                             identity->address));
      if (identity->name != NULL && (!g_utf8_validate (identity->name, -1, NULL) ||
                                     strpbrk (identity->name, "\r\n") != NULL))
        return set_invalid (error, account->id, "name",
                            g_strdup (_("a name must be one line of UTF-8")));
    }
  if (account->incoming == NULL)
    return set_invalid (error, account->id, "[incoming] host",
                        g_strdup (_("the account has no incoming server")));
  if (!validate_server (account, account->incoming, "incoming", error))
    return FALSE;
  if (account->outgoing != NULL && !validate_server (account, account->outgoing, "outgoing", error))
    return FALSE;
  if (account->ca_file != NULL && account->fingerprint != NULL)
    return set_invalid (error, account->id, "ca-file",
                        g_strdup (_("give either a CA file or a fingerprint, not both")));
  if (account->ca_file != NULL &&
      (account->ca_file[0] == '\0' || !g_file_test (account->ca_file, G_FILE_TEST_IS_REGULAR)))
    return set_invalid (error, account->id, "ca-file",
                        g_strdup_printf (_("the CA file “%s” does not exist"),
                                         account->ca_file));
  if (account->fingerprint != NULL && !fingerprint_is_valid (account->fingerprint))
    return set_invalid (error, account->id, "fingerprint",
                        g_strdup (_("a SHA-256 fingerprint is 32 upper-case hex pairs separated "
                                    "by colons (AA:BB:…)")));
  if (account->password_source == LB_ACCOUNT_PASSWORD_COMMAND)
    {
      g_autofree char *command = g_strstrip (g_strdup (account->password_command != NULL
                                                         ? account->password_command : ""));

      if (command[0] == '\0')
        return set_invalid (error, account->id, "password-command",
                            g_strdup (_("the password command is empty")));
    }
  else if (account->password_source != LB_ACCOUNT_PASSWORD_KEYRING)
    return set_invalid (error, account->id, "password-source",
                        g_strdup (_("use keyring or command")));
  if (account->bodies == LB_ACCOUNT_BODIES_RECENT && account->bodies_days == 0)
    return set_invalid (error, account->id, "[sync] bodies-days",
                        g_strdup (_("keeping the bodies of the last 0 days keeps none; "
                                    "use on-demand")));
  if ((guint) account->bodies >= G_N_ELEMENTS (bodies_names))
    return set_invalid (error, account->id, "[sync] bodies",
                        g_strdup (_("use all, recent or on-demand")));
  return TRUE;
}

/**
 * lb_account_dir:
 *
 * Returns: (transfer full): `$LETTERBOX_CONFIG_DIR/accounts` if that is set, else
 *   `$XDG_CONFIG_HOME/letterbox/accounts`
 */
char *
lb_account_dir (void)
{
  const char *override = g_getenv ("LETTERBOX_CONFIG_DIR");

  if (override != NULL && override[0] != '\0')
    return g_build_filename (override, "accounts", NULL);
  return g_build_filename (g_get_user_config_dir (), "letterbox", "accounts", NULL);
}

static char *
account_path (const char *id)
{
  g_autofree char *dir = lb_account_dir ();
  g_autofree char *name = g_strconcat (id, ".ini", NULL);

  return g_build_filename (dir, name, NULL);
}

/* "[incoming] port"; keys of [account] without their group. */
static char *
field_name (const char *group,
            const char *key)
{
  if (g_str_equal (group, "account"))
    return g_strdup (key);
  return g_strdup_printf ("[%s] %s", group, key);
}

/* A missing key gives %NULL; a present but empty string is kept (validation reports
 * it). */
static char *
get_string (GKeyFile   *file,
            const char *group,
            const char *key)
{
  return g_key_file_get_string (file, group, key, NULL);
}

static gboolean
get_boolean (GKeyFile   *file,
             const char *id,
             const char *group,
             const char *key,
             gboolean    fallback,
             gboolean   *value,
             GError    **error)
{
  g_autofree char *text = get_string (file, group, key);
  g_autofree char *field = field_name (group, key);

  if (text == NULL)
    *value = fallback;
  else if (g_ascii_strcasecmp (text, "true") == 0)
    *value = TRUE;
  else if (g_ascii_strcasecmp (text, "false") == 0)
    *value = FALSE;
  else
    return set_invalid (error, id, field,
                        g_strdup_printf (_("“%s” is neither true nor false"), text));
  return TRUE;
}

static gboolean
get_unsigned (GKeyFile   *file,
              const char *id,
              const char *group,
              const char *key,
              guint       fallback,
              guint      *value,
              GError    **error)
{
  g_autofree char *text = get_string (file, group, key);
  g_autofree char *field = field_name (group, key);
  guint64 number;

  if (text == NULL)
    {
      *value = fallback;
      return TRUE;
    }
  if (!g_ascii_string_to_unsigned (text, 10, 0, G_MAXUINT, &number, NULL))
    return set_invalid (error, id, field,
                        g_strdup_printf (_("“%s” is not a number"), text));
  *value = (guint) number;
  return TRUE;
}

static LbAccountServer *
load_server (GKeyFile   *file,
             const char *id,
             const char *group,
             GError    **error)
{
  g_autoptr(LbAccountServer) server = g_new0 (LbAccountServer, 1);
  g_autofree char *protocol = NULL;
  g_autofree char *security = NULL;
  g_autofree char *field = NULL;

  if (g_str_equal (group, "outgoing"))
    server->protocol = LB_ACCOUNT_PROTOCOL_SMTP;
  else
    {
      protocol = get_string (file, group, "protocol");
      if (protocol == NULL || g_ascii_strcasecmp (protocol, "imap") == 0)
        server->protocol = LB_ACCOUNT_PROTOCOL_IMAP;
      else if (g_ascii_strcasecmp (protocol, "pop3") == 0)
        server->protocol = LB_ACCOUNT_PROTOCOL_POP3;
      else
        {
          field = g_strdup_printf ("[%s] protocol", group);
          set_invalid (error, id, field,
                       g_strdup_printf (_("unknown protocol “%s”; use imap or pop3"),
                                        protocol));
          return NULL;
        }
    }

  security = get_string (file, group, "security");
  if (security == NULL)
    server->security = LB_NET_SECURITY_TLS;
  else if (!security_from_string (security, &server->security))
    {
      field = g_strdup_printf ("[%s] security", group);
      set_invalid (error, id, field,
                   g_strdup_printf (_("unknown security “%s”; use tls, starttls or none"),
                                    security));
      return NULL;
    }

  if (!get_unsigned (file, id, group, "port",
                     lb_account_default_port (server->protocol, server->security),
                     &server->port, error) ||
      !get_boolean (file, id, group, "allow-insecure", FALSE, &server->allow_insecure, error))
    return NULL;

  server->host = get_string (file, group, "host");
  server->user = get_string (file, group, "user");
  server->auth = get_string (file, group, "auth");
  if (server->auth == NULL)
    server->auth = g_strdup ("auto");
  return g_steal_pointer (&server);
}

static gboolean
load_account (LbAccount *account,
              GKeyFile  *file,
              GError   **error)
{
  const char *id = account->id;
  g_auto(GStrv) groups = g_key_file_get_groups (file, NULL);
  g_autofree char *source = NULL;
  g_autofree char *bodies = NULL;

  account->display_name = get_string (file, "account", "display-name");
  account->ca_file = get_string (file, "account", "ca-file");
  account->fingerprint = get_string (file, "account", "fingerprint");
  account->password_command = get_string (file, "account", "password-command");
  source = get_string (file, "account", "password-source");
  if (source == NULL)
    account->password_source = account->password_command != NULL ? LB_ACCOUNT_PASSWORD_COMMAND
                                                                  : LB_ACCOUNT_PASSWORD_KEYRING;
  else if (g_ascii_strcasecmp (source, "keyring") == 0)
    account->password_source = LB_ACCOUNT_PASSWORD_KEYRING;
  else if (g_ascii_strcasecmp (source, "command") == 0)
    account->password_source = LB_ACCOUNT_PASSWORD_COMMAND;
  else
    return set_invalid (error, id, "password-source",
                        g_strdup_printf (_("unknown password source “%s”; use keyring or "
                                           "command"), source));

  for (guint i = 0; groups[i] != NULL; i++)
    if (g_str_equal (groups[i], "identity") || g_str_has_prefix (groups[i], "identity "))
      {
        g_autofree char *name = get_string (file, groups[i], "name");
        g_autofree char *address = get_string (file, groups[i], "address");

        lb_account_add_identity (account, name, address);
      }

  if (g_key_file_has_group (file, "incoming"))
    {
      account->incoming = load_server (file, id, "incoming", error);
      if (account->incoming == NULL)
        return FALSE;
    }
  if (g_key_file_has_group (file, "outgoing"))
    {
      account->outgoing = load_server (file, id, "outgoing", error);
      if (account->outgoing == NULL)
        return FALSE;
    }

  bodies = get_string (file, "sync", "bodies");
  if (bodies != NULL)
    {
      gboolean found = FALSE;

      for (guint i = 0; i < G_N_ELEMENTS (bodies_names); i++)
        if (g_ascii_strcasecmp (bodies, bodies_names[i].name) == 0)
          {
            account->bodies = bodies_names[i].bodies;
            found = TRUE;
          }
      if (!found)
        return set_invalid (error, id, "[sync] bodies",
                            g_strdup_printf (_("unknown value “%s”; use all, recent or "
                                               "on-demand"), bodies));
    }
  if (!get_unsigned (file, id, "sync", "bodies-days", DEFAULT_BODIES_DAYS,
                     &account->bodies_days, error) ||
      !get_boolean (file, id, "sync", "leave-on-server", TRUE, &account->leave_on_server, error) ||
      !get_unsigned (file, id, "sync", "delete-after-days", 0, &account->delete_after_days, error))
    return FALSE;
  return TRUE;
}

/**
 * lb_account_load_from_data:
 * @id: the account's id (the file name without ".ini")
 * @data: the file's contents
 * @length: its length, or -1 when NUL-terminated
 * @error: an #LB_ACCOUNT_ERROR_INVALID naming the account and the field
 *
 * Parses and validates an account file.
 *
 * Returns: (transfer full) (nullable): the account
 */
LbAccount *
lb_account_load_from_data (const char  *id,
                           const char  *data,
                           gssize       length,
                           GError     **error)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();
  g_autoptr(LbAccount) account = NULL;
  g_autoptr(GError) local_error = NULL;

  g_return_val_if_fail (id != NULL, NULL);
  g_return_val_if_fail (data != NULL, NULL);

  if (length < 0)
    length = (gssize) strlen (data);
  if (!g_key_file_load_from_data (file, data, (gsize) length, G_KEY_FILE_NONE, &local_error))
    {
      set_invalid (error, id, _("file"), g_strdup (local_error->message));
      return NULL;
    }
  account = lb_account_new (id);
  if (!load_account (account, file, error) || !lb_account_validate (account, error))
    return NULL;
  return g_steal_pointer (&account);
}

static void
set_server (GKeyFile              *file,
            const char            *group,
            const LbAccountServer *server)
{
  if (server->protocol != LB_ACCOUNT_PROTOCOL_SMTP)
    g_key_file_set_string (file, group, "protocol",
                           lb_account_protocol_to_string (server->protocol));
  g_key_file_set_string (file, group, "host", server->host);
  g_key_file_set_integer (file, group, "port", (int) server->port);
  g_key_file_set_string (file, group, "security", lb_account_security_to_string (server->security));
  if (server->user != NULL)
    g_key_file_set_string (file, group, "user", server->user);
  g_key_file_set_string (file, group, "auth", server->auth != NULL ? server->auth : "auto");
  if (server->allow_insecure)
    g_key_file_set_boolean (file, group, "allow-insecure", TRUE);
}

/**
 * lb_account_to_data:
 *
 * Returns: (transfer full): the account file's text (no password, ever: the struct has
 *   none)
 */
char *
lb_account_to_data (const LbAccount *account,
                    gsize           *length)
{
  g_autoptr(GKeyFile) file = g_key_file_new ();

  g_return_val_if_fail (account != NULL, NULL);

  if (account->display_name != NULL)
    g_key_file_set_string (file, "account", "display-name", account->display_name);
  g_key_file_set_string (file, "account", "password-source",
                         account->password_source == LB_ACCOUNT_PASSWORD_COMMAND ? "command"
                                                                                 : "keyring");
  if (account->password_command != NULL)
    g_key_file_set_string (file, "account", "password-command", account->password_command);
  if (account->ca_file != NULL)
    g_key_file_set_string (file, "account", "ca-file", account->ca_file);
  if (account->fingerprint != NULL)
    g_key_file_set_string (file, "account", "fingerprint", account->fingerprint);

  for (guint i = 0; i < account->identities->len; i++)
    {
      const LbAccountIdentity *identity = g_ptr_array_index (account->identities, i);
      g_autofree char *group = g_strdup_printf ("identity %u", i + 1);

      if (identity->name != NULL)
        g_key_file_set_string (file, group, "name", identity->name);
      if (identity->address != NULL)
        g_key_file_set_string (file, group, "address", identity->address);
    }

  if (account->incoming != NULL)
    set_server (file, "incoming", account->incoming);
  if (account->outgoing != NULL)
    set_server (file, "outgoing", account->outgoing);

  for (guint i = 0; i < G_N_ELEMENTS (bodies_names); i++)
    if (bodies_names[i].bodies == account->bodies)
      g_key_file_set_string (file, "sync", "bodies", bodies_names[i].name);
  g_key_file_set_integer (file, "sync", "bodies-days", (int) account->bodies_days);
  g_key_file_set_boolean (file, "sync", "leave-on-server", account->leave_on_server);
  g_key_file_set_integer (file, "sync", "delete-after-days", (int) account->delete_after_days);

  return g_key_file_to_data (file, length, NULL);
}

static gboolean
set_io_error (GError    **error,
              const char *id,
              GError     *cause)
{
  g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_IO,
               /* Translators: account id, then the system's reason */
               _("Account “%s”: %s"), id, cause->message);
  return FALSE;
}

/**
 * lb_account_load:
 * @error: #LB_ACCOUNT_ERROR_NOT_FOUND, _INVALID (naming the field) or _IO
 *
 * Returns: (transfer full) (nullable): the account stored in `<id>.ini` in
 *   lb_account_dir()
 */
LbAccount *
lb_account_load (const char  *id,
                 GError     **error)
{
  g_autofree char *path = NULL;
  g_autofree char *data = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize length;

  g_return_val_if_fail (id != NULL, NULL);

  if (!lb_account_id_is_valid (id))
    {
      set_invalid (error, id, "id",
                   g_strdup (_("an id is 1–64 letters, digits, “.”, “_” or “-”, "
                               "not starting with “.”")));
      return NULL;
    }
  path = account_path (id);
  if (!g_file_get_contents (path, &data, &length, &local_error))
    {
      if (g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND,
                     _("There is no account “%s”"), id);
      else
        set_io_error (error, id, local_error);
      return NULL;
    }
  return lb_account_load_from_data (id, data, (gssize) length, error);
}

/**
 * lb_account_save:
 * @error: #LB_ACCOUNT_ERROR_INVALID or _IO
 *
 * Validates the account and writes it atomically to `<id>.ini` (mode 0600) in
 * lb_account_dir() (created with mode 0700), replacing any earlier version.
 */
gboolean
lb_account_save (const LbAccount  *account,
                 GError          **error)
{
  g_autofree char *dir = lb_account_dir ();
  g_autofree char *path = NULL;
  g_autofree char *data = NULL;
  g_autoptr(GError) local_error = NULL;
  gsize length;

  g_return_val_if_fail (account != NULL, FALSE);

  if (!lb_account_validate (account, error))
    return FALSE;

  if (g_mkdir_with_parents (dir, 0700) != 0 || g_chmod (dir, 0700) != 0)
    {
      int saved = errno;

      g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_IO,
                   _("Account “%s”: cannot create the directory “%s”: %s"),
                   account->id, dir, g_strerror (saved));
      return FALSE;
    }
  path = account_path (account->id);
  data = lb_account_to_data (account, &length);
  if (!g_file_set_contents_full (path, data, (gssize) length,
                                 G_FILE_SET_CONTENTS_CONSISTENT, 0600, &local_error))
    return set_io_error (error, account->id, local_error);
  return TRUE;
}

static int
compare_strings (gconstpointer a,
                 gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

/**
 * lb_account_list_ids:
 * @error: #LB_ACCOUNT_ERROR_IO
 *
 * Returns: (transfer full): the ids of the account files, sorted (byte order); empty
 *   when the directory does not exist yet
 */
char **
lb_account_list_ids (GError **error)
{
  g_autofree char *dir_path = lb_account_dir ();
  g_autoptr(GPtrArray) ids = g_ptr_array_new_with_free_func (g_free);
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GDir) dir = NULL;
  const char *name;

  dir = g_dir_open (dir_path, 0, &local_error);
  if (dir == NULL)
    {
      if (!g_error_matches (local_error, G_FILE_ERROR, G_FILE_ERROR_NOENT))
        {
          g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_IO,
                       _("Cannot read the accounts directory: %s"), local_error->message);
          return NULL;
        }
    }
  else
    {
      while ((name = g_dir_read_name (dir)) != NULL)
        {
          g_autofree char *id = NULL;

          if (!g_str_has_suffix (name, ".ini"))
            continue;
          id = g_strndup (name, strlen (name) - 4);
          if (lb_account_id_is_valid (id))
            g_ptr_array_add (ids, g_steal_pointer (&id));
        }
      g_ptr_array_sort (ids, compare_strings);
    }
  g_ptr_array_add (ids, NULL);
  return (char **) g_ptr_array_free (g_steal_pointer (&ids), FALSE);
}

/**
 * lb_account_load_all:
 * @error: the first account that fails to load, named
 *
 * Returns: (transfer full) (element-type LbAccount): every account, sorted by id
 */
GPtrArray *
lb_account_load_all (GError **error)
{
  g_auto(GStrv) ids = lb_account_list_ids (error);
  g_autoptr(GPtrArray) accounts = NULL;

  if (ids == NULL)
    return NULL;
  accounts = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_free);
  for (guint i = 0; ids[i] != NULL; i++)
    {
      LbAccount *account = lb_account_load (ids[i], error);

      if (account == NULL)
        return NULL;
      g_ptr_array_add (accounts, account);
    }
  return g_steal_pointer (&accounts);
}

/**
 * lb_account_remove:
 * @error: #LB_ACCOUNT_ERROR_NOT_FOUND, _INVALID (a bad id) or _IO
 *
 * Deletes the account's file. Its keyring passwords and store are the caller's to clear.
 */
gboolean
lb_account_remove (const char  *id,
                   GError     **error)
{
  g_autofree char *path = NULL;
  int saved;

  g_return_val_if_fail (id != NULL, FALSE);

  if (!lb_account_id_is_valid (id))
    return set_invalid (error, id, "id",
                        g_strdup (_("an id is 1–64 letters, digits, “.”, “_” or “-”, "
                                    "not starting with “.”")));
  path = account_path (id);
  if (g_unlink (path) == 0)
    return TRUE;
  saved = errno;
  if (saved == ENOENT)
    g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND,
                 _("There is no account “%s”"), id);
  else
    g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_IO,
                 _("Account “%s”: cannot remove “%s”: %s"), id, path, g_strerror (saved));
  return FALSE;
}

static gboolean
set_url_error (GError    **error,
               const char *url,
               char       *detail)
{
  g_autofree char *owned = detail;

  g_set_error (error, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_INVALID,
               /* Translators: the server URL, then what is wrong with it */
               _("Server address “%s”: %s"), url, owned);
  return FALSE;
}

/**
 * lb_account_server_from_url:
 * @url: `imaps://user@host:993` and the like
 * @error: #LB_ACCOUNT_ERROR_INVALID
 *
 * Schemes: `imaps` (TLS, 993), `imap` (STARTTLS, 143), `pop3s` (TLS, 995), `pop3`
 * (STARTTLS, 110), `smtps` (TLS, 465), `smtp` (STARTTLS, 587). The user name is
 * percent-decoded (`user%40example.org`); an IPv6 address goes in brackets (`[::1]`).
 * A password in the URL is refused (it belongs in the keyring). Query parameters:
 * `security=tls|starttls|none` overrides the scheme's (with `none` the port defaults to
 * the STARTTLS one), `allow-insecure=true` consents to `none` off loopback, and
 * `auth=MECHANISM` picks the SASL mechanism. The result is not validated further; the
 * account it goes into is (lb_account_validate()).
 *
 * Returns: (transfer full) (nullable): the server
 */
LbAccountServer *
lb_account_server_from_url (const char  *url,
                            GError     **error)
{
  static const struct
  {
    const char *scheme;
    LbAccountProtocol protocol;
    LbNetSecurity security;
  } schemes[] = {
    { "imaps", LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_TLS },
    { "imap", LB_ACCOUNT_PROTOCOL_IMAP, LB_NET_SECURITY_STARTTLS },
    { "pop3s", LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_TLS },
    { "pop3", LB_ACCOUNT_PROTOCOL_POP3, LB_NET_SECURITY_STARTTLS },
    { "smtps", LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_TLS },
    { "smtp", LB_ACCOUNT_PROTOCOL_SMTP, LB_NET_SECURITY_STARTTLS },
  };
  g_autoptr(GUri) uri = NULL;
  g_autoptr(GError) local_error = NULL;
  g_autoptr(GHashTable) params = NULL;
  g_autoptr(LbAccountServer) server = NULL;
  const char *scheme;
  const char *host;
  const char *path;
  const char *query;
  const char *value;
  gboolean found = FALSE;
  int port;

  g_return_val_if_fail (url != NULL, NULL);

  uri = g_uri_parse (url, G_URI_FLAGS_HAS_PASSWORD, &local_error);
  if (uri == NULL)
    {
      set_url_error (error, url, g_strdup (local_error->message));
      return NULL;
    }

  server = g_new0 (LbAccountServer, 1);
  scheme = g_uri_get_scheme (uri);
  for (guint i = 0; i < G_N_ELEMENTS (schemes); i++)
    if (g_ascii_strcasecmp (scheme, schemes[i].scheme) == 0)
      {
        server->protocol = schemes[i].protocol;
        server->security = schemes[i].security;
        found = TRUE;
      }
  if (!found)
    {
      set_url_error (error, url,
                     g_strdup_printf (_("unknown scheme “%s”; use imaps, imap, pop3s, pop3, "
                                        "smtps or smtp"), scheme));
      return NULL;
    }

  host = g_uri_get_host (uri);
  if (host == NULL || host[0] == '\0')
    {
      set_url_error (error, url, g_strdup (_("no host is given")));
      return NULL;
    }
  if (g_uri_get_password (uri) != NULL)
    {
      set_url_error (error, url,
                     g_strdup (_("a password does not belong in the address; it is asked "
                                 "for and kept in the keyring")));
      return NULL;
    }
  path = g_uri_get_path (uri);
  if ((path[0] != '\0' && !g_str_equal (path, "/")) || g_uri_get_fragment (uri) != NULL)
    {
      set_url_error (error, url, g_strdup (_("a server address has no path")));
      return NULL;
    }

  query = g_uri_get_query (uri);
  if (query != NULL)
    {
      GHashTableIter iter;
      const char *key;

      params = g_uri_parse_params (query, -1, "&", G_URI_PARAMS_NONE, &local_error);
      if (params == NULL)
        {
          set_url_error (error, url, g_strdup (local_error->message));
          return NULL;
        }
      g_hash_table_iter_init (&iter, params);
      while (g_hash_table_iter_next (&iter, (gpointer *) &key, (gpointer *) &value))
        if (!g_str_equal (key, "security") && !g_str_equal (key, "allow-insecure") &&
            !g_str_equal (key, "auth"))
          {
            set_url_error (error, url,
                           g_strdup_printf (_("unknown parameter “%s”; use security, "
                                              "allow-insecure or auth"), key));
            return NULL;
          }
      value = g_hash_table_lookup (params, "security");
      if (value != NULL && !security_from_string (value, &server->security))
        {
          set_url_error (error, url,
                         g_strdup_printf (_("unknown security “%s”; use tls, starttls or "
                                            "none"), value));
          return NULL;
        }
      value = g_hash_table_lookup (params, "allow-insecure");
      if (value != NULL)
        {
          if (g_ascii_strcasecmp (value, "true") == 0)
            server->allow_insecure = TRUE;
          else if (g_ascii_strcasecmp (value, "false") != 0)
            {
              set_url_error (error, url,
                             g_strdup_printf (_("allow-insecure “%s” is neither true nor "
                                                "false"), value));
              return NULL;
            }
        }
      value = g_hash_table_lookup (params, "auth");
      if (value != NULL)
        {
          if (!auth_is_valid (value))
            {
              set_url_error (error, url,
                             g_strdup_printf (_("“%s” is neither “auto” nor a SASL "
                                                "mechanism name"), value));
              return NULL;
            }
          server->auth = g_strdup (value);
        }
    }
  if (server->auth == NULL)
    server->auth = g_strdup ("auto");

  port = g_uri_get_port (uri);
  if (port == 0 || port > 65535)
    {
      set_url_error (error, url, g_strdup_printf (_("port %u is out of range (1–65535)"),
                                                  (guint) port));
      return NULL;
    }
  server->port = port > 0 ? (guint) port : lb_account_default_port (server->protocol,
                                                                     server->security);
  server->host = g_strdup (host);
  if (g_uri_get_user (uri) != NULL && g_uri_get_user (uri)[0] != '\0')
    {
      server->user = g_strdup (g_uri_get_user (uri));
      if (!g_utf8_validate (server->user, -1, NULL))
        {
          set_url_error (error, url, g_strdup (_("the user name is not UTF-8")));
          return NULL;
        }
    }
  return g_steal_pointer (&server);
}

static void
wipe_free (gpointer data)
{
  char *password = data;

  if (password == NULL)
    return;
  memset (password, 0, strlen (password));
  g_free (password);
}

typedef struct
{
  char *account_id;
  char *protocol;
  char *command;
  GSubprocess *process;
} PasswordData;

static void
password_data_free (gpointer data)
{
  PasswordData *pd = data;

  g_free (pd->account_id);
  g_free (pd->protocol);
  g_free (pd->command);
  g_clear_object (&pd->process);
  g_free (pd);
}

static char *
first_line (GBytes *bytes)
{
  gsize size = 0;
  const char *data = bytes != NULL ? g_bytes_get_data (bytes, &size) : NULL;
  const char *end;
  gsize len;

  if (data == NULL)
    return g_strdup ("");
  end = memchr (data, '\n', size);
  len = end != NULL ? (gsize) (end - data) : size;
  if (len > 0 && data[len - 1] == '\r')
    len--;
  return g_strndup (data, len);
}

static void
communicate_cb (GObject      *object,
                GAsyncResult *result,
                gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  PasswordData *pd = g_task_get_task_data (task);
  g_autoptr(GBytes) out = NULL;
  g_autoptr(GBytes) err = NULL;
  GError *error = NULL;
  char *password;

  if (!g_subprocess_communicate_finish (pd->process, result, &out, &err, &error))
    {
      g_subprocess_force_exit (pd->process);
      g_task_return_error (task, error);
      return;
    }

  if (!g_subprocess_get_if_exited (pd->process) || g_subprocess_get_exit_status (pd->process) != 0)
    {
      g_autofree char *line = first_line (err);
      g_autofree char *reason = g_utf8_make_valid (g_strstrip (line), -1);

      if (g_utf8_strlen (reason, -1) > 200)
        *g_utf8_offset_to_pointer (reason, 200) = '\0';
      if (g_subprocess_get_if_exited (pd->process))
        g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD,
                                 /* Translators: account id, the command, its exit status,
                                  * the first line of what it wrote to standard error */
                                 _("Account “%s”: the password command “%s” failed with "
                                   "exit status %u: %s"),
                                 pd->account_id, pd->command,
                                 (guint) g_subprocess_get_exit_status (pd->process), reason);
      else
        g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD,
                                 _("Account “%s”: the password command “%s” was killed by "
                                   "signal %u: %s"),
                                 pd->account_id, pd->command,
                                 (guint) g_subprocess_get_term_sig (pd->process), reason);
      if (out != NULL && g_bytes_get_size (out) > 0)
        memset ((gpointer) g_bytes_get_data (out, NULL), 0, g_bytes_get_size (out));
      return;
    }

  password = first_line (out);
  if (out != NULL && g_bytes_get_size (out) > 0)
    memset ((gpointer) g_bytes_get_data (out, NULL), 0, g_bytes_get_size (out));
  if (password[0] == '\0' || !g_utf8_validate (password, -1, NULL))
    {
      wipe_free (password);
      g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD,
                               _("Account “%s”: the password command “%s” printed no "
                                 "password (or one that is not UTF-8)"),
                               pd->account_id, pd->command);
      return;
    }
  g_task_return_pointer (task, password, wipe_free);
}

static void
lookup_cb (GObject      *object,
           GAsyncResult *result,
           gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  PasswordData *pd = g_task_get_task_data (task);
  GError *error = NULL;
  char *password;

  password = lb_secret_lookup_finish (result, &error);
  if (error != NULL)
    g_task_return_error (task, error);
  else if (password == NULL)
    g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_NOT_FOUND,
                             /* Translators: account id, then imap, pop3 or smtp */
                             _("Account “%s”: no %s password is stored in the keyring"),
                             pd->account_id, pd->protocol);
  else
    g_task_return_pointer (task, password, wipe_free);
}

/**
 * lb_account_get_password_async:
 * @protocol: whose password: the keyring keeps one per protocol; a password command
 *   serves them all
 *
 * Gets the password from the keyring, or by running the password command with
 * `/bin/sh -c` (standard input /dev/null; the first line of its output, without the line
 * end, is the password). @callback runs once in the caller's thread-default main context;
 * cancelling kills the command.
 */
void
lb_account_get_password_async (const LbAccount     *account,
                               LbAccountProtocol    protocol,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *stripped = NULL;
  PasswordData *pd;
  GError *error = NULL;

  g_return_if_fail (account != NULL);
  g_return_if_fail (lb_account_protocol_to_string (protocol) != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_account_get_password_async);
  pd = g_new0 (PasswordData, 1);
  pd->account_id = g_strdup (account->id);
  pd->protocol = g_strdup (lb_account_protocol_to_string (protocol));
  pd->command = g_strdup (account->password_command);
  g_task_set_task_data (task, pd, password_data_free);

  if (account->password_source == LB_ACCOUNT_PASSWORD_KEYRING)
    {
      lb_secret_lookup_async (pd->account_id, pd->protocol, cancellable, lookup_cb,
                              g_steal_pointer (&task));
      return;
    }

  stripped = g_strstrip (g_strdup (pd->command != NULL ? pd->command : ""));
  if (stripped[0] == '\0')
    {
      set_invalid (&error, pd->account_id, "password-command",
                   g_strdup (_("the password command is empty")));
      g_task_return_error (task, error);
      return;
    }
  pd->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDOUT_PIPE | G_SUBPROCESS_FLAGS_STDERR_PIPE,
                                  &error, "/bin/sh", "-c", pd->command, NULL);
  if (pd->process == NULL)
    {
      g_task_return_new_error (task, LB_ACCOUNT_ERROR, LB_ACCOUNT_ERROR_PASSWORD,
                               _("Account “%s”: cannot run the password command “%s”: %s"),
                               pd->account_id, pd->command, error->message);
      g_error_free (error);
      return;
    }
  g_subprocess_communicate_async (pd->process, NULL, cancellable, communicate_cb,
                                  g_steal_pointer (&task));
}

/**
 * lb_account_get_password_finish:
 * @error: #LB_ACCOUNT_ERROR_PASSWORD (the command failed), _NOT_FOUND (nothing in the
 *   keyring), an #LB_SECRET_ERROR, or G_IO_ERROR_CANCELLED
 *
 * Returns: (transfer full) (nullable): the password; wipe it before freeing
 */
char *
lb_account_get_password_finish (GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lb_account_get_password_async,
                        NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
store_cb (GObject      *object,
          GAsyncResult *result,
          gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  GError *error = NULL;

  if (lb_secret_store_finish (result, &error))
    g_task_return_boolean (task, TRUE);
  else
    g_task_return_error (task, error);
}

/**
 * lb_account_set_password_async:
 *
 * Stores @password in the keyring for the account and @protocol. An account whose
 * passwords come from a command has nothing to store: #LB_ACCOUNT_ERROR_INVALID.
 * @callback runs once in the caller's thread-default main context.
 */
void
lb_account_set_password_async (const LbAccount     *account,
                               LbAccountProtocol    protocol,
                               const char          *password,
                               GCancellable        *cancellable,
                               GAsyncReadyCallback  callback,
                               gpointer             user_data)
{
  g_autoptr(GTask) task = NULL;
  g_autofree char *label = NULL;
  const char *protocol_name = lb_account_protocol_to_string (protocol);

  g_return_if_fail (account != NULL);
  g_return_if_fail (protocol_name != NULL);
  g_return_if_fail (password != NULL);

  task = g_task_new (NULL, cancellable, callback, user_data);
  g_task_set_source_tag (task, lb_account_set_password_async);
  if (account->password_source != LB_ACCOUNT_PASSWORD_KEYRING)
    {
      GError *error = NULL;

      set_invalid (&error, account->id, "password-source",
                   g_strdup (_("the account takes its password from a command, so none is "
                               "stored in the keyring")));
      g_task_return_error (task, error);
      return;
    }
  /* Translators: what a keyring browser shows: the account's name, then imap/pop3/smtp */
  label = g_strdup_printf (_("Letterbox: %s (%s)"),
                           account->display_name != NULL ? account->display_name : account->id,
                           protocol_name);
  lb_secret_store_async (account->id, protocol_name, label, password, cancellable, store_cb,
                         g_steal_pointer (&task));
}

gboolean
lb_account_set_password_finish (GAsyncResult  *result,
                                GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), FALSE);
  g_return_val_if_fail (g_task_get_source_tag (G_TASK (result)) == lb_account_set_password_async,
                        FALSE);

  return g_task_propagate_boolean (G_TASK (result), error);
}
