/* SPDX-License-Identifier: GPL-3.0-or-later */
/* The pure part of lb-autoconfig: Thunderbird's clientConfig 1.1 document read with
 * GMarkup, and the e-mail address it is read for. No I/O; fuzzed. */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <string.h>

#include "lb-autoconfig.h"

G_DEFINE_QUARK (lb-autoconfig-error-quark, lb_autoconfig_error)

/* No field of a server is longer than a host name or a login name can sensibly be. */
#define MAX_FIELD 1024

void
lb_autoconfig_free (LbAutoconfig *config)
{
  if (config == NULL)
    return;
  g_free (config->display_name);
  g_clear_pointer (&config->incoming, g_ptr_array_unref);
  g_clear_pointer (&config->outgoing, g_ptr_array_unref);
  g_free (config->source);
  g_free (config);
}

static gboolean
is_domain (const char *domain)
{
  gsize len = strlen (domain);
  char prev = '.';

  if (len == 0 || len > 253)
    return FALSE;
  for (const char *p = domain; *p != '\0'; p++)
    {
      if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.')
        return FALSE;
      if (*p == '.' && prev == '.')
        return FALSE;
      prev = *p;
    }
  return domain[len - 1] != '.' || len > 1;
}

/**
 * lb_autoconfig_split_address:
 * @address: "local@domain"
 * @local_part: (out) (optional): the part before the last '@'
 * @domain: (out) (optional): the domain, lower-cased, without a trailing dot
 *
 * Returns: %FALSE with #LB_AUTOCONFIG_ERROR_ADDRESS when settings cannot be looked up
 *   for @address.
 */
gboolean
lb_autoconfig_split_address (const char  *address,
                             char       **local_part,
                             char       **domain,
                             GError     **error)
{
  const char *at;
  g_autofree char *dom = NULL;

  if (address == NULL || strlen (address) > 320 || !g_utf8_validate (address, -1, NULL))
    goto bad;
  for (const char *p = address; *p != '\0'; p++)
    if ((guchar) *p <= ' ' || *p == 0x7f)
      goto bad;
  at = strrchr (address, '@');
  if (at == NULL || at == address || at[1] == '\0')
    goto bad;
  dom = g_ascii_strdown (at + 1, -1);
  if (!is_domain (dom))
    goto bad;
  if (g_str_has_suffix (dom, "."))
    dom[strlen (dom) - 1] = '\0';
  if (local_part != NULL)
    *local_part = g_strndup (address, at - address);
  if (domain != NULL)
    *domain = g_steal_pointer (&dom);
  return TRUE;

bad:
  g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_ADDRESS,
               _("“%s” is not an e-mail address settings can be looked up for"),
               address != NULL && g_utf8_validate (address, -1, NULL) ? address : "?");
  return FALSE;
}

typedef enum
{
  FIELD_NONE,
  FIELD_DISPLAY_NAME,
  FIELD_HOSTNAME,
  FIELD_PORT,
  FIELD_SOCKET_TYPE,
  FIELD_USERNAME,
  FIELD_AUTHENTICATION,
} Field;

typedef struct
{
  const char *address;
  const char *local;
  const char *domain;
  LbAutoconfig *config;

  guint depth;

  /* The server element open now, if any (depth 3). */
  gboolean in_server;
  gboolean incoming;
  char *type;
  char *hostname;
  char *port;
  char *socket_type;
  char *username;
  char *auth;           /* the first method Letterbox supports */
  gboolean auth_seen;

  /* The leaf whose text is being collected, and its depth. */
  Field field;
  guint field_depth;
  GString *text;
} Parse;

static void
server_reset (Parse *p)
{
  p->in_server = FALSE;
  g_clear_pointer (&p->type, g_free);
  g_clear_pointer (&p->hostname, g_free);
  g_clear_pointer (&p->port, g_free);
  g_clear_pointer (&p->socket_type, g_free);
  g_clear_pointer (&p->username, g_free);
  g_clear_pointer (&p->auth, g_free);
  p->auth_seen = FALSE;
}

