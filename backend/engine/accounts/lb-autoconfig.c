/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Finding server settings from an e-mail address: Thunderbird autoconfig documents over
 * HTTP(S) with libsoup, and, as a last resort, probing the usual host names and ports for
 * a greeting; lb_autoconfig_discover_async() runs them in turn with the RFC 6186 SRV
 * lookup of lb-autoconfig-srv.c between them. The document parser is in
 * lb-autoconfig-parser.c. */
#define G_LOG_DOMAIN "lb-accounts"

#include "config.h"

#include <glib/gi18n-lib.h>
#include <libsoup/soup.h>
#include <string.h>

#include "lb-autoconfig-private.h"
#include "lb-connection.h"

#define MAX_REDIRECTS 3
#define DEFAULT_TIMEOUT 10
#define GREETING_MAX 512

void
lb_autoconfig_opts_clear (LbAutoconfigOpts *o)
{
  g_clear_pointer (&o->base_url_override, g_free);
  g_clear_pointer (&o->ca_file, g_free);
  g_clear_pointer (&o->probe_hosts, g_strfreev);
  g_clear_pointer (&o->nameserver, g_free);
  g_clear_pointer (&o->trusted_fingerprint, g_free);
}

void
lb_autoconfig_opts_init (LbAutoconfigOpts          *o,
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
  o->nameserver = g_strdup (from->nameserver);
  o->trusted_fingerprint = g_strdup (from->trusted_fingerprint);
}

/* The public struct pointing into @o, to hand the options on to another step. */
void
lb_autoconfig_opts_view (const LbAutoconfigOpts *o,
                         LbAutoconfigOptions    *view)
{
  memset (view, 0, sizeof *view);
  view->allow_insecure = o->allow_insecure;
  view->base_url_override = o->base_url_override;
  view->ca_file = o->ca_file;
  view->timeout_seconds = o->timeout;
  view->probe_hosts = (const char * const *) o->probe_hosts;
  view->probe_ports = o->probe_ports;
  view->nameserver = o->nameserver;
  view->trusted_fingerprint = o->trusted_fingerprint;
}

/* ---- lookup ---------------------------------------------------------------------- */

