/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Finding server settings from an e-mail address: Thunderbird autoconfig documents over
 * HTTP(S) with libsoup, and, as a last resort, probing the usual host names and ports for
 * a greeting. The document parser is in lb-autoconfig-parser.c. */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "lb-autoconfig.h"
#include "lb-connection.h"

#define MAX_REDIRECTS 3
#define DEFAULT_TIMEOUT 10
#define GREETING_MAX 512

typedef struct
{
  gboolean allow_insecure;
  char *base_url_override;
  char *ca_file;
  guint timeout;
  GStrv probe_hosts;
  LbAutoconfigPorts probe_ports;
} Options;

static void
options_clear (Options *o)
{
  g_free (o->base_url_override);
  g_free (o->ca_file);
  g_strfreev (o->probe_hosts);
}

static void
options_copy (Options                   *o,
              const LbAutoconfigOptions *from)
{
  memset (o, 0, sizeof *o);
  o->timeout = DEFAULT_TIMEOUT;
  if (from == NULL)
    return;
  o->allow_insecure = from->allow_insecure;
  o->base_url_override = g_strdup (from->base_url_override);
  o->ca_file = g_strdup (from->ca_file);
  if (from->timeout_seconds != 0)
    o->timeout = from->timeout_seconds;
  o->probe_hosts = g_strdupv ((GStrv) from->probe_hosts);
  o->probe_ports = from->probe_ports;
}

/* ---- lookup ---------------------------------------------------------------------- */

typedef struct
{
  Options options;
  char *address;
  GPtrArray *urls;
  guint index;
  guint redirects;
  char *url;               /* the one being fetched (after redirects) */
  SoupSession *session;
  SoupMessage *message;
  GInputStream *body_stream;
  GByteArray *body;
  GError *parse_error;     /* a document found but unusable: the most telling failure */
  char *last_problem;
} Lookup;

static void
lookup_free (Lookup *l)
{
  options_clear (&l->options);
  g_free (l->address);
  g_ptr_array_unref (l->urls);
  g_free (l->url);
  g_clear_object (&l->session);
  g_clear_object (&l->message);
  g_clear_object (&l->body_stream);
  g_clear_pointer (&l->body, g_byte_array_unref);
  g_clear_error (&l->parse_error);
  g_free (l->last_problem);
  g_free (l);
}

static void lookup_fetch (GTask *task);

static void
lookup_next (GTask      *task,
             const char *problem)
{
  Lookup *l = g_task_get_task_data (task);

  if (problem != NULL)
    {
      g_debug ("autoconfig: %s: %s", l->url, problem);
      g_free (l->last_problem);
      l->last_problem = g_strdup_printf ("%s: %s", l->url, problem);
    }
  g_clear_object (&l->message);
  g_clear_object (&l->body_stream);
  g_clear_pointer (&l->body, g_byte_array_unref);
  l->index++;
  l->redirects = 0;
  if (l->index < l->urls->len)
    {
      g_free (l->url);
      l->url = g_strdup (g_ptr_array_index (l->urls, l->index));
      lookup_fetch (task);
      return;
    }
  if (l->parse_error != NULL)
    g_task_return_error (task, g_steal_pointer (&l->parse_error));
  else
    g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND,
                             _("No configuration was found for “%s” (%s)"), l->address,
                             l->last_problem != NULL ? l->last_problem : "-");
  g_object_unref (task);
}

static void
body_read_cb (GObject      *source,
              GAsyncResult *result,
              gpointer      user_data)
{
  GTask *task = user_data;
  Lookup *l = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) chunk = g_input_stream_read_bytes_finish (G_INPUT_STREAM (source),
                                                              result, &error);
  g_autoptr(LbAutoconfig) config = NULL;

  if (chunk == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      lookup_next (task, error->message);
      return;
    }
  if (g_bytes_get_size (chunk) > 0)
    {
      if (l->body->len + g_bytes_get_size (chunk) > LB_AUTOCONFIG_MAX_SIZE)
        {
          g_clear_error (&l->parse_error);
          g_set_error (&l->parse_error, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_TOO_BIG,
                       _("The configuration at %s is larger than %u bytes"), l->url,
                       (guint) LB_AUTOCONFIG_MAX_SIZE);
          lookup_next (task, l->parse_error->message);
          return;
        }
      g_byte_array_append (l->body, g_bytes_get_data (chunk, NULL), g_bytes_get_size (chunk));
      g_input_stream_read_bytes_async (l->body_stream, 64 * 1024, G_PRIORITY_DEFAULT,
                                       g_task_get_cancellable (task), body_read_cb, task);
      return;
    }

  config = lb_autoconfig_parse ((const char *) l->body->data, l->body->len, l->address,
                                &error);
  if (config == NULL)
    {
      g_clear_error (&l->parse_error);
      l->parse_error = g_error_new (error->domain, error->code, "%s (%s)", error->message,
                                    l->url);
      lookup_next (task, error->message);
      return;
    }
  config->source = g_strdup (l->url);
  g_task_return_pointer (task, g_steal_pointer (&config), (GDestroyNotify) lb_autoconfig_free);
  g_object_unref (task);
}