static char *
substitute (const Parse *p,
            const char  *in)
{
  GString *out = g_string_new (NULL);

  while (*in != '\0')
    {
      if (g_str_has_prefix (in, "%EMAILADDRESS%"))
        {
          g_string_append (out, p->address);
          in += strlen ("%EMAILADDRESS%");
        }
      else if (g_str_has_prefix (in, "%EMAILLOCALPART%"))
        {
          g_string_append (out, p->local);
          in += strlen ("%EMAILLOCALPART%");
        }
      else if (g_str_has_prefix (in, "%EMAILDOMAIN%"))
        {
          g_string_append (out, p->domain);
          in += strlen ("%EMAILDOMAIN%");
        }
      else
        g_string_append_c (out, *in++);
    }
  return g_string_free (out, FALSE);
}

static gboolean
is_host (const char *host)
{
  gsize len = strlen (host);

  if (len == 0 || len > 253)
    return FALSE;
  for (const char *p = host; *p != '\0'; p++)
    if (!g_ascii_isalnum (*p) && *p != '-' && *p != '.' && *p != ':' && *p != '_')
      return FALSE;
  return TRUE;
}

/* A finished server element becomes an LbAccountServer, or is skipped (with a debug
 * message) when Letterbox cannot use it. */
static void
server_finish (Parse *p)
{
  LbAccountProtocol protocol;
  LbNetSecurity security;
  guint64 port = 0;
  g_autofree char *host = NULL;
  LbAccountServer *server;

  if (p->type == NULL)
    goto skip;
  if (p->incoming && g_ascii_strcasecmp (p->type, "imap") == 0)
    protocol = LB_ACCOUNT_PROTOCOL_IMAP;
  else if (p->incoming && g_ascii_strcasecmp (p->type, "pop3") == 0)
    protocol = LB_ACCOUNT_PROTOCOL_POP3;
  else if (!p->incoming && g_ascii_strcasecmp (p->type, "smtp") == 0)
    protocol = LB_ACCOUNT_PROTOCOL_SMTP;
  else
    goto skip;

  if (p->hostname == NULL)
    goto skip;
  host = substitute (p, p->hostname);
  if (!is_host (host))
    goto skip;

  /* Thunderbird reads a missing socketType as plain; so does the document's author. */
  if (p->socket_type == NULL || g_ascii_strcasecmp (p->socket_type, "plain") == 0)
    security = LB_NET_SECURITY_NONE;
  else if (g_ascii_strcasecmp (p->socket_type, "SSL") == 0
           || g_ascii_strcasecmp (p->socket_type, "TLS") == 0)
    security = LB_NET_SECURITY_TLS;
  else if (g_ascii_strcasecmp (p->socket_type, "STARTTLS") == 0)
    security = LB_NET_SECURITY_STARTTLS;
  else
    goto skip;

  if (p->port != NULL
      && !g_ascii_string_to_unsigned (p->port, 10, 1, 65535, &port, NULL))
    goto skip;

  if (p->auth_seen && p->auth == NULL)
    goto skip;

  server = lb_account_server_new (protocol, host, (guint) port, security);
  if (p->username != NULL)
    server->user = substitute (p, p->username);
  if (p->auth != NULL)
    {
      g_free (server->auth);
      server->auth = g_strdup (p->auth);
    }
  g_ptr_array_add (p->incoming ? p->config->incoming : p->config->outgoing, server);
  server_reset (p);
  return;

skip:
  g_debug ("autoconfig: skipping a %s server (type %s, host %s)",
           p->incoming ? "incoming" : "outgoing",
           p->type != NULL ? p->type : "none",
           p->hostname != NULL ? p->hostname : "none");
  server_reset (p);
}