typedef struct
{
  LbAutoconfigOpts options;
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
  lb_autoconfig_opts_clear (&l->options);
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
  config->method = LB_AUTOCONFIG_METHOD_FILE;
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
  lb_autoconfig_opts_init (&l->options, options);
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

/* ---- checking servers for a greeting (probe, SRV) --------------------------------- */

LbAutoconfigCandidate *
lb_autoconfig_candidate_new (LbAccountProtocol protocol,
                             LbNetSecurity     security,
                             const char       *host,
                             guint16           port)
{
  LbAutoconfigCandidate *c = g_new0 (LbAutoconfigCandidate, 1);

  c->protocol = protocol;
  c->security = security;
  c->host = g_strdup (host);
  c->port = port;
  return c;
}

void
lb_autoconfig_candidate_free (LbAutoconfigCandidate *c)
{
  if (c == NULL)
    return;
  g_free (c->host);
  g_free (c);
}

typedef struct
{
  LbAutoconfigOpts options;
  char *address;
  GPtrArray *candidates;
  guint index;
  gboolean found[3];          /* by LbAccountProtocol */
  LbConnection *conn;
  GString *greeting;
  LbAutoconfig *config;
  LbAutoconfigError error_code;
  char *failure;
  char *last_problem;
} Probe;

static void
probe_free (Probe *p)
{
  lb_autoconfig_opts_clear (&p->options);
  g_free (p->address);
  g_ptr_array_unref (p->candidates);
  if (p->conn != NULL)
    lb_connection_close (p->conn);
  g_clear_object (&p->conn);
  if (p->greeting != NULL)
    g_string_free (p->greeting, TRUE);
  lb_autoconfig_free (p->config);
  g_free (p->failure);
  g_free (p->last_problem);
  g_free (p);
}

static void probe_next (GTask *task);

static void
probe_done_one (GTask      *task,
                const char *problem)
{
  Probe *p = g_task_get_task_data (task);
  LbAutoconfigCandidate *c = g_ptr_array_index (p->candidates, p->index);

  if (problem != NULL)
    {
      g_debug ("autoconfig: checking %s:%u: %s", c->host, (guint) c->port, problem);
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
  LbAutoconfigCandidate *c = g_ptr_array_index (p->candidates, p->index);
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
  LbAutoconfigCandidate *c;

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
        g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, p->error_code, "%s (%s)",
                                 p->failure,
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
  if (p->options.trusted_fingerprint != NULL)
    lb_connection_set_trusted_fingerprint (p->conn, p->options.trusted_fingerprint);
  lb_connection_connect_async (p->conn, g_task_get_cancellable (task), connect_cb, task);
}

/* See lb-autoconfig-private.h. Takes @candidates. */
void
lb_autoconfig_verify_async (const char             *address,
                            const LbAutoconfigOpts *opts,
                            GPtrArray              *candidates,
                            LbAutoconfigMethod      method,
                            const char             *source,
                            LbAutoconfigError       error_code,
                            const char             *failure,
                            GCancellable           *cancellable,
                            GAsyncReadyCallback     callback,
                            gpointer                user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Probe *p = g_new0 (Probe, 1);
  LbAutoconfigOptions view;

  g_task_set_source_tag (task, lb_autoconfig_verify_async);
  g_task_set_task_data (task, p, (GDestroyNotify) probe_free);
  lb_autoconfig_opts_view (opts, &view);
  lb_autoconfig_opts_init (&p->options, &view);
  p->address = g_strdup (address);
  p->candidates = candidates;
  p->greeting = g_string_new (NULL);
  p->config = g_new0 (LbAutoconfig, 1);
  p->config->incoming = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  p->config->outgoing = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_account_server_free);
  p->config->source = g_strdup (source);
  p->config->method = method;
  p->error_code = error_code;
  p->failure = g_strdup (failure);
  probe_next (task);
}

LbAutoconfig *
lb_autoconfig_verify_finish (GAsyncResult  *result,
                             GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}

static void
add_candidates (GPtrArray              *candidates,
                const LbAutoconfigOpts *opts,
                const char             *domain,
                LbAccountProtocol       protocol,
                const char             *prefix,
                guint16                 tls_port,
                guint16                 starttls_port)
{
  const LbNetSecurity securities[] = { LB_NET_SECURITY_TLS, LB_NET_SECURITY_STARTTLS };
  const guint16 ports[] = { tls_port, starttls_port };
  g_autoptr(GPtrArray) hosts = g_ptr_array_new_with_free_func (g_free);

  if (opts->probe_hosts != NULL)
    for (guint i = 0; opts->probe_hosts[i] != NULL; i++)
      g_ptr_array_add (hosts, g_strdup (opts->probe_hosts[i]));
  else
    {
      g_ptr_array_add (hosts, g_strdup_printf ("%s.%s", prefix, domain));
      g_ptr_array_add (hosts, g_strdup_printf ("mail.%s", domain));
      g_ptr_array_add (hosts, g_strdup (domain));
    }
  for (guint s = 0; s < G_N_ELEMENTS (securities); s++)
    for (guint h = 0; h < hosts->len; h++)
      g_ptr_array_add (candidates,
                       lb_autoconfig_candidate_new (protocol, securities[s],
                                                    g_ptr_array_index (hosts, h), ports[s]));
}

/**
 * lb_autoconfig_probe_async:
 * @address: the user's e-mail address
 * @options: (nullable): #LbAutoconfigOptions.probe_hosts, .probe_ports, .ca_file,
 *   .trusted_fingerprint and .timeout_seconds apply
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
  g_auto(LbAutoconfigOpts) opts = { 0 };
  g_autofree char *domain = NULL;
  g_autofree char *failure = NULL;
  GError *error = NULL;
  GPtrArray *candidates;
  const LbAutoconfigPorts *ports;

  lb_autoconfig_opts_init (&opts, options);
  if (!lb_autoconfig_split_address (address, NULL, &domain, &error))
    {
      g_task_report_error (NULL, callback, user_data, lb_autoconfig_probe_async, error);
      return;
    }
  candidates = g_ptr_array_new_with_free_func ((GDestroyNotify) lb_autoconfig_candidate_free);
  ports = &opts.probe_ports;
  add_candidates (candidates, &opts, domain, LB_ACCOUNT_PROTOCOL_IMAP, "imap",
                  ports->imaps ? ports->imaps : 993, ports->imap ? ports->imap : 143);
  add_candidates (candidates, &opts, domain, LB_ACCOUNT_PROTOCOL_POP3, "pop3",
                  ports->pop3s ? ports->pop3s : 995, ports->pop3 ? ports->pop3 : 110);
  add_candidates (candidates, &opts, domain, LB_ACCOUNT_PROTOCOL_SMTP, "smtp",
                  ports->smtps ? ports->smtps : 465,
                  ports->submission ? ports->submission : 587);
  failure = g_strdup_printf (_("No mail server answered for “%s”"), address);
  lb_autoconfig_verify_async (address, &opts, candidates, LB_AUTOCONFIG_METHOD_PROBE, "probe",
                              LB_AUTOCONFIG_ERROR_NOT_FOUND, failure, cancellable, callback,
                              user_data);
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

/* ---- all steps ------------------------------------------------------------------------ */

typedef struct
{
  LbAutoconfigOpts options;
  char *address;
  GString *problems;
  LbAutoconfigError error_code;
} Discover;

static void
discover_free (Discover *d)
{
  lb_autoconfig_opts_clear (&d->options);
  g_free (d->address);
  g_string_free (d->problems, TRUE);
  g_free (d);
}

/* A step's outcome. Returns TRUE when @task has been completed: with the settings found
 * (a server to receive mail with, at least), or with an error that stops the search
 * (cancelled, a bad address or option, an unreadable CA file). */
static gboolean
discover_step_done (GTask        *task,
                    LbAutoconfig *config,
                    GError       *error)
{
  Discover *d = g_task_get_task_data (task);

  if (config != NULL && config->incoming->len > 0)
    {
      g_task_return_pointer (task, config, (GDestroyNotify) lb_autoconfig_free);
      g_object_unref (task);
      return TRUE;
    }
  if (error != NULL &&
      (error->domain != LB_AUTOCONFIG_ERROR || error->code == LB_AUTOCONFIG_ERROR_ADDRESS ||
       error->code == LB_AUTOCONFIG_ERROR_OPTION))
    {
      g_task_return_error (task, error);
      g_object_unref (task);
      return TRUE;
    }

  if (d->problems->len > 0)
    g_string_append (d->problems, "; ");
  if (error != NULL)
    {
      g_string_append (d->problems, error->message);
      /* The most telling kind: servers named but not answering, then a document
       * found but unusable, then nothing at all. */
      if (error->code == LB_AUTOCONFIG_ERROR_UNREACHABLE ||
          (d->error_code == LB_AUTOCONFIG_ERROR_NOT_FOUND &&
           error->code != LB_AUTOCONFIG_ERROR_NOT_FOUND))
        d->error_code = error->code;
      g_error_free (error);
    }
  else
    {
      if (config->method == LB_AUTOCONFIG_METHOD_FILE)
        g_string_append_printf (d->problems,
                                _("The autoconfig file at %s names no server to receive "
                                  "mail from"), config->source);
      else
        g_string_append (d->problems, _("No server to receive mail from was found"));
      lb_autoconfig_free (config);
    }
  return FALSE;
}

static void
discover_probe_cb (GObject      *source,
                   GAsyncResult *result,
                   gpointer      user_data)
{
  GTask *task = user_data;
  Discover *d = g_task_get_task_data (task);
  GError *error = NULL;
  LbAutoconfig *config = lb_autoconfig_probe_finish (result, &error);

  if (discover_step_done (task, config, error))
    return;
  g_task_return_new_error (task, LB_AUTOCONFIG_ERROR, d->error_code,
                           _("No settings were found for “%s”: %s"), d->address,
                           d->problems->str);
  g_object_unref (task);
}

static void
discover_srv_cb (GObject      *source,
                 GAsyncResult *result,
                 gpointer      user_data)
{
  GTask *task = user_data;
  Discover *d = g_task_get_task_data (task);
  GError *error = NULL;
  LbAutoconfig *config = lb_autoconfig_srv_finish (result, &error);
  LbAutoconfigOptions view;

  if (discover_step_done (task, config, error))
    return;
  lb_autoconfig_opts_view (&d->options, &view);
  lb_autoconfig_probe_async (d->address, &view, g_task_get_cancellable (task),
                             discover_probe_cb, task);
}

static void
discover_lookup_cb (GObject      *source,
                    GAsyncResult *result,
                    gpointer      user_data)
{
  GTask *task = user_data;
  Discover *d = g_task_get_task_data (task);
  GError *error = NULL;
  LbAutoconfig *config = lb_autoconfig_lookup_finish (result, &error);
  LbAutoconfigOptions view;

  if (discover_step_done (task, config, error))
    return;
  lb_autoconfig_opts_view (&d->options, &view);
  lb_autoconfig_srv_async (d->address, &view, g_task_get_cancellable (task), discover_srv_cb,
                           task);
}

/**
 * lb_autoconfig_discover_async:
 * @address: the user's e-mail address
 * @options: (nullable): see #LbAutoconfigOptions; each step uses the fields it knows
 *
 * Every way Letterbox has, in order, until one gives a server to receive mail from: the
 * provider's autoconfig file (lb_autoconfig_lookup_async()), the domain's SRV records
 * (lb_autoconfig_srv_async()), then probing the usual host names
 * (lb_autoconfig_probe_async()). #LbAutoconfig.method and .source say which one it was.
 */
void
lb_autoconfig_discover_async (const char                *address,
                              const LbAutoconfigOptions *options,
                              GCancellable              *cancellable,
                              GAsyncReadyCallback        callback,
                              gpointer                   user_data)
{
  GTask *task = g_task_new (NULL, cancellable, callback, user_data);
  Discover *d = g_new0 (Discover, 1);
  LbAutoconfigOptions view;

  g_task_set_source_tag (task, lb_autoconfig_discover_async);
  g_task_set_task_data (task, d, (GDestroyNotify) discover_free);
  lb_autoconfig_opts_init (&d->options, options);
  d->address = g_strdup (address);
  d->problems = g_string_new (NULL);
  d->error_code = LB_AUTOCONFIG_ERROR_NOT_FOUND;

  lb_autoconfig_opts_view (&d->options, &view);
  lb_autoconfig_lookup_async (address, &view, cancellable, discover_lookup_cb, task);
}

/**
 * lb_autoconfig_discover_finish:
 *
 * Returns: (transfer full): the settings, with at least one incoming server; or %NULL
 *   with #LB_AUTOCONFIG_ERROR_ADDRESS, #LB_AUTOCONFIG_ERROR_OPTION, an error about the CA
 *   file, #G_IO_ERROR_CANCELLED, or when every step failed an #LB_AUTOCONFIG_ERROR whose
 *   message names each step's problem: UNREACHABLE when SRV records named servers that
 *   did not answer, else PARSE/TOO_BIG/EMPTY for an autoconfig file found but unusable,
 *   else NOT_FOUND
 */
LbAutoconfig *
lb_autoconfig_discover_finish (GAsyncResult  *result,
                               GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, NULL), NULL);

  return g_task_propagate_pointer (G_TASK (result), error);
}