static void
sent_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  GTask *task = user_data;
  Lookup *l = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  g_autoptr(GInputStream) stream = soup_session_send_finish (SOUP_SESSION (source), result,
                                                             &error);
  guint status;

  if (stream == NULL)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      lookup_next (task, error->message);
      return;
    }

  status = soup_message_get_status (l->message);
  if (SOUP_STATUS_IS_REDIRECTION (status))
    {
      const char *location = soup_message_headers_get_one (
        soup_message_get_response_headers (l->message), "Location");
      g_autoptr(GUri) target = NULL;
      GUri *base = soup_message_get_uri (l->message);

      if (location != NULL)
        target = g_uri_parse_relative (base, location, SOUP_HTTP_URI_FLAGS, NULL);
      if (target == NULL)
        {
          lookup_next (task, "redirect without a usable Location");
          return;
        }
      if (++l->redirects > MAX_REDIRECTS)
        {
          lookup_next (task, "too many redirects");
          return;
        }
      if (g_strcmp0 (g_uri_get_scheme (base), "https") == 0
          && g_strcmp0 (g_uri_get_scheme (target), "https") != 0)
        {
          lookup_next (task, "refused a redirect from https to another scheme");
          return;
        }
      if (g_strcmp0 (g_uri_get_scheme (target), "https") != 0
          && g_strcmp0 (g_uri_get_scheme (target), "http") != 0)
        {
          lookup_next (task, "refused a redirect to another scheme");
          return;
        }
      g_free (l->url);
      l->url = g_uri_to_string (target);
      lookup_fetch (task);
      return;
    }
  if (status != SOUP_STATUS_OK)
    {
      g_autofree char *problem = g_strdup_printf ("HTTP %u", status);

      lookup_next (task, problem);
      return;
    }
  l->body_stream = g_steal_pointer (&stream);
  l->body = g_byte_array_new ();
  g_input_stream_read_bytes_async (l->body_stream, 64 * 1024, G_PRIORITY_DEFAULT,
                                   g_task_get_cancellable (task), body_read_cb, task);
}

static void
lookup_fetch (GTask *task)
{
  Lookup *l = g_task_get_task_data (task);

  g_clear_object (&l->message);
  l->message = soup_message_new (SOUP_METHOD_GET, l->url);
  if (l->message == NULL)
    {
      lookup_next (task, "not a usable URL");
      return;
    }
  soup_message_add_flags (l->message, SOUP_MESSAGE_NO_REDIRECT);
  soup_session_send_async (l->session, l->message, G_PRIORITY_DEFAULT,
                           g_task_get_cancellable (task), sent_cb, task);
}

/**
 * lb_autoconfig_lookup_async:
 * @address: the user's e-mail address
 * @options: (nullable): see #LbAutoconfigOptions
 *
 * Fetches the provider's Thunderbird autoconfig document, trying in turn
 * `https://autoconfig.<domain>/mail/config-v1.1.xml?emailaddress=<address>` and
 * `https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml`, then, only with
 * @options->allow_insecure, the same over http://. Each request has the timeout of the
 * options; at most 3 redirects are followed, never from https to http. Bodies over
 * #LB_AUTOCONFIG_MAX_SIZE are refused. A document that cannot be used does not stop the
 * search, but is the error reported when nothing better is found.
 */