static const char *
auth_method (const char *value)
{
  if (g_ascii_strcasecmp (value, "password-cleartext") == 0
      || g_ascii_strcasecmp (value, "password-encrypted") == 0
      || g_ascii_strcasecmp (value, "plain") == 0
      || g_ascii_strcasecmp (value, "secure") == 0)
    return "auto";
  if (g_ascii_strcasecmp (value, "OAuth2") == 0)
    return "XOAUTH2";
  return NULL;
}

static void
start_element (GMarkupParseContext  *context,
               const char           *name,
               const char          **attribute_names,
               const char          **attribute_values,
               gpointer              user_data,
               GError              **error)
{
  Parse *p = user_data;
  const GSList *stack = g_markup_parse_context_get_element_stack (context);
  const char *parent = stack->next != NULL ? stack->next->data : NULL;

  p->depth++;
  if (p->depth > LB_AUTOCONFIG_MAX_DEPTH)
    {
      g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_TOO_BIG,
                   _("The configuration is nested more than %u levels deep"),
                   (guint) LB_AUTOCONFIG_MAX_DEPTH);
      return;
    }
  if (p->depth == 1)
    {
      if (strcmp (name, "clientConfig") != 0)
        g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_PARSE,
                     _("The document is not a mail client configuration (it starts with “%s”)"),
                     name);
      return;
    }
  if (p->field != FIELD_NONE)
    return;

  if (p->depth == 2 || parent == NULL)
    return;
  if (p->depth == 3 && strcmp (parent, "emailProvider") == 0)
    {
      if (strcmp (name, "displayName") == 0 && p->config->display_name == NULL)
        {
          p->field = FIELD_DISPLAY_NAME;
          p->field_depth = p->depth;
          g_string_truncate (p->text, 0);
        }
      else if (strcmp (name, "incomingServer") == 0 || strcmp (name, "outgoingServer") == 0)
        {
          server_reset (p);
          p->in_server = TRUE;
          p->incoming = name[0] == 'i';
          for (guint i = 0; attribute_names[i] != NULL; i++)
            if (strcmp (attribute_names[i], "type") == 0 && p->type == NULL)
              p->type = g_strdup (attribute_values[i]);
        }
      return;
    }
  if (p->depth == 4 && p->in_server)
    {
      Field f = FIELD_NONE;

      if (strcmp (name, "hostname") == 0)
        f = FIELD_HOSTNAME;
      else if (strcmp (name, "port") == 0)
        f = FIELD_PORT;
      else if (strcmp (name, "socketType") == 0)
        f = FIELD_SOCKET_TYPE;
      else if (strcmp (name, "username") == 0)
        f = FIELD_USERNAME;
      else if (strcmp (name, "authentication") == 0)
        f = FIELD_AUTHENTICATION;
      if (f != FIELD_NONE)
        {
          p->field = f;
          p->field_depth = p->depth;
          g_string_truncate (p->text, 0);
        }
    }
}

static void
set_once (char      **field,
          GString    *text)
{
  if (*field == NULL)
    *field = g_strstrip (g_strdup (text->str));
}

static void
end_element (GMarkupParseContext  *context,
             const char           *name,
             gpointer              user_data,
             GError              **error)
{
  Parse *p = user_data;

  if (p->field != FIELD_NONE && p->depth == p->field_depth)
    {
      switch (p->field)
        {
        case FIELD_DISPLAY_NAME:
          set_once (&p->config->display_name, p->text);
          break;
        case FIELD_HOSTNAME:
          set_once (&p->hostname, p->text);
          break;
        case FIELD_PORT:
          set_once (&p->port, p->text);
          break;
        case FIELD_SOCKET_TYPE:
          set_once (&p->socket_type, p->text);
          break;
        case FIELD_USERNAME:
          set_once (&p->username, p->text);
          break;
        case FIELD_AUTHENTICATION:
          {
            g_autofree char *value = g_strstrip (g_strdup (p->text->str));
            const char *method = auth_method (value);

            p->auth_seen = TRUE;
            if (p->auth == NULL && method != NULL)
              p->auth = g_strdup (method);
          }
          break;
        case FIELD_NONE:
        default:
          break;
        }
      p->field = FIELD_NONE;
    }
  else if (p->depth == 3 && p->in_server)
    server_finish (p);
  p->depth--;
}

static void
text (GMarkupParseContext  *context,
      const char           *text,
      gsize                 length,
      gpointer              user_data,
      GError              **error)
{
  Parse *p = user_data;

  if (p->field == FIELD_NONE || p->depth != p->field_depth)
    return;
  if (p->text->len + length > MAX_FIELD)
    {
      g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_TOO_BIG,
                   _("A field of the configuration is longer than %u bytes"),
                   (guint) MAX_FIELD);
      return;
    }
  g_string_append_len (p->text, text, length);
}

static const GMarkupParser parser = {
  .start_element = start_element,
  .end_element = end_element,
  .text = text,
};

/**
 * lb_autoconfig_parse:
 * @data: a Thunderbird autoconfig document (clientConfig version 1.1)
 * @length: its length in bytes (at most #LB_AUTOCONFIG_MAX_SIZE)
 * @address: the e-mail address whose placeholders fill `%EMAIL…%`
 *
 * Servers of unknown types (Exchange, EWS…), without a host name, with an unknown socket
 * type, a bad port or only authentication methods Letterbox lacks are left out.
 *
 * Returns: (transfer full): the servers, or %NULL with an #LB_AUTOCONFIG_ERROR (ADDRESS,
 *   PARSE, TOO_BIG, or EMPTY when no server is left).
 */
LbAutoconfig *
lb_autoconfig_parse (const char  *data,
                     gsize        length,
                     const char  *address,
                     GError     **error)
{
  g_autofree char *local = NULL;
  g_autofree char *domain = NULL;
  g_autoptr(LbAutoconfig) config = NULL;
  g_autoptr(GMarkupParseContext) context = NULL;
  g_autoptr(GError) local_error = NULL;
  Parse p = { 0 };
  gboolean ok;

  g_return_val_if_fail (data != NULL || length == 0, NULL);

  if (!lb_autoconfig_split_address (address, &local, &domain, error))
    return NULL;
  if (length > LB_AUTOCONFIG_MAX_SIZE)
    {
      g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_TOO_BIG,
                   _("The configuration is larger than %u bytes"),
                   (guint) LB_AUTOCONFIG_MAX_SIZE);
      return NULL;
    }

  if (length > 0 && memchr (data, '\0', length) != NULL)
    {
      g_set_error_literal (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_PARSE,
                           _("The configuration is not valid XML: it contains a NUL byte"));
      return NULL;
    }

  config = g_new0 (LbAutoconfig, 1);
  config->incoming = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  config->outgoing = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  p.address = address;
  p.local = local;
  p.domain = domain;
  p.config = config;
  p.text = g_string_new (NULL);

  context = g_markup_parse_context_new (&parser, G_MARKUP_PREFIX_ERROR_POSITION, &p, NULL);
  ok = g_markup_parse_context_parse (context, data != NULL ? data : "", length, &local_error)
       && g_markup_parse_context_end_parse (context, &local_error);
  server_reset (&p);
  g_string_free (p.text, TRUE);

  if (!ok)
    {
      if (local_error->domain == LB_AUTOCONFIG_ERROR)
        g_propagate_error (error, g_steal_pointer (&local_error));
      else
        {
          /* GMarkup quotes invalid UTF-8 as it found it. */
          g_autofree char *why = g_utf8_make_valid (local_error->message, -1);

          g_set_error (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_PARSE,
                       _("The configuration is not valid XML: %s"), why);
        }
      return NULL;
    }
  if (config->incoming->len == 0 && config->outgoing->len == 0)
    {
      g_set_error_literal (error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_EMPTY,
                           _("The configuration names no IMAP, POP3 or SMTP server"));
      return NULL;
    }
  return g_steal_pointer (&config);
}