void
lb_autoconfig_lookup_async (const char                *address,
                            const LbAutoconfigOptions *options,
                            GCancellable              *cancellable,
                            GAsyncReadyCallback        callback,
                            gpointer                   user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Lookup *l = g_new0 (Lookup, 1);
  g_autofree char *domain = NULL;
  g_autofree char *query = NULL;
  GError *error = NULL;

  g_task_set_source_tag (task, lb_autoconfig_lookup_async);
  g_task_set_task_data (task, l, (GDestroyNotify) lookup_free);
  options_copy (&l->options, options);
  l->address = g_strdup (address);
  l->urls = g_ptr_array_new_with_free_func (g_free);

  if (!lb_autoconfig_split_address (address, NULL, &domain, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  query = g_uri_escape_string (address, NULL, FALSE);
  if (l->options.base_url_override != NULL)
    {
      const char *base = l->options.base_url_override;
      gsize len = strlen (base);

      if (len > 0 && base[len - 1] == '/')
        len--;
      g_ptr_array_add (l->urls, g_strdup_printf ("%.*s/mail/config-v1.1.xml?emailaddress=%s",
                                                 (int) len, base, query));
      g_ptr_array_add (l->urls,
                       g_strdup_printf ("%.*s/.well-known/autoconfig/mail/config-v1.1.xml",
                                        (int) len, base));
    }
  else
    {
      const char *schemes[] = { "https", "http" };

      for (guint i = 0; i < (l->options.allow_insecure ? 2 : 1); i++)
        {
          g_ptr_array_add (l->urls,
                           g_strdup_printf ("%s://autoconfig.%s/mail/config-v1.1.xml"
                                            "?emailaddress=%s", schemes[i], domain, query));
          g_ptr_array_add (l->urls,
                           g_strdup_printf ("%s://%s/.well-known/autoconfig/mail/"
                                            "config-v1.1.xml", schemes[i], domain));
        }
    }

  l->session = soup_session_new_with_options ("timeout", l->options.timeout,
                                              "idle-timeout", l->options.timeout,
                                              "user-agent", PACKAGE_NAME " ",
                                              NULL);
  if (l->options.ca_file != NULL)
    {
      g_autoptr(GTlsDatabase) db = g_tls_file_database_new (l->options.ca_file, &error);

      if (db == NULL)
        {
          g_task_return_error (task, error);
          g_object_unref (task);
          return;
        }
      soup_session_set_tls_database (l->session, db);
    }
  l->url = g_strdup (g_ptr_array_index (l->urls, 0));
  lookup_fetch (task);
}

/**
 * lb_autoconfig_lookup_finish:
 *
 * Returns: (transfer full): the servers with #LbAutoconfig.source set to the URL they came
 *   from, or %NULL with an #LB_AUTOCONFIG_ERROR (ADDRESS; NOT_FOUND naming the last
 *   problem; or the PARSE/TOO_BIG/EMPTY error of a document found) or a
 *   #G_IO_ERROR_CANCELLED
 */
LbAutoconfig *
lb_autoconfig_lookup_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

/* ---- probe ----------------------------------------------------------------------- */

typedef struct
{
  LbAccountProtocol protocol;
  LbNetSecurity security;
  char *host;
  guint16 port;
} Candidate;

static void
candidate_free (Candidate *c)
{
  g_free (c->host);
  g_free (c);
}

typedef struct
{
  Options options;
  char *address;
  GPtrArray *candidates;
  guint index;
  gboolean found[3];          /* by LbAccountProtocol */
  LbConnection *conn;
  GString *greeting;
  LbAutoconfig *config;
  char *last_problem;
} Probe;

static void
probe_free (Probe *p)
{
  options_clear (&p->options);
  g_free (p->address);
  g_ptr_array_unref (p->candidates);
  if (p->conn != NULL)
    lb_connection_close (p->conn);
  g_clear_object (&p->conn);
  if (p->greeting != NULL)
    g_string_free (p->greeting, TRUE);
  lb_autoconfig_free (p->config);
  g_free (p->last_problem);
  g_free (p);
}

static void probe_next (GTask *task);

static void
probe_done_one (GTask      *task,
                const char *problem)
{
  Probe *p = g_task_get_task_data (task);
  Candidate *c = g_ptr_array_index (p->candidates, p->index);

  if (problem != NULL)
    {
      g_debug ("autoconfig: probing %s:%u: %s", c->host, (guint) c->port, problem);
      g_free (p->last_problem);
      p->last_problem = g_strdup_printf ("%s:%u: %s", c->host, (guint) c->port, problem);
    }
  else
    {
      LbAccountServer *server = lb_account_server_new (c->protocol, c->host, c->port,
                                                       c->security);

      server->user = g_strdup (p->address);
      g_ptr_array_add (c->protocol == LB_ACCOUNT_PROTOCOL_SMTP ? p->config->outgoing
                                                                : p->config->incoming,
                       server);
      p->found[c->protocol] = TRUE;
    }
  if (p->conn != NULL)
    lb_connection_close (p->conn);
  g_clear_object (&p->conn);
  p->index++;
  probe_next (task);
}

static gboolean
greeting_ok (LbAccountProtocol  protocol,
             const char        *line)
{
  switch (protocol)
    {
    case LB_ACCOUNT_PROTOCOL_IMAP:
      return g_str_has_prefix (line, "* OK") || g_str_has_prefix (line, "* PREAUTH");
    case LB_ACCOUNT_PROTOCOL_POP3:
      return g_str_has_prefix (line, "+OK");
    case LB_ACCOUNT_PROTOCOL_SMTP:
      return g_str_has_prefix (line, "220");
    default:
      return FALSE;
    }
}

static void
greeting_cb (GObject      *source,
             GAsyncResult *result,
             gpointer      user_data)
{
  GTask *task = user_data;
  Probe *p = g_task_get_task_data (task);
  Candidate *c = g_ptr_array_index (p->candidates, p->index);
  g_autoptr(GError) error = NULL;
  g_autoptr(GBytes) bytes = lb_connection_read_finish (LB_CONNECTION (source), result, &error);
  const char *eol;

  if (bytes == NULL || g_bytes_get_size (bytes) == 0)
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      probe_done_one (task, error != NULL ? error->message : "closed before a greeting");
      return;
    }
  g_string_append_len (p->greeting, g_bytes_get_data (bytes, NULL), g_bytes_get_size (bytes));
  eol = memchr (p->greeting->str, '\n', p->greeting->len);
  if (eol == NULL && p->greeting->len < GREETING_MAX)
    {
      lb_connection_read_async (p->conn, g_task_get_cancellable (task), greeting_cb, task);
      return;
    }
  probe_done_one (task, greeting_ok (c->protocol, p->greeting->str) ? NULL
                                                                    : "not the expected greeting");
}

static void
connect_cb (GObject      *source,
            GAsyncResult *result,
            gpointer      user_data)
{
  GTask *task = user_data;
  Probe *p = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;

  if (!lb_connection_connect_finish (LB_CONNECTION (source), result, &error))
    {
      if (g_error_matches (error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
        {
          g_task_return_error (task, g_steal_pointer (&error));
          g_object_unref (task);
          return;
        }
      probe_done_one (task, error->message);
      return;
    }
  g_string_truncate (p->greeting, 0);
  lb_connection_read_async (p->conn, g_task_get_cancellable (task), greeting_cb, task);
}

static void
probe_next (GTask *task)
{
  Probe *p = g_task_get_task_data (task);
  g_autoptr(GError) error = NULL;
  Candidate *c;

  while (p->index < p->candidates->len)
    {
      c = g_ptr_array_index (p->candidates, p->index);
      if (!p->found[c->protocol])
        break;
      p->index++;
    }
  if (p->index >= p->candidates->len)
    {
      if (p->config->incoming->len == 0 && p->config->outgoing->len == 0)
        g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, LB_AUTOCONFIG_ERROR_NOT_FOUND,
                                 _("No mail server answered for “%s” (%s)"), p->address,
                                 p->last_problem != NULL ? p->last_problem : "-");
      else
        g_task_return_pointer (task, g_steal_pointer (&p->config),
                               (GDestroyNotify) lb_autoconfig_free);
      g_object_unref (task);
      return;
    }

  c = g_ptr_array_index (p->candidates, p->index);
  p->conn = lb_connection_new (c->host, c->port, c->security);
  lb_connection_set_timeouts (p->conn, p->options.timeout, p->options.timeout);
  if (p->options.ca_file != NULL && !lb_connection_set_ca_file (p->conn, p->options.ca_file,
                                                                &error))
    {
      g_task_return_error (task, g_steal_pointer (&error));
      g_object_unref (task);
      return;
    }
  lb_connection_connect_async (p->conn, g_task_get_cancellable (task), connect_cb, task);
}

static void
add_candidates (Probe             *p,
                const char        *domain,
                LbAccountProtocol  protocol,
                const char        *prefix,
                guint16            tls_port,
                guint16            starttls_port)
{
  const LbNetSecurity securities[] = { LB_NET_SECURITY_TLS, LB_NET_SECURITY_STARTTLS };
  const guint16 ports[] = { tls_port, starttls_port };
  g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func (g_free);

  if (p->options.probe_hosts != NULL)
    for (guint i = 0; p->options.probe_hosts[i] != NULL; i++)
      g_ptr_array_add (hosts, g_strdup (p->options.probe_hosts[i]));
  else
    {
      g_ptr_array_add (hosts, g_strdup_printf ("%s.%s", prefix, domain));
      g_ptr_array_add (hosts, g_strdup_printf ("mail.%s", domain));
      g_ptr_array_add (hosts, g_strdup (domain));
    }
  for (guint s = 0; s < G_N_ELEMENTS (securities); s++)
    for (guint h = 0; h < hosts->len; h++)
      {
        Candidate *c = g_new0 (Candidate, 1);

        c->protocol = protocol;
        c->security = securities[s];
        c->host = g_strdup (g_ptr_array_index (hosts, h));
        c->port = ports[s];
        g_ptr_array_add (p->candidates, c);
      }
}

/**
 * lb_autoconfig_probe_async:
 * @address: the user's e-mail address
 * @options: (nullable): #LbAutoconfigOptions.probe_hosts, .probe_ports, .ca_file and
 *   .timeout_seconds apply
 *
 * The last resort: tries imap.<domain>, mail.<domain> and <domain> on 993 (TLS), then
 * 143 (STARTTLS); pop3.… on 995, then 110; smtp.… on 465, then 587, with the
 * certificate verified. Each connection only reads the greeting ("* OK", "+OK", "220")
 * and is closed: nothing is sent, least of all credentials. A STARTTLS port is reported
 * as STARTTLS on its greeting alone; the session refuses it later if the server does not
 * offer STARTTLS. The first server that answers for each protocol is kept, the user
 * being the whole address.
 */
void
lb_autoconfig_probe_async (const char                *address,
                           const LbAutoconfigOptions *options,
                           GCancellable              *cancellable,
                           GAsyncReadyCallback        callback,
                           gpointer                   user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Probe *p = g_new0 (Probe, 1);
  g_autofree char *domain = NULL;
  GError *error = NULL;
  const LbAutoconfigPorts *ports;

  g_task_set_source_tag (task, lb_autoconfig_probe_async);
  g_task_set_task_data (task, p, (GDestroyNotify) probe_free);
  options_copy (&p->options, options);
  p->address = g_strdup (address);
  p->candidates = g_ptr_array_new_with_free_func ((GDestroyNotify) candidate_free);
  p->greeting = g_string_new (NULL);
  p->config = g_new0 (LbAutoconfig, 1);
  p->config->incoming = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  p->config->outgoing = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  p->config->source = g_strdup ("probe");

  if (!lb_autoconfig_split_address (address, NULL, &domain, &error))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return;
    }
  ports = &p->options.probe_ports;
  add_candidates (p, domain, LB_ACCOUNT_PROTOCOL_IMAP, "imap",
                  ports->imaps ? ports->imaps : 993, ports->imap ? ports->imap : 143);
  add_candidates (p, domain, LB_ACCOUNT_PROTOCOL_POP3, "pop3",
                  ports->pop3s ? ports->pop3s : 995, ports->pop3 ? ports->pop3 : 110);
  add_candidates (p, domain, LB_ACCOUNT_PROTOCOL_SMTP, "smtp",
                  ports->smtps ? ports->smtps : 465,
                  ports->submission ? ports->submission : 587);
  probe_next (task);
}

/**
 * lb_autoconfig_probe_finish:
 *
 * Returns: (transfer full): the servers that answered (#LbAutoconfig.source "probe"), or
 *   %NULL with #LB_AUTOCONFIG_ERROR_NOT_FOUND (none did), #LB_AUTOCONFIG_ERROR_ADDRESS, an
 *   error about the CA file, or #G_IO_ERROR_CANCELLED
 */
LbAutoconfig *
lb_autoconfig_probe_finish (GAsyncResult  *result,
                            GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
